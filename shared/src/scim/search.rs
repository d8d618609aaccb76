//! `POST /.search` (RFC 7644 §3.4.3): one query over every resource type,
//! Users then Groups, paged together and answered as one list. The caller is
//! authenticated once, with what both types' filters name in the same read.
//!
//! Cost: the users part costs what `POST /Users/.search` costs for the same
//! window (an unfiltered page reads its own users, a key filter one user, any
//! other filter is one pass over the users); the groups part is one query
//! over the group records (a directory has few), plus the members of the
//! groups the page shows, when the projection keeps `members`. Under a
//! tenant base: the tenant's users (as its `/Users/.search`) and one query
//! of the tenant's groups, which hold their members.
use lambda_http::{Body, Request, Response};

use super::filter::Resource;
use super::group_request::{self, page_json};
use super::list_params::ListParams;
use super::request::{list_error, ScimRequest};
use super::schema::list_response;
use super::sort::Sort;
use super::{users, ScimError};
use crate::http::respond;
use crate::http::Ctx;
use crate::service::search::{self, Search};

type Outcome = Result<Response<Body>, ScimError>;

/// `POST /Users/.search`, and `POST /.search` (every resource type).
pub async fn search(ctx: Ctx, req: Request) -> Response<Body> {
    let r = ScimRequest::extract(&ctx, &req);
    if r.rest() == "/.search" {
        // Boxed: the plans' store calls make a large future.
        return respond(Box::pin(search_all(&ctx, &r)).await);
    }
    users::search_users(&ctx, &r).await
}

/// The search over both types: each type's query from the one body, one
/// service call, the users' resources then the groups'.
async fn search_all(ctx: &Ctx, r: &ScimRequest) -> Outcome {
    let params = r.body().and_then(ListParams::from_search_request);
    let params = params.and_then(|p| match p.cursor {
        Some(_) => Err(ScimError::invalid_value(
            "The search over every resource type pages by startIndex and count; cursors page \
             Users (POST /Users/.search).",
        )),
        None => Ok(p),
    });
    // Each type reads the filter with its own attributes: a filter on an
    // attribute only the other type has matches none of this one. A sortBy
    // only one type has sorts that type; the other keeps its id order (as
    // resources without the value would).
    let own_sort = |p: &ListParams, resource: Resource, other: Resource| {
        let mut p = p.clone();
        if Sort::from_params(&p, resource).is_err() && Sort::from_params(&p, other).is_ok() {
            p.sort_by = None;
            p.sort_order = None;
        }
        p
    };
    let users = params.as_ref().map_err(Clone::clone).and_then(|p| {
        users::Query::new(&own_sort(p, Resource::User, Resource::Group), &ctx.config)
    });
    let groups = params.as_ref().map_err(Clone::clone).and_then(|p| {
        group_request::Query::new(
            &own_sort(p, Resource::Group, Resource::User),
            ctx.config.profile,
        )
    });
    let asked = match (&params, &users, &groups) {
        (Err(e), _, _) | (_, Err(e), Err(_)) => Err(e.clone()),
        (Ok(p), _, _) => Ok(Search {
            users: users.as_ref().ok().map(users::Query::list),
            groups: groups.as_ref().ok().map(group_request::Query::list),
            skip: p.start() - 1,
            count: p.count(),
        }),
    };
    let found = search::search(&ctx.store, ctx.config.profile, r.identity(), asked)
        .await
        .map_err(list_error)?;
    let params = params?;
    let projection = &params.projection;
    let mut page = users::resources(ctx, projection, &found.users, &r.base_url);
    let tenant_base = r.base.tenant().is_some();
    page.extend(page_json(
        found.groups,
        tenant_base,
        projection,
        &r.base_url,
    )?);
    Ok(list_response(found.total, params.start(), page))
}
