//! Least privilege from behaviour: every function's handler runs in-process
//! with a DynamoDB client that fails any call outside the function's
//! declaration (`directory::store::permissions`, the same declaration
//! tests/infra holds `infra/template.yaml` to). The requests cover each
//! handler's branches: both SCIM profiles, Bearer tokens and Basic auth (a
//! first login, a wrong password, a name nobody holds, a stale `last_login`),
//! claim changes, member changes, deactivations and deletes. Then each
//! function's own grants must all have been used, bar the few listed with
//! their reason: a declaration wider than the code shows up here.
use std::collections::BTreeSet;
use std::future::Future;

use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine;
use directory::admin_api;
use directory::auth;
use directory::domain::orgs::Role;
use directory::http::{Ctx, Profile};
use directory::openapi;
use directory::scim::{self, groups, GROUP_SCHEMA, USER_SCHEMA};
use directory::store::permissions::{Action, Function, Partition};
use directory::store::{table, TokenSpec};
use directory_tests::iam::Guard;
use directory_tests::{get, patch, scim as scim_req, Reply, Req, TestTable};
use lambda_http::http::Method;
use lambda_http::{Body, Request, Response};
use serde_json::{json, Value};

const USERS: &str = "/api/v1/scim/Users";
const GROUPS: &str = "/api/v1/scim/Groups";
const PATCH_OP: &str = directory::scim::patch::PATCH_OP_SCHEMA;
const PASSWORD: &str = "correct horse battery staple";

/// A table with what the requests act on: an admin `root` (a token and a
/// password), a user `carol` (the same, and a member of org `acme`), and the
/// SCIM group `Engineering` with carol in it.
struct World {
    t: TestTable,
    root_id: u64,
    root_token: String,
    carol_id: u64,
    carol_token: String,
    group_id: String,
}

impl World {
    async fn new(profile: Profile) -> World {
        let t = TestTable::with_profile(profile).await;
        let root = t.admin("root").await;
        let root = t.with_password(&root, PASSWORD).await;
        let root_token = t.token(&root).await;
        let carol = t.user("carol").await;
        let carol = t.with_password(&carol, PASSWORD).await;
        let carol_token = t.token(&carol).await;
        let org = t.store.groups().create_org("acme", "Acme").await.unwrap();
        t.store
            .groups()
            .add_member(&org, &t.fresh(carol.id).await, "worker")
            .await
            .unwrap();
        let body = json!({"schemas": [GROUP_SCHEMA], "displayName": "Engineering",
                          "externalId": "eng", "members": [{"value": carol.id.to_string()}]});
        let created = t
            .call(
                groups::create,
                bearer(&root_token, scim_req(Method::POST, GROUPS, &body)),
            )
            .await;
        let group_id = created.expect(201)["id"].as_str().unwrap().to_string();
        World {
            t,
            root_id: root.id,
            root_token,
            carol_id: carol.id,
            carol_token,
            group_id,
        }
    }
}

fn bearer(token: &str, req: Req) -> Request {
    req.header("authorization", &format!("Bearer {token}"))
        .build()
}

/// One function under its declaration: the world, a guarded table for its
/// handler, and what the requests were expected to answer.
struct Exercise {
    world: World,
    guarded: TestTable,
    guard: Guard,
}

impl Exercise {
    async fn new(function: &str, profile: Profile) -> Exercise {
        let world = World::new(profile).await;
        let (guarded, guard) = world.t.guarded(function).await;
        Exercise {
            world,
            guarded,
            guard,
        }
    }

    /// As [`Exercise::new`], under a declaration of the test's own.
    async fn under(function: Function, profile: Profile) -> Exercise {
        let world = World::new(profile).await;
        let guard = Guard::new(function, world.t.store.table());
        let guarded = world.t.guarded_by(&guard).await;
        Exercise {
            world,
            guarded,
            guard,
        }
    }

    /// Runs `handler` on `req` under the declaration; the answer must be
    /// `status` (a refused call would make it a 500 or 503: then the
    /// refusals are the message).
    async fn call<F, Fut>(&self, handler: F, req: Request, status: u16) -> Reply
    where
        F: Fn(Ctx, Request) -> Fut + Sync,
        Fut: Future<Output = Response<Body>>,
    {
        let what = format!("{} {}", req.method(), req.uri());
        let reply = self.guarded.call(handler, req).await;
        assert_eq!(
            reply.status.as_u16(),
            status,
            "{what}: {}\nrefused: {:#?}",
            reply.raw,
            self.guard.violations()
        );
        reply
    }

    /// The branches of authentication, through `probe` (a request the
    /// handler answers without changing anything once authenticated) with
    /// Basic credentials: a wrong password (the failure count on the
    /// username's claim), a right one (the count cleared, the first
    /// `last_login`), a stale `last_login` refreshed, a name nobody holds
    /// (a failure tracker with a TTL).
    async fn basic_auth<F, Fut>(&self, handler: F, probe: impl Fn() -> Req, status: u16)
    where
        F: Fn(Ctx, Request) -> Fut + Sync + Copy,
        Fut: Future<Output = Response<Body>>,
    {
        self.call(handler, probe().basic("root", "wrong").build(), 401)
            .await;
        self.call(handler, probe().basic("root", PASSWORD).build(), status)
            .await;
        // In whole seconds, as the store writes such a time.
        let two_hours_ago = (chrono::Utc::now() - chrono::TimeDelta::hours(2))
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        self.world
            .t
            .edit_item(
                table::user(self.world.root_id),
                "SET last_login = :t",
                &[],
                &[(":t", AttributeValue::S(two_hours_ago))],
            )
            .await;
        self.call(handler, probe().basic("root", PASSWORD).build(), status)
            .await;
        self.call(handler, probe().basic("nobody", "guess").build(), 401)
            .await;
        let used = self.guard.used();
        for partition in [Partition::Users, Partition::Usernames] {
            assert!(
                used.contains(&(Action::UpdateItem, "table".into(), Some(partition))),
                "no authentication write on {partition:?}: {used:#?}"
            );
        }
    }

    /// See [`assert_used`].
    fn finish(self, unused: &[(&str, &str)]) {
        assert_used(&self.guard, unused);
    }

    fn root(&self, req: Req) -> Request {
        bearer(&self.world.root_token, req)
    }

    fn carol_path(&self, base: &str) -> String {
        format!("{base}/{}", self.world.carol_id)
    }
}

