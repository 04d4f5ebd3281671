//! The figures of `GET /account/stats`: the sums PostgreSQL computed for a set of trades and
//! the ratios derived from them, money rounded to the cent as decimal strings.

use bus::{Asset, CloseReason, Money};
use rust_decimal::{Decimal, RoundingStrategy};
use serde::Serialize;
use utoipa::ToSchema;

/// Exact sums over a set of realised trades, as the SQL aggregate returns them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sums {
    pub trades: i64,
    pub wins: i64,
    pub losses: i64,
    pub gross_profit: Decimal,
    pub gross_loss: Decimal,
    pub largest_win: Option<Decimal>,
    pub largest_loss: Option<Decimal>,
    pub realized_pnl: Decimal,
}

impl Sums {
    /// Adds the sums of another, disjoint set of trades (exact: Decimal addition).
    pub fn add(&mut self, other: &Sums) {
        self.trades += other.trades;
        self.wins += other.wins;
        self.losses += other.losses;
        self.gross_profit += other.gross_profit;
        self.gross_loss += other.gross_loss;
        self.largest_win = self.largest_win.max(other.largest_win);
        self.largest_loss = match (self.largest_loss, other.largest_loss) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.realized_pnl += other.realized_pnl;
    }
}

/// A trade set's performance. A win has realised PnL > 0, a loss < 0, a breakeven trade
/// (exactly 0) is neither. Money is rounded half-even to the cent.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Figures {
    pub trades: i64,
    pub wins: i64,
    pub losses: i64,
    /// `wins / trades` as a fraction from 0 to 1, 4 decimals; null without trades.
    #[schema(required = true, value_type = Option<String>, pattern = r"^[01]\.[0-9]{4}$")]
    pub win_rate: Option<String>,
    /// Sum of the wins' PnL (>= 0).
    pub gross_profit: Money,
    /// Sum of the losses' PnL (<= 0).
    pub gross_loss: Money,
    /// `grossProfit / -grossLoss`, 2 decimals; null without losses.
    #[schema(required = true, value_type = Option<String>, pattern = r"^[0-9]+\.[0-9]{2}$")]
    pub profit_factor: Option<String>,
    /// Null without wins.
    #[schema(required = true)]
    pub average_win: Option<Money>,
    /// Null without losses (negative otherwise).
    #[schema(required = true)]
    pub average_loss: Option<Money>,
    /// Null without wins.
    #[schema(required = true)]
    pub largest_win: Option<Money>,
    /// The most negative loss; null without losses.
    #[schema(required = true)]
    pub largest_loss: Option<Money>,
    /// Sum of every trade's PnL.
    pub realized_pnl: Money,
}

/// One asset's figures.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AssetFigures {
    pub asset: Asset,
    #[serde(flatten)]
    pub figures: Figures,
}

/// How many trades ended for one reason, and their PnL.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReasonCount {
    pub close_reason: CloseReason,
    pub trades: i64,
    pub realized_pnl: Money,
}

/// Every close reason, in the order the API lists them. The match makes a new reason a
/// compile error here until it is listed.
pub fn all_reasons() -> Vec<CloseReason> {
    let all = [
        CloseReason::Manual,
        CloseReason::StopLoss,
        CloseReason::TakeProfit,
        CloseReason::TrailingStop,
        CloseReason::Liquidation,
    ];
    for r in all {
        match r {
            CloseReason::Manual
            | CloseReason::StopLoss
            | CloseReason::TakeProfit
            | CloseReason::TrailingStop
            | CloseReason::Liquidation => {}
        }
    }
    all.to_vec()
}

/// Rounded half-even to the cent and written with exactly two decimals.
pub fn cents(d: Decimal) -> Money {
    let mut d = d.round_dp_with_strategy(2, RoundingStrategy::MidpointNearestEven);
    d.rescale(2);
    // Money accepts any amount.
    Money::new(d).unwrap_or(Money::ZERO)
}

fn ratio(num: Decimal, den: Decimal, dp: u32) -> Option<String> {
    let q = num.checked_div(den)?;
    let mut q = q.round_dp_with_strategy(dp, RoundingStrategy::MidpointNearestEven);
    q.rescale(dp);
    Some(q.to_string())
}

impl From<&Sums> for Figures {
    fn from(s: &Sums) -> Self {
        let (trades, wins, losses) = (s.trades, s.wins, s.losses);
        let nonzero = |n: i64| (n > 0).then(|| Decimal::from(n));
        Self {
            trades,
            wins,
            losses,
            win_rate: nonzero(trades).and_then(|t| ratio(Decimal::from(wins), t, 4)),
            gross_profit: cents(s.gross_profit),
            gross_loss: cents(s.gross_loss),
            profit_factor: nonzero(losses).and_then(|_| ratio(s.gross_profit, -s.gross_loss, 2)),
            average_win: nonzero(wins).and_then(|w| s.gross_profit.checked_div(w).map(cents)),
            average_loss: nonzero(losses).and_then(|l| s.gross_loss.checked_div(l).map(cents)),
            largest_win: s.largest_win.map(cents),
            largest_loss: s.largest_loss.map(cents),
            realized_pnl: cents(s.realized_pnl),
        }
    }
}

#[cfg(test)]
mod tests {
    use rust_decimal_macros::dec;

    use super::*;

    #[test]
    fn ratios_round_half_even_and_are_null_without_a_denominator() {
        let s = Sums {
            trades: 3,
            wins: 2,
            losses: 0,
            gross_profit: dec!(0.05),
            gross_loss: dec!(0),
            largest_win: Some(dec!(0.04)),
            largest_loss: None,
            realized_pnl: dec!(0.05),
        };
        let f = Figures::from(&s);
        assert_eq!(f.win_rate.as_deref(), Some("0.6667"));
        assert_eq!(f.profit_factor, None);
        // 0.025 -> 0.02 (half to even).
        assert_eq!(
            f.average_win.map(|m| m.to_string()).as_deref(),
            Some("0.02")
        );
        assert_eq!(f.average_loss, None);
        assert_eq!(f.gross_loss.to_string(), "0.00");
        assert_eq!(
            f.largest_win.map(|m| m.to_string()).as_deref(),
            Some("0.04")
        );
        let empty = Figures::from(&Sums::default());
        assert_eq!(empty.win_rate, None);
        assert_eq!(empty.realized_pnl.to_string(), "0.00");
    }

    #[test]
    fn every_reason_is_listed_once() {
        let all = all_reasons();
        let names: std::collections::BTreeSet<_> = all.iter().map(|r| r.as_str()).collect();
        assert_eq!(names.len(), all.len());
        assert_eq!(all.len(), 5);
    }
}
