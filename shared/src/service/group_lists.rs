//! Listing groups for SCIM, at the global base (the orgs) and under a
//! tenant base (the tenant's own groups): the caller's batch read, the plan
//! of what to read, the reads, the filter, the order, the page and the
//! members it shows, in one operation. The API hands over its filter and
//! sort as domain terms ([`crate::domain::listing`]) and renders the page.
//!
//! At the global base a filter that pins groups down is answered by key
//! with the auth read and one more read: `id eq` (the record, with auth),
//! `displayName eq` / `externalId eq` (the claim with auth, then the
//! record), `members[value eq "u"]` (the user with auth, then their groups);
//! otherwise one query over the group records (not the users). The members
//! a page shows are read per group, at most [`MAX_LISTED_MEMBERS`] for the
//! page. Under a tenant base: one query of the tenant's groups, which hold
//! their members.
use std::collections::HashMap;

use super::groups::{users_named, want_users};
use super::tenant_groups::TenantGroups;
use super::{Failure, Identity};
use crate::domain::canonical_id;
use crate::domain::group::{GroupRecord, MAX_LISTED_MEMBERS};
use crate::domain::listing::{GroupFilter, GroupKey, Order};
use crate::domain::tenant_group::TenantGroup;
use crate::domain::user::User;
use crate::store::{Fetched, Store, StoreError, UniqueField, Wanted};

/// A list or search of groups, as the API parsed it.
pub struct GroupList<'a> {
    pub filter: Option<&'a dyn GroupFilter>,
    /// The order, unless it is the id order groups are read in anyway.
    pub sort: Option<&'a dyn Order<GroupRecord>>,
    /// The 1-based index of the page's first group.
    pub start: usize,
    pub count: usize,
    /// Whether the page shows the groups' members.
    pub members: bool,
}

/// A group as a page shows it: the record, and its member ids when shown.
pub struct ListedGroup {
    pub record: GroupRecord,
    pub members: Option<Vec<u64>>,
}

/// The groups of a page, or that they hold more members than one response
/// lists ([`MAX_LISTED_MEMBERS`]).
pub enum Shown {
    Groups(Vec<ListedGroup>),
    TooManyMembers,
}

/// One page of a groups list.
pub struct GroupPage {
    pub start: usize,
    /// How many groups match in all.
    pub total: usize,
    pub shown: Shown,
}

/// What a global groups list reads, planned before the auth read: the
/// group, claim or users its filter names.
pub(super) struct GroupPlan {
    key: Option<GroupKey>,
    member_ids: Vec<u64>,
}

impl GroupPlan {
    /// The plan of `list`, and what it adds to the auth read.
    pub(super) fn new(list: &GroupList<'_>, wanted: &mut Wanted) -> GroupPlan {
        let key = list.filter.and_then(|f| f.key());
        let member_ids = list.filter.map(|f| f.member_ids()).unwrap_or_default();
        want_users(wanted, &member_ids);
        match &key {
            Some(GroupKey::Id(v)) => wanted.groups.extend(canonical_id(v)),
            Some(GroupKey::Name(v)) => wanted.claims.push((UniqueField::GroupName, v.clone())),
            Some(GroupKey::ExternalId(v)) => wanted
                .claims
                .push((UniqueField::GroupExternalId, v.clone())),
            _ => {}
        }
        GroupPlan { key, member_ids }
    }
}

/// The group list operations over one store.
pub struct GroupLists<'a> {
    store: &'a Store,
}

