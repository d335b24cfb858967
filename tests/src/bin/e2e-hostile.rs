//! `e2e-hostile`: hostile network input for vpnd's hardening tests. It runs inside a test's
//! "attacker" namespace and sends from many source addresses of that namespace (ranges routed
//! `local` to `lo` there, picked per datagram with `IP_PKTINFO` / `IPV6_PKTINFO`).
//!
//! ```text
//! e2e-hostile junk      --target A:P [--target6 [A]:P] --responder KEY [--src4 CIDR]
//!                       [--src6 CIDR] [--index N] [--seed S]
//!     every datagram length 0..=300 and 1400..=1520, a dense sample of the rest up to the
//!     largest UDP payload (65507 over IPv4, 65527 over IPv6) and the top lengths; each message
//!     type 1..4 at wrong lengths; random bytes; valid headers with bad MACs; truncated and
//!     oversized transport messages; initiations with a valid mac1 for unknown keys, with a
//!     garbage static and with an all-zero ephemeral; responses and cookie replies with a valid
//!     mac1 for unknown indices. With --index (a receiver index the target holds): transport
//!     messages for it with garbage, an old counter, the largest counter, and cookie replies
//!     for it. Paced so the handshake queue never builds up (no cookie defence).
//! e2e-hostile flood     --target A:P [--target6 [A]:P] --responder KEY --duration S --rate PPS
//!                       --src4 CIDR [--src6 CIDR] [--ports N] [--cookie-sources N]
//!                       [--mix init=60,junk=30,mac2=10]
//!     a paced flood from random sources and ports: valid-mac1 initiations for unknown keys,
//!     junk, and initiations with a valid mac2 from sources that fetched a cookie first.
//! e2e-hostile threshold --target A:P --responder KEY --src4 CIDR --count N
//!     N valid-mac1 initiations back to back; counts the cookie replies.
//! e2e-hostile hold      --target A:P --responder KEY --src4 CIDR [--burst N]
//!     a burst that puts the target under load, then one initiation every 25 ms for 2.5 s;
//!     reports which got a cookie reply (how long the under-load state lasted).
//! e2e-hostile limit     --target A:P [--target6 [A]:P] --responder KEY --src4 CIDR
//!                       --probes IP[,IP...] --burst K [--rounds R] [--interval-ms MS]
//!     keeps the target under load with bursts; each probe source fetches a cookie, then sends
//!     K initiations with a valid mac2 per round; sentinels check every round was under load.
//! e2e-hostile replay    --pcap FILE --target A:P [--src IP] [--type T] [--dst-port P]
//!                       [--times N] [--seed S]
//!     re-sends the UDP payloads of a capture (optionally only WireGuard type T, only to port
//!     P), shuffled, each N times.
//! e2e-hostile kci       --target A:P --responder-private KEY --claim KEY --inner-src IP
//!                       --inner-dst IP:PORT [--packets N]
//!     key-compromise impersonation: forges an initiation claiming to be --claim with the
//!     responder's private key, then tries to send data as that peer with every key it can
//!     derive.
//! ```
//!
//! Output: `name value` lines, ending with `done`. Usage errors exit 64, failures 2.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use e2e::hostile::{
    self, add_macs, forge_kci_initiation, recv_timeout, send_from, set_sender, unknown_initiations,
    wildcard_socket, Rng, SourceRange,
};
use protocol::keys::{PrivateKey, PublicKey};
use protocol::noise::cookie::CookieGenerator;
use protocol::noise::messages::{self, Message, COOKIE_REPLY_LEN, INITIATION_LEN, RESPONSE_LEN};

const MAX_V4: usize = 65507;
const MAX_V6: usize = 65527;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((cmd, rest)) = args.split_first() else {
        eprintln!("usage: e2e-hostile junk|flood|threshold|hold|limit|replay|kci ...");
        return ExitCode::from(64);
    };
    let opts = match Opts::parse(rest) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("e2e-hostile: {e}");
            return ExitCode::from(64);
        }
    };
    let r = match cmd.as_str() {
        "junk" => Ctx::new(&opts).and_then(|mut c| junk(&mut c, &opts)),
        "flood" => Ctx::new(&opts).and_then(|mut c| flood(&mut c, &opts)),
        "threshold" => Ctx::new(&opts).and_then(|mut c| threshold(&mut c, &opts)),
        "hold" => Ctx::new(&opts).and_then(|mut c| hold(&mut c, &opts)),
        "limit" => Ctx::new(&opts).and_then(|mut c| limit(&mut c, &opts)),
        "replay" => replay(&opts),
        "kci" => kci(&opts),
        other => Err(Fail::Usage(format!("unknown command {other}"))),
    };
    match r {
        Ok(()) => {
            println!("done");
            ExitCode::SUCCESS
        }
        Err(Fail::Usage(e)) => {
            eprintln!("e2e-hostile: {e}");
            ExitCode::from(64)
        }
        Err(Fail::Io(e)) => {
            eprintln!("e2e-hostile: {e}");
            ExitCode::from(2)
        }
    }
}

