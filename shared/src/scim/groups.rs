//! The SCIM operations on `/api/v1/scim/Groups`, one public function per
//! Lambda. A Group is an organisation (see `store::groups`): its members
//! are the org's members, with the default role when added here.
//!
//! Cost: a member change reads the group and the users it names with the
//! caller (one batch read), writes two items per changed member, then reads
//! the group once more (a delete may have raced it); nothing grows with the
//! group's size. Reading `members` (a GET without `excludedAttributes=members`,
//! a PUT, a `replace` of all members) reads every member item.
use std::collections::HashMap;

use lambda_http::http::{HeaderValue, StatusCode};
use lambda_http::{Body, Request, Response};
use serde_json::{json, Value};

use super::filter::{self, Attr, Filter};
use super::group::{self, GroupBody, GroupPatch, MemberPlan};
use super::list_params::ListParams;
use super::request::{admin, writable, ScimRequest};
use super::resource::Projection;
use super::resource_type::{canonical_id, etag, list_response, ResourceType};
use super::ScimError;
use crate::domain::user::User;
use crate::http::{self, respond};
use crate::runtime::Ctx;
use crate::store::{Fetched, GroupRecord, StoreError, UniqueField, Wanted, WRITE_ATTEMPTS};

type Outcome = Result<Response<Body>, ScimError>;
const GROUP: ResourceType = ResourceType::Group;

/// The most members one response lists, a group or a page of groups. A
/// group (or page) with more answers 400 `tooMany` unless
/// `excludedAttributes=members` is asked for (or a smaller `count`); the
/// members are then read through the admin API (`GET /api/users?org=<slug>`).
/// At about 100 bytes a member, this keeps a response near 2 MB, well inside
/// Lambda's 6 MB.
pub const MAX_LISTED_MEMBERS: usize = 20_000;

/// Member ids read in the caller's batch read; more are read after it.
const MEMBERS_WITH_AUTH: usize = 90;

fn taken(err: StoreError, name: &str, external_id: Option<&str>) -> ScimError {
    match err {
        StoreError::Taken(UniqueField::GroupExternalId) => ScimError::uniqueness(format!(
            "externalId \"{}\" belongs to another group",
            external_id.unwrap_or_default()
        )),
        StoreError::Taken(_) => {
            ScimError::uniqueness(format!("displayName \"{name}\" is taken by another group"))
        }
        StoreError::Conflict => ScimError::new(
            409,
            None,
            "The group changed while this request was applied; read it and try again.",
        ),
        other => other.into(),
    }
}

/// Whether a projection keeps `members`.
fn wants_members(projection: &Projection) -> bool {
    let probe = json!({"members": [], "id": "0"});
    projection.apply(probe).get("members").is_some()
}

/// User ids as a client sent them: canonical decimals, and the rest.
fn parse_ids(raw: &[String]) -> (Vec<u64>, Vec<String>) {
    let mut ids = Vec::new();
    let mut bad = Vec::new();
    for r in raw {
        match r.parse::<u64>() {
            Ok(id) if id.to_string() == *r => {
                if !ids.contains(&id) {
                    ids.push(id)
                }
            }
            _ => bad.push(r.clone()),
        }
    }
    (ids, bad)
}

fn unknown_members(unknown: &[String]) -> ScimError {
    let shown: Vec<String> = unknown
        .iter()
        .take(20)
        .map(|u| format!("\"{u}\""))
        .collect();
    let more = if unknown.len() > 20 {
        format!(" and {} more", unknown.len() - 20)
    } else {
        String::new()
    };
    ScimError::invalid_value(format!(
        "No User has the id {}{more}: members must be ids of existing Users. Nothing was changed.",
        shown.join(", ")
    ))
}

