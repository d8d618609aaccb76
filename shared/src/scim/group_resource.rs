//! The SCIM Group resource (RFC 7643 §4.2): an organisation as SCIM shows
//! it. Rendering, POST/PUT bodies, and PATCH read into a [`GroupPatch`]
//! that the view applies with member reads and writes proportional to the
//! members it names, never to the group's size.
use crate::domain::group::{GroupBody, GroupPatch};
use serde_json::{json, Map, Value};

use super::group_schema::GROUP_ATTRIBUTES;
use super::patch::{closing_bracket, op_kind, operations, OpKind};
use super::schema::{self, Context};
use super::values::{self, get_ci};
use super::{filter, ScimError, GROUP_SCHEMA};
use crate::domain::group::GroupRecord;
use crate::store::keys;

/// The longest displayName and externalId a group takes.
pub const MAX_NAME: usize = 256;

pub use super::group_schema::member_json;

/// The group; `members` when they were read (`None`: left out, as
/// `excludedAttributes=members` asks).
pub fn to_json(group: &GroupRecord, members: Option<&[u64]>, base_url: &str) -> Value {
    let ctx = Context {
        base_url,
        members,
        ..Context::default()
    };
    let mut r = Map::new();
    r.insert("schemas".into(), json!([GROUP_SCHEMA]));
    for attribute in schema::resource_order(GROUP_ATTRIBUTES, ctx.profile) {
        if let Some(value) = attribute.value(group, &ctx) {
            r.insert(attribute.name.into(), value);
        }
    }
    Value::Object(r)
}

/// Reads a POST/PUT body. `displayName` is required; `id`, `meta` and
/// unknown attributes are ignored, as for users.
pub fn from_json(body: &Value) -> Result<GroupBody, ScimError> {
    let Value::Object(body) = body else {
        return Err(ScimError::invalid_syntax("A Group must be a JSON object."));
    };
    let mut name = None;
    let mut external_id = None;
    let mut members = None;
    for (key, value) in body {
        match group_attr(key).as_str() {
            "displayname" => name = values::string(value, "displayName")?,
            "externalid" => external_id = values::string(value, "externalId")?,
            "members" => members = Some(member_values(value)?),
            _ => {}
        }
    }
    let name = name.ok_or_else(|| ScimError::invalid_value("displayName is required."))?;
    check_name(&name)?;
    check_external_id(external_id.as_deref())?;
    Ok(GroupBody {
        name,
        external_id,
        members,
    })
}

