//! SCIM queries in the `rfc` profile, in-process against DynamoDB Local:
//! the whole filter grammar answers what evaluating every user answers, an
//! `or` of pinned lookups reads its keys in one batch, a delta sync
//! (`meta.lastModified gt "<t>"`) reads only what changed however many
//! users did not, and `sortBy` orders Users, Groups and the root search.
use std::time::Duration;

use directory::admin_api;
use directory::domain::query::ReadPlan;
use directory::domain::user::{format_time, User};
use directory::http::Profile;
use directory::scim::{self, groups};
use directory_tests::{patch, Provisioner, Reply};
use lambda_http::http::Method;
use serde_json::{json, Value};

const USERS: &str = "/api/v1/scim/Users";
const GROUPS: &str = "/api/v1/scim/Groups";
const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const SEARCH_REQUEST: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";
const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";

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

    /// `GET /Users?filter=…` and more parameters.
    async fn filter(&self, filter: &str, more: &str) -> Reply {
        self.list(&format!("filter={}{more}", encode(filter))).await
    }

    async fn list(&self, query: &str) -> Reply {
        self.t
            .call(
                scim::list,
                self.req(Method::GET, &format!("{USERS}?{query}"), None)
                    .build(),
            )
            .await
    }

    async fn search(&self, path: &str, body: Value) -> Reply {
        self.t
            .call(
                scim::search,
                self.req(Method::POST, path, Some(&body)).build(),
            )
            .await
    }

    async fn patch_user(&self, id: u64, ops: Value) -> Reply {
        let body = json!({"schemas": [PATCH_OP], "Operations": ops});
        self.t
            .call(
                scim::patch,
                self.req(Method::PATCH, &format!("{USERS}/{id}"), Some(&body))
                    .build(),
            )
            .await
    }

    async fn rename(&self, id: u64, display: &str) {
        self.patch_user(
            id,
            json!([{"op": "replace", "path": "displayName", "value": display}]),
        )
        .await
        .expect(200);
    }

    async fn groups(&self, query: &str) -> Reply {
        self.t
            .call(
                groups::list,
                self.req(Method::GET, &format!("{GROUPS}?{query}"), None)
                    .build(),
            )
            .await
    }

    async fn group(&self, name: &str) -> String {
        let body = json!({"schemas": [GROUP_SCHEMA], "displayName": name, "members": []});
        let r = self
            .t
            .call(
                groups::create,
                self.req(Method::POST, GROUPS, Some(&body)).build(),
            )
            .await;
        r.expect(201)["id"].as_str().unwrap().to_string()
    }

    /// `count` users named `<prefix><n>`, loaded in bulk.
    async fn load(&self, prefix: &str, count: usize) -> Vec<User> {
        let users = (0..count)
            .map(|n| {
                let mut u = User::new(format!("{prefix}{n:05}"));
                u.email = format!("{prefix}{n:05}@example.org");
                u
            })
            .collect();
        self.t.store.users().import(users).await.unwrap()
    }
}

fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn ids_of(body: &Value) -> Vec<u64> {
    body["Resources"]
        .as_array()
        .unwrap_or_else(|| panic!("no Resources: {body}"))
        .iter()
        .map(|r| r["id"].as_str().unwrap().parse().unwrap())
        .collect()
}

