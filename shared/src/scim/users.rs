//! The SCIM Users endpoint (`/api/v1/scim/Users`): one public function per
//! Lambda, each extract, call, render.
use std::collections::BTreeSet;

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde_json::{json, Value};

use chrono::{DateTime, Utc};

use super::filter::{self, Filter, Resource};
use super::list_params::ListParams;
use super::projection::Projection;
use super::request::{admin, ScimRequest};
use super::resource_type::{json_response, list_response, ResourceType};
use super::sort::Sort;
use super::user_resource;
use super::{cursor, ScimError, LIST_SCHEMA};
use crate::config::Config;
use crate::domain::plan::{ClaimKeys, ReadPlan};
use crate::domain::tenant::Tenant;
use crate::domain::user::User;
use crate::http::{self, respond};
use crate::runtime::{Ctx, Profile};
use crate::service::users::Users;
use crate::service::Failure;
use crate::store::{Change, Fetched, StoreError, UniqueField, Wanted};

type Outcome = Result<Response<Body>, ScimError>;
const USER: ResourceType = ResourceType::User;

/// A user resource with its `ETag` (and `Location`, on create).
fn resource_response(
    status: StatusCode,
    user: &User,
    r: &ScimRequest,
    profile: Profile,
) -> Response<Body> {
    let body = r
        .projection
        .apply(user_resource::to_json(user, &r.base_url, profile));
    USER.response(status, &body, user.id, user.version, &r.base_url)
}

/// Whether the profile shows this user (ODM hides deactivated users).
fn visible(profile: Profile, user: &User) -> bool {
    profile == Profile::Rfc || user.is_active
}

fn taken(field: UniqueField, user: &User) -> ScimError {
    match field {
        UniqueField::Username => {
            ScimError::uniqueness(format!("userName \"{}\" is already taken", user.username))
        }
        UniqueField::Email => {
            ScimError::uniqueness(format!("email \"{}\" belongs to another user", user.email))
        }
        UniqueField::ExternalId => ScimError::uniqueness(format!(
            "externalId \"{}\" belongs to another user",
            user.external_id.as_deref().unwrap_or_default()
        )),
        // User writes take no group claims.
        UniqueField::GroupName | UniqueField::GroupExternalId => {
            ScimError::uniqueness("a group holds this value")
        }
    }
}

// ---------------------------------------------------------------- queries

/// How a list is paged: by `startIndex` (RFC 7644, the default) or by
/// `cursor` (RFC 9865).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Paging {
    /// The 1-based index of the first result.
    Index(usize),
    /// The page starts after this id (0: from the start).
    Cursor(u64),
}

/// A parsed list or search request.
pub(super) struct Query {
    filter: Option<Filter>,
    paging: Paging,
    count: usize,
    /// `sortBy`/`sortOrder` (`rfc`), unless it asks for the id order lists
    /// are read in anyway.
    sort: Option<Sort>,
    projection: Projection,
}

impl Query {
    /// The users query `params` ask for: the filter parsed with a User's
    /// attributes and the profile's grammar, the order (`rfc`; `odm`
    /// ignores `sortBy` as it always has), the page by `startIndex` or by
    /// `cursor`.
    pub(super) fn new(params: &ListParams, config: &Config) -> Result<Query, ScimError> {
        let filter = params
            .filter()
            .map(|f| filter::parse(f, config.profile))
            .transpose()?;
        let sort = match config.profile {
            Profile::Rfc => Sort::from_params(params, Resource::User)?.filter(|s| !s.is_id_order()),
            Profile::Odm => None,
        };
        let paging = match (params.cursor.as_deref(), params.start_index) {
            (None, _) => Paging::Index(params.start()),
            (Some(_), Some(_)) => {
                return Err(ScimError::invalid_value(
                    "startIndex and cursor cannot be combined: page by index or by cursor \
                     (RFC 9865), not both.",
                ))
            }
            (Some(_), None) if sort.is_some() => {
                return Err(ScimError::invalid_value(
                    "sortBy cannot be combined with cursor: cursors page in id order. Page a \
                     sorted list by startIndex and count.",
                ))
            }
            (Some(raw), None) => Paging::Cursor(open_cursor(raw, filter.as_ref(), config)?),
        };
        Ok(Query {
            filter,
            paging,
            count: params.count(),
            sort,
            projection: params.projection.clone(),
        })
    }
}

