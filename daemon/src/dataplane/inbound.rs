//! UDP → type/length check → keypair by receiver index → open → allowed-IPs source check → TUN,
//! a batch at a time. Handshake messages are mac1-checked here and handed to the handshake
//! worker.
//!
//! One `recvmmsg` call fills up to [`RECV_MSGS`] buffers; with UDP GRO each may hold many
//! datagrams of one sender. Transport messages are opened in place with the keypair found by
//! their receiver index (looked up once per run of messages on the same index), their inner
//! packets copied into the TUN batch, and the batch written with `send_multiple`, which
//! coalesces TCP and UDP flows into super-packets (GRO) when the TUN has offloads. The peer's
//! bookkeeping (counters, timers, roaming) is done once per run, under its lock, never across
//! I/O; nothing is allocated per packet.

use crate::dataplane::batch_udp::{Received, RECV_BUF, RECV_MSGS};
use crate::dataplane::counters::Reason;
use crate::dataplane::nat_inbox::NotQueued;
use crate::dataplane::peer_handle::PeerHandle;
use crate::dataplane::region::Region;
use crate::dataplane::router::ip_addresses;
use crate::dataplane::udp::normalize;
use crate::dataplane::{BatchContext, DataPlane};
use protocol::nat::demux::{self, Kind, RELAY_MAGIC};
use protocol::noise::device::DropReason;
use protocol::noise::keypair::{inner_packet_len, Keypair};
use protocol::noise::messages::{Message, TRANSPORT_HEADER_LEN, TRANSPORT_OVERHEAD};
use protocol::noise::peer::DataError;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;
use tokio::net::UdpSocket;

/// Message type of transport data.
const TRANSPORT_TYPE: u32 = 4;
/// Where an inner packet starts in a TUN buffer: room for the virtio header in front.
pub const TUN_OFFSET: usize = 16;
/// Inner packets per TUN write batch.
pub const TUN_BATCH: usize = 128;
/// Capacity of one TUN buffer: GRO appends the payload of later packets of a flow to the first
/// one, up to a 64 KiB super-packet (tun-rs wants room for the offset twice).
pub const TUN_BUF_CAP: usize = 2 * TUN_OFFSET + 65_535;

/// Upper bound on the memory of one receive path ([`RxBatch`]).
pub const RX_BATCH_BYTES: usize = RECV_MSGS * RECV_BUF + TUN_BATCH * TUN_BUF_CAP;
const _: () = assert!(RX_BATCH_BYTES <= 12 << 20);

/// Which socket a receive loop serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

/// Where the receive path writes decrypted packets: the TUN device, or a stub in tests and
/// the fuzz target (`daemon/fuzz/harness/dataplane_receive.rs`).
pub trait TunWrite: Send + Sync {
    /// Writes `bufs` (each an inner packet at `offset`), coalescing with `gro` if the device
    /// has offloads.
    fn write_batch(
        &self,
        gro: &mut tun_rs::GROTable,
        bufs: &mut [Vec<u8>],
        offset: usize,
    ) -> impl std::future::Future<Output = io::Result<usize>> + Send;
}

impl TunWrite for tun_rs::AsyncDevice {
    async fn write_batch(
        &self,
        gro: &mut tun_rs::GROTable,
        bufs: &mut [Vec<u8>],
        offset: usize,
    ) -> io::Result<usize> {
        self.send_multiple(gro, bufs, offset).await
    }
}

/// Decrypted packets waiting to be written to the TUN.
pub struct TunBatch {
    bufs: Vec<Vec<u8>>,
    n: usize,
    gro: tun_rs::GROTable,
}

impl std::fmt::Debug for TunBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TunBatch")
            .field("n", &self.n)
            .finish_non_exhaustive()
    }
}

impl Default for TunBatch {
    fn default() -> Self {
        TunBatch {
            bufs: (0..TUN_BATCH)
                .map(|_| Vec::with_capacity(TUN_BUF_CAP))
                .collect(),
            n: 0,
            gro: tun_rs::GROTable::new(),
        }
    }
}

impl TunBatch {
    /// Packets waiting.
    pub fn len(&self) -> usize {
        self.n
    }

