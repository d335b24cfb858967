//! mac1/mac2 and cookie replies (whitepaper §5.4.7): the DoS defence.
//!
//! [`CookieChecker`] sits on the receiving side of a device (verifies mac1, and under load
//! mac2, and writes cookie replies). [`CookieGenerator`] sits with each peer on the sending side
//! (fills mac1/mac2 into our handshake messages and consumes cookie replies).

use crate::keys::PublicKey;
use crate::noise::crypto::{
    self, constant_time_eq, hash, mac, BufferTooSmall, MAC_LEN, TAG_LEN, XNONCE_LEN,
};
use crate::noise::handshake::{LABEL_COOKIE, LABEL_MAC1};
use crate::noise::messages::{self, CookieReply, COOKIE_REPLY_LEN};
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};
use zeroize::Zeroize;

/// How long a cookie secret (responder) or a received cookie (initiator) stays valid.
pub const COOKIE_REFRESH_TIME: Duration = Duration::from_secs(120);

/// The shortest message the MAC functions accept: type, sender index, mac1 and mac2. Real
/// handshake messages (92 and 148 bytes) are longer; anything shorter is not one.
pub const MIN_MAC_MESSAGE_LEN: usize = 8 + 2 * MAC_LEN;

/// Why [`CookieChecker::create_reply`] wrote no reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError {
    /// The message is shorter than [`MIN_MAC_MESSAGE_LEN`], so it is no handshake message.
    #[error("message too short to answer with a cookie reply")]
    ShortMessage,
    /// The sealed cookie did not fit the reply (ruled out by the fixed sizes).
    #[error(transparent)]
    Seal(#[from] BufferTooSmall),
}

/// Outcome of checking the MACs of an incoming handshake message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MacCheck {
    /// mac1 is wrong: drop silently.
    BadMac1,
    /// mac1 is right; the device is under load and mac2 is missing or wrong: send a cookie
    /// reply instead of processing the message.
    NeedCookie,
    /// Process the message.
    Valid,
}

/// Serialises a source address for the cookie MAC.
fn source_bytes(src: &SocketAddr, out: &mut [u8; 18]) -> usize {
    let n = match src.ip() {
        IpAddr::V4(a) => {
            out[..4].copy_from_slice(&a.octets());
            4
        }
        IpAddr::V6(a) => {
            out[..16].copy_from_slice(&a.octets());
            16
        }
    };
    out[n..n + 2].copy_from_slice(&src.port().to_be_bytes());
    n + 2
}

/// The receiving side of the cookie mechanism for our own static key.
pub struct CookieChecker {
    mac1_key: [u8; 32],
    cookie_key: [u8; 32],
    secret: [u8; 32],
    secret_set: Option<Instant>,
    rng: ChaCha20Rng,
}

impl std::fmt::Debug for CookieChecker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CookieChecker").finish_non_exhaustive()
    }
}

impl Drop for CookieChecker {
    fn drop(&mut self) {
        self.secret.zeroize();
    }
}

impl CookieChecker {
    /// A checker for messages addressed to `our_public`; `seed` feeds its RNG.
    pub fn new(our_public: &PublicKey, seed: [u8; 32]) -> Self {
        CookieChecker {
            mac1_key: hash(&[LABEL_MAC1, &our_public.0]),
            cookie_key: hash(&[LABEL_COOKIE, &our_public.0]),
            secret: [0; 32],
            secret_set: None,
            rng: ChaCha20Rng::from_seed(seed),
        }
    }

    /// Verifies mac1 of an initiation or response (`msg` is the whole message). False for a
    /// message shorter than [`MIN_MAC_MESSAGE_LEN`].
    pub fn verify_mac1(&self, msg: &[u8]) -> bool {
        if msg.len() < MIN_MAC_MESSAGE_LEN {
            return false;
        }
        let off = messages::mac1_offset(msg.len());
        let want = mac(&self.mac1_key, &[&msg[..off]]);
        constant_time_eq(&want, &msg[off..off + MAC_LEN])
    }

    fn cookie_for(&self, src: &SocketAddr) -> [u8; MAC_LEN] {
        let mut b = [0u8; 18];
        let n = source_bytes(src, &mut b);
        mac(&self.secret, &[&b[..n]])
    }

