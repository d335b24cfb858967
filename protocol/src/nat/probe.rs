//! Path probes: sealed ping/pong datagrams sent on the WireGuard socket to every candidate
//! address of a peer.
//!
//! Wire format (87 bytes, all integers big-endian):
//!
//! ```text
//! magic[4] = F0 'V' 'P' 'N' | version u8 = 1 | type u8 (1 ping, 2 pong) | reserved[2] = 0
//! pair_id[8] | nonce[24] | XChaCha20-Poly1305( txid[12] | family u8 | port u16 | addr[16] ) | tag[16]
//! ```
//!
//! The first 40 bytes (up to and including the nonce) are the AEAD's associated data. The
//! address is what the sender believes about the destination: for a ping, the address it sent
//! to; for a pong, the source address the ping came from. A pong thus doubles as a STUN answer
//! (the peer-reflexive address).
//!
//! Key: `kdf1(hash(LABEL | lo | hi), X25519(s_self, S_peer))` where `lo`/`hi` are the two
//! static public keys sorted, so both sides derive the same key and no third party can open
//! or forge a probe. `pair_id` = the first 8 bytes of `hash(ID_LABEL | lo | hi)`: it lets the
//! receiver find the peer without trial decryption; it is the same for both directions and
//! does not reveal a static key to anyone who does not already know both.
//!
//! Replays: a replayed pong matches no outstanding ping (each txid is consumed once, see
//! [`super::path`]); a replayed ping only elicits a rate-limited pong. That bounds what a
//! replaying attacker gets to a few small datagrams per round.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use chacha20poly1305::aead::AeadInOut;
use chacha20poly1305::{KeyInit, XChaCha20Poly1305};
use rand_core::Rng;
use x25519_dalek::StaticSecret;
use zeroize::Zeroize;

use super::demux::PROBE_MAGIC;
use crate::noise::crypto::{self, KEY_LEN};

/// Protocol version byte.
pub const VERSION: u8 = 1;
/// Key-derivation label: distinct from every WireGuard label so the probe key is independent
/// of the tunnel's keys even though both start from the same static keys.
pub const KEY_LABEL: &[u8] = b"vpn path probe key v1";
/// Label for the pair identifier.
pub const ID_LABEL: &[u8] = b"vpn path probe id v1";
/// Header length (the associated data).
pub const HEADER_LEN: usize = 40;
/// Plaintext body length.
pub const BODY_LEN: usize = 12 + 1 + 2 + 16;
/// Full probe length.
pub const PROBE_LEN: usize = HEADER_LEN + BODY_LEN + 16;

/// Ping or pong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeType {
    /// Asks for a pong.
    Ping,
    /// Answers a ping with the same txid.
    Pong,
}

/// A probe, opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    /// Ping or pong.
    pub kind: ProbeType,
    /// Transaction id chosen by the pinger.
    pub txid: [u8; 12],
    /// The sender's view of the other side's address (see the module docs).
    pub observed: SocketAddr,
}

/// Why a probe did not open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ProbeError {
    /// Wrong length, magic, version, type or reserved bytes.
    #[error("malformed path probe")]
    Malformed,
    /// The pair id belongs to another peer pair.
    #[error("path probe for another peer pair")]
    WrongPair,
    /// Authentication failed: not sealed with this pair's key.
    #[error("path probe failed to authenticate")]
    Auth,
    /// The output buffer is shorter than [`PROBE_LEN`].
    #[error("buffer shorter than a path probe")]
    BufferTooSmall,
    /// The peer's public key is a low-order point.
    #[error("peer public key gives an all-zero shared secret")]
    BadPeerKey,
}

/// The per-peer-pair probe key and id. Derive once per peer and keep.
pub struct ProbeKey {
    cipher: XChaCha20Poly1305,
    pair_id: [u8; 8],
}

