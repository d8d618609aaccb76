//! What every SCIM operation does with its request, whatever the resource:
//! authentication as an administrator, the JSON body, the `{id}` of a detail
//! route, and JSON responses in SCIM's media type.
use lambda_http::http::Method;
use lambda_http::Request;
use serde_json::{Map, Value};

use super::group_schema::GROUP_ATTRIBUTES;
use super::schema::Returned;
use super::user_schema::USER_ATTRIBUTES;
use super::{schema, ScimError, BASE_PATH, CONTENT_TYPE};
use crate::auth::{Caller, Credentials};
use crate::domain::Provisioner;
use crate::http::Ctx;
use crate::http::QueryParams;
use crate::service::users::Precondition;
use crate::service::{Failure, Identity};
use crate::store::{Fetched, Wanted};
use crate::{auth, http};

/// Authenticates (reading what `wanted` names in the same read) and requires
/// the "Manage organization" permission: privilege `admin`, or under a
/// tenant base the org's own token.
pub async fn admin(
    ctx: &Ctx,
    r: &ScimRequest,
    wanted: Wanted,
) -> Result<(Provisioner, Fetched), ScimError> {
    r.identity()
        .provisioner::<Failure<ScimError>>(&ctx.store, wanted)
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

// ------------------------------------------------------------ base
// Where a SCIM request is addressed: the global base `/api/v1/scim`, for
// global admins, or an organization's tenant base
// `/api/v1/scim/orgs/{slug}`, where the org's own credentials (and global
// admins) provision the users that org owns. The same functions serve both;
// every link a response carries (`meta.location`, `$ref`, `Location`)
// points under the base the request came through.

/// The segment after the global base that starts a tenant base.
const TENANTS: &str = "/orgs/";

/// The SCIM base a request came through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Base {
    Global,
    /// An org's base, by the slug as the path sent it (not yet looked up).
    Tenant(String),
}

impl Base {
    /// The base `path` is under: a tenant base when it starts with
    /// `/api/v1/scim/orgs/{slug}/` (or is exactly that), else the global one.
    pub fn of_path(path: &str) -> Base {
        let Some(rest) = path
            .strip_prefix(BASE_PATH)
            .and_then(|r| r.strip_prefix(TENANTS))
        else {
            return Base::Global;
        };
        let slug = rest.split('/').next().unwrap_or_default();
        if slug.is_empty() {
            return Base::Global;
        }
        Base::Tenant(slug.to_string())
    }

    /// The base's path: `/api/v1/scim` or `/api/v1/scim/orgs/{slug}`.
    pub fn path(&self) -> String {
        match self {
            Base::Global => BASE_PATH.to_string(),
            Base::Tenant(slug) => format!("{BASE_PATH}{TENANTS}{slug}"),
        }
    }

    /// The base's URL for clients reaching the API at `origin`.
    pub fn url(&self, origin: &str) -> String {
        format!("{origin}{}", self.path())
    }

    /// What of `path` follows the base (`/Users/7`), if it is under it.
    pub fn rest<'p>(&self, path: &'p str) -> Option<&'p str> {
        path.strip_prefix(self.path().as_str())
    }

    /// The slug of a tenant base.
    pub fn tenant(&self) -> Option<&str> {
        match self {
            Base::Global => None,
            Base::Tenant(slug) => Some(slug),
        }
    }
}

/// The global base's URL for clients reaching the API at `origin`.
pub fn base_url(origin: &str) -> String {
    Base::Global.url(origin)
}

// ------------------------------------------------------------ projection
// `attributes` and `excludedAttributes` (RFC 7644 §3.9): which attributes
// a response keeps, for every resource type.

/// Which attributes a response keeps (RFC 7644 §3.9). `schemas` and the
/// attributes returned always (`id`) stay. Names are paths: `name`,
/// `name.givenName`, with or without the core schema's URN; an extension
/// (`urn:…:enterprise:2.0:User`) or one of its attributes
/// (`urn:…:enterprise:2.0:User:manager.value`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Projection {
    /// Each name as lower-case segments: `["name", "givenname"]`, or an
    /// extension's URN first.
    attributes: Vec<Vec<String>>,
    excluded: Vec<Vec<String>>,
}

/// A requested name as lower-case path segments: the extension's URN, then
/// the attribute path inside it; or a core path without its URN.
fn segments(name: &str) -> Vec<String> {
    let lower = name.trim().to_ascii_lowercase();
    let extension = USER_ATTRIBUTES
        .iter()
        .filter(|a| a.extension.is_some())
        .map(|a| a.name.to_ascii_lowercase())
        .find(|urn| lower.starts_with(urn.as_str()));
    if let Some(urn) = extension {
        let rest = &lower[urn.len()..];
        if rest.is_empty() {
            return vec![urn];
        }
        if let Some(path) = rest.strip_prefix(':') {
            return std::iter::once(urn)
                .chain(path.split('.').map(str::to_string))
                .collect();
        }
    }
    schema::normalize_name(name)
        .split('.')
        .map(str::to_string)
        .collect()
}

