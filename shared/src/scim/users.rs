//! The SCIM Users endpoint (`/api/v1/scim/Users`): one public function per
//! Lambda, each extract, call, render.
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde_json::{json, Value};

use super::filter::{Filter, Resource};
use super::list_params::ListParams;
use super::request::{list_error, Projection, ScimRequest};
use super::schema::{json_response, list_response, ResourceType};
use super::sort::Sort;
use super::{cursor, filter, user_schema, ScimError, LIST_SCHEMA};
use crate::config::Config;
use crate::domain::listing::{Order, Paging, UserFilter};
use crate::domain::user::User;
use crate::http;
use crate::http::respond;
use crate::http::{Ctx, Profile};
use crate::service::user_lists::{UserList, UserLists, UserPage};
use crate::service::users::Users;
use crate::service::Failure;
use crate::store::{StoreError, UniqueField};

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
        .apply(user_schema::to_json(user, &r.base_url, profile));
    USER.response(status, &body, user.id, user.version, &r.base_url)
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

/// A parsed list or search request.
pub(super) struct Query {
    filter: Option<Filter>,
    paging: Paging,
    count: usize,
    /// `sortBy`/`sortOrder` (`rfc`), unless it asks for the id order lists
    /// are read in anyway.
    sort: Option<Sort>,
    projection: Projection,
}

impl Query {
    /// The users query `params` ask for: the filter parsed with a User's
    /// attributes and the profile's grammar, the order (`rfc`; `odm`
    /// ignores `sortBy` as it always has), the page by `startIndex` or by
    /// `cursor`.
    pub(super) fn new(params: &ListParams, config: &Config) -> Result<Query, ScimError> {
        let filter = params
            .filter()
            .map(|f| filter::parse(f, config.profile))
            .transpose()?;
        let sort = match config.profile {
            Profile::Rfc => Sort::from_params(params, Resource::User)?.filter(|s| !s.is_id_order()),
            Profile::Odm => None,
        };
        let paging = match (params.cursor.as_deref(), params.start_index) {
            (None, _) => Paging::Index(params.start()),
            (Some(_), Some(_)) => {
                return Err(ScimError::invalid_value(
                    "startIndex and cursor cannot be combined: page by index or by cursor \
                     (RFC 9865), not both.",
                ))
            }
            (Some(_), None) if sort.is_some() => {
                return Err(ScimError::invalid_value(
                    "sortBy cannot be combined with cursor: cursors page in id order. Page a \
                     sorted list by startIndex and count.",
                ))
            }
            (Some(raw), None) => Paging::Cursor(open_cursor(raw, filter.as_ref(), config)?),
        };
        Ok(Query {
            filter,
            paging,
            count: params.count(),
            sort,
            projection: params.projection.clone(),
        })
    }

    /// The list the service answers.
    pub(super) fn list(&self) -> UserList<'_> {
        UserList {
            filter: self.filter.as_ref().map(|f| f as &dyn UserFilter),
            sort: self.sort.as_ref().map(|s| s as &dyn Order<User>),
            paging: self.paging,
            count: self.count,
        }
    }
}

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

/// Lists users: the service plans, reads, filters, sorts and pages; this
/// renders the page (see [`crate::service::user_lists`] for what it reads).
async fn run_query(ctx: &Ctx, r: &ScimRequest, query: Result<Query, ScimError>) -> Outcome {
    let lists = UserLists::new(&ctx.store, ctx.config.profile);
    let list = query.as_ref().map(Query::list).map_err(Clone::clone);
    let page = lists.list(r.identity(), list).await.map_err(list_error)?;
    let query = query?;
    Ok(match page {
        UserPage::Index {
            start,
            total,
            users,
        } => list_response(
            total,
            start,
            resources(ctx, &query.projection, &users, &r.base_url),
        ),
        UserPage::Cursor { after, users, next } => {
            cursor_list(ctx, &query, after, users, next, &r.base_url)
        }
    })
}

/// `users` as resources, in the projection.
pub(super) fn resources(
    ctx: &Ctx,
    projection: &Projection,
    users: &[User],
    base_url: &str,
) -> Vec<Value> {
    users
        .iter()
        .map(|u| projection.apply(user_schema::to_json(u, base_url, ctx.config.profile)))
        .collect()
}

/// A cursor page: `page` (users after `after`, in id order) and `next`,
/// the id the next page starts after. `nextCursor` is absent only on the
/// last page (RFC 9865 §2). No `startIndex`; `totalResults` only when this
/// page is the whole answer (the first page, and the last): RFC 9865 lets a
/// cursor page omit it, and counting would cost a read that grows with the
/// directory. Clients that did not read ServiceProviderConfig still find it
/// on a one-page answer.
fn cursor_list(
    ctx: &Ctx,
    query: &Query,
    after: u64,
    page: Vec<User>,
    next: Option<u64>,
    base_url: &str,
) -> Response<Body> {
    let page = resources(ctx, &query.projection, &page, base_url);
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
        users.get(r.identity(), r.id).await,
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
        .create(r.identity(), r.body(), |base, body| {
            posted(base, body, profile)
        })
        .await;
    render(written, StatusCode::CREATED, &r, &ctx)
}

/// The user a POST body describes, over `base` (a new user, or in `odm`
/// the identity provider's user of that userName).
pub(super) fn posted(base: &User, body: &Value, profile: Profile) -> Result<User, ScimError> {
    let user = user_schema::from_json(body, base, profile)?;
    user_schema::validate(&user, profile)?;
    Ok(user)
}

/// `current` as a PUT body replaces it: every writable attribute, and
/// `active` only when the body sends it.
pub(super) fn put(current: &User, body: &Value, profile: Profile) -> Result<User, ScimError> {
    let sends_active = body.as_object().is_some_and(|m| {
        m.keys()
            .any(|k| super::schema::normalize_name(k) == "active")
    });
    let mut next = user_schema::from_json(body, current, profile)?;
    if !sends_active {
        next.is_active = current.is_active;
    }
    user_schema::validate(&next, profile)?;
    Ok(next)
}

/// `current` with a PatchOp body applied, all its operations or none.
pub(super) fn patched(current: &User, body: &Value, profile: Profile) -> Result<User, ScimError> {
    let next = super::patch::apply(current, body, profile)?;
    user_schema::validate(&next, profile)?;
    Ok(next)
}

/// `PUT /Users/{id}`: replaces every writable attribute.
pub async fn replace(ctx: Ctx, req: Request) -> Response<Body> {
    let r = ScimRequest::extract(&ctx, &req);
    let profile = ctx.config.profile;
    let users = Users::new(&ctx.store, profile);
    let written = users
        .update(
            r.identity(),
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
            r.identity(),
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
            .delete::<ScimError>(r.identity(), r.id, r.precondition())
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
        Failure::NoSuchOrg(org) => ScimError::no_such_tenant(&org.to_string()),
        Failure::OutsideDomains { refused, allowed } => {
            ScimError::outside_domains(&refused, &allowed)
        }
        Failure::NotImplemented => ScimError::me_at_tenant(),
        // Group writes and admin lists only: a user operation that answers one is a bug.
        Failure::UnknownMembers(_)
        | Failure::TooManyMembers { .. }
        | Failure::GroupTaken { .. }
        | Failure::Changed => {
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
