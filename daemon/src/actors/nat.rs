//! The NatActor: learns this host's public endpoints and NAT mapping type with STUN over the
//! WireGuard socket (so the mapping is the tunnel's own), and publishes them for `vpnctl show`
//! and `vpnctl netcheck`.
//!
//! The protocol logic is sans-IO ([`protocol::nat::stun::StunClient`]); this actor only
//! resolves names, moves datagrams between it and the socket, and drives its timers. The data
//! plane hands it the STUN, hub and probe datagrams it receives through a bounded queue
//! ([`crate::dataplane::nat_inbox`]); WireGuard packets never come here. A crash restarts this
//! actor alone: WireGuard sessions and their endpoints are untouched.

use crate::config::{Endpoint, NatConfig};
use crate::dataplane::counters::Reason;
use crate::dataplane::nat_inbox::NatDatagram;
use crate::vocab::Daemon;
use protocol::nat::demux::{self, Kind};
use protocol::nat::stun::{MappingType, StunClient};
use protocol::rpc::{HubInfo, NatInfo, StunServerInfo};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

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
#[derive(Debug)]
struct Server {
    /// As written in the configuration.
    label: String,
    endpoint: Endpoint,
    addr: Option<SocketAddr>,
    /// Why the name does not resolve (when it does not).
    error: Option<String>,
    /// Hubs answer STUN as well; `Some` marks a hub.
    hub: bool,
}

/// The actor's state.
pub struct NatState {
    daemon: Arc<Daemon>,
    servers: Vec<Server>,
    stun: StunClient,
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
        let mut add = |endpoint: &Endpoint, hub: bool| {
            if !servers.iter().any(|s| &s.endpoint == endpoint) {
                servers.push(Server {
                    label: endpoint.to_string(),
                    endpoint: endpoint.clone(),
                    addr: None,
                    error: None,
                    hub,
                });
            }
        };
        for h in &args.config.hubs {
            add(&h.address, true);
        }
        for s in &args.config.stun_servers {
            add(s, false);
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
        let now = Instant::now();
        let mut st = NatState {
            daemon: args.daemon,
            servers,
            stun: StunClient::new(&[], crate::supervisor::random_seed(), now),
            next_resolve: now,
            netchecks: Vec::new(),
            tasks: vec![pump, ticker],
        };
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
        // Only if no newer NAT actor has opened its own queue meanwhile would closing matter;
        // the root closes the inbox itself when NAT traversal is switched off.
        Ok(())
    }

    async fn handle(
        &self,
        _myself: ActorRef<NatMsg>,
        msg: NatMsg,
        st: &mut NatState,
    ) -> Result<(), ActorProcessingErr> {
        let now = Instant::now();
        match msg {
            NatMsg::Datagram(d) => {
                let ok = match demux::classify(&d.data) {
                    Kind::Stun => st.stun.handle_input(d.from, &d.data, now).is_ok(),
                    // Hub messages and path probes: not handled by this version.
                    _ => false,
                };
                if !ok {
                    st.daemon.dp.drops.inc(Reason::NatUnexpected);
                }
                flush(st).await;
                publish(st, now);
            }
            NatMsg::Tick => {
                if now >= st.next_resolve && st.servers.iter().any(|s| s.addr.is_none()) {
                    resolve(st).await;
                }
                st.stun.handle_timeout(now);
                flush(st).await;
                publish(st, now);
            }
            NatMsg::Netcheck(reply) => {
                st.stun.recheck(now);
                flush(st).await;
                st.netchecks.push((reply, now + NETCHECK_WAIT));
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
        let addrs: Vec<SocketAddr> = st.servers.iter().filter_map(|s| s.addr).collect();
        st.stun = StunClient::new(&addrs, crate::supervisor::random_seed(), now);
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
    while let Some(t) = st.stun.poll_transmit() {
        let udp = st.daemon.dp.udp().clone();
        if let Err(e) = udp.send(&t.payload, t.dst).await {
            tracing::debug!(server = %t.dst, error = %e, "STUN request not sent");
            st.daemon.dp.drops.inc(Reason::SendFailed);
        }
    }
    while let Some(ev) = st.stun.poll_event() {
        tracing::debug!(event = ?ev, "STUN");
        if let protocol::nat::stun::StunEvent::MappingChanged { server, old, new } = ev {
            tracing::info!(%server, %old, %new, "the NAT changed our public mapping");
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
        .filter(|s| s.hub)
        .map(|s| {
            let found = find(s.addr);
            // Registration with hubs is not built yet: a hub counts as reachable when it
            // answers STUN.
            let (state, error) = match (s.addr, found) {
                (None, _) => ("failed", s.error.clone()),
                (_, Some(f)) if f.mapped.is_some() => ("connecting", None),
                (_, Some(f)) if f.unreachable => ("failed", Some("no answer".to_string())),
                _ => ("connecting", None),
            };
            HubInfo {
                address: s.label.clone(),
                state: state.into(),
                transport: "udp".into(),
                rtt_ms: found.and_then(|f| f.rtt).map(ms),
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
