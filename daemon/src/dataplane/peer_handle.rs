//! The shared handle to one peer's protocol state.
//!
//! The PeerActor owns it (creates, restarts, drops it); the data plane and the handshake
//! worker lock it briefly per packet. Whoever calls into the protocol drains the datagrams it
//! produced and sends them after unlocking, and wakes the actor when the protocol has events
//! or a timer earlier than the one the actor sleeps on.

use crate::dataplane::udp::UdpSockets;
use parking_lot::Mutex;
use protocol::keys::PublicKey;
use protocol::noise::peer::{Peer, Transmit};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;
use tokio::sync::Notify;

/// The lock-protected part.
pub struct PeerCell {
    /// The protocol state machine.
    pub peer: Peer,
    /// The deadline the actor is sleeping towards.
    pub reported_deadline: Option<Instant>,
}

impl PeerCell {
    /// Whether the actor must look at the peer now.
    pub fn needs_actor(&self) -> bool {
        if self.peer.has_events() {
            return true;
        }
        match (self.peer.poll_timeout(), self.reported_deadline) {
            (Some(t), Some(r)) => t < r,
            (Some(_), None) => true,
            _ => false,
        }
    }

    /// Moves pending datagrams into `out`.
    pub fn drain_transmits(&mut self, out: &mut Vec<Transmit>) {
        while let Some(t) = self.peer.poll_transmit() {
            out.push(t);
        }
    }
}

/// One peer as the data plane sees it.
pub struct PeerHandle {
    /// The peer's public key (never changes for a handle).
    pub public_key: PublicKey,
    /// Protocol state.
    pub cell: Mutex<PeerCell>,
    /// Wakes the actor (through its timer task).
    pub wake: Notify,
    /// Tells the timer task the deadline changed.
    pub rearm: Notify,
    /// Set while a wake is queued for the actor, so wakes do not pile up.
    pub wake_queued: AtomicBool,
    /// Set while the configured host name has not resolved (the first lookup is under way,
    /// or the last one failed), for `show`'s `endpoint_unresolved`.
    pub unresolved: AtomicBool,
    /// Where sealed data also goes, besides the endpoint: the relay, while the NAT actor has
    /// the direct path in doubt (`PathManager::also_send_to`). Read once per run of a batch.
    pub also_to: parking_lot::Mutex<Option<std::net::SocketAddr>>,
}

impl std::fmt::Debug for PeerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerHandle")
            .field("public_key", &self.public_key)
            .finish_non_exhaustive()
    }
}

impl PeerHandle {
    /// Wraps a peer.
    pub fn new(peer: Peer) -> Self {
        PeerHandle {
            public_key: *peer.public_key(),
            cell: Mutex::new(PeerCell {
                peer,
                reported_deadline: None,
            }),
            wake: Notify::new(),
            rearm: Notify::new(),
            wake_queued: AtomicBool::new(false),
            unresolved: AtomicBool::new(false),
            also_to: parking_lot::Mutex::new(None),
        }
    }

    /// Runs `f` on the locked peer, then sends what it produced and wakes the actor if needed.
    pub fn with_peer<R>(&self, udp: &UdpSockets, f: impl FnOnce(&mut Peer) -> R) -> R {
        let mut out = Vec::new();
        let (r, wake) = {
            let mut cell = self.cell.lock();
            let r = f(&mut cell.peer);
            cell.drain_transmits(&mut out);
            (r, cell.needs_actor())
        };
        for t in &out {
            udp.send_best_effort(&t.payload, t.dst);
        }
        if wake {
            self.wake_actor();
        }
        r
    }

    /// Asks the actor to run.
    pub fn wake_actor(&self) {
        self.wake.notify_one();
    }

    /// Marks a queued wake as taken (called by the actor).
    pub fn clear_wake(&self) {
        self.wake_queued.store(false, Ordering::Release);
    }
}
