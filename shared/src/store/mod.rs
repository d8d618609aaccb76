//! DynamoDB: the only code that talks to the table.
//!
//! [`Store`] is the table and a request's budget; what the code does to the
//! table goes through one of its capabilities, small borrowed types named by
//! what they touch, so a caller's calls say which items it reads and writes:
//!
//! - [`Store::users`] ([`Users`], `users.rs`): user items, their reads (by
//!   id, id range, id order, pages, the search index), writes (with the
//!   claims, counts, tokens and memberships that go with them), imports and
//!   last logins;
//! - [`Store::groups`] ([`Groups`], `groups.rs`): groups, which are orgs,
//!   and their members;
//! - [`Store::memberships`] ([`Memberships`], `memberships.rs`): reads of
//!   the member items, as the admin API's memberships list them;
//! - [`Store::counts`] ([`Counts`], `counts.rs`): the user counts per id
//!   bucket, and where list pages start;
//! - [`Store::claims`] ([`Claims`], `claims.rs`): who holds a unique value;
//! - [`Store::tokens`] ([`Tokens`], `tokens.rs`): API tokens;
//! - [`Store::logins`] ([`Logins`], `logins.rs`): failed-login trackers;
//! - [`Store::tenants`] ([`Tenants`], `tenants.rs`): orgs as SCIM tenants,
//!   their tokens and domains;
//! - [`Store::oauth_clients`] ([`OAuthClients`], `clients.rs`): orgs' OAuth
//!   clients and the access tokens they issue;
//! - [`Store::subscribers`] ([`Subscribers`], `subscribers.rs`): receivers of
//!   change events and the deliveries kept for them.
//!
//! [`Store::fetch`] (`prefetch.rs`) is the one batch read auth and the
//! services make: the caller and what the request already names. The
//! transactions every capability sends are here too (`Store::commit`), and the table's
//! layout (keys, indexes, items to records and back) in `table.rs`; every call goes
//! through the helpers here, which count round trips and consumed capacity
//! per request, so the request log shows what each operation costs.
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::operation::query::QueryOutput;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    ConsumedCapacity, Delete, KeysAndAttributes, Put, ReturnConsumedCapacity, ReturnValue,
    TransactWriteItem,
};
use aws_sdk_dynamodb::Client;

use self::table::{key, n};

mod claims;
pub mod client;
mod clients;
mod counts;
mod errors;
mod groups;
mod logins;
mod memberships;
mod modified;
pub mod permissions;
mod prefetch;
mod subscribers;
pub mod table;
mod tenant_groups;
mod tenants;
mod tokens;
mod users;

pub use claims::Claims;
pub use client::{client_from_env, Budget, BULK_REQUEST_BUDGET, REQUEST_BUDGET};
pub use clients::{ClientRecord, IssuingOrg, OAuthClient, OAuthClients, LIVE_TOKENS_PER_CLIENT};
pub use counts::{
    block_of, BucketCounts, CountDelta, Counts, Position, UserCounts, BLOCK_IDS, BUCKET_IDS,
};
pub use errors::{classify, FaultKind, StoreError, Unavailable, UniqueField};
pub use groups::{
    slug_candidates, valid_slug, Groups, MemberChanges, Org, DEFAULT_ROLE, MEMBERS_PER_TRANSACTION,
};
pub use logins::{LoginClaim, Logins};
pub use memberships::Memberships;
pub use modified::{Change, Changes};
pub use prefetch::{Fetched, OrgKey, Wanted};
pub use subscribers::{Delivery, DeliveryStatus, Subscriber, Subscribers, KEEP_DELIVERIES_SECS};
pub use table::Item;
pub use tenant_groups::{GroupWrite, RoleWrite, TenantGroups};
pub use tenants::{DomainAdded, TenantOrg, TenantToken, Tenants};
pub use tokens::{StoredToken, TokenOwner, TokenSpec, Tokens};
pub use users::{Page, Slice, UserRow, Users, WRITE_ATTEMPTS};

