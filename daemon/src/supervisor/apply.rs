//! Applying a configuration change to the running daemon: only the difference, and nothing at
//! all when the new configuration is inconsistent.

use super::{
    identity_for, peer_settings, random_seed, route_prefixes, routes_timeout_ms, spawn_control,
    spawn_inbound, Root, RootMsg, RootState, CALL_TIMEOUT_MS,
};
use crate::actors::config::ConfigMsg;
use crate::actors::interface::actor::InterfaceMsg;
use crate::actors::peer::PeerMsg;
use crate::config::{save, Config, Format};
use crate::dataplane::udp::UdpSockets;
use crate::reconfig::{self, ChangeReport};
use crate::vocab::{EditDone, EditError, EditFn};
use protocol::rpc::{self, RpcError};
use ractor::ActorRef;
use std::sync::Arc;
use std::time::Duration;

/// Applies an edit to the configuration in force and, if it asks, writes the result to the
/// file before the root takes its next message (so a reload cannot read the file between the
/// change and its save).
pub(super) async fn edit(
    myself: &ActorRef<RootMsg>,
    st: &mut RootState,
    edit: EditFn,
) -> Result<EditDone, EditError> {
    let current = st.daemon.config.read().clone();
    let planned = edit(&current).map_err(EditError::Request)?;
    let save_to = match (planned.save, &planned.config.source_path) {
        (false, _) => None,
        (true, Some(path)) => Some(path.clone()),
        (true, None) => {
            return Err(EditError::Request(RpcError::new(
                rpc::INVALID_PARAMS,
                "save: the daemon was not started from a configuration file",
            )))
        }
    };
    // The file keeps its format (a .toml stays TOML), and one that will hold a key inline is
    // written 0600 whatever its mode was.
    let text = save_to.as_deref().map(|p| {
        let c = &planned.config;
        (c.to_text(Format::from_path(p)), c.holds_inline_secret())
    });
    let report = apply(myself, st, planned.config)
        .await
        .map_err(EditError::Refused)?;
    let saved = match (save_to, text) {
        (Some(path), Some((text, secret))) => {
            let target = path.clone();
            let written = tokio::task::spawn_blocking(move || {
                save::write_atomically(&target, text.as_bytes(), secret)
            })
            .await;
            match written {
                Ok(Ok(())) => {
                    // The file now holds the configuration in force: the watcher must not
                    // reload it.
                    crate::actors::config::note_own_write(&path);
                    Ok(true)
                }
                Ok(Err(e)) => Err(format!(
                    "applied, but writing {} failed: {e}",
                    path.display()
                )),
                Err(e) => Err(format!(
                    "applied, but writing {} failed: {e}",
                    path.display()
                )),
            }
        }
        _ => Ok(false),
    };
    Ok(EditDone { report, saved })
}

