//! Who may start a WebSocket handshake, decided once per TCP connection right after accept
//! ([`Admission::admit`], the hub's one admission check by address): at most
//! `WS_MAX_HANDSHAKES` handshakes in progress in all, at most `WS_MAX_HANDSHAKES_PER_ADDRESS`
//! of them from one address, and at most `WS_MAX_CONNECTIONS_PER_ADDRESS` connections
//! (handshaking or established) from one address. A connection turned away is told so in plain
//! HTTP (429 or 503 with `Retry-After`) and closed at once, before it costs a task.
//!
//! What a connection holds is released by guards' `Drop` ([`Handshake`], [`AddressHold`]), so
//! a connection task that panics or is aborted gives everything back.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The bounds (from [`super::HubSettings`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdmissionLimits {
    pub max_handshakes: usize,
    pub max_handshakes_per_address: u32,
    pub max_connections_per_address: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refusal {
    /// This address has too many handshakes in progress or connections open: 429.
    AddressBusy,
    /// Too many handshakes in progress in all: 503.
    HubBusy,
}

impl Refusal {
    /// The plain HTTP answer a refused client reads instead of an upgrade.
    pub(super) fn response(self) -> &'static [u8] {
        match self {
            Self::AddressBusy => {
                b"HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\n\
retry-after: 1\r\nconnection: close\r\ncontent-length: 84\r\n\r\n\
{\"error\":{\"code\":\"rate_limited\",\"message\":\"too many connections from this address\"}}"
            }
            Self::HubBusy => {
                b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
retry-after: 1\r\nconnection: close\r\ncontent-length: 77\r\n\r\n\
{\"error\":{\"code\":\"unavailable\",\"message\":\"too many handshakes; retry later\"}}"
            }
        }
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    handshakes: u32,
    connections: u32,
}

pub(super) struct Admission {
    limits: AdmissionLimits,
    handshakes: Arc<Semaphore>,
    by_address: Mutex<HashMap<IpAddr, Counts>>,
}

impl Admission {
    pub(super) fn new(limits: AdmissionLimits) -> Arc<Self> {
        Arc::new(Self {
            limits,
            handshakes: Arc::new(Semaphore::new(limits.max_handshakes)),
            by_address: Mutex::new(HashMap::new()),
        })
    }

    fn counts(&self) -> MutexGuard<'_, HashMap<IpAddr, Counts>> {
        // The map is only ever changed by whole increments; a panic elsewhere leaves it usable.
        self.by_address
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// A handshake may start for a client at `ip`, or the reason it may not.
    pub(super) fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Handshake, Refusal> {
        let l = self.limits;
        let mut counts = self.counts();
        let c = counts.get(&ip).copied().unwrap_or_default();
        if c.handshakes >= l.max_handshakes_per_address
            || c.handshakes + c.connections >= l.max_connections_per_address
        {
            return Err(Refusal::AddressBusy);
        }
        let Ok(permit) = self.handshakes.clone().try_acquire_owned() else {
            return Err(Refusal::HubBusy);
        };
        counts.entry(ip).or_default().handshakes += 1;
        Ok(Handshake {
            admission: self.clone(),
            ip,
            permit: Some(permit),
            done: false,
        })
    }

    /// Addresses with a handshake or a connection.
    #[cfg(test)]
    pub(super) fn addresses(&self) -> usize {
        self.counts().len()
    }

    fn release(&self, ip: IpAddr, handshake: bool) {
        let mut counts = self.counts();
        if let Some(c) = counts.get_mut(&ip) {
            if handshake {
                c.handshakes = c.handshakes.saturating_sub(1);
            } else {
                c.connections = c.connections.saturating_sub(1);
            }
            if c.handshakes == 0 && c.connections == 0 {
                counts.remove(&ip);
            }
        }
    }
}

/// A handshake in progress: counts against its address and the hub until it is dropped or
/// turned into an [`AddressHold`].
pub(super) struct Handshake {
    admission: Arc<Admission>,
    ip: IpAddr,
    permit: Option<OwnedSemaphorePermit>,
    done: bool,
}

impl Handshake {
    /// The handshake succeeded: the connection now counts as open for its address (the
    /// count was reserved at admission, so this cannot fail).
    pub(super) fn established(mut self) -> AddressHold {
        {
            let mut counts = self.admission.counts();
            let c = counts.entry(self.ip).or_default();
            c.handshakes = c.handshakes.saturating_sub(1);
            c.connections += 1;
        }
        self.done = true;
        drop(self.permit.take());
        AddressHold {
            admission: self.admission.clone(),
            ip: self.ip,
        }
    }
}

impl Drop for Handshake {
    fn drop(&mut self) {
        if !self.done {
            self.admission.release(self.ip, true);
        }
        // The global permit goes back as the field drops.
    }
}

/// An open connection's place under its address's cap, given back on drop.
pub(super) struct AddressHold {
    admission: Arc<Admission>,
    ip: IpAddr,
}

impl Drop for AddressHold {
    fn drop(&mut self) {
        self.admission.release(self.ip, false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> AdmissionLimits {
        AdmissionLimits {
            max_handshakes: 3,
            max_handshakes_per_address: 2,
            max_connections_per_address: 3,
        }
    }

    #[test]
    fn caps_per_address_and_in_all_and_gives_everything_back() {
        let a: IpAddr = "127.0.0.1".parse().expect("ip");
        let b: IpAddr = "127.0.0.2".parse().expect("ip");
        let adm = Admission::new(limits());
        let h1 = adm.admit(a).expect("first");
        let h2 = adm.admit(a).expect("second");
        assert_eq!(adm.admit(a).err(), Some(Refusal::AddressBusy));
        let h3 = adm.admit(b).expect("another address");
        assert_eq!(adm.admit(b).err(), Some(Refusal::HubBusy));
        let c1 = h1.established();
        let c2 = h2.established();
        // Handshakes done: a's third slot is free, its fourth is over the connection cap.
        let h4 = adm.admit(a).expect("third from a");
        assert_eq!(adm.admit(a).err(), Some(Refusal::AddressBusy));
        drop((c1, c2, h3, h4));
        assert_eq!(adm.addresses(), 0, "nothing stays behind");
        assert!(adm.admit(a).is_ok() && adm.admit(b).is_ok());
    }

    #[test]
    fn refusals_have_their_declared_length() {
        for r in [Refusal::AddressBusy, Refusal::HubBusy] {
            let text = std::str::from_utf8(r.response()).expect("ascii");
            let (head, body) = text.split_once("\r\n\r\n").expect("head");
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .expect("length")
                .parse()
                .expect("number");
            assert_eq!(len, body.len(), "{text}");
        }
    }

    #[tokio::test]
    async fn a_panicking_handshake_gives_its_place_back() {
        let adm = Admission::new(limits());
        let ip: IpAddr = "127.0.0.1".parse().expect("ip");
        let h = adm.admit(ip).expect("admitted");
        let task = tokio::spawn(async move {
            let _h = h;
            panic!("a bug mid-handshake");
        });
        assert!(task.await.expect_err("panicked").is_panic());
        assert_eq!(adm.addresses(), 0);
    }
}
