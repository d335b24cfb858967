//! Starting, replacing and restarting the NAT actor.

use super::RootState;
use crate::actors::nat::{NatActor, NatArgs, NatMsg};
use crate::config::NatConfig;
use crate::vocab::{Daemon, RootMsg};
use ractor::{Actor, ActorRef};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Starts the NAT actor when `config` names hubs or STUN servers; `None` otherwise (and then
/// STUN, hub and probe datagrams are dropped as `nat_off`).
pub(super) async fn spawn_nat(
    root: &ActorRef<RootMsg>,
    daemon: &Arc<Daemon>,
    config: &NatConfig,
) -> Option<ActorRef<NatMsg>> {
    if !config.is_enabled() {
        daemon.dp.nat.close();
        *daemon.nat.write() = Default::default();
        return None;
    }
    let args = NatArgs {
        daemon: daemon.clone(),
        config: config.clone(),
    };
    match Actor::spawn_linked(None, NatActor, args, root.get_cell()).await {
        Ok((a, _)) => Some(a),
        Err(e) => {
            // NAT traversal is an extra: WireGuard keeps working without it.
            tracing::error!(error = %e, "NAT traversal could not start");
            None
        }
    }
}

/// Replaces the NAT actor after the hubs or STUN servers changed.
pub(super) async fn replace_nat(root: &ActorRef<RootMsg>, st: &mut RootState, config: &NatConfig) {
    if let Some(old) = st.nat.take() {
        let _ = old
            .stop_and_wait(None, Some(Duration::from_millis(500)))
            .await;
    }
    st.nat = spawn_nat(root, &st.daemon, config).await;
}

/// Restarts a failed NAT actor, unless it failed too often (then NAT traversal stays off
/// until the next change of hubs or STUN servers; direct paths keep working).
pub(super) async fn nat_failed(root: &ActorRef<RootMsg>, st: &mut RootState, err: String) {
    st.nat = None;
    if !st.nat_failures.allow_restart(Instant::now()) {
        tracing::error!(error = %err, "NAT actor failed too often; NAT traversal is off until hubs or stun_servers change");
        st.daemon.dp.nat.close();
        return;
    }
    tracing::error!(error = %err, "NAT actor failed; restarting it");
    let config = st.daemon.config.read().nat.clone();
    st.nat = spawn_nat(root, &st.daemon, &config).await;
}

/// Hands a `netcheck` to the NAT actor; answers at once with the current state if there is
/// none.
pub(super) fn netcheck(st: &RootState, reply: ractor::RpcReplyPort<protocol::rpc::NatInfo>) {
    match &st.nat {
        Some(a) => {
            if let Err(e) = a.cast(NatMsg::Netcheck(reply)) {
                tracing::warn!(error = %e, "NAT actor unavailable for netcheck");
            }
        }
        None => {
            let _ = reply.send(st.daemon.nat.read().clone());
        }
    }
}
