//! Every connected client's mailbox, and the fan-out over them. The fan-out sums what it
//! delivered and counts it once (not one shared atomic add per client). Authenticated
//! connections are also indexed by user, so a private event visits only its user's
//! connections (not every client's mailbox lock, once per engine event).

use std::collections::HashMap;
use std::collections::hash_map::Entry;
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
    clients: RwLock<Clients>,
    next_id: AtomicU64,
    stats: HubStats,
    /// Most parts a quote fan-out is written in, in parallel (`WS_FANOUT_SHARDS`).
    shards: usize,
}

#[derive(Default)]
struct Clients {
    all: HashMap<u64, Arc<Mailbox>>,
    /// The authenticated connections of each user (a handful per user).
    by_user: HashMap<UserId, Vec<(u64, Arc<Mailbox>)>>,
    user_of: HashMap<u64, UserId>,
}

impl Clients {
    /// Takes connection `id` out of its user's list, if it is in one.
    fn detach(&mut self, id: u64) {
        let Some(user) = self.user_of.remove(&id) else {
            return;
        };
        if let Entry::Occupied(mut list) = self.by_user.entry(user) {
            list.get_mut().retain(|(i, _)| *i != id);
            if list.get().is_empty() {
                list.remove();
            }
        }
    }
}

impl Registry {
    pub fn new(stats: HubStats, shards: usize) -> Self {
        Self {
            clients: RwLock::default(),
            next_id: AtomicU64::new(0),
            stats,
            shards: shards.max(1),
        }
    }

    pub fn add(&self, mailbox: Arc<Mailbox>) -> u64 {
        let id = self.next_id.fetch_add(1, Relaxed);
        self.write().all.insert(id, mailbox);
        id
    }

    pub fn remove(&self, id: u64) {
        let mut clients = self.write();
        clients.detach(id);
        clients.all.remove(&id);
    }

    /// Sends connection `id` its user's private events from now on, while the token (expiring
    /// at the unix second given) lasts; `None` stops them. Mailbox and index change together.
    pub fn set_user(&self, id: u64, user: Option<(UserId, u64)>) {
        let mut clients = self.write();
        clients.detach(id);
        let Some(mailbox) = clients.all.get(&id).cloned() else {
            return;
        };
        match user {
            Some((user, expires_at)) => {
                mailbox.set_user(user, expires_at);
                clients.user_of.insert(id, user);
                clients.by_user.entry(user).or_default().push((id, mailbox));
            }
            None => mailbox.clear_user(),
        }
    }

    pub fn len(&self) -> usize {
        self.read().all.len()
    }

