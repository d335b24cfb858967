//! Transport keypairs: sealing and opening data messages through `&self`.
//!
//! The send counter is atomic and the replay window sits behind a short lock, so several
//! threads can seal and open with one keypair at once; nothing here allocates.

use crate::noise::crypto::{TransportCipher, TAG_LEN};
use crate::noise::handshake::SessionKeys;
use crate::noise::messages::{write_transport_header, Transport, TRANSPORT_HEADER_LEN};
use crate::noise::replay::{DefaultReplayWindow, REJECT_AFTER_MESSAGES};
use parking_lot::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Why a packet could not be sealed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// The output buffer cannot hold header, padded payload and tag.
    #[error("output buffer too small")]
    BufferTooSmall,
    /// The keypair has sent REJECT_AFTER_MESSAGES messages and must not send more.
    #[error("keypair exhausted its nonces")]
    Exhausted,
}

/// Why a transport message could not be opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// The counter was already seen or is too old for the window.
    #[error("replayed or too old counter")]
    Replay,
    /// The counter is at or beyond REJECT_AFTER_MESSAGES: the keypair is used up.
    #[error("counter beyond the keypair's limit")]
    Expired,
    /// Authentication failed.
    #[error("decryption failed")]
    Decrypt,
    /// The output buffer cannot hold the plaintext.
    #[error("output buffer too small")]
    BufferTooSmall,
}

/// Number of padding bytes WireGuard adds to an inner packet of `len` bytes for a tunnel `mtu`.
pub fn padding_for(len: usize, mtu: usize) -> usize {
    if mtu == 0 {
        return (16 - len % 16) % 16;
    }
    let last = if len > mtu { len % mtu } else { len };
    let padded = ((last + 15) & !15).min(mtu.max(last));
    padded - last
}

/// Send counters reserved with [`Keypair::reserve_counters`], handed out in order, each once.
#[derive(Debug, PartialEq, Eq)]
pub struct CounterReservation {
    next: u64,
    end: u64,
}

impl Iterator for CounterReservation {
    type Item = ReservedCounter;

