//! Where the admin API behaves as Django, django-filter and DRF do, because
//! CVAT's clients (cvat-sdk, the UI) were written against that behaviour:
//! Python's `int()` and `str.isspace()`, django-filter's boolean spellings,
//! Django's `Paginator` and DRF's page links with `urllib.parse.quote_plus`.
//! Each quirk is here once, so that a reader of the query code sees the
//! rule, and a reader of this file sees every place CVAT's stack shows through.
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// django-filter `BooleanFilter`, whose `NullBooleanSelect` widget also maps
/// "2"/"3" (its option values) to true/false; anything else is no filter.
pub fn null_boolean(value: Option<&str>) -> Option<bool> {
    match value? {
        "true" | "True" | "2" => Some(true),
        "false" | "False" | "3" => Some(false),
        _ => None,
    }
}

/// `str.isspace()`: Unicode White_Space plus the ASCII information separators.
pub fn python_isspace(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python's `int(str)` for ASCII digits: surrounding whitespace, an optional
/// sign, and single underscores between digits.
pub fn python_int(s: &str) -> Option<i128> {
    let s = s.trim_matches(python_isspace);
    let (negative, digits) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
    {
        return None;
    }
    let mut n: i128 = 0;
    for c in digits.chars().filter(|&c| c != '_') {
        let d = c.to_digit(10)?;
        n = n.checked_mul(10)?.checked_add(i128::from(d))?;
    }
    Some(if negative { -n } else { n })
}

#[derive(Debug, Clone, PartialEq)]
pub enum PageRequest {
    Number(u64),
    Last,
    /// Not an integer, or below 1: always 404 "Invalid page.".
    Invalid,
}

impl PageRequest {
    /// `request.query_params.get("page") or 1`, then Django's `validate_number`.
    pub fn parse(value: Option<&str>) -> PageRequest {
        match value {
            None | Some("") => PageRequest::Number(1),
            Some("last") => PageRequest::Last,
            Some(v) => match python_int(v) {
                Some(n) if n >= 1 => {
                    u64::try_from(n).map_or(PageRequest::Invalid, PageRequest::Number)
                }
                _ => PageRequest::Invalid,
            },
        }
    }
}

/// One page of the sorted results: `start..end`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub number: u64,
    pub num_pages: u64,
    pub start: usize,
    pub end: usize,
}

/// Django Paginator semantics: page 1 of 0 results is valid (num_pages 1); Last → last page; out of range / Invalid → Err(())
#[allow(clippy::result_unit_err)]
pub fn paginate(total: usize, page: &PageRequest, page_size: Option<usize>) -> Result<Page, ()> {
    let per_page = page_size.filter(|&n| n > 0).unwrap_or(usize::MAX);
    // allow_empty_first_page: at least one page
    let num_pages = total.max(1).div_ceil(per_page) as u64;
    let number = match *page {
        PageRequest::Number(n) if (1..=num_pages).contains(&n) => n,
        PageRequest::Last => num_pages,
        _ => return Err(()),
    };
    // (number - 1) * per_page < total here, so no overflow.
    let start = (number - 1) as usize * per_page;
    let end = start.saturating_add(per_page).min(total);
    Ok(Page {
        number,
        num_pages,
        start: start.min(end),
        end,
    })
}

/// next/previous links as CVAT builds them: `base` is the absolute URL without query (e.g. "http://h/api/users");
/// all query params re-encoded (application/x-www-form-urlencoded, like Python urlencode) and sorted by key (stable);
/// `page` replaced; `previous` of page 2 drops `page` entirely; None at the ends.
pub fn page_links(
    base: &str,
    params: &[(String, String)],
    page: &Page,
) -> (Option<String>, Option<String>) {
    let link = |number: Option<u64>| {
        // DRF's replace_query_param / remove_query_param: parse_qs, set or
        // drop `page`, urlencode(sorted(...), doseq=True).
        let page_value = number.map(|n| n.to_string());
        let mut pairs: Vec<(&str, &str)> = params
            .iter()
            .filter(|(k, _)| k != "page")
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        if let Some(n) = &page_value {
            pairs.push(("page", n));
        }
        pairs.sort_by(|a, b| a.0.cmp(b.0));
        let query = pairs
            .iter()
            .map(|(k, v)| format!("{}={}", quote_plus(k), quote_plus(v)))
            .collect::<Vec<_>>()
            .join("&");
        if query.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{query}")
        }
    };
    let next = (page.number < page.num_pages).then(|| link(Some(page.number + 1)));
    let previous = match page.number {
        0 | 1 => None,
        2 => Some(link(None)),
        n => Some(link(Some(n - 1))),
    };
    (next, previous)
}

