//! The workload of the instruction-count regression guard (`local/perf-guard.sh`): one
//! scenario per run, its inputs built (by the criterion bench's own builders, included from
//! `benches/workload`) outside [`measured`], the only function callgrind counts
//! (`--toggle-collect`). Instruction counts do not move with the machine's load, so a
//! committed baseline can be checked on a busy 2-core machine.
//!
//! `cargo run --release -p engine --example perf_guard -- <scenario> [n]` runs a scenario
//! natively (no counting) and prints how many inputs `measured` applied. Scenarios:
//! `tick_1k`, `tick_1m` (quiet ticks, 1,000 / 1,000,000 open positions), `tick_orders_1k`
//! (quiet ticks, 1,000 positions and 1,000 pending orders), `open_close` (pairs, 10,000
//! open) and `mixed` (goal 4's stream: 90% ticks, 10,000 open); `n` ticks, pairs or inputs.

use bus::EngineInput;
use engine::Engine;

#[path = "../benches/workload/mod.rs"]
mod workload;

use workload::{Mixed, engine_with, engine_with_orders, open_close_pairs, quiet_tick};

/// The counted part: applies every input in order.
#[inline(never)]
fn measured(engine: &mut Engine, inputs: Vec<EngineInput>) {
    for input in inputs {
        // By reference: passing the ~420-byte outcome by value would time a copy the engine
        // service does not make.
        std::hint::black_box(&engine.apply(input, 1));
    }
}

fn quiet_ticks(n: u64) -> Vec<EngineInput> {
    (1..=n).map(quiet_tick).collect()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let scenario = args.next().unwrap_or_default();
    let n: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1_000);
    let mut stream = Mixed::new(20_000_000);
    let (mut engine, inputs, open_after) = match scenario.as_str() {
        "tick_1k" => (engine_with(1_000), quiet_ticks(n), 1_000),
        "tick_1m" => (engine_with(1_000_000), quiet_ticks(n), 1_000_000),
        "tick_orders_1k" => (engine_with_orders(1_000), quiet_ticks(n), 1_000),
        "open_close" => {
            let engine = engine_with(10_000);
            let inputs = open_close_pairs(&engine, 10_000_000, n);
            (engine, inputs, 10_000)
        }
        "mixed" => {
            let engine = engine_with(10_000);
            let inputs = stream.batch(&engine, n);
            (engine, inputs, 10_000)
        }
        other => {
            eprintln!(
                "unknown scenario {other:?}: tick_1k, tick_1m, tick_orders_1k, open_close or mixed"
            );
            std::process::exit(2);
        }
    };
    let count = inputs.len();
    measured(&mut engine, inputs);
    // An open the stream left unmatched (n not a multiple of 20) is closed uncounted.
    stream.settle(&mut engine);
    assert_eq!(engine.open_positions(), open_after, "nothing triggered");
    println!("{scenario}: {count} inputs, {n} units");
}
