//! Listing users for SCIM: the caller's batch read, the plan of what to
//! read, the reads, the filter, the order and the page, in one operation.
//! The API hands over its filter and sort as domain terms
//! ([`crate::domain::listing`]) and renders the page this answers.
//!
//! How a list reads: by key when the filter pins its users down (≤ 2 round
//! trips with the auth read, also for an `or` of pins); what changed in a
//! span of time from the index of changes; a cursor page with one GSI1
//! query that starts after the cursor; an unfiltered index page with one
//! query reading up to the page; else (and whenever a list is sorted) one
//! pass over GSI1. Under a tenant base, only the users the org owns, from
//! its own partition of the tenant index.
use std::collections::BTreeSet;

use chrono::{DateTime, Utc};

use super::{Failure, Identity};
use crate::domain::listing::{Order, Paging, UserFilter};
use crate::domain::profile::Profile;
use crate::domain::query::{ClaimKeys, ReadPlan};
use crate::domain::tenant::Tenant;
use crate::domain::user::User;
use crate::store::{Change, Fetched, Store, StoreError, UniqueField, Wanted};

/// A list or search of users, as the API parsed it.
pub struct UserList<'a> {
    pub filter: Option<&'a dyn UserFilter>,
    /// The order, unless it is the id order lists are read in anyway.
    pub sort: Option<&'a dyn Order<User>>,
    pub paging: Paging,
    pub count: usize,
}

/// A window of an index-paged users query: how many users match in all, and
/// those at positions `skip..skip + take` (0-based, in the list's order).
pub struct UserWindow {
    pub total: usize,
    pub users: Vec<User>,
}

/// One page of a users list.
pub enum UserPage {
    /// A `startIndex` page: the 1-based index of its first user, and how
    /// many users match in all.
    Index {
        start: usize,
        total: usize,
        users: Vec<User>,
    },
    /// A cursor page: users after `after`, in id order, and the id the next
    /// page starts after (`None`: this is the last page).
    Cursor {
        after: u64,
        users: Vec<User>,
        next: Option<u64>,
    },
}

/// Keys a lookup adds to the auth read at most: an `or` of this many
/// unique values (`userName eq "a" or userName eq "b"`) is read by key with
/// authentication, in one batch read (DynamoDB takes 100 keys in one); a
/// longer one is a pass.
const MAX_LOOKUP_KEYS: usize = 50;

/// Users a filtered cursor page reads at most before it answers with what
/// it found and a cursor to go on from, so that a filter that rarely matches
/// still makes a bounded request.
const FILTERED_READ_LIMIT: usize = 1000;

/// The users a filter names by key: by id, or through uniqueness claims
/// (both empty: a value no user can have, so the answer is empty without a
/// read).
struct Lookup {
    ids: BTreeSet<u64>,
    claims: ClaimKeys,
}

impl Lookup {
    /// What the auth read fetches for this lookup.
    fn want(&self, wanted: &mut Wanted) {
        wanted.users.extend(&self.ids);
        wanted.claims.extend(
            self.claims
                .iter()
                .map(|(claim, value)| (UniqueField::from(*claim), value.clone())),
        );
    }
}

/// Where a users query reads its candidates from; the whole filter is then
/// evaluated on them, so any of these gives the same answer.
enum Read {
    /// The users the filter pins by key ([`Lookup`]).
    Lookup(Lookup),
    /// The users changed within `since..=until` (a delta sync), from the
    /// index of changes. `exact`: the filter says nothing but the time, so
    /// the index entries decide it and only the page's users are read.
    Modified {
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
        exact: bool,
    },
    /// No filter: the directory in id order.
    Directory,
    /// One pass over GSI1.
    Pass,
}

/// How a users query reads, planned before the auth read.
pub(super) struct UserPlan {
    read: Read,
}

