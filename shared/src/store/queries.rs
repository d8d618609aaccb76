//! Reads of a few users by what pins them, so that a list whose query names
//! its users (by id, by username, by an id range, by org) reads those users
//! and not the whole directory. Every call is bounded by the request's budget
//! and counted like any other.
use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use super::item::{self, key, s, Item};
use super::users::{claim_key, parse_user};
use super::{keys, Result, Store, UniqueField};
use crate::domain::user::User;

/// DynamoDB's limit on the keys of one `BatchGetItem`.
const BATCH_KEYS: usize = 100;

/// The sort key prefix of membership items ([`keys::membership`]).
const MEMBER_PREFIX: &str = "MEMBER#";

/// Items one page of a query asks for: the service stops at 1 MB anyway.
const QUERY_PAGE: i32 = 1000;

impl Store {
    /// The users with these ids that exist, in no particular order:
    /// strongly consistent `BatchGetItem`s of at most 100 keys each (on the
    /// table), unprocessed keys retried by [`Store::batch_get`].
    pub async fn users_by_ids(&self, ids: &[u64]) -> Result<Vec<User>> {
        self.user_items(ids, true)
            .await?
            .values()
            .map(parse_user)
            .collect()
    }

    /// The user items of `ids` that exist, by key: `BatchGetItem`s of at
    /// most 100 keys, strongly consistent or not.
    pub(super) async fn user_items(
        &self,
        ids: &[u64],
        consistent: bool,
    ) -> Result<HashMap<(String, String), Item>> {
        let keys: Vec<Item> = ids
            .iter()
            .map(|id| {
                let (pk, sk) = keys::user(*id);
                key(pk, sk)
            })
            .collect();
        self.batch_get_all_with(keys, consistent).await
    }

    /// The ids holding the claims of `values` of `field` (values nobody
    /// holds are left out): `BatchGetItem`s of at most 100 claim keys.
    pub async fn claim_owners(&self, field: UniqueField, values: &[String]) -> Result<Vec<u64>> {
        let keys: Vec<Item> = values
            .iter()
            .map(|v| {
                let (pk, sk) = claim_key(field, v);
                key(pk, sk)
            })
            .collect();
        let found = self.batch_get_all(keys).await?;
        let mut owners: Vec<u64> = found
            .values()
            .filter_map(|claim| item::get_n(claim, "user_id"))
            .collect();
        owners.sort_unstable();
        owners.dedup();
        Ok(owners)
    }

    /// The users with ids in `low..=high`, in id order: one `Query` on GSI1
    /// (`gsi1sk BETWEEN`), paginated, reading only that range.
    pub async fn users_in_id_range(&self, low: u64, high: u64) -> Result<Vec<User>> {
        if low > high {
            return Ok(Vec::new());
        }
        let values: HashMap<String, AttributeValue> = [
            (":p", s(keys::USERS_PARTITION)),
            (":lo", s(keys::user_order(low))),
            (":hi", s(keys::user_order(high))),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        self.query_all(
            self.client()
                .query()
                .table_name(self.table())
                .index_name(keys::GSI1)
                .key_condition_expression("gsi1pk = :p AND gsi1sk BETWEEN :lo AND :hi")
                .set_expression_attribute_values(Some(values))
                .limit(QUERY_PAGE),
        )
        .await?
        .iter()
        .map(parse_user)
        .collect()
    }

    /// The ids of the members of org `slug` (active or not): one `Query` on
    /// the table (partition `ORG#<slug>`, `begins_with(sk, "MEMBER#")`),
    /// paginated, projecting only `user_id`. Eventually consistent like the
    /// other lists; a membership is written with its user item in one
    /// transaction, so the two agree once settled.
    pub async fn org_member_ids(&self, slug: &str) -> Result<Vec<u64>> {
        let (pk, _) = keys::org(slug);
        if pk.len() > 2048 {
            // No key this long was ever written; DynamoDB would refuse it.
            return Ok(Vec::new());
        }
        let members = self
            .query_all(
                self.client()
                    .query()
                    .table_name(self.table())
                    .key_condition_expression("pk = :p AND begins_with(sk, :m)")
                    .expression_attribute_values(":p", s(pk))
                    .expression_attribute_values(":m", s(MEMBER_PREFIX))
                    .projection_expression("user_id")
                    .limit(QUERY_PAGE),
            )
            .await?;
        Ok(members
            .iter()
            .filter_map(|m| item::get_n::<u64>(m, "user_id"))
            .collect())
    }

    /// [`Store::batch_get`] over any number of keys, 100 per call.
    async fn batch_get_all(&self, keys: Vec<Item>) -> Result<HashMap<(String, String), Item>> {
        self.batch_get_all_with(keys, true).await
    }

    pub(super) async fn batch_get_all_with(
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
}
