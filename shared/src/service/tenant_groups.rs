//! Provisioning a tenant's own groups under its SCIM base: create, change
//! (PATCH, PUT), delete, get and list, and the roles they give. A group's
//! members must be users the tenant owns; any other id (another tenant's
//! user, one nobody owns, an unknown one) is refused as an unknown id is,
//! before anything is written.
//!
//! Cost of a member change: the caller's batch read (with the org item, the
//! group and the users the change names), then, only when the group is
//! mapped to a role (before or after the change), one query of the tenant's
//! groups (every member's role is computed from them), then one transaction:
//! the group record, and for each changed member of a mapped group its user
//! item and, when its role moves, its member item. A member change of an
//! unmapped group writes the group record alone.
use std::collections::HashMap;

use super::groups::{parse_ids, users_named, want_users};
use super::users::Precondition;
use super::{Failure, Identity};
use crate::domain::group::{GroupBody, GroupPatch, GroupRecord};
use crate::domain::tenant::Tenant;
use crate::domain::tenant_group::{TenantGroup, MAX_MEMBERS};
use crate::domain::user::{now, User};
use crate::domain::Provisioner;
use crate::store::{
    Fetched, GroupWrite, RoleWrite, Store, StoreError, UniqueField, Wanted, WRITE_ATTEMPTS,
};

/// The tenant group operations over one store.
pub struct TenantGroups<'a> {
    store: &'a Store,
}

/// What a tenant's request reads first: the caller, the tenant, and what
/// `wanted` names.
struct Scope {
    caller: Provisioner,
    tenant: Tenant,
    fetched: Fetched,
}

