//! `/api/v1/scim/Groups` in-process against DynamoDB Local: groups are orgs,
//! the request sequences Okta and Entra ID send, what a member change costs
//! at any group size, concurrent member changes, and deletes cut short.
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use directory::admin_api;
use directory::domain::user::{Membership, User};
use directory::http::Profile;
use directory::scim::{self, groups};
use directory::store::{table, Budget, Org, StoreError, UniqueField};
use directory_tests::faults::Fault;
use directory_tests::{Provisioner, Reply, TestTable};
use lambda_http::http::Method;
use serde_json::{json, Value};

const GROUPS: &str = "/api/v1/scim/Groups";
const USERS: &str = "/api/v1/scim/Users";
const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// The provisioner's session, with this file's shorthands.
struct Scim(Provisioner);

impl std::ops::Deref for Scim {
    type Target = Provisioner;
    fn deref(&self) -> &Provisioner {
        &self.0
    }
}

impl Scim {
    async fn new(profile: Profile) -> Scim {
        Scim(Provisioner::new(profile).await)
    }

    async fn post(&self, body: Value) -> Reply {
        self.t
            .call(
                groups::create,
                self.req(Method::POST, GROUPS, Some(&body)).build(),
            )
            .await
    }

    async fn create(&self, name: &str) -> String {
        let r = self
            .post(json!({"schemas": [GROUP_SCHEMA], "displayName": name, "members": []}))
            .await;
        r.expect(201)["id"].as_str().unwrap().to_string()
    }

    async fn get(&self, path: &str) -> Reply {
        let req = self.req(Method::GET, path, None).build();
        if path.starts_with(&format!("{GROUPS}/")) {
            self.t.call(groups::get, req).await
        } else {
            self.t.call(groups::list, req).await
        }
    }

    async fn patch(&self, id: &str, ops: Value) -> Reply {
        let body = json!({"schemas": [PATCH_OP], "Operations": ops});
        self.t
            .call(
                groups::patch,
                self.req(Method::PATCH, &format!("{GROUPS}/{id}"), Some(&body))
                    .build(),
            )
            .await
    }

