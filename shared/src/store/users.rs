//! User items, and every read of them: what `store.users()` does.
//!
//! Invariants every write keeps, whichever DynamoDB call fails and when:
//! - a user item and the claims of its username, email and external id are
//!   written in one transaction, so each user holds exactly its claims and no
//!   claim points to a missing user;
//! - the user counts change in the same transaction as the user, so they equal
//!   what the lists show;
//! - a user is deleted together with its tokens, memberships and its place in
//!   its tenant's groups (in steps for
//!   large cascades, each step leaving a whole user behind);
//! - a create that failed wrote nothing but an unused id (gaps are fine), so
//!   the same body can be sent again.
//!
//! Reads: by key (one user, or a batch of ids), over GSI1 in id order (every
//! user, an id range, a page at a position the counts locate, pages after an
//! id), and over the search index (every user's listed fields). A bulk
//! import writes users without transactions ([`Users::import`]).
use std::collections::{HashMap, HashSet};

use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::types::{
    AttributeValue, Put, PutRequest, ReturnConsumedCapacity, ReturnValue, WriteRequest,
};
use tokio::task::JoinSet;

use super::counts::{BucketCounts, CountDelta, BLOCK_IDS};
use super::table::user_claims;
use super::table::{self, key, n, s, Item};
use super::{built, Slot, Transaction, TRANSACTION_LIMIT};
use super::{FaultKind, Result, Store, StoreError, Unavailable, QUERY_PAGE};
use crate::domain::query::{Field, FieldValue, UserFields};
use crate::domain::user::{now, User};

/// How often a write that lost an optimistic-lock race is tried, each time on a fresh read.
pub const WRITE_ATTEMPTS: usize = 5;

/// DynamoDB's limit on the requests of one `BatchWriteItem`.
const BATCH_WRITE_ITEMS: usize = 25;

/// Batches of an import in flight at once: enough to hide the round trip,
/// few enough not to swamp a DynamoDB Local sharing two cores with the
/// benchmark.
const CONCURRENT_BATCHES: usize = 4;

/// Rounds of `UnprocessedItems` one import batch retries (with backoff)
/// before the import gives up. More than a request's reads get: an import
/// has no client waiting on it, and an on-demand table throttles while it
/// scales up.
const WRITE_ROUNDS: u32 = 10;

/// The users: what `store.users()` reads and writes. It touches the user
/// items (`USER#<id>` / `USER`, listed on GSI1 and the search index) and,
/// in the transactions that write a user, what goes with it: its claims, its
/// bucket count, the tokens it drops and, on a delete, its tokens and member
/// items; an import also moves the user id counter.
#[derive(Clone, Copy)]
pub struct Users<'a> {
    store: &'a Store,
}

impl Store {
    pub fn users(&self) -> Users<'_> {
        Users { store: self }
    }

    /// The put of `user`'s item that lands only on the version that was
    /// read: every write of a user item (a token, a membership) goes
    /// through it.
    pub(super) fn versioned_put(&self, user: &User, expected_version: u64) -> Result<Put> {
        // Guards against lost updates: the write only lands on the version we read.
        built(
            Put::builder()
                .table_name(self.table())
                .set_item(Some(table::user_to_item(user)))
                .condition_expression("#version = :v")
                .expression_attribute_names("#version", "version")
                .expression_attribute_values(":v", n(expected_version))
                .build(),
        )
    }
}

