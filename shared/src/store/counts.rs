//! User counts per id bucket, so that a page at any depth costs its page.
//!
//! Ids are handed out in order, so "the k-th user in id order" is found by
//! summing how many users each range of ids holds. Every 50 consecutive ids
//! form a *bucket*; every 50 buckets (2,500 ids) share one *block* item in
//! the partition `COUNTS`, which holds, per bucket, how many users it has in
//! all and how many are active (`odm` lists count only those).
//!
//! - Every create, delete and (de)activation adds to its bucket in the same
//!   transaction as the user, so the counts always equal what lists show.
//! - Creates land on the newest block, so concurrent creates would contend
//!   for one item (on the real service, transactions touching one item at the
//!   same time cancel each other). They add to one of [`CREATE_SHARDS`]
//!   copies of their block, picked per attempt; other writes add to copy 0.
//!   Readers sum the copies.
//! - When a create opens a new block, blocks older than the previous one are
//!   *compacted*: their copies are merged into copy 0, which is then written
//!   in a packed form (two bytes per bucket), so the partition stays about
//!   one small item per 2,500 users. Compaction is one conditional
//!   transaction; when it loses a race it is simply tried at the next block.
//! - Reading the counts is one eventually consistent `Query` of the
//!   partition: about 130 bytes per 2,500 users (1 capacity unit at 100,000
//!   users, 6.5 at a million).
use std::collections::BTreeMap;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, Put, ReturnConsumedCapacity, TransactWriteItem, Update,
};

use super::table::{self, key, n, Item};
use super::{Result, Store, StoreError, Transaction};
use crate::domain::user::User;

/// Users in the directory, kept by every create, delete and (de)activation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UserCounts {
    pub total: u64,
    pub active: u64,
}

/// Ids per bucket: a page starting inside a bucket reads at most this many
/// users before its first one.
pub const BUCKET_IDS: u64 = 50;
/// Buckets per block item.
pub const BLOCK_BUCKETS: u64 = 50;
/// Ids per block.
pub const BLOCK_IDS: u64 = BUCKET_IDS * BLOCK_BUCKETS;
/// Copies of a block that creates spread over.
pub const CREATE_SHARDS: u32 = 8;
/// Copies of a tenant's block that its creates spread over. Fewer: a
/// tenant's counts are not compacted, so each copy of each block its users
/// span is read with every index page of it.
pub const TENANT_CREATE_SHARDS: u32 = 2;

/// The block and bucket of a user id.
pub fn block_of(id: u64) -> (u64, u64) {
    (id / BLOCK_IDS, (id % BLOCK_IDS) / BUCKET_IDS)
}

/// The `(total, active)` change a write makes to one user's bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CountDelta {
    pub id: u64,
    pub total: i64,
    pub active: i64,
    /// Creates spread over the block's copies; everything else uses copy 0.
    pub create: bool,
    /// The org that owns the user: its own counts change too.
    pub owner: Option<u64>,
}

/// One read of the whole `COUNTS` partition, summed per bucket.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BucketCounts {
    /// Bucket number (id / [`BUCKET_IDS`]) -> (total, active); only buckets
    /// that ever held a user.
    buckets: BTreeMap<u64, (u64, u64)>,
    /// Blocks worth compacting (in more than one item, or not packed), as
    /// read: (block, [(shard, version)]).
    scattered: BTreeMap<u64, Vec<(u32, u64)>>,
    /// Every (block, shard) item read.
    items: Vec<(u64, u32)>,
}

/// Where a page starts: the first id of the bucket holding its first user,
/// and how many listed users of that bucket come before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// Ascending: the bucket's first id; descending: its last id.
    pub from_id: u64,
    pub skip: u64,
}

/// The lowest and highest id of a bucket (ids start at 1: bucket 0 has one
/// fewer).
fn bucket_ids(bucket: u64) -> (u64, u64) {
    let low = (bucket * BUCKET_IDS).max(1);
    (low, bucket * BUCKET_IDS + BUCKET_IDS - 1)
}

/// The place, among its bucket's listed users, of the first user a read from
/// a [`BucketCounts::locate`]d position returns: 0 from the bucket's edge, the
/// distance from it for an exact start (no gaps: ids are places).
fn first_ordinal(position: Position, descending: bool) -> u64 {
    let (low, high) = bucket_ids(position.from_id / BUCKET_IDS);
    if descending {
        high - position.from_id
    } else {
        position.from_id - low
    }
}

/// Every id of the bucket is a listed user: each user's id, and so its
/// position, is known from the counts alone.
fn dense(bucket: u64, &(total, active): &(u64, u64), active_only: bool) -> bool {
    let (low, high) = bucket_ids(bucket);
    total == high - low + 1 && (!active_only || active == total)
}

