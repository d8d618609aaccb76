//! The admin API's operations on user accounts: list (in an organization's
//! scope), read one, read yourself, change (self-service or as an admin)
//! and delete.
//!
//! Who may see whom is [`may_see`]: yourself, anyone as an admin, and in an
//! organization's context the other active members of it. A user the caller
//! may not see is `Forbidden` whether it exists or not, and that is decided
//! before anything about the user is read, so neither a 403 nor a 404 tells
//! a caller which ids are taken. Every operation authenticates with what it
//! needs (its target, the org, the claims a list pins, the user counts) in
//! the caller's own batch read.
use std::collections::{BTreeSet, HashMap};
use std::ops::Range;

use super::Failure;
use crate::auth::{self, Credentials};
use crate::domain::query::{Claim, UserFields, UserQuery};
use crate::domain::query::{ClaimKeys, ReadPlan};
use crate::domain::user::User;
use crate::domain::{is_active_member, may_see, Caller, OrgContext, OrgScope};
use crate::store::{Fetched, Store, StoreError, UniqueField, Wanted};

/// What a list selects and in which order, as the API parsed it. The
/// service decides what to read; the selection decides what matches.
pub trait Selection {
    /// Whether `user` passes every filter (org scoping is the service's).
    fn matches(&self, user: &impl UserFields) -> bool;
    /// The filters in the planner's terms: what the reads can be narrowed to.
    fn user_query(&self) -> UserQuery;
    /// Sorts `users` in the list's order, ties by id.
    fn sort<T: UserFields>(&self, users: &mut [T]);
    /// `Some(descending)` when the list filters nothing and orders by id
    /// alone: the user counts then say where any page starts.
    fn id_order_only(&self) -> Option<bool>;
}

/// One page of a list: its users in order, and how many matched in all.
#[derive(Debug)]
pub struct Listing {
    pub caller: Caller,
    pub users: Vec<User>,
    pub total: usize,
}

/// What a change touches, which decides who may make it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reach {
    /// Nothing (an empty change): whoever may see the user.
    Nothing,
    /// Only the account's personal data: the user themselves, or an admin.
    Personal,
    /// Anything else: admins only.
    Account,
}

/// The next record from the current one.
pub type Apply = Box<dyn Fn(&User) -> User + Send + Sync>;

/// A change an admin request makes to an account.
pub struct Change<F> {
    /// What the change touches; its error (a field that does not exist) is
    /// answered once the caller may change the user at all.
    pub reach: Result<Reach, F>,
    /// The next record from the current one, validated; its error is
    /// answered once the caller may make the change at all.
    pub apply: Result<Apply, F>,
}

/// How many pinned users and usernames a list may add to the auth read:
/// enough for an `==` or a short `in`, few enough that a caller who turns out
/// to see only themselves made the read barely larger.
const AUTH_READ_PINS: usize = 10;

/// The account operations over one store.
pub struct Accounts<'a> {
    store: &'a Store,
}

impl<'a> Accounts<'a> {
    pub fn new(store: &'a Store) -> Accounts<'a> {
        Accounts { store }
    }

    /// The caller (`/users/self`, and the fallback's authentication).
    pub async fn me<E>(&self, credentials: &Credentials) -> Result<Caller, Failure<E>> {
        let (caller, _) =
            auth::authenticate_with(self.store, credentials, Wanted::default()).await?;
        Ok(caller)
    }

    /// Authenticates, reading the org and what `wanted` names with the
    /// caller; a query error is answered after authentication.
    async fn prepare<'q, Q, E>(
        &self,
        credentials: &Credentials,
        query: Result<(&'q Q, &'q OrgContext), E>,
        mut wanted: Wanted,
    ) -> Result<(Caller, &'q Q, OrgScope, Fetched), Failure<E>> {
        if let Ok((_, org)) = &query {
            wanted.org = org.named().cloned();
        }
        let (caller, fetched) = auth::authenticate_with(self.store, credentials, wanted).await?;
        let (query, org) = query.map_err(Failure::Refused)?;
        let scope = resolve(org, &fetched)?;
        // An org the caller is no active member of answers like one that
        // does not exist (an admin's context is any org): otherwise its
        // 403 against a missing org's 404 would tell anyone which slugs
        // and ids are taken.
        if let (OrgScope::Org { id, .. }, Some(name)) = (&scope, org.named()) {
            if !caller.user.is_admin() && !is_active_member(&caller.user, *id) {
                return Err(Failure::NoSuchOrg(name.clone()));
            }
        }
        Ok((caller, query, scope, fetched))
    }

