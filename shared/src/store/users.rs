//! User items and their uniqueness claims, always written together.
//!
//! Invariants every write keeps, whichever DynamoDB call fails and when:
//! - a user item and the claims of its username, email and external id are
//!   written in one transaction, so each user holds exactly its claims and no
//!   claim points to a missing user;
//! - the user counts change in the same transaction as the user, so they equal
//!   what the lists show;
//! - a user is deleted together with its tokens and memberships (in steps for
//!   large cascades, each step leaving a whole user behind);
//! - a create that failed wrote nothing but an unused id (gaps are fine), so
//!   the same body can be sent again.
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    Delete, Put, ReturnConsumedCapacity, ReturnValue, TransactWriteItem,
};

use super::buckets::{CountDelta, BLOCK_IDS};
use super::item::{self, key, n, s, Item};
use super::{keys, FaultKind, Result, Store, StoreError, Unavailable, UniqueField};
use crate::domain::user::{now, User};

/// How often a write that lost an optimistic-lock race is tried, each time on a fresh read.
pub const WRITE_ATTEMPTS: usize = 5;

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

#[derive(Default)]
pub(super) struct Transaction {
    items: Vec<TransactWriteItem>,
    slots: Vec<Slot>,
    /// What to add to the user's bucket count, on a copy picked per attempt.
    counts: Option<CountDelta>,
}

impl Transaction {
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

    pub(super) fn len(&self) -> usize {
        self.items.len() + usize::from(self.counts.is_some())
    }
}

pub(super) fn built<T>(
    r: std::result::Result<T, aws_sdk_dynamodb::error::BuildError>,
) -> Result<T> {
    r.map_err(|e| StoreError::Fault(e.to_string()))
}

