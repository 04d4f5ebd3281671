//! `bench-http`: open+close round trips through HTTP on the local runner, with the same run's
//! floors (a bare hyper/axum round trip, a bare `EngineClient::send`, and both at once: an
//! HTTP server that only relays each trade request to `send`). Phases: `PHASES` (default
//! `bare,engine,relay,http,rate`). Run by hand in release:
//!
//! ```sh
//! cargo run --release -p local --bin bench-http            # BENCH_SECS=10 CLIENTS=64 RATE=1000
//! ```
//!
//! Everything runs on this machine: the runner (HTTP, engine, persist) in this process, the
//! load generator on a thread of its own in it (its CPU time is reported apart; `LOADGEN_CPU=1`
//! pins it to CPU 1 and the rest of the process to the other CPUs), NATS and PostgreSQL
//! beside it. Figures go to `docs/benchmarks.md`.
//!
//! After each phase that trades, the bench waits until `persist` has written every event (its
//! consumer has nothing pending) before it reads the CPU counters: a phase's CPU per request
//! includes the PostgreSQL writes it caused, and no backlog spills into the next phase.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bus::nats::EngineClient;
use bus::{
    Asset, Command, CommandEnvelope, CommandId, Names, OpenPosition, PriceTick, Reply, UserId,
};
use bytes::Bytes;
use local::client::Connection;
use local::cpu::{self, Sample};
use local::loadgen::{LoadGen, Trader, post};
use local::{RunnerSettings, start};
use serde_json::json;
use tokio::runtime::Handle;

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

