//! The receivers of change events and the deliveries kept for them. What
//! `store.subscribers()` does.
//!
//! Items:
//! - `SUBSCRIBERS / SUB#<id>`: a receiver: its URL, the org it is limited to,
//!   the bearer secret it expects (never shown back, never in an event), and
//!   whether deliveries to it are failing (`failures`, `retry_at`);
//! - `DELIVERY#<id> / <position>`: a Security Event Token that could not be
//!   delivered to subscriber `<id>` (the receiver was down, or refused it),
//!   kept signed as it was first sent, so that a later attempt carries the
//!   same `jti`. Positions sort in stream order (`table::delivery_position`),
//!   and each item expires ([`KEEP_DELIVERIES_SECS`]) through the table's TTL.
//!
//! None of these items produces a change event (`events::change`).
use aws_sdk_dynamodb::types::{AttributeValue, ReturnConsumedCapacity, ReturnValue};
use chrono::{DateTime, Utc};

use super::table::{self, key, n, s, Item};
use super::{Result, Store, StoreError};
use crate::domain::user::{format_time, now, parse_time};

/// How long a delivery that could not be made is kept for `usersctl events
/// replay` and the publisher's own retries: 14 days.
pub const KEEP_DELIVERIES_SECS: i64 = 14 * 24 * 3600;

/// A receiver of change events (RFC 8935 push).
#[derive(Clone, PartialEq)]
pub struct Subscriber {
    pub id: String,
    /// Where SETs are POSTed: `https://…`, or `http://` to a loopback address.
    pub url: String,
    /// Only the events of this org (its slug); `None`: every event.
    pub org: Option<String>,
    /// That org's id, which the users it owns (provisioned under its SCIM
    /// tenant base) carry: their events are the org's too.
    pub org_id: Option<u64>,
    /// Sent as `Authorization: Bearer <secret>` when set.
    pub secret: Option<String>,
    pub created: DateTime<Utc>,
    /// Deliveries that failed in a row (0 while it answers).
    pub failures: u32,
    /// Epoch seconds before which the publisher does not try it again, but
    /// keeps its deliveries (backoff after failures).
    pub retry_at: Option<i64>,
}

impl std::fmt::Debug for Subscriber {
    // The secret stays out of logs and panics.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscriber")
            .field("id", &self.id)
            .field("url", &self.url)
            .field("org", &self.org)
            .field("secret", &self.secret.as_ref().map(|_| "…"))
            .field("failures", &self.failures)
            .field("retry_at", &self.retry_at)
            .finish()
    }
}

impl Subscriber {
    fn from_item(item: &Item) -> Option<Subscriber> {
        Some(Subscriber {
            id: table::get_s(item, "id")?.to_string(),
            url: table::get_s(item, "url")?.to_string(),
            org: table::get_s(item, "org").map(str::to_string),
            org_id: table::get_n(item, "org_id"),
            secret: table::get_s(item, "secret").map(str::to_string),
            created: table::get_s(item, "created").and_then(parse_time)?,
            failures: table::get_n(item, "failures").unwrap_or(0),
            retry_at: table::get_n(item, "retry_at"),
        })
    }
}

/// Why a delivery is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    /// The receiver did not take it (no answer, 5xx, 429): retried by the
    /// publisher once the receiver's backoff has passed, and by `replay`.
    Pending,
    /// The receiver answered it with a 4xx (RFC 8935 §2.4: the SET itself was
    /// refused): not retried on its own, only by `replay`.
    Refused,
}

impl DeliveryStatus {
    fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Refused => "refused",
        }
    }
}

/// One SET kept for one subscriber.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub subscriber: String,
    /// Its place in stream order among the subscriber's deliveries.
    pub position: String,
    /// The signed SET, as first sent.
    pub token: String,
    pub jti: String,
    /// `sub_id.uri` of the SET (`/Users/7`), for operators.
    pub subject: String,
    pub status: DeliveryStatus,
    /// The last failure, in words (`503`, `timed out`, `400 invalid_request`).
    pub error: String,
    pub attempts: u32,
}

