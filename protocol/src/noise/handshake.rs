//! Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s as WireGuard uses it (whitepaper §5.4.2–5.4.4).
//!
//! Pure functions over explicit state: the caller supplies ephemeral key bytes, indices and the
//! timestamp, so every run is reproducible.

use crate::keys::{PresharedKey, PrivateKey, PublicKey};
use crate::noise::crypto::{
    self, aead_open, aead_seal, dh, hash, kdf, AeadError, BufferTooSmall, ZeroDh, TAG_LEN,
};
use crate::noise::messages::{self, Initiation, Response, INITIATION_LEN, RESPONSE_LEN};
use std::sync::LazyLock;
use std::time::Duration;
use x25519_dalek::StaticSecret;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// The Noise protocol name, hashed into the initial chaining key.
pub const CONSTRUCTION: &[u8] = b"Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s";
/// WireGuard's identifier, hashed into the initial transcript hash.
pub const IDENTIFIER: &[u8] = b"WireGuard v1 zx2c4 Jason@zx2c4.com";
/// Label for the mac1 key.
pub const LABEL_MAC1: &[u8] = b"mac1----";
/// Label for the cookie encryption key.
pub const LABEL_COOKIE: &[u8] = b"cookie--";

static INITIAL_CHAIN_KEY: LazyLock<[u8; 32]> = LazyLock::new(|| hash(&[CONSTRUCTION]));
static INITIAL_HASH: LazyLock<[u8; 32]> =
    LazyLock::new(|| hash(&[&*INITIAL_CHAIN_KEY, IDENTIFIER]));

/// Why a handshake message was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    /// An encrypted field did not authenticate (wrong keys, wrong peer, tampering), or an AEAD
    /// step could not run at all.
    #[error("handshake decryption failed")]
    Decrypt,
    /// A Diffie-Hellman produced the all-zero result.
    #[error("all-zero Diffie-Hellman result")]
    ZeroDh,
    /// The initiation's timestamp is not newer than the last accepted one (replay).
    #[error("initiation timestamp is not newer than the last accepted one")]
    Replay,
    /// More than one initiation from this peer within the flood interval.
    #[error("initiation arrived too soon after the previous one")]
    Flood,
    /// The static key in the initiation belongs to no configured peer.
    #[error("initiation from an unknown public key")]
    UnknownPeer,
    /// Both sides initiated at once and ours took precedence. No longer produced: like
    /// WireGuard, both sides now answer (see `Peer::handle_initiation`); kept so the drop
    /// counter names stay stable for monitoring.
    #[error("simultaneous initiation: ours takes precedence")]
    Simultaneous,
    /// A response or cookie reply for a handshake we are not waiting on.
    #[error("no handshake in progress with that index")]
    UnexpectedIndex,
    /// This device has no private key yet ([`StaticIdentity::unset`]), so it takes part in no
    /// handshake.
    #[error("no private key configured")]
    NoPrivateKey,
}

impl From<AeadError> for HandshakeError {
    fn from(_: AeadError) -> Self {
        HandshakeError::Decrypt
    }
}

impl From<BufferTooSmall> for HandshakeError {
    /// The handshake writes fixed-size fields of fixed-size messages, so this cannot happen; it
    /// is reported as a failed AEAD step rather than a panic.
    fn from(_: BufferTooSmall) -> Self {
        HandshakeError::Decrypt
    }
}

impl From<ZeroDh> for HandshakeError {
    fn from(_: ZeroDh) -> Self {
        HandshakeError::ZeroDh
    }
}

/// Our static identity with everything precomputed from it.
///
/// A device may also run without a private key ([`StaticIdentity::unset`], as a UAPI-configured
/// device starts): then it neither sends nor answers any handshake until a key is set.
pub struct StaticIdentity {
    private: PrivateKey,
    secret: StaticSecret,
    public: PublicKey,
    /// HASH(HASH(HASH(CONSTRUCTION) || IDENTIFIER) || S_pub) for initiations sent to us.
    responder_hash: [u8; 32],
    /// Whether `private` is a real key (false for [`StaticIdentity::unset`]).
    set: bool,
}

