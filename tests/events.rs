//! Change events from a real DynamoDB Local stream: writes made through both
//! APIs (and the store, as `usersctl` makes them) are read back from the
//! table's stream with the follower `make dev` uses, handed to the
//! publisher in-process, and pushed to receivers started by the test.
//!
//! What is checked is what a receiver sees: verified SETs, their event URIs,
//! their order, the same `jti` on a resend, nothing secret; and what is
//! stored: the deliveries kept for a receiver that is down.
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lambda_events::dynamodb::Event as StreamEvent;
use directory::events::follow::{Follower, Start};
use directory::events::push::Limits;
use directory::events::{bus, publish, record, KeySource, Kind, Publisher, Pusher, SigningKey};
use directory::http::Profile;
use directory::scim::event_uris::{CREATE_FULL, DEACTIVATE, PATCH_FULL};
use directory::scim::{self, groups, GROUP_SCHEMA, USER_SCHEMA};
use directory::store::{DeliveryStatus, Store};
use directory_tests::faults::Fault;
use directory_tests::receiver::{Answer, Receiver};
use directory_tests::{patch, Provisioner, Req, TestTable};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use lambda_http::http::Method;
use serde_json::{json, Value};

const ORIGIN: &str = "https://directory.example";
const TEST_SECRET: &str = "events test secret";
const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// Quick limits, so a receiver that is down costs the tests little.
const LIMITS: Limits = Limits {
    connect_timeout: Duration::from_millis(300),
    attempt_timeout: Duration::from_millis(600),
    attempts: 3,
    first_pause: Duration::from_millis(20),
};

fn publisher(store: &Store) -> Publisher {
    Publisher {
        store: store.clone(),
        keys: Arc::new(KeySource::secret(TEST_SECRET)),
        pusher: Pusher::new(LIMITS),
        bus: None,
        origin: ORIGIN.to_string(),
        budget: Duration::from_secs(6),
    }
}

/// The public key of what [`publisher`] signs with.
fn test_jwks() -> Value {
    SigningKey::derive(TEST_SECRET).unwrap().jwks()
}

async fn follower(t: &TestTable) -> Follower {
    Follower::new(t.store.client(), t.store.table(), Start::Oldest)
        .await
        .expect("the test table has a stream")
}

/// Every batch the stream holds now (polled until it has nothing new), 25
/// records each as the template's mapping makes them.
async fn batches(f: &mut Follower) -> Vec<(Value, StreamEvent)> {
    batches_of(f, 25).await
}