/// Applies `new` over the running configuration. Refusals change nothing.
pub(super) async fn apply(
    myself: &ActorRef<RootMsg>,
    st: &mut RootState,
    new: Config,
) -> Result<ChangeReport, Vec<String>> {
    let old = st.daemon.config.read().clone();
    reconfig::check(&old, &new)?;
    let (plan, report) = reconfig::plan(&old, &new);
    if plan.is_empty() {
        return Ok(report);
    }
    if st.configless && plan.addresses.is_some() {
        return Err(vec![
            "interface.addresses: addresses are managed outside vpnd in this mode \
             (it was started without a configuration file); use `ip address`"
                .to_string(),
        ]);
    }
    if plan.control {
        if let Some(g) = &new.control.group {
            if let Ok(None) = crate::unix_group::gid_of(g) {
                return Err(vec![format!("control.group: no such group \"{g}\"")]);
            }
        }
    }
    let dp = st.daemon.dp.clone();

    // Bind the new port first: if it is taken, refuse before touching anything.
    let new_udp = match plan.listen_port {
        // Asking for the port we already listen on (a `wg showconf | wg setconf` of a daemon
        // that picked a free port) changes the configuration, not the sockets.
        Some(Some(port)) if port == dp.udp().port() => None,
        Some(port) => Some(Arc::new(
            UdpSockets::bind_with(port.unwrap_or(0), dp.options.offload)
                .map_err(|e| vec![e.to_string()])?
                .with_relay(dp.udp().relay.clone()),
        )),
        None => None,
    };
    // The mark goes on the sockets that will be in use: the new ones, or the current ones.
    if plan.fwmark.is_some() || (new_udp.is_some() && new.interface.fwmark.is_some()) {
        let mark = new.interface.fwmark.unwrap_or(0);
        let target = new_udp.clone().unwrap_or_else(|| dp.udp.load_full());
        target
            .set_mark(mark)
            .map_err(|e| vec![format!("interface.fwmark: cannot set {mark}: {e}")])?;
    }

    if let Some(mtu) = plan.mtu {
        ractor::call_t!(st.interface, InterfaceMsg::SetMtu, CALL_TIMEOUT_MS, mtu)
            .map_err(|e| vec![format!("interface.mtu: {e}")])?
            .map_err(|e| vec![format!("interface.mtu: {e}")])?;
    }
    if let Some(addrs) = &plan.addresses {
        let a = addrs.iter().map(|p| (p.addr(), p.prefix_len())).collect();
        let r = match ractor::call_t!(st.interface, InterfaceMsg::SetAddresses, CALL_TIMEOUT_MS, a)
        {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e),
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = r {
            // Refused as a whole: put back the MTU changed a moment ago.
            if plan.mtu.is_some() {
                let _ = ractor::call_t!(
                    st.interface,
                    InterfaceMsg::SetMtu,
                    CALL_TIMEOUT_MS,
                    old.interface.mtu
                );
            }
            return Err(vec![format!("interface.addresses: {e}")]);
        }
    }
    if let Some(udp) = new_udp {
        for (_, t) in st.inbound.drain(..) {
            t.abort();
        }
        dp.udp.store(udp.clone());
        st.inbound = spawn_inbound(&dp, &udp, myself);
    }
    if plan.mtu.is_some() || plan.rekey_after_bytes.is_some() {
        let settings = peer_settings(&new, dp.timer_divisor);
        *dp.settings.write() = settings;
        for h in dp.router.peers() {
            h.cell.lock().peer.set_settings(settings);
        }
    }

    // The configuration in force is updated before peers start, so a restart after a crash
    // uses the new settings.
    *st.daemon.config.write() = new.clone();

    // Peers: a new private key changes every session, so every peer starts afresh.
    let mut removed = plan.removed.clone();
    let mut added = plan.added.clone();
    let mut changed = plan.changed.clone();
    if plan.private_key {
        let identity = Arc::new(identity_for(&new.interface.private_key));
        dp.handshakes.reset_identity(&identity, random_seed());
        *dp.identity.write() = identity;
        removed = old.peers.iter().map(|p| p.public_key).collect();
        added = new.peers.clone();
        changed.clear();
    }
    for key in &removed {
        // A removed peer leaves no supervision history behind: added again later, it starts
        // afresh (not `failed`, `restarts` 0, and a full restart budget).
        st.daemon.failed.write().remove(key);
        st.daemon.restarts.write().remove(key);
        st.restart_times.remove(key);
        let ids: Vec<_> = st
            .peers
            .iter()
            .filter(|(_, e)| e.key == *key)
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            if let Some(e) = st.peers.remove(&id) {
                let _ = e
                    .actor
                    .stop_and_wait(Some("removed".into()), Some(Duration::from_secs(2)))
                    .await;
            }
        }
        dp.router.remove_key(key);
    }
    Root::spawn_peers(myself, &mut st.peers, &dp, added).await;
    for pc in changed {
        if let Some(e) = st.peers.values().find(|e| e.key == pc.public_key) {
            let _ = ractor::call_t!(e.actor, PeerMsg::Update, CALL_TIMEOUT_MS, Box::new(pc));
        }
    }

    let routes = route_prefixes(&new, st.configless);
    let timeout = routes_timeout_ms(routes.len());
    match ractor::call_t!(st.interface, InterfaceMsg::SyncRoutes, timeout, routes) {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "some routes could not be installed"),
        Err(e) => tracing::warn!(error = %e, "interface actor unavailable for routes"),
    }
    if plan.control {
        if let Some(c) = st.control.take() {
            let _ = c
                .stop_and_wait(None, Some(Duration::from_millis(500)))
                .await;
        }
        match spawn_control(&myself.get_cell(), &new, &st.daemon).await {
            Ok(c) => st.control = Some(c),
            Err(e) => {
                // Never leave the daemon without its control socket: serve the old one again.
                tracing::error!(
                    error = %crate::startup_error_message(e.as_ref()),
                    "control socket could not be moved; keeping the old one"
                );
                if let Ok(c) = spawn_control(&myself.get_cell(), &old, &st.daemon).await {
                    st.control = Some(c);
                }
            }
        }
    }
    if plan.nat {
        super::nat::replace_nat(myself, st, &new.nat).await;
    }
    let _ = st.config_actor.cast(ConfigMsg::Replace(Box::new(new)));
    Ok(report)
}
