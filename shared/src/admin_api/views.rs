//! The five operations of `/api/users` and the fallback for everything else:
//! each extracts its request, calls the account service and renders.
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde_json::{json, Map, Value};

use super::error::{ApiError, NO_PERMISSION, UNKNOWN_FIELD};
use super::list_query::ListQuery;
use super::update::Scope;
use super::{django, update, CONTENT_TYPE};
use crate::auth::Credentials;
use crate::domain::user::{format_time, rules, User};
use crate::http::{respond, Ctx, QueryParams};
use crate::service::accounts::{Accounts, Apply, Change, Listing, Reach};
use crate::service::Failure;
use crate::store::UniqueField;
use crate::{auth, http};

fn ok(body: &Value) -> Response<Body> {
    http::json(StatusCode::OK, CONTENT_TYPE, body)
}

/// The admin API's answer to an account operation that did not happen.
pub(super) fn account_error(failure: Failure<ApiError>) -> ApiError {
    match failure {
        Failure::Auth(f) => f.into(),
        Failure::Forbidden | Failure::ReadOnly => ApiError::PermissionDenied(NO_PERMISSION),
        Failure::NotFound => ApiError::not_found(),
        Failure::NoSuchOrg(org) => {
            ApiError::NotFound(format!("{org} organization does not exist."))
        }
        Failure::Taken { field, .. } => taken(field),
        Failure::Refused(e) => e,
        Failure::Store(e) => e.into(),
        Failure::Lost => ApiError::Conflict,
        other => ApiError::internal(format!("no admin API answer for {other:?}")),
    }
}

/// The list's query, parsed, with its org context; its error as DRF words it.
fn list_query(r: &AdminRequest) -> Result<ListQuery, ApiError> {
    ListQuery::parse(&r.query, r.x_organization.as_deref())
        .map_err(|e| ApiError::List(vec![e.to_string()]))
}

/// `GET /api/users`
pub async fn list(ctx: Ctx, req: Request) -> Response<Body> {
    list_with(ctx, req, ListOptions::default()).await
}

/// How `GET /api/users` is answered. [`list`] uses the defaults; tests use
/// others to check the planner against a full pass and the page bound.
#[derive(Debug, Clone, Copy)]
pub struct ListOptions {
    /// Read only the users the query can match; `false` reads the whole
    /// directory and filters it, which must give the same answer.
    pub plan: bool,
    /// The largest `results` of one page, in bytes as they travel inside the
    /// Lambda response: see [`MAX_PAGE_BYTES`].
    pub max_page_bytes: usize,
}

impl Default for ListOptions {
    fn default() -> Self {
        ListOptions {
            plan: true,
            max_page_bytes: MAX_PAGE_BYTES,
        }
    }
}

/// Lambda refuses responses over 6 MB and API Gateway turns that into a bare
/// 500, so a page (`page_size=all`, or a huge `page_size`) whose rows would
/// pass this bound is refused with a 400 instead. Not truncated with a
/// `next` link: cvat-sdk's paging helper asks for page 2, 3, ... with the
/// same `page_size`, which for `all` has no page 2, and a client that asked
/// for everything must never take part of the directory for all of it.
pub const MAX_PAGE_BYTES: usize = 5 * 1024 * 1024;

/// [`list`] with other options.
pub async fn list_with(ctx: Ctx, req: Request, options: ListOptions) -> Response<Body> {
    let r = AdminRequest::extract(&ctx, &req);
    respond(list_users(&ctx, &r, options).await)
}

async fn list_users(
    ctx: &Ctx,
    r: &AdminRequest,
    options: ListOptions,
) -> Result<Response<Body>, ApiError> {
    r.accept.clone()?;
    let query = list_query(r);
    let window = |total| page_of(query.as_ref().ok(), total).map(|p| p.start..p.end);
    let listing = Accounts::new(&ctx.store)
        .list(
            &r.credentials,
            query.as_ref().map(|q| (q, &q.org)).map_err(Clone::clone),
            window,
            options.plan,
        )
        .await
        .map_err(account_error)?;
    let page = page_of(query.as_ref().ok(), listing.total)?;
    list_page(r, &listing, &page, options.max_page_bytes)
}

/// The Django page of `total` results the query asks for.
fn page_of(query: Option<&ListQuery>, total: usize) -> Result<django::Page, ApiError> {
    let query = query.ok_or_else(|| ApiError::internal("a page of a query that did not parse"))?;
    django::paginate(total, &query.page, query.page_size)
        .map_err(|_| ApiError::NotFound("Invalid page.".into()))
}

