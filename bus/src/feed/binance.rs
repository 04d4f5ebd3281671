//! The Binance side of the feed: the combined-stream URL, parsing of its `bookTicker` and
//! `trade` messages, and the connection loop (answers pings, reconnects with exponential
//! backoff and jitter, reports staleness).
//!
//! Combined-stream messages are `{"stream":"btcusdt@bookTicker","data":{"u":…,"s":"BTCUSDT",
//! "b":"…","B":"…","a":"…","A":"…"}}` and `{"stream":"btcusdt@trade","data":{"e":"trade",
//! "E":…,"s":"BTCUSDT","t":…,"p":"…","q":"…","T":…,"m":…,"M":…}}`.

use std::str::FromStr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use rust_decimal::Decimal;
use serde::Deserialize;
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, interval, sleep, timeout};
use tokio_tungstenite::tungstenite::Message;

use super::health::FeedHealth;
use super::{Backoff, SourceEvent, now_ms};
use crate::market::Trade;
use crate::types::{Asset, Price, Quantity};

/// `<base>/stream?streams=btcusdt@bookTicker/btcusdt@trade/…` for every asset.
pub fn combined_stream_url(base: &str) -> String {
    let streams: Vec<String> = Asset::ALL
        .iter()
        .flat_map(|a| {
            let s = a.binance_symbol().to_ascii_lowercase();
            [format!("{s}@bookTicker"), format!("{s}@trade")]
        })
        .collect();
    format!(
        "{}/stream?streams={}",
        base.trim_end_matches('/'),
        streams.join("/")
    )
}

