//! Everything an admin API operation reads from its request, taken in one
//! step before anything runs.
use lambda_http::http::Method;
use lambda_http::Request;
use serde_json::{Map, Value};

use super::ApiError;
use crate::auth::{self, Credentials};
use crate::http::{self, QueryParams};
use crate::runtime::Ctx;

pub struct AdminRequest {
    /// Whether `Accept` allows this API's media type: checked before
    /// authentication, as DRF does.
    pub accept: Result<(), ApiError>,
    pub credentials: Credentials,
    /// The `{id}` of a detail route, read as Django's `int()` reads it.
    pub id: Option<u64>,
    pub query: QueryParams,
    /// CVAT's `X-Organization` header.
    pub x_organization: Option<String>,
    pub origin: String,
    pub method: Method,
    pub path: String,
    body: Option<Result<Map<String, Value>, ApiError>>,
}

impl AdminRequest {
    pub fn extract(ctx: &Ctx, req: &Request) -> AdminRequest {
        AdminRequest {
            accept: negotiate(req),
            credentials: auth::credentials(req.headers()),
            id: http::path_id(req, http::Ids::Digits),
            query: http::query_pairs(req),
            x_organization: http::header_str(req.headers(), "x-organization").map(str::to_string),
            origin: ctx.origin(req),
            method: req.method().clone(),
            path: req.uri().path().to_string(),
            body: (req.method() == Method::PATCH).then(|| json_body(req)),
        }
    }

    /// The JSON object a PATCH sent (empty when it sent nothing), or why it
    /// cannot be read.
    pub fn body(&self) -> Result<Map<String, Value>, ApiError> {
        self.body.clone().unwrap_or_else(|| Ok(Map::new()))
    }
}

/// `Accept` must allow our media type (`*/*`, `application/json` or
/// `application/vnd.cvat+json`, optionally `; version=2.0`).
fn negotiate(req: &Request) -> Result<(), ApiError> {
    let Some(accept) = http::header_str(req.headers(), "accept") else {
        return Ok(());
    };
    let mut bad_version = false;
    for range in accept.split(',') {
        let mut parts = range.split(';').map(str::trim);
        let media = parts.next().unwrap_or_default().to_ascii_lowercase();
        if !matches!(
            media.as_str(),
            "*/*" | "application/*" | "application/json" | "application/vnd.cvat+json"
        ) {
            continue;
        }
        let version = parts
            .filter_map(|p| p.split_once('='))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("version"))
            .map(|(_, v)| v.trim().trim_matches('"'));
        match version {
            None | Some("2.0") => return Ok(()),
            Some(_) => bad_version = true,
        }
    }
    if bad_version {
        Err(ApiError::NotAcceptable(
            "Invalid version in \"Accept\" header.",
        ))
    } else {
        Err(ApiError::NotAcceptable(
            "Could not satisfy the request Accept header.",
        ))
    }
}

/// A PATCH body: a JSON object, as DRF's parser and serializer take it.
fn json_body(req: &Request) -> Result<Map<String, Value>, ApiError> {
    let bytes = http::body_bytes(req).map_err(|_| ApiError::TooLarge)?;
    if bytes.is_empty() {
        return Ok(Map::new());
    }
    match http::content_type(req.headers()) {
        Some(ct) if ct == "application/json" || ct.ends_with("+json") => {}
        other => return Err(ApiError::UnsupportedMediaType(other.unwrap_or_default())),
    }
    let value: Value = serde_json::from_slice(bytes).map_err(|e| ApiError::Parse(e.to_string()))?;
    match value {
        Value::Object(map) => Ok(map),
        other => Err(ApiError::Fields(vec![(
            "non_field_errors".into(),
            vec![format!(
                "Invalid data. Expected a dictionary, but got {}.",
                match other {
                    Value::Array(_) => "list",
                    Value::String(_) => "str",
                    Value::Number(_) => "int",
                    Value::Bool(_) => "bool",
                    _ => "NoneType",
                }
            )],
        )])),
    }
}
