//! The WebSocket hub with real WebSocket clients, real Redis and NATS (random prefixes, port 0):
//! the first snapshot, subscribe/unsubscribe, auth and private events (stop-loss and
//! liquidation closes, pending-order events reach their user, nobody else), a stalled client that neither delays a
//! healthy one nor survives, the connection cap, the per-address connect rate, and cleanup on
//! disconnect; half-sent upgrades closed at the handshake deadline, and 20,000 of them from one
//! address leaving room for a client from another.

use std::str::FromStr;
use std::time::Duration;

use bus::events::{LoggedEvent, MAX_BATCH_BYTES, encode_batches};
use bus::hub::mailbox::Limits;
use bus::hub::{self, HubSettings, HubStats};
use bus::nats::{StreamSettings, ensure_streams};
use bus::{
    Asset, CancelReason, CloseReason, ClosedPosition, Envelope, Event, Leverage, MarketQuote,
    Money, Names, Order, OrderId, OrderType, Position, PositionId, Price, PriceKeys, Quantity,
    Side, UserId,
};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::oneshot;
use tokio::time::{Instant, timeout};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Client = WebSocketStream<MaybeTlsStream<TcpStream>>;

fn env(key: &str, default: &str) -> String {
    std::env::var(key).unwrap_or_else(|_| default.into())
}

fn prefix() -> String {
    format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .expect("clock")
}

struct Hub {
    port: u16,
    stats: HubStats,
    keys: PriceKeys,
    names: Names,
    secret: String,
    redis: redis::aio::MultiplexedConnection,
    js: async_nats::jetstream::Context,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), hub::HubError>>,
}

