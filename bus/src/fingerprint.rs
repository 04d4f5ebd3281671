//! The fingerprint of a command: SHA-256 of its canonical bytes, the one fixed encoding every
//! process agrees on (the engine's idempotency window and its snapshots, the `Nats-Msg-Id` of
//! a logged command, the duplicate path's reply lookup).
//!
//! The canonical bytes are spelled out here field by field rather than taken from `Hash` (not
//! stable across compiler or crate versions) or from serde (its output may change with the
//! types' attributes): a version line, then one `name=value` line per field, decimals
//! normalised (`0.010` and `0.01` are the same quantity), absent values empty. Every struct is
//! destructured without `..`, so a new field cannot be added without deciding its encoding.
//! Changing the encoding of an existing command is a contract change: snapshots written
//! before it would no longer recognise their retries (the golden test pins it).

use std::fmt;

use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

use crate::messages::{
    Command, ModifyOrder, ModifyPosition, OpenPosition, PartialClose, PlaceOrder,
};

/// SHA-256 of a command's canonical bytes; shown and serialised as 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    pub fn of(command: &Command) -> Self {
        // The text goes straight into the hasher: no buffer to allocate per command.
        let mut hasher = Lines(Hashing(Sha256::new()));
        write_canonical(command, &mut hasher);
        Self(hasher.0.0.finalize().into())
    }
}

/// The text that is hashed: first line `command/v1`, then `name=value` lines.
pub fn canonical_bytes(command: &Command) -> Vec<u8> {
    let mut out = Lines(String::new());
    write_canonical(command, &mut out);
    out.0.into_bytes()
}

/// Feeds formatted text to SHA-256.
struct Hashing(Sha256);

impl fmt::Write for Hashing {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.update(s.as_bytes());
        Ok(())
    }
}

fn write_canonical<W: fmt::Write>(command: &Command, out: &mut Lines<W>) {
    out.line("command/v1");
    out.put_str("kind", command.kind());
    match command {
        Command::CreateAccount { user_id } => out.user(user_id),
        Command::OpenPosition(OpenPosition {
            user_id,
            asset,
            side,
            quantity,
            leverage,
            stop_loss,
            take_profit,
            expected_price,
            max_slippage_bps,
            trailing_distance,
        }) => {
            out.user(user_id);
            out.put_str("asset", asset.symbol());
            out.put_str("side", side.as_str());
            out.decimal("quantity", Some(quantity.value()));
            out.put("leverage", leverage.value());
            out.decimal("stop_loss", stop_loss.map(|p| p.value()));
            out.decimal("take_profit", take_profit.map(|p| p.value()));
            out.decimal("expected_price", expected_price.map(|p| p.value()));
            out.put("max_slippage_bps", OrEmpty(*max_slippage_bps));
            // Added after v1: a line only when set, so every command written before it keeps
            // its fingerprint.
            out.decimal_if_set("trailing_distance", trailing_distance.map(|p| p.value()));
        }
        Command::ClosePosition {
            user_id,
            position_id,
        } => {
            out.user(user_id);
            out.put("position_id", position_id);
        }
        Command::ModifyPosition(ModifyPosition {
            user_id,
            position_id,
            stop_loss,
            take_profit,
            trailing_distance,
        }) => {
            out.user(user_id);
            out.put("position_id", position_id);
            out.decimal("stop_loss", stop_loss.map(|p| p.value()));
            out.decimal("take_profit", take_profit.map(|p| p.value()));
            out.decimal_if_set("trailing_distance", trailing_distance.map(|p| p.value()));
        }
        Command::PartialClose(PartialClose {
            user_id,
            position_id,
            quantity,
        }) => {
            out.put("user_id", user_id);
            out.put("position_id", position_id);
            out.decimal("quantity", Some(quantity.value()));
        }
        Command::PlaceOrder(PlaceOrder {
            user_id,
            asset,
            side,
            order_type,
            price,
            quantity,
            leverage,
            stop_loss,
            take_profit,
            expires_at,
        }) => {
            out.put("user_id", user_id);
            out.put("asset", asset.symbol());
            out.put("side", side.as_str());
            out.put("order_type", order_type.as_str());
            out.decimal("price", Some(price.value()));
            out.decimal("quantity", Some(quantity.value()));
            out.put("leverage", leverage.value());
            out.decimal("stop_loss", stop_loss.map(|p| p.value()));
            out.decimal("take_profit", take_profit.map(|p| p.value()));
            out.put("expires_at", OrEmpty(*expires_at));
        }
        Command::CancelOrder { user_id, order_id } => {
            out.put("user_id", user_id);
            out.put("order_id", order_id);
        }
        Command::ModifyOrder(ModifyOrder {
            user_id,
            order_id,
            price,
            stop_loss,
            take_profit,
            expires_at,
        }) => {
            out.put("user_id", user_id);
            out.put("order_id", order_id);
            out.decimal("price", price.map(|p| p.value()));
            out.decimal("stop_loss", stop_loss.map(|p| p.value()));
            out.decimal("take_profit", take_profit.map(|p| p.value()));
            out.put("expires_at", OrEmpty(*expires_at));
        }
    }
}

struct Lines<W>(W);

impl<W: fmt::Write> Lines<W> {
    fn line(&mut self, text: &str) {
        // Neither a String nor the hasher can fail to take text.
        let _ = self.0.write_str(text);
        let _ = self.0.write_char('\n');
    }

