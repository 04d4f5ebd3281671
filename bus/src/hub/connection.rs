//! One WebSocket client: the handshake, the first snapshot, then a loop that sends what its
//! mailbox holds and answers its ops, until it leaves, falls too far behind, or the hub stops.
//! Whatever way it ends, the client's mailbox leaves the registry.

use std::future::Future;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::timeout;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};

use super::Shared;
use super::mailbox::Mailbox;
use super::protocol::{self, ClientOp, ErrorCode, ServerMessage};

/// Largest frame or message a client may send.
const MAX_CLIENT_MESSAGE: usize = 4096;
/// tungstenite's read chunk per connection.
const READ_BUFFER: usize = 4096;
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

enum End {
    ClientLeft,
    TooSlow,
    Shutdown,
}

/// Serves one accepted TCP connection. `permit` is `None` when the hub is full: the client is
/// told so and closed.
pub(super) async fn handle(
    tcp: TcpStream,
    shared: Arc<Shared>,
    permit: Option<OwnedSemaphorePermit>,
) {
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
    let Some(permit) = permit else {
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
    let id = shared.registry.add(mailbox.clone());
    for (asset, quote) in shared.latest_quotes() {
        mailbox.push_quote(asset, &quote);
    }
    let end = if shared.stopping() {
        End::Shutdown
    } else {
        serve(&mut ws, &mailbox, &shared).await
    };
    shared.registry.remove(id);
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
        End::Shutdown => {
            let _ = timeout(Duration::from_secs(1), close(&mut ws, CloseCode::Away, "")).await;
        }
        End::ClientLeft => {}
    }
    drop(permit);
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
    loop {
        tokio::select! {
            biased;
            // Shutdown wakes every mailbox (cheaper than one more waiter per connection).
            _ = mailbox.notify.notified() => {
                if shared.stopping() {
                    return End::Shutdown;
                }
                let batch = mailbox.take();
                if batch.too_slow {
                    return End::TooSlow;
                }
                let send = async {
                    for text in batch.messages {
                        ws.feed(Message::Text(text)).await?;
                    }
                    ws.flush().await
                };
                match send_within(shared.write_timeout, send).await {
                    Some(Ok(())) => {}
                    Some(Err(_)) => return End::ClientLeft,
                    None => return End::TooSlow,
                }
            }
            msg = ws.next() => match msg {
                Some(Ok(Message::Text(text))) => on_op(&text, mailbox, shared),
                Some(Ok(Message::Binary(_))) => mailbox.push_reply(protocol::error(
                    ErrorCode::BadRequest,
                    "send JSON text frames",
                )),
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

fn on_op(text: &str, mailbox: &Mailbox, shared: &Shared) {
    let op = match protocol::parse_op(text) {
        Ok(op) => op,
        Err(message) => {
            mailbox.push_reply(protocol::error(ErrorCode::BadRequest, message));
            return;
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
        ClientOp::Auth { token } => match shared.verifier.verify(&token) {
            Ok(user_id) => {
                mailbox.set_user(user_id);
                mailbox.push_reply(ServerMessage::Authenticated { user_id }.to_json());
            }
            Err(e) => mailbox.push_reply(protocol::error(ErrorCode::Unauthorized, e.to_string())),
        },
    }
}
