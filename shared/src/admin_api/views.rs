//! The five operations of `/api/users` and the fallback for everything else.
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde_json::{json, Value};

use super::django;
use super::error::{ApiError, NO_PERMISSION, UNKNOWN_FIELD};
use super::list_query::{ListQuery, OrgSelector};
use super::request::AdminRequest;
use super::update::{self, Scope};
use super::{render, CONTENT_TYPE};
use crate::auth::{self, Caller};
use crate::domain::access::{is_active_member, may_see, OrgScope};
use crate::domain::plan::{ClaimKeys, ReadPlan};
use crate::domain::query::{Claim, Field};
use crate::domain::user::{rules, User};
use crate::http::{self, respond};
use crate::runtime::Ctx;
use crate::store::{Fetched, OrgRef, StoreError, UniqueField, Wanted};

fn ok(body: &Value) -> Response<Body> {
    http::json(StatusCode::OK, CONTENT_TYPE, body)
}

/// What a detail route reads with authentication: its target user.
fn target_of(id: Option<u64>) -> Wanted {
    Wanted {
        users: id.into_iter().collect(),
        ..Wanted::default()
    }
}

fn org_ref(selector: &OrgSelector) -> Option<OrgRef> {
    match selector {
        OrgSelector::Slug(slug) => Some(OrgRef::Slug(slug.clone())),
        OrgSelector::Id(id) => Some(OrgRef::Id(*id)),
        OrgSelector::None | OrgSelector::NoOrg => None,
    }
}

fn resolve_org(selector: &OrgSelector, fetched: &Fetched) -> Result<OrgScope, ApiError> {
    let missing = |name: String| ApiError::NotFound(format!("{name} organization does not exist."));
    match selector {
        OrgSelector::None => Ok(OrgScope::Sandbox),
        OrgSelector::NoOrg => Ok(OrgScope::NoOrg),
        OrgSelector::Slug(_) | OrgSelector::Id(_) => {
            let name = match selector {
                OrgSelector::Slug(slug) => slug.clone(),
                OrgSelector::Id(id) => id.to_string(),
                _ => unreachable!("matched above"),
            };
            let org = fetched.org().ok_or_else(|| missing(name))?;
            Ok(OrgScope::Org {
                slug: org.slug.clone(),
                id: org.id,
            })
        }
    }
}

/// Parses the query and authenticates, reading the org and what `wanted`
/// names in the auth read (for a list in id order, also the user counts).
/// Query errors are raised after authentication.
async fn prepare(
    ctx: &Ctx,
    r: &AdminRequest,
    mut wanted: Wanted,
    list: bool,
) -> Result<(Caller, ListQuery, OrgScope, Fetched), ApiError> {
    r.accept.clone()?;
    let query = ListQuery::parse(&r.query, r.x_organization.as_deref());
    if let Ok(q) = &query {
        wanted.org = org_ref(&q.org);
        wanted.counts = list && id_order_only(q).is_some();
        if list {
            prefetch_pinned(q, &mut wanted);
        }
    }
    let (caller, fetched) = auth::authenticate_with(&ctx.store, &r.credentials, wanted).await?;
    let query = query.map_err(|e| ApiError::List(vec![e.to_string()]))?;
    let scoping = resolve_org(&query.org, &fetched)?;
    Ok((caller, query, scoping, fetched))
}

/// `GET /api/users`
pub async fn list(ctx: Ctx, req: Request) -> Response<Body> {
    list_with(ctx, req, ListOptions::default()).await
}

/// How `GET /api/users` is answered. [`list`] uses the defaults; tests use
/// others to check the planner against a full pass and the page bound.
#[derive(Debug, Clone, Copy)]
pub struct ListOptions {
    /// Read only the users the query can match ([`ReadPlan`]); `false` reads
    /// the whole directory and filters it, which must give the same answer.
    pub plan: bool,
    /// The largest `results` of one page, in bytes as they travel inside the
    /// Lambda response: see [`MAX_PAGE_BYTES`].
    pub max_page_bytes: usize,
}

impl Default for ListOptions {
    fn default() -> Self {
        ListOptions {
            plan: true,
            max_page_bytes: MAX_PAGE_BYTES,
        }
    }
}

