//! The OAuth 2.0 token endpoint (`POST /api/v1/oauth/token`, RFC 6749
//! §4.4) against DynamoDB Local: the grant with HTTP Basic and with form
//! parameters, the access token under its org's SCIM base and nowhere else,
//! expiry, revocation of the client, every RFC 6749 error, the lockout of a
//! client id, and what each costs.
use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine;
use directory::admin_api;
use directory::http::Ctx;
use directory::oauth;
use directory::scim::{self, groups, GROUP_SCHEMA, USER_SCHEMA};
use directory::store::{table, Org, TokenSpec};
use directory_tests::{scim as scim_req, Reply, Req, TestTable};
use lambda_http::http::Method;
use lambda_http::Request;
use serde_json::{json, Value};

const TOKEN_PATH: &str = "/api/v1/oauth/token";
const FORM: &str = "application/x-www-form-urlencoded";

/// A table with orgs `acme` and `beta`, an OAuth client of acme, and the
/// org's own SCIM token to compare the access token with.
struct World {
    t: TestTable,
    acme: Org,
    client_id: String,
    secret: String,
    scim_token: String,
}

impl World {
    async fn new() -> World {
        let t = TestTable::new().await;
        let acme = t.store.groups().create_org("acme", "Acme").await.unwrap();
        t.store.groups().create_org("beta", "Beta").await.unwrap();
        let org = t.store.tenants().get("acme").await.unwrap().unwrap();
        let (client_id, secret) = oauth::new_client(&t.store, &org, false).await.unwrap();
        let spec = TokenSpec {
            read_only: false,
            expires_at: None,
        };
        let scim_token = directory::auth::mint_tenant_token(&t.store, &org, &spec)
            .await
            .unwrap();
        World {
            t,
            acme,
            client_id,
            secret,
            scim_token,
        }
    }

    async fn post(&self, req: Req) -> Reply {
        self.t.call(oauth::token, req.build()).await
    }

    /// A grant with the client's credentials by HTTP Basic.
    async fn grant(&self) -> Reply {
        self.post(basic(
            form_req("grant_type=client_credentials"),
            &self.client_id,
            &self.secret,
        ))
        .await
    }

    async fn access_token(&self) -> String {
        self.grant().await.expect(200)["access_token"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// The token endpoint at `now` (epoch seconds), as if the clock said so.
    async fn grant_at(&self, now: i64) -> String {
        let ctx = Ctx::new(self.t.store.clone(), self.t.profile);
        let req = basic(
            form_req("grant_type=client_credentials"),
            &self.client_id,
            &self.secret,
        );
        let resp = oauth::token_at(&ctx, &req.build(), now).await.unwrap();
        let body: Value = match resp.body() {
            lambda_http::Body::Text(t) => serde_json::from_str(t).unwrap(),
            other => panic!("{other:?}"),
        };
        body["access_token"].as_str().unwrap().to_string()
    }

    /// The org item's attribute names that start with `prefix`.
    async fn org_attributes(&self, prefix: &str) -> Vec<String> {
        let items = self.t.items_with_prefix("ORG#acme").await;
        let org = items
            .iter()
            .find(|i| i.get("sk").and_then(|v| v.as_s().ok()).map(String::as_str) == Some("ORG"))
            .unwrap();
        org.keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect()
    }
}

fn form_req(body: &str) -> Req {
    Req::new(Method::POST, TOKEN_PATH)
        .header("content-type", FORM)
        .raw_body(body)
}

/// RFC 6749 §2.3.1: the id and secret are form-urlencoded, then Basic.
fn basic(req: Req, id: &str, secret: &str) -> Req {
    let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let pair =
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", enc(id), enc(secret)));
    req.header("authorization", &format!("Basic {pair}"))
}

fn bearer(token: &str, req: Req) -> Request {
    req.header("authorization", &format!("Bearer {token}"))
        .build()
}

/// What a client sees of an answer: status, body, the headers that matter.
fn seen(r: &Reply) -> (u16, String, Option<String>, Option<String>) {
    (
        r.status.as_u16(),
        r.raw.clone(),
        r.header("www-authenticate").map(str::to_string),
        r.header("retry-after").map(str::to_string),
    )
}

fn assert_no_store(r: &Reply) {
    assert_eq!(r.header("cache-control"), Some("no-store"), "{}", r.raw);
    assert_eq!(r.header("pragma"), Some("no-cache"), "{}", r.raw);
    assert_eq!(r.header("content-type"), Some("application/json"));
}

#[tokio::test]
async fn basic_and_form_grants_answer_rfc6749_tokens_in_three_calls() {
    let w = World::new().await;
    let r = w.grant().await;
    let body = r.expect(200);
    assert_no_store(&r);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body["scope"], "scim");
    let token = body["access_token"].as_str().unwrap();
    assert!(token.starts_with(&format!("org{}.", w.acme.id)), "{token}");
    let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["access_token", "token_type", "expires_in", "scope"]);
    assert_eq!(r.dynamodb_calls, 3, "the client, its org, the transaction");

