//! `/Me` (RFC 7644 §3.11), in-process against DynamoDB Local: any signed-in
//! user reads their own User; PATCH and PUT change only what a user may
//! change about themselves (the attribute table's self-service rows), and
//! anything else is a 403 with nothing written; an admin's `/Me` changes
//! anything of theirs; POST and DELETE answer 501 and 403; the `odm`
//! profile has no `/Me`.
use directory::domain::user::User;
use directory::http::Profile;
use directory::scim::{self, ENTERPRISE_USER_SCHEMA as ENT, USER_SCHEMA};
use directory::store::TokenSpec;
use directory_tests::{Provisioner, Reply, Req};
use lambda_http::http::Method;
use serde_json::{json, Value};

const ME: &str = "/api/v1/scim/Me";
const USERS: &str = "/api/v1/scim/Users";
const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// An `rfc` table with an admin (the provisioner) and a user it
/// provisioned with Entra's usual attributes, who holds a token of their own.
struct World {
    p: Provisioner,
    user: User,
    token: String,
}

impl World {
    async fn new() -> World {
        let p = Provisioner::new(Profile::Rfc).await;
        let body = json!({
            "schemas": [USER_SCHEMA, ENT],
            "userName": "ada@example.com",
            "externalId": "ext-ada",
            "name": {"givenName": "Ada", "familyName": "Lovelace"},
            "title": "Analyst",
            "emails": [{"value": "ada@example.com", "type": "work", "primary": true}],
            "phoneNumbers": [{"value": "+44 20 0000 0001", "type": "work"}],
            "preferredLanguage": "en-GB",
            ENT: {"department": "Engines", "employeeNumber": "1815"}
        });
        let created =
            p.t.call(
                scim::create,
                p.req(Method::POST, USERS, Some(&body)).build(),
            )
            .await;
        let id: u64 = created.expect(201)["id"].as_str().unwrap().parse().unwrap();
        let user = p.t.fresh(id).await;
        let token = p.t.token(&user).await;
        let user = p.t.fresh(id).await;
        World { p, user, token }
    }

    fn as_user(&self, method: Method, path: &str, body: Option<&Value>) -> Req {
        as_token(&self.token, method, path, body)
    }

    async fn me(&self, req: Req) -> Reply {
        let req = req.build();
        match req.method().as_str() {
            "GET" => self.p.t.call(scim::me::get, req).await,
            "PUT" => self.p.t.call(scim::me::replace, req).await,
            "PATCH" => self.p.t.call(scim::me::patch, req).await,
            _ => self.p.t.call(scim::fallback, req).await,
        }
    }

    async fn patch_me(&self, ops: Value) -> Reply {
        let body = json!({"schemas": [PATCH_OP], "Operations": ops});
        self.me(self.as_user(Method::PATCH, ME, Some(&body))).await
    }

    async fn stored(&self) -> User {
        self.p.t.fresh(self.user.id).await
    }
}

fn as_token(token: &str, method: Method, path: &str, body: Option<&Value>) -> Req {
    let req = match body {
        Some(b) => directory_tests::scim(method, path, b),
        None => Req::new(method, path),
    };
    req.header("authorization", &format!("Bearer {token}"))
}

#[tokio::test]
async fn any_user_reads_their_own_user_in_one_call() {
    let w = World::new().await;
    let reply = w.me(w.as_user(Method::GET, ME, None)).await;
    let body = reply.expect(200);
    assert_eq!(body["id"], w.user.id.to_string());
    assert_eq!(body["userName"], "ada@example.com");
    assert_eq!(body[ENT]["department"], "Engines");
    assert_eq!(body["schemas"], json!([USER_SCHEMA, ENT]));
    // The permanent location of the resource (RFC 7644 §3.11), and its ETag.
    let location = format!("http://testserver{USERS}/{}", w.user.id);
    assert_eq!(reply.header("location"), Some(location.as_str()));
    assert_eq!(body["meta"]["location"], location);
    assert_eq!(
        reply.header("etag"),
        Some(&*format!("W/\"{}\"", w.user.version))
    );
    assert_eq!(reply.dynamodb_calls, 1, "authentication is the read");
    // The same as /Users/{id} shows it to an admin.
    let admin_view =
        w.p.t
            .call(
                scim::get,
                w.p.req(Method::GET, &format!("{USERS}/{}", w.user.id), None)
                    .build(),
            )
            .await;
    assert_eq!(admin_view.expect(200), body);

    // Projections work.
    let path = format!("{ME}?attributes=userName,{ENT}:department");
    let projected = w.me(w.as_user(Method::GET, &path, None)).await;
    assert_eq!(
        projected.expect(200),
        &json!({"schemas": [USER_SCHEMA, ENT], "id": w.user.id.to_string(),
                "userName": "ada@example.com", ENT: {"department": "Engines"}})
    );
    // Basic credentials work too; no credentials, or wrong ones, do not.
    let admin = w.p.t.admin("root").await;
    w.p.t.with_password(&admin, "pw").await;
    let basic = w.me(Req::new(Method::GET, ME).basic("root", "pw")).await;
    assert_eq!(basic.expect(200)["userName"], "root");
    let anonymous = w.me(Req::new(Method::GET, ME)).await;
    assert_eq!(anonymous.expect(401)["status"], "401");
    let wrong = w.me(as_token("1.nope", Method::GET, ME, None)).await;
    wrong.expect(401);
}

