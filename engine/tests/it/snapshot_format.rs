//! Committed snapshot blobs (`tests/fixtures/`) still load: the current format byte for byte,
//! format 3 (before ids were remembered per user and by time and quotes carried the log time
//! they were applied at), format 2 (before pending orders and trailing stops) and format 1
//! (written by the build before SHA-256 fingerprints and the exact liquidation rule), so an
//! upgrade never strands the state behind a purged log.
//!
//! Formats 1 and 2 hold a small history (see [`history`]) applied at `last_seq` 6; formats 3
//! and 4 that history plus a pending order and a trailing stop ([`history_3`]), at `last_seq` 8.
//! Regenerate the current one (only after bumping `snapshot::FORMAT`) with
//! `cargo test -p engine --test it snapshot_format:: -- --ignored`.

use crate::support;

use bus::{Accepted, Asset, Command, Fingerprint, Query, QueryReply, Reply, Side};
use engine::service::snapshot::{FORMAT, decode, encode};
use engine::{Engine, EngineConfig};
use support::*;

const CURRENT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/snapshot-format-4.blob"
);
const FORMAT_3: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/snapshot-format-3.blob"
);
const FORMAT_2: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/snapshot-format-2.blob"
);
const FORMAT_1: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/snapshot-format-1.blob"
);
const LAST_SEQ: u64 = 6;
const LAST_SEQ_3: u64 = 8;

fn open_eth() -> Command {
    Command::OpenPosition(open_cmd(user(1), Asset::Eth, Side::Buy, "11.479", 10))
}

/// The fixtures' history: an account, ETH and SOL quotes, an ETH buy (margin 3610.92, exact
/// liquidation level 2831.1025..), a SOL sell opened and closed.
fn history() -> World {
    let mut w = World::with_config(EngineConfig {
        idempotency_window: 8,
        ..Default::default()
    });
    w.command_with_id("create-1", Command::CreateAccount { user_id: user(1) });
    w.tick(Asset::Eth, "3145.57", "3145.67");
    w.tick(Asset::Sol, "150.00", "150.10");
    w.command_with_id("open-eth", open_eth());
    let sol = open_cmd(user(1), Asset::Sol, Side::Sell, "2", 50);
    w.command_with_id("open-sol", Command::OpenPosition(sol));
    let close = Command::ClosePosition {
        user_id: user(1),
        position_id: bus::PositionId(2),
    };
    w.command_with_id("close-sol", close);
    w
}

/// [`history`], then a SOL buy limit order and a trailing distance of 20.00 on the ETH buy
/// (which sets its stop-loss to 3125.57).
fn history_3() -> World {
    let mut w = history();
    let mut order = place_cmd(
        user(1),
        Asset::Sol,
        Side::Buy,
        bus::OrderType::Limit,
        "140.00",
        "2",
        10,
    );
    order.expires_at = Some(w.now + 3_600_000);
    w.command_with_id("place-sol", Command::PlaceOrder(order));
    let trail = Command::ModifyPosition(bus::ModifyPosition {
        user_id: user(1),
        position_id: bus::PositionId(1),
        stop_loss: None,
        take_profit: None,
        trailing_distance: Some(price("20.00")),
    });
    w.command_with_id("trail-eth", trail);
    w
}

/// `engine` as a snapshot written before quotes carried their applied time reads back: each
/// quote applied at its tick's own time (the state's closest record of it).
fn without_quote_times(engine: &Engine) -> Engine {
    let mut state: serde_json::Value =
        serde_json::from_slice(&engine.snapshot()).expect("state is JSON");
    let fields = state.as_object_mut().expect("state is an object");
    assert!(fields.remove("quote_applied_at").is_some());
    Engine::restore(&serde_json::to_vec(&state).expect("JSON")).expect("restores")
}

