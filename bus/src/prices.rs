//! The Redis price stream: every platform quote is published on its asset's channel and on the
//! all-assets channel, and the newest quote of each asset is kept under a key (read by
//! `GET /assets` and by the WebSocket hub for a client's first snapshot).

use redis::aio::ConnectionLike;

use crate::market::{MarketQuote, PriceKeys};
use crate::types::Asset;

/// How long the latest-quote key lives without a refresh: a dead feed's last quote expires
/// instead of being shown as current forever.
pub const LATEST_TTL_SECS: u64 = 300;

/// Publishes `quote` on both channels and stores it as the asset's latest, in one round trip.
pub async fn publish_quote<C: ConnectionLike>(
    conn: &mut C,
    keys: &PriceKeys,
    quote: &MarketQuote,
) -> redis::RedisResult<()> {
    let json = quote.to_json();
    redis::pipe()
        .cmd("PUBLISH")
        .arg(keys.asset_channel(quote.asset))
        .arg(&json)
        .ignore()
        .cmd("PUBLISH")
        .arg(keys.all_channel())
        .arg(&json)
        .ignore()
        .cmd("SET")
        .arg(keys.latest_key(quote.asset))
        .arg(&json)
        .arg("EX")
        .arg(LATEST_TTL_SECS)
        .ignore()
        .query_async(conn)
        .await
}

/// The latest quote of every asset that has one, in [`Asset::ALL`] order. Unreadable values
/// (another writer's format) are skipped.
pub async fn latest_quotes<C: ConnectionLike>(
    conn: &mut C,
    keys: &PriceKeys,
) -> redis::RedisResult<Vec<MarketQuote>> {
    let names: Vec<String> = Asset::ALL.iter().map(|a| keys.latest_key(*a)).collect();
    let values: Vec<Option<String>> = redis::cmd("MGET").arg(&names).query_async(conn).await?;
    Ok(values
        .into_iter()
        .flatten()
        .filter_map(|json| serde_json::from_str(&json).ok())
        .collect())
}
