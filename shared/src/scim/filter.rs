//! SCIM filters (RFC 7644 §3.4.2.2), parsed into a typed [`Filter`] whose
//! attribute paths are resolved through the resource's attribute table,
//! evaluated over a record (`filter/eval.rs`), and lowered into the one user
//! query the planner reads ([`Filter::to_query`]).
//!
//! Two grammars, by profile:
//! - `odm`: `eq` joined by `and`, parentheses, the value path
//!   `emails[type eq "work" and value eq "x"]`, on the attributes whose rows
//!   say they are filterable ([`schema::Filterable`]); every other operator is
//!   refused by name, as ODM documents.
//! - `rfc`: the whole grammar: `eq ne co sw ew gt ge lt le pr`, `and`, `or`,
//!   `not (…)` with RFC precedence (not binds tighter than and, and tighter
//!   than or), parentheses, value paths on every multi-valued attribute, on
//!   every attribute of the table (its type and caseExact from its row).
//!
//! Both take Entra's non-RFC `emails[type eq "work"].value eq "x"` (the
//! value path's conditions and one more on the same value). Hand-written
//! rather than `scim_v2`, so that the errors name the operator and the
//! position, the Entra form needs no rewrite, and the recursion depth is
//! bounded by construction.
//!
//! Caseless attributes compare as the uniqueness claims do, NFKC with full
//! case folding, and values too long to be a key are refused before they
//! become one.
use std::borrow::Cow;

use chrono::{DateTime, Utc};
use serde_json::Number;

use super::group_schema::GROUP_ATTRIBUTES;
use super::schema::{self, Attribute, Context, Type};
use super::user_schema::USER_ATTRIBUTES;
use super::ScimError;
use crate::domain::canonical_id;
use crate::domain::group::GroupRecord;
use crate::domain::listing::{GroupFilter, GroupKey, UserFilter};
use crate::domain::profile::Profile;
use crate::domain::query::{Case, Claim, UserQuery};
use crate::domain::user::{parse_time, rules, User};
use crate::store::table;

mod eval;
mod lex;
#[cfg(test)]
mod tests;

use lex::{lex, Tok, Token};

/// Longer filters are refused before lexing.
pub const MAX_LEN: usize = 4096;
/// Parentheses, brackets and `not`s nested deeper than this are refused; the
/// parser recurses once per level, so this is what keeps the stack small.
pub const MAX_DEPTH: usize = 32;

pub use super::schema::Attr;

/// The resource type a filter is about: each has its own attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    User,
    Group,
}

/// An attribute operator (RFC 7644 Table 3), `pr` aside (it takes no value).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Co,
    Sw,
    Ew,
    Gt,
    Ge,
    Lt,
    Le,
}

impl Op {
    const ALL: [Op; 9] = [
        Op::Eq,
        Op::Ne,
        Op::Co,
        Op::Sw,
        Op::Ew,
        Op::Gt,
        Op::Ge,
        Op::Lt,
        Op::Le,
    ];

    /// As a filter writes it (lower case, the canonical form's spelling).
    pub fn name(self) -> &'static str {
        match self {
            Op::Eq => "eq",
            Op::Ne => "ne",
            Op::Co => "co",
            Op::Sw => "sw",
            Op::Ew => "ew",
            Op::Gt => "gt",
            Op::Ge => "ge",
            Op::Lt => "lt",
            Op::Le => "le",
        }
    }

    fn parse(word: &str) -> Option<Op> {
        Op::ALL
            .into_iter()
            .find(|op| op.name().eq_ignore_ascii_case(word))
    }

    /// The operators that look inside strings (`co sw ew`).
    fn substring(self) -> bool {
        matches!(self, Op::Co | Op::Sw | Op::Ew)
    }
}

/// An attribute a filter names, resolved through its resource's table: the
/// rows from a top-level attribute down to the one compared, and what that
/// row says about comparing it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path {
    /// The rows' names, as the table spells them (`["emails", "value"]`).
    names: Vec<&'static str>,
    /// The compared row's type.
    pub kind: Type,
    /// Exact comparison; otherwise both sides are folded as uniqueness
    /// claims are ([`rules::fold`]).
    pub case_exact: bool,
    /// Whether the compared row is multi-valued (it takes a value filter).
    pub multi_valued: bool,
    /// The code's name for the attribute (key lookups, value paths), when
    /// its row gives one ([`schema::Filterable::attr`]).
    pub attr: Option<Attr>,
}

impl Path {
    /// The rows' names, from the top-level attribute down.
    pub fn names(&self) -> &[&'static str] {
        &self.names
    }

    pub fn is(&self, attr: Attr) -> bool {
        self.attr == Some(attr)
    }

