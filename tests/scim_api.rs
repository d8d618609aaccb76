//! `/api/v1/scim` in-process against DynamoDB Local, in both profiles.
use directory::admin_api;
use directory::domain::query::ReadPlan;
use directory::http::Profile;
use directory::scim::{self, USER_SCHEMA};
use directory::store::{TokenSpec, UniqueField};
use directory_tests::{get, scim as body_req, Provisioner, Req, TestTable};
use lambda_http::http::Method;
use serde_json::{json, Value};

const USERS: &str = "/api/v1/scim/Users";
const ERROR: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

/// The provisioner's session, with this file's shorthands.
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

    async fn create(&self, body: Value) -> Value {
        let r = self
            .t
            .call(
                scim::create,
                self.req(Method::POST, USERS, Some(&body)).build(),
            )
            .await;
        r.expect(201).clone()
    }

    async fn list(&self, query: &str) -> directory_tests::Reply {
        let path = format!("{USERS}?{query}");
        self.t
            .call(scim::list, self.req(Method::GET, &path, None).build())
            .await
    }

    async fn patch(&self, id: &str, ops: Value) -> directory_tests::Reply {
        let body = json!({"schemas": [PATCH_OP], "Operations": ops});
        self.t
            .call(
                scim::patch,
                self.req(Method::PATCH, &format!("{USERS}/{id}"), Some(&body))
                    .build(),
            )
            .await
    }

    async fn get(&self, id: &str) -> directory_tests::Reply {
        self.t
            .call(
                scim::get,
                self.req(Method::GET, &format!("{USERS}/{id}"), None)
                    .build(),
            )
            .await
    }
}

fn bjensen() -> Value {
    json!({
        "schemas": [USER_SCHEMA],
        "userName": "bjensen",
        "externalId": "ext-701984",
        "name": {"givenName": "Barbara", "familyName": "Jensen"},
        "emails": [{"value": "bjensen@example.com", "type": "work", "primary": true}],
        "password": "never stored",
        "groups": []
    })
}

fn assert_scim_error(body: &Value, status: &str, scim_type: Option<&str>) {
    assert_eq!(body["schemas"], json!([ERROR]), "{body}");
    assert_eq!(body["status"], status, "{body}");
    assert_eq!(
        body.get("scimType").and_then(Value::as_str),
        scim_type,
        "{body}"
    );
    assert!(
        body["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "{body}"
    );
}

#[tokio::test]
async fn create_returns_the_resource_with_location_and_etag() {
    let s = Scim::new(Profile::Odm).await;
    let r =
        s.t.call(
            scim::create,
            s.req(Method::POST, USERS, Some(&bjensen())).build(),
        )
        .await;
    let body = r.expect(201);
    let id = body["id"].as_str().unwrap();
    assert_eq!(body["userName"], "bjensen");
    assert_eq!(
        body["name"],
        json!({"givenName": "Barbara", "familyName": "Jensen"})
    );
    assert_eq!(body["displayName"], "Barbara Jensen");
    assert_eq!(body["active"], true);
    assert_eq!(
        body["emails"],
        json!([{"value": "bjensen@example.com", "type": "work", "primary": true}])
    );
    assert!(body.get("password").is_none());
    assert_eq!(
        r.header("location"),
        Some(format!("http://testserver{USERS}/{id}").as_str())
    );
    assert_eq!(r.header("etag"), body["meta"]["version"].as_str());
    assert_eq!(r.header("content-type"), Some("application/scim+json"));
    assert!(
        r.dynamodb_calls <= 3,
        "create made {} calls",
        r.dynamodb_calls
    );
    let stored = s.t.fresh(id.parse().unwrap()).await;
    assert_eq!(stored.password_hash, None);
    assert_eq!(stored.external_id.as_deref(), Some("ext-701984"));
}

#[tokio::test]
async fn bad_create_bodies_get_scim_errors_and_write_nothing() {
    let s = Scim::new(Profile::Rfc).await;
    let cases: Vec<(Value, &str, Option<&str>)> = vec![
        (
            json!({"schemas": [USER_SCHEMA]}),
            "400",
            Some("invalidValue"),
        ),
        (
            json!({"userName": "has space"}),
            "400",
            Some("invalidValue"),
        ),
        (
            json!({"userName": "x", "emails": [{"value": "nope"}]}),
            "400",
            Some("invalidValue"),
        ),
        (
            json!({"userName": "x", "emails": [
                {"value": "a@b.org", "type": "home", "primary": true},
                {"value": "c@d.org", "type": "work", "primary": true}
            ]}),
            "400",
            Some("invalidValue"),
        ),
        (
            json!({"userName": "x", "active": "maybe"}),
            "400",
            Some("invalidValue"),
        ),
    ];
    for (body, status, scim_type) in cases {
        let r =
            s.t.call(
                scim::create,
                s.req(Method::POST, USERS, Some(&body)).build(),
            )
            .await;
        assert_scim_error(r.expect(status.parse().unwrap()), status, scim_type);
    }
    let r =
        s.t.call(
            scim::create,
            s.req(Method::POST, USERS, None)
                .header("content-type", "application/json")
                .raw_body("{nope")
                .build(),
        )
        .await;
    assert_scim_error(r.expect(400), "400", Some("invalidSyntax"));
    let r =
        s.t.call(
            scim::create,
            s.req(Method::POST, USERS, None)
                .header("content-type", "text/plain")
                .raw_body("{}")
                .build(),
        )
        .await;
    r.expect(415);
    assert_eq!(
        s.t.store.users().all().await.unwrap().len(),
        1,
        "only the provisioner exists"
    );
}

#[tokio::test]
async fn auth_failures_are_scim_errors() {
    let s = Scim::new(Profile::Odm).await;
    let r =
        s.t.call(scim::list, Req::new(Method::GET, USERS).build())
            .await;
    assert_scim_error(r.expect(401), "401", None);
    assert!(r.header("www-authenticate").is_some());
    let r =
        s.t.call(
            scim::list,
            Req::new(Method::GET, USERS)
                .header("authorization", "non-token")
                .build(),
        )
        .await;
    assert_scim_error(r.expect(401), "401", None);
    let plain = s.t.user("plain").await;
    let token = s.t.token(&plain).await;
    let r =
        s.t.call(
            scim::list,
            Req::new(Method::GET, USERS)
                .header("authorization", &format!("bearer {token}"))
                .build(),
        )
        .await;
    assert_scim_error(r.expect(403), "403", None);
    let admin = s.t.admin("reader").await;
    let ro =
        s.t.token_with(
            &admin,
            TokenSpec {
                read_only: true,
                expires_at: None,
            },
        )
        .await;
    let r =
        s.t.call(
            scim::create,
            body_req(Method::POST, USERS, &bjensen())
                .header("genestack-api-token", &ro)
                .build(),
        )
        .await;
    r.expect(403);
}

#[tokio::test]
async fn odm_create_again_updates_and_rfc_refuses() {
    let odm = Scim::new(Profile::Odm).await;
    let first = odm.create(bjensen()).await;
    let mut again = bjensen();
    again["userName"] = json!("BJensen");
    again["name"]["givenName"] = json!("Babs");
    let second = odm.create(again).await;
    assert_eq!(second["id"], first["id"]);
    assert_eq!(second["name"]["givenName"], "Babs");
    assert_eq!(second["userName"], "BJensen");

    let rfc = Scim::new(Profile::Rfc).await;
    rfc.create(bjensen()).await;
    let r = rfc
        .t
        .call(
            scim::create,
            rfc.req(Method::POST, USERS, Some(&bjensen())).build(),
        )
        .await;
    assert_scim_error(r.expect(409), "409", Some("uniqueness"));
    // An email or externalId owned by another user is a conflict in both profiles.
    for s in [&odm, &rfc] {
        let mut other = bjensen();
        other["userName"] = json!("someone-else");
        let r =
            s.t.call(
                scim::create,
                s.req(Method::POST, USERS, Some(&other)).build(),
            )
            .await;
        assert_scim_error(r.expect(409), "409", Some("uniqueness"));
    }
}

#[tokio::test]
async fn get_is_one_round_trip_and_unknown_ids_are_404() {
    let s = Scim::new(Profile::Odm).await;
    let created = s.create(bjensen()).await;
    let id = created["id"].as_str().unwrap();
    let r = s.get(id).await;
    assert_eq!(r.expect(200), &created);
    assert_eq!(r.dynamodb_calls, 1);
    for bad in [
        "999999",
        "00919288221112222",
        "010101001010101011001010101011",
        "abc",
    ] {
        let r = s.get(bad).await;
        assert_scim_error(r.expect(404), "404", None);
    }
    let r =
        s.t.call(
            scim::get,
            s.req(
                Method::GET,
                &format!("{USERS}/{id}?attributes=userName"),
                None,
            )
            .build(),
        )
        .await;
    assert_eq!(
        r.expect(200),
        &json!({"schemas": [USER_SCHEMA], "id": id, "userName": "bjensen"})
    );
    // No meta in the body, so no ETag either: clients rebuild meta from it (scim2-client).
    assert_eq!(r.header("etag"), None);
    let r =
        s.t.call(
            scim::get,
            s.req(
                Method::GET,
                &format!("{USERS}/{id}?excludedAttributes=name,emails,meta"),
                None,
            )
            .build(),
        )
        .await;
    let body = r.expect(200);
    assert!(
        body.get("name").is_none() && body.get("emails").is_none() && body.get("meta").is_none()
    );
    assert_eq!(body["userName"], "bjensen");
}

#[tokio::test]
async fn filters_find_users_by_key_in_two_round_trips() {
    let s = Scim::new(Profile::Odm).await;
    let created = s.create(bjensen()).await;
    let id = created["id"].as_str().unwrap().to_string();
    s.create(json!({"userName": "other", "emails": [{"value": "other@example.com"}]}))
        .await;
    let enc = |f: &str| {
        f.replace(' ', "%20")
            .replace('"', "%22")
            .replace('[', "%5B")
            .replace(']', "%5D")
    };
    let cases = [
        "userName eq \"bjensen\"".to_string(),
        "USERNAME Eq \"BJENSEN\"".to_string(),
        "urn:ietf:params:scim:schemas:core:2.0:User:userName eq \"bjensen\"".to_string(),
        "emails.value eq \"BJensen@example.com\"".to_string(),
        "emails[type eq \"work\" and value eq \"bjensen@example.com\"]".to_string(),
        "emails[type eq \"work\"].value eq \"bjensen@example.com\"".to_string(),
        "externalId eq \"ext-701984\"".to_string(),
        format!("id eq \"{id}\""),
        "emails[type eq \"work\" and value eq \"bjensen@example.com\"] and userName eq \"bjensen\""
            .to_string(),
        "name.familyName eq \"Jensen\"".to_string(),
    ];
    for filter in &cases {
        let r = s.list(&format!("filter={}", enc(filter))).await;
        let body = r.expect(200);
        assert_eq!(body["totalResults"], 1, "{filter}: {body}");
        assert_eq!(body["Resources"][0]["id"], id.as_str(), "{filter}");
        if !filter.starts_with("name.") {
            assert!(
                r.dynamodb_calls <= 2,
                "{filter} took {} calls",
                r.dynamodb_calls
            );
        }
    }
    for filter in [
        "userName eq \"nobody\"",
        "externalId eq \"EXT-701984\"",
        "userName eq \"bjensen\" and active eq false",
    ] {
        let r = s.list(&format!("filter={}", enc(filter))).await;
        let body = r.expect(200);
        assert_eq!(body["totalResults"], 0, "{filter}");
        assert_eq!(body["Resources"], json!([]));
    }
    for (filter, word) in [
        ("userName co \"b\"", "co"),
        ("userName eq \"a\" or userName eq \"b\"", "or"),
        ("userName pr", "pr"),
        ("nosuch eq \"x\"", "nosuch"),
        ("userName eq", ""),
    ] {
        let r = s.list(&format!("filter={}", enc(filter))).await;
        let body = r.expect(400);
        assert_scim_error(body, "400", Some("invalidFilter"));
        assert!(
            body["detail"].as_str().unwrap().contains(word),
            "{filter}: {body}"
        );
    }
}

#[tokio::test]
async fn paging_follows_start_index_and_count() {
    let s = Scim::new(Profile::Rfc).await;
    for i in 0..5 {
        s.create(json!({"userName": format!("user{i}")})).await;
    }
    let names = |body: &Value| -> Vec<String> {
        body["Resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["userName"].as_str().unwrap().to_string())
            .collect()
    };
    let r = s.list("startIndex=2&count=2").await;
    let body = r.expect(200);
    assert_eq!(
        (
            body["totalResults"].as_u64(),
            body["startIndex"].as_u64(),
            body["itemsPerPage"].as_u64()
        ),
        (Some(6), Some(2), Some(2))
    );
    assert_eq!(names(body), ["user0", "user1"]);
    let body = s.list("startIndex=0&count=1").await.expect(200).clone();
    assert_eq!(
        (body["startIndex"].as_u64(), names(&body)),
        (Some(1), vec!["provisioner".to_string()])
    );
    let body = s.list("count=0").await.expect(200).clone();
    assert_eq!(
        (body["totalResults"].as_u64(), body["itemsPerPage"].as_u64()),
        (Some(6), Some(0))
    );
    let body = s.list("count=-3").await.expect(200).clone();
    assert_eq!(body["itemsPerPage"], 0);
    let body = s.list("startIndex=6&count=10").await.expect(200).clone();
    assert_eq!(names(&body), ["user4"]);
    let body = s.list("startIndex=60").await.expect(200).clone();
    assert_eq!(
        (body["totalResults"].as_u64(), body["itemsPerPage"].as_u64()),
        (Some(6), Some(0))
    );
    let r = s.list("count=lots").await;
    assert_scim_error(r.expect(400), "400", Some("invalidValue"));

    let search = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
        "filter": "userName eq \"user3\"", "attributes": ["userName"], "startIndex": 1, "count": 10
    });
    let r =
        s.t.call(
            scim::search,
            s.req(Method::POST, &format!("{USERS}/.search"), Some(&search))
                .build(),
        )
        .await;
    let body = r.expect(200);
    assert_eq!(body["totalResults"], 1);
    let only = body["Resources"][0].as_object().unwrap();
    assert_eq!(
        only.keys().collect::<Vec<_>>(),
        ["schemas", "id", "userName"]
    );
}

