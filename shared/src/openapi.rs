//! `GET /api/schema` (and `/api/schema/`, CVAT's path): the OpenAPI 3.1
//! document of both APIs, `docs/openapi.yaml`, compiled in. Public, as
//! CVAT's is. It is served as YAML or JSON the way CVAT's drf-spectacular
//! view chooses: `?format=` (or `?scheme=`, CVAT's name for it) `json` or
//! `yaml` first, then `Accept`; YAML (`application/vnd.oai.openapi`) when
//! nothing says. The JSON form is made from the YAML once per container.
use std::sync::OnceLock;

use lambda_http::http::{HeaderValue, StatusCode};
use lambda_http::{Body, Request, Response};
use serde_json::{json, Value};

use crate::http::Ctx;
use crate::http::{self, QueryParams};

/// The document, as written.
pub const DOCUMENT: &str = include_str!("../../docs/openapi.yaml");

/// The two forms the document is served in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Yaml,
    Json,
}

/// What a request may get, in the order that wins when `Accept` allows
/// several (drf-spectacular's renderers: the first is the default).
const MEDIA_TYPES: [(&str, Format); 4] = [
    ("application/vnd.oai.openapi", Format::Yaml),
    ("application/yaml", Format::Yaml),
    ("application/vnd.oai.openapi+json", Format::Json),
    ("application/json", Format::Json),
];

/// Why a request gets no document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A `format` that is neither `json` nor `yaml`: DRF's 404.
    UnknownFormat,
    /// An `Accept` that allows none of `MEDIA_TYPES` (of the format asked).
    NotAcceptable,
}

/// The media type (and so the form) a request gets.
pub fn negotiate(query: &QueryParams, accept: Option<&str>) -> Result<&'static str, Refusal> {
    let asked = query
        .last("format")
        .or_else(|| query.last("scheme"))
        .filter(|f| !f.is_empty());
    let format = match asked {
        None => None,
        Some("json") => Some(Format::Json),
        Some("yaml") => Some(Format::Yaml),
        Some(_) => return Err(Refusal::UnknownFormat),
    };
    let offered: Vec<&'static str> = MEDIA_TYPES
        .iter()
        .filter(|(_, f)| format.is_none_or(|want| *f == want))
        .map(|(media, _)| *media)
        .collect();
    let Some(accept) = accept.map(str::trim).filter(|a| !a.is_empty()) else {
        return Ok(offered[0]);
    };
    // Ranges by preference (`q`, highest first; equal ones in their order),
    // those with q=0 refused.
    let mut ranges: Vec<(String, f32)> = accept
        .split(',')
        .filter_map(|range| {
            let mut parts = range.split(';').map(str::trim);
            let media = parts.next()?.to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.split_once('='))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("q"))
                .map_or(Some(1.0), |(_, v)| v.trim().parse::<f32>().ok())?;
            (!media.is_empty() && q > 0.0).then_some((media, q))
        })
        .collect();
    ranges.sort_by(|a, b| b.1.total_cmp(&a.1));
    ranges
        .iter()
        .find_map(|(range, _)| {
            offered
                .iter()
                .find(|media| media_matches(range, media))
                .copied()
        })
        .ok_or(Refusal::NotAcceptable)
}

fn media_matches(range: &str, media: &str) -> bool {
    match range.strip_suffix("/*") {
        Some("*") => true,
        Some(kind) => media.split('/').next() == Some(kind),
        None => range == media,
    }
}

fn format_of(media: &str) -> Format {
    MEDIA_TYPES
        .iter()
        .find(|(m, _)| *m == media)
        .map_or(Format::Yaml, |(_, f)| *f)
}

/// The document as JSON, made once per container.
pub fn document_json() -> Result<&'static str, &'static str> {
    static JSON: OnceLock<Result<String, String>> = OnceLock::new();
    JSON.get_or_init(|| {
        serde_norway::from_str::<Value>(DOCUMENT)
            .map(|doc| doc.to_string())
            .map_err(|e| e.to_string())
    })
    .as_ref()
    .map(String::as_str)
    .map_err(String::as_str)
}

