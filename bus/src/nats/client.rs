//! [`EngineClient`]: commands through the `ENGINE` log with their reply on the caller's
//! inbox, queries over core NATS request/reply, price ticks into the log.
//!
//! Replies are routed by one wildcard subscription per client (`<inbox>.<token>`) to the
//! waiting call, so a call costs a publish and a wait, not a subscribe/unsubscribe pair.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_nats::jetstream::{self, message::PublishMessage};
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::{OnceCell, oneshot};
use tokio::time::{Instant, timeout_at};

use super::{BusError, REPLY_TO_HEADER};
use crate::{
    CommandEnvelope, CommandId, EngineInput, Envelope, Fingerprint, Names, PriceTick, Query,
    QueryReply, Reply,
};

/// The request path to the engine. Cheap to clone; share one per process.
#[derive(Clone)]
pub struct EngineClient {
    inner: Arc<Inner>,
    /// How long a call waits for a disconnected NATS to come back before answering
    /// [`BusError::Unavailable`] ([`EngineClient::with_down_grace`]).
    down_grace: Duration,
}

/// The default of [`EngineClient::with_down_grace`]: rides out a blip (a reconnect takes a
/// few milliseconds), answers long before any engine timeout.
pub const DEFAULT_DOWN_GRACE: Duration = Duration::from_millis(250);
/// How often a call waiting out the grace looks at the connection's state again.
const DOWN_POLL: Duration = Duration::from_millis(10);

struct Inner {
    client: async_nats::Client,
    js: jetstream::Context,
    names: Names,
    timeout: Duration,
    router: OnceCell<Router>,
}

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Bytes>>>>;

/// Routes replies arriving on `<prefix>.<token>` to the call waiting for `token`.
struct Router {
    prefix: String,
    pending: Pending,
    next: AtomicU64,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Router {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Removes a call's slot when the call ends, whether it got its reply or not.
struct Slot<'a> {
    pending: &'a Pending,
    token: u64,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        lock(self.pending).remove(&self.token);
    }
}

fn lock(p: &Pending) -> std::sync::MutexGuard<'_, HashMap<u64, oneshot::Sender<Bytes>>> {
    // A poisoned map only means another caller panicked mid-insert; the map is still usable.
    p.lock().unwrap_or_else(|e| e.into_inner())
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, BusError> {
    Envelope::<T>::decode(bytes)
        .map(|e| e.body)
        .map_err(|e| BusError::Protocol(e.to_string()))
}

/// The `Nats-Msg-Id` of a command: its id and its fingerprint. A retry (same id, same
/// command) is dropped by JetStream as a duplicate and answered from the engine's memory of
/// that id and fingerprint; the same id with a different command is not a duplicate, so it
/// reaches the engine, which answers `command_id_reused` instead of an unrelated reply.
fn message_id(cmd: &CommandEnvelope, fingerprint: &Fingerprint) -> String {
    format!("{}#{fingerprint}", cmd.id)
}

fn publish_error(e: jetstream::context::PublishError) -> BusError {
    use jetstream::context::PublishErrorKind as K;
    match e.kind() {
        K::TimedOut => BusError::Timeout,
        _ => BusError::Unavailable(format!("publish into ENGINE: {e}")),
    }
}

impl Router {
    async fn start(client: &async_nats::Client) -> Result<Self, BusError> {
        let prefix = client.new_inbox();
        let mut sub = client
            .subscribe(format!("{prefix}.*"))
            .await
            .map_err(|e| BusError::Unavailable(format!("subscribe for replies: {e}")))?;
        let pending: Pending = Arc::default();
        let routes = pending.clone();
        let task = tokio::spawn(async move {
            while let Some(msg) = sub.next().await {
                let token = msg.subject.rsplit('.').next().and_then(|t| t.parse().ok());
                let waiter = token.and_then(|t: u64| lock(&routes).remove(&t));
                if let Some(tx) = waiter {
                    // The caller may have timed out and gone; then nobody needs the reply.
                    let _ = tx.send(msg.payload);
                }
            }
        });
        Ok(Self {
            prefix,
            pending,
            next: AtomicU64::new(1),
            task,
        })
    }