/// No call was refused, and every action and partition the function's own
/// grants name was used (`dynamodb:PutItem on table`, `a write of ORG#*`),
/// but for `unused`: (what, why) pairs, each of which must indeed be unused,
/// so that an excuse does not outlive its reason.
fn assert_used(guard: &Guard, unused: &[(&str, &str)]) {
    let refused = guard.violations();
    assert!(refused.is_empty(), "refused: {refused:#?}");
    let used = guard.used();
    let mut missing = BTreeSet::new();
    for grant in guard.function().grants {
        let resource = grant.resource.describe();
        for &action in grant.actions {
            if !used.iter().any(|(a, r, _)| *a == action && *r == resource) {
                missing.insert(format!("{} on {resource}", action.iam()));
            }
        }
        for &partition in grant.partitions.unwrap_or_default() {
            let written = used.iter().any(|(a, r, p)| {
                grant.actions.contains(a) && *r == resource && *p == Some(partition)
            });
            if !written {
                missing.insert(format!("a write of {}", partition.leading_keys()));
            }
        }
    }
    let excused: BTreeSet<String> = unused.iter().map(|(what, _)| what.to_string()).collect();
    let name = guard.function().name;
    assert!(
        missing.is_subset(&excused),
        "{name}: declared but never used: {:#?}\nused: {used:#?}",
        missing.difference(&excused).collect::<Vec<_>>()
    );
    assert!(
        excused.is_subset(&missing),
        "{name}: excused but used after all: {:#?}",
        excused.difference(&missing).collect::<Vec<_>>()
    );
}

/// Makes the org of group `group_id` a SCIM tenant: a token of its own and a
/// verified domain. Returns the org's slug and the token.
async fn make_tenant(t: &TestTable, group_id: u64) -> (String, String) {
    let slug = t.store.groups().get(group_id).await.unwrap().unwrap().slug;
    let org = t.store.tenants().get(&slug).await.unwrap().unwrap();
    t.store
        .tenants()
        .add_domain(&org, "example.com")
        .await
        .unwrap();
    let spec = directory::store::TokenSpec {
        read_only: false,
        expires_at: None,
    };
    let token = directory::auth::mint_tenant_token(&t.store, &org, &spec)
        .await
        .unwrap();
    // A user it owns, for its lists to read.
    let mut owned = directory::domain::user::User::new(format!("owned@{slug}.example.com"));
    owned.owner = Some(org.id);
    t.store.users().create(owned).await.unwrap();
    (slug, token)
}

/// The base of tenant `tnt` ([`tenant`]).
const TENANT_GROUPS: &str = "/api/v1/scim/orgs/tnt/Groups";

/// Tenant `tnt` (any name), made on the unguarded table: its token, a user
/// it provisioned (tina), and its group name `Leads` mapped to supervisor,
/// so tenant group writes carry role writes.
async fn tenant(e: &Exercise) -> (String, String) {
    let t = &e.world.t;
    t.store.groups().create_org("tnt", "Tnt").await.unwrap();
    let org = t.store.tenants().get("tnt").await.unwrap().unwrap();
    t.store.tenants().set_any_domain(&org, true).await.unwrap();
    t.store
        .tenants()
        .map_group(&org, "Leads", Some(Role::Supervisor))
        .await
        .unwrap();
    let spec = TokenSpec {
        read_only: false,
        expires_at: None,
    };
    let token = auth::mint_tenant_token(&t.store, &org, &spec)
        .await
        .unwrap();
    let tina = t
        .call(
            scim::create,
            bearer(
                &token,
                scim_req(
                    Method::POST,
                    "/api/v1/scim/orgs/tnt/Users",
                    &scim_user("tina"),
                ),
            ),
        )
        .await;
    let id = tina.expect(201)["id"].as_str().unwrap().to_string();
    (token, id)
}

/// Tenant group `Leads` with `member` in it, made on the unguarded table:
/// its path.
async fn leads(e: &Exercise, token: &str, member: &str) -> String {
    let body = json!({"schemas": [GROUP_SCHEMA], "displayName": "Leads",
                      "members": [{"value": member}]});
    let r = e
        .world
        .t
        .call(
            groups::create,
            bearer(token, scim_req(Method::POST, TENANT_GROUPS, &body)),
        )
        .await;
    format!("{TENANT_GROUPS}/{}", r.expect(201)["id"].as_str().unwrap())
}

fn scim_user(name: &str) -> Value {
    json!({
        "schemas": [USER_SCHEMA],
        "userName": name,
        "externalId": format!("ext-{name}"),
        "name": {"givenName": "Given", "familyName": "Family"},
        "emails": [{"value": format!("{name}@example.com"), "type": "work", "primary": true}],
    })
}

fn patch_op(ops: Value) -> Value {
    json!({"schemas": [PATCH_OP], "Operations": ops})
}

