//! Forwarding relay frames (`protocol::hub::relay`): the data path. A frame is checked (relay
//! header, a WireGuard message inside, a channel the sender is an end of, the sender's byte
//! budget) and sent on, unchanged, to the other end's registered source. The hub never holds
//! a key that opens it.
//!
//! No lock shared between clients is taken per frame: the routing snapshot is swapped whole
//! (`ArcSwap`) only when channels change and read without a lock, and a budget is per client.
//! Counters are atomics.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use protocol::hub::relay;

use super::Shared;
use crate::engine::relay::Routes;
use crate::engine::{Origin, Transport};

macro_rules! relay_counters {
    ($($(#[doc = $doc:literal])* $name:ident,)*) => {
        /// The data path's counters (shown with the hub's in the stats line and endpoint).
        #[derive(Debug, Default)]
        pub struct RelayCounters {
            $($(#[doc = $doc])* pub $name: AtomicU64,)*
        }

        impl RelayCounters {
            /// `(name, value)` pairs in declaration order.
            pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
                [$((stringify!($name), self.$name.load(Ordering::Relaxed)),)*].into_iter()
            }
        }
    };
}

relay_counters! {
    /// Relay frames forwarded.
    relay_frames,
    /// Relay bytes forwarded (frames, headers included).
    relay_bytes,
    /// Dropped relay frames: not a relay header with a WireGuard message, or too long.
    drop_relay_malformed,
    /// Dropped relay frames: no such channel (closed, never opened, or the relay is off).
    drop_relay_no_channel,
    /// Dropped relay frames: the sender is not an end of the channel.
    drop_relay_not_end,
    /// Dropped relay frames: over the sender's byte budget (`relay.rate_mbit`).
    drop_relay_rate,
    /// Dropped relay frames: the send failed (the receiving end's TCP connection is gone).
    drop_relay_send,
    /// Frames (relayed or replies) dropped from a TCP client's queue to make room for newer
    /// ones: the client reads slower than it is sent to (head drop, 256 KiB per client).
    drop_tcp_queue,
}

fn inc(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

impl Shared {
    /// Replaces the routing snapshot.
    pub fn set_routes(&self, routes: Routes) {
        self.routes.store(Arc::new(routes));
    }

    /// A well-formed frame from `from` that no channel takes: a peer this hub forgot (it
    /// restarted) is told, within the per-source rate. Only this miss path takes the hub's lock.
    pub async fn relay_miss(&self, from: Origin) {
        let mut out = Vec::new();
        self.with_hub(|h| h.relay_miss(from, Instant::now(), &mut out));
        self.dispatch(out).await;
    }

    /// Queues `frame` for TCP connection `id`; false if the connection is gone.
    pub fn tcp_push(&self, id: u64, frame: &[u8]) -> bool {
        match self.tcp.push(id, &[], frame) {
            Some(dropped) => {
                if dropped > 0 {
                    self.relay_counters
                        .drop_tcp_queue
                        .fetch_add(dropped as u64, Ordering::Relaxed);
                }
                true
            }
            None => false,
        }
    }

    /// Where a relay frame from `from` goes, by the routing snapshot `routes` (the caller
    /// loads it once per batch): checks the frame, the channel, the sender and its budget,
    /// counting what it drops.
    pub fn route(&self, routes: &Routes, from: &Origin, frame: &[u8], now: Instant) -> Verdict {
        let c = &self.relay_counters;
        let Ok((channel, _)) = relay::parse(frame) else {
            inc(&c.drop_relay_malformed);
            return Verdict::Dropped;
        };
        match routes.get(&channel).map(|r| r.forward(from)) {
            None => {
                inc(&c.drop_relay_no_channel);
                Verdict::Miss
            }
            Some(None) => {
                inc(&c.drop_relay_not_end);
                Verdict::Miss
            }
            Some(Some((to, budget))) if budget.take(frame.len(), now) => Verdict::Forward(to),
            Some(Some(_)) => {
                inc(&c.drop_relay_rate);
                Verdict::Dropped
            }
        }
    }

    /// Counts `frames` relayed frames of `bytes` bytes in all.
    pub fn relayed(&self, frames: u64, bytes: u64) {
        let c = &self.relay_counters;
        c.relay_frames.fetch_add(frames, Ordering::Relaxed);
        c.relay_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Sends a frame [`Shared::route`] forwarded to `to` on its own (not in a batch).
    pub async fn send_one(&self, to: Origin, frame: &[u8]) {
        let sent = match to.transport {
            Transport::Udp(i) => match self.udp.get(i) {
                Some(sock) => sock.send_to(frame, to.addr).await.is_ok(),
                None => false,
            },
            Transport::Tcp(id) => self.tcp_push(id, frame),
        };
        if sent {
            self.relayed(1, frame.len() as u64);
        } else {
            inc(&self.relay_counters.drop_relay_send);
        }
    }

    /// Forwards one relay frame that arrived from `from` (the TCP path and the portable UDP
    /// path; Linux's UDP path batches, see `super::udp`).
    pub async fn relay(&self, from: Origin, frame: &[u8]) {
        // The snapshot is read and let go before any await.
        let verdict = {
            let routes = self.routes.load();
            self.route(&routes, &from, frame, Instant::now())
        };
        match verdict {
            Verdict::Forward(to) => self.send_one(to, frame).await,
            Verdict::Miss => self.relay_miss(from).await,
            Verdict::Dropped => {}
        }
    }

    /// Counts frames the socket would not take.
    pub fn relay_send_failed(&self, n: u64) {
        self.relay_counters
            .drop_relay_send
            .fetch_add(n, Ordering::Relaxed);
    }
}

/// What to do with one relay frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Send it to this end.
    Forward(Origin),
    /// No channel takes it from this source: tell the source if the hub forgot it.
    Miss,
    /// Dropped (malformed, or over budget); counted.
    Dropped,
}
