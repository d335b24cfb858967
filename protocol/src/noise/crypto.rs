//! WireGuard's cryptographic primitives (whitepaper §5.4): HASH, MAC, HMAC, KDF, AEAD, XAEAD, DH.
//!
//! Thin wrappers over RustCrypto and dalek so the handshake reads like the paper.

use blake2::digest::{Digest, KeyInit, Mac};
use blake2::{Blake2s256, Blake2sMac};
use chacha20poly1305::aead::AeadInOut;
use chacha20poly1305::{ChaCha20Poly1305, XChaCha20Poly1305};
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroize;

/// Length of a BLAKE2s-256 digest, a key, a chaining key.
pub const KEY_LEN: usize = 32;
/// Length of a Poly1305 tag.
pub const TAG_LEN: usize = 16;
/// Length of a WireGuard MAC (keyed BLAKE2s-128).
pub const MAC_LEN: usize = 16;
/// Length of an XChaCha20 nonce.
pub const XNONCE_LEN: usize = 24;

/// The error every failed authentication turns into: no detail leaks to the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("authentication failed")]
pub struct AeadError;

/// HASH(input): BLAKE2s-256 over the concatenation of `parts`.
pub fn hash(parts: &[&[u8]]) -> [u8; KEY_LEN] {
    let mut h = Blake2s256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// MAC(key, input): keyed BLAKE2s with a 16-byte output.
pub fn mac(key: &[u8; KEY_LEN], parts: &[&[u8]]) -> [u8; MAC_LEN] {
    let mut m = <Blake2sMac<blake2::digest::consts::U16> as KeyInit>::new_from_slice(key)
        .expect("32-byte key is valid for BLAKE2s");
    for p in parts {
        Mac::update(&mut m, p);
    }
    m.finalize().into_bytes().into()
}

/// MAC with a key shorter than 32 bytes (a 16-byte cookie keys mac2).
pub fn mac_short_key(key: &[u8], parts: &[&[u8]]) -> [u8; MAC_LEN] {
    let mut m = <Blake2sMac<blake2::digest::consts::U16> as KeyInit>::new_from_slice(key)
        .expect("keys of 1..=32 bytes are valid for BLAKE2s");
    for p in parts {
        Mac::update(&mut m, p);
    }
    m.finalize().into_bytes().into()
}

const HMAC_BLOCK: usize = 64;

/// HMAC(key, input) with BLAKE2s-256 (RFC 2104, block size 64).
pub fn hmac(key: &[u8; KEY_LEN], parts: &[&[u8]]) -> [u8; KEY_LEN] {
    let mut ipad = [0x36u8; HMAC_BLOCK];
    let mut opad = [0x5cu8; HMAC_BLOCK];
    for i in 0..KEY_LEN {
        ipad[i] ^= key[i];
        opad[i] ^= key[i];
    }
    let mut inner = Blake2s256::new();
    inner.update(ipad);
    for p in parts {
        inner.update(p);
    }
    let mut inner_out: [u8; KEY_LEN] = inner.finalize().into();
    let mut outer = Blake2s256::new();
    outer.update(opad);
    outer.update(inner_out);
    let out = outer.finalize().into();
    ipad.zeroize();
    opad.zeroize();
    inner_out.zeroize();
    out
}

/// KDF_n(key, input) for n = 1..=3, returning the first `N` derived keys.
pub fn kdf<const N: usize>(key: &[u8; KEY_LEN], input: &[u8]) -> [[u8; KEY_LEN]; N] {
    debug_assert!((1..=3).contains(&N));
    let mut t0 = hmac(key, &[input]);
    let mut out = [[0u8; KEY_LEN]; N];
    let mut prev: [u8; KEY_LEN] = [0; KEY_LEN];
    for (i, slot) in out.iter_mut().enumerate() {
        let counter = [(i + 1) as u8];
        *slot = if i == 0 {
            hmac(&t0, &[&counter])
        } else {
            hmac(&t0, &[&prev, &counter])
        };
        prev = *slot;
    }
    t0.zeroize();
    prev.zeroize();
    out
}

fn nonce(counter: u64) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[4..].copy_from_slice(&counter.to_le_bytes());
    n
}

