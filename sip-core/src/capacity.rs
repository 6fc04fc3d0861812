//! Giving back the capacity of a table after a burst.
//!
//! A `HashMap`, `VecDeque` or `BinaryHeap` keeps the capacity of its largest size: a burst of
//! a thousand calls leaves the tables of calls and transactions sized for a thousand, kilobytes
//! per entry, for the life of the process, and every busier burst raises that for good.
//! [`give_back`] shrinks a table that has become mostly empty: checked after removals, it
//! costs a comparison, and a shrink (a rehash of what is left) only when the table is under a
//! quarter full, to twice what it holds, so the shrinks of a table emptying cost O(1) per
//! removal and a table that fills again does not grow and shrink at every entry.
//!
//! ```
//! use std::collections::HashMap;
//! use tincan_sip::capacity::give_back;
//!
//! let mut calls: HashMap<u64, [u8; 256]> = (0..10_000).map(|i| (i, [0; 256])).collect();
//! calls.retain(|id, _| *id < 10);
//! give_back(&mut calls, 0);
//! assert!(calls.capacity() < 100);
//! ```

use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::hash::{BuildHasher, Hash};

/// Below this capacity a table is left alone: small tables cost little and would only churn.
pub const SMALL: usize = 64;

/// A table that can hand back capacity it does not use.
pub trait Shrink {
    /// Entries held.
    fn held(&self) -> usize;
    /// Entries it has room for.
    fn room(&self) -> usize;
    /// Shrinks to room for at least `min` entries.
    fn shrink(&mut self, min: usize);
}

impl<K: Eq + Hash, V, S: BuildHasher> Shrink for HashMap<K, V, S> {
    fn held(&self) -> usize {
        self.len()
    }
    fn room(&self) -> usize {
        self.capacity()
    }
    fn shrink(&mut self, min: usize) {
        self.shrink_to(min);
    }
}

impl<T> Shrink for VecDeque<T> {
    fn held(&self) -> usize {
        self.len()
    }
    fn room(&self) -> usize {
        self.capacity()
    }
    fn shrink(&mut self, min: usize) {
        self.shrink_to(min);
    }
}

impl<T: Ord> Shrink for BinaryHeap<T> {
    fn held(&self) -> usize {
        self.len()
    }
    fn room(&self) -> usize {
        self.capacity()
    }
    fn shrink(&mut self, min: usize) {
        self.shrink_to(min);
    }
}

/// Shrinks `table` to twice what it holds (never below `floor`, its working size) when it is
/// larger than [`SMALL`] and `floor` and less than a quarter full.
pub fn give_back(table: &mut impl Shrink, floor: usize) {
    let (held, room) = (table.held(), table.room());
    if room > floor.max(SMALL) && held.saturating_mul(4) < room {
        table.shrink((held * 2).max(floor));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_under_a_quarter_full_shrinks_to_twice_its_size() {
        let mut m: HashMap<u32, u32> = (0..4096).map(|i| (i, i)).collect();
        m.retain(|k, _| *k < 100);
        give_back(&mut m, 0);
        assert!(
            m.capacity() >= 200 && m.capacity() < 512,
            "{}",
            m.capacity()
        );
        // Half full now: left alone. (`retain` itself may lower `capacity()`, which counts
        // the slots its removals leave unusable until a rehash, so `before` is read after it.)
        m.retain(|k, _| *k < 90);
        let before = m.capacity();
        give_back(&mut m, 0);
        assert_eq!(m.capacity(), before);
    }

    #[test]
    fn a_table_keeps_its_working_size_and_small_tables_are_left_alone() {
        let mut q: VecDeque<u8> = VecDeque::with_capacity(1000);
        give_back(&mut q, 1000);
        assert!(q.capacity() >= 1000);
        let mut h: BinaryHeap<u8> = BinaryHeap::with_capacity(SMALL);
        give_back(&mut h, 0);
        assert!(h.capacity() >= SMALL);
        let mut q: VecDeque<u8> = VecDeque::with_capacity(10_000);
        q.push_back(1);
        give_back(&mut q, 100);
        assert!(
            q.capacity() >= 100 && q.capacity() < 1000,
            "{}",
            q.capacity()
        );
    }
}
