//! `make bench`: what requests cost at directory size N (env `N`, default
//! 10,000), on a real DynamoDB Local. Loads N users with
//! `store.users().import` (every 7th inactive, every 50th in one of three
//! orgs), checks the load is what the APIs will see, then measures DynamoDB
//! calls, capacity units and latency (median of `RUNS`, default 3) per
//! request and marks each row against the budgets of issue 9:
//!
//! - an identity provider's request (an `eq` lookup, an index or cursor page
//!   at any depth): at most 3 calls and 10 capacity units;
//! - a full index import (Okta: `startIndex` pages of 100 until
//!   `totalResults`): at most 1.5 x the floor, the capacity of reading every
//!   user once (one full GSI1 query, `store.users().all()`);
//! - an admin list page at any depth: at most 10 capacity units.
//!
//! A full walk stops after `WALK_SECONDS` (default 300) and is then judged on
//! what it spent so far. Rows over budget print OVER: the bench reports, it
//! does not fail on them. It does fail when the load is not what the APIs
//! see (counts, memberships, GSI1, page lengths, lookups) or a request does
//! not answer 200.
use std::time::{Duration, Instant};

use directory::admin_api;
use directory::domain::user::{Group, Membership, User};
use directory::http::Profile;
use directory::scim;
use directory::store::Store;
use directory_tests::{get, Reply, Req, TestTable};
use lambda_http::http::Method;
use lambda_http::Request;

const PAGE: usize = 100;
/// Users loaded per `store.users().import` call: progress shows between them.
const CHUNK: usize = 10_000;

/// A budget a row is held to.
#[derive(Clone, Copy)]
enum Budget {
    /// Identity provider request: calls and capacity units.
    Idp,
    /// Admin list page: capacity units.
    AdminPage,
    /// Reported only.
    None,
}

impl Budget {
    fn describe(self) -> &'static str {
        match self {
            Budget::Idp => "<= 3 calls, <= 10 CU",
            Budget::AdminPage => "<= 10 CU",
            Budget::None => "-",
        }
    }

    fn verdict(self, calls: u32, units: f64) -> &'static str {
        let ok = match self {
            Budget::Idp => calls <= 3 && units <= 10.0,
            Budget::AdminPage => units <= 10.0,
            Budget::None => return "-",
        };
        if ok {
            "PASS"
        } else {
            "OVER"
        }
    }
}

struct Row {
    name: String,
    calls: String,
    units: String,
    millis: String,
    budget: String,
    verdict: String,
}

/// What repeated runs of one request cost.
struct Stats {
    calls: u32,
    units: f64,
    /// Median latency.
    millis: f64,
    status: u16,
}

struct Bench {
    t: TestTable,
    admin_token: String,
    runs: usize,
    rows: Vec<Row>,
}

fn env_usize(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be a whole number, not {v:?}")),
        Err(_) => default,
    }
}

fn username(i: usize) -> String {
    format!("user{i:07}")
}

/// Percent-encodes a query parameter value (RFC 3986 unreserved kept).
fn enc(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.total_cmp(b));
    xs[xs.len() / 2]
}

/// The N users to load: every 7th inactive, every 50th a member of one of
/// `orgs`, each with an email and an external id (as an IdP provisions them).
/// Sizes of the groups the Groups rows measure member changes in (the
/// first k loaded users are their members; a group of 0 is made empty).
const GROUP_SIZES: [usize; 2] = [1_000, 10_000];