/// `s` percent-encoded for a query string.
fn form(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

// ---------------------------------------------------------------- admin API

#[tokio::test]
async fn users_list() {
    let e = Exercise::new("users-list", Profile::Odm).await;
    let filter = form(&json!({"==": [{"var": "username"}, "carol"]}).to_string());
    for query in [
        String::new(),
        "?search=car".into(),
        "?sort=-username".into(),
        "?org=acme".into(),
        format!("?filter={filter}"),
        "?page_size=1&page=2".into(),
        "?username=carol&is_active=true".into(),
    ] {
        let path = format!("/api/users{query}");
        e.call(
            admin_api::list,
            get(&path).token(&e.world.root_token).build(),
            200,
        )
        .await;
    }
    // A non-admin lists themselves and their orgs.
    let own = get("/api/users?org=acme")
        .token(&e.world.carol_token)
        .build();
    e.call(admin_api::list, own, 200).await;
    e.basic_auth(admin_api::list, || get("/api/users"), 200)
        .await;
    e.finish(&[]);
}

#[tokio::test]
async fn users_self_and_retrieve() {
    let e = Exercise::new("users-self", Profile::Odm).await;
    let me = get("/api/users/self").token(&e.world.carol_token).build();
    e.call(admin_api::retrieve_self, me, 200).await;
    e.basic_auth(admin_api::retrieve_self, || get("/api/users/self"), 200)
        .await;
    e.finish(&[]);

    let e = Exercise::new("users-retrieve", Profile::Odm).await;
    let path = e.carol_path("/api/users");
    for (req, status) in [
        (get(&path).token(&e.world.root_token), 200),
        (
            get(&format!("{path}?org=acme")).token(&e.world.carol_token),
            200,
        ),
        (get("/api/users/999999").token(&e.world.root_token), 404),
    ] {
        e.call(admin_api::retrieve, req.build(), status).await;
    }
    e.basic_auth(admin_api::retrieve, || get("/api/users/999999"), 404)
        .await;
    e.finish(&[]);
}

#[tokio::test]
async fn users_fallback() {
    let e = Exercise::new("users-fallback", Profile::Odm).await;
    let put = || Req::new(Method::PUT, "/api/users/1");
    e.call(
        admin_api::fallback,
        put().token(&e.world.root_token).build(),
        405,
    )
    .await;
    let unknown = get("/api/nothing").token(&e.world.root_token).build();
    e.call(admin_api::fallback, unknown, 404).await;
    e.basic_auth(admin_api::fallback, put, 405).await;
    e.finish(&[]);
}

#[tokio::test]
async fn users_update() {
    let e = Exercise::new("users-update", Profile::Odm).await;
    let path = e.carol_path("/api/users");
    let root = &e.world.root_token;
    for body in [
        json!({"first_name": "Caroline"}),
        json!({"username": "caroline", "email": "caroline@example.org"}),
        json!({"groups": ["admin"], "is_staff": true}),
        // Deactivation revokes every token.
        json!({"is_active": false}),
        json!({"is_active": true}),
    ] {
        e.call(
            admin_api::partial_update,
            patch(&path, &body).token(root).build(),
            200,
        )
        .await;
    }
    // A user changes their own name (with a token issued after the revocation).
    let carol = e.world.t.fresh(e.world.carol_id).await;
    let token = e.world.t.token(&carol).await;
    let own = patch(&path, &json!({"last_name": "C."}))
        .token(&token)
        .build();
    e.call(admin_api::partial_update, own, 200).await;
    let body = json!({"first_name": "Root"});
    let probe = || patch(&format!("/api/users/{}", e.world.root_id), &body);
    e.basic_auth(admin_api::partial_update, probe, 200).await;
    e.finish(&[
        // SCIM's externalId: the admin API cannot set one, but the update
        // moves any claim the user holds.
        ("a write of EXTID#*", "the admin API sets no externalId"),
    ]);
}

#[tokio::test]
async fn users_destroy() {
    let e = Exercise::new("users-destroy", Profile::Odm).await;
    // carol: claims, a token, a membership.
    let path = e.carol_path("/api/users");
    e.call(
        admin_api::destroy,
        Req::new(Method::DELETE, &path)
            .token(&e.world.root_token)
            .build(),
        204,
    )
    .await;
    // A tenant's user leaves its tenant groups.
    let (token, tina) = tenant(&e).await;
    leads(&e, &token, &tina).await;
    e.call(
        admin_api::destroy,
        Req::new(Method::DELETE, &format!("/api/users/{tina}"))
            .token(&e.world.root_token)
            .build(),
        204,
    )
    .await;
    // A user deletes themselves.
    let dave = e.world.t.user("dave").await;
    let token = e.world.t.token(&dave).await;
    let own = Req::new(Method::DELETE, &format!("/api/users/{}", dave.id));
    e.call(admin_api::destroy, own.token(&token).build(), 204)
        .await;
    e.basic_auth(
        admin_api::destroy,
        || Req::new(Method::DELETE, "/api/users/999999"),
        404,
    )
    .await;
    e.finish(&[(
        "dynamodb:PutItem on table",
        "only a user with more tokens and memberships than one transaction holds sheds them first",
    )]);
}

// ---------------------------------------------------------------- organizations and memberships

/// The id of carol's membership of acme, and acme's id.
async fn carol_in_acme(e: &Exercise) -> (u64, u64) {
    let acme = e.world.t.store.groups().org("acme").await.unwrap().unwrap();
    (acme.id * 10_000_000_000 + e.world.carol_id, acme.id)
}

#[tokio::test]
async fn organizations_list_and_retrieve() {
    let e = Exercise::new("organizations-list", Profile::Odm).await;
    for (token, query) in [
        (&e.world.root_token, ""),
        (&e.world.root_token, "?search=ac&sort=name&page_size=1"),
        (&e.world.carol_token, ""),
        (&e.world.carol_token, "?slug=acme"),
    ] {
        let path = format!("/api/organizations{query}");
        e.call(
            admin_api::organizations_list,
            get(&path).token(token).build(),
            200,
        )
        .await;
    }
    e.basic_auth(
        admin_api::organizations_list,
        || get("/api/organizations"),
        200,
    )
    .await;
    e.finish(&[]);

    let e = Exercise::new("organizations-retrieve", Profile::Odm).await;
    let (_, acme) = carol_in_acme(&e).await;
    let path = format!("/api/organizations/{acme}");
    for (token, status) in [(&e.world.root_token, 200), (&e.world.carol_token, 200)] {
        e.call(
            admin_api::organizations_retrieve,
            get(&path).token(token).build(),
            status,
        )
        .await;
    }
    e.basic_auth(
        admin_api::organizations_retrieve,
        || get("/api/organizations/999"),
        404,
    )
    .await;
    e.finish(&[]);
}

#[tokio::test]
async fn memberships_list_and_retrieve() {
    let e = Exercise::new("memberships-list", Profile::Odm).await;
    for (token, query) in [
        (&e.world.root_token, "?org=acme"),
        (&e.world.root_token, ""),
        (&e.world.root_token, "?org=acme&user=carol&sort=user"),
        (&e.world.carol_token, ""),
        (&e.world.carol_token, "?org=acme&role=worker"),
    ] {
        let path = format!("/api/memberships{query}");
        e.call(
            admin_api::memberships_list,
            get(&path).token(token).build(),
            200,
        )
        .await;
    }
    e.basic_auth(
        admin_api::memberships_list,
        || get("/api/memberships?org=acme"),
        200,
    )
    .await;
    e.finish(&[]);

    let e = Exercise::new("memberships-retrieve", Profile::Odm).await;
    let (carol, _) = carol_in_acme(&e).await;
    let path = format!("/api/memberships/{carol}");
    for (token, status) in [(&e.world.root_token, 200), (&e.world.carol_token, 200)] {
        e.call(
            admin_api::memberships_retrieve,
            get(&path).token(token).build(),
            status,
        )
        .await;
    }
    e.basic_auth(
        admin_api::memberships_retrieve,
        || get("/api/memberships/7"),
        404,
    )
    .await;
    e.finish(&[]);
}

// ---------------------------------------------------------------- SCIM Users

#[tokio::test]
async fn scim_users_create() {
    for profile in [Profile::Odm, Profile::Rfc] {
        let e = Exercise::new("scim-users-create", profile).await;
        let created = e
            .call(
                scim::create,
                e.root(scim_req(Method::POST, USERS, &scim_user("bjensen"))),
                201,
            )
            .await;
        let id = created.body["id"].as_str().unwrap().parse().unwrap();
        e.world.t.token(&e.world.t.fresh(id).await).await;
        // An existing userName of a provisioned user: odm updates it (moving
        // its claims, revoking tokens when it deactivates), rfc refuses.
        let mut again = scim_user("bjensen");
        again["emails"] = json!([{"value": "barbara@elsewhere.org", "primary": true}]);
        again["externalId"] = json!("ext-moved");
        again["active"] = json!(false);
        let status = if profile == Profile::Odm { 201 } else { 409 };
        e.call(
            scim::create,
            e.root(scim_req(Method::POST, USERS, &again)),
            status,
        )
        .await;
        // Under a tenant base: the user and its org's member item (ORG#).
        let group: u64 = e.world.group_id.parse().unwrap();
        let (slug, tenant) = make_tenant(&e.world.t, group).await;
        let mut hire = scim_user("hire");
        hire["userName"] = json!("hire@example.com");
        let path = format!("/api/v1/scim/orgs/{slug}/Users");
        e.call(
            scim::create,
            bearer(&tenant, scim_req(Method::POST, &path, &hire)),
            201,
        )
        .await;
        let probe = || scim_req(Method::POST, USERS, &json!({"schemas": [USER_SCHEMA]}));
        e.basic_auth(scim::create, probe, 400).await;
        if profile == Profile::Odm {
            e.finish(&[]);
        } else {
            let why = "only odm's create-on-existing-userName moves claims and revokes tokens";
            e.finish(&[
                ("dynamodb:DeleteItem on table", why),
                ("a write of TOKEN#*", why),
            ]);
        }
    }
}

#[tokio::test]
async fn scim_users_list_search_and_get() {
    for profile in [Profile::Odm, Profile::Rfc] {
        let e = Exercise::new("scim-users-list", profile).await;
        for query in [
            "",
            "?startIndex=2&count=1",
            "?filter=userName%20eq%20%22carol%22",
            "?filter=externalId%20eq%20%22none%22",
            // A modification time reads the modified index (a delta sync).
            "?filter=meta.lastModified%20eq%20%222026-01-01T00:00:00Z%22",
            "?filter=meta.lastModified%20eq%20%222026-01-01T00:00:00Z%22&cursor=",
        ] {
            let path = format!("{USERS}{query}");
            e.call(scim::list, e.root(Req::new(Method::GET, &path)), 200)
                .await;
        }
        // Under a tenant base: the org's users, from the tenant index.
        let group: u64 = e.world.group_id.parse().unwrap();
        let (slug, tenant) = make_tenant(&e.world.t, group).await;
        for query in ["", "?cursor"] {
            let path = format!("/api/v1/scim/orgs/{slug}/Users{query}");
            e.call(
                scim::list,
                bearer(&tenant, Req::new(Method::GET, &path)),
                200,
            )
            .await;
        }
        e.basic_auth(scim::list, || Req::new(Method::GET, USERS), 200)
            .await;
        e.finish(&[]);

        let e = Exercise::new("scim-users-search", profile).await;
        let path = format!("{USERS}/.search");
        for body in [
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
                   "filter": "userName eq \"carol\"", "count": 10}),
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
                   "startIndex": 1, "count": 1}),
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
                   "filter": "meta.lastModified eq \"2026-01-01T00:00:00Z\""}),
        ] {
            e.call(
                scim::search,
                e.root(scim_req(Method::POST, &path, &body)),
                200,
            )
            .await;
        }
        // The root search serves this function's second route: Users and
        // Groups (the group records and, projected, their members).
        for body in [
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"]}),
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
                   "filter": "displayName eq \"carol\""}),
        ] {
            e.call(
                scim::search,
                e.root(scim_req(Method::POST, "/api/v1/scim/.search", &body)),
                200,
            )
            .await;
        }
        let group: u64 = e.world.group_id.parse().unwrap();
        let (slug, tenant) = make_tenant(&e.world.t, group).await;
        let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"]});
        let path = format!("/api/v1/scim/orgs/{slug}/Users/.search");
        e.call(
            scim::search,
            bearer(&tenant, scim_req(Method::POST, &path, &body)),
            200,
        )
        .await;
        let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"]});
        e.basic_auth(scim::search, || scim_req(Method::POST, &path, &body), 200)
            .await;
        e.finish(&[]);

        let e = Exercise::new("scim-users-get", profile).await;
        let path = e.carol_path(USERS);
        e.call(scim::get, e.root(Req::new(Method::GET, &path)), 200)
            .await;
        let missing = format!("{USERS}/999999");
        e.call(scim::get, e.root(Req::new(Method::GET, &missing)), 404)
            .await;
        e.basic_auth(scim::get, || Req::new(Method::GET, &missing), 404)
            .await;
        e.finish(&[]);
    }
}

