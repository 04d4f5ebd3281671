//! The engine's memory of applied command ids, per user and by time (snapshot format 4 on).
//!
//! Each applied command is remembered with its user, the log time it was applied at, its
//! [`Fingerprint`] and its reply, so a retry gets the first reply and an id reused for another
//! command is detected. An id is kept at least `ttl` of log time, and each user keeps at most
//! their newest `per_user` ids (past it, that user's oldest is forgotten): other users'
//! traffic never evicts anyone's ids.
//!
//! Costs: remembering is a hash insert, a push on the user's queue and a push on the global
//! time queue; expiry pops from the front of the time queue (`(at, user)` in log order), each
//! pop removing that user's oldest id if it is due, so dropping expired ids never scans the
//! users, and an input with nothing due pays one comparison. Ticks never touch it.
//!
//! Time is the log's (`now` of `Engine::apply`), made monotone (an id is stamped with the
//! newest time seen), so every queue is in time order and replay is deterministic. The time
//! queue keeps an entry of an id the per-user bound already forgot until the entry is due
//! (24 bytes each); such an entry can only forget an id that is due itself.
//!
//! Serialised as the list of remembered ids in the order they were applied; the queues are
//! rebuilt from it, so a snapshot and its replay equal the straight run.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, RandomState};

use bus::{CommandId, Fingerprint, Reply, TimestampMs, UserId};
use hashbrown::HashTable;
use serde::{Deserialize, Serialize};

use crate::idempotency::Seen;

/// One remembered command (also its serialised form).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Entry {
    id: CommandId,
    user: UserId,
    at: TimestampMs,
    fingerprint: Fingerprint,
    reply: Reply,
}

/// An entry in the table with what finds it again without hashing or cloning its id. The
/// entry is boxed: a reply is a few hundred bytes inline, and the table keeps up to half its
/// buckets empty, so unboxed it cost twice the memory (1.2 KiB per id, measured).
#[derive(Debug, Clone)]
struct Slot {
    serial: u64,
    hash: u64,
    entry: Box<Entry>,
}

/// Where a user's remembered id sits in the table.
#[derive(Debug, Clone, Copy)]
struct Key {
    serial: u64,
    hash: u64,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(from = "Vec<Entry>")]
pub struct Remembered {
    /// Keyed by the id's SipHash (randomly keyed: ids are client-influenced).
    table: HashTable<Slot>,
    /// Each user's remembered ids, oldest first.
    users: HashMap<UserId, VecDeque<Key>>,
    /// `(at, user)` per remembered id in the order they were applied.
    due: VecDeque<(TimestampMs, UserId)>,
    /// Numbers the entries in the order they were applied (and so orders serialisation).
    serial: u64,
    hasher: RandomState,
}

impl PartialEq for Remembered {
    fn eq(&self, other: &Self) -> bool {
        self.entries() == other.entries()
    }
}

impl Eq for Remembered {}

/// The entries in the order they were applied (by reference: a snapshot of a large window
/// is not cloned again to be written).
impl Serialize for Remembered {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.entries())
    }
}

impl From<Vec<Entry>> for Remembered {
    fn from(entries: Vec<Entry>) -> Self {
        let mut r = Remembered::default();
        for e in entries {
            r.push(e, usize::MAX);
        }
        r
    }
}

impl Remembered {
    /// Every remembered entry, in the order they were applied.
    fn entries(&self) -> Vec<&Entry> {
        let mut slots: Vec<&Slot> = self.table.iter().collect();
        slots.sort_unstable_by_key(|s| s.serial);
        slots.into_iter().map(|s| &*s.entry).collect()
    }

    /// How many ids are remembered.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// How many ids `user` has remembered.
    pub fn of_user(&self, user: &UserId) -> usize {
        self.users.get(user).map_or(0, VecDeque::len)
    }

