//! The hub client against a scripted hub built from the same protocol functions vpnhub uses.

use super::*;
use crate::hub::seal::{challenge_nonce, verify_registration};

const T0_TTL: u16 = 60;

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn secret(b: u8) -> StaticSecret {
    StaticSecret::from([b; 32])
}

/// A hub that answers like vpnhub: challenges bound to the source, proofs checked against the
/// source it sees, presence from its table, signals forwarded.
struct FakeHub {
    secret: StaticSecret,
    challenge_secret: [u8; 32],
    registered: Vec<([u8; 32], SocketAddr, Vec<SocketAddr>)>,
}

impl FakeHub {
    fn new() -> Self {
        FakeHub {
            secret: secret(200),
            challenge_secret: [7; 32],
            registered: Vec::new(),
        }
    }

    fn key(&self) -> [u8; 32] {
        crypto::public_key(&self.secret)
    }

    /// The hub's answers to one datagram from `src`: (destination, bytes).
    fn handle(&mut self, data: &[u8], src: SocketAddr) -> Vec<(SocketAddr, Vec<u8>)> {
        let mut out = Vec::new();
        let mut buf = [0u8; MAX_MESSAGE_LEN];
        let mut reply = |to: SocketAddr, m: Message<'_>, out: &mut Vec<_>| {
            let n = m.encode(&mut buf).unwrap();
            out.push((to, buf[..n].to_vec()));
        };
        match Message::parse(data).unwrap() {
            Message::Hello { .. } => {
                let nonce = challenge_nonce(&self.challenge_secret, &src, 0);
                reply(src, Message::Challenge { nonce }, &mut out);
            }
            Message::Register {
                peer,
                nonce,
                proof,
                candidates,
            } => {
                let fresh = nonce == challenge_nonce(&self.challenge_secret, &src, 0);
                if fresh
                    && verify_registration(&self.secret, &peer, &nonce, &src, &candidates, &proof)
                {
                    self.registered.retain(|r| r.0 != peer);
                    self.registered
                        .push((peer, src, candidates.as_slice().to_vec()));
                    reply(
                        src,
                        Message::Registered {
                            observed: src,
                            ttl_secs: T0_TTL,
                        },
                        &mut out,
                    );
                }
            }
            Message::Lookup { peer } => {
                let found = self.registered.iter().find(|r| r.0 == peer);
                let m = Message::Presence {
                    peer,
                    observed: found.map(|r| r.1),
                    candidates: found
                        .map(|r| Candidates::from_slice(&r.2))
                        .unwrap_or_default(),
                };
                reply(src, m, &mut out);
            }
            Message::Signal { to, .. } => {
                if let Some(r) = self.registered.iter().find(|r| r.0 == to) {
                    out.push((r.1, data.to_vec()));
                }
            }
            _ => {}
        }
        out
    }
}

/// Delivers everything `c` (at `src`) has queued to the hub, and the hub's answers back to
/// whichever of `clients` they are for.
fn pump(hub: &mut FakeHub, clients: &mut [(&mut HubClient, SocketAddr)], now: Instant) {
    for _ in 0..10 {
        let mut moved = false;
        for i in 0..clients.len() {
            let src = clients[i].1;
            while let Some(d) = clients[i].0.poll_transmit() {
                moved = true;
                for (to, bytes) in hub.handle(&d, src) {
                    if let Some(c) = clients.iter_mut().find(|c| c.1 == to) {
                        let _ = c.0.handle_input(&bytes, now);
                    }
                }
            }
        }
        if !moved {
            return;
        }
    }
}

fn events(c: &mut HubClient) -> Vec<HubEvent> {
    std::iter::from_fn(|| c.poll_event()).collect()
}

#[test]
fn registers_with_proof_once_it_knows_its_observed_address() {
    let t0 = Instant::now();
    let mut hub = FakeHub::new();
    let me = sa("203.0.113.5:40000");
    let mut c = HubClient::new(hub.key(), secret(1), [1; 32], t0);
    c.handle_timeout(t0);
    assert!(
        c.poll_transmit().is_none(),
        "no hello before the observed address"
    );
    assert_eq!(c.poll_timeout(), None);
    c.set_candidates(&[sa("192.168.1.5:51820")], t0);
    c.set_observed(me, t0);
    pump(&mut hub, &mut [(&mut c, me)], t0);
    assert_eq!(c.state(), HubState::Connected);
    assert_eq!(events(&mut c), vec![HubEvent::Registered { observed: me }]);
    assert_eq!(hub.registered.len(), 1);
    assert_eq!(hub.registered[0].2, vec![sa("192.168.1.5:51820")]);
    assert!(c.rtt().is_some());
    // Renewal at a third of the TTL, and nothing before.
    assert_eq!(c.poll_timeout(), Some(t0 + Duration::from_secs(20)));
}

