//! The SCIM Group operations under a tenant base
//! (`/api/v1/scim/orgs/{slug}/Groups`): the tenant's own groups, which the
//! `scim-groups-*` functions serve when the request came through a tenant
//! base (`groups.rs` hands them over). The same resource, bodies, PATCH
//! forms, filters and ETags as the global Groups; the members are on the
//! group's record, so no response reads more than the record.
use lambda_http::http::{HeaderValue, StatusCode};
use lambda_http::{Body, Response};
use serde_json::Value;

use super::group_request::{group_error, replacement, wants_members, MAX_LISTED_MEMBERS};
use super::request::{Projection, ScimRequest};
use super::schema::ResourceType;
use super::{group_resource, ScimError};
use crate::domain::etag;
use crate::domain::tenant_group::TenantGroup;
use crate::http;
use crate::http::Ctx;
use crate::service::tenant_groups::TenantGroups;

type Outcome = Result<Response<Body>, ScimError>;
const GROUP: ResourceType = ResourceType::Group;

/// The group's members for a response, or 400 `tooMany` past
/// [`MAX_LISTED_MEMBERS`] (with `room` left of it).
fn members_shown(group: &TenantGroup, room: usize) -> Result<Vec<u64>, ScimError> {
    if group.members.len() > room {
        return Err(ScimError::bad(
            super::ScimType::TooMany,
            format!(
                "More than {MAX_LISTED_MEMBERS} members in one response: ask for \
                 excludedAttributes=members (or fewer groups)."
            ),
        ));
    }
    Ok(group.member_ids())
}

fn resource(
    group: &TenantGroup,
    r: &ScimRequest,
    projection: &Projection,
    room: usize,
) -> Result<Value, ScimError> {
    let members = if wants_members(projection) {
        Some(members_shown(group, room)?)
    } else {
        None
    };
    Ok(projection.apply(group_resource::to_json(
        &group.record,
        members.as_deref(),
        &r.base_url,
    )))
}

fn response(status: StatusCode, group: &TenantGroup, r: &ScimRequest) -> Outcome {
    let body = resource(group, r, &r.projection, MAX_LISTED_MEMBERS)?;
    let g = &group.record;
    Ok(GROUP.response(status, &body, g.id, g.version, &r.base_url))
}

/// `POST /Groups` under the base of `slug`.
pub async fn create(ctx: &Ctx, r: &ScimRequest, slug: &str) -> Outcome {
    let input = r.body().and_then(group_resource::from_json);
    let groups = TenantGroups::new(&ctx.store);
    match Box::pin(groups.create(r.identity(), slug, input)).await {
        Ok(group) => response(StatusCode::CREATED, &group, r),
        Err(failure) => Err(group_error(failure, &r.id_text)),
    }
}

/// `PUT /Groups/{id}`.
pub async fn replace(ctx: &Ctx, r: &ScimRequest, slug: &str) -> Outcome {
    let input = r.body().and_then(replacement);
    let groups = TenantGroups::new(&ctx.store);
    let written = Box::pin(groups.update(r.identity(), slug, r.id, r.precondition(), input)).await;
    match written {
        Ok(group) => response(StatusCode::OK, &group, r),
        Err(failure) => Err(group_error(failure, &r.id_text)),
    }
}

/// `PATCH /Groups/{id}`: 204, or 200 with the group when the request asks
/// for attributes.
pub async fn patch(ctx: &Ctx, r: &ScimRequest, slug: &str) -> Outcome {
    let input = r
        .body()
        .and_then(|b| group_resource::parse_patch(b, r.id.unwrap_or(0)));
    let groups = TenantGroups::new(&ctx.store);
    let written = Box::pin(groups.update(r.identity(), slug, r.id, r.precondition(), input)).await;
    match written {
        Ok(group) if r.projection_asked => response(StatusCode::OK, &group, r),
        Ok(group) => {
            let mut resp = http::empty(StatusCode::NO_CONTENT);
            if let Ok(tag) = HeaderValue::from_str(&etag(group.record.version)) {
                resp.headers_mut().insert("etag", tag);
            }
            Ok(resp)
        }
        Err(failure) => Err(group_error(failure, &r.id_text)),
    }
}

/// `DELETE /Groups/{id}`: 204.
pub async fn delete(ctx: &Ctx, r: &ScimRequest, slug: &str) -> Outcome {
    let groups = TenantGroups::new(&ctx.store);
    match Box::pin(groups.delete::<ScimError>(r.identity(), slug, r.id, r.precondition())).await {
        Ok(()) => Ok(http::empty(StatusCode::NO_CONTENT)),
        Err(failure) => Err(group_error(failure, &r.id_text)),
    }
}

/// `GET /Groups/{id}`.
pub async fn get(ctx: &Ctx, r: &ScimRequest, slug: &str) -> Outcome {
    let groups = TenantGroups::new(&ctx.store);
    match groups.get::<ScimError>(r.identity(), slug, r.id).await {
        Ok(group) => response(StatusCode::OK, &group, r),
        Err(failure) => Err(group_error(failure, &r.id_text)),
    }
}