    let form = format!(
        "grant_type=client_credentials&client_id={}&client_secret={}",
        w.client_id, w.secret
    );
    let r = w.post(form_req(&form)).await;
    r.expect(200);
    assert_eq!(r.dynamodb_calls, 3);
    // Only the hash is stored: neither the secret nor the token is in any item.
    let everything = format!("{:?}", w.t.items_with_prefix("").await);
    assert!(!everything.contains(&w.secret));
    assert!(!everything.contains(r.body["access_token"].as_str().unwrap()));
    // Scopes: scim:read gives a read-only token.
    let r = w
        .post(basic(
            form_req("grant_type=client_credentials&scope=scim%3Aread"),
            &w.client_id,
            &w.secret,
        ))
        .await;
    assert_eq!(r.expect(200)["scope"], "scim:read");
    let read_only = r.body["access_token"].as_str().unwrap().to_string();
    let user = json!({"schemas": [USER_SCHEMA], "userName": "ro@acme.example"});
    let refused =
        w.t.call(
            scim::create,
            bearer(
                &read_only,
                scim_req(Method::POST, "/api/v1/scim/orgs/acme/Users", &user),
            ),
        )
        .await;
    assert_eq!(refused.status.as_u16(), 403, "{}", refused.raw);
}

#[tokio::test]
async fn the_access_token_acts_as_the_org_token_under_its_base_and_nowhere_else() {
    let w = World::new().await;
    let access = w.access_token().await;
    let invalid = format!("org{}.{}", w.acme.id, "A".repeat(43));
    let list = "/api/v1/scim/orgs/acme/Users";
    let missing = "/api/v1/scim/orgs/acme/Users/999";
    let by_access =
        w.t.call(scim::list, bearer(&access, Req::new(Method::GET, list)))
            .await;
    let by_scim =
        w.t.call(
            scim::list,
            bearer(&w.scim_token, Req::new(Method::GET, list)),
        )
        .await;
    by_access.expect(200);
    assert_eq!(seen(&by_access), seen(&by_scim));
    assert_eq!(by_access.dynamodb_calls, by_scim.dynamodb_calls);
    let by_access =
        w.t.call(scim::get, bearer(&access, Req::new(Method::GET, missing)))
            .await;
    let by_scim =
        w.t.call(
            scim::get,
            bearer(&w.scim_token, Req::new(Method::GET, missing)),
        )
        .await;
    by_access.expect(404);
    assert_eq!(seen(&by_access), seen(&by_scim));
    // Authentication is the one batch read: a get of a missing user is 1 call.
    assert_eq!(by_access.dynamodb_calls, 1);
    assert_eq!(by_scim.dynamodb_calls, 1);
    // Elsewhere it is an invalid token: another org's base, the global base,
    // the admin API.
    for path in ["/api/v1/scim/orgs/beta/Users", "/api/v1/scim/Users"] {
        let by_access =
            w.t.call(scim::list, bearer(&access, Req::new(Method::GET, path)))
                .await;
        let by_invalid =
            w.t.call(scim::list, bearer(&invalid, Req::new(Method::GET, path)))
                .await;
        assert_eq!(by_access.status.as_u16(), 401, "{path}: {}", by_access.raw);
        assert_eq!(seen(&by_access), seen(&by_invalid), "{path}");
    }
    let me = "/api/users/self";
    let admin =
        w.t.call(
            admin_api::retrieve_self,
            bearer(&access, Req::new(Method::GET, me)),
        )
        .await;
    let admin_invalid =
        w.t.call(
            admin_api::retrieve_self,
            bearer(&invalid, Req::new(Method::GET, me)),
        )
        .await;
    assert_eq!(admin.status.as_u16(), 401, "{}", admin.raw);
    assert_eq!(seen(&admin), seen(&admin_invalid));
}