async fn start_hub(tune: impl FnOnce(&mut HubSettings)) -> Hub {
    let (redis_prefix, bus_prefix, secret) = (prefix(), prefix(), prefix());
    let mut settings = HubSettings {
        redis_url: env("REDIS_URL", "redis://127.0.0.1:6379"),
        redis_prefix: redis_prefix.clone(),
        nats_url: env("NATS_URL", "nats://127.0.0.1:4222"),
        bus_prefix: bus_prefix.clone(),
        jwt_secret: secret.clone(),
        ..HubSettings::default()
    };
    tune(&mut settings);
    let nats = async_nats::connect(&settings.nats_url).await.expect("nats");
    let js = async_nats::jetstream::new(nats);
    let names = Names::new(bus_prefix);
    ensure_streams(&js, &names, &StreamSettings::default())
        .await
        .expect("streams");
    let redis = redis::Client::open(settings.redis_url.as_str())
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let stats = HubStats::default();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(hub::serve(listener, settings, stats.clone(), async {
        let _ = stopped.await;
    }));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !stats.report().events_ready {
        assert!(
            Instant::now() < deadline,
            "the hub's EVENTS consumer did not start"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Hub {
        port,
        stats,
        keys: PriceKeys::new(redis_prefix),
        names,
        secret,
        redis,
        js,
        stop: Some(stop),
        task,
    }
}

impl Hub {
    async fn connect(&self) -> Client {
        let url = format!("ws://127.0.0.1:{}", self.port);
        tokio_tungstenite::connect_async(url)
            .await
            .expect("connect")
            .0
    }

    async fn quote(&mut self, asset: Asset, bid: &str) -> MarketQuote {
        let bid = Price::from_str(bid).expect("bid");
        let ask = Price::new(bid.value() + rust_decimal::Decimal::ONE).expect("ask");
        let quote = MarketQuote {
            asset,
            bid,
            ask,
            ts: now_ms(),
            simulated: false,
        };
        bus::prices::publish_quote(&mut self.redis, &self.keys, &quote)
            .await
            .expect("publish");
        quote
    }

    /// Publishes one event as engines before batches did (`Envelope<Event>`, id `<seq>-0`).
    async fn event(&self, seq: u64, event: Event) {
        let env = Envelope::new(seq, now_ms(), event);
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(
            async_nats::header::NATS_MESSAGE_ID,
            format!("{seq}-0").as_str(),
        );
        let subject = self.names.event(env.body.kind());
        self.js
            .publish_with_headers(subject, headers, env.encode().into())
            .await
            .expect("publish")
            .await
            .expect("ack");
    }

    /// Publishes events (first event of each input `seq`) as one batch, as the engine does.
    async fn batch(&self, events: Vec<(u64, Event)>) {
        let logged: Vec<_> = events
            .into_iter()
            .map(|(seq, event)| LoggedEvent {
                seq,
                index: 0,
                ts: now_ms(),
                request_id: None,
                event,
            })
            .collect();
        for b in encode_batches(&logged, MAX_BATCH_BYTES) {
            let mut headers = async_nats::HeaderMap::new();
            headers.insert(
                async_nats::header::NATS_MESSAGE_ID,
                b.range.to_string().as_str(),
            );
            self.js
                .publish_with_headers(self.names.event_batch(), headers, b.payload.into())
                .await
                .expect("publish")
                .await
                .expect("ack");
        }
    }

    fn token(&self, user: UserId, exp: u64) -> String {
        #[derive(serde::Serialize)]
        struct Claims {
            sub: UserId,
            iat: u64,
            exp: u64,
        }
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &Claims {
                sub: user,
                iat: 0,
                exp,
            },
            &jsonwebtoken::EncodingKey::from_secret(self.secret.as_bytes()),
        )
        .expect("sign")
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        timeout(Duration::from_secs(10), self.task)
            .await
            .expect("hub stops")
            .expect("join")
            .expect("clean stop");
        // The streams would otherwise pile up on the shared server.
        for stream in [self.names.engine_stream(), self.names.events_stream()] {
            let _ = self.js.delete_stream(&stream).await;
        }
    }
}

/// The next JSON text message, within 5 s.
async fn next_json(ws: &mut Client) -> Value {
    loop {
        let msg = timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("a message within 5 s")
            .expect("connection open")
            .expect("no error");
        if let Message::Text(text) = msg {
            return serde_json::from_str(&text).expect("json");
        }
    }
}

/// Asserts that nothing arrives for `wait`.
async fn assert_silent(ws: &mut Client, wait: Duration) {
    if let Ok(Some(Ok(Message::Text(text)))) = timeout(wait, ws.next()).await {
        panic!("expected silence, got {text}");
    }
}

async fn send_op(ws: &mut Client, op: &str) {
    ws.send(Message::text(op.to_string())).await.expect("send");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_then_subscribe_and_unsubscribe_narrow_the_stream() {
    let mut hub = start_hub(|_| {}).await;
    for (asset, bid) in [
        (Asset::Btc, "65000"),
        (Asset::Eth, "3200"),
        (Asset::Sol, "150"),
    ] {
        hub.quote(asset, bid).await;
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while hub.stats.report().quotes_in < 3 {
        assert!(Instant::now() < deadline, "the hub did not see the quotes");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut ws = hub.connect().await;
    let mut snapshot: Vec<String> = Vec::new();
    for _ in 0..3 {
        let q = next_json(&mut ws).await;
        assert_eq!(
            (q["type"].as_str(), q["simulated"].as_bool()),
            (Some("quote"), Some(false))
        );
        snapshot.push(q["asset"].as_str().expect("asset").to_string());
    }
    snapshot.sort();
    assert_eq!(snapshot, ["BTC", "ETH", "SOL"]);

    // Narrow to ETH: the reply, then ETH's latest again; BTC quotes no longer arrive.
    send_op(&mut ws, r#"{"op":"subscribe","assets":["ETH"]}"#).await;
    let reply = next_json(&mut ws).await;
    assert_eq!(
        reply,
        serde_json::json!({"type": "subscribed", "assets": ["ETH"]})
    );
    assert_eq!(next_json(&mut ws).await["bid"], "3200");
    hub.quote(Asset::Btc, "65001").await;
    hub.quote(Asset::Eth, "3201").await;
    let q = next_json(&mut ws).await;
    assert_eq!(
        (q["asset"].as_str(), q["bid"].as_str()),
        (Some("ETH"), Some("3201"))
    );

    // Add SOL, then drop ETH: only SOL remains.
    send_op(&mut ws, r#"{"op":"subscribe","assets":["SOL"]}"#).await;
    assert_eq!(
        next_json(&mut ws).await["assets"],
        serde_json::json!(["ETH", "SOL"])
    );
    assert_eq!(next_json(&mut ws).await["asset"], "SOL");
    send_op(&mut ws, r#"{"op":"unsubscribe","assets":["ETH"]}"#).await;
    assert_eq!(
        next_json(&mut ws).await["assets"],
        serde_json::json!(["SOL"])
    );
    hub.quote(Asset::Eth, "3202").await;
    hub.quote(Asset::Btc, "65002").await;
    assert_silent(&mut ws, Duration::from_millis(300)).await;
    hub.quote(Asset::Sol, "151").await;
    assert_eq!(next_json(&mut ws).await["bid"], "151");

    // Junk is answered with an error, and the connection stays usable.
    send_op(&mut ws, r#"{"op":"subscribe","assets":["DOGE"]}"#).await;
    let err = next_json(&mut ws).await;
    assert_eq!(
        (err["type"].as_str(), err["code"].as_str()),
        (Some("error"), Some("bad_request"))
    );
    send_op(&mut ws, "{").await;
    assert_eq!(next_json(&mut ws).await["code"], "bad_request");
    hub.quote(Asset::Sol, "152").await;
    assert_eq!(next_json(&mut ws).await["bid"], "152");
    hub.stop().await;
}

fn closed(user: UserId, id: u64, reason: CloseReason) -> Event {
    let p = |s: &str| Price::from_str(s).expect("price");
    let position = Position {
        trailing_distance: None,
        id: PositionId(id),
        user_id: user,
        asset: Asset::Btc,
        side: Side::Buy,
        quantity: Quantity::from_str("0.1").expect("qty"),
        leverage: Leverage::new(10).expect("leverage"),
        open_price: p("65000"),
        margin: Money::from_str("650").expect("money"),
        liquidation_price: Some(p("58500")),
        stop_loss: Some(p("64000")),
        take_profit: None,
        opened_at: 1,
    };
    Event::PositionClosed {
        position: ClosedPosition {
            position,
            close_price: p("64000"),
            realized_pnl: Money::from_str("-100").expect("money"),
            close_reason: reason,
            closed_at: 2,
            absorbed_loss: Money::ZERO,
        },
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authenticated_clients_get_their_own_events_live_and_nobody_elses() {
    let hub = start_hub(|_| {}).await;
    let (alice, bob) = (UserId(uuid::Uuid::new_v4()), UserId(uuid::Uuid::new_v4()));
    let future = 4_000_000_000;
    let mut a = hub.connect().await;
    let mut b = hub.connect().await;
    let mut anon = hub.connect().await;
    send_op(
        &mut a,
        &format!(r#"{{"op":"auth","token":"{}"}}"#, hub.token(alice, future)),
    )
    .await;
    send_op(
        &mut b,
        &format!(r#"{{"op":"auth","token":"{}"}}"#, hub.token(bob, future)),
    )
    .await;
    let ok = next_json(&mut a).await;
    assert_eq!(
        (ok["type"].as_str(), ok["user_id"].as_str()),
        (Some("authenticated"), Some(alice.to_string().as_str()))
    );
    assert_eq!(next_json(&mut b).await["type"], "authenticated");
    // Expired and forged tokens are refused.
    send_op(
        &mut anon,
        &format!(r#"{{"op":"auth","token":"{}"}}"#, hub.token(bob, 1)),
    )
    .await;
    assert_eq!(next_json(&mut anon).await["code"], "unauthorized");
    send_op(&mut anon, r#"{"op":"auth","token":"e30.e30.AAAA"}"#).await;
    assert_eq!(next_json(&mut anon).await["code"], "unauthorized");

    let second = || closed(alice, 8, CloseReason::Liquidation);
    hub.batch(vec![
        (41, closed(alice, 7, CloseReason::StopLoss)),
        (42, second()),
    ])
    .await;
    // A restarted engine may store an event again inside a batch cut elsewhere: not resent.
    hub.batch(vec![
        (42, second()),
        (43, closed(bob, 9, CloseReason::TakeProfit)),
    ])
    .await;
    for (seq, id, reason) in [(41, 7, "stop_loss"), (42, 8, "liquidation")] {
        let e = next_json(&mut a).await;
        assert_eq!(
            (e["type"].as_str(), e["seq"].as_u64()),
            (Some("event"), Some(seq))
        );
        assert_eq!(e["event"]["type"], "position_closed");
        assert_eq!(e["event"]["position"]["id"], id);
        assert_eq!(e["event"]["position"]["close_reason"], reason);
        assert_eq!(e["event"]["position"]["user_id"], alice.to_string());
    }
    // Bob's first message is his own event: he never saw Alice's.
    let e = next_json(&mut b).await;
    assert_eq!(
        (
            e["seq"].as_u64(),
            e["event"]["position"]["close_reason"].as_str()
        ),
        (Some(43), Some("take_profit"))
    );
    assert_silent(&mut a, Duration::from_millis(200)).await;
    assert_silent(&mut anon, Duration::from_millis(200)).await;
    hub.stop().await;
}

fn order(user: UserId, id: u64) -> Order {
    Order {
        id: OrderId(id),
        user_id: user,
        asset: Asset::Eth,
        side: Side::Sell,
        order_type: OrderType::Stop,
        price: Price::from_str("2900").expect("price"),
        quantity: Quantity::from_str("1").expect("qty"),
        leverage: Leverage::new(5).expect("leverage"),
        stop_loss: None,
        take_profit: None,
        expires_at: Some(9_000),
        created_at: 1,
    }
}

/// Order events are routed like any engine event: by their user, to that user only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_order_events_reach_their_user_live() {
    let hub = start_hub(|_| {}).await;
    let (alice, bob) = (UserId(uuid::Uuid::new_v4()), UserId(uuid::Uuid::new_v4()));
    let mut a = hub.connect().await;
    let mut b = hub.connect().await;
    for (ws, user) in [(&mut a, alice), (&mut b, bob)] {
        let token = hub.token(user, 4_000_000_000);
        send_op(ws, &format!(r#"{{"op":"auth","token":"{token}"}}"#)).await;
        assert_eq!(next_json(ws).await["type"], "authenticated");
    }
    hub.event(
        50,
        Event::OrderPlaced {
            order: order(bob, 3),
        },
    )
    .await;
    let cancelled = Event::OrderCancelled {
        order: order(alice, 4),
        reason: CancelReason::Expired,
        at: 9_000,
    };
    hub.event(51, cancelled).await;
    let e = next_json(&mut a).await;
    assert_eq!(
        (e["type"].as_str(), e["seq"].as_u64()),
        (Some("event"), Some(51))
    );
    assert_eq!(e["event"]["type"], "order_cancelled");
    assert_eq!(e["event"]["reason"], "expired");
    assert_eq!(e["event"]["order"]["id"], 4);
    assert_eq!(e["event"]["order"]["order_type"], "stop");
    let e = next_json(&mut b).await;
    assert_eq!(
        (e["seq"].as_u64(), e["event"]["type"].as_str()),
        (Some(50), Some("order_placed"))
    );
    assert_silent(&mut a, Duration::from_millis(200)).await;
    assert_silent(&mut b, Duration::from_millis(200)).await;
    hub.stop().await;
}

/// A client whose socket reads nothing: a 4 KiB receive buffer it never drains.
async fn stalled_client(port: u16) -> Client {
    let socket = TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("rcvbuf");
    let tcp = socket
        .connect(([127, 0, 0, 1], port).into())
        .await
        .expect("connect");
    let url = format!("ws://127.0.0.1:{port}");
    tokio_tungstenite::client_async(url, MaybeTlsStream::Plain(tcp))
        .await
        .expect("handshake")
        .0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_client_neither_delays_a_healthy_one_nor_survives() {
    let mut hub = start_hub(|s| {
        s.send_buffer = 8 * 1024;
        s.write_timeout = Duration::from_millis(500);
        s.limits = Limits {
            max_behind: 50,
            max_events: 64,
            max_replies: 16,
        };
    })
    .await;
    let _stalled = stalled_client(hub.port).await;
    let mut healthy = hub.connect().await;
    let reader = tokio::spawn(async move {
        let (mut worst, mut last_bid) = (0i64, String::new());
        while last_bid != "69999" {
            let q = next_json(&mut healthy).await;
            worst = worst.max(now_ms() - q["ts"].as_i64().expect("ts"));
            last_bid = q["bid"].as_str().expect("bid").to_string();
        }
        (worst, healthy)
    });
    // 3 assets × 1,000 quotes at ~1 ms pacing, BTC last ending at 69999.
    for i in 0..1000 {
        for asset in [Asset::Eth, Asset::Sol, Asset::Btc] {
            hub.quote(asset, &(69_000 + i).to_string()).await;
        }
        if i % 10 == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let (worst, healthy) = timeout(Duration::from_secs(10), reader)
        .await
        .expect("the healthy client got the last quote")
        .expect("reader");
    assert!(worst < 1000, "the healthy client lagged {worst} ms");
    let deadline = Instant::now() + Duration::from_secs(5);
    while hub.stats.report().too_slow == 0 {
        assert!(
            Instant::now() < deadline,
            "the stalled client was never disconnected"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(hub.stats.report().connections, 1);
    // Cleanup: the healthy client leaves, nothing stays registered.
    drop(healthy);
    let deadline = Instant::now() + Duration::from_secs(5);
    while hub.stats.report().connections != 0 {
        assert!(
            Instant::now() < deadline,
            "a closed connection stayed registered"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_cap_are_refused_and_slots_come_back() {
    let hub = start_hub(|s| s.max_connections = 2).await;
    let first = hub.connect().await;
    let _second = hub.connect().await;
    let mut third = hub.connect().await;
    let refusal = next_json(&mut third).await;
    assert_eq!(refusal["code"], "too_many_connections");
    assert_eq!(hub.stats.report().rejected, 1);
    let mut first = first;
    first.close(None).await.expect("close");
    let deadline = Instant::now() + Duration::from_secs(5);
    while hub.stats.report().connections != 1 {
        assert!(
            Instant::now() < deadline,
            "the closed slot was not released"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut fourth = hub.connect().await;
    send_op(&mut fourth, r#"{"op":"subscribe","assets":["BTC"]}"#).await;
    assert_eq!(next_json(&mut fourth).await["type"], "subscribed");
    hub.stop().await;
}

/// A WebSocket client whose TCP source is `source` (a loopback address of its own).
async fn connect_from(
    port: u16,
    source: [u8; 4],
) -> Result<Client, tokio_tungstenite::tungstenite::Error> {
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .bind((std::net::Ipv4Addr::from(source), 0).into())
        .expect("bind the source address");
    let tcp = socket
        .connect(([127, 0, 0, 1], port).into())
        .await
        .expect("tcp connect");
    let url = format!("ws://127.0.0.1:{port}");
    tokio_tungstenite::client_async(url, MaybeTlsStream::Plain(tcp))
        .await
        .map(|(ws, _)| ws)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connects_over_an_address_rate_get_429_and_other_addresses_do_not() {
    let hub = start_hub(|s| s.connect_rate = bus::limits::Rate::of(2, 3600)).await;
    let _first = connect_from(hub.port, [127, 0, 0, 1]).await.expect("first");
    let _second = connect_from(hub.port, [127, 0, 0, 1])
        .await
        .expect("second");
    match connect_from(hub.port, [127, 0, 0, 1]).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 429);
            let retry: u64 = response.headers()["retry-after"]
                .to_str()
                .expect("ascii")
                .parse()
                .expect("seconds");
            assert!((1..=1800).contains(&retry), "Retry-After {retry}");
        }
        other => panic!(
            "expected a 429 answer, got {:?}",
            other.map(|_| "a connection")
        ),
    }
    // Another address has its own budget: a browser there is served.
    let mut other = connect_from(hub.port, [127, 0, 0, 2])
        .await
        .expect("other address");
    send_op(&mut other, r#"{"op":"subscribe","assets":["BTC"]}"#).await;
    let mut answer = next_json(&mut other).await;
    while answer["type"] != "subscribed" {
        answer = next_json(&mut other).await;
    }
    hub.stop().await;
}

/// Waits until the hub counts `n` connections.
async fn wait_for_connections(hub: &Hub, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while hub.stats.report().connections != n {
        assert!(
            Instant::now() < deadline,
            "connections stayed at {} (expected {n})",
            hub.stats.report().connections
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multi_byte_character_in_a_bad_op_is_answered_and_frees_the_slot() {
    let hub = start_hub(|s| s.max_connections = 1).await;
    let baseline = hub.stats.report().connections;
    let mut ws = hub.connect().await;
    wait_for_connections(&hub, baseline + 1).await;
    // The error echoes the op; at one of these two offsets a 2-byte 'é' straddles the point
    // where the message is cut.
    for pad in ["", "x"] {
        let op = format!(r#"{{"op":"{pad}{}"}}"#, "é".repeat(150));
        send_op(&mut ws, &op).await;
        let err = next_json(&mut ws).await;
        assert_eq!(
            (err["type"].as_str(), err["code"].as_str()),
            (Some("error"), Some("bad_request")),
            "{err}"
        );
    }
    send_op(&mut ws, r#"{"op":"subscribe","assets":["BTC"]}"#).await;
    assert_eq!(next_json(&mut ws).await["type"], "subscribed");
    ws.close(None).await.expect("close");
    wait_for_connections(&hub, baseline).await;
    // The only slot is free again.
    let mut again = hub.connect().await;
    send_op(&mut again, r#"{"op":"subscribe","assets":["ETH"]}"#).await;
    assert_eq!(next_json(&mut again).await["type"], "subscribed");
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_over_4_kib_gets_an_error_and_close_code_1009() {
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
    let hub = start_hub(|_| {}).await;
    let mut ws = hub.connect().await;
    let big = format!(r#"{{"op":"auth","token":"{}"}}"#, "a".repeat(5000));
    send_op(&mut ws, &big).await;
    let err = next_json(&mut ws).await;
    assert_eq!(
        (err["type"].as_str(), err["code"].as_str()),
        (Some("error"), Some("bad_request")),
        "{err}"
    );
    let close = loop {
        let msg = timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("a close frame within 5 s")
            .expect("a frame before the end")
            .expect("no error before the close frame");
        if let Message::Close(frame) = msg {
            break frame.expect("a close code");
        }
    };
    assert_eq!(close.code, CloseCode::Size);
    assert_eq!(u16::from(close.code), 1009);
    wait_for_connections(&hub, 0).await;
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_events_stop_when_the_token_expires() {
    let mut hub = start_hub(|_| {}).await;
    let user = UserId(uuid::Uuid::new_v4());
    let now = u64::try_from(now_ms() / 1000).expect("time");
    let mut ws = hub.connect().await;
    send_op(&mut ws, r#"{"op":"subscribe","assets":["SOL"]}"#).await;
    assert_eq!(next_json(&mut ws).await["type"], "subscribed");
    let token = hub.token(user, now + 2);
    send_op(&mut ws, &format!(r#"{{"op":"auth","token":"{token}"}}"#)).await;
    assert_eq!(next_json(&mut ws).await["type"], "authenticated");
    // Within a few seconds the hub says the token expired ...
    let expired = loop {
        let msg = next_json(&mut ws).await;
        if msg["type"] == "error" {
            break msg;
        }
    };
    assert_eq!(expired["code"], "unauthorized", "{expired}");
    assert!(
        now_ms() / 1000 >= i64::try_from(now + 2).expect("time") - 1,
        "not before the token's exp"
    );
    // ... and the user's events no longer arrive (a witness with a fresh token gets them),
    // while quotes still do.
    let mut witness = hub.connect().await;
    send_op(
        &mut witness,
        r#"{"op":"unsubscribe","assets":["BTC","ETH","SOL"]}"#,
    )
    .await;
    assert_eq!(next_json(&mut witness).await["type"], "subscribed");
    let fresh = hub.token(user, now + 600);
    send_op(
        &mut witness,
        &format!(r#"{{"op":"auth","token":"{fresh}"}}"#),
    )
    .await;
    assert_eq!(next_json(&mut witness).await["type"], "authenticated");
    hub.event(77, closed(user, 3, CloseReason::StopLoss)).await;
    assert_eq!(next_json(&mut witness).await["seq"], 77);
    hub.quote(Asset::Sol, "155").await;
    let next = next_json(&mut ws).await;
    assert_eq!(
        (next["type"].as_str(), next["bid"].as_str()),
        (Some("quote"), Some("155")),
        "{next}"
    );
    assert_silent(&mut ws, Duration::from_millis(300)).await;
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_sent_upgrade_is_closed_at_the_handshake_deadline() {
    let deadline = Duration::from_millis(500);
    let hub = start_hub(|s| s.handshake_timeout = deadline).await;
    let mut tcp = TcpStream::connect(("127.0.0.1", hub.port))
        .await
        .expect("connect");
    let sent = Instant::now();
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n")
        .await
        .expect("half an upgrade");
    let mut buf = [0u8; 256];
    let read = timeout(Duration::from_secs(10), tcp.read(&mut buf))
        .await
        .expect("closed well within 10 s");
    assert!(
        matches!(read, Ok(0) | Err(_)),
        "closed, not answered: {read:?}"
    );
    assert!(sent.elapsed() >= deadline, "not before the deadline");
    assert_eq!(hub.stats.report().connections, 0, "it never took a slot");
    hub.stop().await;
}

/// What became of one half-open upgrade.
enum Flooded {
    /// Still open (admitted, or not yet looked at by the hub): kept open by the attacker.
    Held(TcpStream),
    /// Answered in plain HTTP (the refusal) and closed.
    Answered(u16),
    /// Closed without an answer, or never connected.
    Closed,
}

/// A connection that opens an upgrade and never finishes it. One the hub turned away is let
/// go (its answer read), as a client would, so the flood is bounded by what the hub holds, not
/// by this process's open-file limit.
async fn half_open(port: u16) -> Flooded {
    let Ok(Ok(mut tcp)) = timeout(
        Duration::from_secs(10),
        TcpStream::connect(("127.0.0.1", port)),
    )
    .await
    else {
        return Flooded::Closed;
    };
    // The hub may already have refused it; the write may then fail, which is fine.
    let _ = tcp
        .write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n")
        .await;
    let mut head = [0u8; 12];
    match timeout(Duration::from_millis(200), tcp.read(&mut head)).await {
        Err(_) => Flooded::Held(tcp),
        Ok(Ok(12)) if head.starts_with(b"HTTP/1.1 ") => {
            let code = std::str::from_utf8(&head[9..12])
                .ok()
                .and_then(|c| c.parse().ok());
            code.map_or(Flooded::Closed, Flooded::Answered)
        }
        Ok(_) => Flooded::Closed,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_thousand_half_open_upgrades_from_one_address_leave_room_for_another() {
    const FLOOD: u64 = 20_000;
    // A deadline longer than the flood: the first few hold their handshakes all along.
    let mut hub = start_hub(|s| s.handshake_timeout = Duration::from_secs(120)).await;
    let per_address = HubSettings::default().admission.max_handshakes_per_address;
    let started = Instant::now();
    let port = hub.port;
    let outcomes: Vec<Flooded> = futures_util::stream::iter(0..FLOOD)
        .map(|_| half_open(port))
        .buffer_unordered(256)
        .collect()
        .await;
    let mut held = Vec::new();
    let (mut answered_429, mut closed) = (0u64, 0u64);
    for outcome in outcomes {
        match outcome {
            Flooded::Held(tcp) => held.push(tcp),
            Flooded::Answered(429) => answered_429 += 1,
            Flooded::Answered(other) => panic!("a refusal answered {other}"),
            Flooded::Closed => closed += 1,
        }
    }
    eprintln!(
        "{FLOOD} half-open upgrades from 127.0.0.1 in {:?}: {} held open, {answered_429} \
         answered 429, {closed} closed without an answer",
        started.elapsed(),
        held.len()
    );
    assert!(answered_429 > 0, "refusals are answered");
    // All but the per-address handshake cap are turned away at once (those closed without
    // an answer may not have reached the hub at all).
    let deadline = Instant::now() + Duration::from_secs(60);
    while hub.stats.report().rejected + u64::from(per_address) + closed < FLOOD {
        assert!(
            Instant::now() < deadline,
            "refused {} of {FLOOD}",
            hub.stats.report().rejected
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        held.len() >= per_address as usize,
        "the first {per_address} are admitted and held"
    );
    assert_eq!(
        hub.stats.report().connections,
        0,
        "upgrades in progress take no slot"
    );

    // A browser from another address is served and gets prices.
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .bind("127.0.0.2:0".parse().expect("addr"))
        .expect("bind 127.0.0.2");
    let tcp = timeout(
        Duration::from_secs(30),
        socket.connect(([127, 0, 0, 1], port).into()),
    )
    .await
    .expect("connects in time")
    .expect("connects");
    let url = format!("ws://127.0.0.1:{port}");
    let (mut browser, _) = timeout(
        Duration::from_secs(30),
        tokio_tungstenite::client_async(url, MaybeTlsStream::Plain(tcp)),
    )
    .await
    .expect("handshake in time")
    .expect("handshake");
    send_op(&mut browser, r#"{"op":"subscribe","assets":["BTC"]}"#).await;
    assert_eq!(next_json(&mut browser).await["type"], "subscribed");
    hub.quote(Asset::Btc, "65000").await;
    let quote = next_json(&mut browser).await;
    assert_eq!(
        (quote["type"].as_str(), quote["asset"].as_str()),
        (Some("quote"), Some("BTC")),
        "{quote}"
    );
    eprintln!(
        "the other address was served {:?} after the flood began",
        started.elapsed()
    );
    drop(held);
    drop(browser);
    hub.stop().await;
}
