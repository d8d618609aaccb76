//! DynamoDB failing the way the real service fails, against a real DynamoDB
//! Local: the faults are injected in front of it at the HTTP layer
//! (`directory_tests::faults`), so the SDK's retries, timeouts and error
//! parsing all run as in production.
//!
//! For every write of both APIs (SCIM Users and Groups, the admin API) and
//! reads of each, every DynamoDB call the request makes fails in turn, in
//! every way DynamoDB fails. Each request must
//! end within its time budget with an answer, a 409/412, or a 503 with
//! `Retry-After` in the API's own format — never a 500. Afterwards, with
//! DynamoDB healthy, the table must hold these invariants:
//! - every user item has exactly its claims, and no claim points to a missing user;
//! - the user counts equal the users stored;
//! - tokens and memberships belong to existing users, who list them;
//! - a group record has its org, its id claim and its name and externalId
//!   claims; every group claim names a live group of that name; every member
//!   item is listed by its user and every membership a user lists has its
//!   member item;
//! - a create that failed can be sent again with the same body (a group
//!   create answers 409 then only if it landed, its answer lost);
//! - a group delete that failed is finished by sending it again.
//!
//! A second matrix covers the tenant write paths and OAuth: user writes
//! under an org's own SCIM base, its groups mapped to roles, the client
//! credentials grant (a right secret and a wrong one, whose failure is
//! counted against the client id), and the revocation of a client (a store
//! call, failing each of its calls). On top of the invariants above:
//! - every user the org owns has its member item in the org, and its user
//!   item lists the org among its memberships, with the same role;
//! - that role is the one the mapping gives: the highest role among the
//!   mapped groups the user is in, else the org's default;
//! - the tenant's own counts equal the users it owns (total and active);
//! - every unexpired access token item names the org, which lists it, and
//!   its client, which is there and listed by the org; every token the org
//!   lists has its item, and every client it lists is there: no token
//!   survives its client, and a revocation is whole or not at all;
//! - a failed tenant user or group create can be sent again with the same
//!   body (a 409 then only if it had landed, its answer lost).
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine;
use directory::auth;
use directory::domain::group::GroupRecord;
use directory::domain::orgs::Role;
use directory::domain::user::User;
use directory::http::Profile;
use directory::store::{table, Budget, Store, StoreError, TenantOrg, TokenSpec};
use directory::{admin_api, oauth, scim};
use directory_tests::faults::{Fault, Faults};
use directory_tests::{delete, get, patch, scim as scim_req, Provisioner, Reply, Req, TestTable};
use futures::StreamExt;
use lambda_http::http::Method;
use lambda_http::Request;
use serde_json::{json, Value};

const USERS: &str = "/api/v1/scim/Users";
const GROUPS: &str = "/api/v1/scim/Groups";
const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// Tight limits, so that a hung DynamoDB costs a test two seconds, not eight;
/// loose enough that DynamoDB Local on a loaded 2-core machine (the tests of
/// this file run in parallel) answers each healthy attempt in time.
fn tight() -> Budget {
    Budget {
        attempt: Duration::from_millis(600),
        operation: Duration::from_millis(1500),
        request: Duration::from_millis(3000),
        max_attempts: 3,
        initial_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(40),
        ..Budget::LAMBDA
    }
}

const KINDS: [Fault; 9] = [
    Fault::Throttling,
    Fault::ProvisionedThroughputExceeded,
    Fault::RequestLimitExceeded,
    Fault::InternalServerError,
    Fault::TransactionThrottled,
    Fault::TransactionConflict,
    Fault::Hang,
    Fault::ApplyThenFail,
    Fault::ConnectionRefused,
];

/// The operations under test: every write of both APIs, and reads.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    ScimCreate,
    /// `odm`: a POST of an existing userName updates that user (five calls).
    ScimUpsert,
    ScimPut,
    ScimPatch,
    ScimDelete,
    ScimGet,
    ScimFind,
    AdminPatch,
    AdminDelete,
    AdminList,
    /// Basic auth: the `last_login` refresh is a write on a read path.
    AdminSelfBasic,
    /// A pass over the search index, then the page's users by key.
    AdminSearch,
    /// A token from before the user item recorded read-only-ness: its
    /// token item is read after the user.
    AdminSelfOldToken,
    /// An index page: auth and the bucket counts side by side, then a query.
    ScimPage,
    /// A cursor page: one query after authentication.
    ScimCursor,
    /// POST /Groups with a member: one transaction, the group and the member.
    GroupCreate,
    /// A rename, a member removed and one added, in one PATCH (Okta's shape).
    GroupPatch,
    /// PUT /Groups/{id} with a new member list.
    GroupPut,
    /// DELETE /Groups/{id} of a group with two members: three steps.
    GroupDelete,
    GroupGet,
    /// `displayName eq`: the name claim, then the record.
    GroupFind,
    /// POST under the tenant's base: the user, its membership and the
    /// tenant's counts in one transaction.
    TenantCreate,
    /// A rename inside the org's domain and a deactivation (odm).
    TenantPatch,
    /// DELETE under the tenant's base (rfc: the user goes).
    TenantDelete,
    /// POST /Groups under the tenant's base, a member into a mapped group.
    TenantGroupCreate,
    /// A member removed from and one added to a mapped group.
    TenantGroupPatch,
    /// The client credentials grant.
    OAuthToken,
    /// A wrong secret: the failure counted against the client id.
    OAuthWrongSecret,
    /// The right secret after a wrong one: the grant's transaction also
    /// clears the failure on record.
    OAuthAfterFailure,
    /// [`BIG`] members added to a mapped group: the roles past the first 48
    /// are written in a step after the group's own transaction.
    TenantGroupBig,
}

impl Op {
    const ALL: [Op; 21] = [
        Op::ScimCreate,
        Op::ScimUpsert,
        Op::ScimPut,
        Op::ScimPatch,
        Op::ScimDelete,
        Op::ScimGet,
        Op::ScimFind,
        Op::AdminPatch,
        Op::AdminDelete,
        Op::AdminList,
        Op::AdminSelfBasic,
        Op::AdminSearch,
        Op::AdminSelfOldToken,
        Op::ScimPage,
        Op::ScimCursor,
        Op::GroupCreate,
        Op::GroupPatch,
        Op::GroupPut,
        Op::GroupDelete,
        Op::GroupGet,
        Op::GroupFind,
    ];

    /// The tenant matrix, and the profile each runs in: a deactivation is
    /// odm's, a delete rfc's; the rest behave alike in both.
    const TENANT: [(Op, Profile); 9] = [
        (Op::TenantCreate, Profile::Odm),
        (Op::TenantPatch, Profile::Odm),
        (Op::TenantGroupCreate, Profile::Odm),
        (Op::TenantGroupPatch, Profile::Odm),
        (Op::OAuthToken, Profile::Odm),
        (Op::OAuthWrongSecret, Profile::Odm),
        (Op::OAuthAfterFailure, Profile::Odm),
        (Op::TenantCreate, Profile::Rfc),
        (Op::TenantDelete, Profile::Rfc),
    ];

