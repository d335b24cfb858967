//! Relayed WireGuard in the data plane: peers reached through a hub's relay channel
//! (`protocol::hub::relay`) get a stand-in endpoint address, so the WireGuard state machine,
//! roaming and the path machine deal in plain socket addresses while the socket layer adds
//! and strips the relay header.
//!
//! The stand-in is `[fd7f:7672:6c79:HUB::CHANNEL]:9`: a unique-local IPv6 prefix
//! (`fd7f:7672:6c79::/48`, "vrly") with the hub's index among the NatActor's servers and
//! the channel number. Sending to one writes `F1 'V' 'R' 'L' | channel | message` to the
//! hub's real address; a relay frame from a hub arrives as the WireGuard message it carries,
//! from that hub's stand-in address for the channel, so a peer's endpoint follows it onto the
//! relay and back like any roaming (the hub only forwards between the channel's two ends, and
//! WireGuard authenticates what it forwards).
//!
//! A hub reached over TCP (its UDP is blocked) carries relay frames on the same connection as
//! its control messages: [`RelayHubs::set_tcp`] gives the hub's entry a [`TcpSink`], and
//! frames for its stand-ins are queued there instead of sent over UDP. Frames read from the
//! connection enter the receive path as if they had come from the hub over UDP.
//!
//! A real peer address inside `fd7f:7672:6c79::/48` would be taken for a relay; the prefix is
//! a random-looking unique-local one to make that unlikely, and such an address is refused as
//! an `endpoint` nowhere, only misrouted.

use arc_swap::ArcSwap;
use parking_lot::Mutex;
use protocol::hub::outbox::{Outbox, Pushed};
use protocol::hub::relay::{write_header, MAX_RELAY_FRAME, RELAY_HEADER_LEN};
use std::net::{Ipv6Addr, SocketAddr, SocketAddrV6};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::Notify;

/// Bytes queued for a hub's TCP connection before the oldest frames are dropped: ~170
/// full-size packets, a few milliseconds of a fast tunnel. More would only add queueing delay
/// for TCP inside the tunnel (TCP in TCP); the connection's own socket buffer holds more.
pub const TCP_OUTBOX_BYTES: usize = 256 * 1024;

/// The first 48 bits of every stand-in address.
const PREFIX: [u16; 3] = [0xfd7f, 0x7672, 0x6c79];
/// The port of every stand-in address (the discard port: nothing real is reached there).
const PORT: u16 = 9;

/// The stand-in endpoint for `channel` on the hub with index `hub`.
pub fn stand_in(hub: u16, channel: u32) -> SocketAddr {
    let ip = Ipv6Addr::new(
        PREFIX[0],
        PREFIX[1],
        PREFIX[2],
        hub,
        0,
        0,
        (channel >> 16) as u16,
        channel as u16,
    );
    SocketAddr::V6(SocketAddrV6::new(ip, PORT, 0, 0))
}

/// The hub index and channel of a stand-in address; `None` for any other address.
pub fn parse_stand_in(addr: &SocketAddr) -> Option<(u16, u32)> {
    let SocketAddr::V6(v6) = addr else {
        return None;
    };
    let s = v6.ip().segments();
    if s[..3] != PREFIX || s[4..6] != [0, 0] || v6.port() != PORT {
        return None;
    }
    let channel = (u32::from(s[6]) << 16) | u32::from(s[7]);
    (channel != 0).then_some((s[3], channel))
}

/// The queue of frames for a hub's TCP connection, filled by the data plane and the NAT
/// actor, emptied by the connection's writer (`actors::nat::hub_tcp`).
#[derive(Debug)]
pub struct TcpSink {
    outbox: Mutex<Outbox>,
    wake: Notify,
    /// Frames dropped from the head of the queue to make room.
    pub dropped: AtomicU64,
}

impl Default for TcpSink {
    fn default() -> Self {
        TcpSink {
            outbox: Mutex::new(Outbox::new(TCP_OUTBOX_BYTES)),
            wake: Notify::new(),
            dropped: AtomicU64::new(0),
        }
    }
}

impl TcpSink {
    /// Queues `head` + `body` as one length-prefixed frame without waiting; false if it
    /// cannot be framed. Older frames may be dropped to make room.
    pub fn push(&self, head: &[u8], body: &[u8]) -> bool {
        let r = self.outbox.lock().push(head, body);
        match r {
            Pushed::Queued { dropped } => {
                if dropped > 0 {
                    self.dropped.fetch_add(dropped as u64, Ordering::Relaxed);
                }
                self.wake.notify_one();
                true
            }
            Pushed::Refused => false,
        }
    }