fn population(n: usize, orgs: &[directory::store::Org]) -> Vec<User> {
    (0..n)
        .map(|i| {
            let mut u = User::new(username(i));
            u.email = format!("{}@example.org", username(i));
            u.first_name = format!("First{i}");
            u.last_name = format!("Last{}", i % 997);
            u.external_id = Some(format!("ext-{i:07}"));
            u.groups = vec![Group::User];
            u.is_active = !i.is_multiple_of(7);
            // orgs[3..]: the groups of GROUP_SIZES.
            for (org, size) in orgs[3..].iter().zip(GROUP_SIZES) {
                if i < size {
                    u.memberships.push(Membership {
                        org_slug: org.slug.clone(),
                        org_id: org.id,
                        role: "worker".into(),
                        is_active: true,
                    });
                }
            }
            if i.is_multiple_of(50) {
                let org = &orgs[(i / 50) % 3];
                u.memberships.push(Membership {
                    org_slug: org.slug.clone(),
                    org_id: org.id,
                    role: "worker".into(),
                    is_active: true,
                });
            }
            u
        })
        .collect()
}

impl Bench {
    async fn new(runs: usize) -> Bench {
        let mut t = TestTable::with_profile(Profile::Odm).await;
        // DynamoDB Local answers a large query far slower than DynamoDB does
        // (seconds at 100,000 users): give each call time, so that what is
        // measured is the requests' cost. A request still ends at the 8 s
        // request budget, as in a function.
        let patient = directory::store::Budget {
            attempt: Duration::from_secs(30),
            operation: Duration::from_secs(60),
            ..directory::store::Budget::LAMBDA
        };
        let client = aws_sdk_dynamodb::Client::from_conf(
            directory::store::client::config_from_env(&patient)
                .await
                .build(),
        );
        t.store = Store::new(client, t.store.table());
        let admin = t.admin("bench-admin").await;
        let admin_token = t.token(&admin).await;
        Bench {
            t,
            admin_token,
            runs,
            rows: Vec::new(),
        }
    }

    /// Loads `n` users in chunks; returns how many are active.
    async fn load(&self, n: usize) -> u64 {
        let mut orgs = Vec::new();
        for slug in ["org-a", "org-b", "org-c", "group-1k", "group-10k"] {
            orgs.push(self.t.store.groups().create_org(slug, slug).await.unwrap());
        }
        let users = population(n, &orgs);
        let active = users.iter().filter(|u| u.is_active).count() as u64;
        let loader = Store::new(self.t.store.client().clone(), self.t.store.table());
        let started = Instant::now();
        let mut rest = users;
        while !rest.is_empty() {
            let tail = rest.split_off(rest.len().min(CHUNK));
            loader.users().import(rest).await.expect("import users");
            rest = tail;
            eprintln!(
                "    {} calls so far, {:.0} s",
                loader.metrics().calls(),
                started.elapsed().as_secs_f64()
            );
        }
        let m = loader.metrics();
        eprintln!(
            "==> loaded {n} users in {:.1} s: {} DynamoDB calls, {:.0} write capacity units",
            started.elapsed().as_secs_f64(),
            m.calls(),
            m.capacity_units()
        );
        active
    }

    /// The load must be what the APIs see: the per-bucket counts and the
    /// memberships (GSI1 is checked by [`floor`]'s full read, the claims by
    /// the lookups).
    async fn check_load(&self, n: usize, active: u64) {
        let mut members = 0;
        for slug in ["org-a", "org-b", "org-c"] {
            members += self
                .t
                .store
                .groups()
                .org_member_ids(slug)
                .await
                .unwrap()
                .len();
        }
        assert_eq!(members, n.div_ceil(50), "membership items after the load");
        let counts = self.t.store.counts().by_bucket().await.unwrap().counts();
        // + the admin, created through the API path.
        assert_eq!(
            (counts.total, counts.active),
            (n as u64 + 1, active + 1),
            "the per-bucket counts after the load"
        );
    }

    fn scim(&self, path_and_query: &str) -> Request {
        Req::new(Method::GET, path_and_query)
            .header("authorization", &format!("Bearer {}", self.admin_token))
            .build()
    }

    fn admin(&self, path_and_query: &str) -> Request {
        get(path_and_query).token(&self.admin_token).build()
    }

    async fn scim_list(&self, query: &str) -> Reply {
        self.t
            .call(
                scim::list,
                self.scim(&format!("/api/v1/scim/Users?{query}")),
            )
            .await
    }

