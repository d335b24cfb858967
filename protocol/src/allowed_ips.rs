//! CIDR prefixes and WireGuard's cryptokey routing table.
//!
//! [`IpPrefix`] is an address with a prefix length, as written in configs (`10.0.0.0/24`,
//! `fd10::1/64`, or a bare address meaning a single host). [`AllowedIps`] maps prefixes to values
//! (normally a peer) and answers longest-prefix-match queries: outbound, "which peer does this
//! destination go to"; inbound, "is this peer allowed to use this source address".
//!
//! # Design
//!
//! Each address family has its own path-compressed binary trie over integer keys (`u32` for
//! IPv4, `u128` for IPv6). Nodes live in a `Vec` arena and refer to their two children by `u32`
//! index; removed nodes go on an intrusive free list and are reused by later inserts. Every node
//! either holds a value or branches (has two children), so a table of `n` prefixes never has
//! more than `2n - 1` live nodes, whatever the insert/remove history.
//!
//! A lookup walks at most one node per prefix length (33 for IPv4, 129 for IPv6), comparing
//! with a single XOR and leading-zero count per node, so its cost depends on the address width
//! and not on how many prefixes are stored. Lookups take `&self` and never allocate.
//!
//! [`IndexedAllowedIps`] adds an index from each value to its prefixes, for tables whose
//! values (peers) are removed and replaced as a whole.

mod indexed;

pub use indexed::IndexedAllowedIps;

use serde::de::{self, Deserializer, Visitor};
use serde::{Serialize, Serializer};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// Why a string or an (address, length) pair is not a valid [`IpPrefix`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrefixError {
    /// The part before the `/` is not an IPv4 or IPv6 address.
    #[error("invalid IP address {0:?}")]
    BadAddress(String),
    /// The part after the `/` is not a decimal number.
    #[error("invalid prefix length {0:?}: expected a decimal number of bits, like /24")]
    BadLength(String),
    /// The prefix length exceeds the address width (32 for IPv4, 128 for IPv6).
    #[error("prefix length /{len} is too large for an {family} address (at most /{max})")]
    LengthTooLarge {
        /// The length that was given.
        len: u32,
        /// The largest length the family allows.
        max: u8,
        /// `"IPv4"` or `"IPv6"`.
        family: &'static str,
    },
}

/// An IP address with a prefix length (CIDR notation), such as `10.0.0.0/24`.
///
/// The address is kept exactly as given, host bits included, because a config may use the same
/// notation for an interface address (`10.10.0.1/24`). Use [`IpPrefix::masked`] for the network
/// itself. The length is always valid for the family: at most 32 for IPv4, 128 for IPv6.
///
/// Ordering sorts IPv4 before IPv6, then by address, then by length.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IpPrefix {
    addr: IpAddr,
    len: u8,
}

fn family_max(addr: &IpAddr) -> (u8, &'static str) {
    match addr {
        IpAddr::V4(_) => (32, "IPv4"),
        IpAddr::V6(_) => (128, "IPv6"),
    }
}

impl IpPrefix {
    /// A prefix of `len` bits of `addr`; fails if `len` exceeds the family's address width.
    pub fn new(addr: IpAddr, len: u8) -> Result<Self, PrefixError> {
        let (max, family) = family_max(&addr);
        if len > max {
            return Err(PrefixError::LengthTooLarge {
                len: len.into(),
                max,
                family,
            });
        }
        Ok(IpPrefix { addr, len })
    }

    /// The single-address prefix for `addr`: `/32` for IPv4, `/128` for IPv6.
    pub fn host(addr: IpAddr) -> Self {
        let (max, _) = family_max(&addr);
        IpPrefix { addr, len: max }
    }

    /// The address as given, host bits included.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length in bits.
    pub fn prefix_len(&self) -> u8 {
        self.len
    }

    /// The address width of the family: 32 for IPv4, 128 for IPv6.
    pub fn max_prefix_len(&self) -> u8 {
        family_max(&self.addr).0
    }

    /// Whether this is an IPv4 prefix.
    pub fn is_ipv4(&self) -> bool {
        self.addr.is_ipv4()
    }

    /// Whether this is an IPv6 prefix.
    pub fn is_ipv6(&self) -> bool {
        self.addr.is_ipv6()
    }

    /// The same prefix with the host bits cleared: `10.10.0.1/24` gives `10.10.0.0/24`.
    pub fn masked(&self) -> IpPrefix {
        let addr = match self.addr {
            IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from(u32::from(a).mask(self.len))),
            IpAddr::V6(a) => IpAddr::V6(Ipv6Addr::from(u128::from(a).mask(self.len))),
        };
        IpPrefix {
            addr,
            len: self.len,
        }
    }

    /// The network this prefix denotes, i.e. the prefix with host bits cleared.
    ///
    /// The same as [`IpPrefix::masked`]; `network().addr()` is the network address.
    pub fn network(&self) -> IpPrefix {
        self.masked()
    }

    /// Whether `addr` lies inside this prefix. An address of the other family never does.
    pub fn contains(&self, addr: IpAddr) -> bool {
        match (self.addr, addr) {
            (IpAddr::V4(p), IpAddr::V4(a)) => u32::from(p).common_len(u32::from(a)) >= self.len,
            (IpAddr::V6(p), IpAddr::V6(a)) => u128::from(p).common_len(u128::from(a)) >= self.len,
            _ => false,
        }
    }

    /// Whether the two prefixes share at least one address, i.e. one contains the other.
    /// Prefixes of different families never overlap.
    pub fn overlaps(&self, other: &IpPrefix) -> bool {
        let len = self.len.min(other.len);
        match (self.addr, other.addr) {
            (IpAddr::V4(a), IpAddr::V4(b)) => u32::from(a).common_len(u32::from(b)) >= len,
            (IpAddr::V6(a), IpAddr::V6(b)) => u128::from(a).common_len(u128::from(b)) >= len,
            _ => false,
        }
    }
}

impl From<IpAddr> for IpPrefix {
    /// The single-address prefix, as [`IpPrefix::host`].
    fn from(addr: IpAddr) -> Self {
        IpPrefix::host(addr)
    }
}

impl FromStr for IpPrefix {
    type Err = PrefixError;