impl BucketCounts {
    pub fn counts(&self) -> UserCounts {
        let (total, active) = self
            .buckets
            .values()
            .fold((0, 0), |(t, a), (bt, ba)| (t + bt, a + ba));
        UserCounts { total, active }
    }

    /// Where the user at 0-based position `k` of the list is (ids ascending
    /// or descending; counting only active users if `active_only`). `None`
    /// when the list is shorter.
    ///
    /// When every id of the bucket is a listed user (a full bucket, and in
    /// `active_only` nobody inactive), the id is known exactly and the page
    /// starts there, skipping nothing; otherwise at the bucket's edge.
    pub fn locate(&self, k: u64, descending: bool, active_only: bool) -> Option<Position> {
        let measure = |&(total, active): &(u64, u64)| if active_only { active } else { total };
        let mut before = 0;
        let mut visit = |bucket: u64, counts: &(u64, u64)| {
            let here = measure(counts);
            if k < before + here {
                let skip = k - before;
                let (low, high) = bucket_ids(bucket);
                if dense(bucket, counts, active_only) {
                    let from_id = if descending { high - skip } else { low + skip };
                    return Some(Position { from_id, skip: 0 });
                }
                let from_id = if descending { high } else { low };
                return Some(Position { from_id, skip });
            }
            before += here;
            None
        };
        if descending {
            self.buckets.iter().rev().find_map(|(b, c)| visit(*b, c))
        } else {
            self.buckets.iter().find_map(|(b, c)| visit(*b, c))
        }
    }

    /// How many users (inactive ones included) a read from `position` goes
    /// through to find `limit` listed users: in the bucket where the last of
    /// them lies, as far as that user can be at most (as many entries past
    /// it as the bucket has users the list skips: none when it has none).
    pub fn span(&self, position: Position, descending: bool, limit: u64, active_only: bool) -> u64 {
        let ordinal = first_ordinal(position, descending);
        self.span_from(position, ordinal, descending, limit, active_only)
    }

    /// [`BucketCounts::span`] from a start whose first user is the
    /// `ordinal`-th listed user of its bucket (0-based).
    fn span_from(
        &self,
        position: Position,
        ordinal: u64,
        descending: bool,
        limit: u64,
        active_only: bool,
    ) -> u64 {
        let first = position.from_id / BUCKET_IDS;
        let mut need = position.skip + limit;
        let mut read = 0;
        // In the first bucket, at least `ordinal` listed users come before
        // the start (exactly those, when the bucket has no gaps).
        let mut already = ordinal;
        let buckets: Box<dyn Iterator<Item = (&u64, &(u64, u64))>> = if descending {
            Box::new(self.buckets.range(..=first).rev())
        } else {
            Box::new(self.buckets.range(first..))
        };
        for (_, &(total, active)) in buckets {
            let listed = if active_only { active } else { total };
            let (total, listed) = (
                total.saturating_sub(already),
                listed.saturating_sub(already),
            );
            already = 0;
            if listed >= need {
                // The last user needed is at most `total - listed` (the users
                // the list skips) past the `need`-th entry: read no further.
                // Nobody skipped in this bucket: exactly the users still needed.
                read += (need + (total - listed)).min(total);
                break;
            }
            read += total;
            need -= listed;
        }
        read
    }

    fn add(&mut self, block: u64, bucket: u64, total: i64, active: i64) {
        let entry = self
            .buckets
            .entry(block * BLOCK_BUCKETS + bucket)
            .or_insert((0, 0));
        // A copy may be negative (a delete on copy 0 of a user created on
        // another copy); only the sum means anything, and it never is.
        entry.0 = (entry.0 as i64 + total).max(0) as u64;
        entry.1 = (entry.1 as i64 + active).max(0) as u64;
    }

    fn from_items(items: &[Item]) -> Result<BucketCounts> {
        BucketCounts::from_items_after(items, "")
    }

    /// [`BucketCounts::from_items`] of count items whose sort keys start
    /// with `prefix` (a tenant's).
    fn from_items_after(items: &[Item], prefix: &str) -> Result<BucketCounts> {
        let mut dir = BucketCounts::default();
        let mut copies: BTreeMap<u64, Vec<(u32, u64)>> = BTreeMap::new();
        // Sum per bucket across copies first: a bucket's copies may be negative.
        let mut sums: BTreeMap<(u64, u64), (i64, i64)> = BTreeMap::new();
        let mut unpacked = std::collections::BTreeSet::new();
        for it in items {
            let (block, shard) = parse_block_key(it, prefix)?;
            if it.keys().any(|k| k.starts_with(['t', 'a'])) {
                unpacked.insert(block);
            }
            dir.items.push((block, shard));
            copies
                .entry(block)
                .or_default()
                .push((shard, table::get_n(it, "v").unwrap_or(0)));
            for (bucket, total, active) in block_counts(it)? {
                let s = sums.entry((block, bucket)).or_insert((0, 0));
                s.0 += total;
                s.1 += active;
            }
        }
        for ((block, bucket), (total, active)) in sums {
            dir.add(block, bucket, total, active);
        }
        // Worth compacting: blocks in more than one item, or in one item that
        // still holds per-bucket attributes (three to four times the packed size).
        dir.scattered = copies
            .into_iter()
            .filter(|(b, c)| c.len() > 1 || unpacked.contains(b))
            .collect();
        Ok(dir)
    }
}

