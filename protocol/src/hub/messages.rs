//! Hub message formats. Every message starts with [`MAGIC`]: a first byte of `0xF2` (so
//! neither WireGuard, whose type byte is 1..=4, nor STUN, whose top two bits are zero) and
//! three ASCII bytes `VHB`, then a version byte and a type byte.
//!
//! Parsing is by exact length per type (candidate lists and envelopes carry their own bounded
//! length) into small owned values or borrowed slices: no heap allocation.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The four bytes every hub message starts with.
pub const MAGIC: [u8; 4] = [0xF2, b'V', b'H', b'B'];
/// The only protocol version this code speaks.
pub const VERSION: u8 = 1;
/// Magic, version and type.
pub const HEADER_LEN: usize = 6;
/// Length of a public key on the wire.
pub const KEY_LEN: usize = 32;
/// Length of the hub-issued registration nonce.
pub const NONCE_LEN: usize = 16;
/// Length of the registration proof MAC.
pub const PROOF_LEN: usize = 16;
/// Encoded socket address: family (4 or 6), 16 address bytes (IPv4 in the first 4), port BE.
pub const ADDR_LEN: usize = 19;
/// Most candidates one peer may announce: bounds every message and the hub's tables.
pub const MAX_CANDIDATES: usize = 8;
/// Largest sealed envelope (24-byte nonce, ciphertext and tag) the hub forwards.
pub const MAX_ENVELOPE_LEN: usize = 512;
/// Largest message of any type: a signal with the largest envelope.
pub const MAX_MESSAGE_LEN: usize = HEADER_LEN + 2 * KEY_LEN + 2 + MAX_ENVELOPE_LEN;

const T_HELLO: u8 = 1;
const T_CHALLENGE: u8 = 2;
const T_REGISTER: u8 = 3;
const T_REGISTERED: u8 = 4;
const T_LOOKUP: u8 = 5;
const T_PRESENCE: u8 = 6;
const T_SIGNAL: u8 = 7;
const T_RELAY_OPEN: u8 = 8;
const T_RELAY_READY: u8 = 9;
const T_UNREGISTERED: u8 = 10;
const T_RELAY_ELSEWHERE: u8 = 11;
const T_VISIT: u8 = 12;

/// Why bytes are not a hub message. The hub counts these and stays silent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Shorter than a header or without the magic.
    #[error("not a hub message")]
    NotHub,
    /// A version this code does not speak.
    #[error("unsupported hub protocol version {0}")]
    Version(u8),
    /// An unknown type byte.
    #[error("unknown hub message type {0}")]
    Type(u8),
    /// The length does not match the type and its length fields.
    #[error("bad length for hub message type {0}")]
    Length(u8),
    /// A field holds a value outside its domain (address family, candidate count, flag).
    #[error("bad field in hub message type {0}")]
    Field(u8),
}

/// Why a message could not be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The output buffer is shorter than the message.
    #[error("output buffer too small")]
    BufferTooSmall,
    /// An envelope longer than [`MAX_ENVELOPE_LEN`].
    #[error("envelope too long")]
    EnvelopeTooLong,
}

/// True when `b` starts like a hub message: the cheap test a datagram demux runs.
pub fn looks_like_hub(b: &[u8]) -> bool {
    b.len() >= HEADER_LEN && b[..4] == MAGIC
}

/// Up to [`MAX_CANDIDATES`] socket addresses, stored inline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidates {
    addrs: [SocketAddr; MAX_CANDIDATES],
    len: u8,
}

impl Default for Candidates {
    fn default() -> Self {
        Self {
            addrs: [SocketAddr::from(([0, 0, 0, 0], 0)); MAX_CANDIDATES],
            len: 0,
        }
    }
}

impl Candidates {
    /// Takes the first [`MAX_CANDIDATES`] of `addrs`; the rest are dropped.
    pub fn from_slice(addrs: &[SocketAddr]) -> Self {
        let mut c = Self::default();
        for a in addrs.iter().take(MAX_CANDIDATES) {
            c.addrs[c.len as usize] = *a;
            c.len += 1;
        }
        c
    }
    /// The candidates.
    pub fn as_slice(&self) -> &[SocketAddr] {
        &self.addrs[..self.len as usize]
    }
    fn encoded_len(&self) -> usize {
        1 + self.len as usize * ADDR_LEN
    }
}

