//! The hub's logic, sans-IO: [`Hub::handle`] takes one datagram (or TCP frame body), where it
//! came from and the time, and appends the replies to send. The I/O layer (`net`) owns the
//! sockets, the clock and the randomness.
//!
//! What the hub does with a message (docs/hub-protocol.md, docs/hub.md):
//! - STUN Binding request: answer with XOR-MAPPED-ADDRESS (the source it came from).
//! - Hello: answer with a stateless challenge nonce bound to the source (no memory used).
//! - Register: check the nonce, the admission list and the proof of the private key; record
//!   the peer's key, observed source and candidates for [`REGISTRATION_TTL`]; answer
//!   Registered. Renewals are the same message.
//! - Lookup (from a registered source): answer Presence.
//! - Signal (from the source where `from` is registered): forward unchanged to `to`, or
//!   answer an offline Presence. The envelope is sealed between the two peers; the hub only
//!   moves it.
//!
//! - RelayOpen (from a registered source, for a peer registered here): open the pair's relay
//!   channel and tell both ends with RelayReady. Relay frames themselves never come here:
//!   the I/O layer forwards them with the [`relay::Routes`] snapshot from
//!   [`Hub::relay_routes`].
//!
//! Everything else, and anything over a rate or table bound, is dropped silently and counted.
//!
//! With a shared store ([`Hub::share`], `store: redis://…`) registrations are also published,
//! and lookups and signals for peers not registered here become [`StoreOp`]s for the I/O layer
//! (module [`shared`]).

pub mod counters;
pub mod limits;
pub mod ratelimit;
pub mod relay;
pub mod shared;
mod stun;

#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::time::Instant;

use protocol::hub::messages::{Candidates, Message, KEY_LEN, MAX_MESSAGE_LEN};
use protocol::hub::seal::{challenge_kind, challenge_nonce, verify_registration, visit_nonce};
use protocol::nat::demux::{classify, Kind};
use x25519_dalek::StaticSecret;
use zeroize::Zeroizing;

pub use counters::Counters;
pub use limits::{Limits, NONCE_BUCKET, REGISTRATION_TTL, SWEEP_INTERVAL};
use ratelimit::{Bucket, SourceLimiter};
pub use shared::{HubId, StoreOp};

/// A raw public key.
pub type Key = [u8; KEY_LEN];

/// How a message reached the hub, and so how to answer it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// On the UDP socket with this index (one per `listen` address).
    Udp(usize),
    /// On the TCP connection with this id.
    Tcp(u64),
}

/// A peer's address as the hub sees it: the transport and the remote socket address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Origin {
    /// Socket or connection.
    pub transport: Transport,
    /// The remote address (server-reflexive for a peer behind NAT).
    pub addr: SocketAddr,
}

/// One message to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// Where to.
    pub to: Origin,
    /// The message (a hub message or a STUN response; TCP adds the length prefix).
    pub payload: Vec<u8>,
}

/// Which keys may register.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// Only these keys.
    Allow(HashSet<Key>),
    /// Any key whose holder proves it.
    Any,
}

impl Admission {
    fn admits(&self, k: &Key) -> bool {
        match self {
            Admission::Allow(set) => set.contains(k),
            Admission::Any => true,
        }
    }
}

struct Registration {
    origin: Origin,
    candidates: Candidates,
    expires: Instant,
    /// Made with Visit: only to relay to peers homed here, kept out of the shared store.
    visiting: bool,
    /// Lookups and signals from this peer.
    bucket: Bucket,
}

/// The hub's whole state: registrations, rate limiters and counters.
pub struct Hub {
    private: StaticSecret,
    public: Key,
    /// Keys challenge nonces; random per process, so a restart invalidates outstanding ones.
    nonce_secret: Zeroizing<Key>,
    epoch: Instant,
    admission: Admission,
    limits: Limits,
    regs: HashMap<Key, Registration>,
    by_origin: HashMap<Origin, Key>,
    sources: SourceLimiter,
    verify_budget: Bucket,
    counters: Counters,
    next_sweep: Instant,
    /// With a shared store: this hub's id there and the operations not yet drained.
    shared: Option<(HubId, Vec<StoreOp>)>,
    /// Relay channels; `None` with the relay switched off.
    channels: Option<relay::Channels>,
    /// Where peers of other hubs reach this one (`advertise`), for the store's directory.
    advertise: Option<SocketAddr>,
}

