//! `/api/users` end to end in-process: each handler against DynamoDB Local.
use directory::admin_api::{destroy, fallback, list, partial_update, retrieve, retrieve_self};
use directory::store::{TokenSpec, UniqueField};
use directory_tests::{delete, get, patch, Req, TestTable};
use lambda_http::http::Method;
use serde_json::{json, Value};

fn usernames(body: &Value) -> Vec<&str> {
    body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn self_returns_the_full_caller_in_one_round_trip() {
    let t = TestTable::new().await;
    let bob = t.user("bob").await;
    let token = t.token(&bob).await;
    let r = t
        .call(retrieve_self, get("/api/users/self").token(&token).build())
        .await;
    let body = r.expect(200);
    let keys: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "url",
            "id",
            "username",
            "first_name",
            "last_name",
            "email",
            "groups",
            "is_staff",
            "is_superuser",
            "is_active",
            "last_login",
            "date_joined",
            "has_analytics_access"
        ]
    );
    assert_eq!(
        body["url"],
        format!("http://testserver/api/users/{}", bob.id)
    );
    assert_eq!(body["username"], "bob");
    assert_eq!(body["groups"], json!(["user"]));
    assert_eq!(body["last_login"], Value::Null);
    assert!(body["date_joined"].as_str().unwrap().ends_with('Z'));
    assert_eq!(r.header("content-type"), Some("application/vnd.cvat+json"));
    assert!(r.header("x-request-id").is_some_and(|id| !id.is_empty()));
    assert_eq!(r.dynamodb_calls, 1, "token auth + self is one BatchGetItem");
}

#[tokio::test]
async fn every_credential_form_is_accepted_and_bad_ones_get_401() {
    let t = TestTable::new().await;
    let bob = t.user("bob").await;
    let token = t.token(&bob).await;
    t.with_password(&bob, "s3cret-pass").await;

    for req in [
        get("/api/users/self").header("authorization", &format!("Bearer {token}")),
        get("/api/users/self").header("authorization", &format!("bearer {token}")),
        get("/api/users/self").header("genestack-api-token", &token),
        get("/api/users/self").basic("bob", "s3cret-pass"),
        get("/api/users/self").basic("BOB", "s3cret-pass"),
    ] {
        let r = t.call(retrieve_self, req.build()).await;
        assert_eq!(r.expect(200)["id"], bob.id);
    }

    let cases: Vec<(Req, &str)> = vec![
        (
            get("/api/users/self"),
            "Authentication credentials were not provided.",
        ),
        (get("/api/users/self").token("1.nope"), "Invalid token."),
        (get("/api/users/self").token("garbage"), "Invalid token."),
        (
            get("/api/users/self").token(&format!("{}.{}", bob.id + 1, &token[2..])),
            "Invalid token.",
        ),
        (
            get("/api/users/self").basic("bob", "wrong"),
            "Invalid username/password.",
        ),
        (
            get("/api/users/self").basic("nobody", "x"),
            "Invalid username/password.",
        ),
        (
            get("/api/users/self").header("authorization", "Token"),
            "Invalid token header. No credentials provided.",
        ),
    ];
    for (req, detail) in cases {
        let r = t.call(retrieve_self, req.build()).await;
        assert_eq!(r.expect(401), &json!({ "detail": detail }));
        assert_eq!(r.header("www-authenticate"), Some("Token"));
    }
}

#[tokio::test]
async fn basic_auth_records_last_login() {
    let t = TestTable::new().await;
    let bob = t.user("bob").await;
    t.with_password(&bob, "pw-123456").await;
    let r = t
        .call(
            retrieve_self,
            get("/api/users/self").basic("bob", "pw-123456").build(),
        )
        .await;
    assert!(r.expect(200)["last_login"].is_string());
    assert!(t.fresh(bob.id).await.last_login.is_some());
}

#[tokio::test]
async fn inactive_users_and_expired_tokens_are_refused() {
    let t = TestTable::new().await;
    let admin = t.admin("root").await;
    let admin_token = t.token(&admin).await;
    let bob = t.user("bob").await;
    let token = t.token(&bob).await;
    let expired = t
        .token_with(
            &bob,
            TokenSpec {
                read_only: false,
                expires_at: Some(1),
            },
        )
        .await;
    let r = t
        .call(
            retrieve_self,
            get("/api/users/self").token(&expired).build(),
        )
        .await;
    assert_eq!(r.expect(401)["detail"], "Invalid token.");

    let path = format!("/api/users/{}", bob.id);
    let r = t
        .call(
            partial_update,
            patch(&path, &json!({"is_active": false}))
                .token(&admin_token)
                .build(),
        )
        .await;
    assert_eq!(r.expect(200)["is_active"], false);
    let r = t
        .call(retrieve_self, get("/api/users/self").token(&token).build())
        .await;
    assert_eq!(r.expect(401)["detail"], "User inactive or deleted.");
}

