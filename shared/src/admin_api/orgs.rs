//! CVAT's organizations and memberships, read only: `GET
//! /api/organizations`, `/api/organizations/{id}`, `/api/memberships` and
//! `/api/memberships/{id}`. Each extracts its request, calls the org
//! service and renders `OrganizationRead` / `MembershipRead` as CVAT's
//! schema (2.12) describes them, paginated like `/api/users`.
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde_json::{json, Value};

use super::error::ApiError;
use super::list_query::ListQueryError;
use super::org_query::{MembershipQuery, OrgQuery};
use super::views::{account_error, embedded_len, AdminRequest, MAX_PAGE_BYTES};
use super::{django, views, CONTENT_TYPE};
use crate::domain::group::GroupRecord;
use crate::domain::orgs::Member;
use crate::domain::user::{format_time, User};
use crate::http;
use crate::http::{respond, Ctx};
use crate::service::orgs::Orgs;

fn ok(body: &Value) -> Response<Body> {
    http::json(StatusCode::OK, CONTENT_TYPE, body)
}

fn query_error(e: ListQueryError) -> ApiError {
    ApiError::List(vec![e.to_string()])
}

/// CVAT's `OrganizationRead`. An org here has no owner, description or
/// contact: `owner` is null (the schema allows it), the others empty.
fn organization(org: &GroupRecord) -> Value {
    json!({
        "id": org.id,
        "slug": org.slug,
        "name": org.name,
        "description": "",
        "created_date": format_time(&org.created),
        "updated_date": format_time(&org.last_modified),
        "contact": {},
        "owner": null,
    })
}

/// CVAT's `MembershipRead`, its user as `BasicUser`. There are no
/// invitations: `invitation` is null.
fn membership(member: &Member, user: &User, origin: &str) -> Value {
    json!({
        "id": member.id(),
        "user": views::basic(user, origin),
        "organization": member.org_id,
        "is_active": member.is_active,
        "joined_date": member.joined.as_ref().map(format_time),
        "role": member.role.name(),
        "invitation": null,
    })
}

/// The Django page of `total` results the query asks for.
fn page_of(
    page: &django::PageRequest,
    page_size: Option<usize>,
    total: usize,
) -> Result<django::Page, ApiError> {
    django::paginate(total, page, page_size).map_err(|_| ApiError::NotFound("Invalid page.".into()))
}

/// A list's body with DRF's page links, or a 400 when its rows would not
/// fit in a Lambda response (see [`MAX_PAGE_BYTES`]).
fn page_body(
    r: &AdminRequest,
    path: &str,
    what: &str,
    total: usize,
    page: &django::Page,
    rows: Vec<Value>,
) -> Result<Response<Body>, ApiError> {
    let base = format!("{}{path}", r.origin);
    let (next, previous) = django::page_links(&base, &r.query, page);
    let count = rows.len();
    let bytes: usize = rows.iter().map(embedded_len).sum();
    if bytes > MAX_PAGE_BYTES {
        return Err(ApiError::field(
            "page_size",
            &format!(
                "This page would hold {count} {what}, more than one response can carry \
                 ({} MiB); ask for smaller pages with page_size=<n> and page=1, 2, ...",
                MAX_PAGE_BYTES.div_ceil(1024 * 1024)
            ),
        ));
    }
    Ok(ok(&json!({
        "count": total,
        "next": next,
        "previous": previous,
        "results": rows,
    })))
}

/// `GET /api/organizations`
pub async fn organizations_list(ctx: Ctx, req: Request) -> Response<Body> {
    let r = AdminRequest::extract(&ctx, &req);
    respond(list_orgs(&ctx, &r).await)
}

async fn list_orgs(ctx: &Ctx, r: &AdminRequest) -> Result<Response<Body>, ApiError> {
    r.accept.clone()?;
    let query = OrgQuery::parse(&r.query).map_err(query_error);
    let window = |total| match &query {
        Ok(q) => page_of(&q.0.page, q.0.page_size, total).map(|p| p.start..p.end),
        Err(e) => Err(e.clone()),
    };
    let listing = Orgs::new(&ctx.store)
        .list(&r.credentials, query.as_ref().map_err(Clone::clone), window)
        .await
        .map_err(account_error)?;
    let q = query?;
    let page = page_of(&q.0.page, q.0.page_size, listing.total)?;
    let rows = listing.orgs.iter().map(organization).collect();
    page_body(
        r,
        "/api/organizations",
        "organizations",
        listing.total,
        &page,
        rows,
    )
}

/// `GET /api/organizations/{id}`
pub async fn organizations_retrieve(ctx: Ctx, req: Request) -> Response<Body> {
    let r = AdminRequest::extract(&ctx, &req);
    respond(retrieve_org(&ctx, &r).await)
}

async fn retrieve_org(ctx: &Ctx, r: &AdminRequest) -> Result<Response<Body>, ApiError> {
    r.accept.clone()?;
    let (_, org) = Orgs::new(&ctx.store)
        .get(&r.credentials, r.id)
        .await
        .map_err(account_error)?;
    Ok(ok(&organization(&org)))
}

/// `GET /api/memberships`
pub async fn memberships_list(ctx: Ctx, req: Request) -> Response<Body> {
    let r = AdminRequest::extract(&ctx, &req);
    respond(list_members(&ctx, &r).await)
}

async fn list_members(ctx: &Ctx, r: &AdminRequest) -> Result<Response<Body>, ApiError> {
    r.accept.clone()?;
    let query = MembershipQuery::parse(&r.query, r.x_organization.as_deref()).map_err(query_error);
    let window = |total| match &query {
        Ok(q) => page_of(&q.filters.page, q.filters.page_size, total).map(|p| p.start..p.end),
        Err(e) => Err(e.clone()),
    };
    let listing = Orgs::new(&ctx.store)
        .members(
            &r.credentials,
            query.as_ref().map(|q| (q, &q.org)).map_err(Clone::clone),
            window,
        )
        .await
        .map_err(account_error)?;
    let q = query?;
    let page = page_of(&q.filters.page, q.filters.page_size, listing.total)?;
    let rows = listing
        .members
        .iter()
        .map(|(member, user)| membership(member, user, &r.origin))
        .collect();
    page_body(
        r,
        "/api/memberships",
        "memberships",
        listing.total,
        &page,
        rows,
    )
}

/// `GET /api/memberships/{id}`
pub async fn memberships_retrieve(ctx: Ctx, req: Request) -> Response<Body> {
    let r = AdminRequest::extract(&ctx, &req);
    respond(retrieve_member(&ctx, &r).await)
}

async fn retrieve_member(ctx: &Ctx, r: &AdminRequest) -> Result<Response<Body>, ApiError> {
    r.accept.clone()?;
    let (_, member, user) = Orgs::new(&ctx.store)
        .member(&r.credentials, r.id)
        .await
        .map_err(account_error)?;
    Ok(ok(&membership(&member, &user, &r.origin)))
}
