//! SCIM Groups, which are organisations: one org, one group.
//!
//! Items of org `id` with slug `s`:
//! - `ORG#s / ORG`: the org (id, slug, name), what `X-Organization: s` and
//!   `org=s` find; after a delete it stays as a tombstone (`deleted`), so
//!   that a slug is never handed to a second org;
//! - `ORGID#id / CLAIM`: id → slug, for `org_id=`;
//! - `GROUPS / GROUP#id`: the group record (name, externalId, timestamps,
//!   version), read by id and listed in id order;
//! - `GROUPNAME#<folded name> / CLAIM` and `GROUPEXTID#<externalId> / CLAIM`:
//!   uniqueness of the name (caseless, as usernames) and of the externalId;
//! - `ORG#s / MEMBER#uid`: one per member, written in the same transaction
//!   as the membership on the member's user item.
//!
//! Invariants, whichever call fails and when:
//! - a group record, its org item, its id claim and its name and externalId
//!   claims are created, renamed and removed together, in one transaction;
//! - a member item and the membership on its user item are written and
//!   removed together, in one transaction;
//! - member changes never write the group record or the org item, so
//!   concurrent changes to one group's members do not contend on any item
//!   but their own members' (no member count is kept);
//! - a delete first marks the record `deleting` and frees its name, then
//!   removes members in steps, then removes the record: each step can be
//!   repeated, so a delete that was cut short is finished by the next one.
use std::collections::HashMap;

use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, Put, ReturnConsumedCapacity, TransactWriteItem, Update,
};

use unicode_normalization::UnicodeNormalization;

use super::item::{self, key, n, s, Item};
use super::orgs::Org;
use super::users::{built, parse_user, Slot, Transaction, TRANSACTION_LIMIT};
use super::{keys, Result, Store, StoreError, UniqueField, WRITE_ATTEMPTS};
use crate::domain::group::GroupRecord;
use crate::domain::user::{format_time, now, parse_time, Membership, User};

/// The role of a member added through SCIM (the one `usersctl org
/// add-member` gives by default).
pub const DEFAULT_ROLE: &str = "worker";

/// Members changed per transaction: each takes two items (the user and its
/// member item) of DynamoDB's 100.
pub const MEMBERS_PER_TRANSACTION: usize = TRANSACTION_LIMIT / 2;

/// The most items a change of a group's own attributes writes: its record,
/// two claims released, two taken, and the org's name.
const GROUP_ITEMS: usize = 6;

/// The items a new group writes: its org, its id claim, its record, its
/// name and externalId claims.
const NEW_GROUP_ITEMS: usize = 5;

/// Members a POST adds in the group's own transaction (47): with them the
/// create is all or nothing.
pub const MEMBERS_WITH_CREATE: usize = (TRANSACTION_LIMIT - NEW_GROUP_ITEMS) / 2;

/// The org slug rules (those of `usersctl org create`): 1 to 16 letters,
/// digits, `-` and `_`.
pub const SLUG_MAX: usize = 16;

