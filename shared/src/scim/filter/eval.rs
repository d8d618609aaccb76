//! Evaluating a [`Filter`] over a record. Every path is read exactly as a
//! response shows it, through its row's getter (so a client can filter on
//! what it read, and an attribute becomes filterable by being a row), and
//! compared as its row says: strings exactly or folded ([`rules::fold`],
//! the claims' caseless match), booleans as booleans, date-times as
//! instants. One evaluator serves Users, Groups and the values of a value
//! path, whatever plan read the records.
use std::cmp::Ordering;

use serde_json::Value as Json;

use super::{Filter, Op, Path, Value};
use crate::domain::profile::Profile;
use crate::domain::user::{parse_time, rules};
use crate::scim::schema::{self, get_ci, Attribute, Context, Type};

/// Where a filter's paths are read from.
pub(super) trait Source {
    /// The values at `path`, flattened over multi-valued attributes (one
    /// per value), unassigned ones left out.
    fn values(&self, path: &Path) -> Vec<Json>;
    /// Whether value paths (`attr[...]`) can be read here: not inside one.
    fn top(&self) -> bool;
}

/// A resource's record, read through its table.
pub(super) struct Record<'a, R: 'static> {
    pub table: &'static [Attribute<R>],
    pub record: &'a R,
    pub ctx: &'a Context<'a>,
}

impl<R> Source for Record<'_, R> {
    fn values(&self, path: &Path) -> Vec<Json> {
        let names = path.names();
        // Compared as the `rfc` profile shows the record: where the profiles
        // have a row each (`emails`), the `rfc` one shows all the `odm` one
        // does (a user's one work email is `rfc`'s only email) and more (the
        // other emails `rfc` keeps), so a filter sees every value either
        // profile's resolution can name.
        let Some(row) = schema::rows(self.table, Profile::Rfc)
            .find(|a| a.name.eq_ignore_ascii_case(names[0]))
            .or_else(|| schema::find(self.table, names[0]))
        else {
            // Not an attribute of this resource: never assigned.
            return Vec::new();
        };
        let ctx = Context {
            profile: Profile::Rfc,
            ..*self.ctx
        };
        let mut out = Vec::new();
        if let Some(shown) = row.value(self.record, &ctx) {
            navigate(&shown, &names[1..], &mut out);
        }
        out
    }

    fn top(&self) -> bool {
        true
    }
}

/// One value of a multi-valued attribute, as a resource shows it: the
/// paths of a value filter are its sub-attributes.
pub(super) struct Element<'a>(pub &'a Json);

impl Source for Element<'_> {
    fn values(&self, path: &Path) -> Vec<Json> {
        let names = path.names();
        let mut out = Vec::new();
        navigate(self.0, &names[names.len() - 1..], &mut out);
        out
    }

    fn top(&self) -> bool {
        false
    }
}

/// The values under `names` in `value`, one per element of every list on
/// the way; null and missing members are unassigned.
fn navigate(value: &Json, names: &[&str], out: &mut Vec<Json>) {
    match (value, names) {
        (Json::Null, _) => {}
        (Json::Array(items), _) => items.iter().for_each(|i| navigate(i, names, out)),
        (Json::Object(map), [name, rest @ ..]) => {
            if let Some(inner) = get_ci(map, name) {
                navigate(inner, rest, out);
            }
        }
        (other, []) => out.push(other.clone()),
        _ => {}
    }
}

impl Filter {
    pub(super) fn holds(&self, source: &dyn Source) -> bool {
        match self {
            Filter::Compare(path, op, want) => compare(path, *op, want, &source.values(path)),
            Filter::Present(path) => source.values(path).iter().any(non_empty),
            Filter::And(all) => all.iter().all(|f| f.holds(source)),
            Filter::Or(any) => any.iter().any(|f| f.holds(source)),
            Filter::Not(inner) => !inner.holds(source),
            Filter::Values(path, inner) => {
                source.top()
                    && source
                        .values(path)
                        .iter()
                        .any(|element| inner.holds(&Element(element)))
            }
        }
    }
}

/// `path op want` over the values found. `eq` holds when one value equals
/// (`eq null`: when none is assigned), `ne` when none does.
fn compare(path: &Path, op: Op, want: &Value, found: &[Json]) -> bool {
    let equal = || match want {
        Value::Null => found.is_empty(),
        _ => found
            .iter()
            .any(|f| ordering(path, f, want) == Some(Ordering::Equal)),
    };
    match op {
        Op::Eq => equal(),
        Op::Ne => !equal(),
        Op::Co | Op::Sw | Op::Ew => {
            let Value::Str(want) = want else {
                return false;
            };
            let want = folded(path, want);
            found.iter().filter_map(Json::as_str).any(|have| {
                let have = folded(path, have);
                match op {
                    Op::Co => have.contains(want.as_str()),
                    Op::Sw => have.starts_with(want.as_str()),
                    _ => have.ends_with(want.as_str()),
                }
            })
        }
        Op::Gt | Op::Ge | Op::Lt | Op::Le => found.iter().any(|f| {
            ordering(path, f, want).is_some_and(|o| match op {
                Op::Gt => o == Ordering::Greater,
                Op::Ge => o != Ordering::Less,
                Op::Lt => o == Ordering::Less,
                _ => o != Ordering::Greater,
            })
        }),
    }
}

/// A string as the path compares it: as written, or folded like the
/// uniqueness claims, so that a user found by its claim (`STRASSE` for
/// `straße`) is not then filtered away.
fn folded(path: &Path, s: &str) -> String {
    if path.case_exact {
        s.to_string()
    } else {
        rules::fold(s)
    }
}

/// How a value the record holds compares with the filter's, by the path's
/// type; `None` when they cannot be compared (another type: the parser
/// refuses those, a hand-built filter just does not match).
pub(crate) fn ordering(path: &Path, have: &Json, want: &Value) -> Option<Ordering> {
    match (path.kind, have, want) {
        (Type::Boolean, Json::Bool(h), Value::Bool(w)) => Some(h.cmp(w)),
        (Type::DateTime, Json::String(h), Value::Str(w)) => {
            Some(parse_time(h)?.cmp(&parse_time(w)?))
        }
        (Type::Boolean | Type::DateTime, _, _) => None,
        (_, Json::String(h), Value::Str(w)) => Some(if path.case_exact {
            h.as_str().cmp(w.as_str())
        } else {
            rules::fold(h).cmp(&rules::fold(w))
        }),
        (_, Json::Number(h), Value::Num(w)) => h.as_f64()?.partial_cmp(&w.as_f64()?),
        _ => None,
    }
}

/// RFC 7644's `pr`: a non-empty value (or a complex value with something in it).
fn non_empty(value: &Json) -> bool {
    match value {
        Json::Null => false,
        Json::String(s) => !s.is_empty(),
        Json::Array(items) => items.iter().any(non_empty),
        Json::Object(map) => map.values().any(non_empty),
        _ => true,
    }
}
