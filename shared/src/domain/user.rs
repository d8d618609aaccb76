//! The one user record both APIs share, and the rules every write obeys.
use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};

/// The groups a user can belong to, highest privilege first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Group {
    Admin,
    User,
    Worker,
}

impl Group {
    pub const ALL: [Group; 3] = [Group::Admin, Group::User, Group::Worker];

    pub fn parse(name: &str) -> Option<Group> {
        Group::ALL.into_iter().find(|g| g.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            Group::Admin => "admin",
            Group::User => "user",
            Group::Worker => "worker",
        }
    }
}

/// One organisation the user belongs to, kept on the user item so that the
/// caller's memberships arrive with the caller in the auth read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    pub org_slug: String,
    pub org_id: u64,
    pub role: String,
    pub is_active: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub id: u64,
    pub username: String,
    pub first_name: String,
    pub last_name: String,
    /// Set only through SCIM; `None` means "derive it from the names".
    pub display_name: Option<String>,
    /// Empty when the user has no email.
    pub email: String,
    /// SCIM's `emails[0].primary`, kept as sent (default true).
    pub email_primary: bool,
    pub external_id: Option<String>,
    pub is_active: bool,
    pub groups: Vec<Group>,
    pub is_staff: bool,
    pub is_superuser: bool,
    pub has_analytics_access: bool,
    pub date_joined: DateTime<Utc>,
    pub last_modified: DateTime<Utc>,
    pub last_login: Option<DateTime<Utc>>,
    /// +1 per write; the optimistic-concurrency guard of every update.
    pub version: u64,
    pub password_hash: Option<String>,
    /// SHA-256 hashes of the user's API tokens, so a delete can remove them.
    pub token_hashes: Vec<String>,
    /// When each expiring token in `token_hashes` expires (epoch seconds), so
    /// the next write of the user can drop the hashes of expired tokens.
    pub token_expiry: BTreeMap<String, i64>,
    /// Whether each token in `token_hashes` is read-only, so that a request
    /// authenticates with the user item alone. A listed hash missing here
    /// (a token issued before this was recorded) is read from its token item.
    pub token_read_only: BTreeMap<String, bool>,
    pub memberships: Vec<Membership>,
    /// The record belongs to the identity provider: it was created through
    /// SCIM (or adopted by a SCIM POST with its `externalId`) and its username
    /// has not since been changed by anyone else. Only such a record may be
    /// updated by an `odm` POST that names its username.
    pub idp_owned: bool,
    /// The org whose tenant base created the user (`None`: made at the
    /// global base, by the admin API or by `usersctl`). Only that org's
    /// credentials reach the user; it never changes.
    pub owner: Option<u64>,
    /// The rest of the directory entry an identity provider keeps (SCIM's
    /// `rfc` profile): title, phone numbers, addresses, the manager, …
    pub details: Details,
}

impl User {
    /// A new, active user with no password; `id` and times are filled in by the store.
    pub fn new(username: impl Into<String>) -> User {
        let now = now();
        User {
            id: 0,
            username: username.into(),
            first_name: String::new(),
            last_name: String::new(),
            display_name: None,
            email: String::new(),
            email_primary: true,
            external_id: None,
            is_active: true,
            groups: Vec::new(),
            is_staff: false,
            is_superuser: false,
            has_analytics_access: false,
            date_joined: now,
            last_modified: now,
            last_login: None,
            version: 0,
            password_hash: None,
            token_hashes: Vec::new(),
            token_expiry: BTreeMap::new(),
            token_read_only: BTreeMap::new(),
            memberships: Vec::new(),
            idp_owned: false,
            owner: None,
            details: Details::default(),
        }
    }

    /// The name to show for the user: the display name when one was set,
    /// else the full name, else the username.
    pub fn shown_display_name(&self) -> String {
        if let Some(name) = &self.display_name {
            return name.clone();
        }
        let full = format!("{} {}", self.first_name, self.last_name)
            .trim()
            .to_string();
        if full.is_empty() {
            self.username.clone()
        } else {
            full
        }
    }

    /// Every credential the user has stops working: the password is dropped
    /// and all tokens are forgotten (the store deletes their items in the same
    /// write). New ones must be issued; reactivating the user brings none back.
    pub fn revoke_credentials(&mut self) {
        self.password_hash = None;
        self.token_hashes.clear();
        self.token_expiry.clear();
        self.token_read_only.clear();
    }

