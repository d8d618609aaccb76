//! The SCIM routes that are no resource: the discovery documents
//! (`/ServiceProviderConfig`, `/ResourceTypes`, `/Schemas`) and the fallback
//! that answers every other method and path under the base in SCIM's format.
//!
//! `/Me` and `/Bulk` are the `rfc` profile's: in `odm` (ODM's API has
//! neither) they are unknown paths, answered as before, 404 to an admin.
use lambda_http::http::{HeaderValue, Method, StatusCode};
use lambda_http::{Body, Request, Response};

use super::request::Base;
use super::request::{admin, signed_in, ScimRequest};
use super::schema::json_response;
use super::{discovery, ScimError, ENTERPRISE_USER_SCHEMA, USER_SCHEMA};
use crate::domain::profile::Profile;
use crate::http::Ctx;
use crate::http::{self, respond};
use crate::store::Wanted;

type Outcome = Result<Response<Body>, ScimError>;

/// `GET /ServiceProviderConfig`, `/ResourceTypes[/User]`, `/Schemas[/{urn}]`
pub async fn discover(ctx: Ctx, req: Request) -> Response<Body> {
    let r = ScimRequest::extract(&ctx, &req);
    respond(discovery_document(&ctx, &r).await)
}

async fn discovery_document(ctx: &Ctx, r: &ScimRequest) -> Outcome {
    admin(ctx, r, Wanted::default()).await?;
    let base_url = &r.base_url;
    let profile = ctx.config.profile;
    let path = r.path.as_str();
    let rest = r.rest();
    let not_found = || ScimError::not_found(format!("No such resource: {path}"));
    let body = match rest {
        "/ServiceProviderConfig" => discovery::service_provider_config(
            base_url,
            ctx.config.profile,
            ctx.config.advertise_security_events,
        ),
        "/ResourceTypes" => discovery::list(vec![
            discovery::user_resource_type(base_url, profile),
            discovery::group_resource_type(base_url),
        ]),
        "/ResourceTypes/User" => discovery::user_resource_type(base_url, profile),
        "/ResourceTypes/Group" => discovery::group_resource_type(base_url),
        "/Schemas" => discovery::list(discovery::schemas(base_url, profile)),
        other => match other.strip_prefix("/Schemas/") {
            Some(USER_SCHEMA) => discovery::user_schema(base_url, profile),
            Some(super::GROUP_SCHEMA) => discovery::group_schema(base_url),
            // An extension's document, when the profile has the extension.
            Some(urn) => discovery::user_extension_schemas(base_url, profile)
                .into_iter()
                .find(|s| s["id"] == urn)
                .ok_or_else(not_found)?,
            None => return Err(not_found()),
        },
    };
    Ok(json_response(StatusCode::OK, &body))
}

/// The methods each SCIM route under `base` serves in `profile`; `None`
/// for paths that are not ours. A tenant base has every route of the global
/// one but the events' key (`/.well-known/jwks.json`), which is global.
fn allowed_methods(base: &Base, path: &str, profile: Profile) -> Option<&'static str> {
    let rest = base.rest(path)?;
    match rest {
        "/.well-known/jwks.json" if base.tenant().is_some() => None,
        "/Me" | "/Bulk" if profile == Profile::Odm => None,
        "/Me" => Some("GET, PUT, PATCH"),
        "/Bulk" => Some("POST"),
        "/Users" | "/Groups" => Some("GET, POST"),
        "/Users/.search" | "/Groups/.search" | "/.search" => Some("POST"),
        "/ServiceProviderConfig"
        | "/ResourceTypes"
        | "/ResourceTypes/User"
        | "/ResourceTypes/Group"
        | "/Schemas"
        | "/.well-known/jwks.json" => Some("GET"),
        _ => {
            if let Some(id) = rest
                .strip_prefix("/Users/")
                .or_else(|| rest.strip_prefix("/Groups/"))
            {
                (!id.is_empty() && !id.contains('/')).then_some("GET, PUT, PATCH, DELETE")
            } else if let Some(urn) = rest.strip_prefix("/Schemas/") {
                [USER_SCHEMA, super::GROUP_SCHEMA, ENTERPRISE_USER_SCHEMA]
                    .contains(&urn)
                    .then_some("GET")
            } else {
                None
            }
        }
    }
}

/// Anything else under `/api/v1/scim`: 405 on our routes, 404 elsewhere, as SCIM Errors.
pub async fn fallback(ctx: Ctx, req: Request) -> Response<Body> {
    let r = ScimRequest::extract(&ctx, &req);
    respond(fallback_response(&ctx, &r).await)
}

