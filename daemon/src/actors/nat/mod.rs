//! The NatActor: learns this host's public endpoints and NAT mapping type with STUN over the
//! WireGuard socket (so the mapping is the tunnel's own), registers with the hubs, exchanges
//! candidates with peers through them and runs each peer's path machine, making the best
//! answering path the WireGuard endpoint. It publishes all of it for `vpnctl show` and
//! `vpnctl netcheck`.
//!
//! The protocol logic is sans-IO ([`StunClient`], [`HubClient`], [`PathManager`]); this actor
//! only resolves names, moves datagrams between them and the socket, and drives their timers. The data
//! plane hands it the STUN, hub and probe datagrams it receives through a bounded queue
//! ([`crate::dataplane::nat_inbox`]); WireGuard packets never come here. A crash restarts this
//! actor alone: WireGuard sessions and their endpoints are untouched.

mod hub_tcp;
pub mod hub_tls;
mod link_watch;
mod local;
mod paths;
mod relay_home;

use crate::config::{Endpoint, NatConfig};
use crate::dataplane::counters::Reason;
use crate::dataplane::nat_inbox::NatDatagram;
use crate::vocab::Daemon;
use hub_tcp::{TcpEvent, TcpLink};
use paths::Paths;
use protocol::hub::client::{HubClient, HubEvent, HubState};
use protocol::hub::transport::{Transport, TransportChoice};
use protocol::keys::PublicKey;
use protocol::nat::demux::{self, Kind};
use protocol::nat::path::Signaling;
use protocol::nat::stun::StunEvent;
use protocol::nat::stun::{MappingType, StunClient};
use protocol::rpc::{HubInfo, NatInfo, StunServerInfo};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use x25519_dalek::StaticSecret;

/// How often the actor drives its timers. STUN's shortest timer is its 500 ms RTO; 100 ms
/// keeps retransmissions within a fifth of it without measurable cost.
pub const TICK: Duration = Duration::from_millis(100);
/// A name that did not resolve is tried again this often (hub and STUN names are usually
/// stable; a host booting before its DNS works recovers within this).
pub const RESOLVE_RETRY: Duration = Duration::from_secs(30);
/// How long one name lookup may take before it counts as failed.
pub const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long `vpnctl netcheck` waits for every STUN server to answer or give up. Covers the
/// first four retransmissions (0, 0.5, 1.5, 3.5 s) of an unanswered server.
pub const NETCHECK_WAIT: Duration = Duration::from_secs(5);

/// Messages to the NatActor.
#[derive(Debug)]
pub enum NatMsg {
    /// A STUN, hub or probe datagram from the data plane.
    Datagram(NatDatagram),
    /// Drive timers.
    Tick,
    /// Check every server now and reply with the result once all answered or gave up (at
    /// most [`NETCHECK_WAIT`]).
    Netcheck(RpcReplyPort<NatInfo>),
    /// What a hub's TCP connection (the fallback where UDP is blocked) reports.
    HubTcp {
        /// The hub's index among the servers.
        hub: usize,
        /// Which connection of that hub (events of a replaced one are ignored).
        generation: u64,
        /// What happened.
        event: TcpEvent,
    },
    /// A burst of link, address or route changes ([`link_watch`]).
    LinkChanged,
}

/// What the NatActor starts with.
#[derive(Debug)]
pub struct NatArgs {
    /// The daemon (data plane, shared state).
    pub daemon: Arc<Daemon>,
    /// The hubs and STUN servers.
    pub config: NatConfig,
}