    fn secret_valid(&self, now: Instant) -> bool {
        matches!(self.secret_set, Some(t) if now.saturating_duration_since(t) < COOKIE_REFRESH_TIME)
    }

    /// Verifies mac2 against the cookie we would give `src` now.
    pub fn verify_mac2(&self, msg: &[u8], src: &SocketAddr, now: Instant) -> bool {
        if msg.len() < MIN_MAC_MESSAGE_LEN || !self.secret_valid(now) {
            return false;
        }
        let cookie = self.cookie_for(src);
        let off = messages::mac2_offset(msg.len());
        let want = mac_with_cookie(&cookie, &msg[..off]);
        constant_time_eq(&want, &msg[off..off + MAC_LEN])
    }

    /// Checks an incoming initiation or response. `under_load` comes from the caller.
    pub fn check(&self, msg: &[u8], src: &SocketAddr, under_load: bool, now: Instant) -> MacCheck {
        if !self.verify_mac1(msg) {
            MacCheck::BadMac1
        } else if under_load && !self.verify_mac2(msg, src, now) {
            MacCheck::NeedCookie
        } else {
            MacCheck::Valid
        }
    }

    /// Writes a cookie reply to `msg` (an initiation or response from `src` whose mac1 was
    /// valid). The cookie secret is rotated when older than two minutes.
    ///
    /// Fails for a message shorter than [`MIN_MAC_MESSAGE_LEN`]; `out` is then not a valid
    /// reply and must not be sent.
    pub fn create_reply(
        &mut self,
        msg: &[u8],
        src: &SocketAddr,
        now: Instant,
        out: &mut [u8; COOKIE_REPLY_LEN],
    ) -> Result<(), ReplyError> {
        if msg.len() < MIN_MAC_MESSAGE_LEN {
            return Err(ReplyError::ShortMessage);
        }
        if !self.secret_valid(now) {
            self.rng.fill_bytes(&mut self.secret);
            self.secret_set = Some(now);
        }
        let cookie = self.cookie_for(src);
        let sender = &msg[4..8];
        let off = messages::mac1_offset(msg.len());
        let mac1 = &msg[off..off + MAC_LEN];
        out.fill(0);
        messages::write_type(out, messages::TYPE_COOKIE_REPLY);
        out[4..8].copy_from_slice(sender);
        let mut nonce = [0u8; XNONCE_LEN];
        self.rng.fill_bytes(&mut nonce);
        out[8..32].copy_from_slice(&nonce);
        crypto::xaead_seal(&self.cookie_key, &nonce, &cookie, mac1, &mut out[32..64])?;
        Ok(())
    }
}

fn mac_with_cookie(cookie: &[u8; MAC_LEN], data: &[u8]) -> [u8; MAC_LEN] {
    // MAC is keyed BLAKE2s; a 16-byte cookie is a valid key, zero-extended is NOT the same, so
    // key with the cookie bytes themselves.
    crypto::mac_short_key(cookie, &[data])
}

/// The sending side of the cookie mechanism for one peer.
pub struct CookieGenerator {
    mac1_key: [u8; 32],
    cookie_key: [u8; 32],
    last_mac1: Option<[u8; MAC_LEN]>,
    cookie: Option<([u8; MAC_LEN], Instant)>,
}

impl std::fmt::Debug for CookieGenerator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CookieGenerator")
            .field("has_cookie", &self.cookie.is_some())
            .finish_non_exhaustive()
    }
}

impl CookieGenerator {
    /// A generator for messages sent to `peer`.
    pub fn new(peer: &PublicKey) -> Self {
        CookieGenerator {
            mac1_key: hash(&[LABEL_MAC1, &peer.0]),
            cookie_key: hash(&[LABEL_COOKIE, &peer.0]),
            last_mac1: None,
            cookie: None,
        }
    }