#[tokio::test]
async fn retrieve_applies_permissions_and_shapes() {
    let t = TestTable::new().await;
    let admin = t.admin("root").await;
    let alice = t.user("alice").await;
    let bob = t.user("bob").await;
    let (at, bt) = (t.token(&admin).await, t.token(&bob).await);
    let bob_path = format!("/api/users/{}", bob.id);
    let alice_path = format!("/api/users/{}", alice.id);

    let own = t.call(retrieve, get(&bob_path).token(&bt).build()).await;
    assert_eq!(own.expect(200)["email"], "bob@example.org");
    assert_eq!(
        own.dynamodb_calls, 1,
        "token auth + target is one BatchGetItem"
    );

    let other = t.call(retrieve, get(&alice_path).token(&bt).build()).await;
    assert_eq!(
        other.expect(403),
        &json!({"detail": "You do not have permission to perform this action."})
    );

    let as_admin = t.call(retrieve, get(&alice_path).token(&at).build()).await;
    assert_eq!(as_admin.expect(200)["email"], "alice@example.org");
    assert_eq!(as_admin.dynamodb_calls, 1);
    // Token, caller and target: nothing else (the user counts are for lists).
    assert!(
        as_admin.capacity_units <= 3.0,
        "{} capacity units",
        as_admin.capacity_units
    );

    for path in ["/api/users/999999", "/api/users/abc"] {
        let r = t.call(retrieve, get(path).token(&bt).build()).await;
        assert_eq!(r.expect(404), &json!({"detail": "Not found."}));
    }
    let filtered = t
        .call(
            retrieve,
            get(&format!("{alice_path}?username=nomatch"))
                .token(&at)
                .build(),
        )
        .await;
    filtered.expect(404);
}

#[tokio::test]
async fn admins_list_everyone_with_cvat_paging() {
    let t = TestTable::new().await;
    let admin = t.admin("root").await;
    let token = t.token(&admin).await;
    for name in ["carol", "alice", "dave", "bob"] {
        t.user(name).await;
    }
    let r = t
        .call(
            list,
            get("/api/users?page_size=2&sort=username")
                .token(&token)
                .build(),
        )
        .await;
    let body = r.expect(200);
    assert_eq!(body["count"], 5);
    assert_eq!(usernames(body), ["alice", "bob"]);
    assert_eq!(
        body["next"],
        "http://testserver/api/users?page=2&page_size=2&sort=username"
    );
    assert_eq!(body["previous"], Value::Null);
    // Full rows for a superuser.
    assert!(body["results"][0]["email"].is_string());

    let r = t
        .call(
            list,
            get("/api/users?page=2&page_size=2&sort=username")
                .token(&token)
                .build(),
        )
        .await;
    let body = r.expect(200);
    assert_eq!(usernames(body), ["carol", "dave"]);
    assert_eq!(
        body["previous"],
        "http://testserver/api/users?page_size=2&sort=username"
    );

    let r = t
        .call(
            list,
            get("/api/users?page=last&page_size=2&sort=username")
                .token(&token)
                .build(),
        )
        .await;
    let body = r.expect(200);
    assert_eq!(usernames(body), ["root"]);
    assert_eq!(body["next"], Value::Null);

    for bad in ["4", "0", "x", "2.0"] {
        let r = t
            .call(
                list,
                get(&format!("/api/users?page={bad}&page_size=2"))
                    .token(&token)
                    .build(),
            )
            .await;
        assert_eq!(
            r.expect(404),
            &json!({"detail": "Invalid page."}),
            "page={bad}"
        );
    }

    // Default order is -id, served from the user counts and one short GSI1 read.
    let r = t.call(list, get("/api/users").token(&token).build()).await;
    assert_eq!(
        usernames(r.expect(200)),
        ["bob", "dave", "alice", "carol", "root"]
    );
    assert_eq!(
        r.dynamodb_calls, 2,
        "auth + counts in one read, then one query"
    );
    let r = t
        .call(
            list,
            get("/api/users?page=2&page_size=2").token(&token).build(),
        )
        .await;
    let body = r.expect(200);
    assert_eq!(
        (body["count"].as_u64(), usernames(body)),
        (Some(5), vec!["alice", "carol"])
    );
    assert_eq!(
        body["next"],
        "http://testserver/api/users?page=3&page_size=2"
    );
    let r = t
        .call(
            list,
            get("/api/users?page=last&page_size=2&sort=id")
                .token(&token)
                .build(),
        )
        .await;
    assert_eq!(usernames(r.expect(200)), ["bob"]);
    let r = t
        .call(
            list,
            get("/api/users?page=4&page_size=2").token(&token).build(),
        )
        .await;
    r.expect(404);
    let r = t
        .call(
            list,
            get("/api/users?page_size=all&sort=id")
                .token(&token)
                .build(),
        )
        .await;
    assert_eq!(
        usernames(r.expect(200)),
        ["root", "carol", "alice", "dave", "bob"]
    );
}

