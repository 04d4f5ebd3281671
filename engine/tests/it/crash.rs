//! The crash test: the engine binary as a child process, SIGKILLed at random moments while
//! concurrent clients send opens and closes and a feed sends price ticks, then restarted.
//!
//! Afterwards: every command got exactly one outcome (retries with the same id return the
//! first reply), the `ENGINE` log holds each command id once, `EVENTS` holds exactly the
//! events the pure core produces from the log (none lost, none doubled), and the state the
//! engine stored at its final clean shutdown equals the pure core fed the log in order.

use crate::svc;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::pull::OrderedConfig;
use bus::nats::EngineClient;
use bus::{Accepted, Asset, Command, CommandEnvelope, Envelope, Event, Names, Reply, Side};
use engine::service::{SnapshotStore, snapshot};
use engine::{Engine, EngineConfig};
use futures_util::StreamExt;
use migrations::TestDatabase;
use svc::*;
use tokio::process::{Child, Command as Process};

const WORKERS: u128 = 16;
/// Each worker sends at least this many operations, and goes on until the kills are over.
const MIN_OPS_PER_WORKER: u32 = 200;
const KILLS: u32 = 5;

fn spawn_engine(names: &Names, db: &TestDatabase, n: u32) -> Child {
    Process::new(env!("CARGO_BIN_EXE_engine"))
        .env("NATS_URL", nats_url())
        .env("DATABASE_URL", &db.url)
        .env("ENGINE_PREFIX", names.prefix())
        .env("ENGINE_ID", format!("crash-{n}"))
        .env("ENGINE_SNAPSHOT_EVERY", "300")
        .env("ENGINE_SNAPSHOT_SECS", "1")
        .env("ENGINE_PURGE_INPUTS", "false")
        .env("ENGINE_LOCK_TTL_MS", "1000")
        // The production price rules in any mode: the pure replay runs the default config.
        .env("ENGINE_ALLOW_SIMULATED", "false")
        .env(
            "RUST_LOG",
            std::env::var("RUST_LOG").unwrap_or_else(|_| "error".into()),
        )
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("engine binary starts")
}

