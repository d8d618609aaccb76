//! The queries of `GET /api/organizations` and `GET /api/memberships`,
//! parsed into typed plans, one unit per CVAT filter backend as for users
//! ([`super::list_query`]): simple filters (CVAT's `SimpleFilter`: an exact
//! `==` on the value as sent), search (DRF `SearchFilter`), sort (DRF
//! `OrderingFilter`), JSON Logic filter ([`json_logic`]), then the page.
//! Where a parameter is repeated, the last value wins.
//!
//! The fields are those CVAT's schema (2.12) lists for the two endpoints:
//! organizations filter and sort on `id`, `name`, `owner` and `slug` and
//! search `name`, `owner` and `slug`; memberships filter and sort on `id`,
//! `role` and `user` (the username) and search `user`. An org here has no
//! owner, so `owner` is always NULL: it matches no value and no search term.
use std::cmp::Ordering;

use super::django::PageRequest;
use super::json_logic::{self, Comparison, Kind, Rule, Term, Value};
use super::list_query::{parse_org, parse_page_size, parse_search, parse_sort, ListQueryError};
use crate::domain::group::GroupRecord;
use crate::domain::query::FieldValue;
use crate::domain::OrgContext;
use crate::service::orgs::{MemberRow, MemberSelection, OrgSelection};

/// The filter fields of `GET /api/organizations`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrgTerm {
    Id,
    Name,
    Owner,
    Slug,
}

impl Term for OrgTerm {
    fn parse(name: &str) -> Option<OrgTerm> {
        Some(match name {
            "id" => OrgTerm::Id,
            "name" => OrgTerm::Name,
            "owner" => OrgTerm::Owner,
            "slug" => OrgTerm::Slug,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            OrgTerm::Id => "id",
            OrgTerm::Name => "name",
            OrgTerm::Owner => "owner",
            OrgTerm::Slug => "slug",
        }
    }

    fn kind(self) -> Kind {
        match self {
            OrgTerm::Id => Kind::Int,
            OrgTerm::Name | OrgTerm::Owner | OrgTerm::Slug => Kind::Text,
        }
    }
}

/// The filter fields of `GET /api/memberships`; `user` is the member's
/// username (CVAT's `user__username`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberTerm {
    Id,
    Role,
    User,
}

impl Term for MemberTerm {
    fn parse(name: &str) -> Option<MemberTerm> {
        Some(match name {
            "id" => MemberTerm::Id,
            "role" => MemberTerm::Role,
            "user" => MemberTerm::User,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            MemberTerm::Id => "id",
            MemberTerm::Role => "role",
            MemberTerm::User => "user",
        }
    }

    fn kind(self) -> Kind {
        match self {
            MemberTerm::Id => Kind::Int,
            MemberTerm::Role | MemberTerm::User => Kind::Text,
        }
    }
}

/// An org's value of a term; `None` is NULL (every org's `owner`).
fn org_value(org: &GroupRecord, term: OrgTerm) -> Option<FieldValue<'_>> {
    match term {
        OrgTerm::Id => Some(FieldValue::Int(org.id)),
        OrgTerm::Name => Some(FieldValue::Str(&org.name)),
        OrgTerm::Slug => Some(FieldValue::Str(&org.slug)),
        OrgTerm::Owner => None,
    }
}

/// A membership's value of a term; `user` is `None` until its user is read.
fn member_value(row: &MemberRow, term: MemberTerm) -> Option<FieldValue<'_>> {
    match term {
        MemberTerm::Id => Some(FieldValue::Int(row.member.id())),
        MemberTerm::Role => Some(FieldValue::Str(row.member.role.name())),
        MemberTerm::User => row.user.as_ref().map(|u| FieldValue::Str(&u.username)),
    }
}

/// What one list's query asks, over its terms `T`.
#[derive(Debug, Clone)]
pub struct Filters<T> {
    pub page: PageRequest,
    /// `None` = "all".
    pub page_size: Option<usize>,
    /// The simple filters, as the `==` rules CVAT makes of them.
    pub simple: Vec<Rule<T>>,
    /// Terms, already lower-cased.
    pub search: Vec<String>,
    /// (term, descending); default `-id`.
    pub sort: Vec<(T, bool)>,
    pub filter: Option<Rule<T>>,
}

