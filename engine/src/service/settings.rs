//! The engine process's settings, read from the environment through the shared layer
//! (`bus::settings`) with defaults that work on a development machine (NATS, PostgreSQL on
//! their local default ports). A bad value is an error naming its variable.
//!
//! The price rules of the engine core come from here at every start (over a snapshot's):
//! `ENGINE_ALLOW_SIMULATED` (default: true in local mode, `APP_ENV=local`, false elsewhere,
//! where true is refused: a platform never trades on simulated prices) and
//! `ENGINE_PRICE_STALE_AFTER_MS` (default 30,000; 0 turns the check off).

use std::time::Duration;

use bus::Names;
use bus::nats::StreamSettings;

use bus::settings::{Env, Mode, SettingsError};

use super::ServiceError;
use crate::EngineConfig;

/// Everything the engine service needs to run. Secrets (URLs with passwords) are never logged.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `NATS_URL`, default `nats://127.0.0.1:4222`.
    pub nats_url: String,
    /// `DATABASE_URL`: the PostgreSQL snapshot store (the default store).
    pub database_url: String,
    /// `MONGODB_URL`: when set, snapshots go to MongoDB (database `exness_snapshots`).
    pub mongodb_url: Option<String>,
    /// `ENGINE_PREFIX`: isolation prefix of every stream, subject and bucket name.
    pub names: Names,
    /// `ENGINE_ID`: this process's name in the writer lock (default: host, pid, random).
    pub instance_id: String,
    /// `ENGINE_SNAPSHOT_EVERY`: take a snapshot after this many inputs (default 100,000:
    /// about a second of replay; a snapshot costs O(state), mostly the idempotency window) ...
    pub snapshot_every: u64,
    /// ... or `ENGINE_SNAPSHOT_SECS` seconds after the last one if anything changed (60).
    pub snapshot_interval: Duration,
    /// `ENGINE_SNAPSHOT_KEEP`: snapshots kept per stream (default 3; at least 2).
    pub snapshot_keep: u32,
    /// `ENGINE_PURGE_INPUTS`: purge `ENGINE` inputs older than the oldest kept snapshot
    /// (default true; tests that replay from sequence 1 turn it off).
    pub purge_inputs: bool,
    /// `ENGINE_LOCK_TTL_MS`: the writer lease; a dead writer's lock frees after this (5,000).
    pub lock_ttl: Duration,
    /// `ENGINE_BATCH`: inputs pulled and applied per batch (default 256).
    pub batch: usize,
    pub streams: StreamSettings,
    /// The engine's rules. From the environment: `ENGINE_IDEMPOTENCY_TTL_SECS` (how long a
    /// command id is remembered at least, default 86,400 = 24 h), `ENGINE_IDEMPOTENCY_PER_USER`
    /// (ids remembered per user, default 10,000), `ENGINE_MAX_PENDING_ORDERS` (per account,
    /// 200), `ENGINE_MAX_OPEN_POSITIONS` (per account, 500), `ENGINE_PAGE_SIZE` (items per
    /// page of a listing query, 100). A snapshot carries the values it was taken with; these
    /// replace them when it loads (see [`crate::Engine::set_limits`]).
    pub engine: EngineConfig,
}

/// The engine's variables (unset ones keep the default).
#[derive(serde::Deserialize)]
struct Vars {
    nats_url: Option<String>,
    database_url: Option<String>,
    mongodb_url: Option<String>,
    engine_id: Option<String>,
    engine_snapshot_every: Option<u64>,
    engine_snapshot_secs: Option<u64>,
    engine_snapshot_keep: Option<u32>,
    engine_purge_inputs: Option<bool>,
    engine_lock_ttl_ms: Option<u64>,
    engine_batch: Option<usize>,
    engine_allow_simulated: Option<bool>,
    engine_price_stale_after_ms: Option<u64>,
    engine_idempotency_ttl_secs: Option<u32>,
    engine_idempotency_per_user: Option<usize>,
    engine_max_pending_orders: Option<usize>,
    engine_max_open_positions: Option<usize>,
    engine_page_size: Option<usize>,
}