/// Keys a lookup adds to the auth read at most: an `or` of this many
/// unique values (`userName eq "a" or userName eq "b"`) is read by key with
/// authentication, in one batch read (DynamoDB takes 100 keys in one); a
/// longer one is a pass.
const MAX_LOOKUP_KEYS: usize = 50;

/// The position a `cursor` parameter names: empty for the first page.
fn open_cursor(raw: &str, filter: Option<&Filter>, config: &Config) -> Result<u64, ScimError> {
    if raw.is_empty() {
        return Ok(0);
    }
    let opened = cursor::Cursor::open(
        raw,
        &config.cursor_key,
        config.profile,
        cursor::fingerprint(filter),
        cursor::now_secs(),
    )?;
    Ok(opened.after)
}

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

/// The users a lookup names: those by id came with the auth read, those by
/// claim are read in one more batch read, whatever their number.
async fn resolve(ctx: &Ctx, lookup: &Lookup, fetched: &Fetched) -> Result<Vec<User>, ScimError> {
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
        users.extend(ctx.store.users().by_ids(&owners).await?.into_values());
    }
    users.sort_by_key(|u| u.id);
    users.dedup_by_key(|u| u.id);
    Ok(users)
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
    /// The plan of `query`, and what it adds to the auth read: the users or
    /// claims a lookup names, the counts an unfiltered index page needs.
    pub(super) fn new(query: &Query, wanted: &mut Wanted) -> UserPlan {
        let read = match &query.filter {
            None => Read::Directory,
            Some(f) => match ReadPlan::of(&f.to_query()) {
                ReadPlan::Keys { ids, claims } if ids.len() + claims.len() <= MAX_LOOKUP_KEYS => {
                    Read::Lookup(Lookup { ids, claims })
                }
                ReadPlan::Modified { since, until } => Read::Modified {
                    since,
                    until,
                    exact: decided_by_time(f),
                },
                _ => Read::Pass,
            },
        };
        wanted.counts |= matches!(read, Read::Directory)
            && query.sort.is_none()
            && matches!(query.paging, Paging::Index(_));
        if let Read::Lookup(lookup) = &read {
            lookup.want(wanted);
        }
        UserPlan { read }
    }
}

/// Whether the filter compares nothing but `meta.lastModified` (with `eq`,
/// `gt`, `ge`, `lt`, `le`, joined by `and`/`or`), so that a user's entry in
/// the index of changes decides it.
fn decided_by_time(filter: &Filter) -> bool {
    match filter {
        Filter::Compare(path, op, filter::Value::Str(_)) => {
            path.is(filter::Attr::MetaLastModified) && *op != filter::Op::Ne
        }
        Filter::And(all) | Filter::Or(all) => all.iter().all(decided_by_time),
        _ => false,
    }
}

