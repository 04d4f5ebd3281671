//! Reading an `EVENTS` message of either shape (see the parent module) into its events.

use async_nats::HeaderMap;
use async_nats::header::NATS_MESSAGE_ID;

use super::{EventBatch, EventKey, KeyRange, LoggedEvent};
use crate::envelope::{DecodeError, Envelope};
use crate::messages::Event;
use crate::request_id;
use crate::subjects::EVENT_BATCH;

/// Why a message's events cannot be read. The message as a whole is unusable: consumers put
/// it aside (dead letters) rather than guess.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("event without a <seq>-<index> id")]
    NoKey,
    #[error("unreadable events: {0}")]
    Unreadable(#[from] DecodeError),
    #[error("a batch whose events do not match its id {0}")]
    RangeMismatch(KeyRange),
}

/// True for the subject batches are published on (`names.event_batch()`); any other subject
/// under `events.>` carries one event in the older shape.
pub fn is_batch_subject(subject: &str) -> bool {
    subject.rsplit('.').next() == Some(EVENT_BATCH)
}

/// The keys a message holds, from its `Nats-Msg-Id` (either shape).
pub fn range_of(headers: Option<&HeaderMap>) -> Option<KeyRange> {
    headers
        .and_then(|h| h.get(NATS_MESSAGE_ID))
        .and_then(|id| KeyRange::parse(id.as_str()))
}

/// The events of an `EVENTS` message, in key order.
pub fn read(msg: &async_nats::Message) -> Result<Vec<LoggedEvent>, ReadError> {
    let range = range_of(msg.headers.as_ref()).ok_or(ReadError::NoKey)?;
    if is_batch_subject(&msg.subject) {
        let events = Envelope::<EventBatch>::decode(&msg.payload)?.body.events;
        let ends = (events.first(), events.last());
        let matches = matches!(ends, (Some(a), Some(z)) if a.key() == range.first && z.key() == range.last)
            && events.windows(2).all(|w| w[0].key() < w[1].key());
        return if matches {
            Ok(events)
        } else {
            Err(ReadError::RangeMismatch(range))
        };
    }
    if range.first != range.last {
        return Err(ReadError::RangeMismatch(range));
    }
    let EventKey { seq, index } = range.first;
    let envelope = Envelope::<Event>::decode(&msg.payload)?;
    Ok(vec![LoggedEvent {
        seq,
        index,
        ts: envelope.ts,
        request_id: request_id::of_headers(msg.headers.as_ref()).map(str::to_owned),
        event: envelope.body,
    }])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{MAX_BATCH_BYTES, encode_batches};
    use crate::subjects::Names;
    use crate::types::UserId;

    fn message(subject: String, id: Option<&str>, payload: Vec<u8>) -> async_nats::Message {
        let mut headers = HeaderMap::new();
        if let Some(id) = id {
            headers.insert(NATS_MESSAGE_ID, id);
        }
        headers.insert(request_id::REQUEST_ID_HEADER, "req-1");
        async_nats::Message {
            subject: subject.into(),
            reply: None,
            payload: payload.into(),
            headers: Some(headers),
            status: None,
            description: None,
            length: 0,
        }
    }

    fn created(n: u128) -> Event {
        Event::AccountCreated {
            user_id: UserId(uuid::Uuid::from_u128(n)),
            balance: "5000".parse().expect("money"),
            at: 3,
        }
    }

    #[test]
    fn reads_the_older_single_event_shape() {
        let names = Names::new("t1");
        let payload = Envelope::new(9, 42, created(1)).encode();
        let msg = message(names.event("account_created"), Some("9-2"), payload.clone());
        let events = read(&msg).expect("reads");
        assert_eq!(
            events,
            [LoggedEvent {
                seq: 9,
                index: 2,
                ts: 42,
                request_id: Some("req-1".into()),
                event: created(1),
            }]
        );
        let no_id = message(names.event("account_created"), None, payload);
        assert!(matches!(read(&no_id), Err(ReadError::NoKey)));
    }

    #[test]
    fn reads_batches_and_refuses_one_that_contradicts_its_id() {
        let names = Names::new("t1");
        let events: Vec<_> = (0..3)
            .map(|i| LoggedEvent {
                seq: 5,
                index: i,
                ts: 8,
                request_id: None,
                event: created(u128::from(i)),
            })
            .collect();
        let batch = encode_batches(&events, MAX_BATCH_BYTES).remove(0);
        let id = batch.range.to_string();
        let msg = message(names.event_batch(), Some(&id), batch.payload.clone());
        assert_eq!(read(&msg).expect("reads"), events);
        let wrong = message(names.event_batch(), Some("5-0..5-1"), batch.payload);
        assert!(matches!(read(&wrong), Err(ReadError::RangeMismatch(_))));
        let garbage = message(names.event_batch(), Some(&id), b"{nope".to_vec());
        assert!(matches!(read(&garbage), Err(ReadError::Unreadable(_))));
    }
}
