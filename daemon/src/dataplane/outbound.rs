//! TUN → allowed-IPs lookup → seal → UDP, a batch at a time.
//!
//! One pass of the loop reads as many packets as the TUN has ready (with offloads a single
//! read yields a TSO/USO super-packet already split into MTU-sized packets), finds each
//! packet's peer, reserves that run of packets' nonces in one step, seals them in place in
//! their pooled slots and hands the whole batch to the UDP socket in one `sendmmsg` call with
//! GSO. Per batch, each peer's lock is taken twice (keypair before, bookkeeping after), never
//! across I/O; nothing is allocated.

use super::relay;
use crate::dataplane::batch_udp::Outgoing;
use crate::dataplane::counters::Reason;
use crate::dataplane::peer_handle::PeerHandle;
use crate::dataplane::region::Region;
use crate::dataplane::router::{ip_addresses, is_link_scoped_v6};
use crate::dataplane::udp::{normalize, UdpSockets};
use crate::dataplane::{BatchContext, DataPlane};
use protocol::hub::relay::MAX_RELAY_FRAME;
use protocol::noise::keypair::{Keypair, ReservedCounter};
use protocol::noise::messages::{TRANSPORT_HEADER_LEN, TRANSPORT_OVERHEAD};
use protocol::noise::peer::Encapsulated;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::time::Instant;

/// Largest inner packet read from the TUN (without offloads).
pub const MAX_INNER: usize = 65535;

/// Packet slots in one outbound batch.
pub const TX_SLOTS: usize = 192;
/// A TUN read is only started with at least this many free slots: one read of a TSO
/// super-packet can yield that many packets (tun-rs's `IDEAL_BATCH_SIZE`).
pub const READ_MIN_FREE: usize = 128;
/// Runs shorter than this are sealed on the calling thread even with crypto workers: handing
/// work to another thread costs more than sealing a few packets.
pub const PARALLEL_MIN: usize = 16;
/// Room after the inner packet of a slot: padding (at most 15 bytes) and the AEAD tag.
const SLOT_TAIL: usize = 16 + TRANSPORT_OVERHEAD;

/// Bytes of one slot: the transport header, the largest inner packet, padding and tag, rounded
/// to a cache line. Only the pages a packet touches become resident (see [`Region`]).
pub const SLOT_LEN: usize = (TRANSPORT_HEADER_LEN + MAX_INNER + SLOT_TAIL + 63) & !63;

/// Upper bound on the memory of one [`TxBatch`] (address space; resident memory is what the
/// packets touch: about two pages per slot at the usual MTU).
pub const TX_BATCH_BYTES: usize = TX_SLOTS * SLOT_LEN + tun_rs::VIRTIO_NET_HDR_LEN + MAX_INNER;
const _: () = assert!(TX_BATCH_BYTES <= 16 << 20);

/// Why the outbound loop ended (it runs until cancelled otherwise).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutboundEnd {
    /// The interface was deleted from outside (`ip link del`, as `wg-quick down` does): the
    /// daemon has nothing left to do and should stop cleanly.
    LinkGone,
    /// Reading the TUN failed for another reason.
    Failed(String),
}

/// One batch of outbound packets in fixed slots: each slot holds an inner packet after room
/// for the transport header, and after sealing the whole transport message.
pub struct TxBatch {
    slot: usize,
    region: Region,
    /// Inner packet lengths as read.
    len: [usize; TX_SLOTS],
    /// Sealed message lengths; 0 = nothing to send for this slot.
    wire: [usize; TX_SLOTS],
    /// Destination of each sealed message.
    dst: [SocketAddr; TX_SLOTS],
    /// A second destination (the relay while the direct path is in doubt), if any.
    also: [Option<SocketAddr>; TX_SLOTS],
    count: usize,
    /// Relay frames built from the sealed messages of peers on a hub's relay, in slots of
    /// `MAX_RELAY_FRAME`, sent with the batch's own system calls (see [`send_relayed`]).
    relay: RelayFrames,
    /// A raw TUN read with offloads: virtio header plus super-packet.
    tun_buf: Vec<u8>,
}