/// An attribute name of the Group schema, lower-cased, without its URN.
fn group_attr(name: &str) -> String {
    values::strip_urn(name, GROUP_SCHEMA)
        .unwrap_or(name.trim())
        .to_ascii_lowercase()
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
        Some(e) if e.chars().count() > MAX_NAME || !keys::fits(e) => Err(ScimError::invalid_value(
            format!("externalId is longer than {MAX_NAME} characters."),
        )),
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

/// Reads a PatchOp body on group `id`. Paths: `displayName`, `externalId`,
/// `members`, `members[value eq "…"]`; without a path, `add`/`replace` take
/// an object of those (an `id` in it must be the group's own: Okta sends it).
pub fn parse_patch(body: &Value, id: u64) -> Result<GroupPatch, ScimError> {
    let ops = operations(body)?;
    let mut patch = GroupPatch::default();
    for op in ops {
        parse_op(&mut patch, op, id)?;
    }
    Ok(patch)
}

fn parse_op(patch: &mut GroupPatch, op: &Value, id: u64) -> Result<(), ScimError> {
    let op = op
        .as_object()
        .ok_or_else(|| ScimError::invalid_syntax("Each operation must be an object."))?;
    let kind = op_kind(op)?;
    let value = get_ci(op, "value").filter(|v| !v.is_null());
    let path = match get_ci(op, "path") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(Value::String(s)) => Some(s.as_str()),
        Some(_) => return Err(ScimError::invalid_path("path must be a string.")),
    };
    let Some(path) = path else {
        if kind == OpKind::Remove {
            return Err(ScimError::no_target("remove needs a path."));
        }
        let Some(Value::Object(map)) = value else {
            return Err(ScimError::invalid_syntax(format!(
                "The {} operation without a path needs an object value.",
                kind.name()
            )));
        };
        for (key, v) in map {
            let attr = group_attr(key);
            if attr == "id" {
                if v.as_str() != Some(id.to_string().as_str()) {
                    return Err(ScimError::mutability(format!(
                        "id is read-only: this group's id is \"{id}\"."
                    )));
                }
                continue;
            }
            if matches!(attr.as_str(), "schemas" | "meta") {
                continue;
            }
            set(patch, kind, &attr, key, Some(v))?;
        }
        return Ok(());
    };
    let trimmed = path.trim();
    if let Some(open) = trimmed.find('[') {
        let (attr, rest) = trimmed.split_at(open);
        let attr = group_attr(attr);
        let close = closing_bracket(rest)
            .ok_or_else(|| ScimError::invalid_path(format!("Unclosed '[' in path \"{path}\".")))?;
        if attr != "members" {
            return Err(ScimError::invalid_path(format!(
                "Unsupported path \"{path}\": only members[...] takes a value filter."
            )));
        }
        let after = rest[close + 1..].trim();
        if !after.is_empty() {
            return Err(ScimError::invalid_path(format!(
                "Unsupported path \"{path}\": a member's only sub-attribute is its value."
            )));
        }
        let conds = filter::parse_value_filter("members", &rest[1..close])?;
        let ids = member_filter_ids(&conds).ok_or_else(|| {
            ScimError::invalid_filter(format!(
                "members[...] must name one member: members[value eq \"<user id>\"], not \"{path}\"."
            ))
        })?;
        return match kind {
            OpKind::Remove => {
                patch.members.remove(ids);
                Ok(())
            }
            // Replacing a filtered member with `value`: remove it, add the new.
            OpKind::Replace | OpKind::Add => {
                patch.members.remove(ids);
                if let Some(v) = value {
                    patch.members.add(member_values(v)?);
                }
                Ok(())
            }
        };
    }
    let attr = group_attr(trimmed);
    set(patch, kind, &attr, path, value)
}

/// The one user id a members value filter names (`value eq "7"`, possibly
/// repeated with the same value).
fn member_filter_ids(conds: &[filter::Filter]) -> Option<Vec<String>> {
    let mut ids: Vec<String> = Vec::new();
    for c in conds {
        match c.eq_value(filter::Attr::MemberValue) {
            Some(filter::Value::Str(s)) => {
                if !ids.contains(s) {
                    ids.push(s.clone());
                }
            }
            _ => return None,
        }
    }
    (ids.len() == 1).then_some(ids)
}