/// Lambda refuses responses over 6 MB and API Gateway turns that into a bare
/// 500, so a page (`page_size=all`, or a huge `page_size`) whose rows would
/// pass this bound is refused with a 400 instead. Not truncated with a
/// `next` link: cvat-sdk's paging helper asks for page 2, 3, ... with the
/// same `page_size`, which for `all` has no page 2, and a client that asked
/// for everything must never take part of the directory for all of it.
pub const MAX_PAGE_BYTES: usize = 5 * 1024 * 1024;

/// [`list`] with other options.
pub async fn list_with(ctx: Ctx, req: Request, options: ListOptions) -> Response<Body> {
    let r = AdminRequest::extract(&ctx, &req);
    respond(list_users(&ctx, &r, options).await)
}

/// How many pinned users and usernames a list may add to the auth read:
/// enough for an `==` or a short `in`, few enough that a caller who turns out
/// to see only themselves made the read barely larger.
const AUTH_READ_PINS: usize = 10;

/// A query pinning a few users by id or username has them (and the claims of
/// those usernames) read with authentication, strongly consistent.
fn prefetch_pinned(query: &ListQuery, wanted: &mut Wanted) {
    if let Some((ids, claims)) = query.read_plan().prefetch(AUTH_READ_PINS) {
        wanted.users.extend(ids);
        wanted.claims.extend(
            claims
                .iter()
                .map(|(claim, value)| (UniqueField::from(*claim), value.clone())),
        );
    }
}

/// An admin's unfiltered list in id order can be served from the user counts
/// and one GSI1 query reading only up to the requested page.
fn id_order_only(query: &ListQuery) -> Option<bool> {
    let unfiltered = query.username.is_none()
        && query.first_name.is_none()
        && query.last_name.is_none()
        && query.is_active.is_none()
        && query.search.is_empty()
        && query.filter.is_none()
        && query.org == OrgSelector::None;
    match query.sort.as_slice() {
        [(Field::Id, descending)] if unfiltered => Some(*descending),
        _ => None,
    }
}

async fn list_users(
    ctx: &Ctx,
    r: &AdminRequest,
    options: ListOptions,
) -> Result<Response<Body>, ApiError> {
    let (caller, query, scoping, fetched) = prepare(ctx, r, Wanted::default(), true).await?;
    let me = &caller.user;
    let admin = me.is_admin();
    if let (true, Some(descending)) = (admin, id_order_only(&query)) {
        // The counts per id bucket say where the page starts: it reads its
        // own users (and at most a bucket's worth before them), at any depth.
        let directory = fetched.bucket_counts().cloned().unwrap_or_default();
        let total = directory.counts().total as usize;
        let page = django::paginate(total, &query.page, query.page_size)
            .map_err(|_| ApiError::NotFound("Invalid page.".into()))?;
        let rows = ctx
            .store
            .users_from(
                &directory,
                page.start as u64,
                descending,
                page.end - page.start,
                false,
            )
            .await?;
        return list_page(r, me, &rows, total, &page, options.max_page_bytes);
    }
    if options.plan
        && admin
        && matches!(scoping, OrgScope::Sandbox)
        && query.read_plan() == ReadPlan::SearchIndex
    {
        // Boxed: its reads would make every list's future much larger.
        return Box::pin(search_list(ctx, r, me, &query, options.max_page_bytes)).await;
    }
    let candidates: Vec<User> = match &scoping {
        // A non-admin without an org sees only themselves: no read needed.
        OrgScope::Sandbox if !admin => vec![me.clone()],
        OrgScope::NoOrg if !admin => [me.clone()]
            .into_iter()
            .filter(|u| u.memberships.is_empty())
            .collect(),
        OrgScope::Org { id, .. } if !admin && !is_active_member(me, *id) => {
            return Err(ApiError::PermissionDenied(NO_PERMISSION))
        }
        _ => {
            let mut read = if options.plan {
                planned_candidates(ctx, &query, &scoping, &fetched).await?
            } else {
                ctx.store.all_users().await?
            };
            read.retain(|u| in_scope(u, &scoping));
            read
        }
    };
    let mut users: Vec<User> = candidates
        .into_iter()
        .filter(|u| query.matches(u))
        .collect();
    query.sort(&mut users);
    let page = django::paginate(users.len(), &query.page, query.page_size)
        .map_err(|_| ApiError::NotFound("Invalid page.".into()))?;
    list_page(
        r,
        me,
        &users[page.start..page.end],
        users.len(),
        &page,
        options.max_page_bytes,
    )
}

