//! The operations endpoint of a process: `GET /metrics` (Prometheus text), `GET /healthz`
//! (the process is up) and `GET /readyz` (the [`Readiness`] JSON, 200 or 503), on its own
//! port (`METRICS_ADDR`), apart from any public port.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::readiness::Readiness;

/// The variable naming the operations endpoint's address (off when unset).
pub const METRICS_ADDR: &str = "METRICS_ADDR";

/// How a process tells its readiness: called on every `/readyz`.
pub type ReadyFn =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Readiness> + Send>> + Send + Sync + 'static>;

/// Wraps an async closure as a [`ReadyFn`].
pub fn ready_fn<F, Fut>(f: F) -> ReadyFn
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Readiness> + Send + 'static,
{
    Arc::new(move || Box::pin(f()))
}

/// Installs the metrics recorder and, when `METRICS_ADDR` is set, serves the operations
/// endpoint there (a task that lives as long as the runtime). Returns the bound address; an
/// unparsable or busy address is an error naming the variable.
pub async fn start_ops(ready: ReadyFn) -> Result<Option<SocketAddr>, String> {
    super::install_metrics();
    let env = crate::settings::Env::from_process();
    let addr = env
        .parse::<SocketAddr>(METRICS_ADDR, "an address such as 0.0.0.0:9464")
        .map_err(|e| e.message().to_string())?;
    let Some(addr) = addr else { return Ok(None) };
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| format!("{METRICS_ADDR}={addr}: {e}"))?;
    let bound = listener.local_addr().unwrap_or(addr);
    tracing::info!(addr = %bound, "metrics on /metrics, readiness on /readyz");
    tokio::spawn(serve_ops(listener, ready));
    Ok(Some(bound))
}

/// Answers `/metrics`, `/healthz` and `/readyz` on `listener` until the task is dropped.
pub async fn serve_ops(listener: TcpListener, ready: ReadyFn) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let ready = ready.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| answer(req, ready.clone()));
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tcp), service);
            if let Err(e) = conn.await {
                tracing::debug!("operations endpoint connection: {e}");
            }
        });
    }
}

async fn answer(
    req: Request<Incoming>,
    ready: ReadyFn,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (status, content_type, body) = match req.uri().path() {
        "/metrics" => (
            StatusCode::OK,
            "text/plain; version=0.0.4",
            super::render_metrics(),
        ),
        "/healthz" => (
            StatusCode::OK,
            "application/json",
            "{\"status\":\"ok\"}".into(),
        ),
        "/readyz" => {
            let readiness = ready().await;
            let status = StatusCode::from_u16(readiness.http_status())
                .unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            let body = serde_json::to_string(&readiness).unwrap_or_default();
            (status, "application/json", body)
        }
        _ => (
            StatusCode::NOT_FOUND,
            "application/json",
            "{\"error\":{\"code\":\"not_found\",\"message\":\"no such route\"}}".into(),
        ),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    if let Ok(value) = hyper::header::HeaderValue::from_str(content_type) {
        response
            .headers_mut()
            .insert(hyper::header::CONTENT_TYPE, value);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use crate::readiness::{Check, Readiness};

    async fn get(addr: std::net::SocketAddr, path: &str) -> String {
        let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let request = format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
        tcp.write_all(request.as_bytes()).await.expect("write");
        let mut answer = String::new();
        tcp.read_to_string(&mut answer).await.expect("read");
        answer
    }

    #[tokio::test]
    async fn serves_metrics_health_and_readiness() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let ready = super::ready_fn(|| async {
            Readiness::of(vec![Check::ok("nats"), Check::failed("lease", "not held")])
        });
        super::super::install_metrics();
        metrics::counter!("ops_test_total").increment(2);
        let server = tokio::spawn(super::serve_ops(listener, ready));
        let metrics = get(addr, "/metrics").await;
        assert!(metrics.starts_with("HTTP/1.1 200 OK"), "{metrics}");
        assert!(metrics.contains("ops_test_total 2"), "{metrics}");
        let readyz = get(addr, "/readyz").await;
        assert!(readyz.starts_with("HTTP/1.1 503"), "{readyz}");
        assert!(readyz.contains("\"detail\":\"not held\""), "{readyz}");
        assert!(get(addr, "/healthz").await.starts_with("HTTP/1.1 200 OK"));
        assert!(get(addr, "/nope").await.starts_with("HTTP/1.1 404"));
        server.abort();
    }
}