impl<'a> GroupLists<'a> {
    pub fn new(store: &'a Store) -> GroupLists<'a> {
        GroupLists { store }
    }

    /// The page `list` asks for; a query error is answered after
    /// authentication.
    pub async fn list<E>(
        &self,
        who: Identity<'_>,
        list: Result<GroupList<'_>, E>,
    ) -> Result<GroupPage, Failure<E>> {
        if let Identity::Tenant { slug, .. } = who {
            let groups = TenantGroups::new(self.store);
            let (all, _) = groups.list::<E>(who, slug, Wanted::default()).await?;
            let list = list.map_err(Failure::Refused)?;
            let matching = tenant_matching(&all, &list);
            let shown = matching
                .iter()
                .copied()
                .skip(list.start - 1)
                .take(list.count);
            return Ok(GroupPage {
                start: list.start,
                total: matching.len(),
                shown: tenant_shown(shown, list.members),
            });
        }
        let mut wanted = Wanted::default();
        let planned = list.map(|l| {
            let plan = GroupPlan::new(&l, &mut wanted);
            (l, plan)
        });
        let (_, fetched) = who.provisioner::<Failure<E>>(self.store, wanted).await?;
        let (list, plan) = planned.map_err(Failure::Refused)?;
        let page = async {
            let matching = self.matching(&list, &plan, &fetched).await?;
            let shown: Vec<&GroupRecord> = matching
                .iter()
                .skip(list.start - 1)
                .take(list.count)
                .collect();
            Ok(GroupPage {
                start: list.start,
                total: matching.len(),
                shown: self.shown(&shown, list.members).await?,
            })
        };
        page.await.map_err(Failure::Store)
    }

    /// Every global group `list` matches, in id order or the order it asks
    /// for.
    pub(super) async fn matching(
        &self,
        list: &GroupList<'_>,
        plan: &GroupPlan,
        fetched: &Fetched,
    ) -> Result<Vec<GroupRecord>, StoreError> {
        let (members_of, _) = users_named(self.store, fetched, &plan.member_ids).await?;
        let candidates: Vec<GroupRecord> = match &plan.key {
            Some(GroupKey::Id(v)) => canonical_id(v)
                .and_then(|id| fetched.group(id).cloned())
                .into_iter()
                .collect(),
            Some(key @ (GroupKey::Name(v) | GroupKey::ExternalId(v))) => {
                let field = if matches!(key, GroupKey::Name(_)) {
                    UniqueField::GroupName
                } else {
                    UniqueField::GroupExternalId
                };
                match fetched.claim_owner(field, v) {
                    Some(owner) => self.store.groups().by_ids(&[owner]).await?,
                    None => Vec::new(),
                }
            }
            Some(GroupKey::Member(v)) => match canonical_id(v).and_then(|id| members_of.get(&id)) {
                Some(user) => {
                    let ids: Vec<u64> = user.memberships.iter().map(|m| m.org_id).collect();
                    self.store.groups().by_ids(&ids).await?
                }
                None => Vec::new(),
            },
            None => self.store.groups().all().await?,
        };
        let mut matching: Vec<GroupRecord> = candidates
            .into_iter()
            .filter(|g| {
                list.filter
                    .is_none_or(|f| f.matches(g, &members(&members_of, g)))
            })
            .collect();
        if let Some(sort) = list.sort {
            sort.sort(&mut matching);
        }
        Ok(matching)
    }

    /// The global groups of a page with their members read when shown, at
    /// most [`MAX_LISTED_MEMBERS`] for the whole page.
    pub(super) async fn shown(
        &self,
        groups: &[&GroupRecord],
        with_members: bool,
    ) -> Result<Shown, StoreError> {
        let mut page = Vec::new();
        // What the page's groups may still list, all together.
        let mut room = MAX_LISTED_MEMBERS;
        for g in groups {
            let members = if with_members {
                let ids = self.store.groups().member_ids(g, room).await?;
                if ids.len() > room {
                    return Ok(Shown::TooManyMembers);
                }
                room -= ids.len();
                Some(ids)
            } else {
                None
            };
            page.push(ListedGroup {
                record: (*g).clone(),
                members,
            });
        }
        Ok(Shown::Groups(page))
    }
}

/// The members of `group` among the users a filter names, as their own
/// records say.
fn members(named: &HashMap<u64, User>, group: &GroupRecord) -> Vec<u64> {
    named
        .values()
        .filter(|u| u.memberships.iter().any(|m| m.org_id == group.id))
        .map(|u| u.id)
        .collect()
}

/// The tenant groups of `all` that the list's filter matches, in its order
/// (id order unless it is sorted).
pub(super) fn tenant_matching<'g>(
    all: &'g [TenantGroup],
    list: &GroupList<'_>,
) -> Vec<&'g TenantGroup> {
    let named = list.filter.map(|f| f.member_ids()).unwrap_or_default();
    let mut matching: Vec<&TenantGroup> = all
        .iter()
        .filter(|g| {
            list.filter.is_none_or(|f| {
                let members: Vec<u64> = named.iter().copied().filter(|m| g.has(*m)).collect();
                f.matches(&g.record, &members)
            })
        })
        .collect();
    if let Some(sort) = list.sort {
        let mut records: Vec<GroupRecord> = matching.iter().map(|g| g.record.clone()).collect();
        sort.sort(&mut records);
        let order: Vec<u64> = records.iter().map(|g| g.id).collect();
        matching.sort_by_key(|g| order.iter().position(|id| *id == g.record.id));
    }
    matching
}

/// Tenant groups as a page shows them, with their members (on the group's
/// record) while the response has room for them.
pub(super) fn tenant_shown<'g>(
    shown: impl Iterator<Item = &'g TenantGroup>,
    with_members: bool,
) -> Shown {
    let mut room = MAX_LISTED_MEMBERS;
    let mut page = Vec::new();
    for g in shown {
        let members = if with_members {
            if g.members.len() > room {
                return Shown::TooManyMembers;
            }
            room -= g.members.len();
            Some(g.member_ids())
        } else {
            None
        };
        page.push(ListedGroup {
            record: g.record.clone(),
            members,
        });
    }
    Shown::Groups(page)
}