/// Lists users: by key when the filter pins them down (≤ 2 round trips with
/// the auth read, also for an `or` of pins); what changed in a span of time
/// from the index of changes; a cursor page with one GSI1 query that starts
/// after the cursor; an unfiltered index page with one query reading up to
/// the page; else (and whenever a list is sorted) one pass over GSI1.
async fn run_query(ctx: &Ctx, r: &ScimRequest, query: Result<Query, ScimError>) -> Outcome {
    let mut wanted = Wanted::default();
    let plan = query.as_ref().ok().map(|q| UserPlan::new(q, &mut wanted));
    // A tenant's page starts from its own counts, read after auth.
    wanted.counts &= r.base.tenant().is_none();
    let (caller, fetched) = admin(ctx, r, wanted).await?;
    let query = query?;
    let Some(plan) = plan else {
        return Err(ScimError::server(http::Fault::bug(
            "a query without a plan",
        )));
    };
    let base_url = &r.base_url;
    if let Some(tenant) = &caller.tenant {
        return tenant_query(ctx, &query, &plan, &fetched, tenant, base_url).await;
    }
    match query.paging {
        Paging::Cursor(after) => match &plan.read {
            Read::Modified {
                since,
                until,
                exact: true,
            } => {
                // The next page's users are known from the index alone.
                let found: Vec<Change> = changes_matching(ctx, &query, *since, *until)
                    .await?
                    .into_iter()
                    .filter(|c| c.id > after)
                    .take(query.count + 1)
                    .collect();
                let shown = &found[..found.len().min(query.count)];
                let mut users = ctx.store.changes().users(shown).await?;
                users.sort_by_key(|u| u.id);
                let next =
                    (found.len() > query.count).then(|| shown.last().map_or(after, |c| c.id));
                Ok(cursor_list(ctx, &query, after, users, next, base_url))
            }
            Read::Lookup(_) | Read::Modified { .. } => {
                let found: Vec<User> = candidates(ctx, &query, &plan, &fetched)
                    .await?
                    .into_iter()
                    .filter(|u| u.id > after)
                    .collect();
                let (page, next) = cursor_cut(found, query.count, after, None);
                Ok(cursor_list(ctx, &query, after, page, next, base_url))
            }
            Read::Directory | Read::Pass => cursor_page(ctx, &query, after, base_url).await,
        },
        Paging::Index(start) => {
            let window = users_window(ctx, &query, &plan, &fetched, start - 1, query.count).await?;
            let page = window
                .users
                .iter()
                .map(|u| {
                    let json = user_resource::to_json(u, base_url, ctx.config.profile);
                    query.projection.apply(json)
                })
                .collect();
            Ok(list_response(window.total, start, page))
        }
    }
}

/// A users query under a tenant base: only the users the org owns, from
/// its own partition of the tenant index, so nothing another tenant holds
/// is read or counted. A filter that pins users by key reads them by key
/// (with the auth read: ≤ 2 calls) and drops those of others; an
/// unfiltered cursor page is one query of the org's partition; anything
/// else reads the org's users (never more) and filters them.
async fn tenant_query(
    ctx: &Ctx,
    query: &Query,
    plan: &UserPlan,
    fetched: &Fetched,
    tenant: &Tenant,
    base_url: &str,
) -> Outcome {
    if let (Paging::Cursor(after), None, false) = (
        &query.paging,
        &query.filter,
        matches!(plan.read, Read::Lookup(_)),
    ) {
        let active_only = ctx.config.profile == Profile::Odm;
        let start = (*after > 0).then_some(*after);
        let page = ctx
            .store
            .users()
            .owned_page_after(tenant.org_id, start, query.count, active_only)
            .await?;
        let shown = tenant_matching(ctx, query, tenant, page.users);
        let (page, next) = cursor_cut(shown, query.count, *after, page.next_after);
        return Ok(cursor_list(ctx, query, *after, page, next, base_url));
    }
    match query.paging {
        Paging::Cursor(after) => {
            let matching = tenant_users(ctx, query, plan, fetched, tenant).await?;
            let found: Vec<User> = matching.into_iter().filter(|u| u.id > after).collect();
            let (page, next) = cursor_cut(found, query.count, after, None);
            Ok(cursor_list(ctx, query, after, page, next, base_url))
        }
        Paging::Index(start) => {
            let window =
                tenant_window(ctx, query, plan, fetched, tenant, start - 1, query.count).await?;
            let page = window
                .users
                .iter()
                .map(|u| {
                    let json = user_resource::to_json(u, base_url, ctx.config.profile);
                    query.projection.apply(json)
                })
                .collect();
            Ok(list_response(window.total, start, page))
        }
    }
}

/// The users at `skip..skip + take` of what `query` matches among the
/// tenant's users. Unfiltered and unsorted, the org's own counts say where
/// the window starts in its partition of the tenant index, and one query
/// reads no further than the window (and at most a bucket's worth of the
/// org's users before it): two calls after auth, at any depth. Anything
/// else reads its candidates ([`tenant_users`]).
pub(super) async fn tenant_window(
    ctx: &Ctx,
    query: &Query,
    plan: &UserPlan,
    fetched: &Fetched,
    tenant: &Tenant,
    skip: usize,
    take: usize,
) -> Result<UserWindow, ScimError> {
    if let (Read::Directory, None) = (&plan.read, &query.sort) {
        let active_only = ctx.config.profile == Profile::Odm;
        let counts = ctx.store.counts().of_tenant(tenant.org_id).await?;
        let totals = counts.counts();
        let total = if active_only {
            totals.active
        } else {
            totals.total
        } as usize;
        // No further than the org's last user: a read that reaches the end
        // of its partition then ends there, without one more query.
        let take = take.min(total.saturating_sub(skip));
        let users = ctx
            .store
            .users()
            .owned_from_position(tenant.org_id, &counts, skip as u64, take, active_only)
            .await?;
        return Ok(UserWindow {
            total,
            users: tenant_matching(ctx, query, tenant, users),
        });
    }
    let matching = tenant_users(ctx, query, plan, fetched, tenant).await?;
    Ok(UserWindow {
        total: matching.len(),
        users: matching.into_iter().skip(skip).take(take).collect(),
    })
}