fn default_instance_id(env: &Env) -> String {
    let host = env
        .get("HOSTNAME")
        .map(str::to_string)
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "engine".into());
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!("{host}-{}-{}", std::process::id(), &random[..8])
}

impl Settings {
    /// Local defaults: what a developer machine runs.
    pub fn local() -> Self {
        Self {
            nats_url: "nats://127.0.0.1:4222".into(),
            database_url: migrations::DEFAULT_DATABASE_URL.into(),
            mongodb_url: None,
            names: Names::default(),
            instance_id: default_instance_id(&Env::from_process()),
            snapshot_every: 100_000,
            snapshot_interval: Duration::from_secs(60),
            snapshot_keep: 3,
            purge_inputs: true,
            lock_ttl: Duration::from_millis(5_000),
            batch: 256,
            streams: StreamSettings::default(),
            engine: EngineConfig::default(),
        }
    }

    /// Reads the environment over [`Settings::local`]; a bad value is an error naming it.
    pub fn from_env() -> Result<Self, ServiceError> {
        Self::from_vars(&Env::from_process())
    }

    pub fn from_vars(env: &Env) -> Result<Self, ServiceError> {
        let config = |e: SettingsError| ServiceError::Config(e.to_string());
        let d = Self::local();
        let v: Vars = env.read().map_err(config)?;
        let mut engine = d.engine;
        engine.allow_simulated_prices = allow_simulated(env.mode().map_err(config)?, &v)?;
        engine.price_stale_after_ms = v
            .engine_price_stale_after_ms
            .unwrap_or(engine.price_stale_after_ms);
        Ok(Self {
            nats_url: v.nats_url.unwrap_or(d.nats_url),
            database_url: v.database_url.unwrap_or(d.database_url),
            mongodb_url: v.mongodb_url,
            names: Names::new(env.bus_prefix().map_err(config)?),
            instance_id: v.engine_id.unwrap_or_else(|| default_instance_id(env)),
            snapshot_every: v.engine_snapshot_every.unwrap_or(d.snapshot_every).max(1),
            snapshot_interval: v
                .engine_snapshot_secs
                .map_or(d.snapshot_interval, |s| Duration::from_secs(s.max(1))),
            snapshot_keep: v.engine_snapshot_keep.unwrap_or(d.snapshot_keep).max(2),
            purge_inputs: v.engine_purge_inputs.unwrap_or(d.purge_inputs),
            lock_ttl: v
                .engine_lock_ttl_ms
                .map_or(d.lock_ttl, |ms| Duration::from_millis(ms.max(500))),
            batch: v.engine_batch.unwrap_or(d.batch).clamp(1, 10_000),
            streams: d.streams,
            engine: EngineConfig {
                idempotency_ttl_ms: v
                    .engine_idempotency_ttl_secs
                    .map_or(engine.idempotency_ttl_ms, |s| i64::from(s.max(1)) * 1_000),
                idempotency_window: v
                    .engine_idempotency_per_user
                    .unwrap_or(engine.idempotency_window)
                    .max(1),
                max_pending_orders: v
                    .engine_max_pending_orders
                    .unwrap_or(engine.max_pending_orders),
                max_open_positions: v
                    .engine_max_open_positions
                    .unwrap_or(engine.max_open_positions),
                page_size: v
                    .engine_page_size
                    .unwrap_or(engine.page_size)
                    .clamp(1, 10_000),
                ..engine
            },
        })
    }
}

