//! The per-peer path state machine: which UDP address (and, from issue 11, which relay) carries
//! this peer's WireGuard traffic.
//!
//! Disco-style and symmetric: both peers ping every candidate address of the other at once
//! (simultaneous open), answer every ping with a pong and, when the ping came over a path they
//! do not yet trust, with a ping of their own (a triggered check, which opens their NAT's filter
//! toward the pinger). The best trusted path is selected and reported as
//! [`PathEvent::Selected`]; the daemon makes it the WireGuard endpoint without touching the
//! WireGuard session.
//!
//! Selection order: tier first ([`Tier`]: UDP beats the relay of issue 11), then LAN before
//! public, then RTT with hysteresis ([`SWITCH_MIN_GAIN`] and [`SWITCH_MIN_GAIN_PERCENT`]).
//!
//! Inputs: [`PathManager::handle_probe`] (probe datagrams for this peer),
//! [`PathManager::note_activity`] (WireGuard traffic to or from the peer: makes it active),
//! [`PathManager::note_wireguard_progress`] (a handshake completed or data authenticated:
//! proves the selected path carries WireGuard), candidate updates, link and mapping changes,
//! the hub's view ([`Signaling`]), and [`PathManager::handle_timeout`]. Outputs are drained
//! with [`PathManager::poll_transmit`] (sealed into a caller buffer, no allocation) and
//! [`PathManager::poll_event`].

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

use super::consts::{
    ACTIVE_TIMEOUT, HEARTBEAT_INTERVAL, MAX_CANDIDATES, MAX_PONGS_PER_ROUND, PATH_DOUBT,
    PATH_TRUST, PING_TIMEOUT, PROBE_INTERVAL_ACTIVE, PROBE_INTERVAL_IDLE_MAX, SWITCH_MIN_GAIN,
    SWITCH_MIN_GAIN_PERCENT, WIREGUARD_PROGRESS_TIMEOUT,
};
use super::probe::{Probe, ProbeError, ProbeKey, ProbeType};

/// Where a candidate address came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Source {
    /// The peer's `endpoint` in the configuration.
    Configured,
    /// A local-interface address the peer announced through the hub.
    Lan,
    /// A STUN-learned public endpoint the peer announced through the hub.
    Stun,
    /// The source of a probe that opened (ICE's peer-reflexive candidate).
    PeerReflexive,
    /// A relay channel through a hub ([`PathManager::set_relay`]): the daemon's stand-in
    /// address for it. Never probed (the relay carries only WireGuard), taken only while no
    /// UDP path is trusted, and judged by WireGuard progress alone.
    Relay,
}

/// The path classes, best first. Issue 11 adds relay paths as a lower tier: selection compares
/// tiers before anything else, so a relay is used only while no UDP path is trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Tier {
    /// Peer-to-peer UDP.
    Udp,
    /// Through a hub's relay.
    Relay,
}

/// What `vpnctl show` reports as the peer's path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PathKind {
    /// Peer-to-peer UDP without coordination: a configured or LAN endpoint.
    Direct,
    /// Peer-to-peer UDP opened through the hub (STUN-learned or peer-reflexive address).
    Punched,
    /// Through a relay (issue 11).
    Relay,
    /// No working path.
    None,
}

/// Why a peer has no direct or punched path (`why_not_direct`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WhyNotDirect {
    /// No address to try: no configured endpoint and none learned through a hub.
    NoCandidates,
    /// Candidates exist but none answered a probe.
    ProbesUnanswered,
    /// No candidates, and no hub could be reached to learn any.
    HubUnreachable,
    /// No candidates, and the hub says the peer is not registered.
    PeerOffline,
    /// Paths answer probes, but WireGuard made no progress over them.
    NoWireguardProgress,
    /// Relayed because the direct path that worked stopped answering; probing for it again
    /// goes on.
    DirectPathBroken,
}