fn corrupt(it: &Item) -> StoreError {
    StoreError::Corrupt(format!(
        "{}/{}",
        table::get_s(it, table::PK).unwrap_or("?"),
        table::get_s(it, table::SK).unwrap_or("?")
    ))
}

fn parse_block_key(it: &Item, prefix: &str) -> Result<(u64, u32)> {
    let sk = table::get_s(it, table::SK).ok_or_else(|| corrupt(it))?;
    sk.strip_prefix(prefix)
        .and_then(table::parse_count_block)
        .ok_or_else(|| corrupt(it))
}

/// The (bucket, total, active) entries of one block item: the packed form
/// (`packed`: two bytes per bucket, total then active) and the per-bucket
/// attributes `t<bucket>`/`a<bucket>` that ADDs create, summed.
fn block_counts(it: &Item) -> Result<Vec<(u64, i64, i64)>> {
    let mut out = Vec::new();
    if let Some(packed) = it.get("packed") {
        let bytes = packed.as_b().map_err(|_| corrupt(it))?.as_ref();
        if bytes.len() != 2 * BLOCK_BUCKETS as usize {
            return Err(corrupt(it));
        }
        for (bucket, pair) in bytes.chunks(2).enumerate() {
            if pair != [0, 0] {
                out.push((bucket as u64, i64::from(pair[0]), i64::from(pair[1])));
            }
        }
    }
    for bucket in 0..BLOCK_BUCKETS {
        let total: i64 = table::get_n(it, &format!("t{bucket}")).unwrap_or(0);
        let active: i64 = table::get_n(it, &format!("a{bucket}")).unwrap_or(0);
        if total != 0 || active != 0 {
            out.push((bucket, total, active));
        }
    }
    Ok(out)
}

/// The packed form of one block's buckets.
fn pack(buckets: &BTreeMap<u64, (u64, u64)>, block: u64) -> Vec<u8> {
    let mut bytes = vec![0u8; 2 * BLOCK_BUCKETS as usize];
    for bucket in 0..BLOCK_BUCKETS {
        if let Some((total, active)) = buckets.get(&(block * BLOCK_BUCKETS + bucket)) {
            // At most BUCKET_IDS (50) users per bucket: always fits a byte.
            bytes[2 * bucket as usize] = (*total).min(255) as u8;
            bytes[2 * bucket as usize + 1] = (*active).min(255) as u8;
        }
    }
    bytes
}

/// The user counts per id bucket: what `store.counts()` reads and writes.
/// It touches only the block items of the `COUNTS` partition (and reads the
/// users to rebuild them); user writes add to their bucket through
/// `Counts::add_to`, in their own transaction.
#[derive(Clone, Copy)]
pub struct Counts<'a> {
    store: &'a Store,
}

impl Store {
    pub fn counts(&self) -> Counts<'_> {
        Counts { store: self }
    }
}

impl<'a> Counts<'a> {
    /// Every bucket's counts: one eventually consistent query of the
    /// `COUNTS` partition (paginated past 1 MB, which takes ~20 million users).
    pub async fn by_bucket(&self) -> Result<BucketCounts> {
        let items = self.blocks(table::COUNT_BLOCK_PREFIX).await?;
        BucketCounts::from_items(&items)
    }

    /// The counts per bucket of the users org `org_id` owns: one eventually
    /// consistent query of its own blocks (about 50 bytes per copy of each
    /// block of 2,500 ids its users span).
    pub async fn of_tenant(&self, org_id: u64) -> Result<BucketCounts> {
        let prefix = table::tenant_counts_prefix(org_id);
        let items = self
            .blocks(&format!("{prefix}{}", table::COUNT_BLOCK_PREFIX))
            .await?;
        BucketCounts::from_items_after(&items, &prefix)
    }

    /// The count items of `COUNTS` whose sort keys start with `prefix`.
    async fn blocks(&self, prefix: &str) -> Result<Vec<Item>> {
        self.store
            .query_all(
                self.store
                    .client()
                    .query()
                    .table_name(self.store.table())
                    .key_condition_expression("pk = :p AND begins_with(sk, :b)")
                    .expression_attribute_values(
                        ":p",
                        AttributeValue::S(table::COUNTS_PARTITION.into()),
                    )
                    .expression_attribute_values(":b", AttributeValue::S(prefix.into())),
            )
            .await
    }