impl Users<'_> {
    /// The user with id `id`: one strongly consistent GetItem.
    pub async fn get(&self, id: u64) -> Result<Option<User>> {
        let (pk, sk) = table::user(id);
        match self.store.get(key(pk, sk)).await? {
            Some(item) => Ok(Some(parse_user(&item)?)),
            None => Ok(None),
        }
    }

    /// Stores a new user: one counter update for the id, then one transaction
    /// writing the user, its claims, the member items of the memberships it
    /// starts with (a user made under an org's SCIM tenant base is a member
    /// of that org) and the counts.
    pub async fn create(&self, mut user: User) -> Result<User> {
        user.id = self.store.next_id(table::user_id_counter()).await?;
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
                    .table_name(self.store.table())
                    .set_item(Some(table::user_to_item(&user)))
                    .condition_expression("attribute_not_exists(pk)")
                    .build(),
            )?,
        );
        let claims = self.store.claims();
        for (field, (pk, sk)) in user_claims(&user) {
            tx.put(Slot::Claim(field), claims.take(pk, sk, user.id)?);
        }
        for member in new_member_items(&user) {
            tx.put(
                Slot::Other,
                super::put_if_absent(self.store.table(), member)?,
            );
        }
        self.store.counts().add_to(
            &mut tx,
            CountDelta {
                id: user.id,
                total: 1,
                active: i64::from(user.is_active),
                create: true,
                owner: user.owner,
            },
        );
        match self.store.commit(tx).await {
            Ok(()) => {}
            // The id is new, so only this very create can have written it: an
            // attempt that landed with its answer lost, before a retry of the
            // transaction (cancelled meanwhile, for a conflict with itself)
            // found the item there.
            Err(StoreError::Conflict) if self.get(user.id).await?.is_some() => {}
            Err(e) => return Err(e),
        }
        // The first user of a block: the creates of blocks before the
        // previous one are long over, so their copies can be merged.
        if user.id.is_multiple_of(BLOCK_IDS) && user.id >= 2 * BLOCK_IDS {
            self.store
                .counts()
                .compact_before(user.id / BLOCK_IDS - 1)
                .await;
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
    pub async fn update(&self, old: &User, mut new: User) -> Result<User> {
        if old.is_active != new.is_active {
            new.revoke_credentials();
        }
        new.prune_expired_tokens(chrono::Utc::now().timestamp());
        new.apply_derived_rules();
        let (old_claims, new_claims) = (user_claims(old), user_claims(&new));
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
        tx.put(Slot::User, self.store.versioned_put(&new, old.version)?);
        // Only a change of a unique value touches the claims.
        for (_, (pk, sk)) in &old_claims {
            if !new_claims.iter().any(|(_, k)| k.0 == *pk) {
                tx.delete(Slot::Other, self.store.claims().release(pk, sk, old.id)?);
            }
        }
        for (field, (pk, sk)) in new_claims.iter().cloned() {
            if !old_claims.iter().any(|(_, k)| k.0 == pk) {
                tx.put(
                    Slot::Claim(field),
                    self.store.claims().take(pk, sk, new.id)?,
                );
            }
        }
        for hash in dropped_tokens(&old, &new) {
            let (pk, sk) = table::token(&hash);
            tx.delete(Slot::Other, self.store.plain_delete(pk, sk)?);
        }
        if old.is_active != new.is_active {
            self.store.counts().add_to(
                &mut tx,
                CountDelta {
                    id: new.id,
                    total: 0,
                    active: if new.is_active { 1 } else { -1 },
                    create: false,
                    owner: new.owner,
                },
            );
        }
        self.store.commit(tx).await?;
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
        tx.put(Slot::User, self.store.versioned_put(&next, user.version)?);
        for hash in hashes {
            let (pk, sk) = table::token(hash);
            tx.delete(Slot::Other, self.store.plain_delete(pk, sk)?);
        }
        self.store.commit(tx).await?;
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
    pub async fn update_with<E>(
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
            match self.update(&current, next).await {
                Err(StoreError::Conflict) if !pinned && attempt < WRITE_ATTEMPTS => {
                    attempt += 1;
                    current = self.fresh(current.id).await?;
                }
                other => return other.map_err(E::from),
            }
        }
    }

    /// Deletes `current` once `check` passes, retrying on a fresh read as
    /// [`Users::update_with`] does when the user changed meanwhile.
    pub async fn delete_with<E>(
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
            match self.delete(&current).await {
                Err(StoreError::Conflict) if !pinned && attempt < WRITE_ATTEMPTS => {
                    attempt += 1;
                    current = self.fresh(current.id).await?;
                }
                other => return other.map_err(E::from),
            }
        }
    }

    async fn fresh(&self, id: u64) -> Result<User> {
        self.get(id).await?.ok_or(StoreError::NotFound)
    }

    /// Removes the user, its claims, tokens and memberships in one transaction.
    /// A user with more tokens and memberships than one transaction holds is
    /// first relieved of them in batches; each batch also updates the user's
    /// lists (versioned), so after any failure the user is whole and a retry
    /// carries on where the last attempt stopped.
    pub async fn delete(&self, user: &User) -> Result<()> {
        let mut user = user.clone();
        // A tenant's user leaves its tenant groups with it: one query of the
        // tenant's groups, and an update of each group it is in.
        let tenant_groups = self.store.tenant_groups();
        let mut leave = Vec::new();
        if let Some(slug) = tenant_groups.owner_slug(&user).await? {
            let groups: Vec<_> = tenant_groups
                .list(&slug)
                .await?
                .into_iter()
                .filter(|g| g.has(user.id))
                .collect();
            leave = tenant_groups.removal(&slug, &groups, user.id)?;
        }
        // The user, its claims and the counts always go in the last transaction.
        let fixed = 1 + user_claims(&user).len() + 1;
        if fixed + leave.len() + user.token_hashes.len() + user.memberships.len()
            > TRANSACTION_LIMIT
        {
            // More than one transaction holds: the groups first, each
            // removal alone (repeating one is harmless).
            for update in std::mem::take(&mut leave) {
                self.store.commit_items(vec![(update, false)]).await?;
            }
        }
        while fixed + user.token_hashes.len() + user.memberships.len() > TRANSACTION_LIMIT {
            user = self.shed_dependents(&user).await?;
        }
        let claims = self.store.claims();
        let mut tx = Transaction::default();
        let (pk, sk) = table::user(user.id);
        tx.delete(
            Slot::User,
            self.store.versioned_delete(pk, sk, user.version)?,
        );
        for (_, (pk, sk)) in user_claims(&user) {
            tx.delete(Slot::Other, claims.release(&pk, sk, user.id)?);
        }
        for (pk, sk) in dependents(&user) {
            tx.delete(Slot::Other, self.store.plain_delete(pk, sk)?);
        }
        for update in leave {
            tx.push(Slot::Other, update);
        }
        self.store.counts().add_to(
            &mut tx,
            CountDelta {
                id: user.id,
                total: -1,
                active: -i64::from(user.is_active),
                create: false,
                owner: user.owner,
            },
        );
        self.store.commit(tx).await
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
        tx.put(Slot::User, self.store.versioned_put(&next, user.version)?);
        for (pk, sk) in dependents(&shed) {
            tx.delete(Slot::Other, self.store.plain_delete(pk, sk)?);
        }
        self.store.commit(tx).await?;
        Ok(next)
    }

    /// Records a password login. Not versioned: a timestamp racing an update
    /// may be lost, which is cheaper than making every login a transaction.
    pub async fn record_login(&self, user_id: u64) -> Result<chrono::DateTime<chrono::Utc>> {
        let (pk, sk) = table::user(user_id);
        let at = now();
        let out = self.store.within(
            self.store
                .client()
                .update_item()
                .table_name(self.store.table())
                .set_key(Some(key(pk, sk)))
                .update_expression("SET last_login = :t")
                .condition_expression("attribute_exists(pk)")
                .expression_attribute_values(":t", s(crate::domain::user::format_time(&at)))
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send(),
        );
        let out = self.store.counted(out.await?)?;
        self.store.metrics().record_one(out.consumed_capacity());
        Ok(at)
    }

    /// The users with these ids that exist, by id: strongly consistent
    /// `BatchGetItem`s of at most 100 keys each (on the table), unprocessed
    /// keys retried.
    pub async fn by_ids(&self, ids: &[u64]) -> Result<HashMap<u64, User>> {
        self.items(ids, true)
            .await?
            .values()
            .map(|item| parse_user(item).map(|u| (u.id, u)))
            .collect()
    }

    /// The users with these ids, in the order given, eventually consistent
    /// (half a unit each): the page of a list found through the search
    /// index. Ids nobody has any more are left out.
    pub async fn by_ids_in_order(&self, ids: &[u64]) -> Result<Vec<User>> {
        let found = self.items(ids, false).await?;
        ids.iter()
            .filter_map(|id| {
                let (pk, sk) = table::user(*id);
                found.get(&(pk, sk.to_string()))
            })
            .map(parse_user)
            .collect()
    }

    /// The user items of `ids` that exist, by key: `BatchGetItem`s of at
    /// most 100 keys, strongly consistent or not.
    pub(super) async fn items(
        &self,
        ids: &[u64],
        consistent: bool,
    ) -> Result<HashMap<(String, String), Item>> {
        let keys: Vec<Item> = ids
            .iter()
            .map(|id| {
                let (pk, sk) = table::user(*id);
                key(pk, sk)
            })
            .collect();
        self.store.batch_get_all(keys, consistent).await
    }

    /// The users with ids in `low..=high`, in id order: one `Query` on GSI1
    /// (`gsi1sk BETWEEN`), paginated, reading only that range.
    pub async fn in_id_range(&self, low: u64, high: u64) -> Result<Vec<User>> {
        if low > high {
            return Ok(Vec::new());
        }
        let values: HashMap<String, AttributeValue> = [
            (":p", s(table::USERS_PARTITION)),
            (":lo", s(table::user_order(low))),
            (":hi", s(table::user_order(high))),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        self.store
            .query_all(
                self.store
                    .client()
                    .query()
                    .table_name(self.store.table())
                    .index_name(table::GSI1)
                    .key_condition_expression("gsi1pk = :p AND gsi1sk BETWEEN :lo AND :hi")
                    .set_expression_attribute_values(Some(values))
                    .limit(QUERY_PAGE as i32),
            )
            .await?
            .iter()
            .map(parse_user)
            .collect()
    }

    /// Every user, in id order: one paginated query over GSI1.
    pub async fn all(&self) -> Result<Vec<User>> {
        self.read_in_id_order(IdIndex::Directory, None, false, usize::MAX, false, 0)
            .await
    }

    /// Users in id order (descending or ascending) from id `from` on
    /// (inclusive; every user when `None`), only active ones if asked:
    /// queries over GSI1 until `limit` users are read. `read_hint`: how many
    /// users (inactive ones included) the caller expects to read to find
    /// `limit` active ones, so that a filtered read takes one round trip
    /// instead of one per shortfall. Keeps every listed user the reads
    /// returned (a read that goes `read_hint` far may find more than
    /// `limit`; it never reads further to find more).
    async fn read_in_id_order(
        &self,
        index: IdIndex,
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
            let (index_name, partition_key, partition) = index.partition();
            let query = self
                .store
                .client()
                .query()
                .table_name(self.store.table())
                .index_name(index_name)
                .key_condition_expression(match (from, descending) {
                    (None, _) => "#pk = :p",
                    (Some(_), false) => "#pk = :p AND gsi1sk >= :from",
                    (Some(_), true) => "#pk = :p AND gsi1sk <= :from",
                })
                .expression_attribute_names("#pk", partition_key)
                .scan_index_forward(!descending)
                .set_filter_expression(active_only.then(|| "is_active = :active".to_string()))
                .set_expression_attribute_values(Some(
                    [(":p".to_string(), s(partition.clone()))]
                        .into_iter()
                        .chain(from.map(|id| (":from".to_string(), s(table::user_order(id)))))
                        .chain(active_only.then(|| {
                            (
                                ":active".to_string(),
                                aws_sdk_dynamodb::types::AttributeValue::Bool(true),
                            )
                        }))
                        .collect(),
                ))
                .limit(want);
            let out = self.store.query_page(query, start).await?;
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

    /// The users of a list page: `limit` users from 0-based position `k` of
    /// the list on, in id order (only active ones if `active_only`). One GSI1
    /// query from where `counts` say the page starts
    /// (`BucketCounts::page_start`): the users of that bucket before it,
    /// then the page, no more. An ascending read tells the counts where the
    /// next page starts.
    pub async fn from_position(
        &self,
        counts: &BucketCounts,
        k: u64,
        descending: bool,
        limit: usize,
        active_only: bool,
    ) -> Result<Vec<User>> {
        self.read_from_position(
            IdIndex::Directory,
            counts,
            k,
            descending,
            limit,
            active_only,
        )
        .await
    }

    /// [`Users::from_position`] among the users org `org_id` owns, with its
    /// own counts ([`super::Counts::of_tenant`]): one query of its partition
    /// of the tenant index.
    pub async fn owned_from_position(
        &self,
        org_id: u64,
        counts: &BucketCounts,
        k: u64,
        limit: usize,
        active_only: bool,
    ) -> Result<Vec<User>> {
        self.read_from_position(
            IdIndex::Tenant(org_id),
            counts,
            k,
            false,
            limit,
            active_only,
        )
        .await
    }

    async fn read_from_position(
        &self,
        index: IdIndex,
        counts: &BucketCounts,
        k: u64,
        descending: bool,
        limit: usize,
        active_only: bool,
    ) -> Result<Vec<User>> {
        // Where pages start is remembered per list (see `page_start`).
        let list = match index {
            IdIndex::Directory => self.store.table().to_string(),
            IdIndex::Tenant(org) => format!("{}#tenant{org}", self.store.table()),
        };
        let table = list.as_str();
        let Some(start) = counts.page_start(table, k, descending, limit, active_only) else {
            return Ok(Vec::new());
        };
        let mut users = Box::pin(self.read_in_id_order(
            index,
            Some(start.from_id),
            descending,
            start.skip + limit,
            active_only,
            start.read_hint,
        ))
        .await?;
        counts.remember_next(table, &start, &users);
        users.drain(..start.skip.min(users.len()));
        users.truncate(limit);
        Ok(users)
    }

    /// The users among the next `limit` ids of the index after `after` (all
    /// when `None`): one query that reads exactly those `limit` index
    /// entries, each once (SCIM cursors, RFC 9865). With `active_only`,
    /// DynamoDB drops the inactive ones after reading them, so the page may
    /// hold fewer than `limit` users; it never reads an entry the next page
    /// reads again, so a walk over the whole index costs one read of it plus
    /// one call per page.
    pub async fn page_after(
        &self,
        after: Option<u64>,
        limit: usize,
        active_only: bool,
    ) -> Result<Page> {
        let query = self
            .after_query(after, active_only)
            .limit(limit.clamp(1, QUERY_PAGE) as i32);
        let out = self.store.query_page(query, None).await?;
        let users = out
            .items()
            .iter()
            .map(parse_user)
            .collect::<Result<Vec<_>>>()?;
        let next_after = out
            .last_evaluated_key()
            .and_then(|key| key.get(table::GSI1_SK))
            .and_then(|sk| sk.as_s().ok())
            .and_then(|sk| sk.parse().ok());
        Ok(Page { users, next_after })
    }

    /// Users with an id above `after` (all users when `None`), in id order:
    /// the first `want` that `keep` accepts, only active ones if asked. One
    /// query over GSI1 that starts right after `after` and reads no further
    /// than it needs — at most `max_examined` users (beyond the active
    /// filter, which DynamoDB applies), so a filter that matches rarely still
    /// makes a bounded request; [`Slice::stopped_at`] then says where to go on.
    pub async fn matching_after(
        &self,
        after: Option<u64>,
        want: usize,
        active_only: bool,
        max_examined: usize,
        keep: impl Fn(&User) -> bool,
    ) -> Result<Slice> {
        let mut slice = Slice::default();
        let mut examined = 0usize;
        let mut start = None;
        while slice.users.len() < want && examined < max_examined {
            // A filter reads ahead in chunks.
            let missing = want - slice.users.len();
            let chunk = missing.max(100).min(max_examined - examined);
            let query = self
                .after_query(after, active_only)
                .limit(chunk.min(QUERY_PAGE) as i32);
            let out = self.store.query_page(query, start).await?;
            for item in out.items() {
                let user = parse_user(item)?;
                examined += 1;
                let last = user.id;
                if keep(&user) {
                    slice.users.push(user);
                }
                if slice.users.len() == want {
                    return Ok(slice);
                }
                if examined == max_examined {
                    slice.stopped_at = Some(last);
                    return Ok(slice);
                }
            }
            start = out.last_evaluated_key().cloned();
            if start.is_none() {
                break;
            }
        }
        Ok(slice)
    }

    /// The GSI1 query of users with an id above `after` (every user when
    /// `None`), in id order; only active ones if asked (DynamoDB filters
    /// after reading, so the inactive ones are read too).
    fn after_query(&self, after: Option<u64>, active_only: bool) -> QueryFluentBuilder {
        self.store
            .client()
            .query()
            .table_name(self.store.table())
            .index_name(table::GSI1)
            .key_condition_expression(match after {
                None => "gsi1pk = :p",
                Some(_) => "gsi1pk = :p AND gsi1sk > :after",
            })
            .set_filter_expression(active_only.then(|| "is_active = :active".to_string()))
            .set_expression_attribute_values(Some(after_values(after, active_only)))
    }

    /// The users org `org_id` owns with an id above `after` (from the
    /// first when `None`), in id order, only active ones if asked: queries
    /// of the org's own partition of the tenant index
    /// ([`table::TENANT_INDEX`]) until `limit` users are read, each user
    /// once. What it costs grows with the users read, never with other
    /// tenants or the directory. `next_after`: where the index may go on
    /// (`None` at the end of the org's users).
    pub async fn owned_by(
        &self,
        org_id: u64,
        after: Option<u64>,
        limit: usize,
        active_only: bool,
    ) -> Result<Page> {
        self.owned_reads(org_id, after, limit, active_only, false)
            .await
    }

    /// The users among the next `limit` entries of org `org_id`'s partition
    /// of the tenant index after `after`: one query that reads exactly those
    /// entries, as [`Users::page_after`] does for the directory (with
    /// `active_only` the page may hold fewer; the next starts after the
    /// last entry read).
    pub async fn owned_page_after(
        &self,
        org_id: u64,
        after: Option<u64>,
        limit: usize,
        active_only: bool,
    ) -> Result<Page> {
        self.owned_reads(org_id, after, limit, active_only, true)
            .await
    }

    async fn owned_reads(
        &self,
        org_id: u64,
        after: Option<u64>,
        limit: usize,
        active_only: bool,
        one_query: bool,
    ) -> Result<Page> {
        let values: HashMap<String, AttributeValue> =
            [(":p".to_string(), s(table::tenant_partition(org_id)))]
                .into_iter()
                .chain(after.map(|id| (":after".to_string(), s(table::user_order(id)))))
                .chain(active_only.then(|| (":active".to_string(), AttributeValue::Bool(true))))
                .collect();
        let query = self
            .store
            .client()
            .query()
            .table_name(self.store.table())
            .index_name(table::TENANT_INDEX)
            .key_condition_expression(match after {
                None => "tenantpk = :p",
                Some(_) => "tenantpk = :p AND gsi1sk > :after",
            })
            .set_filter_expression(active_only.then(|| "is_active = :active".to_string()))
            .set_expression_attribute_values(Some(values));
        let mut page = Page {
            users: Vec::new(),
            next_after: None,
        };
        let mut start = None;
        while page.users.len() < limit {
            let want = (limit - page.users.len()).clamp(1, QUERY_PAGE);
            let out = self
                .store
                .query_page(query.clone().limit(want as i32), start)
                .await?;
            for item in out.items() {
                page.users.push(parse_user(item)?);
            }
            start = out.last_evaluated_key().cloned();
            page.next_after = start
                .as_ref()
                .and_then(|key| key.get(table::GSI1_SK))
                .and_then(|sk| sk.as_s().ok())
                .and_then(|sk| sk.parse().ok());
            if start.is_none() || one_query {
                break;
            }
        }
        Ok(page)
    }

    /// Every user's entry of the search index, in id order: one paginated
    /// query (eventually consistent, as every list is).
    pub async fn search_index(&self) -> Result<Vec<UserRow>> {
        self.store
            .query_all(
                self.store
                    .client()
                    .query()
                    .table_name(self.store.table())
                    .index_name(table::SEARCH_INDEX)
                    .key_condition_expression("gsi1pk = :p")
                    .expression_attribute_values(":p", s(table::USERS_PARTITION)),
            )
            .await?
            .iter()
            .map(UserRow::from_item)
            .collect()
    }

    /// Stores `users` as new users, straight into the table with
    /// `BatchWriteItem`, in exactly the items the transactional writes
    /// produce, so that a benchmark (or a seeded test stack) can stand up a
    /// directory of 100,000 users in minutes instead of the hours 100,000
    /// create transactions would take. Ids are assigned in order past every
    /// id handed out so far (the id counter moves past the last one in one
    /// update, so later creates carry on after them). Writes each user item,
    /// its claims and its membership items (the orgs must exist), 25 items
    /// per `BatchWriteItem` with a few batches in flight, then adds the users
    /// to the per-bucket counts. Returns the users as stored.
    ///
    /// `Taken` when two of the users share a username, email or external id
    /// (nothing is written then). What this gives up, and why that is
    /// acceptable for its callers:
    /// - No uniqueness conditions: `BatchWriteItem` cannot carry conditions, so
    ///   a claim already in the table would be overwritten. The caller loads into
    ///   a table that holds none of these usernames, emails or external ids
    ///   (duplicates *within* the load are refused before anything is written).
    /// - Not atomic: a failed load leaves the users written so far, without their
    ///   counts (the counts are added last). Load into a fresh table and drop it
    ///   on failure.
    pub async fn import(&self, users: Vec<User>) -> Result<Vec<User>> {
        if users.is_empty() {
            return Ok(users);
        }
        distinct_claims(&users)?;
        let first = self.reserve_ids(users.len() as u64).await?;
        let stored = stamp(users, first);
        let items: Vec<Item> = stored.iter().flat_map(stored_items).collect();
        self.put_all(items).await?;
        self.store.counts().add(&stored).await?;
        // One packed item per block, as creates leave them.
        self.store.counts().compact().await;
        Ok(stored)
    }

    /// Moves the user id counter `count` ids on: one update. Returns the
    /// first of the reserved ids (ids start at 1, as [`Users::create`]'s).
    async fn reserve_ids(&self, count: u64) -> Result<u64> {
        let (pk, sk) = table::user_id_counter();
        let out = self.store.within(
            self.store
                .client()
                .update_item()
                .table_name(self.store.table())
                .set_key(Some(key(pk, sk)))
                .update_expression("ADD next_id :count")
                .expression_attribute_values(":count", n(count))
                .return_values(ReturnValue::UpdatedNew)
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send(),
        );
        let out = self.store.counted(out.await?)?;
        self.store.metrics().record_one(out.consumed_capacity());
        let last: u64 = out
            .attributes()
            .and_then(|a| table::get_n(a, "next_id"))
            .ok_or_else(|| StoreError::Corrupt(format!("{pk}/{sk}")))?;
        Ok(last + 1 - count)
    }

    /// Writes every item, [`BATCH_WRITE_ITEMS`] per call, at most
    /// [`CONCURRENT_BATCHES`] calls at a time. Stops at the first batch that
    /// fails (the others in flight finish or are dropped).
    async fn put_all(&self, items: Vec<Item>) -> Result<()> {
        let mut pending = items.into_iter().peekable();
        let mut running = JoinSet::new();
        loop {
            while running.len() < CONCURRENT_BATCHES && pending.peek().is_some() {
                let batch: Vec<Item> = pending.by_ref().take(BATCH_WRITE_ITEMS).collect();
                let store = self.store.clone();
                running.spawn(async move { store.users().put_batch(batch).await });
            }
            match running.join_next().await {
                None => return Ok(()),
                Some(Ok(result)) => result?,
                Some(Err(panicked)) => return Err(StoreError::Fault(panicked.to_string())),
            }
        }
    }

    /// One `BatchWriteItem` of up to 25 puts; what DynamoDB hands back
    /// unprocessed (it does under throttling) is sent again after a backoff.
    async fn put_batch(&self, items: Vec<Item>) -> Result<()> {
        let mut requests: Vec<WriteRequest> = items
            .into_iter()
            .map(|it| {
                let put = PutRequest::builder()
                    .set_item(Some(it))
                    .build()
                    .map_err(|e| StoreError::Fault(e.to_string()))?;
                Ok(WriteRequest::builder().put_request(put).build())
            })
            .collect::<Result<_>>()?;
        let mut round = 0;
        while !requests.is_empty() {
            if round >= WRITE_ROUNDS {
                return Err(StoreError::Unavailable(Unavailable::new(
                    FaultKind::Throttled,
                    "UnprocessedItems",
                    format!(
                        "{} items still unprocessed after {round} rounds",
                        requests.len()
                    ),
                )));
            }
            if round > 0 {
                self.store
                    .back_off(round, FaultKind::Throttled, "UnprocessedItems")
                    .await?;
            }
            round += 1;
            let out = self.store.within(
                self.store
                    .client()
                    .batch_write_item()
                    .request_items(self.store.table(), requests)
                    .return_consumed_capacity(ReturnConsumedCapacity::Total)
                    .send(),
            );
            let out = self.store.counted(out.await?)?;
            self.store.metrics().record(out.consumed_capacity());
            requests = out
                .unprocessed_items()
                .and_then(|u| u.get(self.store.table()))
                .cloned()
                .unwrap_or_default();
        }
        Ok(())
    }
}

/// What one walk over GSI1 found ([`Users::matching_after`]).
#[derive(Debug, Default)]
pub struct Slice {
    /// The users `keep` accepted, in id order.
    pub users: Vec<User>,
    /// Set when the walk stopped at `max_examined` before the end of the
    /// index: the last id it read, where the next walk must go on from.
    pub stopped_at: Option<u64>,
}

/// One page of a walk in id order ([`Users::page_after`]): what one query
/// read, and where the next page goes on from.
#[derive(Debug, Default)]
pub struct Page {
    /// The users read, in id order (only active ones if asked).
    pub users: Vec<User>,
    /// The last id the query evaluated, when the index may go on past it:
    /// the next page starts after it. `None` at the end of the index.
    pub next_after: Option<u64>,
}

/// Which users a read in id order goes through: the directory's (GSI1) or
/// those one org owns (its partition of the tenant index).
#[derive(Debug, Clone, Copy)]
enum IdIndex {
    Directory,
    Tenant(u64),
}

impl IdIndex {
    /// The index, its partition key attribute and the partition's value.
    fn partition(self) -> (&'static str, &'static str, String) {
        match self {
            IdIndex::Directory => (
                table::GSI1,
                table::GSI1_PK,
                table::USERS_PARTITION.to_string(),
            ),
            IdIndex::Tenant(org) => (
                table::TENANT_INDEX,
                table::TENANT_PK,
                table::tenant_partition(org),
            ),
        }
    }
}

/// One entry of the search index: every user's id and the four fields an
/// admin list can search, filter or sort on, and nothing else. A list that
/// must look at every user (`search`, `sort=username`, a filter on names or
/// `is_active`) passes over this index instead of GSI1, reading about a
/// third of the bytes, and then reads only its page's users in full.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    pub id: u64,
    pub username: String,
    pub first_name: String,
    pub last_name: String,
    pub is_active: bool,
}

