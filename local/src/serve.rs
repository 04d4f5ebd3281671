//! The runner's HTTP servers (the API on `HTTP_ADDR`, the web page and the API reference) with
//! the bounds a server on the open internet needs, which `axum::serve` does not set:
//! - a header-read timeout (`HTTP_HEADER_TIMEOUT_MS`): a connection that has not sent a whole
//!   request head in time, idle keep-alive connections included, is closed;
//! - a whole-request timeout (`HTTP_REQUEST_TIMEOUT_MS`): a request whose body and handling
//!   take longer is answered 408 `request_timeout` and its connection closed;
//! - a connection cap (`HTTP_MAX_CONNECTIONS`): a connection over it is accepted and answered
//!   503 `unavailable` with `Retry-After` at once, then closed (not left in the listen backlog,
//!   where a client cannot tell a full server from a dead one);
//! - backoff on accept errors (out of file descriptors), instead of a busy loop.
//!
//! Every request carries `axum::extract::ConnectInfo<SocketAddr>` (the peer's address) in its
//! extensions, as `into_make_service_with_connect_info::<SocketAddr>` would put it there.
//! On stop, the listener closes, idle connections close and requests in flight finish.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use serde::Deserialize;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tower::Service;

use bus::backoff::Backoff;
use bus::settings::{Env, SettingsError};

/// Refused connections answered as HTTP at once (request head read, then the 503); past this
/// many at a time the 503 is written blind and the connection closed.
const REFUSALS_IN_FLIGHT: usize = 64;
/// How long a refused connection is given to send its request head.
const REFUSAL_LINGER: Duration = Duration::from_secs(1);

/// The bounds of one HTTP server; [`HttpLimits::default`] are the documented defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// `HTTP_HEADER_TIMEOUT_MS`, default 10 s: the whole request head must arrive within it
    /// (from the connection's start or the previous response).
    pub header_timeout: Duration,
    /// `HTTP_REQUEST_TIMEOUT_MS`, default 30 s: reading the body and handling the request.
    /// Longer than every dependency's own timeout (engine 5 s, database pool 3 s), so it
    /// catches slow bodies and bugs, not a slow engine (which answers 504 first).
    pub request_timeout: Duration,
    /// `HTTP_MAX_CONNECTIONS`, default 4,096 open connections per server.
    pub max_connections: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_connections: 4096,
        }
    }
}

#[derive(Deserialize)]
struct Vars {
    http_header_timeout_ms: Option<u64>,
    http_request_timeout_ms: Option<u64>,
    http_max_connections: Option<usize>,
}

impl HttpLimits {
    /// Reads `HTTP_HEADER_TIMEOUT_MS`, `HTTP_REQUEST_TIMEOUT_MS`, `HTTP_MAX_CONNECTIONS`
    /// (each at least 1; unset keeps the default).
    pub fn from_vars(env: &Env) -> Result<Self, SettingsError> {
        let d = Self::default();
        let v: Vars = env.read()?;
        for (name, zero) in [
            (
                "HTTP_HEADER_TIMEOUT_MS",
                v.http_header_timeout_ms == Some(0),
            ),
            (
                "HTTP_REQUEST_TIMEOUT_MS",
                v.http_request_timeout_ms == Some(0),
            ),
            ("HTTP_MAX_CONNECTIONS", v.http_max_connections == Some(0)),
        ] {
            if zero {
                return Err(SettingsError::invalid(name, "0", "at least 1"));
            }
        }
        Ok(Self {
            header_timeout: v
                .http_header_timeout_ms
                .map_or(d.header_timeout, Duration::from_millis),
            request_timeout: v
                .http_request_timeout_ms
                .map_or(d.request_timeout, Duration::from_millis),
            max_connections: v.http_max_connections.unwrap_or(d.max_connections),
        })
    }
}

async fn stopped(mut rx: watch::Receiver<bool>) {
    // An error means the sender is gone, which is a stop too.
    let _ = rx.wait_for(|stop| *stop).await;
}

