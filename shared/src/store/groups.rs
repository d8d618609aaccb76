//! SCIM Groups, which are organisations: one org, one group. What
//! `store.groups()` does.
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
//! - `ORG#s / MEMBER#uid`: one per member (its role, whether it is active,
//!   and `joined_date`, when it was added), written in the same transaction
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
use aws_sdk_dynamodb::types::{
    AttributeValue, Put, ReturnConsumedCapacity, TransactWriteItem, Update,
};

use unicode_normalization::UnicodeNormalization;

use super::claims::{group_claims, same_group_claim};
use super::memberships::{joined_now, JOINED};
use super::table::{self, key, n, s, Item};
use super::{built, put_if_absent, Slot, Transaction, TRANSACTION_LIMIT};
use super::{Result, Store, StoreError, QUERY_PAGE, WRITE_ATTEMPTS};
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
    pub(crate) fn to_item(&self) -> Item {
        let (pk, sk) = table::group(self.id);
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

    /// `None` when the item is not a well-formed group record.
    pub fn from_item(item: &Item) -> Option<GroupRecord> {
        let time = |name| table::get_s(item, name).and_then(parse_time);
        Some(GroupRecord {
            id: table::get_n(item, "group_id")?,
            slug: table::get_s(item, "slug")?.to_string(),
            name: table::get_s(item, "name").unwrap_or_default().to_string(),
            external_id: table::get_s(item, "external_id").map(str::to_string),
            created: time("created")?,
            last_modified: time("last_modified")?,
            version: table::get_n(item, "version").unwrap_or(1),
            deleting: table::get_bool(item, "deleting").unwrap_or(false),
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

/// An organisation as `X-Organization`, `org=` and `usersctl org` name it.
#[derive(Debug, Clone, PartialEq)]
pub struct Org {
    pub id: u64,
    pub slug: String,
    pub name: String,
}

impl Org {
    /// `None` for the tombstone a deleted org leaves.
    pub fn from_item(item: &Item) -> Option<Org> {
        if table::get_bool(item, "deleted") == Some(true) {
            return None;
        }
        Some(Org {
            id: table::get_n(item, "org_id")?,
            slug: table::get_s(item, "slug")?.to_string(),
            name: table::get_s(item, "name").unwrap_or_default().to_string(),
        })
    }
}

/// The sort key prefix of member items ([`table::membership`]).
const MEMBER_PREFIX: &str = "MEMBER#";

/// Groups, which are orgs, and their members: what `store.groups()` reads
/// and writes. It touches the group records (`GROUPS` / `GROUP#<id>`), the
/// org items (`ORG#<slug>` / `ORG`, `ORGID#<id>`), the group id counter, the
/// groups' name and externalId claims, and the member items
/// (`ORG#<slug>` / `MEMBER#<uid>`) together with the memberships on their
/// users' items.
#[derive(Clone, Copy)]
pub struct Groups<'a> {
    store: &'a Store,
}

impl Store {
    pub fn groups(&self) -> Groups<'_> {
        Groups { store: self }
    }
}

impl Groups<'_> {
    /// Creates a group named `name`, its org (the slug derived from the name:
    /// [`slug_candidates`]) and its first members: up to
    /// `MEMBERS_WITH_CREATE` in the group's own transaction (all or
    /// nothing), any more after it in steps ([`Groups::change_members`]); a
    /// failure during those leaves the group with the members of the steps
    /// that went through. `Taken(GroupName | GroupExternalId)` when the name
    /// or externalId is another group's; `Conflict` when no slug candidate
    /// is free.
    pub async fn create(
        &self,
        name: &str,
        external_id: Option<&str>,
        mut members: Vec<User>,
    ) -> Result<(GroupRecord, MemberChanges)> {
        let rest = members.split_off(MEMBERS_WITH_CREATE.min(members.len()));
        let (group, mut changes) = self.insert(None, name, external_id, members).await?;
        let more = self.change_members(&group, rest, Vec::new()).await?;
        changes.added.extend(more.added);
        Ok((group, changes))
    }

    /// Creates an org with the slug `slug` (`usersctl org create`), and so a
    /// SCIM Group named `name`; `Conflict` when the slug is taken,
    /// `Taken(GroupName)` when another org has the name.
    pub async fn create_org(&self, slug: &str, name: &str) -> Result<Org> {
        let (group, _) = self.insert(Some(slug), name, None, Vec::new()).await?;
        Ok(Org {
            id: group.id,
            slug: group.slug,
            name: group.name,
        })
    }

    /// Creates a group and its org, with `members` (at most
    /// [`MEMBERS_WITH_CREATE`]) in the same transaction. `slug`: the org's
    /// slug when given, else derived from the name ([`slug_candidates`]).
    /// A member changed meanwhile is read again and the transaction retried;
    /// one deleted meanwhile is left out.
    async fn insert(
        &self,
        slug: Option<&str>,
        name: &str,
        external_id: Option<&str>,
        mut members: Vec<User>,
    ) -> Result<(GroupRecord, MemberChanges)> {
        debug_assert!(members.len() <= MEMBERS_WITH_CREATE);
        let id = self.store.next_id(table::org_id_counter()).await?;
        let candidates = match slug {
            Some(slug) => vec![slug.to_string()],
            None => slug_candidates(name, id),
        };
        let table = self.store.table();
        let claims = self.store.claims();
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
            let (pk, sk) = table::org(&group.slug);
            let mut org = key(pk, sk);
            org.insert("org_id".into(), n(id));
            org.insert("slug".into(), s(&group.slug));
            org.insert("name".into(), s(name));
            tx.put(Slot::Other, put_if_absent(table, org)?);
            let (pk, sk) = table::org_by_id(id);
            let mut by_id = key(pk, sk);
            by_id.insert("slug".into(), s(&group.slug));
            tx.put(Slot::Other, put_if_absent(table, by_id)?);
            tx.put(Slot::Other, put_if_absent(table, group.to_item())?);
            for (field, value) in group_claims(&group) {
                tx.put(
                    Slot::Claim(field),
                    claims.take_for_group(field, &value, id)?,
                );
            }
            let mut changes = MemberChanges::default();
            for user in &members {
                self.member_change(&mut tx, &group, user, true)?;
                changes.added.push(user.id);
            }
            match self.store.commit(tx).await {
                Ok(()) => return Ok((group, changes)),
                Err(StoreError::Conflict) => {
                    let (pk, sk) = table::org(&slug);
                    match self.store.get(key(pk, sk)).await? {
                        // The id is new, so only this very create can have
                        // made an org of it: an attempt that landed with its
                        // answer lost, before a retry found its items there.
                        Some(org) if table::get_n::<u64>(&org, "org_id") == Some(id) => {
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
                    let fresh = self.store.users().by_ids(&ids).await?;
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
        let (pk, sk) = table::membership(&group.slug, user.id);
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
            // Only a user who is not a member gets here, so the membership
            // begins now.
            item.insert(JOINED.into(), joined_now());
            tx.put(Slot::User, self.store.versioned_put(&next, user.version)?);
            tx.put(
                Slot::Other,
                built(
                    Put::builder()
                        .table_name(self.store.table())
                        .set_item(Some(item))
                        .build(),
                )?,
            );
        } else {
            next.memberships.retain(|m| m.org_id != group.id);
            tx.put(Slot::User, self.store.versioned_put(&next, user.version)?);
            tx.delete(Slot::Other, self.store.plain_delete(pk, sk)?);
        }
        Ok(())
    }

    /// The group record of org `id`, strongly consistent (deleting or not).
    pub async fn get(&self, id: u64) -> Result<Option<GroupRecord>> {
        let (pk, sk) = table::group(id);
        Ok(self
            .store
            .get(key(pk, sk))
            .await?
            .as_ref()
            .and_then(GroupRecord::from_item))
    }

    /// Group records by id, in id order, in one batch read per 100
    /// (eventually consistent); those being deleted are left out.
    pub async fn by_ids(&self, ids: &[u64]) -> Result<Vec<GroupRecord>> {
        let keys = ids
            .iter()
            .map(|id| {
                let (pk, sk) = table::group(*id);
                key(pk, sk)
            })
            .collect();
        let found = self.store.batch_get_all(keys, false).await?;
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
    pub async fn all(&self) -> Result<Vec<GroupRecord>> {
        let items = self
            .store
            .query_all(
                self.store
                    .client()
                    .query()
                    .table_name(self.store.table())
                    .key_condition_expression("pk = :p")
                    .expression_attribute_values(":p", s(table::GROUPS_PARTITION)),
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
    pub async fn member_ids(&self, group: &GroupRecord, limit: usize) -> Result<Vec<u64>> {
        self.read_member_ids(&group.slug, limit, false).await
    }

    async fn read_member_ids(
        &self,
        slug: &str,
        limit: usize,
        consistent: bool,
    ) -> Result<Vec<u64>> {
        let (pk, _) = table::org(slug);
        let query = self
            .store
            .client()
            .query()
            .table_name(self.store.table())
            .key_condition_expression("pk = :p AND begins_with(sk, :m)")
            .expression_attribute_values(":p", s(pk))
            .expression_attribute_values(":m", s(MEMBER_PREFIX))
            .projection_expression("user_id")
            .consistent_read(consistent);
        let mut ids = Vec::new();
        let mut start = None;
        loop {
            let out = self.store.query_page(query.clone(), start).await?;
            ids.extend(
                out.items()
                    .iter()
                    .filter_map(|m| table::get_n::<u64>(m, "user_id")),
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

    /// The ids of every member of org `slug` (active or not), in no
    /// particular order: one `Query` on the table (partition `ORG#<slug>`,
    /// `begins_with(sk, "MEMBER#")`), paginated, projecting only `user_id`.
    /// Eventually consistent like the other lists; a membership is written
    /// with its user item in one transaction, so the two agree once settled.
    pub async fn org_member_ids(&self, slug: &str) -> Result<Vec<u64>> {
        let (pk, _) = table::org(slug);
        if pk.len() > 2048 {
            // No key this long was ever written; DynamoDB would refuse it.
            return Ok(Vec::new());
        }
        let members = self
            .store
            .query_all(
                self.store
                    .client()
                    .query()
                    .table_name(self.store.table())
                    .key_condition_expression("pk = :p AND begins_with(sk, :m)")
                    .expression_attribute_values(":p", s(pk))
                    .expression_attribute_values(":m", s(MEMBER_PREFIX))
                    .projection_expression("user_id")
                    .limit(QUERY_PAGE as i32),
            )
            .await?;
        Ok(members
            .iter()
            .filter_map(|m| table::get_n::<u64>(m, "user_id"))
            .collect())
    }

    /// Applies a change to a group: `next` (its name and externalId, when
    /// they change, moving the claims and the org's name with them) and
    /// members to add and remove, in one transaction when it fits
    /// ([`MEMBERS_PER_TRANSACTION`] members, a few less with a rename), else
    /// the group and the first members, then the rest in steps. O(k) writes
    /// for k members, whatever the group's size, and no read but of those
    /// members when one changed meanwhile. Users who already are (or are
    /// not) members are left as they are: a member added again keeps their
    /// role. Users deleted meanwhile are skipped.
    ///
    /// A failure part-way leaves the steps before it applied; the same
    /// change sent again finishes it (adds and removes are idempotent).
    /// `Conflict`: the group record changed since it was read; `Taken`: the
    /// new name or externalId is another group's.
    pub async fn patch(
        &self,
        current: &GroupRecord,
        next: Option<GroupRecord>,
        add: Vec<User>,
        remove: Vec<User>,
    ) -> Result<(GroupRecord, MemberChanges)> {
        let next = next.map(|n| next_record(current, n));
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
    /// ([`Groups::patch`] without a change to the group itself).
    pub async fn change_members(
        &self,
        group: &GroupRecord,
        add: Vec<User>,
        remove: Vec<User>,
    ) -> Result<MemberChanges> {
        Ok(self.patch(group, None, add, remove).await?.1)
    }

    /// The items that write `next` over `current` (at most [`GROUP_ITEMS`]).
    fn group_update_items(
        &self,
        tx: &mut Transaction,
        current: &GroupRecord,
        next: &GroupRecord,
    ) -> Result<()> {
        let claims = self.store.claims();
        tx.put(Slot::User, self.versioned_put(next, current.version)?);
        let (old, new) = (group_claims(current), group_claims(next));
        for (field, value) in &old {
            if !new
                .iter()
                .any(|(f, v)| f == field && same_group_claim(*f, v, value))
            {
                tx.delete(
                    Slot::Other,
                    claims.release_for_group(*field, value, current.id)?,
                );
            }
        }
        for (field, value) in &new {
            if !old
                .iter()
                .any(|(f, v)| f == field && same_group_claim(*f, v, value))
            {
                tx.put(
                    Slot::Claim(*field),
                    claims.take_for_group(*field, value, current.id)?,
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
            match self.store.commit(tx).await {
                Ok(()) => return Ok(changes),
                Err(StoreError::Conflict) if attempt < WRITE_ATTEMPTS => {
                    attempt += 1;
                    if let Some((current, _)) = head {
                        let now = self.get(current.id).await?;
                        if now.as_ref().map(|g| g.version) != Some(current.version) {
                            return Err(StoreError::Conflict);
                        }
                    }
                    // A member changed since it was read: read the chunk again.
                    let ids: Vec<u64> = chunk.iter().map(|(u, _)| u.id).collect();
                    let fresh = self.store.users().by_ids(&ids).await?;
                    chunk = chunk
                        .into_iter()
                        .filter_map(|(u, member)| fresh.get(&u.id).cloned().map(|f| (f, member)))
                        .collect();
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Deletes a group: marks it deleting and frees its name and externalId
    /// (one transaction), removes its members in steps, then removes the
    /// record and the id claim and leaves the org item as a tombstone (one
    /// transaction). Each step may be cut short and repeated.
    pub async fn delete(&self, group: &GroupRecord) -> Result<()> {
        let mut group = group.clone();
        if !group.deleting {
            let mut next = group.clone();
            next.deleting = true;
            next.version = group.version + 1;
            next.last_modified = now();
            let claims = self.store.claims();
            let mut tx = Transaction::default();
            tx.put(Slot::User, self.versioned_put(&next, group.version)?);
            for (field, value) in group_claims(&group) {
                tx.delete(
                    Slot::Other,
                    claims.release_for_group(field, &value, group.id)?,
                );
            }
            self.store.commit(tx).await?;
            group = next;
        }
        self.sweep_members(&group).await?;
        // The org's tenant tokens and domain claims go before its item does
        // (which lists them), so a delete cut short finds them again.
        self.store.tenants().release(&group.slug).await?;
        let mut tx = Transaction::default();
        let (pk, sk) = table::group(group.id);
        tx.delete(
            Slot::User,
            self.store.versioned_delete(pk, sk, group.version)?,
        );
        let (pk, sk) = table::org_by_id(group.id);
        tx.delete(Slot::Other, self.store.plain_delete(pk, sk)?);
        let (pk, sk) = table::org(&group.slug);
        let mut tombstone = key(pk, sk);
        tombstone.insert("org_id".into(), n(group.id));
        tombstone.insert("slug".into(), s(&group.slug));
        tombstone.insert("deleted".into(), AttributeValue::Bool(true));
        tx.put(
            Slot::Other,
            built(
                Put::builder()
                    .table_name(self.store.table())
                    .set_item(Some(tombstone))
                    .build(),
            )?,
        );
        self.store.commit(tx).await
    }

    /// Removes every member of `group`, a transaction per
    /// [`MEMBERS_PER_TRANSACTION`], until a strongly consistent read finds
    /// none. A member item whose user is gone (or no longer lists the
    /// membership) is deleted alone.
    async fn sweep_members(&self, group: &GroupRecord) -> Result<()> {
        loop {
            let ids = self
                .read_member_ids(&group.slug, 10 * MEMBERS_PER_TRANSACTION, true)
                .await?;
            if ids.is_empty() {
                return Ok(());
            }
            let users = self.store.users().by_ids(&ids).await?;
            let mut leave = Vec::new();
            let mut strays = Transaction::default();
            for id in &ids {
                match users.get(id) {
                    Some(u) if u.memberships.iter().any(|m| m.org_id == group.id) => {
                        leave.push(u.clone())
                    }
                    _ => {
                        let (pk, sk) = table::membership(&group.slug, *id);
                        strays.delete(Slot::Other, self.store.plain_delete(pk, sk)?);
                        if strays.len() == TRANSACTION_LIMIT {
                            self.store.commit(std::mem::take(&mut strays)).await?;
                        }
                    }
                }
            }
            if strays.len() > 0 {
                self.store.commit(strays).await?;
            }
            self.change_members(group, Vec::new(), leave).await?;
        }
    }

    /// The org item of `slug`, if the org exists (a deleted org's tombstone
    /// is not one).
    pub async fn org(&self, slug: &str) -> Result<Option<Org>> {
        let (pk, sk) = table::org(slug);
        Ok(self
            .store
            .get(key(pk, sk))
            .await?
            .as_ref()
            .and_then(Org::from_item))
    }

    /// Makes `user` a member of `org` with `role`, or gives a member that
    /// role (`usersctl org add-member`): the member item and the membership
    /// on the user item (versioned) in one transaction. A member given a new
    /// role keeps the date they joined.
    pub async fn add_member(&self, org: &Org, user: &User, role: &str) -> Result<User> {
        let (pk, sk) = table::membership(&org.slug, user.id);
        let mut updated = user.clone();
        updated.memberships.retain(|m| m.org_slug != org.slug);
        updated.memberships.push(Membership {
            org_slug: org.slug.clone(),
            org_id: org.id,
            role: role.to_string(),
            is_active: true,
        });
        updated.version = user.version + 1;
        let user_put = self.store.versioned_put(&updated, user.version)?;
        let member_update = built(
            Update::builder()
                .table_name(self.store.table())
                .set_key(Some(key(pk, sk)))
                .update_expression(
                    "SET user_id = :u, #role = :r, is_active = :a, \
                     joined_date = if_not_exists(joined_date, :j)",
                )
                .expression_attribute_names("#role", "role")
                .expression_attribute_values(":u", n(user.id))
                .expression_attribute_values(":r", s(role))
                .expression_attribute_values(":a", AttributeValue::Bool(true))
                .expression_attribute_values(":j", joined_now())
                .build(),
        )?;
        self.store
            .commit_items(vec![
                (TransactWriteItem::builder().put(user_put).build(), true),
                (
                    TransactWriteItem::builder().update(member_update).build(),
                    false,
                ),
            ])
            .await?;
        Ok(updated)
    }

    /// Every live org, by a pass over the whole table (a paginated `Scan`
    /// that reads only `sk = ORG` items back): for one-off maintenance such
    /// as `usersctl org adopt`, never for a request.
    pub async fn orgs_by_scan(&self) -> Result<Vec<Org>> {
        let mut orgs = Vec::new();
        let mut start = None;
        loop {
            let scan = self
                .store
                .client()
                .scan()
                .table_name(self.store.table())
                .filter_expression("sk = :org")
                .expression_attribute_values(":org", s("ORG"))
                .set_exclusive_start_key(start)
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send();
            let out = self
                .store
                .counted(self.store.within(Box::pin(scan)).await?)?;
            self.store.metrics().record_one(out.consumed_capacity());
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
    pub async fn adopt(&self, org: &Org, name: &str) -> Result<Option<GroupRecord>> {
        if self.get(org.id).await?.is_some() {
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
        let claims = self.store.claims();
        let mut tx = Transaction::default();
        tx.put(
            Slot::Other,
            put_if_absent(self.store.table(), group.to_item())?,
        );
        for (field, value) in group_claims(&group) {
            tx.put(
                Slot::Claim(field),
                claims.take_for_group(field, &value, org.id)?,
            );
        }
        if name != org.name {
            tx.push(Slot::Other, self.org_rename(&org.slug, name)?);
        }
        match self.store.commit(tx).await {
            Ok(()) => Ok(Some(group)),
            // Adopted meanwhile (by a second `usersctl org adopt`).
            Err(StoreError::Conflict) if self.get(org.id).await?.is_some() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Sets the name on the org item of `slug` (which must exist).
    fn org_rename(&self, slug: &str, name: &str) -> Result<TransactWriteItem> {
        let (pk, sk) = table::org(slug);
        Ok(TransactWriteItem::builder()
            .update(built(
                Update::builder()
                    .table_name(self.store.table())
                    .set_key(Some(key(pk, sk)))
                    .update_expression("SET #name = :n")
                    .condition_expression("attribute_exists(pk)")
                    .expression_attribute_names("#name", "name")
                    .expression_attribute_values(":n", s(name))
                    .build(),
            )?)
            .build())
    }

    /// The put of a group record that lands only on the version that was read.
    fn versioned_put(&self, group: &GroupRecord, expected_version: u64) -> Result<Put> {
        built(
            Put::builder()
                .table_name(self.store.table())
                .set_item(Some(group.to_item()))
                .condition_expression("#version = :v")
                .expression_attribute_names("#version", "version")
                .expression_attribute_values(":v", n(expected_version))
                .build(),
        )
    }
}

/// `next` as it is written over `current`: the same id, slug, creation and
/// deletion mark, the next version, modified now.
fn next_record(current: &GroupRecord, mut next: GroupRecord) -> GroupRecord {
    next.id = current.id;
    next.slug = current.slug.clone();
    next.created = current.created;
    next.deleting = current.deleting;
    next.version = current.version + 1;
    next.last_modified = now();
    next
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
