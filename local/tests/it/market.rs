//! Market data through the runner, end to end over real sockets: the simulated feed (Binance
//! is unreachable: a closed port) publishes labelled quotes that a WebSocket client receives
//! from the hub, its trades become candles served by `GET /api/v1/candles`, `GET /assets`
//! says the prices are simulated, and the engine (production settings) refused every simulated
//! tick, so it has no price to trade on; then everything shuts down cleanly. Random prefixes,
//! fresh database, port 0.

use std::time::Duration;

use bus::feed::{FeedSettings, SourceMode};
use bus::hub::HubSettings;
use functions::candles::ingest::IngestSettings;
use futures_util::StreamExt;
use hyper::StatusCode;
use local::client::Connection;
use local::market::MarketSettings;
use local::{RunnerSettings, start};
use migrations::TestDatabase;
use serde_json::Value;
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::Message;

fn prefix() -> String {
    format!("mkt{}", &uuid::Uuid::new_v4().simple().to_string()[..10])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulated_quotes_reach_websocket_clients_and_trades_become_candles() {
    let db = TestDatabase::create().await.expect("db");
    let nats_url = std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
    let redis_url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let (bus_prefix, redis_prefix) = (prefix(), prefix());
    let names = bus::Names::new(bus_prefix.clone());
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let functions = functions::Settings {
        nats_url: nats_url.clone(),
        database_url: db.url.clone(),
        bus_prefix: bus_prefix.clone(),
        redis_url: redis_url.clone(),
        redis_prefix: redis_prefix.clone(),
        ..functions::Settings::default()
    };
    let feed = FeedSettings {
        source: SourceMode::Auto,
        binance_url: format!("ws://127.0.0.1:{closed_port}"),
        fallback_after_failures: 1,
        sim_interval: Duration::from_millis(20),
        redis_url: redis_url.clone(),
        redis_prefix: redis_prefix.clone(),
        nats_url: nats_url.clone(),
        bus_prefix: bus_prefix.clone(),
        ..FeedSettings::default()
    };
    let hub = HubSettings {
        bind: "127.0.0.1:0".into(),
        redis_url,
        redis_prefix,
        nats_url,
        bus_prefix,
        jwt_secret: functions.jwt_secret.clone(),
        ..HubSettings::default()
    };
    let mut engine = engine::service::Settings::local();
    engine.nats_url = functions.nats_url.clone();
    engine.database_url = db.url.clone();
    engine.names = names.clone();
    let settings = RunnerSettings {
        http_addr: "127.0.0.1:0".parse().expect("addr"),
        functions,
        engine: Some(engine),
        market: Some(MarketSettings {
            feed: Some(feed),
            hub: Some(hub),
            candles: Some(IngestSettings {
                max_wait: Duration::from_millis(50),
                ..IngestSettings::default()
            }),
        }),
        persist: true,
        alerts: false,
        web: None,
        http: local::serve::HttpLimits::default(),
    };
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let running = start(settings, async move {
        let _ = stop_rx.await;
    })
    .await
    .expect("runner starts");
    let ws_addr = running.ws_addr.expect("the hub runs");

    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{ws_addr}"))
        .await
        .expect("ws connect");
    let mut seen = std::collections::HashSet::new();
    while seen.len() < 3 {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a quote within 10 s")
            .expect("open")
            .expect("ok");
        let Message::Text(text) = msg else { continue };
        let q: Value = serde_json::from_str(&text).expect("json");
        assert_eq!(q["type"], "quote");
        assert_eq!(q["simulated"], true, "{q}");
        seen.insert(q["asset"].as_str().expect("asset").to_string());
    }

    let mut http = Connection::open(running.http_addr).await.expect("http");
    let mut candles = Value::Null;
    for _ in 0..250 {
        let (status, body) = http
            .get("/api/v1/candles?asset=BTC&interval=1m", None)
            .await
            .expect("candles");
        assert_eq!(status, StatusCode::OK);
        if body["candles"].as_array().is_some_and(|c| !c.is_empty()) {
            candles = body;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let candle = &candles["candles"][0];
    // `/assets` says the prices are simulated.
    let (status, body) = http.get("/api/v1/assets", None).await.expect("assets");
    assert_eq!(status, StatusCode::OK);
    let flags: Vec<&Value> = body["assets"]
        .as_array()
        .expect("assets")
        .iter()
        .map(|a| &a["simulated"])
        .collect();
    assert_eq!(flags, [&Value::Bool(true); 3], "{body}");
    // The engine refused every simulated tick (the log holds them: checked below).
    let bids: Vec<&Value> = body["assets"]
        .as_array()
        .expect("assets")
        .iter()
        .map(|a| &a["bid"])
        .collect();
    assert_eq!(bids, [&Value::Null; 3], "{body}");
    assert!(candle["trades"].as_i64().expect("trades") >= 1, "{candles}");
    assert!(candle["time"].as_i64().expect("time") % 60 == 0);
    drop(http);

    stop_tx.send(()).expect("runner still running");
    let stopped = tokio::time::timeout(Duration::from_secs(15), running.wait()).await;
    assert!(matches!(stopped, Ok(Ok(()))), "clean shutdown: {stopped:?}");
    assert!(
        tokio::net::TcpStream::connect(ws_addr).await.is_err(),
        "the WebSocket port is closed after shutdown"
    );
    let nats_url = std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
    let js = async_nats::jetstream::new(async_nats::connect(nats_url).await.expect("nats"));
    let mut log = js.get_stream(names.engine_stream()).await.expect("ENGINE");
    let last = log.info().await.expect("info").state.last_sequence;
    let mut simulated_ticks = 0;
    for seq in 1..=last {
        let Ok(msg) = log.get_raw_message(seq).await else {
            continue;
        };
        let input = bus::Envelope::<bus::EngineInput>::decode(&msg.payload).expect("an input");
        if let bus::EngineInput::PriceTick(t) = input.body {
            assert!(t.simulated, "{t:?}");
            simulated_ticks += 1;
        }
    }
    assert!(simulated_ticks > 0, "the feed logged its ticks");
    for stream in [
        names.engine_stream(),
        names.events_stream(),
        names.trades_stream(),
    ] {
        let _ = js.delete_stream(&stream).await;
    }
}
