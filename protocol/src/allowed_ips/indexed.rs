//! [`IndexedAllowedIps`]: the allowed-IPs table plus, for each value, the prefixes mapped to it.
//!
//! [`AllowedIps::remove_value`] has to walk every node to find one peer's prefixes, so a
//! reload that changes every one of N peers costs O(N x table size), all of it under the
//! write lock that packet lookups wait on. Keeping each value's prefixes beside the table
//! makes removing them cost only their number.
//!
//! Each value's list is a plain `Vec` (a set per peer took twice the memory at 10,000
//! peers). A prefix that another value takes over, or that is removed on its own, stays in
//! the old list as a stale entry rather than being searched for: removal checks that the
//! table still maps each listed prefix to the value. A count of live entries bounds the
//! waste: a list that grows to more than twice, or shrinks below a quarter of, the
//! prefixes it needs is compacted (amortised O(1) per change).

use super::{AllowedIps, IpPrefix};
use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::net::IpAddr;

/// Lists shorter than this are never compacted: scanning them costs less than the bookkeeping.
const COMPACT_MIN: usize = 16;

/// The prefixes one value holds.
#[derive(Clone, Debug, Default)]
struct Owned {
    /// Every prefix the table maps to the value, possibly with stale entries (prefixes now
    /// mapped to another value or to none) and repeats.
    prefixes: Vec<IpPrefix>,
    /// How many prefixes the table maps to the value; never 0 (the entry goes instead).
    live: usize,
}

/// An [`AllowedIps`] table that also knows which prefixes each value holds, so that
/// [`IndexedAllowedIps::remove_value`] touches only that value's prefixes.
///
/// Values are compared with `Eq` and `Hash` (for peers: by identity).
#[derive(Clone)]
pub struct IndexedAllowedIps<T> {
    table: AllowedIps<T>,
    by_value: HashMap<T, Owned>,
}

impl<T> Default for IndexedAllowedIps<T> {
    fn default() -> Self {
        IndexedAllowedIps {
            table: AllowedIps::new(),
            by_value: HashMap::new(),
        }
    }
}

impl<T: Clone + Eq + Hash> IndexedAllowedIps<T> {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Maps `prefix` (host bits cleared) to `value`, as [`AllowedIps::insert`]; returns the
    /// value it replaces.
    pub fn insert(&mut self, prefix: IpPrefix, value: T) -> Option<T> {
        let prefix = prefix.masked();
        let old = self.table.insert(prefix, value.clone());
        if old.as_ref() == Some(&value) {
            return old;
        }
        if let Some(previous) = &old {
            self.forget_one(previous);
        }
        let owned = self.by_value.entry(value.clone()).or_default();
        owned.prefixes.push(prefix);
        owned.live += 1;
        if owned.prefixes.len() >= COMPACT_MIN && owned.prefixes.len() > 2 * owned.live {
            self.compact(&value);
        }
        old
    }

    /// Removes every prefix of `value`, then maps each of `prefixes` to it: what a peer update
    /// does. Costs the number of old and new prefixes, not the size of the table.
    pub fn replace_value(&mut self, value: T, prefixes: &[IpPrefix]) {
        self.remove_value(&value);
        if prefixes.is_empty() {
            return;
        }
        // The exact size up front: a list grown by doubling holds up to twice what it needs.
        self.by_value
            .entry(value.clone())
            .or_default()
            .prefixes
            .reserve_exact(prefixes.len());
        for prefix in prefixes {
            self.insert(*prefix, value.clone());
        }
    }

    /// Removes exactly `prefix` (host bits ignored) and returns its value.
    pub fn remove(&mut self, prefix: &IpPrefix) -> Option<T> {
        let old = self.table.remove(prefix)?;
        self.forget_one(&old);
        Some(old)
    }

    /// Removes every prefix mapped to `value` and returns how many there were. Costs the
    /// number of prefixes listed for the value, not the size of the table.
    pub fn remove_value(&mut self, value: &T) -> usize {
        let Some(owned) = self.by_value.remove(value) else {
            return 0;
        };
        let removed = owned
            .prefixes
            .iter()
            .filter(|p| self.table.remove_if(p, |v| v == value).is_some())
            .count();
        debug_assert_eq!(removed, owned.live, "index out of step with the table");
        removed
    }

    /// One prefix of `value` left the table or went to another value.
    fn forget_one(&mut self, value: &T) {
        let Some(owned) = self.by_value.get_mut(value) else {
            return;
        };
        owned.live -= 1;
        if owned.live == 0 {
            self.by_value.remove(value);
        } else if owned.prefixes.len() >= COMPACT_MIN && owned.prefixes.len() > 4 * owned.live {
            // Losing prefixes does not shorten the list, so it is bounded here too; after a
            // compaction it takes as many losses as were left to come back.
            self.compact(value);
        }
    }

