//! A search over every resource type (SCIM's root `/.search`): Users then
//! Groups, paged together as one list. The caller is authenticated once,
//! with what both types' filters name in the same batch read; each type is
//! then read as its own list reads it ([`super::user_lists`],
//! [`super::group_lists`]), for the part of the page it fills.
use super::group_lists::{tenant_matching, tenant_shown, GroupList, GroupLists, GroupPlan, Shown};
use super::user_lists::{at_tenant_base, UserList, UserLists, UserPlan};
use super::{Failure, Identity};
use crate::domain::group::GroupRecord;
use crate::domain::profile::Profile;
use crate::domain::user::User;
use crate::store::{Store, StoreError, Wanted};

/// A search as the API parsed it: each type's list (`None`: its filter or
/// order cannot apply to it, so it matches nothing) and the window.
pub struct Search<'a> {
    pub users: Option<UserList<'a>>,
    pub groups: Option<GroupList<'a>>,
    /// How many results come before the page (`startIndex - 1`).
    pub skip: usize,
    pub count: usize,
}

/// A page of a search: its users, then its groups.
pub struct SearchPage {
    /// Users and groups matching in all.
    pub total: usize,
    pub users: Vec<User>,
    pub groups: Shown,
}

/// The page `search` asks for; a query error is answered after
/// authentication. Costs what the two lists cost for their parts of the
/// window, with one authentication.
pub async fn search<E>(
    store: &Store,
    profile: Profile,
    who: Identity<'_>,
    search: Result<Search<'_>, E>,
) -> Result<SearchPage, Failure<E>> {
    let tenant_base = at_tenant_base(&who);
    let mut wanted = Wanted::default();
    let planned = search.map(|s| {
        let users = s
            .users
            .as_ref()
            .map(|l| UserPlan::new(l, tenant_base, &mut wanted));
        // The global groups' plan; a tenant's groups are one query of them.
        let groups = s
            .groups
            .as_ref()
            .filter(|_| !tenant_base)
            .map(|l| GroupPlan::new(l, &mut wanted));
        (s, users, groups)
    });
    let (provisioner, fetched) = who.provisioner::<Failure<E>>(store, wanted).await?;
    let (search, user_plan, group_plan) = planned.map_err(Failure::Refused)?;
    let tenant = provisioner.tenant.as_ref();
    let page = async {
        let (skip, count) = (search.skip, search.count);
        let (users_total, users) = match (&search.users, &user_plan) {
            (Some(list), Some(plan)) => {
                let w = UserLists::new(store, profile)
                    .window(list, plan, &fetched, tenant, skip, count)
                    .await?;
                (w.total, w.users)
            }
            _ => (0, Vec::new()),
        };
        // The page continues into the groups where the users end.
        let first_group = skip.saturating_sub(users_total);
        let room = count - users.len();
        let (groups_total, groups) = match (&search.groups, &group_plan, tenant) {
            // Under a tenant base: the tenant's own groups, one query of them.
            (Some(list), _, Some(tenant)) => {
                let all = store.tenant_groups().list(&tenant.slug).await?;
                let matching = tenant_matching(&all, list);
                let shown = matching.iter().copied().skip(first_group).take(room);
                (matching.len(), tenant_shown(shown, list.members))
            }
            (Some(list), Some(plan), None) => {
                let lists = GroupLists::new(store);
                let matching = lists.matching(list, plan, &fetched).await?;
                let shown: Vec<&GroupRecord> =
                    matching.iter().skip(first_group).take(room).collect();
                (matching.len(), lists.shown(&shown, list.members).await?)
            }
            _ => (0, Shown::Groups(Vec::new())),
        };
        Ok::<_, StoreError>(SearchPage {
            total: users_total + groups_total,
            users,
            groups,
        })
    };
    page.await.map_err(Failure::Store)
}