pub fn valid_slug(slug: &str) -> bool {
    !slug.is_empty()
        && slug.len() <= SLUG_MAX
        && slug
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

impl GroupRecord {
    fn to_item(&self) -> Item {
        let (pk, sk) = keys::group(self.id);
        let mut item = key(pk, sk);
        item.insert("group_id".into(), n(self.id));
        item.insert("slug".into(), s(&self.slug));
        item.insert("name".into(), s(&self.name));
        if let Some(ext) = &self.external_id {
            item.insert("external_id".into(), s(ext));
        }
        item.insert("created".into(), s(format_time(&self.created)));
        item.insert("last_modified".into(), s(format_time(&self.last_modified)));
        item.insert("version".into(), n(self.version));
        if self.deleting {
            item.insert("deleting".into(), AttributeValue::Bool(true));
        }
        item
    }

    pub(super) fn from_item(item: &Item) -> Option<GroupRecord> {
        let time = |name| item::get_s(item, name).and_then(parse_time);
        Some(GroupRecord {
            id: item::get_n(item, "group_id")?,
            slug: item::get_s(item, "slug")?.to_string(),
            name: item::get_s(item, "name").unwrap_or_default().to_string(),
            external_id: item::get_s(item, "external_id").map(str::to_string),
            created: time("created")?,
            last_modified: time("last_modified")?,
            version: item::get_n(item, "version").unwrap_or(1),
            deleting: item::get_bool(item, "deleting").unwrap_or(false),
        })
    }
}

/// The slugs a new group tries, in order: its name made a slug, the same
/// with its id, then `g<id>`. A name of no letters or digits gives `group`.
pub fn slug_candidates(name: &str, id: u64) -> Vec<String> {
    // "Ingeniería de Datos" → "ingenieria-de-da" (accents dropped, runs of
    // anything else one '-').
    let mut base = String::new();
    for c in name.nfkd().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            base.push(c);
        } else if !c.is_ascii() && unicode_normalization::char::is_combining_mark(c) {
            continue;
        } else if !base.is_empty() && !base.ends_with('-') {
            base.push('-');
        }
    }
    let base = base.trim_matches('-');
    let base = if base.is_empty() { "group" } else { base };
    let cut = |s: &str, len: usize| s.chars().take(len).collect::<String>();
    let suffix = format!("-{id}");
    let with_id = format!(
        "{}{suffix}",
        cut(base, SLUG_MAX.saturating_sub(suffix.len())).trim_end_matches('-')
    );
    let mut out = vec![cut(base, SLUG_MAX).trim_end_matches('-').to_string()];
    for candidate in [with_id, format!("g{id}")] {
        if valid_slug(&candidate) && !out.contains(&candidate) {
            out.push(candidate);
        }
    }
    out
}

/// What became of a member change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberChanges {
    /// Users who became members.
    pub added: Vec<u64>,
    /// Users who stopped being members.
    pub removed: Vec<u64>,
}

