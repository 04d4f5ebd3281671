//! Engine inputs (commands and price ticks), queries, replies and events.
//!
//! Commands change engine state and go through the ordered `ENGINE` log; queries read state
//! and are not logged. Every command reply is either a success or a [`Rejection`] with a
//! stable snake_case [`RejectCode`]. Event names are past tense.

use serde::{Deserialize, Serialize};

use crate::digest::Fingerprint;
use crate::types::{
    Asset, CommandId, Leverage, Money, OrderId, OrderType, PositionId, Price, Quantity, Side,
    TimestampMs, UserId,
};

/// One input of the engine's ordered log.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EngineInput {
    /// Boxed: a command is ~150 bytes, a tick ~50, and every input is moved a few times on
    /// its way to the engine (a move of more than 128 bytes is a `memcpy` call). Boxing is
    /// invisible on the wire.
    Command(Box<CommandEnvelope>),
    PriceTick(PriceTick),
}

impl EngineInput {
    /// A command as an input of the log.
    pub fn command(envelope: CommandEnvelope) -> Self {
        Self::Command(Box::new(envelope))
    }
}

/// A command with the id that makes it idempotent.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CommandEnvelope {
    pub id: CommandId,
    pub command: Command,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Command {
    CreateAccount {
        user_id: UserId,
    },
    OpenPosition(OpenPosition),
    ClosePosition {
        user_id: UserId,
        position_id: PositionId,
    },
    ModifyPosition(ModifyPosition),
    /// Close part of an open position (the rest stays open).
    PartialClose(PartialClose),
    /// Place a pending limit or stop order.
    PlaceOrder(PlaceOrder),
    /// Cancel one's own pending order.
    CancelOrder {
        user_id: UserId,
        order_id: OrderId,
    },
    /// Change one's own pending order.
    ModifyOrder(ModifyOrder),
}

impl Command {
    /// Short name, used in subjects and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Command::CreateAccount { .. } => "create_account",
            Command::OpenPosition(_) => "open_position",
            Command::ClosePosition { .. } => "close_position",
            Command::ModifyPosition(_) => "modify_position",
            Command::PartialClose(_) => "partial_close",
            Command::PlaceOrder(_) => "place_order",
            Command::CancelOrder { .. } => "cancel_order",
            Command::ModifyOrder(_) => "modify_order",
        }
    }

    pub fn user_id(&self) -> UserId {
        match self {
            Command::CreateAccount { user_id }
            | Command::ClosePosition { user_id, .. }
            | Command::CancelOrder { user_id, .. } => *user_id,
            Command::OpenPosition(o) => o.user_id,
            Command::ModifyPosition(m) => m.user_id,
            Command::PartialClose(c) => c.user_id,
            Command::PlaceOrder(o) => o.user_id,
            Command::ModifyOrder(m) => m.user_id,
        }
    }
}

/// Open a position at market.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct OpenPosition {
    pub user_id: UserId,
    pub asset: Asset,
    pub side: Side,
    pub quantity: Quantity,
    pub leverage: Leverage,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_loss: Option<Price>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub take_profit: Option<Price>,
    /// With `max_slippage_bps`: refuse a fill further than that from this price.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_price: Option<Price>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_slippage_bps: Option<u32>,
    /// A trailing stop: the stop-loss follows the market at this distance, in the trader's
    /// favour only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trailing_distance: Option<Price>,
}

/// Replace the stop-loss, take-profit and trailing distance of an open position (`None`
/// clears one).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ModifyPosition {
    pub user_id: UserId,
    pub position_id: PositionId,
    pub stop_loss: Option<Price>,
    pub take_profit: Option<Price>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trailing_distance: Option<Price>,
}

/// Close `quantity` of an open position: less than its quantity, leaving at least the
/// asset's minimum.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PartialClose {
    pub user_id: UserId,
    pub position_id: PositionId,
    pub quantity: Quantity,
}

/// A pending order: opens a position like a market open when the market reaches `price`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PlaceOrder {
    pub user_id: UserId,
    pub asset: Asset,
    pub side: Side,
    pub order_type: OrderType,
    pub price: Price,
    pub quantity: Quantity,
    pub leverage: Leverage,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_loss: Option<Price>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub take_profit: Option<Price>,
    /// None: good till cancelled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<TimestampMs>,
}