    fn is_oauth(self) -> bool {
        matches!(
            self,
            Op::OAuthToken | Op::OAuthWrongSecret | Op::OAuthAfterFailure
        )
    }

    fn is_group(self) -> bool {
        matches!(
            self,
            Op::GroupCreate
                | Op::GroupPatch
                | Op::GroupPut
                | Op::GroupDelete
                | Op::GroupGet
                | Op::GroupFind
        )
    }

    fn is_scim(self) -> bool {
        !matches!(
            self,
            Op::AdminPatch
                | Op::AdminDelete
                | Op::AdminList
                | Op::AdminSelfBasic
                | Op::AdminSearch
                | Op::AdminSelfOldToken
                | Op::OAuthToken
                | Op::OAuthWrongSecret
                | Op::OAuthAfterFailure
        )
    }

    fn success(self) -> &'static [u16] {
        match self {
            Op::ScimCreate
            | Op::ScimUpsert
            | Op::GroupCreate
            | Op::TenantCreate
            | Op::TenantGroupCreate => &[201],
            Op::ScimDelete
            | Op::AdminDelete
            | Op::GroupDelete
            | Op::GroupPatch
            | Op::TenantDelete
            | Op::TenantGroupPatch
            | Op::TenantGroupBig => &[204],
            Op::OAuthWrongSecret => &[401],
            _ => &[200],
        }
    }
}

/// A request to send again, unchanged, once DynamoDB is healthy.
struct Resend {
    method: Method,
    path: String,
    body: Option<Value>,
    /// Sent with the tenant's token, not the provisioner's.
    tenant: bool,
}

impl Resend {
    fn request(&self, fx: &Fixture) -> Request {
        if self.tenant {
            let path = self
                .path
                .trim_start_matches(&format!("/api/v1/scim/orgs/{TENANT}"));
            return fx
                .tenant_req(self.method.clone(), path, self.body.as_ref())
                .build();
        }
        fx.req(self.method.clone(), &self.path, self.body.as_ref())
            .build()
    }
}

/// The members [`Op::TenantGroupBig`] adds: more than the group's own
/// transaction holds roles for.
const BIG: usize = 50;

/// The org of the tenant matrix, and the domain its users' names are in.
const TENANT: &str = "acme";
const TENANT_DOMAIN: &str = "acme.test";

/// A client credentials grant with the client's id and secret by HTTP Basic
/// (neither has a character form-urlencoding changes).
fn grant_req(client_id: &str, secret: &str) -> Request {
    let pair = base64::engine::general_purpose::STANDARD.encode(format!("{client_id}:{secret}"));
    Req::new(Method::POST, "/api/v1/oauth/token")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("authorization", &format!("Basic {pair}"))
        .raw_body("grant_type=client_credentials")
        .build()
}

/// One table per profile, its admin token, and a counter for unique names.
struct Fixture {
    p: Provisioner,
    /// The tenant token of org [`TENANT`], on the fixtures of the tenant matrix.
    tenant: Option<String>,
}

impl std::ops::Deref for Fixture {
    type Target = Provisioner;
    fn deref(&self) -> &Provisioner {
        &self.p
    }
}

impl Fixture {
    async fn new(profile: Profile) -> Fixture {
        Fixture {
            p: Provisioner::new(profile).await,
            tenant: None,
        }
    }

    /// With org [`TENANT`] (domain [`TENANT_DOMAIN`]) and its tenant token.
    async fn with_tenant(profile: Profile) -> Fixture {
        let mut fx = Fixture::new(profile).await;
        let store = &fx.t.store;
        store.groups().create_org(TENANT, "Acme").await.unwrap();
        let org = store.tenants().get(TENANT).await.unwrap().unwrap();
        store
            .tenants()
            .add_domain(&org, TENANT_DOMAIN)
            .await
            .unwrap();
        let spec = TokenSpec {
            read_only: false,
            expires_at: None,
        };
        fx.tenant = Some(auth::mint_tenant_token(store, &org, &spec).await.unwrap());
        fx
    }

    async fn org(&self) -> TenantOrg {
        self.t.store.tenants().get(TENANT).await.unwrap().unwrap()
    }

    /// A request under the tenant's base (`path` after it), with its token.
    fn tenant_req(&self, method: Method, path: &str, body: Option<&Value>) -> Req {
        let path = format!("/api/v1/scim/orgs/{TENANT}{path}");
        let req = match body {
            Some(b) => scim_req(method, &path, b),
            None => Req::new(method, &path),
        };
        let token = self.tenant.as_ref().expect("a tenant fixture");
        req.header("authorization", &format!("Bearer {token}"))
    }

    /// A user the tenant provisions (so owns), made with the healthy store.
    async fn tenant_user(&self, name: &str) -> User {
        let body = json!({"userName": format!("{name}@{TENANT_DOMAIN}"), "active": true});
        let req = self.tenant_req(Method::POST, "/Users", Some(&body)).build();
        // Boxed, as every handler called inside a case's request: the test
        // thread's stack holds the poll of the whole chain.
        let r = Box::pin(self.t.call(scim::create, req)).await;
        let id: u64 = r.expect(201)["id"].as_str().unwrap().parse().unwrap();
        self.t.fresh(id).await
    }

    /// Maps tenant group `name` to `role`, with the healthy store.
    async fn map(&self, name: &str, role: Role) {
        let org = self.org().await;
        let tenants = self.t.store.tenants();
        tenants.map_group(&org, name, Some(role)).await.unwrap();
    }

    /// A new OAuth client of the tenant and its secret, with the healthy store.
    async fn oauth_client(&self) -> (String, String) {
        oauth::new_client(&self.t.store, &self.org().await, false)
            .await
            .unwrap()
    }

    /// A group `grp<n>` (externalId `gx<n>`) with the given members, made
    /// with the healthy store.
    async fn group(&self, n: usize, members: Vec<User>) -> GroupRecord {
        let (group, _) = self
            .t
            .store
            .groups()
            .create(&format!("grp{n}"), Some(&format!("gx{n}")), members)
            .await
            .expect("create a group");
        group
    }

