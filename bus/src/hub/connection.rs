//! One WebSocket client: the handshake, the first snapshot, then a loop that answers its ops
//! and, when its socket was full, writes what waited in its mailbox once it drains, until it leaves, falls too far behind, sends a message
//! over 4 KiB (closed with 1009), or the hub stops. Whatever way it ends, its [`Slot`] guard
//! frees its place and takes its mailbox out of the registry. An authenticated connection
//! stops getting private events when its token expires, and is told so.

use std::future::Future;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio::time::{Instant, timeout};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use super::Shared;
use super::admission::{Handshake, Refusal};
use super::frame;
use super::mailbox::{Flush, Mailbox};
use super::protocol::{self, ClientOp, ErrorCode, ServerMessage};
use super::slot::Slot;
use super::stream::ClientStream;

/// Largest frame or message a client may send.
const MAX_CLIENT_MESSAGE: usize = 4096;
/// tungstenite's read chunk per connection.
const READ_BUFFER: usize = 4096;

enum End {
    ClientLeft,
    TooSlow,
    /// The client sent a message over [`MAX_CLIENT_MESSAGE`].
    TooLarge,
    Shutdown,
}

/// Turns an accepted connection away with `refusal`'s plain HTTP answer. Closing with the
/// client's request unread may reset the connection; a refused client may then see a reset
/// instead of the answer, which costs the hub nothing (no task, no timer).
pub(super) fn refuse(tcp: TcpStream, refusal: Refusal) {
    let _ = tcp.try_write(refusal.response());
    let _ = socket2::SockRef::from(&tcp).shutdown(std::net::Shutdown::Write);
    // What already arrived is read and dropped, so the close is a FIN more often than not.
    let mut buf = [0u8; 2048];
    for _ in 0..4 {
        if !matches!(tcp.try_read(&mut buf), Ok(n) if n > 0) {
            break;
        }
    }
}

/// Serves one admitted TCP connection: the handshake within the deadline, then a slot under
/// the hub's cap (when there is none, the client is told `too_many_connections` and closed).
pub(super) async fn handle(
    tcp: TcpStream,
    shared: Arc<Shared>,
    handshake: Handshake,
    slots: Arc<Semaphore>,
) {
    let _ = tcp.set_nodelay(true);
    let _ = socket2::SockRef::from(&tcp).set_send_buffer_size(shared.send_buffer);
    let tcp = Arc::new(tcp);
    let mailbox = Arc::new(Mailbox::new(shared.limits, tcp.clone()));
    let stream = ClientStream {
        tcp: tcp.clone(),
        mailbox: mailbox.clone(),
        stats: shared.stats.clone(),
    };
    // tungstenite zero-fills its read buffer before every read attempt: the default 128 KiB
    // made that memset the hub's main cost. Client messages are small.
    let config = WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .max_message_size(Some(MAX_CLIENT_MESSAGE))
        .max_frame_size(Some(MAX_CLIENT_MESSAGE));
    let accepted = timeout(
        shared.handshake_timeout,
        tokio_tungstenite::accept_async_with_config(stream, Some(config)),
    );
    let Ok(Ok(mut ws)) = accepted.await else {
        return;
    };
    // Held (a guard) until the connection ends, however it ends.
    let _address = handshake.established();
    let Some(mut slot) = Slot::take(&shared, &slots) else {
        shared.stats.count_rejected();
        let text = protocol::error(
            ErrorCode::TooManyConnections,
            "the hub is full; retry later",
        );
        let _ = ws.send(Message::text(text)).await;
        let _ = close(&mut ws, CloseCode::Again, "too many connections").await;
        return;
    };
    slot.register(mailbox.clone());
    let snapshot = shared.latest_quotes(|_| true);
    shared.stats.count_delivered(mailbox.push_quotes(&snapshot));
    let end = if shared.stopping() {
        End::Shutdown
    } else {
        serve(&mut ws, &tcp, &mailbox, &slot, &shared).await
    };
    drop(slot);
    match end {
        End::TooSlow => {
            shared.stats.count_too_slow();
            let text = protocol::error(ErrorCode::TooSlow, "too far behind; disconnected");
            let bye = async {
                let _ = ws.send(Message::text(text)).await;
                close(&mut ws, CloseCode::Policy, "too slow").await
            };
            let _ = timeout(Duration::from_millis(500), bye).await;
        }
        End::TooLarge => {
            let text = protocol::error(
                ErrorCode::BadRequest,
                format!("a message is at most {MAX_CLIENT_MESSAGE} bytes"),
            );
            let bye = async {
                let _ = ws.send(Message::text(text)).await;
                let _ = close(&mut ws, CloseCode::Size, "message too big").await;
                discard_input(&tcp).await;
            };
            let _ = timeout(Duration::from_secs(1), bye).await;
        }
        End::Shutdown => {
            let _ = timeout(Duration::from_secs(1), close(&mut ws, CloseCode::Away, "")).await;
        }
        End::ClientLeft => {}
    }
}

/// After a refused message: ends our side and reads (and drops) what the client still sends,
/// the rest of the oversized message included, until it closes. Closing a socket with unread
/// input would send a reset that can overtake the close frame.
async fn discard_input(tcp: &TcpStream) {
    let _ = socket2::SockRef::from(tcp).shutdown(std::net::Shutdown::Write);
    let mut buf = [0u8; 4096];
    loop {
        if tcp.readable().await.is_err() {
            return;
        }
        match tcp.try_read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => return,
        }
    }
}

async fn close(
    ws: &mut WebSocketStream<ClientStream>,
    code: CloseCode,
    reason: &'static str,
) -> Result<(), tokio_tungstenite::tungstenite::Error> {
    ws.close(Some(CloseFrame {
        code,
        reason: reason.into(),
    }))
    .await
}

