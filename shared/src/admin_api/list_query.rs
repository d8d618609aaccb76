//! The query of `GET /api/users`, parsed into a typed plan.
//!
//! One small unit per CVAT filter backend, applied in CVAT's order: simple
//! filters (django-filter), search (DRF `SearchFilter`), sort (DRF
//! `OrderingFilter`), JSON Logic filter ([`json_logic`]); then the page (DRF
//! `PageNumberPagination` over Django's `Paginator`). Org context comes from
//! CVAT's IAM middleware. Where a parameter is repeated, the last value wins
//! (Django's `QueryDict.get`).

use super::django::{null_boolean, python_int, python_isspace, PageRequest};
use super::json_logic::{self, Term};
use crate::domain::query::ReadPlan;
use crate::domain::query::{Case, Claim, Field, FieldValue, UserFields, UserQuery};
use crate::domain::{OrgContext, OrgRef};
use crate::service::accounts::Selection;
use crate::store::table;

#[derive(Debug, Clone)]
pub struct ListQuery {
    pub page: PageRequest,
    /// None = "all"; default 10; <=0 or junk → 10
    pub page_size: Option<usize>,
    pub username: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub is_active: Option<bool>,
    /// Terms, already lower-cased.
    pub search: Vec<String>,
    /// (field, descending); default `-id`.
    pub sort: Vec<(Field, bool)>,
    pub filter: Option<json_logic::Rule>,
    pub org: OrgContext,
}

/// 400 errors are a JSON array of messages (DRF ValidationError as a list).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ListQueryError {
    /// `filter` (JSON Logic) and `search` errors.
    #[error("{0}")]
    Filter(String),
    #[error("{0}")]
    Org(String),
}

const DEFAULT_PAGE_SIZE: usize = 10;

const ORG_ID_CONFLICT: &str = "You cannot specify \"org_id\" query parameter with \"org\" query parameter or \"X-Organization\" HTTP header at the same time.";
const ORG_HEADER_CONFLICT: &str = "You cannot specify \"org\" query parameter and \"X-Organization\" HTTP header with different values.";
const ORG_ID_INVALID: &str = "org_id: A valid integer is required.";
/// DRF's `CharField` (used by `SearchFilter`) rejects NUL characters.
const NULL_CHARACTERS: &str = "Null characters are not allowed.";

impl ListQuery {
    /// `params`: the decoded query string pairs in request order; `x_organization`: the header value if present.
    ///
    /// Errors come in CVAT's order: org context (checked with the permissions),
    /// then search, then the JSON Logic filter. A bad `page` is not an error
    /// here: it becomes [`PageRequest::Invalid`] and a 404 from [`paginate`](super::django::paginate).
    pub fn parse(
        params: &[(String, String)],
        x_organization: Option<&str>,
    ) -> Result<ListQuery, ListQueryError> {
        let get = |key: &str| {
            params
                .iter()
                .rev()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
        };
        let org = parse_org(get("org"), get("org_id"), x_organization)?;
        let search = parse_search(get("search").unwrap_or(""))?;
        let filter = match get("filter") {
            None | Some("") => None,
            Some(f) => Some(json_logic::parse(f).map_err(ListQueryError::Filter)?),
        };
        Ok(ListQuery {
            page: PageRequest::parse(get("page")),
            page_size: parse_page_size(get("page_size")),
            username: simple_text(get("username")),
            first_name: simple_text(get("first_name")),
            last_name: simple_text(get("last_name")),
            is_active: null_boolean(get("is_active")),
            search,
            sort: parse_sort(get("sort"), Field::Id),
            filter,
            org,
        })
    }

    /// simple filters AND search AND json-logic filter (org scoping is done by the caller)
    pub fn matches(&self, user: &impl UserFields) -> bool {
        let text_filters = [
            (Field::Username, &self.username),
            (Field::FirstName, &self.first_name),
            (Field::LastName, &self.last_name),
        ];
        let simple = text_filters.iter().all(|(field, want)| match want {
            Some(w) => user.field(*field) == FieldValue::Str(w),
            None => true,
        }) && self
            .is_active
            .is_none_or(|b| user.field(Field::IsActive) == FieldValue::Bool(b));
        simple
            && search_matches(&self.search, user)
            && self.filter.as_ref().is_none_or(|rule| rule.matches(user))
    }