/// Change a pending order: a new `price` if given (else the current one is kept); the
/// stop-loss, take-profit and expiry are replaced as a whole (`None` clears one), like
/// [`ModifyPosition`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ModifyOrder {
    pub user_id: UserId,
    pub order_id: OrderId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<Price>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_loss: Option<Price>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub take_profit: Option<Price>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<TimestampMs>,
}

/// The platform's quote for an asset (already widened by the spread markup).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PriceTick {
    pub asset: Asset,
    pub bid: Price,
    pub ask: Price,
    /// When the quote was made (from the feed), in ms since the epoch.
    pub ts: TimestampMs,
    /// True for a quote of the simulated random walk (the local runner's offline fallback),
    /// not of Binance. Left out of the JSON when false, so a real tick is written as before
    /// and every tick logged before the flag existed reads as real. The engine refuses a
    /// simulated tick unless its settings allow them (local mode).
    #[serde(default, skip_serializing_if = "is_false")]
    pub simulated: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// Reads of engine state; answered directly, never logged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Query {
    GetAccount {
        user_id: UserId,
    },
    /// The user's open positions in id order, one page (see [`Page`]).
    ListOpenPositions {
        user_id: UserId,
        #[serde(flatten)]
        page: Page,
    },
    /// The user's pending orders, in id order, one page (see [`Page`]).
    ListPendingOrders {
        user_id: UserId,
        #[serde(flatten)]
        page: Page,
    },
    /// The reply the command with this id and fingerprint got, while its id is in the
    /// engine's idempotency window: `command_id_reused` if the id was applied to a different
    /// command, none if the id was not applied (yet).
    GetCommandReply {
        command_id: CommandId,
        fingerprint: Fingerprint,
        /// The `ENGINE` sequence of the logged command (a duplicate publish's ack names it).
        /// When the engine has applied past it and no longer remembers the id, it answers
        /// `command_id_expired` rather than none, so the caller stops asking. Absent from
        /// older callers: then none, as before.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        logged_seq: Option<u64>,
    },
    /// Latest bid/ask per asset the engine has seen.
    GetPrices,
}

/// Which page of a listing: the items with ids after `after` (none: from the first), at most
/// `limit` of them (none or more than the engine's page size: its page size).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

/// An open position as the engine holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    pub id: PositionId,
    pub user_id: UserId,
    pub asset: Asset,
    pub side: Side,
    pub quantity: Quantity,
    pub leverage: Leverage,
    pub open_price: Price,
    pub margin: Money,
    /// None when the level would be at or below zero (a buy at 1x cannot be liquidated).
    pub liquidation_price: Option<Price>,
    pub stop_loss: Option<Price>,
    pub take_profit: Option<Price>,
    pub opened_at: TimestampMs,
    /// A trailing stop's distance: `stop_loss` follows the market at this distance, only in
    /// the trader's favour (its current level is `stop_loss`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trailing_distance: Option<Price>,
}

/// A pending order as the engine holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    pub id: OrderId,
    pub user_id: UserId,
    pub asset: Asset,
    pub side: Side,
    pub order_type: OrderType,
    pub price: Price,
    pub quantity: Quantity,
    pub leverage: Leverage,
    pub stop_loss: Option<Price>,
    pub take_profit: Option<Price>,
    /// None: good till cancelled.
    pub expires_at: Option<TimestampMs>,
    pub created_at: TimestampMs,
}

/// Why a pending order was cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CancelReason {
    /// Its owner cancelled it.
    User,
    /// Its `expires_at` passed.
    Expired,
    /// It triggered but the position did not fit the free margin then (or would have been
    /// born past its liquidation level).
    InsufficientMargin,
    /// It triggered while its account had the most open positions allowed.
    TooManyPositions,
}

impl CancelReason {
    pub fn as_str(self) -> &'static str {
        match self {
            CancelReason::User => "user",
            CancelReason::Expired => "expired",
            CancelReason::InsufficientMargin => "insufficient_margin",
            CancelReason::TooManyPositions => "too_many_positions",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CloseReason {
    Manual,
    StopLoss,
    TakeProfit,
    Liquidation,
    /// A stop-loss moved by a trailing stop.
    TrailingStop,
}

impl CloseReason {
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::Manual => "manual",
            CloseReason::StopLoss => "stop_loss",
            CloseReason::TakeProfit => "take_profit",
            CloseReason::Liquidation => "liquidation",
            CloseReason::TrailingStop => "trailing_stop",
        }
    }
}

