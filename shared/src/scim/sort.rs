//! `sortBy` / `sortOrder` (RFC 7644 §3.4.2.3), `rfc` profile: the order a
//! list is answered in, by any attribute of the resource's table, read as a
//! response shows it.
//!
//! - Strings compare as their row's `caseExact` says (folded as the
//!   uniqueness claims are, otherwise), date-times as instants, booleans
//!   false before true; `id` compares as the number it is, the order lists
//!   are always in.
//! - A multi-valued attribute sorts by its primary value, else its first.
//! - Resources without a value come last ascending, first descending.
//! - Ties break by id, ascending, so pages of one sorted list never overlap.
//!
//! Sorting needs every match before the first page, so a sorted list reads
//! what its filter reads (a lookup, a span of changes, else one pass over
//! the directory) and sorts it in memory; `sortBy=id` ascending is the
//! order lists are read in and costs nothing.
use std::cmp::Ordering;

use serde_json::Value as Json;

use super::filter::{self, Attr, Path, Resource};
use super::list_params::ListParams;
use super::ScimError;
use crate::domain::group::GroupRecord;
use crate::domain::listing::Order;
use crate::domain::user::{parse_time, rules, User};

impl Order<User> for Sort {
    fn sort(&self, items: &mut [User]) {
        self.users(items);
    }
}

impl Order<GroupRecord> for Sort {
    fn sort(&self, items: &mut [GroupRecord]) {
        self.groups(items);
    }
}

/// A parsed `sortBy` and `sortOrder`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sort {
    path: Path,
    descending: bool,
    /// The top-level path of a sub-attribute of a multi-valued attribute
    /// (`emails` for `emails.value`), whose primary value sorts.
    values_of: Option<Path>,
}

impl Sort {
    /// The order `params` ask for; `None` when they name none. `sortOrder`
    /// alone sorts by id. Unknown attributes and orders are a 400
    /// `invalidValue` naming them.
    pub fn from_params(params: &ListParams, resource: Resource) -> Result<Option<Sort>, ScimError> {
        let order = params
            .sort_order
            .as_deref()
            .map(str::trim)
            .filter(|o| !o.is_empty());
        let descending = match order {
            None => false,
            Some(o) if o.eq_ignore_ascii_case("ascending") => false,
            Some(o) if o.eq_ignore_ascii_case("descending") => true,
            Some(o) => {
                return Err(ScimError::invalid_value(format!(
                    "sortOrder must be \"ascending\" or \"descending\", not \"{o}\""
                )))
            }
        };
        let by = params
            .sort_by
            .as_deref()
            .map(str::trim)
            .filter(|b| !b.is_empty());
        let Some(by) = by.or(order.map(|_| "id")) else {
            return Ok(None);
        };
        let unknown = || {
            let (name, urn) = match resource {
                Resource::User => ("User", super::USER_SCHEMA),
                Resource::Group => ("Group", super::GROUP_SCHEMA),
            };
            ScimError::invalid_value(format!(
                "sortBy names no attribute of the {name} schema: \"{by}\" (GET /Schemas/{urn} \
                 lists them)"
            ))
        };
        let path = filter::sort_path(resource, by).ok_or_else(unknown)?;
        if path.kind == super::schema::Type::Complex {
            return Err(ScimError::invalid_value(format!(
                "sortBy \"{by}\" names a complex attribute: sort by one of its sub-attributes \
                 ({path}.<sub-attribute>)"
            )));
        }
        if resource == Resource::Group && path.names()[0] == "members" {
            return Err(ScimError::invalid_value(
                "Groups cannot be sorted by their members (a list does not read them).",
            ));
        }
        let values_of = filter::multi_valued_parent(resource, &path);
        Ok(Some(Sort {
            path,
            descending,
            values_of,
        }))
    }

    /// Whether this is the order lists are read in anyway (id, ascending).
    pub fn is_id_order(&self) -> bool {
        self.path.is(Attr::Id) && !self.descending
    }