impl<'a> TenantGroups<'a> {
    pub fn new(store: &'a Store) -> TenantGroups<'a> {
        TenantGroups { store }
    }

    /// Authenticates under the base of `slug`, reading what `wanted` names
    /// (and group `id` of the tenant) in the same batch read.
    async fn scope<E>(
        &self,
        who: Identity<'_>,
        slug: &str,
        id: Option<u64>,
        mut wanted: Wanted,
        write: bool,
    ) -> Result<Scope, Failure<E>> {
        wanted
            .tenant_groups
            .extend(id.map(|id| (slug.to_string(), id)));
        let (caller, fetched) = who.provisioner::<Failure<E>>(self.store, wanted).await?;
        if write && !caller.may_write() {
            return Err(Failure::ReadOnly);
        }
        let Some(tenant) = caller.tenant.clone() else {
            return Err(Failure::NotFound);
        };
        Ok(Scope {
            caller,
            tenant,
            fetched,
        })
    }

    /// `GET`: the caller and the group in one batch read.
    pub async fn get<E>(
        &self,
        who: Identity<'_>,
        slug: &str,
        id: Option<u64>,
    ) -> Result<TenantGroup, Failure<E>> {
        let scope = self.scope(who, slug, id, Wanted::default(), false).await?;
        id.and_then(|id| scope.fetched.tenant_group(id).cloned())
            .ok_or(Failure::NotFound)
    }

    /// Every group of the tenant, and the caller's batch read (with what
    /// `wanted` names): the read, then one query of the tenant's groups.
    pub async fn list<E>(
        &self,
        who: Identity<'_>,
        slug: &str,
        wanted: Wanted,
    ) -> Result<(Vec<TenantGroup>, Fetched), Failure<E>> {
        let scope = self.scope(who, slug, None, wanted, false).await?;
        let groups = self.store.tenant_groups().list(&scope.tenant.slug).await?;
        Ok((groups, scope.fetched))
    }

    /// `POST`: the group with its members, and their roles when its name is
    /// mapped, in one transaction.
    pub async fn create<E>(
        &self,
        who: Identity<'_>,
        slug: &str,
        input: Result<GroupBody, E>,
    ) -> Result<TenantGroup, Failure<E>> {
        let (ids, bad) = match &input {
            Ok(GroupBody {
                members: Some(m), ..
            }) => parse_ids(m),
            _ => (Vec::new(), Vec::new()),
        };
        let mut wanted = Wanted::default();
        want_users(&mut wanted, &ids);
        let scope = self.scope(who, slug, None, wanted, true).await?;
        let body = input.map_err(Failure::Refused)?;
        check_size(ids.len())?;
        let users = self.members(&scope, &ids, &ids, bad).await?;
        let at = now();
        let group = TenantGroup {
            record: GroupRecord {
                id: self.store.tenant_groups().next_id().await?,
                slug: scope.tenant.slug.clone(),
                name: body.name.clone(),
                external_id: body.external_id.clone(),
                created: at,
                last_modified: at,
                version: 1,
                deleting: false,
            },
            members: ids.iter().copied().collect(),
        };
        let roles = self
            .roles(&scope.tenant, None, Some(&group), &users)
            .await?;
        self.store
            .tenant_groups()
            .commit(
                &scope.tenant.slug,
                scope.tenant.org_id,
                GroupWrite::Create(&group),
                roles,
            )
            .await
            .map_err(|e| taken(e, &group))?;
        Ok(group)
    }

    /// `PATCH` and `PUT`: the group's change and the roles it moves, in one
    /// transaction; retried on a fresh read when the group or a member
    /// changed meanwhile, unless `If-Match` pinned the version.
    pub async fn update<E>(
        &self,
        who: Identity<'_>,
        slug: &str,
        id: Option<u64>,
        precondition: Precondition<'_>,
        input: Result<GroupPatch, E>,
    ) -> Result<TenantGroup, Failure<E>> {
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
        let mut wanted = Wanted::default();
        want_users(&mut wanted, &named);
        let scope = self.scope(who, slug, id, wanted, true).await?;
        let id = id.ok_or(Failure::NotFound)?;
        let mut group = scope
            .fetched
            .tenant_group(id)
            .cloned()
            .ok_or(Failure::NotFound)?;
        let patch = input.map_err(Failure::Refused)?;
        precondition.check(group.record.version)?;
        check_size(
            next_group(&group, &patch, &add_ids, &remove_ids)
                .members
                .len(),
        )?;
        let mut users = self.members(&scope, &named, &add_ids, bad_add).await?;
        let store = self.store.tenant_groups();
        let tenant = &scope.tenant;
        let mut attempt = 1;
        loop {
            let next = next_group(&group, &patch, &add_ids, &remove_ids);
            check_size(next.members.len())?;
            if next.members == group.members
                && next.record.name == group.record.name
                && next.record.external_id == group.record.external_id
            {
                self.settle_roles(tenant, &group, &users).await?;
                return Ok(group);
            }
            let roles = self
                .roles(tenant, Some(&group), Some(&next), &users)
                .await?;
            let write = GroupWrite::Update {
                current: &group,
                next: &next,
            };
            match store
                .commit(&tenant.slug, tenant.org_id, write, roles)
                .await
            {
                Ok(()) => return Ok(next),
                Err(StoreError::Conflict) if !precondition.pinned() && attempt < WRITE_ATTEMPTS => {
                    attempt += 1;
                    group = store
                        .get(&tenant.slug, id)
                        .await?
                        .ok_or(Failure::NotFound)?;
                    users = self.store.users().by_ids(&named).await?;
                }
                Err(e) => return Err(taken(e, &next)),
            }
        }
    }

    /// `DELETE`: the group, its name, and the roles it gave, in one
    /// transaction.
    pub async fn delete<E>(
        &self,
        who: Identity<'_>,
        slug: &str,
        id: Option<u64>,
        precondition: Precondition<'_>,
    ) -> Result<(), Failure<E>> {
        let scope = self.scope(who, slug, id, Wanted::default(), true).await?;
        let id = id.ok_or(Failure::NotFound)?;
        let mut group = scope
            .fetched
            .tenant_group(id)
            .cloned()
            .ok_or(Failure::NotFound)?;
        precondition.check(group.record.version)?;
        let store = self.store.tenant_groups();
        let tenant = &scope.tenant;
        let mut attempt = 1;
        loop {
            let roles = self
                .roles(tenant, Some(&group), None, &HashMap::new())
                .await?;
            match store
                .commit(
                    &tenant.slug,
                    tenant.org_id,
                    GroupWrite::Delete(&group),
                    roles,
                )
                .await
            {
                Ok(()) => return Ok(()),
                Err(StoreError::Conflict) if !precondition.pinned() && attempt < WRITE_ATTEMPTS => {
                    attempt += 1;
                    group = store
                        .get(&tenant.slug, id)
                        .await?
                        .ok_or(Failure::NotFound)?;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// A change of a mapped group sent again once it is in place (an
    /// identity provider resends what was answered 503): the users it names
    /// whose role a step cut short left behind get the role the groups give
    /// them. One query of the tenant's groups, and a transaction per 50
    /// users whose role moves; nothing when the group is not mapped.
    async fn settle_roles(
        &self,
        tenant: &Tenant,
        group: &TenantGroup,
        users: &HashMap<u64, User>,
    ) -> Result<(), StoreError> {
        if users.is_empty() || tenant.roles.role_of(&group.record.name).is_none() {
            return Ok(());
        }
        let store = self.store.tenant_groups();
        let groups = store.list(&tenant.slug).await?;
        let roles: Vec<RoleWrite> = users
            .values()
            .filter_map(|user| {
                let role = tenant.roles.role(user.id, &groups, tenant.default_role);
                let current = user
                    .memberships
                    .iter()
                    .find(|m| m.org_id == tenant.org_id)?;
                (current.role != role.name()).then(|| RoleWrite {
                    user: user.clone(),
                    role,
                })
            })
            .collect();
        store.set_roles(&tenant.slug, tenant.org_id, roles).await
    }

    /// The users `ids` names; `adds` (and `bad`, ids that are no ids) must
    /// be users the tenant owns, else the answer is the one an unknown id
    /// gets, whoever the id belongs to.
    async fn members<E>(
        &self,
        scope: &Scope,
        ids: &[u64],
        adds: &[u64],
        bad: Vec<String>,
    ) -> Result<HashMap<u64, User>, Failure<E>> {
        let (users, _) = users_named(self.store, &scope.fetched, ids).await?;
        let users: HashMap<u64, User> = users
            .into_iter()
            .filter(|(_, u)| scope.caller.reaches(u) && scope.tenant.owns(u))
            .collect();
        let mut unknown: Vec<String> = adds
            .iter()
            .filter(|id| !users.contains_key(id))
            .map(u64::to_string)
            .collect();
        unknown.extend(bad);
        if unknown.is_empty() {
            Ok(users)
        } else {
            Err(Failure::UnknownMembers(unknown))
        }
    }

    /// The role writes a change from `before` to `after` causes: none when
    /// neither is mapped; else each user whose membership in a mapped group
    /// changes (every member, when the mapping the name gives changes),
    /// with the role the tenant's groups give them after the change (one
    /// query of the tenant's groups).
    async fn roles(
        &self,
        tenant: &Tenant,
        before: Option<&TenantGroup>,
        after: Option<&TenantGroup>,
        users: &HashMap<u64, User>,
    ) -> Result<Vec<RoleWrite>, StoreError> {
        let map = &tenant.roles;
        let role_of = |g: Option<&TenantGroup>| g.and_then(|g| map.role_of(&g.record.name));
        let (was, will) = (role_of(before), role_of(after));
        if was.is_none() && will.is_none() {
            return Ok(Vec::new());
        }
        let Some(either) = after.or(before) else {
            return Ok(Vec::new());
        };
        let empty = TenantGroup {
            record: either.record.clone(),
            members: Default::default(),
        };
        let (b, a) = (before.unwrap_or(&empty), after.unwrap_or(&empty));
        let affected: Vec<u64> = if was == will {
            b.members
                .symmetric_difference(&a.members)
                .copied()
                .collect()
        } else {
            b.members.union(&a.members).copied().collect()
        };
        if affected.is_empty() {
            return Ok(Vec::new());
        }
        let id = a.record.id;
        let mut groups: Vec<TenantGroup> = self
            .store
            .tenant_groups()
            .list(&tenant.slug)
            .await?
            .into_iter()
            .filter(|g| g.record.id != id)
            .collect();
        groups.extend(after.cloned());
        // A rename (or a delete) moves every member: those the request did
        // not name are read now.
        let unread: Vec<u64> = affected
            .iter()
            .copied()
            .filter(|u| !users.contains_key(u))
            .collect();
        let read = self.store.users().by_ids(&unread).await?;
        Ok(affected
            .iter()
            .filter_map(|u| users.get(u).or_else(|| read.get(u)))
            .map(|user| RoleWrite {
                user: user.clone(),
                role: map.role(user.id, &groups, tenant.default_role),
            })
            .collect())
    }
}

/// Refuses a group of more than [`MAX_MEMBERS`] members, before anything
/// is read or written.
fn check_size<E>(members: usize) -> Result<(), Failure<E>> {
    if members > MAX_MEMBERS {
        Err(Failure::TooManyMembers { limit: MAX_MEMBERS })
    } else {
        Ok(())
    }
}

/// The group after `patch`: its names, and its members (exactly `add` when
/// the patch replaces them all), at the next version.
fn next_group(group: &TenantGroup, patch: &GroupPatch, add: &[u64], remove: &[u64]) -> TenantGroup {
    let mut next = group.clone();
    if let Some(name) = &patch.name {
        next.record.name = name.clone();
    }
    if let Some(ext) = &patch.external_id {
        next.record.external_id = ext.clone();
    }
    if patch.members.clear {
        next.members = add.iter().copied().collect();
    } else {
        next.members.extend(add.iter().copied());
        for r in remove {
            next.members.remove(r);
        }
    }
    next.record.version = group.record.version + 1;
    next.record.last_modified = now();
    next
}

/// A tenant group write's store failure: a taken name names it; a race lost
/// every time is [`Failure::Changed`].
fn taken<E>(err: StoreError, group: &TenantGroup) -> Failure<E> {
    match err {
        StoreError::Taken(UniqueField::GroupName) => Failure::GroupTaken {
            field: UniqueField::GroupName,
            name: group.record.name.clone(),
            external_id: group.record.external_id.clone(),
        },
        StoreError::Conflict => Failure::Changed,
        other => other.into(),
    }
}
