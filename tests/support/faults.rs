//! DynamoDB failing the way the real service fails, in front of a real
//! DynamoDB Local.
//!
//! [`Faults::install`] puts two things into an SDK client's configuration:
//! - an interceptor that numbers SDK *operations* (one operation = all its
//!   retry attempts) and tags every HTTP attempt with its operation and
//!   attempt number;
//! - an HTTP client that wraps the real one and, per attempt, either forwards
//!   the request to DynamoDB Local or answers as DynamoDB does when it fails
//!   (the service's JSON 1.0 error shapes, a hang, a refused connection).
//!
//! Everything above the HTTP layer is production code: the SDK's retries,
//! timeouts and error parsing run exactly as they do against the real service.
use std::collections::HashMap;
use std::fmt;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use aws_sdk_dynamodb::config::http::{HttpRequest, HttpResponse};
use aws_sdk_dynamodb::config::interceptors::{
    BeforeSerializationInterceptorContextRef, BeforeTransmitInterceptorContextMut,
};
use aws_sdk_dynamodb::config::retry::RetryPartition;
use aws_sdk_dynamodb::config::{Builder, ConfigBag, HttpClient, Intercept, RuntimeComponents};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::http::{
    http_client_fn, HttpConnector, HttpConnectorFuture, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::retries::RequestAttempts;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::config_bag::{Storable, StoreReplace};
use directory::store::table;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

/// A way DynamoDB fails, as the SDK sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// 400 `ThrottlingException`: on-demand capacity exceeded (the SDK retries it).
    Throttling,
    /// 400 `ProvisionedThroughputExceededException`: a table or index over its provisioned rate.
    ProvisionedThroughputExceeded,
    /// 400 `RequestLimitExceeded`: the account over its throughput limit.
    RequestLimitExceeded,
    /// 500 `InternalServerError`: a transient server failure, nothing written.
    InternalServerError,
    /// A TransactWriteItems cancelled because an item was throttled: `TransactionCanceledException`
    /// with every reason `ThrottlingError` (not retried by the SDK); other operations get
    /// `ThrottlingException`.
    TransactionThrottled,
    /// Another transaction holds the items: `TransactionCanceledException` with every reason
    /// `TransactionConflict` for TransactWriteItems, 400 `TransactionConflictException` for
    /// PutItem/UpdateItem/DeleteItem (neither retried by the SDK); reads get `ThrottlingException`.
    TransactionConflict,
    /// No answer at all: only the SDK's attempt and operation timeouts end it.
    Hang,
    /// The request reaches DynamoDB Local (a write lands), but its answer is lost and
    /// replaced by a 500 `InternalServerError`: the SDK retries a write that already happened.
    ApplyThenFail,
    /// The request reaches DynamoDB Local (a write lands), and the answer is a cancellation for
    /// `TransactionConflict` (400 `TransactionConflictException` for a single write): what
    /// [`Faults::contention`] answers an attempt the SDK resends after a timeout while the first
    /// one, which lands, still holds the items. The caller sends the write again and finds its
    /// own writes there. (The service answers such a resend `TransactionInProgressException`.)
    ApplyThenConflict,
    /// The connection fails (an I/O error, as if the port were closed).
    ConnectionRefused,
}

/// One HTTP attempt the SDK made, and what was done to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// The SDK operation, numbered from 1 since the last [`Faults::reset`].
    pub operation: usize,
    /// The DynamoDB action (`PutItem`, `TransactWriteItems`…).
    pub target: String,
    /// The SDK's attempt number within the operation, from 1.
    pub attempt: u32,
    /// The fault injected, if any (contention conflicts show as `TransactionConflict`).
    pub fault: Option<Fault>,
}

/// The fault switchboard: cheap to clone, every clone controls the same client.
#[derive(Clone, Default)]
pub struct Faults {
    state: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    /// Bumped by `reset`, so that an operation numbered before it is never
    /// mistaken for the operation with the same number after it.
    epoch: u64,
    operations: usize,
    /// `fail_call` rules: operation, fault, how many attempts.
    calls: Vec<(usize, Fault, u32)>,
    /// `fail_from`: every operation from this one on.
    from: Option<(usize, Fault)>,
    random: Option<Random>,
    /// How long a transaction stays in flight, when contention is simulated.
    contention: Option<Duration>,
    log: Vec<Call>,
    /// Items of the transactions in flight, by transaction. Kept across
    /// `reset`: those transactions really are still in flight.
    held: HashMap<u64, Vec<ItemKey>>,
    next_transaction: u64,
}

struct Random {
    p: f64,
    kinds: Vec<Fault>,
    rng: StdRng,
}

/// An item's identity: table, partition key and sort key (as request JSON).
type ItemKey = (String, String, String);

