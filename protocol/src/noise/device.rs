//! A single-threaded device: one static identity, many peers, message dispatch.
//!
//! This is the reference composition of the pieces (mac checks, cookie replies, responder
//! path, index routing) used by the simulation tests and the fuzz targets; the daemon splits
//! the same steps across its data plane and peer actors.
//!
//! vpnd does not dispatch through `Device` (it uses only [`DropReason`]); its own receive path
//! is fuzzed by the daemon's `dataplane_receive` target. `Device` stays because it is what
//! lets the protocol crate test itself without the daemon: the deterministic simulation tests
//! (`tests/simulation.rs`, many devices on a fake clock and network: roaming, loss, rekeying,
//! cookies under load), the `handshake_responder`, `handshake_stateful` and `cookie_reply` fuzz
//! targets and the handshake bench all compose peers through it. Moving them onto the daemon's
//! data plane would make protocol tests depend on tokio and the daemon crate, against the
//! sans-IO rule; the pieces both dispatchers share (`Peer`, cookies, rate limiter, messages)
//! are the ones those tests cover.

use crate::keys::{PrivateKey, PublicKey};
use crate::noise::cookie::{CookieChecker, MacCheck};
use crate::noise::handshake::{self, HandshakeError, StaticIdentity};
use crate::noise::messages::{Message, ParseError, COOKIE_REPLY_LEN};
use crate::noise::peer::{
    DataError, Decapsulated, Encapsulated, IndexRegistry, Peer, PeerConfig, PeerEvent,
    PeerSettings, Transmit,
};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Index of a peer within a [`Device`].
pub type PeerId = usize;

/// Why an incoming datagram was dropped. Every network drop is counted under one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DropReason {
    /// Not a WireGuard message (type, reserved bytes or length).
    #[error("malformed: {0}")]
    Malformed(ParseError),
    /// mac1 did not verify.
    #[error("bad mac1")]
    BadMac1,
    /// Under load without a valid mac2: answered with a cookie reply.
    #[error("cookie reply sent")]
    CookieSent,
    /// Under load and over the per-source rate.
    #[error("rate limited")]
    RateLimited,
    /// A handshake message that failed.
    #[error("handshake: {0}")]
    Handshake(HandshakeError),
    /// A cookie reply that did not decrypt or matched nothing.
    #[error("bad cookie reply")]
    BadCookieReply,
    /// A transport message for an index we do not hold.
    #[error("unknown receiver index")]
    UnknownIndex,
    /// A transport message that failed.
    #[error("data: {0}")]
    Data(DataError),
    /// The inner packet's source is not in the sender's allowed IPs.
    #[error("source not in allowed IPs")]
    AllowedIps,
}

impl DropReason {
    /// A stable snake_case name for counters.
    pub fn name(&self) -> &'static str {
        match self {
            DropReason::Malformed(ParseError::TooShort(_)) => "too_short",
            DropReason::Malformed(ParseError::UnknownType(_)) => "unknown_type",
            DropReason::Malformed(ParseError::WrongLength { .. }) => "wrong_length",
            DropReason::BadMac1 => "bad_mac1",
            DropReason::CookieSent => "cookie_sent",
            DropReason::RateLimited => "rate_limited",
            DropReason::Handshake(HandshakeError::Decrypt) => "handshake_decrypt",
            DropReason::Handshake(HandshakeError::ZeroDh) => "handshake_zero_dh",
            DropReason::Handshake(HandshakeError::Replay) => "handshake_replay",
            DropReason::Handshake(HandshakeError::Flood) => "handshake_flood",
            DropReason::Handshake(HandshakeError::UnknownPeer) => "unknown_peer",
            DropReason::Handshake(HandshakeError::Simultaneous) => "simultaneous_initiation",
            DropReason::Handshake(HandshakeError::UnexpectedIndex) => "unexpected_response",
            DropReason::Handshake(HandshakeError::NoPrivateKey) => "no_private_key",
            DropReason::BadCookieReply => "bad_cookie_reply",
            DropReason::UnknownIndex => "unknown_index",
            DropReason::Data(DataError::UnknownIndex) => "unknown_index",
            DropReason::Data(DataError::Expired) => "expired_keypair",
            DropReason::Data(DataError::Replay) => "replay",
            DropReason::Data(DataError::Decrypt) => "decrypt",
            DropReason::Data(DataError::InvalidInner) => "invalid_inner_packet",
            DropReason::Data(DataError::BufferTooSmall) => "buffer_too_small",
            DropReason::Data(DataError::Exhausted) => "exhausted",
            DropReason::AllowedIps => "allowed_ips",
        }
    }
}

