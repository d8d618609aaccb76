//! Provisioning groups (organisations): create, change (PATCH, PUT), delete
//! and get. A group's members are users; each operation reads the group and
//! the users its change names with the caller, in the same batch read, and
//! refuses unknown members before anything is written.
//!
//! Cost: a member change reads the group and the users it names with the
//! caller (one batch read), writes two items per changed member, then reads
//! the group once more (a delete may have raced it); nothing grows with the
//! group's size, except a `replace` of all members, which reads them.
use std::collections::HashMap;

use super::users::Precondition;
use super::{Failure, Identity};
use crate::domain::canonical_id;
use crate::domain::group::{GroupBody, GroupPatch, GroupRecord};
use crate::domain::user::User;
use crate::store::{Fetched, MemberChanges, Store, StoreError, Wanted, WRITE_ATTEMPTS};

/// Member ids read in the caller's batch read; more are read after it.
const MEMBERS_WITH_AUTH: usize = 90;

/// The group operations over one store.
pub struct Groups<'a> {
    store: &'a Store,
}

impl<'a> Groups<'a> {
    pub fn new(store: &'a Store) -> Groups<'a> {
        Groups { store }
    }

    /// Authenticates, reading what `wanted` names in the same read, and
    /// requires the provisioning permission; `write`: and a credential that
    /// allows writes.
    async fn provisioner<E>(
        &self,
        who: Identity<'_>,
        wanted: Wanted,
        write: bool,
    ) -> Result<Fetched, Failure<E>> {
        self.provisioner_for(who, wanted, write, false).await
    }

    /// [`Groups::provisioner`]; `create`: for a new group.
    async fn provisioner_for<E>(
        &self,
        who: Identity<'_>,
        wanted: Wanted,
        write: bool,
        create: bool,
    ) -> Result<Fetched, Failure<E>> {
        let (caller, fetched) = who.provisioner::<Failure<E>>(self.store, wanted).await?;
        if write && !caller.may_write() {
            return Err(Failure::ReadOnly);
        }
        // A tenant's own groups are `service::tenant_groups`, which the
        // SCIM Groups handlers and `/Bulk` call under a tenant base; a
        // tenant caller that reaches here finds no group and makes none.
        if caller.tenant.is_some() {
            return Err(if create {
                Failure::NotImplemented
            } else {
                Failure::NotFound
            });
        }
        Ok(fetched)
    }

    /// `GET`: the caller and the group in one batch read.
    pub async fn get<'w, E>(
        &self,
        who: impl Into<Identity<'w>>,
        id: Option<u64>,
    ) -> Result<GroupRecord, Failure<E>> {
        let wanted = Wanted {
            groups: id.into_iter().collect(),
            ..Wanted::default()
        };
        let fetched = self.provisioner(who.into(), wanted, false).await?;
        id.and_then(|id| fetched.group(id).cloned())
            .ok_or(Failure::NotFound)
    }