impl StaticIdentity {
    /// Derives the identity from a private key.
    pub fn new(private: PrivateKey) -> Self {
        let secret = private.secret();
        let public = PublicKey(crypto::public_key(&secret));
        let responder_hash = hash(&[&*INITIAL_HASH, &public.0]);
        StaticIdentity {
            private,
            secret,
            public,
            responder_hash,
            set: true,
        }
    }
    /// The identity of a device with no private key: its public key is all zeros (no peer
    /// can address a handshake to it), [`StaticIdentity::static_static`] fails, so peers never
    /// initiate, and every initiation or response addressed to it is refused with
    /// [`HandshakeError::NoPrivateKey`].
    pub fn unset() -> Self {
        let mut id = StaticIdentity::new(PrivateKey::from_bytes([0; 32]));
        id.public = PublicKey([0; 32]);
        id.responder_hash = hash(&[&*INITIAL_HASH, &id.public.0]);
        id.set = false;
        id
    }
    /// Whether this identity has a private key (see [`StaticIdentity::unset`]).
    pub fn is_set(&self) -> bool {
        self.set
    }
    /// Our public key.
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }
    /// Our private key.
    pub fn private_key(&self) -> &PrivateKey {
        &self.private
    }
    /// DH(our static, their static): precomputed once per peer.
    pub fn static_static(&self, peer: &PublicKey) -> Result<[u8; 32], ZeroDh> {
        if !self.set {
            return Err(ZeroDh);
        }
        dh(&self.secret, &peer.0)
    }
}

impl std::fmt::Debug for StaticIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaticIdentity")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

/// A TAI64N timestamp (12 bytes, big-endian), which compares bytewise in time order.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug, Default)]
pub struct Tai64N(pub [u8; 12]);

impl Tai64N {
    /// From time since the Unix epoch. Nanoseconds are rounded down to 2^24 ns (~16.8 ms) so
    /// the timestamp does not leak a precise clock reading.
    pub fn from_unix(since_epoch: Duration) -> Self {
        const TAI64_BASE: u64 = (1u64 << 62) + 10;
        let secs = TAI64_BASE.wrapping_add(since_epoch.as_secs());
        let nanos = since_epoch.subsec_nanos() & !0x00ff_ffff;
        let mut b = [0u8; 12];
        b[..8].copy_from_slice(&secs.to_be_bytes());
        b[8..].copy_from_slice(&nanos.to_be_bytes());
        Tai64N(b)
    }
}

/// Symmetric keys of a completed handshake, oriented for this side.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct SessionKeys {
    /// Key for sealing what we send.
    pub send: [u8; 32],
    /// Key for opening what we receive.
    pub recv: [u8; 32],
    /// Our index (the receiver field of packets sent to us).
    #[zeroize(skip)]
    pub local_index: u32,
    /// Their index (the receiver field of packets we send).
    #[zeroize(skip)]
    pub remote_index: u32,
    /// Whether we initiated this handshake.
    #[zeroize(skip)]
    pub initiator: bool,
}

impl std::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionKeys")
            .field("local_index", &self.local_index)
            .field("remote_index", &self.remote_index)
            .field("initiator", &self.initiator)
            .finish_non_exhaustive()
    }
}

/// Initiator state kept between sending an initiation and receiving its response.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct InitiatorState {
    /// Our sender index in the initiation.
    #[zeroize(skip)]
    pub local_index: u32,
    ephemeral: [u8; 32],
    chaining_key: [u8; 32],
    hash: [u8; 32],
}

impl std::fmt::Debug for InitiatorState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InitiatorState")
            .field("local_index", &self.local_index)
            .finish_non_exhaustive()
    }
}

