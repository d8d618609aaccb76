//! The client credentials grant (RFC 6749 §4.4): authenticate the client,
//! then mint an access token, a tenant token of the client's org that
//! expires in an hour (store/clients.rs lists it).
//!
//! Client authentication gives nothing away about which client ids exist:
//! an unknown id and a wrong secret cost the same two calls (the client
//! item's read and the write that counts the failure) and get the same
//! answer. Failures are counted per client id as Basic logins are counted
//! per username (`store::logins`): from the fifth in a row within 15
//! minutes the id is locked (30 s, doubling up to 15 minutes), and every
//! attempt, the right secret too, answers 429 until the lock ends.
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;

use super::error::OAuthError;
use super::request::{ClientCredentials, TokenRequest};
use crate::auth;
use crate::store::{Store, StoreError, TenantOrg, TokenSpec};

/// How long an access token lives.
pub const ACCESS_TOKEN_SECS: i64 = 3600;
/// The scope of an access token that may write.
pub const SCOPE_WRITE: &str = "scim";
/// The scope of a read-only access token.
pub const SCOPE_READ: &str = "scim:read";
/// What starts a client id: `oc_` and 32 hex digits.
const CLIENT_ID_PREFIX: &str = "oc_";

/// An issued access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    pub access_token: String,
    pub expires_in: i64,
    pub scope: &'static str,
}

/// A new client of `org`: stores it and returns `(client_id, client_secret)`
/// (what `usersctl org oauth-client` prints). Only the secret's SHA-256 is
/// kept. `Conflict`: the org was deleted meanwhile.
pub async fn new_client(
    store: &Store,
    org: &TenantOrg,
    read_only: bool,
) -> Result<(String, String), StoreError> {
    let mut id = [0u8; 16];
    let mut secret = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut id);
    rand::thread_rng().fill_bytes(&mut secret);
    let client_id = format!("{CLIENT_ID_PREFIX}{}", hex::encode(id));
    let client_secret = URL_SAFE_NO_PAD.encode(secret);
    store
        .oauth_clients()
        .create(
            org,
            &client_id,
            &auth::hash_token(&client_secret),
            read_only,
        )
        .await?;
    Ok((client_id, client_secret))
}

