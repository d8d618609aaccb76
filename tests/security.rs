//! Attacks on authentication, replayed: each test sends what an attacker
//! would and checks that it gets exactly what the rules allow, against a real
//! DynamoDB Local.
//!
//! Tests that check passwords hold [`SERIAL`]: they count Argon2 runs on a
//! process-wide counter, which tests running in parallel would disturb.
use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use directory::admin_api::retrieve_self;
use directory::auth;
use directory::domain::user::User;
use directory::http::Profile;
use directory::scim;
use directory::store::{table, Budget, Store};
use directory_tests::faults::Fault;
use directory_tests::{get, Reply, Req, TestTable};
use lambda_http::http::Method;
use serde_json::{json, Value};

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const SELF: &str = "/api/users/self";
const SCIM_USERS: &str = "/api/v1/scim/Users";
const SCIM_ERROR: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
const INVALID_PASSWORD: &str = "Invalid username/password.";

/// `GET /api/users/self` with Basic credentials.
async fn basic_self(t: &TestTable, username: &str, password: &str) -> Reply {
    t.call(retrieve_self, get(SELF).basic(username, password).build())
        .await
}

/// The reply and how many Argon2 verifications answering it took.
async fn counted(t: &TestTable, username: &str, password: &str) -> (Reply, u64) {
    let before = auth::password_verifications();
    let r = basic_self(t, username, password).await;
    (r, auth::password_verifications() - before)
}

/// A user as SCIM provisions them: no password.
async fn passwordless(t: &TestTable, name: &str) -> User {
    t.user(name).await
}

async fn with_password(t: &TestTable, name: &str, password: &str) -> User {
    let u = t.user(name).await;
    t.with_password(&u, password).await
}

/// The item under the username's claim key, as stored.
async fn claim_item(t: &TestTable, username: &str) -> Option<HashMap<String, AttributeValue>> {
    let (pk, sk) = table::username_claim(username);
    t.store
        .client()
        .get_item()
        .table_name(t.store.table())
        .set_key(Some(table::key(pk, sk)))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item()
        .cloned()
}

/// Overwrites the failure attributes of a claim item, as if the failures
/// had happened `ago` seconds earlier (what time passing would do).
async fn set_failures(t: &TestTable, username: &str, failures: u64, ago: i64) {
    t.edit_item(
        table::username_claim(username),
        "SET login_failures = :f, login_failed_at = :t",
        &[],
        &[(":f", table::n(failures)), (":t", table::n(now() - ago))],
    )
    .await;
}

fn now() -> i64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    since.as_secs() as i64
}

/// The same table seen from another Lambda container: a store of its own
/// (the per-container password cache is process-wide, and is bypassed by
/// the lock anyway).
fn other_container(t: &TestTable) -> TestTable {
    TestTable {
        store: Store::new(t.store.client().clone(), t.store.table()),
        profile: t.profile,
    }
}

/// The seconds of `Retry-After`, checked to be within `range`.
fn retry_after(r: &Reply, range: std::ops::RangeInclusive<u64>) -> u64 {
    let secs: u64 = r
        .header("retry-after")
        .unwrap_or_else(|| panic!("no Retry-After: {}", r.raw))
        .parse()
        .unwrap();
    assert!(range.contains(&secs), "Retry-After {secs} not in {range:?}");
    secs
}

fn throttled(secs: u64) -> Value {
    json!({ "detail": format!("Request was throttled. Expected available in {secs} seconds.") })
}

#[tokio::test]
async fn a_token_no_longer_listed_on_its_user_is_refused() {
    // A revocation that took the hash off the user but left the token item
    // behind (a partial write, a hand edit, a legacy revocation path).
    let t = TestTable::new().await;
    let bob = t.user("bob").await;
    let token = t.token(&bob).await;
    t.edit_item(
        table::user(bob.id),
        "SET token_hashes = :none",
        &[],
        &[(":none", AttributeValue::L(vec![]))],
    )
    .await;
    assert!(!t
        .items_with_prefix(&table::token(&auth::hash_token(&token)).0)
        .await
        .is_empty());

    // The old code only looked at the token item: 200 with bob.
    let r = t.call(retrieve_self, get(SELF).token(&token).build()).await;
    assert_eq!(r.expect(401), &json!({"detail": "Invalid token."}));
    let r = t
        .call(
            scim::list,
            Req::new(Method::GET, SCIM_USERS)
                .header("authorization", &format!("Bearer {token}"))
                .build(),
        )
        .await;
    assert_eq!(r.expect(401)["detail"], "Invalid token.");
}

