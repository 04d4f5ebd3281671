//! The hub's settings, read from the environment (through [`crate::settings`]) with defaults
//! that work locally.

use std::time::Duration;

use serde::Deserialize;

use super::admission::AdmissionLimits;
use super::mailbox::Limits;
use crate::limits::{Rate, TrustedProxies};
use crate::settings::{DEV_JWT_SECRET, Env, SettingsError};

#[derive(Clone)]
pub struct HubSettings {
    /// Listen address (`WS_ADDR`, default `0.0.0.0:7070`).
    pub bind: String,
    pub redis_url: String,
    pub redis_prefix: String,
    pub nats_url: String,
    pub bus_prefix: String,
    /// HS256 key of the session tokens (`JWT_SECRET`; the default is the development key,
    /// which `from_env` accepts only in local mode). Never printed.
    pub jwt_secret: String,
    /// Connections beyond this are told `too_many_connections` and closed.
    pub max_connections: usize,
    pub limits: Limits,
    /// A send to one client that takes longer than this disconnects it.
    pub write_timeout: Duration,
    /// Kernel send buffer of each client socket (bytes): bounds what a stalled client holds.
    pub send_buffer: usize,
    /// Parts a quote fan-out is written in, in parallel, each of at least 1,024 clients
    /// (`WS_FANOUT_SHARDS`, default: the CPUs this process may run on).
    pub fanout_shards: usize,
    /// `WS_HANDSHAKE_TIMEOUT_MS`, default 10 s: a client that has not completed the upgrade
    /// by then is closed.
    pub handshake_timeout: Duration,
    /// `WS_MAX_HANDSHAKES` (default 1,024), `WS_MAX_HANDSHAKES_PER_ADDRESS` (default 32) and
    /// `WS_MAX_CONNECTIONS_PER_ADDRESS` (default 256; behind a load balancer whose address
    /// the hub sees, raise it to the hub's `WS_MAX_CONNECTIONS`): see [`super::admission`].
    pub admission: AdmissionLimits,
    /// New connections per client address (`WS_CONNECT_RATE`, `N/S`, default 60/60: 60 at
    /// once, one a second after that); over it an HTTP 429 with `Retry-After`.
    pub connect_rate: Rate,
    /// Peers whose clients are not told apart at accept (`TRUSTED_PROXIES`, default none):
    /// the connect rate does not apply to them (the load balancer's WAF rule does).
    pub trusted_proxies: TrustedProxies,
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
            .field("fanout_shards", &self.fanout_shards)
            .field("handshake_timeout", &self.handshake_timeout)
            .field("admission", &self.admission)
            .field("connect_rate", &self.connect_rate)
            .field("trusted_proxies", &self.trusted_proxies)
            .finish()
    }
}

/// A const: a zero in it would not compile (`Rate::of`).
const CONNECT_RATE: Rate = Rate::of(60, 60);

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
            fanout_shards: std::thread::available_parallelism().map_or(1, usize::from),
            handshake_timeout: Duration::from_secs(10),
            admission: AdmissionLimits {
                max_handshakes: 1024,
                max_handshakes_per_address: 32,
                max_connections_per_address: 256,
            },
            connect_rate: CONNECT_RATE,
            trusted_proxies: TrustedProxies::default(),
        }
    }
}

/// The hub's variables (unset ones keep the default).
#[derive(Deserialize)]
struct Vars {
    ws_addr: Option<String>,
    redis_url: Option<String>,
    redis_prefix: Option<String>,
    nats_url: Option<String>,
    ws_max_connections: Option<usize>,
    ws_max_behind: Option<u32>,
    ws_write_timeout_ms: Option<u64>,
    ws_fanout_shards: Option<usize>,
    ws_handshake_timeout_ms: Option<u64>,
    ws_max_handshakes: Option<usize>,
    ws_max_handshakes_per_address: Option<u32>,
    ws_max_connections_per_address: Option<u32>,
}

