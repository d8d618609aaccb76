//! The whole SCIM User and the enterprise extension (`rfc` profile),
//! in-process against DynamoDB Local: what Microsoft Entra ID's default
//! attribute mapping and Okta's full profile send is kept and shown back,
//! each PATCH form they send works, and the `odm` profile still ignores it.
use directory::admin_api;
use directory::http::Profile;
use directory::scim::{self, ENTERPRISE_USER_SCHEMA as ENT, USER_SCHEMA};
use directory::store::table::DETAILS;
use directory::store::UniqueField;
use directory_tests::{get, Provisioner, Reply};
use lambda_http::http::Method;
use serde_json::{json, Value};

const USERS: &str = "/api/v1/scim/Users";
const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

struct Scim(Provisioner);

impl std::ops::Deref for Scim {
    type Target = Provisioner;
    fn deref(&self) -> &Provisioner {
        &self.0
    }
}

impl Scim {
    async fn new(profile: Profile) -> Scim {
        Scim(Provisioner::new(profile).await)
    }

    async fn post(&self, body: &Value) -> Reply {
        let req = self.req(Method::POST, USERS, Some(body)).build();
        self.t.call(scim::create, req).await
    }

    async fn create(&self, body: Value) -> Value {
        self.post(&body).await.expect(201).clone()
    }

    async fn get(&self, path: &str) -> Reply {
        let req = self
            .req(Method::GET, &format!("{USERS}/{path}"), None)
            .build();
        self.t.call(scim::get, req).await
    }

    async fn patch(&self, id: &str, ops: Value) -> Reply {
        let body = json!({"schemas": [PATCH_OP], "Operations": ops});
        let req = self
            .req(Method::PATCH, &format!("{USERS}/{id}"), Some(&body))
            .build();
        self.t.call(scim::patch, req).await
    }

    async fn put(&self, id: &str, body: &Value) -> Reply {
        let req = self
            .req(Method::PUT, &format!("{USERS}/{id}"), Some(body))
            .build();
        self.t.call(scim::replace, req).await
    }

    async fn delete(&self, id: &str) -> Reply {
        let req = self
            .req(Method::DELETE, &format!("{USERS}/{id}"), None)
            .build();
        self.t.call(scim::delete, req).await
    }

    async fn list(&self, query: &str) -> Reply {
        let req = self
            .req(Method::GET, &format!("{USERS}?{query}"), None)
            .build();
        self.t.call(scim::list, req).await
    }

    /// The user as stored, read behind the API.
    async fn stored(&self, id: &str) -> directory::domain::user::User {
        self.t.fresh(id.parse().unwrap()).await
    }
}

fn id(user: &Value) -> String {
    user["id"].as_str().unwrap().to_string()
}

fn assert_invalid_value(r: &Reply) {
    let body = r.expect(400);
    assert_eq!(body["scimType"], "invalidValue", "{body}");
    assert_eq!(body["status"], "400", "{body}");
}

/// What Entra ID's default attribute mapping POSTs for a new user (its
/// "Develop a SCIM endpoint" tutorial lists the mapping), with the
/// enterprise extension's other attributes too. The manager comes later,
/// by PATCH, once Entra has provisioned it.
fn entra_user(tag: &str) -> Value {
    json!({
        "schemas": [USER_SCHEMA, ENT],
        "externalId": format!("{tag}-mailnickname"),
        "userName": format!("{tag}@contoso.example"),
        "active": true,
        "displayName": "Adele Vance",
        "title": "Retail Manager",
        "preferredLanguage": "en-US",
        "emails": [{"primary": true, "type": "work", "value": format!("{tag}@contoso.example")}],
        "name": {"formatted": "Adele Vance", "familyName": "Vance", "givenName": "Adele"},
        "addresses": [{"type": "work", "formatted": "18/2111", "streetAddress": "205 108th Ave NE",
                       "locality": "Bellevue", "region": "WA", "postalCode": "98004",
                       "country": "United States"}],
        "phoneNumbers": [{"type": "work", "value": "+1 425 555 0109"},
                         {"type": "mobile", "value": "+1 425 555 0110"},
                         {"type": "fax", "value": "+1 425 555 0111"}],
        ENT: {"employeeNumber": "1001", "department": "Retail", "costCenter": "CC-7",
              "organization": "Contoso", "division": "West"},
        "meta": {"resourceType": "User"},
        "roles": []
    })
}