/// One server as configured, resolved or not.
struct Server {
    /// As written in the configuration.
    label: String,
    endpoint: Endpoint,
    addr: Option<SocketAddr>,
    /// Why the name does not resolve (when it does not).
    error: Option<String>,
    /// A hub's public key (hubs answer STUN as well).
    hub_key: Option<[u8; 32]>,
    /// The registration with this hub, once its address is known.
    client: Option<HubClient>,
    /// UDP, or TCP while UDP to this hub goes unanswered.
    transport: TransportChoice,
    /// The TCP connection while on TCP.
    tcp: Option<TcpLink>,
    /// Numbers this hub's TCP connections.
    tcp_generation: u64,
    /// STUN over the TCP connection: our TCP source as the hub sees it, which a registration
    /// over TCP is bound to.
    tcp_stun: Option<StunClient>,
    /// That address, once learnt.
    tcp_observed: Option<SocketAddr>,
    /// Why the last TCP connection failed or ended.
    tcp_error: Option<String>,
    /// Whether the TCP connection is up (relay frames may be queued on it).
    tcp_up: bool,
    /// The TCP queue the data plane was last given for this hub's relay frames.
    relay_sink: Option<Arc<crate::dataplane::relay::TcpSink>>,
    /// With `tls` configured: the TCP fallback goes over TLS to this (or failed to set up).
    tls: Option<Result<hub_tls::HubTlsClient, String>>,
    /// A hub not in the configuration, dialled to relay to peers registered there
    /// ([`relay_home`]).
    on_demand: bool,
    /// Peers to open relay channels to on this hub once registered with it.
    relay_for: Vec<[u8; 32]>,
    /// Since when no relay channel of ours runs through this on-demand hub.
    idle_since: Option<Instant>,
}

impl Server {
    /// A server as configured (or a hub dialled on demand, with `on_demand` set after).
    fn new(
        endpoint: Endpoint,
        hub_key: Option<[u8; 32]>,
        tls: Option<&crate::config::HubTls>,
    ) -> Server {
        Server {
            label: endpoint.to_string(),
            endpoint,
            addr: None,
            error: None,
            hub_key,
            client: None,
            transport: TransportChoice::new(),
            tcp: None,
            tcp_generation: 0,
            tcp_stun: None,
            tcp_observed: None,
            tcp_error: None,
            tcp_up: false,
            relay_sink: None,
            // The CA file was read when the configuration was checked; should it have gone
            // since, the hub is reported failed over TLS with the reason.
            tls: tls.map(hub_tls::HubTlsClient::new),
            on_demand: false,
            relay_for: Vec::new(),
            idle_since: None,
        }
    }

    /// Leaves TCP: the connection and what was learnt over it.
    fn close_tcp(&mut self) {
        self.tcp = None;
        self.tcp_stun = None;
        self.tcp_observed = None;
        self.tcp_up = false;
    }
}

/// Points the data plane's relay frames for each hub at its TCP connection while one is up,
/// and back at UDP otherwise (only where that changed).
fn route_relay_frames(st: &mut NatState) {
    for (i, s) in st.servers.iter_mut().enumerate() {
        let want = s.tcp.as_ref().filter(|_| s.tcp_up).map(|l| l.sink());
        let same = match (&want, &s.relay_sink) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        };
        if !same {
            st.daemon.dp.udp().relay.set_tcp(i as u16, want.clone());
            s.relay_sink = want;
        }
    }
}

/// How often the peer list is compared with the configuration, and our local addresses read.
pub const SYNC_INTERVAL: Duration = Duration::from_secs(1);

/// The actor's state.
pub struct NatState {
    daemon: Arc<Daemon>,
    servers: Vec<Server>,
    stun: StunClient,
    paths: Paths,
    own: Option<(StaticSecret, PublicKey)>,
    local: Vec<SocketAddr>,
    next_sync: Instant,
    next_resolve: Instant,
    netchecks: Vec<(RpcReplyPort<NatInfo>, Instant)>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for NatState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatState").finish_non_exhaustive()
    }
}

/// The NAT actor.
#[derive(Debug, Default)]
pub struct NatActor;

