//! The one query model over users: the fields both filter languages (SCIM
//! filters, JSON Logic) and the store's pushed-down conditions see on a user.
use std::cmp::Ordering;

use chrono::{DateTime, Utc};

use super::user::rules::fold;
use super::user::User;
use std::collections::BTreeSet;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Username,
    FirstName,
    LastName,
    Id,
    IsActive,
}

impl Field {
    pub fn parse(name: &str) -> Option<Field> {
        Some(match name {
            "username" => Field::Username,
            "first_name" => Field::FirstName,
            "last_name" => Field::LastName,
            "id" => Field::Id,
            "is_active" => Field::IsActive,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Field::Username => "username",
            Field::FirstName => "first_name",
            Field::LastName => "last_name",
            Field::Id => "id",
            Field::IsActive => "is_active",
        }
    }
}

/// The value of one field on a user, as the filters see it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FieldValue<'a> {
    Str(&'a str),
    Int(u64),
    Bool(bool),
}

impl FieldValue<'_> {
    pub fn cmp_same_type(&self, other: &Self) -> Ordering {
        match (self, other) {
            (FieldValue::Str(a), FieldValue::Str(b)) => a.cmp(b),
            (FieldValue::Int(a), FieldValue::Int(b)) => a.cmp(b),
            (FieldValue::Bool(a), FieldValue::Bool(b)) => a.cmp(b),
            // One field always has one type; never reached.
            _ => Ordering::Equal,
        }
    }
}

/// Implemented by the user record so queries can evaluate against it.
pub trait UserFields {
    fn field(&self, field: Field) -> FieldValue<'_>;
}

/// A value at most one user holds, so a user can be read by it: the store
/// keeps one claim per value (see [`crate::domain::user::rules::fold`] for
/// how username and email values are normalised first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Claim {
    Username,
    Email,
    ExternalId,
}

/// How the filter language compares a claim's value with the user's:
/// JSON Logic's `==` is exact, SCIM's `eq` on `userName` and `emails.value`
/// is caseless (RFC 7643 `caseExact: false`). The planner needs it to know
/// when two equalities on one claim can hold for the same user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Case {
    Exact,
    Caseless,
}

/// What a filter says about which users it can match, in the terms reads
/// are planned in: ids, id ranges, claims and ranges of modification time,
/// joined by `and` and `or`.
/// Both filter languages lower into it; whatever they say beyond that is a
/// [`UserQuery::Residual`], which narrows nothing. The query only decides
/// what is read: the language's own filter is then evaluated, exactly as
/// before, on what was read, so lowering can lose precision (never users).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserQuery {
    /// The user's id is one of these (none: nobody matches).
    IdIn(std::collections::BTreeSet<u64>),
    /// `low <= id <= high`, an open end unbounded. Bounds are as the filter
    /// wrote them and may lie outside the ids a user can have.
    IdBetween(Option<i128>, Option<i128>),
    /// The claim's value equals one of these (as written; none: nobody).
    ClaimIn(Claim, Case, Vec<String>),
    /// The user last changed at or after the first time and at or before
    /// the second (an open end unbounded): the store keeps users in order
    /// of their last change, so this is a range of that order.
    ModifiedBetween(Option<DateTime<Utc>>, Option<DateTime<Utc>>),
    /// Matches no user (`IS NULL` on a field that is never null, an id no
    /// user can have).
    Nobody,
    And(Vec<UserQuery>),
    Or(Vec<UserQuery>),
    /// A condition reads cannot be narrowed by. `indexed`: it looks only at
    /// [`Field`]s, which the search index holds, so a pass over that index
    /// can decide it.
    Residual {
        indexed: bool,
    },
}

impl UserFields for User {
    fn field(&self, field: Field) -> FieldValue<'_> {
        match field {
            Field::Username => FieldValue::Str(&self.username),
            Field::FirstName => FieldValue::Str(&self.first_name),
            Field::LastName => FieldValue::Str(&self.last_name),
            Field::Id => FieldValue::Int(self.id),
            Field::IsActive => FieldValue::Bool(self.is_active),
        }
    }
}

