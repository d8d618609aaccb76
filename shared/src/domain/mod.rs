//! The domain: the user record, the rules every write obeys, and the query
//! model both APIs lower their filters into. It knows neither HTTP nor
//! DynamoDB: the store and the two APIs import it, never the other way round.
//!
//! This file holds what every request carries into the domain: the ids and
//! versions clients write, and who is asking with what they may do.
pub mod group;
pub mod listing;
pub mod orgs;
pub mod profile;
pub mod query;
pub mod tenant;
pub mod tenant_group;
pub mod user;

use self::tenant::Tenant;
use self::user::User;

// ------------------------------------------------------------ ids
// Ids as clients write them.

/// An id as SCIM paths and `value`s carry it: the canonical decimal a
/// response writes, so that `"007"` or `"+7"` names nothing rather than
/// record 7 (SCIM ids are strings, compared exactly).
pub fn canonical_id(text: &str) -> Option<u64> {
    text.parse::<u64>().ok().filter(|id| id.to_string() == text)
}

// ------------------------------------------------------------ version
// Record versions as clients see them: every write adds 1 to a record's
// `version`, which both SCIM resource types show as a weak entity tag and
// take back in `If-Match`.

/// A record's version as a weak entity tag (`meta.version`, `ETag`).
pub fn etag(version: u64) -> String {
    format!("W/\"{version}\"")
}

/// `If-Match` holds when absent, `*`, or naming the current version (weak
/// or strong form, one of a list).
pub fn if_match_holds(header: Option<&str>, version: u64) -> bool {
    let Some(header) = header else { return true };
    let current = version.to_string();
    header
        .split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || tag.trim_start_matches("W/").trim_matches('"') == current)
}

// ------------------------------------------------------------ access
// Who is asking, and what they may do: the decisions both APIs share.

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

/// Who provisions through SCIM: a person (an admin, at any base), or an
/// org's own credential (a tenant token, only under that org's base).
#[derive(Debug, Clone)]
pub enum Acting {
    Person(Box<User>),
    /// The tenant's own credential: no person, so no `/Me`.
    Org,
}

/// The caller of a SCIM request, and the base it came through: the global
/// base (`tenant: None`, every user) or an org's (only the users it owns).
#[derive(Debug, Clone)]
pub struct Provisioner {
    pub acting: Acting,
    /// A read-only credential: every write is refused.
    pub read_only: bool,
    pub tenant: Option<Tenant>,
}

impl Provisioner {
    /// A person signed in at the global base.
    pub fn global(caller: Caller) -> Provisioner {
        Provisioner {
            acting: Acting::Person(Box::new(caller.user)),
            read_only: caller.read_only,
            tenant: None,
        }
    }

    /// Provisioning needs ODM's "Manage organization" permission: a global
    /// admin has it everywhere, an org's own credential in its org.
    pub fn may_provision(&self) -> bool {
        match &self.acting {
            Acting::Person(user) => user.is_admin(),
            Acting::Org => self.tenant.is_some(),
        }
    }

    pub fn may_write(&self) -> bool {
        !self.read_only
    }

    /// Whether this provisioner may provision through the base it came
    /// through (`tenant_base`: the slug of an org's SCIM base, if it came
    /// through one). A global admin under the base of an org that does not
    /// exist: [`Denied::NoSuchOrg`] (a tenant token there never
    /// authenticates, like any wrong token).
    pub fn admitted(&self, tenant_base: Option<&str>) -> Result<(), Denied> {
        if !self.may_provision() {
            return Err(Denied::Forbidden);
        }
        match (tenant_base, &self.tenant) {
            (Some(slug), None) => Err(Denied::NoSuchOrg(OrgRef::Slug(slug.to_string()))),
            _ => Ok(()),
        }
    }

    /// Whether the request reaches `user`: at the global base everyone, at a
    /// tenant base only the users the tenant owns (a global admin there
    /// sees what the tenant sees).
    pub fn reaches(&self, user: &User) -> bool {
        self.tenant.as_ref().is_none_or(|t| t.owns(user))
    }

    /// The person signed in, if a person is.
    pub fn person(&self) -> Option<&User> {
        match &self.acting {
            Acting::Person(user) => Some(user),
            Acting::Org => None,
        }
    }
}

/// Why an authenticated caller may not do what it asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    /// The caller lacks the permission.
    Forbidden,
    /// The organization the request names does not exist.
    NoSuchOrg(OrgRef),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_match_forms() {
        for (header, holds) in [
            (None, true),
            (Some("*"), true),
            (Some("W/\"3\""), true),
            (Some("\"3\""), true),
            (Some("W/\"2\", W/\"3\""), true),
            (Some("W/\"2\""), false),
        ] {
            assert_eq!(if_match_holds(header, 3), holds, "{header:?}");
        }
    }

    #[test]
    fn who_may_provision_where() {
        let person = |group: user::Group| {
            let mut user = User::new("someone");
            user.groups = vec![group];
            Provisioner::global(Caller {
                user,
                read_only: false,
            })
        };
        let tenant = Tenant {
            org_id: 7,
            slug: "acme".into(),
            default_role: orgs::Role::Worker,
            domains: Default::default(),
            roles: Default::default(),
        };
        let admin = person(user::Group::Admin);
        let org = Provisioner {
            acting: Acting::Org,
            read_only: false,
            tenant: Some(tenant.clone()),
        };
        let admin_at_acme = Provisioner {
            tenant: Some(tenant),
            ..admin.clone()
        };
        let no_such_org = Err(Denied::NoSuchOrg(OrgRef::Slug("gone".into())));
        for (who, base, answer) in [
            (&admin, None, Ok(())),
            (&admin_at_acme, Some("acme"), Ok(())),
            // the base names an org that does not exist (no tenant was read)
            (&admin, Some("gone"), no_such_org.clone()),
            (&person(user::Group::User), None, Err(Denied::Forbidden)),
            // permission first: a non-admin learns nothing of which orgs exist
            (
                &person(user::Group::User),
                Some("gone"),
                Err(Denied::Forbidden),
            ),
            (&org, Some("acme"), Ok(())),
        ] {
            assert_eq!(who.admitted(base), answer, "{who:?} at {base:?}");
        }
    }

    #[test]
    fn canonical_ids_only() {
        for (text, id) in [
            ("7", Some(7)),
            ("007", None),
            ("+7", None),
            ("x", None),
            ("", None),
        ] {
            assert_eq!(canonical_id(text), id, "{text:?}");
        }
    }
}
