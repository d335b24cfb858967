//! The root supervisor: builds the data plane, starts every actor linked to itself and every
//! data-plane task under its watch (`tasks.rs`), restarts what fails (`restart.rs`: a peer
//! alone, a data-plane task, each within an intensity limit), applies configuration changes
//! as a diff (`apply.rs`), and tears everything down in order when it stops.

mod apply;
mod nat;
mod restart;
mod tasks;

pub use restart::{Intensity, MAX_RESTARTS, RESTART_WINDOW};
pub(crate) use tasks::spawn_inbound;

use crate::actors::config::{ConfigActor, ConfigArgs, ConfigMsg};
use crate::actors::control::{ControlActor, ControlArgs};
use crate::actors::interface::actor::{InterfaceActor, InterfaceArgs, InterfaceMsg};
use crate::actors::interface::TunOptions;
use crate::actors::peer::{PeerActor, PeerArgs, PeerMsg};
use crate::actors::uapi::{UapiActor, UapiArgs};
use crate::config::{Config, PeerConfig};
use crate::dataplane::handshake::HandshakeQueue;
use crate::dataplane::outbound::OutboundEnd;
use crate::dataplane::tasks::Task;
use crate::dataplane::udp::UdpSockets;
use crate::dataplane::{Clock, DataPlane};
use crate::vocab::{Daemon, RootMsg};
use parking_lot::RwLock;
use protocol::keys::{PrivateKey, PublicKey};
use protocol::noise::handshake::StaticIdentity;
use protocol::noise::peer::PeerSettings;
use protocol::noise::timers::TimerConfig;
use ractor::{Actor, ActorCell, ActorId, ActorProcessingErr, ActorRef, SupervisionEvent};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// How long an RPC to a child may take.
pub(crate) const CALL_TIMEOUT_MS: u64 = 10_000;
/// How long installing routes for `n` prefixes may take: [`CALL_TIMEOUT_MS`] plus 0.1 ms a
/// route. The kernel needs about 10 µs a route on an idle machine; 100,000 routes on a loaded
/// one took over 10 s, and a start-up that times out fails.
pub(crate) fn routes_timeout_ms(n: usize) -> u64 {
    CALL_TIMEOUT_MS + n as u64 / 10
}
/// Peers started at once (see [`Root::spawn_peers`]).
const PEER_SPAWN_WINDOW: usize = 64;

/// Arguments of the root.
#[derive(Debug)]
pub struct RootArgs {
    /// The validated configuration.
    pub config: Config,
    /// The file it came from.
    pub config_path: Option<PathBuf>,
    /// Divides every protocol timer (test-only knob; 1 in production).
    pub timer_divisor: u32,
    /// Sends the shared state back once everything is up.
    pub ready: Option<tokio::sync::oneshot::Sender<Arc<Daemon>>>,
    /// Directory of the WireGuard UAPI socket (`<dir>/<interface>.sock`); `None` serves none.
    pub uapi_dir: Option<PathBuf>,
    /// Started without a configuration file (`vpnd <interface>`): addresses and routes belong
    /// to someone else (`wg-quick`), so the daemon installs no route and refuses address
    /// changes; and the UAPI, its only way to be configured, must start.
    pub configless: bool,
    /// Notified when the interface is deleted from outside; the owner of the root then stops it
    /// as for a signal.
    pub link_gone: Arc<tokio::sync::Notify>,
}

pub(crate) struct PeerEntry {
    pub(crate) key: PublicKey,
    pub(crate) actor: ActorRef<PeerMsg>,
}

