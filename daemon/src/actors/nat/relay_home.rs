//! Hubs dialled on demand to relay to their peers. Relays never forward to each other: when
//! our hub answers a RelayOpen with RelayElsewhere (the peer is registered on another hub
//! sharing its store), we register with that hub too and open the channel there, so the
//! relay runs through the peer's own hub. Such a hub is closed again after a minute without
//! a channel of ours on it.
//!
//! Only the side with the lower public key dials: both ends ask their own hub at the same
//! time, and two channels on two hubs would make each side roam between them.

use super::{make_clients, NatState, Server};
use crate::config::Endpoint;
use protocol::hub::client::HubState;
use protocol::keys::PublicKey;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Hubs dialled on demand at most at once (each is a registration kept alive while used).
pub const MAX_ON_DEMAND: usize = 4;
/// An on-demand hub with no channel of ours for this long is left.
pub const IDLE_CLOSE: Duration = Duration::from_secs(60);

/// Our hub says `peer` is registered on `hub` at `addr`.
pub(super) fn relay_elsewhere(
    st: &mut NatState,
    peer: [u8; 32],
    hub: [u8; 32],
    addr: SocketAddr,
    now: Instant,
) {
    let Some((_, own)) = &st.own else { return };
    if own.as_bytes() > &peer {
        // The peer dials our hub; we wait for its RelayReady.
        return;
    }
    let i = match st
        .servers
        .iter()
        .position(|s| s.addr == Some(addr) && s.hub_key == Some(hub))
    {
        Some(i) => i,
        None => {
            if st.servers.iter().filter(|s| s.on_demand).count() >= MAX_ON_DEMAND {
                tracing::debug!(%addr, "too many hubs dialled on demand; not relaying there");
                return;
            }
            let mut s = Server::new(Endpoint::Addr(addr), Some(hub), None);
            s.on_demand = true;
            s.addr = Some(addr);
            st.servers.push(s);
            tracing::info!(
                %addr,
                peer = %PublicKey(peer),
                "the peer is on another hub; registering there to relay to it"
            );
            // The data plane learns the hub's address; STUN tells what that hub sees of
            // us, which a registration is bound to.
            st.daemon
                .dp
                .udp()
                .relay
                .set(st.servers.iter().map(|s| s.hub_key.and(s.addr)).collect());
            st.stun.add_server(addr, now);
            st.servers.len() - 1
        }
    };
    let s = &mut st.servers[i];
    s.idle_since = None;
    if !s.relay_for.contains(&peer) {
        s.relay_for.push(peer);
    }
    match s.client.as_mut() {
        Some(c) if c.state() == HubState::Connected => c.relay_open(&peer),
        Some(_) => {}
        None => make_clients(st, now),
    }
}

/// Hub `index` registered us: open the channels we came for.
pub(super) fn registered(st: &mut NatState, index: usize) {
    let Some(s) = st.servers.get_mut(index).filter(|s| s.on_demand) else {
        return;
    };
    let Some(c) = s.client.as_mut() else { return };
    for p in &s.relay_for {
        if st.paths.needs_relay(p) {
            c.relay_open(p);
        }
    }
}

/// A signaling round for `peer`: ask again on the on-demand hub it is on, if any.
pub(super) fn signal_due(st: &mut NatState, peer: &[u8; 32]) {
    for s in st.servers.iter_mut().filter(|s| s.on_demand) {
        if s.relay_for.contains(peer) {
            if let Some(c) = s
                .client
                .as_mut()
                .filter(|c| c.state() == HubState::Connected)
            {
                c.relay_open(peer);
            }
        }
    }
}

/// Leaves on-demand hubs that carried no channel of ours for [`IDLE_CLOSE`].
pub(super) fn close_idle(st: &mut NatState, now: Instant) {
    for (i, s) in st.servers.iter_mut().enumerate() {
        if !s.on_demand || s.client.is_none() {
            continue;
        }
        if st.paths.relays_on(i as u16) {
            s.idle_since = None;
            continue;
        }
        let since = *s.idle_since.get_or_insert(now);
        if now >= since + IDLE_CLOSE {
            tracing::info!(hub = %s.label, "no relay through this hub for {IDLE_CLOSE:?}; leaving it");
            s.client = None;
            s.relay_for.clear();
            s.idle_since = None;
            s.close_tcp();
        }
    }
}
