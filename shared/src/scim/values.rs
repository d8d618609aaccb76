//! How SCIM values are read, once for every operation: attribute names (case
//! insensitive, with or without the core schema's URN), booleans, strings and
//! the one email a user may have. POST, PUT and PATCH all go through these,
//! so they accept the same shapes and say the same thing about bad ones.
use serde_json::{Map, Value};

use super::{ScimError, USER_SCHEMA};

/// An attribute path without the core User schema's URN (`urn:…:User:name`
/// → `name`), or `None` when it names another schema (an extension): the
/// URN compares case-insensitively, as attribute names do.
pub fn strip_user_urn(path: &str) -> Option<&str> {
    strip_urn(path, USER_SCHEMA)
}

/// [`strip_user_urn`] for the attributes of any core schema (`schema`: its URN).
pub fn strip_urn<'a>(path: &'a str, schema: &str) -> Option<&'a str> {
    let path = path.trim();
    let Some(head) = path.get(..schema.len()) else {
        return (!starts_with_ci(path, "urn:")).then_some(path);
    };
    if head.eq_ignore_ascii_case(schema) {
        return match &path[schema.len()..] {
            "" => Some(""),
            rest => rest.strip_prefix(':'),
        };
    }
    (!starts_with_ci(path, "urn:")).then_some(path)
}

/// A lower-cased attribute name without the core schema's URN; an
/// extension's attribute keeps its URN (and so matches no core attribute).
pub fn normalize_name(name: &str) -> String {
    strip_user_urn(name)
        .unwrap_or(name.trim())
        .to_ascii_lowercase()
}

/// `object[key]`, the key compared case-insensitively (an exact match first).
pub fn get_ci<'a>(object: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    object.get(key).or_else(|| {
        object
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

pub fn starts_with_ci(s: &str, prefix: &str) -> bool {
    s.get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
}

/// A boolean: JSON `true`/`false`, or the strings "true"/"false" in any case
/// (Entra ID sends `"False"`).
pub fn boolean(value: &Value, attr: &str) -> Result<bool, ScimError> {
    match value {
        Value::Bool(b) => Ok(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(false),
        other => Err(ScimError::invalid_value(format!(
            "{attr} must be true or false, not {other}"
        ))),
    }
}

/// A string, or `None` for null.
pub fn string(value: &Value, attr: &str) -> Result<Option<String>, ScimError> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        other => Err(ScimError::invalid_value(format!(
            "{attr} must be a string, not {other}"
        ))),
    }
}

/// The one email an `emails` value holds, as (address, primary); `None`
/// for null or an empty list. A list of one email object, or the object
/// alone; `value` is required, `type` must be `work` (the only one stored),
/// `primary` defaults to true.
pub fn emails(value: &Value) -> Result<Option<(String, bool)>, ScimError> {
    match value {
        Value::Null => Ok(None),
        Value::Array(items) => match items.as_slice() {
            [] => Ok(None),
            [one] => email(one).map(Some),
            many => Err(ScimError::invalid_value(format!(
                "Only one email per user is stored; emails has {} values.",
                many.len()
            ))),
        },
        Value::Object(_) => email(value).map(Some),
        other => Err(ScimError::invalid_value(format!(
            "emails must be a list of email objects, not {other}"
        ))),
    }
}

/// One email object: (address, primary).
pub fn email(value: &Value) -> Result<(String, bool), ScimError> {
    let Value::Object(email) = value else {
        return Err(ScimError::invalid_value(format!(
            "an email must be an object, not {value}"
        )));
    };
    let address = match get_ci(email, "value") {
        Some(Value::String(s)) => s.clone(),
        None | Some(Value::Null) => {
            return Err(ScimError::invalid_value("emails.value is required."))
        }
        Some(other) => {
            return Err(ScimError::invalid_value(format!(
                "emails.value must be a string, not {other}"
            )))
        }
    };
    if let Some(t) = get_ci(email, "type") {
        email_type(t)?;
    }
    let primary = match get_ci(email, "primary") {
        None | Some(Value::Null) => true,
        Some(v) => boolean(v, "emails.primary")?,
    };
    Ok((address, primary))
}

/// Stored emails are all `work`; any other type cannot be kept.
pub fn email_type(value: &Value) -> Result<(), ScimError> {
    match value {
        Value::Null => Ok(()),
        Value::String(s) if s.eq_ignore_ascii_case("work") => Ok(()),
        Value::String(s) => Err(ScimError::invalid_value(format!(
            "Only work emails are stored; got type \"{s}\"."
        ))),
        other => Err(ScimError::invalid_value(format!(
            "emails.type must be a string, not {other}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_lose_the_core_urn_in_any_case() {
        for (path, want) in [
            ("userName", Some("userName")),
            (
                "urn:ietf:params:scim:schemas:core:2.0:User:name.givenName",
                Some("name.givenName"),
            ),
            (
                "URN:IETF:PARAMS:SCIM:SCHEMAS:CORE:2.0:USER:emails",
                Some("emails"),
            ),
            ("urn:ietf:params:scim:schemas:core:2.0:User", Some("")),
            (
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
                None,
            ),
            ("urn:ietf:params:scim:schemas:core:2.0:Username", None),
        ] {
            assert_eq!(strip_user_urn(path), want, "{path}");
        }
        assert_eq!(
            normalize_name(" urn:ietf:params:scim:schemas:core:2.0:User:Active "),
            "active"
        );
    }

    #[test]
    fn one_email_in_every_shape() {
        let ok = [
            (json!(null), None),
            (json!([]), None),
            (
                json!([{"value": "a@b.org"}]),
                Some(("a@b.org".to_string(), true)),
            ),
            (
                json!({"value": "a@b.org", "primary": "False", "type": "Work"}),
                Some(("a@b.org".to_string(), false)),
            ),
        ];
        for (value, want) in ok {
            assert_eq!(emails(&value).unwrap(), want, "{value}");
        }
        for (value, detail) in [
            (
                json!([{"value": "a@b.org"}, {"value": "c@d.org"}]),
                "Only one email per user is stored; emails has 2 values.",
            ),
            (
                json!([{"value": "a@b.org", "type": "home"}]),
                "Only work emails are stored; got type \"home\".",
            ),
            (json!([{"type": "work"}]), "emails.value is required."),
            (
                json!("a@b.org"),
                "emails must be a list of email objects, not \"a@b.org\"",
            ),
            (
                json!([{"value": "a@b.org", "primary": "yes"}]),
                "emails.primary must be true or false, not \"yes\"",
            ),
        ] {
            assert_eq!(emails(&value).unwrap_err().detail, detail, "{value}");
        }
    }
}
