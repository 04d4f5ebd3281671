//! Number fields as the API reads them at the edge. Whole numbers: JSON Schema counts `4503.0`
//! as an integer, so the edge reads an integral float as the whole number it is.
//!
//! Decimal request fields as the API accepts them: a JSON string in plain notation, greater
//! than zero, at most [`MAX_INT_DIGITS`] digits before the point (no leading zeros) and
//! [`MAX_FRACTION_DIGITS`] after it. The check here and the document's `pattern`
//! ([`positive_decimal_pattern`]) are built from the same constants, and a test holds them
//! equal, so the document admits exactly what the handlers accept. (The wire types in `bus`
//! read more forms, e.g. engine-computed values with 28 decimals; the edge does not.)

use std::fmt;

use bus::schema::JS_SAFE_INTEGER;
use bus::unchecked::FromNumber;
use bus::{Leverage, OrderId, ParseError, PositionId, Price, Quantity, TimestampMs};
use rust_decimal::Decimal;
use serde::Deserializer;
use serde::de::Visitor;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};

/// Most digits before the decimal point.
pub const MAX_INT_DIGITS: usize = 16;
/// Most digits after the decimal point (16 + 12 digits always fit a `Decimal` exactly).
pub const MAX_FRACTION_DIGITS: usize = 12;

/// The value of `s` if it is a positive decimal in the accepted form.
pub fn parse_positive(s: &str) -> Option<Decimal> {
    let (int, fraction) = match s.split_once('.') {
        Some((int, fraction)) => (int, Some(fraction)),
        None => (s, None),
    };
    let digits = |part: &str, max: usize| {
        !part.is_empty() && part.len() <= max && part.bytes().all(|b| b.is_ascii_digit())
    };
    if !digits(int, MAX_INT_DIGITS) || (int.len() > 1 && int.starts_with('0')) {
        return None;
    }
    if fraction.is_some_and(|f| !digits(f, MAX_FRACTION_DIGITS)) {
        return None;
    }
    Decimal::from_str_exact(s)
        .ok()
        .filter(|d| *d > Decimal::ZERO)
}

/// The regular expression (ECMA 262, no look-around) of exactly what [`parse_positive`]
/// accepts: a whole part from 1 (optionally with a fraction), or `0.` and a fraction that is
/// not all zeros, spelled out by the number of its leading zeros.
pub fn positive_decimal_pattern() -> String {
    let (i, f) = (MAX_INT_DIGITS - 1, MAX_FRACTION_DIGITS);
    let below_one: Vec<String> = (0..f)
        .map(|zeros| {
            let lead = "0".repeat(zeros);
            match f - 1 - zeros {
                0 => format!("{lead}[1-9]"),
                rest => format!("{lead}[1-9][0-9]{{0,{rest}}}"),
            }
        })
        .collect();
    format!(
        r"^(?:[1-9][0-9]{{0,{i}}}(?:\.[0-9]{{1,{f}}})?|0\.(?:{}))$",
        below_one.join("|")
    )
}

fn schema(nullable: bool) -> RefOr<Schema> {
    let ty = if nullable {
        utoipa::openapi::schema::SchemaType::from_iter([Type::String, Type::Null])
    } else {
        Type::String.into()
    };
    ObjectBuilder::new()
        .schema_type(ty)
        .pattern(Some(positive_decimal_pattern()))
        .description(Some(format!(
            "A decimal string greater than zero: up to {MAX_INT_DIGITS} digits before the \
             point (no leading zeros) and {MAX_FRACTION_DIGITS} after it"
        )))
        .examples(["0.01"])
        .into()
}

/// The schema of a required positive decimal field.
pub fn positive_decimal() -> RefOr<Schema> {
    schema(false)
}

/// The schema of an optional positive decimal field (null or missing: none).
pub fn optional_positive_decimal() -> RefOr<Schema> {
    schema(true)
}

struct PositiveDecimal;

