//! The SCIM operations on `/api/v1/scim/Groups`, one public function per
//! Lambda. A Group is an organisation (see `store::groups`): its members
//! are the org's members, with the default role when added here.
//!
//! Cost: a member change reads the group and the users it names with the
//! caller (one batch read), writes two items per changed member, then reads
//! the group once more (a delete may have raced it); nothing grows with the
//! group's size. Reading `members` (a GET without `excludedAttributes=members`,
//! a PUT, a `replace` of all members) reads every member item.
use lambda_http::http::{HeaderValue, StatusCode};
use lambda_http::{Body, Request, Response};
use serde_json::Value;

use super::filter::{Attr, Filter};
pub use super::group_request::MAX_LISTED_MEMBERS;
use super::group_request::{group_error, replacement, wants_members, Query};
use super::group_resource;
use super::list_params::ListParams;
use super::projection::Projection;
use super::request::{admin, ScimRequest};
use super::resource_type::{canonical_id, etag, list_response, ResourceType};
use super::tenant_groups;
use super::ScimError;
use crate::domain::group::GroupRecord;
use crate::http::{self, respond};
use crate::runtime::Ctx;
use crate::service::groups::{users_named, want_users, Groups};
use crate::store::{Fetched, UniqueField, Wanted};

type Outcome = Result<Response<Body>, ScimError>;
const GROUP: ResourceType = ResourceType::Group;

/// The group's member ids for a response, or 400 `tooMany` past
/// [`MAX_LISTED_MEMBERS`].
async fn members_for_response(ctx: &Ctx, group: &GroupRecord) -> Result<Vec<u64>, ScimError> {
    let ids = ctx
        .store
        .groups()
        .member_ids(group, MAX_LISTED_MEMBERS)
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
    r: &ScimRequest,
) -> Outcome {
    let (base_url, projection) = (r.base_url.as_str(), &r.projection);
    let members = match known {
        _ if !wants_members(projection) => None,
        Some(ids) => Some(ids),
        None => Some(members_for_response(ctx, group).await?),
    };
    let body = projection.apply(group_resource::to_json(group, members.as_deref(), base_url));
    Ok(GROUP.response(status, &body, group.id, group.version, base_url))
}

// ---------------------------------------------------------------- writes

/// `POST /Groups`
pub async fn create(ctx: Ctx, req: Request) -> Response<Body> {
    let r = ScimRequest::extract(&ctx, &req);
    if let Some(slug) = r.base.tenant() {
        return respond(Box::pin(tenant_groups::create(&ctx, &r, slug)).await);
    }
    let input = r.body().and_then(group_resource::from_json);
    let created = Box::pin(Groups::new(&ctx.store).create(r.identity(), input)).await;
    respond(match created {
        // The answer reads nothing more: once the group is made, the create
        // cannot fail (and a resent create would answer 409).
        Ok((group, changes)) => {
            let mut ids = changes.added;
            ids.sort_unstable();
            Box::pin(group_response(
                &ctx,
                StatusCode::CREATED,
                &group,
                Some(ids),
                &r,
            ))
            .await
        }
        Err(failure) => Err(group_error(failure, &r.id_text)),
    })
}

/// `PUT /Groups/{id}`: replaces displayName and externalId; `members`, when
/// the body has them, become exactly those (absent: left as they are).
pub async fn replace(ctx: Ctx, req: Request) -> Response<Body> {
    let r = ScimRequest::extract(&ctx, &req);
    if let Some(slug) = r.base.tenant() {
        return respond(Box::pin(tenant_groups::replace(&ctx, &r, slug)).await);
    }
    let input = r.body().and_then(replacement);
    let groups = Groups::new(&ctx.store);
    let written = Box::pin(groups.update(r.identity(), r.id, r.precondition(), input)).await;
    respond(match written {
        Ok(group) => Box::pin(group_response(&ctx, StatusCode::OK, &group, None, &r)).await,
        Err(failure) => Err(group_error(failure, &r.id_text)),
    })
}

/// `PATCH /Groups/{id}`: 204, or 200 with the group when the request asks
/// for attributes (`attributes` or `excludedAttributes`), so that a member
/// change never reads the whole member list unless asked to.
pub async fn patch(ctx: Ctx, req: Request) -> Response<Body> {
    let r = ScimRequest::extract(&ctx, &req);
    if let Some(slug) = r.base.tenant() {
        return respond(Box::pin(tenant_groups::patch(&ctx, &r, slug)).await);
    }
    let input = r
        .body()
        .and_then(|b| group_resource::parse_patch(b, r.id.unwrap_or(0)));
    let groups = Groups::new(&ctx.store);
    let written = Box::pin(groups.update(r.identity(), r.id, r.precondition(), input)).await;
    respond(match written {
        Ok(group) if r.projection_asked => {
            Box::pin(group_response(&ctx, StatusCode::OK, &group, None, &r)).await
        }
        Ok(group) => {
            let mut resp = http::empty(StatusCode::NO_CONTENT);
            if let Ok(tag) = HeaderValue::from_str(&etag(group.version)) {
                resp.headers_mut().insert("etag", tag);
            }
            Ok(resp)
        }
        Err(failure) => Err(group_error(failure, &r.id_text)),
    })
}

