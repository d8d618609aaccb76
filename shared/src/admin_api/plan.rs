//! Which users a list must read: from the query, a superset of the users it
//! can match, so that a query pinning its users by a unique field (id,
//! username) or an id range reads those and not the whole directory.
//!
//! The plan only narrows what is read. The full query (filters, search,
//! sort, org scoping, permissions) is then applied to what was read exactly
//! as it is to the whole directory, so the answer cannot differ; a rule the
//! planner does not understand simply pins nothing.
use std::collections::BTreeSet;

use super::json_logic::{Comparison, Rule, Value};
use super::list_query::ListQuery;
use crate::domain::query::Field;

/// Keyed reads beyond this many keys are no longer a few users: an id-only
/// set becomes the range it spans, anything else a pass over the directory.
pub const MAX_KEYS: usize = 1000;

/// A superset of the users a query can match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// No pin: every user (one pass over GSI1).
    All,
    /// Only users with these ids or exactly these usernames (read through
    /// their claims); both empty when nobody can match.
    Keys {
        ids: BTreeSet<u64>,
        usernames: BTreeSet<String>,
    },
    /// Only users with ids in `low..=high` (`low > high` when nobody can match).
    IdRange { low: u64, high: u64 },
}

impl Source {
    /// The plan of `query`: its JSON Logic filter and its `username=`
    /// parameter (an exact match, like the filter's `==`) are `and`-ed.
    pub fn of(query: &ListQuery) -> Source {
        let from_param = query.username.as_ref().map(|u| Source::Keys {
            ids: BTreeSet::new(),
            usernames: BTreeSet::from([u.clone()]),
        });
        let from_filter = query.filter.as_ref().and_then(pin);
        let pinned = match (from_param, from_filter) {
            (Some(a), Some(b)) => Some(intersect(a, b)),
            (a, b) => a.or(b),
        };
        pinned.map_or(Source::All, bounded)
    }

    /// Keys that may be read along with authentication: the ids and
    /// usernames of a small keyed plan (`None` for any other plan).
    pub fn prefetch(&self, at_most: usize) -> Option<(&BTreeSet<u64>, &BTreeSet<String>)> {
        match self {
            Source::Keys { ids, usernames } if ids.len() + usernames.len() <= at_most => {
                Some((ids, usernames))
            }
            _ => None,
        }
    }
}

fn ids_only(ids: BTreeSet<u64>) -> Source {
    Source::Keys {
        ids,
        usernames: BTreeSet::new(),
    }
}

fn nobody() -> Source {
    ids_only(BTreeSet::new())
}

/// A pin of `rule`, or `None` when it can match users anywhere.
fn pin(rule: &Rule) -> Option<Source> {
    match rule {
        Rule::Compare(Field::Id, Comparison::Eq, Value::Int(v)) => {
            Some(ids_only(u64::try_from(*v).into_iter().collect()))
        }
        Rule::Compare(Field::Id, op, Value::Int(v)) => Some(range_of(*op, *v)),
        Rule::Between(Field::Id, Value::Int(low), Value::Int(high)) => {
            Some(range(Some(*low), Some(*high)))
        }
        Rule::In(Field::Id, values) => Some(ids_only(
            values
                .iter()
                .filter_map(|v| match v {
                    Value::Int(i) => u64::try_from(*i).ok(),
                    _ => None,
                })
                .collect(),
        )),
        Rule::Compare(Field::Username, Comparison::Eq, Value::Str(name)) => Some(Source::Keys {
            ids: BTreeSet::new(),
            usernames: BTreeSet::from([name.clone()]),
        }),
        Rule::In(Field::Username, values) => Some(Source::Keys {
            ids: BTreeSet::new(),
            usernames: values
                .iter()
                .filter_map(|v| match v {
                    Value::Str(s) => Some(s.clone()),
                    _ => None,
                })
                .collect(),
        }),
        // `IS NULL` on a field that is never null.
        Rule::IsNull(_) => Some(nobody()),
        Rule::And(rules) => rules.iter().filter_map(pin).reduce(intersect),
        Rule::Or(rules) => rules.iter().map(pin).reduce(|a, b| union(a?, b?)).flatten(),
        _ => None,
    }
}

/// The ids `op v` holds for.
fn range_of(op: Comparison, v: i128) -> Source {
    match op {
        Comparison::Lt => range(None, Some(v - 1)),
        Comparison::Le => range(None, Some(v)),
        Comparison::Gt => range(Some(v + 1), None),
        Comparison::Ge => range(Some(v), None),
        Comparison::Eq => range(Some(v), Some(v)),
    }
}

