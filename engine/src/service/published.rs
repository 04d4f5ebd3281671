//! Which events a previous writer already stored, so that none is stored twice.
//!
//! A writer acks a batch of inputs only after its events are stored, and keeps up to four
//! batches in flight: a writer that dies can leave events in `EVENTS` for inputs past its ack
//! floor, and the next writer applies those inputs again. It yields the same events under the
//! same keys, but cut into batches at other places, so JetStream's dedup window (which
//! compares message ids, i.e. key ranges) would not catch the second copy. So at start the
//! writer reads `EVENTS` backwards from its last message while the messages hold keys past
//! the ack floor, and then skips the keys they cover.
//!
//! This relies on the engine storing its events in key order (one connection, publishes in
//! order, and a failed store stops the writer), so the first message met whose keys all lie
//! at or below the floor ends the search.

use std::collections::VecDeque;

use async_nats::jetstream::{self, stream::RawMessageErrorKind};
use bus::Names;
use bus::events::{EventKey, KeyRange, range_of};

use super::ServiceError;

/// Key ranges already in `EVENTS` above the ack floor, in key order.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Published {
    ranges: VecDeque<KeyRange>,
}

fn nats<E: std::fmt::Display>(what: &'static str) -> impl Fn(E) -> ServiceError {
    move |e| ServiceError::Nats(format!("{what}: {e}"))
}

impl Published {
    /// Reads the tail of `EVENTS`: every message holding a key of an input after `floor`.
    pub async fn read_tail(
        js: &jetstream::Context,
        names: &Names,
        floor: u64,
    ) -> Result<Self, ServiceError> {
        let mut stream = js
            .get_stream(names.events_stream())
            .await
            .map_err(nats("EVENTS stream"))?;
        let state = stream
            .info()
            .await
            .map_err(nats("EVENTS info"))?
            .state
            .clone();
        let mut ranges = Vec::new();
        if state.messages > 0 {
            for seq in (state.first_sequence.max(1)..=state.last_sequence).rev() {
                let msg = match stream.get_raw_message(seq).await {
                    Ok(msg) => msg,
                    // Deleted (or aged out meanwhile): nothing to cover there.
                    Err(e) if e.kind() == RawMessageErrorKind::NoMessageFound => continue,
                    Err(e) => return Err(ServiceError::Nats(format!("EVENTS tail: {e}"))),
                };
                match range_of(Some(&msg.headers)) {
                    Some(range) if range.last.seq <= floor => break,
                    Some(range) => ranges.push(range),
                    None => tracing::warn!(seq, "an EVENTS message without event keys"),
                }
            }
        }
        ranges.sort_by_key(|r| r.first);
        if let (Some(first), Some(last)) = (ranges.first(), ranges.last()) {
            tracing::info!(
                floor,
                messages = ranges.len(),
                from = %first.first,
                to = %last.last,
                "events past the ack floor already stored; they will not be stored again"
            );
        }
        Ok(Self {
            ranges: ranges.into(),
        })
    }

    /// True when `key` is already stored. Keys must be asked in increasing order (as the
    /// engine produces them): ranges behind the key are forgotten.
    pub fn covers(&mut self, key: EventKey) -> bool {
        while self.ranges.front().is_some_and(|r| r.last < key) {
            self.ranges.pop_front();
        }
        self.ranges.iter().any(|r| r.contains(key))
    }

    /// True once no stored key lies ahead: the common case, checked first on the hot path.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seq: u64, index: u32) -> EventKey {
        EventKey { seq, index }
    }

    #[test]
    fn covers_stored_keys_only_and_forgets_what_is_behind() {
        let mut p = Published {
            ranges: [KeyRange::parse("3-1..5-0"), KeyRange::parse("7-0..7-2")]
                .into_iter()
                .map(|r| r.expect("range"))
                .collect(),
        };
        assert!(!p.covers(key(3, 0)));
        assert!(p.covers(key(3, 1)));
        assert!(p.covers(key(4, 5)));
        assert!(!p.covers(key(6, 0)));
        assert!(p.covers(key(7, 2)));
        assert!(!p.is_empty());
        assert!(!p.covers(key(7, 3)));
        assert!(p.is_empty());
    }
}
