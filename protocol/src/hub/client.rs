//! A peer's side of one hub, sans-IO: registration with proof of the WireGuard private key,
//! renewal before the registration expires, presence lookups and sealed "call me maybe"
//! signals (docs/hub-protocol.md).
//!
//! Time is passed in; datagrams for the hub come out of [`HubClient::poll_transmit`] (the
//! caller sends them to the hub from the WireGuard socket) and what the hub says comes out of
//! [`HubClient::poll_event`].
//!
//! The registration proof binds the peer's source address as the hub sees it (`observed`).
//! The client learns it from the hub's STUN answer (the caller passes it to
//! [`HubClient::set_observed`]) and then from each `Registered`.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};
use x25519_dalek::StaticSecret;

use super::messages::{
    encode_addr, Candidates, Message, ParseError, ADDR_LEN, KEY_LEN, MAX_CANDIDATES,
    MAX_ENVELOPE_LEN, MAX_MESSAGE_LEN,
};
use super::seal::{
    envelope_key, open_envelope, registration_proof, seal_envelope, ENVELOPE_NONCE_LEN,
    ENVELOPE_OVERHEAD,
};
use crate::noise::crypto;

/// First wait for the hub's answer. A hub is usually tens of milliseconds away; one second
/// covers a slow link without making a lost datagram cost long.
pub const HUB_RETRY_BASE: Duration = Duration::from_secs(1);
/// The wait doubles up to this: a hub that is down is tried twice a minute, so a peer is
/// back within 30 s of the hub's return.
pub const HUB_RETRY_MAX: Duration = Duration::from_secs(30);
/// Unanswered attempts before the hub counts as `failed` (1 + 2 + 4 s: a hub that has not
/// answered in 7 s is unreachable for a user looking at `vpnctl show`).
pub const HUB_FAIL_AFTER: u32 = 3;
/// Renew when this fraction of the registration's lifetime has passed (1/3: every 30 s with
/// vpnhub's 90 s TTL, so two lost renewals and their retries still fit before it expires, the
/// NAT's ~30 s mapping to the hub stays alive, and a hub that restarted and lost its table
/// knows us again within 30 s).
pub const RENEW_DIVISOR: u32 = 3;
/// A lookup the hub leaves unanswered this long, while we think we are registered, means the
/// hub does not know us (it restarted, or our registration moved away): register again at once
/// instead of waiting up to [`RENEW_DIVISOR`] of the TTL. Lookups are answered in one round
/// trip; 3 s is far above any RTT and a lost datagram's retry.
pub const LOOKUP_ANSWER_WAIT: Duration = Duration::from_secs(3);
/// At most one re-registration per this long because the hub said `Unregistered`: the
/// message is not authenticated, so a spoofed stream of them costs at most a hello (and the
/// hub's DH on our proof) this often.
pub const UNREGISTERED_MIN_GAP: Duration = Duration::from_secs(2);
/// Never renew more often than this, whatever TTL a hub announces (a hostile or buggy hub
/// saying `ttl 0` must not make us spin).
pub const MIN_RENEW: Duration = Duration::from_secs(5);

/// Version byte of a signaling payload.
const PAYLOAD_VERSION: u8 = 1;
/// Payload type: "call me maybe", the sender's candidates.
const PAYLOAD_CALL_ME_MAYBE: u8 = 1;

/// How the client stands with its hub (`state` in `vpnctl show`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HubState {
    /// Registering (or waiting for our observed address).
    Connecting,
    /// Registered and renewing.
    Connected,
    /// [`HUB_FAIL_AFTER`] attempts in a row went unanswered; still retrying.
    Failed,
}