impl Delivery {
    fn to_item(&self) -> Item {
        let (pk, sk) = table::delivery(&self.subscriber, &self.position);
        let mut item = key(pk, sk);
        item.insert("token".into(), s(&self.token));
        item.insert("jti".into(), s(&self.jti));
        item.insert("subject".into(), s(&self.subject));
        item.insert("status".into(), s(self.status.as_str()));
        item.insert("error".into(), s(&self.error));
        item.insert("attempts".into(), n(self.attempts));
        item.insert("kept_at".into(), s(format_time(&now())));
        item.insert(
            table::TTL.into(),
            n(Utc::now().timestamp() + KEEP_DELIVERIES_SECS),
        );
        item
    }

    fn from_item(subscriber: &str, item: &Item) -> Option<Delivery> {
        Some(Delivery {
            subscriber: subscriber.to_string(),
            position: table::get_s(item, table::SK)?.to_string(),
            token: table::get_s(item, "token")?.to_string(),
            jti: table::get_s(item, "jti").unwrap_or_default().to_string(),
            subject: table::get_s(item, "subject")
                .unwrap_or_default()
                .to_string(),
            status: match table::get_s(item, "status") {
                Some("refused") => DeliveryStatus::Refused,
                _ => DeliveryStatus::Pending,
            },
            error: table::get_s(item, "error").unwrap_or_default().to_string(),
            attempts: table::get_n(item, "attempts").unwrap_or(1),
        })
    }
}

/// Subscribers and their kept deliveries: what `store.subscribers()` reads
/// and writes. It touches the subscriber items (`SUBSCRIBERS` / `SUB#<id>`)
/// and the delivery items (`DELIVERY#<id>` / `<position>`), nothing else.
#[derive(Clone, Copy)]
pub struct Subscribers<'a> {
    store: &'a Store,
}

impl Store {
    pub fn subscribers(&self) -> Subscribers<'_> {
        Subscribers { store: self }
    }
}

