//! `POST /Bulk` (RFC 7644 §3.7, `rfc` profile), in-process against DynamoDB
//! Local: `bulkId` references in members, values and paths, resolved in
//! dependency order; a cycle of them; `failOnErrors`; each operation's
//! status, `location` and `response` as its single request would answer;
//! the limits advertised and enforced (413); one authentication per bulk;
//! and under a tenant base, the tenant's own groups (members only its own
//! users, roles from mapped groups, other tenants' ids as unknown ones) and
//! what a member change costs there.
use std::collections::BTreeSet;

use directory::auth;
use directory::domain::orgs::Role;
use directory::domain::user::User;
use directory::http::Profile;
use directory::scim::{self, ENTERPRISE_USER_SCHEMA as ENT, GROUP_SCHEMA, USER_SCHEMA};
use directory::scim::{
    BULK_MAX_OPERATIONS as MAX_OPERATIONS, BULK_MAX_PAYLOAD_SIZE as MAX_PAYLOAD_SIZE,
};
use directory::store::{table, TenantOrg, TokenSpec, UniqueField};
use directory_tests::{Provisioner, Reply, Req, TestTable};
use lambda_http::http::Method;
use serde_json::{json, Value};

const BULK: &str = "/api/v1/scim/Bulk";
const BULK_REQUEST: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";
const BULK_RESPONSE: &str = "urn:ietf:params:scim:api:messages:2.0:BulkResponse";
const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const ORIGIN: &str = "http://testserver/api/v1/scim";

struct Scim(Provisioner);

impl std::ops::Deref for Scim {
    type Target = Provisioner;
    fn deref(&self) -> &Provisioner {
        &self.0
    }
}

impl Scim {
    async fn new() -> Scim {
        Scim(Provisioner::new(Profile::Rfc).await)
    }

    async fn bulk_with(&self, req: Req) -> Reply {
        self.t.call(scim::bulk::post, req.build()).await
    }

    /// A bulk request of `ops` (and `extra` top-level attributes), by the provisioner.
    async fn bulk(&self, ops: Value, extra: Value) -> Reply {
        let mut body = json!({"schemas": [BULK_REQUEST], "Operations": ops});
        if let Value::Object(more) = extra {
            body.as_object_mut().unwrap().extend(more);
        }
        self.bulk_with(self.req(Method::POST, BULK, Some(&body)))
            .await
    }

    /// The operations of a 200 bulk response.
    async fn run(&self, ops: Value) -> Vec<Value> {
        let reply = self.bulk(ops, json!({})).await;
        let body = reply.expect(200);
        assert_eq!(body["schemas"], json!([BULK_RESPONSE]));
        body["Operations"].as_array().unwrap().clone()
    }

    async fn user_named(&self, username: &str) -> Option<User> {
        let id = self
            .t
            .store
            .claims()
            .user(UniqueField::Username, username)
            .await
            .unwrap()?;
        Some(id)
    }
}

fn post_user(bulk_id: &str, body: Value) -> Value {
    json!({"method": "POST", "path": "/Users", "bulkId": bulk_id, "data": body})
}

fn user(name: &str) -> Value {
    json!({"schemas": [USER_SCHEMA], "userName": name,
           "emails": [{"value": format!("{name}@example.com"), "type": "work"}]})
}

fn status(op: &Value) -> &str {
    op["status"].as_str().unwrap()
}

