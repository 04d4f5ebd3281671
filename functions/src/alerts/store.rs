//! Alerts in PostgreSQL (`migrations/sql/0006_alerts.sql`): what the routes and the worker
//! read and write. Times are the database clock's ms, so the worker's catch-up window
//! (`changed_at`) and the rows it reads share one clock.

use bus::{Asset, Price, TimestampMs, UserId};
use futures_util::TryStreamExt;
use rust_decimal::Decimal;
use sha2::{Digest, Sha256};
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row};

use super::index::{AlertId, AlertIndex, Armed, Crossed};
use super::{AlertBody, AlertStatus, Direction, MAX_ACTIVE};
use crate::error::ApiError;

/// The database clock in ms since the epoch.
const NOW_MS: &str = "(extract(epoch from clock_timestamp()) * 1000)::bigint";
const COLUMNS: &str = "a.id, a.user_id, a.asset, a.direction, a.price, a.status, a.created_at, \
                       a.triggered_at, a.triggered_price";
/// How many triggered or cancelled alerts `GET /alerts` shows after the active ones.
const RECENT_INACTIVE: i64 = 100;

/// What `POST /alerts` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAlert {
    pub asset: Asset,
    pub direction: Direction,
    pub price: Price,
}

impl NewAlert {
    /// What an `Idempotency-Key` is bound to: the same key must come with the same alert.
    fn fingerprint(&self) -> String {
        let text = format!(
            "{}|{}|{}",
            self.asset,
            self.direction.as_str(),
            self.price.value().normalize()
        );
        Sha256::digest(text.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

fn corrupt(what: &str) -> sqlx::Error {
    sqlx::Error::Decode(format!("stored alert has an invalid {what}").into())
}

fn direction(text: &str) -> Result<Direction, sqlx::Error> {
    match text {
        "above" => Ok(Direction::Above),
        "below" => Ok(Direction::Below),
        _ => Err(corrupt("direction")),
    }
}

fn price(value: Decimal) -> Result<Price, sqlx::Error> {
    Price::new(value).map_err(|_| corrupt("price"))
}

/// A row of [`COLUMNS`] with its user.
fn from_row(row: &PgRow) -> Result<(UserId, AlertBody), sqlx::Error> {
    let status = match row.try_get::<&str, _>("status")? {
        "active" => AlertStatus::Active,
        "triggered" => AlertStatus::Triggered,
        "cancelled" => AlertStatus::Cancelled,
        _ => return Err(corrupt("status")),
    };
    let asset: &str = row.try_get("asset")?;
    let body = AlertBody {
        id: row.try_get("id")?,
        asset: asset.parse().map_err(|_| corrupt("asset"))?,
        direction: direction(row.try_get("direction")?)?,
        price: price(row.try_get("price")?)?,
        status,
        created_at: row.try_get("created_at")?,
        triggered_at: row.try_get("triggered_at")?,
        triggered_price: row
            .try_get::<Option<Decimal>, _>("triggered_price")?
            .map(price)
            .transpose()?,
    };
    Ok((UserId(row.try_get("user_id")?), body))
}

fn bodies(rows: &[PgRow]) -> Result<Vec<AlertBody>, sqlx::Error> {
    rows.iter().map(|r| from_row(r).map(|(_, b)| b)).collect()
}

/// Creates an alert, or answers a retry of the same keyed request with the first answer.
/// The user's row is locked for the count, so concurrent requests cannot pass the limit.
pub async fn create(
    db: &PgPool,
    user: UserId,
    new: &NewAlert,
    key: Option<&str>,
) -> Result<AlertBody, ApiError> {
    let fingerprint = new.fingerprint();
    let mut tx = db.begin().await?;
    sqlx::query("SELECT 1 FROM users WHERE id = $1 FOR UPDATE")
        .bind(user.0)
        .execute(&mut *tx)
        .await?;
    if let Some(key) = key {
        let sql = format!(
            "SELECT {COLUMNS}, a.request_hash FROM alerts a \
             WHERE a.user_id = $1 AND a.idempotency_key = $2"
        );
        let first = sqlx::query(&sql)
            .bind(user.0)
            .bind(key)
            .fetch_optional(&mut *tx)
            .await?;
        if let Some(row) = first {
            if row.try_get::<Option<String>, _>("request_hash")?.as_deref() != Some(&fingerprint) {
                return Err(ApiError::Conflict {
                    code: "idempotency_key_reused",
                    message: "this Idempotency-Key was already used for a different request".into(),
                });
            }
            return Ok(from_row(&row)?.1);
        }
    }
    let active: i64 =
        sqlx::query_scalar("SELECT count(*) FROM alerts WHERE user_id = $1 AND status = 'active'")
            .bind(user.0)
            .fetch_one(&mut *tx)
            .await?;
    if active >= MAX_ACTIVE {
        return Err(ApiError::Conflict {
            code: "too_many_alerts",
            message: format!("at most {MAX_ACTIVE} active alerts; cancel one first"),
        });
    }
    let sql = format!(
        "INSERT INTO alerts AS a (user_id, asset, direction, price, status, created_at, changed_at, \
                                  idempotency_key, request_hash) \
         VALUES ($1, $2, $3, $4, 'active', {NOW_MS}, {NOW_MS}, $5, $6) RETURNING {COLUMNS}"
    );
    let row = sqlx::query(&sql)
        .bind(user.0)
        .bind(new.asset.symbol())
        .bind(new.direction.as_str())
        .bind(new.price.value())
        .bind(key)
        .bind(&fingerprint)
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(from_row(&row)?.1)
}

/// The user's active alerts, then their most recent others; each group newest first.
pub async fn list(db: &PgPool, user: UserId) -> Result<Vec<AlertBody>, ApiError> {
    let sql = format!(
        "(SELECT {COLUMNS} FROM alerts a WHERE a.user_id = $1 AND a.status = 'active' \
          ORDER BY a.id DESC) \
         UNION ALL \
         (SELECT {COLUMNS} FROM alerts a WHERE a.user_id = $1 AND a.status <> 'active' \
          ORDER BY a.id DESC LIMIT $2)"
    );
    let rows = sqlx::query(&sql)
        .bind(user.0)
        .bind(RECENT_INACTIVE)
        .fetch_all(db)
        .await?;
    let mut alerts = bodies(&rows)?;
    // UNION ALL keeps each part's rows but not the parts' order: active first, newest first.
    alerts.sort_by_key(|a| (a.status != AlertStatus::Active, std::cmp::Reverse(a.id)));
    Ok(alerts)
}

/// Cancels the user's alert if it is active; the alert as it is now, `None` if not theirs.
pub async fn cancel(db: &PgPool, user: UserId, id: AlertId) -> Result<Option<AlertBody>, ApiError> {
    let sql = format!(
        "UPDATE alerts a SET status = 'cancelled', changed_at = {NOW_MS} \
         WHERE a.id = $1 AND a.user_id = $2 AND a.status = 'active' RETURNING {COLUMNS}"
    );
    if let Some(row) = sqlx::query(&sql)
        .bind(id)
        .bind(user.0)
        .fetch_optional(db)
        .await?
    {
        return Ok(Some(from_row(&row)?.1));
    }
    let sql = format!("SELECT {COLUMNS} FROM alerts a WHERE a.id = $1 AND a.user_id = $2");
    let row = sqlx::query(&sql)
        .bind(id)
        .bind(user.0)
        .fetch_optional(db)
        .await?;
    Ok(row.map(|r| from_row(&r)).transpose()?.map(|(_, b)| b))
}

/// The database clock now, in ms.
pub async fn now_ms(db: &PgPool) -> Result<TimestampMs, sqlx::Error> {
    sqlx::query_scalar(&format!("SELECT {NOW_MS}"))
        .fetch_one(db)
        .await
}

fn armed(row: &PgRow) -> Result<(AlertId, Option<Armed>), sqlx::Error> {
    let (_, body) = from_row(row)?;
    let armed = (body.status == AlertStatus::Active).then_some(Armed {
        asset: body.asset,
        direction: body.direction,
        level: body.price,
    });
    Ok((body.id, armed))
}

/// Arms every active alert in `index` (the worker's start-up load), streaming the rows so a
/// million alerts never sit in memory twice.
pub async fn load_active(db: &PgPool, index: &mut AlertIndex) -> Result<(), sqlx::Error> {
    let mut rows =
        sqlx::query("SELECT id, asset, direction, price FROM alerts WHERE status = 'active'")
            .fetch(db);
    while let Some(row) = rows.try_next().await? {
        let asset: &str = row.try_get("asset")?;
        let armed = Armed {
            asset: asset.parse().map_err(|_| corrupt("asset"))?,
            direction: direction(row.try_get("direction")?)?,
            level: price(row.try_get("price")?)?,
        };
        index.insert(row.try_get("id")?, armed);
    }
    Ok(())
}

/// Alerts created or cancelled since `since` (ms, database clock), with what they are now:
/// `Some` to arm, `None` to disarm.
pub async fn changed_since(
    db: &PgPool,
    since: TimestampMs,
) -> Result<Vec<(AlertId, Option<Armed>)>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM alerts a WHERE a.changed_at >= $1");
    let rows = sqlx::query(&sql).bind(since).fetch_all(db).await?;
    rows.iter().map(armed).collect()
}

/// One alert by id, with what it is now (for a change notification).
pub async fn one(db: &PgPool, id: AlertId) -> Result<Option<Option<Armed>>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM alerts a WHERE a.id = $1");
    let row = sqlx::query(&sql).bind(id).fetch_optional(db).await?;
    row.map(|r| armed(&r).map(|(_, a)| a)).transpose()
}

/// Marks the crossed alerts triggered by the quote made at `ts`, each with the price that
/// crossed it, in one statement; only those still active change (exactly once, whoever
/// else races). The alerts this call fired, with their users.
pub async fn fire(
    db: &PgPool,
    crossed: &[Crossed],
    ts: TimestampMs,
) -> Result<Vec<(UserId, AlertBody)>, sqlx::Error> {
    let ids: Vec<AlertId> = crossed.iter().map(|c| c.id).collect();
    let prices: Vec<Decimal> = crossed.iter().map(|c| c.price.value()).collect();
    let sql = format!(
        "UPDATE alerts a SET status = 'triggered', triggered_at = $3, triggered_price = f.price \
         FROM UNNEST($1::bigint[], $2::numeric[]) AS f(id, price) \
         WHERE a.id = f.id AND a.status = 'active' RETURNING {COLUMNS}"
    );
    let rows = sqlx::query(&sql)
        .bind(&ids)
        .bind(&prices)
        .bind(ts)
        .fetch_all(db)
        .await?;
    rows.iter().map(from_row).collect()
}

/// Fired alerts not yet delivered (the outbox), oldest first.
pub async fn undelivered(db: &PgPool, limit: i64) -> Result<Vec<(UserId, AlertBody)>, sqlx::Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM alerts a WHERE a.status = 'triggered' AND NOT a.delivered \
         ORDER BY a.id LIMIT $1"
    );
    let rows = sqlx::query(&sql).bind(limit).fetch_all(db).await?;
    rows.iter().map(from_row).collect()
}

pub async fn mark_delivered(db: &PgPool, ids: &[AlertId]) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE alerts SET delivered = true WHERE id = ANY($1)")
        .bind(ids)
        .execute(db)
        .await?;
    Ok(())
}
