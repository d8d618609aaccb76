//! CVAT's `JsonLogicFilter` (`?filter=`), parsed into a typed [`Rule`].
//!
//! The grammar and the 400 messages follow `cvat/apps/engine/filters.py`
//! (`JsonLogicFilter._build_Q`). Inputs that make CVAT crash with a 500 (a
//! comparison without a `var`, values of the wrong type, a nested non-object)
//! get a 400 message of our own here, always starting with `filter: `.
//!
//! One grammar serves every list: a list names its filter fields as a
//! [`Term`] type (the users' [`Field`], the organizations' and memberships'
//! own), and a rule over them is a `Rule<T>`.
use std::cmp::Ordering;
use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::domain::query::{Case, Claim, Field, FieldValue, UserFields, UserQuery};

/// Longest `filter` accepted, in characters.
pub const MAX_FILTER_CHARS: usize = 10_000;
/// Deepest nesting of rules accepted (the top-level rule is level 1).
pub const MAX_DEPTH: usize = 32;

/// A literal on the right-hand side of a comparison, already checked against
/// the type of the field it is compared with.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(String),
    /// Wide enough for any JSON integer serde_json yields (i64 and u64).
    Int(i128),
    Bool(bool),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Comparison {
    fn holds(self, ord: Ordering) -> bool {
        match self {
            Comparison::Eq => ord == Ordering::Equal,
            Comparison::Lt => ord == Ordering::Less,
            Comparison::Le => ord != Ordering::Greater,
            Comparison::Gt => ord == Ordering::Greater,
            Comparison::Ge => ord != Ordering::Less,
        }
    }
}

/// What a term's values are, which decides the literals it is compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    Int,
    Bool,
}

/// The filter fields of one list: what `{"var": "<name>"}` may name.
pub trait Term: Copy + PartialEq + fmt::Debug {
    fn parse(name: &str) -> Option<Self>;
    fn name(self) -> &'static str;
    fn kind(self) -> Kind;
}

/// The users' filter fields.
impl Term for Field {
    fn parse(name: &str) -> Option<Field> {
        Field::parse(name)
    }

