//! The attribute schema of a SCIM resource type: one [`Attribute`] row per
//! attribute, with what `/Schemas` says about it (type, mutability,
//! returned, uniqueness, …), the filter attribute a path to it resolves
//! to, and how it maps to the record (a [`Store`]). Rendering, POST/PUT
//! bodies, validation, PATCH paths, filters, projections and `/Schemas`
//! all read these rows, so an attribute is described once.
//!
//! The tables themselves are next to their records' readers:
//! [`super::user_schema::USER_ATTRIBUTES`] and
//! [`super::group_schema::GROUP_ATTRIBUTES`].
//!
//! A row may belong to one profile only ([`Attribute::profile`]): the `odm`
//! profile keeps ODM's scheme, `rfc` the whole RFC 7643 User. Every reader
//! and writer that answers a request goes through the rows of its profile
//! ([`rows`], [`find_in`], [`extension_in`]); where the two profiles
//! describe one attribute differently (`emails`), each has its own row.
//!
//! Below the rows' machinery is the rest every resource type shares
//! ([`ResourceType`]): its endpoint and `Location`, its `ETag` and
//! `If-Match`, the errors that name it, and the responses that carry it.
use std::fmt::Display;

use lambda_http::http::{HeaderValue, StatusCode};
use lambda_http::{Body, Response};
use serde_json::{json, Map, Value};

use super::{ScimError, CONTENT_TYPE, LIST_SCHEMA, USER_SCHEMA};
use crate::domain::group::GroupPatch;
use crate::domain::profile::Profile;
use crate::domain::user::{limits, Entry};
use crate::domain::{etag, if_match_holds};
use crate::http;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    String,
    Boolean,
    DateTime,
    Reference,
    /// Base64 text, as RFC 7643 §2.3.6 has it (a certificate).
    Binary,
    Complex,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mutability {
    ReadOnly,
    ReadWrite,
    Immutable,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Returned {
    /// In every response, whatever `attributes`/`excludedAttributes` ask.
    Always,
    Default,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Uniqueness {
    None,
    Server,
}

/// Which write brings a value: POST/PUT bodies and PATCH operations read
/// the same shapes but word their errors differently and treat a missing
/// value differently (see each attribute's setter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Write {
    /// A POST or PUT body: every writable attribute was cleared first.
    Put,
    Add,
    Replace,
}

/// What an attribute is rendered with beyond its record.
#[derive(Debug, Clone, Copy, Default)]
pub struct Context<'a> {
    /// `https://host`, for `$ref` and `meta.location`.
    pub base_url: &'a str,
    /// A Group's member ids, when they were read (`None`: left out).
    pub members: Option<&'a [u64]>,
    /// Which rows the resource has.
    pub profile: Profile,
}

/// The attribute's JSON for a record; `None`: left out of the resource.
pub type Get<R> = fn(&R, &Context<'_>) -> Option<Value>;
/// Writes a value onto the record, type-checking it (lengths and formats
/// are the attribute's `validate`, run once the whole write is read).
pub type Set<R> = fn(&mut R, &Value, Write) -> Result<(), ScimError>;
/// The rule every stored record obeys for this attribute.
pub type Validate<R> = fn(&R) -> Result<(), ScimError>;

/// How an attribute maps to the record `R`.
pub enum Store<R: 'static> {
    /// A field of the record: shown by `get`, written by `set`, reset by
    /// `clear` (before a PUT body is read, and by a PATCH `remove`).
    Field {
        get: Get<R>,
        set: Set<R>,
        clear: fn(&mut R),
    },
    /// A complex attribute kept as its sub-attributes (each a `Field`):
    /// shown as an object of them (omitted when empty), or when
    /// multi-valued as a list of the one value the record holds (`[]`
    /// when it holds none). A whole value is written by `set` when given,
    /// otherwise merged into the sub-attributes it names.
    Parts { set: Option<Set<R>> },
    /// Shown, never written: a PATCH naming it is refused, a PUT body's
    /// value is ignored.
    ReadOnly(Get<R>),
    /// Shown, never written, and a PATCH naming it is ignored rather than
    /// refused: clients send it back with the rest of what they read.
    Echoed(Get<R>),
    /// Shown by `get` (from the record, or from the [`Context`] for what
    /// is kept in items of its own: a Group's members); writes are read
    /// into the [`GroupPatch`] that the group service applies ([`Planned`]).
    Planned { get: Get<R>, plan: Planned },
    /// A sub-attribute its parent renders (`meta.created`, …), or one
    /// value's part of a [`Store::Values`] attribute.
    InParent,
    /// A single-valued string the record keeps by name (`get`, `put`;
    /// `None` unassigns). Any string up to [`limits::MAX_TEXT`] characters
    /// ([`limits::MAX_BINARY`] for [`Type::Binary`]); `label` names it in
    /// errors (`name.middleName`).
    Text {
        label: &'static str,
        get: fn(&R) -> Option<&str>,
        put: fn(&mut R, Option<String>),
    },
    /// A multi-valued complex attribute the record keeps as a list of
    /// [`Entry`]: each value's parts are the row's sub-attributes (each
    /// [`Store::InParent`]; the boolean one is `primary`), read and written
    /// by name. `put` takes the whole list after every write. Shown as a
    /// list of objects; omitted when empty unless `shown_empty`.
    Values {
        get: fn(&R) -> Vec<Entry>,
        put: fn(&mut R, Vec<Entry>),
        shown_empty: bool,
    },
}

