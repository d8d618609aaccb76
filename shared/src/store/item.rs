//! Mapping between DynamoDB items and the user record.
use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use super::keys;
use crate::domain::user::{format_time, parse_time, Group, Membership, User};
use crate::domain::user::{Details, Entry};

pub type Item = HashMap<String, AttributeValue>;

pub fn key(pk: impl Into<String>, sk: impl Into<String>) -> Item {
    HashMap::from([
        (keys::PK.to_string(), AttributeValue::S(pk.into())),
        (keys::SK.to_string(), AttributeValue::S(sk.into())),
    ])
}

pub fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub fn get_s<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

pub fn get_n<T: std::str::FromStr>(item: &Item, name: &str) -> Option<T> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}

pub fn get_bool(item: &Item, name: &str) -> Option<bool> {
    item.get(name).and_then(|v| v.as_bool().ok()).copied()
}

pub fn user_to_item(user: &User) -> Item {
    let (pk, sk) = keys::user(user.id);
    let mut item = key(pk, sk);
    let mut put = |name: &str, v: AttributeValue| {
        item.insert(name.to_string(), v);
    };
    put(keys::GSI1_PK, s(keys::USERS_PARTITION));
    put(keys::GSI1_SK, s(keys::user_order(user.id)));
    put("id", n(user.id));
    put("username", s(&user.username));
    put("first_name", s(&user.first_name));
    put("last_name", s(&user.last_name));
    put("email", s(&user.email));
    put("email_primary", AttributeValue::Bool(user.email_primary));
    put("is_active", AttributeValue::Bool(user.is_active));
    put(
        "groups",
        AttributeValue::L(user.groups.iter().map(|g| s(g.name())).collect()),
    );
    put("is_staff", AttributeValue::Bool(user.is_staff));
    put("is_superuser", AttributeValue::Bool(user.is_superuser));
    put(
        "has_analytics_access",
        AttributeValue::Bool(user.has_analytics_access),
    );
    put("date_joined", s(format_time(&user.date_joined)));
    put("last_modified", s(format_time(&user.last_modified)));
    put("version", n(user.version));
    put(
        "token_hashes",
        AttributeValue::L(user.token_hashes.iter().map(s).collect()),
    );
    put(
        "token_expiry",
        AttributeValue::M(
            user.token_expiry
                .iter()
                .map(|(hash, at)| (hash.clone(), n(at)))
                .collect(),
        ),
    );
    put(
        "token_read_only",
        AttributeValue::M(
            user.token_read_only
                .iter()
                .map(|(hash, ro)| (hash.clone(), AttributeValue::Bool(*ro)))
                .collect(),
        ),
    );
    put("idp_owned", AttributeValue::Bool(user.idp_owned));
    if let Some(org) = user.owner {
        put(keys::OWNER, n(org));
        // The tenant index's keys: only owned users are in it.
        put(keys::TENANT_PK, s(keys::tenant_partition(org)));
    }
    put(
        "memberships",
        AttributeValue::L(
            user.memberships
                .iter()
                .map(|m| {
                    AttributeValue::M(HashMap::from([
                        ("org".to_string(), s(&m.org_slug)),
                        ("org_id".to_string(), n(m.org_id)),
                        ("role".to_string(), s(&m.role)),
                        ("is_active".to_string(), AttributeValue::Bool(m.is_active)),
                    ]))
                })
                .collect(),
        ),
    );
    if let Some(v) = &user.display_name {
        put("display_name", s(v));
    }
    if let Some(v) = &user.external_id {
        put("external_id", s(v));
    }
    if let Some(v) = &user.last_login {
        put("last_login", s(format_time(v)));
    }
    if let Some(v) = &user.password_hash {
        put("password_hash", s(v));
    }
    if !user.details.is_empty() {
        put(DETAILS, details_to_item(&user.details));
    }
    item
}

/// The item attribute that holds a user's [`Details`], one map (so the list
/// index copies it by one name): each string by its name (`S`), each
/// multi-valued attribute by its name (`L` of `M`, each value's parts as
/// `S` and `primary` as `BOOL`), the manager's id as `manager` (`N`).
pub const DETAILS: &str = "details";

fn details_to_item(details: &Details) -> AttributeValue {
    let mut map: HashMap<String, AttributeValue> = details
        .text
        .iter()
        .map(|(name, value)| (name.clone(), s(value)))
        .collect();
    for (name, values) in &details.lists {
        let values = values
            .iter()
            .map(|entry| {
                let mut m: HashMap<String, AttributeValue> = entry
                    .parts
                    .iter()
                    .map(|(part, value)| (part.clone(), s(value)))
                    .collect();
                if let Some(primary) = entry.primary {
                    m.insert("primary".into(), AttributeValue::Bool(primary));
                }
                AttributeValue::M(m)
            })
            .collect();
        map.insert(name.clone(), AttributeValue::L(values));
    }
    if let Some(id) = details.manager {
        map.insert("manager".into(), n(id));
    }
    AttributeValue::M(map)
}

