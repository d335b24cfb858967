//! Batched UDP system calls for the relay (Linux): `recvmmsg` fills up to [`BATCH`] buffers per
//! call and `sendmmsg` sends up to as many frames per call, straight from those buffers, so a
//! relayed datagram costs a fraction of a system call each way instead of one. Buffers are
//! allocated once per socket task; nothing is allocated per datagram.

use std::io;
use std::mem;
use std::net::SocketAddr;
use std::os::fd::RawFd;

use socket2::{SockAddr, SockAddrStorage};

/// Datagrams per system call. 64 full frames are ~100 KiB of buffer per socket.
pub const BATCH: usize = 64;

/// One batch of received datagrams in fixed-size buffers.
pub struct RecvBatch {
    buf_len: usize,
    bufs: Box<[u8]>,
    len: [usize; BATCH],
    src: [Option<SocketAddr>; BATCH],
}

impl RecvBatch {
    /// Buffers of `buf_len` bytes each (a datagram longer than that is cut to it).
    pub fn new(buf_len: usize) -> RecvBatch {
        RecvBatch {
            buf_len,
            bufs: vec![0u8; buf_len * BATCH].into_boxed_slice(),
            len: [0; BATCH],
            src: [None; BATCH],
        }
    }

    /// Datagram `k` of the last receive (cut to the buffer's size if longer) and its sender
    /// (`None` for an address family we do not serve).
    pub fn datagram(&self, k: usize) -> Option<(&[u8], SocketAddr)> {
        let src = self.src[k]?;
        let at = k * self.buf_len;
        Some((&self.bufs[at..at + self.len[k]], src))
    }
}

fn retry_eintr(mut f: impl FnMut() -> libc::c_int) -> io::Result<usize> {
    loop {
        let r = f();
        if r >= 0 {
            return Ok(r as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Receives up to [`BATCH`] datagrams into `b` without blocking; how many arrived
/// (`WouldBlock` when none waits).
pub fn recv(fd: RawFd, b: &mut RecvBatch) -> io::Result<usize> {
    // SAFETY: plain C structs for which all-zero bytes are valid.
    let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { mem::zeroed() };
    // SAFETY: as above.
    let mut iovs: [libc::iovec; BATCH] = unsafe { mem::zeroed() };
    let mut addrs: [SockAddrStorage; BATCH] = std::array::from_fn(|_| SockAddrStorage::zeroed());
    let buf_len = b.buf_len;
    for (k, chunk) in b.bufs.chunks_exact_mut(buf_len).enumerate() {
        iovs[k] = libc::iovec {
            iov_base: chunk.as_mut_ptr().cast(),
            iov_len: buf_len,
        };
        let h = &mut hdrs[k].msg_hdr;
        // SockAddrStorage is a transparent wrapper of sockaddr_storage.
        h.msg_name = (&mut addrs[k] as *mut SockAddrStorage).cast();
        h.msg_namelen = addrs[k].size_of();
        h.msg_iov = &mut iovs[k];
        h.msg_iovlen = 1;
    }
    let ptr = hdrs.as_mut_ptr();
    // SAFETY: every header points at its own iovec over a disjoint chunk of `b.bufs` and at its
    // own address buffer, all live for the call.
    let got = retry_eintr(|| unsafe {
        libc::recvmmsg(
            fd,
            ptr,
            BATCH as u32,
            libc::MSG_DONTWAIT,
            std::ptr::null_mut(),
        )
    })?;
    for k in 0..got {
        let h = &hdrs[k];
        let truncated = h.msg_hdr.msg_flags & libc::MSG_TRUNC != 0;
        // A datagram longer than the buffer fills it: callers size buffers one byte past the
        // longest datagram they take, so it is refused by length (as with `recv_from`).
        b.len[k] = if truncated {
            buf_len
        } else {
            h.msg_len as usize
        };
        let storage = mem::replace(&mut addrs[k], SockAddrStorage::zeroed());
        // SAFETY: the kernel wrote a socket address of `msg_namelen` bytes into the storage.
        let addr = unsafe { SockAddr::new(storage, h.msg_hdr.msg_namelen) };
        b.src[k] = addr.as_socket();
    }
    Ok(got)
}

/// Sends `frames` (the first [`BATCH`] of them) without blocking; how many the kernel took,
/// from the first (`WouldBlock` when it took none).
pub fn send<'a>(
    fd: RawFd,
    frames: impl IntoIterator<Item = (&'a [u8], SocketAddr)>,
) -> io::Result<usize> {
    let mut n = 0;
    // SAFETY: plain C structs for which all-zero bytes are valid.
    let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { mem::zeroed() };
    // SAFETY: as above.
    let mut iovs: [libc::iovec; BATCH] = unsafe { mem::zeroed() };
    // SAFETY: as above.
    let mut addrs: [libc::sockaddr_storage; BATCH] = unsafe { mem::zeroed() };
    for (k, (data, dst)) in frames.into_iter().take(BATCH).enumerate() {
        n = k + 1;
        let a = SockAddr::from(dst);
        // SAFETY: `a` holds `a.len()` valid bytes of a socket address, no more than a
        // sockaddr_storage.
        unsafe {
            std::ptr::copy_nonoverlapping(
                a.as_ptr().cast::<u8>(),
                (&mut addrs[k] as *mut libc::sockaddr_storage).cast::<u8>(),
                a.len() as usize,
            );
        }
        iovs[k] = libc::iovec {
            iov_base: data.as_ptr() as *mut libc::c_void,
            iov_len: data.len(),
        };
        let h = &mut hdrs[k].msg_hdr;
        h.msg_name = (&mut addrs[k] as *mut libc::sockaddr_storage).cast();
        h.msg_namelen = a.len();
        h.msg_iov = &mut iovs[k];
        h.msg_iovlen = 1;
    }
    let ptr = hdrs.as_mut_ptr();
    // SAFETY: the headers point at iovecs over the callers' frames (read only by the kernel)
    // and at address buffers on this stack frame, all live for the call.
    retry_eintr(|| unsafe { libc::sendmmsg(fd, ptr, n as u32, libc::MSG_DONTWAIT) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn a_batch_goes_out_and_comes_back_with_its_senders() {
        let rx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = rx.local_addr().unwrap();
        let frames: Vec<Vec<u8>> = (0..10u8).map(|k| vec![k; 100 + usize::from(k)]).collect();
        let list: Vec<(&[u8], SocketAddr)> = frames.iter().map(|f| (f.as_slice(), to)).collect();
        assert_eq!(send(tx.as_raw_fd(), list.iter().copied()).unwrap(), 10);
        rx.set_read_timeout(Some(std::time::Duration::from_secs(2)))
            .unwrap();
        let mut b = RecvBatch::new(1545);
        let mut got = Vec::new();
        for _ in 0..100 {
            match recv(rx.as_raw_fd(), &mut b) {
                Ok(n) => (0..n).for_each(|k| {
                    let (d, src) = b.datagram(k).unwrap();
                    assert_eq!(src, tx.local_addr().unwrap());
                    got.push(d.to_vec());
                }),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(std::time::Duration::from_millis(10))
                }
                Err(e) => panic!("{e}"),
            }
            if got.len() == 10 {
                break;
            }
        }
        assert_eq!(got, frames);
        // Too long for the buffer: cut to it (the caller refuses it by length).
        let mut small = RecvBatch::new(64);
        tx.send_to(&[1; 200], to).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert_eq!(recv(rx.as_raw_fd(), &mut small).unwrap(), 1);
        assert_eq!(small.datagram(0).unwrap().0.len(), 64);
    }
}
