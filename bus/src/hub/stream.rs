//! The byte stream tungstenite runs a connection over: reads come from the socket, writes
//! (the handshake, pongs, close frames, and the hub's messages sent through tungstenite at
//! a connection's end) go through the client's [`Mailbox`], the one writer of its socket, so
//! they never interleave with frames the fan-out writes directly.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::HubStats;
use super::mailbox::{Flush, Mailbox};

pub(super) struct ClientStream {
    pub tcp: Arc<TcpStream>,
    pub mailbox: Arc<Mailbox>,
    pub stats: HubStats,
}

impl AsyncRead for ClientStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            ready!(self.tcp.poll_read_ready(cx))?;
            match self.tcp.try_read(buf.initialize_unfilled()) {
                Ok(n) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                // Readiness was stale; `try_read` cleared it, so the next poll waits.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsyncWrite for ClientStream {
    /// Takes all of `buf` (tungstenite hands over whole frames); it waits in the mailbox if
    /// the socket is full.
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.mailbox.push_control(Bytes::copy_from_slice(buf))?;
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            match self.mailbox.write_out() {
                Flush::Done(delivered) => {
                    self.stats.count_delivered(delivered);
                    return Poll::Ready(Ok(()));
                }
                Flush::Blocked(delivered) => {
                    self.stats.count_delivered(delivered);
                    ready!(self.tcp.poll_write_ready(cx))?;
                }
                Flush::Broken => return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into())),
            }
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.as_mut().poll_flush(cx))?;
        Poll::Ready(socket2::SockRef::from(self.tcp.as_ref()).shutdown(std::net::Shutdown::Write))
    }
}
