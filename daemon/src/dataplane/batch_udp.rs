//! Batched UDP I/O for Linux: `sendmmsg` with UDP GSO (`UDP_SEGMENT`) and `recvmmsg` with UDP
//! GRO (`UDP_GRO`).
//!
//! A batch of sealed datagrams leaves in one `sendmmsg` call: consecutive datagrams to the same
//! destination and of the same size (the last of a run may be shorter) become one message whose
//! iovecs the kernel cuts into datagrams of `gso_size` bytes. On the way in one `recvmmsg` call
//! fills several large buffers, each of which may hold many datagrams of one flow coalesced by
//! the kernel (the `UDP_GRO` control message says their size).
//!
//! Both offloads are detected per socket when it is created and can be refused by the caller
//! (`VPND_DISABLE_OFFLOAD=1`); without them the same calls carry one datagram per message. The
//! scratch space of a call (message headers, iovecs, addresses, control buffers) lives on the
//! stack with a fixed size: nothing here allocates.

use std::io;
use std::mem;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::RawFd;

/// `UDP_SEGMENT` from `linux/udp.h`: the GSO segment size of a send.
const UDP_SEGMENT: libc::c_int = 103;
/// `UDP_GRO` from `linux/udp.h`: receive coalesced datagrams.
const UDP_GRO: libc::c_int = 104;

/// Most datagrams one GSO message may carry (the kernel's `UDP_MAX_SEGMENTS` is 64 on older
/// kernels).
pub const MAX_GSO_SEGMENTS: usize = 64;
/// Most payload bytes one GSO message may carry: an IP datagram's length field caps the
/// unsegmented packet at 65,535 bytes including the IPv6 and UDP headers.
pub const MAX_GSO_BYTES: usize = 65_535 - 40 - 8;
/// Messages per `sendmmsg` call.
pub const SEND_MSGS: usize = 64;
/// iovecs per `sendmmsg` call (one per datagram).
pub const SEND_IOVS: usize = 256;
/// Messages per `recvmmsg` call.
pub const RECV_MSGS: usize = 32;
/// Size of one receive buffer: room for the largest coalesced (GRO) message.
pub const RECV_BUF: usize = 65_536;

/// Control buffer of one message, aligned for `cmsghdr`: room for one `int` or `u16` option.
#[derive(Clone, Copy)]
#[repr(C, align(8))]
struct Cmsg([u8; 32]);

/// A socket address in the C layout the kernel reads and writes.
#[derive(Clone, Copy)]
#[repr(C)]
union RawAddr {
    v4: libc::sockaddr_in,
    v6: libc::sockaddr_in6,
}

impl RawAddr {
    fn zeroed() -> Self {
        // SAFETY: both members are plain C structs for which all-zero bytes are valid.
        unsafe { mem::zeroed() }
    }

    /// Fills in `addr`; returns the length to pass to the kernel.
    fn set(&mut self, addr: &SocketAddr) -> libc::socklen_t {
        match addr {
            SocketAddr::V4(a) => {
                self.v4 = libc::sockaddr_in {
                    sin_family: libc::AF_INET as libc::sa_family_t,
                    sin_port: a.port().to_be(),
                    sin_addr: libc::in_addr {
                        s_addr: u32::from_ne_bytes(a.ip().octets()),
                    },
                    sin_zero: [0; 8],
                };
                mem::size_of::<libc::sockaddr_in>() as libc::socklen_t
            }
            SocketAddr::V6(a) => {
                self.v6 = libc::sockaddr_in6 {
                    sin6_family: libc::AF_INET6 as libc::sa_family_t,
                    sin6_port: a.port().to_be(),
                    sin6_flowinfo: a.flowinfo(),
                    sin6_addr: libc::in6_addr {
                        s6_addr: a.ip().octets(),
                    },
                    sin6_scope_id: a.scope_id(),
                };
                mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t
            }
        }
    }

    /// The address the kernel wrote, if it is an IP address.
    fn get(&self) -> Option<SocketAddr> {
        // SAFETY: every member starts with the family field; reading it from a zeroed or
        // kernel-filled union is reading initialised bytes.
        let family = unsafe { self.v4.sin_family } as libc::c_int;
        match family {
            libc::AF_INET => {
                // SAFETY: the family says the kernel wrote a sockaddr_in.
                let a = unsafe { self.v4 };
                Some(SocketAddr::V4(SocketAddrV4::new(
                    Ipv4Addr::from(a.sin_addr.s_addr.to_ne_bytes()),
                    u16::from_be(a.sin_port),
                )))
            }
            libc::AF_INET6 => {
                // SAFETY: the family says the kernel wrote a sockaddr_in6.
                let a = unsafe { self.v6 };
                Some(SocketAddr::V6(SocketAddrV6::new(
                    Ipv6Addr::from(a.sin6_addr.s6_addr),
                    u16::from_be(a.sin6_port),
                    a.sin6_flowinfo,
                    a.sin6_scope_id,
                )))
            }
            _ => None,
        }
    }
}