/// Every user the tenant owns that `query` matches, in its order: read by
/// key when the filter pins users down, else the org's users from the
/// tenant index.
pub(super) async fn tenant_users(
    ctx: &Ctx,
    query: &Query,
    plan: &UserPlan,
    fetched: &Fetched,
    tenant: &Tenant,
) -> Result<Vec<User>, ScimError> {
    let read = match &plan.read {
        Read::Lookup(lookup) => resolve(ctx, lookup, fetched).await?,
        _ => {
            let active_only = ctx.config.profile == Profile::Odm;
            ctx.store
                .users()
                .owned_by(tenant.org_id, None, usize::MAX, active_only)
                .await?
                .users
        }
    };
    Ok(tenant_matching(ctx, query, tenant, read))
}

/// Of `read`, the users the tenant owns, visible in the profile, that the
/// query's filter matches, in its order.
fn tenant_matching(ctx: &Ctx, query: &Query, tenant: &Tenant, read: Vec<User>) -> Vec<User> {
    let mut users: Vec<User> = read
        .into_iter()
        .filter(|u| tenant.owns(u))
        .filter(|u| visible(ctx.config.profile, u))
        .filter(|u| query.filter.as_ref().is_none_or(|f| f.matches(u)))
        .collect();
    users.sort_by_key(|u| u.id);
    users.dedup_by_key(|u| u.id);
    if let Some(sort) = &query.sort {
        sort.users(&mut users);
    }
    users
}

/// Every visible user the query matches, in its order (id order unless it
/// is sorted): what its plan reads, with the whole filter applied.
async fn candidates(
    ctx: &Ctx,
    query: &Query,
    plan: &UserPlan,
    fetched: &Fetched,
) -> Result<Vec<User>, ScimError> {
    let read = match &plan.read {
        Read::Lookup(lookup) => resolve(ctx, lookup, fetched).await?,
        Read::Modified { since, until, .. } => {
            let changes = ctx.store.changes().between(*since, *until).await?;
            ctx.store.changes().users(&changes).await?
        }
        Read::Directory | Read::Pass => ctx.store.users().all().await?,
    };
    let mut users: Vec<User> = read
        .into_iter()
        .filter(|u| visible(ctx.config.profile, u))
        .filter(|u| query.filter.as_ref().is_none_or(|f| f.matches(u)))
        .collect();
    users.sort_by_key(|u| u.id);
    if let Some(sort) = &query.sort {
        sort.users(&mut users);
    }
    Ok(users)
}

/// The entries of the visible users whose entry in the index of changes
/// meets the filter (one that compares only the time: [`decided_by_time`]),
/// in id order. One query on the index; no user is read.
async fn changes_matching(
    ctx: &Ctx,
    query: &Query,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
) -> Result<Vec<Change>, ScimError> {
    let profile = ctx.config.profile;
    let mut found: Vec<Change> = ctx
        .store
        .changes()
        .between(since, until)
        .await?
        .into_iter()
        .filter(|c| profile == Profile::Rfc || c.active)
        .filter(|c| {
            // The filter reads only `meta.lastModified`: a user holding
            // just that time answers it as the whole user would.
            let mut probe = User::new("");
            probe.last_modified = c.at;
            query.filter.as_ref().is_none_or(|f| f.matches(&probe))
        })
        .collect();
    found.sort_by_key(|c| c.id);
    found.dedup_by_key(|c| c.id);
    Ok(found)
}

/// A window of an index-paged users query: how many users match in all, and
/// those at positions `skip..skip + take` (0-based, in id order).
pub(super) struct UserWindow {
    pub(super) total: usize,
    pub(super) users: Vec<User>,
}