    /// A request for `op`, on users and groups made for case `n` with the
    /// healthy store, and what to send again once DynamoDB is healthy if
    /// the answer was a 503 (creates and group deletes).
    async fn request(&self, op: Op, n: usize) -> (Request, Option<Resend>) {
        let name = format!("u{n}");
        let bearer = format!("Bearer {}", self.token);
        let scim = |method, path: &str, body: &Value| self.req(method, path, Some(body));
        let user = || async { self.t.user(&name).await };
        match op {
            Op::ScimCreate | Op::ScimUpsert => {
                if op == Op::ScimUpsert {
                    // The identity provider's own user, as a SCIM create makes
                    // it: only such a record is updated by an odm POST of its name.
                    let u = user().await;
                    let mut owned = u.clone();
                    owned.idp_owned = true;
                    self.t
                        .store
                        .users()
                        .update(&u, owned)
                        .await
                        .expect("mark idp-owned");
                }
                let body = json!({
                    "userName": name,
                    "externalId": format!("ext-{n}"),
                    "name": {"givenName": "Given", "familyName": "Family"},
                    "emails": [{"value": format!("{name}@corp.example"), "type": "work"}],
                });
                let resend = Resend {
                    method: Method::POST,
                    path: USERS.into(),
                    body: Some(body.clone()),
                    tenant: false,
                };
                (scim(Method::POST, USERS, &body).build(), Some(resend))
            }
            Op::ScimPut => {
                let u = user().await;
                let body = json!({"userName": name, "name": {"givenName": "New"}, "active": true});
                (
                    scim(Method::PUT, &format!("{USERS}/{}", u.id), &body).build(),
                    None,
                )
            }
            Op::ScimPatch => {
                let u = user().await;
                let body = json!({"schemas": [PATCH_OP], "Operations": [
                    {"op": "replace", "value": {"active": false, "name.givenName": "Patched"}}]});
                (
                    scim(Method::PATCH, &format!("{USERS}/{}", u.id), &body).build(),
                    None,
                )
            }
            Op::ScimDelete => {
                let u = user().await;
                let req = Req::new(Method::DELETE, &format!("{USERS}/{}", u.id))
                    .header("authorization", &bearer);
                (req.build(), None)
            }
            Op::ScimGet => {
                let u = user().await;
                let req = Req::new(Method::GET, &format!("{USERS}/{}", u.id))
                    .header("authorization", &bearer);
                (req.build(), None)
            }
            Op::ScimFind => {
                user().await;
                let path = format!("{USERS}?filter=userName%20eq%20%22{name}%22");
                let req = Req::new(Method::GET, &path).header("authorization", &bearer);
                (req.build(), None)
            }
            Op::AdminPatch => {
                let u = user().await;
                let body =
                    json!({"first_name": "Renamed", "email": format!("new.{name}@corp.example")});
                (
                    patch(&format!("/api/users/{}", u.id), &body)
                        .token(&self.token)
                        .build(),
                    None,
                )
            }
            Op::AdminDelete => {
                let u = user().await;
                (
                    delete(&format!("/api/users/{}", u.id))
                        .token(&self.token)
                        .build(),
                    None,
                )
            }
            Op::AdminList => (
                get("/api/users?page_size=5").token(&self.token).build(),
                None,
            ),
            Op::AdminSelfBasic => {
                let u = user().await;
                self.t.with_password(&u, "correct horse").await;
                (
                    get("/api/users/self").basic(&name, "correct horse").build(),
                    None,
                )
            }
            Op::AdminSearch => {
                user().await;
                (
                    get(&format!(
                        "/api/users?search={name}&sort=username&page_size=5"
                    ))
                    .token(&self.token)
                    .build(),
                    None,
                )
            }
            Op::AdminSelfOldToken => {
                let u = user().await;
                let token = self.t.token(&u).await;
                self.t
                    .edit_item(table::user(u.id), "REMOVE token_read_only", &[], &[])
                    .await;
                (get("/api/users/self").token(&token).build(), None)
            }
            Op::ScimPage => {
                user().await;
                let req = Req::new(Method::GET, &format!("{USERS}?startIndex=2&count=2"))
                    .header("authorization", &bearer);
                (req.build(), None)
            }
            Op::ScimCursor => {
                user().await;
                let req = Req::new(Method::GET, &format!("{USERS}?cursor=&count=2"))
                    .header("authorization", &bearer);
                (req.build(), None)
            }
            Op::GroupCreate => {
                let u = user().await;
                let body = json!({
                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                    "displayName": format!("grp{n}"),
                    "externalId": format!("gx{n}"),
                    "members": [{"value": u.id.to_string()}],
                });
                let resend = Resend {
                    method: Method::POST,
                    path: GROUPS.into(),
                    body: Some(body.clone()),
                    tenant: false,
                };
                (scim(Method::POST, GROUPS, &body).build(), Some(resend))
            }
            Op::GroupPatch => {
                let (a, b) = (user().await, self.t.user(&format!("v{n}")).await);
                let g = self.group(n, vec![a.clone()]).await;
                let body = json!({"schemas": [PATCH_OP], "Operations": [
                    {"op": "replace", "value": {"id": g.id.to_string(), "displayName": format!("grp{n} renamed")}},
                    {"op": "remove", "path": format!("members[value eq \"{}\"]", a.id)},
                    {"op": "add", "path": "members", "value": [{"value": b.id.to_string()}]}]});
                (
                    scim(Method::PATCH, &format!("{GROUPS}/{}", g.id), &body).build(),
                    None,
                )
            }
            Op::GroupPut => {
                let (a, b) = (user().await, self.t.user(&format!("v{n}")).await);
                let g = self.group(n, vec![a]).await;
                let body = json!({
                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                    "displayName": format!("grp{n} put"),
                    "members": [{"value": b.id.to_string()}],
                });
                (
                    scim(Method::PUT, &format!("{GROUPS}/{}", g.id), &body).build(),
                    None,
                )
            }
            Op::GroupDelete => {
                let (a, b) = (user().await, self.t.user(&format!("v{n}")).await);
                let g = self.group(n, vec![a, b]).await;
                let path = format!("{GROUPS}/{}", g.id);
                let req = Req::new(Method::DELETE, &path).header("authorization", &bearer);
                let resend = Resend {
                    method: Method::DELETE,
                    path,
                    body: None,
                    tenant: false,
                };
                (req.build(), Some(resend))
            }
            Op::GroupGet => {
                let g = self.group(n, vec![user().await]).await;
                let req = Req::new(Method::GET, &format!("{GROUPS}/{}", g.id))
                    .header("authorization", &bearer);
                (req.build(), None)
            }
            Op::GroupFind => {
                self.group(n, vec![user().await]).await;
                let path = format!("{GROUPS}?filter=displayName%20eq%20%22grp{n}%22");
                let req = Req::new(Method::GET, &path).header("authorization", &bearer);
                (req.build(), None)
            }
            Op::TenantCreate => {
                let body = json!({
                    "userName": format!("{name}@{TENANT_DOMAIN}"),
                    "externalId": format!("ext-{n}"),
                    "name": {"givenName": "Given", "familyName": "Family"},
                    "emails": [{"value": format!("{name}@{TENANT_DOMAIN}"), "type": "work"}],
                });
                let resend = Resend {
                    method: Method::POST,
                    path: format!("/api/v1/scim/orgs/{TENANT}/Users"),
                    body: Some(body.clone()),
                    tenant: true,
                };
                let req = self.tenant_req(Method::POST, "/Users", Some(&body));
                (req.build(), Some(resend))
            }
            Op::TenantPatch => {
                let u = self.tenant_user(&name).await;
                let body = json!({"schemas": [PATCH_OP], "Operations": [{"op": "replace",
                    "value": {"userName": format!("renamed.{name}@{TENANT_DOMAIN}"), "active": false}}]});
                let path = format!("/Users/{}", u.id);
                (
                    self.tenant_req(Method::PATCH, &path, Some(&body)).build(),
                    None,
                )
            }
            Op::TenantDelete => {
                let u = self.tenant_user(&name).await;
                let path = format!("/Users/{}", u.id);
                (self.tenant_req(Method::DELETE, &path, None).build(), None)
            }
            Op::TenantGroupCreate => {
                let u = self.tenant_user(&name).await;
                self.map(&format!("mapped{n}"), Role::Supervisor).await;
                let body = json!({
                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                    "displayName": format!("Mapped{n}"),
                    "members": [{"value": u.id.to_string()}],
                });
                let resend = Resend {
                    method: Method::POST,
                    path: format!("/api/v1/scim/orgs/{TENANT}/Groups"),
                    body: Some(body.clone()),
                    tenant: true,
                };
                let req = self.tenant_req(Method::POST, "/Groups", Some(&body));
                (req.build(), Some(resend))
            }
            Op::TenantGroupPatch => {
                let a = self.tenant_user(&name).await;
                let b = self.tenant_user(&format!("v{n}")).await;
                self.map(&format!("mapped{n}"), Role::Owner).await;
                let body = json!({
                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                    "displayName": format!("Mapped{n}"),
                    "members": [{"value": a.id.to_string()}],
                });
                let req = self
                    .tenant_req(Method::POST, "/Groups", Some(&body))
                    .build();
                let made = Box::pin(self.t.call(scim::groups::create, req)).await;
                let id = made.expect(201)["id"].as_str().unwrap().to_string();
                let body = json!({"schemas": [PATCH_OP], "Operations": [
                    {"op": "remove", "path": format!("members[value eq \"{}\"]", a.id)},
                    {"op": "add", "path": "members", "value": [{"value": b.id.to_string()}]}]});
                let path = format!("/Groups/{id}");
                (
                    self.tenant_req(Method::PATCH, &path, Some(&body)).build(),
                    None,
                )
            }
            Op::TenantGroupBig => {
                let mut members = Vec::new();
                for j in 0..BIG {
                    let u = self.tenant_user(&format!("{name}-{j}")).await;
                    members.push(json!({"value": u.id.to_string()}));
                }
                self.map(&format!("big{n}"), Role::Supervisor).await;
                let body = json!({
                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                    "displayName": format!("Big{n}"),
                });
                let req = self
                    .tenant_req(Method::POST, "/Groups", Some(&body))
                    .build();
                let made = Box::pin(self.t.call(scim::groups::create, req)).await;
                let id = made.expect(201)["id"].as_str().unwrap().to_string();
                let body = json!({"schemas": [PATCH_OP], "Operations": [
                    {"op": "add", "path": "members", "value": members}]});
                let path = format!("/Groups/{id}");
                let resend = Resend {
                    method: Method::PATCH,
                    path: format!("/api/v1/scim/orgs/{TENANT}{path}"),
                    body: Some(body.clone()),
                    tenant: true,
                };
                let req = self.tenant_req(Method::PATCH, &path, Some(&body));
                (req.build(), Some(resend))
            }
            Op::OAuthToken | Op::OAuthWrongSecret | Op::OAuthAfterFailure => {
                let (id, secret) = self.oauth_client().await;
                if op == Op::OAuthAfterFailure {
                    let wrong = grant_req(&id, "wrong");
                    Box::pin(self.t.call(oauth::token, wrong)).await.expect(401);
                }
                let secret = if op == Op::OAuthWrongSecret {
                    "wrong".into()
                } else {
                    secret
                };
                (grant_req(&id, &secret), None)
            }
        }
    }