/// The root's state.
pub struct RootState {
    pub(crate) daemon: Arc<Daemon>,
    pub(crate) interface: ActorRef<InterfaceMsg>,
    pub(crate) control: Option<ActorRef<()>>,
    pub(crate) uapi: Option<ActorRef<()>>,
    pub(crate) uapi_dir: Option<PathBuf>,
    pub(crate) configless: bool,
    pub(crate) link_gone: Arc<tokio::sync::Notify>,
    pub(crate) config_actor: ActorRef<ConfigMsg>,
    pub(crate) peers: HashMap<ActorId, PeerEntry>,
    pub(crate) outbound: tokio::task::JoinHandle<()>,
    pub(crate) inbound: Vec<(Task, tokio::task::JoinHandle<()>)>,
    pub(crate) sighup: tokio::task::JoinHandle<()>,
    /// Recent failures of each peer's actor.
    pub(crate) restart_times: HashMap<PublicKey, Intensity>,
    /// Recent failures of each data-plane task.
    pub(crate) dataplane_failures: HashMap<Task, Intensity>,
    /// The NAT actor, when hubs or STUN servers are configured.
    pub(crate) nat: Option<ActorRef<crate::actors::nat::NatMsg>>,
    /// Recent failures of the NAT actor.
    pub(crate) nat_failures: Intensity,
}

/// The root supervisor.
#[derive(Debug, Default)]
pub struct Root;

/// 32 bytes from the OS for seeding RNGs.
pub(crate) fn random_seed() -> [u8; 32] {
    let mut seed = [0u8; 32];
    if getrandom::fill(&mut seed).is_err() {
        // Without OS randomness keys would be predictable: refuse to run.
        panic!("no OS randomness available");
    }
    seed
}

/// The static identity for a private key, or the keyless one.
pub(crate) fn identity_for(key: &Option<PrivateKey>) -> StaticIdentity {
    match key {
        Some(k) => StaticIdentity::new(k.clone()),
        None => StaticIdentity::unset(),
    }
}

/// Every allowed-IP prefix of every peer, masked; none when routes are managed outside.
pub(crate) fn route_prefixes(config: &Config, configless: bool) -> Vec<(std::net::IpAddr, u8)> {
    if configless {
        return Vec::new();
    }
    config
        .peers
        .iter()
        .flat_map(|p| p.allowed_ips.iter())
        .map(|p| (p.masked().addr(), p.prefix_len()))
        .collect()
}

pub(crate) fn peer_settings(config: &Config, timer_divisor: u32) -> PeerSettings {
    PeerSettings {
        timers: TimerConfig::scaled(timer_divisor),
        rekey_after_bytes: config.interface.rekey_after_bytes,
        mtu: config.interface.mtu as usize,
        max_queued: 1024,
    }
}

impl Root {
    pub(crate) async fn spawn_peer(
        myself: &ActorRef<RootMsg>,
        peers: &mut HashMap<ActorId, PeerEntry>,
        dp: &Arc<DataPlane>,
        config: PeerConfig,
    ) {
        let key = config.public_key;
        let args = PeerArgs {
            config,
            dp: dp.clone(),
            seed: random_seed(),
        };
        match Actor::spawn_linked(None, PeerActor, args, myself.get_cell()).await {
            Ok((actor, _)) => {
                peers.insert(actor.get_id(), PeerEntry { key, actor });
            }
            Err(e) => tracing::error!(peer = %key, error = %e, "peer failed to start"),
        }
    }