#[tokio::test]
async fn a_user_changes_their_names_phones_addresses_language_locale_and_timezone() {
    let w = World::new().await;
    let reply = w
        .patch_me(json!([
            {"op": "replace", "path": "name.givenName", "value": "Augusta Ada"},
            {"op": "add", "path": "name.middleName", "value": "King"},
            {"op": "replace", "path": "displayName", "value": "Ada King"},
            {"op": "add", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "+44 7700 900001"},
            {"op": "add", "path": "addresses", "value": [{"type": "home", "locality": "London"}]},
            {"op": "replace", "path": "preferredLanguage", "value": "en-US"},
            {"op": "replace", "value": {"locale": "en-GB", "timezone": "Europe/London"}}
        ]))
        .await;
    let body = reply.expect(200).clone();
    assert_eq!(body["name"]["givenName"], "Augusta Ada");
    assert_eq!(body["name"]["middleName"], "King");
    assert_eq!(body["displayName"], "Ada King");
    assert_eq!(
        body["phoneNumbers"],
        json!([{"value": "+44 20 0000 0001", "type": "work"},
               {"value": "+44 7700 900001", "type": "mobile"}])
    );
    assert_eq!(
        body["addresses"],
        json!([{"locality": "London", "type": "home"}])
    );
    assert_eq!(
        (
            &body["preferredLanguage"],
            &body["locale"],
            &body["timezone"]
        ),
        (&json!("en-US"), &json!("en-GB"), &json!("Europe/London"))
    );
    let location = format!("http://testserver{USERS}/{}", w.user.id);
    assert_eq!(reply.header("location"), Some(location.as_str()));
    // Authentication reads the user; then one write.
    assert_eq!(reply.dynamodb_calls, 2);
    let stored = w.stored().await;
    assert_eq!(stored.first_name, "Augusta Ada");
    assert_eq!(stored.details.text("timezone"), Some("Europe/London"));
    // What the user may not change is as it was.
    assert_eq!(stored.details.text("title"), Some("Analyst"));
    assert_eq!(stored.email, "ada@example.com");

    // A PUT of what GET /Me shows, with only a phone number changed, is theirs to make.
    let mut shown = w
        .me(w.as_user(Method::GET, ME, None))
        .await
        .expect(200)
        .clone();
    shown["phoneNumbers"] = json!([{"value": "+44 20 0000 0002", "type": "work"}]);
    let put = w.me(w.as_user(Method::PUT, ME, Some(&shown))).await;
    assert_eq!(
        put.expect(200)["phoneNumbers"],
        json!([{"value": "+44 20 0000 0002", "type": "work"}])
    );
    assert_eq!(put.dynamodb_calls, 2);
    let stored = w.stored().await;
    assert_eq!(stored.details.text("title"), Some("Analyst"));
    assert_eq!(stored.external_id.as_deref(), Some("ext-ada"));
    // A PUT that changes nothing writes nothing.
    let same = w.me(w.as_user(Method::PUT, ME, Some(&shown))).await;
    same.expect(200);
    assert_eq!(same.dynamodb_calls, 1);
    assert_eq!(w.stored().await.version, stored.version);
}

