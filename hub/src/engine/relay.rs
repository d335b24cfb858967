//! Relay channels: the hub's numbers for pairs of registered peers, and the routing snapshot
//! the I/O layer forwards relay frames with (`protocol::hub::relay`).
//!
//! Channels are control state, changed under the hub's lock by `RelayOpen` and by
//! registrations coming, moving and going. Frames are data: the I/O layer looks each one up in
//! an immutable [`Routes`] snapshot, rebuilt only when a channel or an end's origin changed,
//! so forwarding takes no lock shared between clients. Each client's byte budget lives in
//! its own [`Budget`], kept across snapshots.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use blake2::{Blake2s256, Digest};
use parking_lot::Mutex;

use super::{Key, Origin};

/// Most channels one peer may be an end of: a peer relays to this many others at once at
/// most (bounds the table at `max_registrations` × this / 2).
pub const MAX_CHANNELS_PER_PEER: usize = 64;

/// A client's relay byte budget: a token bucket in bytes.
#[derive(Debug)]
pub struct Budget {
    state: Mutex<(f64, Instant)>,
    burst: f64,
    per_sec: f64,
}

impl Budget {
    fn new(burst: u64, per_sec: u64, now: Instant) -> Self {
        Budget {
            state: Mutex::new((burst as f64, now)),
            burst: burst as f64,
            per_sec: per_sec as f64,
        }
    }

    /// Takes `bytes` if the budget has them.
    pub fn take(&self, bytes: usize, now: Instant) -> bool {
        let mut s = self.state.lock();
        let dt = now.saturating_duration_since(s.1).as_secs_f64();
        s.0 = (s.0 + dt * self.per_sec).min(self.burst);
        s.1 = now;
        if s.0 >= bytes as f64 {
            s.0 -= bytes as f64;
            true
        } else {
            false
        }
    }
}

/// One channel as the data path sees it: its two ends and their budgets.
#[derive(Debug, Clone)]
pub struct Route {
    /// Where each end is registered.
    pub ends: [Origin; 2],
    /// What each end may send.
    pub budgets: [Arc<Budget>; 2],
}

impl Route {
    /// For a frame from `from`: the other end, and the sender's budget. `None` when `from` is
    /// neither end (a stranger, or an end that has moved).
    pub fn forward(&self, from: &Origin) -> Option<(Origin, &Budget)> {
        if self.ends[0] == *from {
            Some((self.ends[1], &self.budgets[0]))
        } else if self.ends[1] == *from {
            Some((self.ends[0], &self.budgets[1]))
        } else {
            None
        }
    }
}

/// The routing snapshot: channel → route.
pub type Routes = HashMap<u32, Route>;

/// The channel table (control state).
#[derive(Debug)]
pub struct Channels {
    by_id: HashMap<u32, [Key; 2]>,
    by_pair: HashMap<[Key; 2], u32>,
    per_peer: HashMap<Key, usize>,
    budgets: HashMap<Key, Arc<Budget>>,
    id_secret: [u8; 32],
    counter: u64,
    dirty: bool,
}

fn pair(a: Key, b: Key) -> [Key; 2] {
    if a <= b {
        [a, b]
    } else {
        [b, a]
    }
}

impl Channels {
    /// An empty table; `id_secret` keys channel numbers so they cannot be guessed (they are
    /// checked against the sender's origin anyway; this only keeps them meaningless).
    pub fn new(id_secret: [u8; 32]) -> Self {
        Channels {
            by_id: HashMap::new(),
            by_pair: HashMap::new(),
            per_peer: HashMap::new(),
            budgets: HashMap::new(),
            id_secret,
            counter: 0,
            dirty: true,
        }
    }

    /// Channels open.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether no channel is open.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// The channel between `a` and `b`, opened if need be; `None` when either end already
    /// has [`MAX_CHANNELS_PER_PEER`].
    pub fn open(&mut self, a: Key, b: Key) -> Option<u32> {
        let p = pair(a, b);
        if let Some(&id) = self.by_pair.get(&p) {
            return Some(id);
        }
        if p.iter()
            .any(|k| self.per_peer.get(k).copied().unwrap_or(0) >= MAX_CHANNELS_PER_PEER)
        {
            return None;
        }
        let id = loop {
            self.counter += 1;
            let mut h = Blake2s256::new();
            h.update(b"vpnhub relay channel v1");
            h.update(self.id_secret);
            h.update(self.counter.to_be_bytes());
            let d = h.finalize();
            let id = u32::from_be_bytes([d[0], d[1], d[2], d[3]]);
            if id != 0 && !self.by_id.contains_key(&id) {
                break id;
            }
        };
        self.by_id.insert(id, p);
        self.by_pair.insert(p, id);
        for k in p {
            *self.per_peer.entry(k).or_insert(0) += 1;
        }
        self.dirty = true;
        Some(id)
    }

