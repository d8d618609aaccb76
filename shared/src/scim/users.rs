//! The SCIM Users endpoint (`/api/v1/scim/Users`): one public function per
//! Lambda, each extract, call, render.
use std::collections::BTreeSet;

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde_json::{json, Value};

use super::filter::{self, Filter};
use super::list_params::ListParams;
use super::projection::Projection;
use super::request::{admin, ScimRequest};
use super::resource_type::{json_response, list_response, ResourceType};
use super::user_resource;
use super::{cursor, ScimError, LIST_SCHEMA};
use crate::config::Config;
use crate::domain::plan::{ClaimKeys, ReadPlan};
use crate::domain::user::User;
use crate::http::{self, respond};
use crate::runtime::{Ctx, Profile};
use crate::service::users::Users;
use crate::service::Failure;
use crate::store::{Fetched, StoreError, UniqueField, Wanted};

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
        .apply(user_resource::to_json(user, &r.origin, profile));
    USER.response(status, &body, user.id, user.version, &r.origin)
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

    /// The keys of a filter that pins its users down by unique attributes
    /// (itself or as members of `and`s at any depth, see
    /// [`Filter::to_query`]), as the domain's planner reads them: those
    /// users are read with authentication, by id or through their claims,
    /// and the whole filter is evaluated on them alone. `None` for any other
    /// plan: those read the directory as the paging says.
    fn lookup(&self) -> Option<Lookup> {
        match ReadPlan::of(&self.filter.as_ref()?.to_query()) {
            ReadPlan::Keys { ids, claims } if ids.len() + claims.len() <= MAX_LOOKUP_KEYS => {
                Some(Lookup { ids, claims })
            }
            _ => None,
        }
    }
}

/// Keys a lookup adds to the auth read at most. A SCIM filter has no `or`,
/// so its keyed plans name one user (or none); more would be a filter
/// language this read was not sized for.
const MAX_LOOKUP_KEYS: usize = 1;

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

/// The users a lookup names (a claim costs one more read per owner). A free
/// function, not a method: the IAM analysis (tests/infra) follows calls by name.
async fn resolve(ctx: &Ctx, lookup: &Lookup, fetched: &Fetched) -> Result<Vec<User>, ScimError> {
    let mut users: Vec<User> = lookup
        .ids
        .iter()
        .filter_map(|id| fetched.user(*id).cloned())
        .collect();
    for (claim, value) in &lookup.claims {
        if let Some(owner) = fetched.claim_owner((*claim).into(), value) {
            users.extend(ctx.store.users().get(owner).await?);
        }
    }
    users.sort_by_key(|u| u.id);
    users.dedup_by_key(|u| u.id);
    Ok(users)
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
async fn run_query(ctx: &Ctx, r: &ScimRequest, query: Result<Query, ScimError>) -> Outcome {
    let mut wanted = Wanted::default();
    let plan = query.as_ref().ok().map(|q| UserPlan::new(q, &mut wanted));
    let (_, fetched) = admin(ctx, r, wanted).await?;
    let query = query?;
    let Some(plan) = plan else {
        return Err(ScimError::server(http::Fault::bug(
            "a query without a plan",
        )));
    };
    let origin = &r.origin;
    match query.paging {
        Paging::Cursor(after) => match &plan.lookup {
            Some(lookup) => {
                let after_cursor = matching_lookup(ctx, &query, lookup, &fetched)
                    .await?
                    .into_iter()
                    .filter(|u| u.id > after)
                    .collect();
                Ok(cursor_list(ctx, &query, after, after_cursor, None, origin))
            }
            None => cursor_page(ctx, &query, after, origin).await,
        },
        Paging::Index(start) => {
            let window = users_window(ctx, &query, &plan, &fetched, start - 1, query.count).await?;
            let page = window
                .users
                .iter()
                .map(|u| {
                    let json = user_resource::to_json(u, origin, ctx.config.profile);
                    query.projection.apply(json)
                })
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
            return Ok(UserWindow { total, users });
        }
        (None, Some(filter)) => ctx
            .store
            .users()
            .all()
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
                .users()
                .page_after(start, query.count, active_only)
                .await?;
            (page.users, page.next_after)
        }
        Some(f) => {
            let want = query.count + 1;
            let limit = FILTERED_READ_LIMIT.max(want);
            let slice = ctx
                .store
                .users()
                .matching_after(start, want, active_only, limit, |u| f.matches(u))
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
        .map(|u| {
            let json = user_resource::to_json(u, origin, ctx.config.profile);
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
        users.get(&r.credentials, r.id).await,
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
        .create(&r.credentials, r.body(), |base, body| {
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
            &r.credentials,
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
            &r.credentials,
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
            .delete::<ScimError>(&r.credentials, r.id, r.precondition())
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
        // Group writes and admin lists only: a user operation that answers one is a bug.
        Failure::UnknownMembers(_)
        | Failure::GroupTaken { .. }
        | Failure::Changed
        | Failure::NoSuchOrg(_) => {
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