pub type Result<T> = std::result::Result<T, StoreError>;

/// Round trips and capacity of one request.
#[derive(Debug, Default)]
pub struct Metrics {
    calls: AtomicU32,
    capacity: Mutex<f64>,
}

impl Metrics {
    pub fn calls(&self) -> u32 {
        self.calls.load(Ordering::Relaxed)
    }

    pub fn capacity_units(&self) -> f64 {
        *self.capacity.lock().expect("metrics lock")
    }

    /// A single-item call's consumption (GetItem, UpdateItem, Query).
    fn record_one(&self, consumed: Option<&ConsumedCapacity>) {
        self.record(consumed.map(std::slice::from_ref).unwrap_or_default());
    }

    fn record(&self, consumed: &[ConsumedCapacity]) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let units: f64 = consumed.iter().filter_map(|c| c.capacity_units()).sum();
        *self.capacity.lock().expect("metrics lock") += units;
    }
}

#[derive(Clone)]
pub struct Store {
    client: Client,
    table: String,
    metrics: Arc<Metrics>,
    budget: Budget,
    /// When the request this store serves must stop waiting on DynamoDB.
    deadline: Option<Instant>,
}

/// Rounds of `UnprocessedKeys` a batch read retries before giving up (503).
const BATCH_ROUNDS: u32 = 5;

/// DynamoDB's limit on the keys of one `BatchGetItem`.
const BATCH_KEYS: usize = 100;

/// Items one page of a query asks for at most: the service stops at 1 MB
/// anyway, and this keeps one call's capacity small.
const QUERY_PAGE: usize = 1000;

impl Store {
    pub fn new(client: Client, table: impl Into<String>) -> Store {
        Store {
            client,
            table: table.into(),
            metrics: Arc::default(),
            budget: Budget::LAMBDA,
            deadline: None,
        }
    }

    /// The same store with other time limits per request (tests use tight ones).
    pub fn with_budget(mut self, budget: Budget) -> Store {
        self.budget = budget;
        self
    }

    pub fn budget(&self) -> &Budget {
        &self.budget
    }

    /// The client the environment describes: `TABLE_NAME` (default `users`),
    /// `DYNAMODB_ENDPOINT` for DynamoDB Local, AWS region and credentials as usual.
    pub async fn from_env() -> Store {
        let table = std::env::var("TABLE_NAME").unwrap_or_else(|_| "users".to_string());
        Store::new(client_from_env().await, table)
    }

    /// The same table with fresh counters and the budget's deadline, for one request.
    pub fn for_request(&self) -> Store {
        Store {
            client: self.client.clone(),
            table: self.table.clone(),
            metrics: Arc::default(),
            budget: self.budget,
            deadline: Some(Instant::now() + self.budget.request),
        }
    }

    /// The same store (and counters) for a request allowed `request` in all
    /// from now on, instead of its budget's: a SCIM bulk request, which
    /// runs many operations and has a function timeout to match
    /// ([`client::BULK_REQUEST_BUDGET`]).
    pub fn with_request_budget(&self, request: std::time::Duration) -> Store {
        Store {
            budget: Budget {
                request,
                ..self.budget
            },
            deadline: Some(Instant::now() + request),
            ..self.clone()
        }
    }

    /// How long this request may still wait on DynamoDB (`None`: no deadline).
    pub fn time_left(&self) -> Option<std::time::Duration> {
        self.deadline
            .map(|d| d.saturating_duration_since(Instant::now()))
    }

    /// Runs one DynamoDB call, cut short when the request's deadline passes
    /// (the SDK bounds each call; this bounds their sum).
    pub(crate) async fn within<F: Future>(&self, call: F) -> Result<F::Output> {
        let Some(deadline) = self.deadline else {
            return Ok(call.await);
        };
        tokio::time::timeout_at(deadline.into(), call)
            .await
            .map_err(|_| self.out_of_time())
    }