enum Fail {
    Usage(String),
    Io(io::Error),
}

impl From<io::Error> for Fail {
    fn from(e: io::Error) -> Self {
        Fail::Io(e)
    }
}

type Res = Result<(), Fail>;

/// `--name value` options.
struct Opts(HashMap<String, String>);

impl Opts {
    fn parse(args: &[String]) -> Result<Opts, String> {
        let mut m = HashMap::new();
        let mut it = args.iter();
        while let Some(k) = it.next() {
            let name = k
                .strip_prefix("--")
                .ok_or_else(|| format!("unexpected argument {k}"))?;
            let v = it.next().ok_or_else(|| format!("{k} needs a value"))?;
            m.insert(name.to_owned(), v.clone());
        }
        Ok(Opts(m))
    }

    fn get<T: std::str::FromStr>(&self, name: &str) -> Result<Option<T>, Fail> {
        match self.0.get(name) {
            None => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|_| Fail::Usage(format!("bad value for --{name}: {v}"))),
        }
    }

    fn need<T: std::str::FromStr>(&self, name: &str) -> Result<T, Fail> {
        self.get(name)?
            .ok_or_else(|| Fail::Usage(format!("--{name} is required")))
    }

    fn key(&self, name: &str) -> Result<PublicKey, Fail> {
        let s: String = self.need(name)?;
        s.parse()
            .map_err(|_| Fail::Usage(format!("--{name}: not a base64 key")))
    }
}

/// A datagram that came back.
struct Reply {
    data: Vec<u8>,
}

/// Sockets, targets and the responder's key, shared by the flood commands.
struct Ctx {
    rng: Rng,
    responder: PublicKey,
    mac1: CookieGenerator,
    target4: SocketAddr,
    target6: Option<SocketAddr>,
    socks4: Vec<Arc<UdpSocket>>,
    socks6: Vec<Arc<UdpSocket>>,
    src4: SourceRange,
    src6: Option<SourceRange>,
    replies: mpsc::Receiver<Reply>,
    stop: Arc<AtomicBool>,
    counts: BTreeMap<String, u64>,
    send_errors: u64,
}

impl Drop for Ctx {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

impl Ctx {
    fn new(o: &Opts) -> Result<Ctx, Fail> {
        let target4: SocketAddr = o.need("target")?;
        let target6: Option<SocketAddr> = o.get("target6")?;
        let src4: SourceRange = o
            .get("src4")?
            .unwrap_or_else(|| "10.98.0.0/16".parse().expect("literal"));
        let src6: Option<SourceRange> = o.get("src6")?;
        let ports: usize = o.get("ports")?.unwrap_or(8);
        let responder = o.key("responder")?;
        let (tx, rx) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let mut socks4 = Vec::new();
        let mut socks6 = Vec::new();
        for _ in 0..ports.max(1) {
            socks4.push(Arc::new(wildcard_socket(false)?));
            if target6.is_some() {
                socks6.push(Arc::new(wildcard_socket(true)?));
            }
        }
        for s in socks4.iter().chain(&socks6) {
            let s = Arc::clone(s);
            let tx = tx.clone();
            let stop = Arc::clone(&stop);
            thread::spawn(move || {
                let mut buf = vec![0u8; 2048];
                while !stop.load(Ordering::Relaxed) {
                    match recv_timeout(&s, &mut buf, Duration::from_millis(100)) {
                        Ok(Some((n, _))) => {
                            if tx
                                .send(Reply {
                                    data: buf[..n].to_vec(),
                                })
                                .is_err()
                            {
                                return;
                            }
                        }
                        Ok(None) => {}
                        Err(_) => thread::sleep(Duration::from_millis(10)),
                    }
                }
            });
        }
        Ok(Ctx {
            rng: Rng::new(o.get("seed")?.unwrap_or(0)),
            mac1: CookieGenerator::new(&responder),
            responder,
            target4,
            target6,
            socks4,
            socks6,
            src4,
            src6,
            replies: rx,
            stop,
            counts: BTreeMap::new(),
            send_errors: 0,
        })
    }

    fn count(&mut self, what: &str, n: u64) {
        *self.counts.entry(what.to_owned()).or_default() += n;
    }