#[tokio::test]
async fn unknown_names_passwordless_users_and_wrong_passwords_do_the_same_work() {
    let _serial = SERIAL.lock().await;
    let t = TestTable::new().await;
    with_password(&t, "bob", "correct horse").await;
    passwordless(&t, "carol").await;

    // The old code answered an unknown name after one read and no Argon2,
    // a user without a password after two reads and no Argon2, and a wrong
    // password after two reads and one Argon2: a timing oracle on names.
    let mut seen = Vec::new();
    for (name, password) in [
        ("nobody", "guess-1"),
        ("carol", "guess-1"),
        ("bob", "guess-1"),
    ] {
        let (r, verifications) = counted(&t, name, password).await;
        assert_eq!(
            r.expect(401),
            &json!({"detail": INVALID_PASSWORD}),
            "{name}"
        );
        assert_eq!(r.header("www-authenticate"), Some("Token"), "{name}");
        assert_eq!(verifications, 1, "{name}: one Argon2 run");
        seen.push((name, r.dynamodb_calls));
    }
    assert_eq!(
        seen,
        [("nobody", 3), ("carol", 3), ("bob", 3)],
        "claim read, batch read, failure recorded"
    );
}

#[tokio::test]
async fn over_long_usernames_and_tokens_are_401_never_500() {
    let _serial = SERIAL.lock().await;
    let t = TestTable::new().await;
    let long_names = [
        // Over DynamoDB's 2,048-byte partition key: the old code answered 500
        // (a ValidationException from GetItem).
        "a".repeat(3000),
        // One character over the 150 a username can have: the old code read
        // the claim for it.
        "b".repeat(151),
        // 150 characters whose NFKC form is 2,700 (U+FDFA is 18 letters).
        "\u{FDFA}".repeat(150),
    ];
    for name in &long_names {
        let (r, verifications) = counted(&t, name, "guess").await;
        assert_eq!(r.expect(401), &json!({"detail": INVALID_PASSWORD}));
        assert_eq!(
            verifications, 1,
            "the same Argon2 run as any wrong password"
        );
        assert_eq!(r.dynamodb_calls, 0, "no name that long is looked up");
        let r = t
            .call(
                scim::list,
                Req::new(Method::GET, SCIM_USERS)
                    .basic(name, "guess")
                    .build(),
            )
            .await;
        assert_eq!(r.expect(401)["detail"], INVALID_PASSWORD);
    }
    // A token far longer than any this server issues: the old code hashed it
    // and read the table for it.
    let token = format!("1.{}", "x".repeat(5000));
    let r = t.call(retrieve_self, get(SELF).token(&token).build()).await;
    assert_eq!(r.expect(401), &json!({"detail": "Invalid token."}));
    assert_eq!(r.dynamodb_calls, 0);
}

#[tokio::test]
async fn brute_force_locks_known_and_unknown_names_alike() {
    let _serial = SERIAL.lock().await;
    let t = TestTable::new().await;
    let bob = with_password(&t, "bob", "correct horse").await;

    // The old code answered 401 to every guess, forever.
    let mut locked = Vec::new();
    for name in ["bob", "ghost"] {
        for guess in 1..=5 {
            let r = basic_self(&t, name, &format!("guess-{guess}")).await;
            assert_eq!(
                r.expect(401),
                &json!({"detail": INVALID_PASSWORD}),
                "{name} #{guess}"
            );
        }
        let (r, verifications) = counted(&t, name, "guess-6").await;
        let secs = retry_after(&r, 29..=30);
        assert_eq!(r.expect(429), &throttled(secs), "{name}");
        assert_eq!(verifications, 0, "a locked name runs no Argon2");
        assert_eq!(r.dynamodb_calls, 1, "only the claim read");
        let mut headers: Vec<String> = r.headers.keys().map(|k| k.to_string()).collect();
        headers.sort_unstable();
        locked.push((headers, r.header("content-type").map(str::to_string)));
    }
    assert_eq!(
        locked[0], locked[1],
        "a 429 does not tell whether a name exists"
    );

    // The right password during the lock is refused the same way.
    let (r, verifications) = counted(&t, "bob", "correct horse").await;
    let secs = retry_after(&r, 29..=30);
    assert_eq!(r.expect(429), &throttled(secs));
    assert_eq!(verifications, 0);

    // What is stored: bob's claim keeps its owner and gains no TTL; the
    // unknown name has a tracker without an owner that expires in a day.
    let claim = claim_item(&t, "bob").await.unwrap();
    assert_eq!(table::get_n::<u64>(&claim, "user_id"), Some(bob.id));
    assert_eq!(table::get_n::<u64>(&claim, "login_failures"), Some(5));
    let at: i64 = table::get_n(&claim, "login_failed_at").unwrap();
    assert!((now() - at).abs() <= 60, "failed at {at}");
    assert!(
        !claim.contains_key(table::TTL),
        "a user's claim never expires"
    );
    let tracker = claim_item(&t, "ghost").await.unwrap();
    assert!(!tracker.contains_key("user_id"));
    assert_eq!(table::get_n::<u64>(&tracker, "login_failures"), Some(5));
    let expires: i64 = table::get_n(&tracker, table::TTL).unwrap();
    assert!(
        (expires - now() - 86_400).abs() <= 60,
        "expires at {expires}"
    );
}

