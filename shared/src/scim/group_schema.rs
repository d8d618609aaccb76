//! The SCIM Group attributes: one row per attribute, in the order
//! `/Schemas` lists them, shown from the [`GroupRecord`] (members from the
//! member items they were read from). A row that takes writes says how a
//! body's or a PATCH operation's value is read into the [`GroupPatch`] the
//! group service applies, and the rules the value obeys
//! (`group_resource.rs` reads bodies and PatchOps through these rows).
use serde_json::{json, Value};

use super::schema::ResourceType;
use super::schema::{
    get_ci, meta, meta_parts, Attr, Attribute, Context, Filterable, Mutability, Planned, Returned,
    Store, Type, Uniqueness, Write,
};
use super::ScimError;
use crate::domain::etag;
use crate::domain::group::{GroupPatch, GroupRecord, MemberPlan};
use crate::domain::user::format_time;
use crate::store::table;

/// The longest displayName and externalId a group takes.
pub const MAX_NAME: usize = 256;

pub static GROUP_ATTRIBUTES: &[Attribute<GroupRecord>] = &[
    Attribute {
        case_exact: true,
        mutability: Mutability::ReadOnly,
        uniqueness: Uniqueness::Server,
        returned: Returned::Always,
        filter: Filterable::exact(Attr::Id),
        ..Attribute::string(
            "id",
            "Server-assigned decimal id (the organisation's id).",
            Store::ReadOnly(|g, _| Some(json!(g.id.to_string()))),
        )
    },
    Attribute {
        required: true,
        uniqueness: Uniqueness::Server,
        // Caseless, as its uniqueness claim is folded (as Entra expects).
        filter: Filterable::caseless(Attr::DisplayName),
        ..Attribute::string(
            "displayName",
            "The organisation's name; unique, compared case-insensitively.",
            Store::Planned {
                get: |g, _| Some(json!(g.name)),
                plan: Planned {
                    write: write_name,
                    remove: |_, _| {
                        Err(ScimError::mutability(
                            "displayName is required and cannot be removed.",
                        ))
                    },
                    check: |p| match &p.name {
                        Some(name) => check_name(name),
                        None => Err(ScimError::invalid_value("displayName is required.")),
                    },
                },
            },
        )
    },
    Attribute {
        case_exact: true,
        uniqueness: Uniqueness::Server,
        filter: Filterable::exact(Attr::ExternalId),
        ..Attribute::string(
            "externalId",
            "The provisioning client's id for the group; unique when set.",
            Store::Planned {
                get: |g, _| g.external_id.as_ref().map(|e| json!(e)),
                plan: Planned {
                    write: write_external_id,
                    remove: |p, _| {
                        p.external_id = Some(None);
                        Ok(())
                    },
                    check: |p| check_external_id(p.external_id.as_ref().and_then(|e| e.as_deref())),
                },
            },
        )
    },
    Attribute {
        multi_valued: true,
        sub_attributes: &[
            Attribute {
                case_exact: true,
                mutability: Mutability::Immutable,
                filter: Filterable::exact(Attr::MemberValue),
                ..Attribute::string("value", "The id of a User.", Store::InParent)
            },
            Attribute {
                case_exact: true,
                mutability: Mutability::Immutable,
                reference_types: &["User"],
                ..Attribute::new(
                    "$ref",
                    Type::Reference,
                    "The URI of the User.",
                    Store::InParent,
                )
            },
            Attribute {
                mutability: Mutability::Immutable,
                canonical_values: &["User"],
                ..Attribute::string("type", "Always \"User\".", Store::InParent)
            },
        ],
        ..Attribute::new(
            "members",
            Type::Complex,
            "The group's users.",
            Store::Planned {
                get: |_, ctx| {
                    let members = ctx.members?;
                    Some(Value::Array(
                        members
                            .iter()
                            .map(|m| member_json(*m, ctx.base_url))
                            .collect(),
                    ))
                },
                plan: Planned {
                    write: write_members,
                    // Entra: `Remove` with a list of values; without one, every member.
                    remove: |p, value| {
                        match value {
                            Some(v) => p.members.remove(member_values(v)?),
                            None => p.members.replace(Vec::new()),
                        }
                        Ok(())
                    },
                    check: |_| Ok(()),
                },
            },
        )
    },
    meta(
        |g: &GroupRecord, ctx: &Context<'_>| {
            Some(json!({
                "resourceType": "Group",
                "created": format_time(&g.created),
                "lastModified": format_time(&g.last_modified),
                "location": ResourceType::Group.location(g.id, ctx.base_url),
                "version": etag(g.version),
            }))
        },
        &meta_parts("Always \"Group\"."),
    ),
];

