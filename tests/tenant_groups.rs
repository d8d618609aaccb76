//! Tenant Groups (`/api/v1/scim/orgs/{slug}/Groups`) in-process against
//! DynamoDB Local: the customer's own groups inside its org, their members
//! only its own users, the roles mapped groups give in the org, and what a
//! member change costs. Isolation between tenants is replayed by an
//! attacker holding tenant A's SCIM token, then A's OAuth access token:
//! adding B's user to A's group (POST, PUT, PATCH), and reading, changing
//! or deleting B's group, each answering as for an id that does not exist.
use directory::admin_api;
use directory::domain::orgs::Role;
use directory::http::Profile;
use directory::scim::{self, groups};
use directory::store::{table, TenantOrg};
use directory_tests::{Credential, Provisioner, Reply, Req, TestTable};
use lambda_http::http::Method;
use serde_json::{json, Value};

const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// One customer: its org, a credential of it, and the base its IdP calls.
struct Tenant {
    slug: String,
    token: String,
}

impl Tenant {
    /// An org whose IdP may provision any name, and its tenant token.
    async fn new(t: &TestTable, slug: &str) -> Tenant {
        Tenant::holding(t, slug, Credential::ScimToken).await
    }

    /// An org whose IdP may provision any name, and a credential of it.
    async fn holding(t: &TestTable, slug: &str, cred: Credential) -> Tenant {
        t.store
            .groups()
            .create_org(slug, &format!("Org {slug}"))
            .await
            .unwrap();
        let org = t.store.tenants().get(slug).await.unwrap().unwrap();
        t.store.tenants().set_any_domain(&org, true).await.unwrap();
        let org = t.store.tenants().get(slug).await.unwrap().unwrap();
        let token = cred.mint(t, &org).await;
        Tenant {
            slug: slug.to_string(),
            token,
        }
    }

    fn base(&self) -> String {
        format!("/api/v1/scim/orgs/{}", self.slug)
    }

    fn req(&self, method: Method, path: &str, body: Option<&Value>) -> Req {
        let path = format!("{}{path}", self.base());
        let req = match body {
            Some(b) => directory_tests::scim(method, &path, b),
            None => Req::new(method, &path),
        };
        req.header("authorization", &format!("Bearer {}", self.token))
    }

    async fn org(&self, t: &TestTable) -> TenantOrg {
        t.store.tenants().get(&self.slug).await.unwrap().unwrap()
    }

