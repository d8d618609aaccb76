//! The SCIM User attributes: one row per attribute, in the order
//! `/Schemas` lists them, with how each maps to the shared [`User`]
//! record. Only what the directory stores is here; everything else a
//! client sends (`password`, `title`, extensions, …) is ignored.
//!
//! Adding an attribute: a row here (its definition, [`Filterable`] when a
//! filter may name it, a [`Store::Field`] with a getter, setter and clear
//! over its record field, and `validate` when it has rules), the field on
//! [`User`], and its item mapping in `store/item.rs`.
use serde_json::{json, Value};

use super::resource_type::{etag, ResourceType};
use super::schema::{
    meta, meta_parts, Attr, Attribute, Context, Filterable, Mutability, Returned, Store, Type,
    Uniqueness, Write,
};
use super::{values, ScimError};
use crate::domain::user::{format_time, rules, User};
use crate::store::keys;

pub const MAX_DISPLAY_NAME: usize = 256;
pub const MAX_EXTERNAL_ID: usize = 256;

pub static USER_ATTRIBUTES: &[Attribute<User>] = &[
    Attribute {
        case_exact: true,
        mutability: Mutability::ReadOnly,
        uniqueness: Uniqueness::Server,
        returned: Returned::Always,
        filter: Filterable::exact(Attr::Id),
        ..Attribute::string(
            "id",
            "Server-assigned decimal id.",
            Store::ReadOnly(|u, _| Some(json!(u.id.to_string()))),
        )
    },
    Attribute {
        required: true,
        uniqueness: Uniqueness::Server,
        filter: Filterable::caseless(Attr::UserName),
        validate: Some(|u| match rules::username_error(&u.username) {
            Some(problem) => Err(ScimError::invalid_value(format!("userName: {problem}"))),
            None => Ok(()),
        }),
        ..Attribute::string(
            "userName",
            "Unique login: 1-150 letters, digits and @.+-_; compared case-insensitively.",
            Store::Field {
                get: |u, _| (!u.username.is_empty()).then(|| json!(u.username)),
                set: |u, v, write| {
                    u.username = match (v, write) {
                        (_, Write::Put) => values::string(v, "userName")?.unwrap_or_default(),
                        (Value::String(s), _) if !s.is_empty() => s.clone(),
                        (Value::String(_) | Value::Null, _) => {
                            return Err(ScimError::invalid_value("userName cannot be empty."))
                        }
                        _ => return Err(must_be_string("userName")),
                    };
                    Ok(())
                },
                clear: |u| u.username.clear(),
            },
        )
    },
    Attribute {
        case_exact: true,
        uniqueness: Uniqueness::Server,
        filter: Filterable::exact(Attr::ExternalId),
        validate: Some(validate_external_id),
        ..Attribute::string(
            "externalId",
            "The provisioning client's id for the user; unique when set.",
            Store::Field {
                get: |u, _| u.external_id.as_ref().map(|e| json!(e)),
                set: |u, v, write| {
                    u.external_id = match (v, write) {
                        (_, Write::Put) => values::string(v, "externalId")?,
                        // A PATCH unassigns it with "" as with null.
                        (Value::String(s), _) if !s.is_empty() => Some(s.clone()),
                        (Value::String(_) | Value::Null, _) => None,
                        _ => return Err(must_be_string("externalId")),
                    };
                    Ok(())
                },
                clear: |u| u.external_id = None,
            },
        )
    },
    Attribute {
        sub_attributes: &[
            Attribute {
                filter: Filterable::exact(Attr::GivenName),
                validate: Some(|u| name_rules("name.givenName", &u.first_name)),
                ..Attribute::string(
                    "givenName",
                    "First name, up to 150 characters.",
                    Store::Field {
                        get: |u, _| (!u.first_name.is_empty()).then(|| json!(u.first_name)),
                        set: |u, v, write| {
                            u.first_name = name_part(v, "name.givenName", write)?;
                            Ok(())
                        },
                        clear: |u| u.first_name.clear(),
                    },
                )
            },
            Attribute {
                filter: Filterable::exact(Attr::FamilyName),
                validate: Some(|u| name_rules("name.familyName", &u.last_name)),
                ..Attribute::string(
                    "familyName",
                    "Last name, up to 150 characters.",
                    Store::Field {
                        get: |u, _| (!u.last_name.is_empty()).then(|| json!(u.last_name)),
                        set: |u, v, write| {
                            u.last_name = name_part(v, "name.familyName", write)?;
                            Ok(())
                        },
                        clear: |u| u.last_name.clear(),
                    },
                )
            },
        ],
        ..Attribute::new(
            "name",
            Type::Complex,
            "The user's name.",
            Store::Parts { set: None },
        )
    },
    Attribute {
        required: true,
        filter: Filterable::exact(Attr::DisplayName),
        validate: Some(|u| {
            if u.display_name
                .as_ref()
                .is_some_and(|d| d.chars().count() > MAX_DISPLAY_NAME)
            {
                return Err(ScimError::invalid_value(format!(
                    "displayName: Ensure this field has no more than {MAX_DISPLAY_NAME} characters."
                )));
            }
            Ok(())
        }),
        ..Attribute::string(
            "displayName",
            "Name for display; defaults to \"givenName familyName\" or the userName.",
            Store::Field {
                // Exactly what responses show, so a client can filter on what it read.
                get: |u, _| Some(json!(u.shown_display_name())),
                set: |u, v, write| {
                    u.display_name = match (v, write) {
                        (_, Write::Put) => values::string(v, "displayName")?,
                        (Value::String(s), _) => Some(s.clone()),
                        (Value::Null, _) => {
                            return Err(ScimError::invalid_value("displayName cannot be null."))
                        }
                        _ => return Err(must_be_string("displayName")),
                    };
                    Ok(())
                },
                clear: |u| u.display_name = None,
            },
        )
    },
    Attribute {
        required: true,
        filter: Filterable::exact(Attr::Active),
        ..Attribute::new(
            "active",
            Type::Boolean,
            "Whether the user may sign in; defaults to true.",
            Store::Field {
                get: |u, _| Some(json!(u.is_active)),
                set: |u, v, write| {
                    // A body's null keeps the default; a PATCH must say which.
                    if !(write == Write::Put && v.is_null()) {
                        u.is_active = values::boolean(v, "active")?;
                    }
                    Ok(())
                },
                clear: |u| u.is_active = true,
            },
        )
    },
    Attribute {
        multi_valued: true,
        sub_attributes: &[
            Attribute {
                filter: Filterable::caseless(Attr::EmailValue),
                validate: Some(|u| match rules::email_error(&u.email) {
                    Some(problem) => Err(ScimError::invalid_value(format!(
                        "emails[0].value: {problem}"
                    ))),
                    None => Ok(()),
                }),
                ..Attribute::string(
                    "value",
                    "The email address; unique, compared case-insensitively.",
                    Store::Field {
                        get: |u, _| (!u.email.is_empty()).then(|| json!(u.email)),
                        set: |u, v, _| {
                            match v {
                                Value::String(s) => u.email = s.clone(),
                                Value::Null => u.email.clear(),
                                _ => return Err(must_be_string("emails.value")),
                            }
                            Ok(())
                        },
                        clear: |u| u.email.clear(),
                    },
                )
            },
            Attribute {
                canonical_values: &["work"],
                filter: Filterable::caseless(Attr::EmailType),
                ..Attribute::string(
                    "type",
                    "Always \"work\".",
                    Store::Field {
                        // The only email a user has is their work email.
                        get: |u, _| (!u.email.is_empty()).then(|| json!("work")),
                        set: |_, v, _| values::email_type(v),
                        clear: |_| {},
                    },
                )
            },
            Attribute {
                filter: Filterable::exact(Attr::EmailPrimary),
                ..Attribute::new(
                    "primary",
                    Type::Boolean,
                    "Whether this is the primary email.",
                    Store::Field {
                        get: |u, _| (!u.email.is_empty()).then(|| json!(u.email_primary)),
                        set: |u, v, _| {
                            u.email_primary = values::boolean(v, "emails.primary")?;
                            Ok(())
                        },
                        // The default, so that a later email starts primary.
                        clear: |u| u.email_primary = true,
                    },
                )
            },
        ],
        ..Attribute::new(
            "emails",
            Type::Complex,
            "The user's work email; at most one is stored.",
            Store::Parts {
                set: Some(|u, v, write| {
                    match values::emails(v)? {
                        Some((address, primary)) => {
                            u.email = address;
                            u.email_primary = primary;
                        }
                        // Adding no emails changes nothing; replacing with none removes the email.
                        None if write == Write::Replace => u.email.clear(),
                        None => {}
                    }
                    Ok(())
                }),
            },
        )
    },
    Attribute {
        multi_valued: true,
        mutability: Mutability::ReadOnly,
        sub_attributes: &[
            Attribute {
                case_exact: true,
                mutability: Mutability::ReadOnly,
                ..Attribute::string("value", "The id of a Group.", Store::InParent)
            },
            Attribute {
                case_exact: true,
                mutability: Mutability::ReadOnly,
                reference_types: &["Group"],
                ..Attribute::new(
                    "$ref",
                    Type::Reference,
                    "The URI of the Group.",
                    Store::InParent,
                )
            },
            Attribute {
                mutability: Mutability::ReadOnly,
                canonical_values: &["direct"],
                ..Attribute::string("type", "Always \"direct\".", Store::InParent)
            },
        ],
        ..Attribute::new(
            "groups",
            Type::Complex,
            "The groups (organisations) the user belongs to; changed through the Groups.",
            // The orgs the user belongs to, from the user item itself.
            Store::Echoed(|u, ctx| {
                let groups: Vec<Value> = u
                    .memberships
                    .iter()
                    .map(|m| {
                        json!({
                            "value": m.org_id.to_string(),
                            "$ref": ResourceType::Group.location(m.org_id, ctx.origin),
                            "type": "direct",
                        })
                    })
                    .collect();
                (!groups.is_empty()).then_some(Value::Array(groups))
            }),
        )
    },
    meta(
        |u: &User, ctx: &Context<'_>| {
            Some(json!({
                "resourceType": "User",
                "created": format_time(&u.date_joined),
                "lastModified": format_time(&u.last_modified),
                "location": ResourceType::User.location(u.id, ctx.origin),
                "version": etag(u.version),
            }))
        },
        &meta_parts("Always \"User\"."),
    ),
];