impl<T: Term> Filters<T> {
    /// `simple_names`: the parameters that are simple filters; `id`: the
    /// list's id term (the default order).
    fn parse(
        params: &[(String, String)],
        simple_names: &[T],
        id: T,
    ) -> Result<Filters<T>, ListQueryError> {
        let get = |key: &str| {
            params
                .iter()
                .rev()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
        };
        let search = parse_search(get("search").unwrap_or(""))?;
        let filter = match get("filter") {
            None | Some("") => None,
            Some(f) => Some(json_logic::parse_terms(f).map_err(ListQueryError::Filter)?),
        };
        let simple = simple_names
            .iter()
            .filter_map(|term| {
                get(term.name())
                    .map(|v| Rule::Compare(*term, Comparison::Eq, Value::Str(v.to_string())))
            })
            .collect();
        Ok(Filters {
            page: PageRequest::parse(get("page")),
            page_size: parse_page_size(get("page_size")),
            simple,
            search,
            sort: parse_sort(get("sort"), id),
            filter,
        })
    }

    /// Simple filters AND search (every term in one of `searched`) AND the
    /// JSON Logic filter, for a record whose values `value` gives.
    fn holds<'a>(&self, value: &dyn Fn(T) -> Option<FieldValue<'a>>, searched: &[T]) -> bool {
        let found = |term: &String| {
            searched.iter().any(|t| {
                matches!(value(*t), Some(FieldValue::Str(s)) if s.to_lowercase().contains(term.as_str()))
            })
        };
        self.simple.iter().all(|r| r.holds(value))
            && self.search.iter().all(found)
            && self.filter.as_ref().is_none_or(|r| r.holds(value))
    }

    /// Orders two records by the sort terms, ties by `id` ascending; NULL
    /// before any value.
    fn order<'a>(
        &self,
        a: &dyn Fn(T) -> Option<FieldValue<'a>>,
        b: &dyn Fn(T) -> Option<FieldValue<'a>>,
        id: T,
    ) -> Ordering {
        let cmp = |term: T| match (a(term), b(term)) {
            (Some(x), Some(y)) => x.cmp_same_type(&y),
            (x, y) => x.is_some().cmp(&y.is_some()),
        };
        self.sort
            .iter()
            .map(|&(term, descending)| {
                let ord = cmp(term);
                if descending {
                    ord.reverse()
                } else {
                    ord
                }
            })
            .find(|ord| ord.is_ne())
            .unwrap_or_else(|| cmp(id))
    }

    /// Whether anything but the page looks at `term`.
    fn reads(&self, term: T, searched: bool) -> bool {
        (searched && !self.search.is_empty())
            || self.simple.iter().any(|r| r.mentions(term))
            || self.sort.iter().any(|(t, _)| *t == term)
            || self.filter.as_ref().is_some_and(|r| r.mentions(term))
    }
}

/// The query of `GET /api/organizations`. It takes no org context: like
/// CVAT's, the list is not scoped by `org`, `org_id` or `X-Organization`.
#[derive(Debug, Clone)]
pub struct OrgQuery(pub Filters<OrgTerm>);

const ORG_SEARCHED: &[OrgTerm] = &[OrgTerm::Name, OrgTerm::Owner, OrgTerm::Slug];

impl OrgQuery {
    /// Errors in CVAT's order: search, then the JSON Logic filter.
    pub fn parse(params: &[(String, String)]) -> Result<OrgQuery, ListQueryError> {
        Filters::parse(params, ORG_SEARCHED, OrgTerm::Id).map(OrgQuery)
    }
}

impl OrgSelection for OrgQuery {
    fn matches(&self, org: &GroupRecord) -> bool {
        self.0.holds(&|t| org_value(org, t), ORG_SEARCHED)
    }

    fn sort(&self, orgs: &mut [GroupRecord]) {
        orgs.sort_by(|a, b| {
            self.0
                .order(&|t| org_value(a, t), &|t| org_value(b, t), OrgTerm::Id)
        });
    }
}

/// The query of `GET /api/memberships`, with its org context.
#[derive(Debug, Clone)]
pub struct MembershipQuery {
    pub filters: Filters<MemberTerm>,
    pub org: OrgContext,
}

const MEMBER_SIMPLE: &[MemberTerm] = &[MemberTerm::User, MemberTerm::Role];
const MEMBER_SEARCHED: &[MemberTerm] = &[MemberTerm::User];