/// What `quote_plus` leaves as it is: `A-Za-z0-9_.-~` (Python's `quote`
/// with `safe=''`; the space becomes `+` below).
const PYTHON_UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'_')
    .remove(b'.')
    .remove(b'-')
    .remove(b'~');

/// Python's `urllib.parse.quote_plus`: UTF-8, unreserved `A-Za-z0-9_.-~`, space as `+`.
pub fn quote_plus(s: &str) -> String {
    // `%` itself is encoded, so every `%20` in the output is a space.
    utf8_percent_encode(s, PYTHON_UNRESERVED)
        .to_string()
        .replace("%20", "+")
}

#[cfg(test)]
mod tests {
    use super::*;

    type Params = Vec<(&'static str, &'static str)>;

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn paginates() {
        use PageRequest::*;
        let page = |number, num_pages, start, end| {
            Ok(Page {
                number,
                num_pages,
                start,
                end,
            })
        };
        type Want = Result<Page, ()>;
        let cases: Vec<(usize, PageRequest, Option<usize>, Want)> = vec![
            (0, Number(1), Some(10), page(1, 1, 0, 0)),
            (0, Last, Some(10), page(1, 1, 0, 0)),
            (0, Number(2), Some(10), Err(())),
            (13, Number(1), Some(2), page(1, 7, 0, 2)),
            (13, Number(7), Some(2), page(7, 7, 12, 13)),
            (13, Last, Some(2), page(7, 7, 12, 13)),
            (13, Number(8), Some(2), Err(())),
            (13, Number(0), Some(2), Err(())),
            (13, Invalid, Some(2), Err(())),
            (14, Last, Some(2), page(7, 7, 12, 14)),
            (13, Number(1), None, page(1, 1, 0, 13)),
            (13, Last, None, page(1, 1, 0, 13)),
            (13, Number(2), None, Err(())),
            (10, Number(1), Some(10), page(1, 1, 0, 10)),
            (11, Number(2), Some(10), page(2, 2, 10, 11)),
            (13, Number(u64::MAX), Some(2), Err(())),
            (3, Number(1), Some(usize::MAX), page(1, 1, 0, 3)),
        ];
        for (total, request, size, want) in cases {
            assert_eq!(
                paginate(total, &request, size),
                want,
                "{total} {request:?} {size:?}"
            );
        }
    }

    #[test]
    fn builds_page_links() {
        let base = "http://h/api/users";
        let page = |number, num_pages| Page {
            number,
            num_pages,
            start: 0,
            end: 0,
        };
        type Link = Option<&'static str>;
        let cases: Vec<(Params, Page, Link, Link)> = vec![
            (
                vec![("sort", "username"), ("page_size", "2")],
                page(1, 3),
                Some("http://h/api/users?page=2&page_size=2&sort=username"),
                None,
            ),
            (
                vec![("sort", "username"), ("page_size", "2"), ("page", "2")],
                page(2, 3),
                Some("http://h/api/users?page=3&page_size=2&sort=username"),
                Some("http://h/api/users?page_size=2&sort=username"),
            ),
            (
                vec![("page", "3"), ("page_size", "2")],
                page(3, 3),
                None,
                Some("http://h/api/users?page=2&page_size=2"),
            ),
            (vec![("page", "2")], page(2, 2), None, Some("http://h/api/users")),
            (vec![], page(1, 1), None, None),
            (vec![], page(1, 2), Some("http://h/api/users?page=2"), None),
            (
                // Python's quote_plus: `~` kept, `*` encoded, space as `+`, UTF-8
                vec![("search", "a b~*&=é"), ("filter", r#"{"var":"id"}"#)],
                page(1, 2),
                Some("http://h/api/users?filter=%7B%22var%22%3A%22id%22%7D&page=2&search=a+b~%2A%26%3D%C3%A9"),
                None,
            ),
            (
                // repeated keys stay together in request order; every `page` replaced
                vec![("username", "b"), ("page", "last"), ("a", "2"), ("username", "a"), ("page", "x")],
                page(3, 5),
                Some("http://h/api/users?a=2&page=4&username=b&username=a"),
                Some("http://h/api/users?a=2&page=2&username=b&username=a"),
            ),
            (
                vec![("Z", ""), ("_", "1")],
                page(1, 2),
                Some("http://h/api/users?Z=&_=1&page=2"),
                None,
            ),
        ];
        for (params, page, next, previous) in cases {
            let got = page_links(base, &pairs(&params), &page);
            assert_eq!(
                got,
                (next.map(String::from), previous.map(String::from)),
                "{params:?} {page:?}"
            );
        }
    }
}