    /// Whether no packet waits.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Whether another packet fits.
    pub fn is_full(&self) -> bool {
        self.n == TUN_BATCH
    }

    /// Appends an inner packet (the caller checks [`TunBatch::is_full`] first).
    pub fn push(&mut self, packet: &[u8]) {
        let b = &mut self.bufs[self.n];
        b.clear();
        b.resize(TUN_OFFSET, 0);
        b.extend_from_slice(packet);
        self.n += 1;
    }

    /// Inner packet `i`.
    pub fn packet(&self, i: usize) -> &[u8] {
        &self.bufs[i][TUN_OFFSET..]
    }

    /// Coalesces the waiting packets as the TUN would (GRO), without writing them: the
    /// buffers that would be written, for tests and benches.
    pub fn coalesce(&mut self, udp_gro: bool) -> io::Result<usize> {
        let n = self.n;
        self.gro
            .apply_gro(&mut self.bufs[..n], TUN_OFFSET, udp_gro)?;
        self.n = 0;
        Ok(n)
    }

    /// Drops every waiting packet.
    pub fn clear(&mut self) {
        self.n = 0;
    }

    /// Writes every waiting packet to the TUN and empties the batch.
    pub async fn flush<T: TunWrite>(&mut self, dp: &DataPlane<T>) {
        if self.n == 0 {
            return;
        }
        let n = self.n;
        self.n = 0;
        if let Err(e) = dp
            .tun
            .write_batch(&mut self.gro, &mut self.bufs[..n], TUN_OFFSET)
            .await
        {
            tracing::debug!(error = %e, "TUN write failed");
            dp.drops.inc(Reason::TunWriteFailed);
        }
    }
}

/// The receive path's buffers: one `recvmmsg` worth of datagrams and a TUN batch.
pub struct RxBatch {
    region: Region,
    meta: [Received; RECV_MSGS],
    /// Decrypted packets for the TUN.
    pub tun: TunBatch,
}

impl std::fmt::Debug for RxBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RxBatch").finish_non_exhaustive()
    }
}

impl RxBatch {
    /// Buffers for one receive path.
    pub fn new() -> io::Result<Self> {
        Ok(RxBatch {
            region: Region::new(RECV_MSGS * RECV_BUF)?,
            meta: [Received::default(); RECV_MSGS],
            tun: TunBatch::default(),
        })
    }

    /// Puts `datagram` into receive slot `k` (`k < RECV_MSGS`) as if it had arrived from
    /// `src` in GRO segments of `segment` bytes, for driving [`handle_batch`] without a socket
    /// (tests, fuzzing). At most [`RECV_BUF`] bytes are kept.
    pub fn load(&mut self, k: usize, datagram: &[u8], segment: usize, src: Option<SocketAddr>) {
        let len = datagram.len().min(RECV_BUF);
        self.region[k * RECV_BUF..k * RECV_BUF + len].copy_from_slice(&datagram[..len]);
        self.meta[k] = Received {
            len,
            segment: segment.clamp(1, RECV_BUF),
            src,
        };
    }
}

/// Receives datagrams on one socket of `sockets` until cancelled (it returns only when it
/// cannot run at all; its supervisor treats that as a failure).
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
    let mut rx = match RxBatch::new() {
        Ok(rx) => rx,
        Err(e) => {
            tracing::error!(error = %e, "cannot allocate receive buffers; receive path stops");
            return;
        }
    };
    loop {
        let n = match recv(sock, &mut rx).await {
            Ok(n) => n,
            Err(e) => {
                // ICMP errors surface here (ECONNREFUSED etc.); they are not fatal.
                tracing::trace!(error = %e, "UDP receive error");
                continue;
            }
        };
        #[cfg(feature = "fault-injection")]
        dp.faults.trip(match family {
            Family::V4 => crate::dataplane::tasks::Task::ReceiveV4,
            Family::V6 => crate::dataplane::tasks::Task::ReceiveV6,
        });
        handle_batch(&dp, &mut rx, n, Instant::now()).await;
    }
}

