//! UDP → type/length check → keypair by receiver index → open → allowed-IPs source check → TUN.
//! Handshake messages are mac1-checked here and handed to the handshake worker.

use crate::dataplane::router::ip_addresses;
use crate::dataplane::udp::normalize;
use crate::dataplane::DataPlane;
use protocol::noise::device::DropReason;
use protocol::noise::messages::{Message, TRANSPORT_HEADER_LEN};
use protocol::noise::peer::Decapsulated;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;
use tokio::net::UdpSocket;

/// Largest datagram accepted.
const MAX_DATAGRAM: usize = 65535;

/// Which socket a receive loop serves.
#[derive(Debug, Clone, Copy)]
pub enum Family {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

/// Receives datagrams on one socket of `sockets` until cancelled.
pub async fn run(
    dp: Arc<DataPlane>,
    sockets: Arc<crate::dataplane::udp::UdpSockets>,
    family: Family,
) {
    let sock: &UdpSocket = match match family {
        Family::V4 => sockets.v4.as_ref(),
        Family::V6 => sockets.v6.as_ref(),
    } {
        Some(s) => s,
        None => return,
    };
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let (n, src) = match sock.recv_from(&mut buf).await {
            Ok(x) => x,
            Err(e) => {
                // ICMP errors surface here (ECONNREFUSED etc.); they are not fatal.
                tracing::trace!(error = %e, "UDP receive error");
                continue;
            }
        };
        handle_datagram(&dp, &mut buf[..n], normalize(src), Instant::now()).await;
    }
}

/// Handles one datagram from `src`.
pub async fn handle_datagram(dp: &DataPlane, buf: &mut [u8], src: SocketAddr, now: Instant) {
    let msg = match Message::parse(buf) {
        Ok(m) => m,
        Err(e) => return dp.drops.inc(DropReason::Malformed(e).name()),
    };
    match msg {
        Message::Transport(t) => {
            let Some(peer) = dp.router.by_index(t.receiver()) else {
                return dp.drops.inc(DropReason::UnknownIndex.name());
            };
            let r = peer.with_peer(&dp.udp(), |p| p.decapsulate_in_place(buf, src, now));
            match r {
                Ok(Decapsulated::Data { len }) => {
                    let inner = &buf[TRANSPORT_HEADER_LEN..TRANSPORT_HEADER_LEN + len];
                    // Cryptokey routing: the inner source must belong to the sending peer.
                    let allowed = ip_addresses(inner)
                        .and_then(|(s, _)| dp.router.by_ip(s))
                        .is_some_and(|owner| Arc::ptr_eq(&owner, &peer));
                    if !allowed {
                        return dp.drops.inc(DropReason::AllowedIps.name());
                    }
                    if let Err(e) = dp.tun.send(inner).await {
                        tracing::debug!(error = %e, "TUN write failed");
                        dp.drops
                            .inc(crate::dataplane::counters::reason::TUN_WRITE_FAILED);
                    }
                }
                Ok(Decapsulated::Keepalive) => {}
                Err(e) => dp.drops.inc(DropReason::Data(e).name()),
            }
        }
        Message::Initiation(_) | Message::Response(_) => {
            let identity = dp.identity.read().clone();
            if !identity.is_set() {
                // No private key yet (a UAPI-configured device before `set private_key`).
                return dp.drops.inc(
                    DropReason::Handshake(protocol::noise::handshake::HandshakeError::NoPrivateKey)
                        .name(),
                );
            }
            if !dp.handshakes.checker_verify_mac1(&identity, buf) {
                return dp.drops.inc(DropReason::BadMac1.name());
            }
            dp.handshakes.submit(dp, buf, src, now);
        }
        Message::CookieReply(_) => dp.handshakes.submit(dp, buf, src, now),
    }
}
