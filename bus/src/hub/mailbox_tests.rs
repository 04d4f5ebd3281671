use std::sync::Mutex;

use futures_util::FutureExt;

use super::*;
use crate::hub::frame;

const LIMITS: Limits = Limits {
    max_behind: 3,
    max_events: 2,
    max_replies: 2,
};

/// A socket that takes `room` more bytes, then would block.
#[derive(Default)]
struct FakeWire {
    room: Mutex<usize>,
    out: Mutex<Vec<u8>>,
    calls: Mutex<usize>,
}

impl FakeWire {
    fn with_room(room: usize) -> Arc<Self> {
        Arc::new(Self {
            room: Mutex::new(room),
            ..Self::default()
        })
    }

    fn make_room(&self, room: usize) {
        *self.room.lock().expect("unpoisoned") = room;
    }

    /// The text of every whole frame written so far (server frames: unmasked, < 126 bytes).
    fn texts(&self) -> Vec<String> {
        let out = self.out.lock().expect("unpoisoned");
        let mut texts = Vec::new();
        let mut rest = &out[..];
        while rest.len() >= 2 {
            assert_eq!(rest[0], 0x81, "a final text frame");
            let len = usize::from(rest[1]);
            texts.push(String::from_utf8(rest[2..2 + len].to_vec()).expect("utf-8"));
            rest = &rest[2 + len..];
        }
        texts
    }

    fn calls(&self) -> usize {
        *self.calls.lock().expect("unpoisoned")
    }
}

impl Wire for FakeWire {
    fn try_write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let mut room = self.room.lock().expect("unpoisoned");
        if *room == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        *self.calls.lock().expect("unpoisoned") += 1;
        let mut out = self.out.lock().expect("unpoisoned");
        let mut written = 0;
        for buf in bufs {
            let n = buf.len().min(*room - written);
            out.extend_from_slice(&buf[..n]);
            written += n;
        }
        *room -= written;
        Ok(written)
    }
}

fn quotes(list: &[(Asset, &str)]) -> QuoteBatch {
    let mut batch = QuoteBatch::default();
    for (asset, text) in list {
        batch.push(*asset, frame::text(text));
    }
    batch
}

fn woken(m: &Mailbox) -> bool {
    m.notify.notified().now_or_never().is_some()
}

#[test]
fn a_healthy_client_gets_every_quote_in_one_write_and_its_task_sleeps() {
    let wire = FakeWire::with_room(usize::MAX);
    let m = Mailbox::new(LIMITS, wire.clone());
    let batch = quotes(&[(Asset::Btc, "b1"), (Asset::Eth, "e1"), (Asset::Btc, "b2")]);
    let delivered = m.push_quotes(&batch);
    assert_eq!(delivered.messages, 3);
    assert_eq!(wire.texts(), ["b1", "e1", "b2"]);
    assert_eq!(wire.calls(), 1, "one write for the whole batch");
    assert!(!woken(&m), "no task wake-up");
    assert_eq!(m.write_out(), Flush::Done(Delivered::default()));
}

#[test]
fn a_full_socket_keeps_the_newest_quote_per_asset_and_too_far_behind_is_marked() {
    let wire = FakeWire::with_room(0);
    let m = Mailbox::new(LIMITS, wire.clone());
    for i in 0..3 {
        m.push_quotes(&quotes(&[(Asset::Btc, &format!("btc{i}"))]));
    }
    let d = m.push_quotes(&quotes(&[(Asset::Eth, "eth0")]));
    assert_eq!(d, Delivered::default());
    assert!(woken(&m), "the connection task is woken to drain");
    assert!(matches!(m.write_out(), Flush::Blocked(_)));
    wire.make_room(usize::MAX);
    let Flush::Done(d) = m.write_out() else {
        panic!("written out")
    };
    assert_eq!(
        (d.messages, wire.texts()),
        (2, vec!["btc2".into(), "eth0".into()])
    );
    wire.make_room(0);
    let mut conflated = 0;
    for i in 0..5 {
        conflated += m
            .push_quotes(&quotes(&[(Asset::Sol, &format!("sol{i}"))]))
            .conflated;
    }
    assert_eq!(conflated, 4);
    assert!(m.is_too_slow());
}