    /// Drops the stale entries and repeats from `value`'s list.
    fn compact(&mut self, value: &T) {
        let Some(owned) = self.by_value.get_mut(value) else {
            return;
        };
        let table = &self.table;
        owned.prefixes.retain(|p| table.get(p) == Some(value));
        owned.prefixes.sort_unstable();
        owned.prefixes.dedup();
        owned.prefixes.shrink_to_fit();
        debug_assert_eq!(owned.prefixes.len(), owned.live, "index out of step");
    }
}

impl<T> IndexedAllowedIps<T> {
    /// The table itself, for lookups and listing.
    pub fn table(&self) -> &AllowedIps<T> {
        &self.table
    }

    /// [`AllowedIps::lookup`].
    #[inline]
    pub fn lookup(&self, addr: IpAddr) -> Option<&T> {
        self.table.lookup(addr)
    }

    /// [`AllowedIps::lookup_v4`].
    #[inline]
    pub fn lookup_v4(&self, addr: [u8; 4]) -> Option<&T> {
        self.table.lookup_v4(addr)
    }

    /// [`AllowedIps::lookup_v6`].
    #[inline]
    pub fn lookup_v6(&self, addr: [u8; 16]) -> Option<&T> {
        self.table.lookup_v6(addr)
    }

    /// The number of prefixes stored.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether no prefix is stored.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// The number of distinct values holding at least one prefix.
    pub fn values(&self) -> usize {
        self.by_value.len()
    }
}

impl<T: fmt::Debug> fmt::Debug for IndexedAllowedIps<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.table.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn p(s: &str) -> IpPrefix {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    impl<T: Clone + Eq + Hash + fmt::Debug> IndexedAllowedIps<T> {
        /// Checks that each value's list holds every prefix the table maps to it, that the
        /// live counts are right, and that compaction bounds the lists.
        fn check(&self) {
            let mut from_table: HashMap<T, Vec<IpPrefix>> = HashMap::new();
            for (prefix, value) in self.table.iter() {
                from_table.entry(value.clone()).or_default().push(prefix);
            }
            assert_eq!(
                self.by_value.len(),
                from_table.len(),
                "values without prefixes"
            );
            for (value, prefixes) in &from_table {
                let owned = &self.by_value[value];
                assert_eq!(owned.live, prefixes.len(), "live count of {value:?}");
                for p in prefixes {
                    assert!(owned.prefixes.contains(p), "{p} missing from {value:?}");
                }
                assert!(
                    owned.prefixes.len() < COMPACT_MIN || owned.prefixes.len() <= 4 * owned.live,
                    "list of {value:?} not compacted: {} entries for {} live",
                    owned.prefixes.len(),
                    owned.live
                );
            }
            self.table.check();
        }

        fn listed(&self, value: &T) -> usize {
            self.by_value.get(value).map_or(0, |o| o.prefixes.len())
        }
    }

    #[test]
    fn remove_value_takes_only_that_values_prefixes() {
        let mut t = IndexedAllowedIps::new();
        t.insert(p("10.0.0.0/24"), "alice");
        t.insert(p("10.0.1.0/24"), "bob");
        t.insert(p("10.0.0.0/16"), "carol");
        t.insert(p("fd00::/64"), "alice");
        t.insert(p("fd00::1/128"), "bob");
        assert_eq!(t.values(), 3);
        assert_eq!(t.remove_value(&"alice"), 2);
        assert_eq!(t.len(), 3);
        assert_eq!(t.lookup(ip("10.0.0.1")), Some(&"carol"));
        assert_eq!(t.lookup(ip("fd00::2")), None);
        assert_eq!(t.lookup_v6(ip6("fd00::1")), Some(&"bob"));
        assert_eq!(t.remove_value(&"nobody"), 0);
        assert_eq!(t.remove_value(&"alice"), 0);
        t.check();
        assert_eq!(t.remove_value(&"bob"), 2);
        assert_eq!(t.remove_value(&"carol"), 1);
        assert!(t.is_empty());
        assert_eq!(t.values(), 0);
        t.check();
    }

    fn ip6(s: &str) -> [u8; 16] {
        match ip(s) {
            IpAddr::V6(a) => a.octets(),
            IpAddr::V4(_) => unreachable!(),
        }
    }