#[tokio::test]
async fn list_filters_search_and_json_logic() {
    let t = TestTable::new().await;
    let admin = t.admin("root").await;
    let token = t.token(&admin).await;
    let alice = t.user("alice").await;
    let bob = t.user("bob").await;
    t.user("alicia").await;
    let enc = |s: &str| -> String { form(s) };

    let cases: Vec<(String, Vec<&str>)> = vec![
        ("username=alice".into(), vec!["alice"]),
        ("search=ALI&sort=username".into(), vec!["alice", "alicia"]),
        ("search=ali,cia".into(), vec!["alicia"]),
        ("search=first%20bob".into(), vec!["bob"]),
        ("sort=-username&search=ali".into(), vec!["alicia", "alice"]),
        (
            format!(
                "filter={}",
                enc(&json!({"==": [{"var": "username"}, "bob"]}).to_string())
            ),
            vec!["bob"],
        ),
        (
            format!(
                "sort=id&filter={}",
                enc(&json!({"in": [{"var": "id"}, [alice.id, bob.id]]}).to_string())
            ),
            vec!["alice", "bob"],
        ),
        (
            format!(
                "sort=username&filter={}",
                enc(&json!({"in": ["lic", {"var": "username"}]}).to_string())
            ),
            vec!["alice", "alicia"],
        ),
        ("is_active=false".into(), vec![]),
        ("is_active=junk&username=bob".into(), vec!["bob"]),
    ];
    for (query, want) in cases {
        let r = t
            .call(
                list,
                get(&format!("/api/users?{query}")).token(&token).build(),
            )
            .await;
        assert_eq!(usernames(r.expect(200)), want, "{query}");
    }

    let bad: Vec<(String, &str)> = vec![
        ("notjson".into(), "filter: can't parse filter expression"),
        ("{}".into(), "filter shouldn't be empty"),
        (
            json!({"==": [{"var": "email"}, "x"]}).to_string(),
            "filter: term 'email' is not supported",
        ),
        (
            json!({"and": []}).to_string(),
            "filter: expected a non-empty list value",
        ),
        (json!({"==": [{"var": "id"}, "abc"]}).to_string(), "filter:"),
    ];
    for (filter, prefix) in bad {
        let r = t
            .call(
                list,
                get(&format!("/api/users?filter={}", enc(&filter)))
                    .token(&token)
                    .build(),
            )
            .await;
        let body = r.expect(400);
        let message = body[0]
            .as_str()
            .unwrap_or_else(|| panic!("{filter}: {body}"));
        assert!(message.starts_with(prefix), "{filter}: {message}");
        assert_eq!(body.as_array().unwrap().len(), 1);
    }
}