    /// A store on this fixture's table whose calls go through `Faults`.
    async fn faulty(&self, budget: Budget) -> (TestTable, Faults) {
        let faults = Faults::new();
        let config = faults
            .install(directory::store::client::config_from_env(&budget).await)
            .build();
        let store = Store::new(
            aws_sdk_dynamodb::Client::from_conf(config),
            self.t.store.table(),
        )
        .with_budget(budget);
        let t = TestTable {
            store,
            profile: self.t.profile,
        };
        (t, faults)
    }
}

async fn run(op: Op, t: &TestTable, req: Request) -> Reply {
    match op {
        Op::ScimCreate | Op::ScimUpsert => t.call(scim::create, req).await,
        Op::ScimPut => t.call(scim::replace, req).await,
        Op::ScimPatch => t.call(scim::patch, req).await,
        Op::ScimDelete => t.call(scim::delete, req).await,
        Op::ScimGet => t.call(scim::get, req).await,
        Op::ScimFind | Op::ScimPage | Op::ScimCursor => t.call(scim::list, req).await,
        Op::AdminPatch => t.call(admin_api::partial_update, req).await,
        Op::AdminDelete => t.call(admin_api::destroy, req).await,
        Op::AdminList | Op::AdminSearch => t.call(admin_api::list, req).await,
        Op::AdminSelfBasic | Op::AdminSelfOldToken => t.call(admin_api::retrieve_self, req).await,
        Op::GroupCreate => t.call(scim::groups::create, req).await,
        Op::GroupPatch => t.call(scim::groups::patch, req).await,
        Op::GroupPut => t.call(scim::groups::replace, req).await,
        Op::GroupDelete => t.call(scim::groups::delete, req).await,
        Op::GroupGet => t.call(scim::groups::get, req).await,
        Op::GroupFind => t.call(scim::groups::list, req).await,
        Op::TenantCreate => t.call(scim::create, req).await,
        Op::TenantPatch => t.call(scim::patch, req).await,
        Op::TenantDelete => t.call(scim::delete, req).await,
        Op::TenantGroupCreate => t.call(scim::groups::create, req).await,
        Op::TenantGroupPatch | Op::TenantGroupBig => t.call(scim::groups::patch, req).await,
        Op::OAuthToken | Op::OAuthWrongSecret | Op::OAuthAfterFailure => {
            t.call(oauth::token, req).await
        }
    }
}

/// A 503 says when to come back and speaks the API's own error format.
fn assert_unavailable(op: Op, reply: &Reply, case: &str) {
    let retry_after: u64 = reply
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{case}: a 503 without Retry-After: {:?}", reply.headers));
    assert!(retry_after >= 1, "{case}");
    if op.is_oauth() {
        // RFC 6749's error format, never cached.
        assert_eq!(reply.body["error"], "temporarily_unavailable", "{case}");
        assert_eq!(reply.header("content-type"), Some("application/json"));
        assert_eq!(reply.header("cache-control"), Some("no-store"), "{case}");
    } else if op.is_scim() {
        assert_eq!(
            reply.body["schemas"],
            json!(["urn:ietf:params:scim:api:messages:2.0:Error"]),
            "{case}: {}",
            reply.raw
        );
        assert_eq!(reply.body["status"], "503", "{case}");
        assert_eq!(reply.header("content-type"), Some("application/scim+json"));
    } else {
        assert!(reply.body["detail"].is_string(), "{case}: {}", reply.raw);
        assert_eq!(
            reply.header("content-type"),
            Some("application/vnd.cvat+json")
        );
    }
    // The cause (table name, endpoint, SDK text) stays in the log.
    assert!(
        !reply.raw.contains("test-"),
        "{case}: leaks the table: {}",
        reply.raw
    );
}

