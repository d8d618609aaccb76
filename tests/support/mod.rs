//! Test support: a fresh table on the DynamoDB Local at `DYNAMODB_ENDPOINT`
//! per test, users and tokens made through the real store, and requests
//! shaped the way API Gateway hands them to a function.
use std::collections::HashMap;
use std::future::Future;

use base64::Engine;
use directory::auth;
use directory::domain::user::{Group, User};
use directory::http::{self, Ctx, Profile};
use directory::store::{table, Store, TokenSpec};
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, RequestExt, Response};
use serde_json::Value;

pub use credentials::Credential;
pub mod credentials;
pub mod faults;
pub mod iam;
pub mod receiver;

pub struct TestTable {
    pub store: Store,
    /// The SCIM profile handlers run with (default `odm`).
    pub profile: Profile,
}

impl TestTable {
    /// A new, empty table with a unique name (without the stream: see
    /// [`TestTable::streaming`]).
    pub async fn new() -> TestTable {
        TestTable::create(Profile::Odm, false).await
    }

    /// A new table as `usersctl table create` makes it, its stream on, for
    /// the tests that read the stream (change events). The other tests' tables
    /// have none: DynamoDB Local makes every write a little slower with one,
    /// which the contention tests (tests/failures.rs) feel on a busy machine.
    pub async fn streaming(profile: Profile) -> TestTable {
        TestTable::create(profile, true).await
    }

    async fn create(profile: Profile, stream: bool) -> TestTable {
        let endpoint = std::env::var("DYNAMODB_ENDPOINT").unwrap_or_default();
        assert!(
            !endpoint.is_empty(),
            "integration tests need DynamoDB Local: run them with `make test`, \
             or set DYNAMODB_ENDPOINT=http://localhost:8000"
        );
        let client = directory::store::client_from_env().await;
        let table = format!("test-{}", uuid::Uuid::new_v4());
        if stream {
            table::create_table(&client, &table)
                .await
                .expect("create the test table");
        } else {
            table::table_definition(&client, &table)
                .set_stream_specification(None)
                .send()
                .await
                .expect("create the test table");
            client
                .update_time_to_live()
                .table_name(&table)
                .time_to_live_specification(table::time_to_live())
                .send()
                .await
                .expect("turn the test table's TTL on");
        }
        TestTable {
            store: Store::new(client, table),
            profile,
        }
    }

    /// The same kind of table, for handlers running in `profile`.
    pub async fn with_profile(profile: Profile) -> TestTable {
        TestTable::create(profile, false).await
    }

    /// A fresh table whose store talks to DynamoDB Local through `Faults`, with
    /// `budget`'s time limits (the table is made with a healthy client, so the
    /// faults see only the test's own calls).
    pub async fn faulty(
        profile: Profile,
        budget: directory::store::Budget,
    ) -> (TestTable, faults::Faults) {
        let healthy = TestTable::with_profile(profile).await;
        let faults = faults::Faults::new();
        let config = faults.install(directory::store::client::config_from_env(&budget).await);
        let client = aws_sdk_dynamodb::Client::from_conf(config.build());
        let store = Store::new(client, healthy.store.table()).with_budget(budget);
        (TestTable { store, profile }, faults)
    }

    /// The same table, for handlers whose DynamoDB client holds to the
    /// declaration of function (binary) `function`: every call outside it fails
    /// and is logged in the [`iam::Guard`]. This table's own store stays
    /// unguarded, for setting up and inspecting.
    pub async fn guarded(&self, function: &str) -> (TestTable, iam::Guard) {
        let guard = iam::Guard::for_binary(function, self.store.table());
        (self.guarded_by(&guard).await, guard)
    }

    /// [`TestTable::guarded`] with a declaration of the test's own.
    pub async fn guarded_by(&self, guard: &iam::Guard) -> TestTable {
        let budget = directory::store::Budget::from_env();
        let config = guard.install(directory::store::client::config_from_env(&budget).await);
        let client = aws_sdk_dynamodb::Client::from_conf(config.build());
        TestTable {
            store: Store::new(client, self.store.table()),
            profile: self.profile,
        }
    }

    /// A stored, active user in group `user`.
    pub async fn user(&self, username: &str) -> User {
        let mut u = User::new(username);
        u.email = format!("{}@example.org", username.to_lowercase());
        u.first_name = format!("First {username}");
        u.last_name = "Tester".into();
        u.groups = vec![Group::User];
        self.store.users().create(u).await.expect("create user")
    }

