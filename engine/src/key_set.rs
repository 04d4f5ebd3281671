//! The ordered set behind every trigger index: `(key, id)` entries (a price key or a time)
//! that also remember their lowest and highest key.
//!
//! Nearly every tick crosses nothing, and the question it asks each set ("is any entry at or
//! beyond this key?") is then one comparison with a kept extreme instead of a walk down the
//! tree to the first or last entry. Keeping the extremes costs a comparison per insert and,
//! only when the removed entry held an extreme, one walk to the new one.

use std::collections::BTreeSet;
use std::ops::Bound;

#[derive(Debug, Clone)]
pub(crate) struct KeySet<T> {
    entries: BTreeSet<(i64, T)>,
    /// The lowest key, `i64::MAX` when empty.
    lowest: i64,
    /// The highest key, `i64::MIN` when empty.
    highest: i64,
}

impl<T> Default for KeySet<T> {
    fn default() -> Self {
        Self {
            entries: BTreeSet::new(),
            lowest: i64::MAX,
            highest: i64::MIN,
        }
    }
}

impl<T: Ord + Copy> KeySet<T> {
    pub(crate) fn insert(&mut self, key: i64, id: T) {
        self.entries.insert((key, id));
        self.lowest = self.lowest.min(key);
        self.highest = self.highest.max(key);
    }

    pub(crate) fn remove(&mut self, key: i64, id: T) {
        if !self.entries.remove(&(key, id)) {
            return;
        }
        if key == self.lowest {
            self.lowest = self.entries.first().map_or(i64::MAX, |&(k, _)| k);
        }
        if key == self.highest {
            self.highest = self.entries.last().map_or(i64::MIN, |&(k, _)| k);
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Appends the ids of entries whose key is at or above `key`, in key order. `lowest_id`
    /// is the smallest id there is (the range starts at `(key, lowest_id)`).
    pub(crate) fn at_or_above(&self, key: i64, lowest_id: T, out: &mut Vec<T>) {
        if self.highest >= key {
            let from = Bound::Included((key, lowest_id));
            out.extend(
                self.entries
                    .range((from, Bound::Unbounded))
                    .map(|&(_, id)| id),
            );
        }
    }

    /// Appends the ids of entries whose key is at or below `key`, in key order (ties in id
    /// order). `highest_id` is the largest id there is.
    pub(crate) fn at_or_below(&self, key: i64, highest_id: T, out: &mut Vec<T>) {
        if self.lowest <= key {
            let to = Bound::Included((key, highest_id));
            out.extend(
                self.entries
                    .range((Bound::Unbounded, to))
                    .map(|&(_, id)| id),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::KeySet;

    /// The kept extremes answer as a walk of the whole set would, through inserts and
    /// removals of extreme, inner, duplicate-key and absent entries.
    #[test]
    fn extremes_follow_inserts_and_removals() {
        let mut set = KeySet::default();
        let answers = |set: &KeySet<u32>, key: i64| {
            let (mut above, mut below) = (Vec::new(), Vec::new());
            set.at_or_above(key, 0, &mut above);
            set.at_or_below(key, u32::MAX, &mut below);
            (above, below)
        };
        assert_eq!(answers(&set, 0), (vec![], vec![]));
        for (key, id) in [(5, 1), (9, 2), (1, 3), (9, 4), (1, 5)] {
            set.insert(key, id);
        }
        assert_eq!(answers(&set, 9), (vec![2, 4], vec![3, 5, 1, 2, 4]));
        assert_eq!(answers(&set, 10), (vec![], vec![3, 5, 1, 2, 4]));
        assert_eq!(answers(&set, 0), (vec![3, 5, 1, 2, 4], vec![]));
        set.remove(9, 2); // one of two highest
        set.remove(7, 9); // absent
        assert_eq!(answers(&set, 9), (vec![4], vec![3, 5, 1, 4]));
        set.remove(9, 4); // the last highest: 5 is the new one
        assert_eq!(answers(&set, 6), (vec![], vec![3, 5, 1]));
        set.remove(1, 3);
        set.remove(1, 5); // the lowest gone: 5
        assert_eq!(answers(&set, 4), (vec![1], vec![]));
        set.remove(5, 1);
        assert_eq!((set.len(), answers(&set, 5)), (0, (vec![], vec![])));
    }
}