/// `ENGINE_ALLOW_SIMULATED`: local mode allows simulated ticks unless told otherwise; outside
/// it they are always refused.
fn allow_simulated(mode: Mode, v: &Vars) -> Result<bool, ServiceError> {
    match (mode, v.engine_allow_simulated) {
        (Mode::Local, allow) => Ok(allow.unwrap_or(true)),
        (Mode::Production, Some(true)) => Err(ServiceError::Config(
            "ENGINE_ALLOW_SIMULATED=true is refused outside local mode: a platform never \
             trades on simulated prices (set APP_ENV=local for development)"
                .into(),
        )),
        (Mode::Production, _) => Ok(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        Env::from_pairs(pairs.iter().copied())
    }

    #[test]
    fn a_bad_value_names_its_variable() {
        for (name, value) in [
            ("ENGINE_SNAPSHOT_EVERY", "often"),
            ("ENGINE_SNAPSHOT_SECS", "-1"),
            ("ENGINE_SNAPSHOT_KEEP", "3.5"),
            ("ENGINE_PURGE_INPUTS", "yes"),
            ("ENGINE_LOCK_TTL_MS", "5s"),
            ("ENGINE_BATCH", "big"),
            ("ENGINE_PREFIX", "a b"),
            ("ENGINE_IDEMPOTENCY_TTL_SECS", "1d"),
            ("ENGINE_IDEMPOTENCY_PER_USER", "-5"),
            ("ENGINE_MAX_PENDING_ORDERS", "many"),
            ("ENGINE_MAX_OPEN_POSITIONS", "1.5"),
            ("ENGINE_PAGE_SIZE", "x"),
        ] {
            let err = Settings::from_vars(&env(&[(name, value)]))
                .err()
                .unwrap_or_else(|| panic!("{name}={value} accepted"));
            assert!(err.to_string().contains(name), "{name}: {err}");
        }
        let s = Settings::from_vars(&env(&[
            ("ENGINE_BATCH", "64"),
            ("ENGINE_PURGE_INPUTS", "false"),
            ("ENGINE_ID", "e1"),
            ("ENGINE_SNAPSHOT_KEEP", "1"),
        ]))
        .expect("reads");
        assert_eq!((s.batch, s.purge_inputs), (64, false));
        assert_eq!((s.instance_id.as_str(), s.snapshot_keep), ("e1", 2));
        assert_eq!(s.lock_ttl, Duration::from_millis(5_000));
        let d = EngineConfig::default();
        assert_eq!(
            (d.idempotency_ttl_ms, d.idempotency_window),
            (86_400_000, 10_000)
        );
        assert_eq!(
            (d.max_pending_orders, d.max_open_positions, d.page_size),
            (200, 500, 100)
        );
        let s = Settings::from_vars(&env(&[
            ("ENGINE_IDEMPOTENCY_TTL_SECS", "60"),
            ("ENGINE_IDEMPOTENCY_PER_USER", "5"),
            ("ENGINE_MAX_PENDING_ORDERS", "3"),
            ("ENGINE_MAX_OPEN_POSITIONS", "4"),
            ("ENGINE_PAGE_SIZE", "2"),
        ]))
        .expect("reads");
        let e = &s.engine;
        assert_eq!((e.idempotency_ttl_ms, e.idempotency_window), (60_000, 5));
        assert_eq!(
            (e.max_pending_orders, e.max_open_positions, e.page_size),
            (3, 4, 2)
        );
    }

    #[test]
    fn simulated_prices_only_in_local_mode_and_the_stale_limit_is_read() {
        let production = Settings::from_vars(&env(&[])).expect("reads");
        assert!(!production.engine.allow_simulated_prices);
        assert_eq!(production.engine.price_stale_after_ms, 30_000);
        let local = Settings::from_vars(&env(&[("APP_ENV", "local")])).expect("reads");
        assert!(local.engine.allow_simulated_prices);
        let strict = Settings::from_vars(&env(&[
            ("APP_ENV", "local"),
            ("ENGINE_ALLOW_SIMULATED", "false"),
            ("ENGINE_PRICE_STALE_AFTER_MS", "0"),
        ]))
        .expect("reads");
        assert!(!strict.engine.allow_simulated_prices);
        assert_eq!(strict.engine.price_stale_after_ms, 0);
        for (name, value) in [
            ("ENGINE_ALLOW_SIMULATED", "true"),
            ("ENGINE_ALLOW_SIMULATED", "maybe"),
            ("ENGINE_PRICE_STALE_AFTER_MS", "30s"),
        ] {
            let err = Settings::from_vars(&env(&[(name, value)]))
                .err()
                .unwrap_or_else(|| panic!("{name}={value} accepted outside local mode"));
            assert!(err.to_string().contains(name), "{name}: {err}");
        }
    }
}