    /// Fills mac1, and mac2 when we hold a fresh cookie, into an outgoing handshake message.
    /// Leaves a message shorter than [`MIN_MAC_MESSAGE_LEN`] (no handshake message) unchanged.
    pub fn add_macs(&mut self, msg: &mut [u8], now: Instant) {
        if msg.len() < MIN_MAC_MESSAGE_LEN {
            return;
        }
        let off1 = messages::mac1_offset(msg.len());
        let off2 = messages::mac2_offset(msg.len());
        let mac1 = mac(&self.mac1_key, &[&msg[..off1]]);
        msg[off1..off2].copy_from_slice(&mac1);
        self.last_mac1 = Some(mac1);
        let mac2 = match &self.cookie {
            Some((c, at)) if now.saturating_duration_since(*at) < COOKIE_REFRESH_TIME => {
                mac_with_cookie(c, &msg[..off2])
            }
            _ => [0; MAC_LEN],
        };
        msg[off2..off2 + MAC_LEN].copy_from_slice(&mac2);
    }

    /// Consumes a cookie reply to the last message we sent. Returns false if it does not
    /// decrypt (forged, or for a message we did not send).
    pub fn consume_reply(&mut self, reply: &CookieReply<'_>, now: Instant) -> bool {
        let Some(mac1) = self.last_mac1 else {
            return false;
        };
        let mut cookie = [0u8; MAC_LEN + TAG_LEN];
        let ok = crypto::xaead_open(
            &self.cookie_key,
            reply.nonce(),
            reply.encrypted_cookie(),
            &mac1,
            &mut cookie,
        )
        .is_ok();
        if ok {
            let mut c = [0u8; MAC_LEN];
            c.copy_from_slice(&cookie[..MAC_LEN]);
            self.cookie = Some((c, now));
        }
        cookie.zeroize();
        ok
    }

