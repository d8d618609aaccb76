//! `/api/users` end to end in-process: each handler against DynamoDB Local.
use directory::admin_api::list_query::ListQuery;
use directory::admin_api::{
    destroy, fallback, list, list_with, partial_update, retrieve, retrieve_self, ListOptions,
};
use directory::domain::user::{rules, Group, User};
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
    // The deactivation revoked the token (see
    // `deactivation_revokes_every_credential_for_good`).
    let r = t
        .call(retrieve_self, get("/api/users/self").token(&token).build())
        .await;
    assert_eq!(r.expect(401)["detail"], "Invalid token.");
    // A token that exists for an inactive user (issued by an operator) is still refused.
    let issued_later = t.token(&bob).await;
    let r = t
        .call(
            retrieve_self,
            get("/api/users/self").token(&issued_later).build(),
        )
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

    // A missing id is a 404 for an admin only: to anyone else it is one more
    // user they may not see.
    for path in ["/api/users/999999", "/api/users/abc"] {
        let r = t.call(retrieve, get(path).token(&at).build()).await;
        assert_eq!(r.expect(404), &json!({"detail": "Not found."}));
        let r = t.call(retrieve, get(path).token(&bt).build()).await;
        assert_eq!(r.expect(403), other.expect(403), "{path}");
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
        r.dynamodb_calls, 3,
        "auth and the bucket counts side by side, then one query"
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
    // The auth read and the counts (read alongside, before the caller is known).
    assert_eq!(r.dynamodb_calls, 2);

    let org = t.store.groups().create_org("acme", "Acme").await.unwrap();
    t.store
        .groups()
        .add_member(&org, &t.fresh(bob.id).await, "worker")
        .await
        .unwrap();
    t.store
        .groups()
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

    // An org member may view the other members in that context, in the basic
    // shape; a user outside the org stays hidden.
    let r = t
        .call(
            retrieve,
            get(&format!("/api/users/{}?org=acme", alice.id))
                .token(&token)
                .build(),
        )
        .await;
    let body = r.expect(200);
    assert_eq!(body["username"], "alice");
    assert!(body.get("email").is_none());
    let r = t
        .call(
            retrieve,
            get(&format!("/api/users/{}?org=acme", carol.id))
                .token(&token)
                .build(),
        )
        .await;
    assert_eq!(
        r.expect(403),
        &json!({"detail": "You do not have permission to perform this action."})
    );

    // An outsider naming an org that exists gets what a missing org gets:
    // a 403 here against the 404 below told anyone which slugs are taken.
    let carol_token = t.token(&carol).await;
    let r = t
        .call(list, get("/api/users?org=acme").token(&carol_token).build())
        .await;
    assert_eq!(
        r.expect(404),
        &json!({"detail": "acme organization does not exist."})
    );
    let r = t
        .call(
            retrieve,
            get(&format!("/api/users/{}?org=acme", carol.id))
                .token(&carol_token)
                .build(),
        )
        .await;
    assert_eq!(
        r.expect(404),
        &json!({"detail": "acme organization does not exist."})
    );
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
            .claims()
            .owner(UniqueField::Username, "bob")
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        t.store
            .claims()
            .owner(UniqueField::Username, "ROB")
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
            .claims()
            .owner(UniqueField::Email, "alice@new.org")
            .await
            .unwrap(),
        Some(alice.id)
    );
    assert_eq!(
        t.store
            .claims()
            .owner(UniqueField::Email, "alice@example.org")
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
    let org = t.store.groups().create_org("acme", "Acme").await.unwrap();
    t.store
        .groups()
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

    assert!(t.store.users().get(bob.id).await.unwrap().is_none());
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
    let counts = t.store.counts().totals().await.unwrap();
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
        let org = t
            .store
            .groups()
            .create_org(&format!("org{i}"), &format!("Org {i}"))
            .await
            .unwrap();
        t.store
            .groups()
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
    assert!(t.store.users().get(bob.id).await.unwrap().is_none());
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
    let counts = t.store.counts().totals().await.unwrap();
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
    assert!(t.store.users().get(bob.id).await.unwrap().is_none());
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
        .claims()
        .owner(UniqueField::Username, "winner")
        .await
        .unwrap()
        .unwrap();
    let users = t.store.users().all().await.unwrap();
    let winners: Vec<_> = users.iter().filter(|u| u.username == "Winner").collect();
    assert_eq!(winners.len(), 1);
    assert_eq!(winners[0].id, winner_id);
    // Exactly one claim per user: nothing orphaned, nothing missing.
    assert_eq!(t.items_with_prefix("USERNAME#").await.len(), users.len());
    for u in &users {
        assert_eq!(
            t.store
                .claims()
                .owner(UniqueField::Username, &u.username)
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
            .claims()
            .owner(UniqueField::Email, &stored.email)
            .await
            .unwrap(),
        Some(bob.id)
    );
}

// --- Issue 8: attack replays ------------------------------------------------------------

const NO_PERMISSION: &str = "You do not have permission to perform this action.";

/// A JSON Logic `filter=` query parameter for `rule`.
fn filter_param(rule: &Value) -> String {
    format!("filter={}", form(&rule.to_string()))
}

/// The attacker, a plain user, binary-searches another user's username through
/// `GET /api/users/{id}?filter=...`. The old code applied the filters before
/// the permission check: 403 when the filter matched, 404 when it did not (and
/// 404 for an id nobody has). Now every such request is the same 403.
#[tokio::test]
async fn filters_on_a_user_you_may_not_see_are_no_oracle() {
    let t = TestTable::new().await;
    let admin = t.admin("root").await;
    let at = t.token(&admin).await;
    let mallory = t.user("mallory").await;
    let mt = t.token(&mallory).await;
    let victim = t.user("kate").await;
    let path = format!("/api/users/{}", victim.id);

    let below_m = json!({"<": [{"var": "username"}, "m"]});
    let above_m = json!({">=": [{"var": "username"}, "m"]});
    let queries = [
        filter_param(&below_m),
        filter_param(&above_m),
        "search=kat".to_string(),
        "search=zzz".to_string(),
        "is_active=true".to_string(),
        "is_active=false".to_string(),
        "username=kate".to_string(),
        "username=nomatch".to_string(),
    ];
    for query in &queries {
        for target in [path.as_str(), "/api/users/999999"] {
            let r = t
                .call(
                    retrieve,
                    get(&format!("{target}?{query}")).token(&mt).build(),
                )
                .await;
            assert_eq!(
                r.expect(403),
                &json!({ "detail": NO_PERMISSION }),
                "{target}?{query}"
            );
        }
    }

    // Whoever may see the target still gets DRF's filtered lookup: no match is 404.
    let own = format!("/api/users/{}", mallory.id);
    let r = t
        .call(
            retrieve,
            get(&format!("{own}?{}", filter_param(&below_m)))
                .token(&mt)
                .build(),
        )
        .await;
    assert_eq!(r.expect(404), &json!({"detail": "Not found."}));
    let r = t
        .call(
            retrieve,
            get(&format!("{own}?{}", filter_param(&above_m)))
                .token(&mt)
                .build(),
        )
        .await;
    assert_eq!(r.expect(200)["username"], "mallory");
    let r = t
        .call(
            retrieve,
            get(&format!("{path}?{}", filter_param(&above_m)))
                .token(&at)
                .build(),
        )
        .await;
    assert_eq!(r.expect(404), &json!({"detail": "Not found."}));
    let r = t
        .call(
            retrieve,
            get(&format!("{path}?{}", filter_param(&below_m)))
                .token(&at)
                .build(),
        )
        .await;
    assert_eq!(r.expect(200)["username"], "kate");
}

/// The attacker probes which ids exist through PATCH and DELETE of other
/// users. The old code looked the id up first: 404 for a free id, 403 for a
/// taken one. Now both are 403, and only an admin learns that an id is free.
#[tokio::test]
async fn patch_and_delete_of_other_users_tell_nothing_about_their_ids() {
    let t = TestTable::new().await;
    let admin = t.admin("root").await;
    let at = t.token(&admin).await;
    let mallory = t.user("mallory").await;
    let mt = t.token(&mallory).await;
    let victim = t.user("kate").await;
    let taken = format!("/api/users/{}", victim.id);
    let free = "/api/users/999999";

    for path in [taken.as_str(), free, "/api/users/abc"] {
        let r = t
            .call(
                partial_update,
                patch(path, &json!({"first_name": "x"})).token(&mt).build(),
            )
            .await;
        assert_eq!(r.expect(403), &json!({ "detail": NO_PERMISSION }), "{path}");
        let r = t.call(destroy, delete(path).token(&mt).build()).await;
        assert_eq!(r.expect(403), &json!({ "detail": NO_PERMISSION }), "{path}");
    }
    assert_eq!(t.fresh(victim.id).await, victim, "nothing was written");

    let r = t
        .call(
            partial_update,
            patch(free, &json!({"first_name": "x"})).token(&at).build(),
        )
        .await;
    assert_eq!(r.expect(404), &json!({"detail": "Not found."}));
    let r = t.call(destroy, delete(free).token(&at).build()).await;
    assert_eq!(r.expect(404), &json!({"detail": "Not found."}));
}

/// A member of acme reads (and, through an empty PATCH, reads again) a user
/// who is not in acme by adding `?org=acme`. The old code only checked the
/// caller's membership: 200 with the outsider's record. Now it is the 403 a
/// missing id gets, in every org form (`org`, `org_id`, `X-Organization`).
#[tokio::test]
async fn an_org_member_cannot_read_outsiders_through_the_org() {
    let t = TestTable::new().await;
    let bob = t.user("bob").await;
    let bt = t.token(&bob).await;
    let alice = t.user("alice").await;
    let outsider = t.user("carol").await;
    let lapsed = t.user("dave").await;
    let org = t.store.groups().create_org("acme", "Acme").await.unwrap();
    for (user, role) in [
        (&bob, "worker"),
        (&alice, "maintainer"),
        (&lapsed, "worker"),
    ] {
        t.store
            .groups()
            .add_member(&org, &t.fresh(user.id).await, role)
            .await
            .unwrap();
    }
    // dave's membership is no longer active.
    let stored = t.fresh(lapsed.id).await;
    let mut inactive = stored.clone();
    inactive.memberships[0].is_active = false;
    t.store.users().update(&stored, inactive).await.unwrap();

    let org_forms = [
        ("?org=acme".to_string(), None),
        (format!("?org_id={}", org.id), None),
        (String::new(), Some("acme")),
    ];
    for (query, header) in &org_forms {
        let request = |id: u64| {
            let req = get(&format!("/api/users/{id}{query}")).token(&bt);
            match header {
                Some(slug) => req.header("x-organization", slug),
                None => req,
            }
        };
        let r = t.call(retrieve, request(alice.id).build()).await;
        assert_eq!(r.expect(200)["username"], "alice", "{query} {header:?}");
        let missing = t.call(retrieve, request(999_999).build()).await;
        assert_eq!(missing.expect(403), &json!({ "detail": NO_PERMISSION }));
        for hidden in [&outsider, &lapsed] {
            let r = t.call(retrieve, request(hidden.id).build()).await;
            assert_eq!(r.raw, missing.raw, "{} {query} {header:?}", hidden.username);
            assert_eq!(r.status, missing.status);
        }
    }

    // An empty PATCH used to answer with the outsider's record too.
    let r = t
        .call(
            partial_update,
            patch(&format!("/api/users/{}?org=acme", outsider.id), &json!({}))
                .token(&bt)
                .build(),
        )
        .await;
    assert_eq!(r.expect(403), &json!({ "detail": NO_PERMISSION }));
    let r = t
        .call(
            partial_update,
            patch(&format!("/api/users/{}?org=acme", alice.id), &json!({}))
                .token(&bt)
                .build(),
        )
        .await;
    assert_eq!(r.expect(200)["username"], "alice");
}

/// An org slug longer than a DynamoDB key holds, in `org=` or `X-Organization`.
/// Before issue 8 it reached DynamoDB, whose ValidationException was a 500.
/// Now it is a 400 in DRF's list format once the caller is authenticated, and
/// a 401 for a caller who is not.
#[tokio::test]
async fn an_oversized_org_slug_is_a_400_never_a_500() {
    let t = TestTable::new().await;
    let bob = t.user("bob").await;
    let bt = t.token(&bob).await;
    let slug = "o".repeat(3000);
    let want = json!(["org: Ensure this value has no more than 1024 bytes."]);
    let path = format!("/api/users/{}", bob.id);

    let by_param = |p: &str| get(&format!("{p}?org={slug}"));
    let by_header = |p: &str| get(p).header("x-organization", &slug);
    for build in [&by_param as &dyn Fn(&str) -> Req, &by_header] {
        let r = t.call(list, build("/api/users").token(&bt).build()).await;
        assert_eq!(r.expect(400), &want);
        let r = t.call(retrieve, build(&path).token(&bt).build()).await;
        assert_eq!(r.expect(400), &want);
        let r = t.call(list, build("/api/users").build()).await;
        r.expect(401);
    }
    let r = t
        .call(
            partial_update,
            patch(&format!("{path}?org={slug}"), &json!({"first_name": "x"}))
                .token(&bt)
                .build(),
        )
        .await;
    assert_eq!(r.expect(400), &want);
    let r = t
        .call(
            destroy,
            delete(&format!("{path}?org={slug}")).token(&bt).build(),
        )
        .await;
    assert_eq!(r.expect(400), &want);
    assert!(t.store.users().get(bob.id).await.unwrap().is_some());
}

/// A user the identity provider owns, renamed through the admin API (by
/// themselves or an admin), is no longer the IdP's: its ODM upsert of that
/// name must not adopt it. The old code had no such flag to clear.
#[tokio::test]
async fn renames_end_idp_ownership() {
    let t = TestTable::new().await;
    let admin = t.admin("root").await;
    let at = t.token(&admin).await;
    let owned = |name: &str| {
        let mut u = User::new(name);
        u.idp_owned = true;
        u.groups = vec![Group::User];
        u
    };
    let self_renamed = t.store.users().create(owned("sam")).await.unwrap();
    let admin_renamed = t.store.users().create(owned("ann")).await.unwrap();
    let untouched = t.store.users().create(owned("ida")).await.unwrap();
    assert!(self_renamed.idp_owned && admin_renamed.idp_owned && untouched.idp_owned);
    let st = t.token(&self_renamed).await;

    let r = t
        .call(
            partial_update,
            patch(
                &format!("/api/users/{}", self_renamed.id),
                &json!({"username": "samuel"}),
            )
            .token(&st)
            .build(),
        )
        .await;
    assert_eq!(r.expect(200)["username"], "samuel");
    assert!(!t.fresh(self_renamed.id).await.idp_owned);

    let r = t
        .call(
            partial_update,
            patch(
                &format!("/api/users/{}", admin_renamed.id),
                &json!({"username": "Anna"}),
            )
            .token(&at)
            .build(),
        )
        .await;
    r.expect(200);
    assert!(!t.fresh(admin_renamed.id).await.idp_owned);

    // A PATCH that leaves the username as it is keeps the ownership.
    let r = t
        .call(
            partial_update,
            patch(
                &format!("/api/users/{}", untouched.id),
                &json!({"username": "ida", "first_name": "Ida"}),
            )
            .token(&at)
            .build(),
        )
        .await;
    assert_eq!(r.expect(200)["first_name"], "Ida");
    let stored = t.fresh(untouched.id).await;
    assert_eq!(
        (stored.first_name.as_str(), stored.idp_owned),
        ("Ida", true)
    );
}

/// A leaver is deactivated through the admin API and later reactivated. The
/// old code kept their token and password: both worked again after the
/// reactivation. Now the deactivation revokes them for good.
#[tokio::test]
async fn deactivation_revokes_every_credential_for_good() {
    let t = TestTable::new().await;
    let admin = t.admin("root").await;
    let at = t.token(&admin).await;
    let leaver = t.user("leaver").await;
    let token = t.token(&leaver).await;
    t.with_password(&leaver, "old-pass-123").await;
    let path = format!("/api/users/{}", leaver.id);
    let by_token = || get("/api/users/self").token(&token).build();
    let by_password = || {
        get("/api/users/self")
            .basic("leaver", "old-pass-123")
            .build()
    };
    t.call(retrieve_self, by_token()).await.expect(200);
    t.call(retrieve_self, by_password()).await.expect(200);

    for active in [false, true] {
        let r = t
            .call(
                partial_update,
                patch(&path, &json!({ "is_active": active }))
                    .token(&at)
                    .build(),
            )
            .await;
        assert_eq!(r.expect(200)["is_active"], active);
        let r = t.call(retrieve_self, by_token()).await;
        assert_eq!(r.expect(401)["detail"], "Invalid token.", "active={active}");
        let r = t.call(retrieve_self, by_password()).await;
        assert_eq!(
            r.expect(401)["detail"],
            "Invalid username/password.",
            "active={active}"
        );
    }
    let stored = t.fresh(leaver.id).await;
    assert!(stored.is_active);
    assert_eq!(stored.password_hash, None);
    assert!(stored.token_hashes.is_empty() && stored.token_expiry.is_empty());
    assert_eq!(
        t.items_with_prefix("TOKEN#").await.len(),
        1,
        "only root's token is left"
    );
}

/// Usernames that only look like another: the Kelvin sign, fullwidth letters,
/// a Cyrillic letter among Latin ones, and a case-folded twin. The old code
/// accepted all four as new, distinct names.
#[tokio::test]
async fn lookalike_usernames_are_refused() {
    let t = TestTable::new().await;
    let admin = t.admin("root").await;
    let at = t.token(&admin).await;
    t.user("admin").await;
    t.user("straße").await;
    let bob = t.user("bob").await;
    let path = format!("/api/users/{}", bob.id);
    let cases = [
        ("\u{212A}im", rules::NOT_NORMALIZED),
        ("ａｄｍｉｎ", rules::NOT_NORMALIZED),
        ("\u{0430}dmin", rules::MIXED_SCRIPT),
        ("STRASSE", rules::USERNAME_TAKEN),
        ("Straße", rules::USERNAME_TAKEN),
    ];
    for (name, message) in cases {
        let r = t
            .call(
                partial_update,
                patch(&path, &json!({ "username": name }))
                    .token(&at)
                    .build(),
            )
            .await;
        assert_eq!(r.expect(400), &json!({ "username": [message] }), "{name}");
    }
    assert_eq!(t.fresh(bob.id).await, bob, "nothing was written");
}

/// A request forging `X-Forwarded-Host`/`-Proto` (to plant links to the
/// attacker's host in a victim's responses, or a cache). The old code built
/// every `url`, `next` and `previous` from them. Now they are ignored.
#[tokio::test]
async fn forged_forwarded_headers_do_not_reach_links() {
    let t = TestTable::new().await;
    let admin = t.admin("root").await;
    let at = t.token(&admin).await;
    let bob = t.user("bob").await;
    t.user("carol").await;
    let forged = |req: Req| {
        req.header("x-forwarded-host", "evil.example")
            .header("x-forwarded-proto", "https")
            .token(&at)
            .build()
    };

    let r = t
        .call(list, forged(get("/api/users?page_size=1&page=2&sort=id")))
        .await;
    let body = r.expect(200);
    assert_eq!(
        body["next"],
        "http://testserver/api/users?page=3&page_size=1&sort=id"
    );
    assert_eq!(
        body["previous"],
        "http://testserver/api/users?page_size=1&sort=id"
    );
    assert_eq!(
        body["results"][0]["url"],
        format!("http://testserver/api/users/{}", bob.id)
    );
    assert!(!r.raw.contains("evil.example"), "{}", r.raw);

    let r = t
        .call(retrieve, forged(get(&format!("/api/users/{}", bob.id))))
        .await;
    assert_eq!(
        r.expect(200)["url"],
        format!("http://testserver/api/users/{}", bob.id)
    );
    let r = t.call(retrieve_self, forged(get("/api/users/self"))).await;
    assert_eq!(
        r.expect(200)["url"],
        format!("http://testserver/api/users/{}", admin.id)
    );
}

/// The list handler with the planner on or off, and a page bound.
fn lister(
    plan: bool,
    max_page_bytes: usize,
) -> impl Fn(
    directory::http::Ctx,
    lambda_http::Request,
) -> std::pin::Pin<
    Box<dyn std::future::Future<Output = lambda_http::Response<lambda_http::Body>> + Send>,
> + Sync {
    move |ctx, req| {
        Box::pin(list_with(
            ctx,
            req,
            ListOptions {
                plan,
                max_page_bytes,
            },
        ))
    }
}

/// `n` plain users `u0`, `u1`, ... made a few at a time; returned in id order.
async fn many_users(t: &TestTable, n: usize) -> Vec<User> {
    use futures::StreamExt;
    let mut users: Vec<User> = futures::stream::iter(0..n)
        .map(|i| async move { t.user(&format!("u{i}")).await })
        .buffer_unordered(8)
        .collect()
        .await;
    users.sort_by_key(|u| u.id);
    users
}

/// A list that pins its users by username or id reads those, not the
/// directory: a few capacity units at 300 users where the full pass it used
/// to be grows with the table.
#[tokio::test]
async fn pinned_lists_read_only_their_users() {
    let t = TestTable::new().await;
    let admin = t.admin("root").await;
    let token = t.token(&admin).await;
    let users = many_users(&t, 300).await;
    let target = &users[150];
    let ask = |plan: bool, query: String| {
        let token = token.clone();
        let t = &t;
        async move {
            t.call(
                lister(plan, usize::MAX),
                get(&format!("/api/users?{query}")).token(&token).build(),
            )
            .await
        }
    };

    let by_name = [
        filter_param(&json!({"==": [{"var": "username"}, target.username]})),
        format!("username={}", target.username),
        // another filter `and`-ed with the pin changes nothing
        filter_param(&json!({"and": [
            {"in": ["u", {"var": "username"}]},
            {"==": [{"var": "username"}, target.username]},
        ]})),
    ];
    for query in &by_name {
        let planned = ask(true, query.clone()).await;
        let full = ask(false, query.clone()).await;
        assert_eq!(usernames(planned.expect(200)), [target.username.as_str()]);
        assert_eq!(planned.body, full.body, "{query}");
        // auth and the claim in one read, then the user
        assert_eq!(planned.dynamodb_calls, 2, "{query}");
        assert!(
            planned.capacity_units <= 5.0,
            "{query}: {}",
            planned.capacity_units
        );
        assert!(
            full.capacity_units > 2.0 * planned.capacity_units,
            "{query}: full pass {} vs {}",
            full.capacity_units,
            planned.capacity_units
        );
    }
    // a name nobody has: the claim read answers
    let r = ask(true, format!("username={}x", target.username)).await;
    assert_eq!(r.expect(200)["count"], 0);
    assert_eq!(r.dynamodb_calls, 1);
    // a case variant holds the claim but is not an exact match
    let r = ask(true, format!("username={}", target.username.to_uppercase())).await;
    assert_eq!(r.expect(200)["count"], 0);

    // ids: read with authentication
    let ids: Vec<u64> = users[10..13].iter().map(|u| u.id).collect();
    let query = format!(
        "sort=id&{}",
        filter_param(&json!({"in": [{"var": "id"}, ids]}))
    );
    let r = ask(true, query).await;
    assert_eq!(
        usernames(r.expect(200)),
        users[10..13]
            .iter()
            .map(|u| u.username.as_str())
            .collect::<Vec<_>>()
    );
    assert_eq!(r.dynamodb_calls, 1);

    // an id range of 10 users reads those 10 from GSI1
    let (low, high) = (users[100].id, users[109].id);
    let query = format!(
        "page_size=all&{}",
        filter_param(&json!({"and": [
            {">=": [{"var": "id"}, low]},
            {"<=": [{"var": "id"}, high]},
            {"var": "is_active"},
        ]}))
    );
    let planned = ask(true, query.clone()).await;
    let full = ask(false, query).await;
    assert_eq!(planned.expect(200)["count"], 10);
    assert_eq!(planned.body, full.body);
    assert_eq!(planned.dynamodb_calls, 2);
    // the auth read (token and caller, 1 each) and half a unit of index
    assert!(planned.capacity_units <= 3.0, "{}", planned.capacity_units);
    assert!(full.capacity_units > 3.0 * planned.capacity_units);
}

/// An org list reads the org's memberships and those users: with 300 users
/// and an org of 5, about 5 users, for a member and an admin alike.
#[tokio::test]
async fn org_lists_read_the_members_only() {
    let t = TestTable::new().await;
    let admin = t.admin("root").await;
    let at = t.token(&admin).await;
    let users = many_users(&t, 300).await;
    let org = t.store.groups().create_org("acme", "Acme").await.unwrap();
    let members: Vec<&User> = [3, 70, 150, 220, 299].iter().map(|&i| &users[i]).collect();
    for m in &members {
        t.store
            .groups()
            .add_member(&org, &t.fresh(m.id).await, "worker")
            .await
            .unwrap();
    }
    let mt = t.token(members[0]).await;
    let mut want: Vec<&str> = members.iter().map(|u| u.username.as_str()).collect();
    want.sort();
    for (who, token) in [("admin", &at), ("member", &mt)] {
        for query in [
            "org=acme&sort=username",
            "org_id=1&sort=username&page_size=all",
        ] {
            let call = |plan| {
                t.call(
                    lister(plan, usize::MAX),
                    get(&format!("/api/users?{query}")).token(token).build(),
                )
            };
            let planned = call(true).await;
            let full = call(false).await;
            assert_eq!(usernames(planned.expect(200)), want, "{who} {query}");
            assert_eq!(planned.body, full.body, "{who} {query}");
            // auth with the org, the memberships, the members
            assert_eq!(planned.dynamodb_calls, 3, "{who} {query}");
            assert!(
                planned.capacity_units <= 9.0,
                "{who} {query}: {}",
                planned.capacity_units
            );
            assert!(full.capacity_units > planned.capacity_units + 4.0);
        }
    }
    // a pin inside the org reads only the pinned user
    let query = format!(
        "org=acme&{}",
        filter_param(&json!({"==": [{"var": "username"}, members[2].username]}))
    );
    let r = t
        .call(list, get(&format!("/api/users?{query}")).token(&mt).build())
        .await;
    assert_eq!(usernames(r.expect(200)), [members[2].username.as_str()]);
    assert_eq!(r.dynamodb_calls, 2);
    // an outsider pinned inside the org is not in it
    let query = format!(
        "org=acme&{}",
        filter_param(&json!({"==": [{"var": "id"}, users[4].id]}))
    );
    let r = t
        .call(list, get(&format!("/api/users?{query}")).token(&mt).build())
        .await;
    assert_eq!(r.expect(200)["count"], 0);
}

/// A page larger than a Lambda response can carry is a 400 in DRF's shape
/// naming `page_size`, never a 500 and never a truncated body.
#[tokio::test]
async fn a_page_too_large_for_one_response_is_a_400() {
    let t = TestTable::new().await;
    let admin = t.admin("root").await;
    let token = t.token(&admin).await;
    many_users(&t, 12).await;
    let ask = |max: usize, query: &str| {
        t.call(
            lister(true, max),
            get(&format!("/api/users?{query}")).token(&token).build(),
        )
    };
    let everyone = ask(usize::MAX, "page_size=all").await;
    let body = everyone.expect(200).clone();
    assert_eq!(body["results"].as_array().unwrap().len(), 13);
    // the rows take a bit more than their JSON inside the Lambda response
    let rows = body["results"].to_string().len();
    for query in [
        "page_size=all",
        "page_size=all&sort=id",
        "page_size=1000000&sort=username",
        "page_size=all&search=u",
    ] {
        let r = ask(rows / 2, query).await;
        let err = r.expect(400);
        let message = err["page_size"][0]
            .as_str()
            .unwrap_or_else(|| panic!("{err}"));
        assert!(message.contains("page_size=<n>"), "{message}");
        assert_eq!(err.as_object().unwrap().len(), 1);
        serde_json::from_str::<Value>(&r.raw).expect("whole JSON");
    }
    // the bound holds rows as they travel: escaped quotes count
    let r = ask(rows, "page_size=all").await;
    r.expect(400);
    let r = ask(rows * 2, "page_size=all").await;
    assert_eq!(r.expect(200), &body);
    // ordinary pages are untouched by a bound they fit in
    let r = ask(rows / 2, "page_size=3").await;
    assert_eq!(r.expect(200)["results"].as_array().unwrap().len(), 3);
}

/// Deterministic random queries, each answered with the planner and by a
/// full pass over the directory: every answer (status and body) must match.
#[tokio::test]
async fn planned_lists_answer_exactly_like_a_full_pass() {
    use rand::{Rng, SeedableRng};
    let t = TestTable::new().await;
    let admin = t.admin("root").await;
    let mut people = Vec::new();
    let names = ["ann", "Bob", "cat", "dan", "Eve", "fay"];
    for i in 0..30 {
        let mut u = User::new(format!("{}{}", names[i % names.len()], i / names.len()));
        u.first_name = ["Ann", "bo", "Cy", ""][i % 4].into();
        u.last_name = ["Smith", "Jones", "smith"][i % 3].into();
        u.email = format!("p{i}@example.org");
        u.is_active = i % 5 != 0;
        u.groups = vec![Group::User];
        people.push(t.store.users().create(u).await.unwrap());
    }
    let acme = t.store.groups().create_org("acme", "Acme").await.unwrap();
    let beta = t.store.groups().create_org("beta", "Beta").await.unwrap();
    for (i, p) in people.iter().enumerate() {
        for (org, every) in [(&acme, 3), (&beta, 4)] {
            if i % every == 1 {
                t.store
                    .groups()
                    .add_member(org, &t.fresh(p.id).await, "worker")
                    .await
                    .unwrap();
            }
        }
    }
    let member = t.fresh(people[1].id).await; // in acme
    let outsider = t.fresh(people[2].id).await; // in no org
    let tokens = [
        t.token(&admin).await,
        t.token(&member).await,
        t.token(&outsider).await,
    ];
    let max_id = people.last().unwrap().id;
    let mut rng = rand::rngs::StdRng::seed_from_u64(9);
    let (mut pinned, mut nonempty) = (0, 0);
    for round in 0..200 {
        let params = random_params(&mut rng, &people, max_id);
        let query = params
            .iter()
            .map(|(k, v)| format!("{k}={}", form(v)))
            .collect::<Vec<_>>()
            .join("&");
        let token = &tokens[rng.gen_range(0..tokens.len())];
        let call = |plan| {
            t.call(
                lister(plan, usize::MAX),
                get(&format!("/api/users?{query}")).token(token).build(),
            )
        };
        let planned = call(true).await;
        let full = call(false).await;
        assert_eq!(
            (planned.status, &planned.body),
            (full.status, &full.body),
            "round {round}: {query}"
        );
        if let Ok(q) = ListQuery::parse(&params, None) {
            pinned += usize::from(!q.read_plan().is_unpinned());
        }
        nonempty += usize::from(planned.body["count"].as_u64().is_some_and(|c| c > 0));
    }
    // the comparison means something only if the planner was used and
    // lists found people
    assert!(pinned >= 100, "only {pinned} pinned queries");
    assert!(nonempty >= 50, "only {nonempty} non-empty lists");
}

fn random_params(rng: &mut impl rand::Rng, people: &[User], max_id: u64) -> Vec<(String, String)> {
    let mut params = Vec::new();
    let mut add = |k: &str, v: String| params.push((k.to_string(), v));
    if rng.gen_bool(0.85) {
        add("filter", random_rule(rng, people, max_id, 0).to_string());
    }
    if rng.gen_bool(0.2) {
        add("username", random_username(rng, people));
    }
    if rng.gen_bool(0.2) {
        add(
            "search",
            ["an", "SMITH", "bo", "1", "zz", "cy j"][rng.gen_range(0..6)].into(),
        );
    }
    if rng.gen_bool(0.15) {
        add("is_active", ["true", "false"][rng.gen_range(0..2)].into());
    }
    if rng.gen_bool(0.7) {
        let sorts = [
            "id",
            "-id",
            "username",
            "-last_name,username",
            "first_name,-id",
            "is_active",
        ];
        add("sort", sorts[rng.gen_range(0..sorts.len())].into());
    }
    match rng.gen_range(0..8) {
        0 => add("org", "acme".into()),
        1 => add("org", "beta".into()),
        2 => add("org", String::new()),
        3 => add("org_id", "1".into()),
        4 => add("org", "nope".into()),
        _ => {}
    }
    match rng.gen_range(0..6) {
        0 => add("page_size", "all".into()),
        1 => add("page_size", "3".into()),
        2 => {
            add("page_size", "2".into());
            add("page", ["2", "last", "9"][rng.gen_range(0..3)].into());
        }
        _ => {}
    }
    params
}

/// An existing username, a case variant of one, or nobody's.
fn random_username(rng: &mut impl rand::Rng, people: &[User]) -> String {
    let name = &people[rng.gen_range(0..people.len())].username;
    match rng.gen_range(0..4) {
        0 => name.to_uppercase(),
        1 => format!("{name}x"),
        _ => name.clone(),
    }
}

fn random_id(rng: &mut impl rand::Rng, max_id: u64) -> i64 {
    rng.gen_range(-2..max_id as i64 + 3)
}

fn random_rule(rng: &mut impl rand::Rng, people: &[User], max_id: u64, depth: u32) -> Value {
    let leaf = depth >= 2 || rng.gen_bool(0.5);
    if !leaf {
        let n = rng.gen_range(1..4);
        let children: Vec<Value> = (0..n)
            .map(|_| random_rule(rng, people, max_id, depth + 1))
            .collect();
        return match rng.gen_range(0..5) {
            0 | 1 => json!({"and": children}),
            2 | 3 => json!({"or": children}),
            _ => json!({"!": children[0]}),
        };
    }
    let ops = ["<", "<=", ">", ">="];
    match rng.gen_range(0..11) {
        0 | 1 => json!({"==": [{"var": "username"}, random_username(rng, people)]}),
        2 => json!({"==": [{"var": "id"}, random_id(rng, max_id)]}),
        3 => {
            let ids: Vec<i64> = (0..rng.gen_range(0..5))
                .map(|_| random_id(rng, max_id))
                .collect();
            json!({"in": [{"var": "id"}, ids]})
        }
        4 => {
            let names: Vec<String> = (0..rng.gen_range(0..4))
                .map(|_| random_username(rng, people))
                .collect();
            json!({"in": [{"var": "username"}, names]})
        }
        5 | 6 => {
            let op = ops[rng.gen_range(0..4)];
            json!({ op: [{"var": "id"}, random_id(rng, max_id)] })
        }
        7 => json!({"<=": [random_id(rng, max_id), {"var": "id"}, random_id(rng, max_id)]}),
        8 => json!({"==": [{"var": "is_active"}, rng.gen_bool(0.5)]}),
        9 => {
            let sub = ["an", "o", "1"][rng.gen_range(0..3)];
            json!({"in": [sub, {"var": "username"}]})
        }
        _ => match rng.gen_range(0..3) {
            0 => json!({"==": [{"var": "last_name"}, "Smith"]}),
            1 => json!({"var": "first_name"}),
            _ => json!({"==": [{"var": "first_name"}, null]}),
        },
    }
}

/// The capacity of one pass over GSI1 (every user read once, in full).
async fn gsi1_pass(t: &TestTable) -> f64 {
    let reader = directory::store::Store::new(t.store.client().clone(), t.store.table());
    reader.users().all().await.unwrap();
    reader.metrics().capacity_units()
}

/// `search`, a sort by name and filters on names pass over the search index
/// (ids and the four searchable fields), not over GSI1, and then read only
/// their page's users: about a third of the units of the pass they used to
/// be. A page that is large against the directory reads GSI1 instead, and
/// answers the same.
#[tokio::test]
async fn searches_and_sorts_pass_over_the_search_index() {
    let t = TestTable::new().await;
    let admin = t.admin("root").await;
    let at = t.token(&admin).await;
    let users: Vec<User> = (0..400)
        .map(|i| {
            let mut u = User::new(format!("member{i:04}"));
            u.first_name = format!("First{}", i % 37);
            u.last_name = format!("Last{}", i % 11);
            u.email = format!("member{i:04}@example.org");
            u.is_active = i % 9 != 4;
            u.groups = vec![Group::User];
            u
        })
        .collect();
    t.store.users().import(users).await.unwrap();
    let floor = gsi1_pass(&t).await;
    let listing = |q: &str| {
        t.call(
            lister(true, usize::MAX),
            get(&format!("/api/users?{q}")).token(&at).build(),
        )
    };
    let unplanned = |q: &str| {
        t.call(
            lister(false, usize::MAX),
            get(&format!("/api/users?{q}")).token(&at).build(),
        )
    };
    for q in [
        "search=member0321",
        "sort=username&page_size=10&page=7",
        "sort=-last_name,first_name&page_size=25",
        &format!(
            "filter={}",
            form(
                r#"{"and":[{"==":[{"var":"last_name"},"Last3"]},{"==":[{"var":"is_active"},false]}]}"#
            )
        ),
    ] {
        let r = listing(q).await;
        let full = unplanned(q).await;
        assert_eq!(r.expect(200), full.expect(200), "{q}");
        let page = r.body["results"].as_array().unwrap().len() as f64;
        // Authentication (1), a third of a GSI1 pass or less, half a unit per user shown.
        assert!(
            r.capacity_units <= 1.0 + floor / 2.5 + 0.5 * page,
            "{q}: {} units; a GSI1 pass is {floor}",
            r.capacity_units
        );
    }
    // A page of every user: reading 401 users one by one would cost more
    // than the pass over GSI1, so it is that pass (plus the search index's).
    let q = "sort=username&page_size=all";
    let r = listing(q).await;
    assert_eq!(r.expect(200), unplanned(q).await.expect(200));
    assert_eq!(r.body["count"], 401);
    assert!(r.capacity_units <= 1.0 + floor + floor / 2.5 + 1.0);
}

/// A table made before the search and modified indexes existed gets them
/// from `usersctl table create` (`table::add_missing_indexes`), one at a time,
/// filled from its items.
#[tokio::test]
async fn an_older_table_gets_the_search_index_added() {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType,
        Projection, ProjectionType, ScalarAttributeType,
    };
    use directory::store::table;
    let t = TestTable::new().await;
    let client = t.store.client().clone();
    // The table as `usersctl table create` made it before: GSI1 only.
    let old = format!("{}-old", t.store.table());
    let attr = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .unwrap()
    };
    let key = |name: &str, kind: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
            .unwrap()
    };
    client
        .create_table()
        .table_name(&old)
        .billing_mode(BillingMode::PayPerRequest)
        .set_attribute_definitions(Some(
            [table::PK, table::SK, table::GSI1_PK, table::GSI1_SK]
                .map(attr)
                .to_vec(),
        ))
        .key_schema(key(table::PK, KeyType::Hash))
        .key_schema(key(table::SK, KeyType::Range))
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(table::GSI1)
                .key_schema(key(table::GSI1_PK, KeyType::Hash))
                .key_schema(key(table::GSI1_SK, KeyType::Range))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::Include)
                        .set_non_key_attributes(Some(
                            table::GSI1_PROJECTED
                                .iter()
                                .map(|a| a.to_string())
                                .collect(),
                        ))
                        .build(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let t = TestTable {
        store: directory::store::Store::new(client.clone(), old.clone()),
        profile: t.profile,
    };
    let admin = t.admin("root").await;
    let at = t.token(&admin).await;
    t.user("bob").await;

    // One new index at a time: the search index first, the modified and the
    // tenant index once DynamoDB has built it (until then they are named as
    // pending). An idle DynamoDB Local may finish the first at once and take
    // the next in the same run; a busy one refuses it.
    let added = table::add_missing_indexes(&client, &old).await.unwrap();
    assert_eq!(added.added.first(), Some(&table::SEARCH_INDEX));
    let named: Vec<_> = added.added.iter().chain(&added.pending).copied().collect();
    assert_eq!(
        named,
        vec![
            table::SEARCH_INDEX,
            table::MODIFIED_INDEX,
            table::TENANT_INDEX
        ]
    );
    let again = table::add_missing_indexes(&client, &old).await.unwrap();
    let still: Vec<_> = again.added.iter().chain(&again.pending).copied().collect();
    let want: Vec<&str> = added.pending.clone();
    assert_eq!(
        still, want,
        "the second run names only what the first left pending"
    );
    // Filled from the users already there.
    let r = t
        .call(list, get("/api/users?search=bob").token(&at).build())
        .await;
    assert_eq!(r.expect(200)["count"], 1);
    // DynamoDB Local counts tables with an index being added (at most 5).
    client.delete_table().table_name(&old).send().await.unwrap();
}
