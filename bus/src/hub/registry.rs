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

    pub fn fan_out_quotes(&self, batch: &QuoteBatch) {
        let mut delivered = Delivered::default();
        for mailbox in self.read().values() {
            delivered.add(mailbox.push_quotes(batch));
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
