//! Reading the engine state: queries, views, snapshots and restore (the indexes are derived
//! from the state and rebuilt here, never serialised).

use std::collections::BTreeSet;
use std::ops::Bound;

use bus::{
    AccountSummary, Order, OrderId, Page, Position, PositionId, PositionView, Query, QueryReply,
    RejectCode, Rejection, Reply, UserId,
};
use rust_decimal::Decimal;

use crate::idempotency::Seen;
use crate::index::TriggerIndex;
use crate::math;
use crate::order_index::OrderIndex;
use crate::trading::{Engine, close_side_price, id_reused, money, price};
use crate::trail_index::TrailIndex;

impl Engine {
    /// Serialises the state (without the derived indexes).
    pub fn snapshot(&self) -> Vec<u8> {
        // Plain data with string map keys: serialisation cannot fail.
        serde_json::to_vec(self).expect("engine state serialises")
    }

    /// Reads a snapshot of the state written by an engine whose liquidation prices were
    /// rounded towards the open price (snapshot format 1): as [`Engine::restore`], then every
    /// open position's shown liquidation price is recomputed by today's rule (its trigger is
    /// the exact level either way).
    pub fn restore_format_1(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        let mut engine = Self::restore(bytes)?;
        for p in engine.positions.values_mut() {
            let decimals = engine.config.assets.get(p.asset).price_decimals;
            let shown = math::liquidation_price(
                p.side,
                p.open_price.value(),
                p.margin.value(),
                p.quantity.value(),
                decimals,
            );
            p.liquidation_price = shown.and_then(price);
        }
        engine.rebuild_triggers();
        Ok(engine)
    }

    fn rebuild_triggers(&mut self) {
        let mut triggers = TriggerIndex::default();
        let mut trails = TrailIndex::default();
        for p in self.positions.values() {
            triggers.insert(p);
            trails.insert(p);
        }
        let mut order_index = OrderIndex::default();
        for o in self.orders.values() {
            order_index.insert(o);
        }
        self.triggers = triggers;
        self.trails = trails;
        self.order_index = order_index;
    }

    /// Reads a snapshot back and rebuilds the trigger indexes.
    pub fn restore(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        let mut engine: Engine = serde_json::from_slice(bytes)?;
        engine.fill_quote_times();
        engine.rebuild_triggers();
        Ok(engine)
    }

    /// Answers a query from the current state; changes nothing.
    pub fn query(&self, query: &Query) -> QueryReply {
        let not_found = || QueryReply::Rejected {
            rejection: Rejection::new(RejectCode::AccountNotFound, "no account for this user"),
        };
        match query {
            Query::GetAccount { user_id } => match self.summary(*user_id) {
                Some(account) => QueryReply::Account { account },
                None => not_found(),
            },
            Query::ListOpenPositions { user_id, page } => match self.accounts.get(user_id) {
                Some(account) => {
                    let (ids, next) = self.page(&account.open, page, |id| id.0, PositionId);
                    QueryReply::OpenPositions {
                        positions: ids.map(|id| self.view(&self.positions[id])).collect(),
                        next,
                    }
                }
                None => not_found(),
            },
            Query::GetCommandReply {
                command_id,
                fingerprint,
                ..
            } => QueryReply::CommandReply {
                reply: match self.seen(command_id, fingerprint) {
                    Seen::New => None,
                    Seen::Same(reply) => Some(reply.clone()),
                    Seen::Different => Some(id_reused(command_id)),
                },
            },
            Query::ListPendingOrders { user_id, page } => match self.accounts.get(user_id) {
                Some(account) => {
                    let (ids, next) = self.page(&account.orders, page, |id| id.0, OrderId);
                    QueryReply::PendingOrders {
                        orders: ids.map(|id| self.orders[id].clone()).collect(),
                        next,
                    }
                }
                None => not_found(),
            },
            Query::GetPrices => QueryReply::Prices {
                quotes: self.quotes.iter().flatten().cloned().collect(),
            },
        }
    }

