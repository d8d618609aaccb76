//! The directory's operations, one layer above the store. Each takes the
//! caller's credentials and a typed change, authenticates, decides what the
//! caller may do, reads what it needs in the caller's own batch read, retries
//! a lost race, and answers in the domain's terms ([`Failure`]). An API
//! extracts a typed request, calls one operation and renders what it
//! answers: no rule is decided in a handler.
//!
//! Layers: `domain` ← `store` ← `service` ← `admin_api`, `scim`.
pub mod accounts;
pub mod group_lists;
pub mod groups;
pub mod orgs;
pub mod search;
pub mod tenant_groups;
pub mod user_lists;
pub mod users;

use crate::auth;
pub use crate::auth::Identity;
use crate::domain::user::User;
use crate::domain::{Denied, OrgRef};
use crate::store::{StoreError, UniqueField};

/// Why an operation did not happen. `E` is the API's own error, which its
/// change (a PATCH, a body applied to a record) may refuse with.
#[derive(Debug)]
pub enum Failure<E> {
    /// Credentials missing or wrong, or a username locked out.
    Auth(auth::Failure),
    /// The caller may not do this at all.
    Forbidden,
    /// A read-only credential asked for a write.
    ReadOnly,
    /// No such record, or none the caller may see.
    NotFound,
    /// `If-Match` names another version than the record's (`current`).
    Precondition {
        current: u64,
    },
    /// Another write won every attempt, or won once against a client that
    /// pinned a version.
    Lost,
    /// A uniqueness claim belongs to another record; `attempted` is what
    /// the write tried to store.
    Taken {
        field: UniqueField,
        attempted: Box<User>,
    },
    /// The record an upsert names (by `username`) is being changed
    /// concurrently.
    Busy {
        username: String,
    },
    /// An upsert names (by `username`) a record the identity provider does
    /// not own.
    NotOwned {
        username: String,
    },
    /// A user write named as the user's manager a user that does not exist.
    UnknownManager(u64),
    /// A group write named users that do not exist (as sent).
    UnknownMembers(Vec<String>),
    /// A tenant group would hold more members than it may (`limit`).
    TooManyMembers {
        limit: usize,
    },
    /// A group's name or externalId claim belongs to another group.
    GroupTaken {
        field: UniqueField,
        name: String,
        external_id: Option<String>,
    },
    /// A group changed under every attempt of a write that pinned no version.
    Changed,
    /// The organization a request's context (or SCIM tenant base) names
    /// does not exist.
    NoSuchOrg(OrgRef),
    /// Under a tenant base: a userName or email outside the org's domains
    /// (`refused`; `allowed` says which are), refused before any lookup.
    OutsideDomains {
        refused: String,
        allowed: String,
    },
    /// What the request asks for is not there for this caller (`/Me` under
    /// a tenant base: the org's credential is no user).
    NotImplemented,
    /// The change refused: the API's own error.
    Refused(E),
    Store(StoreError),
}

impl<E> From<StoreError> for Failure<E> {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => Failure::NotFound,
            other => Failure::Store(other),
        }
    }
}

impl<E> From<Denied> for Failure<E> {
    fn from(denied: Denied) -> Self {
        match denied {
            Denied::Forbidden => Failure::Forbidden,
            Denied::NoSuchOrg(org) => Failure::NoSuchOrg(org),
        }
    }
}

impl<E> From<auth::Failure> for Failure<E> {
    fn from(f: auth::Failure) -> Self {
        Failure::Auth(f)
    }
}
