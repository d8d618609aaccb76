//! What a list asks for, in the domain's terms, whatever API parsed it: a
//! filter (a predicate on the record, with what the read planner needs to
//! know of it), an order and a page. The API's own filter and sort types
//! implement these traits; the service plans the reads from them, applies
//! them to what it read, and windows the result.
use super::group::GroupRecord;
use super::query::UserQuery;
use super::user::User;

/// A filter over users.
pub trait UserFilter: Sync {
    /// Whether `user` meets the whole filter.
    fn matches(&self, user: &User) -> bool;
    /// The filter in the planner's terms ([`crate::domain::query::ReadPlan`]).
    fn query(&self) -> UserQuery;
    /// Whether it compares nothing but the user's last modification time,
    /// so that a user's entry in the index of changes decides it.
    fn decided_by_time(&self) -> bool;
}

/// An equality every group a filter matches must meet, by which the
/// matches can be read by key. Values are as the filter wrote them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupKey {
    Id(String),
    Name(String),
    ExternalId(String),
    /// A member's user id: the groups of that user.
    Member(String),
}

/// A filter over groups.
pub trait GroupFilter: Sync {
    /// Whether `group` meets the whole filter; `members` are its members
    /// among [`GroupFilter::member_ids`] (the only ones it compares with).
    fn matches(&self, group: &GroupRecord, members: &[u64]) -> bool;
    /// The key every match meets, if any.
    fn key(&self) -> Option<GroupKey>;
    /// The user ids the filter compares members with, anywhere in it.
    fn member_ids(&self) -> Vec<u64>;
}

/// An order of records (ties broken by id).
pub trait Order<T>: Sync {
    fn sort(&self, items: &mut [T]);
}

/// How a list is paged: by `startIndex` (the default) or by cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Paging {
    /// The 1-based index of the first result.
    Index(usize),
    /// The page starts after this id (0: from the start).
    Cursor(u64),
}
