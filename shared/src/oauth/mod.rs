//! OAuth 2.0 token endpoint (`POST /api/v1/oauth/token`, RFC 6749 §4.4):
//! an org's OAuth client trades its id and secret for an access token that
//! works under that org's SCIM base (`/api/v1/scim/orgs/{slug}`) exactly as
//! the org's SCIM token does, for an hour, and nowhere else.
//!
//! request.rs reads the request (form, HTTP Basic), grant.rs authenticates
//! the client and issues the token, error.rs answers RFC 6749 §5.2 errors.
mod error;
mod grant;
mod request;

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde_json::json;

pub use error::OAuthError;
pub use grant::{
    grant, new_client, possible_client_id, Issued, ACCESS_TOKEN_SECS, SCOPE_READ, SCOPE_WRITE,
};
pub use request::{ClientCredentials, TokenRequest};

use crate::http::respond;
use crate::http::Ctx;

/// `POST /api/v1/oauth/token` (function `oauth-token`; every other method
/// of the path too, answered 405).
pub async fn token(ctx: Ctx, req: Request) -> Response<Body> {
    respond(token_at(&ctx, &req, chrono::Utc::now().timestamp()).await)
}

/// The token endpoint at a given time (epoch seconds): what [`token`] does,
/// with the clock in the caller's hand.
pub async fn token_at(ctx: &Ctx, req: &Request, now: i64) -> Result<Response<Body>, OAuthError> {
    let request = TokenRequest::extract(req)?;
    let issued = grant(&ctx.store, &request, now).await?;
    let mut resp = crate::http::json(
        StatusCode::OK,
        "application/json",
        &json!({
            "access_token": issued.access_token,
            "token_type": "Bearer",
            "expires_in": issued.expires_in,
            "scope": issued.scope,
        }),
    );
    error::no_store(&mut resp);
    Ok(resp)
}