fn setsockopt_int(fd: RawFd, level: libc::c_int, name: libc::c_int, value: libc::c_int) -> bool {
    // SAFETY: `fd` is a socket owned by the caller for the duration of the call; the option
    // value is a live c_int whose size is passed along.
    let r = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&value as *const libc::c_int).cast(),
            mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    r == 0
}

/// Whether the kernel supports UDP GSO on this socket (`UDP_SEGMENT` can be read).
pub fn gso_supported(fd: RawFd) -> bool {
    let mut value: libc::c_int = 0;
    let mut len = mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `fd` is a socket owned by the caller; value and len are live and sized.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_UDP,
            UDP_SEGMENT,
            (&mut value as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    r == 0
}

/// Turns on UDP GRO for this socket; false if the kernel refuses it.
pub fn enable_gro(fd: RawFd) -> bool {
    setsockopt_int(fd, libc::SOL_UDP, UDP_GRO, 1)
}

/// Datagrams to send, by index: the sealed bytes and their destination.
pub trait Outgoing {
    /// Number of datagrams.
    fn count(&self) -> usize;
    /// Datagram `i` and where it goes; `None` skips it (not for this socket, or dropped).
    fn datagram(&self, i: usize) -> Option<(&[u8], SocketAddr)>;
}

/// What one [`send`] call did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sent {
    /// Index of the first datagram not yet handled (sent, skipped or dropped).
    pub next: usize,
    /// Datagrams the kernel refused (counted as drops by the caller).
    pub failed: usize,
}

/// Sends datagrams `start..` of `out` with one `sendmmsg` call: as many as fit in
/// [`SEND_MSGS`] messages and [`SEND_IOVS`] iovecs. With `gso`, runs of equal-sized datagrams to
/// one destination share a message. Returns how far it got; `WouldBlock` means nothing was sent
/// and the socket buffer is full. A message the kernel rejects outright (for example
/// `ENETUNREACH`) is skipped and its datagrams counted as failed; `EIO` with `gso`, and
/// `EINVAL`/`EMSGSIZE` for a message of several segments, are returned to the caller, which
/// should retry without GSO (for good after `EIO`, for that call otherwise).
pub fn send(fd: RawFd, out: &impl Outgoing, start: usize, gso: bool) -> io::Result<Sent> {
    let mut b = SendBufs::new();
    let (nmsg, i) = b.gather(out, start, gso);
    if nmsg == 0 {
        return Ok(Sent { next: i, failed: 0 });
    }
    let hdrs = b.hdrs.as_mut_ptr();
    // SAFETY: hdrs[..nmsg] point at iovecs, addresses and control buffers in `b`, which lives
    // (unmoved) on this stack frame, and the iovecs at datagrams borrowed from `out` for the
    // whole call.
    let r = retry_eintr(|| unsafe { libc::sendmmsg(fd, hdrs, nmsg as u32, 0) });
    let r = match r {
        Ok(r) => r,
        Err(e) => {
            return match e.raw_os_error() {
                Some(libc::EAGAIN) => Err(io::ErrorKind::WouldBlock.into()),
                // EIO: the device cannot do GSO; EINVAL/EMSGSIZE on a GSO message: its
                // segments are too big for the path. The caller retries without GSO.
                Some(libc::EIO) if gso => Err(e),
                Some(libc::EINVAL) | Some(libc::EMSGSIZE)
                    if gso && b.hdrs[0].msg_hdr.msg_iovlen > 1 =>
                {
                    Err(e)
                }
                _ => {
                    // The first message failed: drop it and go on with the rest.
                    let first_end = b.ends[0];
                    let failed = (start..first_end)
                        .filter(|&j| out.datagram(j).is_some())
                        .count();
                    tracing::trace!(error = %e, "UDP send failed");
                    Ok(Sent {
                        next: first_end,
                        failed,
                    })
                }
            };
        }
    };
    let sent = r as usize;
    Ok(Sent {
        next: if sent == 0 { start } else { b.ends[sent - 1] },
        failed: 0,
    })
}