// ------------------------------------------------------------ plan
// How to read the users a [`UserQuery`] can match: the one planner both
// APIs ask. From the query it takes a superset of its matches that is
// cheap to read (a few keys, an id range), so that a query pinning its
// users by a unique field reads those and not the whole directory.
//
// A plan only narrows what is read; the caller then applies its full
// filter to what was read exactly as it would to the whole directory, so
// the answer cannot differ. A condition the planner does not understand
// simply pins nothing.

/// Keyed reads beyond this many keys are no longer a few users: an id-only
/// set becomes the range it spans, anything else a pass.
pub const MAX_KEYS: usize = 1000;

/// Claims to read users by: which claim, and the value as the query wrote it.
pub type ClaimKeys = BTreeSet<(Claim, String)>;

/// Where the users a query can match are read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadPlan {
    /// Only the users with these ids or holding these claims (values as
    /// the query wrote them; the store normalises them as its claims);
    /// both empty when nobody can match.
    Keys {
        ids: BTreeSet<u64>,
        claims: ClaimKeys,
    },
    /// Only users with ids in `low..=high` (`low > high` when nobody can
    /// match).
    IdRange { low: u64, high: u64 },
    /// Only users whose last change is within `since..=until` (an open end
    /// unbounded): one range of the index that keeps users in order of
    /// their last change (a delta sync: what changed since the last look).
    Modified {
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
    },
    /// No pin, but every condition is on fields the search index holds: a
    /// pass over that index decides which users match.
    SearchIndex,
    /// No pin: a pass over every user, in full.
    Pass,
}

impl ReadPlan {
    pub fn of(query: &UserQuery) -> ReadPlan {
        match pin(query).and_then(bounded) {
            Some(Pin::Keys { ids, claims, .. }) => ReadPlan::Keys { ids, claims },
            Some(Pin::IdRange { low, high }) => ReadPlan::IdRange { low, high },
            Some(Pin::Modified {
                since: Some(since),
                until: Some(until),
            }) if since > until => ReadPlan::Keys {
                ids: BTreeSet::new(),
                claims: BTreeSet::new(),
            },
            Some(Pin::Modified { since, until }) => ReadPlan::Modified { since, until },
            None if indexed(query) => ReadPlan::SearchIndex,
            None => ReadPlan::Pass,
        }
    }

    /// Whether the plan reads every user (through either index).
    pub fn is_unpinned(&self) -> bool {
        matches!(self, ReadPlan::SearchIndex | ReadPlan::Pass)
    }

    /// Keys that may be read along with authentication: the ids and claims
    /// of a small keyed plan (`None` for any other plan).
    pub fn prefetch(&self, at_most: usize) -> Option<(&BTreeSet<u64>, &ClaimKeys)> {
        match self {
            ReadPlan::Keys { ids, claims } if ids.len() + claims.len() <= at_most => {
                Some((ids, claims))
            }
            _ => None,
        }
    }
}

/// A superset of a query's matches while planning. Keys remember how their
/// claims were compared, so that intersecting two equalities on one claim
/// keeps the values that can name the same user.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Pin {
    Keys {
        ids: BTreeSet<u64>,
        claims: ClaimKeys,
        case: Case,
    },
    /// `low > high` when nobody can match.
    IdRange { low: u64, high: u64 },
    /// `since > until` when nobody can match.
    Modified {
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
    },
}

fn ids_only(ids: BTreeSet<u64>) -> Pin {
    Pin::Keys {
        ids,
        claims: BTreeSet::new(),
        case: Case::Exact,
    }
}

