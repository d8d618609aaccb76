//! HTTP plumbing both APIs share: request ids, absolute URLs, query strings,
//! bodies and JSON responses.
use lambda_http::http::{header, HeaderMap, HeaderValue, StatusCode};
use lambda_http::{Body, Request, RequestExt, Response};

/// Bodies larger than this (1 MiB) are refused with 413, before they are parsed.
pub const MAX_BODY: usize = 1024 * 1024;

/// The query string as ordered, decoded pairs. Taken from the URI when it has
/// one (it keeps order and repeats); else from the API Gateway parameters.
pub fn query_pairs(req: &Request) -> QueryParams {
    if let Some(q) = req.uri().query().filter(|q| !q.is_empty()) {
        return QueryParams(form_urlencoded::parse(q.as_bytes()).into_owned().collect());
    }
    let params = req.query_string_parameters();
    let mut pairs: Vec<(String, String)> = params
        .iter()
        .flat_map(|(k, _)| {
            params
                .all(k)
                .unwrap_or_default()
                .into_iter()
                .map(move |v| (k.to_string(), v.to_string()))
        })
        .collect();
    pairs.sort_by(|a, b| a.0.cmp(&b.0));
    QueryParams(pairs)
}

/// A request's query parameters, in order, repeats kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryParams(pub Vec<(String, String)>);

impl QueryParams {
    /// The last value of a repeated parameter, as both APIs read one (Django's
    /// `QueryDict.get`).
    pub fn last(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

impl std::ops::Deref for QueryParams {
    type Target = [(String, String)];

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

/// A route parameter (`{id}`), or the last path segment when the request did
/// not come through a router (a function URL, a direct invoke).
pub fn path_param(req: &Request, name: &str) -> Option<String> {
    match req.path_parameters().first(name) {
        Some(v) => Some(v.to_string()),
        None => req.uri().path().rsplit('/').next().map(str::to_string),
    }
}

pub fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Where this API is reached from outside, for `Location`, `meta.location`
/// and pagination links: `configured` (`PUBLIC_BASE_URL`, the template's
/// `PublicBaseUrl` parameter; `make dev` sets the local address), else the
/// domain API Gateway received the request on (HTTPS), else — a request
/// that came through no gateway — its `Host`. Never a client's
/// `X-Forwarded-Host` or `X-Forwarded-Proto`: links must not point where a
/// client says.
pub fn base_url(req: &Request, configured: Option<&str>) -> String {
    if let Some(base) = configured {
        return base.to_string();
    }
    if let Some(lambda_http::request::RequestContext::ApiGatewayV2(c)) = req.request_context_ref() {
        if let Some(domain) = c.domain_name.as_deref().filter(|d| valid_host(d)) {
            return format!("https://{domain}");
        }
    }
    origin(req.headers())
}

fn valid_host(host: &str) -> bool {
    !host.is_empty()
        && host.bytes().all(|b| b.is_ascii_graphic())
        && !host.contains(['/', '?', '#', '@'])
}

/// The local fallback of [`base_url`]: `http://` and the `Host` header.
fn origin(headers: &HeaderMap) -> String {
    let host = header_str(headers, "host")
        .map(str::trim)
        .filter(|h| valid_host(h))
        .unwrap_or("localhost");
    format!("http://{host}")
}

/// A body over [`MAX_BODY`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLarge;

/// The request body as bytes, refused when it is over [`MAX_BODY`].
pub fn body_bytes(req: &Request) -> Result<&[u8], TooLarge> {
    let bytes: &[u8] = match req.body() {
        Body::Empty => &[],
        Body::Text(t) => t.as_bytes(),
        Body::Binary(b) => b,
        _ => &[],
    };
    if bytes.len() > MAX_BODY {
        Err(TooLarge)
    } else {
        Ok(bytes)
    }
}

/// The media type of the request body, lower-cased, without parameters.
pub fn content_type(headers: &HeaderMap) -> Option<String> {
    header_str(headers, "content-type").map(|ct| {
        ct.split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase()
    })
}

pub fn json(
    status: StatusCode,
    content_type: &'static str,
    body: &serde_json::Value,
) -> Response<Body> {
    let mut resp = Response::new(Body::Text(body.to_string()));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

/// The server-side reason a request failed (503 or 500): its kind and DynamoDB
/// code go in the request's log line; `detail` goes to the log only, never to
/// the client, and `retry_after` becomes the `Retry-After` header of a 503.
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    pub kind: &'static str,
    pub code: String,
    pub detail: String,
    pub retry_after: Option<u64>,
}

impl Fault {
    /// What a store failure tells the client: `Some(retry_after)` when it may
    /// try again (503), `None` when it is a server fault (500).
    pub fn from_store(err: &crate::store::StoreError) -> Fault {
        let (kind, code) = err.log_fields();
        let retry_after = match err {
            crate::store::StoreError::Unavailable(u) => Some(u.kind.retry_after()),
            _ => None,
        };
        Fault {
            kind,
            code,
            detail: err.to_string(),
            retry_after,
        }
    }

    /// A bug in this code (a route that reaches the wrong function, say).
    pub fn bug(detail: impl Into<String>) -> Fault {
        Fault {
            kind: "bug",
            code: String::new(),
            detail: detail.into(),
            retry_after: None,
        }
    }

    pub fn status(&self) -> StatusCode {
        if self.retry_after.is_some() {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            StatusCode::INTERNAL_SERVER_ERROR
        }
    }

    /// Stamps `Retry-After` on a 503 and keeps the fault with the response for
    /// the request's log line ([`crate::runtime::dispatch`] reads it).
    pub fn attach(self, resp: &mut Response<Body>) {
        if let Some(secs) = self.retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp.extensions_mut().insert(self);
    }
}

pub fn empty(status: StatusCode) -> Response<Body> {
    let mut resp = Response::new(Body::Empty);
    *resp.status_mut() = status;
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_ignores_forwarding_headers() {
        let mut h = HeaderMap::new();
        assert_eq!(origin(&h), "http://localhost");
        h.insert("host", HeaderValue::from_static("api.local:9000"));
        assert_eq!(origin(&h), "http://api.local:9000");
        h.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        h.insert("x-forwarded-host", HeaderValue::from_static("evil.example"));
        assert_eq!(origin(&h), "http://api.local:9000");
        h.insert("host", HeaderValue::from_static("evil.example/path?"));
        assert_eq!(origin(&h), "http://localhost");
    }
}

/// An API's error type: how it is answered (DRF JSON on `/api/users`, a SCIM
/// Error on `/api/v1/scim`).
pub trait ErrorResponse {
    fn into_response(self) -> Response<Body>;
}

/// The response of a handler's result: the response, or its error answered
/// in its API's format.
pub fn respond<E: ErrorResponse>(result: Result<Response<Body>, E>) -> Response<Body> {
    result.unwrap_or_else(ErrorResponse::into_response)
}

/// How a detail route reads the `{id}` in its path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ids {
    /// Any decimal digits, as Django's `int()` reads them (`007` is 7).
    Digits,
    /// Only an id as responses write it: `007` names no user (SCIM ids are
    /// strings, compared exactly).
    Canonical,
}

/// The `{id}` of a detail route (from the route parameters, else the last
/// path segment), as a user or group id; `None` when it cannot be one.
pub fn path_id(req: &Request, ids: Ids) -> Option<u64> {
    let raw = path_param(req, "id")?;
    match ids {
        Ids::Canonical => crate::domain::ids::canonical_id(&raw),
        Ids::Digits => raw.parse().ok(),
    }
}
