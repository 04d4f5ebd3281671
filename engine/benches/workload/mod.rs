//! The engine-core workloads, shared by the criterion bench (`benches/engine.rs`) and the
//! instruction-count guard (`examples/perf_guard.rs`, which includes this file by `#[path]`),
//! so both measure the same inputs: 1,000 accounts, a BTC quote at 65,000, N open positions
//! that a quiet tick triggers none of, pending orders, open+close pairs and the mixed stream.
//! Inputs are built here, outside whatever is timed or counted.

use bus::{
    Asset, Command, CommandEnvelope, CommandId, EngineInput, Leverage, OpenPosition, OrderType,
    PlaceOrder, PositionId, Price, PriceTick, Quantity, Side, UserId,
};
use engine::{Engine, EngineConfig};
use rust_decimal::Decimal;

const USERS: u64 = 1_000;

pub fn user(n: u64) -> UserId {
    UserId(uuid::Uuid::from_u128(u128::from(n % USERS) + 1))
}

pub fn price(cents: i64) -> Price {
    Price::new(Decimal::new(cents, 2)).expect("positive")
}

/// A BTC quote with a spread of 1.00.
pub fn tick(bid_cents: i64) -> EngineInput {
    EngineInput::PriceTick(PriceTick {
        asset: Asset::Btc,
        bid: price(bid_cents),
        ask: price(bid_cents + 100),
        ts: 0,
        simulated: false,
    })
}

pub fn command(id: u64, command: Command) -> EngineInput {
    EngineInput::command(CommandEnvelope {
        id: CommandId::new(format!("bench-{id}")).expect("id"),
        command,
    })
}

/// Position `n`: alternating buy/sell at 10x with stop-loss and take-profit 5% away, so a
/// tick within +-4% of 65,000 triggers nothing (liquidation is 10% away).
pub fn open(n: u64) -> Command {
    let side = if n.is_multiple_of(2) {
        Side::Buy
    } else {
        Side::Sell
    };
    let wobble = (n % 1000) as i64;
    let (sl, tp) = match side {
        Side::Buy => (6_175_000 - wobble, 6_825_000 + wobble),
        Side::Sell => (6_825_000 + wobble, 6_175_000 - wobble),
    };
    Command::OpenPosition(OpenPosition {
        trailing_distance: None,
        user_id: user(n),
        asset: Asset::Btc,
        side,
        quantity: Quantity::new(Decimal::new(1 + (n % 50) as i64, 4)).expect("positive"),
        leverage: Leverage::new(10).expect("10x"),
        stop_loss: Some(price(sl)),
        take_profit: Some(price(tp)),
        expected_price: None,
        max_slippage_bps: None,
    })
}

/// Pending order `n`: the four kinds in turn, each 8% or more from 65,000 on its side (so
/// the quiet band triggers none), half of them expiring in the far future.
fn place(n: u64) -> Command {
    let spread = (n % 1000) as i64;
    let (side, order_type, cents) = match n % 4 {
        0 => (Side::Buy, OrderType::Limit, 6_000_000 - spread),
        1 => (Side::Buy, OrderType::Stop, 7_000_000 + spread),
        2 => (Side::Sell, OrderType::Limit, 7_000_000 + spread),
        _ => (Side::Sell, OrderType::Stop, 6_000_000 - spread),
    };
    Command::PlaceOrder(PlaceOrder {
        user_id: user(n),
        asset: Asset::Btc,
        side,
        order_type,
        price: price(cents),
        quantity: Quantity::new(Decimal::new(1 + (n % 50) as i64, 4)).expect("positive"),
        leverage: Leverage::new(10).expect("10x"),
        stop_loss: None,
        take_profit: None,
        expires_at: n.is_multiple_of(2).then_some(4_000_000_000_000 + n as i64),
    })
}

