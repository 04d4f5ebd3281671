//! What the engine process tells an operator: its metrics (handles registered once, when a
//! writer starts serving, so the apply loop records without formatting or allocating) and
//! its status for `/readyz` (writer lease held, serving).
//!
//! Metrics: `engine_inputs_applied_total{kind}`, `engine_batch_size`, `engine_apply_seconds`
//! (a batch: apply, reply, publish its events), `engine_lag_inputs` (inputs in `ENGINE` not yet
//! delivered to the writer when its last batch arrived), `engine_last_applied_seq`,
//! `engine_snapshot_seconds`, `engine_snapshot_age_seconds`, `engine_lease_held`,
//! `engine_snapshot_load_seconds`, `engine_replay_seconds` and `engine_replayed_inputs` (the
//! last recovery), `engine_ticks_refused_total{reason="simulated"}` (simulated ticks an engine
//! that does not allow them refused: a feed outside local mode should never send one).

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering::Relaxed};
use std::sync::{Arc, Weak};
use std::time::Duration;

use bus::EngineInput;
use bus::readiness::{Check, Readiness};
use metrics::{Counter, Gauge, Histogram};

/// The engine's state as its readiness probe sees it; cheap to clone, shared with whoever
/// serves `/readyz` (the `engine` binary, the local runner).
#[derive(Debug, Clone, Default)]
pub struct EngineStatus(Arc<StatusInner>);

#[derive(Debug, Default)]
struct StatusInner {
    lease_held: AtomicBool,
    serving: AtomicBool,
    /// Unix ms of the newest stored snapshot (0: none stored by this process yet).
    snapshot_at_ms: AtomicI64,
    hooked: AtomicBool,
}

impl EngineStatus {
    /// Ready when this engine holds the writer lease and serves inputs.
    pub fn readiness(&self) -> Readiness {
        let lease = if self.0.lease_held.load(Relaxed) {
            Check::ok("lease")
        } else {
            Check::failed("lease", "this engine does not hold the writer lease")
        };
        let serving = if self.0.serving.load(Relaxed) {
            Check::ok("serving")
        } else {
            Check::failed("serving", "recovering or waiting for NATS")
        };
        Readiness::of(vec![lease, serving])
    }

    pub(crate) fn set_lease_held(&self, held: bool) {
        self.0.lease_held.store(held, Relaxed);
        metrics::gauge!("engine_lease_held").set(if held { 1.0 } else { 0.0 });
        if !held {
            self.set_serving(false);
        }
    }

    pub(crate) fn set_serving(&self, serving: bool) {
        self.0.serving.store(serving, Relaxed);
    }

    pub(crate) fn snapshot_stored(&self, took: Duration) {
        self.0.snapshot_at_ms.store(now_ms(), Relaxed);
        metrics::histogram!("engine_snapshot_seconds").record(took.as_secs_f64());
    }

    /// Keeps `engine_snapshot_age_seconds` current at every scrape (once per status).
    pub(crate) fn export_snapshot_age(&self) {
        if self.0.hooked.swap(true, Relaxed) {
            return;
        }
        let weak: Weak<StatusInner> = Arc::downgrade(&self.0);
        let age = metrics::gauge!("engine_snapshot_age_seconds");
        bus::process::on_scrape(move || {
            if let Some(status) = weak.upgrade() {
                let at = status.snapshot_at_ms.load(Relaxed);
                if at > 0 {
                    age.set((now_ms() - at) as f64 / 1000.0);
                }
            }
        });
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The apply loop's handles.
pub struct EngineMetrics {
    tick: Counter,
    /// One per command kind seen; the kinds are few, a linear scan beats hashing.
    commands: Vec<(&'static str, Counter)>,
    batch_size: Histogram,
    apply_seconds: Histogram,
    lag: Gauge,
    last_applied: Gauge,
    refused_simulated: Counter,
    /// Whether this writer has logged a refused tick yet (one warning, then the counter).
    warned_refused: bool,
}

impl EngineMetrics {
    pub fn new() -> Self {
        bus::process::install_metrics();
        let commands = [
            "create_account",
            "open_position",
            "close_position",
            "modify_position",
        ]
        .into_iter()
        .map(|kind| (kind, Self::command_counter(kind)))
        .collect();
        Self {
            tick: metrics::counter!("engine_inputs_applied_total", "kind" => "price_tick"),
            commands,
            batch_size: metrics::histogram!("engine_batch_size"),
            apply_seconds: metrics::histogram!("engine_apply_seconds"),
            lag: metrics::gauge!("engine_lag_inputs"),
            last_applied: metrics::gauge!("engine_last_applied_seq"),
            refused_simulated: metrics::counter!(
                "engine_ticks_refused_total",
                "reason" => "simulated"
            ),
            warned_refused: false,
        }
    }

    fn command_counter(kind: &'static str) -> Counter {
        metrics::counter!("engine_inputs_applied_total", "kind" => kind)
    }

    /// Counts one applied input by kind.
    pub fn applied(&mut self, input: &EngineInput) {
        let kind = match input {
            EngineInput::PriceTick(_) => return self.tick.increment(1),
            EngineInput::Command(c) => c.command.kind(),
        };
        if let Some((_, counter)) = self.commands.iter().find(|(k, _)| *k == kind) {
            return counter.increment(1);
        }
        // A kind added after this list was written: registered once, then found above.
        let counter = Self::command_counter(kind);
        counter.increment(1);
        self.commands.push((kind, counter));
    }

    /// A simulated tick the engine refused (logged once per writer life, counted always).
    pub fn refused_tick(&mut self, seq: u64) {
        self.refused_simulated.increment(1);
        if !self.warned_refused {
            self.warned_refused = true;
            tracing::warn!(
                seq,
                "refused a SIMULATED price tick: this engine trades on real prices only \
                 (a price feed outside local mode is sending simulated quotes?)"
            );
        }
    }

    /// One batch: its size, how long it took, the writer's position and what is left.
    pub fn batch(&self, size: usize, took: Duration, last_applied: u64, pending: u64) {
        self.batch_size.record(size as f64);
        self.apply_seconds.record(took.as_secs_f64());
        self.last_applied.set(last_applied as f64);
        self.lag.set(pending as f64);
    }
}

impl Default for EngineMetrics {
    fn default() -> Self {
        Self::new()
    }
}

/// The last recovery: how long loading its snapshot and the replay took, and how many inputs
/// it applied (start-up time is mostly these two).
pub fn recovered(load: Duration, replay: Duration, replayed: u64) {
    metrics::gauge!("engine_snapshot_load_seconds").set(load.as_secs_f64());
    metrics::gauge!("engine_replay_seconds").set(replay.as_secs_f64());
    metrics::gauge!("engine_replayed_inputs").set(replayed as f64);
}
