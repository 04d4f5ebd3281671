//! Observability through a running runner (in-process, port 0, random prefixes, fresh
//! database): its `/metrics` counters move by exactly what a few trades and one WebSocket
//! client did, and one request id is followed from the HTTP response into the engine's and
//! persist's log lines (logs captured as JSON by the test's own subscriber).
//!
//! The two tests share the process's metrics recorder and log subscriber, so they run one at
//! a time (`SERIAL`).

#[path = "observe/support.rs"]
mod observe_support;

use std::time::{Duration, Instant};

use bus::hub::HubSettings;
use bus::nats::EngineClient;
use bus::{Asset, Names, PriceTick, Query, QueryReply};
use futures_util::{SinkExt, StreamExt};
use hyper::{Method, StatusCode};
use local::client::Connection;
use local::market::MarketSettings;
use local::{RunnerSettings, Running, start};
use migrations::TestDatabase;
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::Message;

use observe_support::{logs, scrape, value};

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn prefix(what: &str) -> String {
    format!("{what}{}", &uuid::Uuid::new_v4().simple().to_string()[..10])
}

/// A runner with the engine, persist and the WebSocket hub (no price feed: the test logs
/// its own quote, so nothing else moves the counters).
async fn runner(db: &TestDatabase) -> (Running, RunnerSettings, oneshot::Sender<()>) {
    let nats_url = std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
    let redis_url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let (bus_prefix, redis_prefix) = (prefix("obs"), prefix("obs"));
    let functions = functions::Settings {
        nats_url: nats_url.clone(),
        database_url: db.url.clone(),
        bus_prefix: bus_prefix.clone(),
        redis_url: redis_url.clone(),
        redis_prefix: redis_prefix.clone(),
        ..functions::Settings::default()
    };
    let hub = HubSettings {
        bind: "127.0.0.1:0".into(),
        redis_url,
        redis_prefix,
        nats_url: nats_url.clone(),
        bus_prefix: bus_prefix.clone(),
        jwt_secret: functions.jwt_secret.clone(),
        ..HubSettings::default()
    };
    let mut engine = engine::service::Settings::local();
    engine.nats_url = nats_url;
    engine.database_url = db.url.clone();
    engine.names = Names::new(bus_prefix);
    let settings = RunnerSettings {
        http_addr: "127.0.0.1:0".parse().expect("addr"),
        functions,
        engine: Some(engine),
        market: Some(MarketSettings {
            feed: None,
            hub: Some(hub),
            candles: None,
        }),
        persist: true,
        alerts: false,
        web: None,
        http: local::serve::HttpLimits::default(),
    };
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let running = start(settings.clone(), async move {
        let _ = stop_rx.await;
    })
    .await
    .expect("runner starts");
    (running, settings, stop_tx)
}