#[cfg(target_os = "linux")]
async fn recv(sock: &UdpSocket, rx: &mut RxBatch) -> io::Result<usize> {
    use std::os::fd::AsRawFd;
    let fd = sock.as_raw_fd();
    loop {
        sock.readable().await?;
        match sock.try_io(tokio::io::Interest::READABLE, || {
            crate::dataplane::batch_udp::recv(fd, &mut rx.region, RECV_BUF, &mut rx.meta)
        }) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            r => return r,
        }
    }
}

#[cfg(not(target_os = "linux"))]
async fn recv(sock: &UdpSocket, rx: &mut RxBatch) -> io::Result<usize> {
    let (n, src) = sock.recv_from(&mut rx.region[..RECV_BUF]).await?;
    rx.meta[0] = Received {
        len: n,
        segment: n.max(1),
        src: Some(src),
    };
    Ok(1)
}

/// Handles the first `n` received messages of `rx` (each possibly several coalesced
/// datagrams) and writes what they carried to the TUN.
pub async fn handle_batch<T: TunWrite>(
    dp: &DataPlane<T>,
    rx: &mut RxBatch,
    n: usize,
    now: Instant,
) {
    let udp = dp.udp();
    let ctx = dp.batch_context(&udp);
    let mut open = Opener::default();
    let RxBatch { region, meta, tun } = rx;
    for (k, m) in meta.iter().enumerate().take(n) {
        let Some(src) = m.src.map(normalize) else {
            continue;
        };
        if m.len == 0 {
            dp.drops.inc(Reason::Truncated);
            continue;
        }
        let buf = &mut region[k * RECV_BUF..k * RECV_BUF + m.len];
        for datagram in buf.chunks_mut(m.segment) {
            // A relay frame from one of our hubs: the WireGuard message inside, from the
            // channel's stand-in address (super::relay).
            let (datagram, src) = match datagram.first() {
                Some(&b) if b == RELAY_MAGIC[0] => match udp.relay.unwrap(datagram, &src) {
                    Some((from, at)) => (&mut datagram[at..], from),
                    None => {
                        dp.drops.inc(Reason::RelayUnexpected);
                        continue;
                    }
                },
                _ => (datagram, src),
            };
            if is_transport(datagram) {
                if tun.is_full() {
                    tun.flush(dp).await;
                }
                open.datagram(&ctx, datagram, src, now, tun);
            } else {
                handle_datagram(dp, datagram, src, now).await;
            }
        }
    }
    open.finish(&ctx, now);
    tun.flush(dp).await;
}

fn is_transport(d: &[u8]) -> bool {
    d.len() >= TRANSPORT_OVERHEAD && u32::from_le_bytes([d[0], d[1], d[2], d[3]]) == TRANSPORT_TYPE
}

/// The session of the run of messages being opened, and what to report to its peer.
struct Run {
    index: u32,
    peer: Arc<PeerHandle>,
    keypair: Arc<Keypair>,
    wire: usize,
    data: bool,
    src: SocketAddr,
    /// Last inner source address found in this peer's allowed IPs.
    allowed: [u8; 16],
    allowed_len: usize,
}

/// Opens transport messages, remembering the session of the current run.
#[derive(Default)]
pub struct Opener {
    run: Option<Run>,
}

impl std::fmt::Debug for Opener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opener").finish_non_exhaustive()
    }
}