    /// One user, if the caller may see it and it passes `query`'s filters
    /// (DRF applies the list's filters to a detail read too: a target they
    /// exclude is not found — but only one the caller may see, or the
    /// filters would tell what they may not).
    pub async fn get<Q: Selection, E>(
        &self,
        credentials: &Credentials,
        id: Option<u64>,
        query: Result<(&Q, &OrgContext), E>,
    ) -> Result<(Caller, User), Failure<E>> {
        let (caller, query, scope, fetched) =
            self.prepare(credentials, query, target_of(id)).await?;
        let target = visible_target(&caller, id, &scope, &fetched)?
            .filter(|u| query.matches(*u))
            .cloned()
            .ok_or(Failure::NotFound)?;
        Ok((caller, target))
    }

    /// Writes `change` over the user, retried on a fresh read when another
    /// write wins the race. A non-admin may change only their own personal
    /// data; a read-only credential nothing.
    pub async fn update<E>(
        &self,
        credentials: &Credentials,
        id: Option<u64>,
        org: Result<&OrgContext, E>,
        change: Change<E>,
    ) -> Result<(Caller, User), Failure<E>> {
        let query = org.map(|org| (&NoFilter, org));
        let (caller, _, scope, fetched) = self.prepare(credentials, query, target_of(id)).await?;
        let target = visible_target(&caller, id, &scope, &fetched)?
            .cloned()
            .ok_or(Failure::NotFound)?;
        if !caller.may_write() {
            return Err(Failure::ReadOnly);
        }
        let allowed = match change.reach.map_err(Failure::Refused)? {
            Reach::Nothing => true,
            Reach::Personal => caller.user.is_admin() || caller.user.id == target.id,
            Reach::Account => caller.user.is_admin(),
        };
        if !allowed {
            return Err(Failure::Forbidden);
        }
        let apply = change.apply.map_err(Failure::Refused)?;
        let mut attempted = None;
        let updated = self
            .store
            .users()
            .update_with(target, false, |current| {
                let next = apply(current);
                attempted = Some(next.clone());
                Ok::<_, StoreError>(next)
            })
            .await
            .map_err(|e| match e {
                StoreError::Taken(field) => Failure::Taken {
                    field,
                    attempted: Box::new(attempted.take().unwrap_or_else(|| User::new(""))),
                },
                other => other.into(),
            })?;
        Ok((caller, updated))
    }

    /// Deletes yourself or, as an admin, anyone. Decided before the user is
    /// looked up, so that a not-found never tells a non-admin an id is free.
    /// The user may change before the delete lands (a new token, a rename):
    /// then it deletes what is there then.
    pub async fn delete<E>(
        &self,
        credentials: &Credentials,
        id: Option<u64>,
        org: Result<&OrgContext, E>,
    ) -> Result<(), Failure<E>> {
        let query = org.map(|org| (&NoFilter, org));
        let (caller, _, _, fetched) = self.prepare(credentials, query, target_of(id)).await?;
        if !(caller.user.is_admin() || id == Some(caller.user.id)) {
            return Err(Failure::Forbidden);
        }
        let target = id
            .and_then(|id| fetched.user(id))
            .cloned()
            .ok_or(Failure::NotFound)?;
        if !caller.may_write() {
            return Err(Failure::ReadOnly);
        }
        self.store
            .users()
            .delete_with(target, false, |_| Ok::<_, StoreError>(()))
            .await?;
        Ok(())
    }

