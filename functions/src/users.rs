//! Whether the users named by session tokens still exist: one PostgreSQL query answers every
//! request that asked while the previous query was running.
//!
//! Every private request checks its user (a deleted user's tokens must stop working at once).
//! One query per request made that check a large share of a trade request's cost (a
//! PostgreSQL round trip, a pooled connection, a backend's CPU); batching keeps the guarantee
//! exactly: a request's answer comes from a query that *started after the request asked*, so
//! it sees every deletion committed before the request arrived (PostgreSQL's read-committed
//! statement snapshot). Nothing is cached between queries.
//!
//! The checker keeps one connection between queries: taking it from the pool for each query
//! cost a second round trip (the pool pings a connection before handing it out), as much
//! PostgreSQL time as the lookup itself.

use std::collections::HashSet;

use bus::UserId;
use sqlx::pool::PoolConnection;
use sqlx::{PgPool, Postgres};
use tokio::sync::{OnceCell, mpsc, oneshot};
use uuid::Uuid;

use crate::error::{ApiError, is_unavailable};

/// Most users one query looks up.
const MAX_BATCH: usize = 512;
/// Requests waiting for the next query at most; more wait to be queued.
const QUEUE: usize = 4_096;

type Answer = Result<bool, (bool, String)>;
type Ask = (UserId, oneshot::Sender<Answer>);

/// The batching checker; its task starts on first use (in the caller's runtime).
pub struct UserCheck {
    db: PgPool,
    queue: OnceCell<mpsc::Sender<Ask>>,
}

impl UserCheck {
    pub fn new(db: PgPool) -> Self {
        Self {
            db,
            queue: OnceCell::new(),
        }
    }

    /// True when `user` is in `users` as of a query started after this call.
    pub async fn exists(&self, user: UserId) -> Result<bool, ApiError> {
        let queue = self
            .queue
            .get_or_init(|| async {
                let (tx, rx) = mpsc::channel(QUEUE);
                tokio::spawn(serve(self.db.clone(), rx));
                tx
            })
            .await;
        let (tx, rx) = oneshot::channel();
        if queue.send((user, tx)).await.is_err() {
            // The task is gone (its runtime stopped): ask directly, as strict as ever.
            return exists_now(&self.db, user).await;
        }
        match rx.await {
            Ok(Ok(found)) => Ok(found),
            Ok(Err((true, msg))) => Err(ApiError::Unavailable(msg)),
            Ok(Err((false, msg))) => Err(ApiError::Internal(msg)),
            Err(_) => exists_now(&self.db, user).await,
        }
    }
}

/// One lookup without batching.
async fn exists_now(db: &PgPool, user: UserId) -> Result<bool, ApiError> {
    let row: Option<i32> = sqlx::query_scalar("SELECT 1 FROM users WHERE id = $1")
        .bind(user.0)
        .fetch_optional(db)
        .await?;
    Ok(row.is_some())
}

/// Takes whatever is queued (waiting for at least one), asks once, answers each; repeats
/// until every sender is gone.
async fn serve(db: PgPool, mut rx: mpsc::Receiver<Ask>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut ids = Vec::with_capacity(MAX_BATCH);
    let mut held = None;
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        ids.clear();
        ids.extend(batch.iter().map(|(user, _): &Ask| user.0));
        let found = lookup(&db, &mut held, &ids)
            .await
            .map_err(|e| (is_unavailable(&e), format!("postgres: {e}")));
        for (user, reply) in batch.drain(..) {
            let answer = found
                .as_ref()
                .map(|set| set.contains(&user.0))
                .map_err(Clone::clone);
            // The request may have ended (client gone); nobody needs the answer then.
            let _ = reply.send(answer);
        }
    }
}

/// The users of `ids` that exist, asked on the held connection. One that fails may have
/// died while idle (PostgreSQL restarted): it goes back to the pool (which checks it before
/// handing it out again) and the question is asked once more on a fresh one, as the pool's
/// check before every query made it before.
async fn lookup(
    db: &PgPool,
    held: &mut Option<PoolConnection<Postgres>>,
    ids: &[Uuid],
) -> Result<HashSet<Uuid>, sqlx::Error> {
    if let Some(conn) = held.as_mut() {
        match existing(conn, ids).await {
            Ok(found) => return Ok(found),
            Err(_) => *held = None,
        }
    }
    let conn = held.insert(db.acquire().await?);
    let found = existing(conn, ids).await;
    if found.is_err() {
        *held = None;
    }
    found
}

async fn existing(
    conn: &mut PoolConnection<Postgres>,
    ids: &[Uuid],
) -> Result<HashSet<Uuid>, sqlx::Error> {
    let rows: Vec<Uuid> = sqlx::query_scalar("SELECT id FROM users WHERE id = ANY($1)")
        .bind(ids)
        .fetch_all(&mut **conn)
        .await?;
    Ok(rows.into_iter().collect())
}
