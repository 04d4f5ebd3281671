//! Engine events as `EVENTS` stores them, and the one reader of every shape they have had.
//!
//! The engine stores the events of one batch of inputs as one message (a few when large, each
//! under [`MAX_BATCH_BYTES`]), so that publishing, storing and delivering an event costs a
//! share of a message rather than several messages: `Envelope<EventBatch>` on
//! `names.event_batch()`, `Nats-Msg-Id` = the [`KeyRange`] it holds (`"<seq>-<index>..<seq>-<index>"`).
//! Engines before that stored each event alone, `Envelope<Event>` on `names.event(kind)` with
//! `Nats-Msg-Id` = its key (`"<seq>-<index>"`); such messages stay in a stream until its age
//! limit, so [`read`] returns the events of either shape, and every consumer reads through it.
//!
//! An event's [`EventKey`] is deterministic: re-applying the input at `seq` yields the same
//! events in the same order, so a key names one event across restarts and shapes.

use std::fmt;
use std::io::Write;

use serde::{Deserialize, Serialize};

use crate::envelope::CURRENT_VERSION;
use crate::messages::Event;
use crate::types::TimestampMs;

/// Largest payload of one batch message. NATS refuses payloads over its `max_payload` (1 MiB
/// by default); half of it leaves room for headers and a server configured lower.
pub const MAX_BATCH_BYTES: usize = 512 * 1024;

/// An event's identity: the `ENGINE` sequence of the input that caused it, and its place among
/// that input's events. Ordered as the engine produces events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventKey {
    pub seq: u64,
    pub index: u32,
}

impl EventKey {
    /// Reads `"<seq>-<index>"`.
    pub fn parse(text: &str) -> Option<Self> {
        let (seq, index) = text.split_once('-')?;
        Some(Self {
            seq: seq.parse().ok()?,
            index: index.parse().ok()?,
        })
    }
}

impl fmt::Display for EventKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.seq, self.index)
    }
}

/// The keys from `first` to `last` (inclusive): what one `EVENTS` message holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyRange {
    pub first: EventKey,
    pub last: EventKey,
}

impl KeyRange {
    /// Reads a message id: `"<first>..<last>"` (a batch) or `"<seq>-<index>"` (one event).
    pub fn parse(msg_id: &str) -> Option<Self> {
        let (first, last) = match msg_id.split_once("..") {
            Some((first, last)) => (EventKey::parse(first)?, EventKey::parse(last)?),
            None => {
                let key = EventKey::parse(msg_id)?;
                (key, key)
            }
        };
        (first <= last).then_some(Self { first, last })
    }

    pub fn contains(&self, key: EventKey) -> bool {
        self.first <= key && key <= self.last
    }
}

impl fmt::Display for KeyRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}..{}", self.first, self.last)
    }
}

/// One event as the log keeps it: its key, the time of the input that caused it and the
/// request id that input carried (so history can be followed from a request to its writes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoggedEvent {
    pub seq: u64,
    pub index: u32,
    pub ts: TimestampMs,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    pub event: Event,
}

impl LoggedEvent {
    pub fn key(&self) -> EventKey {
        EventKey {
            seq: self.seq,
            index: self.index,
        }
    }
}

/// The body of a batch message: events in key order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventBatch {
    pub events: Vec<LoggedEvent>,
}

/// One message ready to publish: its keys (the message id) and its payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedBatch {
    pub range: KeyRange,
    pub payload: Vec<u8>,
}

/// Encodes events (in key order) as `Envelope<EventBatch>` messages of at most `max_bytes`
/// each; an event larger than that on its own gets a message of its own. Each event is
/// serialised once, straight into the payload it ends up in.
pub fn encode_batches(events: &[LoggedEvent], max_bytes: usize) -> Vec<EncodedBatch> {
    let mut out = Vec::new();
    let mut open: Option<(KeyRange, Vec<u8>)> = None;
    let mut scratch = Vec::new();
    for logged in events {
        scratch.clear();
        // Plain data with string keys: serialising cannot fail.
        serde_json::to_writer(&mut scratch, logged).expect("event serialises");
        let key = logged.key();
        if let Some((range, payload)) = &mut open
            && payload.len() + 1 + scratch.len() + CLOSING.len() <= max_bytes
        {
            payload.push(b',');
            payload.extend_from_slice(&scratch);
            range.last = key;
            continue;
        }
        if let Some(done) = open.take() {
            out.push(close(done));
        }
        let mut payload = opening(logged);
        payload.extend_from_slice(&scratch);
        open = Some((
            KeyRange {
                first: key,
                last: key,
            },
            payload,
        ));
    }
    out.extend(open.map(close));
    out
}

