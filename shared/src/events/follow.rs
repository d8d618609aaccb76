//! Reading DynamoDB Local's stream of the table the way Lambda's event
//! source mapping reads a stream on AWS: for `make dev` (`usersctl events
//! follow`, which hands each batch to `events-publish` under `cargo lambda
//! watch`) and the tests. Batches are the `DynamoDBEvent` JSON Lambda sends
//! (`{"Records": [...]}`, images in DynamoDB's JSON), one shard at a time,
//! in stream order; a shard that closes hands over to its children.
//!
//! It speaks the DynamoDB Streams API as JSON itself, unsigned (DynamoDB
//! Local checks no signature), rather than through the SDK: DynamoDB Local
//! writes an empty map attribute in a stream record as `{}` where the
//! service writes `{"M": {}}`, which the SDK refuses to parse. The record
//! is repaired here ([`repair`]) into what Lambda would hand the function.
//! On AWS the event source mapping does all of this; this is not for it.
use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

use crate::store::StoreError;

/// Where a follower starts in the shards open when it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// Only what is written after it starts (`make dev`: a restart does not
    /// send the last day's events again).
    Latest,
    /// Everything the stream still holds (24 hours).
    Oldest,
}

/// One shard's next records, as Lambda would batch them.
#[derive(Debug, Clone)]
pub struct Batch {
    pub shard: String,
    /// `{"Records": [...]}`: what the function is invoked with.
    pub event: Value,
}

/// Follows one table's stream on DynamoDB Local.
pub struct Follower {
    http: reqwest::Client,
    endpoint: String,
    stream_arn: String,
    /// Open shards and where reading them resumes.
    iterators: BTreeMap<String, String>,
    /// Shards read to their end.
    done: BTreeSet<String>,
    /// The last sequence number read of each shard.
    last: BTreeMap<String, String>,
    start: Start,
    first: bool,
    polls: u32,
}

fn fault(e: impl std::fmt::Display) -> StoreError {
    StoreError::Fault(e.to_string())
}

impl Follower {
    /// A follower of `table`'s stream at `DYNAMODB_ENDPOINT`; `Fault` when
    /// there is no endpoint (AWS) or the table has no stream.
    pub async fn new(
        dynamodb: &aws_sdk_dynamodb::Client,
        table: &str,
        start: Start,
    ) -> Result<Follower, StoreError> {
        let endpoint = crate::store::client::endpoint().ok_or_else(|| {
            fault("following a stream is for DynamoDB Local (set DYNAMODB_ENDPOINT); on AWS the event source mapping does it")
        })?;
        let stream_arn = crate::store::table::describe(dynamodb, table)
            .await?
            .and_then(|t| t.latest_stream_arn)
            .ok_or_else(|| {
                fault(format!(
                    "table {table} has no stream: run usersctl table create"
                ))
            })?
            .to_string();
        let mut follower = Follower {
            http: reqwest::Client::new(),
            endpoint,
            stream_arn,
            iterators: BTreeMap::new(),
            done: BTreeSet::new(),
            last: BTreeMap::new(),
            start,
            first: true,
            polls: 0,
        };
        follower.discover().await?;
        Ok(follower)
    }

    pub fn stream_arn(&self) -> &str {
        &self.stream_arn
    }

