//! What every HTTP function records about each request: its request id (`x-request-id`,
//! accepted from the client when it is 1 to 128 visible ASCII characters, generated
//! otherwise, returned in the response and carried into the engine command's NATS headers),
//! a tracing span and a log line per response (tower-http's trace layer), and the metrics
//! `http_requests_total{route,method,status}` and `http_request_duration_seconds{route,method}`
//! by route template (axum's `MatchedPath`, so ids in paths do not multiply the series).

use std::sync::Arc;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use bus::request_id::{REQUEST_ID_HEADER, is_acceptable};
use tokio::time::Instant;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

use crate::state::AppState;

/// Wraps `router` (after its routes: the layers run once a route matched, so the route
/// template is known) with the request id and metrics layer, and inside it the trace layer.
/// The request id and the metrics are one layer: every layer costs a trade request
/// allocations and a boxed future (five layers were ~15% of the HTTP server's CPU).
pub fn layers(router: Router, state: &AppState) -> Router {
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
    // Outermost last: the id is set before the trace span reads it.
    router
        .layer(trace)
        .layer(middleware::from_fn_with_state(state.clone(), observe))
}

/// The client's `x-request-id` when it is fit to carry on: a client's id that is empty, too
/// long or has spaces or control characters is replaced (it would end up in log lines and
/// NATS headers) by a fresh UUID.
fn request_id(headers: &HeaderMap) -> (HeaderValue, Arc<str>) {
    let theirs = headers.get(REQUEST_ID_HEADER).and_then(|v| {
        v.to_str()
            .ok()
            .filter(|id| is_acceptable(id))
            .map(|id| (v, id))
    });
    match theirs {
        Some((value, id)) => (value.clone(), Arc::from(id)),
        None => {
            let id = uuid::Uuid::new_v4().hyphenated().to_string();
            // A UUID's text is visible ASCII, always a valid header value.
            let value = HeaderValue::from_str(&id).unwrap_or(HeaderValue::from_static("-"));
            (value, Arc::from(id))
        }
    }
}

/// Sets the request id (see [`request_id`]), runs the handler with it as the current one (for
/// `EngineClient::send`) unless a rate limit refuses it first ([`crate::limits::admit`]: in
/// this layer rather than one more, which would cost every request), returns the id in the
/// response and records the request's metrics.
async fn observe(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let (value, id) = request_id(req.headers());
    req.headers_mut()
        .insert(HeaderName::from_static(REQUEST_ID_HEADER), value.clone());
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let method = method_label(req.method());
    let started = Instant::now();
    let admitted = match crate::limits::limited(req.method(), &route) {
        Some(kind) => crate::limits::admit(&state, kind, &mut req),
        None => Ok(()),
    };
    let mut response = match admitted {
        Ok(()) => bus::request_id::scope(id, next.run(req)).await,
        Err(refused) => refused.into_response(),
    };
    let status = response.status().as_u16().to_string();
    metrics::histogram!("http_request_duration_seconds", "route" => route.clone(), "method" => method)
        .record(started.elapsed().as_secs_f64());
    metrics::counter!("http_requests_total", "route" => route, "method" => method, "status" => status)
        .increment(1);
    response
        .headers_mut()
        .entry(REQUEST_ID_HEADER)
        .or_insert(value);
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
