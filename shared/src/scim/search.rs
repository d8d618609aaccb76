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
use super::list_params::ListParams;
use super::projection::Projection;
use super::request::{admin, ScimRequest};
use super::resource_type::list_response;
use super::sort::Sort;
use super::user_resource;
use super::{group_request, groups, tenant_groups, users, ScimError};
use crate::domain::group::GroupRecord;
use crate::http::respond;
use crate::runtime::Ctx;
use crate::store::Wanted;

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
    let mut wanted = Wanted::default();
    let user_plan = users
        .as_ref()
        .ok()
        .map(|q| users::UserPlan::new(q, &mut wanted));
    // The global groups' plan; a tenant's groups are one query of them.
    let group_plan = groups
        .as_ref()
        .ok()
        .filter(|_| r.base.tenant().is_none())
        .map(|q| groups::GroupPlan::new(q, &mut wanted));
    // A tenant's page starts from its own counts, read after auth.
    wanted.counts &= r.base.tenant().is_none();
    let (caller, fetched) = admin(ctx, r, wanted).await?;
    let params = params?;
    if let (Err(e), Err(_)) = (&users, &groups) {
        return Err(e.clone());
    }
    let skip = params.start() - 1;
    let count = params.count();
    let base_url = &r.base_url;
    let projection: &Projection = &params.projection;
    let mut page = Vec::new();
    let mut users_total = 0;
    if let (Ok(query), Some(plan)) = (&users, &user_plan) {
        let window = match &caller.tenant {
            // Under a tenant base: the tenant's own users.
            Some(tenant) => {
                users::tenant_window(ctx, query, plan, &fetched, tenant, skip, count).await?
            }
            None => users::users_window(ctx, query, plan, &fetched, skip, count).await?,
        };
        users_total = window.total;
        page.extend(
            window
                .users
                .iter()
                .map(|u| projection.apply(user_resource::to_json(u, base_url, ctx.config.profile))),
        );
    }
    let mut groups_total = 0;
    // The page continues into the groups where the users end.
    let first_group = skip.saturating_sub(users_total);
    let room = count - page.len();
    match (&groups, &group_plan, &caller.tenant) {
        // Under a tenant base: the tenant's own groups, one query of them.
        (Ok(query), _, Some(tenant)) => {
            let all = ctx.store.tenant_groups().list(&tenant.slug).await?;
            let matching = tenant_groups::matching(&all, query);
            groups_total = matching.len();
            let shown = matching.into_iter().skip(first_group).take(room);
            page.extend(tenant_groups::page_json(r, shown, projection)?);
        }
        (Ok(query), Some(plan), None) => {
            let matching = groups::matching_groups(ctx, query, plan, &fetched).await?;
            groups_total = matching.len();
            let shown: Vec<&GroupRecord> = matching.iter().skip(first_group).take(room).collect();
            page.extend(groups::page_json(ctx, &shown, projection, base_url).await?);
        }
        _ => {}
    }
    Ok(list_response(users_total + groups_total, skip + 1, page))
}