    fn of<R>(rows: &[&'static Attribute<R>]) -> Path {
        let last = rows.last().expect("a path names at least one row");
        Path {
            names: rows.iter().map(|r| r.name).collect(),
            kind: last.kind,
            case_exact: last.filter.map_or(last.case_exact, |f| f.case_exact),
            multi_valued: last.multi_valued,
            attr: last.filter.map(|f| f.attr),
        }
    }
}

/// `emails.value`; an extension's attributes follow its URN after a colon
/// (`urn:…:enterprise:2.0:User:department`).
impl std::fmt::Display for Path {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, name) in self.names.iter().enumerate() {
            if i > 0 {
                let urn = self.names[i - 1].starts_with("urn:");
                f.write_str(if urn { ":" } else { "." })?;
            }
            f.write_str(name)?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(String),
    Bool(bool),
    Num(Number),
    Null,
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Str(s) => write!(f, "{}", serde_json::Value::from(s.as_str())),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Num(n) => write!(f, "{n}"),
            Value::Null => f.write_str("null"),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// `path op value`. On a multi-valued attribute it holds when one of
    /// its values does (`ne`: when none equals).
    Compare(Path, Op, Value),
    /// `path pr`: the attribute has a non-empty value.
    Present(Path),
    /// All members hold. The parser flattens nested `and`s, so members are never `And`.
    And(Vec<Filter>),
    /// Some member holds; flattened like `And`.
    Or(Vec<Filter>),
    Not(Box<Filter>),
    /// `attr[filter]`: one value of the multi-valued `attr` meets `filter`,
    /// whose paths are `attr`'s sub-attributes.
    Values(Path, Box<Filter>),
}

/// The canonical form of a parsed filter: attribute names as the schema
/// spells them (full paths, also inside value paths), lower-case operators,
/// values as JSON, every `and`/`or` group in parentheses. Two filters that
/// mean the same to the parser (spacing, case, redundant parentheses, URN
/// prefixes) print the same, so it can identify a query (a cursor's
/// fingerprint) across requests and releases: the forms the `odm` grammar
/// reads print exactly as they always have.
impl std::fmt::Display for Filter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        fn joined(f: &mut std::fmt::Formatter<'_>, all: &[Filter], op: &str) -> std::fmt::Result {
            for (i, m) in all.iter().enumerate() {
                if i > 0 {
                    write!(f, " {op} ")?;
                }
                write!(f, "{m}")?;
            }
            Ok(())
        }
        match self {
            Filter::Compare(path, op, value) => write!(f, "{path} {} {value}", op.name()),
            Filter::Present(path) => write!(f, "{path} pr"),
            Filter::And(all) => {
                f.write_str("(")?;
                joined(f, all, "and")?;
                f.write_str(")")
            }
            Filter::Or(any) => {
                f.write_str("(")?;
                joined(f, any, "or")?;
                f.write_str(")")
            }
            Filter::Not(inner) => match **inner {
                Filter::And(_) | Filter::Or(_) => write!(f, "not {inner}"),
                _ => write!(f, "not ({inner})"),
            },
            Filter::Values(path, inner) => {
                write!(f, "{path}[")?;
                match &**inner {
                    Filter::And(all) => joined(f, all, "and")?,
                    other => write!(f, "{other}")?,
                }
                f.write_str("]")
            }
        }
    }
}

/// Parses a Users filter with the profile's grammar, refusing anything else
/// with a 400 `invalidFilter` that says what is wrong and where (1-based
/// character position).
pub fn parse(input: &str, profile: Profile) -> Result<Filter, ScimError> {
    parse_for(Schema::new(Resource::User, profile), input)
}

/// A filter on Groups (`GET /Groups?filter=`): [`parse`] with a Group's attributes.
pub fn parse_group(input: &str, profile: Profile) -> Result<Filter, ScimError> {
    parse_for(Schema::new(Resource::Group, profile), input)
}

fn parse_for(schema: Schema, input: &str) -> Result<Filter, ScimError> {
    let len = checked_len(input)?;
    if input.trim().is_empty() {
        return Err(invalid("Filter is empty"));
    }
    let mut parser = Parser {
        tokens: lex(input)?,
        next: 0,
        end: len + 1,
        depth: 0,
        schema,
    };
    let filter = parser.disjunction(Scope::Top)?;
    match parser.peek() {
        None => Ok(filter),
        Some(
            t @ Token {
                tok: Tok::RParen | Tok::RBrack,
                ..
            },
        ) => Err(invalid(format!(
            "Unmatched {} at position {}",
            t.tok.describe(),
            t.pos
        ))),
        Some(t) => Err(invalid(format!(
            "Expected {} or end of filter at position {}, found {}",
            parser.schema.joiners(),
            t.pos,
            t.tok.describe()
        ))),
    }
}

fn checked_len(input: &str) -> Result<usize, ScimError> {
    let len = input.chars().count();
    if len > MAX_LEN {
        return Err(invalid(format!(
            "Filter is too long: {len} characters, at most {MAX_LEN} are allowed"
        )));
    }
    Ok(len)
}

/// The filter of a PATCH value path (`emails[type eq "work"]`): the
/// conditions one value of the multi-valued attribute `attr` must meet,
/// with the grammar and messages of an `odm` filter's own value paths
/// (`eq`, `and`, parentheses). Only `emails` is multi-valued in a stored user.
pub fn parse_value_filter(attr: &str, text: &str) -> Result<Vec<Filter>, ScimError> {
    parse_value_filter_in(Profile::Odm, attr, text)
}

/// [`parse_value_filter`] with the profile's grammar and attributes (`rfc`:
/// any multi-valued attribute, every operator). Conditions joined by `and`
/// at the top are the members of the result; use [`Filter::matches_element`]
/// on each value.
pub fn parse_value_filter_in(
    profile: Profile,
    attr: &str,
    text: &str,
) -> Result<Vec<Filter>, ScimError> {
    let user = Schema::new(Resource::User, profile);
    let group = Schema::new(Resource::Group, profile);
    let (schema, parent) = match (user.value_path_attr(attr), group.value_path_attr(attr)) {
        (Some(parent), _) => (user, parent),
        (None, Some(parent)) => (group, parent),
        (None, None) => {
            let names = match profile {
                Profile::Odm => "only emails[...] and members[...] take".to_string(),
                Profile::Rfc => format!(
                    "only multi-valued attributes ({}) take",
                    user.multi_valued_names()
                ),
            };
            return Err(invalid(format!(
                "Unexpected '[' after '{attr}': {names} a value filter"
            )));
        }
    };
    let len = checked_len(text)?;
    if text.trim().is_empty() {
        return Err(invalid(format!(
            "The value filter inside {attr}[...] is empty"
        )));
    }
    let mut parser = Parser {
        tokens: lex(text)?,
        next: 0,
        end: len + 1,
        depth: 0,
        schema,
    };
    let inner = parser.disjunction(Scope::Within(&parent))?;
    match parser.peek() {
        None => Ok(match inner {
            Filter::And(all) => all,
            one => vec![one],
        }),
        Some(t) => Err(invalid(format!(
            "Expected {} or the end of {attr}[...] at position {}, found {}",
            parser.schema.joiners(),
            t.pos,
            t.tok.describe()
        ))),
    }
}