impl Actor for NatActor {
    type Msg = NatMsg;
    type State = NatState;
    type Arguments = NatArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<NatMsg>,
        args: NatArgs,
    ) -> Result<NatState, ActorProcessingErr> {
        let mut servers: Vec<Server> = Vec::new();
        let mut add = |endpoint: &Endpoint,
                       hub_key: Option<[u8; 32]>,
                       tls: Option<&crate::config::HubTls>| {
            if !servers.iter().any(|s| &s.endpoint == endpoint) {
                servers.push(Server::new(endpoint.clone(), hub_key, tls));
            }
        };
        for h in &args.config.hubs {
            add(&h.address, Some(*h.public_key.as_bytes()), h.tls.as_ref());
        }
        for s in &args.config.stun_servers {
            add(s, None, None);
        }
        // The queue opens before anything is sent, so no answer is missed.
        let mut rx = args.daemon.dp.nat.open();
        let pump = {
            let me = myself.clone();
            tokio::spawn(async move {
                while let Some(d) = rx.recv().await {
                    if me.cast(NatMsg::Datagram(d)).is_err() {
                        break;
                    }
                }
            })
        };
        let ticker = {
            let me = myself.clone();
            tokio::spawn(async move {
                let mut every = tokio::time::interval(TICK);
                every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    every.tick().await;
                    if me.cast(NatMsg::Tick).is_err() {
                        break;
                    }
                }
            })
        };
        let watch = link_watch::spawn(
            myself.clone(),
            args.daemon.config.read().interface.name.clone(),
        );
        let now = Instant::now();
        let mut st = NatState {
            daemon: args.daemon,
            servers,
            stun: StunClient::new(&[], crate::supervisor::random_seed(), now),
            paths: Paths::default(),
            own: None,
            local: Vec::new(),
            next_sync: now,
            next_resolve: now,
            netchecks: Vec::new(),
            tasks: vec![pump, ticker, watch],
        };
        sync(&mut st, now);
        resolve(&mut st).await;
        publish(&st, now);
        Ok(st)
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<NatMsg>,
        st: &mut NatState,
    ) -> Result<(), ActorProcessingErr> {
        for t in &st.tasks {
            t.abort();
        }
        st.paths.clear(&st.daemon);
        st.daemon.dp.udp().relay.set(Vec::new());
        // Only if no newer NAT actor has opened its own queue meanwhile would closing matter;
        // the root closes the inbox itself when NAT traversal is switched off.
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<NatMsg>,
        msg: NatMsg,
        st: &mut NatState,
    ) -> Result<(), ActorProcessingErr> {
        let now = Instant::now();
        match msg {
            NatMsg::Datagram(mut d) => {
                let ok = match demux::classify(&d.data) {
                    Kind::Stun => st.stun.handle_input(d.from, &d.data, now).is_ok(),
                    Kind::Hub => st
                        .servers
                        .iter_mut()
                        .find(|s| s.addr == Some(d.from))
                        .is_some_and(|s| {
                            s.transport.udp_answered();
                            // Over TCP, a late UDP answer belongs to the old registration.
                            s.transport.current() == Transport::Udp
                                && s.client
                                    .as_mut()
                                    .is_some_and(|c| c.handle_input(&d.data, now).is_ok())
                        }),
                    Kind::Probe => st.paths.handle_probe(d.from, &mut d.data, now),
                    _ => false,
                };
                if !ok {
                    st.daemon.dp.drops.inc(Reason::NatUnexpected);
                }
                step(st, now).await;
            }
            NatMsg::Tick => {
                if now >= st.next_resolve && st.servers.iter().any(|s| s.addr.is_none()) {
                    resolve(st).await;
                }
                if now >= st.next_sync {
                    sync(st, now);
                }
                st.stun.handle_timeout(now);
                relay_home::close_idle(st, now);
                transports(st, &myself, now);
                for c in st.servers.iter_mut().filter_map(|s| s.client.as_mut()) {
                    if c.poll_timeout().is_some_and(|t| t <= now) {
                        c.handle_timeout(now);
                    }
                }
                signal(st, now);
                step(st, now).await;
            }
            NatMsg::Netcheck(reply) => {
                st.stun.recheck(now);
                step(st, now).await;
                st.netchecks.push((reply, now + NETCHECK_WAIT));
            }
            NatMsg::HubTcp {
                hub,
                generation,
                event,
            } => {
                tcp_event(st, hub, generation, event, now);
                step(st, now).await;
            }
            NatMsg::LinkChanged => {
                link_watch::on_change(st, now);
                step(st, now).await;
            }
        }
        // Answer the netchecks that are complete or out of time.
        if !st.netchecks.is_empty() {
            let done = st.stun.is_idle();
            let info = nat_info(st, now);
            for (reply, deadline) in std::mem::take(&mut st.netchecks) {
                if done || now >= deadline {
                    let _ = reply.send(info.clone());
                } else {
                    st.netchecks.push((reply, deadline));
                }
            }
        }
        Ok(())
    }
}

