//! The time arithmetic of the analytics queries: UTC day and Monday-week buckets, and the
//! split of a `[from, to)` range into whole days (read from the `closed_trade_days` rollup)
//! and at most two partial edge days (read trade by trade).

/// One UTC day in ms.
pub const DAY_MS: i64 = 86_400_000;
/// One week in ms.
pub const WEEK_MS: i64 = 7 * DAY_MS;

/// Start of the UTC day holding `ms`.
pub fn day_start(ms: i64) -> i64 {
    ms - ms.rem_euclid(DAY_MS)
}

/// Start of the UTC week (Monday 00:00) holding `ms`. Day 0 of the epoch was a Thursday,
/// three days after a Monday.
pub fn week_start(ms: i64) -> i64 {
    let day = day_start(ms);
    day - (day.div_euclid(DAY_MS) + 3).rem_euclid(7) * DAY_MS
}

/// A `[from, to)` range as the rollup reads it: `days` are the whole UTC days inside it
/// (`[start, end)` of day starts; empty when there are none) and `edges` the parts of the
/// range outside them, each a `[from, to)` range of close times (possibly empty).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Split {
    pub days: (i64, i64),
    pub edges: [(i64, i64); 2],
}

impl Split {
    /// `from` must be >= 0 and at most `to` (the caller validated both).
    pub fn new(from: i64, to: i64) -> Self {
        let first_whole = from + (DAY_MS - from.rem_euclid(DAY_MS)) % DAY_MS;
        let end_whole = day_start(to);
        if first_whole < end_whole {
            Self {
                days: (first_whole, end_whole),
                edges: [(from, first_whole), (end_whole, to)],
            }
        } else {
            Self {
                days: (0, 0),
                edges: [(from, to), (0, 0)],
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2026-11-23 is a Monday.
    const MONDAY: i64 = 1_795_392_000_000;

    #[test]
    fn weeks_start_on_monday_utc() {
        assert_eq!(week_start(0), -3 * DAY_MS);
        assert_eq!(week_start(MONDAY), MONDAY);
        assert_eq!(week_start(MONDAY - 1), MONDAY - WEEK_MS);
        assert_eq!(week_start(MONDAY + WEEK_MS - 1), MONDAY);
        assert_eq!(day_start(MONDAY + DAY_MS + 5), MONDAY + DAY_MS);
    }

    #[test]
    fn a_range_splits_into_whole_days_and_two_edges() {
        let s = Split::new(MONDAY + 5, MONDAY + 3 * DAY_MS + 7);
        assert_eq!(s.days, (MONDAY + DAY_MS, MONDAY + 3 * DAY_MS));
        assert_eq!(
            s.edges,
            [
                (MONDAY + 5, MONDAY + DAY_MS),
                (MONDAY + 3 * DAY_MS, MONDAY + 3 * DAY_MS + 7)
            ]
        );
        // Aligned ends: every day whole, empty edges.
        let s = Split::new(MONDAY, MONDAY + 2 * DAY_MS);
        assert_eq!(s.days, (MONDAY, MONDAY + 2 * DAY_MS));
        assert_eq!(
            s.edges,
            [(MONDAY, MONDAY), (MONDAY + 2 * DAY_MS, MONDAY + 2 * DAY_MS)]
        );
        // Inside one day: no whole day, the range itself is the edge.
        let s = Split::new(MONDAY + 1, MONDAY + 9);
        assert_eq!(s.days, (0, 0));
        assert_eq!(s.edges, [(MONDAY + 1, MONDAY + 9), (0, 0)]);
        // Unbounded end.
        let s = Split::new(0, i64::MAX);
        assert_eq!(s.days.0, 0);
        assert_eq!(s.edges[0], (0, 0));
    }
}