fn id_of(op: &Value) -> u64 {
    op["location"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn bulk_ids_link_users_groups_and_paths_in_dependency_order() {
    let s = Scim::new().await;
    let ops = s
        .run(json!([
            // The group comes first but names users created after it.
            {"method": "POST", "path": "/Groups", "bulkId": "guides",
             "data": {"schemas": [GROUP_SCHEMA], "displayName": "Tour Guides",
                      "members": [{"value": "bulkId:alice", "type": "User"}, {"value": "bulkId:bob"}]}},
            post_user("alice", user("alice")),
            // bob's manager is alice, by bulkId, as Entra sends a manager: the id alone.
            post_user("bob", json!({"userName": "bob", ENT: {"manager": "bulkId:alice"}})),
            {"method": "PATCH", "path": "/Users/bulkId:bob",
             "data": {"schemas": [PATCH_OP], "Operations": [{"op": "add", "path": "title", "value": "Guide"}]}},
            {"method": "PATCH", "path": "/Groups/bulkId:guides",
             "data": {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "displayName", "value": "Guides"}]}},
        ]))
        .await;
    let statuses: Vec<&str> = ops.iter().map(status).collect();
    assert_eq!(statuses, ["201", "201", "201", "200", "200"], "{ops:#?}");
    // In the request's order, each with its bulkId, method and location.
    let bulk_ids: Vec<&str> = ops
        .iter()
        .map(|o| o["bulkId"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(bulk_ids, ["guides", "alice", "bob", "", ""]);
    let methods: Vec<&str> = ops.iter().map(|o| o["method"].as_str().unwrap()).collect();
    assert_eq!(methods, ["POST", "POST", "POST", "PATCH", "PATCH"]);
    let (group, alice, bob) = (id_of(&ops[0]), id_of(&ops[1]), id_of(&ops[2]));
    assert_eq!(ops[0]["location"], format!("{ORIGIN}/Groups/{group}"));
    assert_eq!(ops[1]["location"], format!("{ORIGIN}/Users/{alice}"));
    assert_eq!(ops[3]["location"], format!("{ORIGIN}/Users/{bob}"));
    assert_eq!(ops[4]["location"], format!("{ORIGIN}/Groups/{group}"));
    // Each answers what its single request would: the resource, its version.
    assert_eq!(ops[1]["response"]["userName"], "alice");
    assert_eq!(ops[1]["version"], ops[1]["response"]["meta"]["version"]);
    assert_eq!(
        ops[0]["response"]["members"],
        json!([
            {"value": alice.to_string(), "$ref": format!("{ORIGIN}/Users/{alice}"), "type": "User"},
            {"value": bob.to_string(), "$ref": format!("{ORIGIN}/Users/{bob}"), "type": "User"}
        ])
    );
    assert_eq!(ops[3]["response"]["title"], "Guide");
    assert_eq!(
        ops[3]["response"][ENT]["manager"]["value"],
        alice.to_string()
    );
    // A group after a PATCH: without its members (none read).
    assert_eq!(ops[4]["response"]["displayName"], "Guides");
    assert!(ops[4]["response"].get("members").is_none());

    // What is stored.
    let bob_user = s.t.fresh(bob).await;
    assert_eq!(bob_user.details.manager, Some(alice));
    assert_eq!(bob_user.details.text("title"), Some("Guide"));
    let members: Vec<u64> =
        s.t.fresh(alice)
            .await
            .memberships
            .iter()
            .map(|m| m.org_id)
            .collect();
    assert_eq!(members, [group]);
    assert_eq!(bob_user.memberships.len(), 1);
    let read =
        s.t.call(
            scim::groups::get,
            s.req(Method::GET, &format!("/api/v1/scim/Groups/{group}"), None)
                .build(),
        )
        .await;
    assert_eq!(read.expect(200)["displayName"], "Guides");
}

#[tokio::test]
async fn a_bulk_id_cycle_fails_the_operations_in_it_with_409() {
    let s = Scim::new().await;
    let ops = s
        .run(json!([
            post_user("x", json!({"userName": "x", ENT: {"manager": {"value": "bulkId:y"}}})),
            post_user("y", json!({"userName": "y", ENT: {"manager": "bulkId:x"}})),
            // What depends on the cycle fails too: what it names was not created.
            {"method": "PATCH", "path": "/Users/bulkId:x",
             "data": {"Operations": [{"op": "add", "path": "title", "value": "T"}]}},
            post_user("z", user("z")),
            // A reference to no POST of the request is the client's error.
            {"method": "DELETE", "path": "/Users/bulkId:nobody"},
        ]))
        .await;
    let statuses: Vec<&str> = ops.iter().map(status).collect();
    assert_eq!(statuses, ["409", "409", "409", "201", "400"], "{ops:#?}");
    assert_eq!(
        ops[0]["response"]["detail"],
        "The bulkIds \"x\", \"y\" reference each other in a cycle; their operations were not run."
    );
    assert_eq!(ops[0]["response"]["status"], "409");
    assert!(
        ops[0].get("location").is_none(),
        "a failed POST has no location"
    );
    assert_eq!(
        ops[2]["response"]["detail"],
        "bulkId \"x\" names no resource: its POST did not create one (status 409)."
    );
    assert_eq!(
        ops[4]["response"]["detail"],
        "bulkId \"nobody\" names no POST of this bulk request."
    );
    assert!(s.user_named("x").await.is_none() && s.user_named("y").await.is_none());
    assert!(s.user_named("z").await.is_some());
    // A POST that references its own bulkId is a cycle of one.
    let ops = s
        .run(json!([post_user(
            "me",
            json!({"userName": "me", ENT: {"manager": "bulkId:me"}})
        )]))
        .await;
    assert_eq!(status(&ops[0]), "409");
}

#[tokio::test]
async fn fail_on_errors_stops_after_that_many_failures() {
    let s = Scim::new().await;
    let ops = json!([
        post_user("bad", json!({"userName": "has space"})),
        post_user("a", user("a")),
        post_user("dup", user("a")),
        post_user("b", user("b")),
    ]);
    // failOnErrors 1: the first failure ends it.
    let reply = s.bulk(ops.clone(), json!({"failOnErrors": 1})).await;
    let done = reply.expect(200)["Operations"].as_array().unwrap().clone();
    assert_eq!(done.len(), 1, "{done:#?}");
    assert_eq!(status(&done[0]), "400");
    assert_eq!(done[0]["response"]["scimType"], "invalidValue");
    assert!(s.user_named("a").await.is_none());
    // failOnErrors 2: up to the second failure (the duplicate), not after it.
    let reply = s.bulk(ops.clone(), json!({"failOnErrors": 2})).await;
    let done = reply.expect(200)["Operations"].as_array().unwrap().clone();
    let statuses: Vec<&str> = done.iter().map(status).collect();
    assert_eq!(statuses, ["400", "201", "409"]);
    assert_eq!(done[2]["response"]["scimType"], "uniqueness");
    assert!(s.user_named("b").await.is_none());
    // Without it, every operation runs.
    let done = s.run(ops).await;
    let statuses: Vec<&str> = done.iter().map(status).collect();
    assert_eq!(statuses, ["400", "409", "409", "201"]);
}

#[tokio::test]
async fn each_operation_answers_as_its_single_request_would() {
    let s = Scim::new().await;
    let created = s.run(json!([post_user("u", user("carol"))])).await;
    let id = id_of(&created[0]);
    let version = created[0]["version"].as_str().unwrap().to_string();
    let ops = s
        .run(json!([
            {"method": "PUT", "path": format!("/Users/{id}"), "version": version,
             "data": {"userName": "carol", "displayName": "Carol", "emails": [{"value": "carol@example.com"}]}},
            // The version moved on with the PUT: a stale If-Match.
            {"method": "PATCH", "path": format!("/Users/{id}"), "version": version,
             "data": {"Operations": [{"op": "replace", "path": "displayName", "value": "Stale"}]}},
            {"method": "PATCH", "path": "/Users/999999",
             "data": {"Operations": [{"op": "replace", "path": "displayName", "value": "X"}]}},
            {"method": "PATCH", "path": format!("/Users/{id}"),
             "data": {"Operations": [{"op": "replace", "path": "id", "value": "1"}]}},
            {"method": "POST", "path": "/Users/3", "bulkId": "p", "data": user("p")},
            {"method": "GET", "path": format!("/Users/{id}")},
            {"method": "DELETE", "path": format!("/Users/{id}")},
            {"method": "DELETE", "path": format!("/Users/{id}")},
            {"method": "POST", "path": "/Groups", "bulkId": "g", "data": {"displayName": "G", "members": [{"value": "424242"}]}},
        ]))
        .await;
    let statuses: Vec<&str> = ops.iter().map(status).collect();
    assert_eq!(
        statuses,
        ["200", "412", "404", "400", "400", "400", "204", "404", "400"],
        "{ops:#?}"
    );
    assert_eq!(ops[0]["response"]["displayName"], "Carol");
    assert_eq!(ops[0]["location"], format!("{ORIGIN}/Users/{id}"));
    assert!(ops[1]["response"]["detail"]
        .as_str()
        .unwrap()
        .starts_with("If-Match does not match"));
    assert_eq!(ops[2]["response"]["detail"], "User 999999 not found");
    assert_eq!(ops[2]["location"], format!("{ORIGIN}/Users/999999"));
    assert_eq!(ops[3]["response"]["scimType"], "mutability");
    assert_eq!(ops[4]["response"]["scimType"], "invalidPath");
    assert_eq!(ops[5]["method"], "GET");
    assert_eq!(
        ops[5]["response"]["detail"],
        "Unknown method \"GET\": expected POST, PUT, PATCH or DELETE."
    );
    // A DELETE answers nothing but its status and location.
    assert_eq!(ops[6]["location"], format!("{ORIGIN}/Users/{id}"));
    assert!(ops[6].get("response").is_none() && ops[6].get("version").is_none());
    assert!(ops[8]["response"]["detail"]
        .as_str()
        .unwrap()
        .starts_with("No User has the id \"424242\""));
    assert!(s.t.store.users().get(id).await.unwrap().is_none());
}

#[tokio::test]
async fn the_limits_are_advertised_and_past_them_is_413() {
    let s = Scim::new().await;
    let spc =
        s.t.call(
            scim::discover,
            s.req(Method::GET, "/api/v1/scim/ServiceProviderConfig", None)
                .build(),
        )
        .await;
    assert_eq!(
        spc.expect(200)["bulk"],
        json!({"supported": true, "maxOperations": MAX_OPERATIONS, "maxPayloadSize": MAX_PAYLOAD_SIZE})
    );
    let ops: Vec<Value> = (0..=MAX_OPERATIONS)
        .map(|i| post_user(&format!("u{i}"), user(&format!("u{i}"))))
        .collect();
    let reply = s.bulk(Value::Array(ops), json!({})).await;
    let body = reply.expect(413);
    assert_eq!(
        body["schemas"],
        json!(["urn:ietf:params:scim:api:messages:2.0:Error"])
    );
    assert_eq!(
        body["detail"],
        format!(
            "The bulk request has {} operations, more than maxOperations ({MAX_OPERATIONS}).",
            MAX_OPERATIONS + 1
        )
    );
    assert!(s.user_named("u0").await.is_none(), "nothing was run");
    // A body past maxPayloadSize, however few its operations.
    let big = "x".repeat(MAX_PAYLOAD_SIZE);
    let reply = s
        .bulk(
            json!([post_user("big", json!({"userName": "big", "title": big}))]),
            json!({}),
        )
        .await;
    assert_eq!(
        reply.expect(413)["detail"],
        format!("The bulk request is larger than maxPayloadSize ({MAX_PAYLOAD_SIZE} bytes).")
    );
    // The odm profile has no bulk.
    let odm = Provisioner::new(Profile::Odm).await;
    let spc = odm
        .t
        .call(
            scim::discover,
            odm.req(Method::GET, "/api/v1/scim/ServiceProviderConfig", None)
                .build(),
        )
        .await;
    assert_eq!(
        spc.expect(200)["bulk"],
        json!({"supported": false, "maxOperations": 0, "maxPayloadSize": 0})
    );
    // Malformed requests, whole.
    for (body, status) in [
        (json!({"Operations": {}}), 400),
        (json!({"schemas": ["urn:x"], "Operations": []}), 400),
        (json!({"Operations": [], "failOnErrors": -1}), 400),
        (json!({"Operations": []}), 200),
    ] {
        let reply = s.bulk_with(s.req(Method::POST, BULK, Some(&body))).await;
        reply.expect(status);
    }
}

/// One authentication for the whole bulk: N creates cost one read for the
/// caller and each create's own two calls (the id counter, the
/// transaction), and a wrong password counts once towards the lockout.
#[tokio::test]
async fn a_bulk_authenticates_once() {
    let s = Scim::new().await;
    for n in [1usize, 10] {
        let ops: Vec<Value> = (0..n)
            .map(|i| post_user(&format!("n{n}-{i}"), user(&format!("n{n}-{i}"))))
            .collect();
        let reply = s.bulk(Value::Array(ops), json!({})).await;
        let done = reply.expect(200)["Operations"].as_array().unwrap().clone();
        assert!(done.iter().all(|o| status(o) == "201"), "{done:#?}");
        assert_eq!(reply.dynamodb_calls as usize, 1 + 2 * n, "{n} creates");
    }
    // Basic: a wrong password is one failure, whatever the bulk holds.
    let admin = s.t.admin("basic-admin").await;
    s.t.with_password(&admin, "right").await;
    let body = json!({"Operations": [post_user("a", user("w1")), post_user("b", user("w2"))]});
    let wrong = directory_tests::scim(Method::POST, BULK, &body).basic("basic-admin", "wrong");
    let reply = s.bulk_with(wrong).await;
    assert_eq!(reply.expect(401)["status"], "401");
    let claim = s.t.store.logins().claim("basic-admin").await.unwrap();
    assert_eq!(claim.failures, 1);
    assert!(s.user_named("w1").await.is_none());
    let right = directory_tests::scim(Method::POST, BULK, &body).basic("basic-admin", "right");
    let done = s.bulk_with(right).await.expect(200)["Operations"].clone();
    assert_eq!(done[1]["status"], "201");
    // A caller who may not provision is refused as a whole; a read-only
    // token is refused each write, as its single requests would be.
    let carol = s.t.user("carol").await;
    let carol_token = s.t.token(&carol).await;
    let as_carol = directory_tests::scim(Method::POST, BULK, &body)
        .header("authorization", &format!("Bearer {carol_token}"));
    s.bulk_with(as_carol).await.expect(403);
    let read_only =
        s.t.token_with(
            &admin,
            TokenSpec {
                read_only: true,
                expires_at: None,
            },
        )
        .await;
    let body = json!({"Operations": [post_user("a", user("r1")), {"method": "DELETE", "path": format!("/Users/{}", carol.id)}]});
    let ro = directory_tests::scim(Method::POST, BULK, &body)
        .header("authorization", &format!("Bearer {read_only}"));
    let done = s.bulk_with(ro).await.expect(200)["Operations"].clone();
    assert_eq!(done[0]["status"], "403");
    assert_eq!(done[1]["response"]["detail"], "This token is read-only.");
    assert!(s.t.store.users().get(carol.id).await.unwrap().is_some());
}

/// An operation that takes the caller's own credentials away (a
/// deactivation revokes their tokens) ends what the caller may do: the next
/// operations are refused as their own requests would be.
#[tokio::test]
async fn an_operation_that_deactivates_the_caller_ends_their_bulk() {
    let s = Scim::new().await;
    let other = s.t.admin("other-admin").await;
    let token = s.t.token(&other).await;
    let body = json!({"Operations": [
        post_user("before", user("before")),
        {"method": "PATCH", "path": format!("/Users/{}", other.id),
         "data": {"Operations": [{"op": "replace", "path": "active", "value": false}]}},
        post_user("after", user("after")),
    ]});
    let req = directory_tests::scim(Method::POST, BULK, &body)
        .header("authorization", &format!("Bearer {token}"));
    let done = s.bulk_with(req).await.expect(200)["Operations"].clone();
    let statuses: Vec<&str> = done.as_array().unwrap().iter().map(status).collect();
    assert_eq!(statuses, ["201", "200", "401"]);
    assert!(s.user_named("before").await.is_some());
    assert!(s.user_named("after").await.is_none());
}

// ------------------------------------------------------- under a tenant base

/// One customer: its org (any name allowed), its tenant token, its base.
struct Tenant {
    slug: String,
    token: String,
}

impl Tenant {
    async fn new(t: &TestTable, slug: &str) -> Tenant {
        t.store
            .groups()
            .create_org(slug, &format!("Org {slug}"))
            .await
            .unwrap();
        let org = t.store.tenants().get(slug).await.unwrap().unwrap();
        t.store.tenants().set_any_domain(&org, true).await.unwrap();
        let spec = TokenSpec {
            read_only: false,
            expires_at: None,
        };
        let token = auth::mint_tenant_token(&t.store, &org, &spec)
            .await
            .unwrap();
        Tenant {
            slug: slug.to_string(),
            token,
        }
    }

    /// The tenant base's URL, as `location` and `$ref` name it.
    fn origin(&self) -> String {
        format!("{ORIGIN}/orgs/{}", self.slug)
    }

    async fn org(&self, t: &TestTable) -> TenantOrg {
        t.store.tenants().get(&self.slug).await.unwrap().unwrap()
    }

    /// A bulk of `ops` (and `extra` top-level attributes) under the base of
    /// `under` with this tenant's token.
    async fn bulk_under(&self, t: &TestTable, under: &str, ops: Value, extra: Value) -> Reply {
        let mut body = json!({"schemas": [BULK_REQUEST], "Operations": ops});
        if let Value::Object(more) = extra {
            body.as_object_mut().unwrap().extend(more);
        }
        let path = format!("/api/v1/scim/orgs/{under}/Bulk");
        let req = directory_tests::scim(Method::POST, &path, &body)
            .header("authorization", &format!("Bearer {}", self.token));
        t.call(scim::bulk::post, req.build()).await
    }

    /// The operations of a 200 bulk under the tenant's own base.
    async fn run(&self, t: &TestTable, ops: Value) -> Vec<Value> {
        let reply = self.bulk_under(t, &self.slug, ops, json!({})).await;
        reply.expect(200)["Operations"].as_array().unwrap().clone()
    }

    /// The stored members of tenant group `id`, or `None` without it.
    async fn stored_members(&self, t: &TestTable, id: u64) -> Option<BTreeSet<u64>> {
        let group = t.store.tenant_groups().get(&self.slug, id).await.unwrap();
        group.map(|g| g.members.iter().copied().collect())
    }

    /// The user's role in the org, as its member item and its user item
    /// store it (they must agree).
    async fn role(&self, t: &TestTable, user: u64) -> String {
        let org = self.org(t).await;
        let member = t.store.memberships().get(&self.slug, org.id, user).await;
        let member = member.unwrap().expect("a member item");
        let on_user = t.fresh(user).await.memberships;
        let on_user = on_user.iter().find(|m| m.org_id == org.id).unwrap();
        assert_eq!(on_user.role, member.role.name(), "user item vs member item");
        on_user.role.clone()
    }

    /// Maps the group name `group` to `role` (before any group has it).
    async fn map(&self, t: &TestTable, group: &str, role: Role) {
        let org = self.org(t).await;
        t.store
            .tenants()
            .map_group(&org, group, Some(role))
            .await
            .unwrap();
    }
}

fn post_group(bulk_id: &str, name: &str, members: &[&str]) -> Value {
    let members: Vec<Value> = members.iter().map(|m| json!({"value": m})).collect();
    json!({"method": "POST", "path": "/Groups", "bulkId": bulk_id,
           "data": {"schemas": [GROUP_SCHEMA], "displayName": name, "members": members}})
}

fn patch_group(path: &str, ops: Value) -> Value {
    json!({"method": "PATCH", "path": path, "data": {"schemas": [PATCH_OP], "Operations": ops}})
}

fn add_member(id: &str) -> Value {
    json!([{"op": "add", "path": "members", "value": [{"value": id}]}])
}

#[tokio::test]
async fn under_a_tenant_base_groups_are_the_tenants_own_with_bulk_ids_and_roles() {
    let p = Provisioner::new(Profile::Rfc).await;
    let t = &p.t;
    let a = Tenant::new(t, "acme").await;
    a.map(t, "Leads", Role::Supervisor).await;
    let ops = a
        .run(
            t,
            json!([
                // The groups come first but name users created after them.
                post_group("leads", "Leads", &["bulkId:ann", "bulkId:ben"]),
                post_user("ann", user("ann")),
                post_user("ben", user("ben")),
                patch_group("/Groups/bulkId:leads",
                    json!([{"op": "remove", "path": "members", "value": [{"value": "bulkId:ben"}]}])),
                post_group("staff", "Staff", &["bulkId:ann"]),
                {"method": "PUT", "path": "/Groups/bulkId:staff",
                 "data": {"schemas": [GROUP_SCHEMA], "displayName": "Staff", "members": [{"value": "bulkId:ben"}]}},
                {"method": "DELETE", "path": "/Groups/bulkId:staff"},
            ]),
        )
        .await;
    let statuses: Vec<&str> = ops.iter().map(status).collect();
    assert_eq!(
        statuses,
        ["201", "201", "201", "200", "201", "200", "204"],
        "{ops:#?}"
    );
    let (leads, ann, ben, staff) = (
        id_of(&ops[0]),
        id_of(&ops[1]),
        id_of(&ops[2]),
        id_of(&ops[4]),
    );
    let base = a.origin();
    // Every location and $ref under the tenant base.
    assert_eq!(ops[0]["location"], format!("{base}/Groups/{leads}"));
    assert_eq!(ops[1]["location"], format!("{base}/Users/{ann}"));
    assert_eq!(ops[3]["location"], format!("{base}/Groups/{leads}"));
    assert_eq!(ops[5]["location"], format!("{base}/Groups/{staff}"));
    assert_eq!(ops[6]["location"], format!("{base}/Groups/{staff}"));
    assert_eq!(
        ops[0]["response"]["members"],
        json!([
            {"value": ann.to_string(), "$ref": format!("{base}/Users/{ann}"), "type": "User"},
            {"value": ben.to_string(), "$ref": format!("{base}/Users/{ben}"), "type": "User"}
        ])
    );
    assert_eq!(
        ops[0]["response"]["meta"]["location"],
        format!("{base}/Groups/{leads}")
    );
    // Versions as the resources have them: created at 1, then one more per change.
    assert_eq!(ops[0]["version"], ops[0]["response"]["meta"]["version"]);
    assert_eq!(ops[3]["version"], "W/\"2\"");
    assert_eq!(ops[5]["version"], "W/\"2\"");
    // After a PATCH or PUT, as at the global base: the group without its members.
    assert_eq!(ops[3]["response"]["displayName"], "Leads");
    assert!(ops[3]["response"].get("members").is_none());
    assert!(ops[6].get("response").is_none() && ops[6].get("version").is_none());

    // What is stored: Leads holds Ann, Staff is gone, and the mapped group's
    // roles followed its members.
    assert_eq!(
        a.stored_members(t, leads).await,
        Some(BTreeSet::from([ann]))
    );
    assert_eq!(a.stored_members(t, staff).await, None);
    assert_eq!(a.role(t, ann).await, "supervisor");
    assert_eq!(a.role(t, ben).await, "worker");
    // No global group was made: the orgs are all the global Groups.
    let global = t
        .call(
            scim::groups::list,
            p.req(Method::GET, "/api/v1/scim/Groups", None).build(),
        )
        .await;
    assert_eq!(global.expect(200)["totalResults"], 1);

    // A global admin's bulk under the tenant base reaches the tenant's groups.
    let body = json!({"schemas": [BULK_REQUEST],
        "Operations": [patch_group(&format!("/Groups/{leads}"), add_member(&ben.to_string()))]});
    let req = p.req(Method::POST, "/api/v1/scim/orgs/acme/Bulk", Some(&body));
    let reply = t.call(scim::bulk::post, req.build()).await;
    let done = reply.expect(200)["Operations"].clone();
    assert_eq!(done[0]["status"], "200", "{done:#}");
    assert_eq!(done[0]["location"], format!("{base}/Groups/{leads}"));
    assert_eq!(
        a.stored_members(t, leads).await,
        Some(BTreeSet::from([ann, ben]))
    );
    assert_eq!(a.role(t, ben).await, "supervisor");

    // failOnErrors as at the global base: the first failure ends the bulk.
    let reply = a
        .bulk_under(
            t,
            "acme",
            json!([
                post_group("dup", "leads", &[]),
                post_group("after", "After", &[]),
            ]),
            json!({"failOnErrors": 1}),
        )
        .await;
    let done = reply.expect(200)["Operations"].as_array().unwrap().clone();
    assert_eq!(done.len(), 1, "{done:#?}");
    assert_eq!(status(&done[0]), "409");
    assert_eq!(done[0]["response"]["scimType"], "uniqueness");
    let names: Vec<String> = t
        .store
        .tenant_groups()
        .list("acme")
        .await
        .unwrap()
        .into_iter()
        .map(|g| g.record.name)
        .collect();
    assert_eq!(names, ["Leads"]);
}

/// An operation's answer with each of `forms` (of an id) written as `ID`.
fn blank(op: &Value, forms: &[String]) -> String {
    let mut text = op.to_string();
    for form in forms {
        let id: String = form.chars().filter(char::is_ascii_digit).collect();
        text = text.replace(form, &form.replace(&id, "ID"));
    }
    text
}

#[tokio::test]
async fn another_tenants_users_and_groups_in_a_bulk_answer_as_unknown_ids() {
    let p = Provisioner::new(Profile::Rfc).await;
    let t = &p.t;
    let (a, b) = (Tenant::new(t, "acme").await, Tenant::new(t, "globex").await);
    let made = b
        .run(
            t,
            json!([
                post_user("bea", user("bea")),
                post_group("g", "Globex Admins", &["bulkId:bea"])
            ]),
        )
        .await;
    let (bea, theirs) = (id_of(&made[0]), id_of(&made[1]));
    let made = a
        .run(
            t,
            json!([
                post_user("ann", user("ann")),
                post_group("s", "Staff", &["bulkId:ann"])
            ]),
        )
        .await;
    let (ann, staff) = (id_of(&made[0]), id_of(&made[1]));
    let nobody = 987_654u64;
    let stored = || async {
        (
            t.items_with_prefix(&table::tenant_groups_partition("acme"))
                .await,
            t.items_with_prefix(&table::tenant_groups_partition("globex"))
                .await,
            t.items_with_prefix("TGROUPNAME#").await,
            t.fresh(bea).await,
        )
    };
    let before = stored().await;
    // Each attempt with B's id, then with an id nobody has.
    let attempts = |other: u64| {
        let o = other.to_string();
        json!([
            patch_group(&format!("/Groups/{staff}"), add_member(&o)),
            {"method": "PUT", "path": format!("/Groups/{staff}"),
             "data": {"schemas": [GROUP_SCHEMA], "displayName": "Staff",
                      "members": [{"value": ann.to_string()}, {"value": o}]}},
            post_group(&format!("new{other}"), "New", &[&o]),
        ])
    };
    let group_attempts = |other: u64| {
        json!([
            patch_group(&format!("/Groups/{other}"),
                json!([{"op": "replace", "path": "displayName", "value": "Taken Over"}])),
            {"method": "PUT", "path": format!("/Groups/{other}"),
             "data": {"schemas": [GROUP_SCHEMA], "displayName": "Taken Over"}},
            {"method": "DELETE", "path": format!("/Groups/{other}")},
        ])
    };
    // Where an answer names the id: a member in the detail (and the
    // POST's bulkId); a group in the location and the detail.
    let as_member = |id: u64| vec![format!("\\\"{id}\\\""), format!("new{id}")];
    let as_group = |id: u64| vec![format!("Groups/{id}\""), format!("Group {id} ")];
    for (other, attempt, forms, expected) in [
        (
            bea,
            &attempts as &dyn Fn(u64) -> Value,
            &as_member as &dyn Fn(u64) -> Vec<String>,
            "400",
        ),
        (theirs, &group_attempts, &as_group, "404"),
    ] {
        let with_theirs = a.run(t, attempt(other)).await;
        let with_nobody = a.run(t, attempt(nobody)).await;
        assert_eq!(with_theirs.len(), 3);
        for (op, missing) in with_theirs.iter().zip(&with_nobody) {
            assert_eq!(status(op), expected, "{op:#}");
            if expected == "400" {
                assert_eq!(op["response"]["scimType"], "invalidValue");
            }
            assert_eq!(blank(op, &forms(other)), blank(missing, &forms(nobody)));
        }
    }
    // Nothing written anywhere: A's group, B's group and user are as they were.
    assert!(
        stored().await == before,
        "a refused operation wrote something"
    );
    assert_eq!(
        a.stored_members(t, staff).await,
        Some(BTreeSet::from([ann]))
    );
    assert_eq!(
        b.stored_members(t, theirs).await,
        Some(BTreeSet::from([bea]))
    );

    // A's token with its bulk under B's base: 401, and nothing is run.
    let reply = a
        .bulk_under(t, "globex", group_attempts(theirs), json!({}))
        .await;
    assert_eq!(reply.expect(401)["status"], "401");
    assert!(stored().await == before);
}

/// A bulk of one tenant-group member change costs the bulk's auth read
/// and that change's own calls: the group's and the user's batch read, the
/// transaction, and one query of the tenant's groups when the group is
/// mapped; the same at any group size.
#[tokio::test]
async fn a_tenant_group_member_change_in_a_bulk_costs_the_same_at_any_group_size() {
    let p = Provisioner::new(Profile::Rfc).await;
    let t = &p.t;
    let a = Tenant::new(t, "acme").await;
    let users: Vec<Value> = (0..21)
        .map(|i| post_user(&format!("u{i}"), user(&format!("u{i}"))))
        .collect();
    let ids: Vec<String> = a
        .run(t, Value::Array(users))
        .await
        .iter()
        .map(|o| id_of(o).to_string())
        .collect();
    let big: Vec<&str> = ids[1..20].iter().map(String::as_str).collect();
    let made = a
        .run(
            t,
            json!([
                post_group("s", "Small", &[&ids[0]]),
                post_group("b", "Big", &big)
            ]),
        )
        .await;
    let (small, big) = (id_of(&made[0]), id_of(&made[1]));
    let newcomer = &ids[20];
    let remove = json!([{"op": "remove", "path": format!("members[value eq \"{newcomer}\"]")}]);
    let mut costs = Vec::new();
    for _ in ["unmapped", "mapped"] {
        for g in [small, big] {
            for change in [add_member(newcomer), remove.clone()] {
                let op = patch_group(&format!("/Groups/{g}"), change);
                let reply = a.bulk_under(t, "acme", json!([op]), json!({})).await;
                assert_eq!(
                    reply.expect(200)["Operations"][0]["status"],
                    "200",
                    "{}",
                    reply.raw
                );
                costs.push(reply.dynamodb_calls);
            }
        }
        a.map(t, "Small", Role::Supervisor).await;
        a.map(t, "Big", Role::Maintainer).await;
    }
    assert_eq!(
        costs[..4],
        [3, 3, 3, 3],
        "unmapped: auth, the group's read, the transaction"
    );
    assert_eq!(
        costs[4..],
        [4, 4, 4, 4],
        "mapped: and one query of the tenant's groups"
    );
    assert_eq!(a.role(t, newcomer.parse().unwrap()).await, "worker");
}