/// A parsed hub message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message<'a> {
    /// Peer → hub: "I am `peer`, challenge me".
    Hello {
        /// The peer's WireGuard public key.
        peer: [u8; KEY_LEN],
    },
    /// Hub → peer: a nonce bound to the source the hello came from.
    Challenge {
        /// Hub-issued nonce.
        nonce: [u8; NONCE_LEN],
    },
    /// Peer → hub: registration with proof of the private key.
    Register {
        /// The peer's WireGuard public key.
        peer: [u8; KEY_LEN],
        /// The nonce from the challenge.
        nonce: [u8; NONCE_LEN],
        /// [`super::seal::registration_proof`].
        proof: [u8; PROOF_LEN],
        /// The peer's announced local candidates.
        candidates: Candidates,
    },
    /// Hub → peer: registered; the source the hub saw and how long the registration lives.
    Registered {
        /// Server-reflexive address of the peer.
        observed: SocketAddr,
        /// Seconds until the registration expires unless renewed.
        ttl_secs: u16,
    },
    /// Peer → hub: where is `peer`?
    Lookup {
        /// The key looked up.
        peer: [u8; KEY_LEN],
    },
    /// Hub → peer: the answer to a lookup.
    Presence {
        /// The key looked up.
        peer: [u8; KEY_LEN],
        /// Its observed address, `None` when offline.
        observed: Option<SocketAddr>,
        /// Its announced candidates (empty when offline).
        candidates: Candidates,
    },
    /// Peer → hub → peer: a sealed envelope from `from` to `to`.
    Signal {
        /// Recipient's public key.
        to: [u8; KEY_LEN],
        /// Sender's public key (the hub checks it is the registered sender).
        from: [u8; KEY_LEN],
        /// [`super::seal::seal_envelope`] output, opaque to the hub.
        envelope: &'a [u8],
    },
    /// Peer → hub: open (or look up) the relay channel between me and `peer`.
    RelayOpen {
        /// The other peer's public key.
        peer: [u8; KEY_LEN],
    },
    /// Hub → both peers of a channel: frames on `channel` go to and come from `peer`
    /// ([`super::relay`]).
    RelayReady {
        /// The other peer of the channel.
        peer: [u8; KEY_LEN],
        /// The channel number (never 0).
        channel: u32,
    },
    /// Peer → hub: like Hello, for a registration made only to relay to a peer homed on this
    /// hub (after RelayElsewhere): the hub keeps it out of the shared store, so the peer's
    /// home (where its presence record points) stays its own hub.
    Visit {
        /// The peer's WireGuard public key.
        peer: [u8; KEY_LEN],
    },
    /// Hub → peer: in answer to a RelayOpen for `peer`, who is registered on another hub
    /// sharing this one's store: relays never forward to each other, so open the channel
    /// there (register with `hub` at `addr`, then RelayOpen). Not authenticated beyond the
    /// hub's own answers: a peer acts on it only by registering with that hub, which must
    /// prove nothing to it but is bound to its key by every registration proof.
    RelayElsewhere {
        /// The peer asked about.
        peer: [u8; KEY_LEN],
        /// That peer's hub's public key.
        hub: [u8; KEY_LEN],
        /// Where that hub listens.
        addr: SocketAddr,
    },
    /// Hub → peer: "your source has no registration here" (the hub restarted, or the
    /// registration lapsed), in answer to a Lookup, Signal, RelayOpen or relay frame from it.
    /// Not authenticated: a peer only registers again because of it, at a bounded rate.
    Unregistered,
}

fn key(b: &[u8], at: usize) -> [u8; KEY_LEN] {
    let mut k = [0; KEY_LEN];
    k.copy_from_slice(&b[at..at + KEY_LEN]);
    k
}

fn parse_addr(b: &[u8], t: u8) -> Result<SocketAddr, ParseError> {
    let port = u16::from_be_bytes([b[17], b[18]]);
    let mut a = [0u8; 16];
    a.copy_from_slice(&b[1..17]);
    match b[0] {
        4 if a[4..].iter().all(|&x| x == 0) => Ok(SocketAddr::new(
            IpAddr::V4(Ipv4Addr::new(a[0], a[1], a[2], a[3])),
            port,
        )),
        6 => Ok(SocketAddr::new(IpAddr::V6(Ipv6Addr::from(a)), port)),
        _ => Err(ParseError::Field(t)),
    }
}

/// Writes `a` in [`ADDR_LEN`] bytes.
pub fn encode_addr(a: &SocketAddr, out: &mut [u8; ADDR_LEN]) {
    *out = [0; ADDR_LEN];
    match a.ip() {
        IpAddr::V4(v4) => {
            out[0] = 4;
            out[1..5].copy_from_slice(&v4.octets());
        }
        IpAddr::V6(v6) => {
            out[0] = 6;
            out[1..17].copy_from_slice(&v6.octets());
        }
    }
    out[17..19].copy_from_slice(&a.port().to_be_bytes());
}

