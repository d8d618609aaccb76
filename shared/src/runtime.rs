//! What every Lambda binary does: set up logging, build the store once, and
//! wrap each request with its request id and its log line.
use std::future::Future;
use std::time::Instant;

use lambda_http::http::HeaderValue;
use lambda_http::{service_fn, Body, Request, RequestExt, Response};

use crate::http::Fault;
use crate::store::Store;

/// How the SCIM API resolves the three places where ODM and RFC 7644 disagree
/// (SPEC §4 "Profiles"). Set per deployment with `SCIM_PROFILE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Profile {
    /// POST of an existing userName updates it; inactive users are hidden; DELETE deactivates.
    #[default]
    Odm,
    /// 409 on an existing userName; inactive users shown; DELETE removes.
    Rfc,
}

impl Profile {
    pub fn parse(value: &str) -> Option<Profile> {
        match value.trim().to_ascii_lowercase().as_str() {
            "" | "odm" => Some(Profile::Odm),
            "rfc" => Some(Profile::Rfc),
            _ => None,
        }
    }
}

/// What a handler gets: the store (with per-request counters), the request id
/// and the deployment's SCIM profile.
#[derive(Clone)]
pub struct Ctx {
    pub store: Store,
    pub request_id: String,
    pub profile: Profile,
}

impl Ctx {
    pub fn new(store: Store, profile: Profile) -> Ctx {
        Ctx {
            store,
            request_id: String::new(),
            profile,
        }
    }

    /// The configuration the environment describes (see [`Store::from_env`]); an
    /// unknown `SCIM_PROFILE` stops the function at start rather than serving wrongly.
    pub async fn from_env() -> Result<Ctx, lambda_http::Error> {
        let raw = std::env::var("SCIM_PROFILE").unwrap_or_default();
        let profile = Profile::parse(&raw)
            .ok_or_else(|| format!("SCIM_PROFILE must be odm or rfc, not {raw:?}"))?;
        Ok(Ctx::new(Store::from_env().await, profile))
    }

    /// A context for one request: fresh DynamoDB counters, its own id.
    pub fn for_request(&self, request_id: impl Into<String>) -> Ctx {
        Ctx {
            store: self.store.for_request(),
            request_id: request_id.into(),
            profile: self.profile,
        }
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
