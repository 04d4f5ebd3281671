//! The global window of recently applied command ids and their replies of snapshot formats 1
//! to 3. Since format 4 ids are remembered per user and by time ([`crate::remembered`]); an
//! engine restored from an older snapshot still answers from this window (never added to)
//! for one idempotency ttl, then drops it.
//!
//! It is part of the engine state (and of snapshots), so replay after a restart answers a
//! retried command exactly as the first time. Each id is stored with its command's
//! [`Fingerprint`] (SHA-256 of the canonical command, from `bus`), so reusing an id for a
//! different command is detected rather than answered with the wrong reply, on the log path
//! and on the duplicate path's reply lookup alike.
//!
//! Snapshots of format 1 stored a `u64` built from `std::hash::Hash`, which is not stable
//! across compiler or crate versions. Those entries are still read, but their fingerprint
//! cannot be compared: an id remembered with one is answered `command_id_reused` (a conflict,
//! never another command's reply, never applied twice) until it ages out of the window.

use std::collections::VecDeque;
use std::hash::{BuildHasher, RandomState};

use bus::{CommandId, Fingerprint, Reply};
use hashbrown::HashTable;
use serde::{Deserialize, Serialize};

/// The fingerprint remembered with a command id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
enum Stored {
    /// 64 hex digits (snapshot format 2 on).
    Sha256(Fingerprint),
    /// A format-1 snapshot's unstable hash: matches nothing.
    Legacy(u64),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Remembered {
    id: CommandId,
    fingerprint: Stored,
    reply: Reply,
}

/// A ring of the most recent commands (oldest first) and a table from id to position in it.
/// The table holds only positions (the ids live in the ring), keyed by the id's SipHash
/// (randomly keyed: ids are client-influenced, so a predictable hash would invite flooding),
/// computed once per lookup or insert; the ring keeps each entry's hash, so evicting the
/// oldest finds its slot without hashing or cloning the id. Positions are absolute
/// (`evicted + index in the ring`), so evicting the oldest never renumbers.
/// Serialised as the ring alone, so equal windows give equal bytes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(into = "WindowData", from = "WindowData")]
pub struct Window {
    capacity: usize,
    ring: VecDeque<Remembered>,
    /// The hash of each ring entry's id, in ring order.
    hashes: VecDeque<u64>,
    evicted: u64,
    positions: HashTable<u64>,
    hasher: RandomState,
}

impl PartialEq for Window {
    fn eq(&self, other: &Self) -> bool {
        self.capacity == other.capacity && self.ring == other.ring
    }
}

impl Eq for Window {}

#[derive(Serialize, Deserialize)]
struct WindowData {
    capacity: usize,
    entries: Vec<Remembered>,
}

impl From<Window> for WindowData {
    fn from(w: Window) -> Self {
        WindowData {
            capacity: w.capacity,
            entries: w.ring.into(),
        }
    }
}

impl From<WindowData> for Window {
    fn from(d: WindowData) -> Self {
        let mut w = Window::new(d.capacity);
        for r in d.entries {
            w.push(r);
        }
        w
    }
}

/// What the window knows of a command id.
pub enum Seen<'a> {
    New,
    Same(&'a Reply),
    Different,
}

impl Window {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            ring: VecDeque::new(),
            hashes: VecDeque::new(),
            evicted: 0,
            positions: HashTable::new(),
            hasher: RandomState::new(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.ring.is_empty()
    }

    /// The ring index of absolute position `at` (every mapped position is at or after
    /// `evicted`: evicting removes the mapping).
    fn index(evicted: u64, at: u64) -> usize {
        usize::try_from(at - evicted).unwrap_or(usize::MAX)
    }

    fn get(&self, id: &CommandId) -> Option<&Remembered> {
        let hash = self.hasher.hash_one(id);
        let (ring, evicted) = (&self.ring, self.evicted);
        let at = self.positions.find(hash, |&at| {
            ring.get(Self::index(evicted, at))
                .is_some_and(|r| r.id == *id)
        })?;
        ring.get(Self::index(evicted, *at))
    }

    pub fn check(&self, id: &CommandId, fingerprint: &Fingerprint) -> Seen<'_> {
        match self.get(id) {
            None => Seen::New,
            Some(r) if r.fingerprint == Stored::Sha256(*fingerprint) => Seen::Same(&r.reply),
            Some(_) => Seen::Different,
        }
    }