#[tokio::test]
async fn put_replaces_and_if_match_guards_every_write() {
    let s = Scim::new(Profile::Rfc).await;
    let created = s.create(bjensen()).await;
    let id = created["id"].as_str().unwrap();
    let path = format!("{USERS}/{id}");
    let replacement = json!({"schemas": [USER_SCHEMA], "userName": "bjensen", "displayName": "Babs", "active": false});
    let r =
        s.t.call(
            scim::replace,
            s.req(Method::PUT, &path, Some(&replacement)).build(),
        )
        .await;
    let body = r.expect(200);
    assert_eq!(body["displayName"], "Babs");
    assert_eq!(body["active"], false);
    assert!(body.get("name").is_none() && body.get("externalId").is_none());
    assert_eq!(body["emails"], json!([]));
    // The email and externalId claims were released.
    assert_eq!(
        s.t.store
            .claims()
            .owner(UniqueField::Email, "bjensen@example.com")
            .await
            .unwrap(),
        None
    );

    let stale = created["meta"]["version"].as_str().unwrap();
    let current = body["meta"]["version"].as_str().unwrap().to_string();
    let r =
        s.t.call(
            scim::replace,
            s.req(Method::PUT, &path, Some(&replacement))
                .header("if-match", stale)
                .build(),
        )
        .await;
    r.expect(412);
    let ops = json!({"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "displayName", "value": "x"}]});
    let r =
        s.t.call(
            scim::patch,
            s.req(Method::PATCH, &path, Some(&ops))
                .header("if-match", stale)
                .build(),
        )
        .await;
    r.expect(412);
    let r =
        s.t.call(
            scim::delete,
            s.req(Method::DELETE, &path, None)
                .header("if-match", stale)
                .build(),
        )
        .await;
    r.expect(412);
    let r =
        s.t.call(
            scim::patch,
            s.req(Method::PATCH, &path, Some(&ops))
                .header("if-match", &current)
                .build(),
        )
        .await;
    assert_eq!(r.expect(200)["displayName"], "x");
    let r =
        s.t.call(
            scim::replace,
            s.req(Method::PUT, &format!("{USERS}/424242"), Some(&replacement))
                .build(),
        )
        .await;
    r.expect(404);
}

#[tokio::test]
async fn patch_handles_okta_and_entra_shapes_atomically() {
    let s = Scim::new(Profile::Odm).await;
    let created = s.create(bjensen()).await;
    let id = created["id"].as_str().unwrap();

    let r = s
        .patch(id, json!([
            {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "babs@example.com"},
            {"op": "Replace", "value": {"displayName": "Babs", "name.givenName": "Babs"}},
            {"op": "Add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber", "value": "1"},
        ]))
        .await;
    let body = r.expect(200);
    assert_eq!(body["emails"][0]["value"], "babs@example.com");
    assert_eq!(body["displayName"], "Babs");
    assert_eq!(body["name"]["givenName"], "Babs");
    assert!(r.dynamodb_calls <= 3, "{} calls", r.dynamodb_calls);
    assert_eq!(
        s.t.store
            .claims()
            .owner(UniqueField::Email, "babs@example.com")
            .await
            .unwrap(),
        Some(id.parse().unwrap())
    );

    // Entra's disable, with a string value; ODM then hides the user but lets it be patched back.
    s.patch(
        id,
        json!([{"op": "Replace", "path": "active", "value": "False"}]),
    )
    .await
    .expect(200);
    s.get(id).await.expect(404);
    let r = s
        .patch(id, json!([{"op": "replace", "value": {"active": true}}]))
        .await;
    assert_eq!(r.expect(200)["active"], true);

    let before = s.t.fresh(id.parse().unwrap()).await;
    let failing = [
        (
            json!([{"op": "replace", "path": "displayName", "value": "ok"}, {"op": "replace", "path": "id", "value": "1"}]),
            "mutability",
        ),
        (json!([{"op": "remove"}]), "noTarget"),
        (json!([{"op": "remove", "path": "userName"}]), "mutability"),
        (
            json!([{"op": "replace", "path": "userName", "value": "provisioner"}]),
            "uniqueness",
        ),
        (
            json!([{"op": "replace", "path": "emails", "value": [{"value": "bad"}]}]),
            "invalidValue",
        ),
    ];
    for (ops, scim_type) in failing {
        let r = s.patch(id, ops.clone()).await;
        let status = if scim_type == "uniqueness" { 409 } else { 400 };
        assert_scim_error(r.expect(status), &status.to_string(), Some(scim_type));
        assert_eq!(s.t.fresh(before.id).await, before, "{ops} changed the user");
    }
    // Attributes outside the schema alone: 200, unchanged.
    let r = s
        .patch(id, json!([{"op": "add", "path": "title", "value": "Boss"}]))
        .await;
    r.expect(200);
    assert_eq!(s.t.fresh(before.id).await.version, before.version);
}

#[tokio::test]
async fn odm_delete_deactivates_and_rfc_delete_removes() {
    let odm = Scim::new(Profile::Odm).await;
    let id = odm.create(bjensen()).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = odm
        .t
        .call(
            scim::delete,
            odm.req(Method::DELETE, &format!("{USERS}/{id}"), None)
                .build(),
        )
        .await;
    r.expect(204);
    odm.get(&id).await.expect(404);
    let listed = odm.list("").await.expect(200).clone();
    assert_eq!(listed["totalResults"], 1, "only the provisioner is listed");
    let stored = odm.t.fresh(id.parse().unwrap()).await;
    assert!(!stored.is_active);
    let r = odm
        .patch(
            &id,
            json!([{"op": "replace", "path": "active", "value": true}]),
        )
        .await;
    r.expect(200);
    odm.get(&id).await.expect(200);

    let rfc = Scim::new(Profile::Rfc).await;
    let id = rfc.create(bjensen()).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    rfc.patch(
        &id,
        json!([{"op": "replace", "path": "active", "value": false}]),
    )
    .await
    .expect(200);
    assert_eq!(
        rfc.get(&id).await.expect(200)["active"],
        false,
        "rfc shows inactive users"
    );
    let r = rfc
        .t
        .call(
            scim::delete,
            rfc.req(Method::DELETE, &format!("{USERS}/{id}"), None)
                .build(),
        )
        .await;
    r.expect(204);
    rfc.get(&id).await.expect(404);
    assert_eq!(
        rfc.t
            .store
            .claims()
            .owner(UniqueField::Username, "bjensen")
            .await
            .unwrap(),
        None
    );
    let r = rfc
        .t
        .call(
            scim::delete,
            rfc.req(Method::DELETE, &format!("{USERS}/{id}"), None)
                .build(),
        )
        .await;
    r.expect(404);
}

#[tokio::test]
async fn both_apis_see_one_user() {
    let s = Scim::new(Profile::Odm).await;
    let id = s.create(bjensen()).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let admin_path = format!("/api/users/{id}");
    let r =
        s.t.call(
            admin_api::retrieve,
            get(&admin_path).token(&s.token).build(),
        )
        .await;
    let body = r.expect(200);
    assert_eq!(
        (
            body["username"].as_str(),
            body["first_name"].as_str(),
            body["email"].as_str()
        ),
        (
            Some("bjensen"),
            Some("Barbara"),
            Some("bjensen@example.com")
        )
    );

    let r =
        s.t.call(
            admin_api::partial_update,
            directory_tests::patch(
                &admin_path,
                &json!({"last_name": "Smith", "username": "bsmith"}),
            )
            .token(&s.token)
            .build(),
        )
        .await;
    r.expect(200);
    let body = s.get(&id).await.expect(200).clone();
    assert_eq!(body["userName"], "bsmith");
    assert_eq!(body["name"]["familyName"], "Smith");
}

#[tokio::test]
async fn concurrent_creates_of_one_username_leave_one_user() {
    for profile in [Profile::Rfc, Profile::Odm] {
        let s = Scim::new(profile).await;
        let requests: Vec<_> = (0..24)
            .map(|i| {
                let body = json!({"userName": "racer", "displayName": format!("attempt {i}")});
                s.t.call(
                    scim::create,
                    s.req(Method::POST, USERS, Some(&body)).build(),
                )
            })
            .collect();
        let replies = futures::future::join_all(requests).await;
        let created = replies.iter().filter(|r| r.status == 201).count();
        let conflicts = replies.iter().filter(|r| r.status == 409).count();
        let racers: Vec<_> =
            s.t.store
                .users()
                .all()
                .await
                .unwrap()
                .into_iter()
                .filter(|u| u.username == "racer")
                .collect();
        assert_eq!(racers.len(), 1, "{profile:?}");
        assert_eq!(s.t.items_with_prefix("USERNAME#racer").await.len(), 1);
        match profile {
            Profile::Rfc => assert_eq!((created, conflicts), (1, 23), "{profile:?}"),
            Profile::Odm => assert_eq!(
                created + conflicts,
                24,
                "odm: every request is a create or a clean conflict"
            ),
        }
    }
}

#[tokio::test]
async fn discovery_describes_what_is_implemented() {
    let s = Scim::new(Profile::Rfc).await;
    let call = |path: &str| {
        s.t.call(
            scim::discover,
            s.req(Method::GET, &format!("/api/v1/scim{path}"), None)
                .build(),
        )
    };
    let spc = call("/ServiceProviderConfig").await;
    let body = spc.expect(200);
    assert_eq!(body["patch"]["supported"], true);
    assert_eq!(
        body["filter"],
        json!({"supported": true, "maxResults": 1000})
    );
    assert_eq!(body["etag"]["supported"], true);
    assert_eq!(
        body["pagination"],
        json!({
            "cursor": true, "index": true, "defaultPaginationMethod": "index",
            "defaultPageSize": 100, "maxPageSize": 1000,
            "cursorTimeout": directory::scim::cursor::TIMEOUT_SECS
        })
    );
    // rfc sorts (sortBy, sortOrder); odm ignores them, as it always has.
    assert_eq!(body["sort"]["supported"], true);
    assert_eq!(body["changePassword"]["supported"], false);
    // The rfc profile's /Bulk (tests/scim_bulk.rs has its limits).
    assert_eq!(body["bulk"]["supported"], true);
    let odm = Scim::new(Profile::Odm).await;
    let spc = odm
        .t
        .call(
            scim::discover,
            odm.req(Method::GET, "/api/v1/scim/ServiceProviderConfig", None)
                .build(),
        )
        .await;
    let odm_spc = spc.expect(200);
    assert_eq!(odm_spc["sort"]["supported"], false);
    assert_eq!(odm_spc["bulk"]["supported"], false);
    let types: Vec<&str> = body["authenticationSchemes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["oauthbearertoken", "httpbasic"]);

    let rt = call("/ResourceTypes").await;
    let user_type = rt.expect(200)["Resources"][0].clone();
    assert_eq!(user_type["endpoint"], "/Users");
    assert_eq!(
        user_type["schemaExtensions"],
        json!([{"schema": ENTERPRISE, "required": false}])
    );
    call("/ResourceTypes/User").await.expect(200);
    call("/ResourceTypes/Group").await.expect(200);
    call("/ResourceTypes/Bundle").await.expect(404);
    let schemas = call("/Schemas").await;
    let listed = schemas.expect(200)["Resources"].clone();
    let ids: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            USER_SCHEMA,
            ENTERPRISE,
            "urn:ietf:params:scim:schemas:core:2.0:Group"
        ]
    );
    let names = |schema: &Value| -> Vec<String> {
        schema["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        names(&listed[0]),
        [
            "id",
            "userName",
            "externalId",
            "name",
            "displayName",
            "nickName",
            "profileUrl",
            "title",
            "userType",
            "preferredLanguage",
            "locale",
            "timezone",
            "active",
            "emails",
            "phoneNumbers",
            "ims",
            "photos",
            "addresses",
            "groups",
            "entitlements",
            "roles",
            "x509Certificates",
            "meta"
        ]
    );
    assert_eq!(
        names(&listed[1]),
        [
            "employeeNumber",
            "costCenter",
            "organization",
            "division",
            "department",
            "manager"
        ]
    );
    call(&format!("/Schemas/{USER_SCHEMA}")).await.expect(200);
    assert_eq!(
        call(&format!("/Schemas/{ENTERPRISE}")).await.expect(200),
        &listed[1]
    );
    let r = call("/Schemas/urn:nope").await;
    assert_scim_error(r.expect(404), "404", None);

    // odm: ODM's scheme, as it always was; no extension.
    let odm = Scim::new(Profile::Odm).await;
    let call = |path: &str| {
        odm.t.call(
            scim::discover,
            odm.req(Method::GET, &format!("/api/v1/scim{path}"), None)
                .build(),
        )
    };
    let schemas = call("/Schemas").await;
    let listed = schemas.expect(200)["Resources"].clone();
    assert_eq!(listed.as_array().unwrap().len(), 2);
    let schema = &listed[0];
    assert_eq!(
        names(schema),
        [
            "id",
            "userName",
            "externalId",
            "name",
            "displayName",
            "active",
            "emails",
            "groups",
            "meta"
        ]
    );
    assert_eq!(schema["attributes"][7]["mutability"], "readOnly");
    let email_type = &schema["attributes"][6]["subAttributes"][1];
    assert_eq!(email_type["canonicalValues"], json!(["work"]));
    assert!(call("/ResourceTypes/User").await.expect(200)["schemaExtensions"].is_null());
    let r = call(&format!("/Schemas/{ENTERPRISE}")).await;
    assert_scim_error(r.expect(404), "404", None);

    let r =
        s.t.call(
            scim::fallback,
            s.req(
                Method::POST,
                "/api/v1/scim/ServiceProviderConfig",
                Some(&json!({})),
            )
            .build(),
        )
        .await;
    assert_scim_error(r.expect(405), "405", None);
    let r =
        s.t.call(
            scim::fallback,
            s.req(Method::GET, "/api/v1/scim/0d4ab1c2-5e6f", None)
                .build(),
        )
        .await;
    assert_scim_error(r.expect(404), "404", None);
}

// ------------------------------------------------------------ issue 8: attack replays

/// What `/api/users/self` answers a credential: 200 while it works, 401 once revoked.
async fn self_status(t: &TestTable, req: Req) -> u16 {
    t.call(admin_api::retrieve_self, req.build())
        .await
        .status
        .as_u16()
}

/// Percent-encodes a query value, every byte but letters and digits.
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn me() -> Req {
    get("/api/users/self")
}

impl Scim {
    /// A POST /Users as the provisioner, whatever it answers.
    async fn post(&self, body: &Value) -> directory_tests::Reply {
        self.t
            .call(
                scim::create,
                self.req(Method::POST, USERS, Some(body)).build(),
            )
            .await
    }

    async fn put(&self, id: u64, body: &Value) -> directory_tests::Reply {
        self.t
            .call(
                scim::replace,
                self.req(Method::PUT, &format!("{USERS}/{id}"), Some(body))
                    .build(),
            )
            .await
    }

    async fn delete(&self, id: u64) -> directory_tests::Reply {
        self.t
            .call(
                scim::delete,
                self.req(Method::DELETE, &format!("{USERS}/{id}"), None)
                    .build(),
            )
            .await
    }

    async fn user_count(&self) -> usize {
        self.t.store.users().all().await.unwrap().len()
    }
}

/// The body an IdP POSTs for a new hire (email: the userName, if it is an address).
fn new_hire(username: &str, external_id: &str) -> Value {
    let email = if username.contains('@') {
        username.to_string()
    } else {
        format!("{username}@corp.com")
    };
    json!({
        "schemas": [USER_SCHEMA],
        "userName": username,
        "externalId": external_id,
        "name": {"givenName": "New", "familyName": "Hire"},
        "emails": [{"value": email, "type": "work", "primary": true}],
        "active": true
    })
}

fn assert_not_managed(r: &directory_tests::Reply) {
    let body = r.expect(409);
    assert_scim_error(body, "409", Some("uniqueness"));
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail.contains("identity provider does not manage"),
        "{detail}"
    );
}

#[tokio::test]
async fn odm_post_does_not_hand_a_squatted_username_to_the_squatter() {
    let s = Scim::new(Profile::Odm).await;
    let squatter = s.t.user("mallory").await;
    s.t.with_password(&squatter, "mallory's password").await;
    let token = s.t.token(&squatter).await;
    // A plain user renames themselves to the address of a hire the IdP will provision.
    let r =
        s.t.call(
            admin_api::partial_update,
            directory_tests::patch(
                &format!("/api/users/{}", squatter.id),
                &json!({"username": "new.hire@corp.com"}),
            )
            .token(&token)
            .build(),
        )
        .await;
    r.expect(200);
    let before = s.t.fresh(squatter.id).await;
    let users_before = s.user_count().await;

    // The IdP provisions the hire. Before issue 8: 201 with the squatter's id,
    // the hire's email, externalId and active: true written over the squatter,
    // who kept their password, token, groups and memberships.
    let r = s.post(&new_hire("new.hire@corp.com", "okta-00u1new")).await;
    assert_not_managed(&r);

    assert_eq!(s.t.fresh(squatter.id).await, before, "the squatter changed");
    assert_eq!(before.email, "mallory@example.org");
    assert_eq!(before.external_id, None);
    assert_eq!(s.user_count().await, users_before, "no user was created");
    assert_eq!(
        s.t.store
            .claims()
            .owner(UniqueField::ExternalId, "okta-00u1new")
            .await
            .unwrap(),
        None,
        "the hire's externalId belongs to nobody"
    );
    // The squatter's token is still theirs, and opens only their own record.
    let r =
        s.t.call(admin_api::retrieve_self, me().token(&token).build())
            .await;
    let body = r.expect(200);
    assert_eq!(body["id"], squatter.id);
    assert_eq!(body["email"], "mallory@example.org");
}

#[tokio::test]
async fn a_lookalike_username_neither_captures_nor_is_created() {
    let s = Scim::new(Profile::Odm).await;
    // Written straight to the store: validation now refuses the Kelvin sign.
    let mut kelvin = directory::domain::user::User::new("\u{212A}im@corp.com");
    kelvin.email = "kelvin@example.org".into();
    kelvin.groups = vec![directory::domain::user::Group::User];
    let kelvin = s.t.store.users().create(kelvin).await.unwrap();
    let token = s.t.token(&kelvin).await;
    let before = s.t.fresh(kelvin.id).await;

    // Before issue 8 the two names shared a claim key (lower-casing maps the
    // Kelvin sign to k), so the odm POST of kim@corp.com updated the Kelvin
    // record: 201 with its id, its token now opening the IdP user's account.
    let r = s.post(&new_hire("kim@corp.com", "okta-00u1kim")).await;
    assert_not_managed(&r);
    assert_eq!(s.t.fresh(kelvin.id).await, before);
    assert_eq!(self_status(&s.t, me().token(&token)).await, 200);

    // Nor can the IdP (or anyone with its token) create the lookalike itself.
    // Before: 201 (or the upsert above).
    let r = s
        .post(&new_hire("\u{212A}im@corp.com", "okta-00u1kelvin"))
        .await;
    assert_scim_error(r.expect(400), "400", Some("invalidValue"));
    assert_eq!(s.t.fresh(kelvin.id).await, before);
}

#[tokio::test]
async fn an_idp_user_named_admin_is_not_joined_to_the_local_superuser() {
    let s = Scim::new(Profile::Odm).await;
    let admin = s.t.admin("admin").await;
    s.t.with_password(&admin, "root's password").await;
    let token = s.t.token(&admin).await;
    let before = s.t.fresh(admin.id).await;

    // Before issue 8: 201 with the superuser's id, its email and externalId
    // now the IdP user's, who then signs in as a superuser.
    let r = s.post(&new_hire("admin", "entra-5f1e")).await;
    assert_not_managed(&r);
    assert_eq!(s.t.fresh(admin.id).await, before, "the superuser changed");
    assert!(before.is_superuser && before.external_id.is_none());
    assert_eq!(self_status(&s.t, me().token(&token)).await, 200);
    assert_eq!(
        self_status(&s.t, me().basic("admin", "root's password")).await,
        200
    );
}

#[tokio::test]
async fn adoption_by_external_id_revokes_the_records_old_credentials() {
    let s = Scim::new(Profile::Odm).await;
    // A record the IdP did not provision (one made before issue 8, say) that
    // carries the IdP's externalId.
    let mut legacy = directory::domain::user::User::new("legacy@corp.com");
    legacy.email = "legacy@corp.com".into();
    legacy.external_id = Some("okta-00u1legacy".into());
    legacy.groups = vec![directory::domain::user::Group::User];
    let legacy = s.t.store.users().create(legacy).await.unwrap();
    assert!(!legacy.idp_owned);
    s.t.with_password(&legacy, "old password").await;
    let token = s.t.token(&legacy).await;

    // Another externalId proves nothing: 409, untouched.
    let before = s.t.fresh(legacy.id).await;
    let r = s.post(&new_hire("legacy@corp.com", "okta-00u1other")).await;
    assert_not_managed(&r);
    assert_eq!(s.t.fresh(legacy.id).await, before);
    assert_eq!(self_status(&s.t, me().token(&token)).await, 200);

    // Its own externalId adopts it, and what it had stops working. Before
    // issue 8 the token and password went on working after the IdP took over.
    let r = s
        .post(&new_hire("legacy@corp.com", "okta-00u1legacy"))
        .await;
    let body = r.expect(201);
    assert_eq!(body["id"], legacy.id.to_string());
    assert_eq!(body["name"]["familyName"], "Hire");
    let stored = s.t.fresh(legacy.id).await;
    assert!(stored.idp_owned);
    assert_eq!(stored.password_hash, None);
    assert!(stored.token_hashes.is_empty() && stored.token_expiry.is_empty());
    assert_eq!(self_status(&s.t, me().token(&token)).await, 401);
    assert_eq!(
        self_status(&s.t, me().basic("legacy@corp.com", "old password")).await,
        401
    );
    assert_eq!(
        s.t.items_with_prefix("TOKEN#").await.len(),
        1,
        "only the provisioner's token item is left"
    );

    // Now the IdP's: a re-POST updates it as any IdP user.
    let mut again = new_hire("legacy@corp.com", "okta-00u1legacy");
    again["name"]["familyName"] = json!("Again");
    let body = s.post(&again).await.expect(201).clone();
    assert_eq!(body["id"], legacy.id.to_string());
    assert_eq!(body["name"]["familyName"], "Again");
}

#[tokio::test]
async fn a_repost_updates_the_idps_own_user_until_someone_else_renames_it() {
    let s = Scim::new(Profile::Odm).await;
    let created = s.create(new_hire("ada@corp.com", "okta-00u1ada")).await;
    let id: u64 = created["id"].as_str().unwrap().parse().unwrap();
    assert!(s.t.fresh(id).await.idp_owned, "SCIM creates are the IdP's");
    let token = s.t.token(&s.t.fresh(id).await).await;

    // A re-POST without the externalId still updates it, as before issue 8,
    // and takes none of its credentials.
    let mut again = new_hire("ADA@corp.com", "okta-00u1ada");
    again.as_object_mut().unwrap().remove("externalId");
    again["displayName"] = json!("Ada L.");
    let body = s.post(&again).await.expect(201).clone();
    assert_eq!(
        (body["id"].as_str(), body["displayName"].as_str()),
        (Some(created["id"].as_str().unwrap()), Some("Ada L."))
    );
    assert_eq!(self_status(&s.t, me().token(&token)).await, 200);

    // An administrator renames it through the admin API: no longer the IdP's
    // to update by name.
    let r =
        s.t.call(
            admin_api::partial_update,
            directory_tests::patch(
                &format!("/api/users/{id}"),
                &json!({"username": "ada.renamed@corp.com"}),
            )
            .token(&s.token)
            .build(),
        )
        .await;
    r.expect(200);
    let before = s.t.fresh(id).await;
    assert!(!before.idp_owned);
    let r = s
        .post(&new_hire("ada.renamed@corp.com", "okta-00u1eve"))
        .await;
    assert_not_managed(&r);
    assert_eq!(s.t.fresh(id).await, before);
}

/// How a test deactivates or reactivates a user through SCIM.
#[derive(Debug, Clone, Copy)]
enum Switch {
    Delete,
    Patch(bool),
    Put(bool),
    RePost,
}

impl Scim {
    async fn switch(&self, id: u64, name: &str, how: Switch) {
        let r = match how {
            Switch::Delete => self.delete(id).await,
            Switch::Patch(active) => {
                self.patch(
                    &id.to_string(),
                    json!([{"op": "replace", "path": "active", "value": active}]),
                )
                .await
            }
            Switch::Put(active) => {
                self.put(id, &json!({"userName": name, "active": active}))
                    .await
            }
            Switch::RePost => self.post(&json!({"userName": name})).await,
        };
        assert!(r.status.is_success(), "{how:?}: {} {}", r.status, r.raw);
    }
}

#[tokio::test]
async fn deactivation_through_scim_revokes_credentials_in_both_profiles() {
    use Switch::*;
    let plans: [(Profile, &[(Switch, Switch)]); 2] = [
        (
            Profile::Odm,
            &[
                (Delete, Patch(true)),
                (Patch(false), Put(true)),
                (Put(false), RePost),
            ],
        ),
        (
            Profile::Rfc,
            &[(Patch(false), Put(true)), (Put(false), Patch(true))],
        ),
    ];
    for (profile, plan) in plans {
        let s = Scim::new(profile).await;
        for (n, (off, on)) in plan.iter().enumerate() {
            let name = format!("leaver{n}");
            let case = format!("{profile:?} {off:?} then {on:?}");
            let id: u64 = s.create(json!({"userName": name})).await["id"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap();
            let user =
                s.t.with_password(&s.t.fresh(id).await, "leaver's password")
                    .await;
            let token = s.t.token(&user).await;
            let token_works = || self_status(&s.t, me().token(&token));
            let password_works = || self_status(&s.t, me().basic(&name, "leaver's password"));
            assert_eq!((token_works().await, password_works().await), (200, 200));

            s.switch(id, &name, *off).await;
            assert_eq!(
                (token_works().await, password_works().await),
                (401, 401),
                "{case}: deactivated"
            );
            // Before issue 8 both answered 200 again once the user was back.
            s.switch(id, &name, *on).await;
            let stored = s.t.fresh(id).await;
            assert!(stored.is_active, "{case}");
            assert_eq!(
                (token_works().await, password_works().await),
                (401, 401),
                "{case}: reactivated"
            );
            assert_eq!(stored.password_hash, None, "{case}");
            assert!(stored.token_hashes.is_empty(), "{case}");
        }
        assert_eq!(
            s.t.items_with_prefix("TOKEN#").await.len(),
            1,
            "{profile:?}: only the provisioner's token item is left"
        );
    }
}

#[tokio::test]
async fn bodies_not_declared_as_json_are_refused_before_anything_is_written() {
    let s = Scim::new(Profile::Odm).await;
    let operator = s.t.admin("operator").await;
    s.t.with_password(&operator, "operator's password").await;
    let victim = s.create(json!({"userName": "victim"})).await;
    let victim_id: u64 = victim["id"].as_str().unwrap().parse().unwrap();
    let victim_before = s.t.fresh(victim_id).await;
    let users_before = s.user_count().await;

    // What a page on another site can make a browser send with the Basic
    // credentials it remembers, no preflight: a form post (no JSON type), or
    // fetch() with no Content-Type or text/plain. Before issue 8 the request
    // without a Content-Type created the user (201).
    let evil = json!({"userName": "csrf.admin", "groups": [{"value": "admin"}]}).to_string();
    let form_like = [
        None,
        Some("text/plain"),
        Some("text/plain;charset=UTF-8"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
    ];
    let routes: [(Method, String); 5] = [
        (Method::POST, USERS.to_string()),
        (Method::PUT, format!("{USERS}/{victim_id}")),
        (Method::PATCH, format!("{USERS}/{victim_id}")),
        (Method::POST, format!("{USERS}/.search")),
        (Method::POST, "/api/v1/scim/.search".to_string()),
    ];
    for (method, path) in &routes {
        for ct in form_like {
            let mut req = Req::new(method.clone(), path)
                .basic("operator", "operator's password")
                .raw_body(&evil);
            if let Some(ct) = ct {
                req = req.header("content-type", ct);
            }
            let req = req.build();
            let r = match (method.as_str(), path.ends_with(".search")) {
                (_, true) => s.t.call(scim::search, req).await,
                ("POST", _) => s.t.call(scim::create, req).await,
                ("PUT", _) => s.t.call(scim::replace, req).await,
                _ => s.t.call(scim::patch, req).await,
            };
            let case = format!("{method} {path} with {ct:?}");
            assert_eq!(r.status.as_u16(), 415, "{case}: {}", r.raw);
            assert_scim_error(&r.body, "415", None);
        }
    }
    assert_eq!(s.user_count().await, users_before, "nothing was created");
    assert_eq!(s.t.fresh(victim_id).await, victim_before, "nothing changed");

    // JSON types pass, with parameters and in any case.
    for (n, ct) in ["application/scim+json; charset=utf-8", "Application/JSON"]
        .into_iter()
        .enumerate()
    {
        let r =
            s.t.call(
                scim::create,
                Req::new(Method::POST, USERS)
                    .basic("operator", "operator's password")
                    .header("content-type", ct)
                    .raw_body(&json!({"userName": format!("typed{n}")}).to_string())
                    .build(),
            )
            .await;
        r.expect(201);
    }
}

#[tokio::test]
async fn lookups_by_values_too_long_for_a_key_are_refused_before_any_read() {
    let s = Scim::new(Profile::Rfc).await;
    let long = "a".repeat(3000);
    // 600 bytes as sent, 6,600 once folded into a claim key (each U+FDFA
    // expands to 18 characters).
    let expanding = "\u{FDFA}".repeat(200);
    let filters = [
        format!("userName eq \"{long}\""),
        format!("externalId eq \"{long}\""),
        format!("active eq true and userName eq \"{long}\""),
        format!("userName eq \"{expanding}\""),
    ];
    for filter in &filters {
        // Before issue 8: 500 (DynamoDB refused the key).
        let r = s.list(&format!("filter={}", encode(filter))).await;
        let body = r.expect(400);
        assert_scim_error(body, "400", Some("invalidFilter"));
        assert!(
            body["detail"].as_str().unwrap().contains("too long"),
            "{body}"
        );
        assert_eq!(
            r.dynamodb_calls, 1,
            "only the caller was read: {filter:.40}"
        );
        let search = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
                            "filter": filter});
        let r =
            s.t.call(
                scim::search,
                s.req(Method::POST, "/api/v1/scim/.search", Some(&search))
                    .build(),
            )
            .await;
        assert_scim_error(r.expect(400), "400", Some("invalidFilter"));
    }

    // In `rfc` a user may hold several emails and only one is claimed, so
    // an email filter is a pass, not a key read: a long address finds nobody.
    for filter in [
        format!("emails eq \"{long}@example.com\""),
        format!("emails.value eq \"{long}@example.com\""),
        format!("emails[type eq \"work\" and value eq \"{long}@example.com\"]"),
    ] {
        let r = s.list(&format!("filter={}", encode(&filter))).await;
        assert_eq!(r.expect(200)["totalResults"], 0, "{filter:.40}");
    }

    // An externalId longer than a key can hold is refused on every write.
    let created = s.create(json!({"userName": "keyed"})).await;
    let id: u64 = created["id"].as_str().unwrap().parse().unwrap();
    let before = s.t.fresh(id).await;
    let too_long = "\u{10348}".repeat(300); // 1,200 bytes
    let r = s
        .post(&json!({"userName": "other", "externalId": too_long}))
        .await;
    assert_scim_error(r.expect(400), "400", Some("invalidValue"));
    let r = s
        .put(id, &json!({"userName": "keyed", "externalId": too_long}))
        .await;
    assert_scim_error(r.expect(400), "400", Some("invalidValue"));
    let r = s
        .patch(
            &id.to_string(),
            json!([{"op": "add", "path": "externalId", "value": too_long}]),
        )
        .await;
    assert_scim_error(r.expect(400), "400", Some("invalidValue"));
    assert_eq!(s.t.fresh(id).await, before);
}

#[tokio::test]
async fn filters_match_what_the_claims_fold_together() {
    let s = Scim::new(Profile::Odm).await;
    let created = s
        .create(json!({"userName": "straße", "emails": [{"value": "straße@example.com"}]}))
        .await;
    let id = created["id"].as_str().unwrap();
    // Before issue 8: 0 results (the claims were lower-cased, and `STRASSE`
    // lower-cases to `strasse`, not `straße`).
    for filter in [
        "userName eq \"STRASSE\"",
        "userName eq \"Strasse\"",
        "emails.value eq \"STRASSE@example.com\"",
        "emails[type eq \"WORK\" and value eq \"strasse@EXAMPLE.com\"]",
        "emails[type eq \"work\"].value eq \"STRASSE@example.com\"",
        "userName eq \"straße\" and emails eq \"strasse@example.com\"",
    ] {
        let r = s.list(&format!("filter={}", encode(filter))).await;
        let body = r.expect(200);
        assert_eq!(body["totalResults"], 1, "{filter}: {body}");
        assert_eq!(body["Resources"][0]["id"], id, "{filter}");
        assert!(
            r.dynamodb_calls <= 2,
            "{filter}: {} calls",
            r.dynamodb_calls
        );
    }
    // A PATCH value path selects the email the same way.
    let r = s
        .patch(
            id,
            json!([{"op": "replace", "path": "emails[value eq \"STRASSE@example.com\"].value",
                    "value": "moved@example.com"}]),
        )
        .await;
    assert_eq!(r.expect(200)["emails"][0]["value"], "moved@example.com");
}

#[tokio::test]
async fn links_ignore_a_forged_forwarded_host() {
    let s = Scim::new(Profile::Odm).await;
    let r =
        s.t.call(
            scim::create,
            s.req(Method::POST, USERS, Some(&bjensen()))
                .header("x-forwarded-host", "evil.example")
                .header("x-forwarded-proto", "https")
                .build(),
        )
        .await;
    let body = r.expect(201).clone();
    let id = body["id"].as_str().unwrap();
    let location = r.header("location").unwrap();
    let meta = body["meta"]["location"].as_str().unwrap();
    for link in [location, meta] {
        assert!(!link.contains("evil.example"), "{link}");
        assert!(link.ends_with(&format!("{USERS}/{id}")), "{link}");
    }
    assert_eq!(location, meta);
}

// ------------------------------------------------------------ issue 9: cursors and the planner

/// `n` users made through the store, a few at a time; their ids in order.
async fn many_users(t: &TestTable, prefix: &str, n: usize) -> Vec<u64> {
    let names: Vec<String> = (0..n).map(|i| format!("{prefix}{i:04}")).collect();
    let mut ids = Vec::new();
    for chunk in names.chunks(10) {
        let made = futures::future::join_all(chunk.iter().map(|name| t.user(name))).await;
        ids.extend(made.iter().map(|u| u.id));
    }
    ids.sort_unstable();
    ids
}

fn ids_of(body: &Value) -> Vec<u64> {
    body["Resources"]
        .as_array()
        .unwrap_or_else(|| panic!("no Resources: {body}"))
        .iter()
        .map(|r| r["id"].as_str().unwrap().parse().unwrap())
        .collect()
}

fn next_cursor(body: &Value) -> Option<String> {
    body.get("nextCursor")
        .map(|c| c.as_str().expect("nextCursor is a string").to_string())
}

#[tokio::test]
async fn a_cursor_walk_returns_every_lasting_user_once_while_users_come_and_go() {
    let s = Scim::new(Profile::Rfc).await;
    many_users(&s.t, "walker", 250).await;
    let all = s.t.store.users().all().await.unwrap();
    let provisioner = all[0].id;
    let mut present: Vec<u64> = all.iter().map(|u| u.id).collect();
    let original = present.clone();
    let mut deleted = std::collections::HashSet::new();
    let mut created = Vec::new();
    let mut seen: Vec<u64> = Vec::new();
    let mut query = "cursor=&count=40".to_string();
    let mut page = 0;
    loop {
        let r = s.list(&query).await;
        let body = r.expect(200).clone();
        assert!(body.get("startIndex").is_none(), "{body}");
        assert!(body.get("totalResults").is_none(), "{body}");
        let ids = ids_of(&body);
        assert_eq!(body["itemsPerPage"].as_u64(), Some(ids.len() as u64));
        seen.extend(&ids);
        let Some(next) = next_cursor(&body) else {
            break;
        };
        assert_eq!(ids.len(), 40, "only the last page may be short");
        query = format!("cursor={next}&count=40");
        page += 1;
        // Between pages: two users behind the cursor and two ahead of it go,
        // three new ones come.
        let position = *ids.last().unwrap();
        let behind = present
            .iter()
            .copied()
            .filter(|id| *id < position && *id != provisioner);
        let ahead = present.iter().copied().filter(|id| *id > position + 5);
        let doomed: Vec<u64> = behind.take(2).chain(ahead.take(2)).collect();
        for id in doomed {
            let user = s.t.fresh(id).await;
            s.t.store.users().delete(&user).await.unwrap();
            present.retain(|p| *p != id);
            deleted.insert(id);
        }
        for i in 0..3 {
            created.push(s.t.user(&format!("late{page}x{i}")).await.id);
        }
    }
    // No user twice, in id order, and every user that lived through the walk exactly once.
    let mut sorted = seen.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted, seen, "ids repeat or go backwards");
    for id in original.iter().filter(|id| !deleted.contains(id)) {
        assert!(seen.contains(id), "user {id} was skipped");
    }
    for id in &created {
        assert!(
            seen.contains(id),
            "user {id}, created during the walk, is missing"
        );
    }
    let deleted_ahead: Vec<u64> = deleted
        .iter()
        .copied()
        .filter(|id| !seen.contains(id))
        .collect();
    assert!(!deleted_ahead.is_empty());
    assert!(page >= 6, "{page} pages");
}

