//! The data plane: TUN and UDP I/O, routing, and the handshake worker.
//!
//! These are plain tasks, not actors: packets never cross an actor mailbox. The per-peer
//! protocol state is reached through [`peer_handle::PeerHandle`] (a short lock, never held
//! across I/O); the PeerActor is woken only when the protocol has something for it.

pub mod counters;
pub mod handshake;
pub mod inbound;
pub mod outbound;
pub mod peer_handle;
pub mod router;
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

/// Everything the data-plane tasks, the handshake worker and the actors share.
pub struct DataPlane {
    /// Our static identity (replaced when the private key changes).
    pub identity: RwLock<Arc<StaticIdentity>>,
    /// Peers by key, index and allowed IP.
    pub router: Router,
    /// UDP sockets (replaced when the listen port changes).
    pub udp: arc_swap::ArcSwap<UdpSockets>,
    /// The TUN device.
    pub tun: Arc<tun_rs::AsyncDevice>,
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
}

impl DataPlane {
    /// The UDP sockets in use now.
    pub fn udp(&self) -> arc_swap::Guard<Arc<UdpSockets>> {
        self.udp.load()
    }
}

impl std::fmt::Debug for DataPlane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataPlane").finish_non_exhaustive()
    }
}