/// How a Group write reaches an attribute: read into the [`GroupPatch`]
/// the group service applies, never onto the record itself.
pub struct Planned {
    /// A POST/PUT body's value (`Write::Put`: type-checked only; `check`
    /// runs once the whole body is read), or a PATCH `add`/`replace`'s
    /// (`None`: the operation has no value), type-checked and checked.
    pub write: fn(&mut GroupPatch, Write, Option<&Value>) -> Result<(), ScimError>,
    /// A PATCH `remove`, with the values it lists (Entra), if any.
    pub remove: fn(&mut GroupPatch, Option<&Value>) -> Result<(), ScimError>,
    /// The rules a whole POST/PUT body obeys for this attribute.
    pub check: fn(&GroupPatch) -> Result<(), ScimError>,
}

/// Which [`Attr`] a filter path to the attribute resolves to, and how it
/// compares strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Filterable {
    pub attr: Attr,
    /// Exact comparison; otherwise both sides are folded as uniqueness
    /// claims are ([`crate::domain::user::rules::fold`]). Usually the
    /// attribute's `caseExact`; a User's displayName and name parts have
    /// always compared exactly in filters, though `/Schemas` calls them
    /// caseless.
    pub case_exact: bool,
}

impl Filterable {
    pub const fn exact(attr: Attr) -> Option<Filterable> {
        Some(Filterable {
            attr,
            case_exact: true,
        })
    }

    pub const fn caseless(attr: Attr) -> Option<Filterable> {
        Some(Filterable {
            attr,
            case_exact: false,
        })
    }
}

/// One attribute definition (RFC 7643 §7), with its filter and record
/// mapping. Build rows with [`Attribute::new`] (the RFC's defaults) and
/// struct update syntax for what differs.
pub struct Attribute<R: 'static> {
    pub name: &'static str,
    pub kind: Type,
    pub multi_valued: bool,
    pub description: &'static str,
    pub required: bool,
    pub case_exact: bool,
    pub mutability: Mutability,
    pub returned: Returned,
    pub uniqueness: Uniqueness,
    pub canonical_values: &'static [&'static str],
    pub reference_types: &'static [&'static str],
    pub sub_attributes: &'static [Attribute<R>],
    pub filter: Option<Filterable>,
    pub store: Store<R>,
    pub validate: Option<Validate<R>>,
    /// The only profile that has the row (`None`: every profile).
    pub profile: Option<Profile>,
    /// This row is a schema extension (RFC 7643 §3.3), with this schema
    /// name (`EnterpriseUser`): its `name` is the extension's URN, a
    /// resource shows it as an object under that URN, its sub-attributes
    /// are the extension's attributes and `/Schemas` lists it as a schema
    /// of its own.
    pub extension: Option<&'static str>,
    /// A user may change it about themselves (`PATCH` and `PUT` on `/Me`):
    /// the admin API's self-service rules, in SCIM's attributes. On a
    /// complex attribute it covers every sub-attribute.
    pub self_service: bool,
}

impl<R> Attribute<R> {
    pub const fn new(
        name: &'static str,
        kind: Type,
        description: &'static str,
        store: Store<R>,
    ) -> Attribute<R> {
        Attribute {
            name,
            kind,
            multi_valued: false,
            description,
            required: false,
            case_exact: false,
            mutability: Mutability::ReadWrite,
            returned: Returned::Default,
            uniqueness: Uniqueness::None,
            canonical_values: &[],
            reference_types: &[],
            sub_attributes: &[],
            filter: None,
            store,
            validate: None,
            profile: None,
            extension: None,
            self_service: false,
        }
    }

