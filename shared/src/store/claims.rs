//! Uniqueness claims: one item per unique value, naming who holds it.
//!
//! A user holds the claims of its username and email (compared after NFKC
//! and case folding) and of its externalId (`USERNAME#…`, `EMAIL#…`,
//! `EXTID#…` / `CLAIM`, attribute `user_id`); a group those of its folded
//! name and its externalId (`GROUPNAME#…`, `GROUPEXTID#…`, attribute
//! `group_id`). A claim is taken and released only in the transaction that
//! writes its holder (see `store::users` and `store::groups`), so a holder
//! has exactly its claims; the puts and deletes that do it are built here,
//! with the conditions that make them the uniqueness check.
use aws_sdk_dynamodb::types::{Delete, Put};

use super::table::claim_key;
use super::table::{self, key, n, Item};
use super::{built, put_if_absent};
use super::{Result, Store, UniqueField};
use crate::domain::group::GroupRecord;
use crate::domain::user::User;

/// The uniqueness claims of users and groups: what `store.claims()` reads.
/// It reads only claim items (and, for [`Claims::user`], the user item the
/// claim names); it writes nothing.
#[derive(Clone, Copy)]
pub struct Claims<'a> {
    store: &'a Store,
}

impl Store {
    pub fn claims(&self) -> Claims<'_> {
        Claims { store: self }
    }
}

impl Claims<'_> {
    /// The id that holds a uniqueness claim (a user's or a group's), if any:
    /// one strongly consistent GetItem.
    pub async fn owner(&self, field: UniqueField, value: &str) -> Result<Option<u64>> {
        let (pk, sk) = claim_key(field, value);
        Ok(self.store.get(key(pk, sk)).await?.and_then(|item| {
            table::get_n(&item, "user_id").or_else(|| table::get_n(&item, "group_id"))
        }))
    }

    /// The users holding the claims of `values` of `field`, by id, sorted
    /// and without repeats (values nobody holds are left out): strongly
    /// consistent `BatchGetItem`s of at most 100 claim keys.
    pub async fn owners(&self, field: UniqueField, values: &[String]) -> Result<Vec<u64>> {
        let keys: Vec<Item> = values
            .iter()
            .map(|v| {
                let (pk, sk) = claim_key(field, v);
                key(pk, sk)
            })
            .collect();
        let found = self.store.batch_get_all(keys, true).await?;
        let mut owners: Vec<u64> = found
            .values()
            .filter_map(|claim| table::get_n(claim, "user_id"))
            .collect();
        owners.sort_unstable();
        owners.dedup();
        Ok(owners)
    }

    /// The user that holds a uniqueness claim: two reads, the claim then the
    /// user.
    pub async fn user(&self, field: UniqueField, value: &str) -> Result<Option<User>> {
        match self.owner(field, value).await? {
            Some(id) => self.store.users().get(id).await,
            None => Ok(None),
        }
    }

    /// The put that takes a user's claim, on condition that nobody holds it:
    /// this is the uniqueness check. (A claim item without `user_id` only
    /// counts failed logins for a name nobody has; taking the name replaces
    /// it.)
    pub(super) fn take(&self, pk: String, sk: &str, user_id: u64) -> Result<Put> {
        let mut claim = key(pk, sk);
        claim.insert("user_id".into(), n(user_id));
        built(
            Put::builder()
                .table_name(self.store.table())
                .set_item(Some(claim))
                .condition_expression("attribute_not_exists(user_id)")
                .build(),
        )
    }

    /// The delete that releases a user's claim: only one it holds, never
    /// someone else's. A claim that is already gone is released too: it
    /// must not make a user undeletable.
    pub(super) fn release(&self, pk: &str, sk: &str, user_id: u64) -> Result<Delete> {
        built(
            Delete::builder()
                .table_name(self.store.table())
                .set_key(Some(key(pk, sk)))
                .condition_expression("attribute_not_exists(pk) OR user_id = :id")
                .expression_attribute_values(":id", n(user_id))
                .build(),
        )
    }

    /// The put that takes a group's claim, where no item is.
    pub(super) fn take_for_group(&self, field: UniqueField, value: &str, id: u64) -> Result<Put> {
        let (pk, sk) = group_claim_key(field, value);
        let mut claim = key(pk, sk);
        claim.insert("group_id".into(), n(id));
        put_if_absent(self.store.table(), claim)
    }

    /// The delete that releases a group's claim (one it holds, or one
    /// already gone).
    pub(super) fn release_for_group(
        &self,
        field: UniqueField,
        value: &str,
        id: u64,
    ) -> Result<Delete> {
        let (pk, sk) = group_claim_key(field, value);
        built(
            Delete::builder()
                .table_name(self.store.table())
                .set_key(Some(key(pk, sk)))
                .condition_expression("attribute_not_exists(pk) OR group_id = :id")
                .expression_attribute_values(":id", n(id))
                .build(),
        )
    }
}

/// The claims a group holds: its name, and its externalId when it has one.
pub(super) fn group_claims(group: &GroupRecord) -> Vec<(UniqueField, String)> {
    let mut out = vec![(UniqueField::GroupName, group.name.clone())];
    if let Some(ext) = &group.external_id {
        out.push((UniqueField::GroupExternalId, ext.clone()));
    }
    out
}

/// The key of a group's claim (a group holds only these two kinds).
fn group_claim_key(field: UniqueField, value: &str) -> (String, &'static str) {
    match field {
        UniqueField::GroupExternalId => table::group_external_id_claim(value),
        _ => table::group_name_claim(value),
    }
}

/// Whether two values hold the same group claim (names compare folded).
pub(super) fn same_group_claim(field: UniqueField, a: &str, b: &str) -> bool {
    let (ka, _) = group_claim_key(field, a);
    let (kb, _) = group_claim_key(field, b);
    ka == kb
}