fn put_if_absent(table: &str, item: Item) -> Result<Put> {
    built(
        Put::builder()
            .table_name(table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .build(),
    )
}

impl Store {
    /// Creates a group with its first members: up to [`MEMBERS_WITH_CREATE`]
    /// in the group's own transaction (all or nothing), any more after it
    /// in steps ([`Store::change_members`]); a failure during those leaves
    /// the group with the members of the steps that went through.
    pub async fn create_group_with(
        &self,
        name: &str,
        external_id: Option<&str>,
        mut members: Vec<User>,
    ) -> Result<(GroupRecord, MemberChanges)> {
        let rest = members.split_off(MEMBERS_WITH_CREATE.min(members.len()));
        let (group, mut changes) = self.create(None, name, external_id, members).await?;
        let more = self.change_members(&group, rest, Vec::new()).await?;
        changes.added.extend(more.added);
        Ok((group, changes))
    }

    /// Creates a group and its org. `slug`: the org's slug when given
    /// (`usersctl org create`), else derived from the name
    /// ([`slug_candidates`]). `Taken(GroupName | GroupExternalId)` when the
    /// name or externalId is another group's; `Conflict` when a given slug
    /// is taken (or no candidate is free).
    pub async fn create_group(
        &self,
        slug: Option<&str>,
        name: &str,
        external_id: Option<&str>,
    ) -> Result<GroupRecord> {
        Ok(self.create(slug, name, external_id, Vec::new()).await?.0)
    }

    /// [`Store::create_group`] with `members` (at most
    /// [`MEMBERS_WITH_CREATE`]) in the same transaction. A member changed
    /// meanwhile is read again and the transaction retried; one deleted
    /// meanwhile is left out.
    async fn create(
        &self,
        slug: Option<&str>,
        name: &str,
        external_id: Option<&str>,
        mut members: Vec<User>,
    ) -> Result<(GroupRecord, MemberChanges)> {
        debug_assert!(members.len() <= MEMBERS_WITH_CREATE);
        let id = self.next_id(keys::org_id_counter()).await?;
        let candidates = match slug {
            Some(slug) => vec![slug.to_string()],
            None => slug_candidates(name, id),
        };
        let at = now();
        let mut attempt = 1;
        let mut candidates = candidates.into_iter().peekable();
        while let Some(slug) = candidates.peek().cloned() {
            let group = GroupRecord {
                id,
                slug: slug.clone(),
                name: name.to_string(),
                external_id: external_id.map(str::to_string),
                created: at,
                last_modified: at,
                version: 1,
                deleting: false,
            };
            let mut tx = Transaction::default();
            let (pk, sk) = keys::org(&group.slug);
            let mut org = key(pk, sk);
            org.insert("org_id".into(), n(id));
            org.insert("slug".into(), s(&group.slug));
            org.insert("name".into(), s(name));
            tx.put(Slot::Other, put_if_absent(self.table(), org)?);
            let (pk, sk) = keys::org_by_id(id);
            let mut by_id = key(pk, sk);
            by_id.insert("slug".into(), s(&group.slug));
            tx.put(Slot::Other, put_if_absent(self.table(), by_id)?);
            tx.put(Slot::Other, put_if_absent(self.table(), group.to_item())?);
            for (field, value) in group_claims(&group) {
                tx.put(Slot::Claim(field), self.group_claim_put(field, &value, id)?);
            }
            let mut changes = MemberChanges::default();
            for user in &members {
                self.member_change(&mut tx, &group, user, true)?;
                changes.added.push(user.id);
            }
            match self.commit(tx).await {
                Ok(()) => return Ok((group, changes)),
                Err(StoreError::Conflict) => {
                    let (pk, sk) = keys::org(&slug);
                    match self.get(key(pk, sk)).await? {
                        // The id is new, so only this very create can have
                        // made an org of it: an attempt that landed with its
                        // answer lost, before a retry found its items there.
                        Some(org) if item::get_n::<u64>(&org, "org_id") == Some(id) => {
                            return Ok((group, changes));
                        }
                        // The slug is taken: the next candidate.
                        Some(_) => {
                            candidates.next();
                            continue;
                        }
                        None => {}
                    }
                    // A member changed since it was read: read them again.
                    if attempt >= WRITE_ATTEMPTS {
                        return Err(StoreError::Conflict);
                    }
                    attempt += 1;
                    let ids: Vec<u64> = members.iter().map(|u| u.id).collect();
                    let fresh = self.users_by_id_map(&ids).await?;
                    members = ids.iter().filter_map(|id| fresh.get(id).cloned()).collect();
                }
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::Conflict)
    }

    /// Adds to `tx` what makes `user` a member of `group` (`member`) or not:
    /// the user item (versioned) and the member item, written together.
    fn member_change(
        &self,
        tx: &mut Transaction,
        group: &GroupRecord,
        user: &User,
        member: bool,
    ) -> Result<()> {
        let mut next = user.clone();
        next.version = user.version + 1;
        next.last_modified = now();
        let (pk, sk) = keys::membership(&group.slug, user.id);
        if member {
            next.memberships.push(Membership {
                org_slug: group.slug.clone(),
                org_id: group.id,
                role: DEFAULT_ROLE.to_string(),
                is_active: true,
            });
            let mut item = key(pk, sk);
            item.insert("user_id".into(), n(user.id));
            item.insert("role".into(), s(DEFAULT_ROLE));
            item.insert("is_active".into(), AttributeValue::Bool(true));
            tx.put(Slot::User, self.versioned_put(&next, user.version)?);
            tx.put(
                Slot::Other,
                built(
                    Put::builder()
                        .table_name(self.table())
                        .set_item(Some(item))
                        .build(),
                )?,
            );
        } else {
            next.memberships.retain(|m| m.org_id != group.id);
            tx.put(Slot::User, self.versioned_put(&next, user.version)?);
            tx.delete(Slot::Other, self.plain_delete(pk, sk)?);
        }
        Ok(())
    }

    /// The group record of org `id`, strongly consistent (deleting or not).
    pub async fn get_group(&self, id: u64) -> Result<Option<GroupRecord>> {
        let (pk, sk) = keys::group(id);
        Ok(self
            .get(key(pk, sk))
            .await?
            .as_ref()
            .and_then(GroupRecord::from_item))
    }

    /// Group records by id, in one batch read per 100 (eventually
    /// consistent); those being deleted are left out.
    pub async fn groups_by_ids(&self, ids: &[u64]) -> Result<Vec<GroupRecord>> {
        let keys = ids
            .iter()
            .map(|id| {
                let (pk, sk) = keys::group(*id);
                key(pk, sk)
            })
            .collect();
        let found = self.batch_get_all_with(keys, false).await?;
        let mut groups: Vec<GroupRecord> = found
            .values()
            .filter_map(GroupRecord::from_item)
            .filter(|g| !g.deleting)
            .collect();
        groups.sort_by_key(|g| g.id);
        Ok(groups)
    }

    /// Every group, in id order: one query over the `GROUPS` partition
    /// (eventually consistent, a page per MB), whatever the number of users.
    pub async fn all_groups(&self) -> Result<Vec<GroupRecord>> {
        let items = self
            .query_all(
                self.client()
                    .query()
                    .table_name(self.table())
                    .key_condition_expression("pk = :p")
                    .expression_attribute_values(":p", s(keys::GROUPS_PARTITION)),
            )
            .await?;
        Ok(items
            .iter()
            .filter_map(GroupRecord::from_item)
            .filter(|g| !g.deleting)
            .collect())
    }

    /// The ids of a group's members, in id order, reading at most `limit + 1`
    /// (so the caller can tell that there are more than `limit`).
    pub async fn group_member_ids(&self, group: &GroupRecord, limit: usize) -> Result<Vec<u64>> {
        self.member_ids(&group.slug, limit, false).await
    }

    async fn member_ids(&self, slug: &str, limit: usize, consistent: bool) -> Result<Vec<u64>> {
        let (pk, _) = keys::org(slug);
        let query = self
            .client()
            .query()
            .table_name(self.table())
            .key_condition_expression("pk = :p AND begins_with(sk, :m)")
            .expression_attribute_values(":p", s(pk))
            .expression_attribute_values(":m", s("MEMBER#"))
            .projection_expression("user_id")
            .consistent_read(consistent);
        let mut ids = Vec::new();
        let mut start = None;
        loop {
            let out = self.query_page(query.clone(), start).await?;
            ids.extend(
                out.items()
                    .iter()
                    .filter_map(|m| item::get_n::<u64>(m, "user_id")),
            );
            start = out.last_evaluated_key;
            if start.is_none() || ids.len() > limit {
                break;
            }
        }
        // Sort keys are `MEMBER#<id>` unpadded: string order is not id order.
        ids.sort_unstable();
        Ok(ids)
    }

    /// Writes `next` over `current` (name, externalId), moving the claims
    /// and the org's name with it. `Conflict` when the record changed since
    /// it was read; `Taken` when the new name or externalId is another's.
    pub async fn update_group(
        &self,
        current: &GroupRecord,
        next: GroupRecord,
    ) -> Result<GroupRecord> {
        let (next, _) = self
            .patch_group(current, Some(next), Vec::new(), Vec::new())
            .await?;
        Ok(next)
    }

    /// Applies a change to a group: `next` (its name and externalId, when
    /// they change) and members to add and remove, in one transaction when
    /// it fits ([`MEMBERS_PER_TRANSACTION`] members, a few less with a
    /// rename), else the group and the first members, then the rest in
    /// steps. O(k) writes for k members, whatever the group's size, and no
    /// read but of those members when one changed meanwhile. Users who
    /// already are (or are not) members are left as they are: a member
    /// added again keeps their role. Users deleted meanwhile are skipped.
    ///
    /// A failure part-way leaves the steps before it applied; the same
    /// change sent again finishes it (adds and removes are idempotent).
    /// `Conflict`: the group record changed since it was read.
    pub async fn patch_group(
        &self,
        current: &GroupRecord,
        next: Option<GroupRecord>,
        add: Vec<User>,
        remove: Vec<User>,
    ) -> Result<(GroupRecord, MemberChanges)> {
        let next = next.map(|n| self.next_record(current, n));
        let mut wanted: Vec<(User, bool)> = add.into_iter().map(|u| (u, true)).collect();
        wanted.extend(remove.into_iter().map(|u| (u, false)));
        let mut done = MemberChanges::default();
        // Room the group's own items leave in the first transaction.
        let first = next.as_ref().map_or(MEMBERS_PER_TRANSACTION, |_| {
            (TRANSACTION_LIMIT - GROUP_ITEMS) / 2
        });
        let rest = wanted.split_off(first.min(wanted.len()));
        let head = next.as_ref().map(|n| (current, n));
        if head.is_some() || !wanted.is_empty() {
            let changed = self.change_chunk(current, head, wanted).await?;
            done.added.extend(changed.added);
            done.removed.extend(changed.removed);
        }
        for chunk in rest.chunks(MEMBERS_PER_TRANSACTION) {
            let changed = self.change_chunk(current, None, chunk.to_vec()).await?;
            done.added.extend(changed.added);
            done.removed.extend(changed.removed);
        }
        Ok((next.unwrap_or_else(|| current.clone()), done))
    }

    /// Makes each user in `add` a member and each in `remove` not one
    /// ([`Store::patch_group`] without a change to the group itself).
    pub async fn change_members(
        &self,
        group: &GroupRecord,
        add: Vec<User>,
        remove: Vec<User>,
    ) -> Result<MemberChanges> {
        Ok(self.patch_group(group, None, add, remove).await?.1)
    }

    fn next_record(&self, current: &GroupRecord, mut next: GroupRecord) -> GroupRecord {
        next.id = current.id;
        next.slug = current.slug.clone();
        next.created = current.created;
        next.deleting = current.deleting;
        next.version = current.version + 1;
        next.last_modified = now();
        next
    }

    /// The items that write `next` over `current` (at most [`GROUP_ITEMS`]).
    fn group_update_items(
        &self,
        tx: &mut Transaction,
        current: &GroupRecord,
        next: &GroupRecord,
    ) -> Result<()> {
        tx.put(Slot::User, self.versioned_group_put(next, current.version)?);
        let (old, new) = (group_claims(current), group_claims(next));
        for (field, value) in &old {
            if !new
                .iter()
                .any(|(f, v)| f == field && claim_eq(*f, v, value))
            {
                tx.delete(
                    Slot::Other,
                    self.group_claim_delete(*field, value, current.id)?,
                );
            }
        }
        for (field, value) in &new {
            if !old
                .iter()
                .any(|(f, v)| f == field && claim_eq(*f, v, value))
            {
                tx.put(
                    Slot::Claim(*field),
                    self.group_claim_put(*field, value, current.id)?,
                );
            }
        }
        if next.name != current.name {
            tx.push(Slot::Other, self.org_rename(&current.slug, &next.name)?);
        }
        Ok(())
    }

    /// One transaction: the group's own change (`head`), if any, and the
    /// members of `chunk` whose membership differs from what is wanted.
    /// When a member changed meanwhile, reads the chunk again and retries;
    /// when the group record did, answers `Conflict`.
    async fn change_chunk(
        &self,
        group: &GroupRecord,
        head: Option<(&GroupRecord, &GroupRecord)>,
        mut chunk: Vec<(User, bool)>,
    ) -> Result<MemberChanges> {
        let mut attempt = 1;
        loop {
            let mut tx = Transaction::default();
            if let Some((current, next)) = head {
                self.group_update_items(&mut tx, current, next)?;
            }
            let mut changes = MemberChanges::default();
            for (user, member) in &chunk {
                let is_member = user.memberships.iter().any(|m| m.org_id == group.id);
                if is_member == *member {
                    continue;
                }
                self.member_change(&mut tx, group, user, *member)?;
                if *member {
                    changes.added.push(user.id);
                } else {
                    changes.removed.push(user.id);
                }
            }
            if tx.len() == 0 {
                return Ok(changes);
            }
            match self.commit(tx).await {
                Ok(()) => return Ok(changes),
                Err(StoreError::Conflict) if attempt < WRITE_ATTEMPTS => {
                    attempt += 1;
                    if let Some((current, _)) = head {
                        let now = self.get_group(current.id).await?;
                        if now.as_ref().map(|g| g.version) != Some(current.version) {
                            return Err(StoreError::Conflict);
                        }
                    }
                    // A member changed since it was read: read the chunk again.
                    let ids: Vec<u64> = chunk.iter().map(|(u, _)| u.id).collect();
                    let fresh = self.users_by_id_map(&ids).await?;
                    chunk = chunk
                        .into_iter()
                        .filter_map(|(u, member)| fresh.get(&u.id).cloned().map(|f| (f, member)))
                        .collect();
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Users by id, strongly consistent, one batch read per 100.
    pub async fn users_by_id_map(&self, ids: &[u64]) -> Result<HashMap<u64, User>> {
        let keys = ids
            .iter()
            .map(|id| {
                let (pk, sk) = keys::user(*id);
                key(pk, sk)
            })
            .collect();
        let found = self.batch_get_all_with(keys, true).await?;
        found
            .values()
            .map(|item| parse_user(item).map(|u| (u.id, u)))
            .collect()
    }

    /// Deletes a group: marks it deleting and frees its name and externalId
    /// (one transaction), removes its members in steps, then removes the
    /// record and the id claim and leaves the org item as a tombstone (one
    /// transaction). Each step may be cut short and repeated.
    pub async fn delete_group(&self, group: &GroupRecord) -> Result<()> {
        let mut group = group.clone();
        if !group.deleting {
            let mut next = group.clone();
            next.deleting = true;
            next.version = group.version + 1;
            next.last_modified = now();
            let mut tx = Transaction::default();
            tx.put(Slot::User, self.versioned_group_put(&next, group.version)?);
            for (field, value) in group_claims(&group) {
                tx.delete(
                    Slot::Other,
                    self.group_claim_delete(field, &value, group.id)?,
                );
            }
            self.commit(tx).await?;
            group = next;
        }
        self.sweep_members(&group).await?;
        let mut tx = Transaction::default();
        let (pk, sk) = keys::group(group.id);
        tx.delete(Slot::User, self.versioned_delete(pk, sk, group.version)?);
        let (pk, sk) = keys::org_by_id(group.id);
        tx.delete(Slot::Other, self.plain_delete(pk, sk)?);
        let (pk, sk) = keys::org(&group.slug);
        let mut tombstone = key(pk, sk);
        tombstone.insert("org_id".into(), n(group.id));
        tombstone.insert("slug".into(), s(&group.slug));
        tombstone.insert("deleted".into(), AttributeValue::Bool(true));
        tx.put(
            Slot::Other,
            built(
                Put::builder()
                    .table_name(self.table())
                    .set_item(Some(tombstone))
                    .build(),
            )?,
        );
        self.commit(tx).await
    }

    /// Every live org, by a pass over the whole table (a paginated `Scan`
    /// that reads only `sk = ORG` items back): for one-off maintenance such
    /// as `usersctl org adopt`, never for a request.
    pub async fn all_orgs_by_scan(&self) -> Result<Vec<Org>> {
        let mut orgs = Vec::new();
        let mut start = None;
        loop {
            let scan = self
                .client()
                .scan()
                .table_name(self.table())
                .filter_expression("sk = :org")
                .expression_attribute_values(":org", s("ORG"))
                .set_exclusive_start_key(start)
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send();
            let out = self.counted(self.within(Box::pin(scan)).await?)?;
            self.metrics.record_one(out.consumed_capacity());
            orgs.extend(out.items().iter().filter_map(Org::from_item));
            start = out.last_evaluated_key;
            if start.is_none() {
                orgs.sort_by_key(|o| o.id);
                return Ok(orgs);
            }
        }
    }

    /// Makes an org from before SCIM Groups (one with no group record) a
    /// Group named `name` (the org's own name, or another when that one is
    /// taken), in one transaction: its record, its name claim, and the org's
    /// name when it differs. `Ok(None)` when it already is a Group (so
    /// adopting again changes nothing); `Taken(GroupName)` when another
    /// group has the name.
    pub async fn adopt_org(&self, org: &Org, name: &str) -> Result<Option<GroupRecord>> {
        if self.get_group(org.id).await?.is_some() {
            return Ok(None);
        }
        let at = now();
        let group = GroupRecord {
            id: org.id,
            slug: org.slug.clone(),
            name: name.to_string(),
            external_id: None,
            created: at,
            last_modified: at,
            version: 1,
            deleting: false,
        };
        let mut tx = Transaction::default();
        tx.put(Slot::Other, put_if_absent(self.table(), group.to_item())?);
        for (field, value) in group_claims(&group) {
            tx.put(
                Slot::Claim(field),
                self.group_claim_put(field, &value, org.id)?,
            );
        }
        if name != org.name {
            tx.push(Slot::Other, self.org_rename(&org.slug, name)?);
        }
        match self.commit(tx).await {
            Ok(()) => Ok(Some(group)),
            // Adopted meanwhile (by a second `usersctl org adopt`).
            Err(StoreError::Conflict) if self.get_group(org.id).await?.is_some() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Sets the name on the org item of `slug` (which must exist).
    fn org_rename(&self, slug: &str, name: &str) -> Result<TransactWriteItem> {
        let (pk, sk) = keys::org(slug);
        Ok(TransactWriteItem::builder()
            .update(built(
                Update::builder()
                    .table_name(self.table())
                    .set_key(Some(key(pk, sk)))
                    .update_expression("SET #name = :n")
                    .condition_expression("attribute_exists(pk)")
                    .expression_attribute_names("#name", "name")
                    .expression_attribute_values(":n", s(name))
                    .build(),
            )?)
            .build())
    }

    /// Removes every member of `group`, a transaction per
    /// [`MEMBERS_PER_TRANSACTION`], until a strongly consistent read finds
    /// none. A member item whose user is gone (or no longer lists the
    /// membership) is deleted alone.
    async fn sweep_members(&self, group: &GroupRecord) -> Result<()> {
        loop {
            let ids = self
                .member_ids(&group.slug, 10 * MEMBERS_PER_TRANSACTION, true)
                .await?;
            if ids.is_empty() {
                return Ok(());
            }
            let users = self.users_by_id_map(&ids).await?;
            let mut leave = Vec::new();
            let mut strays = Transaction::default();
            for id in &ids {
                match users.get(id) {
                    Some(u) if u.memberships.iter().any(|m| m.org_id == group.id) => {
                        leave.push(u.clone())
                    }
                    _ => {
                        let (pk, sk) = keys::membership(&group.slug, *id);
                        strays.delete(Slot::Other, self.plain_delete(pk, sk)?);
                        if strays.len() == TRANSACTION_LIMIT {
                            self.commit(std::mem::take(&mut strays)).await?;
                        }
                    }
                }
            }
            if strays.len() > 0 {
                self.commit(strays).await?;
            }
            self.change_members(group, Vec::new(), leave).await?;
        }
    }

    fn versioned_group_put(&self, group: &GroupRecord, expected_version: u64) -> Result<Put> {
        built(
            Put::builder()
                .table_name(self.table())
                .set_item(Some(group.to_item()))
                .condition_expression("#version = :v")
                .expression_attribute_names("#version", "version")
                .expression_attribute_values(":v", n(expected_version))
                .build(),
        )
    }

    fn group_claim_put(&self, field: UniqueField, value: &str, id: u64) -> Result<Put> {
        let (pk, sk) = group_claim_key(field, value);
        let mut claim = key(pk, sk);
        claim.insert("group_id".into(), n(id));
        put_if_absent(self.table(), claim)
    }

    fn group_claim_delete(&self, field: UniqueField, value: &str, id: u64) -> Result<Delete> {
        let (pk, sk) = group_claim_key(field, value);
        built(
            Delete::builder()
                .table_name(self.table())
                .set_key(Some(key(pk, sk)))
                .condition_expression("attribute_not_exists(pk) OR group_id = :id")
                .expression_attribute_values(":id", n(id))
                .build(),
        )
    }
}

/// The claims a group holds: its name, and its externalId when it has one.
fn group_claims(group: &GroupRecord) -> Vec<(UniqueField, String)> {
    let mut out = vec![(UniqueField::GroupName, group.name.clone())];
    if let Some(ext) = &group.external_id {
        out.push((UniqueField::GroupExternalId, ext.clone()));
    }
    out
}

/// The key of a group's claim (a group holds only these two kinds).
fn group_claim_key(field: UniqueField, value: &str) -> (String, &'static str) {
    match field {
        UniqueField::GroupExternalId => keys::group_external_id_claim(value),
        _ => keys::group_name_claim(value),
    }
}

/// Whether two values hold the same claim (names compare folded).
fn claim_eq(field: UniqueField, a: &str, b: &str) -> bool {
    let (ka, _) = group_claim_key(field, a);
    let (kb, _) = group_claim_key(field, b);
    ka == kb
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_follow_the_org_rules() {
        assert_eq!(
            slug_candidates("Engineering", 7),
            ["engineering", "engineering-7", "g7"]
        );
        assert_eq!(
            slug_candidates("Ingeniería de Datos", 12),
            ["ingenieria-de-da", "ingenieria-de-12", "g12"]
        );
        assert_eq!(slug_candidates("***", 3), ["group", "group-3", "g3"]);
        assert_eq!(slug_candidates("Ab--", 3)[0], "ab");
        for name in ["a b c", "Ωμέγα", "x".repeat(40).as_str(), "日本"] {
            for slug in slug_candidates(name, 123_456) {
                assert!(valid_slug(&slug), "{name:?} → {slug:?}");
            }
        }
    }
}
