//! A SET receiver for tests (RFC 8935's recipient): an HTTP server on a
//! loopback port that records every request and answers as told: 202 by
//! default, or each of a scripted list of answers first (a status, a hang,
//! a dropped connection). Also serves other small JSON APIs (an EventBridge
//! stand-in) through [`Receiver::with_handler`].
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One answer the receiver gives.
#[derive(Debug, Clone)]
pub enum Answer {
    /// This status with this body.
    Status(u16, String),
    /// Accept the request and never answer.
    Hang,
    /// Close the connection without answering.
    Drop,
}

/// A request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// What it answered.
    pub answered: u16,
    /// When it arrived.
    pub at: std::time::Instant,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

type Handler = Arc<dyn Fn(&Received) -> Answer + Send + Sync>;

#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    script: Arc<Mutex<VecDeque<Answer>>>,
    received: Arc<Mutex<Vec<Received>>>,
    handler: Option<Handler>,
    stopped: Arc<Mutex<bool>>,
}

impl Receiver {
    /// A receiver answering 202 to everything.
    pub async fn start() -> Receiver {
        Receiver::serve(None).await
    }

    /// A receiver answering each request with `handler`.
    pub async fn with_handler(
        handler: impl Fn(&Received) -> Answer + Send + Sync + 'static,
    ) -> Receiver {
        Receiver::serve(Some(Arc::new(handler))).await
    }

    async fn serve(handler: Option<Handler>) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind a port");
        let port = listener.local_addr().unwrap().port();
        let receiver = Receiver {
            url: format!("http://127.0.0.1:{port}/events"),
            script: Arc::default(),
            received: Arc::default(),
            handler,
            stopped: Arc::default(),
        };
        let r = receiver.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                if *r.stopped.lock().unwrap() {
                    drop(stream);
                    continue;
                }
                let r = r.clone();
                tokio::spawn(async move { r.answer(stream).await });
            }
        });
        receiver
    }

    /// Answers the next requests with these, in order, then 202 again.
    pub fn script(&self, answers: impl IntoIterator<Item = Answer>) {
        self.script.lock().unwrap().extend(answers);
    }

    /// From now on, close every connection at once (a receiver that is down).
    pub fn stop(&self) {
        *self.stopped.lock().unwrap() = true;
    }

    pub fn resume(&self) {
        *self.stopped.lock().unwrap() = false;
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// The bodies of the requests it answered with a success.
    pub fn accepted(&self) -> Vec<String> {
        self.received()
            .into_iter()
            .filter(|r| (200..300).contains(&r.answered))
            .map(|r| r.body)
            .collect()
    }

    async fn answer(&self, mut stream: TcpStream) {
        let Some(mut request) = read_request(&mut stream).await else {
            return;
        };
        let next = self.script.lock().unwrap().pop_front();
        let answer = match (next, &self.handler) {
            (Some(a), _) => a,
            (None, Some(h)) => h(&request),
            (None, None) => Answer::Status(202, String::new()),
        };
        request.answered = match &answer {
            Answer::Status(status, _) => *status,
            _ => 0,
        };
        self.received.lock().unwrap().push(request);
        match answer {
            Answer::Status(status, body) => {
                let response = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
                let _ = stream.shutdown().await;
            }
            Answer::Hang => tokio::time::sleep(Duration::from_secs(60)).await,
            Answer::Drop => drop(stream),
        }
    }
}

async fn read_request(stream: &mut TcpStream) -> Option<Received> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let mut start = lines.next()?.split(' ');
    let method = start.next()?.to_string();
    let path = start.next()?.to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Some(Received {
        method,
        path,
        headers,
        body: String::from_utf8_lossy(&buf[head_end..]).to_string(),
        answered: 0,
        at: std::time::Instant::now(),
    })
}