    /// The filtering parts as a [`UserQuery`], for planning reads: the
    /// `username=` parameter (an exact match, like the filter's `==`) and
    /// the JSON Logic filter pin users; the other simple filters and
    /// `search` look only at indexed fields and pin nothing.
    pub fn user_query(&self) -> UserQuery {
        let residual = UserQuery::Residual { indexed: true };
        let mut all = Vec::new();
        if let Some(name) = &self.username {
            all.push(UserQuery::ClaimIn(
                Claim::Username,
                Case::Exact,
                vec![name.clone()],
            ));
        }
        if let Some(rule) = &self.filter {
            all.push(rule.to_query());
        }
        if self.first_name.is_some()
            || self.last_name.is_some()
            || self.is_active.is_some()
            || !self.search.is_empty()
        {
            all.push(residual);
        }
        UserQuery::And(all)
    }

    /// How to read the users this query can match.
    pub fn read_plan(&self) -> ReadPlan {
        ReadPlan::of(&self.user_query())
    }

    /// sorts by self.sort, ties broken by id ascending
    pub fn sort<T: UserFields>(&self, users: &mut [T]) {
        users.sort_by(|a, b| {
            self.sort
                .iter()
                .map(|&(field, descending)| {
                    let ord = a.field(field).cmp_same_type(&b.field(field));
                    if descending {
                        ord.reverse()
                    } else {
                        ord
                    }
                })
                .find(|ord| ord.is_ne())
                .unwrap_or_else(|| a.field(Field::Id).cmp_same_type(&b.field(Field::Id)))
        });
    }
}

/// The list's filters and order, as the account service reads them.
impl Selection for ListQuery {
    fn matches(&self, user: &impl UserFields) -> bool {
        ListQuery::matches(self, user)
    }

    fn user_query(&self) -> UserQuery {
        ListQuery::user_query(self)
    }

    fn sort<T: UserFields>(&self, users: &mut [T]) {
        ListQuery::sort(self, users)
    }

    fn id_order_only(&self) -> Option<bool> {
        let unfiltered = self.username.is_none()
            && self.first_name.is_none()
            && self.last_name.is_none()
            && self.is_active.is_none()
            && self.search.is_empty()
            && self.filter.is_none();
        match self.sort.as_slice() {
            [(Field::Id, descending)] if unfiltered => Some(*descending),
            _ => None,
        }
    }
}

/// An org slug longer than any key can hold names no organisation; it is
/// refused before it reaches DynamoDB, which would fail the whole read.
fn org_too_long() -> ListQueryError {
    ListQueryError::Org(format!(
        "org: Ensure this value has no more than {} bytes.",
        table::MAX_KEY_VALUE_BYTES
    ))
}

/// CVAT's `get_organization` (iam/middleware.py), with an empty header taken as absent.
pub(super) fn parse_org(
    org: Option<&str>,
    org_id: Option<&str>,
    header: Option<&str>,
) -> Result<OrgContext, ListQueryError> {
    let header = header.filter(|h| !h.is_empty());
    if org_id.is_some() && (org.is_some() || header.is_some()) {
        return Err(ListQueryError::Org(ORG_ID_CONFLICT.to_string()));
    }
    if let (Some(o), Some(h)) = (org, header) {
        if o != h {
            return Err(ListQueryError::Org(ORG_HEADER_CONFLICT.to_string()));
        }
    }
    Ok(match (org.or(header), org_id) {
        (Some(""), _) => OrgContext::NoOrg,
        (Some(slug), _) if !table::fits(slug) => return Err(org_too_long()),
        (Some(slug), _) => OrgContext::Named(OrgRef::Slug(slug.to_string())),
        // `org_id=` (empty) means no org context, like no parameter.
        (None, None | Some("")) => OrgContext::Sandbox,
        // CVAT crashes on a non-integer (`int(org_id)`); a negative id cannot exist.
        (None, Some(id)) => python_int(id)
            .and_then(|n| u64::try_from(n).ok())
            .map(|id| OrgContext::Named(OrgRef::Id(id)))
            .ok_or_else(|| ListQueryError::Org(ORG_ID_INVALID.to_string()))?,
    })
}

