//! Credentials → caller: [`Identity`] is who an operation acts for, and
//! [`Identity::resolve`] turns it into the caller (or, at a SCIM base, the
//! provisioner the domain admits there) in the request's one batch read.
//!
//! Tokens are `<user_id>.<secret>` and stored only as
//! SHA-256 hashes; passwords are Argon2id hashes. An org's own tokens (tenant
//! tokens) are `org<org id>.<secret>`, listed on the org item, and work only
//! under that org's SCIM base ([`authenticate_tenant`]): anywhere else they
//! have no user id, so they are refused as any invalid token is, before
//! anything is read.
//!
//! Basic auth gives nothing away about which usernames exist: every failed
//! attempt costs the same reads, one Argon2 run and one write, and counts
//! towards a lock of the username (`store::logins`) that holds across
//! containers and answers 429 until it ends.
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use lambda_http::http::HeaderMap;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::domain::user::{rules, User};
pub use crate::domain::Caller;
use crate::domain::{Acting, Denied, Provisioner};
use crate::store::{
    table, Fetched, LoginClaim, Store, StoreError, TenantOrg, TokenOwner, TokenSpec, Wanted,
};

/// How long a verified password stays verified in this container, so a client
/// sending Basic on every call does not pay Argon2 every time.
const PASSWORD_CACHE_TTL: Duration = Duration::from_secs(300);
/// `last_login` is refreshed at most this often: a write on a read path costs.
const LAST_LOGIN_REFRESH: chrono::TimeDelta = chrono::TimeDelta::hours(1);
/// Tokens are `<user id>.<43 characters>`; anything much longer is refused
/// before it is hashed or looked up.
const MAX_TOKEN_BYTES: usize = 256;
/// A user id nobody has (ids start at 1): read in place of the claim's owner
/// when nobody holds a Basic username, so that the batch read still happens.
const NOBODY: u64 = 0;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    None,
    Token(String),
    Basic {
        username: String,
        password: String,
    },
    /// A credentials header that cannot be read; the message says why.
    Malformed(&'static str),
}

/// Why a request is not authenticated. The messages are DRF's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("Authentication credentials were not provided.")]
    Missing,
    #[error("{0}")]
    Malformed(&'static str),
    #[error("Invalid token.")]
    InvalidToken,
    #[error("Invalid username/password.")]
    InvalidPassword,
    #[error("User inactive or deleted.")]
    Inactive,
}

#[derive(Debug)]
pub enum Failure {
    Unauthenticated(AuthError),
    /// Too many failed password logins with this username: every Basic
    /// attempt is refused (429) for `retry_after` more seconds.
    Locked {
        retry_after: u64,
    },
    Store(StoreError),
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Failure::Store(e)
    }
}

/// Who an operation acts for. Either way the operation decides what the
/// caller may do, and reads what it needs in one batch read.
#[derive(Debug, Clone, Copy)]
pub enum Identity<'a> {
    /// Credentials as the request sent them: the operation authenticates
    /// them, in the same batch read as what it needs.
    Credentials(&'a Credentials),
    /// Credentials sent under the SCIM tenant base of org `slug`: a
    /// tenant token of that org, or a person's credentials.
    Tenant {
        credentials: &'a Credentials,
        slug: &'a str,
    },
    /// A caller the request authenticated once for several operations (a
    /// SCIM bulk request): the operation reads only what it needs.
    Caller(&'a Caller),
    /// A SCIM provisioner a bulk request authenticated once, at the base
    /// it came through.
    Provisioner(&'a Provisioner),
}

impl<'a> From<&'a Credentials> for Identity<'a> {
    fn from(credentials: &'a Credentials) -> Self {
        Identity::Credentials(credentials)
    }
}

impl<'a> From<&'a Caller> for Identity<'a> {
    fn from(caller: &'a Caller) -> Self {
        Identity::Caller(caller)
    }
}

impl<'a> From<&'a Provisioner> for Identity<'a> {
    fn from(provisioner: &'a Provisioner) -> Self {
        Identity::Provisioner(provisioner)
    }
}

