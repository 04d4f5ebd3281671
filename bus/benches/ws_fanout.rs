//! WebSocket fan-out benchmark (run by hand, in release):
//!
//! ```sh
//! cargo bench -p bus --features hub --bench ws_fanout
//! CLIENTS=10000 SECS=20 RATE=10 cargo bench -p bus --features hub --bench ws_fanout
//! PIN=1 CLIENTS=10000 SECS=15 RATE=10 cargo bench -p bus --features hub --bench ws_fanout
//! ```
//!
//! `PIN=1` runs the hub on CPU 0 and the clients on CPU 1 (`taskset`), so the hub's own cost
//! is measured apart from its clients' (in production they are browsers on other machines);
//! the hub's CPU while publishing is then read as a share of its one core. `WS_FANOUT_SHARDS`
//! sets the hub's fan-out parts (default: the CPUs it may run on, so 1 when pinned).
//!
//! Starts the hub in a child process (this same binary with `hub-process`; one process could
//! not hold 20,000 sockets under the 20,000-descriptor limit), connects `CLIENTS` WebSocket
//! clients over loopback, publishes `RATE` quotes per second for each of the 3 assets to Redis
//! for `SECS` seconds, and reports delivered messages per second, the delay from the Redis
//! publish (the quote's `ts`, in ms) to receipt by the client, and any quote a client missed.
//! Then the floor of the same run: `FLOOR` quotes (10) one at a time, 500 ms apart, so each
//! fan-out finds the hub idle: what one pass over every client costs (wall time, the hub's
//! CPU) and how late a lone quote reaches them. Real Redis and NATS, random prefixes.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

use bus::hub::{HubSettings, HubStats};
use bus::{Asset, MarketQuote, Price, PriceKeys};
use futures_util::StreamExt;
use rust_decimal::Decimal;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

