//! The trading rules: demo CFDs, isolated margin, USD accounts. This is the contract.
//!
//! - **Assets** BTC, ETH and SOL, each with price decimals, a quantity step, a minimum and
//!   maximum quantity and a maximum leverage (default 100), all in one table
//!   ([`crate::AssetTable`]), configurable.
//! - **Accounts** start with a configurable demo balance (default 10,000.00 USD). `balance` is
//!   realised money; `usedMargin` is the sum of open positions' margins; `unrealizedPnl` their
//!   floating PnL at close-side prices (each rounded half-even to the cent);
//!   `equity = balance + unrealizedPnl`; `freeMargin = balance - usedMargin` (floating profit
//!   never funds new margin: that keeps balances from going negative);
//!   `marginLevel = equity / usedMargin * 100`, none without positions.
//! - **Open at market:** a buy fills at the latest ask, a sell at the latest bid. In order:
//!   unknown account `account_not_found`; leverage not a whole number from 1 to the asset's
//!   maximum `invalid_leverage`; quantity not a positive multiple of the asset's step within
//!   its bounds `invalid_quantity`; no price yet `no_price`; with `expectedPrice` (and
//!   `maxSlippageBps`, default 0) a fill further than that from the expected price
//!   `slippage_exceeded`; invalid levels `invalid_stop_loss` / `invalid_take_profit`;
//!   `margin = quantity * fillPrice / leverage`, rounded up to the cent, more than
//!   `freeMargin`: `insufficient_margin`; so is a margin too thin to cover the spread (the
//!   close-side price already at or beyond the exact liquidation level: it would be liquidated
//!   at once).
//! - **Stop-loss / take-profit** are optional, set at open or changed later (`ModifyPosition`
//!   replaces both; none clears a level). A buy's stop-loss must be below the current bid and
//!   its take-profit above it; a sell's stop-loss above the current ask and its take-profit
//!   below it; a level has at most the asset's price decimals.
//! - **Liquidation:** the exact level is buy `open - margin / quantity`, sell
//!   `open + margin / quantity` (unrounded: where the market loss equals the margin). A position
//!   is liquidated when its close-side price is at or beyond it, i.e. when
//!   `(open - bid) * quantity >= margin` for a buy, `(ask - open) * quantity >= margin` for a
//!   sell. The `liquidationPrice` shown is that level rounded to the price decimals *away* from
//!   the open price (down for a buy, up for a sell), so every price on the grid at or beyond
//!   the shown level liquidates and none before it does; none when it rounds to zero or below
//!   (a buy at 1x cannot lose more than its margin, and such a position is never liquidated).
//! - **Every price tick** for an asset, for each open position it triggers (in position id
//!   order): a position at or beyond its exact liquidation level (a buy valued at the bid, a
//!   sell at the ask) is closed `liquidation` with a realised PnL of exactly `-margin` (its
//!   market loss is at least the margin; the excess, if any, is recorded as `absorbed_loss`);
//!   otherwise a buy closes `stop_loss` when bid <= SL and `take_profit` when bid >= TP, a
//!   sell `stop_loss` when ask >= SL and `take_profit` when ask <= TP. Such closes fill at the
//!   tick's price (bid for a buy, ask for a sell), not at the trigger level. A crossed tick
//!   (bid above ask) is ignored.
//! - **Close** (manual): a buy closes at the bid, a sell at the ask;
//!   `pnl = (close - open) * quantity` for a buy, `(open - close) * quantity` for a sell,
//!   rounded half-even to the cent; the margin is released and the PnL added to the balance.
//!   A position that is not the caller's, or not open, is `position_not_found`.
//! - **Idempotency:** every command carries a command id; applying an id a second time changes
//!   nothing and returns the first reply (a bounded window of recent ids and their commands'
//!   SHA-256 fingerprints is part of the state); the same id with a different command is
//!   `command_id_reused`, and so is the reply lookup of a duplicate (`GetCommandReply`) that
//!   names a different command than the one applied under that id.
//! - **Determinism:** the state after a sequence of inputs is a pure function of it (time is
//!   passed in). A snapshot restored and fed the remaining inputs equals the straight run.