/// Which DynamoDB operations `op` makes when all is well, by name.
async fn calls_of(fx: &Fixture, op: Op, n: usize) -> Vec<String> {
    let (req, _) = Box::pin(fx.request(op, n)).await;
    let (t, faults) = fx.faulty(tight()).await;
    let reply = Box::pin(run(op, &t, req)).await;
    assert!(
        op.success().contains(&reply.status.as_u16()),
        "{op:?}: {}",
        reply.raw
    );
    faults.log().into_iter().map(|c| c.target).collect()
}

/// Cases whose fault the code must absorb: the answer is a success.
fn must_succeed(op: Op, kind: Fault, target: &str, attempts: u32) -> bool {
    // The SDK retries a throttled call once it passes.
    attempts == 1
        // A transaction cancelled for a transient reason is sent again by the store.
        || (target == "TransactWriteItems"
            && matches!(kind, Fault::TransactionConflict | Fault::TransactionThrottled))
        // last_login is best-effort: the read succeeds without it.
        || (op == Op::AdminSelfBasic && target == "UpdateItem")
}

/// The tests here time what they inject (contention windows, hung calls,
/// request budgets), and the fault matrix keeps both cores busy: run side by
/// side, one test's load changes what the other measures (a create that
/// loses every retry under contention because the machine is busy, not
/// because the code is wrong). Each takes this first, so they run one at a
/// time.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_call_of_every_operation_failing_in_every_way() {
    let _alone = ONE_AT_A_TIME.lock().await;
    for profile in [Profile::Odm, Profile::Rfc] {
        let fx = Fixture::new(profile).await;
        let ops: Vec<Op> = Op::ALL
            .into_iter()
            // rfc answers 409: no upsert
            .filter(|op| !(*op == Op::ScimUpsert && profile == Profile::Rfc))
            // Groups behave alike in both profiles: rfc covers them
            .filter(|op| !(op.is_group() && profile == Profile::Odm))
            .collect();
        let outcomes = Box::pin(matrix(&fx, &ops, &KINDS, 0, 0)).await;
        Box::pin(resend_failed(&fx, &outcomes)).await;
        assert_invariants(&fx.t).await;
    }
}

/// Runs on a worker of a runtime with 8 MB stacks: a case's chain of
/// futures (the matrix, a case, a handler under the tenant's base, the
/// SDK) is polled on one thread's stack, and in a debug build it outgrows
/// the 2 MB a test thread has.
#[test]
fn every_call_of_the_tenant_and_oauth_writes_failing() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .thread_stack_size(8 << 20)
        .enable_all()
        .build()
        .unwrap();
    runtime
        .block_on(runtime.spawn(tenant_and_oauth_matrix()))
        .unwrap();
}

async fn tenant_and_oauth_matrix() {
    let _alone = ONE_AT_A_TIME.lock().await;
    for profile in [Profile::Odm, Profile::Rfc] {
        let fx = Fixture::with_tenant(profile).await;
        let ops: Vec<Op> = Op::TENANT
            .into_iter()
            .filter(|(_, p)| *p == profile)
            .map(|(op, _)| op)
            .collect();
        let outcomes = Box::pin(matrix(&fx, &ops, &KINDS, 0, 0)).await;
        Box::pin(resend_failed(&fx, &outcomes)).await;
        if profile == Profile::Odm {
            Box::pin(revocations_failing(&fx)).await;
            // Each case makes BIG users: only the step after the group's
            // transaction fails (the calls before it are TenantGroupPatch's);
            // a hang stands for the errors (each ends the step in a 503 as it
            // does) and times both transactions against the budget, and a
            // lost answer lands the step.
            let (kinds, skip) = ([Fault::Hang, Fault::ApplyThenFail], 3);
            let big = [Op::TenantGroupBig];
            let outcomes = Box::pin(matrix(&fx, &big, &kinds, 10_000, skip)).await;
            // The step is the fourth and last call: its two kinds and a throttle.
            assert_eq!(outcomes.len(), kinds.len() + 1, "the step alone fails");
            Box::pin(resend_failed(&fx, &outcomes)).await;
        }
        assert_invariants(&fx.t).await;
        assert_tenant_invariants(&fx).await;
    }
}

/// What one case of the matrix did: the operation, its answer, what to send
/// again, the fault, and the case in words.
type Outcome = (Op, Reply, Option<Resend>, Fault, String);

/// Fails every call of each of `ops` in each of `kinds` of ways (plus a
/// transient throttle, and a lost answer turned conflict for creates), each
/// case on users and groups of its own, twelve at a time; checks each answer
/// and its time.
/// `base`: where the numbers of the cases' users and groups start, so that
/// two matrices on one fixture do not meet; `skip`: how many first calls of
/// each op to leave healthy (when another op of the matrix fails them).
async fn matrix(
    fx: &Fixture,
    ops: &[Op],
    kinds: &[Fault],
    base: usize,
    skip: usize,
) -> Vec<Outcome> {
    let profile = fx.t.profile;
    let mut cases = Vec::new();
    for (n, op) in ops.iter().copied().enumerate() {
        let targets = calls_of(fx, op, base + n + 1).await;
        println!("{profile:?} {op:?}: {targets:?}");
        for (k, target) in targets.iter().enumerate().skip(skip) {
            for kind in kinds {
                cases.push((op, k + 1, target.clone(), *kind, u32::MAX));
            }
            // A create's transaction that lands and is answered with a
            // conflict (the contention stand-in does that to an attempt
            // resent after a timeout): the store sends it again, meets its
            // own writes, and knows them by the new id.
            if target == "TransactWriteItems"
                && matches!(
                    op,
                    Op::ScimCreate | Op::GroupCreate | Op::TenantCreate | Op::TenantGroupCreate
                )
            {
                cases.push((op, k + 1, target.clone(), Fault::ApplyThenConflict, 1));
            }
            cases.push((op, k + 1, target.clone(), Fault::Throttling, 1));
        }
    }
    let outcomes: Vec<Outcome> = futures::stream::iter(cases.into_iter().enumerate())
        .map(|(i, (op, k, target, kind, attempts))| async move {
            // Boxed: the futures of every operation's request are large.
            let (req, resend) = Box::pin(fx.request(op, base + 1000 + i)).await;
            let (t, faults) = fx.faulty(tight()).await;
            faults.fail_call(k, kind, attempts);
            let started = Instant::now();
            let reply = Box::pin(run(op, &t, req)).await;
            let elapsed = started.elapsed();
            let case =
                format!("{profile:?} {op:?}: call {k} ({target}) fails with {kind:?} x{attempts}");
            assert_ne!(reply.status, 500, "{case}: {}", reply.raw);
            assert!(
                elapsed < tight().request + Duration::from_millis(500),
                "{case}: took {elapsed:?}"
            );
            if reply.status == 503 {
                assert!(!must_succeed(op, kind, &target, attempts), "{case}: 503");
                assert_unavailable(op, &reply, &case);
            } else {
                assert!(
                    op.success().contains(&reply.status.as_u16()),
                    "{case}: {} {}",
                    reply.status,
                    reply.raw
                );
            }
            (op, reply, resend, kind, case)
        })
        .buffer_unordered(12)
        .collect()
        .await;
    let unavailable = outcomes.iter().filter(|o| o.1.status == 503).count();
    println!(
        "{profile:?} {ops:?}: {} cases, {unavailable} answered 503, the rest succeeded",
        outcomes.len()
    );
    assert!(
        unavailable > 0,
        "no case reached a 503: the faults did not bite"
    );
    outcomes
}

