//! SCIM filters (RFC 7644 §3.4.2.2): the supported subset, parsed into a typed
//! [`Filter`], evaluated over a [`User`], and reduced to a key lookup when one
//! equality pins the user down.
//!
//! Supported: `eq` joined by `and`, parentheses, the value path
//! `emails[type eq "work" and value eq "x"]`, and Entra's non-RFC form
//! `emails[type eq "work"].value eq "x"` (same meaning). Every other operator
//! is refused by name. Hand-written rather than `scim_v2`, so that the errors
//! can name the operator and the position, the Entra form needs no rewrite,
//! and the recursion depth is bounded by construction.
//!
//! Caseless attributes (`userName`, `emails`) compare as their uniqueness
//! claims do, NFKC with full case folding, and values too long to be a key
//! are refused before they become one.
use std::borrow::Cow;

use serde_json::Number;

use super::group_schema::GROUP_ATTRIBUTES;
use super::schema::{self, Attribute, Context, Filterable, Type};
use super::user_schema::USER_ATTRIBUTES;
use super::{values, ScimError};
use crate::domain::group::GroupRecord;
use crate::domain::query::{Case, Claim, UserQuery};
use crate::domain::user::{parse_time, rules, User};
use crate::store::keys;

/// Longer filters are refused before lexing.
pub const MAX_LEN: usize = 4096;
/// Parentheses and brackets nested deeper than this are refused; the parser
/// recurses once per level, so this is what keeps the stack small.
pub const MAX_DEPTH: usize = 32;

const UNSUPPORTED_OPS: [&str; 9] = ["ne", "co", "sw", "ew", "gt", "ge", "lt", "le", "pr"];

pub use super::schema::Attr;

/// The resource type a filter is about: each has its own attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    User,
    Group,
}

impl Resource {
    /// The filter attribute a top-level path names: case-insensitive,
    /// optional core-schema URN.
    fn attr(self, path: &str) -> Option<Filterable> {
        match self {
            Resource::User => schema::filter_attr(USER_ATTRIBUTES, values::strip_user_urn(path)?),
            Resource::Group => schema::filter_attr(
                GROUP_ATTRIBUTES,
                values::strip_urn(path, super::GROUP_SCHEMA)?,
            ),
        }
    }

    /// Whether the path names a multi-valued attribute itself (not a
    /// sub-attribute of it), which takes a value filter.
    fn takes_value_filter(self, path: &str) -> bool {
        fn of<R>(table: &'static [Attribute<R>], path: Option<&str>) -> bool {
            path.is_some_and(|p| {
                !p.contains('.') && schema::find(table, p).is_some_and(|a| a.multi_valued)
            })
        }
        match self {
            Resource::User => of(USER_ATTRIBUTES, values::strip_user_urn(path)),
            Resource::Group => of(
                GROUP_ATTRIBUTES,
                values::strip_urn(path, super::GROUP_SCHEMA),
            ),
        }
    }

    /// The "supported are …" list of unknown-attribute errors.
    fn supported(self) -> String {
        match self {
            Resource::User => schema::filter_paths(USER_ATTRIBUTES),
            Resource::Group => schema::filter_paths(GROUP_ATTRIBUTES),
        }
    }

    /// The multi-valued attribute value paths go into (`emails`,
    /// `members`), and its filterable sub-attributes as messages list
    /// them, each after `prefix`.
    fn value_path(self, prefix: &str) -> (&'static str, String) {
        fn of<R>(table: &'static [Attribute<R>], prefix: &str) -> (&'static str, String) {
            let attribute = table
                .iter()
                .find(|a| a.multi_valued && a.sub_attributes.iter().any(|s| s.filter.is_some()))
                .expect("a table with a filterable multi-valued attribute");
            (attribute.name, schema::sub_filter_names(attribute, prefix))
        }
        match self {
            Resource::User => of(USER_ATTRIBUTES, prefix),
            Resource::Group => of(GROUP_ATTRIBUTES, prefix),
        }
    }

    /// A sub-attribute of the value path's attribute, inside `attr[...]`
    /// or after `].`.
    fn sub_attr(self, name: &str) -> Option<Attr> {
        let path = format!("{}.{name}", self.value_path("").0);
        match self {
            Resource::User => schema::filter_attr(USER_ATTRIBUTES, &path),
            Resource::Group => schema::filter_attr(GROUP_ATTRIBUTES, &path),
        }
        .map(|f| f.attr)
    }

    /// `written` names no sub-attribute of the value path's attribute
    /// (`place`: "inside" or "after" its brackets).
    fn unknown_sub(self, written: &str, place: &str, prefix: &str) -> ScimError {
        let (name, subs) = self.value_path(prefix);
        let verb = if subs.contains(" and ") { "are" } else { "is" };
        invalid(format!(
            "Unknown attribute '{written}' {place} {name}[...]: supported {verb} {subs}"
        ))
    }

    /// The attribute's type, for the comparisons it takes.
    fn kind(self, attr: Attr) -> Option<Type> {
        fn kind<R>(table: &'static [Attribute<R>], attr: Attr) -> Option<Type> {
            let ((a, sub), _) = schema::filter_row(table, attr)?;
            Some(sub.unwrap_or(a).kind)
        }
        match self {
            Resource::User => kind(USER_ATTRIBUTES, attr),
            Resource::Group => kind(GROUP_ATTRIBUTES, attr),
        }
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
    Eq(Attr, Value),
    /// All members hold. The parser flattens nested `and`s, so members are never `And`.
    And(Vec<Filter>),
    /// A value path over `emails`: all conditions hold for the same email.
    /// Members are `Eq(EmailValue | EmailType, _)`.
    Email(Vec<Filter>),
    /// A value path over a Group's `members`: all conditions hold for the
    /// same member. Members are `Eq(MemberValue, _)`.
    Member(Vec<Filter>),
}

/// The canonical form of a parsed filter: attribute names as the schema
/// spells them, lower-case operators, values as JSON, every group in
/// parentheses. Two filters that mean the same to the parser (spacing,
/// case, redundant parentheses) print the same, so it can identify a query
/// (a cursor's fingerprint) across requests and releases.
impl std::fmt::Display for Filter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        fn members(f: &mut std::fmt::Formatter<'_>, all: &[Filter]) -> std::fmt::Result {
            for (i, m) in all.iter().enumerate() {
                if i > 0 {
                    f.write_str(" and ")?;
                }
                write!(f, "{m}")?;
            }
            Ok(())
        }
        match self {
            Filter::Eq(attr, value) => write!(f, "{} eq {value}", attr.name()),
            Filter::And(all) => {
                f.write_str("(")?;
                members(f, all)?;
                f.write_str(")")
            }
            Filter::Email(all) => {
                f.write_str("emails[")?;
                members(f, all)?;
                f.write_str("]")
            }
            Filter::Member(all) => {
                f.write_str("members[")?;
                members(f, all)?;
                f.write_str("]")
            }
        }
    }
}

/// Parses a filter, refusing anything outside the supported subset with a
/// 400 `invalidFilter` that says what is wrong and where (1-based character position).
pub fn parse(input: &str) -> Result<Filter, ScimError> {
    parse_for(Resource::User, input)
}

/// A filter on Groups (`GET /Groups?filter=`): [`parse`] with a Group's attributes.
pub fn parse_group(input: &str) -> Result<Filter, ScimError> {
    parse_for(Resource::Group, input)
}

