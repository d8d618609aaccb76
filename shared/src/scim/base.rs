//! Where a SCIM request is addressed: the global base `/api/v1/scim`, for
//! global admins, or an organization's tenant base
//! `/api/v1/scim/orgs/{slug}`, where the org's own credentials (and global
//! admins) provision the users that org owns. The same functions serve both;
//! every link a response carries (`meta.location`, `$ref`, `Location`)
//! points under the base the request came through.
use super::BASE_PATH;

/// The segment after the global base that starts a tenant base.
const TENANTS: &str = "/orgs/";

/// The SCIM base a request came through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Base {
    Global,
    /// An org's base, by the slug as the path sent it (not yet looked up).
    Tenant(String),
}

impl Base {
    /// The base `path` is under: a tenant base when it starts with
    /// `/api/v1/scim/orgs/{slug}/` (or is exactly that), else the global one.
    pub fn of_path(path: &str) -> Base {
        let Some(rest) = path
            .strip_prefix(BASE_PATH)
            .and_then(|r| r.strip_prefix(TENANTS))
        else {
            return Base::Global;
        };
        let slug = rest.split('/').next().unwrap_or_default();
        if slug.is_empty() {
            return Base::Global;
        }
        Base::Tenant(slug.to_string())
    }

    /// The base's path: `/api/v1/scim` or `/api/v1/scim/orgs/{slug}`.
    pub fn path(&self) -> String {
        match self {
            Base::Global => BASE_PATH.to_string(),
            Base::Tenant(slug) => format!("{BASE_PATH}{TENANTS}{slug}"),
        }
    }

    /// The base's URL for clients reaching the API at `origin`.
    pub fn url(&self, origin: &str) -> String {
        format!("{origin}{}", self.path())
    }

    /// What of `path` follows the base (`/Users/7`), if it is under it.
    pub fn rest<'p>(&self, path: &'p str) -> Option<&'p str> {
        path.strip_prefix(self.path().as_str())
    }

    /// The slug of a tenant base.
    pub fn tenant(&self) -> Option<&str> {
        match self {
            Base::Global => None,
            Base::Tenant(slug) => Some(slug),
        }
    }
}

/// The global base's URL for clients reaching the API at `origin`.
pub fn base_url(origin: &str) -> String {
    Base::Global.url(origin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_names_its_base() {
        let tenant = |s: &str| Base::Tenant(s.to_string());
        let cases = [
            ("/api/v1/scim/Users", Base::Global),
            ("/api/v1/scim/orgs", Base::Global),
            ("/api/v1/scim/orgs/", Base::Global),
            ("/api/v1/scim/orgs/acme", tenant("acme")),
            ("/api/v1/scim/orgs/acme/Users/7", tenant("acme")),
            ("/api/v1/scim/orgs/a-b_1/.search", tenant("a-b_1")),
        ];
        for (path, want) in cases {
            assert_eq!(Base::of_path(path), want, "{path}");
        }
        let acme = tenant("acme");
        assert_eq!(
            acme.rest("/api/v1/scim/orgs/acme/Users/7"),
            Some("/Users/7")
        );
        assert_eq!(acme.url("https://h"), "https://h/api/v1/scim/orgs/acme");
        assert_eq!(Base::Global.rest("/api/v1/scim/Me"), Some("/Me"));
    }
}
