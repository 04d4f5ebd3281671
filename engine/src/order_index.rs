//! Ordered indexes of pending orders, so a tick with many resting orders costs O(log n) plus
//! the orders it fills, and expiry costs O(log n) plus the orders it cancels.
//!
//! Per asset, side and type, an ordered set of `(price key, order id)`, keyed like the
//! position triggers ([`crate::index`]: floored 1e-8 fixed point, re-checked exactly by the
//! caller). A buy is valued at the ask, a sell at the bid:
//!
//! | order | fills when | candidates |
//! |---|---|---|
//! | buy limit | ask <= price | keys at or above key(ask) |
//! | buy stop | ask >= price | keys at or below key(ask) |
//! | sell limit | bid >= price | keys at or below key(bid) |
//! | sell stop | bid <= price | keys at or above key(bid) |
//!
//! Flooring keeps every truly crossed order among the candidates (`p >= a` implies
//! `floor(p) >= floor(a)`, and the same for `<=`). A separate set `(expires_at, order id)`
//! answers which orders have expired. Derived from the orders, rebuilt on restore, never
//! serialised.

use bus::{Asset, Order, OrderId, OrderType, Side, TimestampMs};
use rust_decimal::Decimal;

use crate::index::{QuoteKeys, key};
use crate::key_set::KeySet;

type Keys = KeySet<OrderId>;

const LOWEST: OrderId = OrderId(0);
const HIGHEST: OrderId = OrderId(u64::MAX);

#[derive(Debug, Default, Clone)]
struct AssetOrders {
    buy_limit: Keys,
    buy_stop: Keys,
    sell_limit: Keys,
    sell_stop: Keys,
}

#[derive(Debug, Default, Clone)]
pub struct OrderIndex {
    assets: [AssetOrders; 3],
    /// `(expires_at, id)`.
    expiry: KeySet<OrderId>,
}

/// Whether an order fills at a quote of `bid`/`ask` (exact).
pub fn fills_at(order: &Order, bid: Decimal, ask: Decimal) -> bool {
    let price = order.price.value();
    match (order.side, order.order_type) {
        (Side::Buy, OrderType::Limit) => ask <= price,
        (Side::Buy, OrderType::Stop) => ask >= price,
        (Side::Sell, OrderType::Limit) => bid >= price,
        (Side::Sell, OrderType::Stop) => bid <= price,
    }
}

impl OrderIndex {
    fn keys_mut(&mut self, o: &Order) -> &mut Keys {
        let a = &mut self.assets[o.asset.index()];
        match (o.side, o.order_type) {
            (Side::Buy, OrderType::Limit) => &mut a.buy_limit,
            (Side::Buy, OrderType::Stop) => &mut a.buy_stop,
            (Side::Sell, OrderType::Limit) => &mut a.sell_limit,
            (Side::Sell, OrderType::Stop) => &mut a.sell_stop,
        }
    }

    pub fn insert(&mut self, o: &Order) {
        self.keys_mut(o).insert(key(o.price.value()), o.id);
        if let Some(at) = o.expires_at {
            self.expiry.insert(at, o.id);
        }
    }

    pub fn remove(&mut self, o: &Order) {
        self.keys_mut(o).remove(key(o.price.value()), o.id);
        if let Some(at) = o.expires_at {
            self.expiry.remove(at, o.id);
        }
    }

    /// Orders of `asset` that a quote may fill (a superset of those it does), sorted by id.
    pub fn candidates(&self, asset: Asset, quote: QuoteKeys) -> Vec<OrderId> {
        let a = &self.assets[asset.index()];
        let QuoteKeys { bid, ask } = quote;
        let mut out = Vec::new();
        a.buy_limit.at_or_above(ask, LOWEST, &mut out);
        a.buy_stop.at_or_below(ask, HIGHEST, &mut out);
        a.sell_limit.at_or_below(bid, HIGHEST, &mut out);
        a.sell_stop.at_or_above(bid, LOWEST, &mut out);
        if out.len() > 1 {
            out.sort_unstable();
        }
        out
    }

    /// Orders whose expiry is at or before `now`, earliest expiry first (ties in id order).
    /// Nothing expired costs one comparison with the earliest expiry.
    pub fn expired(&self, now: TimestampMs) -> Vec<OrderId> {
        let mut out = Vec::new();
        self.expiry.at_or_below(now, HIGHEST, &mut out);
        out
    }

    /// Number of indexed entries: one per order plus one per expiry (for tests).
    pub fn len(&self) -> usize {
        let prices: usize = self
            .assets
            .iter()
            .map(|a| a.buy_limit.len() + a.buy_stop.len() + a.sell_limit.len() + a.sell_stop.len())
            .sum();
        prices + self.expiry.len()
    }
}

#[cfg(test)]
mod tests {
    use super::{OrderIndex, fills_at};
    use crate::index::QuoteKeys;
    use bus::{Asset, Order, OrderId, OrderType, Side, UserId};
    use rust_decimal::Decimal;

    fn order(id: u64, side: Side, order_type: OrderType, at: &str, expires: Option<i64>) -> Order {
        Order {
            id: OrderId(id),
            user_id: UserId(uuid::Uuid::nil()),
            asset: Asset::Sol,
            side,
            order_type,
            price: at.parse().expect("price"),
            quantity: "1".parse().expect("quantity"),
            leverage: bus::Leverage::new(10).expect("leverage"),
            stop_loss: None,
            take_profit: None,
            expires_at: expires,
            created_at: 0,
        }
    }

    /// Prices in steps of 1e-9 across each order's price: every quote that fills it exactly
    /// finds it among the candidates, and candidates come in id order.
    #[test]
    fn candidates_contain_every_exact_fill() {
        let orders = [
            order(4, Side::Buy, OrderType::Limit, "150.000000005", None),
            order(3, Side::Buy, OrderType::Stop, "150.000000005", None),
            order(2, Side::Sell, OrderType::Limit, "150.000000005", None),
            order(1, Side::Sell, OrderType::Stop, "150.000000005", None),
        ];
        let mut index = OrderIndex::default();
        for o in &orders {
            index.insert(o);
        }
        let start: Decimal = "149.99999999".parse().expect("start");
        for step in 0..30 {
            let p = start + Decimal::new(step, 9);
            let candidates = index.candidates(Asset::Sol, QuoteKeys::of(p, p));
            assert!(candidates.is_sorted(), "{candidates:?}");
            for o in &orders {
                if fills_at(o, p, p) {
                    assert!(candidates.contains(&o.id), "{:?} at {p}", o.id);
                }
            }
        }
        let quote = QuoteKeys::of(start, start);
        assert!(index.candidates(Asset::Btc, quote).is_empty());
    }

    #[test]
    fn expiry_is_answered_earliest_first_and_removal_clears_it() {
        let mut index = OrderIndex::default();
        let a = order(1, Side::Buy, OrderType::Limit, "100", Some(50));
        let b = order(2, Side::Buy, OrderType::Limit, "100", Some(40));
        let c = order(3, Side::Buy, OrderType::Limit, "100", None);
        for o in [&a, &b, &c] {
            index.insert(o);
        }
        assert_eq!(index.len(), 5);
        assert!(index.expired(39).is_empty());
        assert_eq!(index.expired(40), vec![OrderId(2)]);
        assert_eq!(index.expired(99), vec![OrderId(2), OrderId(1)]);
        index.remove(&b);
        assert_eq!(index.expired(99), vec![OrderId(1)]);
        assert_eq!(index.len(), 3);
    }
}
