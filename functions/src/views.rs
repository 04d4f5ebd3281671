//! The JSON shapes the API answers with (camelCase, decimals as strings), built from the bus
//! types. Kept apart from the wire contract so the HTTP API can evolve on its own.

use bus::{
    AccountSummary, Asset, CloseReason, ClosedPosition, Leverage, Money, Position, PositionId,
    PositionView, Price, Quantity, Side, TimestampMs,
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
}

impl From<&ClosedPosition> for ClosedBody {
    fn from(c: &ClosedPosition) -> Self {
        Self {
            position: (&c.position).into(),
            close_price: c.close_price,
            realized_pnl: c.realized_pnl,
            close_reason: c.close_reason,
            closed_at: c.closed_at,
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
