//! The engine service over real NATS JetStream and PostgreSQL: request/reply round trips for
//! every command and query, idempotent retries (also across a restart), events in `EVENTS`,
//! the timeout a caller gets while no engine runs, and a production engine's price rules
//! (simulated ticks refused, stale prices refused by log time).

use crate::svc;

use std::time::Duration;

use async_nats::jetstream::consumer::pull::OrderedConfig;
use bus::events::LoggedEvent;
use bus::nats::BusError;
use bus::{Accepted, Asset, Command, ModifyPosition, Query, QueryReply, RejectCode, Reply, Side};
use futures_util::StreamExt;
use migrations::TestDatabase;
use svc::*;

/// Every event in `EVENTS` (read inside its batch), in stream order.
async fn all_events(names: &bus::Names, expected: usize) -> Vec<LoggedEvent> {
    let nats = async_nats::connect(nats_url()).await.expect("nats");
    let js = async_nats::jetstream::new(nats);
    let stream = js.get_stream(names.events_stream()).await.expect("EVENTS");
    let consumer = stream
        .create_consumer(OrderedConfig::default())
        .await
        .expect("consumer");
    let mut messages = consumer.messages().await.expect("messages");
    let mut out = Vec::new();
    while out.len() < expected {
        let msg = tokio::time::timeout(Duration::from_secs(5), messages.next())
            .await
            .expect("events arrive")
            .expect("stream open")
            .expect("message");
        out.extend(bus::events::read(&msg).expect("events decode"));
    }
    out
}

fn accepted(reply: Reply) -> Accepted {
    match reply {
        Reply::Accepted(a) => a,
        Reply::Rejected(r) => panic!("rejected: {r}"),
    }
}

#[tokio::test]
async fn every_command_and_query_round_trips_and_retries_return_the_first_reply() {
    let names = random_names();
    let db = TestDatabase::create().await.expect("database");
    let client = client(&names, Duration::from_secs(10)).await;
    let engine = EngineTask::start(test_settings(&names, &db));
    let alice = user(1);

    let created = client
        .send(cmd("c1", Command::CreateAccount { user_id: alice }))
        .await
        .expect("create");
    assert!(matches!(
        accepted(created.clone()),
        Accepted::AccountCreated { .. }
    ));

    client
        .publish_tick(&tick(Asset::Btc, "64999.50", "65000.50"))
        .await
        .expect("tick");
    let opened = client
        .send(cmd("c2", open(alice, Asset::Btc, Side::Buy, "0.1", 10)))
        .await
        .expect("open");
    let Accepted::PositionOpened { position } = accepted(opened.clone()) else {
        panic!("expected an opened position");
    };
    assert_eq!(position.open_price, price("65000.50"));

    let modify = Command::ModifyPosition(ModifyPosition {
        trailing_distance: None,
        user_id: alice,
        position_id: position.id,
        stop_loss: Some(price("60000")),
        take_profit: Some(price("70000")),
    });
    let modified = accepted(client.send(cmd("c3", modify)).await.expect("modify"));
    assert!(
        matches!(modified, Accepted::PositionModified { ref position } if position.stop_loss == Some(price("60000")))
    );

    let account = client
        .query(Query::GetAccount { user_id: alice })
        .await
        .expect("account");
    let QueryReply::Account { account } = account else {
        panic!("expected an account, got {account:?}");
    };
    assert_eq!(account.used_margin.to_string(), "650.01");
    let positions = client
        .query(Query::ListOpenPositions {
            user_id: alice,
            page: bus::Page::default(),
        })
        .await
        .expect("positions");
    assert!(
        matches!(positions, QueryReply::OpenPositions { ref positions, next: None } if positions.len() == 1)
    );
    let prices = client.query(Query::GetPrices).await.expect("prices");
    assert!(matches!(prices, QueryReply::Prices { ref quotes } if quotes.len() == 1));
    let remembered = client
        .query(Query::GetCommandReply {
            command_id: bus::CommandId::new("c2").expect("id"),
            fingerprint: bus::Fingerprint::of(&open(alice, Asset::Btc, Side::Buy, "0.1", 10)),
            logged_seq: None,
        })
        .await
        .expect("command reply");
    assert_eq!(
        remembered,
        QueryReply::CommandReply {
            reply: Some(opened.clone())
        }
    );
    client.ping().await.expect("ping");

    let close = Command::ClosePosition {
        user_id: alice,
        position_id: position.id,
    };
    let closed = accepted(client.send(cmd("c4", close.clone())).await.expect("close"));
    assert!(matches!(closed, Accepted::PositionClosed { .. }));

    // A retry inside the dedup window: JetStream drops it, the first reply comes back.
    let again = client
        .send(cmd("c2", open(alice, Asset::Btc, Side::Buy, "0.1", 10)))
        .await
        .expect("retry");
    assert_eq!(again, opened);
    // The same id for another command is refused by the engine, not answered wrongly.
    let reused = client
        .send(cmd("c5", Command::CreateAccount { user_id: alice }))
        .await
        .expect("second create");
    assert!(matches!(reused, Reply::Rejected(ref r) if r.code == RejectCode::AccountExists));

    // After a restart, a retry still gets the first reply and applies nothing.
    engine.stop().await;
    let engine = EngineTask::start(test_settings(&names, &db));
    let after_restart = client
        .send(cmd("c1", Command::CreateAccount { user_id: alice }))
        .await
        .expect("retry after restart");
    assert_eq!(after_restart, created);

    let events = all_events(&names, 4).await;
    let kinds: Vec<&str> = events.iter().map(|e| e.event.kind()).collect();
    assert_eq!(
        kinds,
        [
            "account_created",
            "position_opened",
            "position_modified",
            "position_closed"
        ]
    );
    // Each event names the ENGINE sequence that caused it: create=1, tick=2, open=3, ...
    let keys: Vec<String> = events.iter().map(|e| e.key().to_string()).collect();
    assert_eq!(keys, ["1-0", "3-0", "4-0", "5-0"]);
    engine.stop().await;
    cleanup(&names).await;
}

