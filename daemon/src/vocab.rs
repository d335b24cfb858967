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
use ractor::{ActorRef, RpcReplyPort};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// Messages to the root.
pub enum RootMsg {
    /// Applies a new configuration (already validated field by field), replying with what
    /// changed or with every reason it was refused. The running state is untouched on refusal.
    Apply(Box<Config>, RpcReplyPort<Result<ChangeReport, Vec<String>>>),
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
            RootMsg::Apply(..) => "Apply",
            RootMsg::Reload(..) => "Reload",
            RootMsg::TunClosed(..) => "TunClosed",
            RootMsg::DataPlaneFailed { .. } => "DataPlaneFailed",
            #[cfg(feature = "fault-injection")]
            RootMsg::PanicPeer(..) => "PanicPeer",
        })
    }
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
    /// Held from reading the configuration in force to applying an edit of it (JSON-RPC and
    /// UAPI changes), so two concurrent edits cannot undo each other.
    pub edit_lock: tokio::sync::Mutex<()>,
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