    /// Starts a PeerActor for each configuration, up to [`PEER_SPAWN_WINDOW`] at once.
    ///
    /// A PeerActor's `pre_start` runs in the task that spawns it, and costs one X25519 (the
    /// peer's static-static secret); a host name is looked up afterwards, in the background.
    /// One spawn after the other, 10,000 peers took 0.8 s on one core; spawned from tasks of
    /// their own they use every worker thread. The window keeps the memory
    /// of spawns in progress small (all 10,000 at once left the heap 30 MiB larger).
    pub(crate) async fn spawn_peers(
        myself: &ActorRef<RootMsg>,
        peers: &mut HashMap<ActorId, PeerEntry>,
        dp: &Arc<DataPlane>,
        configs: Vec<PeerConfig>,
    ) {
        let mut spawns = tokio::task::JoinSet::new();
        type Joined = Result<
            (
                PublicKey,
                Result<(ActorRef<PeerMsg>, tokio::task::JoinHandle<()>), ractor::SpawnErr>,
            ),
            tokio::task::JoinError,
        >;
        let mut record = |joined: Joined| match joined {
            Ok((key, Ok((actor, _)))) => {
                peers.insert(actor.get_id(), PeerEntry { key, actor });
            }
            Ok((key, Err(e))) => tracing::error!(peer = %key, error = %e, "peer failed to start"),
            Err(e) => tracing::error!(error = %e, "peer start-up task failed"),
        };
        for config in configs {
            if spawns.len() >= PEER_SPAWN_WINDOW {
                if let Some(joined) = spawns.join_next().await {
                    record(joined);
                }
            }
            let key = config.public_key;
            let args = PeerArgs {
                config,
                dp: dp.clone(),
                seed: random_seed(),
            };
            let supervisor = myself.get_cell();
            spawns.spawn(async move {
                (
                    key,
                    Actor::spawn_linked(None, PeerActor, args, supervisor).await,
                )
            });
        }
        while let Some(joined) = spawns.join_next().await {
            record(joined);
        }
    }
}

impl Actor for Root {
    type Msg = RootMsg;
    type State = RootState;
    type Arguments = RootArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: RootArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        let config = args.config;
        let cell = myself.get_cell();
        let options = crate::dataplane::DataPlaneOptions::from_env();

        // The sockets first: a port in use is refused before the interface is touched. The
        // error names the field and the fix; it is the start-up error as is.
        let udp = Arc::new(UdpSockets::bind_with(
            config.interface.listen_port.unwrap_or(0),
            options.offload,
        )?);
        if let Some(mark) = config.interface.fwmark {
            udp.set_mark(mark)
                .map_err(|e| format!("setting fwmark {mark}: {e}"))?;
        }

        let iface_args = InterfaceArgs {
            tun: TunOptions {
                offload: options.offload,
                ..TunOptions::new(config.interface.name.clone(), config.interface.mtu)
            },
            addresses: config
                .interface
                .addresses
                .iter()
                .map(|a| (a.addr(), a.prefix_len()))
                .collect(),
        };
        let (interface, _) =
            Actor::spawn_linked(None, InterfaceActor, iface_args, cell.clone()).await?;
        let tun = ractor::call_t!(interface, InterfaceMsg::TakeDevice, CALL_TIMEOUT_MS)?
            .ok_or("TUN device already taken")?;

        let identity = Arc::new(identity_for(&config.interface.private_key));
        let dp = Arc::new(DataPlane {
            handshakes: HandshakeQueue::new(&identity, random_seed()),
            identity: RwLock::new(identity),
            router: Default::default(),
            udp: arc_swap::ArcSwap::new(udp.clone()),
            tun,
            settings: RwLock::new(peer_settings(&config, args.timer_divisor)),
            timer_divisor: args.timer_divisor,
            drops: Default::default(),
            clock: Clock::now(),
            options,
            crypto: options.crypto_pool(),
            restarts: Default::default(),
            nat: Default::default(),
            #[cfg(feature = "fault-injection")]
            faults: Default::default(),
        });
        tracing::info!(
            port = udp.port(),
            tun_tso = dp.tun.tcp_gso(),
            tun_uso = dp.tun.udp_gso(),
            udp_gso = udp.v4_offloads.gso(),
            udp_gro = udp.v4_offloads.gro,
            crypto_workers = options.crypto_workers,
            "listening"
        );
        tasks::start_handshake_worker(&dp, &myself)?;
        let outbound = tasks::spawn_outbound(&dp, &myself);
        let inbound = spawn_inbound(&dp, &udp, &myself);

