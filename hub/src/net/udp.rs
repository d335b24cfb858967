//! One UDP socket: relay frames are forwarded a batch at a time (Linux: `recvmmsg` and
//! `sendmmsg`, see [`super::mmsg`]), every other datagram goes through the hub and its
//! replies go out at once.

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

/// A datagram that is not relayed: handled through the hub (STUN, registration, signaling).
async fn handle(shared: &Shared, origin: Origin, data: &[u8]) {
    let out = shared.handle(origin, data);
    shared.dispatch(out).await;
}

#[cfg(not(target_os = "linux"))]
pub(super) async fn serve(shared: Arc<Shared>, index: usize, sock: Arc<UdpSocket>) {
    let mut buf = vec![0u8; RECV_BUF];
    loop {
        let (n, from) = match sock.recv_from(&mut buf).await {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(error = %e, "udp receive error");
                continue;
            }
        };
        let origin = Origin {
            transport: Transport::Udp(index),
            addr: from,
        };
        // Relay frames are data: forwarded without the hub's lock.
        if buf[..n].starts_with(&RELAY_MAGIC) {
            shared.relay(origin, &buf[..n]).await;
        } else {
            handle(&shared, origin, &buf[..n]).await;
        }
    }
}

#[cfg(target_os = "linux")]
pub(super) async fn serve(shared: Arc<Shared>, index: usize, sock: Arc<UdpSocket>) {
    use super::mmsg::{self, RecvBatch, BATCH};
    use super::relay::Verdict;
    use std::net::SocketAddr;
    use std::os::fd::AsRawFd;
    use std::time::Instant;

    let fd = sock.as_raw_fd();
    let mut batch = RecvBatch::new(RECV_BUF);
    // Per batch: relayed frames for this socket (index into the batch, destination), the
    // others (control messages, frames for other sockets or TCP, misses).
    let mut out: Vec<(usize, SocketAddr)> = Vec::with_capacity(BATCH);
    let mut later: Vec<(usize, Later)> = Vec::with_capacity(BATCH);
    loop {
        if sock.readable().await.is_err() {
            continue;
        }
        let n = match sock.try_io(tokio::io::Interest::READABLE, || mmsg::recv(fd, &mut batch)) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) => {
                // ICMP errors surface here on Linux (ECONNREFUSED); they are not fatal.
                tracing::debug!(error = %e, "udp receive error");
                continue;
            }
        };
        out.clear();
        later.clear();
        {
            // One snapshot and one clock read per batch; let go before any await.
            let routes = shared.routes.load();
            let now = Instant::now();
            for k in 0..n {
                let Some((data, from)) = batch.datagram(k) else {
                    continue;
                };
                let origin = Origin {
                    transport: Transport::Udp(index),
                    addr: from,
                };
                if !data.starts_with(&RELAY_MAGIC) {
                    later.push((k, Later::Handle(origin)));
                    continue;
                }
                match shared.route(&routes, &origin, data, now) {
                    Verdict::Forward(to) if to.transport == Transport::Udp(index) => {
                        out.push((k, to.addr))
                    }
                    Verdict::Forward(to) => later.push((k, Later::Send(to))),
                    Verdict::Miss => later.push((k, Later::Miss(origin))),
                    Verdict::Dropped => {}
                }
            }
        }
        if !out.is_empty() {
            let (sent, bytes) = send_all(&sock, fd, &batch, &out).await;
            shared.relayed(sent as u64, bytes);
            shared.relay_send_failed((out.len() - sent) as u64);
        }
        for &(k, ref what) in &later {
            let Some((data, _)) = batch.datagram(k) else {
                continue;
            };
            match *what {
                Later::Handle(origin) => handle(&shared, origin, data).await,
                Later::Send(to) => shared.send_one(to, data).await,
                Later::Miss(origin) => shared.relay_miss(origin).await,
            }
        }
    }
}

/// What a datagram of a batch needs after the batch's relayed frames are out.
#[cfg(target_os = "linux")]
enum Later {
    /// A hub message or STUN request.
    Handle(Origin),
    /// A relay frame for another socket or a TCP connection.
    Send(Origin),
    /// A relay frame no channel took.
    Miss(Origin),
}

/// Sends every frame of `list`, waiting while the socket buffer is full; returns how many went
/// out and their bytes (the others failed: the socket refused them).
#[cfg(target_os = "linux")]
async fn send_all(
    sock: &UdpSocket,
    fd: std::os::fd::RawFd,
    batch: &super::mmsg::RecvBatch,
    list: &[(usize, std::net::SocketAddr)],
) -> (usize, u64) {
    let frame = |&(k, to): &(usize, std::net::SocketAddr)| {
        batch
            .datagram(k)
            .map(|(d, _)| (d, to))
            .unwrap_or((&[][..], to))
    };
    let (mut next, mut sent, mut bytes) = (0, 0, 0u64);
    while next < list.len() {
        match sock.try_io(tokio::io::Interest::WRITABLE, || {
            super::mmsg::send(fd, list[next..].iter().map(frame))
        }) {
            Ok(n) => {
                bytes += list[next..next + n]
                    .iter()
                    .map(|x| frame(x).0.len() as u64)
                    .sum::<u64>();
                next += n;
                sent += n;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if sock.writable().await.is_err() {
                    break;
                }
            }
            Err(e) => {
                // One bad destination (unreachable, EPERM from a firewall) fails the call at
                // its frame: skip that frame, send the rest.
                tracing::debug!(error = %e, "relay send failed");
                next += 1;
            }
        }
    }
    (sent, bytes)
}
