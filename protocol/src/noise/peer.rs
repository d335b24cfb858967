//! The per-peer state machine: handshakes, keypair rotation, timers, liveness, queueing.
//!
//! # Drain contract
//! After every input — [`Peer::encapsulate`], [`Peer::decapsulate`],
//! [`Peer::handle_initiation`], [`Peer::handle_response`], [`Peer::handle_cookie_reply`],
//! [`Peer::handle_timeout`] or a setter — the caller drains [`Peer::poll_transmit`] and
//! [`Peer::poll_event`] until both return `None`, then sleeps until [`Peer::poll_timeout`]
//! (or the next input) and calls [`Peer::handle_timeout`] with the time it woke.
//!
//! # Time and randomness
//! `now` is a monotonic [`Instant`] supplied by the caller; the wall clock needed for TAI64N
//! timestamps is derived from an anchor pair (monotonic instant, time since the Unix epoch)
//! given at construction. Ephemeral keys, indices and jitter come from a ChaCha20 RNG seeded by
//! the caller. The peer never reads a clock or the OS RNG.

use crate::keys::{PresharedKey, PublicKey};
use crate::noise::cookie::CookieGenerator;
use crate::noise::handshake::{
    self, BegunInitiation, HandshakeError, InitiatorState, StaticIdentity, Tai64N,
};
use crate::noise::keypair::{inner_packet_len, Keypair, OpenError, SealError};
use crate::noise::messages::{
    CookieReply, Response, Transport, INITIATION_LEN, RESPONSE_LEN, TRANSPORT_HEADER_LEN,
};
use crate::noise::replay::REJECT_AFTER_MESSAGES;
use crate::noise::timers::{Timer, TimerConfig, TimerTable, REKEY_AFTER_MESSAGES};
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

/// Hands out receiver indices that are unique across every peer of a device.
///
/// The peer picks random candidates and claims them here; the owner maps claimed indices to
/// this peer so incoming responses and transport messages find it.
pub trait IndexRegistry: Send + Sync {
    /// Claims `index`; returns false if another keypair or handshake already holds it.
    fn claim(&self, index: u32) -> bool;
    /// Returns an index claimed earlier.
    fn release(&self, index: u32);
}

/// Liveness of a peer as the operator sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerState {
    /// A confirmed session exists.
    Online,
    /// A handshake is in progress and there is no usable session.
    Handshaking,
    /// No session; the reason says why.
    Offline(OfflineReason),
}

/// Why a peer is offline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OfflineReason {
    /// No session has been made yet (or since the last reset).
    NotConnected,
    /// The peer has no known endpoint to send a handshake to.
    NoEndpoint,
    /// A handshake got no answer within the rekey timeout: session keys were cleared.
    HandshakeTimeout,
    /// Handshake retries were exhausted; queued packets were dropped.
    RetriesExhausted,
    /// The session expired without a new handshake (the peer was idle).
    SessionExpired,
}

impl std::fmt::Display for PeerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PeerState::Online => f.write_str("online"),
            PeerState::Handshaking => f.write_str("handshaking"),
            PeerState::Offline(_) => f.write_str("offline"),
        }
    }
}

impl std::fmt::Display for OfflineReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            OfflineReason::NotConnected => "not connected",
            OfflineReason::NoEndpoint => "no endpoint",
            OfflineReason::HandshakeTimeout => "handshake timed out",
            OfflineReason::RetriesExhausted => "handshake retries exhausted",
            OfflineReason::SessionExpired => "session expired",
        })
    }
}

/// Something the owner may want to know about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerEvent {
    /// Liveness changed.
    StateChanged {
        /// Previous state.
        from: PeerState,
        /// New state.
        to: PeerState,
    },
    /// A handshake completed (for the responder: was confirmed by the first data).
    HandshakeCompleted {
        /// Whether we initiated it.
        initiator: bool,
    },
    /// The endpoint moved to the source of an authenticated packet (roaming).
    EndpointChanged {
        /// Old endpoint.
        from: Option<SocketAddr>,
        /// New endpoint.
        to: SocketAddr,
    },
    /// An initiation got no answer; `attempts` retries so far.
    HandshakeTimedOut {
        /// Retries so far.
        attempts: u32,
    },
    /// Queued packets were dropped (handshake gave up, or the queue overflowed).
    QueueDropped {
        /// How many.
        packets: usize,
    },
}

/// A datagram to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Where to.
    pub dst: SocketAddr,
    /// The whole WireGuard message.
    pub payload: Vec<u8>,
}

/// Per-peer configuration.
#[derive(Debug, Clone)]
pub struct PeerConfig {
    /// The peer's static public key.
    pub public_key: PublicKey,
    /// Optional preshared key.
    pub preshared_key: Option<PresharedKey>,
    /// Where to send handshakes until the peer roams.
    pub endpoint: Option<SocketAddr>,
    /// Persistent keepalive interval.
    pub persistent_keepalive: Option<Duration>,
}

/// Device-wide settings every peer shares.
#[derive(Debug, Clone, Copy)]
pub struct PeerSettings {
    /// Timer constants.
    pub timers: TimerConfig,
    /// Rekey after this many plaintext bytes sent on one keypair.
    pub rekey_after_bytes: u64,
    /// Tunnel MTU for padding.
    pub mtu: usize,
    /// Packets held while waiting for a session.
    pub max_queued: usize,
}

impl Default for PeerSettings {
    fn default() -> Self {
        PeerSettings {
            timers: TimerConfig::default(),
            rekey_after_bytes: 1 << 30,
            mtu: 1420,
            max_queued: 128,
        }
    }
}

/// Traffic and handshake statistics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PeerStats {
    /// Bytes of every authenticated message received (as wireguard-go counts them).
    pub rx_bytes: u64,
    /// Bytes of every message sent.
    pub tx_bytes: u64,
    /// Completed handshakes.
    pub handshakes: u64,
    /// When the last handshake completed.
    pub last_handshake: Option<Instant>,
}

impl PeerStats {
    /// Adds the counts of `earlier` (statistics of a replaced instance of the same peer) and
    /// keeps the later of the two last handshakes.
    pub fn continue_from(&mut self, earlier: PeerStats) {
        self.rx_bytes += earlier.rx_bytes;
        self.tx_bytes += earlier.tx_bytes;
        self.handshakes += earlier.handshakes;
        self.last_handshake = self.last_handshake.max(earlier.last_handshake);
    }
}