/// A pin of `query`, or `None` when it can match users anywhere.
fn pin(query: &UserQuery) -> Option<Pin> {
    match query {
        UserQuery::IdIn(ids) => Some(ids_only(ids.clone())),
        UserQuery::IdBetween(low, high) => Some(range(*low, *high)),
        UserQuery::ClaimIn(claim, case, values) => Some(Pin::Keys {
            ids: BTreeSet::new(),
            claims: values.iter().map(|v| (*claim, v.clone())).collect(),
            case: *case,
        }),
        UserQuery::ModifiedBetween(since, until) => Some(Pin::Modified {
            since: *since,
            until: *until,
        }),
        UserQuery::Nobody => Some(ids_only(BTreeSet::new())),
        UserQuery::And(all) => all.iter().filter_map(pin).reduce(intersect),
        UserQuery::Or(any) => any.iter().map(pin).reduce(|a, b| union(a?, b?)).flatten(),
        UserQuery::Residual { .. } => None,
    }
}

/// Whether a pass over the search index can decide `query`: it holds the
/// id and username of every user, not their email or external id.
fn indexed(query: &UserQuery) -> bool {
    match query {
        UserQuery::IdIn(_) | UserQuery::IdBetween(..) | UserQuery::Nobody => true,
        UserQuery::ClaimIn(claim, ..) => *claim == Claim::Username,
        UserQuery::ModifiedBetween(..) => false,
        UserQuery::And(all) | UserQuery::Or(all) => all.iter().all(indexed),
        UserQuery::Residual { indexed } => *indexed,
    }
}

/// `low..=high` (open ends unbounded), within the ids a user can have.
fn range(low: Option<i128>, high: Option<i128>) -> Pin {
    let max = i128::from(u64::MAX);
    let (low, high) = (low.unwrap_or(0).max(0), high.unwrap_or(max).min(max));
    match (u64::try_from(low), u64::try_from(high)) {
        (Ok(low), Ok(high)) if low <= high => Pin::IdRange { low, high },
        _ => ids_only(BTreeSet::new()),
    }
}

fn key_count(pin: &Pin) -> Option<usize> {
    match pin {
        Pin::Keys { ids, claims, .. } => Some(ids.len() + claims.len()),
        Pin::IdRange { .. } | Pin::Modified { .. } => None,
    }
}

/// Whether `a` and `b`, values of one claim, can both equal one user's.
fn same_value(case: Case, a: &str, b: &str) -> bool {
    match case {
        Case::Exact => a == b,
        Case::Caseless => a == b || fold(a) == fold(b),
    }
}

/// The looser of two comparisons: a pair may match under either.
fn looser(a: Case, b: Case) -> Case {
    if a == Case::Caseless || b == Case::Caseless {
        Case::Caseless
    } else {
        Case::Exact
    }
}

