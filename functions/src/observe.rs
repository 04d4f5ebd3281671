//! What every HTTP function records about each request: its request id (`x-request-id`,
//! accepted from the client when it is 1 to 128 visible ASCII characters, generated
//! otherwise, returned in the response and carried into the engine command's NATS headers),
//! a tracing span and a log line per response (tower-http's trace layer), and the metrics
//! `http_requests_total{route,method,status}` and `http_request_duration_seconds{route,method}`
//! by route template (axum's `MatchedPath`, so ids in paths do not multiply the series).

use std::sync::Arc;

use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, Method};
use axum::middleware::{self, Next};
use axum::response::Response;
use bus::request_id::{REQUEST_ID_HEADER, is_acceptable};
use tokio::time::Instant;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

/// Wraps `router` (after its routes: the layers run once a route matched, so the route
/// template is known) with the request id, trace and metrics layers.
pub fn layers(router: Router) -> Router {
    let header = HeaderName::from_static(REQUEST_ID_HEADER);
    let trace = TraceLayer::new_for_http()
        .make_span_with(|req: &Request| {
            let id = req
                .headers()
                .get(REQUEST_ID_HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            let route = req
                .extensions()
                .get::<MatchedPath>()
                .map_or("unmatched", MatchedPath::as_str);
            tracing::info_span!("http", method = %req.method(), route, request_id = id)
        })
        .on_request(())
        .on_response(DefaultOnResponse::new().level(Level::INFO));
    // Outermost last: drop a bad id, set one, return it, then trace and record.
    router
        .layer(middleware::from_fn(record))
        .layer(trace)
        .layer(PropagateRequestIdLayer::new(header.clone()))
        .layer(SetRequestIdLayer::new(header, MakeRequestUuid))
        .layer(middleware::map_request(drop_unacceptable_id))
}

/// A client's id that is empty, too long or has spaces or control characters is replaced
/// (it would end up in log lines and NATS headers).
async fn drop_unacceptable_id(mut req: Request) -> Request {
    let bad = req
        .headers()
        .get(REQUEST_ID_HEADER)
        .is_some_and(|v| !v.to_str().is_ok_and(is_acceptable));
    if bad {
        req.headers_mut().remove(REQUEST_ID_HEADER);
    }
    req
}

/// Runs the handler with the request id as the current one (for `EngineClient::send`) and
/// records the request's metrics.
async fn record(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let method = method_label(req.method());
    let id: Option<Arc<str>> = req
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v: &HeaderValue| v.to_str().ok())
        .map(Arc::from);
    let started = Instant::now();
    let response = match id {
        Some(id) => bus::request_id::scope(id, next.run(req)).await,
        None => next.run(req).await,
    };
    let status = response.status().as_u16().to_string();
    metrics::histogram!("http_request_duration_seconds", "route" => route.clone(), "method" => method)
        .record(started.elapsed().as_secs_f64());
    metrics::counter!("http_requests_total", "route" => route, "method" => method, "status" => status)
        .increment(1);
    response
}

fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::HEAD => "HEAD",
        _ => "other",
    }
}

/// The `/readyz` of an event function's process (persist, candles): NATS connected and
/// PostgreSQL answering.
pub fn worker_readiness(nats: async_nats::Client, db: sqlx::PgPool) -> bus::process::ReadyFn {
    use bus::readiness::{Check, Readiness};
    bus::process::ready_fn(move || {
        let (nats, db) = (nats.clone(), db.clone());
        async move {
            let nats = match nats.connection_state() {
                async_nats::connection::State::Connected => Check::ok("nats"),
                other => Check::failed("nats", other.to_string()),
            };
            let probe = sqlx::query("SELECT 1").execute(&db);
            let postgres =
                match tokio::time::timeout(std::time::Duration::from_secs(2), probe).await {
                    Ok(Ok(_)) => Check::ok("postgres"),
                    Ok(Err(e)) => Check::failed("postgres", e.to_string()),
                    Err(_) => Check::failed("postgres", "timed out"),
                };
            Readiness::of(vec![nats, postgres])
        }
    })
}

/// An event function's metrics (`<worker>_batch_size`, `<worker>_written_total`,
/// `<worker>_lag` — messages in its stream not yet delivered to it — and
/// `<worker>_dead_lettered_total`), registered once when it starts.
#[derive(Clone)]
pub struct WorkerMetrics {
    batch_size: metrics::Histogram,
    written: metrics::Counter,
    lag: metrics::Gauge,
    dead_lettered: metrics::Counter,
}

impl WorkerMetrics {
    pub fn new(worker: &str) -> Self {
        bus::process::install_metrics();
        Self {
            batch_size: metrics::histogram!(format!("{worker}_batch_size")),
            written: metrics::counter!(format!("{worker}_written_total")),
            lag: metrics::gauge!(format!("{worker}_lag")),
            dead_lettered: metrics::counter!(format!("{worker}_dead_lettered_total")),
        }
    }

    /// A batch was taken: its size, and the lag its last message reports.
    pub fn batch(&self, size: usize, last: Option<&async_nats::jetstream::Message>) {
        self.batch_size.record(size as f64);
        if let Some(info) = last.and_then(|m| m.info().ok()) {
            self.lag.set(info.pending as f64);
        }
    }

    pub fn written(&self, count: usize) {
        self.written.increment(count as u64);
    }

    pub fn dead_lettered(&self, count: usize) {
        self.dead_lettered.increment(count as u64);
    }
}
