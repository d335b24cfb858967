//! The outer UDP sockets: IPv4 and IPv6 on the same port.

use super::relay::Relayed;
use protocol::hub::relay::MAX_RELAY_FRAME;
use socket2::{Domain, Protocol, Socket, Type};
use std::fmt;
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
    /// The hubs whose relay channels peers may be reached through: a datagram to a relay
    /// stand-in address goes to its hub with the relay header ([`super::relay`]). Shared by
    /// the sockets that replace these on a port change.
    pub relay: std::sync::Arc<super::relay::RelayHubs>,
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

/// Why the UDP sockets could not be bound. `Display` names the configuration field and what
/// to do, since this reaches the operator as is (start-up, reload, `interface set`).
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    /// Another socket holds the port (for one family or both).
    #[error(
        "interface.listen_port: {port} is already in use{}; another vpnd or WireGuard \
         interface may listen on it (`ss -ulpn 'sport = :{port}'` shows which): stop it or \
         choose another port",
        family.in_use_note()
    )]
    InUse {
        /// The port asked for.
        port: u16,
        /// The family whose socket found it taken.
        family: Family,
    },
    /// Any other failure (no permission, no such address, out of descriptors, ...).
    #[error("interface.listen_port: cannot listen on {family} UDP port {port}: {source}")]
    Other {
        /// The port asked for (0: any).
        port: u16,
        /// The family whose socket failed.
        family: Family,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

/// An IP family, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

impl Family {
    fn in_use_note(self) -> &'static str {
        match self {
            Family::V4 => "",
            Family::V6 => " (for IPv6)",
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        })
    }
}

impl BindError {
    fn new(port: u16, family: Family, source: io::Error) -> Self {
        if source.kind() == io::ErrorKind::AddrInUse && port != 0 {
            BindError::InUse { port, family }
        } else {
            BindError::Other {
                port,
                family,
                source,
            }
        }
    }
}

/// Whether an error from creating or binding the IPv6 socket means this host (or network
/// namespace) has no IPv6: the one case where running IPv4-only is right. Anything else (the
/// port taken, no permission) is a real failure that must not be hidden.
pub fn ipv6_absent(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(
            libc::EAFNOSUPPORT
                | libc::EPFNOSUPPORT
                | libc::EPROTONOSUPPORT
                | libc::ESOCKTNOSUPPORT
                | libc::EADDRNOTAVAIL
        )
    )
}

impl UdpSockets {
    /// Binds both families on `port` (0 = any free port, the same for both), with UDP GSO and
    /// GRO where the kernel has them.
    pub fn bind(port: u16) -> Result<Self, BindError> {
        Self::bind_with(port, true)
    }

