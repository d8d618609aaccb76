//! `/api/organizations` and `/api/memberships` in-process against DynamoDB
//! Local: CVAT's shapes and paging, who sees which org and membership, what
//! an outsider learns by replaying ids (nothing), and what each read costs.
use aws_sdk_dynamodb::types::AttributeValue;
use directory::admin_api::{
    fallback, memberships_list, memberships_retrieve, organizations_list, organizations_retrieve,
};
use directory::domain::user::User;
use directory::store::{table, Org};
use directory_tests::{get, Reply, Req, TestTable};
use lambda_http::http::Method;
use serde_json::{json, Value};

/// A table with two orgs and people in every position:
/// - `root`, an admin in no org;
/// - `acme`: `carol` (worker), `dave` (owner), `gina` (maintainer, but her
///   membership is not active);
/// - `beta`: `erin` (maintainer) and `carol` (supervisor);
/// - `frank`, in no org.
struct World {
    t: TestTable,
    acme: Org,
    beta: Org,
    root: String,
    carol: User,
    carol_token: String,
    dave: User,
    dave_token: String,
    erin: User,
    gina: User,
    gina_token: String,
    frank: User,
    frank_token: String,
}

/// The id CVAT's clients see for `user`'s membership in `org`.
fn mid(org: &Org, user: &User) -> u64 {
    org.id * 10_000_000_000 + user.id
}

impl World {
    async fn new() -> World {
        let t = TestTable::new().await;
        let root = t.admin("root").await;
        let root = t.token(&root).await;
        let acme = t
            .store
            .groups()
            .create_org("acme", "Acme Inc.")
            .await
            .unwrap();
        let beta = t.store.groups().create_org("beta", "Beta").await.unwrap();
        let carol = t.user("carol").await;
        let dave = t.user("dave").await;
        let erin = t.user("erin").await;
        let gina = t.user("gina").await;
        let frank = t.user("frank").await;
        join(&t, &acme, &carol, "worker").await;
        join(&t, &acme, &dave, "owner").await;
        join(&t, &acme, &gina, "maintainer").await;
        join(&t, &beta, &erin, "maintainer").await;
        join(&t, &beta, &carol, "supervisor").await;
        deactivate(&t, &acme, &gina).await;
        World {
            carol_token: t.token(&carol).await,
            dave_token: t.token(&dave).await,
            gina_token: t.token(&gina).await,
            frank_token: t.token(&frank).await,
            carol: t.fresh(carol.id).await,
            dave: t.fresh(dave.id).await,
            erin: t.fresh(erin.id).await,
            gina: t.fresh(gina.id).await,
            frank,
            t,
            acme,
            beta,
            root,
        }
    }

    async fn orgs(&self, token: &str, query: &str) -> Reply {
        let path = format!("/api/organizations{query}");
        self.t
            .call(organizations_list, get(&path).token(token).build())
            .await
    }

    async fn org(&self, token: &str, id: impl std::fmt::Display) -> Reply {
        let path = format!("/api/organizations/{id}");
        self.t
            .call(organizations_retrieve, get(&path).token(token).build())
            .await
    }

    async fn members(&self, token: &str, query: &str) -> Reply {
        self.members_req(get(&format!("/api/memberships{query}")).token(token))
            .await
    }

    async fn members_req(&self, req: Req) -> Reply {
        self.t.call(memberships_list, req.build()).await
    }

    async fn member(&self, token: &str, id: impl std::fmt::Display) -> Reply {
        let path = format!("/api/memberships/{id}");
        self.t
            .call(memberships_retrieve, get(&path).token(token).build())
            .await
    }
}

async fn join(t: &TestTable, org: &Org, user: &User, role: &str) {
    t.store
        .groups()
        .add_member(org, &t.fresh(user.id).await, role)
        .await
        .unwrap();
}

/// Makes `user`'s membership of `org` not active (as an invitation not yet
/// accepted would be in CVAT): on the user item and on the member item.
async fn deactivate(t: &TestTable, org: &Org, user: &User) {
    let fresh = t.fresh(user.id).await;
    let mut next = fresh.clone();
    for m in next.memberships.iter_mut().filter(|m| m.org_id == org.id) {
        m.is_active = false;
    }
    t.store.users().update(&fresh, next).await.unwrap();
    let (pk, sk) = table::membership(&org.slug, user.id);
    t.edit_item(
        (pk, &sk),
        "SET is_active = :f",
        &[],
        &[(":f", AttributeValue::Bool(false))],
    )
    .await;
}

