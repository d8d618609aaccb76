//! The SCIM Group resource (RFC 7643 §4.2): an organisation as SCIM shows
//! it. Rendering, POST/PUT bodies, and PATCH read into a [`GroupPatch`]
//! through the rows of `group_schema.rs` (what a row takes, its checks, the
//! names errors list), which the group service applies with member reads
//! and writes proportional to the members it names, never to the group's
//! size.
use serde_json::{json, Map, Value};

use super::group_schema::GROUP_ATTRIBUTES;
pub use super::group_schema::{
    check_external_id, check_name, member_json, member_values, MAX_NAME,
};
use super::patch::{closing_bracket, op_kind, operations, OpKind};
use super::schema::{get_ci, Attribute, Context, Mutability, Write};
use super::{filter, schema, ScimError, GROUP_SCHEMA};
use crate::domain::group::{GroupBody, GroupPatch, GroupRecord};

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

/// Reads a POST/PUT body through the rows that take writes, then checks
/// what each row requires of a whole body (`displayName` is required).
/// `id`, `meta` and unknown attributes are ignored, as for users.
pub fn from_json(body: &Value) -> Result<GroupBody, ScimError> {
    let Value::Object(body) = body else {
        return Err(ScimError::invalid_syntax("A Group must be a JSON object."));
    };
    let mut plan = GroupPatch::default();
    for (key, value) in body {
        if let Some((row, None)) = row(key) {
            if let Some(planned) = row.planned() {
                (planned.write)(&mut plan, Write::Put, Some(value))?;
            }
        }
    }
    for planned in GROUP_ATTRIBUTES.iter().filter_map(Attribute::planned) {
        (planned.check)(&plan)?;
    }
    Ok(GroupBody {
        // The displayName row's check refused a body without one.
        name: plan.name.unwrap_or_default(),
        external_id: plan.external_id.flatten(),
        members: plan.members.clear.then_some(plan.members.add),
    })
}

/// The row a path (or a body's key) names, without the Group schema's URN,
/// any case, and what follows its first `.`.
fn row(path: &str) -> Option<(&'static Attribute<GroupRecord>, Option<&str>)> {
    let path = schema::strip_urn(path, GROUP_SCHEMA).unwrap_or(path.trim());
    let (head, sub) = match path.split_once('.') {
        Some((head, sub)) => (head, Some(sub)),
        None => (path, None),
    };
    Some((schema::find(GROUP_ATTRIBUTES, head)?, sub))
}

/// The rows PATCH writes reach, as an error lists them ("a, b and c").
fn writable_names(multi_valued_only: bool) -> String {
    let names: Vec<&str> = GROUP_ATTRIBUTES
        .iter()
        .filter(|a| a.planned().is_some() && (a.multi_valued || !multi_valued_only))
        .map(|a| a.name)
        .collect();
    match names.split_last() {
        Some((last, [])) => last.to_string(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
        None => String::new(),
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
            let attr = schema::strip_urn(key, GROUP_SCHEMA)
                .unwrap_or(key.trim())
                .to_ascii_lowercase();
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
            set(patch, kind, key, Some(v))?;
        }
        return Ok(());
    };
    let trimmed = path.trim();
    if let Some(open) = trimmed.find('[') {
        let (attr, rest) = trimmed.split_at(open);
        let close = closing_bracket(rest)
            .ok_or_else(|| ScimError::invalid_path(format!("Unclosed '[' in path \"{path}\".")))?;
        let Some((members, None)) =
            row(attr).filter(|(a, _)| a.multi_valued && a.planned().is_some())
        else {
            return Err(ScimError::invalid_path(format!(
                "Unsupported path \"{path}\": only {}[...] takes a value filter.",
                writable_names(true)
            )));
        };
        let after = rest[close + 1..].trim();
        if !after.is_empty() {
            return Err(ScimError::invalid_path(format!(
                "Unsupported path \"{path}\": a member's only sub-attribute is its value."
            )));
        }
        let conds = filter::parse_value_filter(members.name, &rest[1..close])?;
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
    set(patch, kind, path, value)
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

/// One operation on the row `written` names, through the row: a row that
/// takes writes reads the value into the plan; a read-only one (and
/// `schemas`) refuses it by name; anything else is no Group attribute.
fn set(
    patch: &mut GroupPatch,
    kind: OpKind,
    written: &str,
    value: Option<&Value>,
) -> Result<(), ScimError> {
    let target = row(written);
    if let Some((planned, None)) = target.and_then(|(a, sub)| Some((a.planned()?, sub))) {
        return match kind {
            OpKind::Remove => (planned.remove)(patch, value),
            OpKind::Add => (planned.write)(patch, Write::Add, value),
            OpKind::Replace => (planned.write)(patch, Write::Replace, value),
        };
    }
    let read_only = match target {
        Some((a, None)) => a.mutability == Mutability::ReadOnly,
        Some((a, Some(sub))) => a
            .sub(sub)
            .is_some_and(|s| s.mutability == Mutability::ReadOnly),
        None => schema::strip_urn(written, GROUP_SCHEMA)
            .unwrap_or(written.trim())
            .eq_ignore_ascii_case("schemas"),
    };
    if read_only {
        return Err(ScimError::mutability(format!("{written} is read-only.")));
    }
    Err(ScimError::invalid_path(format!(
        "Unknown Group attribute \"{written}\": supported are {}.",
        writable_names(false)
    )))
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
    fn patch_targets_come_from_the_table() {
        let err = |path: &str| {
            parse_patch(
                &json!({"Operations": [{"op": "replace", "path": path, "value": "x"}]}),
                5,
            )
            .unwrap_err()
        };
        let unknown = err("owners");
        assert_eq!(
            unknown.detail,
            "Unknown Group attribute \"owners\": supported are displayName, externalId and \
             members."
        );
        for read_only in ["id", "meta.lastModified", "META.version", "schemas"] {
            let e = err(read_only);
            assert_eq!(
                e.scim_type,
                Some(crate::scim::ScimType::Mutability),
                "{read_only}"
            );
        }
        assert!(err("displayName.x")
            .detail
            .starts_with("Unknown Group attribute"));
        assert!(err("externalId[value eq \"x\"]")
            .detail
            .contains("only members[...] takes a value filter"));
        // Under the Group schema's URN, any case.
        let p = parse_patch(
            &json!({"Operations": [{"op": "replace",
                "path": "urn:ietf:params:scim:schemas:core:2.0:Group:DISPLAYNAME", "value": "N"}]}),
            5,
        )
        .unwrap();
        assert_eq!(p.name.as_deref(), Some("N"));
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