    fn name(self) -> &'static str {
        Field::name(self)
    }

    fn kind(self) -> Kind {
        match self {
            Field::Id => Kind::Int,
            Field::IsActive => Kind::Bool,
            Field::Username | Field::FirstName | Field::LastName => Kind::Text,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Rule<T = Field> {
    /// `{"and": [r, ...]}` (non-empty)
    And(Vec<Rule<T>>),
    /// `{"or": [r, ...]}` (non-empty)
    Or(Vec<Rule<T>>),
    /// `{"!": r}`; `{"!!": r}` parses to `r` itself, as in CVAT.
    Not(Box<Rule<T>>),
    /// `{"var": f}`: `f IS NOT NULL` (true for every user: no user field is
    /// nullable).
    NotNull(T),
    /// `{"==": [{"var": f}, null]}`: `f IS NULL` (false for every user).
    IsNull(T),
    /// `{"<": [{"var": f}, v]}` and `==`, `<=`, `>`, `>=`.
    Compare(T, Comparison, Value),
    /// `{"<=": [low, {"var": f}, high]}`: `low <= f <= high`.
    Between(T, Value, Value),
    /// `{"in": [{"var": f}, [v, ...]]}`; `null` items are dropped, as Django does.
    In(T, Vec<Value>),
    /// `{"in": ["sub", {"var": f}]}`: case-sensitive substring.
    Contains(T, String),
}

impl<T: Term> Rule<T> {
    /// Whether the rule holds for a record whose terms have the values
    /// `value` gives, `None` being SQL's NULL: a comparison with NULL is
    /// false (and its negation true), as Django's filters are.
    pub fn holds<'a>(&self, value: &dyn Fn(T) -> Option<FieldValue<'a>>) -> bool {
        match self {
            Rule::And(rules) => rules.iter().all(|r| r.holds(value)),
            Rule::Or(rules) => rules.iter().any(|r| r.holds(value)),
            Rule::Not(rule) => !rule.holds(value),
            Rule::NotNull(term) => value(*term).is_some(),
            Rule::IsNull(term) => value(*term).is_none(),
            Rule::Compare(term, op, literal) => value(*term)
                .and_then(|v| compare(v, literal))
                .is_some_and(|ord| op.holds(ord)),
            Rule::Between(term, low, high) => value(*term).is_some_and(|v| {
                compare(v, low).is_some_and(|o| o != Ordering::Less)
                    && compare(v, high).is_some_and(|o| o != Ordering::Greater)
            }),
            Rule::In(term, literals) => value(*term).is_some_and(|v| {
                literals
                    .iter()
                    .any(|x| compare(v, x) == Some(Ordering::Equal))
            }),
            Rule::Contains(term, sub) => {
                matches!(value(*term), Some(FieldValue::Str(s)) if s.contains(sub.as_str()))
            }
        }
    }

    /// Whether the rule names `term` anywhere: a list that reads a term's
    /// values only when it must asks this first.
    pub fn mentions(&self, term: T) -> bool {
        match self {
            Rule::And(rules) | Rule::Or(rules) => rules.iter().any(|r| r.mentions(term)),
            Rule::Not(rule) => rule.mentions(term),
            Rule::NotNull(t)
            | Rule::IsNull(t)
            | Rule::Compare(t, ..)
            | Rule::Between(t, ..)
            | Rule::In(t, _)
            | Rule::Contains(t, _) => *t == term,
        }
    }
}

impl Rule {
    pub fn matches(&self, user: &impl UserFields) -> bool {
        self.holds(&|field| Some(user.field(field)))
    }
}

impl Rule {
    /// The rule as a [`UserQuery`], for planning reads: comparisons on `id`
    /// and equalities on `username` (exact, like Django's `exact`) pin
    /// users; any other rule is a residual over the indexed fields.
    pub fn to_query(&self) -> UserQuery {
        let residual = UserQuery::Residual { indexed: true };
        match self {
            Rule::Compare(Field::Id, Comparison::Eq, Value::Int(v)) => {
                UserQuery::IdIn(u64::try_from(*v).into_iter().collect())
            }
            Rule::Compare(Field::Id, op, Value::Int(v)) => {
                let (low, high) = match op {
                    Comparison::Lt => (None, Some(v - 1)),
                    Comparison::Le => (None, Some(*v)),
                    Comparison::Gt => (Some(v + 1), None),
                    Comparison::Ge => (Some(*v), None),
                    Comparison::Eq => (Some(*v), Some(*v)),
                };
                UserQuery::IdBetween(low, high)
            }
            Rule::Between(Field::Id, Value::Int(low), Value::Int(high)) => {
                UserQuery::IdBetween(Some(*low), Some(*high))
            }
            Rule::In(Field::Id, values) => UserQuery::IdIn(
                values
                    .iter()
                    .filter_map(|v| match v {
                        Value::Int(i) => u64::try_from(*i).ok(),
                        _ => None,
                    })
                    .collect(),
            ),
            Rule::Compare(Field::Username, Comparison::Eq, Value::Str(name)) => {
                UserQuery::ClaimIn(Claim::Username, Case::Exact, vec![name.clone()])
            }
            Rule::In(Field::Username, values) => UserQuery::ClaimIn(
                Claim::Username,
                Case::Exact,
                values
                    .iter()
                    .filter_map(|v| match v {
                        Value::Str(s) => Some(s.clone()),
                        _ => None,
                    })
                    .collect(),
            ),
            // `IS NULL` on a field that is never null.
            Rule::IsNull(_) => UserQuery::Nobody,
            Rule::And(rules) => UserQuery::And(rules.iter().map(Rule::to_query).collect()),
            Rule::Or(rules) => UserQuery::Or(rules.iter().map(Rule::to_query).collect()),
            _ => residual,
        }
    }
}

/// `None` when the types differ (the parser never lets that happen).
fn compare(field: FieldValue<'_>, value: &Value) -> Option<Ordering> {
    match (field, value) {
        (FieldValue::Str(a), Value::Str(b)) => Some(a.cmp(b.as_str())),
        (FieldValue::Int(a), Value::Int(b)) => Some(i128::from(a).cmp(b)),
        (FieldValue::Bool(a), Value::Bool(b)) => Some(a.cmp(b)),
        _ => None,
    }
}

/// Parses a non-empty `filter` query value over the users' fields. `Err` is
/// the single message of the 400 response array.
pub fn parse(filter: &str) -> Result<Rule, String> {
    parse_terms(filter)
}

/// [`parse`] over the filter fields `T` of another list.
pub fn parse_terms<T: Term>(filter: &str) -> Result<Rule<T>, String> {
    if filter.chars().count() > MAX_FILTER_CHARS {
        return Err(format!(
            "filter: expression is too long (more than {MAX_FILTER_CHARS} characters)"
        ));
    }
    let json: Json = serde_json::from_str(filter)
        .map_err(|e| format!("filter: can't parse filter expression: {e}"))?;
    if !json.truthy() {
        return Err("filter shouldn't be empty".to_string());
    }
    build(&json, None, 1).map_err(|m| format!("filter: {m}"))
}

/// `_build_Q`: `parent_op` is the operator whose argument `rule` is (None at
/// the top level); it only changes the wording of the messages.
fn build<T: Term>(rule: &Json, parent_op: Option<&str>, depth: usize) -> Result<Rule<T>, String> {
    if depth > MAX_DEPTH {
        return Err(format!(
            "expression is nested too deeply (more than {MAX_DEPTH} levels)"
        ));
    }
    let (op, args) = match rule {
        Json::Dict(entries) if !entries.is_empty() => (entries[0].0.as_str(), &entries[0].1),
        // CVAT means to say this for nested rules too, but crashes (NameError on `op`).
        _ => return Err(expected_non_empty(rule, "dict", parent_op)),
    };
    match (op, args) {
        ("and" | "or", Json::List(items)) if !items.is_empty() => {
            let rules = items
                .iter()
                .map(|item| build(item, Some(op), depth + 1))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(if op == "and" {
                Rule::And(rules)
            } else {
                Rule::Or(rules)
            })
        }
        ("and" | "or", _) => Err(expected_non_empty(args, "list", parent_op.and(Some(op)))),
        ("!", _) => Ok(Rule::Not(Box::new(build(args, Some(op), depth + 1)?))),
        ("!!", _) => build(args, Some(op), depth + 1),
        // CVAT does not check this term against the filter fields (it becomes
        // a 500 for a non-field); we accept only our fields.
        ("var", _) => Ok(Rule::NotNull(term(args)?)),
        ("==" | "<" | "<=" | ">" | ">=", Json::List(a)) if a.len() == 2 => {
            let field = var_of(&a[0], op, "first")?;
            let cmp = match op {
                "==" => Comparison::Eq,
                "<" => Comparison::Lt,
                "<=" => Comparison::Le,
                ">" => Comparison::Gt,
                _ => Comparison::Ge,
            };
            match &a[1] {
                Json::Null if cmp == Comparison::Eq => Ok(Rule::IsNull(field)),
                v => Ok(Rule::Compare(field, cmp, typed(field, v)?)),
            }
        }
        ("<=", Json::List(a)) if a.len() == 3 => {
            let field = var_of(&a[1], op, "second")?;
            Ok(Rule::Between(
                field,
                typed(field, &a[0])?,
                typed(field, &a[2])?,
            ))
        }
        // `len(args) == 3` holds for these in Python, then `_validate_arg(args, list)` fails.
        ("<=", Json::Str(s)) if s.chars().count() == 3 => {
            Err(expected_non_empty(args, "list", parent_op.and(Some(op))))
        }
        ("<=", Json::Dict(d)) if d.len() == 3 => {
            Err(expected_non_empty(args, "list", parent_op.and(Some(op))))
        }
        // Like CVAT, arguments after the second are ignored.
        ("in", Json::List(a)) if a.len() >= 2 => match &a[0] {
            Json::Dict(_) => {
                let field = var_of(&a[0], op, "first")?;
                let Json::List(items) = &a[1] else {
                    return Err(format!(
                        "operation 'in' requires a list of values as its second argument, got '{}' of type '{}'",
                        a[1].py_str(),
                        a[1].type_name()
                    ));
                };
                let values = items
                    .iter()
                    .filter(|v| !matches!(v, Json::Null))
                    .map(|v| typed(field, v))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Rule::In(field, values))
            }
            sub => {
                let field: T = var_of(&a[1], op, "second")?;
                if field.kind() != Kind::Text {
                    return Err(format!(
                        "term '{}' does not support substring matching",
                        field.name()
                    ));
                }
                match sub {
                    Json::Str(text) => Ok(Rule::Contains(field, text.clone())),
                    _ => Err(wrong_type(field, sub)),
                }
            }
        },
        _ => Err(format!(
            "operation '{op}' with arguments '{}' is not supported",
            args.py_str()
        )),
    }
}