impl Identity<'_> {
    /// The caller as a person, and what `wanted` names read in one strongly consistent
    /// batch read (with the caller's own record, when the credentials are
    /// checked here; none at all when nothing is wanted of a known caller).
    pub async fn resolve(
        self,
        store: &Store,
        wanted: Wanted,
    ) -> Result<(Caller, Fetched), Failure> {
        match self {
            Identity::Credentials(credentials) => {
                authenticate_with(store, credentials, wanted).await
            }
            Identity::Tenant { credentials, .. } => {
                authenticate_with(store, credentials, wanted).await
            }
            Identity::Caller(caller) => Ok((caller.clone(), store.fetch(&wanted).await?)),
            Identity::Provisioner(p) => match p.person() {
                Some(user) => Ok((
                    Caller {
                        user: user.clone(),
                        read_only: p.read_only,
                    },
                    store.fetch(&wanted).await?,
                )),
                None => Err(Failure::Unauthenticated(AuthError::InvalidToken)),
            },
        }
    }

    /// The SCIM provisioner, at the base the identity came through, and
    /// what `wanted` names, in one batch read (with the org item under a
    /// tenant base).
    pub async fn resolve_provisioner(
        self,
        store: &Store,
        wanted: Wanted,
    ) -> Result<(Provisioner, Fetched), Failure> {
        match self {
            Identity::Credentials(credentials) => {
                let (caller, fetched) = authenticate_with(store, credentials, wanted).await?;
                Ok((Provisioner::global(caller), fetched))
            }
            Identity::Tenant { credentials, slug } => {
                authenticate_tenant(store, credentials, slug, wanted).await
            }
            Identity::Caller(caller) => Ok((
                Provisioner::global(caller.clone()),
                store.fetch(&wanted).await?,
            )),
            Identity::Provisioner(p) => Ok((p.clone(), store.fetch(&wanted).await?)),
        }
    }

    /// The provisioner ([`Identity::resolve_provisioner`]), once it may
    /// provision at the base it came through ([`Provisioner::admitted`]):
    /// a global admin, or the tenant's own credential. `F` is the
    /// operation's failure, which says both why not.
    pub async fn provisioner<F>(
        self,
        store: &Store,
        wanted: Wanted,
    ) -> Result<(Provisioner, Fetched), F>
    where
        F: From<Failure> + From<Denied>,
    {
        let (provisioner, fetched) = self.resolve_provisioner(store, wanted).await?;
        provisioner.admitted(self.tenant_base())?;
        Ok((provisioner, fetched))
    }

    /// The org whose SCIM base the identity came through, if it came
    /// through one.
    pub fn tenant_base(&self) -> Option<&str> {
        match self {
            Identity::Tenant { slug, .. } => Some(slug),
            _ => None,
        }
    }
}

/// Reads `Authorization: Token|Bearer|Basic …` (scheme case-insensitive) or
/// `Genestack-API-Token: …`.
pub fn credentials(headers: &HeaderMap) -> Credentials {
    if let Some(value) = headers.get("genestack-api-token") {
        return match value.to_str().map(str::trim) {
            Ok(t) if !t.is_empty() => Credentials::Token(t.to_string()),
            _ => Credentials::Malformed("Invalid token header. No credentials provided."),
        };
    }
    let Some(value) = headers.get("authorization") else {
        return Credentials::None;
    };
    let Ok(value) = value.to_str() else {
        return Credentials::Malformed(
            "Invalid token header. Token string should not contain invalid characters.",
        );
    };
    let mut parts = value.split_whitespace();
    let scheme = parts.next().unwrap_or_default().to_ascii_lowercase();
    let rest: Vec<&str> = parts.collect();
    match scheme.as_str() {
        "token" | "bearer" => match rest.as_slice() {
            [] => Credentials::Malformed("Invalid token header. No credentials provided."),
            [token] => Credentials::Token(token.to_string()),
            _ => Credentials::Malformed(
                "Invalid token header. Token string should not contain spaces.",
            ),
        },
        "basic" => {
            let [encoded] = rest.as_slice() else {
                return Credentials::Malformed("Invalid basic header. No credentials provided.");
            };
            let decoded = STANDARD
                .decode(encoded)
                .ok()
                .and_then(|b| String::from_utf8(b).ok());
            match decoded.as_deref().and_then(|d| d.split_once(':')) {
                Some((u, p)) => Credentials::Basic {
                    username: u.to_string(),
                    password: p.to_string(),
                },
                None => Credentials::Malformed(
                    "Invalid basic header. Credentials not correctly base64 encoded.",
                ),
            }
        }
        _ => Credentials::None,
    }
}

pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A new token for `user_id`: 32 random bytes, URL-safe.
pub fn generate_token(user_id: u64) -> String {
    let mut secret = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut secret);
    format!("{user_id}.{}", URL_SAFE_NO_PAD.encode(secret))
}

/// What starts a tenant token: `org<org id>.<secret>`.
const TENANT_TOKEN_PREFIX: &str = "org";

/// A new tenant token of org `org_id`: 32 random bytes, URL-safe.
pub fn generate_tenant_token(org_id: u64) -> String {
    format!("{TENANT_TOKEN_PREFIX}{}", generate_token(org_id))
}

/// The org id a tenant token claims to belong to, if it has the right shape.
pub fn token_org_id(token: &str) -> Option<u64> {
    token_user_id(token.strip_prefix(TENANT_TOKEN_PREFIX)?)
}

/// Mints a tenant token of `org` (as `store.tenants().get` read it): stores
/// its hash with `spec` (read-only, expiry) on the org item and its token
/// item, in one transaction, and returns the token. What `usersctl org
/// scim-token` prints; an OAuth access token is one with a one-hour expiry.
/// `Conflict`: the org was deleted meanwhile.
pub async fn mint_tenant_token(
    store: &Store,
    org: &TenantOrg,
    spec: &TokenSpec,
) -> Result<String, StoreError> {
    let token = generate_tenant_token(org.id);
    store
        .tenants()
        .add_token(org, &hash_token(&token), spec)
        .await?;
    Ok(token)
}

/// Authenticates a request under the tenant base of org `slug`, reading
/// what `wanted` names and the org item in the same one batch read.
///
/// A tenant token is good when the org item of `slug` lists its hash,
/// unexpired, and the org's id is the one the token names: a token of
/// another org, an unknown or deleted slug and a wrong secret are all the
/// same 401. Any other credentials authenticate as at the global base; the
/// provisioner then names the tenant when the org exists (a person must be
/// an admin to provision there: the operation decides).
pub async fn authenticate_tenant(
    store: &Store,
    credentials: &Credentials,
    slug: &str,
    mut wanted: Wanted,
) -> Result<(Provisioner, Fetched), Failure> {
    wanted.tenant = Some(slug.to_string());
    let tenant_token = match credentials {
        Credentials::Token(token) => token_org_id(token).map(|org_id| (token, org_id)),
        _ => None,
    };
    let Some((token, org_id)) = tenant_token else {
        let (caller, fetched) = authenticate_with(store, credentials, wanted).await?;
        let tenant = fetched.tenant().map(TenantOrg::tenant);
        return Ok((
            Provisioner {
                acting: Acting::Person(Box::new(caller.user)),
                read_only: caller.read_only,
                tenant,
            },
            fetched,
        ));
    };
    let invalid = || Failure::Unauthenticated(AuthError::InvalidToken);
    if token.len() > MAX_TOKEN_BYTES || !crate::store::valid_slug(slug) {
        return Err(invalid());
    }
    let fetched = store.fetch(&wanted).await?;
    let org = fetched
        .tenant()
        .filter(|org| org.id == org_id)
        .ok_or_else(invalid)?;
    let listed = org
        .token(&hash_token(token), chrono::Utc::now().timestamp())
        .ok_or_else(invalid)?;
    let provisioner = Provisioner {
        acting: Acting::Org,
        read_only: listed.read_only,
        tenant: Some(org.tenant()),
    };
    Ok((provisioner, fetched))
}