impl UserFields for UserRow {
    fn field(&self, field: Field) -> FieldValue<'_> {
        match field {
            Field::Username => FieldValue::Str(&self.username),
            Field::FirstName => FieldValue::Str(&self.first_name),
            Field::LastName => FieldValue::Str(&self.last_name),
            Field::Id => FieldValue::Int(self.id),
            Field::IsActive => FieldValue::Bool(self.is_active),
        }
    }
}

impl UserRow {
    fn from_item(it: &Item) -> Result<UserRow> {
        let corrupt = || {
            StoreError::Corrupt(
                table::get_s(it, table::PK)
                    .unwrap_or("<no key>")
                    .to_string(),
            )
        };
        let text = |name: &str| table::get_s(it, name).unwrap_or_default().to_string();
        Ok(UserRow {
            id: table::get_s(it, table::GSI1_SK)
                .and_then(|sk| sk.parse().ok())
                .ok_or_else(corrupt)?,
            username: table::get_s(it, "username")
                .ok_or_else(corrupt)?
                .to_string(),
            first_name: text("first_name"),
            last_name: text("last_name"),
            is_active: table::get_bool(it, "is_active").unwrap_or(true),
        })
    }
}

fn after_values(after: Option<u64>, active_only: bool) -> HashMap<String, AttributeValue> {
    [(":p".to_string(), s(table::USERS_PARTITION))]
        .into_iter()
        .chain(after.map(|id| (":after".to_string(), s(table::user_order(id)))))
        .chain(active_only.then(|| (":active".to_string(), AttributeValue::Bool(true))))
        .collect()
}