fn parse_for(resource: Resource, input: &str) -> Result<Filter, ScimError> {
    let len = input.chars().count();
    if len > MAX_LEN {
        return Err(invalid(format!(
            "Filter is too long: {len} characters, at most {MAX_LEN} are allowed"
        )));
    }
    if input.trim().is_empty() {
        return Err(invalid("Filter is empty"));
    }
    let mut parser = Parser {
        tokens: lex(input)?,
        next: 0,
        end: len + 1,
        depth: 0,
        resource,
    };
    let filter = conjoin(parser.conjunction(Scope::Top)?);
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
            "Expected 'and' or end of filter at position {}, found {}",
            t.pos,
            t.tok.describe()
        ))),
    }
}

/// The filter of a PATCH value path (`emails[type eq "work"]`): the
/// conditions one value of the multi-valued attribute `attr` must meet,
/// with the grammar and messages of a filter's own value paths (`eq`,
/// `and`, parentheses). Only `emails` is multi-valued in a stored user.
pub fn parse_value_filter(attr: &str, text: &str) -> Result<Vec<Filter>, ScimError> {
    let (resource, scope) = if attr.eq_ignore_ascii_case("emails") {
        (Resource::User, Scope::Emails)
    } else if attr.eq_ignore_ascii_case("members") {
        (Resource::Group, Scope::Members)
    } else {
        return Err(invalid(format!(
            "Unexpected '[' after '{attr}': only emails[...] and members[...] take a value filter"
        )));
    };
    let len = text.chars().count();
    if len > MAX_LEN {
        return Err(invalid(format!(
            "Filter is too long: {len} characters, at most {MAX_LEN} are allowed"
        )));
    }
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
        resource,
    };
    let all = parser.conjunction(scope)?;
    match parser.peek() {
        None => Ok(all),
        Some(t) => Err(invalid(format!(
            "Expected 'and' or the end of {attr}[...] at position {}, found {}",
            t.pos,
            t.tok.describe()
        ))),
    }
}

/// The filter of a PATCH path's value path on `attribute`, any
/// multi-valued attribute of a User (`phoneNumbers[type eq "mobile"]`):
/// the conditions one of its values must meet, on its sub-attributes, with
/// the grammar and messages of [`parse_value_filter`]. A sub-attribute no
/// filter names by itself is an [`Attr::Sub`]. [`matches_value`] tells
/// which values they select.
pub fn parse_values_filter(
    attribute: &'static Attribute<User>,
    text: &str,
) -> Result<Vec<Filter>, ScimError> {
    let name = attribute.name;
    let len = text.chars().count();
    if len > MAX_LEN {
        return Err(invalid(format!(
            "Filter is too long: {len} characters, at most {MAX_LEN} are allowed"
        )));
    }
    if text.trim().is_empty() {
        return Err(invalid(format!(
            "The value filter inside {name}[...] is empty"
        )));
    }
    let mut parser = Parser {
        tokens: lex(text)?,
        next: 0,
        end: len + 1,
        depth: 0,
        resource: Resource::User,
    };
    let all = parser.conjunction(Scope::Values(attribute))?;
    match parser.peek() {
        None => Ok(all),
        Some(t) => Err(invalid(format!(
            "Expected 'and' or the end of {name}[...] at position {}, found {}",
            t.pos,
            t.tok.describe()
        ))),
    }
}

/// Whether `value`, one value of the multi-valued `attribute` as a
/// response shows it, meets every condition of a value path
/// ([`parse_values_filter`]). Each sub-attribute compares as its row says,
/// as a filter's own comparisons do.
pub fn matches_value(
    attribute: &Attribute<User>,
    conds: &[Filter],
    value: &serde_json::Value,
) -> bool {
    conds.iter().all(|cond| match cond {
        Filter::Eq(attr, want) => {
            let Some(sub) = schema::find(attribute.sub_attributes, attr.sub_name()) else {
                return *want == Value::Null;
            };
            let case_exact = sub.filter.map_or(sub.case_exact, |f| f.case_exact);
            let found: Vec<&serde_json::Value> = value.get(sub.name).into_iter().collect();
            values_match(sub.kind, case_exact, &found, want)
        }
        Filter::And(all) => matches_value(attribute, all, value),
        Filter::Email(_) | Filter::Member(_) => false,
    })
}

impl Filter {
    pub fn matches(&self, user: &User) -> bool {
        match self {
            Filter::Eq(attr, value) => attr_eq(*attr, value, user),
            Filter::And(all) => all.iter().all(|f| f.matches(user)),
            // The user has at most one email, so "the same email" is that one.
            Filter::Email(all) => !user.email.is_empty() && all.iter().all(|f| f.matches(user)),
            Filter::Member(_) => false,
        }
    }

    /// Whether a Group matches; `members` are its member ids that the
    /// filter names (the only ones it can compare with).
    pub fn matches_group(&self, group: &GroupRecord, members: &[u64]) -> bool {
        match self {
            Filter::Eq(attr, value) => group_attr_eq(*attr, value, group, members),
            Filter::And(all) => all.iter().all(|f| f.matches_group(group, members)),
            // Conditions on one member: only `value` exists, so each must
            // name the same member.
            Filter::Member(all) => members.iter().any(|m| {
                all.iter()
                    .all(|f| f.matches_group(group, std::slice::from_ref(m)))
            }),
            Filter::Email(_) => false,
        }
    }

    /// A Group filter's key: the first `id`, `displayName`, `externalId`
    /// or `members.value` equality (top level or in an `and`, at any depth,
    /// or inside `members[...]`), as [`Filter::to_query`] pins users.
    pub fn group_lookup(&self) -> Option<(Attr, String)> {
        match self {
            Filter::And(all) => all.iter().find_map(Filter::group_lookup),
            Filter::Eq(
                attr @ (Attr::Id | Attr::DisplayName | Attr::ExternalId | Attr::MemberValue),
                Value::Str(s),
            ) => Some((*attr, s.clone())),
            Filter::Member(all) => all.iter().find_map(Filter::group_lookup),
            _ => None,
        }
    }

    /// The filter as a Users [`UserQuery`], for planning reads: `userName`,
    /// `emails.value` (also inside an emails value path) and `externalId`
    /// equalities are claims, compared as the attribute's row says (caseless
    /// claims are folded by the store, see [`rules::fold`]); `id eq "s"` is
    /// that id, or nobody when `s` is not an id's canonical decimal (`"abc"`,
    /// `"007"`). Anything else is a residual the planner cannot read by.
    /// Values too long to be a key were refused by [`parse`]. The caller
    /// reads what the plan says and then still applies [`Filter::matches`].
    pub fn to_query(&self) -> UserQuery {
        match self {
            // The parser flattens nested `and`s; a filter built by hand may
            // not be, and any member of any depth pins the user down as well.
            Filter::And(all) => UserQuery::And(all.iter().map(Filter::to_query).collect()),
            Filter::Email(all) => UserQuery::And(
                all.iter()
                    .map(|f| match f {
                        Filter::Eq(Attr::EmailValue, _) => f.to_query(),
                        _ => UserQuery::Residual { indexed: false },
                    })
                    .collect(),
            ),
            Filter::Eq(Attr::Id, Value::Str(s)) => UserQuery::IdIn(
                s.parse::<u64>()
                    .ok()
                    .filter(|id| id.to_string() == *s)
                    .into_iter()
                    .collect(),
            ),
            Filter::Eq(
                attr @ (Attr::UserName | Attr::EmailValue | Attr::ExternalId),
                Value::Str(s),
            ) => {
                let claim = match attr {
                    Attr::UserName => Claim::Username,
                    Attr::EmailValue => Claim::Email,
                    _ => Claim::ExternalId,
                };
                let exact =
                    schema::filter_row(USER_ATTRIBUTES, *attr).is_none_or(|(_, f)| f.case_exact);
                let case = if exact { Case::Exact } else { Case::Caseless };
                UserQuery::ClaimIn(claim, case, vec![s.clone()])
            }
            _ => UserQuery::Residual { indexed: false },
        }
    }
}