/// The hub's view of this peer, fed by the (future) hub client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signaling {
    /// No hub configured.
    NotConfigured,
    /// Hubs configured, none reachable.
    HubUnreachable,
    /// A hub is reachable but the peer is not registered there.
    PeerOffline,
    /// The peer is registered.
    PeerOnline,
}

/// What the path machine tells the daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathEvent {
    /// Use `endpoint` for this peer's WireGuard traffic from now on.
    Selected {
        /// The UDP address.
        endpoint: SocketAddr,
        /// Direct or punched.
        kind: PathKind,
        /// The RTT that won.
        rtt: Duration,
    },
    /// The selected path stopped answering (or carried no WireGuard); nothing replaces it yet.
    Lost {
        /// The address that was selected.
        endpoint: SocketAddr,
    },
    /// A pong told us how the peer sees our address (a reflexive observation for the NAT
    /// actor, like a STUN answer).
    ObservedSelf {
        /// Our address as the peer saw it.
        addr: SocketAddr,
    },
}

/// Why a probe for this peer was dropped (the daemon counts these).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// The probe did not open.
    #[error(transparent)]
    Probe(#[from] ProbeError),
    /// A pong for no outstanding ping (late, replayed or forged by the peer).
    #[error("pong matches no outstanding ping")]
    UnmatchedPong,
    /// Too many pings this round: the ping is not answered.
    #[error("ping rate limit reached")]
    RateLimited,
}

/// Outstanding pings per candidate: a round and a heartbeat may overlap, more is waste.
const PINGS_PER_CANDIDATE: usize = 4;

#[derive(Debug, Clone)]
struct Candidate {
    addr: SocketAddr,
    source: Source,
    pings: [Option<([u8; 12], Instant)>; PINGS_PER_CANDIDATE],
    rtt: Option<Duration>,
    last_pong: Option<Instant>,
    /// Selected since this instant with no WireGuard progress yet.
    suspect: bool,
}

impl Candidate {
    fn is_lan(&self) -> bool {
        self.source == Source::Lan || (self.source != Source::Relay && is_private(self.addr.ip()))
    }

    fn tier(&self) -> Tier {
        if self.source == Source::Relay {
            Tier::Relay
        } else {
            Tier::Udp
        }
    }

    fn kind(&self) -> PathKind {
        match self.source {
            Source::Configured | Source::Lan => PathKind::Direct,
            Source::Stun | Source::PeerReflexive => PathKind::Punched,
            Source::Relay => PathKind::Relay,
        }
    }
}

/// Whether `ip` is a private or link-local address (a LAN candidate rather than a public one).
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_private() || v4.is_link_local(),
        IpAddr::V6(v6) => {
            (v6.segments()[0] & 0xfe00) == 0xfc00 || (v6.segments()[0] & 0xffc0) == 0xfe80
        }
    }
}

/// The path state of one peer.
pub struct PathManager {
    key: ProbeKey,
    rng: ChaCha20Rng,
    candidates: Vec<Candidate>,
    selected: Option<SocketAddr>,
    selected_since: Option<Instant>,
    last_activity: Option<Instant>,
    last_progress: Option<Instant>,
    /// The first WireGuard packet sent to the peer since its last progress: a working path
    /// answers it (a handshake response, data, or WireGuard's 10 s passive keepalive).
    awaiting_since: Option<Instant>,
    /// A UDP path was selected and lost, and none has been selected since.
    udp_lost: bool,
    interval: Duration,
    next_round: Instant,
    next_heartbeat: Option<Instant>,
    /// After idle→active, the selected path is kept this long while its heartbeat is answered.
    grace_until: Option<Instant>,
    pongs_left: u32,
    budget_reset: Instant,
    signaling: Signaling,
    queue: VecDeque<(SocketAddr, Probe)>,
    events: VecDeque<PathEvent>,
}