    #[test]
    fn a_prefix_taken_by_another_value_stays_with_it() {
        // A reload that moves 10.0.0.0/24 from alice to bob may update bob first: alice's
        // removal afterwards must not take bob's prefix with it.
        let mut t = IndexedAllowedIps::new();
        t.insert(p("10.0.0.0/24"), "alice");
        t.insert(p("10.9.0.0/16"), "alice");
        assert_eq!(t.insert(p("10.0.0.7/24"), "bob"), Some("alice"));
        t.check();
        assert_eq!(t.remove_value(&"alice"), 1);
        assert_eq!(t.lookup_v4([10, 0, 0, 1]), Some(&"bob"));
        assert_eq!(t.lookup_v4([10, 9, 0, 1]), None);
        // Inserting the same mapping again changes nothing.
        assert_eq!(t.insert(p("10.0.0.0/24"), "bob"), Some("bob"));
        assert_eq!(t.listed(&"bob"), 1);
        // Host bits are ignored on removal as in the table.
        assert_eq!(t.remove(&p("10.0.0.9/24")), Some("bob"));
        assert_eq!(t.values(), 0);
        assert_eq!(t.remove(&p("10.0.0.0/24")), None);
        t.check();
    }

    #[test]
    fn replace_value_swaps_a_values_prefixes() {
        let mut t = IndexedAllowedIps::new();
        t.replace_value(
            "alice",
            &[p("10.0.0.0/24"), p("fd00::/64"), p("10.0.0.0/24")],
        );
        t.replace_value("bob", &[p("10.1.0.0/24")]);
        assert_eq!(t.len(), 2 + 1);
        t.check();
        t.replace_value("alice", &[p("10.2.0.0/24")]);
        assert_eq!(t.lookup(ip("10.0.0.1")), None);
        assert_eq!(t.lookup(ip("10.2.0.1")), Some(&"alice"));
        assert_eq!(t.lookup(ip("10.1.0.1")), Some(&"bob"));
        assert_eq!(t.listed(&"alice"), 1);
        t.replace_value("alice", &[]);
        assert_eq!(t.values(), 1);
        t.check();
    }

    #[test]
    fn stale_entries_are_compacted() {
        // Two values taking the same prefixes from each other, many times over: the lists
        // must not grow with the number of moves.
        let mut t = IndexedAllowedIps::new();
        let prefixes: Vec<IpPrefix> = (0..40u8)
            .map(|i| IpPrefix::new(IpAddr::from([10, 0, i, 0]), 24).unwrap())
            .collect();
        for round in 0..50 {
            let owner = if round % 2 == 0 { "alice" } else { "bob" };
            for p in &prefixes[..20 + round % 20] {
                t.insert(*p, owner);
            }
            t.check();
        }
        for p in &prefixes {
            t.remove(p);
        }
        assert_eq!(t.values(), 0);
        t.check();
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(IpPrefix, u8),
        Remove(IpPrefix),
        RemoveValue(u8),
        /// What a peer update does: drop all of a value's prefixes, then insert new ones.
        Replace(u8, Vec<IpPrefix>),
    }

    /// Prefixes drawn from a small space so values collide, nest and steal from each other.
    fn arb_prefix() -> impl Strategy<Value = IpPrefix> {
        prop_oneof![
            (0u8..4, any::<u8>(), 8u8..=32).prop_map(|(a, b, len)| {
                IpPrefix::new(IpAddr::from([10, a, b, 1]), len).unwrap()
            }),
            (0u16..4, 0u16..16, 48u8..=128).prop_map(|(a, b, len)| {
                IpPrefix::new(IpAddr::from([0xfd00, a, 0, 0, 0, 0, 0, b]), len).unwrap()
            }),
        ]
    }

    fn arb_op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (arb_prefix(), 0u8..6).prop_map(|(p, v)| Op::Insert(p, v)),
            2 => arb_prefix().prop_map(Op::Remove),
            2 => (0u8..6).prop_map(Op::RemoveValue),
            2 => (0u8..6, prop::collection::vec(arb_prefix(), 0..6))
                .prop_map(|(v, ps)| Op::Replace(v, ps)),
        ]
    }

    proptest! {
        /// The indexed removal leaves the same table as the full scan it replaces
        /// ([`AllowedIps::remove_value`]), whatever happened before.
        #[test]
        fn indexed_removal_equals_full_scan(ops in prop::collection::vec(arb_op(), 0..120)) {
            let mut indexed = IndexedAllowedIps::new();
            let mut scanned = AllowedIps::new();
            for op in ops {
                match op {
                    Op::Insert(p, v) => {
                        prop_assert_eq!(indexed.insert(p, v), scanned.insert(p, v));
                    }
                    Op::Remove(p) => prop_assert_eq!(indexed.remove(&p), scanned.remove(&p)),
                    Op::RemoveValue(v) => {
                        let before = scanned.len();
                        scanned.remove_value(&v);
                        prop_assert_eq!(indexed.remove_value(&v), before - scanned.len());
                    }
                    Op::Replace(v, ps) => {
                        indexed.replace_value(v, &ps);
                        scanned.remove_value(&v);
                        for p in ps {
                            scanned.insert(p, v);
                        }
                    }
                }
                let a: Vec<_> = indexed.table().iter().collect();
                let b: Vec<_> = scanned.iter().collect();
                prop_assert_eq!(a, b);
                indexed.check();
            }
        }
    }
}