/// Resolves every server name not yet resolved, and restarts STUN if any address changed.
async fn resolve(st: &mut NatState) {
    let mut changed = false;
    for s in st.servers.iter_mut().filter(|s| s.addr.is_none()) {
        match s.endpoint.clone() {
            Endpoint::Addr(a) => {
                s.addr = Some(a);
                changed = true;
            }
            Endpoint::Host { host, port } => {
                let lookup = tokio::net::lookup_host((host.as_str(), port));
                let looked_up = tokio::time::timeout(RESOLVE_TIMEOUT, lookup).await;
                match looked_up {
                    Ok(Ok(mut addrs)) => match addrs.next() {
                        Some(a) => {
                            tracing::info!(server = %s.label, address = %a, "NAT server resolved");
                            s.addr = Some(a);
                            s.error = None;
                            changed = true;
                        }
                        None => note_unresolved(s, "the name has no address".into()),
                    },
                    Ok(Err(e)) => note_unresolved(s, e.to_string()),
                    Err(_) => note_unresolved(s, "the lookup timed out".into()),
                }
            }
        }
    }
    let now = Instant::now();
    st.next_resolve = now + RESOLVE_RETRY;
    if changed {
        // The data plane sends to relay stand-ins through these (index = server index).
        st.daemon
            .dp
            .udp()
            .relay
            .set(st.servers.iter().map(|s| s.hub_key.and(s.addr)).collect());
        let addrs: Vec<SocketAddr> = st.servers.iter().filter_map(|s| s.addr).collect();
        st.stun = StunClient::new(&addrs, crate::supervisor::random_seed(), now);
        make_clients(st, now);
    }
}

/// A hub client for every resolved hub (again after our private key changed).
fn make_clients(st: &mut NatState, now: Instant) {
    let Some((secret, _)) = &st.own else {
        for s in &mut st.servers {
            s.client = None;
        }
        return;
    };
    let status = st.stun.servers(now);
    let public = st.stun.public_endpoints(now);
    for s in &mut st.servers {
        if let (Some(key), Some(addr)) = (s.hub_key, s.addr) {
            if s.client.is_none() {
                let mut c =
                    HubClient::new(key, secret.clone(), crate::supervisor::random_seed(), now);
                if s.on_demand {
                    // Only to relay to its peers: our home stays our own hub.
                    c.set_visiting();
                }
                c.set_candidates(&announced(s.transport.current(), &public, &st.local), now);
                // What we already know of our address as the hub sees it, so registering
                // does not wait for the next STUN round.
                let observed = match s.transport.current() {
                    Transport::Udp => status
                        .iter()
                        .find(|x| x.addr == addr)
                        .and_then(|x| x.mapped),
                    Transport::Tcp => s.tcp_observed,
                };
                if let Some(o) = observed {
                    c.set_observed(o, now);
                }
                s.client = Some(c);
            }
        }
    }
}

/// The candidates announced with a registration: our LAN addresses; over TCP also our
/// STUN-learned UDP mappings first, since the address the hub sees then is a TCP one that no
/// peer can probe.
fn announced(transport: Transport, public: &[SocketAddr], local: &[SocketAddr]) -> Vec<SocketAddr> {
    match transport {
        Transport::Udp => local.to_vec(),
        Transport::Tcp => public.iter().chain(local).copied().collect(),
    }
}

