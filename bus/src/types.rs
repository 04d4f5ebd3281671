//! Value types parsed at the edge: once a value has one of these types it is known to be valid,
//! so deeper code (the engine) never sees raw strings or unchecked numbers.
//!
//! Decimal values travel as JSON strings (`"0.01"`). Deserialisation also accepts a JSON number,
//! read through its shortest decimal form, so `0.1` becomes exactly `0.1` and never `0.1000…055`.

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

/// Why a raw value was refused; the message is safe to show to a client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);

impl ParseError {
    fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

/// A tradable instrument. The set is closed: adding one is a contract change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "&'static str")]
pub enum Asset {
    Btc,
    Eth,
    Sol,
}

impl Asset {
    pub const ALL: [Asset; 3] = [Asset::Btc, Asset::Eth, Asset::Sol];

    pub fn symbol(self) -> &'static str {
        match self {
            Asset::Btc => "BTC",
            Asset::Eth => "ETH",
            Asset::Sol => "SOL",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Asset::Btc => "Bitcoin",
            Asset::Eth => "Ethereum",
            Asset::Sol => "Solana",
        }
    }

    /// The Binance spot symbol this asset is priced from.
    pub fn binance_symbol(self) -> &'static str {
        match self {
            Asset::Btc => "BTCUSDT",
            Asset::Eth => "ETHUSDT",
            Asset::Sol => "SOLUSDT",
        }
    }

    /// Dense index, for per-asset arrays.
    pub fn index(self) -> usize {
        self as usize
    }
}

impl FromStr for Asset {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_uppercase().as_str() {
            "BTC" => Ok(Asset::Btc),
            "ETH" => Ok(Asset::Eth),
            "SOL" => Ok(Asset::Sol),
            _ => Err(ParseError::new(format!(
                "unknown asset {s:?}; expected one of BTC, ETH, SOL"
            ))),
        }
    }
}

impl TryFrom<String> for Asset {
    type Error = ParseError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Asset> for &'static str {
    fn from(a: Asset) -> Self {
        a.symbol()
    }
}

impl fmt::Display for Asset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.symbol())
    }
}

/// Long (`buy`, fills at the ask, closes at the bid) or short (`sell`, the reverse).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    Buy,
    Sell,
}

impl Side {
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Buy => "buy",
            Side::Sell => "sell",
        }
    }
}

impl FromStr for Side {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "buy" => Ok(Side::Buy),
            "sell" => Ok(Side::Sell),
            _ => Err(ParseError::new(format!(
                "unknown side {s:?}; expected buy or sell"
            ))),
        }
    }
}

/// A pending order's kind: `limit` fills at its price or better (a buy limit below the
/// market, a sell limit above it), `stop` once the market reaches its price (a buy stop above
/// the market, a sell stop below it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OrderType {
    Limit,
    Stop,
}

impl OrderType {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderType::Limit => "limit",
            OrderType::Stop => "stop",
        }
    }
}

impl FromStr for OrderType {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "limit" => Ok(OrderType::Limit),
            "stop" => Ok(OrderType::Stop),
            _ => Err(ParseError::new(format!(
                "unknown order type {s:?}; expected limit or stop"
            ))),
        }
    }
}

/// Reads a decimal from a JSON string or number (numbers through their shortest decimal form).
fn deserialize_decimal<'de, D: Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
    struct V;
    impl serde::de::Visitor<'_> for V {
        type Value = Decimal;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a decimal number as a string, e.g. \"0.01\"")
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Decimal, E> {
            parse_decimal(v).map_err(E::custom)
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Decimal, E> {
            Ok(Decimal::from(v))
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Decimal, E> {
            Ok(Decimal::from(v))
        }
        fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Decimal, E> {
            // `Display` for f64 prints the shortest string that reads back as the same f64,
            // which is the decimal the client wrote.
            parse_decimal(&v.to_string()).map_err(E::custom)
        }
    }
    d.deserialize_any(V)
}

