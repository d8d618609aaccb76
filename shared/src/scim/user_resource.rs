//! The SCIM User resource: rendering the shared record, reading POST/PUT
//! bodies onto it, and validating it, all through the User attribute table
//! as the profile has it.
use serde_json::{json, Map, Value};

use super::schema::{self, Context, Write};
use super::user_schema::USER_ATTRIBUTES;
use super::{values, ScimError, USER_SCHEMA};
use crate::domain::details::limits;
use crate::domain::profile::Profile;
use crate::domain::user::User;

pub use super::user_schema::{MAX_DISPLAY_NAME, MAX_EXTERNAL_ID};

/// The user as `profile` shows it. `schemas` lists an extension when the
/// user has any of it.
pub fn to_json(user: &User, base_url: &str, profile: Profile) -> Value {
    let ctx = Context {
        base_url,
        members: None,
        profile,
    };
    let mut r = Map::new();
    let mut schemas = vec![json!(USER_SCHEMA)];
    r.insert("schemas".into(), json!([]));
    for attribute in schema::resource_order(USER_ATTRIBUTES, profile) {
        if let Some(value) = attribute.value(user, &ctx) {
            if attribute.extension.is_some() {
                schemas.push(json!(attribute.name));
            }
            r.insert(attribute.name.into(), value);
        }
    }
    r.insert("schemas".into(), Value::Array(schemas));
    Value::Object(r)
}

/// Replaces every writable attribute `profile` has of `base` with the
/// body's (POST and PUT): what the body leaves out is cleared, `active`
/// defaults to true. Read-only and unknown attributes, `password` and
/// `groups` are ignored, and so is what `profile` does not have.
pub fn from_json(body: &Value, base: &User, profile: Profile) -> Result<User, ScimError> {
    let Value::Object(body) = body else {
        return Err(ScimError::invalid_syntax(
            "the request body must be a JSON object",
        ));
    };
    let mut user = base.clone();
    for attribute in schema::rows(USER_ATTRIBUTES, profile) {
        attribute.clear(&mut user, profile);
    }
    for (key, value) in body {
        // A core attribute, an extension as an object under its URN, or one
        // of its attributes under `urn:…:name`.
        let attribute = schema::find_in(USER_ATTRIBUTES, profile, &values::normalize_name(key))
            .or_else(
                || match schema::extension_in(USER_ATTRIBUTES, profile, key)? {
                    (extension, "") => Some(extension),
                    (extension, name) => extension.sub_in(profile, name),
                },
            );
        if let Some(attribute) = attribute {
            attribute.write(&mut user, value, Write::Put, profile)?;
        }
    }
    // Required attributes without a default (displayName and active have one).
    let ctx = Context {
        profile,
        ..Context::default()
    };
    if let Some(missing) = schema::rows(USER_ATTRIBUTES, profile)
        .find(|a| a.required && a.writable() && a.value(&user, &ctx).is_none())
    {
        return Err(ScimError::invalid_value(format!(
            "{} is required",
            missing.name
        )));
    }
    Ok(user)
}

/// The rules every stored user obeys in `profile`, as SCIM errors naming the
/// attribute; and all of a user's details together stay within
/// [`limits::MAX_BYTES`].
pub fn validate(user: &User, profile: Profile) -> Result<(), ScimError> {
    for attribute in schema::rows(USER_ATTRIBUTES, profile) {
        let subs = attribute
            .sub_attributes
            .iter()
            .flat_map(|s| std::iter::once(s).chain(s.sub_attributes));
        for row in std::iter::once(attribute).chain(subs) {
            if let (true, Some(check)) = (row.in_profile(profile), row.validate) {
                check(user)?;
            }
        }
    }
    let size = user.details.size();
    if size > limits::MAX_BYTES {
        return Err(ScimError::invalid_value(format!(
            "The user's attributes take {size} bytes, at most {} are allowed",
            limits::MAX_BYTES
        )));
    }
    Ok(())
}