/// `_validate_arg`'s message; `op` is the operator being built, given only
/// for a nested rule (CVAT words the top level differently).
fn expected_non_empty(arg: &Json, kind: &str, op: Option<&str>) -> String {
    let got = format!("got '{}' of type '{}'", arg.py_str(), arg.type_name());
    match op {
        Some(op) => format!("operation '{op}' requires a non-empty {kind} argument, {got}"),
        None => format!("expected a non-empty {kind} value, {got}"),
    }
}

/// `args[i]["var"]` followed by the lookup of that term.
fn var_of<T: Term>(arg: &Json, op: &str, position: &str) -> Result<T, String> {
    match arg.get("var") {
        Some(t) => term(t),
        None => Err(format!(
            "operation '{op}' requires {{'var': <term>}} as its {position} argument, got '{}'",
            arg.py_str()
        )),
    }
}

fn term<T: Term>(t: &Json) -> Result<T, String> {
    match t {
        Json::Str(name) => T::parse(name),
        _ => None,
    }
    .ok_or_else(|| format!("term '{}' is not supported", t.py_str()))
}

/// Values must have the field's own type: Django would coerce some (`"3"` for
/// `id`) and crash on others; we accept neither.
fn typed<T: Term>(field: T, v: &Json) -> Result<Value, String> {
    match (field.kind(), v) {
        (Kind::Int, Json::Int(i)) => Ok(Value::Int(*i)),
        (Kind::Bool, Json::Bool(b)) => Ok(Value::Bool(*b)),
        (Kind::Text, Json::Str(s)) => Ok(Value::Str(s.clone())),
        _ => Err(wrong_type(field, v)),
    }
}