fn attr_eq(attr: Attr, value: &Value, user: &User) -> bool {
    compare(USER_ATTRIBUTES, attr, value, user, &Context::default())
}

fn group_attr_eq(attr: Attr, value: &Value, group: &GroupRecord, members: &[u64]) -> bool {
    let ctx = Context {
        members: Some(members),
        ..Context::default()
    };
    compare(GROUP_ATTRIBUTES, attr, value, group, &ctx)
}

/// `attr eq value` on a record, over the attribute's values exactly as a
/// response shows them (so a client can filter on what it read): one, or
/// for a sub-attribute of a multi-valued one, one per value. Strings
/// compare as the row's [`Filterable`] says; booleans and date-times only
/// with their own type, so null never matches them.
fn compare<R>(
    table: &'static [Attribute<R>],
    attr: Attr,
    value: &Value,
    record: &R,
    ctx: &Context<'_>,
) -> bool {
    let Some(((attribute, sub), filterable)) = schema::filter_row(table, attr) else {
        // Not an attribute of this resource: never assigned.
        return *value == Value::Null;
    };
    let shown = attribute.value(record, ctx);
    let found: Vec<&serde_json::Value> = match (&shown, sub) {
        (None, _) => Vec::new(),
        (Some(one), None) => vec![one],
        (Some(serde_json::Value::Array(items)), Some(sub)) => {
            items.iter().filter_map(|i| i.get(sub.name)).collect()
        }
        (Some(parent), Some(sub)) => parent.get(sub.name).into_iter().collect(),
    };
    values_match(
        sub.unwrap_or(attribute).kind,
        filterable.case_exact,
        &found,
        value,
    )
}

/// Whether any of the values `found` (JSON, as a response shows them) is
/// `value`, for an attribute of type `kind`: strings exactly or folded
/// (`case_exact`), booleans and date-times only with their own type.
fn values_match(kind: Type, case_exact: bool, found: &[&serde_json::Value], value: &Value) -> bool {
    match (kind, value) {
        (Type::Boolean, Value::Bool(want)) => found.iter().any(|f| f.as_bool() == Some(*want)),
        (Type::DateTime, Value::Str(want)) => parse_time(want).is_some_and(|want| {
            found
                .iter()
                .any(|f| f.as_str().and_then(parse_time) == Some(want))
        }),
        (Type::Boolean | Type::DateTime, _) => false,
        (_, Value::Null) => found.is_empty(),
        (_, Value::Str(want)) => found.iter().filter_map(|f| f.as_str()).any(|have| {
            if case_exact {
                have == want
            } else {
                // The same caseless match the uniqueness claims use, so a
                // user found by its claim (`STRASSE` for `straße`) is not
                // then filtered away.
                rules::fold(have) == rules::fold(want)
            }
        }),
        // The parser refuses these; a hand-built filter just does not match.
        (_, Value::Bool(_) | Value::Num(_)) => false,
    }
}

/// `written` names no sub-attribute of `attribute`, inside its `[...]`.
fn unknown_value_sub(attribute: &Attribute<User>, written: &str) -> ScimError {
    let names: Vec<&str> = attribute
        .sub_attributes
        .iter()
        .filter(|s| s.kind != Type::Complex)
        .map(|s| s.name)
        .collect();
    let list = match names.split_last() {
        Some((last, [])) => format!("is {last}"),
        Some((last, rest)) => format!("are {} and {last}", rest.join(", ")),
        None => "is nothing".into(),
    };
    invalid(format!(
        "Unknown attribute '{written}' inside {}[...]: supported {list}",
        attribute.name
    ))
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

// ---- lexer ----

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    LParen,
    RParen,
    LBrack,
    RBrack,
    /// An attribute path, operator, keyword or number: a run of anything else.
    Word(String),
    Str(String),
}

impl Tok {
    fn describe(&self) -> String {
        match self {
            Tok::LParen => "'('".into(),
            Tok::RParen => "')'".into(),
            Tok::LBrack => "'['".into(),
            Tok::RBrack => "']'".into(),
            Tok::Word(w) => format!("'{w}'"),
            Tok::Str(s) => format!("the string {}", Value::Str(s.clone())),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
struct Token {
    tok: Tok,
    /// 1-based character position of the token's first character.
    pos: usize,
}

fn lex(input: &str) -> Result<Vec<Token>, ScimError> {
    let chars: Vec<char> = input.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let pos = i + 1;
        let tok = match chars[i] {
            c if c.is_whitespace() => {
                i += 1;
                continue;
            }
            '(' => Tok::LParen,
            ')' => Tok::RParen,
            '[' => Tok::LBrack,
            ']' => Tok::RBrack,
            '"' => {
                let (s, next) = lex_string(&chars, i)?;
                tokens.push(Token {
                    tok: Tok::Str(s),
                    pos,
                });
                i = next;
                continue;
            }
            _ => {
                let start = i;
                while i < chars.len() && !is_delimiter(chars[i]) {
                    i += 1;
                }
                tokens.push(Token {
                    tok: Tok::Word(chars[start..i].iter().collect()),
                    pos,
                });
                continue;
            }
        };
        tokens.push(Token { tok, pos });
        i += 1;
    }
    Ok(tokens)
}

fn is_delimiter(c: char) -> bool {
    c.is_whitespace() || matches!(c, '(' | ')' | '[' | ']' | '"')
}

/// A JSON string starting at `chars[open]` (the quote); returns it and the index after it.
fn lex_string(chars: &[char], open: usize) -> Result<(String, usize), ScimError> {
    let unterminated = || {
        invalid(format!(
            "Unterminated string starting at position {}: expected a closing '\"'",
            open + 1
        ))
    };
    let mut out = String::new();
    let mut i = open + 1;
    loop {
        let c = *chars.get(i).ok_or_else(unterminated)?;
        i += 1;
        match c {
            '"' => return Ok((out, i)),
            '\\' => {
                let escape_pos = i;
                let e = *chars.get(i).ok_or_else(unterminated)?;
                i += 1;
                out.push(match e {
                    '"' => '"',
                    '\\' => '\\',
                    '/' => '/',
                    'b' => '\u{8}',
                    'f' => '\u{c}',
                    'n' => '\n',
                    'r' => '\r',
                    't' => '\t',
                    'u' => {
                        let (c, next) = lex_unicode_escape(chars, i, escape_pos)?;
                        i = next;
                        c
                    }
                    other => {
                        return Err(invalid(format!(
                            "Invalid escape '\\{other}' at position {escape_pos}: \
                             strings take JSON escapes (\\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX)"
                        )))
                    }
                });
            }
            c => out.push(c),
        }
    }
}

/// The `XXXX` of `\uXXXX` at `chars[i..]`, joining a surrogate pair; returns the char and the
/// index after it. `escape_pos` is the 1-based position of the backslash, for errors.
fn lex_unicode_escape(
    chars: &[char],
    i: usize,
    escape_pos: usize,
) -> Result<(char, usize), ScimError> {
    let bad = || {
        invalid(format!(
            "Invalid \\u escape at position {escape_pos}: expected four hex digits \
             (a surrogate pair for characters beyond U+FFFF)"
        ))
    };
    let hex4 = |at: usize| -> Option<u32> {
        let digits: String = chars.get(at..at + 4)?.iter().collect();
        u32::from_str_radix(&digits, 16)
            .ok()
            .filter(|_| digits.chars().all(|c| c.is_ascii_hexdigit()))
    };
    let high = hex4(i).ok_or_else(bad)?;
    if (0xD800..0xDC00).contains(&high) {
        let low = (chars.get(i + 4) == Some(&'\\') && chars.get(i + 5) == Some(&'u'))
            .then(|| hex4(i + 6))
            .flatten()
            .filter(|low| (0xDC00..0xE000).contains(low))
            .ok_or_else(bad)?;
        let c = char::from_u32(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00));
        return Ok((c.ok_or_else(bad)?, i + 10));
    }
    Ok((char::from_u32(high).ok_or_else(bad)?, i + 4))
}

// ---- parser ----

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    Top,
    /// Inside `emails[...]`: attributes are the sub-attributes `value` and `type`.
    Emails,
    /// Inside a Group's `members[...]`: the sub-attribute `value`.
    Members,
    /// Inside a PATCH path's value path on this multi-valued attribute:
    /// its sub-attributes ([`parse_values_filter`]).
    Values(&'static Attribute<User>),
}

struct Parser {
    tokens: Vec<Token>,
    next: usize,
    /// The position just past the input, reported when the input ends too early.
    end: usize,
    depth: usize,
    resource: Resource,
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

