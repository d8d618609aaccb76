//! SCIM PATCH (RFC 7644 §3.5.2) applied in memory to one user.
//!
//! The whole PatchOp runs against a copy, so one failing operation leaves the
//! stored user untouched and the caller commits the result as one write.
//! Values are only type-checked here; lengths, formats and uniqueness are the
//! caller's, with the same rules as POST/PUT. Paths resolve through the User
//! table as the profile has it: what the profile does not have is ignored.
use serde_json::{json, Map, Value};

use super::filter::{Attr, Filter, Op, Value as FilterValue};
use super::schema::{get_ci, Attribute, Store, Write};
use super::user_schema::USER_ATTRIBUTES;
use super::{filter, schema, ScimError};
use crate::domain::profile::Profile;
use crate::domain::user::{rules, Entry, User};

pub const PATCH_OP_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// Applies a PatchOp body (already parsed JSON) to a copy of `user`, all
/// operations in order, with the attributes `profile` has. Any failing
/// operation → `Err`, and nothing changes. A body that changes nothing
/// returns a user equal to `user`.
pub fn apply(user: &User, body: &Value, profile: Profile) -> Result<User, ScimError> {
    let ops = operations(body)?;
    let mut out = user.clone();
    for op in ops {
        apply_op(&mut out, op, profile)?;
    }
    // A user without an email keeps the default, so a later email starts primary.
    if out.email.is_empty() {
        out.email_primary = true;
    }
    Ok(out)
}

/// A missing `schemas` is tolerated; one that does not name PatchOp is not.
/// The operations of a PatchOp body (Users and Groups): a JSON object naming
/// the PatchOp schema, with a non-empty `Operations` array.
pub(super) fn operations(body: &Value) -> Result<&Vec<Value>, ScimError> {
    let body = body
        .as_object()
        .ok_or_else(|| ScimError::invalid_syntax("The PATCH body must be a JSON object."))?;
    check_schemas(body)?;
    match get_ci(body, "Operations") {
        Some(Value::Array(ops)) if !ops.is_empty() => Ok(ops),
        _ => Err(ScimError::invalid_syntax(
            "Operations must be a non-empty array.",
        )),
    }
}

fn check_schemas(body: &Map<String, Value>) -> Result<(), ScimError> {
    let names_patch_op = |v: &Value| {
        v.as_str()
            .is_some_and(|s| s.eq_ignore_ascii_case(PATCH_OP_SCHEMA))
    };
    let ok = match get_ci(body, "schemas") {
        None => true,
        Some(Value::Array(items)) => items.iter().any(names_patch_op),
        Some(other) => names_patch_op(other),
    };
    if ok {
        Ok(())
    } else {
        Err(ScimError::invalid_syntax(format!(
            "schemas must contain \"{PATCH_OP_SCHEMA}\"."
        )))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum OpKind {
    Add,
    Replace,
    Remove,
}

impl OpKind {
    pub(super) fn parse(op: &str) -> Option<OpKind> {
        [OpKind::Add, OpKind::Replace, OpKind::Remove]
            .into_iter()
            .find(|k| k.name().eq_ignore_ascii_case(op))
    }

    pub(super) fn name(self) -> &'static str {
        match self {
            OpKind::Add => "add",
            OpKind::Replace => "replace",
            OpKind::Remove => "remove",
        }
    }
}

/// An operation's `op`, any case; a 400 naming it when it is none of the three.
pub(super) fn op_kind(op: &Map<String, Value>) -> Result<OpKind, ScimError> {
    match get_ci(op, "op") {
        Some(Value::String(s)) => OpKind::parse(s).ok_or_else(|| {
            ScimError::invalid_syntax(format!(
                "Unknown op \"{s}\"; expected add, replace or remove."
            ))
        }),
        _ => Err(ScimError::invalid_syntax(
            "Each operation needs an \"op\": add, replace or remove.",
        )),
    }
}

fn apply_op(user: &mut User, op: &Value, profile: Profile) -> Result<(), ScimError> {
    let op = op
        .as_object()
        .ok_or_else(|| ScimError::invalid_syntax("Each operation must be an object."))?;
    let kind = op_kind(op)?;
    let path = match get_ci(op, "path") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some((s.as_str(), parse_path(s, profile)?)),
        Some(_) => return Err(ScimError::invalid_path("path must be a string.")),
    };
    let value = get_ci(op, "value");
    match (kind, path) {
        (OpKind::Remove, None | Some((_, Target::Resource))) => {
            Err(ScimError::no_target("remove needs a path."))
        }
        (OpKind::Remove, Some((_, target))) => remove(user, &target, profile),
        (_, None | Some((_, Target::Resource))) => match value {
            Some(value @ Value::Object(_)) => set(user, &Target::Resource, value, kind, profile),
            _ => Err(ScimError::invalid_syntax(format!(
                "The {} operation without a path needs an object value.",
                kind.name()
            ))),
        },
        (_, Some((text, target))) => match value {
            Some(value) => set(user, &target, value, kind, profile),
            None => Err(ScimError::invalid_syntax(format!(
                "The {} operation on \"{text}\" needs a value.",
                kind.name()
            ))),
        },
    }
}

