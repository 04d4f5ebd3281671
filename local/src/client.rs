//! A small keep-alive HTTP/1.1 JSON client over one TCP connection, for the end-to-end tests
//! and the benchmark (real sockets, no extra HTTP client dependency).

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{HOST, HeaderValue};
use hyper::{HeaderMap, Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("http: {0}")]
    Http(#[from] hyper::Error),
    #[error("request: {0}")]
    Request(#[from] hyper::http::Error),
}

/// One connection; requests on it are sent one after another.
pub struct Connection {
    sender: SendRequest<Full<Bytes>>,
    host: HeaderValue,
}

impl Connection {
    pub async fn open(addr: SocketAddr) -> Result<Self, ClientError> {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (sender, conn) = http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            // The connection ends when the sender is dropped or the server closes it.
            let _ = conn.await;
        });
        let host = HeaderValue::try_from(addr.to_string())
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        Ok(Self { sender, host })
    }

    /// Sends a request and reads the whole answer; the body as JSON (`Null` when empty or
    /// not JSON).
    pub async fn send(
        &mut self,
        method: Method,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<(StatusCode, Value), ClientError> {
        let (status, _, body) = self.exchange(method, path, token, headers, body).await?;
        Ok((status, body))
    }

    /// [`Self::send`], also returning the response's headers (e.g. its `x-request-id`).
    pub async fn exchange(
        &mut self,
        method: Method,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<(StatusCode, HeaderMap, Value), ClientError> {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            req = req.header("authorization", format!("Bearer {token}"));
        }
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let bytes = match body {
            Some(v) => {
                req = req.header("content-type", "application/json");
                Bytes::from(v.to_string())
            }
            None => Bytes::new(),
        };
        let (status, headers, body) = self.round_trip(req.body(Full::new(bytes))?).await?;
        let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
        Ok((status, headers, body))
    }

    /// Sends a prepared request (this connection's `host` is added) and reads the whole
    /// answer, body unparsed: the benchmark's path, which builds its requests once and reads
    /// only what it needs, so the load generator costs little of the machine it measures.
    pub async fn round_trip(
        &mut self,
        mut req: Request<Full<Bytes>>,
    ) -> Result<(StatusCode, HeaderMap, Bytes), ClientError> {
        req.headers_mut().insert(HOST, self.host.clone());
        self.sender.ready().await?;
        let res = self.sender.send_request(req).await?;
        let (parts, body) = res.into_parts();
        let body = body.collect().await?.to_bytes();
        Ok((parts.status, parts.headers, body))
    }

    pub async fn get(
        &mut self,
        path: &str,
        token: Option<&str>,
    ) -> Result<(StatusCode, Value), ClientError> {
        self.send(Method::GET, path, token, &[], None).await
    }

    pub async fn post(
        &mut self,
        path: &str,
        token: Option<&str>,
        body: &Value,
    ) -> Result<(StatusCode, Value), ClientError> {
        self.send(Method::POST, path, token, &[], Some(body)).await
    }
}
