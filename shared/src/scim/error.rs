//! Every SCIM error becomes an RFC 7644 §3.12 Error response here, and only here.
use lambda_http::http::{HeaderValue, StatusCode};
use lambda_http::{Body, Response};
use serde_json::json;

use super::CONTENT_TYPE;
use crate::auth::Failure;
use crate::http;
use crate::store::StoreError;

pub const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

/// The `scimType` values of RFC 7644 §3.12 (and RFC 9865 §3) that this server uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScimType {
    InvalidFilter,
    TooMany,
    Uniqueness,
    Mutability,
    InvalidSyntax,
    InvalidPath,
    NoTarget,
    InvalidValue,
    /// RFC 9865: a cursor this server did not issue, or for another query.
    InvalidCursor,
    /// RFC 9865: a cursor older than `cursorTimeout`.
    ExpiredCursor,
}

impl ScimType {
    pub fn as_str(self) -> &'static str {
        match self {
            ScimType::InvalidFilter => "invalidFilter",
            ScimType::TooMany => "tooMany",
            ScimType::Uniqueness => "uniqueness",
            ScimType::Mutability => "mutability",
            ScimType::InvalidSyntax => "invalidSyntax",
            ScimType::InvalidPath => "invalidPath",
            ScimType::NoTarget => "noTarget",
            ScimType::InvalidValue => "invalidValue",
            ScimType::InvalidCursor => "invalidCursor",
            ScimType::ExpiredCursor => "expiredCursor",
        }
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{status} {detail}")]
pub struct ScimError {
    pub status: u16,
    pub scim_type: Option<ScimType>,
    pub detail: String,
    /// For a 503 or 500: why, for the log and `Retry-After`.
    pub fault: Option<http::Fault>,
    /// For a 429: the seconds to wait, sent as `Retry-After` (32 bits keep
    /// this error small; a lock lasts minutes).
    pub retry_after: Option<u32>,
}

impl ScimError {
    pub fn new(status: u16, scim_type: Option<ScimType>, detail: impl Into<String>) -> ScimError {
        ScimError {
            status,
            scim_type,
            detail: detail.into(),
            fault: None,
            retry_after: None,
        }
    }

    /// DynamoDB unavailable (503, `Retry-After`) or a server fault (500); the
    /// cause goes to the log, not to the client.
    pub fn server(fault: http::Fault) -> ScimError {
        let detail = if fault.retry_after.is_some() {
            "The directory is temporarily unavailable; try again later."
        } else {
            "A server error occurred."
        };
        ScimError {
            status: fault.status().as_u16(),
            scim_type: None,
            detail: detail.into(),
            fault: Some(fault),
            retry_after: None,
        }
    }

    /// 429: too many failed password logins with the username; the lock
    /// ends in `seconds`.
    pub fn locked(seconds: u64) -> ScimError {
        ScimError {
            retry_after: Some(u32::try_from(seconds).unwrap_or(u32::MAX)),
            ..ScimError::new(
                429,
                None,
                format!(
                    "Too many failed logins with this username; try again in {seconds} second{}.",
                    if seconds == 1 { "" } else { "s" }
                ),
            )
        }
    }

    /// 400 with a `scimType`.
    pub fn bad(scim_type: ScimType, detail: impl Into<String>) -> ScimError {
        ScimError::new(400, Some(scim_type), detail)
    }

    pub fn invalid_filter(detail: impl Into<String>) -> ScimError {
        ScimError::bad(ScimType::InvalidFilter, detail)
    }

    pub fn invalid_value(detail: impl Into<String>) -> ScimError {
        ScimError::bad(ScimType::InvalidValue, detail)
    }

    pub fn invalid_syntax(detail: impl Into<String>) -> ScimError {
        ScimError::bad(ScimType::InvalidSyntax, detail)
    }

    pub fn mutability(detail: impl Into<String>) -> ScimError {
        ScimError::bad(ScimType::Mutability, detail)
    }

    pub fn no_target(detail: impl Into<String>) -> ScimError {
        ScimError::bad(ScimType::NoTarget, detail)
    }

    pub fn invalid_path(detail: impl Into<String>) -> ScimError {
        ScimError::bad(ScimType::InvalidPath, detail)
    }

    pub fn uniqueness(detail: impl Into<String>) -> ScimError {
        ScimError::new(409, Some(ScimType::Uniqueness), detail)
    }

    pub fn not_found(detail: impl Into<String>) -> ScimError {
        ScimError::new(404, None, detail)
    }

    /// A global admin under the tenant base of an org that does not exist
    /// (an org's own token there is refused as any wrong token is).
    pub fn no_such_tenant(slug: &str) -> ScimError {
        ScimError::not_found(format!(
            "No organization {slug}: /api/v1/scim/orgs/{slug} is no tenant base."
        ))
    }

    /// Under a tenant base, a userName or email outside the org's domains.
    pub fn outside_domains(refused: &str, allowed: &str) -> ScimError {
        ScimError::invalid_value(format!(
            "\"{refused}\" is not in this organization's domains; allowed: {allowed}"
        ))
    }