    /// Something that routes depend on changed (a registration came, moved or went).
    pub fn touch(&mut self) {
        self.dirty = true;
    }

    /// A new snapshot if anything changed since the last one: channels whose ends are both
    /// registered (`origin_of`), the others closed. Budgets are per key and survive.
    pub fn rebuild(
        &mut self,
        origin_of: impl Fn(&Key) -> Option<Origin>,
        burst: u64,
        per_sec: u64,
        now: Instant,
    ) -> Option<Routes> {
        if !self.dirty {
            return None;
        }
        self.dirty = false;
        let mut routes = Routes::with_capacity(self.by_id.len());
        let mut closed = Vec::new();
        for (&id, keys) in &self.by_id {
            match (origin_of(&keys[0]), origin_of(&keys[1])) {
                (Some(a), Some(b)) => {
                    let budgets = keys.map(|k| {
                        self.budgets
                            .entry(k)
                            .or_insert_with(|| Arc::new(Budget::new(burst, per_sec, now)))
                            .clone()
                    });
                    routes.insert(
                        id,
                        Route {
                            ends: [a, b],
                            budgets,
                        },
                    );
                }
                _ => closed.push(id),
            }
        }
        for id in closed {
            if let Some(p) = self.by_id.remove(&id) {
                self.by_pair.remove(&p);
                for k in p {
                    if let Some(n) = self.per_peer.get_mut(&k) {
                        *n -= 1;
                        if *n == 0 {
                            self.per_peer.remove(&k);
                            self.budgets.remove(&k);
                        }
                    }
                }
            }
        }
        Some(routes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Transport;

    fn origin(port: u16) -> Origin {
        Origin {
            transport: Transport::Udp(0),
            addr: ([192, 0, 2, 1], port).into(),
        }
    }

    #[test]
    fn a_pair_has_one_channel_and_routes_follow_registrations() {
        let t0 = Instant::now();
        let mut c = Channels::new([9; 32]);
        let (a, b, x) = ([1; 32], [2; 32], [3; 32]);
        let id = c.open(a, b).unwrap();
        assert_eq!(c.open(b, a), Some(id), "either end opens the same channel");
        let reg = |k: &Key| match k[0] {
            1 => Some(origin(1)),
            2 => Some(origin(2)),
            _ => None,
        };
        let routes = c.rebuild(reg, 1000, 1000, t0).unwrap();
        assert!(c.rebuild(reg, 1000, 1000, t0).is_none(), "nothing changed");
        let r = &routes[&id];
        assert_eq!(r.forward(&origin(1)).unwrap().0, origin(2));
        assert_eq!(r.forward(&origin(2)).unwrap().0, origin(1));
        assert!(r.forward(&origin(3)).is_none(), "a stranger is no end");
        // An end that is not registered closes the channel.
        let id2 = c.open(a, x).unwrap();
        let routes = c.rebuild(reg, 1000, 1000, t0).unwrap();
        assert!(!routes.contains_key(&id2));
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn channels_per_peer_are_bounded_and_budgets_limit_bytes() {
        let t0 = Instant::now();
        let mut c = Channels::new([9; 32]);
        for i in 0..MAX_CHANNELS_PER_PEER {
            let mut k = [0u8; 32];
            k[..8].copy_from_slice(&(i as u64 + 10).to_be_bytes());
            assert!(c.open([1; 32], k).is_some());
        }
        assert!(c.open([1; 32], [2; 32]).is_none());
        let b = Budget::new(3000, 1000, t0);
        assert!(b.take(1500, t0) && b.take(1500, t0));
        assert!(!b.take(1, t0), "burst spent");
        assert!(b.take(1000, t0 + std::time::Duration::from_secs(1)));
    }
}