impl Hub {
    /// A hub with `private` as its static key. `nonce_secret` must be random (the caller reads
    /// it from the OS); `now` starts the nonce clock.
    pub fn new(
        private: StaticSecret,
        nonce_secret: Key,
        admission: Admission,
        limits: Limits,
        now: Instant,
    ) -> Self {
        let public = protocol::noise::crypto::public_key(&private);
        Hub {
            private,
            public,
            nonce_secret: Zeroizing::new(nonce_secret),
            epoch: now,
            admission,
            limits,
            regs: HashMap::new(),
            by_origin: HashMap::new(),
            sources: SourceLimiter::new(
                limits.max_sources,
                limits.source_burst,
                limits.source_per_sec,
                now,
            ),
            verify_budget: Bucket::full(limits.verify_per_sec, now),
            counters: Counters::default(),
            next_sweep: now + SWEEP_INTERVAL,
            shared: None,
            channels: None,
            advertise: None,
        }
    }

    /// Sets the address this hub is reached at by peers of other hubs (its directory entry).
    pub fn set_advertise(&mut self, addr: SocketAddr) {
        self.advertise = Some(addr);
    }

    /// This hub's directory entry for the shared store (`None` without `advertise`), so
    /// peers of other hubs can open relay channels here.
    pub fn hub_info(&self) -> Option<Vec<u8>> {
        self.advertise
            .map(|a| shared::encode_hub_info(self.public, a))
    }

    /// Serves relay channels (`relay.enabled`).
    pub fn enable_relay(&mut self) {
        let mut h = blake2::Blake2s256::default();
        blake2::Digest::update(&mut h, b"vpnhub relay id secret v1");
        blake2::Digest::update(&mut h, *self.nonce_secret);
        self.channels = Some(relay::Channels::new(blake2::Digest::finalize(h).into()));
    }

    /// A new relay routing snapshot when channels or their ends changed since the last call
    /// (`None`: keep the current one). Also closes channels whose ends went away.
    pub fn relay_routes(&mut self, now: Instant) -> Option<relay::Routes> {
        let regs = &self.regs;
        let limits = self.limits;
        let channels = self.channels.as_mut()?;
        let routes = channels.rebuild(
            |k| regs.get(k).filter(|r| r.expires > now).map(|r| r.origin),
            limits.relay_burst_bytes,
            limits.relay_bytes_per_sec,
            now,
        );
        self.counters.relay_channels = channels.len() as u64;
        routes
    }

    fn touch_routes(&mut self) {
        if let Some(c) = &mut self.channels {
            c.touch();
        }
    }

    /// Shares presence and signaling with other hubs through a store, as hub `id`: from now
    /// on registrations and misses produce [`StoreOp`]s (see [`Hub::drain_store_ops`]).
    pub fn share(&mut self, id: HubId) {
        self.shared = Some((id, Vec::new()));
    }

    /// The operations for the shared store produced so far (none without one). The I/O layer
    /// drains them after every call into the hub, so the queue holds at most one call's
    /// worth (a sweep's removals at most, bounded by the registration table).
    pub fn drain_store_ops(&mut self) -> Vec<StoreOp> {
        match &mut self.shared {
            Some((_, ops)) => std::mem::take(ops),
            None => Vec::new(),
        }
    }

    fn store_op(&mut self, op: StoreOp) {
        if let Some((_, ops)) = &mut self.shared {
            ops.push(op);
        }
    }

    /// The hub's public key.
    pub fn public_key(&self) -> &Key {
        &self.public
    }

    /// The counters so far.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// The counters, for the I/O layer's own events (TCP accepts, full queues).
    pub fn counters_mut(&mut self) -> &mut Counters {
        &mut self.counters
    }

    /// Registered peers.
    pub fn registered(&self) -> usize {
        self.regs.len()
    }

    /// Source IPs held by the rate limiter.
    pub fn tracked_sources(&self) -> usize {
        self.sources.len()
    }

