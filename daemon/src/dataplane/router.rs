//! Routing state the data plane reads per packet: peers by public key, by receiver index and
//! by allowed IP.

use crate::dataplane::peer_handle::PeerHandle;
use parking_lot::RwLock;
use protocol::allowed_ips::{IndexedAllowedIps, IpPrefix};
use protocol::keys::PublicKey;
use protocol::noise::peer::IndexRegistry;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Weak};

/// A peer handle compared and hashed by identity, for the allowed-IPs table.
#[derive(Clone, Debug)]
pub struct PeerRef(pub Arc<PeerHandle>);

impl PartialEq for PeerRef {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for PeerRef {}

impl Hash for PeerRef {
    fn hash<H: Hasher>(&self, state: &mut H) {
        std::ptr::hash(Arc::as_ptr(&self.0), state);
    }
}

/// Receiver index → peer. Shared by every peer's [`IndexRegistry`].
#[derive(Default, Debug)]
pub struct IndexMap {
    map: RwLock<HashMap<u32, Weak<PeerHandle>>>,
}

impl IndexMap {
    /// The live peer holding `index`.
    pub fn get(&self, index: u32) -> Option<Arc<PeerHandle>> {
        self.map.read().get(&index).and_then(Weak::upgrade)
    }
    /// Number of indices in use.
    pub fn len(&self) -> usize {
        self.map.read().len()
    }
    /// Whether no index is in use.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The [`IndexRegistry`] given to one peer: claims land in the shared map pointing back at
/// that peer's handle.
pub struct PeerIndexRegistry {
    map: Arc<IndexMap>,
    handle: Weak<PeerHandle>,
}

impl PeerIndexRegistry {
    /// A registry for the handle being built.
    pub fn new(map: Arc<IndexMap>, handle: Weak<PeerHandle>) -> Self {
        PeerIndexRegistry { map, handle }
    }
}

impl IndexRegistry for PeerIndexRegistry {
    fn claim(&self, index: u32) -> bool {
        let mut m = self.map.map.write();
        match m.get(&index) {
            // A slot left by a dropped peer can be reused.
            Some(w) if w.strong_count() > 0 => false,
            _ => {
                m.insert(index, self.handle.clone());
                true
            }
        }
    }
    fn release(&self, index: u32) {
        let mut m = self.map.map.write();
        if m.get(&index).is_some_and(|w| Weak::ptr_eq(w, &self.handle)) {
            m.remove(&index);
        }
    }
}

/// Peers by key, index and allowed IP.
#[derive(Default)]
pub struct Router {
    by_key: RwLock<HashMap<PublicKey, Arc<PeerHandle>>>,
    /// Receiver indices.
    pub indices: Arc<IndexMap>,
    /// Indexed by peer, so replacing one peer's prefixes under the write lock costs their
    /// number, not the table's size (a reload of every peer would be quadratic).
    allowed: RwLock<IndexedAllowedIps<PeerRef>>,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router")
            .field("peers", &self.by_key.read().len())
            .finish_non_exhaustive()
    }
}

impl Router {
    /// Installs (or replaces) a peer with its allowed IPs; returns the handle it replaced.
    pub fn install(
        &self,
        handle: Arc<PeerHandle>,
        allowed_ips: &[IpPrefix],
    ) -> Option<Arc<PeerHandle>> {
        let old = self
            .by_key
            .write()
            .insert(handle.public_key, handle.clone());
        let mut table = self.allowed.write();
        if let Some(old) = &old {
            table.remove_value(&PeerRef(old.clone()));
        }
        table.replace_value(PeerRef(handle), allowed_ips);
        old
    }

    /// Replaces a peer's allowed IPs.
    pub fn set_allowed_ips(&self, key: &PublicKey, allowed_ips: &[IpPrefix]) {
        let Some(h) = self.by_key.read().get(key).cloned() else {
            return;
        };
        self.allowed.write().replace_value(PeerRef(h), allowed_ips);
    }

    /// Removes a peer if `handle` is still the installed one.
    pub fn remove(&self, handle: &Arc<PeerHandle>) {
        let mut by_key = self.by_key.write();
        if by_key
            .get(&handle.public_key)
            .is_some_and(|h| Arc::ptr_eq(h, handle))
        {
            by_key.remove(&handle.public_key);
            self.allowed.write().remove_value(&PeerRef(handle.clone()));
        }
    }

    /// Removes whatever peer is installed under `key`.
    pub fn remove_key(&self, key: &PublicKey) {
        if let Some(old) = self.by_key.write().remove(key) {
            self.allowed.write().remove_value(&PeerRef(old));
        }
    }

    /// The peer with this public key.
    pub fn by_key(&self, key: &PublicKey) -> Option<Arc<PeerHandle>> {
        self.by_key.read().get(key).cloned()
    }

    /// The peer holding receiver index `index`.
    pub fn by_index(&self, index: u32) -> Option<Arc<PeerHandle>> {
        self.indices.get(index)
    }

    /// The peer whose allowed IPs cover the destination/source address in an IP header.
    pub fn by_ip(&self, ip: &[u8]) -> Option<Arc<PeerHandle>> {
        let table = self.allowed.read();
        let hit = match ip.len() {
            4 => table.lookup_v4(ip.try_into().ok()?),
            16 => table.lookup_v6(ip.try_into().ok()?),
            _ => None,
        };
        hit.map(|r| r.0.clone())
    }

    /// Every installed peer.
    pub fn peers(&self) -> Vec<Arc<PeerHandle>> {
        self.by_key.read().values().cloned().collect()
    }
}

/// Whether an IPv6 destination is link-local (fe80::/10) or multicast (ff00::/8): traffic the
/// kernel sends into any new interface by itself (MLD reports, router and neighbour
/// solicitations). Unrouted, it is counted apart from `no_route`, which then means what it says.
pub fn is_link_scoped_v6(dst: &[u8]) -> bool {
    dst.len() == 16 && (dst[0] == 0xff || (dst[0] == 0xfe && dst[1] & 0xc0 == 0x80))
}

/// Offsets of the source and destination addresses in an IP header, by version.
pub fn ip_addresses(packet: &[u8]) -> Option<(&[u8], &[u8])> {
    match packet.first()? >> 4 {
        4 if packet.len() >= 20 => Some((&packet[12..16], &packet[16..20])),
        6 if packet.len() >= 40 => Some((&packet[8..24], &packet[24..40])),
        _ => None,
    }
}

#[cfg(test)]
mod link_scope_tests {
    use super::is_link_scoped_v6;
    use std::net::Ipv6Addr;

    #[test]
    fn link_local_and_multicast_are_link_scoped() {
        let scoped = |s: &str| is_link_scoped_v6(&s.parse::<Ipv6Addr>().unwrap().octets());
        assert!(scoped("ff02::16")); // MLDv2 reports
        assert!(scoped("ff02::2")); // router solicitation
        assert!(scoped("fe80::1"));
        assert!(scoped("febf::1"));
        assert!(!scoped("fec0::1"));
        assert!(!scoped("fd10::1"));
        assert!(!scoped("2001:db8::1"));
        assert!(!is_link_scoped_v6(&[10, 0, 0, 1]));
    }
}
