//! The hub core on a fake clock: registration with proof, lookups, forwarding, expiry, reload,
//! and hostile input (silence plus a counter, bounded tables).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use protocol::hub::messages::{Candidates, Message, MAX_MESSAGE_LEN};
use protocol::hub::seal::{envelope_key, registration_proof, seal_envelope};
use protocol::nat::stun::{encode_request, StunClient};
use x25519_dalek::StaticSecret;

use super::*;

const HUB_KEY: u8 = 9;

fn secret(b: u8) -> StaticSecret {
    StaticSecret::from([b; 32])
}

fn key(b: u8) -> Key {
    protocol::noise::crypto::public_key(&secret(b))
}

fn udp(addr: &str) -> Origin {
    Origin {
        transport: Transport::Udp(0),
        addr: addr.parse().unwrap(),
    }
}

/// The only answer is `Unregistered` (a source without a registration).
fn told_unregistered(out: &[Reply]) -> bool {
    out.len() == 1 && Message::parse(&out[0].payload) == Ok(Message::Unregistered)
}

fn hub(admission: Admission, limits: Limits, t0: Instant) -> Hub {
    Hub::new(secret(HUB_KEY), [3; 32], admission, limits, t0)
}

fn allow(keys: &[u8]) -> Admission {
    Admission::Allow(keys.iter().map(|&b| key(b)).collect())
}

fn send(h: &mut Hub, from: Origin, m: &Message<'_>, now: Instant) -> Vec<Reply> {
    let mut buf = [0u8; MAX_MESSAGE_LEN];
    let n = m.encode(&mut buf).unwrap();
    let mut out = Vec::new();
    h.handle(from, &buf[..n], now, &mut out);
    out
}

/// Hello, Challenge, Register as a peer holding `secret(b)` at `from` would; returns the
/// hub's replies to the Register.
fn register(h: &mut Hub, b: u8, from: Origin, cands: &[SocketAddr], now: Instant) -> Vec<Reply> {
    register_as(h, b, from, cands, Message::Hello { peer: key(b) }, now)
}

/// Registers with `hello` (a Hello or a Visit) and the Register its challenge asks for.
fn register_as(
    h: &mut Hub,
    b: u8,
    from: Origin,
    cands: &[SocketAddr],
    hello: Message<'_>,
    now: Instant,
) -> Vec<Reply> {
    let out = send(h, from, &hello, now);
    let Some(Reply { payload, .. }) = out.first() else {
        return Vec::new();
    };
    let Ok(Message::Challenge { nonce }) = Message::parse(payload) else {
        panic!("expected a challenge");
    };
    let candidates = Candidates::from_slice(cands);
    let proof = registration_proof(
        &secret(b),
        &key(HUB_KEY),
        &key(b),
        &key(HUB_KEY),
        &nonce,
        &from.addr,
        &candidates,
    )
    .unwrap();
    let reg = Message::Register {
        peer: key(b),
        nonce,
        proof,
        candidates,
    };
    send(h, from, &reg, now)
}

#[test]
fn stun_binding_request_gets_the_source_as_mapped_address() {
    let t0 = Instant::now();
    let mut h = hub(Admission::Any, Limits::default(), t0);
    let server: SocketAddr = "192.0.2.1:3478".parse().unwrap();
    let me = udp("203.0.113.7:40000");
    // vpnd's own STUN client is the reference: it must accept the hub's answer.
    let mut client = StunClient::new(&[server], [1; 32], t0);
    client.handle_timeout(t0);
    let req = client.poll_transmit().unwrap();
    let mut out = Vec::new();
    h.handle(me, &req.payload, t0, &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].to, me);
    client.handle_input(server, &out[0].payload, t0).unwrap();
    assert_eq!(client.public_endpoints(t0), vec![me.addr]);
    assert_eq!(h.counters().stun_answered, 1);
}