/// Parses a plain decimal string (no exponent, no whitespace, at most 28 significant digits).
pub fn parse_decimal(s: &str) -> Result<Decimal, ParseError> {
    if s.is_empty() || s.len() > 40 {
        return Err(ParseError::new(format!("{s:?} is not a decimal number")));
    }
    Decimal::from_str_exact(s)
        .map_err(|_| ParseError::new(format!("{s:?} is not a decimal number")))
}

fn serialize_decimal<S: Serializer>(d: &Decimal, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(d)
}

macro_rules! decimal_newtype {
    ($(#[$doc:meta])* $name:ident, $check:expr, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(Decimal);

        impl $name {
            pub fn new(value: Decimal) -> Result<Self, ParseError> {
                let check: fn(&Decimal) -> bool = $check;
                if check(&value) {
                    Ok(Self(value))
                } else {
                    Err(ParseError::new(format!(concat!($what, ", got {}"), value)))
                }
            }
            pub fn value(self) -> Decimal {
                self.0
            }
        }

        impl TryFrom<Decimal> for $name {
            type Error = ParseError;
            fn try_from(value: Decimal) -> Result<Self, ParseError> {
                Self::new(value)
            }
        }

        impl FromStr for $name {
            type Err = ParseError;
            fn from_str(s: &str) -> Result<Self, ParseError> {
                Self::new(parse_decimal(s)?)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                serialize_decimal(&self.0, s)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                Self::new(deserialize_decimal(d)?).map_err(serde::de::Error::custom)
            }
        }
    };
}

decimal_newtype!(
    /// A price in USD: strictly positive.
    Price,
    |d| d.is_sign_positive() && !d.is_zero(),
    "a price must be greater than zero"
);
decimal_newtype!(
    /// A position size in units of the asset: strictly positive (step and bounds are the
    /// engine's asset table's business).
    Quantity,
    |d| d.is_sign_positive() && !d.is_zero(),
    "a quantity must be greater than zero"
);
decimal_newtype!(
    /// An amount of USD; may be negative (a loss).
    Money,
    |_| true,
    "any amount"
);

impl Money {
    pub const ZERO: Money = Money(Decimal::ZERO);
}

/// Leverage: a whole number from 1 to 1000 (the asset's own maximum is checked by the engine).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct Leverage(u32);

impl Leverage {
    pub const MAX: u32 = 1000;
    pub fn new(value: u32) -> Result<Self, ParseError> {
        if (1..=Self::MAX).contains(&value) {
            Ok(Self(value))
        } else {
            Err(ParseError::new(format!(
                "leverage must be a whole number from 1 to {}, got {value}",
                Self::MAX
            )))
        }
    }
    pub fn value(self) -> u32 {
        self.0
    }
}

impl TryFrom<u32> for Leverage {
    type Error = ParseError;
    fn try_from(v: u32) -> Result<Self, ParseError> {
        Self::new(v)
    }
}

impl From<Leverage> for u32 {
    fn from(l: Leverage) -> u32 {
        l.0
    }
}

/// A platform user; the same id names their engine account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserId(pub Uuid);

impl FromStr for UserId {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        Uuid::parse_str(s)
            .map(UserId)
            .map_err(|_| ParseError::new(format!("{s:?} is not a user id")))
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// A position, numbered by the engine in the order positions are opened (deterministic).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PositionId(pub u64);

impl FromStr for PositionId {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        s.parse::<u64>()
            .map(PositionId)
            .map_err(|_| ParseError::new(format!("{s:?} is not a position id")))
    }
}

impl fmt::Display for PositionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// A pending order, numbered by the engine in the order orders are placed (deterministic).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OrderId(pub u64);

impl FromStr for OrderId {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        s.parse::<u64>()
            .map(OrderId)
            .map_err(|_| ParseError::new(format!("{s:?} is not an order id")))
    }
}

impl fmt::Display for OrderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// The id of one command: the idempotency key. 1 to 128 visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CommandId(String);

impl CommandId {
    pub const MAX_LEN: usize = 128;