/// The tokens `old` holds and `new` does not.
fn dropped_tokens(old: &User, new: &User) -> Vec<String> {
    old.token_hashes
        .iter()
        .filter(|h| !new.token_hashes.contains(h))
        .cloned()
        .collect()
}

/// The member items of a new user's memberships, as `Groups::add_member`
/// writes them, joined now.
fn new_member_items(user: &User) -> Vec<Item> {
    user.memberships
        .iter()
        .map(|m| {
            let (pk, sk) = table::membership(&m.org_slug, user.id);
            let mut member = key(pk, sk);
            member.insert("user_id".into(), n(user.id));
            member.insert("role".into(), s(&m.role));
            member.insert("is_active".into(), AttributeValue::Bool(m.is_active));
            member.insert(
                super::memberships::JOINED.into(),
                super::memberships::joined_now(),
            );
            member
        })
        .collect()
}

/// The token and membership items that go with a user.
fn dependents(user: &User) -> Vec<(String, String)> {
    let tokens = user.token_hashes.iter().map(|hash| {
        let (pk, sk) = table::token(hash);
        (pk, sk.to_string())
    });
    let memberships = user
        .memberships
        .iter()
        .map(|m| table::membership(&m.org_slug, user.id));
    tokens.chain(memberships).collect()
}