/// AEAD(key, counter, plaintext, aad) sealed in place: `buf` holds the plaintext and the tag is
/// written to `tag`.
pub fn aead_seal_in_place(
    cipher: &ChaCha20Poly1305,
    counter: u64,
    aad: &[u8],
    buf: &mut [u8],
) -> [u8; TAG_LEN] {
    cipher
        .encrypt_inout_detached(&nonce(counter).into(), aad, buf.into())
        .expect("WireGuard messages are far below the AEAD length limit")
        .into()
}

/// Opens in place what [`aead_seal_in_place`] sealed.
pub fn aead_open_in_place(
    cipher: &ChaCha20Poly1305,
    counter: u64,
    aad: &[u8],
    buf: &mut [u8],
    tag: &[u8; TAG_LEN],
) -> Result<(), AeadError> {
    cipher
        .decrypt_inout_detached(&nonce(counter).into(), aad, buf.into(), tag.into())
        .map_err(|_| AeadError)
}

/// ChaCha20-Poly1305 for transport data, with WireGuard's nonce (32 zero bits, then the 64-bit
/// little-endian counter) and no associated data.
///
/// Backed by ring's assembly implementation: on the data path it costs a third of the
/// RustCrypto implementation per 1420-byte packet and a ninth per 64-byte packet (measured
/// in docs/decisions/0001-transport-aead.md). Handshake and cookie fields, which need
/// XChaCha20 too and are not on the hot path, keep using the `chacha20poly1305` crate.
pub struct TransportCipher {
    // ring keeps the key inline and never zeroizes it; we do, in `drop`, which is why the key
    // sits in a ManuallyDrop that is never used again after being wiped.
    key: std::mem::ManuallyDrop<ring::aead::LessSafeKey>,
}

impl TransportCipher {
    /// A cipher for `key`.
    pub fn new(key: &[u8; KEY_LEN]) -> Self {
        let unbound = ring::aead::UnboundKey::new(&ring::aead::CHACHA20_POLY1305, key)
            .expect("a 32-byte key is valid for ChaCha20-Poly1305");
        TransportCipher {
            key: std::mem::ManuallyDrop::new(ring::aead::LessSafeKey::new(unbound)),
        }
    }

    /// Seals `buf` in place and returns the tag.
    pub fn seal_in_place(&self, counter: u64, buf: &mut [u8]) -> [u8; TAG_LEN] {
        let nonce = ring::aead::Nonce::assume_unique_for_key(nonce(counter));
        let tag = self
            .key
            .seal_in_place_separate_tag(nonce, ring::aead::Aad::empty(), buf)
            .expect("WireGuard messages are far below the AEAD length limit");
        let mut out = [0u8; TAG_LEN];
        out.copy_from_slice(tag.as_ref());
        out
    }

    /// Opens `buf` in place given its tag; on failure `buf`'s contents are unspecified.
    pub fn open_in_place(
        &self,
        counter: u64,
        buf: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), AeadError> {
        let nonce = ring::aead::Nonce::assume_unique_for_key(nonce(counter));
        self.key
            .open_in_place_separate_tag(
                nonce,
                ring::aead::Aad::empty(),
                ring::aead::Tag::from(*tag),
                buf,
                0..,
            )
            .map(|_| ())
            .map_err(|_| AeadError)
    }
}

// The wipe in `drop` relies on ring keeping the whole key inside `LessSafeKey` itself. A key
// that owned heap memory (or anything else needing cleanup) would need drop glue, so these
// fail the build if a ring upgrade changes that; the size check makes sure the 32-byte key
// material can be inside the bytes we overwrite.
const _: () = assert!(!std::mem::needs_drop::<ring::aead::LessSafeKey>());
const _: () = assert!(std::mem::size_of::<ring::aead::LessSafeKey>() >= KEY_LEN);

impl Drop for TransportCipher {
    fn drop(&mut self) {
        let p = (&mut *self.key as *mut ring::aead::LessSafeKey).cast::<u8>();
        for i in 0..std::mem::size_of::<ring::aead::LessSafeKey>() {
            // SAFETY: `p` points to the key's own bytes, owned by `self`; the key is inline
            // (no heap), it is in a ManuallyDrop and never read or dropped after this loop, so
            // overwriting its bytes cannot be observed. Volatile so the wipe is not elided.
            unsafe { std::ptr::write_volatile(p.add(i), 0) };
        }
    }
}

impl std::fmt::Debug for TransportCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TransportCipher(<redacted>)")
    }
}

/// Builds a ChaCha20-Poly1305 instance for `key`.
pub fn aead_cipher(key: &[u8; KEY_LEN]) -> ChaCha20Poly1305 {
    ChaCha20Poly1305::new(key.into())
}

