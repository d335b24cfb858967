//! PeerActor: owns one peer's protocol state machine — creates it, drives its timers, logs its
//! transitions, resolves its endpoint — while the data plane uses it through the shared
//! [`PeerHandle`].
//!
//! A host name is looked up in a task of its own that reports back with
//! [`PeerMsg::Resolved`]: neither the actor (its timers and events) nor the root (which waits
//! for `pre_start` and for [`PeerMsg::Update`]) ever waits for a resolver. A name that does not
//! resolve is retried on the [`LookupSchedule`] (5 s doubling to 5 min), logged once per change.

use crate::actors::lookup_schedule::{Change, LookupSchedule};
use crate::config::{Endpoint, PeerConfig};
use crate::dataplane::counters::Reason;
use crate::dataplane::peer_handle::PeerHandle;
use crate::dataplane::router::PeerIndexRegistry;
use crate::dataplane::DataPlane;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

/// How long a hostname lookup may take.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);
/// Re-resolve a hostname endpoint after this many unanswered handshakes in a row.
const RESOLVE_AFTER_TIMEOUTS: u32 = 3;

/// Messages to a PeerActor.
#[derive(Debug)]
pub enum PeerMsg {
    /// The protocol has events, output or a due timer.
    Wake,
    /// Look the configured host name up again (unless a lookup is under way).
    Resolve,
    /// A lookup finished: the address, or why there is none.
    Resolved {
        /// The [`PeerActorState::lookup_generation`] it was started in; a result for an
        /// endpoint configured earlier is ignored.
        generation: u64,
        /// The first address, or the resolver's error.
        result: Result<SocketAddr, String>,
    },
    /// Applies changed settings in place; the session is kept.
    Update(Box<PeerConfig>, ractor::RpcReplyPort<()>),
    /// Panics (fault injection for tests).
    #[cfg(feature = "fault-injection")]
    Panic,
}

/// Spawn arguments.
pub struct PeerArgs {
    /// The peer's configuration.
    pub config: PeerConfig,
    /// The shared data plane.
    pub dp: Arc<DataPlane>,
    /// Seed for the peer's RNG.
    pub seed: [u8; 32],
}

impl std::fmt::Debug for PeerArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerArgs")
            .field("public_key", &self.config.public_key)
            .finish_non_exhaustive()
    }
}

/// The actor's state.
pub struct PeerActorState {
    /// The shared handle.
    pub handle: Arc<PeerHandle>,
    dp: Arc<DataPlane>,
    config: PeerConfig,
    timer: AbortOnDrop,
    timeouts_in_a_row: u32,
    /// When to look the host name up again, and what was last logged about it.
    lookups: LookupSchedule,
    /// Bumped whenever the configured endpoint changes, so late results are dropped.
    lookup_generation: u64,
    /// The lookup under way, if any.
    lookup: Option<AbortOnDrop>,
    /// The pending retry after a failed lookup, if any.
    retry: Option<AbortOnDrop>,
}

/// Aborts a task when dropped (also when the actor dies by panic).
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The actor.
#[derive(Debug, Default)]
pub struct PeerActor;

/// A short label for logs.
fn label(c: &PeerConfig) -> String {
    match &c.name {
        Some(n) => n.clone(),
        None => {
            let k = c.public_key.to_base64();
            k[..8].to_string()
        }
    }
}

/// Looks `host` up through the system resolver (`getaddrinfo` on a blocking thread), within
/// [`RESOLVE_TIMEOUT`]; the first address, normalised as the sockets report sources.
async fn lookup(host: &str, port: u16) -> Result<SocketAddr, String> {
    let lookup = tokio::net::lookup_host((host, port));
    match tokio::time::timeout(RESOLVE_TIMEOUT, lookup).await {
        Ok(Ok(mut addrs)) => addrs
            .next()
            .map(crate::dataplane::udp::normalize)
            .ok_or_else(|| "no address".to_string()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {RESOLVE_TIMEOUT:?}")),
    }
}

/// Builds the protocol peer and its handle.
pub fn build_handle(
    dp: &DataPlane,
    config: &PeerConfig,
    endpoint: Option<SocketAddr>,
    seed: [u8; 32],
) -> Arc<PeerHandle> {
    let identity = dp.identity.read().clone();
    let settings = *dp.settings.read();
    let indices = dp.router.indices.clone();
    let anchor = crate::dataplane::Clock::now().anchor();
    let pc = protocol::noise::peer::PeerConfig {
        public_key: config.public_key,
        preshared_key: config.preshared_key.clone(),
        endpoint,
        persistent_keepalive: config
            .persistent_keepalive
            .map(|s| Duration::from_secs(s.into())),
    };
    Arc::new_cyclic(|weak| {
        let registry = Arc::new(PeerIndexRegistry::new(indices, weak.clone()));
        let peer = protocol::noise::peer::Peer::new(identity, pc, settings, registry, seed, anchor);
        PeerHandle::new(peer)
    })
}

async fn timer_task(handle: Arc<PeerHandle>, actor: ActorRef<PeerMsg>) {
    loop {
        let deadline = handle.cell.lock().reported_deadline;
        let sleep = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = sleep => {}
            _ = handle.wake.notified() => {}
            _ = handle.rearm.notified() => continue,
        }
        if !handle.wake_queued.swap(true, Ordering::AcqRel) && actor.cast(PeerMsg::Wake).is_err() {
            return;
        }
    }
}

