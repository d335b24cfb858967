//! Each peer's path machine ([`PathManager`]) as the NAT actor runs it: candidates from the
//! configuration and the hubs, probes in and out, activity read from the data plane's
//! counters (no per-packet message), and the selected path made the WireGuard endpoint.

use crate::config::{Endpoint, PeerConfig};
use crate::dataplane::counters::Reason;
use crate::dataplane::relay;
use crate::vocab::{Daemon, PeerPath};
use protocol::keys::PublicKey;
use protocol::nat::path::{
    is_private, PathEvent, PathKind, PathManager, Signaling, Source, WhyNotDirect,
};
use protocol::nat::probe::{peek_pair_id, ProbeKey, PROBE_LEN};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use x25519_dalek::StaticSecret;

/// First wait between hub lookups (and "call me maybe") for a peer without a path: the
/// probe round interval, so each round has fresh candidates.
pub const SIGNAL_FIRST: Duration = Duration::from_secs(5);
/// The wait doubles up to this while the peer stays unreachable (a minute, like the idle
/// probe back-off).
pub const SIGNAL_MAX: Duration = Duration::from_secs(60);
/// How often the data plane's per-peer counters are read for activity.
pub const ACTIVITY_POLL: Duration = Duration::from_secs(1);
/// A WireGuard keepalive on the wire: a 16-byte transport header and a 16-byte tag, no data.
/// Sent bytes beyond this within one poll include data or a handshake, which a working path
/// answers (data by WireGuard's passive keepalive within 10 s).
const KEEPALIVE_WIRE_LEN: u64 = 32;

/// One peer's NAT state.
struct PeerNat {
    pm: PathManager,
    configured: Option<SocketAddr>,
    next_signal: Instant,
    signal_wait: Duration,
    /// (tx bytes, rx bytes, handshakes) at the last poll.
    seen: (u64, u64, u64),
    signaling: Signaling,
    published: Option<PeerPath>,
    /// When we last answered the peer's "call me maybe" with ours (see [`Paths::called`]).
    answered: Option<Instant>,
    /// An answer is queued for the next [`Paths::due_signals`].
    answer_due: bool,
    /// Our addresses may have changed ([`Paths::restart_all`]): the peer gets our candidates
    /// even while it has a path (see [`Paths::due_signals`]).
    announce_due: bool,
    /// The second destination last given to the data plane (the relay while in doubt).
    also_to: Option<SocketAddr>,
    /// What the peer says of its NAT (endpoint-dependent mapping), with its candidates.
    hard_nat: Option<bool>,
}

/// Every peer's path state.
#[derive(Default)]
pub struct Paths {
    own: Option<PublicKey>,
    /// Whether our own NAT maps endpoint-dependently (from STUN), if known.
    own_hard_nat: Option<bool>,
    peers: HashMap<PublicKey, PeerNat>,
    by_pair: HashMap<[u8; 8], PublicKey>,
    next_activity: Option<Instant>,
}

/// What a peer needs from the hubs now.
pub struct SignalRequest {
    /// The peer.
    pub peer: [u8; 32],
}

impl Paths {
    /// Makes the set of path machines match the configuration (peers added or removed, a new
    /// private key, a changed configured endpoint).
    pub fn sync(
        &mut self,
        own: Option<(&StaticSecret, PublicKey)>,
        peers: &[PeerConfig],
        now: Instant,
    ) {
        let Some((secret, own_pub)) = own else {
            self.peers.clear();
            self.by_pair.clear();
            self.own = None;
            return;
        };
        if self.own != Some(own_pub) {
            self.peers.clear();
            self.by_pair.clear();
            self.own = Some(own_pub);
        }
        self.peers
            .retain(|k, _| peers.iter().any(|p| &p.public_key == k));
        self.by_pair
            .retain(|_, k| peers.iter().any(|p| &p.public_key == k));
        for p in peers {
            let configured = match &p.endpoint {
                Some(Endpoint::Addr(a)) => Some(*a),
                _ => None,
            };
            if let Some(entry) = self.peers.get_mut(&p.public_key) {
                if entry.configured != configured {
                    entry.configured = configured;
                    let list: Vec<SocketAddr> = configured.into_iter().collect();
                    entry.pm.set_candidates(Source::Configured, &list, now);
                }
                continue;
            }
            let Ok(key) = ProbeKey::derive(secret, p.public_key.as_bytes()) else {
                continue;
            };
            self.by_pair.insert(key.pair_id(), p.public_key);
            let mut pm = PathManager::new(key, crate::supervisor::random_seed(), now);
            if let Some(a) = configured {
                pm.set_candidates(Source::Configured, &[a], now);
            }
            self.peers.insert(
                p.public_key,
                PeerNat {
                    pm,
                    configured,
                    next_signal: now,
                    signal_wait: SIGNAL_FIRST,
                    seen: (0, 0, 0),
                    signaling: Signaling::NotConfigured,
                    published: None,
                    answered: None,
                    answer_due: false,
                    announce_due: false,
                    also_to: None,
                    hard_nat: None,
                },
            );
        }
    }