impl PathManager {
    /// A path machine for the peer whose probe key is `key`; `seed` drives txids and nonces.
    pub fn new(key: ProbeKey, seed: [u8; 32], now: Instant) -> Self {
        PathManager {
            key,
            rng: ChaCha20Rng::from_seed(seed),
            candidates: Vec::with_capacity(MAX_CANDIDATES),
            selected: None,
            selected_since: None,
            last_activity: None,
            last_progress: None,
            awaiting_since: None,
            udp_lost: false,
            interval: PROBE_INTERVAL_ACTIVE,
            next_round: now,
            next_heartbeat: None,
            grace_until: None,
            pongs_left: MAX_PONGS_PER_ROUND,
            budget_reset: now + PROBE_INTERVAL_ACTIVE,
            signaling: Signaling::NotConfigured,
            queue: VecDeque::with_capacity(4 * MAX_CANDIDATES),
            events: VecDeque::with_capacity(8),
        }
    }

    /// Replaces the candidates from `source` with `addrs` (a new announcement through the hub,
    /// a config reload). A new address restarts probing at once.
    pub fn set_candidates(&mut self, source: Source, addrs: &[SocketAddr], now: Instant) {
        let selected = self.selected;
        self.candidates
            .retain(|c| c.source != source || addrs.contains(&c.addr) || Some(c.addr) == selected);
        let mut added = false;
        for &a in addrs {
            added |= self.add(a, source);
        }
        if added {
            self.restart(now);
        }
    }

    /// The relay channel to this peer (`Some`: the daemon's stand-in address for it), or none.
    /// It is used while no UDP path is trusted: at once when there is none, and again when
    /// the UDP path stops answering; a UDP path that answers replaces it.
    pub fn set_relay(&mut self, relay: Option<SocketAddr>, now: Instant) {
        let current = self.relay();
        if current == relay {
            return;
        }
        self.candidates
            .retain(|c| c.source != Source::Relay || Some(c.addr) == relay);
        if let Some(a) = relay {
            self.add(a, Source::Relay);
        }
        if self.selected.is_some_and(|s| self.find(s).is_none()) {
            // The relay in use went away.
            self.selected = None;
            self.selected_since = None;
            self.next_heartbeat = None;
            if let Some(old) = current {
                self.events.push_back(PathEvent::Lost { endpoint: old });
            }
        }
        self.reselect(now);
    }

    /// The relay channel's stand-in address, if one is set ([`Self::set_relay`]).
    pub fn relay(&self) -> Option<SocketAddr> {
        self.candidates
            .iter()
            .find(|c| c.source == Source::Relay)
            .map(|c| c.addr)
    }

    /// Whether the selected path is peer-to-peer UDP (not a relay, not none).
    pub fn udp_selected(&self) -> bool {
        self.selected
            .and_then(|s| self.find(s))
            .is_some_and(|c| c.tier() == Tier::Udp)
    }

    /// The local link or addresses changed: every path may be gone; probe again at once.
    pub fn link_changed(&mut self, now: Instant) {
        self.restart(now);
    }

    /// Our STUN mapping changed (the NAT forgot us): probe again at once.
    pub fn mapping_changed(&mut self, now: Instant) {
        self.restart(now);
    }

    /// The peer asked us through the hub to probe it ("call me maybe"): without a path, probe
    /// again at once. Its own probes may have reached our NAT before we had sent anything its
    /// way (an address-dependent filter or a symmetric mapping drops them); ours, sent now,
    /// open our side, and its next probes get in.
    pub fn peer_called(&mut self, now: Instant) {
        if !self.udp_selected() {
            self.restart(now);
        }
    }

    /// The hub's view of the peer (for `why_not_direct`).
    pub fn set_signaling(&mut self, s: Signaling) {
        self.signaling = s;
    }

    /// WireGuard traffic to or from this peer: it is active. Waking from idle probes at once.
    pub fn note_activity(&mut self, now: Instant) {
        let was_idle = !self.is_active(now);
        self.last_activity = Some(now);
        if was_idle {
            self.grace_until = Some(now + PATH_TRUST);
            self.restart(now);
        }
    }

