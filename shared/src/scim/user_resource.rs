//! The SCIM User resource: rendering the shared record, reading POST/PUT
//! bodies onto it, and validating it, all through the User attribute table.
use serde_json::{json, Map, Value};

use super::schema::{self, Context, Write};
use super::user_schema::USER_ATTRIBUTES;
use super::{values, ScimError, USER_SCHEMA};
use crate::domain::user::User;

pub use super::user_schema::{MAX_DISPLAY_NAME, MAX_EXTERNAL_ID};

pub fn to_json(user: &User, origin: &str) -> Value {
    let ctx = Context {
        origin,
        members: None,
    };
    let mut r = Map::new();
    r.insert("schemas".into(), json!([USER_SCHEMA]));
    for attribute in schema::resource_order(USER_ATTRIBUTES) {
        if let Some(value) = attribute.value(user, &ctx) {
            r.insert(attribute.name.into(), value);
        }
    }
    Value::Object(r)
}

/// Replaces every writable attribute of `base` with the body's (POST and PUT):
/// what the body leaves out is cleared, `active` defaults to true. Read-only,
/// unknown attributes, `password` and `groups` are ignored.
pub fn from_json(body: &Value, base: &User) -> Result<User, ScimError> {
    let Value::Object(body) = body else {
        return Err(ScimError::invalid_syntax(
            "the request body must be a JSON object",
        ));
    };
    let mut user = base.clone();
    for attribute in USER_ATTRIBUTES {
        attribute.clear(&mut user);
    }
    for (key, value) in body {
        if let Some(attribute) = schema::find(USER_ATTRIBUTES, &values::normalize_name(key)) {
            attribute.write(&mut user, value, Write::Put)?;
        }
    }
    // Required attributes without a default (displayName and active have one).
    let ctx = Context::default();
    if let Some(missing) = USER_ATTRIBUTES
        .iter()
        .find(|a| a.required && a.writable() && a.value(&user, &ctx).is_none())
    {
        return Err(ScimError::invalid_value(format!(
            "{} is required",
            missing.name
        )));
    }
    Ok(user)
}

/// The rules every stored user obeys, as SCIM errors naming the attribute.
pub fn validate(user: &User) -> Result<(), ScimError> {
    for attribute in USER_ATTRIBUTES {
        for row in std::iter::once(attribute).chain(attribute.sub_attributes) {
            if let Some(check) = row.validate {
                check(user)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::projection::Projection;

    fn sample() -> User {
        let mut u = User::new("bjensen");
        u.id = 7;
        u.version = 3;
        u.first_name = "Barbara".into();
        u.last_name = "Jensen".into();
        u.email = "b@example.com".into();
        u.external_id = Some("E1".into());
        u
    }

    #[test]
    fn renders_the_documented_shape() {
        let r = to_json(&sample(), "https://h");
        let keys: Vec<&str> = r.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "schemas",
                "id",
                "externalId",
                "userName",
                "name",
                "displayName",
                "active",
                "emails",
                "meta"
            ]
        );
        assert_eq!(r["id"], "7");
        assert_eq!(r["displayName"], "Barbara Jensen");
        assert_eq!(
            r["emails"],
            json!([{"value": "b@example.com", "type": "work", "primary": true}])
        );
        assert_eq!(r["meta"]["location"], "https://h/api/v1/scim/Users/7");
        assert_eq!(r["meta"]["version"], "W/\"3\"");
        let mut bare = User::new("solo");
        bare.id = 1;
        let r = to_json(&bare, "h");
        assert!(r.get("name").is_none() && r.get("externalId").is_none());
        assert_eq!(r["displayName"], "solo");
        assert_eq!(r["emails"], json!([]));
    }

    #[test]
    fn reads_bodies_and_refuses_bad_values() {
        let base = User::new("x");
        let ok = from_json(
            &json!({"schemas": [USER_SCHEMA], "userName": "bob", "password": "p", "groups": [],
                     "name": {"givenName": "B", "familyName": "J", "middleName": "-"},
                     "emails": [{"value": "b@x.org", "type": "work", "primary": false}],
                     "active": "False", "title": "ignored", "id": "999"}),
            &base,
        )
        .unwrap();
        assert_eq!(
            (
                ok.username.as_str(),
                ok.first_name.as_str(),
                ok.last_name.as_str()
            ),
            ("bob", "B", "J")
        );
        assert_eq!(
            (ok.email.as_str(), ok.email_primary, ok.is_active),
            ("b@x.org", false, false)
        );

        let cases: Vec<(Value, &str)> = vec![
            (json!({}), "userName is required"),
            (json!({"userName": ""}), "userName is required"),
            (json!({"userName": 5}), "userName must be a string, not 5"),
            (
                json!({"userName": "b", "active": "maybe"}),
                "active must be true or false, not \"maybe\"",
            ),
            (
                json!({"userName": "b", "emails": [{"value": "a@b.org", "type": "home"}]}),
                "Only work emails are stored; got type \"home\".",
            ),
            (
                json!({"userName": "b", "emails": [{"value": "a@b.org"}, {"value": "c@d.org"}]}),
                "Only one email per user is stored; emails has 2 values.",
            ),
            (json!([1]), "the request body must be a JSON object"),
        ];
        for (body, detail) in cases {
            let err = from_json(&body, &base).unwrap_err();
            assert_eq!(err.detail, detail, "{body}");
            assert_eq!(err.status, 400);
        }
    }

    #[test]
    fn validation_names_the_attribute() {
        let mut u = sample();
        u.username = "has space".into();
        assert!(validate(&u).unwrap_err().detail.starts_with("userName: "));
        let mut u = sample();
        u.email = "nope".into();
        assert_eq!(
            validate(&u).unwrap_err().detail,
            "emails[0].value: Enter a valid email address."
        );
        let mut u = sample();
        u.display_name = Some("d".repeat(257));
        assert!(validate(&u).is_err());
        assert!(validate(&sample()).is_ok());
    }

    #[test]
    fn projections_keep_id_and_schemas() {
        let r = to_json(&sample(), "h");
        let only = Projection::from_lists(Some("userName,name.givenName,emails.value"), None)
            .apply(r.clone());
        assert_eq!(
            only,
            json!({"schemas": [USER_SCHEMA], "id": "7", "userName": "bjensen",
                   "name": {"givenName": "Barbara"}, "emails": [{"value": "b@example.com"}]})
        );
        let without = Projection::from_lists(
            None,
            Some("urn:ietf:params:scim:schemas:core:2.0:User:name,meta,id"),
        )
        .apply(r);
        assert!(without.get("name").is_none() && without.get("meta").is_none());
        assert_eq!(without["id"], "7");
    }

    #[test]
    fn if_match_compares_versions() {
        let u = sample();
        for (header, holds) in [
            (None, true),
            (Some("*"), true),
            (Some("W/\"3\""), true),
            (Some("\"3\""), true),
            (Some("W/\"2\""), false),
        ] {
            assert_eq!(
                crate::scim::resource_type::if_match_holds(header, u.version),
                holds,
                "{header:?}"
            );
        }
    }
}