    /// `term *("and" term)`, flattened.
    fn conjunction(&mut self, scope: Scope) -> Result<Vec<Filter>, ScimError> {
        let mut all = Vec::new();
        loop {
            match self.term(scope)? {
                Filter::And(inner) => all.extend(inner),
                one => all.push(one),
            }
            if self.peek_word_is("and") {
                self.next += 1;
            } else if self.peek_word_is("or") {
                return Err(unsupported_op("or"));
            } else {
                return Ok(all);
            }
        }
    }

    fn term(&mut self, scope: Scope) -> Result<Filter, ScimError> {
        let (pos, found) = self.found();
        let Some(token) = self.advance() else {
            return Err(invalid(format!(
                "Expected an attribute name or '(' at position {pos}, found {found}"
            )));
        };
        match token.tok {
            Tok::LParen => {
                let inner = self.nested(scope, token.pos, Tok::RParen)?;
                Ok(conjoin(inner))
            }
            Tok::Word(w) if w.eq_ignore_ascii_case("not") => Err(unsupported_op("not")),
            Tok::Word(w) => match scope {
                Scope::Top => self.top_attr(&w),
                Scope::Members => {
                    let attr = self
                        .resource
                        .sub_attr(&w)
                        .ok_or_else(|| self.resource.unknown_sub(&w, "inside", ""))?;
                    self.comparison(attr, &w)
                }
                Scope::Emails => {
                    if matches!(
                        self.peek(),
                        Some(Token {
                            tok: Tok::LBrack,
                            ..
                        })
                    ) {
                        return Err(invalid(format!(
                            "Unexpected '[' after '{w}' at position {}: value paths cannot be nested",
                            self.peek().map_or(self.end, |t| t.pos)
                        )));
                    }
                    let attr = self
                        .resource
                        .sub_attr(&w)
                        .ok_or_else(|| self.resource.unknown_sub(&w, "inside", ""))?;
                    self.comparison(attr, &w)
                }
                Scope::Values(attribute) => {
                    if let Some(Token {
                        tok: Tok::LBrack,
                        pos,
                    }) = self.peek()
                    {
                        return Err(invalid(format!(
                            "Unexpected '[' after '{w}' at position {pos}: value paths cannot be nested"
                        )));
                    }
                    let sub = attribute
                        .sub(&w)
                        .filter(|s| s.kind != Type::Complex)
                        .ok_or_else(|| unknown_value_sub(attribute, &w))?;
                    let attr = sub
                        .filter
                        .map_or(Attr::Sub(attribute.name, sub.name), |f| f.attr);
                    self.typed_comparison(attr, Some(sub.kind), &w)
                }
            },
            _ => Err(invalid(format!(
                "Expected an attribute name or '(' at position {pos}, found {found}"
            ))),
        }
    }

    /// The conjunction inside `(...)` or `emails[...]`, whose opener at `open` was just read.
    fn nested(&mut self, scope: Scope, open: usize, close: Tok) -> Result<Vec<Filter>, ScimError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(invalid(format!(
                "Filter nests parentheses or brackets deeper than {MAX_DEPTH} levels \
                 (at position {open})"
            )));
        }
        let inner = self.conjunction(scope)?;
        if self.peek().map(|t| &t.tok) != Some(&close) {
            let (pos, found) = self.found();
            let (c, o) = if close == Tok::RParen {
                (')', '(')
            } else {
                (']', '[')
            };
            return Err(invalid(format!(
                "Expected 'and' or '{c}' at position {pos} (to close the '{o}' at position \
                 {open}), found {found}"
            )));
        }
        self.next += 1;
        self.depth -= 1;
        Ok(inner)
    }

    /// An attribute path at the top level: `attr eq value` or a value path over `emails`.
    fn top_attr(&mut self, path: &str) -> Result<Filter, ScimError> {
        let attr = self.resource.attr(path).map(|f| f.attr).ok_or_else(|| {
            invalid(format!(
                "Unknown filter attribute '{path}': supported are {}",
                self.resource.supported()
            ))
        })?;
        let Some(Token {
            tok: Tok::LBrack,
            pos: open,
        }) = self.peek().cloned()
        else {
            return self.comparison(attr, path);
        };
        if !self.resource.takes_value_filter(path) {
            return Err(invalid(format!(
                "Unexpected '[' after '{path}' at position {open}: only {}[...] takes a value filter",
                self.resource.value_path("").0
            )));
        }
        self.next += 1;
        if self.resource == Resource::Group {
            return Ok(Filter::Member(self.nested(
                Scope::Members,
                open,
                Tok::RBrack,
            )?));
        }
        let mut all = self.nested(Scope::Emails, open, Tok::RBrack)?;
        // Entra's `emails[type eq "work"].value eq "x"`: one more condition on the same email.
        if let Some(Token {
            tok: Tok::Word(w), ..
        }) = self.peek().cloned()
        {
            if let Some(sub) = w.strip_prefix('.') {
                self.next += 1;
                let attr = self
                    .resource
                    .sub_attr(sub)
                    .ok_or_else(|| self.resource.unknown_sub(&w, "after", "."))?;
                all.push(self.comparison(attr, &w)?);
            }
        }
        Ok(Filter::Email(all))
    }

    /// The `eq value` after an attribute path `written` (as the client wrote it).
    fn comparison(&mut self, attr: Attr, written: &str) -> Result<Filter, ScimError> {
        self.typed_comparison(attr, self.resource.kind(attr), written)
    }

    /// [`Parser::comparison`] with an attribute of type `kind`.
    fn typed_comparison(
        &mut self,
        attr: Attr,
        kind: Option<Type>,
        written: &str,
    ) -> Result<Filter, ScimError> {
        let (pos, found) = self.found();
        match self.advance().map(|t| t.tok) {
            Some(Tok::Word(op)) if op.eq_ignore_ascii_case("eq") => {}
            Some(Tok::Word(op)) if UNSUPPORTED_OPS.iter().any(|u| op.eq_ignore_ascii_case(u)) => {
                return Err(unsupported_op(&op));
            }
            _ => {
                return Err(invalid(format!(
                    "Expected an operator ('eq') after '{written}' at position {pos}, found {found}"
                )))
            }
        }
        let (pos, found) = self.found();
        let value = match self.advance().map(|t| t.tok) {
            Some(Tok::Str(s)) => Value::Str(s),
            Some(Tok::Word(w)) => literal(&w, pos)?,
            _ => {
                return Err(invalid(format!(
                    "Expected a value (a quoted string, true, false, null or a number) after 'eq' \
                     at position {pos}, found {found}"
                )))
            }
        };
        check_type(kind, attr, &value)?;
        check_key_length(attr, &value)?;
        if let (Resource::Group, Attr::DisplayName, Value::Str(s)) = (self.resource, attr, &value) {
            // A group's name claim is its folded name.
            if !keys::fits(s) || !keys::fits(&rules::fold(s)) {
                return Err(invalid(format!(
                    "The value compared with 'displayName' is too long: {} bytes, at most {} \
                     are allowed",
                    s.len(),
                    keys::MAX_KEY_VALUE_BYTES
                )));
            }
        }
        Ok(Filter::Eq(attr, value))
    }
}

