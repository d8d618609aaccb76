//! A batch of DynamoDB stream records, as Lambda hands it to the function
//! (`DynamoDBEvent`, with the images in DynamoDB's JSON), read into the
//! changes it carries.
use aws_lambda_events::dynamodb::{Event as StreamEvent, EventRecord};

use super::change::{self, Event};
use crate::store::Item;

/// One stream record and the events it carries.
#[derive(Debug, Clone)]
pub struct Change {
    /// The record's sequence number: its place in its shard, what
    /// `ReportBatchItemFailures` names, and where kept deliveries sort.
    pub sequence_number: String,
    /// The record's `eventID`, unique per record: the SETs' `txn`.
    pub event_id: String,
    /// When the write happened (epoch seconds), the SETs' `toe`.
    pub at: Option<i64>,
    pub events: Vec<Event>,
}

/// The changes of a batch, in the order Lambda delivered its records (stream
/// order within the shard).
pub fn changes(batch: &StreamEvent, origin: &str) -> Vec<Change> {
    batch.records.iter().map(|r| change(r, origin)).collect()
}

fn change(record: &EventRecord, origin: &str) -> Change {
    let image = |item: &serde_dynamo::Item| -> Option<Item> {
        (!item.is_empty()).then(|| Item::from(item.clone()))
    };
    let old = image(&record.change.old_image);
    let new = image(&record.change.new_image);
    let at = record.change.approximate_creation_date_time.timestamp();
    Change {
        sequence_number: record.change.sequence_number.clone().unwrap_or_default(),
        event_id: record.event_id.clone(),
        at: (at > 0).then_some(at),
        events: change::events(old.as_ref(), new.as_ref(), origin),
    }
}