/// The output buffer given to [`aead_seal`] or [`xaead_seal`] cannot hold the ciphertext and
/// its tag. A caller error, never caused by what the network sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("output buffer too small for ciphertext and tag")]
pub struct BufferTooSmall;

/// AEAD for short handshake fields: seals `plain` into `out[..plain.len() + 16]`.
///
/// Fails, leaving `out` untouched, when `out` is shorter than `plain.len() + 16`; bytes of a
/// longer `out` past that are left as they were.
pub fn aead_seal(
    key: &[u8; KEY_LEN],
    counter: u64,
    plain: &[u8],
    aad: &[u8],
    out: &mut [u8],
) -> Result<(), BufferTooSmall> {
    let (body, tag) = split_sealed(out, plain.len())?;
    body.copy_from_slice(plain);
    let t = aead_seal_in_place(&aead_cipher(key), counter, aad, body);
    tag.copy_from_slice(&t);
    Ok(())
}

/// Splits `out` into the `n`-byte body and the tag that follows it, or fails if `out` is too
/// short for both.
fn split_sealed(out: &mut [u8], n: usize) -> Result<(&mut [u8], &mut [u8]), BufferTooSmall> {
    let total = n.checked_add(TAG_LEN).ok_or(BufferTooSmall)?;
    let out = out.get_mut(..total).ok_or(BufferTooSmall)?;
    Ok(out.split_at_mut(n))
}

/// Splits `sealed` (ciphertext + tag) and picks the part of `out` the plaintext goes to, or
/// `None` when `sealed` has no room for a tag or `out` cannot hold the plaintext.
fn split_open<'a, 'b>(
    sealed: &'a [u8],
    out: &'b mut [u8],
) -> Option<(&'a [u8], [u8; TAG_LEN], &'b mut [u8])> {
    let n = sealed.len().checked_sub(TAG_LEN)?;
    let (body, tag) = sealed.split_at(n);
    let tag: [u8; TAG_LEN] = tag.try_into().ok()?;
    let out = out.get_mut(..n)?;
    Some((body, tag, out))
}

/// AEAD open for short handshake fields: `sealed` is ciphertext + tag, and the plaintext goes to
/// `out[..sealed.len() - 16]`.
///
/// Fails when the tag does not authenticate (the plaintext bytes are then zeroed), and also,
/// without touching `out`, when `sealed` is shorter than a tag or `out` is shorter than the
/// plaintext: like a forgery, such input gets no more detail than [`AeadError`].
pub fn aead_open(
    key: &[u8; KEY_LEN],
    counter: u64,
    sealed: &[u8],
    aad: &[u8],
    out: &mut [u8],
) -> Result<(), AeadError> {
    let (body, tag, out) = split_open(sealed, out).ok_or(AeadError)?;
    out.copy_from_slice(body);
    let r = aead_open_in_place(&aead_cipher(key), counter, aad, out, &tag);
    if r.is_err() {
        out.zeroize();
    }
    r
}

/// XAEAD(key, nonce, plaintext, aad): XChaCha20-Poly1305, used for cookie replies. Seals `plain`
/// into `out[..plain.len() + 16]`; fails, leaving `out` untouched, when `out` is shorter.
pub fn xaead_seal(
    key: &[u8; KEY_LEN],
    nonce: &[u8; XNONCE_LEN],
    plain: &[u8],
    aad: &[u8],
    out: &mut [u8],
) -> Result<(), BufferTooSmall> {
    let (body, tag) = split_sealed(out, plain.len())?;
    body.copy_from_slice(plain);
    let c = XChaCha20Poly1305::new(key.into());
    let t = c
        .encrypt_inout_detached(nonce.into(), aad, body.into())
        // Only messages of more than 2^38 bytes are refused; `plain` is a slice in memory.
        .map_err(|_| BufferTooSmall)?;
    tag.copy_from_slice(&t);
    Ok(())
}

/// Opens what [`xaead_seal`] sealed, with the same failure rules as [`aead_open`].
pub fn xaead_open(
    key: &[u8; KEY_LEN],
    nonce: &[u8; XNONCE_LEN],
    sealed: &[u8],
    aad: &[u8],
    out: &mut [u8],
) -> Result<(), AeadError> {
    let (body, tag, out) = split_open(sealed, out).ok_or(AeadError)?;
    out.copy_from_slice(body);
    let c = XChaCha20Poly1305::new(key.into());
    let r = c
        .decrypt_inout_detached(nonce.into(), aad, (&mut *out).into(), (&tag).into())
        .map_err(|_| AeadError);
    if r.is_err() {
        out.zeroize();
    }
    r
}