/// The users `ids` names: from the caller's batch read when they were in it,
/// else read now. Ids that name no user come back in the second list.
async fn users_named(
    ctx: &Ctx,
    fetched: &Fetched,
    ids: &[u64],
) -> Result<(HashMap<u64, User>, Vec<u64>), ScimError> {
    let mut found: HashMap<u64, User> = ids
        .iter()
        .filter_map(|id| fetched.user(*id).map(|u| (*id, u.clone())))
        .collect();
    let missing: Vec<u64> = ids
        .iter()
        .copied()
        .filter(|id| !found.contains_key(id))
        .collect();
    if !missing.is_empty() && ids.len() > MEMBERS_WITH_AUTH {
        found.extend(ctx.store.users_by_id_map(&missing).await?);
    }
    let unknown = ids
        .iter()
        .copied()
        .filter(|id| !found.contains_key(id))
        .collect();
    Ok((found, unknown))
}

/// Wanted for the users a request names (in the auth read when few).
fn want_users(wanted: &mut Wanted, ids: &[u64]) {
    if ids.len() <= MEMBERS_WITH_AUTH {
        wanted.users.extend(ids.iter().copied());
    }
}

/// The group's member ids for a response, or 400 `tooMany` past
/// [`MAX_LISTED_MEMBERS`].
async fn members_for_response(ctx: &Ctx, group: &GroupRecord) -> Result<Vec<u64>, ScimError> {
    let ids = ctx
        .store
        .group_member_ids(group, MAX_LISTED_MEMBERS)
        .await?;
    if ids.len() > MAX_LISTED_MEMBERS {
        return Err(ScimError::bad(
            super::ScimType::TooMany,
            format!(
                "Group {} has more than {MAX_LISTED_MEMBERS} members, more than one response \
                 lists: read it with excludedAttributes=members, and its members with the admin \
                 API (GET /api/users?org={}).",
                group.id, group.slug
            ),
        ));
    }
    Ok(ids)
}

/// A group resource with its `ETag` (and `Location`, on create). Its
/// members are read, when the projection shows them, unless `known` (a
/// create knows them: it made them).
async fn group_response(
    ctx: &Ctx,
    status: StatusCode,
    group: &GroupRecord,
    known: Option<Vec<u64>>,
    origin: &str,
    projection: &Projection,
) -> Outcome {
    let members = match known {
        _ if !wants_members(projection) => None,
        Some(ids) => Some(ids),
        None => Some(members_for_response(ctx, group).await?),
    };
    let body = projection.apply(group::to_json(group, members.as_deref(), origin));
    Ok(GROUP.response(status, &body, group.id, group.version, origin))
}

fn check_if_match(r: &ScimRequest, group: &GroupRecord) -> Result<(), ScimError> {
    GROUP.check_if_match(r.if_match.as_deref(), group.version)
}

// ---------------------------------------------------------------- writes

/// `POST /Groups`
pub async fn create(ctx: Ctx, req: Request) -> Response<Body> {
    let r = ScimRequest::extract(&ctx, &req);
    respond(Box::pin(create_group(&ctx, &r)).await)
}

async fn create_group(ctx: &Ctx, r: &ScimRequest) -> Outcome {
    let body = r.body().and_then(group::from_json);
    let (ids, bad) = match &body {
        Ok(GroupBody {
            members: Some(m), ..
        }) => parse_ids(m),
        _ => (Vec::new(), Vec::new()),
    };
    let mut wanted = Wanted::default();
    want_users(&mut wanted, &ids);
    let (caller, fetched) = admin(ctx, r, wanted).await?;
    writable(&caller)?;
    let body = body?;
    let (users, unknown) = users_named(ctx, &fetched, &ids).await?;
    let mut unknown: Vec<String> = unknown.iter().map(u64::to_string).collect();
    unknown.extend(bad);
    if !unknown.is_empty() {
        return Err(unknown_members(&unknown));
    }
    let members: Vec<User> = ids.iter().filter_map(|id| users.get(id).cloned()).collect();
    let (group, changes) = ctx
        .store
        .create_group_with(&body.name, body.external_id.as_deref(), members)
        .await
        .map_err(|e| taken(e, &body.name, body.external_id.as_deref()))?;
    let origin = r.origin.clone();
    let projection = r.projection.clone();
    // The answer reads nothing more: once the group is made, the create
    // cannot fail (and a resent create would answer 409).
    let mut ids = changes.added;
    ids.sort_unstable();
    let known = Some(ids);
    group_response(
        ctx,
        StatusCode::CREATED,
        &group,
        known,
        &origin,
        &projection,
    )
    .await
}