    /// Sends `buf` from `src` (its family picks the target) through socket `sock`.
    fn send_via(&mut self, sock: usize, src: IpAddr, buf: &[u8]) {
        let (s, dst) = match src {
            IpAddr::V4(_) => (&self.socks4[sock % self.socks4.len()], self.target4),
            IpAddr::V6(_) => match self.target6 {
                Some(t) if !self.socks6.is_empty() => (&self.socks6[sock % self.socks6.len()], t),
                _ => return,
            },
        };
        if send_from(s, buf, src, dst).is_err() {
            self.send_errors += 1;
        }
    }

    /// Sends from a random source of the family (IPv6 if `v6` and configured) and port.
    fn send_random(&mut self, v6: bool, buf: &[u8]) {
        let src = match (v6, self.src6) {
            (true, Some(r)) if self.target6.is_some() => r.random(&mut self.rng),
            _ => self.src4.random(&mut self.rng),
        };
        let sock = self.rng.below(64) as usize;
        self.send_via(sock, src, buf);
    }

    fn has_v6(&self) -> bool {
        self.target6.is_some() && self.src6.is_some()
    }

    /// Every reply that arrived so far.
    fn drain(&mut self) -> Vec<Reply> {
        self.replies.try_iter().collect()
    }

    fn print_counts(&self) {
        for (k, v) in &self.counts {
            println!("{k} {v}");
        }
        println!("send_errors {}", self.send_errors);
    }
}

/// Paces a loop to `rate` items per second (sleeping in slices of at least 1 ms).
struct Pacer {
    start: Instant,
    per_item: Duration,
    n: u32,
}

impl Pacer {
    fn new(rate: f64) -> Pacer {
        Pacer {
            start: Instant::now(),
            per_item: Duration::from_secs_f64(1.0 / rate.max(1.0)),
            n: 0,
        }
    }