pub(super) fn parse_user(item: &Item) -> Result<User> {
    table::user_from_item(item).ok_or_else(|| {
        StoreError::Corrupt(
            table::get_s(item, table::PK)
                .unwrap_or("<no key>")
                .to_string(),
        )
    })
}

/// `Taken` when two users of an import would hold the same claim (the keys
/// fold case and NFKC as the claims do). `BatchWriteItem` would silently
/// keep only one.
fn distinct_claims(users: &[User]) -> Result<()> {
    let mut seen = HashSet::new();
    for user in users {
        for (field, (pk, _)) in user_claims(user) {
            if !seen.insert(pk) {
                return Err(StoreError::Taken(field));
            }
        }
    }
    Ok(())
}

/// The users as a create would store them: ids from `first` on, version 1,
/// joined now, the derived rules applied.
fn stamp(users: Vec<User>, first: u64) -> Vec<User> {
    let t = now();
    users
        .into_iter()
        .zip(first..)
        .map(|(mut user, id)| {
            user.id = id;
            user.version = 1;
            user.date_joined = t;
            user.last_modified = t;
            user.apply_derived_rules();
            user
        })
        .collect()
}

/// Every item an imported user comes with: the user, its claims (attribute
/// `user_id`, as the create transaction writes them) and its membership
/// items (as `Groups::add_member` writes them).
fn stored_items(user: &User) -> Vec<Item> {
    let mut items = vec![table::user_to_item(user)];
    for (_, (pk, sk)) in user_claims(user) {
        let mut claim = key(pk, sk);
        claim.insert("user_id".into(), n(user.id));
        items.push(claim);
    }
    for m in &user.memberships {
        let (pk, sk) = table::membership(&m.org_slug, user.id);
        let mut member = key(pk, sk);
        member.insert("user_id".into(), n(user.id));
        member.insert("role".into(), s(&m.role));
        member.insert("is_active".into(), AttributeValue::Bool(m.is_active));
        items.push(member);
    }
    items
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::user::Membership;
    use crate::store::UniqueField;

    fn user(name: &str, active: bool) -> User {
        let mut u = User::new(name);
        u.email = format!("{name}@example.org");
        u.is_active = active;
        u
    }

    #[test]
    fn duplicate_claims_within_a_load_are_refused() {
        let a = user("Alice", true);
        let mut b = user("alice", true);
        b.email = "other@example.org".into();
        assert_eq!(
            distinct_claims(&[a.clone(), b]),
            Err(StoreError::Taken(UniqueField::Username))
        );
        let mut c = user("carol", true);
        c.email = "ALICE@example.org".into();
        assert_eq!(
            distinct_claims(&[a.clone(), c]),
            Err(StoreError::Taken(UniqueField::Email))
        );
        let mut d = user("dave", true);
        d.external_id = Some("x".into());
        let mut e = user("erin", true);
        e.external_id = Some("x".into());
        assert_eq!(
            distinct_claims(&[d, e]),
            Err(StoreError::Taken(UniqueField::ExternalId))
        );
        assert_eq!(distinct_claims(&[a, user("bob", true)]), Ok(()));
    }

    #[test]
    fn items_are_the_user_its_claims_and_its_memberships() {
        let mut u = user("Alice", false);
        u.external_id = Some("ext-1".into());
        u.memberships.push(Membership {
            org_slug: "acme".into(),
            org_id: 3,
            role: "worker".into(),
            is_active: true,
        });
        let u = stamp(vec![u], 7).remove(0);
        assert_eq!((u.id, u.version), (7, 1));
        let keys: Vec<(String, String)> = stored_items(&u)
            .iter()
            .map(super::super::item_key)
            .collect();
        assert_eq!(
            keys,
            vec![
                ("USER#7".to_string(), "USER".to_string()),
                ("USERNAME#alice".to_string(), "CLAIM".to_string()),
                ("EMAIL#alice@example.org".to_string(), "CLAIM".to_string()),
                ("EXTID#ext-1".to_string(), "CLAIM".to_string()),
                ("ORG#acme".to_string(), "MEMBER#7".to_string()),
            ]
        );
        let items = stored_items(&u);
        assert!(items[1..4]
            .iter()
            .all(|c| table::get_n::<u64>(c, "user_id") == Some(7)));
        assert_eq!(table::user_from_item(&items[0]), Some(u));
    }
}