#[test]
fn register_lookup_and_forward_between_two_peers() {
    let t0 = Instant::now();
    let mut h = hub(allow(&[1, 2]), Limits::default(), t0);
    let (a, b) = (udp("198.51.100.1:1000"), udp("198.51.100.2:2000"));
    let lan: SocketAddr = "192.168.1.5:51820".parse().unwrap();
    let out = register(&mut h, 1, a, &[lan], t0);
    assert_eq!(
        Message::parse(&out[0].payload).unwrap(),
        Message::Registered {
            observed: a.addr,
            ttl_secs: 90
        }
    );
    // b is not registered yet: a's lookup says offline.
    let out = send(&mut h, a, &Message::Lookup { peer: key(2) }, t0);
    assert!(matches!(
        Message::parse(&out[0].payload).unwrap(),
        Message::Presence { observed: None, .. }
    ));
    assert_eq!(register(&mut h, 2, b, &[], t0).len(), 1);
    let out = send(&mut h, b, &Message::Lookup { peer: key(1) }, t0);
    assert_eq!(
        Message::parse(&out[0].payload).unwrap(),
        Message::Presence {
            peer: key(1),
            observed: Some(a.addr),
            candidates: Candidates::from_slice(&[lan])
        }
    );
    // a → b: forwarded byte for byte to b's observed address.
    let k = envelope_key(&secret(1), &key(2)).unwrap();
    let mut env = [0u8; 128];
    let n = seal_envelope(&k, &[7; 24], &key(1), &key(2), b"call me maybe", &mut env).unwrap();
    let sig = Message::Signal {
        to: key(2),
        from: key(1),
        envelope: &env[..n],
    };
    let out = send(&mut h, a, &sig, t0);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].to, b);
    assert_eq!(Message::parse(&out[0].payload).unwrap(), sig);
    assert_eq!(h.counters().signals_forwarded, 1);
}

#[test]
fn signal_must_come_from_where_its_sender_is_registered() {
    let t0 = Instant::now();
    let mut h = hub(allow(&[1, 2, 3]), Limits::default(), t0);
    let (a, b, c) = (
        udp("198.51.100.1:1000"),
        udp("198.51.100.2:2000"),
        udp("198.51.100.3:3000"),
    );
    register(&mut h, 1, a, &[], t0);
    register(&mut h, 2, b, &[], t0);
    let sig = |from| Message::Signal {
        to: key(2),
        from,
        envelope: &[0; 40],
    };
    // From an unregistered source: told so (nothing forwarded); from c claiming to be a:
    // silence.
    assert!(told_unregistered(&send(&mut h, c, &sig(key(1)), t0)));
    assert_eq!(h.counters().drop_unregistered, 1);
    register(&mut h, 3, c, &[], t0);
    assert!(send(&mut h, c, &sig(key(1)), t0).is_empty());
    assert_eq!(h.counters().drop_spoofed_from, 1);
    // To an offline peer: the sender hears it is offline.
    let out = send(
        &mut h,
        a,
        &Message::Signal {
            to: key(4),
            from: key(1),
            envelope: &[0; 40],
        },
        t0,
    );
    assert!(matches!(
        Message::parse(&out[0].payload).unwrap(),
        Message::Presence { observed: None, .. }
    ));
    assert_eq!(h.counters().signals_to_offline, 1);
}