fn form(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn non_admins_see_themselves_or_their_org() {
    let t = TestTable::new().await;
    let bob = t.user("bob").await;
    let alice = t.user("alice").await;
    let carol = t.user("carol").await;
    let token = t.token(&bob).await;

    let r = t.call(list, get("/api/users").token(&token).build()).await;
    let body = r.expect(200);
    assert_eq!(usernames(body), ["bob"]);
    // Basic rows for non-superusers, even their own.
    assert!(body["results"][0].get("email").is_none());
    assert_eq!(r.dynamodb_calls, 1);

    let org = t.store.create_org("acme", "Acme").await.unwrap();
    t.store
        .add_member(&org, &t.fresh(bob.id).await, "worker")
        .await
        .unwrap();
    t.store
        .add_member(&org, &t.fresh(alice.id).await, "maintainer")
        .await
        .unwrap();

    for query in ["org=acme", &format!("org_id={}", org.id)] {
        let r = t
            .call(
                list,
                get(&format!("/api/users?{query}&sort=username"))
                    .token(&token)
                    .build(),
            )
            .await;
        assert_eq!(usernames(r.expect(200)), ["alice", "bob"], "{query}");
    }
    let r = t
        .call(
            list,
            get("/api/users?sort=username")
                .header("x-organization", "acme")
                .token(&token)
                .build(),
        )
        .await;
    assert_eq!(usernames(r.expect(200)), ["alice", "bob"]);

    // An org member may view any user in that context, in the basic shape.
    let r = t
        .call(
            retrieve,
            get(&format!("/api/users/{}?org=acme", carol.id))
                .token(&token)
                .build(),
        )
        .await;
    let body = r.expect(200);
    assert_eq!(body["username"], "carol");
    assert!(body.get("email").is_none());

    let carol_token = t.token(&carol).await;
    let r = t
        .call(list, get("/api/users?org=acme").token(&carol_token).build())
        .await;
    r.expect(403);
    let r = t
        .call(list, get("/api/users?org=nope").token(&carol_token).build())
        .await;
    assert_eq!(
        r.expect(404),
        &json!({"detail": "nope organization does not exist."})
    );
    let r = t
        .call(
            list,
            get("/api/users?org=acme&org_id=1")
                .token(&carol_token)
                .build(),
        )
        .await;
    assert!(r.expect(400)[0].as_str().unwrap().contains("org_id"));
    let r = t
        .call(
            list,
            get("/api/users?org=acme")
                .header("x-organization", "other")
                .token(&carol_token)
                .build(),
        )
        .await;
    r.expect(400);
    // `org=` (empty): users with no memberships; carol has none.
    let r = t
        .call(list, get("/api/users?org=").token(&carol_token).build())
        .await;
    assert_eq!(usernames(r.expect(200)), ["carol"]);
}

#[tokio::test]
async fn patch_checks_each_key_and_validates_like_drf() {
    let t = TestTable::new().await;
    let admin = t.admin("root").await;
    let at = t.token(&admin).await;
    let bob = t.user("bob").await;
    let alice = t.user("alice").await;
    let bt = t.token(&bob).await;
    let bob_path = format!("/api/users/{}", bob.id);
    let alice_path = format!("/api/users/{}", alice.id);

    let r = t
        .call(
            partial_update,
            patch(
                &bob_path,
                &json!({"first_name": "Robert", "username": "rob"}),
            )
            .token(&bt)
            .build(),
        )
        .await;
    let body = r.expect(200);
    assert_eq!(body["first_name"], "Robert");
    assert_eq!(body["username"], "rob");
    let stored = t.fresh(bob.id).await;
    assert_eq!(
        (stored.username.as_str(), stored.version),
        ("rob", bob.version + 2)
    );
    // The old name is free again, the new one is claimed.
    assert_eq!(
        t.store
            .claim_owner(UniqueField::Username, "bob")
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        t.store
            .claim_owner(UniqueField::Username, "ROB")
            .await
            .unwrap(),
        Some(bob.id)
    );

    let denied: Vec<(String, Value, &str)> = vec![
        (
            bob_path.clone(),
            json!({"email": "x@example.org"}),
            "You do not have permission to perform this action.",
        ),
        (
            bob_path.clone(),
            json!({"is_staff": true}),
            "You do not have permission to perform this action.",
        ),
        (
            bob_path.clone(),
            json!({"password": "x"}),
            "Attempted to update an unknown field",
        ),
        (
            alice_path.clone(),
            json!({"first_name": "x"}),
            "You do not have permission to perform this action.",
        ),
    ];
    for (path, body, detail) in denied {
        let r = t
            .call(partial_update, patch(&path, &body).token(&bt).build())
            .await;
        assert_eq!(r.expect(403), &json!({ "detail": detail }), "{body}");
    }
    let r = t
        .call(
            partial_update,
            patch(&alice_path, &json!({"id": 5})).token(&at).build(),
        )
        .await;
    assert_eq!(
        r.expect(403)["detail"],
        "Attempted to update an unknown field"
    );

    let invalid: Vec<(Value, Value)> = vec![
        (
            json!({"username": "Rob"}),
            json!({"username": ["A user with that username already exists."]}),
        ),
        (
            json!({"username": "a b"}),
            json!({"username": ["Enter a valid username. This value may contain only letters, numbers, and @/./+/-/_ characters."]}),
        ),
        (
            json!({"email": "BOB@example.org"}),
            json!({"email": ["A user with that email already exists."]}),
        ),
        (
            json!({"email": "nope"}),
            json!({"email": ["Enter a valid email address."]}),
        ),
        (
            json!({"groups": ["nosuch"]}),
            json!({"groups": ["Object with name=nosuch does not exist."]}),
        ),
        (
            json!({"is_active": "maybe"}),
            json!({"is_active": ["Must be a valid boolean."]}),
        ),
    ];
    for (body, errors) in invalid {
        let r = t
            .call(partial_update, patch(&alice_path, &body).token(&at).build())
            .await;
        assert_eq!(r.expect(400), &errors, "{body}");
    }
    assert_eq!(
        t.fresh(alice.id).await,
        alice,
        "failed PATCHes write nothing"
    );

    let r = t
        .call(
            partial_update,
            patch(
                &alice_path,
                &json!({"email": "Alice@New.org", "groups": ["worker"], "is_active": false}),
            )
            .token(&at)
            .build(),
        )
        .await;
    let body = r.expect(200);
    assert_eq!(body["email"], "Alice@New.org");
    assert_eq!(body["groups"], json!(["worker"]));
    assert_eq!(
        t.store
            .claim_owner(UniqueField::Email, "alice@new.org")
            .await
            .unwrap(),
        Some(alice.id)
    );
    assert_eq!(
        t.store
            .claim_owner(UniqueField::Email, "alice@example.org")
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn malformed_requests_get_drf_errors() {
    let t = TestTable::new().await;
    let bob = t.user("bob").await;
    let bt = t.token(&bob).await;
    let path = format!("/api/users/{}", bob.id);

    let r = t
        .call(
            partial_update,
            Req::new(Method::PATCH, &path)
                .header("content-type", "application/json")
                .raw_body("notjson")
                .token(&bt)
                .build(),
        )
        .await;
    assert!(r.expect(400)["detail"]
        .as_str()
        .unwrap()
        .starts_with("JSON parse error - "));

    let r = t
        .call(
            partial_update,
            Req::new(Method::PATCH, &path)
                .header("content-type", "text/plain")
                .raw_body("x")
                .token(&bt)
                .build(),
        )
        .await;
    assert_eq!(
        r.expect(415),
        &json!({"detail": "Unsupported media type \"text/plain\" in request."})
    );

    let big = format!("{{\"first_name\": \"{}\"}}", "x".repeat(1024 * 1024));
    let r = t
        .call(
            partial_update,
            Req::new(Method::PATCH, &path)
                .header("content-type", "application/json")
                .raw_body(&big)
                .token(&bt)
                .build(),
        )
        .await;
    r.expect(413);

    let r = t
        .call(
            retrieve_self,
            get("/api/users/self")
                .header("accept", "text/html")
                .token(&bt)
                .build(),
        )
        .await;
    assert_eq!(
        r.expect(406),
        &json!({"detail": "Could not satisfy the request Accept header."})
    );
    let r = t
        .call(
            retrieve_self,
            get("/api/users/self")
                .header("accept", "application/vnd.cvat+json; version=3.0")
                .token(&bt)
                .build(),
        )
        .await;
    assert_eq!(
        r.expect(406),
        &json!({"detail": "Invalid version in \"Accept\" header."})
    );
    for accept in [
        "application/vnd.cvat+json; version=2.0",
        "application/json",
        "*/*",
    ] {
        let r = t
            .call(
                retrieve_self,
                get("/api/users/self")
                    .header("accept", accept)
                    .token(&bt)
                    .build(),
            )
            .await;
        r.expect(200);
    }

    let r = t
        .call(fallback, Req::new(Method::PUT, &path).token(&bt).build())
        .await;
    assert_eq!(
        r.expect(405),
        &json!({"detail": "Method \"PUT\" not allowed."})
    );
    assert_eq!(r.header("allow"), Some("GET, PATCH, DELETE"));
    let r = t
        .call(
            fallback,
            Req::new(Method::POST, "/api/users").token(&bt).build(),
        )
        .await;
    assert_eq!(
        r.expect(405),
        &json!({"detail": "Method \"POST\" not allowed."})
    );
    let r = t.call(fallback, Req::new(Method::PUT, &path).build()).await;
    r.expect(401);
    let r = t.call(fallback, get("/api/nothing/here").build()).await;
    assert_eq!(r.expect(404), &json!({"detail": "Not found."}));
}

#[tokio::test]
async fn read_only_tokens_cannot_write() {
    let t = TestTable::new().await;
    let bob = t.user("bob").await;
    let ro = t
        .token_with(
            &bob,
            TokenSpec {
                read_only: true,
                expires_at: None,
            },
        )
        .await;
    let path = format!("/api/users/{}", bob.id);
    t.call(retrieve, get(&path).token(&ro).build())
        .await
        .expect(200);
    t.call(
        partial_update,
        patch(&path, &json!({"first_name": "x"})).token(&ro).build(),
    )
    .await
    .expect(403);
    t.call(destroy, delete(&path).token(&ro).build())
        .await
        .expect(403);
    assert_eq!(t.fresh(bob.id).await.first_name, "First bob");
}

#[tokio::test]
async fn delete_cascades_to_claims_tokens_and_memberships() {
    let t = TestTable::new().await;
    let admin = t.admin("root").await;
    let at = t.token(&admin).await;
    let bob = t.user("bob").await;
    let bt = t.token(&bob).await;
    let org = t.store.create_org("acme", "Acme").await.unwrap();
    t.store
        .add_member(&org, &t.fresh(bob.id).await, "worker")
        .await
        .unwrap();
    let alice = t.user("alice").await;
    let alice_token = t.token(&alice).await;
    let path = format!("/api/users/{}", bob.id);

    // Another user may not delete bob; bob may delete himself, admins anyone.
    t.call(destroy, delete(&path).token(&alice_token).build())
        .await
        .expect(403);
    let r = t.call(destroy, delete(&path).token(&at).build()).await;
    r.expect(204);
    assert!(r.raw.is_empty());

    assert!(t.store.get_user(bob.id).await.unwrap().is_none());
    assert!(t.items_with_prefix("USERNAME#bob").await.is_empty());
    assert!(t.items_with_prefix("EMAIL#bob@").await.is_empty());
    assert_eq!(
        t.items_with_prefix("TOKEN#").await.len(),
        2,
        "only root's and alice's tokens remain"
    );
    assert!(t
        .items_with_prefix("ORG#acme")
        .await
        .iter()
        .all(|i| i["sk"].as_s().unwrap() == "ORG"));
    t.call(retrieve_self, get("/api/users/self").token(&bt).build())
        .await
        .expect(401);
    t.call(retrieve, get(&path).token(&at).build())
        .await
        .expect(404);
    t.call(destroy, delete(&path).token(&at).build())
        .await
        .expect(404);
    let counts = t.store.user_counts().await.unwrap();
    assert_eq!((counts.total, counts.active), (2, 2));

    // The name can be taken again.
    t.user("bob").await;
    let r = t
        .call(
            destroy,
            delete(&format!("/api/users/{}", alice.id))
                .token(&alice_token)
                .build(),
        )
        .await;
    r.expect(204);
}

#[tokio::test]
async fn a_user_with_more_tokens_and_memberships_than_one_transaction_holds_is_deleted_whole() {
    let t = TestTable::new().await;
    let admin = t.admin("root").await;
    let at = t.token(&admin).await;
    let bob = t.user("bob").await;
    // 100 actions is DynamoDB's limit per transaction; bob needs 130 deletes.
    for i in 0..6 {
        let org = t.store.create_org(&format!("org{i}"), "Org").await.unwrap();
        t.store
            .add_member(&org, &t.fresh(bob.id).await, "worker")
            .await
            .unwrap();
    }
    for _ in 0..120 {
        t.token(&bob).await;
    }
    assert_eq!(t.items_with_prefix("TOKEN#").await.len(), 121);

    t.call(
        destroy,
        delete(&format!("/api/users/{}", bob.id)).token(&at).build(),
    )
    .await
    .expect(204);
    assert!(t.store.get_user(bob.id).await.unwrap().is_none());
    assert_eq!(
        t.items_with_prefix("TOKEN#").await.len(),
        1,
        "only root's token"
    );
    assert!(t.items_with_prefix("USERNAME#bob").await.is_empty());
    assert!(t
        .items_with_prefix("ORG#")
        .await
        .iter()
        .all(|i| i["sk"].as_s().unwrap() == "ORG"));
    let counts = t.store.user_counts().await.unwrap();
    assert_eq!((counts.total, counts.active), (1, 1));
}

#[tokio::test]
async fn a_missing_claim_does_not_make_a_user_undeletable() {
    let t = TestTable::new().await;
    let admin = t.admin("root").await;
    let at = t.token(&admin).await;
    let bob = t.user("bob").await;
    // A claim lost to a hand edit or an old bug.
    t.store
        .client()
        .delete_item()
        .table_name(t.store.table())
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S("EMAIL#bob@example.org".into()),
        )
        .key(
            "sk",
            aws_sdk_dynamodb::types::AttributeValue::S("CLAIM".into()),
        )
        .send()
        .await
        .unwrap();
    t.call(
        destroy,
        delete(&format!("/api/users/{}", bob.id)).token(&at).build(),
    )
    .await
    .expect(204);
    assert!(t.store.get_user(bob.id).await.unwrap().is_none());
    assert!(t.items_with_prefix("USERNAME#bob").await.is_empty());
}

#[tokio::test]
async fn concurrent_renames_to_one_username_have_one_winner() {
    let t = TestTable::new().await;
    let admin = t.admin("root").await;
    let at = t.token(&admin).await;
    let one = t.user("one").await;
    let two = t.user("two").await;
    let requests = [one.id, two.id].map(|id| {
        t.call(
            partial_update,
            patch(&format!("/api/users/{id}"), &json!({"username": "Winner"}))
                .token(&at)
                .build(),
        )
    });
    let [a, b] = requests;
    let (a, b) = tokio::join!(a, b);
    let mut statuses = [a.status.as_u16(), b.status.as_u16()];
    statuses.sort();
    assert_eq!(statuses, [200, 400], "{} / {}", a.raw, b.raw);
    let loser = if a.status == 400 { &a } else { &b };
    assert_eq!(
        loser.body,
        json!({"username": ["A user with that username already exists."]})
    );

    let winner_id = t
        .store
        .claim_owner(UniqueField::Username, "winner")
        .await
        .unwrap()
        .unwrap();
    let users = t.store.all_users().await.unwrap();
    let winners: Vec<_> = users.iter().filter(|u| u.username == "Winner").collect();
    assert_eq!(winners.len(), 1);
    assert_eq!(winners[0].id, winner_id);
    // Exactly one claim per user: nothing orphaned, nothing missing.
    assert_eq!(t.items_with_prefix("USERNAME#").await.len(), users.len());
    for u in &users {
        assert_eq!(
            t.store
                .claim_owner(UniqueField::Username, &u.username)
                .await
                .unwrap(),
            Some(u.id)
        );
    }
}

#[tokio::test]
async fn concurrent_email_changes_of_one_user_are_never_false_conflicts() {
    let t = TestTable::new().await;
    let admin = t.admin("root").await;
    let at = t.token(&admin).await;
    let bob = t.user("bob").await;
    let path = format!("/api/users/{}", bob.id);
    let requests: Vec<_> = (0..8)
        .map(|i| {
            let body = json!({"email": format!("bob{i}@example.org")});
            t.call(partial_update, patch(&path, &body).token(&at).build())
        })
        .collect();
    let replies = futures::future::join_all(requests).await;
    for r in &replies {
        // Lost races are retried on a fresh read; only a retry budget spent is a 409.
        assert!(
            matches!(r.status.as_u16(), 200 | 409),
            "{} {}",
            r.status,
            r.raw
        );
        assert!(
            r.body.get("email").is_some() || r.status == 409,
            "{}",
            r.raw
        );
    }
    assert!(replies.iter().any(|r| r.status == 200));
    let stored = t.fresh(bob.id).await;
    assert!(stored.email.starts_with("bob") && stored.email.ends_with("@example.org"));
    // Exactly the current email is claimed, by bob.
    let claims = t.items_with_prefix("EMAIL#bob").await;
    assert_eq!(claims.len(), 1, "{claims:?}");
    assert_eq!(
        t.store
            .claim_owner(UniqueField::Email, &stored.email)
            .await
            .unwrap(),
        Some(bob.id)
    );
}
