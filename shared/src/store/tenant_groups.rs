//! A tenant's own groups, the customer's groups inside its org: what
//! `store.tenant_groups()` reads and writes. They are kept apart from the
//! SCIM Groups that are orgs (`store.groups()`):
//! - `TGROUPS#<slug> / TGROUP#<id>`: the record (`group_id`, `name`,
//!   `external_id`, `members` as a number set of user ids, timestamps,
//!   `version`), one partition per tenant, so a tenant's list is one query
//!   of its own partition whatever the number of tenants;
//! - `TGROUPNAME#<slug>#<folded name> / CLAIM` (`group_id`): a name is the
//!   group's alone within its tenant.
//!
//! A tenant group decides roles: a member's role in the org (on the member
//! item `ORG#<slug> / MEMBER#<uid>` and on the user item's membership) is
//! the highest role among the mapped groups they are in, or the org's
//! default (`domain::tenant_group::RoleMap`). A group write carries, in the
//! same transaction, the role writes it causes: each affected user's item
//! (versioned, so two changes racing on one user's groups are serialised:
//! the loser re-reads and recomputes) and its member item when the role
//! moves. A change with more affected users than one transaction holds
//! writes the rest in steps after it; each step is idempotent, and the next
//! change of any of the user's mapped groups (or `usersctl org map-group`)
//! recomputes the role from what is stored.
use std::collections::BTreeSet;

use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};

use super::table::{self, key, n, s, Item};
use super::TenantOrg;
use super::{built, put_if_absent, Slot, Transaction, TRANSACTION_LIMIT};
use super::{Result, Store, StoreError, UniqueField, WRITE_ATTEMPTS};
use crate::domain::group::GroupRecord;
use crate::domain::orgs::Role;
use crate::domain::tenant_group::{RoleMap, TenantGroup};
use crate::domain::user::{format_time, now, parse_time, User};

/// The most items a group's own write takes: its record, a name claim
/// released and one taken.
const GROUP_ITEMS: usize = 3;

/// A role write: the user as read and the role it gets.
#[derive(Debug, Clone)]
pub struct RoleWrite {
    pub user: User,
    pub role: Role,
}

/// What a group write does to the group itself.
#[derive(Debug, Clone)]
pub enum GroupWrite<'a> {
    Create(&'a TenantGroup),
    Update {
        current: &'a TenantGroup,
        next: &'a TenantGroup,
    },
    Delete(&'a TenantGroup),
}

fn to_item(slug: &str, group: &TenantGroup) -> Item {
    let g = &group.record;
    let (pk, sk) = table::tenant_group(slug, g.id);
    let mut item = key(pk, sk);
    item.insert("group_id".into(), n(g.id));
    item.insert("name".into(), s(&g.name));
    if let Some(ext) = &g.external_id {
        item.insert("external_id".into(), s(ext));
    }
    if !group.members.is_empty() {
        item.insert(
            "members".into(),
            AttributeValue::Ns(group.members.iter().map(u64::to_string).collect()),
        );
    }
    item.insert("created".into(), s(format_time(&g.created)));
    item.insert("last_modified".into(), s(format_time(&g.last_modified)));
    item.insert("version".into(), n(g.version));
    item
}

/// `None` when the item is not a well-formed tenant group of `slug`.
pub fn from_item(slug: &str, item: &Item) -> Option<TenantGroup> {
    let time = |name| table::get_s(item, name).and_then(parse_time);
    let members: BTreeSet<u64> = item
        .get("members")
        .and_then(|v| v.as_ns().ok())
        .map(|ns| ns.iter().filter_map(|m| m.parse().ok()).collect())
        .unwrap_or_default();
    Some(TenantGroup {
        record: GroupRecord {
            id: table::get_n(item, "group_id")?,
            slug: slug.to_string(),
            name: table::get_s(item, "name").unwrap_or_default().to_string(),
            external_id: table::get_s(item, "external_id").map(str::to_string),
            created: time("created")?,
            last_modified: time("last_modified")?,
            version: table::get_n(item, "version").unwrap_or(1),
            deleting: false,
        },
        members,
    })
}

/// A tenant's groups: what `store.tenant_groups()` reads and writes.
#[derive(Clone, Copy)]
pub struct TenantGroups<'a> {
    store: &'a Store,
}

