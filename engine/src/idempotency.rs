//! The bounded window of recently applied command ids and their replies.
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

use std::collections::{HashMap, VecDeque};

use bus::{CommandId, Fingerprint, Reply};
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

/// A ring of the most recent commands (oldest first) and a map from id to position in it.
/// The map holds only small values, so inserting and evicting stays cheap; positions are
/// absolute (`evicted + index in the ring`), so evicting the oldest never renumbers.
/// Serialised as the ring alone, so equal windows give equal bytes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(into = "WindowData", from = "WindowData")]
pub struct Window {
    capacity: usize,
    ring: VecDeque<Remembered>,
    evicted: u64,
    positions: HashMap<CommandId, u64>,
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
            evicted: 0,
            positions: HashMap::new(),
        }
    }

    fn get(&self, id: &CommandId) -> Option<&Remembered> {
        let at = self.positions.get(id)?;
        // Every mapped position is at or after `evicted`: evicting removes the mapping.
        self.ring.get(usize::try_from(at - self.evicted).ok()?)
    }

    pub fn check(&self, id: &CommandId, fingerprint: &Fingerprint) -> Seen<'_> {
        match self.get(id) {
            None => Seen::New,
            Some(r) if r.fingerprint == Stored::Sha256(*fingerprint) => Seen::Same(&r.reply),
            Some(_) => Seen::Different,
        }
    }

    /// Remembers a command that was not in the window (the caller checked).
    pub fn remember(&mut self, id: CommandId, fingerprint: Fingerprint, reply: Reply) {
        self.push(Remembered {
            id,
            fingerprint: Stored::Sha256(fingerprint),
            reply,
        });
    }

    fn push(&mut self, entry: Remembered) {
        if self.ring.len() >= self.capacity
            && let Some(oldest) = self.ring.pop_front()
        {
            self.positions.remove(&oldest.id);
            self.evicted += 1;
        }
        let at = self.evicted + self.ring.len() as u64;
        self.positions.insert(entry.id.clone(), at);
        self.ring.push_back(entry);
    }
}