impl Actor for PeerActor {
    type Msg = PeerMsg;
    type State = PeerActorState;
    type Arguments = PeerArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: PeerArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        // A host name is looked up after start (below), never here: the root waits for this.
        let endpoint = match &args.config.endpoint {
            Some(Endpoint::Addr(a)) => Some(*a),
            _ => None,
        };
        let handle = build_handle(&args.dp, &args.config, endpoint, args.seed);
        let named = matches!(args.config.endpoint, Some(Endpoint::Host { .. }));
        handle.unresolved.store(named, Ordering::Relaxed);
        let replaced = args
            .dp
            .router
            .install(handle.clone(), &args.config.allowed_ips);
        // A handle of the same key is still installed only when this actor replaces one that
        // crashed (a removed peer leaves the router first): the peer's counters carry on, so
        // a restart shows in `restarts`, not as `handshakes` and transfer counts starting over.
        // Read after the swap, so nothing the old handle counted is missed.
        if let Some(old) = replaced {
            let earlier = old.cell.lock().peer.stats();
            handle.cell.lock().peer.carry_stats(earlier);
        }
        let timer = AbortOnDrop(tokio::spawn(timer_task(handle.clone(), myself.clone())));
        match &args.config.endpoint {
            Some(e @ Endpoint::Host { .. }) => {
                tracing::info!(peer = %label(&args.config), endpoint = %e, "peer started, resolving its endpoint")
            }
            _ => tracing::info!(peer = %label(&args.config), endpoint = ?endpoint, "peer started"),
        }
        // Run once: a peer with a persistent keepalive has a handshake to send already.
        handle.wake_actor();
        if named {
            myself.cast(PeerMsg::Resolve)?;
        }
        let lookups = LookupSchedule::scaled(args.dp.timer_divisor);
        Ok(PeerActorState {
            handle,
            dp: args.dp,
            config: args.config,
            timer,
            timeouts_in_a_row: 0,
            lookups,
            lookup_generation: 0,
            lookup: None,
            retry: None,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        st: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            PeerMsg::Wake => self.on_wake(&myself, st).await,
            PeerMsg::Update(new, reply) => {
                self.update(&myself, st, *new);
                let _ = reply.send(());
            }
            #[cfg(feature = "fault-injection")]
            PeerMsg::Panic => panic!("fault injection: peer actor panics on request"),
            PeerMsg::Resolve => start_lookup(&myself, st),
            PeerMsg::Resolved { generation, result } => {
                if generation == st.lookup_generation {
                    st.lookup = None;
                    on_lookup(&myself, st, result);
                }
            }
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<Self::Msg>,
        st: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        st.dp.router.remove(&st.handle);
        st.timer.0.abort();
        st.lookup = None;
        st.retry = None;
        Ok(())
    }
}

/// Starts looking the configured host name up, unless a lookup is under way (its answer will
/// do) or the endpoint is an address.
fn start_lookup(myself: &ActorRef<PeerMsg>, st: &mut PeerActorState) {
    let Some(Endpoint::Host { host, port }) = &st.config.endpoint else {
        return;
    };
    if st.lookup.as_ref().is_some_and(|l| !l.0.is_finished()) {
        return;
    }
    st.retry = None;
    let (host, port) = (host.clone(), *port);
    let generation = st.lookup_generation;
    let me = myself.clone();
    st.lookup = Some(AbortOnDrop(tokio::spawn(async move {
        let result = lookup(&host, port).await;
        let _ = me.cast(PeerMsg::Resolved { generation, result });
    })));
}

/// Applies a lookup's result: the address becomes the endpoint (a peer that had none sends
/// what waited for it); a failure keeps the endpoint in force and schedules a retry. Each
/// change is logged once: WARN when the name stops resolving, INFO with the address when it
/// resolves (again, or to another address); the retries in between only at DEBUG.
fn on_lookup(
    myself: &ActorRef<PeerMsg>,
    st: &mut PeerActorState,
    result: Result<SocketAddr, String>,
) {
    let Some(name @ Endpoint::Host { .. }) = &st.config.endpoint else {
        return;
    };
    let who = label(&st.config);
    match result {
        Ok(addr) => {
            st.retry = None;
            st.handle.unresolved.store(false, Ordering::Relaxed);
            let change = st.lookups.succeeded(addr);
            let now = Instant::now();
            // A peer that roamed away from the address is sent back to it, as before.
            let moved = st.handle.with_peer(&st.dp.udp(), |p| {
                let moved = p.endpoint() != Some(addr);
                if moved {
                    p.set_resolved_endpoint(addr, now);
                }
                moved
            });
            if change.is_some() || moved {
                tracing::info!(peer = %who, endpoint = %name, %addr, "endpoint resolved");
            }
        }
        Err(error) => {
            st.handle.unresolved.store(true, Ordering::Relaxed);
            let now = Instant::now();
            let retry = st.lookups.failed(now);
            let wait = retry.at.saturating_duration_since(now);
            if retry.change == Some(Change::Unresolvable) {
                tracing::warn!(
                    peer = %who,
                    endpoint = %name,
                    %error,
                    retry_in = ?wait,
                    "endpoint does not resolve; retrying (waits double up to 5 min), logged again when it resolves"
                );
            } else {
                tracing::debug!(peer = %who, endpoint = %name, %error, retry_in = ?wait, "endpoint still does not resolve");
            }
            let me = myself.clone();
            st.retry = Some(AbortOnDrop(tokio::spawn(async move {
                tokio::time::sleep_until(retry.at.into()).await;
                let _ = me.cast(PeerMsg::Resolve);
            })));
        }
    }
}

impl PeerActor {
    /// Applies a changed configuration without waiting for anything: a new host name is
    /// looked up afterwards (see [`start_lookup`]) and keeps the old endpoint until it resolves.
    fn update(&self, myself: &ActorRef<PeerMsg>, st: &mut PeerActorState, new: PeerConfig) {
        let old = std::mem::replace(&mut st.config, new.clone());
        if old.allowed_ips != new.allowed_ips {
            st.dp
                .router
                .set_allowed_ips(&new.public_key, &new.allowed_ips);
        }
        // `Some(new)` when the endpoint in force changes now: to the address, or to none when
        // the configuration clears it. A name keeps the old one until it resolves.
        let endpoint = if old.endpoint != new.endpoint {
            st.lookup_generation += 1;
            st.lookup = None;
            st.retry = None;
            st.lookups = LookupSchedule::scaled(st.dp.timer_divisor);
            let named = matches!(new.endpoint, Some(Endpoint::Host { .. }));
            st.handle.unresolved.store(named, Ordering::Relaxed);
            match &new.endpoint {
                Some(Endpoint::Addr(a)) => Some(Some(*a)),
                Some(Endpoint::Host { .. }) => None,
                None => Some(None),
            }
        } else {
            None
        };
        let now = Instant::now();
        st.handle.with_peer(&st.dp.udp(), |p| {
            if old.preshared_key != new.preshared_key {
                p.set_preshared_key(new.preshared_key.clone());
            }
            if let Some(e) = endpoint {
                p.set_endpoint(e);
            }
            if old.persistent_keepalive != new.persistent_keepalive {
                p.set_persistent_keepalive(
                    new.persistent_keepalive
                        .map(|s| Duration::from_secs(s.into())),
                    now,
                );
            }
        });
        tracing::info!(peer = %label(&new), "peer updated");
        if old.endpoint != new.endpoint {
            start_lookup(myself, st);
        }
    }

