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
use sha2::{Digest, Sha256};

pub use crate::digest::Fingerprint;
use crate::messages::{
    Command, ModifyOrder, ModifyPosition, OpenPosition, PartialClose, PlaceOrder,
};

impl Fingerprint {
    /// The fingerprint of `command`: SHA-256 of its canonical bytes.
    pub fn of(command: &Command) -> Self {
        // The text goes straight into the hasher: no buffer to allocate per command.
        let mut hasher = Lines(Hashing(Sha256::new()));
        write_canonical(command, &mut hasher);
        Self::from_digest(hasher.0.0.finalize().into())
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
            out.integer("leverage", Some(leverage.value()));
            out.decimal("stop_loss", stop_loss.map(|p| p.value()));
            out.decimal("take_profit", take_profit.map(|p| p.value()));
            out.decimal("expected_price", expected_price.map(|p| p.value()));
            out.integer("max_slippage_bps", *max_slippage_bps);
            // Added after v1: a line only when set, so every command written before it keeps
            // its fingerprint.
            out.decimal_if_set("trailing_distance", trailing_distance.map(|p| p.value()));
        }
        Command::ClosePosition {
            user_id,
            position_id,
        } => {
            out.user(user_id);
            out.integer("position_id", Some(position_id.0));
        }
        Command::ModifyPosition(ModifyPosition {
            user_id,
            position_id,
            stop_loss,
            take_profit,
            trailing_distance,
        }) => {
            out.user(user_id);
            out.integer("position_id", Some(position_id.0));
            out.decimal("stop_loss", stop_loss.map(|p| p.value()));
            out.decimal("take_profit", take_profit.map(|p| p.value()));
            out.decimal_if_set("trailing_distance", trailing_distance.map(|p| p.value()));
        }
        Command::PartialClose(PartialClose {
            user_id,
            position_id,
            quantity,
        }) => {
            out.user(user_id);
            out.integer("position_id", Some(position_id.0));
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
            out.user(user_id);
            out.put_str("asset", asset.symbol());
            out.put_str("side", side.as_str());
            out.put_str("order_type", order_type.as_str());
            out.decimal("price", Some(price.value()));
            out.decimal("quantity", Some(quantity.value()));
            out.integer("leverage", Some(leverage.value()));
            out.decimal("stop_loss", stop_loss.map(|p| p.value()));
            out.decimal("take_profit", take_profit.map(|p| p.value()));
            out.integer("expires_at", *expires_at);
        }
        Command::CancelOrder { user_id, order_id } => {
            out.user(user_id);
            out.integer("order_id", Some(order_id.0));
        }
        Command::ModifyOrder(ModifyOrder {
            user_id,
            order_id,
            price,
            stop_loss,
            take_profit,
            expires_at,
        }) => {
            out.user(user_id);
            out.integer("order_id", Some(order_id.0));
            out.decimal("price", price.map(|p| p.value()));
            out.decimal("stop_loss", stop_loss.map(|p| p.value()));
            out.decimal("take_profit", take_profit.map(|p| p.value()));
            out.integer("expires_at", *expires_at);
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

    /// `name=<digits>`, or `name=` when absent: the text of `Display`, built on the stack.
    fn integer(&mut self, name: &str, value: Option<impl Into<i128>>) {
        let text = value.map(|v| {
            let v: i128 = v.into();
            NumberText::new(v < 0, v.unsigned_abs(), 0)
        });
        self.put_str(name, text.as_ref().map_or("", NumberText::as_str));
    }

    /// `name=<decimal>` normalised (no trailing zeros), or `name=` when absent: the text
    /// `Display` writes for the normalised value, built on the stack.
    fn decimal(&mut self, name: &str, value: Option<Decimal>) {
        let text = value.map(|d| {
            let d = d.normalize();
            NumberText::new(d.is_sign_negative(), d.mantissa().unsigned_abs(), d.scale())
        });
        self.put_str(name, text.as_ref().map_or("", NumberText::as_str));
    }

    /// For a field added to a command after its first version: no line at all when absent.
    fn decimal_if_set(&mut self, name: &str, value: Option<Decimal>) {
        if value.is_some() {
            self.decimal(name, value);
        }
    }
}

/// The text of a number as `Display` writes it, built right to left in a stack buffer:
/// an optional `-`, the digits of `magnitude`, and a point `scale` digits from the right
/// (`0.05` for 5 at scale 2). Large enough for any `i128` or `Decimal`.
struct NumberText {
    buf: [u8; 48],
    start: usize,
}

impl NumberText {
    fn new(negative: bool, magnitude: u128, scale: u32) -> Self {
        let mut text = Self {
            buf: [0; 48],
            start: 48,
        };
        // Ids, prices and quantities fit 64 bits, whose digits are far cheaper to take.
        match u64::try_from(magnitude) {
            Ok(small) => text.digits(small, scale),
            Err(_) => text.digits(magnitude, scale),
        }
        if negative && magnitude != 0 {
            text.push(b'-');
        }
        text
    }

    /// The digits of `n`, at least one before the point.
    fn digits<N>(&mut self, mut n: N, scale: u32)
    where
        N: Copy + PartialEq + From<u8> + std::ops::Rem<Output = N> + std::ops::DivAssign,
        N: TryInto<u8>,
    {
        let (ten, zero) = (N::from(10), N::from(0));
        let mut written = 0;
        loop {
            let digit: u8 = (n % ten).try_into().unwrap_or(0);
            self.push(b'0' + digit);
            n /= ten;
            written += 1;
            if written == scale {
                self.push(b'.');
            }
            if n == zero && written > scale {
                break;
            }
        }
    }

    fn push(&mut self, byte: u8) {
        self.start -= 1;
        self.buf[self.start] = byte;
    }

    fn as_str(&self) -> &str {
        // Only ASCII digits, '.' and '-' are ever pushed.
        std::str::from_utf8(&self.buf[self.start..]).unwrap_or_default()
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

    /// The stack-built number text is `Display`'s, for integers and for normalised decimals
    /// of every scale, sign and length (a 96-bit mantissa at most).
    #[test]
    fn numbers_are_written_as_their_display_text() {
        let integer = |v: i128| {
            NumberText::new(v < 0, v.unsigned_abs(), 0)
                .as_str()
                .to_owned()
        };
        for v in [
            0,
            1,
            9,
            10,
            42,
            -7,
            i128::from(u64::MAX),
            i128::from(i64::MIN),
        ] {
            assert_eq!(integer(v), v.to_string());
        }
        let mantissas = [
            0i128,
            1,
            5,
            9,
            10,
            100,
            123_456_789,
            (1 << 96) - 1,
            600_005,
            10_000,
        ];
        for m in mantissas.into_iter().flat_map(|m| [m, -m]) {
            for scale in 0..=28 {
                let d = Decimal::from_i128_with_scale(m, scale).normalize();
                let text =
                    NumberText::new(d.is_sign_negative(), d.mantissa().unsigned_abs(), d.scale());
                assert_eq!(text.as_str(), d.to_string(), "{m} at scale {scale}");
            }
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