    /// Users with at least one authenticated connection.
    #[cfg(test)]
    pub fn users(&self) -> usize {
        self.read().by_user.len()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Clients> {
        self.clients.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Clients> {
        self.clients.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Writes the batch to every client. A write costs microseconds (on loopback it also runs
    /// the receiver's TCP path), so 10,000 of them take tens of milliseconds: the fan-out works
    /// on a copy of the list (new clients and leaving ones do not wait for the lock meanwhile),
    /// splits it into up to `shards` parts written in parallel by the runtime's workers (at
    /// least [`STEP`] clients each), and yields every [`STEP`] clients, so even a hub on one
    /// worker thread keeps accepting connections and answering ops. The next fan-out starts
    /// when every part is done, so each client gets its quotes in order.
    pub async fn fan_out_quotes(&self, batch: &Arc<QuoteBatch>) {
        let started = std::time::Instant::now();
        let clients: Arc<[Arc<Mailbox>]> = self.read().all.values().cloned().collect();
        let per_part = clients.len().div_ceil(self.shards).max(STEP);
        let mut parts = tokio::task::JoinSet::new();
        for start in (per_part..clients.len()).step_by(per_part) {
            let (clients, batch) = (clients.clone(), batch.clone());
            parts.spawn(async move {
                let end = (start + per_part).min(clients.len());
                write_quotes(&clients[start..end], &batch).await
            });
        }
        let mut delivered = write_quotes(&clients[..per_part.min(clients.len())], batch).await;
        while let Some(part) = parts.join_next().await {
            // A part that panicked (a bug) counts nothing; its mailboxes' locks recover.
            delivered.add(part.unwrap_or_default());
        }
        self.stats.count_delivered(delivered);
        self.stats.count_fanout(batch.len(), started.elapsed());
    }

    /// Routes a private message (an engine event or a fired alert) to its user's clients;
    /// framed once for all of them (not at all when none is connected).
    pub fn fan_out_event(&self, user: UserId, event: &Utf8Bytes) -> Delivered {
        let clients = self.read();
        let Some(mine) = clients.by_user.get(&user) else {
            return Delivered::default();
        };
        let frame = frame::text(event);
        let mut delivered = Delivered::default();
        for (_, mailbox) in mine {
            delivered.add(mailbox.push_event(user, &frame));
        }
        drop(clients);
        self.stats.count_delivered(delivered);
        delivered
    }

    /// Wakes every connection (at shutdown).
    pub fn wake_all(&self) {
        for mailbox in self.read().all.values() {
            mailbox.notify.notify_one();
        }
    }
}

/// One part of a fan-out: the batch to each of `clients`, yielding every [`STEP`].
async fn write_quotes(clients: &[Arc<Mailbox>], batch: &QuoteBatch) -> Delivered {
    let mut delivered = Delivered::default();
    for step in clients.chunks(STEP) {
        for mailbox in step {
            delivered.add(mailbox.push_quotes(batch));
        }
        tokio::task::yield_now().await;
    }
    delivered
}

#[cfg(test)]
mod tests {
    use std::io::{self, IoSlice};
    use std::time::Instant;

    use super::*;
    use crate::hub::HubSettings;
    use crate::hub::mailbox::Wire;

    /// A socket that takes everything.
    struct Open;

    impl Wire for Open {
        fn try_write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
            Ok(bufs.iter().map(|b| b.len()).sum())
        }
    }

    /// A socket that takes everything and counts the bytes.
    #[derive(Default)]
    struct Counting(std::sync::atomic::AtomicUsize);

    impl Wire for Counting {
        fn try_write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
            let n = bufs.iter().map(|b| b.len()).sum();
            self.0.fetch_add(n, Relaxed);
            Ok(n)
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_sharded_fan_out_writes_every_client_once() {
        let stats = HubStats::default();
        let registry = Registry::new(stats.clone(), 3);
        let limits = HubSettings::default().limits;
        // 2,500 clients: parts of 1,024, 1,024 and 452.
        let wires: Vec<Arc<Counting>> = (0..2_500).map(|_| Arc::default()).collect();
        for wire in &wires {
            registry.add(Arc::new(Mailbox::new(limits, wire.clone())));
        }
        let mut batch = QuoteBatch::default();
        batch.push(crate::types::Asset::Btc, frame::text("b"));
        batch.push(crate::types::Asset::Eth, frame::text("e"));
        let batch = Arc::new(batch);
        registry.fan_out_quotes(&batch).await;
        registry.fan_out_quotes(&batch).await;
        let per_client = 2 * 2 * frame::text("b").len();
        assert!(wires.iter().all(|w| w.0.load(Relaxed) == per_client));
        let report = stats.report();
        assert_eq!(report.sent, 2 * 2 * 2_500);
        // Two passes of two quotes each, timed.
        assert_eq!((report.fanouts, report.fanout_quotes), (2, 4));
        assert!(report.fanout_micros > 0, "{report:?}");
    }

    fn user(n: u128) -> UserId {
        UserId(uuid::Uuid::from_u128(n))
    }

    fn event_to(registry: &Registry, n: u128) -> u64 {
        let event = Utf8Bytes::from(format!(r#"{{"type":"event","n":{n}}}"#));
        registry.fan_out_event(user(n), &event).events
    }

    #[test]
    fn an_event_reaches_exactly_the_connections_its_user_authenticated() {
        let registry = Registry::new(HubStats::default(), 1);
        let limits = HubSettings::default().limits;
        let add = || registry.add(Arc::new(Mailbox::new(limits, Arc::new(Open))));
        let (a1, a2, b, anonymous) = (add(), add(), add(), add());
        let later = crate::auth::now_secs() + 3_600;
        registry.set_user(a1, Some((user(1), later)));
        registry.set_user(a2, Some((user(1), later)));
        registry.set_user(b, Some((user(2), later)));
        assert_eq!((event_to(&registry, 1), event_to(&registry, 2)), (2, 1));
        assert_eq!(event_to(&registry, 3), 0, "nobody is user 3");

        // A connection that signs in as someone else moves; one whose token expired leaves.
        registry.set_user(a2, Some((user(2), later)));
        assert_eq!((event_to(&registry, 1), event_to(&registry, 2)), (1, 2));
        registry.set_user(a1, None);
        assert_eq!((event_to(&registry, 1), registry.users()), (0, 1));

        // An expired token gets nothing even before its connection notices.
        registry.set_user(b, Some((user(2), crate::auth::now_secs())));
        assert_eq!(event_to(&registry, 2), 1, "only a2");

        for id in [a1, a2, b, anonymous] {
            registry.remove(id);
        }
        assert_eq!(
            (registry.len(), registry.users()),
            (0, 0),
            "nothing left behind"
        );
        let clients = registry.read();
        assert!(clients.user_of.is_empty() && clients.by_user.is_empty());
        // Setting the user of a connection that left does not bring it back.
        drop(clients);
        registry.set_user(b, Some((user(2), later)));
        assert_eq!((registry.len(), registry.users()), (0, 0));
    }

    /// What routing a private event costs with 10,000 authenticated clients, by the user
    /// index and by asking every mailbox (the routing before the index). A measurement, not a
    /// check of speed: `cargo test --release -p bus --features hub --lib event_routing_cost --
    /// --ignored --nocapture` (figures in `docs/benchmarks.md`).
    #[test]
    #[ignore = "a measurement; run by hand in release"]
    fn event_routing_cost() {
        let registry = Registry::new(HubStats::default(), 1);
        let limits = HubSettings::default().limits;
        let later = crate::auth::now_secs() + 3_600;
        let users: Vec<UserId> = (1..=10_000u128).map(user).collect();
        for user in &users {
            let id = registry.add(Arc::new(Mailbox::new(limits, Arc::new(Open))));
            registry.set_user(id, Some((*user, later)));
        }
        let event = Utf8Bytes::from_static(r#"{"type":"event","kind":"position_opened"}"#);
        let n = 20_000;
        let started = Instant::now();
        for i in 0..n {
            assert_eq!(
                registry
                    .fan_out_event(users[i % users.len()], &event)
                    .events,
                1
            );
        }
        let indexed = started.elapsed().as_nanos() as f64 / n as f64;
        let frame = frame::text(&event);
        let m = 200;
        let started = Instant::now();
        for i in 0..m {
            let user = users[i % users.len()];
            let mut delivered = Delivered::default();
            for mailbox in registry.read().all.values() {
                delivered.add(mailbox.push_event(user, &frame));
            }
            assert_eq!(delivered.events, 1);
        }
        let scan = started.elapsed().as_nanos() as f64 / m as f64;
        eprintln!(
            "10,000 authenticated clients: by the user index {indexed:.0} ns per event, \
             asking every mailbox {scan:.0} ns per event"
        );
    }
}