/// Moves each hub between UDP and TCP as the transport choice says, and opens TCP
/// connections that are due.
fn transports(st: &mut NatState, me: &ActorRef<NatMsg>, now: Instant) {
    // A connection task that ended without reporting it (a panic) is handled as a connection
    // that went down: the transport choice reconnects, nothing else is disturbed.
    let crashed: Vec<(usize, u64)> = st
        .servers
        .iter()
        .enumerate()
        .filter(|(_, s)| s.tcp.as_ref().is_some_and(|l| l.crashed()))
        .map(|(i, s)| (i, s.tcp_generation))
        .collect();
    for (i, generation) in crashed {
        let why = "the connection's task failed".to_string();
        tcp_event(st, i, generation, TcpEvent::Down(why), now);
    }
    let mut replaced = Vec::new();
    for (i, s) in st.servers.iter_mut().enumerate() {
        let (Some(_), Some(addr)) = (s.hub_key, s.addr) else {
            continue;
        };
        // A registration over TCP that stops being answered: the connection is dead
        // (no RST came); start over with a new one.
        if s.transport.current() == Transport::Tcp
            && s.tcp.is_some()
            && s.client
                .as_ref()
                .is_some_and(|c| c.state() == HubState::Failed)
        {
            tracing::warn!(hub = %s.label, "the hub stopped answering over TCP; reconnecting");
            s.close_tcp();
            s.client = None;
            s.transport.tcp_failed(now);
            replaced.push(i);
        }
        if let Some(t) = s.transport.poll(now) {
            match t {
                Transport::Tcp => tracing::warn!(
                    hub = %s.label,
                    "the hub does not answer over UDP; using TCP to {addr}"
                ),
                Transport::Udp => {
                    tracing::info!(hub = %s.label, "the hub answers over UDP again; leaving TCP")
                }
            }
            s.close_tcp();
            s.tcp_error = None;
            // The hub binds a registration to its source: register afresh over the new one.
            s.client = None;
            replaced.push(i);
        }
        if s.transport.should_connect(now) {
            // Read only when connecting: this runs every tick.
            let fwmark = st.daemon.config.read().interface.fwmark;
            s.tcp_generation += 1;
            s.transport.connecting();
            s.tcp = Some(TcpLink::open(
                addr,
                s.tls.clone(),
                i,
                s.tcp_generation,
                fwmark,
                me.clone(),
                st.daemon.dp.clone(),
            ));
        }
    }
    if !replaced.is_empty() {
        // Relay channels belonged to the old registration.
        for i in replaced {
            st.paths.clear_relays(i as u16, now);
        }
        make_clients(st, now);
    }
}

/// Handles what a hub's TCP connection reports.
fn tcp_event(st: &mut NatState, hub: usize, generation: u64, event: TcpEvent, now: Instant) {
    let Some(s) = st.servers.get_mut(hub) else {
        return;
    };
    if s.tcp.is_none() || s.tcp_generation != generation {
        return;
    }
    let Some(addr) = s.addr else { return };
    match event {
        TcpEvent::Up => {
            tracing::info!(hub = %s.label, "TCP connection to the hub up");
            s.transport.tcp_connected();
            s.tcp_error = None;
            s.tcp_up = true;
            let mut stun = StunClient::new(&[addr], crate::supervisor::random_seed(), now);
            stun.handle_timeout(now);
            s.tcp_stun = Some(stun);
        }
        TcpEvent::Frame(data) => {
            let ok = match demux::classify(&data) {
                Kind::Stun => s
                    .tcp_stun
                    .as_mut()
                    .is_some_and(|t| t.handle_input(addr, &data, now).is_ok()),
                Kind::Hub => s
                    .client
                    .as_mut()
                    .is_some_and(|c| c.handle_input(&data, now).is_ok()),
                _ => false,
            };
            if !ok {
                st.daemon.dp.drops.inc(Reason::NatUnexpected);
            }
        }
        TcpEvent::Down(why) => {
            if s.tcp_error.as_deref() != Some(why.as_str()) {
                tracing::warn!(hub = %s.label, error = %why, "TCP connection to the hub lost");
            }
            let retry = s.transport.tcp_failed(now);
            tracing::debug!(hub = %s.label, in_ms = %retry.saturating_duration_since(now).as_millis(), "reconnecting");
            s.tcp_error = Some(why);
            s.close_tcp();
            // The hub ends a TCP registration with its connection.
            s.client = None;
            make_clients(st, now);
        }
    }
}