use std::collections::{BTreeMap, BTreeSet};

use bus::{
    Accepted, AccountSummary, Asset, CloseReason, ClosedPosition, Command, CommandEnvelope,
    CommandId, EngineInput, Event, Fingerprint, ModifyPosition, Money, OpenPosition, Order,
    OrderId, Position, PositionId, PositionView, Price, PriceTick, Query, QueryReply, RejectCode,
    Rejection, Reply, Side, TimestampMs, UserId,
};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::checks::{check_levels, check_leverage, check_quantity, has_price_decimals};
use crate::config::{AssetSpec, EngineConfig};
use crate::idempotency::{Seen, Window};
use crate::index::TriggerIndex;
use crate::math;
use crate::order_index::OrderIndex;
use crate::trailing::{TrailIndex, trailed_stop};

/// What one input produced: the reply to a command (none for a price tick) and the events.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Outcome {
    pub reply: Option<Reply>,
    pub events: Vec<Event>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Account {
    /// Money paid in (the demo deposit).
    pub(crate) deposit: Decimal,
    /// `deposit + realized_pnl`.
    pub(crate) balance: Decimal,
    pub(crate) used_margin: Decimal,
    /// Sum of realised PnL of every closed position (and closed part).
    pub(crate) realized_pnl: Decimal,
    pub(crate) open: BTreeSet<PositionId>,
    /// Pending orders (absent in snapshot formats 1 and 2).
    #[serde(default)]
    pub(crate) orders: BTreeSet<OrderId>,
}

fn first_id() -> u64 {
    1
}

/// The whole engine state. `Serialize` gives a snapshot; [`Engine::restore`] reads one back.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Engine {
    pub(crate) config: EngineConfig,
    pub(crate) accounts: BTreeMap<UserId, Account>,
    pub(crate) positions: BTreeMap<PositionId, Position>,
    quotes: [Option<PriceTick>; 3],
    pub(crate) next_position_id: u64,
    applied: Window,
    /// Pending orders (this and the next two fields are absent in formats 1 and 2).
    #[serde(default)]
    pub(crate) orders: BTreeMap<OrderId, Order>,
    #[serde(default = "first_id")]
    pub(crate) next_order_id: u64,
    /// Positions whose current stop-loss was set by their trailing stop.
    #[serde(default)]
    pub(crate) trailed: BTreeSet<PositionId>,
    #[serde(skip)]
    pub(crate) triggers: TriggerIndex,
    #[serde(skip)]
    pub(crate) order_index: OrderIndex,
    #[serde(skip)]
    pub(crate) trails: TrailIndex,
}

impl PartialEq for Engine {
    /// The indexes are derived from the positions and orders, so they take no part in
    /// equality.
    fn eq(&self, other: &Self) -> bool {
        self.config == other.config
            && self.accounts == other.accounts
            && self.positions == other.positions
            && self.quotes == other.quotes
            && self.next_position_id == other.next_position_id
            && self.applied == other.applied
            && self.orders == other.orders
            && self.next_order_id == other.next_order_id
            && self.trailed == other.trailed
    }
}

/// The answer to a command id already applied to a different command.
fn id_reused(id: &CommandId) -> Reply {
    Reply::Rejected(Rejection::new(
        RejectCode::CommandIdReused,
        format!("command id {id} was already used for a different command"),
    ))
}

pub(crate) fn reject<T>(code: RejectCode, message: impl Into<String>) -> Result<T, Rejection> {
    Err(Rejection::new(code, message))
}

/// Money is kept in cents and always shown with two decimals ("0.00", not "0").
pub(crate) fn money(mut d: Decimal) -> Money {
    d.rescale(math::MONEY_DECIMALS);
    // Every `Money` is valid: the type only carries a decimal.
    Money::new(d).unwrap_or(Money::ZERO)
}

/// Wraps a decimal known to be positive (a quote, a fill, a checked level).
pub(crate) fn price(d: Decimal) -> Option<Price> {
    Price::new(d).ok()
}

