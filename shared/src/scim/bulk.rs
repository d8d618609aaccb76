//! `POST /Bulk` (RFC 7644 §3.7), in the `rfc` profile: POST, PUT, PATCH
//! and DELETE of Users and Groups in one request.
//!
//! - **Each operation is the single request it stands for**: it calls the
//!   same service operation (`service::users`, `service::groups`) with the
//!   same body reading, so it is atomic on its own and checked as that
//!   request would be; the bulk as a whole is not atomic (what ran stays).
//! - **Under a tenant base** (`/api/v1/scim/orgs/{slug}/Bulk`) the same:
//!   Users are the tenant's own (`service::users` at that base), Groups its
//!   own groups (`service::tenant_groups`, as its `/Groups` requests: the
//!   members only its own users, roles from mapped groups, one transaction
//!   each); another tenant's ids answer as unknown ids do. Every `location`
//!   and `$ref` is under the tenant base.
//! - **One authentication** for the whole request (a wrong password counts
//!   once towards the lockout): each operation is handed the caller, and
//!   still decides what the caller may do. An operation that changes the
//!   caller's own user (a deactivation revokes its credentials, a delete
//!   removes it) makes the next one authenticate again, so no operation
//!   runs for a caller its own request would refuse.
//! - **`bulkId`**: a POST names the resource it creates; `bulkId:<id>`
//!   stands for that resource's id in another operation's path
//!   (`/Users/bulkId:qwerty`) and in any value of its data (a member's
//!   `value`, a manager). Operations run in dependency order (the request's
//!   order where nothing depends); references that form a cycle fail every
//!   operation in it with 409 (RFC 7644 §3.7.1 lets a service provider stop
//!   there), and an operation whose reference names a resource that was not
//!   created fails with 409 too.
//! - **`failOnErrors`**: after that many failed operations the rest are not
//!   run. The answer lists the operations that ran, in the request's order,
//!   each with its `status`, `location`, `version` and `response` (the
//!   resource, or the Error; none after a DELETE, which answers nothing).
//! - **Limits**, advertised in `/ServiceProviderConfig`: at most
//!   [`BULK_MAX_OPERATIONS`] operations and [`BULK_MAX_PAYLOAD_SIZE`] bytes, 413
//!   past either. The request may wait on DynamoDB for
//!   [`BULK_REQUEST_BUDGET`] in all; operations it has no time left for
//!   answer 503 without being tried.
//!
//! Cost: one authentication read, then each operation's calls but the
//! caller's part of its read (a create: 2, the id counter and the
//! transaction; a PATCH, PUT or DELETE: 2, its target's read and the write;
//! a tenant group's member change: 2, the group and its named users' read
//! and the transaction, and one query of the tenant's groups when the group
//! is mapped to a role).
use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap};
use std::time::Duration;

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde_json::{json, Map, Value};

use super::group_request::{group_error, replacement};
use super::request::ScimRequest;
use super::routes::fallback_response;
use super::schema::get_ci;
use super::schema::{json_response, ResourceType};
use super::users::{patched, posted, put, user_error};
use super::{group_resource, user_schema, ScimError, BULK_MAX_OPERATIONS, BULK_MAX_PAYLOAD_SIZE};
use crate::domain::Provisioner;
use crate::domain::{canonical_id, etag};
use crate::http::respond;
use crate::http::{Ctx, Profile};
use crate::service::groups::Groups;
use crate::service::tenant_groups::TenantGroups;
use crate::service::users::{Precondition, Users};
use crate::service::Identity;
use crate::store::BULK_REQUEST_BUDGET;

pub const BULK_REQUEST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";
pub const BULK_RESPONSE_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:BulkResponse";

/// The bytes of successful operations' `response` bodies one answer carries
/// at most; past them a successful operation's `response` is left out
/// (RFC 7644 §3.7 lets a service provider omit it), so that a bulk of
/// PATCHes on large users never answers more than Lambda's 6 MB.
const MAX_RESPONSE_BODIES: usize = 4 * 1024 * 1024;

/// An operation is not started with less than this left of the request's
/// budget: it answers 503, to be sent again.
const OPERATION_RESERVE: Duration = Duration::from_secs(1);

type Outcome = Result<Response<Body>, ScimError>;

/// `POST /Bulk`
pub async fn post(ctx: Ctx, req: Request) -> Response<Body> {
    let r = ScimRequest::extract(&ctx, &req);
    if ctx.config.profile == Profile::Odm {
        return respond(fallback_response(&ctx, &r).await);
    }
    let ctx = Ctx {
        store: ctx.store.with_request_budget(BULK_REQUEST_BUDGET),
        ..ctx
    };
    // Boxed: every operation's future is in this one.
    respond(Box::pin(run(&ctx, &r)).await)
}

