//! Candle intervals and bucket alignment. Buckets are aligned to the Unix epoch in UTC
//! (so 4h buckets start at 00:00, 04:00, …; days at midnight), except weeks, which start on
//! Monday 00:00 UTC as on most exchanges.

use std::str::FromStr;

/// Every interval a candle is kept in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Interval {
    M1,
    M5,
    M15,
    M30,
    H1,
    H4,
    D1,
    W1,
}

/// 1970-01-05 00:00 UTC, the first Monday after the epoch.
const FIRST_MONDAY: i64 = 4 * 86_400;

impl Interval {
    pub const ALL: [Interval; 8] = [
        Interval::M1,
        Interval::M5,
        Interval::M15,
        Interval::M30,
        Interval::H1,
        Interval::H4,
        Interval::D1,
        Interval::W1,
    ];

    pub fn secs(self) -> i64 {
        match self {
            Interval::M1 => 60,
            Interval::M5 => 300,
            Interval::M15 => 900,
            Interval::M30 => 1_800,
            Interval::H1 => 3_600,
            Interval::H4 => 14_400,
            Interval::D1 => 86_400,
            Interval::W1 => 604_800,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Interval::M1 => "1m",
            Interval::M5 => "5m",
            Interval::M15 => "15m",
            Interval::M30 => "30m",
            Interval::H1 => "1h",
            Interval::H4 => "4h",
            Interval::D1 => "1d",
            Interval::W1 => "1w",
        }
    }

    /// The start (unix seconds) of the bucket holding `ts_ms`.
    pub fn bucket_start(self, ts_ms: i64) -> i64 {
        let secs = ts_ms.div_euclid(1000);
        let origin = if self == Interval::W1 {
            FIRST_MONDAY
        } else {
            0
        };
        (secs - origin).div_euclid(self.secs()) * self.secs() + origin
    }
}

impl FromStr for Interval {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Interval::ALL
            .into_iter()
            .find(|i| i.as_str() == s)
            .ok_or_else(|| {
                format!("unknown interval {s:?}; expected one of 1m, 5m, 15m, 30m, 1h, 4h, 1d, 1w")
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_start_where_expected() {
        let cases = [
            (Interval::M1, 1_700_000_059_999, 1_700_000_040),
            (Interval::M1, 1_700_000_040_000, 1_700_000_040),
            (Interval::M5, 1_700_000_299_000, 1_700_000_100),
            (Interval::H4, 1_700_000_000_000, 1_699_992_000),
            (Interval::D1, 1_700_000_000_000, 1_699_920_000),
            // 2023-11-14 22:13:20 UTC is a Tuesday: its week starts Monday 2023-11-13 00:00.
            (Interval::W1, 1_700_000_000_000, 1_699_833_600),
            (Interval::M1, -1, -60),
        ];
        for (interval, ts_ms, start) in cases {
            assert_eq!(interval.bucket_start(ts_ms), start, "{interval:?} {ts_ms}");
        }
    }

    #[test]
    fn parses_exactly_the_listed_intervals() {
        assert_eq!("4h".parse::<Interval>(), Ok(Interval::H4));
        assert!("2h".parse::<Interval>().is_err());
        assert!("1M".parse::<Interval>().is_err());
    }
}