/// `PUT /Groups/{id}`: replaces displayName and externalId; `members`, when
/// the body has them, become exactly those (absent: left as they are).
pub async fn replace(ctx: Ctx, req: Request) -> Response<Body> {
    let r = ScimRequest::extract(&ctx, &req);
    respond(Box::pin(replace_group(&ctx, &r)).await)
}

async fn replace_group(ctx: &Ctx, r: &ScimRequest) -> Outcome {
    let body = r.body().and_then(group::from_json);
    let patch = body.map(|b| GroupPatch {
        name: Some(b.name),
        external_id: Some(b.external_id),
        members: match b.members {
            Some(m) => MemberPlan {
                clear: true,
                add: m,
                remove: Vec::new(),
            },
            None => MemberPlan::default(),
        },
    });
    let group = Box::pin(apply(ctx, r, patch)).await?;
    let origin = r.origin.clone();
    let projection = r.projection.clone();
    group_response(ctx, StatusCode::OK, &group, None, &origin, &projection).await
}

/// `PATCH /Groups/{id}`: 204, or 200 with the group when the request asks
/// for attributes (`attributes` or `excludedAttributes`), so that a member
/// change never reads the whole member list unless asked to.
pub async fn patch(ctx: Ctx, req: Request) -> Response<Body> {
    let r = ScimRequest::extract(&ctx, &req);
    respond(Box::pin(patch_group(&ctx, &r)).await)
}

async fn patch_group(ctx: &Ctx, r: &ScimRequest) -> Outcome {
    let id = r.id;
    let patch = r
        .body()
        .and_then(|b| group::parse_patch(b, id.unwrap_or(0)));
    let group = Box::pin(apply(ctx, r, patch)).await?;
    let projection = r.projection.clone();
    if r.projection_asked {
        let origin = r.origin.clone();
        return group_response(ctx, StatusCode::OK, &group, None, &origin, &projection).await;
    }
    let mut resp = Response::builder()
        .status(StatusCode::NO_CONTENT)
        .body(Body::Empty)
        .expect("a static response");
    if let Ok(tag) = HeaderValue::from_str(&etag(group.version)) {
        resp.headers_mut().insert("etag", tag);
    }
    Ok(resp)
}