    async fn on_wake(&self, myself: &ActorRef<PeerMsg>, st: &mut PeerActorState) {
        st.handle.clear_wake();
        let now = Instant::now();
        let mut out = Vec::new();
        let mut events = Vec::new();
        let rearm = {
            let mut cell = st.handle.cell.lock();
            cell.peer.handle_timeout(now);
            cell.drain_transmits(&mut out);
            while let Some(e) = cell.peer.poll_event() {
                events.push(e);
            }
            let d = cell.peer.poll_timeout();
            let changed = d != cell.reported_deadline;
            cell.reported_deadline = d;
            changed
        };
        if rearm {
            st.handle.rearm.notify_one();
        }
        for t in out {
            if let Err(e) = st.dp.udp().send(&t.payload, t.dst).await {
                tracing::debug!(dst = %t.dst, error = %e, "send failed");
                st.dp
                    .drops
                    .inc(crate::dataplane::counters::Reason::SendFailed);
            }
        }
        let who = label(&st.config);
        for e in events {
            use protocol::noise::peer::PeerEvent as E;
            match e {
                E::StateChanged { from, to } => {
                    tracing::info!(peer = %who, %from, %to, reason = ?to, "peer state changed")
                }
                E::HandshakeCompleted { initiator } => {
                    st.timeouts_in_a_row = 0;
                    // Fresh OS randomness for the next handshake's ephemeral key and index.
                    let seed = crate::supervisor::random_seed();
                    st.handle.cell.lock().peer.reseed(seed);
                    tracing::debug!(peer = %who, initiator, "handshake completed")
                }
                E::EndpointChanged { from, to } => {
                    tracing::info!(peer = %who, ?from, %to, "endpoint changed")
                }
                E::HandshakeTimedOut { attempts } => {
                    st.timeouts_in_a_row += 1;
                    tracing::debug!(peer = %who, attempts, "handshake timed out");
                    if matches!(st.config.endpoint, Some(Endpoint::Host { .. }))
                        && st.timeouts_in_a_row % RESOLVE_AFTER_TIMEOUTS == 0
                    {
                        let _ = myself.cast(PeerMsg::Resolve);
                    }
                }
                E::QueueDropped { packets } => {
                    st.dp.drops.add(Reason::QueueOverflow, packets as u64);
                }
            }
        }
    }
}