#[tokio::test]
async fn a_cursor_page_at_depth_costs_what_the_first_page_costs() {
    let s = Scim::new(Profile::Odm).await;
    many_users(&s.t, "deep", 250).await;
    let first = s.list("cursor=&count=40").await;
    let mut body = first.expect(200).clone();
    for _ in 0..3 {
        let next = next_cursor(&body).unwrap();
        body = s
            .list(&format!("cursor={next}&count=40"))
            .await
            .expect(200)
            .clone();
    }
    let next = next_cursor(&body).unwrap();
    let fifth = s.list(&format!("cursor={next}&count=40")).await;
    let ids = ids_of(fifth.expect(200));
    assert_eq!(ids.len(), 40);
    let every: Vec<u64> =
        s.t.store
            .users()
            .all()
            .await
            .unwrap()
            .iter()
            .map(|u| u.id)
            .collect();
    assert_eq!(ids, every[160..200], "page 5 holds users 161 to 200");
    assert_eq!((first.dynamodb_calls, fifth.dynamodb_calls), (2, 2));
    assert!(
        fifth.capacity_units <= first.capacity_units + 0.5,
        "page 5: {} units, page 1: {}",
        fifth.capacity_units,
        first.capacity_units
    );
    // The last page has no nextCursor.
    let mut body = fifth.body.clone();
    let mut pages = 5;
    while let Some(next) = next_cursor(&body) {
        body = s
            .list(&format!("cursor={next}&count=40"))
            .await
            .expect(200)
            .clone();
        pages += 1;
    }
    assert_eq!((pages, ids_of(&body).len()), (7, 251 - 6 * 40));
}

