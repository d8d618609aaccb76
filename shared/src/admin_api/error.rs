//! Every admin API error becomes a DRF-shaped response here, and only here.
use lambda_http::http::{HeaderValue, StatusCode};
use lambda_http::{Body, Response};
use serde_json::{json, Map, Value};

use super::CONTENT_TYPE;
use crate::auth::{AuthError, Failure};
use crate::http;
use crate::store::StoreError;

#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    NotAuthenticated(AuthError),
    #[error("{0}")]
    PermissionDenied(&'static str),
    #[error("{0}")]
    NotFound(String),
    #[error("Method \"{0}\" not allowed.")]
    MethodNotAllowed(String, &'static str),
    #[error("{0}")]
    NotAcceptable(&'static str),
    #[error("Unsupported media type \"{0}\" in request.")]
    UnsupportedMediaType(String),
    #[error("JSON parse error - {0}")]
    Parse(String),
    /// Serializer errors: field → messages, in field order.
    #[error("invalid fields")]
    Fields(Vec<(String, Vec<String>)>),
    /// A bare validation error: a JSON array of messages.
    #[error("invalid request")]
    List(Vec<String>),
    #[error("Request body is larger than 1 MiB.")]
    TooLarge,
    /// Too many failed password logins with this username: DRF's `Throttled`,
    /// with the seconds left of the lock (also in `Retry-After`).
    #[error("Request was throttled. Expected available in {0} second{plural}.", plural = if *.0 == 1 { "" } else { "s" })]
    Throttled(u64),
    /// Every retry lost the optimistic-lock race to other writes of the same user.
    #[error("The user was changed by other requests at the same time; try again.")]
    Conflict,
    /// DynamoDB unavailable (503, with `Retry-After`) or a server fault (500).
    #[error("{}", if .0.retry_after.is_some() { UNAVAILABLE } else { "A server error occurred." })]
    Server(http::Fault),
}

/// DRF's `ServiceUnavailable` message.
const UNAVAILABLE: &str = "Service temporarily unavailable, try again later.";

pub const NO_PERMISSION: &str = "You do not have permission to perform this action.";
pub const UNKNOWN_FIELD: &str = "Attempted to update an unknown field";

impl ApiError {
    pub fn not_found() -> ApiError {
        ApiError::NotFound("Not found.".into())
    }

    pub fn field(name: &str, message: &str) -> ApiError {
        ApiError::Fields(vec![(name.to_string(), vec![message.to_string()])])
    }

    fn status(&self) -> StatusCode {
        match self {
            ApiError::NotAuthenticated(_) => StatusCode::UNAUTHORIZED,
            ApiError::PermissionDenied(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(..) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::NotAcceptable(_) => StatusCode::NOT_ACCEPTABLE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Parse(_) | ApiError::Fields(_) | ApiError::List(_) => StatusCode::BAD_REQUEST,
            ApiError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Conflict => StatusCode::CONFLICT,
            ApiError::Throttled(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Server(fault) => fault.status(),
        }
    }

    /// A bug in this code: 500, with the cause in the log only.
    pub fn internal(detail: impl Into<String>) -> ApiError {
        ApiError::Server(http::Fault::bug(detail))
    }

    pub fn into_response(self) -> Response<Body> {
        let body = match &self {
            ApiError::Fields(fields) => {
                let map: Map<String, Value> =
                    fields.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
                Value::Object(map)
            }
            ApiError::List(messages) => json!(messages),
            other => json!({ "detail": other.to_string() }),
        };
        let mut resp = http::json(self.status(), CONTENT_TYPE, &body);
        match self {
            ApiError::NotAuthenticated(_) => {
                resp.headers_mut()
                    .insert("www-authenticate", HeaderValue::from_static("Token"));
            }
            ApiError::MethodNotAllowed(_, allow) => {
                resp.headers_mut()
                    .insert("allow", HeaderValue::from_static(allow));
            }
            ApiError::Throttled(secs) => {
                resp.headers_mut()
                    .insert("retry-after", HeaderValue::from(secs));
            }
            ApiError::Server(fault) => fault.attach(&mut resp),
            _ => {}
        }
        resp
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict => ApiError::Conflict,
            StoreError::NotFound => ApiError::not_found(),
            other => ApiError::Server(http::Fault::from_store(&other)),
        }
    }
}

impl From<Failure> for ApiError {
    fn from(f: Failure) -> Self {
        match f {
            Failure::Unauthenticated(e) => ApiError::NotAuthenticated(e),
            Failure::Locked { retry_after } => ApiError::Throttled(retry_after),
            Failure::Store(e) => e.into(),
        }
    }
}

impl crate::http::ErrorResponse for ApiError {
    fn into_response(self) -> Response<Body> {
        ApiError::into_response(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_locked_name_is_drfs_throttled_with_retry_after() {
        for (secs, detail) in [
            (1, "Request was throttled. Expected available in 1 second."),
            (
                30,
                "Request was throttled. Expected available in 30 seconds.",
            ),
        ] {
            let resp = ApiError::from(Failure::Locked { retry_after: secs }).into_response();
            assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
            assert_eq!(resp.headers()["retry-after"], secs.to_string().as_str());
            assert!(resp.headers().get("www-authenticate").is_none());
            let Body::Text(body) = resp.body() else {
                panic!("text body")
            };
            assert_eq!(body, &json!({ "detail": detail }).to_string());
        }
    }
}