    /// A string attribute with the defaults, the commonest row.
    pub const fn string(
        name: &'static str,
        description: &'static str,
        store: Store<R>,
    ) -> Attribute<R> {
        Attribute::new(name, Type::String, description, store)
    }

    /// A sub-attribute by name, any case, in any profile.
    pub fn sub(&'static self, name: &str) -> Option<&'static Attribute<R>> {
        find(self.sub_attributes, name)
    }

    /// A sub-attribute `profile` has, by name, any case.
    pub fn sub_in(&'static self, profile: Profile, name: &str) -> Option<&'static Attribute<R>> {
        self.subs(profile)
            .find(|a| a.name.eq_ignore_ascii_case(name))
    }

    /// The sub-attributes `profile` has, in the table's order.
    pub fn subs(&'static self, profile: Profile) -> impl Iterator<Item = &'static Attribute<R>> {
        self.sub_attributes
            .iter()
            .filter(move |a| a.in_profile(profile))
    }

    /// Whether `profile` has this row.
    pub fn in_profile(&self, profile: Profile) -> bool {
        self.profile.is_none_or(|p| p == profile)
    }

    /// The attribute's JSON for `record`; `None` when the resource leaves it out.
    pub fn value(&self, record: &R, ctx: &Context<'_>) -> Option<Value> {
        match &self.store {
            Store::Field { get, .. }
            | Store::ReadOnly(get)
            | Store::Echoed(get)
            | Store::Planned { get, .. } => get(record, ctx),
            Store::Text { get, .. } => get(record).map(|s| json!(s)),
            Store::Values {
                get, shown_empty, ..
            } => {
                let values: Vec<Value> = get(record)
                    .iter()
                    .map(|e| self.entry_json(e, ctx.profile))
                    .collect();
                (*shown_empty || !values.is_empty()).then_some(Value::Array(values))
            }
            Store::Parts { .. } => {
                let parts: Map<String, Value> = self
                    .sub_attributes
                    .iter()
                    .filter(|s| s.in_profile(ctx.profile))
                    .filter_map(|s| Some((s.name.to_string(), s.value(record, ctx)?)))
                    .collect();
                match (self.multi_valued, parts.is_empty()) {
                    (true, true) => Some(json!([])),
                    (true, false) => Some(json!([parts])),
                    (false, true) => None,
                    (false, false) => Some(Value::Object(parts)),
                }
            }
            Store::InParent => None,
        }
    }

    /// How a Group write reaches this row, when it takes writes.
    pub fn planned(&self) -> Option<&Planned> {
        match &self.store {
            Store::Planned { plan, .. } => Some(plan),
            _ => None,
        }
    }

    /// Whether writes reach the record through this row ([`Attribute::write`]).
    pub fn writable(&self) -> bool {
        matches!(
            self.store,
            Store::Field { .. } | Store::Parts { .. } | Store::Text { .. } | Store::Values { .. }
        )
    }

    /// Writes `value` onto the record. A complex attribute without its own
    /// setter takes an object and sets the sub-attributes it names (those
    /// `profile` has), keeping the rest (null clears them all); a
    /// [`Store::Values`] attribute takes a list of values (or one), which
    /// an `add` appends to those it has. Rows that are not
    /// [`writable`](Self::writable) change nothing.
    pub fn write(
        &self,
        record: &mut R,
        value: &Value,
        write: Write,
        profile: Profile,
    ) -> Result<(), ScimError> {
        match &self.store {
            Store::Field { set, .. } | Store::Parts { set: Some(set) } => set(record, value, write),
            Store::Text { label, put, .. } => {
                let text = self.read_text(label, value, write)?;
                put(record, text);
                Ok(())
            }
            Store::Values { get, put, .. } => {
                let values = self.read_entries(value)?;
                // What the request sends obeys the rules by itself, before
                // an `add` makes a value it sends primary over those before.
                self.check_entries(&values)?;
                let values = match write {
                    Write::Add => add_entries(get(record), values),
                    Write::Put | Write::Replace => values,
                };
                self.check_entries(&values)?;
                put(record, values);
                Ok(())
            }
            Store::Parts { set: None } => match value {
                Value::Null => {
                    self.clear(record, profile);
                    Ok(())
                }
                // A body's keys in the order sent; a PATCH's in the schema's.
                Value::Object(parts) if write == Write::Put => {
                    for (key, v) in parts {
                        if let Some(sub) = find(self.sub_attributes, key) {
                            if sub.in_profile(profile) {
                                sub.write(record, v, write, profile)?;
                            }
                        }
                    }
                    Ok(())
                }
                Value::Object(parts) => {
                    for sub in self.sub_attributes.iter().filter(|s| s.in_profile(profile)) {
                        if let Some(v) = get_ci(parts, sub.name) {
                            sub.write(record, v, write, profile)?;
                        }
                    }
                    Ok(())
                }
                other if write == Write::Put => Err(ScimError::invalid_value(format!(
                    "{} must be an object, not {other}",
                    self.name
                ))),
                _ => Err(ScimError::invalid_value(format!(
                    "{} must be an object.",
                    self.name
                ))),
            },
            _ => Ok(()),
        }
    }

    /// Resets the attribute to its default (unassigned, or the default a
    /// POST gives it); a complex one, the sub-attributes `profile` has.
    pub fn clear(&self, record: &mut R, profile: Profile) {
        match &self.store {
            Store::Field { clear, .. } => clear(record),
            Store::Text { put, .. } => put(record, None),
            Store::Values { put, .. } => put(record, Vec::new()),
            Store::Parts { .. } => self
                .sub_attributes
                .iter()
                .filter(|s| s.in_profile(profile))
                .for_each(|s| s.clear(record, profile)),
            _ => {}
        }
    }

    /// A [`Store::Text`] value: a string, or null (a PATCH's `""` too) for
    /// none; too long is refused.
    fn read_text(
        &self,
        label: &str,
        value: &Value,
        write: Write,
    ) -> Result<Option<String>, ScimError> {
        let text = match (value, write) {
            (_, Write::Put) => string(value, label)?,
            (Value::String(s), _) => Some(s.clone()),
            (Value::Null, _) => None,
            _ => {
                return Err(ScimError::invalid_value(format!(
                    "{label} must be a string."
                )))
            }
        };
        if let Some(text) = &text {
            check_length(label, self.kind, text)?;
        }
        Ok(text)
    }

    /// The values of a [`Store::Values`] attribute a request sends: a list
    /// of objects, one object alone, or null for none. Parts the attribute
    /// does not have are ignored; a value left with nothing but a `type`
    /// is dropped ([`Entry::is_blank`]).
    pub fn read_entries(&self, value: &Value) -> Result<Vec<Entry>, ScimError> {
        let name = self.name;
        let items: Vec<&Value> = match value {
            Value::Null => Vec::new(),
            Value::Array(items) => items.iter().collect(),
            Value::Object(_) => vec![value],
            other => {
                return Err(ScimError::invalid_value(format!(
                    "{name} must be a list of objects, not {other}"
                )))
            }
        };
        let mut entries = Vec::new();
        for item in items {
            let Value::Object(parts) = item else {
                return Err(ScimError::invalid_value(format!(
                    "a value of {name} must be an object, not {item}"
                )));
            };
            let mut entry = Entry::default();
            for (key, v) in parts {
                if let Some(sub) = find(self.sub_attributes, key) {
                    self.set_part(&mut entry, sub, v)?;
                }
            }
            if !entry.is_blank() {
                entries.push(entry);
            }
        }
        Ok(entries)
    }

    /// Sets (null or `""`: removes) the part `sub` of one value of this
    /// [`Store::Values`] attribute, checking its type and length.
    pub fn set_part(
        &self,
        entry: &mut Entry,
        sub: &Attribute<R>,
        value: &Value,
    ) -> Result<(), ScimError> {
        let label = format!("{}.{}", self.name, sub.name);
        match (sub.kind, value) {
            (Type::Boolean, Value::Null) => entry.primary = None,
            (Type::Boolean, v) => entry.primary = Some(boolean(v, &label)?),
            (_, Value::Null) => {
                entry.parts.remove(sub.name);
            }
            (_, Value::String(s)) if s.is_empty() => {
                entry.parts.remove(sub.name);
            }
            (kind, Value::String(s)) => {
                check_length(&label, kind, s)?;
                entry.parts.insert(sub.name.to_string(), s.clone());
            }
            (_, other) => {
                return Err(ScimError::invalid_value(format!(
                    "{label} must be a string, not {other}"
                )))
            }
        }
        Ok(())
    }

    /// The rules every list of values obeys: at most
    /// [`limits::MAX_VALUES`] of them, at most one primary.
    pub fn check_entries(&self, entries: &[Entry]) -> Result<(), ScimError> {
        let name = self.name;
        if entries.len() > limits::MAX_VALUES {
            return Err(ScimError::invalid_value(format!(
                "{name} has {} values, at most {} are allowed",
                entries.len(),
                limits::MAX_VALUES
            )));
        }
        if entries.iter().filter(|e| e.is_primary()).count() > 1 {
            return Err(ScimError::invalid_value(format!(
                "{name} may have at most one primary value"
            )));
        }
        Ok(())
    }

    /// One value of a [`Store::Values`] attribute as a response shows it:
    /// its parts in the table's order, `primary` as sent.
    pub fn entry_json(&self, entry: &Entry, profile: Profile) -> Value {
        let parts: Map<String, Value> = self
            .sub_attributes
            .iter()
            .filter(|s| s.in_profile(profile))
            .filter_map(|s| {
                let v = match s.kind {
                    Type::Boolean => json!(entry.primary?),
                    _ => json!(entry.parts.get(s.name)?),
                };
                Some((s.name.to_string(), v))
            })
            .collect();
        Value::Object(parts)
    }

    /// The attribute's definition as `/Schemas` shows it in `profile`.
    pub fn definition(&self, profile: Profile) -> Value {
        let mut d = json!({
            "name": self.name,
            "type": match self.kind {
                Type::String => "string",
                Type::Boolean => "boolean",
                Type::DateTime => "dateTime",
                Type::Reference => "reference",
                Type::Binary => "binary",
                Type::Complex => "complex",
            },
            "multiValued": self.multi_valued,
            "description": self.description,
            "required": self.required,
            "caseExact": self.case_exact,
            "mutability": match self.mutability {
                Mutability::ReadOnly => "readOnly",
                Mutability::ReadWrite => "readWrite",
                Mutability::Immutable => "immutable",
            },
            "returned": match self.returned {
                Returned::Always => "always",
                Returned::Default => "default",
            },
            "uniqueness": match self.uniqueness {
                Uniqueness::None => "none",
                Uniqueness::Server => "server",
            },
        });
        let map = d.as_object_mut().expect("a JSON object literal");
        if !self.canonical_values.is_empty() {
            map.insert("canonicalValues".into(), json!(self.canonical_values));
        }
        if !self.reference_types.is_empty() {
            map.insert("referenceTypes".into(), json!(self.reference_types));
        }
        let subs: Vec<Value> = self
            .sub_attributes
            .iter()
            .filter(|s| s.in_profile(profile))
            .map(|s| s.definition(profile))
            .collect();
        if !subs.is_empty() {
            map.insert("subAttributes".into(), json!(subs));
        }
        d
    }
}

/// `added` appended to `values`, each unless an equal value is there: a
/// new primary value takes `primary` from the one before (RFC 7644 §3.5.2).
pub fn add_entries(mut values: Vec<Entry>, added: Vec<Entry>) -> Vec<Entry> {
    for entry in added {
        if values.contains(&entry) {
            continue;
        }
        if entry.is_primary() {
            demote_primary(&mut values);
        }
        values.push(entry);
    }
    values
}

/// No value of `values` stays primary.
pub fn demote_primary(values: &mut [Entry]) {
    for v in values.iter_mut().filter(|v| v.is_primary()) {
        v.primary = Some(false);
    }
}

/// A string value may be [`limits::MAX_TEXT`] characters long
/// ([`limits::MAX_BINARY`] for binary ones).
fn check_length(label: &str, kind: Type, text: &str) -> Result<(), ScimError> {
    let max = if kind == Type::Binary {
        limits::MAX_BINARY
    } else {
        limits::MAX_TEXT
    };
    let n = text.chars().count();
    if n > max {
        return Err(ScimError::invalid_value(format!(
            "{label} is too long: {n} characters, at most {max} are allowed"
        )));
    }
    Ok(())
}

/// Rows are identified by where they are: one static table holds each once.
impl<R> PartialEq for Attribute<R> {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self, other)
    }
}

impl<R> Eq for Attribute<R> {}

impl<R> std::fmt::Debug for Attribute<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Attribute({})", self.name)
    }
}