/// Applies a PATCH or PUT: authenticates, reading the group and the users
/// the change names in the same batch read; refuses unknown members before
/// anything is written; then writes the group's own change with the first
/// members in one transaction, the rest in steps. Retries on a fresh read
/// when the group changed meanwhile, unless `If-Match` pinned the version.
async fn apply(
    ctx: &Ctx,
    r: &ScimRequest,
    patch: Result<GroupPatch, ScimError>,
) -> Result<GroupRecord, ScimError> {
    let id = r.id;
    let (add_ids, bad_add) = match &patch {
        Ok(p) => parse_ids(&p.members.add),
        Err(_) => (Vec::new(), Vec::new()),
    };
    let (remove_ids, _) = match &patch {
        Ok(p) => parse_ids(&p.members.remove),
        Err(_) => (Vec::new(), Vec::new()),
    };
    let mut named: Vec<u64> = add_ids.clone();
    named.extend(remove_ids.iter().filter(|r| !add_ids.contains(r)));
    let mut wanted = Wanted {
        groups: id.into_iter().collect(),
        ..Wanted::default()
    };
    want_users(&mut wanted, &named);
    let (caller, fetched) = admin(ctx, r, wanted).await?;
    writable(&caller)?;
    let id = id.ok_or_else(|| GROUP.not_found(&r.id_text))?;
    let mut group = fetched
        .group(id)
        .cloned()
        .ok_or_else(|| GROUP.not_found(id))?;
    let patch = patch?;
    check_if_match(r, &group)?;
    let (mut users, unknown) = users_named(ctx, &fetched, &named).await?;
    let mut unknown_adds: Vec<String> = unknown
        .iter()
        .filter(|u| add_ids.contains(u))
        .map(u64::to_string)
        .collect();
    unknown_adds.extend(bad_add);
    if !unknown_adds.is_empty() {
        return Err(unknown_members(&unknown_adds));
    }
    let pinned = r.if_match.is_some();
    let mut attempt = 1;
    loop {
        let next = next_record(&group, &patch);
        // Everyone else goes when the whole list is replaced: a read of the
        // members, the one member change that grows with the group.
        let remove: Vec<User> = if patch.members.clear {
            let current = ctx.store.group_member_ids(&group, usize::MAX).await?;
            let gone: Vec<u64> = current
                .into_iter()
                .filter(|m| !add_ids.contains(m))
                .collect();
            let unread: Vec<u64> = gone
                .iter()
                .copied()
                .filter(|m| !users.contains_key(m))
                .collect();
            let mut read = ctx.store.users_by_id_map(&unread).await?;
            gone.iter()
                .filter_map(|m| users.get(m).cloned().or_else(|| read.remove(m)))
                .collect()
        } else {
            remove_ids
                .iter()
                .filter_map(|id| users.get(id).cloned())
                .collect()
        };
        let add: Vec<User> = add_ids
            .iter()
            .filter_map(|id| users.get(id).cloned())
            .collect();
        let adding = !add.is_empty();
        match ctx.store.patch_group(&group, next, add, remove).await {
            Ok((written, changes)) => {
                if adding && !changes.added.is_empty() {
                    Box::pin(check_still_there(ctx, &written, &changes.added)).await?;
                }
                return Ok(written);
            }
            Err(StoreError::Conflict) if !pinned && attempt < WRITE_ATTEMPTS => {
                attempt += 1;
                group = ctx
                    .store
                    .get_group(id)
                    .await?
                    .filter(|g| !g.deleting)
                    .ok_or_else(|| GROUP.not_found(id))?;
                users = ctx.store.users_by_id_map(&named).await?;
            }
            Err(e) => {
                let name = patch.name.as_deref().unwrap_or(&group.name);
                let ext = patch
                    .external_id
                    .clone()
                    .unwrap_or_else(|| group.external_id.clone());
                return Err(taken(e, name, ext.as_deref()));
            }
        }
    }
}

/// The group's record after a patch, when its own attributes change.
fn next_record(group: &GroupRecord, patch: &GroupPatch) -> Option<GroupRecord> {
    let mut next = group.clone();
    if let Some(name) = &patch.name {
        next.name = name.clone();
    }
    if let Some(ext) = &patch.external_id {
        next.external_id = ext.clone();
    }
    (next.name != group.name || next.external_id != group.external_id).then_some(next)
}

/// A delete of the group may have swept its members between our read and
/// our write: then the members just added are removed again, and the answer
/// is the 404 the delete would have given. One read.
async fn check_still_there(ctx: &Ctx, group: &GroupRecord, added: &[u64]) -> Result<(), ScimError> {
    let alive = ctx
        .store
        .get_group(group.id)
        .await?
        .is_some_and(|g| !g.deleting);
    if alive {
        return Ok(());
    }
    let users = ctx.store.users_by_id_map(added).await?;
    ctx.store
        .change_members(group, Vec::new(), users.into_values().collect())
        .await?;
    Err(GROUP.not_found(group.id))
}

/// `DELETE /Groups/{id}`: 204; the org and every membership go, in steps
/// for a large group. A delete cut short (a timeout, a 503) is finished by
/// the next DELETE of the same id.
pub async fn delete(ctx: Ctx, req: Request) -> Response<Body> {
    let r = ScimRequest::extract(&ctx, &req);
    respond(Box::pin(delete_group(&ctx, &r)).await)
}

async fn delete_group(ctx: &Ctx, r: &ScimRequest) -> Outcome {
    let id = r.id;
    let wanted = Wanted {
        groups: id.into_iter().collect(),
        ..Wanted::default()
    };
    let (caller, fetched) = admin(ctx, r, wanted).await?;
    writable(&caller)?;
    let id = id.ok_or_else(|| GROUP.not_found(&r.id_text))?;
    let group = fetched
        .group_record(id)
        .cloned()
        .ok_or_else(|| GROUP.not_found(id))?;
    if !group.deleting {
        check_if_match(r, &group)?;
    }
    ctx.store.delete_group(&group).await?;
    Ok(Response::builder()
        .status(StatusCode::NO_CONTENT)
        .body(Body::Empty)
        .expect("a static response"))
}