/// What the hub told us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HubEvent {
    /// Registered (first time or after a loss); `observed` is our address as the hub saw it.
    Registered {
        /// Our server-reflexive address.
        observed: SocketAddr,
    },
    /// The registration lapsed (no renewal answered before it expired).
    Lost,
    /// The answer to a lookup.
    Presence {
        /// The peer looked up.
        peer: [u8; KEY_LEN],
        /// Its address as the hub sees it; `None` when it is not registered.
        observed: Option<SocketAddr>,
        /// Its announced (local) candidates.
        candidates: Vec<SocketAddr>,
    },
    /// The hub said it has no registration for us (it restarted): we are registering again,
    /// and anything tied to the old registration (relay channels) is gone.
    Forgotten,
    /// The hub relays between us and `peer` on `channel` (answer to our or its `RelayOpen`).
    RelayReady {
        /// The other peer.
        peer: [u8; KEY_LEN],
        /// The channel to put on frames for it, and on which its frames come.
        channel: u32,
    },
    /// `peer` is registered on another hub (answer to our `RelayOpen`): a relay to it opens
    /// there.
    RelayElsewhere {
        /// The other peer.
        peer: [u8; KEY_LEN],
        /// Its hub's public key.
        hub: [u8; KEY_LEN],
        /// Where its hub listens.
        addr: SocketAddr,
    },
    /// A peer asked us to probe its candidates ("call me maybe").
    CallMeMaybe {
        /// The sender.
        peer: [u8; KEY_LEN],
        /// Its candidates.
        candidates: Vec<SocketAddr>,
        /// Whether it is behind an endpoint-dependent ("hard", symmetric) NAT, if it knows.
        hard_nat: Option<bool>,
    },
}

/// Why a datagram from the hub was not used (the daemon counts these).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HubClientError {
    /// Not a hub message.
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// A message a hub does not send to a peer, or one we did not ask for.
    #[error("unexpected hub message")]
    Unexpected,
    /// A signal whose envelope did not open (forged, or for another key).
    #[error("signal envelope did not open")]
    Envelope,
}

/// One hub, from a peer's side.
pub struct HubClient {
    hub_key: [u8; KEY_LEN],
    own_secret: StaticSecret,
    own_key: [u8; KEY_LEN],
    candidates: Candidates,
    observed: Option<SocketAddr>,
    state: HubState,
    registered_until: Option<Instant>,
    /// When to send the next hello (registration or renewal); `None` while waiting for our
    /// observed address.
    next_hello: Option<Instant>,
    /// An attempt in flight: when its hello went out, and whether the challenge came.
    attempt: Option<Instant>,
    unanswered: u32,
    rtt: Option<Duration>,
    /// The oldest lookup not answered yet.
    lookup_pending: Option<Instant>,
    /// When an `Unregistered` last made us register again.
    last_forgotten: Option<Instant>,
    /// Registering with Visit instead of Hello ([`HubClient::set_visiting`]).
    visiting: bool,
    /// Our NAT's mapping, told to peers with our candidates ([`HubClient::set_hard_nat`]).
    hard_nat: Option<bool>,
    rng: ChaCha20Rng,
    transmits: VecDeque<Vec<u8>>,
    events: VecDeque<HubEvent>,
}

impl std::fmt::Debug for HubClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubClient")
            .field("state", &self.state)
            .field("observed", &self.observed)
            .finish_non_exhaustive()
    }
}