    /// Drops the hashes of tokens that expired at or before `now_epoch`.
    pub fn prune_expired_tokens(&mut self, now_epoch: i64) {
        let expired: Vec<String> = self
            .token_expiry
            .iter()
            .filter(|(_, at)| **at <= now_epoch)
            .map(|(h, _)| h.clone())
            .collect();
        for hash in expired {
            self.token_expiry.remove(&hash);
            self.token_read_only.remove(&hash);
            self.token_hashes.retain(|h| *h != hash);
        }
    }

    /// Highest group wins: admin > user > worker.
    pub fn privilege(&self) -> Option<Group> {
        self.groups.iter().copied().min()
    }

    pub fn is_admin(&self) -> bool {
        self.privilege() == Some(Group::Admin)
    }

    pub fn membership(&self, org_slug: &str) -> Option<&Membership> {
        self.memberships.iter().find(|m| m.org_slug == org_slug)
    }

    /// CVAT's post-save rules: superuser + staff joins `admin`, and analytics
    /// access is granted (never revoked) to superusers and admins.
    pub fn apply_derived_rules(&mut self) {
        if self.is_superuser && self.is_staff && !self.groups.contains(&Group::Admin) {
            self.groups.push(Group::Admin);
        }
        self.groups.sort();
        self.groups.dedup();
        if self.is_superuser || self.is_admin() {
            self.has_analytics_access = true;
        }
    }
}

/// The current time at the precision the store keeps (microseconds).
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// ISO-8601 in UTC with `Z`; fractional seconds only when non-zero (as DRF prints them).
pub fn format_time(t: &DateTime<Utc>) -> String {
    if t.timestamp_subsec_micros() == 0 {
        t.to_rfc3339_opts(SecondsFormat::Secs, true)
    } else {
        t.to_rfc3339_opts(SecondsFormat::Micros, true)
    }
}

pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Field rules shared by both APIs. Messages are Django's, except for the
/// Unicode checks, which Django does not make.
pub mod rules {
    use caseless::default_case_fold_str;
    use unicode_normalization::UnicodeNormalization;
    use unicode_security::MixedScript;

    pub const MAX_NAME: usize = 150;
    pub const MAX_EMAIL: usize = 254;

    pub const USERNAME_INVALID: &str = "Enter a valid username. This value may contain only letters, numbers, and @/./+/-/_ characters.";
    pub const TOO_LONG_150: &str = "Ensure this field has no more than 150 characters.";
    pub const TOO_LONG_254: &str = "Ensure this field has no more than 254 characters.";
    pub const BLANK: &str = "This field may not be blank.";
    pub const NULL: &str = "This field may not be null.";
    pub const EMAIL_INVALID: &str = "Enter a valid email address.";
    pub const USERNAME_TAKEN: &str = "A user with that username already exists.";
    pub const EMAIL_TAKEN: &str = "A user with that email already exists.";
    pub const NOT_NORMALIZED: &str = "Enter a value without compatibility characters (such as fullwidth letters or the Kelvin sign): write it in its NFKC form.";
    pub const MIXED_SCRIPT: &str =
        "Enter a value whose letters come from one script (not Latin mixed with Cyrillic, say).";

    /// The key under which a username or email is unique: NFKC with full case
    /// folding (Unicode's compatibility caseless match), so `straße` and
    /// `STRASSE`, `K` (Kelvin sign) and `k`, `ａｄｍｉｎ` and `admin` are one name.
    pub fn fold(value: &str) -> String {
        let once: String = default_case_fold_str(&value.nfd().collect::<String>())
            .nfkc()
            .collect();
        default_case_fold_str(&once).nfkc().collect()
    }

    /// A name that only looks like another: not in NFKC form (fullwidth
    /// letters, the Kelvin sign, ligatures), or letters from more than one
    /// script (`аdmin` with a Cyrillic `а`).
    pub fn lookalike_error(value: &str) -> Option<&'static str> {
        if !unicode_normalization::is_nfkc(value) {
            Some(NOT_NORMALIZED)
        } else if !value.is_single_script() {
            Some(MIXED_SCRIPT)
        } else {
            None
        }
    }

    /// Django's `^[\w.@+-]+\Z`, `\w` being Unicode letters, digits and `_`.
    pub fn username_error(username: &str) -> Option<&'static str> {
        if username.is_empty() {
            Some(BLANK)
        } else if username.chars().count() > MAX_NAME {
            Some(TOO_LONG_150)
        } else if !username
            .chars()
            .all(|c| c.is_alphanumeric() || "_.@+-".contains(c))
        {
            Some(USERNAME_INVALID)
        } else {
            lookalike_error(username)
        }
    }

    pub fn name_error(name: &str) -> Option<&'static str> {
        (name.chars().count() > MAX_NAME).then_some(TOO_LONG_150)
    }

    /// Blank is allowed (no email); anything else must be a valid address.
    pub fn email_error(email: &str) -> Option<&'static str> {
        if email.is_empty() {
            None
        } else if email.chars().count() > MAX_EMAIL {
            Some(TOO_LONG_254)
        } else if !email_address::EmailAddress::is_valid(email)
            || !email
                .rsplit_once('@')
                .is_some_and(|(_, domain)| domain.contains('.'))
        {
            Some(EMAIL_INVALID)
        } else {
            let (local, domain) = email.rsplit_once('@').unwrap_or((email, ""));
            lookalike_error(local).or_else(|| lookalike_error(domain))
        }
    }
}