    fn next(&mut self) -> Option<ReservedCounter> {
        (self.next < self.end).then(|| {
            self.next += 1;
            ReservedCounter(self.next - 1)
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = usize::try_from(self.end - self.next).unwrap_or(usize::MAX);
        (n, Some(n))
    }
}

impl ExactSizeIterator for CounterReservation {}

/// One send counter out of a [`CounterReservation`]. Neither `Clone` nor constructible
/// outside this module, and consumed by [`Keypair::seal_in_place_with_counter`], so each
/// nonce seals at most one message.
#[derive(Debug, PartialEq, Eq)]
pub struct ReservedCounter(u64);

impl ReservedCounter {
    /// The counter's value (the nonce it stands for).
    pub fn value(&self) -> u64 {
        self.0
    }
}

/// One direction pair of transport keys with their counters.
pub struct Keypair {
    send: TransportCipher,
    recv: TransportCipher,
    send_counter: AtomicU64,
    replay: Mutex<DefaultReplayWindow>,
    bytes_sent: AtomicU64,
    /// Our index: the receiver field of messages sent to us on this keypair.
    pub local_index: u32,
    /// Their index: the receiver field we write.
    pub remote_index: u32,
    /// When the handshake that made it completed.
    pub created: Instant,
    /// Whether we were the initiator of that handshake.
    pub initiator: bool,
}

impl std::fmt::Debug for Keypair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keypair")
            .field("local_index", &self.local_index)
            .field("remote_index", &self.remote_index)
            .field("initiator", &self.initiator)
            .field("send_counter", &self.send_counter.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Keypair {
    /// Builds a keypair from handshake output.
    pub fn new(keys: &SessionKeys, created: Instant) -> Self {
        Keypair {
            send: TransportCipher::new(&keys.send),
            recv: TransportCipher::new(&keys.recv),
            send_counter: AtomicU64::new(0),
            replay: Mutex::new(DefaultReplayWindow::new()),
            bytes_sent: AtomicU64::new(0),
            local_index: keys.local_index,
            remote_index: keys.remote_index,
            created,
            initiator: keys.initiator,
        }
    }

    /// Messages sent so far (the next counter).
    pub fn sent_messages(&self) -> u64 {
        self.send_counter.load(Ordering::Relaxed)
    }

    /// Plaintext bytes sealed so far (for the volume rekey rule).
    pub fn sent_bytes(&self) -> u64 {
        self.bytes_sent.load(Ordering::Relaxed)
    }

    /// Reserves `n` consecutive counters, so a batch can be sealed in parallel in order. Each
    /// counter comes out of the reservation once, as a [`ReservedCounter`] that sealing
    /// consumes: no counter can be used twice, nor one this keypair did not hand out.
    pub fn reserve_counters(&self, n: u64) -> Result<CounterReservation, SealError> {
        let first = self.send_counter.fetch_add(n, Ordering::Relaxed);
        if first.saturating_add(n) > REJECT_AFTER_MESSAGES {
            // Keep the counter saturated so later calls fail too.
            self.send_counter
                .store(REJECT_AFTER_MESSAGES, Ordering::Relaxed);
            return Err(SealError::Exhausted);
        }
        Ok(CounterReservation {
            next: first,
            end: first + n,
        })
    }

    /// Total length of the message for an inner packet of `len` bytes.
    pub fn sealed_len(len: usize, mtu: usize) -> usize {
        TRANSPORT_HEADER_LEN + len + padding_for(len, mtu) + TAG_LEN
    }

    /// Seals in place with a counter from [`Keypair::reserve_counters`]. `buf[16..16 + len]`
    /// holds the inner packet; the header, padding and tag are written around it. Returns the
    /// message length.
    pub fn seal_in_place_with_counter(
        &self,
        counter: ReservedCounter,
        buf: &mut [u8],
        len: usize,
        mtu: usize,
    ) -> Result<usize, SealError> {
        let padded = len + padding_for(len, mtu);
        let total = TRANSPORT_HEADER_LEN + padded + TAG_LEN;
        if buf.len() < total {
            return Err(SealError::BufferTooSmall);
        }
        let counter = counter.0;
        buf[TRANSPORT_HEADER_LEN + len..TRANSPORT_HEADER_LEN + padded].fill(0);
        write_transport_header(buf, self.remote_index, counter);
        let (body, tag) = buf[TRANSPORT_HEADER_LEN..total].split_at_mut(padded);
        let t = self.send.seal_in_place(counter, body);
        tag.copy_from_slice(&t);
        self.bytes_sent.fetch_add(len as u64, Ordering::Relaxed);
        Ok(total)
    }

    /// Seals in place with the next counter (see [`Keypair::seal_in_place_with_counter`]).
    pub fn seal_in_place(
        &self,
        buf: &mut [u8],
        len: usize,
        mtu: usize,
    ) -> Result<usize, SealError> {
        if buf.len() < Self::sealed_len(len, mtu) {
            return Err(SealError::BufferTooSmall);
        }
        let counter = self
            .reserve_counters(1)?
            .next()
            .ok_or(SealError::Exhausted)?;
        self.seal_in_place_with_counter(counter, buf, len, mtu)
    }

    /// Seals `packet` into `out`. Returns the message length.
    pub fn seal(&self, packet: &[u8], out: &mut [u8], mtu: usize) -> Result<usize, SealError> {
        if out.len() < Self::sealed_len(packet.len(), mtu) {
            return Err(SealError::BufferTooSmall);
        }
        out[TRANSPORT_HEADER_LEN..TRANSPORT_HEADER_LEN + packet.len()].copy_from_slice(packet);
        self.seal_in_place(out, packet.len(), mtu)
    }

    /// Whether `counter` could still be accepted (the check before decryption).
    pub fn replay_check(&self, counter: u64) -> bool {
        self.replay.lock().check(counter)
    }

    /// Opens `msg` into `out` (which receives the padded plaintext). Checks the replay window
    /// before decrypting and updates it only after authentication succeeded. Returns the padded
    /// plaintext length.
    pub fn open(&self, msg: &Transport<'_>, out: &mut [u8]) -> Result<usize, OpenError> {
        let sealed = msg.sealed();
        let n = sealed.len() - TAG_LEN;
        if out.len() < n {
            return Err(OpenError::BufferTooSmall);
        }
        out[..n].copy_from_slice(&sealed[..n]);
        let tag: [u8; TAG_LEN] = sealed[n..].try_into().map_err(|_| OpenError::Decrypt)?;
        self.open_inner(msg.counter(), &mut out[..n], &tag)?;
        Ok(n)
    }

    /// Opens in place: `buf` is a whole transport message; on success the plaintext is at
    /// `buf[16..16 + returned length]`.
    pub fn open_in_place(&self, buf: &mut [u8]) -> Result<usize, OpenError> {
        if buf.len() < TRANSPORT_HEADER_LEN + TAG_LEN {
            return Err(OpenError::Decrypt);
        }
        let counter = u64::from_le_bytes(buf[8..16].try_into().map_err(|_| OpenError::Decrypt)?);
        let n = buf.len() - TRANSPORT_HEADER_LEN - TAG_LEN;
        let (body, tag) = buf[TRANSPORT_HEADER_LEN..].split_at_mut(n);
        let tag: [u8; TAG_LEN] = (&*tag).try_into().map_err(|_| OpenError::Decrypt)?;
        self.open_inner(counter, body, &tag)?;
        Ok(n)
    }

    fn open_inner(
        &self,
        counter: u64,
        body: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), OpenError> {
        if counter >= REJECT_AFTER_MESSAGES {
            return Err(OpenError::Expired);
        }
        if !self.replay_check(counter) {
            return Err(OpenError::Replay);
        }
        self.recv
            .open_in_place(counter, body, tag)
            .map_err(|_| OpenError::Decrypt)?;
        if !self.replay.lock().update(counter) {
            return Err(OpenError::Replay);
        }
        Ok(())
    }
}

/// The length of the IP packet at the start of a decrypted payload, from its header, or `None`
/// if it is not a well-formed IPv4/IPv6 packet that fits in `plain`.
pub fn inner_packet_len(plain: &[u8]) -> Option<usize> {
    let version = plain.first()? >> 4;
    let len = match version {
        4 => {
            if plain.len() < 20 {
                return None;
            }
            u16::from_be_bytes([plain[2], plain[3]]) as usize
        }
        6 => {
            if plain.len() < 40 {
                return None;
            }
            40 + u16::from_be_bytes([plain[4], plain[5]]) as usize
        }
        _ => return None,
    };
    let min = if version == 4 { 20 } else { 40 };
    (len >= min && len <= plain.len()).then_some(len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::noise::messages::Message;

    fn pair(now: Instant) -> (Keypair, Keypair) {
        let a = SessionKeys {
            send: [1; 32],
            recv: [2; 32],
            local_index: 10,
            remote_index: 20,
            initiator: true,
        };
        let b = SessionKeys {
            send: [2; 32],
            recv: [1; 32],
            local_index: 20,
            remote_index: 10,
            initiator: false,
        };
        (Keypair::new(&a, now), Keypair::new(&b, now))
    }

    #[test]
    fn padding_rules() {
        assert_eq!(padding_for(0, 1420), 0);
        assert_eq!(padding_for(1, 1420), 15);
        assert_eq!(padding_for(84, 1420), 12);
        assert_eq!(padding_for(1419, 1420), 1);
        assert_eq!(padding_for(1420, 1420), 0);
        assert_eq!(padding_for(1415, 1418), 3); // bounded by the MTU, not rounded past it
        assert_eq!(padding_for(100, 0), 12);
    }

    #[test]
    fn reservations_hand_out_each_counter_once_and_seal_with_it() {
        let now = Instant::now();
        let (a, b) = pair(now);
        let first = a.reserve_counters(3).unwrap();
        assert_eq!(first.len(), 3);
        let second = a.reserve_counters(2).unwrap();
        // Later reservations never overlap earlier ones, whatever order they are used in.
        let values: Vec<u64> = second.map(|c| c.value()).collect();
        assert_eq!(values, [3, 4]);
        let mut first = first;
        let _skipped = first.next().unwrap();
        let c = first.next().unwrap();
        assert_eq!(c.value(), 1);
        let mut buf = [0u8; 64];
        buf[16..20].copy_from_slice(&[0x45, 0, 0, 4]);
        let n = a.seal_in_place_with_counter(c, &mut buf, 0, 0).unwrap();
        // The counter on the wire is the reserved one, and the peer opens it.
        assert_eq!(u64::from_le_bytes(buf[8..16].try_into().unwrap()), 1);
        assert_eq!(b.open_in_place(&mut buf[..n]), Ok(0));
        assert_eq!(first.next().map(|c| c.value()), Some(2));
        assert_eq!(first.next(), None);
        // A single seal takes the next counter after every reservation.
        let n = a.seal_in_place(&mut buf, 0, 0).unwrap();
        assert_eq!(u64::from_le_bytes(buf[8..16].try_into().unwrap()), 5);
        assert!(n > 0);
    }

    #[test]
    fn seal_open_round_trip_and_replay() {
        let now = Instant::now();
        let (a, b) = pair(now);
        let mut pkt = [0u8; 84];
        pkt[0] = 0x45;
        pkt[2..4].copy_from_slice(&84u16.to_be_bytes());
        let mut wire = [0u8; 200];
        let n = a.seal(&pkt, &mut wire, 1420).unwrap();
        assert_eq!(n, 16 + 96 + 16);
        let Message::Transport(t) = Message::parse(&wire[..n]).unwrap() else {
            panic!()
        };
        assert_eq!(t.receiver(), 20);
        let mut out = [0u8; 200];
        let m = b.open(&t, &mut out).unwrap();
        assert_eq!(m, 96);
        assert_eq!(inner_packet_len(&out[..m]), Some(84));
        assert_eq!(&out[..84], &pkt[..]);
        assert_eq!(b.open(&t, &mut out), Err(OpenError::Replay));
        // Tampering fails and does not burn the counter.
        let n2 = a.seal(&pkt, &mut wire, 1420).unwrap();
        wire[30] ^= 1;
        let Message::Transport(t2) = Message::parse(&wire[..n2]).unwrap() else {
            panic!()
        };
        assert_eq!(b.open(&t2, &mut out), Err(OpenError::Decrypt));
        wire[30] ^= 1;
        let Message::Transport(t2) = Message::parse(&wire[..n2]).unwrap() else {
            panic!()
        };
        assert!(b.open(&t2, &mut out).is_ok());
        // In place.
        let n3 = a.seal(&pkt, &mut wire, 1420).unwrap();
        let p = b.open_in_place(&mut wire[..n3]).unwrap();
        assert_eq!(&wire[16..16 + 84], &pkt[..]);
        assert_eq!(p, 96);
    }

    #[test]
    fn counter_limit() {
        let now = Instant::now();
        let (a, _) = pair(now);
        a.send_counter
            .store(REJECT_AFTER_MESSAGES - 1, Ordering::Relaxed);
        let mut wire = [0u8; 64];
        assert!(a.seal(&[], &mut wire, 1420).is_ok());
        assert_eq!(a.seal(&[], &mut wire, 1420), Err(SealError::Exhausted));
        assert_eq!(a.seal(&[], &mut wire, 1420), Err(SealError::Exhausted));
    }

    #[test]
    fn inner_lengths() {
        assert_eq!(inner_packet_len(&[]), None);
        assert_eq!(inner_packet_len(&[0x45; 10]), None);
        let mut v6 = [0u8; 64];
        v6[0] = 0x60;
        v6[5] = 8;
        assert_eq!(inner_packet_len(&v6), Some(48));
        v6[5] = 30;
        assert_eq!(inner_packet_len(&v6), None);
    }
}
