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

/// FNV-1a, 64 bit: a fixed, portable hash, so fingerprints survive restarts and snapshots.
struct Fnv1a(u64);

impl Hasher for Fnv1a {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

pub fn fingerprint(command: &Command) -> u64 {
    let mut h = Fnv1a(0xcbf2_9ce4_8422_2325);
    command.hash(&mut h);
    h.finish()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Remembered {
    id: CommandId,
    fingerprint: u64,
    reply: Reply,
}

/// Serialised as the entries oldest first, so equal windows give equal bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "WindowData", from = "WindowData")]
pub struct Window {
    capacity: usize,
    order: VecDeque<CommandId>,
    entries: HashMap<CommandId, (u64, Reply)>,
}

#[derive(Serialize, Deserialize)]
struct WindowData {
    capacity: usize,
    entries: Vec<Remembered>,
}

impl From<Window> for WindowData {
    fn from(mut w: Window) -> Self {
        let entries = w
            .order
            .drain(..)
            .filter_map(|id| {
                let (fingerprint, reply) = w.entries.remove(&id)?;
                Some(Remembered {
                    id,
                    fingerprint,
                    reply,
                })
            })
            .collect();
        WindowData {
            capacity: w.capacity,
            entries,
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
            order: VecDeque::new(),
            entries: HashMap::new(),
        }
    }

    pub fn check(&self, id: &CommandId, fingerprint: u64) -> Seen<'_> {
        match self.entries.get(id) {
            None => Seen::New,
            Some((fp, reply)) if *fp == fingerprint => Seen::Same(reply),
            Some(_) => Seen::Different,
        }
    }

    pub fn reply(&self, id: &CommandId) -> Option<&Reply> {
        self.entries.get(id).map(|(_, r)| r)
    }

    pub fn remember(&mut self, id: CommandId, fingerprint: u64, reply: Reply) {
        if self.order.len() >= self.capacity
            && let Some(oldest) = self.order.pop_front()
        {
            self.entries.remove(&oldest);
        }
        self.order.push_back(id.clone());
        self.entries.insert(id, (fingerprint, reply));
    }
}