    fn tick(&mut self) {
        self.n += 1;
        let due = self.start + self.per_item * self.n;
        let now = Instant::now();
        if due > now + Duration::from_millis(1) {
            thread::sleep(due - now);
        }
    }
}

// ----- junk -----

fn header(buf: &mut [u8], kind: u8) {
    if !buf.is_empty() {
        buf[0] = kind;
    }
    for b in buf.iter_mut().take(4).skip(1) {
        *b = 0;
    }
}

fn junk(c: &mut Ctx, o: &Opts) -> Res {
    let index: Option<u32> = o.get("index")?;
    // Datagrams the data path drops at once: quick, but not so quick that the target's socket
    // buffer overflows. Anything that reaches the handshake queue: 2,000 per second at most, so
    // the queue never approaches the under-load threshold.
    let mut fast = Pacer::new(20_000.0);
    let queue_gap = Duration::from_micros(500);

    // 1. Lengths: every length 0..=300 and 1400..=1520, every 61st length between, and the
    //    16 largest. The first byte cycles through 0..=5 (unknown, the four types, unknown) with
    //    zero reserved bytes, so each length meets the parser in a different branch.
    let mut lengths: Vec<usize> = (0..=300).chain(1400..=1520).collect();
    lengths.extend((301..MAX_V4).step_by(61));
    lengths.extend(MAX_V4 - 15..=MAX_V4);
    lengths.sort_unstable();
    lengths.dedup();
    let mut buf = vec![0u8; MAX_V6];
    for (i, &len) in lengths.iter().enumerate() {
        c.rng.fill(&mut buf[..len]);
        header(&mut buf[..len], (i % 6) as u8);
        c.send_random(false, &buf[..len]);
        c.count("len_v4", 1);
        if len > 1400 {
            // Fragmented: leave the target's reassembly room.
            thread::sleep(Duration::from_micros(300));
        } else if matches!(i % 6, 1..=3) && len >= 64 {
            thread::sleep(queue_gap / 8);
        } else {
            fast.tick();
        }
    }
    if c.has_v6() {
        let mut v6: Vec<usize> = (0..=160).collect();
        v6.extend((161..MAX_V6).step_by(509));
        v6.extend(MAX_V6 - 3..=MAX_V6);
        for (i, &len) in v6.iter().enumerate() {
            c.rng.fill(&mut buf[..len]);
            header(&mut buf[..len], (i % 6) as u8);
            c.send_random(true, &buf[..len]);
            c.count("len_v6", 1);
            if len > 1400 {
                thread::sleep(Duration::from_micros(300));
            } else {
                fast.tick();
            }
        }
    }

    // 2. Each type at wrong lengths (exact length +-1, half, double, 4 bytes).
    for (kind, exact) in [
        (1u8, INITIATION_LEN),
        (2, RESPONSE_LEN),
        (3, COOKIE_REPLY_LEN),
        (4, messages::TRANSPORT_MIN_LEN),
    ] {
        let mut lens = vec![4, exact / 2, exact - 1, exact * 2];
        if kind != 4 {
            lens.push(exact + 1);
        }
        for len in lens {
            for _ in 0..8 {
                c.rng.fill(&mut buf[..len]);
                header(&mut buf[..len], kind);
                let v6 = c.rng.below(4) == 0;
                c.send_random(v6, &buf[..len]);
                c.count("wrong_length", 1);
                fast.tick();
            }
        }
    }

    // 3. Random bytes (the reserved bytes too): mostly unknown types.
    for _ in 0..2000 {
        let len = c.rng.below(1500) as usize;
        c.rng.fill(&mut buf[..len]);
        let v6 = c.rng.below(4) == 0;
        c.send_random(v6, &buf[..len]);
        c.count("random", 1);
        fast.tick();
    }
    // Unknown type values with zero reserved bytes, and known types with reserved bytes set.
    for t in [0u8, 5, 6, 0x7f, 0xff] {
        let mut m = vec![0u8; 148];
        c.rng.fill(&mut m);
        header(&mut m, t);
        c.send_random(false, &m);
        c.count("unknown_type", 1);
        m[0] = 1;
        m[2] = 1;
        c.send_random(false, &m);
        c.count("unknown_type", 1);
        fast.tick();
    }

    // 4. Valid-looking headers, bad MACs.
    for _ in 0..200 {
        let (kind, len) = if c.rng.below(2) == 0 {
            (1u8, INITIATION_LEN)
        } else {
            (2, RESPONSE_LEN)
        };
        c.rng.fill(&mut buf[..len]);
        header(&mut buf[..len], kind);
        let v6 = c.rng.below(4) == 0;
        c.send_random(v6, &buf[..len]);
        c.count("bad_mac1", 1);
        fast.tick();
    }

    // 5. Transport messages with random receiver indices: truncated (below the minimum),
    //    minimal, ordinary, oversized.
    for len in (16..messages::TRANSPORT_MIN_LEN).chain([32, 48, 100, 1452, 9000, MAX_V4]) {
        for _ in 0..4 {
            c.rng.fill(&mut buf[..len]);
            header(&mut buf[..len], 4);
            c.send_random(false, &buf[..len]);
            c.count("transport_unknown_index", 1);
            if len > 1400 {
                thread::sleep(Duration::from_micros(300));
            } else {
                fast.tick();
            }
        }
    }

    // 6-8. Messages with a valid mac1 (the responder's public key is all it takes): they reach
    //      the handshake worker, paced.
    let pool = unknown_initiations(&c.responder, 32, &mut c.rng);
    let resp_key = c.responder;
    let mut gen = CookieGenerator::new(&resp_key);
    for i in 0..200usize {
        let mut m = pool[i % pool.len()];
        set_sender(&mut m, c.rng.next_u64() as u32);
        add_macs(&mut gen, &mut m);
        let v6 = i % 4 == 0;
        c.send_random(v6, &m);
        c.count("unknown_peer", 1);
        thread::sleep(queue_gap);
    }
    for i in 0..100usize {
        let mut m = pool[i % pool.len()];
        c.rng.fill(&mut m[40..88]);
        add_macs(&mut gen, &mut m);
        c.send_random(false, &m);
        c.count("handshake_decrypt", 1);
        thread::sleep(queue_gap);
    }
    for i in 0..50usize {
        let mut m = pool[i % pool.len()];
        m[8..40].fill(0);
        add_macs(&mut gen, &mut m);
        c.send_random(false, &m);
        c.count("handshake_zero_dh", 1);
        thread::sleep(queue_gap);
    }
    for _ in 0..100 {
        let mut m = [0u8; RESPONSE_LEN];
        c.rng.fill(&mut m);
        header(&mut m, 2);
        add_macs(&mut gen, &mut m);
        c.send_random(false, &m);
        c.count("response_unknown_index", 1);
        thread::sleep(queue_gap);
    }
    for _ in 0..100 {
        let mut m = [0u8; COOKIE_REPLY_LEN];
        c.rng.fill(&mut m);
        header(&mut m, 3);
        c.send_random(false, &m);
        c.count("cookie_unknown_index", 1);
        thread::sleep(queue_gap);
    }

    // 9. Aimed at a receiver index the target holds (an attacker on the path sees it).
    if let Some(index) = index {
        let transport = |c: &mut Ctx, counter: u64, len: usize, what: &str| {
            let mut m = vec![0u8; len];
            c.rng.fill(&mut m);
            messages::write_transport_header(&mut m, index, counter);
            c.send_random(false, &m);
            c.count(what, 1);
        };
        for i in 0..100u64 {
            let counter = (1 << 40) + c.rng.below(1 << 40);
            let len = [32, 48, 96, 1452][(i % 4) as usize];
            transport(c, counter, len, "index_garbage");
            fast.tick();
        }
        for _ in 0..4 {
            let counter = (1 << 41) + c.rng.below(1 << 20);
            transport(c, counter, MAX_V4, "index_oversized");
            thread::sleep(Duration::from_millis(1));
        }
        for _ in 0..50 {
            transport(c, 0, 96, "index_old_counter");
            fast.tick();
        }
        for _ in 0..50 {
            transport(c, u64::MAX, 96, "index_max_counter");
            fast.tick();
        }
        for _ in 0..50 {
            let mut m = [0u8; COOKIE_REPLY_LEN];
            c.rng.fill(&mut m);
            header(&mut m, 3);
            m[4..8].copy_from_slice(&index.to_le_bytes());
            c.send_random(false, &m);
            c.count("index_cookie_reply", 1);
            thread::sleep(queue_gap);
        }
    }
    // Let the last ones arrive, then report anything that came back.
    thread::sleep(Duration::from_millis(300));
    let back = c.drain().len() as u64;
    c.count("replies_received", back);
    c.print_counts();
    Ok(())
}

// ----- flood -----

struct CookieSource {
    src: IpAddr,
    sock: usize,
    gen: CookieGenerator,
    index: u32,
    has_cookie: bool,
    asked: Option<Instant>,
}

fn weights(o: &Opts) -> Result<[u64; 3], Fail> {
    let mut w = [60u64, 30, 10];
    if let Some(mix) = o.get::<String>("mix")? {
        w = [0; 3];
        for part in mix.split(',') {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| Fail::Usage(format!("--mix: {part}")))?;
            let v: u64 = v
                .parse()
                .map_err(|_| Fail::Usage(format!("--mix: {part}")))?;
            match k {
                "init" => w[0] = v,
                "junk" => w[1] = v,
                "mac2" => w[2] = v,
                _ => return Err(Fail::Usage(format!("--mix: unknown kind {k}"))),
            }
        }
    }
    if w.iter().sum::<u64>() == 0 {
        return Err(Fail::Usage("--mix: all weights zero".into()));
    }
    Ok(w)
}

