//! Per-organization SCIM tenants, replayed as an attacker would. Tenant A,
//! once with its SCIM token and once with an OAuth access token granted to
//! its client, tries to:
//! - read B's user by id, and find it by `userName` / `externalId` /
//!   `emails` filters or by a filter that would match across tenants;
//! - PATCH, PUT and DELETE B's user;
//! - rename its own user into B's domain (and provision names outside its
//!   domains);
//! - name B's ids in `/Bulk`;
//! - use its credential under B's base, the global base and the admin API.
//!
//! Each answer must be exactly the documented one, equal to the answer for
//! something that does not exist, and B's user must be as it was. Also:
//! what a tenant's own requests cost, and that a global admin under a
//! tenant base sees what the tenant sees. (Adding B's user to A's groups is
//! replayed in `tenant_groups.rs`.)
use directory::admin_api;
use directory::auth;
use directory::domain::user::User;
use directory::http::Profile;
use directory::scim;
use directory::store::{TenantOrg, TokenSpec};
use directory_tests::{get, scim as scim_req, Credential, Reply, Req, TestTable};
use lambda_http::http::Method;
use serde_json::{json, Value};

const SCIM_ERROR: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
/// A user id nobody has.
const NOBODY: u64 = 999_999;

/// Two tenants, A (`acme`, domain acme.com) and B (`beta`, domain
/// beta.org), each with its own credential and one user it provisioned, and
/// a global admin.
struct Two {
    t: TestTable,
    /// A's credential, of the kind the replay tries.
    a: String,
    b: String,
    admin: String,
    /// B's user, provisioned under B's base.
    b_user: User,
    /// A's user.
    a_user: User,
}

fn base(slug: &str) -> String {
    format!("/api/v1/scim/orgs/{slug}")
}

/// A new org with one verified domain, and a credential of it.
async fn tenant(t: &TestTable, slug: &str, domain: &str, cred: Credential) -> String {
    t.store.groups().create_org(slug, slug).await.unwrap();
    let org = t.store.tenants().get(slug).await.unwrap().unwrap();
    t.store.tenants().add_domain(&org, domain).await.unwrap();
    cred.mint(t, &org).await
}

async fn mint(t: &TestTable, slug: &str, read_only: bool, expires_at: Option<i64>) -> String {
    let org: TenantOrg = t.store.tenants().get(slug).await.unwrap().unwrap();
    let spec = TokenSpec {
        read_only,
        expires_at,
    };
    auth::mint_tenant_token(&t.store, &org, &spec)
        .await
        .unwrap()
}

/// A User; its email is its userName when that is an address.
fn user_body(name: &str, external_id: &str) -> Value {
    let mut body = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": name,
        "externalId": external_id,
        "name": {"givenName": "Pat", "familyName": "Doe"},
        "active": true,
    });
    if name.contains('@') {
        body["emails"] = json!([{"value": name, "type": "work", "primary": true}]);
    }
    body
}

fn req(token: &str, method: Method, path: &str, body: Option<&Value>) -> Req {
    let r = match body {
        Some(b) => scim_req(method, path, b),
        None => Req::new(method, path),
    };
    r.header("authorization", &format!("Bearer {token}"))
}

impl Two {
    /// A holding its SCIM token.
    async fn new(profile: Profile) -> Two {
        Two::holding(profile, Credential::ScimToken).await
    }

    /// A holding `cred`; B its SCIM token.
    async fn holding(profile: Profile, cred: Credential) -> Two {
        let t = TestTable::with_profile(profile).await;
        let a = tenant(&t, "acme", "acme.com", cred).await;
        let b = tenant(&t, "beta", "beta.org", Credential::ScimToken).await;
        let admin_user = t.admin("root").await;
        let admin = t.token(&admin_user).await;
        let mut two = Two {
            t,
            a,
            b,
            admin,
            b_user: User::new(""),
            a_user: User::new(""),
        };
        two.b_user = two
            .create(&two.b.clone(), "beta", "bob@beta.org", "B-1")
            .await;
        two.a_user = two
            .create(&two.a.clone(), "acme", "ann@acme.com", "A-1")
            .await;
        two
    }