    /// Moves everything queued into `out` (empty; its capacity is reused), waiting until
    /// something is.
    pub async fn take(&self, out: &mut Vec<u8>) {
        loop {
            self.outbox.lock().take(out);
            if !out.is_empty() {
                return;
            }
            self.wake.notified().await;
        }
    }
}

/// One hub as the data plane reaches it.
#[derive(Debug, Clone, Default)]
struct HubRoute {
    addr: Option<SocketAddr>,
    /// Set while the hub is reached over TCP: frames go there instead.
    tcp: Option<Arc<TcpSink>>,
}

/// Where a datagram to a relay stand-in went ([`RelayHubs::frame`]).
#[derive(Debug)]
pub enum Relayed<'a> {
    /// Send this frame over UDP to the hub's address.
    Udp(&'a [u8], SocketAddr),
    /// Queued on the hub's TCP connection.
    Queued,
    /// The hub is gone or the message is too big to relay (count a failed send).
    Failed,
}

/// The hubs' real addresses by index, as the NatActor numbers them (set by it; empty
/// without hubs). Read per relayed datagram; replaced only when the hub list or a hub's
/// transport changes.
#[derive(Debug, Default)]
pub struct RelayHubs {
    hubs: ArcSwap<Vec<HubRoute>>,
}

impl RelayHubs {
    /// Replaces the list (index = the NatActor's server index; `None` for a server that is
    /// not a hub or not resolved). A hub whose address is unchanged keeps its TCP sink.
    pub fn set(&self, hubs: Vec<Option<SocketAddr>>) {
        let old = self.hubs.load();
        let new = hubs
            .into_iter()
            .enumerate()
            .map(|(i, addr)| HubRoute {
                addr,
                tcp: old
                    .get(i)
                    .filter(|o| o.addr == addr)
                    .and_then(|o| o.tcp.clone()),
            })
            .collect();
        self.hubs.store(Arc::new(new));
    }

    /// Routes hub `i`'s relay frames to `sink` (its TCP connection), or back to UDP with
    /// `None`.
    pub fn set_tcp(&self, i: u16, sink: Option<Arc<TcpSink>>) {
        let mut hubs = Vec::clone(&self.hubs.load());
        if let Some(h) = hubs.get_mut(usize::from(i)) {
            h.tcp = sink;
            self.hubs.store(Arc::new(hubs));
        }
    }

    /// The hub with index `i`.
    pub fn addr(&self, i: u16) -> Option<SocketAddr> {
        self.hubs.load().get(usize::from(i)).and_then(|h| h.addr)
    }

