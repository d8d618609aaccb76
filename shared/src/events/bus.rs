//! The events on an EventBridge bus (optional: `EVENT_BUS_NAME`):
//! `source` `directory`, one `detail-type` per kind ([`Kind::detail_type`]),
//! and a `detail` that holds the event with the resource as the SCIM API
//! renders it.
//!
//! `PutEvents` takes at most 10 entries per call, and may accept some of
//! them and not others (`FailedEntryCount`, an `ErrorCode` per entry): the
//! ones it did not take are sent again, a few times, with a pause between.
use std::time::Duration;

use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use serde_json::{json, Value};

use super::change::{Event, Kind};
use super::record::Change;
use crate::scim::group_schema::member_json;

/// `source` of every entry.
pub const SOURCE: &str = "directory";

/// Entries per `PutEvents` call (EventBridge's limit).
pub const ENTRIES_PER_CALL: usize = 10;

/// Calls per group of entries before the failed ones are given up on (and
/// the batch is handed back to Lambda to retry).
const ATTEMPTS: u32 = 4;

/// The `detail` of event `index` of `change`: what happened, to which
/// resource, the resource as the SCIM API renders it, and an id that is
/// the same whenever this event is published again (a retried batch).
pub fn detail(change: &Change, index: usize, event: &Event, origin: &str) -> Value {
    let mut detail = json!({
        "eventId": format!("{}:{index}", change.event_id),
        "kind": kind_name(event.kind),
        "resourceType": event.subject.resource_type.name(),
        "id": event.subject.id.to_string(),
        "uri": event.subject.uri(),
        "org": event.org,
    });
    if let Some(owner) = event.owner {
        // The org that owns the user (its SCIM tenant), by id as the
        // admin API's organizations name it.
        detail["ownerOrgId"] = json!(owner);
    }
    if let Some(ext) = &event.subject.external_id {
        detail["externalId"] = json!(ext);
    }
    if !event.changed.is_empty() {
        detail["changedAttributes"] = json!(event.changed);
    }
    if let Some(resource) = &event.resource {
        detail["resource"] = resource.clone();
    }
    if let Some(member) = &event.member {
        let mut m = member_json(member.user_id, &crate::scim::base_url(origin));
        m["role"] = json!(member.role);
        if let Some(previous) = &member.previous_role {
            m["previousRole"] = json!(previous);
        }
        detail["member"] = m;
    }
    detail
}

fn kind_name(kind: Kind) -> String {
    kind.detail_type().replace(' ', "")
}

/// One entry and the change it comes from.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Index of its change in the batch.
    pub change: usize,
    pub entry: PutEventsRequestEntry,
}

/// The entries of a batch's events, in stream order.
pub fn entries(changes: &[Change], bus: &str, origin: &str) -> Vec<Entry> {
    let mut out = Vec::new();
    for (c, change) in changes.iter().enumerate() {
        for (i, event) in change.events.iter().enumerate() {
            let mut entry = PutEventsRequestEntry::builder()
                .event_bus_name(bus)
                .source(SOURCE)
                .detail_type(event.kind.detail_type())
                .detail(detail(change, i, event, origin).to_string());
            if let Some(at) = change.at {
                entry = entry.time(aws_sdk_eventbridge::primitives::DateTime::from_secs(at));
            }
            out.push(Entry {
                change: c,
                entry: entry.build(),
            });
        }
    }
    out
}

/// An EventBridge bus to publish on.
#[derive(Clone)]
pub struct Bus {
    client: aws_sdk_eventbridge::Client,
    name: String,
    pause: Duration,
}

impl Bus {
    pub fn new(client: aws_sdk_eventbridge::Client, name: impl Into<String>) -> Bus {
        Bus {
            client,
            name: name.into(),
            pause: Duration::from_millis(100),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Puts `entries`, 10 per call, retrying what was not taken. `Err` with
    /// the earliest change some of whose entries never got on the bus.
    pub async fn put(&self, entries: Vec<Entry>) -> Result<(), usize> {
        let mut first_lost: Option<usize> = None;
        for group in entries.chunks(ENTRIES_PER_CALL) {
            let mut pending: Vec<Entry> = group.to_vec();
            let mut pause = self.pause;
            for attempt in 1..=ATTEMPTS {
                if attempt > 1 {
                    tokio::time::sleep(pause).await;
                    pause *= 2;
                }
                let sent = self
                    .client
                    .put_events()
                    .set_entries(Some(pending.iter().map(|e| e.entry.clone()).collect()))
                    .send()
                    .await;
                match sent {
                    Ok(out) if out.failed_entry_count() == 0 => {
                        pending.clear();
                        break;
                    }
                    // Results come in the order of the entries; the failed
                    // ones carry an error code.
                    Ok(out) => {
                        let results = out.entries();
                        pending = pending
                            .into_iter()
                            .enumerate()
                            .filter(|(i, _)| {
                                results.get(*i).is_none_or(|r| r.error_code().is_some())
                            })
                            .map(|(_, e)| e)
                            .collect();
                        tracing::warn!(
                            bus = %self.name,
                            failed = pending.len(),
                            attempt,
                            "PutEvents did not take every entry"
                        );
                    }
                    Err(e) => tracing::warn!(
                        bus = %self.name,
                        attempt,
                        error = %aws_sdk_eventbridge::error::DisplayErrorContext(&e),
                        "PutEvents failed"
                    ),
                }
            }
            if let Some(lost) = pending.iter().map(|e| e.change).min() {
                first_lost = Some(first_lost.map_or(lost, |f| f.min(lost)));
            }
        }
        first_lost.map_or(Ok(()), Err)
    }
}
