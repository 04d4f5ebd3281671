//! Memory of the engine's idempotency window: resident memory (Linux `/proc/self/statm`)
//! before and after the engine remembers 1,000,000 command ids of 10,000 users (100 each),
//! divided by the ids. Two kinds of reply: rejections (a close of a position that does not
//! exist: the smallest reply) and open+close pairs (an opened, then a closed position: the
//! largest common replies; the positions are gone afterwards, so what stays is the window).
//! Run: `cargo bench -p engine --bench remembered` (release). Figures in docs/benchmarks.md.

use bus::{
    Asset, Command, CommandEnvelope, CommandId, EngineInput, Leverage, OpenPosition, PositionId,
    Price, PriceTick, Quantity, Side, UserId,
};
use engine::{Engine, EngineConfig};
use rust_decimal::Decimal;

const USERS: u64 = 10_000;
const PER_USER: u64 = 100;

fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn user(n: u64) -> UserId {
    UserId(uuid::Uuid::from_u128(u128::from(n) + 1))
}

fn input(id: String, command: Command) -> EngineInput {
    EngineInput::command(CommandEnvelope {
        // As the HTTP functions make them: `idem-` and 64 hex digits.
        id: CommandId::new(format!("idem-{id:0>64}")).expect("id"),
        command,
    })
}

fn open(u: UserId) -> Command {
    Command::OpenPosition(OpenPosition {
        user_id: u,
        asset: Asset::Btc,
        side: Side::Buy,
        quantity: Quantity::new(Decimal::new(1, 4)).expect("qty"),
        leverage: Leverage::new(10).expect("10x"),
        stop_loss: None,
        take_profit: None,
        expected_price: None,
        max_slippage_bps: None,
        trailing_distance: None,
    })
}

/// An engine with the accounts and a BTC quote (their ids are remembered too: measured
/// before the window under test).
fn engine() -> Engine {
    let mut engine = Engine::new(EngineConfig::default());
    for u in 0..USERS {
        let create = Command::CreateAccount { user_id: user(u) };
        engine.apply(input(format!("acct{u}"), create), 0);
    }
    let tick = PriceTick {
        asset: Asset::Btc,
        bid: Price::new(Decimal::new(6_500_000, 2)).expect("bid"),
        ask: Price::new(Decimal::new(6_500_100, 2)).expect("ask"),
        ts: 0,
        simulated: false,
    };
    engine.apply(EngineInput::PriceTick(tick), 0);
    engine
}

/// Bytes per remembered id after `fill` applied `USERS * PER_USER` commands.
fn measure(name: &str, fill: impl Fn(&mut Engine)) {
    let mut engine = engine();
    let before = resident_bytes();
    fill(&mut engine);
    let after = resident_bytes();
    let ids = USERS * PER_USER;
    let per_id = (after.saturating_sub(before)) as f64 / ids as f64;
    println!(
        "| {name} | {ids} | {:.0} MiB | {per_id:.0} B | {:.1} GB |",
        (after - before) as f64 / (1 << 20) as f64,
        per_id * 1e8 / 1e9
    );
    assert_eq!(engine.open_positions(), 0);
}

fn rejections(engine: &mut Engine) {
    for k in 0..PER_USER {
        for u in 0..USERS {
            let close = Command::ClosePosition {
                user_id: user(u),
                position_id: PositionId(u64::MAX - k),
            };
            engine.apply(input(format!("r{u}x{k}"), close), 1);
        }
    }
}

fn open_close_pairs(engine: &mut Engine) {
    for k in 0..PER_USER / 2 {
        for u in 0..USERS {
            let id = engine.next_position_id();
            engine.apply(input(format!("o{u}x{k}"), open(user(u))), 1);
            let close = Command::ClosePosition {
                user_id: user(u),
                position_id: id,
            };
            engine.apply(input(format!("c{u}x{k}"), close), 1);
        }
    }
}

/// Each measurement in a process of its own (memory freed by one would be reused by the
/// next and hide its growth).
fn main() {
    match std::env::args().nth(1).as_deref() {
        Some("rejections") => measure("rejections (close of an unknown position)", rejections),
        Some("pairs") => measure("open + close pairs", open_close_pairs),
        _ => {
            println!("| replies | ids | resident growth | per id | at 1M users x 100 ids |");
            println!("|---|---|---|---|---|");
            let me = std::env::current_exe().expect("this binary");
            for scenario in ["rejections", "pairs"] {
                let status = std::process::Command::new(&me)
                    .arg(scenario)
                    .status()
                    .expect("runs");
                assert!(status.success(), "{scenario}");
            }
        }
    }
}
