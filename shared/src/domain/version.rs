//! Record versions as clients see them: every write adds 1 to a record's
//! `version`, which both SCIM resource types show as a weak entity tag and
//! take back in `If-Match`.

/// A record's version as a weak entity tag (`meta.version`, `ETag`).
pub fn etag(version: u64) -> String {
    format!("W/\"{version}\"")
}

/// `If-Match` holds when absent, `*`, or naming the current version (weak
/// or strong form, one of a list).
pub fn if_match_holds(header: Option<&str>, version: u64) -> bool {
    let Some(header) = header else { return true };
    let current = version.to_string();
    header
        .split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || tag.trim_start_matches("W/").trim_matches('"') == current)
}