/// Whether one value of the User's multi-valued attribute `attr` (as a
/// response shows it) meets every condition of a value filter (from
/// [`parse_value_filter`]): what a PATCH value path selects. `false` when
/// `attr` is no multi-valued attribute.
pub fn user_value_matches(user: &User, attr: &str, conds: &[Filter]) -> bool {
    let schema = Schema::new(Resource::User, Profile::Rfc);
    schema
        .value_path_attr(attr)
        .is_some_and(|path| Filter::Values(path, Box::new(conjoin(conds.to_vec()))).matches(user))
}

/// What the service plans a users list from: the filter, its lowering
/// into the planner's query, and whether the index of changes decides it.
impl UserFilter for Filter {
    fn matches(&self, user: &User) -> bool {
        Filter::matches(self, user)
    }

    fn query(&self) -> UserQuery {
        self.to_query()
    }

    /// Whether the filter compares nothing but `meta.lastModified` (with
    /// `eq`, `gt`, `ge`, `lt`, `le`, joined by `and`/`or`).
    fn decided_by_time(&self) -> bool {
        match self {
            Filter::Compare(path, op, Value::Str(_)) => {
                path.is(Attr::MetaLastModified) && *op != Op::Ne
            }
            Filter::And(all) | Filter::Or(all) => all.iter().all(UserFilter::decided_by_time),
            _ => false,
        }
    }
}

/// What the service plans a groups list from: the filter, the key it pins
/// ([`Filter::group_lookup`]) and the members it names.
impl GroupFilter for Filter {
    fn matches(&self, group: &GroupRecord, members: &[u64]) -> bool {
        self.matches_group(group, members)
    }

    fn key(&self) -> Option<GroupKey> {
        self.group_lookup().and_then(|(attr, value)| match attr {
            Attr::Id => Some(GroupKey::Id(value)),
            Attr::DisplayName => Some(GroupKey::Name(value)),
            Attr::ExternalId => Some(GroupKey::ExternalId(value)),
            Attr::MemberValue => Some(GroupKey::Member(value)),
            _ => None,
        })
    }

    /// The ids among [`Filter::member_values`] (a value no id can be
    /// names nobody).
    fn member_ids(&self) -> Vec<u64> {
        let mut out: Vec<u64> = Vec::new();
        for value in self.member_values() {
            if let Some(id) = canonical_id(&value) {
                if !out.contains(&id) {
                    out.push(id);
                }
            }
        }
        out
    }
}

impl Filter {
    pub fn matches(&self, user: &User) -> bool {
        self.holds(&eval::Record {
            table: USER_ATTRIBUTES,
            record: user,
            ctx: &Context::default(),
        })
    }

    /// Whether a Group matches; `members` are its member ids that the
    /// filter names (the only ones it can compare with: a Group filter
    /// compares members only with `eq` on their value).
    pub fn matches_group(&self, group: &GroupRecord, members: &[u64]) -> bool {
        let ctx = Context {
            members: Some(members),
            ..Context::default()
        };
        self.holds(&eval::Record {
            table: GROUP_ATTRIBUTES,
            record: group,
            ctx: &ctx,
        })
    }

    /// Whether one value of a multi-valued attribute, as a resource shows
    /// it (`{"value": "…", "type": "work"}`), meets this condition of a
    /// value filter (its paths are the attribute's sub-attributes).
    pub fn matches_element(&self, element: &serde_json::Value) -> bool {
        self.holds(&eval::Element(element))
    }

    /// The value of `attr eq value`, when this is that comparison.
    pub fn eq_value(&self, attr: Attr) -> Option<&Value> {
        match self {
            Filter::Compare(path, Op::Eq, value) if path.is(attr) => Some(value),
            _ => None,
        }
    }

    /// A Group filter's key: the first `id`, `displayName`, `externalId`
    /// or `members.value` equality that every match must meet (top level,
    /// in an `and` at any depth, or inside `members[...]`; not under `or` or
    /// `not`), as [`Filter::to_query`] pins users.
    pub fn group_lookup(&self) -> Option<(Attr, String)> {
        match self {
            Filter::And(all) => all.iter().find_map(Filter::group_lookup),
            Filter::Values(_, inner) => inner.group_lookup(),
            Filter::Compare(path, Op::Eq, Value::Str(s)) => path
                .attr
                .filter(|a| {
                    matches!(
                        a,
                        Attr::Id | Attr::DisplayName | Attr::ExternalId | Attr::MemberValue
                    )
                })
                .map(|a| (a, s.clone())),
            _ => None,
        }
    }

    /// Every value `members.value` is compared with, anywhere in the
    /// filter (under `or` and `not` too), once each in order of appearance:
    /// the users whose memberships decide a Group filter.
    pub fn member_values(&self) -> Vec<String> {
        fn collect(f: &Filter, out: &mut Vec<String>) {
            match f {
                Filter::Compare(path, _, Value::Str(s))
                    if path.is(Attr::MemberValue) && !out.contains(s) =>
                {
                    out.push(s.clone());
                }
                Filter::And(all) | Filter::Or(all) => all.iter().for_each(|f| collect(f, out)),
                Filter::Not(inner) | Filter::Values(_, inner) => collect(inner, out),
                _ => {}
            }
        }
        let mut out = Vec::new();
        collect(self, &mut out);
        out
    }

