//! The hub's counters as `hub_*` metrics, copied from its atomics at every scrape (the
//! fan-out and the connection tasks keep counting as they did, with no metrics call on their
//! path), and its `/readyz`.

use std::sync::{Arc, Weak};

use super::{HubStats, StatsInner};
use crate::readiness::{Check, Readiness};

impl HubStats {
    /// Exports `hub_connections`, `hub_connections_rejected_total`, `hub_clients_too_slow_total`,
    /// `hub_quotes_in_total`, `hub_events_in_total`, `hub_messages_sent_total`,
    /// `hub_events_delivered_total`, `hub_quotes_conflated_total`, `hub_events_ready`, and per
    /// quote fan-out (one pass over every client) `hub_fanout_seconds` (its wall time) and
    /// `hub_fanout_batch_size` (the quotes it carried: more than one when the hub fell behind).
    pub fn export_metrics(&self) {
        crate::process::install_metrics();
        let weak: Weak<StatsInner> = Arc::downgrade(&self.0);
        let connections = metrics::gauge!("hub_connections");
        let rejected = metrics::counter!("hub_connections_rejected_total");
        let too_slow = metrics::counter!("hub_clients_too_slow_total");
        let quotes_in = metrics::counter!("hub_quotes_in_total");
        let events_in = metrics::counter!("hub_events_in_total");
        let sent = metrics::counter!("hub_messages_sent_total");
        let delivered = metrics::counter!("hub_events_delivered_total");
        let conflated = metrics::counter!("hub_quotes_conflated_total");
        let events_ready = metrics::gauge!("hub_events_ready");
        let _ = self.0.fanout_metrics.set((
            metrics::histogram!("hub_fanout_seconds"),
            metrics::histogram!("hub_fanout_batch_size"),
        ));
        crate::process::on_scrape(move || {
            let Some(inner) = weak.upgrade() else { return };
            let r = HubStats(inner).report();
            connections.set(r.connections as f64);
            rejected.absolute(r.rejected);
            too_slow.absolute(r.too_slow);
            quotes_in.absolute(r.quotes_in);
            events_in.absolute(r.events_in);
            sent.absolute(r.sent);
            delivered.absolute(r.events_delivered);
            conflated.absolute(r.conflated);
            events_ready.set(if r.events_ready { 1.0 } else { 0.0 });
        });
    }

    /// Ready while the `EVENTS` consumer (private events) runs; quotes need no readiness of
    /// their own (a client gets the latest one whenever it comes).
    pub fn readiness(&self) -> Readiness {
        let r = self.report();
        let events = if r.events_ready {
            Check::ok("events")
        } else {
            Check::failed("events", "the EVENTS consumer is not running (NATS)")
        };
        Readiness::of(vec![events])
    }
}