/// A member as a Group shows it: users only (no nested groups).
pub fn member_json(user_id: u64, base_url: &str) -> Value {
    json!({
        "value": user_id.to_string(),
        "$ref": ResourceType::User.location(user_id, base_url),
        "type": "User",
    })
}

/// `displayName`: a string; a body may leave it out (then `check` refuses
/// it), an operation must send one.
fn write_name(p: &mut GroupPatch, write: Write, value: Option<&Value>) -> Result<(), ScimError> {
    let name = match value {
        Some(v) => super::schema::string(v, "displayName")?,
        None => None,
    };
    if write == Write::Put {
        p.name = name;
        return Ok(());
    }
    let name = name.ok_or_else(|| ScimError::invalid_value("displayName needs a string value."))?;
    check_name(&name)?;
    p.name = Some(name);
    Ok(())
}

/// `externalId`: a string, or none.
fn write_external_id(
    p: &mut GroupPatch,
    write: Write,
    value: Option<&Value>,
) -> Result<(), ScimError> {
    let ext = match value {
        Some(v) => super::schema::string(v, "externalId")?,
        None => None,
    };
    if write != Write::Put {
        check_external_id(ext.as_deref())?;
    }
    p.external_id = Some(ext);
    Ok(())
}

/// `members`: a body's become exactly those; an `add` needs a list to add,
/// a `replace` without one leaves none.
fn write_members(p: &mut GroupPatch, write: Write, value: Option<&Value>) -> Result<(), ScimError> {
    match write {
        // As sent: the service reads which of them are ids.
        Write::Put => {
            p.members = MemberPlan {
                clear: true,
                add: value.map(member_values).transpose()?.unwrap_or_default(),
                remove: Vec::new(),
            };
        }
        Write::Replace => {
            p.members
                .replace(value.map(member_values).transpose()?.unwrap_or_default());
        }
        Write::Add => {
            let v = value.ok_or_else(|| {
                ScimError::invalid_value("add on members needs a list of members as its value.")
            })?;
            p.members.add(member_values(v)?);
        }
    }
    Ok(())
}

pub fn check_name(name: &str) -> Result<(), ScimError> {
    if name.trim().is_empty() {
        return Err(ScimError::invalid_value("displayName must not be empty."));
    }
    if name.chars().count() > MAX_NAME {
        return Err(ScimError::invalid_value(format!(
            "displayName is longer than {MAX_NAME} characters."
        )));
    }
    Ok(())
}

pub fn check_external_id(ext: Option<&str>) -> Result<(), ScimError> {
    match ext {
        Some(e) if e.chars().count() > MAX_NAME || !table::fits(e) => Err(
            ScimError::invalid_value(format!("externalId is longer than {MAX_NAME} characters.")),
        ),
        Some("") => Err(ScimError::invalid_value("externalId must not be empty.")),
        _ => Ok(()),
    }
}

/// The `value`s of a members list: `[{"value": "7"}, …]` (other
/// sub-attributes ignored), also accepted as one object or bare strings.
pub fn member_values(value: &Value) -> Result<Vec<String>, ScimError> {
    let one = |v: &Value| -> Result<String, ScimError> {
        match v {
            Value::Object(m) => match get_ci(m, "value") {
                Some(Value::String(s)) => Ok(s.clone()),
                Some(Value::Number(n)) => Ok(n.to_string()),
                _ => Err(ScimError::invalid_value(
                    "Each member needs a \"value\": the id of a User.",
                )),
            },
            Value::String(s) => Ok(s.clone()),
            _ => Err(ScimError::invalid_value(
                "members must be a list of {\"value\": \"<user id>\"} objects.",
            )),
        }
    };
    match value {
        Value::Null => Ok(Vec::new()),
        Value::Array(items) => items.iter().map(one).collect(),
        other => Ok(vec![one(other)?]),
    }
}