    /// The user counts, summed over their buckets: the one query of
    /// [`Counts::by_bucket`].
    pub async fn totals(&self) -> Result<UserCounts> {
        Ok(self.by_bucket().await?.counts())
    }

    /// Merges the copies of every block into one packed item each
    /// (`usersctl table compact-counts`; creates do it on their own as they go).
    /// Safe at any time: see `Counts::compact_before`.
    pub async fn compact(&self) {
        self.compact_before(u64::MAX).await
    }

    /// Recounts every bucket from the users themselves and rewrites the
    /// `COUNTS` partition (`usersctl table rebuild-counts`): after restoring a
    /// backup, or to upgrade a table whose counts predate the buckets. The
    /// directory's counts from one pass over GSI1, then each org's own
    /// counts from its partition of the tenant index (the org whose users are
    /// gone loses its counts). Run it while nothing else writes users, since
    /// a write between the pass and the rewrite would be counted wrong.
    pub async fn rebuild(&self) -> Result<UserCounts> {
        let users = self.store.users().all().await?;
        let old = self.blocks(table::COUNT_BLOCK_PREFIX).await?;
        let counts = self.rewrite("", &old, &users).await?;
        // The tenants': every org with users or with counts.
        let mut orgs: BTreeMap<u64, Vec<Item>> = self
            .store
            .groups()
            .all()
            .await?
            .iter()
            .map(|g| (g.id, Vec::new()))
            .collect();
        for it in self.blocks(table::TENANT_COUNTS).await? {
            let org = table::get_s(&it, table::SK)
                .and_then(table::parse_tenant_counts)
                .ok_or_else(|| corrupt(&it))?;
            orgs.entry(org).or_default().push(it);
        }
        for (org, old) in orgs {
            let owned = self
                .store
                .users()
                .owned_by(org, None, usize::MAX, false)
                .await?;
            let prefix = table::tenant_counts_prefix(org);
            self.rewrite(&prefix, &old, &owned.users).await?;
        }
        Ok(counts)
    }

    /// Replaces the count items under `prefix` (`old`, as read) by one
    /// packed copy per block of what `users` hold, and deletes the rest.
    async fn rewrite(&self, prefix: &str, old: &[Item], users: &[User]) -> Result<UserCounts> {
        let mut buckets: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
        for u in users {
            let entry = buckets.entry(u.id / BUCKET_IDS).or_insert((0, 0));
            entry.0 += 1;
            entry.1 += u64::from(u.is_active);
        }
        let old = BucketCounts::from_items_after(old, prefix)?;
        let blocks: std::collections::BTreeSet<u64> =
            buckets.keys().map(|b| b / BLOCK_BUCKETS).collect();
        for block in &blocks {
            let (pk, sk) = table::count_block(*block, 0);
            let mut merged = key(pk, format!("{prefix}{sk}"));
            merged.insert(
                "packed".into(),
                AttributeValue::B(Blob::new(pack(&buckets, *block))),
            );
            merged.insert("v".into(), n(1));
            let out = self.store.within(
                self.store
                    .client()
                    .put_item()
                    .table_name(self.store.table())
                    .set_item(Some(merged))
                    .return_consumed_capacity(ReturnConsumedCapacity::Total)
                    .send(),
            );
            let out = self.store.counted(out.await?)?;
            self.store.metrics().record_one(out.consumed_capacity());
        }
        // Every other copy, and blocks that no longer hold anyone.
        let stale = old
            .items
            .iter()
            .filter(|(block, shard)| *shard != 0 || !blocks.contains(block));
        for (block, shard) in stale {
            let (pk, sk) = table::count_block(*block, *shard);
            let out = self.store.within(
                self.store
                    .client()
                    .delete_item()
                    .table_name(self.store.table())
                    .set_key(Some(key(pk, format!("{prefix}{sk}"))))
                    .return_consumed_capacity(ReturnConsumedCapacity::Total)
                    .send(),
            );
            let out = self.store.counted(out.await?)?;
            self.store.metrics().record_one(out.consumed_capacity());
        }
        let dir = BucketCounts {
            buckets,
            ..BucketCounts::default()
        };
        Ok(dir.counts())
    }

    /// Adds `delta` to the user's bucket count in `tx`, and to the owning
    /// org's when the user is owned: made anew for each attempt, so a
    /// retried transaction may pick other copies.
    pub(super) fn add_to(self, tx: &mut Transaction<'a>, delta: CountDelta) {
        let items = 1 + usize::from(delta.owner.is_some());
        tx.per_attempt(
            items,
            Box::new(move || {
                let update = |u| TransactWriteItem::builder().update(u).build();
                let mut out = vec![update(self.update_for(delta)?)];
                out.extend(self.tenant_update_for(delta)?.map(update));
                Ok(out)
            }),
        );
    }