/// DynamoDB is healthy again: every failed create goes through when sent
/// again, and every failed group delete is finished.
async fn resend_failed(fx: &Fixture, outcomes: &[Outcome]) {
    let profile = fx.t.profile;
    for (op, reply, resend, kind, case) in outcomes {
        let (Some(resend), true) = (resend, reply.status == 503) else {
            continue;
        };
        let again = Box::pin(run(*op, &fx.t, resend.request(fx))).await;
        let ok = match op {
            // A write whose answer was lost may have landed: in rfc the retry is then a 409.
            Op::ScimCreate | Op::ScimUpsert => {
                let landed = *kind == Fault::ApplyThenFail && profile == Profile::Rfc;
                again.status == 201 || (landed && again.status == 409)
            }
            // The user, its membership and the tenant's counts are one
            // transaction: a 409 (rfc) only if the user is there, that
            // transaction having landed with its answer lost.
            Op::TenantCreate => {
                let name = resend.body.as_ref().unwrap()["userName"].clone();
                let users = fx.t.store.users().all().await.unwrap();
                let there = users.iter().any(|u| json!(u.username) == name);
                let landed = *kind == Fault::ApplyThenFail && profile == Profile::Rfc;
                again.status == 201 || (landed && there && again.status == 409)
            }
            // The group and its member are one transaction, and nothing is
            // read after it: only a create whose answer was lost landed, and
            // its retry is then a 409 on the name, the group being there.
            Op::GroupCreate => {
                let name = resend.body.as_ref().unwrap()["displayName"].clone();
                let there =
                    fx.t.store
                        .groups()
                        .all()
                        .await
                        .unwrap()
                        .iter()
                        .any(|g| json!(g.name) == name);
                let landed = *kind == Fault::ApplyThenFail;
                again.status == 201 || (landed && again.status == 409 && there)
            }
            // The same for a tenant's group, its member's role with it.
            Op::TenantGroupCreate => {
                let name = resend.body.as_ref().unwrap()["displayName"].clone();
                let groups = fx.t.store.tenant_groups().list(TENANT).await.unwrap();
                let there = groups.iter().any(|g| json!(g.record.name) == name);
                let landed = *kind == Fault::ApplyThenFail;
                again.status == 201 || (landed && again.status == 409 && there)
            }
            // The IdP sends a member change again until it is answered: the
            // roles a step cut short are then written (the invariants see them).
            Op::TenantGroupBig => again.status == 204,
            // 404: the delete had landed whole, its answer lost.
            Op::GroupDelete => {
                let id: u64 = resend.path.rsplit('/').next().unwrap().parse().unwrap();
                let gone = fx.t.store.groups().get(id).await.unwrap().is_none();
                matches!(again.status.as_u16(), 204 | 404) && gone
            }
            _ => unreachable!("{op:?} sends nothing again"),
        };
        assert!(
            ok,
            "{case}: the retry answered {} {}",
            again.status, again.raw
        );
    }
}

/// A client of the tenant holding two access tokens, made with the
/// healthy store: its id.
async fn client_with_tokens(fx: &Fixture) -> String {
    let (id, secret) = fx.oauth_client().await;
    for _ in 0..2 {
        let r = Box::pin(fx.t.call(oauth::token, grant_req(&id, &secret))).await;
        r.expect(200);
    }
    id
}

/// The access token items client `id` issued.
async fn tokens_of_client(t: &TestTable, id: &str) -> usize {
    let tokens = t.items_with_prefix("TOKEN#").await;
    tokens
        .iter()
        .filter(|i| table::get_s(i, "client") == Some(id))
        .count()
}

/// `usersctl org oauth-client revoke`, a store call, with each of its calls
/// failing in each way: it ends in time with the client revoked or an
/// `Unavailable`, never half-done (the client and both its tokens, or none
/// of them), and sent again it finishes.
async fn revocations_failing(fx: &Fixture) {
    let (t, faults) = fx.faulty(tight()).await;
    let id = client_with_tokens(fx).await;
    assert!(t.store.oauth_clients().revoke(&id).await.unwrap());
    let targets: Vec<String> = faults.log().into_iter().map(|c| c.target).collect();
    println!("revoke: {targets:?}");
    assert_eq!(tokens_of_client(&fx.t, &id).await, 0);
    let mut cases = Vec::new();
    for (k, target) in targets.iter().enumerate() {
        for kind in KINDS {
            cases.push((k + 1, target.clone(), kind));
        }
    }
    let count = cases.len();
    let failed: Vec<(String, String)> = futures::stream::iter(cases)
        .map(|(k, target, kind)| async move {
            let id = client_with_tokens(fx).await;
            let (t, faults) = fx.faulty(tight()).await;
            faults.fail_call(k, kind, u32::MAX);
            let started = Instant::now();
            let result = t.store.oauth_clients().revoke(&id).await;
            let elapsed = started.elapsed();
            let case = format!("revoke: call {k} ({target}) fails with {kind:?}");
            assert!(
                elapsed < tight().request + Duration::from_millis(500),
                "{case}: took {elapsed:?}"
            );
            let client = fx.t.store.oauth_clients().get(&id).await.unwrap().client;
            let tokens = tokens_of_client(&fx.t, &id).await;
            match result {
                Ok(revoked) => {
                    assert!(revoked, "{case}: the client was there");
                    assert!(client.is_none() && tokens == 0, "{case}: {tokens} left");
                }
                Err(StoreError::Unavailable(_)) => {
                    let whole =
                        (client.is_some() && tokens == 2) || (client.is_none() && tokens == 0);
                    assert!(whole, "{case}: half revoked, {tokens} tokens left");
                }
                Err(e) => panic!("{case}: {e:?}"),
            }
            (id, case)
        })
        .buffer_unordered(12)
        .collect()
        .await;
    println!("revoke: {count} cases");
    for (id, case) in failed {
        // Sent again (a `false`: it had landed, its answer lost).
        fx.t.store.oauth_clients().revoke(&id).await.unwrap();
        let client = fx.t.store.oauth_clients().get(&id).await.unwrap().client;
        assert!(client.is_none(), "{case}: the client survived");
        assert_eq!(tokens_of_client(&fx.t, &id).await, 0, "{case}");
    }
}

