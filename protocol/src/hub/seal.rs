//! The hub's two cryptographic bindings, both from WireGuard's primitives (BLAKE2s, X25519,
//! XChaCha20-Poly1305) with labels of their own so no key or MAC is valid in another role.
//!
//! - Registration proof: `MAC(HASH(LABEL_PROOF || DH(peer, hub)), nonce || peer || hub ||
//!   observed || candidates)`. Only the holder of the peer's (or hub's) private key can compute
//!   it; the hub-issued nonce makes it fresh; the observed source binds it to one path.
//! - Envelope: `nonce[24] || XChaCha20-Poly1305(K, nonce, payload, aad = from || to)` with
//!   `K = HASH(LABEL_ENVELOPE || DH(a, b) || min(A, B) || max(A, B))`. The hub, holding neither
//!   static private key, can neither read nor forge it.

use std::net::SocketAddr;

use x25519_dalek::StaticSecret;

use super::messages::{encode_addr, Candidates, ADDR_LEN, KEY_LEN, NONCE_LEN, PROOF_LEN};
use crate::noise::crypto::{self, constant_time_eq, hash, mac, AeadError, ZeroDh};

/// Label of the registration-proof key.
pub const LABEL_PROOF: &[u8] = b"vpnhub registration proof v1";
/// Label of the peer-to-peer envelope key.
pub const LABEL_ENVELOPE: &[u8] = b"vpnhub signal envelope v1";
/// Length of the envelope's random nonce.
pub const ENVELOPE_NONCE_LEN: usize = 24;
/// Bytes an envelope adds to its payload (nonce and tag).
pub const ENVELOPE_OVERHEAD: usize = ENVELOPE_NONCE_LEN + 16;

/// Why an envelope could not be sealed or opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// The other key is low-order (DH gave zero).
    #[error("invalid public key")]
    BadKey,
    /// Output buffer too small.
    #[error("output buffer too small")]
    BufferTooSmall,
    /// Tampered, truncated, or sealed for other keys.
    #[error("envelope authentication failed")]
    Auth,
}

impl From<ZeroDh> for SealError {
    fn from(_: ZeroDh) -> Self {
        Self::BadKey
    }
}

impl From<AeadError> for SealError {
    fn from(_: AeadError) -> Self {
        Self::Auth
    }
}

/// The proof a peer sends in `Register`; the hub computes the same with its own private key
/// and the peer's public key (DH is symmetric) and compares in constant time.
#[allow(clippy::too_many_arguments)]
pub fn registration_proof(
    own_private: &StaticSecret,
    other_public: &[u8; KEY_LEN],
    peer: &[u8; KEY_LEN],
    hub: &[u8; KEY_LEN],
    nonce: &[u8; NONCE_LEN],
    observed: &SocketAddr,
    candidates: &Candidates,
) -> Result<[u8; PROOF_LEN], ZeroDh> {
    let shared = crypto::dh(own_private, other_public)?;
    let k = hash(&[LABEL_PROOF, &shared]);
    let mut obs = [0; ADDR_LEN];
    encode_addr(observed, &mut obs);
    let mut out = mac(
        &k,
        &[nonce, peer, hub, &obs, &[candidates.as_slice().len() as u8]],
    );
    // Fold each candidate in; a fixed-size buffer per address keeps this allocation-free.
    for c in candidates.as_slice() {
        let mut e = [0; ADDR_LEN];
        encode_addr(c, &mut e);
        out = mac(&k, &[&out, &e]);
    }
    Ok(out)
}

/// The hub's check of a registration proof.
#[allow(clippy::too_many_arguments)]
pub fn verify_registration(
    hub_private: &StaticSecret,
    peer: &[u8; KEY_LEN],
    nonce: &[u8; NONCE_LEN],
    observed: &SocketAddr,
    candidates: &Candidates,
    proof: &[u8; PROOF_LEN],
) -> bool {
    let hub = crypto::public_key(hub_private);
    match registration_proof(hub_private, peer, peer, &hub, nonce, observed, candidates) {
        Ok(expect) => constant_time_eq(&expect, proof),
        Err(ZeroDh) => false,
    }
}

/// The symmetric key two peers share for envelopes.
pub fn envelope_key(
    own_private: &StaticSecret,
    other_public: &[u8; KEY_LEN],
) -> Result<[u8; KEY_LEN], ZeroDh> {
    let own = crypto::public_key(own_private);
    let shared = crypto::dh(own_private, other_public)?;
    let (lo, hi) = if own <= *other_public {
        (&own, other_public)
    } else {
        (other_public, &own)
    };
    Ok(hash(&[LABEL_ENVELOPE, &shared, lo, hi]))
}