    /// The update a user write adds to its transaction: `delta` on the
    /// user's bucket, on a copy picked now (so a retried transaction may pick
    /// another).
    pub(super) fn update_for(&self, delta: CountDelta) -> Result<Update> {
        let (block, _) = block_of(delta.id);
        let shard = if delta.create {
            rand::random::<u32>() % CREATE_SHARDS
        } else {
            0
        };
        self.update_of(table::count_block(block, shard), delta)
    }

    /// The update of the owning org's own counts a user write adds to its
    /// transaction, when the user is owned ([`CountDelta::owner`]).
    pub(super) fn tenant_update_for(&self, delta: CountDelta) -> Result<Option<Update>> {
        let Some(org) = delta.owner else {
            return Ok(None);
        };
        let (block, _) = block_of(delta.id);
        let shard = if delta.create {
            rand::random::<u32>() % TENANT_CREATE_SHARDS
        } else {
            0
        };
        self.update_of(table::tenant_count_block(org, block, shard), delta)
            .map(Some)
    }

    /// `delta` added to the bucket of its user in the count item `(pk, sk)`.
    fn update_of(&self, (pk, sk): (&str, String), delta: CountDelta) -> Result<Update> {
        let (_, bucket) = block_of(delta.id);
        Update::builder()
            .table_name(self.store.table())
            .set_key(Some(key(pk, sk)))
            .update_expression("ADD #t :t, #a :a, v :one")
            .expression_attribute_names("#t", format!("t{bucket}"))
            .expression_attribute_names("#a", format!("a{bucket}"))
            .expression_attribute_values(":t", n(delta.total))
            .expression_attribute_values(":a", n(delta.active))
            .expression_attribute_values(":one", n(1))
            .build()
            .map_err(|e| StoreError::Fault(e.to_string()))
    }

    /// Adds users written without their counts (a bulk import) to their
    /// buckets: one update per block (of copy 0, with the `ADD`s
    /// [`Counts::update_for`] makes, and its version moved so that a
    /// compaction racing it starts over).
    pub(super) async fn add(&self, users: &[User]) -> Result<()> {
        let mut blocks: Vec<(CountKey, Buckets)> = per_block(users)
            .into_iter()
            .map(|(block, buckets)| (table::count_block(block, 0), buckets))
            .collect();
        // And each owning org's own counts.
        let mut owned: BTreeMap<u64, Vec<User>> = BTreeMap::new();
        for user in users {
            if let Some(org) = user.owner {
                owned.entry(org).or_default().push(user.clone());
            }
        }
        for (org, users) in owned {
            blocks.extend(
                per_block(&users)
                    .into_iter()
                    .map(|(block, buckets)| (table::tenant_count_block(org, block, 0), buckets)),
            );
        }
        for ((pk, sk), buckets) in blocks {
            let mut update = self
                .store
                .client()
                .update_item()
                .table_name(self.store.table())
                .set_key(Some(key(pk, sk)))
                .expression_attribute_values(":one", n(1))
                .return_consumed_capacity(ReturnConsumedCapacity::Total);
            let mut adds = vec!["v :one".to_string()];
            for (bucket, (total, active)) in buckets {
                adds.push(format!("#t{bucket} :t{bucket}, #a{bucket} :a{bucket}"));
                update = update
                    .expression_attribute_names(format!("#t{bucket}"), format!("t{bucket}"))
                    .expression_attribute_names(format!("#a{bucket}"), format!("a{bucket}"))
                    .expression_attribute_values(format!(":t{bucket}"), n(total))
                    .expression_attribute_values(format!(":a{bucket}"), n(active));
            }
            let out = self.store.within(
                update
                    .update_expression(format!("ADD {}", adds.join(", ")))
                    .send(),
            );
            let out = self.store.counted(out.await?)?;
            self.store.metrics().record_one(out.consumed_capacity());
        }
        Ok(())
    }

    /// Merges the copies of blocks before `before_block` into one packed
    /// item each. Best-effort: a block that changed since it was read keeps
    /// its copies until the next attempt; failures are logged, not returned.
    pub(super) async fn compact_before(&self, before_block: u64) {
        let dir = match self.by_bucket().await {
            Ok(dir) => dir,
            Err(e) => {
                tracing::warn!(cause = %e, "count blocks not compacted");
                return;
            }
        };
        for (block, copies) in dir.scattered.iter().filter(|(b, _)| **b < before_block) {
            if let Err(e) = self.compact_block(&dir, *block, copies).await {
                tracing::info!(block, cause = %e, "count block not compacted (retried later)");
            }
        }
    }

