//! Helpers shared by the harnesses: a reader that turns fuzz bytes into values, and the fixed
//! identities and devices the handshake harnesses use.

use protocol::keys::{PrivateKey, PublicKey};
use protocol::noise::device::{Device, PeerId};
use protocol::noise::peer::{PeerConfig, PeerSettings};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Reads values off the front of the fuzz input. Past the end every read yields zeros, so any
/// input decodes to something and short inputs are still meaningful.
pub struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    /// Reads from `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Input { data }
    }

    /// Whether every byte has been consumed.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Bytes not consumed yet.
    pub fn remaining(&self) -> usize {
        self.data.len()
    }

    /// One byte.
    pub fn u8(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    /// A little-endian u16.
    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }

    /// A little-endian u32.
    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.array())
    }

    /// A little-endian u64.
    pub fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.array())
    }

    /// A little-endian u128.
    pub fn u128(&mut self) -> u128 {
        u128::from_le_bytes(self.array())
    }

    /// One bit of a byte.
    pub fn bool(&mut self) -> bool {
        self.u8() & 1 == 1
    }

    /// `N` bytes (zero-filled past the end).
    pub fn array<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        let n = N.min(self.data.len());
        out[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        out
    }

    /// Up to `n` bytes (fewer at the end).
    pub fn bytes(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.data.len());
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        head
    }

    /// A length-prefixed byte string (u16 length).
    pub fn blob(&mut self) -> &'a [u8] {
        let n = usize::from(self.u16());
        self.bytes(n)
    }

    /// Everything left.
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.data)
    }

    /// An address of either family with a port.
    pub fn socket_addr(&mut self) -> SocketAddr {
        let tag = self.u8();
        let ip = match tag % 4 {
            // Mostly a handful of addresses, so sources repeat and roaming is exercised.
            0 => IpAddr::V4(Ipv4Addr::new(192, 0, 2, self.u8() % 4)),
            1 => IpAddr::V4(Ipv4Addr::from(self.u32())),
            2 => IpAddr::V6(Ipv6Addr::from(self.u128())),
            _ => IpAddr::V6(Ipv4Addr::new(198, 51, 100, self.u8() % 4).to_ipv6_mapped()),
        };
        SocketAddr::new(ip, self.u16())
    }
}

/// The responder's private key in the handshake harnesses.
pub const RESPONDER_KEY: [u8; 32] = [0x11; 32];
/// The private key of the responder's one configured peer.
pub const INITIATOR_KEY: [u8; 32] = [0x22; 32];
/// A key the responder does not know.
pub const STRANGER_KEY: [u8; 32] = [0x33; 32];

/// The responder's public key.
pub fn responder_public() -> PublicKey {
    static K: OnceLock<PublicKey> = OnceLock::new();
    *K.get_or_init(|| PrivateKey::from_bytes(RESPONDER_KEY).public_key())
}

/// The initiator's public key.
pub fn initiator_public() -> PublicKey {
    static K: OnceLock<PublicKey> = OnceLock::new();
    *K.get_or_init(|| PrivateKey::from_bytes(INITIATOR_KEY).public_key())
}

/// One fixed monotonic origin for every run, so inputs replay the same way within a process.
pub fn epoch() -> Instant {
    static T: OnceLock<Instant> = OnceLock::new();
    *T.get_or_init(Instant::now)
}

/// Time since the Unix epoch at [`epoch`]: fixed, so timestamps are reproducible.
pub const WALL: Duration = Duration::from_secs(1_750_000_000);

/// Fixed address of the initiator device.
pub fn initiator_addr() -> SocketAddr {
    "192.0.2.1:51820".parse().expect("literal address")
}

/// Fixed address of the responder device.
pub fn responder_addr() -> SocketAddr {
    "192.0.2.200:51820".parse().expect("literal address")
}

/// A device with private key `key` and one peer with public key `peer`, optionally with an
/// endpoint and a preshared key.
pub fn device(
    key: [u8; 32],
    peer: PublicKey,
    endpoint: Option<SocketAddr>,
    psk: Option<[u8; 32]>,
    seed: u8,
) -> (Device, PeerId) {
    let mut d = Device::new(
        PrivateKey::from_bytes(key),
        PeerSettings::default(),
        [seed; 32],
        (epoch(), WALL),
    );
    let id = d.add_peer(PeerConfig {
        public_key: peer,
        preshared_key: psk.map(protocol::keys::PresharedKey),
        endpoint,
        persistent_keepalive: None,
    });
    (d, id)
}

/// An IPv4 packet of `len` bytes (at least 20) from `src`, with a valid total-length field.
pub fn ipv4_packet(src: [u8; 4], len: usize, fill: u8) -> Vec<u8> {
    let len = len.clamp(20, 1420);
    let mut p = vec![fill; len];
    p[0] = 0x45;
    p[1] = 0;
    p[2..4].copy_from_slice(&(len as u16).to_be_bytes());
    p[12..16].copy_from_slice(&src);
    p
}
