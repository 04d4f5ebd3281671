//! Replay over real NATS JetStream: the log is read by one consumer in pulls of 5,000;
//! whatever the pull boundaries and the holes in the stream (inputs deleted inside it, around
//! a pull boundary, at its end), every stored input of the asked range is applied once, in
//! sequence order, and the state equals the pure core fed the same inputs from memory.

use crate::svc;

use async_nats::jetstream;
use bus::nats::{StreamSettings, ensure_streams};
use bus::{Asset, Command, EngineInput, Envelope, Names, Side};
use engine::service::{apply_logged, recovery};
use engine::{Engine, EngineConfig};
use svc::*;

const INPUTS: u64 = 7_000;

/// Accounts, then ticks moving the price with opens in between (an open's entry price
/// depends on the ticks before it, so applying out of order changes the state).
async fn publish_log(js: &jetstream::Context, names: &Names) {
    let mut acks = Vec::new();
    for i in 0..INPUTS {
        let u = user(u128::from(i % 20) + 1);
        let (subject, input) = if i < 20 {
            let c = cmd(&format!("acct-{i}"), Command::CreateAccount { user_id: u });
            (names.command(c.command.kind()), EngineInput::command(c))
        } else if i % 7 == 0 {
            let side = if i % 2 == 0 { Side::Buy } else { Side::Sell };
            let c = cmd(&format!("open-{i}"), open(u, Asset::Btc, side, "0.01", 20));
            (names.command(c.command.kind()), EngineInput::command(c))
        } else {
            let bid = 60_000 + (i % 13) * 10;
            let t = tick(Asset::Btc, &format!("{bid}.00"), &format!("{}.00", bid + 1));
            (names.tick(Asset::Btc), EngineInput::PriceTick(t))
        };
        let body = Envelope::new(0, 0, input).encode();
        acks.push(js.publish(subject, body.into()).await.expect("publish"));
        // JetStream publishing waits beyond a few thousand unacknowledged publishes.
        if acks.len() == 1_000 {
            for ack in acks.drain(..) {
                ack.await.expect("stored");
            }
        }
    }
    for ack in acks {
        ack.await.expect("stored");
    }
}

/// What the stream holds: (sequence, timestamp, payload) of every stored input.
async fn stored(js: &jetstream::Context, names: &Names) -> Vec<(u64, i64, Vec<u8>)> {
    let messages = stored_messages(js, &names.engine_stream()).await;
    messages
        .iter()
        .map(|m| {
            let info = m.info().expect("info");
            let (seq, now) = (info.stream_sequence, bus::nats::timestamp_ms(info));
            (seq, now, m.payload.to_vec())
        })
        .collect()
}

/// The pure core fed `inputs` from memory.
fn applied<'a>(inputs: impl Iterator<Item = &'a (u64, i64, Vec<u8>)>) -> Engine {
    let mut engine = Engine::new(EngineConfig::default());
    for (seq, now, payload) in inputs {
        apply_logged(&mut engine, payload, *seq, *now);
    }
    engine
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_applies_every_stored_input_once_in_order_across_pulls_and_holes() {
    let names = random_names();
    let nats = async_nats::connect(nats_url()).await.expect("nats");
    let js = jetstream::new(nats);
    ensure_streams(&js, &names, &StreamSettings::default())
        .await
        .expect("streams");
    publish_log(&js, &names).await;
    let stream = js.get_stream(names.engine_stream()).await.expect("stream");
    for seq in [700].into_iter().chain(4_995..=5_005).chain([INPUTS]) {
        assert!(stream.delete_message(seq).await.expect("delete"));
    }
    let log = stored(&js, &names).await;
    assert_eq!(log.len() as u64, INPUTS - 13);

    // The whole log, as a recovery from no snapshot reads it.
    let mut engine = Engine::new(EngineConfig::default());
    let mut seqs = Vec::new();
    let n = recovery::replay(&js, &names, &mut engine, 0, u64::MAX, |seq, _| {
        seqs.push(seq)
    })
    .await
    .expect("replay");
    assert_eq!(n, log.len() as u64, "every stored input, once");
    assert_eq!(
        seqs,
        log.iter().map(|i| i.0).collect::<Vec<_>>(),
        "in order"
    );
    assert!(
        engine == applied(log.iter()),
        "the same state as from memory"
    );

    // A range, as after a snapshot at 1,234 up to an ack floor at 5,999.
    let (after, upto) = (1_234, 5_999);
    let mut engine = applied(log.iter().filter(|i| i.0 <= after));
    let mut seqs = Vec::new();
    let n = recovery::replay(&js, &names, &mut engine, after, upto, |seq, _| {
        seqs.push(seq)
    })
    .await
    .expect("replay");
    let wanted: Vec<u64> = log
        .iter()
        .map(|i| i.0)
        .filter(|s| (after + 1..=upto).contains(s))
        .collect();
    assert_eq!((n, seqs), (wanted.len() as u64, wanted));
    assert!(engine == applied(log.iter().filter(|i| i.0 <= upto)));
    cleanup(&names).await;
}