impl ProbeKey {
    /// Derives the key shared by `own` and the peer with public key `peer`.
    pub fn derive(own: &StaticSecret, peer: &[u8; KEY_LEN]) -> Result<Self, ProbeError> {
        let own_pub = crypto::public_key(own);
        let (lo, hi) = if own_pub <= *peer {
            (&own_pub, peer)
        } else {
            (peer, &own_pub)
        };
        let mut dh = crypto::dh(own, peer).map_err(|_| ProbeError::BadPeerKey)?;
        let salt = crypto::hash(&[KEY_LABEL, lo, hi]);
        let [mut key] = crypto::kdf::<1>(&salt, &dh);
        dh.zeroize();
        let cipher = XChaCha20Poly1305::new((&key).into());
        key.zeroize();
        let idh = crypto::hash(&[ID_LABEL, lo, hi]);
        let mut pair_id = [0u8; 8];
        pair_id.copy_from_slice(&idh[..8]);
        Ok(ProbeKey { cipher, pair_id })
    }

    /// The pair id that probes for this pair carry.
    pub fn pair_id(&self) -> [u8; 8] {
        self.pair_id
    }

    /// Seals `probe` into `out[..PROBE_LEN]` with a fresh nonce from `rng`; returns the length.
    pub fn seal<R: Rng + ?Sized>(
        &self,
        probe: &Probe,
        rng: &mut R,
        out: &mut [u8],
    ) -> Result<usize, ProbeError> {
        let out = out.get_mut(..PROBE_LEN).ok_or(ProbeError::BufferTooSmall)?;
        out[..4].copy_from_slice(&PROBE_MAGIC);
        out[4] = VERSION;
        out[5] = match probe.kind {
            ProbeType::Ping => 1,
            ProbeType::Pong => 2,
        };
        out[6..8].fill(0);
        out[8..16].copy_from_slice(&self.pair_id);
        rng.fill_bytes(&mut out[16..40]);
        let (head, rest) = out.split_at_mut(HEADER_LEN);
        let (body, tag) = rest.split_at_mut(BODY_LEN);
        body[..12].copy_from_slice(&probe.txid);
        encode_addr(&probe.observed, &mut body[12..]);
        let nonce: [u8; 24] = head[16..40].try_into().expect("24-byte slice");
        let t = self
            .cipher
            .encrypt_inout_detached(&nonce.into(), head, body.into())
            .map_err(|_| ProbeError::BufferTooSmall)?;
        tag.copy_from_slice(&t);
        Ok(PROBE_LEN)
    }

    /// Opens a probe in `buf` (modified in place). Never panics on any input.
    pub fn open(&self, buf: &mut [u8]) -> Result<Probe, ProbeError> {
        let kind = check_header(buf)?;
        if buf[8..16] != self.pair_id {
            return Err(ProbeError::WrongPair);
        }
        let (head, rest) = buf.split_at_mut(HEADER_LEN);
        let (body, tag) = rest.split_at_mut(BODY_LEN);
        let nonce: [u8; 24] = head[16..40].try_into().expect("24-byte slice");
        let tag: [u8; 16] = (&*tag).try_into().expect("16-byte slice");
        self.cipher
            .decrypt_inout_detached(&nonce.into(), head, body.into(), &tag.into())
            .map_err(|_| ProbeError::Auth)?;
        let mut txid = [0u8; 12];
        txid.copy_from_slice(&body[..12]);
        let observed = decode_addr(&body[12..]).ok_or(ProbeError::Malformed)?;
        Ok(Probe {
            kind,
            txid,
            observed,
        })
    }
}

/// The pair id of a probe, after the cheap header checks: the daemon's lookup key for the peer.
pub fn peek_pair_id(buf: &[u8]) -> Result<[u8; 8], ProbeError> {
    check_header(buf)?;
    Ok(buf[8..16].try_into().expect("8-byte slice"))
}

fn check_header(buf: &[u8]) -> Result<ProbeType, ProbeError> {
    if buf.len() != PROBE_LEN || buf[..4] != PROBE_MAGIC || buf[4] != VERSION || buf[6..8] != [0, 0]
    {
        return Err(ProbeError::Malformed);
    }
    match buf[5] {
        1 => Ok(ProbeType::Ping),
        2 => Ok(ProbeType::Pong),
        _ => Err(ProbeError::Malformed),
    }
}