/// Whether `id` has the shape of a client id; others are refused without a
/// read (no client can hold them).
pub fn possible_client_id(id: &str) -> bool {
    id.strip_prefix(CLIENT_ID_PREFIX)
        .is_some_and(|hex| hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Which scope the request asks for: `None` = the client's own (`scim`, or
/// `scim:read` for a read-only client). Scopes are space-separated; `scim`
/// covers `scim:read`.
fn requested_scope(scope: Option<&str>) -> Result<Option<&'static str>, OAuthError> {
    let Some(scope) = scope else {
        return Ok(None);
    };
    let mut wanted = None;
    for s in scope.split(' ').filter(|s| !s.is_empty()) {
        match s {
            SCOPE_WRITE => wanted = Some(SCOPE_WRITE),
            SCOPE_READ => {
                wanted.get_or_insert(SCOPE_READ);
            }
            other => {
                return Err(OAuthError::InvalidScope(format!(
                "Unknown scope {other:?}: the scopes are \"{SCOPE_WRITE}\" and \"{SCOPE_READ}\"."
            )))
            }
        }
    }
    Ok(wanted)
}

/// Answers a token request at `now` (epoch seconds): at most three calls
/// (the client, its org, the transaction that lists the token).
pub async fn grant(store: &Store, req: &TokenRequest, now: i64) -> Result<Issued, OAuthError> {
    let grant_type = req
        .grant_type
        .as_deref()
        .ok_or_else(|| OAuthError::InvalidRequest("Parameter \"grant_type\" is missing.".into()))?;
    if grant_type != "client_credentials" {
        return Err(OAuthError::UnsupportedGrantType(grant_type.to_string()));
    }
    let scope = requested_scope(req.scope.as_deref())?;
    let Some(credentials) = &req.client else {
        return Err(OAuthError::InvalidClient { basic: true });
    };
    let (client, clear_failures) = authenticate(store, credentials, now).await?;
    let failed = || OAuthError::InvalidClient {
        basic: credentials.basic,
    };
    let scope = match (scope, client.read_only) {
        (Some(SCOPE_WRITE), true) => {
            return Err(OAuthError::InvalidScope(format!(
                "This client is read-only: its scope is \"{SCOPE_READ}\"."
            )))
        }
        (Some(s), _) => s,
        (None, true) => SCOPE_READ,
        (None, false) => SCOPE_WRITE,
    };
    let issuing = store
        .oauth_clients()
        .issuing_org(&client)
        .await?
        .ok_or_else(failed)?;
    let access_token = auth::generate_tenant_token(issuing.org.id);
    let spec = TokenSpec {
        read_only: scope == SCOPE_READ,
        expires_at: Some(now + ACCESS_TOKEN_SECS),
    };
    match store
        .oauth_clients()
        .issue(
            &client,
            &issuing,
            &auth::hash_token(&access_token),
            &spec,
            clear_failures,
            now,
        )
        .await
    {
        Ok(()) => {}
        // Revoked, or its org deleted, since it was read.
        Err(StoreError::Conflict) => return Err(failed()),
        Err(e) => return Err(e.into()),
    }
    Ok(Issued {
        access_token,
        expires_in: ACCESS_TOKEN_SECS,
        scope,
    })
}

/// The client these credentials authenticate, and whether failures are on
/// record (the issue clears them). One read; a failure costs one write more.
async fn authenticate(
    store: &Store,
    credentials: &ClientCredentials,
    now: i64,
) -> Result<(crate::store::OAuthClient, bool), OAuthError> {
    let failed = || OAuthError::InvalidClient {
        basic: credentials.basic,
    };
    if !possible_client_id(&credentials.id) {
        return Err(failed());
    }
    let record = store.oauth_clients().get(&credentials.id).await?;
    if let Some(retry_after) = record.failures.locked_for(now) {
        return Err(OAuthError::Locked { retry_after });
    }
    let presented = auth::hash_token(&credentials.secret);
    // An id nobody holds is compared with a hash no secret has, so that it
    // takes the path a wrong secret takes.
    let stored = record
        .client
        .as_ref()
        .map_or(NO_SECRET, |c| c.secret_hash.as_str());
    if !same(&presented, stored) || credentials.secret.is_empty() {
        if let Err(e) = store
            .oauth_clients()
            .record_failure(&credentials.id, &record.failures, now)
            .await
        {
            let (kind, code) = e.log_fields();
            tracing::warn!(error_kind = kind, dynamodb_code = %code, cause = %e,
                "failed client authentication not recorded");
        }
        return Err(failed());
    }
    let client = record.client.ok_or_else(failed)?;
    Ok((client, record.failures.failures > 0))
}

/// Not a SHA-256 hex digest (it has a `-`): no secret hashes to it.
const NO_SECRET: &str = "----------------------------------------------------------------";

/// Compares two hashes in time that depends only on their lengths.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_are_scim_or_scim_read() {
        assert_eq!(requested_scope(None).unwrap(), None);
        assert_eq!(requested_scope(Some("scim")).unwrap(), Some(SCOPE_WRITE));
        assert_eq!(
            requested_scope(Some("scim:read")).unwrap(),
            Some(SCOPE_READ)
        );
        assert_eq!(
            requested_scope(Some("scim:read scim")).unwrap(),
            Some(SCOPE_WRITE)
        );
        assert!(matches!(
            requested_scope(Some("openid")),
            Err(OAuthError::InvalidScope(_))
        ));
    }

    #[test]
    fn client_ids_have_one_shape() {
        assert!(possible_client_id(&format!("oc_{}", "a1".repeat(16))));
        for bad in ["", "oc_", "oc_zz", "x", &format!("oc_{}", "a".repeat(33))] {
            assert!(!possible_client_id(bad), "{bad}");
        }
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd"));
        assert!(!same("abc", "ab"));
    }
}