    /// Remembers a command that was not in the window (the caller checked). Only tests add
    /// to an old window; engines read it from older snapshots.
    #[cfg(test)]
    pub fn remember(&mut self, id: CommandId, fingerprint: Fingerprint, reply: Reply) {
        self.push(Remembered {
            id,
            fingerprint: Stored::Sha256(fingerprint),
            reply,
        });
    }

    fn push(&mut self, entry: Remembered) {
        if self.ring.len() >= self.capacity
            && self.ring.pop_front().is_some()
            && let Some(hash) = self.hashes.pop_front()
        {
            let oldest = self.evicted;
            if let Ok(slot) = self.positions.find_entry(hash, |&at| at == oldest) {
                slot.remove();
            }
            self.evicted += 1;
        }
        let at = self.evicted + self.ring.len() as u64;
        let hash = self.hasher.hash_one(&entry.id);
        let (ring, hashes, evicted) = (&self.ring, &self.hashes, self.evicted);
        let slot = self.positions.entry(
            hash,
            |&p| {
                ring.get(Self::index(evicted, p))
                    .is_some_and(|r| r.id == entry.id)
            },
            |&p| hashes.get(Self::index(evicted, p)).copied().unwrap_or(0),
        );
        // An id already in the window (only a snapshot could hold one twice) maps to its
        // newest entry, as lookups always answered.
        match slot {
            hashbrown::hash_table::Entry::Occupied(mut o) => *o.get_mut() = at,
            hashbrown::hash_table::Entry::Vacant(v) => {
                v.insert(at);
            }
        }
        self.ring.push_back(entry);
        self.hashes.push_back(hash);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bus::{Command, RejectCode, Rejection, UserId};

    fn id(s: &str) -> CommandId {
        CommandId::new(s).expect("id")
    }

    /// A distinct reply per `n` (the message carries it).
    fn reply(n: u64) -> Reply {
        Reply::Rejected(Rejection::new(RejectCode::AccountNotFound, n.to_string()))
    }

    /// A distinct fingerprint per `n`.
    fn fp(n: u8) -> Fingerprint {
        let user_id = UserId(uuid::Uuid::from_u128(u128::from(n)));
        Fingerprint::of(&Command::CreateAccount { user_id })
    }

    #[test]
    fn the_oldest_ages_out_and_the_rest_answer_as_first() {
        let mut w = Window::new(2);
        for (n, name) in ["a", "b", "c"].into_iter().enumerate() {
            assert!(matches!(w.check(&id(name), &fp(n as u8)), Seen::New));
            w.remember(id(name), fp(n as u8), reply(n as u64));
        }
        assert!(matches!(w.check(&id("a"), &fp(0)), Seen::New), "evicted");
        assert!(matches!(w.check(&id("b"), &fp(1)), Seen::Same(r) if *r == reply(1)));
        assert!(matches!(w.check(&id("c"), &fp(2)), Seen::Same(r) if *r == reply(2)));
        assert!(matches!(w.check(&id("c"), &fp(9)), Seen::Different));
        // Many more than the capacity: the table holds only what the ring holds.
        for n in 10..1_000u64 {
            w.remember(id(&format!("x{n}")), fp(3), reply(n));
        }
        assert_eq!(w.positions.len(), 2);
        assert!(matches!(w.check(&id("x999"), &fp(3)), Seen::Same(r) if *r == reply(999)));
        assert!(matches!(w.check(&id("x997"), &fp(3)), Seen::New));
    }

    #[test]
    fn a_window_read_back_answers_the_same() {
        let mut w = Window::new(3);
        for n in 0..5u64 {
            w.remember(id(&format!("k{n}")), fp(n as u8), reply(n));
        }
        let json = serde_json::to_string(&w).expect("serialises");
        let back: Window = serde_json::from_str(&json).expect("reads back");
        assert_eq!(back, w);
        for n in 0..5u64 {
            let (a, b) = (
                w.check(&id(&format!("k{n}")), &fp(n as u8)),
                back.check(&id(&format!("k{n}")), &fp(n as u8)),
            );
            assert_eq!(matches!(a, Seen::New), n < 2);
            assert_eq!(matches!(b, Seen::New), n < 2);
        }
    }
}
