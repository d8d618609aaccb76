//! A group (an organisation) and the changes a client asks of one, as typed
//! values: what the SCIM API reads from a body, and what the group service
//! applies.
use std::collections::HashSet;

use chrono::{DateTime, Utc};

/// The most members one response lists, a group or a page of groups. A
/// group (or page) with more answers 400 `tooMany` unless
/// `excludedAttributes=members` is asked for (or a smaller `count`); the
/// members are then read through the admin API (`GET /api/users?org=<slug>`).
/// At about 100 bytes a member, this keeps a response near 2 MB, well inside
/// Lambda's 6 MB.
pub const MAX_LISTED_MEMBERS: usize = 20_000;

/// A new group, or a PUT's whole replacement.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupBody {
    pub name: String,
    pub external_id: Option<String>,
    /// The member ids as sent (`None`: the body has no `members`).
    pub members: Option<Vec<String>>,
}

/// What a PATCH does to the members, all operations folded in order:
/// `clear` drops every current member not in `add`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MemberPlan {
    pub clear: bool,
    pub add: Vec<String>,
    pub remove: Vec<String>,
}

impl MemberPlan {
    pub fn is_empty(&self) -> bool {
        !self.clear && self.add.is_empty() && self.remove.is_empty()
    }

    /// Adds `ids` (once each, in order), taking back any earlier remove of
    /// them. Linear in the ids, so a list of 20,000 members is read in
    /// milliseconds, well inside the request's budget.
    pub fn add(&mut self, ids: Vec<String>) {
        push_new(&mut self.add, &mut self.remove, ids);
    }

    /// Removes `ids` (once each, in order), taking back any earlier add.
    pub fn remove(&mut self, ids: Vec<String>) {
        push_new(&mut self.remove, &mut self.add, ids);
    }

    pub fn replace(&mut self, ids: Vec<String>) {
        *self = MemberPlan::default();
        self.clear = true;
        self.add(ids);
    }
}

/// `ids` onto `to`, those it holds already skipped, and out of `from`.
fn push_new(to: &mut Vec<String>, from: &mut Vec<String>, ids: Vec<String>) {
    let incoming: HashSet<&str> = ids.iter().map(String::as_str).collect();
    from.retain(|id| !incoming.contains(id.as_str()));
    let mut held: HashSet<String> = to.iter().cloned().collect();
    for id in ids {
        if held.insert(id.clone()) {
            to.push(id);
        }
    }
}

/// A change to a group, read from a PatchOp (or a PUT) but not applied.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GroupPatch {
    pub name: Option<String>,
    /// `Some(None)`: remove the externalId.
    pub external_id: Option<Option<String>>,
    pub members: MemberPlan,
}

/// A group: an organisation as SCIM shows it (its members are kept apart,
/// on the org and on each member's user record).
#[derive(Debug, Clone, PartialEq)]
pub struct GroupRecord {
    pub id: u64,
    /// Derived from the first name and never changed, so that org scoping
    /// (`X-Organization`) keeps working across renames.
    pub slug: String,
    pub name: String,
    pub external_id: Option<String>,
    pub created: DateTime<Utc>,
    pub last_modified: DateTime<Utc>,
    pub version: u64,
    /// Being deleted: hidden from every read, its members being removed.
    pub deleting: bool,
}