fn set(
    patch: &mut GroupPatch,
    kind: OpKind,
    attr: &str,
    written: &str,
    value: Option<&Value>,
) -> Result<(), ScimError> {
    match (attr, kind) {
        ("displayname", OpKind::Remove) => Err(ScimError::mutability(
            "displayName is required and cannot be removed.",
        )),
        ("displayname", _) => {
            let name = match value {
                Some(v) => values::string(v, "displayName")?,
                None => None,
            }
            .ok_or_else(|| ScimError::invalid_value("displayName needs a string value."))?;
            check_name(&name)?;
            patch.name = Some(name);
            Ok(())
        }
        ("externalid", OpKind::Remove) => {
            patch.external_id = Some(None);
            Ok(())
        }
        ("externalid", _) => {
            let ext = match value {
                Some(v) => values::string(v, "externalId")?,
                None => None,
            };
            check_external_id(ext.as_deref())?;
            patch.external_id = Some(ext);
            Ok(())
        }
        ("members", OpKind::Add) => {
            let v = value.ok_or_else(|| {
                ScimError::invalid_value("add on members needs a list of members as its value.")
            })?;
            patch.members.add(member_values(v)?);
            Ok(())
        }
        ("members", OpKind::Replace) => {
            patch
                .members
                .replace(value.map(member_values).transpose()?.unwrap_or_default());
            Ok(())
        }
        // Entra: `Remove` with a list of values; without one, every member.
        ("members", OpKind::Remove) => {
            match value {
                Some(v) => patch.members.remove(member_values(v)?),
                None => patch.members.replace(Vec::new()),
            }
            Ok(())
        }
        ("id" | "meta" | "schemas" | "meta.created" | "meta.lastmodified", _) => {
            Err(ScimError::mutability(format!("{written} is read-only.")))
        }
        _ => Err(ScimError::invalid_path(format!(
            "Unknown Group attribute \"{written}\": supported are displayName, externalId and \
             members."
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::group::MemberPlan;

    fn ids(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn okta_and_entra_patches_read_as_plans() {
        // Okta's rename: path-less, carrying the current id.
        let p = parse_patch(
            &json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "replace", "value": {"id": "5", "displayName": "New"}}]}),
            5,
        )
        .unwrap();
        assert_eq!(p.name.as_deref(), Some("New"));
        assert!(p.members.is_empty());
        // Okta: remove by filter and add in one PATCH.
        let p = parse_patch(
            &json!({"Operations": [
                {"op": "remove", "path": "members[value eq \"1\"]"},
                {"op": "add", "path": "members", "value": [{"value": "2", "display": "x"}]}]}),
            5,
        )
        .unwrap();
        assert_eq!(
            p.members,
            MemberPlan {
                clear: false,
                add: ids(&["2"]),
                remove: ids(&["1"])
            }
        );
        // Entra: capitalised ops with lists.
        let p = parse_patch(
            &json!({"Operations": [
                {"op": "Add", "path": "members", "value": [{"value": "3"}, {"value": "4"}]},
                {"op": "Remove", "path": "members", "value": [{"value": "3"}]},
                {"op": "Replace", "path": "externalId", "value": "e-1"}]}),
            5,
        )
        .unwrap();
        assert_eq!(p.members.add, ids(&["4"]));
        assert_eq!(p.members.remove, ids(&["3"]));
        assert_eq!(p.external_id, Some(Some("e-1".into())));
        // replace with [] and remove without value both clear.
        for op in [
            json!({"op": "replace", "path": "members", "value": []}),
            json!({"op": "remove", "path": "members"}),
        ] {
            let p = parse_patch(&json!({"Operations": [op]}), 5).unwrap();
            assert_eq!(
                p.members,
                MemberPlan {
                    clear: true,
                    ..MemberPlan::default()
                }
            );
        }
    }

    #[test]
    fn bad_patches_are_refused_by_name() {
        let err = |body: Value| parse_patch(&body, 5).unwrap_err().detail;
        assert!(
            err(json!({"Operations": [{"op": "replace", "value": {"id": "6"}}]}))
                .contains("read-only")
        );
        assert!(
            err(json!({"Operations": [{"op": "add", "path": "owners", "value": 1}]}))
                .contains("owners")
        );
        assert!(err(
            json!({"Operations": [{"op": "remove", "path": "members[display eq \"x\"]"}]})
        )
        .contains("display"));
        assert!(
            err(json!({"Operations": [{"op": "remove", "path": "displayName"}]}))
                .contains("required")
        );
        assert!(err(json!({"Operations": [{"op": "move", "path": "members"}]})).contains("move"));
    }

    #[test]
    fn bodies_need_a_name() {
        assert!(from_json(&json!({"schemas": [GROUP_SCHEMA], "members": []})).is_err());
        let b = from_json(&json!({"displayName": "Eng", "members": [{"value": "7"}], "id": "x"}))
            .unwrap();
        assert_eq!(b.members, Some(ids(&["7"])));
        assert_eq!(
            from_json(&json!({"displayName": "Eng"})).unwrap().members,
            None
        );
    }
}