/// A row of `table` by name, any case, in any profile: the first of that
/// name, so where the profiles have a row each, the `odm` one (it comes
/// first). Filters read the tables this way: they are the same in both
/// profiles.
pub fn find<R>(table: &'static [Attribute<R>], name: &str) -> Option<&'static Attribute<R>> {
    table.iter().find(|a| a.name.eq_ignore_ascii_case(name))
}

/// The rows `profile` has, in the table's order.
pub fn rows<R>(
    table: &'static [Attribute<R>],
    profile: Profile,
) -> impl Iterator<Item = &'static Attribute<R>> {
    table.iter().filter(move |a| a.in_profile(profile))
}

/// An attribute of the resource's own schema in `profile`, by name, any case.
pub fn find_in<R>(
    table: &'static [Attribute<R>],
    profile: Profile,
    name: &str,
) -> Option<&'static Attribute<R>> {
    rows(table, profile).find(|a| a.extension.is_none() && a.name.eq_ignore_ascii_case(name))
}

/// The schema extensions `profile` has.
pub fn extensions<R>(
    table: &'static [Attribute<R>],
    profile: Profile,
) -> impl Iterator<Item = &'static Attribute<R>> {
    rows(table, profile).filter(|a| a.extension.is_some())
}

/// The extension `path` names, and the rest of the path after its URN
/// (`""` for the extension itself, else what followed the `:`). URNs
/// compare case-insensitively.
pub fn extension_in<'p, R>(
    table: &'static [Attribute<R>],
    profile: Profile,
    path: &'p str,
) -> Option<(&'static Attribute<R>, &'p str)> {
    let path = path.trim();
    extensions(table, profile).find_map(|ext| {
        let head = path.get(..ext.name.len())?;
        if !head.eq_ignore_ascii_case(ext.name) {
            return None;
        }
        match &path[ext.name.len()..] {
            "" => Some((ext, "")),
            rest => Some((ext, rest.strip_prefix(':')?)),
        }
    })
}

