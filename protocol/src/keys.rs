//! Key types in WireGuard's base64 form: the static private key, public keys and preshared keys.
//!
//! Secrets are zeroized when dropped and print as `<redacted>` in `Debug`.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use std::fmt;
use std::str::FromStr;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Length in bytes of every WireGuard key.
pub const KEY_LEN: usize = 32;

/// Why a string is not a WireGuard key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Not valid base64.
    #[error("not valid base64")]
    BadBase64,
    /// Decoded to the wrong number of bytes.
    #[error("key must be 32 bytes, got {0}")]
    WrongLength(usize),
}

fn decode(s: &str) -> Result<[u8; KEY_LEN], KeyError> {
    let mut bytes = STANDARD.decode(s.trim()).map_err(|_| KeyError::BadBase64)?;
    if bytes.len() != KEY_LEN {
        let n = bytes.len();
        bytes.zeroize();
        return Err(KeyError::WrongLength(n));
    }
    let mut out = [0u8; KEY_LEN];
    out.copy_from_slice(&bytes);
    bytes.zeroize();
    Ok(out)
}

/// A Curve25519 public key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublicKey(pub [u8; KEY_LEN]);

impl PublicKey {
    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
    /// Base64, as `wg` prints it.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0)
    }
    /// Lower-case hex, as the UAPI speaks it.
    pub fn to_hex(&self) -> String {
        hex(&self.0)
    }
}

impl FromStr for PublicKey {
    type Err = KeyError;
    fn from_str(s: &str) -> Result<Self, KeyError> {
        decode(s).map(PublicKey)
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_base64())
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.to_base64())
    }
}

/// A static X25519 private key.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct PrivateKey([u8; KEY_LEN]);

impl PrivateKey {
    /// Wraps raw bytes, clamping them as `wg genkey` does.
    pub fn from_bytes(mut bytes: [u8; KEY_LEN]) -> Self {
        bytes[0] &= 248;
        bytes[31] &= 127;
        bytes[31] |= 64;
        let k = PrivateKey(bytes);
        bytes.zeroize();
        k
    }
    /// The raw bytes (for writing a key file or the UAPI).
    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(crate::noise::crypto::public_key(&self.secret()))
    }
    /// The X25519 secret for Diffie-Hellman.
    pub fn secret(&self) -> x25519_dalek::StaticSecret {
        x25519_dalek::StaticSecret::from(self.0)
    }
    /// Base64, as `wg genkey` prints it.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0)
    }
}

impl FromStr for PrivateKey {
    type Err = KeyError;
    fn from_str(s: &str) -> Result<Self, KeyError> {
        // Keep the bytes as given: a peer computes our public key from the same bytes either way
        // because X25519 clamps, and `wg` prints back what it was given.
        decode(s).map(PrivateKey)
    }
}

impl PartialEq for PrivateKey {
    fn eq(&self, other: &Self) -> bool {
        crate::noise::crypto::constant_time_eq(&self.0, &other.0)
    }
}
impl Eq for PrivateKey {}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PrivateKey(<redacted>)")
    }
}

/// A symmetric preshared key mixed into the handshake (all zero when unused).
#[derive(Clone, Zeroize, ZeroizeOnDrop, Default)]
pub struct PresharedKey(pub [u8; KEY_LEN]);

impl PresharedKey {
    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
    /// Base64.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0)
    }
}

impl FromStr for PresharedKey {
    type Err = KeyError;
    fn from_str(s: &str) -> Result<Self, KeyError> {
        decode(s).map(PresharedKey)
    }
}

impl PartialEq for PresharedKey {
    fn eq(&self, other: &Self) -> bool {
        crate::noise::crypto::constant_time_eq(&self.0, &other.0)
    }
}
impl Eq for PresharedKey {}

impl fmt::Debug for PresharedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PresharedKey(<redacted>)")
    }
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// Parses exactly 32 bytes of hex (the UAPI's key encoding).
pub fn parse_hex_key(s: &str) -> Option<[u8; KEY_LEN]> {
    let s = s.as_bytes();
    if s.len() != KEY_LEN * 2 {
        return None;
    }
    let mut out = [0u8; KEY_LEN];
    for (i, pair) in s.chunks_exact(2).enumerate() {
        let hi = (pair[0] as char).to_digit(16)?;
        let lo = (pair[1] as char).to_digit(16)?;
        out[i] = (hi * 16 + lo) as u8;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trip_and_errors() {
        let k: PublicKey = "HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw="
            .parse()
            .unwrap();
        assert_eq!(
            k.to_base64(),
            "HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw="
        );
        assert_eq!("@@".parse::<PublicKey>(), Err(KeyError::BadBase64));
        assert_eq!("AAAA".parse::<PublicKey>(), Err(KeyError::WrongLength(3)));
        assert_eq!(parse_hex_key(&k.to_hex()), Some(k.0));
    }

    #[test]
    fn secrets_are_redacted() {
        let k = PrivateKey::from_bytes([7; 32]);
        assert_eq!(format!("{k:?}"), "PrivateKey(<redacted>)");
        let p = PresharedKey([1; 32]);
        assert!(!format!("{p:?}").contains("AQE"));
    }

    #[test]
    fn known_public_key() {
        // From the wg(8) man page example pair.
        let k: PrivateKey = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk="
            .parse()
            .unwrap();
        assert_eq!(
            k.public_key().to_base64(),
            "HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw="
        );
    }
}