    /// A stored superuser admin.
    pub async fn admin(&self, username: &str) -> User {
        let mut u = User::new(username);
        u.groups = vec![Group::Admin];
        u.is_staff = true;
        u.is_superuser = true;
        self.store.users().create(u).await.expect("create admin")
    }

    pub async fn with_password(&self, user: &User, password: &str) -> User {
        let fresh = self.fresh(user.id).await;
        let mut changed = fresh.clone();
        changed.password_hash = Some(auth::hash_password(password));
        self.store.users().update(&fresh, changed).await.unwrap()
    }

    pub async fn token_with(&self, user: &User, spec: TokenSpec) -> String {
        let fresh = self.fresh(user.id).await;
        let token = auth::generate_token(user.id);
        self.store
            .tokens()
            .add(&fresh, &auth::hash_token(&token), &spec)
            .await
            .expect("store token");
        token
    }

    pub async fn token(&self, user: &User) -> String {
        self.token_with(
            user,
            TokenSpec {
                read_only: false,
                expires_at: None,
            },
        )
        .await
    }

    pub async fn fresh(&self, id: u64) -> User {
        self.store
            .users()
            .get(id)
            .await
            .unwrap()
            .expect("user exists")
    }

    /// Every item whose partition key starts with `prefix` (a test-only scan).
    pub async fn items_with_prefix(
        &self,
        prefix: &str,
    ) -> Vec<HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
        let out = self
            .store
            .client()
            .scan()
            .table_name(self.store.table())
            .filter_expression("begins_with(pk, :p)")
            .expression_attribute_values(
                ":p",
                aws_sdk_dynamodb::types::AttributeValue::S(prefix.into()),
            )
            .send()
            .await
            .unwrap();
        out.items().to_vec()
    }

    /// Edits one stored item behind the store's back (an old record, a
    /// partial write, time passing): an `UpdateItem` with `expression`.
    pub async fn edit_item(
        &self,
        (pk, sk): (String, &str),
        expression: &str,
        names: &[(&str, &str)],
        values: &[(&str, aws_sdk_dynamodb::types::AttributeValue)],
    ) {
        let mut update = self
            .store
            .client()
            .update_item()
            .table_name(self.store.table())
            .set_key(Some(directory::store::table::key(pk, sk)))
            .update_expression(expression);
        for (name, attr) in names {
            update = update.expression_attribute_names(*name, *attr);
        }
        for (name, value) in values {
            update = update.expression_attribute_values(*name, value.clone());
        }
        update.send().await.expect("edit the item");
    }

    /// Runs `handler` on `req` as the Lambda runtime would, returning the response
    /// and how many DynamoDB round trips it made.
    pub async fn call<F, Fut>(&self, handler: F, req: Request) -> Reply
    where
        F: Fn(Ctx, Request) -> Fut + Sync,
        Fut: Future<Output = Response<Body>>,
    {
        let calls = std::sync::Arc::new(std::sync::Mutex::new((0u32, 0f64)));
        let seen = calls.clone();
        let base = Ctx::new(self.store.clone(), self.profile);
        let resp = http::dispatch(&base, req, |ctx: Ctx, req| {
            let seen = seen.clone();
            let fut = Box::pin(handler(ctx.clone(), req));
            async move {
                let resp = fut.await;
                let m = ctx.store.metrics();
                *seen.lock().unwrap() = (m.calls(), m.capacity_units());
                resp
            }
        })
        .await;
        let (calls, capacity) = *calls.lock().unwrap();
        Reply::new(resp, calls, capacity)
    }
}

/// A request as API Gateway (HTTP API, payload 2.0) delivers it.
pub struct Req {
    method: Method,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    body: Option<String>,
    id_param: Option<String>,
}

pub fn get(path: &str) -> Req {
    Req::new(Method::GET, path)
}

pub fn patch(path: &str, body: &Value) -> Req {
    Req::new(Method::PATCH, path)
        .header("content-type", "application/json")
        .raw_body(&body.to_string())
}

pub fn delete(path: &str) -> Req {
    Req::new(Method::DELETE, path)
}