impl Faults {
    /// A healthy switchboard: every attempt goes through until a fault is set.
    pub fn new() -> Faults {
        Faults::default()
    }

    /// Adds the faulty HTTP client and the numbering interceptor to a client
    /// configuration, with a retry partition of its own: the SDK's retry quota
    /// is shared process-wide per partition, and tests must not drain it for
    /// each other (a drained quota silently turns retries off).
    pub fn install(&self, builder: Builder) -> Builder {
        static CLIENTS: AtomicU64 = AtomicU64::new(0);
        let partition = format!("faults-{}", CLIENTS.fetch_add(1, Ordering::Relaxed));
        // DynamoDB Local speaks plain HTTP; this is the SDK's own hyper client without TLS.
        let real = aws_smithy_http_client::Builder::new().build_http();
        let faults = self.clone();
        let client = http_client_fn(move |settings, components| {
            SharedHttpConnector::new(Connector {
                real: real.http_connector(settings, components),
                faults: faults.clone(),
            })
        });
        builder
            .http_client(client)
            .interceptor(Numbering(self.clone()))
            .retry_partition(RetryPartition::new(partition))
    }

    /// Fails the `k`-th SDK operation (from 1, since the last reset) with `fault`
    /// for its first `attempts` HTTP attempts (`u32::MAX`: all of them), to fail
    /// exactly one call of a request, transiently or for good. Rules add up.
    pub fn fail_call(&self, k: usize, fault: Fault, attempts: u32) {
        self.state().calls.push((k, fault, attempts));
    }

    /// Fails every attempt of every operation from the `k`-th on: DynamoDB going
    /// away in the middle of a request.
    pub fn fail_from(&self, k: usize, fault: Fault) {
        self.state().from = Some((k, fault));
    }

    /// Fails each HTTP attempt with probability `p`, with a fault drawn from
    /// `kinds`; seeded, so a sequential run fails the same way every time.
    pub fn fail_randomly(&self, p: f64, kinds: &[Fault], seed: u64) {
        assert!(!kinds.is_empty(), "fail_randomly needs at least one fault");
        self.state().random = Some(Random {
            p,
            kinds: kinds.to_vec(),
            rng: StdRng::seed_from_u64(seed),
        });
    }

    /// Stands in for the real service's transaction isolation, which DynamoDB
    /// Local lacks (it runs transactions one at a time): a TransactWriteItems
    /// stays in flight for `hold` before it is forwarded, and meanwhile a
    /// TransactWriteItems on any of its items is cancelled (reason
    /// `TransactionConflict` at the overlapping items, `None` elsewhere) and a
    /// PutItem/UpdateItem/DeleteItem on one of them gets `TransactionConflictException`.
    /// The hold counts against the SDK's attempt timeout, as the service's latency does.
    pub fn contention(&self, hold: Duration) {
        self.state().contention = Some(hold);
    }

    /// Back to healthy pass-through, with the operation count and the log
    /// cleared, so the next phase of a test numbers its calls from 1.
    pub fn reset(&self) {
        let mut s = self.state();
        s.epoch += 1;
        s.operations = 0;
        s.calls.clear();
        s.from = None;
        s.random = None;
        s.contention = None;
        s.log.clear();
    }

    /// SDK operations started since the last reset: how many calls a request made.
    pub fn operations(&self) -> usize {
        self.state().operations
    }

    /// Every HTTP attempt since the last reset, in order, with the fault it got.
    pub fn log(&self) -> Vec<Call> {
        self.state().log.clone()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A test that panicked while holding the lock leaves nothing half-done here.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Serves one HTTP attempt: forwards it, or fails it as planned.
    async fn serve(
        &self,
        real: SharedHttpConnector,
        request: HttpRequest,
    ) -> Result<HttpResponse, ConnectorError> {
        let target = request
            .headers()
            .get("x-amz-target")
            .and_then(|t| t.rsplit_once('.'))
            .map(|(_, action)| action.to_string())
            .unwrap_or_default();
        let body: Value = request
            .body()
            .bytes()
            .and_then(|b| serde_json::from_slice(b).ok())
            .unwrap_or(Value::Null);
        match self.plan(request.extension::<Attempt>().copied(), &target, &body) {
            Plan::Forward => real.call(request).await,
            Plan::Cancel(reasons) => Ok(cancelled(&reasons)),
            Plan::Hold(hold, _release) => {
                tokio::time::sleep(hold).await;
                real.call(request).await
            }
            Plan::Fail(fault) => match fault {
                Fault::Hang => std::future::pending().await,
                Fault::ConnectionRefused => Err(ConnectorError::io(
                    io::Error::new(
                        io::ErrorKind::ConnectionRefused,
                        "connection refused (injected)",
                    )
                    .into(),
                )),
                Fault::ApplyThenFail => {
                    real.call(request).await?;
                    Ok(internal_server_error())
                }
                Fault::ApplyThenConflict => {
                    real.call(request).await?;
                    Ok(error_response(Fault::TransactionConflict, &target, &body))
                }
                other => Ok(error_response(other, &target, &body)),
            },
        }
    }

    /// Decides what happens to one attempt, and logs it.
    fn plan(&self, attempt: Option<Attempt>, target: &str, body: &Value) -> Plan {
        let mut s = self.state();
        // Untagged, or numbered before the last reset: not this phase's business.
        let Some(a) = attempt.filter(|a| a.epoch == s.epoch) else {
            return Plan::Forward;
        };
        let (plan, fault) = match s.planned(a.operation, a.attempt) {
            Some(fault) => (Plan::Fail(fault), Some(fault)),
            None => match s.contention {
                Some(hold) => s.isolate(self, hold, target, body),
                None => (Plan::Forward, None),
            },
        };
        s.log.push(Call {
            operation: a.operation,
            target: target.to_string(),
            attempt: a.attempt,
            fault,
        });
        plan
    }
}

impl fmt::Debug for Faults {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Faults")
            .field("operations", &self.operations())
            .finish_non_exhaustive()
    }
}

