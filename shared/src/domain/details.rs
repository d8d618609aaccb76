//! The rest of a user's directory entry: what an identity provider keeps on
//! a user beyond the fields both APIs share (a title, phone numbers,
//! addresses, the enterprise extension's department and manager, …). SCIM's
//! `rfc` profile reads and writes them; the admin API never shows them.
//!
//! The record keeps them by name, as the SCIM attribute table names them
//! (`title`, `name.middleName`, `phoneNumbers`, `department`): the table is
//! the one place an attribute is described, so a new one needs no field here.
//! Only the manager is typed, because the service checks that it names a user.
use std::collections::BTreeMap;

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
