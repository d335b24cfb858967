//! The data plane: TUN and UDP I/O, routing, and the handshake worker.
//!
//! These are plain tasks, not actors: packets never cross an actor mailbox. The per-peer
//! protocol state is reached through [`peer_handle::PeerHandle`] (a short lock, never held
//! across I/O); the PeerActor is woken only when the protocol has something for it.

#[cfg(target_os = "linux")]
pub mod batch_udp;
#[cfg(not(target_os = "linux"))]
pub mod batch_udp {
    //! Receive bookkeeping shared with other platforms (no batched syscalls there).
    use std::net::SocketAddr;
    /// Messages per receive call.
    pub const RECV_MSGS: usize = 1;
    /// Size of one receive buffer.
    pub const RECV_BUF: usize = 65_536;
    /// Datagrams to send, by index.
    pub trait Outgoing {
        /// Number of datagrams.
        fn count(&self) -> usize;
        /// Datagram `i` and where it goes.
        fn datagram(&self, i: usize) -> Option<(&[u8], SocketAddr)>;
    }
    /// One received message.
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
    pub struct Received {
        /// Bytes in the buffer.
        pub len: usize,
        /// Size of each coalesced datagram.
        pub segment: usize,
        /// Sender.
        pub src: Option<SocketAddr>,
    }
}
pub mod counters;
pub mod handshake;
pub mod inbound;
pub mod nat_inbox;
pub mod outbound;
pub mod peer_handle;
pub mod region;
pub mod relay;
pub mod router;
pub mod tasks;
pub mod udp;

use crate::dataplane::counters::DropCounters;
use crate::dataplane::router::Router;
use crate::dataplane::udp::UdpSockets;
use parking_lot::RwLock;
use protocol::noise::handshake::StaticIdentity;
use protocol::noise::peer::PeerSettings;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// Pairs the monotonic clock with the wall clock once, so the protocol can derive TAI64N
/// timestamps and handshake times from `Instant`s.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    /// Monotonic anchor.
    pub mono: Instant,
    /// Time since the Unix epoch at `mono`.
    pub wall: Duration,
}

impl Clock {
    /// Reads both clocks now.
    pub fn now() -> Self {
        Clock {
            mono: Instant::now(),
            wall: SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap_or_default(),
        }
    }
    /// The pair the protocol takes.
    pub fn anchor(&self) -> (Instant, Duration) {
        (self.mono, self.wall)
    }
}

/// Environment variable that turns every offload off when set to `1`: the TUN is opened
/// without `IFF_VNET_HDR` (no TSO/USO super-packets, no GRO on writes) and the UDP sockets
/// use neither GSO nor GRO. Batched `sendmmsg`/`recvmmsg` stay. For tests and for comparing.
pub const DISABLE_OFFLOAD_ENV: &str = "VPND_DISABLE_OFFLOAD";

/// Environment variable with the number of crypto worker threads that seal a large batch for
/// one peer in parallel (nonces are assigned in order first, the batch leaves in order after);
/// `0` seals on the I/O task itself; unset or `auto` picks [`auto_crypto_workers`].
pub const CRYPTO_WORKERS_ENV: &str = "VPND_CRYPTO_WORKERS";

/// Most crypto workers the data plane starts.
pub const MAX_CRYPTO_WORKERS: usize = 8;

/// The default worker count: none on machines with two cores or fewer, otherwise one per
/// core, at most [`MAX_CRYPTO_WORKERS`]. On a 2-core machine shared by both daemons and iperf3,
/// two workers cut TCP throughput from 1070 to 824 Mb/s and tripled idle ping latency (see
/// docs/architecture.md): the hand-off only competes for the same cores.
pub fn auto_crypto_workers() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cores <= 2 {
        0
    } else {
        cores.min(MAX_CRYPTO_WORKERS)
    }
}

/// How the data plane runs: read once at start from the environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataPlaneOptions {
    /// Use TUN and UDP offloads where the kernel has them.
    pub offload: bool,
    /// Crypto worker threads (0 = seal on the I/O task).
    pub crypto_workers: usize,
}

impl Default for DataPlaneOptions {
    fn default() -> Self {
        DataPlaneOptions {
            offload: true,
            crypto_workers: auto_crypto_workers(),
        }
    }
}