#[tokio::test]
async fn without_an_engine_a_command_times_out_and_is_applied_once_later() {
    let names = random_names();
    let db = TestDatabase::create().await.expect("database");
    let client = client(&names, Duration::from_millis(700)).await;
    let alice = user(7);
    let create = cmd("only-once", Command::CreateAccount { user_id: alice });

    let started = std::time::Instant::now();
    assert_eq!(client.send(create.clone()).await, Err(BusError::Timeout));
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(matches!(
        client.query(Query::GetAccount { user_id: alice }).await,
        Err(BusError::Unavailable(_))
    ));
    // The retry is deduplicated by JetStream; without an engine it times out as well.
    assert_eq!(client.send(create.clone()).await, Err(BusError::Timeout));

    let engine = EngineTask::start(test_settings(&names, &db));
    let slow = client_with_patience(&names).await;
    let reply = slow.send(create).await.expect("retry with an engine");
    assert!(matches!(
        reply,
        Reply::Accepted(Accepted::AccountCreated { .. })
    ));
    let again = slow
        .send(cmd("other-id", Command::CreateAccount { user_id: alice }))
        .await
        .expect("another create");
    assert!(matches!(again, Reply::Rejected(ref r) if r.code == RejectCode::AccountExists));
    assert_eq!(all_events(&names, 1).await.len(), 1);
    engine.stop().await;
    cleanup(&names).await;
}

async fn client_with_patience(names: &bus::Names) -> bus::nats::EngineClient {
    client(names, Duration::from_secs(15)).await
}

/// The engine's ETH quote, if it has one.
async fn eth_quote(client: &bus::nats::EngineClient) -> Option<bus::PriceTick> {
    match client.query(Query::GetPrices).await.expect("prices") {
        QueryReply::Prices { quotes } => quotes.into_iter().find(|q| q.asset == Asset::Eth),
        other => panic!("{other:?}"),
    }
}

/// A production engine (the service's default settings) refuses a simulated tick: no quote,
/// nothing to trade on. A real tick is a price for `price_stale_after_ms` of log time; an open
/// logged later than that is refused `price_stale`, one right after a fresh tick is not.
#[tokio::test]
async fn a_production_engine_refuses_simulated_ticks_and_stale_prices() {
    let names = random_names();
    let db = TestDatabase::create().await.expect("database");
    let client = client_with_patience(&names).await;
    let mut settings = test_settings(&names, &db);
    assert!(
        !settings.engine.allow_simulated_prices,
        "production default"
    );
    settings.engine.price_stale_after_ms = 1_500;
    let engine = EngineTask::start(settings);
    let alice = user(11);
    let created = client
        .send(cmd("create", Command::CreateAccount { user_id: alice }))
        .await
        .expect("create");
    assert!(matches!(created, Reply::Accepted(_)));

    let mut simulated = tick(Asset::Eth, "3000.00", "3000.25");
    simulated.simulated = true;
    client.publish_tick(&simulated).await.expect("tick");
    // The log is ordered: once the BTC tick behind it is applied, the simulated one was seen.
    client
        .publish_tick(&tick(Asset::Btc, "65000.00", "65000.50"))
        .await
        .expect("tick");
    let open_eth = |id: &str| cmd(id, open(alice, Asset::Eth, Side::Buy, "1", 10));
    let refused = client.send(open_eth("eth-1")).await.expect("open");
    assert!(
        matches!(refused, Reply::Rejected(ref r) if r.code == RejectCode::NoPrice),
        "{refused:?}"
    );
    assert_eq!(eth_quote(&client).await, None);

    // A real ETH tick, then an open logged more than 1.5 s after it: stale.
    client
        .publish_tick(&tick(Asset::Eth, "3000.00", "3000.25"))
        .await
        .expect("tick");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while eth_quote(&client).await.is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "the tick never applied"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(2_000)).await;
    let stale = client.send(open_eth("eth-2")).await.expect("open");
    let Reply::Rejected(rejection) = stale else {
        panic!("a stale price traded: {stale:?}");
    };
    assert_eq!(rejection.code, RejectCode::PriceStale);
    assert!(
        rejection.message.contains("the limit is 1500 ms"),
        "{rejection}"
    );

    // Right after a fresh tick the open goes through (retried with new ticks, should this
    // machine be so loaded that 1.5 s pass between the two).
    let mut opened = None;
    for attempt in 0..10 {
        client
            .publish_tick(&tick(Asset::Eth, "3001.00", "3001.25"))
            .await
            .expect("tick");
        let reply = client
            .send(open_eth(&format!("eth-fresh-{attempt}")))
            .await
            .expect("open");
        match reply {
            Reply::Rejected(r) if r.code == RejectCode::PriceStale => continue,
            other => {
                opened = Some(other);
                break;
            }
        }
    }
    let opened = opened.expect("an open right after a fresh tick");
    assert!(
        matches!(opened, Reply::Accepted(Accepted::PositionOpened { ref position }) if position.open_price == price("3001.25")),
        "{opened:?}"
    );
    engine.stop().await;
    cleanup(&names).await;
}
