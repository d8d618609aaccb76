//! `make bench`: DynamoDB round trips and consumed capacity per operation, on
//! a real DynamoDB Local, at two table sizes (what scales with the table and
//! what does not). Prints a Markdown table, then how long bulk creates take
//! (what `bulk.maxOperations` is picked from).
use std::time::{Duration, Instant};

use directory::admin_api;
use directory::http::Profile;
use directory::scim;
use directory::scim::bulk::BULK_REQUEST_SCHEMA;
use directory::scim::BULK_MAX_OPERATIONS as MAX_OPERATIONS;
use directory::store::BULK_REQUEST_BUDGET;
use directory_tests::{get, patch, scim as scim_req, Reply, Req, TestTable};
use lambda_http::http::Method;
use serde_json::{json, Value};

struct Row {
    operation: String,
    small: (u32, f64),
    large: (u32, f64),
}

/// A bulk request of `n` user creates, named `{prefix}{i}`.
fn bulk_of_creates(prefix: &str, n: usize) -> Value {
    let ops: Vec<Value> = (0..n)
        .map(|i| {
            json!({"method": "POST", "path": "/Users", "bulkId": format!("b{i}"),
                   "data": {"userName": format!("{prefix}{i}"),
                            "name": {"givenName": "Bulk", "familyName": format!("User {i}")},
                            "emails": [{"value": format!("{prefix}{i}@example.org"), "type": "work"}]}})
        })
        .collect();
    json!({"schemas": [BULK_REQUEST_SCHEMA], "Operations": ops})
}

