//! The engine service over real NATS (run by hand, release build):
//! `cargo bench -p engine --bench service` (NATS on 127.0.0.1:4222, PostgreSQL for snapshots).
//!
//! Measures, against the engine binary running as its own process:
//! - the floor: a bare JetStream publish-with-ack plus a bare core-NATS request/reply;
//! - p50/p99 latency of one `EngineClient::send` (one caller), and its ratio to the floor;
//! - commands per second through `send` with 1, 16 and 256 concurrent callers;
//! - the time from starting the engine binary to its first answer with 100,000 inputs past its
//!   snapshot to replay;
//! - replay speed at recovery (the engine's own replay code, reading `ENGINE` from NATS), and
//!   the pure core's share of it (decode + apply from memory);
//! - p50/p99 of another user's commands while one user lists their 200 pending orders and
//!   500 open positions in a loop (`BENCH_LISTERS` loops, default 1), against the idle p50/p99 of the same run
//!   (issue 24). `BENCH_ONLY=listing` runs this part alone.

use std::process::Stdio;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer::pull::OrderedConfig};
use bus::nats::{EngineClient, StreamSettings, ensure_streams};
use bus::{
    Accepted, Asset, Command, CommandEnvelope, CommandId, EngineInput, Envelope, Leverage, Names,
    OpenPosition, Price, PriceTick, Quantity, Reply, Side, UserId,
};
use engine::service::recovery;
use engine::{Engine, EngineConfig};
use futures_util::StreamExt;