fn names_of(body: &Value, attr: &str) -> Vec<String> {
    body["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r[attr].as_str().unwrap_or_default().to_string())
        .collect()
}

/// The time just after now, rounded into the next second, once that second
/// has come: users written before it and after it are a second apart in
/// the index of changes.
async fn a_second_boundary() -> String {
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let t = format_time(&chrono::Utc::now());
    tokio::time::sleep(Duration::from_millis(1100)).await;
    t
}

// ---------------------------------------------------------------- or of pins

#[tokio::test]
async fn an_or_of_pinned_lookups_reads_its_keys_in_one_batch() {
    let s = Scim::new(Profile::Rfc).await;
    let loaded = s.load("pin", 30).await;
    let (a, b, c) = (&loaded[3], &loaded[17], &loaded[25]);
    let cases: Vec<(String, Vec<u64>)> = vec![
        (
            format!(
                r#"userName eq "{}" or userName eq "{}""#,
                a.username, b.username
            ),
            vec![a.id, b.id],
        ),
        (
            format!(
                r#"userName eq "{}" or emails.value eq "{}" or id eq "{}""#,
                a.username.to_uppercase(),
                b.email,
                c.id
            ),
            vec![a.id, b.id, c.id],
        ),
        (
            format!(
                r#"(userName eq "{}" or userName eq "nobody") and active eq true"#,
                c.username
            ),
            vec![c.id],
        ),
        (
            r#"userName eq "nobody" or externalId eq "none""#.to_string(),
            vec![],
        ),
    ];
    for (filter, want) in cases {
        let r = s.filter(&filter, "").await;
        assert_eq!(ids_of(r.expect(200)), want, "{filter}");
        assert_eq!(r.body["totalResults"], want.len(), "{filter}");
        // The caller with the claims (and ids) in one batch read, then the
        // claims' owners in one more: never one read per key.
        assert!(
            r.dynamodb_calls <= 2,
            "{filter}: {} calls",
            r.dynamodb_calls
        );
    }
    // The odm profile keeps its grammar: `or` is refused by name.
    let odm = Scim::new(Profile::Odm).await;
    let r = odm
        .filter(r#"userName eq "a" or userName eq "b""#, "")
        .await;
    let body = r.expect(400);
    assert_eq!(body["scimType"], "invalidFilter");
    assert_eq!(
        body["detail"],
        "Unsupported filter operator 'or': only 'eq' and 'and' are supported"
    );
}

// ---------------------------------------------------------------- delta sync

/// What a delta sync costs: the same calls and capacity whether 20 or 400
/// users did not change, because it reads the index of changes from the
/// last sync on, and only the users it names.
#[tokio::test]
async fn a_delta_sync_reads_only_what_changed_at_any_directory_size() {
    let mut costs = Vec::new();
    for unchanged in [20, 400] {
        let s = Scim::new(Profile::Rfc).await;
        let loaded = s.load("quiet", unchanged).await;
        let since = a_second_boundary().await;
        let changed: Vec<u64> = [2, 7, 11].iter().map(|i| loaded[*i].id).collect();
        for id in &changed {
            s.rename(*id, "Changed").await;
        }
        let filter = format!(r#"meta.lastModified gt "{since}""#);
        let r = s.filter(&filter, "").await;
        assert_eq!(ids_of(r.expect(200)), changed, "{unchanged} unchanged");
        assert_eq!(r.body["totalResults"], 3);
        assert_eq!(
            names_of(&r.body, "displayName"),
            ["Changed", "Changed", "Changed"]
        );
        // Auth; the index of changes; the changed users by key.
        assert_eq!(r.dynamodb_calls, 3, "{unchanged} unchanged");
        costs.push(r.capacity_units);

        // The same answer as evaluating every user, for the other forms.
        for filter in [
            format!(r#"meta.lastModified ge "{since}" and active eq true"#),
            format!(r#"meta.lastModified gt "{since}" and displayName sw "Change""#),
            format!(r#"not (meta.lastModified le "{since}")"#),
        ] {
            let r = s.filter(&filter, "").await;
            assert_eq!(ids_of(r.expect(200)), changed, "{filter}");
        }
    }
    assert_eq!(
        costs[0], costs[1],
        "capacity with 20 and 400 unchanged users"
    );
}

/// A delta sync pages by startIndex (counting from the index, reading only
/// the page's users) and by cursor, and sees every kind of write: creates,
/// updates through either API, membership changes, bulk loads; deleted
/// users are gone from it.
#[tokio::test]
async fn the_index_of_changes_follows_every_write() {
    let s = Scim::new(Profile::Rfc).await;
    let old = s.load("old", 10).await;
    let since = a_second_boundary().await;
    // A SCIM create, a SCIM PATCH, an admin API PATCH, a new member, a bulk load.
    let created =
        s.t.call(
            scim::create,
            s.req(
                Method::POST,
                USERS,
                Some(&json!({"schemas": [directory::scim::USER_SCHEMA], "userName": "newcomer"})),
            )
            .build(),
        )
        .await;
    let created: u64 = created.expect(201)["id"].as_str().unwrap().parse().unwrap();
    s.rename(old[1].id, "Patched").await;
    let admin_token = s.token.clone();
    let r =
        s.t.call(
            admin_api::partial_update,
            patch(
                &format!("/api/users/{}", old[2].id),
                &json!({"first_name": "Ada"}),
            )
            .token(&admin_token)
            .build(),
        )
        .await;
    r.expect(200);
    let group = s.group("Changers").await;
    let body = json!({"schemas": [PATCH_OP], "Operations": [
        {"op": "add", "path": "members", "value": [{"value": old[3].id.to_string()}]}]});
    s.t.call(
        groups::patch,
        s.req(Method::PATCH, &format!("{GROUPS}/{group}"), Some(&body))
            .build(),
    )
    .await
    .expect(204);
    let imported: Vec<u64> = s.load("new", 2).await.iter().map(|u| u.id).collect();
    // A user changed, then deleted: gone.
    s.rename(old[4].id, "Leaving").await;
    s.t.call(
        scim::delete,
        s.req(Method::DELETE, &format!("{USERS}/{}", old[4].id), None)
            .build(),
    )
    .await
    .expect(204);

    let mut want = vec![old[1].id, old[2].id, old[3].id, created];
    want.extend(&imported);
    want.sort_unstable();
    let filter = format!(r#"meta.lastModified gt "{since}""#);
    let r = s.filter(&filter, "&count=100").await;
    assert_eq!(ids_of(r.expect(200)), want);

    // By startIndex, two at a time: the total from the index, each page its own users.
    let mut paged = Vec::new();
    for start in (1..=want.len()).step_by(2) {
        let r = s
            .filter(&filter, &format!("&startIndex={start}&count=2"))
            .await;
        assert_eq!(r.expect(200)["totalResults"], want.len());
        assert!(
            r.dynamodb_calls <= 3,
            "page at {start}: {} calls",
            r.dynamodb_calls
        );
        paged.extend(ids_of(&r.body));
    }
    assert_eq!(paged, want);

    // By cursor, two at a time.
    let mut walked = Vec::new();
    let mut cursor = String::new();
    loop {
        let r = s
            .filter(&filter, &format!("&cursor={cursor}&count=2"))
            .await;
        walked.extend(ids_of(r.expect(200)));
        assert!(r.dynamodb_calls <= 3, "{} calls", r.dynamodb_calls);
        match r.body.get("nextCursor").and_then(Value::as_str) {
            Some(next) => cursor = next.to_string(),
            None => break,
        }
    }
    assert_eq!(walked, want);
    // Before the changes: none of them; a range of both ends reads the span.
    let r = s
        .filter(&format!(r#"meta.lastModified lt "{since}""#), "&count=100")
        .await;
    let before = ids_of(r.expect(200));
    assert!(want.iter().all(|id| !before.contains(id)));
    assert!(before.contains(&old[0].id));
}

/// In `odm` (only `eq`), `meta.lastModified eq` reads the index too, and
/// the inactive users it hides are not even read.
#[tokio::test]
async fn odm_reads_an_exact_modification_time_from_the_index_and_hides_the_inactive() {
    let s = Scim::new(Profile::Odm).await;
    let loaded = s.load("odm", 5).await;
    s.rename(loaded[0].id, "Seen").await;
    let seen = s.t.fresh(loaded[0].id).await;
    let filter = format!(
        r#"meta.lastModified eq "{}""#,
        format_time(&seen.last_modified)
    );
    let r = s.filter(&filter, "").await;
    assert_eq!(ids_of(r.expect(200)), [seen.id]);
    assert!(r.dynamodb_calls <= 3);
    // Deactivated (odm's DELETE): hidden, and its entry says so.
    s.t.call(
        scim::delete,
        s.req(Method::DELETE, &format!("{USERS}/{}", seen.id), None)
            .build(),
    )
    .await
    .expect(204);
    let gone = s.t.fresh(seen.id).await;
    let filter = format!(
        r#"meta.lastModified eq "{}""#,
        format_time(&gone.last_modified)
    );
    let r = s.filter(&filter, "").await;
    assert_eq!(r.expect(200)["totalResults"], 0);
}

// ---------------------------------------------------------------- the grammar, planned

/// A seeded random filter of the `rfc` grammar's new forms (every
/// operator, `or`, `not`, value paths, modification times).
fn random_filter(rng: &mut rand::rngs::StdRng, users: &[User], depth: u32) -> String {
    use rand::Rng;
    let pick = |rng: &mut rand::rngs::StdRng| &users[rng.gen_range(0..users.len())];
    let op = |rng: &mut rand::rngs::StdRng| {
        ["eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"][rng.gen_range(0..9)]
    };
    let date_op =
        |rng: &mut rand::rngs::StdRng| ["eq", "gt", "ge", "lt", "le"][rng.gen_range(0..5)];
    let atom = |rng: &mut rand::rngs::StdRng| -> String {
        let u = pick(rng);
        match rng.gen_range(0..12) {
            0 => format!(r#"userName eq "{}""#, u.username.to_uppercase()),
            1 => format!(
                r#"userName {} "{}""#,
                op(rng),
                &u.username[..rng.gen_range(1..=u.username.len())]
            ),
            2 => format!(r#"emails.value eq "{}""#, u.email),
            3 => format!(r#"id eq "{}""#, u.id),
            4 => format!(
                "active {} {}",
                ["eq", "ne"][rng.gen_range(0..2)],
                rng.gen_bool(0.5)
            ),
            5 | 6 => format!(
                r#"meta.lastModified {} "{}""#,
                date_op(rng),
                format_time(&u.last_modified)
            ),
            7 => ["externalId pr", "emails pr", "name.givenName pr"][rng.gen_range(0..3)].into(),
            8 => format!(
                r#"name.familyName {} "Family{}""#,
                op(rng),
                rng.gen_range(0..4)
            ),
            9 => format!(
                r#"emails[value sw "{}" or type eq "home"]"#,
                &u.username[..3]
            ),
            10 => format!(r#"externalId {} "ext-{}""#, op(rng), rng.gen_range(0..12)),
            _ => format!(
                r#"displayName co "{}""#,
                ["First", "pool", "x"][rng.gen_range(0..3)]
            ),
        }
    };
    let parts: Vec<String> = (0..rng.gen_range(1..=3))
        .map(|_| match rng.gen_range(0..10) {
            0 | 1 if depth > 0 => format!("({})", random_filter(rng, users, depth - 1)),
            2 if depth > 0 => format!("not ({})", random_filter(rng, users, depth - 1)),
            _ => atom(rng),
        })
        .collect();
    parts.join(if rng.gen_bool(0.5) { " and " } else { " or " })
}

#[tokio::test]
async fn planned_rfc_filters_answer_what_evaluating_every_user_answers() {
    use rand::SeedableRng;
    let s = Scim::new(Profile::Rfc).await;
    // Twelve users with overlapping attributes and distinct modification times.
    for n in 0..12u64 {
        let mut u = User::new(format!("pool{n}"));
        u.email = format!("pool{n}@example.org");
        u.first_name = if n % 5 == 0 {
            String::new()
        } else {
            format!("First{n}")
        };
        u.last_name = format!("Family{}", n % 3);
        u.is_active = n % 4 != 0;
        u.external_id = (n % 2 == 0).then(|| format!("ext-{n}"));
        s.t.store.users().create(u).await.unwrap();
    }
    let all = s.t.store.users().all().await.unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(716);
    let (mut keyed, mut by_time) = (0, 0);
    for _ in 0..150 {
        let text = random_filter(&mut rng, &all, 2);
        let parsed = scim::filter::parse(&text, Profile::Rfc).unwrap();
        let want: Vec<u64> = all
            .iter()
            .filter(|u| parsed.matches(u))
            .map(|u| u.id)
            .collect();
        let r = s.filter(&text, "&count=1000").await;
        assert_eq!(ids_of(r.expect(200)), want, "{text}");
        match ReadPlan::of(&parsed.to_query()) {
            ReadPlan::Keys { .. } => {
                keyed += 1;
                assert!(r.dynamodb_calls <= 2, "{text}: {} calls", r.dynamodb_calls);
            }
            ReadPlan::Modified { .. } => {
                by_time += 1;
                assert!(r.dynamodb_calls <= 3, "{text}: {} calls", r.dynamodb_calls);
            }
            _ => {}
        }
        // The same by cursor, three at a time, and sorted by startIndex.
        let mut walked = Vec::new();
        let mut cursor = String::new();
        loop {
            let r = s.filter(&text, &format!("&cursor={cursor}&count=3")).await;
            walked.extend(ids_of(r.expect(200)));
            match r.body.get("nextCursor").and_then(Value::as_str) {
                Some(next) => cursor = next.to_string(),
                None => break,
            }
        }
        assert_eq!(walked, want, "cursor walk of {text}");
    }
    assert!(
        keyed > 10 && by_time > 10,
        "{keyed} keyed, {by_time} by time of 150"
    );
}

// ---------------------------------------------------------------- sortBy

#[tokio::test]
async fn sorted_lists_page_in_order_with_ties_by_id() {
    let s = Scim::new(Profile::Rfc).await;
    let mut ids = Vec::new();
    for (name, given) in [
        ("carol", "Carol"),
        ("Bob", ""),
        ("alice", "Alice"),
        ("bob2", "Bob"),
        ("dave", ""),
    ] {
        let mut u = User::new(name);
        u.first_name = given.into();
        ids.push(s.t.store.users().create(u).await.unwrap().id);
    }
    let names = |r: &Reply| names_of(r.expect(200), "userName");
    // The provisioner is a user too.
    let r = s.list("sortBy=userName").await;
    assert_eq!(
        names(&r),
        ["alice", "Bob", "bob2", "carol", "dave", "provisioner"]
    );
    let r = s
        .list("sortBy=userName&sortOrder=descending&startIndex=2&count=2")
        .await;
    assert_eq!(names(&r), ["dave", "carol"]);
    assert_eq!(r.body["totalResults"], 6);
    assert_eq!(r.body["startIndex"], 2);
    // Unassigned last ascending, first descending; ties by id.
    let r = s.list("sortBy=name.givenName").await;
    assert_eq!(names(&r)[..3], ["alice", "bob2", "carol"]);
    assert_eq!(names(&r)[3..], ["provisioner", "Bob", "dave"]);
    let r = s.list("sortBy=name.givenName&sortOrder=descending").await;
    assert_eq!(names(&r)[..3], ["provisioner", "Bob", "dave"]);
    // With a filter, and in a SearchRequest (caseless member names).
    let r = s
        .filter(
            r#"userName sw "b""#,
            "&sortBy=userName&sortOrder=descending",
        )
        .await;
    assert_eq!(names(&r), ["bob2", "Bob"]);
    let r = s
        .search(
            "/api/v1/scim/Users/.search",
            json!({"schemas": [SEARCH_REQUEST], "sortby": "meta.created", "SortOrder": "descending",
                   "count": 2}),
        )
        .await;
    assert_eq!(names(&r), ["dave", "bob2"]);
    // sortBy=id is the id order lists are read in.
    let r = s.list("sortBy=id&sortOrder=descending&count=2").await;
    assert_eq!(ids_of(r.expect(200)), [ids[4], ids[3]]);
    // Cursors page in id order only; unknown attributes and orders are named.
    for (query, detail) in [
        (
            "sortBy=userName&cursor=",
            "sortBy cannot be combined with cursor",
        ),
        (
            "sortBy=favoriteColor",
            "sortBy names no attribute of the User schema: \"favoriteColor\"",
        ),
        (
            "sortBy=userName&sortOrder=up",
            "sortOrder must be \"ascending\" or \"descending\"",
        ),
    ] {
        let r = s.list(query).await;
        let body = r.expect(400);
        assert_eq!(body["scimType"], "invalidValue", "{query}");
        assert!(
            body["detail"].as_str().unwrap().starts_with(detail),
            "{query}: {body}"
        );
    }
    // The odm profile ignores sortBy, as it always has.
    let odm = Scim::new(Profile::Odm).await;
    for name in ["zed", "amy"] {
        odm.t.user(name).await;
    }
    let r = odm.list("sortBy=userName").await;
    assert_eq!(names(&r), ["provisioner", "zed", "amy"]);
}

#[tokio::test]
async fn groups_and_the_root_search_sort_too() {
    let s = Scim::new(Profile::Rfc).await;
    for name in ["Sales", "engineering", "Board"] {
        s.group(name).await;
    }
    let r = s.groups("sortBy=displayName").await;
    assert_eq!(
        names_of(r.expect(200), "displayName"),
        ["Board", "engineering", "Sales"]
    );
    let r = s
        .groups("sortBy=displayName&sortOrder=descending&startIndex=2&count=1")
        .await;
    assert_eq!(names_of(r.expect(200), "displayName"), ["engineering"]);
    let r = s
        .groups(&format!(
            "filter={}&sortBy=displayName",
            encode(r#"displayName sw "e" or displayName sw "s""#)
        ))
        .await;
    assert_eq!(
        names_of(r.expect(200), "displayName"),
        ["engineering", "Sales"]
    );
    let r = s.groups("sortBy=members.value").await;
    assert_eq!(r.expect(400)["scimType"], "invalidValue");
    // The root search sorts each type by what it has: users by userName,
    // groups (which have none) in id order after them.
    s.t.user("aaron").await;
    let r = s
        .search(
            "/api/v1/scim/.search",
            json!({"schemas": [SEARCH_REQUEST], "sortBy": "userName",
                   "attributes": ["userName", "displayName"]}),
        )
        .await;
    let shown: Vec<String> = r.expect(200)["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r.get("userName")
                .or(r.get("displayName"))
                .and_then(Value::as_str)
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        shown,
        ["aaron", "provisioner", "Sales", "engineering", "Board"]
    );
}

/// A table made before the modified index (GSI1 and the search index only)
/// gets it from `usersctl table create` (`table::add_missing_indexes`), on
/// the user items' own `last_modified`. (DynamoDB fills it from the items
/// already there; DynamoDB Local accepts the index but cannot query an index
/// added later on an attribute no index was keyed on before, "no such
/// column", so the reading is left to the tests of fresh tables.)
#[tokio::test]
async fn an_older_table_gets_the_modified_index_added() {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType,
        Projection, ProjectionType, ScalarAttributeType,
    };
    use directory::store::table;
    let fresh = directory_tests::TestTable::new().await;
    let client = fresh.store.client().clone();
    let old = format!("{}-old", fresh.store.table());
    let attr = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .unwrap()
    };
    let key = |name: &str, kind: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
            .unwrap()
    };
    let index = |name: &str, projected: &[&str]| {
        GlobalSecondaryIndex::builder()
            .index_name(name)
            .key_schema(key(table::GSI1_PK, KeyType::Hash))
            .key_schema(key(table::GSI1_SK, KeyType::Range))
            .projection(
                Projection::builder()
                    .projection_type(ProjectionType::Include)
                    .set_non_key_attributes(Some(projected.iter().map(|a| a.to_string()).collect()))
                    .build(),
            )
            .build()
            .unwrap()
    };
    client
        .create_table()
        .table_name(&old)
        .billing_mode(BillingMode::PayPerRequest)
        .set_attribute_definitions(Some(
            [table::PK, table::SK, table::GSI1_PK, table::GSI1_SK]
                .map(attr)
                .to_vec(),
        ))
        .key_schema(key(table::PK, KeyType::Hash))
        .key_schema(key(table::SK, KeyType::Range))
        .global_secondary_indexes(index(table::GSI1, table::GSI1_PROJECTED))
        .global_secondary_indexes(index(table::SEARCH_INDEX, table::SEARCH_PROJECTED))
        .send()
        .await
        .unwrap();
    let store = directory::store::Store::new(client.clone(), old.clone());
    store
        .users()
        .import(vec![User::new("early0"), User::new("early1")])
        .await
        .unwrap();

    // The modified index first; the tenant index with it on an idle
    // DynamoDB Local, else named pending and added by a later run.
    let added = table::add_missing_indexes(&client, &old).await.unwrap();
    assert_eq!(added.added.first(), Some(&table::MODIFIED_INDEX));
    let named: Vec<_> = added.added.iter().chain(&added.pending).copied().collect();
    assert_eq!(named, vec![table::MODIFIED_INDEX, table::TENANT_INDEX]);
    let again = table::add_missing_indexes(&client, &old).await.unwrap();
    let still: Vec<_> = again.added.iter().chain(&again.pending).copied().collect();
    assert_eq!(
        still, added.pending,
        "the second run names only what the first left pending"
    );
    let described = client
        .describe_table()
        .table_name(&old)
        .send()
        .await
        .unwrap();
    let modified = described
        .table()
        .unwrap()
        .global_secondary_indexes()
        .iter()
        .find(|g| g.index_name() == Some(table::MODIFIED_INDEX))
        .expect("the modified index");
    let key_names: Vec<&str> = modified
        .key_schema()
        .iter()
        .map(|k| k.attribute_name())
        .collect();
    assert_eq!(key_names, [table::GSI1_PK, table::MODIFIED_SK]);
    let tenant = described
        .table()
        .unwrap()
        .global_secondary_indexes()
        .iter()
        .find(|g| g.index_name() == Some(table::TENANT_INDEX));
    if let Some(tenant) = tenant {
        let key_names: Vec<&str> = tenant
            .key_schema()
            .iter()
            .map(|k| k.attribute_name())
            .collect();
        assert_eq!(key_names, [table::TENANT_PK, table::GSI1_SK]);
    }
    client.delete_table().table_name(&old).send().await.unwrap();
}
