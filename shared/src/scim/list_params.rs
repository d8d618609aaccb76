//! The parameters of a list, read the same way for every resource type:
//! [`ListParams`], from a query string or a SearchRequest body.
use serde_json::Value;

use super::request::Projection;
use super::schema::get_ci;
use super::{ScimError, ScimType, DEFAULT_COUNT, MAX_COUNT};
use crate::http::QueryParams;

const SEARCH_REQUEST: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";

/// A SearchRequest's `schemas`, when present, must name the SearchRequest.
fn check_search_schemas(schemas: Option<&Value>) -> Result<(), ScimError> {
    match schemas {
        Some(s)
            if !s
                .as_array()
                .is_some_and(|s| s.iter().any(|v| v == SEARCH_REQUEST)) =>
        {
            Err(ScimError::invalid_syntax(format!(
                "schemas must contain {SEARCH_REQUEST}"
            )))
        }
        _ => Ok(()),
    }
}

/// A SearchRequest's `startIndex` or `count`: a JSON integer or a numeric
/// string; absent or null is none.
fn search_int(value: Option<&Value>, name: &str) -> Result<Option<i64>, ScimError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .map(Some)
            .ok_or_else(|| ScimError::invalid_value(format!("{name} must be an integer"))),
        Some(Value::String(s)) => parse_index(Some(s), name),
        Some(_) => Err(ScimError::invalid_value(format!(
            "{name} must be an integer"
        ))),
    }
}

fn parse_index(raw: Option<&str>, name: &str) -> Result<Option<i64>, ScimError> {
    match raw.map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => v.parse::<i64>().map(Some).map_err(|_| {
            ScimError::invalid_value(format!("{name} must be an integer, not \"{v}\""))
        }),
    }
}

/// What a list or search request asks for, read from its query string or
/// its SearchRequest body before any resource type looks at it: the same
/// parameters, checked the same way, for Users, Groups and the root search.
#[derive(Debug, Clone, Default)]
pub struct ListParams {
    pub filter: Option<String>,
    pub start_index: Option<i64>,
    pub count: Option<i64>,
    /// RFC 9865's `cursor`, when sent (empty: the first page).
    pub cursor: Option<String>,
    /// `sortBy` and `sortOrder` as sent (read by [`super::sort::Sort`], in
    /// the `rfc` profile only).
    pub sort_by: Option<String>,
    pub sort_order: Option<String>,
    pub projection: Projection,
}

impl ListParams {
    /// `GET /Users`, `GET /Groups`: the last value of a repeated parameter.
    pub fn from_query(query: &QueryParams) -> Result<ListParams, ScimError> {
        Ok(ListParams {
            filter: query.last("filter").map(str::to_string),
            start_index: parse_index(query.last("startIndex"), "startIndex")?,
            count: parse_index(query.last("count"), "count")?,
            cursor: query.last("cursor").map(str::to_string),
            sort_by: query.last("sortBy").map(str::to_string),
            sort_order: query.last("sortOrder").map(str::to_string),
            projection: Projection::from_lists(
                query.last("attributes"),
                query.last("excludedAttributes"),
            ),
        })
    }

    /// A SearchRequest (RFC 7644 §3.4.3): member names are caseless, `null`
    /// is the same as absent.
    pub fn from_search_request(body: &Value) -> Result<ListParams, ScimError> {
        let Value::Object(map) = body else {
            return Err(ScimError::invalid_syntax(
                "A SearchRequest must be a JSON object.",
            ));
        };
        let get = |name: &str| get_ci(map, name).filter(|v| !v.is_null());
        check_search_schemas(get("schemas"))?;
        let filter = match get("filter") {
            None => None,
            Some(Value::String(f)) => Some(f.clone()),
            Some(_) => return Err(ScimError::invalid_filter("filter must be a string")),
        };
        let cursor = match get("cursor") {
            None => None,
            Some(Value::String(c)) => Some(c.clone()),
            Some(_) => {
                return Err(ScimError::bad(
                    ScimType::InvalidCursor,
                    "cursor must be a string: empty for the first page, else a nextCursor.",
                ))
            }
        };
        let int = |name: &str| search_int(get(name), name);
        let text = |name: &str| match get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(ScimError::invalid_value(format!("{name} must be a string"))),
        };
        Ok(ListParams {
            filter,
            start_index: int("startIndex")?,
            count: int("count")?,
            cursor,
            sort_by: text("sortBy")?,
            sort_order: text("sortOrder")?,
            projection: Projection::from_json(get("attributes"), get("excludedAttributes"))?,
        })
    }

    /// The filter, unless it is empty.
    pub fn filter(&self) -> Option<&str> {
        self.filter
            .as_deref()
            .map(str::trim)
            .filter(|f| !f.is_empty())
    }

    /// 1-based, at least 1.
    pub fn start(&self) -> usize {
        self.start_index.unwrap_or(1).max(1) as usize
    }

    /// [`DEFAULT_COUNT`] when absent; clamped to `0..=MAX_COUNT`.
    pub fn count(&self) -> usize {
        self.count
            .map_or(DEFAULT_COUNT, |c| c.clamp(0, MAX_COUNT as i64) as usize)
    }
}
