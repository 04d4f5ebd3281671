//! Per-client mailboxes and the registry that fans messages out to them.
//!
//! A mailbox holds at most one pending quote per asset (a newer quote replaces an unsent one:
//! newest wins), a bounded queue of private events and a bounded queue of replies. Filling a
//! mailbox never blocks the fan-out: a client that lets `max_behind` quotes be overwritten
//! before it takes them, or overflows a queue, is marked too slow and disconnected by its
//! connection task. Locks are std mutexes, held for a few instructions, never across `.await`.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::types::{Asset, UserId};

/// Limits of one mailbox.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Quotes overwritten before the client took them, beyond which it is disconnected.
    pub max_behind: u32,
    /// Pending private events, beyond which the client is disconnected.
    pub max_events: usize,
    /// Pending replies (answers to the client's own ops), beyond which it is disconnected.
    pub max_replies: usize,
}

#[derive(Debug, Default)]
struct State {
    subscribed: [bool; 3],
    explicit: bool,
    /// The authenticated user and when their token expires (unix seconds).
    user: Option<(UserId, u64)>,
    quotes: [Option<Utf8Bytes>; 3],
    behind: u32,
    events: VecDeque<Utf8Bytes>,
    replies: VecDeque<Utf8Bytes>,
    too_slow: bool,
}

pub struct Mailbox {
    state: Mutex<State>,
    limits: Limits,
    /// Woken when there is something to send (or the client must go).
    pub notify: Notify,
}

/// What the connection task should send next.
#[derive(Debug, Default)]
pub struct Batch {
    pub messages: Vec<Utf8Bytes>,
    pub too_slow: bool,
    /// How many of `messages` are private events.
    pub events: u64,
    /// Quotes replaced by newer ones since the last take (never sent).
    pub conflated: u64,
}