    fn out_of_time(&self) -> StoreError {
        StoreError::Unavailable(Unavailable::new(
            FaultKind::Timeout,
            "RequestBudget",
            format!(
                "DynamoDB did not answer within the request's budget of {:?}",
                self.budget.request
            ),
        ))
    }

    /// Waits before retry `attempt` (1-based): full jitter over an exponential
    /// step, so that writers that collided spread out. Gives up (503) rather
    /// than sleep past the request's deadline.
    pub(crate) async fn back_off(&self, attempt: u32, kind: FaultKind, code: &str) -> Result<()> {
        let step = self
            .budget
            .initial_backoff
            .saturating_mul(1 << attempt.min(10))
            .min(self.budget.max_backoff);
        let pause = step.mul_f64(rand::random::<f64>());
        if self.deadline.is_some_and(|d| Instant::now() + pause >= d) {
            return Err(StoreError::Unavailable(Unavailable::new(
                kind,
                code,
                "retries would run past the request's deadline",
            )));
        }
        tokio::time::sleep(pause).await;
        Ok(())
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Strongly consistent reads of up to 100 keys in one round trip (more only
    /// when DynamoDB hands back unprocessed keys, which it does when throttled:
    /// those are retried after a backoff, a few times, then it is a 503).
    /// Missing items are absent from the map.
    pub(crate) async fn batch_get(
        &self,
        keys: Vec<Item>,
    ) -> Result<HashMap<(String, String), Item>> {
        self.batch_get_with(keys, true).await
    }

    /// [`Store::batch_get`], strongly consistent or not (half the capacity).
    pub(crate) async fn batch_get_with(
        &self,
        keys: Vec<Item>,
        consistent: bool,
    ) -> Result<HashMap<(String, String), Item>> {
        let mut found = HashMap::new();
        // A key longer than any this code writes holds nothing; DynamoDB
        // would refuse it with a validation error (a 500).
        let mut pending: Vec<Item> = dedup_keys(keys).into_iter().filter(storable).collect();
        let mut round = 0;
        while !pending.is_empty() {
            if round > 0 {
                if round >= BATCH_ROUNDS {
                    return Err(StoreError::Unavailable(Unavailable::new(
                        FaultKind::Throttled,
                        "UnprocessedKeys",
                        format!(
                            "{} keys still unprocessed after {round} rounds",
                            pending.len()
                        ),
                    )));
                }
                self.back_off(round, FaultKind::Throttled, "UnprocessedKeys")
                    .await?;
            }
            round += 1;
            let request = KeysAndAttributes::builder()
                .set_keys(Some(pending))
                .consistent_read(consistent)
                .build()
                .map_err(|e| StoreError::Fault(e.to_string()))?;
            let out = self.within(
                self.client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .return_consumed_capacity(ReturnConsumedCapacity::Total)
                    .send(),
            );
            let out = self.counted(out.await?)?;
            self.metrics.record(out.consumed_capacity());
            for item in out
                .responses()
                .and_then(|r| r.get(&self.table))
                .into_iter()
                .flatten()
            {
                found.insert(item_key(item), item.clone());
            }
            pending = out
                .unprocessed_keys()
                .and_then(|u| u.get(&self.table))
                .map(|k| k.keys().to_vec())
                .unwrap_or_default();
        }
        Ok(found)
    }

    /// [`Store::batch_get_with`] over any number of keys, 100 per call.
    pub(crate) async fn batch_get_all(
        &self,
        keys: Vec<Item>,
        consistent: bool,
    ) -> Result<HashMap<(String, String), Item>> {
        let mut found = HashMap::new();
        let mut keys = keys;
        while !keys.is_empty() {
            let rest = keys.split_off(keys.len().min(BATCH_KEYS));
            found.extend(self.batch_get_with(keys, consistent).await?);
            keys = rest;
        }
        Ok(found)
    }

    /// One page of `query`, from `start` (the previous page's last key): one
    /// call within the request's budget, its capacity counted.
    pub(crate) async fn query_page(
        &self,
        query: QueryFluentBuilder,
        start: Option<Item>,
    ) -> Result<QueryOutput> {
        // Boxed: the SDK's call is a large future, and every list awaits one.
        let out = self.within(Box::pin(
            query
                .set_exclusive_start_key(start)
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send(),
        ));
        let out = self.counted(out.await?)?;
        self.metrics.record_one(out.consumed_capacity());
        Ok(out)
    }

    /// Every item `query` finds, page after page (a call each).
    pub(crate) async fn query_all(&self, query: QueryFluentBuilder) -> Result<Vec<Item>> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let out = self.query_page(query.clone(), start).await?;
            items.extend(out.items.unwrap_or_default());
            start = out.last_evaluated_key;
            if start.is_none() {
                return Ok(items);
            }
        }
    }