/// Sends until a reply comes back, always with the same command id. Returns the reply and
/// whether an attempt failed first.
async fn send_until_replied(client: &EngineClient, c: CommandEnvelope) -> (Reply, bool) {
    let give_up = Instant::now() + Duration::from_secs(90);
    let mut failed = false;
    loop {
        match client.send(c.clone()).await {
            Ok(reply) => return (reply, failed),
            Err(e) => {
                failed = true;
                assert!(Instant::now() < give_up, "{} never answered: {e}", c.id);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// One client: two accounts, then opens (some with SL/TP) and closes of earlier opens.
async fn worker(
    client: EngineClient,
    w: u128,
    killing: Arc<AtomicBool>,
) -> Vec<(CommandEnvelope, Reply, bool)> {
    let mut seed = (w as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let users = [user(w * 10 + 1), user(w * 10 + 2)];
    let mut log = Vec::new();
    let mut open_ids = Vec::new();
    for (i, u) in users.iter().enumerate() {
        let c = cmd(
            &format!("w{w}-acct{i}"),
            Command::CreateAccount { user_id: *u },
        );
        let (reply, failed) = send_until_replied(&client, c.clone()).await;
        log.push((c, reply, failed));
    }
    let mut op = 0;
    while op < MIN_OPS_PER_WORKER || killing.load(Ordering::Relaxed) {
        op += 1;
        let u = users[(next() % 2) as usize];
        let close_one = !open_ids.is_empty() && next() % 3 == 0;
        let command = if close_one {
            let (owner, position_id) = open_ids.swap_remove((next() as usize) % open_ids.len());
            Command::ClosePosition {
                user_id: owner,
                position_id,
            }
        } else {
            let asset = Asset::ALL[(next() % 3) as usize];
            let side = if next() % 2 == 0 {
                Side::Buy
            } else {
                Side::Sell
            };
            let qty = match asset {
                Asset::Btc => "0.01",
                Asset::Eth => "0.1",
                Asset::Sol => "1",
            };
            let leverage = [1, 5, 20, 50, 100][(next() % 5) as usize];
            open(u, asset, side, qty, leverage)
        };
        let c = cmd(&format!("w{w}-op{op}"), command);
        let (reply, failed) = send_until_replied(&client, c.clone()).await;
        if let Reply::Accepted(Accepted::PositionOpened { position }) = &reply {
            open_ids.push((position.user_id, position.id));
        }
        log.push((c, reply, failed));
    }
    log
}

/// A price feed: a random walk per asset, sometimes a jump that triggers liquidations.
async fn ticker(client: EngineClient, stop: Arc<AtomicBool>, sent: Arc<AtomicU64>) {
    let mut mids = [65_000i64 * 100, 3_200 * 100, 150 * 100];
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        for asset in Asset::ALL {
            let i = asset.index();
            let step = mids[i] / 1_000;
            let wobble = if n.is_multiple_of(97) {
                step * 30
            } else {
                step
            };
            mids[i] += if (n * 7 + i as u64).is_multiple_of(3) {
                wobble
            } else {
                -wobble / 2
            };
            mids[i] = mids[i].max(100);
            let (bid, ask) = (mids[i], mids[i] + step / 10 + 1);
            let t = tick(asset, &cents(bid), &cents(ask));
            if client.publish_tick(&t).await.is_ok() {
                sent.fetch_add(1, Ordering::Relaxed);
            }
        }
        tokio::time::sleep(Duration::from_millis(15)).await;
    }
}

fn cents(v: i64) -> String {
    format!("{}.{:02}", v / 100, v % 100)
}

async fn sigterm_and_wait(child: &mut Child) {
    let pid = child.id().expect("running");
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let exit = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("engine stops on SIGTERM")
        .expect("wait");
    assert!(exit.success(), "clean exit, got {exit:?}");
}

/// The pure core fed the whole `ENGINE` log: the state, the first reply per command id,
/// how often each id was logged, and every event keyed by `<seq>-<index>`.
async fn pure_replay(
    names: &Names,
) -> (
    Engine,
    HashMap<String, Reply>,
    HashMap<String, u32>,
    BTreeMap<(u64, usize), Event>,
) {
    let nats = async_nats::connect(nats_url()).await.expect("nats");
    let js = async_nats::jetstream::new(nats);
    let stream = js.get_stream(names.engine_stream()).await.expect("stream");
    let consumer = stream
        .create_consumer(OrderedConfig::default())
        .await
        .expect("c");
    let last = stream.get_info().await.expect("info").state.last_sequence;
    let mut messages = consumer.messages().await.expect("messages");
    let mut engine = Engine::new(EngineConfig::default());
    let (mut replies, mut logged, mut events) = (HashMap::new(), HashMap::new(), BTreeMap::new());
    while let Some(msg) = messages.next().await {
        let msg = msg.expect("message");
        let info = msg.info().expect("info");
        let (seq, now) = (info.stream_sequence, bus::nats::timestamp_ms(info));
        let input = Envelope::<bus::EngineInput>::decode(&msg.payload).expect("input");
        if let bus::EngineInput::Command(c) = &input.body {
            *logged.entry(c.id.to_string()).or_insert(0) += 1;
        }
        let id = match &input.body {
            bus::EngineInput::Command(c) => Some(c.id.to_string()),
            bus::EngineInput::PriceTick(_) => None,
        };
        let outcome = engine.apply(input.body, now);
        if let (Some(id), Some(reply)) = (id, outcome.reply) {
            replies.entry(id).or_insert(reply);
        }
        for (i, e) in outcome.events.into_iter().enumerate() {
            events.insert((seq, i), e);
        }
        if seq == last {
            break;
        }
    }
    (engine, replies, logged, events)
}

async fn published_events(names: &Names, expected: usize) -> BTreeMap<(u64, usize), Event> {
    let nats = async_nats::connect(nats_url()).await.expect("nats");
    let js = async_nats::jetstream::new(nats);
    let mut out = BTreeMap::new();
    let mut stored = 0;
    for msg in stored_messages(&js, &names.events_stream()).await {
        for logged in bus::events::read(&msg).expect("events") {
            stored += 1;
            let id = logged.key();
            let key = (logged.seq, logged.index as usize);
            assert!(
                out.insert(key, logged.event).is_none(),
                "duplicate event {id}"
            );
        }
    }
    assert_eq!(stored, expected, "EVENTS holds each event exactly once");
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkilled_engine_loses_nothing_acknowledged_and_applies_nothing_twice() {
    init_logs();
    let names = random_names();
    let db = TestDatabase::create().await.expect("database");
    // Patient clients see a restart as a slow reply (the recovered engine re-sends replies it
    // had not acked); impatient ones time out and retry with the same id.
    let client = client(&names, Duration::from_secs(5)).await;
    let impatient = svc::client(&names, Duration::from_millis(600)).await;
    let mut child = spawn_engine(&names, &db, 0);

    let stop_ticks = Arc::new(AtomicBool::new(false));
    let killing = Arc::new(AtomicBool::new(true));
    let ticks = Arc::new(AtomicU64::new(0));
    let feed = tokio::spawn(ticker(client.clone(), stop_ticks.clone(), ticks.clone()));
    let workers: Vec<_> = (1..=WORKERS)
        .map(|w| {
            let c = if w % 2 == 0 { &client } else { &impatient };
            tokio::spawn(worker(c.clone(), w, killing.clone()))
        })
        .collect();

    // Each kill hits a serving engine under load, at a random moment after it got ready.
    let mut random = uuid::Uuid::new_v4().as_u128();
    for n in 1..=KILLS {
        wait_ready(&client).await;
        random = random.rotate_left(17) ^ 0x9e37_79b9;
        tokio::time::sleep(Duration::from_millis(50 + (random % 600) as u64)).await;
        assert!(
            workers.iter().any(|w| !w.is_finished()),
            "kill {n} came after the load"
        );
        child.start_kill().expect("SIGKILL");
        child.wait().await.expect("reaped");
        tokio::time::sleep(Duration::from_millis((random >> 20) as u64 % 300)).await;
        child = spawn_engine(&names, &db, n);
    }
    killing.store(false, Ordering::Relaxed);
    let mut sent = Vec::new();
    for w in workers {
        sent.extend(w.await.expect("worker"));
    }
    stop_ticks.store(true, Ordering::Relaxed);
    feed.await.expect("feed");
    // A last command: once it is answered, the engine has applied everything before it.
    let sentinel = cmd(
        "sentinel",
        Command::CreateAccount {
            user_id: user(9_999),
        },
    );
    let (reply, _) = send_until_replied(&client, sentinel.clone()).await;
    sent.push((sentinel, reply, false));
    sigterm_and_wait(&mut child).await;

    let (pure, first_replies, logged, pure_events) = pure_replay(&names).await;
    let retried = sent.iter().filter(|(_, _, failed)| *failed).count();
    assert!(retried > 0, "the kills interrupted some commands");
    assert!(ticks.load(Ordering::Relaxed) > 100);
    let mut opened = HashSet::new();
    for (c, reply, _) in &sent {
        let id = c.id.to_string();
        assert_eq!(logged.get(&id), Some(&1), "{id} is in the log exactly once");
        assert_eq!(
            first_replies.get(&id),
            Some(reply),
            "{id}: the reply is the log's"
        );
        if let Reply::Accepted(Accepted::PositionOpened { position }) = reply {
            assert!(opened.insert(position.id), "one position per open");
        }
    }
    assert_eq!(logged.len(), sent.len(), "nothing else was logged");

    let published = published_events(&names, pure_events.len()).await;
    assert!(
        published == pure_events,
        "EVENTS equals the pure core's events"
    );
    let opened_events = published
        .values()
        .filter(|e| matches!(e, Event::PositionOpened { .. }))
        .count();
    assert_eq!(opened_events, opened.len());

    let store = SnapshotStore::Postgres(db.pool.clone());
    let newest = store.list(&names.engine_stream()).await.expect("list");
    let newest = newest.first().expect("a snapshot");
    let blob = store.load(newest).await.expect("load");
    let stored = snapshot::decode(&blob, newest.last_seq).expect("decodes");
    assert!(
        stored == pure,
        "the engine's final state equals the pure replay"
    );
    eprintln!(
        "crash test: {} commands ({retried} retried), {} ticks, {KILLS} SIGKILLs, {} events",
        sent.len(),
        ticks.load(Ordering::Relaxed),
        published.len()
    );
    cleanup(&names).await;
}
