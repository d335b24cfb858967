//! Counters of dropped network packets, by reason, readable by the control plane.

use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

/// Reasons the data plane itself (not the protocol) drops a packet.
pub mod reason {
    /// No peer's allowed IPs cover the destination of an outbound packet.
    pub const NO_ROUTE: &str = "no_route";
    /// The inner packet read from the TUN is not IPv4/IPv6.
    pub const BAD_TUN_PACKET: &str = "bad_tun_packet";
    /// The handshake queue was full.
    pub const HANDSHAKE_QUEUE_FULL: &str = "handshake_queue_full";
    /// A UDP send failed (buffer full, unreachable).
    pub const SEND_FAILED: &str = "send_failed";
    /// Writing to the TUN failed.
    pub const TUN_WRITE_FAILED: &str = "tun_write_failed";
    /// A peer had no endpoint for an outbound packet.
    pub const NO_ENDPOINT: &str = "no_endpoint";
    /// A received datagram did not fit the receive buffer.
    pub const TRUNCATED: &str = "truncated";
}

/// Drop counters. Known reasons get a lock-free slot; the map is only touched on first use of
/// a reason.
#[derive(Default)]
pub struct DropCounters {
    slots: Mutex<BTreeMap<&'static str, &'static AtomicU64>>,
}

impl std::fmt::Debug for DropCounters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.snapshot()).finish()
    }
}

impl DropCounters {
    /// Counts one drop for `reason`.
    pub fn inc(&self, reason: &'static str) {
        self.add(reason, 1);
    }

    /// Counts `n` drops for `reason`.
    pub fn add(&self, reason: &'static str, n: u64) {
        let slot = {
            let mut m = self.slots.lock();
            *m.entry(reason)
                // One leaked counter per distinct reason name: a small fixed set.
                .or_insert_with(|| Box::leak(Box::new(AtomicU64::new(0))))
        };
        slot.fetch_add(n, Ordering::Relaxed);
    }

    /// Every counter.
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.slots
            .lock()
            .iter()
            .map(|(k, v)| (k.to_string(), v.load(Ordering::Relaxed)))
            .collect()
    }

    /// The count for one reason.
    pub fn get(&self, reason: &str) -> u64 {
        self.slots
            .lock()
            .get(reason)
            .map_or(0, |v| v.load(Ordering::Relaxed))
    }
}