#[test]
fn forged_stale_and_unadmitted_registrations_get_silence_and_counters() {
    let t0 = Instant::now();
    let mut h = hub(allow(&[1]), Limits::default(), t0);
    let a = udp("198.51.100.1:1000");
    // Outside admission: no challenge at all.
    assert!(register(&mut h, 2, a, &[], t0).is_empty());
    assert_eq!(h.counters().drop_not_admitted, 1);
    // A proof made without the private key.
    let out = send(&mut h, a, &Message::Hello { peer: key(1) }, t0);
    let Message::Challenge { nonce } = Message::parse(&out[0].payload).unwrap() else {
        panic!()
    };
    let forged = |nonce, from: Origin| Message::Register {
        peer: key(1),
        nonce,
        proof: registration_proof(
            &secret(5),
            &key(HUB_KEY),
            &key(1),
            &key(HUB_KEY),
            &nonce,
            &from.addr,
            &Candidates::default(),
        )
        .unwrap(),
        candidates: Candidates::default(),
    };
    assert!(send(&mut h, a, &forged(nonce, a), t0).is_empty());
    assert_eq!(h.counters().drop_bad_proof, 1);
    // A nonce issued to another source, or two buckets old.
    assert!(send(&mut h, udp("198.51.100.1:1001"), &forged(nonce, a), t0).is_empty());
    assert!(send(&mut h, a, &forged(nonce, a), t0 + 2 * NONCE_BUCKET).is_empty());
    assert_eq!(h.counters().drop_stale_nonce, 2);
    // Hub-only messages and junk.
    assert!(send(&mut h, a, &Message::Challenge { nonce }, t0).is_empty());
    assert_eq!(h.counters().drop_wrong_direction, 1);
    let mut out = Vec::new();
    for junk in [
        &b""[..],
        b"\xF2VHB",
        b"\xF2VHB\x01\x09abc",
        &[0u8; 20],
        b"GET / HTTP/1.1",
    ] {
        h.handle(a, junk, t0, &mut out);
    }
    assert!(out.is_empty());
    assert_eq!(h.counters().drop_malformed, 5);
    assert_eq!(h.registered(), 0);
}

#[test]
fn stun_other_than_binding_request_is_dropped() {
    let t0 = Instant::now();
    let mut h = hub(Admission::Any, Limits::default(), t0);
    let a = udp("198.51.100.1:1000");
    // A success response (what a reflector attack would bounce) is not answered.
    let resp = protocol::nat::stun::encode_success([1; 12], a.addr);
    let mut out = Vec::new();
    h.handle(a, &resp, t0, &mut out);
    // A request with a corrupted fingerprint neither.
    let mut bad = encode_request([2; 12]);
    let last = bad.len() - 1;
    bad[last] ^= 1;
    h.handle(a, &bad, t0, &mut out);
    assert!(out.is_empty());
    assert_eq!(h.counters().drop_stun_other, 2);
}

#[test]
fn registrations_expire_unless_renewed_and_renewal_can_move() {
    let t0 = Instant::now();
    let mut h = hub(allow(&[1, 2]), Limits::default(), t0);
    let (a, b) = (udp("198.51.100.1:1000"), udp("198.51.100.2:2000"));
    register(&mut h, 1, a, &[], t0);
    register(&mut h, 2, b, &[], t0);
    let t1 = t0 + Duration::from_secs(60);
    // Peer 1 renews from a new NAT mapping; peer 2 does not.
    let a2 = udp("198.51.100.1:1555");
    assert_eq!(register(&mut h, 1, a2, &[], t1).len(), 1);
    let t2 = t0 + REGISTRATION_TTL + SWEEP_INTERVAL;
    h.handle_timeout(t2);
    assert_eq!(h.registered(), 1);
    assert_eq!(h.counters().expired, 1);
    // The old mapping no longer speaks for peer 1; the new one does.
    assert!(told_unregistered(&send(
        &mut h,
        a,
        &Message::Lookup { peer: key(1) },
        t2
    )));
    let out = send(&mut h, a2, &Message::Lookup { peer: key(2) }, t2);
    assert!(matches!(
        Message::parse(&out[0].payload).unwrap(),
        Message::Presence { observed: None, .. }
    ));
}

#[test]
fn reload_evicts_peers_no_longer_admitted() {
    let t0 = Instant::now();
    let mut h = hub(allow(&[1, 2]), Limits::default(), t0);
    register(&mut h, 1, udp("198.51.100.1:1000"), &[], t0);
    register(&mut h, 2, udp("198.51.100.2:2000"), &[], t0);
    assert_eq!(h.set_admission(allow(&[2])), 1);
    assert_eq!(h.registered(), 1);
    assert!(register(&mut h, 1, udp("198.51.100.1:1000"), &[], t0).is_empty());
    assert_eq!(h.set_admission(Admission::Any), 0);
    assert_eq!(
        register(&mut h, 1, udp("198.51.100.1:1000"), &[], t0).len(),
        1
    );
}