impl UserPlan {
    /// The plan of `list`, and what it adds to the auth read: the users or
    /// claims a lookup names, the counts an unfiltered index page needs
    /// (at the global base; a tenant's page starts from its own counts,
    /// read after auth).
    pub(super) fn new(list: &UserList<'_>, tenant_base: bool, wanted: &mut Wanted) -> UserPlan {
        let read = match list.filter {
            None => Read::Directory,
            Some(f) => match ReadPlan::of(&f.query()) {
                ReadPlan::Keys { ids, claims } if ids.len() + claims.len() <= MAX_LOOKUP_KEYS => {
                    Read::Lookup(Lookup { ids, claims })
                }
                ReadPlan::Modified { since, until } => Read::Modified {
                    since,
                    until,
                    exact: f.decided_by_time(),
                },
                _ => Read::Pass,
            },
        };
        wanted.counts |= matches!(read, Read::Directory)
            && list.sort.is_none()
            && matches!(list.paging, Paging::Index(_))
            && !tenant_base;
        if let Read::Lookup(lookup) = &read {
            lookup.want(wanted);
        }
        UserPlan { read }
    }
}

/// Whether an identity came through a tenant base.
pub(super) fn at_tenant_base(who: &Identity<'_>) -> bool {
    matches!(who, Identity::Tenant { .. })
}

/// The users list operations over one store, in one profile.
pub struct UserLists<'a> {
    store: &'a Store,
    profile: Profile,
}