impl HubSettings {
    /// Reads `WS_ADDR`, `REDIS_URL`, `REDIS_PREFIX`, `NATS_URL`, `ENGINE_PREFIX`, `JWT_SECRET`
    /// (required and strong unless `APP_ENV=local`), `WS_MAX_CONNECTIONS`, `WS_MAX_BEHIND`,
    /// `WS_WRITE_TIMEOUT_MS`, `WS_FANOUT_SHARDS`, `WS_HANDSHAKE_TIMEOUT_MS`, `WS_MAX_HANDSHAKES`,
    /// `WS_MAX_HANDSHAKES_PER_ADDRESS`, `WS_MAX_CONNECTIONS_PER_ADDRESS`. Unset values keep the default; a bad one is an error naming it.
    /// `WS_WRITE_TIMEOUT_MS`, `WS_FANOUT_SHARDS`, `WS_CONNECT_RATE`, `TRUSTED_PROXIES`. Unset values keep the default; a bad one is an error naming it.
    pub fn from_env() -> Result<Self, SettingsError> {
        Self::from_vars(&Env::from_process())
    }

    pub fn from_vars(env: &Env) -> Result<Self, SettingsError> {
        let d = Self::default();
        let v: Vars = env.read()?;
        let max_connections = at_least_one(
            "WS_MAX_CONNECTIONS",
            v.ws_max_connections.unwrap_or(d.max_connections),
        )?;
        let fanout_shards = at_least_one(
            "WS_FANOUT_SHARDS",
            v.ws_fanout_shards.unwrap_or(d.fanout_shards),
        )?;
        let per_address = |name: &str, value: Option<u32>, default: u32| {
            let value = value.unwrap_or(default);
            at_least_one(name, value as usize).map(|_| value)
        };
        let admission = AdmissionLimits {
            max_handshakes: at_least_one(
                "WS_MAX_HANDSHAKES",
                v.ws_max_handshakes.unwrap_or(d.admission.max_handshakes),
            )?,
            max_handshakes_per_address: per_address(
                "WS_MAX_HANDSHAKES_PER_ADDRESS",
                v.ws_max_handshakes_per_address,
                d.admission.max_handshakes_per_address,
            )?,
            max_connections_per_address: per_address(
                "WS_MAX_CONNECTIONS_PER_ADDRESS",
                v.ws_max_connections_per_address,
                d.admission.max_connections_per_address,
            )?,
        };
        let handshake_timeout = match v.ws_handshake_timeout_ms {
            Some(0) => {
                return Err(SettingsError::invalid(
                    "WS_HANDSHAKE_TIMEOUT_MS",
                    "0",
                    "at least 1",
                ));
            }
            Some(ms) => Duration::from_millis(ms),
            None => d.handshake_timeout,
        };
        Ok(Self {
            bind: v.ws_addr.unwrap_or(d.bind),
            redis_url: v.redis_url.unwrap_or(d.redis_url),
            redis_prefix: v.redis_prefix.unwrap_or(d.redis_prefix),
            nats_url: v.nats_url.unwrap_or(d.nats_url),
            bus_prefix: env.bus_prefix()?,
            jwt_secret: env.jwt_secret()?,
            max_connections,
            limits: Limits {
                max_behind: v.ws_max_behind.unwrap_or(d.limits.max_behind),
                ..d.limits
            },
            write_timeout: v
                .ws_write_timeout_ms
                .map_or(d.write_timeout, Duration::from_millis),
            send_buffer: d.send_buffer,
            fanout_shards,
            handshake_timeout,
            admission,
            connect_rate: env
                .parse(
                    "WS_CONNECT_RATE",
                    "N/S: N connections at once, refilled over S seconds",
                )?
                .unwrap_or(d.connect_rate),
            trusted_proxies: env
                .parse(
                    "TRUSTED_PROXIES",
                    "comma-separated addresses or CIDR networks",
                )?
                .unwrap_or_default(),
        })
    }
}

fn at_least_one(name: &str, value: usize) -> Result<usize, SettingsError> {
    if value == 0 {
        return Err(SettingsError::invalid(name, "0", "at least 1"));
    }
    Ok(value)
}