/// The result of a Diffie-Hellman that produced the all-zero point (a low-order public key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("Diffie-Hellman produced the all-zero result")]
pub struct ZeroDh;

/// DH(private, public) with X25519; the all-zero result is refused.
pub fn dh(private: &StaticSecret, public: &[u8; KEY_LEN]) -> Result<[u8; KEY_LEN], ZeroDh> {
    let shared = private.diffie_hellman(&PublicKey::from(*public));
    let out = shared.to_bytes();
    if constant_time_is_zero(&out) {
        return Err(ZeroDh);
    }
    Ok(out)
}

/// DH_PUBKEY(private).
pub fn public_key(private: &StaticSecret) -> [u8; KEY_LEN] {
    PublicKey::from(private).to_bytes()
}

/// True when every byte is zero, in time independent of the contents.
pub fn constant_time_is_zero(bytes: &[u8]) -> bool {
    bytes.iter().fold(0u8, |acc, b| acc | b) == 0
}

/// Equality in time independent of where the inputs differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; KEY_LEN] = [7; KEY_LEN];
    const XNONCE: [u8; XNONCE_LEN] = [9; XNONCE_LEN];

    #[test]
    fn short_output_is_an_error_not_a_panic() {
        let plain = [0x5a_u8; 20];
        for n in 0..plain.len() + TAG_LEN {
            let mut out = vec![0xee_u8; n];
            assert_eq!(
                aead_seal(&KEY, 1, &plain, b"ad", &mut out),
                Err(BufferTooSmall)
            );
            assert_eq!(
                xaead_seal(&KEY, &XNONCE, &plain, b"ad", &mut out),
                Err(BufferTooSmall)
            );
            assert!(out.iter().all(|&b| b == 0xee), "untouched on failure");
        }
        let mut sealed = [0u8; 20 + TAG_LEN];
        let mut xsealed = [0u8; 20 + TAG_LEN];
        aead_seal(&KEY, 1, &plain, b"ad", &mut sealed).unwrap();
        xaead_seal(&KEY, &XNONCE, &plain, b"ad", &mut xsealed).unwrap();
        for n in 0..plain.len() {
            let mut out = vec![0xee_u8; n];
            assert_eq!(aead_open(&KEY, 1, &sealed, b"ad", &mut out), Err(AeadError));
            assert_eq!(
                xaead_open(&KEY, &XNONCE, &xsealed, b"ad", &mut out),
                Err(AeadError)
            );
            assert!(out.iter().all(|&b| b == 0xee), "untouched on failure");
        }
        // A longer output than needed is fine for both; the excess is left as it was.
        let mut big = [0xee_u8; 64];
        aead_seal(&KEY, 1, &plain, b"ad", &mut big).unwrap();
        assert_eq!(&big[..sealed.len()], &sealed[..]);
        assert!(big[sealed.len()..].iter().all(|&b| b == 0xee));
        let mut opened = [0xee_u8; 64];
        aead_open(&KEY, 1, &sealed, b"ad", &mut opened).unwrap();
        assert_eq!(&opened[..plain.len()], &plain[..]);
        assert!(opened[plain.len()..].iter().all(|&b| b == 0xee));
        xaead_open(&KEY, &XNONCE, &xsealed, b"ad", &mut opened).unwrap();
        assert_eq!(&opened[..plain.len()], &plain[..]);
    }

    #[test]
    fn failed_open_zeroes_the_plaintext() {
        let mut sealed = [0u8; 4 + TAG_LEN];
        xaead_seal(&KEY, &XNONCE, b"abcd", &[], &mut sealed).unwrap();
        sealed[0] ^= 1;
        let mut out = [0xee_u8; 4];
        assert_eq!(
            xaead_open(&KEY, &XNONCE, &sealed, &[], &mut out),
            Err(AeadError)
        );
        assert_eq!(out, [0; 4]);
        aead_seal(&KEY, 3, b"abcd", &[], &mut sealed).unwrap();
        sealed[0] ^= 1;
        let mut out = [0xee_u8; 4];
        assert_eq!(aead_open(&KEY, 3, &sealed, &[], &mut out), Err(AeadError));
        assert_eq!(out, [0; 4]);
    }
}
