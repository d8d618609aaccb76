//! Bulk loading: many users written straight into the table with
//! `BatchWriteItem`, in exactly the items the transactional writes produce,
//! so that a benchmark (or a seeded test stack) can stand up a directory of
//! 100,000 users in minutes instead of the hours 100,000 create transactions
//! would take.
//!
//! What this gives up, and why that is acceptable for its callers:
//! - No uniqueness conditions: `BatchWriteItem` cannot carry conditions, so
//!   a claim already in the table would be overwritten. The caller loads into
//!   a table that holds none of these usernames, emails or external ids
//!   (duplicates *within* the load are refused before anything is written).
//! - Not atomic: a failed load leaves the users written so far, without their
//!   counts (the counts are added last). Load into a fresh table and drop it
//!   on failure.
use std::collections::{BTreeMap, HashSet};

use aws_sdk_dynamodb::types::{
    AttributeValue, PutRequest, ReturnConsumedCapacity, ReturnValue, WriteRequest,
};
use tokio::task::JoinSet;

use super::buckets::block_of;
use super::item::{self, key, n, s, Item};
use super::users::claim_key;
use super::{keys, FaultKind, Result, Store, StoreError, Unavailable, UniqueField};
use crate::domain::user::{now, User};

/// DynamoDB's limit on the requests of one `BatchWriteItem`.
pub const BATCH_WRITE_ITEMS: usize = 25;

/// Batches in flight at once: enough to hide the round trip, few enough not
/// to swamp a DynamoDB Local sharing two cores with the benchmark.
const CONCURRENT_BATCHES: usize = 4;

/// Rounds of `UnprocessedItems` one batch retries (with backoff) before the
/// load gives up. More than a request's reads get: a load has no client
/// waiting on it, and an on-demand table throttles while it scales up.
const WRITE_ROUNDS: u32 = 10;

impl Store {
    /// Stores `users` as new users, ids assigned in order past every id
    /// handed out so far (the id counter moves past the last one in one
    /// update, so later creates carry on after them). Writes each user item,
    /// its claims and its membership items (the orgs must exist), 25 items
    /// per `BatchWriteItem` with a few batches in flight, then adds the users
    /// to the per-bucket counts. Returns the users as stored.
    ///
    /// `Taken` when two of the users share a username, email or external id
    /// (nothing is written then). See the module doc for what the caller
    /// must guarantee about the table.
    pub async fn import_users(&self, users: Vec<User>) -> Result<Vec<User>> {
        if users.is_empty() {
            return Ok(users);
        }
        distinct_claims(&users)?;
        let first = self.reserve_ids(users.len() as u64).await?;
        let stored = stamp(users, first);
        let items: Vec<Item> = stored.iter().flat_map(user_items).collect();
        self.put_all(items).await?;
        self.add_bucket_counts(&stored).await?;
        // One packed item per block, as creates leave them.
        self.compact_counts().await;
        Ok(stored)
    }

