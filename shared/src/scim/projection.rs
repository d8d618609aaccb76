//! `attributes` and `excludedAttributes` (RFC 7644 §3.9): which attributes
//! a response keeps, for every resource type.
use serde_json::{Map, Value};

use super::group_schema::GROUP_ATTRIBUTES;
use super::schema::{self, Returned};
use super::user_schema::USER_ATTRIBUTES;
use super::{values, ScimError};

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
    values::normalize_name(name)
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
