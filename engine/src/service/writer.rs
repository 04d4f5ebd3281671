//! Takes snapshots off the hot path: the loop only clones the state; a background task
//! serialises it (on the blocking pool), stores it, prunes old snapshots and purges the
//! `ENGINE` inputs no kept snapshot needs. One snapshot in flight at most (a bounded channel
//! of 1): when the store is slow, the next one is simply taken later.

use std::time::Duration;

use async_nats::jetstream;
use bus::Names;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::observe::EngineStatus;
use super::snapshot::{SnapshotStore, encode};
use crate::Engine;

pub struct SnapshotPolicy {
    pub every: u64,
    pub interval: Duration,
    pub keep: u32,
    pub purge_inputs: bool,
}

pub struct SnapshotWriter {
    tx: Option<mpsc::Sender<(u64, Engine)>>,
    task: JoinHandle<()>,
    taken_seq: u64,
    taken_at: Instant,
    every: u64,
    interval: Duration,
}

impl SnapshotWriter {
    /// `covered`: the sequence the newest stored snapshot (or the fresh start) covers.
    pub fn start(
        store: SnapshotStore,
        js: jetstream::Context,
        names: Names,
        policy: SnapshotPolicy,
        covered: u64,
        status: EngineStatus,
    ) -> Self {
        let (tx, mut rx) = mpsc::channel::<(u64, Engine)>(1);
        let stream = names.engine_stream();
        let keep = policy.keep;
        let purge = policy.purge_inputs;
        let task = tokio::spawn(async move {
            while let Some((seq, engine)) = rx.recv().await {
                let blob = match tokio::task::spawn_blocking(move || encode(&engine, seq)).await {
                    Ok(blob) => blob,
                    Err(e) => {
                        tracing::error!(seq, "could not serialise a snapshot: {e}");
                        continue;
                    }
                };
                store_one(&store, &js, &stream, seq, &blob, keep, purge, &status).await;
            }
        });
        Self {
            tx: Some(tx),
            task,
            taken_seq: covered,
            taken_at: Instant::now(),
            every: policy.every,
            interval: policy.interval,
        }
    }

    /// True when `every` inputs passed, or (`timer`) the interval did with anything new, and
    /// the writer can take another snapshot.
    pub fn is_due(&self, seq: u64, timer: bool) -> bool {
        let new = seq.saturating_sub(self.taken_seq);
        let due =
            new >= self.every || (timer && new > 0 && self.taken_at.elapsed() >= self.interval);
        due && self.tx.as_ref().is_some_and(|tx| tx.capacity() > 0)
    }

    /// Hands the state at `seq` to the writer. `seq` must be acked already: a snapshot never
    /// runs ahead of the acks (recovery trusts the ack floor to be at or past it).
    pub fn take(&mut self, engine: &Engine, seq: u64) {
        let Some(tx) = &self.tx else { return };
        if tx.try_send((seq, engine.clone())).is_ok() {
            self.taken_seq = seq;
            self.taken_at = Instant::now();
        }
    }

    /// Stores a last snapshot (when anything changed) and waits for the writer to finish.
    pub async fn finish(mut self, engine: &Engine, seq: u64) {
        if let Some(tx) = self.tx.take() {
            if seq > self.taken_seq {
                let _ = tx.send((seq, engine.clone())).await;
            }
            drop(tx);
        }
        if let Err(e) = (&mut self.task).await {
            tracing::error!("snapshot writer failed: {e}");
        }
    }
}

// The writer task's whole context, passed once per snapshot.
#[allow(clippy::too_many_arguments)]
async fn store_one(
    store: &SnapshotStore,
    js: &jetstream::Context,
    stream: &str,
    seq: u64,
    blob: &[u8],
    keep: u32,
    purge: bool,
    status: &EngineStatus,
) {
    let started = Instant::now();
    if let Err(e) = store.save(stream, seq, blob).await {
        tracing::error!(seq, "could not store a snapshot: {e}");
        return;
    }
    status.snapshot_stored(started.elapsed());
    tracing::info!(
        seq,
        bytes = blob.len(),
        ms = started.elapsed().as_millis() as u64,
        "snapshot stored"
    );
    let oldest = match store.prune(stream, keep).await {
        Ok(oldest) => oldest,
        Err(e) => {
            tracing::warn!("could not prune snapshots: {e}");
            return;
        }
    };
    if let (true, Some(oldest)) = (purge, oldest) {
        // Inputs up to the oldest kept snapshot are covered by every snapshot we keep.
        let purged = match js.get_stream(stream).await {
            Ok(s) => s.purge().sequence(oldest + 1).await.map(|r| r.purged),
            Err(e) => {
                tracing::warn!("could not purge old inputs: {e}");
                return;
            }
        };
        match purged {
            Ok(n) if n > 0 => tracing::info!(upto = oldest, purged = n, "purged old inputs"),
            Ok(_) => {}
            Err(e) => tracing::warn!("could not purge old inputs: {e}"),
        }
    }
}
