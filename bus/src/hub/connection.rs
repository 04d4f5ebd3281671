//! One WebSocket client: the handshake, the first snapshot, then a loop that sends what its
//! mailbox holds and answers its ops, until it leaves, falls too far behind, sends a message
//! over 4 KiB (closed with 1009), or the hub stops. Whatever way it ends, its [`Slot`] guard
//! frees its place and takes its mailbox out of the registry. An authenticated connection
//! stops getting private events when its token expires, and is told so.

use std::future::Future;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use super::Shared;
use super::mailbox::Mailbox;
use super::protocol::{self, ClientOp, ErrorCode, ServerMessage};
use super::slot::Slot;

/// Largest frame or message a client may send.
const MAX_CLIENT_MESSAGE: usize = 4096;
/// tungstenite's read chunk per connection.
const READ_BUFFER: usize = 4096;
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

enum End {
    ClientLeft,
    TooSlow,
    /// The client sent a message over [`MAX_CLIENT_MESSAGE`].
    TooLarge,
    Shutdown,
}

/// Serves one accepted TCP connection. `slot` is `None` when the hub is full: the client is
/// told so and closed.
pub(super) async fn handle(tcp: TcpStream, shared: Arc<Shared>, slot: Option<Slot>) {
    let _ = tcp.set_nodelay(true);
    let _ = socket2::SockRef::from(&tcp).set_send_buffer_size(shared.send_buffer);
    // tungstenite zero-fills its read buffer before every read attempt: the default 128 KiB
    // made that memset the hub's main cost. Client messages are small.
    let config = WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .max_message_size(Some(MAX_CLIENT_MESSAGE))
        .max_frame_size(Some(MAX_CLIENT_MESSAGE));
    let accepted = timeout(
        HANDSHAKE_TIMEOUT,
        tokio_tungstenite::accept_async_with_config(tcp, Some(config)),
    );
    let Ok(Ok(mut ws)) = accepted.await else {
        return;
    };
    let Some(mut slot) = slot else {
        shared.stats.count_rejected();
        let text = protocol::error(
            ErrorCode::TooManyConnections,
            "the hub is full; retry later",
        );
        let _ = ws.send(Message::text(text)).await;
        let _ = close(&mut ws, CloseCode::Again, "too many connections").await;
        return;
    };
    let mailbox = Arc::new(Mailbox::new(shared.limits));
    slot.register(mailbox.clone());
    for (asset, quote) in shared.latest_quotes() {
        mailbox.push_quote(asset, &quote);
    }
    let end = if shared.stopping() {
        End::Shutdown
    } else {
        serve(&mut ws, &mailbox, &shared).await
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
                discard_input(ws.get_ref()).await;
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
    ws: &mut WebSocketStream<TcpStream>,
    code: CloseCode,
    reason: &'static str,
) -> Result<(), tokio_tungstenite::tungstenite::Error> {
    ws.close(Some(CloseFrame {
        code,
        reason: reason.into(),
    }))
    .await
}

async fn serve(ws: &mut WebSocketStream<TcpStream>, mailbox: &Mailbox, shared: &Shared) -> End {
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
                    mailbox.clear_user();
                    mailbox.push_reply(protocol::error(
                        ErrorCode::Unauthorized,
                        "the token expired: private events stopped; send a new auth op",
                    ));
                }
            },
            // Shutdown wakes every mailbox (cheaper than one more waiter per connection).
            _ = mailbox.notify.notified() => {
                if shared.stopping() {
                    return End::Shutdown;
                }
                let batch = mailbox.take();
                if batch.too_slow {
                    return End::TooSlow;
                }
                let (sent, events) = (batch.messages.len() as u64, batch.events);
                shared.stats.count_conflated(batch.conflated);
                let send = async {
                    for text in batch.messages {
                        ws.feed(Message::Text(text)).await?;
                    }
                    ws.flush().await
                };
                match send_within(shared.write_timeout, send).await {
                    Some(Ok(())) => shared.stats.count_sent(sent, events),
                    Some(Err(_)) => return End::ClientLeft,
                    None => return End::TooSlow,
                }
            }
            msg = ws.next() => match msg {
                Some(Ok(Message::Text(text))) => {
                    if let Some(at) = on_op(&text, mailbox, shared) {
                        expiry.as_mut().reset(expiry_timer(at));
                        token_expires = Some(at);
                    }
                }
                Some(Ok(Message::Binary(_))) => mailbox.push_reply(protocol::error(
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

/// Runs `send`, giving it `limit` only if it does not finish at once: a timer costs a lock
/// on the shared time driver, and most sends to a healthy client complete on the first poll.
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
fn on_op(text: &str, mailbox: &Mailbox, shared: &Shared) -> Option<u64> {
    let op = match protocol::parse_op(text) {
        Ok(op) => op,
        Err(message) => {
            mailbox.push_reply(protocol::error(ErrorCode::BadRequest, message));
            return None;
        }
    };
    match op {
        ClientOp::Subscribe { assets } | ClientOp::Unsubscribe { assets } if assets.is_empty() => {
            mailbox.push_reply(protocol::error(ErrorCode::BadRequest, "assets is empty"));
        }
        ClientOp::Subscribe { assets } => {
            let (added, set) = mailbox.subscribe(&assets, true);
            mailbox.push_reply(ServerMessage::Subscribed { assets: set }.to_json());
            for (asset, quote) in shared.latest_quotes() {
                if added.contains(&asset) {
                    mailbox.push_quote(asset, &quote);
                }
            }
        }
        ClientOp::Unsubscribe { assets } => {
            let (_, set) = mailbox.subscribe(&assets, false);
            mailbox.push_reply(ServerMessage::Subscribed { assets: set }.to_json());
        }
        ClientOp::Auth { token } => match shared.verifier.verify_until(&token) {
            Ok(valid) => {
                mailbox.set_user(valid.user, valid.expires_at);
                let user_id = valid.user;
                mailbox.push_reply(ServerMessage::Authenticated { user_id }.to_json());
                return Some(valid.expires_at);
            }
            Err(e) => mailbox.push_reply(protocol::error(ErrorCode::Unauthorized, e.to_string())),
        },
    }
    None
}