    /// Handles a probe datagram; `false` if it matched no peer or did not open.
    pub fn handle_probe(&mut self, from: SocketAddr, data: &mut [u8], now: Instant) -> bool {
        let Ok(id) = peek_pair_id(data) else {
            return false;
        };
        let Some(entry) = self.by_pair.get(&id).and_then(|k| self.peers.get_mut(k)) else {
            return false;
        };
        match entry.pm.handle_probe(from, data, now) {
            Ok(()) => true,
            Err(e) => {
                tracing::debug!(%from, error = %e, "probe dropped");
                false
            }
        }
    }

    /// Candidates for `peer` learned through a hub: its public address and its announced
    /// ones (private addresses count as LAN).
    pub fn hub_candidates(&mut self, peer: &[u8; 32], addrs: &[SocketAddr], now: Instant) {
        let Some(entry) = self.peers.get_mut(&PublicKey(*peer)) else {
            return;
        };
        let (lan, public): (Vec<SocketAddr>, Vec<SocketAddr>) =
            addrs.iter().partition(|a| is_private(a.ip()));
        entry.pm.set_candidates(Source::Lan, &lan, now);
        entry.pm.set_candidates(Source::Stun, &public, now);
    }

    /// `peer` sent us its candidates ("call me maybe") through a hub. Without a path, probe at
    /// once and answer with ours, so the peer probes again *after* our probes opened our NAT:
    /// its first probes, sent with its call, can reach an address-dependent filter (or come
    /// from a symmetric NAT's new port) before we ever sent its way, and be dropped. Answers
    /// are at most one per [`SIGNAL_FIRST`] per peer, so two peers cannot answer each other's
    /// answers forever.
    pub fn called(&mut self, peer: &[u8; 32], now: Instant) {
        let Some(entry) = self.peers.get_mut(&PublicKey(*peer)) else {
            return;
        };
        entry.pm.peer_called(now);
        if !entry.pm.udp_selected() && entry.answered.is_none_or(|t| now >= t + SIGNAL_FIRST) {
            entry.answered = Some(now);
            entry.answer_due = true;
        }
    }

    /// What our STUN says of our NAT's mapping.
    pub fn set_own_hard_nat(&mut self, hard: Option<bool>) {
        self.own_hard_nat = hard;
    }

    /// What `peer` says of its NAT's mapping.
    pub fn set_peer_hard_nat(&mut self, peer: &[u8; 32], hard: Option<bool>) {
        if let Some(entry) = self.peers.get_mut(&PublicKey(*peer)) {
            entry.hard_nat = hard;
        }
    }

    /// What the hubs said about `peer`'s presence.
    pub fn set_signaling(&mut self, peer: &[u8; 32], s: Signaling) {
        if let Some(entry) = self.peers.get_mut(&PublicKey(*peer)) {
            entry.signaling = s;
            entry.pm.set_signaling(s);
        }
    }

    /// What the hubs say of every peer at once (none is reachable).
    pub fn set_all_signaling(&mut self, s: Signaling) {
        for entry in self.peers.values_mut() {
            entry.signaling = s;
            entry.pm.set_signaling(s);
        }
    }

