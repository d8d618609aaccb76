//! What happened, read from one item's image before and after a write: the
//! domain events a stream record carries.
//!
//! Only two kinds of item tell anything an app cares about, and both are
//! read with the store's own item mapping (`store::table::user_from_item`,
//! `GroupRecord::from_item`):
//! - a user item (`USER#<id>`): the user was created, changed (the SCIM
//!   attributes that differ, as the SCIM API renders them), activated,
//!   deactivated or deleted; and, from the memberships kept on it, the user
//!   joined or left an org (a SCIM Group) or got another role in it;
//! - a group record (`GROUPS`/`GROUP#<id>`): the group was created,
//!   renamed, its externalId changed, or it was deleted (the write that
//!   marks it deleting and frees its name; the record's removal after its
//!   members are gone tells nothing new).
//!
//! Every other item is internal and produces nothing: uniqueness claims
//! (which also hold the failed-login counts), tokens, the id counters, the
//! user counts, org items and their tombstones, member items (their change
//! is read from the user item written in the same transaction), a tenant's
//! own groups and their name claims (`TGROUPS#<slug>`, `TGROUPNAME#…`: the
//! roles they give are read from the user items written with them, as
//! `org role changed`), and the subscribers and deliveries of change events
//! themselves.
//!
//! Nothing secret leaves: a user is rendered as the SCIM API renders it,
//! which has no password hash, no token hashes and no login data, and the
//! changed attributes are the names of what that rendering shows.
use serde_json::{Map, Value};

use crate::domain::group::GroupRecord;
use crate::domain::profile::Profile;
use crate::domain::user::{Membership, User};
use crate::scim::schema::ResourceType;
use crate::scim::{group_resource, user_schema};
use crate::store::table::{user_from_item, Item};
use crate::store::{item_key, table};

/// The kinds of event, one EventBridge `detail-type` each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    UserCreated,
    /// SCIM attributes changed, `active` not among them.
    UserUpdated,
    /// `active` went from false to true (other attributes may have changed with it).
    UserActivated,
    /// `active` went from true to false.
    UserDeactivated,
    UserDeleted,
    GroupCreated,
    /// `displayName` changed (perhaps `externalId` with it).
    GroupRenamed,
    /// Only `externalId` changed.
    GroupUpdated,
    GroupDeleted,
    MemberAdded,
    MemberRemoved,
    /// A member's role in the org changed (`usersctl org add-member --role`).
    /// Roles are not part of SCIM, so this goes to EventBridge only.
    OrgRoleChanged,
}

impl Kind {
    pub const ALL: [Kind; 12] = [
        Kind::UserCreated,
        Kind::UserUpdated,
        Kind::UserActivated,
        Kind::UserDeactivated,
        Kind::UserDeleted,
        Kind::GroupCreated,
        Kind::GroupRenamed,
        Kind::GroupUpdated,
        Kind::GroupDeleted,
        Kind::MemberAdded,
        Kind::MemberRemoved,
        Kind::OrgRoleChanged,
    ];

    /// The EventBridge `detail-type`, what a rule matches on.
    pub fn detail_type(self) -> &'static str {
        match self {
            Kind::UserCreated => "User Created",
            Kind::UserUpdated => "User Updated",
            Kind::UserActivated => "User Activated",
            Kind::UserDeactivated => "User Deactivated",
            Kind::UserDeleted => "User Deleted",
            Kind::GroupCreated => "Group Created",
            Kind::GroupRenamed => "Group Renamed",
            Kind::GroupUpdated => "Group Updated",
            Kind::GroupDeleted => "Group Deleted",
            Kind::MemberAdded => "Member Added",
            Kind::MemberRemoved => "Member Removed",
            Kind::OrgRoleChanged => "Org Role Changed",
        }
    }
}

/// What an event is about: a SCIM resource.
#[derive(Debug, Clone, PartialEq)]
pub struct Subject {
    pub resource_type: ResourceType,
    pub id: u64,
    /// Known for users and for a group's own events; a member event is read
    /// from the user item, which does not hold the group's externalId.
    pub external_id: Option<String>,
}

impl Subject {
    /// The SCIM path relative to the base (`/Users/7`), RFC 9967's `sub_id.uri`.
    pub fn uri(&self) -> String {
        format!("/{}/{}", self.resource_type.endpoint(), self.id)
    }
}

/// The member a member or role event is about.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    pub user_id: u64,
    /// The role in the org after the change (before it, for a removal).
    pub role: String,
    /// The role before a role change.
    pub previous_role: Option<String>,
}

