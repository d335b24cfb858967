//! The root supervisor: builds the data plane, starts every actor linked to itself, restarts a
//! failed peer alone, and tears everything down in order when it stops.

use crate::actors::config::{ConfigActor, ConfigArgs, ConfigMsg};
use crate::actors::control::{ControlActor, ControlArgs};
use crate::actors::interface::actor::{InterfaceActor, InterfaceArgs, InterfaceMsg};
use crate::actors::interface::TunOptions;
use crate::actors::peer::{PeerActor, PeerArgs, PeerMsg};
use crate::config::{Config, PeerConfig};
use crate::dataplane::handshake::HandshakeQueue;
use crate::dataplane::udp::UdpSockets;
use crate::dataplane::{inbound, outbound, Clock, DataPlane};
use crate::state::Daemon;
use parking_lot::RwLock;
use protocol::keys::PublicKey;
use protocol::noise::handshake::StaticIdentity;
use protocol::noise::peer::PeerSettings;
use protocol::noise::timers::TimerConfig;
use ractor::{Actor, ActorCell, ActorId, ActorProcessingErr, ActorRef, SupervisionEvent};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// How long an RPC to a child may take during start.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

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
}

/// Messages to the root.
#[derive(Debug)]
pub enum RootMsg {}

struct PeerEntry {
    key: PublicKey,
    actor: ActorRef<PeerMsg>,
}

/// The root's state.
pub struct RootState {
    daemon: Arc<Daemon>,
    interface: ActorRef<InterfaceMsg>,
    control: Option<ActorRef<()>>,
    config_actor: ActorRef<ConfigMsg>,
    peers: HashMap<ActorId, PeerEntry>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    restarts: HashMap<PublicKey, u32>,
}

/// The root supervisor.
#[derive(Debug, Default)]
pub struct Root;

fn random_seed() -> [u8; 32] {
    let mut seed = [0u8; 32];
    if getrandom::fill(&mut seed).is_err() {
        // Without OS randomness keys would be predictable: refuse to run.
        panic!("no OS randomness available");
    }
    seed
}

fn prefixes(config: &Config) -> Vec<(std::net::IpAddr, u8)> {
    config
        .peers
        .iter()
        .flat_map(|p| p.allowed_ips.iter())
        .map(|p| (p.masked().addr(), p.prefix_len()))
        .collect()
}

impl Root {
    async fn spawn_peer(
        &self,
        myself: &ActorRef<RootMsg>,
        st_peers: &mut HashMap<ActorId, PeerEntry>,
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
                st_peers.insert(actor.get_id(), PeerEntry { key, actor });
            }
            Err(e) => tracing::error!(peer = %key, error = %e, "peer failed to start"),
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

        let iface_args = InterfaceArgs {
            tun: TunOptions::new(config.interface.name.clone(), config.interface.mtu),
            addresses: config
                .interface
                .addresses
                .iter()
                .map(|a| (a.addr(), a.prefix_len()))
                .collect(),
        };
        let (interface, _) =
            Actor::spawn_linked(None, InterfaceActor, iface_args, cell.clone()).await?;
        let tun = ractor::call_t!(
            interface,
            InterfaceMsg::TakeDevice,
            CALL_TIMEOUT.as_millis() as u64
        )?
        .ok_or("TUN device already taken")?;

        let udp = UdpSockets::bind(config.interface.listen_port.unwrap_or(0))
            .map_err(|e| format!("binding UDP port: {e}"))?;
        let identity = Arc::new(StaticIdentity::new(config.interface.private_key.clone()));
        let settings = PeerSettings {
            timers: TimerConfig::scaled(args.timer_divisor),
            rekey_after_bytes: config.interface.rekey_after_bytes,
            mtu: config.interface.mtu as usize,
            max_queued: 1024,
        };
        let dp = Arc::new(DataPlane {
            handshakes: HandshakeQueue::new(&identity, random_seed()),
            identity: RwLock::new(identity),
            router: Default::default(),
            udp,
            tun,
            settings: RwLock::new(settings),
            drops: Default::default(),
            clock: Clock::now(),
        });
        tracing::info!(port = dp.udp.port(), "listening");
        HandshakeQueue::start_worker(&dp)?;
        let mut tasks = vec![tokio::spawn(outbound::run(dp.clone()))];
        if dp.udp.v4.is_some() {
            tasks.push(tokio::spawn(inbound::run(dp.clone(), inbound::Family::V4)));
        }
        if dp.udp.v6.is_some() {
            tasks.push(tokio::spawn(inbound::run(dp.clone(), inbound::Family::V6)));
        }

        let mut peers = HashMap::new();
        for pc in config.peers.clone() {
            self.spawn_peer(&myself, &mut peers, &dp, pc).await;
        }
        let routes = prefixes(&config);
        if let Err(e) = ractor::call_t!(
            interface,
            InterfaceMsg::SyncRoutes,
            CALL_TIMEOUT.as_millis() as u64,
            routes
        )? {
            tracing::warn!(error = %e, "some routes could not be installed");
        }

        let daemon = Arc::new(Daemon {
            dp: dp.clone(),
            config: RwLock::new(config.clone()),
        });
        let (config_actor, _) = Actor::spawn_linked(
            None,
            ConfigActor,
            ConfigArgs {
                path: args.config_path,
                initial: config.clone(),
            },
            cell.clone(),
        )
        .await?;
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
        if let Some(tx) = args.ready {
            let _ = tx.send(daemon.clone());
        }
        Ok(RootState {
            daemon,
            interface,
            control: Some(control),
            config_actor,
            peers,
            tasks,
            restarts: HashMap::new(),
        })
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
        for t in st.tasks.drain(..) {
            t.abort();
        }
        if let Some(c) = st.control.take() {
            let _ = c
                .stop_and_wait(None, Some(Duration::from_millis(500)))
                .await;
        }
        for (_, p) in st.peers.drain() {
            p.actor.stop(None);
        }
        st.config_actor.stop(None);
        let _ = st
            .interface
            .stop_and_wait(None, Some(Duration::from_millis(1000)))
            .await;
        Ok(())
    }
}

impl Root {
    async fn child_failed(
        &self,
        myself: &ActorRef<RootMsg>,
        st: &mut RootState,
        cell: ActorCell,
        err: String,
    ) {
        let id = cell.get_id();
        if let Some(entry) = st.peers.remove(&id) {
            let n = st.restarts.entry(entry.key).or_default();
            *n += 1;
            tracing::error!(peer = %entry.key, error = %err, restarts = *n, "peer actor failed; restarting it");
            let config = st
                .daemon
                .config
                .read()
                .peers
                .iter()
                .find(|p| p.public_key == entry.key)
                .cloned();
            if let Some(pc) = config {
                let dp = st.daemon.dp.clone();
                self.spawn_peer(myself, &mut st.peers, &dp, pc).await;
            }
        } else if st.control.as_ref().is_some_and(|c| c.get_id() == id) {
            tracing::error!(error = %err, "control server failed");
            st.control = None;
        } else {
            tracing::error!(error = %err, "essential actor failed; stopping");
            myself.stop(Some(format!("child failed: {err}")));
        }
    }
}