/// Serves `app` on `listener` within `limits` until `stop` turns true, then drains.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: HttpLimits,
    stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let refusals = Arc::new(Semaphore::new(REFUSALS_IN_FLIGHT));
    let mut connections = JoinSet::new();
    let mut backoff = Backoff::new(Duration::from_millis(5), Duration::from_secs(1));
    let stopping = stopped(stop.clone());
    tokio::pin!(stopping);
    loop {
        tokio::select! {
            () = &mut stopping => break,
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    backoff.reset();
                    // Small JSON answers go out at once rather than waiting on Nagle.
                    if let Err(e) = tcp.set_nodelay(true) {
                        tracing::debug!(error = %e, "could not set TCP_NODELAY");
                    }
                    // The permit moves into the connection's task: dropped with it, even if
                    // the task panics, so a slot can never leak.
                    match slots.clone().try_acquire_owned() {
                        Ok(slot) => {
                            let (app, stop) = (app.clone(), stop.clone());
                            connections.spawn(connection(tcp, peer, app, limits, slot, stop));
                        }
                        Err(_) => refuse(tcp, &refusals, &mut connections),
                    }
                }
                Err(e) => {
                    // Out of descriptors (EMFILE) or memory: retrying at once would spin.
                    let pause = backoff.next_delay();
                    tracing::warn!(error = %e, ?pause, "accept failed; pausing");
                    tokio::time::sleep(pause).await;
                }
            },
            Some(done) = connections.join_next(), if !connections.is_empty() => {
                if let Err(e) = done && e.is_panic() {
                    tracing::error!(error = %e, "an HTTP connection task panicked");
                }
            }
        }
    }
    drop(listener);
    // Each connection saw the stop: idle ones are closed, busy ones finish their request
    // (bounded by the request timeout).
    while connections.join_next().await.is_some() {}
    Ok(())
}

/// One connection: HTTP/1.1 with the header-read timeout, each request under the request
/// timeout and tagged with the peer's address.
async fn connection(
    tcp: TcpStream,
    peer: SocketAddr,
    app: Router,
    limits: HttpLimits,
    _slot: OwnedSemaphorePermit,
    stop: watch::Receiver<bool>,
) {
    let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
        // What axum's `ConnectInfo<SocketAddr>` extractor reads.
        req.extensions_mut().insert(ConnectInfo(peer));
        let mut app = app.clone();
        async move {
            // A Router is always ready, so `call` without `poll_ready` is fine.
            match tokio::time::timeout(limits.request_timeout, app.call(req)).await {
                Ok(Ok(res)) => Ok::<_, Infallible>(res),
                Ok(Err(never)) => match never {},
                Err(_) => Ok(timed_out(limits.request_timeout)),
            }
        }
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let conn = builder.serve_connection(TokioIo::new(tcp), service);
    tokio::pin!(conn);
    let done = tokio::select! {
        done = conn.as_mut() => done,
        () = stopped(stop) => {
            conn.as_mut().graceful_shutdown();
            conn.as_mut().await
        }
    };
    if let Err(e) = done {
        // Header timeouts, resets, half-sent requests: the client's doing, not ours.
        tracing::debug!(%peer, error = %e, "HTTP connection ended");
    }
}

/// 408 `request_timeout`; the connection is closed after it (its body may be half read).
fn timed_out(limit: Duration) -> Response<axum::body::Body> {
    let body = serde_json::json!({ "error": {
        "code": "request_timeout",
        "message": format!("the request took longer than {} ms", limit.as_millis()),
    }});
    json_response(StatusCode::REQUEST_TIMEOUT, &body)
}

fn json_response(status: StatusCode, body: &serde_json::Value) -> Response<axum::body::Body> {
    let mut res = Response::new(axum::body::Body::from(body.to_string()));
    *res.status_mut() = status;
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::CONNECTION, HeaderValue::from_static("close"));
    res
}