    /// One block's copies, as read, replaced by copy 0 in packed form: one
    /// transaction conditioned on every copy's version, so a count added
    /// meanwhile cancels it and nothing is lost.
    async fn compact_block(
        &self,
        dir: &BucketCounts,
        block: u64,
        copies: &[(u32, u64)],
    ) -> Result<()> {
        let (pk0, sk0) = table::count_block(block, 0);
        let mut merged = key(pk0, sk0);
        merged.insert(
            "packed".into(),
            AttributeValue::B(Blob::new(pack(&dir.buckets, block))),
        );
        merged.insert("v".into(), n(1));
        let mut put = Put::builder()
            .table_name(self.store.table())
            .set_item(Some(merged));
        put = match copies.iter().find(|(s, _)| *s == 0) {
            Some((_, v)) => put
                .condition_expression("v = :v")
                .expression_attribute_values(":v", n(v)),
            None => put.condition_expression("attribute_not_exists(pk)"),
        };
        let mut items = vec![(
            TransactWriteItem::builder()
                .put(put.build().map_err(|e| StoreError::Fault(e.to_string()))?)
                .build(),
            false,
        )];
        for (shard, v) in copies.iter().filter(|(s, _)| *s != 0) {
            let (pk, sk) = table::count_block(block, *shard);
            let delete = Delete::builder()
                .table_name(self.store.table())
                .set_key(Some(key(pk, sk)))
                .condition_expression("v = :v")
                .expression_attribute_values(":v", n(v))
                .build()
                .map_err(|e| StoreError::Fault(e.to_string()))?;
            items.push((TransactWriteItem::builder().delete(delete).build(), false));
        }
        self.store.commit_items(items).await
    }
}

/// Per block, per bucket within it: (users, active users).
/// A count item's key.
type CountKey = (&'static str, String);
/// Bucket -> (total, active) changes of one block.
type Buckets = BTreeMap<u64, (i64, i64)>;

fn per_block(users: &[User]) -> BTreeMap<u64, Buckets> {
    let mut out: BTreeMap<u64, BTreeMap<u64, (i64, i64)>> = BTreeMap::new();
    for user in users {
        let (block, bucket) = block_of(user.id);
        let entry = out.entry(block).or_default().entry(bucket).or_default();
        entry.0 += 1;
        entry.1 += i64::from(user.is_active);
    }
    out
}

/// Where a page of a list starts and how far its read goes, as the counts
/// say: [`BucketCounts::page_start`]. The users read from there go back to
/// [`BucketCounts::remember_next`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct PageStart {
    /// The id the read starts at (inclusive; downwards when descending).
    pub from_id: u64,
    /// Listed users the read returns before the page's first one.
    pub skip: usize,
    /// How many users (inactive ones included) the read goes through to
    /// find the page: [`BucketCounts::span`]'s answer.
    pub read_hint: usize,
    /// The bucket the read starts in, and the place among its listed users
    /// of the first user read.
    bucket: u64,
    ordinal: u64,
    limit: usize,
    descending: bool,
    active_only: bool,
}

impl BucketCounts {
    /// The start of the page of `limit` users from 0-based position `k` of
    /// the list on (ids ascending or descending; only active users if
    /// `active_only`); `None` when the list is shorter, or `limit` is 0.
    ///
    /// The read starts at the bucket where the page starts, reads the users
    /// of that bucket before it and then the page (as far into the bucket of
    /// its last user as that user can be), no more. In ascending order it
    /// goes one listed user further, and [`BucketCounts::remember_next`]
    /// remembers in this process where that user is (its bucket, its place
    /// among the bucket's listed users, its id) ([`starts`]): the next page
    /// of a walk (an identity provider's import, page after page) then
    /// starts right at it instead of at its bucket's first id. A remembered
    /// start is used only while its bucket's counts are what they were, so
    /// in a directory that does not change meanwhile it is exact.
    pub(super) fn page_start(
        &self,
        table: &str,
        k: u64,
        descending: bool,
        limit: usize,
        active_only: bool,
    ) -> Option<PageStart> {
        let mut position = self.locate(k, descending, active_only)?;
        if limit == 0 {
            return None;
        }
        let bucket = position.from_id / BUCKET_IDS;
        let counts = self.buckets.get(&bucket).copied().unwrap_or_default();
        // The place among its bucket's listed users of the first user read.
        let mut ordinal = first_ordinal(position, descending);
        let learn = !descending;
        if learn && position.skip > 0 {
            let key = starts::Key::new(table, active_only, bucket, position.skip);
            if let Some(id) = starts::recall(&key, counts) {
                ordinal = position.skip;
                position = Position {
                    from_id: id,
                    skip: 0,
                };
            }
        }
        let skip = position.skip as usize;
        let extra = usize::from(learn);
        let hint = self.span_from(
            position,
            ordinal,
            descending,
            (limit + extra) as u64,
            active_only,
        ) as usize;
        // The extra user is read when the hint reaches it, never looked for.
        Some(PageStart {
            from_id: position.from_id,
            skip,
            read_hint: hint,
            bucket,
            ordinal,
            limit,
            descending,
            active_only,
        })
    }