impl HubClient {
    /// A client of the hub with public key `hub_key`, for the peer with `own_secret`. It
    /// starts registering once it knows its observed address ([`HubClient::set_observed`]).
    pub fn new(
        hub_key: [u8; KEY_LEN],
        own_secret: StaticSecret,
        seed: [u8; 32],
        _now: Instant,
    ) -> Self {
        let own_key = crypto::public_key(&own_secret);
        HubClient {
            hub_key,
            own_secret,
            own_key,
            candidates: Candidates::default(),
            observed: None,
            state: HubState::Connecting,
            registered_until: None,
            next_hello: None,
            attempt: None,
            unanswered: 0,
            rtt: None,
            lookup_pending: None,
            last_forgotten: None,
            visiting: false,
            hard_nat: None,
            rng: ChaCha20Rng::from_seed(seed),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// What our "call me maybe" says of our NAT: `Some(true)` behind an endpoint-dependent
    /// (symmetric) mapping, `Some(false)` an endpoint-independent one, `None` unknown. A pair
    /// that are both hard cannot be punched, which the peer then says when it relays.
    pub fn set_hard_nat(&mut self, hard: Option<bool>) {
        self.hard_nat = hard;
    }

    /// Registers as a visitor (Visit instead of Hello): only to relay to peers homed on this
    /// hub, without moving our presence record in the hubs' shared store.
    pub fn set_visiting(&mut self) {
        self.visiting = true;
    }

    /// Our address as the hub sees it (from its STUN answer). A change re-registers at once,
    /// since the registration (and what the hub tells other peers) holds the old one.
    pub fn set_observed(&mut self, observed: SocketAddr, now: Instant) {
        if self.observed != Some(observed) {
            self.observed = Some(observed);
            self.hello_now(now);
        }
    }

    /// The local candidates announced with the registration (at most
    /// [`MAX_CANDIDATES`]); a change re-registers at once.
    pub fn set_candidates(&mut self, addrs: &[SocketAddr], now: Instant) {
        let c = Candidates::from_slice(&addrs[..addrs.len().min(MAX_CANDIDATES)]);
        if c != self.candidates {
            self.candidates = c;
            if self.observed.is_some() {
                self.hello_now(now);
            }
        }
    }

    fn hello_now(&mut self, now: Instant) {
        self.next_hello = Some(now);
        self.attempt = None;
        self.handle_timeout(now);
    }

    /// How we stand with the hub.
    pub fn state(&self) -> HubState {
        self.state
    }

    /// Round trip of the last hello answered by a challenge.
    pub fn rtt(&self) -> Option<Duration> {
        self.rtt
    }

    /// Asks where `peer` is; the answer comes as [`HubEvent::Presence`]. An answer that does
    /// not come within [`LOOKUP_ANSWER_WAIT`] makes us register again.
    pub fn lookup(&mut self, peer: &[u8; KEY_LEN], now: Instant) {
        self.send(&Message::Lookup { peer: *peer });
        if self.state == HubState::Connected && self.lookup_pending.is_none() {
            self.lookup_pending = Some(now);
        }
    }

    /// Asks the hub to relay between us and `peer`; the answer comes as
    /// [`HubEvent::RelayReady`] (or an offline [`HubEvent::Presence`]).
    pub fn relay_open(&mut self, peer: &[u8; KEY_LEN]) {
        self.send(&Message::RelayOpen { peer: *peer });
    }

    /// Sends `peer`, through the hub, our candidates sealed so only it can read them. Does
    /// nothing for a key DH refuses (a low-order point).
    pub fn call_me_maybe(&mut self, peer: &[u8; KEY_LEN], candidates: &[SocketAddr]) {
        let Ok(key) = envelope_key(&self.own_secret, peer) else {
            return;
        };
        let cands = Candidates::from_slice(&candidates[..candidates.len().min(MAX_CANDIDATES)]);
        let mut payload = [0u8; 4 + MAX_CANDIDATES * ADDR_LEN];
        payload[0] = PAYLOAD_VERSION;
        payload[1] = PAYLOAD_CALL_ME_MAYBE;
        payload[2] = cands.as_slice().len() as u8;
        let mut len = 3;
        for c in cands.as_slice() {
            let mut e = [0; ADDR_LEN];
            encode_addr(c, &mut e);
            payload[len..len + ADDR_LEN].copy_from_slice(&e);
            len += ADDR_LEN;
        }
        // A trailing byte: our NAT's mapping (0 unknown, 1 easy, 2 hard).
        payload[len] = match self.hard_nat {
            None => 0,
            Some(false) => 1,
            Some(true) => 2,
        };
        len += 1;
        let mut nonce = [0u8; ENVELOPE_NONCE_LEN];
        self.rng.fill_bytes(&mut nonce);
        let mut envelope = [0u8; MAX_ENVELOPE_LEN];
        let Ok(n) = seal_envelope(
            &key,
            &nonce,
            &self.own_key,
            peer,
            &payload[..len],
            &mut envelope,
        ) else {
            return;
        };
        self.send(&Message::Signal {
            to: *peer,
            from: self.own_key,
            envelope: &envelope[..n],
        });
    }

    fn send(&mut self, m: &Message<'_>) {
        let mut buf = [0u8; MAX_MESSAGE_LEN];
        if let Ok(n) = m.encode(&mut buf) {
            self.transmits.push_back(buf[..n].to_vec());
        }
    }

    /// Handles a datagram that came from the hub's address.
    pub fn handle_input(&mut self, data: &[u8], now: Instant) -> Result<(), HubClientError> {
        match Message::parse(data)? {
            Message::Challenge { nonce } => {
                let (Some(sent), Some(observed)) = (self.attempt, self.observed) else {
                    return Err(HubClientError::Unexpected);
                };
                self.rtt = Some(now.saturating_duration_since(sent));
                let proof = registration_proof(
                    &self.own_secret,
                    &self.hub_key,
                    &self.own_key,
                    &self.hub_key,
                    &nonce,
                    &observed,
                    &self.candidates,
                )
                .map_err(|_| HubClientError::Unexpected)?;
                let register = Message::Register {
                    peer: self.own_key,
                    nonce,
                    proof,
                    candidates: self.candidates,
                };
                self.send(&register);
                Ok(())
            }
            Message::Registered { observed, ttl_secs } => {
                if self.attempt.is_none() {
                    return Err(HubClientError::Unexpected);
                }
                self.attempt = None;
                self.unanswered = 0;
                let ttl = Duration::from_secs(u64::from(ttl_secs));
                self.registered_until = Some(now + ttl);
                self.next_hello = Some(now + (ttl / RENEW_DIVISOR).max(MIN_RENEW));
                let was = self.state;
                self.state = HubState::Connected;
                let moved = self.observed != Some(observed);
                self.observed = Some(observed);
                if was != HubState::Connected || moved {
                    self.events.push_back(HubEvent::Registered { observed });
                }
                if moved {
                    // The proof was for the old address; register the new one now.
                    self.hello_now(now);
                }
                Ok(())
            }
            Message::Presence {
                peer,
                observed,
                candidates,
            } => {
                self.lookup_pending = None;
                self.events.push_back(HubEvent::Presence {
                    peer,
                    observed,
                    candidates: candidates.as_slice().to_vec(),
                });
                Ok(())
            }
            Message::Signal { to, from, envelope } => {
                if to != self.own_key {
                    return Err(HubClientError::Unexpected);
                }
                let key =
                    envelope_key(&self.own_secret, &from).map_err(|_| HubClientError::Envelope)?;
                let mut payload = [0u8; MAX_ENVELOPE_LEN];
                if envelope.len() < ENVELOPE_OVERHEAD {
                    return Err(HubClientError::Envelope);
                }
                let n = open_envelope(&key, &from, &to, envelope, &mut payload)
                    .map_err(|_| HubClientError::Envelope)?;
                let (candidates, hard_nat) = parse_call_me_maybe(&payload[..n])?;
                self.events.push_back(HubEvent::CallMeMaybe {
                    peer: from,
                    candidates,
                    hard_nat,
                });
                Ok(())
            }
            Message::RelayReady { peer, channel } => {
                self.events
                    .push_back(HubEvent::RelayReady { peer, channel });
                Ok(())
            }
            Message::RelayElsewhere { peer, hub, addr } => {
                if hub == self.hub_key || peer == self.own_key {
                    return Err(HubClientError::Unexpected);
                }
                self.events
                    .push_back(HubEvent::RelayElsewhere { peer, hub, addr });
                Ok(())
            }
            Message::Unregistered => {
                let recent = self
                    .last_forgotten
                    .is_some_and(|t| now < t + UNREGISTERED_MIN_GAP);
                if self.observed.is_none() || self.attempt.is_some() || recent {
                    // Registering already, or just did: nothing new to learn.
                    return Ok(());
                }
                self.last_forgotten = Some(now);
                self.lookup_pending = None;
                // The registration is gone: say so until the new one is made (then
                // `Registered` is reported again).
                self.state = HubState::Connecting;
                self.registered_until = None;
                self.events.push_back(HubEvent::Forgotten);
                self.hello_now(now);
                Ok(())
            }
            Message::Hello { .. }
            | Message::Visit { .. }
            | Message::Register { .. }
            | Message::Lookup { .. }
            | Message::RelayOpen { .. } => Err(HubClientError::Unexpected),
        }
    }

    /// Drives hellos, retries and renewals.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self
            .lookup_pending
            .is_some_and(|t| now >= t + LOOKUP_ANSWER_WAIT)
        {
            // The hub ignores us: it has no registration for our source.
            self.lookup_pending = None;
            if self.state == HubState::Connected && self.attempt.is_none() {
                self.hello_now(now);
                return;
            }
        }
        if let Some(until) = self.registered_until {
            if now >= until {
                self.registered_until = None;
                if self.state == HubState::Connected {
                    self.state = HubState::Connecting;
                    self.events.push_back(HubEvent::Lost);
                }
            }
        }
        let Some(at) = self.next_hello else { return };
        if now < at || self.observed.is_none() {
            return;
        }
        if self.attempt.is_some() {
            // The previous attempt went unanswered.
            self.unanswered += 1;
            if self.unanswered >= HUB_FAIL_AFTER && self.registered_until.is_none() {
                self.state = HubState::Failed;
            }
        }
        self.attempt = Some(now);
        if self.visiting {
            self.send(&Message::Visit { peer: self.own_key });
        } else {
            self.send(&Message::Hello { peer: self.own_key });
        }
        let wait = HUB_RETRY_BASE
            .saturating_mul(1 << self.unanswered.min(5))
            .min(HUB_RETRY_MAX);
        self.next_hello = Some(now + wait);
    }

    /// When to call [`HubClient::handle_timeout`] next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.next_hello,
            self.registered_until,
            self.lookup_pending.map(|t| t + LOOKUP_ANSWER_WAIT),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// The next datagram to send to the hub.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmits.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<HubEvent> {
        self.events.pop_front()
    }
}