    /// Binds both families on `port`; `offload` says whether to use UDP GSO/GRO when the
    /// kernel supports them. Runs IPv4-only only when IPv6 is absent ([`ipv6_absent`]).
    pub fn bind_with(port: u16, offload: bool) -> Result<Self, BindError> {
        let mut last_err = None;
        // With port 0 the kernel picks the IPv4 port; the IPv6 bind of the same port can race
        // with another program, so retry a few times with a new pick.
        for _ in 0..8 {
            let v4 = make_socket(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::UNSPECIFIED,
                port,
            )))
            .map_err(|e| BindError::new(port, Family::V4, e))?;
            let actual = v4
                .local_addr()
                .map_err(|e| BindError::new(port, Family::V4, e))?
                .port();
            let v6 = match make_socket(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::UNSPECIFIED,
                actual,
                0,
                0,
            ))) {
                Ok(v6) => Some(v6),
                Err(e) if e.kind() == io::ErrorKind::AddrInUse && port == 0 => {
                    last_err = Some(BindError::new(actual, Family::V6, e));
                    continue;
                }
                Err(e) if ipv6_absent(&e) => {
                    tracing::warn!(error = %e, "no IPv6 on this host; listening on IPv4 only");
                    None
                }
                Err(e) => return Err(BindError::new(port, Family::V6, e)),
            };
            let v4_offloads = Offloads::detect(&v4, offload);
            let v6_offloads = v6
                .as_ref()
                .map_or_else(Offloads::default, |s| Offloads::detect(s, offload));
            let tokio =
                |s, family| UdpSocket::from_std(s).map_err(|e| BindError::new(port, family, e));
            return Ok(UdpSockets {
                v4_offloads,
                v6_offloads,
                v4: Some(tokio(v4, Family::V4)?),
                v6: v6.map(|s| tokio(s, Family::V6)).transpose()?,
                relay: Default::default(),
                port: actual,
            });
        }
        Err(last_err.unwrap_or_else(|| {
            BindError::new(
                port,
                Family::V6,
                io::Error::other("no port free for both families"),
            )
        }))
    }

    /// No sockets at all: every send is dropped (returns false). For driving the data plane
    /// without touching the network (tests, the fuzz target).
    pub fn unbound() -> Self {
        UdpSockets {
            v4: None,
            v6: None,
            v4_offloads: Offloads::default(),
            v6_offloads: Offloads::default(),
            relay: Default::default(),
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
        let mut frame = [0u8; MAX_RELAY_FRAME];
        let (buf, dst) = match self.relay.frame(&dst, buf, &mut frame) {
            None => (buf, normalize(dst)),
            Some(Relayed::Udp(frame, hub)) => (frame, hub),
            Some(Relayed::Queued) => return true,
            Some(Relayed::Failed) => return false,
        };
        match self.socket_for(&dst) {
            Some(s) => s.try_send_to(buf, dst).is_ok(),
            None => false,
        }
    }

    /// Sends, waiting for socket buffer space. A datagram to a relay stand-in goes to its
    /// hub with the relay header (over UDP, or queued on the hub's TCP connection).
    pub async fn send(&self, buf: &[u8], dst: SocketAddr) -> io::Result<()> {
        let mut frame = [0u8; MAX_RELAY_FRAME];
        let (buf, dst) = match self.relay.frame(&dst, buf, &mut frame) {
            None => (buf, normalize(dst)),
            Some(Relayed::Udp(frame, hub)) => (frame, hub),
            Some(Relayed::Queued) => return Ok(()),
            Some(Relayed::Failed) => {
                return Err(io::Error::new(
                    io::ErrorKind::NotConnected,
                    "relay channel unavailable",
                ))
            }
        };
        let s = self
            .socket_for(&dst)
            .ok_or_else(|| io::Error::new(io::ErrorKind::Unsupported, "no socket for family"))?;
        s.send_to(buf, dst).await.map(|_| ())
    }

    /// Shares `relay` with these sockets (the ones they replace had it).
    pub fn with_relay(mut self, relay: std::sync::Arc<super::relay::RelayHubs>) -> Self {
        self.relay = relay;
        self
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

/// Sets SO_MARK on any socket (the WireGuard sockets here; the hub's TCP fallback too, so
/// both stay out of a tunnel that routes by fwmark).
#[cfg(target_os = "linux")]
pub(crate) fn set_mark(socket: &impl std::os::fd::AsRawFd, mark: u32) -> io::Result<()> {
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
pub(crate) fn set_mark<T>(_socket: &T, mark: u32) -> io::Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A socket holding `port` (0: any) for `family` alone, as another program would.
    fn holder(family: Family, port: u16) -> Option<Socket> {
        let (domain, addr): (_, SocketAddr) = match family {
            Family::V4 => (Domain::IPV4, (Ipv4Addr::UNSPECIFIED, port).into()),
            Family::V6 => (Domain::IPV6, (Ipv6Addr::UNSPECIFIED, port).into()),
        };
        let s = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP)).ok()?;
        if family == Family::V6 {
            s.set_only_v6(true).ok()?;
        }
        s.bind(&addr.into()).ok()?;
        Some(s)
    }

    fn port_of(s: &Socket) -> u16 {
        s.local_addr().unwrap().as_socket().unwrap().port()
    }

    #[test]
    fn a_taken_ipv4_port_names_the_field_and_the_fix() {
        let held = holder(Family::V4, 0).expect("an IPv4 UDP socket");
        let port = port_of(&held);
        let e = UdpSockets::bind_with(port, false).unwrap_err();
        assert!(
            matches!(
                e,
                BindError::InUse {
                    family: Family::V4,
                    ..
                }
            ),
            "{e:?}"
        );
        let msg = e.to_string();
        assert!(
            msg.starts_with(&format!("interface.listen_port: {port} is already in use;")),
            "{msg}"
        );
        assert!(msg.contains("choose another port"), "{msg}");
    }

    /// Issue 15 #7: a taken IPv6 port used to be read as "no IPv6 here" and vpnd ran IPv4-only.
    #[test]
    fn a_taken_ipv6_port_is_refused_not_dropped() {
        let Some(held) = holder(Family::V6, 0) else {
            eprintln!("no IPv6 on this host; skipped");
            return;
        };
        let port = port_of(&held);
        // The IPv4 side of that port may be taken by someone else too; then this proves less.
        if holder(Family::V4, port).is_none() {
            return;
        }
        let e = UdpSockets::bind_with(port, false).unwrap_err();
        assert!(
            matches!(
                e,
                BindError::InUse {
                    family: Family::V6,
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(
            e.to_string().starts_with(&format!(
                "interface.listen_port: {port} is already in use (for IPv6);"
            )),
            "{e}"
        );
    }

    #[test]
    fn only_errors_meaning_no_ipv6_fall_back_to_ipv4() {
        let os = io::Error::from_raw_os_error;
        for absent in [
            libc::EAFNOSUPPORT,
            libc::EPROTONOSUPPORT,
            libc::EADDRNOTAVAIL,
        ] {
            assert!(ipv6_absent(&os(absent)), "{absent}");
        }
        for real in [libc::EADDRINUSE, libc::EACCES, libc::EMFILE, libc::ENOBUFS] {
            assert!(!ipv6_absent(&os(real)), "{real}");
        }
        assert!(!ipv6_absent(&io::Error::other("x")));
    }

    #[tokio::test]
    async fn any_port_binds_both_families_on_one_port() {
        let s = UdpSockets::bind_with(0, false).unwrap();
        let v4 = s.v4.as_ref().unwrap().local_addr().unwrap().port();
        assert_eq!(v4, s.port());
        if let Some(v6) = &s.v6 {
            assert_eq!(v6.local_addr().unwrap().port(), s.port());
        }
    }
}
