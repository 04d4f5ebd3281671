//! Server-to-client WebSocket frames, encoded once and shared by every client.
//!
//! A server never masks its frames (RFC 6455 §5.1), so a quote's frame is the same bytes for
//! all 10,000 clients: the fan-out encodes it once and each client's socket gets a reference
//! to the same buffer, instead of tungstenite copying and framing the text per client.

use bytes::{BufMut, Bytes, BytesMut};

/// FIN set, opcode 1 (text).
const FIN_TEXT: u8 = 0x81;

/// One complete, unmasked text frame carrying `text`.
pub fn text(text: &str) -> Bytes {
    let payload = text.as_bytes();
    let mut frame = BytesMut::with_capacity(payload.len() + 10);
    frame.put_u8(FIN_TEXT);
    match payload.len() {
        n if n < 126 => frame.put_u8(n as u8),
        n if n <= usize::from(u16::MAX) => {
            frame.put_u8(126);
            frame.put_u16(n as u16);
        }
        n => {
            frame.put_u8(127);
            frame.put_u64(n as u64);
        }
    }
    frame.put_slice(payload);
    frame.freeze()
}

#[cfg(test)]
mod tests {
    use tokio_tungstenite::tungstenite::protocol::frame::Frame;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};

    /// The same bytes tungstenite would write, at each length encoding's edges.
    #[test]
    fn frames_match_tungstenites_encoding() {
        for len in [0, 1, 125, 126, 127, 65_535, 65_536, 70_000] {
            let text = "q".repeat(len);
            let mut expected = Vec::new();
            Frame::message(text.clone(), OpCode::Data(Data::Text), true)
                .format(&mut expected)
                .expect("a frame formats into a Vec");
            assert_eq!(super::text(&text).as_ref(), expected.as_slice(), "{len}");
        }
    }
}