/// The page's body, or a 400 when its rows would not fit in a Lambda
/// response (measured as they are rendered, so a huge list stops early).
fn list_page(
    r: &AdminRequest,
    listing: &Listing,
    page: &django::Page,
    max_bytes: usize,
) -> Result<Response<Body>, ApiError> {
    let origin = r.origin.as_str();
    let base = format!("{origin}/api/users");
    let (next, previous) = django::page_links(&base, &r.query, page);
    let rows = &listing.users;
    let mut results = Vec::with_capacity(rows.len());
    let mut bytes = 0;
    for user in rows {
        let row = shaped(user, origin, listing.caller.user.is_superuser);
        bytes += embedded_len(&row);
        if bytes > max_bytes {
            return Err(page_too_large(rows.len(), max_bytes));
        }
        results.push(row);
    }
    Ok(ok(&json!({
        "count": listing.total,
        "next": next,
        "previous": previous,
        "results": results,
    })))
}

/// Bytes a row takes in the Lambda response, where the JSON body is itself
/// a JSON string: every `"` and `\` is escaped once more.
pub(super) fn embedded_len(row: &Value) -> usize {
    let text = row.to_string();
    let escapes = text.bytes().filter(|b| matches!(b, b'"' | b'\\')).count();
    // The comma between rows.
    text.len() + escapes + 1
}

/// DRF's shape for an invalid parameter, naming the way out.
fn page_too_large(rows: usize, max_bytes: usize) -> ApiError {
    ApiError::field(
        "page_size",
        &format!(
            "This page would hold {rows} users, more than one response can carry \
             ({} MiB); ask for smaller pages with page_size=<n> and page=1, 2, ...",
            max_bytes.div_ceil(1024 * 1024)
        ),
    )
}

/// `GET /api/users/self`
pub async fn retrieve_self(ctx: Ctx, req: Request) -> Response<Body> {
    let r = AdminRequest::extract(&ctx, &req);
    respond(self_user(&ctx, &r).await)
}

async fn self_user(ctx: &Ctx, r: &AdminRequest) -> Result<Response<Body>, ApiError> {
    r.accept.clone()?;
    let caller = Accounts::new(&ctx.store)
        .me(&r.credentials)
        .await
        .map_err(account_error)?;
    Ok(ok(&full(&caller.user, &r.origin)))
}

/// `GET /api/users/{id}`
pub async fn retrieve(ctx: Ctx, req: Request) -> Response<Body> {
    let r = AdminRequest::extract(&ctx, &req);
    respond(retrieve_user(&ctx, &r).await)
}

async fn retrieve_user(ctx: &Ctx, r: &AdminRequest) -> Result<Response<Body>, ApiError> {
    r.accept.clone()?;
    let query = list_query(r);
    let (caller, target) = Accounts::new(&ctx.store)
        .get(
            &r.credentials,
            r.id,
            query.as_ref().map(|q| (q, &q.org)).map_err(Clone::clone),
        )
        .await
        .map_err(account_error)?;
    let full_shape = caller.user.id == target.id || caller.user.is_superuser;
    Ok(ok(&shaped(&target, &r.origin, full_shape)))
}

/// `PATCH /api/users/{id}`
pub async fn partial_update(ctx: Ctx, req: Request) -> Response<Body> {
    let r = AdminRequest::extract(&ctx, &req);
    respond(update_user(&ctx, &r).await)
}

async fn update_user(ctx: &Ctx, r: &AdminRequest) -> Result<Response<Body>, ApiError> {
    r.accept.clone()?;
    let query = list_query(r);
    let body = r.body();
    // Unknown fields are refused before the permission of the known ones
    // is looked at, and a field's value after both.
    let reach = body.clone().and_then(|body| {
        body.keys().try_fold(Reach::Nothing, |reach, key| {
            let scope = update::scope_of(key).ok_or(ApiError::PermissionDenied(UNKNOWN_FIELD))?;
            Ok(reach.max(match scope {
                Scope::PersonalData => Reach::Personal,
                Scope::AdminOnly => Reach::Account,
            }))
        })
    });
    let apply = body
        .and_then(|body| update::validate(&body))
        .map(|changes| {
            Box::new(move |current: &User| {
                let mut changed = current.clone();
                changes.apply(&mut changed);
                changed
            }) as Apply
        });
    let (caller, updated) = Accounts::new(&ctx.store)
        .update(
            &r.credentials,
            r.id,
            query.as_ref().map(|q| &q.org).map_err(Clone::clone),
            Change { reach, apply },
        )
        .await
        .map_err(account_error)?;
    let full_shape = caller.user.id == updated.id || caller.user.is_superuser;
    Ok(ok(&shaped(&updated, &r.origin, full_shape)))
}

