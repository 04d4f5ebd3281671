//! Engine core throughput: ticks with 1,000 and 1,000,000 open positions (nothing triggered),
//! the same with as many pending orders, ticks that move trailing stops, open+close pairs,
//! and a mixed stream of 90% ticks. Run: `cargo bench -p engine --bench engine`.
//! Figures are recorded in docs/benchmarks.md.

use std::time::{Duration, Instant};

use bus::{Command, EngineInput};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use engine::Engine;
use workload::{
    Mixed, command, engine_with, engine_with_orders, open, open_close_pairs, price, quiet_tick,
    tick,
};

mod workload;

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
        // By reference: passing the ~420-byte outcome by value would time a copy the engine
        // service does not make.
        std::hint::black_box(&engine.apply(input, 1));
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
            let inputs = open_close_pairs(&engine, next_cmd, iters);
            next_cmd += 2 * iters;
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
    let mut stream = Mixed::new(20_000_000);
    group.bench_function("10k_open", |b| {
        b.iter_custom(|iters| {
            let inputs = stream.batch(&engine, iters);
            let elapsed = timed(&mut engine, inputs);
            stream.settle(&mut engine);
            assert_eq!(engine.open_positions(), 10_000, "every open was closed");
            elapsed
        })
    });
    group.finish();
}

/// The floor of a run: a fixed reference the engine's code does not touch (one lookup in a
/// 10,000-entry `BTreeMap`), so the ratio of a figure to it cancels most of the machine's
/// load when other builds share the cores.
fn floor(c: &mut Criterion) {
    let map: std::collections::BTreeMap<u64, u64> = (0..10_000).map(|k| (k * 7, k)).collect();
    let mut k = 0u64;
    c.benchmark_group("floor")
        .throughput(Throughput::Elements(1))
        .bench_function("btreemap_get_10k", |b| {
            b.iter(|| {
                k = (k + 7919) % 70_000;
                map.get(&std::hint::black_box(k)).copied()
            })
        });
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
}

criterion_group! { name = benches; config = config(); targets = floor, ticks, trailing, open_close, mixed }
criterion_main!(benches);
