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

use crate::auth::{self, Credentials};
use crate::domain::user::User;
use crate::domain::{Caller, OrgRef, Provisioner};
use crate::store::{Fetched, Store, StoreError, UniqueField, Wanted};

/// Who an operation acts for. Either way the operation decides what the
/// caller may do, and reads what it needs in one batch read.
#[derive(Debug, Clone, Copy)]
pub enum Identity<'a> {
    /// Credentials as the request sent them: the operation authenticates
    /// them, in the same batch read as what it needs.
    Credentials(&'a Credentials),
    /// Credentials sent under the SCIM tenant base of org `slug`: a
    /// tenant token of that org, or a person's credentials.
    Tenant {
        credentials: &'a Credentials,
        slug: &'a str,
    },
    /// A caller the request authenticated once for several operations (a
    /// SCIM bulk request): the operation reads only what it needs.
    Caller(&'a Caller),
    /// A SCIM provisioner a bulk request authenticated once, at the base
    /// it came through.
    Provisioner(&'a Provisioner),
}

impl<'a> From<&'a Credentials> for Identity<'a> {
    fn from(credentials: &'a Credentials) -> Self {
        Identity::Credentials(credentials)
    }
}

impl<'a> From<&'a Caller> for Identity<'a> {
    fn from(caller: &'a Caller) -> Self {
        Identity::Caller(caller)
    }
}

impl<'a> From<&'a Provisioner> for Identity<'a> {
    fn from(provisioner: &'a Provisioner) -> Self {
        Identity::Provisioner(provisioner)
    }
}

impl Identity<'_> {
    /// The caller as a person, and what `wanted` names read in one strongly consistent
    /// batch read (with the caller's own record, when the credentials are
    /// checked here; none at all when nothing is wanted of a known caller).
    pub(crate) async fn resolve(
        self,
        store: &Store,
        wanted: Wanted,
    ) -> Result<(Caller, Fetched), auth::Failure> {
        match self {
            Identity::Credentials(credentials) => {
                auth::authenticate_with(store, credentials, wanted).await
            }
            Identity::Tenant { credentials, .. } => {
                auth::authenticate_with(store, credentials, wanted).await
            }
            Identity::Caller(caller) => Ok((caller.clone(), store.fetch(&wanted).await?)),
            Identity::Provisioner(p) => match p.person() {
                Some(user) => Ok((
                    Caller {
                        user: user.clone(),
                        read_only: p.read_only,
                    },
                    store.fetch(&wanted).await?,
                )),
                None => Err(auth::Failure::Unauthenticated(
                    auth::AuthError::InvalidToken,
                )),
            },
        }
    }

    /// The SCIM provisioner, at the base the identity came through, and
    /// what `wanted` names, in one batch read (with the org item under a
    /// tenant base).
    pub(crate) async fn resolve_provisioner(
        self,
        store: &Store,
        wanted: Wanted,
    ) -> Result<(Provisioner, Fetched), auth::Failure> {
        match self {
            Identity::Credentials(credentials) => {
                let (caller, fetched) = auth::authenticate_with(store, credentials, wanted).await?;
                Ok((Provisioner::global(caller), fetched))
            }
            Identity::Tenant { credentials, slug } => {
                auth::authenticate_tenant(store, credentials, slug, wanted).await
            }
            Identity::Caller(caller) => Ok((
                Provisioner::global(caller.clone()),
                store.fetch(&wanted).await?,
            )),
            Identity::Provisioner(p) => Ok((p.clone(), store.fetch(&wanted).await?)),
        }
    }

    /// The provisioner ([`Identity::resolve_provisioner`]), once it may
    /// provision: a global admin, or the tenant's own credential. A global
    /// admin under the base of an org that does not exist: `NoSuchOrg` (a
    /// tenant token there is a 401, like any wrong token).
    pub(crate) async fn provisioner<E>(
        self,
        store: &Store,
        wanted: Wanted,
    ) -> Result<(Provisioner, Fetched), Failure<E>> {
        let tenant_base = match self {
            Identity::Tenant { slug, .. } => Some(slug.to_string()),
            _ => None,
        };
        let (provisioner, fetched) = self.resolve_provisioner(store, wanted).await?;
        if !provisioner.may_provision() {
            return Err(Failure::Forbidden);
        }
        if let (Some(slug), None) = (tenant_base, &provisioner.tenant) {
            return Err(Failure::NoSuchOrg(OrgRef::Slug(slug)));
        }
        Ok((provisioner, fetched))
    }
}

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

impl<E> From<auth::Failure> for Failure<E> {
    fn from(f: auth::Failure) -> Self {
        Failure::Auth(f)
    }
}
