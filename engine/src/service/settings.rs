//! The engine process's settings, read from the environment with defaults that work on a
//! development machine (NATS, PostgreSQL on their local default ports).

use std::time::Duration;

use bus::Names;
use bus::nats::StreamSettings;

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
    pub engine: EngineConfig,
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn parsed<T: std::str::FromStr>(name: &str, default: T) -> Result<T, ServiceError> {
    match var(name) {
        None => Ok(default),
        Some(v) => v
            .trim()
            .parse()
            .map_err(|_| ServiceError::Config(format!("{name}={v:?} is not valid"))),
    }
}

fn default_instance_id() -> String {
    let host = var("HOSTNAME")
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
            instance_id: default_instance_id(),
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

    /// Reads the environment over [`Settings::local`].
    pub fn from_env() -> Result<Self, ServiceError> {
        let d = Self::local();
        let prefix = var("ENGINE_PREFIX").unwrap_or_default();
        let valid = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
        if !prefix.chars().all(valid) {
            return Err(ServiceError::Config(format!(
                "ENGINE_PREFIX={prefix:?}: letters, digits, '_' and '-' only"
            )));
        }
        Ok(Self {
            nats_url: var("NATS_URL").unwrap_or(d.nats_url),
            database_url: var("DATABASE_URL").unwrap_or(d.database_url),
            mongodb_url: var("MONGODB_URL"),
            names: Names::new(prefix),
            instance_id: var("ENGINE_ID").unwrap_or(d.instance_id),
            snapshot_every: parsed("ENGINE_SNAPSHOT_EVERY", d.snapshot_every)?.max(1),
            snapshot_interval: Duration::from_secs(parsed("ENGINE_SNAPSHOT_SECS", 60u64)?.max(1)),
            snapshot_keep: parsed("ENGINE_SNAPSHOT_KEEP", d.snapshot_keep)?.max(2),
            purge_inputs: parsed("ENGINE_PURGE_INPUTS", d.purge_inputs)?,
            lock_ttl: Duration::from_millis(parsed("ENGINE_LOCK_TTL_MS", 5_000u64)?.max(500)),
            batch: parsed("ENGINE_BATCH", d.batch)?.clamp(1, 10_000),
            streams: d.streams,
            engine: d.engine,
        })
    }
}
