//! Change events: every write of a user or a group, read from the table's
//! DynamoDB stream (new and old images), published to the subscribers as
//! SCIM Security Event Tokens (RFC 9967 over RFC 8417, pushed per RFC 8935)
//! and, when a bus is configured, to EventBridge.
//!
//! - `change.rs`: an item's images before and after a write → domain events;
//! - `record.rs`: a Lambda stream batch → those events, record by record;
//! - `set.rs`: an event → the claims of its SET; `key.rs`: the signing key
//!   and its JWKS; `secret.rs`: where that key's secret is read from;
//! - `push.rs`: one SET to one receiver; `bus.rs`: EventBridge;
//! - `publish.rs`: a batch to everyone, and what is kept when a receiver is
//!   down (`usersctl events replay` resends it).
//!
//! This layer sits beside the APIs: it reads the store's items with the
//! store's own mapping and renders resources with the SCIM renderers, and
//! nothing below it imports it.
use std::sync::Arc;

use lambda_http::http::{HeaderValue, StatusCode};
use lambda_http::lambda_runtime::{self, LambdaEvent};
use lambda_http::{Body, Request, Response};
use tokio::sync::OnceCell;

use crate::config::Config;
use crate::http::{self, Ctx};
use crate::scim::ScimError;
use crate::store::{client_from_env, Store};

pub mod bus;
pub mod change;
pub mod follow;
pub mod key;
pub mod publish;
pub mod push;
pub mod record;
pub mod secret;
pub mod set;
#[cfg(test)]
mod tests;

pub use change::{Event, Kind};
pub use key::SigningKey;
pub use publish::{Publisher, Report};
pub use push::{check_url, Pusher};
pub use secret::KeySource;

/// The stream function's settings, read once when it starts, besides the
/// [`Config`] every function reads.
#[derive(Debug, Clone, Default)]
pub struct EventsConfig {
    /// `SET_SIGNING_SECRET_ARN`: the Secrets Manager secret the signing key
    /// is derived from (what the template sets).
    pub secret_arn: Option<String>,
    /// `SET_SIGNING_SECRET`: the secret itself (`make dev`, tests). Neither:
    /// [`key::DEVELOPMENT_SECRET`].
    pub secret: Option<String>,
    /// `EVENT_BUS_NAME`: the EventBridge bus to put events on; unset or
    /// empty: none.
    pub bus: Option<String>,
    /// `EVENTBRIDGE_ENDPOINT`: an endpoint speaking EventBridge's protocol
    /// instead of AWS's (tests).
    pub bus_endpoint: Option<String>,
    /// `API_URL`: where the API is reached when `PUBLIC_BASE_URL` is unset
    /// (the template passes the HTTP API's URL: the stream function has no
    /// request to read it from).
    pub api_url: Option<String>,
}

impl EventsConfig {
    pub fn from_env() -> EventsConfig {
        let var = |name: &str| {
            std::env::var(name)
                .ok()
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        EventsConfig {
            secret_arn: var("SET_SIGNING_SECRET_ARN"),
            secret: var("SET_SIGNING_SECRET"),
            bus: var("EVENT_BUS_NAME"),
            bus_endpoint: var("EVENTBRIDGE_ENDPOINT"),
            api_url: var("API_URL").map(|u| u.trim_end_matches('/').to_string()),
        }
    }

    /// Where the signing key comes from: the Secrets Manager secret this
    /// configuration names, else its secret, else the development secret.
    pub async fn key_source(&self) -> KeySource {
        match (&self.secret_arn, &self.secret) {
            (Some(arn), _) => {
                let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
                KeySource::secrets_manager(&sdk, arn)
            }
            (None, Some(secret)) => KeySource::secret(secret),
            (None, None) => KeySource::secret(key::DEVELOPMENT_SECRET),
        }
    }

    /// The bus to publish on, if one is configured.
    pub async fn bus(&self) -> Option<bus::Bus> {
        let name = self.bus.as_ref()?;
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if let Some(endpoint) = &self.bus_endpoint {
            loader = loader.endpoint_url(endpoint);
        }
        let client = aws_sdk_eventbridge::Client::new(&loader.load().await);
        Some(bus::Bus::new(client, name))
    }
}

/// The signing key's source, one per function instance (a cold start reads
/// Secrets Manager; a failure there is tried again on the next call).
async fn key_source(config: &EventsConfig) -> Arc<KeySource> {
    static SOURCE: OnceCell<Arc<KeySource>> = OnceCell::const_new();
    SOURCE
        .get_or_init(|| async { Arc::new(config.key_source().await) })
        .await
        .clone()
}

/// The `events-publish` function: a Lambda on the table's stream, answering
/// with the records to retry (`ReportBatchItemFailures`).
pub async fn serve_stream() -> Result<(), lambda_runtime::Error> {
    http::init_logging();
    let config = Config::from_env()?;
    let events = EventsConfig::from_env();
    let origin = config
        .public_base_url
        .clone()
        .or_else(|| events.api_url.clone())
        .unwrap_or_default();
    let store = Store::new(client_from_env().await, &config.table).with_budget(config.budget);
    let bus = events.bus().await;
    let events = &events;
    let store = &store;
    let bus = &bus;
    let origin = &origin;
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: LambdaEvent<aws_lambda_events::dynamodb::Event>| async move {
            let publisher = Publisher {
                store: store.for_request(),
                keys: key_source(events).await,
                pusher: shared_pusher().clone(),
                bus: bus.clone(),
                origin: origin.clone(),
                budget: publish::BUDGET,
            };
            let (response, _) = publisher.publish(&event.payload).await;
            Ok::<_, lambda_runtime::Error>(response)
        },
    ))
    .await
}

/// One HTTP client per instance, so connections to receivers are reused.
fn shared_pusher() -> &'static Pusher {
    static PUSHER: std::sync::OnceLock<Pusher> = std::sync::OnceLock::new();
    PUSHER.get_or_init(|| Pusher::new(push::Limits::LAMBDA))
}

/// `GET /api/v1/scim/.well-known/jwks.json`: the public key SETs are signed
/// with, as a JWK Set. Public (no credentials): it only lets receivers
/// verify.
pub async fn jwks(_ctx: Ctx, _req: Request) -> Response<Body> {
    match key_source(jwks_config()).await.get().await {
        Ok(key) => {
            let mut resp = Response::new(Body::from(key.jwks().to_string()));
            let headers = resp.headers_mut();
            headers.insert(
                "content-type",
                HeaderValue::from_static("application/jwk-set+json"),
            );
            headers.insert(
                "cache-control",
                HeaderValue::from_static("public, max-age=300"),
            );
            resp
        }
        Err(e) => {
            tracing::warn!(error = %e, "no SET signing key");
            let mut resp = ScimError::new(
                503,
                None,
                "The event signing key is not available; try again later.".to_string(),
            )
            .into_response();
            *resp.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
            resp.headers_mut()
                .insert("retry-after", HeaderValue::from_static("5"));
            resp
        }
    }
}

fn jwks_config() -> &'static EventsConfig {
    static CONFIG: std::sync::OnceLock<EventsConfig> = std::sync::OnceLock::new();
    CONFIG.get_or_init(EventsConfig::from_env)
}