    /// `tcp` or `udp`: how hub `i` is reached now.
    pub fn transport(&self, i: u16) -> &'static str {
        match self.hubs.load().get(usize::from(i)) {
            Some(HubRoute { tcp: Some(_), .. }) => "tcp",
            _ => "udp",
        }
    }

    /// The index of the hub at `addr`.
    pub fn index_of(&self, addr: &SocketAddr) -> Option<u16> {
        let hubs = self.hubs.load();
        let i = hubs.iter().position(|h| h.addr.as_ref() == Some(addr))?;
        u16::try_from(i).ok()
    }

    /// For a datagram to `dst`: `None` when `dst` is a real address; for a stand-in, the
    /// relay frame of `msg` written into `out` with the hub to send it to over UDP, or
    /// queued on the hub's TCP connection, or failed.
    pub fn frame<'a>(
        &self,
        dst: &SocketAddr,
        msg: &[u8],
        out: &'a mut [u8; MAX_RELAY_FRAME],
    ) -> Option<Relayed<'a>> {
        let (hub, channel) = parse_stand_in(dst)?;
        let len = RELAY_HEADER_LEN + msg.len();
        let hubs = self.hubs.load();
        let Some(route) = hubs
            .get(usize::from(hub))
            .filter(|_| len <= MAX_RELAY_FRAME)
        else {
            return Some(Relayed::Failed);
        };
        let mut h = [0u8; RELAY_HEADER_LEN];
        write_header(channel, &mut h);
        if let Some(tcp) = &route.tcp {
            return Some(if tcp.push(&h, msg) {
                Relayed::Queued
            } else {
                Relayed::Failed
            });
        }
        let Some(to) = route.addr else {
            return Some(Relayed::Failed);
        };
        out[..RELAY_HEADER_LEN].copy_from_slice(&h);
        out[RELAY_HEADER_LEN..len].copy_from_slice(msg);
        Some(Relayed::Udp(&out[..len], to))
    }

    /// For a relay frame received from `src`: the stand-in source and the offset of the
    /// WireGuard message in it. `None` when `src` is not one of our hubs or the frame does
    /// not parse (the caller drops and counts it).
    pub fn unwrap(&self, frame: &[u8], src: &SocketAddr) -> Option<(SocketAddr, usize)> {
        let hub = self.index_of(src)?;
        let (channel, _) = protocol::hub::relay::parse(frame).ok()?;
        Some((stand_in(hub, channel), RELAY_HEADER_LEN))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stand_ins_round_trip_and_real_addresses_are_not_taken_for_them() {
        let a = stand_in(3, 0xDEAD_BEEF);
        assert_eq!(a.to_string(), "[fd7f:7672:6c79:3::dead:beef]:9");
        assert_eq!(parse_stand_in(&a), Some((3, 0xDEAD_BEEF)));
        for real in [
            "203.0.113.5:51820",
            "[fd7f:7672:6c79:3::dead:beef]:51820",
            "[2001:db8::1]:9",
        ] {
            assert_eq!(parse_stand_in(&real.parse().unwrap()), None, "{real}");
        }
        assert_eq!(
            parse_stand_in(&stand_in(1, 0)),
            None,
            "channel 0 is never handed out"
        );
    }

    #[test]
    fn frames_go_to_the_hub_and_come_back_from_the_stand_in() {
        let hubs = RelayHubs::default();
        let hub: SocketAddr = "198.18.0.3:3478".parse().unwrap();
        hubs.set(vec![None, Some(hub)]);
        let mut msg = vec![7u8; 96];
        msg[..4].copy_from_slice(&[4, 0, 0, 0]);
        let mut out = [0u8; MAX_RELAY_FRAME];
        let dst = stand_in(1, 42);
        let Some(Relayed::Udp(frame, to)) = hubs.frame(&dst, &msg, &mut out) else {
            panic!("not sent over UDP");
        };
        assert_eq!(to, hub);
        assert_eq!(&frame[RELAY_HEADER_LEN..], &msg[..]);
        let frame = frame.to_vec();
        assert_eq!(hubs.unwrap(&frame, &hub), Some((dst, RELAY_HEADER_LEN)));
        // From anyone but the hub, or for a hub that is gone: not ours.
        assert_eq!(
            hubs.unwrap(&frame, &"198.18.0.4:3478".parse().unwrap()),
            None
        );
        assert!(matches!(
            hubs.frame(&stand_in(0, 42), &msg, &mut out),
            Some(Relayed::Failed)
        ));
        assert!(hubs.frame(&hub, &msg, &mut out).is_none(), "a real address");
        let big = vec![4u8; MAX_RELAY_FRAME];
        assert!(matches!(
            hubs.frame(&dst, &big, &mut out),
            Some(Relayed::Failed)
        ));
        assert_eq!(hubs.transport(1), "udp");
    }

    #[tokio::test]
    async fn a_hub_on_tcp_gets_its_frames_queued_on_the_connection_until_it_is_back_on_udp() {
        let hubs = RelayHubs::default();
        let hub: SocketAddr = "198.18.0.3:3478".parse().unwrap();
        hubs.set(vec![Some(hub)]);
        let sink = Arc::new(TcpSink::default());
        hubs.set_tcp(0, Some(sink.clone()));
        assert_eq!(hubs.transport(0), "tcp");
        // The same address again (a re-resolution) keeps the connection.
        hubs.set(vec![Some(hub)]);
        let mut msg = vec![7u8; 96];
        msg[..4].copy_from_slice(&[4, 0, 0, 0]);
        let mut out = [0u8; MAX_RELAY_FRAME];
        assert!(matches!(
            hubs.frame(&stand_in(0, 42), &msg, &mut out),
            Some(Relayed::Queued)
        ));
        let mut queued = Vec::new();
        sink.take(&mut queued).await;
        let n = protocol::hub::frame::body_len([queued[0], queued[1]]).unwrap();
        assert_eq!(n, RELAY_HEADER_LEN + msg.len());
        assert_eq!(
            protocol::hub::relay::parse(&queued[2..]).unwrap().0,
            42,
            "the channel travels in the frame"
        );
        hubs.set_tcp(0, None);
        assert!(matches!(
            hubs.frame(&stand_in(0, 42), &msg, &mut out),
            Some(Relayed::Udp(_, to)) if to == hub
        ));
    }
}