/// What happened to an incoming datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Incoming {
    /// `out[..len]` is an inner packet from `peer`.
    Data {
        /// Sender.
        peer: PeerId,
        /// Inner packet length.
        len: usize,
    },
    /// A keepalive from `peer`.
    Keepalive {
        /// Sender.
        peer: PeerId,
    },
    /// A handshake message or cookie reply was consumed by `peer`.
    Handshake {
        /// The peer.
        peer: PeerId,
    },
    /// Dropped.
    Dropped(DropReason),
}

#[derive(Default)]
struct IndexTable {
    map: Mutex<HashMap<u32, PeerId>>,
}

struct PeerIndex {
    table: Arc<IndexTable>,
    peer: PeerId,
}

impl IndexRegistry for PeerIndex {
    fn claim(&self, index: u32) -> bool {
        let mut m = self.table.map.lock();
        if m.contains_key(&index) {
            return false;
        }
        m.insert(index, self.peer);
        true
    }
    fn release(&self, index: u32) {
        let mut m = self.table.map.lock();
        if m.get(&index) == Some(&self.peer) {
            m.remove(&index);
        }
    }
}

/// A WireGuard device without I/O.
pub struct Device {
    identity: Arc<StaticIdentity>,
    checker: CookieChecker,
    peers: Vec<Peer>,
    by_key: HashMap<PublicKey, PeerId>,
    indices: Arc<IndexTable>,
    settings: PeerSettings,
    seed: [u8; 32],
    wall_anchor: (Instant, Duration),
    transmits: Vec<Transmit>,
    next_peer: usize,
}

impl std::fmt::Debug for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Device")
            .field("public_key", self.identity.public_key())
            .field("peers", &self.peers.len())
            .finish_non_exhaustive()
    }
}

impl Device {
    /// A device with `private` as its static key.
    pub fn new(
        private: PrivateKey,
        settings: PeerSettings,
        seed: [u8; 32],
        wall_anchor: (Instant, Duration),
    ) -> Self {
        let identity = Arc::new(StaticIdentity::new(private));
        let mut cseed = seed;
        cseed[0] ^= 0xc0;
        Device {
            checker: CookieChecker::new(identity.public_key(), cseed),
            identity,
            peers: Vec::new(),
            by_key: HashMap::new(),
            indices: Arc::default(),
            settings,
            seed,
            wall_anchor,
            transmits: Vec::new(),
            next_peer: 0,
        }
    }

    /// Our public key.
    pub fn public_key(&self) -> &PublicKey {
        self.identity.public_key()
    }

    /// Adds a peer; returns its id.
    pub fn add_peer(&mut self, config: PeerConfig) -> PeerId {
        let id = self.peers.len();
        let mut seed = self.seed;
        self.next_peer += 1;
        seed[1..9].copy_from_slice(&(self.next_peer as u64).to_le_bytes());
        self.by_key.insert(config.public_key, id);
        let registry = Arc::new(PeerIndex {
            table: self.indices.clone(),
            peer: id,
        });
        self.peers.push(Peer::new(
            self.identity.clone(),
            config,
            self.settings,
            registry,
            seed,
            self.wall_anchor,
        ));
        id
    }

    /// The peer with id `id`.
    pub fn peer(&self, id: PeerId) -> &Peer {
        &self.peers[id]
    }

    /// The peer with id `id`, mutably.
    pub fn peer_mut(&mut self, id: PeerId) -> &mut Peer {
        &mut self.peers[id]
    }

    /// Number of indices in use (handshakes and keypairs).
    pub fn indices_in_use(&self) -> usize {
        self.indices.map.lock().len()
    }

    /// Seals `packet` for `peer` into `out`.
    pub fn encapsulate(
        &mut self,
        peer: PeerId,
        packet: &[u8],
        out: &mut [u8],
        now: Instant,
    ) -> Result<Encapsulated, DataError> {
        self.peers[peer].encapsulate(packet, out, now)
    }

