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
//!   its bounds `invalid_quantity`; no price yet `no_price`; a stale price `price_stale` (see
//!   **Prices**); with `expectedPrice` (and
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
//! - **Trailing stop:** an open position may carry a `trailingDistance` `d` (set at open or by
//!   `ModifyPosition`, which replaces it like the levels; none clears it), with at most the
//!   asset's price decimals, else `invalid_trailing_distance`. Its *trail level* at a quote is
//!   `bid - d` for a buy (none at or below zero) and `ask + d` for a sell. The stop-loss
//!   becomes the trail level whenever that is strictly in the trader's favour (a buy's higher,
//!   a sell's lower, any level beats none): at open and modify (after the given stop-loss is
//!   validated, so a tighter given stop-loss stays) and on every tick of the asset after that
//!   tick's closes; it never moves back. A moved stop emits no event; its level shows in the
//!   open positions and in the close. The stop-loss is *set by the trail* from the moment the
//!   trail moves it until a `ModifyPosition` sets it again (keeping the trail set only if the
//!   trail level is again strictly tighter than the given stop-loss). A stop-loss close of a
//!   position whose stop-loss was set by the trail has reason `trailing_stop`, otherwise
//!   `stop_loss`.
//! - **Pending orders** (`PlaceOrder`): a `buy` `limit` order's price must be below the ask, a
//!   buy `stop`'s above it, a `sell` limit's above the bid and a sell stop's below it. In order:
//!   unknown account `account_not_found`; leverage and quantity as for a market open; no price
//!   yet `no_price`; a price on the wrong side of the market (equal is wrong) or with more than
//!   the asset's price decimals `invalid_order_price`; levels as for a position but against
//!   the order price (a buy's stop-loss below it, take-profit above; a sell's the reverse);
//!   an `expiresAt` at or before the command's time `invalid_expiry` (none: good till
//!   cancelled). Placing reserves no margin. Orders are numbered 1, 2, .. in placement order.
//!   `CancelOrder` removes one's own order (reason `user`); `ModifyOrder` keeps the price when
//!   none is given and replaces stop-loss, take-profit and expiry (none clears), all checked
//!   as at placement; another user's or an unknown order is `order_not_found`.
//! - **Fills:** on a tick, a buy order fills when the ask reaches its price (limit:
//!   `ask <= price`, stop: `ask >= price`), a sell when the bid does (limit: `bid >= price`,
//!   stop: `bid <= price`), at the tick's price (ask for a buy, bid for a sell, so a gap fills
//!   past the price). The fill opens a position exactly as a market open at that price would
//!   (margin against the free margin then, and not born liquidated); if it does not fit, the
//!   order is cancelled `insufficient_margin`. Either way the order leaves the book. A filled
//!   position whose stop-loss or take-profit the tick already crossed (a gap past the order's
//!   levels) closes on the same tick, at the same price.
//! - **Expiry** comes from the log's time: before any input at time `now` is applied (a tick,
//!   even a crossed one, or a command, even a retried one), every order with
//!   `expiresAt <= now` is cancelled `expired` (earliest expiry first, ties in id order), and
//!   those events come first in that input's events. Queries change nothing, so an expired
//!   order is listed until the next input.
//! - **Partial close** (`PartialClose`): the quantity must be a multiple of the step, less than
//!   the position's and leave at least the asset's minimum, else `invalid_quantity`; then no
//!   price `no_price`, a stale one `price_stale`. The closed part fills at the close-side price with
//!   `pnl` on the closed quantity (half-even to the cent) and releases
//!   `margin * closed / quantity`, half-even to the cent; the rest keeps the remaining margin,
//!   quantity, levels and trail, and its liquidation level is recomputed from them (so it may
//!   move by the rounding). Money is conserved: the released parts and the final close add up
//!   to the margin. A rest left at or beyond its new exact level by that rounding is liquidated
//!   by the next tick of its asset.
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
//!   (bid above ask) is ignored. Within one tick: first these closes, then the trailing stops
//!   move, then pending orders fill in order id order (so margin released by the tick's closes
//!   can fund its fills, and an earlier order's fill can starve a later one).
//! - **Close** (manual): a buy closes at the bid, a sell at the ask;
//!   `pnl = (close - open) * quantity` for a buy, `(open - close) * quantity` for a sell,
//!   rounded half-even to the cent; the margin is released and the PnL added to the balance.
//!   A position that is not the caller's, or not open, is `position_not_found`; then no price
//!   `no_price`, a stale one `price_stale`.
//! - **Prices:** a tick flagged `simulated` (the local runner's offline random walk) is refused
//!   unless the configuration allows simulated prices (`allow_simulated_prices`, on only in
//!   local mode): like a crossed tick, it updates no quote and triggers, moves and fills
//!   nothing (orders whose expiry has come are still cancelled, as before any input). Every
//!   applied tick records the log time `now` it was applied at. A market open, a manual close
//!   and a partial close of an asset whose quote was applied `price_stale_after_ms` (default
//!   30,000; 0 turns the check off) or more before the command's `now` are refused
//!   `price_stale`: a tick at `t` serves commands up to `t + limit - 1` and not at `t + limit`.
//!   Being judged from the log's times, replay refuses exactly the same commands. Pending
//!   orders, stop-losses, take-profits, trailing stops and liquidations act only on ticks, so
//!   they never use an old price and are not affected; placing or changing an order or a
//!   position's levels checks them against the last price, however old (nothing fills then).
//! - **Idempotency:** every command carries a command id; applying an id a second time changes
//!   nothing and returns the first reply. The ids, their commands' SHA-256 fingerprints and
//!   replies are part of the state, per user (every command names its user): each id is kept
//!   at least `idempotency_ttl_ms` of log time (24 h) and each user keeps their newest
//!   `idempotency_window` ids (10,000), so no other user's commands evict them. The same id
//!   with a different command is `command_id_reused`, and so is the reply lookup of a
//!   duplicate (`GetCommandReply`) that names a different command than the one applied under
//!   that id. An id forgotten (older, or beyond the user's newest) is new again: applied
//!   anew. The lookup of a duplicate whose logged sequence the engine has applied but whose
//!   id it no longer knows is `command_id_expired` (answered by the service).
//! - **Per-account limits:** at most `max_pending_orders` pending orders (200), else
//!   `too_many_orders` (checked right after the account); at most `max_open_positions` open
//!   positions (500), else `too_many_positions` for an open, and a pending order that fills
//!   while its account is at the limit is cancelled `too_many_positions`.
//! - **Determinism:** the state after a sequence of inputs is a pure function of it (time is
//!   passed in). A snapshot restored and fed the remaining inputs equals the straight run.