    /// Puts `users` in this order.
    pub fn users(&self, users: &mut [User]) {
        let mut keyed: Vec<(Option<Json>, User)> = users
            .iter()
            .map(|u| {
                (
                    self.key(filter::user_values(u, self.values_path()), u.id),
                    u.clone(),
                )
            })
            .collect();
        keyed.sort_by(|(a, ua), (b, ub)| self.compare(a.as_ref(), b.as_ref(), ua.id, ub.id));
        for (slot, (_, user)) in users.iter_mut().zip(keyed) {
            *slot = user;
        }
    }

    /// Puts `groups` in this order.
    pub fn groups(&self, groups: &mut [GroupRecord]) {
        let mut keyed: Vec<(Option<Json>, GroupRecord)> = groups
            .iter()
            .map(|g| {
                (
                    self.key(filter::group_values(g, self.values_path()), g.id),
                    g.clone(),
                )
            })
            .collect();
        keyed.sort_by(|(a, ga), (b, gb)| self.compare(a.as_ref(), b.as_ref(), ga.id, gb.id));
        for (slot, (_, group)) in groups.iter_mut().zip(keyed) {
            *slot = group;
        }
    }

    /// What is read from a resource: the sorted path, or the values of its
    /// multi-valued attribute (to pick the primary one).
    fn values_path(&self) -> &Path {
        self.values_of.as_ref().unwrap_or(&self.path)
    }

    /// The value a resource sorts by: the primary value (else the first)
    /// of a multi-valued attribute, the value itself otherwise; `id` as a
    /// number.
    fn key(&self, found: Vec<Json>, id: u64) -> Option<Json> {
        if self.path.is(Attr::Id) {
            return Some(Json::from(id));
        }
        let mut found = found;
        if self.values_of.is_some() {
            let sub = self.path.names()[self.path.names().len() - 1];
            let pick = found
                .iter()
                .position(|v| v.get("primary") == Some(&Json::Bool(true)))
                .unwrap_or(0);
            return (pick < found.len())
                .then(|| found.swap_remove(pick))
                .and_then(|v| v.get(sub).cloned())
                .filter(|v| !v.is_null());
        }
        (!found.is_empty()).then(|| found.swap_remove(0))
    }

    fn compare(&self, a: Option<&Json>, b: Option<&Json>, id_a: u64, id_b: u64) -> Ordering {
        let by_value = match (a, b) {
            (Some(a), Some(b)) => {
                let o = self.order(a, b);
                if self.descending {
                    o.reverse()
                } else {
                    o
                }
            }
            // Without a value: last ascending, first descending.
            (Some(_), None) => self.nulls(Ordering::Less),
            (None, Some(_)) => self.nulls(Ordering::Greater),
            (None, None) => Ordering::Equal,
        };
        by_value.then(id_a.cmp(&id_b))
    }

    fn nulls(&self, ascending: Ordering) -> Ordering {
        if self.descending {
            ascending.reverse()
        } else {
            ascending
        }
    }