/// The claims a user holds: (field, key).
fn claims(user: &User) -> Vec<(UniqueField, (String, &'static str))> {
    let mut out = vec![(UniqueField::Username, keys::username_claim(&user.username))];
    if !user.email.is_empty() {
        out.push((UniqueField::Email, keys::email_claim(&user.email)));
    }
    if let Some(ext) = &user.external_id {
        out.push((UniqueField::ExternalId, keys::external_id_claim(ext)));
    }
    out
}

pub(super) fn claim_key(field: UniqueField, value: &str) -> (String, &'static str) {
    match field {
        UniqueField::Username => keys::username_claim(value),
        UniqueField::Email => keys::email_claim(value),
        UniqueField::ExternalId => keys::external_id_claim(value),
        UniqueField::GroupName => keys::group_name_claim(value),
        UniqueField::GroupExternalId => keys::group_external_id_claim(value),
    }
}

impl Store {
    pub async fn get_user(&self, id: u64) -> Result<Option<User>> {
        let (pk, sk) = keys::user(id);
        match self.get(key(pk, sk)).await? {
            Some(item) => Ok(Some(parse_user(&item)?)),
            None => Ok(None),
        }
    }

    /// The id that holds a uniqueness claim, if any.
    pub async fn claim_owner(&self, field: UniqueField, value: &str) -> Result<Option<u64>> {
        let (pk, sk) = claim_key(field, value);
        Ok(self.get(key(pk, sk)).await?.and_then(|item| {
            item::get_n(&item, "user_id").or_else(|| item::get_n(&item, "group_id"))
        }))
    }

    /// The user that holds a uniqueness claim: two reads.
    pub async fn user_by_claim(&self, field: UniqueField, value: &str) -> Result<Option<User>> {
        match self.claim_owner(field, value).await? {
            Some(id) => self.get_user(id).await,
            None => Ok(None),
        }
    }

    /// Stores a new user: one counter update for the id, then one transaction
    /// writing the user, its claims and the counts.
    pub async fn create_user(&self, mut user: User) -> Result<User> {
        user.id = self.next_id(keys::user_id_counter()).await?;
        user.version = 1;
        let t = now();
        user.date_joined = t;
        user.last_modified = t;
        user.apply_derived_rules();

        let mut tx = Transaction::default();
        tx.put(
            Slot::User,
            built(
                Put::builder()
                    .table_name(self.table())
                    .set_item(Some(item::user_to_item(&user)))
                    .condition_expression("attribute_not_exists(pk)")
                    .build(),
            )?,
        );
        for (field, (pk, sk)) in claims(&user) {
            tx.put(Slot::Claim(field), self.claim_put(pk, sk, user.id)?);
        }
        tx.counts = Some(CountDelta {
            id: user.id,
            total: 1,
            active: i64::from(user.is_active),
            create: true,
        });
        match self.commit(tx).await {
            Ok(()) => {}
            // The id is new, so only this very create can have written it: an
            // attempt that landed with its answer lost, before a retry of the
            // transaction (cancelled meanwhile, for a conflict with itself)
            // found the item there.
            Err(StoreError::Conflict) if self.get_user(user.id).await?.is_some() => {}
            Err(e) => return Err(e),
        }
        // The first user of a block: the creates of blocks before the
        // previous one are long over, so their copies can be merged.
        if user.id.is_multiple_of(BLOCK_IDS) && user.id >= 2 * BLOCK_IDS {
            self.compact_blocks(user.id / BLOCK_IDS - 1).await;
        }
        Ok(user)
    }

    /// Replaces `old` by `new` if nobody wrote the user since `old` was read.
    /// Claims of changed unique fields move in the same transaction, and so do
    /// the deletes of tokens the user no longer holds. A deactivation revokes
    /// every credential ([`User::revoke_credentials`]), whichever API or
    /// profile asked for it, and so does a reactivation (for records
    /// deactivated before this rule, and credentials issued while inactive):
    /// a reactivated user starts with none.
    pub async fn update_user(&self, old: &User, mut new: User) -> Result<User> {
        if old.is_active != new.is_active {
            new.revoke_credentials();
        }
        new.prune_expired_tokens(chrono::Utc::now().timestamp());
        new.apply_derived_rules();
        let (old_claims, new_claims) = (claims(old), claims(&new));
        let moved_claims = old_claims
            .iter()
            .filter(|(_, (pk, _))| !new_claims.iter().any(|(_, k)| k.0 == *pk))
            .count()
            + new_claims
                .iter()
                .filter(|(_, (pk, _))| !old_claims.iter().any(|(_, k)| k.0 == *pk))
                .count();
        // The user put, its moved claims and the counts always fit; tokens to
        // delete beyond that are shed first, in versioned steps.
        let room = TRANSACTION_LIMIT - (1 + moved_claims + 1);
        let mut old = old.clone();
        loop {
            let gone: Vec<String> = dropped_tokens(&old, &new);
            if gone.len() <= room {
                break;
            }
            old = self.shed_tokens(&old, &gone[..room]).await?;
        }
        new.id = old.id;
        new.version = old.version + 1;
        new.last_modified = now();

        let mut tx = Transaction::default();
        tx.put(Slot::User, self.versioned_put(&new, old.version)?);
        for (_, (pk, sk)) in &old_claims {
            if !new_claims.iter().any(|(_, k)| k.0 == *pk) {
                tx.delete(Slot::Other, self.claim_delete(pk, sk, old.id)?);
            }
        }
        for (field, (pk, sk)) in new_claims.iter().cloned() {
            if !old_claims.iter().any(|(_, k)| k.0 == pk) {
                tx.put(Slot::Claim(field), self.claim_put(pk, sk, new.id)?);
            }
        }
        for hash in dropped_tokens(&old, &new) {
            let (pk, sk) = keys::token(&hash);
            tx.delete(Slot::Other, self.plain_delete(pk, sk)?);
        }
        if old.is_active != new.is_active {
            tx.counts = Some(CountDelta {
                id: new.id,
                total: 0,
                active: if new.is_active { 1 } else { -1 },
                create: false,
            });
        }
        self.commit(tx).await?;
        Ok(new)
    }

    /// One step of a large revocation: deletes `hashes` (tokens of `user`) and
    /// drops them from the user item, leaving a whole user behind.
    async fn shed_tokens(&self, user: &User, hashes: &[String]) -> Result<User> {
        let mut next = user.clone();
        next.token_hashes.retain(|h| !hashes.contains(h));
        next.token_expiry.retain(|h, _| !hashes.contains(h));
        next.token_read_only.retain(|h, _| !hashes.contains(h));
        next.version = user.version + 1;
        let mut tx = Transaction::default();
        tx.put(Slot::User, self.versioned_put(&next, user.version)?);
        for hash in hashes {
            let (pk, sk) = keys::token(hash);
            tx.delete(Slot::Other, self.plain_delete(pk, sk)?);
        }
        self.commit(tx).await?;
        Ok(next)
    }

    /// Writes `change(current)` over `current`. When another write won the race
    /// (the version moved), reads the user again and applies `change` to that,
    /// up to [`WRITE_ATTEMPTS`] times — unless `pinned`: the client named the
    /// version it changes (`If-Match`), so a lost race is its to resolve.
    /// A change that leaves the user as it was writes nothing. `change`'s own
    /// errors (validation, a failed `If-Match`) end the loop as they are; a
    /// lost race ends as [`StoreError::Conflict`], a user deleted meanwhile as
    /// [`StoreError::NotFound`].
    pub async fn update_user_with<E>(
        &self,
        mut current: User,
        pinned: bool,
        mut change: impl FnMut(&User) -> std::result::Result<User, E>,
    ) -> std::result::Result<User, E>
    where
        E: From<StoreError>,
    {
        let mut attempt = 1;
        loop {
            let next = change(&current)?;
            if next == current {
                return Ok(current);
            }
            match self.update_user(&current, next).await {
                Err(StoreError::Conflict) if !pinned && attempt < WRITE_ATTEMPTS => {
                    attempt += 1;
                    current = self.fresh(current.id).await?;
                }
                other => return other.map_err(E::from),
            }
        }
    }

    /// Deletes `current` once `check` passes, retrying on a fresh read as
    /// [`Store::update_user_with`] does when the user changed meanwhile.
    pub async fn delete_user_with<E>(
        &self,
        mut current: User,
        pinned: bool,
        mut check: impl FnMut(&User) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E>
    where
        E: From<StoreError>,
    {
        let mut attempt = 1;
        loop {
            check(&current)?;
            match self.delete_user(&current).await {
                Err(StoreError::Conflict) if !pinned && attempt < WRITE_ATTEMPTS => {
                    attempt += 1;
                    current = self.fresh(current.id).await?;
                }
                other => return other.map_err(E::from),
            }
        }
    }

    async fn fresh(&self, id: u64) -> Result<User> {
        self.get_user(id).await?.ok_or(StoreError::NotFound)
    }

    /// Removes the user, its claims, tokens and memberships in one transaction.
    /// A user with more tokens and memberships than one transaction holds is
    /// first relieved of them in batches; each batch also updates the user's
    /// lists (versioned), so after any failure the user is whole and a retry
    /// carries on where the last attempt stopped.
    pub async fn delete_user(&self, user: &User) -> Result<()> {
        let mut user = user.clone();
        // The user, its claims and the counts always go in the last transaction.
        let fixed = 1 + claims(&user).len() + 1;
        while fixed + user.token_hashes.len() + user.memberships.len() > TRANSACTION_LIMIT {
            user = self.shed_dependents(&user).await?;
        }
        let mut tx = Transaction::default();
        let (pk, sk) = keys::user(user.id);
        tx.delete(Slot::User, self.versioned_delete(pk, sk, user.version)?);
        for (_, (pk, sk)) in claims(&user) {
            tx.delete(Slot::Other, self.claim_delete(&pk, sk, user.id)?);
        }
        for (pk, sk) in dependents(&user) {
            tx.delete(Slot::Other, self.plain_delete(pk, sk)?);
        }
        tx.counts = Some(CountDelta {
            id: user.id,
            total: -1,
            active: -i64::from(user.is_active),
            create: false,
        });
        self.commit(tx).await
    }

    /// One step of a large delete: removes up to a transaction's worth of the
    /// user's tokens and memberships and drops them from the user item.
    async fn shed_dependents(&self, user: &User) -> Result<User> {
        let mut next = user.clone();
        let mut tx = Transaction::default();
        let batch = TRANSACTION_LIMIT - 1;
        let tokens = next.token_hashes.len().min(batch);
        let memberships = next.memberships.len().min(batch - tokens);
        let shed = User {
            token_hashes: next.token_hashes.drain(..tokens).collect(),
            memberships: next.memberships.drain(..memberships).collect(),
            ..user.clone()
        };
        next.version = user.version + 1;
        tx.put(Slot::User, self.versioned_put(&next, user.version)?);
        for (pk, sk) in dependents(&shed) {
            tx.delete(Slot::Other, self.plain_delete(pk, sk)?);
        }
        self.commit(tx).await?;
        Ok(next)
    }

    /// Every user, in id order: one paginated query over GSI1.
    pub async fn all_users(&self) -> Result<Vec<User>> {
        self.users_in_id_order(false, usize::MAX, false).await
    }

    /// The first `limit` users in id order (descending or ascending), only active
    /// ones if asked: one query over GSI1 that reads no further than it needs.
    pub async fn users_in_id_order(
        &self,
        descending: bool,
        limit: usize,
        active_only: bool,
    ) -> Result<Vec<User>> {
        self.users_in_id_order_from(None, descending, limit, active_only, 0)
            .await
    }

    /// As [`Store::users_in_id_order`], from id `from` on (inclusive; downwards
    /// when descending). `read_hint`: how many users (inactive ones included)
    /// the caller expects to read to find `limit` active ones, so that a
    /// filtered read takes one round trip instead of one per shortfall.
    pub async fn users_in_id_order_from(
        &self,
        from: Option<u64>,
        descending: bool,
        limit: usize,
        active_only: bool,
        read_hint: usize,
    ) -> Result<Vec<User>> {
        let mut users = self
            .users_in_id_order_read(from, descending, limit, active_only, read_hint)
            .await?;
        users.truncate(limit);
        Ok(users)
    }

    /// [`Store::users_in_id_order_from`], keeping every listed user the
    /// reads returned (a read that goes `read_hint` far may find more than
    /// `limit`; it never reads further to find more).
    pub(super) async fn users_in_id_order_read(
        &self,
        from: Option<u64>,
        descending: bool,
        limit: usize,
        active_only: bool,
        read_hint: usize,
    ) -> Result<Vec<User>> {
        let mut read = 0;
        let mut users = Vec::new();
        let mut start = None;
        while users.len() < limit {
            let want = (limit - users.len())
                .max(read_hint.saturating_sub(read))
                .min(1000) as i32;
            let query = self
                .client()
                .query()
                .table_name(self.table())
                .index_name(keys::GSI1)
                .key_condition_expression(match (from, descending) {
                    (None, _) => "gsi1pk = :p",
                    (Some(_), false) => "gsi1pk = :p AND gsi1sk >= :from",
                    (Some(_), true) => "gsi1pk = :p AND gsi1sk <= :from",
                })
                .scan_index_forward(!descending)
                .set_filter_expression(active_only.then(|| "is_active = :active".to_string()))
                .set_expression_attribute_values(Some(
                    [(":p".to_string(), s(keys::USERS_PARTITION))]
                        .into_iter()
                        .chain(from.map(|id| (":from".to_string(), s(keys::user_order(id)))))
                        .chain(active_only.then(|| {
                            (
                                ":active".to_string(),
                                aws_sdk_dynamodb::types::AttributeValue::Bool(true),
                            )
                        }))
                        .collect(),
                ))
                .limit(want);
            let out = self.query_page(query, start).await?;
            read += out.scanned_count().max(0) as usize;
            for item in out.items() {
                users.push(parse_user(item)?);
            }
            start = out.last_evaluated_key().cloned();
            if start.is_none() {
                break;
            }
        }
        Ok(users)
    }

    /// Records a password login. Not versioned: a timestamp racing an update
    /// may be lost, which is cheaper than making every login a transaction.
    pub async fn touch_last_login(&self, user_id: u64) -> Result<chrono::DateTime<chrono::Utc>> {
        let (pk, sk) = keys::user(user_id);
        let at = now();
        let out = self.within(
            self.client()
                .update_item()
                .table_name(self.table())
                .set_key(Some(key(pk, sk)))
                .update_expression("SET last_login = :t")
                .condition_expression("attribute_exists(pk)")
                .expression_attribute_values(":t", s(crate::domain::user::format_time(&at)))
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send(),
        );
        let out = self.counted(out.await?)?;
        self.metrics().record_one(out.consumed_capacity());
        Ok(at)
    }

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
            .and_then(|a| item::get_n(a, "next_id"))
            .ok_or_else(|| StoreError::Corrupt(format!("{pk}/{sk}")))
    }

    pub(super) fn versioned_put(&self, user: &User, expected_version: u64) -> Result<Put> {
        // Guards against lost updates: the write only lands on the version we read.
        built(
            Put::builder()
                .table_name(self.table())
                .set_item(Some(item::user_to_item(user)))
                .condition_expression("#version = :v")
                .expression_attribute_names("#version", "version")
                .expression_attribute_values(":v", n(expected_version))
                .build(),
        )
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

    fn claim_put(&self, pk: String, sk: &str, user_id: u64) -> Result<Put> {
        // A claim is taken only if nobody holds it: this is the uniqueness check.
        // (A claim item without `user_id` only counts failed logins for a name
        // nobody has; taking the name replaces it.)
        let mut claim = key(pk, sk);
        claim.insert("user_id".into(), n(user_id));
        built(
            Put::builder()
                .table_name(self.table())
                .set_item(Some(claim))
                .condition_expression("attribute_not_exists(user_id)")
                .build(),
        )
    }

    fn claim_delete(&self, pk: &str, sk: &str, user_id: u64) -> Result<Delete> {
        // Only release a claim we hold, never someone else's. A claim that is
        // already gone is released too: it must not make a user undeletable.
        built(
            Delete::builder()
                .table_name(self.table())
                .set_key(Some(key(pk, sk)))
                .condition_expression("attribute_not_exists(pk) OR user_id = :id")
                .expression_attribute_values(":id", n(user_id))
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
    pub(super) async fn commit(&self, tx: Transaction) -> Result<()> {
        let mut attempt = 1;
        loop {
            let mut items = tx.items.clone();
            if let Some(delta) = tx.counts {
                items.push(
                    TransactWriteItem::builder()
                        .update(self.bucket_update(delta)?)
                        .build(),
                );
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
                return Err(super::classify(&raw));
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

    /// Commits raw transaction items (used by tokens and orgs); `true` marks
    /// the versioned user item, whose failed condition is a lost race.
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

/// The tokens `old` holds and `new` does not.
fn dropped_tokens(old: &User, new: &User) -> Vec<String> {
    old.token_hashes
        .iter()
        .filter(|h| !new.token_hashes.contains(h))
        .cloned()
        .collect()
}

/// The token and membership items that go with a user.
fn dependents(user: &User) -> Vec<(String, String)> {
    let tokens = user.token_hashes.iter().map(|hash| {
        let (pk, sk) = keys::token(hash);
        (pk, sk.to_string())
    });
    let memberships = user
        .memberships
        .iter()
        .map(|m| keys::membership(&m.org_slug, user.id));
    tokens.chain(memberships).collect()
}

pub(super) fn parse_user(item: &Item) -> Result<User> {
    item::user_from_item(item).ok_or_else(|| {
        StoreError::Corrupt(
            item::get_s(item, keys::PK)
                .unwrap_or("<no key>")
                .to_string(),
        )
    })
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
