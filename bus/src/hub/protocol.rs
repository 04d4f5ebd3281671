//! The hub's WebSocket protocol: what clients send (ops) and what the server sends back.
//!
//! Client -> server (JSON text frames, at most 4 KiB):
//! - `{"op":"subscribe","assets":["BTC","ETH"]}`: the first one narrows the default (every
//!   asset) to these; later ones add to the set. Replies `subscribed` and the latest quote of
//!   each newly added asset.
//! - `{"op":"unsubscribe","assets":["SOL"]}`: removes them. Replies `subscribed`.
//! - `{"op":"auth","token":"<jwt>"}`: from now on the user's own engine events and fired
//!   price alerts are sent too.
//!   Replies `authenticated`, or an `unauthorized` error.
//!
//! Server -> client: `{"type":"quote",…}` (see [`crate::MarketQuote`]),
//! `{"type":"event","seq":…,"event":{…}}` (an [`crate::Event`]),
//! `{"type":"alert","alert":{…}}` (a fired price alert, as `GET /api/v1/alerts` shows it),
//! `{"type":"subscribed","assets":[…]}`, `{"type":"authenticated","user_id":"…"}`,
//! `{"type":"error","code":"…","message":"…"}`.

use serde::{Deserialize, Serialize};

use crate::messages::Event;
use crate::types::{Asset, UserId};

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientOp {
    Subscribe { assets: Vec<Asset> },
    Unsubscribe { assets: Vec<Asset> },
    Auth { token: String },
}

/// Stable codes of `{"type":"error"}` messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadRequest,
    Unauthorized,
    TooManyConnections,
    TooSlow,
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage<'a> {
    Subscribed { assets: Vec<Asset> },
    Authenticated { user_id: UserId },
    Event { seq: u64, event: &'a Event },
    Error { code: ErrorCode, message: String },
}

impl ServerMessage<'_> {
    pub fn to_json(&self) -> String {
        // Plain data with string keys: serialising cannot fail.
        serde_json::to_string(self).expect("a server message serialises")
    }
}

pub fn error(code: ErrorCode, message: impl Into<String>) -> String {
    ServerMessage::Error {
        code,
        message: message.into(),
    }
    .to_json()
}

/// Longest parse error detail sent back, in bytes.
const MAX_DETAIL: usize = 200;

/// Reads one client frame; the error text is safe to send back.
pub fn parse_op(text: &str) -> Result<ClientOp, String> {
    serde_json::from_str(text).map_err(|e| {
        let message = e.to_string();
        format!(
            "cannot read the message: {}",
            truncate_chars(&message, MAX_DETAIL)
        )
    })
}

/// The longest prefix of `text` of at most `max` bytes that ends on a character boundary
/// (the error echoes client text, which may put a multi-byte character across `max`).
pub fn truncate_chars(text: &str, max: usize) -> &str {
    let mut end = max.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1; // terminates: 0 is a boundary
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_ops_and_refuses_junk() {
        assert_eq!(
            parse_op(r#"{"op":"subscribe","assets":["BTC","sol"]}"#),
            Ok(ClientOp::Subscribe {
                assets: vec![Asset::Btc, Asset::Sol]
            })
        );
        assert_eq!(
            parse_op(r#"{"op":"auth","token":"x.y.z"}"#),
            Ok(ClientOp::Auth {
                token: "x.y.z".into()
            })
        );
        assert!(parse_op(r#"{"op":"subscribe","assets":["DOGE"]}"#).is_err());
        assert!(parse_op(r#"{"op":"dance"}"#).is_err());
        assert!(parse_op("not json").is_err());
        // A multi-byte character across the truncation point, at either parity.
        for pad in ["", "x"] {
            let op = format!(r#"{{"op":"{pad}{}"}}"#, "é".repeat(150));
            let message = parse_op(&op).expect_err("refused");
            assert!(message.len() <= MAX_DETAIL + 30, "{message}");
        }
        assert_eq!(truncate_chars("aé", 2), "a");
        assert_eq!(truncate_chars("aé", 9), "aé");
        assert_eq!(
            error(ErrorCode::TooSlow, "bye"),
            r#"{"type":"error","code":"too_slow","message":"bye"}"#
        );
    }
}