    /// A call that failed still counts as a round trip.
    pub(crate) fn counted<T, E>(&self, result: std::result::Result<T, E>) -> Result<T>
    where
        StoreError: From<E>,
    {
        result.map_err(|e| {
            self.metrics.record(&[]);
            StoreError::from(e)
        })
    }

    pub(crate) async fn get(&self, key: Item) -> Result<Option<Item>> {
        if !storable(&key) {
            return Ok(None);
        }
        let out = self.within(
            self.client
                .get_item()
                .table_name(&self.table)
                .set_key(Some(key))
                .consistent_read(true)
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send(),
        );
        let out = self.counted(out.await?)?;
        self.metrics.record_one(out.consumed_capacity());
        Ok(out.item().cloned())
    }
}

// ------------------------------------------------------------ writes
// What every write is made of: transactions whose cancellation reasons are
// mapped back to what failed, the deletes they carry, and the id counters.
// The capabilities build their items; this sends them.

/// How often a transaction cancelled for a transient reason (another
/// transaction on the same item, throttling) is sent again.
const TRANSACTION_ATTEMPTS: u32 = 6;

/// DynamoDB's limit on the actions of one transaction.
pub(super) const TRANSACTION_LIMIT: usize = 100;

/// What one slot of a transaction stands for, so a cancellation reason at
/// position i can be mapped back to the field that conflicted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Slot {
    User,
    Claim(UniqueField),
    Other,
}

/// Items a transaction makes anew for each attempt.
type PerAttempt<'a> = Box<dyn Fn() -> Result<Vec<TransactWriteItem>> + Send + Sync + 'a>;

#[derive(Default)]
pub(super) struct Transaction<'a> {
    items: Vec<TransactWriteItem>,
    slots: Vec<Slot>,
    /// Items made anew for each attempt, and how many (a user's bucket
    /// counts, added to a copy picked per attempt: [`Counts::add_to`]).
    per_attempt: Option<(usize, PerAttempt<'a>)>,
}

impl<'a> Transaction<'a> {
    pub(super) fn put(&mut self, slot: Slot, put: Put) {
        self.items
            .push(TransactWriteItem::builder().put(put).build());
        self.slots.push(slot);
    }

    pub(super) fn delete(&mut self, slot: Slot, delete: Delete) {
        self.items
            .push(TransactWriteItem::builder().delete(delete).build());
        self.slots.push(slot);
    }

    pub(super) fn push(&mut self, slot: Slot, item: TransactWriteItem) {
        self.items.push(item);
        self.slots.push(slot);
    }

    /// Adds the `count` items `make` builds, anew for each attempt.
    pub(super) fn per_attempt(&mut self, count: usize, make: PerAttempt<'a>) {
        self.per_attempt = Some((count, make));
    }

    pub(super) fn len(&self) -> usize {
        self.items.len() + self.per_attempt.as_ref().map_or(0, |(count, _)| *count)
    }
}

pub(super) fn built<T>(
    r: std::result::Result<T, aws_sdk_dynamodb::error::BuildError>,
) -> Result<T> {
    r.map_err(|e| StoreError::Fault(e.to_string()))
}