/// Waits until `/readyz` says every part is ready (engine lease, hub consumer, NATS, PG).
async fn until_ready(http: &mut Connection) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, body) = http.get("/readyz", None).await.expect("readyz");
        if status == StatusCode::OK {
            assert_eq!(body["status"], "ready");
            let names: Vec<&str> = body["checks"]
                .as_array()
                .expect("checks")
                .iter()
                .filter_map(|c| c["name"].as_str())
                .collect();
            assert_eq!(names, ["nats", "postgres", "lease", "serving", "events"]);
            return;
        }
        assert!(Instant::now() < deadline, "never ready: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Logs a BTC quote and waits until the engine has it.
async fn tick(settings: &RunnerSettings) {
    let nats = async_nats::connect(&settings.functions.nats_url)
        .await
        .expect("nats");
    let names = Names::new(settings.functions.bus_prefix.clone());
    let engine = EngineClient::new(nats, names, Duration::from_secs(5));
    let tick = PriceTick {
        asset: Asset::Btc,
        bid: "60000.00".parse().expect("bid"),
        ask: "60010.00".parse().expect("ask"),
        ts: 0,
        simulated: false,
    };
    for _ in 0..250 {
        let _ = engine.publish_tick(&tick).await;
        if let Ok(QueryReply::Prices { quotes }) = engine.query(Query::GetPrices).await
            && quotes.iter().any(|q| q.asset == Asset::Btc)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the engine never took the tick");
}

async fn sign_up(http: &mut Connection, email: &str) -> String {
    let creds = json!({ "email": email, "password": "correct horse battery" });
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
    body["token"].as_str().expect("token").to_string()
}

async fn stop(running: Running, stop_tx: oneshot::Sender<()>, settings: &RunnerSettings) {
    stop_tx.send(()).expect("runner still running");
    let stopped = tokio::time::timeout(Duration::from_secs(15), running.wait()).await;
    assert!(matches!(stopped, Ok(Ok(()))), "clean shutdown: {stopped:?}");
    let names = Names::new(settings.functions.bus_prefix.clone());
    if let Ok(nats) = async_nats::connect(&settings.functions.nats_url).await {
        let js = async_nats::jetstream::new(nats);
        let lock = format!("KV_{}", engine::service::lock_bucket_name(&names));
        for stream in [
            names.engine_stream(),
            names.events_stream(),
            names.dead_letter_stream(),
            lock,
        ] {
            let _ = js.delete_stream(&stream).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_exactly_what_trades_and_a_websocket_client_did() {
    let _serial = SERIAL.lock().await;
    logs();
    let db = TestDatabase::create().await.expect("db");
    let (running, settings, stop_tx) = runner(&db).await;
    let mut http = Connection::open(running.http_addr).await.expect("http");
    until_ready(&mut http).await;
    tick(&settings).await;
    let token = sign_up(&mut http, "metrics@example.com").await;
    let addr = running.http_addr;
    // The account's event is persisted before counting starts.
    let deadline = Instant::now() + Duration::from_secs(20);
    let before = loop {
        let before = scrape(addr).await;
        if value(&before, "persist_written_total", &[]) >= 1.0 {
            break before;
        }
        assert!(Instant::now() < deadline, "persist never wrote the account");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    let ws_addr = running.ws_addr.expect("the hub runs");
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{ws_addr}"))
        .await
        .expect("ws connect");
    let auth = json!({ "op": "auth", "token": token }).to_string();
    ws.send(Message::text(auth)).await.expect("auth");
    let t = Some(token.as_str());
    let open = json!({ "asset": "BTC", "side": "buy", "quantity": "0.01", "leverage": 10 });
    let mut ids = Vec::new();
    let mut received = Vec::new();
    // Trade only once authenticated, so every event of these trades is the client's.
    while !received
        .iter()
        .any(|m: &Value| m["type"] == "authenticated")
    {
        received.push(next_json(&mut ws).await);
    }
    for _ in 0..2 {
        let (status, body) = http
            .post("/api/v1/trade/open", t, &open)
            .await
            .expect("open");
        assert_eq!(status, StatusCode::CREATED, "{body}");
        ids.push(body["position"]["id"].clone());
    }
    let close = json!({ "positionId": ids[0] });
    let (status, body) = http
        .post("/api/v1/trade/close", t, &close)
        .await
        .expect("close");
    assert_eq!(status, StatusCode::OK, "{body}");
    while received.iter().filter(|m| m["type"] == "event").count() < 3 {
        received.push(next_json(&mut ws).await);
    }

    // The hub counts a batch once it is written, a moment after the client has it.
    let sent = received.len() as f64;
    let deadline = Instant::now() + Duration::from_secs(20);
    let after = loop {
        let after = scrape(addr).await;
        let moved = |name: &str| value(&after, name, &[]) - value(&before, name, &[]);
        if moved("hub_messages_sent_total") >= sent && moved("persist_written_total") >= 3.0 {
            break after;
        }
        assert!(Instant::now() < deadline, "the counters never caught up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let moved = |name: &str, labels: &[(&str, &str)]| {
        value(&after, name, labels) - value(&before, name, labels)
    };
    let http_route = |route: &'static str, status: &'static str| {
        moved(
            "http_requests_total",
            &[("route", route), ("method", "POST"), ("status", status)],
        )
    };
    assert_eq!(http_route("/api/v1/trade/open", "201"), 2.0);
    assert_eq!(http_route("/api/v1/trade/close", "200"), 1.0);
    let open_latency = [("route", "/api/v1/trade/open"), ("method", "POST")];
    assert_eq!(
        moved("http_request_duration_seconds_count", &open_latency),
        2.0
    );
    let applied = |kind: &str| moved("engine_inputs_applied_total", &[("kind", kind)]);
    assert_eq!(
        (applied("open_position"), applied("close_position")),
        (2.0, 1.0)
    );
    assert_eq!(
        applied("create_account"),
        0.0,
        "the account was created before"
    );
    // Two opened, one closed: every event reached persist and the client.
    assert_eq!(moved("persist_written_total", &[]), 3.0);
    assert_eq!(moved("hub_events_delivered_total", &[]), 3.0);
    assert_eq!(moved("hub_messages_sent_total", &[]), sent);
    assert_eq!(value(&after, "hub_connections", &[]), 1.0);
    assert_eq!(value(&after, "engine_lease_held", &[]), 1.0);
    assert_eq!(value(&after, "engine_lag_inputs", &[]), 0.0);
    assert!(value(&after, "engine_last_applied_seq", &[]) >= 5.0);

    drop(ws);
    drop(http);
    stop(running, stop_tx, &settings).await;
}

async fn next_json<S>(ws: &mut S) -> Value
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a message within 10 s")
            .expect("open")
            .expect("ok");
        if let Message::Text(text) = msg {
            return serde_json::from_str(&text).expect("json");
        }
    }
}

/// The captured lines whose `request_id` field (own or of their span) is `id`.
fn lines_with(id: &str) -> Vec<Value> {
    logs()
        .lines()
        .into_iter()
        .filter(|l| l["fields"]["request_id"] == id || l["span"]["request_id"] == id)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_request_id_is_followed_from_the_response_into_the_engine_and_persist() {
    let _serial = SERIAL.lock().await;
    logs();
    let db = TestDatabase::create().await.expect("db");
    let (running, settings, stop_tx) = runner(&db).await;
    let mut http = Connection::open(running.http_addr).await.expect("http");
    until_ready(&mut http).await;
    tick(&settings).await;
    let token = sign_up(&mut http, "trace@example.com").await;
    let t = Some(token.as_str());
    let open = json!({ "asset": "BTC", "side": "sell", "quantity": "0.01", "leverage": 5 });

    // A client's id is kept and returned; without one, the answer carries a fresh one.
    let mine = format!("client-{}", uuid::Uuid::new_v4().simple());
    let header = [("x-request-id", mine.as_str())];
    let (status, headers, _) = http
        .exchange(Method::POST, "/api/v1/trade/open", t, &header, Some(&open))
        .await
        .expect("open");
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(headers["x-request-id"], mine.as_str());
    let bad = [("x-request-id", "has spaces in it")];
    let (status, headers, body) = http
        .exchange(Method::POST, "/api/v1/trade/open", t, &bad, Some(&open))
        .await
        .expect("open");
    assert_eq!(status, StatusCode::CREATED);
    let generated = headers["x-request-id"].to_str().expect("ascii").to_string();
    assert!(uuid::Uuid::parse_str(&generated).is_ok(), "{generated}");

    for id in [mine.as_str(), generated.as_str()] {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let lines = lines_with(id);
            let from = |target: &str, message: &str| {
                lines.iter().any(|l| {
                    l["target"].as_str().is_some_and(|t| t.starts_with(target))
                        && l["fields"]["message"] == message
                })
            };
            let http_line = from("tower_http", "finished processing request");
            let engine_line = from("engine::service", "command applied");
            let persist_line = from("functions::persist", "persist: event written");
            if http_line && engine_line && persist_line {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "request {id}: http {http_line}, engine {engine_line}, persist {persist_line}: {lines:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    assert!(body["position"].is_object(), "{body}");
    drop(http);
    stop(running, stop_tx, &settings).await;
}
