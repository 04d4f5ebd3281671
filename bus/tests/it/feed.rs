//! The price feed against a local WebSocket server that speaks Binance's combined-stream JSON:
//! quotes widened into Redis (pub/sub and latest keys), conflated ticks in `ENGINE`, trades in
//! `TRADES`, a ping answered with a pong, and a dropped connection followed by a reconnect.
//! Real Redis and NATS, random prefixes, port 0.

use std::str::FromStr;
use std::time::Duration;

use bus::feed::{self, FeedHealth, FeedSettings, SourceMode, SpreadTable};
use bus::nats::{StreamSettings, ensure_streams};
use bus::{Asset, EngineInput, Envelope, MarketQuote, Names, PriceKeys, PriceTick, Trade};
use futures_util::{SinkExt, StreamExt};
use rust_decimal::Decimal;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::{Bytes, Message};

fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

fn nats_url() -> String {
    std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

fn prefix() -> String {
    format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

fn book(symbol: &str, u: u64, bid: &str, ask: &str) -> Message {
    let stream = format!("{}@bookTicker", symbol.to_ascii_lowercase());
    Message::text(format!(
        r#"{{"stream":"{stream}","data":{{"u":{u},"s":"{symbol}","b":"{bid}","B":"1.50000000","a":"{ask}","A":"2.25000000"}}}}"#
    ))
}

fn trade(symbol: &str, id: u64, price: &str, qty: &str, time: i64) -> Message {
    let stream = format!("{}@trade", symbol.to_ascii_lowercase());
    Message::text(format!(
        r#"{{"stream":"{stream}","data":{{"e":"trade","E":{time},"s":"{symbol}","t":{id},"p":"{price}","q":"{qty}","T":{time},"m":true,"M":true}}}}"#
    ))
}

/// What the fake Binance saw: the request paths and the pong payloads.
struct Seen {
    paths: Vec<String>,
    pongs: Vec<Bytes>,
}

/// Connection 1: a burst of 30 BTC quotes, a trade, a ping; then the TCP connection is
/// dropped without a close frame. Connection 2: ETH and a last BTC quote, then stays open.
#[allow(clippy::result_large_err)] // the handshake callback signature is tungstenite's
async fn fake_binance(listener: TcpListener, seen: oneshot::Sender<Seen>) {
    let mut paths = Vec::new();
    let mut pongs = Vec::new();
    for round in 0..2 {
        let (tcp, _) = listener.accept().await.expect("accept");
        let (path_tx, mut path_rx) = mpsc::unbounded_channel();
        let callback = move |req: &tokio_tungstenite::tungstenite::handshake::server::Request,
                             resp| {
            let _ = path_tx.send(req.uri().to_string());
            Ok(resp)
        };
        let mut ws = tokio_tungstenite::accept_hdr_async(tcp, callback)
            .await
            .expect("handshake");
        paths.push(path_rx.recv().await.expect("path"));
        if round == 0 {
            for i in 0..30u64 {
                let bid = format!("{}.00000000", 65_000 + i);
                let ask = format!("{}.50000000", 65_000 + i);
                ws.send(book("BTCUSDT", i, &bid, &ask)).await.expect("send");
            }
            ws.send(trade(
                "BTCUSDT",
                777,
                "65000.50",
                "0.125",
                1_700_000_000_000,
            ))
            .await
            .expect("send");
            ws.send(Message::Ping(Bytes::from_static(b"binance-ping-42")))
                .await
                .expect("ping");
            let pong = tokio::time::timeout(Duration::from_secs(5), async {
                loop {
                    match ws.next().await {
                        Some(Ok(Message::Pong(p))) => return p,
                        Some(Ok(_)) => continue,
                        other => panic!("connection ended before a pong: {other:?}"),
                    }
                }
            })
            .await
            .expect("a pong within 5 s");
            pongs.push(pong);
            drop(ws); // dropped connection: no close frame
        } else {
            ws.send(book("ETHUSDT", 1, "3200.10", "3200.30"))
                .await
                .expect("send");
            tokio::time::sleep(Duration::from_millis(250)).await;
            ws.send(book("BTCUSDT", 99, "66000.00", "66000.10"))
                .await
                .expect("send");
            let _ = seen.send(Seen { paths, pongs });
            // Keep the connection open until the feed hangs up.
            while let Some(Ok(_)) = ws.next().await {}
            return;
        }
    }
}

/// Removes the streams a test created (they would pile up on the shared server).
async fn delete_streams(js: &async_nats::jetstream::Context, names: &Names) {
    for stream in [
        names.engine_stream(),
        names.events_stream(),
        names.trades_stream(),
    ] {
        let _ = js.delete_stream(&stream).await;
    }
}

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).expect("decimal")
}

