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

pub use super::group_request::MAX_LISTED_MEMBERS;
use super::group_request::{group_error, page_json, replacement, wants_members, Query};
use super::list_params::ListParams;
use super::request::ScimRequest;
use super::schema::{list_response, ResourceType};
use super::{group_resource, tenant_groups, ScimError};
use crate::domain::etag;
use crate::domain::group::GroupRecord;
use crate::http;
use crate::http::respond;
use crate::http::Ctx;
use crate::service::group_lists::GroupLists;
use crate::service::groups::Groups;

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

/// Lists groups: the service plans, reads, filters, sorts and pages (see
/// [`crate::service::group_lists`] for what it reads, at either base); this
/// renders the page.
async fn run_query(ctx: &Ctx, r: &ScimRequest, query: Result<Query, ScimError>) -> Outcome {
    let list = query.as_ref().map(Query::list).map_err(Clone::clone);
    let page = GroupLists::new(&ctx.store)
        .list(r.identity(), list)
        .await
        .map_err(|f| group_error(f, &r.id_text))?;
    let query = query?;
    let tenant_base = r.base.tenant().is_some();
    let resources = page_json(page.shown, tenant_base, &query.projection, &r.base_url)?;
    Ok(list_response(page.total, page.start, resources))
}
