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
    // SAFETY: plain C structs for which all-zero bytes are valid.
    let mut hdrs: [libc::mmsghdr; SEND_MSGS] = unsafe { mem::zeroed() };
    // SAFETY: as above.
    let mut iovs: [libc::iovec; SEND_IOVS] = unsafe { mem::zeroed() };
    let mut addrs = [RawAddr::zeroed(); SEND_MSGS];
    let mut cmsgs = [Cmsg([0; 32]); SEND_MSGS];
    // For each message: index one past its last datagram.
    let mut ends = [0usize; SEND_MSGS];

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
            ends[nmsg - 1] = i;
            continue;
        };
        let seg = first.len();
        let iov_start = niov;
        iovs[niov] = libc::iovec {
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
                iovs[niov] = libc::iovec {
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
        let h = &mut hdrs[nmsg].msg_hdr;
        h.msg_namelen = addrs[nmsg].set(&dst);
        h.msg_name = (&mut addrs[nmsg] as *mut RawAddr).cast();
        h.msg_iov = iovs[iov_start..].as_mut_ptr();
        h.msg_iovlen = segments as _;
        if segments > 1 {
            let buf = &mut cmsgs[nmsg];
            h.msg_control = buf.0.as_mut_ptr().cast();
            // SAFETY: CMSG_SPACE is a pure size computation.
            h.msg_controllen = unsafe { libc::CMSG_SPACE(mem::size_of::<u16>() as u32) } as _;
            // SAFETY: msg_control points at a live, aligned buffer of msg_controllen bytes, so
            // the first header and its data area lie inside it.
            unsafe {
                let c = libc::CMSG_FIRSTHDR(h);
                (*c).cmsg_level = libc::SOL_UDP;
                (*c).cmsg_type = UDP_SEGMENT;
                (*c).cmsg_len = libc::CMSG_LEN(mem::size_of::<u16>() as u32) as _;
                std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<u16>(), seg as u16);
            }
        }
        ends[nmsg] = i;
        nmsg += 1;
    }
    if nmsg == 0 {
        return Ok(Sent { next: i, failed: 0 });
    }
    // SAFETY: hdrs[..nmsg] point at iovecs, addresses and control buffers that live on this
    // stack frame, and the iovecs at datagrams borrowed from `out` for the whole call.
    let r = unsafe { libc::sendmmsg(fd, hdrs.as_mut_ptr(), nmsg as u32, 0) };
    if r < 0 {
        let e = io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::EAGAIN) | Some(libc::EINTR) => Err(io::ErrorKind::WouldBlock.into()),
            // EIO: the device cannot do GSO; EINVAL/EMSGSIZE on a GSO message: its segments
            // are too big for the path. The caller retries without GSO.
            Some(libc::EIO) if gso => Err(e),
            Some(libc::EINVAL) | Some(libc::EMSGSIZE) if gso && hdrs[0].msg_hdr.msg_iovlen > 1 => {
                Err(e)
            }
            _ => {
                // The first message failed: drop it and go on with the rest.
                let first_end = ends[0];
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
    let sent = r as usize;
    Ok(Sent {
        next: if sent == 0 { start } else { ends[sent - 1] },
        failed: 0,
    })
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
    // SAFETY: hdrs[..n] point at iovecs over disjoint chunks of `region`, and at addresses and
    // control buffers on this stack frame, all live for the call.
    let r = unsafe {
        libc::recvmmsg(
            fd,
            hdrs.as_mut_ptr(),
            n as u32,
            libc::MSG_DONTWAIT,
            std::ptr::null_mut(),
        )
    };
    if r < 0 {
        let e = io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::EINTR) => Err(io::ErrorKind::WouldBlock.into()),
            _ => Err(e),
        };
    }
    let got = r as usize;
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
