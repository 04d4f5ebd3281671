//! The alerts worker: a long-lived part (a task of the local runner, or the `alerts` binary)
//! that fires price alerts from the Redis price stream.
//!
//! At start it subscribes to the quotes, loads every active alert into an ordered index
//! ([`AlertIndex`]: O(log n + fired) per quote), delivers what a previous run fired but did
//! not deliver, and checks the latest quotes (those published while it was down are not
//! replayed by Redis). Then, per quote, the crossed alerts leave the index and are marked
//! triggered in one `UPDATE ... WHERE status = 'active'` (fired exactly once, whoever races),
//! published on their user's NATS subject for the hub, and flagged `delivered`. A crash between
//! the mark and the flag is covered by the outbox pass at the next start (and every
//! [`CATCH_UP_EVERY`]): delivery is at least once, each message carries the alert id.
//!
//! New and cancelled alerts arrive by a NATS notification from the routes, and a periodic
//! catch-up reads every alert changed in a recent window (a lost notification costs at most
//! [`CATCH_UP_EVERY`]).

use std::future::Future;
use std::time::Duration;

use bus::{MarketQuote, Names, PriceKeys, UserId};
use futures_util::StreamExt;
use sqlx::PgPool;

use super::AlertBody;
use super::index::{AlertId, AlertIndex};
use super::store;
use crate::error::is_unavailable;

/// How often the worker catches up on changes it was not told about and retries delivery.
pub const CATCH_UP_EVERY: Duration = Duration::from_secs(2);
/// How far back each catch-up reads (far longer than any insert's transaction).
const CATCH_UP_OVERLAP_MS: i64 = 30_000;
/// Most fired alerts one outbox pass delivers.
const OUTBOX_BATCH: i64 = 500;

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("postgres: {0}")]
    Db(#[from] sqlx::Error),
    #[error("nats: {0}")]
    Nats(String),
    #[error("the price stream ended")]
    StreamEnded,
}

/// Where the worker reads and writes.
#[derive(Clone)]
pub struct Worker {
    pub nats: async_nats::Client,
    pub names: Names,
    pub db: PgPool,
    pub redis_url: String,
    pub keys: PriceKeys,
}

/// The `{"type":"alert","alert":{…}}` client message.
pub fn message(alert: &AlertBody) -> String {
    serde_json::json!({ "type": "alert", "alert": alert }).to_string()
}