/// What a path (or a key of a path-less value) points at.
#[derive(Debug, Clone, PartialEq)]
enum Target {
    /// The whole user: a path-less operation, or the core schema URN itself.
    Resource,
    /// A writable attribute of the User table (or of an extension, or an
    /// extension itself), with the value filter and sub-attribute the path
    /// names.
    Attribute {
        attribute: &'static Attribute<User>,
        filter: Option<ValueFilter>,
        sub: Sub,
    },
    /// `id`, `meta…`, `schemas`, named as the error message shows them.
    ReadOnly(String),
    /// `password`, `groups`, schemas the profile does not have and anything
    /// outside the schema.
    Ignored,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Sub {
    Whole,
    Part(&'static Attribute<User>),
    /// A sub-attribute the profile does not store (`name.middleName` in
    /// `odm`, `emails.display`, …).
    Other,
}

/// The `[...]` of a value path, parsed by the filter parser: conditions on
/// the attribute's sub-attributes. The `odm` profile's `emails` reads it
/// with [`filter::parse_value_filter`] (`eq` and `and`, its one work
/// email), every multi-valued attribute of `rfc` with
/// [`filter::parse_value_filter_in`] (the whole grammar).
#[derive(Debug, Clone, PartialEq)]
struct ValueFilter {
    /// As written between the brackets, for error messages.
    text: String,
    /// The conditions, joined by `and`.
    conds: Vec<Filter>,
}

impl ValueFilter {
    /// A `type` other than `work` can never select the `odm` email.
    fn foreign_type(&self) -> bool {
        self.conds.iter().any(|c| {
            c.eq_value(Attr::EmailType)
                .is_some_and(|v| !matches!(v, FilterValue::Str(s) if rules::fold(s) == "work"))
        })
    }

    /// `type eq "work"` alone selects the `odm` work email slot, existing or not.
    fn type_only(&self) -> bool {
        self.conds
            .iter()
            .all(|c| c.eq_value(Attr::EmailType).is_some())
    }

    /// Whether the `odm` user's email meets every condition (as a filter's
    /// own `emails[...]` would select it).
    fn matches(&self, user: &User) -> bool {
        filter::user_value_matches(user, "emails", &self.conds)
    }

    /// Whether one value of the `rfc` multi-valued `attribute` meets every condition.
    fn selects(&self, attribute: &Attribute<User>, entry: &Entry, profile: Profile) -> bool {
        let value = attribute.entry_json(entry, profile);
        self.conds.iter().all(|c| c.matches_element(&value))
    }

    /// The value the conditions describe, made when none matches: each
    /// `eq` gives the part it compares (`type eq "fax"` → a fax number).
    fn new_entry(&self, attribute: &'static Attribute<User>) -> Result<Entry, ScimError> {
        let mut entry = Entry::default();
        for cond in &self.conds {
            let Filter::Compare(path, Op::Eq, value) = cond else {
                return Err(no_value_matches(attribute, self));
            };
            let Some(sub) = path.names().last().and_then(|name| attribute.sub(name)) else {
                return Err(no_value_matches(attribute, self));
            };
            let value = match value {
                FilterValue::Str(s) => json!(s),
                FilterValue::Bool(b) => json!(b),
                FilterValue::Null => Value::Null,
                FilterValue::Num(_) => return Err(no_value_matches(attribute, self)),
            };
            attribute.set_part(&mut entry, sub, &value)?;
        }
        Ok(entry)
    }
}

/// `[urn:ietf:params:scim:schemas:core:2.0:User:]attr[\[filter\]][.sub]`,
/// an extension's `urn:…:attr[.sub]`, or the extension's URN alone; names
/// case-insensitive. An attribute of an extension may also be named without
/// its URN when no core attribute has its name (Entra ID's documentation
/// sends `manager`).
fn parse_path(path: &str, profile: Profile) -> Result<Target, ScimError> {
    let bad = |why: &str| ScimError::invalid_path(format!("Invalid path \"{path}\": {why}."));
    let text = path.trim();
    if text.is_empty() {
        return Err(bad("it is empty"));
    }
    if text.eq_ignore_ascii_case(super::USER_SCHEMA) {
        return Ok(Target::Resource);
    }
    let (extension, rest) = match schema::extension_in(USER_ATTRIBUTES, profile, text) {
        Some((extension, "")) => {
            return Ok(Target::Attribute {
                attribute: extension,
                filter: None,
                sub: Sub::Whole,
            })
        }
        Some((extension, rest)) => (Some(extension), rest),
        None => match schema::strip_user_urn(text) {
            Some(rest) => (None, rest),
            // Another schema (an extension the profile does not have, …): not stored.
            None => return Ok(Target::Ignored),
        },
    };

    let (attr, mut rest) = split_name(rest);
    if attr.is_empty() {
        return Err(bad("expected an attribute name"));
    }
    let mut filter = None;
    if rest.starts_with('[') {
        let end = closing_bracket(rest).ok_or_else(|| bad("unclosed \"[\""))?;
        filter = Some(&rest[1..end]);
        rest = &rest[end + 1..];
    }
    let mut sub = None;
    if let Some(after_dot) = rest.strip_prefix('.') {
        let (name, after) = split_name(after_dot);
        if name.is_empty() {
            return Err(bad("expected a sub-attribute name after \".\""));
        }
        sub = Some(name);
        rest = after;
    }
    if !rest.is_empty() {
        return Err(bad(&format!("unexpected \"{rest}\"")));
    }

    if extension.is_none() && attr.eq_ignore_ascii_case("schemas") {
        return Ok(read_only_target("schemas", sub));
    }
    let found = match extension {
        Some(extension) => extension.sub_in(profile, attr),
        None => schema::find_in(USER_ATTRIBUTES, profile, attr).or_else(|| {
            schema::extensions(USER_ATTRIBUTES, profile).find_map(|e| e.sub_in(profile, attr))
        }),
    };
    let Some(attribute) = found else {
        return Ok(Target::Ignored);
    };
    match attribute.store {
        Store::ReadOnly(_) => return Ok(read_only_target(attribute.name, sub)),
        _ if !attribute.writable() => return Ok(Target::Ignored),
        _ => {}
    }
    let name = attribute.name;
    let filter = match filter {
        Some(_) if !attribute.multi_valued => {
            return Err(bad(&format!("{name} is not multi-valued")))
        }
        Some(text) => Some(ValueFilter {
            text: text.to_string(),
            conds: match attribute.store {
                Store::Values { .. } => filter::parse_value_filter_in(Profile::Rfc, name, text)?,
                _ => filter::parse_value_filter(attr, text)?,
            },
        }),
        None => None,
    };
    let sub = match sub {
        None => Sub::Whole,
        Some(_) if attribute.sub_attributes.is_empty() => {
            return Err(bad(&format!("{name} has no sub-attributes")))
        }
        Some(sub) => attribute.sub_in(profile, sub).map_or(Sub::Other, Sub::Part),
    };
    Ok(Target::Attribute {
        attribute,
        filter,
        sub,
    })
}

fn read_only_target(name: &str, sub: Option<&str>) -> Target {
    Target::ReadOnly(match sub {
        Some(sub) => format!("{name}.{sub}"),
        None => name.to_string(),
    })
}

/// An attribute name: a letter (or `$`, for `$ref`) then letters, digits, `-`, `_`.
fn split_name(s: &str) -> (&str, &str) {
    let mut chars = s.char_indices();
    match chars.next() {
        Some((_, c)) if c.is_ascii_alphabetic() || c == '$' => {}
        _ => return ("", s),
    }
    let end = chars
        .find(|&(_, c)| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        .map_or(s.len(), |(i, _)| i);
    s.split_at(end)
}

/// The index of the `]` closing the `[` at index 0, skipping quoted strings.
pub(super) fn closing_bracket(s: &str) -> Option<usize> {
    let mut in_string = false;
    let mut escaped = false;
    for (i, c) in s.char_indices().skip(1) {
        match (in_string, escaped, c) {
            (true, true, _) => escaped = false,
            (true, false, '\\') => escaped = true,
            (_, false, '"') => in_string = !in_string,
            (false, _, ']') => return Some(i),
            _ => {}
        }
    }
    None
}

/// add and replace: both set single-valued attributes and merge into `name`.
fn set(
    user: &mut User,
    target: &Target,
    value: &Value,
    kind: OpKind,
    profile: Profile,
) -> Result<(), ScimError> {
    match target {
        Target::Resource => {
            let attrs = value.as_object().ok_or_else(|| {
                ScimError::invalid_syntax(format!(
                    "The {} operation without a path needs an object value.",
                    kind.name()
                ))
            })?;
            for (key, value) in attrs {
                set(user, &parse_path(key, profile)?, value, kind, profile)?;
            }
        }
        Target::Attribute {
            attribute,
            filter,
            sub,
        } => {
            let write = match kind {
                OpKind::Add => Write::Add,
                _ => Write::Replace,
            };
            if let Store::Values { .. } = attribute.store {
                return set_values(
                    user,
                    attribute,
                    filter.as_ref(),
                    *sub,
                    value,
                    write,
                    profile,
                );
            }
            if let Some(filter) = filter {
                select_for_set(user, filter)?;
            }
            match sub {
                Sub::Whole => attribute.write(user, value, write, profile)?,
                Sub::Part(part) => part.write(user, value, write, profile)?,
                Sub::Other => {}
            }
        }
        Target::ReadOnly(name) => return Err(read_only(name)),
        Target::Ignored => {}
    }
    Ok(())
}

/// A value filter on the `odm` `emails` selects the one stored email, or
/// with `type eq "work"` alone the slot for it (Entra replaces
/// `emails[type eq "work"].value` to create the work email).
fn select_for_set(user: &User, filter: &ValueFilter) -> Result<(), ScimError> {
    if filter.foreign_type() {
        return Err(ScimError::invalid_value(format!(
            "Only work emails are stored, so emails[{}] cannot be set.",
            filter.text
        )));
    }
    if !filter.matches(user) && !filter.type_only() {
        return Err(no_match(filter));
    }
    Ok(())
}

/// add and replace on a multi-valued attribute the record keeps as values
/// (`rfc`). The whole attribute: `add` appends, `replace` replaces. A value
/// path (`phoneNumbers[type eq "work"]`), or a sub-attribute of every value
/// (`phoneNumbers.value`), sets what the path names on each value it
/// selects; when it selects none, the value is made, with the parts the
/// filter's conditions give (Entra ID adds `phoneNumbers[type eq
/// "fax"].value` to make the fax number, and replaces
/// `emails[type eq "work"].value` to make the work email). A value set
/// primary makes the others not primary (RFC 7644 §3.5.2).
fn set_values(
    user: &mut User,
    attribute: &'static Attribute<User>,
    filter: Option<&ValueFilter>,
    sub: Sub,
    value: &Value,
    write: Write,
    profile: Profile,
) -> Result<(), ScimError> {
    let Store::Values { get, put, .. } = attribute.store else {
        return Ok(());
    };
    match (filter, sub) {
        (None, Sub::Whole) => return attribute.write(user, value, write, profile),
        (_, Sub::Other) => return Ok(()),
        _ => {}
    }
    let mut values = get(user);
    let mut targets: Vec<usize> = (0..values.len())
        .filter(|&i| filter.is_none_or(|f| f.selects(attribute, &values[i], profile)))
        .collect();
    if targets.is_empty() {
        values.push(match filter {
            Some(f) => f.new_entry(attribute)?,
            None => Entry::default(),
        });
        targets.push(values.len() - 1);
    }
    for &i in &targets {
        match sub {
            Sub::Part(part) => attribute.set_part(&mut values[i], part, value)?,
            // A value path's whole value: an object of parts, merged by
            // `add`, replacing all but what the filter pins by `replace`.
            _ => {
                let Value::Object(parts) = value else {
                    return Err(ScimError::invalid_value(format!(
                        "{}[{}] takes an object, not {value}",
                        attribute.name,
                        filter.map_or("", |f| f.text.as_str())
                    )));
                };
                let mut entry = match (write, filter) {
                    (Write::Replace, Some(f)) => f.new_entry(attribute)?,
                    _ => values[i].clone(),
                };
                for (key, v) in parts {
                    if let Some(part) = attribute.sub(key) {
                        attribute.set_part(&mut entry, part, v)?;
                    }
                }
                values[i] = entry;
            }
        }
    }
    if targets.iter().any(|&i| values[i].is_primary()) {
        for (i, v) in values.iter_mut().enumerate() {
            if !targets.contains(&i) && v.is_primary() {
                v.primary = Some(false);
            }
        }
    }
    values.retain(|v| !v.is_blank());
    attribute.check_entries(&values)?;
    put(user, values);
    Ok(())
}

fn remove(user: &mut User, target: &Target, profile: Profile) -> Result<(), ScimError> {
    match target {
        Target::Resource => return Err(ScimError::no_target("remove needs a path.")),
        Target::Attribute {
            attribute,
            filter,
            sub,
        } => {
            if let Store::Values { get, put, .. } = attribute.store {
                // The values the path selects lose what it names; no value
                // selected is nothing to do. A value left with only a type
                // goes (Entra removes `phoneNumbers[type eq "fax"].value`).
                let selects = |v: &Entry| {
                    filter
                        .as_ref()
                        .is_none_or(|f| f.selects(attribute, v, profile))
                };
                let mut values = get(user);
                match sub {
                    Sub::Whole => values.retain(|v| !selects(v)),
                    Sub::Part(part) => {
                        for v in values.iter_mut().filter(|v| selects(v)) {
                            attribute.set_part(v, part, &Value::Null)?;
                        }
                    }
                    Sub::Other => return Ok(()),
                }
                values.retain(|v| !v.is_blank());
                put(user, values);
                return Ok(());
            }
            if let Some(filter) = filter {
                if !filter.matches(user) {
                    return Err(no_match(filter));
                }
            }
            match sub {
                Sub::Whole if attribute.required => return Err(required(attribute.name)),
                Sub::Whole => attribute.clear(user, profile),
                Sub::Part(part) => part.clear(user, profile),
                Sub::Other => {}
            }
        }
        Target::ReadOnly(name) => return Err(read_only(name)),
        Target::Ignored => {}
    }
    Ok(())
}

fn read_only(name: &str) -> ScimError {
    ScimError::mutability(format!("{name} is read-only."))
}

fn required(attr: &str) -> ScimError {
    ScimError::mutability(format!("{attr} is required and cannot be removed."))
}

fn no_match(filter: &ValueFilter) -> ScimError {
    ScimError::no_target(format!("No email matches emails[{}].", filter.text))
}

fn no_value_matches(attribute: &Attribute<User>, filter: &ValueFilter) -> ScimError {
    ScimError::no_target(format!(
        "No value matches {}[{}], and it describes none to add.",
        attribute.name, filter.text
    ))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::scim::ScimType::{self, *};
    use crate::scim::USER_SCHEMA;

    /// A user with every SCIM attribute set.
    fn bob() -> User {
        let mut u = User::new("bob");
        u.first_name = "Bob".into();
        u.last_name = "Jensen".into();
        u.email = "bob@example.com".into();
        u.external_id = Some("e1".into());
        u
    }

    /// A user with only a userName, as scim2-tester creates them.
    fn bare() -> User {
        User::new("bare")
    }

    fn inactive() -> User {
        User {
            is_active: false,
            ..bob()
        }
    }

    fn not_primary() -> User {
        User {
            email_primary: false,
            ..bob()
        }
    }

    fn body(ops: Value) -> Value {
        json!({"schemas": [PATCH_OP_SCHEMA], "Operations": ops})
    }

    fn one(op: Value) -> Value {
        body(json!([op]))
    }

    fn same(_: &mut User) {}

    /// (starting user, body, the change expected on it)
    type Applies = (fn() -> User, Value, fn(&mut User));
    /// (starting user, body, scimType, detail)
    type Rejects = (fn() -> User, Value, ScimType, &'static str);

    #[rustfmt::skip]
    #[test]
    fn applies() {
        let rows: Vec<Applies> = vec![
            // Entra
            (bob, one(json!({"op":"Replace","path":"active","value":"False"})), |u| u.is_active = false),
            (inactive, one(json!({"op":"replace","path":"active","value":"TRUE"})), |u| u.is_active = true),
            (bob, one(json!({"op":"replace","path":"active","value":"false"})), |u| u.is_active = false),
            (bob, one(json!({"op":"replace","path":"emails[type eq \"work\"].value","value":"x@y.org"})), |u| u.email = "x@y.org".into()),
            (bare, one(json!({"op":"replace","path":"emails[type eq \"work\"].value","value":"x@y.org"})), |u| u.email = "x@y.org".into()),
            (not_primary, one(json!({"op":"Add","path":"emails[type eq \"work\"].value","value":"x@y.org"})), |u| u.email = "x@y.org".into()),
            (bob, one(json!({"op":"replace","value":{"displayName":"x","name.givenName":"y"}})), |u| { u.display_name = Some("x".into()); u.first_name = "y".into(); }),
            (bob, one(json!({"op":"Add","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber","value":"1"})), same),
            (bob, one(json!({"op":"Add","value":{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"employeeNumber":"1"}}})), same),
            (bob, one(json!({"op":"Replace","path":"name.familyName","value":"Smith"})), |u| u.last_name = "Smith".into()),
            (bob, one(json!({"op":"Replace","path":"externalId","value":"e2"})), |u| u.external_id = Some("e2".into())),
            (bob, one(json!({"op":"Remove","path":"emails[type eq \"work\"].value"})), |u| u.email.clear()),
            (bob, one(json!({"op":"Add","path":"addresses[type eq \"work\"].streetAddress","value":"1 Main St"})), same),
            // Okta
            (bob, one(json!({"op":"replace","value":{"active":false}})), |u| u.is_active = false),
            (inactive, one(json!({"op":"replace","value":{"active":true}})), |u| u.is_active = true),
            // scim2-tester: plain paths
            (bare, one(json!({"op":"add","path":"externalId","value":"x1"})), |u| u.external_id = Some("x1".into())),
            (bob, one(json!({"op":"replace","path":"externalId","value":"x1"})), |u| u.external_id = Some("x1".into())),
            (bob, one(json!({"op":"remove","path":"externalId"})), |u| u.external_id = None),
            (bare, one(json!({"op":"add","path":"name","value":{"givenName":"g","familyName":"f"}})), |u| { u.first_name = "g".into(); u.last_name = "f".into(); }),
            (bob, one(json!({"op":"replace","path":"name","value":{"givenName":"g","familyName":"f"}})), |u| { u.first_name = "g".into(); u.last_name = "f".into(); }),
            (bob, one(json!({"op":"remove","path":"name"})), |u| { u.first_name.clear(); u.last_name.clear(); }),
            (bare, one(json!({"op":"add","path":"emails","value":[{"value":"n@x.org","type":"work","primary":false}]})), |u| { u.email = "n@x.org".into(); u.email_primary = false; }),
            (not_primary, one(json!({"op":"replace","path":"emails","value":[{"value":"n@x.org","type":"work","primary":true}]})), |u| { u.email = "n@x.org".into(); u.email_primary = true; }),
            (bob, one(json!({"op":"add","path":"emails","value":[{"value":"n@x.org"}]})), |u| u.email = "n@x.org".into()),
            (not_primary, one(json!({"op":"remove","path":"emails"})), |u| { u.email.clear(); u.email_primary = true; }),
            (bob, one(json!({"op":"replace","path":"active","value":false})), |u| u.is_active = false),
            (bob, one(json!({"op":"replace","path":"userName","value":"robert"})), |u| u.username = "robert".into()),
            (bob, one(json!({"op":"add","path":"displayName","value":"Babs"})), |u| u.display_name = Some("Babs".into())),
            // a complex replace sets the sub-attributes given and keeps the rest
            (bob, one(json!({"op":"replace","path":"name","value":{"givenName":"x"}})), |u| u.first_name = "x".into()),
            (bob, one(json!({"op":"replace","path":"name","value":{"formatted":"B J","middleName":"M"}})), same),
            (bob, one(json!({"op":"replace","path":"name","value":{"givenName":null}})), |u| u.first_name.clear()),
            (bob, one(json!({"op":"replace","path":"name","value":null})), |u| { u.first_name.clear(); u.last_name.clear(); }),
            (bob, one(json!({"op":"remove","path":"name.givenName"})), |u| u.first_name.clear()),
            (bob, one(json!({"op":"remove","path":"name.familyName"})), |u| u.last_name.clear()),
            (bob, one(json!({"op":"replace","path":"name.formatted","value":"B J"})), same),
            (bob, one(json!({"op":"remove","path":"name.middleName"})), same),
            // URN-prefixed paths and keys; names in any case
            (bob, one(json!({"op":"replace","path":"urn:ietf:params:scim:schemas:core:2.0:User:userName","value":"r"})), |u| u.username = "r".into()),
            (bob, one(json!({"op":"replace","path":"URN:ietf:params:scim:schemas:core:2.0:user:name.givenName","value":"g"})), |u| u.first_name = "g".into()),
            (bob, one(json!({"op":"replace","value":{"urn:ietf:params:scim:schemas:core:2.0:User:displayName":"d"}})), |u| u.display_name = Some("d".into())),
            (bob, one(json!({"op":"replace","value":{"urn:ietf:params:scim:schemas:core:2.0:User":{"userName":"r","active":"false"}}})), |u| { u.username = "r".into(); u.is_active = false; }),
            (bob, one(json!({"op":"replace","path":"urn:ietf:params:scim:schemas:core:2.0:User","value":{"userName":"r"}})), |u| u.username = "r".into()),
            (bob, one(json!({"OP":"REPLACE","PATH":"USERNAME","VALUE":"r"})), |u| u.username = "r".into()),
            (bob, one(json!({"op":"replace","path":"Name.GivenName","value":"g"})), |u| u.first_name = "g".into()),
            (bare, one(json!({"op":"add","path":"EMAILS","value":[{"Value":"n@x.org","Type":"Work","Primary":"False"}]})), |u| { u.email = "n@x.org".into(); u.email_primary = false; }),
            (bob, one(json!({"op":"replace","value":{"NAME":{"GIVENNAME":"g"},"ExternalID":"x"}})), |u| { u.first_name = "g".into(); u.external_id = Some("x".into()); }),
            // path-less values take the same keys as paths
            (bob, one(json!({"op":"add","value":{"emails[type eq \"work\"].value":"n@x.org","name.familyName":"f"}})), |u| { u.email = "n@x.org".into(); u.last_name = "f".into(); }),
            (bob, one(json!({"op":"replace","value":{"emails":[{"value":"n@x.org","primary":false}]}})), |u| { u.email = "n@x.org".into(); u.email_primary = false; }),
            // other email shapes
            (bob, one(json!({"op":"replace","path":"emails.value","value":"n@x.org"})), |u| u.email = "n@x.org".into()),
            (bob, one(json!({"op":"remove","path":"emails.value"})), |u| u.email.clear()),
            (bob, one(json!({"op":"remove","path":"emails[type eq \"work\"]"})), |u| u.email.clear()),
            (bob, one(json!({"op":"replace","path":"emails[type eq \"work\"]","value":{"value":"n@x.org","primary":false}})), |u| { u.email = "n@x.org".into(); u.email_primary = false; }),
            (bob, one(json!({"op":"replace","path":"emails[value eq \"BOB@example.com\"].primary","value":false})), |u| u.email_primary = false),
            (bob, one(json!({"op":"replace","path":"emails[type eq \"work\" and primary eq true].value","value":"n@x.org"})), |u| u.email = "n@x.org".into()),
            (bob, one(json!({"op":"replace","path":"emails[TYPE EQ \"Work\"].value","value":"n@x.org"})), |u| u.email = "n@x.org".into()),
            (not_primary, one(json!({"op":"remove","path":"emails.primary"})), |u| u.email_primary = true),
            (bob, one(json!({"op":"replace","path":"emails.type","value":"work"})), same),
            (bob, one(json!({"op":"replace","path":"emails[type eq \"work\"].display","value":"Bob"})), same),
            (bob, one(json!({"op":"replace","path":"emails","value":{"value":"n@x.org"}})), |u| u.email = "n@x.org".into()),
            (bob, one(json!({"op":"add","path":"emails","value":[]})), same),
            (bob, one(json!({"op":"replace","path":"emails","value":[]})), |u| u.email.clear()),
            (bob, one(json!({"op":"replace","path":"emails","value":null})), |u| u.email.clear()),
            (bare, one(json!({"op":"remove","path":"emails"})), same),
            // an email set to "" is no email, so primary returns to the default
            (not_primary, one(json!({"op":"replace","path":"emails.value","value":""})), |u| { u.email.clear(); u.email_primary = true; }),
            // externalId: null and "" unassign it
            (bob, one(json!({"op":"replace","path":"externalId","value":null})), |u| u.external_id = None),
            (bob, one(json!({"op":"replace","path":"externalId","value":""})), |u| u.external_id = None),
            (bare, one(json!({"op":"remove","path":"externalId"})), same),
            // ignored: password, groups and attributes outside the schema
            (bob, one(json!({"op":"add","path":"password","value":"hunter2"})), same),
            (bob, one(json!({"op":"add","path":"groups","value":[]})), same),
            (bob, one(json!({"op":"replace","value":{"title":"Boss","nickName":"B","phoneNumbers":[{"value":"1"}]}})), same),
            (bob, one(json!({"op":"remove","path":"title"})), same),
            (bob, one(json!({"op":"remove","path":"phoneNumbers[type eq \"work\"]"})), same),
            // setting the value it already has
            (bob, one(json!({"op":"replace","path":"userName","value":"bob"})), same),
            // the envelope: schemas may be missing or a string, Operations in any case, ops in order
            (bob, json!({"operations":[{"op":"replace","path":"userName","value":"r"}]}), |u| u.username = "r".into()),
            (bob, json!({"schemas":PATCH_OP_SCHEMA,"Operations":[{"op":"remove","path":"externalId"}]}), |u| u.external_id = None),
            (bob, body(json!([{"op":"replace","path":"userName","value":"a"},{"op":"replace","path":"userName","value":"b"}])), |u| u.username = "b".into()),
            (bob, body(json!([{"op":"remove","path":"name.givenName"},{"op":"add","path":"name.givenName","value":"g"}])), |u| u.first_name = "g".into()),
            // remove takes its path and ignores a value
            (bob, one(json!({"op":"remove","path":"emails","value":[{"value":"bob@example.com"}]})), |u| u.email.clear()),
            // deactivated users can be patched
            (inactive, one(json!({"op":"replace","path":"displayName","value":"d"})), |u| u.display_name = Some("d".into())),
        ];
        for (start, body, change) in rows {
            let user = start();
            let mut want = user.clone();
            change(&mut want);
            assert_eq!(apply(&user, &body, Profile::Odm), Ok(want), "{body}");
        }
    }

    #[rustfmt::skip]
    #[test]
    fn rejects() {
        let rows: Vec<Rejects> = vec![
            // the envelope
            (bob, json!([]), InvalidSyntax, "The PATCH body must be a JSON object."),
            (bob, json!({"schemas":[USER_SCHEMA],"Operations":[{"op":"remove","path":"title"}]}), InvalidSyntax, "schemas must contain \"urn:ietf:params:scim:api:messages:2.0:PatchOp\"."),
            (bob, json!({"schemas":[PATCH_OP_SCHEMA]}), InvalidSyntax, "Operations must be a non-empty array."),
            (bob, body(json!([])), InvalidSyntax, "Operations must be a non-empty array."),
            (bob, body(json!({"op":"remove","path":"title"})), InvalidSyntax, "Operations must be a non-empty array."),
            (bob, body(json!(["remove"])), InvalidSyntax, "Each operation must be an object."),
            (bob, one(json!({"path":"userName","value":"x"})), InvalidSyntax, "Each operation needs an \"op\": add, replace or remove."),
            (bob, one(json!({"op":5,"path":"userName","value":"x"})), InvalidSyntax, "Each operation needs an \"op\": add, replace or remove."),
            (bob, one(json!({"op":"move","path":"userName","value":"x"})), InvalidSyntax, "Unknown op \"move\"; expected add, replace or remove."),
            (bob, one(json!({"op":"","path":"userName","value":"x"})), InvalidSyntax, "Unknown op \"\"; expected add, replace or remove."),
            (bob, one(json!({"op":"replace","path":"userName"})), InvalidSyntax, "The replace operation on \"userName\" needs a value."),
            (bob, one(json!({"op":"add"})), InvalidSyntax, "The add operation without a path needs an object value."),
            (bob, one(json!({"op":"replace","value":"x"})), InvalidSyntax, "The replace operation without a path needs an object value."),
            (bob, one(json!({"op":"replace","value":[{"userName":"x"}]})), InvalidSyntax, "The replace operation without a path needs an object value."),
            // remove
            (bob, one(json!({"op":"remove"})), NoTarget, "remove needs a path."),
            (bob, one(json!({"op":"Remove","path":null})), NoTarget, "remove needs a path."),
            (bob, one(json!({"op":"remove","path":"urn:ietf:params:scim:schemas:core:2.0:User"})), NoTarget, "remove needs a path."),
            (bob, one(json!({"op":"remove","path":"userName"})), Mutability, "userName is required and cannot be removed."),
            (bob, one(json!({"op":"remove","path":"displayName"})), Mutability, "displayName is required and cannot be removed."),
            (bob, one(json!({"op":"remove","path":"active"})), Mutability, "active is required and cannot be removed."),
            (bob, one(json!({"op":"remove","path":"emails[type eq \"home\"]"})), NoTarget, "No email matches emails[type eq \"home\"]."),
            (bare, one(json!({"op":"remove","path":"emails[type eq \"work\"].value"})), NoTarget, "No email matches emails[type eq \"work\"]."),
            (bob, one(json!({"op":"remove","path":"emails[value eq \"other@x.org\"]"})), NoTarget, "No email matches emails[value eq \"other@x.org\"]."),
            // read-only
            (bob, one(json!({"op":"replace","path":"id","value":"7"})), Mutability, "id is read-only."),
            (bob, one(json!({"op":"remove","path":"ID"})), Mutability, "id is read-only."),
            (bob, one(json!({"op":"replace","path":"meta","value":{}})), Mutability, "meta is read-only."),
            (bob, one(json!({"op":"replace","path":"meta.lastModified","value":"2020-01-01T00:00:00Z"})), Mutability, "meta.lastModified is read-only."),
            (bob, one(json!({"op":"add","path":"schemas","value":["x"]})), Mutability, "schemas is read-only."),
            (bob, one(json!({"op":"replace","value":{"userName":"x","id":"7"}})), Mutability, "id is read-only."),
            (bob, one(json!({"op":"replace","path":"urn:ietf:params:scim:schemas:core:2.0:User:id","value":"7"})), Mutability, "id is read-only."),
            // wrong JSON types and values
            (bob, one(json!({"op":"replace","path":"userName","value":null})), InvalidValue, "userName cannot be empty."),
            (bob, one(json!({"op":"replace","path":"userName","value":""})), InvalidValue, "userName cannot be empty."),
            (bob, one(json!({"op":"replace","path":"userName","value":5})), InvalidValue, "userName must be a string."),
            (bob, one(json!({"op":"replace","path":"displayName","value":null})), InvalidValue, "displayName cannot be null."),
            (bob, one(json!({"op":"replace","value":{"displayName":true}})), InvalidValue, "displayName must be a string."),
            (bob, one(json!({"op":"replace","path":"externalId","value":7})), InvalidValue, "externalId must be a string."),
            (bob, one(json!({"op":"replace","path":"active","value":"yes"})), InvalidValue, "active must be true or false, not \"yes\""),
            (bob, one(json!({"op":"replace","path":"active","value":1})), InvalidValue, "active must be true or false, not 1"),
            (bob, one(json!({"op":"replace","path":"active","value":null})), InvalidValue, "active must be true or false, not null"),
            (bob, one(json!({"op":"replace","path":"name","value":"Bob Jensen"})), InvalidValue, "name must be an object."),
            (bob, one(json!({"op":"replace","path":"name.givenName","value":5})), InvalidValue, "name.givenName must be a string."),
            (bob, one(json!({"op":"add","path":"name","value":{"familyName":["J"]}})), InvalidValue, "name.familyName must be a string."),
            (bob, one(json!({"op":"add","path":"emails","value":[{"value":"a@x.org"},{"value":"b@x.org","type":"work"}]})), InvalidValue, "Only one email per user is stored; emails has 2 values."),
            (bob, one(json!({"op":"add","path":"emails","value":[{"value":"a@x.org","type":"home"}]})), InvalidValue, "Only work emails are stored; got type \"home\"."),
            (bob, one(json!({"op":"add","path":"emails","value":[{"value":"a@x.org","type":1}]})), InvalidValue, "emails.type must be a string, not 1"),
            (bob, one(json!({"op":"add","path":"emails","value":"a@x.org"})), InvalidValue, "emails must be a list of email objects, not \"a@x.org\""),
            (bob, one(json!({"op":"add","path":"emails","value":["a@x.org"]})), InvalidValue, "an email must be an object, not \"a@x.org\""),
            (bob, one(json!({"op":"add","path":"emails","value":[{"type":"work"}]})), InvalidValue, "emails.value is required."),
            (bob, one(json!({"op":"add","path":"emails","value":[{"value":5}]})), InvalidValue, "emails.value must be a string, not 5"),
            (bob, one(json!({"op":"add","path":"emails","value":[{"value":"a@x.org","primary":"maybe"}]})), InvalidValue, "emails.primary must be true or false, not \"maybe\""),
            (bob, one(json!({"op":"replace","path":"emails.value","value":false})), InvalidValue, "emails.value must be a string."),
            (bob, one(json!({"op":"replace","path":"emails.type","value":"other"})), InvalidValue, "Only work emails are stored; got type \"other\"."),
            (bob, one(json!({"op":"replace","path":"emails[type eq \"home\"].value","value":"a@x.org"})), InvalidValue, "Only work emails are stored, so emails[type eq \"home\"] cannot be set."),
            (bob, one(json!({"op":"add","path":"emails[type eq \"home\"]","value":{"value":"a@x.org"}})), InvalidValue, "Only work emails are stored, so emails[type eq \"home\"] cannot be set."),
            (bob, one(json!({"op":"replace","path":"emails[value eq \"other@x.org\"].value","value":"a@x.org"})), NoTarget, "No email matches emails[value eq \"other@x.org\"]."),
            // atomic: a later failing operation fails the whole PatchOp
            (bob, body(json!([{"op":"replace","path":"userName","value":"robert"},{"op":"replace","path":"active","value":"nope"}])), InvalidValue, "active must be true or false, not \"nope\""),
            (bob, body(json!([{"op":"remove","path":"externalId"},{"op":"remove"}])), NoTarget, "remove needs a path."),
            // paths (the path grammar has its own table below)
            (bob, one(json!({"op":"replace","path":5,"value":"x"})), InvalidPath, "path must be a string."),
            (bob, one(json!({"op":"replace","path":"","value":"x"})), InvalidPath, "Invalid path \"\": it is empty."),
            (bob, one(json!({"op":"replace","value":{"name..givenName":"x"}})), InvalidPath, "Invalid path \"name..givenName\": expected a sub-attribute name after \".\"."),
            (bob, one(json!({"op":"remove","path":"emails[type sw \"w\"]"})), InvalidFilter, "Unsupported filter operator 'sw': only 'eq' and 'and' are supported"),
        ];
        for (start, body, scim_type, detail) in rows {
            assert_eq!(apply(&start(), &body, Profile::Odm), Err(ScimError::bad(scim_type, detail)), "{body}");
        }
    }

    /// `name`, or `name.sub` (`Some("")`: a sub-attribute not stored).
    fn attr(name: &str, sub: Option<&str>) -> Target {
        let attribute = schema::find(USER_ATTRIBUTES, name).unwrap();
        let sub = match sub {
            None => Sub::Whole,
            Some("") => Sub::Other,
            Some(s) => Sub::Part(attribute.sub(s).unwrap()),
        };
        Target::Attribute {
            attribute,
            filter: None,
            sub,
        }
    }

    fn emails(text: &str, conds: &[Filter], sub: Option<&str>) -> Target {
        let Target::Attribute { attribute, sub, .. } = attr("emails", sub) else {
            unreachable!()
        };
        Target::Attribute {
            attribute,
            filter: Some(ValueFilter {
                text: text.into(),
                conds: conds.to_vec(),
            }),
            sub,
        }
    }

    #[rustfmt::skip]
    #[test]
    fn paths() {
        let conds = |text: &str| filter::parse_value_filter("emails", text).unwrap();
        let work = || conds("type eq \"work\"");
        let rows: Vec<(&str, Target)> = vec![
            ("userName", attr("userName", None)),
            ("USERNAME", attr("userName", None)),
            (" userName ", attr("userName", None)),
            ("externalId", attr("externalId", None)),
            ("displayName", attr("displayName", None)),
            ("active", attr("active", None)),
            ("name", attr("name", None)),
            ("name.givenName", attr("name", Some("givenName"))),
            ("name.familyname", attr("name", Some("familyName"))),
            ("name.middleName", attr("name", Some(""))),
            ("emails", attr("emails", None)),
            ("emails.value", attr("emails", Some("value"))),
            ("emails.display", attr("emails", Some(""))),
            ("emails[type eq \"work\"]", emails("type eq \"work\"", &work(), None)),
            ("emails[type eq \"work\"].value", emails("type eq \"work\"", &work(), Some("value"))),
            ("emails[type eq \"work\"].Primary", emails("type eq \"work\"", &work(), Some("primary"))),
            ("emails[type eq \"work\"].type", emails("type eq \"work\"", &work(), Some("type"))),
            ("emails[type eq\"work\"]", emails("type eq\"work\"", &work(), None)),
            ("emails[ value eq \"a\\\"]b@x.org\"  AND primary eq TRUE ]", emails(" value eq \"a\\\"]b@x.org\"  AND primary eq TRUE ", &conds("value eq \"a\\\"]b@x.org\" and primary eq true"), None)),
            ("urn:ietf:params:scim:schemas:core:2.0:User:userName", attr("userName", None)),
            ("urn:ietf:params:scim:schemas:core:2.0:User:emails[type eq \"work\"].value", emails("type eq \"work\"", &work(), Some("value"))),
            ("urn:ietf:params:scim:schemas:core:2.0:User", Target::Resource),
            ("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber", Target::Ignored),
            ("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", Target::Ignored),
            ("id", Target::ReadOnly("id".into())),
            ("Meta.lastModified", Target::ReadOnly("meta.lastModified".into())),
            ("schemas", Target::ReadOnly("schemas".into())),
            ("password", Target::Ignored),
            ("groups", Target::Ignored),
            ("title", Target::Ignored),
            ("x509Certificates", Target::Ignored),
            ("$ref", Target::Ignored),
            ("phoneNumbers[type eq \"work\"].value", Target::Ignored),
        ];
        for (path, want) in rows {
            assert_eq!(parse_path(path, Profile::Odm), Ok(want), "{path:?}");
        }
    }

    #[rustfmt::skip]
    #[test]
    fn bad_paths() {
        let rows: Vec<(&str, ScimType, &str)> = vec![
            ("", InvalidPath, "Invalid path \"\": it is empty."),
            ("  ", InvalidPath, "Invalid path \"  \": it is empty."),
            ("name..givenName", InvalidPath, "Invalid path \"name..givenName\": expected a sub-attribute name after \".\"."),
            ("name.givenName.x", InvalidPath, "Invalid path \"name.givenName.x\": unexpected \".x\"."),
            ("name.", InvalidPath, "Invalid path \"name.\": expected a sub-attribute name after \".\"."),
            (".name", InvalidPath, "Invalid path \".name\": expected an attribute name."),
            ("1name", InvalidPath, "Invalid path \"1name\": expected an attribute name."),
            ("user name", InvalidPath, "Invalid path \"user name\": unexpected \" name\"."),
            ("urn:ietf:params:scim:schemas:core:2.0:User:", InvalidPath, "Invalid path \"urn:ietf:params:scim:schemas:core:2.0:User:\": expected an attribute name."),
            ("emails[type eq \"work\"", InvalidPath, "Invalid path \"emails[type eq \"work\"\": unclosed \"[\"."),
            ("emails[type eq \"work]\"", InvalidPath, "Invalid path \"emails[type eq \"work]\"\": unclosed \"[\"."),
            ("emails[type eq \"work\"]value", InvalidPath, "Invalid path \"emails[type eq \"work\"]value\": unexpected \"value\"."),
            ("userName.first", InvalidPath, "Invalid path \"userName.first\": userName has no sub-attributes."),
            ("active[value eq true]", InvalidPath, "Invalid path \"active[value eq true]\": active is not multi-valued."),
            ("name[givenName eq \"x\"]", InvalidPath, "Invalid path \"name[givenName eq \"x\"]\": name is not multi-valued."),
        ];
        for (path, scim_type, detail) in rows {
            assert_eq!(parse_path(path, Profile::Odm), Err(ScimError::bad(scim_type, detail)), "{path:?}");
        }
        // The filter between the brackets is the filter parser's: its errors
        // are a filter's (`invalidFilter`), with its messages.
        let filters: Vec<(&str, &str)> = vec![
            ("emails[]", "The value filter inside emails[...] is empty"),
            ("emails[type eq]", "Expected a value (a quoted string, true, false, null or a number) after 'eq' at position 8, found end of filter"),
            ("emails[type eq work]", "Expected a value (a quoted string, true, false, null or a number) after 'eq' at position 9, found 'work' (strings need double quotes)"),
            ("emails[type eq \"work\" \"home\"]", "Expected 'and' or the end of emails[...] at position 16, found the string \"home\""),
            ("emails[type = \"work\"]", "Expected an operator ('eq') after 'type' at position 6, found '='"),
            ("emails[display eq null]", "Unknown attribute 'display' inside emails[...]: supported are value, type and primary"),
            ("emails[type co \"wo\"]", "Unsupported filter operator 'co': only 'eq' and 'and' are supported"),
            ("emails[value pr]", "Unsupported filter operator 'pr': only 'eq' and 'and' are supported"),
            ("emails[type eq \"work\" or type eq \"home\"]", "Unsupported filter operator 'or': only 'eq' and 'and' are supported"),
            ("emails[not (type eq \"work\")]", "Unsupported filter operator 'not': only 'eq' and 'and' are supported"),
        ];
        for (path, detail) in filters {
            assert_eq!(parse_path(path, Profile::Odm), Err(ScimError::bad(InvalidFilter, detail)), "{path:?}");
        }
    }

    #[test]
    fn a_failed_patch_leaves_the_user_alone() {
        let user = bob();
        let before = user.clone();
        let body = body(json!([
            {"op": "replace", "path": "userName", "value": "robert"},
            {"op": "replace", "path": "id", "value": "9"},
        ]));
        assert_eq!(
            apply(&user, &body, Profile::Odm),
            Err(ScimError::mutability("id is read-only."))
        );
        assert_eq!(user, before);
    }

    // ---- the rfc profile: the whole User and the enterprise extension

    const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

    /// A value of a multi-valued attribute.
    fn entry(parts: &[(&str, &str)], primary: Option<bool>) -> Entry {
        Entry {
            parts: parts
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            primary,
        }
    }

    /// bob with a work and a mobile number, a work address and a manager.
    fn employee() -> User {
        let mut u = bob();
        u.details.set_list(
            "phoneNumbers",
            vec![
                entry(&[("value", "555-0100"), ("type", "work")], Some(true)),
                entry(&[("value", "555-0199"), ("type", "mobile")], None),
            ],
        );
        u.details.set_list(
            "addresses",
            vec![entry(
                &[("streetAddress", "1 Main St"), ("type", "work")],
                None,
            )],
        );
        u.details.set_text("department", Some("Sales".into()));
        u.details.manager = Some(7);
        u
    }

    fn phones(u: &mut User, values: Vec<Entry>) {
        u.details.set_list("phoneNumbers", values);
    }

    #[rustfmt::skip]
    #[test]
    fn rfc_applies() {
        let ent = |attr: &str| format!("{ENT}:{attr}");
        let rows: Vec<Applies> = vec![
            // single-valued attributes, core and extension, by path and path-less
            (bob, one(json!({"op":"add","path":"title","value":"Boss"})), |u| u.details.set_text("title", Some("Boss".into()))),
            (bob, one(json!({"op":"Replace","value":{"title":"Boss","preferredLanguage":"en-GB","name.middleName":"Q"}})), |u| {
                u.details.set_text("title", Some("Boss".into()));
                u.details.set_text("preferredLanguage", Some("en-GB".into()));
                u.details.set_text("name.middleName", Some("Q".into()));
            }),
            (bob, one(json!({"op":"replace","path":"name","value":{"givenName":"B","honorificPrefix":"Dr."}})), |u| {
                u.first_name = "B".into();
                u.details.set_text("name.honorificPrefix", Some("Dr.".into()));
            }),
            (employee, one(json!({"op":"remove","path":"title"})), same),
            (employee, one(json!({"op":"Add","path":ent("department"),"value":"Support"})), |u| u.details.set_text("department", Some("Support".into()))),
            (employee, one(json!({"op":"replace","path":ent("Department").to_uppercase(),"value":""})), |u| u.details.set_text("department", None)),
            (bob, one(json!({"op":"Add","value":{ENT:{"employeeNumber":"42","costCenter":"C1","division":"D","organization":"O"}}})), |u| {
                for (k, v) in [("employeeNumber", "42"), ("costCenter", "C1"), ("division", "D"), ("organization", "O")] {
                    u.details.set_text(k, Some(v.into()));
                }
            }),
            (employee, one(json!({"op":"replace","path":ENT,"value":{"department":"Ops"}})), |u| u.details.set_text("department", Some("Ops".into()))),
            (employee, one(json!({"op":"remove","path":ENT})), |u| { u.details.set_text("department", None); u.details.manager = None; }),
            // the manager: Entra's bare id, an object, its $ref, the documentation's list of one
            (bob, one(json!({"op":"Add","path":ent("manager"),"value":"12"})), |u| u.details.manager = Some(12)),
            (bob, one(json!({"op":"replace","path":ent("manager"),"value":{"value":"12","displayName":"ignored"}})), |u| u.details.manager = Some(12)),
            (bob, one(json!({"op":"replace","path":ent("manager.value"),"value":"12"})), |u| u.details.manager = Some(12)),
            (bob, one(json!({"op":"replace","path":ent("manager"),"value":{"$ref":"https://h/api/v1/scim/Users/12"}})), |u| u.details.manager = Some(12)),
            (bob, one(json!({"op":"Add","path":"manager","value":[{"$ref":null,"value":"12"}]})), |u| u.details.manager = Some(12)),
            (employee, one(json!({"op":"Remove","path":ent("manager")})), |u| u.details.manager = None),
            (employee, one(json!({"op":"Remove","path":"manager","value":[{"$ref":null,"value":"7"}]})), |u| u.details.manager = None),
            (employee, one(json!({"op":"replace","path":ent("manager"),"value":""})), |u| u.details.manager = None),
            // value paths: Entra's Add to a value path that matches nothing makes the value
            (employee, one(json!({"op":"Add","path":"phoneNumbers[type eq \"fax\"].value","value":"555-0111"})), |u| {
                let mut all = u.details.list("phoneNumbers");
                all.push(entry(&[("type", "fax"), ("value", "555-0111")], None));
                phones(u, all);
            }),
            (employee, one(json!({"op":"Replace","path":"phoneNumbers[type eq \"mobile\"].value","value":"555-0000"})), |u| {
                phones(u, vec![
                    entry(&[("value", "555-0100"), ("type", "work")], Some(true)),
                    entry(&[("value", "555-0000"), ("type", "mobile")], None),
                ]);
            }),
            (employee, one(json!({"op":"Replace","path":"phoneNumbers[type eq \"MOBILE\"].value","value":"555-0000"})), |u| {
                phones(u, vec![
                    entry(&[("value", "555-0100"), ("type", "work")], Some(true)),
                    entry(&[("value", "555-0000"), ("type", "mobile")], None),
                ]);
            }),
            (employee, one(json!({"op":"Replace","path":"addresses[type eq \"work\"].streetAddress","value":"2 Side St"})), |u| {
                u.details.set_list("addresses", vec![entry(&[("streetAddress", "2 Side St"), ("type", "work")], None)]);
            }),
            (bob, one(json!({"op":"Add","path":"addresses[type eq \"work\"].locality","value":"Oslo"})), |u| {
                u.details.set_list("addresses", vec![entry(&[("type", "work"), ("locality", "Oslo")], None)]);
            }),
            (employee, one(json!({"op":"replace","path":"phoneNumbers[type eq \"mobile\"].primary","value":"True"})), |u| {
                phones(u, vec![
                    entry(&[("value", "555-0100"), ("type", "work")], Some(false)),
                    entry(&[("value", "555-0199"), ("type", "mobile")], Some(true)),
                ]);
            }),
            (employee, one(json!({"op":"replace","path":"phoneNumbers[type eq \"work\" and value eq \"555-0100\"]","value":{"value":"555-0101"}})), |u| {
                phones(u, vec![
                    entry(&[("value", "555-0101"), ("type", "work")], None),
                    entry(&[("value", "555-0199"), ("type", "mobile")], None),
                ]);
            }),
            // remove with a value filter; a value left with only its type goes
            (employee, one(json!({"op":"Remove","path":"phoneNumbers[type eq \"mobile\"].value"})), |u| {
                phones(u, vec![entry(&[("value", "555-0100"), ("type", "work")], Some(true))]);
            }),
            (employee, one(json!({"op":"remove","path":"phoneNumbers[type eq \"work\"]"})), |u| {
                phones(u, vec![entry(&[("value", "555-0199"), ("type", "mobile")], None)]);
            }),
            (employee, one(json!({"op":"remove","path":"phoneNumbers[type eq \"fax\"]"})), same),
            (employee, one(json!({"op":"remove","path":"phoneNumbers"})), |u| phones(u, vec![])),
            // whole attributes: add appends (an equal value once), replace replaces
            (employee, one(json!({"op":"add","path":"phoneNumbers","value":[{"value":"555-0199","type":"mobile"},{"value":"1","type":"home","primary":true}]})), |u| {
                phones(u, vec![
                    entry(&[("value", "555-0100"), ("type", "work")], Some(false)),
                    entry(&[("value", "555-0199"), ("type", "mobile")], None),
                    entry(&[("value", "1"), ("type", "home")], Some(true)),
                ]);
            }),
            (employee, one(json!({"op":"replace","path":"phoneNumbers","value":{"value":"1"}})), |u| phones(u, vec![entry(&[("value", "1")], None)])),
            (bob, one(json!({"op":"add","value":{"roles":[{"value":"admin","display":"Admin"}],"x509Certificates":[{"value":"MIIB"}]}})), |u| {
                u.details.set_list("roles", vec![entry(&[("value", "admin"), ("display", "Admin")], None)]);
                u.details.set_list("x509Certificates", vec![entry(&[("value", "MIIB")], None)]);
            }),
            // emails: several, any type; the claimed one stays the record's email
            (bob, one(json!({"op":"add","path":"emails[type eq \"other\"]","value":{"value":"b@home.org"}})), |u| {
                u.details.set_list("emails", vec![
                    entry(&[("value", "bob@example.com"), ("type", "work")], Some(true)),
                    entry(&[("type", "other"), ("value", "b@home.org")], None),
                ]);
            }),
            (bob, one(json!({"op":"replace","path":"emails","value":[{"value":"h@home.org","type":"home"},{"value":"w@corp.org","type":"work"}]})), |u| {
                u.email = "w@corp.org".into();
                u.email_primary = false;
                u.details.set_list("emails", vec![
                    entry(&[("value", "h@home.org"), ("type", "home")], None),
                    entry(&[("value", "w@corp.org"), ("type", "work")], None),
                ]);
            }),
            (bob, one(json!({"op":"Replace","path":"emails[type eq \"work\"].value","value":"x@y.org"})), |u| u.email = "x@y.org".into()),
            (bare, one(json!({"op":"Replace","path":"emails[type eq \"work\"].value","value":"x@y.org"})), |u| u.email = "x@y.org".into()),
            (bob, one(json!({"op":"remove","path":"emails[type eq \"work\"].value"})), |u| u.email.clear()),
            (bob, one(json!({"op":"remove","path":"emails[type eq \"home\"]"})), same),
            // atomic: nothing of a PatchOp whose last operation fails (see rfc_rejects)
        ];
        for (start, body, change) in rows {
            let user = start();
            let mut want = user.clone();
            change(&mut want);
            assert_eq!(apply(&user, &body, Profile::Rfc), Ok(want), "{body}");
        }
    }

    /// (starting user, body, scimType, detail) with a detail built for the row.
    type RfcRejects = (fn() -> User, Value, ScimType, String);

    #[rustfmt::skip]
    #[test]
    fn rfc_rejects() {
        let long = "x".repeat(1025);
        let many: Vec<Value> = (0..21).map(|i| json!({"value": i.to_string()})).collect();
        let rows: Vec<RfcRejects> = vec![
            (bob, one(json!({"op":"add","path":format!("{ENT}:manager"),"value":"abc"})), InvalidValue, "manager must be the id of a user, not \"abc\"".into()),
            (bob, one(json!({"op":"add","path":format!("{ENT}:manager"),"value":"007"})), InvalidValue, "manager must be the id of a user, not \"007\"".into()),
            (bob, one(json!({"op":"add","path":format!("{ENT}:manager"),"value":{"$ref":"https://h/api/v1/scim/Groups/3"}})), InvalidValue, "manager.$ref must be the URI of a User, not \"https://h/api/v1/scim/Groups/3\"".into()),
            (bob, one(json!({"op":"add","path":"phoneNumbers","value":[{"value":"1","primary":true},{"value":"2","primary":true}]})), InvalidValue, "phoneNumbers may have at most one primary value".into()),
            (bob, one(json!({"op":"add","path":"phoneNumbers","value":many})), InvalidValue, "phoneNumbers has 21 values, at most 20 are allowed".into()),
            (bob, one(json!({"op":"add","path":"title","value":long})), InvalidValue, "title is too long: 1025 characters, at most 1024 are allowed".into()),
            (bob, one(json!({"op":"add","path":"phoneNumbers[type eq \"fax\"].value","value":long})), InvalidValue, "phoneNumbers.value is too long: 1025 characters, at most 1024 are allowed".into()),
            (bob, one(json!({"op":"add","path":"title","value":5})), InvalidValue, "title must be a string.".into()),
            (bob, one(json!({"op":"add","path":"phoneNumbers","value":[{"value":5}]})), InvalidValue, "phoneNumbers.value must be a string, not 5".into()),
            (bob, one(json!({"op":"add","path":"phoneNumbers","value":"555"})), InvalidValue, "phoneNumbers must be a list of objects, not \"555\"".into()),
            (bob, one(json!({"op":"add","path":"phoneNumbers[type eq \"fax\"]","value":"555"})), InvalidValue, "phoneNumbers[type eq \"fax\"] takes an object, not \"555\"".into()),
            // Any operator selects values; only `eq` describes one to make.
            (bob, one(json!({"op":"add","path":"phoneNumbers[type co \"fax\"].value","value":"1"})), NoTarget, "No value matches phoneNumbers[type co \"fax\"], and it describes none to add.".into()),
            (bob, one(json!({"op":"add","path":"phoneNumbers[kind eq \"fax\"].value","value":"1"})), InvalidFilter, "Unknown attribute 'kind' inside phoneNumbers[...]: supported are value, display, type and primary".into()),
            (bob, one(json!({"op":"add","path":"phoneNumbers[primary eq \"yes\"].value","value":"1"})), InvalidFilter, "Attribute 'phoneNumbers.primary' is a boolean: compare it with true or false (without quotes), not \"yes\"".into()),
            (bob, one(json!({"op":"add","path":"title[value eq \"x\"]","value":"1"})), InvalidPath, "Invalid path \"title[value eq \"x\"]\": title is not multi-valued.".into()),
            (bob, one(json!({"op":"add","path":"emails","value":[{"value":"a@b.org","primary":true},{"value":"c@d.org","primary":true}]})), InvalidValue, "emails may have at most one primary value".into()),
            // atomic: the first, good operation does not land either
            (bob, body(json!([{"op":"add","path":"title","value":"Boss"},{"op":"add","path":format!("{ENT}:manager"),"value":"x"}])), InvalidValue, "manager must be the id of a user, not \"x\"".into()),
        ];
        for (start, body, scim_type, detail) in rows {
            assert_eq!(apply(&start(), &body, Profile::Rfc), Err(ScimError::bad(scim_type, &detail)), "{body}");
        }
    }

    /// What the `rfc` profile keeps, the `odm` profile ignores: every
    /// operation of `rfc_applies` on a new attribute changes nothing there.
    #[test]
    fn odm_ignores_what_only_rfc_keeps() {
        for body in [
            one(json!({"op":"add","path":"title","value":"Boss"})),
            one(json!({"op":"Add","path":format!("{ENT}:manager"),"value":"12"})),
            one(json!({"op":"Add","path":"manager","value":[{"value":"12"}]})),
            one(json!({"op":"Add","path":"phoneNumbers[type eq \"fax\"].value","value":"1"})),
            one(
                json!({"op":"Replace","value":{ENT:{"department":"D"},"nickName":"B","name.middleName":"Q"}}),
            ),
            one(json!({"op":"remove","path":"addresses[type eq \"work\"]"})),
        ] {
            let user = bob();
            assert_eq!(
                apply(&user, &body, Profile::Odm),
                Ok(user.clone()),
                "{body}"
            );
        }
    }
}
