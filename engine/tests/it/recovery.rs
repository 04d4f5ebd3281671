//! Recovery over real NATS JetStream and PostgreSQL: every stored snapshot plus the replay of
//! the inputs after it equals a replay from sequence 1; a corrupted newest snapshot is skipped
//! for the previous one; a second engine never writes while the first holds the lock, and
//! takes over when the first dies; an engine that lost its lock waits and takes it again.
//! No assertion depends on how fast anything happens (deadlines are generous polls).

use crate::svc;

use std::time::Duration;

use bus::nats::EngineClient;
use bus::{Asset, Command, Names, Query, QueryReply, Reply, Side};
use engine::service::{SnapshotStore, recovery, snapshot};
use engine::{Engine, EngineConfig};
use migrations::TestDatabase;
use svc::*;

/// A few hundred inputs: accounts, ticks that move prices (and trigger SL/TP), opens, closes.
async fn drive(client: &EngineClient, rounds: u32) {
    let users: Vec<_> = (1..=4).map(user).collect();
    for (i, u) in users.iter().enumerate() {
        let c = cmd(&format!("acct-{i}"), Command::CreateAccount { user_id: *u });
        client.send(c).await.expect("create");
    }
    for r in 0..rounds {
        let bid = 60_000 + (r % 17) * 150;
        let t = tick(Asset::Btc, &format!("{bid}.00"), &format!("{}.00", bid + 1));
        client.publish_tick(&t).await.expect("tick");
        let u = users[(r as usize) % users.len()];
        let side = if r % 2 == 0 { Side::Buy } else { Side::Sell };
        let reply = client
            .send(cmd(
                &format!("open-{r}"),
                open(u, Asset::Btc, side, "0.01", 20),
            ))
            .await
            .expect("open");
        if let (Reply::Accepted(bus::Accepted::PositionOpened { position }), true) =
            (reply, r % 3 == 0)
        {
            let close = Command::ClosePosition {
                user_id: u,
                position_id: position.id,
            };
            client
                .send(cmd(&format!("close-{r}"), close))
                .await
                .expect("close");
        }
    }
}

async fn replay_from(names: &Names, mut engine: Engine, after: u64) -> Engine {
    let nats = async_nats::connect(nats_url()).await.expect("nats");
    let js = async_nats::jetstream::new(nats);
    recovery::replay(&js, names, &mut engine, after, u64::MAX, |_, _| {})
        .await
        .expect("replay");
    engine
}

#[tokio::test]
async fn every_snapshot_plus_replay_equals_replay_from_one_and_damage_falls_back() {
    let names = random_names();
    let db = TestDatabase::create().await.expect("database");
    let client = client(&names, Duration::from_secs(30)).await;
    let engine = EngineTask::start(test_settings(&names, &db));
    drive(&client, 120).await;
    engine.stop().await;

    let from_one = replay_from(&names, Engine::new(EngineConfig::default()), 0).await;
    assert!(from_one.accounts() == 4 && from_one.open_positions() > 0);
    let store = SnapshotStore::Postgres(db.pool.clone());
    let stream = names.engine_stream();
    let snapshots = store.list(&stream).await.expect("list");
    // Snapshot every 50 inputs, three kept, and a last one at shutdown.
    assert_eq!(snapshots.len(), 3, "{snapshots:?}");
    for meta in &snapshots {
        let blob = store.load(meta).await.expect("load");
        let restored = snapshot::decode(&blob, meta.last_seq).expect("decodes");
        let replayed = replay_from(&names, restored, meta.last_seq).await;
        assert!(
            replayed == from_one,
            "snapshot at {} + replay",
            meta.last_seq
        );
    }

    // Damage the newest snapshot: recovery falls back to the one before and loses nothing.
    sqlx::query("UPDATE engine_snapshots SET state = 'garbage' WHERE id = $1")
        .bind(snapshots[0].id.parse::<i64>().expect("id"))
        .execute(&db.pool)
        .await
        .expect("corrupt");
    let (loaded, seq) = recovery::load_newest(&store, &stream, &EngineConfig::default())
        .await
        .expect("load newest");
    assert_eq!(seq, snapshots[1].last_seq);
    assert!(replay_from(&names, loaded, seq).await == from_one);

    let engine = EngineTask::start(test_settings(&names, &db));
    wait_ready(&client).await;
    for u in 1..=4 {
        let q = Query::GetAccount { user_id: user(u) };
        let live = client.query(q.clone()).await.expect("query");
        assert_eq!(live, from_one.query(&q));
        assert!(matches!(live, QueryReply::Account { .. }));
    }
    engine.stop().await;
    cleanup(&names).await;
}