#[tokio::test]
async fn filtered_cursor_pages_resume_and_search_takes_a_cursor() {
    let s = Scim::new(Profile::Rfc).await;
    let ids = many_users(&s.t, "mixed", 30).await;
    // Every third user is inactive: `active eq false` matches 10 of 31.
    let mut inactive = Vec::new();
    for id in ids.iter().step_by(3) {
        let user = s.t.fresh(*id).await;
        let mut off = user.clone();
        off.is_active = false;
        s.t.store.users().update(&user, off).await.unwrap();
        inactive.push(*id);
    }
    let filter = encode("active eq false");
    let mut seen = Vec::new();
    let mut query = format!("filter={filter}&cursor=&count=4");
    loop {
        let r = s.list(&query).await;
        let body = r.expect(200).clone();
        assert_eq!(r.dynamodb_calls, 2, "{body}");
        seen.extend(ids_of(&body));
        match next_cursor(&body) {
            Some(next) => query = format!("filter={filter}&cursor={next}&count=4"),
            None => break,
        }
    }
    assert_eq!(seen, inactive);

    // The same walk through POST .search, the cursor in the body.
    let search = |cursor: &str| {
        let body = json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
            "filter": "active eq false", "cursor": cursor, "count": 6
        });
        s.t.call(
            scim::search,
            s.req(Method::POST, &format!("{USERS}/.search"), Some(&body))
                .build(),
        )
    };
    let first = search("").await.expect(200).clone();
    assert_eq!(ids_of(&first), inactive[..6]);
    let second = search(&next_cursor(&first).unwrap())
        .await
        .expect(200)
        .clone();
    assert_eq!(ids_of(&second), inactive[6..]);
    assert!(next_cursor(&second).is_none(), "{second}");

    // A unique-attribute filter is one user at most: no next page, 2 calls.
    let active = s.t.fresh(ids[1]).await;
    assert!(active.is_active);
    let f = encode(&format!(
        "userName eq \"{}\" and active eq true",
        active.username
    ));
    let r = s.list(&format!("filter={f}&cursor=&count=1")).await;
    assert_eq!(ids_of(r.expect(200)), [active.id]);
    assert!(next_cursor(&r.body).is_none());
    assert_eq!(r.body["totalResults"], 1, "a one-page answer says its size");
    assert_eq!(r.dynamodb_calls, 2);
}