#[tokio::test]
async fn scim_users_replace() {
    for profile in [Profile::Odm, Profile::Rfc] {
        let e = Exercise::new("scim-users-replace", profile).await;
        let path = e.carol_path(USERS);
        let mut body = scim_user("caroline");
        e.call(
            scim::replace,
            e.root(scim_req(Method::PUT, &path, &body)),
            200,
        )
        .await;
        body["active"] = json!(false);
        body["externalId"] = json!("ext-other");
        e.call(
            scim::replace,
            e.root(scim_req(Method::PUT, &path, &body)),
            200,
        )
        .await;
        let missing = format!("{USERS}/999999");
        let probe = || scim_req(Method::PUT, &missing, &scim_user("ghost"));
        e.basic_auth(scim::replace, probe, 404).await;
        e.finish(&[]);
    }
}

#[tokio::test]
async fn scim_users_patch() {
    for profile in [Profile::Odm, Profile::Rfc] {
        let e = Exercise::new("scim-users-patch", profile).await;
        let path = e.carol_path(USERS);
        for ops in [
            json!([{"op": "replace", "path": "userName", "value": "caroline"}]),
            json!([{"op": "add", "path": "externalId", "value": "ext-carol"}]),
            json!([{"op": "replace", "path": "emails[type eq \"work\"].value", "value": "c@example.org"}]),
            json!([{"op": "replace", "value": {"active": false}}]),
            json!([{"op": "remove", "path": "externalId"}]),
        ] {
            let req = e.root(scim_req(Method::PATCH, &path, &patch_op(ops.clone())));
            let reply = e.guarded.call(scim::patch, req).await;
            assert!(
                matches!(reply.status.as_u16(), 200 | 204),
                "{ops}: {}\nrefused: {:#?}",
                reply.raw,
                e.guard.violations()
            );
        }
        let missing = format!("{USERS}/999999");
        let ops = patch_op(json!([{"op": "replace", "path": "active", "value": true}]));
        e.basic_auth(scim::patch, || scim_req(Method::PATCH, &missing, &ops), 404)
            .await;
        e.finish(&[]);
    }
}

