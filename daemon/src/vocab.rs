//! The daemon's vocabulary: the messages the root supervisor takes and the shared state every
//! part of the control plane holds. It imports none of the supervisor, the actors, the control
//! or UAPI servers, so they can all name these types without importing one another (new actors
//! such as a NAT or hub client depend on this module, not on the supervisor).

use crate::config::Config;
use crate::dataplane::outbound::OutboundEnd;
use crate::dataplane::tasks::Task;
use crate::dataplane::DataPlane;
use crate::reconfig::ChangeReport;
use parking_lot::RwLock;
use protocol::keys::PublicKey;
use protocol::rpc::RpcError;
use ractor::{ActorRef, RpcReplyPort};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// How long a caller waits for the root to apply one change or reload ([`RootMsg::Edit`],
/// [`RootMsg::Reload`]), in milliseconds. The root applies changes one at a time, and one may
/// restart every peer and resynchronise every route: the wait is generous so that a large
/// reload is not reported as failed, yet bounded so that a wedged root shows as an error
/// instead of a hung client. A caller that gives up does not cancel the change; the root
/// finishes it.
pub const APPLY_TIMEOUT_MS: u64 = 20_000;

/// Messages to the root.
pub enum RootMsg {
    /// Applies a change to the configuration in force at its turn (and saves the result if the
    /// change asks to), replying with what changed. Changes from the control and UAPI sockets
    /// come this way, so they and reloads are applied one at a time, each to the result of the
    /// previous one: none can undo another.
    Edit(EditFn, RpcReplyPort<Result<EditDone, EditError>>),
    /// Checks the NAT now (STUN to every server) and replies with what was found.
    Netcheck(RpcReplyPort<protocol::rpc::NatInfo>),
    /// Loads the configuration file again and applies it.
    Reload(RpcReplyPort<Result<ChangeReport, Vec<String>>>),
    /// The outbound task stopped reading the TUN (the interface was deleted, or the device
    /// failed).
    TunClosed(OutboundEnd),
    /// A data-plane task or thread failed (panicked, or returned when it should run until
    /// cancelled). `id` is the tokio task's, to ignore reports of tasks replaced meanwhile.
    DataPlaneFailed {
        /// Which task.
        task: Task,
        /// The failed tokio task (`None` for the handshake thread).
        id: Option<tokio::task::Id>,
        /// What happened.
        error: String,
    },
    /// Makes one PeerActor panic (fault injection for tests).
    #[cfg(feature = "fault-injection")]
    PanicPeer(PublicKey),
}

impl std::fmt::Debug for RootMsg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RootMsg::Edit(..) => "Edit",
            RootMsg::Reload(..) => "Reload",
            RootMsg::Netcheck(..) => "Netcheck",
            RootMsg::TunClosed(..) => "TunClosed",
            RootMsg::DataPlaneFailed { .. } => "DataPlaneFailed",
            #[cfg(feature = "fault-injection")]
            RootMsg::PanicPeer(..) => "PanicPeer",
        })
    }
}

/// The configuration a change asks for, and whether to write it to the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedChange {
    /// The complete new configuration (not yet checked against the running one).
    pub config: Config,
    /// `save: true` was given.
    pub save: bool,
}

/// Computes a change from the configuration in force (see [`RootMsg::Edit`]); an error refuses
/// the request as the client sent it.
pub type EditFn = Box<dyn FnOnce(&Config) -> Result<PlannedChange, RpcError> + Send>;

/// An applied [`RootMsg::Edit`].
#[derive(Debug)]
pub struct EditDone {
    /// What changed.
    pub report: ChangeReport,
    /// Whether the file was written; `Err` says why writing failed (the change is in force).
    pub saved: Result<bool, String>,
}

/// Why a [`RootMsg::Edit`] was not applied.
#[derive(Debug)]
pub enum EditError {
    /// The request itself is wrong (bad parameters, an unknown peer).
    Request(RpcError),
    /// The new configuration is inconsistent with the running one; every reason.
    Refused(Vec<String>),
}

/// A peer's path as the NAT actor last decided it (`path` in `show`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerPath {
    /// `direct`, `punched`, `relay` or `none`.
    pub kind: &'static str,
    /// Where packets to the peer go.
    pub endpoint: Option<std::net::SocketAddr>,
    /// Why not direct/punched (a short code), when not.
    pub why_not_direct: Option<&'static str>,
    /// For a relayed peer: when probing next tries a direct path.
    pub next_direct_attempt: Option<std::time::Instant>,
    /// For a relayed peer: how its hub is reached, `udp` or `tcp`.
    pub relay_transport: Option<&'static str>,
}

/// Shared between the supervisor, the control server and the actors.
pub struct Daemon {
    /// The data plane.
    pub dp: Arc<DataPlane>,
    /// The configuration in force.
    pub config: RwLock<Config>,
    /// The root supervisor, which applies every change.
    pub root: ActorRef<RootMsg>,
    /// Peers whose actor crashed too often and is no longer restarted.
    pub failed: RwLock<HashSet<PublicKey>>,
    /// Restarts per peer since start.
    pub restarts: RwLock<HashMap<PublicKey, u32>>,
    /// NAT traversal state for `show` and `netcheck`, written by the NAT actor.
    pub nat: RwLock<protocol::rpc::NatInfo>,
    /// Each peer's path, written by the NAT actor (peers absent here: `direct` when they have
    /// an endpoint).
    pub paths: RwLock<HashMap<PublicKey, PeerPath>>,
    /// Concurrent clients of the JSON-RPC control socket, and those turned away.
    pub control_clients: Arc<crate::accept::ClientLimit>,
    /// Concurrent clients of the UAPI socket, and those turned away.
    pub uapi_clients: Arc<crate::accept::ClientLimit>,
    /// Reads the interface's MTU and addresses from the kernel for `show`: set in the
    /// configuration-less mode, where `wg-quick` sets them and the configuration has neither.
    pub kernel_link: Option<crate::kernel_link::KernelLink>,
}

impl std::fmt::Debug for Daemon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Daemon").finish_non_exhaustive()
    }
}
