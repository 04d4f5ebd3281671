//! Given/when/then helpers shared by the engine's integration tests.
#![allow(dead_code)]

use bus::{
    Accepted, Asset, ClosedPosition, Command, CommandEnvelope, CommandId, EngineInput, Event,
    Leverage, ModifyPosition, OpenPosition, Position, PositionId, Price, PriceTick, Quantity,
    RejectCode, Reply, Side, UserId,
};
use engine::{Engine, EngineConfig, Outcome};
use rust_decimal::Decimal;

pub fn dec(s: &str) -> Decimal {
    s.parse().expect("decimal literal")
}

pub fn price(s: &str) -> Price {
    s.parse().expect("price literal")
}

pub fn qty(s: &str) -> Quantity {
    s.parse().expect("quantity literal")
}

pub fn user(n: u128) -> UserId {
    UserId(uuid::Uuid::from_u128(n))
}

pub fn open_cmd(user_id: UserId, asset: Asset, side: Side, q: &str, leverage: u32) -> OpenPosition {
    OpenPosition {
        trailing_distance: None,
        user_id,
        asset,
        side,
        quantity: qty(q),
        leverage: Leverage::new(leverage).expect("leverage literal"),
        stop_loss: None,
        take_profit: None,
        expected_price: None,
        max_slippage_bps: None,
    }
}

/// An engine plus a clock and a command counter, for given/when/then tests.
pub struct World {
    pub engine: Engine,
    pub now: i64,
    next_id: u64,
}

impl World {
    pub fn new() -> Self {
        Self::with_config(EngineConfig::default())
    }

    pub fn with_config(config: EngineConfig) -> Self {
        Self {
            engine: Engine::new(config),
            now: 1_700_000_000_000,
            next_id: 0,
        }
    }

    /// A world around an engine restored from a snapshot.
    pub fn around(engine: Engine) -> Self {
        Self {
            engine,
            now: 1_700_000_000_000,
            next_id: 0,
        }
    }

    pub fn input(&mut self, input: EngineInput) -> Outcome {
        self.now += 1;
        self.engine.apply(input, self.now)
    }

    pub fn command_with_id(&mut self, id: &str, command: Command) -> Outcome {
        let id = CommandId::new(id).expect("command id literal");
        self.input(EngineInput::command(CommandEnvelope { id, command }))
    }

    pub fn command(&mut self, command: Command) -> Reply {
        self.next_id += 1;
        let id = format!("cmd-{}", self.next_id);
        self.command_with_id(&id, command)
            .reply
            .expect("commands are answered")
    }

    pub fn account(&mut self, user_id: UserId) {
        let reply = self.command(Command::CreateAccount { user_id });
        assert!(matches!(reply, Reply::Accepted(_)), "{reply:?}");
    }

    pub fn tick(&mut self, asset: Asset, bid: &str, ask: &str) -> Vec<Event> {
        let ts = self.now;
        self.input(EngineInput::PriceTick(PriceTick {
            asset,
            bid: price(bid),
            ask: price(ask),
            ts,
            simulated: false,
        }))
        .events
    }

    pub fn open(&mut self, cmd: OpenPosition) -> Reply {
        self.command(Command::OpenPosition(cmd))
    }

    pub fn opened(&mut self, cmd: OpenPosition) -> Position {
        match self.open(cmd) {
            Reply::Accepted(Accepted::PositionOpened { position }) => position,
            other => panic!("expected an open position, got {other:?}"),
        }
    }

    pub fn close(&mut self, user_id: UserId, position_id: PositionId) -> Reply {
        self.command(Command::ClosePosition {
            user_id,
            position_id,
        })
    }

    pub fn closed(&mut self, user_id: UserId, position_id: PositionId) -> ClosedPosition {
        match self.close(user_id, position_id) {
            Reply::Accepted(Accepted::PositionClosed { position }) => position,
            other => panic!("expected a closed position, got {other:?}"),
        }
    }

    pub fn modify(
        &mut self,
        user_id: UserId,
        position_id: PositionId,
        stop_loss: Option<&str>,
        take_profit: Option<&str>,
    ) -> Reply {
        self.command(Command::ModifyPosition(ModifyPosition {
            trailing_distance: None,
            user_id,
            position_id,
            stop_loss: stop_loss.map(price),
            take_profit: take_profit.map(price),
        }))
    }
}

pub fn rejection_code(reply: &Reply) -> Option<RejectCode> {
    match reply {
        Reply::Rejected(r) => Some(r.code),
        Reply::Accepted(_) => None,
    }
}

/// The closes among `events`.
pub fn closes(events: &[Event]) -> Vec<ClosedPosition> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::PositionClosed { position } => Some(position.clone()),
            _ => None,
        })
        .collect()
}

/// A pending order command without levels or expiry.
pub fn place_cmd(
    user_id: UserId,
    asset: Asset,
    side: Side,
    order_type: bus::OrderType,
    order_price: &str,
    q: &str,
    leverage: u32,
) -> bus::PlaceOrder {
    bus::PlaceOrder {
        user_id,
        asset,
        side,
        order_type,
        price: price(order_price),
        quantity: qty(q),
        leverage: Leverage::new(leverage).expect("leverage literal"),
        stop_loss: None,
        take_profit: None,
        expires_at: None,
    }
}

impl World {
    pub fn place(&mut self, cmd: bus::PlaceOrder) -> Reply {
        self.command(Command::PlaceOrder(cmd))
    }

    pub fn placed(&mut self, cmd: bus::PlaceOrder) -> bus::Order {
        match self.place(cmd) {
            Reply::Accepted(Accepted::OrderPlaced { order }) => order,
            other => panic!("expected a placed order, got {other:?}"),
        }
    }

    pub fn pending(&self, user_id: UserId) -> Vec<bus::Order> {
        match self.engine.query(&bus::Query::ListPendingOrders {
            user_id,
            page: bus::Page::default(),
        }) {
            bus::QueryReply::PendingOrders { orders, next: None } => orders,
            other => panic!("expected pending orders, got {other:?}"),
        }
    }

    pub fn summary(&self, user_id: UserId) -> bus::AccountSummary {
        match self.engine.query(&bus::Query::GetAccount { user_id }) {
            bus::QueryReply::Account { account } => account,
            other => panic!("expected an account, got {other:?}"),
        }
    }
}

/// The orders cancelled among `events`, with their reasons.
pub fn cancellations(events: &[Event]) -> Vec<(bus::OrderId, bus::CancelReason)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::OrderCancelled { order, reason, .. } => Some((order.id, *reason)),
            _ => None,
        })
        .collect()
}

/// The fills among `events`: the order and the position it opened.
pub fn fills(events: &[Event]) -> Vec<(bus::Order, Position)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::OrderFilled { order, position } => Some((order.clone(), position.clone())),
            _ => None,
        })
        .collect()
}
