//! The JSON shapes the API answers with (camelCase, decimals as strings), built from the bus
//! types. Kept apart from the wire contract so the HTTP API can evolve on its own.

use bus::{
    AccountSummary, Asset, CancelReason, CloseReason, ClosedPosition, Leverage, Money, Order,
    OrderId, OrderType, Position, PositionId, PositionView, Price, Quantity, Side, TimestampMs,
};
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Position)]
pub struct PositionBody {
    pub id: PositionId,
    pub asset: Asset,
    pub side: Side,
    pub quantity: Quantity,
    pub leverage: Leverage,
    pub open_price: Price,
    pub margin: Money,
    /// Null when the position cannot be liquidated (a buy at 1x).
    #[schema(required = true)]
    pub liquidation_price: Option<Price>,
    #[schema(required = true)]
    pub stop_loss: Option<Price>,
    #[schema(required = true)]
    pub take_profit: Option<Price>,
    /// ms since the epoch
    #[schema(value_type = i64)]
    pub opened_at: TimestampMs,
    /// A trailing stop's distance: `stopLoss` follows the market at this distance, only in the
    /// trader's favour (`stopLoss` is its current level); null without one.
    #[schema(required = true)]
    pub trailing_distance: Option<Price>,
}

impl From<&Position> for PositionBody {
    fn from(p: &Position) -> Self {
        Self {
            id: p.id,
            asset: p.asset,
            side: p.side,
            quantity: p.quantity,
            leverage: p.leverage,
            open_price: p.open_price,
            margin: p.margin,
            liquidation_price: p.liquidation_price,
            stop_loss: p.stop_loss,
            take_profit: p.take_profit,
            opened_at: p.opened_at,
            trailing_distance: p.trailing_distance,
        }
    }
}

/// A closed position: the open fields plus how it ended.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = ClosedPosition)]
pub struct ClosedBody {
    #[serde(flatten)]
    pub position: PositionBody,
    pub close_price: Price,
    pub realized_pnl: Money,
    pub close_reason: CloseReason,
    /// ms since the epoch
    #[schema(value_type = i64)]
    pub closed_at: TimestampMs,
    /// A partial close: the closed part of a position (its `quantity`, the `margin` it
    /// released, its `realizedPnl`) whose rest stayed open; `id` is the position's.
    pub partial: bool,
}

impl ClosedBody {
    pub fn new(c: &ClosedPosition, partial: bool) -> Self {
        Self {
            position: (&c.position).into(),
            close_price: c.close_price,
            realized_pnl: c.realized_pnl,
            close_reason: c.close_reason,
            closed_at: c.closed_at,
            partial,
        }
    }
}

/// An open position valued at the engine's latest price.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = OpenPosition)]
pub struct OpenBody {
    #[serde(flatten)]
    pub position: PositionBody,
    /// Null before the engine has a price.
    #[schema(required = true)]
    pub current_price: Option<Price>,
    pub unrealized_pnl: Money,
}

impl From<&PositionView> for OpenBody {
    fn from(v: &PositionView) -> Self {
        Self {
            position: (&v.position).into(),
            current_price: v.current_price,
            unrealized_pnl: v.unrealized_pnl,
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Balance)]
pub struct BalanceBody {
    #[schema(value_type = String, examples("USD"))]
    pub currency: &'static str,
    pub balance: Money,
    pub used_margin: Money,
    pub unrealized_pnl: Money,
    pub equity: Money,
    pub free_margin: Money,
    /// equity / used margin * 100; null without open positions.
    #[schema(required = true)]
    pub margin_level: Option<Money>,
}

impl From<&AccountSummary> for BalanceBody {
    fn from(a: &AccountSummary) -> Self {
        Self {
            currency: "USD",
            balance: a.balance,
            used_margin: a.used_margin,
            unrealized_pnl: a.unrealized_pnl,
            equity: a.equity,
            free_margin: a.free_margin,
            margin_level: a.margin_level,
        }
    }
}

/// Where a pending order is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum OrderStatus {
    Pending,
    Filled,
    Cancelled,
}

impl OrderStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Pending => "pending",
            OrderStatus::Filled => "filled",
            OrderStatus::Cancelled => "cancelled",
        }
    }
}

/// A limit or stop order.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Order)]
pub struct OrderBody {
    pub id: OrderId,
    pub asset: Asset,
    pub side: Side,
    #[serde(rename = "type")]
    pub order_type: OrderType,
    /// The price it fills at or better (limit) or from which it fills (stop).
    pub price: Price,
    pub quantity: Quantity,
    pub leverage: Leverage,
    /// The stop-loss of the position it opens.
    #[schema(required = true)]
    pub stop_loss: Option<Price>,
    /// The take-profit of the position it opens.
    #[schema(required = true)]
    pub take_profit: Option<Price>,
    /// ms since the epoch after which it is cancelled (`expired`); null: good till cancelled.
    #[schema(required = true, value_type = Option<i64>)]
    pub expires_at: Option<TimestampMs>,
    pub status: OrderStatus,
    /// ms since the epoch
    #[schema(value_type = i64)]
    pub created_at: TimestampMs,
}

impl OrderBody {
    pub fn new(o: &Order, status: OrderStatus) -> Self {
        Self {
            id: o.id,
            asset: o.asset,
            side: o.side,
            order_type: o.order_type,
            price: o.price,
            quantity: o.quantity,
            leverage: o.leverage,
            stop_loss: o.stop_loss,
            take_profit: o.take_profit,
            expires_at: o.expires_at,
            status,
            created_at: o.created_at,
        }
    }
}

/// A filled or cancelled order, as the order history shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = FinishedOrder)]
pub struct FinishedOrderBody {
    #[serde(flatten)]
    pub order: OrderBody,
    /// The position a filled order opened; null when cancelled.
    #[schema(required = true)]
    pub position_id: Option<PositionId>,
    /// Why a cancelled order was cancelled; null when filled.
    #[schema(required = true)]
    pub cancel_reason: Option<CancelReason>,
    /// When it was filled or cancelled, ms since the epoch.
    #[schema(value_type = i64)]
    pub finished_at: TimestampMs,
}