    /// The filter as a Users [`UserQuery`], for planning reads: `userName`,
    /// `emails.value` (also inside an emails value path) and `externalId`
    /// equalities are claims, compared as the attribute's row says (caseless
    /// claims are folded by the store, see [`rules::fold`]); `id eq "s"` is
    /// that id, or nobody when `s` is not an id's canonical decimal (`"abc"`,
    /// `"007"`); `meta.lastModified` compared with `eq gt ge lt le` is a
    /// range of modification times; `and` and `or` stay what they are.
    /// Anything else (`not`, the other operators and attributes) is a
    /// residual the planner cannot read by. Values too long to be a key were
    /// refused by [`parse`]. The caller reads what the plan says and then
    /// still applies [`Filter::matches`].
    pub fn to_query(&self) -> UserQuery {
        let residual = UserQuery::Residual { indexed: false };
        match self {
            // The parser flattens nested `and`s; a filter built by hand may
            // not be, and any member of any depth pins the user down as well.
            Filter::And(all) => UserQuery::And(all.iter().map(Filter::to_query).collect()),
            Filter::Or(any) => UserQuery::Or(any.iter().map(Filter::to_query).collect()),
            // Each condition on one value holds for some value, so each is
            // what the whole filter needs of the user (only `emails.value`
            // and the modification time pin anything).
            Filter::Values(_, inner) => inner.to_query(),
            Filter::Compare(path, op, Value::Str(s)) => match (path.attr, op) {
                (Some(Attr::Id), Op::Eq) => UserQuery::IdIn(
                    s.parse::<u64>()
                        .ok()
                        .filter(|id| id.to_string() == *s)
                        .into_iter()
                        .collect(),
                ),
                (Some(attr @ (Attr::UserName | Attr::EmailValue | Attr::ExternalId)), Op::Eq) => {
                    let claim = match attr {
                        Attr::UserName => Claim::Username,
                        Attr::EmailValue => Claim::Email,
                        _ => Claim::ExternalId,
                    };
                    let case = if path.case_exact {
                        Case::Exact
                    } else {
                        Case::Caseless
                    };
                    UserQuery::ClaimIn(claim, case, vec![s.clone()])
                }
                (Some(Attr::MetaLastModified), _) => match parse_time(s) {
                    Some(t) => modified(*op, t).unwrap_or(residual),
                    None => residual,
                },
                _ => residual,
            },
            _ => residual,
        }
    }
}

/// The modification times `op t` admits, as an inclusive range (a superset
/// for `gt`/`lt`: the filter itself drops `t`); `None` for `ne` and the
/// string operators.
fn modified(op: Op, t: DateTime<Utc>) -> Option<UserQuery> {
    Some(match op {
        Op::Eq => UserQuery::ModifiedBetween(Some(t), Some(t)),
        Op::Gt | Op::Ge => UserQuery::ModifiedBetween(Some(t), None),
        Op::Lt | Op::Le => UserQuery::ModifiedBetween(None, Some(t)),
        _ => return None,
    })
}

fn invalid(detail: impl Into<String>) -> ScimError {
    ScimError::invalid_filter(detail)
}

fn unsupported_op(op: &str) -> ScimError {
    invalid(format!(
        "Unsupported filter operator '{}': only 'eq' and 'and' are supported",
        op.to_lowercase()
    ))
}

/// A conjunction's members as one filter.
fn conjoin(mut all: Vec<Filter>) -> Filter {
    if all.len() == 1 {
        all.remove(0)
    } else {
        Filter::And(all)
    }
}

/// A disjunction's members as one filter.
fn disjoin(mut any: Vec<Filter>) -> Filter {
    if any.len() == 1 {
        any.remove(0)
    } else {
        Filter::Or(any)
    }
}

/// The value a comparison with this attribute turns into a DynamoDB key
/// when the filter is answered by a lookup (a key of [`Filter::to_query`]'s plan): the
/// uniqueness claims of userName and email hold the folded value
/// ([`rules::fold`]), that of externalId the value as written. `None` for
/// attributes that never become keys (`id` is parsed as a number first).
fn key_value(attr: Attr, value: &str) -> Option<Cow<'_, str>> {
    match attr {
        Attr::UserName | Attr::EmailValue => Some(Cow::Owned(rules::fold(value))),
        Attr::ExternalId => Some(Cow::Borrowed(value)),
        _ => None,
    }
}

// ---- the attributes a grammar reads ----

/// What a filter can name: one resource's table, read by one profile's
/// rules (`odm`: only rows with a [`schema::Filterable`], as ODM's scheme has them;
/// `rfc`: every row).
#[derive(Debug, Clone, Copy)]
struct Schema {
    resource: Resource,
    profile: Profile,
}

/// The rows of a path, whichever table they come from, turned into what
/// the parser needs without naming the record type.
struct Resolved {
    path: Path,
    /// The compared row is complex and multi-valued (`emails`): compared
    /// alone, it stands for its `value` ([`Resolved::value`]).
    value: Option<Path>,
}

impl Schema {
    fn new(resource: Resource, profile: Profile) -> Schema {
        Schema { resource, profile }
    }

    fn rfc(&self) -> bool {
        self.profile == Profile::Rfc
    }