impl Subscribers<'_> {
    /// Adds a subscriber with a new random id. An org-scoped one records the
    /// org's id as well (one read of the org; `NotFound` when there is none).
    pub async fn add(
        &self,
        url: &str,
        org: Option<&str>,
        secret: Option<&str>,
    ) -> Result<Subscriber> {
        let org_id = match org {
            Some(slug) => Some(
                self.store
                    .groups()
                    .org(slug)
                    .await?
                    .ok_or(StoreError::NotFound)?
                    .id,
            ),
            None => None,
        };
        let subscriber = Subscriber {
            id: uuid::Uuid::new_v4().simple().to_string()[..12].to_string(),
            url: url.to_string(),
            org: org.map(str::to_string),
            org_id,
            secret: secret.map(str::to_string),
            created: now(),
            failures: 0,
            retry_at: None,
        };
        let (pk, sk) = table::subscriber(&subscriber.id);
        let mut item = key(pk, sk);
        item.insert("id".into(), s(&subscriber.id));
        item.insert("url".into(), s(&subscriber.url));
        if let Some(org) = &subscriber.org {
            item.insert("org".into(), s(org));
        }
        if let Some(org_id) = subscriber.org_id {
            item.insert("org_id".into(), n(org_id));
        }
        if let Some(secret) = &subscriber.secret {
            item.insert("secret".into(), s(secret));
        }
        item.insert("created".into(), s(format_time(&subscriber.created)));
        let put = self.store.within(
            self.store
                .client()
                .put_item()
                .table_name(self.store.table())
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(pk)")
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send(),
        );
        let out = self.store.counted(put.await?)?;
        self.store.metrics().record_one(out.consumed_capacity());
        Ok(subscriber)
    }

    /// Every subscriber, in id order (one strongly consistent query: a
    /// subscriber added a moment ago gets the next batch of events).
    pub async fn list(&self) -> Result<Vec<Subscriber>> {
        let query = self
            .store
            .client()
            .query()
            .table_name(self.store.table())
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(table::SUBSCRIBERS_PARTITION))
            .consistent_read(true);
        let items = self.store.query_all(query).await?;
        items
            .iter()
            .map(|i| Subscriber::from_item(i).ok_or_else(|| StoreError::Corrupt(format!("{i:?}"))))
            .collect()
    }

    /// Removes a subscriber and the deliveries kept for it; `false` when no
    /// subscriber has that id.
    pub async fn remove(&self, id: &str) -> Result<bool> {
        let (pk, sk) = table::subscriber(id);
        let delete = self.store.within(
            self.store
                .client()
                .delete_item()
                .table_name(self.store.table())
                .set_key(Some(key(pk, sk)))
                .return_values(ReturnValue::AllOld)
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send(),
        );
        let out = self.store.counted(delete.await?)?;
        self.store.metrics().record_one(out.consumed_capacity());
        for delivery in self.deliveries(id).await? {
            self.delivered(&delivery).await?;
        }
        Ok(out.attributes().is_some())
    }

    /// Records that deliveries to `id` are failing: `failures` in a row, not
    /// to be tried before `retry_at` (epoch seconds). A subscriber removed
    /// meanwhile stays removed.
    pub async fn record_failure(&self, id: &str, failures: u32, retry_at: i64) -> Result<()> {
        self.update(
            id,
            "SET failures = :f, retry_at = :r",
            &[(":f", n(failures)), (":r", n(retry_at))],
        )
        .await
    }

    /// Records that `id` answers again.
    pub async fn record_recovery(&self, id: &str) -> Result<()> {
        self.update(id, "REMOVE failures, retry_at", &[]).await
    }

    async fn update(
        &self,
        id: &str,
        expression: &str,
        values: &[(&str, AttributeValue)],
    ) -> Result<()> {
        let (pk, sk) = table::subscriber(id);
        let mut update = self
            .store
            .client()
            .update_item()
            .table_name(self.store.table())
            .set_key(Some(key(pk, sk)))
            .update_expression(expression)
            .condition_expression("attribute_exists(pk)")
            .return_consumed_capacity(ReturnConsumedCapacity::Total);
        for (name, value) in values {
            update = update.expression_attribute_values(*name, value.clone());
        }
        match self.store.within(update.send()).await? {
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                self.store.metrics().record_one(None);
                Ok(())
            }
            sent => {
                let out = self.store.counted(sent)?;
                self.store.metrics().record_one(out.consumed_capacity());
                Ok(())
            }
        }
    }

    /// The deliveries kept for subscriber `id`, in stream order (strongly
    /// consistent: what this function kept a moment ago is there).
    pub async fn deliveries(&self, id: &str) -> Result<Vec<Delivery>> {
        let (pk, _) = table::delivery(id, "");
        let query = self
            .store
            .client()
            .query()
            .table_name(self.store.table())
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(pk))
            .consistent_read(true);
        let items = self.store.query_all(query).await?;
        items
            .iter()
            .map(|i| {
                Delivery::from_item(id, i).ok_or_else(|| StoreError::Corrupt(format!("{i:?}")))
            })
            .collect()
    }

    /// Keeps (or updates) a delivery. Writing the same position again
    /// overwrites it, so a retried batch keeps each SET once.
    pub async fn keep(&self, delivery: &Delivery) -> Result<()> {
        let put = self.store.within(
            self.store
                .client()
                .put_item()
                .table_name(self.store.table())
                .set_item(Some(delivery.to_item()))
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send(),
        );
        let out = self.store.counted(put.await?)?;
        self.store.metrics().record_one(out.consumed_capacity());
        Ok(())
    }

    /// Forgets a kept delivery (it went through, or its subscriber is gone).
    pub async fn delivered(&self, delivery: &Delivery) -> Result<()> {
        let (pk, sk) = table::delivery(&delivery.subscriber, &delivery.position);
        let delete = self.store.within(
            self.store
                .client()
                .delete_item()
                .table_name(self.store.table())
                .set_key(Some(key(pk, sk)))
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send(),
        );
        let out = self.store.counted(delete.await?)?;
        self.store.metrics().record_one(out.consumed_capacity());
        Ok(())
    }
}
