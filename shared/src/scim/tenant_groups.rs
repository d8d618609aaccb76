//! The SCIM Group operations under a tenant base
//! (`/api/v1/scim/orgs/{slug}/Groups`): the tenant's own groups, which the
//! `scim-groups-*` functions serve when the request came through a tenant
//! base (`groups.rs` hands them over). The same resource, bodies, PATCH
//! forms, filters and ETags as the global Groups; the members are on the
//! group's record, so no response reads more than the record.
use lambda_http::http::{HeaderValue, StatusCode};
use lambda_http::{Body, Response};
use serde_json::Value;

use super::group_request::{group_error, replacement, wants_members, Query, MAX_LISTED_MEMBERS};
use super::group_resource;
use super::projection::Projection;
use super::request::ScimRequest;
use super::resource_type::{etag, list_response, ResourceType};
use super::ScimError;
use crate::domain::group::GroupRecord;
use crate::domain::tenant_group::TenantGroup;
use crate::http;
use crate::runtime::Ctx;
use crate::service::tenant_groups::TenantGroups;
use crate::store::Wanted;

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

/// `GET /Groups` and `POST /Groups/.search`: the caller's read, then one
/// query of the tenant's groups, filtered and sorted here.
pub async fn run_query(
    ctx: &Ctx,
    r: &ScimRequest,
    slug: &str,
    query: Result<Query, ScimError>,
) -> Outcome {
    let groups = TenantGroups::new(&ctx.store);
    let found = groups
        .list::<ScimError>(r.identity(), slug, Wanted::default())
        .await;
    let (all, _) = found.map_err(|f| group_error(f, &r.id_text))?;
    let query = query?;
    let matching = matching(&all, &query);
    let shown = matching
        .iter()
        .copied()
        .skip(query.start - 1)
        .take(query.count);
    let page = page_json(r, shown, &query.projection)?;
    Ok(list_response(matching.len(), query.start, page))
}

/// The groups of `all` that the query's filter matches, in its order (id
/// order unless it is sorted).
pub(super) fn matching<'g>(all: &'g [TenantGroup], query: &Query) -> Vec<&'g TenantGroup> {
    let named = query.member_ids();
    let mut matching: Vec<&TenantGroup> = all
        .iter()
        .filter(|g| {
            query.filter.as_ref().is_none_or(|f| {
                let members: Vec<u64> = named.iter().copied().filter(|m| g.has(*m)).collect();
                f.matches_group(&g.record, &members)
            })
        })
        .collect();
    if let Some(sort) = &query.sort {
        let mut records: Vec<GroupRecord> = matching.iter().map(|g| g.record.clone()).collect();
        sort.groups(&mut records);
        let order: Vec<u64> = records.iter().map(|g| g.id).collect();
        matching.sort_by_key(|g| order.iter().position(|id| *id == g.record.id));
    }
    matching
}

/// The resources of `shown`, with their members while the response has
/// room for them.
pub(super) fn page_json<'g>(
    r: &ScimRequest,
    shown: impl Iterator<Item = &'g TenantGroup>,
    projection: &Projection,
) -> Result<Vec<Value>, ScimError> {
    let mut room = MAX_LISTED_MEMBERS;
    let mut page = Vec::new();
    for g in shown {
        page.push(resource(g, r, projection, room)?);
        if wants_members(projection) {
            room -= g.members.len();
        }
    }
    Ok(page)
}