/// Writes a handshake initiation into `out` (mac1/mac2 left zero for the cookie layer) and
/// returns the state needed to consume the response.
#[allow(clippy::too_many_arguments)]
pub fn create_initiation(
    identity: &StaticIdentity,
    peer: &PublicKey,
    static_static: &[u8; 32],
    ephemeral_bytes: [u8; 32],
    local_index: u32,
    timestamp: Tai64N,
    out: &mut [u8; INITIATION_LEN],
) -> Result<InitiatorState, HandshakeError> {
    let ephemeral = StaticSecret::from(ephemeral_bytes);
    let e_pub = crypto::public_key(&ephemeral);
    let mut ck = *INITIAL_CHAIN_KEY;
    let mut h = hash(&[&*INITIAL_HASH, &peer.0]);

    out.fill(0);
    messages::write_type(out, messages::TYPE_INITIATION);
    out[4..8].copy_from_slice(&local_index.to_le_bytes());
    out[8..40].copy_from_slice(&e_pub);

    let [c] = kdf::<1>(&ck, &e_pub);
    ck = c;
    h = hash(&[&h, &e_pub]);

    let es = Zeroizing::new(dh(&ephemeral, &peer.0)?);
    let [c, mut k] = kdf::<2>(&ck, &es[..]);
    ck = c;
    if let Err(e) = aead_seal(&k, 0, &identity.public.0, &h, &mut out[40..88]) {
        k.zeroize();
        return Err(e.into());
    }
    h = hash(&[&h, &out[40..88]]);

    let [c, k2] = kdf::<2>(&ck, static_static);
    ck = c;
    k = k2;
    let sealed = aead_seal(&k, 0, &timestamp.0, &h, &mut out[88..116]);
    k.zeroize();
    sealed?;
    h = hash(&[&h, &out[88..116]]);

    let state = InitiatorState {
        local_index,
        ephemeral: ephemeral_bytes,
        chaining_key: ck,
        hash: h,
    };
    ck.zeroize();
    Ok(state)
}

/// Responder state after decrypting an initiation's static key, before the peer is known.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct BegunInitiation {
    /// The initiator's static public key.
    #[zeroize(skip)]
    pub peer: PublicKey,
    /// The initiator's sender index.
    #[zeroize(skip)]
    pub remote_index: u32,
    remote_ephemeral: [u8; 32],
    chaining_key: [u8; 32],
    hash: [u8; 32],
    encrypted_timestamp: [u8; 12 + TAG_LEN],
}

impl std::fmt::Debug for BegunInitiation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BegunInitiation")
            .field("peer", &self.peer)
            .field("remote_index", &self.remote_index)
            .finish_non_exhaustive()
    }
}

/// First half of consuming an initiation: learns who sent it (one DH with our static key).
pub fn begin_initiation(
    identity: &StaticIdentity,
    msg: &Initiation<'_>,
) -> Result<BegunInitiation, HandshakeError> {
    if !identity.set {
        return Err(HandshakeError::NoPrivateKey);
    }
    let e_pub = msg.ephemeral();
    let mut h = identity.responder_hash;
    let [mut ck] = kdf::<1>(&INITIAL_CHAIN_KEY, e_pub);
    h = hash(&[&h, e_pub]);
    let es = Zeroizing::new(dh(&identity.secret, e_pub)?);
    let [c, mut k] = kdf::<2>(&ck, &es[..]);
    ck = c;
    let mut peer = [0u8; 32];
    let r = aead_open(&k, 0, msg.encrypted_static(), &h, &mut peer);
    k.zeroize();
    r?;
    h = hash(&[&h, msg.encrypted_static()]);
    Ok(BegunInitiation {
        peer: PublicKey(peer),
        remote_index: msg.sender(),
        remote_ephemeral: *e_pub,
        chaining_key: ck,
        hash: h,
        encrypted_timestamp: *msg.encrypted_timestamp(),
    })
}

/// Responder state after fully authenticating an initiation.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct ConsumedInitiation {
    /// The initiator's static public key.
    #[zeroize(skip)]
    pub peer: PublicKey,
    /// The initiator's sender index.
    #[zeroize(skip)]
    pub remote_index: u32,
    /// The decrypted timestamp.
    #[zeroize(skip)]
    pub timestamp: Tai64N,
    remote_ephemeral: [u8; 32],
    chaining_key: [u8; 32],
    hash: [u8; 32],
}

impl std::fmt::Debug for ConsumedInitiation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsumedInitiation")
            .field("peer", &self.peer)
            .field("remote_index", &self.remote_index)
            .finish_non_exhaustive()
    }
}

/// Second half: authenticates the initiator with the precomputed static-static DH.
pub fn finish_initiation(
    begun: &BegunInitiation,
    static_static: &[u8; 32],
) -> Result<ConsumedInitiation, HandshakeError> {
    let [ck, mut k] = kdf::<2>(&begun.chaining_key, static_static);
    let mut ts = [0u8; 12];
    let r = aead_open(&k, 0, &begun.encrypted_timestamp, &begun.hash, &mut ts);
    k.zeroize();
    r?;
    let h = hash(&[&begun.hash, &begun.encrypted_timestamp]);
    Ok(ConsumedInitiation {
        peer: begun.peer,
        remote_index: begun.remote_index,
        timestamp: Tai64N(ts),
        remote_ephemeral: begun.remote_ephemeral,
        chaining_key: ck,
        hash: h,
    })
}

