//! Numbers as a client sent them, before the trading rules: one rule, one code.
//!
//! An [`Unchecked<T>`] deserialises from any well-formed number (a JSON number, or for
//! decimals also a plain decimal string such as `"-0.5"`) and keeps whether it satisfies
//! `T`'s rule. Only malformed input (not a number, a wrong type) fails to deserialise, which
//! the edge answers with 400; a well-formed number that breaks the rule (leverage 0, 1.5 or
//! 5000, quantity `"0"` or `"-1"`, a stop-loss of `"0"`) becomes a [`Rejection`] with the
//! rule's own code via [`Unchecked::check`], exactly as the engine would answer it.

use std::fmt;
use std::marker::PhantomData;

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde::de::{self, Deserialize, Deserializer, Unexpected, Visitor};

use crate::messages::{RejectCode, Rejection};
use crate::types::{Leverage, ParseError, Price, Quantity, parse_decimal};

/// A well-formed number, checked against `T`'s rule on [`Unchecked::check`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unchecked<T>(Result<T, ParseError>);

impl<T> Unchecked<T> {
    /// The value, or a rejection with `code` (the rule the value breaks).
    pub fn check(self, code: RejectCode) -> Result<T, Rejection> {
        self.0.map_err(|e| Rejection::new(code, e.0))
    }
}

impl<T> From<T> for Unchecked<T> {
    fn from(value: T) -> Self {
        Self(Ok(value))
    }
}

/// A value type whose rule is checked on a number.
pub trait FromNumber: Sized {
    /// Whether a decimal string (`"0.01"`) is a well-formed value, besides a JSON number.
    const STRINGS: bool;
    fn from_number(value: Decimal) -> Result<Self, ParseError>;
    /// `text` is a well-formed number too large or too precise for a decimal.
    fn out_of_range(text: &str) -> ParseError;
}

impl FromNumber for Quantity {
    const STRINGS: bool = true;
    fn from_number(value: Decimal) -> Result<Self, ParseError> {
        Quantity::new(value)
    }
    fn out_of_range(text: &str) -> ParseError {
        ParseError(format!("quantity {text} is out of range"))
    }
}

impl FromNumber for Price {
    const STRINGS: bool = true;
    fn from_number(value: Decimal) -> Result<Self, ParseError> {
        Price::new(value)
    }
    fn out_of_range(text: &str) -> ParseError {
        ParseError(format!("price {text} is out of range"))
    }
}

impl FromNumber for Leverage {
    const STRINGS: bool = false;
    fn from_number(value: Decimal) -> Result<Self, ParseError> {
        let whole = value.fract().is_zero().then(|| value.to_u32());
        match whole.flatten() {
            Some(n) => Leverage::new(n),
            None => Err(Self::out_of_range(&value.to_string())),
        }
    }
    fn out_of_range(text: &str) -> ParseError {
        ParseError(format!(
            "leverage must be a whole number from 1 to {}, got {text}",
            Leverage::MAX
        ))
    }
}

/// Whether `s` is a plain decimal (`-12.5`): well-formed even when it does not fit a decimal.
fn is_plain_number(s: &str) -> bool {
    let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    let unsigned = s.strip_prefix('-').unwrap_or(s);
    match unsigned.split_once('.') {
        Some((whole, fraction)) => digits(whole) && digits(fraction),
        None => digits(unsigned),
    }
}

struct NumberVisitor<T>(PhantomData<T>);

impl<T: FromNumber> NumberVisitor<T> {
    fn text(text: &str) -> Result<T, ParseError> {
        parse_decimal(text)
            .map_err(|_| T::out_of_range(text))
            .and_then(T::from_number)
    }
}

