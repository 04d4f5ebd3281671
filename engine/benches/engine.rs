//! Engine core throughput: ticks with 1,000 and 1,000,000 open positions (nothing triggered),
//! open+close pairs, and a mixed stream of 90% ticks. Run: `cargo bench -p engine --bench engine`.
//! Figures are recorded in docs/benchmarks.md.

use std::time::{Duration, Instant};

use bus::{
    Asset, Command, CommandEnvelope, CommandId, EngineInput, Leverage, OpenPosition, PositionId,
    Price, PriceTick, Quantity, Side, UserId,
};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
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
        id: CommandId::new(format!("bench-{id}")).expect("id"),
        command,
    })
}

/// Position `n`: alternating buy/sell at 10x with stop-loss and take-profit 5% away, so a
/// tick within +-4% of 65,000 triggers nothing (liquidation is 10% away).
fn open(n: u64) -> Command {
    let side = if n.is_multiple_of(2) {
        Side::Buy
    } else {
        Side::Sell
    };
    let (sl, tp) = match side {
        Side::Buy => (6_175_000 - (n % 1000) as i64, 6_825_000 + (n % 1000) as i64),
        Side::Sell => (6_825_000 + (n % 1000) as i64, 6_175_000 - (n % 1000) as i64),
    };
    Command::OpenPosition(OpenPosition {
        trailing_distance: None,
        user_id: user(n),
        asset: Asset::Btc,
        side,
        quantity: Quantity::new(Decimal::new(1 + (n % 50) as i64, 4)).expect("positive"),
        leverage: Leverage::new(10).expect("10x"),
        stop_loss: Some(price(sl)),
        take_profit: Some(price(tp)),
        expected_price: None,
        max_slippage_bps: None,
    })
}

/// An engine with `positions` open BTC positions and a quote at 65,000.
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

/// Ticks that wander within the band where nothing triggers.
fn quiet_tick(i: u64) -> EngineInput {
    tick(6_400_000 + ((i * 7919) % 200_000) as i64)
}

fn ticks(c: &mut Criterion) {
    let mut group = c.benchmark_group("tick_nothing_triggered");
    group.throughput(Throughput::Elements(1));
    for positions in [1_000u64, 1_000_000] {
        let mut engine = engine_with(positions);
        let mut i = 0;
        group.bench_with_input(
            BenchmarkId::from_parameter(positions),
            &positions,
            |b, _| {
                b.iter(|| {
                    i += 1;
                    let out = engine.apply(quiet_tick(i), 1);
                    debug_assert!(out.events.is_empty());
                    out
                })
            },
        );
        assert_eq!(
            engine.open_positions() as u64,
            positions,
            "nothing triggered"
        );
    }
    group.finish();
}

/// Runs `inputs` through `engine`, timing only the applies.
fn timed(engine: &mut Engine, inputs: Vec<EngineInput>) -> Duration {
    let start = Instant::now();
    for input in inputs {
        std::hint::black_box(engine.apply(input, 1));
    }
    start.elapsed()
}

fn open_close(c: &mut Criterion) {
    let mut group = c.benchmark_group("open_close_pair");
    group.throughput(Throughput::Elements(2));
    let mut engine = engine_with(10_000);
    let mut next_cmd = 10_000_000u64;
    group.bench_function("10k_open", |b| {
        b.iter_custom(|iters| {
            let mut inputs = Vec::with_capacity(2 * iters as usize);
            let first = engine.open_positions() as u64; // ids continue from the setup
            let base = engine.next_position_id().0;
            for k in 0..iters {
                let n = first + k;
                inputs.push(command(next_cmd, open(n)));
                inputs.push(command(
                    next_cmd + 1,
                    Command::ClosePosition {
                        user_id: user(n),
                        position_id: PositionId(base + k),
                    },
                ));
                next_cmd += 2;
            }
            let elapsed = timed(&mut engine, inputs);
            assert_eq!(engine.open_positions(), 10_000, "every pair closed");
            elapsed
        })
    });
    group.finish();
}

fn mixed(c: &mut Criterion) {
    let mut group = c.benchmark_group("mixed_90pct_ticks");
    group.throughput(Throughput::Elements(1));
    let mut engine = engine_with(10_000);
    let mut next_cmd = 20_000_000u64;
    let mut i = 0u64;
    group.bench_function("10k_open", |b| {
        b.iter_custom(|iters| {
            let mut inputs = Vec::with_capacity(iters as usize);
            let first = engine.open_positions() as u64;
            let base = engine.next_position_id().0;
            let mut opened = 0u64;
            let mut closed = 0u64;
            for _ in 0..iters {
                i += 1;
                if !i.is_multiple_of(10) {
                    inputs.push(quiet_tick(i));
                } else if opened == closed {
                    inputs.push(command(next_cmd, open(first + opened)));
                    opened += 1;
                    next_cmd += 1;
                } else {
                    let command_ = Command::ClosePosition {
                        user_id: user(first + closed),
                        position_id: PositionId(base + closed),
                    };
                    inputs.push(command(next_cmd, command_));
                    closed += 1;
                    next_cmd += 1;
                }
            }
            let elapsed = timed(&mut engine, inputs);
            // An unmatched open is closed outside the timing so every batch starts alike.
            if opened > closed {
                let close = Command::ClosePosition {
                    user_id: user(first + closed),
                    position_id: PositionId(base + closed),
                };
                engine.apply(command(next_cmd, close), 1);
                next_cmd += 1;
            }
            assert_eq!(engine.open_positions(), 10_000, "every open was closed");
            elapsed
        })
    });
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
}

criterion_group! { name = benches; config = config(); targets = ticks, open_close, mixed }
criterion_main!(benches);