    /// Moves the user id counter `count` ids on: one update. Returns the
    /// first of the reserved ids (ids start at 1, as [`Store::create_user`]'s).
    async fn reserve_ids(&self, count: u64) -> Result<u64> {
        let (pk, sk) = keys::user_id_counter();
        let out = self.within(
            self.client()
                .update_item()
                .table_name(self.table())
                .set_key(Some(key(pk, sk)))
                .update_expression("ADD next_id :count")
                .expression_attribute_values(":count", n(count))
                .return_values(ReturnValue::UpdatedNew)
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send(),
        );
        let out = self.counted(out.await?)?;
        self.metrics().record_one(out.consumed_capacity());
        let last: u64 = out
            .attributes()
            .and_then(|a| item::get_n(a, "next_id"))
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
                let store = self.clone();
                running.spawn(async move { store.put_batch(batch).await });
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
                self.back_off(round, FaultKind::Throttled, "UnprocessedItems")
                    .await?;
            }
            round += 1;
            let out = self.within(
                self.client()
                    .batch_write_item()
                    .request_items(self.table(), requests)
                    .return_consumed_capacity(ReturnConsumedCapacity::Total)
                    .send(),
            );
            let out = self.counted(out.await?)?;
            self.metrics().record(out.consumed_capacity());
            requests = out
                .unprocessed_items()
                .and_then(|u| u.get(self.table()))
                .cloned()
                .unwrap_or_default();
        }
        Ok(())
    }

    /// Adds the users to their buckets' counts: one update per block (of
    /// copy 0, with the `ADD`s [`Store::bucket_update`] makes, and its
    /// version moved so that a compaction racing it starts over).
    async fn add_bucket_counts(&self, users: &[User]) -> Result<()> {
        for (block, buckets) in bucket_counts(users) {
            let (pk, sk) = keys::count_block(block, 0);
            let mut update = self
                .client()
                .update_item()
                .table_name(self.table())
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
            let out = self.within(
                update
                    .update_expression(format!("ADD {}", adds.join(", ")))
                    .send(),
            );
            let out = self.counted(out.await?)?;
            self.metrics().record_one(out.consumed_capacity());
        }
        Ok(())
    }
}

/// `Taken` when two users would hold the same claim (the keys fold case and
/// NFKC as the claims do). `BatchWriteItem` would silently keep only one.
fn distinct_claims(users: &[User]) -> Result<()> {
    let mut seen = HashSet::new();
    for user in users {
        for (field, (pk, _)) in claims(user) {
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

/// The claims a user holds: username, and email and external id when set.
fn claims(user: &User) -> Vec<(UniqueField, (String, &'static str))> {
    let mut out = vec![(
        UniqueField::Username,
        claim_key(UniqueField::Username, &user.username),
    )];
    if !user.email.is_empty() {
        out.push((
            UniqueField::Email,
            claim_key(UniqueField::Email, &user.email),
        ));
    }
    if let Some(ext) = &user.external_id {
        out.push((
            UniqueField::ExternalId,
            claim_key(UniqueField::ExternalId, ext),
        ));
    }
    out
}

/// Every item a stored user comes with: the user, its claims (attribute
/// `user_id`, as the create transaction writes them) and its membership
/// items (as [`Store::add_member`] writes them).
fn user_items(user: &User) -> Vec<Item> {
    let mut items = vec![item::user_to_item(user)];
    for (_, (pk, sk)) in claims(user) {
        let mut claim = key(pk, sk);
        claim.insert("user_id".into(), n(user.id));
        items.push(claim);
    }
    for m in &user.memberships {
        let (pk, sk) = keys::membership(&m.org_slug, user.id);
        let mut member = key(pk, sk);
        member.insert("user_id".into(), n(user.id));
        member.insert("role".into(), s(&m.role));
        member.insert("is_active".into(), AttributeValue::Bool(m.is_active));
        items.push(member);
    }
    items
}

/// Per block, per bucket within it: (users, active users).
fn bucket_counts(users: &[User]) -> BTreeMap<u64, BTreeMap<u64, (i64, i64)>> {
    let mut out: BTreeMap<u64, BTreeMap<u64, (i64, i64)>> = BTreeMap::new();
    for user in users {
        let (block, bucket) = block_of(user.id);
        let entry = out.entry(block).or_default().entry(bucket).or_default();
        entry.0 += 1;
        entry.1 += i64::from(user.is_active);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::user::Membership;
    use crate::store::BLOCK_IDS;

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
        let keys: Vec<(String, String)> =
            user_items(&u).iter().map(super::super::item_key).collect();
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
        let items = user_items(&u);
        assert!(items[1..4]
            .iter()
            .all(|c| item::get_n::<u64>(c, "user_id") == Some(7)));
        assert_eq!(item::user_from_item(&items[0]), Some(u));
    }

    #[test]
    fn counts_go_to_each_users_bucket() {
        let users = stamp(
            (0..120)
                .map(|i| user(&format!("u{i}"), i % 7 != 0))
                .collect(),
            BLOCK_IDS - 60,
        );
        let counts = bucket_counts(&users);
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