    /// `'and'` or `'and', 'or'`, for "expected … or end of filter".
    fn joiners(&self) -> &'static str {
        if self.rfc() {
            "'and', 'or'"
        } else {
            "'and'"
        }
    }

    /// The top-level path `written` (any case, an optional core-schema
    /// URN, or an extension's URN when a row is named by it).
    fn resolve(&self, written: &str) -> Option<Resolved> {
        match self.resource {
            Resource::User => {
                resolve_top(USER_ATTRIBUTES, super::USER_SCHEMA, written, self.profile)
            }
            Resource::Group => {
                resolve_top(GROUP_ATTRIBUTES, super::GROUP_SCHEMA, written, self.profile)
            }
        }
    }

    /// A sub-attribute of the value path's attribute `parent`, inside
    /// `parent[...]` or after `].`.
    fn resolve_sub(&self, parent: &Path, name: &str) -> Option<Path> {
        match self.resource {
            Resource::User => resolve_sub(USER_ATTRIBUTES, parent, name, self.rfc()),
            Resource::Group => resolve_sub(GROUP_ATTRIBUTES, parent, name, self.rfc()),
        }
    }

    /// The multi-valued attribute `written[...]` filters, if it takes a value filter.
    fn value_path_attr(&self, written: &str) -> Option<Path> {
        let resolved = self.resolve(written)?;
        (resolved.path.multi_valued && resolved.path.kind == Type::Complex).then_some(resolved.path)
    }

    /// The multi-valued attributes, as messages list them.
    fn multi_valued_names(&self) -> String {
        fn of<R>(table: &'static [Attribute<R>], profile: Profile) -> String {
            let names: Vec<&str> = schema::rows(table, profile)
                .filter(|a| a.multi_valued && a.kind == Type::Complex)
                .map(|a| a.name)
                .collect();
            names.join(", ")
        }
        match self.resource {
            Resource::User => of(USER_ATTRIBUTES, self.profile),
            Resource::Group => of(GROUP_ATTRIBUTES, self.profile),
        }
    }

    /// Why `written` names no attribute.
    fn unknown(&self, written: &str) -> ScimError {
        let (table_paths, name, urn) = match self.resource {
            Resource::User => (
                schema::filter_paths(USER_ATTRIBUTES),
                "User",
                super::USER_SCHEMA,
            ),
            Resource::Group => (
                schema::filter_paths(GROUP_ATTRIBUTES),
                "Group",
                super::GROUP_SCHEMA,
            ),
        };
        if self.rfc() {
            invalid(format!(
                "Unknown filter attribute '{written}': a filter names an attribute of the \
                 {name} schema (GET /Schemas/{urn} lists them)"
            ))
        } else {
            invalid(format!(
                "Unknown filter attribute '{written}': supported are {table_paths}"
            ))
        }
    }

    /// `written` names no sub-attribute of the value path's `parent`
    /// (`place`: "inside" or "after" its brackets).
    fn unknown_sub(&self, parent: &Path, written: &str, place: &str, prefix: &str) -> ScimError {
        fn subs<R>(
            table: &'static [Attribute<R>],
            parent: &Path,
            prefix: &str,
            all: bool,
        ) -> String {
            let profile = if all { Profile::Rfc } else { Profile::Odm };
            let Some(attribute) = schema::rows(table, profile)
                .find(|a| a.name.eq_ignore_ascii_case(parent.names()[0]))
            else {
                return String::new();
            };
            let names: Vec<String> = attribute
                .subs(profile)
                .filter(|s| all || s.filter.is_some())
                .map(|s| format!("{prefix}{}", s.name))
                .collect();
            match names.split_last() {
                Some((last, [])) => last.clone(),
                Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
                None => String::new(),
            }
        }
        let subs = match self.resource {
            Resource::User => subs(USER_ATTRIBUTES, parent, prefix, self.rfc()),
            Resource::Group => subs(GROUP_ATTRIBUTES, parent, prefix, self.rfc()),
        };
        let verb = if subs.contains(" and ") { "are" } else { "is" };
        invalid(format!(
            "Unknown attribute '{written}' {place} {parent}[...]: supported {verb} {subs}"
        ))
    }

    /// `'['` after an attribute that takes no value filter.
    fn no_value_filter(&self, written: &str, open: usize) -> ScimError {
        let which = match (self.profile, self.resource) {
            (Profile::Odm, Resource::User) => "only emails[...] takes".to_string(),
            (Profile::Odm, Resource::Group) => "only members[...] takes".to_string(),
            (Profile::Rfc, _) => format!(
                "only multi-valued attributes ({}) take",
                self.multi_valued_names()
            ),
        };
        invalid(format!(
            "Unexpected '[' after '{written}' at position {open}: {which} a value filter"
        ))
    }
}

/// The rows `written` names in `table` from the top (`attr`, `attr.sub`,
/// or `<extension URN>:attr[.sub]` when a row is named by that URN).
fn resolve_rows<R>(
    table: &'static [Attribute<R>],
    core_urn: &str,
    written: &str,
    profile: Profile,
) -> Option<Vec<&'static Attribute<R>>> {
    let mut rows: Vec<&'static Attribute<R>> = Vec::new();
    let rest = match schema::strip_urn(written, core_urn) {
        Some(rest) => rest,
        // A schema extension, when the table holds it as a row named by its URN.
        None => {
            let written = written.trim();
            let row = schema::rows(table, profile).find(|a| {
                a.name.starts_with("urn:")
                    && written.len() > a.name.len()
                    && schema::starts_with_ci(written, a.name)
                    && written.as_bytes()[a.name.len()] == b':'
            })?;
            rows.push(row);
            &written[row.name.len() + 1..]
        }
    };
    for (i, name) in rest.split('.').enumerate() {
        let row = match rows.last() {
            None if i == 0 => {
                schema::rows(table, profile).find(|a| a.name.eq_ignore_ascii_case(name))?
            }
            None => return None,
            Some(parent) => parent.sub_in(profile, name)?,
        };
        rows.push(row);
    }
    (rows.len() <= 3).then_some(rows)
}

