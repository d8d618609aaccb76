//! HTTP plumbing both APIs share: request ids, absolute URLs, query strings,
//! bodies and JSON responses.
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use lambda_http::http::{header, HeaderMap, HeaderValue, StatusCode};
use lambda_http::{service_fn, Body, Request, RequestExt, Response};

use crate::config::Config;
pub use crate::domain::profile::Profile;
use crate::store::{client_from_env, Store};

/// Bodies larger than this (1 MiB) are refused with 413, before they are parsed.
pub const MAX_BODY: usize = 1024 * 1024;

/// The query string as ordered, decoded pairs. Taken from the URI when it has
/// one (it keeps order and repeats); else from the API Gateway parameters.
pub fn query_pairs(req: &Request) -> QueryParams {
    if let Some(q) = req.uri().query().filter(|q| !q.is_empty()) {
        return QueryParams(form_urlencoded::parse(q.as_bytes()).into_owned().collect());
    }
    let params = req.query_string_parameters();
    let mut pairs: Vec<(String, String)> = params
        .iter()
        .flat_map(|(k, _)| {
            params
                .all(k)
                .unwrap_or_default()
                .into_iter()
                .map(move |v| (k.to_string(), v.to_string()))
        })
        .collect();
    pairs.sort_by(|a, b| a.0.cmp(&b.0));
    QueryParams(pairs)
}

/// A request's query parameters, in order, repeats kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryParams(pub Vec<(String, String)>);