fn env_u64(key: &str, default: u64) -> u64 {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// The child: serves the hub on a free port, prints it, prints its counters (JSON, one line)
/// for every line it reads on stdin, stops when stdin closes.
async fn hub_process(redis_prefix: String) -> Res<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("PORT {}", listener.local_addr()?.port());
    std::io::stdout().flush()?;
    let nats_url = std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
    let names = bus::Names::new(format!(
        "bench{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    ));
    let settings = HubSettings {
        redis_url: redis_url(),
        redis_prefix,
        nats_url: nats_url.clone(),
        bus_prefix: names.prefix().to_string(),
        max_connections: 20_000,
        // Every bench client comes from 127.0.0.1.
        admission: bus::hub::AdmissionLimits {
            max_handshakes_per_address: 1024,
            max_connections_per_address: 20_000,
            ..HubSettings::default().admission
        },
        fanout_shards: env_u64(
            "WS_FANOUT_SHARDS",
            HubSettings::default().fanout_shards as u64,
        ) as usize,
        ..HubSettings::default()
    };
    eprintln!("hub: fan-out in up to {} parts", settings.fanout_shards);
    let stats = HubStats::default();
    let reported = stats.clone();
    let stdin_closed = async move {
        let _ = tokio::task::spawn_blocking(move || {
            let mut line = String::new();
            while std::io::stdin()
                .read_line(&mut line)
                .map(|n| n > 0)
                .unwrap_or(false)
            {
                line.clear();
                let report = serde_json::to_string(&reported.report()).unwrap_or_default();
                println!("{report}");
                let _ = std::io::stdout().flush();
            }
        })
        .await;
    };
    bus::hub::serve(listener, settings, stats.clone(), stdin_closed).await?;
    eprintln!(
        "hub: {:?}; hub process CPU (user, system) {:?} s",
        stats.report(),
        cpu_split()
    );
    Ok(())
}

/// User + system CPU seconds of a process so far (Linux `/proc/<pid>/stat`).
fn cpu_secs(pid: &str) -> f64 {
    let (user, system) = cpu_split_of(pid);
    user + system
}

/// (user, system) CPU seconds of this process so far.
fn cpu_split() -> (f64, f64) {
    cpu_split_of("self")
}

fn cpu_split_of(pid: &str) -> (f64, f64) {
    bus::process::cpu::process_split(pid).unwrap_or_default()
}

/// Seconds a process's threads spent on a CPU and runnable but waiting for one, so far
/// (`/proc/<pid>/task/*/schedstat`): a hub that waits much is short of CPU, not of work.
fn sched_secs(pid: &str) -> (f64, f64) {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return (0.0, 0.0);
    };
    let (mut on_cpu, mut waiting) = (0u64, 0u64);
    for task in tasks.flatten() {
        let stat = std::fs::read_to_string(task.path().join("schedstat")).unwrap_or_default();
        let mut fields = stat
            .split_whitespace()
            .map(|f| f.parse::<u64>().unwrap_or(0));
        on_cpu += fields.next().unwrap_or(0);
        waiting += fields.next().unwrap_or(0);
    }
    (on_cpu as f64 / 1e9, waiting as f64 / 1e9)
}

/// Delay histogram in 1 ms buckets up to 5 s.
struct Histogram(Vec<AtomicU64>);

impl Histogram {
    fn new() -> Self {
        Self((0..5001).map(|_| AtomicU64::new(0)).collect())
    }
    fn record(&self, ms: i64) {
        let i = ms.clamp(0, 5000) as usize;
        self.0[i].fetch_add(1, Relaxed);
    }
    fn percentile(&self, p: f64) -> usize {
        let counts: Vec<u64> = self.0.iter().map(|c| c.load(Relaxed)).collect();
        let total: u64 = counts.iter().sum();
        let target = (total as f64 * p).ceil() as u64;
        let mut seen = 0;
        for (ms, c) in counts.iter().enumerate() {
            seen += c;
            if seen >= target.max(1) {
                return ms;
            }
        }
        5000
    }
}

/// The `ts` field of a quote, without a full JSON parse (the client side shares the CPU).
fn quote_ts(text: &str) -> Option<i64> {
    let start = text.find("\"ts\":")? + 5;
    let digits: String = text[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// What every client shares: a delay histogram per phase (0 the load, 1 the floor), the
/// phase now, quotes received, clients connected.
struct Shared {
    hists: [Histogram; 2],
    phase: AtomicUsize,
    received: AtomicU64,
    connected: AtomicU64,
}

async fn client(port: u16, shared: Arc<Shared>) -> Res<u64> {
    // A small read chunk: tungstenite zero-fills it before each read (default 128 KiB).
    let config = WebSocketConfig::default().read_buffer_size(4096);
    let url = format!("ws://127.0.0.1:{port}");
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(url, Some(config), true).await?;
    shared.connected.fetch_add(1, Relaxed);
    let mut mine = 0;
    while let Some(msg) = ws.next().await {
        if let Message::Text(text) = msg?
            && let Some(ts) = quote_ts(&text)
        {
            shared.hists[shared.phase.load(Relaxed)].record(now_ms() - ts);
            mine += 1;
            shared.received.fetch_add(1, Relaxed);
        }
    }
    Ok(mine)
}

/// Publishes `total` quotes, one every `every`, rotating over the assets.
async fn publish(redis_prefix: &str, total: u64, every: Duration) -> Res<u64> {
    let keys = PriceKeys::new(redis_prefix.to_string());
    let mut conn = redis::Client::open(redis_url())?
        .get_multiplexed_async_connection()
        .await?;
    // The publisher shares a runtime with 10,000 clients on one loaded CPU: a reply can take
    // longer than redis' 500 ms default, which would abort the run.
    conn.set_response_timeout(Duration::from_secs(10));
    let mut timer = tokio::time::interval(every);
    for i in 0..total {
        timer.tick().await;
        let asset = Asset::ALL[(i % 3) as usize];
        let bid = Decimal::from(60_000 + i as i64);
        let quote = MarketQuote {
            asset,
            bid: Price::new(bid)?,
            ask: Price::new(bid + Decimal::ONE)?,
            ts: now_ms(),
            simulated: true,
        };
        bus::prices::publish_quote(&mut conn, &keys, &quote).await?;
    }
    Ok(total)
}

/// The CPUs of the hub and of the clients when `PIN=1`.
const HUB_CPU: &str = "0";
const CLIENT_CPU: &str = "1";

fn pinned() -> bool {
    std::env::var("PIN").is_ok_and(|v| v == "1")
}

/// Pins this process (before its runtime's threads exist, which inherit it) to the clients' CPU.
fn pin_self() -> Res<()> {
    let pid = std::process::id().to_string();
    let status = Command::new("taskset")
        .args(["-p", "-c", CLIENT_CPU, &pid])
        .stdout(Stdio::null())
        .status()?;
    if !status.success() {
        return Err("taskset failed".into());
    }
    Ok(())
}

/// The hub child, on its own CPU when pinned.
fn hub_command() -> Res<Command> {
    let exe = std::env::current_exe()?;
    Ok(if pinned() {
        let mut c = Command::new("taskset");
        c.args(["-c", HUB_CPU]).arg(exe);
        c
    } else {
        Command::new(exe)
    })
}

/// The hub child's counters, asked for over its stdin.
struct HubLink {
    stdin: std::process::ChildStdin,
    stdout: BufReader<std::process::ChildStdout>,
}

/// A moment's fan-out counters: passes, quotes they carried, µs spent in them.
#[derive(Clone, Copy)]
struct Fanouts {
    passes: u64,
    quotes: u64,
    micros: u64,
}

impl HubLink {
    fn fanouts(&mut self) -> Res<Fanouts> {
        writeln!(self.stdin)?;
        self.stdin.flush()?;
        let mut line = String::new();
        self.stdout.read_line(&mut line)?;
        let report: serde_json::Value = serde_json::from_str(&line)?;
        let field = |name: &str| report[name].as_u64().ok_or(format!("no {name} in {line}"));
        Ok(Fanouts {
            passes: field("fanouts")?,
            quotes: field("fanout_quotes")?,
            micros: field("fanout_micros")?,
        })
    }
}

impl Fanouts {
    /// What the fan-outs between `self` and `later` did: passes, quotes per pass, ms per pass.
    fn describe(self, later: Fanouts) -> String {
        let passes = later.passes - self.passes;
        let per = |n: u64| n as f64 / passes.max(1) as f64;
        format!(
            "{passes} fan-outs, {:.2} quotes each, {:.1} ms each (wall)",
            per(later.quotes - self.quotes),
            per(later.micros - self.micros) / 1000.0
        )
    }
}

fn percentiles(hist: &Histogram) -> String {
    format!(
        "p50 {} p90 {} p99 {} p99.9 {} max {}",
        hist.percentile(0.50),
        hist.percentile(0.90),
        hist.percentile(0.99),
        hist.percentile(0.999),
        hist.percentile(1.0)
    )
}

/// Quotes a client did not get, summed over clients, and how many clients missed any.
fn missing(per_client: &[u64], published: u64) -> (u64, usize) {
    let lost = per_client
        .iter()
        .map(|n| published.saturating_sub(*n))
        .sum();
    let clients = per_client.iter().filter(|n| **n < published).count();
    (lost, clients)
}

async fn bench() -> Res<()> {
    let clients = env_u64("CLIENTS", 10_000) as usize;
    let secs = env_u64("SECS", 20);
    let rate = env_u64("RATE", 10);
    let floor = env_u64("FLOOR", 10);
    let redis_prefix = format!("bench{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let mut child = hub_command()?
        .arg("hub-process")
        .env("BENCH_REDIS_PREFIX", &redis_prefix)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let mut hub = HubLink {
        stdin: child.stdin.take().ok_or("no stdin")?,
        stdout: BufReader::new(child.stdout.take().ok_or("no stdout")?),
    };
    let mut line = String::new();
    hub.stdout.read_line(&mut line)?;
    let port: u16 = line.trim().trim_start_matches("PORT ").parse()?;

    let shared = Arc::new(Shared {
        hists: [Histogram::new(), Histogram::new()],
        phase: AtomicUsize::new(0),
        received: AtomicU64::new(0),
        connected: AtomicU64::new(0),
    });
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(clients);
    for _ in 0..clients {
        tasks.push(tokio::spawn(client(port, shared.clone())));
        // At most 256 handshakes in flight.
        while shared.connected.load(Relaxed) + 256 < tasks.len() as u64 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    while (shared.connected.load(Relaxed) as usize) < clients {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    println!(
        "{clients} clients connected in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    tokio::time::sleep(Duration::from_secs(1)).await;

    let hub_pid = child.id().to_string();
    let (t0, cpu0, hub0) = (Instant::now(), cpu_secs("self"), cpu_secs(&hub_pid));
    let (hub_sched0, sched0) = (sched_secs(&hub_pid), sched_secs("self"));
    let fanouts0 = hub.fanouts()?;
    let every = Duration::from_secs_f64(1.0 / (3.0 * rate as f64));
    let published = publish(&redis_prefix, 3 * rate * secs, every).await?;
    tokio::time::sleep(Duration::from_secs(2)).await; // drain
    let hub_cpu = cpu_secs(&hub_pid) - hub0;
    let (hub_sched, sched) = (sched_secs(&hub_pid), sched_secs("self"));
    let client_cpu = cpu_secs("self") - cpu0;
    let elapsed = t0.elapsed().as_secs_f64() - 2.0;
    let fanouts1 = hub.fanouts()?;
    let got = shared.received.load(Relaxed);

    // The floor: lone quotes, each fanned out by an idle hub.
    shared.phase.store(1, Relaxed);
    let hub1 = cpu_split_of(&hub_pid);
    let floor_published = publish(&redis_prefix, floor, Duration::from_millis(500)).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let hub2 = cpu_split_of(&hub_pid);
    let (floor_user, floor_system) = (hub2.0 - hub1.0, hub2.1 - hub1.1);
    let fanouts2 = hub.fanouts()?;
    let floor_got = shared.received.load(Relaxed) - got;

    drop(hub); // the hub stops (stdin closed), closing every client
    let mut per_client = Vec::with_capacity(clients);
    for t in tasks {
        per_client.push(t.await?.unwrap_or(0));
    }
    let _ = child.wait();
    let expected = published * clients as u64;
    let (lost, short) = missing(&per_client, published + floor_published);
    println!(
        "published {published} quotes ({} per asset per s) for {secs} s; pinned: {}",
        rate,
        pinned()
    );
    println!(
        "delivered {got} of {expected} ({:.3} %), {:.0} msg/s; every client reads as fast as \
         it can (healthy): quotes dropped {lost}, clients missing any {short} (floor included)",
        got as f64 * 100.0 / expected as f64,
        got as f64 / elapsed
    );
    // The window is the publishing time plus the 2 s drain.
    let window = elapsed + 2.0;
    println!(
        "CPU while publishing ({window:.1} s): hub {hub_cpu:.2} s ({:.0} % of a core, {:.2} µs per \
         delivered message), clients {client_cpu:.2} s ({:.0} % of a core)",
        hub_cpu * 100.0 / window,
        hub_cpu * 1e6 / got.max(1) as f64,
        client_cpu * 100.0 / window
    );
    println!(
        "threads on a CPU / runnable but waiting for one: hub {:.2} / {:.2} s, clients {:.2} / \
         {:.2} s",
        hub_sched.0 - hub_sched0.0,
        hub_sched.1 - hub_sched0.1,
        sched.0 - sched0.0,
        sched.1 - sched0.1
    );
    println!(
        "hub: {}; {:.0} % of the window in fan-outs",
        fanouts0.describe(fanouts1),
        (fanouts1.micros - fanouts0.micros) as f64 / 1e4 / window
    );
    println!(
        "delay publish -> receipt (ms, 1 ms resolution): {}",
        percentiles(&shared.hists[0])
    );
    let floor_passes = (fanouts2.passes - fanouts1.passes).max(1);
    println!(
        "floor, {floor_published} lone quotes 500 ms apart: delivered {floor_got} of {}; hub: \
         {}, {:.1} ms of its CPU each ({:.1} ms in the kernel); delay (ms) {}",
        floor_published * clients as u64,
        fanouts1.describe(fanouts2),
        (floor_user + floor_system) * 1e3 / floor_passes as f64,
        floor_system * 1e3 / floor_passes as f64,
        percentiles(&shared.hists[1])
    );
    Ok(())
}

fn main() -> Res<()> {
    let child = std::env::args().any(|a| a == "hub-process");
    if pinned() && !child {
        pin_self()?;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    if child {
        let prefix = std::env::var("BENCH_REDIS_PREFIX")?;
        return runtime.block_on(hub_process(prefix));
    }
    runtime.block_on(bench())
}