    /// Our mapping changed or a link changed: every peer probes again and is told our
    /// candidates.
    pub fn restart_all(&mut self, now: Instant) {
        for entry in self.peers.values_mut() {
            entry.pm.mapping_changed(now);
            entry.announce_due = true;
            entry.next_signal = now;
            entry.signal_wait = SIGNAL_FIRST;
        }
    }

    /// Peers due a hub lookup and "call me maybe" (those without a path), with back-off; and,
    /// once after each [`Self::restart_all`], those with a path: when our traffic leaves through
    /// another NAT (the default route moved to another uplink), a peer behind an
    /// address-dependent filter drops it until it sends to our new mapping, which it learns only
    /// from this call. Without it both sides would wait for the path's trust to lapse.
    pub fn due_signals(&mut self, now: Instant) -> Vec<SignalRequest> {
        let mut out = Vec::new();
        for (key, entry) in &mut self.peers {
            // A relayed peer is signaled like one without a path: direct is still the goal.
            if entry.pm.udp_selected() {
                entry.answer_due = false;
                if std::mem::take(&mut entry.announce_due) {
                    out.push(SignalRequest {
                        peer: *key.as_bytes(),
                    });
                }
                continue;
            }
            entry.announce_due = false;
            if std::mem::take(&mut entry.answer_due) && now < entry.next_signal {
                // An answer: out of band, the back-off is left as it is.
                out.push(SignalRequest {
                    peer: *key.as_bytes(),
                });
                continue;
            }
            if now < entry.next_signal {
                continue;
            }
            out.push(SignalRequest {
                peer: *key.as_bytes(),
            });
            entry.next_signal = now + entry.signal_wait;
            entry.signal_wait = (entry.signal_wait * 2).min(SIGNAL_MAX);
        }
        out
    }

    /// Drives every machine, sends probes, applies selections and publishes paths for `show`.
    /// Returns whether some path was lost (the caller re-checks STUN).
    pub async fn drive(&mut self, daemon: &Daemon, now: Instant) -> bool {
        let poll_activity = self.next_activity.is_none_or(|t| now >= t);
        if poll_activity {
            self.next_activity = Some(now + ACTIVITY_POLL);
        }
        let mut lost = false;
        let mut buf = [0u8; PROBE_LEN];
        let udp = daemon.dp.udp().clone();
        for (key, entry) in &mut self.peers {
            let handle = daemon.dp.router.by_key(key);
            if poll_activity {
                if let Some(h) = &handle {
                    let (stats, online) = {
                        let cell = h.cell.lock();
                        (cell.peer.stats(), cell.peer.last_handshake_unix().is_some())
                    };
                    let seen = (stats.tx_bytes, stats.rx_bytes, stats.handshakes);
                    if seen.0 != entry.seen.0 || seen.1 != entry.seen.1 {
                        entry.pm.note_activity(now);
                        entry.next_signal = entry.next_signal.min(now + SIGNAL_FIRST);
                    }
                    // A keepalive (alone in this poll) expects no answer: the peer answers
                    // data and handshakes, not keepalives, so only those can show a path
                    // that carries no WireGuard.
                    if seen.0.saturating_sub(entry.seen.0) > KEEPALIVE_WIRE_LEN {
                        entry.pm.note_wireguard_sent(now);
                    }
                    if online && (seen.1 != entry.seen.1 || seen.2 != entry.seen.2) {
                        entry.pm.note_wireguard_progress(now);
                    }
                    entry.seen = seen;
                }
            }
            if entry.pm.poll_timeout() <= now {
                entry.pm.handle_timeout(now);
            }
            // While the direct path is in doubt, data goes out on the relay too.
            let also = entry.pm.also_send_to(now);
            if also != entry.also_to {
                if let Some(h) = &handle {
                    *h.also_to.lock() = also;
                    match also {
                        Some(relay) => {
                            tracing::info!(peer = %key, %relay, "direct path in doubt; sending on the relay too")
                        }
                        None => tracing::debug!(peer = %key, "sending on one path again"),
                    }
                    entry.also_to = also;
                }
            }
            while let Some((dst, n)) = entry.pm.poll_transmit(&mut buf) {
                tracing::trace!(peer = %key, %dst, "probe sent");
                if udp.send(&buf[..n], dst).await.is_err() {
                    daemon.dp.drops.inc(Reason::SendFailed);
                }
            }
            while let Some(ev) = entry.pm.poll_event() {
                match ev {
                    PathEvent::Selected {
                        endpoint,
                        kind,
                        rtt,
                    } => {
                        tracing::info!(peer = %key, %endpoint, ?kind, ?rtt, "path selected");
                        if let Some(h) = &handle {
                            h.with_peer(&udp, |p| {
                                if p.endpoint() != Some(endpoint) {
                                    p.set_resolved_endpoint(endpoint, now);
                                }
                            });
                        }
                        entry.signal_wait = SIGNAL_FIRST;
                    }
                    PathEvent::Lost { endpoint } => {
                        tracing::info!(peer = %key, %endpoint, "path lost; probing again");
                        entry.next_signal = now;
                        lost = true;
                    }
                    PathEvent::ObservedSelf { .. } => {}
                }
            }
            let mut path = describe(entry, handle.as_deref());
            // `show` names the hub a relayed peer goes through, not the stand-in.
            if let Some((hub, _)) = path.endpoint.as_ref().and_then(relay::parse_stand_in) {
                path.kind = "relay";
                path.endpoint = udp.relay.addr(hub);
                path.relay_transport = Some(udp.relay.transport(hub));
                path.next_direct_attempt = Some(entry.pm.next_round());
                if path.relay_transport == Some("tcp") {
                    // We reach the hub over TCP because our UDP goes unanswered, and no
                    // probe got through either: our network blocks UDP.
                    path.why_not_direct = Some("udp_blocked");
                } else if path.why_not_direct.is_none() {
                    path.why_not_direct = entry.pm.why_not_direct().map(why_name);
                }
            }
            // Probes unanswered between two endpoint-dependent NATs: no hole can be punched,
            // and both sides know why.
            if path.why_not_direct == Some("probes_unanswered")
                && self.own_hard_nat == Some(true)
                && entry.hard_nat == Some(true)
            {
                path.why_not_direct = Some("both_hard_nat");
            }
            if entry.published.as_ref() != Some(&path) {
                daemon.paths.write().insert(*key, path.clone());
                entry.published = Some(path);
            }
        }
        lost
    }