/// What a connection over the cap is told before its request is even read.
const FULL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
content-type: application/json\r\n\
retry-after: 1\r\n\
connection: close\r\n\
content-length: 85\r\n\r\n\
{\"error\":{\"code\":\"unavailable\",\"message\":\"too many connections; retry in a second.\"}}";

/// Answers a connection over the cap: while few refusals are in flight, as HTTP (its request
/// head read, within [`REFUSAL_LINGER`], then [`FULL`]'s 503 and a close), so that a client
/// that has not yet sent its request does not take an early answer for a broken connection;
/// past that, [`FULL`] is written at once (a fresh socket's send buffer is empty, the write
/// does not block) and the connection closed.
fn refuse(tcp: TcpStream, refusals: &Arc<Semaphore>, tasks: &mut JoinSet<()>) {
    let Ok(permit) = refusals.clone().try_acquire_owned() else {
        let _ = tcp.try_write(FULL);
        return;
    };
    tasks.spawn(async move {
        let _permit = permit;
        let service = hyper::service::service_fn(|_req: Request<Incoming>| {
            std::future::ready(Ok::<_, Infallible>(too_many_connections()))
        });
        let mut builder = http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(REFUSAL_LINGER)
            .keep_alive(false);
        let conn = builder.serve_connection(TokioIo::new(tcp), service);
        let _ = tokio::time::timeout(2 * REFUSAL_LINGER, conn).await;
    });
}

/// [`FULL`] as a response.
fn too_many_connections() -> Response<axum::body::Body> {
    let body = serde_json::json!({ "error": {
        "code": "unavailable",
        "message": "too many connections; retry in a second.",
    }});
    let mut res = json_response(StatusCode::SERVICE_UNAVAILABLE, &body);
    res.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn both_refusals_say_the_same() {
        let res = too_many_connections();
        assert_eq!(res.headers()[header::RETRY_AFTER], "1");
        let body = axum::body::to_bytes(res.into_body(), 1024)
            .await
            .expect("body");
        let text = std::str::from_utf8(FULL).expect("ascii");
        assert!(text.ends_with(std::str::from_utf8(&body).expect("utf8")));
    }

    #[test]
    fn the_refusal_is_well_formed() {
        let text = std::str::from_utf8(FULL).expect("ascii");
        let (head, body) = text.split_once("\r\n\r\n").expect("head and body");
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .expect("length")
            .parse()
            .expect("number");
        assert_eq!(length, body.len());
        let json: serde_json::Value = serde_json::from_str(body).expect("json");
        assert_eq!(json["error"]["code"], "unavailable");
    }

    #[tokio::test]
    async fn handlers_see_the_peer_address_and_the_server_drains_on_stop() {
        let app = Router::new().route(
            "/peer",
            axum::routing::get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move {
                axum::Json(peer.to_string())
            }),
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, rx) = watch::channel(false);
        let server = tokio::spawn(serve(listener, app, HttpLimits::default(), rx));
        let mut conn = crate::client::Connection::open(addr)
            .await
            .expect("connect");
        let (status, body) = conn.get("/peer", None).await.expect("answer");
        assert_eq!(status, StatusCode::OK);
        let peer: SocketAddr = body.as_str().expect("text").parse().expect("an address");
        assert_eq!(peer.ip(), addr.ip());
        // An idle keep-alive connection does not hold the stop up.
        stop.send_replace(true);
        let done = tokio::time::timeout(Duration::from_secs(5), server).await;
        assert!(matches!(done, Ok(Ok(Ok(())))), "{done:?}");
        drop(conn);
    }

    #[test]
    fn limits_read_their_variables_and_refuse_zero() {
        let env = Env::from_pairs([
            ("HTTP_HEADER_TIMEOUT_MS", "1500"),
            ("HTTP_MAX_CONNECTIONS", "7"),
        ]);
        let limits = HttpLimits::from_vars(&env).expect("reads");
        assert_eq!(limits.header_timeout, Duration::from_millis(1500));
        assert_eq!(limits.max_connections, 7);
        assert_eq!(
            limits.request_timeout,
            HttpLimits::default().request_timeout
        );
        let err = HttpLimits::from_vars(&Env::from_pairs([("HTTP_MAX_CONNECTIONS", "0")]));
        assert!(
            err.expect_err("refused")
                .message()
                .contains("HTTP_MAX_CONNECTIONS")
        );
    }
}
