//! The hub's settings, read from the environment with defaults that work locally.

use std::time::Duration;

use super::mailbox::Limits;

#[derive(Clone)]
pub struct HubSettings {
    /// Listen address (`WS_ADDR`, default `0.0.0.0:7070`).
    pub bind: String,
    pub redis_url: String,
    pub redis_prefix: String,
    pub nats_url: String,
    pub bus_prefix: String,
    /// HS256 key of the session tokens (`JWT_SECRET`). Never printed.
    pub jwt_secret: String,
    /// Connections beyond this are told `too_many_connections` and closed.
    pub max_connections: usize,
    pub limits: Limits,
    /// A send to one client that takes longer than this disconnects it.
    pub write_timeout: Duration,
    /// Kernel send buffer of each client socket (bytes): bounds what a stalled client holds.
    pub send_buffer: usize,
}

impl std::fmt::Debug for HubSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubSettings")
            .field("bind", &self.bind)
            .field("redis_url", &self.redis_url)
            .field("redis_prefix", &self.redis_prefix)
            .field("nats_url", &self.nats_url)
            .field("bus_prefix", &self.bus_prefix)
            .field("jwt_secret", &"<redacted>")
            .field("max_connections", &self.max_connections)
            .field("limits", &self.limits)
            .field("write_timeout", &self.write_timeout)
            .field("send_buffer", &self.send_buffer)
            .finish()
    }
}

/// The functions' development key, so that a local run works with no configuration.
pub const DEV_JWT_SECRET: &str = "dev-only-secret-change-me-in-production";

impl Default for HubSettings {
    fn default() -> Self {
        Self {
            bind: "0.0.0.0:7070".into(),
            redis_url: "redis://127.0.0.1:6379".into(),
            redis_prefix: String::new(),
            nats_url: "nats://127.0.0.1:4222".into(),
            bus_prefix: String::new(),
            jwt_secret: DEV_JWT_SECRET.into(),
            max_connections: 20_000,
            limits: Limits {
                max_behind: 100,
                max_events: 1024,
                max_replies: 64,
            },
            write_timeout: Duration::from_secs(5),
            send_buffer: 64 * 1024,
        }
    }
}

impl HubSettings {
    /// Reads `WS_ADDR`, `REDIS_URL`, `REDIS_PREFIX`, `NATS_URL`, `ENGINE_PREFIX`, `JWT_SECRET`,
    /// `WS_MAX_CONNECTIONS`, `WS_MAX_BEHIND`, `WS_WRITE_TIMEOUT_MS`. Unset values keep the
    /// default; unreadable numbers are an error.
    pub fn from_env() -> Result<Self, String> {
        let mut s = Self::default();
        let var = |key: &str| std::env::var(key).ok().filter(|v| !v.is_empty());
        let number = |key: &str| -> Result<Option<u64>, String> {
            var(key)
                .map(|v| {
                    v.parse::<u64>()
                        .map_err(|_| format!("{key}={v:?} is not a number"))
                })
                .transpose()
        };
        s.bind = var("WS_ADDR").unwrap_or(s.bind);
        s.redis_url = var("REDIS_URL").unwrap_or(s.redis_url);
        s.redis_prefix = var("REDIS_PREFIX").unwrap_or(s.redis_prefix);
        s.nats_url = var("NATS_URL").unwrap_or(s.nats_url);
        s.bus_prefix = var("ENGINE_PREFIX").unwrap_or(s.bus_prefix);
        s.jwt_secret = var("JWT_SECRET").unwrap_or(s.jwt_secret);
        if let Some(n) = number("WS_MAX_CONNECTIONS")? {
            s.max_connections = usize::try_from(n).map_err(|e| e.to_string())?;
        }
        if let Some(n) = number("WS_MAX_BEHIND")? {
            s.limits.max_behind = u32::try_from(n).map_err(|e| e.to_string())?;
        }
        if let Some(n) = number("WS_WRITE_TIMEOUT_MS")? {
            s.write_timeout = Duration::from_millis(n);
        }
        Ok(s)
    }
}
