//! `attributes` and `excludedAttributes` (RFC 7644 §3.9): which attributes
//! a response keeps, for every resource type.
use serde_json::{Map, Value};

use super::group_schema::GROUP_ATTRIBUTES;
use super::schema::{self, Returned};
use super::user_schema::USER_ATTRIBUTES;
use super::{values, ScimError};

/// Which attributes a response keeps (RFC 7644 §3.9). `schemas` and the
/// attributes returned always (`id`) stay.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Projection {
    attributes: Vec<String>,
    excluded: Vec<String>,
}

impl Projection {
    /// From comma-separated lists, as in query strings.
    pub fn from_lists(attributes: Option<&str>, excluded: Option<&str>) -> Projection {
        let split = |s: Option<&str>| -> Vec<String> {
            s.unwrap_or_default()
                .split(',')
                .map(values::normalize_name)
                .filter(|a| !a.is_empty())
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
        let mut out = Map::new();
        for (key, value) in map {
            let lower = key.to_ascii_lowercase();
            if always(&key) {
                out.insert(key, value);
                continue;
            }
            if !self.attributes.is_empty() {
                if self.attributes.contains(&lower) {
                    out.insert(key, value);
                } else {
                    let subs: Vec<&str> = self
                        .attributes
                        .iter()
                        .filter_map(|a| a.strip_prefix(&format!("{lower}.")))
                        .collect();
                    if !subs.is_empty() {
                        out.insert(key, keep_subs(value, &subs));
                    }
                }
                continue;
            }
            if self.excluded.contains(&lower) {
                continue;
            }
            let subs: Vec<&str> = self
                .excluded
                .iter()
                .filter_map(|a| a.strip_prefix(&format!("{lower}.")))
                .collect();
            if subs.is_empty() {
                out.insert(key, value);
            } else {
                out.insert(key, drop_subs(value, &subs));
            }
        }
        Value::Object(out)
    }
}

fn keep_subs(value: Value, subs: &[&str]) -> Value {
    match value {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(k, _)| subs.contains(&k.to_ascii_lowercase().as_str()))
                .collect(),
        ),
        Value::Array(items) => {
            Value::Array(items.into_iter().map(|i| keep_subs(i, subs)).collect())
        }
        other => other,
    }
}

fn drop_subs(value: Value, subs: &[&str]) -> Value {
    match value {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(k, _)| !subs.contains(&k.to_ascii_lowercase().as_str()))
                .collect(),
        ),
        Value::Array(items) => {
            Value::Array(items.into_iter().map(|i| drop_subs(i, subs)).collect())
        }
        other => other,
    }
}
