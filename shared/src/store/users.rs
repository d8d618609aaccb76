//! User items and their uniqueness claims, always written together.
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    Delete, Put, ReturnConsumedCapacity, ReturnValue, TransactWriteItem, Update,
};

use super::item::{self, key, n, s, Item};
use super::{keys, Result, Store, StoreError, UniqueField};
use crate::user::{now, User};

/// What one slot of a transaction stands for, so a cancellation reason at
/// position i can be mapped back to the field that conflicted.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Slot {
    User,
    Claim(UniqueField),
    Other,
}

#[derive(Default)]
struct Transaction {
    items: Vec<TransactWriteItem>,
    slots: Vec<Slot>,
}

impl Transaction {
    fn put(&mut self, slot: Slot, put: Put) {
        self.items
            .push(TransactWriteItem::builder().put(put).build());
        self.slots.push(slot);
    }

    fn delete(&mut self, slot: Slot, delete: Delete) {
        self.items
            .push(TransactWriteItem::builder().delete(delete).build());
        self.slots.push(slot);
    }

    fn update(&mut self, slot: Slot, update: Update) {
        self.items
            .push(TransactWriteItem::builder().update(update).build());
        self.slots.push(slot);
    }
}

fn built<T>(r: std::result::Result<T, aws_sdk_dynamodb::error::BuildError>) -> Result<T> {
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
        let (pk, sk) = match field {
            UniqueField::Username => keys::username_claim(value),
            UniqueField::Email => keys::email_claim(value),
            UniqueField::ExternalId => keys::external_id_claim(value),
        };
        Ok(self
            .get(key(pk, sk))
            .await?
            .and_then(|item| item::get_n(&item, "user_id")))
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
        tx.update(
            Slot::Other,
            self.counts_update(1, i64::from(user.is_active))?,
        );
        self.commit(tx).await?;
        Ok(user)
    }

    /// Replaces `old` by `new` if nobody wrote the user since `old` was read.
    /// Claims of changed unique fields move in the same transaction.
    pub async fn update_user(&self, old: &User, mut new: User) -> Result<User> {
        new.id = old.id;
        new.version = old.version + 1;
        new.last_modified = now();
        new.apply_derived_rules();

        let mut tx = Transaction::default();
        tx.put(Slot::User, self.versioned_put(&new, old.version)?);
        let (old_claims, new_claims) = (claims(old), claims(&new));
        for (_, (pk, sk)) in &old_claims {
            if !new_claims.iter().any(|(_, k)| k.0 == *pk) {
                tx.delete(Slot::Other, self.claim_delete(pk, sk, old.id)?);
            }
        }
        for (field, (pk, sk)) in new_claims {
            if !old_claims.iter().any(|(_, k)| k.0 == pk) {
                tx.put(Slot::Claim(field), self.claim_put(pk, sk, new.id)?);
            }
        }
        if old.is_active != new.is_active {
            let delta = if new.is_active { 1 } else { -1 };
            tx.update(Slot::Other, self.counts_update(0, delta)?);
        }
        self.commit(tx).await?;
        Ok(new)
    }

    /// Removes the user, its claims, tokens and memberships in one transaction.
    pub async fn delete_user(&self, user: &User) -> Result<()> {
        let mut tx = Transaction::default();
        let (pk, sk) = keys::user(user.id);
        tx.delete(
            Slot::User,
            built(
                Delete::builder()
                    .table_name(self.table())
                    .set_key(Some(key(pk, sk)))
                    .condition_expression("#version = :v")
                    .expression_attribute_names("#version", "version")
                    .expression_attribute_values(":v", n(user.version))
                    .build(),
            )?,
        );
        for (_, (pk, sk)) in claims(user) {
            tx.delete(Slot::Other, self.claim_delete(&pk, sk, user.id)?);
        }
        for hash in &user.token_hashes {
            let (pk, sk) = keys::token(hash);
            tx.delete(Slot::Other, self.plain_delete(pk, sk)?);
        }
        for m in &user.memberships {
            let (pk, sk) = keys::membership(&m.org_slug, user.id);
            tx.delete(Slot::Other, self.plain_delete(pk, sk)?);
        }
        tx.update(
            Slot::Other,
            self.counts_update(-1, -i64::from(user.is_active))?,
        );
        self.commit(tx).await
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
        let mut users = Vec::new();
        let mut start = None;
        while users.len() < limit {
            let want = (limit - users.len()).min(1000) as i32;
            let out = self
                .client()
                .query()
                .table_name(self.table())
                .index_name(keys::GSI1)
                .key_condition_expression("gsi1pk = :p")
                .scan_index_forward(!descending)
                .set_filter_expression(active_only.then(|| "is_active = :active".to_string()))
                .set_expression_attribute_values(Some(
                    [(":p".to_string(), s(keys::USERS_PARTITION))]
                        .into_iter()
                        .chain(active_only.then(|| {
                            (
                                ":active".to_string(),
                                aws_sdk_dynamodb::types::AttributeValue::Bool(true),
                            )
                        }))
                        .collect(),
                ))
                .limit(want)
                .set_exclusive_start_key(start)
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await?;
            self.metrics().record(
                out.consumed_capacity()
                    .map(std::slice::from_ref)
                    .unwrap_or_default(),
            );
            for item in out.items() {
                users.push(parse_user(item)?);
            }
            start = out.last_evaluated_key().cloned();
            if start.is_none() {
                break;
            }
        }
        users.truncate(limit);
        Ok(users)
    }

    /// Records a password login. Not versioned: a timestamp racing an update
    /// may be lost, which is cheaper than making every login a transaction.
    pub async fn touch_last_login(&self, user_id: u64) -> Result<chrono::DateTime<chrono::Utc>> {
        let (pk, sk) = keys::user(user_id);
        let at = now();
        let out = self
            .client()
            .update_item()
            .table_name(self.table())
            .set_key(Some(key(pk, sk)))
            .update_expression("SET last_login = :t")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":t", s(crate::user::format_time(&at)))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await?;
        self.metrics().record(
            out.consumed_capacity()
                .map(std::slice::from_ref)
                .unwrap_or_default(),
        );
        Ok(at)
    }

    pub(super) async fn next_id(&self, (pk, sk): (&str, &str)) -> Result<u64> {
        let out = self
            .client()
            .update_item()
            .table_name(self.table())
            .set_key(Some(key(pk, sk)))
            .update_expression("ADD next_id :one")
            .expression_attribute_values(":one", n(1))
            .return_values(ReturnValue::UpdatedNew)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await?;
        self.metrics().record(
            out.consumed_capacity()
                .map(std::slice::from_ref)
                .unwrap_or_default(),
        );
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

    fn claim_put(&self, pk: String, sk: &str, user_id: u64) -> Result<Put> {
        // A claim is taken only if nobody holds it: this is the uniqueness check.
        let mut claim = key(pk, sk);
        claim.insert("user_id".into(), n(user_id));
        built(
            Put::builder()
                .table_name(self.table())
                .set_item(Some(claim))
                .condition_expression("attribute_not_exists(pk)")
                .build(),
        )
    }

    fn claim_delete(&self, pk: &str, sk: &str, user_id: u64) -> Result<Delete> {
        // Only release a claim we hold; never someone else's.
        built(
            Delete::builder()
                .table_name(self.table())
                .set_key(Some(key(pk, sk)))
                .condition_expression("user_id = :id")
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

    fn counts_update(&self, total: i64, active: i64) -> Result<Update> {
        let (pk, sk) = keys::user_counts();
        built(
            Update::builder()
                .table_name(self.table())
                .set_key(Some(key(pk, sk)))
                .update_expression("ADD users_total :t, users_active :a")
                .expression_attribute_values(":t", n(total))
                .expression_attribute_values(":a", n(active))
                .build(),
        )
    }

    /// (total, active) users, kept by every create, delete and (de)activation.
    pub async fn user_counts(&self) -> Result<(u64, u64)> {
        let (pk, sk) = keys::user_counts();
        let item = self.get(key(pk, sk)).await?;
        Ok(item
            .map(|i| {
                (
                    item::get_n(&i, "users_total").unwrap_or(0),
                    item::get_n(&i, "users_active").unwrap_or(0),
                )
            })
            .unwrap_or((0, 0)))
    }

    async fn commit(&self, tx: Transaction) -> Result<()> {
        let result = self
            .client()
            .transact_write_items()
            .set_transact_items(Some(tx.items))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        match result {
            Ok(out) => {
                self.metrics().record(out.consumed_capacity());
                Ok(())
            }
            Err(raw) => {
                self.metrics().record(&[]);
                match raw.as_service_error() {
                    Some(TransactWriteItemsError::TransactionCanceledException(e)) => {
                        let failed: Vec<Slot> = e
                            .cancellation_reasons()
                            .iter()
                            .zip(&tx.slots)
                            .filter(|(r, _)| r.code() == Some("ConditionalCheckFailed"))
                            .map(|(_, slot)| *slot)
                            .collect();
                        // A stale version means another write won the race: that is a
                        // conflict (the caller re-reads and retries) even if a claim failed
                        // too, since the winner may hold it for this very user. Otherwise a
                        // failed claim names the taken field; anything else is a lost race.
                        let claim = failed.iter().find_map(|s| match s {
                            Slot::Claim(f) => Some(*f),
                            _ => None,
                        });
                        match claim {
                            _ if failed.contains(&Slot::User) => Err(StoreError::Conflict),
                            Some(field) => Err(StoreError::Taken(field)),
                            None if !failed.is_empty() => Err(StoreError::Conflict),
                            None => Err(StoreError::Fault(format!(
                                "transaction cancelled: {:?}",
                                e.cancellation_reasons()
                                    .iter()
                                    .map(|r| r.code().unwrap_or("None"))
                                    .collect::<Vec<_>>()
                            ))),
                        }
                    }
                    _ => Err(super::classify(&raw)),
                }
            }
        }
    }

    /// Commits raw transaction items (used by tokens and orgs).
    pub(super) async fn commit_items(&self, items: Vec<(TransactWriteItem, bool)>) -> Result<()> {
        let mut tx = Transaction::default();
        for (item, is_user) in items {
            tx.items.push(item);
            tx.slots
                .push(if is_user { Slot::User } else { Slot::Other });
        }
        self.commit(tx).await
    }
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