#[test]
fn a_proof_for_another_address_is_refused_by_the_hub() {
    let t0 = Instant::now();
    let mut hub = FakeHub::new();
    let mut c = HubClient::new(hub.key(), secret(1), [1; 32], t0);
    // We believe we are at .5, but the hub sees .6 (a NAT rebinding): the proof does not match.
    c.set_observed(sa("203.0.113.5:40000"), t0);
    pump(&mut hub, &mut [(&mut c, sa("203.0.113.6:40000"))], t0);
    assert_eq!(c.state(), HubState::Connecting);
    assert!(hub.registered.is_empty());
}

#[test]
fn retries_back_off_then_fail_then_recover() {
    let t0 = Instant::now();
    let mut hub = FakeHub::new();
    let me = sa("203.0.113.5:40000");
    let mut c = HubClient::new(hub.key(), secret(1), [1; 32], t0);
    c.set_observed(me, t0);
    let mut sent = Vec::new();
    let mut now = t0;
    while sent.len() < 8 {
        while c.poll_transmit().is_some() {
            sent.push((now - t0).as_secs());
        }
        now = c.poll_timeout().unwrap();
        c.handle_timeout(now);
    }
    assert_eq!(
        sent,
        vec![0, 1, 3, 7, 15, 31, 61, 91],
        "1 s doubling to 30 s"
    );
    assert_eq!(c.state(), HubState::Failed);
    // The hub comes back: the next attempt registers.
    now = c.poll_timeout().unwrap();
    c.handle_timeout(now);
    pump(&mut hub, &mut [(&mut c, me)], now);
    assert_eq!(c.state(), HubState::Connected);
}

#[test]
fn renews_before_expiry_and_reports_a_lapse() {
    let t0 = Instant::now();
    let mut hub = FakeHub::new();
    let me = sa("203.0.113.5:40000");
    let mut c = HubClient::new(hub.key(), secret(1), [1; 32], t0);
    c.set_observed(me, t0);
    pump(&mut hub, &mut [(&mut c, me)], t0);
    events(&mut c);
    // Renewal at 30 s is answered: still connected, no event.
    let t1 = t0 + Duration::from_secs(30);
    c.handle_timeout(t1);
    pump(&mut hub, &mut [(&mut c, me)], t1);
    assert_eq!(c.state(), HubState::Connected);
    assert!(events(&mut c).is_empty());
    // Then the hub goes silent: the registration lapses 60 s after the last renewal.
    let mut now = t1;
    while now < t1 + Duration::from_secs(61) {
        now = c.poll_timeout().unwrap();
        c.handle_timeout(now);
        while c.poll_transmit().is_some() {}
    }
    assert_eq!(c.state(), HubState::Failed);
    assert_eq!(events(&mut c), vec![HubEvent::Lost]);
}

#[test]
fn call_me_maybe_reaches_the_peer_sealed() {
    let t0 = Instant::now();
    let mut hub = FakeHub::new();
    let (a_at, b_at) = (sa("203.0.113.5:40000"), sa("198.51.100.9:50000"));
    let mut a = HubClient::new(hub.key(), secret(1), [1; 32], t0);
    let mut b = HubClient::new(hub.key(), secret(2), [2; 32], t0);
    a.set_observed(a_at, t0);
    b.set_observed(b_at, t0);
    pump(&mut hub, &mut [(&mut a, a_at), (&mut b, b_at)], t0);
    events(&mut a);
    events(&mut b);
    let b_key = crypto::public_key(&secret(2));
    let a_key = crypto::public_key(&secret(1));

    a.lookup(&b_key, t0);
    a.call_me_maybe(&b_key, &[a_at, sa("192.168.1.5:51820")]);
    pump(&mut hub, &mut [(&mut a, a_at), (&mut b, b_at)], t0);
    assert_eq!(
        events(&mut a),
        vec![HubEvent::Presence {
            peer: b_key,
            observed: Some(b_at),
            candidates: vec![]
        }]
    );
    assert_eq!(
        events(&mut b),
        vec![HubEvent::CallMeMaybe {
            peer: a_key,
            candidates: vec![a_at, sa("192.168.1.5:51820")],
            hard_nat: None,
        }]
    );

    // A peer that knows its NAT is hard says so with its candidates.
    a.set_hard_nat(Some(true));
    a.call_me_maybe(&b_key, &[a_at]);
    pump(&mut hub, &mut [(&mut a, a_at), (&mut b, b_at)], t0);
    assert_eq!(
        events(&mut b),
        vec![HubEvent::CallMeMaybe {
            peer: a_key,
            candidates: vec![a_at],
            hard_nat: Some(true),
        }]
    );

    // What the hub could do to a signal: flip a bit, or re-address it.
    a.call_me_maybe(&b_key, &[a_at]);
    let mut signal = a.poll_transmit().unwrap();
    let last = signal.len() - 1;
    signal[last] ^= 1;
    assert_eq!(b.handle_input(&signal, t0), Err(HubClientError::Envelope));
    a.call_me_maybe(&b_key, &[a_at]);
    let signal = a.poll_transmit().unwrap();
    assert_eq!(a.handle_input(&signal, t0), Err(HubClientError::Unexpected));
}