fn keys_of(v: &Value) -> Vec<&str> {
    v.as_object().unwrap().keys().map(String::as_str).collect()
}

fn ids(body: &Value) -> Vec<u64> {
    body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_u64().unwrap())
        .collect()
}

/// What a caller sees of an answer: status, body and every header but the
/// request id (which differs on every request by design), and the DynamoDB
/// calls it cost (so time tells nothing either).
fn observed(r: &Reply) -> (u16, String, Vec<(String, String)>, u32) {
    let mut headers: Vec<(String, String)> = r
        .headers
        .iter()
        .filter(|(k, _)| k.as_str() != "x-request-id")
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_string()))
        .collect();
    headers.sort();
    (r.status.as_u16(), r.raw.clone(), headers, r.dynamodb_calls)
}

// ---------------------------------------------------------------- organizations

#[tokio::test]
async fn organizations_have_cvats_shape_and_members_see_only_their_own() {
    let w = World::new().await;
    let r = w.orgs(&w.root, "").await;
    let body = r.expect(200);
    assert_eq!(r.header("content-type"), Some("application/vnd.cvat+json"));
    assert_eq!(keys_of(body), ["count", "next", "previous", "results"]);
    assert_eq!(body["count"], 2);
    assert_eq!(
        ids(body),
        [w.beta.id, w.acme.id],
        "CVAT's default order is -id"
    );
    let acme = &body["results"][1];
    assert_eq!(
        keys_of(acme),
        [
            "id",
            "slug",
            "name",
            "description",
            "created_date",
            "updated_date",
            "contact",
            "owner"
        ]
    );
    assert_eq!(acme["slug"], "acme");
    assert_eq!(acme["name"], "Acme Inc.");
    assert_eq!(acme["description"], "");
    assert_eq!(acme["contact"], json!({}));
    assert_eq!(acme["owner"], Value::Null);
    assert!(acme["created_date"].as_str().unwrap().ends_with('Z'));
    assert_eq!(
        r.dynamodb_calls, 2,
        "auth, then one query over the group records"
    );

    // A member sees the orgs they are an active member of, read by key.
    let r = w.orgs(&w.carol_token, "").await;
    assert_eq!(ids(r.expect(200)), [w.beta.id, w.acme.id]);
    assert_eq!(r.dynamodb_calls, 2);
    let r = w.orgs(&w.dave_token, "").await;
    assert_eq!(ids(r.expect(200)), [w.acme.id]);
    // Not an active member (an invitation not accepted): not theirs to see.
    let r = w.orgs(&w.gina_token, "").await;
    assert_eq!(r.expect(200)["count"], 0);
    let r = w.orgs(&w.frank_token, "").await;
    assert_eq!(
        r.expect(200),
        &json!({"count": 0, "next": null, "previous": null, "results": []})
    );
    assert_eq!(
        r.dynamodb_calls, 1,
        "a user in no org costs the auth read only"
    );

    // One org by id, read with the caller: one call.
    let r = w.org(&w.carol_token, w.acme.id).await;
    assert_eq!(r.expect(200), &body["results"][1]);
    assert_eq!(r.dynamodb_calls, 1);
    let r = w.org(&w.root, w.beta.id).await;
    assert_eq!(r.expect(200)["slug"], "beta");
    assert_eq!(
        w.org(&w.root, 999).await.expect(404),
        &json!({"detail": "Not found."})
    );
}