/// One thing that happened to one resource.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub kind: Kind,
    pub subject: Subject,
    /// The subject as the SCIM API renders it: after the change, or before
    /// it for a deletion. `None` for member and role events: the group is
    /// not in the user item they are read from (and its member list could
    /// be long); the member is in `member`.
    pub resource: Option<Value>,
    /// The SCIM paths that changed (`displayName`, `name.givenName`,
    /// `active`), for updates, (de)activations and renames.
    pub changed: Vec<String>,
    pub member: Option<Member>,
    /// The slug of the org the event belongs to, which an org-scoped
    /// subscriber is limited to: the group's own org for group, member and
    /// role events. `None` for user events (see `owner`).
    pub org: Option<String>,
    /// For user events, the id of the org that owns the user (provisioned it
    /// under its SCIM tenant base): that org's subscribers get them, and
    /// the EventBridge detail names it. `None`: a user no org owns, whose
    /// events go only to subscribers without an org.
    pub owner: Option<u64>,
}

/// How an event shows a user: as the `rfc` profile's SCIM API does, which
/// shows everything the `odm` profile does (a user written through `odm`
/// looks the same in both, but for `emails`' `type`) and what `rfc` keeps.
const SHOWN_AS: Profile = Profile::Rfc;

/// The events of one write of one item, given its images before (`old`) and
/// after (`new`) the write; `origin` is where clients reach the API, the base
/// of the `meta.location` and `$ref` links the renderings carry. An image that
/// is not a well-formed item of its kind (only a bug or a hand edit makes
/// one) gives nothing, with a warning.
pub fn events(old: Option<&Item>, new: Option<&Item>, origin: &str) -> Vec<Event> {
    let Some(any) = new.or(old) else {
        return Vec::new();
    };
    let (pk, sk) = item_key(any);
    // What the renderings link to: the global SCIM base.
    let origin = &crate::scim::base_url(origin);
    if table::parse_user(&pk, &sk).is_some() {
        match (parse(old, user_from_item), parse(new, user_from_item)) {
            (Some(old), Some(new)) => user_events(old.as_ref(), new.as_ref(), origin),
            _ => malformed(&pk, &sk),
        }
    } else if pk == table::GROUPS_PARTITION && table::parse_group(&sk).is_some() {
        match (
            parse(old, GroupRecord::from_item),
            parse(new, GroupRecord::from_item),
        ) {
            (Some(old), Some(new)) => group_events(old.as_ref(), new.as_ref(), origin),
            _ => malformed(&pk, &sk),
        }
    } else {
        Vec::new()
    }
}

/// `Some(None)` for an absent image, `Some(Some(record))` for a well-formed
/// one, `None` for one that does not read.
fn parse<T>(image: Option<&Item>, read: impl Fn(&Item) -> Option<T>) -> Option<Option<T>> {
    match image {
        None => Some(None),
        Some(item) => read(item).map(Some),
    }
}

fn malformed(pk: &str, sk: &str) -> Vec<Event> {
    tracing::warn!(pk, sk, "a stream image is not a well-formed item; no event");
    Vec::new()
}

fn user_events(old: Option<&User>, new: Option<&User>, origin: &str) -> Vec<Event> {
    let user = |u: &User, kind: Kind, changed: Vec<String>| Event {
        kind,
        subject: Subject {
            resource_type: ResourceType::User,
            id: u.id,
            external_id: u.external_id.clone(),
        },
        resource: Some(user_schema::to_json(u, origin, SHOWN_AS)),
        changed,
        member: None,
        org: None,
        owner: u.owner,
    };
    let mut out = Vec::new();
    match (old, new) {
        (None, Some(new)) => out.push(user(new, Kind::UserCreated, Vec::new())),
        (Some(old), Some(new)) => {
            let changed = changed_paths(
                &user_schema::to_json(old, origin, SHOWN_AS),
                &user_schema::to_json(new, origin, SHOWN_AS),
            );
            let kind = match (old.is_active, new.is_active) {
                (false, true) => Some(Kind::UserActivated),
                (true, false) => Some(Kind::UserDeactivated),
                _ => (!changed.is_empty()).then_some(Kind::UserUpdated),
            };
            if let Some(kind) = kind {
                out.push(user(new, kind, changed));
            }
        }
        _ => {}
    }
    let before = old.map(|u| u.memberships.as_slice()).unwrap_or_default();
    let after = new.map(|u| u.memberships.as_slice()).unwrap_or_default();
    let user_id = new.or(old).map_or(0, |u| u.id);
    out.extend(membership_events(user_id, before, after));
    // A deleted user leaves its orgs first, then goes.
    if let (Some(old), None) = (old, new) {
        out.push(user(old, Kind::UserDeleted, Vec::new()));
    }
    out
}