/// `low..=high` (open ends unbounded), within the ids a user can have.
fn range(low: Option<i128>, high: Option<i128>) -> Source {
    let max = i128::from(u64::MAX);
    let (low, high) = (low.unwrap_or(0).max(0), high.unwrap_or(max).min(max));
    match (u64::try_from(low), u64::try_from(high)) {
        (Ok(low), Ok(high)) if low <= high => Source::IdRange { low, high },
        _ => nobody(),
    }
}

fn key_count(source: &Source) -> Option<usize> {
    match source {
        Source::Keys { ids, usernames } => Some(ids.len() + usernames.len()),
        _ => None,
    }
}

/// Users matching both `a` and `b` are in each of them: keep the smaller
/// (or the exact intersection where it is cheap to compute).
fn intersect(a: Source, b: Source) -> Source {
    match (a, b) {
        (Source::IdRange { low: l1, high: h1 }, Source::IdRange { low: l2, high: h2 }) => {
            Source::IdRange {
                low: l1.max(l2),
                high: h1.min(h2),
            }
        }
        (Source::Keys { ids, usernames }, Source::IdRange { low, high })
        | (Source::IdRange { low, high }, Source::Keys { ids, usernames }) => Source::Keys {
            ids: ids
                .into_iter()
                .filter(|i| (low..=high).contains(i))
                .collect(),
            usernames,
        },
        (
            Source::Keys {
                ids: i1,
                usernames: u1,
            },
            Source::Keys {
                ids: i2,
                usernames: u2,
            },
        ) if u1.is_empty() && u2.is_empty() => ids_only(&i1 & &i2),
        (
            Source::Keys {
                ids: i1,
                usernames: u1,
            },
            Source::Keys {
                ids: i2,
                usernames: u2,
            },
        ) if i1.is_empty() && i2.is_empty() => Source::Keys {
            ids: i1,
            usernames: &u1 & &u2,
        },
        (a, b) if key_count(&a) <= key_count(&b) => a,
        (_, b) => b,
    }
}

/// Users matching `a` or `b`; `None` when no single source covers both.
fn union(a: Source, b: Source) -> Option<Source> {
    match (a, b) {
        (Source::IdRange { low: l1, high: h1 }, Source::IdRange { low: l2, high: h2 }) => {
            Some(Source::IdRange {
                low: l1.min(l2),
                high: h1.max(h2),
            })
        }
        (
            Source::Keys {
                ids: i1,
                usernames: u1,
            },
            Source::Keys {
                ids: i2,
                usernames: u2,
            },
        ) => Some(Source::Keys {
            ids: &i1 | &i2,
            usernames: &u1 | &u2,
        }),
        (Source::Keys { ids, usernames }, Source::IdRange { low, high })
        | (Source::IdRange { low, high }, Source::Keys { ids, usernames })
            if usernames.is_empty() =>
        {
            let low = ids.first().map_or(low, |&i| i.min(low));
            let high = ids.last().map_or(high, |&i| i.max(high));
            Some(Source::IdRange { low, high })
        }
        _ => None,
    }
}