/// [`resolve_rows`] for a filter. Outside `rfc` (`all` false) the compared
/// row must be [`schema::Filterable`], and extensions are not read.
fn resolve_top<R>(
    table: &'static [Attribute<R>],
    core_urn: &str,
    written: &str,
    profile: Profile,
) -> Option<Resolved> {
    let all = profile == Profile::Rfc;
    if !all && schema::strip_urn(written, core_urn).is_none() {
        return None;
    }
    let rows = resolve_rows(table, core_urn, written, profile)?;
    let last = *rows.last()?;
    // A multi-valued complex attribute alone stands for its `value` (RFC
    // 7644 §3.4.2.2), unless a value filter follows it.
    let value = (last.multi_valued && last.kind == Type::Complex)
        .then(|| last.sub("value"))
        .flatten()
        .filter(|v| all || v.filter.is_some())
        .map(|v| {
            let mut with = rows.clone();
            with.push(v);
            Path::of(&with)
        });
    let filterable = all || last.filter.is_some() || value.is_some();
    filterable.then(|| Resolved {
        path: Path::of(&rows),
        value,
    })
}

/// The path `written` names for `sortBy` (every attribute of the table),
/// compared as its row's `caseExact` says: RFC 7644 §3.4.2.3 sorts by the
/// schema's rules, where a filter keeps the few exceptions of
/// [`schema::Filterable`]. A multi-valued complex attribute alone stands
/// for its `value`.
pub(super) fn sort_path(resource: Resource, written: &str) -> Option<Path> {
    fn of<R>(table: &'static [Attribute<R>], urn: &str, written: &str) -> Option<Path> {
        // Only `rfc` sorts.
        let mut rows = resolve_rows(table, urn, written, Profile::Rfc)?;
        let last = *rows.last()?;
        if last.multi_valued && last.kind == Type::Complex {
            rows.push(last.sub("value")?);
        }
        let mut path = Path::of(&rows);
        path.case_exact = rows.last()?.case_exact;
        Some(path)
    }
    match resource {
        Resource::User => of(USER_ATTRIBUTES, super::USER_SCHEMA, written),
        Resource::Group => of(GROUP_ATTRIBUTES, super::GROUP_SCHEMA, written),
    }
}

/// The multi-valued attribute a path goes into, as a path of its own
/// (`emails` for `emails.value`); `None` for any other path.
pub(super) fn multi_valued_parent(resource: Resource, path: &Path) -> Option<Path> {
    match path.names() {
        [top, _] => Schema::new(resource, Profile::Rfc).value_path_attr(top),
        _ => None,
    }
}

/// The values at `path` of a user, as a response shows them (one per
/// value of a multi-valued attribute, unassigned ones left out).
pub(super) fn user_values(user: &User, path: &Path) -> Vec<serde_json::Value> {
    use eval::Source;
    eval::Record {
        table: USER_ATTRIBUTES,
        record: user,
        ctx: &Context::default(),
    }
    .values(path)
}

/// [`user_values`] of a group (members left out: they are not read).
pub(super) fn group_values(group: &GroupRecord, path: &Path) -> Vec<serde_json::Value> {
    use eval::Source;
    eval::Record {
        table: GROUP_ATTRIBUTES,
        record: group,
        ctx: &Context::default(),
    }
    .values(path)
}

fn resolve_sub<R>(
    table: &'static [Attribute<R>],
    parent: &Path,
    name: &str,
    all: bool,
) -> Option<Path> {
    let profile = if all { Profile::Rfc } else { Profile::Odm };
    let mut rows: Vec<&'static Attribute<R>> = Vec::new();
    for (i, n) in parent.names().iter().enumerate() {
        rows.push(match rows.last() {
            None if i == 0 => {
                schema::rows(table, profile).find(|a| a.name.eq_ignore_ascii_case(n))?
            }
            None => return None,
            Some(p) => p.sub_in(profile, n)?,
        });
    }
    // `emails[emails.type eq "work"]`, as the canonical form spells it.
    let parent_name = rows.last()?.name;
    let name = name
        .get(..parent_name.len())
        .filter(|head| head.eq_ignore_ascii_case(parent_name))
        .and_then(|_| name[parent_name.len()..].strip_prefix('.'))
        .unwrap_or(name);
    let sub = rows.last()?.sub_in(profile, name)?;
    if !all && sub.filter.is_none() {
        return None;
    }
    rows.push(sub);
    Some(Path::of(&rows))
}

// ---- parser ----

#[derive(Debug, Clone, Copy)]
enum Scope<'p> {
    Top,
    /// Inside `attr[...]`: attributes are `attr`'s sub-attributes.
    Within(&'p Path),
}