/// The user id a token claims to belong to, if it has the right shape.
pub fn token_user_id(token: &str) -> Option<u64> {
    let (id, secret) = token.split_once('.')?;
    (!secret.is_empty()).then_some(())?;
    id.parse().ok()
}

pub fn hash_password(password: &str) -> String {
    let salt = SaltString::generate(&mut rand::thread_rng());
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 with default parameters hashes any input")
        .to_string()
}

/// Whether `password` matches the Argon2 `hash`. Runs Argon2 exactly once,
/// whatever `hash` is: a stored hash that cannot be read is checked as the
/// dummy hash is, so it costs what a real one does (and never matches).
pub fn verify_password(password: &str, hash: &str) -> bool {
    let (parsed, real) = match PasswordHash::new(hash) {
        Ok(h) => (h, true),
        Err(_) => (
            PasswordHash::new(dummy_hash()).expect("the dummy hash is a PHC string"),
            false,
        ),
    };
    VERIFICATIONS.fetch_add(1, Ordering::Relaxed);
    let matched = Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok();
    matched && real
}

/// Argon2 verifications this process has run: what tests count to show that
/// an unknown name, a user without a password and a wrong password all do
/// the same work.
static VERIFICATIONS: AtomicU64 = AtomicU64::new(0);

pub fn password_verifications() -> u64 {
    VERIFICATIONS.load(Ordering::Relaxed)
}

/// What a password is checked against when there is no real hash to check
/// (an unknown name, a user without a password), so that the answer takes
/// as long as a wrong password does: an Argon2id hash with the default
/// parameters of a random secret, made once per container.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let mut secret = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut secret);
        hash_password(&hex::encode(secret))
    })
}

/// Runs Argon2 once against the dummy hash; never matches.
fn verify_dummy(password: &str) {
    verify_password(password, dummy_hash());
}

/// (user id, SHA-256 of the password) → the stored hash it matched, and when.
type VerifiedPasswords = HashMap<(u64, String), (String, Instant)>;
static VERIFIED: Mutex<Option<VerifiedPasswords>> = Mutex::new(None);

/// Checks `password` against the user's hash, from this container's cache of
/// recently verified passwords when it can. A user without a password costs
/// one Argon2 run against the dummy hash, like a wrong password.
fn verify_cached(user: &User, password: &str) -> bool {
    let Some(hash) = &user.password_hash else {
        verify_dummy(password);
        return false;
    };
    let cache_key = (user.id, hash_token(password));
    {
        let cache = VERIFIED.lock().expect("password cache lock");
        if let Some((stored, at)) = cache.as_ref().and_then(|c| c.get(&cache_key)) {
            if stored == hash && at.elapsed() < PASSWORD_CACHE_TTL {
                return true;
            }
        }
    }
    if !verify_password(password, hash) {
        return false;
    }
    let mut cache = VERIFIED.lock().expect("password cache lock");
    let cache = cache.get_or_insert_with(HashMap::new);
    cache.retain(|_, (_, at)| at.elapsed() < PASSWORD_CACHE_TTL);
    cache.insert(cache_key, (hash.clone(), Instant::now()));
    true
}

/// Authenticates the request and reads what `wanted` names in the same
/// strongly consistent batch read (Basic auth first reads the username's
/// claim, so it costs one read more). Returns the caller and what was found.
pub async fn authenticate(
    store: &Store,
    headers: &HeaderMap,
    wanted: Wanted,
) -> Result<(Caller, Fetched), Failure> {
    authenticate_with(store, &credentials(headers), wanted).await
}

/// [`authenticate`] with the credentials already read from the request.
pub async fn authenticate_with(
    store: &Store,
    credentials: &Credentials,
    wanted: Wanted,
) -> Result<(Caller, Fetched), Failure> {
    match credentials {
        Credentials::None => Err(Failure::Unauthenticated(AuthError::Missing)),
        Credentials::Malformed(why) => Err(Failure::Unauthenticated(AuthError::Malformed(why))),
        Credentials::Token(token) => token_login(store, token, wanted).await,
        Credentials::Basic { username, password } => {
            password_login(store, username, password, wanted).await
        }
    }
}