    /// Parses `addr/len` or a bare `addr` (a single host). Surrounding whitespace is ignored.
    fn from_str(s: &str) -> Result<Self, PrefixError> {
        let s = s.trim();
        let (addr_str, len_str) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let addr: IpAddr = addr_str
            .parse()
            .map_err(|_| PrefixError::BadAddress(addr_str.to_owned()))?;
        let Some(len_str) = len_str else {
            return Ok(IpPrefix::host(addr));
        };
        // `u32::from_str` would also accept a leading `+`; a length is plain digits.
        if len_str.is_empty() || !len_str.bytes().all(|b| b.is_ascii_digit()) {
            return Err(PrefixError::BadLength(len_str.to_owned()));
        }
        let len: u32 = len_str
            .parse()
            .map_err(|_| PrefixError::BadLength(len_str.to_owned()))?;
        let (max, family) = family_max(&addr);
        match u8::try_from(len) {
            Ok(len) if len <= max => Ok(IpPrefix { addr, len }),
            _ => Err(PrefixError::LengthTooLarge { len, max, family }),
        }
    }
}

impl fmt::Display for IpPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl fmt::Debug for IpPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IpPrefix({self})")
    }
}

impl Serialize for IpPrefix {
    /// Serializes as the string form, `addr/len`.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for IpPrefix {
    /// Deserializes from the string form accepted by [`FromStr`].
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PrefixVisitor;
        impl Visitor<'_> for PrefixVisitor {
            type Value = IpPrefix;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an IP prefix such as \"10.0.0.0/24\", \"fd00::/64\" or \"10.0.0.1\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<IpPrefix, E> {
                v.parse().map_err(E::custom)
            }
        }
        deserializer.deserialize_str(PrefixVisitor)
    }
}

/// An address as a big-endian integer key: bit 0 is the most significant bit.
trait Key: Copy + Eq {
    /// Address width in bits.
    const BITS: u8;
    /// Keep the first `len` bits, clear the rest.
    fn mask(self, len: u8) -> Self;
    /// Bit `i` counted from the most significant end, as a child index (0 or 1); `i < BITS`.
    fn bit(self, i: u8) -> usize;
    /// How many leading bits the two keys share (`BITS` if equal).
    fn common_len(self, other: Self) -> u8;
}

macro_rules! impl_key {
    ($t:ty, $bits:expr) => {
        impl Key for $t {
            const BITS: u8 = $bits;
            #[inline]
            fn mask(self, len: u8) -> Self {
                // A shift by the full width (len == 0) yields None: nothing is kept.
                let keep = <$t>::MAX
                    .checked_shl(u32::from(<Self as Key>::BITS.saturating_sub(len)))
                    .unwrap_or(0);
                self & keep
            }
            #[inline]
            fn bit(self, i: u8) -> usize {
                let shift = u32::from(<Self as Key>::BITS - 1).wrapping_sub(u32::from(i));
                (self.wrapping_shr(shift) & 1) as usize
            }
            #[inline]
            fn common_len(self, other: Self) -> u8 {
                // At most BITS (<= 128), so the cast is lossless.
                (self ^ other).leading_zeros() as u8
            }
        }
    };
}
impl_key!(u32, 32);
impl_key!(u128, 128);

/// Index of "no node".
const NIL: u32 = u32::MAX;

#[derive(Clone)]
struct Node<K, T> {
    /// The prefix bits, host bits cleared.
    key: K,
    /// Prefix length.
    len: u8,
    /// Children by the bit at position `len`; `NIL` if absent. On a free node, `children[0]`
    /// links the free list.
    children: [u32; 2],
    /// The value stored for exactly this prefix; `None` for a pure branch node or a free node.
    value: Option<T>,
}

/// Where a node index is stored: the root slot or one child slot of a node.
#[derive(Clone, Copy)]
enum Link {
    Root,
    Child(u32, usize),
}

/// A path-compressed binary trie for one address family.
///
/// Invariants: every reachable node without a value has two children; a child's length is
/// greater than its parent's and its key extends the parent's key, with bit `parent.len`
/// selecting the side.
#[derive(Clone)]
struct Trie<K, T> {
    nodes: Vec<Node<K, T>>,
    root: u32,
    /// Head of the free list of reusable slots in `nodes`.
    free: u32,
    /// Number of stored values.
    len: usize,
}

impl<K: Key, T> Trie<K, T> {
    const fn new() -> Self {
        Trie {
            nodes: Vec::new(),
            root: NIL,
            free: NIL,
            len: 0,
        }
    }

    fn clear(&mut self) {
        *self = Self::new();
    }

    fn node(&self, i: u32) -> &Node<K, T> {
        &self.nodes[i as usize]
    }

    fn node_mut(&mut self, i: u32) -> &mut Node<K, T> {
        &mut self.nodes[i as usize]
    }

    fn get_link(&self, link: Link) -> u32 {
        match link {
            Link::Root => self.root,
            Link::Child(p, side) => self.node(p).children[side],
        }
    }

    fn set_link(&mut self, link: Link, to: u32) {
        match link {
            Link::Root => self.root = to,
            Link::Child(p, side) => self.node_mut(p).children[side] = to,
        }
    }

    fn alloc(&mut self, key: K, len: u8, value: Option<T>, children: [u32; 2]) -> u32 {
        let node = Node {
            key,
            len,
            children,
            value,
        };
        if self.free != NIL {
            let i = self.free;
            let slot = self.node_mut(i);
            let next = slot.children[0];
            *slot = node;
            self.free = next;
            i
        } else {
            // At most 2n - 1 nodes for n prefixes: reaching 2^32 would take over 100 GB.
            let i = u32::try_from(self.nodes.len())
                .ok()
                .filter(|&i| i != NIL)
                .expect("allowed-ips trie exceeds 2^32 - 1 nodes");
            self.nodes.push(node);
            i
        }
    }

    fn release(&mut self, i: u32) {
        let free = self.free;
        let slot = self.node_mut(i);
        slot.value = None;
        slot.children = [free, NIL];
        self.free = i;
    }