/// A PATCH's wrong type, without the value (a body's says it: see [`values::string`]).
fn must_be_string(attr: &str) -> ScimError {
    ScimError::invalid_value(format!("{attr} must be a string."))
}

/// A name part: a string, or null for none.
fn name_part(value: &Value, attr: &str, write: Write) -> Result<String, ScimError> {
    match (value, write) {
        (_, Write::Put) => Ok(values::string(value, attr)?.unwrap_or_default()),
        (Value::String(s), _) => Ok(s.clone()),
        (Value::Null, _) => Ok(String::new()),
        _ => Err(must_be_string(attr)),
    }
}

fn name_rules(attr: &str, value: &str) -> Result<(), ScimError> {
    match rules::name_error(value) {
        Some(problem) => Err(ScimError::invalid_value(format!("{attr}: {problem}"))),
        None => Ok(()),
    }
}

fn validate_external_id(user: &User) -> Result<(), ScimError> {
    let Some(ext) = &user.external_id else {
        return Ok(());
    };
    if ext.is_empty() || ext.chars().count() > MAX_EXTERNAL_ID {
        return Err(ScimError::invalid_value(format!(
            "externalId must be 1 to {MAX_EXTERNAL_ID} characters"
        )));
    }
    // The externalId is a key (its uniqueness claim). 256 characters fit
    // today; this keeps a longer limit from ever sending DynamoDB a key
    // it refuses.
    if !keys::fits(ext) {
        return Err(ScimError::invalid_value(format!(
            "externalId must be at most {} bytes in UTF-8, not {}",
            keys::MAX_KEY_VALUE_BYTES,
            ext.len()
        )));
    }
    Ok(())
}
