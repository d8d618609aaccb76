//! Reading the table's stream the way Lambda's event source mapping does,
//! where there is no Lambda: `make dev` (`usersctl events follow`, which
//! hands each batch to `events-publish` under `cargo lambda watch`) and the
//! tests. Batches are the `DynamoDBEvent` JSON Lambda sends (`{"Records":
//! [...]}`, images in DynamoDB's JSON), one shard at a time, in stream
//! order; a shard that closes hands over to its children.
use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_dynamodbstreams::types::{Record, ShardIteratorType};
use serde_json::{json, Value};

use crate::store::{classify, StoreError};

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
    /// The records' sequence numbers, in order.
    pub sequence_numbers: Vec<String>,
}

/// Follows one table's stream.
pub struct Follower {
    streams: aws_sdk_dynamodbstreams::Client,
    stream_arn: String,
    region: String,
    /// Open shards and where reading them resumes.
    iterators: BTreeMap<String, String>,
    /// Shards read to their end.
    done: BTreeSet<String>,
    /// Shards open when the follower started (read from `start`); later ones
    /// from their beginning.
    start: Start,
    first: bool,
    polls: u32,
}

fn fault(e: impl std::fmt::Display) -> StoreError {
    StoreError::Fault(e.to_string())
}

impl Follower {
    /// A follower of `table`'s stream; `Fault` when the table has none.
    pub async fn new(
        dynamodb: &aws_sdk_dynamodb::Client,
        streams: aws_sdk_dynamodbstreams::Client,
        table: &str,
        start: Start,
    ) -> Result<Follower, StoreError> {
        let described = dynamodb
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(|e| classify(&e))?;
        let stream_arn = described
            .table()
            .and_then(|t| t.latest_stream_arn())
            .ok_or_else(|| {
                fault(format!(
                    "table {table} has no stream: run usersctl table create"
                ))
            })?
            .to_string();
        let region = streams
            .config()
            .region()
            .map(|r| r.to_string())
            .unwrap_or_else(|| "us-east-1".to_string());
        let mut follower = Follower {
            streams,
            stream_arn,
            region,
            iterators: BTreeMap::new(),
            done: BTreeSet::new(),
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

    /// Picks up shards not seen yet (a shard whose parent is still being
    /// read waits for it, as Lambda does).
    pub async fn discover(&mut self) -> Result<(), StoreError> {
        let mut shards = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .streams
                .describe_stream()
                .stream_arn(&self.stream_arn)
                .set_exclusive_start_shard_id(start)
                .send()
                .await
                .map_err(|e| fault(aws_sdk_dynamodbstreams::error::DisplayErrorContext(&e)))?;
            let Some(description) = out.stream_description() else {
                break;
            };
            shards.extend(description.shards().iter().cloned());
            start = description.last_evaluated_shard_id().map(str::to_string);
            if start.is_none() {
                break;
            }
        }
        let known: BTreeSet<String> = shards
            .iter()
            .filter_map(|s| s.shard_id().map(str::to_string))
            .collect();
        for shard in &shards {
            let Some(id) = shard.shard_id() else { continue };
            if self.iterators.contains_key(id) || self.done.contains(id) {
                continue;
            }
            let parent_pending = shard
                .parent_shard_id()
                .is_some_and(|p| known.contains(p) && !self.done.contains(p));
            if parent_pending && !(self.first && self.start == Start::Latest) {
                continue;
            }
            let kind = match (self.first, self.start) {
                (true, Start::Latest) => ShardIteratorType::Latest,
                _ => ShardIteratorType::TrimHorizon,
            };
            let out = self
                .streams
                .get_shard_iterator()
                .stream_arn(&self.stream_arn)
                .shard_id(id)
                .shard_iterator_type(kind)
                .send()
                .await
                .map_err(|e| fault(aws_sdk_dynamodbstreams::error::DisplayErrorContext(&e)))?;
            if let Some(iterator) = out.shard_iterator() {
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
        for (shard, iterator) in shards {
            let out = self
                .streams
                .get_records()
                .shard_iterator(iterator)
                .limit(limit)
                .send()
                .await
                .map_err(|e| fault(aws_sdk_dynamodbstreams::error::DisplayErrorContext(&e)))?;
            match out.next_shard_iterator() {
                Some(next) => {
                    self.iterators.insert(shard.clone(), next.to_string());
                }
                None => {
                    self.iterators.remove(&shard);
                    self.done.insert(shard.clone());
                }
            }
            if !out.records().is_empty() {
                batches.push(Batch {
                    shard,
                    sequence_numbers: out
                        .records()
                        .iter()
                        .filter_map(|r| r.dynamodb()?.sequence_number().map(str::to_string))
                        .collect(),
                    event: json!({
                        "Records": out
                            .records()
                            .iter()
                            .map(|r| lambda_record(r, &self.stream_arn, &self.region))
                            .collect::<Vec<_>>()
                    }),
                });
            }
        }
        // New shards appear as the stream rolls over, and when one closes.
        self.polls += 1;
        if self.iterators.is_empty() || self.polls % 20 == 0 || batches.len() < self.iterators.len()
        {
            self.discover().await?;
        }
        Ok(batches)
    }
}

/// A stream record as Lambda puts it in a `DynamoDBEvent`.
pub fn lambda_record(record: &Record, stream_arn: &str, region: &str) -> Value {
    let image = |item: Option<
        &std::collections::HashMap<String, aws_sdk_dynamodbstreams::types::AttributeValue>,
    >| {
        item.map(|i| {
            let converted: serde_dynamo::Item = i.clone().into();
            serde_json::to_value(converted).unwrap_or(Value::Null)
        })
    };
    let change = record.dynamodb();
    let mut dynamodb = json!({
        "ApproximateCreationDateTime": change
            .and_then(|c| c.approximate_creation_date_time())
            .map(|t| t.as_secs_f64())
            .unwrap_or_default(),
        "Keys": image(change.and_then(|c| c.keys.as_ref())),
        "SequenceNumber": change.and_then(|c| c.sequence_number()),
        "SizeBytes": change.and_then(|c| c.size_bytes()).unwrap_or_default(),
        "StreamViewType": change.and_then(|c| c.stream_view_type()).map(|v| v.as_str()),
    });
    if let Some(new) = image(change.and_then(|c| c.new_image.as_ref())) {
        dynamodb["NewImage"] = new;
    }
    if let Some(old) = image(change.and_then(|c| c.old_image.as_ref())) {
        dynamodb["OldImage"] = old;
    }
    json!({
        "eventID": record.event_id(),
        "eventName": record.event_name().map(|n| n.as_str()),
        "eventVersion": record.event_version().unwrap_or("1.1"),
        "eventSource": "aws:dynamodb",
        "awsRegion": record.aws_region().unwrap_or(region),
        "dynamodb": dynamodb,
        "eventSourceARN": stream_arn,
    })
}

/// A DynamoDB Streams client for the table the environment names:
/// `DYNAMODB_ENDPOINT` serves the streams API too (DynamoDB Local does), with
/// the same local defaults as the table's client (`store::client`).
pub async fn streams_client_from_env() -> aws_sdk_dynamodbstreams::Client {
    use aws_sdk_dynamodbstreams::config::{Builder, Credentials, Region};
    let config = aws_config::load_from_env().await;
    let mut builder = Builder::from(&config);
    if let Some(endpoint) = crate::store::client::endpoint() {
        builder = builder.endpoint_url(endpoint);
        if config.region().is_none() {
            builder = builder.region(Region::new("us-east-1"));
        }
        if std::env::var_os("AWS_ACCESS_KEY_ID").is_none()
            && std::env::var_os("AWS_PROFILE").is_none()
        {
            builder = builder.credentials_provider(Credentials::new(
                "local",
                "local",
                None,
                None,
                "dynamodb-local",
            ));
        }
    }
    aws_sdk_dynamodbstreams::Client::from_conf(builder.build())
}
