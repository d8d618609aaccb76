//! The parameters of a list, read the same way for every resource type:
//! `startIndex` and `count` from a query string or a SearchRequest body, and
//! the SearchRequest's own `schemas`.
use serde_json::Value;

use super::ScimError;

const SEARCH_REQUEST: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";

/// A SearchRequest's `schemas`, when present, must name the SearchRequest.
pub fn check_search_schemas(schemas: Option<&Value>) -> Result<(), ScimError> {
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
pub fn search_int(value: Option<&Value>, name: &str) -> Result<Option<i64>, ScimError> {
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

pub fn parse_index(raw: Option<&str>, name: &str) -> Result<Option<i64>, ScimError> {
    match raw.map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => v.parse::<i64>().map(Some).map_err(|_| {
            ScimError::invalid_value(format!("{name} must be an integer, not \"{v}\""))
        }),
    }
}