/// Follows the configuration (our key, the peers) and our local addresses.
fn sync(st: &mut NatState, now: Instant) {
    st.next_sync = now + SYNC_INTERVAL;
    let (own, peers, ifname) = {
        let cfg = st.daemon.config.read();
        let own = cfg
            .interface
            .private_key
            .as_ref()
            .map(|k| (k.secret(), k.public_key()));
        let peers = if st.servers.iter().any(|s| s.hub_key.is_some()) {
            cfg.peers.clone()
        } else {
            Vec::new()
        };
        (own, peers, cfg.interface.name.clone())
    };
    let own_changed = st.own.as_ref().map(|o| o.1) != own.as_ref().map(|o| o.1);
    if own_changed {
        st.own = own;
        for s in &mut st.servers {
            s.client = None;
        }
        make_clients(st, now);
    }
    st.paths
        .sync(st.own.as_ref().map(|(s, p)| (s, *p)), &peers, now);
    let local = local::local_candidates(st.daemon.dp.udp().port(), &ifname);
    if local != st.local {
        st.local = local;
        for c in st.servers.iter_mut().filter_map(|s| s.client.as_mut()) {
            c.set_candidates(&st.local, now);
        }
        st.paths.restart_all(now);
    }
}

/// Asks the first registered hub about every peer that has no path yet, and sends it our
/// candidates so it probes us at the same time (simultaneous open).
fn signal(st: &mut NatState, now: Instant) {
    let hubs = st.servers.iter().filter(|s| s.hub_key.is_some()).count();
    if hubs == 0 {
        return;
    }
    // Our own hubs only: an on-demand one is there for its peers' relays.
    let connected = st.servers.iter().position(|s| {
        !s.on_demand
            && s.client
                .as_ref()
                .is_some_and(|c| c.state() == HubState::Connected)
    });
    let Some(i) = connected else {
        let all_failed = st
            .servers
            .iter()
            .filter(|s| s.hub_key.is_some() && !s.on_demand)
            .all(|s| {
                s.transport.tcp_failing()
                    || s.client
                        .as_ref()
                        .is_none_or(|c| c.state() == HubState::Failed)
            });
        if all_failed {
            st.paths.set_all_signaling(Signaling::HubUnreachable);
        }
        return;
    };
    let due = st.paths.due_signals(now);
    if due.is_empty() {
        return;
    }
    let mut ours = st.stun.public_endpoints(now);
    ours.extend(st.local.iter().copied());
    ours.truncate(protocol::hub::messages::MAX_CANDIDATES);
    let client = st.servers[i]
        .client
        .as_mut()
        .expect("connected hub has a client");
    for d in &due {
        client.lookup(&d.peer, now);
        client.call_me_maybe(&d.peer, &ours);
        if st.paths.needs_relay(&d.peer) {
            client.relay_open(&d.peer);
        }
    }
    for d in due {
        if st.paths.needs_relay(&d.peer) {
            relay_home::signal_due(st, &d.peer);
        }
    }
}