    fn register(&self) -> (String, oneshot::Receiver<Bytes>, Slot<'_>) {
        let token = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        lock(&self.pending).insert(token, tx);
        let slot = Slot {
            pending: &self.pending,
            token,
        };
        (format!("{}.{token}", self.prefix), rx, slot)
    }
}

impl EngineClient {
    /// `timeout` bounds every call: a command's publish, its ack and its reply together.
    pub fn new(client: async_nats::Client, names: Names, timeout: Duration) -> Self {
        let js = jetstream::new(client.clone());
        Self {
            inner: Arc::new(Inner {
                client,
                js,
                names,
                timeout,
                router: OnceCell::new(),
            }),
            down_grace: DEFAULT_DOWN_GRACE,
        }
    }

    /// While NATS is known to be down (the connection's state is not `Connected`), a call
    /// waits at most `grace` for it to come back, then answers [`BusError::Unavailable`] at
    /// once instead of waiting out the whole timeout. A server that vanished without closing
    /// its connections is noticed only by NATS's own pings; until then calls time out.
    #[must_use]
    pub fn with_down_grace(mut self, grace: Duration) -> Self {
        self.down_grace = grace;
        self
    }

    /// Ok when the NATS connection is up, or came back within the grace.
    async fn connected(&self) -> Result<(), BusError> {
        use async_nats::connection::State;
        let up = || self.inner.client.connection_state() == State::Connected;
        if up() {
            return Ok(());
        }
        let until = Instant::now() + self.down_grace;
        loop {
            if Instant::now() >= until {
                return Err(BusError::Unavailable("NATS is not connected".into()));
            }
            tokio::time::sleep(DOWN_POLL.min(self.down_grace)).await;
            if up() {
                return Ok(());
            }
        }
    }

    pub fn names(&self) -> &Names {
        &self.inner.names
    }

    pub fn timeout(&self) -> Duration {
        self.inner.timeout
    }

    /// Sends a command through the `ENGINE` log and waits for its reply.
    ///
    /// Retrying with the same command id is always safe: JetStream drops a duplicate publish
    /// (then the first reply is fetched from the engine once it has applied the command), and
    /// the engine answers a re-logged id with its first reply without applying it again.
    pub async fn send(&self, cmd: CommandEnvelope) -> Result<Reply, BusError> {
        self.connected().await?;
        let deadline = Instant::now() + self.inner.timeout;
        let router = self
            .inner
            .router
            .get_or_try_init(|| Router::start(&self.inner.client))
            .await?;
        let (reply_to, rx, slot) = router.register();
        let id = cmd.id.clone();
        let fingerprint = Fingerprint::of(&cmd.command);
        let msg_id = message_id(&cmd, &fingerprint);
        let subject = self.inner.names.command(cmd.command.kind());
        let payload = Envelope::new(0, now_ms(), EngineInput::command(cmd)).encode();
        let publish = PublishMessage::build()
            .payload(payload.into())
            .message_id(msg_id)
            .header(REPLY_TO_HEADER, reply_to.as_str());
        // The HTTP request's id, so the engine's and persist's log lines can be found by it.
        let publish = match crate::request_id::current() {
            Some(id) => publish.header(crate::request_id::REQUEST_ID_HEADER, &*id),
            None => publish,
        };
        let ack = self
            .inner
            .js
            .send_publish(subject, publish)
            .await
            .map_err(publish_error)?;
        let ack = timeout_at(deadline, ack.into_future())
            .await
            .map_err(|_| BusError::Timeout)?
            .map_err(publish_error)?;
        if ack.duplicate {
            // The first publish of this message id is the one the engine answers; ask for its
            // reply, naming the command, so that a reused id gets `command_id_reused`. A
            // duplicate's ack carries the first publish's sequence: once the engine has
            // applied that far and no longer remembers the id, it says `command_id_expired`
            // instead of "not yet", so this never polls into a timeout.
            drop(slot);
            return self
                .applied_reply(&id, fingerprint, ack.sequence, deadline)
                .await;
        }
        match timeout_at(deadline, rx).await {
            Ok(Ok(bytes)) => decode(&bytes),
            Ok(Err(_)) => Err(BusError::Unavailable("reply router stopped".into())),
            Err(_) => Err(BusError::Timeout),
        }
    }

