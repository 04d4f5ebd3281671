//! The bounded window of recently applied command ids and their replies.
//!
//! It is part of the engine state (and of snapshots), so replay after a restart answers a
//! retried command exactly as the first time. Each id is stored with a fingerprint of its
//! command, so reusing an id for a different command is detected rather than answered with
//! the wrong reply.

use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};

use bus::{Command, CommandId, Reply};
use serde::{Deserialize, Serialize};

/// A fixed, portable hash (FNV-1a's constants, fed a word at a time), so fingerprints are the
/// same in every process and survive restarts and snapshots. Not for hash tables: it only
/// tells whether a retried command id carries the same command.
struct Fingerprint(u64);

impl Fingerprint {
    fn mix(&mut self, word: u64) {
        self.0 = (self.0 ^ word)
            .wrapping_mul(0x0100_0000_01b3)
            .rotate_left(29);
    }
}

impl Hasher for Fingerprint {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.mix(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.mix(u64::from_le_bytes(word) ^ ((rest.len() as u64) << 59));
        }
    }
    fn write_u8(&mut self, n: u8) {
        self.mix(u64::from(n));
    }
    fn write_u32(&mut self, n: u32) {
        self.mix(u64::from(n));
    }
    fn write_u64(&mut self, n: u64) {
        self.mix(n);
    }
    fn write_usize(&mut self, n: usize) {
        self.mix(n as u64);
    }
}

pub fn fingerprint(command: &Command) -> u64 {
    let mut h = Fingerprint(0xcbf2_9ce4_8422_2325);
    command.hash(&mut h);
    h.finish()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Remembered {
    id: CommandId,
    fingerprint: u64,
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
            w.remember(r.id, r.fingerprint, r.reply);
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

    pub fn check(&self, id: &CommandId, fingerprint: u64) -> Seen<'_> {
        match self.get(id) {
            None => Seen::New,
            Some(r) if r.fingerprint == fingerprint => Seen::Same(&r.reply),
            Some(_) => Seen::Different,
        }
    }

    pub fn reply(&self, id: &CommandId) -> Option<&Reply> {
        self.get(id).map(|r| &r.reply)
    }

    /// Remembers a command that was not in the window (the caller checked).
    pub fn remember(&mut self, id: CommandId, fingerprint: u64, reply: Reply) {
        if self.ring.len() >= self.capacity
            && let Some(oldest) = self.ring.pop_front()
        {
            self.positions.remove(&oldest.id);
            self.evicted += 1;
        }
        let at = self.evicted + self.ring.len() as u64;
        self.positions.insert(id.clone(), at);
        self.ring.push_back(Remembered {
            id,
            fingerprint,
            reply,
        });
    }
}