/// An admin's list that must look at every user (search, a sort other than
/// by id, filters that pin nobody): filtered and sorted over the search
/// index, which holds only the fields these need, then the page's users
/// read in full. When the page is large against the directory (reading its
/// users one by one would cost more than the rest of a pass over GSI1), it
/// is a pass over GSI1 after all.
async fn search_list(
    ctx: &Ctx,
    r: &AdminRequest,
    me: &User,
    query: &ListQuery,
    max_page_bytes: usize,
) -> Result<Response<Body>, ApiError> {
    let before = ctx.store.metrics().capacity_units();
    let mut rows = ctx.store.user_rows().await?;
    let pass = ctx.store.metrics().capacity_units() - before;
    rows.retain(|r| query.matches(r));
    query.sort(&mut rows);
    let page = django::paginate(rows.len(), &query.page, query.page_size)
        .map_err(|_| ApiError::NotFound("Invalid page.".into()))?;
    let ids: Vec<u64> = rows[page.start..page.end].iter().map(|r| r.id).collect();
    // A user read by key costs half a unit; GSI1 holds about three times
    // what the search index does, so a pass over it costs about 3 x `pass`
    // (2.5 x, to err towards the pass, whose cost does not depend on guesses).
    let users = if ids.len() as f64 * 0.5 <= 2.5 * pass {
        ctx.store.users_in_order(&ids).await?
    } else {
        let mut all: std::collections::HashMap<u64, User> = ctx
            .store
            .all_users()
            .await?
            .into_iter()
            .map(|u| (u.id, u))
            .collect();
        ids.iter().filter_map(|id| all.remove(id)).collect()
    };
    list_page(r, me, &users, rows.len(), &page, max_page_bytes)
}

/// Whether a user belongs in a list scoped by `scoping` (any membership of
/// the org counts, active or not).
fn in_scope(user: &User, scoping: &OrgScope) -> bool {
    match scoping {
        OrgScope::Sandbox => true,
        OrgScope::NoOrg => user.memberships.is_empty(),
        OrgScope::Org { id, .. } => user.memberships.iter().any(|m| m.org_id == *id),
    }
}

/// The users a list reads before filtering: those its query pins (by key or
/// id range), else the org's members, else everyone. Any superset of the
/// matches gives the same answer; this one is read in the fewest units.
async fn planned_candidates(
    ctx: &Ctx,
    query: &ListQuery,
    scoping: &OrgScope,
    fetched: &Fetched,
) -> Result<Vec<User>, ApiError> {
    let plan = query.read_plan();
    let prefetched = plan.prefetch(AUTH_READ_PINS).is_some();
    Ok(match (&plan, scoping) {
        (ReadPlan::Keys { ids, claims }, _) => {
            pinned_users(ctx, ids, claims, prefetched.then_some(fetched)).await?
        }
        (_, OrgScope::Org { slug, .. }) => {
            let members = ctx.store.org_member_ids(slug).await?;
            ctx.store.users_by_ids(&members).await?
        }
        (ReadPlan::IdRange { low, high }, _) => ctx.store.users_in_id_range(*low, *high).await?,
        // (JSON Logic names no modification time: a `Modified` plan is SCIM's.)
        (ReadPlan::SearchIndex | ReadPlan::Pass | ReadPlan::Modified { .. }, _) => {
            ctx.store.all_users().await?
        }
    })
}

/// The users with these ids or holding these claims. `prefetched`: the
/// auth read that already holds the users of `ids` and the `claims`.
async fn pinned_users(
    ctx: &Ctx,
    ids: &std::collections::BTreeSet<u64>,
    claims: &ClaimKeys,
    prefetched: Option<&Fetched>,
) -> Result<Vec<User>, ApiError> {
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
                    owners.extend(ctx.store.claim_owners(kind.into(), &values).await?);
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
    users.extend(ctx.store.users_by_ids(&unread).await?);
    users.sort_by_key(|u| u.id);
    users.dedup_by_key(|u| u.id);
    Ok(users)
}

/// The page's body, or a 400 when its rows would not fit in a Lambda
/// response (measured as they are rendered, so a huge list stops early).
fn list_page(
    r: &AdminRequest,
    me: &User,
    rows: &[User],
    count: usize,
    page: &django::Page,
    max_bytes: usize,
) -> Result<Response<Body>, ApiError> {
    let origin = r.origin.as_str();
    let base = format!("{origin}/api/users");
    let (next, previous) = django::page_links(&base, &r.query, page);
    let mut results = Vec::with_capacity(rows.len());
    let mut bytes = 0;
    for user in rows {
        let row = render::shaped(user, origin, me.is_superuser);
        bytes += embedded_len(&row);
        if bytes > max_bytes {
            return Err(page_too_large(rows.len(), max_bytes));
        }
        results.push(row);
    }
    Ok(ok(&json!({
        "count": count,
        "next": next,
        "previous": previous,
        "results": results,
    })))
}

