//! `events-publish`: one batch of stream records in, every event out to each
//! subscriber that wants it and to the bus, and the batch's answer to Lambda
//! (`ReportBatchItemFailures`).
//!
//! What it guarantees, and how:
//! - **At least once.** A SET a receiver did not take is sent again, with
//!   the same token and so the same `jti` ([`set::jti`] is a digest of the
//!   record, the event and the subscriber): a few times at once (see
//!   [`super::push::Limits`]), then it is kept in the table (`store.subscribers()`),
//!   and sent again by a later invocation once the subscriber's backoff has
//!   passed, or by `usersctl events replay`. What cannot be kept (DynamoDB
//!   failing) is reported to Lambda as failed, which sends the batch again
//!   from that record; the SETs sent meanwhile are sent again with the same
//!   `jti`s. A signing key that cannot be read (Secrets Manager failing on a
//!   cold start, see `events::secret`) fails the batch from its first
//!   record before anything is sent or put on the bus.
//! - **In order.** Each subscriber gets its events in stream order: once one
//!   is not delivered, every later one of the batch is kept behind it, and
//!   kept ones go out, oldest first, before any new one. The stream itself
//!   keeps the writes of one item in order (and Lambda runs one batch of a
//!   shard at a time), so two changes of one user arrive in the order they
//!   were made.
//! - **A dead subscriber holds up nobody.** Subscribers are served side by
//!   side; one that fails is marked down (with a backoff that doubles, up to
//!   five minutes) and the rest of its batch is kept without trying; no send
//!   starts after the invocation's budget ([`Publisher::budget`]), what is
//!   left is kept. So a batch takes at most the budget plus one attempt.
//! - **Never a secret:** see `events::change`; the subscriber's own secret
//!   is only its `Authorization` header.
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lambda_events::dynamodb::Event as StreamEvent;
use aws_lambda_events::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};

use super::bus::{self, Bus};
use super::change::Event;
use super::key::SigningKey;
use super::push::{Outcome, Pusher};
use super::record::{self, Change};
use super::secret::KeySource;
use super::set::{self, Envelope};
use crate::store::{table, Delivery, DeliveryStatus, Store, Subscriber};

/// How long after an invocation starts a send may begin: with one attempt's
/// time after it and the writes that keep what is left, an invocation ends
/// well inside the function's 10 s timeout.
pub const BUDGET: Duration = Duration::from_secs(6);

/// The most a subscriber in trouble waits between tries.
const MAX_BACKOFF_SECS: i64 = 300;

/// What an invocation did, for its log line and for tests.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    pub records: usize,
    pub events: usize,
    /// SETs that reached their receiver (kept ones included).
    pub delivered: usize,
    /// SETs kept for later (receiver down, or out of time).
    pub kept: usize,
    /// SETs a receiver refused (kept as refused).
    pub refused: usize,
    /// Entries put on the bus.
    pub bus_entries: usize,
    /// The sequence number handed back to Lambda to start again from.
    pub failed_from: Option<String>,
}

/// Publishes batches; one per function instance.
#[derive(Clone)]
pub struct Publisher {
    pub store: Store,
    /// The key SETs are signed with, read when a batch first needs it.
    pub keys: Arc<KeySource>,
    pub pusher: Pusher,
    pub bus: Option<Bus>,
    /// Where clients reach the API: the SETs' `iss` and every link.
    pub origin: String,
    /// How long after an invocation starts sends may begin.
    pub budget: Duration,
}

