//! Ids as clients write them.

/// An id as SCIM paths and `value`s carry it: the canonical decimal a
/// response writes, so that `"007"` or `"+7"` names nothing rather than
/// record 7 (SCIM ids are strings, compared exactly).
pub fn canonical_id(text: &str) -> Option<u64> {
    text.parse::<u64>().ok().filter(|id| id.to_string() == text)
}