impl Engine {
    pub fn new(config: EngineConfig) -> Self {
        let window = Window::new(config.idempotency_window);
        Self {
            config,
            accounts: BTreeMap::new(),
            positions: BTreeMap::new(),
            quotes: [None, None, None],
            next_position_id: 1,
            applied: window,
            orders: BTreeMap::new(),
            next_order_id: first_id(),
            trailed: BTreeSet::new(),
            triggers: TriggerIndex::default(),
            order_index: OrderIndex::default(),
            trails: TrailIndex::default(),
        }
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

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
        engine.rebuild_triggers();
        Ok(engine)
    }

    pub fn open_positions(&self) -> usize {
        self.positions.len()
    }

    /// The id the next opened position will get (positions are numbered in open order).
    pub fn next_position_id(&self) -> PositionId {
        PositionId(self.next_position_id)
    }

    pub fn accounts(&self) -> usize {
        self.accounts.len()
    }

    /// Applies one input of the log at time `now` (ms since the epoch, taken from the log).
    /// Pending orders whose expiry has come are cancelled first, whatever the input.
    pub fn apply(&mut self, input: EngineInput, now: TimestampMs) -> Outcome {
        let mut events = self.expire_orders(now);
        let mut outcome = match input {
            EngineInput::PriceTick(tick) => Outcome {
                reply: None,
                events: self.on_tick(&tick, now),
            },
            EngineInput::Command(envelope) => self.on_command(envelope, now),
        };
        if !events.is_empty() {
            events.append(&mut outcome.events);
            outcome.events = events;
        }
        outcome
    }

    fn on_command(
        &mut self,
        CommandEnvelope { id, command }: CommandEnvelope,
        now: i64,
    ) -> Outcome {
        let fp = Fingerprint::of(&command);
        match self.applied.check(&id, &fp) {
            Seen::Same(reply) => {
                return Outcome {
                    reply: Some(reply.clone()),
                    events: Vec::new(),
                };
            }
            Seen::Different => {
                return Outcome {
                    reply: Some(id_reused(&id)),
                    events: Vec::new(),
                };
            }
            Seen::New => {}
        }
        let mut events = Vec::new();
        let result = match command {
            Command::CreateAccount { user_id } => self.create_account(user_id, now, &mut events),
            Command::OpenPosition(open) => self.open(open, now, &mut events),
            Command::ClosePosition {
                user_id,
                position_id,
            } => self.close_manually(user_id, position_id, now, &mut events),
            Command::ModifyPosition(modify) => self.modify(modify, now, &mut events),
            Command::PartialClose(close) => self.close_partially(close, now, &mut events),
            Command::PlaceOrder(place) => self.place_order(place, now, &mut events),
            Command::CancelOrder { user_id, order_id } => {
                self.cancel_order(user_id, order_id, now, &mut events)
            }
            Command::ModifyOrder(modify) => self.modify_order(modify, now, &mut events),
        };
        let reply = match result {
            Ok(accepted) => Reply::Accepted(accepted),
            Err(rejection) => Reply::Rejected(rejection),
        };
        self.applied.remember(id, fp, reply.clone());
        Outcome {
            reply: Some(reply),
            events,
        }
    }

    fn create_account(
        &mut self,
        user_id: UserId,
        now: TimestampMs,
        events: &mut Vec<Event>,
    ) -> Result<Accepted, Rejection> {
        if self.accounts.contains_key(&user_id) {
            return reject(RejectCode::AccountExists, "the account already exists");
        }
        let deposit = self.config.initial_balance;
        self.accounts.insert(
            user_id,
            Account {
                deposit,
                balance: deposit,
                used_margin: Decimal::ZERO,
                realized_pnl: Decimal::ZERO,
                open: BTreeSet::new(),
                orders: BTreeSet::new(),
            },
        );
        events.push(Event::AccountCreated {
            user_id,
            balance: money(deposit),
            at: now,
        });
        Ok(Accepted::AccountCreated {
            account: self.summary(user_id).expect("account was just inserted"),
        })
    }

    pub(crate) fn quote(&self, asset: Asset) -> Option<&PriceTick> {
        self.quotes[asset.index()].as_ref()
    }

