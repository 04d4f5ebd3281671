//! Request ids: one id per HTTP request (`x-request-id`), carried as a NATS header on the
//! engine command it causes and on the events the engine publishes for it, so one grep
//! follows a trade from the HTTP log through the engine to persist.
//!
//! The HTTP layer runs each request's handler in [`scope`]; [`current`] is what
//! `EngineClient::send` puts into the command's headers, so no call in between has to pass
//! the id along.

use std::future::Future;
use std::sync::Arc;

/// The header name, on HTTP and on NATS messages alike.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Longest id carried on (a longer one from a client is replaced by a fresh one upstream).
pub const MAX_LEN: usize = 128;

tokio::task_local! {
    static REQUEST_ID: Arc<str>;
}

/// Runs `fut` with `id` as the current request id.
pub async fn scope<F: Future>(id: Arc<str>, fut: F) -> F::Output {
    REQUEST_ID.scope(id, fut).await
}

/// The request id of the request being handled, if any.
pub fn current() -> Option<Arc<str>> {
    REQUEST_ID.try_with(Arc::clone).ok()
}

/// The request id a NATS message carries, if any.
pub fn of_headers(headers: Option<&async_nats::HeaderMap>) -> Option<&str> {
    headers
        .and_then(|h| h.get(REQUEST_ID_HEADER))
        .map(|v| v.as_str())
}

/// Whether a client's `x-request-id` is fit to carry on: 1 to [`MAX_LEN`] visible ASCII
/// characters (no spaces or control characters to forge log lines with).
pub fn is_acceptable(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_LEN && id.bytes().all(|b| b.is_ascii_graphic())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_id_is_current_inside_its_scope_only() {
        assert_eq!(current(), None);
        let seen = scope("req-1".into(), async { current() }).await;
        assert_eq!(seen.as_deref(), Some("req-1"));
        assert_eq!(current(), None);
        assert!(is_acceptable("0b7c-AF_1"));
        assert!(!is_acceptable("two words"));
        assert!(!is_acceptable(&"x".repeat(MAX_LEN + 1)));
    }
}