    async fn create(&self, token: &str, slug: &str, name: &str, ext: &str) -> User {
        let r = self.post_user(token, slug, name, ext).await;
        let id: u64 = r.expect(201)["id"].as_str().unwrap().parse().unwrap();
        self.t.fresh(id).await
    }

    async fn post_user(&self, token: &str, slug: &str, name: &str, ext: &str) -> Reply {
        let path = format!("{}/Users", base(slug));
        let body = user_body(name, ext);
        self.t
            .call(
                scim::create,
                req(token, Method::POST, &path, Some(&body)).build(),
            )
            .await
    }

    async fn get_user(&self, token: &str, slug: &str, id: u64) -> Reply {
        let path = format!("{}/Users/{id}", base(slug));
        self.t
            .call(scim::get, req(token, Method::GET, &path, None).build())
            .await
    }

    async fn list(&self, token: &str, slug: &str, query: &str) -> Reply {
        let path = format!("{}/Users?{query}", base(slug));
        self.t
            .call(scim::list, req(token, Method::GET, &path, None).build())
            .await
    }
}

fn not_found(id: u64) -> Value {
    json!({"schemas": [SCIM_ERROR], "status": "404", "detail": format!("User {id} not found")})
}

fn invalid_token() -> Value {
    json!({"schemas": [SCIM_ERROR], "status": "401", "detail": "Invalid token."})
}

/// Status and body, the whole of what a client sees (but the headers).
fn seen(r: &Reply) -> (u16, Value) {
    (r.status.as_u16(), r.body.clone())
}

#[tokio::test]
async fn a_user_made_under_a_tenant_base_is_owned_by_its_org_and_a_member() {
    let two = Two::new(Profile::Odm).await;
    let acme = two.t.store.tenants().get("acme").await.unwrap().unwrap();
    let u = &two.a_user;
    assert_eq!(u.owner, Some(acme.id));
    assert_eq!(u.memberships.len(), 1);
    assert_eq!(u.memberships[0].org_slug, "acme");
    assert_eq!(u.memberships[0].role, "worker");
    // The org's member item came in the same transaction.
    let members = two.t.store.groups().org_member_ids("acme").await.unwrap();
    assert_eq!(members, vec![u.id]);
    // Links point under the tenant base.
    let r = two.get_user(&two.a, "acme", u.id).await;
    let body = r.expect(200);
    assert_eq!(
        body["meta"]["location"],
        format!("http://testserver/api/v1/scim/orgs/acme/Users/{}", u.id)
    );
    // The token authenticated with the user in one read.
    assert_eq!(
        r.dynamodb_calls, 1,
        "token auth + the user: one BatchGetItem"
    );
}

