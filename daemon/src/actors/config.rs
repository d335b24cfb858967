//! ConfigActor: holds the configuration file's path and the last valid configuration loaded
//! from it.

use crate::config::{self, Config};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use std::path::PathBuf;

/// Messages to the ConfigActor.
#[derive(Debug)]
pub enum ConfigMsg {
    /// The configuration in force.
    Get(RpcReplyPort<Box<Config>>),
    /// Loads and validates the file again; replies with the new configuration or the errors.
    /// The configuration in force is replaced only when the file is valid.
    Load(RpcReplyPort<Result<Box<Config>, String>>),
    /// Records the configuration now in force (after a runtime change).
    Replace(Box<Config>),
}

/// Spawn arguments.
#[derive(Debug)]
pub struct ConfigArgs {
    /// The file, if the daemon was started from one.
    pub path: Option<PathBuf>,
    /// The configuration already loaded at start.
    pub initial: Config,
}

/// The actor's state.
#[derive(Debug)]
pub struct ConfigState {
    path: Option<PathBuf>,
    current: Config,
}

/// The actor.
#[derive(Debug, Default)]
pub struct ConfigActor;

impl Actor for ConfigActor {
    type Msg = ConfigMsg;
    type State = ConfigState;
    type Arguments = ConfigArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        args: ConfigArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(ConfigState {
            path: args.path,
            current: args.initial,
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        st: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            ConfigMsg::Get(reply) => {
                let _ = reply.send(Box::new(st.current.clone()));
            }
            ConfigMsg::Load(reply) => {
                let r = match &st.path {
                    None => Err("the daemon was not started from a configuration file".into()),
                    Some(p) => match config::load(p) {
                        Ok(c) => {
                            for w in &c.warnings {
                                tracing::warn!("{w}");
                            }
                            Ok(Box::new(c))
                        }
                        Err(e) => Err(e.to_string()),
                    },
                };
                let _ = reply.send(r);
            }
            ConfigMsg::Replace(c) => st.current = *c,
        }
        Ok(())
    }
}