/// `GET /api/schema`, `GET /api/schema/`
pub async fn schema(_ctx: Ctx, req: Request) -> Response<Body> {
    let query = http::query_pairs(&req);
    let accept = http::header_str(req.headers(), "accept");
    let media = match negotiate(&query, accept) {
        Ok(media) => media,
        Err(Refusal::UnknownFormat) => return error(StatusCode::NOT_FOUND, "Not found."),
        Err(Refusal::NotAcceptable) => {
            return error(
                StatusCode::NOT_ACCEPTABLE,
                "Could not satisfy the request Accept header.",
            )
        }
    };
    let body = match format_of(media) {
        Format::Yaml => DOCUMENT,
        Format::Json => match document_json() {
            Ok(json) => json,
            Err(e) => {
                let mut resp = error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "A server error occurred.",
                );
                http::Fault::bug(format!("docs/openapi.yaml does not parse: {e}"))
                    .attach(&mut resp);
                return resp;
            }
        },
    };
    let mut resp = Response::new(Body::Text(body.to_string()));
    let headers = resp.headers_mut();
    headers.insert("content-type", HeaderValue::from_static(media));
    headers.insert("vary", HeaderValue::from_static("Accept"));
    resp
}

/// DRF's error body, as JSON (the document's own errors are no API's).
fn error(status: StatusCode, detail: &str) -> Response<Body> {
    let mut resp = http::json(status, "application/json", &json!({ "detail": detail }));
    resp.headers_mut()
        .insert("vary", HeaderValue::from_static("Accept"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> QueryParams {
        QueryParams(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    /// The query, the `Accept` header, and what they get.
    type Case = (
        &'static [(&'static str, &'static str)],
        Option<&'static str>,
        Result<&'static str, Refusal>,
    );

    #[test]
    fn format_then_accept_choose_the_form() {
        use Refusal::*;
        let cases: &[Case] = &[
            (&[], None, Ok("application/vnd.oai.openapi")),
            (&[], Some("*/*"), Ok("application/vnd.oai.openapi")),
            (&[], Some("application/json"), Ok("application/json")),
            (&[], Some("application/yaml"), Ok("application/yaml")),
            (
                &[],
                Some("application/vnd.oai.openapi+json"),
                Ok("application/vnd.oai.openapi+json"),
            ),
            (
                &[],
                Some("text/html, application/json;q=0.9"),
                Ok("application/json"),
            ),
            (
                &[],
                Some("application/yaml;q=0.5, application/json"),
                Ok("application/json"),
            ),
            (&[], Some("application/json;q=0"), Err(NotAcceptable)),
            (&[], Some("text/html"), Err(NotAcceptable)),
            (
                &[],
                Some("application/*"),
                Ok("application/vnd.oai.openapi"),
            ),
            (
                &[("format", "json")],
                None,
                Ok("application/vnd.oai.openapi+json"),
            ),
            (
                &[("format", "json")],
                Some("*/*"),
                Ok("application/vnd.oai.openapi+json"),
            ),
            (
                &[("format", "json")],
                Some("application/json"),
                Ok("application/json"),
            ),
            (
                &[("format", "yaml")],
                Some("application/json"),
                Err(NotAcceptable),
            ),
            (
                &[("scheme", "json")],
                None,
                Ok("application/vnd.oai.openapi+json"),
            ),
            (&[("format", "")], None, Ok("application/vnd.oai.openapi")),
            (
                &[("format", "yaml"), ("format", "json")],
                None,
                Ok("application/vnd.oai.openapi+json"),
            ),
            (&[("format", "xml")], None, Err(UnknownFormat)),
            (&[("format", "JSON")], None, Err(UnknownFormat)),
        ];
        for (pairs, accept, want) in cases {
            assert_eq!(
                negotiate(&query(pairs), *accept),
                *want,
                "{pairs:?} {accept:?}"
            );
        }
    }

    #[test]
    fn the_document_is_openapi_3_1_and_its_json_is_the_yaml() {
        let json: Value = serde_json::from_str(document_json().unwrap()).unwrap();
        assert_eq!(json["openapi"], "3.1.0");
        // Anchors are expanded: /api/schema/ has the responses /api/schema has.
        let items = &json["components"]["pathItems"];
        assert_eq!(
            items["Schema"]["get"]["responses"],
            items["SchemaSlash"]["get"]["responses"]
        );
        assert!(json["paths"]["/api/users/{id}"]["patch"].is_object());
        assert_eq!(
            json["paths"]["/api/schema"]["$ref"],
            "#/components/pathItems/Schema"
        );
    }
}