struct Parser {
    tokens: Vec<Token>,
    next: usize,
    /// The position just past the input, reported when the input ends too early.
    end: usize,
    depth: usize,
    schema: Schema,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.next)
    }

    fn advance(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.next).cloned();
        self.next += 1;
        t
    }

    /// "found …" and its position, for the token that was not what we expected.
    fn found(&self) -> (usize, String) {
        match self.peek() {
            Some(t) => (t.pos, t.tok.describe()),
            None => (self.end, "end of filter".into()),
        }
    }

    fn peek_word_is(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Token { tok: Tok::Word(w), .. }) if w.eq_ignore_ascii_case(word))
    }

    fn peek_is(&self, tok: &Tok) -> bool {
        self.peek().is_some_and(|t| t.tok == *tok)
    }

    /// `conjunction *("or" conjunction)`, flattened (`or` binds loosest).
    fn disjunction(&mut self, scope: Scope<'_>) -> Result<Filter, ScimError> {
        let mut any = Vec::new();
        loop {
            match conjoin(self.conjunction(scope)?) {
                Filter::Or(inner) => any.extend(inner),
                one => any.push(one),
            }
            if !self.peek_word_is("or") {
                return Ok(disjoin(any));
            }
            if !self.schema.rfc() {
                return Err(unsupported_op("or"));
            }
            self.next += 1;
        }
    }

    /// `term *("and" term)`, flattened.
    fn conjunction(&mut self, scope: Scope<'_>) -> Result<Vec<Filter>, ScimError> {
        let mut all = Vec::new();
        loop {
            match self.term(scope)? {
                Filter::And(inner) => all.extend(inner),
                one => all.push(one),
            }
            if self.peek_word_is("and") {
                self.next += 1;
            } else {
                return Ok(all);
            }
        }
    }

    fn term(&mut self, scope: Scope<'_>) -> Result<Filter, ScimError> {
        let (pos, found) = self.found();
        let Some(token) = self.advance() else {
            return Err(invalid(format!(
                "Expected an attribute name or '(' at position {pos}, found {found}"
            )));
        };
        match token.tok {
            Tok::LParen => self.nested(scope, token.pos, Tok::RParen),
            Tok::Word(w) if w.eq_ignore_ascii_case("not") => {
                if !self.schema.rfc() {
                    return Err(unsupported_op("not"));
                }
                let Some(Token {
                    tok: Tok::LParen,
                    pos: open,
                }) = self.peek().cloned()
                else {
                    let (pos, found) = self.found();
                    return Err(invalid(format!(
                        "Expected '(' after 'not' at position {pos}, found {found}: write \
                         not (filter)"
                    )));
                };
                self.next += 1;
                Ok(Filter::Not(Box::new(self.nested(
                    scope,
                    open,
                    Tok::RParen,
                )?)))
            }
            Tok::Word(w) => match scope {
                Scope::Top => self.top_attr(&w),
                Scope::Within(parent) => {
                    if self.peek_is(&Tok::LBrack) {
                        return Err(invalid(format!(
                            "Unexpected '[' after '{w}' at position {}: value paths cannot be nested",
                            self.peek().map_or(self.end, |t| t.pos)
                        )));
                    }
                    let path = self
                        .schema
                        .resolve_sub(parent, &w)
                        .ok_or_else(|| self.schema.unknown_sub(parent, &w, "inside", ""))?;
                    self.comparison(path, &w)
                }
            },
            _ => Err(invalid(format!(
                "Expected an attribute name or '(' at position {pos}, found {found}"
            ))),
        }
    }

    /// The filter inside `(...)` or `attr[...]`, whose opener at `open` was just read.
    fn nested(&mut self, scope: Scope<'_>, open: usize, close: Tok) -> Result<Filter, ScimError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(invalid(format!(
                "Filter nests parentheses or brackets deeper than {MAX_DEPTH} levels \
                 (at position {open})"
            )));
        }
        let inner = self.disjunction(scope)?;
        if !self.peek_is(&close) {
            let (pos, found) = self.found();
            let (c, o) = if close == Tok::RParen {
                (')', '(')
            } else {
                (']', '[')
            };
            return Err(invalid(format!(
                "Expected {} or '{c}' at position {pos} (to close the '{o}' at position \
                 {open}), found {found}",
                self.schema.joiners()
            )));
        }
        self.next += 1;
        self.depth -= 1;
        Ok(inner)
    }

    /// An attribute path at the top level: a comparison, or a value path.
    fn top_attr(&mut self, written: &str) -> Result<Filter, ScimError> {
        let resolved = self
            .schema
            .resolve(written)
            .ok_or_else(|| self.schema.unknown(written))?;
        let Some(Token {
            tok: Tok::LBrack,
            pos: open,
        }) = self.peek().cloned()
        else {
            let path = resolved.value.unwrap_or(resolved.path);
            return self.comparison(path, written);
        };
        let parent = resolved.path;
        if !(parent.multi_valued && parent.kind == Type::Complex) {
            return Err(self.schema.no_value_filter(written, open));
        }
        self.next += 1;
        let inner = self.nested(Scope::Within(&parent), open, Tok::RBrack)?;
        // Entra's `emails[type eq "work"].value eq "x"`: one more condition on the same value.
        let Some(Token {
            tok: Tok::Word(w), ..
        }) = self.peek().cloned()
        else {
            return Ok(Filter::Values(parent, Box::new(inner)));
        };
        let Some(sub) = w.strip_prefix('.') else {
            return Ok(Filter::Values(parent, Box::new(inner)));
        };
        self.next += 1;
        let path = self
            .schema
            .resolve_sub(&parent, sub)
            .ok_or_else(|| self.schema.unknown_sub(&parent, &w, "after", "."))?;
        let more = self.comparison(path, &w)?;
        let mut all = match inner {
            Filter::And(all) => all,
            one => vec![one],
        };
        all.push(more);
        Ok(Filter::Values(parent, Box::new(Filter::And(all))))
    }

    /// The operator and value after an attribute path `written` (as the client wrote it).
    fn comparison(&mut self, path: Path, written: &str) -> Result<Filter, ScimError> {
        let rfc = self.schema.rfc();
        let (pos, found) = self.found();
        let expected = || {
            let ops = if rfc {
                "an operator (eq, ne, co, sw, ew, gt, ge, lt, le or pr)"
            } else {
                "an operator ('eq')"
            };
            invalid(format!(
                "Expected {ops} after '{written}' at position {pos}, found {found}"
            ))
        };
        let op = match self.advance().map(|t| t.tok) {
            Some(Tok::Word(w)) if rfc && w.eq_ignore_ascii_case("pr") => {
                self.check_members(&path, None)?;
                return Ok(Filter::Present(path));
            }
            Some(Tok::Word(w)) => match Op::parse(&w) {
                Some(Op::Eq) => Op::Eq,
                Some(op) if rfc => op,
                Some(_) => return Err(unsupported_op(&w)),
                None if w.eq_ignore_ascii_case("pr") => return Err(unsupported_op(&w)),
                None => return Err(expected()),
            },
            _ => return Err(expected()),
        };
        let (pos, found) = self.found();
        let value = match self.advance().map(|t| t.tok) {
            Some(Tok::Str(s)) => Value::Str(s),
            Some(Tok::Word(w)) => literal(&w, pos, op)?,
            _ => {
                return Err(invalid(format!(
                    "Expected a value (a quoted string, true, false, null or a number) after \
                     '{}' at position {pos}, found {found}",
                    op.name()
                )))
            }
        };
        check_type(&path, op, &value)?;
        self.check_members(&path, Some(op))?;
        if op == Op::Eq {
            check_key_length(&path, &value)?;
            if let (Resource::Group, Some(Attr::DisplayName), Value::Str(s)) =
                (self.schema.resource, path.attr, &value)
            {
                // A group's name claim is its folded name.
                if !table::fits(s) || !table::fits(&rules::fold(s)) {
                    return Err(invalid(format!(
                        "The value compared with 'displayName' is too long: {} bytes, at most \
                         {} are allowed",
                        s.len(),
                        table::MAX_KEY_VALUE_BYTES
                    )));
                }
            }
        }
        Ok(Filter::Compare(path, op, value))
    }

    /// A Group's members are items of their own, read only for the users a
    /// filter names: it may compare them only with `eq` on their value
    /// (`op` `None`: `pr`).
    fn check_members(&self, path: &Path, op: Option<Op>) -> Result<(), ScimError> {
        if self.schema.resource != Resource::Group || path.names()[0] != "members" {
            return Ok(());
        }
        if op == Some(Op::Eq) && path.is(Attr::MemberValue) {
            return Ok(());
        }
        Err(invalid(format!(
            "A Group filter compares members only with eq on their value (members[value eq \
             \"<user id>\"] or members.value eq \"<user id>\"), not '{path} {}': anything else \
             would read every member of every group",
            op.map_or("pr", Op::name)
        )))
    }
}