async fn run(ctx: &Ctx, r: &ScimRequest) -> Outcome {
    let users = Users::new(&ctx.store, ctx.config.profile);
    let caller = users
        .sign_in(r.identity())
        .await
        .map_err(|f| user_error(f, ""))?;
    let body = r.body().map_err(|e| match e.status {
        413 => too_large(format!(
            "The bulk request is larger than maxPayloadSize ({BULK_MAX_PAYLOAD_SIZE} bytes)."
        )),
        _ => e,
    })?;
    let request = BulkRequest::parse(body)?;
    let order = request.order();
    let mut job = Job {
        ctx,
        sent: r,
        caller: Ok(caller),
        created: HashMap::new(),
        results: vec![None; request.operations.len()],
        errors: 0,
        response_bytes: 0,
    };
    for step in order {
        if request.fail_on_errors.is_some_and(|n| job.errors >= n) {
            break;
        }
        let result = match step {
            Step::Run(i) => Box::pin(job.perform(&request, i)).await,
            Step::Cycle(i, ref ids) => request.operations[i].fails(
                ScimError::new(
                    409,
                    None,
                    format!(
                        "The bulkIds {} reference each other in a cycle; their operations were \
                         not run.",
                        quoted(ids)
                    ),
                ),
                &r.base_url,
            ),
        };
        job.record(step.index(), result);
    }
    let operations: Vec<Value> = job.results.into_iter().flatten().collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({"schemas": [BULK_RESPONSE_SCHEMA], "Operations": operations}),
    ))
}

/// 413, for either limit.
fn too_large(detail: String) -> ScimError {
    ScimError::new(413, None, detail)
}