#[tokio::test]
async fn a_lock_holds_in_another_container_and_over_a_cached_password() {
    let _serial = SERIAL.lock().await;
    let t = TestTable::new().await;
    let bob = with_password(&t, "bob", "correct horse").await;
    // A login that puts the password in this process's cache.
    basic_self(&t, "bob", "correct horse").await.expect(200);
    for guess in 1..=5 {
        basic_self(&t, "bob", &format!("guess-{guess}"))
            .await
            .expect(401);
    }

    // The attacker's next request lands on a fresh container: the count is in
    // DynamoDB, so the lock holds there too (the old code kept no count).
    let other = other_container(&t);
    let (r, verifications) = counted(&other, "bob", "correct horse").await;
    let secs = retry_after(&r, 29..=30);
    assert_eq!(r.expect(429), &throttled(secs));
    assert_eq!(verifications, 0, "neither Argon2 nor the password cache");

    // SCIM answers the lock in its own format.
    let r = other
        .call(
            scim::list,
            Req::new(Method::GET, SCIM_USERS)
                .basic("bob", "correct horse")
                .build(),
        )
        .await;
    let secs = retry_after(&r, 29..=30);
    let body = r.expect(429);
    assert_eq!(body["schemas"], json!([SCIM_ERROR]));
    assert_eq!(body["status"], "429");
    assert_eq!(
        body["detail"],
        format!("Too many failed logins with this username; try again in {secs} seconds.")
    );
    assert_eq!(r.header("content-type"), Some("application/scim+json"));
    // The lock is on bob's claim, which still names him.
    let claim = claim_item(&t, "bob").await.unwrap();
    assert_eq!(table::get_n::<u64>(&claim, "user_id"), Some(bob.id));
}

#[tokio::test]
async fn parallel_guesses_all_count() {
    let _serial = SERIAL.lock().await;
    let t = TestTable::new().await;
    with_password(&t, "bob", "correct horse").await;
    // Eight guesses sent at once all read "no failures"; each must still add
    // one (the old code counted nothing).
    let guesses = (1..=8).map(|i| {
        let t = &t;
        async move { basic_self(t, "bob", &format!("guess-{i}")).await }
    });
    for r in futures::future::join_all(guesses).await {
        r.expect(401);
    }
    let claim = claim_item(&t, "bob").await.unwrap();
    assert_eq!(table::get_n::<u64>(&claim, "login_failures"), Some(8));
    let r = basic_self(&t, "bob", "correct horse").await;
    retry_after(&r, 230..=240);
    r.expect(429);
}

#[tokio::test]
async fn locks_double_after_they_end_and_a_good_login_forgets_failures() {
    let _serial = SERIAL.lock().await;
    let t = TestTable::new().await;
    let bob = with_password(&t, "bob", "correct horse").await;

    // Failures below the threshold, then the right password: they are gone,
    // the claim is what it was.
    for guess in 1..=3 {
        basic_self(&t, "bob", &format!("guess-{guess}"))
            .await
            .expect(401);
    }
    let claim = claim_item(&t, "bob").await.unwrap();
    assert_eq!(table::get_n::<u64>(&claim, "login_failures"), Some(3));
    let r = basic_self(&t, "bob", "correct horse").await;
    assert_eq!(r.expect(200)["id"], bob.id);
    let claim = claim_item(&t, "bob").await.unwrap();
    assert!(!claim.contains_key("login_failures"), "{claim:?}");
    assert!(!claim.contains_key("login_failed_at"), "{claim:?}");
    assert_eq!(table::get_n::<u64>(&claim, "user_id"), Some(bob.id));

    // A lock of 30 s that ended: one more failure locks for 60 s.
    set_failures(&t, "bob", 5, 31).await;
    basic_self(&t, "bob", "guess-6").await.expect(401);
    let r = basic_self(&t, "bob", "correct horse").await;
    retry_after(&r, 59..=60);
    r.expect(429);

    // Failures older than 15 minutes are forgotten: the count starts again.
    set_failures(&t, "bob", 4, 16 * 60).await;
    basic_self(&t, "bob", "guess-7").await.expect(401);
    let claim = claim_item(&t, "bob").await.unwrap();
    assert_eq!(table::get_n::<u64>(&claim, "login_failures"), Some(1));

    // The right password after a lock ended logs in and clears the count.
    set_failures(&t, "bob", 9, 481).await;
    basic_self(&t, "bob", "correct horse").await.expect(200);
    let claim = claim_item(&t, "bob").await.unwrap();
    assert!(!claim.contains_key("login_failures"), "{claim:?}");
}