        // The kernel's work for the routes (about 10 µs each) and the peers' start-up (an
        // X25519 each) overlap: the InterfaceActor installs routes while peers start.
        let routes = route_prefixes(&config, args.configless);
        let routes_done = {
            let interface = interface.clone();
            let timeout = routes_timeout_ms(routes.len());
            tokio::spawn(async move {
                ractor::call_t!(interface, InterfaceMsg::SyncRoutes, timeout, routes)
            })
        };
        let mut peers = HashMap::new();
        Root::spawn_peers(&myself, &mut peers, &dp, config.peers.clone()).await;
        if let Err(e) = routes_done.await?? {
            tracing::warn!(error = %e, "some routes could not be installed");
        }

        // Each socket server gets its share of the descriptors, leaving a reserve for reloads.
        let max_clients = crate::accept::max_clients(crate::accept::raise_nofile_limit());
        let daemon = Arc::new(Daemon {
            dp: dp.clone(),
            config: RwLock::new(config.clone()),
            root: myself.clone(),
            failed: Default::default(),
            restarts: Default::default(),
            nat: Default::default(),
            paths: Default::default(),
            control_clients: Arc::new(crate::accept::ClientLimit::new(max_clients)),
            uapi_clients: Arc::new(crate::accept::ClientLimit::new(max_clients)),
            kernel_link: if args.configless {
                match crate::kernel_link::KernelLink::new(&config.interface.name) {
                    Ok(link) => Some(link),
                    Err(e) => {
                        tracing::warn!(error = %e, "show will report the configured MTU and addresses, not the kernel's");
                        None
                    }
                }
            } else {
                None
            },
        });
        let (config_actor, _) = Actor::spawn_linked(
            None,
            ConfigActor,
            ConfigArgs {
                path: args.config_path,
                initial: config.clone(),
                root: Some(myself.clone()),
            },
            cell.clone(),
        )
        .await?;
        let control = spawn_control(&cell, &config, &daemon).await?;
        let uapi = match &args.uapi_dir {
            None => None,
            Some(dir) => match spawn_uapi(&cell, dir, &config, &daemon).await {
                Ok(a) => Some(a),
                Err(e) if args.configless => return Err(e),
                // With a configuration file the UAPI is a convenience: run without it (for
                // example when a daemon in another network namespace holds the path).
                Err(e) => {
                    tracing::error!(error = %e, "UAPI socket unavailable: `wg` cannot reach this daemon (vpnctl can)");
                    None
                }
            },
        };
        let nat = nat::spawn_nat(&myself, &daemon, &config.nat).await;
        let sighup = tokio::spawn(reload_on_sighup(myself.clone()));
        if let Some(tx) = args.ready {
            let _ = tx.send(daemon.clone());
        }
        Ok(RootState {
            daemon,
            interface,
            control: Some(control),
            uapi,
            uapi_dir: args.uapi_dir,
            configless: args.configless,
            link_gone: args.link_gone,
            config_actor,
            peers,
            outbound,
            inbound,
            sighup,
            restart_times: HashMap::new(),
            dataplane_failures: HashMap::new(),
            nat,
            nat_failures: Intensity::default(),
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        st: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            RootMsg::Edit(edit, reply) => {
                let r = apply::edit(&myself, st, edit).await;
                let _ = reply.send(r);
            }
            RootMsg::Netcheck(reply) => nat::netcheck(st, reply),
            RootMsg::Reload(reply) => {
                let loaded = ractor::call_t!(st.config_actor, ConfigMsg::Load, CALL_TIMEOUT_MS);
                let r = match loaded {
                    Ok(Ok(c)) => apply::apply(&myself, st, *c).await,
                    Ok(Err(e)) => Err(e.lines().map(str::to_string).collect()),
                    Err(e) => Err(vec![format!("config actor unavailable: {e}")]),
                };
                match &r {
                    Ok(rep) if rep.is_empty() => tracing::info!("reload: nothing changed"),
                    Ok(rep) => {
                        for l in rep.lines() {
                            tracing::info!("reload: {l}");
                        }
                    }
                    Err(e) => {
                        for l in e {
                            tracing::error!("reload refused: {l}");
                        }
                    }
                }
                let _ = reply.send(r);
            }
            RootMsg::TunClosed(OutboundEnd::LinkGone) => {
                tracing::info!("the interface was deleted from outside; shutting down");
                st.link_gone.notify_one();
            }
            RootMsg::TunClosed(OutboundEnd::Failed(e)) => {
                myself.stop(Some(format!("reading the TUN device failed: {e}")));
            }
            RootMsg::DataPlaneFailed { task, id, error } => {
                restart::dataplane_failed(&myself, st, task, id, error);
            }
            #[cfg(feature = "fault-injection")]
            RootMsg::PanicPeer(key) => {
                if let Some(e) = st.peers.values().find(|e| e.key == key) {
                    let _ = e.actor.cast(PeerMsg::Panic);
                }
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<Self::Msg>,
        evt: SupervisionEvent,
        st: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match evt {
            SupervisionEvent::ActorFailed(cell, err) => {
                self.child_failed(&myself, st, cell, err.to_string()).await
            }
            SupervisionEvent::ActorTerminated(cell, _, reason)
                if st.peers.remove(&cell.get_id()).is_some() =>
            {
                tracing::debug!(?reason, "peer actor stopped");
            }
            _ => {}
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<Self::Msg>,
        st: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        st.outbound.abort();
        st.sighup.abort();
        for (_, t) in st.inbound.drain(..) {
            t.abort();
        }
        for c in [st.control.take(), st.uapi.take()].into_iter().flatten() {
            let _ = c
                .stop_and_wait(None, Some(Duration::from_millis(500)))
                .await;
        }
        for (_, p) in st.peers.drain() {
            p.actor.stop(None);
        }
        if let Some(n) = st.nat.take() {
            n.stop(None);
        }
        st.config_actor.stop(None);
        let _ = st
            .interface
            .stop_and_wait(None, Some(Duration::from_millis(1000)))
            .await;
        Ok(())
    }
}

/// Reloads the configuration file on every SIGHUP.
async fn reload_on_sighup(root: ActorRef<RootMsg>) {
    use futures::StreamExt;
    let mut signals = match signal_hook_tokio::Signals::new([signal_hook::consts::SIGHUP]) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGHUP");
            return;
        }
    };
    while signals.next().await.is_some() {
        tracing::info!("SIGHUP: reloading the configuration");
        if let Err(e) = ractor::call_t!(root, RootMsg::Reload, crate::vocab::APPLY_TIMEOUT_MS) {
            tracing::warn!(error = %e, "reload failed");
        }
    }
}

pub(crate) async fn spawn_control(
    cell: &ActorCell,
    config: &Config,
    daemon: &Arc<Daemon>,
) -> Result<ActorRef<()>, ActorProcessingErr> {
    let (control, _) = Actor::spawn_linked(
        None,
        ControlActor,
        ControlArgs {
            path: config.control.socket.clone(),
            group: config.control.group.clone(),
            daemon: daemon.clone(),
        },
        cell.clone(),
    )
    .await?;
    Ok(control)
}

/// Starts the UAPI server on `<dir>/<interface>.sock`.
pub(crate) async fn spawn_uapi(
    cell: &ActorCell,
    dir: &std::path::Path,
    config: &Config,
    daemon: &Arc<Daemon>,
) -> Result<ActorRef<()>, ActorProcessingErr> {
    let (uapi, _) = Actor::spawn_linked(
        None,
        UapiActor,
        UapiArgs {
            path: crate::uapi::socket_path(dir, &config.interface.name),
            daemon: daemon.clone(),
        },
        cell.clone(),
    )
    .await?;
    Ok(uapi)
}
