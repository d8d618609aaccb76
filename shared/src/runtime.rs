//! What every Lambda binary does: set up logging, build the store once, and
//! wrap each request with its request id and its log line.
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use lambda_http::http::HeaderValue;
use lambda_http::{service_fn, Body, Request, RequestExt, Response};

use crate::config::Config;
pub use crate::domain::profile::Profile;
use crate::http::{self, Fault};
use crate::store::{client_from_env, Store};

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
    /// ([`http::base_url`] with the configured `PUBLIC_BASE_URL`).
    pub fn origin(&self, req: &Request) -> String {
        http::base_url(req, self.config.public_base_url.as_deref())
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