fn env_u64(key: &str, default: u64) -> u64 {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Latencies in microseconds, summarised.
struct Summary {
    label: &'static str,
    requests: usize,
    errors: usize,
    elapsed: Duration,
    micros: Vec<u64>,
}

impl Summary {
    fn percentile(&self, p: f64) -> f64 {
        if self.micros.is_empty() {
            return f64::NAN;
        }
        let i = ((self.micros.len() as f64 - 1.0) * p).round() as usize;
        self.micros[i] as f64 / 1000.0
    }

    /// Requests per second.
    fn rate(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    fn print(mut self) {
        self.micros.sort_unstable();
        println!(
            "| {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {} |",
            self.label,
            self.requests,
            self.rate(),
            self.percentile(0.50),
            self.percentile(0.99),
            self.percentile(1.0),
            self.errors
        );
    }
}

/// One client's loop on `rt`: `op` repeatedly until `deadline`; latency of each call.
async fn closed_loop<F, Fut>(
    rt: &Handle,
    clients: usize,
    secs: u64,
    label: &'static str,
    op: F,
) -> Summary
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = (usize, usize, Vec<u64>)> + Send,
{
    let op = Arc::new(op);
    let started = Instant::now();
    let deadline = started + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for c in 0..clients {
        let op = op.clone();
        tasks.push(rt.spawn(async move {
            let (mut ok, mut err, mut micros) = (0, 0, Vec::new());
            while Instant::now() < deadline {
                let (o, e, m) = op(c).await;
                ok += o;
                err += e;
                micros.extend(m);
            }
            (ok, err, micros)
        }));
    }
    let mut s = Summary {
        label,
        requests: 0,
        errors: 0,
        elapsed: Duration::ZERO,
        micros: Vec::new(),
    };
    for t in tasks {
        if let Ok((ok, err, micros)) = t.await {
            s.requests += ok + err;
            s.errors += err;
            s.micros.extend(micros);
        }
    }
    s.elapsed = started.elapsed();
    s
}

/// An open then a close through HTTP on one connection; two timed requests.
async fn open_close(trader: &mut Trader) -> (usize, usize, Vec<u64>) {
    let t0 = Instant::now();
    let opened = trader.open().await;
    let m0 = t0.elapsed().as_micros() as u64;
    let Ok(Some(id)) = opened else {
        return (0, 1, vec![m0]);
    };
    let t1 = Instant::now();
    let closed = trader.close(id).await;
    let m1 = t1.elapsed().as_micros() as u64;
    match closed {
        Ok(true) => (2, 0, vec![m0, m1]),
        _ => (1, 1, vec![m0, m1]),
    }
}

async fn user(addr: SocketAddr, n: usize) -> Res<(String, String)> {
    let mut conn = Connection::open(addr).await?;
    let creds = json!({ "email": format!("bench{n}-{}@example.com", uuid::Uuid::new_v4().simple()), "password": "benchmark password" });
    conn.post("/api/v1/auth/signup", None, &creds).await?;
    let (_, body) = conn.post("/api/v1/auth/signin", None, &creds).await?;
    let token = body["token"].as_str().ok_or("no token")?.to_string();
    let id = body["userId"].as_str().ok_or("no user id")?.to_string();
    Ok((id, token))
}

/// The floor: the same client against a hyper/axum server that answers `{}` at once.
async fn bare_server() -> Res<SocketAddr> {
    let app = axum::Router::new().route(
        "/ping",
        axum::routing::post(|| async { axum::Json(json!({})) }),
    );
    serve(app).await
}

/// Serves `app` on a free loopback port (`TCP_NODELAY`, as the runner), in the background.
async fn serve(app: axum::Router) -> Res<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(addr)
}

/// Open-loop load at `rate` requests per second for `secs`, spread over `conns` connections;
/// latency measured from each request's scheduled start (no coordinated omission).
///
/// The schedule is kept by a pacer thread (`std::thread::sleep`, ~50 µs slack) that hands each
/// connection its slots: tokio's timer has 1 ms ticks, so a `sleep_until` per slot woke up to a
/// millisecond late, and that lateness of the load generator itself was counted as latency (a
/// lone request's p50 read ~2 ms at 200 req/s against ~0.5 ms of work). A slot that arrives
/// while its connection is still busy waits, and that wait is counted, as it must be.
async fn fixed_rate(
    rt: &Handle,
    addr: SocketAddr,
    tokens: &[String],
    rate: u64,
    secs: u64,
) -> Res<Summary> {
    let conns = tokens.len().min(32);
    let per_conn = rate as f64 / conns as f64 / 2.0; // each iteration is two requests
    let period = Duration::from_secs_f64(1.0 / per_conn);
    // The schedule starts once every connection is open (each task opens its own first).
    let started = Instant::now() + Duration::from_millis(100);
    let deadline = started + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    let mut slots = Vec::new();
    for token in tokens.iter().take(conns) {
        let token = token.clone();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Instant>();
        slots.push(tx);
        tasks.push(rt.spawn(async move {
            let (mut ok, mut err, mut micros) = (0, 0, Vec::new());
            let Ok(mut trader) = Trader::connect(addr, &token).await else {
                return (ok, 1, micros);
            };
            while let Some(scheduled) = rx.recv().await {
                let lag = Instant::now()
                    .saturating_duration_since(scheduled)
                    .as_micros() as u64;
                let (o, e, m) = open_close(&mut trader).await;
                ok += o;
                err += e;
                micros.extend(m.into_iter().map(|x| x + lag));
            }
            (ok, err, micros)
        }));
    }
    // Slot i goes to connection i % conns at `started + i * period / conns`: each connection
    // keeps its period, the connections staggered across it.
    let step = period.div_f64(conns as f64);
    let pacer = std::thread::spawn(move || {
        let mut i = 0u32;
        loop {
            let at = started + step * i;
            if at >= deadline {
                return;
            }
            std::thread::sleep(at.saturating_duration_since(Instant::now()));
            let _ = slots[i as usize % conns].send(at);
            i += 1;
        }
    });
    tokio::task::spawn_blocking(move || pacer.join())
        .await?
        .map_err(|_| "the pacer thread panicked")?;
    let mut s = Summary {
        label: "HTTP open+close, fixed rate",
        requests: 0,
        errors: 0,
        elapsed: Duration::ZERO,
        micros: Vec::new(),
    };
    for t in tasks {
        let (ok, err, micros) = t.await?;
        s.requests += ok + err;
        s.errors += err;
        s.micros.extend(micros);
    }
    s.elapsed = started.elapsed();
    Ok(s)
}

/// The bench's order (as the load generator's HTTP body asks): the smallest SOL buy at 100x.
fn open_command(user: UserId) -> Command {
    Command::OpenPosition(OpenPosition {
        trailing_distance: None,
        user_id: user,
        asset: Asset::Sol,
        side: bus::Side::Buy,
        quantity: "0.01".parse().expect("qty"),
        leverage: bus::Leverage::new(100).expect("lev"),
        stop_loss: None,
        take_profit: None,
        expected_price: None,
        max_slippage_bps: None,
    })
}

fn envelope(command: Command) -> CommandEnvelope {
    CommandEnvelope {
        id: CommandId::random(),
        command,
    }
}

/// The trade path's floor through HTTP: a hyper/axum server on the trade routes that relays
/// each request to `EngineClient::send` and answers the position id, and nothing else (the
/// user is looked up by the request's `authorization` value, unverified; no user check, no
/// request id, metrics or logs, no input validation). The same load generator requests, the
/// same HTTP stack and the same engine path as a trade: no trade request can cost less.
async fn relay_server(engine: EngineClient, users: HashMap<String, UserId>) -> Res<SocketAddr> {
    use axum::http::{HeaderMap, StatusCode, header::AUTHORIZATION};
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Close {
        position_id: u64,
    }
    let users = Arc::new(users);
    let user = move |headers: &HeaderMap| {
        headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| users.get(v).copied())
    };
    let (engine2, user2) = (engine.clone(), user.clone());
    let open = move |headers: HeaderMap| async move {
        let Some(user) = user(&headers) else {
            return (StatusCode::UNAUTHORIZED, axum::Json(json!({})));
        };
        match engine.send(envelope(open_command(user))).await {
            Ok(Reply::Accepted(bus::Accepted::PositionOpened { position })) => (
                StatusCode::CREATED,
                axum::Json(json!({ "position": { "id": position.id } })),
            ),
            _ => (StatusCode::SERVICE_UNAVAILABLE, axum::Json(json!({}))),
        }
    };
    let close = move |headers: HeaderMap, axum::Json(body): axum::Json<Close>| async move {
        let Some(user_id) = user2(&headers) else {
            return (StatusCode::UNAUTHORIZED, axum::Json(json!({})));
        };
        let close = Command::ClosePosition {
            user_id,
            position_id: bus::PositionId(body.position_id),
        };
        match engine2.send(envelope(close)).await {
            Ok(Reply::Accepted(_)) => (StatusCode::OK, axum::Json(json!({}))),
            _ => (StatusCode::SERVICE_UNAVAILABLE, axum::Json(json!({}))),
        }
    };
    let app = axum::Router::new()
        .route("/api/v1/trade/open", axum::routing::post(open))
        .route("/api/v1/trade/close", axum::routing::post(close));
    serve(app).await
}