#[tokio::test]
async fn an_access_token_lives_one_hour() {
    let w = World::new().await;
    let now = chrono::Utc::now().timestamp();
    let path = "/api/v1/scim/orgs/acme/Users";
    let young = w.grant_at(now - 3590).await;
    let old = w.grant_at(now - 3601).await;
    let r =
        w.t.call(scim::list, bearer(&young, Req::new(Method::GET, path)))
            .await;
    r.expect(200);
    let r =
        w.t.call(scim::list, bearer(&old, Req::new(Method::GET, path)))
            .await;
    r.expect(401);
    let invalid = format!("org{}.{}", w.acme.id, "A".repeat(43));
    let wrong =
        w.t.call(scim::list, bearer(&invalid, Req::new(Method::GET, path)))
            .await;
    assert_eq!(
        seen(&r),
        seen(&wrong),
        "expired is refused as any wrong token is"
    );
    // The next grant drops the expired token from the org item.
    let before = w.org_attributes("scimtoken#").await.len();
    w.access_token().await;
    assert_eq!(w.org_attributes("scimtoken#").await.len(), before);
}

#[tokio::test]
async fn revoking_the_client_ends_its_grants_and_its_tokens() {
    let w = World::new().await;
    let first = w.access_token().await;
    let second = w.access_token().await;
    let path = "/api/v1/scim/orgs/acme/Users";
    for token in [&first, &second, &w.scim_token] {
        w.t.call(scim::list, bearer(token, Req::new(Method::GET, path)))
            .await
            .expect(200);
    }
    assert!(w
        .t
        .store
        .oauth_clients()
        .revoke(&w.client_id)
        .await
        .unwrap());
    for token in [&first, &second] {
        w.t.call(scim::list, bearer(token, Req::new(Method::GET, path)))
            .await
            .expect(401);
    }
    // The org's own SCIM token is not the client's.
    w.t.call(
        scim::list,
        bearer(&w.scim_token, Req::new(Method::GET, path)),
    )
    .await
    .expect(200);
    let r = w.grant().await;
    assert_eq!(r.expect(401)["error"], "invalid_client");
    assert!(w.org_attributes("oauthclient#").await.is_empty());
    assert_eq!(
        w.org_attributes("scimtoken#").await.len(),
        1,
        "only the SCIM token"
    );
    assert_eq!(w.t.items_with_prefix("TOKEN#").await.len(), 1);
    assert!(w
        .t
        .items_with_prefix("OAUTHCLIENT#")
        .await
        .iter()
        .all(|i| !i.contains_key("org_id")));
    assert!(!w
        .t
        .store
        .oauth_clients()
        .revoke(&w.client_id)
        .await
        .unwrap());
}

#[tokio::test]
async fn deleting_the_org_deletes_its_clients_and_their_tokens() {
    let w = World::new().await;
    let access = w.access_token().await;
    let admin = w.t.admin("root").await;
    let admin_token = w.t.token(&admin).await;
    let path = format!("/api/v1/scim/Groups/{}", w.acme.id);
    w.t.call(
        groups::delete,
        bearer(&admin_token, Req::new(Method::DELETE, &path)),
    )
    .await
    .expect(204);
    assert!(w.t.items_with_prefix("OAUTHCLIENT#").await.is_empty());
    w.grant().await.expect(401);
    let r =
        w.t.call(
            scim::list,
            bearer(
                &access,
                Req::new(Method::GET, "/api/v1/scim/orgs/acme/Users"),
            ),
        )
        .await;
    r.expect(401);
    let _ = GROUP_SCHEMA;
}

