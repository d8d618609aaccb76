//! What a failed DynamoDB call means, decided here and nowhere else.
//!
//! After the SDK's own retries, an error is one of three things: a condition
//! that failed (a uniqueness claim, an optimistic lock: 409/412 or a retry on
//! a fresh read), DynamoDB being unavailable for now (throttled, over a limit,
//! a transient server error, a timeout, no connection, transactions that kept
//! conflicting: 503 with `Retry-After`), or a fault that retrying will not fix
//! (a malformed item, a missing table, a request DynamoDB rejects: a bug, 500).
use std::fmt;

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};

/// A unique attribute: each of its values is held by one claim item
/// ([`claim_key`](super::table::claim_key)), and a write that cannot take the claim fails naming it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UniqueField {
    Username,
    Email,
    ExternalId,
    /// A group's displayName (an org's name).
    GroupName,
    /// A group's externalId.
    GroupExternalId,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StoreError {
    #[error("{0:?} is already taken by another user")]
    Taken(UniqueField),
    /// The item changed (or vanished) since it was read: an optimistic-lock loss.
    #[error("the record was changed by another request")]
    Conflict,
    #[error("not found")]
    NotFound,
    /// Try again later; nothing was written.
    #[error("{0}")]
    Unavailable(Unavailable),
    /// Retrying will not help: a bug, a hand-edited item or a misconfiguration.
    #[error("DynamoDB: {0}")]
    Fault(String),
    #[error("malformed item {0}")]
    Corrupt(String),
}

/// Why DynamoDB could not serve a call, for the client (`Retry-After`) and the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// Throttling or a request limit: the table or account is over its rate.
    Throttled,
    /// A 5xx from DynamoDB.
    ServerError,
    /// No answer within the time budget.
    Timeout,
    /// No connection (refused, reset, DNS).
    Unreachable,
    /// Transactions on the same items kept cancelling each other.
    Contention,
}

impl FaultKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FaultKind::Throttled => "throttled",
            FaultKind::ServerError => "server_error",
            FaultKind::Timeout => "timeout",
            FaultKind::Unreachable => "unreachable",
            FaultKind::Contention => "contention",
        }
    }

    /// Seconds a client should wait before trying again: throttling and
    /// contention clear within a second; an unreachable or slow DynamoDB, later.
    pub fn retry_after(self) -> u64 {
        match self {
            FaultKind::Throttled | FaultKind::Contention => 1,
            FaultKind::ServerError => 2,
            FaultKind::Timeout | FaultKind::Unreachable => 5,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unavailable {
    pub kind: FaultKind,
    /// DynamoDB's error code (`ThrottlingException`, `TransactionConflict`…), or what the SDK said.
    pub code: String,
    /// The endpoint and cause, for operators (`usersctl`, the log). Never sent to API clients.
    pub detail: String,
}

impl Unavailable {
    pub fn new(kind: FaultKind, code: impl Into<String>, detail: impl Into<String>) -> Self {
        Unavailable {
            kind,
            code: code.into(),
            detail: detail.into(),
        }
    }
}

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "DynamoDB unavailable ({}, {}): {}",
            self.kind.as_str(),
            self.code,
            self.detail
        )
    }
}

/// Error codes DynamoDB uses when a table, index or account is over its rate.
const THROTTLING: &[&str] = &[
    "ThrottlingException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "LimitExceededException",
    "TooManyRequestsException",
];

/// Codes of transient failures that are neither throttling nor a 5xx status.
const TRANSIENT: &[&str] = &[
    "InternalServerError",
    "ServiceUnavailable",
    "RequestTimeout",
    "RequestTimeoutException",
];

/// Single-item writes that hit an item an ongoing transaction holds.
const CONTENTION: &[&str] = &[
    "TransactionConflictException",
    "TransactionInProgressException",
];

/// Sorts an SDK error (after the SDK's retries) into what it means.
pub fn classify<E>(err: &SdkError<E, HttpResponse>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let detail = || aws_sdk_dynamodb::error::DisplayErrorContext(err).to_string();
    let unavailable =
        |kind, code: &str| StoreError::Unavailable(Unavailable::new(kind, code, detail()));
    match err {
        SdkError::TimeoutError(_) => unavailable(FaultKind::Timeout, "Timeout"),
        SdkError::DispatchFailure(d) if d.is_timeout() => {
            unavailable(FaultKind::Timeout, "Timeout")
        }
        SdkError::DispatchFailure(_) => unavailable(FaultKind::Unreachable, "DispatchFailure"),
        // A response that could not be read: cut off mid-way, or not DynamoDB's.
        SdkError::ResponseError(_) => unavailable(FaultKind::ServerError, "ResponseError"),
        SdkError::ServiceError(service) => {
            let code = service.err().code().unwrap_or_default();
            let status = service.raw().status().as_u16();
            if THROTTLING.contains(&code) || status == 429 {
                unavailable(FaultKind::Throttled, code)
            } else if CONTENTION.contains(&code) {
                unavailable(FaultKind::Contention, code)
            } else if TRANSIENT.contains(&code) || status >= 500 {
                unavailable(
                    FaultKind::ServerError,
                    if code.is_empty() { "5xx" } else { code },
                )
            } else {
                StoreError::Fault(detail())
            }
        }
        _ => StoreError::Fault(detail()),
    }
}

impl<E> From<SdkError<E, HttpResponse>> for StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    fn from(err: SdkError<E, HttpResponse>) -> Self {
        classify(&err)
    }
}

impl StoreError {
    /// The fault kind and DynamoDB code, for the request log line.
    pub fn log_fields(&self) -> (&'static str, String) {
        match self {
            StoreError::Unavailable(u) => (u.kind.as_str(), u.code.clone()),
            StoreError::Fault(_) => ("fault", String::new()),
            StoreError::Corrupt(_) => ("corrupt_item", String::new()),
            StoreError::Taken(_) => ("taken", String::new()),
            StoreError::Conflict => ("conflict", String::new()),
            StoreError::NotFound => ("not_found", String::new()),
        }
    }
}