#[tokio::test]
async fn cursors_that_were_not_issued_for_the_request_are_400_and_read_nothing() {
    use directory::scim::cursor::{self, Cursor};
    let s = Scim::new(Profile::Odm).await;
    many_users(&s.t, "c", 5).await;
    let body = s.list("cursor=&count=2").await.expect(200).clone();
    let good = next_cursor(&body).unwrap();
    let mut flipped = good.clone().into_bytes();
    flipped[10] = if flipped[10] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap();
    let fresh = |after, issued| Cursor {
        after,
        profile: Profile::Odm,
        filter: cursor::fingerprint(None),
        issued,
    };
    let now = cursor::now_secs();
    let other_key = fresh(2, now).seal(b"some other deployment's key");
    let expired =
        fresh(2, now - cursor::TIMEOUT_SECS - 5).seal(directory::config::DEVELOPMENT_CURSOR_KEY);
    let other_profile = Cursor {
        profile: Profile::Rfc,
        ..fresh(2, now)
    }
    .seal(directory::config::DEVELOPMENT_CURSOR_KEY);
    let filtered = s
        .list(&format!(
            "filter={}&cursor=&count=1",
            encode("active eq true")
        ))
        .await
        .expect(200)
        .clone();
    let other_filter = next_cursor(&filtered).unwrap();
    let cases = [
        (format!("cursor={flipped}"), "invalidCursor"),
        (
            format!("cursor={}", &good[..good.len() - 3]),
            "invalidCursor",
        ),
        (format!("cursor={good}x"), "invalidCursor"),
        ("cursor=bm90IGEgY3Vyc29y".to_string(), "invalidCursor"),
        ("cursor=%2B%2F%3D%3D".to_string(), "invalidCursor"),
        (format!("cursor={other_key}"), "invalidCursor"),
        (format!("cursor={other_profile}"), "invalidCursor"),
        (format!("cursor={other_filter}"), "invalidCursor"),
        (
            format!("cursor={good}&filter={}", encode("active eq true")),
            "invalidCursor",
        ),
        (format!("cursor={expired}"), "expiredCursor"),
        (format!("cursor={good}&startIndex=3"), "invalidValue"),
        ("cursor=&startIndex=1".to_string(), "invalidValue"),
    ];
    for (query, kind) in cases {
        let r = s.list(&format!("{query}&count=2")).await;
        assert_scim_error(r.expect(400), "400", Some(kind));
        assert!(r.body.get("Resources").is_none(), "{query}: {}", r.body);
        assert_eq!(r.dynamodb_calls, 1, "{query}: only the auth read");
    }
    // The untouched cursor still works, and so does the same one in a search body.
    let r = s.list(&format!("cursor={good}&count=2")).await;
    assert_eq!(ids_of(r.expect(200)).len(), 2);
    let body = json!({"cursor": 7});
    let r =
        s.t.call(
            scim::search,
            s.req(Method::POST, &format!("{USERS}/.search"), Some(&body))
                .build(),
        )
        .await;
    assert_scim_error(r.expect(400), "400", Some("invalidCursor"));
}