    async fn members(&self, id: &str) -> Vec<String> {
        let r = self.get(&format!("{GROUPS}/{id}")).await;
        r.expect(200)["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["value"].as_str().unwrap().to_string())
            .collect()
    }

    async fn users(&self, n: usize, prefix: &str) -> Vec<String> {
        let mut out = Vec::new();
        for i in 0..n {
            out.push(self.t.user(&format!("{prefix}{i}")).await.id.to_string());
        }
        out
    }
}

fn values(ids: &[String]) -> Value {
    Value::Array(ids.iter().map(|id| json!({"value": id})).collect())
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort_by_key(|s| s.parse::<u64>().unwrap());
    v
}

#[tokio::test]
async fn okta_group_push_sequence() {
    let s = Scim::new(Profile::Odm).await;
    let users = s.users(4, "okta").await;
    // Okta creates the group empty, then pushes members by PATCH.
    let id = s.create("Engineering").await;
    let page = s.get(&format!("{GROUPS}?startIndex=1&count=100")).await;
    let body = page.expect(200);
    assert_eq!(body["totalResults"], 1);
    assert_eq!(body["Resources"][0]["displayName"], "Engineering");
    assert_eq!(body["Resources"][0]["members"], json!([]));
    // Rename: path-less replace carrying the current id.
    s.patch(
        &id,
        json!([{"op": "replace", "value": {"id": id, "displayName": "Eng"}}]),
    )
    .await
    .expect(204);
    s.patch(
        &id,
        json!([{"op": "add", "path": "members", "value": values(&users[..2])}]),
    )
    .await
    .expect(204);
    // One PATCH that removes by filter and adds.
    s.patch(
        &id,
        json!([
            {"op": "remove", "path": format!("members[value eq \"{}\"]", users[0])},
            {"op": "add", "path": "members", "value": values(&users[2..3])}
        ]),
    )
    .await
    .expect(204);
    assert_eq!(s.members(&id).await, [users[1].clone(), users[2].clone()]);
    // Replace with the full list, then with nothing.
    s.patch(
        &id,
        json!([{"op": "replace", "path": "members", "value": values(&users)}]),
    )
    .await
    .expect(204);
    assert_eq!(s.members(&id).await, sorted(users.clone()));
    s.patch(
        &id,
        json!([{"op": "replace", "path": "members", "value": []}]),
    )
    .await
    .expect(204);
    assert!(s.members(&id).await.is_empty());
    let got = s.get(&format!("{GROUPS}/{id}")).await;
    assert_eq!(got.expect(200)["displayName"], "Eng");
    let gone =
        s.t.call(
            groups::delete,
            s.req(Method::DELETE, &format!("{GROUPS}/{id}"), None)
                .build(),
        )
        .await;
    assert_eq!(gone.status, 204, "{}", gone.raw);
    s.get(&format!("{GROUPS}/{id}")).await.expect(404);
}

#[tokio::test]
async fn entra_group_provisioning_sequence_and_its_costs() {
    let s = Scim::new(Profile::Rfc).await;
    let users = s.users(3, "entra").await;
    let probe = s
        .get(&format!(
            "{GROUPS}?excludedAttributes=members&filter=displayName+eq+%22Sales%22"
        ))
        .await;
    assert_eq!(probe.expect(200)["totalResults"], 0);
    let id = s.create("Sales").await;
    // Entra's lookups: ≤ 2 calls each, the auth read included.
    let by_name = s
        .get(&format!(
            "{GROUPS}?excludedAttributes=members&filter=displayName+eq+%22sALES%22"
        ))
        .await;
    assert_eq!(by_name.expect(200)["Resources"][0]["id"], id.as_str());
    assert!(by_name.body["Resources"][0].get("members").is_none());
    assert!(
        by_name.dynamodb_calls <= 2,
        "{} calls",
        by_name.dynamodb_calls
    );
    let by_id = s
        .get(&format!("{GROUPS}/{id}?excludedAttributes=members"))
        .await;
    assert_eq!(by_id.expect(200)["displayName"], "Sales");
    assert!(by_id.body.get("members").is_none());
    assert_eq!(by_id.dynamodb_calls, 1);
    // Capitalised ops, lists of values, 204s.
    s.patch(
        &id,
        json!([{"op": "Add", "path": "members", "value": values(&users)}]),
    )
    .await
    .expect(204);
    s.patch(
        &id,
        json!([{"op": "Remove", "path": "members", "value": values(&users[..1])}]),
    )
    .await
    .expect(204);
    s.patch(
        &id,
        json!([{"op": "Replace", "path": "displayName", "value": "Sales EMEA"}]),
    )
    .await
    .expect(204);
    s.patch(
        &id,
        json!([{"op": "Replace", "path": "externalId", "value": "aad-42"}]),
    )
    .await
    .expect(204);
    let got = s.get(&format!("{GROUPS}/{id}")).await;
    let body = got.expect(200);
    assert_eq!(body["displayName"], "Sales EMEA");
    assert_eq!(body["externalId"], "aad-42");
    assert_eq!(s.members(&id).await, users[1..].to_vec());
    let by_ext = s
        .get(&format!("{GROUPS}?filter=externalId+eq+%22aad-42%22"))
        .await;
    assert_eq!(by_ext.expect(200)["totalResults"], 1);
    let by_member = s
        .get(&format!(
            "{GROUPS}?filter=members%5Bvalue+eq+%22{}%22%5D",
            users[1]
        ))
        .await;
    assert_eq!(by_member.expect(200)["Resources"][0]["id"], id.as_str());
    assert!(
        by_member.dynamodb_calls <= 2 + 1,
        "{} calls",
        by_member.dynamodb_calls
    );
    let not_member = s
        .get(&format!(
            "{GROUPS}?filter=members.value+eq+%22{}%22",
            users[0]
        ))
        .await;
    assert_eq!(not_member.expect(200)["totalResults"], 0);
    // The user resource lists its groups, read with the user in one call.
    let user =
        s.t.call(
            scim::get,
            s.req(Method::GET, &format!("{USERS}/{}", users[1]), None)
                .build(),
        )
        .await;
    assert_eq!(user.expect(200)["groups"][0]["value"], id.as_str());
    assert_eq!(user.dynamodb_calls, 1);
    // The old name is free again, the new one is taken caselessly.
    s.post(json!({"displayName": "SALES emea"}))
        .await
        .expect(409);
    s.create("Sales").await;
}

#[tokio::test]
async fn unknown_member_ids_are_refused_and_nothing_is_applied() {
    let s = Scim::new(Profile::Odm).await;
    let users = s.users(2, "known").await;
    let id = s.create("Ops").await;
    let r = s
        .patch(
            &id,
            json!([
                {"op": "replace", "path": "displayName", "value": "Ops 2"},
                {"op": "add", "path": "members", "value": [{"value": users[0]}, {"value": "999999"}, {"value": "abc"}]}
            ]),
        )
        .await;
    let body = r.expect(400);
    assert_eq!(body["scimType"], "invalidValue");
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail.contains("999999") && detail.contains("abc"),
        "{detail}"
    );
    assert!(s.members(&id).await.is_empty());
    let got = s.get(&format!("{GROUPS}/{id}")).await;
    assert_eq!(got.expect(200)["displayName"], "Ops");
    // A POST naming an unknown member creates nothing, so its name stays free.
    let r = s
        .post(json!({"displayName": "Fresh", "members": [{"value": "424242"}]}))
        .await;
    assert_eq!(r.expect(400)["scimType"], "invalidValue");
    s.create("Fresh").await;
}

