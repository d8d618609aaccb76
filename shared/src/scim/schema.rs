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
use serde_json::{json, Map, Value};

use super::values::get_ci;
use super::ScimError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    String,
    Boolean,
    DateTime,
    Reference,
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
    pub origin: &'a str,
    /// A Group's member ids, when they were read (`None`: left out).
    pub members: Option<&'a [u64]>,
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
    /// Shown from the record; writes are read into a plan that the view
    /// applies (a Group's POST/PUT and PATCH: see `scim/group.rs`).
    Planned(Get<R>),
    /// Not in the record: shown from the [`Context`], written through its
    /// own items (a Group's members).
    Apart(Get<R>),
    /// A sub-attribute its parent renders (`meta.created`, …).
    InParent,
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

    /// A sub-attribute by name, any case.
    pub fn sub(&'static self, name: &str) -> Option<&'static Attribute<R>> {
        find(self.sub_attributes, name)
    }

    /// The attribute's JSON for `record`; `None` when the resource leaves it out.
    pub fn value(&self, record: &R, ctx: &Context<'_>) -> Option<Value> {
        match &self.store {
            Store::Field { get, .. }
            | Store::ReadOnly(get)
            | Store::Echoed(get)
            | Store::Planned(get)
            | Store::Apart(get) => get(record, ctx),
            Store::Parts { .. } => {
                let parts: Map<String, Value> = self
                    .sub_attributes
                    .iter()
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

    /// Whether writes reach the record through this row ([`Attribute::write`]).
    pub fn writable(&self) -> bool {
        matches!(self.store, Store::Field { .. } | Store::Parts { .. })
    }

    /// Writes `value` onto the record. A complex attribute without its own
    /// setter takes an object and sets the sub-attributes it names, keeping
    /// the rest (null clears them all). Rows that are not [`writable`](Self::writable)
    /// change nothing.
    pub fn write(&self, record: &mut R, value: &Value, write: Write) -> Result<(), ScimError> {
        match &self.store {
            Store::Field { set, .. } | Store::Parts { set: Some(set) } => set(record, value, write),
            Store::Parts { set: None } => match value {
                Value::Null => {
                    self.clear(record);
                    Ok(())
                }
                // A body's keys in the order sent; a PATCH's in the schema's.
                Value::Object(parts) if write == Write::Put => {
                    for (key, v) in parts {
                        if let Some(sub) = find(self.sub_attributes, key) {
                            sub.write(record, v, write)?;
                        }
                    }
                    Ok(())
                }
                Value::Object(parts) => {
                    for sub in self.sub_attributes {
                        if let Some(v) = get_ci(parts, sub.name) {
                            sub.write(record, v, write)?;
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
    /// POST gives it).
    pub fn clear(&self, record: &mut R) {
        match &self.store {
            Store::Field { clear, .. } => clear(record),
            Store::Parts { .. } => self.sub_attributes.iter().for_each(|s| s.clear(record)),
            _ => {}
        }
    }

    /// The attribute's definition as `/Schemas` shows it.
    pub fn definition(&self) -> Value {
        let mut d = json!({
            "name": self.name,
            "type": match self.kind {
                Type::String => "string",
                Type::Boolean => "boolean",
                Type::DateTime => "dateTime",
                Type::Reference => "reference",
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
        if !self.sub_attributes.is_empty() {
            let subs: Vec<Value> = self.sub_attributes.iter().map(|s| s.definition()).collect();
            map.insert("subAttributes".into(), json!(subs));
        }
        d
    }
}

/// Rows are identified by where they are: one static table holds each once.
impl<R> PartialEq for Attribute<R> {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self, other)
    }
}

impl<R> std::fmt::Debug for Attribute<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Attribute({})", self.name)
    }
}

/// A row of `table` by name, any case.
pub fn find<R>(table: &'static [Attribute<R>], name: &str) -> Option<&'static Attribute<R>> {
    table.iter().find(|a| a.name.eq_ignore_ascii_case(name))
}

/// The rows in the order a resource shows them: `id` and `externalId`
/// (common to every resource) first, then the table's order, which is
/// `/Schemas`'.
pub fn resource_order<R>(
    table: &'static [Attribute<R>],
) -> impl Iterator<Item = &'static Attribute<R>> {
    let leads = |a: &Attribute<R>| matches!(a.name, "id" | "externalId");
    table
        .iter()
        .filter(move |a| leads(a))
        .chain(table.iter().filter(move |a| !leads(a)))
}

/// Every row's definition, for a `/Schemas` document.
pub fn definitions<R>(table: &'static [Attribute<R>]) -> Vec<Value> {
    table.iter().map(Attribute::definition).collect()
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
}

impl Attr {
    /// The SCIM name, as error messages and a filter's canonical form print it.
    pub fn name(self) -> &'static str {
        match self {
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
