//! Every connected client's mailbox, and the fan-out over them. The fan-out sums what it
//! delivered and counts it once (not one shared atomic add per client).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, PoisonError, RwLock};

use tokio_tungstenite::tungstenite::Utf8Bytes;

use super::HubStats;
use super::frame;
use super::mailbox::{Delivered, Mailbox};
use super::quotes::QuoteBatch;
use crate::types::UserId;

/// Clients written to between two yields of a fan-out.
const STEP: usize = 1024;

pub struct Registry {
    clients: RwLock<HashMap<u64, Arc<Mailbox>>>,
    next_id: AtomicU64,
    stats: HubStats,
}

impl Registry {
    pub fn new(stats: HubStats) -> Self {
        Self {
            clients: RwLock::default(),
            next_id: AtomicU64::new(0),
            stats,
        }
    }

    pub fn add(&self, mailbox: Arc<Mailbox>) -> u64 {
        let id = self.next_id.fetch_add(1, Relaxed);
        self.write().insert(id, mailbox);
        id
    }

    pub fn remove(&self, id: u64) {
        self.write().remove(&id);
    }

    pub fn len(&self) -> usize {
        self.read().len()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<u64, Arc<Mailbox>>> {
        self.clients.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<u64, Arc<Mailbox>>> {
        self.clients.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Writes the batch to every client. A write costs microseconds, so 10,000 of them take
    /// tens of milliseconds: the fan-out works on a copy of the list (new clients and leaving
    /// ones do not wait for the lock meanwhile) and yields every [`STEP`] clients, so even a
    /// hub on one worker thread keeps accepting connections and answering ops.
    pub async fn fan_out_quotes(&self, batch: &QuoteBatch) {
        let clients: Vec<Arc<Mailbox>> = self.read().values().cloned().collect();
        let mut delivered = Delivered::default();
        for step in clients.chunks(STEP) {
            for mailbox in step {
                delivered.add(mailbox.push_quotes(batch));
            }
            tokio::task::yield_now().await;
        }
        self.stats.count_delivered(delivered);
    }

    /// Routes a private message (an engine event or a fired alert) to its user's clients;
    /// framed once for all of them.
    pub fn fan_out_event(&self, user: UserId, event: &Utf8Bytes) {
        let frame = frame::text(event);
        let mut delivered = Delivered::default();
        for mailbox in self.read().values() {
            delivered.add(mailbox.push_event(user, &frame));
        }
        self.stats.count_delivered(delivered);
    }

    /// Wakes every connection (at shutdown).
    pub fn wake_all(&self) {
        for mailbox in self.read().values() {
            mailbox.notify.notify_one();
        }
    }
}
