//! Per-client outboxes: what each client is sent, written straight into its socket.
//!
//! The fan-out writes a pre-encoded frame ([`super::frame`]) into a client's socket itself,
//! with a non-blocking write, while nothing of that client's is waiting: a healthy client
//! costs one `write` per fan-out and no task wake-up. Only when its socket is full (the client
//! reads slower than the feed) does anything wait here, and its connection task is woken to
//! write it once the socket drains: a bounded queue of whole frames (private events, replies,
//! tungstenite's own control frames; the first one maybe partly written), then at most one
//! pending quote per asset (a newer quote replaces an unsent one: newest wins). A client that
//! lets `max_behind` quotes be replaced, or overflows a queue, is marked too slow and
//! disconnected by its connection task.
//!
//! Locks are std mutexes, never held across `.await`; a write under the lock never blocks
//! (the socket is non-blocking), and keeps the bytes of concurrent writers from interleaving.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use tokio::sync::Notify;

use super::quotes::QuoteBatch;
use crate::types::{Asset, UserId};

/// Where a client's bytes go: its socket (a fake in tests).
pub trait Wire: Send + Sync {
    /// Writes what fits now, never blocking; `WouldBlock` when nothing fits.
    fn try_write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize>;
}

impl Wire for tokio::net::TcpStream {
    fn try_write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        tokio::net::TcpStream::try_write_vectored(self, bufs)
    }
}

/// Limits of one mailbox.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Quotes replaced before the client took them, beyond which it is disconnected.
    pub max_behind: u32,
    /// Private events waiting, beyond which the client is disconnected.
    pub max_events: usize,
    /// Replies (answers to the client's own ops) waiting, beyond which it is disconnected.
    pub max_replies: usize,
}

/// What a waiting frame is, for the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Quotes,
    Event,
    Reply,
    /// Bytes tungstenite writes itself (handshake, pongs, close frames): no message.
    Control,
}

/// Whole frames waiting for the socket; the first may be partly written.
#[derive(Debug)]
struct Waiting {
    kind: Kind,
    /// Messages in `bytes` (a remainder of several quotes is one chunk).
    messages: u64,
    bytes: Bytes,
}

/// What reached clients' sockets, summed by the caller and counted once.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    /// Messages written (quotes, private events, replies).
    pub messages: u64,
    /// Of which private events.
    pub events: u64,
    /// Quotes replaced by newer ones before a slow client's socket took them (never sent).
    pub conflated: u64,
}

impl Delivered {
    pub fn add(&mut self, other: Delivered) {
        self.messages += other.messages;
        self.events += other.events;
        self.conflated += other.conflated;
    }

    fn of(kind: Kind, messages: u64) -> Self {
        let events = if kind == Kind::Event { messages } else { 0 };
        let messages = if kind == Kind::Control { 0 } else { messages };
        Self {
            messages,
            events,
            conflated: 0,
        }
    }
}

/// How a [`Mailbox::write_out`] ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Flush {
    /// Everything written; the fan-out writes directly again.
    Done(Delivered),
    /// The socket is full: wait until it is writable and flush again.
    Blocked(Delivered),
    /// A write failed: the client is gone.
    Broken,
}

#[derive(Debug, Default)]
struct State {
    subscribed: [bool; 3],
    explicit: bool,
    /// The authenticated user and when their token expires (unix seconds).
    user: Option<(UserId, u64)>,
    waiting: VecDeque<Waiting>,
    quotes: [Option<Bytes>; 3],
    behind: u32,
    /// Events and replies queued since the mailbox was last empty.
    events: usize,
    replies: usize,
    too_slow: bool,
    broken: bool,
}

impl State {
    fn is_idle(&self) -> bool {
        self.waiting.is_empty() && self.quotes.iter().all(Option::is_none)
    }

    /// The subscribed assets as a bit set (bit = [`Asset::index`]).
    fn mask(&self) -> usize {
        (0..3).filter(|i| self.subscribed[*i]).map(|i| 1 << i).sum()
    }