#[test]
fn tcp_registrations_end_with_their_connection() {
    let t0 = Instant::now();
    let mut h = hub(Admission::Any, Limits::default(), t0);
    let t = Origin {
        transport: Transport::Tcp(7),
        addr: "198.51.100.1:1000".parse().unwrap(),
    };
    register(&mut h, 1, t, &[], t0);
    assert_eq!(h.registered(), 1);
    h.connection_closed(7);
    assert_eq!(h.registered(), 0);
}

#[test]
fn registration_flood_keeps_tables_bounded() {
    let t0 = Instant::now();
    let limits = Limits {
        max_registrations: 50,
        max_sources: 100,
        ..Limits::default()
    };
    let mut h = hub(Admission::Any, limits, t0);
    // 300 real keys from 300 source IPs within one second: the table stops at its cap.
    for i in 0..300u32 {
        let b = (i % 250 + 1) as u8;
        let ip = [10, (i >> 8) as u8, i as u8, 1];
        let from = Origin {
            transport: Transport::Udp(0),
            addr: SocketAddr::from((ip, 4000)),
        };
        register(&mut h, b, from, &[], t0);
    }
    assert_eq!(h.registered(), 50);
    assert!(h.counters().drop_table_full > 0);
    assert!(h.tracked_sources() <= 100);
    // One source hammering: past its burst it is rate limited.
    h.handle_timeout(t0 + SWEEP_INTERVAL);
    let t1 = t0 + SWEEP_INTERVAL;
    let (sent, limited) = (h.counters().challenges_sent, h.counters().drop_rate_limited);
    let a = udp("192.0.2.9:1");
    for _ in 0..1000 {
        send(&mut h, a, &Message::Hello { peer: key(1) }, t1);
    }
    let burst = u64::from(limits.source_burst);
    assert_eq!(h.counters().challenges_sent - sent, burst);
    assert_eq!(h.counters().drop_rate_limited - limited, 1000 - burst);
}

proptest::proptest! {
    /// Any bytes from any source, hub-shaped or not: no panic, no reply to a source that never
    /// registered except STUN answers, challenges and `Unregistered` (each no bigger than
    /// its request and within the per-source rate), and tables within their caps.
    #[test]
    fn prop_hostile_bytes_never_panic(
        msgs in proptest::collection::vec(
            (proptest::collection::vec(proptest::prelude::any::<u8>(), 0..700),
             proptest::prelude::any::<[u8; 4]>(), proptest::prelude::any::<u16>(),
             proptest::prelude::any::<bool>(), 0u8..8),
            1..64)
    ) {
        let t0 = Instant::now();
        let limits = Limits { max_registrations: 4, max_sources: 8, ..Limits::default() };
        let mut h = hub(Admission::Any, limits, t0);
        let mut out = Vec::new();
        for (i, (mut b, ip, port, magic, t)) in msgs.into_iter().enumerate() {
            if magic && b.len() >= 6 {
                b[..4].copy_from_slice(&protocol::hub::messages::MAGIC);
                b[4] = protocol::hub::messages::VERSION;
                b[5] = t;
            }
            let from = Origin { transport: Transport::Udp(0), addr: SocketAddr::from((ip, port)) };
            h.handle(from, &b, t0 + Duration::from_millis(i as u64 * 100), &mut out);
        }
        proptest::prop_assert!(h.registered() <= 4);
        proptest::prop_assert!(h.tracked_sources() <= 8);
        for r in &out {
            let ok = matches!(
                Message::parse(&r.payload),
                Ok(Message::Challenge { .. } | Message::Unregistered)
            ) || protocol::nat::demux::classify(&r.payload) == protocol::nat::demux::Kind::Stun;
            proptest::prop_assert!(ok, "unexpected reply {:?}", r);
        }
    }
}