/// Sends what the machines queued, handles their events and publishes the state.
async fn step(st: &mut NatState, now: Instant) {
    route_relay_frames(st);
    flush(st).await;
    let mut hub_events = Vec::new();
    let udp = st.daemon.dp.udp().clone();
    let public = st.stun.public_endpoints(now);
    // Told to peers with our candidates, so a pair that are both hard can say so.
    let hard = match st.stun.mapping(now) {
        MappingType::EndpointDependent => Some(true),
        MappingType::EndpointIndependent => Some(false),
        MappingType::Unknown => None,
    };
    st.paths.set_own_hard_nat(hard);
    for (index, s) in st.servers.iter_mut().enumerate() {
        let Some(addr) = s.addr else { continue };
        tcp_stun(s, &st.daemon, now);
        let Some(c) = s.client.as_mut() else { continue };
        c.set_hard_nat(hard);
        let on_tcp = s.transport.current() == Transport::Tcp;
        if on_tcp {
            c.set_candidates(&announced(Transport::Tcp, &public, &st.local), now);
        }
        while let Some(t) = c.poll_transmit() {
            let sent = if on_tcp {
                s.tcp.as_ref().is_some_and(|l| l.send(&t))
            } else {
                s.transport.udp_sent(now);
                udp.send(&t, addr).await.is_ok()
            };
            if !sent {
                st.daemon.dp.drops.inc(Reason::SendFailed);
            }
        }
        while let Some(ev) = c.poll_event() {
            hub_events.push((index as u16, s.label.clone(), ev));
        }
    }
    for (index, hub, ev) in hub_events {
        match ev {
            HubEvent::Registered { observed } => {
                tracing::info!(%hub, %observed, "registered with the hub");
                // Peers still without a UDP path: look them up (and ask for a relay) now.
                st.paths.signal_soon(now);
                relay_home::registered(st, usize::from(index));
            }
            HubEvent::RelayElsewhere {
                peer,
                hub: key,
                addr,
            } => relay_home::relay_elsewhere(st, peer, key, addr, now),
            HubEvent::Lost => {
                tracing::warn!(%hub, "hub registration lapsed; registering again");
                st.paths.clear_relays(index, now);
            }
            HubEvent::Forgotten => {
                tracing::info!(%hub, "the hub does not know us (restarted?); registering again");
                st.paths.clear_relays(index, now);
            }
            HubEvent::Presence {
                peer,
                observed,
                candidates,
            } => {
                let online = observed.is_some();
                st.paths.set_signaling(
                    &peer,
                    if online {
                        Signaling::PeerOnline
                    } else {
                        Signaling::PeerOffline
                    },
                );
                let mut all: Vec<SocketAddr> = observed.into_iter().collect();
                all.extend(candidates);
                if online {
                    st.paths.hub_candidates(&peer, &all, now);
                }
            }
            HubEvent::RelayReady { peer, channel } => {
                tracing::info!(%hub, peer = %PublicKey(peer), channel, "relay channel ready");
                st.paths.set_relay(
                    &peer,
                    crate::dataplane::relay::stand_in(index, channel),
                    now,
                );
            }
            HubEvent::CallMeMaybe {
                peer,
                candidates,
                hard_nat,
            } => {
                st.paths.set_signaling(&peer, Signaling::PeerOnline);
                st.paths.set_peer_hard_nat(&peer, hard_nat);
                st.paths.hub_candidates(&peer, &candidates, now);
                st.paths.called(&peer, now);
            }
        }
    }
    if st.paths.drive(&st.daemon, now).await {
        st.stun.recheck(now);
    }
    publish(st, now);
}

/// Drives STUN over a hub's TCP connection: what it learns is our TCP source as the hub sees
/// it, the address a registration over TCP is bound to.
fn tcp_stun(s: &mut Server, daemon: &Daemon, now: Instant) {
    let Some(ts) = s.tcp_stun.as_mut() else {
        return;
    };
    if ts.poll_timeout().is_some_and(|t| t <= now) {
        ts.handle_timeout(now);
    }
    while let Some(t) = ts.poll_transmit() {
        if !s.tcp.as_ref().is_some_and(|l| l.send(&t.payload)) {
            daemon.dp.drops.inc(Reason::SendFailed);
        }
    }
    while let Some(ev) = ts.poll_event() {
        let (StunEvent::Mapped { mapped, .. } | StunEvent::MappingChanged { new: mapped, .. }) = ev
        else {
            continue;
        };
        s.tcp_observed = Some(mapped);
        if let Some(c) = s.client.as_mut() {
            c.set_observed(mapped, now);
        }
    }
}

fn note_unresolved(s: &mut Server, error: String) {
    // Logged once per change of the reason, not on every retry.
    if s.error.as_deref() != Some(error.as_str()) {
        tracing::warn!(server = %s.label, %error, "cannot resolve a NAT server; retrying every {RESOLVE_RETRY:?}");
    }
    s.error = Some(error);
}

