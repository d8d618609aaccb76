//! What a SCIM Groups request reads and how its failures read, at either
//! base (the orgs at the global one, `groups.rs`; a tenant's own groups
//! under a tenant base, `tenant_groups.rs`): the list or search query, a
//! PUT body as a change, whether members are shown, and the SCIM error of
//! each failure.
use serde_json::{json, Value};

use super::filter::{Filter, Resource};
use super::list_params::ListParams;
use super::request::Projection;
use super::schema::ResourceType;
use super::sort::Sort;
use super::{filter, group_resource, ScimError};
pub use crate::domain::group::MAX_LISTED_MEMBERS;
use crate::domain::group::{GroupPatch, GroupRecord, MemberPlan};
use crate::domain::listing::{GroupFilter, Order};
use crate::http;
use crate::http::Profile;
use crate::service::group_lists::{GroupList, Shown};
use crate::service::Failure;
use crate::store::{StoreError, UniqueField};

const GROUP: ResourceType = ResourceType::Group;

/// Whether a projection keeps `members`.
pub(super) fn wants_members(projection: &Projection) -> bool {
    let probe = json!({"members": [], "id": "0"});
    projection.apply(probe).get("members").is_some()
}

fn unknown_members(unknown: &[String]) -> ScimError {
    let shown: Vec<String> = unknown
        .iter()
        .take(20)
        .map(|u| format!("\"{u}\""))
        .collect();
    let more = if unknown.len() > 20 {
        format!(" and {} more", unknown.len() - 20)
    } else {
        String::new()
    };
    ScimError::invalid_value(format!(
        "No User has the id {}{more}: members must be ids of existing Users. Nothing was changed.",
        shown.join(", ")
    ))
}

/// What a PUT body changes: the name and externalId, and when it has
/// `members`, the members become exactly those.
pub(super) fn replacement(body: &Value) -> Result<GroupPatch, ScimError> {
    let b = group_resource::from_json(body)?;
    Ok(GroupPatch {
        name: Some(b.name),
        external_id: Some(b.external_id),
        members: match b.members {
            Some(m) => MemberPlan {
                clear: true,
                add: m,
                remove: Vec::new(),
            },
            None => MemberPlan::default(),
        },
    })
}

/// A group operation's failure as SCIM says it, naming the group by the id
/// the request's path gave (`id_text`).
pub(super) fn group_error(failure: Failure<ScimError>, id_text: &str) -> ScimError {
    match failure {
        Failure::Auth(f) => f.into(),
        Failure::Forbidden => ScimError::forbidden(),
        Failure::ReadOnly => ScimError::read_only(),
        Failure::NotFound => GROUP.not_found(id_text),
        Failure::Precondition { current } => GROUP.precondition_failed(current),
        Failure::UnknownMembers(unknown) => unknown_members(&unknown),
        Failure::TooManyMembers { limit } => ScimError::invalid_value(format!(
            "A group under a tenant base holds at most {limit} members. Nothing was changed."
        )),
        Failure::GroupTaken {
            field: UniqueField::GroupExternalId,
            external_id,
            ..
        } => ScimError::uniqueness(format!(
            "externalId \"{}\" belongs to another group",
            external_id.unwrap_or_default()
        )),
        Failure::GroupTaken { name, .. } => {
            ScimError::uniqueness(format!("displayName \"{name}\" is taken by another group"))
        }
        Failure::Changed | Failure::Lost | Failure::Busy { .. } => ScimError::new(
            409,
            None,
            "The group changed while this request was applied; read it and try again.",
        ),
        // User writes and admin lists only: a group operation that answers one is a bug.
        Failure::Taken { .. } | Failure::NotOwned { .. } | Failure::UnknownManager(_) => {
            ScimError::server(http::Fault::bug("a group operation failed as a user write"))
        }
        Failure::Refused(e) => e,
        Failure::Store(StoreError::Conflict) => GROUP.conflict(),
        Failure::Store(e) => e.into(),
        Failure::NoSuchOrg(org) => ScimError::no_such_tenant(&org.to_string()),
        // A tenant's groups are `service::tenant_groups` (its /Bulk too): a
        // tenant caller that reaches the global groups is a bug.
        Failure::NotImplemented => ScimError::server(http::Fault::bug(
            "a tenant's group operation reached the global groups",
        )),
        Failure::OutsideDomains { .. } => {
            ScimError::server(http::Fault::bug("a group operation failed as a user write"))
        }
    }
}