/// Users matching both `a` and `b` are in each of them: keep the smaller
/// (or the exact intersection where it is cheap to compute).
fn intersect(a: Pin, b: Pin) -> Pin {
    match (a, b) {
        (Pin::IdRange { low: l1, high: h1 }, Pin::IdRange { low: l2, high: h2 }) => Pin::IdRange {
            low: l1.max(l2),
            high: h1.min(h2),
        },
        (Pin::Keys { ids, claims, case }, Pin::IdRange { low, high })
        | (Pin::IdRange { low, high }, Pin::Keys { ids, claims, case }) => Pin::Keys {
            ids: ids
                .into_iter()
                .filter(|i| (low..=high).contains(i))
                .collect(),
            claims,
            case,
        },
        (
            Pin::Keys {
                ids: i1,
                claims: c1,
                case,
            },
            Pin::Keys {
                ids: i2,
                claims: c2,
                ..
            },
        ) if c1.is_empty() && c2.is_empty() => Pin::Keys {
            ids: &i1 & &i2,
            claims: c1,
            case,
        },
        // Equalities on one claim: a user holds one value of it, so only
        // values both sides can name the user by remain.
        (
            Pin::Keys {
                ids: i1,
                claims: c1,
                case: k1,
            },
            Pin::Keys {
                ids: i2,
                claims: c2,
                case: k2,
            },
        ) if i1.is_empty() && i2.is_empty() && one_claim(&c1, &c2) => {
            let case = looser(k1, k2);
            let claims = c1
                .into_iter()
                .filter(|(_, v)| c2.iter().any(|(_, w)| same_value(case, v, w)))
                .collect();
            Pin::Keys {
                ids: i1,
                claims,
                case,
            }
        }
        (
            Pin::Modified {
                since: s1,
                until: u1,
            },
            Pin::Modified {
                since: s2,
                until: u2,
            },
        ) => Pin::Modified {
            since: s1.max(s2),
            until: match (u1, u2) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            },
        },
        // A few keys beat any range; a range of modification times (what
        // changed lately) beats a range of ids.
        (keys @ Pin::Keys { .. }, Pin::Modified { .. })
        | (Pin::Modified { .. }, keys @ Pin::Keys { .. }) => keys,
        (modified @ Pin::Modified { .. }, Pin::IdRange { .. })
        | (Pin::IdRange { .. }, modified @ Pin::Modified { .. }) => modified,
        (a, b) if key_count(&a) <= key_count(&b) => a,
        (_, b) => b,
    }
}

/// Whether all claims of both sets are of one kind.
fn one_claim(a: &ClaimKeys, b: &ClaimKeys) -> bool {
    let kinds: BTreeSet<Claim> = a.iter().chain(b).map(|(c, _)| *c).collect();
    kinds.len() <= 1
}

/// Users matching `a` or `b`; `None` when no single pin covers both.
fn union(a: Pin, b: Pin) -> Option<Pin> {
    match (a, b) {
        (Pin::IdRange { low: l1, high: h1 }, Pin::IdRange { low: l2, high: h2 }) => {
            Some(Pin::IdRange {
                low: l1.min(l2),
                high: h1.max(h2),
            })
        }
        (
            Pin::Keys {
                ids: i1,
                claims: c1,
                case: k1,
            },
            Pin::Keys {
                ids: i2,
                claims: c2,
                case: k2,
            },
        ) => Some(Pin::Keys {
            ids: &i1 | &i2,
            claims: &c1 | &c2,
            case: looser(k1, k2),
        }),
        (Pin::Keys { ids, claims, .. }, Pin::IdRange { low, high })
        | (Pin::IdRange { low, high }, Pin::Keys { ids, claims, .. })
            if claims.is_empty() =>
        {
            let low = ids.first().map_or(low, |&i| i.min(low));
            let high = ids.last().map_or(high, |&i| i.max(high));
            Some(Pin::IdRange { low, high })
        }
        (
            Pin::Modified {
                since: s1,
                until: u1,
            },
            Pin::Modified {
                since: s2,
                until: u2,
            },
        ) => Some(Pin::Modified {
            since: s1.zip(s2).map(|(a, b)| a.min(b)),
            until: u1.zip(u2).map(|(a, b)| a.max(b)),
        }),
        _ => None,
    }
}

/// Too many keys for keyed reads: the id range they span, or no pin.
fn bounded(pin: Pin) -> Option<Pin> {
    match pin {
        Pin::Keys { ids, claims, .. } if ids.len() + claims.len() > MAX_KEYS => {
            match (ids.first(), ids.last()) {
                (Some(&low), Some(&high)) if claims.is_empty() => Some(Pin::IdRange { low, high }),
                _ => None,
            }
        }
        other => Some(other),
    }
}

#[cfg(test)]
mod plan_tests {
    use super::*;
    use UserQuery::*;

    fn keys(ids: &[u64], claims: &[(Claim, &str)]) -> ReadPlan {
        ReadPlan::Keys {
            ids: ids.iter().copied().collect(),
            claims: claims.iter().map(|(c, v)| (*c, v.to_string())).collect(),
        }
    }