    fn insert(&mut self, key: K, len: u8, value: T) -> Option<T> {
        let key = key.mask(len);
        let mut link = Link::Root;
        loop {
            let cur = self.get_link(link);
            if cur == NIL {
                let leaf = self.alloc(key, len, Some(value), [NIL, NIL]);
                self.set_link(link, leaf);
                self.len += 1;
                return None;
            }
            let node = self.node(cur);
            let (node_key, node_len) = (node.key, node.len);
            let common = key.common_len(node_key).min(len).min(node_len);
            if common == node_len {
                // `cur` is a prefix of the new one (or the same prefix).
                if node_len == len {
                    let old = self.node_mut(cur).value.replace(value);
                    if old.is_none() {
                        self.len += 1;
                    }
                    return old;
                }
                link = Link::Child(cur, key.bit(node_len));
                continue;
            }
            if common == len {
                // The new prefix is a proper prefix of `cur`: it goes in between.
                let mut children = [NIL, NIL];
                children[node_key.bit(len)] = cur;
                let mid = self.alloc(key, len, Some(value), children);
                self.set_link(link, mid);
            } else {
                // They diverge at bit `common`, inside both prefixes: add a branch node.
                let leaf = self.alloc(key, len, Some(value), [NIL, NIL]);
                let mut children = [NIL, NIL];
                children[key.bit(common)] = leaf;
                children[node_key.bit(common)] = cur;
                let branch = self.alloc(key.mask(common), common, None, children);
                self.set_link(link, branch);
            }
            self.len += 1;
            return None;
        }
    }

    /// The index of the node for exactly this (masked) prefix, valued or not.
    fn find(&self, key: K, len: u8) -> Option<u32> {
        let mut cur = self.root;
        loop {
            let node = self.nodes.get(cur as usize)?;
            if node.len > len || key.common_len(node.key) < node.len {
                return None;
            }
            if node.len == len {
                return Some(cur);
            }
            cur = node.children[key.bit(node.len)];
        }
    }

    fn get(&self, key: K, len: u8) -> Option<&T> {
        let i = self.find(key.mask(len), len)?;
        self.node(i).value.as_ref()
    }

    /// Longest-prefix match. Walks at most `BITS + 1` nodes and allocates nothing.
    #[inline]
    fn lookup(&self, key: K) -> Option<&Node<K, T>> {
        let mut best = None;
        let mut cur = self.root;
        // `NIL` is never a valid index, so `get` ends the walk there.
        while let Some(node) = self.nodes.get(cur as usize) {
            if key.common_len(node.key) < node.len {
                break;
            }
            if node.value.is_some() {
                best = Some(node);
            }
            if node.len >= K::BITS {
                break;
            }
            cur = node.children[key.bit(node.len)];
        }
        best
    }

    fn remove(&mut self, key: K, len: u8) -> Option<T> {
        self.remove_if(key, len, |_| true)
    }

    /// Removes the prefix if it is present and `f` accepts its value.
    fn remove_if(&mut self, key: K, len: u8, f: impl FnOnce(&T) -> bool) -> Option<T> {
        let key = key.mask(len);
        let mut parent_link = Link::Root;
        let mut link = Link::Root;
        let mut cur = self.root;
        loop {
            let node = self.nodes.get(cur as usize)?;
            if node.len > len || key.common_len(node.key) < node.len {
                return None;
            }
            if node.len == len {
                break;
            }
            parent_link = link;
            link = Link::Child(cur, key.bit(node.len));
            cur = node.children[key.bit(node.len)];
        }
        if !f(self.node(cur).value.as_ref()?) {
            return None;
        }
        let value = self.node_mut(cur).value.take()?;
        self.len -= 1;
        match self.node(cur).children {
            // Still needed as a branch point.
            [a, b] if a != NIL && b != NIL => {}
            // One child: splice it into our place.
            [a, b] if a != NIL || b != NIL => {
                let child = if a != NIL { a } else { b };
                self.set_link(link, child);
                self.release(cur);
            }
            // A leaf: unlink it, and if the parent was a pure branch node it now has one
            // child and is redundant, so splice that child into the parent's place.
            _ => {
                self.set_link(link, NIL);
                self.release(cur);
                if let Link::Child(parent, side) = link {
                    let p = self.node(parent);
                    if p.value.is_none() {
                        let sibling = p.children[1 - side];
                        self.set_link(parent_link, sibling);
                        self.release(parent);
                    }
                }
            }
        }
        if self.len == 0 {
            // Everything is free: drop the arena rather than keep a free list of it.
            self.clear();
        }
        Some(value)
    }

    fn retain(&mut self, mut f: impl FnMut(K, u8, &T) -> bool) {
        let doomed: Vec<(K, u8)> = self
            .nodes
            .iter()
            .filter(|n| n.value.as_ref().is_some_and(|v| !f(n.key, n.len, v)))
            .map(|n| (n.key, n.len))
            .collect();
        for (key, len) in doomed {
            self.remove(key, len);
        }
    }

    fn iter(&self) -> TrieIter<'_, K, T> {
        let mut stack = Vec::new();
        if self.root != NIL {
            stack.push(self.root);
        }
        TrieIter { trie: self, stack }
    }
}

/// Pre-order walk, 0-side first: yields prefixes sorted by network address, then length.
#[derive(Clone)]
struct TrieIter<'a, K, T> {
    trie: &'a Trie<K, T>,
    stack: Vec<u32>,
}

impl<'a, K: Key, T> Iterator for TrieIter<'a, K, T> {
    type Item = (K, u8, &'a T);

    fn next(&mut self) -> Option<Self::Item> {
        while let Some(i) = self.stack.pop() {
            let node = self.trie.node(i);
            for child in [node.children[1], node.children[0]] {
                if child != NIL {
                    self.stack.push(child);
                }
            }
            if let Some(v) = &node.value {
                return Some((node.key, node.len, v));
            }
        }
        None
    }
}

fn v4_prefix(key: u32, len: u8) -> IpPrefix {
    IpPrefix {
        addr: IpAddr::V4(Ipv4Addr::from(key)),
        len,
    }
}

fn v6_prefix(key: u128, len: u8) -> IpPrefix {
    IpPrefix {
        addr: IpAddr::V6(Ipv6Addr::from(key)),
        len,
    }
}

/// A longest-prefix-match table from IP prefixes to values: WireGuard's cryptokey routing.
///
/// IPv4 and IPv6 are kept apart: `::/0` never matches an IPv4 address, and an IPv4-mapped IPv6
/// address is matched only against IPv6 prefixes. Prefixes are stored masked, as `wg` does:
/// inserting `10.0.0.1/24` stores `10.0.0.0/24`.
///
/// Lookups cost O(address width), independent of the number of entries, and do not allocate.
#[derive(Clone)]
pub struct AllowedIps<T> {
    v4: Trie<u32, T>,
    v6: Trie<u128, T>,
}

impl<T> Default for AllowedIps<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> AllowedIps<T> {
    /// An empty table.
    pub const fn new() -> Self {
        AllowedIps {
            v4: Trie::new(),
            v6: Trie::new(),
        }
    }