    /// Polls the engine for the reply to `id` (with this fingerprint, logged at `logged_seq`)
    /// until it has applied it or `deadline` passes.
    async fn applied_reply(
        &self,
        id: &CommandId,
        fingerprint: Fingerprint,
        logged_seq: u64,
        deadline: Instant,
    ) -> Result<Reply, BusError> {
        let query = Query::GetCommandReply {
            command_id: id.clone(),
            fingerprint,
            // An ack without a sequence (0) names nothing: poll as before.
            logged_seq: (logged_seq > 0).then_some(logged_seq),
        };
        let mut pause = Duration::from_millis(2);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.query_within(&query, left).await {
                Ok(QueryReply::CommandReply { reply: Some(reply) }) => return Ok(reply),
                Ok(QueryReply::CommandReply { reply: None }) => {}
                // The engine may be restarting; keep asking until the deadline.
                Err(BusError::Unavailable(_)) => {}
                Err(e) => return Err(e),
                Ok(other) => {
                    return Err(BusError::Protocol(format!(
                        "unexpected answer to GetCommandReply: {other:?}"
                    )));
                }
            }
            if Instant::now() + pause >= deadline {
                return Err(BusError::Timeout);
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }

    /// Asks the engine a query (core NATS request/reply; not logged).
    pub async fn query(&self, q: Query) -> Result<QueryReply, BusError> {
        self.connected().await?;
        self.query_within(&q, self.inner.timeout).await
    }

    async fn query_within(&self, q: &Query, within: Duration) -> Result<QueryReply, BusError> {
        use async_nats::RequestErrorKind as K;
        let payload = Envelope::new(0, now_ms(), q).encode();
        let request = self
            .inner
            .client
            .request(self.inner.names.query(), payload.into());
        match tokio::time::timeout(within, request).await {
            Err(_) => Err(BusError::Timeout),
            Ok(Ok(msg)) => decode(&msg.payload),
            Ok(Err(e)) => Err(match e.kind() {
                K::TimedOut => BusError::Timeout,
                K::NoResponders => BusError::Unavailable("no engine is answering queries".into()),
                _ => BusError::Unavailable(e.to_string()),
            }),
        }
    }

    /// Logs a price tick into `ENGINE` (waits for the JetStream ack).
    pub async fn publish_tick(&self, tick: &PriceTick) -> Result<(), BusError> {
        let subject = self.inner.names.tick(tick.asset);
        let payload = Envelope::new(0, now_ms(), EngineInput::PriceTick(tick.clone())).encode();
        let ack = self
            .inner
            .js
            .publish(subject, payload.into())
            .await
            .map_err(publish_error)?;
        tokio::time::timeout(self.inner.timeout, ack.into_future())
            .await
            .map_err(|_| BusError::Timeout)?
            .map(|_| ())
            .map_err(publish_error)
    }

    /// Succeeds when the engine answers a query: NATS is up and the engine is serving.
    pub async fn ping(&self) -> Result<(), BusError> {
        match self.query(Query::GetPrices).await? {
            QueryReply::Prices { .. } => Ok(()),
            other => Err(BusError::Protocol(format!(
                "unexpected answer to GetPrices: {other:?}"
            ))),
        }
    }
}
