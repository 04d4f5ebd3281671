//! Black-box chaos tests of the `exness-local` binary (a child process with its own prefix,
//! database and port) under HTTP load with idempotent retries:
//! - SIGKILLed and restarted three times: every 201 names a position that exists exactly
//!   once, balances equal the deposit plus realised PnL, and history (PostgreSQL) matches
//!   the engine;
//! - a 10 s outage of a private NATS server (stopped and started again on the same port and
//!   store): the runner stays up, answers 503/504 meanwhile and serves again by itself;
//! - the same for a private PostgreSQL server (`initdb` + `pg_ctl`), skipped where the
//!   server binaries are missing.
//!
//! No assertion depends on speed: every wait is a poll with a generous deadline.

use crate::support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use hyper::{Method, StatusCode};
use migrations::TestDatabase;
use serde_json::json;
use support::load::{self, Client, Seen, WorkerLog};
use support::{PrivateNats, PrivatePostgres, Runner, RunnerEnv, TempDir, eventually};
use tokio::sync::watch;

const WORKERS: usize = 4;

/// One scenario at a time: each runs a runner under load on this 2-core machine, and three at
/// once starve each other's deadlines (a tokio mutex: no poisoning when one fails).
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
const OUTAGE: Duration = Duration::from_secs(10);

/// Waits until `n` more trades were answered 201.
async fn progress(seen: &Seen, n: u64) {
    let start = seen.get(201);
    let seen = seen.clone();
    eventually("trades are answered 201", Duration::from_secs(180), || {
        let seen = seen.clone();
        async move { seen.get(201) >= start + n }
    })
    .await;
}

async fn finish(
    stop: &watch::Sender<bool>,
    workers: Vec<tokio::task::JoinHandle<WorkerLog>>,
) -> Vec<WorkerLog> {
    stop.send_replace(true);
    let mut logs = Vec::new();
    for w in workers {
        logs.push(w.await.expect("worker"));
    }
    logs
}