    fn open(
        &mut self,
        cmd: OpenPosition,
        now: TimestampMs,
        events: &mut Vec<Event>,
    ) -> Result<Accepted, Rejection> {
        if !self.accounts.contains_key(&cmd.user_id) {
            return reject(RejectCode::AccountNotFound, "no account for this user");
        }
        let spec = self.config.assets.get(cmd.asset);
        check_leverage(spec, cmd.leverage.value())?;
        check_quantity(spec, cmd.quantity.value())?;
        let Some(quote) = self.quote(cmd.asset).cloned() else {
            return reject(
                RejectCode::NoPrice,
                format!("no price for {} yet", cmd.asset),
            );
        };
        let fill = match cmd.side {
            Side::Buy => quote.ask,
            Side::Sell => quote.bid,
        };
        if let Some(expected) = cmd.expected_price {
            let bps = cmd.max_slippage_bps.unwrap_or(0);
            if math::slippage_exceeded(fill.value(), expected.value(), bps) {
                return reject(
                    RejectCode::SlippageExceeded,
                    format!("fill {fill} is more than {bps} bps from the expected {expected}"),
                );
            }
        }
        check_levels(
            spec,
            cmd.side,
            close_side_reference(cmd.side, &quote),
            cmd.stop_loss,
            cmd.take_profit,
        )?;
        check_trailing(spec, cmd.trailing_distance)?;
        let (stop_loss, trailed) =
            trailed_stop(cmd.side, &quote, cmd.stop_loss, cmd.trailing_distance);
        let position = self.open_at(&OpenPosition { stop_loss, ..cmd }, fill, &quote, now)?;
        if trailed {
            self.trailed.insert(position.id);
        }
        events.push(Event::PositionOpened {
            position: position.clone(),
        });
        Ok(Accepted::PositionOpened { position })
    }

    /// The shared end of a market open and an order fill: the margin at `fill` must fit the
    /// free margin and cover the spread (`insufficient_margin`); then the position is numbered,
    /// booked and indexed. Everything else is checked by the caller.
    pub(crate) fn open_at(
        &mut self,
        cmd: &OpenPosition,
        fill: Price,
        quote: &PriceTick,
        now: TimestampMs,
    ) -> Result<Position, Rejection> {
        let spec = self.config.assets.get(cmd.asset);
        let Some(account) = self.accounts.get(&cmd.user_id) else {
            return reject(RejectCode::AccountNotFound, "no account for this user");
        };
        let quantity = cmd.quantity.value();
        let margin = math::margin(quantity, fill.value(), cmd.leverage.value());
        let free = account.balance - account.used_margin;
        if margin > free {
            return reject(
                RejectCode::InsufficientMargin,
                format!("margin {margin} exceeds free margin {free}"),
            );
        }
        let liquidation = math::liquidation_price(
            cmd.side,
            fill.value(),
            margin,
            quantity,
            spec.price_decimals,
        );
        let valued_at = close_side_price(cmd.side, quote).value();
        let born_liquidated = liquidation.is_some()
            && math::is_liquidated(cmd.side, fill.value(), margin, quantity, valued_at);
        if born_liquidated {
            return reject(
                RejectCode::InsufficientMargin,
                format!(
                    "margin {margin} does not cover the spread: the position would be liquidated at once"
                ),
            );
        }
        let id = PositionId(self.next_position_id);
        self.next_position_id += 1;
        let position = Position {
            id,
            user_id: cmd.user_id,
            asset: cmd.asset,
            side: cmd.side,
            quantity: cmd.quantity,
            leverage: cmd.leverage,
            open_price: fill,
            margin: money(margin),
            liquidation_price: liquidation.and_then(price),
            stop_loss: cmd.stop_loss,
            take_profit: cmd.take_profit,
            opened_at: now,
            trailing_distance: cmd.trailing_distance,
        };
        let account = self
            .accounts
            .get_mut(&cmd.user_id)
            .expect("account checked above");
        account.used_margin += margin;
        account.open.insert(id);
        self.triggers.insert(&position);
        self.trails.insert(&position);
        self.positions.insert(id, position.clone());
        Ok(position)
    }

    /// The caller's open position, or `position_not_found`.
    pub(crate) fn owned(&self, user_id: UserId, id: PositionId) -> Result<&Position, Rejection> {
        self.positions
            .get(&id)
            .filter(|p| p.user_id == user_id)
            .ok_or_else(|| {
                Rejection::new(
                    RejectCode::PositionNotFound,
                    format!("no open position {id} for this user"),
                )
            })
    }