async fn engine_ticks(js: &async_nats::jetstream::Context, names: &Names) -> Vec<PriceTick> {
    let mut stream = js.get_stream(names.engine_stream()).await.expect("stream");
    let last = stream.info().await.expect("info").state.last_sequence;
    let mut ticks = Vec::new();
    for seq in 1..=last {
        let Ok(msg) = stream.get_raw_message(seq).await else {
            continue;
        };
        let env = Envelope::<EngineInput>::decode(&msg.payload).expect("an engine input");
        if let EngineInput::PriceTick(t) = env.body {
            ticks.push(t);
        }
    }
    ticks
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binance_quotes_reach_redis_engine_and_trades_through_a_reconnect() {
    let (redis_prefix, bus_prefix) = (prefix(), prefix());
    let names = Names::new(bus_prefix.clone());
    let keys = PriceKeys::new(redis_prefix.clone());
    let nats = async_nats::connect(nats_url()).await.expect("nats");
    let js = async_nats::jetstream::new(nats.clone());
    ensure_streams(&js, &names, &StreamSettings::default())
        .await
        .expect("streams");

    let redis = redis::Client::open(redis_url()).expect("redis url");
    let mut pubsub = redis.get_async_pubsub().await.expect("pubsub");
    pubsub
        .subscribe(keys.all_channel())
        .await
        .expect("subscribe");

    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (seen_tx, seen_rx) = oneshot::channel();
    let server = tokio::spawn(fake_binance(listener, seen_tx));

    let settings = FeedSettings {
        source: SourceMode::Binance,
        binance_url: format!("ws://127.0.0.1:{port}"),
        spreads: SpreadTable::new([d("5"), d("10"), d("5")], [2, 2, 3]),
        redis_url: redis_url(),
        redis_prefix: redis_prefix.clone(),
        nats_url: nats_url(),
        bus_prefix,
        backoff_base: Duration::from_millis(50),
        backoff_max: Duration::from_millis(200),
        ..FeedSettings::default()
    };
    let health = FeedHealth::default();
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let feed = tokio::spawn(feed::run_with_health(settings, health.clone(), async {
        let _ = stop_rx.await;
    }));

    let seen = tokio::time::timeout(Duration::from_secs(15), seen_rx)
        .await
        .expect("the feed reconnected in time")
        .expect("server report");
    // Let the last quotes flow through Redis, the conflaters and the trade publisher.
    let mut quotes: Vec<MarketQuote> = Vec::new();
    let mut messages = pubsub.on_message();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !quotes
        .iter()
        .any(|q| q.asset == Asset::Btc && q.bid.value() == d("65967.00"))
    {
        let msg = tokio::time::timeout_at(deadline, messages.next())
            .await
            .expect("the last BTC quote on Redis")
            .expect("pubsub open");
        let payload: String = msg.get_payload().expect("text");
        quotes.push(serde_json::from_str(&payload).expect("a quote"));
    }
    drop(messages);
    tokio::time::sleep(Duration::from_millis(300)).await;

    // The fake server saw the combined-stream path twice and got its ping's payload back.
    assert_eq!(seen.paths.len(), 2);
    assert!(seen.paths[0].starts_with("/stream?streams=btcusdt@bookTicker/btcusdt@trade/"));
    assert_eq!(seen.pongs, vec![Bytes::from_static(b"binance-ping-42")]);

    // Latest quotes in Redis: widened by the markup and rounded outward.
    // BTC 66000.00 × 0.9995 = 65967.00, 66000.10 × 1.0005 = 66033.1005 -> 66033.11.
    // ETH (10 bps) 3200.10 × 0.999 = 3196.8999 -> 3196.89; 3200.30 × 1.001 = 3203.5003 -> 3203.51.
    let mut conn = redis
        .get_multiplexed_async_connection()
        .await
        .expect("conn");
    let latest = bus::prices::latest_quotes(&mut conn, &keys)
        .await
        .expect("latest");
    let btc = latest
        .iter()
        .find(|q| q.asset == Asset::Btc)
        .expect("BTC latest");
    let eth = latest
        .iter()
        .find(|q| q.asset == Asset::Eth)
        .expect("ETH latest");
    assert_eq!(
        (btc.bid.value(), btc.ask.value()),
        (d("65967.00"), d("66033.11"))
    );
    assert_eq!(
        (eth.bid.value(), eth.ask.value()),
        (d("3196.89"), d("3203.51"))
    );
    assert!(!btc.simulated && !eth.simulated);
    assert!(latest.iter().all(|q| q.asset != Asset::Sol));
    // Every distinct quote was published: 30 BTC from the burst, then ETH and the last BTC.
    assert_eq!(quotes.iter().filter(|q| q.asset == Asset::Btc).count(), 31);
    assert_eq!(quotes.iter().filter(|q| q.asset == Asset::Eth).count(), 1);

    // ENGINE got conflated ticks: far fewer than the 31 BTC quotes, the newest last.
    let ticks = engine_ticks(&js, &names).await;
    let btc_ticks: Vec<&PriceTick> = ticks.iter().filter(|t| t.asset == Asset::Btc).collect();
    assert!(
        (2..=6).contains(&btc_ticks.len()),
        "{} BTC ticks for 31 quotes",
        btc_ticks.len()
    );
    let newest = btc_ticks.last().expect("a BTC tick");
    assert_eq!(
        (newest.bid.value(), newest.ask.value()),
        (d("65967.00"), d("66033.11"))
    );
    assert_eq!(ticks.iter().filter(|t| t.asset == Asset::Eth).count(), 1);

    // The trade went into TRADES.
    let trades = js.get_stream(names.trades_stream()).await.expect("TRADES");
    let msg = trades.get_raw_message(1).await.expect("one trade");
    let trade = Envelope::<Trade>::decode(&msg.payload)
        .expect("a trade")
        .body;
    assert_eq!(
        (trade.asset, trade.id, trade.ts),
        (Asset::Btc, 777, 1_700_000_000_000)
    );
    assert_eq!(trade.price.value(), d("65000.50"));
    assert_eq!(trade.quantity.value(), d("0.125"));

    let report = health.report();
    assert_eq!(report.source, "binance");
    assert!(report.connected && !report.stale);
    assert!(report.reconnects >= 1);

    let _ = stop_tx.send(());
    tokio::time::timeout(Duration::from_secs(10), feed)
        .await
        .expect("feed stops")
        .expect("join")
        .expect("clean stop");
    server.await.expect("server ends");
    delete_streams(&js, &names).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_binance_falls_back_to_a_labelled_simulation() {
    let (redis_prefix, bus_prefix) = (prefix(), prefix());
    let names = Names::new(bus_prefix.clone());
    let keys = PriceKeys::new(redis_prefix.clone());
    let nats = async_nats::connect(nats_url()).await.expect("nats");
    let js = async_nats::jetstream::new(nats.clone());
    ensure_streams(&js, &names, &StreamSettings::default())
        .await
        .expect("streams");
    // A port with nobody listening.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let settings = FeedSettings {
        source: SourceMode::Auto,
        binance_url: format!("ws://127.0.0.1:{port}"),
        redis_url: redis_url(),
        redis_prefix,
        nats_url: nats_url(),
        bus_prefix,
        fallback_after_failures: 2,
        backoff_base: Duration::from_millis(20),
        sim_interval: Duration::from_millis(20),
        ..FeedSettings::default()
    };
    let health = FeedHealth::default();
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let feed = tokio::spawn(feed::run_with_health(settings, health.clone(), async {
        let _ = stop_rx.await;
    }));
    let redis = redis::Client::open(redis_url()).expect("redis url");
    let mut conn = redis
        .get_multiplexed_async_connection()
        .await
        .expect("conn");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let latest = loop {
        let latest = bus::prices::latest_quotes(&mut conn, &keys)
            .await
            .expect("latest");
        if latest.len() == 3 {
            break latest;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no simulated quotes"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(latest.iter().all(|q| q.simulated && q.bid < q.ask));
    assert_eq!(health.report().source, "simulated");
    let _ = stop_tx.send(());
    feed.await.expect("join").expect("clean stop");
    assert!(!engine_ticks(&js, &names).await.is_empty());
    delete_streams(&js, &names).await;
}

/// Production settings (no `APP_ENV`, the default source) with Binance unreachable: the feed
/// keeps trying Binance, reports itself unhealthy and publishes nothing — no quote in Redis,
/// no tick in `ENGINE` — however many attempts fail (no fallback to the simulation).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outside_local_mode_an_unreachable_binance_means_no_prices_at_all() {
    let (redis_prefix, bus_prefix) = (prefix(), prefix());
    let names = Names::new(bus_prefix.clone());
    let keys = PriceKeys::new(redis_prefix.clone());
    let nats = async_nats::connect(nats_url()).await.expect("nats");
    let js = async_nats::jetstream::new(nats.clone());
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let binance = format!("ws://127.0.0.1:{port}");
    let env = bus::settings::Env::from_pairs([
        ("BINANCE_WS_URL", binance.as_str()),
        ("REDIS_URL", redis_url().as_str()),
        ("REDIS_PREFIX", redis_prefix.as_str()),
        ("NATS_URL", nats_url().as_str()),
        ("ENGINE_PREFIX", bus_prefix.as_str()),
        ("FEED_FALLBACK_AFTER", "1"),
    ]);
    let mut settings = FeedSettings::from_vars(&env).expect("production settings read");
    assert_eq!(settings.source, SourceMode::Binance);
    // Fast retries, so the test sees many more failures than the fallback threshold.
    settings.backoff_base = Duration::from_millis(20);
    settings.backoff_max = Duration::from_millis(50);
    settings.sim_interval = Duration::from_millis(20);
    let health = FeedHealth::default();
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let feed = tokio::spawn(feed::run_with_health(settings, health.clone(), async {
        let _ = stop_rx.await;
    }));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while health.report().reconnects < 10 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the feed stopped retrying: {:?}",
            health.report()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let report = health.report();
    assert!(!report.healthy(), "{report:?}");
    assert_eq!((report.source, report.simulated), ("binance", false));
    assert_eq!((report.quotes_published, report.ticks_published), (0, 0));
    let redis = redis::Client::open(redis_url()).expect("redis url");
    let mut conn = redis
        .get_multiplexed_async_connection()
        .await
        .expect("conn");
    let latest = bus::prices::latest_quotes(&mut conn, &keys)
        .await
        .expect("latest");
    assert!(latest.is_empty(), "{latest:?}");
    let _ = stop_tx.send(());
    feed.await.expect("join").expect("clean stop");
    assert!(engine_ticks(&js, &names).await.is_empty());
    delete_streams(&js, &names).await;
}