#[derive(Deserialize)]
struct Combined {
    stream: String,
    data: Data,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Data {
    Trade(RawTrade),
    Book(RawBook),
}

#[derive(Deserialize)]
struct RawTrade {
    #[serde(rename = "e")]
    _event: String,
    s: String,
    t: u64,
    p: String,
    q: String,
    #[serde(rename = "T")]
    trade_time: i64,
}

#[derive(Deserialize)]
struct RawBook {
    s: String,
    b: String,
    a: String,
}

fn asset_of(symbol: &str) -> Option<Asset> {
    Asset::ALL
        .into_iter()
        .find(|a| a.binance_symbol() == symbol)
}

/// One combined-stream message as a feed event; `Ok(None)` for streams we do not use.
pub fn parse_message(text: &str, received_ms: i64) -> Result<Option<SourceEvent>, String> {
    let msg: Combined = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let decimal = |s: &str| Decimal::from_str(s).map_err(|e| format!("{s:?}: {e}"));
    match msg.data {
        Data::Book(book) if msg.stream.ends_with("@bookTicker") => {
            let Some(asset) = asset_of(&book.s) else {
                return Ok(None);
            };
            Ok(Some(SourceEvent::Quote {
                asset,
                bid: decimal(&book.b)?,
                ask: decimal(&book.a)?,
                ts: received_ms,
                simulated: false,
            }))
        }
        Data::Trade(trade) if msg.stream.ends_with("@trade") => {
            let Some(asset) = asset_of(&trade.s) else {
                return Ok(None);
            };
            Ok(Some(SourceEvent::Trade(Trade {
                asset,
                price: Price::new(decimal(&trade.p)?).map_err(|e| e.to_string())?,
                quantity: Quantity::new(decimal(&trade.q)?).map_err(|e| e.to_string())?,
                ts: trade.trade_time,
                id: trade.t,
                simulated: false,
            })))
        }
        _ => Ok(None),
    }
}

/// How the Binance loop ended.
#[derive(Debug, PartialEq, Eq)]
pub enum BinanceEnd {
    Stopped,
    /// `give_up_after` connection attempts failed and none ever succeeded.
    NeverConnected,
}

pub struct BinanceConfig {
    pub url: String,
    pub stale_after: Duration,
    pub connect_timeout: Duration,
    pub backoff: Backoff,
    /// In auto mode: give up (and let the caller fall back) after this many failed attempts,
    /// if no connection ever succeeded.
    pub give_up_after: Option<u32>,
}

/// Connects, reads until the connection ends, and reconnects, until stopped.
pub async fn run(
    mut config: BinanceConfig,
    tx: mpsc::Sender<SourceEvent>,
    health: FeedHealth,
    mut stop: watch::Receiver<bool>,
) -> BinanceEnd {
    let (mut ever_connected, mut failures) = (false, 0u32);
    loop {
        let attempt = tokio::select! {
            r = timeout(config.connect_timeout, tokio_tungstenite::connect_async(&config.url)) => r,
            _ = stop.changed() => return BinanceEnd::Stopped,
        };
        match attempt {
            Ok(Ok((ws, _))) => {
                ever_connected = true;
                failures = 0;
                health.set_connected(true);
                tracing::info!(url = %config.url, "connected to Binance");
                let end = read_loop(ws, &tx, &health, config.stale_after, &mut stop).await;
                health.set_connected(false);
                match end {
                    ReadEnd::Stop => return BinanceEnd::Stopped,
                    ReadEnd::Lost { reason, had_data } => {
                        tracing::warn!(%reason, "Binance connection lost; reconnecting");
                        if had_data {
                            config.backoff.reset();
                        }
                    }
                }
            }
            Ok(Err(e)) => {
                failures += 1;
                tracing::warn!(error = %e, failures, "cannot connect to Binance");
            }
            Err(_) => {
                failures += 1;
                tracing::warn!(failures, "connecting to Binance timed out");
            }
        }
        if !ever_connected && config.give_up_after.is_some_and(|n| failures >= n) {
            return BinanceEnd::NeverConnected;
        }
        health.count_reconnect();
        let delay = config.backoff.next_delay();
        tokio::select! {
            _ = sleep(delay) => {}
            _ = stop.changed() => return BinanceEnd::Stopped,
        }
    }
}

enum ReadEnd {
    Stop,
    Lost { reason: String, had_data: bool },
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn read_loop(
    mut ws: Ws,
    tx: &mpsc::Sender<SourceEvent>,
    health: &FeedHealth,
    stale_after: Duration,
    stop: &mut watch::Receiver<bool>,
) -> ReadEnd {
    let mut check = interval((stale_after / 4).max(Duration::from_millis(50)));
    let mut last = Instant::now();
    let mut had_data = false;
    let lost = |reason: String, had_data| ReadEnd::Lost { reason, had_data };
    loop {
        tokio::select! {
            _ = stop.changed() => {
                let _ = ws.close(None).await;
                return ReadEnd::Stop;
            }
            msg = ws.next() => {
                last = Instant::now();
                health.mark_fresh();
                match msg {
                    Some(Ok(Message::Text(text))) => {
                        had_data = true;
                        match parse_message(&text, now_ms()) {
                            Ok(Some(event)) => {
                                if tx.send(event).await.is_err() {
                                    return ReadEnd::Stop;
                                }
                            }
                            Ok(None) => {}
                            Err(e) => tracing::debug!(error = %e, "unreadable Binance message"),
                        }
                    }
                    // tungstenite queues the pong (same payload); flushing sends it now.
                    Some(Ok(Message::Ping(_))) => {
                        if let Err(e) = ws.flush().await {
                            return lost(format!("answering a ping: {e}"), had_data);
                        }
                    }
                    Some(Ok(Message::Close(frame))) => {
                        return lost(format!("closed by Binance: {frame:?}"), had_data);
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return lost(e.to_string(), had_data),
                    None => return lost("connection ended".into(), had_data),
                }
            }
            _ = check.tick() => {
                let idle = last.elapsed();
                if idle >= stale_after && !health.is_stale() {
                    tracing::warn!(idle_ms = idle.as_millis() as u64, "Binance feed is STALE");
                    health.mark_stale();
                }
                if idle >= stale_after * 3 {
                    return lost(format!("no message for {idle:?}"), had_data);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_book_ticker_and_trade_and_ignores_the_rest() {
        let book = r#"{"stream":"btcusdt@bookTicker","data":{"u":400900217,"s":"BTCUSDT","b":"65000.10000000","B":"31.21000000","a":"65000.20000000","A":"40.66000000"}}"#;
        match parse_message(book, 7).expect("parses") {
            Some(SourceEvent::Quote {
                asset,
                bid,
                ask,
                ts,
                simulated,
            }) => {
                assert_eq!((asset, ts, simulated), (Asset::Btc, 7, false));
                assert_eq!(bid, Decimal::from_str("65000.1").expect("d"));
                assert_eq!(ask, Decimal::from_str("65000.2").expect("d"));
            }
            other => panic!("expected a quote, got {other:?}"),
        }
        let trade = r#"{"stream":"ethusdt@trade","data":{"e":"trade","E":1672515782136,"s":"ETHUSDT","t":12345,"p":"3200.01000000","q":"0.50000000","T":1672515782134,"m":true,"M":true}}"#;
        match parse_message(trade, 0).expect("parses") {
            Some(SourceEvent::Trade(t)) => {
                assert_eq!((t.asset, t.id, t.ts), (Asset::Eth, 12345, 1672515782134));
                assert_eq!(t.price.to_string(), "3200.01000000");
            }
            other => panic!("expected a trade, got {other:?}"),
        }
        let other = r#"{"stream":"bnbusdt@bookTicker","data":{"u":1,"s":"BNBUSDT","b":"1","B":"1","a":"2","A":"1"}}"#;
        assert!(parse_message(other, 0).expect("parses").is_none());
        assert!(parse_message("{\"result\":null,\"id\":1}", 0).is_err());
    }

    #[test]
    fn url_names_every_stream() {
        assert_eq!(
            combined_stream_url("wss://stream.binance.com:9443/"),
            "wss://stream.binance.com:9443/stream?streams=btcusdt@bookTicker/btcusdt@trade/\
             ethusdt@bookTicker/ethusdt@trade/solusdt@bookTicker/solusdt@trade"
        );
    }
}