#[tokio::test]
async fn a_client_holds_at_most_twenty_live_tokens() {
    let w = World::new().await;
    let first = w.access_token().await;
    for _ in 0..directory::store::LIVE_TOKENS_PER_CLIENT {
        w.access_token().await;
    }
    let path = "/api/v1/scim/orgs/acme/Users";
    w.t.call(scim::list, bearer(&first, Req::new(Method::GET, path)))
        .await
        .expect(401);
    // 20 of the client's, and the org's SCIM token.
    assert_eq!(w.org_attributes("scimtoken#").await.len(), 21);
    assert_eq!(w.t.items_with_prefix("TOKEN#").await.len(), 21);
}

#[tokio::test]
async fn every_error_is_in_rfc6749_format_and_writes_nothing() {
    let w = World::new().await;
    let id = w.client_id.clone();
    let secret = w.secret.clone();
    let ok = "grant_type=client_credentials";
    let ro = {
        let org = w.t.store.tenants().get("acme").await.unwrap().unwrap();
        oauth::new_client(&w.t.store, &org, true).await.unwrap()
    };
    let huge = format!("{ok}&pad={}", "x".repeat(1024 * 1024 + 1));
    let cases: Vec<(&str, Req, u16, &str)> = vec![
        (
            "GET",
            basic(Req::new(Method::GET, TOKEN_PATH), &id, &secret),
            405,
            "invalid_request",
        ),
        (
            "JSON body",
            basic(
                Req::new(Method::POST, TOKEN_PATH)
                    .header("content-type", "application/json")
                    .raw_body(r#"{"grant_type":"client_credentials"}"#),
                &id,
                &secret,
            ),
            400,
            "invalid_request",
        ),
        (
            "no grant_type",
            basic(form_req("scope=scim"), &id, &secret),
            400,
            "invalid_request",
        ),
        (
            "grant_type twice",
            basic(form_req(&format!("{ok}&{ok}")), &id, &secret),
            400,
            "invalid_request",
        ),
        (
            "password grant",
            basic(
                form_req("grant_type=password&username=a&password=b"),
                &id,
                &secret,
            ),
            400,
            "unsupported_grant_type",
        ),
        (
            "Basic and form",
            basic(
                form_req(&format!("{ok}&client_id={id}&client_secret={secret}")),
                &id,
                &secret,
            ),
            400,
            "invalid_request",
        ),
        (
            "no client authentication",
            form_req(ok),
            401,
            "invalid_client",
        ),
        (
            "wrong secret, Basic",
            basic(form_req(ok), &id, "wrong"),
            401,
            "invalid_client",
        ),
        (
            "wrong secret, form",
            form_req(&format!("{ok}&client_id={id}&client_secret=wrong")),
            400,
            "invalid_client",
        ),
        (
            "unknown scope",
            basic(form_req(&format!("{ok}&scope=openid")), &id, &secret),
            400,
            "invalid_scope",
        ),
        (
            "write scope of a read-only client",
            basic(form_req(&format!("{ok}&scope=scim")), &ro.0, &ro.1),
            400,
            "invalid_scope",
        ),
        (
            "body over 1 MiB",
            basic(form_req(&huge), &id, &secret),
            413,
            "invalid_request",
        ),
    ];
    for (what, req, status, error) in cases {
        let r = w.post(req).await;
        assert_eq!(r.status.as_u16(), status, "{what}: {}", r.raw);
        assert_eq!(r.body["error"], error, "{what}");
        assert!(
            r.body["error_description"]
                .as_str()
                .is_some_and(|d| !d.is_empty()),
            "{what}"
        );
        assert_eq!(r.body.as_object().unwrap().len(), 2, "{what}: {}", r.raw);
        assert_no_store(&r);
        let challenge = r.header("www-authenticate");
        match (status, what) {
            (401, _) => assert!(challenge.is_some_and(|c| c.starts_with("Basic ")), "{what}"),
            _ => assert_eq!(challenge, None, "{what}"),
        }
        if status == 405 {
            assert_eq!(r.header("allow"), Some("POST"));
        }
    }
    // Nothing was issued; only the wrong secrets were counted.
    assert_eq!(
        w.t.items_with_prefix("TOKEN#").await.len(),
        1,
        "the SCIM token only"
    );
    let client = w.t.store.oauth_clients().get(&id).await.unwrap();
    assert_eq!(client.failures.failures, 2);
    // A read-only client gets scim:read without asking.
    let r = w.post(basic(form_req(ok), &ro.0, &ro.1)).await;
    assert_eq!(r.expect(200)["scope"], "scim:read");
}

#[tokio::test]
async fn unknown_ids_and_wrong_secrets_look_alike_and_lock_alike() {
    let w = World::new().await;
    let unknown = format!("oc_{}", "0".repeat(32));
    let ok = "grant_type=client_credentials";
    for attempt in 1..=5 {
        let wrong = w.post(basic(form_req(ok), &w.client_id, "guess")).await;
        let nobody = w.post(basic(form_req(ok), &unknown, "guess")).await;
        assert_eq!(seen(&wrong), seen(&nobody), "attempt {attempt}");
        assert_eq!(wrong.status.as_u16(), 401);
        assert_eq!(wrong.dynamodb_calls, 2, "the read and the count");
        assert_eq!(nobody.dynamodb_calls, 2);
    }
    // Locked now: even the right secret is refused, and the unknown id too.
    let locked = w.grant().await;
    assert_eq!(locked.status.as_u16(), 429, "{}", locked.raw);
    assert_eq!(locked.body["error"], "invalid_client");
    assert!(locked.header("retry-after").is_some());
    assert_eq!(locked.dynamodb_calls, 1);
    let nobody = w.post(basic(form_req(ok), &unknown, "guess")).await;
    assert_eq!(seen(&locked).0, seen(&nobody).0);
    assert_eq!(locked.body, nobody.body);
    // The tracker of the unknown id expires by TTL; the client's has none.
    let trackers = w.t.items_with_prefix("OAUTHCLIENT#").await;
    let tracker = trackers
        .iter()
        .find(|i| i.get("pk") == Some(&AttributeValue::S(table::oauth_client(&unknown).0)))
        .unwrap();
    assert!(tracker.contains_key("expires_at") && !tracker.contains_key("org_id"));
    // An operator unlocks; the next success clears the count in its own transaction.
    assert!(w
        .t
        .store
        .oauth_clients()
        .unlock(&w.client_id)
        .await
        .unwrap());
    w.post(basic(form_req(ok), &w.client_id, "guess"))
        .await
        .expect(401);
    let r = w.grant().await;
    r.expect(200);
    assert_eq!(r.dynamodb_calls, 3);
    assert_eq!(
        w.t.store
            .oauth_clients()
            .get(&w.client_id)
            .await
            .unwrap()
            .failures
            .failures,
        0
    );
}

#[tokio::test]
async fn dynamodb_failing_is_a_503_in_rfc6749_format() {
    let (t, faults) = TestTable::faulty(
        directory::http::Profile::Odm,
        directory::store::Budget::from_env(),
    )
    .await;
    faults.fail_from(0, directory_tests::faults::Fault::InternalServerError);
    let id = format!("oc_{}", "1".repeat(32));
    let r = t
        .call(
            oauth::token,
            basic(form_req("grant_type=client_credentials"), &id, "s").build(),
        )
        .await;
    assert_eq!(r.status.as_u16(), 503, "{}", r.raw);
    assert_eq!(r.body["error"], "temporarily_unavailable");
    assert!(r.header("retry-after").is_some());
    assert_no_store(&r);
}
