//! `/api/v1/scim` in-process against DynamoDB Local, in both profiles.
use directory::admin_api;
use directory::runtime::Profile;
use directory::scim::{self, USER_SCHEMA};
use directory::store::{TokenSpec, UniqueField};
use directory_tests::{get, scim as body_req, Req, TestTable};
use lambda_http::http::Method;
use serde_json::{json, Value};

const USERS: &str = "/api/v1/scim/Users";
const ERROR: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

struct Scim {
    t: TestTable,
    token: String,
}

impl Scim {
    async fn new(profile: Profile) -> Scim {
        let t = TestTable::with_profile(profile).await;
        let admin = t.admin("provisioner").await;
        let token = t.token(&admin).await;
        Scim { t, token }
    }

    fn req(&self, method: Method, path: &str, body: Option<&Value>) -> Req {
        let req = match body {
            Some(b) => body_req(method, path, b),
            None => Req::new(method, path),
        };
        req.header("authorization", &format!("Bearer {}", self.token))
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
            json!({"userName": "x", "emails": [{"value": "a@b.org", "type": "home"}]}),
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
        s.t.store.all_users().await.unwrap().len(),
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
            .claim_owner(UniqueField::Email, "bjensen@example.com")
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
            .claim_owner(UniqueField::Email, "babs@example.com")
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
            .claim_owner(UniqueField::Username, "bjensen")
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
                .all_users()
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
    for off in ["bulk", "sort", "changePassword"] {
        assert_eq!(body[off]["supported"], false, "{off}");
    }
    let types: Vec<&str> = body["authenticationSchemes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["oauthbearertoken", "httpbasic"]);

    let rt = call("/ResourceTypes").await;
    assert_eq!(rt.expect(200)["Resources"][0]["endpoint"], "/Users");
    call("/ResourceTypes/User").await.expect(200);
    call("/ResourceTypes/Group").await.expect(404);
    let schemas = call("/Schemas").await;
    let schema = &schemas.expect(200)["Resources"][0];
    let names: Vec<&str> = schema["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "id",
            "userName",
            "externalId",
            "name",
            "displayName",
            "active",
            "emails",
            "meta"
        ]
    );
    let email_type = &schema["attributes"][6]["subAttributes"][1];
    assert_eq!(email_type["canonicalValues"], json!(["work"]));
    call(&format!("/Schemas/{USER_SCHEMA}")).await.expect(200);
    let r = call("/Schemas/urn:nope").await;
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
