//! PATCH bodies: which permission each key needs, and DRF-worded validation.
use serde_json::{Map, Value};

use super::ApiError;
use crate::domain::user::{rules, Group, User};

/// The permission a body key needs (CVAT's scopes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// username, first_name, last_name: yourself or an admin.
    PersonalData,
    /// email, groups and the flags: admins only.
    AdminOnly,
}

pub fn scope_of(key: &str) -> Option<Scope> {
    match key {
        "username" | "first_name" | "last_name" => Some(Scope::PersonalData),
        "email" | "groups" | "is_active" | "is_staff" | "is_superuser" => Some(Scope::AdminOnly),
        _ => None,
    }
}

/// A validated PATCH: each field present only if sent.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Changes {
    pub username: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<String>,
    pub groups: Option<Vec<Group>>,
    pub is_staff: Option<bool>,
    pub is_superuser: Option<bool>,
    pub is_active: Option<bool>,
}

/// Fields in serializer order, so errors come out in the order DRF prints them.
const ORDER: [&str; 8] = [
    "username",
    "first_name",
    "last_name",
    "email",
    "groups",
    "is_staff",
    "is_superuser",
    "is_active",
];

fn string(v: &Value) -> Result<String, &'static str> {
    match v {
        Value::Null => Err(rules::NULL),
        // DRF's CharField trims surrounding whitespace.
        Value::String(s) => Ok(s.trim().to_string()),
        Value::Number(_) => Ok(v.to_string()),
        _ => Err("Not a valid string."),
    }
}

fn boolean(v: &Value) -> Result<bool, &'static str> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::Null => Err(rules::NULL),
        _ => Err("Must be a valid boolean."),
    }
}

fn groups(v: &Value) -> Result<Vec<Group>, String> {
    let items = match v {
        Value::Array(items) => items,
        Value::Null => return Err(rules::NULL.to_string()),
        other => {
            return Err(format!(
                "Expected a list of items but got type \"{}\".",
                python_type(other)
            ))
        }
    };
    items
        .iter()
        .map(|item| match item {
            Value::String(name) => {
                Group::parse(name).ok_or_else(|| format!("Object with name={name} does not exist."))
            }
            _ => Err("Invalid value.".to_string()),
        })
        .collect()
}

fn python_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "NoneType",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    }
}

/// Validates every known key; unknown keys were refused before (403).
pub fn validate(body: &Map<String, Value>) -> Result<Changes, ApiError> {
    let mut changes = Changes::default();
    let mut errors: Vec<(String, Vec<String>)> = Vec::new();
    for name in ORDER {
        let Some(value) = body.get(name) else {
            continue;
        };
        let problem: Option<String> = match name {
            "username" => match string(value) {
                Ok(s) => match rules::username_error(&s) {
                    Some(e) => Some(e.to_string()),
                    None => {
                        changes.username = Some(s);
                        None
                    }
                },
                Err(e) => Some(e.to_string()),
            },
            "first_name" | "last_name" => match string(value) {
                Ok(s) => match rules::name_error(&s) {
                    Some(e) => Some(e.to_string()),
                    None => {
                        if name == "first_name" {
                            changes.first_name = Some(s);
                        } else {
                            changes.last_name = Some(s);
                        }
                        None
                    }
                },
                Err(e) => Some(e.to_string()),
            },
            "email" => match string(value) {
                Ok(s) => match rules::email_error(&s) {
                    Some(e) => Some(e.to_string()),
                    None => {
                        changes.email = Some(s);
                        None
                    }
                },
                Err(e) => Some(e.to_string()),
            },
            "groups" => match groups(value) {
                Ok(g) => {
                    changes.groups = Some(g);
                    None
                }
                Err(e) => Some(e),
            },
            _ => match boolean(value) {
                Ok(b) => {
                    match name {
                        "is_staff" => changes.is_staff = Some(b),
                        "is_superuser" => changes.is_superuser = Some(b),
                        _ => changes.is_active = Some(b),
                    }
                    None
                }
                Err(e) => Some(e.to_string()),
            },
        };
        if let Some(message) = problem {
            errors.push((name.to_string(), vec![message]));
        }
    }
    if errors.is_empty() {
        Ok(changes)
    } else {
        Err(ApiError::Fields(errors))
    }
}

