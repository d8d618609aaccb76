//! `/Me` (RFC 7644 §3.11), the `rfc` profile's alias of the signed-in
//! user's own User: `GET` for anyone signed in, admin or not; `PATCH` and
//! `PUT` change only what a user may change about themselves (the rows of
//! the User table marked `self_service`), anything else is a 403 and
//! nothing is written. Every answer carries the user's permanent
//! `Location` (`/Users/{id}`), as §3.11 requires. The other methods are the
//! fallback's (`routes.rs`). In the `odm` profile, whose API has no `/Me`,
//! these answer what the fallback answers any unknown path.
use lambda_http::http::{HeaderValue, StatusCode};
use lambda_http::{Body, Request, Response};
use serde_json::Value;

use super::request::ScimRequest;
use super::routes::fallback_response;
use super::schema::ResourceType;
use super::users::{patched, put, render, user_error};
use super::{user_schema, ScimError};
use crate::domain::user::User;
use crate::http::respond;
use crate::http::{Ctx, Profile};
use crate::service::users::Users;
use crate::service::Failure;

/// `GET /Me`: the caller's User, as `/Users/{id}` shows it (projections
/// work); the read of authentication is the whole cost.
pub async fn get(ctx: Ctx, req: Request) -> Response<Body> {
    let r = ScimRequest::extract(&ctx, &req);
    if ctx.config.profile == Profile::Odm {
        return respond(fallback_response(&ctx, &r).await);
    }
    let users = Users::new(&ctx.store, ctx.config.profile);
    if r.base.tenant().is_some() {
        return at_tenant(&users, &r).await;
    }
    answer(users.me(&r.credentials).await, &r, &ctx)
}

/// `/Me` under a tenant base: the credentials checked as there, then 501
/// (the org's credential is no user; a global admin sees what it sees).
async fn at_tenant(users: &Users<'_>, r: &ScimRequest) -> Response<Body> {
    let failure = users.me_at_tenant::<ScimError>(r.identity()).await;
    user_error(failure, "").into_response()
}

/// `PUT /Me`: the body replaces the caller's User, as a `PUT /Users/{id}`
/// would; what it would change must all be the caller's to change.
pub async fn replace(ctx: Ctx, req: Request) -> Response<Body> {
    change_me(ctx, req, put).await
}

/// `PATCH /Me`: a PatchOp on the caller's User, as `PATCH /Users/{id}`
/// would apply it; what it would change must all be the caller's to change.
pub async fn patch(ctx: Ctx, req: Request) -> Response<Body> {
    change_me(ctx, req, patched).await
}

/// `PUT` or `PATCH /Me`: `change` makes the next User from the current one
/// and the body, and it must change only what is the caller's to change.
async fn change_me(
    ctx: Ctx,
    req: Request,
    change: fn(&User, &Value, Profile) -> Result<User, ScimError>,
) -> Response<Body> {
    let r = ScimRequest::extract(&ctx, &req);
    let profile = ctx.config.profile;
    if profile == Profile::Odm {
        return respond(fallback_response(&ctx, &r).await);
    }
    let users = Users::new(&ctx.store, profile);
    if r.base.tenant().is_some() {
        return at_tenant(&users, &r).await;
    }
    let written = users
        .update_me(
            &r.credentials,
            r.precondition(),
            r.body(),
            |cur, body| change(cur, body, profile),
            |cur, next| user_schema::self_service_change(cur, next, profile),
        )
        .await;
    answer(written, &r, &ctx)
}

/// The user as `/Users/{id}` answers it, with its `Location`; or the
/// failure, in SCIM's words.
fn answer(result: Result<User, Failure<ScimError>>, r: &ScimRequest, ctx: &Ctx) -> Response<Body> {
    let id = result.as_ref().ok().map(|u| u.id);
    let mut resp = render(result, StatusCode::OK, r, ctx);
    let location = id.map(|id| ResourceType::User.location(id, &r.base_url));
    if let Some(loc) = location.and_then(|l| HeaderValue::from_str(&l).ok()) {
        resp.headers_mut().insert("location", loc);
    }
    resp
}