    /// Two values of the sorted attribute, by its type.
    fn order(&self, a: &Json, b: &Json) -> Ordering {
        match (a, b) {
            (Json::String(a), Json::String(b)) => {
                if self.path.kind == super::schema::Type::DateTime {
                    if let (Some(a), Some(b)) = (parse_time(a), parse_time(b)) {
                        return a.cmp(&b);
                    }
                }
                if self.path.case_exact {
                    a.cmp(b)
                } else {
                    rules::fold(a).cmp(&rules::fold(b))
                }
            }
            (Json::Bool(a), Json::Bool(b)) => a.cmp(b),
            (Json::Number(a), Json::Number(b)) => a
                .as_f64()
                .partial_cmp(&b.as_f64())
                .unwrap_or(Ordering::Equal),
            _ => Ordering::Equal,
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;

    fn user(id: u64, name: &str, given: &str, active: bool) -> User {
        let mut u = User::new(name);
        u.id = id;
        u.first_name = given.into();
        u.is_active = active;
        u.last_modified = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
            + chrono::Duration::seconds(10 - id as i64);
        u
    }

    fn sort(by: &str, order: Option<&str>) -> Result<Option<Sort>, ScimError> {
        let params = ListParams {
            sort_by: Some(by.into()),
            sort_order: order.map(str::to_string),
            ..ListParams::default()
        };
        Sort::from_params(&params, Resource::User)
    }

    /// Each row: sortBy, sortOrder, the ids in the order they come.
    #[test]
    fn orders() {
        let users = || {
            vec![
                user(1, "carol", "Carol", true),
                user(2, "Bob", "", false),
                user(3, "alice", "alice", true),
                user(4, "bob2", "Bob", true),
                user(5, "Dave", "", true),
            ]
        };
        let cases: Vec<(&str, Option<&str>, Vec<u64>)> = vec![
            // Caseless (userName): folded, ties by id.
            ("userName", None, vec![3, 2, 4, 1, 5]),
            ("USERNAME", Some("ascending"), vec![3, 2, 4, 1, 5]),
            ("userName", Some("Descending"), vec![5, 1, 4, 2, 3]),
            // Unassigned values last ascending, first descending; ties by id.
            ("name.givenName", None, vec![3, 4, 1, 2, 5]),
            ("name.givenName", Some("descending"), vec![2, 5, 1, 4, 3]),
            // Booleans false first; dates as instants; ids as numbers.
            ("active", None, vec![2, 1, 3, 4, 5]),
            ("meta.lastModified", None, vec![5, 4, 3, 2, 1]),
            ("id", Some("descending"), vec![5, 4, 3, 2, 1]),
            (
                "urn:ietf:params:scim:schemas:core:2.0:User:id",
                None,
                vec![1, 2, 3, 4, 5],
            ),
            // displayName shows "givenName familyName", else the userName.
            ("displayName", None, vec![3, 2, 4, 1, 5]),
        ];
        for (by, order, want) in cases {
            let s = sort(by, order).unwrap().unwrap();
            let mut all = users();
            s.users(&mut all);
            let got: Vec<u64> = all.iter().map(|u| u.id).collect();
            assert_eq!(got, want, "{by} {order:?}");
        }
        assert!(sort("id", None).unwrap().unwrap().is_id_order());
        assert!(!sort("id", Some("descending"))
            .unwrap()
            .unwrap()
            .is_id_order());
    }

    /// A multi-valued attribute sorts by its primary value, else its first.
    #[test]
    fn multi_valued_attributes_sort_by_their_primary_value() {
        let mut a = user(1, "a", "", true);
        a.email = "z@example.org".into();
        let mut b = user(2, "b", "", true);
        b.email = "m@example.org".into();
        let c = user(3, "c", "", true);
        let mut all = vec![a, b, c];
        sort("emails", None).unwrap().unwrap().users(&mut all);
        assert_eq!(all.iter().map(|u| u.id).collect::<Vec<_>>(), [2, 1, 3]);
        sort("emails.value", Some("descending"))
            .unwrap()
            .unwrap()
            .users(&mut all);
        assert_eq!(all.iter().map(|u| u.id).collect::<Vec<_>>(), [3, 1, 2]);
    }

    #[test]
    fn refusals_name_what_is_wrong() {
        assert_eq!(
            sort("favoriteColor", None).unwrap_err().detail,
            "sortBy names no attribute of the User schema: \"favoriteColor\" (GET \
             /Schemas/urn:ietf:params:scim:schemas:core:2.0:User lists them)"
        );
        assert_eq!(
            sort("userName", Some("up")).unwrap_err().detail,
            "sortOrder must be \"ascending\" or \"descending\", not \"up\""
        );
        assert_eq!(
            sort("name", None).unwrap_err().detail,
            "sortBy \"name\" names a complex attribute: sort by one of its sub-attributes \
             (name.<sub-attribute>)"
        );
        let members = ListParams {
            sort_by: Some("members.value".into()),
            ..ListParams::default()
        };
        assert!(Sort::from_params(&members, Resource::Group).is_err());
        // No sortBy, no order; sortOrder alone orders by id.
        assert_eq!(
            Sort::from_params(&ListParams::default(), Resource::User),
            Ok(None)
        );
        let alone = ListParams {
            sort_order: Some("descending".into()),
            ..ListParams::default()
        };
        let s = Sort::from_params(&alone, Resource::User).unwrap().unwrap();
        assert!(s.path.is(Attr::Id) && s.descending);
    }
}