    /// WireGuard sent something to the peer. A path is judged on what WireGuard sends over
    /// it: one that carries no answer within [`WIREGUARD_PROGRESS_TIMEOUT`] is suspect, while a
    /// tunnel that is merely quiet keeps its path.
    pub fn note_wireguard_sent(&mut self, now: Instant) {
        if self.awaiting_since.is_none() {
            self.awaiting_since = Some(now);
        }
    }

    /// WireGuard made progress over the selected path (a handshake completed, or data opened).
    pub fn note_wireguard_progress(&mut self, now: Instant) {
        self.last_progress = Some(now);
        self.awaiting_since = None;
        // WireGuard works again: give every path a fresh chance.
        for c in &mut self.candidates {
            c.suspect = false;
        }
    }

    /// Handles a datagram classified as a probe for this peer, from `from`.
    pub fn handle_probe(
        &mut self,
        from: SocketAddr,
        buf: &mut [u8],
        now: Instant,
    ) -> Result<(), PathError> {
        let probe = self.key.open(buf)?;
        match probe.kind {
            ProbeType::Ping => {
                self.refill(now);
                if self.pongs_left == 0 {
                    return Err(PathError::RateLimited);
                }
                self.pongs_left -= 1;
                self.queue.push_back((
                    from,
                    Probe {
                        kind: ProbeType::Pong,
                        txid: probe.txid,
                        observed: from,
                    },
                ));
                let new = self.add(from, Source::PeerReflexive);
                let trusted = self.find(from).is_some_and(|c| trusted(c, now));
                if !trusted && self.pongs_left > 0 {
                    // Triggered check: our ping opens our NAT's filter toward the pinger.
                    self.pongs_left -= 1;
                    self.ping(from, now);
                }
                if new {
                    self.restart(now);
                }
                Ok(())
            }
            ProbeType::Pong => {
                // The ping this answers, to whichever candidate it went.
                let (to, slot) = self
                    .candidates
                    .iter()
                    .enumerate()
                    .find_map(|(i, c)| {
                        let slot = c
                            .pings
                            .iter()
                            .position(|p| p.is_some_and(|(t, _)| t == probe.txid))?;
                        Some((i, slot))
                    })
                    .ok_or(PathError::UnmatchedPong)?;
                let (_, sent) = self.candidates[to].pings[slot]
                    .take()
                    .expect("found a Some");
                let rtt = now.saturating_duration_since(sent);
                if self.candidates[to].addr != from {
                    // Our ping reached the peer at one address but its pong comes from
                    // another: its traffic no longer leaves the way ours reaches it (its
                    // default route moved to another uplink and NAT, or it answers from
                    // another of its addresses). That address carries nothing back, so it is
                    // no longer trusted; the pong's source is, since the pong (sealed, with
                    // our txid) came through both NATs from there.
                    let c = &mut self.candidates[to];
                    c.last_pong = None;
                    c.rtt = None;
                    self.add(from, Source::PeerReflexive);
                }
                let c = self
                    .candidates
                    .iter_mut()
                    .find(|c| c.addr == from)
                    .ok_or(PathError::UnmatchedPong)?;
                c.rtt = Some(rtt);
                c.last_pong = Some(now);
                self.events.push_back(PathEvent::ObservedSelf {
                    addr: probe.observed,
                });
                self.reselect(now);
                Ok(())
            }
        }
    }

