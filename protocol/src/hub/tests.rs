//! Round trips, exact-length parsing, and the proof and envelope bindings.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use proptest::prelude::*;
use x25519_dalek::StaticSecret;

use super::messages::*;
use super::seal::*;
use crate::noise::crypto::public_key;

fn secret(b: u8) -> StaticSecret {
    StaticSecret::from([b; 32])
}

fn roundtrip(m: &Message<'_>) {
    // One byte of room past the largest message, for the "one byte more" check below.
    let mut buf = [0u8; MAX_MESSAGE_LEN + 1];
    let n = m.encode(&mut buf).expect("encode");
    assert_eq!(n, m.encoded_len());
    assert!(looks_like_hub(&buf[..n]));
    assert_eq!(Message::parse(&buf[..n]).expect("parse"), *m);
    // Exact length: one byte more or less is refused.
    assert!(Message::parse(&buf[..n - 1]).is_err());
    let mut longer = buf;
    longer[n] = 0;
    assert!(Message::parse(&longer[..n + 1]).is_err());
}

#[test]
fn never_mistaken_for_wireguard_or_stun() {
    let mut buf = [0u8; MAX_MESSAGE_LEN];
    let n = Message::Hello { peer: [7; 32] }.encode(&mut buf).unwrap();
    // WireGuard: type 1..=4 then three zero bytes; STUN: top two bits of byte 0 zero.
    assert!(!(1..=4).contains(&buf[0]));
    assert_ne!(buf[0] & 0xC0, 0);
    assert_eq!(n, HEADER_LEN + KEY_LEN);
    assert_eq!(Message::parse(&[1, 0, 0, 0, 0, 0]), Err(ParseError::NotHub));
}

#[test]
fn rejects_unknown_version_type_and_bad_fields() {
    let mut buf = [0u8; MAX_MESSAGE_LEN];
    let n = Message::Lookup { peer: [1; 32] }.encode(&mut buf).unwrap();
    let mut v = buf;
    v[4] = 2;
    assert_eq!(Message::parse(&v[..n]), Err(ParseError::Version(2)));
    let mut t = buf;
    t[5] = 99;
    assert_eq!(Message::parse(&t[..n]), Err(ParseError::Type(99)));
    // A candidate count above the bound is refused before any length arithmetic.
    let reg = Message::Register {
        peer: [1; 32],
        nonce: [2; 16],
        proof: [3; 16],
        candidates: Candidates::default(),
    };
    let n = reg.encode(&mut buf).unwrap();
    buf[n - 1] = MAX_CANDIDATES as u8 + 1;
    assert_eq!(Message::parse(&buf[..n]), Err(ParseError::Field(3)));
    // An envelope length over the bound, whatever follows.
    let sig = Message::Signal {
        to: [1; 32],
        from: [2; 32],
        envelope: &[],
    };
    let n = sig.encode(&mut buf).unwrap();
    buf[n - 2..n].copy_from_slice(&(MAX_ENVELOPE_LEN as u16 + 1).to_be_bytes());
    assert_eq!(Message::parse(&buf[..n]), Err(ParseError::Field(7)));
    let big = [0u8; MAX_ENVELOPE_LEN + 1];
    let sig = Message::Signal {
        to: [1; 32],
        from: [2; 32],
        envelope: &big,
    };
    assert_eq!(
        sig.encode(&mut [0u8; 1024]),
        Err(EncodeError::EnvelopeTooLong)
    );
}

#[test]
fn registration_proof_binds_key_nonce_and_source() {
    let (peer_s, hub_s) = (secret(1), secret(2));
    let (peer, hub) = (public_key(&peer_s), public_key(&hub_s));
    let nonce = [5; 16];
    let obs: SocketAddr = "198.51.100.7:40000".parse().unwrap();
    let cands = Candidates::from_slice(&["192.168.1.2:51820".parse().unwrap()]);
    let proof = registration_proof(&peer_s, &hub, &peer, &hub, &nonce, &obs, &cands).unwrap();
    assert!(verify_registration(
        &hub_s, &peer, &nonce, &obs, &cands, &proof
    ));
    // Another source, nonce, candidate list, or a forger without the key: refused.
    let other: SocketAddr = "198.51.100.7:40001".parse().unwrap();
    assert!(!verify_registration(
        &hub_s, &peer, &nonce, &other, &cands, &proof
    ));
    assert!(!verify_registration(
        &hub_s, &peer, &[6; 16], &obs, &cands, &proof
    ));
    assert!(!verify_registration(
        &hub_s,
        &peer,
        &nonce,
        &obs,
        &Candidates::default(),
        &proof
    ));
    let forged = registration_proof(&secret(3), &hub, &peer, &hub, &nonce, &obs, &cands).unwrap();
    assert!(!verify_registration(
        &hub_s, &peer, &nonce, &obs, &cands, &forged
    ));
    // A low-order key never verifies.
    assert!(!verify_registration(
        &hub_s, &[0; 32], &nonce, &obs, &cands, &proof
    ));
}