fn flood(c: &mut Ctx, o: &Opts) -> Res {
    let duration = Duration::from_secs_f64(o.need("duration")?);
    let rate: f64 = o.need("rate")?;
    let n_sources: usize = o.get("cookie-sources")?.unwrap_or(1024);
    let w = weights(o)?;
    let total_w: u64 = w.iter().sum();
    let pool = unknown_initiations(&c.responder, 128, &mut c.rng);
    let responder = c.responder;
    let mut sources: Vec<CookieSource> = (0..n_sources)
        .map(|i| {
            let v6 = c.has_v6() && i % 8 == 7;
            let src = match (v6, c.src6) {
                (true, Some(r)) => r.random(&mut c.rng),
                _ => c.src4.random(&mut c.rng),
            };
            CookieSource {
                src,
                sock: c.rng.below(64) as usize,
                gen: CookieGenerator::new(&responder),
                index: c.rng.next_u64() as u32,
                has_cookie: false,
                asked: None,
            }
        })
        .collect();
    let by_index: HashMap<u32, usize> = sources
        .iter()
        .enumerate()
        .map(|(i, s)| (s.index, i))
        .collect();
    let mut pacer = Pacer::new(rate);
    let start = Instant::now();
    let mut junk = vec![0u8; 1500];
    let mut next_drain = start;
    let mut cookie_replies = 0u64;
    let mut valid_cookies = 0u64;
    let mut other_replies = 0u64;
    while start.elapsed() < duration {
        if Instant::now() >= next_drain {
            next_drain = Instant::now() + Duration::from_millis(10);
            for r in c.drain() {
                match Message::parse(&r.data) {
                    Ok(Message::CookieReply(reply)) => {
                        cookie_replies += 1;
                        if let Some(&i) = by_index.get(&reply.receiver()) {
                            let s = &mut sources[i];
                            if s.gen.consume_reply(&reply, Instant::now()) {
                                valid_cookies += 1;
                                s.has_cookie = true;
                            }
                        }
                    }
                    _ => other_replies += 1,
                }
            }
        }
        let pick = c.rng.below(total_w);
        let kind = if pick < w[0] {
            0
        } else if pick < w[0] + w[1] {
            1
        } else {
            2
        };
        match kind {
            0 => {
                let mut m = pool[c.rng.below(pool.len() as u64) as usize];
                set_sender(&mut m, c.rng.next_u64() as u32);
                add_macs(&mut c.mac1, &mut m);
                let v6 = c.rng.below(8) == 0;
                c.send_random(v6, &m);
                c.count("sent_init", 1);
            }
            1 => {
                let len = c.rng.below(junk.len() as u64) as usize;
                c.rng.fill(&mut junk[..len]);
                if c.rng.below(2) == 0 && len >= 32 {
                    header(&mut junk[..len], 4);
                }
                let v6 = c.rng.below(8) == 0;
                c.send_random(v6, &junk[..len]);
                c.count("sent_junk", 1);
            }
            _ => {
                let i = c.rng.below(sources.len().max(1) as u64) as usize;
                let Some(s) = sources.get_mut(i) else {
                    continue;
                };
                let mut m = pool[i % pool.len()];
                set_sender(&mut m, s.index);
                let now = Instant::now();
                let (src, sock) = (s.src, s.sock);
                if s.has_cookie && s.gen.has_cookie(now) {
                    s.gen.add_macs(&mut m, now);
                    c.send_via(sock, src, &m);
                    c.count("sent_mac2", 1);
                } else if s
                    .asked
                    .is_none_or(|t| now.duration_since(t) > Duration::from_secs(1))
                {
                    s.asked = Some(now);
                    s.gen.add_macs(&mut m, now);
                    c.send_via(sock, src, &m);
                    c.count("sent_cookie_request", 1);
                } else {
                    continue;
                }
            }
        }
        pacer.tick();
    }
    thread::sleep(Duration::from_millis(200));
    for r in c.drain() {
        if r.data.len() == COOKIE_REPLY_LEN && r.data[0] == 3 {
            cookie_replies += 1;
        } else {
            other_replies += 1;
        }
    }
    c.count("cookie_replies", cookie_replies);
    c.count("valid_cookies", valid_cookies);
    c.count("other_replies", other_replies);
    let cookied = sources.iter().filter(|s| s.has_cookie).count() as u64;
    c.count("sources_with_cookie", cookied);
    c.print_counts();
    println!("elapsed_ms {}", start.elapsed().as_millis());
    Ok(())
}