/// Every item of the table, healthy reads.
async fn scan(t: &TestTable) -> Vec<HashMap<String, AttributeValue>> {
    let mut items = Vec::new();
    let mut start = None;
    loop {
        let out = t
            .store
            .client()
            .scan()
            .table_name(t.store.table())
            .set_exclusive_start_key(start)
            .send()
            .await
            .unwrap();
        items.extend(out.items().iter().cloned());
        start = out.last_evaluated_key().cloned();
        if start.is_none() {
            return items;
        }
    }
}

/// The invariants of `shared/src/store/users.rs`, read off the whole table.
async fn assert_invariants(t: &TestTable) {
    let items = scan(t).await;
    let pk =
        |i: &HashMap<String, AttributeValue>| table::get_s(i, "pk").unwrap_or_default().to_string();
    let sk =
        |i: &HashMap<String, AttributeValue>| table::get_s(i, "sk").unwrap_or_default().to_string();
    let users: HashMap<u64, User> = items
        .iter()
        .filter(|i| sk(i) == "USER")
        .map(|i| {
            let u = table::user_from_item(i).expect("a well-formed user item");
            (u.id, u)
        })
        .collect();
    // A claim item without `user_id` is a login tracker: failed logins with a
    // username nobody holds (see shared/src/store/logins.rs). It claims nothing.
    let (claim_items, trackers): (Vec<_>, Vec<_>) = items
        .iter()
        // Org ids, group names and externalIds, tenant group names and
        // domains are claims of orgs and groups, not users.
        .filter(|i| {
            sk(i) == "CLAIM"
                && ![
                    "ORGID#",
                    "GROUPNAME#",
                    "GROUPEXTID#",
                    "TGROUPNAME#",
                    "DOMAIN#",
                ]
                .iter()
                .any(|p| pk(i).starts_with(p))
        })
        .partition(|i| i.contains_key("user_id"));
    for tracker in &trackers {
        assert!(
            pk(tracker).starts_with("USERNAME#") && tracker.contains_key(table::TTL),
            "claim {} holds no user and is no login tracker",
            pk(tracker)
        );
    }
    let claims: HashMap<String, u64> = claim_items
        .iter()
        .map(|i| (pk(i), table::get_n(i, "user_id").unwrap()))
        .collect();
    let mut expected = HashSet::new();
    for u in users.values() {
        let mut mine = vec![table::username_claim(&u.username).0];
        if !u.email.is_empty() {
            mine.push(table::email_claim(&u.email).0);
        }
        if let Some(ext) = &u.external_id {
            mine.push(table::external_id_claim(ext).0);
        }
        for claim in mine {
            assert_eq!(
                claims.get(&claim),
                Some(&u.id),
                "user {} lacks claim {claim}",
                u.id
            );
            expected.insert(claim);
        }
        for hash in &u.token_hashes {
            assert!(
                items.iter().any(|i| pk(i) == table::token(hash).0),
                "user {} lists a missing token",
                u.id
            );
        }
    }
    for (claim, owner) in &claims {
        assert!(
            expected.contains(claim),
            "claim {claim} of {owner} is held by no user"
        );
    }
    // A token item without `user_id` is a tenant's (`assert_tenant_invariants`).
    for token in items
        .iter()
        .filter(|i| sk(i) == "TOKEN" && i.contains_key("user_id"))
    {
        let owner: u64 = table::get_n(token, "user_id").unwrap();
        let hash = pk(token).trim_start_matches("TOKEN#").to_string();
        assert!(
            users
                .get(&owner)
                .is_some_and(|u| u.token_hashes.contains(&hash)),
            "token of {owner} outlived its user or is not listed"
        );
    }
    for member in items.iter().filter(|i| sk(i).starts_with("MEMBER#")) {
        let owner: u64 = table::get_n(member, "user_id").unwrap();
        assert!(
            users.contains_key(&owner),
            "membership of deleted user {owner}"
        );
    }
    assert_group_invariants(&items, &users);
    let counts = t.store.counts().totals().await.unwrap();
    let active = users.values().filter(|u| u.is_active).count() as u64;
    assert_eq!(
        (counts.total, counts.active),
        (users.len() as u64, active),
        "the user counts"
    );
}

/// The invariants of the tenant's users, groups and OAuth clients (org
/// [`TENANT`]), read off the whole table.
async fn assert_tenant_invariants(fx: &Fixture) {
    let t = &fx.t;
    let org = fx.org().await;
    let items = scan(t).await;
    // Read off the items: the id index projects neither owner nor memberships.
    let users: Vec<User> = items
        .iter()
        .filter(|i| table::get_s(i, "sk") == Some("USER"))
        .map(|i| table::user_from_item(i).expect("a well-formed user item"))
        .collect();
    let owned: Vec<&User> = users.iter().filter(|u| u.owner == Some(org.id)).collect();
    assert!(!owned.is_empty(), "the matrix made no tenant users");
    let groups = t.store.tenant_groups().list(TENANT).await.unwrap();
    let mut mapped = 0;
    for u in &owned {
        let member = t
            .store
            .memberships()
            .get(TENANT, org.id, u.id)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("owned user {} has no member item", u.id));
        let listed = u
            .membership(TENANT)
            .unwrap_or_else(|| panic!("owned user {} lists no membership of its org", u.id));
        assert_eq!(
            listed.role,
            member.role.name(),
            "user {}: user item vs member item",
            u.id
        );
        let due = org.roles.role(u.id, &groups, org.default_role);
        assert_eq!(member.role, due, "user {}: the role its groups give", u.id);
        mapped += usize::from(due != org.default_role);
    }
    assert!(
        groups.is_empty() || mapped > 0,
        "no user holds a mapped role: the check saw none"
    );
    let counts = t.store.counts().of_tenant(org.id).await.unwrap().counts();
    let active = owned.iter().filter(|u| u.is_active).count() as u64;
    assert_eq!(
        (counts.total, counts.active),
        (owned.len() as u64, active),
        "the tenant's counts"
    );
    // Every access token names a live client of a live org that lists it;
    // every token the org lists has its item.
    let pk =
        |i: &HashMap<String, AttributeValue>| table::get_s(i, "pk").unwrap_or_default().to_string();
    for token in items
        .iter()
        .filter(|i| table::get_s(i, "sk") == Some("TOKEN") && !i.contains_key("user_id"))
    {
        let hash = pk(token).trim_start_matches("TOKEN#").to_string();
        // An expired one is dropped from the org before its item expires.
        let expires_at: Option<i64> = table::get_n(token, table::TTL);
        if expires_at.is_some_and(|at| at <= chrono::Utc::now().timestamp()) {
            continue;
        }
        assert_eq!(table::get_n::<u64>(token, "org_id"), Some(org.id), "{hash}");
        assert!(
            org.tokens.contains_key(&hash),
            "token {hash} not on its org"
        );
        if let Some(client) = table::get_s(token, "client") {
            let live = t.store.oauth_clients().get(client).await.unwrap().client;
            assert!(live.is_some(), "token {hash} outlived client {client}");
            assert!(org.clients.iter().any(|c| c == client), "{client}");
        }
    }
    let issued = org.tokens.len();
    println!(
        "tenant: {} owned users, {mapped} in mapped roles, {} groups, {issued} tokens listed",
        owned.len(),
        groups.len()
    );
    for hash in org.tokens.keys() {
        assert!(
            items.iter().any(|i| pk(i) == format!("TOKEN#{hash}")),
            "the org lists token {hash} without its item"
        );
    }
    for client in &org.clients {
        let live = t.store.oauth_clients().get(client).await.unwrap().client;
        assert!(live.is_some(), "the org lists a missing client {client}");
    }
}

