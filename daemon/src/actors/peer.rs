//! PeerActor: owns one peer's protocol state machine — creates it, drives its timers, logs its
//! transitions, resolves its endpoint — while the data plane uses it through the shared
//! [`PeerHandle`].

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
    /// Resolve the configured hostname endpoint again.
    Resolve,
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

/// Resolves an endpoint; hostnames through the system resolver.
pub async fn resolve(e: &Endpoint) -> Option<SocketAddr> {
    match e {
        Endpoint::Addr(a) => Some(*a),
        Endpoint::Host { host, port } => {
            let lookup = tokio::net::lookup_host((host.as_str(), *port));
            match tokio::time::timeout(RESOLVE_TIMEOUT, lookup).await {
                Ok(Ok(mut addrs)) => addrs.next().map(crate::dataplane::udp::normalize),
                Ok(Err(e)) => {
                    tracing::warn!(%host, error = %e, "endpoint lookup failed");
                    None
                }
                Err(_) => {
                    tracing::warn!(%host, "endpoint lookup timed out");
                    None
                }
            }
        }
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
        let endpoint = match &args.config.endpoint {
            Some(e) => resolve(e).await,
            None => None,
        };
        let handle = build_handle(&args.dp, &args.config, endpoint, args.seed);
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
        tracing::info!(peer = %label(&args.config), endpoint = ?endpoint, "peer started");
        // Run once: a peer with a persistent keepalive has a handshake to send already.
        handle.wake_actor();
        if endpoint.is_none() && matches!(args.config.endpoint, Some(Endpoint::Host { .. })) {
            myself.send_after(Duration::from_secs(5), || PeerMsg::Resolve);
        }
        Ok(PeerActorState {
            handle,
            dp: args.dp,
            config: args.config,
            timer,
            timeouts_in_a_row: 0,
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
                self.update(st, *new).await;
                let _ = reply.send(());
            }
            #[cfg(feature = "fault-injection")]
            PeerMsg::Panic => panic!("fault injection: peer actor panics on request"),
            PeerMsg::Resolve => {
                if let Some(e) = &st.config.endpoint {
                    match resolve(e).await {
                        Some(addr) => {
                            let changed = st.handle.with_peer(&st.dp.udp(), |p| {
                                let changed = p.endpoint() != Some(addr);
                                if changed {
                                    p.set_endpoint(Some(addr));
                                }
                                changed
                            });
                            if changed {
                                tracing::info!(peer = %label(&st.config), %addr, "endpoint resolved");
                            }
                        }
                        None => {
                            myself.send_after(Duration::from_secs(5), || PeerMsg::Resolve);
                        }
                    }
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
        Ok(())
    }
}

impl PeerActor {
    async fn update(&self, st: &mut PeerActorState, new: PeerConfig) {
        let old = std::mem::replace(&mut st.config, new.clone());
        if old.allowed_ips != new.allowed_ips {
            st.dp
                .router
                .set_allowed_ips(&new.public_key, &new.allowed_ips);
        }
        // `Some(new)` when the endpoint in force changes: to the resolved address, or to none
        // when the configuration clears it. A name that does not resolve keeps the old one.
        let endpoint = if old.endpoint != new.endpoint {
            match &new.endpoint {
                Some(e) => resolve(e).await.map(Some),
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
