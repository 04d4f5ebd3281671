//! The functions' read side of the Redis price stream: the latest quote per asset that the
//! price feed keeps (`bus::prices`), so `GET /assets` can say whether prices are simulated.
//! Best effort: Redis being down never fails a request, the answer is just unknown.

use std::time::Duration;

use bus::{MarketQuote, PriceKeys};
use redis::aio::ConnectionManager;
use tokio::sync::OnceCell;

/// How long a request waits for Redis before answering without it.
const REDIS_WAIT: Duration = Duration::from_millis(300);

pub struct LatestQuotes {
    client: Option<redis::Client>,
    keys: PriceKeys,
    conn: OnceCell<ConnectionManager>,
}

impl LatestQuotes {
    /// Does not connect (a cold start must not fail for Redis); an unreadable URL disables it.
    pub fn new(redis_url: &str, redis_prefix: &str) -> Self {
        let client = redis::Client::open(redis_url)
            .inspect_err(|e| tracing::warn!(error = %e, "bad REDIS_URL: quotes' source unknown"))
            .ok();
        Self {
            client,
            keys: PriceKeys::new(redis_prefix),
            conn: OnceCell::new(),
        }
    }

    /// The latest quote of each asset the feed has published recently, in [`Asset::ALL`]
    /// order; empty when Redis does not answer in time.
    pub async fn get(&self) -> Vec<MarketQuote> {
        let Some(client) = &self.client else {
            return Vec::new();
        };
        let read = async {
            let conn = self
                .conn
                .get_or_try_init(|| client.get_connection_manager())
                .await?;
            bus::prices::latest_quotes(&mut conn.clone(), &self.keys).await
        };
        match tokio::time::timeout(REDIS_WAIT, read).await {
            Ok(Ok(quotes)) => quotes,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "reading the latest quotes from Redis");
                Vec::new()
            }
            Err(_) => Vec::new(),
        }
    }

    /// Whether each asset's latest quote is simulated; `None` when unknown.
    pub async fn simulated(&self) -> [Option<bool>; 3] {
        let mut flags = [None; 3];
        for quote in self.get().await {
            flags[quote.asset.index()] = Some(quote.simulated);
        }
        flags
    }
}