#[tokio::test]
async fn organization_lists_filter_sort_search_and_page_like_cvat() {
    let w = World::new().await;
    let gamma =
        w.t.store
            .groups()
            .create_org("gamma", "Gamma")
            .await
            .unwrap();
    let cases: Vec<(&str, Vec<u64>)> = vec![
        ("?sort=name", vec![w.acme.id, w.beta.id, gamma.id]),
        ("?sort=-slug", vec![gamma.id, w.beta.id, w.acme.id]),
        ("?slug=beta", vec![w.beta.id]),
        ("?name=Acme%20Inc.", vec![w.acme.id]),
        ("?owner=root", vec![]),
        ("?search=MM", vec![gamma.id]),
        ("?search=a&sort=id", vec![w.acme.id, w.beta.id, gamma.id]),
        (
            "?filter=%7B%22in%22%3A%5B%7B%22var%22%3A%22slug%22%7D%2C%5B%22acme%22%2C%22gamma%22%5D%5D%7D",
            vec![gamma.id, w.acme.id],
        ),
    ];
    for (query, want) in cases {
        let r = w.orgs(&w.root, query).await;
        assert_eq!(ids(r.expect(200)), want, "{query}");
    }
    let r = w.orgs(&w.root, "?page_size=2").await;
    let body = r.expect(200);
    assert_eq!(
        (body["count"].as_u64(), ids(body)),
        (Some(3), vec![gamma.id, w.beta.id])
    );
    assert_eq!(
        body["next"],
        "http://testserver/api/organizations?page=2&page_size=2"
    );
    let r = w.orgs(&w.root, "?page_size=2&page=2").await;
    let body = r.expect(200);
    assert_eq!(ids(body), [w.acme.id]);
    assert_eq!(
        body["previous"],
        "http://testserver/api/organizations?page_size=2"
    );
    assert_eq!(
        w.orgs(&w.root, "?page=3&page_size=2").await.expect(404),
        &json!({"detail": "Invalid page."})
    );
    let bad = "?filter=%7B%22var%22%3A%22email%22%7D";
    assert_eq!(
        w.orgs(&w.root, bad).await.expect(400),
        &json!(["filter: term 'email' is not supported"])
    );
    assert_eq!(
        w.orgs("1.nope", "").await.expect(401),
        &json!({"detail": "Invalid token."})
    );
}

// ---------------------------------------------------------------- memberships

#[tokio::test]
async fn memberships_have_cvats_shape() {
    let w = World::new().await;
    let r = w.members(&w.root, "?org=acme").await;
    let body = r.expect(200);
    assert_eq!(r.header("content-type"), Some("application/vnd.cvat+json"));
    assert_eq!(body["count"], 3);
    assert_eq!(
        ids(body),
        [
            mid(&w.acme, &w.gina),
            mid(&w.acme, &w.dave),
            mid(&w.acme, &w.carol)
        ]
    );
    let carol = &body["results"][2];
    assert_eq!(
        keys_of(carol),
        [
            "id",
            "user",
            "organization",
            "is_active",
            "joined_date",
            "role",
            "invitation"
        ]
    );
    assert_eq!(
        carol["user"],
        json!({"url": format!("http://testserver/api/users/{}", w.carol.id), "id": w.carol.id,
               "username": "carol", "first_name": "First carol", "last_name": "Tester"})
    );
    assert_eq!(carol["organization"], w.acme.id);
    assert_eq!(
        (&carol["role"], &carol["is_active"]),
        (&json!("worker"), &json!(true))
    );
    assert_eq!(carol["invitation"], Value::Null);
    assert!(carol["joined_date"].as_str().unwrap().ends_with('Z'));
    assert_eq!(body["results"][0]["is_active"], false);
    assert_eq!(
        r.dynamodb_calls, 3,
        "auth with the org, the org's member items, the page's users by key"
    );

    // One by id: the caller, the user and the org in one read, the member
    // item (for its date) in a second.
    let r = w.member(&w.root, mid(&w.acme, &w.carol)).await;
    assert_eq!(r.expect(200), carol);
    assert_eq!(r.dynamodb_calls, 2);

    // The same rows through every way of naming the org.
    let by_header = w
        .members_req(
            get("/api/memberships")
                .token(&w.root)
                .header("x-organization", "acme"),
        )
        .await;
    assert_eq!(by_header.expect(200), body);
    let by_id = w.members(&w.root, &format!("?org_id={}", w.acme.id)).await;
    assert_eq!(by_id.expect(200), body);
    let none = w.members(&w.root, "?org=").await;
    assert_eq!(
        none.expect(200)["count"],
        0,
        "org= names memberships outside any org"
    );
    let conflict = w
        .members_req(
            get("/api/memberships?org_id=1")
                .token(&w.root)
                .header("x-organization", "acme"),
        )
        .await;
    assert!(conflict.expect(400)[0]
        .as_str()
        .unwrap()
        .starts_with("You cannot specify \"org_id\""));
    let missing = w.members(&w.root, "?org=nosuch").await;
    assert_eq!(
        missing.expect(404),
        &json!({"detail": "nosuch organization does not exist."})
    );
}