    /// Remembers where the user after the page is, in `read` (the users
    /// read from `start`, in ascending id order): the start of the next
    /// page. Nothing for a descending read.
    pub(super) fn remember_next(&self, table: &str, start: &PageStart, read: &[User]) {
        if start.descending {
            return;
        }
        let index = start.skip + start.limit;
        let Some(next) = read.get(index) else {
            return;
        };
        let bucket = next.id / BUCKET_IDS;
        let before = read[..index]
            .iter()
            .filter(|u| u.id / BUCKET_IDS == bucket)
            .count() as u64;
        let ordinal = before
            + if bucket == start.bucket {
                start.ordinal
            } else {
                0
            };
        let counts = self.buckets.get(&bucket).copied().unwrap_or_default();
        starts::remember(
            starts::Key::new(table, start.active_only, bucket, ordinal),
            counts,
            next.id,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block_item(block: u64, shard: u32, attrs: &[(&str, i64)], packed: Option<Vec<u8>>) -> Item {
        let (pk, sk) = table::count_block(block, shard);
        let mut it = key(pk, sk);
        for (name, value) in attrs {
            it.insert(name.to_string(), n(value));
        }
        if let Some(p) = packed {
            it.insert("packed".into(), AttributeValue::B(Blob::new(p)));
        }
        it
    }

    #[test]
    fn copies_sum_per_bucket_and_positions_follow_the_sums() {
        let mut packed = vec![0u8; 100];
        packed[0] = 50; // bucket 0 of block 0: 50 users, 40 active
        packed[1] = 40;
        let items = [
            block_item(0, 0, &[], Some(packed)),
            block_item(0, 3, &[("t1", 10), ("a1", 10)], None),
            // A delete on copy 0 of a user created on copy 3.
            block_item(0, 0, &[("t1", -1), ("a1", -1)], None),
            block_item(2, 0, &[("t0", 5), ("a0", 0)], None),
        ];
        // Two items with the same key cannot exist; merge the two copy-0 halves.
        let mut first = items[0].clone();
        first.extend(
            items[2]
                .clone()
                .into_iter()
                .filter(|(k, _)| k.starts_with(['t', 'a'])),
        );
        let dir = BucketCounts::from_items(&[first, items[1].clone(), items[3].clone()]).unwrap();
        assert_eq!(
            dir.counts(),
            UserCounts {
                total: 64,
                active: 49
            }
        );
        // Block 0 is in two items, block 2 is not packed: both are worth compacting.
        assert_eq!(
            dir.scattered.keys().copied().collect::<Vec<_>>(),
            vec![0, 2]
        );

        // Ascending, all users: 50 in bucket 0, 9 in bucket 1, 5 in bucket 100.
        assert_eq!(
            dir.locate(0, false, false),
            Some(Position {
                from_id: 1,
                skip: 0
            })
        );
        assert_eq!(
            dir.locate(49, false, false),
            Some(Position {
                from_id: 1,
                skip: 49
            })
        );
        assert_eq!(
            dir.locate(50, false, false),
            Some(Position {
                from_id: 50,
                skip: 0
            })
        );
        assert_eq!(
            dir.locate(60, false, false),
            Some(Position {
                from_id: 2 * BLOCK_IDS,
                skip: 1
            })
        );
        assert_eq!(dir.locate(64, false, false), None);
        // Active only: bucket 100 has none.
        assert_eq!(
            dir.locate(48, false, true),
            Some(Position {
                from_id: 50,
                skip: 8
            })
        );
        assert_eq!(dir.locate(49, false, true), None);
        // Descending: the last bucket first.
        assert_eq!(
            dir.locate(0, true, false),
            Some(Position {
                from_id: 2 * BLOCK_IDS + 49,
                skip: 0
            })
        );
        assert_eq!(
            dir.locate(5, true, false),
            Some(Position {
                from_id: 99,
                skip: 0
            })
        );
    }

    #[test]
    fn a_bucket_without_gaps_gives_exact_positions_and_reads() {
        // Bucket 0 holds ids 1-49, all listed; bucket 1 (50-99) is full but
        // one user is inactive; bucket 2 (100-149) is full and all active.
        let dir = BucketCounts {
            buckets: [(0, (49, 49)), (1, (50, 49)), (2, (50, 50))].into(),
            ..BucketCounts::default()
        };
        let at = |k, desc, active| dir.locate(k, desc, active).unwrap();
        // Dense: the page starts at the user itself and skips nothing.
        assert_eq!(
            at(10, false, true),
            Position {
                from_id: 11,
                skip: 0
            }
        );
        assert_eq!(
            at(99, false, true),
            Position {
                from_id: 101,
                skip: 0
            }
        );
        assert_eq!(
            at(0, true, true),
            Position {
                from_id: 149,
                skip: 0
            }
        );
        // All users: bucket 1 is dense too; active only, it is not.
        assert_eq!(
            at(60, false, false),
            Position {
                from_id: 61,
                skip: 0
            }
        );
        assert_eq!(
            at(60, false, true),
            Position {
                from_id: 50,
                skip: 11
            }
        );
        // Reads: exactly the page when nobody is skipped on the way ...
        assert_eq!(dir.span(at(10, false, true), false, 20, true), 20);
        assert_eq!(dir.span(at(10, false, false), false, 100, false), 100);
        // ... one entry more in a bucket with one inactive user in it ...
        assert_eq!(dir.span(at(10, false, true), false, 50, true), 39 + 12);
        // ... and exactly again when the page ends in a dense bucket.
        assert_eq!(
            dir.span(at(10, false, true), false, 100, true),
            39 + 50 + 12
        );
        // A page that starts in a bucket with a gap reads it from its start.
        assert_eq!(dir.span(at(60, false, true), false, 10, true), 11 + 10 + 1);
    }

    #[test]
    fn packing_keeps_every_bucket() {
        let buckets: BTreeMap<u64, (u64, u64)> =
            [(50, (3, 2)), (99, (50, 50)), (100, (1, 0))].into();
        let p = pack(&buckets, 1);
        let it = block_item(1, 0, &[], Some(p));
        assert_eq!(block_counts(&it).unwrap(), vec![(0, 3, 2), (49, 50, 50)]);
    }

    #[test]
    fn counts_go_to_each_users_bucket() {
        let users: Vec<User> = (0..120u64)
            .map(|i| {
                let mut u = User::new(format!("u{i}"));
                u.id = BLOCK_IDS - 60 + i;
                u.is_active = i % 7 != 0;
                u
            })
            .collect();
        let counts = per_block(&users);
        // Ids 2440..=2559: buckets 48 (2440..) and 49 of block 0, 0 and 1 of block 1.
        assert_eq!(
            counts[&0]
                .iter()
                .map(|(b, c)| (*b, c.0))
                .collect::<Vec<_>>(),
            vec![(48, 10), (49, 50)]
        );
        assert_eq!(
            counts[&1]
                .iter()
                .map(|(b, c)| (*b, c.0))
                .collect::<Vec<_>>(),
            vec![(0, 50), (1, 10)]
        );
        let active: i64 = counts.values().flat_map(|b| b.values()).map(|c| c.1).sum();
        assert_eq!(active, users.iter().filter(|u| u.is_active).count() as i64);
    }
}

/// Where pages start, learned from the pages before them: in this process
/// (a warm function instance serves an import's pages one after another),
/// for a few minutes, and only while the bucket's counts are unchanged.
mod starts {
    use std::collections::HashMap;
    use std::sync::Mutex;
    use std::time::{Duration, Instant};

    const TTL: Duration = Duration::from_secs(300);
    const MAX_ENTRIES: usize = 4096;

    #[derive(Debug, Clone, PartialEq, Eq, Hash)]
    pub struct Key {
        table: String,
        active_only: bool,
        bucket: u64,
        /// The place among the bucket's listed users.
        ordinal: u64,
    }

    impl Key {
        pub fn new(table: &str, active_only: bool, bucket: u64, ordinal: u64) -> Key {
            Key {
                table: table.to_string(),
                active_only,
                bucket,
                ordinal,
            }
        }
    }

    /// The id, and the bucket's (total, active) when it was learned.
    type Entry = (u64, (u64, u64), Instant);

    static STARTS: Mutex<Option<HashMap<Key, Entry>>> = Mutex::new(None);

    /// The id at `key`, if it was learned recently with these same counts.
    pub fn recall(key: &Key, counts: (u64, u64)) -> Option<u64> {
        let starts = STARTS.lock().ok()?;
        let (id, then, at) = starts.as_ref()?.get(key)?;
        (*then == counts && at.elapsed() < TTL).then_some(*id)
    }

    pub fn remember(key: Key, counts: (u64, u64), id: u64) {
        let Ok(mut starts) = STARTS.lock() else {
            return;
        };
        let starts = starts.get_or_insert_with(HashMap::new);
        if starts.len() >= MAX_ENTRIES {
            starts.retain(|_, (_, _, at)| at.elapsed() < TTL);
            if starts.len() >= MAX_ENTRIES {
                starts.clear();
            }
        }
        starts.insert(key, (id, counts, Instant::now()));
    }
}