fn wrong_type<T: Term>(field: T, v: &Json) -> String {
    let wanted = match field.kind() {
        Kind::Int => "an integer",
        Kind::Bool => "a boolean",
        Kind::Text => "a string",
    };
    format!(
        "term '{}' requires {wanted} value, got '{}' of type '{}'",
        field.name(),
        v.py_str(),
        v.type_name()
    )
}

/// A JSON document as Python's `json.loads` sees it: objects keep their key
/// order (only the first key of a rule counts) and a repeated key keeps its
/// first position with its last value, like a `dict`. Our own type, so that
/// neither depends on serde_json's `preserve_order` feature.
#[derive(Debug, Clone, PartialEq)]
enum Json {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    List(Vec<Json>),
    Dict(Vec<(String, Json)>),
}

impl Json {
    fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Dict(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// Python's `bool(value)`.
    fn truthy(&self) -> bool {
        match self {
            Json::Null => false,
            Json::Bool(b) => *b,
            Json::Int(i) => *i != 0,
            Json::Float(f) => *f != 0.0,
            Json::Str(s) => !s.is_empty(),
            Json::List(l) => !l.is_empty(),
            Json::Dict(d) => !d.is_empty(),
        }
    }

    /// Python's `type(value).__name__`.
    fn type_name(&self) -> &'static str {
        match self {
            Json::Null => "NoneType",
            Json::Bool(_) => "bool",
            Json::Int(_) => "int",
            Json::Float(_) => "float",
            Json::Str(_) => "str",
            Json::List(_) => "list",
            Json::Dict(_) => "dict",
        }
    }

    /// Python's `str(value)`, as an f-string renders it.
    fn py_str(&self) -> String {
        match self {
            Json::Str(s) => s.clone(),
            _ => {
                let mut out = String::new();
                self.write_repr(&mut out);
                out
            }
        }
    }

    /// Python's `repr(value)`. Recursion is bounded by serde_json's nesting limit.
    fn write_repr(&self, out: &mut String) {
        match self {
            Json::Null => out.push_str("None"),
            Json::Bool(true) => out.push_str("True"),
            Json::Bool(false) => out.push_str("False"),
            Json::Int(i) => out.push_str(&i.to_string()),
            Json::Float(f) => out.push_str(&py_float_repr(*f)),
            Json::Str(s) => py_str_repr(s, out),
            Json::List(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    item.write_repr(out);
                }
                out.push(']');
            }
            Json::Dict(entries) => {
                out.push('{');
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    py_str_repr(k, out);
                    out.push_str(": ");
                    v.write_repr(out);
                }
                out.push('}');
            }
        }
    }
}

/// Python's `repr(float)`: shortest round-trip digits, exponent form outside 1e-4..1e16.
fn py_float_repr(f: f64) -> String {
    if f.is_nan() {
        return "nan".to_string();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf" } else { "-inf" }.to_string();
    }
    let sci = format!("{f:e}"); // e.g. "-1.25e-7", shortest round-trip digits
    let Some((mantissa, exp)) = sci.split_once('e') else {
        return sci;
    };
    let Ok(exp) = exp.parse::<i32>() else {
        return sci;
    };
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    // value = 0.DIGITS * 10^point
    let point = exp + 1;
    let body = if !(-4 < point && point <= 16) {
        let rest = &digits[1..];
        let exp_sign = if exp < 0 { '-' } else { '+' };
        let frac = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        format!("{}{frac}e{exp_sign}{:02}", &digits[..1], exp.abs())
    } else if point <= 0 {
        format!("0.{}{digits}", "0".repeat(point.unsigned_abs() as usize))
    } else if point as usize >= digits.len() {
        format!("{digits}{}.0", "0".repeat(point as usize - digits.len()))
    } else {
        let (int, frac) = digits.split_at(point as usize);
        format!("{int}.{frac}")
    };
    format!("{sign}{body}")
}

