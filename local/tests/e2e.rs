//! End to end through real sockets: the local runner started in-process (port 0, random
//! prefix, fresh database); a user signs up, signs in, opens, closes, and finds the closed
//! position in `GET /trade/closed`; then the runner shuts down cleanly.

use std::time::Duration;

use bus::nats::EngineClient;
use bus::{Asset, Names, PriceTick, Query, QueryReply};
use hyper::StatusCode;
use local::client::Connection;
use local::{RunnerSettings, start};
use migrations::TestDatabase;
use serde_json::{Value, json};
use tokio::sync::oneshot;

fn settings(db: &TestDatabase) -> RunnerSettings {
    let nats_url = std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
    let prefix = format!("e2e{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    let functions = functions::Settings {
        nats_url: nats_url.clone(),
        database_url: db.url.clone(),
        bus_prefix: prefix.clone(),
        ..functions::Settings::default()
    };
    let mut engine = engine::service::Settings::local();
    engine.nats_url = nats_url;
    engine.database_url = db.url.clone();
    engine.names = Names::new(prefix);
    RunnerSettings {
        http_addr: "127.0.0.1:0".parse().expect("addr"),
        functions,
        engine: Some(engine),
        market: None,
        persist: true,
        alerts: false,
        web: None,
    }
}

/// Logs a quote and waits until the engine has it.
async fn tick(settings: &RunnerSettings, asset: Asset, bid: &str, ask: &str) {
    let nats = async_nats::connect(&settings.functions.nats_url)
        .await
        .expect("nats");
    let names = Names::new(settings.functions.bus_prefix.clone());
    let engine = EngineClient::new(nats, names, Duration::from_secs(5));
    let tick = PriceTick {
        asset,
        bid: bid.parse().expect("bid"),
        ask: ask.parse().expect("ask"),
        ts: 0,
        simulated: false,
    };
    for _ in 0..250 {
        // The engine may still be starting: retry until it serves and has the quote.
        let _ = engine.publish_tick(&tick).await;
        if let Ok(QueryReply::Prices { quotes }) = engine.query(Query::GetPrices).await
            && quotes.iter().any(|q| q.asset == asset)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the engine never took the tick");
}

#[tokio::test]
async fn sign_up_trade_and_find_the_closed_position_through_the_runner() {
    let db = TestDatabase::create().await.expect("db");
    let settings = settings(&db);
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let running = start(settings.clone(), async move {
        let _ = stop_rx.await;
    })
    .await
    .expect("runner starts");
    let addr = running.http_addr;
    tick(&settings, Asset::Btc, "60000.00", "60010.00").await;

    let mut http = Connection::open(addr).await.expect("connect");
    let (status, _) = http.get("/readyz", None).await.expect("readyz");
    assert_eq!(status, StatusCode::OK);
    let creds = json!({ "email": "e2e@example.com", "password": "correct horse battery" });
    let (status, body) = http
        .post("/api/v1/auth/signup", None, &creds)
        .await
        .expect("signup");
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = http
        .post("/api/v1/auth/signin", None, &creds)
        .await
        .expect("signin");
    assert_eq!(status, StatusCode::OK, "{body}");
    let token = body["token"].as_str().expect("token").to_string();
    let t = Some(token.as_str());

    let open = json!({ "asset": "BTC", "side": "buy", "quantity": "0.05", "leverage": 20 });
    let (status, body) = http
        .post("/api/v1/trade/open", t, &open)
        .await
        .expect("open");
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["position"]["id"].clone();
    let (status, body) = http
        .post("/api/v1/trade/close", t, &json!({ "positionId": id }))
        .await
        .expect("close");
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["position"]["realizedPnl"], "-0.50");

    let mut history = Value::Null;
    for _ in 0..250 {
        let (status, body) = http.get("/api/v1/trade/closed", t).await.expect("history");
        assert_eq!(status, StatusCode::OK);
        if body["positions"].as_array().is_some_and(|p| !p.is_empty()) {
            history = body;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(history["positions"][0]["id"], id, "{history}");
    assert_eq!(history["positions"][0]["closeReason"], "manual");
    drop(http);

    stop_tx.send(()).expect("runner still running");
    let stopped = tokio::time::timeout(Duration::from_secs(10), running.wait()).await;
    assert!(matches!(stopped, Ok(Ok(()))), "clean shutdown: {stopped:?}");
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "the HTTP port is closed after shutdown"
    );
    delete_streams(&settings).await;
}

/// Deletes the test's streams and the engine's lock bucket (JetStream keeps them otherwise).
async fn delete_streams(settings: &RunnerSettings) {
    let names = Names::new(settings.functions.bus_prefix.clone());
    let Ok(nats) = async_nats::connect(&settings.functions.nats_url).await else {
        return;
    };
    let js = async_nats::jetstream::new(nats);
    let lock = format!("KV_{}", engine::service::lock_bucket_name(&names));
    for stream in [names.engine_stream(), names.events_stream(), lock] {
        let _ = js.delete_stream(&stream).await;
    }
}