impl Opener {
    /// Opens one transport message from `src` in place and queues its inner packet on `tun`
    /// (which must have room). Drops are counted by reason.
    pub fn datagram(
        &mut self,
        dp: &BatchContext<'_>,
        datagram: &mut [u8],
        src: SocketAddr,
        now: Instant,
        tun: &mut TunBatch,
    ) {
        let index = u32::from_le_bytes([datagram[4], datagram[5], datagram[6], datagram[7]]);
        if self.run.as_ref().is_none_or(|r| r.index != index) {
            self.finish(dp, now);
            let Some(peer) = dp.router.by_index(index) else {
                return dp.drops.inc(DropReason::UnknownIndex);
            };
            let keypair = match peer.with_peer(dp.udp, |p| p.receiving_keypair(index, now)) {
                Ok(k) => k,
                Err(e) => return dp.drops.inc(DropReason::Data(e)),
            };
            self.run = Some(Run {
                index,
                peer,
                keypair,
                wire: 0,
                data: false,
                src,
                allowed: [0; 16],
                allowed_len: 0,
            });
        }
        let Some(run) = self.run.as_mut() else {
            return;
        };
        let wire_len = datagram.len();
        let n = match run.keypair.open_in_place(datagram) {
            Ok(n) => n,
            Err(e) => return dp.drops.inc(DropReason::Data(DataError::from(e))),
        };
        run.wire += wire_len;
        run.src = src;
        if n == 0 {
            // Keepalive.
            return;
        }
        run.data = true;
        let plain = &datagram[TRANSPORT_HEADER_LEN..TRANSPORT_HEADER_LEN + n];
        let Some(len) = inner_packet_len(plain) else {
            return dp.drops.inc(DropReason::Data(DataError::InvalidInner));
        };
        let inner = &plain[..len];
        // Cryptokey routing: the inner source must belong to the sending peer.
        let Some((source, _)) = ip_addresses(inner) else {
            return dp.drops.inc(DropReason::AllowedIps);
        };
        if run.allowed_len != source.len() || run.allowed[..source.len()] != *source {
            let owned = dp
                .router
                .by_ip(source)
                .is_some_and(|owner| Arc::ptr_eq(&owner, &run.peer));
            if !owned {
                return dp.drops.inc(DropReason::AllowedIps);
            }
            run.allowed[..source.len()].copy_from_slice(source);
            run.allowed_len = source.len();
        }
        tun.push(inner);
    }

    /// Reports the current run to its peer (counters, timers, endpoint) and forgets it.
    pub fn finish(&mut self, dp: &BatchContext<'_>, now: Instant) {
        if let Some(run) = self.run.take() {
            if run.wire > 0 {
                run.peer.with_peer(dp.udp, |p| {
                    p.note_data_received(run.index, run.wire, run.data, run.src, now)
                });
            }
        }
    }
}

/// Handles one datagram from `src` that is not transport data (or any datagram, on the slow
/// path).
pub async fn handle_datagram<T: TunWrite>(
    dp: &DataPlane<T>,
    buf: &mut [u8],
    src: SocketAddr,
    now: Instant,
) {
    // STUN, hub and probe datagrams share the socket; the NAT actor takes them.
    let kind = demux::classify(buf);
    if kind == Kind::Relay {
        // Unwrapped by the receive loop; one here is not from a hub or is nested.
        return dp.drops.inc(Reason::RelayUnexpected);
    }
    if let Kind::Stun | Kind::Hub | Kind::Probe = kind {
        if let Err(e) = dp.nat.deliver(buf, src) {
            dp.drops.inc(match e {
                NotQueued::Off => Reason::NatOff,
                NotQueued::Full => Reason::NatQueueFull,
            });
        }
        return;
    }
    let msg = match Message::parse(buf) {
        Ok(m) => m,
        Err(e) => return dp.drops.inc(DropReason::Malformed(e)),
    };
    match msg {
        Message::Transport(_) => {
            let mut open = Opener::default();
            let mut tun = TunBatch {
                bufs: vec![Vec::with_capacity(TUN_BUF_CAP)],
                n: 0,
                gro: tun_rs::GROTable::new(),
            };
            let udp = dp.udp();
            let ctx = dp.batch_context(&udp);
            open.datagram(&ctx, buf, src, now, &mut tun);
            open.finish(&ctx, now);
            tun.flush(dp).await;
        }
        Message::Initiation(_) | Message::Response(_) => {
            let identity = dp.identity.read().clone();
            if !identity.is_set() {
                // No private key yet (a UAPI-configured device before `set private_key`).
                return dp.drops.inc(Reason::NoPrivateKey);
            }
            if !dp.handshakes.checker_verify_mac1(&identity, buf) {
                return dp.drops.inc(DropReason::BadMac1);
            }
            dp.handshakes.submit(dp, buf, src, now);
        }
        Message::CookieReply(_) => dp.handshakes.submit(dp, buf, src, now),
    }
}
