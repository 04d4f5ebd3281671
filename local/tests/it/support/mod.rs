//! Black-box test support: the `exness-local` binary as a child process with its own prefix,
//! database and port; private NATS and PostgreSQL servers a test can stop and start again; a
//! price ticker; and the HTTP load with its end-of-test checks (`load`).
#![allow(dead_code)] // each test uses a different part

pub mod load;
mod servers;

pub use servers::{PrivateNats, PrivatePostgres};

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use bus::nats::EngineClient;
use bus::{Asset, Names, PriceTick};
use tokio::process::{Child, Command};
use tokio::sync::watch;

pub fn nats_url() -> String {
    std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

/// A port nobody listens on right now (bound, read, released).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    listener.local_addr().expect("addr").port()
}

/// A fresh directory under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(what: &str) -> Self {
        let path = std::env::temp_dir().join(format!("{what}-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&path).expect("temp dir");
        Self(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Polls `check` until it holds; panics with `what` after a generous deadline.
pub async fn eventually<F, Fut>(what: &str, within: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while !check().await {
        assert!(Instant::now() < deadline, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// How one runner process is configured (the same across its restarts).
#[derive(Clone)]
pub struct RunnerEnv {
    pub nats_url: String,
    pub database_url: String,
    pub prefix: String,
    pub addr: SocketAddr,
    pub log: PathBuf,
}

impl RunnerEnv {
    pub fn new(nats_url: String, database_url: String, logs: &Path) -> Self {
        let prefix = format!("chaos{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
        Self {
            nats_url,
            database_url,
            prefix,
            addr: SocketAddr::from(([127, 0, 0, 1], free_port())),
            log: logs.join("runner.log"),
        }
    }

    pub fn names(&self) -> Names {
        Names::new(self.prefix.clone())
    }
}

/// The runner binary as a child process; killed when dropped.
pub struct Runner {
    pub child: Child,
    pub env: RunnerEnv,
}

impl Runner {
    /// Starts the runner and waits until its HTTP port answers.
    pub async fn start(env: &RunnerEnv) -> Self {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&env.log)
            .expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_exness-local"))
            .env("NATS_URL", &env.nats_url)
            .env("DATABASE_URL", &env.database_url)
            .env("ENGINE_PREFIX", &env.prefix)
            .env("HTTP_ADDR", env.addr.to_string())
            .env("MARKET_DATA", "off")
            .env(
                "JWT_SECRET",
                "chaos-test-secret-that-is-long-enough-0123456789",
            )
            .env("ENGINE_TIMEOUT_MS", "3000")
            .env("ENGINE_SNAPSHOT_SECS", "2")
            // Outage tests retry every request until it is final, far above a person's rate:
            // the limits have their own tests (functions `auth`, `trade`).
            .env("RATE_ACCOUNT_COMMANDS", "100000/1")
            .env("RATE_AUTH_ADDRESS", "100000/60")
            .env("RATE_AUTH_EMAIL", "100000/60")
            .env("RATE_AUTH_EMAIL_LONG", "100000/60")
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::from(log.try_clone().expect("log")))
            .stderr(Stdio::from(log))
            .kill_on_drop(true)
            .spawn()
            .expect("the runner binary starts");
        let runner = Self {
            child,
            env: env.clone(),
        };
        let addr = env.addr;
        eventually(
            "the runner listens",
            Duration::from_secs(90),
            || async move { tokio::net::TcpStream::connect(addr).await.is_ok() },
        )
        .await;
        runner
    }

    /// True while the process has not exited.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGKILL, and waits for the process to be gone.
    pub async fn kill(&mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }

    /// SIGTERM (a clean stop); SIGKILL if it does not stop in time. `CHAOS_LOG=1` prints
    /// the end of the runner's log.
    pub async fn stop(mut self) {
        if std::env::var_os("CHAOS_LOG").is_some() {
            let lines = std::fs::read_to_string(&self.env.log).map_or(0, |t| t.lines().count());
            eprintln!(
                "runner log ({lines} lines), last ones:\n{}",
                self.log_tail()
            );
        }
        signal(&self.child, "TERM");
        if tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .is_err()
        {
            self.kill().await;
        }
    }

    /// The end of the runner's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.env.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

/// Sends a signal by name to a child (`kill -<name> <pid>`).
pub fn signal(child: &Child, name: &str) {
    if let Some(pid) = child.id() {
        let _ = std::process::Command::new("kill")
            .arg(format!("-{name}"))
            .arg(pid.to_string())
            .status();
    }
}

/// Publishes a BTC quote walking around 60,000 every 100 ms until `stop` (errors, e.g. NATS
/// down, are skipped).
pub fn ticker(
    nats_url: String,
    names: Names,
    stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let nats = async_nats::ConnectOptions::new()
            .retry_on_initial_connect()
            .connect(&nats_url)
            .await
            .expect("ticker connects");
        let engine = EngineClient::new(nats, names, Duration::from_secs(2));
        let mut step: i64 = 0;
        while !*stop.borrow() {
            step += 1;
            let bid = 60_000 + (step * 37 % 400) - 200;
            let tick = PriceTick {
                asset: Asset::Btc,
                bid: format!("{bid}.00").parse().expect("bid"),
                ask: format!("{bid}.50").parse().expect("ask"),
                ts: 0,
                simulated: false,
            };
            let _ = tokio::time::timeout(Duration::from_secs(2), engine.publish_tick(&tick)).await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
}

/// Deletes a prefix's streams on a NATS server (the shared one keeps them otherwise).
pub async fn delete_streams(nats_url: &str, names: &Names) {
    let Ok(nats) = async_nats::connect(nats_url).await else {
        return;
    };
    let js = async_nats::jetstream::new(nats);
    let lock = format!("KV_{}", engine::service::lock_bucket_name(names));
    for stream in [
        names.engine_stream(),
        names.events_stream(),
        names.trades_stream(),
        names.dead_letter_stream(),
        lock,
    ] {
        let _ = js.delete_stream(&stream).await;
    }
}
