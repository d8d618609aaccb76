//! The admin API's reads of organizations and memberships (CVAT's
//! `/api/organizations` and `/api/memberships`): list and read one of each.
//!
//! Who sees what is `domain::orgs`: an admin everything; anyone else the
//! orgs they are an active member of, those orgs' active memberships (all of
//! them for an org's owners and maintainers), and without an org context
//! only their own active memberships. Anything else is answered as a record
//! that does not exist (`NotFound`, or `NoSuchOrg` for an org context), and
//! that is decided from the caller's own record before anything about the
//! target is looked at, so no answer tells an outsider which ids or slugs
//! are taken.
//!
//! What each read costs, in DynamoDB calls (auth included):
//! - an org by id, a membership the caller may not see: 1 (the target is
//!   read with the caller);
//! - a membership by id: 2 (the member item, for its date);
//! - a member's orgs: 2 (their org records, by key); an admin's: 2 (one
//!   query over the group records, which grows with the orgs, not the users);
//! - an org's memberships: 3 (the org with the caller, its member items, the
//!   page's users by key), or more for a filter, search or sort on `user`,
//!   which reads every member's user (a call per 100): grows with the org;
//! - a member's own memberships (no org context): 2;
//! - every membership (an admin without org context): one query per org.
//!
//! None of them is a pass over the directory's users.
use std::collections::HashMap;
use std::ops::Range;

use super::Failure;
use crate::auth::{self, Caller, Credentials};
use crate::domain::group::GroupRecord;
use crate::domain::orgs::{
    may_see_member, may_see_org, sees_inactive_members, split_membership_id, Member, Role,
};
use crate::domain::user::User;
use crate::domain::OrgContext;
use crate::store::{Store, StoreError, Wanted};

/// What an org list selects and in which order, as the API parsed it.
pub trait OrgSelection {
    fn matches(&self, org: &GroupRecord) -> bool;
    /// Sorts `orgs` in the list's order.
    fn sort(&self, orgs: &mut [GroupRecord]);
}

/// A membership as a list filters and sorts it: its member item, and its
/// user once read.
#[derive(Debug, Clone)]
pub struct MemberRow {
    pub member: Member,
    pub user: Option<User>,
}

/// What a membership list selects and in which order, as the API parsed it.
pub trait MemberSelection {
    /// Whether the row passes every filter. Looks at `row.user` only when
    /// [`MemberSelection::reads_users`] says so.
    fn matches(&self, row: &MemberRow) -> bool;
    fn sort(&self, rows: &mut [MemberRow]);
    /// Whether matching or sorting looks at the members' users (their
    /// usernames): then every candidate's user is read before filtering,
    /// else only the page's users, after it.
    fn reads_users(&self) -> bool;
}

/// One page of orgs, and how many matched in all.
#[derive(Debug)]
pub struct OrgListing {
    pub caller: Caller,
    pub orgs: Vec<GroupRecord>,
    pub total: usize,
}

/// One page of memberships with their users, and how many matched in all.
#[derive(Debug)]
pub struct MemberListing {
    pub caller: Caller,
    pub members: Vec<(Member, User)>,
    pub total: usize,
}

/// The org and membership reads over one store.
pub struct Orgs<'a> {
    store: &'a Store,
}

