//! UapiActor: owns WireGuard's UAPI socket (`/var/run/wireguard/<interface>.sock`) and its
//! accept loop; removes the socket file when it stops. See [`crate::uapi`].

use crate::uapi::server;
use crate::vocab::Daemon;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use std::path::PathBuf;
use std::sync::Arc;

/// Spawn arguments.
#[derive(Debug)]
pub struct UapiArgs {
    /// Socket path.
    pub path: PathBuf,
    /// Shared state.
    pub daemon: Arc<Daemon>,
}

/// The actor's state.
pub struct UapiState {
    path: PathBuf,
    task: tokio::task::JoinHandle<()>,
}

/// The actor (no messages: it serves clients from its accept task).
#[derive(Debug, Default)]
pub struct UapiActor;

impl Actor for UapiActor {
    type Msg = ();
    type State = UapiState;
    type Arguments = UapiArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        args: UapiArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        let listener = server::bind(&args.path)?;
        tracing::info!(socket = %args.path.display(), "UAPI socket ready");
        let task = tokio::spawn(server::serve(listener, args.daemon));
        Ok(UapiState {
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