/// An unquoted value: `true`, `false`, `null` (any case) or a JSON number.
fn literal(word: &str, pos: usize) -> Result<Value, ScimError> {
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
        "Expected a value (a quoted string, true, false, null or a number) after 'eq' at \
         position {pos}, found '{word}' (strings need double quotes)"
    )))
}

/// The value's type must be the attribute's (`kind`, from its row), or
/// null, which matches an unassigned attribute.
fn check_type(kind: Option<Type>, attr: Attr, value: &Value) -> Result<(), ScimError> {
    let name = attr.name();
    match (kind, value) {
        (_, Value::Null) | (Some(Type::Boolean), Value::Bool(_)) => Ok(()),
        (Some(Type::Boolean), _) => Err(invalid(format!(
            "Attribute '{name}' is a boolean: compare it with true or false (without quotes), \
             not {value}"
        ))),
        (Some(Type::DateTime), Value::Str(s)) if parse_time(s).is_some() => Ok(()),
        (Some(Type::DateTime), _) => Err(invalid(format!(
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
/// [`keys::MAX_KEY_VALUE_BYTES`], so a longer one cannot match anything: it is
/// refused here, before any read.
fn check_key_length(attr: Attr, value: &Value) -> Result<(), ScimError> {
    let Value::Str(s) = value else {
        return Ok(());
    };
    let Some(key) = key_value(attr, s) else {
        return Ok(());
    };
    if keys::fits(s) && keys::fits(&key) {
        return Ok(());
    }
    Err(invalid(format!(
        "The value compared with '{}' is too long: {} bytes ({} once normalized), at most {} \
         are allowed",
        attr.name(),
        s.len(),
        key.len(),
        keys::MAX_KEY_VALUE_BYTES
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::plan::ReadPlan;

    /// The list unknown-attribute errors have always given, byte for byte.
    const SUPPORTED_ATTRS: &str = "userName, externalId, displayName, active, id, name.givenName, \
         name.familyName, emails, emails.value, emails.type, emails.primary, meta.created, \
         meta.lastModified";
    const GROUP_ATTRS: &str =
        "displayName, externalId, id, members, members.value, meta.created, meta.lastModified";

    #[test]
    fn the_supported_lists_come_from_the_tables() {
        assert_eq!(Resource::User.supported(), SUPPORTED_ATTRS);
        assert_eq!(Resource::Group.supported(), GROUP_ATTRS);
    }
    use crate::scim::ScimType;
    use chrono::{TimeZone, Utc};

    fn s(v: &str) -> Value {
        Value::Str(v.into())
    }

    fn eq(attr: Attr, v: Value) -> Filter {
        Filter::Eq(attr, v)
    }

    #[test]
    fn the_canonical_form_ignores_spelling_and_keeps_meaning() {
        for (a, b) in [
            (r#"userName eq "bjensen""#, r#"USERNAME  EQ "bjensen""#),
            (
                r#"userName eq "x" and active eq true"#,
                r#"(urn:ietf:params:scim:schemas:core:2.0:User:userName eq "x") and (active eq true)"#,
            ),
            (
                r#"emails[type eq "work" and value eq "a@b.c"]"#,
                r#"emails[TYPE eq "work" and (value eq "a@b.c")]"#,
            ),
        ] {
            let (pa, pb) = (parse(a).unwrap(), parse(b).unwrap());
            assert_eq!(pa.to_string(), pb.to_string(), "{a} / {b}");
        }
        for (a, b) in [
            (r#"userName eq "x""#, r#"userName eq "X""#),
            (r#"userName eq "x""#, r#"externalId eq "x""#),
            (
                r#"displayName eq "x""#,
                r#"displayName eq "x" and active eq true"#,
            ),
        ] {
            let (pa, pb) = (parse(a).unwrap(), parse(b).unwrap());
            assert_ne!(pa.to_string(), pb.to_string(), "{a} / {b}");
        }
        assert_eq!(
            parse(r#"emails[type eq "work"] and userName eq "x""#)
                .unwrap()
                .to_string(),
            r#"(emails[emails.type eq "work"] and userName eq "x")"#
        );
    }

    #[test]
    fn parses() {
        use Attr::*;
        let cases: Vec<(&str, Filter)> = vec![
            (r#"userName eq "bjensen""#, eq(UserName, s("bjensen"))),
            (r#"USERNAME EQ "BJensen""#, eq(UserName, s("BJensen"))),
            (r#"userName Eq "x""#, eq(UserName, s("x"))),
            (
                r#"urn:ietf:params:scim:schemas:core:2.0:User:userName eq "x""#,
                eq(UserName, s("x")),
            ),
            (
                r#"URN:IETF:PARAMS:SCIM:SCHEMAS:CORE:2.0:USER:name.givenName eq "x""#,
                eq(GivenName, s("x")),
            ),
            (r#"userName eq "a\"b""#, eq(UserName, s("a\"b"))),
            (r#"userName eq "a\\b""#, eq(UserName, s("a\\b"))),
            (r#"userName eq "caf\u00e9""#, eq(UserName, s("café"))),
            (r#"userName eq "\ud83d\ude00/\/""#, eq(UserName, s("😀//"))),
            (r#"userName eq """#, eq(UserName, s(""))),
            (r#"externalId eq "E1""#, eq(ExternalId, s("E1"))),
            (
                r#"displayName eq "Barbara J""#,
                eq(DisplayName, s("Barbara J")),
            ),
            (r#"id eq "42""#, eq(Id, s("42"))),
            ("active eq true", eq(Active, Value::Bool(true))),
            ("active eq FALSE", eq(Active, Value::Bool(false))),
            ("externalId eq null", eq(ExternalId, Value::Null)),
            ("emails.value eq Null", eq(EmailValue, Value::Null)),
            (r#"name.familyName eq "J""#, eq(FamilyName, s("J"))),
            (r#"emails eq "a@b.c""#, eq(EmailValue, s("a@b.c"))),
            (r#"emails.type eq "work""#, eq(EmailType, s("work"))),
            (
                r#"meta.created eq "2026-01-31T12:00:00Z""#,
                eq(MetaCreated, s("2026-01-31T12:00:00Z")),
            ),
            (
                r#"meta.lastModified eq "2026-01-31T12:00:00.5+01:00""#,
                eq(MetaLastModified, s("2026-01-31T12:00:00.5+01:00")),
            ),
            (
                r#"emails[type eq "work" and value eq "a@b.c"]"#,
                Filter::Email(vec![eq(EmailType, s("work")), eq(EmailValue, s("a@b.c"))]),
            ),
            (
                r#"emails[value eq "x"]"#,
                Filter::Email(vec![eq(EmailValue, s("x"))]),
            ),
            (
                r#"emails[type eq "work"].value eq "a@b.c""#,
                Filter::Email(vec![eq(EmailType, s("work")), eq(EmailValue, s("a@b.c"))]),
            ),
            (
                r#"urn:ietf:params:scim:schemas:core:2.0:User:emails[TYPE eq "work"] .Value EQ "a""#,
                Filter::Email(vec![eq(EmailType, s("work")), eq(EmailValue, s("a"))]),
            ),
            (
                r#"emails[(type eq "work") and (value eq "x")]"#,
                Filter::Email(vec![eq(EmailType, s("work")), eq(EmailValue, s("x"))]),
            ),
            (
                r#"(userName eq "a") and (active eq true)"#,
                Filter::And(vec![eq(UserName, s("a")), eq(Active, Value::Bool(true))]),
            ),
            (
                r#"userName eq "a" AND (externalId eq "b" and id eq "1")"#,
                Filter::And(vec![
                    eq(UserName, s("a")),
                    eq(ExternalId, s("b")),
                    eq(Id, s("1")),
                ]),
            ),
            (
                r#"emails[type eq "work"].value eq "a@b.c" and active eq true"#,
                Filter::And(vec![
                    Filter::Email(vec![eq(EmailType, s("work")), eq(EmailValue, s("a@b.c"))]),
                    eq(Active, Value::Bool(true)),
                ]),
            ),
            (r#"((userName eq "a"))"#, eq(UserName, s("a"))),
            (r#"(userName eq "a")"#, eq(UserName, s("a"))),
            (r#"  userName   eq"a"  "#, eq(UserName, s("a"))),
            (
                r#"emails[type eq "work"] and userName eq "u""#,
                Filter::And(vec![
                    Filter::Email(vec![eq(EmailType, s("work"))]),
                    eq(UserName, s("u")),
                ]),
            ),
        ];
        for (input, want) in cases {
            assert_eq!(parse(input), Ok(want), "{input}");
        }
    }

    #[test]
    fn refuses() {
        let only = "only 'eq' and 'and' are supported";
        let long = format!(r#"userName eq "{}""#, "a".repeat(5000));
        let deep_ok = format!(
            "{}userName eq \"a\"{}",
            "(".repeat(MAX_DEPTH),
            ")".repeat(MAX_DEPTH)
        );
        let too_deep = format!(
            "{}userName eq \"a\"{}",
            "(".repeat(MAX_DEPTH + 1),
            ")".repeat(MAX_DEPTH + 1)
        );
        let many_parens = "(".repeat(100_000);
        let many_parens_within_limit = "(".repeat(MAX_LEN);
        assert!(parse(&deep_ok).is_ok());
        let cases: Vec<(&str, String)> = vec![
            ("", "Filter is empty".into()),
            ("   ", "Filter is empty".into()),
            (
                &long,
                "Filter is too long: 5014 characters, at most 4096 are allowed".into(),
            ),
            (
                &many_parens,
                "Filter is too long: 100000 characters, at most 4096 are allowed".into(),
            ),
            (
                &many_parens_within_limit,
                "Filter nests parentheses or brackets deeper than 32 levels (at position 33)"
                    .into(),
            ),
            (
                &too_deep,
                "Filter nests parentheses or brackets deeper than 32 levels (at position 33)"
                    .into(),
            ),
            (
                r#"userName ne "x""#,
                format!("Unsupported filter operator 'ne': {only}"),
            ),
            (
                r#"userName co "x""#,
                format!("Unsupported filter operator 'co': {only}"),
            ),
            (
                r#"userName CO "x""#,
                format!("Unsupported filter operator 'co': {only}"),
            ),
            (
                r#"userName sw "x""#,
                format!("Unsupported filter operator 'sw': {only}"),
            ),
            (
                r#"userName ew "x""#,
                format!("Unsupported filter operator 'ew': {only}"),
            ),
            (
                r#"meta.created gt "x""#,
                format!("Unsupported filter operator 'gt': {only}"),
            ),
            (
                r#"meta.created ge "x""#,
                format!("Unsupported filter operator 'ge': {only}"),
            ),
            (
                r#"meta.created lt "x""#,
                format!("Unsupported filter operator 'lt': {only}"),
            ),
            (
                r#"meta.created le "x""#,
                format!("Unsupported filter operator 'le': {only}"),
            ),
            (
                "externalId pr",
                format!("Unsupported filter operator 'pr': {only}"),
            ),
            (
                r#"userName eq "a" or userName eq "b""#,
                format!("Unsupported filter operator 'or': {only}"),
            ),
            (
                r#"userName eq "a" OR userName eq "b""#,
                format!("Unsupported filter operator 'or': {only}"),
            ),
            (
                r#"not (userName eq "a")"#,
                format!("Unsupported filter operator 'not': {only}"),
            ),
            (
                r#"emails[type eq "work" or value eq "x"]"#,
                format!("Unsupported filter operator 'or': {only}"),
            ),
            (
                r#"emails[value co "x"]"#,
                format!("Unsupported filter operator 'co': {only}"),
            ),
            (
                "userName eq",
                "Expected a value (a quoted string, true, false, null or a number) after 'eq' at \
                 position 12, found end of filter"
                    .into(),
            ),
            (
                "userName eq bjensen",
                "Expected a value (a quoted string, true, false, null or a number) after 'eq' at \
                 position 13, found 'bjensen' (strings need double quotes)"
                    .into(),
            ),
            (
                r#"userName eq "x" junk"#,
                "Expected 'and' or end of filter at position 17, found 'junk'".into(),
            ),
            (
                r#"userName eq "x" and"#,
                "Expected an attribute name or '(' at position 20, found end of filter".into(),
            ),
            (r#"userName eq "x")"#, "Unmatched ')' at position 16".into()),
            (
                r#"userName eq "x" "y""#,
                "Expected 'and' or end of filter at position 17, found the string \"y\"".into(),
            ),
            (
                "userName",
                "Expected an operator ('eq') after 'userName' at position 9, found end of filter"
                    .into(),
            ),
            (
                r#"userName is "x""#,
                "Expected an operator ('eq') after 'userName' at position 10, found 'is'".into(),
            ),
            (
                r#""x" eq userName"#,
                "Expected an attribute name or '(' at position 1, found the string \"x\"".into(),
            ),
            (
                r#"nosuch eq "x""#,
                format!("Unknown filter attribute 'nosuch': supported are {SUPPORTED_ATTRS}"),
            ),
            (
                r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "1""#,
                format!(
                    "Unknown filter attribute \
                     'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber': \
                     supported are {SUPPORTED_ATTRS}"
                ),
            ),
            (
                r#"emails[type eq "work""#,
                "Expected 'and' or ']' at position 22 (to close the '[' at position 7), found \
                 end of filter"
                    .into(),
            ),
            (
                r#"(userName eq "a""#,
                "Expected 'and' or ')' at position 17 (to close the '(' at position 1), found \
                 end of filter"
                    .into(),
            ),
            (
                r#"emails[display eq "x"]"#,
                "Unknown attribute 'display' inside emails[...]: supported are value, type and \
                 primary"
                    .into(),
            ),
            (
                r#"emails[type eq "work"].display eq "x""#,
                "Unknown attribute '.display' after emails[...]: supported are .value, .type and \
                 .primary"
                    .into(),
            ),
            (
                r#"emails[type eq "work"].value"#,
                "Expected an operator ('eq') after '.value' at position 29, found end of filter"
                    .into(),
            ),
            (
                r#"emails[value[type eq "x"]]"#,
                "Unexpected '[' after 'value' at position 13: value paths cannot be nested".into(),
            ),
            (
                r#"userName[value eq "x"]"#,
                "Unexpected '[' after 'userName' at position 9: only emails[...] takes a value \
                 filter"
                    .into(),
            ),
            (
                "active eq \"true\"",
                "Attribute 'active' is a boolean: compare it with true or false (without quotes), \
                 not \"true\""
                    .into(),
            ),
            (
                "active eq 1",
                "Attribute 'active' is a boolean: compare it with true or false (without quotes), \
                 not 1"
                    .into(),
            ),
            (
                "userName eq 42",
                "Attribute 'userName' is a string: compare it with a quoted string, not 42".into(),
            ),
            (
                "id eq 42",
                "Attribute 'id' is a string: compare it with a quoted string, not 42".into(),
            ),
            (
                "emails[type eq true]",
                "Attribute 'emails.type' is a string: compare it with a quoted string, not true"
                    .into(),
            ),
            (
                r#"meta.created eq "yesterday""#,
                "Attribute 'meta.created' is a date-time: compare it with a quoted RFC 3339 \
                 timestamp such as \"2026-01-31T12:00:00Z\", not \"yesterday\""
                    .into(),
            ),
            (
                "userName eq 1x",
                "Invalid number '1x' at position 13".into(),
            ),
            (
                r#"userName eq "abc"#,
                "Unterminated string starting at position 13: expected a closing '\"'".into(),
            ),
            (
                r#"userName eq "abc\"#,
                "Unterminated string starting at position 13: expected a closing '\"'".into(),
            ),
            (
                r#"userName eq "a\qb""#,
                "Invalid escape '\\q' at position 15: strings take JSON escapes \
                 (\\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX)"
                    .into(),
            ),
            (
                r#"userName eq "\u12""#,
                "Invalid \\u escape at position 14: expected four hex digits (a surrogate pair \
                 for characters beyond U+FFFF)"
                    .into(),
            ),
            (
                r#"userName eq "\ud83dx""#,
                "Invalid \\u escape at position 14: expected four hex digits (a surrogate pair \
                 for characters beyond U+FFFF)"
                    .into(),
            ),
            (
                r#"userName eq "\u+123""#,
                "Invalid \\u escape at position 14: expected four hex digits (a surrogate pair \
                 for characters beyond U+FFFF)"
                    .into(),
            ),
            (
                r#"emails[]"#,
                "Expected an attribute name or '(' at position 8, found ']'".into(),
            ),
            (
                "()",
                "Expected an attribute name or '(' at position 2, found ')'".into(),
            ),
        ];
        for (input, want) in cases {
            let err = parse(input).expect_err(input);
            assert_eq!(err.detail, want, "{input}");
            assert_eq!(
                (err.status, err.scim_type),
                (400, Some(ScimType::InvalidFilter))
            );
        }
    }

    fn bjensen() -> User {
        let mut u = User::new("bjensen");
        u.id = 42;
        u.first_name = "Barbara".into();
        u.last_name = "Jensen".into();
        u.email = "bjensen@example.com".into();
        u.external_id = Some("E1".into());
        u.date_joined = Utc.with_ymd_and_hms(2026, 1, 31, 12, 0, 0).unwrap();
        u.last_modified = u.date_joined + chrono::Duration::microseconds(615_000);
        u
    }

    fn bare() -> User {
        let mut u = User::new("Bare");
        u.id = 7;
        u.is_active = false;
        u
    }

    #[test]
    fn matches() {
        let named = || {
            let mut u = bare();
            u.display_name = Some("The Boss".into());
            u
        };
        let cases: Vec<(&str, User, bool)> = vec![
            (r#"userName eq "bjensen""#, bjensen(), true),
            (r#"USERNAME EQ "BJensen""#, bjensen(), true),
            (r#"userName eq "bjense""#, bjensen(), false),
            (r#"userName eq null"#, bjensen(), false),
            (r#"emails.value eq "BJENSEN@example.COM""#, bjensen(), true),
            (r#"emails eq "bjensen@example.com""#, bjensen(), true),
            (r#"emails.value eq "other@example.com""#, bjensen(), false),
            (r#"emails.value eq null"#, bjensen(), false),
            (r#"emails.value eq null"#, bare(), true),
            (r#"emails.type eq "WORK""#, bjensen(), true),
            (r#"emails.type eq "work""#, bare(), false),
            (r#"emails.type eq null"#, bare(), true),
            (
                r#"emails[type eq "work" and value eq "bjensen@example.com"]"#,
                bjensen(),
                true,
            ),
            (
                r#"emails[type eq "home" and value eq "bjensen@example.com"]"#,
                bjensen(),
                false,
            ),
            (
                r#"emails[type eq "work"].value eq "BJensen@Example.com""#,
                bjensen(),
                true,
            ),
            (
                r#"emails[type eq "work"].value eq "x@example.com""#,
                bjensen(),
                false,
            ),
            (r#"emails[type eq "work"]"#, bare(), false),
            (r#"emails[value eq null]"#, bare(), false),
            (r#"externalId eq "E1""#, bjensen(), true),
            (r#"externalId eq "e1""#, bjensen(), false),
            (r#"externalId eq null"#, bjensen(), false),
            (r#"externalId eq null"#, bare(), true),
            (r#"id eq "42""#, bjensen(), true),
            (r#"id eq "042""#, bjensen(), false),
            (r#"id eq "7""#, bjensen(), false),
            ("active eq true", bjensen(), true),
            ("active eq false", bjensen(), false),
            ("active eq false", bare(), true),
            ("active eq null", bare(), false),
            (
                r#"(userName eq "bjensen") and (active eq true)"#,
                bjensen(),
                true,
            ),
            (
                r#"(userName eq "bjensen") and (active eq false)"#,
                bjensen(),
                false,
            ),
            (r#"displayName eq "Barbara Jensen""#, bjensen(), true),
            (r#"displayName eq "barbara jensen""#, bjensen(), false),
            (r#"displayName eq "Bare""#, bare(), true),
            (r#"displayName eq "The Boss""#, named(), true),
            (r#"displayName eq "Bare""#, named(), false),
            (r#"displayName eq null"#, bare(), false),
            (r#"name.givenName eq "Barbara""#, bjensen(), true),
            (r#"name.givenName eq "barbara""#, bjensen(), false),
            (r#"name.familyName eq "Jensen""#, bjensen(), true),
            (r#"name.familyName eq null"#, bare(), true),
            (r#"meta.created eq "2026-01-31T12:00:00Z""#, bjensen(), true),
            (
                r#"meta.created eq "2026-01-31T13:00:00+01:00""#,
                bjensen(),
                true,
            ),
            (
                r#"meta.created eq "2026-01-31T12:00:01Z""#,
                bjensen(),
                false,
            ),
            (
                r#"meta.lastModified eq "2026-01-31T12:00:00.615Z""#,
                bjensen(),
                true,
            ),
            (
                r#"meta.lastModified eq "2026-01-31T12:00:00Z""#,
                bjensen(),
                false,
            ),
            (r#"meta.created eq null"#, bjensen(), false),
        ];
        for (input, user, want) in cases {
            let filter = parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(filter.matches(&user), want, "{input} on {}", user.username);
        }
    }

    #[test]
    fn lookups() {
        use Attr::*;
        let cases: Vec<(&str, Option<(Attr, &str)>)> = vec![
            (r#"userName eq "BJensen""#, Some((UserName, "BJensen"))),
            (r#"externalId eq "E1""#, Some((ExternalId, "E1"))),
            (r#"id eq "42""#, Some((Id, "42"))),
            (r#"emails.value eq "a@b.c""#, Some((EmailValue, "a@b.c"))),
            (r#"emails eq "a@b.c""#, Some((EmailValue, "a@b.c"))),
            (
                r#"emails[type eq "work" and value eq "a@b.c"]"#,
                Some((EmailValue, "a@b.c")),
            ),
            (
                r#"emails[type eq "work"].value eq "a@b.c""#,
                Some((EmailValue, "a@b.c")),
            ),
            (
                r#"active eq true and externalId eq "E1""#,
                Some((ExternalId, "E1")),
            ),
            (
                r#"(active eq true) and (userName eq "u" and id eq "1")"#,
                Some((UserName, "u")),
            ),
            (r#"emails[type eq "work"]"#, None),
            (r#"emails.type eq "work""#, None),
            (r#"userName eq null"#, None),
            (r#"displayName eq "x""#, None),
            (r#"name.givenName eq "x""#, None),
            ("active eq true", None),
        ];
        for (input, want) in cases {
            let filter = parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            let want = want.map(|(a, v)| (a, v.to_string()));
            assert_eq!(lookup(&filter), want, "{input}");
        }
        // Ids are canonical decimals: any other string names nobody, and
        // so does an `and` of equalities no user can hold at once.
        for input in [
            r#"id eq "abc""#,
            r#"id eq "007""#,
            r#"id eq "1" and id eq "2""#,
            r#"userName eq "a" and userName eq "b""#,
            r#"id eq "abc" and userName eq "u""#,
        ] {
            let filter = parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(ReadPlan::of(&filter.to_query()), nobody(), "{input}");
        }
        // userName and emails are caseless, so these may be one user...
        let filter = parse(r#"userName eq "STRASSE" and userName eq "straße""#).unwrap();
        assert_eq!(lookup(&filter), Some((UserName, "STRASSE".to_string())));
        // ...externalId is case-exact, so these are nobody.
        let filter = parse(r#"externalId eq "E1" and externalId eq "e1""#).unwrap();
        assert_eq!(ReadPlan::of(&filter.to_query()), nobody());
    }

    fn nobody() -> ReadPlan {
        ReadPlan::Keys {
            ids: Default::default(),
            claims: Default::default(),
        }
    }

    /// The one key the planner reads a filter's user by, as the attribute
    /// and value the filter compared it with.
    fn lookup(filter: &Filter) -> Option<(Attr, String)> {
        let ReadPlan::Keys { ids, claims } = ReadPlan::of(&filter.to_query()) else {
            return None;
        };
        let by_id = ids.iter().map(|id| (Attr::Id, id.to_string()));
        let by_claim = claims.iter().map(|(claim, value)| {
            let attr = match claim {
                Claim::Username => Attr::UserName,
                Claim::Email => Attr::EmailValue,
                Claim::ExternalId => Attr::ExternalId,
            };
            (attr, value.clone())
        });
        let keys: Vec<(Attr, String)> = by_id.chain(by_claim).collect();
        match keys.as_slice() {
            [one] => Some(one.clone()),
            _ => None,
        }
    }

    #[test]
    fn caseless_attributes_compare_folded() {
        let mut u = bjensen();
        u.username = "straße".into();
        u.email = "straße@example.com".into();
        let cases = [
            (r#"userName eq "STRASSE""#, true),
            (r#"userName eq "strasse""#, true),
            (r#"userName eq "\u212Aelvin""#, false),
            (r#"emails.value eq "STRASSE@EXAMPLE.COM""#, true),
            (
                r#"emails[type eq "WORK" and value eq "Strasse@example.com"]"#,
                true,
            ),
            // Case-exact attributes are still compared as written.
            (r#"externalId eq "e1""#, false),
            (r#"name.familyName eq "JENSEN""#, false),
        ];
        for (input, want) in cases {
            let filter = parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(filter.matches(&u), want, "{input}");
        }
        let mut kelvin = bjensen();
        kelvin.username = "kelvin".into();
        assert!(parse(r#"userName eq "\u212Aelvin""#)
            .unwrap()
            .matches(&kelvin));
    }

    #[test]
    fn values_too_long_for_a_key_are_refused() {
        let max = keys::MAX_KEY_VALUE_BYTES;
        let fits = "a".repeat(max);
        let over = "a".repeat(max + 1);
        // 600 bytes as written, 6,600 folded.
        let expands = "\u{FDFA}".repeat(200);
        for attr in ["userName", "emails", "emails.value", "externalId"] {
            assert!(parse(&format!(r#"{attr} eq "{fits}""#)).is_ok(), "{attr}");
            let err = parse(&format!(r#"{attr} eq "{over}""#)).unwrap_err();
            assert_eq!(err.scim_type, Some(ScimType::InvalidFilter), "{attr}");
            assert!(err.detail.contains("too long"), "{}", err.detail);
        }
        let err = parse(&format!(r#"emails[value eq "{over}"]"#)).unwrap_err();
        assert_eq!(err.scim_type, Some(ScimType::InvalidFilter));
        let err = parse(&format!(r#"userName eq "{expands}""#)).unwrap_err();
        assert_eq!(
            err.detail,
            format!(
                "The value compared with 'userName' is too long: 600 bytes (6600 once \
                 normalized), at most {max} are allowed"
            )
        );
        // externalId keys are case-exact: no folding, so no expansion either.
        assert!(parse(&format!(r#"externalId eq "{expands}""#)).is_ok());
        // Attributes that never become keys take any length the filter allows.
        assert!(parse(&format!(r#"displayName eq "{over}""#)).is_ok());
    }

    /// PATCH value paths on any multi-valued attribute (`rfc`): parsed with
    /// the filter grammar into the shared `Filter`, matched per value.
    #[test]
    fn value_paths_of_any_multi_valued_attribute() {
        use crate::domain::profile::Profile;
        let row = |name| schema::find_in(USER_ATTRIBUTES, Profile::Rfc, name).unwrap();
        let phones = row("phoneNumbers");
        let sub = |n| Attr::Sub("phoneNumbers", n);
        let cases: Vec<(&str, Vec<Filter>)> = vec![
            (r#"type eq "fax""#, vec![eq(sub("type"), s("fax"))]),
            (
                r#"TYPE eq "work" and (primary eq true)"#,
                vec![
                    eq(sub("type"), s("work")),
                    eq(sub("primary"), Value::Bool(true)),
                ],
            ),
            (r#"display eq null"#, vec![eq(sub("display"), Value::Null)]),
        ];
        for (text, want) in cases {
            assert_eq!(parse_values_filter(phones, text), Ok(want), "{text}");
        }
        let refused = [
            ("", "The value filter inside phoneNumbers[...] is empty"),
            (r#"type ne "fax""#, "Unsupported filter operator 'ne': only 'eq' and 'and' are supported"),
            (r#"type eq "a" or type eq "b""#, "Unsupported filter operator 'or': only 'eq' and 'and' are supported"),
            (r#"kind eq "fax""#, "Unknown attribute 'kind' inside phoneNumbers[...]: supported are value, display, type and primary"),
            (r#"primary eq "yes""#, "Attribute 'phoneNumbers.primary' is a boolean: compare it with true or false (without quotes), not \"yes\""),
            (r#"type eq "fax" "x""#, "Expected 'and' or the end of phoneNumbers[...] at position 15, found the string \"x\""),
        ];
        for (text, detail) in refused {
            assert_eq!(
                parse_values_filter(phones, text),
                Err(invalid(detail)),
                "{text}"
            );
        }
        let addresses = row("addresses");
        let conds =
            parse_values_filter(addresses, r#"type eq "WORK" and locality eq "oslo""#).unwrap();
        for (value, selected) in [
            (
                serde_json::json!({"type": "work", "locality": "Oslo"}),
                true,
            ),
            (
                serde_json::json!({"type": "home", "locality": "Oslo"}),
                false,
            ),
            (serde_json::json!({"type": "work"}), false),
        ] {
            assert_eq!(
                matches_value(addresses, &conds, &value),
                selected,
                "{value}"
            );
        }
        let conds = parse_values_filter(phones, "primary eq true and display eq null").unwrap();
        assert!(matches_value(
            phones,
            &conds,
            &serde_json::json!({"value": "1", "primary": true})
        ));
        assert!(!matches_value(
            phones,
            &conds,
            &serde_json::json!({"value": "1", "primary": "true"})
        ));
    }
}