/// Bytes a row takes in the Lambda response, where the JSON body is itself
/// a JSON string: every `"` and `\` is escaped once more.
fn embedded_len(row: &Value) -> usize {
    let text = row.to_string();
    let escapes = text.bytes().filter(|b| matches!(b, b'"' | b'\\')).count();
    // The comma between rows.
    text.len() + escapes + 1
}

/// DRF's shape for an invalid parameter, naming the way out.
fn page_too_large(rows: usize, max_bytes: usize) -> ApiError {
    ApiError::field(
        "page_size",
        &format!(
            "This page would hold {rows} users, more than one response can carry \
             ({} MiB); ask for smaller pages with page_size=<n> and page=1, 2, ...",
            max_bytes.div_ceil(1024 * 1024)
        ),
    )
}

/// `GET /api/users/self`
pub async fn retrieve_self(ctx: Ctx, req: Request) -> Response<Body> {
    let r = AdminRequest::extract(&ctx, &req);
    respond(self_user(&ctx, &r).await)
}

async fn self_user(ctx: &Ctx, r: &AdminRequest) -> Result<Response<Body>, ApiError> {
    r.accept.clone()?;
    let (caller, _) =
        auth::authenticate_with(&ctx.store, &r.credentials, Wanted::default()).await?;
    Ok(ok(&render::full(&caller.user, &r.origin)))
}

/// `GET /api/users/{id}`
pub async fn retrieve(ctx: Ctx, req: Request) -> Response<Body> {
    let r = AdminRequest::extract(&ctx, &req);
    respond(retrieve_user(&ctx, &r).await)
}

async fn retrieve_user(ctx: &Ctx, r: &AdminRequest) -> Result<Response<Body>, ApiError> {
    let id = r.id;
    let (caller, query, scoping, fetched) = prepare(ctx, r, target_of(id), false).await?;
    let me = &caller.user;
    let target = visible_target(me, id, &scoping, &fetched)?;
    // DRF applies the list filters inside get_object: a target they exclude is
    // 404. Only for a target the caller may see, or the filters are an oracle.
    let target = target
        .filter(|u| query.matches(*u))
        .ok_or_else(ApiError::not_found)?;
    let full_shape = me.id == target.id || me.is_superuser;
    Ok(ok(&render::shaped(target, &r.origin, full_shape)))
}

/// The target of a detail route, once the caller is known to be allowed to see
/// it: 403 (the same whether the user exists or not) for one they may not see,
/// `None` (a 404 to the caller) for a missing user they could have seen.
fn visible_target<'a>(
    me: &User,
    id: Option<u64>,
    scoping: &OrgScope,
    fetched: &'a Fetched,
) -> Result<Option<&'a User>, ApiError> {
    let target = id.and_then(|id| fetched.user(id));
    if may_see(me, id, target, scoping) {
        Ok(target)
    } else {
        Err(ApiError::PermissionDenied(NO_PERMISSION))
    }
}

/// `PATCH /api/users/{id}`
pub async fn partial_update(ctx: Ctx, req: Request) -> Response<Body> {
    let r = AdminRequest::extract(&ctx, &req);
    respond(update_user(&ctx, &r).await)
}

async fn update_user(ctx: &Ctx, r: &AdminRequest) -> Result<Response<Body>, ApiError> {
    let id = r.id;
    let (caller, _, scoping, fetched) = prepare(ctx, r, target_of(id), false).await?;
    let me = &caller.user;
    let target = visible_target(me, id, &scoping, &fetched)?
        .cloned()
        .ok_or_else(ApiError::not_found)?;
    let is_self = me.id == target.id;
    if caller.read_only {
        return Err(ApiError::PermissionDenied(NO_PERMISSION));
    }
    let body = r.body()?;
    let mut scopes = Vec::new();
    for key in body.keys() {
        scopes.push(scope_for(key)?);
    }
    for scope in scopes {
        let allowed = me.is_admin() || (scope == Scope::PersonalData && is_self);
        if !allowed {
            return Err(ApiError::PermissionDenied(NO_PERMISSION));
        }
    }
    let changes = update::validate(&body)?;
    let updated = ctx
        .store
        .update_user_with(target, false, |current| {
            let mut changed = current.clone();
            changes.apply(&mut changed);
            Ok::<_, StoreError>(changed)
        })
        .await
        .map_err(|e| match e {
            StoreError::Taken(field) => taken(field),
            other => other.into(),
        })?;
    let full_shape = is_self || me.is_superuser;
    Ok(ok(&render::shaped(&updated, &r.origin, full_shape)))
}