/// A request with a SCIM JSON body.
pub fn scim(method: Method, path: &str, body: &Value) -> Req {
    Req::new(method, path)
        .header("content-type", "application/scim+json")
        .raw_body(&body.to_string())
}

/// A table with an admin (`provisioner`) and an API token of it: what an
/// identity provider calls the SCIM API with.
pub struct Provisioner {
    pub t: TestTable,
    pub token: String,
}

impl Provisioner {
    pub async fn new(profile: Profile) -> Provisioner {
        Provisioner::on(TestTable::with_profile(profile).await).await
    }

    /// On a table with its stream on ([`TestTable::streaming`]).
    pub async fn streaming(profile: Profile) -> Provisioner {
        Provisioner::on(TestTable::streaming(profile).await).await
    }

    async fn on(t: TestTable) -> Provisioner {
        let admin = t.admin("provisioner").await;
        let token = t.token(&admin).await;
        Provisioner { t, token }
    }

    /// A request with the provisioner's bearer token (and a SCIM body, if any).
    pub fn req(&self, method: Method, path: &str, body: Option<&Value>) -> Req {
        let req = match body {
            Some(b) => scim(method, path, b),
            None => Req::new(method, path),
        };
        req.header("authorization", &format!("Bearer {}", self.token))
    }
}

impl Req {
    pub fn new(method: Method, path: &str) -> Req {
        let (path, query) = path.split_once('?').unwrap_or((path, ""));
        // Detail routes carry `{id}` as a path parameter, as the router sets it.
        // Under a tenant base (`/api/v1/scim/orgs/{slug}/…`) as under the global one.
        let scim_path = match path.strip_prefix("/api/v1/scim/orgs/") {
            Some(rest) => rest.split_once('/').map_or(path, |(_, r)| r),
            None => path,
        };
        let scim_path = if scim_path == path {
            path.to_string()
        } else {
            format!("/api/v1/scim/{scim_path}")
        };
        let id_param = path
            .strip_prefix("/api/users/")
            .or_else(|| scim_path.strip_prefix("/api/v1/scim/Users/"))
            .or_else(|| scim_path.strip_prefix("/api/v1/scim/Groups/"))
            .filter(|rest| !matches!(*rest, "self" | ".search") && !rest.contains('/'))
            .map(str::to_string);
        Req {
            method,
            path: path.to_string(),
            query: query.to_string(),
            headers: vec![("host".into(), "testserver".into())],
            body: None,
            id_param,
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Req {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    pub fn token(self, token: &str) -> Req {
        self.header("authorization", &format!("Token {token}"))
    }

    pub fn basic(self, username: &str, password: &str) -> Req {
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
        self.header("authorization", &format!("Basic {encoded}"))
    }

    pub fn raw_body(mut self, body: &str) -> Req {
        self.body = Some(body.to_string());
        self
    }

    pub fn build(self) -> Request {
        let uri = if self.query.is_empty() {
            format!("http://testserver{}", self.path)
        } else {
            format!("http://testserver{}?{}", self.path, self.query)
        };
        let mut builder = lambda_http::http::Request::builder()
            .method(self.method)
            .uri(uri);
        for (k, v) in &self.headers {
            builder = builder.header(k, v);
        }
        let body = self.body.map(Body::Text).unwrap_or(Body::Empty);
        let req: Request = builder.body(body).unwrap();
        match self.id_param {
            Some(id) => req.with_path_parameters(HashMap::from([("id".to_string(), id)])),
            None => req,
        }
    }
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: lambda_http::http::HeaderMap,
    pub body: Value,
    pub raw: String,
    pub dynamodb_calls: u32,
    /// Capacity units DynamoDB reported for the request (`ReturnConsumedCapacity`).
    pub capacity_units: f64,
}

impl Reply {
    fn new(resp: Response<Body>, calls: u32, capacity_units: f64) -> Reply {
        let (parts, body) = resp.into_parts();
        let raw = match body {
            Body::Text(t) => t,
            Body::Binary(b) => String::from_utf8(b).unwrap(),
            _ => String::new(),
        };
        Reply {
            status: parts.status,
            headers: parts.headers,
            body: serde_json::from_str(&raw).unwrap_or(Value::Null),
            raw,
            dynamodb_calls: calls,
            capacity_units,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Fails with the body in the message, so a wrong status explains itself.
    pub fn expect(&self, status: u16) -> &Value {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.raw);
        &self.body
    }
}