    fn close_manually(
        &mut self,
        user_id: UserId,
        id: PositionId,
        now: TimestampMs,
        events: &mut Vec<Event>,
    ) -> Result<Accepted, Rejection> {
        let position = self.owned(user_id, id)?;
        let Some(quote) = self.quote(position.asset) else {
            return reject(
                RejectCode::NoPrice,
                format!("no price for {} yet", position.asset),
            );
        };
        let fill = close_side_price(position.side, quote);
        let closed = self.close(id, fill, CloseReason::Manual, now);
        events.push(Event::PositionClosed {
            position: closed.clone(),
        });
        Ok(Accepted::PositionClosed { position: closed })
    }

    fn modify(
        &mut self,
        cmd: ModifyPosition,
        now: TimestampMs,
        events: &mut Vec<Event>,
    ) -> Result<Accepted, Rejection> {
        let position = self.owned(cmd.user_id, cmd.position_id)?;
        let (mut stop_loss, mut trailed) = (cmd.stop_loss, false);
        let changes_levels =
            cmd.stop_loss.is_some() || cmd.take_profit.is_some() || cmd.trailing_distance.is_some();
        if changes_levels {
            let Some(quote) = self.quote(position.asset) else {
                return reject(
                    RejectCode::NoPrice,
                    format!("no price for {} yet", position.asset),
                );
            };
            let spec = self.config.assets.get(position.asset);
            let reference = close_side_reference(position.side, quote);
            check_levels(
                spec,
                position.side,
                reference,
                cmd.stop_loss,
                cmd.take_profit,
            )?;
            check_trailing(spec, cmd.trailing_distance)?;
            (stop_loss, trailed) =
                trailed_stop(position.side, quote, cmd.stop_loss, cmd.trailing_distance);
        }
        let mut position = self
            .positions
            .remove(&cmd.position_id)
            .expect("position checked above");
        self.triggers.remove(&position);
        self.trails.remove(&position);
        position.stop_loss = stop_loss;
        position.take_profit = cmd.take_profit;
        position.trailing_distance = cmd.trailing_distance;
        self.triggers.insert(&position);
        self.trails.insert(&position);
        if trailed {
            self.trailed.insert(position.id);
        } else {
            self.trailed.remove(&position.id);
        }
        self.positions.insert(position.id, position.clone());
        events.push(Event::PositionModified {
            position: position.clone(),
            at: now,
        });
        Ok(Accepted::PositionModified { position })
    }

    /// Removes an open position at `fill`, settles its account and returns it closed.
    pub(crate) fn close(
        &mut self,
        id: PositionId,
        fill: Price,
        reason: CloseReason,
        now: TimestampMs,
    ) -> ClosedPosition {
        let position = self.positions.remove(&id).expect("caller checked the id");
        self.triggers.remove(&position);
        self.trails.remove(&position);
        self.trailed.remove(&id);
        let margin = position.margin.value();
        let market_pnl = math::pnl(
            position.side,
            position.open_price.value(),
            fill.value(),
            position.quantity.value(),
        );
        let (realized, absorbed) = if reason == CloseReason::Liquidation {
            (-margin, (-market_pnl - margin).max(Decimal::ZERO))
        } else {
            (market_pnl, Decimal::ZERO)
        };
        let account = self
            .accounts
            .get_mut(&position.user_id)
            .expect("every position has an account");
        account.used_margin -= margin;
        account.balance += realized;
        account.realized_pnl += realized;
        account.open.remove(&id);
        ClosedPosition {
            position,
            close_price: fill,
            realized_pnl: money(realized),
            close_reason: reason,
            closed_at: now,
            absorbed_loss: money(absorbed),
        }
    }