    /// The page `window(total)` names of the users `query` selects in the
    /// org's scope, among those the caller may see. `plan: false` reads the
    /// whole directory and filters it, which must give the same answer
    /// (tests compare the two).
    pub async fn list<Q: Selection, E>(
        &self,
        credentials: &Credentials,
        query: Result<(&Q, &OrgContext), E>,
        window: impl Fn(usize) -> Result<Range<usize>, E>,
        plan: bool,
    ) -> Result<Listing, Failure<E>> {
        let mut wanted = Wanted::default();
        if let Ok((q, org)) = &query {
            wanted.counts = q.id_order_only().is_some() && **org == OrgContext::Sandbox;
            prefetch_pinned(&ReadPlan::of(&q.user_query()), &mut wanted);
        }
        let (caller, query, scope, fetched) = self.prepare(credentials, query, wanted).await?;
        let me = &caller.user;
        let admin = me.is_admin();
        let page = |total| window(total).map_err(Failure::Refused);
        if let (true, OrgScope::Sandbox, Some(descending)) = (admin, &scope, query.id_order_only())
        {
            // The counts per id bucket say where the page starts: it reads
            // its own users (and at most a bucket's worth before them), at
            // any depth.
            let counts = fetched.bucket_counts().cloned().unwrap_or_default();
            let total = counts.counts().total as usize;
            let range = page(total)?;
            let users = self
                .store
                .users()
                .from_position(&counts, range.start as u64, descending, range.len(), false)
                .await?;
            return Ok(Listing {
                caller,
                users,
                total,
            });
        }
        let read_plan = ReadPlan::of(&query.user_query());
        if plan && admin && scope == OrgScope::Sandbox && read_plan == ReadPlan::SearchIndex {
            // Boxed: its reads would make every list's future much larger.
            let (users, total) = Box::pin(self.search_pass(query, page)).await?;
            return Ok(Listing {
                caller,
                users,
                total,
            });
        }
        let candidates: Vec<User> = match &scope {
            // A non-admin without an org sees only themselves: no read needed.
            OrgScope::Sandbox if !admin => vec![me.clone()],
            OrgScope::NoOrg if !admin => [me.clone()]
                .into_iter()
                .filter(|u| u.memberships.is_empty())
                .collect(),
            OrgScope::Org { id, .. } if !admin && !is_active_member(me, *id) => {
                return Err(Failure::Forbidden)
            }
            _ => {
                let mut read = if plan {
                    self.candidates(&read_plan, &scope, &fetched).await?
                } else {
                    self.store.users().all().await?
                };
                read.retain(|u| scope.holds(u));
                read
            }
        };
        let mut users: Vec<User> = candidates
            .into_iter()
            .filter(|u| query.matches(u))
            .collect();
        query.sort(&mut users);
        let total = users.len();
        let range = page(total)?;
        users.truncate(range.end);
        users.drain(..range.start);
        Ok(Listing {
            caller,
            users,
            total,
        })
    }

    /// An admin's list that must look at every user (search, a sort other
    /// than by id, filters that pin nobody): filtered and sorted over the
    /// search index, which holds only the fields these need, then the page's
    /// users read in full. When the page is large against the directory
    /// (reading its users one by one would cost more than the rest of a pass
    /// over GSI1), it is a pass over GSI1 after all.
    async fn search_pass<Q: Selection, E>(
        &self,
        query: &Q,
        page: impl Fn(usize) -> Result<Range<usize>, Failure<E>>,
    ) -> Result<(Vec<User>, usize), Failure<E>> {
        let before = self.store.metrics().capacity_units();
        let mut rows = self.store.users().search_index().await?;
        let pass = self.store.metrics().capacity_units() - before;
        rows.retain(|r| query.matches(r));
        query.sort(&mut rows);
        let range = page(rows.len())?;
        let ids: Vec<u64> = rows[range].iter().map(|r| r.id).collect();
        // A user read by key costs half a unit; GSI1 holds about three times
        // what the search index does, so a pass over it costs about 3 x
        // `pass` (2.5 x, to err towards the pass, whose cost does not depend
        // on guesses).
        let users = if ids.len() as f64 * 0.5 <= 2.5 * pass {
            self.store.users().by_ids_in_order(&ids).await?
        } else {
            let mut all: HashMap<u64, User> = self
                .store
                .users()
                .all()
                .await?
                .into_iter()
                .map(|u| (u.id, u))
                .collect();
            ids.iter().filter_map(|id| all.remove(id)).collect()
        };
        Ok((users, rows.len()))
    }

    /// The users a list reads before filtering: those its query pins (by
    /// key or id range), else the org's members, else everyone. Any superset
    /// of the matches gives the same answer; this one is read in the fewest
    /// units.
    async fn candidates(
        &self,
        plan: &ReadPlan,
        scope: &OrgScope,
        fetched: &Fetched,
    ) -> Result<Vec<User>, StoreError> {
        let prefetched = plan.prefetch(AUTH_READ_PINS).is_some();
        Ok(match (plan, scope) {
            (ReadPlan::Keys { ids, claims }, _) => {
                self.pinned(ids, claims, prefetched.then_some(fetched))
                    .await?
            }
            (_, OrgScope::Org { slug, .. }) => {
                let members = self.store.groups().org_member_ids(slug).await?;
                self.store
                    .users()
                    .by_ids(&members)
                    .await?
                    .into_values()
                    .collect()
            }
            (ReadPlan::IdRange { low, high }, _) => {
                self.store.users().in_id_range(*low, *high).await?
            }
            // (JSON Logic names no modification time: a `Modified` plan is SCIM's.)
            (ReadPlan::SearchIndex | ReadPlan::Pass | ReadPlan::Modified { .. }, _) => {
                self.store.users().all().await?
            }
        })
    }