/// A token is good when it is listed on the user its prefix names, has not
/// expired, and that user is active. The user item is the authority: every
/// revocation removes the hash from it (in the same transaction that deletes
/// the token item), and it records each token's expiry and whether it is
/// read-only, so a request authenticates with that one item (one capacity
/// unit). A token issued before the user item recorded read-only-ness costs
/// one more read, of its token item.
async fn token_login(
    store: &Store,
    token: &str,
    mut wanted: Wanted,
) -> Result<(Caller, Fetched), Failure> {
    let invalid = || Failure::Unauthenticated(AuthError::InvalidToken);
    if token.len() > MAX_TOKEN_BYTES {
        return Err(invalid());
    }
    let user_id = token_user_id(token).ok_or_else(invalid)?;
    let hash = hash_token(token);
    wanted.users.push(user_id);
    let fetched = store.fetch(&wanted).await?;
    let now = chrono::Utc::now().timestamp();
    let user = fetched.user(user_id).ok_or_else(invalid)?;
    if !user.token_hashes.contains(&hash) {
        return Err(invalid());
    }
    if user.token_expiry.get(&hash).is_some_and(|at| *at <= now) {
        return Err(invalid());
    }
    let read_only = match user.token_read_only.get(&hash) {
        Some(read_only) => *read_only,
        None => {
            let stored = store
                .tokens()
                .get(&hash)
                .await?
                .filter(|t| t.owner == TokenOwner::User(user_id) && !t.is_expired(now))
                .ok_or_else(invalid)?;
            stored.read_only
        }
    };
    if !user.is_active {
        return Err(Failure::Unauthenticated(AuthError::Inactive));
    }
    let user = user.clone();
    Ok((Caller { user, read_only }, fetched))
}

/// Whether a user could have this name: not empty, at most 150 characters,
/// and short enough to be part of a key. Other names are refused without
/// reading anything (after the same Argon2 run as any wrong password).
fn possible_username(username: &str) -> bool {
    !username.is_empty()
        && username.chars().count() <= rules::MAX_NAME
        && table::fits(username)
        && table::fits(&rules::fold(username))
}

/// Basic auth. An unknown name, a user without a password and a wrong
/// password take the same path and cost the same: the claim read, the batch
/// read of `wanted`, one Argon2 run and one write recording the failure. So
/// neither the time nor the answer tells whether a name exists.
///
/// Failures are counted on the name's claim item (see `store::logins`): from
/// the fifth in a row the name is locked for a while, and every attempt
/// answers 429 without checking the password, even the right one.
async fn password_login(
    store: &Store,
    username: &str,
    password: &str,
    mut wanted: Wanted,
) -> Result<(Caller, Fetched), Failure> {
    let invalid = || Failure::Unauthenticated(AuthError::InvalidPassword);
    // The first Basic request of a container makes the dummy hash, whoever
    // it names, so that this cost tells nothing either.
    dummy_hash();
    if !possible_username(username) {
        verify_dummy(password);
        return Err(invalid());
    }
    let now = chrono::Utc::now().timestamp();
    let claim = store.logins().claim(username).await?;
    if let Some(retry_after) = claim.locked_for(now) {
        return Err(Failure::Locked { retry_after });
    }
    wanted.users.push(claim.owner.unwrap_or(NOBODY));
    let fetched = store.fetch(&wanted).await?;
    let user = claim.owner.and_then(|id| fetched.user(id));
    let verified = match user {
        Some(user) => verify_cached(user, password),
        None => {
            verify_dummy(password);
            false
        }
    };
    let Some(mut user) = user.filter(|_| verified).cloned() else {
        record_failure(store, username, &claim, now).await;
        return Err(invalid());
    };
    if !user.is_active {
        return Err(Failure::Unauthenticated(AuthError::Inactive));
    }
    if claim.failures > 0 {
        clear_failures(store, username).await;
    }
    refresh_last_login(store, &mut user).await;
    Ok((
        Caller {
            user,
            read_only: false,
        },
        fetched,
    ))
}