#[tokio::test]
async fn a_unique_attribute_inside_ands_is_looked_up_not_scanned() {
    let s = Scim::new(Profile::Odm).await;
    let created = s.create(bjensen()).await;
    let id = created["id"].as_str().unwrap().to_string();
    many_users(&s.t, "filler", 20).await;
    let plain = s
        .list(&format!("filter={}", encode("userName eq \"bjensen\"")))
        .await;
    assert_eq!(plain.expect(200)["totalResults"], 1);
    let cases = [
        ("userName eq \"bjensen\" and active eq true", 1),
        ("active eq true and (name.familyName eq \"Jensen\" and (userName eq \"BJENSEN\"))", 1),
        ("(displayName eq \"Barbara Jensen\" and (active eq true and externalId eq \"ext-701984\"))", 1),
        ("active eq true and emails[type eq \"work\" and value eq \"bjensen@example.com\"]", 1),
        ("userName eq \"bjensen\" and active eq false", 0),
        ("userName eq \"bjensen\" and name.familyName eq \"Smith\"", 0),
    ];
    for (filter, total) in cases {
        let r = s.list(&format!("filter={}", encode(filter))).await;
        let body = r.expect(200);
        assert_eq!(body["totalResults"], total, "{filter}: {body}");
        if total == 1 {
            assert_eq!(body["Resources"][0]["id"], id.as_str());
        }
        assert_eq!(r.dynamodb_calls, plain.dynamodb_calls, "{filter}");
    }
    // A scan would read all 22 users: these read the one (or none).
    let by_id = s
        .list(&format!(
            "filter={}",
            encode(&format!("id eq \"{id}\" and active eq true"))
        ))
        .await;
    assert_eq!(
        (
            by_id.expect(200)["totalResults"].as_u64(),
            by_id.dynamodb_calls
        ),
        (Some(1), 1)
    );
    for filter in [
        "id eq \"abc\"",
        "id eq \"007\"",
        "id eq \"-1\" and active eq true",
        "id eq \"\"",
    ] {
        let r = s.list(&format!("filter={}", encode(filter))).await;
        let body = r.expect(200);
        assert_eq!(
            (body["totalResults"].as_u64(), body["Resources"].clone()),
            (Some(0), json!([])),
            "{filter}"
        );
        assert_eq!(r.dynamodb_calls, 1, "{filter}: only the auth read");
    }
}