impl Store {
    pub fn tenant_groups(&self) -> TenantGroups<'_> {
        TenantGroups { store: self }
    }
}

impl TenantGroups<'_> {
    /// A new group id: one counter update.
    pub async fn next_id(&self) -> Result<u64> {
        self.store.next_id(table::tenant_group_id_counter()).await
    }

    /// Every group of tenant `slug`, in id order: one strongly consistent
    /// query of its own partition (a page per 1 MB).
    pub async fn list(&self, slug: &str) -> Result<Vec<TenantGroup>> {
        if !table::fits(slug) {
            return Ok(Vec::new());
        }
        let query = self
            .store
            .client()
            .query()
            .table_name(self.store.table())
            .key_condition_expression("pk = :pk AND begins_with(sk, :g)")
            .expression_attribute_values(":pk", s(table::tenant_groups_partition(slug)))
            .expression_attribute_values(":g", s(table::TENANT_GROUP_PREFIX))
            .consistent_read(true);
        let items = self.store.query_all(query).await?;
        Ok(items.iter().filter_map(|i| from_item(slug, i)).collect())
    }

    /// One group of tenant `slug`: one strongly consistent read.
    pub async fn get(&self, slug: &str, id: u64) -> Result<Option<TenantGroup>> {
        let (pk, sk) = table::tenant_group(slug, id);
        Ok(self
            .store
            .get(key(pk, sk))
            .await?
            .and_then(|i| from_item(slug, &i)))
    }

    /// Writes a group change of tenant `slug` (org `org_id`) and the role
    /// writes it causes: the group's items with the first roles in one
    /// transaction, the rest in steps. `Taken(GroupName)`: another group of
    /// the tenant has the name; `Conflict`: the group, or a user, changed
    /// since it was read.
    pub async fn commit(
        &self,
        slug: &str,
        org_id: u64,
        write: GroupWrite<'_>,
        mut roles: Vec<RoleWrite>,
    ) -> Result<()> {
        let mut tx = Transaction::default();
        self.group_items(&mut tx, slug, &write)?;
        let first = ((TRANSACTION_LIMIT - GROUP_ITEMS) / 2).min(roles.len());
        let rest = roles.split_off(first);
        for r in &roles {
            self.role_items(&mut tx, slug, org_id, r)?;
        }
        if let Err(e) = self.store.commit(tx).await {
            // A create's id is new, so only this very create can have made
            // its record: an attempt that landed with its answer lost,
            // before a retry found its items there.
            let landed = match (&e, &write) {
                (StoreError::Conflict | StoreError::Taken(_), GroupWrite::Create(g)) => {
                    self.get(slug, g.record.id).await?.is_some()
                }
                _ => false,
            };
            if !landed {
                return Err(e);
            }
        }
        self.set_roles(slug, org_id, rest).await
    }

    /// Writes roles, a transaction per 50 users; a user changed meanwhile is
    /// read again and given the same role.
    pub async fn set_roles(&self, slug: &str, org_id: u64, roles: Vec<RoleWrite>) -> Result<()> {
        for chunk in roles.chunks(TRANSACTION_LIMIT / 2) {
            let mut chunk = chunk.to_vec();
            let mut attempt = 1;
            loop {
                let mut tx = Transaction::default();
                for r in &chunk {
                    self.role_items(&mut tx, slug, org_id, r)?;
                }
                if tx.len() == 0 {
                    break;
                }
                match self.store.commit(tx).await {
                    Ok(()) => break,
                    Err(StoreError::Conflict) if attempt < WRITE_ATTEMPTS => {
                        attempt += 1;
                        let ids: Vec<u64> = chunk.iter().map(|r| r.user.id).collect();
                        let fresh = self.store.users().by_ids(&ids).await?;
                        chunk = chunk
                            .into_iter()
                            .filter_map(|r| {
                                fresh.get(&r.user.id).map(|u| RoleWrite {
                                    user: u.clone(),
                                    role: r.role,
                                })
                            })
                            .collect();
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }

    /// The group's own items: its record (new, versioned or deleted) and
    /// its name claim when the name is new or moves.
    fn group_items(&self, tx: &mut Transaction, slug: &str, write: &GroupWrite) -> Result<()> {
        let table = self.store.table();
        let claim = |g: &TenantGroup| -> Result<_> {
            let (pk, sk) = table::tenant_group_name_claim(slug, &g.record.name);
            let mut item = key(pk, sk);
            item.insert("group_id".into(), n(g.record.id));
            put_if_absent(table, item)
        };
        let release = |g: &TenantGroup| -> Result<_> {
            let (pk, sk) = table::tenant_group_name_claim(slug, &g.record.name);
            self.store.plain_delete(pk, sk)
        };
        match write {
            GroupWrite::Create(g) => {
                tx.put(Slot::Other, put_if_absent(table, to_item(slug, g))?);
                tx.put(Slot::Claim(UniqueField::GroupName), claim(g)?);
            }
            GroupWrite::Update { current, next } => {
                tx.put(
                    Slot::User,
                    self.versioned(to_item(slug, next), current.record.version)?,
                );
                let (a, b) = (
                    table::tenant_group_name_claim(slug, &current.record.name),
                    table::tenant_group_name_claim(slug, &next.record.name),
                );
                if a != b {
                    tx.delete(Slot::Other, release(current)?);
                    tx.put(Slot::Claim(UniqueField::GroupName), claim(next)?);
                }
            }
            GroupWrite::Delete(g) => {
                let (pk, sk) = table::tenant_group(slug, g.record.id);
                tx.delete(
                    Slot::User,
                    self.store.versioned_delete(pk, sk, g.record.version)?,
                );
                tx.delete(Slot::Other, release(g)?);
            }
        }
        Ok(())
    }

    fn versioned(&self, item: Item, expected: u64) -> Result<aws_sdk_dynamodb::types::Put> {
        built(
            aws_sdk_dynamodb::types::Put::builder()
                .table_name(self.store.table())
                .set_item(Some(item))
                .condition_expression("#version = :v")
                .expression_attribute_names("#version", "version")
                .expression_attribute_values(":v", n(expected))
                .build(),
        )
    }

    /// A user's role write: the user item (versioned, always: the version
    /// serialises role computations racing on one user) with the
    /// membership's role, and the member item's role when it moves. A user
    /// who is no member of the org (an admin removed them) has no role to
    /// write and is left alone.
    fn role_items(
        &self,
        tx: &mut Transaction,
        slug: &str,
        org_id: u64,
        r: &RoleWrite,
    ) -> Result<()> {
        let Some(current) = r.user.memberships.iter().find(|m| m.org_id == org_id) else {
            return Ok(());
        };
        let moves = current.role != r.role.name();
        let mut next = r.user.clone();
        for m in next.memberships.iter_mut().filter(|m| m.org_id == org_id) {
            m.role = r.role.name().to_string();
        }
        next.version = r.user.version + 1;
        next.last_modified = now();
        tx.put(Slot::User, self.store.versioned_put(&next, r.user.version)?);
        if moves {
            let (pk, sk) = table::membership(slug, r.user.id);
            let update = built(
                Update::builder()
                    .table_name(self.store.table())
                    .set_key(Some(key(pk, sk)))
                    .update_expression("SET #role = :r")
                    .condition_expression("attribute_exists(pk)")
                    .expression_attribute_names("#role", "role")
                    .expression_attribute_values(":r", s(r.role.name()))
                    .build(),
            )?;
            tx.push(
                Slot::Other,
                TransactWriteItem::builder().update(update).build(),
            );
        }
        Ok(())
    }

    /// The updates that take user `user_id` out of `groups` (a deleted
    /// user): each drops the id from the record's members and moves its
    /// version on, unconditionally, so repeating one is harmless.
    pub(super) fn removal(
        &self,
        slug: &str,
        groups: &[TenantGroup],
        user_id: u64,
    ) -> Result<Vec<TransactWriteItem>> {
        groups
            .iter()
            .map(|g| {
                let (pk, sk) = table::tenant_group(slug, g.record.id);
                let update = built(
                    Update::builder()
                        .table_name(self.store.table())
                        .set_key(Some(key(pk, sk)))
                        .update_expression(
                            "DELETE members :m SET #version = #version + :one, last_modified = :t",
                        )
                        .condition_expression("attribute_exists(pk)")
                        .expression_attribute_names("#version", "version")
                        .expression_attribute_values(
                            ":m",
                            AttributeValue::Ns(vec![user_id.to_string()]),
                        )
                        .expression_attribute_values(":one", n(1))
                        .expression_attribute_values(":t", s(format_time(&now())))
                        .build(),
                )?;
                Ok(TransactWriteItem::builder().update(update).build())
            })
            .collect()
    }

    /// The slug of the org that owns `user` (a tenant user), from its
    /// membership, else the org's id claim (one read).
    pub(super) async fn owner_slug(&self, user: &User) -> Result<Option<String>> {
        let Some(org_id) = user.owner else {
            return Ok(None);
        };
        if let Some(m) = user.memberships.iter().find(|m| m.org_id == org_id) {
            return Ok(Some(m.org_slug.clone()));
        }
        let (pk, sk) = table::org_by_id(org_id);
        Ok(self
            .store
            .get(key(pk, sk))
            .await?
            .and_then(|i| table::get_s(&i, "slug").map(str::to_string)))
    }

    /// Gives the members of tenant `org`'s group named `name` (caseless)
    /// the role the org's groups give them now (after `usersctl org
    /// map-group` changed what the name maps to): one query of the tenant's
    /// groups, a batch read of the members, and a transaction per 50 users
    /// whose role moves. Idempotent: running it again writes nothing. The
    /// number of users whose role moved.
    pub async fn recompute(&self, org: &TenantOrg, name: &str) -> Result<usize> {
        let groups = self.list(&org.slug).await?;
        let key = RoleMap::key(name);
        let members: Vec<u64> = groups
            .iter()
            .filter(|g| RoleMap::key(&g.record.name) == key)
            .flat_map(TenantGroup::member_ids)
            .collect();
        let users = self.store.users().by_ids(&members).await?;
        self.give_roles(org, &groups, users.into_values()).await
    }

    /// Gives every user org `org` owns the role its groups give them now
    /// (after `usersctl org default-role` changed the role of those in no
    /// mapped group): one query of the tenant's groups, the org's users from
    /// its partition of the tenant index and then by key (a user read from
    /// an index is never written back), and a transaction per 50 users whose
    /// role moves. Idempotent. The number of users whose role moved.
    pub async fn recompute_all(&self, org: &TenantOrg) -> Result<usize> {
        let groups = self.list(&org.slug).await?;
        let owned = self
            .store
            .users()
            .owned_by(org.id, None, usize::MAX, false)
            .await?;
        let ids: Vec<u64> = owned.users.iter().map(|u| u.id).collect();
        let users = self.store.users().by_ids(&ids).await?;
        self.give_roles(org, &groups, users.into_values()).await
    }

    /// Writes the role `groups` give each of `users` who is a member of
    /// `org` with another role.
    async fn give_roles(
        &self,
        org: &TenantOrg,
        groups: &[TenantGroup],
        users: impl Iterator<Item = User>,
    ) -> Result<usize> {
        let roles: Vec<RoleWrite> = users
            .filter_map(|user| {
                let role = org.roles.role(user.id, groups, org.default_role);
                let current = user.memberships.iter().find(|m| m.org_id == org.id)?;
                (current.role != role.name()).then_some(RoleWrite { user, role })
            })
            .collect();
        let moved = roles.len();
        self.set_roles(&org.slug, org.id, roles).await?;
        Ok(moved)
    }
}