    fn mark_too_slow(&mut self) {
        self.too_slow = true;
        self.quotes = [None, None, None];
    }
}

pub struct Mailbox {
    state: Mutex<State>,
    wire: Arc<dyn Wire>,
    limits: Limits,
    /// Woken when something waits for the socket (or the client must go).
    pub notify: Notify,
}

/// At most this many frames per `writev`.
const MAX_SLICES: usize = 64;

impl Mailbox {
    pub fn new(limits: Limits, wire: Arc<dyn Wire>) -> Self {
        let state = State {
            subscribed: [true; 3],
            ..State::default()
        };
        Self {
            state: Mutex::new(state),
            wire,
            limits,
            notify: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding this lock leaves plain data behind; keep serving.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The client fell too far behind; its connection task disconnects it.
    pub fn is_too_slow(&self) -> bool {
        self.lock().too_slow
    }

    /// Sends the batch's quotes of the client's assets: written at once while nothing waits
    /// and the socket takes them; otherwise each asset's newest waits (newest wins).
    pub fn push_quotes(&self, batch: &QuoteBatch) -> Delivered {
        let mut s = self.lock();
        if s.too_slow || s.broken {
            return Delivered::default();
        }
        let Some(joined) = batch.joined(s.mask()) else {
            return Delivered::default();
        };
        if s.is_idle() {
            match self.wire.try_write_vectored(&[IoSlice::new(&joined.bytes)]) {
                Ok(n) if n == joined.bytes.len() => {
                    return Delivered::of(Kind::Quotes, joined.ends.len() as u64);
                }
                Ok(n) => {
                    let done = joined.ends.iter().filter(|end| **end <= n).count() as u64;
                    s.waiting.push_back(Waiting {
                        kind: Kind::Quotes,
                        messages: joined.ends.len() as u64 - done,
                        bytes: joined.bytes.slice(n..),
                    });
                    drop(s);
                    self.notify.notify_one();
                    return Delivered::of(Kind::Quotes, done);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => return self.break_off(s),
            }
        }
        let mut delivered = Delivered::default();
        for (asset, frame) in batch.quotes() {
            if s.subscribed[asset.index()] && s.quotes[asset.index()].replace(frame).is_some() {
                delivered.conflated += 1;
                s.behind += 1;
            }
        }
        if s.behind > self.limits.max_behind {
            s.mark_too_slow();
        }
        drop(s);
        self.notify.notify_one();
        delivered
    }

    /// Sends a private event if it belongs to this client's user and their token is still
    /// valid (the connection task also drops the user when the token expires; this check
    /// closes the gap until it runs).
    pub fn push_event(&self, user: UserId, frame: &Bytes) -> Delivered {
        let mut s = self.lock();
        match s.user {
            Some((u, expires_at)) if u == user && !s.too_slow => {
                if crate::auth::now_secs() >= expires_at {
                    return Delivered::default();
                }
            }
            _ => return Delivered::default(),
        }
        s.events += 1;
        let over = s.events > self.limits.max_events;
        self.send_within(s, over, Kind::Event, frame.clone())
    }

    /// Sends a reply to the client's own op.
    pub fn push_reply(&self, frame: Bytes) -> Delivered {
        let mut s = self.lock();
        s.replies += 1;
        let over = s.replies > self.limits.max_replies;
        self.send_within(s, over, Kind::Reply, frame)
    }

    /// Sends `bytes`, unless the client is `over` its limit for this kind while frames still
    /// wait for its socket: then it is too slow, and its task is woken to close it.
    fn send_within(
        &self,
        mut s: std::sync::MutexGuard<'_, State>,
        over: bool,
        kind: Kind,
        bytes: Bytes,
    ) -> Delivered {
        if over && !s.is_idle() {
            s.mark_too_slow();
            drop(s);
            self.notify.notify_one();
            return Delivered::default();
        }
        self.send(s, kind, bytes)
    }

    /// Bytes tungstenite writes itself (whole frames, or the handshake): always kept, in order.
    /// They count as replies while the socket is full, so a client that sends pings and reads
    /// nothing is marked too slow rather than growing its queue.
    pub fn push_control(&self, bytes: Bytes) -> io::Result<()> {
        let mut s = self.lock();
        if s.broken {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        if !s.is_idle() {
            s.replies += 1;
            if s.replies > self.limits.max_replies {
                s.mark_too_slow();
            }
        }
        self.send(s, Kind::Control, bytes);
        Ok(())
    }

    /// Writes `bytes` now if nothing waits before it, else (or for what does not fit) queues it.
    fn send(&self, mut s: std::sync::MutexGuard<'_, State>, kind: Kind, bytes: Bytes) -> Delivered {
        let mut written = 0;
        if s.is_idle() && !s.broken {
            match self.wire.try_write_vectored(&[IoSlice::new(&bytes)]) {
                Ok(n) if n == bytes.len() => {
                    (s.events, s.replies) = (0, 0);
                    return Delivered::of(kind, 1);
                }
                Ok(n) => written = n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => return self.break_off(s),
            }
        }
        s.waiting.push_back(Waiting {
            kind,
            messages: 1,
            bytes: bytes.slice(written..),
        });
        drop(s);
        self.notify.notify_one();
        Delivered::default()
    }

    fn break_off(&self, mut s: std::sync::MutexGuard<'_, State>) -> Delivered {
        s.broken = true;
        drop(s);
        self.notify.notify_one();
        Delivered::default()
    }

    /// Writes what waits, oldest first, then the pending quotes, as far as the socket takes
    /// them (one `writev` of up to [`MAX_SLICES`] frames at a time).
    pub fn write_out(&self) -> Flush {
        let mut s = self.lock();
        let mut delivered = Delivered::default();
        loop {
            if s.broken {
                return Flush::Broken;
            }
            if s.waiting.is_empty() {
                if s.quotes.iter().all(Option::is_none) {
                    (s.events, s.replies) = (0, 0);
                    return Flush::Done(delivered);
                }
                s.behind = 0;
                let pending: Vec<Bytes> = s.quotes.iter_mut().filter_map(Option::take).collect();
                s.waiting.extend(pending.into_iter().map(|bytes| Waiting {
                    kind: Kind::Quotes,
                    messages: 1,
                    bytes,
                }));
            }
            let slices: Vec<IoSlice<'_>> = s
                .waiting
                .iter()
                .take(MAX_SLICES)
                .map(|w| IoSlice::new(&w.bytes))
                .collect();
            let written = match self.wire.try_write_vectored(&slices) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return Flush::Blocked(delivered);
                }
                Err(_) => {
                    s.broken = true;
                    return Flush::Broken;
                }
            };
            let full = written == slices.iter().map(|slice| slice.len()).sum::<usize>();
            drop(slices);
            delivered.add(consume(&mut s.waiting, written));
            if !full {
                return Flush::Blocked(delivered);
            }
        }
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

    /// From now on the user's events are sent, until `expires_at` (unix seconds). Called by
    /// [`super::registry::Registry::set_user`], which also indexes the connection by user.
    pub fn set_user(&self, user: UserId, expires_at: u64) {
        self.lock().user = Some((user, expires_at));
    }

    /// Stops sending private events (the token expired).
    pub fn clear_user(&self) {
        self.lock().user = None;
    }
}

/// Drops the `written` bytes from the front of `waiting`; counts the frames that completed.
fn consume(waiting: &mut VecDeque<Waiting>, mut written: usize) -> Delivered {
    let mut delivered = Delivered::default();
    while let Some(front) = waiting.front_mut() {
        if written < front.bytes.len() {
            let _ = front.bytes.split_to(written);
            break;
        }
        written -= front.bytes.len();
        delivered.add(Delivered::of(front.kind, front.messages));
        waiting.pop_front();
    }
    delivered
}

#[cfg(test)]
#[path = "mailbox_tests.rs"]
mod tests;