    /// `name=value` for text values: straight writes, without `fmt`'s machinery (this runs
    /// for every command the engine applies).
    fn put_str(&mut self, name: &str, value: &str) {
        for piece in [name, "=", value, "\n"] {
            let _ = self.0.write_str(piece);
        }
    }

    /// `user_id=<uuid>`, the same lowercase hyphenated text as `Display`, encoded on the
    /// stack (the generic `Display` path pads and formats digit groups one by one).
    fn user(&mut self, user: &crate::UserId) {
        let mut buf = uuid::Uuid::encode_buffer();
        let text = user.0.hyphenated().encode_lower(&mut buf);
        self.put_str("user_id", text);
    }

    fn put(&mut self, name: &str, value: impl fmt::Display) {
        let _ = writeln!(self.0, "{name}={value}");
    }

    fn decimal(&mut self, name: &str, value: Option<Decimal>) {
        self.put(name, OrEmpty(value.map(|d| d.normalize())));
    }

    /// For a field added to a command after its first version: no line at all when absent.
    fn decimal_if_set(&mut self, name: &str, value: Option<Decimal>) {
        if value.is_some() {
            self.decimal(name, value);
        }
    }
}

/// An optional value: its text, or nothing.
struct OrEmpty<T>(Option<T>);

impl<T: fmt::Display> fmt::Display for OrEmpty<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some(v) => v.fmt(f),
            None => Ok(()),
        }
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

impl std::str::FromStr for Fingerprint {
    type Err = crate::ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || crate::ParseError(format!("{s:?} is not 64 hex digits"));
        if s.len() != 64 || !s.is_ascii() {
            return Err(bad());
        }
        let mut bytes = [0u8; 32];
        for (byte, pair) in bytes.iter_mut().zip(s.as_bytes().chunks_exact(2)) {
            let pair = std::str::from_utf8(pair).map_err(|_| bad())?;
            *byte = u8::from_str_radix(pair, 16).map_err(|_| bad())?;
        }
        Ok(Self(bytes))
    }
}

impl Serialize for Fingerprint {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Fingerprint {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Asset, Leverage, PositionId, Side, UserId};

    fn open(quantity: &str, stop_loss: Option<&str>) -> Command {
        Command::OpenPosition(OpenPosition {
            user_id: UserId(uuid::Uuid::from_u128(7)),
            asset: Asset::Btc,
            side: Side::Buy,
            quantity: quantity.parse().expect("quantity"),
            leverage: Leverage::new(10).expect("leverage"),
            stop_loss: stop_loss.map(|s| s.parse().expect("price")),
            take_profit: None,
            expected_price: None,
            max_slippage_bps: Some(5),
            trailing_distance: None,
        })
    }

    #[test]
    fn user_ids_are_written_as_their_display_text() {
        for n in [
            0u128,
            7,
            0xabcdef,
            u128::MAX,
            0x0123_4567_89ab_cdef_fedc_ba98_7654_3210,
        ] {
            let user_id = UserId(uuid::Uuid::from_u128(n));
            let text = String::from_utf8(canonical_bytes(&Command::CreateAccount { user_id }))
                .expect("text");
            assert!(text.contains(&format!("\nuser_id={user_id}\n")), "{text}");
        }
    }

    #[test]
    fn the_canonical_bytes_are_pinned() {
        let text =
            String::from_utf8(canonical_bytes(&open("0.0100", Some("60000.50")))).expect("text");
        assert_eq!(
            text,
            "command/v1\nkind=open_position\nuser_id=00000000-0000-0000-0000-000000000007\n\
             asset=BTC\nside=buy\nquantity=0.01\nleverage=10\nstop_loss=60000.5\ntake_profit=\n\
             expected_price=\nmax_slippage_bps=5\n"
        );
    }

    /// A golden value: if this changes, snapshots written before no longer recognise their
    /// retries. Computed independently with `printf 'command/v1\nkind=close_position\n\
    /// user_id=00000000-0000-0000-0000-000000000007\nposition_id=42\n' | sha256sum`.
    #[test]
    fn the_digest_is_pinned() {
        let close = Command::ClosePosition {
            user_id: UserId(uuid::Uuid::from_u128(7)),
            position_id: PositionId(42),
        };
        assert_eq!(
            Fingerprint::of(&close).to_string(),
            "1e4a4ba6705aada4bd5deb040f40217117d324d169b6a013cd3678ae975003ae"
        );
    }

    #[test]
    fn equal_commands_agree_and_different_ones_do_not() {
        assert_eq!(
            Fingerprint::of(&open("0.01", None)),
            Fingerprint::of(&open("0.010", None))
        );
        assert_ne!(
            Fingerprint::of(&open("0.01", None)),
            Fingerprint::of(&open("0.02", None))
        );
        assert_ne!(
            Fingerprint::of(&open("0.01", None)),
            Fingerprint::of(&open("0.01", Some("1")))
        );
    }

    #[test]
    fn fingerprints_round_trip_as_hex() {
        let fp = Fingerprint::of(&open("0.01", None));
        let json = serde_json::to_string(&fp).expect("serialises");
        assert_eq!(json.len(), 66);
        assert_eq!(
            serde_json::from_str::<Fingerprint>(&json).expect("reads"),
            fp
        );
        assert!(serde_json::from_str::<Fingerprint>("\"abc\"").is_err());
        assert!(serde_json::from_str::<Fingerprint>("12345").is_err());
    }
}