/// A random filter over the attributes the planner looks at and others, as text.
fn random_filter(rng: &mut impl rand::Rng, ids: &[u64], depth: u32) -> String {
    let atom = |rng: &mut dyn rand::RngCore| -> String {
        let name = |rng: &mut dyn rand::RngCore| {
            let n = rand::Rng::gen_range(rng, 0..10);
            let base = format!("pool{n}");
            if rand::Rng::gen_bool(rng, 0.3) {
                base.to_uppercase()
            } else {
                base
            }
        };
        match rand::Rng::gen_range(rng, 0..11) {
            0 => format!("userName eq \"{}\"", name(rng)),
            1 => format!("emails.value eq \"{}@example.org\"", name(rng)),
            2 => format!("externalId eq \"ext-{}\"", rand::Rng::gen_range(rng, 0..10)),
            3 => {
                let id = match rand::Rng::gen_range(rng, 0..4) {
                    0 => "abc".to_string(),
                    1 => "999999".to_string(),
                    _ => ids[rand::Rng::gen_range(rng, 0..ids.len())].to_string(),
                };
                format!("id eq \"{id}\"")
            }
            4 => format!("active eq {}", rand::Rng::gen_bool(rng, 0.5)),
            5 => format!(
                "name.familyName eq \"Family{}\"",
                rand::Rng::gen_range(rng, 0..3)
            ),
            6 => "emails.type eq \"work\"".to_string(),
            7 => format!(
                "emails[type eq \"work\" and value eq \"{}@example.org\"]",
                name(rng)
            ),
            8 => format!(
                "emails[type eq \"work\"].value eq \"{}@EXAMPLE.org\"",
                name(rng)
            ),
            9 => "externalId eq null".to_string(),
            _ => format!("displayName eq \"First {} Tester\"", name(rng)),
        }
    };
    let parts = rand::Rng::gen_range(rng, 1..=3);
    let members: Vec<String> = (0..parts)
        .map(|_| {
            if depth > 0 && rand::Rng::gen_bool(rng, 0.3) {
                format!("({})", random_filter(rng, ids, depth - 1))
            } else {
                atom(rng)
            }
        })
        .collect();
    members.join(" and ")
}

#[tokio::test]
async fn planned_filters_answer_what_evaluating_every_user_answers() {
    use rand::SeedableRng;
    for profile in [Profile::Odm, Profile::Rfc] {
        let s = Scim::new(profile).await;
        // Ten users with overlapping attributes, some inactive, some with an externalId.
        for n in 0..10u64 {
            let mut u = directory::domain::user::User::new(format!("pool{n}"));
            u.email = format!("pool{n}@example.org");
            u.first_name = format!("First pool{n}");
            u.last_name = format!("Family{}", n % 3);
            u.is_active = n % 4 != 0;
            u.external_id = (n % 2 == 0).then(|| format!("ext-{n}"));
            s.t.store.users().create(u).await.unwrap();
        }
        let all = s.t.store.users().all().await.unwrap();
        let ids: Vec<u64> = all.iter().map(|u| u.id).collect();
        let mut rng = rand::rngs::StdRng::seed_from_u64(9 + profile as u64);
        let mut looked_up = 0;
        for _ in 0..100 {
            let text = random_filter(&mut rng, &ids, 2);
            let parsed = scim::filter::parse(&text, profile).unwrap();
            let mut want: Vec<u64> = all
                .iter()
                .filter(|u| profile == Profile::Rfc || u.is_active)
                .filter(|u| parsed.matches(u))
                .map(|u| u.id)
                .collect();
            want.sort_unstable();
            let r = s
                .list(&format!("filter={}&count=1000", encode(&text)))
                .await;
            let mut got = ids_of(r.expect(200));
            got.sort_unstable();
            assert_eq!(got, want, "{profile:?} {text}");
            if matches!(ReadPlan::of(&parsed.to_query()), ReadPlan::Keys { .. }) {
                looked_up += 1;
                assert!(r.dynamodb_calls <= 2, "{text}: {} calls", r.dynamodb_calls);
            }
            // The same filter walked by cursor, a page of 2 at a time.
            let mut walked = Vec::new();
            let mut cursor = String::new();
            loop {
                let r = s
                    .list(&format!("filter={}&cursor={cursor}&count=2", encode(&text)))
                    .await;
                let body = r.expect(200).clone();
                walked.extend(ids_of(&body));
                match next_cursor(&body) {
                    Some(next) => cursor = next,
                    None => break,
                }
            }
            assert_eq!(walked, want, "{profile:?} cursor walk of {text}");
        }
        assert!(looked_up > 40, "{looked_up} of 100 filters were planned");
    }
}

/// Index pages (`startIndex`) at any depth: the counts per id bucket say
/// where a page starts, so the last page reads about what the first does.
/// Before, a page read every user before it (the last of 6 cost ~3x the first).
#[tokio::test]
async fn an_index_page_at_any_depth_costs_about_the_first() {
    for profile in [Profile::Odm, Profile::Rfc] {
        let t = TestTable::with_profile(profile).await;
        let admin = t.admin("root").await;
        let token = t.token(&admin).await;
        let mut ids = vec![admin.id];
        for i in 0..260 {
            let u = t.user(&format!("deep{i:03}")).await;
            ids.push(u.id);
        }
        // Gaps and inactive users, which odm does not list.
        for id in ids.iter().filter(|id| *id % 9 == 0) {
            t.store.users().delete(&t.fresh(*id).await).await.unwrap();
        }
        for id in ids.iter().filter(|id| *id % 4 == 0 && *id % 9 != 0) {
            let current = t.fresh(*id).await;
            let mut inactive = current.clone();
            inactive.is_active = false;
            t.store.users().update(&current, inactive).await.unwrap();
        }
        let listed: Vec<u64> = t
            .store
            .users()
            .all()
            .await
            .unwrap()
            .into_iter()
            .filter(|u| profile == Profile::Rfc || u.is_active)
            .map(|u| u.id)
            .collect();
        let page = |start: usize| {
            get(&format!("/api/v1/scim/Users?startIndex={start}&count=40"))
                .header("authorization", &format!("Bearer {token}"))
                .build()
        };
        let first = t.call(scim::list, page(1)).await;
        let first_body = first.expect(200).clone();
        assert_eq!(first_body["totalResults"], listed.len());
        for start in [41, 120, listed.len() - 39, listed.len() - 5] {
            let r = t.call(scim::list, page(start)).await;
            let body = r.expect(200);
            let got: Vec<u64> = body["Resources"]
                .as_array()
                .unwrap()
                .iter()
                .map(|u| u["id"].as_str().unwrap().parse().unwrap())
                .collect();
            let want: Vec<u64> = listed.iter().skip(start - 1).take(40).copied().collect();
            assert_eq!(got, want, "{profile:?} startIndex={start}");
            assert_eq!(body["totalResults"], listed.len());
            assert_eq!(r.dynamodb_calls, first.dynamodb_calls, "startIndex={start}");
            assert!(
                r.capacity_units <= first.capacity_units + 2.0,
                "{profile:?} startIndex={start}: {} CU, first page {} CU",
                r.capacity_units,
                first.capacity_units
            );
        }
    }
}