/// The invariants of `shared/src/store/groups.rs`, read off the whole table.
fn assert_group_invariants(items: &[HashMap<String, AttributeValue>], users: &HashMap<u64, User>) {
    let pk =
        |i: &HashMap<String, AttributeValue>| table::get_s(i, "pk").unwrap_or_default().to_string();
    let sk =
        |i: &HashMap<String, AttributeValue>| table::get_s(i, "sk").unwrap_or_default().to_string();
    let find = |(p, k): (String, String)| items.iter().find(|i| pk(i) == p && sk(i) == k);
    let groups: Vec<(u64, String, String, Option<String>, bool)> = items
        .iter()
        .filter(|i| pk(i) == table::GROUPS_PARTITION)
        .map(|i| {
            (
                table::get_n(i, "group_id").unwrap(),
                table::get_s(i, "slug").unwrap().to_string(),
                table::get_s(i, "name").unwrap().to_string(),
                table::get_s(i, "external_id").map(str::to_string),
                table::get_bool(i, "deleting").unwrap_or(false),
            )
        })
        .collect();
    let mut claimed = HashSet::new();
    for (id, slug, name, ext, deleting) in &groups {
        let (p, k) = table::org(slug);
        let org = find((p, k.into())).unwrap_or_else(|| panic!("group {id} has no org item"));
        assert_eq!(table::get_n::<u64>(org, "org_id"), Some(*id), "org of {id}");
        assert_eq!(
            table::get_s(org, "name"),
            Some(name.as_str()),
            "org name of {id}"
        );
        assert!(!table::get_bool(org, "deleted").unwrap_or(false), "{id}");
        let (p, k) = table::org_by_id(*id);
        assert!(find((p, k.into())).is_some(), "group {id} has no id claim");
        if *deleting {
            continue; // a delete cut short: its claims are free already
        }
        let mut mine = vec![table::group_name_claim(name).0];
        mine.extend(ext.iter().map(|e| table::group_external_id_claim(e).0));
        for claim in mine {
            let held = find((claim.clone(), "CLAIM".into()))
                .unwrap_or_else(|| panic!("group {id} lacks claim {claim}"));
            assert_eq!(table::get_n::<u64>(held, "group_id"), Some(*id), "{claim}");
            claimed.insert(claim);
        }
    }
    for claim in items.iter().filter(|i| {
        sk(i) == "CLAIM"
            && ["GROUPNAME#", "GROUPEXTID#"]
                .iter()
                .any(|p| pk(i).starts_with(p))
    }) {
        assert!(
            claimed.contains(&pk(claim)),
            "claim {} is held by no live group of that name",
            pk(claim)
        );
    }
    // Member items and the memberships users list are one and the same.
    let mut members = HashSet::new();
    for member in items.iter().filter(|i| sk(i).starts_with("MEMBER#")) {
        let slug = pk(member).trim_start_matches("ORG#").to_string();
        let user: u64 = table::get_n(member, "user_id").unwrap();
        assert!(
            users
                .get(&user)
                .is_some_and(|u| u.memberships.iter().any(|m| m.org_slug == slug)),
            "member item {slug}/{user} is not on its user"
        );
        members.insert((slug, user));
    }
    for u in users.values() {
        for m in &u.memberships {
            assert!(
                members.contains(&(m.org_slug.clone(), u.id)),
                "user {} lists {} without its member item",
                u.id,
                m.org_slug
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_creates_of_distinct_users_survive_conflicting_transactions() {
    let _alone = ONE_AT_A_TIME.lock().await;
    // The real service cancels a transaction that touches an item another
    // in-flight transaction holds; DynamoDB Local queues them instead. The
    // stand-in cancels overlapping transactions as the service does.
    let fx = Fixture::new(Profile::Rfc).await;
    let (t, faults) = fx.faulty(Budget::LAMBDA).await;
    faults.contention(Duration::from_millis(15));
    let bearer = format!("Bearer {}", fx.token);
    let replies = futures::future::join_all((0..48).map(|i| {
        let body = json!({"userName": format!("parallel{i}")});
        t.call(
            scim::create,
            scim_req(Method::POST, USERS, &body)
                .header("authorization", &bearer)
                .build(),
        )
    }))
    .await;
    let created = replies.iter().filter(|r| r.status == 201).count();
    for r in &replies {
        assert!(
            matches!(r.status.as_u16(), 201 | 503),
            "{} {}",
            r.status,
            r.raw
        );
    }
    assert!(
        created >= 44,
        "only {created} of 48 parallel creates succeeded"
    );
    let conflicts = faults
        .log()
        .iter()
        .filter(|c| c.fault == Some(Fault::TransactionConflict))
        .count();
    println!("{created}/48 created; {conflicts} transactions cancelled for conflicts");
    faults.reset();
    assert_invariants(&fx.t).await;
}

#[tokio::test]
async fn a_hung_dynamodb_is_a_503_within_the_lambda_budget() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let fx = Fixture::new(Profile::Rfc).await;
    let (t, faults) = fx.faulty(Budget::LAMBDA).await;
    faults.fail_from(1, Fault::Hang);
    let (scim_get, _) = fx.request(Op::ScimGet, 1).await;
    let (admin_list, _) = fx.request(Op::AdminList, 2).await;
    let started = Instant::now();
    let (a, b) = tokio::join!(
        run(Op::ScimGet, &t, scim_get),
        run(Op::AdminList, &t, admin_list)
    );
    let elapsed = started.elapsed();
    assert_eq!(a.status, 503, "{}", a.raw);
    assert_eq!(b.status, 503, "{}", b.raw);
    assert_unavailable(Op::ScimGet, &a, "scim get");
    assert_unavailable(Op::AdminList, &b, "admin list");
    // The function timeout is 10 s: the answer must come well before it.
    assert!(elapsed < Duration::from_secs(9), "took {elapsed:?}");
    assert_eq!(a.header("retry-after"), Some("5"));
}