    /// Maps `prefix` (host bits cleared) to `value`. Returns the value it replaces if that exact
    /// prefix was already present.
    ///
    /// # Panics
    ///
    /// Only if one family's table would need more than 2^32 - 1 internal nodes (billions of
    /// prefixes, far beyond available memory).
    pub fn insert(&mut self, prefix: IpPrefix, value: T) -> Option<T> {
        match prefix.addr {
            IpAddr::V4(a) => self.v4.insert(a.into(), prefix.len, value),
            IpAddr::V6(a) => self.v6.insert(a.into(), prefix.len, value),
        }
    }

    /// Removes exactly `prefix` (host bits ignored) and returns its value. Longer or shorter
    /// prefixes are untouched. Nodes that become unnecessary are freed for reuse.
    pub fn remove(&mut self, prefix: &IpPrefix) -> Option<T> {
        match prefix.addr {
            IpAddr::V4(a) => self.v4.remove(a.into(), prefix.len),
            IpAddr::V6(a) => self.v6.remove(a.into(), prefix.len),
        }
    }

    /// Removes exactly `prefix` (host bits ignored) if `f` accepts its value, and returns
    /// that value. One walk, where [`AllowedIps::get`] then [`AllowedIps::remove`] take two.
    pub fn remove_if(&mut self, prefix: &IpPrefix, f: impl FnOnce(&T) -> bool) -> Option<T> {
        match prefix.addr {
            IpAddr::V4(a) => self.v4.remove_if(a.into(), prefix.len, f),
            IpAddr::V6(a) => self.v6.remove_if(a.into(), prefix.len, f),
        }
    }

    /// Keeps only the entries for which `f` returns true, calling it once per entry in an
    /// unspecified order.
    pub fn retain(&mut self, mut f: impl FnMut(&IpPrefix, &T) -> bool) {
        self.v4.retain(|k, len, v| f(&v4_prefix(k, len), v));
        self.v6.retain(|k, len, v| f(&v6_prefix(k, len), v));
    }

    /// Removes every prefix mapped to `value` (for example all of one peer's allowed IPs).
    ///
    /// This walks the whole table; [`IndexedAllowedIps::remove_value`] touches only the
    /// value's own prefixes.
    pub fn remove_value(&mut self, value: &T)
    where
        T: PartialEq,
    {
        self.retain(|_, v| v != value);
    }

    /// The value of the longest prefix containing `addr`.
    #[inline]
    pub fn lookup(&self, addr: IpAddr) -> Option<&T> {
        match addr {
            IpAddr::V4(a) => self.lookup_v4(a.octets()),
            IpAddr::V6(a) => self.lookup_v6(a.octets()),
        }
    }

    /// [`AllowedIps::lookup`] for an IPv4 address in network byte order, as found in a packet
    /// header.
    #[inline]
    pub fn lookup_v4(&self, addr: [u8; 4]) -> Option<&T> {
        self.v4.lookup(u32::from_be_bytes(addr))?.value.as_ref()
    }

    /// [`AllowedIps::lookup`] for an IPv6 address in network byte order, as found in a packet
    /// header.
    #[inline]
    pub fn lookup_v6(&self, addr: [u8; 16]) -> Option<&T> {
        self.v6.lookup(u128::from_be_bytes(addr))?.value.as_ref()
    }

    /// The longest prefix containing `addr` (host bits cleared) and its value.
    pub fn lookup_prefix(&self, addr: IpAddr) -> Option<(IpPrefix, &T)> {
        match addr {
            IpAddr::V4(a) => {
                let n = self.v4.lookup(a.into())?;
                Some((v4_prefix(n.key, n.len), n.value.as_ref()?))
            }
            IpAddr::V6(a) => {
                let n = self.v6.lookup(a.into())?;
                Some((v6_prefix(n.key, n.len), n.value.as_ref()?))
            }
        }
    }

    /// The value stored for exactly `prefix` (host bits ignored), without longest-prefix
    /// matching.
    pub fn get(&self, prefix: &IpPrefix) -> Option<&T> {
        match prefix.addr {
            IpAddr::V4(a) => self.v4.get(a.into(), prefix.len),
            IpAddr::V6(a) => self.v6.get(a.into(), prefix.len),
        }
    }

    /// All entries, with masked prefixes: IPv4 first, each family sorted by network address and
    /// then by length (so a prefix comes before the prefixes it contains).
    pub fn iter(&self) -> Iter<'_, T> {
        Iter {
            v4: self.v4.iter(),
            v6: self.v6.iter(),
            remaining: self.len(),
        }
    }

    /// The number of prefixes stored.
    pub fn len(&self) -> usize {
        self.v4.len + self.v6.len
    }

    /// Whether no prefix is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Removes every entry and releases the memory.
    pub fn clear(&mut self) {
        self.v4.clear();
        self.v6.clear();
    }
}

impl<T: fmt::Debug> fmt::Debug for AllowedIps<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<T> FromIterator<(IpPrefix, T)> for AllowedIps<T> {
    fn from_iter<I: IntoIterator<Item = (IpPrefix, T)>>(iter: I) -> Self {
        let mut table = AllowedIps::new();
        table.extend(iter);
        table
    }
}

impl<T> Extend<(IpPrefix, T)> for AllowedIps<T> {
    fn extend<I: IntoIterator<Item = (IpPrefix, T)>>(&mut self, iter: I) {
        for (prefix, value) in iter {
            self.insert(prefix, value);
        }
    }
}