impl MembershipQuery {
    /// Errors in CVAT's order: org context, search, the JSON Logic filter.
    pub fn parse(
        params: &[(String, String)],
        x_organization: Option<&str>,
    ) -> Result<MembershipQuery, ListQueryError> {
        let get = |key: &str| {
            params
                .iter()
                .rev()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
        };
        let org = parse_org(get("org"), get("org_id"), x_organization)?;
        let filters = Filters::parse(params, MEMBER_SIMPLE, MemberTerm::Id)?;
        Ok(MembershipQuery { filters, org })
    }
}

impl MemberSelection for MembershipQuery {
    fn matches(&self, row: &MemberRow) -> bool {
        self.filters
            .holds(&|t| member_value(row, t), MEMBER_SEARCHED)
    }

    fn sort(&self, rows: &mut [MemberRow]) {
        rows.sort_by(|a, b| {
            self.filters.order(
                &|t| member_value(a, t),
                &|t| member_value(b, t),
                MemberTerm::Id,
            )
        });
    }

    fn reads_users(&self) -> bool {
        self.filters.reads(MemberTerm::User, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::orgs::{Member, Role};
    use crate::domain::user::{now, User};
    use crate::domain::OrgRef;

    /// A query string as (name, value) pairs.
    type Params<'a> = &'a [(&'a str, &'a str)];

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn org(id: u64, slug: &str, name: &str) -> GroupRecord {
        GroupRecord {
            id,
            slug: slug.into(),
            name: name.into(),
            external_id: None,
            created: now(),
            last_modified: now(),
            version: 1,
            deleting: false,
        }
    }

    fn row(org_id: u64, user_id: u64, username: &str, role: Role) -> MemberRow {
        let mut user = User::new(username);
        user.id = user_id;
        MemberRow {
            member: Member {
                org_id,
                user_id,
                role,
                is_active: true,
                joined: None,
            },
            user: Some(user),
        }
    }

    #[test]
    fn org_lists_filter_search_and_sort_like_cvat() {
        let orgs = [
            org(1, "acme", "Acme Inc."),
            org(2, "beta", "Beta"),
            org(3, "acme-labs", "Labs"),
        ];
        // (query, ids in the answer's order)
        let cases: &[(Params, &[u64])] = &[
            (&[], &[3, 2, 1]),
            (&[("sort", "name")], &[1, 2, 3]),
            (&[("sort", "-slug,nosuch")], &[2, 3, 1]),
            (&[("sort", "owner")], &[1, 2, 3]),
            (&[("sort", "nosuch")], &[3, 2, 1]),
            (&[("slug", "acme")], &[1]),
            (&[("slug", "ACME")], &[]),
            (&[("slug", "")], &[]),
            (&[("name", "x"), ("name", "Beta")], &[2]),
            (&[("owner", "root")], &[]),
            (&[("search", "ACME")], &[3, 1]),
            (&[("search", "acme labs")], &[3]),
            (&[("search", "inc")], &[1]),
            (&[("filter", r#"{"<":[{"var":"id"},3]}"#)], &[2, 1]),
            (
                &[("filter", r#"{"==":[{"var":"owner"},null]}"#)],
                &[3, 2, 1],
            ),
            (
                &[("filter", r#"{"!":{"==":[{"var":"owner"},"x"]}}"#)],
                &[3, 2, 1],
            ),
            (&[("filter", r#"{"var":"owner"}"#)], &[]),
            (&[("filter", r#"{"in":["a",{"var":"slug"}]}"#)], &[3, 2, 1]),
            (
                &[
                    ("filter", r#"{"in":["ac",{"var":"slug"}]}"#),
                    ("sort", "id"),
                ],
                &[1, 3],
            ),
        ];
        for (params, want) in cases {
            let q = OrgQuery::parse(&pairs(params)).unwrap();
            let mut got: Vec<GroupRecord> = orgs.iter().filter(|o| q.matches(o)).cloned().collect();
            q.sort(&mut got);
            let ids: Vec<u64> = got.iter().map(|o| o.id).collect();
            assert_eq!(ids, *want, "{params:?}");
        }
    }

    #[test]
    fn org_queries_refuse_what_cvat_refuses() {
        let cases: &[(Params, &str)] = &[
            (
                &[("filter", r#"{"==":[{"var":"email"},"x"]}"#)],
                "filter: term 'email' is not supported",
            ),
            (
                &[("filter", r#"{"==":[{"var":"id"},"3"]}"#)],
                "filter: term 'id' requires an integer value, got '3' of type 'str'",
            ),
            (
                &[("filter", r#"{"in":["1",{"var":"id"}]}"#)],
                "filter: term 'id' does not support substring matching",
            ),
            (
                &[("search", "a\0b"), ("filter", "{}")],
                "Null characters are not allowed.",
            ),
        ];
        for (params, message) in cases {
            let err = OrgQuery::parse(&pairs(params)).unwrap_err();
            assert_eq!(err.to_string(), *message, "{params:?}");
        }
    }

    #[test]
    fn membership_lists_filter_search_and_sort_like_cvat() {
        let rows = [
            row(1, 7, "carol", Role::Worker),
            row(1, 9, "alice", Role::Owner),
            row(2, 7, "carol", Role::Maintainer),
        ];
        // (query, membership ids in the answer's order, whether usernames are read)
        let cases: &[(Params, &[u64], bool)] = &[
            (
                &[],
                &[20_000_000_007, 10_000_000_009, 10_000_000_007],
                false,
            ),
            (
                &[("sort", "id")],
                &[10_000_000_007, 10_000_000_009, 20_000_000_007],
                false,
            ),
            (
                &[("sort", "role")],
                &[20_000_000_007, 10_000_000_009, 10_000_000_007],
                false,
            ),
            (&[("role", "worker")], &[10_000_000_007], false),
            (&[("role", "nosuch")], &[], false),
            (
                &[("user", "carol")],
                &[20_000_000_007, 10_000_000_007],
                true,
            ),
            (&[("user", "Carol")], &[], true),
            (
                &[("sort", "user,-id")],
                &[10_000_000_009, 20_000_000_007, 10_000_000_007],
                true,
            ),
            (&[("search", "AL")], &[10_000_000_009], true),
            (&[("search", "maint")], &[], true),
            (
                &[("filter", r#"{"==":[{"var":"role"},"owner"]}"#)],
                &[10_000_000_009],
                false,
            ),
            (
                &[("filter", r#"{"<":[{"var":"id"},20000000000]}"#)],
                &[10_000_000_009, 10_000_000_007],
                false,
            ),
            (
                &[("filter", r#"{"in":["aro",{"var":"user"}]}"#)],
                &[20_000_000_007, 10_000_000_007],
                true,
            ),
        ];
        for (params, want, reads) in cases {
            let q = MembershipQuery::parse(&pairs(params), None).unwrap();
            assert_eq!(q.reads_users(), *reads, "{params:?}");
            let mut got: Vec<MemberRow> = rows.iter().filter(|r| q.matches(r)).cloned().collect();
            q.sort(&mut got);
            let ids: Vec<u64> = got.iter().map(|r| r.member.id()).collect();
            assert_eq!(ids, *want, "{params:?}");
        }
    }

    #[test]
    fn membership_queries_read_the_org_context_first() {
        let q = MembershipQuery::parse(&pairs(&[("org", "acme")]), None).unwrap();
        assert_eq!(q.org, OrgContext::Named(OrgRef::Slug("acme".into())));
        let q = MembershipQuery::parse(&[], Some("acme")).unwrap();
        assert_eq!(q.org, OrgContext::Named(OrgRef::Slug("acme".into())));
        let q = MembershipQuery::parse(&pairs(&[("org_id", "3")]), None).unwrap();
        assert_eq!(q.org, OrgContext::Named(OrgRef::Id(3)));
        let q = MembershipQuery::parse(&pairs(&[("org", "")]), None).unwrap();
        assert_eq!(q.org, OrgContext::NoOrg);
        let q = MembershipQuery::parse(&[], None).unwrap();
        assert_eq!(q.org, OrgContext::Sandbox);
        let err = MembershipQuery::parse(
            &pairs(&[("org_id", "3"), ("filter", "nonsense")]),
            Some("acme"),
        )
        .unwrap_err();
        assert!(
            err.to_string().starts_with("You cannot specify \"org_id\""),
            "{err}"
        );
        let err = MembershipQuery::parse(&pairs(&[("filter", r#"{"var":"username"}"#)]), None)
            .unwrap_err();
        assert_eq!(err.to_string(), "filter: term 'username' is not supported");
    }
}