/// A put that lands only where no item is (a new group's items, a claim of
/// a group).
pub(super) fn put_if_absent(table: &str, item: Item) -> Result<Put> {
    built(
        Put::builder()
            .table_name(table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .build(),
    )
}

impl Store {
    /// Moves the id counter at `(pk, sk)` on by one: one update. Returns the
    /// new id.
    pub(super) async fn next_id(&self, (pk, sk): (&str, &str)) -> Result<u64> {
        let out = self.within(
            self.client()
                .update_item()
                .table_name(self.table())
                .set_key(Some(key(pk, sk)))
                .update_expression("ADD next_id :one")
                .expression_attribute_values(":one", n(1))
                .return_values(ReturnValue::UpdatedNew)
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send(),
        );
        let out = self.counted(out.await?)?;
        self.metrics().record_one(out.consumed_capacity());
        out.attributes()
            .and_then(|a| table::get_n(a, "next_id"))
            .ok_or_else(|| StoreError::Corrupt(format!("{pk}/{sk}")))
    }

    /// Deletes an item only at the version that was read (a user, a group).
    pub(super) fn versioned_delete(
        &self,
        pk: impl Into<String>,
        sk: impl Into<String>,
        expected_version: u64,
    ) -> Result<Delete> {
        built(
            Delete::builder()
                .table_name(self.table())
                .set_key(Some(key(pk, sk)))
                .condition_expression("#version = :v")
                .expression_attribute_names("#version", "version")
                .expression_attribute_values(":v", n(expected_version))
                .build(),
        )
    }

    pub(super) fn plain_delete(&self, pk: String, sk: impl Into<String>) -> Result<Delete> {
        built(
            Delete::builder()
                .table_name(self.table())
                .set_key(Some(key(pk, sk)))
                .build(),
        )
    }

    /// Sends a transaction. Cancellations for a failed condition become
    /// `Taken` or `Conflict`; cancellations for a transient reason (another
    /// transaction holding one of the items, throttling) are sent again after a
    /// jittered backoff, then end as `Unavailable`.
    pub(super) async fn commit(&self, tx: Transaction<'_>) -> Result<()> {
        let mut attempt = 1;
        loop {
            let mut items = tx.items.clone();
            if let Some((_, make)) = &tx.per_attempt {
                items.extend(make()?);
            }
            // The SDK sends this token again on its own retries, so a
            // transaction whose answer was lost is applied once, not twice.
            let token = uuid::Uuid::new_v4().to_string();
            let sent = self.within(
                self.client()
                    .transact_write_items()
                    .set_transact_items(Some(items))
                    .client_request_token(token)
                    .return_consumed_capacity(ReturnConsumedCapacity::Total)
                    .send(),
            );
            let raw = match sent.await? {
                Ok(out) => {
                    self.metrics().record(out.consumed_capacity());
                    return Ok(());
                }
                Err(raw) => raw,
            };
            self.metrics().record(&[]);
            let Some(TransactWriteItemsError::TransactionCanceledException(e)) =
                raw.as_service_error()
            else {
                return Err(classify(&raw));
            };
            let codes: Vec<&str> = e
                .cancellation_reasons()
                .iter()
                .map(|r| r.code().unwrap_or("None"))
                .collect();
            if let Some(err) = condition_failure(&codes, &tx.slots) {
                return Err(err);
            }
            let transient = codes.iter().find_map(|c| match *c {
                "TransactionConflict" => Some((FaultKind::Contention, *c)),
                "ThrottlingError" | "ProvisionedThroughputExceeded" => {
                    Some((FaultKind::Throttled, *c))
                }
                _ => None,
            });
            let Some((kind, code)) = transient else {
                return Err(StoreError::Fault(format!(
                    "transaction cancelled: {codes:?}"
                )));
            };
            if attempt >= TRANSACTION_ATTEMPTS {
                return Err(StoreError::Unavailable(Unavailable::new(
                    kind,
                    code,
                    format!("transaction cancelled {attempt} times: {codes:?}"),
                )));
            }
            self.back_off(attempt, kind, code).await?;
            attempt += 1;
        }
    }

    /// Commits raw transaction items (tokens, org members, count blocks);
    /// `true` marks the versioned user item, whose failed condition is a
    /// lost race.
    pub(super) async fn commit_items(&self, items: Vec<(TransactWriteItem, bool)>) -> Result<()> {
        let mut tx = Transaction::default();
        for (item, is_user) in items {
            tx.items.push(item);
            tx.slots
                .push(if is_user { Slot::User } else { Slot::Other });
        }
        debug_assert!(tx.len() <= TRANSACTION_LIMIT);
        self.commit(tx).await
    }
}

/// What failed conditions in a cancelled transaction mean. A stale version
/// means another write won the race: that is a conflict (the caller re-reads
/// and retries) even if a claim failed too, since the winner may hold it for
/// this very user. Otherwise a failed claim names the taken field, and any
/// other failed condition is a lost race. `None` when no condition failed.
fn condition_failure(codes: &[&str], slots: &[Slot]) -> Option<StoreError> {
    let failed: Vec<Slot> = codes
        .iter()
        .zip(slots)
        .filter(|(code, _)| **code == "ConditionalCheckFailed")
        .map(|(_, slot)| *slot)
        .collect();
    let claim = failed.iter().find_map(|s| match s {
        Slot::Claim(f) => Some(*f),
        _ => None,
    });
    match claim {
        _ if failed.contains(&Slot::User) => Some(StoreError::Conflict),
        Some(field) => Some(StoreError::Taken(field)),
        None if !failed.is_empty() => Some(StoreError::Conflict),
        None => None,
    }
}

/// The `(pk, sk)` of an item or key.
pub fn item_key(item: &Item) -> (String, String) {
    let part = |name| table::get_s(item, name).unwrap_or_default().to_string();
    (part(table::PK), part(table::SK))
}

/// Whether DynamoDB accepts the key (partition keys up to 2,048 bytes, sort
/// keys up to 1,024). The views refuse longer request values first (see
/// [`table::fits`]); this is the backstop that keeps one from becoming a 500.
fn storable(key: &Item) -> bool {
    let (pk, sk) = item_key(key);
    pk.len() <= 2048 && sk.len() <= 1024
}

fn dedup_keys(keys: Vec<Item>) -> Vec<Item> {
    let mut seen = std::collections::HashSet::new();
    keys.into_iter()
        .filter(|k| seen.insert(item_key(k)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cancellation_reasons_map_to_what_failed() {
        let slots = [
            Slot::User,
            Slot::Claim(UniqueField::Username),
            Slot::Claim(UniqueField::Email),
            Slot::Other,
        ];
        let cases: Vec<(&[&str], Option<StoreError>)> = vec![
            (
                &["None", "ConditionalCheckFailed", "None", "None"],
                Some(StoreError::Taken(UniqueField::Username)),
            ),
            (
                &["None", "None", "ConditionalCheckFailed", "None"],
                Some(StoreError::Taken(UniqueField::Email)),
            ),
            (
                &[
                    "ConditionalCheckFailed",
                    "ConditionalCheckFailed",
                    "None",
                    "None",
                ],
                Some(StoreError::Conflict),
            ),
            (
                &["None", "None", "None", "ConditionalCheckFailed"],
                Some(StoreError::Conflict),
            ),
            // Transient reasons are not condition failures: the caller retries them.
            (&["TransactionConflict", "None", "None", "None"], None),
            (&["None", "ThrottlingError", "None", "None"], None),
            // A condition failure decides, whatever else was cancelled with it.
            (
                &[
                    "TransactionConflict",
                    "ConditionalCheckFailed",
                    "None",
                    "None",
                ],
                Some(StoreError::Taken(UniqueField::Username)),
            ),
        ];
        for (codes, want) in cases {
            assert_eq!(condition_failure(codes, &slots), want, "{codes:?}");
        }
    }
}