const CLOSING: &[u8] = b"]}}";

/// `{"v":..,"seq":..,"ts":..,"body":{"events":[`: the envelope around a batch, with the
/// first event's sequence and time. The round-trip test holds it to `Envelope<EventBatch>`.
fn opening(first: &LoggedEvent) -> Vec<u8> {
    let mut payload = Vec::with_capacity(4096);
    // Writing to a Vec cannot fail.
    let _ = write!(
        payload,
        r#"{{"v":{CURRENT_VERSION},"seq":{},"ts":{},"body":{{"events":["#,
        first.seq, first.ts
    );
    payload
}

fn close((range, mut payload): (KeyRange, Vec<u8>)) -> EncodedBatch {
    payload.extend_from_slice(CLOSING);
    EncodedBatch { range, payload }
}

#[cfg(feature = "nats")]
mod read;
#[cfg(feature = "nats")]
pub use read::{ReadError, is_batch_subject, range_of, read};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Envelope;
    use crate::types::UserId;

    fn logged(seq: u64, index: u32) -> LoggedEvent {
        LoggedEvent {
            seq,
            index,
            ts: 1_700_000_000_000 + seq as i64,
            request_id: (index == 0).then(|| format!("req-{seq}")),
            event: Event::AccountCreated {
                user_id: UserId(uuid::Uuid::from_u128(u128::from(seq))),
                balance: "5000".parse().expect("money"),
                at: 7,
            },
        }
    }

    #[test]
    fn keys_and_ranges_parse_and_order() {
        assert_eq!(
            EventKey::parse("12-0"),
            Some(EventKey { seq: 12, index: 0 })
        );
        assert!(EventKey::parse("12-1") > EventKey::parse("12-0"));
        assert!(EventKey::parse("13-0") > EventKey::parse("12-9"));
        for bad in ["", "12", "a-1", "1-b", "-1", "1-"] {
            assert_eq!(EventKey::parse(bad), None, "{bad}");
        }
        let range = KeyRange::parse("3-1..5-0").expect("range");
        assert_eq!(range.to_string(), "3-1..5-0");
        assert!(range.contains(EventKey { seq: 4, index: 9 }));
        assert!(!range.contains(EventKey { seq: 3, index: 0 }));
        let single = KeyRange::parse("7-2").expect("one key");
        assert_eq!((single.first, single.last), (single.first, single.first));
        for bad in ["5-0..3-1", "3-1..", "..3-1", "3-1..x"] {
            assert_eq!(KeyRange::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn batches_round_trip_as_versioned_envelopes() {
        let events: Vec<_> = (1..=3).flat_map(|s| [logged(s, 0), logged(s, 1)]).collect();
        let batches = encode_batches(&events, MAX_BATCH_BYTES);
        assert_eq!(batches.len(), 1);
        assert_eq!(batches[0].range.to_string(), "1-0..3-1");
        let env = Envelope::<EventBatch>::decode(&batches[0].payload).expect("decodes");
        assert_eq!((env.v, env.seq, env.ts), (1, 1, events[0].ts));
        assert_eq!(env.body.events, events);
    }

    #[test]
    fn large_batches_split_by_size_without_losing_or_reordering() {
        let events: Vec<_> = (1..=50).map(|s| logged(s, 0)).collect();
        let one = encode_batches(&events[..1], MAX_BATCH_BYTES)[0]
            .payload
            .len();
        let max = one * 4;
        let batches = encode_batches(&events, max);
        assert!(batches.len() >= 13, "{} batches", batches.len());
        let mut read = Vec::new();
        for b in &batches {
            assert!(b.payload.len() <= max, "{} > {max}", b.payload.len());
            let body = Envelope::<EventBatch>::decode(&b.payload)
                .expect("decodes")
                .body;
            assert_eq!(
                body.events.first().map(LoggedEvent::key),
                Some(b.range.first)
            );
            assert_eq!(body.events.last().map(LoggedEvent::key), Some(b.range.last));
            read.extend(body.events);
        }
        assert_eq!(read, events);
        // An event larger than the limit still goes out, alone.
        let alone = encode_batches(&events[..2], 10);
        assert_eq!(alone.len(), 2);
    }
}