/// Most times a system call interrupted by a signal is started again before giving up.
const MAX_EINTR_RETRIES: usize = 64;

/// Runs `call` (a system call returning -1 and `errno` on failure) again while a signal
/// interrupts it. EINTR means nothing was transferred, not that the socket is not ready:
/// reported as `WouldBlock` it would make tokio forget readiness the socket still has, and the
/// task could wait for an edge that never comes while data waits in the buffer.
fn retry_eintr(mut call: impl FnMut() -> libc::c_int) -> io::Result<libc::c_int> {
    let mut tries = 0;
    loop {
        let r = call();
        if r >= 0 {
            return Ok(r);
        }
        let e = io::Error::last_os_error();
        tries += 1;
        if e.raw_os_error() != Some(libc::EINTR) || tries >= MAX_EINTR_RETRIES {
            return Err(e);
        }
    }
}

/// The scratch space of one `sendmmsg` call: message headers and what they point into. It must
/// not move between [`SendBufs::gather`] and the call.
struct SendBufs {
    hdrs: [libc::mmsghdr; SEND_MSGS],
    iovs: [libc::iovec; SEND_IOVS],
    addrs: [RawAddr; SEND_MSGS],
    cmsgs: [Cmsg; SEND_MSGS],
    /// For each message: index one past its last datagram.
    ends: [usize; SEND_MSGS],
}

impl SendBufs {
    fn new() -> Self {
        SendBufs {
            // SAFETY: plain C structs for which all-zero bytes are valid.
            hdrs: unsafe { mem::zeroed() },
            // SAFETY: as above.
            iovs: unsafe { mem::zeroed() },
            addrs: [RawAddr::zeroed(); SEND_MSGS],
            cmsgs: [Cmsg([0; 32]); SEND_MSGS],
            ends: [0; SEND_MSGS],
        }
    }

    /// Fills the headers for datagrams `start..` of `out` (see [`send`]); returns how many
    /// messages they make and the index of the first datagram left for the next call.
    fn gather(&mut self, out: &impl Outgoing, start: usize, gso: bool) -> (usize, usize) {
        // For each message: its first iovec.
        let mut iov_starts = [0usize; SEND_MSGS];
        let total = out.count();
        let mut i = start;
        let mut nmsg = 0;
        let mut niov = 0;
        while i < total && nmsg < SEND_MSGS && niov < SEND_IOVS {
            let Some((first, dst)) = out.datagram(i) else {
                i += 1;
                if nmsg == 0 {
                    // Nothing gathered yet: keep scanning.
                    continue;
                }
                self.ends[nmsg - 1] = i;
                continue;
            };
            let seg = first.len();
            let iov_start = niov;
            self.iovs[niov] = libc::iovec {
                iov_base: first.as_ptr() as *mut libc::c_void,
                iov_len: seg,
            };
            niov += 1;
            let mut bytes = seg;
            i += 1;
            if gso {
                // Extend the run: same destination, same size; a shorter datagram ends it.
                while i < total
                    && niov < SEND_IOVS
                    && niov - iov_start < MAX_GSO_SEGMENTS
                    && bytes + seg <= MAX_GSO_BYTES
                {
                    let Some((next, next_dst)) = out.datagram(i) else {
                        break;
                    };
                    if next_dst != dst || next.len() > seg {
                        break;
                    }
                    self.iovs[niov] = libc::iovec {
                        iov_base: next.as_ptr() as *mut libc::c_void,
                        iov_len: next.len(),
                    };
                    niov += 1;
                    bytes += next.len();
                    i += 1;
                    if next.len() < seg {
                        break;
                    }
                }
            }
            let segments = niov - iov_start;
            iov_starts[nmsg] = iov_start;
            let h = &mut self.hdrs[nmsg].msg_hdr;
            h.msg_namelen = self.addrs[nmsg].set(&dst);
            h.msg_name = (&mut self.addrs[nmsg] as *mut RawAddr).cast();
            h.msg_iovlen = segments as _;
            if segments > 1 {
                let buf = &mut self.cmsgs[nmsg];
                h.msg_control = buf.0.as_mut_ptr().cast();
                // SAFETY: CMSG_SPACE is a pure size computation.
                h.msg_controllen = unsafe { libc::CMSG_SPACE(mem::size_of::<u16>() as u32) } as _;
                // SAFETY: msg_control points at a live, aligned buffer of msg_controllen bytes,
                // so the first header and its data area lie inside it.
                unsafe {
                    let c = libc::CMSG_FIRSTHDR(h);
                    (*c).cmsg_level = libc::SOL_UDP;
                    (*c).cmsg_type = UDP_SEGMENT;
                    (*c).cmsg_len = libc::CMSG_LEN(mem::size_of::<u16>() as u32) as _;
                    std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<u16>(), seg as u16);
                }
            }
            self.ends[nmsg] = i;
            nmsg += 1;
        }
        // The headers' iovec pointers are derived from one pointer to the array, taken after
        // the last write to it: a pointer taken per message (`iovs[k..].as_mut_ptr()`) would be
        // invalidated by the next message's reborrow of the whole array (Stacked Borrows).
        let base = self.iovs.as_mut_ptr();
        for (hdr, &first) in self.hdrs[..nmsg].iter_mut().zip(&iov_starts) {
            // SAFETY: `first` < SEND_IOVS: an index of an iovec written above.
            hdr.msg_hdr.msg_iov = unsafe { base.add(first) };
        }
        (nmsg, i)
    }
}