const LATENCY_SAMPLES: usize = 3_000;
const TICKS_FOR_REPLAY: usize = 100_000;
/// Loops listing one account's orders and positions at once (`BENCH_LISTERS`, default 1: one
/// user listing in a loop).
fn listers() -> usize {
    std::env::var("BENCH_LISTERS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1)
}

fn nats_url() -> String {
    std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort_unstable();
    let i = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[i]
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn id(s: String) -> CommandId {
    CommandId::new(s).expect("id")
}

fn user(n: u64) -> UserId {
    UserId(uuid::Uuid::from_u128(u128::from(n) + 1))
}

fn open(u: UserId) -> Command {
    Command::OpenPosition(OpenPosition {
        trailing_distance: None,
        user_id: u,
        asset: Asset::Btc,
        side: Side::Buy,
        quantity: "0.0001".parse::<Quantity>().expect("qty"),
        leverage: Leverage::new(10).expect("lev"),
        stop_loss: None,
        take_profit: None,
        expected_price: None,
        max_slippage_bps: None,
    })
}

fn tick(n: usize) -> PriceTick {
    let bid = 65_000 + (n % 50) as i64;
    PriceTick {
        asset: Asset::Btc,
        bid: Price::new(bid.into()).expect("bid"),
        ask: Price::new((bid + 1).into()).expect("ask"),
        ts: 1_700_000_000_000,
        simulated: false,
    }
}

/// One caller's command loop: open, then close what it opened; returns per-send latencies.
async fn caller(client: EngineClient, u: UserId, tag: String, n: usize) -> Vec<Duration> {
    let mut latencies = Vec::with_capacity(n);
    let mut open_position = None;
    for i in 0..n {
        let command = match open_position.take() {
            Some(position_id) => Command::ClosePosition {
                user_id: u,
                position_id,
            },
            None => open(u),
        };
        let c = CommandEnvelope {
            id: id(format!("{tag}-{i}")),
            command,
        };
        let t = Instant::now();
        let reply = client.send(c).await.expect("send");
        latencies.push(t.elapsed());
        if let Reply::Accepted(Accepted::PositionOpened { position }) = reply {
            open_position = Some(position.id);
        }
    }
    latencies
}

async fn floor(nats: &async_nats::Client, names: &Names) -> (Duration, Duration, Duration) {
    let js = jetstream::new(nats.clone());
    let subject = format!("{}.floor", names.prefix());
    js.get_or_create_stream(jetstream::stream::Config {
        name: format!("{}_FLOOR", names.prefix()),
        subjects: vec![subject.clone()],
        ..Default::default()
    })
    .await
    .expect("floor stream");
    let echo = format!("{}.echo", names.prefix());
    let mut sub = nats.subscribe(echo.clone()).await.expect("echo sub");
    let responder_client = nats.clone();
    let responder = tokio::spawn(async move {
        while let Some(m) = sub.next().await {
            if let Some(r) = m.reply {
                let _ = responder_client.publish(r, m.payload).await;
            }
        }
    });
    let payload: Vec<u8> = vec![b'x'; 300];
    let (mut publish, mut request, mut both) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..LATENCY_SAMPLES {
        let t0 = Instant::now();
        let ack = js
            .send_publish(
                subject.clone(),
                jetstream::message::PublishMessage::build()
                    .payload(payload.clone().into())
                    .message_id(format!("f{i}")),
            )
            .await
            .expect("publish");
        ack.await.expect("ack");
        let t1 = Instant::now();
        nats.request(echo.clone(), payload.clone().into())
            .await
            .expect("echo");
        let t2 = Instant::now();
        publish.push(t1 - t0);
        request.push(t2 - t1);
        both.push(t2 - t0);
    }
    responder.abort();
    (
        percentile(&mut publish, 0.5),
        percentile(&mut request, 0.5),
        percentile(&mut both, 0.5),
    )
}

async fn throughput(client: &EngineClient, callers: u64, per_caller: usize, round: &str) -> f64 {
    let started = Instant::now();
    let tasks: Vec<_> = (0..callers)
        .map(|c| {
            tokio::spawn(caller(
                client.clone(),
                user(c),
                format!("{round}-{c}"),
                per_caller,
            ))
        })
        .collect();
    for t in tasks {
        t.await.expect("caller");
    }
    (callers as usize * per_caller) as f64 / started.elapsed().as_secs_f64()
}

async fn flood_ticks(nats: &async_nats::Client, names: &Names) {
    let js = jetstream::new(nats.clone());
    let mut acks = Vec::with_capacity(1_000);
    for n in 0..TICKS_FOR_REPLAY {
        let body = Envelope::new(0, 0, EngineInput::PriceTick(tick(n))).encode();
        acks.push(
            js.publish(names.tick(Asset::Btc), body.into())
                .await
                .expect("tick"),
        );
        if acks.len() == 1_000 {
            for a in acks.drain(..) {
                a.await.expect("tick ack");
            }
        }
    }
    for a in acks {
        a.await.expect("tick ack");
    }
}

/// The engine binary as its own process on `names`, with `env` on top of the defaults.
fn spawn_engine(db_url: &str, names: &Names, env: &[(&str, &str)]) -> tokio::process::Child {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_engine"))
        .env("NATS_URL", nats_url())
        .env("DATABASE_URL", db_url)
        .env("ENGINE_PREFIX", names.prefix())
        .env("ENGINE_PURGE_INPUTS", "false")
        .env("RUST_LOG", "warn")
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("engine binary")
}

/// Waits until the engine answers a query.
async fn serving(client: &EngineClient) {
    while client.ping().await.is_err() {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

async fn stop(mut child: tokio::process::Child, signal: &str) {
    let _ = std::process::Command::new("kill")
        .args([signal, &child.id().unwrap_or(0).to_string()])
        .status();
    let _ = child.wait().await;
}

/// Polls until `condition` holds (the bench's set-up steps, not its measurements).
async fn until<F: std::future::Future<Output = bool>>(mut condition: impl FnMut() -> F) {
    while !condition().await {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// An engine that never snapshots applies and acks 100,000 ticks and a command, and is
/// killed; a new engine process then has all of them to replay. Returns the time from its
/// start until it answers a query, and its replay's share of that.
async fn restart_with_backlog(
    nats: &async_nats::Client,
    js: &jetstream::Context,
    client: &EngineClient,
    db_url: &str,
    names: &Names,
) -> Restart {
    let no_snapshots = [
        ("ENGINE_SNAPSHOT_EVERY", "1000000000"),
        ("ENGINE_SNAPSHOT_SECS", "36000"),
    ];
    let engine = js.get_stream(names.engine_stream()).await.expect("stream");
    let snapshot_seq = engine.get_info().await.expect("info").state.last_sequence;
    let child = spawn_engine(db_url, names, &no_snapshots);
    serving(client).await;
    flood_ticks(nats, names).await;
    let sentinel = CommandEnvelope {
        id: id("sentinel".into()),
        command: open(user(1)),
    };
    client.send(sentinel).await.expect("caught up");
    let last = engine.get_info().await.expect("info").state.last_sequence;
    until(|| async {
        let info = engine
            .consumer_info(recovery::DURABLE)
            .await
            .expect("consumer");
        info.ack_floor.stream_sequence >= last
    })
    .await;
    stop(child, "-KILL").await;
    let lock = js
        .get_key_value(engine::service::lock_bucket_name(names))
        .await
        .expect("lock bucket");
    until(|| async { matches!(lock.get("writer").await, Ok(None)) }).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let ops = format!("127.0.0.1:{port}");
    let t = Instant::now();
    let child = spawn_engine(
        db_url,
        names,
        &[no_snapshots.as_slice(), &[("METRICS_ADDR", ops.as_str())]].concat(),
    );
    serving(client).await;
    let start_to_serving = t.elapsed();
    let metrics = scrape(&ops).await;
    stop(child, "-TERM").await;
    // NaN for a gauge this engine does not report (an older build run for a comparison).
    let gauge = |name: &str| {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    Restart {
        start_to_serving,
        to_replay: last - snapshot_seq,
        replayed: gauge("engine_replayed_inputs "),
        replay: gauge("engine_replay_seconds "),
        load: gauge("engine_snapshot_load_seconds "),
    }
}

/// A restart with inputs to replay, as the engine process saw it (its own replay gauges).
struct Restart {
    start_to_serving: Duration,
    to_replay: u64,
    replayed: f64,
    /// Seconds.
    replay: f64,
    /// Seconds.
    load: f64,
}

/// The engine's `/metrics` text (HTTP/1.0: the server closes when done).
async fn scrape(addr: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut socket = tokio::net::TcpStream::connect(addr)
        .await
        .expect("ops port");
    socket
        .write_all(b"GET /metrics HTTP/1.0\r\n\r\n")
        .await
        .expect("request");
    let mut text = String::new();
    socket.read_to_string(&mut text).await.expect("metrics");
    text
}

async fn replay_speed(nats: &async_nats::Client, names: &Names) -> (u64, f64, f64, f64, f64) {
    let js = jetstream::new(nats.clone());
    let mut engine = Engine::new(EngineConfig::default());
    let t = Instant::now();
    let n = recovery::replay(&js, names, &mut engine, 0, u64::MAX, |_, _| {})
        .await
        .expect("replay");
    let via_nats = n as f64 / t.elapsed().as_secs_f64();

    // The pure core's share: the same inputs from memory, decoded and applied.
    let stream = js.get_stream(names.engine_stream()).await.expect("stream");
    let read_started = Instant::now();
    let consumer = stream
        .create_consumer(OrderedConfig::default())
        .await
        .expect("c");
    let mut messages = consumer.messages().await.expect("messages");
    let mut inputs = Vec::with_capacity(n as usize);
    while (inputs.len() as u64) < n {
        let m = messages.next().await.expect("open").expect("msg");
        let now = bus::nats::timestamp_ms(m.info().expect("info"));
        inputs.push((m.payload.clone(), now));
    }
    let read_only = n as f64 / read_started.elapsed().as_secs_f64();
    let mut engine = Engine::new(EngineConfig::default());
    let t = Instant::now();
    for (seq, (payload, now)) in inputs.iter().enumerate() {
        engine::service::apply_logged(&mut engine, payload, seq as u64 + 1, *now);
    }
    let in_memory = n as f64 / t.elapsed().as_secs_f64();
    let t = Instant::now();
    let decoded = inputs
        .iter()
        .filter(|(p, _)| Envelope::<EngineInput>::decode(p).is_ok())
        .count();
    let decode_only = decoded as f64 / t.elapsed().as_secs_f64();
    (n, via_nats, in_memory, decode_only, read_only)
}

/// The listing user: the most pending orders and open positions an account may hold.
async fn fill_lister(client: &EngineClient, lister: UserId) {
    let create = CommandEnvelope {
        id: id("lister-acct".into()),
        command: Command::CreateAccount { user_id: lister },
    };
    client.send(create).await.expect("account");
    for k in 0..200i64 {
        let place = Command::PlaceOrder(bus::PlaceOrder {
            user_id: lister,
            asset: Asset::Btc,
            side: Side::Buy,
            order_type: bus::OrderType::Limit,
            price: Price::new(rust_decimal::Decimal::new(6_000_000 - k, 2)).expect("price"),
            quantity: "0.0001".parse::<Quantity>().expect("qty"),
            leverage: Leverage::new(10).expect("lev"),
            stop_loss: None,
            take_profit: None,
            expires_at: None,
        });
        let reply = client
            .send(CommandEnvelope {
                id: id(format!("lister-order-{k}")),
                command: place,
            })
            .await
            .expect("place");
        assert!(matches!(reply, Reply::Accepted(_)), "{reply:?}");
    }
    for k in 0..500 {
        let c = CommandEnvelope {
            id: id(format!("lister-open-{k}")),
            command: open(lister),
        };
        let reply = client.send(c).await.expect("open");
        assert!(matches!(reply, Reply::Accepted(_)), "{reply:?}");
    }
}

/// Lists every page of the lister's orders and positions until `stop`; returns the pages.
async fn list_in_a_loop(
    client: EngineClient,
    lister: UserId,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> u64 {
    use bus::{Page, Query, QueryReply};
    let mut pages = 0;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        for positions in [true, false] {
            let mut page = Page::default();
            loop {
                let q = if positions {
                    Query::ListOpenPositions {
                        user_id: lister,
                        page,
                    }
                } else {
                    Query::ListPendingOrders {
                        user_id: lister,
                        page,
                    }
                };
                let next = match client.query(q).await.expect("listing") {
                    QueryReply::OpenPositions { next, .. }
                    | QueryReply::PendingOrders { next, .. } => next,
                    other => panic!("{other:?}"),
                };
                pages += 1;
                match next {
                    Some(n) => page.after = Some(n),
                    None => break,
                }
            }
        }
    }
    pages
}

/// Another user's command latencies idle, then while [`listers`] list in a loop:
/// `(idle p50, idle p99, busy p50, busy p99, pages listed per second)`.
async fn listing_contention(client: &EngineClient) -> [f64; 5] {
    let lister = user(9_999);
    fill_lister(client, lister).await;
    let mut idle = caller(client.clone(), user(0), "idle".into(), LATENCY_SAMPLES).await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let listers: Vec<_> = (0..listers())
        .map(|_| tokio::spawn(list_in_a_loop(client.clone(), lister, stop.clone())))
        .collect();
    let started = Instant::now();
    let mut busy = caller(client.clone(), user(0), "busy".into(), LATENCY_SAMPLES).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut pages = 0;
    for l in listers {
        pages += l.await.expect("lister");
    }
    let rate = pages as f64 / started.elapsed().as_secs_f64();
    [
        us(percentile(&mut idle, 0.5)),
        us(percentile(&mut idle, 0.99)),
        us(percentile(&mut busy, 0.5)),
        us(percentile(&mut busy, 0.99)),
        rate,
    ]
}

fn print_listing([idle50, idle99, busy50, busy99, rate]: [f64; 5]) {
    println!("| another user's `send`, idle, p50 / p99 | {idle50:.0} / {idle99:.0} µs |");
    println!(
        "| the same while one user lists 200 orders + 500 positions in a loop ({} lister(s), {rate:.0} pages/s), p50 / p99 | {busy50:.0} / {busy99:.0} µs |",
        listers()
    );
    println!("| p99 listing / p99 idle | {:.2}x |", busy99 / idle99);
}

async fn bench() {
    let names = Names::new(format!(
        "bench{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    ));
    let db = migrations::TestDatabase::create().await.expect("database");
    let nats = async_nats::connect(nats_url()).await.expect("nats");
    let js = jetstream::new(nats.clone());
    ensure_streams(&js, &names, &StreamSettings::default())
        .await
        .expect("streams");
    let child = spawn_engine(&db.url, &names, &[]);
    let client = EngineClient::new(nats.clone(), names.clone(), Duration::from_secs(30));
    serving(&client).await;
    client.publish_tick(&tick(0)).await.expect("tick");
    for c in 0..256 {
        let cmd = CommandEnvelope {
            id: id(format!("acct-{c}")),
            command: Command::CreateAccount { user_id: user(c) },
        };
        client.send(cmd).await.expect("account");
    }

    if std::env::var("BENCH_ONLY").as_deref() == Ok("listing") {
        let listing = listing_contention(&client).await;
        stop(child, "-TERM").await;
        let lock = format!("KV_{}", engine::service::lock_bucket_name(&names));
        for stream in [names.engine_stream(), names.events_stream(), lock] {
            let _ = js.delete_stream(&stream).await;
        }
        println!("| measure | value |\n|---|---|");
        print_listing(listing);
        return;
    }
    let (floor_pub, floor_req, floor_both) = floor(&nats, &names).await;
    let mut one = caller(client.clone(), user(0), "lat".into(), LATENCY_SAMPLES).await;
    let (p50, p99) = (percentile(&mut one, 0.5), percentile(&mut one, 0.99));
    let mut rates = Vec::new();
    for (callers, per) in [(1u64, 5_000usize), (16, 1_000), (256, 120)] {
        rates.push((
            callers,
            throughput(&client, callers, per, &format!("tp{callers}")).await,
        ));
    }
    let listing = listing_contention(&client).await;
    stop(child, "-TERM").await;
    let restart = restart_with_backlog(&nats, &js, &client, &db.url, &names).await;
    let (inputs, via_nats, in_memory, decode_only, read_only) = replay_speed(&nats, &names).await;
    let floor_stream = format!("{}_FLOOR", names.prefix());
    let lock = format!("KV_{}", engine::service::lock_bucket_name(&names));
    for stream in [
        names.engine_stream(),
        names.events_stream(),
        floor_stream,
        lock,
    ] {
        let _ = js.delete_stream(&stream).await;
    }

    println!("| measure | value |\n|---|---|");
    println!(
        "| floor: JetStream publish-with-ack, p50 | {:.0} µs |",
        us(floor_pub)
    );
    println!(
        "| floor: core NATS request/reply, p50 | {:.0} µs |",
        us(floor_req)
    );
    println!(
        "| floor: both in sequence, p50 | {:.0} µs |",
        us(floor_both)
    );
    println!("| `send`, 1 caller, p50 | {:.0} µs |", us(p50));
    println!("| `send`, 1 caller, p99 | {:.0} µs |", us(p99));
    println!(
        "| `send` p50 / floor p50 | {:.2}x |",
        p50.as_secs_f64() / floor_both.as_secs_f64()
    );
    for (callers, rate) in rates {
        println!("| `send` throughput, {callers} caller(s) | {rate:.0} commands/s |");
    }
    println!(
        "| engine start to serving, {} inputs past its snapshot | {:.0} ms |",
        restart.to_replay,
        restart.start_to_serving.as_secs_f64() * 1e3
    );
    println!(
        "| of which the replay ({} inputs, the engine's own gauge) | {:.0} ms = {:.0} inputs/s |",
        restart.replayed,
        restart.replay * 1e3,
        restart.replayed / restart.replay
    );
    println!(
        "| of which loading the snapshot (the engine's own gauge) | {:.0} ms |",
        restart.load * 1e3
    );
    println!("| replay at recovery ({inputs} inputs, from NATS) | {via_nats:.0} inputs/s |");
    println!(
        "| reading the stream alone (ordered consumer, no decode) | {read_only:.0} inputs/s |"
    );
    println!("| the pure core alone (decode + apply, in memory) | {in_memory:.0} inputs/s |");
    println!("| JSON decode of the inputs alone (in memory) | {decode_only:.0} inputs/s |");
    print_listing(listing);
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(bench());
}
