//! The outer UDP sockets: IPv4 and IPv6 on the same port.

use socket2::{Domain, Protocol, Socket, Type};
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::net::UdpSocket;

const SOCKET_BUFFER: usize = 4 << 20;

/// Which kernel offloads one socket uses.
#[derive(Debug, Default)]
pub struct Offloads {
    /// UDP GSO on send (cleared for good if the kernel refuses a GSO send with `EIO`).
    pub gso: AtomicBool,
    /// UDP GRO on receive.
    pub gro: bool,
}

impl Offloads {
    #[cfg(target_os = "linux")]
    fn detect(socket: &std::net::UdpSocket, wanted: bool) -> Self {
        use std::os::fd::AsRawFd;
        if !wanted {
            return Offloads::default();
        }
        let fd = socket.as_raw_fd();
        Offloads {
            gso: AtomicBool::new(crate::dataplane::batch_udp::gso_supported(fd)),
            gro: crate::dataplane::batch_udp::enable_gro(fd),
        }
    }

    #[cfg(not(target_os = "linux"))]
    fn detect(_socket: &std::net::UdpSocket, _wanted: bool) -> Self {
        Offloads::default()
    }

    /// Whether GSO sends are in use.
    pub fn gso(&self) -> bool {
        self.gso.load(Ordering::Relaxed)
    }
}

/// A dual-stack pair of UDP sockets.
#[derive(Debug)]
pub struct UdpSockets {
    /// IPv4 socket.
    pub v4: Option<UdpSocket>,
    /// IPv6 socket (v6-only).
    pub v6: Option<UdpSocket>,
    /// Offloads of the IPv4 socket.
    pub v4_offloads: Offloads,
    /// Offloads of the IPv6 socket.
    pub v6_offloads: Offloads,
    port: u16,
}

fn make_socket(addr: SocketAddr) -> io::Result<std::net::UdpSocket> {
    let domain = if addr.is_ipv4() {
        Domain::IPV4
    } else {
        Domain::IPV6
    };
    let s = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    // Best effort: bigger buffers absorb bursts; the kernel caps them at rmem_max/wmem_max
    // (about 200 KiB by default: a few milliseconds of traffic), unless we may force them.
    let _ = s.set_recv_buffer_size(SOCKET_BUFFER);
    let _ = s.set_send_buffer_size(SOCKET_BUFFER);
    #[cfg(target_os = "linux")]
    force_buffers(&s);
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    Ok(s.into())
}

impl UdpSockets {
    /// Binds both families on `port` (0 = any free port, the same for both), with UDP GSO and
    /// GRO where the kernel has them.
    pub fn bind(port: u16) -> io::Result<Self> {
        Self::bind_with(port, true)
    }

