//! Sorting a datagram received on the WireGuard UDP socket before WireGuard sees it.
//!
//! One socket carries WireGuard, STUN answers (so the mapping STUN reports is the tunnel's own),
//! path probes and, later, hub and relay frames. The first bytes tell them apart:
//!
//! | byte 0      | bytes 1..4        | bytes 4..8    | kind                              |
//! |-------------|-------------------|---------------|-----------------------------------|
//! | 0x01..=0x04 | 00 00 00          | any           | WireGuard (and its exact lengths) |
//! | 0x00..=0x3F | type low, length  | 21 12 A4 42   | STUN (RFC 8489 header)            |
//! | 0xF0        | `V` `P` `N`       | any           | path probe ([`PROBE_MAGIC`])       |
//! | 0xF1        | `V` `R` `L`       | any           | relay frame ([`crate::hub::relay`])|
//! | 0xF2        | `V` `H` `B`       | any           | hub message, reserved ([`HUB_MAGIC`]) |
//!
//! WireGuard is tested first and only by its own fixed rules, so a WireGuard message is never
//! taken for anything else even when its receiver index happens to equal STUN's cookie (a
//! WireGuard type byte is 1–4 and STUN's bytes 1..4 are never `00 00 00` with a valid length,
//! but checking WireGuard first makes that independent of STUN's details). The magics start
//! at 0xF0, outside both 0x00–0x3F (STUN) and 0x01–0x04 (WireGuard).

use crate::noise::messages::{
    COOKIE_REPLY_LEN, INITIATION_LEN, RESPONSE_LEN, TRANSPORT_MAX_LEN, TRANSPORT_MIN_LEN,
};

/// The first four bytes of every path probe.
pub const PROBE_MAGIC: [u8; 4] = [0xF0, b'V', b'P', b'N'];
/// The first four bytes of every relay frame ([`crate::hub::relay`]).
pub const RELAY_MAGIC: [u8; 4] = [0xF1, b'V', b'R', b'L'];
/// Reserved for hub messages sent over the WireGuard socket.
pub const HUB_MAGIC: [u8; 4] = crate::hub::messages::MAGIC;
/// STUN's magic cookie (RFC 8489 §5), big-endian at bytes 4..8.
pub const STUN_MAGIC_COOKIE: [u8; 4] = [0x21, 0x12, 0xA4, 0x42];
/// A STUN header is 20 bytes.
pub const STUN_HEADER_LEN: usize = 20;

/// What a received datagram is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A WireGuard message of a known type and valid length.
    WireGuard,
    /// A STUN message (header and length consistent).
    Stun,
    /// A path probe ([`PROBE_MAGIC`]); it still has to open.
    Probe,
    /// A hub message ([`HUB_MAGIC`]).
    Hub,
    /// A relay frame ([`RELAY_MAGIC`]).
    Relay,
    /// Anything else: drop and count.
    Junk,
}

