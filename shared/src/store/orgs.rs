//! Organisations and memberships. A membership is written twice in one
//! transaction: as its own item under the org, and on the member's user item
//! (so the caller's memberships come with the caller in the auth read).
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};

use super::item::{self, key, n, s, Item};
use super::{keys, Result, Store, StoreError};
use crate::domain::user::{Membership, User};

#[derive(Debug, Clone, PartialEq)]
pub struct Org {
    pub id: u64,
    pub slug: String,
    pub name: String,
}

impl Org {
    /// `None` for the tombstone a deleted org leaves (see `store::groups`).
    pub fn from_item(item: &Item) -> Option<Org> {
        if item::get_bool(item, "deleted") == Some(true) {
            return None;
        }
        Some(Org {
            id: item::get_n(item, "org_id")?,
            slug: item::get_s(item, "slug")?.to_string(),
            name: item::get_s(item, "name").unwrap_or_default().to_string(),
        })
    }
}

fn put(table: &str, item: Item, condition: Option<&str>) -> Result<Put> {
    Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .set_condition_expression(condition.map(str::to_string))
        .build()
        .map_err(|e| StoreError::Fault(e.to_string()))
}

impl Store {
    /// Creates an org (and so a SCIM Group named `name`); `Conflict` when
    /// the slug is taken, `Taken(GroupName)` when another org has the name.
    pub async fn create_org(&self, slug: &str, name: &str) -> Result<Org> {
        let group = self.create_group(Some(slug), name, None).await?;
        Ok(Org {
            id: group.id,
            slug: group.slug,
            name: group.name,
        })
    }

    pub async fn get_org(&self, slug: &str) -> Result<Option<Org>> {
        let (pk, sk) = keys::org(slug);
        Ok(self
            .get(key(pk, sk))
            .await?
            .as_ref()
            .and_then(Org::from_item))
    }

    /// Adds (or updates the role of) a member.
    pub async fn add_member(&self, org: &Org, user: &User, role: &str) -> Result<User> {
        let (pk, sk) = keys::membership(&org.slug, user.id);
        let mut member = key(pk, sk);
        member.insert("user_id".into(), n(user.id));
        member.insert("role".into(), s(role));
        member.insert("is_active".into(), AttributeValue::Bool(true));
        let mut updated = user.clone();
        updated.memberships.retain(|m| m.org_slug != org.slug);
        updated.memberships.push(Membership {
            org_slug: org.slug.clone(),
            org_id: org.id,
            role: role.to_string(),
            is_active: true,
        });
        updated.version = user.version + 1;
        let user_put = self.versioned_put(&updated, user.version)?;
        self.commit_items(vec![
            (TransactWriteItem::builder().put(user_put).build(), true),
            (
                TransactWriteItem::builder()
                    .put(put(self.table(), member, None)?)
                    .build(),
                false,
            ),
        ])
        .await?;
        Ok(updated)
    }
}