impl Projection {
    /// From comma-separated lists, as in query strings.
    pub fn from_lists(attributes: Option<&str>, excluded: Option<&str>) -> Projection {
        let split = |s: Option<&str>| -> Vec<Vec<String>> {
            s.unwrap_or_default()
                .split(',')
                .filter(|a| !a.trim().is_empty())
                .map(segments)
                .collect()
        };
        Projection {
            attributes: split(attributes),
            excluded: split(excluded),
        }
    }

    /// From a SearchRequest's arrays (or comma-separated strings).
    pub fn from_json(
        attributes: Option<&Value>,
        excluded: Option<&Value>,
    ) -> Result<Projection, ScimError> {
        let list = |v: Option<&Value>, name: &str| -> Result<String, ScimError> {
            match v {
                None | Some(Value::Null) => Ok(String::new()),
                Some(Value::String(s)) => Ok(s.clone()),
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|i| {
                        i.as_str().map(str::to_string).ok_or_else(|| {
                            ScimError::invalid_value(format!("{name} must be a list of strings"))
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map(|v| v.join(",")),
                Some(_) => Err(ScimError::invalid_value(format!(
                    "{name} must be a list of strings"
                ))),
            }
        };
        let a = list(attributes, "attributes")?;
        let e = list(excluded, "excludedAttributes")?;
        Ok(Projection::from_lists(Some(&a), Some(&e)))
    }

    pub fn apply(&self, resource: Value) -> Value {
        let Value::Object(map) = resource else {
            return resource;
        };
        let always = |k: &str| {
            k.eq_ignore_ascii_case("schemas")
                || schema::find(USER_ATTRIBUTES, k)
                    .map(|a| a.returned)
                    .or_else(|| schema::find(GROUP_ATTRIBUTES, k).map(|a| a.returned))
                    == Some(Returned::Always)
        };
        let include = !self.attributes.is_empty();
        let paths = tails(if include {
            &self.attributes
        } else {
            &self.excluded
        });
        let mut out: Map<String, Value> = map
            .into_iter()
            .filter_map(|(key, value)| {
                if always(&key) {
                    Some((key, value))
                } else {
                    project(key, value, &paths, include)
                }
            })
            .collect();
        // `schemas` names the extensions the projected resource still shows.
        let shown: Vec<String> = out.keys().cloned().collect();
        if let Some(Value::Array(schemas)) = out.get_mut("schemas") {
            schemas.retain(|s| {
                let urn = s.as_str().unwrap_or_default();
                !USER_ATTRIBUTES
                    .iter()
                    .any(|a| a.extension.is_some() && a.name == urn)
                    || shown.iter().any(|k| k == urn)
            });
        }
        Value::Object(out)
    }
}

/// The paths as slices of their segments.
fn tails(paths: &[Vec<String>]) -> Vec<&[String]> {
    paths.iter().map(Vec::as_slice).collect()
}

/// The paths under `key` (its own: an empty tail).
fn under<'p>(paths: &[&'p [String]], key: &str) -> Vec<&'p [String]> {
    let key = key.to_ascii_lowercase();
    paths
        .iter()
        .filter_map(|p| match p.split_first() {
            Some((head, tail)) if *head == key => Some(tail),
            _ => None,
        })
        .collect()
}

/// One attribute of an object, kept (`include`: when `paths` name it or
/// something inside it) or dropped (otherwise: when they name it whole),
/// with what `paths` name inside it kept or dropped the same way.
fn project(
    key: String,
    value: Value,
    paths: &[&[String]],
    include: bool,
) -> Option<(String, Value)> {
    let inner = under(paths, &key);
    let whole = inner.iter().any(|t| t.is_empty());
    match (include, whole, inner.is_empty()) {
        (true, true, _) | (false, false, true) => Some((key, value)),
        (true, false, true) | (false, true, _) => None,
        (_, false, false) => Some((key, nested(value, &inner, include))),
    }
}

/// [`project`] applied inside an object, or inside each object of a list.
fn nested(value: Value, paths: &[&[String]], include: bool) -> Value {
    match value {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter_map(|(k, v)| project(k, v, paths, include))
                .collect(),
        ),
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|i| nested(i, paths, include))
                .collect(),
        ),
        other => other,
    }
}

#[cfg(test)]
mod base_tests {
    use super::*;

    #[test]
    fn a_path_names_its_base() {
        let tenant = |s: &str| Base::Tenant(s.to_string());
        let cases = [
            ("/api/v1/scim/Users", Base::Global),
            ("/api/v1/scim/orgs", Base::Global),
            ("/api/v1/scim/orgs/", Base::Global),
            ("/api/v1/scim/orgs/acme", tenant("acme")),
            ("/api/v1/scim/orgs/acme/Users/7", tenant("acme")),
            ("/api/v1/scim/orgs/a-b_1/.search", tenant("a-b_1")),
        ];
        for (path, want) in cases {
            assert_eq!(Base::of_path(path), want, "{path}");
        }
        let acme = tenant("acme");
        assert_eq!(
            acme.rest("/api/v1/scim/orgs/acme/Users/7"),
            Some("/Users/7")
        );
        assert_eq!(acme.url("https://h"), "https://h/api/v1/scim/orgs/acme");
        assert_eq!(Base::Global.rest("/api/v1/scim/Me"), Some("/Me"));
    }
}