#[tokio::test]
async fn scim_users_delete() {
    for profile in [Profile::Odm, Profile::Rfc] {
        let e = Exercise::new("scim-users-delete", profile).await;
        // odm deactivates (revoking tokens), rfc deletes: carol with her
        // token and membership, and a provisioned user with an externalId.
        let path = e.carol_path(USERS);
        e.call(scim::delete, e.root(Req::new(Method::DELETE, &path)), 204)
            .await;
        let provisioned = e
            .world
            .t
            .call(
                scim::create,
                e.root(scim_req(Method::POST, USERS, &scim_user("bjensen"))),
            )
            .await;
        let path = format!(
            "{USERS}/{}",
            provisioned.expect(201)["id"].as_str().unwrap()
        );
        e.call(scim::delete, e.root(Req::new(Method::DELETE, &path)), 204)
            .await;
        // A tenant's user (rfc: it leaves its tenant groups).
        let (token, tina) = tenant(&e).await;
        leads(&e, &token, &tina).await;
        let path = format!("/api/v1/scim/orgs/tnt/Users/{tina}");
        e.call(
            scim::delete,
            bearer(&token, Req::new(Method::DELETE, &path)),
            204,
        )
        .await;
        let missing = format!("{USERS}/999999");
        e.basic_auth(scim::delete, || Req::new(Method::DELETE, &missing), 404)
            .await;
        match profile {
            Profile::Odm => e.finish(&[
                (
                    "a write of TGROUPS#*",
                    "odm deactivates: group memberships stay",
                ),
                ("a write of ORG#*", "odm deactivates: memberships stay"),
                ("a write of EMAIL#*", "odm deactivates: claims stay"),
                ("a write of EXTID#*", "odm deactivates: claims stay"),
            ]),
            Profile::Rfc => e.finish(&[(
                "dynamodb:PutItem on table",
                "rfc deletes: only a large user is Put while it sheds items",
            )]),
        }
    }
}

// ---------------------------------------------------------------- SCIM Groups

fn group_members(ids: &[u64]) -> Value {
    Value::Array(
        ids.iter()
            .map(|id| json!({"value": id.to_string()}))
            .collect(),
    )
}

#[tokio::test]
async fn scim_groups_create() {
    for profile in [Profile::Odm, Profile::Rfc] {
        let e = Exercise::new("scim-groups-create", profile).await;
        let empty = json!({"schemas": [GROUP_SCHEMA], "displayName": "Empty", "members": []});
        e.call(
            groups::create,
            e.root(scim_req(Method::POST, GROUPS, &empty)),
            201,
        )
        .await;
        let dave = e.world.t.user("dave").await;
        let with_members = json!({"schemas": [GROUP_SCHEMA], "displayName": "Staff",
                                  "externalId": "staff",
                                  "members": group_members(&[e.world.carol_id, dave.id])});
        e.call(
            groups::create,
            e.root(scim_req(Method::POST, GROUPS, &with_members)),
            201,
        )
        .await;
        let taken = json!({"schemas": [GROUP_SCHEMA], "displayName": "engineering"});
        e.call(
            groups::create,
            e.root(scim_req(Method::POST, GROUPS, &taken)),
            409,
        )
        .await;
        // A tenant's group, mapped to a role: its record, name claim and role writes.
        let (token, tina) = tenant(&e).await;
        let mapped = json!({"schemas": [GROUP_SCHEMA], "displayName": "Leads",
                            "members": [{"value": tina}]});
        e.call(
            groups::create,
            bearer(&token, scim_req(Method::POST, TENANT_GROUPS, &mapped)),
            201,
        )
        .await;
        let probe = || scim_req(Method::POST, GROUPS, &json!({"schemas": [GROUP_SCHEMA]}));
        e.basic_auth(groups::create, probe, 400).await;
        e.finish(&[
            ("a write of COUNTS", COUNTS_WHY),
            (
                "dynamodb:DeleteItem on table",
                "a create only adds members; the member step it shares with PATCH can also remove",
            ),
        ]);
    }
}

/// Why the group writers hold COUNTS without writing it in these requests.
const COUNTS_WHY: &str = "every transaction goes through Store::commit, which adds the user \
                          counts when a user's count changes; member changes never change one";

#[tokio::test]
async fn scim_groups_list_search_and_get() {
    let e = Exercise::new("scim-groups-list", Profile::Odm).await;
    for query in [
        "",
        "?startIndex=1&count=1",
        "?filter=displayName%20eq%20%22Engineering%22",
        "?excludedAttributes=members",
    ] {
        let path = format!("{GROUPS}{query}");
        e.call(groups::list, e.root(Req::new(Method::GET, &path)), 200)
            .await;
    }
    e.basic_auth(groups::list, || Req::new(Method::GET, GROUPS), 200)
        .await;
    e.finish(&[]);

    let e = Exercise::new("scim-groups-search", Profile::Odm).await;
    let path = format!("{GROUPS}/.search");
    let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
                      "filter": "externalId eq \"eng\""});
    e.call(
        groups::search,
        e.root(scim_req(Method::POST, &path, &body)),
        200,
    )
    .await;
    e.basic_auth(groups::search, || scim_req(Method::POST, &path, &body), 200)
        .await;
    e.finish(&[]);

    let e = Exercise::new("scim-groups-get", Profile::Odm).await;
    let path = format!("{GROUPS}/{}", e.world.group_id);
    e.call(groups::get, e.root(Req::new(Method::GET, &path)), 200)
        .await;
    let missing = format!("{GROUPS}/999999");
    e.basic_auth(groups::get, || Req::new(Method::GET, &missing), 404)
        .await;
    e.finish(&[]);
}