/// Two hubs sharing a store, the store faked by a map and a direct hand-off: the contract the
/// Redis layer carries out, on the engine alone.
#[test]
fn shared_store_lookup_and_signal_across_two_hubs() {
    use std::collections::HashMap;
    let t0 = Instant::now();
    let mut h1 = hub(allow(&[1, 2]), Limits::default(), t0);
    let mut h2 = hub(allow(&[1, 2]), Limits::default(), t0);
    h1.share([1; 16]);
    h2.share([2; 16]);
    let mut store: HashMap<Key, Vec<u8>> = HashMap::new();
    let apply = |ops: Vec<StoreOp>, store: &mut HashMap<Key, Vec<u8>>| -> Vec<StoreOp> {
        let mut rest = Vec::new();
        for op in ops {
            match op {
                StoreOp::Put { peer, record } => {
                    store.insert(peer, record);
                }
                StoreOp::Remove { peer } => {
                    store.remove(&peer);
                }
                other => rest.push(other),
            }
        }
        rest
    };
    let (a, b) = (udp("198.51.100.1:1000"), udp("198.51.100.2:2000"));
    let lan: SocketAddr = "192.168.1.5:51820".parse().unwrap();
    assert_eq!(register(&mut h1, 1, a, &[lan], t0).len(), 1);
    assert_eq!(register(&mut h2, 2, b, &[], t0).len(), 1);
    assert!(apply(h1.drain_store_ops(), &mut store).is_empty());
    assert!(apply(h2.drain_store_ops(), &mut store).is_empty());
    assert_eq!(store.len(), 2);

    // A lookup on hub 2 of the peer on hub 1 is not answered locally but asked of the store...
    let out = send(&mut h2, b, &Message::Lookup { peer: key(1) }, t0);
    assert!(out.is_empty());
    let ops = apply(h2.drain_store_ops(), &mut store);
    assert_eq!(
        ops,
        vec![StoreOp::Lookup {
            peer: key(1),
            reply_to: b
        }]
    );
    // ...and answered from the record, as a local lookup would be.
    let mut out = Vec::new();
    h2.remote_presence(b, key(1), store.get(&key(1)).map(|v| &v[..]), &mut out);
    assert_eq!(out[0].to, b);
    assert_eq!(
        Message::parse(&out[0].payload).unwrap(),
        Message::Presence {
            peer: key(1),
            observed: Some(a.addr),
            candidates: Candidates::from_slice(&[lan])
        }
    );
    assert_eq!(h2.counters().lookups_remote, 1);

    // A signal from 1 (hub 1) to 2 (hub 2): handed to hub 2, which sends it to b.
    let k = envelope_key(&secret(1), &key(2)).unwrap();
    let mut env = [0u8; 128];
    let n = seal_envelope(&k, &[7; 24], &key(1), &key(2), b"call me maybe", &mut env).unwrap();
    let sig = Message::Signal {
        to: key(2),
        from: key(1),
        envelope: &env[..n],
    };
    assert!(send(&mut h1, a, &sig, t0).is_empty());
    let ops = apply(h1.drain_store_ops(), &mut store);
    let [StoreOp::Signal { to, reply_to, raw }] = &ops[..] else {
        panic!("{ops:?}")
    };
    assert_eq!((*to, *reply_to), (key(2), a));
    let target = h1.signal_target(to, store.get(to).map(|v| &v[..]));
    assert_eq!(target, Some([2; 16]));
    let mut out = Vec::new();
    h2.deliver_remote(raw, t0, &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].to, b);
    assert_eq!(Message::parse(&out[0].payload).unwrap(), sig);
    assert_eq!(h2.counters().signals_from_remote, 1);

    // Junk from the store: a record that does not parse answers offline, a handed-off
    // message that is no signal (or for no one here) is dropped.
    let mut out = Vec::new();
    h2.remote_presence(b, key(1), Some(b"junk"), &mut out);
    assert!(matches!(
        Message::parse(&out[0].payload).unwrap(),
        Message::Presence { observed: None, .. }
    ));
    assert_eq!(h2.counters().store_bad_record, 1);
    let mut out = Vec::new();
    h2.deliver_remote(b"junk", t0, &mut out);
    h1.deliver_remote(raw, t0, &mut out);
    assert!(out.is_empty());
    assert_eq!(h2.counters().drop_remote_signal, 1);
    assert_eq!(h1.counters().drop_remote_signal, 1);

    // A relay to the peer on the other hub: hub 2 (relay on) asks the store where 1 is, reads
    // hub 1's directory entry and answers RelayElsewhere with hub 1's key and address.
    h2.enable_relay();
    h1.set_advertise("203.0.113.1:3478".parse().unwrap());
    let own = h1.hub_info().expect("a directory entry");
    assert_eq!(
        crate::engine::shared::parse_hub_info(&own),
        Some((*h1.public_key(), "203.0.113.1:3478".parse().unwrap()))
    );
    // (Both test hubs share a key; hub 1's entry as another hub's key would read.)
    let info =
        crate::engine::shared::encode_hub_info(key(0x42), "203.0.113.1:3478".parse().unwrap());
    assert!(send(&mut h2, b, &Message::RelayOpen { peer: key(1) }, t0).is_empty());
    let ops = apply(h2.drain_store_ops(), &mut store);
    assert_eq!(
        ops,
        vec![StoreOp::RelayHome {
            peer: key(1),
            reply_to: b
        }]
    );
    let home = h2.relay_home(&key(1), store.get(&key(1)).map(|v| &v[..]));
    assert_eq!(home, Some([1; 16]));
    let mut out = Vec::new();
    h2.relay_elsewhere(b, key(1), Some(&info), &mut out);
    assert_eq!(out[0].to, b);
    assert_eq!(
        Message::parse(&out[0].payload).unwrap(),
        Message::RelayElsewhere {
            peer: key(1),
            hub: key(0x42),
            addr: "203.0.113.1:3478".parse().unwrap()
        }
    );
    // An entry naming this hub's own key is no other hub.
    let mut out = Vec::new();
    h2.relay_elsewhere(b, key(1), Some(&own), &mut out);
    assert!(out.is_empty());
    // No entry (the hub advertises no address) or junk: no answer, counted.
    let mut out = Vec::new();
    h2.relay_elsewhere(b, key(1), None, &mut out);
    h2.relay_elsewhere(b, key(1), Some(b"junk"), &mut out);
    assert!(out.is_empty());
    assert_eq!(h2.counters().relay_elsewhere, 1);

    // A record naming this very hub (left from before its peer went away) is no target.
    assert_eq!(
        h2.signal_target(&key(2), store.get(&key(2)).map(|v| &v[..])),
        None
    );

    // Hub 2 loses b (admission reload): its record is removed from the store.
    h2.set_admission(allow(&[1]));
    apply(h2.drain_store_ops(), &mut store);
    assert!(!store.contains_key(&key(2)));
}