// ---------------------------------------------------------------- reads

/// `GET /Groups/{id}`
pub async fn get(ctx: Ctx, req: Request) -> Response<Body> {
    let r = ScimRequest::extract(&ctx, &req);
    respond(Box::pin(get_group(&ctx, &r)).await)
}

async fn get_group(ctx: &Ctx, r: &ScimRequest) -> Outcome {
    let id = r.id;
    let wanted = Wanted {
        groups: id.into_iter().collect(),
        ..Wanted::default()
    };
    let (_, fetched) = admin(ctx, r, wanted).await?;
    let id = id.ok_or_else(|| GROUP.not_found(&r.id_text))?;
    let group = fetched
        .group(id)
        .cloned()
        .ok_or_else(|| GROUP.not_found(id))?;
    let origin = r.origin.clone();
    let projection = r.projection.clone();
    group_response(ctx, StatusCode::OK, &group, None, &origin, &projection).await
}

/// A parsed list or search request on Groups.
pub(super) struct Query {
    filter: Option<Filter>,
    start: usize,
    count: usize,
    pub(super) projection: Projection,
}

impl Query {
    /// The groups query `params` ask for: paged by `startIndex` only.
    pub(super) fn new(params: &ListParams) -> Result<Query, ScimError> {
        if params.cursor.is_some() {
            return Err(ScimError::invalid_value(
                "Groups are paged by startIndex and count; cursors page Users.",
            ));
        }
        Ok(Query {
            filter: params.filter().map(filter::parse_group).transpose()?,
            start: params.start(),
            count: params.count(),
            projection: params.projection.clone(),
        })
    }

    /// The user ids the filter compares `members.value` with.
    fn member_ids(&self) -> Vec<u64> {
        fn collect(f: &Filter, out: &mut Vec<u64>) {
            match f {
                Filter::Eq(Attr::MemberValue, filter::Value::Str(s)) => {
                    if let Ok(id) = s.parse::<u64>() {
                        if id.to_string() == *s && !out.contains(&id) {
                            out.push(id);
                        }
                    }
                }
                Filter::And(all) | Filter::Member(all) => all.iter().for_each(|f| collect(f, out)),
                _ => {}
            }
        }
        let mut out = Vec::new();
        if let Some(f) = &self.filter {
            collect(f, &mut out);
        }
        out
    }
}

/// `GET /Groups`
pub async fn list(ctx: Ctx, req: Request) -> Response<Body> {
    let r = ScimRequest::extract(&ctx, &req);
    let query = ListParams::from_query(&r.query).and_then(|p| Query::new(&p));
    respond(Box::pin(run_query(&ctx, &r, query)).await)
}

/// `POST /Groups/.search`
pub async fn search(ctx: Ctx, req: Request) -> Response<Body> {
    let r = ScimRequest::extract(&ctx, &req);
    let query = r
        .body()
        .and_then(ListParams::from_search_request)
        .and_then(|p| Query::new(&p));
    respond(Box::pin(run_query(&ctx, &r, query)).await)
}

/// What a groups query reads, planned before the auth read: the group, claim
/// or users its filter names.
pub(super) struct GroupPlan {
    lookup: Option<(Attr, String)>,
    member_ids: Vec<u64>,
}

impl GroupPlan {
    /// The plan of `query`, and what it adds to the auth read.
    pub(super) fn new(query: &Query, wanted: &mut Wanted) -> GroupPlan {
        let lookup = query.filter.as_ref().and_then(Filter::group_lookup);
        let member_ids = query.member_ids();
        want_users(wanted, &member_ids);
        match &lookup {
            Some((Attr::Id, v)) => wanted.groups.extend(canonical_id(v)),
            Some((Attr::DisplayName, v)) => wanted.claims.push((UniqueField::GroupName, v.clone())),
            Some((Attr::ExternalId, v)) => wanted
                .claims
                .push((UniqueField::GroupExternalId, v.clone())),
            _ => {}
        }
        GroupPlan { lookup, member_ids }
    }
}