impl std::fmt::Debug for TxBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TxBatch")
            .field("count", &self.count)
            .finish_non_exhaustive()
    }
}

const UNSPECIFIED: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0));

impl TxBatch {
    /// An empty batch.
    pub fn new() -> io::Result<Box<Self>> {
        let slot = SLOT_LEN;
        Ok(Box::new(TxBatch {
            slot,
            region: Region::new(TX_SLOTS * slot)?,
            len: [0; TX_SLOTS],
            wire: [0; TX_SLOTS],
            dst: [UNSPECIFIED; TX_SLOTS],
            also: [None; TX_SLOTS],
            count: 0,
            relay: RelayFrames::new()?,
            tun_buf: vec![0; tun_rs::VIRTIO_NET_HDR_LEN + MAX_INNER],
        }))
    }

    /// Packets in the batch.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether the batch holds no packet.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Empties the batch.
    pub fn clear(&mut self) {
        self.count = 0;
    }

    /// Appends an inner packet (for tests and benches; the data plane reads the TUN straight
    /// into the slots). Returns false when the batch is full or the packet too big.
    pub fn push(&mut self, packet: &[u8]) -> bool {
        if self.count == TX_SLOTS || packet.len() > MAX_INNER {
            return false;
        }
        let at = self.count * self.slot + TRANSPORT_HEADER_LEN;
        self.region[at..at + packet.len()].copy_from_slice(packet);
        self.len[self.count] = packet.len();
        self.wire[self.count] = 0;
        self.count += 1;
        true
    }

    /// The sealed message of slot `i`, if it is to be sent.
    pub fn sealed(&self, i: usize) -> Option<(&[u8], SocketAddr)> {
        if i >= self.count || self.wire[i] == 0 {
            return None;
        }
        let at = i * self.slot;
        Some((&self.region[at..at + self.wire[i]], self.dst[i]))
    }

    fn inner(&self, i: usize) -> &[u8] {
        let at = i * self.slot + TRANSPORT_HEADER_LEN;
        &self.region[at..at + self.len[i]]
    }

    /// Reads what the TUN has into free slots: waits for the first packet, then takes what is
    /// ready without waiting while a whole read still fits.
    async fn fill(&mut self, tun: &tun_rs::AsyncDevice) -> io::Result<()> {
        self.count = 0;
        let n = self.read(tun, true).await?;
        self.count += n;
        while TX_SLOTS - self.count >= READ_MIN_FREE {
            match self.read(tun, false).await {
                Ok(n) => self.count += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.raw_os_error().is_some() => {
                    if self.count == 0 {
                        return Err(e);
                    }
                    break;
                }
                // A malformed super-packet: dropped, the rest of the batch goes on.
                Err(e) => {
                    tracing::debug!(error = %e, "TUN packet dropped");
                    break;
                }
            }
        }
        Ok(())
    }

    async fn read(&mut self, tun: &tun_rs::AsyncDevice, wait: bool) -> io::Result<usize> {
        let first = self.count;
        let slot = self.slot;
        // Every free slot: the caller guarantees at least READ_MIN_FREE.
        let end = TX_SLOTS;
        let room = slot - SLOT_TAIL;
        let region = &mut self.region[first * slot..end * slot];
        let mut bufs: [&mut [u8]; TX_SLOTS] = {
            let mut chunks = region.chunks_exact_mut(slot);
            std::array::from_fn(|_| match chunks.next() {
                Some(c) => &mut c[..room],
                None => &mut [],
            })
        };
        let n = end - first;
        let sizes = &mut self.len[first..end];
        let bufs = &mut bufs[..n];
        let got = if wait {
            tun.recv_multiple(&mut self.tun_buf, bufs, sizes, TRANSPORT_HEADER_LEN)
                .await?
        } else {
            tun.try_recv_multiple(&mut self.tun_buf, bufs, sizes, TRANSPORT_HEADER_LEN)?
        };
        for w in &mut self.wire[first..first + got] {
            *w = 0;
        }
        Ok(got)
    }
}

/// The datagrams of a batch for one socket family.
struct Family<'a> {
    batch: &'a TxBatch,
    v4: bool,
}