/// Whether a user may make the change from `current` to `next` to
/// themselves (`PATCH` and `PUT` on `/Me`): it may change only attributes
/// whose row is marked `self_service`. Decided on what the change does,
/// attribute by attribute as `profile` shows them, not on how the request
/// named them: a PUT that sends back an attribute as it is changes nothing
/// of it, and a PATCH path in any form reaches the same attribute. An
/// extension is compared attribute by attribute, so the refusal names the
/// one that changed. The 403 names it and lists what a user may change.
pub fn self_service_change(current: &User, next: &User, profile: Profile) -> Result<(), ScimError> {
    let ctx = Context {
        profile,
        ..Context::default()
    };
    for row in schema::rows(USER_ATTRIBUTES, profile).filter(|a| a.writable() && !a.self_service) {
        let parts: Vec<&schema::Attribute<User>> = if row.extension.is_some() {
            row.subs(profile).collect()
        } else {
            vec![row]
        };
        for part in parts {
            if part.value(current, &ctx) != part.value(next, &ctx) {
                let name = if std::ptr::eq(part, row) {
                    row.name.to_string()
                } else {
                    format!("{}:{}", row.name, part.name)
                };
                return Err(not_self_service(&name, profile));
            }
        }
    }
    Ok(())
}

/// 403: `name` is not for a user to change about themselves.
fn not_self_service(name: &str, profile: Profile) -> ScimError {
    let allowed: Vec<&str> = schema::rows(USER_ATTRIBUTES, profile)
        .filter(|a| a.self_service)
        .map(|a| a.name)
        .collect();
    let allowed = match allowed.split_last() {
        Some((last, [])) => last.to_string(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
        None => "nothing".to_string(),
    };
    ScimError::new(
        403,
        None,
        format!(
            "{name} cannot be changed through /Me: users change their own {allowed}; an \
             administrator changes the rest. Nothing was changed."
        ),
    )
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
        let r = to_json(&sample(), "https://h/api/v1/scim", Profile::Odm);
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
        let r = to_json(&bare, "h", Profile::Odm);
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
            Profile::Odm,
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
            let err = from_json(&body, &base, Profile::Odm).unwrap_err();
            assert_eq!(err.detail, detail, "{body}");
            assert_eq!(err.status, 400);
        }
    }

    #[test]
    fn validation_names_the_attribute() {
        let mut u = sample();
        u.username = "has space".into();
        assert!(validate(&u, Profile::Odm)
            .unwrap_err()
            .detail
            .starts_with("userName: "));
        let mut u = sample();
        u.email = "nope".into();
        assert_eq!(
            validate(&u, Profile::Odm).unwrap_err().detail,
            "emails[0].value: Enter a valid email address."
        );
        let mut u = sample();
        u.display_name = Some("d".repeat(257));
        assert!(validate(&u, Profile::Odm).is_err());
        assert!(validate(&sample(), Profile::Odm).is_ok());
    }

    #[test]
    fn projections_keep_id_and_schemas() {
        let r = to_json(&sample(), "h", Profile::Odm);
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

    const ENT: &str = crate::scim::ENTERPRISE_USER_SCHEMA;

    /// Everything Okta's full profile sends, as a PUT body.
    fn okta_profile() -> Value {
        json!({
            "schemas": [USER_SCHEMA, ENT],
            "userName": "isaac@example.com",
            "name": {"givenName": "Isaac", "familyName": "Brock", "middleName": "K",
                     "honorificPrefix": "Mr.", "honorificSuffix": "III", "formatted": "Mr. Isaac K Brock III"},
            "displayName": "Isaac Brock",
            "nickName": "Ike",
            "profileUrl": "https://example.com/isaac",
            "title": "Singer",
            "userType": "Employee",
            "preferredLanguage": "en-US",
            "locale": "en-US",
            "timezone": "America/Los_Angeles",
            "active": true,
            "emails": [{"value": "isaac@example.com", "type": "work", "primary": true},
                       {"value": "ike@home.example", "type": "home"}],
            "phoneNumbers": [{"value": "555-555-8377", "type": "work"},
                             {"value": "555-555-0000", "type": "mobile", "primary": true}],
            "addresses": [{"streetAddress": "1 Main St", "locality": "Portland", "region": "OR",
                           "postalCode": "97201", "country": "US", "type": "work", "primary": true}],
            ENT: {"employeeNumber": "701984", "costCenter": "4130", "organization": "Universal",
                  "division": "Theme Park", "department": "Tour Operations",
                  "manager": {"value": "26", "displayName": "John Smith"}},
            "password": "never kept",
            "groups": [{"value": "3"}]
        })
    }

    #[test]
    fn rfc_keeps_the_whole_user_and_shows_it_back() {
        let base = User::new("");
        let user = from_json(&okta_profile(), &base, Profile::Rfc).unwrap();
        validate(&user, Profile::Rfc).unwrap();
        assert_eq!(
            user.email, "isaac@example.com",
            "the primary email is the record's"
        );
        assert_eq!(user.details.manager, Some(26));
        let mut shown = to_json(&user, "https://h/api/v1/scim", Profile::Rfc);
        assert_eq!(shown["schemas"], json!([USER_SCHEMA, ENT]));
        assert_eq!(
            shown[ENT]["manager"],
            json!({"value": "26", "$ref": "https://h/api/v1/scim/Users/26"})
        );
        // What was sent comes back, but the manager's displayName (read-only)
        // and what is never shown (password, groups the user is not in).
        let mut sent = okta_profile();
        sent[ENT]["manager"] = shown[ENT]["manager"].clone();
        for k in ["password", "groups"] {
            sent.as_object_mut().unwrap().remove(k);
        }
        let map = shown.as_object_mut().unwrap();
        for k in ["id", "meta"] {
            map.remove(k);
        }
        assert_eq!(shown, sent);

        // odm shows none of it, and reads none of it.
        let odm = to_json(&user, "https://h/api/v1/scim", Profile::Odm);
        assert_eq!(odm["schemas"], json!([USER_SCHEMA]));
        for k in ["title", "phoneNumbers", "addresses", ENT] {
            assert!(odm.get(k).is_none(), "{k}");
        }
        assert_eq!(
            odm["emails"],
            json!([{"value": "isaac@example.com", "type": "work", "primary": true}])
        );
        let mut odm_body = okta_profile();
        odm_body["emails"] = json!([{"value": "isaac@example.com"}]);
        let read = from_json(&odm_body, &base, Profile::Odm).unwrap();
        assert!(read.details.is_empty(), "{:?}", read.details);
    }

    #[test]
    fn a_put_replaces_every_attribute_of_its_profile() {
        let user = from_json(&okta_profile(), &User::new(""), Profile::Rfc).unwrap();
        let bare = from_json(&json!({"userName": "isaac"}), &user, Profile::Rfc).unwrap();
        assert!(bare.details.is_empty(), "{:?}", bare.details);
        assert_eq!(bare.email, "");
        // odm leaves what it does not have as it was.
        let odm = from_json(&json!({"userName": "isaac"}), &user, Profile::Odm).unwrap();
        assert_eq!(odm.details, user.details);
    }

    #[test]
    fn rfc_bodies_are_checked() {
        let base = User::new("");
        let long = "x".repeat(1025);
        let cases: Vec<(Value, String)> = vec![
            (
                json!({"userName": "b", "title": 5}),
                "title must be a string, not 5".into(),
            ),
            (
                json!({"userName": "b", "title": long}),
                "title is too long: 1025 characters, at most 1024 are allowed".into(),
            ),
            (
                json!({"userName": "b", ENT: {"manager": "abc"}}),
                "manager must be the id of a user, not \"abc\"".into(),
            ),
            (
                json!({"userName": "b", ENT: "x"}),
                format!("{ENT} must be an object, not \"x\""),
            ),
            (
                json!({"userName": "b", "roles": [{"value": "a", "primary": true}, {"value": "b", "primary": true}]}),
                "roles may have at most one primary value".into(),
            ),
        ];
        for (body, detail) in cases {
            let err = from_json(&body, &base, Profile::Rfc).unwrap_err();
            assert_eq!(
                (err.status, err.detail.as_str()),
                (400, detail.as_str()),
                "{body}"
            );
        }
        // Emails are checked once read; and all details together are limited.
        let mut u = from_json(&json!({"userName": "b", "emails": [{"value": "a@b.org"}, {"value": "nope", "type": "home"}]}), &base, Profile::Rfc).unwrap();
        assert_eq!(
            validate(&u, Profile::Rfc).unwrap_err().detail,
            "emails[1].value: Enter a valid email address."
        );
        u.details.lists.clear();
        for i in 0..17 {
            u.details.set_text(&format!("k{i}"), Some("v".repeat(1000)));
        }
        assert!(validate(&u, Profile::Rfc)
            .unwrap_err()
            .detail
            .starts_with("The user's attributes take 170"));
    }

    #[test]
    fn the_claimed_email_is_the_primary_else_work_else_first() {
        let emails = |body: Value| {
            from_json(
                &json!({"userName": "b", "emails": body}),
                &User::new(""),
                Profile::Rfc,
            )
            .unwrap()
            .email
        };
        assert_eq!(
            emails(
                json!([{"value": "h@x.org", "type": "home"}, {"value": "w@x.org", "type": "work"}])
            ),
            "w@x.org"
        );
        assert_eq!(
            emails(
                json!([{"value": "h@x.org", "type": "home"}, {"value": "w@x.org", "type": "work"}, {"value": "p@x.org", "primary": true}])
            ),
            "p@x.org"
        );
        assert_eq!(
            emails(
                json!([{"value": "h@x.org", "type": "home"}, {"value": "o@x.org", "type": "other"}])
            ),
            "h@x.org"
        );
        // The admin API may change the record's email: the claimed one shows it.
        let mut u = from_json(&json!({"userName": "b", "emails": [{"value": "h@x.org", "type": "home"}, {"value": "w@x.org", "type": "work"}]}), &User::new(""), Profile::Rfc).unwrap();
        u.email = "new@x.org".into();
        assert_eq!(
            to_json(&u, "h", Profile::Rfc)["emails"],
            json!([{"value": "h@x.org", "type": "home"}, {"value": "new@x.org", "type": "work"}])
        );
        u.email.clear();
        assert_eq!(
            to_json(&u, "h", Profile::Rfc)["emails"],
            json!([{"value": "h@x.org", "type": "home"}])
        );
    }

    #[test]
    fn projections_take_extension_names() {
        let user = from_json(&okta_profile(), &User::new(""), Profile::Rfc).unwrap();
        let r = to_json(&user, "h", Profile::Rfc);
        let project =
            |a: Option<&str>, e: Option<&str>| Projection::from_lists(a, e).apply(r.clone());
        let only = project(
            Some(&format!(
                "{ENT}:department,title,{ENT}:manager.value,phoneNumbers.type"
            )),
            None,
        );
        assert_eq!(
            only,
            json!({"schemas": [USER_SCHEMA, ENT], "id": "0", "title": "Singer",
                   "phoneNumbers": [{"type": "work"}, {"type": "mobile"}],
                   ENT: {"department": "Tour Operations", "manager": {"value": "26"}}})
        );
        let whole = project(Some(&ENT.to_uppercase()), None);
        assert_eq!(whole[ENT], r[ENT]);
        let without = project(
            None,
            Some(&format!(
                "{ENT},urn:ietf:params:scim:schemas:core:2.0:User:title"
            )),
        );
        assert!(without.get(ENT).is_none() && without.get("title").is_none());
        assert_eq!(
            without["schemas"],
            json!([USER_SCHEMA]),
            "schemas names what is shown"
        );
        let part = project(None, Some(&format!("{ENT}:manager,addresses.postalCode")));
        assert!(part[ENT].get("manager").is_none());
        assert_eq!(part[ENT]["department"], "Tour Operations");
        assert!(part["addresses"][0].get("postalCode").is_none());
        assert_eq!(part["addresses"][0]["locality"], "Portland");
    }
}