impl State {
    /// The fault set for this attempt: `fail_call` first, then `fail_from`, then chance.
    fn planned(&mut self, operation: usize, attempt: u32) -> Option<Fault> {
        let rule = self
            .calls
            .iter()
            .find(|(k, _, attempts)| *k == operation && attempt <= *attempts)
            .map(|(_, fault, _)| *fault);
        let from = self
            .from
            .filter(|(k, _)| operation >= *k)
            .map(|(_, fault)| fault);
        rule.or(from).or_else(|| {
            let r = self.random.as_mut()?;
            r.rng
                .gen_bool(r.p)
                .then(|| r.kinds[r.rng.gen_range(0..r.kinds.len())])
        })
    }

    /// Contention mode: conflicts with the transactions in flight, or a hold.
    fn isolate(
        &mut self,
        faults: &Faults,
        hold: Duration,
        target: &str,
        body: &Value,
    ) -> (Plan, Option<Fault>) {
        let conflict = Some(Fault::TransactionConflict);
        match target {
            "TransactWriteItems" => {
                let items = transact_items(body);
                let overlaps: Vec<bool> = items
                    .iter()
                    .map(|k| k.as_ref().is_some_and(|k| self.is_held(k)))
                    .collect();
                if overlaps.contains(&true) {
                    let reasons = overlaps
                        .iter()
                        .map(|&o| if o { "TransactionConflict" } else { "None" })
                        .collect();
                    return (Plan::Cancel(reasons), conflict);
                }
                let id = self.next_transaction;
                self.next_transaction += 1;
                self.held.insert(id, items.into_iter().flatten().collect());
                let release = Release {
                    faults: faults.clone(),
                    id,
                };
                (Plan::Hold(hold, release), None)
            }
            "PutItem" | "UpdateItem" | "DeleteItem"
                if item_key(body).is_some_and(|k| self.is_held(&k)) =>
            {
                (Plan::Fail(Fault::TransactionConflict), conflict)
            }
            _ => (Plan::Forward, None),
        }
    }

    fn is_held(&self, key: &ItemKey) -> bool {
        self.held.values().flatten().any(|k| k == key)
    }
}

/// What to do with one attempt.
enum Plan {
    Forward,
    Fail(Fault),
    /// Cancel a transaction with these reasons (a contention conflict).
    Cancel(Vec<&'static str>),
    /// Keep the transaction's items held for a while, then forward it.
    Hold(Duration, Release),
}

/// Releases a transaction's items when its attempt ends, however it ends
/// (answered, or dropped by the SDK's timeout).
struct Release {
    faults: Faults,
    id: u64,
}

impl Drop for Release {
    fn drop(&mut self) {
        self.faults.state().held.remove(&self.id);
    }
}

/// The operation number the interceptor gives an execution, kept in its config bag.
#[derive(Debug, Clone, Copy)]
struct Operation {
    epoch: u64,
    index: usize,
}

impl Storable for Operation {
    type Storer = StoreReplace<Self>;
}

/// What the connector learns about an HTTP request: a request extension, so
/// nothing extra goes over the wire.
#[derive(Debug, Clone, Copy)]
struct Attempt {
    epoch: u64,
    operation: usize,
    attempt: u32,
}

/// Numbers operations once per execution, and tags each of their attempts.
#[derive(Debug)]
struct Numbering(Faults);

impl Intercept for Numbering {
    fn name(&self) -> &'static str {
        "FaultNumbering"
    }

    fn read_before_execution(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let operation = {
            let mut s = self.0.state();
            s.operations += 1;
            Operation {
                epoch: s.epoch,
                index: s.operations,
            }
        };
        cfg.interceptor_state().store_put(operation);
        Ok(())
    }