async fn batches_of(f: &mut Follower, size: i32) -> Vec<(Value, StreamEvent)> {
    let mut out = Vec::new();
    let mut quiet = 0;
    while quiet < 2 {
        let got = f.poll(size).await.expect("read the stream");
        if got.is_empty() {
            quiet += 1;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        for batch in got {
            let parsed: StreamEvent = serde_json::from_value(batch.event.clone())
                .expect("a DynamoDBEvent as Lambda sends it");
            out.push((batch.event, parsed));
        }
    }
    out
}

/// Publishes what the stream holds, each batch as Lambda would: again from
/// the first failed record while the function reports one.
async fn publish_all(p: &Publisher, f: &mut Follower) -> Vec<publish::Report> {
    publish_batches(p, batches(f).await).await
}

async fn publish_batches(
    p: &Publisher,
    batches: Vec<(Value, StreamEvent)>,
) -> Vec<publish::Report> {
    let mut reports = Vec::new();
    for (_, batch) in batches {
        reports.push(p.publish(&batch).await.1);
    }
    reports
}

fn entra_active(value: &str) -> Value {
    // What Entra ID sends to deactivate (a capitalised op, a string boolean).
    json!({"schemas": [PATCH_OP], "Operations": [{"op": "Replace", "path": "active", "value": value}]})
}

/// A verified SET: its header and claims, checked against the JWKS.
fn verify(token: &str, jwks: &Value, audience: &str) -> Value {
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.alg, Algorithm::ES256);
    assert_eq!(header.typ.as_deref(), Some("secevent+jwt"));
    let set: JwkSet = serde_json::from_value(jwks.clone()).unwrap();
    let key = DecodingKey::from_jwk(set.find(header.kid.as_deref().unwrap()).unwrap()).unwrap();
    let mut validation = Validation::new(Algorithm::ES256);
    validation.set_audience(&[audience]);
    validation.set_issuer(&[format!("{ORIGIN}/api/v1/scim")]);
    validation.validate_exp = false;
    validation.required_spec_claims = ["iss", "aud", "iat", "jti"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    jsonwebtoken::decode::<Value>(token, &key, &validation)
        .unwrap_or_else(|e| panic!("{e}: {token}"))
        .claims
}

fn uris(claims: &Value) -> Vec<String> {
    claims["events"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect()
}

/// (subject uri, event uris) of each SET a receiver accepted, verified.
fn seen(r: &Receiver, jwks: &Value) -> Vec<(String, Vec<String>)> {
    r.accepted()
        .iter()
        .map(|t| {
            let c = verify(t, jwks, &r.url);
            (c["sub_id"]["uri"].as_str().unwrap().to_string(), uris(&c))
        })
        .collect()
}

fn jtis(r: &Receiver, jwks: &Value) -> Vec<String> {
    r.accepted()
        .iter()
        .map(|t| verify(t, jwks, &r.url)["jti"].as_str().unwrap().to_string())
        .collect()
}

// ---------------------------------------------------------------- images -> events

#[tokio::test]
async fn writes_through_both_apis_become_their_events_and_nothing_else() {
    let p = Provisioner::streaming(Profile::Rfc).await;
    let t = &p.t;
    let mut f = follower(t).await;

    let body = json!({"schemas": [USER_SCHEMA], "userName": "bjensen", "externalId": "E-1",
                      "name": {"givenName": "Barbara", "familyName": "Jensen"},
                      "emails": [{"value": "bjensen@example.com", "type": "work"}]});
    let created = t
        .call(
            scim::create,
            p.req(Method::POST, "/api/v1/scim/Users", Some(&body))
                .build(),
        )
        .await;
    let id = created.expect(201)["id"].as_str().unwrap().to_string();
    let user_path = format!("/api/v1/scim/Users/{id}");
    let uid: u64 = id.parse().unwrap();
    // Credentials: a password and a token (secrets that must not leave).
    let user = t.with_password(&t.fresh(uid).await, "a password").await;
    let _token = t.token(&user).await;
    // A failed Basic login: the failure count on the username's claim.
    let wrong = Req::new(Method::GET, "/api/v1/scim/ServiceProviderConfig")
        .basic("bjensen", "wrong")
        .build();
    assert_eq!(t.call(scim::discover, wrong).await.status, 401);
    // Deactivated and activated again the way Entra ID does it.
    for value in ["False", "True"] {
        let reply = t
            .call(
                scim::patch,
                p.req(Method::PATCH, &user_path, Some(&entra_active(value)))
                    .build(),
            )
            .await;
        reply.expect(200);
    }
    // Renamed through the admin API.
    let admin_patch = patch(&format!("/api/users/{id}"), &json!({"first_name": "Babs"})).build();
    let admin_patch = {
        let mut r = admin_patch;
        r.headers_mut().insert(
            "authorization",
            format!("Token {}", p.token).parse().unwrap(),
        );
        r
    };
    t.call(directory::admin_api::partial_update, admin_patch)
        .await
        .expect(200);
    // A group with bjensen in it, renamed; a role change (usersctl org
    // add-member); bjensen removed; the group deleted.
    let group = json!({"schemas": [GROUP_SCHEMA], "displayName": "Engineering", "externalId": "G-1",
                       "members": [{"value": id}]});
    let g = t
        .call(
            groups::create,
            p.req(Method::POST, "/api/v1/scim/Groups", Some(&group))
                .build(),
        )
        .await;
    let gid = g.expect(201)["id"].as_str().unwrap().to_string();
    let group_path = format!("/api/v1/scim/Groups/{gid}");
    let rename = json!({"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "displayName", "value": "Eng"}]});
    t.call(
        groups::patch,
        p.req(Method::PATCH, &group_path, Some(&rename)).build(),
    )
    .await
    .expect(204);
    let org = t
        .store
        .groups()
        .org("engineering")
        .await
        .unwrap()
        .expect("the group's org");
    t.store
        .groups()
        .add_member(&org, &t.fresh(uid).await, "maintainer")
        .await
        .unwrap();
    let remove = json!({"schemas": [PATCH_OP], "Operations": [{"op": "remove", "path": format!("members[value eq \"{id}\"]")}]});
    t.call(
        groups::patch,
        p.req(Method::PATCH, &group_path, Some(&remove)).build(),
    )
    .await
    .expect(204);
    t.call(
        groups::delete,
        p.req(Method::DELETE, &group_path, None).build(),
    )
    .await
    .expect(204);
    // Deleted (rfc: a real delete).
    let gone = t
        .call(
            scim::delete,
            p.req(Method::DELETE, &user_path, None).build(),
        )
        .await;
    assert_eq!(gone.status, 204, "{}", gone.raw);

    let found = batches(&mut f).await;
    let mut events = Vec::new();
    let mut raw = String::new();
    for (json, batch) in &found {
        raw.push_str(&json.to_string());
        for change in record::changes(batch, ORIGIN) {
            events.extend(
                change
                    .events
                    .into_iter()
                    .map(|e| (change.sequence_number.clone(), e)),
            );
        }
    }
    let user_uri = format!("/Users/{id}");
    let group_uri = format!("/Groups/{gid}");
    let of = |uri: &str, group_record: Option<bool>| -> Vec<Kind> {
        events
            .iter()
            .filter(|(_, e)| e.subject.uri() == uri)
            .filter(|(_, e)| group_record.is_none_or(|g| g == e.member.is_none()))
            .map(|(_, e)| e.kind)
            .collect()
    };
    // The provisioner (the admin the requests authenticate as) was created too.
    let admins: Vec<Kind> = events
        .iter()
        .filter(|(_, e)| e.subject.uri() != user_uri && e.subject.uri() != group_uri)
        .map(|(_, e)| e.kind)
        .collect();
    assert_eq!(admins, [Kind::UserCreated], "{events:#?}");
    // One user's changes, in the order they were made; the password, the
    // token and the failed login are none.
    assert_eq!(
        of(&user_uri, None),
        [
            Kind::UserCreated,
            Kind::UserDeactivated,
            Kind::UserActivated,
            Kind::UserUpdated,
            Kind::UserDeleted
        ]
    );
    assert_eq!(
        of(&group_uri, Some(true)),
        [Kind::GroupCreated, Kind::GroupRenamed, Kind::GroupDeleted]
    );
    assert_eq!(
        of(&group_uri, Some(false)),
        [Kind::MemberAdded, Kind::OrgRoleChanged, Kind::MemberRemoved]
    );
    let updated = events
        .iter()
        .find(|(_, e)| e.kind == Kind::UserUpdated)
        .unwrap();
    assert_eq!(updated.1.changed, ["name.givenName", "displayName"]);
    let renamed = events
        .iter()
        .find(|(_, e)| e.kind == Kind::GroupRenamed)
        .unwrap();
    assert_eq!(renamed.1.changed, ["displayName"]);

    // The images held the secrets; nothing published does.
    let stored = t.store.subscribers().list().await.unwrap();
    assert!(stored.is_empty());
    let hash = user.password_hash.clone().unwrap();
    assert!(t.store.users().get(uid).await.unwrap().is_none(), "deleted");
    assert!(
        raw.contains(&hash),
        "the stream images hold the password hash"
    );
    assert!(raw.contains("login_failures"), "and the failed-login count");
    let key = SigningKey::derive("scan").unwrap();
    for (i, (seq, event)) in events.iter().enumerate() {
        let change = record::Change {
            sequence_number: seq.clone(),
            event_id: format!("e{i}"),
            at: None,
            events: vec![event.clone()],
        };
        let mut published = vec![bus::detail(&change, 0, event, ORIGIN).to_string()];
        let envelope = directory::events::set::Envelope {
            origin: ORIGIN,
            audience: "https://apps.example",
            jti: "j".into(),
            txn: "t",
            toe: None,
            iat: 0,
        };
        if let Some(claims) = directory::events::set::claims(event, &envelope) {
            key.sign(&claims).unwrap();
            published.push(claims.to_string());
        }
        for text in published {
            for secret in [
                hash.as_str(),
                "password_hash",
                "token_hashes",
                "login_failures",
                "login_failed_at",
            ] {
                assert!(!text.contains(secret), "{secret} in {text}");
            }
        }
    }
}

// ---------------------------------------------------------------- delivery

#[tokio::test]
async fn sets_reach_receivers_verified_in_order_at_least_once() {
    let p = Provisioner::streaming(Profile::Odm).await;
    let t = &p.t;
    let mut f = follower(t).await;
    publish_all(&publisher(&t.store), &mut f).await; // the provisioner's own creation
    let healthy = Receiver::start().await;
    let flaky = Receiver::start().await;
    let dead = Receiver::start().await;
    let refusing = Receiver::start().await;
    let acme_only = Receiver::start().await;
    dead.stop();
    flaky.script([
        Answer::Status(503, String::new()),
        Answer::Status(500, String::new()),
    ]);
    refusing.script([Answer::Status(
        400,
        r#"{"err":"invalid_request","description":"no"}"#.into(),
    )]);
    let subs = t.store.subscribers();
    let healthy_sub = subs
        .add(&healthy.url, None, Some("s3cr3t-bearer"))
        .await
        .unwrap();
    subs.add(&flaky.url, None, None).await.unwrap();
    let dead_sub = subs.add(&dead.url, None, None).await.unwrap();
    let refusing_sub = subs.add(&refusing.url, None, None).await.unwrap();
    t.store.groups().create_org("acme", "Acme").await.unwrap();
    subs.add(&acme_only.url, Some("acme"), None).await.unwrap();

    let body = json!({"schemas": [USER_SCHEMA], "userName": "leaver",
                      "emails": [{"value": "leaver@example.com", "type": "work"}]});
    let created = t
        .call(
            scim::create,
            p.req(Method::POST, "/api/v1/scim/Users", Some(&body))
                .build(),
        )
        .await;
    let id = created.expect(201)["id"].as_str().unwrap().to_string();
    let path = format!("/api/v1/scim/Users/{id}");
    t.call(
        scim::patch,
        p.req(Method::PATCH, &path, Some(&entra_active("False")))
            .build(),
    )
    .await
    .expect(200);
    let org = t.store.groups().org("acme").await.unwrap().unwrap();
    t.store
        .groups()
        .add_member(&org, &t.fresh(id.parse().unwrap()).await, "worker")
        .await
        .unwrap();

    let publisher = publisher(&t.store);
    let jwks = test_jwks();
    let reports = publish_all(&publisher, &mut f).await;
    assert!(
        reports.iter().all(|r| r.failed_from.is_none()),
        "{reports:#?}"
    );

    let user = format!("/Users/{id}");
    let acme = "/Groups/1".to_string();
    let everything = vec![
        (acme.clone(), vec![CREATE_FULL.to_string()]),
        (user.clone(), vec![CREATE_FULL.to_string()]),
        (
            user.clone(),
            vec![PATCH_FULL.to_string(), DEACTIVATE.to_string()],
        ),
        (acme.clone(), vec![PATCH_FULL.to_string()]),
    ];
    // In the order of the writes, verified against the JWKS, with the
    // receiver's bearer secret and RFC 8935's media type.
    assert_eq!(seen(&healthy, &jwks), everything);
    let request = &healthy.received()[0];
    assert_eq!(request.method, "POST");
    assert_eq!(
        request.header("content-type"),
        Some("application/secevent+jwt")
    );
    assert_eq!(
        request.header("authorization"),
        Some("Bearer s3cr3t-bearer")
    );
    let deactivation = verify(&healthy.accepted()[2], &jwks, &healthy.url);
    assert_eq!(deactivation["sub_id"]["uri"], user);
    assert_eq!(
        deactivation["events"][PATCH_FULL]["data"]["Operations"],
        json!([{"op": "replace", "path": "active", "value": false}])
    );
    assert!(deactivation["txn"].is_string() && deactivation["toe"].is_number());

    // A receiver that failed twice got the same SET a third time, same jti.
    let flaky_jtis: Vec<String> = flaky
        .received()
        .iter()
        .map(|r| {
            let claims = jsonwebtoken::dangerous::insecure_decode::<Value>(&r.body)
                .unwrap()
                .claims;
            claims["jti"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(flaky_jtis.len(), 6, "{flaky_jtis:?}");
    assert!(flaky_jtis[0] == flaky_jtis[1] && flaky_jtis[1] == flaky_jtis[2]);
    assert_eq!(seen(&flaky, &jwks), everything);
    assert_ne!(
        jtis(&flaky, &jwks),
        jtis(&healthy, &jwks),
        "a jti is one receiver's"
    );

    // The org's receiver: only its org's events.
    assert_eq!(
        seen(&acme_only, &jwks),
        vec![everything[0].clone(), everything[3].clone()]
    );

    // The refusing receiver's first SET is kept as refused, the rest went on.
    assert_eq!(seen(&refusing, &jwks), everything[1..].to_vec());
    let kept = subs.deliveries(&refusing_sub.id).await.unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].status, DeliveryStatus::Refused);
    assert_eq!(kept[0].error, "400 invalid_request: no");

    // The dead receiver got nothing; its four SETs are kept, in order, and it
    // is backing off.
    assert!(dead.accepted().is_empty());
    let kept = subs.deliveries(&dead_sub.id).await.unwrap();
    assert_eq!(
        kept.iter().map(|d| d.subject.clone()).collect::<Vec<_>>(),
        everything
            .iter()
            .map(|(s, _)| s.clone())
            .collect::<Vec<_>>()
    );
    let kept_jtis: Vec<String> = kept.iter().map(|d| d.jti.clone()).collect();
    let dead_now = subs
        .list()
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.id == dead_sub.id)
        .unwrap();
    assert_eq!(dead_now.failures, 1);
    assert!(dead_now.retry_at.is_some());
    assert!(
        subs.list()
            .await
            .unwrap()
            .into_iter()
            .find(|s| s.id == healthy_sub.id)
            .unwrap()
            .failures
            == 0
    );

    // It comes back; after its backoff, the next change brings it everything
    // kept, oldest first with the same jtis, then the new one.
    dead.resume();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    t.call(
        scim::patch,
        p.req(Method::PATCH, &path, Some(&entra_active("True")))
            .build(),
    )
    .await
    .expect(200);
    let reports = publish_all(&publisher, &mut f).await;
    assert!(
        reports.iter().all(|r| r.failed_from.is_none()),
        "{reports:#?}"
    );
    let dead_seen = seen(&dead, &jwks);
    assert_eq!(dead_seen[..4], everything[..]);
    assert_eq!(dead_seen.len(), 5);
    assert_eq!(jtis(&dead, &jwks)[..4], kept_jtis[..]);
    assert!(subs.deliveries(&dead_sub.id).await.unwrap().is_empty());
    assert_eq!(
        subs.list()
            .await
            .unwrap()
            .into_iter()
            .find(|s| s.id == dead_sub.id)
            .unwrap()
            .failures,
        0
    );

    // `usersctl events replay` sends the refused one again, same jti.
    let refused_jti = subs.deliveries(&refusing_sub.id).await.unwrap()[0]
        .jti
        .clone();
    let pusher = Pusher::new(LIMITS);
    let refusing_now = subs
        .list()
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.id == refusing_sub.id)
        .unwrap();
    assert_eq!(
        publish::replay(&t.store, &pusher, &refusing_now)
            .await
            .unwrap(),
        (1, 0)
    );
    assert_eq!(jtis(&refusing, &jwks).last(), Some(&refused_jti));
    assert!(subs.deliveries(&refusing_sub.id).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_hung_receiver_does_not_delay_a_healthy_one() {
    let t = TestTable::streaming(Profile::Odm).await;
    let mut f = follower(&t).await;
    let healthy = Receiver::start().await;
    let hung = Receiver::with_handler(|_| Answer::Hang).await;
    t.store
        .subscribers()
        .add(&healthy.url, None, None)
        .await
        .unwrap();
    let hung_sub = t
        .store
        .subscribers()
        .add(&hung.url, None, None)
        .await
        .unwrap();
    for name in ["u1", "u2", "u3"] {
        t.user(name).await;
    }
    let publisher = publisher(&t.store);
    let started = Instant::now();
    publish_all(&publisher, &mut f).await;
    let took = started.elapsed();
    assert_eq!(healthy.accepted().len(), 3);
    let healthy_done = healthy
        .received()
        .last()
        .unwrap()
        .at
        .duration_since(started);
    // The healthy receiver had everything before the hung one's first SET
    // ran out of attempts (3 × 600 ms); the batch took about that, not 3×.
    assert!(
        healthy_done < Duration::from_millis(1000),
        "{healthy_done:?}"
    );
    assert!(took < Duration::from_millis(3500), "{took:?}");
    assert_eq!(
        hung.received().len(),
        3,
        "one SET, three attempts, then kept"
    );
    assert_eq!(
        t.store
            .subscribers()
            .deliveries(&hung_sub.id)
            .await
            .unwrap()
            .len(),
        3
    );
}

// ---------------------------------------------------------------- DynamoDB failing under the publisher

/// DynamoDB fails each call of the publisher in turn (for good): the batch
/// is handed back to Lambda, which sends it again; in the end every SET
/// reached the healthy receiver (duplicates only with the same jti, first
/// arrivals in order) and every SET of the dead one is kept.
#[tokio::test]
async fn dynamodb_failing_at_any_step_loses_nothing() {
    let budget = directory::store::Budget::from_env();
    for k in 1..=8 {
        let (faulty, faults) = TestTable::faulty(Profile::Odm, budget).await;
        directory::store::table::enable_stream(faulty.store.client(), faulty.store.table())
            .await
            .unwrap();
        let healthy_t = TestTable {
            store: Store::new(
                directory::store::client_from_env().await,
                faulty.store.table(),
            ),
            profile: Profile::Odm,
        };
        let mut f = follower(&healthy_t).await;
        let up = Receiver::start().await;
        let down = Receiver::start().await;
        down.stop();
        healthy_t
            .store
            .subscribers()
            .add(&up.url, None, None)
            .await
            .unwrap();
        let down_sub = healthy_t
            .store
            .subscribers()
            .add(&down.url, None, None)
            .await
            .unwrap();
        healthy_t.user("a").await;
        healthy_t.user("b").await;
        let mut batch = StreamEvent::default();
        for (_, b) in batches_of(&mut f, 1000).await {
            batch.records.extend(b.records);
        }
        let p = publisher(&faulty.store);
        faults.reset();
        faults.fail_call(k, Fault::InternalServerError, u32::MAX);
        let (_, first) = p.publish(&batch).await;
        let calls = faults.operations();
        faults.reset();
        // Every call the publisher makes here is one it cannot do without:
        // failing it hands the batch back.
        assert_eq!(first.failed_from.is_some(), k <= calls, "k={k}: {first:?}");
        // Lambda sends the batch again from the record named (or not at all).
        let mut rounds = 0;
        let mut report = first.clone();
        while let Some(seq) = report.failed_from.clone() {
            rounds += 1;
            assert!(rounds < 5, "k={k}: still failing");
            let mut again = batch.clone();
            let from = again
                .records
                .iter()
                .position(|r| r.change.sequence_number.as_deref() == Some(&seq))
                .unwrap();
            again.records.drain(..from);
            report = p.publish(&again).await.1;
        }
        let jwks = test_jwks();
        let got = jtis(&up, &jwks);
        let unique: Vec<&String> = got.iter().fold(Vec::new(), |mut v, j| {
            if !v.contains(&j) {
                v.push(j);
            }
            v
        });
        assert_eq!(unique.len(), 2, "k={k} ({calls} calls): {got:?}");
        // First arrivals in the order of the writes.
        let subjects: Vec<String> = seen(&up, &jwks).into_iter().map(|(s, _)| s).collect();
        let firsts = subjects.iter().fold(Vec::<String>::new(), |mut v, s| {
            if !v.contains(s) {
                v.push(s.clone());
            }
            v
        });
        assert_eq!(firsts, ["/Users/1", "/Users/2"], "k={k}: {subjects:?}");
        let kept = healthy_t
            .store
            .subscribers()
            .deliveries(&down_sub.id)
            .await
            .unwrap();
        assert_eq!(kept.len(), 2, "k={k}: {kept:#?}");
        if k > calls {
            assert_eq!(
                calls, 4,
                "list subscribers, record the failure, keep two SETs"
            );
            return;
        }
    }
    panic!("the publisher made more calls than the test fails");
}

/// Secrets Manager, where a deployment keeps the signing key's secret,
/// failing each way the SDK sees it fail, on an instance's first batch:
/// the batch is handed back from its first record before anything is sent
/// (nothing on the wire, so nothing to duplicate), within the read's bound;
/// once the secret is read, the same batch goes out, every SET once per
/// round with the same `jti`, and the key is not read again.
#[tokio::test]
async fn secrets_manager_failing_hands_the_batch_back_and_loses_nothing() {
    use directory::events::secret::{READ_ATTEMPT, READ_OPERATION};
    use std::sync::atomic::{AtomicBool, Ordering};
    const ARN: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:set-key-AbCdEf";
    let error = |status: u16, kind: &str| {
        Answer::Status(
            status,
            json!({"__type": kind, "message": "injected"}).to_string(),
        )
    };
    let faults = [
        (
            "500 InternalServiceError",
            error(500, "InternalServiceError"),
        ),
        ("400 ThrottlingException", error(400, "ThrottlingException")),
        (
            "400 AccessDeniedException",
            error(400, "AccessDeniedException"),
        ),
        ("a dropped connection", Answer::Drop),
        ("a hang", Answer::Hang),
    ];
    let t = TestTable::streaming(Profile::Odm).await;
    let mut f = follower(&t).await;
    let up = Receiver::start().await;
    t.store
        .subscribers()
        .add(&up.url, None, None)
        .await
        .unwrap();
    t.user("a").await;
    t.user("b").await;
    let mut batch = StreamEvent::default();
    for (_, b) in batches_of(&mut f, 1000).await {
        batch.records.extend(b.records);
    }
    let first = batch.records[0].change.sequence_number.clone();
    let jwks = test_jwks();
    let mut rounds = 0;
    for (what, fault) in faults {
        let healthy = Arc::new(AtomicBool::new(false));
        let answers = healthy.clone();
        let secrets = Receiver::with_handler(move |r| {
            assert_eq!(
                r.header("x-amz-target"),
                Some("secretsmanager.GetSecretValue")
            );
            if answers.load(Ordering::SeqCst) {
                Answer::Status(
                    200,
                    json!({"ARN": ARN, "Name": "set-key", "SecretString": TEST_SECRET}).to_string(),
                )
            } else {
                fault.clone()
            }
        })
        .await;
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(secrets.url.trim_end_matches("/events"))
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_eventbridge::config::Credentials::new(
                "local", "local", None, None, "test",
            ))
            .load()
            .await;
        // A cold instance: its key is read from Secrets Manager.
        let mut p = publisher(&t.store);
        p.keys = Arc::new(KeySource::secrets_manager(&sdk, ARN));

        let sent = up.received().len();
        let started = Instant::now();
        let (response, report) = p.publish(&batch).await;
        let took = started.elapsed();
        assert_eq!(report.failed_from, first, "{what}: {report:?}");
        let failures: Vec<Option<String>> = response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.clone())
            .collect();
        assert_eq!(
            failures,
            std::slice::from_ref(&first),
            "{what}: ReportBatchItemFailures from the first record"
        );
        assert_eq!(up.received().len(), sent, "{what}: nothing was sent");
        assert!(
            !secrets.received().is_empty(),
            "{what}: Secrets Manager was asked"
        );
        assert!(
            took < READ_OPERATION + READ_ATTEMPT,
            "{what}: the failed read took {took:?}"
        );

        // Lambda sends the batch again; Secrets Manager answers now.
        healthy.store(true, Ordering::SeqCst);
        let (response, report) = p.publish(&batch).await;
        assert!(
            response.batch_item_failures.is_empty(),
            "{what}: {report:?}"
        );
        assert_eq!(report.delivered, 2, "{what}: {report:?}");
        rounds += 1;
        let reads = secrets.received().len();
        p.publish(&batch).await;
        rounds += 1;
        assert_eq!(
            secrets.received().len(),
            reads,
            "{what}: the key is read once per instance"
        );
    }
    // Two SETs per round that got its key, each time with the same two jtis.
    let got = jtis(&up, &jwks);
    assert_eq!(got.len(), 2 * rounds, "{got:?}");
    let unique: BTreeSet<&String> = got.iter().collect();
    assert_eq!(unique.len(), 2, "{got:?}");
    let subjects: Vec<String> = seen(&up, &jwks).into_iter().map(|(s, _)| s).collect();
    assert_eq!(subjects[..2], ["/Users/1", "/Users/2"], "{subjects:?}");
}

// ---------------------------------------------------------------- EventBridge

/// An endpoint that speaks EventBridge's protocol (JSON 1.1, `AWSEvents.PutEvents`):
/// the first call fails its first two entries, everything else is taken.
#[tokio::test]
async fn events_go_to_the_bus_by_ten_and_failed_entries_are_sent_again() {
    let calls = Arc::new(std::sync::Mutex::new(Vec::<Value>::new()));
    let seen_calls = calls.clone();
    let stub = Receiver::with_handler(move |r| {
        let body: Value = serde_json::from_str(&r.body).unwrap_or_default();
        assert_eq!(r.header("x-amz-target"), Some("AWSEvents.PutEvents"));
        let mut log = seen_calls.lock().unwrap();
        let first = log.is_empty();
        log.push(body.clone());
        let entries = body["Entries"].as_array().cloned().unwrap_or_default();
        let results: Vec<Value> = entries
            .iter()
            .enumerate()
            .map(|(i, _)| {
                if first && i < 2 {
                    json!({"ErrorCode": "InternalFailure", "ErrorMessage": "try again"})
                } else {
                    json!({"EventId": format!("id-{i}")})
                }
            })
            .collect();
        let failed = results
            .iter()
            .filter(|r| r.get("ErrorCode").is_some())
            .count();
        Answer::Status(
            200,
            json!({"FailedEntryCount": failed, "Entries": results}).to_string(),
        )
    })
    .await;
    let endpoint = stub.url.trim_end_matches("/events").to_string();
    let t = TestTable::streaming(Profile::Odm).await;
    let mut f = follower(&t).await;
    for i in 0..12 {
        t.user(&format!("user{i}")).await;
    }
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_eventbridge::config::Credentials::new(
            "local", "local", None, None, "test",
        ))
        .load()
        .await;
    let mut p = publisher(&t.store);
    p.bus = Some(bus::Bus::new(
        aws_sdk_eventbridge::Client::new(&config),
        "directory-bus",
    ));
    let reports = publish_batches(&p, batches_of(&mut f, 1000).await).await;
    assert_eq!(reports.len(), 1, "one batch");
    assert!(
        reports.iter().all(|r| r.failed_from.is_none()),
        "{reports:#?}"
    );
    assert_eq!(reports.iter().map(|r| r.bus_entries).sum::<usize>(), 12);
    let calls = calls.lock().unwrap();
    // 12 entries: 10 + 2, and the two the first call did not take, again.
    let sizes: Vec<usize> = calls
        .iter()
        .map(|c| c["Entries"].as_array().unwrap().len())
        .collect();
    assert_eq!(sizes, [10, 2, 2], "{sizes:?}");
    let again: Vec<&Value> = calls[1]["Entries"].as_array().unwrap().iter().collect();
    assert_eq!(
        again,
        calls[0]["Entries"].as_array().unwrap()[..2]
            .iter()
            .collect::<Vec<_>>()
    );
    let entry = &calls[0]["Entries"][0];
    assert_eq!(entry["Source"], "directory");
    assert_eq!(entry["DetailType"], "User Created");
    assert_eq!(entry["EventBusName"], "directory-bus");
    let detail: Value = serde_json::from_str(entry["Detail"].as_str().unwrap()).unwrap();
    assert_eq!(detail["resource"]["userName"], "user0");
    assert_eq!(detail["uri"], "/Users/1");
    let kinds: BTreeSet<&str> = calls
        .iter()
        .flat_map(|c| c["Entries"].as_array().unwrap())
        .map(|e| e["DetailType"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, BTreeSet::from(["User Created"]));
}

#[tokio::test]
async fn the_jwks_endpoint_publishes_the_public_key() {
    let t = TestTable::streaming(Profile::Odm).await;
    let reply = t
        .call(
            directory::events::jwks,
            Req::new(Method::GET, "/api/v1/scim/.well-known/jwks.json").build(),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.raw);
    assert_eq!(
        reply.header("content-type"),
        Some("application/jwk-set+json")
    );
    let jwks = reply.expect(200);
    let key = &jwks["keys"][0];
    assert_eq!(
        (
            key["kty"].as_str(),
            key["crv"].as_str(),
            key["alg"].as_str()
        ),
        (Some("EC"), Some("P-256"), Some("ES256"))
    );
    assert!(key.get("d").is_none());
    assert_eq!(reply.dynamodb_calls, 0, "no DynamoDB call");
}

#[tokio::test]
async fn service_provider_config_advertises_the_event_uris_unless_told_not_to() {
    use directory::scim::event_uris::{ACTIVATE, DELETE};
    let p = Provisioner::streaming(Profile::Odm).await;
    let spc = || {
        p.req(Method::GET, "/api/v1/scim/ServiceProviderConfig", None)
            .build()
    };
    let reply = p.t.call(scim::discover, spc()).await;
    assert_eq!(
        reply.expect(200)["securityEvents"],
        json!({"asyncRequest": "none",
               "eventUris": [CREATE_FULL, PATCH_FULL, DELETE, ACTIVATE, DEACTIVATE]})
    );
    // SCIM_SECURITY_EVENTS=off: for validators that know RFC 7643 alone.
    let mut config =
        directory::config::Config::local(p.t.store.table(), Profile::Odm, *p.t.store.budget());
    config.advertise_security_events = false;
    let base = directory::http::Ctx::with_config(p.t.store.clone(), config);
    let resp = directory::http::dispatch(&base, spc(), scim::discover).await;
    let body: Value = match resp.into_body() {
        lambda_http::Body::Text(t) => serde_json::from_str(&t).unwrap(),
        other => panic!("{other:?}"),
    };
    assert!(body.get("securityEvents").is_none(), "{body}");
    assert_eq!(body["patch"]["supported"], true);
}

/// `usersctl table create` on a table made before change events turns its
/// stream on, with the images the publisher reads.
#[tokio::test]
async fn an_older_table_gets_its_stream() {
    use aws_sdk_dynamodb::types::StreamViewType;
    use directory::store::table;
    let client = directory::store::client_from_env().await;
    let table = format!("old-{}", uuid::Uuid::new_v4());
    // The CreateTable of before: no stream.
    table::table_definition(&client, &table)
        .set_stream_specification(None)
        .send()
        .await
        .unwrap();
    let stream = |client: aws_sdk_dynamodb::Client, table: String| async move {
        let out = client
            .describe_table()
            .table_name(table)
            .send()
            .await
            .unwrap();
        out.table().and_then(|t| t.stream_specification()).cloned()
    };
    assert!(stream(client.clone(), table.clone())
        .await
        .is_none_or(|s| !s.stream_enabled()));
    assert!(table::enable_stream(&client, &table).await.unwrap());
    let on = stream(client.clone(), table.clone()).await.unwrap();
    assert!(on.stream_enabled());
    assert_eq!(
        on.stream_view_type(),
        Some(&StreamViewType::NewAndOldImages)
    );
    // Running it again changes nothing.
    assert!(!table::enable_stream(&client, &table).await.unwrap());
}

// ---------------------------------------------------------------- tenants

/// The users an org provisioned under its SCIM tenant base are the org's:
/// its subscribers get their events (and only theirs), and the EventBridge
/// detail names the owning org (shared/src/events/tests.rs). Without the
/// owner on user events, the org's subscriber would get nothing of its own
/// users.
#[tokio::test]
async fn an_orgs_subscriber_gets_the_events_of_the_users_it_owns() {
    let p = Provisioner::streaming(Profile::Rfc).await;
    let t = &p.t;
    let mut f = follower(t).await;
    t.store.groups().create_org("acme", "Acme").await.unwrap();
    let org = t.store.tenants().get("acme").await.unwrap().unwrap();
    t.store
        .tenants()
        .add_domain(&org, "acme.com")
        .await
        .unwrap();
    let org = t.store.tenants().get("acme").await.unwrap().unwrap();
    let spec = directory::store::TokenSpec {
        read_only: false,
        expires_at: None,
    };
    let token = directory::auth::mint_tenant_token(&t.store, &org, &spec)
        .await
        .unwrap();
    publish_all(&publisher(&t.store), &mut f).await; // what came before
    let acme_only = Receiver::start().await;
    let everyone = Receiver::start().await;
    let subs = t.store.subscribers();
    let sub = subs.add(&acme_only.url, Some("acme"), None).await.unwrap();
    assert_eq!(sub.org_id, Some(org.id));
    subs.add(&everyone.url, None, None).await.unwrap();

    let user = |name: &str| json!({"schemas": [USER_SCHEMA], "userName": name});
    let owned = t
        .call(
            scim::create,
            directory_tests::scim(
                Method::POST,
                "/api/v1/scim/orgs/acme/Users",
                &user("ada@acme.com"),
            )
            .header("authorization", &format!("Bearer {token}"))
            .build(),
        )
        .await;
    let owned_id = owned.expect(201)["id"].as_str().unwrap().to_string();
    let other = t
        .call(
            scim::create,
            p.req(Method::POST, "/api/v1/scim/Users", Some(&user("bob")))
                .build(),
        )
        .await;
    let other_id = other.expect(201)["id"].as_str().unwrap().to_string();
    let reports = publish_all(&publisher(&t.store), &mut f).await;
    assert!(
        reports.iter().all(|r| r.failed_from.is_none()),
        "{reports:#?}"
    );

    let jwks = test_jwks();
    let created = |id: &str| (format!("/Users/{id}"), vec![CREATE_FULL.to_string()]);
    // The tenant's create is the org's (its membership is read from the same
    // user item: a member event of acme follows it); bob's is nobody's.
    let acme_seen = seen(&acme_only, &jwks);
    assert_eq!(acme_seen[0], created(&owned_id), "{acme_seen:?}");
    assert!(
        acme_seen
            .iter()
            .all(|(uri, _)| uri != &format!("/Users/{other_id}")),
        "{acme_seen:?}"
    );
    let everyone_seen = seen(&everyone, &jwks);
    assert!(
        everyone_seen.contains(&created(&owned_id)),
        "{everyone_seen:?}"
    );
    assert!(
        everyone_seen.contains(&created(&other_id)),
        "{everyone_seen:?}"
    );
}