    async fn admin_list(&self, query: &str) -> Reply {
        self.t
            .call(admin_api::list, self.admin(&format!("/api/users?{query}")))
            .await
    }

    /// Whether a request failed (not 200): then its row says so, with what
    /// the failed request cost, and it is not measured further. At 100,000
    /// users a request that reads the whole directory runs out of its time
    /// budget and answers 503.
    fn refused(&mut self, name: &str, r: &Reply) -> bool {
        if r.status.as_u16() == 200 {
            return false;
        }
        self.rows.push(Row {
            name: name.to_string(),
            calls: r.dynamodb_calls.to_string(),
            units: format!("{:.1}", r.capacity_units),
            millis: "-".into(),
            budget: "-".into(),
            verdict: format!("FAILED: answered {}", r.status.as_u16()),
        });
        true
    }

    /// Runs a request `runs` times: its calls and capacity (the largest
    /// seen; they do not vary), the median latency, and a status other than
    /// 200 if any run answered one.
    async fn measure<F, Fut>(&self, request: F) -> Stats
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Reply>,
    {
        let (mut calls, mut units, mut millis, mut status) = (0, 0f64, Vec::new(), 200);
        for _ in 0..self.runs {
            let started = Instant::now();
            let r = request().await;
            millis.push(started.elapsed().as_secs_f64() * 1000.0);
            calls = calls.max(r.dynamodb_calls);
            units = units.max(r.capacity_units);
            if r.status.as_u16() != 200 {
                status = r.status.as_u16();
            }
        }
        Stats {
            calls,
            units,
            millis: median(millis),
            status,
        }
    }

    fn push(&mut self, name: &str, budget: Budget, m: Stats) {
        let verdict = match m.status {
            200 => budget.verdict(m.calls, m.units).to_string(),
            status => format!("FAILED: answered {status}"),
        };
        self.rows.push(Row {
            name: name.to_string(),
            calls: m.calls.to_string(),
            units: format!("{:.1}", m.units),
            millis: format!("{:.1}", m.millis),
            budget: budget.describe().to_string(),
            verdict,
        });
    }

    fn print(&self, n: usize) {
        println!("\n#### {n} users (median of {} runs)\n", self.runs);
        println!("| request | calls | capacity units | median ms | budget | |");
        println!("|---|---|---|---|---|---|");
        for r in &self.rows {
            println!(
                "| {} | {} | {} | {} | {} | {} |",
                r.name, r.calls, r.units, r.millis, r.budget, r.verdict
            );
        }
    }
}

