//! NAT-traversal input from the network: datagrams sorted by `nat::demux::classify` and fed to
//! a `StunClient` and a `PathManager`, interleaved with genuine (optionally corrupted) probes
//! and STUN answers, clock steps and the daemon's other inputs.

use super::common::Input;
use protocol::keys::PrivateKey;
use protocol::nat::demux::{classify, Kind};
use protocol::nat::path::{PathKind, PathManager, Source};
use protocol::nat::probe::{Probe, ProbeKey, ProbeType, PROBE_LEN};
use protocol::nat::stun::{encode_success, request_txid, StunClient};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Most operations played from one input.
const MAX_OPS: usize = 256;

fn server(i: u8) -> SocketAddr {
    SocketAddr::from(([192, 0, 2, 1 + (i & 1)], 3478))
}

/// Runs one input.
pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let own = PrivateKey::from_bytes([1; 32]);
    let peer = PrivateKey::from_bytes([2; 32]);
    let t0 = Instant::now();
    let key = ProbeKey::derive(&own.secret(), peer.public_key().as_bytes()).unwrap();
    let peer_key = ProbeKey::derive(&peer.secret(), own.public_key().as_bytes()).unwrap();
    let mut path = PathManager::new(key, [3; 32], t0);
    let mut stun = StunClient::new(&[server(0), server(1)], [4; 32], t0);
    let mut now = t0;
    let mut last_ping: Option<(SocketAddr, [u8; 12])> = None;
    let mut last_req: Vec<(SocketAddr, [u8; 12])> = Vec::new();
    let mut rng = ChaCha20Rng::seed_from_u64(input.u64());
    for _ in 0..MAX_OPS {
        if input.is_empty() {
            break;
        }
        match input.u8() % 6 {
            0 => {
                let from = input.socket_addr();
                let mut d = input.blob().to_vec();
                match classify(&d) {
                    Kind::Stun => {
                        let _ = stun.handle_input(from, &d, now);
                    }
                    Kind::Probe => {
                        let _ = path.handle_probe(from, &mut d, now);
                    }
                    Kind::WireGuard => {
                        assert!((1..=4).contains(&d[0]) && d[1..4] == [0, 0, 0]);
                    }
                    _ => {}
                }
            }
            1 => {
                // A genuine probe from the peer, maybe a pong to our last ping, maybe corrupted.
                let pong = input.bool();
                let (from, txid) = match (pong, last_ping) {
                    (true, Some(p)) if input.bool() => p,
                    _ => (input.socket_addr(), input.array()),
                };
                let p = Probe {
                    kind: if pong {
                        ProbeType::Pong
                    } else {
                        ProbeType::Ping
                    },
                    txid,
                    observed: input.socket_addr(),
                };
                let mut buf = [0u8; PROBE_LEN];
                peer_key.seal(&p, &mut rng, &mut buf).unwrap();
                if input.bool() {
                    let i = input.u8() as usize % PROBE_LEN;
                    buf[i] ^= input.u8() | 1;
                }
                let _ = path.handle_probe(from, &mut buf, now);
            }
            2 => {
                now += Duration::from_millis(u64::from(input.u16()) * 8);
                path.handle_timeout(now);
                stun.handle_timeout(now);
            }
            3 => {
                // A STUN answer to an outstanding request, maybe from the wrong source or corrupted.
                if let Some(&(dst, txid)) =
                    last_req.get(input.u8() as usize % last_req.len().max(1))
                {
                    let mut d = encode_success(txid, input.socket_addr());
                    let from = if input.bool() {
                        dst
                    } else {
                        input.socket_addr()
                    };
                    if input.bool() && !d.is_empty() {
                        let i = input.u8() as usize % d.len();
                        d[i] ^= input.u8() | 1;
                    }
                    let _ = stun.handle_input(from, &d, now);
                }
            }
            4 => {
                let source = match input.u8() % 4 {
                    0 => Source::Configured,
                    1 => Source::Lan,
                    2 => Source::Stun,
                    _ => Source::PeerReflexive,
                };
                let n = input.u8() % 5;
                let addrs: Vec<_> = (0..n).map(|_| input.socket_addr()).collect();
                path.set_candidates(source, &addrs, now);
            }
            _ => match input.u8() % 5 {
                0 => path.link_changed(now),
                1 => path.mapping_changed(now),
                2 => path.note_activity(now),
                3 => path.note_wireguard_progress(now),
                _ => stun.recheck(now),
            },
        }
        // Drain, checking what goes out.
        let mut buf = [0u8; PROBE_LEN];
        while let Some((dst, n)) = path.poll_transmit(&mut buf) {
            assert_eq!(classify(&buf[..n]), Kind::Probe);
            let mut copy = buf;
            let p = peer_key
                .open(&mut copy[..n])
                .expect("our probes open at the peer");
            if p.kind == ProbeType::Ping {
                last_ping = Some((dst, p.txid));
            }
        }
        while path.poll_event().is_some() {}
        while let Some(t) = stun.poll_transmit() {
            assert_eq!(classify(&t.payload), Kind::Stun);
            let txid = request_txid(&t.payload).expect("a Binding request");
            last_req.push((t.dst, txid));
            if last_req.len() > 8 {
                last_req.remove(0);
            }
        }
        while stun.poll_event().is_some() {}
        assert_eq!(path.endpoint().is_some(), path.why_not_direct().is_none());
        assert_eq!(path.endpoint().is_none(), path.kind() == PathKind::None);
        assert!(path.poll_timeout() >= t0);
        let _ = stun.mapping(now);
    }
}

/// Starting inputs: a probe exchange, STUN answers and clock steps.
pub fn seeds() -> Vec<Vec<u8>> {
    vec![
        // Candidates, activity, a round, a pong to the last ping, time passes.
        vec![
            0, 0, 0, 0, 0, 0, 0, 0, 4, 2, 2, 0, 0, 0, 0, 5, 2, 2, 1, 0, 1, 1, 1, 2, 0, 4,
        ],
        // STUN: start, answer both servers, time passes, answer again.
        vec![
            0, 0, 0, 0, 0, 0, 0, 0, 5, 4, 3, 0, 9, 1, 0, 3, 1, 9, 1, 0, 2, 0, 16, 3, 0, 1,
        ],
        // Raw junk and a corrupted genuine ping.
        vec![
            1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 40, 240, 86, 80, 78, 1, 1, 0, 0, 1, 0, 1, 1, 7,
        ],
    ]
}
