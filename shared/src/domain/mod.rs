//! The domain: the user record, the rules every write obeys, and the query
//! model both APIs lower their filters into. It knows neither HTTP nor
//! DynamoDB: the store and the two APIs import it, never the other way round.
pub mod access;
pub mod group;
pub mod listing;
pub mod orgs;
pub mod profile;
pub mod query;
pub mod tenant;
pub mod tenant_group;
pub mod user;

// ------------------------------------------------------------ ids
// Ids as clients write them.

/// An id as SCIM paths and `value`s carry it: the canonical decimal a
/// response writes, so that `"007"` or `"+7"` names nothing rather than
/// record 7 (SCIM ids are strings, compared exactly).
pub fn canonical_id(text: &str) -> Option<u64> {
    text.parse::<u64>().ok().filter(|id| id.to_string() == text)
}

// ------------------------------------------------------------ version
// Record versions as clients see them: every write adds 1 to a record's
// `version`, which both SCIM resource types show as a weak entity tag and
// take back in `If-Match`.

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