/// Too many keys for keyed reads: the id range they span, or everything.
fn bounded(source: Source) -> Source {
    match source {
        Source::Keys { ids, usernames } if ids.len() + usernames.len() > MAX_KEYS => {
            match (ids.first(), ids.last()) {
                (Some(&low), Some(&high)) if usernames.is_empty() => Source::IdRange { low, high },
                _ => Source::All,
            }
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(params: &[(&str, &str)]) -> Source {
        let pairs: Vec<(String, String)> = params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Source::of(&ListQuery::parse(&pairs, None).expect("valid query"))
    }

    fn filtered(rule: &str) -> Source {
        plan(&[("filter", rule)])
    }

    fn keys(ids: &[u64], usernames: &[&str]) -> Source {
        Source::Keys {
            ids: ids.iter().copied().collect(),
            usernames: usernames.iter().map(|u| u.to_string()).collect(),
        }
    }

    fn ids(low: u64, high: u64) -> Source {
        Source::IdRange { low, high }
    }

    #[test]
    fn pins_by_unique_fields_and_ranges() {
        let cases: Vec<(&str, Source)> = vec![
            (r#"{"==":[{"var":"username"},"x"]}"#, keys(&[], &["x"])),
            (r#"{"==":[{"var":"id"},7]}"#, keys(&[7], &[])),
            (r#"{"==":[{"var":"id"},-7]}"#, keys(&[], &[])),
            (r#"{"in":[{"var":"id"},[3,1,3,-1]]}"#, keys(&[1, 3], &[])),
            (
                r#"{"in":[{"var":"username"},["a","b"]]}"#,
                keys(&[], &["a", "b"]),
            ),
            (r#"{"in":[{"var":"id"},[]]}"#, keys(&[], &[])),
            (r#"{"==":[{"var":"first_name"},null]}"#, keys(&[], &[])),
            (r#"{"<":[{"var":"id"},10]}"#, ids(0, 9)),
            (r#"{"<=":[{"var":"id"},10]}"#, ids(0, 10)),
            (r#"{">":[{"var":"id"},10]}"#, ids(11, u64::MAX)),
            (r#"{">=":[{"var":"id"},10]}"#, ids(10, u64::MAX)),
            (r#"{"<":[{"var":"id"},0]}"#, keys(&[], &[])),
            (
                r#"{">":[{"var":"id"},18446744073709551615]}"#,
                keys(&[], &[]),
            ),
            (r#"{"<=":[3,{"var":"id"},8]}"#, ids(3, 8)),
            (r#"{"<=":[8,{"var":"id"},3]}"#, keys(&[], &[])),
            (
                r#"{"and":[{">":[{"var":"id"},3]},{"<":[{"var":"id"},9]},{"var":"username"}]}"#,
                ids(4, 8),
            ),
            (
                r#"{"and":[{"==":[{"var":"username"},"x"]},{"in":["a",{"var":"first_name"}]}]}"#,
                keys(&[], &["x"]),
            ),
            (
                r#"{"and":[{"in":[{"var":"id"},[1,5,20]]},{"<":[{"var":"id"},10]}]}"#,
                keys(&[1, 5], &[]),
            ),
            (
                r#"{"and":[{"in":[{"var":"id"},[1,5]]},{"in":[{"var":"id"},[5,6]]}]}"#,
                keys(&[5], &[]),
            ),
            (
                r#"{"and":[{"==":[{"var":"username"},"x"]},{"in":[{"var":"id"},[1,2]]}]}"#,
                keys(&[], &["x"]),
            ),
            (
                r#"{"or":[{"==":[{"var":"username"},"x"]},{"==":[{"var":"id"},4]}]}"#,
                keys(&[4], &["x"]),
            ),
            (
                r#"{"or":[{"<":[{"var":"id"},3]},{"==":[{"var":"id"},9]}]}"#,
                ids(0, 9),
            ),
            (
                r#"{"or":[{"<":[{"var":"id"},3]},{"==":[{"var":"username"},"x"]}]}"#,
                Source::All,
            ),
            (
                r#"{"or":[{"==":[{"var":"id"},1]},{"in":["a",{"var":"username"}]}]}"#,
                Source::All,
            ),
            (r#"{"!":{"==":[{"var":"id"},1]}}"#, Source::All),
            (r#"{"in":["x",{"var":"username"}]}"#, Source::All),
            (r#"{"==":[{"var":"last_name"},"x"]}"#, Source::All),
        ];
        for (rule, want) in cases {
            assert_eq!(filtered(rule), want, "{rule}");
        }
    }

    #[test]
    fn the_username_parameter_pins_like_the_filter() {
        assert_eq!(plan(&[("username", "bob")]), keys(&[], &["bob"]));
        assert_eq!(plan(&[("first_name", "bob")]), Source::All);
        assert_eq!(plan(&[("search", "bob")]), Source::All);
        assert_eq!(
            plan(&[
                ("username", "bob"),
                ("filter", r#"{"==":[{"var":"username"},"alice"]}"#)
            ]),
            keys(&[], &[])
        );
        assert_eq!(
            plan(&[("username", "bob"), ("filter", r#"{"<":[{"var":"id"},5]}"#)]),
            keys(&[], &["bob"])
        );
    }

    #[test]
    fn too_many_keys_become_a_range_or_a_full_pass() {
        let many: Vec<u64> = (1..=MAX_KEYS as u64 + 1).map(|i| i * 2).collect();
        let rule = serde_json::json!({"in": [{"var": "id"}, many]}).to_string();
        assert_eq!(filtered(&rule), ids(2, 2 * (MAX_KEYS as u64 + 1)));
        let names: Vec<String> = (0..=MAX_KEYS).map(|i| format!("u{i}")).collect();
        let rule = serde_json::json!({"in": [{"var": "username"}, names]}).to_string();
        assert_eq!(filtered(&rule), Source::All);
    }

    #[test]
    fn only_small_keyed_plans_are_prefetched() {
        assert!(keys(&[1, 2], &["a"]).prefetch(3).is_some());
        assert!(keys(&[1, 2], &["a", "b"]).prefetch(3).is_none());
        assert!(ids(1, 2).prefetch(3).is_none());
        assert!(Source::All.prefetch(3).is_none());
    }
}
