//! A tenant's own groups (the groups a customer's identity provider pushes
//! under the org's SCIM tenant base) and how they become roles in the org:
//! the org maps group names to roles, and a member's role is the highest
//! role among the mapped groups they are in, or the org's default role.
use std::collections::{BTreeMap, BTreeSet};

use super::group::GroupRecord;
use super::orgs::Role;
use super::user::rules::fold;

/// The most members a tenant group holds: its record is one item (at most
/// 400 KB in DynamoDB), and a response lists a group whole.
pub const MAX_MEMBERS: usize = 20_000;

/// A group inside one tenant: its record (id, names, version; `slug` is the
/// tenant's) and its members, the ids of users the tenant owns.
#[derive(Debug, Clone, PartialEq)]
pub struct TenantGroup {
    pub record: GroupRecord,
    pub members: BTreeSet<u64>,
}

impl TenantGroup {
    pub fn has(&self, user_id: u64) -> bool {
        self.members.contains(&user_id)
    }

    /// The members in id order, as a response lists them.
    pub fn member_ids(&self) -> Vec<u64> {
        self.members.iter().copied().collect()
    }
}

/// The group names an org maps to roles (`usersctl org map-group`), folded
/// as usernames are (caseless), so a mapping set before the identity
/// provider pushes the group applies as soon as it does.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoleMap {
    by_name: BTreeMap<String, Role>,
}

impl RoleMap {
    /// The mapping from (name as stored, folded) → role.
    pub fn from_folded(by_name: BTreeMap<String, Role>) -> RoleMap {
        RoleMap { by_name }
    }

    /// The key a group name is mapped under.
    pub fn key(name: &str) -> String {
        fold(name)
    }

    /// The role group `name` gives, if it is mapped.
    pub fn role_of(&self, name: &str) -> Option<Role> {
        self.by_name.get(&Self::key(name)).copied()
    }

    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    /// Every mapping, by folded name.
    pub fn entries(&self) -> impl Iterator<Item = (&str, Role)> {
        self.by_name.iter().map(|(k, r)| (k.as_str(), *r))
    }

    /// The role of `user_id` in the org: the highest role among the mapped
    /// `groups` they are in, else `default`.
    pub fn role(&self, user_id: u64, groups: &[TenantGroup], default: Role) -> Role {
        groups
            .iter()
            .filter(|g| g.has(user_id))
            .filter_map(|g| self.role_of(&g.record.name))
            .max()
            .unwrap_or(default)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::user::now;

    fn group(id: u64, name: &str, members: &[u64]) -> TenantGroup {
        let at = now();
        TenantGroup {
            record: GroupRecord {
                id,
                slug: "acme".into(),
                name: name.into(),
                external_id: None,
                created: at,
                last_modified: at,
                version: 1,
                deleting: false,
            },
            members: members.iter().copied().collect(),
        }
    }

    #[test]
    fn the_highest_mapped_role_wins_else_the_default() {
        let map = RoleMap::from_folded(BTreeMap::from([
            ("admins".to_string(), Role::Owner),
            ("leads".to_string(), Role::Supervisor),
        ]));
        let groups = [
            group(1, "Admins", &[1]),
            group(2, "LEADS", &[1, 2]),
            group(3, "Everyone", &[1, 2, 3]),
        ];
        assert_eq!(map.role(1, &groups, Role::Worker), Role::Owner);
        assert_eq!(map.role(2, &groups, Role::Worker), Role::Supervisor);
        assert_eq!(map.role(3, &groups, Role::Maintainer), Role::Maintainer);
        assert_eq!(map.role(4, &groups, Role::Worker), Role::Worker);
        // The highest mapped role, even below the default.
        assert_eq!(map.role(2, &groups, Role::Maintainer), Role::Supervisor);
    }
}