/// The names of the users a list answered with.
fn names(r: &Reply) -> Vec<String> {
    r.body["Resources"]
        .as_array()
        .unwrap_or_else(|| panic!("{}", r.raw))
        .iter()
        .map(|u| u["userName"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn a_reads_bs_user_by_id_or_filter_with_scim_token() {
    a_reads_bs_user_by_id_or_filter(Credential::ScimToken).await;
}

#[tokio::test]
async fn a_reads_bs_user_by_id_or_filter_with_oauth_token() {
    a_reads_bs_user_by_id_or_filter(Credential::OAuth).await;
}

/// A, holding `cred`, reads B's user by id and looks it up by `userName`,
/// `externalId` and `emails`: each answer is the one for a user nobody
/// holds. Filters that would match across tenants find A's user only, and
/// count B's nowhere.
async fn a_reads_bs_user_by_id_or_filter(cred: Credential) {
    for profile in [Profile::Odm, Profile::Rfc] {
        let two = Two::holding(profile, cred).await;
        let b = two.t.fresh(two.b_user.id).await;
        let by_id = two.get_user(&two.a, "acme", b.id).await;
        let nobody = two.get_user(&two.a, "acme", NOBODY).await;
        assert_eq!(seen(&by_id), (404, not_found(b.id)), "{cred:?} {profile:?}");
        assert_eq!(seen(&nobody), (404, not_found(NOBODY)), "{cred:?}");
        // Filters naming B's user: the answer for a name nobody holds.
        let missing = format!("filter={}", urlencode("userName eq \"nobody@beta.org\""));
        let missing = two.list(&two.a, "acme", &missing).await;
        assert_eq!(missing.expect(200)["totalResults"], 0);
        let mut filters = vec![
            format!("userName eq \"{}\"", b.username),
            "externalId eq \"B-1\"".to_string(),
            format!("emails eq \"{}\"", b.email),
        ];
        if profile == Profile::Rfc {
            filters.push(format!("emails.value eq \"{}\"", b.email));
        }
        for filter in filters {
            let q = format!("filter={}", urlencode(&filter));
            let r = two.list(&two.a, "acme", &q).await;
            assert_eq!(seen(&r), seen(&missing), "{cred:?} {profile:?} {filter}");
        }
        // Filters that would match across tenants (rfc evaluates them):
        // A's own user only, and B's not counted.
        if profile == Profile::Rfc {
            for (filter, a_matches) in [
                ("userName co \"@\"", true),
                ("userName pr", true),
                ("userName sw \"bob\"", false),
                ("emails.value ew \"beta.org\"", false),
                ("emails.value co \"@\" or userName sw \"b\"", true),
            ] {
                let q = format!("filter={}", urlencode(filter));
                let r = two.list(&two.a, "acme", &q).await;
                let want: Vec<String> = match a_matches {
                    true => vec!["ann@acme.com".into()],
                    false => vec![],
                };
                assert_eq!(
                    r.expect(200)["totalResults"],
                    want.len(),
                    "{cred:?} {filter}"
                );
                assert_eq!(names(&r), want, "{cred:?} {filter}");
            }
            // The search over every resource type finds no more.
            let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
                "filter": "userName co \"@\""});
            let path = format!("{}/.search", base("acme"));
            let r = two
                .t
                .call(
                    scim::search,
                    req(&two.a, Method::POST, &path, Some(&body)).build(),
                )
                .await;
            assert_eq!(r.expect(200)["totalResults"], 1, "{cred:?} {}", r.raw);
            assert_eq!(names(&r), ["ann@acme.com"], "{cred:?}");
        }
        // No filter at all: A's own user, B's not counted.
        let all = two.list(&two.a, "acme", "startIndex=1").await;
        assert_eq!(all.expect(200)["totalResults"], 1, "{cred:?} {profile:?}");
        assert_eq!(names(&all), ["ann@acme.com"]);
        assert_eq!(two.t.fresh(b.id).await, b, "B's user is as it was");
    }
}

#[tokio::test]
async fn a_patches_puts_or_deletes_bs_user_with_scim_token() {
    a_patches_puts_or_deletes_bs_user(Credential::ScimToken).await;
}

#[tokio::test]
async fn a_patches_puts_or_deletes_bs_user_with_oauth_token() {
    a_patches_puts_or_deletes_bs_user(Credential::OAuth).await;
}

/// A, holding `cred`, PATCHes, PUTs and DELETEs B's user, keeping B's name
/// or taking it into A's own domain: each the 404 of an id nobody has, and
/// B's user is as it was.
async fn a_patches_puts_or_deletes_bs_user(cred: Credential) {
    let patch = |path: &str, value: Value| {
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": path, "value": value}]})
    };
    let attempts = [
        (
            "PATCH active",
            Method::PATCH,
            Some(patch("active", json!(false))),
        ),
        (
            "PATCH userName into A's domain",
            Method::PATCH,
            Some(patch("userName", json!("bob@acme.com"))),
        ),
        ("PUT", Method::PUT, Some(user_body("bob@beta.org", "B-1"))),
        (
            "PUT into A's domain",
            Method::PUT,
            Some(user_body("bob@acme.com", "B-1")),
        ),
        ("DELETE", Method::DELETE, None),
    ];
    for profile in [Profile::Odm, Profile::Rfc] {
        let two = Two::holding(profile, cred).await;
        let b = two.t.fresh(two.b_user.id).await;
        for id in [b.id, NOBODY] {
            let path = format!("{}/Users/{id}", base("acme"));
            for (what, method, body) in &attempts {
                let request = req(&two.a, method.clone(), &path, body.as_ref()).build();
                let reply = match *method {
                    Method::PATCH => two.t.call(scim::patch, request).await,
                    Method::PUT => two.t.call(scim::replace, request).await,
                    _ => two.t.call(scim::delete, request).await,
                };
                assert_eq!(
                    seen(&reply),
                    (404, not_found(id)),
                    "{cred:?} {profile:?} {what} {id}"
                );
            }
        }
        assert_eq!(two.t.fresh(b.id).await, b, "B's user is as it was");
        // And B still sees it, active.
        let r = two.get_user(&two.b, "beta", b.id).await;
        assert_eq!(r.expect(200)["active"], true, "{cred:?} {profile:?}");
    }
}

#[tokio::test]
async fn a_renames_its_user_into_bs_domain_with_scim_token() {
    a_renames_its_user_into_bs_domain(Credential::ScimToken).await;
}

#[tokio::test]
async fn a_renames_its_user_into_bs_domain_with_oauth_token() {
    a_renames_its_user_into_bs_domain(Credential::OAuth).await;
}

/// A, holding `cred`, renames its user into B's domain (PATCH, PUT) and
/// provisions names outside its own domains: each the 400 naming A's
/// domains, the same for a name B holds as for a free one.
async fn a_renames_its_user_into_bs_domain(cred: Credential) {
    let two = Two::holding(Profile::Odm, cred).await;
    let refused = |name: &str| {
        json!({"schemas": [SCIM_ERROR], "status": "400", "scimType": "invalidValue",
        "detail": format!("\"{name}\" is not in this organization's domains; allowed: @acme.com")})
    };
    let b = two.t.fresh(two.b_user.id).await;
    // B's existing user and a name nobody holds answer alike: no oracle.
    let taken = two.post_user(&two.a, "acme", "bob@beta.org", "X-1").await;
    let free = two.post_user(&two.a, "acme", "new@beta.org", "X-2").await;
    assert_eq!(seen(&taken), (400, refused("bob@beta.org")), "{cred:?}");
    assert_eq!(seen(&free), (400, refused("new@beta.org")), "{cred:?}");
    assert_eq!(taken.dynamodb_calls, free.dynamodb_calls);
    // Renaming A's user into B's domain, by PATCH and by PUT.
    let a = two.t.fresh(two.a_user.id).await;
    let path = format!("{}/Users/{}", base("acme"), a.id);
    for value in [json!("bob@beta.org"), json!("ann@beta.org")] {
        let patch = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "userName", "value": value}]});
        let r = two
            .t
            .call(
                scim::patch,
                req(&two.a, Method::PATCH, &path, Some(&patch)).build(),
            )
            .await;
        assert_eq!(
            seen(&r),
            (400, refused(value.as_str().unwrap())),
            "{cred:?} PATCH"
        );
    }
    let put = user_body("ann@beta.org", "A-1");
    let r = two
        .t
        .call(
            scim::replace,
            req(&two.a, Method::PUT, &path, Some(&put)).build(),
        )
        .await;
    assert_eq!(seen(&r), (400, refused("ann@beta.org")), "{cred:?} PUT");
    // An email out of the domains, too.
    let mut body = user_body("cat@acme.com", "A-2");
    body["emails"] = json!([{"value": "cat@gmail.com", "primary": true}]);
    let users = format!("{}/Users", base("acme"));
    let r = two
        .t
        .call(
            scim::create,
            req(&two.a, Method::POST, &users, Some(&body)).build(),
        )
        .await;
    assert_eq!(seen(&r), (400, refused("cat@gmail.com")), "{cred:?}");
    assert_eq!(two.t.fresh(a.id).await, a, "A's user is as it was");
    assert_eq!(two.t.fresh(b.id).await, b, "B's user is as it was");
    let all = two.list(&two.a, "acme", "startIndex=1").await;
    assert_eq!(names(&all), ["ann@acme.com"], "nobody new in A");
}