impl DataPlaneOptions {
    /// The options the environment asks for ([`DISABLE_OFFLOAD_ENV`], [`CRYPTO_WORKERS_ENV`]).
    pub fn from_env() -> Self {
        let off = std::env::var(DISABLE_OFFLOAD_ENV)
            .map(|v| {
                let v = v.trim();
                !(v.is_empty() || v == "0" || v.eq_ignore_ascii_case("false"))
            })
            .unwrap_or(false);
        let crypto_workers = std::env::var(CRYPTO_WORKERS_ENV)
            .ok()
            .and_then(|v| v.trim().parse::<usize>().ok())
            .map_or_else(auto_crypto_workers, |n| n.min(MAX_CRYPTO_WORKERS));
        DataPlaneOptions {
            offload: !off,
            crypto_workers,
        }
    }

    /// The crypto worker pool these options ask for, if any.
    pub fn crypto_pool(&self) -> Option<rayon::ThreadPool> {
        if self.crypto_workers == 0 {
            return None;
        }
        rayon::ThreadPoolBuilder::new()
            .num_threads(self.crypto_workers)
            .thread_name(|i| format!("vpnd-crypto-{i}"))
            .build()
            .map_err(|e| tracing::warn!(error = %e, "no crypto workers; sealing on the I/O task"))
            .ok()
    }
}

/// Everything the data-plane tasks, the handshake worker and the actors share.
///
/// `T` is where decrypted packets go: the TUN device in the daemon, a stub in the fuzz target
/// (see [`inbound::TunWrite`]). A type parameter rather than a trait object, so the daemon's
/// receive path is compiled for the device and pays nothing for the seam.
pub struct DataPlane<T = tun_rs::AsyncDevice> {
    /// Our static identity (replaced when the private key changes).
    pub identity: RwLock<Arc<StaticIdentity>>,
    /// Peers by key, index and allowed IP.
    pub router: Router,
    /// UDP sockets (replaced when the listen port changes).
    pub udp: arc_swap::ArcSwap<UdpSockets>,
    /// The TUN device.
    pub tun: Arc<T>,
    /// Settings every peer shares.
    pub settings: RwLock<PeerSettings>,
    /// Divides every protocol timer (1 in production).
    pub timer_divisor: u32,
    /// Drop counters by reason.
    pub drops: DropCounters,
    /// Clock anchor.
    pub clock: Clock,
    /// Handshake worker input and the under-load latch.
    pub handshakes: handshake::HandshakeQueue,
    /// How the data plane runs.
    pub options: DataPlaneOptions,
    /// Threads that seal large batches in parallel (`None`: the I/O task seals).
    pub crypto: Option<rayon::ThreadPool>,
    /// Restarts of each data-plane task after a failure.
    pub restarts: tasks::TaskRestarts,
    /// STUN, hub and probe datagrams for the NAT actor.
    pub nat: nat_inbox::NatInbox,
    /// Test-only fault points.
    #[cfg(feature = "fault-injection")]
    pub faults: tasks::FaultPoints,
}

impl<T> DataPlane<T> {
    /// The UDP sockets in use now.
    pub fn udp(&self) -> arc_swap::Guard<Arc<UdpSockets>> {
        self.udp.load()
    }

    /// What the batch functions need, with the sockets `udp` (from [`DataPlane::udp`]).
    pub fn batch_context<'a>(&'a self, udp: &'a UdpSockets) -> BatchContext<'a> {
        BatchContext {
            router: &self.router,
            drops: &self.drops,
            udp,
            crypto: self.crypto.as_ref(),
        }
    }
}

/// What sealing and opening a batch need from the data plane: no device, so the batch
/// functions run in tests and benches too.
#[derive(Debug, Clone, Copy)]
pub struct BatchContext<'a> {
    /// Peers by key, index and allowed IP.
    pub router: &'a Router,
    /// Drop counters.
    pub drops: &'a DropCounters,
    /// Sockets for what the protocol sends on its own (handshakes triggered by a batch).
    pub udp: &'a UdpSockets,
    /// Crypto workers, if any.
    pub crypto: Option<&'a rayon::ThreadPool>,
}

impl<T> std::fmt::Debug for DataPlane<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataPlane").finish_non_exhaustive()
    }
}
