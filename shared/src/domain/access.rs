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
