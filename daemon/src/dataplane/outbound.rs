//! TUN → allowed-IPs lookup → seal → UDP.

use crate::dataplane::counters::reason;
use crate::dataplane::router::ip_addresses;
use crate::dataplane::DataPlane;
use protocol::noise::messages::{TRANSPORT_HEADER_LEN, TRANSPORT_OVERHEAD};
use protocol::noise::peer::Encapsulated;
use std::sync::Arc;
use std::time::Instant;

/// Largest inner packet read from the TUN (without offloads).
pub const MAX_INNER: usize = 65535;

/// Reads packets from the TUN until the task is cancelled or the device fails.
pub async fn run(dp: Arc<DataPlane>) {
    // One buffer, reused for every packet: the inner packet is read after room for the
    // transport header and sealed in place.
    let mut buf = vec![0u8; TRANSPORT_HEADER_LEN + MAX_INNER + 16 + TRANSPORT_OVERHEAD];
    loop {
        let n = match dp
            .tun
            .recv(&mut buf[TRANSPORT_HEADER_LEN..TRANSPORT_HEADER_LEN + MAX_INNER])
            .await
        {
            Ok(n) => n,
            Err(e) => {
                tracing::error!(error = %e, "TUN read failed; outbound path stops");
                return;
            }
        };
        handle_packet(&dp, &mut buf, n, Instant::now()).await;
    }
}

async fn handle_packet(dp: &DataPlane, buf: &mut [u8], n: usize, now: Instant) {
    let Some((_, dst)) = ip_addresses(&buf[TRANSPORT_HEADER_LEN..TRANSPORT_HEADER_LEN + n]) else {
        dp.drops.inc(reason::BAD_TUN_PACKET);
        return;
    };
    let Some(peer) = dp.router.by_ip(dst) else {
        dp.drops.inc(reason::NO_ROUTE);
        return;
    };
    let r = peer.with_peer(&dp.udp(), |p| p.encapsulate_in_place(buf, n, now));
    match r {
        Ok(Encapsulated::Sealed { len, dst }) => {
            if !dp.udp().send_best_effort(&buf[..len], dst) {
                // Socket buffer full: wait for room rather than drop (TCP above will pace).
                if dp.udp().send(&buf[..len], dst).await.is_err() {
                    dp.drops.inc(reason::SEND_FAILED);
                }
            }
        }
        Ok(Encapsulated::Queued) => {}
        Err(e) => {
            tracing::debug!(error = %e, "seal failed");
            dp.drops.inc(reason::SEND_FAILED);
        }
    }
}