// ------------------------------------------------------------ details
// The rest of a user's directory entry: what an identity provider keeps on
// a user beyond the fields both APIs share (a title, phone numbers,
// addresses, the enterprise extension's department and manager, …). SCIM's
// `rfc` profile reads and writes them; the admin API never shows them.
//
// The record keeps them by name, as the SCIM attribute table names them
// (`title`, `name.middleName`, `phoneNumbers`, `department`): the table is
// the one place an attribute is described, so a new one needs no field here.
// Only the manager is typed, because the service checks that it names a user.

/// What the directory accepts at most, so that a user item stays far under
/// DynamoDB's 400 KB limit and a read of one costs a few capacity units.
pub mod limits {
    /// Characters in one string value (a title, a phone number, a street).
    pub const MAX_TEXT: usize = 1024;
    /// Characters in one binary value (a base64 certificate: a 2048-bit
    /// RSA certificate in DER is about 1,200 bytes, 1,600 in base64).
    pub const MAX_BINARY: usize = 8192;
    /// Values of one multi-valued attribute.
    pub const MAX_VALUES: usize = 20;
    /// All of a user's details together, in bytes as stored ([`super::Details::size`]).
    pub const MAX_BYTES: usize = 16 * 1024;
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Details {
    /// Single-valued strings by name; an absent key is unassigned.
    pub text: BTreeMap<String, String>,
    /// Multi-valued attributes by name, their values in the order they
    /// were sent; an absent key (never an empty list) is unassigned.
    pub lists: BTreeMap<String, Vec<Entry>>,
    /// The user id of the user's manager.
    pub manager: Option<u64>,
}

/// One value of a multi-valued attribute: its string sub-attributes by name
/// (`value`, `type`, `streetAddress`, …), and `primary` as sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Entry {
    pub parts: BTreeMap<String, String>,
    pub primary: Option<bool>,
}

impl Entry {
    /// An entry with only a `type` (or nothing) says nothing about the
    /// user: what is left once a PATCH removed a phone number's value.
    pub fn is_blank(&self) -> bool {
        self.parts.keys().all(|k| k == "type")
    }

    pub fn is_primary(&self) -> bool {
        self.primary == Some(true)
    }

    fn size(&self) -> usize {
        let parts: usize = self.parts.iter().map(|(k, v)| k.len() + v.len()).sum();
        parts + self.primary.map_or(0, |_| "primary".len() + 1)
    }
}

impl Details {
    pub fn is_empty(&self) -> bool {
        self.text.is_empty() && self.lists.is_empty() && self.manager.is_none()
    }

    pub fn text(&self, name: &str) -> Option<&str> {
        self.text.get(name).map(String::as_str)
    }

    /// Sets or (with `None` or an empty string) unassigns a string.
    pub fn set_text(&mut self, name: &str, value: Option<String>) {
        match value.filter(|v| !v.is_empty()) {
            Some(v) => self.text.insert(name.to_string(), v),
            None => self.text.remove(name),
        };
    }

    pub fn list(&self, name: &str) -> Vec<Entry> {
        self.lists.get(name).cloned().unwrap_or_default()
    }

    /// Sets or (with no values) unassigns a multi-valued attribute.
    pub fn set_list(&mut self, name: &str, values: Vec<Entry>) {
        if values.is_empty() {
            self.lists.remove(name);
        } else {
            self.lists.insert(name.to_string(), values);
        }
    }