/// A cursor walk while other requests create and delete users at the same
/// time (real concurrency, in-process): no id twice, ids only go up, and every
/// user that lived through the whole walk is seen exactly once.
#[tokio::test]
async fn a_cursor_walk_under_concurrent_creates_and_deletes_skips_and_repeats_nobody() {
    let s = Scim::new(Profile::Odm).await;
    let stable = many_users(&s.t, "stable", 150).await;
    let doomed = many_users(&s.t, "doomed", 40).await;
    let churn = async {
        for (i, id) in doomed.iter().enumerate() {
            let user = s.t.fresh(*id).await;
            s.t.store.users().delete(&user).await.unwrap();
            s.t.user(&format!("churn{i:03}")).await;
            tokio::task::yield_now().await;
        }
    };
    let walk = async {
        let mut seen: Vec<u64> = Vec::new();
        let mut query = "cursor=&count=15".to_string();
        loop {
            let r = s.list(&query).await;
            let body = r.expect(200).clone();
            seen.extend(ids_of(&body));
            match next_cursor(&body) {
                Some(next) => query = format!("cursor={next}&count=15"),
                None => break,
            }
            tokio::task::yield_now().await;
        }
        seen
    };
    let ((), seen) = tokio::join!(churn, walk);
    let mut sorted = seen.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted, seen, "ids repeat or go backwards");
    for id in &stable {
        assert_eq!(
            seen.iter().filter(|s| *s == id).count(),
            1,
            "stable user {id}"
        );
    }
}

/// At 1,000 users (loaded in bulk): index pages at any depth, cursor pages and
/// planned filters cost about a page, not the directory.
#[tokio::test]
async fn at_a_thousand_users_pages_and_lookups_cost_a_page() {
    let s = Scim::new(Profile::Odm).await;
    let users: Vec<directory::domain::user::User> = (0..1000)
        .map(|i| {
            let mut u = directory::domain::user::User::new(format!("bulk{i:04}"));
            u.email = format!("bulk{i:04}@example.org");
            u.is_active = i % 7 != 3;
            u
        })
        .collect();
    s.t.store.users().import(users).await.unwrap();
    let first = s.list("startIndex=1&count=50").await;
    let total = first.expect(200)["totalResults"].as_u64().unwrap();
    assert_eq!(total as usize, 1 + (0..1000).filter(|i| i % 7 != 3).count());
    for start in [400, 800, total - 49] {
        let r = s.list(&format!("startIndex={start}&count=50")).await;
        assert_eq!(ids_of(r.expect(200)).len(), 50);
        assert_eq!(r.dynamodb_calls, 3, "startIndex={start}");
        assert!(
            r.capacity_units <= first.capacity_units + 2.0 && r.capacity_units <= 10.0,
            "startIndex={start}: {} CU, first {}",
            r.capacity_units,
            first.capacity_units
        );
    }
    // Cursor pages: the 15th costs what the first does.
    let mut query = "cursor=&count=50".to_string();
    let mut costs = Vec::new();
    for _ in 0..15 {
        let r = s.list(&query).await;
        costs.push((r.dynamodb_calls, r.capacity_units));
        query = format!("cursor={}&count=50", next_cursor(r.expect(200)).unwrap());
    }
    let (calls0, cu0) = costs[0];
    for (calls, cu) in &costs {
        assert_eq!(*calls, calls0);
        assert!(*cu <= cu0 + 1.0, "{costs:?}");
    }
    // Lookups, also inside an `and`.
    for filter in [
        r#"userName eq "bulk0777""#,
        r#"userName eq "bulk0777" and active eq true"#,
        r#"emails.value eq "bulk0777@example.org""#,
    ] {
        let r = s.list(&format!("filter={}", encode(filter))).await;
        assert_eq!(ids_of(r.expect(200)).len(), 1, "{filter}");
        assert!(r.dynamodb_calls <= 2 && r.capacity_units <= 5.0, "{filter}");
    }
    // The admin API: a deep page and a pinned filter.
    let admin_page = |q: &str| {
        get(&format!("/api/users?{q}"))
            .header("authorization", &format!("Bearer {}", s.token))
            .build()
    };
    let page1 =
        s.t.call(admin_api::list, admin_page("page=1&page_size=50"))
            .await;
    let deep =
        s.t.call(admin_api::list, admin_page("page=19&page_size=50"))
            .await;
    assert_eq!(deep.expect(200)["results"].as_array().unwrap().len(), 50);
    assert_eq!(deep.dynamodb_calls, page1.dynamodb_calls);
    assert!(deep.capacity_units <= page1.capacity_units + 2.0);
    let pinned =
        s.t.call(
            admin_api::list,
            admin_page(&format!(
                "filter={}",
                encode(r#"{"==":[{"var":"username"},"bulk0500"]}"#)
            )),
        )
        .await;
    assert_eq!(pinned.expect(200)["count"], 1);
    assert!(pinned.dynamodb_calls <= 2 && pinned.capacity_units <= 5.0);
}

/// `odm` cursor pages read each index entry once: a page reads the next
/// `count` entries and shows the active ones among them (so it may be
/// short), and the next page starts after the last entry read. The walk
/// lists every active user once, no inactive one, and costs one read of the
/// index plus the per-request authentication.
#[tokio::test]
async fn an_odm_cursor_walk_reads_each_user_once_and_shows_only_the_active() {
    let s = Scim::new(Profile::Odm).await;
    let users: Vec<directory::domain::user::User> = (0..300)
        .map(|i| {
            let mut u = directory::domain::user::User::new(format!("short{i:04}"));
            u.is_active = i % 3 != 1;
            u
        })
        .collect();
    s.t.store.users().import(users).await.unwrap();
    let everyone = s.t.store.users().all().await.unwrap();
    let active: Vec<u64> = everyone
        .iter()
        .filter(|u| u.is_active)
        .map(|u| u.id)
        .collect();
    let reader = directory::store::Store::new(s.t.store.client().clone(), s.t.store.table());
    reader.users().all().await.unwrap();
    let floor = reader.metrics().capacity_units();

    let (mut seen, mut pages, mut index_units) = (Vec::new(), 0u32, 0.0);
    let mut query = "cursor=&count=25".to_string();
    loop {
        let r = s.list(&query).await;
        let body = r.expect(200).clone();
        let ids = ids_of(&body);
        assert!(ids.len() <= 25, "{body}");
        assert_eq!(body["itemsPerPage"].as_u64(), Some(ids.len() as u64));
        assert_eq!(r.dynamodb_calls, 2, "authentication and one query");
        // Authentication: the token and its user, strongly consistent.
        index_units += r.capacity_units - 2.0;
        pages += 1;
        seen.extend(ids);
        match next_cursor(&body) {
            Some(next) => query = format!("cursor={next}&count=25"),
            None => break,
        }
    }
    assert_eq!(seen, active, "every active user once, in id order");
    assert!(
        pages >= 13,
        "{pages} pages of at most 25 entries for 301 users"
    );
    assert!(
        index_units <= floor + 0.5 * f64::from(pages),
        "the walk's queries read {index_units} CU; reading the index once is {floor} CU"
    );
}

/// 600 users loaded in bulk into a new `odm` table, every sixth inactive
/// (so every bucket has gaps); returns the handler set and the active ids.
async fn gappy_directory() -> (Scim, Vec<u64>) {
    let s = Scim::new(Profile::Odm).await;
    let users: Vec<directory::domain::user::User> = (0..600)
        .map(|i| {
            let mut u = directory::domain::user::User::new(format!("walk{i:04}"));
            u.is_active = i % 6 != 2;
            u
        })
        .collect();
    s.t.store.users().import(users).await.unwrap();
    let active =
        s.t.store
            .users()
            .all()
            .await
            .unwrap()
            .iter()
            .filter(|u| u.is_active)
            .map(|u| u.id)
            .collect();
    (s, active)
}

/// An identity provider's import by `startIndex` (`odm`, inactive users in
/// every bucket): each page remembers where the next one starts, so after
/// the first page no page reads the users of its bucket before its first
/// one. Every active user is listed once, and the walk costs less than the
/// same pages asked in reverse order (where nothing was remembered). A
/// change in a bucket makes the next page find its start from the bucket's
/// first id again, and the answer stays exact.
#[tokio::test]
async fn an_index_walk_reads_each_user_about_once() {
    let (s, active) = gappy_directory().await;
    let (cold, _) = gappy_directory().await;
    let starts: Vec<usize> = (1..=active.len()).step_by(40).collect();
    let reader = directory::store::Store::new(s.t.store.client().clone(), s.t.store.table());
    reader.users().all().await.unwrap();
    let floor = reader.metrics().capacity_units();

    let (mut seen, mut units) = (Vec::new(), 0.0);
    for start in &starts {
        let r = s.list(&format!("startIndex={start}&count=40")).await;
        assert_eq!(r.dynamodb_calls, 3, "startIndex={start}");
        units += r.capacity_units;
        seen.extend(ids_of(r.expect(200)));
    }
    assert_eq!(seen, active, "every active user once, in id order");
    let mut reverse = 0.0;
    for start in starts.iter().rev() {
        let r = cold.list(&format!("startIndex={start}&count=40")).await;
        r.expect(200);
        reverse += r.capacity_units;
    }
    let pages = starts.len() as f64;
    // Per page: authentication (1), the counts (0.5), rounding up (0.5) and
    // the page's own entries with a few past its end.
    assert!(
        units <= floor * 1.1 + pages * 2.0 + 1.0,
        "the walk cost {units} units; reading every user once costs {floor}"
    );
    assert!(
        units + 0.5 * (pages - 1.0) <= reverse,
        "in order {units} units, in reverse order {reverse}"
    );

    // A deactivation in the bucket where page 3 starts, before its first
    // user: that page's start is found again from the bucket's counts.
    let first = ids_of(s.list("startIndex=81&count=40").await.expect(200))[0];
    let mut earlier = active.iter().rev().filter(|id| **id < first);
    let victim = *earlier.next().unwrap();
    let user = s.t.fresh(victim).await;
    let mut changed = user.clone();
    changed.is_active = false;
    s.t.store.users().update(&user, changed).await.unwrap();
    let now: Vec<u64> = active.iter().copied().filter(|id| *id != victim).collect();
    let r = s.list("startIndex=81&count=40").await;
    assert_eq!(ids_of(r.expect(200)), now[80..120].to_vec());
}
