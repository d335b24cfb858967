//! InterfaceActor: owns the TUN device and everything the kernel knows about it (addresses,
//! MTU, link state, routes), and removes all of it when it stops.

use crate::actors::interface::{InterfaceManager, TunOptions};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use std::net::IpAddr;
use std::sync::Arc;

/// Messages to the InterfaceActor.
pub enum InterfaceMsg {
    /// Hands out the TUN device (once).
    TakeDevice(RpcReplyPort<Option<Arc<tun_rs::AsyncDevice>>>),
    /// Installs routes for these prefixes (those not covered by our addresses), removing routes
    /// we added earlier that are no longer wanted.
    SyncRoutes(Vec<(IpAddr, u8)>, RpcReplyPort<Result<(), String>>),
    /// Replaces the interface addresses.
    SetAddresses(Vec<(IpAddr, u8)>, RpcReplyPort<Result<(), String>>),
    /// Changes the MTU.
    SetMtu(u16, RpcReplyPort<Result<(), String>>),
}

impl std::fmt::Debug for InterfaceMsg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            InterfaceMsg::TakeDevice(_) => "TakeDevice",
            InterfaceMsg::SyncRoutes(..) => "SyncRoutes",
            InterfaceMsg::SetAddresses(..) => "SetAddresses",
            InterfaceMsg::SetMtu(..) => "SetMtu",
        })
    }
}

/// Spawn arguments.
#[derive(Debug, Clone)]
pub struct InterfaceArgs {
    /// TUN options.
    pub tun: TunOptions,
    /// Addresses to assign.
    pub addresses: Vec<(IpAddr, u8)>,
}

/// The actor's state.
pub struct InterfaceState {
    manager: InterfaceManager,
    device: Option<Arc<tun_rs::AsyncDevice>>,
}

/// The actor.
#[derive(Debug, Default)]
pub struct InterfaceActor;

impl Actor for InterfaceActor {
    type Msg = InterfaceMsg;
    type State = InterfaceState;
    type Arguments = InterfaceArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        args: InterfaceArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        let mut manager = InterfaceManager::with_options(args.tun, args.addresses)?;
        let device = manager.setup().await?;
        tracing::info!(interface = manager.name(), "interface up");
        Ok(InterfaceState {
            manager,
            device: Some(Arc::new(device)),
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        st: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            InterfaceMsg::TakeDevice(reply) => {
                let _ = reply.send(st.device.take());
            }
            InterfaceMsg::SyncRoutes(prefixes, reply) => {
                let r = st.manager.sync_routes(&prefixes).await;
                let _ = reply.send(r.map_err(|e| e.to_string()));
            }
            InterfaceMsg::SetAddresses(addrs, reply) => {
                let r = st.manager.set_addresses(&addrs).await;
                let _ = reply.send(r.map_err(|e| e.to_string()));
            }
            InterfaceMsg::SetMtu(mtu, reply) => {
                let r = st.manager.set_mtu(mtu).await;
                let _ = reply.send(r.map_err(|e| e.to_string()));
            }
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<Self::Msg>,
        st: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        if let Err(e) = st.manager.teardown().await {
            tracing::warn!(error = %e, "interface teardown incomplete");
        } else {
            tracing::info!(interface = st.manager.name(), "interface removed");
        }
        Ok(())
    }
}