impl QueryParams {
    /// The last value of a repeated parameter, as both APIs read one (Django's
    /// `QueryDict.get`).
    pub fn last(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

impl std::ops::Deref for QueryParams {
    type Target = [(String, String)];

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

/// A route parameter (`{id}`), or the last path segment when the request did
/// not come through a router (a function URL, a direct invoke).
pub fn path_param(req: &Request, name: &str) -> Option<String> {
    match req.path_parameters().first(name) {
        Some(v) => Some(v.to_string()),
        None => req.uri().path().rsplit('/').next().map(str::to_string),
    }
}

pub fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Where this API is reached from outside, for `Location`, `meta.location`
/// and pagination links: `configured` (`PUBLIC_BASE_URL`, the template's
/// `PublicBaseUrl` parameter; `make dev` sets the local address), else the
/// domain API Gateway received the request on (HTTPS), else — a request
/// that came through no gateway — its `Host`. Never a client's
/// `X-Forwarded-Host` or `X-Forwarded-Proto`: links must not point where a
/// client says.
pub fn base_url(req: &Request, configured: Option<&str>) -> String {
    if let Some(base) = configured {
        return base.to_string();
    }
    if let Some(lambda_http::request::RequestContext::ApiGatewayV2(c)) = req.request_context_ref() {
        if let Some(domain) = c.domain_name.as_deref().filter(|d| valid_host(d)) {
            return format!("https://{domain}");
        }
    }
    origin(req.headers())
}

fn valid_host(host: &str) -> bool {
    !host.is_empty()
        && host.bytes().all(|b| b.is_ascii_graphic())
        && !host.contains(['/', '?', '#', '@'])
}

/// The local fallback of [`base_url`]: `http://` and the `Host` header.
fn origin(headers: &HeaderMap) -> String {
    let host = header_str(headers, "host")
        .map(str::trim)
        .filter(|h| valid_host(h))
        .unwrap_or("localhost");
    format!("http://{host}")
}

/// A body over [`MAX_BODY`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLarge;

/// The request body as bytes, refused when it is over [`MAX_BODY`].
pub fn body_bytes(req: &Request) -> Result<&[u8], TooLarge> {
    let bytes: &[u8] = match req.body() {
        Body::Empty => &[],
        Body::Text(t) => t.as_bytes(),
        Body::Binary(b) => b,
        _ => &[],
    };
    if bytes.len() > MAX_BODY {
        Err(TooLarge)
    } else {
        Ok(bytes)
    }
}

/// The media type of the request body, lower-cased, without parameters.
pub fn content_type(headers: &HeaderMap) -> Option<String> {
    header_str(headers, "content-type").map(|ct| {
        ct.split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase()
    })
}

pub fn json(
    status: StatusCode,
    content_type: &'static str,
    body: &serde_json::Value,
) -> Response<Body> {
    let mut resp = Response::new(Body::Text(body.to_string()));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

/// The server-side reason a request failed (503 or 500): its kind and DynamoDB
/// code go in the request's log line; `detail` goes to the log only, never to
/// the client, and `retry_after` becomes the `Retry-After` header of a 503.
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    pub kind: &'static str,
    pub code: String,
    pub detail: String,
    pub retry_after: Option<u64>,
}

impl Fault {
    /// What a store failure tells the client: `Some(retry_after)` when it may
    /// try again (503), `None` when it is a server fault (500).
    pub fn from_store(err: &crate::store::StoreError) -> Fault {
        let (kind, code) = err.log_fields();
        let retry_after = match err {
            crate::store::StoreError::Unavailable(u) => Some(u.kind.retry_after()),
            _ => None,
        };
        Fault {
            kind,
            code,
            detail: err.to_string(),
            retry_after,
        }
    }

    /// A bug in this code (a route that reaches the wrong function, say).
    pub fn bug(detail: impl Into<String>) -> Fault {
        Fault {
            kind: "bug",
            code: String::new(),
            detail: detail.into(),
            retry_after: None,
        }
    }

    pub fn status(&self) -> StatusCode {
        if self.retry_after.is_some() {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            StatusCode::INTERNAL_SERVER_ERROR
        }
    }

    /// Stamps `Retry-After` on a 503 and keeps the fault with the response for
    /// the request's log line ([`dispatch`] reads it).
    pub fn attach(self, resp: &mut Response<Body>) {
        if let Some(secs) = self.retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp.extensions_mut().insert(self);
    }
}

pub fn empty(status: StatusCode) -> Response<Body> {
    let mut resp = Response::new(Body::Empty);
    *resp.status_mut() = status;
    resp
}

/// An API's error type: how it is answered (DRF JSON on `/api/users`, a SCIM
/// Error on `/api/v1/scim`).
pub trait ErrorResponse {
    fn into_response(self) -> Response<Body>;
}

/// The response of a handler's result: the response, or its error answered
/// in its API's format.
pub fn respond<E: ErrorResponse>(result: Result<Response<Body>, E>) -> Response<Body> {
    result.unwrap_or_else(ErrorResponse::into_response)
}

/// How a detail route reads the `{id}` in its path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ids {
    /// Any decimal digits, as Django's `int()` reads them (`007` is 7).
    Digits,
    /// Only an id as responses write it: `007` names no user (SCIM ids are
    /// strings, compared exactly).
    Canonical,
}

/// The `{id}` of a detail route (from the route parameters, else the last
/// path segment), as a user or group id; `None` when it cannot be one.
pub fn path_id(req: &Request, ids: Ids) -> Option<u64> {
    let raw = path_param(req, "id")?;
    match ids {
        Ids::Canonical => crate::domain::canonical_id(&raw),
        Ids::Digits => raw.parse().ok(),
    }
}

// ------------------------------------------------------------ runtime
// What every Lambda binary does: set up logging, build the store once, and
// wrap each request with its request id and its log line.

/// What a handler gets: the store (with per-request counters), the request id
/// and the container's configuration, read once when it started.
#[derive(Clone)]
pub struct Ctx {
    pub store: Store,
    pub request_id: String,
    pub config: Arc<Config>,
}

impl Ctx {
    /// A context over `store` with the local defaults (no `PUBLIC_BASE_URL`,
    /// the development cursor key): what tests and tools run with.
    pub fn new(store: Store, profile: Profile) -> Ctx {
        let config = Config::local(store.table(), profile, *store.budget());
        Ctx::with_config(store, config)
    }

    pub fn with_config(store: Store, config: Config) -> Ctx {
        Ctx {
            store,
            request_id: String::new(),
            config: Arc::new(config),
        }
    }

    /// The configuration the environment describes ([`Config::from_env`]);
    /// a bad setting stops the function at start rather than serving wrongly.
    pub async fn from_env() -> Result<Ctx, lambda_http::Error> {
        let config = Config::from_env()?;
        let store = Store::new(client_from_env().await, &config.table).with_budget(config.budget);
        Ok(Ctx::with_config(store, config))
    }

    /// A context for one request: fresh DynamoDB counters, its own id.
    pub fn for_request(&self, request_id: impl Into<String>) -> Ctx {
        Ctx {
            store: self.store.for_request(),
            request_id: request_id.into(),
            config: Arc::clone(&self.config),
        }
    }

    /// Where this API is reached from outside, for this request
    /// ([`base_url`] with the configured `PUBLIC_BASE_URL`).
    pub fn origin(&self, req: &Request) -> String {
        base_url(req, self.config.public_base_url.as_deref())
    }
}

/// JSON logs, level from `RUST_LOG` (default `info`), no ANSI colours.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_env_filter(filter)
        .with_current_span(false)
        .with_span_list(false)
        .with_target(false)
        .without_time()
        .try_init();
}

/// Runs one handler as a Lambda function.
pub async fn serve<F, Fut>(handler: F) -> Result<(), lambda_http::Error>
where
    F: Fn(Ctx, Request) -> Fut + Sync,
    Fut: Future<Output = Response<Body>> + Send,
{
    init_logging();
    let base = Ctx::from_env().await?;
    let handler = &handler;
    let base = &base;
    lambda_http::run(service_fn(move |req: Request| async move {
        Ok::<_, std::convert::Infallible>(dispatch(base, req, handler).await)
    }))
    .await
}

/// One request: assigns its id, runs the handler, stamps `X-Request-Id` and
/// writes the request's log line (never its body or credentials).
pub async fn dispatch<F, Fut>(base: &Ctx, req: Request, handler: F) -> Response<Body>
where
    F: Fn(Ctx, Request) -> Fut + Sync,
    Fut: Future<Output = Response<Body>>,
{
    let started = Instant::now();
    let request_id = req
        .lambda_context_ref()
        .map(|c| c.request_id.clone())
        .filter(|id| !id.is_empty())
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let ctx = base.for_request(request_id.clone());
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    // Boxed: a handler's future is large (debug builds keep every await's
    // state), and it must not sit on the runtime thread's stack.
    let mut resp = Box::pin(handler(ctx.clone(), req)).await;
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        resp.headers_mut().insert("x-request-id", v);
    }
    let metrics = ctx.store.metrics();
    let route = format!("{method} {path}");
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    match resp.extensions_mut().remove::<Fault>() {
        // Why the request failed: the kind and DynamoDB's code, so an operator
        // tells throttling from a bug without reading the cause.
        Some(fault) => tracing::warn!(
            request_id = %request_id,
            route = %route,
            status = resp.status().as_u16(),
            latency_ms,
            dynamodb_calls = metrics.calls(),
            consumed_capacity = metrics.capacity_units(),
            error_kind = fault.kind,
            dynamodb_code = %fault.code,
            cause = %fault.detail,
            "request"
        ),
        None => tracing::info!(
            request_id = %request_id,
            route = %route,
            status = resp.status().as_u16(),
            latency_ms,
            dynamodb_calls = metrics.calls(),
            consumed_capacity = metrics.capacity_units(),
            "request"
        ),
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_ignores_forwarding_headers() {
        let mut h = HeaderMap::new();
        assert_eq!(origin(&h), "http://localhost");
        h.insert("host", HeaderValue::from_static("api.local:9000"));
        assert_eq!(origin(&h), "http://api.local:9000");
        h.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        h.insert("x-forwarded-host", HeaderValue::from_static("evil.example"));
        assert_eq!(origin(&h), "http://api.local:9000");
        h.insert("host", HeaderValue::from_static("evil.example/path?"));
        assert_eq!(origin(&h), "http://localhost");
    }
}