    /// Binds both families on `port`; `offload` says whether to use UDP GSO/GRO when the
    /// kernel supports them.
    pub fn bind_with(port: u16, offload: bool) -> io::Result<Self> {
        let mut last_err = None;
        // With port 0 the kernel picks the IPv4 port; the IPv6 bind of the same port can race
        // with another program, so retry a few times with a new pick.
        for _ in 0..8 {
            let v4 = make_socket(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::UNSPECIFIED,
                port,
            )))?;
            let actual = v4.local_addr()?.port();
            match make_socket(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::UNSPECIFIED,
                actual,
                0,
                0,
            ))) {
                Ok(v6) => {
                    return Ok(UdpSockets {
                        v4_offloads: Offloads::detect(&v4, offload),
                        v6_offloads: Offloads::detect(&v6, offload),
                        v4: Some(UdpSocket::from_std(v4)?),
                        v6: Some(UdpSocket::from_std(v6)?),
                        port: actual,
                    })
                }
                Err(e) if e.kind() == io::ErrorKind::AddrInUse && port == 0 => last_err = Some(e),
                Err(e) => {
                    // No IPv6 on this host: carry on with IPv4 only.
                    tracing::warn!(error = %e, "IPv6 UDP socket unavailable; IPv4 only");
                    return Ok(UdpSockets {
                        v4_offloads: Offloads::detect(&v4, offload),
                        v6_offloads: Offloads::default(),
                        v4: Some(UdpSocket::from_std(v4)?),
                        v6: None,
                        port: actual,
                    });
                }
            }
        }
        Err(last_err.unwrap_or_else(|| io::Error::other("could not bind UDP")))
    }

    /// No sockets at all: every send is dropped (returns false). For driving the data plane
    /// without touching the network (tests, the fuzz target).
    pub fn unbound() -> Self {
        UdpSockets {
            v4: None,
            v6: None,
            v4_offloads: Offloads::default(),
            v6_offloads: Offloads::default(),
            port: 0,
        }
    }

    /// Puts firewall mark `mark` (0 = none) on every packet both sockets send (`SO_MARK`,
    /// which needs `CAP_NET_ADMIN`).
    pub fn set_mark(&self, mark: u32) -> io::Result<()> {
        for s in [&self.v4, &self.v6].into_iter().flatten() {
            set_mark(s, mark)?;
        }
        Ok(())
    }

    /// The port both sockets listen on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The socket for `dst`'s family.
    pub fn socket_for(&self, dst: &SocketAddr) -> Option<&UdpSocket> {
        match dst {
            SocketAddr::V4(_) => self.v4.as_ref(),
            SocketAddr::V6(a) if a.ip().to_ipv4_mapped().is_some() => self.v4.as_ref(),
            SocketAddr::V6(_) => self.v6.as_ref(),
        }
    }

    /// Sends without waiting; returns false if the datagram was not sent.
    pub fn send_best_effort(&self, buf: &[u8], dst: SocketAddr) -> bool {
        let dst = normalize(dst);
        match self.socket_for(&dst) {
            Some(s) => s.try_send_to(buf, dst).is_ok(),
            None => false,
        }
    }

    /// Sends, waiting for socket buffer space.
    pub async fn send(&self, buf: &[u8], dst: SocketAddr) -> io::Result<()> {
        let dst = normalize(dst);
        let s = self
            .socket_for(&dst)
            .ok_or_else(|| io::Error::new(io::ErrorKind::Unsupported, "no socket for family"))?;
        s.send_to(buf, dst).await.map(|_| ())
    }
}

/// Raises both socket buffers to [`SOCKET_BUFFER`] past the sysctl caps when the process has
/// `CAP_NET_ADMIN` (as a VPN daemon usually does); without it the capped sizes stay. A daemon
/// that falls behind for a few milliseconds on a busy machine otherwise loses datagrams that
/// wireguard-go, which does the same, keeps.
#[cfg(target_os = "linux")]
fn force_buffers(s: &Socket) {
    use std::os::fd::AsRawFd;
    let size = SOCKET_BUFFER as libc::c_int;
    for opt in [libc::SO_RCVBUFFORCE, libc::SO_SNDBUFFORCE] {
        // SAFETY: the descriptor is a valid socket owned by `s` for the duration of the call;
        // the option value is a live c_int whose size is passed along.
        unsafe {
            libc::setsockopt(
                s.as_raw_fd(),
                libc::SOL_SOCKET,
                opt,
                (&size as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
    }
}

#[cfg(target_os = "linux")]
fn set_mark(socket: &UdpSocket, mark: u32) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: the descriptor is a valid socket owned by `socket` for the duration of the call;
    // the option value is a live u32 whose size is passed along.
    let r = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_MARK,
            (&mark as *const u32).cast(),
            std::mem::size_of::<u32>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn set_mark(_socket: &UdpSocket, mark: u32) -> io::Result<()> {
    if mark == 0 {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "fwmark is only supported on Linux",
        ))
    }
}

/// Maps v4-mapped IPv6 addresses to IPv4 so endpoints compare and route consistently.
pub fn normalize(a: SocketAddr) -> SocketAddr {
    match a {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::V4(SocketAddrV4::new(v4, v6.port())),
            None => a,
        },
        v4 => v4,
    }
}