use std::collections::{BTreeMap, BTreeSet};

use bus::{
    Accepted, Asset, CloseReason, ClosedPosition, Command, CommandEnvelope, CommandId, EngineInput,
    Event, Fingerprint, Money, Order, OrderId, Position, PositionId, Price, PriceTick, RejectCode,
    Rejection, Reply, Side, TimestampMs, UserId,
};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::config::EngineConfig;
use crate::idempotency::{Seen, Window};
use crate::index::{QuoteKeys, TriggerIndex};
use crate::math;
use crate::order_index::OrderIndex;
use crate::remembered::Remembered;
use crate::trail_index::TrailIndex;

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
    /// Boxed: a position is ~200 bytes, and a map node holds eleven. Opens and closes at the
    /// newest ids split and merge the last node over and over; with boxes that moves
    /// pointers, and a node is a small allocation instead of a 2 KiB one. (Serialised the
    /// same as unboxed.)
    pub(crate) positions: BTreeMap<PositionId, Box<Position>>,
    pub(crate) quotes: [Option<PriceTick>; 3],
    pub(crate) next_position_id: u64,
    /// The global window of command ids of snapshot formats 1 to 3 (see `legacy_until`);
    /// empty in an engine started on format 4.
    pub(crate) applied: Window,
    /// Pending orders (this and the next two fields are absent in formats 1 and 2).
    #[serde(default)]
    pub(crate) orders: BTreeMap<OrderId, Order>,
    #[serde(default = "first_id")]
    pub(crate) next_order_id: u64,
    /// Positions whose current stop-loss was set by their trailing stop.
    #[serde(default)]
    pub(crate) trailed: BTreeSet<PositionId>,
    /// The log time (`now`) at which each asset's quote was applied: what `price_stale` is
    /// judged by. Absent in formats 1 to 3, which [`Engine::restore`] fills from the ticks'
    /// own times.
    #[serde(default)]
    pub(crate) quote_applied_at: [Option<TimestampMs>; 3],
    /// The ids remembered per user and by time (this and the next field are absent before
    /// format 4).
    #[serde(default)]
    pub(crate) remembered: Remembered,
    /// When the old window read from an older snapshot is dropped: one idempotency ttl
    /// after the first command applied since (its entries name no user and no time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) legacy_until: Option<TimestampMs>,
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
            && self.quote_applied_at == other.quote_applied_at
            && self.remembered == other.remembered
            && self.legacy_until == other.legacy_until
    }
}