    /// `POST`: the group `input` describes, with its members, in one
    /// transaction (with up to 47 members; the rest follow in steps). The
    /// answer is the group and the members it made: nothing is read after
    /// the write, so once the group is made the create cannot fail.
    pub async fn create<'w, E>(
        &self,
        who: impl Into<Identity<'w>>,
        input: Result<GroupBody, E>,
    ) -> Result<(GroupRecord, MemberChanges), Failure<E>> {
        let (ids, bad) = match &input {
            Ok(GroupBody {
                members: Some(m), ..
            }) => parse_ids(m),
            _ => (Vec::new(), Vec::new()),
        };
        let mut wanted = Wanted::default();
        want_users(&mut wanted, &ids);
        let fetched = self.provisioner_for(who.into(), wanted, true, true).await?;
        let body = input.map_err(Failure::Refused)?;
        let (users, unknown) = users_named(self.store, &fetched, &ids).await?;
        let mut unknown: Vec<String> = unknown.iter().map(u64::to_string).collect();
        unknown.extend(bad);
        if !unknown.is_empty() {
            return Err(Failure::UnknownMembers(unknown));
        }
        let members: Vec<User> = ids.iter().filter_map(|id| users.get(id).cloned()).collect();
        self.store
            .groups()
            .create(&body.name, body.external_id.as_deref(), members)
            .await
            .map_err(|e| taken(e, &body.name, body.external_id.as_deref()))
    }

    /// `PATCH` and `PUT`: reads the group and the users the change names
    /// with the caller; refuses unknown members before anything is written;
    /// then writes the group's own change with the first members in one
    /// transaction, the rest in steps. Retries on a fresh read when the group
    /// changed meanwhile, unless `If-Match` pinned the version.
    pub async fn update<'w, E>(
        &self,
        who: impl Into<Identity<'w>>,
        id: Option<u64>,
        precondition: Precondition<'_>,
        input: Result<GroupPatch, E>,
    ) -> Result<GroupRecord, Failure<E>> {
        let (add_ids, bad_add) = match &input {
            Ok(p) => parse_ids(&p.members.add),
            Err(_) => (Vec::new(), Vec::new()),
        };
        let (remove_ids, _) = match &input {
            Ok(p) => parse_ids(&p.members.remove),
            Err(_) => (Vec::new(), Vec::new()),
        };
        let mut named: Vec<u64> = add_ids.clone();
        named.extend(remove_ids.iter().filter(|r| !add_ids.contains(r)));
        let mut wanted = Wanted {
            groups: id.into_iter().collect(),
            ..Wanted::default()
        };
        want_users(&mut wanted, &named);
        let fetched = self.provisioner(who.into(), wanted, true).await?;
        let id = id.ok_or(Failure::NotFound)?;
        let mut group = fetched.group(id).cloned().ok_or(Failure::NotFound)?;
        let patch = input.map_err(Failure::Refused)?;
        precondition.check(group.version)?;
        let (mut users, unknown) = users_named(self.store, &fetched, &named).await?;
        let mut unknown_adds: Vec<String> = unknown
            .iter()
            .filter(|u| add_ids.contains(u))
            .map(u64::to_string)
            .collect();
        unknown_adds.extend(bad_add);
        if !unknown_adds.is_empty() {
            return Err(Failure::UnknownMembers(unknown_adds));
        }
        let mut attempt = 1;
        loop {
            let next = next_record(&group, &patch);
            // Everyone else goes when the whole list is replaced: a read of the
            // members, the one member change that grows with the group.
            let remove: Vec<User> = if patch.members.clear {
                let current = self.store.groups().member_ids(&group, usize::MAX).await?;
                let gone: Vec<u64> = current
                    .into_iter()
                    .filter(|m| !add_ids.contains(m))
                    .collect();
                let unread: Vec<u64> = gone
                    .iter()
                    .copied()
                    .filter(|m| !users.contains_key(m))
                    .collect();
                let mut read = self.store.users().by_ids(&unread).await?;
                gone.iter()
                    .filter_map(|m| users.get(m).cloned().or_else(|| read.remove(m)))
                    .collect()
            } else {
                remove_ids
                    .iter()
                    .filter_map(|id| users.get(id).cloned())
                    .collect()
            };
            let add: Vec<User> = add_ids
                .iter()
                .filter_map(|id| users.get(id).cloned())
                .collect();
            let adding = !add.is_empty();
            match self.store.groups().patch(&group, next, add, remove).await {
                Ok((written, changes)) => {
                    if adding && !changes.added.is_empty() {
                        Box::pin(self.check_still_there(&written, &changes.added)).await?;
                    }
                    return Ok(written);
                }
                Err(StoreError::Conflict) if !precondition.pinned() && attempt < WRITE_ATTEMPTS => {
                    attempt += 1;
                    group = self
                        .store
                        .groups()
                        .get(id)
                        .await?
                        .filter(|g| !g.deleting)
                        .ok_or(Failure::NotFound)?;
                    users = self.store.users().by_ids(&named).await?;
                }
                Err(e) => {
                    let name = patch.name.as_deref().unwrap_or(&group.name);
                    let ext = patch
                        .external_id
                        .clone()
                        .unwrap_or_else(|| group.external_id.clone());
                    return Err(taken(e, name, ext.as_deref()));
                }
            }
        }
    }

    /// A delete of the group may have swept its members between our read and
    /// our write: then the members just added are removed again, and the
    /// answer is the not-found the delete would have given. One read.
    async fn check_still_there<E>(
        &self,
        group: &GroupRecord,
        added: &[u64],
    ) -> Result<(), Failure<E>> {
        let alive = self
            .store
            .groups()
            .get(group.id)
            .await?
            .is_some_and(|g| !g.deleting);
        if alive {
            return Ok(());
        }
        let users = self.store.users().by_ids(added).await?;
        self.store
            .groups()
            .change_members(group, Vec::new(), users.into_values().collect())
            .await?;
        Err(Failure::NotFound)
    }

    /// `DELETE`: the org and every membership go, in steps for a large group.
    /// A delete cut short (a timeout, a 503) is finished by the next delete
    /// of the same id, whatever `If-Match` says then.
    pub async fn delete<'w, E>(
        &self,
        who: impl Into<Identity<'w>>,
        id: Option<u64>,
        precondition: Precondition<'_>,
    ) -> Result<(), Failure<E>> {
        let wanted = Wanted {
            groups: id.into_iter().collect(),
            ..Wanted::default()
        };
        let fetched = self.provisioner(who.into(), wanted, true).await?;
        let id = id.ok_or(Failure::NotFound)?;
        let group = fetched.group_record(id).cloned().ok_or(Failure::NotFound)?;
        if !group.deleting {
            precondition.check(group.version)?;
        }
        Ok(self.store.groups().delete(&group).await?)
    }
}

