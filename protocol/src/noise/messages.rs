//! WireGuard wire messages: parsing by type and exact length into borrowed views, and
//! serialisation into caller-supplied buffers.
//!
//! The first four bytes of every message are the type followed by three reserved zero bytes;
//! read as a little-endian `u32` (as wireguard-go does) a message with non-zero reserved bytes
//! is simply of an unknown type.

use crate::noise::crypto::{MAC_LEN, TAG_LEN, XNONCE_LEN};

/// Message type of a handshake initiation.
pub const TYPE_INITIATION: u32 = 1;
/// Message type of a handshake response.
pub const TYPE_RESPONSE: u32 = 2;
/// Message type of a cookie reply.
pub const TYPE_COOKIE_REPLY: u32 = 3;
/// Message type of transport data.
pub const TYPE_TRANSPORT: u32 = 4;

/// Size of a handshake initiation.
pub const INITIATION_LEN: usize = 148;
/// Size of a handshake response.
pub const RESPONSE_LEN: usize = 92;
/// Size of a cookie reply.
pub const COOKIE_REPLY_LEN: usize = 64;
/// Size of the transport data header (type, receiver index, counter).
pub const TRANSPORT_HEADER_LEN: usize = 16;
/// Smallest transport message: header and the tag of an empty (keepalive) payload.
pub const TRANSPORT_MIN_LEN: usize = TRANSPORT_HEADER_LEN + TAG_LEN;
/// Transport overhead added to every inner packet (header + tag).
pub const TRANSPORT_OVERHEAD: usize = TRANSPORT_HEADER_LEN + TAG_LEN;
/// The largest transport message accepted: a UDP payload can carry at most this much.
pub const TRANSPORT_MAX_LEN: usize = 65535 - 8;

/// Why a datagram is not a WireGuard message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Shorter than the four-byte type field.
    #[error("datagram too short for a message header ({0} bytes)")]
    TooShort(usize),
    /// The type is not 1–4, or the reserved bytes are not zero.
    #[error("unknown message type {0:#010x}")]
    UnknownType(u32),
    /// The type is known but the length is not the one it requires.
    #[error("message type {kind} with wrong length {len}")]
    WrongLength {
        /// The message type.
        kind: u32,
        /// The length received.
        len: usize,
    },
}

/// A parsed message, borrowing the datagram.
#[derive(Debug, Clone, Copy)]
pub enum Message<'a> {
    /// Handshake initiation.
    Initiation(Initiation<'a>),
    /// Handshake response.
    Response(Response<'a>),
    /// Cookie reply.
    CookieReply(CookieReply<'a>),
    /// Transport data.
    Transport(Transport<'a>),
}

impl<'a> Message<'a> {
    /// Parses a datagram by type and exact length. Never panics.
    pub fn parse(buf: &'a [u8]) -> Result<Self, ParseError> {
        if buf.len() < 4 {
            return Err(ParseError::TooShort(buf.len()));
        }
        let kind = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]);
        let wrong = || ParseError::WrongLength {
            kind,
            len: buf.len(),
        };
        match kind {
            TYPE_INITIATION => buf
                .try_into()
                .map(|b| Message::Initiation(Initiation(b)))
                .map_err(|_| wrong()),
            TYPE_RESPONSE => buf
                .try_into()
                .map(|b| Message::Response(Response(b)))
                .map_err(|_| wrong()),
            TYPE_COOKIE_REPLY => buf
                .try_into()
                .map(|b| Message::CookieReply(CookieReply(b)))
                .map_err(|_| wrong()),
            TYPE_TRANSPORT => {
                if buf.len() < TRANSPORT_MIN_LEN || buf.len() > TRANSPORT_MAX_LEN {
                    Err(wrong())
                } else {
                    Ok(Message::Transport(Transport(buf)))
                }
            }
            other => Err(ParseError::UnknownType(other)),
        }
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("fixed offset"))
}

fn arr<const N: usize>(b: &[u8], at: usize) -> &[u8; N] {
    b[at..at + N].try_into().expect("fixed offset")
}

/// Handshake initiation (148 bytes).
#[derive(Clone, Copy)]
pub struct Initiation<'a>(pub &'a [u8; INITIATION_LEN]);

impl<'a> Initiation<'a> {
    /// Sender index chosen by the initiator.
    pub fn sender(&self) -> u32 {
        u32_at(self.0, 4)
    }
    /// Unencrypted ephemeral public key.
    pub fn ephemeral(&self) -> &'a [u8; 32] {
        arr(self.0, 8)
    }
    /// Encrypted static public key (32 + 16).
    pub fn encrypted_static(&self) -> &'a [u8; 32 + TAG_LEN] {
        arr(self.0, 40)
    }
    /// Encrypted TAI64N timestamp (12 + 16).
    pub fn encrypted_timestamp(&self) -> &'a [u8; 12 + TAG_LEN] {
        arr(self.0, 88)
    }
    /// The whole message.
    pub fn bytes(&self) -> &'a [u8] {
        self.0
    }
}

impl std::fmt::Debug for Initiation<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Initiation")
            .field("sender", &self.sender())
            .finish_non_exhaustive()
    }
}

/// Handshake response (92 bytes).
#[derive(Clone, Copy)]
pub struct Response<'a>(pub &'a [u8; RESPONSE_LEN]);