impl<'a, T> IntoIterator for &'a AllowedIps<T> {
    type Item = (IpPrefix, &'a T);
    type IntoIter = Iter<'a, T>;
    fn into_iter(self) -> Iter<'a, T> {
        self.iter()
    }
}

/// Iterator over the entries of an [`AllowedIps`], from [`AllowedIps::iter`].
#[derive(Clone)]
pub struct Iter<'a, T> {
    v4: TrieIter<'a, u32, T>,
    v6: TrieIter<'a, u128, T>,
    remaining: usize,
}

impl<'a, T> Iterator for Iter<'a, T> {
    type Item = (IpPrefix, &'a T);

    fn next(&mut self) -> Option<Self::Item> {
        let item = match self.v4.next() {
            Some((k, len, v)) => (v4_prefix(k, len), v),
            None => {
                let (k, len, v) = self.v6.next()?;
                (v6_prefix(k, len), v)
            }
        };
        self.remaining = self.remaining.saturating_sub(1);
        Some(item)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl<T> ExactSizeIterator for Iter<'_, T> {}

impl<T> std::iter::FusedIterator for Iter<'_, T> {}

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

    impl<K: Key + fmt::Debug, T> Trie<K, T> {
        /// Checks the structural invariants; returns the number of live nodes.
        fn check(&self) -> usize {
            let mut live = 0;
            let mut values = 0;
            let mut stack = vec![(self.root, None::<(K, u8, usize)>)];
            while let Some((i, parent)) = stack.pop() {
                if i == NIL {
                    continue;
                }
                live += 1;
                let n = self.node(i);
                assert!(n.len <= K::BITS);
                assert!(n.key.mask(n.len) == n.key, "host bits set in a node key");
                if let Some((pkey, plen, side)) = parent {
                    assert!(n.len > plen, "child not longer than parent");
                    assert!(n.key.mask(plen) == pkey, "child does not extend parent");
                    assert_eq!(n.key.bit(plen), side, "child on the wrong side");
                }
                match &n.value {
                    Some(_) => values += 1,
                    None => assert!(
                        n.children[0] != NIL && n.children[1] != NIL,
                        "valueless node without two children"
                    ),
                }
                if n.len == K::BITS {
                    assert_eq!(n.children, [NIL, NIL]);
                }
                for side in 0..2 {
                    stack.push((n.children[side], Some((n.key, n.len, side))));
                }
            }
            let mut free = 0;
            let mut f = self.free;
            while f != NIL {
                free += 1;
                assert!(self.node(f).value.is_none());
                f = self.node(f).children[0];
            }
            assert_eq!(values, self.len, "len does not match stored values");
            assert_eq!(live + free, self.nodes.len(), "leaked arena slots");
            if self.len > 0 {
                assert!(live < 2 * self.len, "more than 2n - 1 nodes");
            } else {
                assert_eq!(live, 0);
            }
            live
        }
    }

    impl<T> AllowedIps<T> {
        pub(super) fn check(&self) -> usize {
            self.v4.check() + self.v6.check()
        }
        fn arena_slots(&self) -> usize {
            self.v4.nodes.len() + self.v6.nodes.len()
        }
    }

    #[test]
    fn parse_and_display() {
        let a = p("10.0.0.1/24");
        assert_eq!(a.addr(), ip("10.0.0.1"));
        assert_eq!(a.prefix_len(), 24);
        assert!(a.is_ipv4() && !a.is_ipv6());
        assert_eq!(a.to_string(), "10.0.0.1/24");
        assert_eq!(p("fd10::1/64").to_string(), "fd10::1/64");
        assert_eq!(p("10.0.0.1").to_string(), "10.0.0.1/32");
        assert_eq!(p("fd10::1").to_string(), "fd10::1/128");
        assert_eq!(p(" 0.0.0.0/0 ").to_string(), "0.0.0.0/0");
        assert_eq!(p("::/0").to_string(), "::/0");
        assert_eq!(p("10.0.0.0/032").prefix_len(), 32);
        assert_eq!(format!("{:?}", p("10.0.0.0/8")), "IpPrefix(10.0.0.0/8)");
        assert_eq!(p("1.2.3.4/5").max_prefix_len(), 32);
        assert_eq!(p("::1/5").max_prefix_len(), 128);
    }

    #[test]
    fn parse_errors() {
        use PrefixError::*;
        let e = |s: &str| s.parse::<IpPrefix>().unwrap_err();
        assert_eq!(e("10.0.0/24"), BadAddress("10.0.0".into()));
        assert_eq!(e(""), BadAddress("".into()));
        assert_eq!(e("/24"), BadAddress("".into()));
        assert_eq!(e("fe80::1%eth0/64"), BadAddress("fe80::1%eth0".into()));
        assert_eq!(e("10.0.0.0/"), BadLength("".into()));
        assert_eq!(e("10.0.0.0/+8"), BadLength("+8".into()));
        assert_eq!(e("10.0.0.0/-1"), BadLength("-1".into()));
        assert_eq!(e("10.0.0.0/8/8"), BadLength("8/8".into()));
        assert_eq!(e("10.0.0.0/ 8"), BadLength(" 8".into()));
        assert_eq!(
            e("10.0.0.0/99999999999999999999"),
            BadLength("99999999999999999999".into())
        );
        assert_eq!(
            e("10.0.0.0/33"),
            LengthTooLarge {
                len: 33,
                max: 32,
                family: "IPv4"
            }
        );
        assert_eq!(
            e("::/300"),
            LengthTooLarge {
                len: 300,
                max: 128,
                family: "IPv6"
            }
        );
        assert_eq!(
            e("10.0.0.0/33").to_string(),
            "prefix length /33 is too large for an IPv4 address (at most /32)"
        );
        assert_eq!(e("nope/8").to_string(), "invalid IP address \"nope\"");
        assert_eq!(
            e("1.2.3.4/x").to_string(),
            "invalid prefix length \"x\": expected a decimal number of bits, like /24"
        );
        assert_eq!(
            IpPrefix::new(ip("::"), 129),
            Err(LengthTooLarge {
                len: 129,
                max: 128,
                family: "IPv6"
            })
        );
        assert_eq!(IpPrefix::new(ip("::"), 128), Ok(p("::/128")));
    }

    #[test]
    fn masking_contains_overlaps() {
        let a = p("10.10.0.1/24");
        assert_eq!(a.masked(), p("10.10.0.0/24"));
        assert_eq!(a.network(), p("10.10.0.0/24"));
        assert_eq!(p("1.2.3.4/0").masked(), p("0.0.0.0/0"));
        assert_eq!(p("1.2.3.4/32").masked(), p("1.2.3.4/32"));
        assert_eq!(p("fd10::1:2/112").masked(), p("fd10::1:0/112"));
        assert_eq!(p("ffff::1/0").masked(), p("::/0"));
        assert!(a.contains(ip("10.10.0.255")));
        assert!(!a.contains(ip("10.10.1.0")));
        assert!(!a.contains(ip("::ffff:10.10.0.1")));
        assert!(p("0.0.0.0/0").contains(ip("255.1.2.3")));
        assert!(!p("::/0").contains(ip("1.2.3.4")));
        assert!(p("fd00::/8").contains(ip("fdff::1")));
        assert!(a.overlaps(&p("10.0.0.0/8")));
        assert!(p("10.0.0.0/8").overlaps(&a));
        assert!(!a.overlaps(&p("10.10.1.0/24")));
        assert!(!p("0.0.0.0/0").overlaps(&p("::/0")));
        assert!(p("::/0").overlaps(&p("fd00::1/128")));
        assert_eq!(IpPrefix::from(ip("fd::1")), p("fd::1/128"));
    }

    #[test]
    fn serde_uses_string_form() {
        let v = vec![p("10.0.0.1/24"), p("fd10::/64")];
        let json = serde_json::to_string(&v).unwrap();
        assert_eq!(json, r#"["10.0.0.1/24","fd10::/64"]"#);
        let back: Vec<IpPrefix> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, v);
        let err = serde_json::from_str::<IpPrefix>(r#""10.0.0.0/40""#).unwrap_err();
        assert!(err.to_string().contains("too large"), "{err}");
        assert!(serde_json::from_str::<IpPrefix>("24").is_err());
    }

    #[test]
    fn most_specific_wins() {
        let mut t = AllowedIps::new();
        t.insert(p("10.0.0.0/8"), "a");
        t.insert(p("10.1.0.0/16"), "b");
        t.insert(p("10.1.2.0/24"), "c");
        t.insert(p("10.1.2.3/32"), "d");
        assert_eq!(t.lookup(ip("10.9.9.9")), Some(&"a"));
        assert_eq!(t.lookup(ip("10.1.9.9")), Some(&"b"));
        assert_eq!(t.lookup(ip("10.1.2.9")), Some(&"c"));
        assert_eq!(t.lookup(ip("10.1.2.3")), Some(&"d"));
        assert_eq!(t.lookup(ip("11.0.0.0")), None);
        assert_eq!(
            t.lookup_prefix(ip("10.1.2.9")),
            Some((p("10.1.2.0/24"), &"c"))
        );
        assert_eq!(t.lookup_prefix(ip("11.0.0.0")), None);
        assert_eq!(t.lookup_v4([10, 1, 2, 3]), Some(&"d"));
        assert_eq!(t.lookup_v4([10, 200, 0, 1]), Some(&"a"));
        t.check();
    }

    #[test]
    fn default_routes_and_families_apart() {
        let mut t = AllowedIps::new();
        t.insert(p("0.0.0.0/0"), 4);
        assert_eq!(t.lookup(ip("1.2.3.4")), Some(&4));
        assert_eq!(t.lookup(ip("::1")), None);
        assert_eq!(t.lookup(ip("::ffff:1.2.3.4")), None);
        t.insert(p("::/0"), 6);
        t.insert(p("fd00::/8"), 7);
        assert_eq!(t.lookup(ip("255.255.255.255")), Some(&4));
        assert_eq!(t.lookup(ip("::ffff:1.2.3.4")), Some(&6));
        assert_eq!(t.lookup(ip("fd12::1")), Some(&7));
        assert_eq!(t.lookup_v6(ip6_bytes("fe80::1")), Some(&6));
        assert_eq!(t.lookup_prefix(ip("2001:db8::1")), Some((p("::/0"), &6)));
        assert_eq!(t.len(), 3);
        assert_eq!(t.remove(&p("::/0")), Some(6));
        assert_eq!(t.lookup(ip("2001:db8::1")), None);
        assert_eq!(t.lookup(ip("1.2.3.4")), Some(&4));
        // /0 with host bits in the address is still the default route.
        assert_eq!(t.insert(p("1.2.3.4/0"), 5), Some(4));
        t.check();
    }

    fn ip6_bytes(s: &str) -> [u8; 16] {
        match ip(s) {
            IpAddr::V6(a) => a.octets(),
            IpAddr::V4(_) => unreachable!(),
        }
    }

    #[test]
    fn insert_replaces_and_masks() {
        let mut t = AllowedIps::new();
        assert_eq!(t.insert(p("10.0.0.1/24"), 1), None);
        assert_eq!(t.get(&p("10.0.0.0/24")), Some(&1));
        assert_eq!(t.get(&p("10.0.0.77/24")), Some(&1));
        assert_eq!(t.get(&p("10.0.0.0/25")), None);
        assert_eq!(t.get(&p("10.0.0.0/23")), None);
        assert_eq!(t.insert(p("10.0.0.9/24"), 2), Some(1));
        assert_eq!(t.len(), 1);
        assert_eq!(t.iter().collect::<Vec<_>>(), vec![(p("10.0.0.0/24"), &2)]);
        assert_eq!(t.insert(p("fd::1/64"), 3), None);
        assert_eq!(t.get(&p("fd::/64")), Some(&3));
        assert_eq!(t.len(), 2);
        t.check();
    }

    #[test]
    fn remove_prunes() {
        let mut t = AllowedIps::new();
        t.insert(p("10.0.0.0/8"), 1);
        t.insert(p("10.1.0.0/16"), 2);
        t.insert(p("10.2.0.0/16"), 3);
        t.insert(p("10.1.1.0/24"), 4);
        assert_eq!(t.check(), 5); // four values and one branch node for 10.0/14
                                  // Not present: a branch point, a shorter or longer prefix, another family.
        assert_eq!(t.remove(&p("10.0.0.0/14")), None);
        assert_eq!(t.remove(&p("10.0.0.0/7")), None);
        assert_eq!(t.remove(&p("10.1.1.1/32")), None);
        assert_eq!(t.remove(&p("::/0")), None);
        assert_eq!(t.len(), 4);
        // Host bits are ignored on removal too.
        assert_eq!(t.remove(&p("10.1.9.9/16")), Some(2));
        assert_eq!(t.lookup(ip("10.1.1.1")), Some(&4));
        assert_eq!(t.lookup(ip("10.1.2.1")), Some(&1));
        assert_eq!(t.check(), 4);
        // A leaf whose parent is a pure branch node takes the branch node with it.
        assert_eq!(t.remove(&p("10.1.1.0/24")), Some(4));
        assert_eq!(t.check(), 2);
        assert_eq!(t.remove(&p("10.1.1.0/24")), None);
        assert_eq!(t.remove_if(&p("10.0.0.0/8"), |v| *v == 2), None);
        assert_eq!(t.remove_if(&p("10.0.0.0/9"), |_| true), None);
        assert_eq!(t.check(), 2);
        assert_eq!(t.remove_if(&p("10.0.0.0/8"), |v| *v == 1), Some(1));
        assert_eq!(t.insert(p("10.0.0.0/8"), 1), None);
        assert_eq!(t.remove(&p("10.0.0.0/8")), Some(1));
        assert_eq!(t.lookup(ip("10.9.9.9")), None);
        assert_eq!(t.lookup(ip("10.2.9.9")), Some(&3));
        assert_eq!(t.remove(&p("10.2.0.0/16")), Some(3));
        assert!(t.is_empty());
        assert_eq!(t.check(), 0);
        assert_eq!(t.arena_slots(), 0);
    }

    #[test]
    fn remove_value_and_retain() {
        let mut t = AllowedIps::new();
        t.insert(p("10.0.0.0/24"), "alice");
        t.insert(p("10.0.1.0/24"), "bob");
        t.insert(p("10.0.0.0/16"), "carol");
        t.insert(p("fd00::/64"), "alice");
        t.insert(p("fd00::1/128"), "bob");
        t.remove_value(&"alice");
        assert_eq!(t.len(), 3);
        assert_eq!(t.lookup(ip("10.0.0.1")), Some(&"carol"));
        assert_eq!(t.lookup(ip("fd00::2")), None);
        assert_eq!(t.lookup(ip("fd00::1")), Some(&"bob"));
        t.remove_value(&"nobody");
        assert_eq!(t.len(), 3);
        t.retain(|prefix, _| prefix.is_ipv4());
        assert_eq!(
            t.iter().collect::<Vec<_>>(),
            vec![(p("10.0.0.0/16"), &"carol"), (p("10.0.1.0/24"), &"bob")]
        );
        t.check();
        t.remove_value(&"bob");
        t.remove_value(&"carol");
        assert!(t.is_empty());
        assert_eq!(t.check(), 0);
    }

    #[test]
    fn iter_is_sorted_and_clear_empties() {
        let mut t: AllowedIps<u32> = [
            (p("fd00::/8"), 1),
            (p("10.1.0.0/16"), 2),
            (p("10.0.0.0/8"), 3),
            (p("0.0.0.0/0"), 4),
            (p("192.168.0.0/16"), 5),
            (p("::/0"), 6),
        ]
        .into_iter()
        .collect();
        let it = t.iter();
        assert_eq!(it.len(), 6);
        let got: Vec<String> = it.map(|(p, v)| format!("{p}={v}")).collect();
        assert_eq!(
            got,
            [
                "0.0.0.0/0=4",
                "10.0.0.0/8=3",
                "10.1.0.0/16=2",
                "192.168.0.0/16=5",
                "::/0=6",
                "fd00::/8=1"
            ]
        );
        assert_eq!(
            format!("{:?}", AllowedIps::<u8>::from_iter([(p("1.0.0.0/8"), 1)])),
            "{IpPrefix(1.0.0.0/8): 1}"
        );
        t.clear();
        assert!(t.is_empty());
        assert_eq!(t.iter().count(), 0);
        assert_eq!(t.lookup(ip("10.0.0.1")), None);
        assert_eq!(t.arena_slots(), 0);
    }

    /// Deterministic pseudo-random numbers for the scale tests (splitmix64).
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }
    }

    #[test]
    fn scales_to_100k_and_churn_reuses_slots() {
        let mut rng = Rng(7);
        let mut t = AllowedIps::new();
        let mut prefixes = Vec::new();
        while t.len() < 100_000 {
            let r = rng.next();
            let prefix = if r & 1 == 0 {
                let len = 16 + (r >> 1) % 17;
                IpPrefix::new(IpAddr::V4(Ipv4Addr::from((r >> 32) as u32)), len as u8)
            } else {
                let len = 32 + (r >> 1) % 97;
                let addr = (u128::from(rng.next()) << 64) | u128::from(rng.next());
                IpPrefix::new(IpAddr::V6(Ipv6Addr::from(addr)), len as u8)
            }
            .unwrap();
            if t.insert(prefix, t.len() as u32).is_none() {
                prefixes.push(prefix);
            }
        }
        let live = t.check();
        let slots = t.arena_slots();
        println!(
            "100k prefixes: {live} live nodes, {slots} arena slots, node sizes {} B (v4) / {} B (v6)",
            std::mem::size_of::<Node<u32, u32>>(),
            std::mem::size_of::<Node<u128, u32>>()
        );
        for prefix in &prefixes {
            assert!(t.lookup(prefix.addr()).is_some());
        }
        // Churn: remove and re-insert a quarter, many times; the arena must not grow.
        for round in 0..20 {
            let start = (round * 25_000) % prefixes.len();
            for prefix in prefixes.iter().cycle().skip(start).take(25_000) {
                assert!(t.remove(prefix).is_some());
            }
            for prefix in prefixes.iter().cycle().skip(start).take(25_000) {
                assert!(t.insert(*prefix, 0).is_none());
            }
            assert_eq!(t.len(), prefixes.len());
            assert!(t.arena_slots() <= slots + 25_000, "arena grows with churn");
        }
        t.check();
        for prefix in &prefixes {
            assert!(t.remove(prefix).is_some());
        }
        assert!(t.is_empty());
        assert_eq!(t.arena_slots(), 0);
    }

    /// The obvious linear-scan table, as a reference.
    #[derive(Default)]
    struct Naive {
        entries: Vec<(IpPrefix, u8)>,
    }

    impl Naive {
        fn insert(&mut self, prefix: IpPrefix, value: u8) -> Option<u8> {
            let prefix = prefix.masked();
            match self.entries.iter_mut().find(|(p, _)| *p == prefix) {
                Some((_, v)) => Some(std::mem::replace(v, value)),
                None => {
                    self.entries.push((prefix, value));
                    None
                }
            }
        }
        fn remove(&mut self, prefix: &IpPrefix) -> Option<u8> {
            let prefix = prefix.masked();
            let i = self.entries.iter().position(|(p, _)| *p == prefix)?;
            Some(self.entries.remove(i).1)
        }
        fn lookup(&self, addr: IpAddr) -> Option<(IpPrefix, u8)> {
            self.entries
                .iter()
                .filter(|(p, _)| p.contains(addr))
                .max_by_key(|(p, _)| p.prefix_len())
                .copied()
        }
        fn get(&self, prefix: &IpPrefix) -> Option<u8> {
            let prefix = prefix.masked();
            self.entries.iter().find(|(p, _)| *p == prefix).map(|e| e.1)
        }
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(IpPrefix, u8),
        Remove(IpPrefix),
        RemoveValue(u8),
        RetainBelow(u8),
        Lookup(IpAddr),
        Get(IpPrefix),
    }

    /// Addresses concentrated on a few leading bit patterns so prefixes nest and collide often.
    fn arb_v4() -> impl Strategy<Value = IpAddr> {
        (
            prop::sample::select(vec![0u8, 10, 0x80, 0xc0, 0xff]),
            prop::sample::select(vec![0u8, 1, 0x80, 0xff]),
            any::<u8>(),
            any::<u8>(),
        )
            .prop_map(|(a, b, c, d)| IpAddr::V4(Ipv4Addr::new(a, b, c, d)))
    }

    fn arb_v6() -> impl Strategy<Value = IpAddr> {
        (
            prop::sample::select(vec![0u8, 0x20, 0xfd, 0xff]),
            prop::sample::select(vec![0u8, 1, 0x80]),
            prop_oneof![Just([0u8; 14]), any::<[u8; 14]>()],
        )
            .prop_map(|(a, b, rest)| {
                let mut bytes = [0u8; 16];
                bytes[0] = a;
                bytes[1] = b;
                bytes[2..].copy_from_slice(&rest);
                IpAddr::V6(Ipv6Addr::from(bytes))
            })
    }

    fn arb_addr() -> impl Strategy<Value = IpAddr> {
        prop_oneof![arb_v4(), arb_v6()]
    }

    fn arb_prefix() -> impl Strategy<Value = IpPrefix> {
        prop_oneof![
            (arb_v4(), 0u8..=32).prop_map(|(a, l)| IpPrefix::new(a, l).unwrap()),
            (arb_v6(), 0u8..=128).prop_map(|(a, l)| IpPrefix::new(a, l).unwrap()),
        ]
    }

    fn arb_op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (arb_prefix(), 0u8..8).prop_map(|(p, v)| Op::Insert(p, v)),
            2 => arb_prefix().prop_map(Op::Remove),
            1 => (0u8..8).prop_map(Op::RemoveValue),
            1 => (1u8..8).prop_map(Op::RetainBelow),
            4 => arb_addr().prop_map(Op::Lookup),
            1 => arb_prefix().prop_map(Op::Get),
        ]
    }

    proptest! {
        #[test]
        fn matches_naive_model(ops in prop::collection::vec(arb_op(), 0..200), reverse: bool) {
            let mut t = AllowedIps::new();
            let mut model = Naive::default();
            let mut probes: Vec<IpAddr> = Vec::new();
            for op in ops {
                match op {
                    Op::Insert(p, v) => {
                        probes.push(p.addr());
                        prop_assert_eq!(t.insert(p, v), model.insert(p, v));
                    }
                    Op::Remove(p) => prop_assert_eq!(t.remove(&p), model.remove(&p)),
                    Op::RemoveValue(v) => {
                        t.remove_value(&v);
                        model.entries.retain(|e| e.1 != v);
                    }
                    Op::RetainBelow(v) => {
                        t.retain(|_, x| *x < v);
                        model.entries.retain(|e| e.1 < v);
                    }
                    Op::Lookup(a) => {
                        probes.push(a);
                        let want = model.lookup(a);
                        prop_assert_eq!(t.lookup_prefix(a).map(|(p, v)| (p, *v)), want);
                        prop_assert_eq!(t.lookup(a).copied(), want.map(|e| e.1));
                    }
                    Op::Get(p) => prop_assert_eq!(t.get(&p).copied(), model.get(&p)),
                }
                prop_assert_eq!(t.len(), model.entries.len());
            }
            t.check();
            let mut sorted = model.entries.clone();
            sorted.sort();
            let listed: Vec<(IpPrefix, u8)> = t.iter().map(|(p, v)| (p, *v)).collect();
            prop_assert_eq!(listed, sorted);
            for &a in &probes {
                prop_assert_eq!(t.lookup_prefix(a).map(|(p, v)| (p, *v)), model.lookup(a));
            }

            // Remove everything, checking the structure as it shrinks.
            let mut order = model.entries.clone();
            if reverse {
                order.reverse();
            }
            for (i, (prefix, value)) in order.iter().enumerate() {
                prop_assert_eq!(t.remove(prefix), Some(*value));
                prop_assert_eq!(t.len(), order.len() - i - 1);
                if i % 8 == 0 {
                    t.check();
                }
            }
            prop_assert_eq!(t.len(), 0);
            prop_assert!(t.is_empty());
            prop_assert_eq!(t.check(), 0);
            prop_assert_eq!(t.arena_slots(), 0);
            prop_assert_eq!(t.iter().count(), 0);
            for &a in &probes {
                prop_assert_eq!(t.lookup(a), None);
            }
            for (prefix, _) in &order {
                prop_assert_eq!(t.lookup(prefix.addr()), None);
                prop_assert_eq!(t.get(prefix), None);
            }
        }
    }
}