/// Runs a bulk of creates in `rfc` on `t`; every one must be created.
/// Returns the reply and how long it took.
async fn time_bulk(t: &TestTable, bearer: &str, body: &Value) -> (Reply, Duration) {
    let started = Instant::now();
    let reply = t
        .call(
            scim::bulk::post,
            scim_req(Method::POST, "/api/v1/scim/Bulk", body)
                .header("authorization", bearer)
                .build(),
        )
        .await;
    let took = started.elapsed();
    let ops = reply.body["Operations"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let created = ops.iter().filter(|o| o["status"] == "201").count();
    assert_eq!(
        created,
        body["Operations"].as_array().unwrap().len(),
        "{}",
        reply.raw
    );
    (reply, took)
}

/// Runs every measured request against a table of `users` users; returns
/// (name, calls, capacity), and how long the bulk of 100 creates took.
async fn measure(users: usize) -> (Vec<(String, u32, f64)>, Duration) {
    let t = TestTable::with_profile(Profile::Odm).await;
    let admin = t.admin("bench-admin").await;
    let admin = t.with_password(&admin, "bench-password").await;
    let token = t.token(&admin).await;
    let mut ids = Vec::new();
    for i in 0..users {
        let mut u = t.user(&format!("user{i:05}")).await;
        if i == 0 {
            let mut with_ext = u.clone();
            with_ext.external_id = Some("ext-0".into());
            u = t.store.users().update(&u, with_ext).await.unwrap();
        }
        ids.push(u.id);
    }
    let member = t.fresh(ids[1]).await;
    let member_token = t.token(&member).await;
    let target = ids[users / 2];
    let bearer = format!("Bearer {token}");
    let s = |method: Method, path: &str| Req::new(method, path).header("authorization", &bearer);
    let mut out = Vec::new();
    let mut record = |name: &str, r: Reply| {
        assert!(r.status.is_success(), "{name}: {} {}", r.status, r.raw);
        out.push((name.to_string(), r.dynamodb_calls, r.capacity_units));
    };

    record(
        "admin GET /api/users/self (token)",
        t.call(
            admin_api::retrieve_self,
            get("/api/users/self").token(&token).build(),
        )
        .await,
    );
    record(
        "admin GET /api/users/self (Basic, first)",
        t.call(
            admin_api::retrieve_self,
            get("/api/users/self")
                .basic("bench-admin", "bench-password")
                .build(),
        )
        .await,
    );
    record(
        "admin GET /api/users/self (Basic, cached)",
        t.call(
            admin_api::retrieve_self,
            get("/api/users/self")
                .basic("bench-admin", "bench-password")
                .build(),
        )
        .await,
    );
    record(
        "admin GET /api/users/{id}",
        t.call(
            admin_api::retrieve,
            get(&format!("/api/users/{target}")).token(&token).build(),
        )
        .await,
    );
    record(
        "admin GET /api/users (non-admin)",
        t.call(
            admin_api::list,
            get("/api/users").token(&member_token).build(),
        )
        .await,
    );
    record(
        "admin GET /api/users (page 1)",
        t.call(admin_api::list, get("/api/users").token(&token).build())
            .await,
    );
    record(
        "admin GET /api/users (page 3)",
        t.call(
            admin_api::list,
            get("/api/users?page=3").token(&token).build(),
        )
        .await,
    );
    record(
        "admin GET /api/users?search=user0001",
        t.call(
            admin_api::list,
            get("/api/users?search=user0001").token(&token).build(),
        )
        .await,
    );
    record(
        "admin GET /api/users?sort=username",
        t.call(
            admin_api::list,
            get("/api/users?sort=username").token(&token).build(),
        )
        .await,
    );
    record(
        "admin PATCH /api/users/{id}",
        t.call(
            admin_api::partial_update,
            patch(
                &format!("/api/users/{target}"),
                &json!({"first_name": "Patched"}),
            )
            .token(&token)
            .build(),
        )
        .await,
    );

    let enc = |f: &str| f.replace(' ', "%20").replace('"', "%22");
    let base = "/api/v1/scim/Users";
    record(
        "SCIM GET /Users/{id}",
        t.call(
            scim::get,
            s(Method::GET, &format!("{base}/{target}")).build(),
        )
        .await,
    );
    for filter in [
        "userName eq \"user00003\"".to_string(),
        "emails.value eq \"user00003@example.org\"".to_string(),
        "externalId eq \"ext-0\"".to_string(),
        format!("id eq \"{target}\""),
        "name.familyName eq \"Tester\"".to_string(),
    ] {
        let r = t
            .call(
                scim::list,
                s(
                    Method::GET,
                    &format!("{base}?count=10&filter={}", enc(&filter)),
                )
                .build(),
            )
            .await;
        record(&format!("SCIM GET /Users?filter={filter}"), r);
    }
    record(
        "SCIM GET /Users (count=100)",
        t.call(
            scim::list,
            s(Method::GET, &format!("{base}?count=100")).build(),
        )
        .await,
    );
    let created = t
        .call(
            scim::create,
            scim_req(
                Method::POST,
                base,
                &json!({"userName": "bench-new", "emails": [{"value": "new@example.org"}]}),
            )
            .header("authorization", &bearer)
            .build(),
        )
        .await;
    let new_id = created.body["id"].as_str().unwrap().to_string();
    record("SCIM POST /Users", created);
    let ops = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "replace", "path": "displayName", "value": "Bench"}]});
    record(
        "SCIM PATCH /Users/{id}",
        t.call(
            scim::patch,
            scim_req(Method::PATCH, &format!("{base}/{new_id}"), &ops)
                .header("authorization", &bearer)
                .build(),
        )
        .await,
    );
    record(
        "SCIM PUT /Users/{id}",
        t.call(
            scim::replace,
            scim_req(
                Method::PUT,
                &format!("{base}/{new_id}"),
                &json!({"userName": "bench-new", "displayName": "Put"}),
            )
            .header("authorization", &bearer)
            .build(),
        )
        .await,
    );
    record(
        "SCIM DELETE /Users/{id} (odm: deactivate)",
        t.call(
            scim::delete,
            s(Method::DELETE, &format!("{base}/{new_id}")).build(),
        )
        .await,
    );
    record(
        "admin DELETE /api/users/{id}",
        t.call(
            admin_api::destroy,
            Req::new(Method::DELETE, &format!("/api/users/{new_id}"))
                .token(&token)
                .build(),
        )
        .await,
    );

    // The rfc profile: a user with every attribute of RFC 7643 §4.1 and the
    // enterprise extension (the same table, handlers in `rfc`).
    let rfc = TestTable {
        store: t.store.clone(),
        profile: Profile::Rfc,
    };
    let full = |manager: u64| {
        json!({
            "userName": "bench-full",
            "name": {"givenName": "Isaac", "familyName": "Brock", "middleName": "K",
                     "honorificPrefix": "Mr.", "honorificSuffix": "III", "formatted": "Mr. Isaac K Brock III"},
            "displayName": "Isaac Brock", "nickName": "Ike", "profileUrl": "https://example.com/isaac",
            "title": "Tour Guide", "userType": "Employee", "preferredLanguage": "en-US",
            "locale": "en-US", "timezone": "America/Los_Angeles",
            "emails": [{"value": "full@example.org", "type": "work", "primary": true},
                       {"value": "full@home.example", "type": "home"}],
            "phoneNumbers": [{"value": "+1 425 555 0109", "type": "work"},
                             {"value": "+1 425 555 0110", "type": "mobile"},
                             {"value": "+1 425 555 0111", "type": "fax"}],
            "ims": [{"value": "isaac", "type": "xmpp"}],
            "photos": [{"value": "https://photos.example.com/isaac.jpg", "type": "photo"}],
            "addresses": [{"type": "work", "formatted": "205 108th Ave NE, Bellevue WA 98004",
                           "streetAddress": "205 108th Ave NE", "locality": "Bellevue",
                           "region": "WA", "postalCode": "98004", "country": "US", "primary": true}],
            "entitlements": [{"value": "vpn"}], "roles": [{"value": "guide"}],
            "x509Certificates": [{"value": "MIIDQzCCAqygAwIBAgICEAAwDQYJKoZIhvcNAQEFBQAwTjELMAkGA1UEBhMCVVMx"}],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
                "employeeNumber": "701984", "costCenter": "4130", "organization": "Universal Studios",
                "division": "Theme Park", "department": "Tour Operations",
                "manager": {"value": manager.to_string()}}
        })
    };
    let created = rfc
        .call(
            scim::create,
            scim_req(Method::POST, base, &full(target))
                .header("authorization", &bearer)
                .build(),
        )
        .await;
    let full_id = created.body["id"].as_str().unwrap().to_string();
    record("SCIM rfc POST /Users (every attribute)", created);
    record(
        "SCIM rfc GET /Users/{id} (every attribute)",
        rfc.call(
            scim::get,
            s(Method::GET, &format!("{base}/{full_id}")).build(),
        )
        .await,
    );
    let ops = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [
        {"op": "Replace", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "+1 425 555 0199"},
        {"op": "Replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", "value": "Ops"}]});
    record(
        "SCIM rfc PATCH /Users/{id} (every attribute; value path, extension)",
        rfc.call(
            scim::patch,
            scim_req(Method::PATCH, &format!("{base}/{full_id}"), &ops)
                .header("authorization", &bearer)
                .build(),
        )
        .await,
    );
    let ops = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [
        {"op": "Add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", "value": ids[2].to_string()}]});
    record(
        "SCIM rfc PATCH /Users/{id} (a new manager)",
        rfc.call(
            scim::patch,
            scim_req(Method::PATCH, &format!("{base}/{full_id}"), &ops)
                .header("authorization", &bearer)
                .build(),
        )
        .await,
    );
    let mut put = full(ids[2]);
    put["title"] = json!("Head Guide");
    record(
        "SCIM rfc PUT /Users/{id} (every attribute)",
        rfc.call(
            scim::replace,
            scim_req(Method::PUT, &format!("{base}/{full_id}"), &put)
                .header("authorization", &bearer)
                .build(),
        )
        .await,
    );
    record(
        "SCIM rfc GET /Me",
        rfc.call(scim::me::get, s(Method::GET, "/api/v1/scim/Me").build())
            .await,
    );
    let (bulk, took) = time_bulk(&rfc, &bearer, &bulk_of_creates("bulk-", 100)).await;
    record("SCIM rfc POST /Bulk (100 creates)", bulk);
    (out, took)
}