/// Result of [`Peer::encapsulate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encapsulated {
    /// `out[..len]` is a transport message for `dst`.
    Sealed {
        /// Message length.
        len: usize,
        /// Destination.
        dst: SocketAddr,
    },
    /// No usable session: the packet was queued and a handshake requested.
    Queued,
}

/// Result of [`Peer::decapsulate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decapsulated {
    /// `out[..len]` is the inner IP packet (padding removed).
    Data {
        /// Inner packet length.
        len: usize,
    },
    /// An authenticated keepalive: nothing to deliver.
    Keepalive,
}

/// Why a data message was not delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DataError {
    /// No keypair of this peer has that receiver index.
    #[error("no keypair with that index")]
    UnknownIndex,
    /// The keypair is past its reject age or counter limit.
    #[error("keypair expired")]
    Expired,
    /// Replay window said no.
    #[error("replayed packet")]
    Replay,
    /// Authentication failed.
    #[error("decryption failed")]
    Decrypt,
    /// Decrypted, but not a well-formed IP packet.
    #[error("inner packet malformed")]
    InvalidInner,
    /// Output buffer too small.
    #[error("buffer too small")]
    BufferTooSmall,
    /// The sending keypair is exhausted.
    #[error("keypair exhausted")]
    Exhausted,
}

impl From<OpenError> for DataError {
    fn from(e: OpenError) -> Self {
        match e {
            OpenError::Replay => DataError::Replay,
            OpenError::Expired => DataError::Expired,
            OpenError::Decrypt => DataError::Decrypt,
            OpenError::BufferTooSmall => DataError::BufferTooSmall,
        }
    }
}