impl Publisher {
    /// One batch: the answer Lambda wants, and what was done.
    pub async fn publish(&self, batch: &StreamEvent) -> (DynamoDbEventResponse, Report) {
        let started = Instant::now();
        let deadline = started + self.budget;
        let changes = record::changes(batch, &self.origin);
        let mut report = Report {
            records: changes.len(),
            events: changes.iter().map(|c| c.events.len()).sum(),
            ..Report::default()
        };
        let mut failed: Option<usize> = None;
        let mut fail_at = |i: usize| failed = Some(failed.map_or(i, |f: usize| f.min(i)));
        if report.events > 0 {
            let subscribers = match self.store.subscribers().list().await {
                Ok(subscribers) => self.with_key(subscribers).await,
                Err(e) => Err(format!("cannot read the subscribers: {e}")),
            };
            match subscribers {
                Ok((subscribers, key)) => {
                    // No key only when there is nobody to sign for.
                    let pushes = key.iter().flat_map(|key| {
                        subscribers
                            .iter()
                            .map(|s| self.deliver_to(s, key, &changes, deadline))
                    });
                    let on_bus = async {
                        match &self.bus {
                            Some(bus) => {
                                let entries = bus::entries(&changes, bus.name(), &self.origin);
                                let n = entries.len();
                                (bus.put(entries).await, n)
                            }
                            None => (Ok(()), 0),
                        }
                    };
                    let (outcomes, (bus_result, bus_entries)) =
                        futures::join!(futures::future::join_all(pushes), on_bus);
                    for outcome in outcomes {
                        report.delivered += outcome.delivered;
                        report.kept += outcome.kept;
                        report.refused += outcome.refused;
                        if let Some(i) = outcome.failed_at {
                            fail_at(i);
                        }
                    }
                    match bus_result {
                        Ok(()) => report.bus_entries = bus_entries,
                        Err(i) => fail_at(i),
                    }
                }
                // Nothing was sent nor put on the bus: the whole batch again.
                Err(e) => {
                    tracing::warn!(error = %e, "the batch is retried");
                    fail_at(0);
                }
            }
        }
        report.failed_from = failed.map(|i| changes[i].sequence_number.clone());
        let lag = changes
            .iter()
            .filter_map(|c| c.at)
            .min()
            .map(|at| chrono::Utc::now().timestamp() - at);
        tracing::info!(
            records = report.records,
            events = report.events,
            delivered = report.delivered,
            kept = report.kept,
            refused = report.refused,
            bus_entries = report.bus_entries,
            failed_from = report.failed_from.as_deref().unwrap_or(""),
            oldest_record_age_s = lag.unwrap_or(0),
            latency_ms = started.elapsed().as_secs_f64() * 1000.0,
            "events"
        );
        // Non-exhaustive types: built from their defaults.
        let mut response = DynamoDbEventResponse::default();
        if let Some(seq) = &report.failed_from {
            let mut failure = DynamoDbBatchItemFailure::default();
            failure.item_identifier = Some(seq.clone());
            response.batch_item_failures.push(failure);
        }
        (response, report)
    }

    /// The subscribers and, when there are any, the key to sign their SETs
    /// with: a key that cannot be read (Secrets Manager failing) fails the
    /// batch before anything is sent.
    async fn with_key(
        &self,
        subscribers: Vec<Subscriber>,
    ) -> Result<(Vec<Subscriber>, Option<Arc<SigningKey>>), String> {
        if subscribers.is_empty() {
            return Ok((subscribers, None));
        }
        let key = self.keys.get().await?;
        Ok((subscribers, Some(key)))
    }

    /// Everything for one subscriber: what was kept for it, then the
    /// batch's events it wants, in order.
    async fn deliver_to(
        &self,
        subscriber: &Subscriber,
        key: &SigningKey,
        changes: &[Change],
        deadline: Instant,
    ) -> Tally {
        let mut run = Run {
            publisher: self,
            key,
            subscriber,
            deadline,
            failures: subscriber.failures,
            down: subscriber
                .retry_at
                .is_some_and(|t| t > chrono::Utc::now().timestamp()),
            marked: false,
            outcome: Tally::default(),
        };
        // Kept deliveries exist only after a failure was recorded (it is
        // recorded before anything is kept), so a subscriber without
        // failures costs no read.
        if !run.down && subscriber.failures > 0 {
            match self.store.subscribers().deliveries(&subscriber.id).await {
                Ok(kept) => {
                    if run.resend(kept).await.is_err() {
                        run.outcome.failed_at = Some(0);
                        return run.outcome;
                    }
                }
                Err(e) => {
                    tracing::warn!(subscriber = %subscriber.id, error = %e, "cannot read kept deliveries");
                    run.outcome.failed_at = Some(0);
                    return run.outcome;
                }
            }
        }
        for (c, change) in changes.iter().enumerate() {
            for (i, event) in change.events.iter().enumerate() {
                if !wants(subscriber, event) {
                    continue;
                }
                if run.send_new(change, i, event).await.is_err() {
                    run.outcome.failed_at = Some(c);
                    return run.outcome;
                }
            }
        }
        if !run.down && subscriber.failures > 0 {
            if let Err(e) = self
                .store
                .subscribers()
                .record_recovery(&subscriber.id)
                .await
            {
                tracing::warn!(subscriber = %subscriber.id, error = %e, "cannot record that it answers again");
            }
        }
        run.outcome
    }
}