/// The rows `profile` has in the order a resource shows them: `id` and
/// `externalId` (common to every resource) first, then the table's order,
/// which is `/Schemas`'.
pub fn resource_order<R>(
    table: &'static [Attribute<R>],
    profile: Profile,
) -> impl Iterator<Item = &'static Attribute<R>> {
    let leads = |a: &Attribute<R>| matches!(a.name, "id" | "externalId");
    rows(table, profile)
        .filter(move |a| leads(a))
        .chain(rows(table, profile).filter(move |a| !leads(a)))
}

/// The definitions of the resource's own attributes in `profile`, for its
/// `/Schemas` document (an extension's are its own document's).
pub fn definitions<R>(table: &'static [Attribute<R>], profile: Profile) -> Vec<Value> {
    rows(table, profile)
        .filter(|a| a.extension.is_none())
        .map(|a| a.definition(profile))
        .collect()
}

/// An attribute and, when a path goes into it, one of its sub-attributes.
pub type Path<R> = (&'static Attribute<R>, Option<&'static Attribute<R>>);

/// The rows (and sub-attributes) a filter path names: `attr` or
/// `attr.sub`, any case, its URN already stripped. A multi-valued complex
/// attribute alone stands for its `value` (RFC 7644 §3.4.2.2).
pub fn filter_path<R>(table: &'static [Attribute<R>], path: &str) -> Option<Path<R>> {
    let (name, sub) = match path.split_once('.') {
        Some((name, sub)) => (name, Some(sub)),
        None => (path, None),
    };
    let attribute = find(table, name)?;
    match sub {
        Some(sub) => Some((attribute, Some(attribute.sub(sub)?))),
        None if attribute.multi_valued && attribute.kind == Type::Complex => {
            Some((attribute, Some(attribute.sub("value")?)))
        }
        None => Some((attribute, None)),
    }
}