// ----- under-load probes -----

/// Sends `n` initiations with a valid mac1 and garbage statics (the worker's DH would fail;
/// under load they get cookie replies) from random IPv4 sources, back to back.
fn background(c: &mut Ctx, pool: &[[u8; INITIATION_LEN]], n: usize) {
    for i in 0..n {
        let mut m = pool[i % pool.len()];
        c.rng.fill(&mut m[40..88]);
        set_sender(&mut m, c.rng.next_u64() as u32);
        add_macs(&mut c.mac1, &mut m);
        c.send_random(false, &m);
    }
    c.count("background_sent", n as u64);
}

fn cookie_receivers(replies: &[Reply]) -> Vec<u32> {
    replies
        .iter()
        .filter_map(|r| match Message::parse(&r.data) {
            Ok(Message::CookieReply(c)) => Some(c.receiver()),
            _ => None,
        })
        .collect()
}

fn threshold(c: &mut Ctx, o: &Opts) -> Res {
    let n: usize = o.need("count")?;
    let pool = unknown_initiations(&c.responder, 64, &mut c.rng);
    for i in 0..n {
        let mut m = pool[i % pool.len()];
        set_sender(&mut m, c.rng.next_u64() as u32);
        add_macs(&mut c.mac1, &mut m);
        c.send_random(false, &m);
    }
    c.count("sent", n as u64);
    thread::sleep(Duration::from_millis(700));
    let replies = c.drain();
    c.count("cookie_replies", cookie_receivers(&replies).len() as u64);
    c.print_counts();
    Ok(())
}

fn hold(c: &mut Ctx, o: &Opts) -> Res {
    let burst: usize = o.get("burst")?.unwrap_or(1000);
    let pool = unknown_initiations(&c.responder, 64, &mut c.rng);
    background(c, &pool, burst);
    let burst_end = Instant::now();
    let mut sent: Vec<(u32, Duration)> = Vec::new();
    let sentinel_src = c.src4.nth(4000);
    for k in 0..100u32 {
        let due = burst_end + Duration::from_millis(25) * k;
        if let Some(w) = due.checked_duration_since(Instant::now()) {
            thread::sleep(w);
        }
        let mut m = pool[k as usize % pool.len()];
        let index = c.rng.next_u64() as u32;
        set_sender(&mut m, index);
        add_macs(&mut c.mac1, &mut m);
        c.send_via(0, sentinel_src, &m);
        sent.push((index, burst_end.elapsed()));
    }
    thread::sleep(Duration::from_millis(300));
    let replies = c.drain();
    let got: std::collections::HashSet<u32> = cookie_receivers(&replies).into_iter().collect();
    let mut last_cookie = None;
    let mut first_plain_after = None;
    for (index, at) in &sent {
        let ms = at.as_millis() as u64;
        if got.contains(index) {
            last_cookie = Some(ms);
            first_plain_after = None;
        } else if first_plain_after.is_none() && last_cookie.is_some() {
            first_plain_after = Some(ms);
        }
        println!("sentinel {ms} {}", u8::from(got.contains(index)));
    }
    println!(
        "burst_cookie_replies {}",
        replies.len() - got.len().min(replies.len())
    );
    println!("last_cookie_ms {}", last_cookie.map_or(-1, |v| v as i64));
    println!(
        "first_plain_after_ms {}",
        first_plain_after.map_or(-1, |v| v as i64)
    );
    c.print_counts();
    Ok(())
}

