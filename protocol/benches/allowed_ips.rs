//! Longest-prefix-match lookup at 10, 1,000 and 100,000 random prefixes, bulk insert, and
//! replacing one peer's prefixes in a table of many peers.
//!
//! Lookup time should stay roughly flat as the table grows: it depends on the address width,
//! not on the number of entries. So should replacing a peer's prefixes with the indexed table;
//! the full scan grows with the table.

#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use protocol::allowed_ips::{AllowedIps, IndexedAllowedIps, IpPrefix};
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

const SIZES: [usize; 3] = [10, 1_000, 100_000];
const PROBES: usize = 4096;

/// splitmix64: deterministic, dependency-free pseudo-random numbers.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn u128(&mut self) -> u128 {
        (u128::from(self.next()) << 64) | u128::from(self.next())
    }
}

/// `n` distinct random prefixes: IPv4 /16../32, IPv6 /32../128.
fn prefixes(n: usize, v6: bool, seed: u64) -> Vec<IpPrefix> {
    let mut rng = Rng(seed);
    let mut table = AllowedIps::new();
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let r = rng.next();
        let prefix = if v6 {
            let len = 32 + (r % 97) as u8;
            IpPrefix::new(IpAddr::V6(Ipv6Addr::from(rng.u128())), len)
        } else {
            let len = 16 + (r % 17) as u8;
            IpPrefix::new(IpAddr::V4(Ipv4Addr::from((r >> 32) as u32)), len)
        }
        .expect("length in range")
        .masked();
        if table.insert(prefix, ()).is_none() {
            out.push(prefix);
        }
    }
    out
}

/// Probe addresses: half inside stored prefixes (random host bits), half uniformly random.
fn probes(prefixes: &[IpPrefix], rng: &mut Rng) -> Vec<IpAddr> {
    (0..PROBES)
        .map(|i| {
            if i % 2 == 0 {
                let p = prefixes[rng.next() as usize % prefixes.len()];
                match p.addr() {
                    IpAddr::V4(a) => {
                        let host = u32::MAX.checked_shr(u32::from(p.prefix_len())).unwrap_or(0);
                        IpAddr::V4(Ipv4Addr::from(u32::from(a) | (rng.next() as u32 & host)))
                    }
                    IpAddr::V6(a) => {
                        let host = u128::MAX
                            .checked_shr(u32::from(p.prefix_len()))
                            .unwrap_or(0);
                        IpAddr::V6(Ipv6Addr::from(u128::from(a) | (rng.u128() & host)))
                    }
                }
            } else if p_is_v4(prefixes) {
                IpAddr::V4(Ipv4Addr::from(rng.next() as u32))
            } else {
                IpAddr::V6(Ipv6Addr::from(rng.u128()))
            }
        })
        .collect()
}

fn p_is_v4(prefixes: &[IpPrefix]) -> bool {
    prefixes.first().is_some_and(|p| p.is_ipv4())
}

fn lookup(c: &mut Criterion) {
    for v6 in [false, true] {
        let mut group = c.benchmark_group(if v6 { "lookup_v6" } else { "lookup_v4" });
        group.throughput(Throughput::Elements(1));
        for n in SIZES {
            let list = prefixes(n, v6, 42 + n as u64);
            let table: AllowedIps<u32> = list.iter().copied().zip(0..).collect();
            let addrs = probes(&list, &mut Rng(7));
            let v4: Vec<[u8; 4]> = addrs
                .iter()
                .filter_map(|a| match a {
                    IpAddr::V4(a) => Some(a.octets()),
                    IpAddr::V6(_) => None,
                })
                .collect();
            let v6_bytes: Vec<[u8; 16]> = addrs
                .iter()
                .filter_map(|a| match a {
                    IpAddr::V6(a) => Some(a.octets()),
                    IpAddr::V4(_) => None,
                })
                .collect();
            group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
                let mut i = 0usize;
                if v6 {
                    b.iter(|| {
                        i = (i + 1) % PROBES;
                        black_box(table.lookup_v6(black_box(v6_bytes[i])))
                    })
                } else {
                    b.iter(|| {
                        i = (i + 1) % PROBES;
                        black_box(table.lookup_v4(black_box(v4[i])))
                    })
                }
            });
        }
        group.finish();
    }
}

fn insert(c: &mut Criterion) {
    let mut group = c.benchmark_group("insert_100k");
    group.sample_size(10);
    group.throughput(Throughput::Elements(100_000));
    for v6 in [false, true] {
        let list = prefixes(100_000, v6, 1);
        group.bench_function(if v6 { "v6" } else { "v4" }, |b| {
            b.iter_with_large_drop(|| {
                let mut table = AllowedIps::new();
                for (i, p) in list.iter().enumerate() {
                    table.insert(*p, i as u32);
                }
                table
            })
        });
    }
    group.finish();
}

/// Prefixes per peer in the replace benchmark, as in bench/scale.sh.
const PER_PEER: usize = 10;

/// A peer update: remove all of one peer's prefixes and insert its new ones, in a table of
/// `peers` peers with `PER_PEER` prefixes each. `scan` is [`AllowedIps::remove_value`], which
/// walks the whole table; `indexed` is [`IndexedAllowedIps::remove_value`].
fn replace_peer(c: &mut Criterion) {
    let mut group = c.benchmark_group("replace_peer");
    for peers in [1_000usize, 10_000] {
        let list = prefixes(peers * PER_PEER, false, 3);
        let owner = |i: usize| (i / PER_PEER) as u32;
        let mut scan: AllowedIps<u32> = list
            .iter()
            .enumerate()
            .map(|(i, p)| (*p, owner(i)))
            .collect();
        let mut indexed = IndexedAllowedIps::new();
        for (i, p) in list.iter().enumerate() {
            indexed.insert(*p, owner(i));
        }
        let mut peer = 0usize;
        group.bench_with_input(BenchmarkId::new("scan", peers), &peers, |b, _| {
            b.iter(|| {
                peer = (peer + 7919) % peers;
                let id = peer as u32;
                scan.remove_value(&id);
                for p in &list[peer * PER_PEER..(peer + 1) * PER_PEER] {
                    scan.insert(*p, id);
                }
            })
        });
        group.bench_with_input(BenchmarkId::new("indexed", peers), &peers, |b, _| {
            b.iter(|| {
                peer = (peer + 7919) % peers;
                let id = peer as u32;
                black_box(indexed.remove_value(&id));
                for p in &list[peer * PER_PEER..(peer + 1) * PER_PEER] {
                    indexed.insert(*p, id);
                }
            })
        });
    }
    group.finish();
}

criterion_group!(benches, lookup, insert, replace_peer);
criterion_main!(benches);