/// Names of the SCIM Users a page holds.
fn page_names(r: &Reply) -> Vec<String> {
    r.body["Resources"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|u| u["userName"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

async fn scim_pages(b: &mut Bench, listed: u64) {
    let last = (listed - 1) / PAGE as u64 * PAGE as u64 + 1;
    let middle = (listed / 2) / PAGE as u64 * PAGE as u64 + 1;
    for (label, start) in [("first", 1), ("middle", middle), ("last", last)] {
        let query = format!("startIndex={start}&count={PAGE}");
        let name = format!("SCIM `startIndex={start}&count={PAGE}` ({label} page)");
        let r = b.scim_list(&query).await;
        if b.refused(&name, &r) {
            continue;
        }
        // The page must be the right one: as many users as remain.
        let want = (listed + 1 - start).min(PAGE as u64) as usize;
        assert_eq!(page_names(&r).len(), want, "SCIM {query}");
        assert_eq!(r.body["totalResults"].as_u64(), Some(listed));
        let m = b.measure(|| b.scim_list(&query)).await;
        b.push(&name, Budget::Idp, m);
    }
}

async fn admin_pages(b: &mut Bench, total: u64) {
    let pages = total.div_ceil(PAGE as u64);
    for (label, page) in [("first", 1), ("middle", pages / 2), ("last", pages)] {
        let query = format!("page={page}&page_size={PAGE}");
        let name = format!("admin `page={page}&page_size={PAGE}` ({label}, `-id`)");
        let r = b.admin_list(&query).await;
        if b.refused(&name, &r) {
            continue;
        }
        assert_eq!(r.body["count"].as_u64(), Some(total), "admin {query}");
        let want = (total - (page - 1) * PAGE as u64).min(PAGE as u64) as usize;
        assert_eq!(r.body["results"].as_array().map(Vec::len), Some(want));
        let m = b.measure(|| b.admin_list(&query)).await;
        b.push(&name, Budget::AdminPage, m);
    }
}

/// The capacity of reading every user once: one full GSI1 query.
async fn floor(b: &Bench, total: u64) -> f64 {
    let reader = Store::new(b.t.store.client().clone(), b.t.store.table());
    let all = reader.users().all().await.unwrap();
    assert_eq!(all.len() as u64, total);
    reader.metrics().capacity_units()
}

/// What a walk over every listed user cost.
#[derive(Default)]
struct Walk {
    pages: u32,
    calls: u32,
    units: f64,
    seen: u64,
    /// The costliest page: (calls, capacity units).
    worst: (u32, f64),
    /// Stopped at the time limit before the end.
    cut_short: bool,
    /// A page answered this status instead of 200: the walk ended there.
    failed: Option<u16>,
}

/// Pages through the list from `first`, each next query given by `next`
/// (from the page and the query that fetched it; `None` at the end). Stops
/// early after `limit`: a walk that costs more per page the deeper it goes
/// would take hours at 100,000 users, and its cost is known long before.
async fn walk(
    b: &Bench,
    first: String,
    next: impl Fn(&Reply) -> Option<String>,
    limit: Duration,
) -> (Walk, Duration) {
    let started = Instant::now();
    let mut w = Walk::default();
    let mut query = first;
    loop {
        let r = b.scim_list(&query).await;
        if r.status.as_u16() != 200 {
            w.failed = Some(r.status.as_u16());
            break;
        }
        w.pages += 1;
        w.calls += r.dynamodb_calls;
        w.units += r.capacity_units;
        w.worst = (
            w.worst.0.max(r.dynamodb_calls),
            w.worst.1.max(r.capacity_units),
        );
        w.seen += page_names(&r).len() as u64;
        match next(&r) {
            Some(q) if started.elapsed() < limit => query = q,
            Some(_) => {
                w.cut_short = true;
                break;
            }
            None => break,
        }
    }
    (w, started.elapsed())
}

/// An Okta-style import: `startIndex` pages of 100 until `totalResults`.
async fn index_import(b: &mut Bench, name: &str, listed: u64, floor: f64, limit: Duration) {
    let first = format!("startIndex=1&count={PAGE}");
    let next = |r: &Reply| {
        let start = r.body["startIndex"].as_u64()? + PAGE as u64;
        (start <= r.body["totalResults"].as_u64()?)
            .then(|| format!("startIndex={start}&count={PAGE}"))
    };
    let (w, took) = walk(b, first, next, limit).await;
    walk_rows(b, name, &w, took, listed, floor);
}

/// A cursor walk (RFC 9865 `cursor`, `nextCursor`), when the handler has it.
async fn cursor_walk(b: &mut Bench, listed: u64, floor: f64, limit: Duration) {
    let first = format!("cursor&count={PAGE}");
    let probe =
        b.t.call(scim::list, b.scim(&format!("/api/v1/scim/Users?{first}")))
            .await;
    if probe.status.as_u16() != 200 || probe.body.get("nextCursor").is_none() {
        b.rows.push(Row {
            name: "full cursor walk (`cursor`)".into(),
            calls: "-".into(),
            units: "-".into(),
            millis: "-".into(),
            budget: "-".into(),
            verdict: format!(
                "not supported (status {}, no `nextCursor`)",
                probe.status.as_u16()
            ),
        });
        return;
    }
    let next = |r: &Reply| {
        let cursor = r
            .body
            .get("nextCursor")?
            .as_str()
            .filter(|c| !c.is_empty())?;
        Some(format!("cursor={}&count={PAGE}", enc(cursor)))
    };
    let (w, took) = walk(b, first, next, limit).await;
    walk_rows(b, "full cursor walk (`cursor`)", &w, took, listed, floor);
}

/// A walk's totals against the floor, and its costliest page against the
/// IdP budget. A walk cut short is OVER once what it spent so far is.
fn walk_rows(b: &mut Bench, name: &str, w: &Walk, took: Duration, listed: u64, floor: f64) {
    let ratio = w.units / floor;
    let (pages, verdict) = if let Some(status) = w.failed {
        (
            format!("{} pages, then a page answered {status}", w.pages),
            format!("FAILED: answered {status}"),
        )
    } else if w.cut_short {
        (
            format!(
                "{} pages, stopped at the time limit with {} of {listed} users",
                w.pages, w.seen
            ),
            if ratio > 1.5 {
                "OVER"
            } else {
                "unknown (cut short)"
            }
            .to_string(),
        )
    } else {
        assert_eq!(w.seen, listed, "{name} saw every listed user");
        (
            format!("{} pages", w.pages),
            if ratio <= 1.5 { "PASS" } else { "OVER" }.to_string(),
        )
    };
    b.rows.push(Row {
        name: format!("{name}: total of {pages}; floor {floor:.1} CU"),
        calls: w.calls.to_string(),
        units: format!("{:.1} ({ratio:.2}x floor)", w.units),
        millis: format!("{:.0} (all pages)", took.as_secs_f64() * 1000.0),
        budget: "<= 1.5x floor".into(),
        verdict,
    });
    b.rows.push(Row {
        name: format!("{name}: its costliest page"),
        calls: w.worst.0.to_string(),
        units: format!("{:.1}", w.worst.1),
        millis: "-".into(),
        budget: Budget::Idp.describe().into(),
        verdict: Budget::Idp.verdict(w.worst.0, w.worst.1).into(),
    });
}

async fn lookups(b: &mut Bench, n: usize) {
    // The middle user, or the next active one (every 7th is inactive).
    let i = (n / 2 + 1..)
        .find(|i| !i.is_multiple_of(7))
        .expect("an active user");
    let name = username(i);
    let id =
        b.t.store
            .claims()
            .owner(directory::store::UniqueField::Username, &name)
            .await
            .unwrap()
            .expect("the middle user");
    for filter in [
        format!("userName eq \"{name}\""),
        format!("emails.value eq \"{name}@example.org\""),
        format!("externalId eq \"ext-{i:07}\""),
        format!("id eq \"{id}\""),
    ] {
        let query = format!("filter={}", enc(&filter));
        let label = format!("SCIM `filter={filter}`");
        let r = b.scim_list(&query).await;
        if b.refused(&label, &r) {
            continue;
        }
        assert_eq!(page_names(&r), vec![name.clone()], "SCIM {filter}");
        let m = b.measure(|| b.scim_list(&query)).await;
        b.push(&label, Budget::Idp, m);
    }
    let admin_filter = format!("{{\"==\":[{{\"var\":\"username\"}},\"{name}\"]}}");
    for (label, query) in [
        (
            format!("admin `search={name}`"),
            format!("search={name}&page_size={PAGE}"),
        ),
        (
            format!("admin `filter={admin_filter}`"),
            format!("filter={}&page_size={PAGE}", enc(&admin_filter)),
        ),
    ] {
        let r = b.admin_list(&query).await;
        if b.refused(&label, &r) {
            continue;
        }
        assert_eq!(r.body["count"].as_u64(), Some(1), "{label}: {}", r.raw);
        let m = b.measure(|| b.admin_list(&query)).await;
        b.push(&label, Budget::None, m);
    }
    // The passes those requests make, without the 8 s request budget (a
    // request that ran out of time above still shows what its pass costs):
    // the search index, and GSI1 as before it.
    for (label, gsi1) in [
        ("a pass over the search index (no request budget)", false),
        ("a pass over GSI1 (no request budget)", true),
    ] {
        let reader = Store::new(b.t.store.client().clone(), b.t.store.table());
        let started = Instant::now();
        if gsi1 {
            reader.users().all().await.unwrap();
        } else {
            reader.users().search_index().await.unwrap();
        }
        let metrics = reader.metrics();
        b.rows.push(Row {
            name: label.into(),
            calls: metrics.calls().to_string(),
            units: format!("{:.1}", metrics.capacity_units()),
            millis: format!("{:.0}", started.elapsed().as_secs_f64() * 1000.0),
            budget: "-".into(),
            verdict: "-".into(),
        });
    }
    let query = format!("sort=username&page_size={PAGE}");
    let label = "admin `sort=username` (first page)";
    let r = b.admin_list(&query).await;
    if b.refused(label, &r) {
        return;
    }
    assert_eq!(r.body["results"][0]["username"], "bench-admin");
    let m = b.measure(|| b.admin_list(&query)).await;
    b.push(label, Budget::AdminPage, m);
}

#[tokio::main]
async fn main() {
    let n = env_usize("N", 10_000);
    let runs = env_usize("RUNS", 3).max(1);
    assert!(n >= 2 * PAGE, "N must be at least {}", 2 * PAGE);
    let mut b = Bench::new(runs).await;
    let active = b.load(n).await;
    b.check_load(n, active).await;
    // odm lists show active users only; the admin list shows everyone.
    let (listed, total) = (active + 1, n as u64 + 1);
    scim_pages(&mut b, listed).await;
    admin_pages(&mut b, total).await;
    lookups(&mut b, n).await;
    let floor = floor(&b, total).await;
    let limit = Duration::from_secs(env_usize("WALK_SECONDS", 300) as u64);
    index_import(
        &mut b,
        "full index import (`startIndex`)",
        listed,
        floor,
        limit,
    )
    .await;
    cursor_walk(&mut b, listed, floor, limit).await;
    // The `rfc` profile lists inactive users too: no gaps in the buckets.
    b.t.profile = directory::http::Profile::Rfc;
    index_import(
        &mut b,
        "full index import (`startIndex`), `rfc` profile",
        total,
        floor,
        limit,
    )
    .await;
    groups(&mut b, n).await;
    rfc_queries(&mut b, n).await;
    tenants(&mut b, env_usize("TENANT_N", 5_000)).await;
    b.print(n);
}

/// Two tenants of `per_tenant` users each (every 7th inactive), loaded
/// beside the directory: tenant A's own token at its base pays for its own
/// users only, whatever B and the directory hold.
async fn tenants(b: &mut Bench, per_tenant: usize) {
    b.t.profile = directory::http::Profile::Odm;
    let mut tokens = Vec::new();
    for slug in ["tenant-a", "tenant-b"] {
        let org = b.t.store.groups().create_org(slug, slug).await.unwrap();
        let users: Vec<User> = (0..per_tenant)
            .map(|i| {
                let name = format!("{slug}-{i:06}@{slug}.example.com");
                let mut u = User::new(&name);
                u.email = name;
                u.external_id = Some(format!("{slug}-ext-{i:06}"));
                u.groups = vec![Group::User];
                u.is_active = !i.is_multiple_of(7);
                u.idp_owned = true;
                u.owner = Some(org.id);
                u.memberships.push(Membership {
                    org_slug: org.slug.clone(),
                    org_id: org.id,
                    role: "worker".into(),
                    is_active: true,
                });
                u
            })
            .collect();
        b.t.store
            .users()
            .import(users)
            .await
            .expect("import a tenant");
        let tenant = b.t.store.tenants().get(slug).await.unwrap().unwrap();
        let spec = directory::store::TokenSpec {
            read_only: false,
            expires_at: None,
        };
        let token = directory::auth::mint_tenant_token(&b.t.store, &tenant, &spec)
            .await
            .unwrap();
        tokens.push(token);
    }
    let token = tokens[0].clone();
    let list = |query: String| {
        let token = token.clone();
        let t = &b.t;
        async move {
            let req = Req::new(
                Method::GET,
                &format!("/api/v1/scim/orgs/tenant-a/Users?{query}"),
            )
            .header("authorization", &format!("Bearer {token}"))
            .build();
            t.call(scim::list, req).await
        }
    };
    let listed = (0..per_tenant).filter(|i| !i.is_multiple_of(7)).count() as u64;
    let last = (listed - 1) / PAGE as u64 * PAGE as u64 + 1;
    let middle = (listed / 2) / PAGE as u64 * PAGE as u64 + 1;
    let mut rows = Vec::new();
    for (label, start) in [("first", 1), ("middle", middle), ("last", last)] {
        let query = format!("startIndex={start}&count={PAGE}");
        let r = list(query.clone()).await;
        assert_eq!(r.body["totalResults"].as_u64(), Some(listed), "{}", r.raw);
        let want = (listed + 1 - start).min(PAGE as u64) as usize;
        assert_eq!(page_names(&r).len(), want, "tenant {query}");
        let m = b.measure(|| list(query.clone())).await;
        rows.push((
            format!("2 tenants of {per_tenant}: tenant `startIndex={start}&count={PAGE}` ({label} page)"),
            m,
        ));
    }
    for (label, filter) in [
        (
            "userName",
            "userName eq \"tenant-a-000042@tenant-a.example.com\"",
        ),
        ("externalId", "externalId eq \"tenant-a-ext-000042\""),
        (
            "B's userName",
            "userName eq \"tenant-b-000042@tenant-b.example.com\"",
        ),
    ] {
        let query = format!("filter={}", enc(filter));
        let m = b.measure(|| list(query.clone())).await;
        rows.push((format!("2 tenants of {per_tenant}: tenant {label} eq"), m));
    }
    let m = b.measure(|| list(format!("count={PAGE}&cursor"))).await;
    rows.push((format!("2 tenants of {per_tenant}: tenant cursor page"), m));
    for (name, m) in rows {
        b.push(&name, Budget::Idp, m);
    }
}

/// The `rfc` grammar's queries: an `or` of two pinned lookups (two keys in
/// the auth read), a delta sync with 10 of N users changed (the index of
/// changes, then those 10 by key), and, for comparison, what a pass costs:
/// a `co` filter and a sorted page.
async fn rfc_queries(b: &mut Bench, n: usize) {
    let (a, c) = (username(n / 3 + 1), username(2 * n / 3 + 1));
    let filter = format!("userName eq \"{a}\" or userName eq \"{c}\"");
    let query = format!("filter={}", enc(&filter));
    let label = format!("SCIM `filter={filter}` (an `or` of two pinned lookups)");
    let r = b.scim_list(&query).await;
    if !b.refused(&label, &r) {
        assert_eq!(page_names(&r), vec![a.clone(), c.clone()], "SCIM {filter}");
        let m = b.measure(|| b.scim_list(&query)).await;
        b.push(&label, Budget::Idp, m);
    }

    // A second boundary between the load and the changes: the index is
    // read to the second, so nothing loaded shares the changes' second.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let since = directory::domain::user::format_time(&chrono::Utc::now());
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (mut changed, mut active) = (Vec::new(), 0);
    for k in 0..10 {
        let i = k * (n / 10) + 1;
        let name = username(i);
        active += usize::from(!i.is_multiple_of(7));
        let id =
            b.t.store
                .claims()
                .owner(directory::store::UniqueField::Username, &name)
                .await
                .unwrap()
                .expect("a loaded user");
        let body = serde_json::json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "displayName", "value": format!("Changed {k}")}]
        });
        let r =
            b.t.call(
                scim::patch,
                directory_tests::scim(Method::PATCH, &format!("/api/v1/scim/Users/{id}"), &body)
                    .header("authorization", &format!("Bearer {}", b.admin_token))
                    .build(),
            )
            .await;
        assert_eq!(r.status.as_u16(), 200, "{}", r.raw);
        changed.push(name);
    }
    for (filter, label, want) in [
        (
            format!("meta.lastModified gt \"{since}\""),
            format!("SCIM delta sync `filter=meta.lastModified gt \"<t>\"` (10 of {n} changed)"),
            10,
        ),
        (
            format!("meta.lastModified gt \"{since}\" and active eq true"),
            format!("SCIM delta sync `… and active eq true` (10 of {n} changed, {active} active)"),
            active,
        ),
    ] {
        let query = format!("filter={}", enc(&filter));
        let r = b.scim_list(&query).await;
        if b.refused(&label, &r) {
            continue;
        }
        let mut got = page_names(&r);
        got.retain(|u| changed.contains(u));
        assert_eq!(got.len(), want, "{label}: {}", r.raw);
        let m = b.measure(|| b.scim_list(&query)).await;
        b.push(&label, Budget::Idp, m);
    }
    for (query, label) in [
        (
            format!("filter={}&count={PAGE}", enc("userName co \"r00001\"")),
            "SCIM `filter=userName co \"r00001\"` (a pass over GSI1)".to_string(),
        ),
        (
            format!("sortBy=userName&sortOrder=descending&count={PAGE}"),
            format!("SCIM `sortBy=userName&sortOrder=descending&count={PAGE}` (a pass over GSI1)"),
        ),
    ] {
        let r = b.scim_list(&query).await;
        if b.refused(&label, &r) {
            continue;
        }
        let m = b.measure(|| b.scim_list(&query)).await;
        b.push(&label, Budget::None, m);
    }
}

