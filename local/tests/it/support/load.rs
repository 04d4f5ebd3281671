//! HTTP load with idempotent retries, and the checks at the end of a chaos test.
//!
//! Each worker is one user on its own keep-alive connection: signup and signin (retried
//! until answered), then opens and closes of BTC positions, each with its own
//! `Idempotency-Key`, resent with the same key until an answer is final (not 5xx, not a
//! broken connection). Every status seen is counted, so a test can assert there was no 500.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hyper::{Method, StatusCode};
use local::client::Connection;
use rust_decimal::Decimal;
use serde_json::{Value, json};
use tokio::sync::watch;

/// What a worker did: the positions its 201s and 200s name.
#[derive(Debug, Default)]
pub struct WorkerLog {
    pub user: uuid::Uuid,
    pub token: String,
    pub opened: BTreeSet<u64>,
    pub closed: BTreeMap<u64, Decimal>,
}

/// Statuses seen (including retried ones), and broken connections.
#[derive(Debug, Default, Clone)]
pub struct Seen {
    pub statuses: Arc<Mutex<BTreeMap<u16, u64>>>,
}

impl Seen {
    fn count(&self, status: u16) {
        if let Ok(mut s) = self.statuses.lock() {
            *s.entry(status).or_default() += 1;
        }
    }

    pub fn get(&self, status: u16) -> u64 {
        self.statuses
            .lock()
            .map(|s| s.get(&status).copied().unwrap_or(0))
            .unwrap_or(0)
    }