/// Writes the response to a consumed initiation (mac1/mac2 left zero) and returns the
/// responder's session keys.
pub fn create_response(
    consumed: &ConsumedInitiation,
    psk: &PresharedKey,
    ephemeral_bytes: [u8; 32],
    local_index: u32,
    out: &mut [u8; RESPONSE_LEN],
) -> Result<SessionKeys, HandshakeError> {
    let ephemeral = StaticSecret::from(ephemeral_bytes);
    let e_pub = crypto::public_key(&ephemeral);
    out.fill(0);
    messages::write_type(out, messages::TYPE_RESPONSE);
    out[4..8].copy_from_slice(&local_index.to_le_bytes());
    out[8..12].copy_from_slice(&consumed.remote_index.to_le_bytes());
    out[12..44].copy_from_slice(&e_pub);

    let [mut ck] = kdf::<1>(&consumed.chaining_key, &e_pub);
    let mut h = hash(&[&consumed.hash, &e_pub]);
    let ee = Zeroizing::new(dh(&ephemeral, &consumed.remote_ephemeral)?);
    [ck] = kdf::<1>(&ck, &ee[..]);
    let se = Zeroizing::new(dh(&ephemeral, &consumed.peer.0)?);
    [ck] = kdf::<1>(&ck, &se[..]);
    let [c, tau, mut k] = kdf::<3>(&ck, psk.as_bytes());
    let tau = Zeroizing::new(tau);
    ck = c;
    h = hash(&[&h, &tau[..]]);
    let sealed = aead_seal(&k, 0, &[], &h, &mut out[44..60]);
    k.zeroize();
    sealed?;
    let [recv, send] = kdf::<2>(&ck, &[]);
    ck.zeroize();
    Ok(SessionKeys {
        send,
        recv,
        local_index,
        remote_index: consumed.remote_index,
        initiator: false,
    })
}