#[tokio::test]
async fn who_sees_which_memberships() {
    let w = World::new().await;
    let acme = |users: &[&User]| users.iter().map(|u| mid(&w.acme, u)).collect::<Vec<u64>>();
    // In an org: a worker sees its active memberships, its owner all of them.
    let r = w.members(&w.carol_token, "?org=acme").await;
    assert_eq!(ids(r.expect(200)), acme(&[&w.dave, &w.carol]));
    let r = w.members(&w.dave_token, "?org=acme").await;
    assert_eq!(ids(r.expect(200)), acme(&[&w.gina, &w.dave, &w.carol]));
    // Without an org context: your own active memberships (CVAT's sandbox),
    // read with one batch read of your member items.
    let r = w.members(&w.carol_token, "").await;
    assert_eq!(
        ids(r.expect(200)),
        [mid(&w.beta, &w.carol), mid(&w.acme, &w.carol)]
    );
    assert_eq!(r.dynamodb_calls, 2);
    let r = w.members(&w.gina_token, "").await;
    assert_eq!(r.expect(200)["count"], 0);
    // An admin without an org sees every membership: one query per org.
    let r = w.members(&w.root, "").await;
    assert_eq!(r.expect(200)["count"], 5);
    assert_eq!(
        r.dynamodb_calls, 5,
        "auth, the group records, two orgs, the users"
    );

    // By id: a worker sees active memberships of its orgs; the owner also
    // the inactive one; nobody sees a membership of an org they are not in.
    let cases: Vec<(&str, u64, u16)> = vec![
        (&w.carol_token, mid(&w.acme, &w.dave), 200),
        (&w.carol_token, mid(&w.acme, &w.gina), 404),
        (&w.dave_token, mid(&w.acme, &w.gina), 200),
        (&w.dave_token, mid(&w.beta, &w.erin), 404),
        (&w.gina_token, mid(&w.acme, &w.gina), 404),
        (&w.frank_token, mid(&w.acme, &w.carol), 404),
        (&w.root, mid(&w.beta, &w.erin), 200),
    ];
    for (token, id, status) in cases {
        let r = w.member(token, id).await;
        assert_eq!(r.status.as_u16(), status, "{id}: {}", r.raw);
    }
}

