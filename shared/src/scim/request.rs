//! What every SCIM operation does with its request, whatever the resource:
//! authentication as an administrator, the JSON body, the `{id}` of a detail
//! route, and JSON responses in SCIM's media type.
use lambda_http::Request;
use serde_json::Value;

use super::{ScimError, CONTENT_TYPE};
use crate::auth::{self, Caller};
use crate::http;
use crate::runtime::Ctx;
use crate::store::{Fetched, Wanted};

/// Authenticates (reading what `wanted` names in the same read) and requires
/// the "Manage organization" permission: privilege `admin`.
pub async fn admin(
    ctx: &Ctx,
    req: &Request,
    wanted: Wanted,
) -> Result<(Caller, Fetched), ScimError> {
    let (caller, fetched) = auth::authenticate(&ctx.store, req.headers(), wanted).await?;
    if !caller.user.is_admin() {
        return Err(ScimError::forbidden());
    }
    Ok((caller, fetched))
}

pub fn writable(caller: &Caller) -> Result<(), ScimError> {
    if caller.read_only {
        Err(ScimError::new(403, None, "This token is read-only."))
    } else {
        Ok(())
    }
}

/// The JSON body: ≤ 1 MiB, sent as `application/scim+json` or
/// `application/json` (parameters such as `charset` allowed).
///
/// The content type is required. A body without one, or with one an HTML
/// form can send (`text/plain`, `application/x-www-form-urlencoded`,
/// `multipart/form-data`), is what a page on another site can make a
/// browser send cross-site without a CORS preflight, carrying the Basic
/// credentials the browser remembers for this API: refusing it before
/// anything is read or written is what keeps such a page from provisioning
/// users in the signed-in administrator's name.
pub fn json_body(req: &Request) -> Result<Value, ScimError> {
    check_content_type(req)?;
    let bytes = http::body_bytes(req)
        .map_err(|_| ScimError::new(413, None, "The request body is larger than 1 MiB."))?;
    if bytes.is_empty() {
        return Err(ScimError::invalid_syntax("The request body is empty."));
    }
    serde_json::from_slice(bytes)
        .map_err(|e| ScimError::invalid_syntax(format!("The request body is not valid JSON: {e}")))
}

/// 415 unless the body is declared as JSON (see [`json_body`] for why a
/// missing `Content-Type` is refused too).
pub fn check_content_type(req: &Request) -> Result<(), ScimError> {
    match http::content_type(req.headers()) {
        Some(ct) if ct == "application/json" || ct == CONTENT_TYPE => Ok(()),
        Some(ct) => Err(ScimError::new(
            415,
            None,
            format!(
                "Unsupported media type \"{ct}\": send the body as application/scim+json or \
                 application/json."
            ),
        )),
        None => Err(ScimError::new(
            415,
            None,
            "The request has a body but no Content-Type: send it as application/scim+json or \
             application/json.",
        )),
    }
}

/// The `{id}` of a detail route: canonical decimal ids only ("007" is not user 7).
pub fn path_id(req: &Request) -> Option<u64> {
    http::path_id(req, http::Ids::Canonical)
}