    pub fn snapshot(&self) -> BTreeMap<u16, u64> {
        self.statuses.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

/// One worker's connection, reopened whenever it breaks.
pub struct Client {
    addr: SocketAddr,
    conn: Option<Connection>,
    pub seen: Seen,
}

impl Client {
    pub fn new(addr: SocketAddr, seen: Seen) -> Self {
        Self {
            addr,
            conn: None,
            seen,
        }
    }

    /// One attempt: the answer, or `None` when the connection broke or timed out.
    pub async fn once(
        &mut self,
        method: Method,
        path: &str,
        token: Option<&str>,
        key: Option<&str>,
        body: Option<&Value>,
    ) -> Option<(StatusCode, Value)> {
        if self.conn.is_none() {
            self.conn = Connection::open(self.addr).await.ok();
        }
        let conn = self.conn.as_mut()?;
        let headers: Vec<(&str, &str)> = key.map(|k| ("idempotency-key", k)).into_iter().collect();
        let sent = conn.send(method, path, token, &headers, body);
        match tokio::time::timeout(Duration::from_secs(30), sent).await {
            Ok(Ok((status, body))) => {
                self.seen.count(status.as_u16());
                Some((status, body))
            }
            _ => {
                self.conn = None;
                None
            }
        }
    }

    /// Resends (same key, same body) until the answer is final: not 5xx, not a broken
    /// connection. Panics after a generous deadline.
    pub async fn until_final(
        &mut self,
        method: Method,
        path: &str,
        token: Option<&str>,
        key: Option<&str>,
        body: Option<&Value>,
    ) -> (StatusCode, Value) {
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            if let Some((status, body)) = self.once(method.clone(), path, token, key, body).await
                && !status.is_server_error()
            {
                return (status, body);
            }
            assert!(Instant::now() < deadline, "{path} never got a final answer");
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }
}

/// Signs a new user up and in (retrying both); returns the user id and the token.
pub async fn user(client: &mut Client, email: &str) -> (uuid::Uuid, String) {
    let creds = json!({ "email": email, "password": "correct horse battery" });
    let (status, body) = client
        .until_final(
            Method::POST,
            "/api/v1/auth/signup",
            None,
            None,
            Some(&creds),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "signup: {body}");
    let (status, body) = client
        .until_final(
            Method::POST,
            "/api/v1/auth/signin",
            None,
            None,
            Some(&creds),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "signin: {body}");
    let user = body["userId"]
        .as_str()
        .and_then(|u| u.parse().ok())
        .expect("userId");
    (user, body["token"].as_str().expect("token").to_string())
}

fn position_id(body: &Value) -> u64 {
    body["position"]["id"]
        .as_u64()
        .unwrap_or_else(|| panic!("no position id in {body}"))
}

fn decimal(v: &Value) -> Decimal {
    v.as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not a decimal string: {v}"))
}

/// One user trading until `stop`: opens, and every other operation closes an open one.
pub async fn worker(
    addr: SocketAddr,
    seen: Seen,
    w: usize,
    stop: watch::Receiver<bool>,
) -> WorkerLog {
    let mut client = Client::new(addr, seen);
    let run = uuid::Uuid::new_v4().simple().to_string();
    let (user_id, token) = user(&mut client, &format!("w{w}-{}@example.com", &run[..8])).await;
    let mut log = WorkerLog {
        user: user_id,
        token: token.clone(),
        ..WorkerLog::default()
    };
    let mut open: Vec<u64> = Vec::new();
    let mut op = 0u32;
    while !*stop.borrow() {
        op += 1;
        let key = format!("{run}-{op}");
        // Every other operation closes one, so the open positions (and margin) stay few.
        if op.is_multiple_of(2) && !open.is_empty() {
            let id = open.swap_remove(op as usize % open.len());
            let body = json!({ "positionId": id });
            let (status, body) = client
                .until_final(
                    Method::POST,
                    "/api/v1/trade/close",
                    Some(&token),
                    Some(&key),
                    Some(&body),
                )
                .await;
            assert_eq!(status, StatusCode::OK, "close: {body}");
            assert_eq!(position_id(&body), id);
            log.closed
                .insert(id, decimal(&body["position"]["realizedPnl"]));
        } else {
            let side = if op % 4 == 1 { "buy" } else { "sell" };
            let body = json!({ "asset": "BTC", "side": side, "quantity": "0.01", "leverage": 5 });
            let (status, body) = client
                .until_final(
                    Method::POST,
                    "/api/v1/trade/open",
                    Some(&token),
                    Some(&key),
                    Some(&body),
                )
                .await;
            match status {
                StatusCode::CREATED => {
                    let id = position_id(&body);
                    assert!(log.opened.insert(id), "two 201s named position {id}");
                    open.push(id);
                }
                // Before the first quote reached the engine, or a refusal: no position.
                StatusCode::UNPROCESSABLE_ENTITY => {}
                other => panic!("open: {other} {body}"),
            }
        }
    }
    log
}

/// Starts `n` workers against `addr`.
pub fn start_workers(
    addr: SocketAddr,
    seen: &Seen,
    n: usize,
    stop: &watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<WorkerLog>> {
    (0..n)
        .map(|w| tokio::spawn(worker(addr, seen.clone(), w, stop.clone())))
        .collect()
}

/// Every 201 exists exactly once, balances equal deposits plus realised PnL, and the
/// history in PostgreSQL matches the engine (polled: `persist` may still be catching up).
pub async fn check(addr: SocketAddr, seen: &Seen, db: &sqlx::PgPool, logs: &[WorkerLog]) {
    let mut client = Client::new(addr, seen.clone());
    for log in logs {
        let t = Some(log.token.as_str());
        let (status, open) = client
            .until_final(Method::GET, "/api/v1/trade/open", t, None, None)
            .await;
        assert_eq!(status, StatusCode::OK, "{open}");
        let engine_open: BTreeSet<u64> = open["positions"]
            .as_array()
            .expect("positions")
            .iter()
            .map(|p| p["id"].as_u64().expect("id"))
            .collect();
        let still_open: BTreeSet<u64> = log
            .opened
            .iter()
            .filter(|id| !log.closed.contains_key(id))
            .copied()
            .collect();
        assert_eq!(
            engine_open, still_open,
            "the engine holds exactly the positions answered 201 and not closed"
        );

        let (status, balance) = client
            .until_final(Method::GET, "/api/v1/balance", t, None, None)
            .await;
        assert_eq!(status, StatusCode::OK, "{balance}");
        let realised: Decimal = log.closed.values().copied().sum();
        assert_eq!(
            decimal(&balance["balance"]),
            Decimal::from(10_000) + realised,
            "{balance}"
        );

        let user = log.user;
        let closed: BTreeSet<u64> = log.closed.keys().copied().collect();
        let started = Instant::now();
        let deadline = started + Duration::from_secs(90);
        loop {
            let last = history(db, user).await;
            if last == (still_open.clone(), closed.clone()) {
                eprintln!("history matched the engine after {:?}", started.elapsed());
                break;
            }
            assert!(
                Instant::now() < deadline,
                "history {last:?} != engine ({still_open:?}, {closed:?})"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let pnl: Option<Decimal> =
            sqlx::query_scalar("SELECT sum(realized_pnl) FROM positions WHERE user_id = $1")
                .bind(user)
                .fetch_one(db)
                .await
                .expect("sum");
        assert_eq!(pnl.unwrap_or_default(), realised, "realised PnL in history");
    }
}

/// (open, closed) position ids of a user in PostgreSQL.
async fn history(db: &sqlx::PgPool, user: uuid::Uuid) -> (BTreeSet<u64>, BTreeSet<u64>) {
    let rows: Vec<(i64, String)> =
        sqlx::query_as("SELECT id, status FROM positions WHERE user_id = $1")
            .bind(user)
            .fetch_all(db)
            .await
            .unwrap_or_default();
    let mut open = BTreeSet::new();
    let mut closed = BTreeSet::new();
    for (id, status) in rows {
        let id = id as u64;
        if status == "open" {
            open.insert(id);
        } else {
            closed.insert(id);
        }
    }
    (open, closed)
}