#[tokio::test]
async fn a_login_without_failures_costs_what_it_did() {
    let _serial = SERIAL.lock().await;
    let t = TestTable::new().await;
    with_password(&t, "bob", "correct horse").await;
    let before = claim_item(&t, "bob").await.unwrap();
    // The claim read and the batch read; the first login of the hour also
    // records last_login. No read or write for failures.
    let first = basic_self(&t, "bob", "correct horse").await;
    first.expect(200);
    assert_eq!(first.dynamodb_calls, 3);
    let second = basic_self(&t, "bob", "correct horse").await;
    second.expect(200);
    assert_eq!(second.dynamodb_calls, 2);
    assert_eq!(claim_item(&t, "bob").await.unwrap(), before);
}

#[tokio::test]
async fn taking_a_tracked_name_replaces_its_tracker() {
    let _serial = SERIAL.lock().await;
    let t = TestTable::new().await;
    for guess in 1..=6 {
        basic_self(&t, "ghost", &format!("guess-{guess}")).await;
    }
    assert!(claim_item(&t, "ghost").await.is_some());
    // The name is free: creating it works, and the new user is not locked.
    let ghost = with_password(&t, "ghost", "correct horse").await;
    let claim = claim_item(&t, "ghost").await.unwrap();
    assert_eq!(table::get_n::<u64>(&claim, "user_id"), Some(ghost.id));
    assert!(!claim.contains_key("login_failures"), "{claim:?}");
    assert!(!claim.contains_key(table::TTL), "{claim:?}");
    let r = basic_self(&t, "ghost", "correct horse").await;
    assert_eq!(r.expect(200)["id"], ghost.id);
}

#[tokio::test]
async fn scim_challenges_with_bearer_only() {
    let _serial = SERIAL.lock().await;
    let t = TestTable::new().await;
    // The old code answered `Bearer realm="scim", Basic realm="scim"`: a
    // Basic challenge makes a browser prompt for credentials and then attach
    // them to any site's requests to this API.
    let r = t
        .call(scim::list, Req::new(Method::GET, SCIM_USERS).build())
        .await;
    assert_eq!(r.expect(401)["status"], "401");
    assert_eq!(r.header("www-authenticate"), Some("Bearer realm=\"scim\""));
    let r = t
        .call(
            scim::list,
            Req::new(Method::GET, SCIM_USERS)
                .basic("nobody", "guess")
                .build(),
        )
        .await;
    r.expect(401);
    assert_eq!(r.header("www-authenticate"), Some("Bearer realm=\"scim\""));
    // The admin API keeps DRF's challenge.
    let r = t.call(retrieve_self, get(SELF).build()).await;
    r.expect(401);
    assert_eq!(r.header("www-authenticate"), Some("Token"));
}

/// Time limits short enough for a test that makes DynamoDB fail on purpose.
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

#[tokio::test]
async fn counting_failures_is_best_effort_and_never_a_500() {
    let _serial = SERIAL.lock().await;
    let (t, faults) = TestTable::faulty(Profile::Odm, tight()).await;
    let bob = with_password(&t, "bob", "correct horse").await;

    // The write that records the failure (the third call) fails for good:
    // the guess is still a plain 401.
    faults.reset();
    faults.fail_call(3, Fault::InternalServerError, u32::MAX);
    let r = basic_self(&t, "bob", "guess").await;
    assert_eq!(r.expect(401), &json!({"detail": INVALID_PASSWORD}));
    assert_eq!(faults.operations(), 3);

    // The claim read fails: DynamoDB is unavailable, said in DRF's format.
    faults.reset();
    faults.fail_call(1, Fault::InternalServerError, u32::MAX);
    let r = basic_self(&t, "bob", "guess").await;
    assert!(r.expect(503)["detail"].is_string());
    assert!(r.header("retry-after").is_some());

    // A recorded failure, then a good login whose clearing write fails: the
    // login still succeeds.
    faults.reset();
    basic_self(&t, "bob", "guess").await.expect(401);
    faults.reset();
    faults.fail_call(3, Fault::InternalServerError, u32::MAX);
    let r = basic_self(&t, "bob", "correct horse").await;
    assert_eq!(r.expect(200)["id"], bob.id);
}