/// `CustomPagination.get_page_size`.
pub(super) fn parse_page_size(value: Option<&str>) -> Option<usize> {
    match value {
        Some("all") => None,
        Some(v) => match python_int(v) {
            // Larger than any list can be: the same as "all".
            Some(n) if n > 0 => usize::try_from(n).ok(),
            _ => Some(DEFAULT_PAGE_SIZE),
        },
        None => Some(DEFAULT_PAGE_SIZE),
    }
}

/// django-filter `CharFilter`: the form field strips whitespace; empty means no filter.
fn simple_text(value: Option<&str>) -> Option<String> {
    value
        .map(|v| v.trim_matches(python_isspace))
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

/// DRF `OrderingFilter.get_ordering`: unknown fields dropped, default
/// descending by `id` (the list's own id term).
pub(super) fn parse_sort<T: Term>(value: Option<&str>, id: T) -> Vec<(T, bool)> {
    let sort: Vec<(T, bool)> = value
        .unwrap_or("")
        .split(',')
        .filter_map(|term| {
            let term = term.trim_matches(python_isspace);
            let (name, descending) = match term.strip_prefix('-') {
                Some(name) => (name, true),
                None => (term, false),
            };
            T::parse(name).map(|f| (f, descending))
        })
        .collect();
    if sort.is_empty() {
        vec![(id, true)]
    } else {
        sort
    }
}

/// DRF `SearchFilter.get_search_terms`: `CharField` validation, then `search_smart_split`.
pub(super) fn parse_search(value: &str) -> Result<Vec<String>, ListQueryError> {
    if value.contains('\0') {
        return Err(ListQueryError::Filter(NULL_CHARACTERS.to_string()));
    }
    Ok(search_smart_split(value)
        .into_iter()
        .map(|t| t.to_lowercase())
        .collect())
}

/// Every term is contained, case-insensitively, in one of the search fields.
fn search_matches(terms: &[String], user: &impl UserFields) -> bool {
    if terms.is_empty() {
        return true;
    }
    let fields: Vec<String> = [Field::Username, Field::FirstName, Field::LastName]
        .into_iter()
        .filter_map(|f| match user.field(f) {
            FieldValue::Str(s) => Some(s.to_lowercase()),
            _ => None,
        })
        .collect();
    terms
        .iter()
        .all(|term| fields.iter().any(|f| f.contains(term.as_str())))
}

/// DRF's `search_smart_split`: Django `smart_split` tokens; a token quoted at
/// both ends is one phrase (unescaped), other tokens split on commas.
fn search_smart_split(text: &str) -> Vec<String> {
    let mut terms = Vec::new();
    for token in smart_split(text) {
        let term = token.trim_matches(',');
        let first = term.chars().next();
        match first {
            Some(q @ ('"' | '\'')) if term.ends_with(q) => {
                // unescape_string_literal; a lone quote is `s[1:-1] == ""`
                let inner = if term.len() >= 2 {
                    &term[1..term.len() - 1]
                } else {
                    ""
                };
                terms.push(
                    inner
                        .replace(&format!("\\{q}"), &q.to_string())
                        .replace("\\\\", "\\"),
                );
            }
            _ => terms.extend(
                term.split(',')
                    .filter(|sub| !sub.is_empty())
                    .map(|sub| sub.trim_matches(python_isspace).to_string()),
            ),
        }
    }
    terms
}

/// Django's `smart_split`, i.e. `finditer` of
/// `((?:[^\s'"]*(?:(?:"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')[^\s'"]*)+)|\S+)`.
fn smart_split(text: &str) -> Vec<&str> {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let byte_at = |i: usize| chars.get(i).map_or(text.len(), |&(b, _)| b);
    let is_plain = |c: char| !python_isspace(c) && c != '"' && c != '\'';
    let skip_plain = |mut i: usize| {
        while i < chars.len() && is_plain(chars[i].1) {
            i += 1;
        }
        i
    };
    // Index of the closing quote of the quoted string opening at `i`.
    let closing_quote = |i: usize| {
        let quote = chars[i].1;
        let mut k = i + 1;
        while k < chars.len() {
            match chars[k].1 {
                c if c == quote => return Some(k),
                // `\\.`: `.` matches anything but a newline
                '\\' if k + 1 < chars.len() && chars[k + 1].1 != '\n' => k += 2,
                '\\' => return None,
                _ => k += 1,
            }
        }
        None
    };

    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if python_isspace(chars[i].1) {
            i += 1;
            continue;
        }
        // First alternative: plain runs around one or more complete quoted strings.
        let mut end = None;
        let mut j = skip_plain(i);
        while j < chars.len() && matches!(chars[j].1, '"' | '\'') {
            match closing_quote(j) {
                Some(close) => {
                    j = skip_plain(close + 1);
                    end = Some(j);
                }
                None => break,
            }
        }
        // Otherwise `\S+`.
        let end = end.unwrap_or_else(|| {
            let mut j = i;
            while j < chars.len() && !python_isspace(chars[j].1) {
                j += 1;
            }
            j
        });
        tokens.push(&text[byte_at(i)..byte_at(end)]);
        i = end;
    }
    tokens
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::query::MAX_KEYS;
    use Field::*;

    type Params = Vec<(&'static str, &'static str)>;

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn query(items: &[(&str, &str)]) -> ListQuery {
        ListQuery::parse(&pairs(items), None).unwrap()
    }

    #[test]
    fn defaults() {
        let q = query(&[]);
        assert_eq!(q.page, PageRequest::Number(1));
        assert_eq!(q.page_size, Some(10));
        assert_eq!(
            (q.username, q.first_name, q.last_name, q.is_active),
            (None, None, None, None)
        );
        assert!(q.search.is_empty());
        assert_eq!(q.sort, vec![(Id, true)]);
        assert_eq!(q.filter, None);
        assert_eq!(q.org, OrgContext::Sandbox);
    }

    #[test]
    fn page_param() {
        let cases: [(&str, PageRequest); 14] = [
            ("", PageRequest::Number(1)),
            ("1", PageRequest::Number(1)),
            ("3", PageRequest::Number(3)),
            (" 3 ", PageRequest::Number(3)),
            ("+3", PageRequest::Number(3)),
            ("1_0", PageRequest::Number(10)),
            ("last", PageRequest::Last),
            ("Last", PageRequest::Invalid),
            ("0", PageRequest::Invalid),
            ("-1", PageRequest::Invalid),
            ("2.0", PageRequest::Invalid),
            ("abc", PageRequest::Invalid),
            ("1__0", PageRequest::Invalid),
            (
                "99999999999999999999999999999999999999999",
                PageRequest::Invalid,
            ),
        ];
        for (value, want) in cases {
            assert_eq!(query(&[("page", value)]).page, want, "{value:?}");
        }
    }

    #[test]
    fn page_size_param() {
        let cases: [(&str, Option<usize>); 10] = [
            ("2", Some(2)),
            (" 25 ", Some(25)),
            ("all", None),
            ("ALL", Some(10)),
            ("0", Some(10)),
            ("-1", Some(10)),
            ("abc", Some(10)),
            ("5.5", Some(10)),
            ("", Some(10)),
            ("99999999999999999999999999999999999999", None),
        ];
        for (value, want) in cases {
            assert_eq!(query(&[("page_size", value)]).page_size, want, "{value:?}");
        }
    }

    #[test]
    fn simple_filter_params() {
        let cases: [(&str, &str, Option<&str>); 6] = [
            ("username", "user1", Some("user1")),
            ("username", "User1", Some("User1")),
            ("first_name", " Anne ", Some("Anne")),
            ("last_name", "", None),
            ("last_name", "   ", None),
            ("username", "a b", Some("a b")),
        ];
        for (key, value, want) in cases {
            let q = query(&[(key, value)]);
            let got = match key {
                "username" => q.username,
                "first_name" => q.first_name,
                _ => q.last_name,
            };
            assert_eq!(got.as_deref(), want, "{key}={value:?}");
        }
        // the last of repeated parameters wins, like Django's QueryDict.get
        assert_eq!(
            query(&[("username", "a"), ("username", "b")])
                .username
                .as_deref(),
            Some("b")
        );
    }

    #[test]
    fn is_active_param() {
        let cases: [(&str, Option<bool>); 11] = [
            ("true", Some(true)),
            ("True", Some(true)),
            ("2", Some(true)),
            ("false", Some(false)),
            ("False", Some(false)),
            ("3", Some(false)),
            ("TRUE", None),
            ("1", None),
            ("0", None),
            ("no", None),
            ("", None),
        ];
        for (value, want) in cases {
            assert_eq!(query(&[("is_active", value)]).is_active, want, "{value:?}");
        }
    }

    #[test]
    fn search_param() {
        let cases: Vec<(&str, Vec<&str>)> = vec![
            ("", vec![]),
            ("   ", vec![]),
            ("FIRST1 smith", vec!["first1", "smith"]),
            ("a,b  c", vec!["a", "b", "c"]),
            (",a,,b,", vec!["a", "b"]),
            ("\"John Smith\" x", vec!["john smith", "x"]),
            ("'John Smith',", vec!["john smith"]),
            ("\"a,b\"", vec!["a,b"]),
            (r#""say \"hi\"""#, vec![r#"say "hi""#]),
            (r#"'it\'s' "back\\slash""#, vec!["it's", "back\\slash"]),
            ("\"unterminated phrase", vec!["\"unterminated", "phrase"]),
            ("a\"b c\"d", vec!["a\"b c\"d"]),
            ("\"a\"b", vec!["\"a\"b"]),
            ("\"\"", vec![""]),
            ("\"", vec![""]),
            ("ÄÖÜ\tß", vec!["äöü", "ß"]),
        ];
        for (value, want) in cases {
            assert_eq!(query(&[("search", value)]).search, want, "{value:?}");
        }
    }

    #[test]
    fn sort_param() {
        let cases: Vec<(&str, Vec<(Field, bool)>)> = vec![
            ("", vec![(Id, true)]),
            ("username", vec![(Username, false)]),
            (
                "-last_name,username",
                vec![(LastName, true), (Username, false)],
            ),
            (
                " first_name , -is_active ",
                vec![(FirstName, false), (IsActive, true)],
            ),
            ("email,id", vec![(Id, false)]),
            ("email,--id,-", vec![(Id, true)]),
            ("Username", vec![(Id, true)]),
        ];
        for (value, want) in cases {
            assert_eq!(query(&[("sort", value)]).sort, want, "{value:?}");
        }
    }

    #[test]
    fn org_context() {
        use OrgContext as O;
        let id_conflict = ListQueryError::Org(ORG_ID_CONFLICT.into());
        let header_conflict = ListQueryError::Org(ORG_HEADER_CONFLICT.into());
        let bad_id = ListQueryError::Org(ORG_ID_INVALID.into());
        let long_slug = "o".repeat(table::MAX_KEY_VALUE_BYTES + 1);
        let longest_slug = "o".repeat(table::MAX_KEY_VALUE_BYTES);
        type Case<'a> = (
            Vec<(&'a str, &'a str)>,
            Option<&'a str>,
            Result<O, ListQueryError>,
        );
        let cases: Vec<Case> = vec![
            (vec![], None, Ok(O::Sandbox)),
            (
                vec![("org", "acme")],
                None,
                Ok(O::Named(OrgRef::Slug("acme".into()))),
            ),
            (
                vec![],
                Some("acme"),
                Ok(O::Named(OrgRef::Slug("acme".into()))),
            ),
            (vec![], Some(""), Ok(O::Sandbox)),
            (
                vec![("org", "acme")],
                Some("acme"),
                Ok(O::Named(OrgRef::Slug("acme".into()))),
            ),
            (
                vec![("org", "acme")],
                Some(""),
                Ok(O::Named(OrgRef::Slug("acme".into()))),
            ),
            (vec![("org", "")], None, Ok(O::NoOrg)),
            (vec![("org", "")], Some(""), Ok(O::NoOrg)),
            (vec![("org_id", "7")], None, Ok(O::Named(OrgRef::Id(7)))),
            (
                vec![("org_id", " 7")],
                Some(""),
                Ok(O::Named(OrgRef::Id(7))),
            ),
            (vec![("org_id", "")], None, Ok(O::Sandbox)),
            (
                vec![("org", "acme")],
                Some("other"),
                Err(header_conflict.clone()),
            ),
            (vec![("org", "")], Some("acme"), Err(header_conflict)),
            (
                vec![("org_id", "7"), ("org", "acme")],
                None,
                Err(id_conflict.clone()),
            ),
            (
                vec![("org_id", "7")],
                Some("acme"),
                Err(id_conflict.clone()),
            ),
            (vec![("org_id", ""), ("org", "")], None, Err(id_conflict)),
            (vec![("org_id", "abc")], None, Err(bad_id.clone())),
            (vec![("org_id", "-1")], None, Err(bad_id.clone())),
            (vec![("org_id", "1.0")], None, Err(bad_id)),
            (vec![("org", &long_slug)], None, Err(org_too_long())),
            (vec![], Some(&long_slug), Err(org_too_long())),
            (
                vec![("org", &longest_slug)],
                None,
                Ok(O::Named(OrgRef::Slug(longest_slug.clone()))),
            ),
        ];
        for (params, header, want) in cases {
            let got = ListQuery::parse(&pairs(&params), header).map(|q| q.org);
            assert_eq!(got, want, "{params:?} {header:?}");
        }
    }

    #[test]
    fn parse_errors() {
        let cases: Vec<(Params, ListQueryError)> = vec![
            (
                vec![("filter", "notjson")],
                ListQueryError::Filter(
                    "filter: can't parse filter expression: expected ident at line 1 column 2"
                        .into(),
                ),
            ),
            (
                vec![("filter", "{}")],
                ListQueryError::Filter("filter shouldn't be empty".into()),
            ),
            (
                vec![("filter", r#"{"==":[{"var":"email"},"x"]}"#)],
                ListQueryError::Filter("filter: term 'email' is not supported".into()),
            ),
            (
                vec![("search", "a\0b")],
                ListQueryError::Filter("Null characters are not allowed.".into()),
            ),
            // the org context is checked first
            (
                vec![("filter", "{}"), ("org_id", "1"), ("org", "x")],
                ListQueryError::Org(ORG_ID_CONFLICT.into()),
            ),
        ];
        for (params, want) in cases {
            assert_eq!(
                ListQuery::parse(&pairs(&params), None).unwrap_err(),
                want,
                "{params:?}"
            );
        }
        // an empty filter is no filter; the last of repeated filters wins
        assert_eq!(query(&[("filter", "")]).filter, None);
        assert!(query(&[("filter", "{}"), ("filter", r#"{"var":"id"}"#)])
            .filter
            .is_some());
    }

    #[derive(Debug)]
    struct U {
        id: u64,
        username: &'static str,
        first_name: &'static str,
        last_name: &'static str,
        is_active: bool,
    }

    impl UserFields for U {
        fn field(&self, field: Field) -> FieldValue<'_> {
            match field {
                Username => FieldValue::Str(self.username),
                FirstName => FieldValue::Str(self.first_name),
                LastName => FieldValue::Str(self.last_name),
                Id => FieldValue::Int(self.id),
                IsActive => FieldValue::Bool(self.is_active),
            }
        }
    }

    fn users() -> Vec<U> {
        vec![
            U {
                id: 1,
                username: "admin1",
                first_name: "Admin",
                last_name: "First",
                is_active: true,
            },
            U {
                id: 2,
                username: "user1",
                first_name: "First1",
                last_name: "Smith",
                is_active: true,
            },
            U {
                id: 3,
                username: "user2",
                first_name: "First2",
                last_name: "Jones",
                is_active: false,
            },
            U {
                id: 4,
                username: "worker",
                first_name: "Zoë",
                last_name: "Smith",
                is_active: true,
            },
            U {
                id: 5,
                username: "b",
                first_name: "",
                last_name: "Smith",
                is_active: false,
            },
        ]
    }

    #[test]
    fn matches_users() {
        let cases: Vec<(Params, Vec<u64>)> = vec![
            (vec![], vec![1, 2, 3, 4, 5]),
            (vec![("username", "user1")], vec![2]),
            (vec![("username", "USER1")], vec![]),
            (
                vec![("last_name", "Smith"), ("is_active", "false")],
                vec![5],
            ),
            (vec![("first_name", "")], vec![1, 2, 3, 4, 5]),
            (vec![("is_active", "False")], vec![3, 5]),
            (vec![("is_active", "yes")], vec![1, 2, 3, 4, 5]),
            (vec![("search", "FIRST1 smith")], vec![2]),
            (vec![("search", "first")], vec![1, 2, 3]),
            (vec![("search", "ZOË")], vec![4]),
            (vec![("search", "user,smith")], vec![2]),
            (vec![("search", "\"in1 s\"")], vec![]),
            (vec![("search", "1")], vec![1, 2]),
            (
                vec![
                    ("filter", r#"{"<=":[2,{"var":"id"},4]}"#),
                    ("search", "smith"),
                ],
                vec![2, 4],
            ),
            (
                vec![
                    ("filter", r#"{"in":["ser",{"var":"username"}]}"#),
                    ("is_active", "true"),
                ],
                vec![2],
            ),
        ];
        for (params, want) in cases {
            let q = query(&params);
            let got: Vec<u64> = users()
                .iter()
                .filter(|u| q.matches(*u))
                .map(|u| u.id)
                .collect();
            assert_eq!(got, want, "{params:?}");
        }
    }

    #[test]
    fn sorts_users() {
        let cases: Vec<(&str, Vec<u64>)> = vec![
            ("", vec![5, 4, 3, 2, 1]),
            ("id", vec![1, 2, 3, 4, 5]),
            ("username", vec![1, 5, 2, 3, 4]),
            ("-username", vec![4, 3, 2, 5, 1]),
            // ties by id ascending
            ("last_name", vec![1, 3, 2, 4, 5]),
            ("-last_name", vec![2, 4, 5, 3, 1]),
            ("-last_name,-id", vec![5, 4, 2, 3, 1]),
            // str order: "" < "Admin" < "First1" < ... < "Zoë"
            ("first_name", vec![5, 1, 2, 3, 4]),
            ("is_active", vec![3, 5, 1, 2, 4]),
            ("-is_active,username", vec![1, 2, 4, 5, 3]),
        ];
        for (sort, want) in cases {
            let q = query(&[("sort", sort)]);
            let mut list = users();
            q.sort(&mut list);
            assert_eq!(
                list.iter().map(|u| u.id).collect::<Vec<_>>(),
                want,
                "{sort:?}"
            );
        }
    }

    // How a list plans its reads: its filter and `username=` lowered to a
    // UserQuery, planned by the domain (moved from the admin API's planner).
    fn plan(params: &[(&str, &str)]) -> ReadPlan {
        let pairs: Vec<(String, String)> = params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        ListQuery::parse(&pairs, None)
            .expect("valid query")
            .read_plan()
    }

    fn filtered(rule: &str) -> ReadPlan {
        plan(&[("filter", rule)])
    }

    fn keys(ids: &[u64], usernames: &[&str]) -> ReadPlan {
        ReadPlan::Keys {
            ids: ids.iter().copied().collect(),
            claims: usernames
                .iter()
                .map(|u| (Claim::Username, u.to_string()))
                .collect(),
        }
    }

    fn ids(low: u64, high: u64) -> ReadPlan {
        ReadPlan::IdRange { low, high }
    }

    #[test]
    fn plans_pin_by_unique_fields_and_ranges() {
        let cases: Vec<(&str, ReadPlan)> = vec![
            (r#"{"==":[{"var":"username"},"x"]}"#, keys(&[], &["x"])),
            (r#"{"==":[{"var":"id"},7]}"#, keys(&[7], &[])),
            (r#"{"==":[{"var":"id"},-7]}"#, keys(&[], &[])),
            (r#"{"in":[{"var":"id"},[3,1,3,-1]]}"#, keys(&[1, 3], &[])),
            (
                r#"{"in":[{"var":"username"},["a","b"]]}"#,
                keys(&[], &["a", "b"]),
            ),
            (r#"{"in":[{"var":"id"},[]]}"#, keys(&[], &[])),
            (r#"{"==":[{"var":"first_name"},null]}"#, keys(&[], &[])),
            (r#"{"<":[{"var":"id"},10]}"#, ids(0, 9)),
            (r#"{"<=":[{"var":"id"},10]}"#, ids(0, 10)),
            (r#"{">":[{"var":"id"},10]}"#, ids(11, u64::MAX)),
            (r#"{">=":[{"var":"id"},10]}"#, ids(10, u64::MAX)),
            (r#"{"<":[{"var":"id"},0]}"#, keys(&[], &[])),
            (
                r#"{">":[{"var":"id"},18446744073709551615]}"#,
                keys(&[], &[]),
            ),
            (r#"{"<=":[3,{"var":"id"},8]}"#, ids(3, 8)),
            (r#"{"<=":[8,{"var":"id"},3]}"#, keys(&[], &[])),
            (
                r#"{"and":[{">":[{"var":"id"},3]},{"<":[{"var":"id"},9]},{"var":"username"}]}"#,
                ids(4, 8),
            ),
            (
                r#"{"and":[{"==":[{"var":"username"},"x"]},{"in":["a",{"var":"first_name"}]}]}"#,
                keys(&[], &["x"]),
            ),
            (
                r#"{"and":[{"in":[{"var":"id"},[1,5,20]]},{"<":[{"var":"id"},10]}]}"#,
                keys(&[1, 5], &[]),
            ),
            (
                r#"{"and":[{"in":[{"var":"id"},[1,5]]},{"in":[{"var":"id"},[5,6]]}]}"#,
                keys(&[5], &[]),
            ),
            (
                r#"{"and":[{"==":[{"var":"username"},"x"]},{"in":[{"var":"id"},[1,2]]}]}"#,
                keys(&[], &["x"]),
            ),
            (
                r#"{"or":[{"==":[{"var":"username"},"x"]},{"==":[{"var":"id"},4]}]}"#,
                keys(&[4], &["x"]),
            ),
            (
                r#"{"or":[{"<":[{"var":"id"},3]},{"==":[{"var":"id"},9]}]}"#,
                ids(0, 9),
            ),
            (
                r#"{"or":[{"<":[{"var":"id"},3]},{"==":[{"var":"username"},"x"]}]}"#,
                ReadPlan::SearchIndex,
            ),
            (
                r#"{"or":[{"==":[{"var":"id"},1]},{"in":["a",{"var":"username"}]}]}"#,
                ReadPlan::SearchIndex,
            ),
            (r#"{"!":{"==":[{"var":"id"},1]}}"#, ReadPlan::SearchIndex),
            (r#"{"in":["x",{"var":"username"}]}"#, ReadPlan::SearchIndex),
            (r#"{"==":[{"var":"last_name"},"x"]}"#, ReadPlan::SearchIndex),
        ];
        for (rule, want) in cases {
            assert_eq!(filtered(rule), want, "{rule}");
        }
    }

    #[test]
    fn the_username_parameter_pins_like_the_filter() {
        assert_eq!(plan(&[("username", "bob")]), keys(&[], &["bob"]));
        assert_eq!(plan(&[("first_name", "bob")]), ReadPlan::SearchIndex);
        assert_eq!(plan(&[("search", "bob")]), ReadPlan::SearchIndex);
        assert_eq!(
            plan(&[
                ("username", "bob"),
                ("filter", r#"{"==":[{"var":"username"},"alice"]}"#)
            ]),
            keys(&[], &[])
        );
        assert_eq!(
            plan(&[("username", "bob"), ("filter", r#"{"<":[{"var":"id"},5]}"#)]),
            keys(&[], &["bob"])
        );
    }

    #[test]
    fn too_many_keys_become_a_range_or_a_full_pass() {
        let many: Vec<u64> = (1..=MAX_KEYS as u64 + 1).map(|i| i * 2).collect();
        let rule = serde_json::json!({"in": [{"var": "id"}, many]}).to_string();
        assert_eq!(filtered(&rule), ids(2, 2 * (MAX_KEYS as u64 + 1)));
        let names: Vec<String> = (0..=MAX_KEYS).map(|i| format!("u{i}")).collect();
        let rule = serde_json::json!({"in": [{"var": "username"}, names]}).to_string();
        assert_eq!(filtered(&rule), ReadPlan::SearchIndex);
    }
}