/// Lists groups. A filter that pins groups down is answered by key with
/// the auth read and one more read: `id eq` (the record, with auth),
/// `displayName eq` / `externalId eq` (the claim with auth, then the
/// record), `members[value eq "u"]` (the user with auth, then their groups).
/// Otherwise one query over the group records (not the users).
async fn run_query(ctx: &Ctx, r: &ScimRequest, query: Result<Query, ScimError>) -> Outcome {
    let mut wanted = Wanted::default();
    let plan = query.as_ref().ok().map(|q| GroupPlan::new(q, &mut wanted));
    let (_, fetched) = admin(ctx, r, wanted).await?;
    let query = query?;
    let Some(plan) = plan else {
        return Err(ScimError::server(http::Fault::bug(
            "a query without a plan",
        )));
    };
    let matching = matching_groups(ctx, &query, &plan, &fetched).await?;
    let origin = r.origin.clone();
    let shown: Vec<&GroupRecord> = matching
        .iter()
        .skip(query.start - 1)
        .take(query.count)
        .collect();
    let page = page_json(ctx, &shown, &query.projection, &origin).await?;
    Ok(list_response(matching.len(), query.start, page))
}

/// Every group `query` matches, in id order.
pub(super) async fn matching_groups(
    ctx: &Ctx,
    query: &Query,
    plan: &GroupPlan,
    fetched: &Fetched,
) -> Result<Vec<GroupRecord>, ScimError> {
    let (members_of, _) = users_named(ctx, fetched, &plan.member_ids).await?;
    let candidates: Vec<GroupRecord> = match &plan.lookup {
        Some((Attr::Id, v)) => canonical_id(v)
            .and_then(|id| fetched.group(id).cloned())
            .into_iter()
            .collect(),
        Some((attr @ (Attr::DisplayName | Attr::ExternalId), v)) => {
            let field = if *attr == Attr::DisplayName {
                UniqueField::GroupName
            } else {
                UniqueField::GroupExternalId
            };
            match fetched.claim_owner(field, v) {
                Some(owner) => ctx.store.groups_by_ids(&[owner]).await?,
                None => Vec::new(),
            }
        }
        Some((Attr::MemberValue, v)) => match canonical_id(v).and_then(|id| members_of.get(&id)) {
            Some(user) => {
                let ids: Vec<u64> = user.memberships.iter().map(|m| m.org_id).collect();
                ctx.store.groups_by_ids(&ids).await?
            }
            None => Vec::new(),
        },
        _ => ctx.store.all_groups().await?,
    };
    Ok(candidates
        .into_iter()
        .filter(|g| match &query.filter {
            None => true,
            Some(f) => {
                // The members the filter names, as their own records say.
                let members: Vec<u64> = members_of
                    .values()
                    .filter(|u| u.memberships.iter().any(|m| m.org_id == g.id))
                    .map(|u| u.id)
                    .collect();
                f.matches_group(g, &members)
            }
        })
        .collect())
}

/// A page of groups as resources, their members read when the projection
/// shows them: at most [`MAX_LISTED_MEMBERS`] for the whole page.
pub(super) async fn page_json(
    ctx: &Ctx,
    groups: &[&GroupRecord],
    projection: &Projection,
    origin: &str,
) -> Result<Vec<Value>, ScimError> {
    let with_members = wants_members(projection);
    let mut page = Vec::new();
    // What the page's groups may still list, all together.
    let mut room = MAX_LISTED_MEMBERS;
    for g in groups {
        let members = if with_members {
            let ids = ctx.store.group_member_ids(g, room).await?;
            if ids.len() > room {
                return Err(ScimError::bad(
                    super::ScimType::TooMany,
                    format!(
                        "The groups of this page have more than {MAX_LISTED_MEMBERS} members in \
                         all, more than one response lists: ask for fewer groups (count), or \
                         for excludedAttributes=members and read the members of each group with \
                         the admin API (GET /api/users?org=<slug>)."
                    ),
                ));
            }
            room -= ids.len();
            Some(ids)
        } else {
            None
        };
        page.push(projection.apply(group::to_json(g, members.as_deref(), origin)));
    }
    Ok(page)
}