/// Python's `repr(str)`: single quotes unless the text has `'` and no `"`.
fn py_str_repr(s: &str, out: &mut String) {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if !py_printable(c) => {
                let n = c as u32;
                if n <= 0xff {
                    out.push_str(&format!("\\x{n:02x}"));
                } else if n <= 0xffff {
                    out.push_str(&format!("\\u{n:04x}"));
                } else {
                    out.push_str(&format!("\\U{n:08x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push(quote);
}

/// Approximates `str.isprintable()` without Unicode tables: controls,
/// separators other than the space and the common format characters.
fn py_printable(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    !(c.is_control()
        || c.is_whitespace()
        || matches!(c, '\u{ad}' | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2064}' | '\u{feff}'))
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }

    fn visit_bool<E>(self, v: bool) -> Result<Json, E> {
        Ok(Json::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Json, E> {
        Ok(Json::Int(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Json, E> {
        Ok(Json::Int(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Json, E> {
        Ok(Json::Float(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Json, E> {
        Ok(Json::Str(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Json, E> {
        Ok(Json::Str(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Json::List(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut entries: Vec<(String, Json)> = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            let value: Json = map.next_value()?;
            match entries.iter_mut().find(|(k, _)| *k == key) {
                Some(entry) => entry.1 = value,
                None => entries.push((key, value)),
            }
        }
        Ok(Json::Dict(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Comparison::*;
    use Field::*;

    fn s(v: &str) -> Value {
        Value::Str(v.to_string())
    }

    #[test]
    fn parses_supported_rules() {
        let cases: Vec<(&str, Rule)> = vec![
            (
                r#"{"==":[{"var":"username"},"user2"]}"#,
                Rule::Compare(Username, Eq, s("user2")),
            ),
            (
                r#"{"<":[{"var":"id"},5]}"#,
                Rule::Compare(Id, Lt, Value::Int(5)),
            ),
            (
                r#"{"<=":[{"var":"id"},-5]}"#,
                Rule::Compare(Id, Le, Value::Int(-5)),
            ),
            (
                r#"{">":[{"var":"first_name"},"B"]}"#,
                Rule::Compare(FirstName, Gt, s("B")),
            ),
            (
                r#"{">=":[{"var":"is_active"},true]}"#,
                Rule::Compare(IsActive, Ge, Value::Bool(true)),
            ),
            (
                r#"{"==":[{"var":"last_name"},null]}"#,
                Rule::IsNull(LastName),
            ),
            (
                r#"{"==":[{"x":1,"var":"id"},3]}"#,
                Rule::Compare(Id, Eq, Value::Int(3)),
            ),
            (
                r#"{"<=":[2,{"var":"id"},4]}"#,
                Rule::Between(Id, Value::Int(2), Value::Int(4)),
            ),
            (
                r#"{"in":[{"var":"id"},[1,null,3]]}"#,
                Rule::In(Id, vec![Value::Int(1), Value::Int(3)]),
            ),
            (
                r#"{"in":[{"var":"username"},[]]}"#,
                Rule::In(Username, vec![]),
            ),
            (
                r#"{"in":[{"var":"id"},[1],"ignored"]}"#,
                Rule::In(Id, vec![Value::Int(1)]),
            ),
            (
                r#"{"in":["ser",{"var":"username"}]}"#,
                Rule::Contains(Username, "ser".into()),
            ),
            (r#"{"var":"id"}"#, Rule::NotNull(Id)),
            (
                r#"{"!":{"var":"id"}}"#,
                Rule::Not(Box::new(Rule::NotNull(Id))),
            ),
            (r#"{"!!":{"var":"is_active"}}"#, Rule::NotNull(IsActive)),
            (
                r#"{"and":[{">=":[{"var":"id"},3]},{"<":[{"var":"id"},5]}]}"#,
                Rule::And(vec![
                    Rule::Compare(Id, Ge, Value::Int(3)),
                    Rule::Compare(Id, Lt, Value::Int(5)),
                ]),
            ),
            (
                r#"{"or":[{"var":"id"}]}"#,
                Rule::Or(vec![Rule::NotNull(Id)]),
            ),
            // only the first key counts
            (r#"{"var":"id","and":[]}"#, Rule::NotNull(Id)),
            // a repeated key keeps its first place and its last value, like a Python dict
            (
                r#"{"var":"id","!":1,"var":"username"}"#,
                Rule::NotNull(Username),
            ),
            (r#" {"var":"id"} "#, Rule::NotNull(Id)),
        ];
        for (input, want) in cases {
            assert_eq!(parse(input), Ok(want), "{input}");
        }
    }

    #[test]
    fn rejects_with_cvat_messages() {
        let cases: Vec<(&str, &str)> = vec![
            // CVAT's own 400s
            ("{}", "filter shouldn't be empty"),
            ("[]", "filter shouldn't be empty"),
            ("0", "filter shouldn't be empty"),
            ("null", "filter shouldn't be empty"),
            ("false", "filter shouldn't be empty"),
            (r#""""#, "filter shouldn't be empty"),
            ("[1]", "filter: expected a non-empty dict value, got '[1]' of type 'list'"),
            ("5", "filter: expected a non-empty dict value, got '5' of type 'int'"),
            ("1.5", "filter: expected a non-empty dict value, got '1.5' of type 'float'"),
            ("true", "filter: expected a non-empty dict value, got 'True' of type 'bool'"),
            (r#""abc""#, "filter: expected a non-empty dict value, got 'abc' of type 'str'"),
            (r#"["a",{"b":null}]"#, "filter: expected a non-empty dict value, got '['a', {'b': None}]' of type 'list'"),
            (r#"{"and":[]}"#, "filter: expected a non-empty list value, got '[]' of type 'list'"),
            (r#"{"or":{"var":"id"}}"#, "filter: expected a non-empty list value, got '{'var': 'id'}' of type 'dict'"),
            (r#"{"or":[{"and":[]}]}"#, "filter: operation 'and' requires a non-empty list argument, got '[]' of type 'list'"),
            (r#"{"!":{"or":"x"}}"#, "filter: operation 'or' requires a non-empty list argument, got 'x' of type 'str'"),
            (r#"{"==":[{"var":"email"},"a@b.c"]}"#, "filter: term 'email' is not supported"),
            (r#"{"in":["a",{"var":"password"}]}"#, "filter: term 'password' is not supported"),
            (r#"{"<=":[1,{"var":"email"},2]}"#, "filter: term 'email' is not supported"),
            (r#"{"==":[{"var":5},1]}"#, "filter: term '5' is not supported"),
            (r#"{"!=":[{"var":"username"},"user2"]}"#, "filter: operation '!=' with arguments '[{'var': 'username'}, 'user2']' is not supported"),
            (r#"{"==":[{"var":"id"}]}"#, "filter: operation '==' with arguments '[{'var': 'id'}]' is not supported"),
            (r#"{"<":[1,{"var":"id"},3]}"#, "filter: operation '<' with arguments '[1, {'var': 'id'}, 3]' is not supported"),
            (r#"{"<=":[{"var":"id"}]}"#, "filter: operation '<=' with arguments '[{'var': 'id'}]' is not supported"),
            (r#"{"==":"abc"}"#, "filter: operation '==' with arguments 'abc' is not supported"),
            (r#"{"max":[1,2.0,1e16,1e-5,-0.0]}"#, "filter: operation 'max' with arguments '[1, 2.0, 1e+16, 1e-05, -0.0]' is not supported"),
            (r#"{"cat":["it's","a\"b","x\\y\n"]}"#, r#"filter: operation 'cat' with arguments '["it's", 'a"b', 'x\\y\n']' is not supported"#),
            (r#"{"<=":"abc"}"#, "filter: expected a non-empty list value, got 'abc' of type 'str'"),
            // CVAT crashes (500) on these; our own 400s
            (r#"{"==":[1,2]}"#, "filter: operation '==' requires {'var': <term>} as its first argument, got '1'"),
            (r#"{"==":[2,{"var":"id"}]}"#, "filter: operation '==' requires {'var': <term>} as its first argument, got '2'"),
            (r#"{"var":"nosuch"}"#, "filter: term 'nosuch' is not supported"),
            (r#"{"var":["id",1]}"#, "filter: term '['id', 1]' is not supported"),
            (r#"{"==":[{"var":"id"},"abc"]}"#, "filter: term 'id' requires an integer value, got 'abc' of type 'str'"),
            (r#"{"==":[{"var":"id"},3.0]}"#, "filter: term 'id' requires an integer value, got '3.0' of type 'float'"),
            (r#"{"<":[{"var":"id"},null]}"#, "filter: term 'id' requires an integer value, got 'None' of type 'NoneType'"),
            (r#"{"==":[{"var":"is_active"},"true"]}"#, "filter: term 'is_active' requires a boolean value, got 'true' of type 'str'"),
            (r#"{"==":[{"var":"username"},5]}"#, "filter: term 'username' requires a string value, got '5' of type 'int'"),
            (r#"{"<=":["a",{"var":"id"},4]}"#, "filter: term 'id' requires an integer value, got 'a' of type 'str'"),
            (r#"{"<=":[1,{"var":"id"},null]}"#, "filter: term 'id' requires an integer value, got 'None' of type 'NoneType'"),
            (r#"{"<=":[1,2,3]}"#, "filter: operation '<=' requires {'var': <term>} as its second argument, got '2'"),
            (r#"{"in":[{"var":"id"},[1,"2"]]}"#, "filter: term 'id' requires an integer value, got '2' of type 'str'"),
            (r#"{"in":[{"var":"id"},5]}"#, "filter: operation 'in' requires a list of values as its second argument, got '5' of type 'int'"),
            (r#"{"in":[{"var":"username"},"abc"]}"#, "filter: operation 'in' requires a list of values as its second argument, got 'abc' of type 'str'"),
            (r#"{"in":[{"x":1},[1]]}"#, "filter: operation 'in' requires {'var': <term>} as its first argument, got '{'x': 1}'"),
            (r#"{"in":["3",{"var":"id"}]}"#, "filter: term 'id' does not support substring matching"),
            (r#"{"in":[3,{"var":"username"}]}"#, "filter: term 'username' requires a string value, got '3' of type 'int'"),
            (r#"{"in":["a","b"]}"#, "filter: operation 'in' requires {'var': <term>} as its second argument, got 'b'"),
            (r#"{"in":[{"var":"id"}]}"#, "filter: operation 'in' with arguments '[{'var': 'id'}]' is not supported"),
            (r#"{"in":"ab"}"#, "filter: operation 'in' with arguments 'ab' is not supported"),
            (r#"{"and":[1]}"#, "filter: operation 'and' requires a non-empty dict argument, got '1' of type 'int'"),
            (r#"{"or":[{"var":"id"},{}]}"#, "filter: operation 'or' requires a non-empty dict argument, got '{}' of type 'dict'"),
            (r#"{"!":5}"#, "filter: operation '!' requires a non-empty dict argument, got '5' of type 'int'"),
            (r#"{"!!":[{"var":"id"}]}"#, "filter: operation '!!' requires a non-empty dict argument, got '[{'var': 'id'}]' of type 'list'"),
        ];
        for (input, want) in cases {
            assert_eq!(parse(input), Err(want.to_string()), "{input}");
        }
    }

    #[test]
    fn rejects_unparsable_and_hostile_input() {
        let prefix = "filter: can't parse filter expression: ";
        for input in [
            "notjson",
            "",
            " ",
            "{\"var\":\"id\"} x",
            "NaN",
            "{'var': 'id'}",
        ] {
            let err = parse(input).unwrap_err();
            assert!(
                err.starts_with(prefix) && err.len() > prefix.len(),
                "{input}: {err}"
            );
        }

        let long = format!(
            r#"{{"in":["{}",{{"var":"username"}}]}}"#,
            "a".repeat(MAX_FILTER_CHARS)
        );
        assert_eq!(
            parse(&long),
            Err("filter: expression is too long (more than 10000 characters)".to_string())
        );

        let nest = |n: usize| {
            format!(
                "{}{{\"var\":\"id\"}}{}",
                "{\"!\":".repeat(n - 1),
                "}".repeat(n - 1)
            )
        };
        assert!(parse(&nest(MAX_DEPTH)).is_ok());
        assert_eq!(
            parse(&nest(MAX_DEPTH + 1)),
            Err("filter: expression is nested too deeply (more than 32 levels)".to_string())
        );
        // beyond serde_json's own recursion limit: an error, not a stack overflow
        let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
        assert!(parse(&deep).unwrap_err().starts_with(prefix));
        let deep = nest(200);
        assert!(parse(&deep).unwrap_err().starts_with(prefix));
    }

    struct U {
        id: u64,
        username: &'static str,
        first_name: &'static str,
        last_name: &'static str,
        is_active: bool,
    }

    impl UserFields for U {
        fn field(&self, field: Field) -> FieldValue<'_> {
            match field {
                Username => FieldValue::Str(self.username),
                FirstName => FieldValue::Str(self.first_name),
                LastName => FieldValue::Str(self.last_name),
                Id => FieldValue::Int(self.id),
                IsActive => FieldValue::Bool(self.is_active),
            }
        }
    }

    const USERS: [U; 4] = [
        U {
            id: 1,
            username: "admin1",
            first_name: "Admin",
            last_name: "First",
            is_active: true,
        },
        U {
            id: 2,
            username: "user1",
            first_name: "User",
            last_name: "Smith",
            is_active: true,
        },
        U {
            id: 3,
            username: "user2",
            first_name: "user",
            last_name: "Jones",
            is_active: false,
        },
        U {
            id: 4,
            username: "worker",
            first_name: "",
            last_name: "Ünïcode",
            is_active: true,
        },
    ];

    #[test]
    fn matches_users() {
        let cases: Vec<(&str, Vec<u64>)> = vec![
            (r#"{"==":[{"var":"username"},"user2"]}"#, vec![3]),
            (r#"{"==":[{"var":"username"},"USER2"]}"#, vec![]),
            (r#"{"==":[{"var":"is_active"},false]}"#, vec![3]),
            (r#"{"<":[{"var":"is_active"},true]}"#, vec![3]),
            (r#"{"==":[{"var":"id"},null]}"#, vec![]),
            (r#"{"!":{"==":[{"var":"id"},null]}}"#, vec![1, 2, 3, 4]),
            (r#"{"var":"last_name"}"#, vec![1, 2, 3, 4]),
            (r#"{"!":{"var":"last_name"}}"#, vec![]),
            (r#"{"<":[{"var":"id"},2]}"#, vec![1]),
            (r#"{"<=":[{"var":"id"},2]}"#, vec![1, 2]),
            (r#"{">":[{"var":"id"},2]}"#, vec![3, 4]),
            (r#"{">=":[{"var":"id"},-1]}"#, vec![1, 2, 3, 4]),
            (r#"{">":[{"var":"id"},18446744073709551615]}"#, vec![]),
            (r#"{"<=":[2,{"var":"id"},3]}"#, vec![2, 3]),
            (r#"{"<=":[3,{"var":"id"},2]}"#, vec![]),
            (r#"{"<=":["user1",{"var":"username"},"user2"]}"#, vec![2, 3]),
            (r#"{"<":[{"var":"first_name"},"U"]}"#, vec![1, 4]),
            (r#"{">":[{"var":"first_name"},"U"]}"#, vec![2, 3]),
            (r#"{"in":[{"var":"id"},[1,3,99]]}"#, vec![1, 3]),
            (r#"{"in":[{"var":"id"},[]]}"#, vec![]),
            (r#"{"!":{"in":[{"var":"id"},[]]}}"#, vec![1, 2, 3, 4]),
            (
                r#"{"in":[{"var":"last_name"},["Smith","Jones"]]}"#,
                vec![2, 3],
            ),
            (r#"{"in":["ser",{"var":"username"}]}"#, vec![2, 3]),
            (r#"{"in":["Ser",{"var":"username"}]}"#, vec![]),
            (r#"{"in":["",{"var":"first_name"}]}"#, vec![1, 2, 3, 4]),
            (r#"{"in":["nïc",{"var":"last_name"}]}"#, vec![4]),
            (
                r#"{"and":[{">=":[{"var":"id"},2]},{"==":[{"var":"is_active"},true]}]}"#,
                vec![2, 4],
            ),
            (
                r#"{"or":[{"==":[{"var":"id"},1]},{"==":[{"var":"username"},"worker"]}]}"#,
                vec![1, 4],
            ),
            (
                r#"{"!":{"or":[{"==":[{"var":"id"},1]},{"==":[{"var":"id"},2]}]}}"#,
                vec![3, 4],
            ),
            (r#"{"!!":{"==":[{"var":"id"},2]}}"#, vec![2]),
        ];
        for (input, want) in cases {
            let rule = parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            let got: Vec<u64> = USERS
                .iter()
                .filter(|u| rule.matches(*u))
                .map(|u| u.id)
                .collect();
            assert_eq!(got, want, "{input}");
        }
    }

    #[test]
    fn python_float_repr() {
        let cases: [(f64, &str); 12] = [
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (1.0, "1.0"),
            (1.5, "1.5"),
            (-2.25, "-2.25"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.25e-7, "1.25e-07"),
            (1e15, "1000000000000000.0"),
            (1e16, "1e+16"),
            (1.5e300, "1.5e+300"),
            (123456.789, "123456.789"),
        ];
        for (f, want) in cases {
            assert_eq!(py_float_repr(f), want, "{f}");
        }
    }
}
