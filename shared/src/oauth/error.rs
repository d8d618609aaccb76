//! The token endpoint's errors, in RFC 6749 §5.2's format:
//! `{"error": <code>, "error_description": <text>}`, never cached.
use lambda_http::http::{header, HeaderValue, StatusCode};
use lambda_http::{Body, Response};
use serde_json::json;

use crate::http::{ErrorResponse, Fault};
use crate::store::StoreError;

/// Why a token request failed, and what the client is told.
#[derive(Debug)]
pub enum OAuthError {
    /// `invalid_request` (400): a parameter missing, repeated or malformed,
    /// the wrong content type, or two ways of client authentication.
    InvalidRequest(String),
    /// `invalid_client`: client authentication failed (unknown client, wrong
    /// secret, none sent). `basic`: the client tried HTTP Basic (401 with
    /// `WWW-Authenticate: Basic`; so is a request with no authentication);
    /// else 400.
    InvalidClient { basic: bool },
    /// `unsupported_grant_type` (400): a `grant_type` other than
    /// `client_credentials`.
    UnsupportedGrantType(String),
    /// `invalid_scope` (400): a scope other than `scim` / `scim:read`, or
    /// `scim` asked of a read-only client.
    InvalidScope(String),
    /// Too many failed authentications with this client id: every attempt
    /// is refused for `retry_after` seconds (429, `invalid_client`).
    Locked { retry_after: u64 },
    /// 405: only POST.
    MethodNotAllowed(String),
    /// 413: a body over 1 MiB.
    TooLarge,
    /// DynamoDB failed: 503 `temporarily_unavailable` with `Retry-After`,
    /// or 500 `server_error` for a fault retrying will not fix.
    Store(StoreError),
}

impl From<StoreError> for OAuthError {
    fn from(e: StoreError) -> Self {
        OAuthError::Store(e)
    }
}

/// The answer every token endpoint response carries: never stored by a
/// cache (RFC 6749 §5.1).
pub(super) fn no_store(resp: &mut Response<Body>) {
    let headers = resp.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

/// The realm the token endpoint names in `WWW-Authenticate`.
const CHALLENGE: &str = "Basic realm=\"oauth\", charset=\"UTF-8\"";

impl ErrorResponse for OAuthError {
    fn into_response(self) -> Response<Body> {
        let (status, code, description) = match &self {
            OAuthError::InvalidRequest(why) => {
                (StatusCode::BAD_REQUEST, "invalid_request", why.clone())
            }
            OAuthError::InvalidClient { basic } => (
                if *basic {
                    StatusCode::UNAUTHORIZED
                } else {
                    StatusCode::BAD_REQUEST
                },
                "invalid_client",
                "Client authentication failed.".to_string(),
            ),
            OAuthError::UnsupportedGrantType(grant) => (
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                format!("Grant type {grant:?} is not supported: use \"client_credentials\"."),
            ),
            OAuthError::InvalidScope(why) => {
                (StatusCode::BAD_REQUEST, "invalid_scope", why.clone())
            }
            OAuthError::Locked { retry_after } => (
                StatusCode::TOO_MANY_REQUESTS,
                "invalid_client",
                format!(
                    "Too many failed client authentications. Expected available in {retry_after} seconds."
                ),
            ),
            OAuthError::MethodNotAllowed(method) => (
                StatusCode::METHOD_NOT_ALLOWED,
                "invalid_request",
                format!("Method \"{method}\" not allowed: the token endpoint takes POST."),
            ),
            OAuthError::TooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "invalid_request",
                "Request body is larger than 1 MiB.".to_string(),
            ),
            OAuthError::Store(e) => {
                let fault = Fault::from_store(e);
                let (code, description) = if fault.retry_after.is_some() {
                    (
                        "temporarily_unavailable",
                        "The service is busy; try again later.",
                    )
                } else {
                    ("server_error", "The server failed to answer the request.")
                };
                let mut resp = crate::http::json(
                    fault.status(),
                    "application/json",
                    &json!({"error": code, "error_description": description}),
                );
                no_store(&mut resp);
                fault.attach(&mut resp);
                return resp;
            }
        };
        let mut resp = crate::http::json(
            status,
            "application/json",
            &json!({"error": code, "error_description": description}),
        );
        no_store(&mut resp);
        let headers = resp.headers_mut();
        match &self {
            OAuthError::InvalidClient { basic: true } => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(CHALLENGE),
                );
            }
            OAuthError::Locked { retry_after } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after));
            }
            OAuthError::MethodNotAllowed(_) => {
                headers.insert(header::ALLOW, HeaderValue::from_static("POST"));
            }
            _ => {}
        }
        resp
    }
}
