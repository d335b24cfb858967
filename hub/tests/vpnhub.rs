//! vpnhub end to end on loopback: the real binary, real sockets, real keys.
//!
//! - STUN over UDP and over TCP gives the address the test's socket really has.
//! - Two peers register with proof of key (one over UDP, one over TCP), look each other up,
//!   and a sealed envelope goes from one to the other through the hub, opened only by its
//!   recipient.
//! - Junk, forged and stale registrations and a peer outside `admission` get silence, and the
//!   stats endpoint counts each.
//! - SIGHUP reloads `admission` and drops the peer taken out of it.
//! - A flood from thousands of source addresses leaves the hub's memory bounded and the hub
//!   answering.
//! - Two hubs over one Redis (`store: redis://…`, a redis-server the test starts): peers
//!   registered on different hubs look each other up and signal each other, also after one
//!   hub restarts.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use protocol::hub::messages::{Candidates, Message, MAX_MESSAGE_LEN};
use protocol::hub::seal::{
    envelope_key, open_envelope, registration_proof, seal_envelope, ENVELOPE_OVERHEAD,
};
use protocol::hub::{frame, relay};
use protocol::keys::PrivateKey;
use protocol::nat::stun::StunClient;
use x25519_dalek::StaticSecret;

/// How long to wait for an answer that should come; silence is judged over [`QUIET`].
const ANSWER: Duration = Duration::from_secs(3);
const QUIET: Duration = Duration::from_millis(300);

fn private(b: u8) -> PrivateKey {
    PrivateKey::from_bytes([b; 32])
}

fn secret(b: u8) -> StaticSecret {
    private(b).secret()
}

fn public(b: u8) -> [u8; 32] {
    private(b).public_key().0
}

/// The hub process; killed (by its own pid) when the test ends, pass or fail.
struct Hubd {
    child: Child,
    addr: SocketAddr,
    stats: SocketAddr,
    lines: mpsc::Receiver<String>,
}

impl Drop for Hubd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn write_config(dir: &Path, allow: &[u8]) {
    write_config_store(dir, allow, "memory")
}

fn write_config_store(dir: &Path, allow: &[u8], store: &str) {
    let keys: Vec<String> = allow
        .iter()
        .map(|&b| format!("\"{}\"", private(b).public_key()))
        .collect();
    let text = format!(
        "private_key_file: hub.key\nlisten: [\"127.0.0.1:0\"]\nadmission:\n  allow: [{}]\nstore: {store}\n",
        keys.join(", ")
    );
    std::fs::write(dir.join("hub.yaml"), text).unwrap();
}

fn start(dir: &Path, allow: &[u8]) -> Hubd {
    start_store(dir, allow, "memory")
}