fn quoted(ids: &[String]) -> String {
    ids.iter()
        .map(|i| format!("\"{i}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

// ---------------------------------------------------------------- the request

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Post,
    Put,
    Patch,
    Delete,
}

impl Method {
    fn parse(s: &str) -> Option<Method> {
        [Method::Post, Method::Put, Method::Patch, Method::Delete]
            .into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(s))
    }

    fn name(self) -> &'static str {
        match self {
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }
}

/// The resource an operation's path names, by id or by the bulkId of the
/// POST that creates it.
#[derive(Debug, Clone, PartialEq)]
enum Named {
    Id(String),
    BulkId(String),
}

/// What an operation's path names.
#[derive(Debug, Clone, PartialEq)]
struct Target {
    resource: ResourceType,
    /// `None` for a POST, which names the endpoint.
    named: Option<Named>,
}

/// One operation as the request sent it, read as far as it could be.
#[derive(Debug)]
struct Operation {
    /// The method, or as sent when it is none of the four.
    method: Result<Method, Option<String>>,
    bulk_id: Option<String>,
    /// `If-Match` for the operation (PUT, PATCH, DELETE).
    version: Option<String>,
    /// The path as sent, for `location` and messages.
    path: String,
    data: Option<Value>,
    /// What the path names, or why the operation cannot run at all.
    target: Result<Target, ScimError>,
    /// The bulkIds its path and data reference, each once, in order.
    references: Vec<String>,
}

impl Operation {
    fn read(value: &Value) -> Operation {
        let mut op = Operation {
            method: Err(None),
            bulk_id: None,
            version: None,
            path: String::new(),
            data: None,
            target: Err(ScimError::invalid_syntax(
                "Each operation must be an object with a method and a path.",
            )),
            references: Vec::new(),
        };
        let Value::Object(fields) = value else {
            return op;
        };
        let text = |name: &str| match get_ci(fields, name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(ScimError::invalid_syntax(format!(
                "{name} must be a string, not {other}"
            ))),
        };
        let method = text("method");
        op.method = match &method {
            Ok(Some(m)) => Method::parse(m).ok_or(Some(m.clone())),
            _ => Err(None),
        };
        op.data = get_ci(fields, "data").filter(|d| !d.is_null()).cloned();
        let read = (|| -> Result<Target, ScimError> {
            op.bulk_id = text("bulkId")?;
            op.version = text("version")?;
            op.path = text("path")?.unwrap_or_default();
            let method = match (method?, &op.method) {
                (_, Ok(m)) => *m,
                (Some(m), _) => {
                    return Err(ScimError::invalid_syntax(format!(
                        "Unknown method \"{m}\": expected POST, PUT, PATCH or DELETE."
                    )))
                }
                (None, _) => {
                    return Err(ScimError::invalid_syntax(
                        "Each operation needs a method: POST, PUT, PATCH or DELETE.",
                    ))
                }
            };
            if method == Method::Post && op.bulk_id.as_deref().is_none_or(str::is_empty) {
                return Err(ScimError::invalid_value(
                    "A POST operation needs a bulkId (RFC 7644 §3.7).",
                ));
            }
            if method != Method::Delete && op.data.is_none() {
                return Err(ScimError::invalid_syntax(format!(
                    "A {} operation needs data.",
                    method.name()
                )));
            }
            target(method, &op.path)
        })();
        op.target = read;
        if let Ok(Target {
            named: Some(Named::BulkId(id)),
            ..
        }) = &op.target
        {
            op.references.push(id.clone());
        }
        if let Some(data) = &op.data {
            references(data, &mut op.references);
        }
        op
    }

    /// The answer of an operation that failed with `error`: its `location`
    /// is its path's (a failed POST has none).
    fn fails(&self, error: ScimError, base_url: &str) -> Value {
        let mut out = self.echo();
        if !matches!(self.method, Ok(Method::Post)) && !self.path.is_empty() {
            out.insert("location".into(), json!(self.location_as_sent(base_url)));
        }
        out.insert("status".into(), json!(error.status.to_string()));
        out.insert("response".into(), error.to_json());
        Value::Object(out)
    }

    /// `method` and `bulkId`, as every answer repeats them.
    fn echo(&self) -> Map<String, Value> {
        let mut out = Map::new();
        match &self.method {
            Ok(m) => {
                out.insert("method".into(), json!(m.name()));
            }
            Err(Some(m)) => {
                out.insert("method".into(), json!(m));
            }
            Err(None) => {}
        }
        if let Some(id) = &self.bulk_id {
            out.insert("bulkId".into(), json!(id));
        }
        out
    }

    /// The URL of the path as the client wrote it (an operation that failed
    /// before its resource was known).
    fn location_as_sent(&self, base_url: &str) -> String {
        format!("{base_url}/{}", self.path.trim().trim_start_matches('/'))
    }
}

/// What `path` names for `method`: `/Users` or `/Groups` for a POST,
/// `/Users/{id}` or `/Users/bulkId:{bulkId}` (and the same for Groups)
/// for the others.
fn target(method: Method, path: &str) -> Result<Target, ScimError> {
    let bad = |why: &str| ScimError::invalid_path(format!("Invalid path \"{path}\": {why}."));
    let mut segments = path.trim().trim_start_matches('/').split('/');
    let resource = match segments.next() {
        Some("Users") => ResourceType::User,
        Some("Groups") => ResourceType::Group,
        _ => return Err(bad("bulk operations act on /Users and /Groups")),
    };
    let named = match segments.next() {
        None => None,
        Some("") => return Err(bad("the resource id is empty")),
        Some(id) => Some(match id.strip_prefix("bulkId:") {
            Some(bulk_id) => Named::BulkId(bulk_id.to_string()),
            None => Named::Id(id.to_string()),
        }),
    };
    if segments.next().is_some() {
        return Err(bad("it names no resource"));
    }
    match (method, &named) {
        (Method::Post, Some(_)) => Err(bad("a POST names the endpoint, /Users or /Groups")),
        (Method::Post, None) => Ok(Target { resource, named }),
        (_, None) => Err(bad(&format!("a {} names one resource", method.name()))),
        (_, Some(_)) => Ok(Target { resource, named }),
    }
}

/// Every `bulkId:<id>` string in `value`, each once, in order.
fn references(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => {
            if let Some(id) = s.strip_prefix("bulkId:") {
                if !out.iter().any(|o| o == id) {
                    out.push(id.to_string());
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| references(v, out)),
        Value::Object(fields) => fields.values().for_each(|v| references(v, out)),
        _ => {}
    }
}

/// `value` with every `bulkId:<id>` string replaced by the id `resolved`
/// has for it.
fn substitute(value: &Value, resolved: &HashMap<&str, String>) -> Value {
    match value {
        Value::String(s) => match s.strip_prefix("bulkId:").and_then(|id| resolved.get(id)) {
            Some(id) => json!(id),
            None => value.clone(),
        },
        Value::Array(items) => {
            Value::Array(items.iter().map(|v| substitute(v, resolved)).collect())
        }
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(k, v)| (k.clone(), substitute(v, resolved)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// A BulkRequest, read.
struct BulkRequest {
    fail_on_errors: Option<usize>,
    operations: Vec<Operation>,
    /// The operation each POST's bulkId names.
    defined: HashMap<String, usize>,
}

/// One step of a bulk: run an operation, or fail one whose references
/// form a cycle (with the bulkIds of the cycle).
#[derive(Debug, Clone, PartialEq)]
enum Step {
    Run(usize),
    Cycle(usize, Vec<String>),
}

impl Step {
    fn index(&self) -> usize {
        match self {
            Step::Run(i) | Step::Cycle(i, _) => *i,
        }
    }
}

impl BulkRequest {
    /// Reads the body: a JSON object naming the BulkRequest schema (a
    /// missing `schemas` is tolerated), `failOnErrors` (a positive integer,
    /// optional) and `Operations`. More than [`BULK_MAX_OPERATIONS`] is 413; two
    /// POSTs with one bulkId, 400. An operation that cannot be read fails
    /// on its own, when its turn comes.
    fn parse(body: &Value) -> Result<BulkRequest, ScimError> {
        let Value::Object(body) = body else {
            return Err(ScimError::invalid_syntax(
                "The bulk request must be a JSON object.",
            ));
        };
        let names_bulk = |v: &Value| {
            v.as_str()
                .is_some_and(|s| s.eq_ignore_ascii_case(BULK_REQUEST_SCHEMA))
        };
        let schemas_ok = match get_ci(body, "schemas") {
            None => true,
            Some(Value::Array(items)) => items.iter().any(names_bulk),
            Some(other) => names_bulk(other),
        };
        if !schemas_ok {
            return Err(ScimError::invalid_syntax(format!(
                "schemas must contain \"{BULK_REQUEST_SCHEMA}\"."
            )));
        }
        let fail_on_errors = match get_ci(body, "failOnErrors") {
            None | Some(Value::Null) => None,
            Some(v) => match v.as_u64() {
                Some(n) if n >= 1 => Some(usize::try_from(n).unwrap_or(usize::MAX)),
                _ => {
                    return Err(ScimError::invalid_value(format!(
                        "failOnErrors must be a positive integer, not {v}"
                    )))
                }
            },
        };
        let Some(Value::Array(ops)) = get_ci(body, "Operations") else {
            return Err(ScimError::invalid_syntax(
                "A bulk request needs Operations, a list of operations.",
            ));
        };
        if ops.len() > BULK_MAX_OPERATIONS {
            return Err(too_large(format!(
                "The bulk request has {} operations, more than maxOperations ({BULK_MAX_OPERATIONS}).",
                ops.len()
            )));
        }
        let operations: Vec<Operation> = ops.iter().map(Operation::read).collect();
        let mut defined = HashMap::new();
        for (i, op) in operations.iter().enumerate() {
            let (Ok(Method::Post), Some(id)) = (&op.method, &op.bulk_id) else {
                continue;
            };
            if defined.insert(id.clone(), i).is_some() {
                return Err(ScimError::invalid_value(format!(
                    "bulkId \"{id}\" names more than one POST: each must be unique within the \
                     request."
                )));
            }
        }
        Ok(BulkRequest {
            fail_on_errors,
            operations,
            defined,
        })
    }

    /// The operations `i` depends on: the POSTs its references name.
    fn dependencies(&self, i: usize) -> BTreeSet<usize> {
        self.operations[i]
            .references
            .iter()
            .filter_map(|id| self.defined.get(id).copied())
            .collect()
    }

    /// The order to take the operations in: each after the POSTs it
    /// references, otherwise in the request's order; then those whose
    /// references form a cycle (failed, naming it), then those that depend
    /// on a cycle (which fail at their turn: what they reference was not
    /// created).
    fn order(&self) -> Vec<Step> {
        let n = self.operations.len();
        let deps: Vec<BTreeSet<usize>> = (0..n).map(|i| self.dependencies(i)).collect();
        let mut waiting: Vec<usize> = deps.iter().map(BTreeSet::len).collect();
        let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
        for (i, ds) in deps.iter().enumerate() {
            for &d in ds {
                dependents[d].push(i);
            }
        }
        let mut ready: BinaryHeap<Reverse<usize>> =
            (0..n).filter(|&i| waiting[i] == 0).map(Reverse).collect();
        let mut steps = Vec::with_capacity(n);
        while let Some(Reverse(i)) = ready.pop() {
            steps.push(Step::Run(i));
            for &j in &dependents[i] {
                waiting[j] -= 1;
                if waiting[j] == 0 {
                    ready.push(Reverse(j));
                }
            }
        }
        if steps.len() == n {
            return steps;
        }
        let cycles = cycles(&deps);
        let mut downstream = Vec::new();
        for i in (0..n).filter(|&i| waiting[i] > 0) {
            match cycles.iter().find(|c| c.contains(&i)) {
                Some(cycle) => {
                    let ids = cycle
                        .iter()
                        .filter_map(|&j| self.operations[j].bulk_id.clone())
                        .collect();
                    steps.push(Step::Cycle(i, ids));
                }
                None => downstream.push(Step::Run(i)),
            }
        }
        steps.extend(downstream);
        steps
    }
}

/// The cycles of the dependency graph `deps` (operation → the operations
/// it depends on): its strongly connected components with more than one
/// operation, or one that depends on itself (Tarjan's algorithm).
fn cycles(deps: &[BTreeSet<usize>]) -> Vec<BTreeSet<usize>> {
    struct Walk<'a> {
        deps: &'a [BTreeSet<usize>],
        index: Vec<Option<usize>>,
        low: Vec<usize>,
        on_stack: Vec<bool>,
        stack: Vec<usize>,
        next: usize,
        found: Vec<BTreeSet<usize>>,
    }
    impl Walk<'_> {
        fn visit(&mut self, v: usize) {
            self.index[v] = Some(self.next);
            self.low[v] = self.next;
            self.next += 1;
            self.stack.push(v);
            self.on_stack[v] = true;
            for &w in self.deps[v].iter() {
                match self.index[w] {
                    None => {
                        self.visit(w);
                        self.low[v] = self.low[v].min(self.low[w]);
                    }
                    Some(iw) if self.on_stack[w] => self.low[v] = self.low[v].min(iw),
                    Some(_) => {}
                }
            }
            if Some(self.low[v]) == self.index[v] {
                let mut component = BTreeSet::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack[w] = false;
                    component.insert(w);
                    if w == v {
                        break;
                    }
                }
                if component.len() > 1 || self.deps[v].contains(&v) {
                    self.found.push(component);
                }
            }
        }
    }
    let n = deps.len();
    let mut walk = Walk {
        deps,
        index: vec![None; n],
        low: vec![0; n],
        on_stack: vec![false; n],
        stack: Vec::new(),
        next: 0,
        found: Vec::new(),
    };
    for v in 0..n {
        if walk.index[v].is_none() {
            walk.visit(v);
        }
    }
    walk.found
}

// ---------------------------------------------------------------- running it

/// A bulk request being run.
struct Job<'a> {
    ctx: &'a Ctx,
    /// The HTTP request, for its credentials (signing in again) and base_url.
    sent: &'a ScimRequest,
    /// Who the operations act for; or why no more can run for them (their
    /// own operation deactivated or deleted them, or changed their name).
    caller: Result<Provisioner, ScimError>,
    /// What each POST's bulkId created: its resource type and id.
    created: HashMap<String, (ResourceType, u64)>,
    /// Each operation's answer, once it ran.
    results: Vec<Option<Value>>,
    errors: usize,
    /// Bytes of successful operations' `response` bodies so far.
    response_bytes: usize,
}

/// What a successful operation answers.
struct Done {
    status: StatusCode,
    location: String,
    version: Option<u64>,
    /// The resource, when the operation answers one.
    resource: Option<Value>,
    /// The POST made this resource (recorded under its bulkId).
    created: Option<(ResourceType, u64)>,
}

impl Job<'_> {
    fn record(&mut self, i: usize, result: Value) {
        let failed = result["status"]
            .as_str()
            .and_then(|s| s.parse::<u16>().ok())
            .is_none_or(|s| !(200..300).contains(&s));
        if failed {
            self.errors += 1;
        }
        self.results[i] = Some(result);
    }

    /// Runs operation `i` of `request` and answers it.
    async fn perform(&mut self, request: &BulkRequest, i: usize) -> Value {
        let op = &request.operations[i];
        match Box::pin(self.attempt(request, op)).await {
            Ok(done) => {
                if let (Some(created), Some(id)) = (done.created, &op.bulk_id) {
                    self.created.insert(id.clone(), created);
                }
                self.answer(op, done)
            }
            Err(error) => {
                if let Some(fault) = &error.fault {
                    tracing::warn!(request_id = %self.ctx.request_id, operation = i,
                        status = error.status, error_kind = fault.kind,
                        dynamodb_code = %fault.code, cause = %fault.detail,
                        "bulk operation failed");
                }
                op.fails(error, &self.sent.base_url)
            }
        }
    }

    /// A successful operation's answer; its `response` left out once the
    /// answer carries [`MAX_RESPONSE_BODIES`] of them.
    fn answer(&mut self, op: &Operation, done: Done) -> Value {
        let mut out = op.echo();
        if let Some(version) = done.version {
            out.insert("version".into(), json!(etag(version)));
        }
        out.insert("location".into(), json!(done.location));
        out.insert("status".into(), json!(done.status.as_u16().to_string()));
        if let Some(resource) = done.resource {
            let size = resource.to_string().len();
            if self.response_bytes + size <= MAX_RESPONSE_BODIES {
                self.response_bytes += size;
                out.insert("response".into(), resource);
            }
        }
        Value::Object(out)
    }

    async fn attempt(&mut self, request: &BulkRequest, op: &Operation) -> Result<Done, ScimError> {
        let target = op.target.clone()?;
        let method = op.method.clone().map_err(|_| {
            ScimError::invalid_syntax("Each operation needs a method: POST, PUT, PATCH or DELETE.")
        })?;
        if self
            .ctx
            .store
            .time_left()
            .is_some_and(|left| left < OPERATION_RESERVE)
        {
            return Err(ScimError::new(
                503,
                None,
                "Not run: the bulk request used up its time; send this operation again.",
            ));
        }
        let resolved = self.resolve(request, op, &target)?;
        let data = op
            .data
            .as_ref()
            .map(|d| substitute(d, &resolved))
            .unwrap_or(Value::Null);
        let id_text = match &target.named {
            Some(Named::Id(id)) => id.clone(),
            Some(Named::BulkId(id)) => resolved.get(id.as_str()).cloned().unwrap_or_default(),
            None => String::new(),
        };
        let caller = self.caller.clone()?;
        let precondition = Precondition {
            if_match: op.version.as_deref(),
        };
        let done = match target.resource {
            ResourceType::User => {
                self.user_operation(&caller, method, &id_text, precondition, &data)
                    .await?
            }
            ResourceType::Group => {
                self.group_operation(&caller, method, &id_text, precondition, &data)
                    .await?
            }
        };
        // The caller changed their own user: the next operation is theirs
        // only if their credentials still sign them in.
        if target.resource == ResourceType::User
            && method != Method::Post
            && caller
                .person()
                .is_some_and(|me| canonical_id(&id_text) == Some(me.id))
        {
            self.caller = Users::new(&self.ctx.store, self.ctx.config.profile)
                .sign_in(self.sent.identity())
                .await
                .map_err(|f| user_error(f, ""));
        }
        Ok(done)
    }

    /// The ids the operation's references stand for: each must name a POST
    /// of this request (400) that created its resource (409), and the
    /// path's must create the type the path names (400).
    fn resolve<'r>(
        &self,
        request: &'r BulkRequest,
        op: &'r Operation,
        target: &Target,
    ) -> Result<HashMap<&'r str, String>, ScimError> {
        let mut resolved = HashMap::new();
        for id in &op.references {
            let Some(&defining) = request.defined.get(id) else {
                return Err(ScimError::invalid_value(format!(
                    "bulkId \"{id}\" names no POST of this bulk request."
                )));
            };
            let Some((resource, made)) = self.created.get(id) else {
                let status = self.results[defining]
                    .as_ref()
                    .and_then(|r| r["status"].as_str().map(str::to_string))
                    .unwrap_or_else(|| "not run".into());
                return Err(ScimError::new(
                    409,
                    None,
                    format!(
                        "bulkId \"{id}\" names no resource: its POST did not create one (status \
                         {status})."
                    ),
                ));
            };
            if target.named == Some(Named::BulkId(id.clone())) && *resource != target.resource {
                return Err(ScimError::invalid_path(format!(
                    "Invalid path \"{}\": bulkId \"{id}\" created a {}, not a {}.",
                    op.path,
                    resource.name(),
                    target.resource.name()
                )));
            }
            resolved.insert(id.as_str(), made.to_string());
        }
        Ok(resolved)
    }

    async fn user_operation(
        &self,
        caller: &Provisioner,
        method: Method,
        id_text: &str,
        precondition: Precondition<'_>,
        data: &Value,
    ) -> Result<Done, ScimError> {
        let (ctx, profile) = (self.ctx, self.ctx.config.profile);
        let base_url = &self.sent.base_url;
        let users = Users::new(&ctx.store, profile);
        let id = canonical_id(id_text);
        let error = |f| user_error(f, id_text);
        let user = match method {
            Method::Post => users
                .create(caller, Ok(data), |base, body| posted(base, body, profile))
                .await
                .map_err(error)?,
            Method::Put => users
                .update(caller, id, precondition, Ok(data), |cur, body| {
                    put(cur, body, profile)
                })
                .await
                .map_err(error)?,
            Method::Patch => users
                .update(caller, id, precondition, Ok(data), |cur, body| {
                    patched(cur, body, profile)
                })
                .await
                .map_err(error)?,
            Method::Delete => {
                users
                    .delete::<ScimError>(caller, id, precondition)
                    .await
                    .map_err(error)?;
                return Ok(Done {
                    status: StatusCode::NO_CONTENT,
                    location: ResourceType::User.location_of(id_text, base_url),
                    version: None,
                    resource: None,
                    created: None,
                });
            }
        };
        Ok(Done {
            status: if method == Method::Post {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            },
            location: ResourceType::User.location(user.id, base_url),
            version: Some(user.version),
            resource: Some(user_schema::to_json(&user, base_url, profile)),
            created: (method == Method::Post).then_some((ResourceType::User, user.id)),
        })
    }

    /// A Group operation. Its answer leaves the members out, as
    /// `excludedAttributes=members` would (reading them could make one
    /// operation's answer megabytes), except after a POST, which knows them.
    async fn group_operation(
        &self,
        caller: &Provisioner,
        method: Method,
        id_text: &str,
        precondition: Precondition<'_>,
        data: &Value,
    ) -> Result<Done, ScimError> {
        if let Some(slug) = self.sent.base.tenant() {
            return Box::pin(self.tenant_group_operation(
                caller,
                slug,
                method,
                id_text,
                precondition,
                data,
            ))
            .await;
        }
        let base_url = &self.sent.base_url;
        let groups = Groups::new(&self.ctx.store);
        let id = canonical_id(id_text);
        let error = |f| group_error(f, id_text);
        let (group, members) = match method {
            Method::Post => {
                let input = group_resource::from_json(data);
                let (group, changes) = Box::pin(groups.create(caller, input))
                    .await
                    .map_err(error)?;
                let mut ids = changes.added;
                ids.sort_unstable();
                (group, Some(ids))
            }
            Method::Put => {
                let input = replacement(data);
                let group = Box::pin(groups.update(caller, id, precondition, input))
                    .await
                    .map_err(error)?;
                (group, None)
            }
            Method::Patch => {
                let input = group_resource::parse_patch(data, id.unwrap_or(0));
                let group = Box::pin(groups.update(caller, id, precondition, input))
                    .await
                    .map_err(error)?;
                (group, None)
            }
            Method::Delete => {
                Box::pin(groups.delete::<ScimError>(caller, id, precondition))
                    .await
                    .map_err(error)?;
                return Ok(Done {
                    status: StatusCode::NO_CONTENT,
                    location: ResourceType::Group.location_of(id_text, base_url),
                    version: None,
                    resource: None,
                    created: None,
                });
            }
        };
        Ok(Done {
            status: if method == Method::Post {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            },
            location: ResourceType::Group.location(group.id, base_url),
            version: Some(group.version),
            resource: Some(group_resource::to_json(
                &group,
                members.as_deref(),
                base_url,
            )),
            created: (method == Method::Post).then_some((ResourceType::Group, group.id)),
        })
    }

    /// A Group operation under the tenant base of `slug`: one of the
    /// tenant's own groups, through the service its single requests call
    /// (members only the tenant's own users, roles from mapped groups, one
    /// transaction). Its answer is shaped as at the global base: the members
    /// after a POST only.
    async fn tenant_group_operation(
        &self,
        caller: &Provisioner,
        slug: &str,
        method: Method,
        id_text: &str,
        precondition: Precondition<'_>,
        data: &Value,
    ) -> Result<Done, ScimError> {
        let base_url = &self.sent.base_url;
        let groups = TenantGroups::new(&self.ctx.store);
        let who = Identity::Provisioner(caller);
        let id = canonical_id(id_text);
        let error = |f| group_error(f, id_text);
        let group = match method {
            Method::Post => {
                let input = group_resource::from_json(data);
                Box::pin(groups.create(who, slug, input))
                    .await
                    .map_err(error)?
            }
            Method::Put => {
                let input = replacement(data);
                Box::pin(groups.update(who, slug, id, precondition, input))
                    .await
                    .map_err(error)?
            }
            Method::Patch => {
                let input = group_resource::parse_patch(data, id.unwrap_or(0));
                Box::pin(groups.update(who, slug, id, precondition, input))
                    .await
                    .map_err(error)?
            }
            Method::Delete => {
                Box::pin(groups.delete::<ScimError>(who, slug, id, precondition))
                    .await
                    .map_err(error)?;
                return Ok(Done {
                    status: StatusCode::NO_CONTENT,
                    location: ResourceType::Group.location_of(id_text, base_url),
                    version: None,
                    resource: None,
                    created: None,
                });
            }
        };
        let record = &group.record;
        let created = method == Method::Post;
        let members = created.then(|| group.member_ids());
        Ok(Done {
            status: if created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            },
            location: ResourceType::Group.location(record.id, base_url),
            version: Some(record.version),
            resource: Some(group_resource::to_json(
                record,
                members.as_deref(),
                base_url,
            )),
            created: created.then_some((ResourceType::Group, record.id)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(ops: Value) -> BulkRequest {
        BulkRequest::parse(&json!({"schemas": [BULK_REQUEST_SCHEMA], "Operations": ops})).unwrap()
    }

    fn post(bulk_id: &str, data: Value) -> Value {
        json!({"method": "POST", "path": "/Users", "bulkId": bulk_id, "data": data})
    }

    #[test]
    fn operations_run_after_what_they_reference_else_in_order() {
        let r = request(json!([
            {"method": "POST", "path": "/Groups", "bulkId": "g",
             "data": {"displayName": "G", "members": [{"value": "bulkId:a"}, {"value": "bulkId:b"}]}},
            post("a", json!({"userName": "a"})),
            {"method": "PATCH", "path": "/Users/bulkId:b", "data": {"Operations": []}},
            post("b", json!({"userName": "b", "manager": "bulkId:a"})),
            {"method": "DELETE", "path": "/Users/7"},
        ]));
        assert_eq!(
            r.order(),
            [
                Step::Run(1),
                Step::Run(3),
                Step::Run(0),
                Step::Run(2),
                Step::Run(4)
            ]
        );
    }

    #[test]
    fn a_cycle_fails_the_operations_in_it_and_its_dependents_come_last() {
        let r = request(json!([
            {"method": "PATCH", "path": "/Users/bulkId:x", "data": {"Operations": []}},
            post("x", json!({"userName": "x", "manager": "bulkId:y"})),
            post("y", json!({"userName": "y", "manager": "bulkId:x"})),
            post("self", json!({"userName": "s", "manager": "bulkId:self"})),
            post("free", json!({"userName": "f"})),
        ]));
        let xy = vec!["x".to_string(), "y".to_string()];
        assert_eq!(
            r.order(),
            [
                Step::Run(4),
                Step::Cycle(1, xy.clone()),
                Step::Cycle(2, xy),
                Step::Cycle(3, vec!["self".into()]),
                Step::Run(0),
            ]
        );
    }

    #[test]
    fn the_request_is_read_as_rfc_7644_has_it() {
        let bad = |body: Value| {
            BulkRequest::parse(&body)
                .err()
                .map(|e| (e.status, e.detail))
        };
        assert_eq!(
            bad(json!({"Operations": [post("a", json!({})), post("a", json!({}))]})),
            Some((
                400,
                "bulkId \"a\" names more than one POST: each must be unique within the request."
                    .into()
            ))
        );
        assert_eq!(
            bad(json!({"schemas": ["urn:x"], "Operations": []})).map(|e| e.0),
            Some(400)
        );
        assert_eq!(
            bad(json!({"failOnErrors": 0, "Operations": []})),
            Some((400, "failOnErrors must be a positive integer, not 0".into()))
        );
        assert_eq!(bad(json!({"Operations": {}})).map(|e| e.0), Some(400));
        let many: Vec<Value> = (0..=BULK_MAX_OPERATIONS)
            .map(|i| json!({"method": "DELETE", "path": format!("/Users/{i}")}))
            .collect();
        assert_eq!(bad(json!({"Operations": many})).map(|e| e.0), Some(413));

        // What each operation says about itself.
        let r = request(json!([
            {"method": "post", "path": "/Users", "data": {}},
            {"method": "PUT", "path": "/Users", "data": {}},
            {"method": "PATCH", "path": "/Users/3"},
            {"method": "GET", "path": "/Users/3"},
            {"method": "DELETE", "path": "/Schemas/3"},
            {"method": "DELETE", "path": "Groups/bulkId:g"},
            "nope",
        ]));
        let details: Vec<Result<Target, String>> = r
            .operations
            .iter()
            .map(|o| o.target.clone().map_err(|e| e.detail))
            .collect();
        assert_eq!(
            details,
            [
                Err("A POST operation needs a bulkId (RFC 7644 §3.7).".into()),
                Err("Invalid path \"/Users\": a PUT names one resource.".into()),
                Err("A PATCH operation needs data.".into()),
                Err("Unknown method \"GET\": expected POST, PUT, PATCH or DELETE.".into()),
                Err(
                    "Invalid path \"/Schemas/3\": bulk operations act on /Users and /Groups."
                        .into()
                ),
                Ok(Target {
                    resource: ResourceType::Group,
                    named: Some(Named::BulkId("g".into()))
                }),
                Err("Each operation must be an object with a method and a path.".into()),
            ]
        );
        assert_eq!(r.operations[5].references, ["g"]);
    }

    #[test]
    fn references_are_replaced_wherever_they_are() {
        let data = json!({"members": [{"value": "bulkId:a"}, {"value": "7"}],
                          "x": {"manager": "bulkId:b"}, "title": "bulkId:unknown"});
        let mut refs = Vec::new();
        references(&data, &mut refs);
        assert_eq!(refs, ["a", "b", "unknown"]);
        let resolved = HashMap::from([("a", "11".to_string()), ("b", "12".to_string())]);
        assert_eq!(
            substitute(&data, &resolved),
            json!({"members": [{"value": "11"}, {"value": "7"}],
                   "x": {"manager": "12"}, "title": "bulkId:unknown"})
        );
    }
}