fn encode_addr(a: &SocketAddr, out: &mut [u8]) {
    out[..19].fill(0);
    match a.ip() {
        IpAddr::V4(ip) => {
            out[0] = 4;
            out[3..7].copy_from_slice(&ip.octets());
        }
        IpAddr::V6(ip) => {
            out[0] = 6;
            out[3..19].copy_from_slice(&ip.octets());
        }
    }
    out[1..3].copy_from_slice(&a.port().to_be_bytes());
}

fn decode_addr(b: &[u8]) -> Option<SocketAddr> {
    let port = u16::from_be_bytes([b[1], b[2]]);
    let ip = match b[0] {
        4 => {
            if b[7..19].iter().any(|&x| x != 0) {
                return None;
            }
            IpAddr::V4(Ipv4Addr::new(b[3], b[4], b[5], b[6]))
        }
        6 => IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(&b[3..19]).ok()?)),
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    fn secret(b: u8) -> StaticSecret {
        StaticSecret::from([b; 32])
    }

    fn pair() -> (ProbeKey, ProbeKey, StaticSecret) {
        let a = secret(1);
        let b = secret(2);
        let ka = ProbeKey::derive(&a, &crypto::public_key(&b)).unwrap();
        let kb = ProbeKey::derive(&b, &crypto::public_key(&a)).unwrap();
        (ka, kb, secret(3))
    }

    #[test]
    fn both_sides_derive_the_same_key_and_roundtrip() {
        let (ka, kb, _) = pair();
        assert_eq!(ka.pair_id(), kb.pair_id());
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        for observed in [
            "192.0.2.1:51820".parse().unwrap(),
            "[2001:db8::1]:443".parse().unwrap(),
        ] {
            let p = Probe {
                kind: ProbeType::Pong,
                txid: [9; 12],
                observed,
            };
            let mut buf = [0u8; 128];
            let n = ka.seal(&p, &mut rng, &mut buf).unwrap();
            assert_eq!(n, PROBE_LEN);
            assert_eq!(
                super::super::demux::classify(&buf[..n]),
                super::super::demux::Kind::Probe
            );
            assert_eq!(peek_pair_id(&buf[..n]), Ok(kb.pair_id()));
            assert_eq!(kb.open(&mut buf[..n]), Ok(p));
        }
    }

    #[test]
    fn third_party_and_tampering_fail() {
        let (ka, kb, c) = pair();
        let mut rng = ChaCha20Rng::seed_from_u64(8);
        let p = Probe {
            kind: ProbeType::Ping,
            txid: [1; 12],
            observed: "198.51.100.7:1000".parse().unwrap(),
        };
        // A third party C that knows B's public key cannot forge a probe B accepts from A.
        let forged = ProbeKey::derive(&c, &crypto::public_key(&secret(2))).unwrap();
        let mut buf = [0u8; PROBE_LEN];
        forged.seal(&p, &mut rng, &mut buf).unwrap();
        buf[8..16].copy_from_slice(&kb.pair_id()); // even with the right pair id
        assert_eq!(kb.open(&mut buf), Err(ProbeError::Auth));

        for i in [5usize, 9, 20, 45, 86] {
            let mut buf = [0u8; PROBE_LEN];
            ka.seal(&p, &mut rng, &mut buf).unwrap();
            buf[i] ^= 0x01;
            assert!(kb.open(&mut buf).is_err(), "flip at byte {i} accepted");
        }
        assert_eq!(kb.open(&mut [0u8; 10]), Err(ProbeError::Malformed));
        let mut small = [0u8; 20];
        assert_eq!(
            ka.seal(&p, &mut rng, &mut small),
            Err(ProbeError::BufferTooSmall)
        );
    }

    #[test]
    fn low_order_peer_key_is_refused() {
        assert_eq!(
            ProbeKey::derive(&secret(1), &[0u8; 32]).err(),
            Some(ProbeError::BadPeerKey)
        );
    }
}