fn start_store(dir: &Path, allow: &[u8], store: &str) -> Hubd {
    let key = dir.join("hub.key");
    std::fs::write(&key, private(9).to_base64()).unwrap();
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    write_config_store(dir, allow, store);
    let mut child = Command::new(env!("CARGO_BIN_EXE_vpnhub"))
        .args(["--config"])
        .arg(dir.join("hub.yaml"))
        .args(["--stats-listen", "127.0.0.1:0", "--stats-interval", "0"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("vpnhub: {line}");
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut hub = Hubd {
        child,
        addr: "0.0.0.0:0".parse().unwrap(),
        stats: "0.0.0.0:0".parse().unwrap(),
        lines,
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while hub.addr.port() == 0 || hub.stats.port() == 0 {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = hub.lines.recv_timeout(left).expect("vpnhub did not start");
        if let Some(rest) = line.split("listening on ").nth(1) {
            hub.addr = rest.split(' ').next().unwrap().parse().unwrap();
        }
        if let Some(rest) = line.split("stats endpoint on http://").nth(1) {
            hub.stats = rest.trim_end_matches('/').parse().unwrap();
        }
    }
    hub
}

impl Hubd {
    /// The counter `name` from the stats endpoint.
    fn counter(&self, name: &str) -> u64 {
        let mut s = TcpStream::connect(self.stats).unwrap();
        s.set_read_timeout(Some(ANSWER)).unwrap();
        s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        let want = format!("vpnhub_{name} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&want))
            .unwrap_or_else(|| panic!("no counter {name} in:\n{text}"))
            .parse()
            .unwrap()
    }

    /// Waits (a few seconds at most) for counter `name` to reach `want`.
    fn wait_counter(&self, name: &str, want: u64) {
        self.wait_counter_for(name, want, ANSWER);
    }

    fn wait_counter_for(&self, name: &str, want: u64, within: Duration) {
        let deadline = Instant::now() + within;
        while self.counter(name) < want {
            assert!(Instant::now() < deadline, "{name} stayed below {want}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn wait_for_line(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no log line with {needle:?}"));
            if line.contains(needle) {
                return line;
            }
        }
    }

    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    }
}

/// A peer's connection to the hub, over UDP or TCP.
enum Link {
    Udp(UdpSocket),
    Tcp(TcpStream),
}

impl Link {
    fn udp(hub: SocketAddr) -> Link {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.connect(hub).unwrap();
        Link::Udp(s)
    }

    fn tcp(hub: SocketAddr) -> Link {
        Link::Tcp(TcpStream::connect(hub).unwrap())
    }

    fn send(&mut self, payload: &[u8]) {
        match self {
            Link::Udp(s) => {
                s.send(payload).unwrap();
            }
            Link::Tcp(s) => s.write_all(&frame::encode(payload).unwrap()).unwrap(),
        }
    }

    fn send_msg(&mut self, m: &Message<'_>) {
        let mut buf = [0u8; MAX_MESSAGE_LEN];
        let n = m.encode(&mut buf).unwrap();
        self.send(&buf[..n]);
    }

    /// The next message, or `None` after `wait`.
    fn recv(&mut self, wait: Duration) -> Option<Vec<u8>> {
        let mut buf = [0u8; 2048];
        match self {
            Link::Udp(s) => {
                s.set_read_timeout(Some(wait)).unwrap();
                s.recv(&mut buf).ok().map(|n| buf[..n].to_vec())
            }
            Link::Tcp(s) => {
                s.set_read_timeout(Some(wait)).unwrap();
                let mut head = [0u8; 2];
                s.read_exact(&mut head).ok()?;
                let n = frame::body_len(head).unwrap();
                s.read_exact(&mut buf[..n]).unwrap();
                Some(buf[..n].to_vec())
            }
        }
    }

    fn expect_silence(&mut self) {
        if let Some(m) = self.recv(QUIET) {
            panic!("expected silence, got {:?}", Message::parse(&m));
        }
    }

    /// Our address as the hub sees it, learned with vpnd's own STUN client.
    fn stun(&mut self, hub: SocketAddr) -> SocketAddr {
        let t0 = Instant::now();
        let mut c = StunClient::new(&[hub], [7; 32], t0);
        c.handle_timeout(t0);
        let req = c.poll_transmit().unwrap();
        self.send(&req.payload);
        let resp = self.recv(ANSWER).expect("STUN answer");
        c.handle_input(hub, &resp, t0).unwrap();
        c.public_endpoints(t0)[0]
    }

    fn local(&self) -> SocketAddr {
        match self {
            Link::Udp(s) => s.local_addr().unwrap(),
            Link::Tcp(s) => s.local_addr().unwrap(),
        }
    }

    /// Hello, Challenge, Register for the peer holding key `b`, bound to `observed`.
    fn register(
        &mut self,
        b: u8,
        observed: SocketAddr,
        cands: &[SocketAddr],
    ) -> Option<Message<'static>> {
        self.send_msg(&Message::Hello { peer: public(b) });
        let nonce = match Message::parse(&self.recv(ANSWER)?).unwrap() {
            Message::Challenge { nonce } => nonce,
            other => panic!("expected a challenge, got {other:?}"),
        };
        let candidates = Candidates::from_slice(cands);
        let proof = registration_proof(
            &secret(b),
            &public(9),
            &public(b),
            &public(9),
            &nonce,
            &observed,
            &candidates,
        )
        .unwrap();
        self.send_msg(&Message::Register {
            peer: public(b),
            nonce,
            proof,
            candidates,
        });
        let reply = self.recv(ANSWER)?;
        match Message::parse(&reply).unwrap() {
            Message::Registered { observed, ttl_secs } => {
                Some(Message::Registered { observed, ttl_secs })
            }
            other => panic!("expected registered, got {other:?}"),
        }
    }
}

#[test]
fn stun_register_forward_and_hostile_input() {
    let dir = tempfile::tempdir().unwrap();
    let hub = start(dir.path(), &[1, 2]);

    // Peer 1 over UDP: STUN shows the socket's real address; registration is bound to it.
    let mut a = Link::udp(hub.addr);
    let a_seen = a.stun(hub.addr);
    assert_eq!(a_seen, a.local());
    let lan: SocketAddr = "192.168.7.1:51820".parse().unwrap();
    assert_eq!(
        a.register(1, a_seen, &[lan]),
        Some(Message::Registered {
            observed: a_seen,
            ttl_secs: 90
        })
    );

    // Peer 2 over TCP (the fallback): STUN in a frame, then the same registration.
    let mut b = Link::tcp(hub.addr);
    let b_seen = b.stun(hub.addr);
    assert_eq!(b_seen, b.local());
    assert!(b.register(2, b_seen, &[]).is_some());

    // Lookup: peer 1 learns peer 2's observed address.
    a.send_msg(&Message::Lookup { peer: public(2) });
    let presence = a.recv(ANSWER).unwrap();
    assert_eq!(
        Message::parse(&presence).unwrap(),
        Message::Presence {
            peer: public(2),
            observed: Some(b_seen),
            candidates: Candidates::default()
        }
    );

    // A sealed "call me maybe" from 1 to 2, UDP in, TCP out, opened by 2 alone.
    let k = envelope_key(&secret(1), &public(2)).unwrap();
    let payload = b"candidates: 192.168.7.1:51820";
    let mut env = [0u8; 128];
    let n = seal_envelope(&k, &[3; 24], &public(1), &public(2), payload, &mut env).unwrap();
    a.send_msg(&Message::Signal {
        to: public(2),
        from: public(1),
        envelope: &env[..n],
    });
    let got = b.recv(ANSWER).expect("forwarded signal");
    let Message::Signal { to, from, envelope } = Message::parse(&got).unwrap() else {
        panic!("expected a signal")
    };
    assert_eq!((to, from), (public(2), public(1)));
    let k2 = envelope_key(&secret(2), &public(1)).unwrap();
    let mut out = [0u8; 128];
    let m = open_envelope(&k2, &from, &to, envelope, &mut out).unwrap();
    assert_eq!(&out[..m], payload);
    assert_eq!(m + ENVELOPE_OVERHEAD, envelope.len());
    assert_eq!(hub.counter("signals_forwarded"), 1);

    // Hostile input, each answered by silence.
    let mut x = Link::udp(hub.addr);
    for junk in [
        &b"hello"[..],
        &[0u8; 600],
        b"\xF2VHB\x01\x07short",
        &[0xF2; 40],
    ] {
        x.send(junk);
    }
    x.expect_silence();
    assert_eq!(hub.counter("drop_malformed"), 4);
    // A peer outside admission (key 3) gets no challenge, and its registration is ignored.
    x.send_msg(&Message::Hello { peer: public(3) });
    x.expect_silence();
    assert_eq!(hub.counter("drop_not_admitted"), 1);
    // An admitted key without its private key: a real nonce, a forged proof.
    x.send_msg(&Message::Hello { peer: public(1) });
    let Message::Challenge { nonce } = Message::parse(&x.recv(ANSWER).unwrap()).unwrap() else {
        panic!()
    };
    let forged = registration_proof(
        &secret(3),
        &public(9),
        &public(1),
        &public(9),
        &nonce,
        &x.local(),
        &Candidates::default(),
    )
    .unwrap();
    x.send_msg(&Message::Register {
        peer: public(1),
        nonce,
        proof: forged,
        candidates: Candidates::default(),
    });
    x.expect_silence();
    assert_eq!(hub.counter("drop_bad_proof"), 1);
    // A nonce the hub never issued.
    x.send_msg(&Message::Register {
        peer: public(1),
        nonce: [0; 16],
        proof: forged,
        candidates: Candidates::default(),
    });
    x.expect_silence();
    assert_eq!(hub.counter("drop_stale_nonce"), 1);
    // Lookups and signals from an unregistered source (told `Unregistered` and nothing
    // else), and a signal claiming another sender (silence).
    x.send_msg(&Message::Lookup { peer: public(1) });
    assert_eq!(
        Message::parse(&x.recv(ANSWER).expect("Unregistered")).unwrap(),
        Message::Unregistered
    );
    x.expect_silence();
    assert_eq!(hub.counter("drop_unregistered"), 1);
    a.send_msg(&Message::Signal {
        to: public(1),
        from: public(2),
        envelope: &env[..n],
    });
    a.expect_silence();
    assert_eq!(hub.counter("drop_spoofed_from"), 1);
    // A TCP stream of garbage is closed.
    let mut g = TcpStream::connect(hub.addr).unwrap();
    g.write_all(&[0xFF; 64]).unwrap();
    g.set_read_timeout(Some(ANSWER)).unwrap();
    assert_eq!(
        g.read(&mut [0u8; 16]).unwrap_or(0),
        0,
        "closed without an answer"
    );
    assert_eq!(hub.counter("tcp_closed_bad"), 1);
    // Peer 1 is still registered and served.
    assert_eq!(hub.counter("registered"), 2);

    // SIGHUP with peer 2 taken out of admission: it is dropped at once.
    write_config(dir.path(), &[1]);
    // SAFETY: plain kill(2) on our own child's pid.
    assert_eq!(
        unsafe { libc::kill(hub.child.id() as i32, libc::SIGHUP) },
        0
    );
    hub.wait_for_line("admission reloaded");
    assert_eq!(hub.counter("registered"), 1);
    a.send_msg(&Message::Lookup { peer: public(2) });
    assert!(matches!(
        Message::parse(&a.recv(ANSWER).unwrap()).unwrap(),
        Message::Presence { observed: None, .. }
    ));
    assert!(b.register(2, b_seen, &[]).is_none(), "no longer admitted");
}

#[test]
fn flood_from_many_sources_keeps_memory_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let hub = start(dir.path(), &[1]);
    let before = hub.rss_kib();
    let started = Instant::now();
    // 400 source IPs (all of 127.0.0.0/8 is local on Linux), each sending admitted hellos and
    // forged registrations past its rate limit, and junk: 24,000 datagrams, paced so the
    // kernel's receive buffer (not the hub) is not what drops them.
    let mut hello = [0u8; MAX_MESSAGE_LEN];
    let hn = Message::Hello { peer: public(1) }
        .encode(&mut hello)
        .unwrap();
    let mut reg = [0u8; MAX_MESSAGE_LEN];
    let rn = Message::Register {
        peer: public(1),
        nonce: [1; 16],
        proof: [2; 16],
        candidates: Candidates::from_slice(&["10.0.0.1:1".parse().unwrap(); 8]),
    }
    .encode(&mut reg)
    .unwrap();
    let mut sent = 0u64;
    for i in 0..400u32 {
        let ip = format!("127.1.{}.{}", i / 200, i % 200 + 1);
        let s = UdpSocket::bind((ip.as_str(), 0)).unwrap();
        for j in 0..25 {
            s.send_to(&hello[..hn], hub.addr).unwrap();
            s.send_to(&reg[..rn], hub.addr).unwrap();
            if j % 5 == 0 {
                s.send_to(&[0xAB; 100], hub.addr).unwrap();
                s.send_to(&[0xF2; 600], hub.addr).unwrap();
            }
            sent += if j % 5 == 0 { 4 } else { 2 };
        }
        std::thread::sleep(Duration::from_millis(3));
    }
    // Let the hub drain its socket (the kernel drops what overflowed the receive buffer).
    let drain_deadline = Instant::now() + Duration::from_secs(10);
    let mut last = hub.counter("rx_messages");
    loop {
        std::thread::sleep(Duration::from_millis(200));
        let now = hub.counter("rx_messages");
        if now == last || Instant::now() > drain_deadline {
            break;
        }
        last = now;
    }
    // The hub still answers a legitimate peer.
    let mut a = Link::udp(hub.addr);
    let seen = a.stun(hub.addr);
    assert!(a.register(1, seen, &[]).is_some());
    let rx = hub.counter("rx_messages");
    let after = hub.rss_kib();
    eprintln!(
        "flood: {sent} datagrams in {:?}, hub received {rx}, RSS {before} KiB -> {after} KiB, \
         {} rate-limited, {} stale nonces, {} malformed",
        started.elapsed(),
        hub.counter("drop_rate_limited"),
        hub.counter("drop_stale_nonce"),
        hub.counter("drop_malformed"),
    );
    assert!(rx > sent / 2, "most of the flood reached the hub");
    assert!(hub.counter("drop_stale_nonce") > 0);
    assert!(hub.counter("drop_rate_limited") > 0);
    assert!(hub.counter("drop_malformed") > 0);
    assert!(hub.counter("tracked_sources") <= 16_384);
    // The hub keeps no per-datagram state: its memory grows by well under the flood's size
    // (24,000 datagrams of 38–600 bytes, ~4 MB).
    assert!(
        after.saturating_sub(before) < 8 * 1024,
        "RSS grew from {before} KiB to {after} KiB"
    );
}