/// Parses candidates at the end of a message: count byte then exactly `count` addresses.
pub(crate) fn parse_candidates(b: &[u8], t: u8) -> Result<Candidates, ParseError> {
    let (&n, rest) = b.split_first().ok_or(ParseError::Length(t))?;
    let n = n as usize;
    if n > MAX_CANDIDATES {
        return Err(ParseError::Field(t));
    }
    if rest.len() != n * ADDR_LEN {
        return Err(ParseError::Length(t));
    }
    let mut c = Candidates::default();
    for chunk in rest.chunks_exact(ADDR_LEN) {
        c.addrs[c.len as usize] = parse_addr(chunk, t)?;
        c.len += 1;
    }
    Ok(c)
}

impl<'a> Message<'a> {
    /// Parses one message (one datagram, or one TCP frame body).
    pub fn parse(b: &'a [u8]) -> Result<Self, ParseError> {
        if !looks_like_hub(b) {
            return Err(ParseError::NotHub);
        }
        if b[4] != VERSION {
            return Err(ParseError::Version(b[4]));
        }
        let t = b[5];
        let body = &b[HEADER_LEN..];
        let exact = |n: usize| {
            if body.len() == n {
                Ok(())
            } else {
                Err(ParseError::Length(t))
            }
        };
        match t {
            T_HELLO => {
                exact(KEY_LEN)?;
                Ok(Self::Hello { peer: key(body, 0) })
            }
            T_CHALLENGE => {
                exact(NONCE_LEN)?;
                let mut nonce = [0; NONCE_LEN];
                nonce.copy_from_slice(body);
                Ok(Self::Challenge { nonce })
            }
            T_REGISTER => {
                let fixed = KEY_LEN + NONCE_LEN + PROOF_LEN;
                if body.len() < fixed {
                    return Err(ParseError::Length(t));
                }
                let mut nonce = [0; NONCE_LEN];
                nonce.copy_from_slice(&body[KEY_LEN..KEY_LEN + NONCE_LEN]);
                let mut proof = [0; PROOF_LEN];
                proof.copy_from_slice(&body[KEY_LEN + NONCE_LEN..fixed]);
                Ok(Self::Register {
                    peer: key(body, 0),
                    nonce,
                    proof,
                    candidates: parse_candidates(&body[fixed..], t)?,
                })
            }
            T_REGISTERED => {
                exact(ADDR_LEN + 2)?;
                Ok(Self::Registered {
                    observed: parse_addr(body, t)?,
                    ttl_secs: u16::from_be_bytes([body[ADDR_LEN], body[ADDR_LEN + 1]]),
                })
            }
            T_LOOKUP => {
                exact(KEY_LEN)?;
                Ok(Self::Lookup { peer: key(body, 0) })
            }
            T_VISIT => {
                exact(KEY_LEN)?;
                Ok(Self::Visit { peer: key(body, 0) })
            }
            T_RELAY_OPEN => {
                exact(KEY_LEN)?;
                Ok(Self::RelayOpen { peer: key(body, 0) })
            }
            T_UNREGISTERED => {
                exact(0)?;
                Ok(Self::Unregistered)
            }
            T_RELAY_ELSEWHERE => {
                exact(2 * KEY_LEN + ADDR_LEN)?;
                Ok(Self::RelayElsewhere {
                    peer: key(body, 0),
                    hub: key(body, KEY_LEN),
                    addr: parse_addr(&body[2 * KEY_LEN..], t)?,
                })
            }
            T_RELAY_READY => {
                exact(KEY_LEN + 4)?;
                let c = &body[KEY_LEN..];
                let channel = u32::from_be_bytes([c[0], c[1], c[2], c[3]]);
                if channel == 0 {
                    return Err(ParseError::Field(t));
                }
                Ok(Self::RelayReady {
                    peer: key(body, 0),
                    channel,
                })
            }
            T_PRESENCE => {
                let fixed = KEY_LEN + 1 + ADDR_LEN;
                if body.len() < fixed {
                    return Err(ParseError::Length(t));
                }
                let candidates = parse_candidates(&body[fixed..], t)?;
                let observed = match body[KEY_LEN] {
                    0 if body[KEY_LEN + 1..fixed].iter().all(|&x| x == 0)
                        && candidates.len == 0 =>
                    {
                        None
                    }
                    1 => Some(parse_addr(&body[KEY_LEN + 1..fixed], t)?),
                    _ => return Err(ParseError::Field(t)),
                };
                Ok(Self::Presence {
                    peer: key(body, 0),
                    observed,
                    candidates,
                })
            }
            T_SIGNAL => {
                let fixed = 2 * KEY_LEN + 2;
                if body.len() < fixed {
                    return Err(ParseError::Length(t));
                }
                let n = u16::from_be_bytes([body[2 * KEY_LEN], body[2 * KEY_LEN + 1]]) as usize;
                if n > MAX_ENVELOPE_LEN {
                    return Err(ParseError::Field(t));
                }
                exact(fixed + n)?;
                Ok(Self::Signal {
                    to: key(body, 0),
                    from: key(body, KEY_LEN),
                    envelope: &body[fixed..],
                })
            }
            other => Err(ParseError::Type(other)),
        }
    }