/// One rate-limit probe: a source address with its own cookie.
struct Probe {
    src: IpAddr,
    gen: CookieGenerator,
    index: u32,
    has_cookie: bool,
}

fn limit(c: &mut Ctx, o: &Opts) -> Res {
    let probes: String = o.need("probes")?;
    let burst: usize = o.need("burst")?;
    let rounds: usize = o.get("rounds")?.unwrap_or(1);
    let interval = Duration::from_millis(o.get("interval-ms")?.unwrap_or(200));
    let bg: usize = o.get("background")?.unwrap_or(600);
    let responder = c.responder;
    let mut probes: Vec<Probe> = probes
        .split(',')
        .map(|s| {
            s.parse::<IpAddr>()
                .map(|src| Probe {
                    src,
                    gen: CookieGenerator::new(&responder),
                    index: 0,
                    has_cookie: false,
                })
                .map_err(|_| Fail::Usage(format!("--probes: bad address {s}")))
        })
        .collect::<Result<_, _>>()?;
    let pool = unknown_initiations(&c.responder, 64, &mut c.rng);
    let sentinel = |c: &mut Ctx, v6: bool| -> u32 {
        let mut m = pool[0];
        let index = c.rng.next_u64() as u32;
        set_sender(&mut m, index);
        add_macs(&mut c.mac1, &mut m);
        let src = if v6 {
            c.src6.map(|r| r.nth(4001))
        } else {
            Some(c.src4.nth(4001))
        };
        if let Some(src) = src {
            c.send_via(0, src, &m);
        }
        index
    };

    // Phase 1: every probe fetches a cookie (its first initiation, under load, gets a reply).
    for attempt in 0..10 {
        if probes.iter().all(|p| p.has_cookie) {
            break;
        }
        if attempt > 0 {
            thread::sleep(Duration::from_millis(150));
        }
        background(c, &pool, bg);
        for (i, p) in probes.iter_mut().enumerate() {
            if p.has_cookie {
                continue;
            }
            // A garbage static: should this one be processed (not under load after all) it
            // fails as handshake_decrypt and leaves the unknown_peer count to phase 2.
            let mut m = pool[(i + 1) % pool.len()];
            c.rng.fill(&mut m[40..88]);
            p.index = c.rng.next_u64() as u32;
            set_sender(&mut m, p.index);
            p.gen.add_macs(&mut m, Instant::now());
            let src = p.src;
            c.send_via(i, src, &m);
        }
        thread::sleep(Duration::from_millis(60));
        for r in c.drain() {
            if let Ok(Message::CookieReply(reply)) = Message::parse(&r.data) {
                for p in probes.iter_mut() {
                    if reply.receiver() == p.index && p.gen.consume_reply(&reply, Instant::now()) {
                        p.has_cookie = true;
                    }
                }
            }
        }
    }
    let with_cookie = probes.iter().filter(|p| p.has_cookie).count();
    println!("probes_with_cookie {with_cookie}/{}", probes.len());
    if with_cookie != probes.len() {
        return Err(Fail::Io(io::Error::other(
            "not every probe got a cookie: the target never went under load",
        )));
    }

    // Phase 2: rounds of background (keeps the target under load), sentinels around the probe
    // messages (prove the load state held while the probes were processed), K mac2-valid
    // initiations per probe.
    let mut sentinels: Vec<(u32, u32)> = Vec::new();
    let start = Instant::now();
    for round in 0..rounds {
        let due = start + interval * round as u32;
        if let Some(w) = due.checked_duration_since(Instant::now()) {
            thread::sleep(w);
        }
        background(c, &pool, bg);
        let v6 = probes.iter().any(|p| p.src.is_ipv6());
        let before = sentinel(c, v6);
        for k in 0..burst {
            for (i, p) in probes.iter_mut().enumerate() {
                let mut m = pool[(k + i) % pool.len()];
                set_sender(&mut m, c.rng.next_u64() as u32);
                p.gen.add_macs(&mut m, Instant::now());
                let src = p.src;
                c.send_via(i, src, &m);
                c.count("probe_sent", 1);
            }
        }
        let after = sentinel(c, v6);
        sentinels.push((before, after));
    }
    thread::sleep(Duration::from_millis(300));
    let got: std::collections::HashSet<u32> = cookie_receivers(&c.drain()).into_iter().collect();
    let under = sentinels
        .iter()
        .filter(|(a, b)| got.contains(a) && got.contains(b))
        .count();
    println!("rounds {rounds}");
    println!("rounds_under_load {under}");
    println!("elapsed_ms {}", start.elapsed().as_millis());
    c.print_counts();
    Ok(())
}