/// [`details_to_item`] read back; what is not of a known shape is skipped.
fn details_from_item(item: &Item) -> Details {
    let mut details = Details::default();
    let Some(map) = item.get(DETAILS).and_then(|v| v.as_m().ok()) else {
        return details;
    };
    for (name, value) in map {
        match value {
            AttributeValue::N(id) if name == "manager" => details.manager = id.parse().ok(),
            AttributeValue::S(text) => {
                details.text.insert(name.clone(), text.clone());
            }
            AttributeValue::L(values) => {
                let entries: Vec<Entry> = values
                    .iter()
                    .filter_map(|v| v.as_m().ok())
                    .map(|m| Entry {
                        parts: m
                            .iter()
                            .filter_map(|(k, v)| Some((k.clone(), v.as_s().ok()?.clone())))
                            .collect(),
                        primary: m.get("primary").and_then(|p| p.as_bool().ok()).copied(),
                    })
                    .collect();
                details.set_list(name, entries);
            }
            _ => {}
        }
    }
    details
}

/// `None` when the item is not a well-formed user (which only a bug or a hand edit makes).
pub fn user_from_item(item: &Item) -> Option<User> {
    let text = |name: &str| get_s(item, name).unwrap_or_default().to_string();
    let flag = |name: &str| get_bool(item, name).unwrap_or(false);
    let list = |name: &str| -> Vec<AttributeValue> {
        item.get(name)
            .and_then(|v| v.as_l().ok())
            .cloned()
            .unwrap_or_default()
    };
    let memberships = list("memberships")
        .iter()
        .filter_map(|v| {
            let m = v.as_m().ok()?;
            Some(Membership {
                org_slug: get_s(m, "org")?.to_string(),
                org_id: get_n(m, "org_id")?,
                role: get_s(m, "role").unwrap_or("worker").to_string(),
                is_active: get_bool(m, "is_active").unwrap_or(true),
            })
        })
        .collect();
    Some(User {
        id: get_n(item, "id")?,
        username: get_s(item, "username")?.to_string(),
        first_name: text("first_name"),
        last_name: text("last_name"),
        display_name: get_s(item, "display_name").map(str::to_string),
        email: text("email"),
        email_primary: get_bool(item, "email_primary").unwrap_or(true),
        external_id: get_s(item, "external_id").map(str::to_string),
        is_active: flag("is_active"),
        groups: list("groups")
            .iter()
            .filter_map(|g| g.as_s().ok().and_then(|g| Group::parse(g)))
            .collect(),
        is_staff: flag("is_staff"),
        is_superuser: flag("is_superuser"),
        has_analytics_access: flag("has_analytics_access"),
        date_joined: parse_time(get_s(item, "date_joined")?)?,
        last_modified: parse_time(get_s(item, "last_modified")?)?,
        last_login: get_s(item, "last_login").and_then(parse_time),
        version: get_n(item, "version").unwrap_or(0),
        password_hash: get_s(item, "password_hash").map(str::to_string),
        token_hashes: list("token_hashes")
            .iter()
            .filter_map(|v| v.as_s().ok().cloned())
            .collect(),
        token_expiry: item
            .get("token_expiry")
            .and_then(|v| v.as_m().ok())
            .map(|m| {
                m.iter()
                    .filter_map(|(hash, at)| Some((hash.clone(), at.as_n().ok()?.parse().ok()?)))
                    .collect()
            })
            .unwrap_or_default(),
        token_read_only: item
            .get("token_read_only")
            .and_then(|v| v.as_m().ok())
            .map(|m| {
                m.iter()
                    .filter_map(|(hash, ro)| Some((hash.clone(), *ro.as_bool().ok()?)))
                    .collect()
            })
            .unwrap_or_default(),
        memberships,
        idp_owned: flag("idp_owned"),
        owner: get_n(item, keys::OWNER),
        details: details_from_item(item),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_round_trips_through_an_item() {
        let mut u = User::new("Zoë");
        u.id = 42;
        u.email = "z@example.org".into();
        u.email_primary = false;
        u.groups = vec![Group::Admin, Group::Worker];
        u.external_id = Some("ext-1".into());
        u.last_login = Some(u.date_joined);
        u.password_hash = Some("$argon2id$...".into());
        u.token_hashes = vec!["ab".into(), "cd".into()];
        u.token_expiry = [("cd".to_string(), 1_900_000_000)].into();
        u.token_read_only = [("ab".to_string(), false), ("cd".to_string(), true)].into();
        u.idp_owned = true;
        u.memberships = vec![Membership {
            org_slug: "acme".into(),
            org_id: 3,
            role: "maintainer".into(),
            is_active: true,
        }];
        u.version = 7;
        let back = user_from_item(&user_to_item(&u)).unwrap();
        assert_eq!(back, u);
        assert!(
            !user_to_item(&u).contains_key(DETAILS),
            "no details, no attribute"
        );

        u.details.set_text("title", Some("Tester".into()));
        u.details.set_text("name.middleName", Some("Q".into()));
        u.details.set_list(
            "phoneNumbers",
            vec![
                Entry {
                    parts: [("value", "555-0100"), ("type", "work")]
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .into(),
                    primary: Some(true),
                },
                Entry {
                    parts: [("value".to_string(), "555-0199".to_string())].into(),
                    primary: None,
                },
            ],
        );
        u.details.manager = Some(9);
        let back = user_from_item(&user_to_item(&u)).unwrap();
        assert_eq!(back, u);
    }
}
