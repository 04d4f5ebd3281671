//! Keyset cursors of the paginated history routes: the sort key of the last row of a page,
//! written as its parts joined by `_`, each 1 to 18 decimal digits (any 18 digits fit an
//! `i64`). Opaque to clients: they pass a page's `next` as `before`.

use crate::error::ApiError;

/// Most digits of each part.
const DIGITS: usize = 18;

/// A cursor of `N` non-negative whole parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor<const N: usize>(pub [i64; N]);

impl<const N: usize> Cursor<N> {
    /// Reads a cursor written by [`Cursor::encode`]; anything else is 400 `invalid_query`.
    pub fn parse(s: &str) -> Result<Self, ApiError> {
        let bad = || ApiError::bad_request("invalid_query", "`before` is not a cursor from `next`");
        let mut parts = [0i64; N];
        let mut pieces = s.split('_');
        for part in &mut parts {
            let piece = pieces.next().ok_or_else(bad)?;
            let digits = !piece.is_empty()
                && piece.len() <= DIGITS
                && piece.bytes().all(|b| b.is_ascii_digit());
            *part = digits
                .then(|| piece.parse().ok())
                .flatten()
                .ok_or_else(bad)?;
        }
        match pieces.next() {
            Some(_) => Err(bad()),
            None => Ok(Self(parts)),
        }
    }

    pub fn encode(self) -> String {
        let parts: Vec<String> = self.0.iter().map(i64::to_string).collect();
        parts.join("_")
    }

    /// Before every row: the start of the first page.
    pub fn start() -> Self {
        Self([i64::MAX; N])
    }

    /// A request's `before`: the start of the first page without one.
    pub fn before(before: Option<&str>) -> Result<Self, ApiError> {
        Ok(before
            .map(Self::parse)
            .transpose()?
            .unwrap_or_else(Self::start))
    }
}

/// A page of at most `limit` items made by `item` (each with its cursor) from `rows`, which
/// were fetched with `LIMIT limit + 1` (a row past the page means there is a next one); and
/// the cursor to pass as `before` for the next page, none on the last.
pub fn page<R, T, const N: usize>(
    rows: &[R],
    limit: u32,
    item: impl Fn(&R) -> Result<(T, Cursor<N>), ApiError>,
) -> Result<(Vec<T>, Option<String>), ApiError> {
    let limit = limit as usize;
    let mut items = Vec::with_capacity(rows.len().min(limit));
    let mut last = None;
    for row in rows.iter().take(limit) {
        let (made, cursor) = item(row)?;
        items.push(made);
        last = Some(cursor);
    }
    let next = if rows.len() > limit {
        last.map(Cursor::encode)
    } else {
        None
    };
    Ok((items, next))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_junk_is_refused() {
        let c = Cursor([1_700_000_000_000, 42, 0]);
        assert_eq!(Cursor::<3>::parse(&c.encode()).expect("cursor"), c);
        let two = Cursor([5, 7]);
        assert_eq!(Cursor::<2>::parse("5_7").expect("cursor"), two);
        for bad in [
            "",
            "12",
            "a_b",
            "1_",
            "_2",
            "1_2_3",
            "+1_2",
            "-1_2",
            "1_-2",
            "1234567890123456789_1",
        ] {
            assert!(Cursor::<2>::parse(bad).is_err(), "{bad}");
        }
        for bad in ["1_2", "1_2_3_4", "1_2_", "1__3"] {
            assert!(Cursor::<3>::parse(bad).is_err(), "{bad}");
        }
    }
}