    fn id_in(ids: &[u64]) -> UserQuery {
        IdIn(ids.iter().copied().collect())
    }

    fn claim(claim: Claim, case: Case, values: &[&str]) -> UserQuery {
        ClaimIn(claim, case, values.iter().map(|v| v.to_string()).collect())
    }

    fn username(name: &str) -> UserQuery {
        claim(Claim::Username, Case::Exact, &[name])
    }

    fn scim_username(name: &str) -> UserQuery {
        claim(Claim::Username, Case::Caseless, &[name])
    }

    const INDEXED: UserQuery = Residual { indexed: true };
    const OTHER: UserQuery = Residual { indexed: false };

    #[test]
    fn plans() {
        use Claim::{Email, ExternalId, Username};
        let range = |low, high| ReadPlan::IdRange { low, high };
        let cases: Vec<(UserQuery, ReadPlan)> = vec![
            (And(vec![]), ReadPlan::SearchIndex),
            (INDEXED, ReadPlan::SearchIndex),
            (OTHER, ReadPlan::Pass),
            (And(vec![INDEXED, OTHER]), ReadPlan::Pass),
            (Nobody, keys(&[], &[])),
            (id_in(&[3, 1]), keys(&[1, 3], &[])),
            (username("x"), keys(&[], &[(Username, "x")])),
            (
                claim(Email, Case::Caseless, &["a@b.c"]),
                keys(&[], &[(Email, "a@b.c")]),
            ),
            (IdBetween(Some(3), Some(8)), range(3, 8)),
            (IdBetween(None, Some(-1)), keys(&[], &[])),
            (IdBetween(Some(10), None), range(10, u64::MAX)),
            (
                IdBetween(Some(i128::from(u64::MAX) + 1), None),
                keys(&[], &[]),
            ),
            // An `and` keeps the exact intersection where it is cheap...
            (
                And(vec![IdBetween(Some(4), None), IdBetween(None, Some(8))]),
                range(4, 8),
            ),
            (
                And(vec![IdBetween(Some(9), None), IdBetween(None, Some(8))]),
                range(9, 8),
            ),
            (
                And(vec![id_in(&[1, 5, 20]), IdBetween(None, Some(9))]),
                keys(&[1, 5], &[]),
            ),
            (And(vec![id_in(&[1, 5]), id_in(&[5, 6])]), keys(&[5], &[])),
            (And(vec![username("a"), username("b")]), keys(&[], &[])),
            // (an exact `==` tells `X` and `x` apart, SCIM's `eq` does not)
            (And(vec![username("X"), username("x")]), keys(&[], &[])),
            (
                And(vec![scim_username("X"), scim_username("x")]),
                keys(&[], &[(Username, "X")]),
            ),
            (
                And(vec![scim_username("STRASSE"), scim_username("straße")]),
                keys(&[], &[(Username, "STRASSE")]),
            ),
            // ...and else the smaller side, the first of equals.
            (
                And(vec![username("x"), id_in(&[1, 2])]),
                keys(&[], &[(Username, "x")]),
            ),
            (
                And(vec![OTHER, scim_username("u"), id_in(&[1])]),
                keys(&[], &[(Username, "u")]),
            ),
            (
                And(vec![
                    claim(Username, Case::Caseless, &["a"]),
                    claim(ExternalId, Case::Exact, &["b"]),
                ]),
                keys(&[], &[(Username, "a")]),
            ),
            (And(vec![scim_username("u"), Nobody]), keys(&[], &[])),
            (And(vec![Nobody, scim_username("u")]), keys(&[], &[])),
            // An `or` pins only when all its members do.
            (
                Or(vec![username("x"), id_in(&[4])]),
                keys(&[4], &[(Username, "x")]),
            ),
            (Or(vec![IdBetween(None, Some(2)), id_in(&[9])]), range(0, 9)),
            (
                Or(vec![IdBetween(None, Some(2)), username("x")]),
                ReadPlan::SearchIndex,
            ),
            (Or(vec![id_in(&[1]), INDEXED]), ReadPlan::SearchIndex),
            (
                Or(vec![id_in(&[1]), claim(Email, Case::Caseless, &[]), OTHER]),
                ReadPlan::Pass,
            ),
        ];
        for (query, want) in cases {
            assert_eq!(ReadPlan::of(&query), want, "{query:?}");
        }
    }

