//! TCP framing for hub traffic (the fallback where UDP is blocked): each message, a hub
//! message, a relay frame or a STUN Binding request/response, is preceded by its length as a
//! big-endian u16. Lengths of 0 or above [`MAX_FRAME_BODY`] are refused, so a reader never
//! buffers more than one maximal message and a garbage stream is detected at its first two
//! bytes.

use super::messages::MAX_MESSAGE_LEN;
use super::relay::MAX_RELAY_FRAME;

/// The longest frame body: a relay frame or a hub message, whichever is longer.
pub const MAX_FRAME_BODY: usize = if MAX_RELAY_FRAME > MAX_MESSAGE_LEN {
    MAX_RELAY_FRAME
} else {
    MAX_MESSAGE_LEN
};

/// Bytes of the length prefix.
pub const FRAME_HEADER_LEN: usize = 2;

/// Why a length prefix is refused (the reader closes the connection).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// A zero length: no message is empty.
    #[error("empty frame")]
    Empty,
    /// Longer than any message or relay frame.
    #[error("frame of {0} bytes exceeds the maximum frame length")]
    TooLong(usize),
}

/// The body length announced by a frame header.
pub fn body_len(header: [u8; FRAME_HEADER_LEN]) -> Result<usize, FrameError> {
    match u16::from_be_bytes(header) as usize {
        0 => Err(FrameError::Empty),
        n if n > MAX_FRAME_BODY => Err(FrameError::TooLong(n)),
        n => Ok(n),
    }
}

/// `payload` with its length prefix; `None` if it cannot be framed (empty or too long).
pub fn encode(payload: &[u8]) -> Option<Vec<u8>> {
    if payload.is_empty() || payload.len() > MAX_FRAME_BODY {
        return None;
    }
    let mut out = Vec::with_capacity(FRAME_HEADER_LEN + payload.len());
    out.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    out.extend_from_slice(payload);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_bounds_hold() {
        let f = encode(b"abc").unwrap();
        assert_eq!(f, [0, 3, b'a', b'b', b'c']);
        assert_eq!(body_len([f[0], f[1]]), Ok(3));
        assert_eq!(body_len([0, 0]), Err(FrameError::Empty));
        assert_eq!(body_len([0xFF, 0xFF]), Err(FrameError::TooLong(65535)));
        let max = MAX_FRAME_BODY as u16;
        assert_eq!(body_len(max.to_be_bytes()), Ok(MAX_FRAME_BODY));
        assert!(body_len((max + 1).to_be_bytes()).is_err());
        assert!(encode(&[]).is_none());
        assert!(encode(&vec![0; MAX_FRAME_BODY + 1]).is_none());
        const { assert!(MAX_FRAME_BODY >= MAX_RELAY_FRAME && MAX_FRAME_BODY >= MAX_MESSAGE_LEN) };
    }
}