/// A bulk of `maxOperations` creates on a fresh table: how long it takes
/// against the bulk's budget.
async fn bulk_at_the_limit() -> Duration {
    let t = TestTable::with_profile(Profile::Rfc).await;
    let admin = t.admin("bench-admin").await;
    let bearer = format!("Bearer {}", t.token(&admin).await);
    time_bulk(&t, &bearer, &bulk_of_creates("limit-", MAX_OPERATIONS))
        .await
        .1
}

#[tokio::main]
async fn main() {
    let (small_n, large_n) = (20, 200);
    let (small, small_bulk) = measure(small_n).await;
    let (large, large_bulk) = measure(large_n).await;
    let at_limit = bulk_at_the_limit().await;
    let rows: Vec<Row> = small
        .into_iter()
        .zip(large)
        .map(|((name, c1, u1), (_, c2, u2))| Row {
            operation: name,
            small: (c1, u1),
            large: (c2, u2),
        })
        .collect();
    println!("| operation | calls ({small_n} users) | capacity units | calls ({large_n} users) | capacity units |");
    println!("|---|---|---|---|---|");
    for r in rows {
        println!(
            "| {} | {} | {:.1} | {} | {:.1} |",
            r.operation, r.small.0, r.small.1, r.large.0, r.large.1
        );
    }
    let per_second = |n: usize, d: Duration| n as f64 / d.as_secs_f64();
    println!();
    println!(
        "A bulk of 100 creates: {:.0} ms ({:.0} creates/s) at {small_n} users, {:.0} ms ({:.0}/s) \
         at {large_n}.",
        small_bulk.as_secs_f64() * 1000.0,
        per_second(100, small_bulk),
        large_bulk.as_secs_f64() * 1000.0,
        per_second(100, large_bulk)
    );
    println!(
        "A bulk of maxOperations ({MAX_OPERATIONS}) creates: {:.1} s ({:.0} creates/s), {:.0} % of \
         its {} s budget.",
        at_limit.as_secs_f64(),
        per_second(MAX_OPERATIONS, at_limit),
        100.0 * at_limit.as_secs_f64() / BULK_REQUEST_BUDGET.as_secs_f64(),
        BULK_REQUEST_BUDGET.as_secs()
    );
}