    /// Handles one datagram from `src`. `under_load` switches on the cookie defence.
    pub fn handle_datagram(
        &mut self,
        src: SocketAddr,
        datagram: &[u8],
        out: &mut [u8],
        under_load: bool,
        now: Instant,
    ) -> Incoming {
        let msg = match Message::parse(datagram) {
            Ok(m) => m,
            Err(e) => return Incoming::Dropped(DropReason::Malformed(e)),
        };
        match msg {
            Message::Initiation(init) => {
                if let Some(d) = self.check_macs(datagram, src, under_load, now) {
                    return Incoming::Dropped(d);
                }
                let begun = match handshake::begin_initiation(&self.identity, &init) {
                    Ok(b) => b,
                    Err(e) => return Incoming::Dropped(DropReason::Handshake(e)),
                };
                let Some(&id) = self.by_key.get(&begun.peer) else {
                    return Incoming::Dropped(DropReason::Handshake(HandshakeError::UnknownPeer));
                };
                match self.peers[id].handle_initiation(&begun, src, now) {
                    Ok(()) => Incoming::Handshake { peer: id },
                    Err(e) => Incoming::Dropped(DropReason::Handshake(e)),
                }
            }
            Message::Response(resp) => {
                if let Some(d) = self.check_macs(datagram, src, under_load, now) {
                    return Incoming::Dropped(d);
                }
                let Some(id) = self.lookup_index(resp.receiver()) else {
                    return Incoming::Dropped(DropReason::UnknownIndex);
                };
                match self.peers[id].handle_response(&resp, src, now) {
                    Ok(()) => Incoming::Handshake { peer: id },
                    Err(e) => Incoming::Dropped(DropReason::Handshake(e)),
                }
            }
            Message::CookieReply(reply) => {
                let Some(id) = self.lookup_index(reply.receiver()) else {
                    return Incoming::Dropped(DropReason::UnknownIndex);
                };
                if self.peers[id].handle_cookie_reply(&reply, now) {
                    Incoming::Handshake { peer: id }
                } else {
                    Incoming::Dropped(DropReason::BadCookieReply)
                }
            }
            Message::Transport(t) => {
                let Some(id) = self.lookup_index(t.receiver()) else {
                    return Incoming::Dropped(DropReason::UnknownIndex);
                };
                match self.peers[id].decapsulate(&t, src, out, now) {
                    Ok(Decapsulated::Data { len }) => Incoming::Data { peer: id, len },
                    Ok(Decapsulated::Keepalive) => Incoming::Keepalive { peer: id },
                    Err(e) => Incoming::Dropped(DropReason::Data(e)),
                }
            }
        }
    }

    fn lookup_index(&self, index: u32) -> Option<PeerId> {
        self.indices.map.lock().get(&index).copied()
    }

    fn check_macs(
        &mut self,
        datagram: &[u8],
        src: SocketAddr,
        under_load: bool,
        now: Instant,
    ) -> Option<DropReason> {
        match self.checker.check(datagram, &src, under_load, now) {
            MacCheck::Valid => None,
            MacCheck::BadMac1 => Some(DropReason::BadMac1),
            MacCheck::NeedCookie => {
                let mut reply = [0u8; COOKIE_REPLY_LEN];
                if self
                    .checker
                    .create_reply(datagram, &src, now, &mut reply)
                    .is_ok()
                {
                    self.transmits.push(Transmit {
                        dst: src,
                        payload: reply.to_vec(),
                    });
                }
                Some(DropReason::CookieSent)
            }
        }
    }

    /// Next datagram to send (cookie replies first, then every peer's).
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        if let Some(t) = self.transmits.pop() {
            return Some(t);
        }
        self.peers.iter_mut().find_map(|p| p.poll_transmit())
    }

    /// Next event of any peer.
    pub fn poll_event(&mut self) -> Option<(PeerId, PeerEvent)> {
        self.peers
            .iter_mut()
            .enumerate()
            .find_map(|(i, p)| p.poll_event().map(|e| (i, e)))
    }

    /// Earliest deadline of any peer.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.peers.iter().filter_map(|p| p.poll_timeout()).min()
    }

    /// Runs every peer's timers due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        for p in &mut self.peers {
            p.handle_timeout(now);
        }
    }
}