/// An engine with `positions` open BTC positions and a quote at 65,000 (10 ids remembered
/// per user, 10,000 in all, so every command's fresh id makes its user's window evict; no
/// per-account caps: a thousand accounts hold a million positions).
pub fn engine_with(positions: u64) -> Engine {
    let config = EngineConfig {
        initial_balance: Decimal::new(1_000_000_000, 0),
        idempotency_window: 10,
        max_open_positions: usize::MAX,
        max_pending_orders: usize::MAX,
        ..Default::default()
    };
    let mut engine = Engine::new(config);
    for u in 0..USERS {
        engine.apply(command(u, Command::CreateAccount { user_id: user(u) }), 0);
    }
    engine.apply(tick(6_500_000), 0);
    for n in 0..positions {
        engine.apply(command(USERS + n, open(n)), 0);
    }
    assert_eq!(engine.open_positions() as u64, positions);
    engine
}

/// `engine_with(n)` plus `n` pending BTC orders.
pub fn engine_with_orders(n: u64) -> Engine {
    let mut engine = engine_with(n);
    for k in 0..n {
        engine.apply(command(30_000_000 + k, place(k)), 0);
    }
    assert_eq!(engine.orders().count() as u64, n);
    engine
}

/// Tick `i` of a walk within the band where nothing triggers.
pub fn quiet_tick(i: u64) -> EngineInput {
    tick(6_400_000 + ((i * 7919) % 200_000) as i64)
}

/// `n` pairs of an open and the close of that open, with command ids from `first_cmd` on
/// (`2 * n` of them): they leave `engine`'s open positions as they were.
pub fn open_close_pairs(engine: &Engine, first_cmd: u64, n: u64) -> Vec<EngineInput> {
    let first = engine.open_positions() as u64; // position ids continue from the setup
    let base = engine.next_position_id().0;
    let mut inputs = Vec::with_capacity(2 * n as usize);
    for k in 0..n {
        inputs.push(command(first_cmd + 2 * k, open(first + k)));
        let close = Command::ClosePosition {
            user_id: user(first + k),
            position_id: PositionId(base + k),
        };
        inputs.push(command(first_cmd + 2 * k + 1, close));
    }
    inputs
}

/// The mixed stream of goal 4: nine quiet ticks, then a command, alternately an open and
/// the close of that open. Batches continue the stream (tick walk and command ids).
pub struct Mixed {
    next_cmd: u64,
    step: u64,
    /// The close owed for the last batch's unmatched open.
    owed: Option<Command>,
}

impl Mixed {
    pub fn new(first_cmd: u64) -> Self {
        Self {
            next_cmd: first_cmd,
            step: 0,
            owed: None,
        }
    }

    fn command(&mut self, command_: Command) -> EngineInput {
        self.next_cmd += 1;
        command(self.next_cmd, command_)
    }

    /// The next `n` inputs for `engine` (settled: no open owed from an earlier batch).
    pub fn batch(&mut self, engine: &Engine, n: u64) -> Vec<EngineInput> {
        let first = engine.open_positions() as u64;
        let base = engine.next_position_id().0;
        let (mut opened, mut closed) = (0u64, 0u64);
        let mut inputs = Vec::with_capacity(n as usize);
        // The close of the `k`th open of this batch.
        let close = |k: u64| Command::ClosePosition {
            user_id: user(first + k),
            position_id: PositionId(base + k),
        };
        for _ in 0..n {
            self.step += 1;
            if !self.step.is_multiple_of(10) {
                inputs.push(quiet_tick(self.step));
            } else if opened == closed {
                inputs.push(self.command(open(first + opened)));
                opened += 1;
            } else {
                inputs.push(self.command(close(closed)));
                closed += 1;
            }
        }
        self.owed = (opened > closed).then(|| close(closed));
        inputs
    }

    /// Closes the last batch's unmatched open (outside any timing), so every batch starts
    /// with the same open positions.
    pub fn settle(&mut self, engine: &mut Engine) {
        if let Some(close) = self.owed.take() {
            let input = self.command(close);
            engine.apply(input, 1);
        }
    }
}