#[test]
fn a_partly_written_frame_finishes_before_anything_else() {
    let wire = FakeWire::with_room(3);
    let m = Mailbox::new(LIMITS, wire.clone());
    m.push_quotes(&quotes(&[(Asset::Btc, "first"), (Asset::Eth, "second")]));
    m.push_reply(frame::text("reply"));
    m.push_quotes(&quotes(&[(Asset::Btc, "third")]));
    m.push_control(Bytes::from_static(b"\x81\x04ctrl"))
        .expect("kept");
    wire.make_room(usize::MAX);
    let Flush::Done(d) = m.write_out() else {
        panic!("written out")
    };
    assert_eq!(
        d.messages, 4,
        "quotes and the reply; control frames are no message"
    );
    assert_eq!(wire.texts(), ["first", "second", "reply", "ctrl", "third"]);
}

#[test]
fn subscriptions_narrow_then_grow_and_events_need_the_user() {
    let wire = FakeWire::with_room(usize::MAX);
    let m = Mailbox::new(LIMITS, wire.clone());
    let (added, set) = m.subscribe(&[Asset::Eth], true);
    assert_eq!((added, set), (vec![Asset::Eth], vec![Asset::Eth]));
    m.push_quotes(&quotes(&[(Asset::Btc, "btc")]));
    let (added, set) = m.subscribe(&[Asset::Sol, Asset::Eth], true);
    assert_eq!(
        (added, set),
        (vec![Asset::Sol], vec![Asset::Eth, Asset::Sol])
    );
    let (_, set) = m.subscribe(&[Asset::Eth], false);
    assert_eq!(set, vec![Asset::Sol]);
    let user = UserId(uuid::Uuid::new_v4());
    m.push_event(user, &frame::text("not yet"));
    m.set_user(user, crate::auth::now_secs() + 600);
    assert_eq!(m.push_event(user, &frame::text("event")).events, 1);
    m.push_event(UserId(uuid::Uuid::new_v4()), &frame::text("someone else's"));
    m.push_quotes(&quotes(&[(Asset::Sol, "sol"), (Asset::Eth, "eth")]));
    assert_eq!(wire.texts(), ["event", "sol"]);
    m.set_user(user, crate::auth::now_secs() - 1);
    m.push_event(user, &frame::text("after expiry"));
    m.set_user(user, crate::auth::now_secs() + 600);
    m.clear_user();
    m.push_event(user, &frame::text("after clear"));
    assert_eq!(wire.texts(), ["event", "sol"]);
}

#[test]
fn events_piling_up_behind_a_full_socket_mark_the_client_too_slow() {
    let wire = FakeWire::with_room(0);
    let m = Mailbox::new(LIMITS, wire);
    let user = UserId(uuid::Uuid::new_v4());
    m.set_user(user, crate::auth::now_secs() + 600);
    for _ in 0..LIMITS.max_events {
        m.push_event(user, &frame::text("event"));
    }
    assert!(!m.is_too_slow());
    m.push_event(user, &frame::text("one too many"));
    assert!(m.is_too_slow());
}

#[test]
fn control_frames_piling_up_behind_a_full_socket_mark_the_client_too_slow() {
    let m = Mailbox::new(LIMITS, FakeWire::with_room(0));
    for _ in 0..=LIMITS.max_replies {
        m.push_control(frame::text("pong")).expect("kept");
    }
    assert!(!m.is_too_slow(), "the first one found the mailbox empty");
    m.push_control(frame::text("pong")).expect("kept");
    assert!(m.is_too_slow());
}

struct BrokenWire;

impl Wire for BrokenWire {
    fn try_write_vectored(&self, _: &[IoSlice<'_>]) -> io::Result<usize> {
        Err(io::ErrorKind::ConnectionReset.into())
    }
}

#[test]
fn a_failed_write_breaks_the_mailbox_off() {
    let m = Mailbox::new(LIMITS, Arc::new(BrokenWire));
    m.push_quotes(&quotes(&[(Asset::Btc, "btc")]));
    assert!(woken(&m));
    assert_eq!(m.write_out(), Flush::Broken);
    assert!(m.push_control(Bytes::from_static(b"x")).is_err());
}