    pub fn check(&self, id: &CommandId, fingerprint: &Fingerprint) -> Seen<'_> {
        let hash = self.hasher.hash_one(id);
        match self.table.find(hash, |s| s.entry.id == *id) {
            None => Seen::New,
            Some(s) if s.entry.fingerprint == *fingerprint => Seen::Same(&s.entry.reply),
            Some(_) => Seen::Different,
        }
    }

    /// Remembers a command that was not remembered (the caller checked), forgetting the
    /// user's oldest past `per_user`. Stamped `now`, or the newest time remembered if later.
    pub fn remember(
        &mut self,
        id: CommandId,
        user: UserId,
        fingerprint: Fingerprint,
        reply: Reply,
        now: TimestampMs,
        per_user: usize,
    ) {
        let at = self.due.back().map_or(now, |&(last, _)| last.max(now));
        let entry = Entry {
            id,
            user,
            at,
            fingerprint,
            reply,
        };
        self.push(entry, per_user.max(1));
    }

    /// Forgets every id remembered at or before `now - ttl` (the caller does this before
    /// looking an id up at `now`).
    pub fn expire(&mut self, now: TimestampMs, ttl: i64) {
        let cutoff = now.saturating_sub(ttl);
        while let Some(&(at, user)) = self.due.front() {
            if at > cutoff {
                break;
            }
            self.due.pop_front();
            self.forget_oldest(user, Some(cutoff));
        }
    }

    /// Forgets `user`'s oldest id (only if remembered at or before `cutoff`, when given).
    fn forget_oldest(&mut self, user: UserId, cutoff: Option<TimestampMs>) {
        let Some(queue) = self.users.get_mut(&user) else {
            return;
        };
        let Some(&key) = queue.front() else {
            return;
        };
        let Ok(slot) = self.table.find_entry(key.hash, |s| s.serial == key.serial) else {
            // A key whose id was remembered again later (see `push`): drop it.
            queue.pop_front();
            return;
        };
        if cutoff.is_some_and(|c| slot.get().entry.at > c) {
            return;
        }
        slot.remove();
        queue.pop_front();
        if queue.is_empty() {
            self.users.remove(&user);
        }
    }

    fn push(&mut self, entry: Entry, per_user: usize) {
        let user = entry.user;
        while self.of_user(&user) >= per_user {
            self.forget_oldest(user, None);
        }
        let hash = self.hasher.hash_one(&entry.id);
        // An id remembered twice (only a hand-made snapshot could hold one) keeps the newest.
        // Its key in the user's queue goes stale; `forget_oldest` drops stale keys.
        if let Ok(old) = self.table.find_entry(hash, |s| s.entry.id == entry.id) {
            old.remove();
        }
        let serial = self.serial;
        self.serial += 1;
        self.due.push_back((entry.at, user));
        self.users
            .entry(user)
            .or_default()
            .push_back(Key { serial, hash });
        let slot = Slot {
            serial,
            hash,
            entry: Box::new(entry),
        };
        self.table.insert_unique(hash, slot, |s| s.hash);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bus::{Command, RejectCode, Rejection};

    fn id(s: &str) -> CommandId {
        CommandId::new(s).expect("id")
    }

    fn user(n: u128) -> UserId {
        UserId(uuid::Uuid::from_u128(n))
    }

    fn reply(n: u64) -> Reply {
        Reply::Rejected(Rejection::new(RejectCode::AccountNotFound, n.to_string()))
    }

    fn fp(n: u128) -> Fingerprint {
        Fingerprint::of(&Command::CreateAccount { user_id: user(n) })
    }

    const DAY: i64 = 86_400_000;

    /// As the engine does: forget what is due, then remember (3 ids per user).
    fn add(r: &mut Remembered, name: &str, who: UserId, f: Fingerprint, n: u64, now: i64) {
        r.expire(now, DAY);
        r.remember(id(name), who, f, reply(n), now, 3);
    }

    fn known(r: &Remembered, name: &str, n: u128) -> bool {
        matches!(r.check(&id(name), &fp(n)), Seen::Same(_))
    }

    #[test]
    fn other_users_never_evict_an_id_and_time_does_after_the_ttl() {
        let mut r = Remembered::default();
        add(&mut r, "a-1", user(1), fp(1), 1, 0);
        for n in 0..10_000u64 {
            let who = user(2 + u128::from(n % 50));
            add(&mut r, &format!("b-{n}"), who, fp(2), n, 1_000);
        }
        assert!(known(&r, "a-1", 1), "other users' 10,000 commands");
        assert!(matches!(r.check(&id("a-1"), &fp(9)), Seen::Different));
        assert_eq!(r.len(), 1 + 50 * 3);
        // Just before the ttl passes it is kept; at it, forgotten (on the next command).
        add(&mut r, "c-1", user(99), fp(3), 0, DAY - 1);
        assert!(known(&r, "a-1", 1));
        add(&mut r, "c-2", user(99), fp(3), 0, DAY);
        assert!(matches!(r.check(&id("a-1"), &fp(1)), Seen::New));
        assert_eq!(r.of_user(&user(1)), 0);
        // Everything of the others expires too, and nothing of them stays behind.
        add(&mut r, "c-3", user(99), fp(3), 0, 3 * DAY);
        assert_eq!((r.len(), r.users.len(), r.due.len()), (1, 1, 1));
    }

    #[test]
    fn a_user_keeps_their_newest_ids() {
        let mut r = Remembered::default();
        for n in 0..5u64 {
            add(&mut r, &format!("a-{n}"), user(1), fp(1), n, 10);
        }
        let kept: Vec<bool> = (0..5).map(|n| known(&r, &format!("a-{n}"), 1)).collect();
        assert_eq!(kept, [false, false, true, true, true]);
        // The time queue's entries of the forgotten ids forget nothing that is not due.
        add(&mut r, "b", user(2), fp(1), 9, 20 + DAY / 2);
        assert_eq!(r.of_user(&user(1)), 3);
        add(&mut r, "c", user(2), fp(1), 9, 10 + DAY);
        assert_eq!(r.of_user(&user(1)), 0);
        assert!(known(&r, "b", 1));
    }

    #[test]
    fn a_clock_that_goes_back_never_forgets_early() {
        let mut r = Remembered::default();
        add(&mut r, "a", user(1), fp(1), 1, 5_000);
        add(&mut r, "b", user(1), fp(1), 2, 1_000);
        // "b" is stamped 5,000 (the newest time seen): kept until 5,000 + ttl.
        add(&mut r, "c", user(2), fp(1), 3, 1_000 + DAY);
        assert!(known(&r, "b", 1) && known(&r, "a", 1));
        add(&mut r, "d", user(2), fp(1), 3, 5_000 + DAY);
        assert!(!known(&r, "b", 1) && !known(&r, "a", 1));
    }

    #[test]
    fn serialised_and_read_back_it_answers_and_ages_the_same() {
        let mut r = Remembered::default();
        for n in 0..7u64 {
            let who = user(u128::from(n % 2));
            add(&mut r, &format!("k{n}"), who, fp(1), n, n as i64 * 1_000);
        }
        let json = serde_json::to_string(&r).expect("serialises");
        let mut back: Remembered = serde_json::from_str(&json).expect("reads back");
        assert_eq!(back, r);
        assert_eq!(serde_json::to_string(&back).expect("again"), json);
        for x in [&mut r, &mut back] {
            add(x, "late", user(5), fp(1), 0, 3_500 + DAY);
        }
        assert_eq!(back, r);
        assert_eq!(r.len(), 4, "k0..k3 expired, k4..k6 and late kept");
    }
}