impl Changes {
    pub fn apply(&self, user: &mut User) {
        if let Some(v) = &self.username {
            // A name changed outside the identity provider is no longer its
            // own: an `odm` POST of that name must not adopt the record.
            if *v != user.username {
                user.idp_owned = false;
            }
            user.username = v.clone();
        }
        if let Some(v) = &self.first_name {
            user.first_name = v.clone();
        }
        if let Some(v) = &self.last_name {
            user.last_name = v.clone();
        }
        if let Some(v) = &self.email {
            user.email = v.clone();
        }
        if let Some(v) = self.is_staff {
            user.is_staff = v;
        }
        if let Some(v) = self.is_superuser {
            user.is_superuser = v;
        }
        if let Some(v) = self.is_active {
            user.is_active = v;
        }
        // CVAT saves the flags (which may add `admin`), then replaces the groups.
        user.apply_derived_rules();
        if let Some(v) = &self.groups {
            user.groups = v.clone();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn errors(body: Value) -> Vec<(String, Vec<String>)> {
        match validate(body.as_object().unwrap()) {
            Err(ApiError::Fields(f)) => f,
            other => panic!("expected field errors, got {other:?}"),
        }
    }

    #[test]
    fn field_errors_are_worded_like_drf() {
        let cases: Vec<(Value, &str, &str)> = vec![
            (json!({"username": ""}), "username", rules::BLANK),
            (json!({"username": null}), "username", rules::NULL),
            (
                json!({"username": "a b"}),
                "username",
                rules::USERNAME_INVALID,
            ),
            (
                json!({"username": "x".repeat(151)}),
                "username",
                rules::TOO_LONG_150,
            ),
            (json!({"first_name": null}), "first_name", rules::NULL),
            (
                json!({"last_name": "y".repeat(151)}),
                "last_name",
                rules::TOO_LONG_150,
            ),
            (json!({"email": "nope"}), "email", rules::EMAIL_INVALID),
            (
                json!({"groups": ["nosuch"]}),
                "groups",
                "Object with name=nosuch does not exist.",
            ),
            (
                json!({"groups": "admin"}),
                "groups",
                "Expected a list of items but got type \"str\".",
            ),
            (
                json!({"is_active": "yes"}),
                "is_active",
                "Must be a valid boolean.",
            ),
            (
                json!({"is_staff": 1}),
                "is_staff",
                "Must be a valid boolean.",
            ),
        ];
        for (body, field, message) in cases {
            assert_eq!(
                errors(body.clone()),
                vec![(field.to_string(), vec![message.to_string()])],
                "{body}"
            );
        }
    }

    #[test]
    fn valid_changes_apply() {
        let body =
            json!({"username": " neo ", "email": "", "groups": ["worker"], "is_active": false});
        let changes = validate(body.as_object().unwrap()).unwrap();
        let mut u = User::new("old");
        u.email = "old@example.org".into();
        changes.apply(&mut u);
        assert_eq!(u.username, "neo");
        assert_eq!(u.email, "");
        assert_eq!(u.groups, vec![Group::Worker]);
        assert!(!u.is_active);
    }

    #[test]
    fn a_rename_ends_idp_ownership_and_nothing_else_does() {
        let owned = || {
            let mut u = User::new("idp");
            u.idp_owned = true;
            u
        };
        let cases = [
            (json!({"username": "other"}), false),
            (json!({"username": "IDP"}), false),
            (json!({"username": " idp "}), true),
            (json!({"first_name": "x", "is_active": false}), true),
        ];
        for (body, still_owned) in cases {
            let mut u = owned();
            validate(body.as_object().unwrap()).unwrap().apply(&mut u);
            assert_eq!(u.idp_owned, still_owned, "{body}");
        }
    }

    #[test]
    fn lookalike_usernames_and_emails_are_refused() {
        let cases: Vec<(Value, &str, &str)> = vec![
            (
                json!({"username": "\u{212A}im"}),
                "username",
                rules::NOT_NORMALIZED,
            ),
            (
                json!({"username": "ａｄｍｉｎ"}),
                "username",
                rules::NOT_NORMALIZED,
            ),
            (
                json!({"username": "\u{0430}dmin"}),
                "username",
                rules::MIXED_SCRIPT,
            ),
            (
                json!({"email": "ａdmin@example.org"}),
                "email",
                rules::NOT_NORMALIZED,
            ),
        ];
        for (body, field, message) in cases {
            assert_eq!(
                errors(body.clone()),
                vec![(field.to_string(), vec![message.to_string()])],
                "{body}"
            );
        }
    }

    #[test]
    fn every_field_error_is_reported_at_once_in_field_order() {
        let got = errors(json!({"is_active": 3, "username": ""}));
        assert_eq!(got[0].0, "username");
        assert_eq!(got[1].0, "is_active");
    }

    #[test]
    fn scopes() {
        assert_eq!(scope_of("username"), Some(Scope::PersonalData));
        assert_eq!(scope_of("email"), Some(Scope::AdminOnly));
        assert_eq!(scope_of("password"), None);
        assert_eq!(scope_of("id"), None);
    }
}
