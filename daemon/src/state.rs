//! The daemon's shared state as the control plane sees it: [`Daemon`]'s views for `show`.

use crate::dataplane::relay;
use crate::vocab::Daemon;
use protocol::noise::peer::PeerState;
use protocol::rpc::{InterfaceInfo, PeerInfo, ShowResult};

/// The `state` string of a peer and the reason when it is offline.
pub fn state_name(s: PeerState) -> (&'static str, Option<String>) {
    match s {
        PeerState::Online => ("online", None),
        PeerState::Handshaking => ("handshaking", None),
        PeerState::Offline(r) => ("offline", Some(r.to_string())),
    }
}

impl Daemon {
    /// One peer's configuration joined with its live state.
    pub fn peer_info(&self, pc: &crate::config::PeerConfig) -> PeerInfo {
        let mut info = PeerInfo {
            name: pc.name.clone(),
            public_key: pc.public_key.to_base64(),
            endpoint: pc.endpoint.as_ref().map(|e| e.to_string()),
            endpoint_unresolved: None,
            allowed_ips: pc.allowed_ips.iter().map(|a| a.to_string()).collect(),
            state: "offline".into(),
            state_reason: Some("not running".into()),
            last_handshake: None,
            handshakes: 0,
            rx_bytes: 0,
            tx_bytes: 0,
            persistent_keepalive: pc.persistent_keepalive.filter(|k| *k > 0),
            path: "none".into(),
            path_endpoint: None,
            why_not_direct: None,
            relay: None,
            relay_transport: None,
            why_relayed: None,
            next_direct_attempt: None,
        };
        if self.failed.read().contains(&pc.public_key) {
            info.state = "failed".into();
            info.state_reason = Some("restarted too often".into());
            return info;
        }
        if let Some(h) = self.dp.router.by_key(&pc.public_key) {
            let cell = h.cell.lock();
            let p = &cell.peer;
            let stats = p.stats();
            let (state, reason) = state_name(p.state());
            info.state = state.into();
            info.state_reason = reason;
            // A relay stand-in is shown as the hub it goes through.
            info.endpoint = p.endpoint().map(|e| match relay::parse_stand_in(&e) {
                Some((hub, _)) => self.dp.udp().relay.addr(hub).unwrap_or(e).to_string(),
                None => e.to_string(),
            });
            if h.unresolved.load(std::sync::atomic::Ordering::Relaxed) {
                info.endpoint_unresolved = pc.endpoint.as_ref().map(|e| e.to_string());
            }
            info.last_handshake = p.last_handshake_unix().map(|d| d.as_secs());
            info.handshakes = stats.handshakes;
            info.rx_bytes = stats.rx_bytes;
            info.tx_bytes = stats.tx_bytes;
        }
        self.fill_path(&mut info, &pc.public_key);
        info
    }

    /// The peer's path: what the NAT actor found, or else `direct` to the endpoint in use.
    fn fill_path(&self, info: &mut PeerInfo, key: &protocol::keys::PublicKey) {
        if let Some(p) = self.paths.read().get(key) {
            info.path = p.kind.into();
            info.path_endpoint = p.endpoint.map(|e| e.to_string());
            info.why_not_direct = p.why_not_direct.map(str::to_string);
            if p.kind == "relay" {
                info.relay = info.path_endpoint.clone();
                info.relay_transport = p.relay_transport.map(str::to_string);
                info.why_relayed = info.why_not_direct.clone();
                info.next_direct_attempt = p.next_direct_attempt.map(|t| {
                    let s = t.saturating_duration_since(std::time::Instant::now());
                    (s.as_secs_f64() * 10.0).round() / 10.0
                });
            }
            return;
        }
        match &info.endpoint {
            Some(e) => {
                info.path = "direct".into();
                info.path_endpoint = Some(e.clone());
            }
            None => {
                info.path = "none".into();
                info.why_not_direct = Some("no_candidates".into());
            }
        }
    }

    /// [`Daemon::show`], with the interface's MTU and addresses read from the kernel when
    /// someone else sets them (configuration-less mode: `wg-quick` runs `ip`). Should the read
    /// fail, the configured values stay.
    pub async fn show_live(&self) -> ShowResult {
        let mut show = self.show();
        if let Some(link) = &self.kernel_link {
            match link.read().await {
                Ok(state) => {
                    show.interface.mtu = state.mtu;
                    show.interface.addresses = state
                        .addresses
                        .iter()
                        .map(|(ip, len)| format!("{ip}/{len}"))
                        .collect();
                }
                Err(e) => {
                    tracing::debug!(error = %e, "reading the interface from the kernel failed")
                }
            }
        }
        show
    }

    /// The `show` result: configuration joined with live peer state.
    pub fn show(&self) -> ShowResult {
        let cfg = self.config.read();
        let identity = self.dp.identity.read().clone();
        let interface = InterfaceInfo {
            name: cfg.interface.name.clone(),
            // No private key yet (UAPI-configured device): no public key either.
            public_key: if identity.is_set() {
                identity.public_key().to_base64()
            } else {
                String::new()
            },
            listen_port: self.dp.udp().port(),
            addresses: cfg
                .interface
                .addresses
                .iter()
                .map(|a| a.to_string())
                .collect(),
            mtu: cfg.interface.mtu,
            drops: self.dp.drops.snapshot(),
            dataplane_restarts: self.dp.restarts.snapshot(),
            nat: self.nat.read().clone(),
        };
        let peers = cfg.peers.iter().map(|pc| self.peer_info(pc)).collect();
        ShowResult { interface, peers }
    }
}