/// A redis-server of the test's own on a free loopback port, without persistence; killed by
/// its pid when the test ends.
struct Redis {
    child: Child,
    port: u16,
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Redis {
    /// Starts one, or `None` (the test skips) when redis-server is missing outside CI.
    fn start() -> Option<Redis> {
        Redis::start_on(free_port())
    }

    fn start_on(port: u16) -> Option<Redis> {
        let child = match Command::new("redis-server")
            .args(["--save", "", "--appendonly", "no", "--bind", "127.0.0.1"])
            .args(["--port", &port.to_string()])
            .stdout(Stdio::null())
            .spawn()
        {
            Ok(c) => c,
            Err(e) if std::env::var_os("CI").is_none() => {
                eprintln!(
                    "skipped: cannot run redis-server ({e}); scripts/install-deps.sh installs it"
                );
                return None;
            }
            Err(e) => panic!("cannot run redis-server ({e}); scripts/install-deps.sh installs it"),
        };
        let redis = Redis { child, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
                s.set_read_timeout(Some(ANSWER)).unwrap();
                let mut pong = [0u8; 7];
                if s.write_all(b"PING\r\n").is_ok()
                    && s.read_exact(&mut pong).is_ok()
                    && &pong == b"+PONG\r\n"
                {
                    return Some(redis);
                }
            }
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Looks `peer` up from `link` until the answer shows it online (its registration reaches
/// Redis a moment after its Registered), for at most a few seconds.
fn lookup_online(link: &mut Link, peer: u8) -> Message<'static> {
    let deadline = Instant::now() + ANSWER;
    loop {
        link.send_msg(&Message::Lookup { peer: public(peer) });
        let m = link.recv(ANSWER).expect("presence");
        let m = match Message::parse(&m).unwrap() {
            Message::Presence {
                peer,
                observed,
                candidates,
            } => Message::Presence {
                peer,
                observed,
                candidates,
            },
            other => panic!("expected presence, got {other:?}"),
        };
        if matches!(
            m,
            Message::Presence {
                observed: Some(_),
                ..
            }
        ) || Instant::now() > deadline
        {
            return m;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Peer 1 seals "call me maybe" for peer 2 and sends it through `a`; `b` must receive it and
/// peer 2 open it.
fn signal_1_to_2(a: &mut Link, b: &mut Link, text: &[u8]) {
    let k = envelope_key(&secret(1), &public(2)).unwrap();
    let mut env = [0u8; 128];
    let n = seal_envelope(&k, &[5; 24], &public(1), &public(2), text, &mut env).unwrap();
    a.send_msg(&Message::Signal {
        to: public(2),
        from: public(1),
        envelope: &env[..n],
    });
    let got = b.recv(ANSWER).expect("signal forwarded across hubs");
    let Message::Signal { to, from, envelope } = Message::parse(&got).unwrap() else {
        panic!("expected a signal")
    };
    assert_eq!((to, from), (public(2), public(1)));
    let k2 = envelope_key(&secret(2), &public(1)).unwrap();
    let mut out = [0u8; 128];
    let m = open_envelope(&k2, &from, &to, envelope, &mut out).unwrap();
    assert_eq!(&out[..m], text);
}

#[test]
fn two_hubs_over_redis_share_presence_and_signaling() {
    let Some(redis) = Redis::start() else {
        return;
    };
    let store = format!("redis://127.0.0.1:{}/0", redis.port);
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let hub1 = start_store(d1.path(), &[1, 2], &store);
    let mut hub2 = start_store(d2.path(), &[1, 2], &store);
    hub1.wait_for_line("subscribed to");
    hub2.wait_for_line("subscribed to");
    assert_eq!(hub1.counter("store_connected"), 1);

    // Peer 1 on hub 1 (UDP), peer 2 on hub 2 (TCP, so the delivery is hub 2's own).
    let mut a = Link::udp(hub1.addr);
    let a_seen = a.stun(hub1.addr);
    let lan: SocketAddr = "192.168.7.1:51820".parse().unwrap();
    assert!(a.register(1, a_seen, &[lan]).is_some());
    let mut b = Link::tcp(hub2.addr);
    let b_seen = b.stun(hub2.addr);
    assert!(b.register(2, b_seen, &[]).is_some());

    // Each finds the other through the other hub: observed address and candidates.
    assert_eq!(
        lookup_online(&mut a, 2),
        Message::Presence {
            peer: public(2),
            observed: Some(b_seen),
            candidates: Candidates::default()
        }
    );
    assert_eq!(
        lookup_online(&mut b, 1),
        Message::Presence {
            peer: public(1),
            observed: Some(a_seen),
            candidates: Candidates::from_slice(&[lan])
        }
    );
    assert!(hub1.counter("lookups_remote") >= 1);

    // A sealed signal from 1 via hub 1 reaches 2 via hub 2, and opens.
    signal_1_to_2(&mut a, &mut b, b"candidates: 192.168.7.1:51820");
    // Hub 1 counts after Redis answers its PUBLISH, which may be after the delivery.
    hub1.wait_counter("signals_to_remote", 1);
    assert_eq!(hub2.counter("signals_from_remote"), 1);

    // Hub 2 restarts: its peer's old record names a hub that is gone, so a signal meanwhile
    // gets "offline"; once peer 2 re-registers (as vpnd does on losing its hub) all works.
    drop(b);
    let _ = hub2.child.kill();
    let _ = hub2.child.wait();
    hub2 = start_store(d2.path(), &[1, 2], &store);
    hub2.wait_for_line("subscribed to");
    let k = envelope_key(&secret(1), &public(2)).unwrap();
    let mut env = [0u8; 128];
    let n = seal_envelope(&k, &[6; 24], &public(1), &public(2), b"anyone?", &mut env).unwrap();
    a.send_msg(&Message::Signal {
        to: public(2),
        from: public(1),
        envelope: &env[..n],
    });
    assert!(matches!(
        Message::parse(&a.recv(ANSWER).expect("offline answer")).unwrap(),
        Message::Presence { observed: None, .. }
    ));
    let mut b = Link::tcp(hub2.addr);
    let b_seen2 = b.stun(hub2.addr);
    assert!(b.register(2, b_seen2, &[]).is_some());
    let deadline = Instant::now() + ANSWER;
    while lookup_online(&mut a, 2)
        != (Message::Presence {
            peer: public(2),
            observed: Some(b_seen2),
            candidates: Candidates::default(),
        })
    {
        assert!(
            Instant::now() < deadline,
            "peer 2's new registration not seen"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    signal_1_to_2(&mut a, &mut b, b"again");
    assert_eq!(hub2.counter("signals_from_remote"), 1);
}

#[test]
fn hub_serves_alone_while_redis_is_unreachable_and_joins_when_it_comes() {
    if Command::new("redis-server")
        .arg("--version")
        .output()
        .is_err()
        && std::env::var_os("CI").is_none()
    {
        eprintln!("skipped: no redis-server; scripts/install-deps.sh installs it");
        return;
    }
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let hub = start_store(dir.path(), &[1, 2], &format!("redis://127.0.0.1:{port}/0"));
    hub.wait_for_line("unreachable");
    // Meanwhile: STUN and registration work, a lookup of a peer elsewhere answers offline.
    let mut a = Link::udp(hub.addr);
    let seen = a.stun(hub.addr);
    assert!(a.register(1, seen, &[]).is_some());
    a.send_msg(&Message::Lookup { peer: public(2) });
    assert!(matches!(
        Message::parse(&a.recv(ANSWER).unwrap()).unwrap(),
        Message::Presence { observed: None, .. }
    ));
    assert!(hub.counter("store_errors") >= 1);
    assert_eq!(hub.counter("store_connected"), 0);
    // Redis comes: the hub connects on its next retry, without a restart.
    let _redis = Redis::start_on(port).unwrap();
    hub.wait_for_line("subscribed to");
    assert_eq!(hub.counter("store_connected"), 1);
}

/// A WireGuard transport message of `len` bytes (type 4, reserved bytes zero), as the relay
/// sees one: opaque.
fn wireguard_transport(len: usize, fill: u8) -> Vec<u8> {
    let mut m = vec![fill; len];
    m[..4].copy_from_slice(&[4, 0, 0, 0]);
    m
}

fn relay_frame(channel: u32, payload: &[u8]) -> Vec<u8> {
    let mut h = [0u8; relay::RELAY_HEADER_LEN];
    relay::write_header(channel, &mut h);
    let mut f = h.to_vec();
    f.extend_from_slice(payload);
    f
}

#[test]
fn relay_forwards_wireguard_between_the_ends_of_a_channel_only() {
    let dir = tempfile::tempdir().unwrap();
    let hub = start(dir.path(), &[1, 2, 3]);
    let (mut a, mut b, mut c) = (
        Link::udp(hub.addr),
        Link::udp(hub.addr),
        Link::udp(hub.addr),
    );
    for (link, k) in [(&mut a, 1), (&mut b, 2), (&mut c, 3)] {
        let observed = link.stun(hub.addr);
        link.register(k, observed, &[]).expect("registered");
    }
    a.send_msg(&Message::RelayOpen { peer: public(2) });
    let ready = |m: Vec<u8>| match Message::parse(&m).unwrap() {
        Message::RelayReady { peer, channel } => (peer, channel),
        other => panic!("expected RelayReady, got {other:?}"),
    };
    let (peer, channel) = ready(a.recv(ANSWER).expect("RelayReady to the opener"));
    assert_eq!(peer, public(2));
    assert_eq!(
        ready(b.recv(ANSWER).expect("RelayReady to the other end")),
        (public(1), channel)
    );

    // A full-size WireGuard message each way, unchanged.
    let to_b = relay_frame(channel, &wireguard_transport(1452, 0xAB));
    a.send(&to_b);
    assert_eq!(b.recv(ANSWER).expect("relayed to b"), to_b);
    let to_a = relay_frame(channel, &wireguard_transport(96, 0xCD));
    b.send(&to_a);
    assert_eq!(a.recv(ANSWER).expect("relayed to a"), to_a);
    hub.wait_counter("relay_frames", 2);

    // c is registered but no end of the channel; junk inside a relay header, an unknown
    // channel and an oversized frame are not forwarded either.
    c.send(&relay_frame(channel, &wireguard_transport(96, 1)));
    a.send(&relay_frame(
        channel,
        b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n",
    ));
    let unknown = if channel == 1 { 2 } else { 1 };
    a.send(&relay_frame(unknown, &wireguard_transport(96, 2)));
    a.send(&relay_frame(channel, &wireguard_transport(1600, 3)));
    // Someone who never registered (no proof of any key) sends on the channel: dropped too.
    let mut stranger = Link::udp(hub.addr);
    stranger.send(&relay_frame(channel, &wireguard_transport(96, 4)));
    b.expect_silence();
    a.expect_silence();
    hub.wait_counter("drop_relay_not_end", 2);
    hub.wait_counter("drop_relay_malformed", 2);
    hub.wait_counter("drop_relay_no_channel", 1);
    assert_eq!(hub.counter("relay_frames"), 2);
    assert_eq!(hub.counter("relay_channels"), 1);
}

/// Registers `pairs` of links (keys 1+2, 3+4, ...) and opens a channel for each pair.
fn relayed_pairs(hub: &Hubd, pairs: u8) -> Vec<(Link, Link, u32)> {
    (0..pairs)
        .map(|i| {
            let (ka, kb) = (2 * i + 1, 2 * i + 2);
            let (mut a, mut b) = (Link::udp(hub.addr), Link::udp(hub.addr));
            for (link, k) in [(&mut a, ka), (&mut b, kb)] {
                let observed = link.stun(hub.addr);
                link.register(k, observed, &[]).expect("registered");
            }
            a.send_msg(&Message::RelayOpen { peer: public(kb) });
            let channel = match Message::parse(&a.recv(ANSWER).unwrap()).unwrap() {
                Message::RelayReady { channel, .. } => channel,
                other => panic!("expected RelayReady, got {other:?}"),
            };
            b.recv(ANSWER).expect("RelayReady to the other end");
            (a, b, channel)
        })
        .collect()
}

#[test]
fn interleaved_relay_bursts_arrive_whole_and_in_order_per_channel() {
    let dir = tempfile::tempdir().unwrap();
    // No rate limit in the way: every frame of the bursts must be forwarded.
    let hub = start_store(
        dir.path(),
        &[1, 2, 3, 4],
        "memory\nrelay:\n  rate_mbit: 100000",
    );
    let mut pairs = relayed_pairs(&hub, 2);
    // Two senders' frames back to back, of varying sizes, so that the hub's batched receive
    // (up to 64 datagrams per call on Linux) takes both channels' frames in one batch.
    let frames = |ch: u32, tag: u8| -> Vec<Vec<u8>> {
        (0..60u8)
            .map(|i| {
                let mut f = relay_frame(ch, &wireguard_transport(96 + usize::from(i) * 20, tag));
                let n = f.len();
                f[n - 1] = i;
                f
            })
            .collect()
    };
    let (one, two) = (frames(pairs[0].2, 0xA1), frames(pairs[1].2, 0xB2));
    for (f1, f2) in one.iter().zip(&two) {
        pairs[0].0.send(f1);
        pairs[1].0.send(f2);
    }
    for (pair, sent) in pairs.iter_mut().zip([&one, &two]) {
        for (i, f) in sent.iter().enumerate() {
            let got = pair
                .1
                .recv(ANSWER)
                .unwrap_or_else(|| panic!("frame {i} lost"));
            assert_eq!(&got, f, "frame {i} out of order or changed");
        }
    }
    hub.wait_counter("relay_frames", 120);
}

#[test]
fn a_relay_flood_is_held_to_its_budget_and_others_keep_theirs() {
    let dir = tempfile::tempdir().unwrap();
    // 1 Mbit/s: a 64 KiB burst, then 125 kB/s.
    let hub = start_store(dir.path(), &[1, 2, 3, 4], "memory\nrelay:\n  rate_mbit: 1");
    let mut pairs = relayed_pairs(&hub, 2);
    let rss_before = hub.rss_kib();
    let (flooder, victim, ch) = &mut pairs[0];
    let frame = relay_frame(*ch, &wireguard_transport(1452, 0xEE));
    // 2,000 full frames (2.9 MB) as fast as the socket takes them: bounded in count.
    for _ in 0..2000 {
        flooder.send(&frame);
    }
    let mut got = 0usize;
    while victim.recv(QUIET).is_some() {
        got += 1;
        assert!(got <= 2000);
    }
    // The burst (64 KiB, 45 frames) plus what the rate refilled while the flood ran.
    assert!(
        (40..400).contains(&got),
        "{got} frames of the flood were forwarded"
    );
    hub.wait_counter("drop_relay_rate", 1);
    // Nothing is kept per frame: the flood leaves the hub's memory where it was.
    let grown = hub.rss_kib().saturating_sub(rss_before);
    assert!(
        grown < 8 * 1024,
        "hub RSS grew by {grown} KiB under the flood"
    );
    // The other client's budget is its own.
    let (c, d, ch2) = &mut pairs[1];
    let f2 = relay_frame(*ch2, &wireguard_transport(200, 0x11));
    for _ in 0..20 {
        c.send(&f2);
        assert_eq!(d.recv(ANSWER).expect("the other pair still relays"), f2);
    }
}

#[test]
fn relay_bridges_udp_and_tcp_ends_and_a_client_that_stops_reading_is_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    // No rate limit in the way: the flood below must reach b's connection in full.
    let hub = start_store(dir.path(), &[1, 2], "memory\nrelay:\n  rate_mbit: 100000");
    // a over UDP, b over TCP (its UDP blocked): the relay is the only way between them.
    let (mut a, mut b) = (Link::udp(hub.addr), Link::tcp(hub.addr));
    for (link, k) in [(&mut a, 1), (&mut b, 2)] {
        let observed = link.stun(hub.addr);
        link.register(k, observed, &[]).expect("registered");
    }
    b.send_msg(&Message::RelayOpen { peer: public(1) });
    let channel = match Message::parse(&b.recv(ANSWER).unwrap()).unwrap() {
        Message::RelayReady { channel, .. } => channel,
        other => panic!("expected RelayReady, got {other:?}"),
    };
    a.recv(ANSWER).expect("RelayReady to the UDP end");
    let to_b = relay_frame(channel, &wireguard_transport(1452, 0xAB));
    a.send(&to_b);
    assert_eq!(b.recv(ANSWER).expect("UDP -> TCP"), to_b);
    let to_a = relay_frame(channel, &wireguard_transport(148, 0xCD));
    b.send(&to_a);
    assert_eq!(a.recv(ANSWER).expect("TCP -> UDP"), to_a);

    // b stops reading while a keeps sending (bounded: 40,000 frames, 58 MB in bursts of 100
    // every 5 ms, about 2 s: far more than both TCP buffers and the hub's 256 KiB queue hold,
    // paced so that the hub's writer keeps filling b's socket until it stalls): the hub drops
    // the oldest frames, keeps its memory, and closes b's connection once writes stall 10 s.
    let rss_before = hub.rss_kib();
    let t0 = Instant::now();
    for i in 0..40_000u32 {
        a.send(&to_b);
        if i % 100 == 99 {
            std::thread::sleep(Duration::from_millis(5));
        }
        if i % 1000 == 0 && t0.elapsed() > Duration::from_secs(20) {
            break;
        }
    }
    hub.wait_counter("drop_tcp_queue", 1);
    hub.wait_counter_for("tcp_write_timeout", 1, Duration::from_secs(20));
    let grown = hub.rss_kib().saturating_sub(rss_before);
    assert!(grown < 16 * 1024, "hub RSS grew by {grown} KiB");
    // a is unharmed: the hub still answers it.
    assert_eq!(a.stun(hub.addr), a.local());
}
