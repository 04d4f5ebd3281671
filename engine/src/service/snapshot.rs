//! Snapshots: `{engine state, last applied ENGINE sequence, format version}`, written to
//! PostgreSQL (table `engine_snapshots`, the default) or MongoDB (`MONGODB_URL`, feature
//! `mongo`), read back newest first at start-up.
//!
//! A snapshot blob is self-checking: a header line `ENGINE-SNAPSHOT <format> <last_seq>
//! <fnv64 of the body> <body length>` then the engine state as JSON. A blob whose header,
//! length, checksum or JSON does not check out is refused, and recovery falls back to the
//! previous snapshot.

use sqlx::PgPool;

use super::ServiceError;
use crate::Engine;

/// The blob format this build writes. 4: the state carries the log time each asset's quote was
/// applied at (for `price_stale`), the configuration the price rules and the per-account
/// limits, and command ids are remembered per user and by time (`remembered`; the old global
/// window `applied` is still read, and dropped one idempotency ttl after the first command
/// since).
/// 3: the state carries pending orders, the next order id
/// and which stop-losses their trailing stop set (and positions their trailing distance).
/// 2: command fingerprints are SHA-256 ([`bus::Fingerprint`]) and shown liquidation prices
/// are rounded away from the open price.
pub const FORMAT: i32 = 4;
/// Older formats are still read, never refused: recovery must not fall back past them,
/// because the inputs at or below the oldest kept snapshot are purged from `ENGINE`.
/// Format 3 reads as today's state with the old window and each quote applied at its tick's
/// own time (the price rules and limits at their defaults, replaced by the settings at start);
/// format 2 also without orders or trails (the fields default); format 1
/// (a `std::hash` fingerprint, liquidation prices rounded towards the open) through
/// [`Engine::restore_format_1`].
const FORMAT_3: &str = "3";
const FORMAT_2: &str = "2";
const FORMAT_1: &str = "1";
const MAGIC: &str = "ENGINE-SNAPSHOT";

/// A snapshot's row without its state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotMeta {
    pub id: String,
    pub last_seq: u64,
    pub format: i32,
}

fn fnv64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Serialises the engine into a self-checking blob.
pub fn encode(engine: &Engine, last_seq: u64) -> Vec<u8> {
    let body = engine.snapshot();
    let header = format!(
        "{MAGIC} {FORMAT} {last_seq} {:016x} {}\n",
        fnv64(&body),
        body.len()
    );
    let mut blob = header.into_bytes();
    blob.extend_from_slice(&body);
    blob
}

/// Reads a blob back; `Err` says why it is unusable.
pub fn decode(blob: &[u8], expected_seq: u64) -> Result<Engine, String> {
    let newline = blob
        .iter()
        .position(|b| *b == b'\n')
        .ok_or("no header line")?;
    let header = std::str::from_utf8(&blob[..newline]).map_err(|_| "header is not text")?;
    let body = &blob[newline + 1..];
    let fields: Vec<&str> = header.split(' ').collect();
    let [magic, format, seq, sum, len] = fields[..] else {
        return Err(format!("malformed header {header:?}"));
    };
    let current = format == FORMAT.to_string() || format == FORMAT_3 || format == FORMAT_2;
    if magic != MAGIC || !(current || format == FORMAT_1) {
        return Err(format!(
            "unknown snapshot format {header:?} (this build reads formats 1 to {FORMAT})"
        ));
    }
    if seq.parse::<u64>().ok() != Some(expected_seq) {
        return Err(format!("header sequence {seq} != stored {expected_seq}"));
    }
    if len.parse::<usize>().ok() != Some(body.len()) {
        return Err(format!("body is {} bytes, header says {len}", body.len()));
    }
    if u64::from_str_radix(sum, 16).ok() != Some(fnv64(body)) {
        return Err("checksum mismatch".into());
    }
    let restored = if current {
        Engine::restore(body)
    } else {
        Engine::restore_format_1(body)
    };
    restored.map_err(|e| format!("state of format {format} does not parse: {e}"))
}

/// Where snapshots live.
#[derive(Clone)]
pub enum SnapshotStore {
    Postgres(PgPool),
    #[cfg(feature = "mongo")]
    Mongo(super::mongo::MongoStore),
}