/// The [`Filterable`] a filter path resolves to.
pub fn filter_attr<R>(table: &'static [Attribute<R>], path: &str) -> Option<Filterable> {
    let (attribute, sub) = filter_path(table, path)?;
    sub.unwrap_or(attribute).filter
}

/// The row holding `attr` (and the sub-attribute, when it is one).
pub fn filter_row<R>(table: &'static [Attribute<R>], attr: Attr) -> Option<(Path<R>, Filterable)> {
    table.iter().find_map(|a| {
        if let Some(f) = a.filter.filter(|f| f.attr == attr) {
            return Some(((a, None), f));
        }
        a.sub_attributes.iter().find_map(|s| {
            s.filter
                .filter(|f| f.attr == attr)
                .map(|f| ((a, Some(s)), f))
        })
    })
}

/// The filter paths of a table, as "supported are …" lists them: the
/// single-valued attributes (`id` last), then the paths into complex ones
/// (a multi-valued one first by its own name, which means its `value`).
pub fn filter_paths<R>(table: &'static [Attribute<R>]) -> String {
    let simple = |a: &&Attribute<R>| a.filter.is_some();
    let is_id = |a: &&Attribute<R>| a.name == "id";
    let mut paths: Vec<String> = table
        .iter()
        .filter(|a| simple(a) && !is_id(a))
        .chain(table.iter().filter(|a| simple(a) && is_id(a)))
        .map(|a| a.name.to_string())
        .collect();
    for a in table {
        let subs: Vec<&Attribute<R>> = a
            .sub_attributes
            .iter()
            .filter(|s| s.filter.is_some())
            .collect();
        if a.multi_valued && subs.iter().any(|s| s.name == "value") {
            paths.push(a.name.to_string());
        }
        paths.extend(subs.iter().map(|s| format!("{}.{}", a.name, s.name)));
    }
    paths.join(", ")
}