    pub fn new(value: impl Into<String>) -> Result<Self, ParseError> {
        let value = value.into();
        let visible = value.bytes().all(|b| b.is_ascii_graphic());
        if !value.is_empty() && value.len() <= Self::MAX_LEN && visible {
            Ok(Self(value))
        } else {
            Err(ParseError::new(format!(
                "a command id is 1 to {} visible ASCII characters",
                Self::MAX_LEN
            )))
        }
    }

    /// A fresh random id, for commands the caller did not key.
    pub fn random() -> Self {
        Self(Uuid::new_v4().to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for CommandId {
    type Error = ParseError;
    fn try_from(s: String) -> Result<Self, ParseError> {
        Self::new(s)
    }
}

impl From<CommandId> for String {
    fn from(c: CommandId) -> String {
        c.0
    }
}

impl fmt::Display for CommandId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Milliseconds since the Unix epoch. The engine never reads a clock: time is passed in.
pub type TimestampMs = i64;

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("\"0.01\"", "0.01")]
    #[case("0.1", "0.1")]
    #[case("42", "42")]
    #[case("\"65000.25\"", "65000.25")]
    fn quantity_reads_strings_and_numbers_exactly(#[case] json: &str, #[case] expected: &str) {
        let q: Quantity = serde_json::from_str(json).expect("valid quantity");
        assert_eq!(q.to_string(), expected);
        assert_eq!(
            serde_json::to_string(&q).expect("serialises"),
            format!("\"{expected}\"")
        );
    }

    #[rstest]
    #[case("\"0\"")]
    #[case("\"-1\"")]
    #[case("\"abc\"")]
    #[case("\"1e5\"")]
    #[case("\"\"")]
    #[case("true")]
    #[case("null")]
    fn quantity_rejects_non_positive_and_junk(#[case] json: &str) {
        assert!(serde_json::from_str::<Quantity>(json).is_err(), "{json}");
    }

    #[test]
    fn money_may_be_negative() {
        let m: Money = serde_json::from_str("\"-12.34\"").expect("money");
        assert_eq!(m.to_string(), "-12.34");
    }

    #[rstest]
    #[case("\"BTC\"", Asset::Btc)]
    #[case("\"eth\"", Asset::Eth)]
    #[case("\"Sol\"", Asset::Sol)]
    fn assets_parse_case_insensitively(#[case] json: &str, #[case] asset: Asset) {
        assert_eq!(serde_json::from_str::<Asset>(json).expect("asset"), asset);
        assert_eq!(
            serde_json::to_string(&asset).expect("serialises"),
            format!("\"{}\"", asset.symbol())
        );
    }

    #[test]
    fn unknown_asset_and_side_are_refused() {
        assert!(serde_json::from_str::<Asset>("\"DOGE\"").is_err());
        assert!(serde_json::from_str::<Side>("\"long\"").is_err());
        assert_eq!(
            serde_json::from_str::<Side>("\"sell\"").expect("side"),
            Side::Sell
        );
    }

    #[rstest]
    #[case(0, false)]
    #[case(1, true)]
    #[case(1000, true)]
    #[case(1001, false)]
    fn leverage_bounds(#[case] value: u32, #[case] ok: bool) {
        assert_eq!(Leverage::new(value).is_ok(), ok);
        assert_eq!(
            serde_json::from_str::<Leverage>(&value.to_string()).is_ok(),
            ok
        );
    }

    #[test]
    fn leverage_rejects_fractions_and_negatives() {
        assert!(serde_json::from_str::<Leverage>("1.5").is_err());
        assert!(serde_json::from_str::<Leverage>("-3").is_err());
    }

    #[test]
    fn command_ids_are_bounded_visible_ascii() {
        assert!(CommandId::new("order-1").is_ok());
        assert!(CommandId::new("").is_err());
        assert!(CommandId::new("has space").is_err());
        assert!(CommandId::new("x".repeat(129)).is_err());
        assert!(CommandId::new("x".repeat(128)).is_ok());
    }
}