/// A position after it closed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClosedPosition {
    #[serde(flatten)]
    pub position: Position,
    pub close_price: Price,
    pub realized_pnl: Money,
    pub close_reason: CloseReason,
    pub closed_at: TimestampMs,
    /// For a liquidation: how much the market loss exceeded the margin (the platform absorbs
    /// it so that a balance never goes negative). Zero otherwise; never negative.
    pub absorbed_loss: Money,
}

/// Balance, margin and equity of an account, valued at the engine's latest prices.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountSummary {
    pub user_id: UserId,
    pub balance: Money,
    pub used_margin: Money,
    pub unrealized_pnl: Money,
    pub equity: Money,
    pub free_margin: Money,
    /// `equity / used_margin * 100`, none without open positions.
    pub margin_level: Option<Money>,
}

/// An open position with its floating PnL at the current close-side price.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PositionView {
    #[serde(flatten)]
    pub position: Position,
    pub current_price: Option<Price>,
    pub unrealized_pnl: Money,
}

/// What a successful command produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Accepted {
    AccountCreated {
        account: AccountSummary,
    },
    PositionOpened {
        position: Position,
    },
    PositionClosed {
        position: ClosedPosition,
    },
    PositionModified {
        position: Position,
    },
    /// The closed part (its quantity and released margin) and what stays open.
    PositionPartiallyClosed {
        closed: ClosedPosition,
        remaining: Position,
    },
    OrderPlaced {
        order: Order,
    },
    OrderModified {
        order: Order,
    },
    OrderCancelled {
        order: Order,
    },
}

/// The engine's answer to a command.
// `Accepted::PositionPartiallyClosed` (two positions) makes the accepted variant ~400 bytes;
// boxing it would change the API every crate matches on (the engine keeps replies only in its
// bounded idempotency window).
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reply {
    Accepted(Accepted),
    Rejected(Rejection),
}

/// The engine's answer to a query.
#[allow(clippy::large_enum_variant)] // `CommandReply` holds a [`Reply`]; see there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum QueryReply {
    Account {
        account: AccountSummary,
    },
    /// One page of open positions; `next` (the last id listed) when more follow: ask again
    /// with `after` = `next`.
    OpenPositions {
        positions: Vec<PositionView>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        next: Option<u64>,
    },
    /// One page of pending orders; `next` as for the positions.
    PendingOrders {
        orders: Vec<Order>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        next: Option<u64>,
    },
    CommandReply {
        reply: Option<Reply>,
    },
    /// The latest tick per asset the engine has applied.
    Prices {
        quotes: Vec<PriceTick>,
    },
    Rejected {
        rejection: Rejection,
    },
}

/// A command the engine refused; nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{code}: {message}")]
pub struct Rejection {
    pub code: RejectCode,
    pub message: String,
}

impl Rejection {
    pub fn new(code: RejectCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

/// Stable rejection codes; clients match on these strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectCode {
    NoPrice,
    SlippageExceeded,
    InsufficientMargin,
    InvalidLeverage,
    InvalidQuantity,
    InvalidStopLoss,
    InvalidTakeProfit,
    PositionNotFound,
    AccountNotFound,
    AccountExists,
    /// The command id was already used for a different command.
    CommandIdReused,
    /// A pending order's price on the wrong side of the market for its side and type.
    InvalidOrderPrice,
    /// An expiry at or before the time of the command.
    InvalidExpiry,
    /// A trailing distance with more decimals than the asset's prices.
    InvalidTrailingDistance,
    /// No pending order with that id belongs to the caller.
    OrderNotFound,
    /// The asset's last price is too old to trade on (no tick applied for the engine's
    /// `price_stale_after_ms`): market opens and closes wait for a fresh one.
    PriceStale,
    /// A retry of a command the engine applied but no longer remembers (past its idempotency
    /// window: older than the window's time or beyond the user's newest remembered ids) while
    /// the log still drops it as a duplicate: its first reply cannot be given again.
    CommandIdExpired,
    /// The account already has the most pending orders allowed.
    TooManyOrders,
    /// The account already has the most open positions allowed.
    TooManyPositions,
}

impl RejectCode {
    pub fn as_str(self) -> &'static str {
        match self {
            RejectCode::NoPrice => "no_price",
            RejectCode::SlippageExceeded => "slippage_exceeded",
            RejectCode::InsufficientMargin => "insufficient_margin",
            RejectCode::InvalidLeverage => "invalid_leverage",
            RejectCode::InvalidQuantity => "invalid_quantity",
            RejectCode::InvalidStopLoss => "invalid_stop_loss",
            RejectCode::InvalidTakeProfit => "invalid_take_profit",
            RejectCode::PositionNotFound => "position_not_found",
            RejectCode::AccountNotFound => "account_not_found",
            RejectCode::AccountExists => "account_exists",
            RejectCode::CommandIdReused => "command_id_reused",
            RejectCode::InvalidOrderPrice => "invalid_order_price",
            RejectCode::InvalidExpiry => "invalid_expiry",
            RejectCode::InvalidTrailingDistance => "invalid_trailing_distance",
            RejectCode::OrderNotFound => "order_not_found",
            RejectCode::PriceStale => "price_stale",
            RejectCode::CommandIdExpired => "command_id_expired",
            RejectCode::TooManyOrders => "too_many_orders",
            RejectCode::TooManyPositions => "too_many_positions",
        }
    }
}