/// The answer to a command id already applied to a different command.
pub(crate) fn id_reused(id: &CommandId) -> Reply {
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
        Self {
            config,
            accounts: BTreeMap::new(),
            positions: BTreeMap::new(),
            quotes: [None, None, None],
            next_position_id: 1,
            applied: Window::new(1),
            orders: BTreeMap::new(),
            next_order_id: first_id(),
            trailed: BTreeSet::new(),
            quote_applied_at: [None; 3],
            remembered: Remembered::default(),
            legacy_until: None,
            triggers: TriggerIndex::default(),
            order_index: OrderIndex::default(),
            trails: TrailIndex::default(),
        }
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Takes the idempotency and per-account limits of `config` (the rest of the state's
    /// config, the asset table and the deposit, stays). The service calls it on a loaded
    /// snapshot so the settings in effect apply; a clean stop snapshots its last input, so a
    /// change made across one applies from the next input on (after a crash, the few inputs
    /// replayed silently would be re-applied under the new limits).
    pub fn set_limits(&mut self, config: &EngineConfig) {
        self.config.idempotency_window = config.idempotency_window;
        self.config.idempotency_ttl_ms = config.idempotency_ttl_ms;
        self.config.max_pending_orders = config.max_pending_orders;
        self.config.max_open_positions = config.max_open_positions;
        self.config.page_size = config.page_size;
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
        // One event list for the whole input, expiries first. Each arm builds the outcome in
        // place, once: it holds a reply of a few hundred bytes, so every move of it is a
        // `memcpy` (a tick's `None` used to be moved in as a whole `Option<Reply>`).
        let mut events = Vec::new();
        self.expire_orders(now, &mut events);
        match input {
            EngineInput::PriceTick(tick) => {
                self.on_tick(&tick, now, &mut events);
                Outcome {
                    reply: None,
                    events,
                }
            }
            EngineInput::Command(envelope) => {
                // Nearly every command emits one event: room for exactly one. An event is a
                // few hundred bytes, and the default first growth (four) asks the allocator
                // for a large block, whose every request makes glibc consolidate its free
                // lists.
                events.reserve_exact(1);
                let reply = self.on_command(*envelope, now, &mut events);
                Outcome {
                    reply: Some(reply),
                    events,
                }
            }
        }
    }

    fn on_command(
        &mut self,
        CommandEnvelope { id, command }: CommandEnvelope,
        now: i64,
        events: &mut Vec<Event>,
    ) -> Reply {
        self.forget_due(now);
        let fp = Fingerprint::of(&command);
        match self.seen(&id, &fp) {
            Seen::Same(reply) => return reply.clone(),
            Seen::Different => return id_reused(&id),
            Seen::New => {}
        }
        let user_id = command.user_id();
        let result = match command {
            Command::CreateAccount { user_id } => self.create_account(user_id, now, events),
            Command::OpenPosition(open) => self.open(open, now, events),
            Command::ClosePosition {
                user_id,
                position_id,
            } => self.close_manually(user_id, position_id, now, events),
            Command::ModifyPosition(modify) => self.modify(modify, now, events),
            Command::PartialClose(close) => self.close_partially(close, now, events),
            Command::PlaceOrder(place) => self.place_order(place, now, events),
            Command::CancelOrder { user_id, order_id } => {
                self.cancel_order(user_id, order_id, now, events)
            }
            Command::ModifyOrder(modify) => self.modify_order(modify, now, events),
        };
        let reply = match result {
            Ok(accepted) => Reply::Accepted(accepted),
            Err(rejection) => Reply::Rejected(rejection),
        };
        self.remember(id, user_id, fp, reply.clone(), now);
        reply
    }

    /// What the engine remembers of a command id: per user, then the old window.
    pub(crate) fn seen(&self, id: &CommandId, fp: &Fingerprint) -> Seen<'_> {
        match self.remembered.check(id, fp) {
            Seen::New => self.applied.check(id, fp),
            known => known,
        }
    }

    /// Forgets the ids due at `now`: those remembered a ttl ago or longer, and the old
    /// window of an older snapshot once its ttl is up (it starts at the first command after
    /// the restore: its entries carry no time).
    fn forget_due(&mut self, now: TimestampMs) {
        let ttl_ms = self.config.idempotency_ttl_ms;
        self.remembered.expire(now, ttl_ms);
        if !self.applied.is_empty() {
            match self.legacy_until {
                None => self.legacy_until = Some(now.saturating_add(ttl_ms)),
                Some(until) if now >= until => {
                    self.applied = Window::new(1);
                    self.legacy_until = None;
                }
                Some(_) => {}
            }
        }
    }

    fn remember(
        &mut self,
        id: CommandId,
        user: UserId,
        fp: Fingerprint,
        reply: Reply,
        now: TimestampMs,
    ) {
        let per_user = self.config.idempotency_window;
        self.remembered.remember(id, user, fp, reply, now, per_user);
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

    /// Whether the account has the most open positions allowed (no account: no).
    pub(crate) fn at_position_limit(&self, user_id: UserId) -> bool {
        self.accounts
            .get(&user_id)
            .is_some_and(|a| a.open.len() >= self.config.max_open_positions)
    }

    pub(crate) fn quote(&self, asset: Asset) -> Option<&PriceTick> {
        self.quotes[asset.index()].as_ref()
    }

    /// Removes an open position at `fill`, settles its account and returns it closed.
    pub(crate) fn close(
        &mut self,
        id: PositionId,
        fill: Price,
        reason: CloseReason,
        now: TimestampMs,
    ) -> ClosedPosition {
        let position = *self.positions.remove(&id).expect("caller checked the id");
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

    fn on_tick(&mut self, tick: &PriceTick, now: TimestampMs, events: &mut Vec<Event>) {
        if self.refuses(tick) {
            return;
        }
        let keys = QuoteKeys::of(tick.bid.value(), tick.ask.value());
        if keys.is_crossed(tick.bid.value(), tick.ask.value()) {
            return;
        }
        self.quotes[tick.asset.index()] = Some(tick.clone());
        self.quote_applied_at[tick.asset.index()] = Some(now);
        let candidates = self.triggers.candidates(tick.asset, keys);
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
        self.move_trailing_stops(tick, keys);
        self.fill_orders(tick, keys, now, events);
    }
}

pub(crate) fn close_side_price(side: Side, quote: &PriceTick) -> Price {
    match side {
        Side::Buy => quote.bid,
        Side::Sell => quote.ask,
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