async fn serve(
    ws: &mut WebSocketStream<ClientStream>,
    tcp: &TcpStream,
    mailbox: &Mailbox,
    slot: &Slot,
    shared: &Shared,
) -> End {
    // One timer per connection, armed while a token is in force (re-armed by a new `auth`).
    let expiry = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(expiry);
    let mut token_expires: Option<u64> = None;
    loop {
        tokio::select! {
            biased;
            () = &mut expiry, if token_expires.is_some() => match token_expires {
                // Timers are capped (see `expiry_timer`): not yet, wait again.
                Some(at) if crate::auth::now_secs() < at => expiry.as_mut().reset(expiry_timer(at)),
                _ => {
                    token_expires = None;
                    slot.set_user(None);
                    reply(mailbox, shared, protocol::error(
                        ErrorCode::Unauthorized,
                        "the token expired: private events stopped; send a new auth op",
                    ));
                }
            },
            // Woken only when something waits for a full socket, the client is too slow, or
            // the hub stops (shutdown wakes every mailbox: cheaper than one more waiter each).
            _ = mailbox.notify.notified() => {
                if shared.stopping() {
                    return End::Shutdown;
                }
                if let Err(end) = drain(tcp, mailbox, shared).await {
                    return end;
                }
            }
            msg = ws.next() => match msg {
                Some(Ok(Message::Text(text))) => {
                    if let Some(at) = on_op(&text, mailbox, slot, shared) {
                        expiry.as_mut().reset(expiry_timer(at));
                        token_expires = Some(at);
                    }
                }
                Some(Ok(Message::Binary(_))) => reply(mailbox, shared, protocol::error(
                    ErrorCode::BadRequest,
                    "send JSON text frames",
                )),
                Some(Err(WsError::Capacity(_))) => return End::TooLarge,
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return End::ClientLeft,
                Some(Ok(_)) => {} // pings are answered by tungstenite
            },
        }
    }
}

/// Writes what waits in the mailbox as the socket drains; a client whose socket stays full
/// for `write_timeout`, or that fell `max_behind` quotes behind, is too slow.
async fn drain(tcp: &TcpStream, mailbox: &Mailbox, shared: &Shared) -> Result<(), End> {
    loop {
        if mailbox.is_too_slow() {
            return Err(End::TooSlow);
        }
        match mailbox.write_out() {
            Flush::Done(delivered) => {
                shared.stats.count_delivered(delivered);
                return Ok(());
            }
            Flush::Blocked(delivered) => {
                shared.stats.count_delivered(delivered);
                match send_within(shared.write_timeout, tcp.writable()).await {
                    Some(Ok(())) => {}
                    Some(Err(_)) => return Err(End::ClientLeft),
                    None => return Err(End::TooSlow),
                }
            }
            Flush::Broken => return Err(End::ClientLeft),
        }
    }
}

fn reply(mailbox: &Mailbox, shared: &Shared, text: String) {
    shared
        .stats
        .count_delivered(mailbox.push_reply(frame::text(&text)));
}

/// Runs `send`, giving it `limit` only if it does not finish at once: a timer costs a lock
/// on the shared time driver, and a socket is often writable again by the first poll.
async fn send_within<F: Future>(limit: Duration, send: F) -> Option<F::Output> {
    let mut send = std::pin::pin!(send);
    let first = std::future::poll_fn(|cx| Poll::Ready(send.as_mut().poll(cx))).await;
    match first {
        Poll::Ready(done) => Some(done),
        Poll::Pending => timeout(limit, send).await.ok(),
    }
}

/// When to look at a token expiring at `expires_at` (unix seconds) next: at its expiry, or in
/// a day at most (tokio caps timers at ~2 years, and a far `exp` must not overflow `Instant`).
fn expiry_timer(expires_at: u64) -> Instant {
    let left = expires_at.saturating_sub(crate::auth::now_secs());
    Instant::now() + Duration::from_secs(left.min(86_400))
}

/// Answers one op; after a successful `auth`, returns when its token expires (unix seconds).
fn on_op(text: &str, mailbox: &Mailbox, slot: &Slot, shared: &Shared) -> Option<u64> {
    let op = match protocol::parse_op(text) {
        Ok(op) => op,
        Err(message) => {
            reply(
                mailbox,
                shared,
                protocol::error(ErrorCode::BadRequest, message),
            );
            return None;
        }
    };
    match op {
        ClientOp::Subscribe { assets } | ClientOp::Unsubscribe { assets } if assets.is_empty() => {
            reply(
                mailbox,
                shared,
                protocol::error(ErrorCode::BadRequest, "assets is empty"),
            );
        }
        ClientOp::Subscribe { assets } => {
            let (added, set) = mailbox.subscribe(&assets, true);
            reply(
                mailbox,
                shared,
                ServerMessage::Subscribed { assets: set }.to_json(),
            );
            let latest = shared.latest_quotes(|a| added.contains(&a));
            shared.stats.count_delivered(mailbox.push_quotes(&latest));
        }
        ClientOp::Unsubscribe { assets } => {
            let (_, set) = mailbox.subscribe(&assets, false);
            reply(
                mailbox,
                shared,
                ServerMessage::Subscribed { assets: set }.to_json(),
            );
        }
        ClientOp::Auth { token } => match shared.verifier.verify_until(&token) {
            Ok(valid) => {
                slot.set_user(Some((valid.user, valid.expires_at)));
                let user_id = valid.user;
                reply(
                    mailbox,
                    shared,
                    ServerMessage::Authenticated { user_id }.to_json(),
                );
                return Some(valid.expires_at);
            }
            Err(e) => reply(
                mailbox,
                shared,
                protocol::error(ErrorCode::Unauthorized, e.to_string()),
            ),
        },
    }
    None
}
