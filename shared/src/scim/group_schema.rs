//! The SCIM Group attributes: one row per attribute, in the order
//! `/Schemas` lists them, shown from the [`GroupRecord`] (members from the
//! member items they were read from). Writes are read into a plan by
//! `scim/group.rs`, which names these rows.
use serde_json::{json, Value};

use super::resource_type::{etag, ResourceType};
use super::schema::{
    meta, meta_parts, Attr, Attribute, Context, Filterable, Mutability, Returned, Store, Type,
    Uniqueness,
};
use crate::domain::group::GroupRecord;
use crate::domain::user::format_time;

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
            Store::Planned(|g, _| Some(json!(g.name))),
        )
    },
    Attribute {
        case_exact: true,
        uniqueness: Uniqueness::Server,
        filter: Filterable::exact(Attr::ExternalId),
        ..Attribute::string(
            "externalId",
            "The provisioning client's id for the group; unique when set.",
            Store::Planned(|g, _| g.external_id.as_ref().map(|e| json!(e))),
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
            Store::Apart(|_, ctx| {
                let members = ctx.members?;
                Some(Value::Array(
                    members
                        .iter()
                        .map(|m| member_json(*m, ctx.base_url))
                        .collect(),
                ))
            }),
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