#[tokio::test]
async fn scim_groups_replace_and_patch() {
    let e = Exercise::new("scim-groups-replace", Profile::Odm).await;
    let path = format!("{GROUPS}/{}", e.world.group_id);
    let dave = e.world.t.user("dave").await;
    let body = json!({"schemas": [GROUP_SCHEMA], "displayName": "Eng", "externalId": "eng-2",
                      "members": group_members(&[dave.id])});
    e.call(
        groups::replace,
        e.root(scim_req(Method::PUT, &path, &body)),
        200,
    )
    .await;
    // A tenant group renamed out of its mapping: record, claims, role writes.
    let (token, tina) = tenant(&e).await;
    let path = leads(&e, &token, &tina).await;
    let renamed = json!({"schemas": [GROUP_SCHEMA], "displayName": "Staff", "members": []});
    e.call(
        groups::replace,
        bearer(&token, scim_req(Method::PUT, &path, &renamed)),
        200,
    )
    .await;
    let missing = format!("{GROUPS}/999999");
    e.basic_auth(
        groups::replace,
        || scim_req(Method::PUT, &missing, &body),
        404,
    )
    .await;
    e.finish(&[("a write of COUNTS", COUNTS_WHY)]);

    let e = Exercise::new("scim-groups-patch", Profile::Odm).await;
    let path = format!("{GROUPS}/{}", e.world.group_id);
    let dave = e.world.t.user("dave").await;
    for ops in [
        json!([{"op": "replace", "value": {"displayName": "Eng", "externalId": "eng-2"}}]),
        json!([{"op": "add", "path": "members", "value": group_members(&[dave.id])}]),
        json!([{"op": "remove", "path": format!("members[value eq \"{}\"]", e.world.carol_id)}]),
        json!([{"op": "remove", "path": "externalId"}]),
    ] {
        e.call(
            groups::patch,
            e.root(scim_req(Method::PATCH, &path, &patch_op(ops))),
            204,
        )
        .await;
    }
    let (token, tina) = tenant(&e).await;
    let path = leads(&e, &token, &tina).await;
    let ops = json!([{"op": "replace", "path": "displayName", "value": "Staff"}]);
    e.call(
        groups::patch,
        bearer(&token, scim_req(Method::PATCH, &path, &patch_op(ops))),
        204,
    )
    .await;
    let missing = format!("{GROUPS}/999999");
    let ops = patch_op(json!([{"op": "replace", "path": "displayName", "value": "x"}]));
    e.basic_auth(
        groups::patch,
        || scim_req(Method::PATCH, &missing, &ops),
        404,
    )
    .await;
    e.finish(&[("a write of COUNTS", COUNTS_WHY)]);
}

#[tokio::test]
async fn scim_groups_delete() {
    let e = Exercise::new("scim-groups-delete", Profile::Odm).await;
    // An org that is a tenant: its tokens, domain claims and OAuth clients go with it.
    let t = &e.world.t;
    let (slug, _) = make_tenant(t, e.world.group_id.parse().unwrap()).await;
    let org = t.store.tenants().get(&slug).await.unwrap().unwrap();
    directory::oauth::new_client(&t.store, &org, false)
        .await
        .unwrap();
    let path = format!("{GROUPS}/{}", e.world.group_id);
    e.call(groups::delete, e.root(Req::new(Method::DELETE, &path)), 204)
        .await;
    let (token, tina) = tenant(&e).await;
    let path = leads(&e, &token, &tina).await;
    e.call(
        groups::delete,
        bearer(&token, Req::new(Method::DELETE, &path)),
        204,
    )
    .await;
    let missing = format!("{GROUPS}/999999");
    e.basic_auth(groups::delete, || Req::new(Method::DELETE, &missing), 404)
        .await;
    e.finish(&[("a write of COUNTS", COUNTS_WHY)]);
}

// ---------------------------------------------------------------- SCIM /Me and /Bulk (rfc)

const ME: &str = "/api/v1/scim/Me";

/// An admin of the exercise's table other than root, with a token: one
/// whose own /Me may deactivate them.
async fn boss(e: &Exercise) -> String {
    let boss = e.world.t.admin("boss").await;
    e.world.t.token(&boss).await
}

#[tokio::test]
async fn scim_me_get() {
    let e = Exercise::new("scim-me-get", Profile::Rfc).await;
    for token in [&e.world.carol_token, &e.world.root_token] {
        e.call(scim::me::get, bearer(token, Req::new(Method::GET, ME)), 200)
            .await;
    }
    e.basic_auth(scim::me::get, || Req::new(Method::GET, ME), 200)
        .await;
    e.finish(&[]);
}

#[tokio::test]
async fn scim_me_patch() {
    let e = Exercise::new("scim-me-patch", Profile::Rfc).await;
    // A user changes what is theirs; what is not is refused before any write.
    let own = patch_op(json!([{"op": "replace", "path": "displayName", "value": "Carol C."}]));
    let not_own = patch_op(json!([{"op": "replace", "path": "title", "value": "CEO"}]));
    for (ops, status) in [(&own, 200), (&not_own, 403)] {
        let req = bearer(&e.world.carol_token, scim_req(Method::PATCH, ME, ops));
        e.call(scim::me::patch, req, status).await;
    }
    // An admin's own claims move, and deactivating themselves revokes their token.
    let token = boss(&e).await;
    for ops in [
        json!([{"op": "replace", "path": "userName", "value": "the-boss"}]),
        json!([{"op": "add", "path": "emails", "value": [{"value": "boss@example.org", "type": "work"}]}]),
        json!([{"op": "add", "path": "externalId", "value": "ext-boss"}]),
        json!([{"op": "replace", "path": "active", "value": false}]),
    ] {
        let req = bearer(&token, scim_req(Method::PATCH, ME, &patch_op(ops)));
        e.call(scim::me::patch, req, 200).await;
    }
    let probe = || scim_req(Method::PATCH, ME, &own);
    e.basic_auth(scim::me::patch, probe, 200).await;
    e.finish(&[]);
}

#[tokio::test]
async fn scim_me_replace() {
    let e = Exercise::new("scim-me-replace", Profile::Rfc).await;
    let shown = e
        .world
        .t
        .call(
            scim::me::get,
            bearer(&e.world.carol_token, Req::new(Method::GET, ME)),
        )
        .await
        .expect(200)
        .clone();
    let mut own = shown.clone();
    own["displayName"] = json!("Carol C.");
    let mut not_own = shown;
    not_own["userName"] = json!("someone-else");
    for (body, status) in [(&own, 200), (&not_own, 403)] {
        let req = bearer(&e.world.carol_token, scim_req(Method::PUT, ME, body));
        e.call(scim::me::replace, req, status).await;
    }
    // An admin replaces all of theirs: claims move, a deactivation revokes tokens.
    let token = boss(&e).await;
    let mut body = scim_user("the-boss");
    body["active"] = json!(false);
    let req = bearer(&token, scim_req(Method::PUT, ME, &body));
    e.call(scim::me::replace, req, 200).await;
    let probe = || scim_req(Method::PUT, ME, &scim_user("root"));
    e.basic_auth(scim::me::replace, probe, 200).await;
    e.finish(&[]);
}