    /// The ids of one page of `ids` (after `page.after`, at most the page size) and, when
    /// more follow, the last id of the page.
    fn page<'a, K: Ord + Copy>(
        &self,
        ids: &'a BTreeSet<K>,
        page: &Page,
        number: impl Fn(&K) -> u64,
        key: impl Fn(u64) -> K,
    ) -> (impl Iterator<Item = &'a K>, Option<u64>) {
        let size = page
            .limit
            .map_or(usize::MAX, |l| l as usize)
            .min(self.config.page_size)
            .max(1);
        let from = match page.after {
            Some(after) => Bound::Excluded(key(after)),
            None => Bound::Unbounded,
        };
        let mut rest = ids.range((from, Bound::Unbounded));
        let listed: Vec<&K> = rest.by_ref().take(size).collect();
        let next = match (rest.next(), listed.last()) {
            (Some(_), Some(last)) => Some(number(last)),
            _ => None,
        };
        (listed.into_iter(), next)
    }

    /// Answers a query as the service does, having applied the log through `last_applied`:
    /// as [`Engine::query`], except that an id the engine no
    /// longer knows although it applied the logged command (`logged_seq <= last_applied`) is
    /// `command_id_expired`, so the caller stops asking.
    pub fn answer(&self, query: &Query, last_applied: u64) -> QueryReply {
        let answer = self.query(query);
        match (query, &answer) {
            (
                Query::GetCommandReply {
                    command_id,
                    logged_seq: Some(seq),
                    ..
                },
                QueryReply::CommandReply { reply: None },
            ) if *seq <= last_applied => QueryReply::CommandReply {
                reply: Some(Reply::Rejected(Rejection::new(
                    RejectCode::CommandIdExpired,
                    format!(
                        "command id {command_id} was applied but is no longer remembered: its \
                         first reply cannot be given again"
                    ),
                ))),
            },
            _ => answer,
        }
    }

    fn view(&self, position: &Position) -> PositionView {
        let current = self
            .quote(position.asset)
            .map(|q| close_side_price(position.side, q));
        let unrealized = current.map_or(Decimal::ZERO, |c| {
            math::pnl(
                position.side,
                position.open_price.value(),
                c.value(),
                position.quantity.value(),
            )
        });
        PositionView {
            position: position.clone(),
            current_price: current,
            unrealized_pnl: money(unrealized),
        }
    }

    pub(crate) fn summary(&self, user_id: UserId) -> Option<AccountSummary> {
        let account = self.accounts.get(&user_id)?;
        let unrealized: Decimal = account
            .open
            .iter()
            .map(|id| self.view(&self.positions[id]).unrealized_pnl.value())
            .sum();
        let equity = account.balance + unrealized;
        Some(AccountSummary {
            user_id,
            balance: money(account.balance),
            used_margin: money(account.used_margin),
            unrealized_pnl: money(unrealized),
            equity: money(equity),
            free_margin: money(account.balance - account.used_margin),
            margin_level: math::margin_level(equity, account.used_margin).map(money),
        })
    }

    /// The account's deposit and realised PnL so far (for invariants in tests and audits).
    pub fn ledger(&self, user_id: UserId) -> Option<(Decimal, Decimal)> {
        self.accounts
            .get(&user_id)
            .map(|a| (a.deposit, a.realized_pnl))
    }

    /// Every open position (id order).
    pub fn positions(&self) -> impl Iterator<Item = &Position> {
        self.positions.values().map(|p| &**p)
    }

    /// The number of levels in the trigger indexes (equals the levels of open positions).
    pub fn indexed_levels(&self) -> usize {
        self.triggers.level_count()
    }

    /// Entries in the pending-order indexes (one per order, one more per expiry) and in the
    /// trailing-stop index (one per trailing position), for tests.
    pub fn indexed_orders_and_trails(&self) -> (usize, usize) {
        (self.order_index.len(), self.trails.len())
    }

    /// Every pending order (id order).
    pub fn orders(&self) -> impl Iterator<Item = &Order> {
        self.orders.values()
    }

    /// Whether the position's current stop-loss was set by its trailing stop.
    pub fn is_trailed(&self, id: PositionId) -> bool {
        self.trailed.contains(&id)
    }
}