impl std::fmt::Display for RejectCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Something that happened in the engine. Past tense; consumed by persistence and the WS hub.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    AccountCreated {
        user_id: UserId,
        balance: Money,
        at: TimestampMs,
    },
    PositionOpened {
        position: Position,
    },
    PositionModified {
        position: Position,
        at: TimestampMs,
    },
    PositionClosed {
        position: ClosedPosition,
    },
    /// Part of a position closed: `closed` is that part (its quantity, released margin and
    /// realised PnL), `remaining` the position that stays open.
    PositionPartiallyClosed {
        closed: ClosedPosition,
        remaining: Position,
        at: TimestampMs,
    },
    OrderPlaced {
        order: Order,
    },
    OrderModified {
        order: Order,
        at: TimestampMs,
    },
    OrderCancelled {
        order: Order,
        reason: CancelReason,
        at: TimestampMs,
    },
    /// A pending order triggered and opened `position` (whose `opened_at` is the fill time).
    OrderFilled {
        order: Order,
        position: Position,
    },
}

impl Event {
    pub fn user_id(&self) -> UserId {
        match self {
            Event::AccountCreated { user_id, .. } => *user_id,
            Event::PositionOpened { position } | Event::PositionModified { position, .. } => {
                position.user_id
            }
            Event::PositionClosed { position } => position.position.user_id,
            Event::PositionPartiallyClosed { remaining, .. } => remaining.user_id,
            Event::OrderPlaced { order }
            | Event::OrderModified { order, .. }
            | Event::OrderCancelled { order, .. }
            | Event::OrderFilled { order, .. } => order.user_id,
        }
    }

    /// Short name, used in subjects.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::AccountCreated { .. } => "account_created",
            Event::PositionOpened { .. } => "position_opened",
            Event::PositionModified { .. } => "position_modified",
            Event::PositionClosed { .. } => "position_closed",
            Event::PositionPartiallyClosed { .. } => "position_partially_closed",
            Event::OrderPlaced { .. } => "order_placed",
            Event::OrderModified { .. } => "order_modified",
            Event::OrderCancelled { .. } => "order_cancelled",
            Event::OrderFilled { .. } => "order_filled",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tick as the feed logged it before ticks carried the `simulated` flag.
    const LOGGED_TICK: &str = r#"{"type":"price_tick","asset":"BTC","bid":"64999.50","ask":"65000.75","ts":1700000000123}"#;

    #[test]
    fn ticks_logged_before_the_simulated_flag_read_as_real_and_are_written_the_same() {
        let input: EngineInput = serde_json::from_str(LOGGED_TICK).expect("an old tick reads");
        let EngineInput::PriceTick(tick) = &input else {
            panic!("{input:?}")
        };
        assert!(!tick.simulated);
        assert_eq!(
            serde_json::to_string(&input).expect("writes"),
            LOGGED_TICK,
            "a real tick is written byte for byte as before"
        );
        let simulated = EngineInput::PriceTick(PriceTick {
            simulated: true,
            ..tick.clone()
        });
        let json = serde_json::to_string(&simulated).expect("writes");
        assert!(json.ends_with(r#","simulated":true}"#), "{json}");
        let back: EngineInput = serde_json::from_str(&json).expect("reads back");
        assert_eq!(back, simulated);
    }

    #[test]
    fn price_stale_is_a_stable_code() {
        let json = serde_json::to_string(&RejectCode::PriceStale).expect("writes");
        assert_eq!(json, r#""price_stale""#);
        assert_eq!(RejectCode::PriceStale.as_str(), "price_stale");
    }
}