/// The candidates of a "call me maybe" payload, and the sender's NAT hint when it has one (a
/// trailing byte: 0 unknown, 1 endpoint-independent, 2 endpoint-dependent).
fn parse_call_me_maybe(p: &[u8]) -> Result<(Vec<SocketAddr>, Option<bool>), HubClientError> {
    match p {
        [PAYLOAD_VERSION, PAYLOAD_CALL_ME_MAYBE, count, rest @ ..]
            if usize::from(*count) <= MAX_CANDIDATES
                && (rest.len() == usize::from(*count) * ADDR_LEN
                    || rest.len() == usize::from(*count) * ADDR_LEN + 1) =>
        {
            let n = usize::from(*count) * ADDR_LEN;
            let hard = match rest.get(n) {
                None | Some(0) => None,
                Some(1) => Some(false),
                Some(2) => Some(true),
                Some(_) => return Err(HubClientError::Envelope),
            };
            let rest = &rest[..n];
            // The candidate list encoding is the hub messages' own: reuse its parser.
            let mut framed = [0u8; 1 + MAX_CANDIDATES * ADDR_LEN];
            framed[0] = *count;
            framed[1..1 + rest.len()].copy_from_slice(rest);
            super::messages::parse_candidates(&framed[..1 + rest.len()], 0)
                .map(|c| (c.as_slice().to_vec(), hard))
                .map_err(|_| HubClientError::Envelope)
        }
        _ => Err(HubClientError::Envelope),
    }
}

#[cfg(test)]
#[path = "client_tests.rs"]
mod tests;