/// One received message: `len` bytes at the start of its buffer, made of datagrams of
/// `segment` bytes (the last may be shorter) from `src`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Received {
    /// Bytes in the buffer.
    pub len: usize,
    /// Size of each coalesced datagram (equal to `len` without GRO).
    pub segment: usize,
    /// Sender.
    pub src: Option<SocketAddr>,
}

/// Receives up to `meta.len()` (at most [`RECV_MSGS`]) messages with one `recvmmsg` call into
/// consecutive `buf_len`-byte buffers of `region`. Returns how many arrived; `WouldBlock` when
/// none is waiting. A truncated message gets `len` 0 (the caller drops it).
pub fn recv(
    fd: RawFd,
    region: &mut [u8],
    buf_len: usize,
    meta: &mut [Received],
) -> io::Result<usize> {
    let n = meta.len().min(RECV_MSGS).min(region.len() / buf_len);
    // SAFETY: plain C structs for which all-zero bytes are valid.
    let mut hdrs: [libc::mmsghdr; RECV_MSGS] = unsafe { mem::zeroed() };
    // SAFETY: as above.
    let mut iovs: [libc::iovec; RECV_MSGS] = unsafe { mem::zeroed() };
    let mut addrs = [RawAddr::zeroed(); RECV_MSGS];
    let mut cmsgs = [Cmsg([0; 32]); RECV_MSGS];
    for (k, chunk) in region.chunks_exact_mut(buf_len).take(n).enumerate() {
        iovs[k] = libc::iovec {
            iov_base: chunk.as_mut_ptr().cast(),
            iov_len: buf_len,
        };
        let h = &mut hdrs[k].msg_hdr;
        h.msg_name = (&mut addrs[k] as *mut RawAddr).cast();
        h.msg_namelen = mem::size_of::<RawAddr>() as libc::socklen_t;
        h.msg_iov = &mut iovs[k];
        h.msg_iovlen = 1;
        h.msg_control = cmsgs[k].0.as_mut_ptr().cast();
        h.msg_controllen = mem::size_of::<Cmsg>() as _;
    }
    let hdrs_ptr = hdrs.as_mut_ptr();
    // SAFETY: hdrs[..n] point at iovecs over disjoint chunks of `region`, and at addresses and
    // control buffers on this stack frame, all live for the call.
    let got = retry_eintr(|| unsafe {
        libc::recvmmsg(
            fd,
            hdrs_ptr,
            n as u32,
            libc::MSG_DONTWAIT,
            std::ptr::null_mut(),
        )
    })? as usize;
    for k in 0..got {
        let h = &hdrs[k];
        let len = h.msg_len as usize;
        let truncated = h.msg_hdr.msg_flags & libc::MSG_TRUNC != 0;
        let mut segment = len;
        // SAFETY: the kernel filled msg_control/msg_controllen; the CMSG_* walk stays inside
        // that buffer, which is live on this stack frame.
        unsafe {
            let mut c = libc::CMSG_FIRSTHDR(&h.msg_hdr);
            while !c.is_null() {
                if (*c).cmsg_level == libc::SOL_UDP && (*c).cmsg_type == UDP_GRO {
                    let size = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<libc::c_int>());
                    if size > 0 {
                        segment = size as usize;
                    }
                }
                c = libc::CMSG_NXTHDR(&h.msg_hdr, c);
            }
        }
        meta[k] = Received {
            len: if truncated { 0 } else { len },
            segment: segment.max(1),
            src: addrs[k].get(),
        };
    }
    Ok(got)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    struct List<'a>(Vec<(&'a [u8], SocketAddr)>);
    impl Outgoing for List<'_> {
        fn count(&self) -> usize {
            self.0.len()
        }
        fn datagram(&self, i: usize) -> Option<(&[u8], SocketAddr)> {
            self.0.get(i).copied()
        }
    }

    /// The headers `gather` builds point at the right datagrams, read back through the
    /// pointers the kernel would follow. Under Miri (`cargo +nightly miri test -p vpnd --lib
    /// batch_udp::tests::gather`) this also checks that no later write invalidated a pointer.
    #[test]
    fn gathered_headers_point_at_every_datagram() {
        let a: SocketAddr = "192.0.2.1:1000".parse().unwrap();
        let b: SocketAddr = "[2001:db8::2]:2000".parse().unwrap();
        let data: Vec<Vec<u8>> = (0..7u8)
            .map(|k| vec![k; if k == 2 { 50 } else { 100 }])
            .collect();
        // a: a run of 2 full + 1 short; b: 2 full; a: 1; then a gap (None) and b again.
        let dsts = [a, a, a, b, b, a];
        let mut list: Vec<Option<(&[u8], SocketAddr)>> = dsts
            .iter()
            .zip(&data)
            .map(|(d, v)| Some((v.as_slice(), *d)))
            .collect();
        list.push(None);
        list.push(Some((data[6].as_slice(), b)));
        struct Gappy<'a>(Vec<Option<(&'a [u8], SocketAddr)>>);
        impl Outgoing for Gappy<'_> {
            fn count(&self) -> usize {
                self.0.len()
            }
            fn datagram(&self, i: usize) -> Option<(&[u8], SocketAddr)> {
                self.0.get(i).copied().flatten()
            }
        }
        let out = Gappy(list);
        for gso in [true, false] {
            let mut bufs = SendBufs::new();
            let (nmsg, next) = bufs.gather(&out, 0, gso);
            assert_eq!(next, out.count());
            let expect: Vec<(Vec<usize>, SocketAddr)> = if gso {
                vec![
                    (vec![0, 1, 2], a),
                    (vec![3, 4], b),
                    (vec![5], a),
                    (vec![7], b),
                ]
            } else {
                [0, 1, 2, 3, 4, 5, 7]
                    .iter()
                    .map(|&k| (vec![k], out.datagram(k).unwrap().1))
                    .collect()
            };
            assert_eq!(nmsg, expect.len(), "gso {gso}");
            for (m, (idx, dst)) in expect.iter().enumerate() {
                let h = &bufs.hdrs[m].msg_hdr;
                assert_eq!(h.msg_iovlen, idx.len(), "message {m}, gso {gso}");
                // SAFETY: gather set msg_iov to msg_iovlen initialised iovecs in `bufs`, each
                // over a datagram of `data`, all alive here.
                let iovs = unsafe { std::slice::from_raw_parts(h.msg_iov, h.msg_iovlen) };
                for (iov, &k) in iovs.iter().zip(idx) {
                    // SAFETY: as above.
                    let bytes = unsafe {
                        std::slice::from_raw_parts(iov.iov_base as *const u8, iov.iov_len)
                    };
                    assert_eq!(
                        bytes,
                        out.datagram(k).unwrap().0,
                        "message {m} datagram {k}"
                    );
                }
                // SAFETY: msg_name points at the RawAddr gather filled for this message.
                let port = unsafe {
                    let raw = &*(h.msg_name as *const RawAddr);
                    if dst.is_ipv4() {
                        u16::from_be(raw.v4.sin_port)
                    } else {
                        u16::from_be(raw.v6.sin6_port)
                    }
                };
                assert_eq!(port, dst.port());
                assert_eq!(h.msg_control.is_null(), idx.len() == 1);
            }
        }
    }

    #[test]
    fn eintr_is_retried_not_reported_as_would_block() {
        let set_errno = |e: libc::c_int| {
            // SAFETY: __errno_location returns this thread's errno slot.
            unsafe { *libc::__errno_location() = e };
            -1
        };
        let mut calls = 0;
        let r = retry_eintr(|| {
            calls += 1;
            if calls < 3 {
                set_errno(libc::EINTR)
            } else {
                7
            }
        });
        assert_eq!(r.unwrap(), 7);
        assert_eq!(calls, 3);
        // Other errors come back at once.
        let mut calls = 0;
        let e = retry_eintr(|| {
            calls += 1;
            set_errno(libc::EAGAIN)
        })
        .unwrap_err();
        assert_eq!((e.raw_os_error(), calls), (Some(libc::EAGAIN), 1));
        // A signal storm does not spin forever.
        let mut calls = 0;
        let e = retry_eintr(|| {
            calls += 1;
            set_errno(libc::EINTR)
        })
        .unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EINTR));
        assert_eq!(calls, MAX_EINTR_RETRIES);
    }

    fn pair() -> (std::net::UdpSocket, std::net::UdpSocket) {
        let a = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        b.set_nonblocking(true).unwrap();
        (a, b)
    }

    /// Receives whatever is waiting (a short wait for stragglers), split into datagrams.
    fn recv_some(b: &std::net::UdpSocket, gro: bool, got: &mut Vec<Vec<u8>>) {
        let mut region = vec![0u8; RECV_BUF * 4];
        let mut meta = [Received::default(); 4];
        let mut idle = 0;
        while idle < 3 {
            match recv(b.as_raw_fd(), &mut region, RECV_BUF, &mut meta) {
                Ok(n) => {
                    idle = 0;
                    for (k, m) in meta[..n].iter().enumerate() {
                        let buf = &region[k * RECV_BUF..k * RECV_BUF + m.len];
                        if !gro {
                            assert_eq!(m.segment, m.len);
                        }
                        for d in buf.chunks(m.segment) {
                            got.push(d.to_vec());
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    idle += 1;
                    std::thread::sleep(std::time::Duration::from_millis(2));
                }
                Err(e) => panic!("{e}"),
            }
        }
    }

    fn datagrams() -> Vec<Vec<u8>> {
        // 100 datagrams: runs of equal sizes, a shorter one closing each run of ten.
        (0..100u8)
            .map(|i| {
                let len = if i % 10 == 9 { 300 } else { 1200 };
                vec![i; len]
            })
            .collect()
    }

    fn round_trip(gso: bool, gro: bool) {
        let (a, b) = pair();
        let dst = b.local_addr().unwrap();
        if gro {
            assert!(enable_gro(b.as_raw_fd()));
        }
        if gso {
            assert!(gso_supported(a.as_raw_fd()));
        }
        let data = datagrams();
        let list = List(data.iter().map(|d| (&d[..], dst)).collect());
        // Ten datagrams per call, received in between, so the socket buffer never overflows.
        struct Window<'a>(&'a List<'a>, usize);
        impl Outgoing for Window<'_> {
            fn count(&self) -> usize {
                self.1
            }
            fn datagram(&self, i: usize) -> Option<(&[u8], SocketAddr)> {
                self.0.datagram(i)
            }
        }
        let mut got = Vec::new();
        let mut next = 0;
        while next < list.count() {
            let window = Window(&list, (next + 10).min(list.count()));
            while next < window.count() {
                let s = send(a.as_raw_fd(), &window, next, gso).unwrap();
                assert_eq!(s.failed, 0);
                assert!(s.next > next);
                next = s.next;
            }
            recv_some(&b, gro, &mut got);
        }
        assert_eq!(got, data, "gso={gso} gro={gro}");
    }

    #[test]
    fn batches_arrive_whole_and_in_order() {
        round_trip(false, false);
        round_trip(true, false);
        round_trip(false, true);
        round_trip(true, true);
    }

    #[test]
    fn skipped_datagrams_are_not_sent() {
        let (a, b) = pair();
        let dst = b.local_addr().unwrap();
        struct Sparse(SocketAddr, Vec<u8>);
        impl Outgoing for Sparse {
            fn count(&self) -> usize {
                10
            }
            fn datagram(&self, i: usize) -> Option<(&[u8], SocketAddr)> {
                (i % 2 == 0).then_some((&self.1[..], self.0))
            }
        }
        let s = Sparse(dst, vec![7; 100]);
        let r = send(a.as_raw_fd(), &s, 0, true).unwrap();
        assert_eq!(r.next, 10);
        let mut region = vec![0u8; RECV_BUF * 8];
        let mut meta = [Received::default(); 8];
        std::thread::sleep(std::time::Duration::from_millis(20));
        let n = recv(b.as_raw_fd(), &mut region, RECV_BUF, &mut meta).unwrap();
        assert_eq!(n, 5);
        assert!(meta[..n].iter().all(|m| m.len == 100));
        assert_eq!(meta[0].src, Some(a.local_addr().unwrap()));
    }
}
