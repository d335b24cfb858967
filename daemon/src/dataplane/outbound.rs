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

/// Why the outbound loop ended (it runs until cancelled otherwise).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutboundEnd {
    /// The interface was deleted from outside (`ip link del`, as `wg-quick down` does): the
    /// daemon has nothing left to do and should stop cleanly.
    LinkGone,
    /// Reading the TUN failed for another reason.
    Failed(String),
}

/// Reads packets from the TUN until the task is cancelled or the device fails; says why it
/// stopped.
pub async fn run(dp: Arc<DataPlane>) -> OutboundEnd {
    // One buffer, reused for every packet: the inner packet is read after room for the
    // transport header and sealed in place.
    let mut buf = vec![0u8; TRANSPORT_HEADER_LEN + MAX_INNER + 16 + TRANSPORT_OVERHEAD];
    let mut transient = 0u32;
    loop {
        let n = match dp
            .tun
            .recv(&mut buf[TRANSPORT_HEADER_LEN..TRANSPORT_HEADER_LEN + MAX_INNER])
            .await
        {
            Ok(n) => {
                transient = 0;
                n
            }
            Err(e) => {
                if link_gone(&dp, &e) {
                    tracing::info!("the interface was deleted; outbound path stops");
                    return OutboundEnd::LinkGone;
                }
                // A few transient errors (ENOBUFS, EINTR) are survivable; a device that keeps
                // failing is not.
                transient += 1;
                if transient > 100 {
                    tracing::error!(error = %e, "TUN read keeps failing; outbound path stops");
                    return OutboundEnd::Failed(e.to_string());
                }
                tracing::warn!(error = %e, "TUN read failed");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        handle_packet(&dp, &mut buf, n, Instant::now()).await;
    }
}

/// Whether a TUN read error means the interface no longer exists: the kernel answers reads on
/// a detached TUN descriptor with EBADFD, and the device's index no longer resolves.
fn link_gone(dp: &DataPlane, e: &std::io::Error) -> bool {
    if e.raw_os_error() == Some(libc::EBADFD) {
        return true;
    }
    match dp.tun.if_index() {
        // SAFETY: if_indextoname writes at most IF_NAMESIZE bytes into the buffer we pass.
        Ok(index) => unsafe {
            let mut name = [0 as libc::c_char; libc::IF_NAMESIZE];
            libc::if_indextoname(index, name.as_mut_ptr()).is_null()
        },
        Err(_) => true,
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