/// Classifies `d` by its first bytes and length. No allocation, a handful of comparisons.
pub fn classify(d: &[u8]) -> Kind {
    if d.len() < 4 {
        return Kind::Junk;
    }
    if d[1] == 0 && d[2] == 0 && d[3] == 0 {
        let wg_len_ok = match d[0] {
            1 => d.len() == INITIATION_LEN,
            2 => d.len() == RESPONSE_LEN,
            3 => d.len() == COOKIE_REPLY_LEN,
            4 => (TRANSPORT_MIN_LEN..=TRANSPORT_MAX_LEN).contains(&d.len()),
            _ => false,
        };
        if wg_len_ok {
            return Kind::WireGuard;
        }
    }
    if d[0] & 0xC0 == 0 && d.len() >= STUN_HEADER_LEN && d[4..8] == STUN_MAGIC_COOKIE {
        let body = u16::from_be_bytes([d[2], d[3]]) as usize;
        if body % 4 == 0 && body + STUN_HEADER_LEN == d.len() {
            return Kind::Stun;
        }
        return Kind::Junk;
    }
    let head = [d[0], d[1], d[2], d[3]];
    match head {
        PROBE_MAGIC => Kind::Probe,
        HUB_MAGIC => Kind::Hub,
        RELAY_MAGIC => Kind::Relay,
        _ => Kind::Junk,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn wg(ty: u8, len: usize, fill: u8) -> Vec<u8> {
        let mut v = vec![fill; len];
        v[0] = ty;
        v[1..4].fill(0);
        v
    }

    #[test]
    fn wireguard_messages_by_type_and_length() {
        assert_eq!(classify(&wg(1, 148, 7)), Kind::WireGuard);
        assert_eq!(classify(&wg(2, 92, 7)), Kind::WireGuard);
        assert_eq!(classify(&wg(3, 64, 7)), Kind::WireGuard);
        assert_eq!(classify(&wg(4, 32, 7)), Kind::WireGuard);
        assert_eq!(classify(&wg(1, 147, 7)), Kind::Junk);
        assert_eq!(classify(&wg(4, 31, 7)), Kind::Junk);
        assert_eq!(classify(&wg(5, 148, 7)), Kind::Junk);
    }

    #[test]
    fn wireguard_with_cookie_as_receiver_index_stays_wireguard() {
        let mut m = wg(4, 64, 0);
        m[4..8].copy_from_slice(&STUN_MAGIC_COOKIE);
        assert_eq!(classify(&m), Kind::WireGuard);
    }

    #[test]
    fn stun_header_needs_cookie_and_consistent_length() {
        let mut m = vec![0u8; 32];
        m[0] = 0x01;
        m[1] = 0x01; // Binding success response
        m[2..4].copy_from_slice(&12u16.to_be_bytes());
        m[4..8].copy_from_slice(&STUN_MAGIC_COOKIE);
        assert_eq!(classify(&m), Kind::Stun);
        m[2..4].copy_from_slice(&16u16.to_be_bytes());
        assert_eq!(classify(&m), Kind::Junk, "length field disagrees");
        m[2..4].copy_from_slice(&12u16.to_be_bytes());
        m[4] ^= 1;
        assert_eq!(classify(&m), Kind::Junk, "no cookie");
    }

    #[test]
    fn magics_and_short_input() {
        let mut m = vec![0u8; 40];
        m[..4].copy_from_slice(&PROBE_MAGIC);
        assert_eq!(classify(&m), Kind::Probe);
        m[..4].copy_from_slice(&HUB_MAGIC);
        assert_eq!(classify(&m), Kind::Hub);
        m[..4].copy_from_slice(&RELAY_MAGIC);
        assert_eq!(classify(&m), Kind::Relay);
        assert_eq!(classify(&[]), Kind::Junk);
        assert_eq!(classify(&[1, 0, 0]), Kind::Junk);
    }

    proptest! {
        /// No valid WireGuard message, whatever its body, is classified as anything else.
        #[test]
        fn wireguard_always_wireguard(
            ty in 1u8..=4,
            body in proptest::collection::vec(any::<u8>(), 0..1500),
        ) {
            let len = match ty {
                1 => INITIATION_LEN,
                2 => RESPONSE_LEN,
                3 => COOKIE_REPLY_LEN,
                _ => TRANSPORT_MIN_LEN + body.len(),
            };
            let mut m = vec![0u8; len];
            for (i, b) in m.iter_mut().enumerate().skip(4) {
                *b = body.get(i % body.len().max(1)).copied().unwrap_or(0);
            }
            m[0] = ty;
            prop_assert_eq!(classify(&m), Kind::WireGuard);
        }

        /// Arbitrary input never panics, and anything not starting with a WireGuard header is
        /// never WireGuard.
        #[test]
        fn arbitrary_input(d in proptest::collection::vec(any::<u8>(), 0..200)) {
            let k = classify(&d);
            if k == Kind::WireGuard {
                prop_assert!((1..=4).contains(&d[0]) && d[1..4] == [0, 0, 0]);
            }
        }
    }
}
