//! Fired price alerts into the hub: the alerts worker publishes each one, already framed as
//! the client message `{"type":"alert","alert":{…}}`, on its user's core NATS subject
//! (`alerts.user.<user id>`); the hub forwards it unchanged to that user's authenticated
//! connections, like a private engine event. Core NATS keeps the subscription across
//! reconnects; an alert published while no hub listens is still in `GET /api/v1/alerts`.

use std::sync::Arc;

use futures_util::StreamExt;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use super::Shared;
use crate::{Names, UserId};

/// Keeps forwarding fired alerts until stopped (retrying the subscription if it fails).
pub(super) async fn fired_alerts(
    nats: async_nats::Client,
    names: Names,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let wildcard = names.alert_users();
    loop {
        let mut messages = match nats.subscribe(wildcard.clone()).await {
            Ok(sub) => sub,
            Err(e) => {
                tracing::warn!(error = %e, "cannot subscribe to fired alerts; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => continue,
                    _ = stop.changed() => return,
                }
            }
        };
        loop {
            tokio::select! {
                _ = stop.changed() => return,
                msg = messages.next() => match msg {
                    Some(msg) => forward(&msg.subject, &msg.payload, &shared),
                    None => break,
                },
            }
        }
    }
}

/// Routes one fired alert to its user's connections; anything unreadable is dropped.
fn forward(subject: &str, payload: &[u8], shared: &Shared) {
    let user = subject
        .rsplit('.')
        .next()
        .and_then(|id| id.parse::<UserId>().ok());
    let (Some(user), Ok(text)) = (user, std::str::from_utf8(payload)) else {
        tracing::warn!(%subject, "unreadable fired alert");
        return;
    };
    shared
        .registry
        .fan_out_event(user, &Utf8Bytes::from(text.to_string()));
}
