//! The container's configuration, read from the environment once, when the
//! function starts (never per request): a bad setting stops the function
//! then, instead of answering wrongly later.
use crate::domain::profile::Profile;
use crate::store::Budget;

/// The cursor signing key used when `CURSOR_SECRET` is unset: local
/// development and tests only. It is public (it is in this source), so anyone
/// could forge cursors with it — which exposes nothing a caller could not
/// list anyway, since a cursor only says where a list resumes and every
/// request is still authenticated, but deployments set `CURSOR_SECRET` so
/// that cursors stay opaque and bound to what issued them.
pub const DEVELOPMENT_CURSOR_KEY: &[u8] = b"directory development cursor key (set CURSOR_SECRET)";

#[derive(Debug, Clone)]
pub struct Config {
    /// `TABLE_NAME` (default `users`).
    pub table: String,
    /// `SCIM_PROFILE`: `odm` (default) or `rfc`.
    pub profile: Profile,
    /// `PUBLIC_BASE_URL`, without a trailing `/`: where clients reach the API,
    /// for `Location`, `meta.location` and page links. Unset: the domain API
    /// Gateway received the request on.
    pub public_base_url: Option<String>,
    /// `CURSOR_SECRET`: the key RFC 9865 cursors are signed with.
    pub cursor_key: Vec<u8>,
    /// Retries and time limits of DynamoDB calls (`DYNAMODB_RETRY_MODE`).
    pub budget: Budget,
    /// `SCIM_SECURITY_EVENTS`: `on` (default) shows RFC 9967's
    /// `securityEvents` in `ServiceProviderConfig`, `off` leaves it out, for
    /// clients that validate the document against RFC 7643 alone and refuse
    /// the attribute (scim2-models, and so scim2-cli and scim2-tester).
    pub advertise_security_events: bool,
}

impl Config {
    pub fn from_env() -> Result<Config, String> {
        let var = |name: &str| std::env::var(name).unwrap_or_default();
        let raw_profile = var("SCIM_PROFILE");
        let profile = Profile::parse(&raw_profile)
            .ok_or_else(|| format!("SCIM_PROFILE must be odm or rfc, not {raw_profile:?}"))?;
        let table = Some(var("TABLE_NAME"))
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| "users".to_string());
        let base = var("PUBLIC_BASE_URL");
        let events = var("SCIM_SECURITY_EVENTS");
        let advertise_security_events = match events.as_str() {
            "" | "on" => true,
            "off" => false,
            other => {
                return Err(format!(
                    "SCIM_SECURITY_EVENTS must be on or off, not {other:?}"
                ))
            }
        };
        Ok(Config {
            table,
            profile,
            public_base_url: Some(base.trim().trim_end_matches('/').to_string())
                .filter(|b| !b.is_empty()),
            cursor_key: cursor_key(&var("CURSOR_SECRET")),
            budget: Budget::from_env(),
            advertise_security_events,
        })
    }

    /// The local defaults over `table`: no public base URL, the development
    /// cursor key.
    pub fn local(table: &str, profile: Profile, budget: Budget) -> Config {
        Config {
            table: table.to_string(),
            profile,
            public_base_url: None,
            cursor_key: DEVELOPMENT_CURSOR_KEY.to_vec(),
            budget,
            advertise_security_events: true,
        }
    }
}

/// `CURSOR_SECRET`, else [`DEVELOPMENT_CURSOR_KEY`].
fn cursor_key(secret: &str) -> Vec<u8> {
    if secret.is_empty() {
        DEVELOPMENT_CURSOR_KEY.to_vec()
    } else {
        secret.as_bytes().to_vec()
    }
}