/// SCIM Groups: adding one member to a group of 0, 1,000 and 10,000
/// members (the same calls and units at every size), and reading a whole
/// member list.
async fn groups(b: &mut Bench, n: usize) {
    let empty =
        b.t.store
            .groups()
            .create_org("group-0", "group-0")
            .await
            .unwrap();
    let sized = [
        (0, empty.id),
        (
            GROUP_SIZES[0].min(n),
            b.t.store
                .groups()
                .org("group-1k")
                .await
                .unwrap()
                .unwrap()
                .id,
        ),
        (
            GROUP_SIZES[1].min(n),
            b.t.store
                .groups()
                .org("group-10k")
                .await
                .unwrap()
                .unwrap()
                .id,
        ),
    ];
    for (size, id) in sized {
        let newcomer = b.t.user(&format!("newcomer{size}")).await;
        let body = serde_json::json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "add", "path": "members", "value": [{"value": newcomer.id.to_string()}]}]
        });
        let started = Instant::now();
        let r =
            b.t.call(
                scim::groups::patch,
                directory_tests::scim(Method::PATCH, &format!("/api/v1/scim/Groups/{id}"), &body)
                    .header("authorization", &format!("Bearer {}", b.admin_token))
                    .build(),
            )
            .await;
        let stats = Stats {
            calls: r.dynamodb_calls,
            units: r.capacity_units,
            millis: started.elapsed().as_secs_f64() * 1000.0,
            status: if r.status.as_u16() == 204 {
                200
            } else {
                r.status.as_u16()
            },
        };
        b.push(
            &format!("Group PATCH adding 1 member to a group of {size}"),
            Budget::Idp,
            stats,
        );
    }
    let (size, id) = sized[2];
    let m = b
        .measure(|| {
            b.t.call(
                scim::groups::get,
                b.scim(&format!("/api/v1/scim/Groups/{id}")),
            )
        })
        .await;
    b.push(
        &format!("GET Group with all {} members", size + 1),
        Budget::None,
        m,
    );
    let m = b
        .measure(|| {
            b.t.call(
                scim::groups::get,
                b.scim(&format!(
                    "/api/v1/scim/Groups/{id}?excludedAttributes=members"
                )),
            )
        })
        .await;
    b.push("GET Group, `excludedAttributes=members`", Budget::Idp, m);
}