async fn engine_floor(engine: EngineClient, users: Vec<UserId>, secs: u64) -> Summary {
    let users = Arc::new(users);
    closed_loop(
        &Handle::current(),
        users.len(),
        secs,
        "bare EngineClient::send (open, close)",
        move |c| {
            let (engine, user) = (engine.clone(), users[c]);
            async move {
                let t0 = Instant::now();
                let r = engine.send(envelope(open_command(user))).await;
                let m0 = t0.elapsed().as_micros() as u64;
                let Ok(Reply::Accepted(bus::Accepted::PositionOpened { position })) = r else {
                    return (0, 1, vec![m0]);
                };
                let close = Command::ClosePosition {
                    user_id: user,
                    position_id: position.id,
                };
                let t1 = Instant::now();
                let r = engine.send(envelope(close)).await;
                let m1 = t1.elapsed().as_micros() as u64;
                match r {
                    Ok(Reply::Accepted(_)) => (2, 0, vec![m0, m1]),
                    _ => (1, 1, vec![m0, m1]),
                }
            }
        },
    )
    .await
}

/// The runner under test, its users and a direct engine client.
struct Setup {
    addr: SocketAddr,
    engine: EngineClient,
    tokens: Vec<String>,
    ids: Vec<UserId>,
    // Kept alive for the run: the database, the running runner and the quote's refresh.
    db: migrations::TestDatabase,
    _running: local::Running,
    _quote: FreshQuote,
}

/// Logs the SOL quote again every second, as the price feed re-sends an unchanged quote
/// (`FEED_REFRESH_MS`): the engine refuses opens and closes on a price older than
/// `ENGINE_PRICE_STALE_AFTER_MS` (30 s), and a run is longer than that. Stopped when dropped.
struct FreshQuote(tokio::task::JoinHandle<()>);

impl FreshQuote {
    fn start(engine: EngineClient, tick: PriceTick) -> Self {
        Self(tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(1));
            loop {
                every.tick().await;
                if let Err(e) = engine.publish_tick(&tick).await {
                    eprintln!("refreshing the quote: {e}");
                }
            }
        }))
    }
}