/// The users at `skip..skip + take` of what `query` matches, in its order.
/// Unfiltered and unsorted, the counts read with auth give the total and
/// one GSI1 query reads no further than the window (and at most a bucket's
/// worth before it); a delta sync counts the index entries and reads only
/// the window's users (never older than the entry that named them:
/// [`crate::store::Changes::users`]); anything else reads its
/// candidates ([`candidates`]).
pub(super) async fn users_window(
    ctx: &Ctx,
    query: &Query,
    plan: &UserPlan,
    fetched: &Fetched,
    skip: usize,
    take: usize,
) -> Result<UserWindow, ScimError> {
    let active_only = ctx.config.profile == Profile::Odm;
    match (&plan.read, &query.sort) {
        (Read::Directory, None) => {
            // The counts per id bucket (read with auth) say where the window
            // starts: it reads its own users, and at most a bucket's worth
            // before them.
            let directory = fetched.bucket_counts().cloned().unwrap_or_default();
            let counts = directory.counts();
            let total = if active_only {
                counts.active
            } else {
                counts.total
            } as usize;
            let users = ctx
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
            let found = changes_matching(ctx, query, *since, *until).await?;
            let page: Vec<Change> = found.iter().skip(skip).take(take).copied().collect();
            let mut users = ctx.store.changes().users(&page).await?;
            users.sort_by_key(|u| u.id);
            Ok(UserWindow {
                total: found.len(),
                users,
            })
        }
        _ => {
            let matching = candidates(ctx, query, plan, fetched).await?;
            let total = matching.len();
            let users = matching.into_iter().skip(skip).take(take).collect();
            Ok(UserWindow { total, users })
        }
    }
}

/// Users a filtered cursor page reads at most before it answers with what
/// it found and a cursor to go on from, so that a filter that rarely matches
/// still makes a bounded request.
const FILTERED_READ_LIMIT: usize = 1000;

