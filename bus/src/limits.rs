//! Per-client rate limits and the client's address, shared by the HTTP functions and the
//! WebSocket hub.
//!
//! A [`Rate`] is a setting written `N/S`: at most `N` at once, refilled evenly over `S`
//! seconds (GCRA, `governor`). A [`KeyedLimiter`] keeps one such budget per key with bounded
//! memory: keys whose budget is full again are dropped at most every [`PRUNE_EVERY`] (inline,
//! on a check: no timer task, so it works the same on Lambda), and past `max_keys` live keys
//! the limiter refuses everyone until pruning frees room, rather than growing.
//!
//! The client's address ([`TrustedProxies::client_ip`]) is the TCP peer, or, only when that
//! peer is a configured trusted proxy, the rightmost `X-Forwarded-For` hop that is not one:
//! a client's own header never chooses its key.

use std::fmt;
use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

/// How often a limiter drops the keys whose budget is full again.
pub const PRUNE_EVERY: Duration = Duration::from_secs(10);
/// Live keys a limiter holds at most by default (a key costs ~100 bytes: ~10 MB).
pub const DEFAULT_MAX_KEYS: usize = 100_000;

/// `N/S`: a burst of at most `N`, refilled evenly over `S` seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub burst: NonZeroU32,
    pub seconds: NonZeroU32,
}

impl Rate {
    /// `burst` at once, refilled over `seconds`; `None` if either is 0.
    pub fn new(burst: u32, seconds: u32) -> Option<Self> {
        Some(Self {
            burst: NonZeroU32::new(burst)?,
            seconds: NonZeroU32::new(seconds)?,
        })
    }

    /// For constants: `Rate::of(30, 60)` in a `const` fails to compile if either is 0.
    pub const fn of(burst: u32, seconds: u32) -> Self {
        match (NonZeroU32::new(burst), NonZeroU32::new(seconds)) {
            (Some(burst), Some(seconds)) => Self { burst, seconds },
            _ => panic!("a rate's count and seconds are at least 1"),
        }
    }

    fn quota(self) -> Quota {
        let period = Duration::from_secs(u64::from(self.seconds.get())) / self.burst.get();
        // A period of at least one second over at most u32::MAX cells is never zero.
        Quota::with_period(period.max(Duration::from_nanos(1)))
            .unwrap_or_else(|| Quota::per_second(self.burst))
            .allow_burst(self.burst)
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.burst, self.seconds)
    }
}

impl FromStr for Rate {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (n, secs) = s
            .trim()
            .split_once('/')
            .ok_or_else(|| format!("{s:?} is not N/S"))?;
        let n: u32 = n
            .trim()
            .parse()
            .map_err(|_| format!("{n:?} is not a count"))?;
        let secs: u32 = secs
            .trim()
            .parse()
            .map_err(|_| format!("{secs:?} is not seconds"))?;
        Self::new(n, secs).ok_or_else(|| "both N and S are at least 1".into())
    }
}

/// One [`Rate`] budget per key, with bounded memory (see the module's text).
pub struct KeyedLimiter<K: Hash + Eq + Clone> {
    limiter: RateLimiter<K, DefaultKeyedStateStore<K>, DefaultClock>,
    rate: Rate,
    max_keys: usize,
    born: Instant,
    /// When the last pruning ran, ms after `born`.
    pruned_at: AtomicU64,
}

impl<K: Hash + Eq + Clone> KeyedLimiter<K> {
    pub fn new(rate: Rate, max_keys: usize) -> Self {
        Self {
            limiter: RateLimiter::keyed(rate.quota()),
            rate,
            max_keys: max_keys.max(1),
            born: Instant::now(),
            pruned_at: AtomicU64::new(0),
        }
    }

    pub fn rate(&self) -> Rate {
        self.rate
    }

    /// Takes one from `key`'s budget; when it is empty, how long until one is back.
    pub fn check(&self, key: &K) -> Result<(), Duration> {
        self.prune_if_due();
        if self.limiter.len() >= self.max_keys {
            self.prune();
            if self.limiter.len() >= self.max_keys {
                return Err(PRUNE_EVERY);
            }
        }
        self.limiter
            .check_key(key)
            .map_err(|not_until| not_until.wait_time_from(self.limiter.clock().now()))
    }

    /// Keys held now (pruned ones excluded).
    pub fn len(&self) -> usize {
        self.limiter.len()
    }

    pub fn is_empty(&self) -> bool {
        self.limiter.is_empty()
    }

    /// Drops every key whose budget is full again (indistinguishable from a new key).
    pub fn prune(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }

    fn prune_if_due(&self) {
        let now = u64::try_from(self.born.elapsed().as_millis()).unwrap_or(u64::MAX);
        let last = self.pruned_at.load(Relaxed);
        let due = now.saturating_sub(last) >= PRUNE_EVERY.as_millis() as u64;
        // One caller prunes; the others go on.
        if due
            && self
                .pruned_at
                .compare_exchange(last, now, Relaxed, Relaxed)
                .is_ok()
        {
            self.prune();
        }
    }
}

/// Whole seconds for a `Retry-After` header: rounded up, at least 1.
pub fn retry_after_secs(wait: Duration) -> u64 {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    secs.max(1)
}

/// One network: an address and a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cidr {
    net: IpAddr,
    bits: u8,
}