/// What only an administrator (or the identity provider) may change: each
/// answered 403 in SCIM's format, naming the attribute, and nothing written.
#[tokio::test]
async fn a_user_replaying_an_admin_change_gets_403_and_nothing_changes() {
    let w = World::new().await;
    let before = w.stored().await;
    let cases: Vec<(Value, &str)> = vec![
        (
            json!([{"op": "replace", "path": "title", "value": "CEO"}]),
            "title",
        ),
        (
            json!([{"op": "replace", "path": "active", "value": false}]),
            "active",
        ),
        (
            json!([{"op": "replace", "path": "userName", "value": "ada2@example.com"}]),
            "userName",
        ),
        (
            json!([{"op": "replace", "path": "externalId", "value": "other"}]),
            "externalId",
        ),
        (
            json!([{"op": "add", "path": "emails", "value": [{"value": "a@home.example", "type": "home"}]}]),
            "emails",
        ),
        (
            json!([{"op": "replace", "path": "emails[type eq \"work\"].value", "value": "boss@example.com"}]),
            "emails",
        ),
        (
            json!([{"op": "replace", "path": format!("{ENT}:department"), "value": "Board"}]),
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
        ),
        (
            json!([{"op": "add", "path": "manager", "value": w.user.id.to_string()}]),
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
        ),
        (
            json!([{"op": "add", "path": "roles", "value": [{"value": "admin"}]}]),
            "roles",
        ),
        (
            json!([{"op": "remove", "path": "nickName"}, {"op": "add", "value": {"nickName": "Boss"}}]),
            "nickName",
        ),
        // One personal change with one that is not: all or nothing.
        (
            json!([{"op": "replace", "path": "displayName", "value": "Mine"},
                   {"op": "replace", "path": "userType", "value": "Employee"}]),
            "userType",
        ),
    ];
    for (ops, named) in cases {
        let reply = w.patch_me(ops.clone()).await;
        let body = reply.expect(403);
        assert_eq!(
            body["schemas"],
            json!(["urn:ietf:params:scim:api:messages:2.0:Error"])
        );
        assert_eq!(body["status"], "403");
        let detail = body["detail"].as_str().unwrap();
        assert!(
            detail.starts_with(&format!("{named} cannot be changed through /Me")),
            "{ops}: {detail}"
        );
        assert!(
            detail.contains(
                "their own name, displayName, preferredLanguage, locale, timezone, phoneNumbers and \
                 addresses;"
            ),
            "{detail}"
        );
        assert_eq!(w.stored().await, before, "{ops}: something was written");
        // Only the read of authentication: the refusal comes before any write.
        assert_eq!(reply.dynamodb_calls, 1, "{ops}");
    }
    // PUT: a body that would change what is not theirs, even by leaving it out.
    let shown = w
        .me(w.as_user(Method::GET, ME, None))
        .await
        .expect(200)
        .clone();
    let mut promoted = shown.clone();
    promoted["title"] = json!("CEO");
    let mut without_emails = shown.clone();
    without_emails.as_object_mut().unwrap().remove("emails");
    let mut without_extension = shown.clone();
    without_extension.as_object_mut().unwrap().remove(ENT);
    for (body, named) in [
        (promoted, "title"),
        (without_emails, "emails"),
        (
            without_extension,
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber",
        ),
    ] {
        let reply = w.me(w.as_user(Method::PUT, ME, Some(&body))).await;
        let detail = reply.expect(403)["detail"].as_str().unwrap().to_string();
        assert!(detail.starts_with(&format!("{named} cannot")), "{detail}");
        assert_eq!(w.stored().await, before);
    }
    // The same change is an admin's to make, through /Users/{id}.
    let body = json!({"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "title", "value": "CEO"}]});
    let by_admin =
        w.p.t
            .call(
                scim::patch,
                w.p.req(
                    Method::PATCH,
                    &format!("{USERS}/{}", w.user.id),
                    Some(&body),
                )
                .build(),
            )
            .await;
    assert_eq!(by_admin.expect(200)["title"], "CEO");
}

#[tokio::test]
async fn an_admin_changes_anything_of_their_own_through_me() {
    let w = World::new().await;
    let body = json!({"schemas": [PATCH_OP], "Operations": [
        {"op": "add", "path": "title", "value": "Provisioner"},
        {"op": "add", "path": format!("{ENT}:department"), "value": "IT"}]});
    let reply =
        w.p.t
            .call(
                scim::me::patch,
                w.p.req(Method::PATCH, ME, Some(&body)).build(),
            )
            .await;
    let shown = reply.expect(200);
    assert_eq!(shown["userName"], "provisioner");
    assert_eq!(shown["title"], "Provisioner");
    assert_eq!(shown[ENT]["department"], "IT");
}

#[tokio::test]
async fn read_only_tokens_and_stale_versions_are_refused() {
    let w = World::new().await;
    let read_only =
        w.p.t
            .token_with(
                &w.user,
                TokenSpec {
                    read_only: true,
                    expires_at: None,
                },
            )
            .await;
    let ops = json!({"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "locale", "value": "fr-FR"}]});
    let reply = w
        .me(as_token(&read_only, Method::PATCH, ME, Some(&ops)))
        .await;
    assert_eq!(reply.expect(403)["detail"], "This token is read-only.");
    // A read-only token still reads.
    w.me(as_token(&read_only, Method::GET, ME, None))
        .await
        .expect(200);
    let stale = w
        .as_user(Method::PATCH, ME, Some(&ops))
        .header("if-match", "W/\"1\"");
    let reply = w.me(stale).await;
    reply.expect(412);
    let current = format!("W/\"{}\"", w.stored().await.version);
    let fresh = w
        .as_user(Method::PATCH, ME, Some(&ops))
        .header("if-match", &current);
    assert_eq!(w.me(fresh).await.expect(200)["locale"], "fr-FR");
}

#[tokio::test]
async fn post_and_delete_me_are_refused_and_other_methods_are_405() {
    let w = World::new().await;
    let body = json!({"schemas": [USER_SCHEMA], "userName": "someone"});
    let post = w.me(w.as_user(Method::POST, ME, Some(&body))).await;
    let detail = post.expect(501)["detail"].as_str().unwrap().to_string();
    assert!(
        detail.starts_with("POST /Me is not implemented"),
        "{detail}"
    );
    let delete = w.me(w.as_user(Method::DELETE, ME, None)).await;
    assert_eq!(delete.expect(403)["status"], "403");
    assert!(w.p.t.store.users().get(w.user.id).await.unwrap().is_some());
    let head = w.me(w.as_user(Method::HEAD, ME, None)).await;
    head.expect(405);
    assert_eq!(head.header("allow"), Some("GET, PUT, PATCH"));
    // Signed in first, as every route.
    w.me(Req::new(Method::DELETE, ME)).await.expect(401);
    // /Bulk's other methods are 405 too.
    let get_bulk =
        w.p.t
            .call(
                scim::fallback,
                w.p.req(Method::GET, "/api/v1/scim/Bulk", None).build(),
            )
            .await;
    get_bulk.expect(405);
    assert_eq!(get_bulk.header("allow"), Some("POST"));
}

/// ODM's API has no /Me and no /Bulk: in the `odm` profile they answer as
/// any unknown path did before, 404 to an admin and 403 to anyone else.
#[tokio::test]
async fn the_odm_profile_has_no_me_and_no_bulk() {
    let p = Provisioner::new(Profile::Odm).await;
    let carol = p.t.user("carol").await;
    let token = p.t.token(&carol).await;
    let ops = json!({"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "displayName", "value": "C"}]});
    let bulk =
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": []});
    for (method, path, body) in [
        (Method::GET, ME, None),
        (Method::PATCH, ME, Some(&ops)),
        (Method::PUT, ME, Some(&ops)),
        (Method::POST, "/api/v1/scim/Bulk", Some(&bulk)),
    ] {
        let req = |r: Req| r.build();
        let call = |req| async {
            match (&method, path) {
                (&Method::GET, ME) => p.t.call(scim::me::get, req).await,
                (&Method::PATCH, ME) => p.t.call(scim::me::patch, req).await,
                (&Method::PUT, ME) => p.t.call(scim::me::replace, req).await,
                _ => p.t.call(scim::bulk::post, req).await,
            }
        };
        let admin = call(req(p.req(method.clone(), path, body))).await;
        assert_eq!(
            admin.expect(404)["detail"],
            format!("No such resource: {path}"),
            "{method} {path}"
        );
        let user = call(req(as_token(&token, method.clone(), path, body))).await;
        user.expect(403);
    }
    assert_eq!(p.t.fresh(carol.id).await.display_name, None);
}
