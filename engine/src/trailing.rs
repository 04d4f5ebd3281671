//! Trailing stops: a position's stop-loss follows the market at a fixed distance, only in the
//! trader's favour (rules in [`crate::trading`]); the stops a tick may move come from
//! [`crate::trail_index`] in O(log n) per moved position, and each is re-checked exactly here.

use bus::{Price, PriceTick, Side};

use crate::index::QuoteKeys;
use crate::trading::Engine;

/// The stop-loss a trail of `distance` asks for at `quote`: a buy `bid - distance` (none at
/// or below zero), a sell `ask + distance`.
pub(crate) fn trail_level(side: Side, quote: &PriceTick, distance: Price) -> Option<Price> {
    let level = match side {
        Side::Buy => quote.bid.value() - distance.value(),
        Side::Sell => quote.ask.value() + distance.value(),
    };
    Price::new(level).ok()
}

/// Whether `candidate` is strictly in the trader's favour of `current` (a buy's higher, a
/// sell's lower); any level beats none.
pub(crate) fn tighter(side: Side, current: Option<Price>, candidate: Price) -> bool {
    current.is_none_or(|c| match side {
        Side::Buy => candidate > c,
        Side::Sell => candidate < c,
    })
}

/// A stop-loss `given` by the trader combined with a trail at `quote`: the tighter of the two,
/// and whether the trail set it.
pub(crate) fn trailed_stop(
    side: Side,
    quote: &PriceTick,
    given: Option<Price>,
    distance: Option<Price>,
) -> (Option<Price>, bool) {
    match distance.and_then(|d| trail_level(side, quote, d)) {
        Some(level) if tighter(side, given, level) => (Some(level), true),
        _ => (given, false),
    }
}

impl Engine {
    /// Moves the trailing stops a tick favours (after the tick's closes): O(log n) each.
    pub(crate) fn move_trailing_stops(&mut self, tick: &PriceTick, keys: QuoteKeys) {
        let candidates = self.trails.candidates(tick.asset, keys);
        for id in candidates {
            let Some(p) = self.positions.get_mut(&id) else {
                continue;
            };
            let Some(level) = p
                .trailing_distance
                .and_then(|d| trail_level(p.side, tick, d))
            else {
                continue;
            };
            if !tighter(p.side, p.stop_loss, level) {
                continue;
            }
            self.trails.remove(p);
            let from = p.stop_loss.replace(level);
            self.triggers.move_stop_loss(p, from);
            self.trails.insert(p);
            self.trailed.insert(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{tighter, trail_level};
    use crate::index::QuoteKeys;
    use crate::trail_index::TrailIndex;
    use bus::{Asset, Position, PositionId, PriceTick, Side, UserId};

    fn position(side: Side, sl: Option<&str>, distance: &str) -> Position {
        Position {
            id: PositionId(7),
            user_id: UserId(uuid::Uuid::nil()),
            asset: Asset::Eth,
            side,
            quantity: "1".parse().expect("quantity"),
            leverage: bus::Leverage::new(10).expect("leverage"),
            open_price: "3000".parse().expect("open"),
            margin: bus::Money::new("300".parse().expect("margin")).expect("money"),
            liquidation_price: None,
            stop_loss: sl.map(|s| s.parse().expect("sl")),
            take_profit: None,
            opened_at: 0,
            trailing_distance: Some(distance.parse().expect("distance")),
        }
    }

    fn quote(bid: &str, ask: &str) -> PriceTick {
        PriceTick {
            asset: Asset::Eth,
            bid: bid.parse().expect("bid"),
            ask: ask.parse().expect("ask"),
            ts: 0,
            simulated: false,
        }
    }

    /// A candidate exactly when the trail level would be tighter, or at the same key.
    #[test]
    fn candidates_are_the_stops_a_quote_moves() {
        let cases = [
            (Side::Buy, "2990.00", "3000.01", "3000.02", true), // level 2990.01
            (Side::Buy, "2990.00", "3000.00", "3000.01", false), // level 2990.00: equal
            (Side::Buy, "2990.00", "2999.99", "3000.00", false),
            (Side::Sell, "3010.00", "2999.98", "2999.99", true), // level 3009.99
            (Side::Sell, "3010.00", "2999.99", "3000.00", false),
            (Side::Sell, "3010.00", "3000.00", "3000.01", false),
        ];
        for (side, sl, bid, ask, moves) in cases {
            let p = position(side, Some(sl), "10.00");
            let mut index = TrailIndex::default();
            index.insert(&p);
            let q = quote(bid, ask);
            let level = trail_level(side, &q, "10.00".parse().expect("d")).expect("level");
            assert_eq!(
                tighter(side, p.stop_loss, level),
                moves,
                "{side:?} {bid}/{ask}"
            );
            let keys = QuoteKeys::of(q.bid.value(), q.ask.value());
            let found = !index.candidates(Asset::Eth, keys).is_empty();
            assert!(found || !moves, "{side:?} {bid}/{ask} missed");
            index.remove(&p);
            assert_eq!(index.len(), 0);
        }
    }
}