#[tokio::test]
async fn with_any_a_taken_name_is_409_and_never_adopted() {
    for profile in [Profile::Odm, Profile::Rfc] {
        let two = Two::new(profile).await;
        let acme = two.t.store.tenants().get("acme").await.unwrap().unwrap();
        two.t
            .store
            .tenants()
            .set_any_domain(&acme, true)
            .await
            .unwrap();
        // Names that are no email addresses are fine now.
        two.create(&two.a, "acme", "bjensen", "A-9").await;
        // B's user, and a user made at the global base (owned by nobody).
        let global = two.t.user("local.admin").await;
        for (held, name) in [(two.b_user.id, "bob@beta.org"), (global.id, "local.admin")] {
            let before = two.t.fresh(held).await;
            let r = two.post_user(&two.a, "acme", name, "B-1").await;
            assert_eq!(r.status.as_u16(), 409, "{profile:?} {name}: {}", r.raw);
            assert_eq!(r.body["scimType"], "uniqueness");
            assert_eq!(two.t.fresh(held).await, before, "{name} was not adopted");
        }
    }
}

/// `GET {base}/Users` with `token`.
async fn list_under(two: &Two, slug: &str, token: &str) -> Reply {
    let path = format!("{}/Users", base(slug));
    two.t
        .call(scim::list, req(token, Method::GET, &path, None).build())
        .await
}

