//! The SCIM operations on `/api/v1/scim`, one public function per Lambda.
use lambda_http::http::{HeaderValue, Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde_json::{json, Value};

use super::filter::{self, Attr, Filter};
use super::list_params::ListParams;
use super::request::{admin, json_body, path_id, writable};
use super::resource::{self, Projection};
use super::resource_type::{json_response, list_response, ResourceType};
use super::{cursor, discovery, ScimError, LIST_SCHEMA, USER_SCHEMA};
use crate::auth::Caller;
use crate::config::Config;
use crate::domain::user::{Group, User};
use crate::http::{self, respond};
use crate::runtime::{Ctx, Profile};
use crate::store::{Fetched, StoreError, UniqueField, Wanted};

type Outcome = Result<Response<Body>, ScimError>;
const USER: ResourceType = ResourceType::User;

/// A user resource with its `ETag` (and `Location`, on create).
fn resource_response(
    status: StatusCode,
    user: &User,
    origin: &str,
    projection: &Projection,
) -> Response<Body> {
    let body = projection.apply(resource::to_json(user, origin));
    USER.response(status, &body, user.id, user.version, origin)
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

/// The target user of a detail route, read with authentication; 404 if absent
/// or hidden by the profile, unless `include_hidden` (ODM lets deactivated users be patched).
async fn target(
    ctx: &Ctx,
    req: &Request,
    include_hidden: bool,
) -> Result<(Caller, User), ScimError> {
    let id = path_id(req);
    let wanted = Wanted {
        users: id.into_iter().collect(),
        ..Wanted::default()
    };
    let (caller, fetched) = admin(ctx, req, wanted).await?;
    let raw = req
        .uri()
        .path()
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_string();
    let id = id.ok_or_else(|| USER.not_found(&raw))?;
    let user = fetched
        .user(id)
        .filter(|u| include_hidden || visible(ctx.config.profile, u))
        .cloned()
        .ok_or_else(|| USER.not_found(id))?;
    Ok((caller, user))
}

fn check_if_match(req: &Request, user: &User) -> Result<(), ScimError> {
    USER.check_if_match(http::header_str(req.headers(), "if-match"), user.version)
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
    projection: Projection,
}

impl Query {
    /// The users query `params` ask for: the filter parsed with a User's
    /// attributes, the page by `startIndex` or by `cursor`.
    pub(super) fn new(params: &ListParams, config: &Config) -> Result<Query, ScimError> {
        let filter = params.filter().map(filter::parse).transpose()?;
        let paging = match (params.cursor.as_deref(), params.start_index) {
            (None, _) => Paging::Index(params.start()),
            (Some(_), Some(_)) => {
                return Err(ScimError::invalid_value(
                    "startIndex and cursor cannot be combined: page by index or by cursor \
                     (RFC 9865), not both.",
                ))
            }
            (Some(raw), None) => Paging::Cursor(open_cursor(raw, filter.as_ref(), config)?),
        };
        Ok(Query {
            filter,
            paging,
            count: params.count(),
            projection: params.projection.clone(),
        })
    }

    /// The plan for a filter that pins one user down by a unique attribute
    /// (itself or as a member of `and`s at any depth, see
    /// [`Filter::lookup`]): read that user with authentication, by id or
    /// through its claim, then evaluate the whole filter on it alone.
    fn lookup(&self) -> Option<Lookup> {
        let (attr, value) = self.filter.as_ref()?.lookup()?;
        let field = match attr {
            Attr::Id => return Some(id_lookup(&value)),
            Attr::UserName => UniqueField::Username,
            Attr::EmailValue => UniqueField::Email,
            Attr::ExternalId => UniqueField::ExternalId,
            _ => return None,
        };
        Some(Lookup::Claim(field, value))
    }
}

/// An `id eq` lookup: ids are canonical decimals, so any other string
/// (`"abc"`, `"007"`) names no user and needs no read at all.
fn id_lookup(value: &str) -> Lookup {
    match value.parse::<u64>() {
        Ok(id) if id.to_string() == value => Lookup::Id(id),
        _ => Lookup::Nothing,
    }
}

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

/// A filter that names one user by a unique attribute.
enum Lookup {
    Id(u64),
    Claim(UniqueField, String),
    /// A value no user can have: the answer is empty without a read.
    Nothing,
}

impl Lookup {
    /// What the auth read fetches for this lookup.
    fn want(&self, wanted: &mut Wanted) {
        match self {
            Lookup::Id(id) => wanted.users.push(*id),
            Lookup::Claim(field, value) => wanted.claims.push((*field, value.clone())),
            Lookup::Nothing => {}
        }
    }
}

/// The one user a lookup names, if any (a claim costs one more read). A free
/// function, not a method: the IAM analysis (tests/infra) follows calls by name.
async fn resolve(ctx: &Ctx, lookup: &Lookup, fetched: &Fetched) -> Result<Option<User>, ScimError> {
    Ok(match lookup {
        Lookup::Id(id) => fetched.user(*id).cloned(),
        Lookup::Claim(field, value) => match fetched.claim_owner(*field, value) {
            Some(owner) => ctx.store.get_user(owner).await?,
            None => None,
        },
        Lookup::Nothing => None,
    })
}

/// How a users query reads, planned before the auth read.
pub(super) struct UserPlan {
    /// The user the filter pins down by key, if it does.
    lookup: Option<Lookup>,
}

impl UserPlan {
    /// The plan of `query`, and what it adds to the auth read: the user or
    /// claim a lookup names, the counts an unfiltered index page needs.
    pub(super) fn new(query: &Query, wanted: &mut Wanted) -> UserPlan {
        let lookup = query.lookup();
        wanted.counts |= query.filter.is_none() && matches!(query.paging, Paging::Index(_));
        if let Some(lookup) = &lookup {
            lookup.want(wanted);
        }
        UserPlan { lookup }
    }
}

/// Lists users: by key when the filter pins one down (≤ 2 round trips with
/// the auth read); a cursor page with one GSI1 query that starts after the
/// cursor; an unfiltered index page with one query reading up to the page;
/// else one pass over GSI1.
async fn run_query(ctx: &Ctx, req: &Request, query: Result<Query, ScimError>) -> Outcome {
    let mut wanted = Wanted::default();
    let plan = query.as_ref().ok().map(|q| UserPlan::new(q, &mut wanted));
    let (_, fetched) = admin(ctx, req, wanted).await?;
    let query = query?;
    let Some(plan) = plan else {
        return Err(ScimError::server(http::Fault::bug(
            "a query without a plan",
        )));
    };
    let origin = ctx.origin(req);
    match query.paging {
        Paging::Cursor(after) => match &plan.lookup {
            Some(lookup) => {
                let after_cursor = matching_lookup(ctx, &query, lookup, &fetched)
                    .await?
                    .into_iter()
                    .filter(|u| u.id > after)
                    .collect();
                Ok(cursor_list(ctx, &query, after, after_cursor, None, &origin))
            }
            None => cursor_page(ctx, &query, after, &origin).await,
        },
        Paging::Index(start) => {
            let window = users_window(ctx, &query, &plan, &fetched, start - 1, query.count).await?;
            let page = window
                .users
                .iter()
                .map(|u| query.projection.apply(resource::to_json(u, &origin)))
                .collect();
            Ok(list_response(window.total, start, page))
        }
    }
}

/// The visible users a lookup names that match the whole filter (none or one).
async fn matching_lookup(
    ctx: &Ctx,
    query: &Query,
    lookup: &Lookup,
    fetched: &Fetched,
) -> Result<Vec<User>, ScimError> {
    Ok(resolve(ctx, lookup, fetched)
        .await?
        .into_iter()
        .filter(|u| visible(ctx.config.profile, u))
        .filter(|u| query.filter.as_ref().is_none_or(|f| f.matches(u)))
        .collect())
}

/// A window of an index-paged users query: how many users match in all, and
/// those at positions `skip..skip + take` (0-based, in id order).
pub(super) struct UserWindow {
    pub(super) total: usize,
    pub(super) users: Vec<User>,
}

/// The users at `skip..skip + take` of what `query` matches. A lookup reads
/// the one user it names; unfiltered, the counts read with auth give the
/// total and one GSI1 query reads no further than the window (and at most a
/// bucket's worth before it); any other filter is one pass over GSI1.
pub(super) async fn users_window(
    ctx: &Ctx,
    query: &Query,
    plan: &UserPlan,
    fetched: &Fetched,
    skip: usize,
    take: usize,
) -> Result<UserWindow, ScimError> {
    let active_only = ctx.config.profile == Profile::Odm;
    let matching: Vec<User> = match (&plan.lookup, &query.filter) {
        (Some(lookup), _) => matching_lookup(ctx, query, lookup, fetched).await?,
        (None, None) => {
            // The counts per id bucket (read with auth) say where the window
            // starts: it reads its own users, and at most a bucket's worth
            // before them.
            let directory = fetched.directory().cloned().unwrap_or_default();
            let counts = directory.counts();
            let total = if active_only {
                counts.active
            } else {
                counts.total
            } as usize;
            let users = ctx
                .store
                .users_from(&directory, skip as u64, false, take, active_only)
                .await?;
            return Ok(UserWindow { total, users });
        }
        (None, Some(filter)) => ctx
            .store
            .all_users()
            .await?
            .into_iter()
            .filter(|u| visible(ctx.config.profile, u))
            .filter(|u| filter.matches(u))
            .collect(),
    };
    let total = matching.len();
    let users = matching.into_iter().skip(skip).take(take).collect();
    Ok(UserWindow { total, users })
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
async fn cursor_page(ctx: &Ctx, query: &Query, after: u64, origin: &str) -> Outcome {
    let active_only = ctx.config.profile == Profile::Odm;
    let start = (after > 0).then_some(after);
    let (users, stopped_at) = match &query.filter {
        // `count=0`: no users, and the cursor stays where it was.
        _ if query.count == 0 => (Vec::new(), Some(after)),
        None => {
            let page = ctx
                .store
                .users_page_after(start, query.count, active_only)
                .await?;
            (page.users, page.next_after)
        }
        Some(f) => {
            let want = query.count + 1;
            let limit = FILTERED_READ_LIMIT.max(want);
            let slice = ctx
                .store
                .users_after(start, want, active_only, limit, |u| f.matches(u))
                .await?;
            (slice.users, slice.stopped_at)
        }
    };
    Ok(cursor_list(ctx, query, after, users, stopped_at, origin))
}

/// A cursor page of `found` (users after `after`, in id order, possibly one
/// more than the page holds). `nextCursor` is absent only on the last page
/// (RFC 9865 §2): there is one when more users were found than fit, or when
/// the read stopped at `stopped_at` before the end. No `startIndex`;
/// `totalResults` only when this page is the whole answer (the first page,
/// and the last): RFC 9865 lets a cursor page omit it, and counting would
/// cost a read that grows with the directory. Clients that did not read
/// ServiceProviderConfig still find it on a one-page answer.
fn cursor_list(
    ctx: &Ctx,
    query: &Query,
    after: u64,
    mut found: Vec<User>,
    stopped_at: Option<u64>,
    origin: &str,
) -> Response<Body> {
    let more = found.len() > query.count;
    found.truncate(query.count);
    let next = if more {
        Some(found.last().map_or(after, |u| u.id))
    } else {
        stopped_at
    };
    let page: Vec<Value> = found
        .iter()
        .map(|u| query.projection.apply(resource::to_json(u, origin)))
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
    let query =
        ListParams::from_query(&http::query_pairs(&req)).and_then(|p| Query::new(&p, &ctx.config));
    // Boxed: the plans' store calls make a large future, and callers that
    // hold several handlers' futures (the runtime, tests) keep it on their stack.
    respond(Box::pin(run_query(&ctx, &req, query)).await)
}

/// `POST /Users/.search`
pub(super) async fn search_users(ctx: Ctx, req: Request) -> Response<Body> {
    let query = json_body(&req)
        .and_then(|b| ListParams::from_search_request(&b))
        .and_then(|p| Query::new(&p, &ctx.config));
    respond(Box::pin(run_query(&ctx, &req, query)).await)
}

// ---------------------------------------------------------------- resources

/// `GET /Users/{id}`
pub async fn get(ctx: Ctx, req: Request) -> Response<Body> {
    respond(get_user(&ctx, &req).await)
}

async fn get_user(ctx: &Ctx, req: &Request) -> Outcome {
    let (_, user) = target(ctx, req, false).await?;
    let pairs = http::query_pairs(req);
    let projection =
        Projection::from_lists(pairs.last("attributes"), pairs.last("excludedAttributes"));
    Ok(resource_response(
        StatusCode::OK,
        &user,
        &ctx.origin(req),
        &projection,
    ))
}

fn projection_of(req: &Request) -> Projection {
    let pairs = http::query_pairs(req);
    Projection::from_lists(pairs.last("attributes"), pairs.last("excludedAttributes"))
}

/// `POST /Users`
pub async fn create(ctx: Ctx, req: Request) -> Response<Body> {
    respond(create_user(&ctx, &req).await)
}

async fn create_user(ctx: &Ctx, req: &Request) -> Outcome {
    let (caller, _) = admin(ctx, req, Wanted::default()).await?;
    writable(&caller)?;
    let body = json_body(req)?;
    let mut fresh = User::new("");
    fresh.groups = vec![Group::User];
    // Whatever SCIM creates belongs to the identity provider: only such a
    // record may later be updated by a POST that names its userName.
    fresh.idp_owned = true;
    let user = resource::from_json(&body, &fresh)?;
    resource::validate(&user)?;
    let origin = ctx.origin(req);
    let projection = projection_of(req);
    match ctx.store.create_user(user.clone()).await {
        Ok(created) => Ok(resource_response(
            StatusCode::CREATED,
            &created,
            &origin,
            &projection,
        )),
        // ODM: a POST naming an existing userName updates that user, if it is the IdP's.
        Err(StoreError::Taken(UniqueField::Username)) if ctx.config.profile == Profile::Odm => {
            let updated = update_existing(ctx, &user, &body).await?;
            Ok(resource_response(
                StatusCode::CREATED,
                &updated,
                &origin,
                &projection,
            ))
        }
        Err(StoreError::Taken(field)) => Err(taken(field, &user)),
        Err(e) => Err(e.into()),
    }
}

/// ODM's upsert: the create found the userName `posted` names taken, so the
/// body updates the user that holds it — if that user is the identity
/// provider's ([`may_upsert`]). Each step is one atomic write or a read, so a
/// failure anywhere leaves either nothing or the whole update behind, and the
/// same POST can be sent again.
async fn update_existing(ctx: &Ctx, posted: &User, body: &Value) -> Result<User, ScimError> {
    let username = &posted.username;
    let busy = || {
        ScimError::new(
            409,
            None,
            format!("userName \"{username}\" is being changed concurrently; retry"),
        )
    };
    // None: deleted or renamed between the failed create and this read.
    let existing = ctx
        .store
        .user_by_claim(UniqueField::Username, username)
        .await?
        .ok_or_else(busy)?;
    // A POST names no version: losing every race is a conflict, not a 412.
    // The ownership check runs on every fresh read, so a rename that lands
    // between the read and the write is seen.
    write_with(ctx, None, existing, |cur| {
        may_upsert(cur, posted)?;
        let mut next = resource::from_json(body, cur)?;
        if !cur.idp_owned {
            adopt(&mut next);
        }
        Ok(next)
    })
    .await
    .map_err(|e| if e.status == 412 { busy() } else { e })
}

/// Whether an ODM POST of `posted` may update `holder`, the user that holds
/// its userName (up to folding). Only if the identity provider owns the
/// record (SCIM made it and nobody else renamed it since), or the body names
/// the holder's own `externalId`, which only the IdP that provisioned it
/// knows. Otherwise anyone who could take a name — a user renaming themselves
/// through the admin API to the address of a hire the IdP will provision, a
/// local superuser called `admin` — would have the IdP's user joined to their
/// account, keeping their password, tokens, groups and memberships.
fn may_upsert(holder: &User, posted: &User) -> Result<(), ScimError> {
    let same_external_id = posted.external_id.is_some() && posted.external_id == holder.external_id;
    if holder.idp_owned || same_external_id {
        return Ok(());
    }
    Err(ScimError::uniqueness(format!(
        "userName \"{}\" belongs to a user the identity provider does not manage (it was not \
         provisioned through SCIM, or was renamed outside it since), so a POST cannot update it; \
         choose another userName, or send that user's externalId to take it over",
        posted.username
    )))
}

/// An IdP takes over a record it did not provision (its POST named the
/// record's `externalId`): from now on it is the IdP's, and the password and
/// tokens it had — issued to whoever held the record before — stop working.
fn adopt(user: &mut User) {
    user.revoke_credentials();
    user.idp_owned = true;
}

/// Why an optimistic write did not land: the store's reason, or the request's.
enum WriteFailure {
    Store(StoreError),
    Scim(ScimError),
}

impl From<StoreError> for WriteFailure {
    fn from(e: StoreError) -> Self {
        WriteFailure::Store(e)
    }
}

impl From<ScimError> for WriteFailure {
    fn from(e: ScimError) -> Self {
        WriteFailure::Scim(e)
    }
}

impl WriteFailure {
    /// A lost race is a 412 (the client pinned a version with `If-Match`, or
    /// the retries on fresh reads are spent); a user deleted meanwhile, 404.
    fn into_scim(self, id: u64, attempted: Option<&User>) -> ScimError {
        match self {
            WriteFailure::Scim(e) => e,
            WriteFailure::Store(StoreError::Taken(field)) => {
                taken(field, attempted.unwrap_or(&User::new("")))
            }
            WriteFailure::Store(StoreError::Conflict) => ScimError::new(
                412,
                None,
                "The user changed while this request was applied; read it again.",
            ),
            WriteFailure::Store(StoreError::NotFound) => USER.not_found(id),
            WriteFailure::Store(other) => other.into(),
        }
    }
}

/// Writes `change(current)` over `current`, retrying on a fresh read when
/// another write won the race, unless the client pinned a version with
/// `If-Match` (`req`; then a lost race is a 412).
async fn write_with<F>(
    ctx: &Ctx,
    req: Option<&Request>,
    current: User,
    change: F,
) -> Result<User, ScimError>
where
    F: Fn(&User) -> Result<User, ScimError>,
{
    let pinned = req.is_some_and(|r| http::header_str(r.headers(), "if-match").is_some());
    let id = current.id;
    let mut attempted = None;
    ctx.store
        .update_user_with(current, pinned, |cur| {
            if let Some(req) = req {
                check_if_match(req, cur)?;
            }
            let changed = change(cur)?;
            resource::validate(&changed)?;
            attempted = Some(changed.clone());
            Ok::<_, WriteFailure>(changed)
        })
        .await
        .map_err(|e| e.into_scim(id, attempted.as_ref()))
}

/// `PUT /Users/{id}`: replaces every writable attribute.
pub async fn replace(ctx: Ctx, req: Request) -> Response<Body> {
    respond(replace_user(&ctx, &req).await)
}

async fn replace_user(ctx: &Ctx, req: &Request) -> Outcome {
    let (caller, current) = target(ctx, req, ctx.config.profile == Profile::Odm).await?;
    writable(&caller)?;
    let body = json_body(req)?;
    let sends_active = body.as_object().is_some_and(|m| {
        m.keys()
            .any(|k| super::values::normalize_name(k) == "active")
    });
    let updated = write_with(ctx, Some(req), current, |cur| {
        let mut next = resource::from_json(&body, cur)?;
        if !sends_active {
            next.is_active = cur.is_active;
        }
        Ok(next)
    })
    .await?;
    Ok(resource_response(
        StatusCode::OK,
        &updated,
        &ctx.origin(req),
        &projection_of(req),
    ))
}

/// `PATCH /Users/{id}`: all operations applied in memory, committed as one write.
pub async fn patch(ctx: Ctx, req: Request) -> Response<Body> {
    respond(patch_user(&ctx, &req).await)
}

async fn patch_user(ctx: &Ctx, req: &Request) -> Outcome {
    let (caller, current) = target(ctx, req, ctx.config.profile == Profile::Odm).await?;
    writable(&caller)?;
    let body = json_body(req)?;
    let updated = write_with(ctx, Some(req), current, |cur| {
        super::patch::apply(cur, &body)
    })
    .await?;
    Ok(resource_response(
        StatusCode::OK,
        &updated,
        &ctx.origin(req),
        &projection_of(req),
    ))
}

/// `DELETE /Users/{id}`: deactivates (ODM) or removes (RFC).
pub async fn delete(ctx: Ctx, req: Request) -> Response<Body> {
    respond(delete_user(&ctx, &req).await)
}

async fn delete_user(ctx: &Ctx, req: &Request) -> Outcome {
    let (caller, current) = target(ctx, req, ctx.config.profile == Profile::Odm).await?;
    writable(&caller)?;
    match ctx.config.profile {
        Profile::Odm => {
            write_with(ctx, Some(req), current, |cur| {
                let mut next = cur.clone();
                next.is_active = false;
                Ok(next)
            })
            .await?;
        }
        Profile::Rfc => {
            let pinned = http::header_str(req.headers(), "if-match").is_some();
            let id = current.id;
            ctx.store
                .delete_user_with(current, pinned, |cur| {
                    check_if_match(req, cur).map_err(WriteFailure::Scim)
                })
                .await
                .map_err(|e| e.into_scim(id, None))?;
        }
    }
    Ok(http::empty(StatusCode::NO_CONTENT))
}

// ---------------------------------------------------------------- discovery

/// `GET /ServiceProviderConfig`, `/ResourceTypes[/User]`, `/Schemas[/{urn}]`
pub async fn discover(ctx: Ctx, req: Request) -> Response<Body> {
    respond(discovery_document(&ctx, &req).await)
}

async fn discovery_document(ctx: &Ctx, req: &Request) -> Outcome {
    admin(ctx, req, Wanted::default()).await?;
    let origin = ctx.origin(req);
    let path = req.uri().path();
    let rest = path.strip_prefix(super::BASE_PATH).unwrap_or(path);
    let body = match rest {
        "/ServiceProviderConfig" => discovery::service_provider_config(&origin),
        "/ResourceTypes" => discovery::list(vec![
            discovery::user_resource_type(&origin),
            discovery::group_resource_type(&origin),
        ]),
        "/ResourceTypes/User" => discovery::user_resource_type(&origin),
        "/ResourceTypes/Group" => discovery::group_resource_type(&origin),
        "/Schemas" => discovery::list(vec![
            discovery::user_schema(&origin),
            discovery::group_schema(&origin),
        ]),
        other => match other.strip_prefix("/Schemas/") {
            Some(USER_SCHEMA) => discovery::user_schema(&origin),
            Some(super::GROUP_SCHEMA) => discovery::group_schema(&origin),
            _ => return Err(ScimError::not_found(format!("No such resource: {path}"))),
        },
    };
    Ok(json_response(StatusCode::OK, &body))
}

// ---------------------------------------------------------------- fallback

/// The methods each SCIM route serves; `None` for paths that are not ours.
fn allowed_methods(path: &str) -> Option<&'static str> {
    let rest = path.strip_prefix(super::BASE_PATH)?;
    match rest {
        "/Users" | "/Groups" => Some("GET, POST"),
        "/Users/.search" | "/Groups/.search" | "/.search" => Some("POST"),
        "/ServiceProviderConfig"
        | "/ResourceTypes"
        | "/ResourceTypes/User"
        | "/ResourceTypes/Group"
        | "/Schemas" => Some("GET"),
        _ => {
            if let Some(id) = rest
                .strip_prefix("/Users/")
                .or_else(|| rest.strip_prefix("/Groups/"))
            {
                (!id.is_empty() && !id.contains('/')).then_some("GET, PUT, PATCH, DELETE")
            } else if let Some(urn) = rest.strip_prefix("/Schemas/") {
                (urn == USER_SCHEMA || urn == super::GROUP_SCHEMA).then_some("GET")
            } else {
                None
            }
        }
    }
}

/// Anything else under `/api/v1/scim`: 405 on our routes, 404 elsewhere, as SCIM Errors.
pub async fn fallback(ctx: Ctx, req: Request) -> Response<Body> {
    respond(fallback_response(&ctx, &req).await)
}

async fn fallback_response(ctx: &Ctx, req: &Request) -> Outcome {
    admin(ctx, req, Wanted::default()).await?;
    let path = req.uri().path();
    let method = req.method();
    match allowed_methods(path) {
        None => Err(ScimError::not_found(format!("No such resource: {path}"))),
        Some(allow)
            if allow.split(", ").any(|m| m == method.as_str()) && method != Method::HEAD =>
        {
            Err(ScimError::server(http::Fault::bug(format!(
                "{method} {path} is not routed"
            ))))
        }
        Some(allow) => {
            let mut resp = ScimError::new(
                405,
                None,
                format!("Method {method} is not allowed on {path}; allowed: {allow}"),
            )
            .into_response();
            resp.headers_mut()
                .insert("allow", HeaderValue::from_static(allow));
            Ok(resp)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_odm_post_updates_only_the_idps_own_records() {
        let posted = |ext: Option<&str>| {
            let mut u = User::new("new.hire@corp.com");
            u.external_id = ext.map(str::to_string);
            u
        };
        let holder = |owned: bool, ext: Option<&str>| {
            let mut u = User::new("new.hire@corp.com");
            u.idp_owned = owned;
            u.external_id = ext.map(str::to_string);
            u
        };
        let cases = [
            (holder(true, None), posted(None), true),
            (holder(true, Some("a")), posted(Some("b")), true),
            (holder(false, Some("a")), posted(Some("a")), true),
            (holder(false, Some("a")), posted(Some("b")), false),
            (holder(false, None), posted(None), false),
            (holder(false, None), posted(Some("a")), false),
        ];
        for (holder, posted, allowed) in cases {
            let result = may_upsert(&holder, &posted);
            assert_eq!(result.is_ok(), allowed, "{holder:?} / {posted:?}");
            if let Err(e) = result {
                assert_eq!(
                    (e.status, e.scim_type),
                    (409, Some(crate::scim::ScimType::Uniqueness))
                );
            }
        }
        let mut adopted = holder(false, Some("a"));
        adopted.password_hash = Some("hash".into());
        adopted.token_hashes = vec!["t".into()];
        adopt(&mut adopted);
        assert!(adopted.idp_owned && adopted.password_hash.is_none());
        assert!(adopted.token_hashes.is_empty());
    }

    #[test]
    fn routes_and_their_methods() {
        let cases = [
            ("/api/v1/scim/Users", Some("GET, POST")),
            ("/api/v1/scim/Users/12", Some("GET, PUT, PATCH, DELETE")),
            ("/api/v1/scim/Users/.search", Some("POST")),
            ("/api/v1/scim/.search", Some("POST")),
            (
                "/api/v1/scim/Schemas/urn:ietf:params:scim:schemas:core:2.0:User",
                Some("GET"),
            ),
            ("/api/v1/scim/Schemas/urn:nope", None),
            ("/api/v1/scim/Groups", Some("GET, POST")),
            ("/api/v1/scim/Groups/3", Some("GET, PUT, PATCH, DELETE")),
            ("/api/v1/scim/Groups/.search", Some("POST")),
            ("/api/v1/scim/Bundles", None),
            ("/api/v1/scim/Users/1/x", None),
        ];
        for (path, want) in cases {
            assert_eq!(allowed_methods(path), want, "{path}");
        }
    }
}