/// Sends what the STUN client has queued, from the WireGuard socket.
async fn flush(st: &mut NatState) {
    let now = Instant::now();
    while let Some(t) = st.stun.poll_transmit() {
        if let Some(s) = st
            .servers
            .iter_mut()
            .find(|s| s.hub_key.is_some() && s.addr == Some(t.dst))
        {
            s.transport.udp_sent(now);
        }
        let udp = st.daemon.dp.udp().clone();
        if let Err(e) = udp.send(&t.payload, t.dst).await {
            tracing::debug!(server = %t.dst, error = %e, "STUN request not sent");
            st.daemon.dp.drops.inc(Reason::SendFailed);
        }
    }
    while let Some(ev) = st.stun.poll_event() {
        tracing::debug!(event = ?ev, "STUN");
        let (server, mapped) = match ev {
            StunEvent::Mapped { server, mapped } => (server, mapped),
            StunEvent::MappingChanged { server, old, new } => {
                tracing::info!(%server, %old, %new, "the NAT changed our public mapping");
                st.paths.restart_all(now);
                (server, new)
            }
            StunEvent::Unreachable { .. } => continue,
        };
        // A hub's STUN answer is our address as that hub sees it: what a registration over
        // UDP binds. Over TCP it only says that UDP to the hub works again.
        if let Some(s) = st.servers.iter_mut().find(|s| s.addr == Some(server)) {
            s.transport.udp_answered();
            if s.transport.current() == Transport::Udp {
                if let Some(c) = s.client.as_mut() {
                    c.set_observed(mapped, now);
                }
            }
        }
    }
}

/// Publishes the current state for `show`.
fn publish(st: &NatState, now: Instant) {
    let info = nat_info(st, now);
    let mut shared = st.daemon.nat.write();
    if *shared != info {
        *shared = info;
    }
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// The state as `show` and `netcheck` report it.
fn nat_info(st: &NatState, now: Instant) -> NatInfo {
    let status = st.stun.servers(now);
    let find = |a: Option<SocketAddr>| a.and_then(|a| status.iter().find(|s| s.addr == a));
    let stun_servers = st
        .servers
        .iter()
        .map(|s| {
            let found = find(s.addr);
            StunServerInfo {
                address: s.label.clone(),
                state: match (s.addr, found) {
                    (None, _) => "unresolved",
                    (_, Some(f)) if f.mapped.is_some() => "ok",
                    (_, Some(f)) if f.unreachable => "unreachable",
                    _ => "checking",
                }
                .into(),
                mapped: found.and_then(|f| f.mapped).map(|m| m.to_string()),
                rtt_ms: found.and_then(|f| f.rtt).map(ms),
            }
        })
        .collect();
    let hubs = st
        .servers
        .iter()
        .filter(|s| s.hub_key.is_some())
        .map(|s| {
            let found = find(s.addr);
            let (state, error) = match (s.addr, &s.client) {
                (None, _) => ("failed", s.error.clone()),
                (_, None) if st.own.is_none() => ("failed", Some("no private key".to_string())),
                _ if s.transport.tcp_failing() => ("failed", s.tcp_error.clone()),
                (_, None) => ("connecting", None),
                (_, Some(c)) => match c.state() {
                    HubState::Connected => ("connected", None),
                    HubState::Connecting => ("connecting", None),
                    HubState::Failed => ("failed", Some("no answer".to_string())),
                },
            };
            HubInfo {
                address: s.label.clone(),
                state: state.into(),
                transport: s.transport.current().as_str().into(),
                tls: s.tls.is_some() && s.transport.current() == Transport::Tcp,
                on_demand: s.on_demand,
                rtt_ms: s
                    .client
                    .as_ref()
                    .and_then(|c| c.rtt())
                    .or(found.and_then(|f| f.rtt))
                    .map(ms),
                error,
            }
        })
        .collect();
    NatInfo {
        public_endpoints: st
            .stun
            .public_endpoints(now)
            .iter()
            .map(|a| a.to_string())
            .collect(),
        mapping: match st.stun.mapping(now) {
            MappingType::EndpointIndependent => "endpoint_independent",
            MappingType::EndpointDependent => "endpoint_dependent",
            MappingType::Unknown => "unknown",
        }
        .into(),
        hubs,
        stun_servers,
    }
}
