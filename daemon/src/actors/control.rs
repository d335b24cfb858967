//! ControlActor: owns the control socket and its accept loop; removes the socket file when it
//! stops.

use crate::control::server;
use crate::vocab::Daemon;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use std::path::PathBuf;
use std::sync::Arc;

/// Spawn arguments.
#[derive(Debug)]
pub struct ControlArgs {
    /// Socket path.
    pub path: PathBuf,
    /// Group given read/write access.
    pub group: Option<String>,
    /// Shared state.
    pub daemon: Arc<Daemon>,
}

/// The actor's state.
pub struct ControlState {
    path: PathBuf,
    task: tokio::task::JoinHandle<()>,
}

/// The actor (no messages yet: it serves clients from its accept task).
#[derive(Debug, Default)]
pub struct ControlActor;

impl Actor for ControlActor {
    type Msg = ();
    type State = ControlState;
    type Arguments = ControlArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        args: ControlArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        let listener = server::bind(&args.path, args.group.as_deref())?;
        tracing::info!(socket = %args.path.display(), "control socket ready");
        let task = tokio::spawn(server::serve(listener, args.daemon));
        Ok(ControlState {
            path: args.path,
            task,
        })
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<Self::Msg>,
        st: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        st.task.abort();
        let _ = std::fs::remove_file(&st.path);
        Ok(())
    }
}