fn taken(field: UniqueField) -> ApiError {
    match field {
        UniqueField::Username => ApiError::field("username", rules::USERNAME_TAKEN),
        UniqueField::Email => ApiError::field("email", rules::EMAIL_TAKEN),
        UniqueField::ExternalId => ApiError::field(
            "external_id",
            "A user with that external id already exists.",
        ),
        // The admin API writes no groups.
        UniqueField::GroupName | UniqueField::GroupExternalId => ApiError::Conflict,
    }
}

/// `DELETE /api/users/{id}`
pub async fn destroy(ctx: Ctx, req: Request) -> Response<Body> {
    let r = AdminRequest::extract(&ctx, &req);
    respond(destroy_user(&ctx, &r).await)
}

async fn destroy_user(ctx: &Ctx, r: &AdminRequest) -> Result<Response<Body>, ApiError> {
    r.accept.clone()?;
    let query = list_query(r);
    Accounts::new(&ctx.store)
        .delete(
            &r.credentials,
            r.id,
            query.as_ref().map(|q| &q.org).map_err(Clone::clone),
        )
        .await
        .map_err(account_error)?;
    Ok(http::empty(StatusCode::NO_CONTENT))
}

/// Any other method or path under `/api`: 405 on our routes (after
/// authentication, as DRF does), 404 elsewhere, in DRF's shape.
pub async fn fallback(ctx: Ctx, req: Request) -> Response<Body> {
    let r = AdminRequest::extract(&ctx, &req);
    respond(fallback_response(&ctx, &r).await)
}

/// The methods each route allows; `None` for paths that are not ours.
fn allowed_methods(path: &str) -> Option<&'static str> {
    // Organizations and memberships are read only: GET on the list and on one.
    let (rest, detail) = match path.strip_prefix("/api/users") {
        Some(rest) => (rest, "GET, PATCH, DELETE"),
        None => (
            path.strip_prefix("/api/organizations")
                .or_else(|| path.strip_prefix("/api/memberships"))?,
            "GET",
        ),
    };
    match rest {
        "" => Some("GET"),
        "/self" if path.starts_with("/api/users") => Some("GET"),
        _ => {
            let id = rest.strip_prefix('/')?;
            let is_id = !id.is_empty() && !id.contains('/') && !id.contains('.');
            is_id.then_some(detail)
        }
    }
}

async fn fallback_response(ctx: &Ctx, r: &AdminRequest) -> Result<Response<Body>, ApiError> {
    let Some(allow) = allowed_methods(&r.path) else {
        return Err(ApiError::not_found());
    };
    r.accept.clone()?;
    Accounts::new(&ctx.store)
        .me::<ApiError>(&r.credentials)
        .await
        .map_err(account_error)?;
    let method = &r.method;
    if allow.split(", ").any(|m| m == method.as_str()) && method != Method::HEAD {
        // A routed method reaching the fallback means the router is out of date.
        return Err(ApiError::internal(format!(
            "{method} {} is not routed",
            r.path
        )));
    }
    Err(ApiError::MethodNotAllowed(method.to_string(), allow))
}

// ------------------------------------------------------------ request
// Everything an admin API operation reads from its request, taken in one
// step before anything runs.

pub struct AdminRequest {
    /// Whether `Accept` allows this API's media type: checked before
    /// authentication, as DRF does.
    pub accept: Result<(), ApiError>,
    pub credentials: Credentials,
    /// The `{id}` of a detail route, read as Django's `int()` reads it.
    pub id: Option<u64>,
    pub query: QueryParams,
    /// CVAT's `X-Organization` header.
    pub x_organization: Option<String>,
    pub origin: String,
    pub method: Method,
    pub path: String,
    body: Option<Result<Map<String, Value>, ApiError>>,
}

impl AdminRequest {
    pub fn extract(ctx: &Ctx, req: &Request) -> AdminRequest {
        AdminRequest {
            accept: negotiate(req),
            credentials: auth::credentials(req.headers()),
            id: http::path_id(req, http::Ids::Digits),
            query: http::query_pairs(req),
            x_organization: http::header_str(req.headers(), "x-organization").map(str::to_string),
            origin: ctx.origin(req),
            method: req.method().clone(),
            path: req.uri().path().to_string(),
            body: (req.method() == Method::PATCH).then(|| json_body(req)),
        }
    }

    /// The JSON object a PATCH sent (empty when it sent nothing), or why it
    /// cannot be read.
    pub fn body(&self) -> Result<Map<String, Value>, ApiError> {
        self.body.clone().unwrap_or_else(|| Ok(Map::new()))
    }
}