    /// Ranges of modification time (SCIM's `meta.lastModified`): narrowed
    /// by `and`, joined by `or`, beaten by keys, nobody when they cannot meet.
    #[test]
    fn modification_times_plan_as_a_range_of_the_index_of_changes() {
        use chrono::TimeZone;
        let t = |s: u32| Some(Utc.with_ymd_and_hms(2026, 1, 31, 12, 0, s).unwrap());
        let between = |a, b| ModifiedBetween(a, b);
        let modified = |since, until| ReadPlan::Modified { since, until };
        let cases: Vec<(UserQuery, ReadPlan)> = vec![
            (between(t(1), None), modified(t(1), None)),
            (
                And(vec![between(t(1), None), between(None, t(9))]),
                modified(t(1), t(9)),
            ),
            (
                And(vec![between(t(1), t(8)), between(t(3), t(9))]),
                modified(t(3), t(8)),
            ),
            (
                And(vec![between(t(5), None), between(None, t(4))]),
                keys(&[], &[]),
            ),
            (
                Or(vec![between(t(5), t(6)), between(t(1), t(2))]),
                modified(t(1), t(6)),
            ),
            (
                Or(vec![between(t(5), None), between(t(1), t(2))]),
                modified(t(1), None),
            ),
            (
                And(vec![between(t(1), None), scim_username("u")]),
                keys(&[], &[(Claim::Username, "u")]),
            ),
            (
                And(vec![IdBetween(Some(3), None), between(t(1), None)]),
                modified(t(1), None),
            ),
            (And(vec![OTHER, between(t(1), None)]), modified(t(1), None)),
            (
                Or(vec![between(t(1), None), scim_username("u")]),
                ReadPlan::Pass,
            ),
            (Or(vec![between(t(1), None), OTHER]), ReadPlan::Pass),
        ];
        for (query, want) in cases {
            assert_eq!(ReadPlan::of(&query), want, "{query:?}");
        }
    }

    #[test]
    fn too_many_keys_become_a_range_or_no_pin() {
        let many: BTreeSet<u64> = (1..=MAX_KEYS as u64 + 1).map(|i| i * 2).collect();
        assert_eq!(
            ReadPlan::of(&IdIn(many)),
            ReadPlan::IdRange {
                low: 2,
                high: 2 * (MAX_KEYS as u64 + 1)
            }
        );
        let names: Vec<String> = (0..=MAX_KEYS).map(|i| format!("u{i}")).collect();
        let by_name = ClaimIn(Claim::Username, Case::Exact, names.clone());
        assert_eq!(ReadPlan::of(&by_name), ReadPlan::SearchIndex);
        let by_email = ClaimIn(Claim::Email, Case::Caseless, names);
        assert_eq!(ReadPlan::of(&by_email), ReadPlan::Pass);
    }

    #[test]
    fn only_small_keyed_plans_are_prefetched() {
        use Claim::Username;
        assert!(keys(&[1, 2], &[(Username, "a")]).prefetch(3).is_some());
        assert!(keys(&[1, 2], &[(Username, "a"), (Username, "b")])
            .prefetch(3)
            .is_none());
        let range = ReadPlan::IdRange { low: 1, high: 2 };
        assert!(range.prefetch(3).is_none());
        assert!(ReadPlan::SearchIndex.prefetch(3).is_none());
        assert!(ReadPlan::Pass.prefetch(3).is_none());
    }
}