/// Consumes a response to our initiation and returns the initiator's session keys.
pub fn consume_response(
    state: &InitiatorState,
    identity: &StaticIdentity,
    psk: &PresharedKey,
    msg: &Response<'_>,
) -> Result<SessionKeys, HandshakeError> {
    if !identity.set {
        return Err(HandshakeError::NoPrivateKey);
    }
    if msg.receiver() != state.local_index {
        return Err(HandshakeError::UnexpectedIndex);
    }
    let e_pub = msg.ephemeral();
    let [mut ck] = kdf::<1>(&state.chaining_key, e_pub);
    let mut h = hash(&[&state.hash, e_pub]);
    let ephemeral = StaticSecret::from(state.ephemeral);
    let ee = Zeroizing::new(dh(&ephemeral, e_pub)?);
    [ck] = kdf::<1>(&ck, &ee[..]);
    let se = Zeroizing::new(dh(&identity.secret, e_pub)?);
    [ck] = kdf::<1>(&ck, &se[..]);
    let [c, tau, mut k] = kdf::<3>(&ck, psk.as_bytes());
    let tau = Zeroizing::new(tau);
    ck = c;
    h = hash(&[&h, &tau[..]]);
    let mut empty = [0u8; 0];
    let r = aead_open(&k, 0, msg.encrypted_nothing(), &h, &mut empty);
    k.zeroize();
    r?;
    let [send, recv] = kdf::<2>(&ck, &[]);
    ck.zeroize();
    Ok(SessionKeys {
        send,
        recv,
        local_index: state.local_index,
        remote_index: msg.sender(),
        initiator: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::noise::messages::Message;

    fn ident(b: u8) -> StaticIdentity {
        StaticIdentity::new(PrivateKey::from_bytes([b; 32]))
    }

    #[test]
    fn dh_results_and_tau_are_wiped_on_drop() {
        // The intermediate secrets live in `Zeroizing` wrappers (wiped when dropped); this
        // pins that the wrapper zeroes what it holds, which is what the handshake relies on.
        let a = ident(1);
        let b = ident(2);
        let mut es = Zeroizing::new(dh(&a.secret, &b.public_key().0).unwrap());
        assert_ne!(*es, [0; 32]);
        es.zeroize();
        assert_eq!(*es, [0; 32]);
    }

    #[test]
    fn full_handshake_agrees_on_keys() {
        let a = ident(1);
        let b = ident(2);
        let psk = PresharedKey([9; 32]);
        let ss_a = a.static_static(b.public_key()).unwrap();
        let ss_b = b.static_static(a.public_key()).unwrap();
        assert_eq!(ss_a, ss_b);
        let mut init = [0u8; INITIATION_LEN];
        let ts = Tai64N::from_unix(Duration::from_secs(1_700_000_000));
        let st = create_initiation(&a, b.public_key(), &ss_a, [3; 32], 77, ts, &mut init).unwrap();
        let Message::Initiation(m) = Message::parse(&init).unwrap() else {
            panic!()
        };
        let begun = begin_initiation(&b, &m).unwrap();
        assert_eq!(&begun.peer, a.public_key());
        let consumed = finish_initiation(&begun, &ss_b).unwrap();
        assert_eq!(consumed.timestamp, ts);
        let mut resp = [0u8; RESPONSE_LEN];
        let kb = create_response(&consumed, &psk, [4; 32], 88, &mut resp).unwrap();
        let Message::Response(r) = Message::parse(&resp).unwrap() else {
            panic!()
        };
        let ka = consume_response(&st, &a, &psk, &r).unwrap();
        assert_eq!(ka.send, kb.recv);
        assert_eq!(ka.recv, kb.send);
        assert_eq!(ka.remote_index, 88);
        assert_eq!(kb.remote_index, 77);
        // A different preshared key fails the response.
        assert_eq!(
            consume_response(&st, &a, &PresharedKey([8; 32]), &r).unwrap_err(),
            HandshakeError::Decrypt
        );
    }

    #[test]
    fn wrong_responder_cannot_decrypt() {
        let a = ident(1);
        let b = ident(2);
        let c = ident(3);
        let ss = a.static_static(b.public_key()).unwrap();
        let mut init = [0u8; INITIATION_LEN];
        create_initiation(
            &a,
            b.public_key(),
            &ss,
            [3; 32],
            1,
            Tai64N::default(),
            &mut init,
        )
        .unwrap();
        let Message::Initiation(m) = Message::parse(&init).unwrap() else {
            panic!()
        };
        assert_eq!(
            begin_initiation(&c, &m).unwrap_err(),
            HandshakeError::Decrypt
        );
    }

    #[test]
    fn zero_dh_is_rejected() {
        let a = ident(1);
        let mut init = [0u8; INITIATION_LEN];
        messages::write_type(&mut init, messages::TYPE_INITIATION);
        // All-zero ephemeral is a low-order point.
        let Message::Initiation(m) = Message::parse(&init).unwrap() else {
            panic!()
        };
        assert_eq!(
            begin_initiation(&a, &m).unwrap_err(),
            HandshakeError::ZeroDh
        );
        assert!(a.static_static(&PublicKey([0; 32])).is_err());
    }

    #[test]
    fn an_unset_identity_takes_part_in_no_handshake() {
        let a = ident(1);
        let none = StaticIdentity::unset();
        assert!(!none.is_set() && a.is_set());
        assert_eq!(none.public_key(), &PublicKey([0; 32]));
        assert!(none.static_static(a.public_key()).is_err());
        // An initiation (here one for another device) is refused before any DH.
        let b = ident(2);
        let ss = a.static_static(b.public_key()).unwrap();
        let mut init = [0u8; INITIATION_LEN];
        create_initiation(
            &a,
            b.public_key(),
            &ss,
            [3; 32],
            1,
            Tai64N::default(),
            &mut init,
        )
        .unwrap();
        let Message::Initiation(m) = Message::parse(&init).unwrap() else {
            panic!()
        };
        assert_eq!(
            begin_initiation(&none, &m).unwrap_err(),
            HandshakeError::NoPrivateKey
        );
    }

    #[test]
    fn tai64n_orders_and_whitens() {
        let t1 = Tai64N::from_unix(Duration::new(100, 0));
        let t2 = Tai64N::from_unix(Duration::new(100, 1_000));
        let t3 = Tai64N::from_unix(Duration::new(100, 20_000_000));
        assert_eq!(t1, t2);
        assert!(t3 > t1);
        assert_eq!(&t1.0[..8], &((1u64 << 62) + 110).to_be_bytes());
    }
}