impl Visitor<'_> for PositiveDecimal {
    type Value = Decimal;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a decimal string greater than zero, e.g. \"0.01\"")
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Decimal, E> {
        parse_positive(v).ok_or_else(|| {
            E::custom(format!(
                "{v:?} is not a decimal greater than zero with at most {MAX_INT_DIGITS} digits \
                 before the point and {MAX_FRACTION_DIGITS} after it"
            ))
        })
    }
}

struct OptionalPositiveDecimal;

impl<'de> Visitor<'de> for OptionalPositiveDecimal {
    type Value = Option<Decimal>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("null or a decimal string greater than zero, e.g. \"0.01\"")
    }
    fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(PositiveDecimal).map(Some)
    }
}

fn typed<T, E: serde::de::Error>(
    value: Decimal,
    make: fn(Decimal) -> Result<T, bus::ParseError>,
) -> Result<T, E> {
    make(value).map_err(E::custom)
}

/// `deserialize_with` for a required price.
pub fn price<'de, D: Deserializer<'de>>(d: D) -> Result<Price, D::Error> {
    typed(d.deserialize_str(PositiveDecimal)?, Price::new)
}

/// `deserialize_with` for a required quantity.
pub fn quantity<'de, D: Deserializer<'de>>(d: D) -> Result<Quantity, D::Error> {
    typed(d.deserialize_str(PositiveDecimal)?, Quantity::new)
}

/// `deserialize_with` for an optional price (null clears it); pair with `#[serde(default)]`.
pub fn optional_price<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Price>, D::Error> {
    d.deserialize_option(OptionalPositiveDecimal)?
        .map(|v| typed(v, Price::new))
        .transpose()
}

/// A JSON whole number, written as an integer or as an integral float (`4503.0`).
struct Whole;

/// 2^64, the first float above every `u64`.
const TWO_POW_64: f64 = 18_446_744_073_709_551_616.0;

impl Visitor<'_> for Whole {
    type Value = u64;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a whole number from 0")
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<u64, E> {
        Ok(v)
    }
    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<u64, E> {
        u64::try_from(v).map_err(|_| E::custom(format!("{v} is below zero")))
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<u64, E> {
        if v.fract() == 0.0 && (0.0..TWO_POW_64).contains(&v) {
            // Integral and in range, so the conversion is exact.
            Ok(v as u64)
        } else {
            Err(E::custom(format!("{v} is not a whole number from 0")))
        }
    }
}

fn small<E: serde::de::Error>(v: u64) -> Result<u32, E> {
    u32::try_from(v).map_err(|_| E::custom(format!("{v} is too large")))
}

/// `deserialize_with` for a position id.
pub fn position_id<'de, D: Deserializer<'de>>(d: D) -> Result<PositionId, D::Error> {
    d.deserialize_any(Whole).map(PositionId)
}

/// `deserialize_with` for an order id.
pub fn order_id<'de, D: Deserializer<'de>>(d: D) -> Result<OrderId, D::Error> {
    d.deserialize_any(Whole).map(OrderId)
}

/// A pending order's expiry, ms since the epoch: any whole JSON number is well-formed (read
/// as a [`bus::Unchecked`]), one that is not a time the engine can hold breaks the expiry
/// rule (422 `invalid_expiry`), as does a time not after the command's (the engine's check).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expiry(pub TimestampMs);

impl FromNumber for Expiry {
    const STRINGS: bool = false;
    fn from_number(value: Decimal) -> Result<Self, ParseError> {
        use rust_decimal::prelude::ToPrimitive;
        let whole = value.fract().is_zero().then(|| value.to_i64());
        whole
            .flatten()
            .map(Expiry)
            .ok_or_else(|| Self::out_of_range(&value.to_string()))
    }
    fn out_of_range(text: &str) -> ParseError {
        ParseError(format!(
            "expiresAt must be a whole number of ms since the epoch, got {text}"
        ))
    }
}