impl Cidr {
    fn contains(&self, ip: IpAddr) -> bool {
        // An IPv4 peer seen on a dual-stack socket is `::ffff:a.b.c.d`.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.net, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => prefix_eq(&net.octets(), &ip.octets(), self.bits),
            (IpAddr::V6(net), IpAddr::V6(ip)) => prefix_eq(&net.octets(), &ip.octets(), self.bits),
            _ => false,
        }
    }
}

fn prefix_eq(a: &[u8], b: &[u8], bits: u8) -> bool {
    let (whole, rest) = (usize::from(bits / 8), bits % 8);
    if a[..whole] != b[..whole] {
        return false;
    }
    rest == 0 || {
        let mask = 0xffu8 << (8 - rest);
        a[whole] & mask == b[whole] & mask
    }
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (addr, bits) = match s.split_once('/') {
            Some((addr, bits)) => (addr, Some(bits)),
            None => (s, None),
        };
        let net: IpAddr = addr
            .parse()
            .map_err(|_| format!("{addr:?} is not an IP address"))?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let bits = match bits {
            Some(b) => b
                .parse::<u8>()
                .ok()
                .filter(|b| *b <= max)
                .ok_or_else(|| format!("{b:?} is not a prefix length up to {max}"))?,
            None => max,
        };
        Ok(Self { net, bits })
    }
}

/// The proxies whose `X-Forwarded-For` is believed (`TRUSTED_PROXIES`: comma-separated
/// addresses or CIDR networks; empty, the default: none, the TCP peer is the client).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<Cidr>);

impl FromStr for TrustedProxies {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        s.split(',')
            .map(str::trim)
            .filter(|part| !part.is_empty())
            .map(Cidr::from_str)
            .collect::<Result<_, _>>()
            .map(Self)
    }
}

impl TrustedProxies {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(ip))
    }

    /// The client behind `peer`: `peer` itself unless it is a trusted proxy; then the
    /// rightmost hop of `forwarded_for` (every `X-Forwarded-For` value, in order) that is not
    /// a trusted proxy. A hop that is not an address ends the walk at the last trusted one.
    pub fn client_ip<'a>(
        &self,
        peer: IpAddr,
        forwarded_for: impl DoubleEndedIterator<Item = &'a str>,
    ) -> IpAddr {
        if !self.contains(peer) {
            return peer;
        }
        let mut client = peer;
        for value in forwarded_for.rev() {
            for hop in value.rsplit(',') {
                match hop.trim().parse::<IpAddr>() {
                    Ok(ip) if self.contains(ip) => client = ip,
                    Ok(ip) => return ip,
                    Err(_) => return client,
                }
            }
        }
        client
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn rates_parse_as_n_per_seconds() {
        assert_eq!(
            "10/60".parse::<Rate>(),
            Ok(Rate::new(10, 60).expect("rate"))
        );
        assert_eq!(
            Rate::new(10, 60).expect("rate").to_string(),
            "10/60".to_string()
        );
        for bad in ["", "10", "0/60", "10/0", "x/1", "1/-1"] {
            assert!(bad.parse::<Rate>().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_key_gets_its_burst_then_waits_and_other_keys_are_apart() {
        let limiter = KeyedLimiter::new(Rate::new(3, 60).expect("rate"), 100);
        for _ in 0..3 {
            assert!(limiter.check(&"a").is_ok());
        }
        let wait = limiter.check(&"a").expect_err("over the burst");
        assert!(wait > Duration::from_secs(15) && wait <= Duration::from_secs(20));
        assert_eq!(retry_after_secs(wait), 20);
        assert!(limiter.check(&"b").is_ok());
    }

    #[test]
    fn full_budgets_are_pruned_and_the_key_count_is_capped() {
        let limiter = KeyedLimiter::new(Rate::new(1, 1).expect("rate"), 2);
        assert!(limiter.check(&1).is_ok());
        assert!(limiter.check(&2).is_ok());
        // Both budgets are empty: no room for a third key.
        assert_eq!(limiter.check(&3), Err(PRUNE_EVERY));
        // governor keeps a key one period past its full refill: 2 s here.
        std::thread::sleep(Duration::from_millis(2100));
        assert!(limiter.check(&3).is_ok(), "pruning freed room");
        assert!(limiter.len() <= 2);
    }

    #[test]
    fn only_a_trusted_peer_may_name_the_client() {
        let trusted: TrustedProxies = "10.0.0.0/8, 192.168.1.1".parse().expect("list");
        let xff = ["198.51.100.7, 203.0.113.9", "10.1.2.3"];
        // An untrusted peer's header is ignored.
        assert_eq!(
            trusted.client_ip(ip("203.0.113.1"), xff.into_iter()),
            ip("203.0.113.1")
        );
        // The rightmost hop that is not a trusted proxy.
        assert_eq!(
            trusted.client_ip(ip("10.9.9.9"), xff.into_iter()),
            ip("203.0.113.9")
        );
        assert_eq!(
            trusted.client_ip(ip("192.168.1.1"), ["junk, 10.0.0.1"].into_iter()),
            ip("10.0.0.1")
        );
        assert_eq!(
            trusted.client_ip(ip("10.0.0.2"), std::iter::empty()),
            ip("10.0.0.2")
        );
        assert!(trusted.contains(ip("::ffff:10.0.0.5")));
        assert!(!trusted.contains(ip("192.168.1.2")));
        assert!("10.0.0.0/33".parse::<TrustedProxies>().is_err());
        assert!("".parse::<TrustedProxies>().expect("empty").is_empty());
    }
}
