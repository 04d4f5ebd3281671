//! End to end through real sockets: the local runner started in-process (port 0, random
//! prefix, fresh database); a user signs up, signs in, opens, closes, and finds the closed
//! position in `GET /trade/closed`; then the runner shuts down cleanly. And the HTTP server's
//! bounds: idle and half-sent connections are closed by the header timeout while others are
//! served, and connections over the cap are answered 503 until capacity comes back.

use std::time::{Duration, Instant};

use bus::nats::EngineClient;
use bus::{Asset, Names, PriceTick, Query, QueryReply};
use hyper::StatusCode;
use local::client::Connection;
use local::{RunnerSettings, start};
use migrations::TestDatabase;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
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
        http: local::serve::HttpLimits::default(),
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

/// A runner with no engine, persist or market: only the HTTP server under test.
async fn http_only(
    db: &TestDatabase,
    limits: local::serve::HttpLimits,
) -> (RunnerSettings, local::Running, oneshot::Sender<()>) {
    let mut settings = settings(db);
    settings.engine = None;
    settings.persist = false;
    settings.http = limits;
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let running = start(settings.clone(), async move {
        let _ = stop_rx.await;
    })
    .await
    .expect("runner starts");
    (settings, running, stop_tx)
}

/// Reads until the server closes the connection (EOF or reset); how long that took.
async fn closed_after(mut tcp: TcpStream, since: Instant, within: Duration) -> Option<Duration> {
    let mut buf = [0u8; 1024];
    let read_all = async {
        loop {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => return since.elapsed(),
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(within, read_all).await.ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_half_sent_requests_are_closed_by_the_header_timeout_while_others_are_served() {
    const IDLE: usize = 1000;
    let db = TestDatabase::create().await.expect("db");
    let header_timeout = Duration::from_secs(2);
    let limits = local::serve::HttpLimits {
        header_timeout,
        ..local::serve::HttpLimits::default()
    };
    let (settings, running, stop) = http_only(&db, limits).await;
    let addr = running.http_addr;
    let start = Instant::now();
    let mut idle = Vec::with_capacity(IDLE);
    for i in 0..IDLE {
        let mut tcp = TcpStream::connect(addr).await.expect("connect");
        // Half a request head (every other one sends nothing at all); never the blank line.
        if i % 2 == 0 {
            tcp.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
                .await
                .expect("half a head");
        }
        idle.push(tcp);
    }
    let opened = start.elapsed();
    // Meanwhile, a normal client is served.
    let mut http = Connection::open(addr).await.expect("connect");
    let (status, _) = http.get("/metrics", None).await.expect("metrics");
    assert_eq!(status, StatusCode::OK, "a normal client is served");
    drop(http);
    let closes = idle
        .into_iter()
        .map(|tcp| tokio::spawn(closed_after(tcp, start, Duration::from_secs(60))));
    let mut slowest = Duration::ZERO;
    for close in closes {
        let took = close.await.expect("task").expect("closed by the server");
        slowest = slowest.max(took);
    }
    eprintln!(
        "{IDLE} idle connections opened in {opened:?}; all closed {slowest:?} after the first \
         (header timeout {header_timeout:?})"
    );
    // Each one is closed about `header_timeout` after it connected; none outlives it by much.
    assert!(
        slowest < opened + header_timeout + Duration::from_secs(10),
        "slowest close {slowest:?}"
    );
    // And the server still serves.
    let mut http = Connection::open(addr).await.expect("connect");
    let (status, _) = http.get("/metrics", None).await.expect("metrics");
    assert_eq!(status, StatusCode::OK);
    drop(http);
    stop.send(()).expect("running");
    let stopped = tokio::time::timeout(Duration::from_secs(10), running.wait()).await;
    assert!(matches!(stopped, Ok(Ok(()))), "clean shutdown: {stopped:?}");
    delete_streams(&settings).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_cap_get_503_and_capacity_comes_back() {
    let db = TestDatabase::create().await.expect("db");
    let limits = local::serve::HttpLimits {
        max_connections: 3,
        ..local::serve::HttpLimits::default()
    };
    let (settings, running, stop) = http_only(&db, limits).await;
    let addr = running.http_addr;
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut conn = Connection::open(addr).await.expect("connect");
        let (status, _) = conn.get("/metrics", None).await.expect("metrics");
        assert_eq!(status, StatusCode::OK);
        held.push(conn);
    }
    // Over the cap: an answer, not a silent drop or a hang.
    let mut over = Connection::open(addr).await.expect("connect");
    let sent = over.exchange(hyper::Method::GET, "/metrics", None, &[], None);
    let (status, headers, body) = tokio::time::timeout(Duration::from_secs(10), sent)
        .await
        .expect("answered at once")
        .expect("an HTTP answer");
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"]["code"], "unavailable");
    assert_eq!(headers["retry-after"], "1");
    drop(over);
    // Capacity comes back once the held connections close.
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut conn = Connection::open(addr).await.expect("connect");
        let (status, _) = conn.get("/metrics", None).await.expect("an answer");
        if status == StatusCode::OK {
            break;
        }
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(Instant::now() < deadline, "capacity never came back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.send(()).expect("running");
    let stopped = tokio::time::timeout(Duration::from_secs(10), running.wait()).await;
    assert!(matches!(stopped, Ok(Ok(()))), "clean shutdown: {stopped:?}");
    delete_streams(&settings).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_never_finishes_gets_408_at_the_request_timeout() {
    let db = TestDatabase::create().await.expect("db");
    let limits = local::serve::HttpLimits {
        request_timeout: Duration::from_millis(500),
        ..local::serve::HttpLimits::default()
    };
    let (settings, running, stop) = http_only(&db, limits).await;
    let mut tcp = TcpStream::connect(running.http_addr)
        .await
        .expect("connect");
    let sent = Instant::now();
    tcp.write_all(
        b"POST /api/v1/auth/signin HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n\
          content-length: 100\r\n\r\n{\"email\":",
    )
    .await
    .expect("a head and a tenth of the body");
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut answer))
        .await
        .expect("answered and closed in time")
        .expect("read");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains(r#""code":"request_timeout""#), "{answer}");
    assert!(sent.elapsed() >= Duration::from_millis(500));
    stop.send(()).expect("running");
    let stopped = tokio::time::timeout(Duration::from_secs(10), running.wait()).await;
    assert!(matches!(stopped, Ok(Ok(()))), "clean shutdown: {stopped:?}");
    delete_streams(&settings).await;
}