    /// Replaces the admission list (SIGHUP). Registered peers no longer admitted are dropped at
    /// once; returns how many.
    pub fn set_admission(&mut self, admission: Admission) -> usize {
        self.admission = admission;
        let before = self.regs.len();
        let adm = &self.admission;
        let by_origin = &mut self.by_origin;
        let mut gone = Vec::new();
        self.regs.retain(|k, r| {
            let keep = adm.admits(k);
            if !keep {
                by_origin.remove(&r.origin);
                gone.push(*k);
            }
            keep
        });
        for peer in gone {
            self.store_op(StoreOp::Remove { peer });
        }
        self.touch_routes();
        let n = before - self.regs.len();
        self.counters.evicted_by_reload += n as u64;
        n
    }

    /// Forgets registrations made over a TCP connection that closed.
    pub fn connection_closed(&mut self, conn: u64) {
        let by_origin = &mut self.by_origin;
        let mut gone = Vec::new();
        self.regs.retain(|k, r| {
            let keep = r.origin.transport != Transport::Tcp(conn);
            if !keep {
                by_origin.remove(&r.origin);
                gone.push(*k);
            }
            keep
        });
        for peer in gone {
            self.store_op(StoreOp::Remove { peer });
        }
        self.touch_routes();
    }

    /// Expires registrations and sweeps the rate limiter; call at least every
    /// [`SWEEP_INTERVAL`] (handle does it too, when due).
    pub fn handle_timeout(&mut self, now: Instant) {
        if now < self.next_sweep {
            return;
        }
        self.next_sweep = now + SWEEP_INTERVAL;
        let before = self.regs.len();
        let by_origin = &mut self.by_origin;
        self.regs.retain(|_, r| {
            let keep = r.expires > now;
            if !keep {
                by_origin.remove(&r.origin);
            }
            keep
        });
        self.counters.expired += (before - self.regs.len()) as u64;
        if before != self.regs.len() {
            self.touch_routes();
        }
        self.sources.sweep(now);
    }

    /// Handles one datagram or TCP frame body from `from`, appending replies to `out`.
    pub fn handle(&mut self, from: Origin, data: &[u8], now: Instant, out: &mut Vec<Reply>) {
        self.counters.rx_messages += 1;
        self.handle_timeout(now);
        match classify(data) {
            Kind::Stun => self.on_stun(from, data, now, out),
            Kind::Hub => match Message::parse(data) {
                Ok(m) => self.on_message(from, m, data, now, out),
                Err(_) => self.counters.drop_malformed += 1,
            },
            _ => self.counters.drop_malformed += 1,
        }
    }

    fn on_stun(&mut self, from: Origin, data: &[u8], now: Instant, out: &mut Vec<Reply>) {
        let Some(answer) = stun::answer(data, from.addr) else {
            self.counters.drop_stun_other += 1;
            return;
        };
        // A bare request is smaller than the answer: limit it like registrations so the hub
        // is no use as a reflector.
        if !self.sources.allow(from.addr.ip(), now) {
            self.counters.drop_rate_limited += 1;
            return;
        }
        self.counters.stun_answered += 1;
        out.push(Reply {
            to: from,
            payload: answer,
        });
    }

    fn on_message(
        &mut self,
        from: Origin,
        m: Message<'_>,
        raw: &[u8],
        now: Instant,
        out: &mut Vec<Reply>,
    ) {
        match m {
            Message::Hello { peer } => self.on_hello(from, peer, false, now, out),
            Message::Visit { peer } => self.on_hello(from, peer, true, now, out),
            Message::Register {
                peer,
                nonce,
                proof,
                candidates,
            } => self.on_register(from, peer, nonce, proof, candidates, now, out),
            Message::Lookup { peer } => self.on_lookup(from, peer, now, out),
            Message::Signal { to, from: key, .. } => self.on_signal(from, to, key, raw, now, out),
            Message::RelayOpen { peer } => self.on_relay_open(from, peer, now, out),
            Message::Challenge { .. }
            | Message::Registered { .. }
            | Message::Presence { .. }
            | Message::RelayReady { .. }
            | Message::RelayElsewhere { .. }
            | Message::Unregistered => self.counters.drop_wrong_direction += 1,
        }
    }