// ----- replay -----

fn replay(o: &Opts) -> Res {
    let pcap: PathBuf = o.need("pcap")?;
    let target: SocketAddr = o.need("target")?;
    let src: Option<IpAddr> = o.get("src")?;
    let kind: Option<u32> = o.get("type")?;
    let dst_port: Option<u16> = o.get("dst-port")?;
    let times: usize = o.get("times")?.unwrap_or(1);
    let mut rng = Rng::new(o.get("seed")?.unwrap_or(0));
    let packets = e2e::capture::read_pcap(&pcap)?;
    let mut payloads: Vec<Vec<u8>> = packets
        .into_iter()
        .filter(|p| p.proto == e2e::capture::PROTO_UDP && !p.fragment)
        .filter(|p| dst_port.is_none_or(|d| p.dst_port == Some(d)))
        .filter(|p| kind.is_none_or(|k| p.wg_type() == Some(k)))
        .map(|p| p.payload)
        .collect();
    let unique = payloads.len();
    let mut all = Vec::new();
    for _ in 0..times {
        all.append(&mut payloads.clone());
    }
    payloads.clear();
    // Fisher-Yates: out of order.
    for i in (1..all.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        all.swap(i, j);
    }
    let sock = wildcard_socket(target.is_ipv6())?;
    for p in &all {
        match src {
            Some(s) => send_from(&sock, p, s, target)?,
            None => sock.send_to(p, target)?,
        };
        thread::sleep(Duration::from_micros(200));
    }
    println!("captured {unique}");
    println!("replayed {}", all.len());
    Ok(())
}

// ----- key-compromise impersonation -----

fn kci(o: &Opts) -> Res {
    let target: SocketAddr = o.need("target")?;
    let responder_private: String = o.need("responder-private")?;
    let responder_private: PrivateKey = responder_private
        .parse()
        .map_err(|_| Fail::Usage("--responder-private: not a base64 key".into()))?;
    let claimed = o.key("claim")?;
    let inner_src: std::net::Ipv4Addr = o.need("inner-src")?;
    let inner_dst: std::net::SocketAddrV4 = o.need("inner-dst")?;
    let packets: u64 = o.get("packets")?.unwrap_or(20);
    let mut rng = Rng::new(o.get("seed")?.unwrap_or(0));

    let index = rng.next_u64() as u32;
    let forged = forge_kci_initiation(&responder_private, &claimed, index, &mut rng);
    let accepted = hostile::responder_accepts(&responder_private, &claimed, &forged.initiation);
    println!("forged_initiation_authenticates {}", u8::from(accepted));
    let sock = if target.is_ipv4() {
        UdpSocket::bind("0.0.0.0:0")?
    } else {
        UdpSocket::bind("[::]:0")?
    };
    sock.send_to(&forged.initiation, target)?;
    let mut buf = [0u8; 2048];
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut response = None;
    while response.is_none() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        if let Some((n, _)) = recv_timeout(&sock, &mut buf, left)? {
            if let Ok(Message::Response(r)) = Message::parse(&buf[..n]) {
                if r.receiver() == index {
                    let mut copy = [0u8; RESPONSE_LEN];
                    copy.copy_from_slice(&buf[..n]);
                    response = Some(copy);
                }
            }
        }
    }
    println!("response_received {}", u8::from(response.is_some()));
    let Some(response) = response else {
        return Ok(());
    };
    let guesses = forged.try_complete(&responder_private, &claimed, &response);
    let mut sent = 0u64;
    for g in &guesses {
        println!(
            "guess {:?} response_authenticates {}",
            g.guess,
            u8::from(g.response_authenticated)
        );
        for counter in 0..packets {
            let payload = format!("forged {:?} {counter}", g.guess);
            let inner = hostile::ipv4_udp(
                inner_src,
                40000,
                *inner_dst.ip(),
                inner_dst.port(),
                payload.as_bytes(),
            );
            let msg = hostile::seal_transport(&g.send, g.receiver, counter, &inner);
            sock.send_to(&msg, target)?;
            sent += 1;
            thread::sleep(Duration::from_millis(2));
        }
    }
    // Whatever the responder sent back meanwhile (it has no reason to send anything).
    let mut back = 0;
    while recv_timeout(&sock, &mut buf, Duration::from_millis(300))?.is_some() {
        back += 1;
    }
    println!("transport_sent {sent}");
    println!("later_replies {back}");
    Ok(())
}
