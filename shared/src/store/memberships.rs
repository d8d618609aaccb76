//! Reads of memberships as their orgs hold them: what `store.memberships()`
//! does. It touches only the member items, `ORG#<slug> / MEMBER#<uid>`
//! (`user_id`, `role`, `is_active`, `joined_date`), which `store.groups()`
//! writes in one transaction with the membership on the user's item; it
//! writes nothing.
use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use super::table::{self, key, s, Item};
use super::{Result, Store, QUERY_PAGE};
use crate::domain::orgs::{Member, Role};
use crate::domain::user::{format_time, now, parse_time, User};

/// The attribute of a member item that says when the membership was added.
pub const JOINED: &str = "joined_date";

/// The sort key prefix of member items ([`table::membership`]).
const MEMBER_PREFIX: &str = "MEMBER#";

/// A member item as a [`Member`] of org `org_id` (the item names its org
/// only by slug, in its key).
fn member_from_item(item: &Item, org_id: u64) -> Option<Member> {
    Some(Member {
        org_id,
        user_id: table::get_n(item, "user_id")?,
        role: Role::stored(table::get_s(item, "role").unwrap_or_default()),
        is_active: table::get_bool(item, "is_active").unwrap_or(true),
        joined: table::get_s(item, JOINED).and_then(parse_time),
    })
}

/// The attributes a read of member items asks for; `role` is a DynamoDB
/// reserved word, so every name goes through a placeholder.
const PROJECTION: &str = "#u, #r, #a, #j";

fn projection_names() -> HashMap<String, String> {
    [
        ("#u", "user_id"),
        ("#r", "role"),
        ("#a", "is_active"),
        ("#j", JOINED),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// The member items, read only.
#[derive(Clone, Copy)]
pub struct Memberships<'a> {
    store: &'a Store,
}

impl Store {
    pub fn memberships(&self) -> Memberships<'_> {
        Memberships { store: self }
    }
}

impl Memberships<'_> {
    /// Every membership of org `org_id` (slug `slug`), active or not, in
    /// user id order: one `Query` on the table (partition `ORG#<slug>`,
    /// `begins_with(sk, "MEMBER#")`), a call per 1,000 members, eventually
    /// consistent like the other lists. Grows with the org, never with the
    /// directory.
    pub async fn of_org(&self, slug: &str, org_id: u64) -> Result<Vec<Member>> {
        if !table::fits(slug) {
            // No org has a slug this long: it names no members.
            return Ok(Vec::new());
        }
        let (pk, _) = table::org(slug);
        let items = self
            .store
            .query_all(
                self.store
                    .client()
                    .query()
                    .table_name(self.store.table())
                    .key_condition_expression("pk = :p AND begins_with(sk, :m)")
                    .expression_attribute_values(":p", s(pk))
                    .expression_attribute_values(":m", s(MEMBER_PREFIX))
                    .projection_expression(PROJECTION)
                    .set_expression_attribute_names(Some(projection_names()))
                    .limit(QUERY_PAGE as i32),
            )
            .await?;
        let mut members: Vec<Member> = items
            .iter()
            .filter_map(|i| member_from_item(i, org_id))
            .collect();
        // Sort keys are `MEMBER#<id>` unpadded: string order is not id order.
        members.sort_by_key(|m| m.user_id);
        Ok(members)
    }

    /// The membership of user `user_id` in org `org_id` (slug `slug`), if
    /// its member item exists: one strongly consistent `GetItem`.
    pub async fn get(&self, slug: &str, org_id: u64, user_id: u64) -> Result<Option<Member>> {
        let (pk, sk) = table::membership(slug, user_id);
        Ok(self
            .store
            .get(key(pk, sk))
            .await?
            .and_then(|i| member_from_item(&i, org_id)))
    }

    /// The member items of `user`'s memberships (those its user item lists),
    /// in org id order: one eventually consistent `BatchGetItem` per 100
    /// orgs, none for a user in no org. A membership whose member item is
    /// missing is left out.
    pub async fn of_user(&self, user: &User) -> Result<Vec<Member>> {
        if user.memberships.is_empty() {
            return Ok(Vec::new());
        }
        let wanted: Vec<Item> = user
            .memberships
            .iter()
            .map(|m| {
                let (pk, sk) = table::membership(&m.org_slug, user.id);
                key(pk, sk)
            })
            .collect();
        let found = self.store.batch_get_all(wanted, false).await?;
        let mut members: Vec<Member> = user
            .memberships
            .iter()
            .filter_map(|m| {
                let (pk, sk) = table::membership(&m.org_slug, user.id);
                found
                    .get(&(pk, sk))
                    .and_then(|i| member_from_item(i, m.org_id))
            })
            .collect();
        members.sort_by_key(|m| m.org_id);
        Ok(members)
    }
}

/// The `joined_date` a member item gets when its membership is added.
pub(super) fn joined_now() -> AttributeValue {
    s(format_time(&now()))
}
