//! The DynamoDB client: retries and time limits, set explicitly.
//!
//! Every request to either API ends within [`REQUEST_BUDGET`] of waiting on
//! DynamoDB, whatever DynamoDB does: each call is bounded by the SDK (connect,
//! per-attempt and per-operation timeouts, a few jittered retries) and the
//! whole request by a deadline the [`Store`](super::Store) keeps. The function
//! timeout in `infra/template.yaml` is set from this budget (a test checks it).
use std::time::Duration;

use aws_sdk_dynamodb::config::retry::{RetryConfig, RetryMode};
use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::config::{Builder, Credentials, Region};
use aws_sdk_dynamodb::Client;

/// The most time one request spends on DynamoDB, retries included. With the
/// rest of the handler (Argon2 at most ~50 ms) it fits the 10 s function timeout.
pub const REQUEST_BUDGET: Duration = Duration::from_secs(8);

/// The budget of a SCIM bulk request (`scim-bulk`), which runs up to
/// `maxOperations` operations one after the other: what an HTTP API
/// integration allows (30 s), less the function's few seconds to answer
/// and log. Its function's Timeout is set from it, as the others' are from
/// [`REQUEST_BUDGET`].
pub const BULK_REQUEST_BUDGET: Duration = Duration::from_secs(25);

/// The most time a request to function (binary) `function` spends on
/// DynamoDB: what its Timeout in `infra/template.yaml` must outlast.
pub fn request_budget_of(function: &str) -> Duration {
    match function {
        "scim-bulk" => BULK_REQUEST_BUDGET,
        _ => REQUEST_BUDGET,
    }
}

/// Time limits and retries of the DynamoDB client and of one request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Budget {
    /// Opening a connection (DNS, TCP, TLS).
    pub connect: Duration,
    /// One HTTP attempt. DynamoDB answers in tens of milliseconds; a second
    /// means it is not going to.
    pub attempt: Duration,
    /// One SDK operation, all its attempts and backoffs included.
    pub operation: Duration,
    /// One request to the API, every DynamoDB call included.
    pub request: Duration,
    /// Attempts per operation, the first included.
    pub max_attempts: u32,
    /// Jittered exponential backoff between attempts: base and cap.
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    pub mode: RetryMode,
}

impl Budget {
    /// What the functions run with.
    pub const LAMBDA: Budget = Budget {
        connect: Duration::from_secs(1),
        attempt: Duration::from_millis(1500),
        operation: Duration::from_secs(4),
        request: REQUEST_BUDGET,
        max_attempts: 4,
        initial_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_secs(1),
        mode: RetryMode::Standard,
    };

    /// [`Budget::LAMBDA`] with the retry mode `DYNAMODB_RETRY_MODE` names
    /// (`standard`, the default, or `adaptive`), so the two can be compared.
    pub fn from_env() -> Budget {
        let mode = match std::env::var("DYNAMODB_RETRY_MODE").as_deref() {
            Ok(m) if m.eq_ignore_ascii_case("adaptive") => RetryMode::Adaptive,
            _ => RetryMode::Standard,
        };
        Budget {
            mode,
            ..Budget::LAMBDA
        }
    }

    pub fn retry_config(&self) -> RetryConfig {
        let base = match self.mode {
            RetryMode::Adaptive => RetryConfig::adaptive(),
            _ => RetryConfig::standard(),
        };
        base.with_max_attempts(self.max_attempts)
            .with_initial_backoff(self.initial_backoff)
            .with_max_backoff(self.max_backoff)
    }

    pub fn timeout_config(&self) -> TimeoutConfig {
        TimeoutConfig::builder()
            .connect_timeout(self.connect)
            .operation_attempt_timeout(self.attempt)
            .operation_timeout(self.operation)
            .build()
    }
}

/// The client configuration the environment describes, with `budget`'s
/// retries and timeouts: AWS region and credentials as usual, and
/// `DYNAMODB_ENDPOINT` for DynamoDB Local (then any region and credentials do).
/// Tests add their own HTTP client to it to inject faults.
pub async fn config_from_env(budget: &Budget) -> Builder {
    let config = aws_config::load_from_env().await;
    let mut builder = Builder::from(&config)
        .retry_config(budget.retry_config())
        .timeout_config(budget.timeout_config());
    if let Some(endpoint) = endpoint() {
        builder = builder.endpoint_url(endpoint);
        if config.region().is_none() {
            builder = builder.region(Region::new("us-east-1"));
        }
        if std::env::var_os("AWS_ACCESS_KEY_ID").is_none()
            && std::env::var_os("AWS_PROFILE").is_none()
        {
            builder = builder.credentials_provider(Credentials::new(
                "local",
                "local",
                None,
                None,
                "dynamodb-local",
            ));
        }
    }
    builder
}

/// `DYNAMODB_ENDPOINT`, when set and not empty.
pub fn endpoint() -> Option<String> {
    std::env::var("DYNAMODB_ENDPOINT")
        .ok()
        .filter(|e| !e.is_empty())
}

/// The client the functions use: [`config_from_env`] with [`Budget::from_env`].
pub async fn client_from_env() -> Client {
    Client::from_conf(config_from_env(&Budget::from_env()).await.build())
}