impl From<SealError> for DataError {
    fn from(e: SealError) -> Self {
        match e {
            SealError::BufferTooSmall => DataError::BufferTooSmall,
            SealError::Exhausted => DataError::Exhausted,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Slot {
    Current,
    Previous,
    Next,
}

/// Keypairs of one peer, with WireGuard's rotation rules.
#[derive(Default)]
struct Keypairs {
    current: Option<Arc<Keypair>>,
    previous: Option<Arc<Keypair>>,
    next: Option<Arc<Keypair>>,
}

/// One WireGuard peer.
pub struct Peer {
    identity: Arc<StaticIdentity>,
    public_key: PublicKey,
    psk: PresharedKey,
    static_static: Option<[u8; 32]>,
    endpoint: Option<SocketAddr>,
    persistent_keepalive: Option<Duration>,
    settings: PeerSettings,
    registry: Arc<dyn IndexRegistry>,
    rng: ChaCha20Rng,
    wall_anchor: (Instant, Duration),
    cookie: CookieGenerator,

    initiation: Option<InitiatorState>,
    last_initiation_sent: Option<Instant>,
    attempts: u32,
    last_timestamp: Tai64N,
    last_initiation_consumed: Option<Instant>,

    keypairs: Keypairs,
    timers: TimerTable,
    need_another_keepalive: bool,
    sent_last_minute_handshake: bool,
    last_received: Option<Instant>,

    queue: VecDeque<Vec<u8>>,
    transmits: VecDeque<Transmit>,
    /// Events not yet polled: at most [`MAX_EVENTS`].
    events: VecDeque<PeerEvent>,
    /// Queued packets dropped since the last [`PeerEvent::QueueDropped`] was polled: a count,
    /// not an event per packet, so a flood towards a peer without a session costs no memory.
    queue_dropped: usize,
    state: PeerState,
    stats: PeerStats,
}

/// Most events a peer holds until they are polled; when full the oldest is discarded. The
/// owner may be slow to poll (busy for seconds in a DNS lookup) while packets keep coming.
pub const MAX_EVENTS: usize = 64;

impl std::fmt::Debug for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peer")
            .field("public_key", &self.public_key)
            .field("endpoint", &self.endpoint)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl Peer {
    /// A peer of the device whose identity is `identity`.
    ///
    /// `wall_anchor` pairs a monotonic instant with the time since the Unix epoch at that
    /// instant; `seed` seeds the peer's RNG. A peer with an endpoint and a persistent keepalive
    /// starts a handshake right away, as WireGuard does.
    pub fn new(
        identity: Arc<StaticIdentity>,
        config: PeerConfig,
        settings: PeerSettings,
        registry: Arc<dyn IndexRegistry>,
        seed: [u8; 32],
        wall_anchor: (Instant, Duration),
    ) -> Self {
        let static_static = identity.static_static(&config.public_key).ok();
        let now = wall_anchor.0;
        let mut p = Peer {
            cookie: CookieGenerator::new(&config.public_key),
            identity,
            public_key: config.public_key,
            psk: config.preshared_key.unwrap_or_default(),
            static_static,
            endpoint: config.endpoint,
            persistent_keepalive: config.persistent_keepalive.filter(|d| !d.is_zero()),
            settings,
            registry,
            rng: ChaCha20Rng::from_seed(seed),
            wall_anchor,
            initiation: None,
            last_initiation_sent: None,
            attempts: 0,
            last_timestamp: Tai64N::default(),
            last_initiation_consumed: None,
            keypairs: Keypairs::default(),
            timers: TimerTable::default(),
            need_another_keepalive: false,
            sent_last_minute_handshake: false,
            last_received: None,
            queue: VecDeque::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            queue_dropped: 0,
            state: PeerState::Offline(OfflineReason::NotConnected),
            stats: PeerStats::default(),
        };
        if p.persistent_keepalive.is_some() && p.endpoint.is_some() {
            p.send_keepalive(now);
        }
        p
    }

    // ----- accessors -----

    /// The peer's public key.
    pub fn public_key(&self) -> &PublicKey {
        &self.public_key
    }
    /// Current endpoint.
    pub fn endpoint(&self) -> Option<SocketAddr> {
        self.endpoint
    }
    /// Liveness.
    pub fn state(&self) -> PeerState {
        self.state
    }
    /// Statistics.
    pub fn stats(&self) -> PeerStats {
        self.stats
    }
    /// Continues the statistics of an earlier instance of the same peer (one that was
    /// replaced, e.g. after a crash of the code driving it): its byte and handshake counts
    /// are added to this one's, and its last handshake is kept unless this one has a later
    /// one. Counters then read as if the peer had never been replaced.
    pub fn carry_stats(&mut self, earlier: PeerStats) {
        self.stats.continue_from(earlier);
    }
    /// Persistent keepalive interval.
    pub fn persistent_keepalive(&self) -> Option<Duration> {
        self.persistent_keepalive
    }
    /// The preshared key (all zero if none).
    pub fn preshared_key(&self) -> &PresharedKey {
        &self.psk
    }
    /// When the last handshake completed, as time since the Unix epoch.
    pub fn last_handshake_unix(&self) -> Option<Duration> {
        self.stats.last_handshake.map(|t| self.wall_time(t))
    }
    /// The keypair data is sent with, if usable at `now`.
    pub fn current_keypair(&self, now: Instant) -> Option<&Arc<Keypair>> {
        self.keypairs
            .current
            .as_ref()
            .filter(|k| self.keypair_usable(k, now))
    }
    /// Whether any session key material is held.
    pub fn has_keys(&self) -> bool {
        self.keypairs.current.is_some()
            || self.keypairs.previous.is_some()
            || self.keypairs.next.is_some()
    }
    /// Local indices of every held keypair and of a pending handshake.
    pub fn local_indices(&self) -> Vec<u32> {
        let mut v: Vec<u32> = [
            &self.keypairs.current,
            &self.keypairs.previous,
            &self.keypairs.next,
        ]
        .into_iter()
        .flatten()
        .map(|k| k.local_index)
        .collect();
        if let Some(i) = &self.initiation {
            v.push(i.local_index);
        }
        v
    }
    /// Packets waiting for a session.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }
    /// The settings in force.
    pub fn settings(&self) -> &PeerSettings {
        &self.settings
    }

    // ----- setters (runtime reconfiguration) -----

    /// Sets the endpoint (configuration, not roaming).
    pub fn set_endpoint(&mut self, endpoint: Option<SocketAddr>) {
        self.endpoint = endpoint;
    }
    /// Sets the endpoint a configured host name resolved to. A peer that had no endpoint until
    /// now sends what waited for one, as if it had known the address from the start: its
    /// queued packets (after a handshake) or, with a persistent keepalive, a keepalive.
    pub fn set_resolved_endpoint(&mut self, endpoint: SocketAddr, now: Instant) {
        if self.endpoint.replace(endpoint).is_some() {
            return;
        }
        if !self.queue.is_empty() {
            self.flush_queue(now);
        } else if self.persistent_keepalive.is_some() {
            self.send_keepalive(now);
        }
    }
    /// Sets the preshared key (takes effect from the next handshake).
    pub fn set_preshared_key(&mut self, psk: Option<PresharedKey>) {
        self.psk = psk.unwrap_or_default();
    }
    /// Sets the persistent keepalive; enabling it sends a keepalive at once.
    pub fn set_persistent_keepalive(&mut self, interval: Option<Duration>, now: Instant) {
        let interval = interval.filter(|d| !d.is_zero());
        let was = self.persistent_keepalive;
        self.persistent_keepalive = interval;
        match interval {
            None => self.timers.stop(Timer::PersistentKeepalive),
            Some(_) if was != interval && self.endpoint.is_some() => self.send_keepalive(now),
            Some(_) => {}
        }
    }
    /// Replaces the device-wide settings.
    pub fn set_settings(&mut self, settings: PeerSettings) {
        self.settings = settings;
    }

    // ----- outputs -----

    /// Mixes fresh randomness into the peer's RNG (ephemeral keys, indices, jitter). The
    /// protocol never reads the OS RNG itself: the daemon passes `seed` from it, on every
    /// completed handshake, so a state that leaked (or a weak initial seed) stops predicting
    /// later ephemerals after the next rekey. The old state is mixed in too, so a poor `seed`
    /// never makes the RNG weaker than it was.
    pub fn reseed(&mut self, seed: [u8; 32]) {
        let mut old = Zeroizing::new([0u8; 32]);
        self.rng.fill_bytes(&mut old[..]);
        let mixed = Zeroizing::new(crate::noise::crypto::hash(&[&old[..], &seed]));
        self.rng = ChaCha20Rng::from_seed(*mixed);
    }

    /// Next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }
    /// Next event.
    pub fn poll_event(&mut self) -> Option<PeerEvent> {
        if let Some(e) = self.events.pop_front() {
            return Some(e);
        }
        match std::mem::take(&mut self.queue_dropped) {
            0 => None,
            packets => Some(PeerEvent::QueueDropped { packets }),
        }
    }
    /// When [`Peer::handle_timeout`] must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }

    // ----- data -----

    /// Seals an inner packet for this peer into `out`, or queues it and asks for a handshake
    /// when there is no usable session.
    pub fn encapsulate(
        &mut self,
        packet: &[u8],
        out: &mut [u8],
        now: Instant,
    ) -> Result<Encapsulated, DataError> {
        if let (Some(k), Some(dst)) = (self.current_keypair(now).cloned(), self.endpoint) {
            match k.seal(packet, out, self.settings.mtu) {
                Ok(len) => {
                    self.after_data_sent(&k, len, !packet.is_empty(), now);
                    return Ok(Encapsulated::Sealed { len, dst });
                }
                Err(SealError::Exhausted) => {}
                Err(e) => return Err(e.into()),
            }
        }
        self.enqueue(packet.to_vec());
        self.send_initiation(now, false);
        Ok(Encapsulated::Queued)
    }

    /// Like [`Peer::encapsulate`], but sealing in place: `buf[16..16 + len]` holds the inner
    /// packet and `buf` must have room for padding and the tag. Nothing is copied or allocated
    /// when a session exists.
    pub fn encapsulate_in_place(
        &mut self,
        buf: &mut [u8],
        len: usize,
        now: Instant,
    ) -> Result<Encapsulated, DataError> {
        if let (Some(k), Some(dst)) = (self.current_keypair(now).cloned(), self.endpoint) {
            match k.seal_in_place(buf, len, self.settings.mtu) {
                Ok(n) => {
                    self.after_data_sent(&k, n, len > 0, now);
                    return Ok(Encapsulated::Sealed { len: n, dst });
                }
                Err(SealError::Exhausted) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let packet = buf
            .get(TRANSPORT_HEADER_LEN..TRANSPORT_HEADER_LEN + len)
            .ok_or(DataError::BufferTooSmall)?
            .to_vec();
        self.enqueue(packet);
        self.send_initiation(now, false);
        Ok(Encapsulated::Queued)
    }

    /// Whether events wait in [`Peer::poll_event`].
    pub fn has_events(&self) -> bool {
        !self.events.is_empty() || self.queue_dropped > 0
    }

    /// Bookkeeping after a transport message of `wire_len` bytes was sealed with `k` outside
    /// [`Peer::encapsulate`] (the daemon's batched data plane seals with the keypair directly).
    /// A batch of data messages may be reported at once with their total length.
    pub fn note_data_sent(&mut self, k: &Arc<Keypair>, wire_len: usize, now: Instant) {
        self.after_data_sent(k, wire_len, wire_len > TRANSPORT_HEADER_LEN + 16, now);
    }

    fn after_data_sent(&mut self, k: &Arc<Keypair>, wire_len: usize, is_data: bool, now: Instant) {
        self.stats.tx_bytes += wire_len as u64;
        if is_data && !self.timers.is_armed(Timer::NewHandshake) {
            let j = self.jitter();
            self.timers.set(
                Timer::NewHandshake,
                now + self.settings.timers.new_handshake_timeout() + j,
            );
        }
        self.on_authenticated_sent(now);
        // Keep the key fresh: time (initiator only), messages, volume.
        let t = &self.settings.timers;
        let old = k.initiator && now.saturating_duration_since(k.created) >= t.rekey_after_time;
        if old
            || k.sent_messages() >= REKEY_AFTER_MESSAGES
            || k.sent_bytes() >= self.settings.rekey_after_bytes
        {
            self.send_initiation(now, false);
        }
    }

    /// Opens a transport message that arrived from `src` on one of this peer's indices.
    /// On success with data, `out[..len]` is the inner packet; the caller still checks its
    /// source address against this peer's allowed IPs.
    pub fn decapsulate(
        &mut self,
        msg: &Transport<'_>,
        src: SocketAddr,
        out: &mut [u8],
        now: Instant,
    ) -> Result<Decapsulated, DataError> {
        let (slot, k) = self
            .find_keypair(msg.receiver())
            .ok_or(DataError::UnknownIndex)?;
        if !self.keypair_usable(&k, now) {
            return Err(DataError::Expired);
        }
        let n = k.open(msg, out)?;
        self.after_data_received(slot, &k, msg.bytes().len(), n > 0, src, now);
        if n == 0 {
            return Ok(Decapsulated::Keepalive);
        }
        let len = inner_packet_len(&out[..n]).ok_or(DataError::InvalidInner)?;
        Ok(Decapsulated::Data { len })
    }

    /// Like [`Peer::decapsulate`], but opening in place: `buf` is the whole transport message;
    /// on success with data the inner packet is at `buf[16..16 + len]`.
    pub fn decapsulate_in_place(
        &mut self,
        buf: &mut [u8],
        src: SocketAddr,
        now: Instant,
    ) -> Result<Decapsulated, DataError> {
        let index = match crate::noise::messages::Message::parse(buf) {
            Ok(crate::noise::messages::Message::Transport(t)) => t.receiver(),
            _ => return Err(DataError::Decrypt),
        };
        let wire_len = buf.len();
        let (slot, k) = self.find_keypair(index).ok_or(DataError::UnknownIndex)?;
        if !self.keypair_usable(&k, now) {
            return Err(DataError::Expired);
        }
        let n = k.open_in_place(buf)?;
        self.after_data_received(slot, &k, wire_len, n > 0, src, now);
        if n == 0 {
            return Ok(Decapsulated::Keepalive);
        }
        let plain = &buf[TRANSPORT_HEADER_LEN..TRANSPORT_HEADER_LEN + n];
        let len = inner_packet_len(plain).ok_or(DataError::InvalidInner)?;
        Ok(Decapsulated::Data { len })
    }

    /// Looks up the keypair holding `index` (for a data plane that opens messages itself).
    pub fn keypair_for_index(&self, index: u32) -> Option<Arc<Keypair>> {
        self.find_keypair(index).map(|(_, k)| k)
    }

    /// The keypair holding `index` if it may still receive at `now`: the checks
    /// [`Peer::decapsulate_in_place`] makes before opening, for a data plane that opens a
    /// batch with the keypair directly ([`Keypair::open_in_place`] then checks the counter
    /// against the replay window) and reports it with [`Peer::note_data_received`].
    pub fn receiving_keypair(&self, index: u32, now: Instant) -> Result<Arc<Keypair>, DataError> {
        let (_, k) = self.find_keypair(index).ok_or(DataError::UnknownIndex)?;
        if !self.keypair_usable(&k, now) {
            return Err(DataError::Expired);
        }
        Ok(k)
    }

    /// The keypair and endpoint to seal data with at `now`, and the MTU to pad to; `None`
    /// when there is no usable session or no endpoint (then [`Peer::encapsulate_in_place`]
    /// queues the packet and starts a handshake). A data plane that seals a batch itself
    /// reserves counters with [`Keypair::reserve_counters`], seals with
    /// [`Keypair::seal_in_place_with_counter`] and reports the batch with
    /// [`Peer::note_data_sent`].
    pub fn sending_keypair(&self, now: Instant) -> Option<(Arc<Keypair>, SocketAddr, usize)> {
        let k = self.current_keypair(now)?.clone();
        Some((k, self.endpoint?, self.settings.mtu))
    }

    /// Bookkeeping after the data plane opened a message itself with the keypair of `index`.
    pub fn note_data_received(
        &mut self,
        index: u32,
        wire_len: usize,
        is_data: bool,
        src: SocketAddr,
        now: Instant,
    ) {
        if let Some((slot, k)) = self.find_keypair(index) {
            self.after_data_received(slot, &k, wire_len, is_data, src, now);
        }
    }

    fn after_data_received(
        &mut self,
        slot: Slot,
        k: &Arc<Keypair>,
        wire_len: usize,
        is_data: bool,
        src: SocketAddr,
        now: Instant,
    ) {
        self.stats.rx_bytes += wire_len as u64;
        self.update_endpoint(src);
        if slot == Slot::Next {
            self.confirm_next(now);
        }
        self.on_authenticated_received(now);
        if is_data {
            if self.timers.is_armed(Timer::SendKeepalive) {
                self.need_another_keepalive = true;
            } else {
                self.timers.set(
                    Timer::SendKeepalive,
                    now + self.settings.timers.keepalive_timeout,
                );
            }
        }
        // Initiator: re-handshake when receiving on a keypair near its reject age.
        let is_current = self
            .keypairs
            .current
            .as_ref()
            .is_some_and(|c| Arc::ptr_eq(c, k));
        if is_current
            && k.initiator
            && !self.sent_last_minute_handshake
            && now.saturating_duration_since(k.created) >= self.settings.timers.receive_rekey_age()
        {
            self.sent_last_minute_handshake = true;
            self.send_initiation(now, false);
        }
    }

    // ----- handshake -----

    /// Completes a handshake initiation addressed to this peer (the device already verified
    /// mac1, cookies under load, and decrypted the static key with
    /// [`handshake::begin_initiation`]). Sends the response.
    pub fn handle_initiation(
        &mut self,
        begun: &BegunInitiation,
        src: SocketAddr,
        now: Instant,
    ) -> Result<(), HandshakeError> {
        if begun.peer != self.public_key {
            return Err(HandshakeError::UnknownPeer);
        }
        let ss = self.static_static.ok_or(HandshakeError::ZeroDh)?;
        let consumed = handshake::finish_initiation(begun, &ss)?;
        if consumed.timestamp <= self.last_timestamp {
            return Err(HandshakeError::Replay);
        }
        if let Some(t) = self.last_initiation_consumed {
            if now.saturating_duration_since(t) < self.settings.timers.min_initiation_interval {
                return Err(HandshakeError::Flood);
            }
        }
        self.last_timestamp = consumed.timestamp;
        self.last_initiation_consumed = Some(now);
        self.stats.rx_bytes += INITIATION_LEN as u64;
        self.update_endpoint(src);
        self.on_authenticated_received(now);
        if self.initiation.is_some() && self.identity.public_key() < &self.public_key {
            // Both sides initiated at once. Both answer, as WireGuard does, so the handshake
            // completes with whichever initiation arrives (refusing to answer cost a 5 s retry
            // whenever the other initiation was lost, e.g. sent to an endpoint the peer had
            // just roamed away from). The smaller public key abandons its own initiation so
            // that, when neither is lost, one session results and packets in flight never hit
            // a keypair the other side dropped; the larger keeps its own in flight as well.
            self.drop_initiation();
        }

        let index = self.allocate_index();
        let mut eph = [0u8; 32];
        self.rng.fill_bytes(&mut eph);
        let mut msg = [0u8; RESPONSE_LEN];
        let keys = match handshake::create_response(&consumed, &self.psk, eph, index, &mut msg) {
            Ok(k) => k,
            Err(e) => {
                self.registry.release(index);
                return Err(e);
            }
        };
        self.cookie.add_macs(&mut msg, now);
        let kp = Arc::new(Keypair::new(&keys, now));
        // Responder: the new keypair waits in `next` until the initiator's first message.
        if let Some(old) = self.keypairs.next.replace(kp) {
            self.registry.release(old.local_index);
        }
        if let Some(old) = self.keypairs.previous.take() {
            self.registry.release(old.local_index);
        }
        self.timers.set(
            Timer::ZeroKeyMaterial,
            now + self.settings.timers.zero_keys_after(),
        );
        self.push_transmit(msg.to_vec(), src);
        self.on_authenticated_sent(now);
        Ok(())
    }

    /// Consumes a handshake response (mac1 already verified by the device).
    pub fn handle_response(
        &mut self,
        msg: &Response<'_>,
        src: SocketAddr,
        now: Instant,
    ) -> Result<(), HandshakeError> {
        let Some(state) = &self.initiation else {
            return Err(HandshakeError::UnexpectedIndex);
        };
        let keys = handshake::consume_response(state, &self.identity, &self.psk, msg)?;
        // The pending handshake's index now belongs to the keypair.
        self.initiation = None;
        self.stats.rx_bytes += RESPONSE_LEN as u64;
        self.update_endpoint(src);
        let kp = Arc::new(Keypair::new(&keys, now));
        let old_prev = if let Some(next) = self.keypairs.next.take() {
            if let Some(cur) = self.keypairs.current.take() {
                self.registry.release(cur.local_index);
            }
            self.keypairs.previous.replace(next)
        } else {
            let cur = self.keypairs.current.take();
            std::mem::replace(&mut self.keypairs.previous, cur)
        };
        if let Some(old) = old_prev {
            self.registry.release(old.local_index);
        }
        self.keypairs.current = Some(kp);
        self.on_authenticated_received(now);
        self.timers.set(
            Timer::ZeroKeyMaterial,
            now + self.settings.timers.zero_keys_after(),
        );
        self.handshake_complete(true, now);
        // Confirm the session to the responder: queued data, or a keepalive.
        self.send_keepalive(now);
        Ok(())
    }

    /// Consumes a cookie reply to our last handshake message.
    pub fn handle_cookie_reply(&mut self, msg: &CookieReply<'_>, now: Instant) -> bool {
        let ours = self
            .initiation
            .as_ref()
            .is_some_and(|s| s.local_index == msg.receiver())
            || self
                .keypairs
                .next
                .as_ref()
                .is_some_and(|k| k.local_index == msg.receiver());
        ours && self.cookie.consume_reply(msg, now)
    }

    // ----- timers -----

    /// Runs every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(t) = self.timers.take_expired(now) {
            match t {
                Timer::RetransmitHandshake => self.on_retransmit(now),
                Timer::SendKeepalive => {
                    self.send_keepalive(now);
                    if self.need_another_keepalive {
                        self.need_another_keepalive = false;
                        self.timers.set(
                            Timer::SendKeepalive,
                            now + self.settings.timers.keepalive_timeout,
                        );
                    }
                }
                Timer::NewHandshake => self.send_initiation(now, false),
                Timer::ZeroKeyMaterial => {
                    self.clear_keys();
                    self.drop_initiation();
                    if self.state == PeerState::Online {
                        self.set_state(PeerState::Offline(OfflineReason::SessionExpired));
                    }
                }
                Timer::PersistentKeepalive => {
                    if self.persistent_keepalive.is_some() {
                        self.send_keepalive(now);
                    }
                }
                Timer::SessionExpiry => self.on_session_expiry(now),
            }
        }
    }

    fn on_retransmit(&mut self, now: Instant) {
        let answered = match (self.last_received, self.last_initiation_sent) {
            (Some(r), Some(s)) => r >= s,
            _ => false,
        };
        if !answered && self.has_keys() {
            // Dead peer: a handshake got no answer at all, so the session is gone.
            self.clear_keys();
        }
        if !answered && !matches!(self.state, PeerState::Offline(_)) {
            self.set_state(PeerState::Offline(OfflineReason::HandshakeTimeout));
        }
        if self.attempts >= self.settings.timers.max_handshake_attempts() {
            self.drop_initiation();
            let n = self.queue.len();
            self.queue.clear();
            self.queue_dropped = self.queue_dropped.saturating_add(n);
            if self.current_keypair(now).is_none() {
                self.set_state(PeerState::Offline(OfflineReason::RetriesExhausted));
            }
            if !self.timers.is_armed(Timer::ZeroKeyMaterial) {
                self.timers.set(
                    Timer::ZeroKeyMaterial,
                    now + self.settings.timers.zero_keys_after(),
                );
            }
            return;
        }
        self.attempts += 1;
        self.push_event(PeerEvent::HandshakeTimedOut {
            attempts: self.attempts,
        });
        self.send_initiation(now, true);
    }

    fn on_session_expiry(&mut self, now: Instant) {
        let reject = self.settings.timers.reject_after_time;
        let expired = |k: &Option<Arc<Keypair>>| {
            k.as_ref()
                .is_some_and(|k| now.saturating_duration_since(k.created) >= reject)
        };
        for slot in [Slot::Previous, Slot::Next, Slot::Current] {
            let k = match slot {
                Slot::Current => &mut self.keypairs.current,
                Slot::Previous => &mut self.keypairs.previous,
                Slot::Next => &mut self.keypairs.next,
            };
            if expired(k) {
                if let Some(k) = k.take() {
                    self.registry.release(k.local_index);
                }
            }
        }
        match &self.keypairs.current {
            Some(k) => self.timers.set(Timer::SessionExpiry, k.created + reject),
            None => {
                if self.state == PeerState::Online {
                    self.set_state(PeerState::Offline(OfflineReason::SessionExpired));
                }
            }
        }
    }

    // ----- internals -----

    fn wall_time(&self, at: Instant) -> Duration {
        let (mono, wall) = self.wall_anchor;
        if at >= mono {
            wall + (at - mono)
        } else {
            wall.saturating_sub(mono - at)
        }
    }

    fn jitter(&mut self) -> Duration {
        let max = self.settings.timers.max_jitter.as_nanos() as u64;
        if max == 0 {
            return Duration::ZERO;
        }
        Duration::from_nanos(self.rng.next_u64() % max)
    }

    fn keypair_usable(&self, k: &Keypair, now: Instant) -> bool {
        now.saturating_duration_since(k.created) < self.settings.timers.reject_after_time
            && k.sent_messages() < REJECT_AFTER_MESSAGES
    }

    fn find_keypair(&self, index: u32) -> Option<(Slot, Arc<Keypair>)> {
        let k = &self.keypairs;
        [
            (Slot::Current, &k.current),
            (Slot::Previous, &k.previous),
            (Slot::Next, &k.next),
        ]
        .into_iter()
        .find_map(|(s, k)| {
            k.as_ref()
                .filter(|k| k.local_index == index)
                .map(|k| (s, k.clone()))
        })
    }

    fn allocate_index(&mut self) -> u32 {
        loop {
            let i = self.rng.next_u32();
            if self.registry.claim(i) {
                return i;
            }
        }
    }

    fn enqueue(&mut self, packet: Vec<u8>) {
        if self.queue.len() >= self.settings.max_queued {
            self.queue.pop_front();
            self.queue_dropped = self.queue_dropped.saturating_add(1);
        }
        self.queue.push_back(packet);
    }

    /// Queues an event, discarding the oldest when [`MAX_EVENTS`] wait.
    fn push_event(&mut self, e: PeerEvent) {
        if self.events.len() >= MAX_EVENTS {
            self.events.pop_front();
        }
        self.events.push_back(e);
    }

    fn push_transmit(&mut self, payload: Vec<u8>, dst: SocketAddr) {
        self.stats.tx_bytes += payload.len() as u64;
        self.transmits.push_back(Transmit { dst, payload });
    }

    fn set_state(&mut self, to: PeerState) {
        if self.state != to {
            let from = self.state;
            self.state = to;
            self.push_event(PeerEvent::StateChanged { from, to });
        }
    }

    fn update_endpoint(&mut self, src: SocketAddr) {
        if self.endpoint != Some(src) {
            let from = self.endpoint.replace(src);
            self.push_event(PeerEvent::EndpointChanged { from, to: src });
        }
    }

    fn on_authenticated_sent(&mut self, now: Instant) {
        self.timers.stop(Timer::SendKeepalive);
        self.arm_persistent_keepalive(now);
    }

    fn on_authenticated_received(&mut self, now: Instant) {
        self.last_received = Some(now);
        self.timers.stop(Timer::NewHandshake);
        self.arm_persistent_keepalive(now);
    }

    fn arm_persistent_keepalive(&mut self, now: Instant) {
        if let Some(i) = self.persistent_keepalive {
            self.timers.set(Timer::PersistentKeepalive, now + i);
        }
    }

    fn handshake_complete(&mut self, initiator: bool, now: Instant) {
        self.timers.stop(Timer::RetransmitHandshake);
        self.attempts = 0;
        self.sent_last_minute_handshake = false;
        self.stats.handshakes += 1;
        self.stats.last_handshake = Some(now);
        if let Some(k) = &self.keypairs.current {
            self.timers.set(
                Timer::SessionExpiry,
                k.created + self.settings.timers.reject_after_time,
            );
        }
        self.push_event(PeerEvent::HandshakeCompleted { initiator });
        self.set_state(PeerState::Online);
    }

    fn confirm_next(&mut self, now: Instant) {
        let Some(next) = self.keypairs.next.take() else {
            return;
        };
        let cur = self.keypairs.current.replace(next);
        if let Some(old) = std::mem::replace(&mut self.keypairs.previous, cur) {
            self.registry.release(old.local_index);
        }
        self.handshake_complete(false, now);
        self.flush_queue(now);
    }

    fn clear_keys(&mut self) {
        for k in [
            self.keypairs.current.take(),
            self.keypairs.previous.take(),
            self.keypairs.next.take(),
        ]
        .into_iter()
        .flatten()
        {
            self.registry.release(k.local_index);
        }
        self.timers.stop(Timer::SessionExpiry);
    }

    fn drop_initiation(&mut self) {
        if let Some(s) = self.initiation.take() {
            self.registry.release(s.local_index);
        }
        self.timers.stop(Timer::RetransmitHandshake);
    }

    fn send_keepalive(&mut self, now: Instant) {
        if self.queue.is_empty() {
            self.queue.push_back(Vec::new());
        }
        self.flush_queue(now);
    }

    /// Sends queued packets on the current session, or asks for a handshake.
    fn flush_queue(&mut self, now: Instant) {
        if self.queue.is_empty() {
            return;
        }
        let (Some(k), Some(dst)) = (self.current_keypair(now).cloned(), self.endpoint) else {
            self.send_initiation(now, false);
            return;
        };
        while let Some(p) = self.queue.pop_front() {
            let mut out = vec![0u8; Keypair::sealed_len(p.len(), self.settings.mtu)];
            match k.seal(&p, &mut out, self.settings.mtu) {
                Ok(len) => {
                    out.truncate(len);
                    self.transmits.push_back(Transmit { dst, payload: out });
                    self.after_data_sent(&k, len, !p.is_empty(), now);
                }
                Err(_) => {
                    self.queue.push_front(p);
                    self.send_initiation(now, false);
                    return;
                }
            }
        }
    }

    fn send_initiation(&mut self, now: Instant, is_retry: bool) {
        let Some(dst) = self.endpoint else {
            if self.current_keypair(now).is_none() {
                self.set_state(PeerState::Offline(OfflineReason::NoEndpoint));
            }
            return;
        };
        let Some(ss) = self.static_static else {
            return;
        };
        if !is_retry {
            self.attempts = 0;
        }
        if let Some(t) = self.last_initiation_sent {
            if now.saturating_duration_since(t) < self.settings.timers.rekey_timeout {
                return;
            }
        }
        self.last_initiation_sent = Some(now);
        if let Some(old) = self.initiation.take() {
            self.registry.release(old.local_index);
        }
        let index = self.allocate_index();
        let mut eph = [0u8; 32];
        self.rng.fill_bytes(&mut eph);
        let ts = Tai64N::from_unix(self.wall_time(now));
        let mut msg = [0u8; INITIATION_LEN];
        match handshake::create_initiation(
            &self.identity,
            &self.public_key,
            &ss,
            eph,
            index,
            ts,
            &mut msg,
        ) {
            Ok(state) => self.initiation = Some(state),
            Err(_) => {
                self.registry.release(index);
                return;
            }
        }
        self.cookie.add_macs(&mut msg, now);
        self.push_transmit(msg.to_vec(), dst);
        self.on_authenticated_sent(now);
        let j = self.jitter();
        self.timers.set(
            Timer::RetransmitHandshake,
            now + self.settings.timers.rekey_timeout + j,
        );
        if self.current_keypair(now).is_none()
            && matches!(
                self.state,
                PeerState::Offline(OfflineReason::NotConnected)
                    | PeerState::Offline(OfflineReason::NoEndpoint)
                    | PeerState::Offline(OfflineReason::SessionExpired)
                    | PeerState::Offline(OfflineReason::RetriesExhausted)
            )
        {
            self.set_state(PeerState::Handshaking);
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        // The RNG's state predicts every ephemeral key and index it would have produced next:
        // overwrite it in place (rand_chacha does not wipe it), and let `black_box` observe
        // the new state so the store to memory about to be freed is not optimised away.
        self.rng = ChaCha20Rng::from_seed([0; 32]);
        std::hint::black_box(&self.rng);
        self.clear_keys();
        self.drop_initiation();
        if let Some(ss) = self.static_static.as_mut() {
            zeroize::Zeroize::zeroize(ss);
        }
    }
}

/// A simple [`IndexRegistry`] for one process-local set of indices (tests, simulations).
#[derive(Debug, Default)]
pub struct LocalIndexRegistry {
    taken: parking_lot::Mutex<std::collections::HashSet<u32>>,
}

impl IndexRegistry for LocalIndexRegistry {
    fn claim(&self, index: u32) -> bool {
        self.taken.lock().insert(index)
    }
    fn release(&self, index: u32) {
        self.taken.lock().remove(&index);
    }
}

impl LocalIndexRegistry {
    /// Number of indices held.
    pub fn len(&self) -> usize {
        self.taken.lock().len()
    }
    /// Whether no index is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::PrivateKey;

    /// A peer without a session and without an endpoint: every packet is queued.
    fn lonely_peer(max_queued: usize) -> Peer {
        let ours = PrivateKey::from_bytes([1; 32]);
        let theirs = PrivateKey::from_bytes([2; 32]).public_key();
        Peer::new(
            Arc::new(StaticIdentity::new(ours)),
            PeerConfig {
                public_key: theirs,
                preshared_key: None,
                endpoint: None,
                persistent_keepalive: None,
            },
            PeerSettings {
                timers: TimerConfig::default(),
                rekey_after_bytes: u64::MAX,
                mtu: 1420,
                max_queued,
            },
            Arc::new(LocalIndexRegistry::default()),
            [7; 32],
            (Instant::now(), Duration::from_secs(1_700_000_000)),
        )
    }

    /// A flood towards a peer with no session overflows its queue: the drops are one count,
    /// not an event per packet, and the events held stay within MAX_EVENTS.
    #[test]
    fn queue_overflow_is_counted_not_one_event_per_packet() {
        let mut p = lonely_peer(16);
        let now = Instant::now();
        let packet = [0x45u8; 60];
        let mut out = [0u8; 256];
        let flood = 100_000;
        for _ in 0..flood {
            let r = p.encapsulate(&packet, &mut out, now).expect("queued");
            assert_eq!(r, Encapsulated::Queued);
        }
        assert!(p.events.len() <= MAX_EVENTS, "{} events", p.events.len());
        let mut dropped = 0;
        let mut polled = 0;
        while let Some(e) = p.poll_event() {
            polled += 1;
            assert!(polled <= MAX_EVENTS + 1, "events never end");
            if let PeerEvent::QueueDropped { packets } = e {
                dropped += packets;
            }
        }
        assert_eq!(
            dropped,
            flood - 16,
            "every packet beyond the queue is counted once"
        );
        assert!(!p.has_events());
        // A later overflow is reported afresh.
        p.encapsulate(&packet, &mut out, now).expect("queued");
        assert!(p.has_events());
        assert_eq!(p.poll_event(), Some(PeerEvent::QueueDropped { packets: 1 }));
    }

    /// A name that resolves after the peer started: what waited for an endpoint leaves at once
    /// (a handshake initiation), and a later change of address sends nothing by itself.
    #[test]
    fn a_resolved_endpoint_sends_what_waited_for_it() {
        let now = Instant::now();
        let mut p = lonely_peer(16);
        let mut out = [0u8; 256];
        p.encapsulate(&[0x45u8; 60], &mut out, now).expect("queued");
        assert!(p.poll_transmit().is_none(), "nowhere to send yet");
        let a: SocketAddr = "192.0.2.1:51820".parse().unwrap();
        p.set_resolved_endpoint(a, now);
        let t = p
            .poll_transmit()
            .expect("an initiation once the endpoint is known");
        assert_eq!(t.dst, a);
        assert_eq!(t.payload.len(), INITIATION_LEN);
        assert_eq!(p.state(), PeerState::Handshaking);
        let b: SocketAddr = "192.0.2.2:51820".parse().unwrap();
        p.set_resolved_endpoint(b, now);
        assert_eq!(p.endpoint(), Some(b));
        assert!(p.poll_transmit().is_none());

        // With a persistent keepalive and nothing queued, the keepalive is what waited.
        let mut k = lonely_peer(16);
        k.set_persistent_keepalive(Some(Duration::from_secs(25)), now);
        while k.poll_transmit().is_some() {}
        k.set_resolved_endpoint(a, now);
        assert!(
            k.poll_transmit().is_some(),
            "a keepalive starts a handshake"
        );
    }

    #[test]
    fn events_are_bounded_oldest_first_out() {
        let mut p = lonely_peer(4);
        for k in 0..(MAX_EVENTS as u32 + 10) {
            p.push_event(PeerEvent::HandshakeTimedOut { attempts: k });
        }
        assert_eq!(p.events.len(), MAX_EVENTS);
        assert_eq!(
            p.poll_event(),
            Some(PeerEvent::HandshakeTimedOut { attempts: 10 }),
            "the oldest were discarded"
        );
    }

    /// The ephemeral public key of the initiation a fresh peer sends, after `prepare`.
    fn first_ephemeral(prepare: impl FnOnce(&mut Peer)) -> [u8; 32] {
        let now = Instant::now();
        let me = Arc::new(StaticIdentity::new(crate::keys::PrivateKey::from_bytes(
            [1; 32],
        )));
        let them = StaticIdentity::new(crate::keys::PrivateKey::from_bytes([2; 32]));
        let config = PeerConfig {
            public_key: *them.public_key(),
            preshared_key: None,
            endpoint: Some(SocketAddr::from(([192, 0, 2, 1], 51820))),
            persistent_keepalive: None,
        };
        let mut p = Peer::new(
            me,
            config,
            PeerSettings::default(),
            Arc::new(LocalIndexRegistry::default()),
            [7; 32],
            (now, Duration::from_secs(1_700_000_000)),
        );
        prepare(&mut p);
        let mut out = [0u8; 128];
        assert!(matches!(
            p.encapsulate(&[], &mut out, now),
            Ok(Encapsulated::Queued)
        ));
        let t = p.poll_transmit().expect("an initiation");
        t.payload[8..40].try_into().unwrap()
    }

    #[test]
    fn reseeding_changes_later_ephemerals_deterministically() {
        let plain = first_ephemeral(|_| {});
        let reseeded = first_ephemeral(|p| p.reseed([9; 32]));
        let again = first_ephemeral(|p| p.reseed([9; 32]));
        let other = first_ephemeral(|p| p.reseed([10; 32]));
        // A reseeded peer no longer follows its initial seed...
        assert_ne!(plain, reseeded);
        assert_ne!(reseeded, other);
        // ...and the protocol stays deterministic for a given seed (sans-IO tests rely on it).
        assert_eq!(reseeded, again);
        // Reseeding with the seed the RNG started from still changes it: the old state is mixed
        // in rather than replaced.
        assert_ne!(first_ephemeral(|p| p.reseed([7; 32])), plain);
    }

    #[test]
    fn stats_continue_from_an_earlier_instance() {
        let t0 = Instant::now();
        let t1 = t0 + Duration::from_secs(3);
        let earlier = PeerStats {
            rx_bytes: 100,
            tx_bytes: 200,
            handshakes: 2,
            last_handshake: Some(t0),
        };
        let mut fresh = PeerStats::default();
        fresh.continue_from(earlier);
        assert_eq!(fresh, earlier);
        let mut later = PeerStats {
            rx_bytes: 1,
            tx_bytes: 2,
            handshakes: 1,
            last_handshake: Some(t1),
        };
        later.continue_from(earlier);
        assert_eq!(
            later,
            PeerStats {
                rx_bytes: 101,
                tx_bytes: 202,
                handshakes: 3,
                last_handshake: Some(t1),
            }
        );
    }
}