    fn modify_before_transmit(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let operation = cfg.load::<Operation>().ok_or("operation not numbered")?;
        let attempt = cfg.load::<RequestAttempts>().map_or(1, |a| a.attempts());
        let tag = Attempt {
            epoch: operation.epoch,
            operation: operation.index,
            attempt,
        };
        context.request_mut().add_extension(tag);
        Ok(())
    }
}

/// The real connector, with the switchboard in front of it.
#[derive(Debug)]
struct Connector {
    real: SharedHttpConnector,
    faults: Faults,
}

impl HttpConnector for Connector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let (real, faults) = (self.real.clone(), self.faults.clone());
        HttpConnectorFuture::new(async move { faults.serve(real, request).await })
    }
}

const DYNAMODB: &str = "com.amazonaws.dynamodb.v20120810";

/// The error answer `fault` gets for `target` (`fault` being one DynamoDB answers).
fn error_response(fault: Fault, target: &str, body: &Value) -> HttpResponse {
    let transaction = target == "TransactWriteItems";
    let single_write = matches!(target, "PutItem" | "UpdateItem" | "DeleteItem");
    match fault {
        Fault::ProvisionedThroughputExceeded => error(
            400,
            &format!("{DYNAMODB}#ProvisionedThroughputExceededException"),
            "The level of configured provisioned throughput for the table was exceeded.",
        ),
        Fault::RequestLimitExceeded => error(
            400,
            &format!("{DYNAMODB}#RequestLimitExceeded"),
            "Throughput exceeds the current throughput limit for your account.",
        ),
        Fault::InternalServerError => internal_server_error(),
        Fault::TransactionThrottled if transaction => {
            cancelled(&vec!["ThrottlingError"; transaction_len(body)])
        }
        Fault::TransactionConflict if transaction => {
            cancelled(&vec!["TransactionConflict"; transaction_len(body)])
        }
        Fault::TransactionConflict if single_write => transaction_conflict(),
        _ => throttling(),
    }
}

/// A DynamoDB JSON 1.0 error, as the service sends it.
fn error(status: u16, error_type: &str, message: &str) -> HttpResponse {
    respond(status, json!({ "__type": error_type, "message": message }))
}

fn respond(status: u16, body: Value) -> HttpResponse {
    let status = StatusCode::try_from(status).expect("a valid status");
    let mut response = HttpResponse::new(status, SdkBody::from(body.to_string()));
    let headers = response.headers_mut();
    headers.insert("content-type", "application/x-amz-json-1.0");
    headers.insert("x-amzn-requestid", "injected-fault");
    response
}

fn throttling() -> HttpResponse {
    error(
        400,
        "com.amazon.coral.availability#ThrottlingException",
        "Throughput exceeds the current capacity of your table or index.",
    )
}

fn internal_server_error() -> HttpResponse {
    error(
        500,
        &format!("{DYNAMODB}#InternalServerError"),
        "Internal server error",
    )
}

fn transaction_conflict() -> HttpResponse {
    error(
        400,
        &format!("{DYNAMODB}#TransactionConflictException"),
        "Transaction is ongoing for the item",
    )
}

/// A `TransactionCanceledException` with one reason per item of the transaction.
fn cancelled(codes: &[&str]) -> HttpResponse {
    let reasons: Vec<Value> = codes
        .iter()
        .map(|&code| match code {
            "None" => json!({ "Code": code }),
            _ => json!({ "Code": code, "Message": format!("{code} (injected)") }),
        })
        .collect();
    respond(
        400,
        json!({
            "__type": format!("{DYNAMODB}#TransactionCanceledException"),
            "CancellationReasons": reasons,
            "Message": format!(
                "Transaction cancelled, please refer cancellation reasons for specific reasons [{}]",
                codes.join(", ")
            ),
        }),
    )
}

/// How many items a TransactWriteItems request has.
fn transaction_len(body: &Value) -> usize {
    body["TransactItems"].as_array().map_or(0, Vec::len)
}

/// The item each entry of a TransactWriteItems request touches.
fn transact_items(body: &Value) -> Vec<Option<ItemKey>> {
    let entries = body["TransactItems"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    entries
        .iter()
        .map(|entry| {
            let op = entry.as_object()?.values().next()?;
            item_key(op)
        })
        .collect()
}

/// The item a Put/Update/Delete/ConditionCheck (or PutItem/UpdateItem/DeleteItem) touches.
fn item_key(op: &Value) -> Option<ItemKey> {
    let table = op["TableName"].as_str()?;
    let item = op.get("Key").or_else(|| op.get("Item"))?;
    Some((
        table.to_string(),
        item[table::PK].to_string(),
        item[table::SK].to_string(),
    ))
}
