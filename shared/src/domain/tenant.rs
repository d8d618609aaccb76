//! Organizations as SCIM tenants: each org can have its own identity
//! provider, which provisions through the org's tenant base with the org's
//! own credentials. What the org may provision is decided here: the users it
//! owns (created under its base), with names in its verified domains.
use super::orgs::Role;
use super::tenant_group::RoleMap;
use super::user::{rules::fold, User};

/// Which names an org may provision under its tenant base.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Domains {
    /// `usersctl org domain add --any`: any name nobody holds (the 409 of a
    /// taken one tells the tenant that the name exists).
    pub any: bool,
    /// Verified domains, folded (lower case); each belongs to one org only.
    pub listed: Vec<String>,
}

impl Domains {
    /// Whether a userName or an email may be provisioned: with `any`,
    /// anything; otherwise an address `local@domain` whose domain (caseless)
    /// is one of the listed ones. No domain listed: nothing.
    pub fn allow(&self, name: &str) -> bool {
        if self.any {
            return true;
        }
        match name.rsplit_once('@') {
            Some((local, domain)) if !local.is_empty() => {
                let domain = fold(domain);
                self.listed.contains(&domain)
            }
            _ => false,
        }
    }

    /// The first of `user`'s userName and email that the org may not
    /// provision, if any (an empty email is no email).
    pub fn refused<'u>(&self, user: &'u User) -> Option<&'u str> {
        std::iter::once(user.username.as_str())
            .chain((!user.email.is_empty()).then_some(user.email.as_str()))
            .find(|name| !self.allow(name))
    }

    /// What the refusal says is allowed.
    pub fn describe(&self) -> String {
        if self.any {
            "any name".to_string()
        } else if self.listed.is_empty() {
            "none: the organization has no verified domain".to_string()
        } else {
            self.listed
                .iter()
                .map(|d| format!("@{d}"))
                .collect::<Vec<_>>()
                .join(", ")
        }
    }
}

/// An org as a tenant: what a request under its base is scoped to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    pub org_id: u64,
    pub slug: String,
    /// The role users created under the base get in the org.
    pub default_role: Role,
    pub domains: Domains,
    /// The tenant groups mapped to roles (`usersctl org map-group`).
    pub roles: RoleMap,
}

impl Tenant {
    /// Whether the tenant reaches `user`: only the users it owns.
    pub fn owns(&self, user: &User) -> bool {
        user.owner == Some(self.org_id)
    }
}

/// A domain as an operator names it: trimmed, without a leading `@`,
/// folded. `None` when it is not a plausible DNS name.
pub fn domain_name(raw: &str) -> Option<String> {
    let d = fold(raw.trim().trim_start_matches('@'));
    let plausible = !d.is_empty()
        && d.len() <= 253
        && d.contains('.')
        && d.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_alphanumeric() || c == '-')
        });
    plausible.then_some(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_listed_domains_pass_unless_any() {
        let d = Domains {
            any: false,
            listed: vec!["acme.com".into()],
        };
        assert!(d.allow("a@acme.com"));
        assert!(d.allow("a@ACME.com"));
        assert!(!d.allow("a@evil.com"));
        assert!(!d.allow("a@sub.acme.com"));
        assert!(!d.allow("@acme.com"));
        assert!(!d.allow("acme.com"));
        assert!(!d.allow("a@evil.com@acme.co"));
        assert!(!Domains::default().allow("a@acme.com"));
        let any = Domains {
            any: true,
            listed: vec![],
        };
        assert!(any.allow("bjensen"));
        let mut u = User::new("a@acme.com");
        u.email = "a@evil.com".into();
        assert_eq!(d.refused(&u), Some("a@evil.com"));
        u.email.clear();
        assert_eq!(d.refused(&u), None);
    }

    #[test]
    fn domains_are_dns_names() {
        assert_eq!(domain_name(" @Acme.COM "), Some("acme.com".into()));
        for bad in ["", "acme", "a..com", "-a.com", "a b.com", "a@b.com"] {
            assert_eq!(domain_name(bad), None, "{bad}");
        }
    }
}