/// Statuses counted between two snapshots.
fn delta(before: &BTreeMap<u16, u64>, after: &BTreeMap<u16, u64>) -> BTreeMap<u16, u64> {
    after
        .iter()
        .map(|(s, n)| (*s, n - before.get(s).copied().unwrap_or(0)))
        .filter(|(_, n)| *n > 0)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigkilled_runner_loses_and_doubles_nothing() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let db = TestDatabase::create().await.expect("db");
    let logs = TempDir::new("chaos-kill");
    let env = RunnerEnv::new(support::nats_url(), db.url.clone(), &logs.0);
    let (stop, stopped) = watch::channel(false);
    let ticker = support::ticker(env.nats_url.clone(), env.names(), stopped.clone());
    let mut runner = Runner::start(&env).await;
    let seen = Seen::default();
    let workers = load::start_workers(env.addr, &seen, WORKERS, &stopped);
    for _ in 0..3 {
        progress(&seen, 15).await;
        // Somewhere in the middle of requests, not at a quiet moment.
        let jitter = uuid::Uuid::new_v4().as_u64_pair().0 % 700;
        tokio::time::sleep(Duration::from_millis(jitter)).await;
        runner.kill().await;
        runner = Runner::start(&env).await;
    }
    progress(&seen, 15).await;
    let worker_logs = finish(&stop, workers).await;
    load::check(env.addr, &seen, &db.pool, &worker_logs).await;
    assert_eq!(
        seen.get(500),
        0,
        "statuses: {:?}\n{}",
        seen.snapshot(),
        runner.log_tail()
    );
    eprintln!("statuses seen: {:?}", seen.snapshot());
    runner.stop().await;
    let _ = ticker.await;
    support::delete_streams(&env.nats_url, &env.names()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nats_outage_under_load_is_ridden_out_without_a_restart() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let mut nats = PrivateNats::start().await;
    let db = TestDatabase::create().await.expect("db");
    let logs = TempDir::new("chaos-nats");
    let env = RunnerEnv::new(nats.url(), db.url.clone(), &logs.0);
    let (stop, stopped) = watch::channel(false);
    let ticker = support::ticker(env.nats_url.clone(), env.names(), stopped.clone());
    let mut runner = Runner::start(&env).await;
    let pid = runner.child.id();
    let seen = Seen::default();
    let workers = load::start_workers(env.addr, &seen, WORKERS, &stopped);
    progress(&seen, 15).await;

    nats.halt().await;
    let before = seen.snapshot();
    let down = Instant::now();
    while down.elapsed() < OUTAGE {
        assert!(
            runner.is_running(),
            "the runner exited:\n{}",
            runner.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let during = delta(&before, &seen.snapshot());
    eprintln!("statuses while NATS was down: {during:?}");
    nats.resume().await;

    assert!(
        during.get(&503).copied().unwrap_or(0) + during.get(&504).copied().unwrap_or(0) > 0,
        "503/504 while NATS was down: {during:?}"
    );
    assert!(
        during.keys().all(|s| [200, 201, 503, 504].contains(s)),
        "only 503/504 (or answers already on their way): {during:?}"
    );
    progress(&seen, 15).await;
    assert!(
        runner.is_running() && runner.child.id() == pid,
        "served again by the same process"
    );
    let worker_logs = finish(&stop, workers).await;
    load::check(env.addr, &seen, &db.pool, &worker_logs).await;
    assert_eq!(
        seen.get(500),
        0,
        "statuses: {:?}\n{}",
        seen.snapshot(),
        runner.log_tail()
    );
    eprintln!("statuses seen: {:?}", seen.snapshot());
    runner.stop().await;
    let _ = ticker.await;
    nats.halt().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_outage_under_load_is_ridden_out_without_a_restart() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let Some(pg) = PrivatePostgres::start() else {
        eprintln!("skipped: no PostgreSQL server binaries (or no postgres user) on this machine");
        return;
    };
    let db = sqlx::PgPool::connect(&pg.url()).await.expect("private db");
    let logs = TempDir::new("chaos-pg");
    let env = RunnerEnv::new(support::nats_url(), pg.url(), &logs.0);
    let (stop, stopped) = watch::channel(false);
    let ticker = support::ticker(env.nats_url.clone(), env.names(), stopped.clone());
    let mut runner = Runner::start(&env).await;
    let pid = runner.child.id();
    let seen = Seen::default();
    let mut probe = Client::new(env.addr, Seen::default());
    let email = format!("probe-{}@example.com", uuid::Uuid::new_v4().simple());
    let (_, token) = load::user(&mut probe, &email).await;
    let workers = load::start_workers(env.addr, &seen, WORKERS, &stopped);
    progress(&seen, 15).await;

    pg.halt();
    let down = Instant::now();
    let mut answers = BTreeMap::<u16, u64>::new();
    let creds = json!({ "email": email, "password": "correct horse battery" });
    while down.elapsed() < OUTAGE {
        assert!(
            runner.is_running(),
            "the runner exited:\n{}",
            runner.log_tail()
        );
        let closed = probe
            .once(
                Method::GET,
                "/api/v1/trade/closed",
                Some(&token),
                None,
                None,
            )
            .await;
        let signin = probe
            .once(
                Method::POST,
                "/api/v1/auth/signin",
                None,
                None,
                Some(&creds),
            )
            .await;
        for (status, _) in closed.into_iter().chain(signin) {
            *answers.entry(status.as_u16()).or_default() += 1;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    eprintln!("probe answers while PostgreSQL was down: {answers:?}");
    assert!(
        answers.contains_key(&503),
        "503 while PostgreSQL was down: {answers:?}"
    );
    assert!(
        answers.keys().all(|s| *s == 503),
        "only 503 while PostgreSQL was down: {answers:?}"
    );
    assert!(pg.resume(), "the private PostgreSQL starts again");

    let (status, body) = probe
        .until_final(
            Method::GET,
            "/api/v1/trade/closed",
            Some(&token),
            None,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    progress(&seen, 15).await;
    assert!(
        runner.is_running() && runner.child.id() == pid,
        "served again by the same process"
    );
    let worker_logs = finish(&stop, workers).await;
    load::check(env.addr, &seen, &db, &worker_logs).await;
    assert_eq!(
        seen.get(500),
        0,
        "statuses: {:?}\n{}",
        seen.snapshot(),
        runner.log_tail()
    );
    eprintln!("statuses seen: {:?}", seen.snapshot());
    runner.stop().await;
    let _ = ticker.await;
    support::delete_streams(&env.nats_url, &env.names()).await;
}

/// One request's status and how long its answer took.
async fn timed(
    probe: &mut Client,
    method: Method,
    path: &str,
    token: &str,
    body: Option<&serde_json::Value>,
) -> (Option<StatusCode>, Duration) {
    let key = uuid::Uuid::new_v4().to_string();
    let key = (method == Method::POST).then_some(key.as_str());
    let start = Instant::now();
    let answer = probe.once(method, path, Some(token), key, body).await;
    (answer.map(|(status, _)| status), start.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_nats_is_down_trades_and_balance_answer_503_at_once_and_trading_resumes() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let mut nats = PrivateNats::start().await;
    let db = TestDatabase::create().await.expect("db");
    let logs = TempDir::new("chaos-nats-down");
    let env = RunnerEnv::new(nats.url(), db.url.clone(), &logs.0);
    let (stop, stopped) = watch::channel(false);
    let ticker = support::ticker(env.nats_url.clone(), env.names(), stopped.clone());
    let runner = Runner::start(&env).await;
    let mut probe = Client::new(env.addr, Seen::default());
    let email = format!("down-{}@example.com", uuid::Uuid::new_v4().simple());
    let (_, token) = load::user(&mut probe, &email).await;
    let open = json!({ "asset": "BTC", "side": "buy", "quantity": "0.01", "leverage": 10 });
    let key = uuid::Uuid::new_v4().to_string();
    let (status, body) = probe
        .until_final(
            Method::POST,
            "/api/v1/trade/open",
            Some(&token),
            Some(&key),
            Some(&open),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    nats.halt().await;
    // A stopped server closes its connections: the runner knows at once. Give it a moment.
    tokio::time::sleep(Duration::from_millis(500)).await;
    // The runner's engine timeout is 3 s (support::Runner); the grace is the default 250 ms.
    let bound = Duration::from_millis(1500);
    let mut slowest = Duration::ZERO;
    for _ in 0..5 {
        for (method, path, body) in [
            (Method::POST, "/api/v1/trade/open", Some(&open)),
            (Method::GET, "/api/v1/balance", None),
        ] {
            let (status, took) = timed(&mut probe, method, path, &token, body).await;
            assert_eq!(status, Some(StatusCode::SERVICE_UNAVAILABLE), "{path}");
            assert!(took < bound, "{path} took {took:?} while NATS was down");
            slowest = slowest.max(took);
        }
    }
    eprintln!("slowest 503 while NATS was down: {slowest:?}");
    nats.resume().await;

    let key = uuid::Uuid::new_v4().to_string();
    let (status, body) = probe
        .until_final(
            Method::POST,
            "/api/v1/trade/open",
            Some(&token),
            Some(&key),
            Some(&open),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "trading resumed by itself: {body}"
    );
    stop.send_replace(true);
    runner.stop().await;
    let _ = ticker.await;
    nats.halt().await;
}
