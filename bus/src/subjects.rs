//! NATS subject and stream names, in one place.
//!
//! Every name can carry a prefix so that tests (and several deployments on one NATS server)
//! stay isolated: `Names::new("t1a2b")` yields `t1a2b_ENGINE` and `t1a2b.engine.in.>`.

use crate::types::{Asset, UserId};

/// The stream of every engine input (commands and price ticks).
pub const ENGINE_STREAM: &str = "ENGINE";
/// The stream of every engine event.
pub const EVENTS_STREAM: &str = "EVENTS";
/// Commands: `engine.in.cmd.<kind>`.
pub const INPUT_COMMANDS: &str = "engine.in.cmd";
/// Price ticks: `engine.in.tick.<asset>`.
pub const INPUT_TICKS: &str = "engine.in.tick";
/// Queries (core NATS request/reply): `engine.query`.
pub const QUERY: &str = "engine.query";
/// Events: `engine.events.<kind>` (one event, older engines) and `engine.events.batch`.
pub const EVENTS: &str = "engine.events";
/// The last token of the subject the engine publishes event batches on (no event kind has
/// this name).
pub const EVENT_BATCH: &str = "batch";
/// The stream of exchange trades (market data, not an engine input), read by the candle store.
pub const TRADES_STREAM: &str = "TRADES";
/// Trades: `market.trades.<asset>`.
pub const TRADES: &str = "market.trades";
/// The stream of messages a consumer gave up on (dead letters), kept for an operator.
pub const DEAD_LETTERS_STREAM: &str = "DEAD_LETTERS";
/// Dead letters: `dead.<consumer>.<the message's subject>`.
pub const DEAD_LETTERS: &str = "dead";
/// Fired price alerts for one user (core NATS, read by the hub): `alerts.user.<user id>`.
pub const ALERTS_USER: &str = "alerts.user";
/// An alert was created or cancelled (core NATS, read by the alerts worker).
pub const ALERTS_CHANGED: &str = "alerts.changed";

/// Stream and subject names under an optional isolation prefix.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Names {
    prefix: String,
}

impl Names {
    /// `prefix` may be empty (production); otherwise letters, digits, `_` and `-` only.
    pub fn new(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn stream(&self, base: &str) -> String {
        if self.prefix.is_empty() {
            base.to_string()
        } else {
            format!("{}_{base}", self.prefix)
        }
    }

    fn subject(&self, base: &str) -> String {
        if self.prefix.is_empty() {
            base.to_string()
        } else {
            format!("{}.{base}", self.prefix)
        }
    }

    pub fn engine_stream(&self) -> String {
        self.stream(ENGINE_STREAM)
    }

    pub fn events_stream(&self) -> String {
        self.stream(EVENTS_STREAM)
    }

    /// Wildcard covering every engine input.
    pub fn engine_inputs(&self) -> String {
        self.subject("engine.in.>")
    }

    pub fn command(&self, kind: &str) -> String {
        self.subject(&format!("{INPUT_COMMANDS}.{kind}"))
    }

    pub fn tick(&self, asset: Asset) -> String {
        self.subject(&format!("{INPUT_TICKS}.{}", asset.symbol()))
    }

    pub fn query(&self) -> String {
        self.subject(QUERY)
    }

    /// Wildcard covering every event.
    pub fn events(&self) -> String {
        self.subject(&format!("{EVENTS}.>"))
    }

    /// Where an engine before batches published one event of `kind` (see [`crate::events`]).
    pub fn event(&self, kind: &str) -> String {
        self.subject(&format!("{EVENTS}.{kind}"))
    }

    /// Where the engine publishes its batches of events, under [`Names::events`].
    pub fn event_batch(&self) -> String {
        self.event(EVENT_BATCH)
    }

    pub fn trades_stream(&self) -> String {
        self.stream(TRADES_STREAM)
    }

    /// Wildcard covering every trade.
    pub fn trades(&self) -> String {
        self.subject(&format!("{TRADES}.>"))
    }

    pub fn trade(&self, asset: Asset) -> String {
        self.subject(&format!("{TRADES}.{}", asset.symbol()))
    }

    pub fn dead_letter_stream(&self) -> String {
        self.stream(DEAD_LETTERS_STREAM)
    }

    /// Wildcard covering every dead letter.
    pub fn dead_letters(&self) -> String {
        self.subject(&format!("{DEAD_LETTERS}.>"))
    }

    /// Where `consumer` puts a message it gave up on that came on `subject` (unprefixed here:
    /// the subject already carries the prefix).
    pub fn dead_letter(&self, consumer: &str, subject: &str) -> String {
        self.subject(&format!("{DEAD_LETTERS}.{consumer}.{subject}"))
    }

    /// Where the alerts worker sends `user`'s fired alerts (the hub forwards them).
    pub fn alert_user(&self, user: UserId) -> String {
        self.subject(&format!("{ALERTS_USER}.{}", user.0))
    }

    /// Wildcard covering every user's fired alerts.
    pub fn alert_users(&self) -> String {
        self.subject(&format!("{ALERTS_USER}.*"))
    }

    /// Where the HTTP functions say an alert was created or cancelled.
    pub fn alerts_changed(&self) -> String {
        self.subject(ALERTS_CHANGED)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixed_and_bare_names() {
        let bare = Names::default();
        assert_eq!(bare.engine_stream(), "ENGINE");
        assert_eq!(bare.command("open_position"), "engine.in.cmd.open_position");
        assert_eq!(bare.tick(Asset::Btc), "engine.in.tick.BTC");
        let t = Names::new("t42");
        assert_eq!(t.engine_stream(), "t42_ENGINE");
        assert_eq!(t.events_stream(), "t42_EVENTS");
        assert_eq!(t.engine_inputs(), "t42.engine.in.>");
        assert_eq!(
            t.event("position_closed"),
            "t42.engine.events.position_closed"
        );
        assert_eq!(t.event_batch(), "t42.engine.events.batch");
        assert_eq!(t.trades_stream(), "t42_TRADES");
        assert_eq!(t.trade(Asset::Sol), "t42.market.trades.SOL");
        let user = UserId(uuid::Uuid::nil());
        assert_eq!(
            t.alert_user(user),
            "t42.alerts.user.00000000-0000-0000-0000-000000000000"
        );
        assert_eq!(bare.alert_users(), "alerts.user.*");
    }
}