#[tokio::test]
async fn scim_bulk() {
    let e = Exercise::new("scim-bulk", Profile::Rfc).await;
    // dave holds a token, which his deactivation revokes (TOKEN#*).
    let dave = e.world.t.user("dave").await;
    e.world.t.token(&dave).await;
    // The deleted org is a tenant: its tokens, domain claims and OAuth clients go with it
    // (TOKEN#*, DOMAIN#*, OAUTHCLIENT#*).
    let t = &e.world.t;
    let (slug, _) = make_tenant(t, e.world.group_id.parse().unwrap()).await;
    let org = t.store.tenants().get(&slug).await.unwrap().unwrap();
    directory::oauth::new_client(&t.store, &org, false)
        .await
        .unwrap();
    let ops = json!([
        {"method": "POST", "path": "/Users", "bulkId": "b", "data": scim_user("bjensen")},
        {"method": "PUT", "path": "/Users/bulkId:b", "data": scim_user("barbara")},
        {"method": "PATCH", "path": format!("/Users/{}", dave.id),
         "data": patch_op(json!([{"op": "replace", "path": "active", "value": false}]))},
        {"method": "DELETE", "path": format!("/Users/{}", e.world.carol_id)},
        {"method": "POST", "path": "/Groups", "bulkId": "g",
         "data": {"schemas": [GROUP_SCHEMA], "displayName": "Ops", "externalId": "ops",
                  "members": [{"value": "bulkId:b"}]}},
        {"method": "PATCH", "path": "/Groups/bulkId:g",
         "data": patch_op(json!([{"op": "remove", "path": "members"}]))},
        {"method": "PUT", "path": format!("/Groups/{}", e.world.group_id),
         "data": {"schemas": [GROUP_SCHEMA], "displayName": "Eng"}},
        {"method": "DELETE", "path": "/Groups/bulkId:g"},
        {"method": "DELETE", "path": format!("/Groups/{}", e.world.group_id)},
    ]);
    let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": ops});
    let reply = e
        .call(
            scim::bulk::post,
            e.root(scim_req(Method::POST, "/api/v1/scim/Bulk", &body)),
            200,
        )
        .await;
    let statuses: Vec<&str> = reply.body["Operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        ["201", "200", "200", "204", "201", "200", "200", "204", "204"],
        "{}",
        reply.raw
    );
    // Under a tenant base: the tenant's own groups, a mapped one (its
    // record, name claim and role writes), with a user the bulk creates.
    let (token, tina) = tenant(&e).await;
    let ops = json!([
        {"method": "POST", "path": "/Users", "bulkId": "u", "data": scim_user("tom")},
        {"method": "POST", "path": "/Groups", "bulkId": "g",
         "data": {"schemas": [GROUP_SCHEMA], "displayName": "Leads",
                  "members": [{"value": tina}, {"value": "bulkId:u"}]}},
        {"method": "PATCH", "path": "/Groups/bulkId:g",
         "data": patch_op(json!([{"op": "remove", "path": "members", "value": [{"value": "bulkId:u"}]}]))},
        {"method": "PUT", "path": "/Groups/bulkId:g",
         "data": {"schemas": [GROUP_SCHEMA], "displayName": "Leads"}},
        {"method": "DELETE", "path": "/Groups/bulkId:g"},
    ]);
    let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": ops});
    let path = "/api/v1/scim/orgs/tnt/Bulk";
    let reply = e
        .call(
            scim::bulk::post,
            bearer(&token, scim_req(Method::POST, path, &body)),
            200,
        )
        .await;
    let statuses: Vec<&str> = reply.body["Operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        ["201", "201", "200", "200", "204"],
        "{}",
        reply.raw
    );
    let empty = json!({"Operations": []});
    let probe = || scim_req(Method::POST, "/api/v1/scim/Bulk", &empty);
    e.basic_auth(scim::bulk::post, probe, 200).await;
    e.finish(&[]);
}

// ---------------------------------------------------------------- SCIM, the rest

#[tokio::test]
async fn scim_discovery_and_fallback() {
    let e = Exercise::new("scim-discovery", Profile::Odm).await;
    for path in [
        "/ServiceProviderConfig",
        "/ResourceTypes",
        "/ResourceTypes/Group",
        "/Schemas",
    ] {
        let path = format!("/api/v1/scim{path}");
        e.call(scim::discover, e.root(Req::new(Method::GET, &path)), 200)
            .await;
    }
    let spc = || Req::new(Method::GET, "/api/v1/scim/ServiceProviderConfig");
    e.basic_auth(scim::discover, spc, 200).await;
    e.finish(&[]);

    let e = Exercise::new("scim-fallback", Profile::Odm).await;
    let put = || Req::new(Method::PUT, &format!("{USERS}/.search"));
    e.call(scim::fallback, e.root(put()), 405).await;
    e.basic_auth(scim::fallback, put, 405).await;
    e.finish(&[]);
}

/// The OpenAPI document: public, compiled in, so no DynamoDB call at all,
/// in either form, with credentials or without.
#[tokio::test]
async fn schema_get() {
    let e = Exercise::new("schema-get", Profile::Odm).await;
    let yaml = e
        .call(
            openapi::schema,
            Req::new(Method::GET, "/api/schema").build(),
            200,
        )
        .await;
    assert_eq!(
        yaml.header("content-type"),
        Some("application/vnd.oai.openapi")
    );
    assert!(
        yaml.raw.starts_with("openapi: 3.1.0"),
        "{}",
        &yaml.raw[..40]
    );
    let json = e
        .call(
            openapi::schema,
            e.root(Req::new(Method::GET, "/api/schema/?format=json")),
            200,
        )
        .await;
    assert_eq!(
        json.header("content-type"),
        Some("application/vnd.oai.openapi+json")
    );
    assert_eq!(json.body["openapi"], "3.1.0");
    assert_eq!(json.dynamodb_calls + yaml.dynamodb_calls, 0);
    e.finish(&[]);
}

// ---------------------------------------------------------------- change events