impl<'a> UserLists<'a> {
    pub fn new(store: &'a Store, profile: Profile) -> UserLists<'a> {
        UserLists { store, profile }
    }

    fn active_only(&self) -> bool {
        self.profile == Profile::Odm
    }

    /// Whether the profile shows this user (ODM hides deactivated users).
    fn visible(&self, user: &User) -> bool {
        self.profile == Profile::Rfc || user.is_active
    }

    /// The page `list` asks for, among the users the caller may provision:
    /// authenticated with what the plan reads by key (and the counts) in
    /// one batch read; a query error is answered after authentication.
    pub async fn list<E>(
        &self,
        who: Identity<'_>,
        list: Result<UserList<'_>, E>,
    ) -> Result<UserPage, Failure<E>> {
        let mut wanted = Wanted::default();
        let tenant_base = at_tenant_base(&who);
        let planned = list.map(|l| {
            let plan = UserPlan::new(&l, tenant_base, &mut wanted);
            (l, plan)
        });
        let (provisioner, fetched) = who.provisioner::<Failure<E>>(self.store, wanted).await?;
        let (list, plan) = planned.map_err(Failure::Refused)?;
        self.page(&list, &plan, &fetched, provisioner.tenant.as_ref())
            .await
            .map_err(Failure::Store)
    }

    async fn page(
        &self,
        list: &UserList<'_>,
        plan: &UserPlan,
        fetched: &Fetched,
        tenant: Option<&Tenant>,
    ) -> Result<UserPage, StoreError> {
        if let Some(tenant) = tenant {
            return self.tenant_page(list, plan, fetched, tenant).await;
        }
        let after = match list.paging {
            Paging::Index(start) => {
                let w = self
                    .window(list, plan, fetched, None, start - 1, list.count)
                    .await?;
                return Ok(UserPage::Index {
                    start,
                    total: w.total,
                    users: w.users,
                });
            }
            Paging::Cursor(after) => after,
        };
        let (users, next) = match &plan.read {
            Read::Modified {
                since,
                until,
                exact: true,
            } => {
                // The next page's users are known from the index alone.
                let found: Vec<Change> = self
                    .changes_matching(list, *since, *until)
                    .await?
                    .into_iter()
                    .filter(|c| c.id > after)
                    .take(list.count + 1)
                    .collect();
                let shown = &found[..found.len().min(list.count)];
                let mut users = self.store.changes().users(shown).await?;
                users.sort_by_key(|u| u.id);
                let next = (found.len() > list.count).then(|| shown.last().map_or(after, |c| c.id));
                (users, next)
            }
            Read::Lookup(_) | Read::Modified { .. } => {
                let found: Vec<User> = self
                    .candidates(list, plan, fetched)
                    .await?
                    .into_iter()
                    .filter(|u| u.id > after)
                    .collect();
                cursor_cut(found, list.count, after, None)
            }
            Read::Directory | Read::Pass => self.cursor_page(list, after).await?,
        };
        Ok(UserPage::Cursor { after, users, next })
    }

    /// A users page under a tenant base: only the users the org owns, from
    /// its own partition of the tenant index, so nothing another tenant
    /// holds is read or counted. A filter that pins users by key reads them
    /// by key (with the auth read: ≤ 2 calls) and drops those of others; an
    /// unfiltered cursor page is one query of the org's partition; anything
    /// else reads the org's users (never more) and filters them.
    async fn tenant_page(
        &self,
        list: &UserList<'_>,
        plan: &UserPlan,
        fetched: &Fetched,
        tenant: &Tenant,
    ) -> Result<UserPage, StoreError> {
        match list.paging {
            Paging::Cursor(after)
                if list.filter.is_none() && !matches!(plan.read, Read::Lookup(_)) =>
            {
                let start = (after > 0).then_some(after);
                let page = self
                    .store
                    .users()
                    .owned_page_after(tenant.org_id, start, list.count, self.active_only())
                    .await?;
                let shown = self.tenant_matching(list, tenant, page.users);
                let (users, next) = cursor_cut(shown, list.count, after, page.next_after);
                Ok(UserPage::Cursor { after, users, next })
            }
            Paging::Cursor(after) => {
                let matching = self.tenant_users(list, plan, fetched, tenant).await?;
                let found: Vec<User> = matching.into_iter().filter(|u| u.id > after).collect();
                let (users, next) = cursor_cut(found, list.count, after, None);
                Ok(UserPage::Cursor { after, users, next })
            }
            Paging::Index(start) => {
                let w = self
                    .tenant_window(list, plan, fetched, tenant, start - 1, list.count)
                    .await?;
                Ok(UserPage::Index {
                    start,
                    total: w.total,
                    users: w.users,
                })
            }
        }
    }

    /// The users at `skip..skip + take` of what `list` matches, in its
    /// order, at the global base or (`tenant`) among the tenant's users.
    /// Unfiltered and unsorted, the counts read with auth give the total
    /// and one GSI1 query reads no further than the window (and at most a
    /// bucket's worth before it); a delta sync counts the index entries and
    /// reads only the window's users (never older than the entry that named
    /// them: [`crate::store::Changes::users`]); anything else reads its
    /// candidates ([`UserLists::candidates`]).
    pub(super) async fn window(
        &self,
        list: &UserList<'_>,
        plan: &UserPlan,
        fetched: &Fetched,
        tenant: Option<&Tenant>,
        skip: usize,
        take: usize,
    ) -> Result<UserWindow, StoreError> {
        if let Some(tenant) = tenant {
            return self
                .tenant_window(list, plan, fetched, tenant, skip, take)
                .await;
        }
        let active_only = self.active_only();
        match (&plan.read, &list.sort) {
            (Read::Directory, None) => {
                // The counts per id bucket (read with auth) say where the
                // window starts: it reads its own users, and at most a
                // bucket's worth before them.
                let directory = fetched.bucket_counts().cloned().unwrap_or_default();
                let counts = directory.counts();
                let total = if active_only {
                    counts.active
                } else {
                    counts.total
                } as usize;
                let users = self
                    .store
                    .users()
                    .from_position(&directory, skip as u64, false, take, active_only)
                    .await?;
                Ok(UserWindow { total, users })
            }
            (
                Read::Modified {
                    since,
                    until,
                    exact: true,
                },
                None,
            ) => {
                let found = self.changes_matching(list, *since, *until).await?;
                let page: Vec<Change> = found.iter().skip(skip).take(take).copied().collect();
                let mut users = self.store.changes().users(&page).await?;
                users.sort_by_key(|u| u.id);
                Ok(UserWindow {
                    total: found.len(),
                    users,
                })
            }
            _ => {
                let matching = self.candidates(list, plan, fetched).await?;
                let total = matching.len();
                let users = matching.into_iter().skip(skip).take(take).collect();
                Ok(UserWindow { total, users })
            }
        }
    }

    /// The users at `skip..skip + take` of what `list` matches among the
    /// tenant's users. Unfiltered and unsorted, the org's own counts say
    /// where the window starts in its partition of the tenant index, and
    /// one query reads no further than the window (and at most a bucket's
    /// worth of the org's users before it): two calls after auth, at any
    /// depth. Anything else reads its candidates
    /// ([`UserLists::tenant_users`]).
    async fn tenant_window(
        &self,
        list: &UserList<'_>,
        plan: &UserPlan,
        fetched: &Fetched,
        tenant: &Tenant,
        skip: usize,
        take: usize,
    ) -> Result<UserWindow, StoreError> {
        if let (Read::Directory, None) = (&plan.read, &list.sort) {
            let active_only = self.active_only();
            let counts = self.store.counts().of_tenant(tenant.org_id).await?;
            let totals = counts.counts();
            let total = if active_only {
                totals.active
            } else {
                totals.total
            } as usize;
            // No further than the org's last user: a read that reaches the
            // end of its partition then ends there, without one more query.
            let take = take.min(total.saturating_sub(skip));
            let users = self
                .store
                .users()
                .owned_from_position(tenant.org_id, &counts, skip as u64, take, active_only)
                .await?;
            return Ok(UserWindow {
                total,
                users: self.tenant_matching(list, tenant, users),
            });
        }
        let matching = self.tenant_users(list, plan, fetched, tenant).await?;
        Ok(UserWindow {
            total: matching.len(),
            users: matching.into_iter().skip(skip).take(take).collect(),
        })
    }

    /// Every user the tenant owns that `list` matches, in its order: read
    /// by key when the filter pins users down, else the org's users from
    /// the tenant index.
    async fn tenant_users(
        &self,
        list: &UserList<'_>,
        plan: &UserPlan,
        fetched: &Fetched,
        tenant: &Tenant,
    ) -> Result<Vec<User>, StoreError> {
        let read = match &plan.read {
            Read::Lookup(lookup) => self.resolve(lookup, fetched).await?,
            _ => {
                self.store
                    .users()
                    .owned_by(tenant.org_id, None, usize::MAX, self.active_only())
                    .await?
                    .users
            }
        };
        Ok(self.tenant_matching(list, tenant, read))
    }

    /// Of `read`, the users the tenant owns, visible in the profile, that
    /// the list's filter matches, in its order.
    fn tenant_matching(&self, list: &UserList<'_>, tenant: &Tenant, read: Vec<User>) -> Vec<User> {
        let mut users: Vec<User> = read
            .into_iter()
            .filter(|u| tenant.owns(u))
            .filter(|u| self.visible(u))
            .filter(|u| list.filter.is_none_or(|f| f.matches(u)))
            .collect();
        users.sort_by_key(|u| u.id);
        users.dedup_by_key(|u| u.id);
        if let Some(sort) = list.sort {
            sort.sort(&mut users);
        }
        users
    }

    /// The users a lookup names: those by id came with the auth read, those
    /// by claim are read in one more batch read, whatever their number.
    async fn resolve(&self, lookup: &Lookup, fetched: &Fetched) -> Result<Vec<User>, StoreError> {
        let mut users: Vec<User> = lookup
            .ids
            .iter()
            .filter_map(|id| fetched.user(*id).cloned())
            .collect();
        let owners: Vec<u64> = lookup
            .claims
            .iter()
            .filter_map(|(claim, value)| fetched.claim_owner((*claim).into(), value))
            .filter(|owner| !lookup.ids.contains(owner))
            .collect();
        if !owners.is_empty() {
            users.extend(self.store.users().by_ids(&owners).await?.into_values());
        }
        users.sort_by_key(|u| u.id);
        users.dedup_by_key(|u| u.id);
        Ok(users)
    }

    /// Every visible user the list matches, in its order (id order unless
    /// it is sorted): what its plan reads, with the whole filter applied.
    async fn candidates(
        &self,
        list: &UserList<'_>,
        plan: &UserPlan,
        fetched: &Fetched,
    ) -> Result<Vec<User>, StoreError> {
        let read = match &plan.read {
            Read::Lookup(lookup) => self.resolve(lookup, fetched).await?,
            Read::Modified { since, until, .. } => {
                let changes = self.store.changes().between(*since, *until).await?;
                self.store.changes().users(&changes).await?
            }
            Read::Directory | Read::Pass => self.store.users().all().await?,
        };
        let mut users: Vec<User> = read
            .into_iter()
            .filter(|u| self.visible(u))
            .filter(|u| list.filter.is_none_or(|f| f.matches(u)))
            .collect();
        users.sort_by_key(|u| u.id);
        if let Some(sort) = list.sort {
            sort.sort(&mut users);
        }
        Ok(users)
    }

    /// The entries of the visible users whose entry in the index of changes
    /// meets the filter (one that compares only the time), in id order. One
    /// query on the index; no user is read.
    async fn changes_matching(
        &self,
        list: &UserList<'_>,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
    ) -> Result<Vec<Change>, StoreError> {
        let profile = self.profile;
        let mut found: Vec<Change> = self
            .store
            .changes()
            .between(since, until)
            .await?
            .into_iter()
            .filter(|c| profile == Profile::Rfc || c.active)
            .filter(|c| {
                // The filter reads only the modification time: a user
                // holding just that time answers it as the whole user would.
                let mut probe = User::new("");
                probe.last_modified = c.at;
                list.filter.is_none_or(|f| f.matches(&probe))
            })
            .collect();
        found.sort_by_key(|c| c.id);
        found.dedup_by_key(|c| c.id);
        Ok(found)
    }

    /// A cursor page: one GSI1 query starting after the cursor. Unfiltered,
    /// it reads exactly the next `count` index entries and answers the
    /// visible ones among them (in `odm` the inactive are read but not
    /// shown, so a page may hold fewer than `count`: RFC 9865 lets a page be
    /// short, `nextCursor` says whether there is more), and the next page
    /// starts after the last entry read: a walk reads each user once. With
    /// a filter it reads until the page is full or [`FILTERED_READ_LIMIT`]
    /// users were read.
    async fn cursor_page(
        &self,
        list: &UserList<'_>,
        after: u64,
    ) -> Result<(Vec<User>, Option<u64>), StoreError> {
        let active_only = self.active_only();
        let start = (after > 0).then_some(after);
        Ok(match list.filter {
            // `count=0`: no users, and the cursor stays where it was.
            _ if list.count == 0 => (Vec::new(), Some(after)),
            None => {
                let page = self
                    .store
                    .users()
                    .page_after(start, list.count, active_only)
                    .await?;
                cursor_cut(page.users, list.count, after, page.next_after)
            }
            Some(f) => {
                let want = list.count + 1;
                let limit = FILTERED_READ_LIMIT.max(want);
                let slice = self
                    .store
                    .users()
                    .matching_after(start, want, active_only, limit, |u| f.matches(u))
                    .await?;
                cursor_cut(slice.users, list.count, after, slice.stopped_at)
            }
        })
    }
}

/// A cursor page of `found` (users after `after`, in id order, possibly one
/// more than the page holds) and where the next page starts: after the
/// page's last user when more were found than fit, else at `stopped_at`
/// when the read stopped before the end (`None`: this is the last page).
fn cursor_cut(
    mut found: Vec<User>,
    count: usize,
    after: u64,
    stopped_at: Option<u64>,
) -> (Vec<User>, Option<u64>) {
    let more = found.len() > count;
    found.truncate(count);
    let next = if more {
        Some(found.last().map_or(after, |u| u.id))
    } else {
        stopped_at
    };
    (found, next)
}