#[tokio::test]
async fn a_second_engine_waits_for_the_lock_and_takes_over_when_the_first_dies() {
    let names = random_names();
    let db = TestDatabase::create().await.expect("database");
    let client = client(&names, Duration::from_secs(30)).await;
    let mut first = test_settings(&names, &db);
    first.instance_id = "first".into();
    let mut second = test_settings(&names, &db);
    second.instance_id = "second".into();

    let a = EngineTask::start(first);
    let c = cmd("a1", Command::CreateAccount { user_id: user(1) });
    client.send(c).await.expect("served by the first");
    let b = EngineTask::start(second);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !b.is_finished(),
        "the second engine waits instead of failing"
    );
    let nats = async_nats::connect(nats_url()).await.expect("nats");
    let js = async_nats::jetstream::new(nats);
    let kv = js
        .get_key_value(engine::service::lock_bucket_name(&names))
        .await
        .expect("lock bucket");
    let holder = kv.get("writer").await.expect("get").expect("held");
    assert_eq!(&holder[..], b"first");
    for i in 0..20 {
        let c = cmd(
            &format!("a-open-{i}"),
            Command::CreateAccount {
                user_id: user(100 + i),
            },
        );
        client.send(c).await.expect("served while the second waits");
    }
    // A reply goes out before its input is acked: wait for the ack rather than assume it.
    let acked = ack_floor_reaches(&js, &names, 21).await;
    assert_eq!(acked, 21, "one writer acked everything");

    // The first dies without releasing its lease; the second takes over after the TTL.
    a.crash();
    let c = cmd("b1", Command::CreateAccount { user_id: user(2) });
    let reply = client.send(c).await.expect("served by the second");
    assert!(matches!(reply, Reply::Accepted(_)));
    let holder = kv.get("writer").await.expect("get").expect("held");
    assert_eq!(&holder[..], b"second");
    // Nothing the first engine did is lost or applied again.
    let again = client
        .send(cmd("a1", Command::CreateAccount { user_id: user(1) }))
        .await
        .expect("retry");
    assert!(matches!(again, Reply::Accepted(_)));
    let state = replay_from(&names, Engine::new(EngineConfig::default()), 0).await;
    assert_eq!(state.accounts(), 22);
    b.stop().await;
    cleanup(&names).await;
}

/// The `ENGINE` consumer's ack floor once it reaches `want` (or what it is after a generous
/// deadline, for the assertion to show).
async fn ack_floor_reaches(js: &async_nats::jetstream::Context, names: &Names, want: u64) -> u64 {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let floor = js
            .get_stream(names.engine_stream())
            .await
            .expect("stream")
            .consumer_info(recovery::DURABLE)
            .await
            .map(|c| c.ack_floor.stream_sequence)
            .unwrap_or(0);
        if floor >= want || std::time::Instant::now() > deadline {
            return floor;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn an_engine_whose_lease_was_taken_stops_applying_and_takes_it_again_when_free() {
    let names = random_names();
    let db = TestDatabase::create().await.expect("database");
    let client = client(&names, Duration::from_secs(30)).await;
    let impatient = self::client(&names, Duration::from_millis(800)).await;
    let engine = EngineTask::start(test_settings(&names, &db));
    wait_ready(&client).await;
    let c = cmd("before", Command::CreateAccount { user_id: user(1) });
    client.send(c).await.expect("served");

    // Someone else takes the lock (as after a long pause of this engine past its TTL).
    let nats = async_nats::connect(nats_url()).await.expect("nats");
    let js = async_nats::jetstream::new(nats);
    let kv = js
        .get_key_value(engine::service::lock_bucket_name(&names))
        .await
        .expect("lock bucket");
    kv.purge("writer").await.expect("purge");
    kv.create("writer", "intruder".into())
        .await
        .expect("take over");
    // The intruder keeps its lease alive (entries expire after the TTL) until told to stop.
    let (release, mut released) = tokio::sync::watch::channel(false);
    let renewing = {
        let kv = kv.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = released.changed() => return,
                    () = tokio::time::sleep(Duration::from_millis(300)) => {
                        kv.put("writer", "intruder".into()).await.expect("renew");
                    }
                }
            }
        })
    };

    // The engine notices at its next renewal, stops serving, and waits for the lock.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while client.ping().await.is_ok() {
        assert!(
            std::time::Instant::now() < deadline,
            "the engine still serves"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!engine.is_finished(), "the engine waits instead of exiting");
    let c = cmd("after", Command::CreateAccount { user_id: user(2) });
    assert_eq!(
        impatient.send(c.clone()).await,
        Err(bus::nats::BusError::Timeout)
    );
    let state = replay_from(&names, Engine::new(EngineConfig::default()), 0).await;
    assert_eq!(
        state.accounts(),
        2,
        "the input is logged, for the next writer to apply"
    );
    assert_eq!(
        ack_floor_reaches(&js, &names, 1).await,
        1,
        "nothing applied after the loss"
    );
    assert!(!engine.is_finished(), "still waiting for the lock");

    // The intruder lets go: the same engine takes the lock, recovers and applies the input.
    release.send_replace(true);
    renewing.await.expect("renewer stops");
    kv.delete("writer").await.expect("release");
    let reply = client.send(c).await.expect("served again");
    assert!(matches!(reply, Reply::Accepted(_)), "{reply:?}");
    assert_eq!(ack_floor_reaches(&js, &names, 2).await, 2);
    let holder = kv.get("writer").await.expect("get").expect("held");
    assert_ne!(&holder[..], b"intruder");
    engine.stop().await;
    cleanup(&names).await;
}