    /// `/Me` under a tenant base: the org's credential is no user (RFC 7644
    /// §3.11), and a global admin there sees what the tenant sees.
    pub fn me_at_tenant() -> ScimError {
        ScimError::new(
            501,
            None,
            "/Me is not implemented under a tenant base: its credentials belong to the \
             organization, not to a user.",
        )
    }

    pub fn forbidden() -> ScimError {
        ScimError::new(
            403,
            None,
            "Managing users through SCIM needs the \"Manage organization\" permission (group admin).",
        )
    }

    pub fn read_only() -> ScimError {
        ScimError::new(403, None, "This token is read-only.")
    }

    /// The Error resource (RFC 7644 §3.12): what a response's body holds,
    /// and what a bulk operation's `response` does.
    pub fn to_json(&self) -> serde_json::Value {
        let mut body = json!({
            "schemas": [ERROR_SCHEMA],
            "status": self.status.to_string(),
        });
        if let Some(t) = self.scim_type {
            body["scimType"] = json!(t.as_str());
        }
        body["detail"] = json!(self.detail);
        body
    }

    pub fn into_response(self) -> Response<Body> {
        let body = self.to_json();
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut resp = http::json(status, CONTENT_TYPE, &body);
        if self.status == 401 {
            // Bearer only: a Basic challenge makes browsers prompt for
            // credentials and then send them on their own, to any page's request.
            resp.headers_mut().insert(
                "www-authenticate",
                HeaderValue::from_static("Bearer realm=\"scim\""),
            );
        }
        if let Some(secs) = self.retry_after {
            resp.headers_mut()
                .insert("retry-after", HeaderValue::from(secs));
        }
        if let Some(fault) = self.fault {
            fault.attach(&mut resp);
        }
        resp
    }
}

impl From<StoreError> for ScimError {
    fn from(e: StoreError) -> Self {
        match e {
            // The resource operations name their type (`ResourceType::conflict`,
            // `not_found`); these are for the rest.
            StoreError::Conflict => ScimError::new(
                409,
                None,
                "The resource was changed by other requests at the same time; try again.",
            ),
            StoreError::NotFound => ScimError::not_found("The resource was not found."),
            other => ScimError::server(http::Fault::from_store(&other)),
        }
    }
}

impl From<Failure> for ScimError {
    fn from(f: Failure) -> Self {
        match f {
            Failure::Unauthenticated(e) => ScimError::new(401, None, e.to_string()),
            Failure::Locked { retry_after } => ScimError::locked(retry_after),
            Failure::Store(e) => e.into(),
        }
    }
}

impl crate::http::ErrorResponse for ScimError {
    fn into_response(self) -> Response<Body> {
        ScimError::into_response(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_faults_do_not_leak_their_cause() {
        let e = ScimError::from(StoreError::Fault(
            "table users-prod: ValidationException".into(),
        ));
        assert_eq!(
            (e.status, e.detail.as_str()),
            (500, "A server error occurred.")
        );
        let e = ScimError::from(StoreError::Conflict);
        assert_eq!(e.status, 409);
    }

    #[test]
    fn a_locked_name_is_a_429_with_retry_after_and_a_401_challenges_bearer_only() {
        let resp = ScimError::from(Failure::Locked { retry_after: 1 }).into_response();
        assert_eq!(resp.status().as_u16(), 429);
        assert_eq!(resp.headers()["retry-after"], "1");
        let body: serde_json::Value = match resp.body() {
            Body::Text(t) => serde_json::from_str(t).unwrap(),
            _ => panic!("text body"),
        };
        assert_eq!(body["status"], "429");
        assert_eq!(
            body["detail"],
            "Too many failed logins with this username; try again in 1 second."
        );
        let resp = ScimError::from(Failure::Unauthenticated(crate::auth::AuthError::Missing))
            .into_response();
        assert_eq!(resp.headers()["www-authenticate"], "Bearer realm=\"scim\"");
        assert!(resp.headers().get("retry-after").is_none());
    }

    #[test]
    fn an_unavailable_store_is_a_503_with_retry_after() {
        use crate::store::{FaultKind, Unavailable};
        let e = ScimError::from(StoreError::Unavailable(Unavailable::new(
            FaultKind::Throttled,
            "ThrottlingException",
            "table users: rate exceeded",
        )));
        let resp = e.into_response();
        assert_eq!(resp.status().as_u16(), 503);
        assert_eq!(resp.headers()["retry-after"], "1");
        let body: serde_json::Value = match resp.body() {
            Body::Text(t) => serde_json::from_str(t).unwrap(),
            _ => panic!("text body"),
        };
        assert_eq!(body["status"], "503");
        assert_eq!(body["schemas"][0], ERROR_SCHEMA);
        assert!(!body["detail"].as_str().unwrap().contains("table users"));
    }
}