#[tokio::test]
async fn a_uses_its_credential_under_bs_base_the_global_base_or_the_admin_api_with_scim_token() {
    a_uses_its_credential_under_bs_base_the_global_base_or_the_admin_api(Credential::ScimToken)
        .await;
}

#[tokio::test]
async fn a_uses_its_credential_under_bs_base_the_global_base_or_the_admin_api_with_oauth_token() {
    a_uses_its_credential_under_bs_base_the_global_base_or_the_admin_api(Credential::OAuth).await;
}

/// A uses `cred` under B's base, an unknown org's base, the global base
/// and the admin API: each the 401 of a wrong token, in the API's format.
async fn a_uses_its_credential_under_bs_base_the_global_base_or_the_admin_api(cred: Credential) {
    let garbage = "org1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let two = Two::holding(Profile::Rfc, cred).await;
    let b = two.t.fresh(two.b_user.id).await;
    list_under(&two, "acme", &two.a).await.expect(200);
    // A's credential under B's base and under an unknown slug: as a
    // wrong token is.
    for r in [
        list_under(&two, "beta", &two.a).await,
        list_under(&two, "nosuch", &two.a).await,
        list_under(&two, "acme", garbage).await,
    ] {
        assert_eq!(seen(&r), (401, invalid_token()), "{cred:?}");
    }
    // Reading or deleting B's user under B's base: the same.
    let path = format!("{}/Users/{}", base("beta"), b.id);
    let r = two
        .t
        .call(scim::get, req(&two.a, Method::GET, &path, None).build())
        .await;
    assert_eq!(seen(&r), (401, invalid_token()), "{cred:?}");
    let r = two
        .t
        .call(
            scim::delete,
            req(&two.a, Method::DELETE, &path, None).build(),
        )
        .await;
    assert_eq!(seen(&r), (401, invalid_token()), "{cred:?}");
    // Under the global base: an invalid token, on reads and on writes.
    let r = two
        .t
        .call(
            scim::list,
            req(&two.a, Method::GET, "/api/v1/scim/Users", None).build(),
        )
        .await;
    assert_eq!(seen(&r), (401, invalid_token()), "{cred:?}");
    let path = format!("/api/v1/scim/Users/{}", b.id);
    let r = two
        .t
        .call(
            scim::delete,
            req(&two.a, Method::DELETE, &path, None).build(),
        )
        .await;
    assert_eq!(seen(&r), (401, invalid_token()), "{cred:?}");
    // On the admin API: an invalid token, in its own format.
    for (what, r) in [
        (
            "list",
            two.t
                .call(admin_api::list, get("/api/users").token(&two.a).build())
                .await,
        ),
        (
            "self",
            two.t
                .call(
                    admin_api::retrieve_self,
                    get("/api/users/self").token(&two.a).build(),
                )
                .await,
        ),
    ] {
        assert_eq!(
            seen(&r),
            (401, json!({"detail": "Invalid token."})),
            "{cred:?} {what}"
        );
    }
    assert_eq!(two.t.fresh(b.id).await, b, "B's user is as it was");
}