    /// Drives probe rounds, heartbeats, ping expiry, trust and WireGuard-progress checks.
    pub fn handle_timeout(&mut self, now: Instant) {
        for c in &mut self.candidates {
            for p in &mut c.pings {
                if p.is_some_and(|(_, at)| now >= at + PING_TIMEOUT) {
                    *p = None;
                }
            }
        }
        let active = self.is_active(now);
        // Selected path: trust and WireGuard progress.
        if let Some(sel) = self.selected {
            let in_grace = self.grace_until.is_some_and(|g| now < g);
            let c = self.find(sel).expect("the selected address is a candidate");
            let lapsed = !trusted(c, now) && !in_grace && active;
            let silent = active
                && self
                    .progress_deadline()
                    .is_some_and(|deadline| now >= deadline);
            if silent {
                self.selected_mut().expect("selected").suspect = true;
            }
            if lapsed || silent {
                self.reselect(now);
                if !self.udp_selected() {
                    self.restart(now);
                }
            }
        }
        // Probe rounds (before the heartbeat, for the order explained at `round`).
        if now >= self.next_round {
            self.round(now);
            // While relayed, direct is retried like with no path at all (issue 11: never
            // stuck on the relay).
            let direct = self.udp_selected();
            self.interval = if direct {
                // Looking for a better path only: once a minute.
                PROBE_INTERVAL_IDLE_MAX
            } else if active {
                PROBE_INTERVAL_ACTIVE
            } else {
                (self.interval * 2).min(PROBE_INTERVAL_IDLE_MAX)
            };
            self.next_round = now + self.interval;
        }
        // A grace period that ran out is over (a relay, never lapsing, would otherwise keep
        // its end as the next timeout).
        if self.grace_until.is_some_and(|g| now >= g) {
            self.grace_until = None;
        }
        // Heartbeat on the selected path while active.
        if let (Some(sel), Some(hb)) = (self.selected, self.next_heartbeat) {
            if now >= hb && active {
                self.ping(sel, now);
                self.next_heartbeat = Some(now + HEARTBEAT_INTERVAL);
            }
        }
    }

    /// When the selected path becomes suspect unless WireGuard makes progress: a while after
    /// the first unanswered packet sent over it (not before it was selected).
    fn progress_deadline(&self) -> Option<Instant> {
        let since = self.selected_since?;
        let sent = self.awaiting_since?;
        Some(sent.max(since) + WIREGUARD_PROGRESS_TIMEOUT)
    }

    /// When to call [`Self::handle_timeout`] next.
    pub fn poll_timeout(&self) -> Instant {
        let mut t = self.next_round;
        if let (Some(hb), Some(_)) = (self.next_heartbeat, self.selected) {
            t = t.min(hb);
        }
        for c in &self.candidates {
            for (_, at) in c.pings.iter().flatten() {
                t = t.min(*at + PING_TIMEOUT);
            }
        }
        if let Some(sel) = self.selected.and_then(|s| self.find(s)) {
            if let Some(p) = sel.last_pong {
                t = t.min(p + PATH_TRUST);
            }
            if let Some(deadline) = self.progress_deadline() {
                t = t.min(deadline);
            }
            if let Some(g) = self.grace_until {
                t = t.min(g);
            }
        }
        t
    }