impl Mailbox {
    pub fn new(limits: Limits) -> Self {
        let state = State {
            subscribed: [true; 3],
            ..State::default()
        };
        Self {
            state: Mutex::new(state),
            limits,
            notify: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding this lock leaves plain data behind; keep serving.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues a quote if the client wants the asset; newest wins.
    pub fn push_quote(&self, asset: Asset, quote: &Utf8Bytes) {
        let mut s = self.lock();
        if !s.subscribed[asset.index()] || s.too_slow {
            return;
        }
        if s.quotes[asset.index()].replace(quote.clone()).is_some() {
            s.behind += 1;
            if s.behind > self.limits.max_behind {
                s.too_slow = true;
            }
        }
        drop(s);
        self.notify.notify_one();
    }

    /// Queues a private event if it belongs to this client's user and their token is still
    /// valid (the connection task also drops the user when the token expires; this check
    /// closes the gap until it runs).
    pub fn push_event(&self, user: UserId, event: &Utf8Bytes) {
        let mut s = self.lock();
        match s.user {
            Some((u, expires_at)) if u == user && !s.too_slow => {
                if crate::auth::now_secs() >= expires_at {
                    return;
                }
            }
            _ => return,
        }
        if s.events.len() >= self.limits.max_events {
            s.too_slow = true;
        } else {
            s.events.push_back(event.clone());
        }
        drop(s);
        self.notify.notify_one();
    }

    pub fn push_reply(&self, reply: String) {
        let mut s = self.lock();
        if s.replies.len() >= self.limits.max_replies {
            s.too_slow = true;
        } else {
            s.replies.push_back(reply.into());
        }
        drop(s);
        self.notify.notify_one();
    }

    /// Changes the subscription; returns the assets newly added and the resulting set.
    pub fn subscribe(&self, assets: &[Asset], on: bool) -> (Vec<Asset>, Vec<Asset>) {
        let mut s = self.lock();
        if on && !s.explicit {
            s.subscribed = [false; 3];
        }
        s.explicit = true;
        let mut added = Vec::new();
        for &a in assets {
            if on && !s.subscribed[a.index()] {
                added.push(a);
            }
            s.subscribed[a.index()] = on;
            if !on {
                s.quotes[a.index()] = None;
            }
        }
        let set = Asset::ALL
            .into_iter()
            .filter(|a| s.subscribed[a.index()])
            .collect();
        (added, set)
    }

    /// From now on the user's events are queued, until `expires_at` (unix seconds).
    pub fn set_user(&self, user: UserId, expires_at: u64) {
        self.lock().user = Some((user, expires_at));
    }

    /// Stops queueing private events (the token expired).
    pub fn clear_user(&self) {
        self.lock().user = None;
    }

    /// Takes everything pending: replies first, then events, then quotes.
    pub fn take(&self) -> Batch {
        let mut s = self.lock();
        let mut messages: Vec<Utf8Bytes> = s.replies.drain(..).collect();
        let events = s.events.len() as u64;
        messages.extend(s.events.drain(..));
        let conflated = u64::from(s.behind);
        messages.extend(s.quotes.iter_mut().filter_map(Option::take));
        s.behind = 0;
        Batch {
            messages,
            too_slow: s.too_slow,
            events,
            conflated,
        }
    }
}

/// Every connected client's mailbox, by connection id.
#[derive(Default)]
pub struct Registry {
    clients: RwLock<HashMap<u64, Arc<Mailbox>>>,
    next_id: AtomicU64,
}

impl Registry {
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

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<u64, Arc<Mailbox>>> {
        self.clients.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<u64, Arc<Mailbox>>> {
        self.clients.write().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn fan_out_quote(&self, asset: Asset, quote: &Utf8Bytes) {
        for mailbox in self.read().values() {
            mailbox.push_quote(asset, quote);
        }
    }

    pub fn fan_out_event(&self, user: UserId, event: &Utf8Bytes) {
        for mailbox in self.read().values() {
            mailbox.push_event(user, event);
        }
    }

    /// Wakes every connection (at shutdown).
    pub fn wake_all(&self) {
        for mailbox in self.read().values() {
            mailbox.notify.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_behind: 3,
        max_events: 2,
        max_replies: 2,
    };

    #[test]
    fn newest_quote_wins_and_a_client_too_far_behind_is_marked() {
        let m = Mailbox::new(LIMITS);
        for i in 0..3 {
            m.push_quote(Asset::Btc, &format!("btc{i}").into());
        }
        m.push_quote(Asset::Eth, &"eth0".into());
        let batch = m.take();
        assert_eq!(batch.messages, vec!["btc2", "eth0"]);
        assert!(!batch.too_slow);
        for i in 0..5 {
            m.push_quote(Asset::Sol, &format!("sol{i}").into());
        }
        assert!(m.take().too_slow);
    }

    #[test]
    fn subscriptions_narrow_then_grow_and_events_need_the_user() {
        let m = Mailbox::new(LIMITS);
        let (added, set) = m.subscribe(&[Asset::Eth], true);
        assert_eq!((added, set), (vec![Asset::Eth], vec![Asset::Eth]));
        m.push_quote(Asset::Btc, &"btc".into());
        let (added, set) = m.subscribe(&[Asset::Sol, Asset::Eth], true);
        assert_eq!(
            (added, set),
            (vec![Asset::Sol], vec![Asset::Eth, Asset::Sol])
        );
        let (_, set) = m.subscribe(&[Asset::Eth], false);
        assert_eq!(set, vec![Asset::Sol]);
        let user = UserId(uuid::Uuid::new_v4());
        m.push_event(user, &"not yet".into());
        m.set_user(user, crate::auth::now_secs() + 600);
        m.push_event(user, &"event".into());
        m.push_event(UserId(uuid::Uuid::new_v4()), &"someone else's".into());
        m.push_quote(Asset::Sol, &"sol".into());
        assert_eq!(m.take().messages, vec!["event", "sol"]);
        m.set_user(user, crate::auth::now_secs() - 1);
        m.push_event(user, &"after expiry".into());
        m.set_user(user, crate::auth::now_secs() + 600);
        m.clear_user();
        m.push_event(user, &"after clear".into());
        assert!(m.take().messages.is_empty());
    }
}