#[tokio::test]
async fn revoked_expired_and_read_only_tenant_tokens() {
    let two = Two::new(Profile::Rfc).await;
    // Revoked, or expired: as a wrong token is.
    let expired = mint(
        &two.t,
        "acme",
        false,
        Some(chrono::Utc::now().timestamp() - 1),
    )
    .await;
    assert_eq!(
        seen(&list_under(&two, "acme", &expired).await),
        (401, invalid_token())
    );
    let hash = auth::hash_token(&two.a);
    two.t
        .store
        .tenants()
        .revoke_token("acme", &hash)
        .await
        .unwrap();
    assert_eq!(
        seen(&list_under(&two, "acme", &two.a).await),
        (401, invalid_token())
    );
    // A read-only token reads but does not write.
    let ro = mint(&two.t, "acme", true, None).await;
    list_under(&two, "acme", &ro).await.expect(200);
    // Minting dropped the expired token from the org item.
    let acme = two.t.store.tenants().get("acme").await.unwrap().unwrap();
    assert!(!acme.tokens.contains_key(&auth::hash_token(&expired)));
    assert!(acme.tokens.contains_key(&auth::hash_token(&ro)));
    let r = two.post_user(&ro, "acme", "new@acme.com", "A-3").await;
    assert_eq!(r.status.as_u16(), 403, "{}", r.raw);
}

#[tokio::test]
async fn a_names_bs_ids_in_bulk_with_scim_token() {
    a_names_bs_ids_in_bulk(Credential::ScimToken).await;
}

#[tokio::test]
async fn a_names_bs_ids_in_bulk_with_oauth_token() {
    a_names_bs_ids_in_bulk(Credential::OAuth).await;
}

/// A, holding `cred`, PATCHes, PUTs and DELETEs B's user inside `/Bulk`:
/// each operation answers as for an id nobody has, and nothing changes.
async fn a_names_bs_ids_in_bulk(cred: Credential) {
    let two = Two::holding(Profile::Rfc, cred).await;
    let b = two.t.fresh(two.b_user.id).await;
    let ops: Vec<Value> = [b.id, NOBODY]
        .iter()
        .flat_map(|id| {
            [
                json!({"method": "PATCH", "path": format!("/Users/{id}"), "data": {
                    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [{"op": "replace", "path": "active", "value": false}]}}),
                json!({"method": "PUT", "path": format!("/Users/{id}"),
                    "data": user_body("bob@acme.com", "B-1")}),
                json!({"method": "DELETE", "path": format!("/Users/{id}")}),
            ]
        })
        .collect();
    let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
        "Operations": ops});
    let path = format!("{}/Bulk", base("acme"));
    let r = two
        .t
        .call(
            scim::bulk::post,
            req(&two.a, Method::POST, &path, Some(&body)).build(),
        )
        .await;
    let results = r.expect(200)["Operations"].as_array().unwrap().clone();
    assert_eq!(results.len(), 6, "{}", r.raw);
    let strip = |op: &Value, id: u64| {
        let text = op
            .to_string()
            .replace(&format!("Users/{id}"), "Users/ID")
            .replace(&format!("User {id} "), "User ID ");
        serde_json::from_str::<Value>(&text).unwrap()
    };
    for k in 0..3 {
        assert_eq!(results[k]["status"], "404", "{cred:?} {}", r.raw);
        assert_eq!(
            strip(&results[k], b.id),
            strip(&results[k + 3], NOBODY),
            "{cred:?}"
        );
    }
    assert_eq!(two.t.fresh(b.id).await, b, "B's user is as it was");
    let all = two.list(&two.a, "acme", "startIndex=1").await;
    assert_eq!(names(&all), ["ann@acme.com"], "nobody new in A");
}