/// What the fallback answers `r`: also what `/Me` and `/Bulk` answer in
/// the `odm` profile, which has neither.
pub(super) async fn fallback_response(ctx: &Ctx, r: &ScimRequest) -> Outcome {
    let profile = ctx.config.profile;
    let path = r.path.as_str();
    let method = &r.method;
    if profile == Profile::Rfc && r.base.rest(path) == Some("/Me") {
        if r.base.tenant().is_some() {
            // No user to answer for, whatever the method.
            admin(ctx, r, Wanted::default()).await?;
            return Err(ScimError::me_at_tenant());
        }
        return me_fallback(ctx, r).await;
    }
    admin(ctx, r, Wanted::default()).await?;
    match allowed_methods(&r.base, path, profile) {
        None => Err(ScimError::not_found(format!("No such resource: {path}"))),
        Some(allow)
            if allow.split(", ").any(|m| m == method.as_str()) && method != Method::HEAD =>
        {
            Err(ScimError::server(http::Fault::bug(format!(
                "{method} {path} is not routed"
            ))))
        }
        Some(allow) => Ok(not_allowed(method, path, allow)),
    }
}

/// 405 with `Allow`.
fn not_allowed(method: &Method, path: &str, allow: &'static str) -> Response<Body> {
    let mut resp = ScimError::new(
        405,
        None,
        format!("Method {method} is not allowed on {path}; allowed: {allow}"),
    )
    .into_response();
    resp.headers_mut()
        .insert("allow", HeaderValue::from_static(allow));
    resp
}

/// The methods `/Me` does not serve (`rfc`), to any user signed in: RFC
/// 7644 §3.11 lets a service provider answer 501 for what it does not
/// implement through the alias. `POST /Me` would create a resource for the
/// caller, who already is one (users come from the identity provider or
/// `usersctl`): 501. `DELETE /Me` is understood but not the caller's to
/// make (an administrator or the identity provider deletes users): 403.
async fn me_fallback(ctx: &Ctx, r: &ScimRequest) -> Outcome {
    signed_in(ctx, r, Wanted::default()).await?;
    let method = &r.method;
    match *method {
        Method::POST => Err(ScimError::new(
            501,
            None,
            "POST /Me is not implemented: users are created by an administrator or the identity \
             provider (POST /Users), not through /Me.",
        )),
        Method::DELETE => Err(ScimError::new(
            403,
            None,
            "DELETE /Me is not allowed: an administrator or the identity provider deletes users \
             (DELETE /Users/{id}).",
        )),
        _ => Ok(not_allowed(method, &r.path, "GET, PUT, PATCH")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_and_their_methods() {
        let cases = [
            ("/api/v1/scim/Users", Some("GET, POST")),
            ("/api/v1/scim/Users/12", Some("GET, PUT, PATCH, DELETE")),
            ("/api/v1/scim/Users/.search", Some("POST")),
            ("/api/v1/scim/.search", Some("POST")),
            (
                "/api/v1/scim/Schemas/urn:ietf:params:scim:schemas:core:2.0:User",
                Some("GET"),
            ),
            ("/api/v1/scim/Schemas/urn:nope", None),
            ("/api/v1/scim/Groups", Some("GET, POST")),
            ("/api/v1/scim/Groups/3", Some("GET, PUT, PATCH, DELETE")),
            ("/api/v1/scim/Groups/.search", Some("POST")),
            ("/api/v1/scim/Bundles", None),
            ("/api/v1/scim/Users/1/x", None),
            ("/api/v1/scim/.well-known/jwks.json", Some("GET")),
        ];
        let tenant = Base::Tenant("acme".into());
        for (path, want) in cases {
            assert_eq!(
                allowed_methods(&Base::Global, path, Profile::Odm),
                want,
                "{path}"
            );
            assert_eq!(
                allowed_methods(&Base::Global, path, Profile::Rfc),
                want,
                "{path}"
            );
            // The same routes under a tenant base, but the events' key.
            let under = path.replace("/api/v1/scim", "/api/v1/scim/orgs/acme");
            let want = want.filter(|_| !path.ends_with("jwks.json"));
            assert_eq!(
                allowed_methods(&tenant, &under, Profile::Rfc),
                want,
                "{under}"
            );
            // A tenant path is no global route.
            assert_eq!(
                allowed_methods(&Base::Global, &under, Profile::Rfc),
                None,
                "{under}"
            );
        }
        for (path, rfc) in [
            ("/api/v1/scim/Me", "GET, PUT, PATCH"),
            ("/api/v1/scim/Bulk", "POST"),
        ] {
            assert_eq!(
                allowed_methods(&Base::Global, path, Profile::Rfc),
                Some(rfc),
                "{path}"
            );
            assert_eq!(
                allowed_methods(&Base::Global, path, Profile::Odm),
                None,
                "{path}"
            );
        }
    }
}