impl<'a> Orgs<'a> {
    pub fn new(store: &'a Store) -> Orgs<'a> {
        Orgs { store }
    }

    /// The page `window(total)` names of the orgs `query` selects among
    /// those the caller may see.
    pub async fn list<Q: OrgSelection, E>(
        &self,
        credentials: &Credentials,
        query: Result<&Q, E>,
        window: impl Fn(usize) -> Result<Range<usize>, E>,
    ) -> Result<OrgListing, Failure<E>> {
        let (caller, _) =
            auth::authenticate_with(self.store, credentials, Wanted::default()).await?;
        let query = query.map_err(Failure::Refused)?;
        let me = &caller.user;
        let mut orgs = if me.is_admin() {
            self.store.groups().all().await?
        } else {
            let ids: Vec<u64> = me
                .memberships
                .iter()
                .filter(|m| may_see_org(me, m.org_id))
                .map(|m| m.org_id)
                .collect();
            if ids.is_empty() {
                Vec::new()
            } else {
                self.store.groups().by_ids(&ids).await?
            }
        };
        orgs.retain(|o| query.matches(o));
        query.sort(&mut orgs);
        let total = orgs.len();
        let range = window(total).map_err(Failure::Refused)?;
        orgs.truncate(range.end);
        orgs.drain(..range.start.min(orgs.len()));
        Ok(OrgListing {
            caller,
            orgs,
            total,
        })
    }

    /// Org `id`, if the caller may see it: read with the caller, whoever
    /// asks, so an outsider's answer costs and says the same for an org that
    /// exists and one that does not.
    pub async fn get<E>(
        &self,
        credentials: &Credentials,
        id: Option<u64>,
    ) -> Result<(Caller, GroupRecord), Failure<E>> {
        let wanted = Wanted {
            groups: id.into_iter().collect(),
            ..Wanted::default()
        };
        let (caller, fetched) = auth::authenticate_with(self.store, credentials, wanted).await?;
        let id = id.ok_or(Failure::NotFound)?;
        if !may_see_org(&caller.user, id) {
            return Err(Failure::NotFound);
        }
        let org = fetched.group(id).cloned().ok_or(Failure::NotFound)?;
        Ok((caller, org))
    }

    /// The page `window(total)` names of the memberships `query` selects in
    /// its org context, among those the caller may see. An org the caller
    /// may not see is `NoSuchOrg`, exactly as one that does not exist.
    pub async fn members<Q: MemberSelection, E>(
        &self,
        credentials: &Credentials,
        query: Result<(&Q, &OrgContext), E>,
        window: impl Fn(usize) -> Result<Range<usize>, E>,
    ) -> Result<MemberListing, Failure<E>> {
        let mut wanted = Wanted::default();
        if let Ok((_, context)) = &query {
            wanted.org = context.named().cloned();
        }
        let (caller, fetched) = auth::authenticate_with(self.store, credentials, wanted).await?;
        let (query, context) = query.map_err(Failure::Refused)?;
        let me = &caller.user;
        let memberships = self.store.memberships();
        let candidates: Vec<Member> = match context {
            // `org=` empty: memberships outside any org, of which there are none.
            OrgContext::NoOrg => Vec::new(),
            OrgContext::Sandbox if me.is_admin() => {
                let mut all = Vec::new();
                for group in self.store.groups().all().await? {
                    all.extend(memberships.of_org(&group.slug, group.id).await?);
                }
                all
            }
            // CVAT's sandbox: a user's own active memberships.
            OrgContext::Sandbox => memberships
                .of_user(me)
                .await?
                .into_iter()
                .filter(|m| m.is_active && may_see_org(me, m.org_id))
                .collect(),
            OrgContext::Named(name) => {
                let org = fetched
                    .org()
                    .filter(|org| may_see_org(me, org.id))
                    .ok_or_else(|| Failure::NoSuchOrg(name.clone()))?;
                let inactive_too = sees_inactive_members(me, org.id);
                memberships
                    .of_org(&org.slug, org.id)
                    .await?
                    .into_iter()
                    .filter(|m| m.is_active || inactive_too)
                    .collect()
            }
        };
        let mut rows: Vec<MemberRow> = candidates
            .into_iter()
            .map(|member| MemberRow { member, user: None })
            .collect();
        if query.reads_users() {
            self.read_users(&mut rows, me).await?;
            rows.retain(|r| r.user.is_some());
        }
        rows.retain(|r| query.matches(r));
        query.sort(&mut rows);
        let total = rows.len();
        let range = window(total).map_err(Failure::Refused)?;
        rows.truncate(range.end);
        rows.drain(..range.start.min(rows.len()));
        self.read_users(&mut rows, me).await?;
        // A member item whose user is gone (never left by a write, which
        // removes both together) is not shown.
        let members = rows
            .into_iter()
            .filter_map(|r| r.user.map(|u| (r.member, u)))
            .collect();
        Ok(MemberListing {
            caller,
            members,
            total,
        })
    }

    /// Fills in the users of `rows` that have none yet: the caller from the
    /// auth read, the others by key (eventually consistent, like the list
    /// they came from), a call per 100.
    async fn read_users(&self, rows: &mut [MemberRow], me: &User) -> Result<(), StoreError> {
        let mut ids: Vec<u64> = rows
            .iter()
            .filter(|r| r.user.is_none() && r.member.user_id != me.id)
            .map(|r| r.member.user_id)
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let mut users: HashMap<u64, User> = if ids.is_empty() {
            HashMap::new()
        } else {
            self.store
                .users()
                .by_ids_in_order(&ids)
                .await?
                .into_iter()
                .map(|u| (u.id, u))
                .collect()
        };
        users.insert(me.id, me.clone());
        for row in rows.iter_mut().filter(|r| r.user.is_none()) {
            row.user = users.get(&row.member.user_id).cloned();
        }
        Ok(())
    }

    /// Membership `id`, if the caller may see it. Its user and org are read
    /// with the caller; whether the caller may see memberships of that org is
    /// decided from the caller alone, before either is looked at.
    pub async fn member<E>(
        &self,
        credentials: &Credentials,
        id: Option<u64>,
    ) -> Result<(Caller, Member, User), Failure<E>> {
        let target = id.and_then(split_membership_id);
        let wanted = match target {
            Some((org_id, user_id)) => Wanted {
                users: vec![user_id],
                groups: vec![org_id],
                ..Wanted::default()
            },
            None => Wanted::default(),
        };
        let (caller, fetched) = auth::authenticate_with(self.store, credentials, wanted).await?;
        let (org_id, user_id) = target.ok_or(Failure::NotFound)?;
        if !may_see_org(&caller.user, org_id) {
            return Err(Failure::NotFound);
        }
        let user = fetched.user(user_id).ok_or(Failure::NotFound)?;
        let held = user
            .memberships
            .iter()
            .find(|m| m.org_id == org_id)
            .ok_or(Failure::NotFound)?;
        let org = fetched.group(org_id).ok_or(Failure::NotFound)?;
        if !may_see_member(&caller.user, org_id, held.is_active) {
            return Err(Failure::NotFound);
        }
        // The member item holds when the membership began; the user item's
        // copy of the membership answers for one whose item is missing.
        let member = self
            .store
            .memberships()
            .get(&org.slug, org_id, user_id)
            .await?
            .unwrap_or_else(|| Member {
                org_id,
                user_id,
                role: Role::stored(&held.role),
                is_active: held.is_active,
                joined: None,
            });
        let user = user.clone();
        Ok((caller, member, user))
    }
}