    /// Whether a cookie is held and fresh.
    pub fn has_cookie(&self, now: Instant) -> bool {
        matches!(&self.cookie, Some((_, at)) if now.saturating_duration_since(*at) < COOKIE_REFRESH_TIME)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::noise::messages::{Message, INITIATION_LEN};

    fn setup() -> (CookieChecker, CookieGenerator, Instant) {
        let pk = PublicKey([5; 32]);
        (
            CookieChecker::new(&pk, [1; 32]),
            CookieGenerator::new(&pk),
            Instant::now(),
        )
    }

    fn msg() -> [u8; INITIATION_LEN] {
        let mut m = [0x42u8; INITIATION_LEN];
        messages::write_type(&mut m, messages::TYPE_INITIATION);
        m
    }

    #[test]
    fn mac1_verifies_and_flipped_bit_fails() {
        let (chk, mut gen, now) = setup();
        let mut m = msg();
        gen.add_macs(&mut m, now);
        let src: SocketAddr = "192.0.2.1:1000".parse().unwrap();
        assert_eq!(chk.check(&m, &src, false, now), MacCheck::Valid);
        for bit in [0usize, 8 * 50, 8 * 116 + 3, 8 * 131 + 7] {
            let mut bad = m;
            bad[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(
                chk.check(&bad, &src, false, now),
                MacCheck::BadMac1,
                "bit {bit}"
            );
        }
        // mac1 keyed on another public key fails.
        let mut other = CookieGenerator::new(&PublicKey([6; 32]));
        let mut m2 = msg();
        other.add_macs(&mut m2, now);
        assert!(!chk.verify_mac1(&m2));
    }

    #[test]
    fn cookie_round_trip_and_source_binding() {
        let (mut chk, mut gen, now) = setup();
        let src: SocketAddr = "192.0.2.1:1000".parse().unwrap();
        let mut m = msg();
        gen.add_macs(&mut m, now);
        assert_eq!(chk.check(&m, &src, true, now), MacCheck::NeedCookie);
        let mut reply = [0u8; COOKIE_REPLY_LEN];
        chk.create_reply(&m, &src, now, &mut reply).unwrap();
        let Message::CookieReply(r) = Message::parse(&reply).unwrap() else {
            panic!()
        };
        assert_eq!(r.receiver(), u32::from_le_bytes([0x42; 4]));
        assert!(gen.consume_reply(&r, now));
        let mut m = msg();
        gen.add_macs(&mut m, now);
        assert_eq!(chk.check(&m, &src, true, now), MacCheck::Valid);
        // Another address or port does not carry the cookie.
        let other_port: SocketAddr = "192.0.2.1:1001".parse().unwrap();
        let other_ip: SocketAddr = "192.0.2.2:1000".parse().unwrap();
        assert_eq!(chk.check(&m, &other_port, true, now), MacCheck::NeedCookie);
        assert_eq!(chk.check(&m, &other_ip, true, now), MacCheck::NeedCookie);
        // A flipped bit in mac2 fails.
        let mut bad = m;
        bad[INITIATION_LEN - 1] ^= 0x80;
        assert_eq!(chk.check(&bad, &src, true, now), MacCheck::NeedCookie);
    }

    #[test]
    fn forged_or_unsolicited_reply_is_refused() {
        let (mut chk, mut gen, now) = setup();
        let src: SocketAddr = "[2001:db8::1]:51820".parse().unwrap();
        let mut m = msg();
        // A reply before we sent anything.
        let mut reply = [0u8; COOKIE_REPLY_LEN];
        chk.create_reply(&m, &src, now, &mut reply).unwrap();
        let Message::CookieReply(r) = Message::parse(&reply).unwrap() else {
            panic!()
        };
        assert!(!gen.consume_reply(&r, now));
        gen.add_macs(&mut m, now);
        let mut reply2 = [0u8; COOKIE_REPLY_LEN];
        chk.create_reply(&m, &src, now, &mut reply2).unwrap();
        reply2[40] ^= 1;
        let Message::CookieReply(r) = Message::parse(&reply2).unwrap() else {
            panic!()
        };
        assert!(!gen.consume_reply(&r, now));
    }

    #[test]
    fn secret_rotates_and_cookie_expires() {
        let (mut chk, mut gen, t0) = setup();
        let src: SocketAddr = "192.0.2.1:1000".parse().unwrap();
        let mut m = msg();
        gen.add_macs(&mut m, t0);
        let mut reply = [0u8; COOKIE_REPLY_LEN];
        chk.create_reply(&m, &src, t0, &mut reply).unwrap();
        let Message::CookieReply(r) = Message::parse(&reply).unwrap() else {
            panic!()
        };
        assert!(gen.consume_reply(&r, t0));
        let t1 = t0 + Duration::from_secs(119);
        let mut m = msg();
        gen.add_macs(&mut m, t1);
        assert_eq!(chk.check(&m, &src, true, t1), MacCheck::Valid);
        // After 120 s the responder's secret is stale: the old cookie no longer verifies.
        let t2 = t0 + Duration::from_secs(120);
        assert_eq!(chk.check(&m, &src, true, t2), MacCheck::NeedCookie);
        // A new reply uses a fresh secret, so the cookie differs.
        let secret_before = chk.secret;
        chk.create_reply(&m, &src, t2, &mut reply).unwrap();
        assert_ne!(secret_before, chk.secret);
        // The initiator stops using a cookie after 120 s.
        assert!(!gen.has_cookie(t2 + Duration::from_secs(1)));
        let mut m3 = msg();
        gen.add_macs(&mut m3, t2 + Duration::from_secs(1));
        assert_eq!(&m3[INITIATION_LEN - 16..], &[0u8; 16]);
    }

    #[test]
    fn short_messages_are_refused_not_a_panic() {
        // Found by the cookie_reply fuzz target: the MAC offsets underflowed.
        let (mut chk, mut gen, now) = setup();
        let src: SocketAddr = "192.0.2.1:1000".parse().unwrap();
        for len in 0..MIN_MAC_MESSAGE_LEN {
            let mut m = vec![0x42u8; len];
            gen.add_macs(&mut m, now);
            assert!(m.iter().all(|&b| b == 0x42), "short message left unchanged");
            assert_eq!(chk.check(&m, &src, false, now), MacCheck::BadMac1);
            assert!(!chk.verify_mac2(&m, &src, now));
            let mut reply = [0u8; COOKIE_REPLY_LEN];
            assert_eq!(
                chk.create_reply(&m, &src, now, &mut reply),
                Err(ReplyError::ShortMessage)
            );
        }
        // The shortest accepted length works end to end.
        let mut m = vec![0x42u8; MIN_MAC_MESSAGE_LEN];
        gen.add_macs(&mut m, now);
        assert_eq!(chk.check(&m, &src, false, now), MacCheck::Valid);
    }
}
