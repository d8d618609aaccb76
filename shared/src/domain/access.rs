//! Who is asking, and what they may do: the decisions both APIs share.
use super::user::User;

/// The authenticated user of a request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user: User,
    /// A read-only token: every write is refused.
    pub read_only: bool,
}

impl Caller {
    /// Provisioning (SCIM) needs ODM's "Manage organization" permission:
    /// the `admin` privilege.
    pub fn may_provision(&self) -> bool {
        self.user.is_admin()
    }

    /// Whether the caller's credential allows writes at all.
    pub fn may_write(&self) -> bool {
        !self.read_only
    }
}

/// An organization as a request names it: by slug (`org=`, `X-Organization`)
/// or by id (`org_id=`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrgRef {
    Slug(String),
    Id(u64),
}

impl std::fmt::Display for OrgRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OrgRef::Slug(slug) => f.write_str(slug),
            OrgRef::Id(id) => write!(f, "{id}"),
        }
    }
}

/// The organization context an admin request asks for, before it is looked up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrgContext {
    /// No org named: the sandbox.
    Sandbox,
    /// `org=` given empty: users with no memberships.
    NoOrg,
    Named(OrgRef),
}

impl OrgContext {
    pub fn named(&self) -> Option<&OrgRef> {
        match self {
            OrgContext::Named(org) => Some(org),
            OrgContext::Sandbox | OrgContext::NoOrg => None,
        }
    }
}

/// The organization context of an admin request, once resolved.
#[derive(Debug, Clone, PartialEq)]
pub enum OrgScope {
    /// No org context: the sandbox.
    Sandbox,
    /// `org=` given empty: users with no memberships.
    NoOrg,
    Org {
        slug: String,
        id: u64,
    },
}

impl OrgScope {
    /// Whether a user belongs in a list scoped by this (any membership of
    /// the org counts, active or not).
    pub fn holds(&self, user: &User) -> bool {
        match self {
            OrgScope::Sandbox => true,
            OrgScope::NoOrg => user.memberships.is_empty(),
            OrgScope::Org { id, .. } => user.memberships.iter().any(|m| m.org_id == *id),
        }
    }
}

pub fn is_active_member(user: &User, org_id: u64) -> bool {
    user.memberships
        .iter()
        .any(|m| m.org_id == org_id && m.is_active)
}

/// Whether `me` may see user `id`, whose stored record is `target`: themselves,
/// an admin, or (in an org context) an active member of that org looking at
/// another active member of it. Decided from these rules alone, so that neither
/// the filters nor the existence of a user the caller may not see can change
/// the answer.
pub fn may_see(me: &User, id: Option<u64>, target: Option<&User>, scope: &OrgScope) -> bool {
    if me.is_admin() || id == Some(me.id) {
        return true;
    }
    match scope {
        OrgScope::Org { id: org, .. } => {
            is_active_member(me, *org) && target.is_some_and(|t| is_active_member(t, *org))
        }
        OrgScope::Sandbox | OrgScope::NoOrg => false,
    }
}
