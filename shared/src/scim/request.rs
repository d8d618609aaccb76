//! What every SCIM operation does with its request, whatever the resource:
//! authentication as an administrator, the JSON body, the `{id}` of a detail
//! route, and JSON responses in SCIM's media type.
use lambda_http::http::Method;
use lambda_http::Request;
use serde_json::Value;

use super::base::Base;
use super::projection::Projection;
use super::{ScimError, CONTENT_TYPE};
use crate::auth::{self, Caller, Credentials};
use crate::domain::access::Provisioner;
use crate::http;
use crate::http::QueryParams;
use crate::runtime::Ctx;
use crate::service::users::Precondition;
use crate::service::{Failure, Identity};
use crate::store::{Fetched, Wanted};

/// Authenticates (reading what `wanted` names in the same read) and requires
/// the "Manage organization" permission: privilege `admin`, or under a
/// tenant base the org's own token.
pub async fn admin(
    ctx: &Ctx,
    r: &ScimRequest,
    wanted: Wanted,
) -> Result<(Provisioner, Fetched), ScimError> {
    r.identity()
        .provisioner::<ScimError>(&ctx.store, wanted)
        .await
        .map_err(list_error)
}

/// A failure of the provisioner's authentication, or of a list after it
/// (its query's own error, a store failure), as SCIM says it.
pub fn list_error(f: Failure<ScimError>) -> ScimError {
    match f {
        Failure::Auth(f) => f.into(),
        Failure::Forbidden => ScimError::forbidden(),
        Failure::NoSuchOrg(org) => ScimError::no_such_tenant(&org.to_string()),
        Failure::Refused(e) => e,
        Failure::Store(e) => e.into(),
        other => ScimError::server(http::Fault::bug(format!(
            "authentication failed as {other:?}"
        ))),
    }
}

/// Authenticates any user, admin or not (`/Me`): the caller, and what
/// `wanted` names in the same read.
pub async fn signed_in(
    ctx: &Ctx,
    r: &ScimRequest,
    wanted: Wanted,
) -> Result<(Caller, Fetched), ScimError> {
    Ok(auth::authenticate_with(&ctx.store, &r.credentials, wanted).await?)
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
fn json_body(req: &Request) -> Result<Value, ScimError> {
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
fn check_content_type(req: &Request) -> Result<(), ScimError> {
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
fn path_id(req: &Request) -> Option<u64> {
    http::path_id(req, http::Ids::Canonical)
}

/// Everything a SCIM operation reads from its request, taken in one step
/// before anything runs: the credentials, the `{id}` of a detail route, the
/// query, the projection, `If-Match`, where the API is reached from, and the
/// JSON body of a write (or why it cannot be read, which the operation
/// answers only once the caller and the target are known).
pub struct ScimRequest {
    pub credentials: Credentials,
    /// The base the request came through: global, or an org's tenant base.
    pub base: Base,
    /// The `{id}` when it is a canonical id (`"007"` names nobody).
    pub id: Option<u64>,
    /// The last path segment as sent, for the 404 of an id that is not one.
    pub id_text: String,
    pub query: QueryParams,
    pub projection: Projection,
    /// Whether the query asked for a projection (`attributes` or
    /// `excludedAttributes`).
    pub projection_asked: bool,
    pub if_match: Option<String>,
    pub base_url: String,
    pub method: Method,
    pub path: String,
    pub(super) body: Option<Result<Value, ScimError>>,
}

impl ScimRequest {
    pub fn extract(ctx: &Ctx, req: &Request) -> ScimRequest {
        let query = http::query_pairs(req);
        let (attributes, excluded) = (query.last("attributes"), query.last("excludedAttributes"));
        let projection = Projection::from_lists(attributes, excluded);
        let projection_asked = attributes.is_some() || excluded.is_some();
        let has_body = matches!(*req.method(), Method::POST | Method::PUT | Method::PATCH);
        let base = Base::of_path(req.uri().path());
        ScimRequest {
            credentials: auth::credentials(req.headers()),
            id: path_id(req),
            id_text: req
                .uri()
                .path()
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_string(),
            projection,
            projection_asked,
            query,
            if_match: http::header_str(req.headers(), "if-match").map(str::to_string),
            base_url: base.url(&ctx.origin(req)),
            base,
            method: req.method().clone(),
            path: req.uri().path().to_string(),
            body: has_body.then(|| json_body(req)),
        }
    }

    /// Who the request acts for: its credentials, at its base.
    pub fn identity(&self) -> Identity<'_> {
        match &self.base {
            Base::Global => Identity::Credentials(&self.credentials),
            Base::Tenant(slug) => Identity::Tenant {
                credentials: &self.credentials,
                slug,
            },
        }
    }

    /// The path after the base (`/Users/7`).
    pub fn rest(&self) -> &str {
        self.base.rest(&self.path).unwrap_or(&self.path)
    }

    /// `If-Match`, as the write's precondition.
    pub fn precondition(&self) -> Precondition<'_> {
        Precondition {
            if_match: self.if_match.as_deref(),
        }
    }

    /// The JSON body, or the 400/413/415 it earned.
    pub fn body(&self) -> Result<&Value, ScimError> {
        match &self.body {
            Some(Ok(body)) => Ok(body),
            Some(Err(e)) => Err(e.clone()),
            None => Err(ScimError::invalid_syntax("The request body is empty.")),
        }
    }
}