/// An unquoted value: `true`, `false`, `null` (any case) or a JSON number.
fn literal(word: &str, pos: usize, op: Op) -> Result<Value, ScimError> {
    match word.to_lowercase().as_str() {
        "true" => return Ok(Value::Bool(true)),
        "false" => return Ok(Value::Bool(false)),
        "null" => return Ok(Value::Null),
        _ => {}
    }
    if word.starts_with(|c: char| c.is_ascii_digit() || c == '-') {
        return serde_json::from_str::<Number>(word)
            .map(Value::Num)
            .map_err(|_| invalid(format!("Invalid number '{word}' at position {pos}")));
    }
    Err(invalid(format!(
        "Expected a value (a quoted string, true, false, null or a number) after '{}' at \
         position {pos}, found '{word}' (strings need double quotes)",
        op.name()
    )))
}

/// The value's type must be the attribute's (from its row), or null with
/// `eq`/`ne` (an unassigned attribute); and the operator must apply to
/// that type (RFC 7644: `gt` and its kin on a boolean are `invalidFilter`).
fn check_type(path: &Path, op: Op, value: &Value) -> Result<(), ScimError> {
    let name = path.to_string();
    let op_name = op.name();
    if path.kind == Type::Complex {
        return Err(invalid(format!(
            "Attribute '{name}' is complex: compare one of its sub-attributes \
             ('{name}.<sub-attribute>'), or test it with pr"
        )));
    }
    match (path.kind, value) {
        (_, Value::Null) if matches!(op, Op::Eq | Op::Ne) => Ok(()),
        (_, Value::Null) => Err(invalid(format!(
            "'{op_name}' compares '{name}' with a value, not null (test for one with pr)"
        ))),
        (Type::Boolean, _) if op != Op::Eq && op != Op::Ne => Err(invalid(format!(
            "Attribute '{name}' is a boolean: '{op_name}' does not apply to it (use eq, ne or pr)"
        ))),
        (Type::Boolean, Value::Bool(_)) => Ok(()),
        (Type::Boolean, _) => Err(invalid(format!(
            "Attribute '{name}' is a boolean: compare it with true or false (without quotes), \
             not {value}"
        ))),
        (Type::DateTime, _) if op.substring() => Err(invalid(format!(
            "Attribute '{name}' is a date-time: '{op_name}' looks inside strings; compare dates \
             with eq, ne, gt, ge, lt or le"
        ))),
        (Type::DateTime, Value::Str(s)) if parse_time(s).is_some() => Ok(()),
        (Type::DateTime, _) => Err(invalid(format!(
            "Attribute '{name}' is a date-time: compare it with a quoted RFC 3339 timestamp such \
             as \"2026-01-31T12:00:00Z\", not {value}"
        ))),
        (_, Value::Str(_)) => Ok(()),
        (_, _) => Err(invalid(format!(
            "Attribute '{name}' is a string: compare it with a quoted string, not {value}"
        ))),
    }
}

/// A string compared with userName, emails.value or externalId may become
/// part of a DynamoDB key (the lookup reads that claim), and DynamoDB answers
/// an over-long key with a validation error. No stored value comes near
/// [`table::MAX_KEY_VALUE_BYTES`], so a longer one cannot match anything: it is
/// refused here, before any read.
fn check_key_length(path: &Path, value: &Value) -> Result<(), ScimError> {
    let (Value::Str(s), Some(attr)) = (value, path.attr) else {
        return Ok(());
    };
    let Some(key) = key_value(attr, s) else {
        return Ok(());
    };
    if table::fits(s) && table::fits(&key) {
        return Ok(());
    }
    Err(invalid(format!(
        "The value compared with '{path}' is too long: {} bytes ({} once normalized), at most {} \
         are allowed",
        s.len(),
        key.len(),
        table::MAX_KEY_VALUE_BYTES
    )))
}