#[test]
fn unsolicited_and_malformed_messages_are_refused() {
    let t0 = Instant::now();
    let hub = FakeHub::new();
    let mut c = HubClient::new(hub.key(), secret(1), [1; 32], t0);
    let mut buf = [0u8; MAX_MESSAGE_LEN];
    let n = Message::Registered {
        observed: sa("1.2.3.4:5"),
        ttl_secs: 0,
    }
    .encode(&mut buf)
    .unwrap();
    assert_eq!(
        c.handle_input(&buf[..n], t0),
        Err(HubClientError::Unexpected)
    );
    let n = Message::Challenge { nonce: [1; 16] }
        .encode(&mut buf)
        .unwrap();
    assert_eq!(
        c.handle_input(&buf[..n], t0),
        Err(HubClientError::Unexpected)
    );
    assert!(matches!(
        c.handle_input(b"\xF2VHBjunk", t0),
        Err(HubClientError::Parse(_))
    ));
    assert_eq!(c.state(), HubState::Connecting);
}

#[test]
fn a_zero_ttl_does_not_make_the_client_spin() {
    let t0 = Instant::now();
    let hub = FakeHub::new();
    let mut c = HubClient::new(hub.key(), secret(1), [1; 32], t0);
    c.set_observed(sa("203.0.113.5:40000"), t0);
    c.poll_transmit();
    let mut buf = [0u8; MAX_MESSAGE_LEN];
    let n = Message::Registered {
        observed: sa("203.0.113.5:40000"),
        ttl_secs: 0,
    }
    .encode(&mut buf)
    .unwrap();
    c.handle_input(&buf[..n], t0).unwrap();
    assert!(c.poll_timeout().unwrap() >= t0 + MIN_RENEW.min(Duration::ZERO));
    let next_hello = c.next_hello.unwrap();
    assert_eq!(next_hello, t0 + MIN_RENEW);
}

#[test]
fn a_hub_that_forgot_us_is_registered_with_again_when_a_lookup_goes_unanswered() {
    let t0 = Instant::now();
    let mut hub = FakeHub::new();
    let me = sa("203.0.113.5:40000");
    let mut c = HubClient::new(hub.key(), secret(1), [1; 32], t0);
    c.set_observed(me, t0);
    pump(&mut hub, &mut [(&mut c, me)], t0);
    events(&mut c);
    assert_eq!(c.state(), HubState::Connected);
    // An answered lookup changes nothing.
    c.lookup(&[7; 32], t0);
    pump(&mut hub, &mut [(&mut c, me)], t0);
    c.handle_timeout(t0 + LOOKUP_ANSWER_WAIT);
    assert!(
        c.poll_transmit().is_none(),
        "no re-registration after an answer"
    );
    // The hub restarts and forgets us: it drops our lookup silently.
    hub = FakeHub::new();
    hub.registered.clear();
    let t1 = t0 + Duration::from_secs(5);
    c.lookup(&[7; 32], t1);
    while c.poll_transmit().is_some() {}
    assert_eq!(c.poll_timeout(), Some(t1 + LOOKUP_ANSWER_WAIT));
    let t2 = t1 + LOOKUP_ANSWER_WAIT;
    c.handle_timeout(t2);
    let hello = c.poll_transmit().expect("a hello at once");
    assert!(matches!(Message::parse(&hello), Ok(Message::Hello { .. })));
    c.transmits.push_front(hello);
    pump(&mut hub, &mut [(&mut c, me)], t2);
    assert_eq!(hub.registered.len(), 1, "registered with the new hub");
}

#[test]
fn unregistered_makes_us_register_again_at_a_bounded_rate() {
    let t0 = Instant::now();
    let mut hub = FakeHub::new();
    let me = sa("203.0.113.5:40000");
    let mut c = HubClient::new(hub.key(), secret(1), [1; 32], t0);
    c.set_observed(me, t0);
    pump(&mut hub, &mut [(&mut c, me)], t0);
    events(&mut c);
    let mut buf = [0u8; MAX_MESSAGE_LEN];
    let n = Message::Unregistered.encode(&mut buf).unwrap();
    let t1 = t0 + Duration::from_secs(5);
    c.handle_input(&buf[..n], t1).unwrap();
    assert_eq!(c.state(), HubState::Connecting);
    assert_eq!(events(&mut c), vec![HubEvent::Forgotten]);
    let hello = c.poll_transmit().expect("a hello at once");
    assert!(matches!(Message::parse(&hello), Ok(Message::Hello { .. })));
    c.transmits.push_front(hello);
    pump(&mut hub, &mut [(&mut c, me)], t1);
    assert_eq!(c.state(), HubState::Connected);
    assert_eq!(events(&mut c), vec![HubEvent::Registered { observed: me }]);
    // Another one right after (spoofed, or a late copy): ignored for UNREGISTERED_MIN_GAP.
    c.handle_input(&buf[..n], t1 + Duration::from_millis(500))
        .unwrap();
    assert_eq!(c.state(), HubState::Connected);
    assert!(c.poll_transmit().is_none());
    c.handle_input(&buf[..n], t1 + UNREGISTERED_MIN_GAP)
        .unwrap();
    assert_eq!(c.state(), HubState::Connecting);
}
