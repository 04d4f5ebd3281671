//! Typed settings of the HTTP functions, read from the environment with defaults that work
//! on a development machine (NATS, PostgreSQL on their local ports, no prefix).

use std::time::Duration;

/// The development signing key: fine locally, refused nowhere, but logged as a warning.
pub const DEV_JWT_SECRET: &str = "dev-only-secret-change-me-in-production";

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
        }
    }
}

impl Settings {
    /// Reads `NATS_URL`, `DATABASE_URL`, `ENGINE_PREFIX` (shared with the engine), `JWT_SECRET`, `JWT_TTL_SECS`,
    /// `ENGINE_TIMEOUT_MS`, `BODY_LIMIT_BYTES`, `DB_MAX_CONNECTIONS`; unset or unreadable
    /// values keep the local default.
    pub fn from_env() -> Self {
        let d = Self::default();
        let text = |key: &str, default: String| std::env::var(key).unwrap_or(default);
        let number = |key: &str| std::env::var(key).ok().and_then(|v| v.parse::<u64>().ok());
        Self {
            nats_url: text("NATS_URL", d.nats_url),
            database_url: text("DATABASE_URL", d.database_url),
            bus_prefix: text("ENGINE_PREFIX", d.bus_prefix),
            jwt_secret: text("JWT_SECRET", d.jwt_secret),
            token_ttl: number("JWT_TTL_SECS").map_or(d.token_ttl, Duration::from_secs),
            engine_timeout: number("ENGINE_TIMEOUT_MS")
                .map_or(d.engine_timeout, Duration::from_millis),
            body_limit: number("BODY_LIMIT_BYTES")
                .and_then(|n| usize::try_from(n).ok())
                .unwrap_or(d.body_limit),
            db_acquire_timeout: d.db_acquire_timeout,
            db_max_connections: number("DB_MAX_CONNECTIONS")
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or(d.db_max_connections),
            redis_url: text("REDIS_URL", d.redis_url),
            redis_prefix: text("REDIS_PREFIX", d.redis_prefix),
        }
    }
}
