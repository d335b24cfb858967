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
//! A real peer address inside `fd7f:7672:6c79::/48` would be taken for a relay; the prefix is
//! a random-looking unique-local one to make that unlikely, and such an address is refused as
//! an `endpoint` nowhere, only misrouted.

use arc_swap::ArcSwap;
use protocol::hub::relay::{write_header, MAX_RELAY_FRAME, RELAY_HEADER_LEN};
use std::net::{Ipv6Addr, SocketAddr, SocketAddrV6};
use std::sync::Arc;

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

/// The hubs' real addresses by index, as the NatActor numbers them (set by it; empty
/// without hubs). Read per relayed datagram; replaced only when the hub list changes.
#[derive(Debug, Default)]
pub struct RelayHubs {
    hubs: ArcSwap<Vec<Option<SocketAddr>>>,
}

impl RelayHubs {
    /// Replaces the list (index = the NatActor's server index; `None` for a server that is
    /// not a hub or not resolved).
    pub fn set(&self, hubs: Vec<Option<SocketAddr>>) {
        self.hubs.store(Arc::new(hubs));
    }

    /// The hub with index `i`.
    pub fn addr(&self, i: u16) -> Option<SocketAddr> {
        self.hubs.load().get(usize::from(i)).copied().flatten()
    }

    /// The index of the hub at `addr`.
    pub fn index_of(&self, addr: &SocketAddr) -> Option<u16> {
        let hubs = self.hubs.load();
        let i = hubs.iter().position(|h| h.as_ref() == Some(addr))?;
        u16::try_from(i).ok()
    }

    /// For a datagram to `dst`: if `dst` is a stand-in, the relay frame of `msg` written into
    /// `out` and the hub to send it to. `None` when `dst` is a real address. `Some(None)`
    /// when it is a stand-in whose hub is gone or `msg` is too big to relay (the caller
    /// counts a failed send).
    pub fn frame<'a>(
        &self,
        dst: &SocketAddr,
        msg: &[u8],
        out: &'a mut [u8; MAX_RELAY_FRAME],
    ) -> Option<Option<(&'a [u8], SocketAddr)>> {
        let (hub, channel) = parse_stand_in(dst)?;
        let Some(to) = self.addr(hub) else {
            return Some(None);
        };
        let len = RELAY_HEADER_LEN + msg.len();
        if len > MAX_RELAY_FRAME {
            return Some(None);
        }
        let mut h = [0u8; RELAY_HEADER_LEN];
        write_header(channel, &mut h);
        out[..RELAY_HEADER_LEN].copy_from_slice(&h);
        out[RELAY_HEADER_LEN..len].copy_from_slice(msg);
        Some(Some((&out[..len], to)))
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
        let (frame, to) = hubs.frame(&dst, &msg, &mut out).unwrap().unwrap();
        assert_eq!(to, hub);
        assert_eq!(&frame[RELAY_HEADER_LEN..], &msg[..]);
        let frame = frame.to_vec();
        assert_eq!(hubs.unwrap(&frame, &hub), Some((dst, RELAY_HEADER_LEN)));
        // From anyone but the hub, or for a hub that is gone: not ours.
        assert_eq!(
            hubs.unwrap(&frame, &"198.18.0.4:3478".parse().unwrap()),
            None
        );
        assert!(hubs
            .frame(&stand_in(0, 42), &msg, &mut out)
            .unwrap()
            .is_none());
        assert!(hubs.frame(&hub, &msg, &mut out).is_none(), "a real address");
        let big = vec![4u8; MAX_RELAY_FRAME];
        assert!(hubs.frame(&dst, &big, &mut out).unwrap().is_none());
    }
}