    /// Every peer without a UDP path is due a lookup (and a relay request) now: a hub
    /// registration was just made.
    pub fn signal_soon(&mut self, now: Instant) {
        for e in self.peers.values_mut() {
            if !e.pm.udp_selected() {
                e.next_signal = now;
            }
        }
    }

    /// Whether `peer` has neither a UDP path nor a relay channel (so one is worth opening).
    pub fn needs_relay(&self, peer: &[u8; 32]) -> bool {
        self.peers
            .get(&PublicKey(*peer))
            .is_some_and(|e| e.pm.relay().is_none() && !e.pm.udp_selected())
    }

    /// Whether any peer's relay channel is on hub `hub`.
    pub fn relays_on(&self, hub: u16) -> bool {
        self.peers.values().any(|e| {
            e.pm.relay()
                .as_ref()
                .and_then(relay::parse_stand_in)
                .is_some_and(|(h, _)| h == hub)
        })
    }

    /// A hub offered the relay channel `relay` (a stand-in address) to `peer`.
    pub fn set_relay(&mut self, peer: &[u8; 32], relay: SocketAddr, now: Instant) {
        if let Some(e) = self.peers.get_mut(&PublicKey(*peer)) {
            e.pm.set_relay(Some(relay), now);
        }
    }

    /// The hub with index `hub` lost our registration (or we moved to another transport):
    /// its channels are gone.
    pub fn clear_relays(&mut self, hub: u16, now: Instant) {
        for e in self.peers.values_mut() {
            if e.pm
                .relay()
                .as_ref()
                .and_then(relay::parse_stand_in)
                .is_some_and(|(h, _)| h == hub)
            {
                e.pm.set_relay(None, now);
                // Ask for a new channel (and look the peer up) at the next signal round.
                e.next_signal = now;
                e.signal_wait = SIGNAL_FIRST;
            }
        }
    }

    /// Removes every published path (NAT traversal switched off).
    pub fn clear(&mut self, daemon: &Daemon) {
        self.peers.clear();
        self.by_pair.clear();
        daemon.paths.write().clear();
    }
}