impl Drop for FreshQuote {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Starts the runner on a fresh database and prefix, logs a SOL quote, signs up `clients` users.
async fn setup(clients: usize) -> Res<Setup> {
    let db = migrations::TestDatabase::create().await?;
    let prefix = format!("bench{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    // A benchmark is a local run: the development key unless JWT_SECRET is set.
    // The rate limits are checked on every request (their cost is measured) but set out of
    // reach: 64 users signed up from one address, each trading far above a person's rate.
    let env = bus::settings::Env::from_process()
        .with_default("APP_ENV", "local")
        .with_default("RATE_AUTH_ADDRESS", "100000/60")
        .with_default("RATE_ACCOUNT_COMMANDS", "1000000/1");
    let mut settings = RunnerSettings::from_vars(&env)?;
    settings.http_addr = "127.0.0.1:0".parse()?;
    settings.web = None; // measures the API alone (and binds no fixed web ports)
    settings.functions.database_url = db.url.clone();
    settings.functions.bus_prefix = prefix.clone();
    if let Some(e) = settings.engine.as_mut() {
        e.database_url = db.url.clone();
        e.names = Names::new(prefix.clone());
    }
    let nats = async_nats::connect(&settings.functions.nats_url).await?;
    let engine = EngineClient::new(nats, Names::new(prefix), Duration::from_secs(5));
    let running = start(settings, std::future::pending()).await?;
    let addr = running.http_addr;
    while engine.ping().await.is_err() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let tick = PriceTick {
        asset: Asset::Sol,
        bid: "150.00".parse()?,
        ask: "150.05".parse()?,
        ts: 0,
        simulated: false,
    };
    engine.publish_tick(&tick).await?;
    let quote = FreshQuote::start(engine.clone(), tick);
    let mut users = Vec::new();
    for n in 0..clients {
        users.push(user(addr, n).await?);
    }
    Ok(Setup {
        addr,
        engine,
        tokens: users.iter().map(|(_, t)| t.clone()).collect(),
        ids: users.iter().filter_map(|(id, _)| id.parse().ok()).collect(),
        db,
        _running: running,
        _quote: quote,
    })
}

/// The HTTP floor: 100 round trips per connection against the bare server.
async fn bare_phase(rt: &Handle, clients: usize, secs: u64) -> Res<Summary> {
    let bare = bare_server().await?;
    Ok(closed_loop(
        rt,
        clients,
        secs,
        "bare hyper/axum round trip",
        move |_| async move {
            let Ok(mut conn) = Connection::open(bare).await else {
                return (0, 1, vec![]);
            };
            let mut micros = Vec::with_capacity(100);
            for _ in 0..100 {
                let t = Instant::now();
                let ping = post("/ping", None, Bytes::new());
                if conn.round_trip(ping).await.is_err() {
                    return (micros.len(), 1, micros);
                }
                micros.push(t.elapsed().as_micros() as u64);
            }
            (micros.len(), 0, micros)
        },
    )
    .await)
}

/// Trading through HTTP (at `addr`: the runner, or the relay floor), closed loop: 20
/// open+close pairs per connection, one user each.
async fn http_phase(
    rt: &Handle,
    addr: SocketAddr,
    tokens: Vec<String>,
    secs: u64,
    label: &'static str,
) -> Summary {
    let clients = tokens.len();
    let tokens = Arc::new(tokens);
    closed_loop(rt, clients, secs, label, move |c| {
        let tokens = tokens.clone();
        async move {
            let Ok(mut trader) = Trader::connect(addr, &tokens[c]).await else {
                return (0, 1, vec![]);
            };
            let (mut ok, mut err, mut micros) = (0, 0, Vec::new());
            for _ in 0..20 {
                let (o, e, m) = open_close(&mut trader).await;
                ok += o;
                err += e;
                micros.extend(m);
            }
            (ok, err, micros)
        }
    })
    .await
}

#[tokio::main]
async fn main() -> Res<()> {
    let secs = env_u64("BENCH_SECS", 10);
    let clients = env_u64("CLIENTS", 64) as usize;
    let rate = env_u64("RATE", 1000);
    let phases = std::env::var("PHASES").unwrap_or_else(|_| "bare,engine,relay,http,rate".into());
    let run = |name: &str| phases.split(',').any(|p| p == name);
    let s = setup(clients).await?;
    let loadgen = LoadGen::start()?;
    if let Some(cpu) = std::env::var("LOADGEN_CPU")
        .ok()
        .and_then(|c| c.parse().ok())
    {
        loadgen.pin(cpu)?;
        println!("load generator pinned to CPU {cpu}, the rest of this process to the others");
    }
    let rt = loadgen.handle();
    println!(
        "{clients} clients, {secs} s per phase, fixed rate {rate} req/s; runner at {}; load average {}\n",
        s.addr,
        cpu::load_average()
    );
    println!("| phase | requests | req/s | p50 ms | p99 ms | max ms | errors |");
    println!("|---|---|---|---|---|---|---|");
    let (db, mut rows) = (s.db.name.clone(), Vec::new());
    let url = nats_url();
    let port = url.rsplit(':').next().unwrap_or("4222").to_owned();
    if run("bare") {
        let before = Sample::take(&db, &port);
        record(
            bare_phase(rt, clients, secs).await?,
            &before,
            (&db, &port),
            &mut rows,
        );
    }
    let mut settled = Vec::new();
    let (mut bare_send, mut relay, mut http) = (None, None, None);
    if run("engine") {
        let before = Sample::take(&db, &port);
        let summary = engine_floor(s.engine.clone(), s.ids.clone(), secs).await;
        settle(&s.engine, summary.label, &mut settled).await;
        bare_send = Some(record(summary, &before, (&db, &port), &mut rows));
    }
    if run("relay") {
        let users = s.tokens.iter().map(|t| format!("Bearer {t}"));
        let relay_addr = relay_server(s.engine.clone(), users.zip(s.ids.clone()).collect()).await?;
        let before = Sample::take(&db, &port);
        let label = "HTTP relay to `send` (the trade path's floor)";
        let summary = http_phase(rt, relay_addr, s.tokens.clone(), secs, label).await;
        settle(&s.engine, summary.label, &mut settled).await;
        relay = Some(record(summary, &before, (&db, &port), &mut rows));
    }
    if run("http") {
        let before = Sample::take(&db, &port);
        let label = "HTTP open+close, 64 clients";
        let summary = http_phase(rt, s.addr, s.tokens.clone(), secs, label).await;
        settle(&s.engine, summary.label, &mut settled).await;
        http = Some(record(summary, &before, (&db, &port), &mut rows));
    }
    if run("rate") {
        let before = Sample::take(&db, &port);
        let summary = fixed_rate(rt, s.addr, &s.tokens, rate, secs).await?;
        settle(&s.engine, summary.label, &mut settled).await;
        record(summary, &before, (&db, &port), &mut rows);
    }
    println!(
        "\nCPU per request, the phase and persist's catch-up after it (load average {}):\n{}",
        cpu::load_average(),
        cpu::HEADER
    );
    println!("{}", rows.join("\n"));
    println!("\n{}", settled.join("\n"));
    if let Some(bare) = bare_send {
        let ratio = |rate: Option<f64>| rate.map(|r| format!("{:.2}x", r / bare));
        if let Some(r) = ratio(relay) {
            println!(
                "- the relay floor / bare `send`: {r} (the most a trade request can reach here)"
            );
        }
        if let Some(r) = ratio(http) {
            println!("- HTTP open+close / bare `send`: {r}");
        }
    }
    // JetStream keeps streams until deleted: remove this run's.
    let names = s.engine.names().clone();
    let js = async_nats::jetstream::new(async_nats::connect(nats_url()).await?);
    let lock = format!("KV_{}", engine::service::lock_bucket_name(&names));
    for stream in [
        names.engine_stream(),
        names.events_stream(),
        names.trades_stream(),
        lock,
    ] {
        let _ = js.delete_stream(&stream).await;
    }
    Ok(())
}

/// Prints a phase's figures and keeps its CPU row (CPU since `before`); its requests per second.
fn record(
    summary: Summary,
    before: &Sample,
    (db, port): (&str, &str),
    rows: &mut Vec<String>,
) -> f64 {
    rows.push(Sample::take(db, port).row_since(before, summary.label, summary.requests));
    let rate = summary.rate();
    summary.print();
    rate
}

/// Waits (two minutes at most) until `persist` has written every event stored so far, and
/// says how long that took after the phase ended.
async fn settle(engine: &EngineClient, label: &str, settled: &mut Vec<String>) {
    let started = Instant::now();
    let Ok(nats) = async_nats::connect(nats_url()).await else {
        return;
    };
    let js = async_nats::jetstream::new(nats);
    let events = engine.names().events_stream();
    while started.elapsed() < Duration::from_secs(120) {
        if let Ok(stream) = js.get_stream(&events).await
            && let Ok(info) = stream.consumer_info(functions::persist::CONSUMER).await
            && info.num_pending == 0
            && info.num_ack_pending == 0
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    settled.push(format!(
        "- {label}: persist caught up {:.2} s after the phase",
        started.elapsed().as_secs_f64()
    ));
}

fn nats_url() -> String {
    std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}