/// Joins, departures and role changes between two membership lists of one user.
fn membership_events(user_id: u64, before: &[Membership], after: &[Membership]) -> Vec<Event> {
    let event = |m: &Membership, kind: Kind, previous_role: Option<String>| Event {
        kind,
        subject: Subject {
            resource_type: ResourceType::Group,
            id: m.org_id,
            external_id: None,
        },
        resource: None,
        changed: Vec::new(),
        member: Some(Member {
            user_id,
            role: m.role.clone(),
            previous_role,
        }),
        org: Some(m.org_slug.clone()),
        owner: None,
    };
    let mut out = Vec::new();
    for m in before {
        if !after.iter().any(|a| a.org_id == m.org_id) {
            out.push(event(m, Kind::MemberRemoved, None));
        }
    }
    for m in after {
        match before.iter().find(|b| b.org_id == m.org_id) {
            None => out.push(event(m, Kind::MemberAdded, None)),
            Some(b) if b.role != m.role => {
                out.push(event(m, Kind::OrgRoleChanged, Some(b.role.clone())))
            }
            Some(_) => {}
        }
    }
    out
}

fn group_events(old: Option<&GroupRecord>, new: Option<&GroupRecord>, origin: &str) -> Vec<Event> {
    let group = |g: &GroupRecord, kind: Kind, changed: Vec<String>| Event {
        kind,
        subject: Subject {
            resource_type: ResourceType::Group,
            id: g.id,
            external_id: g.external_id.clone(),
        },
        resource: Some(group_resource::to_json(g, None, origin)),
        changed,
        member: None,
        org: Some(g.slug.clone()),
        owner: None,
    };
    // A group being deleted is gone for every reader already: the write
    // that marks it is its deletion, what follows is cleanup.
    match (old, new) {
        (None, Some(new)) if !new.deleting => vec![group(new, Kind::GroupCreated, Vec::new())],
        (Some(old), Some(new)) if !old.deleting && new.deleting => {
            vec![group(old, Kind::GroupDeleted, Vec::new())]
        }
        (Some(old), None) if !old.deleting => vec![group(old, Kind::GroupDeleted, Vec::new())],
        (Some(old), Some(new)) if !old.deleting => {
            let changed = changed_paths(
                &group_resource::to_json(old, None, origin),
                &group_resource::to_json(new, None, origin),
            );
            if changed.is_empty() {
                Vec::new()
            } else if changed.iter().any(|c| c == "displayName") {
                vec![group(new, Kind::GroupRenamed, changed)]
            } else {
                vec![group(new, Kind::GroupUpdated, changed)]
            }
        }
        _ => Vec::new(),
    }
}

/// Attributes of a rendering that are not the resource's own data: its
/// schemas and id, `meta` (version and times change with every write), and
/// a user's `groups`, whose changes are member events of their own.
const NOT_CHANGES: &[&str] = &["schemas", "id", "meta", "groups"];

/// The SCIM paths whose values differ between two renderings of a resource,
/// in the order the resource lists its attributes: a complex attribute by
/// its changed sub-attributes (`name.givenName`), anything else by its name
/// (a multi-valued attribute as a whole: `emails`).
pub fn changed_paths(before: &Value, after: &Value) -> Vec<String> {
    let empty = Map::new();
    let before = before.as_object().unwrap_or(&empty);
    let after = after.as_object().unwrap_or(&empty);
    let mut out = Vec::new();
    let names = after
        .keys()
        .chain(before.keys().filter(|k| !after.contains_key(*k)));
    for name in names {
        if NOT_CHANGES.contains(&name.as_str()) {
            continue;
        }
        match (before.get(name), after.get(name)) {
            (Some(Value::Object(b)), Some(Value::Object(a))) => {
                let subs = a.keys().chain(b.keys().filter(|k| !a.contains_key(*k)));
                for sub in subs {
                    if b.get(sub) != a.get(sub) {
                        out.push(format!("{name}.{sub}"));
                    }
                }
            }
            (b, a) if b != a => out.push(name.clone()),
            _ => {}
        }
    }
    out
}