#[test]
fn a_visit_registers_without_moving_the_peers_home_in_the_store() {
    let t0 = Instant::now();
    let mut h = hub(allow(&[1]), Limits::default(), t0);
    h.share([1; 16]);
    let a = udp("198.51.100.1:1000");
    let out = register_as(&mut h, 1, a, &[], Message::Visit { peer: key(1) }, t0);
    assert!(
        matches!(
            Message::parse(&out[0].payload).unwrap(),
            Message::Registered { .. }
        ),
        "a visitor is registered like anyone"
    );
    assert_eq!(h.registered(), 1);
    assert!(h.drain_store_ops().is_empty(), "but not put in the store");
    // The same peer saying Hello afterwards is at home here: stored.
    register(&mut h, 1, a, &[], t0);
    assert!(matches!(&h.drain_store_ops()[..], [StoreOp::Put { .. }]));
}

#[test]
fn memory_store_produces_no_store_operations() {
    let t0 = Instant::now();
    let mut h = hub(allow(&[1]), Limits::default(), t0);
    let a = udp("198.51.100.1:1000");
    register(&mut h, 1, a, &[], t0);
    let out = send(&mut h, a, &Message::Lookup { peer: key(2) }, t0);
    assert_eq!(out.len(), 1, "answered at once, offline");
    assert!(h.drain_store_ops().is_empty());
}