impl<'a> Response<'a> {
    /// Sender index chosen by the responder.
    pub fn sender(&self) -> u32 {
        u32_at(self.0, 4)
    }
    /// The initiator's sender index, echoed.
    pub fn receiver(&self) -> u32 {
        u32_at(self.0, 8)
    }
    /// Unencrypted ephemeral public key.
    pub fn ephemeral(&self) -> &'a [u8; 32] {
        arr(self.0, 12)
    }
    /// Encrypted empty payload (the tag alone).
    pub fn encrypted_nothing(&self) -> &'a [u8; TAG_LEN] {
        arr(self.0, 44)
    }
    /// The whole message.
    pub fn bytes(&self) -> &'a [u8] {
        self.0
    }
}

impl std::fmt::Debug for Response<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Response")
            .field("sender", &self.sender())
            .field("receiver", &self.receiver())
            .finish_non_exhaustive()
    }
}

/// Cookie reply (64 bytes).
#[derive(Clone, Copy)]
pub struct CookieReply<'a>(pub &'a [u8; COOKIE_REPLY_LEN]);

impl<'a> CookieReply<'a> {
    /// Sender index of the message this reply answers.
    pub fn receiver(&self) -> u32 {
        u32_at(self.0, 4)
    }
    /// Random XChaCha20 nonce.
    pub fn nonce(&self) -> &'a [u8; XNONCE_LEN] {
        arr(self.0, 8)
    }
    /// Encrypted cookie (16 + 16).
    pub fn encrypted_cookie(&self) -> &'a [u8; MAC_LEN + TAG_LEN] {
        arr(self.0, 32)
    }
}

impl std::fmt::Debug for CookieReply<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CookieReply")
            .field("receiver", &self.receiver())
            .finish_non_exhaustive()
    }
}

/// Transport data (header + ciphertext + tag, at least 32 bytes).
#[derive(Clone, Copy)]
pub struct Transport<'a>(pub &'a [u8]);

impl<'a> Transport<'a> {
    /// Our index, chosen by us during the handshake.
    pub fn receiver(&self) -> u32 {
        u32_at(self.0, 4)
    }
    /// Nonce counter.
    pub fn counter(&self) -> u64 {
        u64::from_le_bytes(self.0[8..16].try_into().expect("fixed offset"))
    }
    /// Ciphertext followed by the tag.
    pub fn sealed(&self) -> &'a [u8] {
        &self.0[TRANSPORT_HEADER_LEN..]
    }
    /// The whole message.
    pub fn bytes(&self) -> &'a [u8] {
        self.0
    }
}

impl std::fmt::Debug for Transport<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("receiver", &self.receiver())
            .field("counter", &self.counter())
            .field("len", &self.0.len())
            .finish()
    }
}

/// Offset of mac1 in a message of `len` bytes (initiation or response).
pub const fn mac1_offset(len: usize) -> usize {
    len - 2 * MAC_LEN
}

/// Offset of mac2 in a message of `len` bytes (initiation or response).
pub const fn mac2_offset(len: usize) -> usize {
    len - MAC_LEN
}

/// Writes the type and zero reserved bytes.
pub fn write_type(buf: &mut [u8], kind: u32) {
    buf[..4].copy_from_slice(&kind.to_le_bytes());
}

/// Writes a transport header into `buf[..16]`.
pub fn write_transport_header(buf: &mut [u8], receiver: u32, counter: u64) {
    write_type(buf, TYPE_TRANSPORT);
    buf[4..8].copy_from_slice(&receiver.to_le_bytes());
    buf[8..16].copy_from_slice(&counter.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_lengths() {
        let mut b = [0u8; 200];
        for (kind, len) in [(1u32, 148usize), (2, 92), (3, 64)] {
            write_type(&mut b, kind);
            assert!(Message::parse(&b[..len]).is_ok());
            assert_eq!(
                Message::parse(&b[..len - 1]).unwrap_err(),
                ParseError::WrongLength { kind, len: len - 1 }
            );
            assert!(Message::parse(&b[..len + 1]).is_err());
        }
        write_type(&mut b, 4);
        assert!(Message::parse(&b[..31]).is_err());
        assert!(Message::parse(&b[..32]).is_ok());
        assert!(Message::parse(&b[..200]).is_ok());
    }

    #[test]
    fn rejects_reserved_and_unknown() {
        let mut b = [0u8; 148];
        b[0] = 1;
        b[2] = 1;
        assert!(matches!(
            Message::parse(&b),
            Err(ParseError::UnknownType(_))
        ));
        b[2] = 0;
        b[0] = 5;
        assert!(matches!(
            Message::parse(&b),
            Err(ParseError::UnknownType(5))
        ));
        assert!(matches!(
            Message::parse(&b[..3]),
            Err(ParseError::TooShort(3))
        ));
        assert!(matches!(Message::parse(&[]), Err(ParseError::TooShort(0))));
    }

    #[test]
    fn transport_fields() {
        let mut b = [0u8; 48];
        write_transport_header(&mut b, 0xdead_beef, 0x0102_0304_0506_0708);
        match Message::parse(&b).unwrap() {
            Message::Transport(t) => {
                assert_eq!(t.receiver(), 0xdead_beef);
                assert_eq!(t.counter(), 0x0102_0304_0506_0708);
                assert_eq!(t.sealed().len(), 32);
            }
            _ => panic!("not transport"),
        }
    }
}