    /// Seals the next probe into `buf` (at least [`super::probe::PROBE_LEN`] bytes); returns its
    /// destination and length. No allocation.
    pub fn poll_transmit(&mut self, buf: &mut [u8]) -> Option<(SocketAddr, usize)> {
        let (dst, probe) = self.queue.pop_front()?;
        match self.key.seal(&probe, &mut self.rng, buf) {
            Ok(n) => Some((dst, n)),
            Err(_) => None,
        }
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<PathEvent> {
        self.events.pop_front()
    }

    /// Where data should go as well as to [`Self::endpoint`]: the relay, while the selected
    /// direct path is in doubt (an active tunnel, no pong for [`PATH_DOUBT`]) and not yet
    /// declared dead. Sending on both keeps a stream going whichever way the doubt ends; the
    /// receiver's replay window drops the second copy.
    pub fn also_send_to(&self, now: Instant) -> Option<SocketAddr> {
        let relay = self.relay()?;
        if !self.udp_selected() || !self.is_active(now) {
            return None;
        }
        let sel = self.selected.and_then(|s| self.find(s))?;
        let quiet_since = sel.last_pong.or(self.selected_since)?;
        (now.saturating_duration_since(quiet_since) >= PATH_DOUBT).then_some(relay)
    }

    /// The selected endpoint, if any.
    pub fn endpoint(&self) -> Option<SocketAddr> {
        self.selected
    }

    /// The path kind for `vpnctl show`.
    pub fn kind(&self) -> PathKind {
        self.selected
            .and_then(|s| self.find(s))
            .map_or(PathKind::None, Candidate::kind)
    }

    /// Why the peer has no peer-to-peer UDP path (it has none, or is relayed), or `None` when
    /// it has one.
    pub fn why_not_direct(&self) -> Option<WhyNotDirect> {
        if self.udp_selected() {
            return None;
        }
        if self.candidates.iter().any(|c| c.suspect) {
            return Some(WhyNotDirect::NoWireguardProgress);
        }
        // Only while relayed: with no path at all the probes' fate is the news.
        if self.udp_lost && self.selected.is_some() {
            return Some(WhyNotDirect::DirectPathBroken);
        }
        if self.candidates.iter().all(|c| c.source == Source::Relay) {
            return Some(match self.signaling {
                Signaling::HubUnreachable => WhyNotDirect::HubUnreachable,
                Signaling::PeerOffline => WhyNotDirect::PeerOffline,
                _ => WhyNotDirect::NoCandidates,
            });
        }
        Some(WhyNotDirect::ProbesUnanswered)
    }

    /// When the next probe round tries the candidates (a relayed peer's next attempt at a
    /// direct path).
    pub fn next_round(&self) -> Instant {
        self.next_round
    }

    /// The current probe round interval (for `vpnctl` and tests).
    pub fn probe_interval(&self) -> Duration {
        self.interval
    }

    fn is_active(&self, now: Instant) -> bool {
        self.last_activity
            .is_some_and(|a| now.saturating_duration_since(a) < ACTIVE_TIMEOUT)
    }

    fn find(&self, a: SocketAddr) -> Option<&Candidate> {
        self.candidates.iter().find(|c| c.addr == a)
    }

    fn selected_mut(&mut self) -> Option<&mut Candidate> {
        let s = self.selected?;
        self.candidates.iter_mut().find(|c| c.addr == s)
    }

    /// Adds a candidate; true if it is new. Bounded by [`MAX_CANDIDATES`]: a full table
    /// replaces the oldest peer-reflexive entry that is not selected, or refuses.
    fn add(&mut self, addr: SocketAddr, source: Source) -> bool {
        if let Some(c) = self.candidates.iter_mut().find(|c| c.addr == addr) {
            // An announced address outranks the same address seen on a probe.
            c.source = c.source.min(source);
            return false;
        }
        if self.candidates.len() >= MAX_CANDIDATES {
            let sel = self.selected;
            match self
                .candidates
                .iter()
                .position(|c| c.source == Source::PeerReflexive && Some(c.addr) != sel)
            {
                Some(i) => {
                    self.candidates.remove(i);
                }
                None => return false,
            }
        }
        self.candidates.push(Candidate {
            addr,
            source,
            pings: [None; PINGS_PER_CANDIDATE],
            rtt: None,
            last_pong: None,
            suspect: false,
        });
        true
    }

    /// Probe every candidate now and return to the active cadence.
    fn restart(&mut self, now: Instant) {
        self.interval = PROBE_INTERVAL_ACTIVE;
        self.next_round = now;
        if self.selected.is_some() {
            self.next_heartbeat = Some(now);
        }
    }

    /// Pings every candidate, the selected one last: a peer whose route moved answers our
    /// ping to its old address from its new one, which an address-dependent filter of ours
    /// drops unless we sent there first (see the pong case of [`Self::handle_probe`]).
    fn round(&mut self, now: Instant) {
        let sel = self.selected;
        // By index, not collected: heartbeats and rounds allocate nothing (no_alloc test).
        for i in 0..self.candidates.len() {
            let a = self.candidates[i].addr;
            if Some(a) != sel {
                self.ping(a, now);
            }
        }
        if let Some(a) = sel {
            self.ping(a, now);
        }
    }

    fn ping(&mut self, to: SocketAddr, now: Instant) {
        let mut txid = [0u8; 12];
        self.rng.fill_bytes(&mut txid);
        let Some(c) = self
            .candidates
            .iter_mut()
            .find(|c| c.addr == to && c.source != Source::Relay)
        else {
            return;
        };
        // Reuse a free slot or the oldest one.
        let slot = match c.pings.iter().position(Option::is_none) {
            Some(i) => i,
            None => (0..PINGS_PER_CANDIDATE)
                .min_by_key(|&i| c.pings[i].map(|(_, at)| at))
                .expect("non-empty"),
        };
        c.pings[slot] = Some((txid, now));
        self.queue.push_back((
            to,
            Probe {
                kind: ProbeType::Ping,
                txid,
                observed: to,
            },
        ));
    }

    fn refill(&mut self, now: Instant) {
        if now >= self.budget_reset {
            self.pongs_left = MAX_PONGS_PER_ROUND;
            self.budget_reset = now + PROBE_INTERVAL_ACTIVE;
        }
    }

    /// Picks the best trusted, non-suspect candidate, keeping the current one unless the new
    /// one is better by tier/LAN or by the hysteresis margin.
    fn reselect(&mut self, now: Instant) {
        let in_grace = self.grace_until.is_some_and(|g| now < g);
        let cur = self.selected;
        let eligible = |c: &&Candidate| {
            !c.suspect
                && (c.source == Source::Relay
                    || c.rtt.is_some() && (trusted(c, now) || (in_grace && Some(c.addr) == cur)))
        };
        let rank = |c: &Candidate| (c.tier(), !c.is_lan(), c.rtt.unwrap_or(Duration::MAX));
        let best = self
            .candidates
            .iter()
            .filter(eligible)
            .min_by_key(|c| rank(c))
            .cloned();
        let cur_c = cur
            .and_then(|s| self.find(s))
            .filter(|c| eligible(c))
            .cloned();
        let choice = match (cur_c, best) {
            (Some(cur), Some(best)) if cur.addr != best.addr => {
                let (ct, cl, crtt) = rank(&cur);
                let (bt, bl, brtt) = rank(&best);
                let gain = crtt.saturating_sub(brtt);
                let better = (bt, bl) < (ct, cl)
                    || ((bt, bl) == (ct, cl)
                        && gain >= SWITCH_MIN_GAIN
                        && gain * 100 >= crtt * SWITCH_MIN_GAIN_PERCENT);
                Some(if better { best } else { cur })
            }
            (Some(cur), _) => Some(cur),
            (None, best) => best,
        };
        let was_udp = self.udp_selected();
        let now_udp = choice.as_ref().is_some_and(|c| c.tier() == Tier::Udp);
        if now_udp {
            self.udp_lost = false;
        } else if was_udp {
            self.udp_lost = true;
        }
        match choice {
            Some(c) if Some(c.addr) != cur => {
                self.selected = Some(c.addr);
                self.selected_since = Some(now);
                self.next_heartbeat = Some(now + HEARTBEAT_INTERVAL);
                self.grace_until = None;
                self.events.push_back(PathEvent::Selected {
                    endpoint: c.addr,
                    kind: c.kind(),
                    rtt: c.rtt.unwrap_or_default(),
                });
            }
            Some(_) => {}
            None => {
                if let Some(old) = cur {
                    self.selected = None;
                    self.selected_since = None;
                    self.next_heartbeat = None;
                    self.events.push_back(PathEvent::Lost { endpoint: old });
                }
            }
        }
    }
}

/// Whether a candidate counts as answering: a pong within [`PATH_TRUST`]; a relay always
/// (it is not probed; WireGuard progress judges it).
fn trusted(c: &Candidate, now: Instant) -> bool {
    c.source == Source::Relay
        || c.last_pong
            .is_some_and(|p| now.saturating_duration_since(p) < PATH_TRUST)
}

#[cfg(test)]
mod tests;