#[test]
fn relay_open_tells_both_ends_and_routes_follow_registrations() {
    let t0 = Instant::now();
    let mut h = hub(allow(&[1, 2, 3]), Limits::default(), t0);
    let (a, b, c) = (
        udp("198.51.100.1:1000"),
        udp("198.51.100.2:2000"),
        udp("198.51.100.3:3000"),
    );
    // Off by default in the engine: a RelayOpen is dropped and counted.
    register(&mut h, 1, a, &[], t0);
    register(&mut h, 2, b, &[], t0);
    assert!(send(&mut h, a, &Message::RelayOpen { peer: key(2) }, t0).is_empty());
    assert_eq!(h.counters().drop_relay_off, 1);
    h.enable_relay();
    assert!(h.relay_routes(t0).unwrap().is_empty());

    // From an unregistered source: silence.
    let stranger = udp("203.0.113.9:9");
    assert!(told_unregistered(&send(
        &mut h,
        stranger,
        &Message::RelayOpen { peer: key(2) },
        t0
    )));
    assert_eq!(h.counters().drop_unregistered, 1);
    // To a peer not registered: an offline presence.
    let out = send(&mut h, a, &Message::RelayOpen { peer: key(3) }, t0);
    assert!(matches!(
        Message::parse(&out[0].payload).unwrap(),
        Message::Presence { observed: None, .. }
    ));

    let out = send(&mut h, a, &Message::RelayOpen { peer: key(2) }, t0);
    assert_eq!(out.len(), 2, "both ends hear of the channel");
    let ready = |r: &Reply| match Message::parse(&r.payload).unwrap() {
        Message::RelayReady { peer, channel } => (r.to, peer, channel),
        m => panic!("expected RelayReady, got {m:?}"),
    };
    let (to_a, peer_a, ch) = ready(&out[0]);
    let (to_b, peer_b, ch_b) = ready(&out[1]);
    assert_eq!((to_a, peer_a), (a, key(2)));
    assert_eq!((to_b, peer_b), (b, key(1)));
    assert_eq!(ch, ch_b);
    // The other end asking gets the same channel.
    let out = send(&mut h, b, &Message::RelayOpen { peer: key(1) }, t0);
    assert_eq!(ready(&out[0]).2, ch);
    let routes = h.relay_routes(t0).unwrap();
    assert_eq!(routes[&ch].forward(&a).unwrap().0, b);
    assert_eq!(routes[&ch].forward(&b).unwrap().0, a);
    assert!(routes[&ch].forward(&c).is_none());
    assert!(h.relay_routes(t0).is_none(), "unchanged: no new snapshot");

    // b roams: the route follows.
    let b2 = udp("198.51.100.2:2001");
    register(&mut h, 2, b2, &[], t0);
    let routes = h.relay_routes(t0).unwrap();
    assert_eq!(routes[&ch].forward(&a).unwrap().0, b2);
    // b expires: the channel closes.
    let later = t0 + REGISTRATION_TTL + SWEEP_INTERVAL;
    register(&mut h, 1, a, &[], t0 + REGISTRATION_TTL / 2);
    h.handle_timeout(later);
    assert!(h.relay_routes(later).unwrap().is_empty());
    assert_eq!(h.counters().relay_channels, 0);
}

#[test]
fn a_source_without_registration_is_told_so_within_the_source_rate() {
    let t0 = Instant::now();
    let limits = Limits {
        source_burst: 3,
        ..Limits::default()
    };
    let mut h = hub(Admission::Any, limits, t0);
    h.enable_relay();
    let stranger = udp("203.0.113.9:9");
    for m in [
        Message::Lookup { peer: key(2) },
        Message::RelayOpen { peer: key(2) },
        Message::Lookup { peer: key(2) },
    ] {
        let out = send(&mut h, stranger, &m, t0);
        assert_eq!(out.len(), 1);
        assert_eq!(Message::parse(&out[0].payload), Ok(Message::Unregistered));
        assert_eq!(out[0].to, stranger);
    }
    // Over the per-source rate: silence.
    assert!(send(&mut h, stranger, &Message::Lookup { peer: key(2) }, t0).is_empty());
    assert_eq!(h.counters().unregistered_sent, 3);
    // A relay frame that no channel takes, from a registered source: no answer.
    let a = udp("198.51.100.1:1000");
    register(&mut h, 1, a, &[], t0 + Duration::from_secs(10));
    let mut out = Vec::new();
    h.relay_miss(a, t0 + Duration::from_secs(10), &mut out);
    assert!(out.is_empty());
}
