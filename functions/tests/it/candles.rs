//! Candles: trades published into a real `TRADES` stream (random prefix) are folded by the
//! candle event function into a fresh database; `GET /api/v1/candles` returns exact OHLCV for
//! several intervals, with trades on bucket edges, a late trade, a second batch, an empty
//! bucket and another asset. A redelivered batch changes nothing.

use std::str::FromStr;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use bus::{Asset, Names, Price, Quantity, Trade};
use functions::candles::ingest::{self, IngestSettings};
use functions::{AppState, Settings};
use migrations::TestDatabase;
use rust_decimal::Decimal;
use serde_json::Value;
use tokio::sync::oneshot;
use tower::ServiceExt;

/// 2023-11-14 22:15:00 UTC: a 1m, 5m and 15m bucket start; its hour starts at T0 - 900.
const T0: i64 = 1_700_000_100;

fn trade(asset: Asset, id: u64, at_ms: i64, price: &str, qty: &str) -> Trade {
    Trade {
        asset,
        price: Price::from_str(price).expect("price"),
        quantity: Quantity::from_str(qty).expect("qty"),
        ts: at_ms,
        id,
        simulated: false,
    }
}

fn ms(offset_ms: i64) -> i64 {
    T0 * 1000 + offset_ms
}

async fn get(app: &axum::Router, query: &str) -> (StatusCode, Value) {
    let req = Request::get(format!("/api/v1/candles?{query}"))
        .body(Body::empty())
        .expect("request");
    let resp = app.clone().oneshot(req).await.expect("response");
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .expect("body");
    (status, serde_json::from_slice(&bytes).expect("json"))
}

fn d(v: &Value) -> Decimal {
    Decimal::from_str(v.as_str().expect("decimal string")).expect("decimal")
}

/// `[time, open, high, low, close, volume, trades]` of each candle, for exact comparison.
fn rows(body: &Value) -> Vec<(i64, [Decimal; 5], i64)> {
    body["candles"]
        .as_array()
        .expect("candles")
        .iter()
        .map(|c| {
            let ohlcv = [
                d(&c["open"]),
                d(&c["high"]),
                d(&c["low"]),
                d(&c["close"]),
                d(&c["volume"]),
            ];
            (
                c["time"].as_i64().expect("time"),
                ohlcv,
                c["trades"].as_i64().expect("trades"),
            )
        })
        .collect()
}

fn row(time: i64, ohlcv: [&str; 5], trades: i64) -> (i64, [Decimal; 5], i64) {
    (
        time,
        ohlcv.map(|v| Decimal::from_str(v).expect("decimal")),
        trades,
    )
}