/// `Accept` must allow our media type (`*/*`, `application/json` or
/// `application/vnd.cvat+json`, optionally `; version=2.0`).
fn negotiate(req: &Request) -> Result<(), ApiError> {
    let Some(accept) = http::header_str(req.headers(), "accept") else {
        return Ok(());
    };
    let mut bad_version = false;
    for range in accept.split(',') {
        let mut parts = range.split(';').map(str::trim);
        let media = parts.next().unwrap_or_default().to_ascii_lowercase();
        if !matches!(
            media.as_str(),
            "*/*" | "application/*" | "application/json" | "application/vnd.cvat+json"
        ) {
            continue;
        }
        let version = parts
            .filter_map(|p| p.split_once('='))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("version"))
            .map(|(_, v)| v.trim().trim_matches('"'));
        match version {
            None | Some("2.0") => return Ok(()),
            Some(_) => bad_version = true,
        }
    }
    if bad_version {
        Err(ApiError::NotAcceptable(
            "Invalid version in \"Accept\" header.",
        ))
    } else {
        Err(ApiError::NotAcceptable(
            "Could not satisfy the request Accept header.",
        ))
    }
}

/// A PATCH body: a JSON object, as DRF's parser and serializer take it.
fn json_body(req: &Request) -> Result<Map<String, Value>, ApiError> {
    let bytes = http::body_bytes(req).map_err(|_| ApiError::TooLarge)?;
    if bytes.is_empty() {
        return Ok(Map::new());
    }
    match http::content_type(req.headers()) {
        Some(ct) if ct == "application/json" || ct.ends_with("+json") => {}
        other => return Err(ApiError::UnsupportedMediaType(other.unwrap_or_default())),
    }
    let value: Value = serde_json::from_slice(bytes).map_err(|e| ApiError::Parse(e.to_string()))?;
    match value {
        Value::Object(map) => Ok(map),
        other => Err(ApiError::Fields(vec![(
            "non_field_errors".into(),
            vec![format!(
                "Invalid data. Expected a dictionary, but got {}.",
                match other {
                    Value::Array(_) => "list",
                    Value::String(_) => "str",
                    Value::Number(_) => "int",
                    Value::Bool(_) => "bool",
                    _ => "NoneType",
                }
            )],
        )])),
    }
}

// ------------------------------------------------------------ render
// The two JSON shapes of a user: full `User` and `BasicUser`.

/// `User`: the `BasicUser` fields, in their order, then the rest.
pub fn full(user: &User, origin: &str) -> Value {
    let mut v = basic(user, origin);
    let rest = json!({
        "email": user.email,
        "groups": user.groups.iter().map(|g| g.name()).collect::<Vec<_>>(),
        "is_staff": user.is_staff,
        "is_superuser": user.is_superuser,
        "is_active": user.is_active,
        "last_login": user.last_login.as_ref().map(format_time),
        "date_joined": format_time(&user.date_joined),
        "has_analytics_access": user.has_analytics_access,
    });
    if let (Some(v), Value::Object(rest)) = (v.as_object_mut(), rest) {
        v.extend(rest);
    }
    v
}

pub fn basic(user: &User, origin: &str) -> Value {
    json!({
        "url": url(user, origin),
        "id": user.id,
        "username": user.username,
        "first_name": user.first_name,
        "last_name": user.last_name,
    })
}

pub fn shaped(user: &User, origin: &str, full_shape: bool) -> Value {
    if full_shape {
        full(user, origin)
    } else {
        basic(user, origin)
    }
}

fn url(user: &User, origin: &str) -> String {
    format!("{origin}/api/users/{}", user.id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_and_their_methods() {
        let cases = [
            ("/api/users", Some("GET")),
            ("/api/users/self", Some("GET")),
            ("/api/users/12", Some("GET, PATCH, DELETE")),
            ("/api/users/abc", Some("GET, PATCH, DELETE")),
            ("/api/users/", None),
            ("/api/users/1/", None),
            ("/api/users/1.json", None),
            ("/api/nothing", None),
            ("/api/organizations", Some("GET")),
            ("/api/organizations/3", Some("GET")),
            ("/api/organizations/self", Some("GET")),
            ("/api/memberships", Some("GET")),
            ("/api/memberships/30000000007", Some("GET")),
            ("/api/organizations/", None),
            ("/api/memberships/3/", None),
            ("/api/memberships/3.json", None),
            ("/api/organizationsx", None),
        ];
        for (path, want) in cases {
            assert_eq!(allowed_methods(path), want, "{path}");
        }
    }
}
