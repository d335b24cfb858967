//! [`AllowedIps`] driven by a sequence of operations (insert, remove, exact get, longest-prefix
//! lookup, remove by value, retain, iterate, clear) and checked after each against a naive model:
//! a list of (masked prefix, value) pairs searched linearly.

use super::common::Input;
use protocol::allowed_ips::{AllowedIps, IpPrefix};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Most operations played from one input.
const MAX_OPS: usize = 512;

/// The reference: every entry in a list, host bits cleared.
#[derive(Default)]
struct Model {
    entries: Vec<(IpPrefix, u8)>,
}

impl Model {
    fn position(&self, p: &IpPrefix) -> Option<usize> {
        let m = p.masked();
        self.entries.iter().position(|(q, _)| *q == m)
    }
    fn insert(&mut self, p: IpPrefix, v: u8) -> Option<u8> {
        match self.position(&p) {
            Some(i) => Some(std::mem::replace(&mut self.entries[i].1, v)),
            None => {
                self.entries.push((p.masked(), v));
                None
            }
        }
    }
    fn remove(&mut self, p: &IpPrefix) -> Option<u8> {
        self.position(p).map(|i| self.entries.swap_remove(i).1)
    }
    fn get(&self, p: &IpPrefix) -> Option<u8> {
        self.position(p).map(|i| self.entries[i].1)
    }
    fn lookup(&self, addr: IpAddr) -> Option<(IpPrefix, u8)> {
        self.entries
            .iter()
            .filter(|(p, _)| p.contains(addr))
            .max_by_key(|(p, _)| p.prefix_len())
            .copied()
    }
    fn sorted(&self) -> Vec<(IpPrefix, u8)> {
        let mut v = self.entries.clone();
        v.sort();
        v
    }
}

/// An address from a few dense regions (so prefixes overlap) or anywhere.
fn addr(input: &mut Input<'_>) -> IpAddr {
    let sel = input.u8();
    match sel % 4 {
        0 => {
            let [a, b, c] = input.array();
            IpAddr::V4(Ipv4Addr::new(10, a, b, c))
        }
        1 => IpAddr::V4(Ipv4Addr::from(input.u32())),
        2 => {
            let low = u128::from(input.u64());
            IpAddr::V6(Ipv6Addr::from((0xfd00_u128 << 112) | low))
        }
        _ => IpAddr::V6(Ipv6Addr::from(input.u128())),
    }
}

fn prefix(input: &mut Input<'_>) -> IpPrefix {
    let a = addr(input);
    let max = if a.is_ipv4() { 32 } else { 128 };
    let len = input.u8() % (max + 1);
    IpPrefix::new(a, len).expect("length within the family's width")
}

fn check_lookup(table: &AllowedIps<u8>, model: &Model, a: IpAddr) {
    let want = model.lookup(a);
    assert_eq!(table.lookup(a).copied(), want.map(|(_, v)| v), "lookup {a}");
    assert_eq!(
        table.lookup_prefix(a).map(|(p, v)| (p, *v)),
        want,
        "lookup_prefix {a}"
    );
    let by_family = match a {
        IpAddr::V4(v4) => table.lookup_v4(v4.octets()),
        IpAddr::V6(v6) => table.lookup_v6(v6.octets()),
    };
    assert_eq!(
        by_family.copied(),
        want.map(|(_, v)| v),
        "family lookup {a}"
    );
}

/// Runs one input.
pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let mut table = AllowedIps::<u8>::new();
    let mut model = Model::default();
    for _ in 0..MAX_OPS {
        if input.is_empty() {
            break;
        }
        match input.u8() % 10 {
            0..=2 => {
                let p = prefix(&mut input);
                let v = input.u8();
                assert_eq!(table.insert(p, v), model.insert(p, v), "insert {p}");
            }
            3 => {
                let p = prefix(&mut input);
                assert_eq!(table.remove(&p), model.remove(&p), "remove {p}");
            }
            4 => {
                let p = prefix(&mut input);
                assert_eq!(table.get(&p).copied(), model.get(&p), "get {p}");
            }
            5 | 6 => {
                let a = addr(&mut input);
                check_lookup(&table, &model, a);
                // Also probe inside a stored prefix, where the interesting answers are.
                if let Some(&(p, _)) = model
                    .entries
                    .get(usize::from(input.u8()) % model.entries.len().max(1))
                {
                    check_lookup(&table, &model, p.addr());
                }
            }
            7 => {
                let v = input.u8() % 8;
                table.remove_value(&v);
                model.entries.retain(|(_, w)| *w != v);
            }
            8 => {
                let m = input.u8() % 4 + 2;
                table.retain(|_, v| v % m != 0);
                model.entries.retain(|(_, v)| v % m != 0);
            }
            _ => {
                if input.u8() == 0xff {
                    table.clear();
                    model.entries.clear();
                }
            }
        }
        assert_eq!(table.len(), model.entries.len());
        assert_eq!(table.is_empty(), model.entries.is_empty());
    }
    let iter = table.iter();
    assert_eq!(iter.len(), model.entries.len());
    let listed: Vec<(IpPrefix, u8)> = iter.map(|(p, v)| (p, *v)).collect();
    assert_eq!(listed, model.sorted(), "iteration order and contents");
    let _ = format!("{table:?}");
}

/// Nested and overlapping prefixes of both families, lookups and removals.
pub fn seeds() -> Vec<Vec<u8>> {
    let mut s = Vec::new();
    // insert 10.0.0.0/8 → 1, 10.1.0.0/16 → 2, 10.1.2.3/32 → 3
    s.extend_from_slice(&[0, 0, 0, 0, 0, 8, 1]);
    s.extend_from_slice(&[0, 0, 1, 0, 0, 16, 2]);
    s.extend_from_slice(&[0, 0, 1, 2, 3, 32, 3]);
    // fd00::/16 → 4, fd00::1/128 → 5
    s.extend_from_slice(&[1, 2, 0, 0, 0, 0, 0, 0, 0, 0, 16, 4]);
    s.extend_from_slice(&[1, 2, 1, 0, 0, 0, 0, 0, 0, 0, 128, 5]);
    // lookups inside each, then remove the /16 and look again
    s.extend_from_slice(&[5, 0, 1, 2, 4, 0]);
    s.extend_from_slice(&[5, 2, 1, 0, 0, 0, 0, 0, 0, 0, 1]);
    s.extend_from_slice(&[3, 0, 1, 0, 0, 16]);
    s.extend_from_slice(&[6, 0, 1, 9, 9, 2]);
    s.extend_from_slice(&[7, 3, 8, 0, 4]);
    let mut default_routes = Vec::new();
    default_routes.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 9]);
    default_routes.extend_from_slice(&[0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9]);
    default_routes.extend_from_slice(&[5, 1, 1, 2, 3, 4, 0, 5, 3]);
    vec![s, default_routes]
}
