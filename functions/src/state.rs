//! The state every HTTP function shares: the engine client, the PostgreSQL pool, the token
//! keys and the asset table. Cheap to clone (one `Arc`); built once per process (per Lambda
//! container, or once in the local runner).

use std::sync::Arc;
use std::time::Duration;

use bus::Names;
use bus::nats::EngineClient;
use engine::AssetTable;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

use crate::auth::{PasswordHasher, TokenKeys};
use crate::settings::Settings;

#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    engine: EngineClient,
    nats: async_nats::Client,
    db: PgPool,
    tokens: TokenKeys,
    passwords: PasswordHasher,
    assets: AssetTable,
    body_limit: usize,
    quotes: crate::market::LatestQuotes,
    /// More `/readyz` checks of a process that runs other parts too (the local runner).
    more_readiness: std::sync::OnceLock<bus::process::ReadyFn>,
    users: crate::users::UserCheck,
    limits: crate::limits::RateLimits,
}

/// Why the state could not be built (only at start-up; requests never see this).
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("bad NATS settings: {0}")]
    Nats(String),
    #[error("bad database settings: {0}")]
    Database(#[from] sqlx::Error),
    #[error("password hashing setup failed: {0}")]
    Hashing(String),
    #[error("JWT_SECRET is empty: no tokens can be signed or verified")]
    NoSecret,
}

impl AppState {
    /// Builds the state from live connections (the local runner and tests share theirs).
    pub fn new(
        settings: &Settings,
        nats: async_nats::Client,
        db: PgPool,
    ) -> Result<Self, StartError> {
        let names = Names::new(settings.bus_prefix.clone());
        let engine = EngineClient::new(nats.clone(), names, settings.engine_timeout)
            .with_down_grace(settings.nats_down_grace);
        if settings.jwt_secret.is_empty() {
            return Err(StartError::NoSecret);
        }
        if settings.jwt_secret == crate::settings::DEV_JWT_SECRET {
            tracing::warn!(
                "APP_ENV=local and JWT_SECRET is not set: signing tokens with the public development key"
            );
        }
        let passwords = PasswordHasher::new(&settings.limits).map_err(StartError::Hashing)?;
        Ok(Self {
            inner: Arc::new(Inner {
                engine,
                nats,
                users: crate::users::UserCheck::new(db.clone()),
                db,
                tokens: TokenKeys::new(settings.jwt_secret.as_bytes(), settings.token_ttl),
                passwords,
                assets: AssetTable::default(),
                body_limit: settings.body_limit,
                quotes: crate::market::LatestQuotes::new(
                    &settings.redis_url,
                    &settings.redis_prefix,
                ),
                more_readiness: std::sync::OnceLock::new(),
                limits: crate::limits::RateLimits::new(&settings.limits),
            }),
        })
    }

    /// Connects lazily: neither NATS nor PostgreSQL has to be up for this to succeed (a
    /// Lambda cold start must not fail for a blip); requests answer 503 until they are.
    pub async fn connect(settings: &Settings) -> Result<Self, StartError> {
        let nats = connect_nats(&settings.nats_url).await?;
        let db = lazy_pool(settings)?;
        Self::new(settings, nats, db)
    }

    pub fn engine(&self) -> &EngineClient {
        &self.inner.engine
    }

    pub fn nats(&self) -> &async_nats::Client {
        &self.inner.nats
    }

    pub fn db(&self) -> &PgPool {
        &self.inner.db
    }

    /// Whether token users still exist (one query for many requests).
    pub fn users(&self) -> &crate::users::UserCheck {
        &self.inner.users
    }

    /// The per-client rate limiters (`crate::limits`).
    pub fn limits(&self) -> &crate::limits::RateLimits {
        &self.inner.limits
    }

    pub fn tokens(&self) -> &TokenKeys {
        &self.inner.tokens
    }

    pub fn passwords(&self) -> &PasswordHasher {
        &self.inner.passwords
    }

    pub fn assets(&self) -> &AssetTable {
        &self.inner.assets
    }

    pub fn body_limit(&self) -> usize {
        self.inner.body_limit
    }

    /// The price feed's latest quotes in Redis (best effort).
    pub fn quotes(&self) -> &crate::market::LatestQuotes {
        &self.inner.quotes
    }

    /// Whether the NATS connection is up right now (a timeout while it is down is a 503).
    /// Adds the checks of the process's other parts (engine, feed, hub) to `/readyz`; once.
    pub fn add_readiness(&self, more: bus::process::ReadyFn) {
        if self.inner.more_readiness.set(more).is_err() {
            tracing::warn!("readiness checks were added already; keeping the first");
        }
    }

    pub fn more_readiness(&self) -> Option<&bus::process::ReadyFn> {
        self.inner.more_readiness.get()
    }

    pub fn nats_connected(&self) -> bool {
        self.inner.nats.connection_state() == async_nats::connection::State::Connected
    }
}

/// A NATS client that keeps retrying in the background when the server is not up yet.
pub async fn connect_nats(url: &str) -> Result<async_nats::Client, StartError> {
    async_nats::ConnectOptions::new()
        .retry_on_initial_connect()
        .connection_timeout(Duration::from_secs(2))
        .connect(url)
        .await
        .map_err(|e| StartError::Nats(e.to_string()))
}

/// A pool that opens connections on first use and gives up on one after the acquire timeout.
pub fn lazy_pool(settings: &Settings) -> Result<PgPool, StartError> {
    Ok(pool_options(settings).connect_lazy(&settings.database_url)?)
}

pub fn pool_options(settings: &Settings) -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(settings.db_max_connections)
        .acquire_timeout(settings.db_acquire_timeout)
}