/// `DELETE /Groups/{id}`: 204; the org and every membership go, in steps
/// for a large group. A delete cut short (a timeout, a 503) is finished by
/// the next DELETE of the same id.
pub async fn delete(ctx: Ctx, req: Request) -> Response<Body> {
    let r = ScimRequest::extract(&ctx, &req);
    if let Some(slug) = r.base.tenant() {
        return respond(Box::pin(tenant_groups::delete(&ctx, &r, slug)).await);
    }
    let groups = Groups::new(&ctx.store);
    let deleted = Box::pin(groups.delete::<ScimError>(r.identity(), r.id, r.precondition())).await;
    respond(match deleted {
        Ok(()) => Ok(http::empty(StatusCode::NO_CONTENT)),
        Err(failure) => Err(group_error(failure, &r.id_text)),
    })
}

// ---------------------------------------------------------------- reads

/// `GET /Groups/{id}`
pub async fn get(ctx: Ctx, req: Request) -> Response<Body> {
    let r = ScimRequest::extract(&ctx, &req);
    if let Some(slug) = r.base.tenant() {
        return respond(Box::pin(tenant_groups::get(&ctx, &r, slug)).await);
    }
    let found = Groups::new(&ctx.store)
        .get::<ScimError>(r.identity(), r.id)
        .await;
    respond(match found {
        Ok(group) => Box::pin(group_response(&ctx, StatusCode::OK, &group, None, &r)).await,
        Err(failure) => Err(group_error(failure, &r.id_text)),
    })
}

/// `GET /Groups`
pub async fn list(ctx: Ctx, req: Request) -> Response<Body> {
    let r = ScimRequest::extract(&ctx, &req);
    let query = ListParams::from_query(&r.query).and_then(|p| Query::new(&p, ctx.config.profile));
    respond(Box::pin(run_query(&ctx, &r, query)).await)
}

/// `POST /Groups/.search`
pub async fn search(ctx: Ctx, req: Request) -> Response<Body> {
    let r = ScimRequest::extract(&ctx, &req);
    let query = r
        .body()
        .and_then(ListParams::from_search_request)
        .and_then(|p| Query::new(&p, ctx.config.profile));
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
/// Otherwise one query over the group records (not the users). Under a
/// tenant base, the tenant's own groups (`tenant_groups.rs`).
async fn run_query(ctx: &Ctx, r: &ScimRequest, query: Result<Query, ScimError>) -> Outcome {
    let mut wanted = Wanted::default();
    if let Some(slug) = r.base.tenant() {
        return Box::pin(tenant_groups::run_query(ctx, r, slug, query)).await;
    }
    let plan = query.as_ref().ok().map(|q| GroupPlan::new(q, &mut wanted));
    let (_, fetched) = admin(ctx, r, wanted).await?;
    let query = query?;
    let Some(plan) = plan else {
        return Err(ScimError::server(http::Fault::bug(
            "a query without a plan",
        )));
    };
    let matching = matching_groups(ctx, &query, &plan, &fetched).await?;
    let base_url = r.base_url.clone();
    let shown: Vec<&GroupRecord> = matching
        .iter()
        .skip(query.start - 1)
        .take(query.count)
        .collect();
    let page = page_json(ctx, &shown, &query.projection, &base_url).await?;
    Ok(list_response(matching.len(), query.start, page))
}

/// Every group `query` matches, in id order or the order it asks for.
pub(super) async fn matching_groups(
    ctx: &Ctx,
    query: &Query,
    plan: &GroupPlan,
    fetched: &Fetched,
) -> Result<Vec<GroupRecord>, ScimError> {
    let (members_of, _) = users_named(&ctx.store, fetched, &plan.member_ids).await?;
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
                Some(owner) => ctx.store.groups().by_ids(&[owner]).await?,
                None => Vec::new(),
            }
        }
        Some((Attr::MemberValue, v)) => match canonical_id(v).and_then(|id| members_of.get(&id)) {
            Some(user) => {
                let ids: Vec<u64> = user.memberships.iter().map(|m| m.org_id).collect();
                ctx.store.groups().by_ids(&ids).await?
            }
            None => Vec::new(),
        },
        _ => ctx.store.groups().all().await?,
    };
    let mut matching: Vec<GroupRecord> = candidates
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
        .collect();
    if let Some(sort) = &query.sort {
        sort.groups(&mut matching);
    }
    Ok(matching)
}

/// A page of groups as resources, their members read when the projection
/// shows them: at most [`MAX_LISTED_MEMBERS`] for the whole page.
pub(super) async fn page_json(
    ctx: &Ctx,
    groups: &[&GroupRecord],
    projection: &Projection,
    base_url: &str,
) -> Result<Vec<Value>, ScimError> {
    let with_members = wants_members(projection);
    let mut page = Vec::new();
    // What the page's groups may still list, all together.
    let mut room = MAX_LISTED_MEMBERS;
    for g in groups {
        let members = if with_members {
            let ids = ctx.store.groups().member_ids(g, room).await?;
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
        page.push(projection.apply(group_resource::to_json(g, members.as_deref(), base_url)));
    }
    Ok(page)
}
