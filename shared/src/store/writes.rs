//! What every write of the store is made of: transactions whose cancellation
//! reasons are mapped back to what failed, the deletes they carry, and the id
//! counters. The capabilities build their items; this sends them.
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    Delete, Put, ReturnConsumedCapacity, ReturnValue, TransactWriteItem,
};

use super::counts::CountDelta;
use super::table::{self, key, n, Item};
use super::{FaultKind, Result, Store, StoreError, Unavailable, UniqueField};

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

    /// Adds `delta` to the user's bucket count in the same transaction.
    pub(super) fn count(&mut self, delta: CountDelta) {
        self.counts = Some(delta);
    }

    pub(super) fn len(&self) -> usize {
        let counts = self
            .counts
            .map_or(0, |delta| 1 + usize::from(delta.owner.is_some()));
        self.items.len() + counts
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
    pub(super) async fn commit(&self, tx: Transaction) -> Result<()> {
        let mut attempt = 1;
        loop {
            let mut items = tx.items.clone();
            if let Some(delta) = tx.counts {
                items.push(
                    TransactWriteItem::builder()
                        .update(self.counts().update_for(delta)?)
                        .build(),
                );
                if let Some(update) = self.counts().tenant_update_for(delta)? {
                    items.push(TransactWriteItem::builder().update(update).build());
                }
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
