//! Relay frames: a WireGuard datagram behind an 8-byte header naming a relay channel, which
//! the hub forwards between the two peers of that channel without being able to read it
//! (docs/hub-protocol.md, "Relay").
//!
//! ```text
//! 0xF1 'V' 'R' 'L' | channel (u32, big-endian) | WireGuard message
//! ```
//!
//! A channel is the hub's number for one pair of registered peers, handed to both by
//! `RelayReady` after either asked with `RelayOpen`. The hub forwards a frame from one peer's
//! registered source to the other's, unchanged: the receiver learns from the channel which
//! peer sent it. The header is short because it comes on top of WireGuard's own 32 bytes and
//! the outer IP and UDP headers: with vpnd's default tunnel MTU of 1420 a relayed frame is
//! 1420 + 32 + 8 + 8 + 20 = 1488 bytes over IPv4 (a hub reached over IPv6 needs a tunnel MTU of
//! at most 1412).

use crate::nat::demux::{classify, Kind, RELAY_MAGIC};

/// Header length: magic and channel.
pub const RELAY_HEADER_LEN: usize = 8;
/// The largest relayed WireGuard message: a transport message of a full 1500-byte inner
/// packet (16 header + 1500 + 16 tag, padded). Bigger frames are refused, which bounds every
/// buffer on the way.
pub const MAX_RELAY_PAYLOAD: usize = 1536;
/// The largest relay frame.
pub const MAX_RELAY_FRAME: usize = RELAY_HEADER_LEN + MAX_RELAY_PAYLOAD;

/// Why bytes are not a relay frame the hub forwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RelayFrameError {
    /// No relay magic, or shorter than the header.
    #[error("not a relay frame")]
    NotRelay,
    /// Channel 0 is never handed out.
    #[error("relay channel 0")]
    NoChannel,
    /// The payload is not a WireGuard message (the relay carries nothing else).
    #[error("relay payload is not a WireGuard message")]
    NotWireGuard,
    /// Longer than [`MAX_RELAY_FRAME`].
    #[error("relay frame too long")]
    TooLong,
}

/// The channel and WireGuard payload of a relay frame.
pub fn parse(frame: &[u8]) -> Result<(u32, &[u8]), RelayFrameError> {
    if frame.len() < RELAY_HEADER_LEN || frame[..4] != RELAY_MAGIC {
        return Err(RelayFrameError::NotRelay);
    }
    if frame.len() > MAX_RELAY_FRAME {
        return Err(RelayFrameError::TooLong);
    }
    let channel = u32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
    if channel == 0 {
        return Err(RelayFrameError::NoChannel);
    }
    let payload = &frame[RELAY_HEADER_LEN..];
    if classify(payload) != Kind::WireGuard {
        return Err(RelayFrameError::NotWireGuard);
    }
    Ok((channel, payload))
}

/// Writes the header for `channel` into the first [`RELAY_HEADER_LEN`] bytes of `out`
/// (the caller puts the WireGuard message after it, so nothing is copied twice).
pub fn write_header(channel: u32, out: &mut [u8; RELAY_HEADER_LEN]) {
    out[..4].copy_from_slice(&RELAY_MAGIC);
    out[4..].copy_from_slice(&channel.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(channel: u32, payload: &[u8]) -> Vec<u8> {
        let mut h = [0u8; RELAY_HEADER_LEN];
        write_header(channel, &mut h);
        let mut v = h.to_vec();
        v.extend_from_slice(payload);
        v
    }

    fn transport(len: usize) -> Vec<u8> {
        let mut v = vec![9u8; len];
        v[..4].copy_from_slice(&[4, 0, 0, 0]);
        v
    }

    #[test]
    fn frames_round_trip_and_carry_only_wireguard() {
        let wg = transport(32 + 1420);
        let f = frame(0xDEAD_BEEF, &wg);
        assert_eq!(f[..4], RELAY_MAGIC);
        assert_eq!(parse(&f), Ok((0xDEAD_BEEF, &wg[..])));
        assert_eq!(classify(&f), Kind::Relay);
        assert_eq!(parse(&frame(0, &wg)), Err(RelayFrameError::NoChannel));
        assert_eq!(
            parse(&frame(7, b"GET / HTTP/1.1\r\n")),
            Err(RelayFrameError::NotWireGuard)
        );
        assert_eq!(parse(&frame(7, &[])), Err(RelayFrameError::NotWireGuard));
        assert_eq!(parse(&f[..7]), Err(RelayFrameError::NotRelay));
        assert_eq!(parse(&wg), Err(RelayFrameError::NotRelay));
        let big = frame(7, &transport(MAX_RELAY_PAYLOAD + 16));
        assert_eq!(parse(&big), Err(RelayFrameError::TooLong));
        assert!(parse(&frame(7, &transport(MAX_RELAY_PAYLOAD))).is_ok());
    }
}