/// A cursor page: one GSI1 query starting after the cursor. Unfiltered, it
/// reads exactly the next `count` index entries and answers the visible ones
/// among them (in `odm` the inactive are read but not shown, so a page may
/// hold fewer than `count`: RFC 9865 lets a page be short, `nextCursor` says
/// whether there is more), and the next page starts after the last entry
/// read: a walk reads each user once. With a filter it reads until the page
/// is full or [`FILTERED_READ_LIMIT`] users were read.
async fn cursor_page(ctx: &Ctx, query: &Query, after: u64, base_url: &str) -> Outcome {
    let active_only = ctx.config.profile == Profile::Odm;
    let start = (after > 0).then_some(after);
    let (page, next) = match &query.filter {
        // `count=0`: no users, and the cursor stays where it was.
        _ if query.count == 0 => (Vec::new(), Some(after)),
        None => {
            let page = ctx
                .store
                .users()
                .page_after(start, query.count, active_only)
                .await?;
            cursor_cut(page.users, query.count, after, page.next_after)
        }
        Some(f) => {
            let want = query.count + 1;
            let limit = FILTERED_READ_LIMIT.max(want);
            let slice = ctx
                .store
                .users()
                .matching_after(start, want, active_only, limit, |u| f.matches(u))
                .await?;
            cursor_cut(slice.users, query.count, after, slice.stopped_at)
        }
    };
    Ok(cursor_list(ctx, query, after, page, next, base_url))
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

/// A cursor page: `page` (users after `after`, in id order) and `next`,
/// the id the next page starts after. `nextCursor` is absent only on the
/// last page (RFC 9865 §2). No `startIndex`; `totalResults` only when this
/// page is the whole answer (the first page, and the last): RFC 9865 lets a
/// cursor page omit it, and counting would cost a read that grows with the
/// directory. Clients that did not read ServiceProviderConfig still find it
/// on a one-page answer.
fn cursor_list(
    ctx: &Ctx,
    query: &Query,
    after: u64,
    page: Vec<User>,
    next: Option<u64>,
    base_url: &str,
) -> Response<Body> {
    let page: Vec<Value> = page
        .iter()
        .map(|u| {
            let json = user_resource::to_json(u, base_url, ctx.config.profile);
            query.projection.apply(json)
        })
        .collect();
    let page_len = page.len();
    let mut body = json!({
        "schemas": [LIST_SCHEMA],
        "itemsPerPage": page_len,
        "Resources": page,
    });
    if after == 0 && next.is_none() {
        body["totalResults"] = json!(page_len);
    }
    if let Some(after) = next {
        let next = cursor::Cursor {
            after,
            profile: ctx.config.profile,
            filter: cursor::fingerprint(query.filter.as_ref()),
            issued: cursor::now_secs(),
        };
        body["nextCursor"] = Value::String(next.seal(&ctx.config.cursor_key));
    }
    json_response(StatusCode::OK, &body)
}

/// `GET /Users`
pub async fn list(ctx: Ctx, req: Request) -> Response<Body> {
    let r = ScimRequest::extract(&ctx, &req);
    let query = ListParams::from_query(&r.query).and_then(|p| Query::new(&p, &ctx.config));
    // Boxed: the plans' store calls make a large future, and callers that
    // hold several handlers' futures (the runtime, tests) keep it on their stack.
    respond(Box::pin(run_query(&ctx, &r, query)).await)
}

/// `POST /Users/.search`
pub(super) async fn search_users(ctx: &Ctx, r: &ScimRequest) -> Response<Body> {
    let query = r
        .body()
        .and_then(ListParams::from_search_request)
        .and_then(|p| Query::new(&p, &ctx.config));
    respond(Box::pin(run_query(ctx, r, query)).await)
}

// ---------------------------------------------------------------- resources

/// `GET /Users/{id}`
pub async fn get(ctx: Ctx, req: Request) -> Response<Body> {
    let r = ScimRequest::extract(&ctx, &req);
    let users = Users::new(&ctx.store, ctx.config.profile);
    render(
        users.get(r.identity(), r.id).await,
        StatusCode::OK,
        &r,
        &ctx,
    )
}

/// `POST /Users`: creates the user the body describes (in `odm`, or
/// updates the identity provider's user that holds its userName).
pub async fn create(ctx: Ctx, req: Request) -> Response<Body> {
    let r = ScimRequest::extract(&ctx, &req);
    let profile = ctx.config.profile;
    let users = Users::new(&ctx.store, profile);
    let written = users
        .create(r.identity(), r.body(), |base, body| {
            posted(base, body, profile)
        })
        .await;
    render(written, StatusCode::CREATED, &r, &ctx)
}

/// The user a POST body describes, over `base` (a new user, or in `odm`
/// the identity provider's user of that userName).
pub(super) fn posted(base: &User, body: &Value, profile: Profile) -> Result<User, ScimError> {
    let user = user_resource::from_json(body, base, profile)?;
    user_resource::validate(&user, profile)?;
    Ok(user)
}

/// `current` as a PUT body replaces it: every writable attribute, and
/// `active` only when the body sends it.
pub(super) fn put(current: &User, body: &Value, profile: Profile) -> Result<User, ScimError> {
    let sends_active = body.as_object().is_some_and(|m| {
        m.keys()
            .any(|k| super::values::normalize_name(k) == "active")
    });
    let mut next = user_resource::from_json(body, current, profile)?;
    if !sends_active {
        next.is_active = current.is_active;
    }
    user_resource::validate(&next, profile)?;
    Ok(next)
}

/// `current` with a PatchOp body applied, all its operations or none.
pub(super) fn patched(current: &User, body: &Value, profile: Profile) -> Result<User, ScimError> {
    let next = super::patch::apply(current, body, profile)?;
    user_resource::validate(&next, profile)?;
    Ok(next)
}

/// `PUT /Users/{id}`: replaces every writable attribute.
pub async fn replace(ctx: Ctx, req: Request) -> Response<Body> {
    let r = ScimRequest::extract(&ctx, &req);
    let profile = ctx.config.profile;
    let users = Users::new(&ctx.store, profile);
    let written = users
        .update(
            r.identity(),
            r.id,
            r.precondition(),
            r.body(),
            |cur, body| put(cur, body, profile),
        )
        .await;
    render(written, StatusCode::OK, &r, &ctx)
}

/// `PATCH /Users/{id}`: all operations applied in memory, committed as one write.
pub async fn patch(ctx: Ctx, req: Request) -> Response<Body> {
    let r = ScimRequest::extract(&ctx, &req);
    let profile = ctx.config.profile;
    let users = Users::new(&ctx.store, profile);
    let written = users
        .update(
            r.identity(),
            r.id,
            r.precondition(),
            r.body(),
            |cur, body| patched(cur, body, profile),
        )
        .await;
    render(written, StatusCode::OK, &r, &ctx)
}

/// `DELETE /Users/{id}`: deactivates (`odm`) or removes (`rfc`).
pub async fn delete(ctx: Ctx, req: Request) -> Response<Body> {
    let r = ScimRequest::extract(&ctx, &req);
    let users = Users::new(&ctx.store, ctx.config.profile);
    respond(
        match users
            .delete::<ScimError>(r.identity(), r.id, r.precondition())
            .await
        {
            Ok(()) => Ok(http::empty(StatusCode::NO_CONTENT)),
            Err(failure) => Err(user_error(failure, &r.id_text)),
        },
    )
}

/// A user operation's answer: the user (with its `ETag`, and `Location` on
/// a create), or its failure in SCIM's words.
pub(super) fn render(
    result: Result<User, Failure<ScimError>>,
    status: StatusCode,
    r: &ScimRequest,
    ctx: &Ctx,
) -> Response<Body> {
    match result {
        Ok(user) => resource_response(status, &user, r, ctx.config.profile),
        Err(failure) => user_error(failure, &r.id_text).into_response(),
    }
}

/// A user operation's failure as SCIM says it, naming the user by the id
/// the request's path gave (`id_text`).
pub(super) fn user_error(failure: Failure<ScimError>, id_text: &str) -> ScimError {
    match failure {
        Failure::Auth(f) => f.into(),
        Failure::Forbidden => ScimError::forbidden(),
        Failure::ReadOnly => ScimError::read_only(),
        Failure::NotFound => USER.not_found(id_text),
        Failure::Precondition { current } => USER.precondition_failed(current),
        Failure::Lost => ScimError::new(
            412,
            None,
            "The user changed while this request was applied; read it again.",
        ),
        Failure::Taken { field, attempted } => taken(field, &attempted),
        Failure::Busy { username } => ScimError::new(
            409,
            None,
            format!("userName \"{username}\" is being changed concurrently; retry"),
        ),
        Failure::NotOwned { username } => ScimError::uniqueness(format!(
            "userName \"{username}\" belongs to a user the identity provider does not manage (it was not \
             provisioned through SCIM, or was renamed outside it since), so a POST cannot update it; \
             choose another userName, or send that user's externalId to take it over"
        )),
        Failure::UnknownManager(id) => ScimError::invalid_value(format!(
            "manager: no user has the id \"{id}\""
        )),
        Failure::Refused(e) => e,
        Failure::Store(StoreError::Conflict) => USER.conflict(),
        Failure::Store(e) => e.into(),
        Failure::NoSuchOrg(org) => ScimError::no_such_tenant(&org.to_string()),
        Failure::OutsideDomains { refused, allowed } => {
            ScimError::outside_domains(&refused, &allowed)
        }
        Failure::NotImplemented => ScimError::me_at_tenant(),
        // Group writes and admin lists only: a user operation that answers one is a bug.
        Failure::UnknownMembers(_)
        | Failure::TooManyMembers { .. }
        | Failure::GroupTaken { .. }
        | Failure::Changed => {
            ScimError::server(http::Fault::bug("a user operation failed as a group write"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_name_the_user() {
        assert_eq!(
            user_error(Failure::NotFound, "007").detail,
            "User 007 not found"
        );
        let e = user_error(Failure::Store(StoreError::Conflict), "007");
        assert_eq!(e.status, 409);
        assert!(e.detail.starts_with("The user was changed"), "{}", e.detail);
    }

    #[test]
    fn an_upsert_of_a_record_the_idp_does_not_own_is_a_uniqueness_conflict() {
        let e = user_error(
            Failure::NotOwned {
                username: "new.hire@corp.com".into(),
            },
            "",
        );
        assert_eq!(
            (e.status, e.scim_type),
            (409, Some(crate::scim::ScimType::Uniqueness))
        );
        assert!(e.detail.contains("\"new.hire@corp.com\""), "{}", e.detail);
    }
}
