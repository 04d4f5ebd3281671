//! Price alerts fired by the worker on the real servers: quotes published on the Redis price
//! stream (as the price feed does) fire an alert at exactly its price and not a tick before,
//! once, reach the user's WebSocket through the hub, and show as triggered in `GET /alerts`
//! for a user who was offline.

use crate::support;

use std::time::Duration;

use axum::http::StatusCode;
use bus::{Asset, MarketQuote, PriceKeys};
use functions::alerts::worker::Worker;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use support::{Platform, code, insert_user};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

const ALERTS: &str = "/api/v1/alerts";
const CANCEL: &str = "/api/v1/alerts/cancel";

async fn token(p: &Platform) -> String {
    let user = insert_user(&p.db.pool).await;
    p.state.tokens().issue(user).expect("token").token
}

fn alert(asset: &str, price: &str, direction: &str) -> Value {
    json!({ "asset": asset, "price": price, "direction": direction })
}

/// The worker, the hub and a Redis connection to publish quotes, under the test's prefixes.
struct Live {
    keys: PriceKeys,
    redis: redis::aio::MultiplexedConnection,
    ws_addr: std::net::SocketAddr,
    stop: watch::Sender<bool>,
    ts: i64,
}

impl Live {
    async fn start(p: &Platform) -> Self {
        let keys = PriceKeys::new(support::random_prefix());
        let redis_url =
            std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
        let client = redis::Client::open(redis_url.as_str()).expect("redis url");
        let redis = client
            .get_multiplexed_async_connection()
            .await
            .expect("redis");
        let (stop, rx) = watch::channel(false);
        let worker = Worker {
            nats: p.state.nats().clone(),
            names: bus::Names::new(p.settings.bus_prefix.clone()),
            db: p.db.pool.clone(),
            redis_url: redis_url.clone(),
            keys: keys.clone(),
        };
        let mut rx1 = rx.clone();
        tokio::spawn(async move {
            let _ = worker
                .run(async move {
                    let _ = rx1.wait_for(|s| *s).await;
                })
                .await;
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let ws_addr = listener.local_addr().expect("addr");
        let hub = bus::hub::HubSettings {
            bind: ws_addr.to_string(),
            redis_url,
            redis_prefix: keys.prefix().to_string(),
            nats_url: p.settings.nats_url.clone(),
            bus_prefix: p.settings.bus_prefix.clone(),
            jwt_secret: p.settings.jwt_secret.clone(),
            ..bus::hub::HubSettings::default()
        };
        let mut rx2 = rx;
        tokio::spawn(bus::hub::serve(
            listener,
            hub,
            Default::default(),
            async move {
                let _ = rx2.wait_for(|s| *s).await;
            },
        ));
        Self {
            keys,
            redis,
            ws_addr,
            stop,
            ts: 1_700_000_000_000,
        }
    }

    /// Publishes a quote as the price feed does; returns its timestamp.
    async fn quote(&mut self, asset: Asset, bid: &str, ask: &str) -> i64 {
        self.ts += 1000;
        let quote = MarketQuote {
            asset,
            bid: bid.parse().expect("bid"),
            ask: ask.parse().expect("ask"),
            ts: self.ts,
            simulated: false,
        };
        bus::prices::publish_quote(&mut self.redis, &self.keys, &quote)
            .await
            .expect("publish");
        self.ts
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.stop.send_replace(true);
    }
}

/// The user's alert `id` as `GET /alerts` shows it.
async fn shown(p: &Platform, token: &str, id: &Value) -> Value {
    let (status, body) = p.get(ALERTS, Some(token)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["alerts"]
        .as_array()
        .expect("alerts")
        .iter()
        .find(|a| &a["id"] == id)
        .cloned()
        .expect("listed")
}

/// Waits until every quote published so far has been handled: a probe alert on SOL, created
/// now, fires on a quote published after them (one channel, handled in order).
async fn settle(p: &Platform, live: &mut Live, probe: &str) {
    let (_, body) = p
        .post(ALERTS, Some(probe), alert("SOL", "0.01", "above"))
        .await;
    let id = body["alert"]["id"].clone();
    for _ in 0..300 {
        live.quote(Asset::Sol, "150.00", "150.05").await;
        if shown(p, probe, &id).await["status"] == "triggered" {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the worker never handled a probe quote");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_fire_at_the_price_once_and_reach_their_user() {
    let p = Platform::without_engine(|_| {}).await;
    let mut live = Live::start(&p).await;
    let user = insert_user(&p.db.pool).await;
    let online = p.state.tokens().issue(user).expect("token").token;
    let offline = token(&p).await;
    let probe = token(&p).await;
    let (_, up) = p
        .post(ALERTS, Some(&online), alert("BTC", "65000.00", "above"))
        .await;
    let (_, down) = p
        .post(ALERTS, Some(&offline), alert("BTC", "60000.00", "below"))
        .await;
    let (up, down) = (up["alert"]["id"].clone(), down["alert"]["id"].clone());

    // Every fired alert the worker publishes, whoever it is for.
    let nats = async_nats::connect(&p.settings.nats_url)
        .await
        .expect("nats");
    let names = bus::Names::new(p.settings.bus_prefix.clone());
    let mut published = nats.subscribe(names.alert_users()).await.expect("sub");
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}", live.ws_addr))
        .await
        .expect("ws");
    ws.send(Message::text(
        json!({ "op": "auth", "token": online }).to_string(),
    ))
    .await
    .expect("auth");
    settle(&p, &mut live, &probe).await;

    // One tick before: the ask a cent short of "above", the bid a cent over "below".
    live.quote(Asset::Btc, "64999.00", "64999.99").await;
    live.quote(Asset::Btc, "60000.01", "60001.00").await;
    settle(&p, &mut live, &probe).await;
    assert_eq!(shown(&p, &online, &up).await["status"], "active");
    assert_eq!(shown(&p, &offline, &down).await["status"], "active");

    // Exactly at the price: the ask for "above" (the bid at it does not count)...
    let at = live.quote(Asset::Btc, "64999.50", "65000.00").await;
    let message = loop {
        let msg = tokio::time::timeout(Duration::from_secs(30), ws.next())
            .await
            .expect("the alert within 30 s")
            .expect("open")
            .expect("frame");
        let Message::Text(text) = msg else { continue };
        let v: Value = serde_json::from_str(&text).expect("json");
        if v["type"] == "alert" {
            break v;
        }
    };
    let fired = &message["alert"];
    assert_eq!(fired["id"], up);
    assert_eq!(
        (fired["status"].as_str(), fired["triggeredPrice"].as_str()),
        (Some("triggered"), Some("65000.00"))
    );
    assert_eq!(fired["triggeredAt"].as_i64(), Some(at));
    assert_eq!(
        &shown(&p, &online, &up).await,
        fired,
        "the message is the alert as GET shows it"
    );

    // ...and the bid for "below", for a user who is not connected: GET shows it fired.
    let at = live.quote(Asset::Btc, "60000.00", "60000.50").await;
    live.quote(Asset::Btc, "50000.00", "50000.50").await;
    live.quote(Asset::Btc, "70000.00", "70000.50").await;
    settle(&p, &mut live, &probe).await;
    let seen = shown(&p, &offline, &down).await;
    assert_eq!(
        (seen["status"].as_str(), seen["triggeredPrice"].as_str()),
        (Some("triggered"), Some("60000.00"))
    );
    assert_eq!(seen["triggeredAt"].as_i64(), Some(at));
    assert_eq!(
        shown(&p, &online, &up).await,
        *fired,
        "fired once: later crossings change nothing"
    );

    // Once only: one message per alert, each to its own user's subject.
    let mut ids = Vec::new();
    while let Ok(Some(msg)) =
        tokio::time::timeout(Duration::from_millis(500), published.next()).await
    {
        let v: Value = serde_json::from_slice(&msg.payload).expect("json");
        ids.push(v["alert"]["id"].clone());
        if v["alert"]["id"] == up {
            assert_eq!(msg.subject.as_str(), names.alert_user(user));
        }
    }
    assert_eq!(ids.iter().filter(|i| **i == up).count(), 1, "{ids:?}");
    assert_eq!(ids.iter().filter(|i| **i == down).count(), 1, "{ids:?}");
    // The other user's alert never reached this connection.
    while let Ok(Some(Ok(msg))) = tokio::time::timeout(Duration::from_millis(500), ws.next()).await
    {
        if let Message::Text(text) = msg {
            let v: Value = serde_json::from_str(&text).expect("json");
            assert_ne!(v["type"], "alert", "only its own alert, once: {v}");
        }
    }
    // Cancelling a fired alert is 409.
    let (status, body) = p
        .post(CANCEL, Some(&offline), json!({ "alertId": down }))
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::CONFLICT, "alert_not_active")
    );
}
