//! Engine core throughput: ticks with 1,000 and 1,000,000 open positions (nothing triggered),
//! the same with as many pending orders, ticks that move trailing stops, open+close pairs,
//! and a mixed stream of 90% ticks. Run: `cargo bench -p engine --bench engine`.
//! Figures are recorded in docs/benchmarks.md.

use std::time::{Duration, Instant};

use bus::{
    Asset, Command, CommandEnvelope, CommandId, EngineInput, Leverage, OpenPosition, OrderType,
    PlaceOrder, PositionId, Price, PriceTick, Quantity, Side, UserId,
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

/// Pending order `n`: the four kinds in turn, each 8% or more from 65,000 on its side (so
/// the quiet band triggers none), half of them expiring in the far future.
fn place(n: u64) -> Command {
    let spread = (n % 1000) as i64;
    let (side, order_type, cents) = match n % 4 {
        0 => (Side::Buy, OrderType::Limit, 6_000_000 - spread),
        1 => (Side::Buy, OrderType::Stop, 7_000_000 + spread),
        2 => (Side::Sell, OrderType::Limit, 7_000_000 + spread),
        _ => (Side::Sell, OrderType::Stop, 6_000_000 - spread),
    };
    Command::PlaceOrder(PlaceOrder {
        user_id: user(n),
        asset: Asset::Btc,
        side,
        order_type,
        price: price(cents),
        quantity: Quantity::new(Decimal::new(1 + (n % 50) as i64, 4)).expect("positive"),
        leverage: Leverage::new(10).expect("10x"),
        stop_loss: None,
        take_profit: None,
        expires_at: n.is_multiple_of(2).then_some(4_000_000_000_000 + n as i64),
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

/// `engine_with(n)` plus `n` pending BTC orders.
fn engine_with_orders(n: u64) -> Engine {
    let mut engine = engine_with(n);
    for k in 0..n {
        engine.apply(command(30_000_000 + k, place(k)), 0);
    }
    assert_eq!(engine.orders().count() as u64, n);
    engine
}

fn ticks(c: &mut Criterion) {
    tick_group(c, "tick_nothing_triggered", engine_with);
    tick_group(c, "tick_with_pending_orders", engine_with_orders);
}

fn tick_group(c: &mut Criterion, name: &str, setup: fn(u64) -> Engine) {
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Elements(1));
    for positions in [1_000u64, 1_000_000] {
        let mut engine = setup(positions);
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

/// `moving` trailing buys (distance 100.00) among `others` positions; each tick raises the
/// bid by a cent, so every trailing stop moves: the cost per moved stop, O(log n).
fn trailing(c: &mut Criterion) {
    let mut group = c.benchmark_group("tick_moving_trailing_stops");
    let moving = 1_000u64;
    group.throughput(Throughput::Elements(moving));
    for others in [1_000u64, 1_000_000] {
        let mut engine = engine_with(others);
        for k in 0..moving {
            let Command::OpenPosition(mut open) = open(2 * k) else {
                unreachable!("open() builds an open")
            };
            open.stop_loss = None;
            open.trailing_distance = Some(price(10_000));
            engine.apply(command(40_000_000 + k, Command::OpenPosition(open)), 0);
        }
        let mut bid = 6_500_000i64;
        group.bench_with_input(BenchmarkId::from_parameter(others), &others, |b, _| {
            b.iter(|| {
                bid += 1;
                let out = engine.apply(tick(bid), 1);
                debug_assert!(out.events.is_empty());
                out
            })
        });
        assert!(bid < 6_825_000, "the rise stays below every take-profit");
        assert_eq!(engine.open_positions() as u64, others + moving);
        let trailed = engine
            .positions()
            .filter(|p| engine.is_trailed(p.id))
            .count();
        assert_eq!(trailed as u64, moving, "every trailing stop moved");
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

criterion_group! { name = benches; config = config(); targets = ticks, trailing, open_close, mixed }
criterion_main!(benches);
