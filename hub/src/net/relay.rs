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
    async fn relay_miss(&self, from: Origin) {
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

    /// Forwards one relay frame that arrived from `from`.
    pub async fn relay(&self, from: Origin, frame: &[u8]) {
        let c = &self.relay_counters;
        let Ok((channel, _)) = relay::parse(frame) else {
            inc(&c.drop_relay_malformed);
            return;
        };
        // The snapshot is read and let go before any await.
        let verdict = {
            let routes = self.routes.load();
            match routes.get(&channel).map(|r| r.forward(&from)) {
                None => Err(&c.drop_relay_no_channel),
                Some(None) => Err(&c.drop_relay_not_end),
                Some(Some((to, budget))) if budget.take(frame.len(), Instant::now()) => Ok(to),
                Some(Some(_)) => {
                    inc(&c.drop_relay_rate);
                    return;
                }
            }
        };
        let to = match verdict {
            Ok(to) => to,
            Err(counter) => {
                inc(counter);
                self.relay_miss(from).await;
                return;
            }
        };
        let sent = match to.transport {
            Transport::Udp(i) => match self.udp.get(i) {
                Some(sock) => sock.send_to(frame, to.addr).await.is_ok(),
                None => false,
            },
            Transport::Tcp(id) => self.tcp_push(id, frame),
        };
        if sent {
            inc(&c.relay_frames);
            c.relay_bytes
                .fetch_add(frame.len() as u64, Ordering::Relaxed);
        } else {
            inc(&c.drop_relay_send);
        }
    }
}