    fn bucket(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.epoch).as_secs() / NONCE_BUCKET.as_secs()
    }

    /// A Hello, or a Visit (`visit`): the registration it leads to stays out of the store.
    fn on_hello(
        &mut self,
        from: Origin,
        peer: Key,
        visit: bool,
        now: Instant,
        out: &mut Vec<Reply>,
    ) {
        // Admission first: a key outside it learns nothing, not even that the hub is here.
        if !self.admission.admits(&peer) {
            self.counters.drop_not_admitted += 1;
            return;
        }
        if !self.sources.allow(from.addr.ip(), now) {
            self.counters.drop_rate_limited += 1;
            return;
        }
        let nonce = if visit {
            visit_nonce(&self.nonce_secret, &from.addr, self.bucket(now))
        } else {
            challenge_nonce(&self.nonce_secret, &from.addr, self.bucket(now))
        };
        self.counters.challenges_sent += 1;
        push(out, from, &Message::Challenge { nonce });
    }

    #[allow(clippy::too_many_arguments)]
    fn on_register(
        &mut self,
        from: Origin,
        peer: Key,
        nonce: [u8; 16],
        proof: [u8; 16],
        candidates: Candidates,
        now: Instant,
        out: &mut Vec<Reply>,
    ) {
        if !self.admission.admits(&peer) {
            self.counters.drop_not_admitted += 1;
            return;
        }
        if !self.sources.allow(from.addr.ip(), now) {
            self.counters.drop_rate_limited += 1;
            return;
        }
        // The nonce check is a MAC (cheap) and comes before the DH (not cheap).
        let Some(visiting) =
            challenge_kind(&self.nonce_secret, &from.addr, self.bucket(now), &nonce)
        else {
            self.counters.drop_stale_nonce += 1;
            return;
        };
        let renewal = self.regs.contains_key(&peer);
        if !renewal && self.regs.len() >= self.limits.max_registrations {
            self.counters.drop_table_full += 1;
            return;
        }
        if !self
            .verify_budget
            .take(self.limits.verify_per_sec, self.limits.verify_per_sec, now)
        {
            self.counters.drop_verify_budget += 1;
            return;
        }
        if !verify_registration(
            &self.private,
            &peer,
            &nonce,
            &from.addr,
            &candidates,
            &proof,
        ) {
            self.counters.drop_bad_proof += 1;
            return;
        }
        // One origin speaks for one key: another key proven from here replaces the old one.
        if let Some(old) = self.by_origin.insert(from, peer) {
            if old != peer {
                self.regs.remove(&old);
                self.store_op(StoreOp::Remove { peer: old });
            }
        }
        let bucket = Bucket::full(self.limits.peer_burst, now);
        let expires = now + REGISTRATION_TTL;
        let moved = self.regs.get(&peer).is_none_or(|r| r.origin != from);
        if moved {
            self.touch_routes();
        }
        match self.regs.get_mut(&peer) {
            Some(r) => {
                if r.origin != from {
                    self.by_origin.remove(&r.origin);
                }
                r.origin = from;
                r.candidates = candidates;
                r.expires = expires;
                r.visiting = visiting;
            }
            None => {
                self.regs.insert(
                    peer,
                    Registration {
                        origin: from,
                        candidates,
                        expires,
                        visiting,
                        bucket,
                    },
                );
            }
        }
        self.counters.registrations += 1;
        if let Some((id, ops)) = self.shared.as_mut().filter(|_| !visiting) {
            ops.push(StoreOp::Put {
                peer,
                record: shared::encode_record(id, peer, from.addr, candidates),
            });
        }
        push(
            out,
            from,
            &Message::Registered {
                observed: from.addr,
                ttl_secs: REGISTRATION_TTL.as_secs() as u16,
            },
        );
    }

    /// The live registration of the key at `from`, after its per-peer rate limit. A source
    /// with none is told so (`Unregistered`, within the per-source rate), so a peer whose
    /// registration this hub lost (a restart) registers again at once.
    fn sender(&mut self, from: Origin, now: Instant, out: &mut Vec<Reply>) -> Option<Key> {
        let Some(&key) = self.by_origin.get(&from) else {
            self.counters.drop_unregistered += 1;
            self.nudge(from, now, out);
            return None;
        };
        let limits = self.limits;
        let r = self.regs.get_mut(&key)?;
        if r.expires <= now {
            self.counters.drop_unregistered += 1;
            return None;
        }
        if !r.bucket.take(limits.peer_burst, limits.peer_per_sec, now) {
            self.counters.drop_rate_limited += 1;
            return None;
        }
        Some(key)
    }

    fn nudge(&mut self, from: Origin, now: Instant, out: &mut Vec<Reply>) {
        // The answer is no bigger than what prompted it, and rate-limited per source IP like
        // STUN: no amplification, no reflection beyond the limiter.
        if self.sources.allow(from.addr.ip(), now) {
            self.counters.unregistered_sent += 1;
            push(out, from, &Message::Unregistered);
        }
    }

    /// A relay frame from `from` found no channel it is an end of: if `from` has no
    /// registration (this hub restarted), tell it so it registers and opens its channel again.
    pub fn relay_miss(&mut self, from: Origin, now: Instant, out: &mut Vec<Reply>) {
        if !self.by_origin.contains_key(&from) {
            self.nudge(from, now, out);
        }
    }

    fn presence(&self, peer: Key, now: Instant) -> Message<'static> {
        match self.regs.get(&peer).filter(|r| r.expires > now) {
            Some(r) => Message::Presence {
                peer,
                observed: Some(r.origin.addr),
                candidates: r.candidates,
            },
            None => Message::Presence {
                peer,
                observed: None,
                candidates: Candidates::default(),
            },
        }
    }

    fn on_lookup(&mut self, from: Origin, peer: Key, now: Instant, out: &mut Vec<Reply>) {
        if self.sender(from, now, out).is_none() {
            return;
        }
        if self.shared.is_some() && !self.is_local(&peer, now) {
            self.store_op(StoreOp::Lookup {
                peer,
                reply_to: from,
            });
            return;
        }
        self.counters.lookups_answered += 1;
        let m = self.presence(peer, now);
        push(out, from, &m);
    }

    fn on_relay_open(&mut self, from: Origin, peer: Key, now: Instant, out: &mut Vec<Reply>) {
        let Some(sender) = self.sender(from, now, out) else {
            return;
        };
        if self.channels.is_none() {
            self.counters.drop_relay_off += 1;
            return;
        }
        let Some(to) = self
            .regs
            .get(&peer)
            .filter(|r| r.expires > now)
            .map(|r| r.origin)
        else {
            // Relays never forward to each other: a peer homed on another hub is reached by
            // opening a channel there (docs/hub-protocol.md). With a shared store, find that
            // hub and tell the asker (RelayElsewhere); alone, the peer is offline.
            if self.shared.is_some() {
                self.store_op(StoreOp::RelayHome {
                    peer,
                    reply_to: from,
                });
            } else {
                self.counters.relay_to_offline += 1;
                push(out, from, &offline(peer));
            }
            return;
        };
        if sender == peer {
            self.counters.drop_malformed += 1;
            return;
        }
        let Some(channel) = self.channels.as_mut().and_then(|c| c.open(sender, peer)) else {
            self.counters.drop_table_full += 1;
            return;
        };
        self.counters.relay_opened += 1;
        push(out, from, &Message::RelayReady { peer, channel });
        push(
            out,
            to,
            &Message::RelayReady {
                peer: sender,
                channel,
            },
        );
    }

    fn is_local(&self, peer: &Key, now: Instant) -> bool {
        self.regs.get(peer).is_some_and(|r| r.expires > now)
    }

    /// Answers `reply_to`'s lookup of `peer` (a [`StoreOp::Lookup`]) with `record`, what the
    /// store holds for it (`None`: nothing, or the store failed). A record that does not parse
    /// as one for `peer` is counted and answered as offline.
    pub fn remote_presence(
        &mut self,
        reply_to: Origin,
        peer: Key,
        record: Option<&[u8]>,
        out: &mut Vec<Reply>,
    ) {
        let rec = record.and_then(|b| {
            let r = shared::parse_record(b, &peer);
            if r.is_none() {
                self.counters.store_bad_record += 1;
            }
            r
        });
        self.counters.lookups_answered += 1;
        let m = match rec {
            Some(r) => {
                self.counters.lookups_remote += 1;
                Message::Presence {
                    peer,
                    observed: Some(r.observed),
                    candidates: r.candidates,
                }
            }
            None => offline(peer),
        };
        push(out, reply_to, &m);
    }

    /// For a [`StoreOp::Signal`] to `to`: the hub to hand it to, from `record` (what the store
    /// holds for `to`). `None` when there is none, it does not parse, or it names this hub
    /// (a record left from before the peer went away): then call [`Hub::signal_offline`].
    pub fn signal_target(&mut self, to: &Key, record: Option<&[u8]>) -> Option<HubId> {
        let rec = shared::parse_record(record?, to);
        if rec.is_none() {
            self.counters.store_bad_record += 1;
        }
        let id = self.shared.as_ref()?.0;
        rec.map(|r| r.hub).filter(|h| *h != id)
    }

    /// For a [`StoreOp::RelayHome`]: the hub holding `peer` according to `record`, when it is
    /// another one (then read its directory entry and call [`Hub::relay_elsewhere`]).
    pub fn relay_home(&mut self, peer: &Key, record: Option<&[u8]>) -> Option<HubId> {
        let target = self.signal_target(peer, record);
        if target.is_none() {
            self.counters.relay_to_offline += 1;
        }
        target
    }

    /// Answers `reply_to`'s RelayOpen for `peer` with the hub to open it on, from that hub's
    /// directory entry `info` (nothing when it has none: it advertises no address).
    pub fn relay_elsewhere(
        &mut self,
        reply_to: Origin,
        peer: Key,
        info: Option<&[u8]>,
        out: &mut Vec<Reply>,
    ) {
        match info.and_then(shared::parse_hub_info) {
            Some((hub, addr)) if hub != self.public => {
                self.counters.relay_elsewhere += 1;
                push(out, reply_to, &Message::RelayElsewhere { peer, hub, addr });
            }
            _ => self.counters.relay_to_offline += 1,
        }
    }

    /// A signal from `reply_to` to `to` found no hub holding `to`: tell the sender it is
    /// offline, as for a local miss.
    pub fn signal_offline(&mut self, reply_to: Origin, to: Key, out: &mut Vec<Reply>) {
        self.counters.signals_to_offline += 1;
        push(out, reply_to, &offline(to));
    }

    /// Counts a signal handed to another hub.
    pub fn signal_sent_remote(&mut self) {
        self.counters.signals_to_remote += 1;
    }

    /// A Signal another hub handed to this one (untrusted bytes): delivered if it parses and
    /// its recipient is registered here, else dropped and counted.
    pub fn deliver_remote(&mut self, raw: &[u8], now: Instant, out: &mut Vec<Reply>) {
        let to = match Message::parse(raw) {
            Ok(Message::Signal { to, .. }) => to,
            _ => {
                self.counters.drop_remote_signal += 1;
                return;
            }
        };
        match self.regs.get(&to).filter(|r| r.expires > now) {
            Some(r) => {
                self.counters.signals_from_remote += 1;
                out.push(Reply {
                    to: r.origin,
                    payload: raw.to_vec(),
                });
            }
            None => self.counters.drop_remote_signal += 1,
        }
    }

    fn on_signal(
        &mut self,
        from: Origin,
        to: Key,
        key: Key,
        raw: &[u8],
        now: Instant,
        out: &mut Vec<Reply>,
    ) {
        let Some(sender) = self.sender(from, now, out) else {
            return;
        };
        if sender != key {
            self.counters.drop_spoofed_from += 1;
            return;
        }
        match self.regs.get(&to).filter(|r| r.expires > now) {
            Some(r) => {
                self.counters.signals_forwarded += 1;
                out.push(Reply {
                    to: r.origin,
                    payload: raw.to_vec(),
                });
            }
            None if self.shared.is_some() => self.store_op(StoreOp::Signal {
                to,
                reply_to: from,
                raw: raw.to_vec(),
            }),
            None => {
                self.counters.signals_to_offline += 1;
                let m = self.presence(to, now);
                push(out, from, &m);
            }
        }
    }
}

fn offline(peer: Key) -> Message<'static> {
    Message::Presence {
        peer,
        observed: None,
        candidates: Candidates::default(),
    }
}

fn push(out: &mut Vec<Reply>, to: Origin, m: &Message<'_>) {
    let mut buf = [0u8; MAX_MESSAGE_LEN];
    // Only messages the hub builds itself reach here, all far under the maximum.
    if let Ok(n) = m.encode(&mut buf) {
        out.push(Reply {
            to,
            payload: buf[..n].to_vec(),
        });
    }
}