fn read(path: &str) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn lookup(engine: &Engine, id: &str, command: &Command) -> Option<Reply> {
    let query = Query::GetCommandReply {
        command_id: bus::CommandId::new(id).expect("id"),
        fingerprint: Fingerprint::of(command),
        logged_seq: None,
    };
    match engine.query(&query) {
        QueryReply::CommandReply { reply } => reply,
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_committed_current_format_loads_and_is_written_the_same() {
    let blob = read(CURRENT);
    let header = format!("ENGINE-SNAPSHOT {FORMAT} {LAST_SEQ_3} ");
    assert!(
        blob.starts_with(header.as_bytes()),
        "the fixture is format {FORMAT}"
    );
    let restored = decode(&blob, LAST_SEQ_3).expect("the committed snapshot loads");
    let w = history_3();
    assert_eq!(restored, w.engine);
    // Byte for byte: a change to the state's encoding (or to the fingerprints) must come with
    // a new format number and a reader for this one.
    assert_eq!(encode(&w.engine, LAST_SEQ_3), blob);

    let mut w = World::around(restored);
    let position = w.engine.positions().next().expect("the ETH buy").clone();
    assert_eq!(position.stop_loss, Some(price("3125.57")));
    assert!(w.engine.is_trailed(position.id));
    assert_eq!(w.engine.indexed_orders_and_trails(), (2, 1));
    let first = lookup(&w.engine, "open-eth", &open_eth()).expect("remembered");
    assert!(matches!(
        first,
        Reply::Accepted(Accepted::PositionOpened { .. })
    ));
    assert_eq!(w.command_with_id("open-eth", open_eth()).reply, Some(first));
    // The restored indexes work: the trail follows the bid, the order fills at 140.00.
    assert!(w.tick(Asset::Eth, "3150.00", "3150.10").is_empty());
    let moved = w.engine.positions().next().expect("the ETH buy").stop_loss;
    assert_eq!(moved, Some(price("3130.00")));
    let filled = fills(&w.tick(Asset::Sol, "139.90", "140.00"));
    assert_eq!(filled.len(), 1);
    assert_eq!(filled[0].1.open_price, price("140.00"));
}

/// The state without its memory of command ids (which older formats hold in another shape).
fn trading_state(engine: &Engine) -> serde_json::Value {
    let mut state: serde_json::Value =
        serde_json::from_slice(&engine.snapshot()).expect("a snapshot is JSON");
    let fields = state.as_object_mut().expect("an object");
    for memory in ["applied", "remembered", "legacy_until"] {
        fields.remove(memory);
    }
    state
}

#[test]
fn a_format_3_snapshot_still_loads_and_its_ids_age_out_after_a_ttl() {
    let blob = read(FORMAT_3);
    assert!(blob.starts_with(b"ENGINE-SNAPSHOT 3 8 "));
    let restored = decode(&blob, LAST_SEQ_3).expect("format 3 still loads");
    let today = history_3();
    assert_eq!(
        trading_state(&restored),
        trading_state(&without_quote_times(&today.engine))
    );
    let mut w = World::around(restored);
    let first = lookup(&w.engine, "open-eth", &open_eth()).expect("remembered");
    assert_eq!(
        lookup(&today.engine, "open-eth", &open_eth()),
        Some(first.clone())
    );
    assert_eq!(
        w.command_with_id("open-eth", open_eth()).reply,
        Some(first.clone())
    );
    // The first command after the restore (the retry above, 1 ms after the snapshot's
    // world) starts the old window's ttl; it answers until the ttl is up.
    let ttl = w.engine.config().idempotency_ttl_ms;
    w.command_with_id("create-2", Command::CreateAccount { user_id: user(2) });
    w.now += ttl - 3;
    assert_eq!(w.command_with_id("open-eth", open_eth()).reply, Some(first));
    w.command_with_id("create-3", Command::CreateAccount { user_id: user(3) });
    assert_eq!(lookup(&w.engine, "open-eth", &open_eth()), None, "dropped");
    assert!(
        lookup(
            &w.engine,
            "create-3",
            &Command::CreateAccount { user_id: user(3) }
        )
        .is_some()
    );
}

#[test]
fn a_format_3_snapshot_still_loads_with_quotes_applied_at_their_tick_time() {
    let blob = read(FORMAT_3);
    assert!(blob.starts_with(b"ENGINE-SNAPSHOT 3 8 "));
    let restored = decode(&blob, LAST_SEQ_3).expect("format 3 still loads");
    let today = history_3();
    assert_eq!(
        trading_state(&restored),
        trading_state(&without_quote_times(&today.engine))
    );
    let eth_tick = today
        .engine
        .quote_applied_at(Asset::Eth)
        .expect("an ETH quote")
        - 1;
    assert_eq!(restored.quote_applied_at(Asset::Eth), Some(eth_tick));
    assert_eq!(restored.quote_applied_at(Asset::Btc), None);
    let mut w = World::around(restored);
    let first = lookup(&w.engine, "open-eth", &open_eth()).expect("remembered");
    assert_eq!(w.command_with_id("open-eth", open_eth()).reply, Some(first));
    // The quotes are a few ms old by the restored clock: trading goes on.
    w.now = today.now;
    let next = w.command_with_id("new", open_eth()).reply.expect("reply");
    assert!(matches!(next, Reply::Accepted(_)), "{next:?}");
}

#[test]
fn a_format_2_snapshot_still_loads() {
    let blob = read(FORMAT_2);
    assert!(blob.starts_with(b"ENGINE-SNAPSHOT 2 6 "));
    let restored = decode(&blob, LAST_SEQ).expect("format 2 still loads");
    assert_eq!(
        trading_state(&restored),
        trading_state(&without_quote_times(&history().engine))
    );
    let mut w = World::around(restored);
    let first = lookup(&w.engine, "open-eth", &open_eth()).expect("remembered");
    assert_eq!(w.command_with_id("open-eth", open_eth()).reply, Some(first));
    let other = Command::OpenPosition(open_cmd(user(1), Asset::Eth, Side::Buy, "1", 10));
    let reused = w.command_with_id("open-eth", other).reply.expect("reply");
    assert_eq!(
        rejection_code(&reused),
        Some(bus::RejectCode::CommandIdReused)
    );
    // Orders are numbered from 1 after an upgrade.
    let order = place_cmd(
        user(1),
        Asset::Sol,
        Side::Buy,
        bus::OrderType::Limit,
        "140.00",
        "2",
        10,
    );
    assert_eq!(w.placed(order).id, bus::OrderId(1));
}

#[test]
fn a_format_1_snapshot_still_loads() {
    let blob = read(FORMAT_1);
    assert!(blob.starts_with(b"ENGINE-SNAPSHOT 1 6 "));
    let mut w = World::around(decode(&blob, LAST_SEQ).expect("format 1 still loads"));
    let today = history();
    let position = w.engine.positions().next().expect("the ETH buy").clone();
    let expected = today
        .engine
        .positions()
        .next()
        .expect("the ETH buy")
        .clone();
    // Format 1 showed 2831.11 (rounded towards the open); the level is recomputed.
    assert_eq!(position, expected);
    assert_eq!(position.liquidation_price, Some(price("2831.10")));
    let balance = |e: &Engine| e.query(&Query::GetAccount { user_id: user(1) });
    assert_eq!(balance(&w.engine), balance(&today.engine));

    // Its remembered ids carry no comparable fingerprint: a retry is a conflict, never
    // another command's reply and never applied twice.
    let retry = w
        .command_with_id("open-eth", open_eth())
        .reply
        .expect("reply");
    assert_eq!(
        rejection_code(&retry),
        Some(bus::RejectCode::CommandIdReused)
    );
    let looked_up = lookup(&w.engine, "open-eth", &open_eth()).expect("known id");
    assert_eq!(
        rejection_code(&looked_up),
        Some(bus::RejectCode::CommandIdReused)
    );
    assert_eq!(w.engine.open_positions(), 1);

    // The restored engine trades on by today's rules: the bid 2831.11 does not liquidate.
    assert!(closes(&w.tick(Asset::Eth, "2831.11", "2831.12")).is_empty());
    let closed = closes(&w.tick(Asset::Eth, "2831.10", "2831.11"));
    assert_eq!(closed[0].close_reason, bus::CloseReason::Liquidation);
    let next = w.command_with_id("new", open_eth()).reply.expect("reply");
    assert!(matches!(next, Reply::Accepted(_)), "{next:?}");
}

/// Writes the current format's fixture from [`history`].
#[test]
#[ignore = "regenerates tests/fixtures/snapshot-format-4.blob"]
fn regenerate_the_current_fixture() {
    let w = history_3();
    std::fs::write(CURRENT, encode(&w.engine, LAST_SEQ_3)).expect("fixture written");
}
