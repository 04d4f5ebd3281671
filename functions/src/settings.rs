//! Typed settings of the HTTP functions, read from the environment through the shared layer
//! (`bus::settings`) with defaults that work on a development machine (NATS, PostgreSQL on
//! their local ports, no prefix). A bad value is an error naming its variable; `JWT_SECRET` is
//! required (at least 32 bytes) unless `APP_ENV=local`.

use std::time::Duration;

pub use bus::settings::{DEV_JWT_SECRET, Env, SettingsError};
use serde::Deserialize;

#[derive(Clone)]
pub struct Settings {
    pub nats_url: String,
    pub database_url: String,
    /// Isolation prefix of stream and subject names (empty in production).
    pub bus_prefix: String,
    /// HS256 key of the session tokens. Never printed.
    pub jwt_secret: String,
    pub token_ttl: Duration,
    /// How long a request waits for the engine before answering 504.
    pub engine_timeout: Duration,
    /// Largest request body accepted, in bytes.
    pub body_limit: usize,
    /// How long a request waits for a PostgreSQL connection before answering 503.
    pub db_acquire_timeout: Duration,
    pub db_max_connections: u32,
    /// The Redis price stream (`REDIS_URL`, `REDIS_PREFIX`), read by `GET /assets`.
    pub redis_url: String,
    pub redis_prefix: String,
    /// `NATS_DOWN_GRACE_MS`, default 250 ms: while NATS is disconnected, how long an engine
    /// call waits for it to come back before answering 503 `unavailable` (instead of waiting
    /// out the engine timeout).
    pub nats_down_grace: Duration,
    /// Request rates, the client's address behind proxies, password hashing (`crate::limits`).
    pub limits: crate::limits::LimitSettings,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("nats_url", &self.nats_url)
            .field("database_url", &self.database_url)
            .field("bus_prefix", &self.bus_prefix)
            .field("jwt_secret", &"<redacted>")
            .field("token_ttl", &self.token_ttl)
            .field("engine_timeout", &self.engine_timeout)
            .field("body_limit", &self.body_limit)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            nats_url: "nats://127.0.0.1:4222".into(),
            database_url: "postgres://postgres@127.0.0.1:5432/postgres".into(),
            bus_prefix: String::new(),
            jwt_secret: DEV_JWT_SECRET.into(),
            token_ttl: Duration::from_secs(24 * 3600),
            engine_timeout: Duration::from_secs(5),
            body_limit: 16 * 1024,
            db_acquire_timeout: Duration::from_secs(3),
            db_max_connections: 16,
            redis_url: "redis://127.0.0.1:6379".into(),
            redis_prefix: String::new(),
            nats_down_grace: bus::nats::DEFAULT_DOWN_GRACE,
            limits: crate::limits::LimitSettings::default(),
        }
    }
}

/// The functions' variables (unset ones keep the default).
#[derive(Deserialize)]
struct Vars {
    nats_url: Option<String>,
    database_url: Option<String>,
    jwt_ttl_secs: Option<u64>,
    engine_timeout_ms: Option<u64>,
    body_limit_bytes: Option<usize>,
    db_max_connections: Option<u32>,
    redis_url: Option<String>,
    redis_prefix: Option<String>,
    nats_down_grace_ms: Option<u64>,
}

impl Settings {
    /// Reads `NATS_URL`, `DATABASE_URL`, `ENGINE_PREFIX` (shared with the engine),
    /// `JWT_SECRET`, `JWT_TTL_SECS`, `ENGINE_TIMEOUT_MS`, `BODY_LIMIT_BYTES`,
    /// `DB_MAX_CONNECTIONS`, `REDIS_URL`, `REDIS_PREFIX`, `NATS_DOWN_GRACE_MS`. Unset values keep the local default;
    /// a bad one is an error naming it.
    pub fn from_env() -> Result<Self, SettingsError> {
        Self::from_vars(&Env::from_process())
    }

    pub fn from_vars(env: &Env) -> Result<Self, SettingsError> {
        Self::read(env, env.jwt_secret()?)
    }

    /// For processes that never sign or verify tokens (`candle_ingest`): everything but
    /// `JWT_SECRET`, which is left empty (and [`crate::AppState`] refuses an empty key).
    pub fn from_env_without_secret() -> Result<Self, SettingsError> {
        Self::read(&Env::from_process(), String::new())
    }

    fn read(env: &Env, jwt_secret: String) -> Result<Self, SettingsError> {
        let d = Self::default();
        let v: Vars = env.read()?;
        for (name, zero) in [
            ("JWT_TTL_SECS", v.jwt_ttl_secs == Some(0)),
            ("BODY_LIMIT_BYTES", v.body_limit_bytes == Some(0)),
            ("DB_MAX_CONNECTIONS", v.db_max_connections == Some(0)),
        ] {
            if zero {
                return Err(SettingsError::invalid(name, "0", "at least 1"));
            }
        }
        Ok(Self {
            nats_url: v.nats_url.unwrap_or(d.nats_url),
            database_url: v.database_url.unwrap_or(d.database_url),
            bus_prefix: env.bus_prefix()?,
            jwt_secret,
            token_ttl: v.jwt_ttl_secs.map_or(d.token_ttl, Duration::from_secs),
            engine_timeout: v
                .engine_timeout_ms
                .map_or(d.engine_timeout, Duration::from_millis),
            body_limit: v.body_limit_bytes.unwrap_or(d.body_limit),
            db_acquire_timeout: d.db_acquire_timeout,
            db_max_connections: v.db_max_connections.unwrap_or(d.db_max_connections),
            redis_url: v.redis_url.unwrap_or(d.redis_url),
            redis_prefix: v.redis_prefix.unwrap_or(d.redis_prefix),
            nats_down_grace: v
                .nats_down_grace_ms
                .map_or(d.nats_down_grace, Duration::from_millis),
            limits: crate::limits::LimitSettings::from_vars(env)?,
        })
    }
}