fn db(e: sqlx::Error) -> ServiceError {
    ServiceError::Snapshot(format!("postgres: {e}"))
}

fn to_i64(seq: u64) -> i64 {
    i64::try_from(seq).unwrap_or(i64::MAX)
}

impl SnapshotStore {
    pub async fn save(&self, stream: &str, last_seq: u64, blob: &[u8]) -> Result<(), ServiceError> {
        match self {
            Self::Postgres(pool) => {
                sqlx::query(
                    "INSERT INTO engine_snapshots (stream, last_seq, format, state) \
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(stream)
                .bind(to_i64(last_seq))
                .bind(FORMAT)
                .bind(blob)
                .execute(pool)
                .await
                .map_err(db)?;
                Ok(())
            }
            #[cfg(feature = "mongo")]
            Self::Mongo(m) => m.save(stream, last_seq, blob).await,
        }
    }

    /// Every snapshot of `stream`, newest first.
    pub async fn list(&self, stream: &str) -> Result<Vec<SnapshotMeta>, ServiceError> {
        match self {
            Self::Postgres(pool) => {
                let rows: Vec<(i64, i64, i32)> = sqlx::query_as(
                    "SELECT id, last_seq, format FROM engine_snapshots WHERE stream = $1 \
                     ORDER BY last_seq DESC, id DESC",
                )
                .bind(stream)
                .fetch_all(pool)
                .await
                .map_err(db)?;
                Ok(rows
                    .into_iter()
                    .map(|(id, last_seq, format)| SnapshotMeta {
                        id: id.to_string(),
                        last_seq: u64::try_from(last_seq).unwrap_or(0),
                        format,
                    })
                    .collect())
            }
            #[cfg(feature = "mongo")]
            Self::Mongo(m) => m.list(stream).await,
        }
    }

    pub async fn load(&self, meta: &SnapshotMeta) -> Result<Vec<u8>, ServiceError> {
        match self {
            Self::Postgres(pool) => {
                let id: i64 = meta
                    .id
                    .parse()
                    .map_err(|_| ServiceError::Snapshot(format!("bad id {}", meta.id)))?;
                sqlx::query_scalar("SELECT state FROM engine_snapshots WHERE id = $1")
                    .bind(id)
                    .fetch_one(pool)
                    .await
                    .map_err(db)
            }
            #[cfg(feature = "mongo")]
            Self::Mongo(m) => m.load(meta).await,
        }
    }

    /// Deletes all but the newest `keep` snapshots; returns the oldest kept `last_seq`.
    pub async fn prune(&self, stream: &str, keep: u32) -> Result<Option<u64>, ServiceError> {
        let all = self.list(stream).await?;
        let keep = usize::try_from(keep).unwrap_or(usize::MAX);
        let Some(oldest_kept) = all.get(..keep.min(all.len())).and_then(|k| k.last()) else {
            return Ok(None);
        };
        let doomed: Vec<&SnapshotMeta> = all.iter().skip(keep).collect();
        match self {
            Self::Postgres(pool) => {
                let ids: Vec<i64> = doomed.iter().filter_map(|m| m.id.parse().ok()).collect();
                if !ids.is_empty() {
                    sqlx::query("DELETE FROM engine_snapshots WHERE id = ANY($1)")
                        .bind(&ids)
                        .execute(pool)
                        .await
                        .map_err(db)?;
                }
            }
            #[cfg(feature = "mongo")]
            Self::Mongo(m) => m.delete(&doomed).await?,
        }
        Ok(Some(oldest_kept.last_seq))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EngineConfig;

    #[test]
    fn blobs_round_trip_and_damage_is_detected() {
        let engine = Engine::new(EngineConfig::default());
        let blob = encode(&engine, 42);
        assert_eq!(decode(&blob, 42).expect("decodes"), engine);
        assert!(decode(&blob, 41).is_err(), "wrong sequence");
        let mut flipped = blob.clone();
        let last = flipped.len() - 2;
        flipped[last] ^= 0x01;
        assert!(decode(&flipped, 42).is_err(), "bit flip");
        assert!(decode(&blob[..blob.len() - 1], 42).is_err(), "truncated");
        assert!(decode(b"garbage", 42).is_err());
    }
}
