//! RFC 9865 cursors: where a list left off, handed to the client and back.
//!
//! A cursor is the last user id a page returned, so the next page is one
//! GSI1 query starting after it, at any depth. It is opaque and
//! tamper-evident: base64url (no padding: RFC 3986 unreserved characters
//! only, as RFC 9865 §2 requires) of a small versioned payload and an
//! HMAC-SHA256 tag over it. The payload binds the cursor to the profile and
//! the filter it was issued for and to its issue time, so a cursor edited,
//! forged, cut short, signed with another key, replayed under another filter
//! or older than [`TIMEOUT_SECS`] is a 400 (`invalidCursor`, or
//! `expiredCursor` for an old one) and never reads anything.
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use super::filter::Filter;
use super::{ScimError, ScimType};
use crate::http::Profile;

/// How long a cursor stays valid (`cursorTimeout` in ServiceProviderConfig).
pub const TIMEOUT_SECS: u64 = 3600;
/// Issue times this far in the future are accepted (clock skew between Lambdas).
const SKEW_SECS: u64 = 60;
const VERSION: u8 = 1;
const PAYLOAD_LEN: usize = 1 + 8 + 1 + 8 + 8;
const TAG_LEN: usize = 32;

/// Seconds since the epoch.
pub fn now_secs() -> u64 {
    chrono::Utc::now().timestamp().max(0) as u64
}

/// A short digest of the filter a cursor belongs to: of its canonical form
/// (the parsed filter printed, see `Display for Filter`), so spacing and
/// operator case do not matter; `None`: no filter.
pub fn fingerprint(filter: Option<&Filter>) -> [u8; 8] {
    let canonical = filter.map_or(String::new(), |f| f.to_string());
    let digest = Sha256::digest(canonical.as_bytes());
    let mut out = [0u8; 8];
    out.copy_from_slice(&digest[..8]);
    out
}

/// What a cursor carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// The last id the previous page returned (or read, when a filtered page
    /// stopped at its read limit): the next page starts after it.
    pub after: u64,
    pub profile: Profile,
    pub filter: [u8; 8],
    /// Seconds since the epoch.
    pub issued: u64,
}

impl Cursor {
    /// The cursor a response hands out, signed with `key`.
    pub fn seal(&self, key: &[u8]) -> String {
        let mut bytes = Vec::with_capacity(PAYLOAD_LEN + TAG_LEN);
        bytes.push(VERSION);
        bytes.extend_from_slice(&self.after.to_be_bytes());
        bytes.push(profile_byte(self.profile));
        bytes.extend_from_slice(&self.filter);
        bytes.extend_from_slice(&self.issued.to_be_bytes());
        let tag = mac(key, &bytes).finalize().into_bytes();
        bytes.extend_from_slice(&tag);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// The cursor a client sent back, checked against `key` and against the
    /// request it came with (`profile`, `filter`) at time `now`.
    pub fn open(
        raw: &str,
        key: &[u8],
        profile: Profile,
        filter: [u8; 8],
        now: u64,
    ) -> Result<Cursor, ScimError> {
        let cursor = Cursor::verify(raw, key)?;
        if cursor.profile != profile || cursor.filter != filter {
            return Err(invalid(
                "The cursor belongs to another query: repeat the filter of the request that \
                 returned it, or start again without a cursor value.",
            ));
        }
        if cursor.issued > now + SKEW_SECS {
            return Err(invalid("The cursor is not valid."));
        }
        if now - cursor.issued.min(now) > TIMEOUT_SECS {
            return Err(ScimError::bad(
                ScimType::ExpiredCursor,
                format!(
                    "The cursor has expired: cursors are valid for {TIMEOUT_SECS} seconds. Start \
                     again with an empty cursor."
                ),
            ));
        }
        Ok(cursor)
    }

    /// Decodes `raw` and checks its tag, before looking at anything it says.
    fn verify(raw: &str, key: &[u8]) -> Result<Cursor, ScimError> {
        let not_ours = || invalid("The cursor is not valid: send back a nextCursor unchanged.");
        let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| not_ours())?;
        if bytes.len() != PAYLOAD_LEN + TAG_LEN || bytes[0] != VERSION {
            return Err(not_ours());
        }
        let (payload, tag) = bytes.split_at(PAYLOAD_LEN);
        mac(key, payload)
            .verify_slice(tag)
            .map_err(|_| not_ours())?;
        let u64_at = |at: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&payload[at..at + 8]);
            u64::from_be_bytes(b)
        };
        let profile = match payload[9] {
            0 => Profile::Odm,
            1 => Profile::Rfc,
            _ => return Err(not_ours()),
        };
        let mut filter = [0u8; 8];
        filter.copy_from_slice(&payload[10..18]);
        Ok(Cursor {
            after: u64_at(1),
            profile,
            filter,
            issued: u64_at(18),
        })
    }
}

fn mac(key: &[u8], payload: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(payload);
    mac
}

fn profile_byte(profile: Profile) -> u8 {
    match profile {
        Profile::Odm => 0,
        Profile::Rfc => 1,
    }
}

fn invalid(detail: &str) -> ScimError {
    ScimError::bad(ScimType::InvalidCursor, detail)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Cursor {
        Cursor {
            after: 1234,
            profile: Profile::Rfc,
            filter: fingerprint(None),
            issued: 1_000_000,
        }
    }

    fn open(raw: &str, key: &[u8], now: u64) -> Result<Cursor, ScimError> {
        Cursor::open(raw, key, Profile::Rfc, fingerprint(None), now)
    }

    #[test]
    fn a_sealed_cursor_opens_to_itself_and_uses_unreserved_characters() {
        let raw = sample().seal(b"k");
        assert!(raw
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._~".contains(c)));
        assert_eq!(open(&raw, b"k", 1_000_010).unwrap(), sample());
    }

    #[test]
    fn tampered_foreign_truncated_and_stale_cursors_are_refused() {
        let raw = sample().seal(b"k");
        let kind = |r: Result<Cursor, ScimError>| r.unwrap_err().scim_type.unwrap();
        // Every single-byte change of the decoded cursor.
        let bytes = URL_SAFE_NO_PAD.decode(&raw).unwrap();
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x01;
            let forged = URL_SAFE_NO_PAD.encode(&b);
            assert_eq!(
                kind(open(&forged, b"k", 1_000_010)),
                ScimType::InvalidCursor
            );
        }
        assert_eq!(
            kind(open(&raw[..raw.len() - 2], b"k", 1_000_010)),
            ScimType::InvalidCursor
        );
        assert_eq!(
            kind(open(&raw, b"other", 1_000_010)),
            ScimType::InvalidCursor
        );
        assert_eq!(kind(open("%%%", b"k", 1_000_010)), ScimType::InvalidCursor);
        assert_eq!(
            kind(open(&raw, b"k", 1_000_000 + TIMEOUT_SECS + 1)),
            ScimType::ExpiredCursor
        );
        assert!(open(&raw, b"k", 1_000_000 + TIMEOUT_SECS).is_ok());
        assert_eq!(
            kind(open(&raw, b"k", 1_000_000 - SKEW_SECS - 1)),
            ScimType::InvalidCursor
        );
        let other_filter = Cursor::open(&raw, b"k", Profile::Rfc, [1; 8], 1_000_010);
        assert_eq!(kind(other_filter), ScimType::InvalidCursor);
        let other_profile = Cursor::open(&raw, b"k", Profile::Odm, fingerprint(None), 1_000_010);
        assert_eq!(kind(other_profile), ScimType::InvalidCursor);
    }
}