/// The filterable sub-attributes of a value path's attribute, as the
/// messages about `attr[...]` list them: "value, type and primary".
pub fn sub_filter_names<R>(attribute: &Attribute<R>, prefix: &str) -> String {
    let names: Vec<String> = attribute
        .sub_attributes
        .iter()
        .filter(|s| s.filter.is_some())
        .map(|s| format!("{prefix}{}", s.name))
        .collect();
    match names.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
        None => String::new(),
    }
}

/// The attribute paths a filter compares, as typed values: the names the
/// code (key lookups, value paths) matches on. Each is some table row's
/// [`Filterable::attr`]; its type and case-exactness are that row's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attr {
    UserName,
    ExternalId,
    DisplayName,
    Active,
    Id,
    GivenName,
    FamilyName,
    EmailValue,
    EmailType,
    EmailPrimary,
    MetaCreated,
    MetaLastModified,
    /// A Group's `members.value` (the member's user id).
    MemberValue,
    /// A sub-attribute no filter names by itself (the attribute, the
    /// sub-attribute): a condition inside a PATCH path's value filter,
    /// such as `type` in `phoneNumbers[type eq "mobile"]`.
    Sub(&'static str, &'static str),
}

impl Attr {
    /// The SCIM name, as error messages and a filter's canonical form print it.
    pub fn name(self) -> std::borrow::Cow<'static, str> {
        match self {
            Attr::Sub(attribute, sub) => format!("{attribute}.{sub}").into(),
            named => named.path().into(),
        }
    }

    /// The sub-attribute's own name (`type` of `emails.type`), or the
    /// attribute's for one that has none.
    pub fn sub_name(self) -> &'static str {
        match self {
            Attr::Sub(_, sub) => sub,
            named => named.path().rsplit('.').next().unwrap_or_default(),
        }
    }

    fn path(self) -> &'static str {
        match self {
            Attr::Sub(..) => "",
            Attr::UserName => "userName",
            Attr::ExternalId => "externalId",
            Attr::DisplayName => "displayName",
            Attr::Active => "active",
            Attr::Id => "id",
            Attr::GivenName => "name.givenName",
            Attr::FamilyName => "name.familyName",
            Attr::EmailValue => "emails.value",
            Attr::EmailType => "emails.type",
            Attr::EmailPrimary => "emails.primary",
            Attr::MetaCreated => "meta.created",
            Attr::MetaLastModified => "meta.lastModified",
            Attr::MemberValue => "members.value",
        }
    }
}

/// `meta`, read-only, as every resource has it: `get` renders the whole
/// object, `sub_attributes` are [`meta_parts`].
pub const fn meta<R>(get: Get<R>, sub_attributes: &'static [Attribute<R>]) -> Attribute<R> {
    Attribute {
        case_exact: true,
        mutability: Mutability::ReadOnly,
        sub_attributes,
        ..Attribute::new(
            "meta",
            Type::Complex,
            "Resource metadata.",
            Store::ReadOnly(get),
        )
    }
}

/// The sub-attributes of `meta`; `resource_type` describes its `resourceType`.
pub const fn meta_parts<R>(resource_type: &'static str) -> [Attribute<R>; 5] {
    let read_only = Mutability::ReadOnly;
    [
        Attribute {
            case_exact: true,
            mutability: read_only,
            ..Attribute::new("resourceType", Type::String, resource_type, Store::InParent)
        },
        Attribute {
            mutability: read_only,
            filter: Filterable::exact(Attr::MetaCreated),
            ..Attribute::new(
                "created",
                Type::DateTime,
                "When the resource was created.",
                Store::InParent,
            )
        },
        Attribute {
            mutability: read_only,
            filter: Filterable::exact(Attr::MetaLastModified),
            ..Attribute::new(
                "lastModified",
                Type::DateTime,
                "When the resource last changed.",
                Store::InParent,
            )
        },
        Attribute {
            case_exact: true,
            mutability: read_only,
            reference_types: &["uri"],
            ..Attribute::new(
                "location",
                Type::Reference,
                "The resource's URI.",
                Store::InParent,
            )
        },
        Attribute {
            case_exact: true,
            mutability: read_only,
            ..Attribute::new(
                "version",
                Type::String,
                "The resource's ETag.",
                Store::InParent,
            )
        },
    ]
}