impl Outgoing for Family<'_> {
    fn count(&self) -> usize {
        self.batch.count
    }
    fn datagram(&self, i: usize) -> Option<(&[u8], SocketAddr)> {
        // Relay stand-ins (IPv6 by form) are sent apart, through their hub.
        self.batch.sealed(i).filter(|(_, dst)| {
            dst.is_ipv4() == self.v4 && (self.v4 || relay::parse_stand_in(dst).is_none())
        })
    }
}

/// Reads packets from the TUN until the task is cancelled or the device fails; says why it
/// stopped.
pub async fn run(dp: Arc<DataPlane>) -> OutboundEnd {
    let mut batch = match TxBatch::new() {
        Ok(b) => b,
        Err(e) => return OutboundEnd::Failed(format!("allocating packet buffers: {e}")),
    };
    let mut transient = 0u32;
    loop {
        match batch.fill(&dp.tun).await {
            Ok(()) => transient = 0,
            Err(e) if e.raw_os_error().is_none() => {
                // One malformed packet from the kernel; nothing wrong with the device.
                tracing::debug!(error = %e, "TUN packet dropped");
                dp.drops.inc(Reason::BadTunPacket);
                continue;
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
        }
        #[cfg(feature = "fault-injection")]
        dp.faults.trip(crate::dataplane::tasks::Task::Send);
        let udp = dp.udp();
        seal_batch(&dp.batch_context(&udp), &mut batch, Instant::now());
        send_batch(&dp, &udp, &mut batch).await;
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

/// A one-entry cache of the last destination looked up.
#[derive(Default)]
struct RouteCache {
    key: [u8; 16],
    key_len: usize,
    peer: Option<Arc<PeerHandle>>,
}

impl RouteCache {
    fn lookup(&mut self, dp: &BatchContext<'_>, packet: &[u8]) -> Option<Arc<PeerHandle>> {
        let (_, dst) = ip_addresses(packet)?;
        if self.key_len == dst.len() && self.key[..dst.len()] == *dst {
            return self.peer.clone();
        }
        self.key[..dst.len()].copy_from_slice(dst);
        self.key_len = dst.len();
        self.peer = dp.router.by_ip(dst);
        self.peer.clone()
    }
}

/// Seals every packet of `batch` for its peer. Packets without a route or a valid header are
/// dropped (and counted); packets of a peer without a session are queued on the peer, which
/// starts a handshake. Afterwards each slot either holds a transport message with its
/// destination or is marked as nothing to send.
pub fn seal_batch(dp: &BatchContext<'_>, batch: &mut TxBatch, now: Instant) {
    let udp = dp.udp;
    let mut routes = RouteCache::default();
    let mut i = 0;
    while i < batch.count {
        let Some(peer) = routes.lookup(dp, batch.inner(i)) else {
            dp.drops.inc(match ip_addresses(batch.inner(i)) {
                None => Reason::BadTunPacket,
                Some((_, dst)) if is_link_scoped_v6(dst) => Reason::LinkLocal,
                Some(_) => Reason::NoRoute,
            });
            batch.wire[i] = 0;
            i += 1;
            continue;
        };
        // The run of consecutive packets for the same peer.
        let mut end = i + 1;
        while end < batch.count
            && routes
                .lookup(dp, batch.inner(end))
                .is_some_and(|p| Arc::ptr_eq(&p, &peer))
        {
            end += 1;
        }
        seal_run(dp, udp, &peer, batch, i, end, now);
        i = end;
    }
}

/// Seals slots `start..end`, all for `peer`.
fn seal_run(
    dp: &BatchContext<'_>,
    udp: &UdpSockets,
    peer: &PeerHandle,
    batch: &mut TxBatch,
    start: usize,
    end: usize,
    now: Instant,
) {
    let n = (end - start) as u64;
    let also = *peer.also_to.lock();
    batch.also[start..end].fill(also);
    let session = peer.with_peer(udp, |p| {
        let (k, dst, mtu) = p.sending_keypair(now)?;
        let first = k.reserve_counters(n).ok()?;
        Some((k, dst, mtu, first))
    });
    let Some((k, dst, mtu, first)) = session else {
        // No session (or its nonces ran out): the peer queues the packets and starts a
        // handshake; a packet may still be sealed if a session appears meanwhile.
        for i in start..end {
            let at = i * batch.slot;
            let len = batch.len[i];
            let slot = &mut batch.region[at..at + batch.slot];
            let r = peer.with_peer(udp, |p| p.encapsulate_in_place(slot, len, now));
            batch.wire[i] = match r {
                Ok(Encapsulated::Sealed { len, dst }) => {
                    batch.dst[i] = normalize(dst);
                    len
                }
                Ok(Encapsulated::Queued) => 0,
                Err(e) => {
                    tracing::debug!(error = %e, "seal failed");
                    dp.drops.inc(Reason::SendFailed);
                    0
                }
            };
        }
        return;
    };
    let dst = normalize(dst);
    let slot_len = batch.slot;
    let region = &mut batch.region[start * slot_len..end * slot_len];
    let lens = &batch.len[start..end];
    let wires = &mut batch.wire[start..end];
    // Nonces were reserved in order above, so the slots can be sealed in any order (on several
    // threads) and still leave in order: the batch is sent only after every slot is sealed.
    let seal = |counter: ReservedCounter, slot: &mut [u8], len: usize, wire: &mut usize| {
        // The interface MTU may have been raised from outside (`ip link set mtu`, as wg-quick
        // does) past the configured one: never pad a packet beyond its own size then, or the
        // datagram outgrows what the path was sized for.
        let pad_mtu = mtu.max(len);
        *wire = match k.seal_in_place_with_counter(counter, slot, len, pad_mtu) {
            Ok(n) => n,
            Err(e) => {
                tracing::debug!(error = %e, "seal failed");
                dp.drops.inc(Reason::SendFailed);
                0
            }
        };
    };
    match dp.crypto {
        Some(pool) if end - start >= PARALLEL_MIN => {
            use rayon::prelude::*;
            // Each slot takes its own counter token; the tokens wait in a buffer this thread
            // reuses, so the parallel path allocates nothing per batch either.
            thread_local! {
                static TOKENS: std::cell::RefCell<Vec<Option<ReservedCounter>>> =
                    const { std::cell::RefCell::new(Vec::new()) };
            }
            TOKENS.with_borrow_mut(|tokens| {
                tokens.clear();
                tokens.extend(first.map(Some));
                pool.install(|| {
                    region
                        .par_chunks_mut(slot_len)
                        .zip(lens.par_iter())
                        .zip(wires.par_iter_mut())
                        .zip(tokens.par_iter_mut())
                        .with_min_len(PARALLEL_MIN / 2)
                        .for_each(|(((slot, &len), wire), token)| {
                            if let Some(counter) = token.take() {
                                seal(counter, slot, len, wire);
                            }
                        });
                });
            });
        }
        _ => {
            for (((slot, &len), wire), counter) in region
                .chunks_mut(slot_len)
                .zip(lens)
                .zip(wires.iter_mut())
                .zip(first)
            {
                seal(counter, slot, len, wire);
            }
        }
    }
    let mut total = 0;
    for i in start..end {
        batch.dst[i] = dst;
        total += batch.wire[i];
    }
    note_sent(udp, peer, &k, total, now);
}

fn note_sent(udp: &UdpSockets, peer: &PeerHandle, k: &Arc<Keypair>, total: usize, now: Instant) {
    if total > 0 {
        peer.with_peer(udp, |p| p.note_data_sent(k, total, now));
    }
}

/// Sends every sealed message of `batch`, in order, with as few system calls as the kernel
/// allows: one `sendmmsg` per socket family carries up to 64 GSO messages. Waits while the
/// socket buffer is full (TCP above paces itself) rather than dropping.
pub async fn send_batch(dp: &DataPlane, udp: &UdpSockets, batch: &mut TxBatch) {
    for v4 in [true, false] {
        let (sock, offloads) = if v4 {
            (udp.v4.as_ref(), &udp.v4_offloads)
        } else {
            (udp.v6.as_ref(), &udp.v6_offloads)
        };
        let out = Family { batch, v4 };
        if !(0..batch.count).any(|i| out.datagram(i).is_some()) {
            continue;
        }
        let Some(sock) = sock else {
            dp.drops.add(
                Reason::SendFailed,
                (0..batch.count)
                    .filter(|&i| out.datagram(i).is_some())
                    .count() as u64,
            );
            continue;
        };
        send_family(dp, sock, offloads, &out).await;
    }
    send_relayed(dp, udp, batch).await;
    // Second copies on the relay for peers whose direct path is in doubt: best effort, the
    // first copy went its way already.
    for i in 0..batch.count {
        if let (Some((bytes, _)), Some(also)) = (batch.sealed(i), batch.also[i]) {
            if !udp.send_best_effort(bytes, also) {
                dp.drops.inc(Reason::SendFailed);
            }
        }
    }
}

/// Relay frames of one batch, each in its own `MAX_RELAY_FRAME` slot.
struct RelayFrames {
    region: Region,
    len: [usize; TX_SLOTS],
    dst: [SocketAddr; TX_SLOTS],
    count: usize,
}

impl RelayFrames {
    fn new() -> io::Result<Self> {
        Ok(RelayFrames {
            region: Region::new(TX_SLOTS * MAX_RELAY_FRAME)?,
            len: [0; TX_SLOTS],
            dst: [UNSPECIFIED; TX_SLOTS],
            count: 0,
        })
    }
}

/// Relay frames to one socket family's hubs.
struct RelayFamily<'a> {
    frames: &'a RelayFrames,
    v4: bool,
}

impl Outgoing for RelayFamily<'_> {
    fn count(&self) -> usize {
        self.frames.count
    }
    fn datagram(&self, i: usize) -> Option<(&[u8], SocketAddr)> {
        let dst = self.frames.dst[i];
        (self.frames.len[i] > 0 && dst.is_ipv4() == self.v4).then(|| {
            let at = i * MAX_RELAY_FRAME;
            (&self.frames.region[at..at + self.frames.len[i]], dst)
        })
    }
}

/// Sends the batch's messages to peers on a hub's relay: each is copied behind its relay
/// header into a frame slot (or queued on the hub's TCP connection), and the frames go out
/// with the same batched system calls as direct datagrams. Frames to one hub are all the same
/// size under load, so UDP GSO sends many per message, each segment a whole frame.
async fn send_relayed(dp: &DataPlane, udp: &UdpSockets, batch: &mut TxBatch) {
    let TxBatch {
        region,
        wire,
        dst,
        count,
        slot,
        relay: frames,
        ..
    } = batch;
    frames.count = 0;
    for i in 0..*count {
        if wire[i] == 0 || !dst[i].is_ipv6() || relay::parse_stand_in(&dst[i]).is_none() {
            continue;
        }
        let at = i * *slot;
        let msg = &region[at..at + wire[i]];
        let k = frames.count;
        let out: &mut [u8; MAX_RELAY_FRAME] = (&mut frames.region
            [k * MAX_RELAY_FRAME..(k + 1) * MAX_RELAY_FRAME])
            .try_into()
            .expect("a frame slot");
        match udp.relay.frame(&dst[i], msg, out) {
            Some(relay::Relayed::Udp(f, hub)) => {
                frames.len[k] = f.len();
                frames.dst[k] = normalize(hub);
                frames.count += 1;
            }
            Some(relay::Relayed::Queued) => {}
            Some(relay::Relayed::Failed) | None => dp.drops.inc(Reason::SendFailed),
        }
    }
    if frames.count == 0 {
        return;
    }
    for v4 in [true, false] {
        let out = RelayFamily { frames, v4 };
        let n = (0..frames.count)
            .filter(|&i| out.datagram(i).is_some())
            .count();
        if n == 0 {
            continue;
        }
        let (sock, offloads) = if v4 {
            (udp.v4.as_ref(), &udp.v4_offloads)
        } else {
            (udp.v6.as_ref(), &udp.v6_offloads)
        };
        match sock {
            Some(sock) => send_family(dp, sock, offloads, &out).await,
            None => dp.drops.add(Reason::SendFailed, n as u64),
        }
    }
}

#[cfg(target_os = "linux")]
async fn send_family(
    dp: &DataPlane,
    sock: &tokio::net::UdpSocket,
    offloads: &crate::dataplane::udp::Offloads,
    out: &impl Outgoing,
) {
    use crate::dataplane::batch_udp;
    use std::os::fd::AsRawFd;
    let fd = sock.as_raw_fd();
    let mut next = 0;
    // Set for one call after the kernel refused a GSO message as too big for the path: those
    // datagrams go out one by one (and may be fragmented, as without GSO).
    let mut plain_once = false;
    while next < out.count() {
        let gso = offloads.gso() && !std::mem::take(&mut plain_once);
        let r = sock.try_io(tokio::io::Interest::WRITABLE, || {
            batch_udp::send(fd, out, next, gso)
        });
        match r {
            Ok(s) => {
                if s.failed > 0 {
                    dp.drops.add(Reason::SendFailed, s.failed as u64);
                }
                next = s.next;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if sock.writable().await.is_err() {
                    return;
                }
            }
            Err(e)
                if gso && matches!(e.raw_os_error(), Some(libc::EINVAL) | Some(libc::EMSGSIZE)) =>
            {
                tracing::debug!(error = %e, "UDP GSO send refused; sending those one by one");
                plain_once = true;
            }
            Err(e) if gso => {
                tracing::warn!(error = %e, "UDP GSO send refused; sending without GSO from now on");
                offloads
                    .gso
                    .store(false, std::sync::atomic::Ordering::Relaxed);
            }
            Err(e) => {
                tracing::debug!(error = %e, "UDP send failed");
                dp.drops.inc(Reason::SendFailed);
                return;
            }
        }
    }
}

#[cfg(not(target_os = "linux"))]
async fn send_family(
    dp: &DataPlane,
    sock: &tokio::net::UdpSocket,
    _offloads: &crate::dataplane::udp::Offloads,
    out: &impl Outgoing,
) {
    for i in 0..out.count() {
        if let Some((bytes, dst)) = out.datagram(i) {
            if sock.send_to(bytes, dst).await.is_err() {
                dp.drops.inc(Reason::SendFailed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fills frame slot `k` with `len` bytes of `k` for `dst`.
    fn put(f: &mut RelayFrames, len: usize, dst: &str) {
        let k = f.count;
        f.region[k * MAX_RELAY_FRAME..k * MAX_RELAY_FRAME + len].fill(k as u8);
        f.len[k] = len;
        f.dst[k] = dst.parse().unwrap();
        f.count += 1;
    }

    #[test]
    fn relay_frames_split_by_family_in_order_from_their_own_slots() {
        let mut f = RelayFrames::new().unwrap();
        put(&mut f, 100, "192.0.2.1:7000");
        put(&mut f, MAX_RELAY_FRAME, "[2001:db8::1]:7000");
        put(&mut f, 60, "192.0.2.2:7000");
        let v4 = RelayFamily {
            frames: &f,
            v4: true,
        };
        let v6 = RelayFamily {
            frames: &f,
            v4: false,
        };
        assert_eq!(v4.count(), 3);
        let (d, to) = v4.datagram(0).unwrap();
        assert_eq!((d.len(), to), (100, "192.0.2.1:7000".parse().unwrap()));
        assert!(d.iter().all(|&b| b == 0));
        assert!(v4.datagram(1).is_none());
        let (d, _) = v4.datagram(2).unwrap();
        assert!(d.len() == 60 && d.iter().all(|&b| b == 2));
        // A full-size frame fills its slot and no more.
        let (d, to) = v6.datagram(1).unwrap();
        assert!(d.len() == MAX_RELAY_FRAME && d.iter().all(|&b| b == 1));
        assert!(to.is_ipv6());
        assert!(v6.datagram(0).is_none() && v6.datagram(2).is_none());
    }

    #[test]
    fn an_empty_relay_slot_is_not_sent() {
        let mut f = RelayFrames::new().unwrap();
        put(&mut f, 0, "192.0.2.1:7000");
        assert!(RelayFamily {
            frames: &f,
            v4: true
        }
        .datagram(0)
        .is_none());
    }
}