/// Whether `subscriber` gets `event`: every event without an org, or only
/// the events of its org: its groups, members and roles, and the users it
/// owns.
fn wants(subscriber: &Subscriber, event: &Event) -> bool {
    match &subscriber.org {
        None => true,
        Some(org) => {
            event.org.as_deref() == Some(org.as_str())
                || (event.owner.is_some() && event.owner == subscriber.org_id)
        }
    }
}

/// What one subscriber's part of a batch did.
#[derive(Debug, Default)]
struct Tally {
    delivered: usize,
    kept: usize,
    refused: usize,
    /// The earliest change that must be retried (something could not be kept).
    failed_at: Option<usize>,
}

/// A write that did not happen, so the batch must be retried.
struct MustRetry;

/// One subscriber's part of one invocation.
struct Run<'a> {
    publisher: &'a Publisher,
    key: &'a SigningKey,
    subscriber: &'a Subscriber,
    deadline: Instant,
    failures: u32,
    /// Not tried any more in this invocation: what is left is kept.
    down: bool,
    /// The failure has been recorded on the subscriber.
    marked: bool,
    outcome: Tally,
}

impl Run<'_> {
    /// Sends again what was kept, oldest first; refused ones wait for `replay`.
    async fn resend(&mut self, kept: Vec<Delivery>) -> Result<(), MustRetry> {
        let store = &self.publisher.store;
        for mut delivery in kept {
            if delivery.status == DeliveryStatus::Refused {
                continue;
            }
            if self.down || Instant::now() >= self.deadline {
                self.down = true;
                return Ok(());
            }
            let (outcome, attempts) = self
                .publisher
                .pusher
                .push(self.subscriber, &delivery.token, self.deadline)
                .await;
            delivery.attempts += attempts;
            match outcome {
                Outcome::Delivered => {
                    self.outcome.delivered += 1;
                    // Not forgetting it only means sending it once more.
                    if let Err(e) = store.subscribers().delivered(&delivery).await {
                        tracing::warn!(subscriber = %self.subscriber.id, error = %e, "cannot forget a delivered SET");
                    }
                }
                Outcome::Refused(why) => {
                    self.outcome.refused += 1;
                    delivery.status = DeliveryStatus::Refused;
                    delivery.error = why;
                    let _ = store.subscribers().keep(&delivery).await;
                }
                Outcome::Failed(why) => {
                    self.go_down(true).await?;
                    delivery.error = why;
                    let _ = store.subscribers().keep(&delivery).await;
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// Signs event `index` of `change` for this subscriber and sends it, or
    /// keeps it when the subscriber is down.
    async fn send_new(
        &mut self,
        change: &Change,
        index: usize,
        event: &Event,
    ) -> Result<(), MustRetry> {
        let origin = &self.publisher.origin;
        let jti = set::jti(&change.event_id, index, &self.subscriber.id);
        let envelope = Envelope {
            origin,
            audience: &self.subscriber.url,
            jti: jti.clone(),
            txn: &change.event_id,
            toe: change.at,
            iat: chrono::Utc::now().timestamp(),
        };
        let Some(claims) = set::claims(event, &envelope) else {
            return Ok(());
        };
        let token = self.key.sign(&claims).map_err(|e| {
            tracing::error!(error = %e, "cannot sign a SET");
            MustRetry
        })?;
        let mut delivery = Delivery {
            subscriber: self.subscriber.id.clone(),
            position: table::delivery_position(&change.sequence_number, index),
            token,
            jti,
            subject: event.subject.uri(),
            status: DeliveryStatus::Pending,
            error: String::new(),
            attempts: 0,
        };
        if !self.down && Instant::now() >= self.deadline {
            // Out of time, not out of luck: kept without counting a failure.
            self.go_down(false).await?;
        }
        if self.down {
            delivery.error = "kept behind an earlier delivery".to_string();
            return self.keep(&delivery).await;
        }
        let (outcome, attempts) = self
            .publisher
            .pusher
            .push(self.subscriber, &delivery.token, self.deadline)
            .await;
        delivery.attempts = attempts;
        match outcome {
            Outcome::Delivered => {
                self.outcome.delivered += 1;
                Ok(())
            }
            Outcome::Refused(why) => {
                tracing::warn!(subscriber = %self.subscriber.id, jti = %delivery.jti, why = %why, "a receiver refused a SET");
                delivery.status = DeliveryStatus::Refused;
                delivery.error = why;
                self.keep(&delivery).await
            }
            Outcome::Failed(why) => {
                tracing::warn!(subscriber = %self.subscriber.id, jti = %delivery.jti, why = %why, "a receiver did not take a SET; kept");
                self.go_down(true).await?;
                delivery.error = why;
                self.keep(&delivery).await
            }
        }
    }

    async fn keep(&mut self, delivery: &Delivery) -> Result<(), MustRetry> {
        match self.publisher.store.subscribers().keep(delivery).await {
            Ok(()) => {
                match delivery.status {
                    DeliveryStatus::Pending => self.outcome.kept += 1,
                    DeliveryStatus::Refused => self.outcome.refused += 1,
                }
                Ok(())
            }
            Err(e) => {
                tracing::warn!(subscriber = %self.subscriber.id, error = %e, "cannot keep a SET; the batch is retried");
                Err(MustRetry)
            }
        }
    }

    /// Stops trying this subscriber for this invocation, recording it on the
    /// subscriber first (so that what is kept next is found again): a
    /// failure counts and sets a backoff; running out of time does not.
    async fn go_down(&mut self, failed: bool) -> Result<(), MustRetry> {
        self.down = true;
        if self.marked {
            return Ok(());
        }
        let now = chrono::Utc::now().timestamp();
        let (failures, retry_at) = if failed {
            let failures = self.failures + 1;
            let backoff = 1i64 << (failures - 1).min(16);
            (failures, now + backoff.min(MAX_BACKOFF_SECS))
        } else {
            (self.failures.max(1), now)
        };
        self.publisher
            .store
            .subscribers()
            .record_failure(&self.subscriber.id, failures, retry_at)
            .await
            .map_err(|e| {
                tracing::warn!(subscriber = %self.subscriber.id, error = %e, "cannot record a failing receiver; the batch is retried");
                MustRetry
            })?;
        self.failures = failures;
        self.marked = true;
        Ok(())
    }
}

/// Sends every delivery kept for `subscriber` again, refused ones included
/// (`usersctl events replay`), oldest first; stops at the first that the
/// receiver does not take. Returns (delivered, still kept).
pub async fn replay(
    store: &Store,
    pusher: &Pusher,
    subscriber: &Subscriber,
) -> crate::store::Result<(usize, usize)> {
    let kept = store.subscribers().deliveries(&subscriber.id).await?;
    let total = kept.len();
    let mut delivered = 0;
    let mut pending_left = false;
    let far = Instant::now() + Duration::from_secs(3600);
    for mut delivery in kept {
        let (outcome, attempts) = pusher.push(subscriber, &delivery.token, far).await;
        delivery.attempts += attempts;
        match outcome {
            Outcome::Delivered => {
                store.subscribers().delivered(&delivery).await?;
                delivered += 1;
            }
            Outcome::Refused(why) => {
                delivery.status = DeliveryStatus::Refused;
                delivery.error = why;
                store.subscribers().keep(&delivery).await?;
            }
            Outcome::Failed(why) => {
                delivery.error = why;
                store.subscribers().keep(&delivery).await?;
                pending_left = true;
                break;
            }
        }
    }
    if !pending_left && subscriber.failures > 0 {
        store.subscribers().record_recovery(&subscriber.id).await?;
    }
    Ok((delivered, total - delivered))
}