/// The stream function: the subscribers read, a receiver that is down (its
/// failure recorded, its SETs kept), then back (its kept SETs sent and
/// forgotten, its recovery recorded). It never reads a user: the stream
/// brings the images.
#[tokio::test]
async fn events_publish() {
    use directory::events::follow::{Follower, Start};
    use directory::events::{push, KeySource, Publisher, Pusher};
    use directory_tests::receiver::Receiver;

    let t = TestTable::streaming(Profile::Odm).await;
    let (guarded, guard) = t.guarded("events-publish").await;
    let up = Receiver::start().await;
    let down = Receiver::start().await;
    down.stop();
    t.store
        .subscribers()
        .add(&up.url, None, None)
        .await
        .unwrap();
    t.store
        .subscribers()
        .add(&down.url, None, None)
        .await
        .unwrap();
    let mut follower = Follower::new(t.store.client(), t.store.table(), Start::Oldest)
        .await
        .unwrap();
    let publisher = Publisher {
        store: guarded.store.clone(),
        keys: std::sync::Arc::new(KeySource::secret("permissions")),
        pusher: Pusher::new(push::Limits {
            connect_timeout: std::time::Duration::from_millis(300),
            attempt_timeout: std::time::Duration::from_millis(600),
            attempts: 2,
            first_pause: std::time::Duration::from_millis(10),
        }),
        bus: None,
        origin: "https://directory.example".into(),
        budget: std::time::Duration::from_secs(6),
    };
    t.user("dana").await;
    publish_stream(&publisher, &mut follower, &guard).await;
    down.resume();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    t.user("erin").await;
    publish_stream(&publisher, &mut follower, &guard).await;
    assert_eq!(up.accepted().len(), 2);
    assert_eq!(down.accepted().len(), 2, "kept, then sent");
    assert_used(&guard, &[]);
}

/// Hands what the stream holds to `publisher`, each batch taken whole.
async fn publish_stream(
    publisher: &directory::events::Publisher,
    follower: &mut directory::events::follow::Follower,
    guard: &Guard,
) {
    for _ in 0..3 {
        for batch in follower.poll(100).await.unwrap() {
            let batch = serde_json::from_value(batch.event).unwrap();
            let (_, report) = publisher.publish(&batch).await;
            assert_eq!(
                report.failed_from,
                None,
                "{report:?}\nrefused: {:#?}",
                guard.violations()
            );
        }
    }
}

// ---------------------------------------------------------------- the check can fail

#[tokio::test]
async fn a_narrower_declaration_is_caught() {
    // scim-users-patch without PutItem: the versioned Put of the user is refused.
    let narrowed = Function::named("scim-users-patch")
        .unwrap()
        .without(Action::PutItem);
    let e = Exercise::under(narrowed, Profile::Odm).await;
    let path = e.carol_path(USERS);
    let ops = patch_op(json!([{"op": "replace", "path": "userName", "value": "caroline"}]));
    let reply = e
        .guarded
        .call(scim::patch, e.root(scim_req(Method::PATCH, &path, &ops)))
        .await;
    assert!(reply.status.is_server_error(), "{}", reply.raw);
    let refused = e.guard.violations();
    assert!(
        refused
            .iter()
            .any(|v| v.contains("dynamodb:PutItem") && v.contains("USER#")),
        "{refused:#?}"
    );
    // Nothing landed: carol keeps her name.
    assert_eq!(e.world.t.fresh(e.world.carol_id).await.username, "carol");

    // users-destroy without ORG#*: the membership in the delete transaction is refused.
    let narrowed = Function::named("users-destroy")
        .unwrap()
        .without_partition(Partition::Orgs);
    let e = Exercise::under(narrowed, Profile::Odm).await;
    let path = e.carol_path("/api/users");
    let req = Req::new(Method::DELETE, &path)
        .token(&e.world.root_token)
        .build();
    let reply = e.guarded.call(admin_api::destroy, req).await;
    assert!(reply.status.is_server_error(), "{}", reply.raw);
    let refused = e.guard.violations();
    assert!(
        refused
            .iter()
            .any(|v| v.contains("dynamodb:DeleteItem") && v.contains("ORG#acme")),
        "{refused:#?}"
    );

    // A read-only function does not get to write: users-retrieve's
    // declaration under users-update's handler.
    let e = Exercise::under(*Function::named("users-retrieve").unwrap(), Profile::Odm).await;
    let path = e.carol_path("/api/users");
    let req = patch(&path, &json!({"first_name": "X"}))
        .token(&e.world.root_token)
        .build();
    let reply = e.guarded.call(admin_api::partial_update, req).await;
    assert!(reply.status.is_server_error(), "{}", reply.raw);
    assert!(!e.guard.violations().is_empty());

    // The wider auth write: a last_login refresh that also set another
    // attribute is refused under a read-only declaration.
    let guard = Guard::for_binary("users-self", e.world.t.store.table());
    let sneaky = e.world.t.guarded_by(&guard).await;
    let (pk, sk) = table::user(e.world.carol_id);
    let out = sneaky
        .store
        .client()
        .update_item()
        .table_name(sneaky.store.table())
        .set_key(Some(directory::store::table::key(pk, sk)))
        .update_expression("SET last_login = :t, is_superuser = :yes")
        .expression_attribute_values(":t", AttributeValue::S("now".into()))
        .expression_attribute_values(":yes", AttributeValue::Bool(true))
        .send()
        .await;
    assert!(out.is_err());
    assert!(
        guard
            .violations()
            .iter()
            .any(|v| v.contains("is_superuser")),
        "{:#?}",
        guard.violations()
    );
}

// ---------------------------------------------------------------- OAuth

#[tokio::test]
async fn oauth_token() {
    let e = Exercise::new("oauth-token", Profile::Odm).await;
    let org = e
        .world
        .t
        .store
        .tenants()
        .get("acme")
        .await
        .unwrap()
        .unwrap();
    let (id, secret) = directory::oauth::new_client(&e.world.t.store, &org, false)
        .await
        .unwrap();
    let grant = |id: &str, secret: &str| {
        let pair = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
        Req::new(Method::POST, "/api/v1/oauth/token")
            .header("content-type", "application/x-www-form-urlencoded")
            .header("authorization", &format!("Basic {pair}"))
            .raw_body("grant_type=client_credentials")
            .build()
    };
    let unknown = format!("oc_{}", "0".repeat(32));
    e.call(directory::oauth::token, grant(&id, "wrong"), 401)
        .await;
    e.call(directory::oauth::token, grant(&unknown, "guess"), 401)
        .await;
    // Clears the failure on record in its transaction; then enough grants
    // for the oldest live token to be evicted.
    for _ in 0..=directory::store::LIVE_TOKENS_PER_CLIENT {
        e.call(directory::oauth::token, grant(&id, &secret), 200)
            .await;
    }
    e.call(
        directory::oauth::token,
        Req::new(Method::GET, "/api/v1/oauth/token").build(),
        405,
    )
    .await;
    e.finish(&[]);
}