#[tokio::test]
async fn an_outsider_learns_nothing_by_replaying_ids_and_slugs() {
    let w = World::new().await;
    let frank = &w.frank_token;
    let missing_org = w.beta.id + 50;

    // Orgs by id: acme and beta exist, the others do not; frank is in none.
    let first = observed(&w.org(frank, w.acme.id).await);
    assert_eq!(
        (first.0, first.1.as_str()),
        (404, r#"{"detail":"Not found."}"#)
    );
    for id in [
        w.beta.id.to_string(),
        missing_org.to_string(),
        "0".into(),
        "x".into(),
    ] {
        assert_eq!(observed(&w.org(frank, &id).await), first, "org {id}");
    }
    // A member of acme asking for beta sees what it sees for an org nobody has.
    let carol_beta = observed(&w.org(&w.dave_token, w.beta.id).await);
    assert_eq!(
        carol_beta,
        observed(&w.org(&w.dave_token, missing_org).await)
    );

    // Memberships by id: real ones (active and not), users that exist in no
    // org, orgs that exist with users not in them, ids nobody could hold.
    let replays: Vec<u64> = vec![
        mid(&w.acme, &w.carol),
        mid(&w.acme, &w.gina),
        mid(&w.beta, &w.erin),
        w.acme.id * 10_000_000_000 + 999,
        missing_org * 10_000_000_000 + w.carol.id,
        7,
        u64::MAX,
    ];
    let first = observed(&w.member(frank, replays[0]).await);
    assert_eq!(first.0, 404);
    for id in &replays {
        assert_eq!(
            observed(&w.member(frank, id).await),
            first,
            "membership {id}"
        );
    }
    // dave (acme's owner) replaying beta's ids: the same as ids nobody holds.
    let first = observed(&w.member(&w.dave_token, mid(&w.beta, &w.erin)).await);
    for id in [
        mid(&w.beta, &w.carol),
        w.beta.id * 10_000_000_000 + 999,
        missing_org * 10_000_000_000 + 1,
    ] {
        assert_eq!(
            observed(&w.member(&w.dave_token, id).await),
            first,
            "membership {id}"
        );
    }

    // Org contexts of a list: an org you are not in answers as one that does
    // not exist, whatever else the request asks (a page, a filter).
    for query in [
        "",
        "&page=9",
        "&role=owner",
        "&filter=%7B%22var%22%3A%22id%22%7D",
    ] {
        let slug_reply =
            |slug: &str| format!(r#"{{"detail":"{slug} organization does not exist."}}"#);
        let real = w.members(frank, &format!("?org=beta{query}")).await;
        let fake = w.members(frank, &format!("?org=zeta{query}")).await;
        assert_eq!((real.status.as_u16(), fake.status.as_u16()), (404, 404));
        assert_eq!(
            (real.raw.clone(), fake.raw.clone()),
            (slug_reply("beta"), slug_reply("zeta"))
        );
        assert_eq!(real.dynamodb_calls, fake.dynamodb_calls, "{query}");
        let real = observed(
            &w.members(frank, &format!("?org_id={}{query}", w.beta.id))
                .await,
        );
        let fake = observed(
            &w.members(frank, &format!("?org_id={missing_org}{query}"))
                .await,
        );
        assert_eq!(
            real.1.replace(&w.beta.id.to_string(), "N"),
            fake.1.replace(&missing_org.to_string(), "N")
        );
        assert_eq!(
            (real.0, real.2, real.3),
            (fake.0, fake.2, fake.3),
            "{query}"
        );
    }
    // The inactive member of acme is no member yet: acme is as good as absent.
    let gina = w.members(&w.gina_token, "?org=acme").await;
    assert_eq!(
        gina.expect(404),
        &json!({"detail": "acme organization does not exist."})
    );
}

#[tokio::test]
async fn membership_lists_filter_sort_search_and_page_like_cvat() {
    let w = World::new().await;
    let acme = |users: &[&User]| users.iter().map(|u| mid(&w.acme, u)).collect::<Vec<u64>>();
    let cases: Vec<(&str, Vec<u64>)> = vec![
        ("&sort=id", acme(&[&w.carol, &w.dave, &w.gina])),
        ("&sort=user", acme(&[&w.carol, &w.dave, &w.gina])),
        ("&sort=-role", acme(&[&w.carol, &w.dave, &w.gina])),
        ("&user=dave", acme(&[&w.dave])),
        ("&user=DAVE", vec![]),
        ("&role=maintainer", acme(&[&w.gina])),
        ("&role=nosuch", vec![]),
        ("&search=AV", acme(&[&w.dave])),
        (
            "&filter=%7B%22%3D%3D%22%3A%5B%7B%22var%22%3A%22role%22%7D%2C%22owner%22%5D%7D",
            acme(&[&w.dave]),
        ),
    ];
    for (query, want) in cases {
        let r = w.members(&w.root, &format!("?org=acme{query}")).await;
        assert_eq!(ids(r.expect(200)), want, "{query}");
    }
    let r = w.members(&w.root, "?org=acme&page_size=2&page=2").await;
    let body = r.expect(200);
    assert_eq!(
        (body["count"].as_u64(), ids(body)),
        (Some(3), acme(&[&w.carol]))
    );
    assert_eq!(
        body["previous"],
        "http://testserver/api/memberships?org=acme&page_size=2"
    );
    assert_eq!(body["next"], Value::Null);
    assert_eq!(
        w.members(&w.root, "?org=acme&page=last&page_size=2")
            .await
            .expect(200)["results"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    assert_eq!(
        w.members(&w.root, "?org=acme&page=0").await.expect(404),
        &json!({"detail": "Invalid page."})
    );
    let bad = "?org=acme&filter=%7B%22var%22%3A%22username%22%7D";
    assert_eq!(
        w.members(&w.root, bad).await.expect(400),
        &json!(["filter: term 'username' is not supported"])
    );
}

#[tokio::test]
async fn an_org_list_costs_the_same_whatever_the_directory_holds() {
    let w = World::new().await;
    let measure = |query: &'static str| {
        let w = &w;
        async move {
            let r = w.members(&w.root, query).await;
            r.expect(200);
            (r.dynamodb_calls, r.capacity_units)
        }
    };
    let small = measure("?org=acme").await;
    // 120 more users in no org, and 120 in beta: acme's list reads neither.
    for i in 0..240 {
        let u = w.t.user(&format!("extra{i:03}")).await;
        if i % 2 == 0 {
            join(&w.t, &w.beta, &u, "worker").await;
        }
    }
    let large = measure("?org=acme").await;
    assert_eq!(small, large, "(calls, capacity) grew with the directory");
    assert_eq!(large.0, 3);

    // beta's 122 members: a page of 10 reads the member items and its 10
    // users; a filter on the username reads every member's user.
    let page = w.members(&w.root, "?org=beta&page_size=10").await;
    assert_eq!(page.expect(200)["count"], 122);
    assert_eq!(page.dynamodb_calls, 3);
    let by_user = w.members(&w.root, "?org=beta&user=erin").await;
    assert_eq!(ids(by_user.expect(200)), [mid(&w.beta, &w.erin)]);
    assert_eq!(
        by_user.dynamodb_calls, 4,
        "auth, member items, 122 users in two batch reads"
    );
    // An org list of a member is two calls, whatever the number of orgs.
    for i in 0..20 {
        w.t.store
            .groups()
            .create_org(&format!("org{i}"), &format!("Org {i}"))
            .await
            .unwrap();
    }
    let r = w.orgs(&w.carol_token, "").await;
    assert_eq!(
        (r.expect(200)["count"].as_u64(), r.dynamodb_calls),
        (Some(2), 2)
    );
}

#[tokio::test]
async fn older_member_items_still_read_and_a_new_role_keeps_the_joined_date() {
    let w = World::new().await;
    let id = mid(&w.acme, &w.carol);
    let joined = w.member(&w.root, id).await.expect(200)["joined_date"].clone();
    assert!(joined.is_string());
    // `usersctl org add-member` again, with another role: the same membership.
    join(&w.t, &w.acme, &w.carol, "supervisor").await;
    let again = w.member(&w.root, id).await;
    let again = again.expect(200);
    assert_eq!(
        (&again["role"], &again["joined_date"]),
        (&json!("supervisor"), &joined)
    );

    // A member item from before the date was kept: the date is null.
    let (pk, sk) = table::membership("acme", w.dave.id);
    w.t.edit_item((pk, &sk), "REMOVE joined_date", &[], &[])
        .await;
    let r = w.member(&w.carol_token, mid(&w.acme, &w.dave)).await;
    assert_eq!(r.expect(200)["joined_date"], Value::Null);
    let r = w.members(&w.carol_token, "?org=acme&user=dave").await;
    assert_eq!(r.expect(200)["results"][0]["joined_date"], Value::Null);
    // A member item lost altogether: the user's own copy answers.
    let (pk, sk) = table::membership("acme", w.dave.id);
    w.t.store
        .client()
        .delete_item()
        .table_name(w.t.store.table())
        .set_key(Some(directory::store::table::key(pk, sk)))
        .send()
        .await
        .unwrap();
    let r = w.member(&w.carol_token, mid(&w.acme, &w.dave)).await;
    let body = r.expect(200);
    assert_eq!(
        (&body["role"], &body["joined_date"]),
        (&json!("owner"), &Value::Null)
    );
}

#[tokio::test]
async fn a_group_added_through_scim_shows_its_members_with_the_default_role() {
    use directory::scim::groups;
    let w = World::new().await;
    let body = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                      "displayName": "Engineering", "members": [{"value": w.frank.id.to_string()}]});
    let created =
        w.t.call(
            groups::create,
            directory_tests::scim(Method::POST, "/api/v1/scim/Groups", &body)
                .header("authorization", &format!("Bearer {}", w.root))
                .build(),
        )
        .await;
    let group_id: u64 = created.expect(201)["id"].as_str().unwrap().parse().unwrap();
    let r = w
        .members(&w.frank_token, &format!("?org_id={group_id}"))
        .await;
    let body = r.expect(200);
    assert_eq!(body["count"], 1);
    assert_eq!(body["results"][0]["role"], "worker");
    assert!(body["results"][0]["joined_date"].is_string());
    let r = w.org(&w.frank_token, group_id).await;
    assert_eq!(r.expect(200)["name"], "Engineering");
}

#[tokio::test]
async fn other_methods_are_405_and_read_nothing_more() {
    let w = World::new().await;
    for (method, path) in [
        (Method::POST, "/api/organizations".to_string()),
        (Method::PATCH, format!("/api/organizations/{}", w.acme.id)),
        (
            Method::DELETE,
            format!("/api/memberships/{}", mid(&w.acme, &w.carol)),
        ),
        (Method::PUT, "/api/memberships".to_string()),
    ] {
        let r =
            w.t.call(
                fallback,
                Req::new(method.clone(), &path).token(&w.root).build(),
            )
            .await;
        assert_eq!(
            r.expect(405),
            &json!({"detail": format!("Method \"{method}\" not allowed.")}),
            "{method} {path}"
        );
        assert_eq!(r.header("allow"), Some("GET"));
    }
}
