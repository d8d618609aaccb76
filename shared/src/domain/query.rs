//! The one query model over users: the fields both filter languages (SCIM
//! filters, JSON Logic) and the store's pushed-down conditions see on a user.
use std::cmp::Ordering;

use chrono::{DateTime, Utc};

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
