//! The workload of the instruction-count regression guard (`local/perf-guard.sh`): one
//! scenario per run, its inputs built outside [`measured`], the only function callgrind
//! counts (`--toggle-collect`). Instruction counts do not move with the machine's load, so a
//! committed baseline can be checked on a busy 2-core machine.
//!
//! `cargo run --release -p engine --example perf_guard -- <tick_1k|tick_1m|open_close> [n]`
//! runs the scenario natively (no counting) and prints how many inputs `measured` applied.

use bus::{
    Asset, Command, CommandEnvelope, CommandId, EngineInput, Leverage, OpenPosition, PositionId,
    Price, PriceTick, Quantity, Side, UserId,
};
use engine::{Engine, EngineConfig};
use rust_decimal::Decimal;

const USERS: u64 = 1_000;

fn user(n: u64) -> UserId {
    UserId(uuid::Uuid::from_u128(u128::from(n % USERS) + 1))
}

fn price(cents: i64) -> Price {
    Price::new(Decimal::new(cents, 2)).expect("positive")
}

fn tick(bid_cents: i64) -> EngineInput {
    EngineInput::PriceTick(PriceTick {
        asset: Asset::Btc,
        bid: price(bid_cents),
        ask: price(bid_cents + 100),
        ts: 0,
    })
}

fn command(id: u64, command: Command) -> EngineInput {
    EngineInput::Command(CommandEnvelope {
        id: CommandId::new(format!("guard-{id}")).expect("id"),
        command,
    })
}

/// Position `n` as in the criterion bench: 10x, stop-loss and take-profit 5% away, so a tick
/// within +-4% of 65,000 triggers nothing.
fn open(n: u64) -> Command {
    let side = if n.is_multiple_of(2) {
        Side::Buy
    } else {
        Side::Sell
    };
    let wobble = (n % 1000) as i64;
    let (sl, tp) = match side {
        Side::Buy => (6_175_000 - wobble, 6_825_000 + wobble),
        Side::Sell => (6_825_000 + wobble, 6_175_000 - wobble),
    };
    Command::OpenPosition(OpenPosition {
        user_id: user(n),
        asset: Asset::Btc,
        side,
        quantity: Quantity::new(Decimal::new(1 + (n % 50) as i64, 4)).expect("positive"),
        leverage: Leverage::new(10).expect("10x"),
        stop_loss: Some(price(sl)),
        take_profit: Some(price(tp)),
        expected_price: None,
        max_slippage_bps: None,
        trailing_distance: None,
    })
}

fn engine_with(positions: u64) -> Engine {
    let config = EngineConfig {
        initial_balance: Decimal::new(1_000_000_000, 0),
        idempotency_window: 10_000,
        ..Default::default()
    };
    let mut engine = Engine::new(config);
    for u in 0..USERS {
        engine.apply(command(u, Command::CreateAccount { user_id: user(u) }), 0);
    }
    engine.apply(tick(6_500_000), 0);
    for n in 0..positions {
        engine.apply(command(USERS + n, open(n)), 0);
    }
    assert_eq!(engine.open_positions() as u64, positions);
    engine
}

/// The counted part: applies every input in order.
#[inline(never)]
fn measured(engine: &mut Engine, inputs: Vec<EngineInput>) {
    for input in inputs {
        std::hint::black_box(engine.apply(input, 1));
    }
}

fn quiet_ticks(n: u64) -> Vec<EngineInput> {
    (1..=n)
        .map(|i| tick(6_400_000 + ((i * 7919) % 200_000) as i64))
        .collect()
}

/// `n` open+close pairs against 10,000 open positions.
fn pairs(engine: &Engine, n: u64) -> Vec<EngineInput> {
    let first = engine.open_positions() as u64;
    let base = engine.next_position_id().0;
    let mut inputs = Vec::new();
    for k in 0..n {
        inputs.push(command(10_000_000 + 2 * k, open(first + k)));
        let close = Command::ClosePosition {
            user_id: user(first + k),
            position_id: PositionId(base + k),
        };
        inputs.push(command(10_000_001 + 2 * k, close));
    }
    inputs
}

fn main() {
    let mut args = std::env::args().skip(1);
    let scenario = args.next().unwrap_or_default();
    let n: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1_000);
    let (mut engine, inputs, open_after) = match scenario.as_str() {
        "tick_1k" => (engine_with(1_000), quiet_ticks(n), 1_000),
        "tick_1m" => (engine_with(1_000_000), quiet_ticks(n), 1_000_000),
        "open_close" => {
            let engine = engine_with(10_000);
            let inputs = pairs(&engine, n);
            (engine, inputs, 10_000)
        }
        other => {
            eprintln!("unknown scenario {other:?}: tick_1k, tick_1m or open_close");
            std::process::exit(2);
        }
    };
    let count = inputs.len();
    measured(&mut engine, inputs);
    assert_eq!(engine.open_positions(), open_after, "nothing triggered");
    println!("{scenario}: {count} inputs, {n} units");
}