    /// A user the tenant provisions (and so owns): its id.
    async fn user(&self, t: &TestTable, name: &str) -> String {
        let body = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                          "userName": name, "active": true});
        let r = t
            .call(
                scim::create,
                self.req(Method::POST, "/Users", Some(&body)).build(),
            )
            .await;
        r.expect(201)["id"].as_str().unwrap().to_string()
    }

    async fn post(&self, t: &TestTable, body: Value) -> Reply {
        t.call(
            groups::create,
            self.req(Method::POST, "/Groups", Some(&body)).build(),
        )
        .await
    }

    async fn create<S: AsRef<str>>(&self, t: &TestTable, name: &str, members: &[S]) -> String {
        let body =
            json!({"schemas": [GROUP_SCHEMA], "displayName": name, "members": values(members)});
        self.post(t, body).await.expect(201)["id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    async fn get(&self, t: &TestTable, path: &str) -> Reply {
        let req = self.req(Method::GET, path, None).build();
        if path.starts_with("/Groups/") {
            t.call(groups::get, req).await
        } else {
            t.call(groups::list, req).await
        }
    }

    async fn patch(&self, t: &TestTable, id: &str, ops: Value) -> Reply {
        let body = json!({"schemas": [PATCH_OP], "Operations": ops});
        t.call(
            groups::patch,
            self.req(Method::PATCH, &format!("/Groups/{id}"), Some(&body))
                .build(),
        )
        .await
    }

    async fn put(&self, t: &TestTable, id: &str, body: Value) -> Reply {
        t.call(
            groups::replace,
            self.req(Method::PUT, &format!("/Groups/{id}"), Some(&body))
                .build(),
        )
        .await
    }

    async fn delete(&self, t: &TestTable, id: &str) -> Reply {
        t.call(
            groups::delete,
            self.req(Method::DELETE, &format!("/Groups/{id}"), None)
                .build(),
        )
        .await
    }

    async fn members(&self, t: &TestTable, id: &str) -> Vec<String> {
        let r = self.get(t, &format!("/Groups/{id}")).await;
        r.expect(200)["members"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|m| m["value"].as_str().unwrap().to_string())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The user's role in the org, as its member item and its user item say
    /// (they must agree).
    async fn role(&self, t: &TestTable, user: &str) -> String {
        let org = self.org(t).await;
        let id: u64 = user.parse().unwrap();
        let member = t
            .store
            .memberships()
            .get(&self.slug, org.id, id)
            .await
            .unwrap()
            .expect("a member item");
        let on_user = t.fresh(id).await.memberships;
        let on_user = on_user.iter().find(|m| m.org_id == org.id).unwrap();
        assert_eq!(on_user.role, member.role.name(), "user item vs member item");
        on_user.role.clone()
    }

    async fn map(&self, t: &TestTable, group: &str, role: Option<Role>) -> usize {
        let org = self.org(t).await;
        t.store
            .tenants()
            .map_group(&org, group, role)
            .await
            .unwrap();
        let org = self.org(t).await;
        t.store
            .tenant_groups()
            .recompute(&org, group)
            .await
            .unwrap()
    }
}

fn values<S: AsRef<str>>(ids: &[S]) -> Value {
    Value::Array(ids.iter().map(|id| json!({"value": id.as_ref()})).collect())
}

fn ids(list: &Value) -> Vec<String> {
    list["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["id"].as_str().unwrap().to_string())
        .collect()
}

/// Two tenants on one table, with an admin at the global base.
async fn two_tenants(profile: Profile) -> (Provisioner, Tenant, Tenant) {
    two_tenants_holding(profile, Credential::ScimToken).await
}

/// Two tenants, A (`acme`) holding `cred` and B (`globex`) its SCIM token.
async fn two_tenants_holding(profile: Profile, cred: Credential) -> (Provisioner, Tenant, Tenant) {
    let p = Provisioner::new(profile).await;
    let a = Tenant::holding(&p.t, "acme", cred).await;
    let b = Tenant::new(&p.t, "globex").await;
    (p, a, b)
}

#[tokio::test]
async fn tenant_groups_are_created_listed_filtered_changed_and_deleted() {
    for profile in [Profile::Odm, Profile::Rfc] {
        let (p, a, _) = two_tenants(profile).await;
        let t = &p.t;
        let alice = a.user(t, "alice@acme.test").await;
        let bob = a.user(t, "bob@acme.test").await;
        let r = a
            .post(
                t,
                json!({"schemas": [GROUP_SCHEMA], "displayName": "Engineering",
                       "externalId": "okta-eng", "members": values(&[alice.as_str()])}),
            )
            .await;
        let created = r.expect(201).clone();
        let id = created["id"].as_str().unwrap().to_string();
        assert_eq!(created["displayName"], "Engineering");
        assert_eq!(created["members"][0]["value"], alice.as_str());
        let location = r.header("location").unwrap().to_string();
        assert!(
            location.ends_with(&format!("/api/v1/scim/orgs/acme/Groups/{id}")),
            "{location}"
        );
        let etag = r.header("etag").unwrap().to_string();
        // GET gives the same ETag; a second group of the same name (caseless) is 409.
        let got = a.get(t, &format!("/Groups/{id}")).await;
        got.expect(200);
        assert_eq!(got.header("etag"), Some(etag.as_str()));
        let dup = a
            .post(
                t,
                json!({"schemas": [GROUP_SCHEMA], "displayName": "ENGINEERING"}),
            )
            .await;
        assert_eq!(dup.expect(409)["scimType"], "uniqueness");
        let other = a.create(t, "Sales", &[bob.as_str()]).await;
        // Lists and the three filters.
        let list = a.get(t, "/Groups").await;
        assert_eq!(list.expect(200)["totalResults"], 2);
        assert_eq!(ids(&list.body), [id.clone(), other.clone()]);
        for (filter, want) in [
            ("displayName eq \"engineering\"", vec![id.as_str()]),
            ("externalId eq \"okta-eng\"", vec![id.as_str()]),
            (
                &format!("members[value eq \"{bob}\"]") as &str,
                vec![other.as_str()],
            ),
            ("displayName eq \"nobody\"", vec![]),
        ] {
            let q = format!("/Groups?filter={}", urlencode(filter));
            let r = a.get(t, &q).await;
            assert_eq!(ids(r.expect(200)), want, "{filter}");
        }
        // Okta's PATCH: rename, add, remove by filter; then Entra's value form.
        a.patch(
            t,
            &id,
            json!([{"op": "replace", "value": {"id": id, "displayName": "Eng"}}]),
        )
        .await
        .expect(204);
        a.patch(
            t,
            &id,
            json!([{"op": "add", "path": "members", "value": values(&[bob.as_str()])}]),
        )
        .await
        .expect(204);
        assert_eq!(a.members(t, &id).await, [alice.clone(), bob.clone()]);
        a.patch(
            t,
            &id,
            json!([{"op": "remove", "path": format!("members[value eq \"{alice}\"]")}]),
        )
        .await
        .expect(204);
        assert_eq!(a.members(t, &id).await, [bob.as_str()]);
        let got = a.get(t, &format!("/Groups/{id}")).await;
        assert_eq!(got.expect(200)["displayName"], "Eng");
        assert_ne!(got.header("etag"), Some(etag.as_str()));
        // The name moved: the old one is free again, the new one is taken.
        a.create(t, "Engineering", &[] as &[&str]).await;
        let taken = a
            .patch(
                t,
                &other,
                json!([{"op": "replace", "path": "displayName", "value": "eng"}]),
            )
            .await;
        assert_eq!(taken.expect(409)["scimType"], "uniqueness");
        // If-Match on a stale version: 412.
        let stale = t
            .call(
                groups::patch,
                a.req(
                    Method::PATCH,
                    &format!("/Groups/{id}"),
                    Some(&json!({"schemas": [PATCH_OP], "Operations":
                        [{"op": "add", "path": "members", "value": values(&[alice.as_str()])}]})),
                )
                .header("if-match", &etag)
                .build(),
            )
            .await;
        stale.expect(412);
        // PUT replaces names and members.
        let put = a
            .put(
                t,
                &id,
                json!({"schemas": [GROUP_SCHEMA], "displayName": "Eng",
                       "members": values(&[alice.as_str()])}),
            )
            .await;
        assert_eq!(put.expect(200)["members"][0]["value"], alice.as_str());
        assert_eq!(a.members(t, &id).await, [alice.as_str()]);
        // DELETE, then the id is gone and the name free.
        a.delete(t, &id).await.expect(204);
        a.get(t, &format!("/Groups/{id}")).await.expect(404);
        a.delete(t, &id).await.expect(404);
        a.create(t, "Eng", &[] as &[&str]).await;
        // Deleting a tenant user (rfc) takes it out of its groups.
        if profile == Profile::Rfc {
            t.call(
                scim::delete,
                a.req(Method::DELETE, &format!("/Users/{bob}"), None)
                    .build(),
            )
            .await
            .expect(204);
            assert!(a.members(t, &other).await.is_empty());
        }
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The body of a failed request with the ids it names blanked (where they
/// stand alone, not inside another number), so two answers can be compared
/// for what they reveal.
fn blank(body: &Value, ids: &[&str]) -> String {
    let text = body.to_string();
    let mut out = String::new();
    let mut rest = text.as_str();
    'scan: while !rest.is_empty() {
        for id in ids {
            if let Some(after) = rest.strip_prefix(id) {
                let before_ok = !out.ends_with(|c: char| c.is_ascii_digit());
                let after_ok = !after.starts_with(|c: char| c.is_ascii_digit());
                if before_ok && after_ok {
                    out.push_str("<id>");
                    rest = after;
                    continue 'scan;
                }
            }
        }
        let c = rest.chars().next().unwrap();
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

#[tokio::test]
async fn a_adds_bs_user_to_its_group_with_scim_token() {
    members_must_be_the_tenants_own_users(Credential::ScimToken).await;
}

#[tokio::test]
async fn a_adds_bs_user_to_its_group_with_oauth_token() {
    members_must_be_the_tenants_own_users(Credential::OAuth).await;
}

/// A, holding `cred`, names B's user (and an unowned one, and an unknown
/// id) as a member of its group by PATCH, PUT and POST: each is the same
/// 400, and nothing is written.
async fn members_must_be_the_tenants_own_users(cred: Credential) {
    let (p, a, b) = two_tenants_holding(Profile::Odm, cred).await;
    let t = &p.t;
    let mine = a.user(t, "ann@acme.test").await;
    let theirs = b.user(t, "bea@globex.test").await;
    let bea_before = t.fresh(theirs.parse().unwrap()).await;
    let unowned = t.user("root-user").await.id.to_string();
    let unknown = "999999".to_string();
    let group = a.create(t, "Staff", &[mine.as_str()]).await;
    let before = (
        t.items_with_prefix(&table::tenant_groups_partition("acme"))
            .await,
        t.items_with_prefix("TGROUPNAME#").await,
    );
    let mut answers = Vec::new();
    for other in [&theirs, &unowned, &unknown] {
        // PATCH add (Okta and Entra send this form).
        let r = a
            .patch(
                t,
                &group,
                json!([{"op": "add", "path": "members", "value": values(&[other.as_str()])}]),
            )
            .await;
        assert_eq!(r.expect(400)["scimType"], "invalidValue");
        answers.push(blank(&r.body, &[other]));
        // PUT naming it, and a POST with it.
        let r = a
            .put(
                t,
                &group,
                json!({"schemas": [GROUP_SCHEMA], "displayName": "Staff",
                       "members": values(&[mine.clone(), other.clone()])}),
            )
            .await;
        assert_eq!(r.expect(400)["scimType"], "invalidValue");
        answers.push(blank(&r.body, &[other]));
        let r = a
            .post(
                t,
                json!({"schemas": [GROUP_SCHEMA], "displayName": "New",
                       "members": values(&[other.as_str()])}),
            )
            .await;
        assert_eq!(r.expect(400)["scimType"], "invalidValue");
        answers.push(blank(&r.body, &[other]));
    }
    // The same three answers for another tenant's user, an unowned one and an unknown id.
    assert_eq!(answers[0..3], answers[3..6]);
    assert_eq!(answers[0..3], answers[6..9]);
    // Nothing written: the group is as it was, no group "New", no member item elsewhere.
    let after = (
        t.items_with_prefix(&table::tenant_groups_partition("acme"))
            .await,
        t.items_with_prefix("TGROUPNAME#").await,
    );
    assert_eq!(before, after);
    assert_eq!(a.members(t, &group).await, [mine.as_str()]);
    let list = a.get(t, "/Groups").await;
    assert_eq!(list.expect(200)["totalResults"], 1);
    let bea = t.fresh(theirs.parse().unwrap()).await;
    assert!(bea.memberships.iter().all(|m| m.org_slug == "globex"));
    assert_eq!(bea, bea_before, "B's user is as it was");
}

/// One request of the attacker's replays on group `id`.
async fn attempt(
    a: &Tenant,
    t: &TestTable,
    what: &str,
    id: &str,
    body: &Value,
    ops: &Value,
) -> Reply {
    match what {
        "get" => a.get(t, &format!("/Groups/{id}")).await,
        "patch" => a.patch(t, id, ops.clone()).await,
        "put" => a.put(t, id, body.clone()).await,
        _ => a.delete(t, id).await,
    }
}

#[tokio::test]
async fn a_reaches_for_bs_group_with_scim_token() {
    another_tenants_group_answers_as_a_missing_one(Credential::ScimToken).await;
}

#[tokio::test]
async fn a_reaches_for_bs_group_with_oauth_token() {
    another_tenants_group_answers_as_a_missing_one(Credential::OAuth).await;
}

/// A, holding `cred`, reads, PATCHes, PUTs and DELETEs B's group, and
/// finds it by name or member: each as for a group that does not exist.
async fn another_tenants_group_answers_as_a_missing_one(cred: Credential) {
    let (p, a, b) = two_tenants_holding(Profile::Rfc, cred).await;
    let t = &p.t;
    let bea = b.user(t, "bea@globex.test").await;
    let theirs = b.create(t, "Globex Admins", &[bea.as_str()]).await;
    let mine = a.create(t, "Acme Admins", &[] as &[&str]).await;
    let missing = "987654".to_string();
    let body = json!({"schemas": [GROUP_SCHEMA], "displayName": "Taken Over"});
    let ops = json!([{"op": "replace", "path": "displayName", "value": "Taken Over"}]);
    let stored = || async {
        (
            t.items_with_prefix(&table::tenant_groups_partition("globex"))
                .await,
            t.items_with_prefix("TGROUPNAME#").await,
        )
    };
    let before = stored().await;
    for what in ["get", "patch", "put", "delete"] {
        let theirs_r = attempt(&a, t, what, &theirs, &body, &ops).await;
        let missing_r = attempt(&a, t, what, &missing, &body, &ops).await;
        assert_eq!(theirs_r.status.as_u16(), 404, "{what}: {}", theirs_r.raw);
        assert_eq!(theirs_r.status, missing_r.status, "{what}");
        assert_eq!(
            blank(&theirs_r.body, &[&theirs]),
            blank(&missing_r.body, &[&missing]),
            "{cred:?} {what}"
        );
    }
    assert_eq!(stored().await, before, "B's group is as it was");
    // B's group is untouched, and only B lists it.
    let r = b.get(t, &format!("/Groups/{theirs}")).await;
    assert_eq!(r.expect(200)["displayName"], "Globex Admins");
    assert_eq!(r.body["members"][0]["value"], bea.as_str());
    assert_eq!(ids(a.get(t, "/Groups").await.expect(200)), [mine.as_str()]);
    assert_eq!(
        ids(b.get(t, "/Groups").await.expect(200)),
        [theirs.as_str()]
    );
    let by_name = format!(
        "/Groups?filter={}",
        urlencode("displayName eq \"Globex Admins\"")
    );
    assert_eq!(a.get(t, &by_name).await.expect(200)["totalResults"], 0);
    let by_member = format!(
        "/Groups?filter={}",
        urlencode(&format!("members[value eq \"{bea}\"]"))
    );
    assert_eq!(a.get(t, &by_member).await.expect(200)["totalResults"], 0);
    // The global base lists the orgs, never a tenant's groups.
    let global = t
        .call(
            groups::list,
            p.req(Method::GET, "/api/v1/scim/Groups", None).build(),
        )
        .await;
    let names: Vec<&str> = global.expect(200)["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["displayName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Org acme", "Org globex"]);
    // A's token under B's base is refused before anything is read.
    let r = t
        .call(
            groups::list,
            Req::new(Method::GET, "/api/v1/scim/orgs/globex/Groups")
                .header("authorization", &format!("Bearer {}", a.token))
                .build(),
        )
        .await;
    r.expect(401);
}

#[tokio::test]
async fn mapped_groups_give_roles_in_the_org() {
    let (p, a, _) = two_tenants(Profile::Odm).await;
    let t = &p.t;
    let ann = a.user(t, "ann@acme.test").await;
    let ben = a.user(t, "ben@acme.test").await;
    assert_eq!(a.role(t, &ann).await, "worker");
    // A mapping set before the IdP pushes the group (caseless).
    a.map(t, "admins", Some(Role::Owner)).await;
    a.map(t, "Leads", Some(Role::Supervisor)).await;
    let leads = a.create(t, "Leads", &[ann.clone(), ben.clone()]).await;
    assert_eq!(a.role(t, &ann).await, "supervisor");
    assert_eq!(a.role(t, &ben).await, "supervisor");
    // Okta pushes Admins empty, then adds Ann: the highest role wins.
    let admins = a.create(t, "Admins", &[] as &[&str]).await;
    assert_eq!(a.role(t, &ann).await, "supervisor");
    a.patch(
        t,
        &admins,
        json!([{"op": "add", "path": "members", "value": values(&[ann.as_str()])}]),
    )
    .await
    .expect(204);
    assert_eq!(a.role(t, &ann).await, "owner");
    // Removed from Admins (Entra's filter form): back to the next highest.
    a.patch(
        t,
        &admins,
        json!([{"op": "remove", "path": format!("members[value eq \"{ann}\"]")}]),
    )
    .await
    .expect(204);
    assert_eq!(a.role(t, &ann).await, "supervisor");
    // Removed from Leads too: the default role.
    a.patch(
        t,
        &leads,
        json!([{"op": "remove", "path": format!("members[value eq \"{ann}\"]")}]),
    )
    .await
    .expect(204);
    assert_eq!(a.role(t, &ann).await, "worker");
    // The mapping changes: the group's members are recomputed (and again: nothing moves).
    assert_eq!(a.map(t, "leads", Some(Role::Maintainer)).await, 1);
    assert_eq!(a.role(t, &ben).await, "maintainer");
    let org = a.org(t).await;
    assert_eq!(
        t.store
            .tenant_groups()
            .recompute(&org, "Leads")
            .await
            .unwrap(),
        0
    );
    assert_eq!(a.map(t, "Leads", None).await, 1);
    assert_eq!(a.role(t, &ben).await, "worker");
    a.map(t, "Leads", Some(Role::Supervisor)).await;
    assert_eq!(a.role(t, &ben).await, "supervisor");
    // A rename into a mapped name, and out of it.
    a.patch(
        t,
        &leads,
        json!([{"op": "replace", "path": "displayName", "value": "Admins-old"}]),
    )
    .await
    .expect(204);
    assert_eq!(a.role(t, &ben).await, "worker");
    // Deleting a mapped group drops the role it gave.
    a.patch(
        t,
        &admins,
        json!([{"op": "add", "path": "members", "value": values(&[ben.as_str()])}]),
    )
    .await
    .expect(204);
    assert_eq!(a.role(t, &ben).await, "owner");
    a.delete(t, &admins).await.expect(204);
    assert_eq!(a.role(t, &ben).await, "worker");
    // The admin API shows the roles, in CVAT's memberships format.
    a.put(
        t,
        &leads,
        json!({"schemas": [GROUP_SCHEMA], "displayName": "Leads", "members": values(&[ann.as_str()])}),
    )
    .await
    .expect(200);
    let r = t
        .call(
            admin_api::memberships_list,
            Req::new(Method::GET, "/api/memberships?org=acme")
                .header("authorization", &format!("Bearer {}", p.token))
                .build(),
        )
        .await;
    let roles: Vec<(u64, String)> = r.expect(200)["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["user"]["id"].as_u64().unwrap(),
                m["role"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let (ann_id, ben_id) = (ann.parse::<u64>().unwrap(), ben.parse::<u64>().unwrap());
    assert!(roles.contains(&(ann_id, "supervisor".into())), "{roles:?}");
    assert!(roles.contains(&(ben_id, "worker".into())), "{roles:?}");
}

/// A member change costs the same at any group size: the auth read (with
/// the org item, the group and the user), then one transaction; a mapped
/// group adds one query of the tenant's groups (to compute the role).
#[tokio::test]
async fn a_member_change_costs_the_same_at_any_group_size() {
    let (p, a, _) = two_tenants(Profile::Odm).await;
    let t = &p.t;
    let mut users = Vec::new();
    for i in 0..30 {
        users.push(a.user(t, &format!("u{i}@acme.test")).await);
    }
    let small = a.create(t, "Small", &users[..1]).await;
    let big = a.create(t, "Big", &users[1..29]).await;
    let newcomer = users[29].clone();
    let add = json!([{"op": "add", "path": "members", "value": values(&[newcomer.as_str()])}]);
    let remove = json!([{"op": "remove", "path": format!("members[value eq \"{newcomer}\"]")}]);
    let mut costs = Vec::new();
    for g in [&small, &big] {
        let r = a.patch(t, g, add.clone()).await;
        r.expect(204);
        costs.push(r.dynamodb_calls);
        let r = a.patch(t, g, remove.clone()).await;
        r.expect(204);
        costs.push(r.dynamodb_calls);
    }
    // Unmapped: the auth read and one transaction.
    assert_eq!(costs, [2, 2, 2, 2], "unmapped member changes");
    a.map(t, "Big", Some(Role::Maintainer)).await;
    a.map(t, "Small", Some(Role::Supervisor)).await;
    let mut mapped = Vec::new();
    for g in [&small, &big] {
        let r = a.patch(t, g, add.clone()).await;
        r.expect(204);
        mapped.push(r.dynamodb_calls);
        let r = a.patch(t, g, remove.clone()).await;
        r.expect(204);
        mapped.push(r.dynamodb_calls);
    }
    // Mapped: plus one query of the tenant's groups.
    assert_eq!(mapped, [3, 3, 3, 3], "mapped member changes");
    assert_eq!(a.role(t, &newcomer).await, "worker");
}

/// A tenant group holds at most 20,000 members (its record is one item): a
/// change past that is a 400 before any user is read, and writes nothing.
#[tokio::test]
async fn a_tenant_group_holds_at_most_twenty_thousand_members() {
    let (p, a, _) = two_tenants(Profile::Odm).await;
    let t = &p.t;
    let group = a.create(t, "Everyone", &[] as &[&str]).await;
    let many: Vec<String> = (1..=20_001u64)
        .map(|i| (1_000_000 + i).to_string())
        .collect();
    let r = a
        .patch(
            t,
            &group,
            json!([{"op": "add", "path": "members", "value": values(&many)}]),
        )
        .await;
    assert_eq!(r.expect(400)["scimType"], "invalidValue");
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap()
            .contains("at most 20000 members"),
        "{}",
        r.raw
    );
    assert_eq!(r.dynamodb_calls, 1, "the auth read only");
    let r = a
        .post(
            t,
            json!({"schemas": [GROUP_SCHEMA], "displayName": "All", "members": values(&many)}),
        )
        .await;
    assert_eq!(r.expect(400)["scimType"], "invalidValue");
    assert_eq!(a.get(t, "/Groups").await.expect(200)["totalResults"], 1);
}

/// Two member changes racing on one user's mapped groups are serialised by
/// the user item's version: whichever lands second recomputes from what the
/// first wrote, so the role is the highest of both groups.
#[tokio::test]
async fn racing_member_changes_end_with_the_highest_role() {
    let (p, a, _) = two_tenants(Profile::Odm).await;
    let t = &p.t;
    a.map(t, "Owners", Some(Role::Owner)).await;
    a.map(t, "Leads", Some(Role::Supervisor)).await;
    let owners = a.create(t, "Owners", &[] as &[&str]).await;
    let leads = a.create(t, "Leads", &[] as &[&str]).await;
    for round in 0..4 {
        let u = a.user(t, &format!("racer{round}@acme.test")).await;
        let add = json!([{"op": "add", "path": "members", "value": values(&[u.as_str()])}]);
        let (x, y) = tokio::join!(
            a.patch(t, &owners, add.clone()),
            a.patch(t, &leads, add.clone())
        );
        x.expect(204);
        y.expect(204);
        assert_eq!(a.role(t, &u).await, "owner", "round {round}");
        let remove = json!([{"op": "remove", "path": format!("members[value eq \"{u}\"]")}]);
        let (x, y) = tokio::join!(
            a.patch(t, &owners, remove.clone()),
            a.patch(t, &leads, remove.clone())
        );
        x.expect(204);
        y.expect(204);
        assert_eq!(a.role(t, &u).await, "worker", "round {round}");
    }
}

/// The root `POST /.search` under a tenant base lists the tenant's users,
/// then its groups, paged together; nothing of another tenant, and none of
/// the global groups (orgs).
#[tokio::test]
async fn the_root_search_under_a_tenant_base_lists_its_users_then_its_groups() {
    let (p, a, b) = two_tenants(Profile::Rfc).await;
    let t = &p.t;
    let alice = a.user(t, "alice@acme.test").await;
    let bob = a.user(t, "bob@acme.test").await;
    let eve = b.user(t, "eve@globex.test").await;
    let staff = a.create(t, "Staff", &[&alice]).await;
    let other = b.create(t, "Staff", &[&eve]).await;
    let search = |tenant: &Tenant, body: Value| {
        let req = tenant.req(Method::POST, "/.search", Some(&body)).build();
        async move { t.call(scim::search, req).await.expect(200).clone() }
    };
    let all = search(
        &a,
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"]}),
    )
    .await;
    assert_eq!(all["totalResults"], 3, "{all}");
    assert_eq!(ids(&all), vec![alice.clone(), bob.clone(), staff.clone()]);
    let group = &all["Resources"][2];
    assert_eq!(group["members"][0]["value"], alice.as_str(), "{group}");
    assert!(
        group["meta"]["location"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/api/v1/scim/orgs/acme/Groups/{staff}")),
        "{group}"
    );
    // A page that starts in the users continues into the groups.
    let page = search(
        &a,
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
               "startIndex": 2, "count": 2}),
    )
    .await;
    assert_eq!(page["totalResults"], 3);
    assert_eq!(ids(&page), vec![bob.clone(), staff.clone()]);
    // A filter only groups have (scim2-tester's search_with_attributes).
    let by_id = search(
        &a,
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
               "filter": "displayName eq \"Staff\""}),
    )
    .await;
    assert_eq!(ids(&by_id), vec![staff.clone()], "{by_id}");
    // B sees its own, never A's.
    let theirs = search(
        &b,
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"]}),
    )
    .await;
    assert_eq!(ids(&theirs), vec![eve, other]);
}

/// A new default role (`usersctl org default-role`) reaches the members in
/// no mapped group at once; those a mapped group gives a role keep it, and
/// running it again moves no one.
#[tokio::test]
async fn a_new_default_role_reaches_the_members_no_mapped_group_covers() {
    let (p, a, b) = two_tenants(Profile::Odm).await;
    let t = &p.t;
    let ann = a.user(t, "ann@acme.test").await;
    let ben = a.user(t, "ben@acme.test").await;
    let eve = b.user(t, "eve@globex.test").await;
    a.map(t, "Leads", Some(Role::Maintainer)).await;
    a.create(t, "Leads", &[&ann]).await;
    let org = a.org(t).await;
    t.store
        .tenants()
        .set_default_role(&org, Role::Supervisor)
        .await
        .unwrap();
    let org = a.org(t).await;
    let moved = t.store.tenant_groups().recompute_all(&org).await.unwrap();
    assert_eq!(moved, 1);
    assert_eq!(a.role(t, &ben).await, "supervisor");
    assert_eq!(a.role(t, &ann).await, "maintainer");
    assert_eq!(b.role(t, &eve).await, "worker", "another tenant's member");
    assert_eq!(
        t.store.tenant_groups().recompute_all(&org).await.unwrap(),
        0
    );
}