/// A parsed list or search request on Groups.
pub(super) struct Query {
    pub(super) filter: Option<Filter>,
    /// `sortBy`/`sortOrder` (`rfc`; `odm` ignores them).
    pub(super) sort: Option<Sort>,
    pub(super) start: usize,
    pub(super) count: usize,
    pub(super) projection: Projection,
}

impl Query {
    /// The groups query `params` ask for, the filter read with the
    /// profile's grammar: paged by `startIndex` only.
    pub(super) fn new(params: &ListParams, profile: Profile) -> Result<Query, ScimError> {
        if params.cursor.is_some() {
            return Err(ScimError::invalid_value(
                "Groups are paged by startIndex and count; cursors page Users.",
            ));
        }
        Ok(Query {
            filter: params
                .filter()
                .map(|f| filter::parse_group(f, profile))
                .transpose()?,
            sort: match profile {
                Profile::Rfc => {
                    Sort::from_params(params, Resource::Group)?.filter(|s| !s.is_id_order())
                }
                Profile::Odm => None,
            },
            start: params.start(),
            count: params.count(),
            projection: params.projection.clone(),
        })
    }

    /// The list the service answers.
    pub(super) fn list(&self) -> GroupList<'_> {
        GroupList {
            filter: self.filter.as_ref().map(|f| f as &dyn GroupFilter),
            sort: self.sort.as_ref().map(|s| s as &dyn Order<GroupRecord>),
            start: self.start,
            count: self.count,
            members: wants_members(&self.projection),
        }
    }
}

/// A page's groups as resources in `projection`, or 400 `tooMany` when they
/// hold more members than one response lists (worded for the base: a
/// tenant's groups hold their members, the global groups' are read).
pub(super) fn page_json(
    shown: Shown,
    tenant_base: bool,
    projection: &Projection,
    base_url: &str,
) -> Result<Vec<Value>, ScimError> {
    match shown {
        Shown::Groups(groups) => Ok(groups
            .iter()
            .map(|g| {
                projection.apply(group_resource::to_json(
                    &g.record,
                    g.members.as_deref(),
                    base_url,
                ))
            })
            .collect()),
        Shown::TooManyMembers if tenant_base => Err(ScimError::bad(
            super::ScimType::TooMany,
            format!(
                "More than {MAX_LISTED_MEMBERS} members in one response: ask for \
                 excludedAttributes=members (or fewer groups)."
            ),
        )),
        Shown::TooManyMembers => Err(ScimError::bad(
            super::ScimType::TooMany,
            format!(
                "The groups of this page have more than {MAX_LISTED_MEMBERS} members in \
                 all, more than one response lists: ask for fewer groups (count), or \
                 for excludedAttributes=members and read the members of each group with \
                 the admin API (GET /api/users?org=<slug>)."
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_name_the_group() {
        assert_eq!(
            group_error(Failure::NotFound, "9").detail,
            "Group 9 not found"
        );
        for failure in [Failure::Store(StoreError::Conflict), Failure::Changed] {
            let e = group_error(failure, "9");
            assert_eq!(e.status, 409);
            assert!(
                e.detail.starts_with("The group changed")
                    || e.detail.starts_with("The group was changed"),
                "{}",
                e.detail
            );
        }
        let e = group_error(Failure::UnknownMembers(vec!["12".into(), "x".into()]), "9");
        assert_eq!(
            (e.status, e.scim_type),
            (400, Some(crate::scim::ScimType::InvalidValue))
        );
        assert!(e.detail.contains("\"12\", \"x\""), "{}", e.detail);
    }
}
