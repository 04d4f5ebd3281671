//! OpenAPI schemas of the value types (feature `openapi`), so the HTTP API's document is
//! generated from the very types its handlers read and write.
//!
//! Decimals are described as their JSON text: what [`Display`](std::fmt::Display) writes
//! (never an exponent). Request fields that a handler parses more strictly at the edge carry
//! their own, tighter schema in the `functions` crate.

use std::borrow::Cow;

use utoipa::openapi::schema::{ObjectBuilder, Schema, SchemaFormat, Type};
use utoipa::openapi::{KnownFormat, RefOr};
use utoipa::{PartialSchema, ToSchema};

use crate::{
    Asset, CancelReason, CloseReason, Leverage, Money, OrderId, OrderType, PositionId, Price,
    Quantity, Side, UserId,
};

/// 2^53 - 1, the largest integer every JSON reader (JavaScript's numbers) holds exactly.
pub const JS_SAFE_INTEGER: u64 = 9_007_199_254_740_991;

/// A non-negative decimal as the platform writes it, e.g. `65000.25`.
pub const UNSIGNED_DECIMAL_PATTERN: &str = r"^[0-9]+(\.[0-9]+)?$";
/// A decimal that may be negative as the platform writes it, e.g. `-12.50`.
pub const SIGNED_DECIMAL_PATTERN: &str = r"^-?[0-9]+(\.[0-9]+)?$";

fn decimal(pattern: &str, description: &str, example: &str) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(pattern))
        .description(Some(description))
        .examples([example])
        .into()
}

fn string_enum(values: &[&str], description: &str) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(values.iter().copied()))
        .description(Some(description))
        .into()
}

macro_rules! named {
    ($ty:ty, $name:literal, $schema:expr) => {
        impl PartialSchema for $ty {
            fn schema() -> RefOr<Schema> {
                $schema
            }
        }
        impl ToSchema for $ty {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed($name)
            }
        }
    };
}

named!(
    Price,
    "Price",
    decimal(
        UNSIGNED_DECIMAL_PATTERN,
        "A price in USD, a decimal string greater than zero",
        "65000.25"
    )
);
named!(
    Quantity,
    "Quantity",
    decimal(
        UNSIGNED_DECIMAL_PATTERN,
        "A position size in units of the asset, a decimal string greater than zero",
        "0.01"
    )
);
named!(
    Money,
    "Money",
    decimal(
        SIGNED_DECIMAL_PATTERN,
        "An amount of USD, a decimal string (negative for a loss)",
        "-12.50"
    )
);
named!(
    Asset,
    "Asset",
    string_enum(
        &["BTC", "ETH", "SOL"],
        "A tradable asset (read case-insensitively, written upper case)"
    )
);
named!(
    Side,
    "Side",
    string_enum(
        &["buy", "sell"],
        "buy: long, fills at the ask; sell: short, fills at the bid"
    )
);
named!(
    CloseReason,
    "CloseReason",
    string_enum(
        &[
            "manual",
            "stop_loss",
            "take_profit",
            "liquidation",
            "trailing_stop"
        ],
        "Why a position closed (`trailing_stop`: a stop-loss moved by a trailing stop)"
    )
);
named!(
    OrderType,
    "OrderType",
    string_enum(
        &["limit", "stop"],
        "limit: a buy below the ask or a sell above the bid, filled when the market comes to \
         it; stop: a buy above the ask or a sell below the bid, filled when the market reaches it"
    )
);
named!(
    CancelReason,
    "CancelReason",
    string_enum(
        &[
            "user",
            "expired",
            "insufficient_margin",
            "too_many_positions"
        ],
        "Why a pending order was cancelled: by its owner, its expiry passed, or it triggered \
         when the position did not fit the free margin, or when the account already had the \
         most open positions allowed"
    )
);
named!(
    Leverage,
    "Leverage",
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int32)))
        .minimum(Some(1))
        .maximum(Some(Leverage::MAX))
        .description(Some(
            "A whole number; each asset has its own maximum (`maxLeverage` of GET /assets)"
        ))
        .into()
);
named!(
    PositionId,
    "PositionId",
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
        .minimum(Some(0))
        .maximum(Some(JS_SAFE_INTEGER))
        .description(Some(
            "A position's number, given by the engine in order from 1 (so below 2^53: a \
             JavaScript number holds it exactly)"
        ))
        .into()
);
named!(
    OrderId,
    "OrderId",
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
        .minimum(Some(0))
        .maximum(Some(JS_SAFE_INTEGER))
        .description(Some(
            "A pending order's number, given by the engine in order from 1 (below 2^53)"
        ))
        .into()
);
named!(
    UserId,
    "UserId",
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::Custom("uuid".into())))
        .into()
);
