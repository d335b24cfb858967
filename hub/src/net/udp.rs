//! One UDP socket: each datagram goes through the hub, replies go out at once.

use std::sync::Arc;

use protocol::hub::relay::MAX_RELAY_FRAME;
use protocol::nat::demux::RELAY_MAGIC;
use tokio::net::UdpSocket;

use super::Shared;
use crate::engine::{Origin, Transport};

/// Receive buffer: one byte more than the largest relay frame (the largest datagram the hub
/// takes), so an oversized datagram is seen as such (and refused by length) rather than
/// silently truncated to a valid one.
const RECV_BUF: usize = MAX_RELAY_FRAME + 1;

pub(super) async fn serve(shared: Arc<Shared>, index: usize, sock: Arc<UdpSocket>) {
    let mut buf = [0u8; RECV_BUF];
    loop {
        let (n, from) = match sock.recv_from(&mut buf).await {
            Ok(r) => r,
            Err(e) => {
                // ICMP errors surface here on Linux (ECONNREFUSED); they are not fatal.
                tracing::debug!(error = %e, "udp receive error");
                continue;
            }
        };
        let origin = Origin {
            transport: Transport::Udp(index),
            addr: from,
        };
        // Relay frames are data: forwarded without the hub's lock.
        if n >= RELAY_MAGIC.len() && buf[..RELAY_MAGIC.len()] == RELAY_MAGIC {
            shared.relay(origin, &buf[..n]).await;
            continue;
        }
        let out = shared.handle(origin, &buf[..n]);
        shared.dispatch(out).await;
    }
}