    /// One DynamoDB Streams call.
    async fn call(&self, action: &str, body: Value) -> Result<Value, StoreError> {
        let response = self
            .http
            .post(&self.endpoint)
            .header("content-type", "application/x-amz-json-1.0")
            .header("x-amz-target", format!("DynamoDBStreams_20120810.{action}"))
            // DynamoDB Local wants the header, not a valid signature.
            .header(
                "authorization",
                "AWS4-HMAC-SHA256 Credential=local/20200101/us-east-1/dynamodb/aws4_request, \
                 SignedHeaders=host, Signature=0",
            )
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| fault(format!("{action}: {e}")))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|e| fault(format!("{action}: {e}")))?;
        if !status.is_success() {
            return Err(fault(format!("{action}: {status}: {text}")));
        }
        serde_json::from_str(&text).map_err(|e| fault(format!("{action}: {e}")))
    }

    /// Picks up shards not seen yet (a shard whose parent is still being
    /// read waits for it, as Lambda does).
    pub async fn discover(&mut self) -> Result<(), StoreError> {
        let mut shards: Vec<Value> = Vec::new();
        let mut start: Option<String> = None;
        loop {
            let mut request = json!({"StreamArn": self.stream_arn});
            if let Some(s) = &start {
                request["ExclusiveStartShardId"] = json!(s);
            }
            let out = self.call("DescribeStream", request).await?;
            let description = &out["StreamDescription"];
            shards.extend(
                description["Shards"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default(),
            );
            start = description["LastEvaluatedShardId"]
                .as_str()
                .map(str::to_string);
            if start.is_none() {
                break;
            }
        }
        let known: BTreeSet<String> = shards
            .iter()
            .filter_map(|s| s["ShardId"].as_str().map(str::to_string))
            .collect();
        for shard in &shards {
            let Some(id) = shard["ShardId"].as_str() else {
                continue;
            };
            if self.iterators.contains_key(id) || self.done.contains(id) {
                continue;
            }
            let parent_pending = shard["ParentShardId"]
                .as_str()
                .is_some_and(|p| known.contains(p) && !self.done.contains(p));
            let latest = self.first && self.start == Start::Latest;
            if parent_pending && !latest {
                continue;
            }
            let kind = if latest { "LATEST" } else { "TRIM_HORIZON" };
            let out = self
                .call(
                    "GetShardIterator",
                    json!({"StreamArn": self.stream_arn, "ShardId": id, "ShardIteratorType": kind}),
                )
                .await?;
            if let Some(iterator) = out["ShardIterator"].as_str() {
                self.iterators.insert(id.to_string(), iterator.to_string());
            }
        }
        self.first = false;
        Ok(())
    }

    /// The next records of each open shard, up to `limit` per shard, one
    /// batch per shard that has any.
    pub async fn poll(&mut self, limit: i32) -> Result<Vec<Batch>, StoreError> {
        let mut batches = Vec::new();
        let shards: Vec<(String, String)> = self
            .iterators
            .iter()
            .map(|(s, i)| (s.clone(), i.clone()))
            .collect();
        let mut closed = false;
        for (shard, iterator) in shards {
            let read = |iterator: String| {
                self.call(
                    "GetRecords",
                    json!({"ShardIterator": iterator, "Limit": limit}),
                )
            };
            let out = match read(iterator).await {
                Ok(out) => out,
                // An iterator that expired (15 minutes), or one DynamoDB Local
                // handed out for a shard that was still empty: read again
                // after the last record read, or from the shard's start.
                Err(StoreError::Fault(e))
                    if e.contains("TrimmedDataAccessException")
                        || e.contains("ExpiredIteratorException") =>
                {
                    let mut request = json!({"StreamArn": self.stream_arn, "ShardId": shard});
                    match self.last.get(&shard) {
                        Some(seq) => {
                            request["ShardIteratorType"] = json!("AFTER_SEQUENCE_NUMBER");
                            request["SequenceNumber"] = json!(seq);
                        }
                        None => request["ShardIteratorType"] = json!("TRIM_HORIZON"),
                    }
                    let fresh = self.call("GetShardIterator", request).await?;
                    let iterator = fresh["ShardIterator"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string();
                    read(iterator).await?
                }
                Err(e) => return Err(e),
            };
            match out["NextShardIterator"].as_str() {
                Some(next) => {
                    self.iterators.insert(shard.clone(), next.to_string());
                }
                None => {
                    self.iterators.remove(&shard);
                    self.done.insert(shard.clone());
                    closed = true;
                }
            }
            let records: Vec<Value> = out["Records"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|r| lambda_record(r, &self.stream_arn))
                .collect();
            if let Some(seq) = records
                .last()
                .and_then(|r| r["dynamodb"]["SequenceNumber"].as_str())
            {
                self.last.insert(shard.clone(), seq.to_string());
            }
            if !records.is_empty() {
                batches.push(Batch {
                    shard,
                    event: json!({ "Records": records }),
                });
            }
        }
        // New shards appear as the stream rolls over, and when one closes.
        self.polls += 1;
        if closed || self.iterators.is_empty() || self.polls.is_multiple_of(20) {
            self.discover().await?;
        }
        Ok(batches)
    }
}

/// A record of `GetRecords` as Lambda puts it in a `DynamoDBEvent`: the
/// same fields, the stream's ARN added, its images repaired ([`repair`]).
pub fn lambda_record(record: &Value, stream_arn: &str) -> Value {
    let mut record = record.clone();
    for image in ["Keys", "NewImage", "OldImage"] {
        if let Some(item) = record["dynamodb"].get_mut(image) {
            repair_item(item);
        }
    }
    record["eventSourceARN"] = json!(stream_arn);
    if record.get("eventSource").is_none() {
        record["eventSource"] = json!("aws:dynamodb");
    }
    record
}

fn repair_item(item: &mut Value) {
    if let Some(attributes) = item.as_object_mut() {
        for value in attributes.values_mut() {
            repair(value);
        }
    }
}

/// One attribute value in DynamoDB's JSON, as the service writes it: an
/// empty object (DynamoDB Local's empty map) becomes `{"M": {}}`, inside
/// maps and lists too.
pub fn repair(value: &mut Value) {
    let Some(object) = value.as_object_mut() else {
        return;
    };
    if object.is_empty() {
        *value = json!({"M": {}});
        return;
    }
    if let Some(map) = object.get_mut("M") {
        repair_item(map);
    }
    if let Some(Value::Array(list)) = object.get_mut("L") {
        for v in list {
            repair(v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_maps_are_written_as_the_service_writes_them() {
        let mut image = json!({"token_expiry": {}, "m": {"M": {"inner": {}}}, "l": {"L": [{}, {"S": "x"}]}, "s": {"S": "y"}});
        repair_item(&mut image);
        assert_eq!(
            image,
            json!({"token_expiry": {"M": {}}, "m": {"M": {"inner": {"M": {}}}}, "l": {"L": [{"M": {}}, {"S": "x"}]}, "s": {"S": "y"}})
        );
    }
}