/// Seals `payload` from `from` to `to` into `out`; returns the envelope length.
pub fn seal_envelope(
    key: &[u8; KEY_LEN],
    nonce: &[u8; ENVELOPE_NONCE_LEN],
    from: &[u8; KEY_LEN],
    to: &[u8; KEY_LEN],
    payload: &[u8],
    out: &mut [u8],
) -> Result<usize, SealError> {
    let len = payload.len() + ENVELOPE_OVERHEAD;
    let out = out.get_mut(..len).ok_or(SealError::BufferTooSmall)?;
    out[..ENVELOPE_NONCE_LEN].copy_from_slice(nonce);
    let mut aad = [0; 2 * KEY_LEN];
    aad[..KEY_LEN].copy_from_slice(from);
    aad[KEY_LEN..].copy_from_slice(to);
    crypto::xaead_seal(key, nonce, payload, &aad, &mut out[ENVELOPE_NONCE_LEN..])
        .map_err(|_| SealError::BufferTooSmall)?;
    Ok(len)
}

/// Opens an envelope sent by `from` to `to` into `out`; returns the payload length.
pub fn open_envelope(
    key: &[u8; KEY_LEN],
    from: &[u8; KEY_LEN],
    to: &[u8; KEY_LEN],
    envelope: &[u8],
    out: &mut [u8],
) -> Result<usize, SealError> {
    if envelope.len() < ENVELOPE_OVERHEAD {
        return Err(SealError::Auth);
    }
    let len = envelope.len() - ENVELOPE_OVERHEAD;
    let out = out.get_mut(..len).ok_or(SealError::BufferTooSmall)?;
    let mut nonce = [0; ENVELOPE_NONCE_LEN];
    nonce.copy_from_slice(&envelope[..ENVELOPE_NONCE_LEN]);
    let mut aad = [0; 2 * KEY_LEN];
    aad[..KEY_LEN].copy_from_slice(from);
    aad[KEY_LEN..].copy_from_slice(to);
    crypto::xaead_open(key, &nonce, &envelope[ENVELOPE_NONCE_LEN..], &aad, out)?;
    Ok(len)
}

/// Label of the hub's challenge nonces.
pub const LABEL_CHALLENGE: &[u8] = b"vpnhub challenge v1";

/// The nonce the hub issues to `src` in time bucket `bucket` (the caller's clock divided by
/// the nonce lifetime). Recomputable from a hub secret, so hellos cost the hub no table entry;
/// the hub accepts the current and the previous bucket.
pub fn challenge_nonce(
    hub_secret: &[u8; KEY_LEN],
    src: &SocketAddr,
    bucket: u64,
) -> [u8; NONCE_LEN] {
    let mut a = [0; ADDR_LEN];
    encode_addr(src, &mut a);
    mac(hub_secret, &[LABEL_CHALLENGE, &a, &bucket.to_le_bytes()])
}

/// The nonce the hub issues to `src` in `bucket` in answer to a Visit: a different MAC input,
/// so the Register that returns it says, without any state on the hub, that it is a visit.
pub fn visit_nonce(hub_secret: &[u8; KEY_LEN], src: &SocketAddr, bucket: u64) -> [u8; NONCE_LEN] {
    let mut a = [0; ADDR_LEN];
    encode_addr(src, &mut a);
    mac(
        hub_secret,
        &[LABEL_CHALLENGE, &a, &bucket.to_le_bytes(), b"visit"],
    )
}

/// What a fresh `nonce` was issued for: `Some(false)` a Hello, `Some(true)` a Visit (from
/// `src`, in `bucket` or the one before); `None` when it is neither (stale or forged).
pub fn challenge_kind(
    hub_secret: &[u8; KEY_LEN],
    src: &SocketAddr,
    bucket: u64,
    nonce: &[u8; NONCE_LEN],
) -> Option<bool> {
    if challenge_is_fresh(hub_secret, src, bucket, nonce) {
        return Some(false);
    }
    let now = constant_time_eq(&visit_nonce(hub_secret, src, bucket), nonce);
    let prev = bucket
        .checked_sub(1)
        .is_some_and(|b| constant_time_eq(&visit_nonce(hub_secret, src, b), nonce));
    (now | prev).then_some(true)
}

/// True when `nonce` is what [`challenge_nonce`] gave `src` in `bucket` or the one before.
pub fn challenge_is_fresh(
    hub_secret: &[u8; KEY_LEN],
    src: &SocketAddr,
    bucket: u64,
    nonce: &[u8; NONCE_LEN],
) -> bool {
    let now = constant_time_eq(&challenge_nonce(hub_secret, src, bucket), nonce);
    let prev = bucket
        .checked_sub(1)
        .is_some_and(|b| constant_time_eq(&challenge_nonce(hub_secret, src, b), nonce));
    now | prev
}