/// The group's record after a patch, when its own attributes change.
fn next_record(group: &GroupRecord, patch: &GroupPatch) -> Option<GroupRecord> {
    let mut next = group.clone();
    if let Some(name) = &patch.name {
        next.name = name.clone();
    }
    if let Some(ext) = &patch.external_id {
        next.external_id = ext.clone();
    }
    (next.name != group.name || next.external_id != group.external_id).then_some(next)
}

/// A group write's store failure: a claim held by another group names the
/// attribute (and the value) that collided; a race lost every time is
/// [`Failure::Changed`].
fn taken<E>(err: StoreError, name: &str, external_id: Option<&str>) -> Failure<E> {
    match err {
        StoreError::Taken(field) => Failure::GroupTaken {
            field,
            name: name.to_string(),
            external_id: external_id.map(str::to_string),
        },
        StoreError::Conflict => Failure::Changed,
        other => other.into(),
    }
}

/// User ids as a client sent them: canonical decimals, and the rest.
pub fn parse_ids(raw: &[String]) -> (Vec<u64>, Vec<String>) {
    let mut ids = Vec::new();
    let mut bad = Vec::new();
    for r in raw {
        match canonical_id(r) {
            Some(id) => {
                if !ids.contains(&id) {
                    ids.push(id)
                }
            }
            None => bad.push(r.clone()),
        }
    }
    (ids, bad)
}

/// Wanted for the users a request names (in the auth read when few).
pub fn want_users(wanted: &mut Wanted, ids: &[u64]) {
    if ids.len() <= MEMBERS_WITH_AUTH {
        wanted.users.extend(ids.iter().copied());
    }
}

/// The users `ids` names: from the caller's batch read when they were in it,
/// else read now. Ids that name no user come back in the second list.
pub async fn users_named(
    store: &Store,
    fetched: &Fetched,
    ids: &[u64],
) -> Result<(HashMap<u64, User>, Vec<u64>), StoreError> {
    let mut found: HashMap<u64, User> = ids
        .iter()
        .filter_map(|id| fetched.user(*id).map(|u| (*id, u.clone())))
        .collect();
    let missing: Vec<u64> = ids
        .iter()
        .copied()
        .filter(|id| !found.contains_key(id))
        .collect();
    if !missing.is_empty() && ids.len() > MEMBERS_WITH_AUTH {
        found.extend(store.users().by_ids(&missing).await?);
    }
    let unknown = ids
        .iter()
        .copied()
        .filter(|id| !found.contains_key(id))
        .collect();
    Ok((found, unknown))
}