    fn on_tick(&mut self, tick: &PriceTick, now: TimestampMs) -> Vec<Event> {
        if crate::index::is_crossed(tick.bid.value(), tick.ask.value()) {
            return Vec::new();
        }
        self.quotes[tick.asset.index()] = Some(tick.clone());
        let candidates = self
            .triggers
            .candidates(tick.asset, tick.bid.value(), tick.ask.value());
        let mut events = Vec::new();
        for id in candidates {
            let position = &self.positions[&id];
            let fill = match position.side {
                Side::Buy => tick.bid,
                Side::Sell => tick.ask,
            };
            if let Some(reason) = trigger_reason(position, fill.value()) {
                let reason = if reason == CloseReason::StopLoss && self.trailed.contains(&id) {
                    CloseReason::TrailingStop
                } else {
                    reason
                };
                let closed = self.close(id, fill, reason, now);
                events.push(Event::PositionClosed { position: closed });
            }
        }
        self.move_trailing_stops(tick);
        self.fill_orders(tick, now, &mut events);
        events
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
            Query::ListOpenPositions { user_id } => match self.accounts.get(user_id) {
                Some(account) => QueryReply::OpenPositions {
                    positions: account
                        .open
                        .iter()
                        .map(|id| self.view(&self.positions[id]))
                        .collect(),
                },
                None => not_found(),
            },
            Query::GetCommandReply {
                command_id,
                fingerprint,
            } => QueryReply::CommandReply {
                reply: match self.applied.check(command_id, fingerprint) {
                    Seen::New => None,
                    Seen::Same(reply) => Some(reply.clone()),
                    Seen::Different => Some(id_reused(command_id)),
                },
            },
            Query::ListPendingOrders { user_id } => match self.accounts.get(user_id) {
                Some(account) => QueryReply::PendingOrders {
                    orders: account
                        .orders
                        .iter()
                        .map(|id| self.orders[id].clone())
                        .collect(),
                },
                None => not_found(),
            },
            Query::GetPrices => QueryReply::Prices {
                quotes: self.quotes.iter().flatten().cloned().collect(),
            },
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

    fn summary(&self, user_id: UserId) -> Option<AccountSummary> {
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
        self.positions.values()
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

pub(crate) fn close_side_price(side: Side, quote: &PriceTick) -> Price {
    match side {
        Side::Buy => quote.bid,
        Side::Sell => quote.ask,
    }
}

/// The close-side price with its name, as the reference of a position's levels.
fn close_side_reference(side: Side, quote: &PriceTick) -> (Decimal, &'static str) {
    match side {
        Side::Buy => (quote.bid.value(), "bid"),
        Side::Sell => (quote.ask.value(), "ask"),
    }
}

/// A trailing distance has at most the asset's price decimals.
fn check_trailing(spec: &AssetSpec, distance: Option<Price>) -> Result<(), Rejection> {
    match distance {
        Some(d) if !has_price_decimals(spec, d) => reject(
            RejectCode::InvalidTrailingDistance,
            format!(
                "a trailing distance has at most {} decimals",
                spec.price_decimals
            ),
        ),
        _ => Ok(()),
    }
}

/// Whether a position valued at `fill` is at or beyond its exact liquidation level (one
/// without a liquidation price cannot be liquidated).
pub(crate) fn is_liquidated(p: &Position, fill: Decimal) -> bool {
    p.liquidation_price.is_some()
        && math::is_liquidated(
            p.side,
            p.open_price.value(),
            p.margin.value(),
            p.quantity.value(),
            fill,
        )
}

/// Which rule, if any, closes a position valued at `fill` (its close-side price):
/// liquidation first, then stop-loss, then take-profit.
pub(crate) fn trigger_reason(p: &Position, fill: Decimal) -> Option<CloseReason> {
    let crossed = |level: Option<Price>, against: bool| {
        level.is_some_and(|l| match (p.side, against) {
            // "against" the position: a buy loses as the bid falls, a sell as the ask rises.
            (Side::Buy, true) | (Side::Sell, false) => fill <= l.value(),
            (Side::Buy, false) | (Side::Sell, true) => fill >= l.value(),
        })
    };
    if is_liquidated(p, fill) {
        Some(CloseReason::Liquidation)
    } else if crossed(p.stop_loss, true) {
        Some(CloseReason::StopLoss)
    } else if crossed(p.take_profit, false) {
        Some(CloseReason::TakeProfit)
    } else {
        None
    }
}