fn scope_for(key: &str) -> Result<Scope, ApiError> {
    update::scope_of(key).ok_or(ApiError::PermissionDenied(UNKNOWN_FIELD))
}

fn taken(field: UniqueField) -> ApiError {
    match field {
        UniqueField::Username => ApiError::field("username", rules::USERNAME_TAKEN),
        UniqueField::Email => ApiError::field("email", rules::EMAIL_TAKEN),
        UniqueField::ExternalId => ApiError::field(
            "external_id",
            "A user with that external id already exists.",
        ),
        // The admin API writes no groups.
        UniqueField::GroupName | UniqueField::GroupExternalId => ApiError::Conflict,
    }
}

/// `DELETE /api/users/{id}`
pub async fn destroy(ctx: Ctx, req: Request) -> Response<Body> {
    let r = AdminRequest::extract(&ctx, &req);
    respond(destroy_user(&ctx, &r).await)
}

async fn destroy_user(ctx: &Ctx, r: &AdminRequest) -> Result<Response<Body>, ApiError> {
    let id = r.id;
    let (caller, _, _, fetched) = prepare(ctx, r, target_of(id), false).await?;
    let me = &caller.user;
    // Only yourself or, as an admin, anyone: decided before looking the user
    // up, so that a 404 never tells a non-admin that an id is free.
    if !(me.is_admin() || id == Some(me.id)) {
        return Err(ApiError::PermissionDenied(NO_PERMISSION));
    }
    let target = id
        .and_then(|id| fetched.user(id))
        .cloned()
        .ok_or_else(ApiError::not_found)?;
    if caller.read_only {
        return Err(ApiError::PermissionDenied(NO_PERMISSION));
    }
    // The user may change before the delete lands (a new token, a rename):
    // then it deletes what is there now.
    ctx.store
        .delete_user_with(target, false, |_| Ok::<_, ApiError>(()))
        .await?;
    Ok(http::empty(StatusCode::NO_CONTENT))
}

/// Any other method or path under `/api`: 405 on our routes (after
/// authentication, as DRF does), 404 elsewhere, in DRF's shape.
pub async fn fallback(ctx: Ctx, req: Request) -> Response<Body> {
    let r = AdminRequest::extract(&ctx, &req);
    respond(fallback_response(&ctx, &r).await)
}

/// The methods each route allows; `None` for paths that are not ours.
fn allowed_methods(path: &str) -> Option<&'static str> {
    let rest = path.strip_prefix("/api/users")?;
    match rest {
        "" | "/self" => Some("GET"),
        _ => {
            let id = rest.strip_prefix('/')?;
            let is_id = !id.is_empty() && !id.contains('/') && !id.contains('.');
            is_id.then_some("GET, PATCH, DELETE")
        }
    }
}

async fn fallback_response(ctx: &Ctx, r: &AdminRequest) -> Result<Response<Body>, ApiError> {
    let Some(allow) = allowed_methods(&r.path) else {
        return Err(ApiError::not_found());
    };
    r.accept.clone()?;
    auth::authenticate_with(&ctx.store, &r.credentials, Wanted::default()).await?;
    let method = &r.method;
    if allow.split(", ").any(|m| m == method.as_str()) && method != Method::HEAD {
        // A routed method reaching the fallback means the router is out of date.
        return Err(ApiError::internal(format!(
            "{method} {} is not routed",
            r.path
        )));
    }
    Err(ApiError::MethodNotAllowed(method.to_string(), allow))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_and_their_methods() {
        let cases = [
            ("/api/users", Some("GET")),
            ("/api/users/self", Some("GET")),
            ("/api/users/12", Some("GET, PATCH, DELETE")),
            ("/api/users/abc", Some("GET, PATCH, DELETE")),
            ("/api/users/", None),
            ("/api/users/1/", None),
            ("/api/users/1.json", None),
            ("/api/nothing", None),
        ];
        for (path, want) in cases {
            assert_eq!(allowed_methods(path), want, "{path}");
        }
    }
}