#[tokio::test]
async fn a_global_admin_under_a_tenant_base_sees_what_the_tenant_sees() {
    let two = Two::new(Profile::Rfc).await;
    two.t.user("global.only").await;
    for query in [
        "",
        "filter=userName%20co%20%22%40%22",
        "count=1&startIndex=1",
    ] {
        let tenant = two.list(&two.a, "acme", query).await;
        let admin = two.list(&two.admin, "acme", query).await;
        assert_eq!(seen(&admin), seen(&tenant), "{query}");
        assert_eq!(tenant.body["totalResults"], 1, "{query}");
    }
    let r = two.get_user(&two.admin, "acme", two.b_user.id).await;
    assert_eq!(seen(&r), (404, not_found(two.b_user.id)));
    // An admin under an org that does not exist learns that it does not.
    let r = two.list(&two.admin, "nosuch", "").await;
    assert_eq!(r.status.as_u16(), 404, "{}", r.raw);
    // A person who is no admin: 403, whether the org exists or not.
    let plain = two.t.user("plain").await;
    let token = two.t.token(&plain).await;
    assert_eq!(two.list(&token, "acme", "").await.status.as_u16(), 403);
    assert_eq!(two.list(&token, "nosuch", "").await.status.as_u16(), 403);
}

#[tokio::test]
async fn me_and_groups_under_a_tenant_base() {
    let two = Two::new(Profile::Rfc).await;
    let path = format!("{}/Me", base("acme"));
    let r = two
        .t
        .call(scim::me::get, req(&two.a, Method::GET, &path, None).build())
        .await;
    assert_eq!(r.status.as_u16(), 501, "{}", r.raw);
    // A wrong token there is still a 401.
    let r = two
        .t
        .call(
            scim::me::get,
            req("org9.x", Method::GET, &path, None).build(),
        )
        .await;
    assert_eq!(seen(&r), (401, invalid_token()));
    // No tenant groups yet: an empty list, and the org's own group is not there.
    let acme = two.t.store.tenants().get("acme").await.unwrap().unwrap();
    let list = format!("{}/Groups", base("acme"));
    let r = two
        .t
        .call(
            scim::groups::list,
            req(&two.a, Method::GET, &list, None).build(),
        )
        .await;
    assert_eq!(r.expect(200)["totalResults"], 0);
    let one = format!("{}/Groups/{}", base("acme"), acme.id);
    let r = two
        .t
        .call(
            scim::groups::get,
            req(&two.a, Method::GET, &one, None).build(),
        )
        .await;
    assert_eq!(r.status.as_u16(), 404, "{}", r.raw);
}