    /// Exact encoded length.
    pub fn encoded_len(&self) -> usize {
        HEADER_LEN
            + match self {
                Self::Hello { .. }
                | Self::Visit { .. }
                | Self::Lookup { .. }
                | Self::RelayOpen { .. } => KEY_LEN,
                Self::RelayReady { .. } => KEY_LEN + 4,
                Self::RelayElsewhere { .. } => 2 * KEY_LEN + ADDR_LEN,
                Self::Unregistered => 0,
                Self::Challenge { .. } => NONCE_LEN,
                Self::Register { candidates, .. } => {
                    KEY_LEN + NONCE_LEN + PROOF_LEN + candidates.encoded_len()
                }
                Self::Registered { .. } => ADDR_LEN + 2,
                Self::Presence {
                    observed,
                    candidates,
                    ..
                } => {
                    // An offline answer carries no candidates (the parser insists).
                    let c = if observed.is_some() {
                        candidates.encoded_len()
                    } else {
                        1
                    };
                    KEY_LEN + 1 + ADDR_LEN + c
                }
                Self::Signal { envelope, .. } => 2 * KEY_LEN + 2 + envelope.len(),
            }
    }

    /// Writes the message to the front of `out`, returning its length.
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, EncodeError> {
        if let Self::Signal { envelope, .. } = self {
            if envelope.len() > MAX_ENVELOPE_LEN {
                return Err(EncodeError::EnvelopeTooLong);
            }
        }
        let len = self.encoded_len();
        let out = out.get_mut(..len).ok_or(EncodeError::BufferTooSmall)?;
        out[..4].copy_from_slice(&MAGIC);
        out[4] = VERSION;
        let mut w = Writer {
            buf: out,
            at: HEADER_LEN,
        };
        match self {
            Self::Hello { peer } => {
                w.buf[5] = T_HELLO;
                w.put(peer);
            }
            Self::Visit { peer } => {
                w.buf[5] = T_VISIT;
                w.put(peer);
            }
            Self::Challenge { nonce } => {
                w.buf[5] = T_CHALLENGE;
                w.put(nonce);
            }
            Self::Register {
                peer,
                nonce,
                proof,
                candidates,
            } => {
                w.buf[5] = T_REGISTER;
                w.put(peer);
                w.put(nonce);
                w.put(proof);
                w.candidates(candidates);
            }
            Self::Registered { observed, ttl_secs } => {
                w.buf[5] = T_REGISTERED;
                w.addr(observed);
                w.put(&ttl_secs.to_be_bytes());
            }
            Self::Lookup { peer } => {
                w.buf[5] = T_LOOKUP;
                w.put(peer);
            }
            Self::RelayOpen { peer } => {
                w.buf[5] = T_RELAY_OPEN;
                w.put(peer);
            }
            Self::Unregistered => {
                w.buf[5] = T_UNREGISTERED;
            }
            Self::RelayElsewhere { peer, hub, addr } => {
                w.buf[5] = T_RELAY_ELSEWHERE;
                w.put(peer);
                w.put(hub);
                w.addr(addr);
            }
            Self::RelayReady { peer, channel } => {
                w.buf[5] = T_RELAY_READY;
                w.put(peer);
                w.put(&channel.to_be_bytes());
            }
            Self::Presence {
                peer,
                observed,
                candidates,
            } => {
                w.buf[5] = T_PRESENCE;
                w.put(peer);
                match observed {
                    Some(a) => {
                        w.put(&[1]);
                        w.addr(a);
                    }
                    None => w.put(&[0; 1 + ADDR_LEN]),
                }
                if observed.is_some() {
                    w.candidates(candidates);
                } else {
                    w.candidates(&Candidates::default());
                }
            }
            Self::Signal { to, from, envelope } => {
                w.buf[5] = T_SIGNAL;
                w.put(to);
                w.put(from);
                w.put(&(envelope.len() as u16).to_be_bytes());
                w.put(envelope);
            }
        }
        Ok(w.at)
    }
}

struct Writer<'b> {
    buf: &'b mut [u8],
    at: usize,
}

impl Writer<'_> {
    fn put(&mut self, b: &[u8]) {
        self.buf[self.at..self.at + b.len()].copy_from_slice(b);
        self.at += b.len();
    }
    fn addr(&mut self, a: &SocketAddr) {
        let mut e = [0; ADDR_LEN];
        encode_addr(a, &mut e);
        self.put(&e);
    }
    fn candidates(&mut self, c: &Candidates) {
        self.put(&[c.len]);
        for a in c.as_slice() {
            self.addr(a);
        }
    }
}