impl Worker {
    /// Runs until `shutdown` resolves; an error (Redis or PostgreSQL lost at start, the
    /// price stream ended) is for the supervisor to start it again, which reloads everything.
    pub async fn run(&self, shutdown: impl Future<Output = ()> + Send) -> Result<(), WorkerError> {
        let client = redis::Client::open(self.redis_url.as_str())?;
        let mut pubsub = client.get_async_pubsub().await?;
        pubsub.subscribe(self.keys.all_channel()).await?;
        let mut changes = self
            .nats
            .subscribe(self.names.alerts_changed())
            .await
            .map_err(|e| WorkerError::Nats(e.to_string()))?;
        // Subscribed first, then loaded: no change or quote falls between the two.
        let mut since = store::now_ms(&self.db).await? - CATCH_UP_OVERLAP_MS;
        let mut index = AlertIndex::default();
        store::load_active(&self.db, &mut index).await?;
        tracing::info!(active = index.len(), "alerts worker loaded its index");
        self.deliver_outbox().await;
        let mut conn = client.get_multiplexed_async_connection().await?;
        for quote in bus::prices::latest_quotes(&mut conn, &self.keys).await? {
            self.on_quote(&mut index, &quote).await;
        }
        let mut quotes = pubsub.into_on_message();
        let mut catch_up = tokio::time::interval(CATCH_UP_EVERY);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => return Ok(()),
                msg = quotes.next() => {
                    let msg = msg.ok_or(WorkerError::StreamEnded)?;
                    let Ok(text) = msg.get_payload::<String>() else { continue };
                    if let Ok(quote) = serde_json::from_str::<MarketQuote>(&text) {
                        self.on_quote(&mut index, &quote).await;
                    }
                }
                change = changes.next() => {
                    let change = change.ok_or_else(|| WorkerError::Nats("subscription ended".into()))?;
                    if let Ok(id) = std::str::from_utf8(&change.payload).unwrap_or("").parse() {
                        self.refresh(&mut index, id).await;
                    }
                }
                _ = catch_up.tick() => {
                    since = self.catch_up(&mut index, since).await;
                    self.deliver_outbox().await;
                }
            }
        }
    }

    /// Fires what `quote` crosses. If the database cannot be written, the alerts go back into
    /// the index and fire on a later quote.
    async fn on_quote(&self, index: &mut AlertIndex, quote: &MarketQuote) {
        let crossed = index.take_crossed(quote);
        if crossed.is_empty() {
            return;
        }
        match store::fire(&self.db, &crossed, quote.ts).await {
            Ok(fired) => self.deliver(&fired).await,
            Err(e) => {
                if is_unavailable(&e) {
                    tracing::warn!(error = %e, "alerts: cannot mark fired alerts; keeping them armed");
                } else {
                    tracing::error!(error = %e, "alerts: marking fired alerts failed");
                }
                for c in crossed {
                    index.insert(c.id, c.armed);
                }
            }
        }
    }

    /// Publishes fired alerts to their users and flags them delivered once NATS has them.
    async fn deliver(&self, fired: &[(UserId, AlertBody)]) {
        if fired.is_empty() {
            return;
        }
        for (user, alert) in fired {
            tracing::info!(alert_id = alert.id, %user, "alert fired");
            let subject = self.names.alert_user(*user);
            if let Err(e) = self.nats.publish(subject, message(alert).into()).await {
                tracing::warn!(error = %e, "alerts: publish failed; the outbox retries");
                return;
            }
        }
        if let Err(e) = self.nats.flush().await {
            tracing::warn!(error = %e, "alerts: flush failed; the outbox retries");
            return;
        }
        let ids: Vec<AlertId> = fired.iter().map(|(_, a)| a.id).collect();
        if let Err(e) = store::mark_delivered(&self.db, &ids).await {
            tracing::warn!(error = %e, "alerts: delivered flag not written; may be sent again");
        }
    }

    /// Delivers alerts fired but not delivered (by this run or one that crashed).
    async fn deliver_outbox(&self) {
        match store::undelivered(&self.db, OUTBOX_BATCH).await {
            Ok(pending) => self.deliver(&pending).await,
            Err(e) => tracing::warn!(error = %e, "alerts: reading the outbox failed"),
        }
    }

    /// Arms or disarms one alert as it is stored now.
    async fn refresh(&self, index: &mut AlertIndex, id: AlertId) {
        match store::one(&self.db, id).await {
            Ok(Some(Some(armed))) => index.insert(id, armed),
            Ok(_) => {
                index.remove(id);
            }
            Err(e) => tracing::warn!(error = %e, "alerts: reading a changed alert failed"),
        }
    }

    /// Applies every change since `since`; the next window's start.
    async fn catch_up(&self, index: &mut AlertIndex, since: i64) -> i64 {
        let read = async {
            let now = store::now_ms(&self.db).await?;
            let changed = store::changed_since(&self.db, since).await?;
            Ok::<_, sqlx::Error>((now, changed))
        };
        match read.await {
            Ok((now, changed)) => {
                for (id, armed) in changed {
                    match armed {
                        Some(armed) => index.insert(id, armed),
                        None => {
                            index.remove(id);
                        }
                    }
                }
                now - CATCH_UP_OVERLAP_MS
            }
            Err(e) => {
                tracing::warn!(error = %e, "alerts: catch-up failed; retrying");
                since
            }
        }
    }
}