#[tokio::test]
async fn a_tenants_costs_do_not_grow_with_other_tenants() {
    let two = Two::new(Profile::Odm).await;
    // Another tenant with many more users than A.
    for k in 0..30 {
        two.create(
            &two.b,
            "beta",
            &format!("u{k}@beta.org"),
            &format!("B-{k}x"),
        )
        .await;
    }
    for k in 0..12 {
        two.create(
            &two.a,
            "acme",
            &format!("a{k}@acme.com"),
            &format!("A-{k}x"),
        )
        .await;
    }
    // userName eq and externalId eq: the claim with auth, then the user.
    for filter in ["userName eq \"a3@acme.com\"", "externalId eq \"A-3x\""] {
        let r = two
            .list(&two.a, "acme", &format!("filter={}", urlencode(filter)))
            .await;
        assert_eq!(r.expect(200)["totalResults"], 1, "{filter}");
        assert!(
            r.dynamodb_calls <= 2,
            "{filter}: {} calls",
            r.dynamodb_calls
        );
    }
    // A cursor walk: each page one query of A's own partition.
    let mut cursor = String::new();
    let mut seen_ids = Vec::new();
    loop {
        let q = if cursor.is_empty() {
            "count=5&cursor".to_string()
        } else {
            format!("count=5&cursor={cursor}")
        };
        let r = two.list(&two.a, "acme", &q).await;
        let body = r.expect(200).clone();
        assert!(r.dynamodb_calls <= 3, "{} calls", r.dynamodb_calls);
        assert!(r.capacity_units <= 10.0, "{} units", r.capacity_units);
        for u in body["Resources"].as_array().unwrap() {
            seen_ids.push(u["id"].as_str().unwrap().to_string());
        }
        match body["nextCursor"].as_str() {
            Some(next) => cursor = next.to_string(),
            None => break,
        }
    }
    assert_eq!(seen_ids.len(), 13, "A's users, each once: {seen_ids:?}");
    // An index page of A at any depth: auth, A's own counts, one query of
    // A's partition of the tenant index.
    let r = two.list(&two.a, "acme", "count=5&startIndex=6").await;
    assert_eq!(r.expect(200)["totalResults"], 13);
    assert_eq!(r.body["Resources"].as_array().unwrap().len(), 5);
    assert!(r.dynamodb_calls <= 3, "{} calls", r.dynamodb_calls);
    assert!(r.capacity_units <= 10.0, "{} units", r.capacity_units);
    // A full import by startIndex reads each of A's users about once.
    let (mut start, mut ids, mut units) = (1, Vec::new(), 0.0);
    loop {
        let r = two
            .list(&two.a, "acme", &format!("count=4&startIndex={start}"))
            .await;
        let page = r.expect(200)["Resources"].as_array().unwrap().clone();
        assert!(r.dynamodb_calls <= 3, "{} calls", r.dynamodb_calls);
        units += r.capacity_units;
        if page.is_empty() {
            break;
        }
        ids.extend(page.iter().map(|u| u["id"].as_str().unwrap().to_string()));
        start += page.len();
    }
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!((ids.len(), unique.len()), (13, 13), "{ids:?}");
    assert!(units <= 20.0, "{units} units for 13 users in 5 pages");
}

#[tokio::test]
async fn a_tenants_counts_follow_its_users() {
    for profile in [Profile::Odm, Profile::Rfc] {
        let two = Two::new(profile).await;
        let extra = two.create(&two.a, "acme", "eve@acme.com", "A-5").await;
        let total = |r: &Reply| r.body["totalResults"].as_u64().unwrap();
        let r = two.list(&two.a, "acme", "startIndex=1").await;
        assert_eq!(total(&r), 2, "{profile:?}");
        // DELETE: odm deactivates (hidden, not counted), rfc deletes.
        let path = format!("{}/Users/{}", base("acme"), extra.id);
        two.t
            .call(
                scim::delete,
                req(&two.a, Method::DELETE, &path, None).build(),
            )
            .await
            .expect(204);
        let r = two.list(&two.a, "acme", "startIndex=1").await;
        assert_eq!(total(&r), 1, "{profile:?}");
        assert_eq!(r.body["Resources"][0]["userName"], "ann@acme.com");
        // B's counts are its own.
        let r = two.list(&two.b, "beta", "startIndex=1").await;
        assert_eq!(total(&r), 1, "{profile:?}");
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