    /// The bytes of every name and value (UTF-8), as DynamoDB counts an
    /// item's size, give or take a byte per value.
    pub fn size(&self) -> usize {
        let text: usize = self.text.iter().map(|(k, v)| k.len() + v.len()).sum();
        let lists: usize = self
            .lists
            .iter()
            .map(|(k, values)| k.len() + values.iter().map(|e| e.size() + 1).sum::<usize>())
            .sum();
        let manager = self
            .manager
            .map_or(0, |id| "manager".len() + id.to_string().len());
        text + lists + manager
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn usernames() {
        let long = "a".repeat(151);
        let cases: &[(&str, Option<&str>)] = &[
            ("bob", None),
            ("Bob.Smith+x@y-z_1", None),
            ("Zoë", None),
            ("", Some(rules::BLANK)),
            ("has space", Some(rules::USERNAME_INVALID)),
            ("semi;colon", Some(rules::USERNAME_INVALID)),
            (&long, Some(rules::TOO_LONG_150)),
        ];
        for (input, want) in cases {
            assert_eq!(rules::username_error(input), *want, "{input:?}");
        }
    }

    #[test]
    fn lookalikes_are_refused_and_folding_joins_what_looks_alike() {
        let kelvin = "\u{212A}elvin";
        let cases: &[(&str, Option<&str>)] = &[
            (kelvin, Some(rules::NOT_NORMALIZED)),
            ("ａｄｍｉｎ", Some(rules::NOT_NORMALIZED)),
            ("\u{0430}dmin", Some(rules::MIXED_SCRIPT)),
            ("админ", None),
            ("straße", None),
            ("Zoë", None),
        ];
        for (input, want) in cases {
            assert_eq!(rules::username_error(input), *want, "{input:?}");
        }
        assert_eq!(rules::fold(kelvin), "kelvin");
        assert_eq!(rules::fold("ａｄｍｉｎ"), "admin");
        assert_eq!(rules::fold("STRASSE"), rules::fold("straße"));
        assert_eq!(rules::fold("Zoe\u{0308}"), rules::fold("zoë"));
        assert_eq!(
            rules::fold("Bob.Smith@Example.ORG"),
            "bob.smith@example.org"
        );
        assert_eq!(
            rules::email_error("new.hire@\u{0441}orp.com"),
            Some(rules::MIXED_SCRIPT)
        );
    }

    #[test]
    fn emails() {
        let cases: &[(&str, Option<&str>)] = &[
            ("", None),
            ("a@b.org", None),
            ("not-an-email", Some(rules::EMAIL_INVALID)),
            ("a@b", Some(rules::EMAIL_INVALID)),
            ("first.last@localhost", Some(rules::EMAIL_INVALID)),
            ("a b@c.org", Some(rules::EMAIL_INVALID)),
        ];
        for (input, want) in cases {
            assert_eq!(rules::email_error(input), *want, "{input:?}");
        }
    }

    #[test]
    fn times_print_like_drf() {
        let t = Utc.with_ymd_and_hms(2022, 2, 24, 20, 45, 19).unwrap();
        assert_eq!(format_time(&t), "2022-02-24T20:45:19Z");
        let t = t + chrono::Duration::microseconds(615_000);
        assert_eq!(format_time(&t), "2022-02-24T20:45:19.615000Z");
        assert_eq!(parse_time(&format_time(&t)), Some(t));
    }

    #[test]
    fn privilege_is_the_highest_group() {
        let mut u = User::new("x");
        assert_eq!(u.privilege(), None);
        u.groups = vec![Group::Worker, Group::User];
        assert_eq!(u.privilege(), Some(Group::User));
        u.is_superuser = true;
        u.is_staff = true;
        u.apply_derived_rules();
        assert!(u.is_admin());
        assert!(u.has_analytics_access);
    }
}

#[cfg(test)]
mod details_tests {
    use super::*;

    #[test]
    fn empty_values_unassign_and_size_counts_names_and_values() {
        let mut d = Details::default();
        d.set_text("title", Some("Boss".into()));
        d.set_text("nickName", Some(String::new()));
        assert_eq!(d.text("title"), Some("Boss"));
        assert_eq!(d.text("nickName"), None);
        d.set_list("roles", vec![]);
        assert!(!d.lists.contains_key("roles"));
        d.set_list(
            "phoneNumbers",
            vec![Entry {
                parts: [("value".to_string(), "555".to_string())].into(),
                primary: Some(true),
            }],
        );
        d.manager = Some(42);
        // title+Boss, phoneNumbers + (value+555, primary+1) + 1, manager+42
        assert_eq!(d.size(), 9 + 12 + 8 + 8 + 1 + 9);
        d.set_text("title", None);
        d.lists.clear();
        d.manager = None;
        assert!(d.is_empty());
    }

    #[test]
    fn a_value_with_only_a_type_is_blank() {
        let typed = |parts: &[(&str, &str)]| Entry {
            parts: parts
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            primary: Some(true),
        };
        assert!(typed(&[]).is_blank());
        assert!(typed(&[("type", "fax")]).is_blank());
        assert!(!typed(&[("type", "fax"), ("value", "1")]).is_blank());
        assert!(!typed(&[("locality", "Oslo")]).is_blank());
    }
}