/// Counts a failed login. Best-effort: when DynamoDB fails here the answer
/// is still 401, and the failure is logged.
async fn record_failure(store: &Store, username: &str, claim: &LoginClaim, now: i64) {
    if let Err(e) = store.logins().record_failure(username, claim, now).await {
        let (kind, code) = e.log_fields();
        tracing::warn!(user_id = ?claim.owner, error_kind = kind, dynamodb_code = %code,
            cause = %e, "failed login not recorded");
    }
}

/// Forgets the failures before a successful login. Best-effort: they would
/// only lock the account again if more failures followed within the window.
async fn clear_failures(store: &Store, username: &str) {
    if let Err(e) = store.logins().clear_failures(username).await {
        let (kind, code) = e.log_fields();
        tracing::warn!(error_kind = kind, dynamodb_code = %code, cause = %e,
            "failed logins not cleared");
    }
}

/// Records a password login at most once an hour. A write on a read path is
/// best-effort: when it fails the request goes on, and the next login tries again.
async fn refresh_last_login(store: &Store, user: &mut User) {
    let stale = user
        .last_login
        .is_none_or(|t| chrono::Utc::now() - t > LAST_LOGIN_REFRESH);
    if !stale {
        return;
    }
    match store.users().record_login(user.id).await {
        Ok(at) => user.last_login = Some(at),
        Err(e) => {
            let (kind, code) = e.log_fields();
            tracing::warn!(user_id = user.id, error_kind = kind, dynamodb_code = %code, cause = %e,
                "last_login not recorded");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_http::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn reads_every_credential_form() {
        let basic = format!("Basic {}", STANDARD.encode("bob:s3:cret"));
        let cases: Vec<(HeaderMap, Credentials)> = vec![
            (headers(&[]), Credentials::None),
            (
                headers(&[("authorization", "Token 1.abc")]),
                Credentials::Token("1.abc".into()),
            ),
            (
                headers(&[("authorization", "bearer 1.abc")]),
                Credentials::Token("1.abc".into()),
            ),
            (
                headers(&[("authorization", "BEARER 1.abc")]),
                Credentials::Token("1.abc".into()),
            ),
            (
                headers(&[("genestack-api-token", "1.abc")]),
                Credentials::Token("1.abc".into()),
            ),
            (
                headers(&[("authorization", "Token")]),
                Credentials::Malformed("Invalid token header. No credentials provided."),
            ),
            (
                headers(&[("authorization", "Token a b")]),
                Credentials::Malformed(
                    "Invalid token header. Token string should not contain spaces.",
                ),
            ),
            (
                headers(&[("authorization", basic.as_str())]),
                Credentials::Basic {
                    username: "bob".into(),
                    password: "s3:cret".into(),
                },
            ),
            (
                headers(&[("authorization", "Basic !!!")]),
                Credentials::Malformed(
                    "Invalid basic header. Credentials not correctly base64 encoded.",
                ),
            ),
            (headers(&[("authorization", "Digest x")]), Credentials::None),
        ];
        for (h, want) in cases {
            assert_eq!(credentials(&h), want, "{h:?}");
        }
    }

    #[test]
    fn tokens_carry_their_user_and_hash_stably() {
        let t = generate_token(42);
        assert_eq!(token_user_id(&t), Some(42));
        assert!(t.len() > 40, "{t}");
        assert_ne!(generate_token(42), t);
        assert_eq!(hash_token(&t), hash_token(&t));
        assert_eq!(hash_token(&t).len(), 64);
        for bad in ["", "abc", "x.abc", "42.", ".abc"] {
            assert_eq!(token_user_id(bad), None, "{bad}");
        }
        // A tenant token names its org, and no user: anywhere but its
        // org's base it is an invalid token.
        let t = generate_tenant_token(3);
        assert!(t.starts_with("org3."), "{t}");
        assert_eq!(token_org_id(&t), Some(3));
        assert_eq!(token_user_id(&t), None);
        assert_eq!(token_org_id(&generate_token(3)), None);
    }

    #[test]
    fn passwords_verify_only_themselves() {
        let h = hash_password("correct horse");
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong", &h));
        assert!(!verify_password("x", "not a hash"));
    }
}