#[tokio::test]
async fn orgs_and_groups_are_one_thing() {
    let s = Scim::new(Profile::Odm).await;
    // An org made as `usersctl org create` and `add-member` do.
    let org =
        s.t.store
            .groups()
            .create_org("acme", "Acme Corp")
            .await
            .unwrap();
    let alice = s.t.user("alice").await;
    s.t.store
        .groups()
        .add_member(&org, &alice, "maintainer")
        .await
        .unwrap();
    let listed = s
        .get(&format!("{GROUPS}?filter=displayName+eq+%22acme+corp%22"))
        .await;
    let group = &listed.expect(200)["Resources"][0];
    assert_eq!(group["id"], org.id.to_string());
    assert_eq!(group["members"][0]["value"], alice.id.to_string());
    // Adding her again through SCIM keeps her role; a new member gets the default.
    let bob = s.t.user("bob").await;
    s.patch(
        &org.id.to_string(),
        json!([{"op": "add", "path": "members", "value": [{"value": alice.id.to_string()}, {"value": bob.id.to_string()}]}]),
    )
    .await
    .expect(204);
    let role = |u: &User| {
        u.memberships
            .iter()
            .find(|m| m.org_id == org.id)
            .map(|m| m.role.clone())
    };
    assert_eq!(
        role(&s.t.fresh(alice.id).await).as_deref(),
        Some("maintainer")
    );
    assert_eq!(role(&s.t.fresh(bob.id).await).as_deref(), Some("worker"));
    // A group made through SCIM scopes the admin API at once.
    let id = s.create("Data Team").await;
    s.patch(
        &id,
        json!([{"op": "add", "path": "members", "value": [{"value": bob.id.to_string()}]}]),
    )
    .await
    .expect(204);
    let scoped =
        s.t.call(
            admin_api::list,
            directory_tests::get("/api/users?org=data-team")
                .token(&s.token)
                .build(),
        )
        .await;
    let names: Vec<&str> = scoped.expect(200)["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["bob"]);
    // Deleting a user removes their memberships; deleting a group, the org.
    s.t.store
        .users()
        .delete(&s.t.fresh(bob.id).await)
        .await
        .unwrap();
    assert!(s.members(&id).await.is_empty());
    s.t.call(
        groups::delete,
        s.req(Method::DELETE, &format!("{GROUPS}/{id}"), None)
            .build(),
    )
    .await
    .expect(204);
    let scoped =
        s.t.call(
            admin_api::list,
            directory_tests::get("/api/users?org=data-team")
                .token(&s.token)
                .build(),
        )
        .await;
    scoped.expect(404);
    // The slug of a deleted org is never handed out again.
    let again = s.create("Data Team").await;
    let record =
        s.t.store
            .groups()
            .get(again.parse().unwrap())
            .await
            .unwrap()
            .unwrap();
    assert_ne!(record.slug, "data-team");
}

/// The headline: adding one member costs the same calls and capacity
/// whether the group has no members or 10,000.
#[tokio::test]
async fn adding_a_member_costs_the_same_at_any_group_size() {
    let s = Scim::new(Profile::Odm).await;
    let small = s.create("Empty").await;
    let big = s.create("Huge").await;
    let big_group =
        s.t.store
            .groups()
            .get(big.parse().unwrap())
            .await
            .unwrap()
            .unwrap();
    let members: Vec<User> = (0..10_000)
        .map(|i| {
            let mut u = User::new(format!("member{i:05}"));
            u.memberships = vec![Membership {
                org_slug: big_group.slug.clone(),
                org_id: big_group.id,
                role: "worker".into(),
                is_active: true,
            }];
            u
        })
        .collect();
    s.t.store.users().import(members).await.unwrap();
    let a = s.t.user("newcomer-a").await.id.to_string();
    let b = s.t.user("newcomer-b").await.id.to_string();
    let add = |id: &str| json!([{"op": "add", "path": "members", "value": [{"value": id}]}]);
    let to_small = s.patch(&small, add(&a)).await;
    to_small.expect(204);
    let to_big = s.patch(&big, add(&b)).await;
    to_big.expect(204);
    assert_eq!(to_small.dynamodb_calls, to_big.dynamodb_calls);
    assert_eq!(to_small.capacity_units, to_big.capacity_units);
    assert!(
        to_big.dynamodb_calls <= 3,
        "{} calls",
        to_big.dynamodb_calls
    );
    let remove =
        |id: &str| json!([{"op": "remove", "path": format!("members[value eq \"{id}\"]")}]);
    let from_small = s.patch(&small, remove(&a)).await;
    let from_big = s.patch(&big, remove(&b)).await;
    from_big.expect(204);
    assert_eq!(from_small.dynamodb_calls, from_big.dynamodb_calls);
    assert_eq!(from_small.capacity_units, from_big.capacity_units);
    // The whole member list still comes back, in id order.
    let full = s.get(&format!("{GROUPS}/{big}")).await;
    assert_eq!(
        full.expect(200)["members"].as_array().unwrap().len(),
        10_000
    );
    println!(
        "add one member: {} calls, {} units; full list of 10,000: {} calls, {} units",
        to_big.dynamodb_calls, to_big.capacity_units, full.dynamodb_calls, full.capacity_units
    );
}

/// 24 PATCHes at once, each adding a different user to one group, against
/// the stand-in that cancels overlapping transactions as DynamoDB does: no
/// member is lost, because member changes never write the group's own items.
#[tokio::test]
async fn concurrent_member_additions_lose_nothing() {
    let s = Scim::new(Profile::Odm).await;
    let users = s.users(24, "racer").await;
    let id = s.create("Racers").await;
    let (t, faults) = TestTable::faulty(Profile::Odm, Budget::LAMBDA).await;
    let t = TestTable {
        store: directory::store::Store::new(t.store.client().clone(), s.t.store.table()),
        profile: Profile::Odm,
    };
    faults.contention(Duration::from_millis(20));
    let replies = futures::future::join_all(users.iter().map(|u| {
        let body = json!({"schemas": [PATCH_OP], "Operations": [
            {"op": "add", "path": "members", "value": [{"value": u}]}]});
        t.call(
            groups::patch,
            s.req(Method::PATCH, &format!("{GROUPS}/{id}"), Some(&body))
                .build(),
        )
    }))
    .await;
    for r in &replies {
        assert_eq!(r.status, 204, "{}", r.raw);
    }
    let conflicts = faults
        .log()
        .iter()
        .filter(|c| c.fault == Some(Fault::TransactionConflict))
        .count();
    faults.reset();
    assert_eq!(
        s.members(&id).await,
        sorted(users.clone()),
        "{conflicts} conflicts"
    );
}

/// A delete of a large group that DynamoDB cuts short answers 503, and the
/// next DELETE finishes it: no member item or membership is left.
#[tokio::test]
async fn a_delete_cut_short_is_finished_by_the_next() {
    let s = Scim::new(Profile::Rfc).await;
    let users = s.users(120, "leaver").await;
    let id = s.create("Leavers").await;
    s.patch(
        &id,
        json!([{"op": "add", "path": "members", "value": values(&users)}]),
    )
    .await
    .expect(204);
    let (faulty, faults) = TestTable::faulty(Profile::Rfc, Budget::LAMBDA).await;
    let faulty = TestTable {
        store: directory::store::Store::new(faulty.store.client().clone(), s.t.store.table()),
        profile: Profile::Rfc,
    };
    // The auth read, the mark, the member query, a batch read, then the
    // first removal transaction fails for good.
    faults.fail_from(5, Fault::InternalServerError);
    let cut = faulty
        .call(
            groups::delete,
            s.req(Method::DELETE, &format!("{GROUPS}/{id}"), None)
                .build(),
        )
        .await;
    assert_eq!(cut.status, 503, "{}", cut.raw);
    assert!(cut.header("retry-after").is_some());
    faults.reset();
    s.get(&format!("{GROUPS}/{id}")).await.expect(404);
    s.t.call(
        groups::delete,
        s.req(Method::DELETE, &format!("{GROUPS}/{id}"), None)
            .build(),
    )
    .await
    .expect(204);
    let record = s.t.store.groups().get(id.parse().unwrap()).await.unwrap();
    assert!(record.is_none());
    let slug_items = s.t.items_with_prefix("ORG#").await;
    assert!(
        slug_items
            .iter()
            .all(|i| directory::store::table::get_s(i, "sk") == Some("ORG")),
        "member items left behind"
    );
    for u in &users {
        assert!(s.t.fresh(u.parse().unwrap()).await.memberships.is_empty());
    }
    assert!(s.t.items_with_prefix("ORGID#").await.is_empty());
    let _ = table::GROUPS_PARTITION;
}

#[tokio::test]
async fn discovery_advertises_groups() {
    let s = Scim::new(Profile::Rfc).await;
    let types =
        s.t.call(
            scim::discover,
            s.req(Method::GET, "/api/v1/scim/ResourceTypes", None)
                .build(),
        )
        .await;
    let names: Vec<&str> = types.expect(200)["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["User", "Group"]);
    let schema =
        s.t.call(
            scim::discover,
            s.req(
                Method::GET,
                &format!("/api/v1/scim/Schemas/{GROUP_SCHEMA}"),
                None,
            )
            .build(),
        )
        .await;
    let attrs: Vec<&str> = schema.expect(200)["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert!(attrs.contains(&"members") && attrs.contains(&"displayName"));
}

/// An org as `usersctl org create` wrote it before SCIM Groups: its org item
/// and its id claim, no group record.
async fn legacy_org(t: &TestTable, id: u64, slug: &str, name: &str) -> Org {
    let put = |pk: String, sk: &str, extra: Vec<(&str, AttributeValue)>| {
        let mut req = t
            .store
            .client()
            .put_item()
            .table_name(t.store.table())
            .item("pk", AttributeValue::S(pk))
            .item("sk", AttributeValue::S(sk.into()));
        for (k, v) in extra {
            req = req.item(k, v);
        }
        req.send()
    };
    let (pk, sk) = table::org(slug);
    put(
        pk,
        sk,
        vec![
            ("org_id", AttributeValue::N(id.to_string())),
            ("slug", AttributeValue::S(slug.into())),
            ("name", AttributeValue::S(name.into())),
        ],
    )
    .await
    .unwrap();
    let (pk, sk) = table::org_by_id(id);
    put(pk, sk, vec![("slug", AttributeValue::S(slug.into()))])
        .await
        .unwrap();
    t.store.groups().org(slug).await.unwrap().expect("the org")
}

#[tokio::test]
async fn orgs_from_before_groups_are_adopted_once() {
    let s = Scim::new(Profile::Rfc).await;
    let eng = legacy_org(&s.t, 900_001, "eng", "eng").await;
    let shout = legacy_org(&s.t, 900_002, "ENG", "ENG").await;
    let ana = s.t.user("ana").await;
    s.t.store
        .groups()
        .add_member(&eng, &ana, "maintainer")
        .await
        .unwrap();
    // Before adoption SCIM does not see them.
    let listed = s.get(GROUPS).await;
    assert_eq!(listed.expect(200)["totalResults"], 0, "{}", listed.raw);

    let orgs = s.t.store.groups().orgs_by_scan().await.unwrap();
    assert_eq!(
        orgs.iter().map(|o| o.slug.as_str()).collect::<Vec<_>>(),
        ["eng", "ENG"]
    );
    let adopted = s.t.store.groups().adopt(&eng, &eng.name).await.unwrap();
    assert_eq!(adopted.map(|g| g.id), Some(900_001));
    // Adopting again changes nothing.
    assert_eq!(
        s.t.store.groups().adopt(&eng, &eng.name).await.unwrap(),
        None
    );
    // "ENG" folds to the name "eng" holds: refused, then adopted under another name.
    let clash = s.t.store.groups().adopt(&shout, &shout.name).await;
    assert!(
        matches!(clash, Err(StoreError::Taken(UniqueField::GroupName))),
        "{clash:?}"
    );
    let renamed =
        s.t.store
            .groups()
            .adopt(&shout, "ENG (ENG)")
            .await
            .unwrap()
            .expect("adopted");
    assert_eq!(renamed.name, "ENG (ENG)");
    // The org took the group's name: one name, whichever side reads it.
    assert_eq!(
        s.t.store.groups().org("ENG").await.unwrap().unwrap().name,
        "ENG (ENG)"
    );

    // Both are Groups now, with the members they had, roles kept.
    let found = s
        .get(&format!("{GROUPS}?filter=displayName%20eq%20%22ENG%22"))
        .await;
    let found = found.expect(200);
    assert_eq!(found["totalResults"], 1);
    assert_eq!(found["Resources"][0]["id"], "900001");
    assert_eq!(s.members("900001").await, [ana.id.to_string()]);
    let listed = s.get(GROUPS).await;
    assert_eq!(listed.expect(200)["totalResults"], 2);
    let ana = s.t.store.users().get(ana.id).await.unwrap().unwrap();
    assert_eq!(ana.memberships[0].role, "maintainer");
    // And they behave as any group: a member added through SCIM lands.
    let bo = s.t.user("bo").await;
    s.patch(
        "900002",
        json!([{"op": "add", "path": "members", "value": [{"value": bo.id.to_string()}]}]),
    )
    .await
    .expect(204);
    assert_eq!(s.members("900002").await, [bo.id.to_string()]);
}

#[tokio::test]
async fn a_post_with_members_is_one_transaction_up_to_47_and_reads_nothing_after() {
    let s = Scim::new(Profile::Rfc).await;
    let users = s.users(60, "post").await;
    let members =
        |n: usize| -> Vec<Value> { users[..n].iter().map(|u| json!({"value": u})).collect() };
    // 47 members: the group, its org and claims and 94 member items in one
    // transaction. Calls: auth with the members' users, the id counter,
    // the transaction; nothing is read after it.
    let r = s
        .post(json!({"schemas": [GROUP_SCHEMA], "displayName": "Forty-seven", "members": members(47)}))
        .await;
    let body = r.expect(201);
    assert_eq!(body["members"].as_array().unwrap().len(), 47);
    assert_eq!(r.dynamodb_calls, 3, "{} calls", r.dynamodb_calls);
    let id = body["id"].as_str().unwrap().to_string();
    assert_eq!(s.members(&id).await.len(), 47);
    // 60: 47 with the group, 13 in a second transaction.
    let r = s
        .post(json!({"schemas": [GROUP_SCHEMA], "displayName": "Sixty", "members": members(60)}))
        .await;
    let body = r.expect(201);
    assert_eq!(r.dynamodb_calls, 4, "{} calls", r.dynamodb_calls);
    let listed: Vec<String> = body["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["value"].as_str().unwrap().to_string())
        .collect();
    let id = body["id"].as_str().unwrap().to_string();
    assert_eq!(listed, s.members(&id).await);
    assert_eq!(listed.len(), 60);
}

/// A page of groups lists at most 20,000 members in all, as one group does:
/// past that the page is refused with `tooMany`, never cut short and never
/// grown past what Lambda can answer.
#[tokio::test]
async fn a_page_of_groups_lists_at_most_20000_members_in_all() {
    let s = Scim::new(Profile::Rfc).await;
    let mut users = Vec::new();
    for (name, size) in [("Big A", 10_000), ("Big B", 10_001)] {
        let id: u64 = s.create(name).await.parse().unwrap();
        let g = s.t.store.groups().get(id).await.unwrap().unwrap();
        users.extend((0..size).map(|i| {
            let mut u = User::new(format!("{}{i:05}", g.slug));
            u.memberships = vec![Membership {
                org_slug: g.slug.clone(),
                org_id: g.id,
                role: "worker".into(),
                is_active: true,
            }];
            u
        }));
    }
    s.t.store.users().import(users).await.unwrap();
    let both = s.get(&format!("{GROUPS}?count=2")).await;
    let head: String = both.raw.chars().take(300).collect();
    assert_eq!(both.status, 400, "{head}");
    assert_eq!(both.body["scimType"], "tooMany");
    assert!(
        both.body["detail"].as_str().unwrap().contains("20000"),
        "{}",
        both.raw
    );
    let first = s.get(&format!("{GROUPS}?count=1")).await;
    assert_eq!(
        first.expect(200)["Resources"][0]["members"]
            .as_array()
            .unwrap()
            .len(),
        10_000
    );
    let bare = s
        .get(&format!("{GROUPS}?count=2&excludedAttributes=members"))
        .await;
    assert_eq!(bare.expect(200)["itemsPerPage"], 2);
}

/// `POST /.search` with the provisioner's token.
async fn search_all(s: &Scim, body: Value) -> Reply {
    s.t.call(
        scim::search,
        s.req(Method::POST, "/api/v1/scim/.search", Some(&body))
            .build(),
    )
    .await
}

const SEARCH_REQUEST: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";

#[tokio::test]
async fn the_root_search_pages_users_then_groups_at_any_depth() {
    let s = Scim::new(Profile::Rfc).await;
    // 1,050 users in all: the provisioner and 1,049 more.
    let users: Vec<User> = (0..1049).map(|i| User::new(format!("u{i:04}"))).collect();
    s.t.store.users().import(users).await.unwrap();
    let g1 = s.create("first group").await;
    let g2 = s.create("second group").await;

    // Past the first 1,000 users: the last 5 users, then the groups.
    let r = search_all(
        &s,
        json!({"schemas": [SEARCH_REQUEST], "startIndex": 1046, "count": 10,
               "attributes": ["userName", "displayName"]}),
    )
    .await;
    let body = r.expect(200);
    assert_eq!(body["totalResults"], 1052, "{body}");
    assert_eq!(body["startIndex"], 1046);
    assert_eq!(body["itemsPerPage"], 7);
    let names: Vec<&str> = body["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r["userName"]
                .as_str()
                .or(r["displayName"].as_str())
                .unwrap()
        })
        .collect();
    assert_eq!(
        names,
        [
            "u1044",
            "u1045",
            "u1046",
            "u1047",
            "u1048",
            "first group",
            "second group"
        ]
    );
    // The unfiltered users part reads its page, not the directory.
    assert_eq!(
        r.dynamodb_calls, 4,
        "auth, bucket counts, the users, the groups"
    );

    // A page that starts among the groups holds groups only.
    let r = search_all(
        &s,
        json!({"schemas": [SEARCH_REQUEST], "startIndex": 1052, "count": 10}),
    )
    .await;
    let body = r.expect(200);
    assert_eq!(body["totalResults"], 1052);
    let ids: Vec<&str> = body["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [g2.as_str()]);

    // A walk over the whole result lists every user and group once.
    let mut seen = std::collections::HashSet::new();
    let mut start = 1;
    loop {
        let r = search_all(
            &s,
            json!({"schemas": [SEARCH_REQUEST], "startIndex": start, "count": 300,
                   "attributes": ["id"]}),
        )
        .await;
        let body = r.expect(200);
        let page = body["Resources"].as_array().unwrap();
        if page.is_empty() {
            break;
        }
        for resource in page {
            let schema = resource["schemas"][0].as_str().unwrap().to_string();
            let id = resource["id"].as_str().unwrap().to_string();
            assert!(seen.insert((schema, id)), "listed twice: {resource}");
        }
        start += page.len();
    }
    assert_eq!(seen.len(), 1052);
    assert!(seen.contains(&(GROUP_SCHEMA.to_string(), g1)));

    // A filter only Users can read matches no group, and the other way round.
    let r = search_all(
        &s,
        json!({"schemas": [SEARCH_REQUEST], "filter": "userName eq \"u0007\""}),
    )
    .await;
    let body = r.expect(200);
    assert_eq!(body["totalResults"], 1, "{body}");
    assert_eq!(body["Resources"][0]["userName"], "u0007");
    let r = search_all(
        &s,
        json!({"schemas": [SEARCH_REQUEST], "filter": "members pr"}),
    )
    .await;
    assert_eq!(r.expect(400)["scimType"], "invalidFilter");

    // Cursors page /Users/.search; over both types a page is an index.
    let r = search_all(&s, json!({"schemas": [SEARCH_REQUEST], "cursor": ""})).await;
    let body = r.expect(400);
    assert_eq!(body["scimType"], "invalidValue");
    assert!(
        body["detail"].as_str().unwrap().contains("startIndex"),
        "{body}"
    );
}
