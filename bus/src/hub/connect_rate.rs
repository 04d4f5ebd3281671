//! The per-address rate of new connections (`WS_CONNECT_RATE`): checked when a connection
//! is accepted, before anything is read or allocated for it. A refused client gets an HTTP
//! 429 with `Retry-After` (the answer to its upgrade request) and is closed.
//!
//! Only the TCP peer is known at accept: a peer that is a trusted proxy (`TRUSTED_PROXIES`,
//! the cloud's load balancer) is not limited here, since all its clients share its address;
//! there the load balancer's WAF rate rule limits each client (see `infra/`).

use std::net::IpAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::limits::{DEFAULT_MAX_KEYS, KeyedLimiter, TrustedProxies, retry_after_secs};

use super::HubSettings;

pub(super) struct ConnectRate {
    limiter: KeyedLimiter<IpAddr>,
    trusted_proxies: TrustedProxies,
}

impl ConnectRate {
    pub(super) fn new(settings: &HubSettings) -> Self {
        Self {
            limiter: KeyedLimiter::new(settings.connect_rate, DEFAULT_MAX_KEYS),
            trusted_proxies: settings.trusted_proxies.clone(),
        }
    }

    /// Whether `peer` may open one more connection now; if not, how long until it may.
    pub(super) fn check(&self, peer: IpAddr) -> Result<(), Duration> {
        if self.trusted_proxies.contains(peer) {
            return Ok(());
        }
        self.limiter.check(&peer)
    }
}

/// Reads (within a second, at most 8 KiB) the client's request head, answers 429 with
/// `Retry-After` and closes. Reading first keeps the close from resetting the connection
/// before the client has read the answer.
pub(super) async fn refuse(mut tcp: TcpStream, wait: Duration) {
    let answer = async {
        let mut head = Vec::with_capacity(1024);
        let mut buf = [0u8; 1024];
        while head.len() < 8192 && !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
        let body = r#"{"error":{"code":"rate_limited","message":"too many connections from this address; retry later"}}"#;
        let response = format!(
            "HTTP/1.1 429 Too Many Requests\r\nRetry-After: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            retry_after_secs(wait),
            body.len()
        );
        let _ = tcp.write_all(response.as_bytes()).await;
        let _ = tcp.shutdown().await;
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), answer).await;
}