#[test]
fn envelope_opens_only_for_the_pair_and_direction() {
    let (a_s, b_s, hub_s) = (secret(1), secret(2), secret(9));
    let (a, b) = (public_key(&a_s), public_key(&b_s));
    let ka = envelope_key(&a_s, &b).unwrap();
    assert_eq!(ka, envelope_key(&b_s, &a).unwrap());
    let mut env = [0u8; 128];
    let n = seal_envelope(&ka, &[4; 24], &a, &b, b"call me maybe", &mut env).unwrap();
    let mut out = [0u8; 128];
    let m = open_envelope(&ka, &a, &b, &env[..n], &mut out).unwrap();
    assert_eq!(&out[..m], b"call me maybe");
    // Swapped direction, flipped bit, the hub's own guess at a key: authentication fails.
    assert_eq!(
        open_envelope(&ka, &b, &a, &env[..n], &mut out),
        Err(SealError::Auth)
    );
    let mut bad = env;
    bad[30] ^= 1;
    assert_eq!(
        open_envelope(&ka, &a, &b, &bad[..n], &mut out),
        Err(SealError::Auth)
    );
    let hub_key = envelope_key(&hub_s, &a).unwrap();
    assert_eq!(
        open_envelope(&hub_key, &a, &b, &env[..n], &mut out),
        Err(SealError::Auth)
    );
    assert_eq!(
        open_envelope(&ka, &a, &b, &env[..10], &mut out),
        Err(SealError::Auth)
    );
    assert_eq!(
        envelope_key(&a_s, &[0; 32]),
        Err(crate::noise::crypto::ZeroDh)
    );
}

fn addr() -> impl Strategy<Value = SocketAddr> {
    prop_oneof![
        (any::<[u8; 4]>(), any::<u16>()).prop_map(|(a, p)| SocketAddr::from((a, p))),
        (any::<[u8; 16]>(), any::<u16>())
            .prop_map(|(a, p)| SocketAddr::new(IpAddr::V6(Ipv6Addr::from(a)), p)),
    ]
}

fn cands() -> impl Strategy<Value = Candidates> {
    proptest::collection::vec(addr(), 0..=MAX_CANDIDATES).prop_map(|v| Candidates::from_slice(&v))
}

proptest! {
    #[test]
    fn prop_roundtrip_fixed(k in any::<[u8; 32]>(), k2 in any::<[u8; 32]>(), n in any::<[u8; 16]>(),
                            p in any::<[u8; 16]>(), a in addr(), ttl in any::<u16>(), c in cands(),
                            online in any::<bool>()) {
        roundtrip(&Message::Hello { peer: k });
        roundtrip(&Message::Challenge { nonce: n });
        roundtrip(&Message::Lookup { peer: k });
        roundtrip(&Message::RelayOpen { peer: k });
        roundtrip(&Message::Unregistered);
        roundtrip(&Message::Visit { peer: [5; 32] });
        roundtrip(&Message::RelayElsewhere {
            peer: [3; 32],
            hub: [4; 32],
            addr: "[2001:db8::7]:3478".parse().unwrap(),
        });
        roundtrip(&Message::RelayReady { peer: k, channel: 0x0102_0304 });
        roundtrip(&Message::Register { peer: k, nonce: n, proof: p, candidates: c });
        roundtrip(&Message::Registered { observed: a, ttl_secs: ttl });
        let (observed, candidates) = if online { (Some(a), c) } else { (None, Candidates::default()) };
        roundtrip(&Message::Presence { peer: k2, observed, candidates });
    }

    #[test]
    fn prop_roundtrip_signal(to in any::<[u8; 32]>(), from in any::<[u8; 32]>(),
                             env in proptest::collection::vec(any::<u8>(), 0..=MAX_ENVELOPE_LEN)) {
        roundtrip(&Message::Signal { to, from, envelope: &env });
    }

    #[test]
    fn prop_parse_never_panics(b in proptest::collection::vec(any::<u8>(), 0..700)) {
        let mut b = b;
        if b.len() >= 6 && b[0] & 1 == 0 { b[..4].copy_from_slice(&MAGIC); b[4] = VERSION; }
        if let Ok(m) = Message::parse(&b) {
            prop_assert_eq!(m.encoded_len(), b.len());
            let mut out = [0u8; MAX_MESSAGE_LEN];
            let n = m.encode(&mut out).unwrap();
            prop_assert_eq!(&out[..n], &b[..]);
        }
    }
}

#[test]
fn challenge_nonce_is_bound_to_source_and_expires_after_two_buckets() {
    let secret = [7u8; 32];
    let src: SocketAddr = "203.0.113.5:1234".parse().unwrap();
    let other: SocketAddr = "203.0.113.5:1235".parse().unwrap();
    let n = challenge_nonce(&secret, &src, 10);
    assert!(challenge_is_fresh(&secret, &src, 10, &n));
    assert!(challenge_is_fresh(&secret, &src, 11, &n));
    assert!(!challenge_is_fresh(&secret, &src, 12, &n));
    assert!(!challenge_is_fresh(&secret, &other, 10, &n));
    assert!(!challenge_is_fresh(&[8; 32], &src, 10, &n));
    // Bucket 0 has no predecessor to wrap around to.
    let z = challenge_nonce(&secret, &src, 0);
    assert!(challenge_is_fresh(&secret, &src, 0, &z));
    assert!(!challenge_is_fresh(&secret, &src, 0, &n));
    // A visit's nonce differs and says it is one; a hello's says it is not.
    let v = visit_nonce(&secret, &src, 10);
    assert_ne!(v, n);
    assert_eq!(challenge_kind(&secret, &src, 11, &v), Some(true));
    assert_eq!(challenge_kind(&secret, &src, 11, &n), Some(false));
    assert_eq!(challenge_kind(&secret, &src, 12, &v), None);
    assert_eq!(challenge_kind(&secret, &other, 10, &v), None);
}