/// The schema of an optional expiry (null or missing: good till cancelled).
pub fn optional_expiry() -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::SchemaType::from_iter([
            Type::Integer,
            Type::Null,
        ]))
        .format(Some(utoipa::openapi::schema::SchemaFormat::KnownFormat(
            utoipa::openapi::KnownFormat::Int64,
        )))
        .minimum(Some(0))
        .maximum(Some(JS_SAFE_INTEGER))
        .description(Some(
            "ms since the epoch, after the time of the request (else 422 `invalid_expiry`); \
             null or missing: good till cancelled",
        ))
        .into()
}

/// `deserialize_with` for an alert id.
pub fn alert_id<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    d.deserialize_any(Whole)
}

/// `deserialize_with` for a leverage (1 to 1000).
pub fn leverage<'de, D: Deserializer<'de>>(d: D) -> Result<Leverage, D::Error> {
    let v = small(d.deserialize_any(Whole)?)?;
    Leverage::new(v).map_err(serde::de::Error::custom)
}

struct OptionalWhole;

impl<'de> Visitor<'de> for OptionalWhole {
    type Value = Option<u64>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("null or a whole number from 0")
    }
    fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(Whole).map(Some)
    }
}

/// `deserialize_with` for an optional `u32` (null: none); pair with `#[serde(default)]`.
pub fn optional_u32<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    d.deserialize_option(OptionalWhole)?.map(small).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_positive_decimals_only() {
        for ok in [
            "1",
            "0.01",
            "65000.25",
            "1.000000000000",
            "9999999999999999.999999999999",
        ] {
            assert!(parse_positive(ok).is_some(), "{ok}");
        }
        for bad in [
            "",
            "0",
            "0.0",
            "00.1",
            "01",
            "-1",
            "+1",
            ".5",
            "5.",
            "1e5",
            "1_000",
            " 1",
            "1 ",
            "0.0000000000001",
            "10000000000000000",
            "1.0000000000001",
            "0x10",
            "١",
        ] {
            assert!(parse_positive(bad).is_none(), "{bad:?}");
        }
    }

    #[derive(Debug, serde::Deserialize)]
    struct Numbers {
        #[serde(deserialize_with = "position_id")]
        id: PositionId,
        #[serde(deserialize_with = "leverage")]
        leverage: Leverage,
        #[serde(default, deserialize_with = "optional_u32")]
        bps: Option<u32>,
    }

    #[test]
    fn whole_numbers_may_be_written_as_integral_floats() {
        let n: Numbers =
            serde_json::from_str(r#"{"id": 4503.0, "leverage": 1e2, "bps": 7.0}"#).expect("ok");
        assert_eq!(
            (n.id, n.leverage.value(), n.bps),
            (PositionId(4503), 100, Some(7))
        );
        let n: Numbers =
            serde_json::from_str(r#"{"id": 18446744073709551615, "leverage": 1000, "bps": null}"#)
                .expect("ok");
        assert_eq!((n.id, n.bps), (PositionId(u64::MAX), None));
        // Up to 2^53 every integral float is exact; serde_json's fast float path read this one
        // (found by schemathesis) as ...497.5 and the id was refused.
        for id in [4_366_021_027_207_498_u64, 9_007_199_254_740_991] {
            let n: Numbers =
                serde_json::from_str(&format!(r#"{{"id": {id}.0, "leverage": 1}}"#)).expect("ok");
            assert_eq!(n.id, PositionId(id));
        }
        for bad in [
            r#"{"id": 1.5, "leverage": 1}"#,
            r#"{"id": -1, "leverage": 1}"#,
            r#"{"id": 1, "leverage": 0}"#,
            r#"{"id": 1, "leverage": 1001}"#,
            r#"{"id": 1, "leverage": 4294967296}"#,
            r#"{"id": 1, "leverage": 1, "bps": 4294967296}"#,
            r#"{"id": 18446744073709551616.0, "leverage": 1}"#,
            r#"{"id": "1", "leverage": 1}"#,
        ] {
            assert!(serde_json::from_str::<Numbers>(bad).is_err(), "{bad}");
        }
    }
}
