//! Organizations and memberships as CVAT shows them: the roles, the
//! memberships' ids, and who may see which org and which membership.
//!
//! A membership is stored twice, in one transaction: on the member's user
//! item ([`super::user::Membership`], so a caller's orgs arrive with the
//! caller) and as a member item of its org (with the date it was added). Its
//! id is not stored anywhere: it is made from the org's and the user's ids
//! ([`membership_id`]), so every membership, old ones included, has one, a
//! read by id needs no lookup, and adding a member writes nothing more.
use chrono::{DateTime, Utc};

use super::user::User;

/// A member's role in an org, lowest first (CVAT's priorities, reversed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    Worker,
    Supervisor,
    Maintainer,
    Owner,
}

impl Role {
    pub const ALL: [Role; 4] = [
        Role::Worker,
        Role::Supervisor,
        Role::Maintainer,
        Role::Owner,
    ];

    pub fn parse(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            Role::Worker => "worker",
            Role::Supervisor => "supervisor",
            Role::Maintainer => "maintainer",
            Role::Owner => "owner",
        }
    }

    /// The role a stored value names. Every writer stores one of the four
    /// names (`usersctl org add-member` checks it, SCIM adds `worker`); an
    /// item written without one reads as `worker`, the default role, as the
    /// user item's memberships do.
    pub fn stored(name: &str) -> Role {
        Role::parse(name).unwrap_or(Role::Worker)
    }

    /// CVAT's staff of an org (owner, maintainer): they also see the
    /// memberships that are not active.
    pub fn is_staff(self) -> bool {
        self >= Role::Maintainer
    }
}

/// How many user ids one org spans in the membership id space.
pub const USER_IDS_PER_ORG: u64 = 10_000_000_000;

/// The id of the membership of user `user_id` in org `org_id`:
/// `org_id * 10^10 + user_id`, so `30000000007` is user 7 in org 3. Stable
/// while the membership exists; a membership removed and added again gets
/// the same id. Exact in JavaScript clients (below 2^53) while org ids stay
/// below 900,719 and user ids below 10^10.
pub fn membership_id(org_id: u64, user_id: u64) -> u64 {
    org_id
        .saturating_mul(USER_IDS_PER_ORG)
        .saturating_add(user_id)
}

/// The (org id, user id) a membership id names, when it can name one.
pub fn split_membership_id(id: u64) -> Option<(u64, u64)> {
    let (org, user) = (id / USER_IDS_PER_ORG, id % USER_IDS_PER_ORG);
    (org > 0 && user > 0).then_some((org, user))
}

/// One membership, as its org's member item holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    pub org_id: u64,
    pub user_id: u64,
    pub role: Role,
    pub is_active: bool,
    /// When the membership was added; `None` for members added before this
    /// was recorded.
    pub joined: Option<DateTime<Utc>>,
}

impl Member {
    pub fn id(&self) -> u64 {
        membership_id(self.org_id, self.user_id)
    }
}

/// `user`'s role in org `org_id`, if they are an active member of it.
pub fn active_role(user: &User, org_id: u64) -> Option<Role> {
    user.memberships
        .iter()
        .find(|m| m.org_id == org_id && m.is_active)
        .map(|m| Role::stored(&m.role))
}

/// Whether `user` may see org `org_id` and list its memberships: an admin
/// sees every org, anyone else the orgs they are an active member of. Decided
/// from the caller's own record alone, so whether the org exists never
/// changes the answer for anyone who may not see it.
pub fn may_see_org(user: &User, org_id: u64) -> bool {
    user.is_admin() || active_role(user, org_id).is_some()
}

/// Whether `user` sees the memberships of org `org_id` that are not active
/// (CVAT: admins, and the org's owners and maintainers); other members see
/// only the active ones.
pub fn sees_inactive_members(user: &User, org_id: u64) -> bool {
    user.is_admin() || active_role(user, org_id).is_some_and(Role::is_staff)
}

/// Whether `viewer` may see a membership of org `org_id` that is active or
/// not (`active`): one of an org they may see, and an active one unless they
/// see inactive ones too.
pub fn may_see_member(viewer: &User, org_id: u64, active: bool) -> bool {
    may_see_org(viewer, org_id) && (active || sees_inactive_members(viewer, org_id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::user::{Group, Membership};

    fn member_of(org_id: u64, role: &str, is_active: bool) -> User {
        let mut u = User::new("m");
        u.id = 5;
        u.memberships.push(Membership {
            org_slug: format!("org{org_id}"),
            org_id,
            role: role.into(),
            is_active,
        });
        u
    }

    #[test]
    fn ids_name_the_org_and_the_user() {
        let cases = [
            (1, 7, 10_000_000_007),
            (3, 9_999_999_999, 39_999_999_999),
            (900_719, 1, 9_007_190_000_000_001),
        ];
        for (org, user, id) in cases {
            assert_eq!(membership_id(org, user), id);
            assert_eq!(split_membership_id(id), Some((org, user)));
        }
        assert!(membership_id(900_718, USER_IDS_PER_ORG - 1) < 1 << 53);
        assert!(membership_id(900_719, USER_IDS_PER_ORG - 1) > 1 << 53);
        for id in [0, 7, 10_000_000_000, 20_000_000_000] {
            assert_eq!(split_membership_id(id), None, "{id}");
        }
    }

    #[test]
    fn roles_read_as_stored_and_rank_like_cvat() {
        assert_eq!(Role::stored("maintainer"), Role::Maintainer);
        assert_eq!(Role::stored("boss"), Role::Worker);
        assert!(Role::Owner > Role::Maintainer && Role::Supervisor > Role::Worker);
        let staff: Vec<Role> = Role::ALL.into_iter().filter(|r| r.is_staff()).collect();
        assert_eq!(staff, [Role::Maintainer, Role::Owner]);
        for role in Role::ALL {
            assert_eq!(Role::parse(role.name()), Some(role));
        }
    }

    #[test]
    fn who_sees_what() {
        let mut admin = User::new("root");
        admin.groups = vec![Group::Admin];
        let worker = member_of(3, "worker", true);
        let owner = member_of(3, "owner", true);
        let invited = member_of(3, "maintainer", false);
        let outsider = User::new("x");
        // (viewer, org, active membership?, sees it)
        let cases: &[(&User, u64, bool, bool)] = &[
            (&admin, 3, true, true),
            (&admin, 4, false, true),
            (&worker, 3, true, true),
            (&worker, 3, false, false),
            (&worker, 4, true, false),
            (&owner, 3, false, true),
            (&invited, 3, true, false),
            (&outsider, 3, true, false),
        ];
        for (viewer, org, active, sees) in cases {
            assert_eq!(
                may_see_member(viewer, *org, *active),
                *sees,
                "{} {org} {active}",
                viewer.username
            );
        }
        assert!(may_see_org(&worker, 3) && !may_see_org(&worker, 4));
        assert!(!may_see_org(&invited, 3));
        assert!(may_see_org(&admin, 99));
    }
}