async fn progress(db: &sqlx::PgPool, stream: &str) -> i64 {
    sqlx::query_scalar("SELECT last_seq FROM candle_progress WHERE stream = $1")
        .bind(stream)
        .fetch_optional(db)
        .await
        .expect("query")
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trades_become_exact_candles_for_every_interval() {
    let db = TestDatabase::create().await.expect("database");
    let prefix = format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let names = Names::new(prefix.clone());
    let nats_url = std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
    let nats = async_nats::connect(&nats_url).await.expect("nats");
    let js = async_nats::jetstream::new(nats.clone());
    bus::trades::ensure_trades_stream(&js, &names, Duration::from_secs(3600))
        .await
        .expect("TRADES");
    let (stop, stopped) = oneshot::channel::<()>();
    let settings = IngestSettings {
        max_wait: Duration::from_millis(50),
        ..IngestSettings::default()
    };
    let consumer = tokio::spawn(ingest::run(
        js.clone(),
        names.clone(),
        db.pool.clone(),
        settings,
        async {
            let _ = stopped.await;
        },
    ));

    // First batch: minute 0 on both edges (0.000 s and 59.999 s), minute 1 on its first ms,
    // nothing in minute 2, minute 3, the next 5-minute bucket, a late trade for minute 0, SOL.
    let first = [
        trade(Asset::Btc, 1, ms(0), "100.00", "1"),
        trade(Asset::Btc, 2, ms(30_000), "105.50", "0.5"),
        trade(Asset::Btc, 3, ms(59_999), "99.00", "2"),
        trade(Asset::Btc, 4, ms(60_000), "101.00", "1"),
        trade(Asset::Btc, 5, ms(190_000), "110.00", "0.25"),
        trade(Asset::Btc, 6, ms(300_000), "120.00", "1"),
        trade(Asset::Btc, 7, ms(10_000), "104.00", "1"),
        trade(Asset::Sol, 1, ms(5_000), "150.000", "3"),
    ];
    // Second batch: one more minute-0 trade, earlier than everything (a new open) and a new low.
    let second = [trade(Asset::Btc, 8, ms(0), "98.50", "0.75")];
    let stream = names.trades_stream();
    for (batch, until) in [(&first[..], 8), (&second[..], 9)] {
        for t in batch {
            bus::trades::publish_trade(&js, &names, t, 0)
                .await
                .expect("publish");
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while progress(&db.pool, &stream).await < until {
            assert!(
                tokio::time::Instant::now() < deadline,
                "trades were not folded in"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let _ = stop.send(());
    consumer
        .await
        .expect("join")
        .expect("consumer stops cleanly");

    let settings = Settings {
        nats_url,
        database_url: db.url.clone(),
        bus_prefix: prefix,
        ..Settings::default()
    };
    let state = AppState::new(&settings, nats, db.pool.clone()).expect("state");
    let app = functions::candles::app(state);
    let range = format!("from={}&to={}", T0 - 3600, T0 + 3600);

    let (status, body) = get(&app, &format!("asset=BTC&interval=1m&{range}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (body["asset"].as_str(), body["interval"].as_str()),
        (Some("BTC"), Some("1m"))
    );
    // The second batch's trade at 0 ms ties the first open (later in the stream: the open
    // stays), is the new low and adds volume. Minute 2 has no candle.
    assert_eq!(
        rows(&body),
        vec![
            row(T0, ["100.00", "105.50", "98.50", "99.00", "5.25"], 5),
            row(T0 + 60, ["101.00", "101.00", "101.00", "101.00", "1"], 1),
            row(
                T0 + 180,
                ["110.00", "110.00", "110.00", "110.00", "0.25"],
                1
            ),
            row(T0 + 300, ["120.00", "120.00", "120.00", "120.00", "1"], 1),
        ]
    );
    let (_, body) = get(&app, &format!("asset=BTC&interval=5m&{range}")).await;
    assert_eq!(
        rows(&body),
        vec![
            row(T0, ["100.00", "110.00", "98.50", "110.00", "6.50"], 7),
            row(T0 + 300, ["120.00", "120.00", "120.00", "120.00", "1"], 1),
        ]
    );
    for interval in ["15m", "1h", "4h", "1d", "1w"] {
        let (_, body) = get(
            &app,
            &format!("asset=BTC&interval={interval}&from=0&to={}", T0 + 3600),
        )
        .await;
        let got = rows(&body);
        assert_eq!(got.len(), 1, "{interval}");
        assert_eq!(
            got[0].1,
            row(0, ["100.00", "120.00", "98.50", "120.00", "7.50"], 0).1,
            "{interval}"
        );
        assert_eq!(got[0].2, 8, "{interval}");
    }
    let (_, body) = get(
        &app,
        &format!("asset=BTC&interval=1w&from=0&to={}", T0 + 3600),
    )
    .await;
    assert_eq!(body["candles"][0]["time"], 1_699_833_600); // Monday 2023-11-13 00:00 UTC
    let (_, body) = get(&app, &format!("asset=SOL&interval=1h&{range}")).await;
    assert_eq!(
        rows(&body),
        vec![row(
            T0 - 900,
            ["150.000", "150.000", "150.000", "150.000", "3"],
            1
        )]
    );

    // Limits and edges: with `from` the oldest, without it the newest; `to` is inclusive.
    let (_, body) = get(&app, &format!("asset=BTC&interval=1m&from={T0}&limit=2")).await;
    assert_eq!(
        rows(&body).iter().map(|r| r.0).collect::<Vec<_>>(),
        [T0, T0 + 60]
    );
    let (_, body) = get(
        &app,
        &format!("asset=BTC&interval=1m&to={}&limit=2", T0 + 300),
    )
    .await;
    assert_eq!(
        rows(&body).iter().map(|r| r.0).collect::<Vec<_>>(),
        [T0 + 180, T0 + 300]
    );
    let (_, body) = get(
        &app,
        &format!("asset=BTC&interval=1m&from={}&to={}", T0 + 1, T0 + 180),
    )
    .await;
    assert_eq!(
        rows(&body).iter().map(|r| r.0).collect::<Vec<_>>(),
        [T0 + 60, T0 + 180]
    );
    let (_, body) = get(&app, "asset=ETH&interval=1m").await;
    assert_eq!(body["candles"], Value::Array(vec![]));

    // A redelivered batch is skipped: nothing changes.
    let replay: Vec<(u64, Trade)> = first
        .iter()
        .cloned()
        .enumerate()
        .map(|(i, t)| (i as u64 + 1, t))
        .collect();
    assert_eq!(
        ingest::write_batch(&db.pool, &stream, &replay)
            .await
            .expect("write"),
        0
    );
    let (_, again) = get(&app, &format!("asset=BTC&interval=5m&{range}")).await;
    assert_eq!(rows(&again)[0].2, 7);
    let _ = js.delete_stream(&stream).await;
}

#[tokio::test]
async fn bad_parameters_are_400_with_a_code() {
    let db = TestDatabase::create().await.expect("database");
    let nats_url = std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
    let nats = async_nats::connect(&nats_url).await.expect("nats");
    let settings = Settings {
        nats_url,
        database_url: db.url.clone(),
        ..Settings::default()
    };
    let app =
        functions::candles::app(AppState::new(&settings, nats, db.pool.clone()).expect("state"));
    for (query, code) in [
        ("interval=1m", "invalid_asset"),
        ("asset=DOGE", "invalid_asset"),
        ("asset=BTC&interval=7m", "invalid_interval"),
        ("asset=BTC&to=253402300800", "invalid_range"),
        ("asset=BTC&from=yesterday", "invalid_range"),
        ("asset=BTC&limit=1501", "invalid_limit"),
        ("asset=BTC&limit=-1", "invalid_limit"),
    ] {
        let (status, body) = get(&app, query).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(body["error"]["code"], code, "{query}");
    }
    let (status, body) = get(&app, "asset=btc&interval=1d&limit=1500").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["interval"], "1d");
    let (status, body) = get(&app, "asset=BTC&from=20&to=10").await;
    assert_eq!(
        status,
        StatusCode::OK,
        "an empty range is no candles: {body}"
    );
    assert_eq!(body["candles"], serde_json::json!([]));
}
