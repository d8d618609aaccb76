//! `usersctl events`: the receivers of change events, the deliveries kept for
//! them, and (for `make dev`) the stream follower that stands in for
//! Lambda's event source mapping.
use std::time::Duration;

use clap::{Subcommand, ValueEnum};
use directory::events::follow::{Follower, Start};
use directory::events::{check_url, publish, push, Pusher};
use directory::store::{DeliveryStatus, Store};
use serde_json::Value;

use crate::{read_secret, Fail, Outcome};

#[derive(Subcommand)]
pub enum EventsCmd {
    /// Adds a receiver of change events (SCIM Security Event Tokens, pushed
    /// per RFC 8935); prints its id.
    Subscribe {
        /// Where the SETs are POSTed: https, or http to a loopback address.
        #[arg(long)]
        url: String,
        /// Only this org's events (group, member and role events of the org).
        #[arg(long)]
        org: Option<String>,
        /// Read a secret from standard input, sent as `Authorization: Bearer <secret>`.
        #[arg(long)]
        secret_stdin: bool,
    },
    /// Removes a receiver and the deliveries kept for it.
    Unsubscribe { id: String },
    /// Lists the receivers (never their secrets) and what is kept for them.
    List,
    /// Sends every kept delivery again (refused ones too), oldest first.
    Replay {
        /// Only this receiver's.
        #[arg(long)]
        subscriber: Option<String>,
    },
    /// Follows the table's stream and invokes the stream function with each
    /// batch, as Lambda's event source mapping does (`make dev`).
    Follow {
        /// The Lambda invoke API (`cargo lambda watch`'s address).
        #[arg(long, default_value = "http://127.0.0.1:9000")]
        invoke: String,
        #[arg(long, default_value = "events-publish")]
        function: String,
        /// Where to start in the stream.
        #[arg(long, value_enum, default_value = "latest")]
        from: From,
        /// Records per batch (the template's BatchSize).
        #[arg(long, default_value_t = BATCH_SIZE)]
        batch_size: i32,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum From {
    Latest,
    Oldest,
}

/// The template's `BatchSize` and `MaximumRetryAttempts`.
const BATCH_SIZE: i32 = 25;
const MAXIMUM_RETRY_ATTEMPTS: u32 = 10;

pub async fn run(store: &Store, command: EventsCmd) -> Outcome {
    match command {
        EventsCmd::Subscribe {
            url,
            org,
            secret_stdin,
        } => {
            check_url(&url).map_err(|e| Fail::Message(format!("--url: {e}")))?;
            if let Some(slug) = &org {
                store
                    .groups()
                    .org(slug)
                    .await?
                    .ok_or_else(|| Fail::Message(format!("no org {slug}")))?;
            }
            let secret = if secret_stdin {
                Some(read_secret()?)
            } else {
                None
            };
            let subscriber = store
                .subscribers()
                .add(&url, org.as_deref(), secret.as_deref())
                .await?;
            println!(
                "subscribed {} ({}{})",
                subscriber.url,
                match &subscriber.org {
                    Some(org) => format!("org {org}"),
                    None => "every event".to_string(),
                },
                if secret.is_some() {
                    ", with a bearer secret"
                } else {
                    ""
                }
            );
            println!("{}", subscriber.id);
            Ok(())
        }
        EventsCmd::Unsubscribe { id } => {
            if store.subscribers().remove(&id).await? {
                println!("unsubscribed {id}");
                Ok(())
            } else {
                Err(Fail::Message(format!("no subscriber {id}")))
            }
        }
        EventsCmd::List => {
            for s in store.subscribers().list().await? {
                let kept = store.subscribers().deliveries(&s.id).await?;
                let refused = kept
                    .iter()
                    .filter(|d| d.status == DeliveryStatus::Refused)
                    .count();
                println!(
                    "{}  {}  org={}  secret={}  failures={}  kept={}  refused={}",
                    s.id,
                    s.url,
                    s.org.as_deref().unwrap_or("*"),
                    if s.secret.is_some() { "set" } else { "none" },
                    s.failures,
                    kept.len() - refused,
                    refused
                );
            }
            Ok(())
        }
        EventsCmd::Replay { subscriber } => {
            let pusher = Pusher::new(push::Limits::LAMBDA);
            let mut found = false;
            for s in store.subscribers().list().await? {
                if subscriber.as_ref().is_some_and(|id| *id != s.id) {
                    continue;
                }
                found = true;
                let (delivered, left) = publish::replay(store, &pusher, &s).await?;
                println!("{}: {delivered} delivered, {left} still kept", s.id);
            }
            match (found, subscriber) {
                (false, Some(id)) => Err(Fail::Message(format!("no subscriber {id}"))),
                _ => Ok(()),
            }
        }
        EventsCmd::Follow {
            invoke,
            function,
            from,
            batch_size,
        } => follow_stream(store, &invoke, &function, from, batch_size).await,
    }
}

/// Hands every batch of the stream to `function`, forever. What Lambda's
/// event source mapping does, in its own terms: one batch per shard at a
/// time; a reported failure (`batchItemFailures`) sends the batch again from
/// that record, and a failed invocation sends it again split in halves
/// (`BisectBatchOnFunctionError`), up to `MaximumRetryAttempts`, after which
/// the records are dropped with a message (Lambda sends their range to the
/// dead-letter queue).
async fn follow_stream(
    store: &Store,
    invoke: &str,
    function: &str,
    from: From,
    batch_size: i32,
) -> Outcome {
    let start = match from {
        From::Latest => Start::Latest,
        From::Oldest => Start::Oldest,
    };
    let mut follower = Follower::new(store.client(), store.table(), start).await?;
    let url = format!(
        "{}/2015-03-31/functions/{function}/invocations",
        invoke.trim_end_matches('/')
    );
    eprintln!(
        "usersctl: following {} into {function} at {invoke}",
        follower.stream_arn()
    );
    let client = reqwest::Client::new();
    loop {
        let batches = match follower.poll(batch_size).await {
            Ok(b) => b,
            Err(e) => {
                eprintln!("usersctl: reading the stream failed ({e}); trying again");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if batches.is_empty() {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        for batch in batches {
            let records = batch.event["Records"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            deliver(&client, &url, records).await;
        }
    }
}

/// One batch until the function takes it all, or the retries run out.
async fn deliver(client: &reqwest::Client, url: &str, records: Vec<Value>) {
    // Work in order: a batch split in halves runs its first half first.
    let mut work: Vec<(Vec<Value>, u32)> = vec![(records, 0)];
    while let Some((records, retries)) = work.pop() {
        if records.is_empty() {
            continue;
        }
        if retries > MAXIMUM_RETRY_ATTEMPTS {
            eprintln!(
                "usersctl: gave up on {} records from {} after {MAXIMUM_RETRY_ATTEMPTS} retries \
                 (on AWS their range goes to the dead-letter queue)",
                records.len(),
                sequence(&records[0])
            );
            continue;
        }
        if retries > 0 {
            tokio::time::sleep(Duration::from_millis(250 * (1 << retries.min(5)))).await;
        }
        let body = serde_json::json!({ "Records": records });
        let answer = client
            .post(url)
            .header("content-type", "application/json")
            .body(body.to_string())
            .timeout(Duration::from_secs(900))
            .send()
            .await;
        let response = match answer {
            Ok(r) => {
                let status = r.status();
                let text = r.text().await.unwrap_or_default();
                // `{"batchItemFailures": [{"itemIdentifier": "<sequence number>"}]}`;
                // anything else is the function failing.
                let parsed = serde_json::from_str::<Value>(&text).ok().and_then(|v| {
                    v.get("batchItemFailures")?.as_array().map(|failures| {
                        failures
                            .iter()
                            .filter_map(|f| f["itemIdentifier"].as_str().map(str::to_string))
                            .collect::<Vec<String>>()
                    })
                });
                match parsed {
                    Some(failed) if status.is_success() => Ok(failed),
                    _ => Err(format!(
                        "{status}: {}",
                        text.chars().take(300).collect::<String>()
                    )),
                }
            }
            Err(e) => Err(e.to_string()),
        };
        match response {
            Ok(failed) => {
                let first = failed
                    .iter()
                    .filter_map(|seq| records.iter().position(|rec| sequence(rec) == seq))
                    .min();
                if let Some(i) = first {
                    eprintln!(
                        "usersctl: {} reported records from {} as failed; sending them again",
                        records.len() - i,
                        sequence(&records[i])
                    );
                    work.push((records[i..].to_vec(), retries + 1));
                }
            }
            Err(e) => {
                eprintln!(
                    "usersctl: the function failed on {} records: {e}",
                    records.len()
                );
                if records.len() > 1 {
                    let half = records.len() / 2;
                    work.push((records[half..].to_vec(), retries + 1));
                    work.push((records[..half].to_vec(), retries + 1));
                } else {
                    work.push((records, retries + 1));
                }
            }
        }
    }
}

fn sequence(record: &Value) -> &str {
    record["dynamodb"]["SequenceNumber"]
        .as_str()
        .unwrap_or_default()
}