// ------------------------------------------------------------ values
// How SCIM values are read, once for every operation: attribute names (case
// insensitive, with or without the core schema's URN), booleans, strings and
// the one email a user may have. POST, PUT and PATCH all go through these,
// so they accept the same shapes and say the same thing about bad ones.

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

// ------------------------------------------------------------ resource types
// What every resource type shares besides its attributes, written once: its
// endpoint and `Location`, `ETag`/`If-Match` over its record's version, the
// errors that name it, and the responses that carry it.

/// The resource types this server serves (RFC 7643 §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceType {
    User,
    Group,
}

impl ResourceType {
    /// The name responses and errors use (`meta.resourceType`).
    pub fn name(self) -> &'static str {
        match self {
            ResourceType::User => "User",
            ResourceType::Group => "Group",
        }
    }

    /// The endpoint under the SCIM base (`/Users`, `/Groups`).
    pub fn endpoint(self) -> &'static str {
        match self {
            ResourceType::User => "Users",
            ResourceType::Group => "Groups",
        }
    }

    /// `meta.location` and the `Location` header of a created resource.
    pub fn location(self, id: u64, base_url: &str) -> String {
        self.location_of(id, base_url)
    }

    /// The URL of the resource with id `id` as a path names it (one that
    /// may be no canonical id: a bulk operation's `location`).
    pub fn location_of(self, id: impl Display, base_url: &str) -> String {
        format!("{base_url}/{}/{id}", self.endpoint())
    }

    /// 404 naming the resource type and the id as the client wrote it.
    pub fn not_found(self, id: impl Display) -> ScimError {
        ScimError::not_found(format!("{} {id} not found", self.name()))
    }

    /// 409 when the record kept changing under a write's retries.
    pub fn conflict(self) -> ScimError {
        ScimError::new(
            409,
            None,
            format!(
                "The {} was changed by other requests at the same time; read it and try again.",
                self.name().to_lowercase()
            ),
        )
    }

    /// 412: `If-Match` names another version than the record's.
    pub fn check_if_match(self, if_match: Option<&str>, version: u64) -> Result<(), ScimError> {
        if if_match_holds(if_match, version) {
            Ok(())
        } else {
            Err(self.precondition_failed(version))
        }
    }

    /// 412: the record is at `current`, not at the version `If-Match` names.
    pub fn precondition_failed(self, current: u64) -> ScimError {
        ScimError::new(
            412,
            None,
            format!(
                "If-Match does not match the current version {}",
                etag(current)
            ),
        )
    }

    /// One resource as a response: its `ETag` (when the body shows `meta`),
    /// and its `Location` on a create.
    pub fn response(
        self,
        status: StatusCode,
        body: &Value,
        id: u64,
        version: u64,
        base_url: &str,
    ) -> Response<Body> {
        let mut resp = json_response(status, body);
        // The ETag repeats meta.version; when `attributes` projected meta away,
        // clients (scim2-client) rebuild meta from the header and then fail to
        // validate it.
        if body.get("meta").is_some() {
            if let Ok(tag) = HeaderValue::from_str(&etag(version)) {
                resp.headers_mut().insert("etag", tag);
            }
        }
        if status == StatusCode::CREATED {
            if let Ok(loc) = HeaderValue::from_str(&self.location(id, base_url)) {
                resp.headers_mut().insert("location", loc);
            }
        }
        resp
    }
}

pub fn json_response(status: StatusCode, body: &Value) -> Response<Body> {
    http::json(status, CONTENT_TYPE, body)
}

/// A `startIndex` page (RFC 7644 §3.4.2.4).
pub fn list_response(total: usize, start_index: usize, page: Vec<Value>) -> Response<Body> {
    json_response(
        StatusCode::OK,
        &json!({
            "schemas": [LIST_SCHEMA],
            "totalResults": total,
            "startIndex": start_index,
            "itemsPerPage": page.len(),
            "Resources": page,
        }),
    )
}

#[cfg(test)]
mod values_tests {
    use serde_json::json;

    use super::*;

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

    #[test]
    fn not_found_names_the_type() {
        assert_eq!(ResourceType::Group.not_found(9).detail, "Group 9 not found");
        assert_eq!(ResourceType::User.not_found("x").detail, "User x not found");
        assert_eq!(
            ResourceType::Group.location(4, "https://h/api/v1/scim"),
            "https://h/api/v1/scim/Groups/4"
        );
    }
}