/// Drops `token_read_only` from a user item: a record written before the
/// user item recorded whether each token is read-only.
async fn forget_token_modes(t: &TestTable, user: &User) {
    t.edit_item(table::user(user.id), "REMOVE token_read_only", &[], &[])
        .await;
}

#[tokio::test]
async fn a_token_authenticates_with_its_user_item_alone() {
    let t = TestTable::new().await;
    let bob = t.user("bob").await;
    let token = t.token(&bob).await;
    let r = t.call(retrieve_self, get(SELF).token(&token).build()).await;
    assert_eq!(r.expect(200)["username"], "bob");
    // One strongly consistent read of one small item: 1 capacity unit (the
    // token item used to be read too: 2).
    assert_eq!((r.dynamodb_calls, r.capacity_units), (1, 1.0));
}

#[tokio::test]
async fn tokens_issued_before_the_user_item_recorded_their_mode_keep_it() {
    let t = TestTable::new().await;
    let bob = t.user("bob").await;
    let ro = t
        .token_with(
            &bob,
            directory::store::TokenSpec {
                read_only: true,
                expires_at: None,
            },
        )
        .await;
    let rw = t.token(&bob).await;
    forget_token_modes(&t, &bob).await;
    assert!(t.fresh(bob.id).await.token_read_only.is_empty());

    // Both still authenticate, reading the token item as well.
    let r = t.call(retrieve_self, get(SELF).token(&ro).build()).await;
    r.expect(200);
    assert_eq!(r.dynamodb_calls, 2);
    let path = format!("/api/users/{}", bob.id);
    let change = json!({"first_name": "Changed"});
    // The read-only one is still read-only; the other may write.
    let r = t
        .call(
            directory::admin_api::partial_update,
            directory_tests::patch(&path, &change).token(&ro).build(),
        )
        .await;
    r.expect(403);
    let r = t
        .call(
            directory::admin_api::partial_update,
            directory_tests::patch(&path, &change).token(&rw).build(),
        )
        .await;
    assert_eq!(r.expect(200)["first_name"], "Changed");

    // A legacy token whose item is gone (revoked by an old path) is refused.
    forget_token_modes(&t, &bob).await;
    let (pk, sk) = table::token(&auth::hash_token(&rw));
    t.store
        .client()
        .delete_item()
        .table_name(t.store.table())
        .set_key(Some(table::key(pk, sk)))
        .send()
        .await
        .unwrap();
    let r = t.call(retrieve_self, get(SELF).token(&rw).build()).await;
    assert_eq!(r.expect(401), &json!({"detail": "Invalid token."}));
}

#[tokio::test]
async fn an_expired_token_still_listed_on_its_user_is_refused() {
    let t = TestTable::new().await;
    let bob = t.user("bob").await;
    let token = t
        .token_with(
            &bob,
            directory::store::TokenSpec {
                read_only: false,
                expires_at: Some(
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .unwrap()
                        .as_secs() as i64
                        + 3600,
                ),
            },
        )
        .await;
    t.call(retrieve_self, get(SELF).token(&token).build())
        .await
        .expect(200);
    // The hour passes: the user item still lists the hash (no write since).
    let hash = auth::hash_token(&token);
    t.edit_item(
        table::user(bob.id),
        "SET token_expiry.#h = :past",
        &[("#h", &hash)],
        &[(":past", AttributeValue::N("1000".into()))],
    )
    .await;
    assert!(t.fresh(bob.id).await.token_hashes.contains(&hash));
    let r = t.call(retrieve_self, get(SELF).token(&token).build()).await;
    assert_eq!(r.expect(401), &json!({"detail": "Invalid token."}));
}

#[tokio::test]
async fn each_wrong_password_on_the_root_search_counts_once() {
    let t = TestTable::new().await;
    let admin = t.admin("root-admin").await;
    t.with_password(&admin, "right password").await;
    let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"]});
    for _ in 0..3 {
        let req = directory_tests::scim(Method::POST, "/api/v1/scim/.search", &body)
            .basic("root-admin", "wrong password")
            .build();
        t.call(scim::search, req).await.expect(401);
    }
    let claim = claim_item(&t, "root-admin").await.unwrap();
    assert_eq!(table::get_n::<u64>(&claim, "login_failures"), Some(3));
}
