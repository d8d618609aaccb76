//! Push delivery of one SET to one receiver (RFC 8935): `POST` of the signed
//! token as `application/secevent+jwt`, answered with 202 Accepted.
//!
//! What an answer means here:
//! - 2xx: delivered (RFC 8935 §2.2 asks for 202; any success counts);
//! - 4xx other than 408 and 429: the receiver refused this SET ("the SET
//!   Recipient SHALL respond with an appropriate HTTP Status Code ... 400
//!   (Bad Request)" with an `err` code, §2.3): sending it again will not
//!   help, so it is kept as refused and the next SET goes on;
//! - 3xx: refused too (redirects are not followed: a receiver's URL is
//!   where its SETs go, not where it points);
//! - anything else (5xx, 408, 429, a timeout, no connection): the receiver
//!   is down for now; the same token is sent again, a few times, with a
//!   pause between.
//!
//! Each attempt is bounded (a connect timeout and a total timeout), so one
//! receiver that hangs costs at most `attempts × timeout` of one invocation.
use std::time::{Duration, Instant};

use super::key::SET_MEDIA_TYPE;
use crate::store::Subscriber;

/// How long and how often one SET is tried.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// To connect to a receiver.
    pub connect_timeout: Duration,
    /// For one attempt, from connecting to the end of the answer.
    pub attempt_timeout: Duration,
    /// Attempts per SET within one invocation.
    pub attempts: u32,
    /// Pause before the second attempt; it doubles for each one after.
    pub first_pause: Duration,
}

impl Limits {
    /// What the deployed function uses: 1 s to connect, 2 s per attempt, 3
    /// attempts 100 ms and 200 ms apart: at most about 6.3 s for a receiver
    /// that hangs, a few milliseconds for one that refuses connections.
    pub const LAMBDA: Limits = Limits {
        connect_timeout: Duration::from_secs(1),
        attempt_timeout: Duration::from_secs(2),
        attempts: 3,
        first_pause: Duration::from_millis(100),
    };
}

/// What became of a SET.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    /// The receiver refused it (why, in words).
    Refused(String),
    /// The receiver did not take it within the attempts (the last failure).
    Failed(String),
}

/// Sends SETs; one per function instance (it keeps connections open).
#[derive(Clone)]
pub struct Pusher {
    client: reqwest::Client,
    limits: Limits,
}

impl Pusher {
    pub fn new(limits: Limits) -> Pusher {
        let client = reqwest::Client::builder()
            .connect_timeout(limits.connect_timeout)
            .timeout(limits.attempt_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent("directory-events")
            .build()
            .expect("a client with these settings builds");
        Pusher { client, limits }
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Sends `token` to `subscriber`, trying again while it fails
    /// transiently, up to the attempts or until `deadline` (no attempt
    /// starts after it). Returns the outcome and the attempts made.
    pub async fn push(
        &self,
        subscriber: &Subscriber,
        token: &str,
        deadline: Instant,
    ) -> (Outcome, u32) {
        let mut pause = self.limits.first_pause;
        let mut last = Outcome::Failed("not tried: out of time".to_string());
        for attempt in 1..=self.limits.attempts.max(1) {
            if attempt > 1 {
                if Instant::now() + pause >= deadline {
                    return (last, attempt - 1);
                }
                tokio::time::sleep(pause).await;
                pause *= 2;
            } else if Instant::now() >= deadline {
                return (last, 0);
            }
            last = self.attempt(subscriber, token).await;
            if !matches!(last, Outcome::Failed(_)) {
                return (last, attempt);
            }
        }
        (last, self.limits.attempts.max(1))
    }

    async fn attempt(&self, subscriber: &Subscriber, token: &str) -> Outcome {
        let mut request = self
            .client
            .post(&subscriber.url)
            .header("content-type", SET_MEDIA_TYPE)
            .header("accept", "application/json")
            .body(token.to_string());
        if let Some(secret) = &subscriber.secret {
            request = request.bearer_auth(secret);
        }
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) if e.is_timeout() => return Outcome::Failed("timed out".to_string()),
            Err(e) if e.is_connect() => return Outcome::Failed("could not connect".to_string()),
            Err(e) => return Outcome::Failed(format!("request failed: {e}")),
        };
        let status = response.status();
        if status.is_success() {
            return Outcome::Delivered;
        }
        let code = status.as_u16();
        if code == 408 || code == 429 || status.is_server_error() {
            return Outcome::Failed(code.to_string());
        }
        // RFC 8935 §2.3: `{"err": "invalid_request", "description": "…"}`.
        let body = tokio::time::timeout(self.limits.attempt_timeout, response.text())
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default();
        let err = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| {
                let err = v.get("err")?.as_str()?.to_string();
                Some(match v.get("description").and_then(|d| d.as_str()) {
                    Some(d) => format!("{err}: {d}"),
                    None => err,
                })
            });
        Outcome::Refused(match err {
            Some(err) => format!("{code} {err}"),
            None => code.to_string(),
        })
    }
}

/// Whether `url` may receive SETs: `https`, or plain `http` only to a
/// loopback address (local development), with a host and nothing secret in
/// it (no user or password part: the bearer secret is given apart).
pub fn check_url(url: &str) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("not a URL: {e}"))?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("the URL must not hold credentials; pass a secret with --secret-stdin".into());
    }
    if parsed.fragment().is_some() {
        return Err("the URL must not have a fragment".into());
    }
    let host = parsed.host_str().ok_or("the URL has no host")?;
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        "http" => Err(
            "plain http is only for loopback addresses (localhost, 127.0.0.1, [::1]); use https"
                .into(),
        ),
        other => Err(format!("the URL's scheme must be https, not {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receiver_urls() {
        let cases = [
            ("https://apps.example.com/scim/events", Ok(())),
            ("http://127.0.0.1:8080/events", Ok(())),
            ("http://localhost/events", Ok(())),
            ("http://[::1]:9/x", Ok(())),
            (
                "http://apps.example.com/events",
                Err("plain http is only for loopback addresses (localhost, 127.0.0.1, [::1]); use https"),
            ),
            ("ftp://apps.example.com/", Err("the URL's scheme must be https, not ftp")),
            (
                "https://user:pw@apps.example.com/",
                Err("the URL must not hold credentials; pass a secret with --secret-stdin"),
            ),
            ("https://apps.example.com/#x", Err("the URL must not have a fragment")),
        ];
        for (url, want) in cases {
            assert_eq!(check_url(url), want.map_err(str::to_string), "{url}");
        }
        assert!(check_url("not a url").unwrap_err().starts_with("not a URL"));
    }
}