impl<T: FromNumber> Visitor<'_> for NumberVisitor<T> {
    type Value = Unchecked<T>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        if T::STRINGS {
            f.write_str("a decimal number as a string, e.g. \"0.01\"")
        } else {
            f.write_str("a whole number")
        }
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Unchecked<T>, E> {
        Ok(Unchecked(T::from_number(Decimal::from(v))))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Unchecked<T>, E> {
        Ok(Unchecked(T::from_number(Decimal::from(v))))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Unchecked<T>, E> {
        // `Display` for f64 prints the shortest decimal that reads back as the same f64 (the
        // one the client wrote), never in exponent form; the float never becomes money.
        Ok(Unchecked(Self::text(&v.to_string())))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Unchecked<T>, E> {
        if !T::STRINGS {
            return Err(E::invalid_type(Unexpected::Str(v), &self));
        }
        match parse_decimal(v) {
            Ok(d) => Ok(Unchecked(T::from_number(d))),
            Err(_) if is_plain_number(v) => Ok(Unchecked(Err(T::out_of_range(v)))),
            Err(e) => Err(E::custom(e)),
        }
    }
}

impl<'de, T: FromNumber> Deserialize<'de> for Unchecked<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NumberVisitor(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn code<T: FromNumber>(json: &str, code: RejectCode) -> Result<Option<RejectCode>, String> {
        let unchecked: Unchecked<T> = serde_json::from_str(json).map_err(|e| e.to_string())?;
        Ok(unchecked.check(code).err().map(|r| r.code))
    }

    #[rstest]
    #[case("1", None)]
    #[case("1000", None)]
    #[case("10.0", None)]
    #[case("0", Some(RejectCode::InvalidLeverage))]
    #[case("1001", Some(RejectCode::InvalidLeverage))]
    #[case("-3", Some(RejectCode::InvalidLeverage))]
    #[case("1.5", Some(RejectCode::InvalidLeverage))]
    #[case("99999999999", Some(RejectCode::InvalidLeverage))]
    #[case("1e30", Some(RejectCode::InvalidLeverage))]
    fn leverage_numbers_break_the_leverage_rule(
        #[case] json: &str,
        #[case] expected: Option<RejectCode>,
    ) {
        assert_eq!(
            code::<Leverage>(json, RejectCode::InvalidLeverage),
            Ok(expected),
            "{json}"
        );
    }

    #[rstest]
    #[case("\"10\"")]
    #[case("true")]
    #[case("null")]
    #[case("[1]")]
    fn leverage_that_is_not_a_number_is_malformed(#[case] json: &str) {
        assert!(code::<Leverage>(json, RejectCode::InvalidLeverage).is_err());
    }

    #[rstest]
    #[case("\"0.01\"", None)]
    #[case("0.01", None)]
    #[case("\"0\"", Some(RejectCode::InvalidQuantity))]
    #[case("0", Some(RejectCode::InvalidQuantity))]
    #[case("\"-1\"", Some(RejectCode::InvalidQuantity))]
    #[case("-0.5", Some(RejectCode::InvalidQuantity))]
    #[case(
        "\"123456789012345678901234567890123\"",
        Some(RejectCode::InvalidQuantity)
    )]
    #[case(
        "\"0.0000000000000000000000000000001\"",
        Some(RejectCode::InvalidQuantity)
    )]
    #[case("1e30", Some(RejectCode::InvalidQuantity))]
    fn quantity_numbers_break_the_quantity_rule(
        #[case] json: &str,
        #[case] expected: Option<RejectCode>,
    ) {
        assert_eq!(
            code::<Quantity>(json, RejectCode::InvalidQuantity),
            Ok(expected),
            "{json}"
        );
    }

    #[rstest]
    #[case("\"abc\"")]
    #[case("\"1e5\"")]
    #[case("\"\"")]
    #[case("\" 1\"")]
    #[case("true")]
    #[case("{}")]
    fn quantity_that_is_not_a_number_is_malformed(#[case] json: &str) {
        assert!(
            code::<Quantity>(json, RejectCode::InvalidQuantity).is_err(),
            "{json}"
        );
    }
}