/// The body without what a response never shows back: `meta` as sent,
/// empty lists.
fn as_shown(mut body: Value) -> Value {
    let map = body.as_object_mut().unwrap();
    map.remove("meta");
    map.remove("roles");
    body
}

/// Every attribute of `want` is in `have` with the same value.
fn assert_shows(have: &Value, want: &Value) {
    for (k, v) in want.as_object().unwrap() {
        assert_eq!(&have[k], v, "{k} in {have}");
    }
}

#[tokio::test]
async fn an_entra_default_mapping_create_is_kept_and_read_back_in_one_call() {
    let s = Scim::new(Profile::Rfc).await;
    let sent = entra_user("adelev");
    let created = s.create(sent.clone()).await;
    assert_shows(&created, &as_shown(sent));
    assert_eq!(created["schemas"], json!([USER_SCHEMA, ENT]));
    let uid = id(&created);

    let r = s.get(&uid).await;
    assert_eq!(r.expect(200), &created);
    assert_eq!(r.dynamodb_calls, 1, "a fully populated user is one read");

    // The list index shows it too (a page is read from the index).
    let page = s.list("startIndex=1&count=10").await;
    let listed = page.expect(200)["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["id"] == uid.as_str())
        .cloned()
        .unwrap();
    assert_eq!(listed, created);

    // Stored as one map on the user item; the claimed email is the work one.
    let items = s.t.items_with_prefix(&format!("USER#{uid}")).await;
    let details = items[0][DETAILS].as_m().unwrap();
    assert_eq!(details["title"].as_s().unwrap(), "Retail Manager");
    assert_eq!(details["department"].as_s().unwrap(), "Retail");
    assert_eq!(details["phoneNumbers"].as_l().unwrap().len(), 3);
    assert_eq!(
        s.t.store
            .claims()
            .owner(UniqueField::Email, "adelev@contoso.example")
            .await
            .unwrap(),
        Some(uid.parse().unwrap())
    );
}

/// A PatchOp's operations and what the user it answers must show.
type Step = (Value, fn(&Value));

#[tokio::test]
async fn each_patch_form_entra_sends_lands_within_three_calls() {
    let s = Scim::new(Profile::Rfc).await;
    let manager = s.create(entra_user("manager")).await;
    let mut sent = entra_user("report");
    sent["phoneNumbers"] = json!([{"type": "work", "value": "+1 425 555 0109"},
                                  {"type": "mobile", "value": "+1 425 555 0110"}]);
    let uid = id(&s.create(sent).await);
    let ent = |attr: &str| format!("{ENT}:{attr}");

    // The manager as Entra sends it: the bare id. Checking that it names a
    // user is one read more, only because the manager changes.
    let r = s
        .patch(
            &uid,
            json!([{"op": "Add", "path": ent("manager"), "value": id(&manager)}]),
        )
        .await;
    assert_eq!(
        r.expect(200)[ENT]["manager"],
        json!({"value": id(&manager), "$ref": format!("http://testserver{USERS}/{}", id(&manager))})
    );
    assert_eq!(r.dynamodb_calls, 3);

    let steps: Vec<Step> = vec![
        (
            json!([
                {"op": "Replace", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "+1 425 555 0199"},
                {"op": "Replace", "path": "addresses[type eq \"work\"].streetAddress", "value": "1 Microsoft Way"},
                {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "moved@contoso.example"},
                {"op": "Replace", "path": "title", "value": "Store Manager"},
            ]),
            |u| {
                assert_eq!(
                    u["phoneNumbers"][1],
                    json!({"value": "+1 425 555 0199", "type": "mobile"})
                );
                assert_eq!(u["addresses"][0]["streetAddress"], "1 Microsoft Way");
                assert_eq!(u["addresses"][0]["locality"], "Bellevue");
                assert_eq!(u["emails"][0]["value"], "moved@contoso.example");
                assert_eq!(u["title"], "Store Manager");
            },
        ),
        (
            // Add to a value path that matches nothing makes the value.
            json!([{"op": "Add", "path": "phoneNumbers[type eq \"fax\"].value", "value": "+1 425 555 0111"}]),
            |u| {
                assert_eq!(
                    u["phoneNumbers"][2],
                    json!({"value": "+1 425 555 0111", "type": "fax"})
                )
            },
        ),
        (
            json!([{"op": "Remove", "path": "phoneNumbers[type eq \"mobile\"].value"}]),
            |u| {
                let types: Vec<&str> = u["phoneNumbers"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| p["type"].as_str().unwrap())
                    .collect();
                assert_eq!(types, ["work", "fax"]);
            },
        ),
        (
            json!([{"op": "Remove", "path": "phoneNumbers[type eq \"pager\"]"}]),
            |u| assert_eq!(u["phoneNumbers"].as_array().unwrap().len(), 2),
        ),
        (
            json!([
                {"op": "Replace", "path": format!("{ENT}:department"), "value": "Operations"},
                {"op": "Add", "path": format!("{ENT}:employeeNumber"), "value": "2002"},
                {"op": "Remove", "path": format!("{ENT}:costCenter")},
            ]),
            |u| {
                assert_eq!(u[ENT]["department"], "Operations");
                assert_eq!(u[ENT]["employeeNumber"], "2002");
                assert!(u[ENT].get("costCenter").is_none());
            },
        ),
        (
            // The extension as a path-less object.
            json!([{"op": "Replace", "value": {ENT: {"division": "East", "organization": "Fabrikam"},
                                              "preferredLanguage": "nb-NO"}}]),
            |u| {
                assert_eq!(
                    (u[ENT]["division"].as_str(), u[ENT]["organization"].as_str()),
                    (Some("East"), Some("Fabrikam"))
                );
                assert_eq!(u[ENT]["department"], "Operations", "kept");
                assert_eq!(u["preferredLanguage"], "nb-NO");
            },
        ),
        (
            json!([{"op": "Remove", "path": format!("{ENT}:manager")}]),
            |u| assert!(u[ENT].get("manager").is_none()),
        ),
    ];
    for (ops, check) in steps {
        let r = s.patch(&uid, ops.clone()).await;
        let body = r.expect(200).clone();
        check(&body);
        assert!(r.dynamodb_calls <= 2, "{ops}: {} calls", r.dynamodb_calls);
        assert_eq!(s.get(&uid).await.expect(200), &body, "{ops}");
    }
    // The email moved: its uniqueness claim with it.
    assert_eq!(
        s.t.store
            .claims()
            .owner(UniqueField::Email, "moved@contoso.example")
            .await
            .unwrap(),
        Some(uid.parse().unwrap())
    );

    // Atomic: one bad operation and nothing of the PatchOp lands.
    let before = s.stored(&uid).await;
    let r = s
        .patch(&uid, json!([
            {"op": "Replace", "path": "title", "value": "half"},
            {"op": "Add", "path": "phoneNumbers", "value": [{"value": "1", "primary": true}, {"value": "2", "primary": true}]},
        ]))
        .await;
    assert_invalid_value(&r);
    assert_eq!(s.stored(&uid).await, before);
}

#[tokio::test]
async fn an_okta_full_profile_put_replaces_everything() {
    let s = Scim::new(Profile::Rfc).await;
    let manager = s
        .create(json!({"schemas": [USER_SCHEMA], "userName": "boss"}))
        .await;
    let uid = id(&s.create(entra_user("isaac")).await);
    let put = json!({
        "schemas": [USER_SCHEMA, ENT],
        "id": uid,
        "userName": "isaac.brock@example.com",
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
        "emails": [{"value": "isaac.brock@example.com", "type": "work", "primary": true},
                   {"value": "ike@home.example", "type": "home"}],
        "phoneNumbers": [{"value": "555-555-8377", "type": "work", "primary": true}],
        "addresses": [{"streetAddress": "1 Main St", "locality": "Portland", "region": "OR",
                       "postalCode": "97201", "country": "US", "type": "home"}],
        "ims": [{"value": "isaac", "type": "xmpp"}],
        "photos": [{"value": "https://photos.example.com/isaac.jpg", "type": "photo"}],
        "entitlements": [{"value": "vpn"}],
        "roles": [{"value": "performer", "display": "Performer", "primary": true}],
        "x509Certificates": [{"value": "MIIDQzCCAqygAwIBAgICEAAwDQYJKoZIhvcNAQEFBQAwTjELMAkGA1UEBhMCVVMx"}],
        ENT: {"employeeNumber": "701984", "costCenter": "4130", "organization": "Universal Studios",
              "division": "Theme Park", "department": "Tour Operations",
              "manager": {"value": id(&manager), "displayName": "Okta sends it; it is read-only"}},
        "password": "t1meMa$heen",
        "groups": []
    });
    let r = s.put(&uid, &put).await;
    let body = r.expect(200).clone();
    assert!(r.dynamodb_calls <= 3, "{} calls", r.dynamodb_calls);
    let mut want = put.clone();
    want[ENT]["manager"] = json!({"value": id(&manager), "$ref": format!("http://testserver{USERS}/{}", id(&manager))});
    for k in ["password", "groups"] {
        want.as_object_mut().unwrap().remove(k);
    }
    assert_shows(&body, &want);
    assert!(body.get("password").is_none());
    assert_eq!(s.get(&uid).await.expect(200), &body);

    // PUT replaces all of it: what the next body leaves out is gone.
    let r = s
        .put(
            &uid,
            &json!({"schemas": [USER_SCHEMA], "userName": "isaac.brock@example.com"}),
        )
        .await;
    let bare = r.expect(200);
    for k in [
        "title",
        "phoneNumbers",
        "addresses",
        "x509Certificates",
        "nickName",
        ENT,
    ] {
        assert!(bare.get(k).is_none(), "{k}: {bare}");
    }
    assert_eq!(bare["schemas"], json!([USER_SCHEMA]));
    assert!(s.stored(&uid).await.details.is_empty());
}

#[tokio::test]
async fn projections_take_urn_qualified_names() {
    let s = Scim::new(Profile::Rfc).await;
    let uid = id(&s.create(entra_user("proj")).await);
    let r = s
        .get(&format!(
            "{uid}?attributes={ENT}:department,urn:ietf:params:scim:schemas:core:2.0:User:title,phoneNumbers.value"
        ))
        .await;
    assert_eq!(
        r.expect(200),
        &json!({
            "schemas": [USER_SCHEMA, ENT],
            "id": uid,
            "title": "Retail Manager",
            "phoneNumbers": [{"value": "+1 425 555 0109"}, {"value": "+1 425 555 0110"}, {"value": "+1 425 555 0111"}],
            ENT: {"department": "Retail"}
        })
    );
    let r = s
        .get(&format!(
            "{uid}?excludedAttributes={ENT},addresses,phoneNumbers.type"
        ))
        .await;
    let body = r.expect(200);
    assert!(body.get(ENT).is_none() && body.get("addresses").is_none());
    assert_eq!(body["schemas"], json!([USER_SCHEMA]));
    assert_eq!(body["phoneNumbers"][0], json!({"value": "+1 425 555 0109"}));
    assert_eq!(body["title"], "Retail Manager");
    // The same in a list.
    let r = s
        .list(&format!(
            "filter=userName%20eq%20%22proj@contoso.example%22&attributes={ENT}:employeeNumber"
        ))
        .await;
    assert_eq!(
        r.expect(200)["Resources"][0],
        json!({"schemas": [USER_SCHEMA, ENT], "id": uid, ENT: {"employeeNumber": "1001"}})
    );
}

#[tokio::test]
async fn at_most_one_value_is_primary() {
    let s = Scim::new(Profile::Rfc).await;
    let two = json!([{"value": "1", "primary": true}, {"value": "2", "primary": "True"}]);
    let r = s
        .post(&json!({"schemas": [USER_SCHEMA], "userName": "prim", "phoneNumbers": two}))
        .await;
    assert_invalid_value(&r);
    assert!(r.body["detail"]
        .as_str()
        .unwrap()
        .contains("at most one primary"));
    let uid = id(&s
        .create(json!({"schemas": [USER_SCHEMA], "userName": "prim",
                       "phoneNumbers": [{"value": "1", "type": "work", "primary": true}, {"value": "2", "type": "mobile"}]}))
        .await);
    // A value PATCHed primary makes the one before not primary (RFC 7644 §3.5.2).
    let r = s
        .patch(&uid, json!([{"op": "replace", "path": "phoneNumbers[type eq \"mobile\"].primary", "value": true}]))
        .await;
    assert_eq!(
        r.expect(200)["phoneNumbers"],
        json!([{"value": "1", "type": "work", "primary": false}, {"value": "2", "type": "mobile", "primary": true}])
    );
    // Several emails: the primary one is the record's email, which the
    // admin API shows and which is unique.
    let r = s
        .patch(
            &uid,
            json!([{"op": "add", "path": "emails", "value": [
            {"value": "home@prim.example", "type": "home"},
            {"value": "work@prim.example", "type": "work", "primary": true}]}]),
        )
        .await;
    r.expect(200);
    let admin =
        s.t.call(
            admin_api::retrieve,
            get(&format!("/api/users/{uid}")).token(&s.token).build(),
        )
        .await;
    assert_eq!(admin.expect(200)["email"], "work@prim.example");
    let r = s
        .patch(&uid, json!([{"op": "add", "path": "emails", "value": [{"value": "other@prim.example", "primary": true}]}]))
        .await;
    assert_eq!(
        r.expect(200)["emails"],
        json!([{"value": "home@prim.example", "type": "home"},
               {"value": "work@prim.example", "type": "work", "primary": false},
               {"value": "other@prim.example", "primary": true}])
    );
    assert_eq!(s.stored(&uid).await.email, "other@prim.example");
    assert_eq!(
        s.t.store
            .claims()
            .owner(UniqueField::Email, "work@prim.example")
            .await
            .unwrap(),
        None,
        "the claim moved with the primary email"
    );
}

#[tokio::test]
async fn values_past_the_limits_are_refused_and_nothing_is_written() {
    let s = Scim::new(Profile::Rfc).await;
    let long = "x".repeat(1025);
    let many: Vec<Value> = (0..21).map(|i| json!({"value": i.to_string()})).collect();
    let huge: Vec<Value> = (0..17)
        .map(|i| json!({"value": format!("{i}{}", "r".repeat(1000))}))
        .collect();
    for body in [
        json!({"userName": "big", "title": long}),
        json!({"userName": "big", "addresses": [{"streetAddress": long}]}),
        json!({"userName": "big", ENT: {"department": long}}),
        json!({"userName": "big", "phoneNumbers": many}),
        json!({"userName": "big", "roles": huge}),
    ] {
        let r = s.post(&body).await;
        assert_invalid_value(&r);
    }
    assert_eq!(
        s.t.store.users().all().await.unwrap().len(),
        1,
        "only the provisioner"
    );
    // 1,024 characters are fine, and so is a user near the limit.
    let uid = id(&s
        .create(json!({"userName": "big", "title": "x".repeat(1024),
                       "roles": (0..15).map(|i| json!({"value": format!("{i}{}", "r".repeat(1000))})).collect::<Vec<_>>()}))
        .await);
    let before = s.stored(&uid).await;
    assert!(before.details.size() > 16_000, "{}", before.details.size());
    // Reading a user that full is still one call: 5 units for its item, 1 for the caller.
    let r = s.get(&uid).await;
    r.expect(200);
    assert_eq!((r.dynamodb_calls, r.capacity_units), (1, 6.0));
    let r = s
        .patch(&uid, json!([{"op": "add", "path": "entitlements", "value": [{"value": "e".repeat(1000)}, {"value": "f".repeat(1000)}]}]))
        .await;
    assert_invalid_value(&r);
    assert!(
        r.body["detail"].as_str().unwrap().contains("at most 16384"),
        "{}",
        r.body
    );
    assert_eq!(s.stored(&uid).await, before);
}

#[tokio::test]
async fn a_manager_must_be_a_user_and_stays_named_after_it_is_deleted() {
    let s = Scim::new(Profile::Rfc).await;
    let mut body = entra_user("orphan");
    body[ENT]["manager"] = json!({"value": "4242"});
    let r = s.post(&body).await;
    assert_invalid_value(&r);
    assert_eq!(r.body["detail"], "manager: no user has the id \"4242\"");
    assert_eq!(
        s.t.store.users().all().await.unwrap().len(),
        1,
        "nothing created"
    );

    let boss = id(&s.create(entra_user("boss")).await);
    let uid = id(&s.create(entra_user("worker")).await);
    let before = s.stored(&uid).await;
    for value in [json!("4242"), json!({"value": "4242"}), json!("not-an-id")] {
        let r = s
            .patch(
                &uid,
                json!([{"op": "Add", "path": format!("{ENT}:manager"), "value": value}]),
            )
            .await;
        assert_invalid_value(&r);
        assert_eq!(s.stored(&uid).await, before, "{value}");
    }
    s.patch(
        &uid,
        json!([{"op": "Add", "path": format!("{ENT}:manager"), "value": boss}]),
    )
    .await
    .expect(200);
    // Changing something else does not read the manager again.
    let r = s
        .patch(
            &uid,
            json!([{"op": "Replace", "path": "title", "value": "Clerk"}]),
        )
        .await;
    r.expect(200);
    assert_eq!(r.dynamodb_calls, 2);

    // The manager leaves: the report still names them (ids are never given
    // out again, so it names nobody else) until the identity provider sends
    // a new manager; reading the report reads nothing more.
    s.delete(&boss).await.expect(204);
    let r = s.get(&uid).await;
    assert_eq!(r.expect(200)[ENT]["manager"]["value"], boss.as_str());
    assert_eq!(r.dynamodb_calls, 1);
    s.get(&boss).await.expect(404);
    // A PATCH of something else keeps it; naming the deleted user again is refused.
    s.patch(
        &uid,
        json!([{"op": "Replace", "path": "title", "value": "Lead"}]),
    )
    .await
    .expect(200);
    assert_eq!(
        s.stored(&uid).await.details.manager,
        Some(boss.parse().unwrap())
    );
    let r = s
        .put(
            &uid,
            &json!({"userName": "worker@contoso.example", ENT: {"manager": "4243"}}),
        )
        .await;
    assert_invalid_value(&r);
}

#[tokio::test]
async fn odm_ignores_all_of_it() {
    let s = Scim::new(Profile::Odm).await;
    let created = s.create(entra_user("odm")).await;
    let uid = id(&created);
    assert_eq!(created["schemas"], json!([USER_SCHEMA]));
    for k in [
        "title",
        "phoneNumbers",
        "addresses",
        "preferredLanguage",
        ENT,
    ] {
        assert!(created.get(k).is_none(), "{k}");
    }
    assert_eq!(
        created["name"],
        json!({"givenName": "Adele", "familyName": "Vance"})
    );
    assert!(s.stored(&uid).await.details.is_empty());
    let items = s.t.items_with_prefix(&format!("USER#{uid}")).await;
    assert!(!items[0].contains_key(DETAILS));

    // A PATCH of nothing but those: 200, unchanged.
    let version = created["meta"]["version"].clone();
    let r = s
        .patch(
            &uid,
            json!([
                {"op": "Add", "path": "phoneNumbers[type eq \"fax\"].value", "value": "1"},
                {"op": "Replace", "path": format!("{ENT}:department"), "value": "D"},
                {"op": "Add", "path": format!("{ENT}:manager"), "value": "4242"},
                {"op": "Replace", "value": {"title": "T", ENT: {"employeeNumber": "9"}}},
            ]),
        )
        .await;
    assert_eq!(r.expect(200)["meta"]["version"], version);
    // Only work emails, one of them, as always.
    let r = s
        .patch(&uid, json!([{"op": "add", "path": "emails[type eq \"home\"]", "value": {"value": "h@x.org"}}]))
        .await;
    assert_invalid_value(&r);
}

#[tokio::test]
async fn the_admin_api_shows_a_fully_populated_user_as_before() {
    let s = Scim::new(Profile::Rfc).await;
    let uid = id(&s
        .create(json!({"schemas": [USER_SCHEMA], "userName": "adelev@contoso.example",
                       "name": {"givenName": "Adele", "familyName": "Vance"},
                       "emails": [{"value": "adelev@contoso.example", "type": "work", "primary": true}]}))
        .await);
    let admin_view = || async {
        s.t.call(
            admin_api::retrieve,
            get(&format!("/api/users/{uid}")).token(&s.token).build(),
        )
        .await
        .expect(200)
        .clone()
    };
    let before = admin_view().await;
    let mut full = entra_user("adelev");
    full["displayName"] = json!("Adele Vance");
    s.put(&uid, &full).await.expect(200);
    assert!(!s.stored(&uid).await.details.is_empty());
    assert_eq!(admin_view().await, before);
}

#[tokio::test]
async fn a_fully_populated_admin_still_authenticates_with_one_capacity_unit() {
    let s = Scim::new(Profile::Rfc).await;
    let me = s.t.store.users().all().await.unwrap()[0].id.to_string();
    let mut full = entra_user("provisioner");
    full["userName"] = json!("provisioner");
    s.put(&me, &full).await.expect(200);
    assert!(!s.stored(&me).await.details.is_empty());
    // Discovery reads nothing but the caller.
    let r =
        s.t.call(
            scim::discover,
            s.req(Method::GET, "/api/v1/scim/ServiceProviderConfig", None)
                .build(),
        )
        .await;
    r.expect(200);
    assert_eq!((r.dynamodb_calls, r.capacity_units), (1, 1.0));
    // GET of a fully populated user: the caller and the user, in one call.
    let r = s.get(&me).await;
    r.expect(200);
    assert_eq!(r.dynamodb_calls, 1);
    assert!(r.capacity_units <= 2.0, "{}", r.capacity_units);
}