/// The path `show` reports for a peer.
fn describe(
    entry: &PeerNat,
    handle: Option<&crate::dataplane::peer_handle::PeerHandle>,
) -> PeerPath {
    if let Some(ep) = entry.pm.endpoint() {
        return PeerPath {
            kind: kind_name(entry.pm.kind()),
            endpoint: Some(ep),
            why_not_direct: None,
            next_direct_attempt: None,
            relay_transport: None,
        };
    }
    // A peer that answers no probes (wireguard-go, an older vpnd) but has a WireGuard session
    // over its endpoint is still peer to peer.
    let online_at = handle.and_then(|h| {
        let cell = h.cell.lock();
        cell.peer.last_handshake_unix().and(cell.peer.endpoint())
    });
    if let Some(ep) = online_at {
        return PeerPath {
            kind: "direct",
            endpoint: Some(ep),
            why_not_direct: None,
            next_direct_attempt: None,
            relay_transport: None,
        };
    }
    PeerPath {
        kind: "none",
        endpoint: None,
        why_not_direct: entry.pm.why_not_direct().map(why_name),
        next_direct_attempt: None,
        relay_transport: None,
    }
}

fn kind_name(k: PathKind) -> &'static str {
    match k {
        PathKind::Direct => "direct",
        PathKind::Punched => "punched",
        PathKind::Relay => "relay",
        PathKind::None => "none",
    }
}

fn why_name(w: WhyNotDirect) -> &'static str {
    match w {
        WhyNotDirect::NoCandidates => "no_candidates",
        WhyNotDirect::ProbesUnanswered => "probes_unanswered",
        WhyNotDirect::HubUnreachable => "hub_unreachable",
        WhyNotDirect::PeerOffline => "peer_offline",
        WhyNotDirect::NoWireguardProgress => "no_wireguard_progress",
        WhyNotDirect::DirectPathBroken => "direct_path_broken",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer_config(public_key: PublicKey) -> PeerConfig {
        PeerConfig {
            name: None,
            public_key,
            preshared_key: None,
            preshared_key_file: None,
            allowed_ips: Vec::new(),
            endpoint: None,
            persistent_keepalive: None,
        }
    }

    fn paths_with_one_peer(now: Instant) -> (Paths, [u8; 32]) {
        let own = StaticSecret::from([1u8; 32]);
        let own_pub = PublicKey(x25519_dalek::PublicKey::from(&own).to_bytes());
        let peer = x25519_dalek::PublicKey::from(&StaticSecret::from([2u8; 32])).to_bytes();
        let mut paths = Paths::default();
        paths.sync(Some((&own, own_pub)), &[peer_config(PublicKey(peer))], now);
        (paths, peer)
    }

    #[test]
    fn a_call_is_answered_once_per_window_without_touching_the_back_off() {
        let t0 = Instant::now();
        let (mut paths, peer) = paths_with_one_peer(t0);
        // The regular signal goes out at once, then waits SIGNAL_FIRST.
        assert_eq!(paths.due_signals(t0).len(), 1);
        let t1 = t0 + Duration::from_millis(100);
        assert!(paths.due_signals(t1).is_empty());
        // The peer calls: answered on the next pass, out of band.
        paths.called(&peer, t1);
        let answers = paths.due_signals(t1);
        assert_eq!(answers.len(), 1);
        assert_eq!(answers[0].peer, peer);
        assert!(paths.due_signals(t1).is_empty(), "answered once");
        // Its answer to our answer is not answered again within the window.
        let t2 = t1 + Duration::from_millis(100);
        paths.called(&peer, t2);
        assert!(paths.due_signals(t2).is_empty(), "no answer ping-pong");
        // The back-off was left alone: the regular signal is due SIGNAL_FIRST after t0.
        assert_eq!(paths.due_signals(t0 + SIGNAL_FIRST).len(), 1);
        // After the window, a new call is answered again.
        let t3 = t1 + SIGNAL_FIRST + Duration::from_millis(1);
        paths.called(&peer, t3);
        assert_eq!(paths.due_signals(t3).len(), 1);
    }
}