    /// The users with these ids or holding these claims. `prefetched`: the
    /// auth read that already holds the users of `ids` and the `claims`.
    async fn pinned(
        &self,
        ids: &BTreeSet<u64>,
        claims: &ClaimKeys,
        prefetched: Option<&Fetched>,
    ) -> Result<Vec<User>, StoreError> {
        let mut owners = Vec::new();
        match prefetched {
            Some(fetched) => owners.extend(
                claims
                    .iter()
                    .filter_map(|(claim, value)| fetched.claim_owner((*claim).into(), value)),
            ),
            // One read per kind of claim (a filter names usernames only).
            None => {
                for kind in [Claim::Username, Claim::Email, Claim::ExternalId] {
                    let values: Vec<String> = claims
                        .iter()
                        .filter(|(claim, _)| *claim == kind)
                        .map(|(_, value)| value.clone())
                        .collect();
                    if !values.is_empty() {
                        owners.extend(self.store.claims().owners(kind.into(), &values).await?);
                    }
                }
            }
        }
        let mut users = Vec::new();
        let mut unread = Vec::new();
        for id in ids.iter().chain(&owners).copied() {
            match prefetched {
                Some(fetched) if ids.contains(&id) => users.extend(fetched.user(id).cloned()),
                _ => unread.push(id),
            }
        }
        unread.sort_unstable();
        unread.dedup();
        users.extend(self.store.users().by_ids(&unread).await?.into_values());
        users.sort_by_key(|u| u.id);
        users.dedup_by_key(|u| u.id);
        Ok(users)
    }
}

/// What a detail route reads with authentication: its target user.
fn target_of(id: Option<u64>) -> Wanted {
    Wanted {
        users: id.into_iter().collect(),
        ..Wanted::default()
    }
}

/// The org a request's context names, as found in the auth read.
fn resolve<E>(context: &OrgContext, fetched: &Fetched) -> Result<OrgScope, Failure<E>> {
    Ok(match context {
        OrgContext::Sandbox => OrgScope::Sandbox,
        OrgContext::NoOrg => OrgScope::NoOrg,
        OrgContext::Named(name) => {
            let org = fetched
                .org()
                .ok_or_else(|| Failure::NoSuchOrg(name.clone()))?;
            OrgScope::Org {
                slug: org.slug.clone(),
                id: org.id,
            }
        }
    })
}

/// The target of a detail route, once the caller is known to be allowed to
/// see it: `Forbidden` (the same whether the user exists or not) for one
/// they may not see, `None` for a missing user they could have seen.
fn visible_target<'f, E>(
    caller: &Caller,
    id: Option<u64>,
    scope: &OrgScope,
    fetched: &'f Fetched,
) -> Result<Option<&'f User>, Failure<E>> {
    let target = id.and_then(|id| fetched.user(id));
    if may_see(&caller.user, id, target, scope) {
        Ok(target)
    } else {
        Err(Failure::Forbidden)
    }
}

/// A query pinning a few users by id or username has them (and the claims of
/// those usernames) read with authentication, strongly consistent.
fn prefetch_pinned(plan: &ReadPlan, wanted: &mut Wanted) {
    if let Some((ids, claims)) = plan.prefetch(AUTH_READ_PINS) {
        wanted.users.extend(ids);
        wanted.claims.extend(
            claims
                .iter()
                .map(|(claim, value)| (UniqueField::from(*claim), value.clone())),
        );
    }
}

/// The selection of a write: every user, in no particular order.
struct NoFilter;

impl Selection for NoFilter {
    fn matches(&self, _: &impl UserFields) -> bool {
        true
    }
    fn user_query(&self) -> UserQuery {
        UserQuery::And(Vec::new())
    }
    fn sort<T: UserFields>(&self, _: &mut [T]) {}
    fn id_order_only(&self) -> Option<bool> {
        None
    }
}
