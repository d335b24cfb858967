//! Building blocks for hostile traffic: UDP sockets that send from any source address of a
//! namespace (`IP_FREEBIND` plus `IP_PKTINFO`/`IPV6_PKTINFO`), a small PRNG, source-address
//! ranges, and WireGuard messages an attacker can make: initiations for keys the responder
//! does not know (with a valid mac1, since the responder's public key is no secret), and a
//! key-compromise-impersonation forgery.
//!
//! Used by the `e2e-hostile` binary; the tests use the pure parts (message builders) too.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::{Duration, SystemTime};

use protocol::keys::{PresharedKey, PrivateKey, PublicKey};
use protocol::noise::cookie::CookieGenerator;
use protocol::noise::crypto::{self, aead_open, aead_seal, dh, hash, kdf};
use protocol::noise::handshake::{self, StaticIdentity, Tai64N, CONSTRUCTION, IDENTIFIER};
use protocol::noise::messages::{self, INITIATION_LEN, RESPONSE_LEN, TRANSPORT_HEADER_LEN};
use x25519_dalek::StaticSecret;

/// A SplitMix64 generator (not cryptographic: it picks sources, lengths and junk bytes).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// Seeded from the clock and the PID, or from `seed` when it is non-zero.
    pub fn new(seed: u64) -> Rng {
        if seed != 0 {
            return Rng(seed);
        }
        let t = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos() as u64;
        Rng(t ^ (u64::from(std::process::id()) << 32))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number below `n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }

    /// Fills `out` with random bytes.
    pub fn fill(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }

    /// 32 random bytes.
    pub fn key(&mut self) -> [u8; 32] {
        let mut k = [0u8; 32];
        self.fill(&mut k);
        k
    }
}

/// A range of source addresses: `10.98.0.0/16`, `fd98::/32`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceRange {
    base: IpAddr,
    prefix: u8,
}

impl std::str::FromStr for SourceRange {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (a, p) = s
            .split_once('/')
            .ok_or_else(|| format!("{s}: no /prefix"))?;
        let base: IpAddr = a.parse().map_err(|_| format!("{s}: bad address"))?;
        let prefix: u8 = p.parse().map_err(|_| format!("{s}: bad prefix"))?;
        let max = if base.is_ipv4() { 32 } else { 128 };
        if prefix > max {
            return Err(format!("{s}: prefix too long"));
        }
        Ok(SourceRange { base, prefix })
    }
}

impl SourceRange {
    /// Whether the range is IPv6.
    pub fn is_v6(&self) -> bool {
        self.base.is_ipv6()
    }

    /// The `i`-th address of the range (wrapping), skipping `.0` host parts for IPv4.
    pub fn nth(&self, i: u128) -> IpAddr {
        match self.base {
            IpAddr::V4(b) => {
                let host_bits = 32 - u32::from(self.prefix);
                let size = if host_bits >= 32 {
                    u64::from(u32::MAX)
                } else {
                    (1u64 << host_bits) - 1
                };
                let host = (i as u64 % size.max(1)) + 1;
                let mask = if host_bits >= 32 {
                    0
                } else {
                    u32::MAX << host_bits
                };
                IpAddr::V4(Ipv4Addr::from((u32::from(b) & mask) | host as u32))
            }
            IpAddr::V6(b) => {
                let host_bits = 128 - u32::from(self.prefix);
                let mask = if host_bits >= 128 {
                    0
                } else {
                    u128::MAX << host_bits
                };
                let size = if host_bits >= 128 {
                    u128::MAX
                } else {
                    (1u128 << host_bits) - 1
                };
                let host = (i % size.max(1)) + 1;
                IpAddr::V6(Ipv6Addr::from((u128::from(b) & mask) | host))
            }
        }
    }

    /// A random address of the range; for IPv6 the /64 is random too, so each address
    /// is its own rate-limit bucket.
    pub fn random(&self, rng: &mut Rng) -> IpAddr {
        let r = u128::from(rng.next_u64()) << 64 | u128::from(rng.next_u64());
        self.nth(r)
    }
}

fn setsockopt_int(sock: &UdpSocket, level: i32, name: i32, value: i32) -> io::Result<()> {
    // SAFETY: valid descriptor, pointer to a live c_int and its size.
    let r = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            level,
            name,
            (&value as *const i32).cast(),
            std::mem::size_of::<i32>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// A UDP socket bound to the wildcard address of one family with `IP_FREEBIND` set, so
/// [`send_from`] can pick any source address per datagram. Replies to any local address
/// (including ranges routed `local` to `lo`) on its port arrive on it.
pub fn wildcard_socket(v6: bool) -> io::Result<UdpSocket> {
    let s = if v6 {
        UdpSocket::bind("[::]:0")?
    } else {
        UdpSocket::bind("0.0.0.0:0")?
    };
    if v6 {
        setsockopt_int(&s, libc::IPPROTO_IPV6, libc::IPV6_FREEBIND, 1)?;
    } else {
        setsockopt_int(&s, libc::IPPROTO_IP, libc::IP_FREEBIND, 1)?;
    }
    // Big buffers: floods send in bursts.
    let _ = setsockopt_int(&s, libc::SOL_SOCKET, libc::SO_SNDBUF, 4 << 20);
    let _ = setsockopt_int(&s, libc::SOL_SOCKET, libc::SO_RCVBUF, 4 << 20);
    Ok(s)
}

/// Sends `buf` to `dst` with source address `src` (same family) through `sock`, a
/// [`wildcard_socket`]: `sendmsg` with an `IP_PKTINFO` / `IPV6_PKTINFO` control message.
pub fn send_from(sock: &UdpSocket, buf: &[u8], src: IpAddr, dst: SocketAddr) -> io::Result<usize> {
    // SAFETY (whole function): every pointer handed to sendmsg points at a local that lives
    // until sendmsg returns; the control buffer is aligned (u64 array) and large enough for
    // one cmsghdr plus the pktinfo struct, as CMSG_SPACE computes.
    unsafe {
        let mut iov = libc::iovec {
            iov_base: buf.as_ptr() as *mut libc::c_void,
            iov_len: buf.len(),
        };
        let mut control = [0u64; 8];
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        let mut sin: libc::sockaddr_in = std::mem::zeroed();
        let mut sin6: libc::sockaddr_in6 = std::mem::zeroed();
        let (level, kind, data, data_len): (i32, i32, *const u8, usize);
        let info4;
        let info6;
        match (src, dst) {
            (IpAddr::V4(s), SocketAddr::V4(d)) => {
                sin.sin_family = libc::AF_INET as libc::sa_family_t;
                sin.sin_port = d.port().to_be();
                sin.sin_addr.s_addr = u32::from_ne_bytes(d.ip().octets());
                msg.msg_name = (&mut sin as *mut libc::sockaddr_in).cast();
                msg.msg_namelen = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
                info4 = libc::in_pktinfo {
                    ipi_ifindex: 0,
                    ipi_spec_dst: libc::in_addr {
                        s_addr: u32::from_ne_bytes(s.octets()),
                    },
                    ipi_addr: libc::in_addr { s_addr: 0 },
                };
                (level, kind) = (libc::IPPROTO_IP, libc::IP_PKTINFO);
                data = (&info4 as *const libc::in_pktinfo).cast();
                data_len = std::mem::size_of::<libc::in_pktinfo>();
            }
            (IpAddr::V6(s), SocketAddr::V6(d)) => {
                sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
                sin6.sin6_port = d.port().to_be();
                sin6.sin6_addr.s6_addr = d.ip().octets();
                sin6.sin6_scope_id = d.scope_id();
                msg.msg_name = (&mut sin6 as *mut libc::sockaddr_in6).cast();
                msg.msg_namelen = std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t;
                info6 = libc::in6_pktinfo {
                    ipi6_addr: libc::in6_addr {
                        s6_addr: s.octets(),
                    },
                    ipi6_ifindex: 0,
                };
                (level, kind) = (libc::IPPROTO_IPV6, libc::IPV6_PKTINFO);
                data = (&info6 as *const libc::in6_pktinfo).cast();
                data_len = std::mem::size_of::<libc::in6_pktinfo>();
            }
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "source and destination families differ",
                ))
            }
        }
        msg.msg_controllen = libc::CMSG_SPACE(data_len as u32) as usize;
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = level;
        (*cmsg).cmsg_type = kind;
        (*cmsg).cmsg_len = libc::CMSG_LEN(data_len as u32) as usize;
        std::ptr::copy_nonoverlapping(data, libc::CMSG_DATA(cmsg), data_len);
        let n = libc::sendmsg(sock.as_raw_fd(), &msg, 0);
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    }
}

/// Makes `count` handshake initiations addressed to `responder` from fresh identities it does
/// not know, each with a valid mac1 and no mac2: what anyone who knows a server's public key
/// can send. The sender index of each is random; change it with [`set_sender`] (which
/// invalidates mac1: refill it with [`add_macs`]).
pub fn unknown_initiations(
    responder: &PublicKey,
    count: usize,
    rng: &mut Rng,
) -> Vec<[u8; INITIATION_LEN]> {
    let now = std::time::Instant::now();
    let ts = Tai64N::from_unix(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default(),
    );
    let mut gen = CookieGenerator::new(responder);
    (0..count)
        .map(|_| {
            let me = StaticIdentity::new(PrivateKey::from_bytes(rng.key()));
            let ss = me
                .static_static(responder)
                .expect("random keys give a non-zero DH");
            let mut msg = [0u8; INITIATION_LEN];
            handshake::create_initiation(
                &me,
                responder,
                &ss,
                rng.key(),
                rng.next_u64() as u32,
                ts,
                &mut msg,
            )
            .expect("initiation to a valid key");
            gen.add_macs(&mut msg, now);
            msg
        })
        .collect()
}

/// Writes `index` as the sender index of a handshake message.
pub fn set_sender(msg: &mut [u8], index: u32) {
    msg[4..8].copy_from_slice(&index.to_le_bytes());
}

/// Fills mac1 (and mac2 when `gen` holds a cookie) of a handshake message for `gen`'s peer.
pub fn add_macs(gen: &mut CookieGenerator, msg: &mut [u8]) {
    gen.add_macs(msg, std::time::Instant::now());
}

/// What a key-compromise impersonation attempt built: the initiation and the secrets the
/// attacker holds for the rest of the handshake.
pub struct KciForgery {
    /// The forged initiation (mac1 valid, mac2 zero).
    pub initiation: [u8; INITIATION_LEN],
    ephemeral: [u8; 32],
    chaining_key: [u8; 32],
    hash: [u8; 32],
}

impl std::fmt::Debug for KciForgery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KciForgery").finish_non_exhaustive()
    }
}

/// Forges the handshake initiation an attacker who stole the **responder's** private key
/// can send while claiming to be the peer `claimed` (whose private key the attacker does not
/// have): Noise IK's first message, with
///
/// * a fresh ephemeral key `E` of the attacker's,
/// * `claimed`'s static public key, encrypted under `KDF(ck, DH(e, S_resp))` (anyone can),
/// * a current TAI64N timestamp, encrypted under a key derived from `DH(s_resp, S_claimed)`.
///   The initiator normally computes this static-static DH as `DH(s_claimed, S_resp)`; with
///   the responder's private key the attacker gets the same value from the other side. This
///   is the part that makes the forgery authenticate: IK's first message does not resist key
///   compromise impersonation.
///
/// What the attacker still cannot do is finish the handshake: the response mixes in
/// `DH(e_resp, S_claimed)`, which needs `s_claimed` (see [`KciForgery::try_complete`]).
pub fn forge_kci_initiation(
    responder_private: &PrivateKey,
    claimed: &PublicKey,
    sender_index: u32,
    rng: &mut Rng,
) -> KciForgery {
    let responder_secret = responder_private.secret();
    let responder_public = responder_private.public_key();
    let eph_bytes = rng.key();
    let eph = StaticSecret::from(eph_bytes);
    let e_pub = crypto::public_key(&eph);
    let mut ck = hash(&[CONSTRUCTION]);
    let mut h = hash(&[&ck, IDENTIFIER]);
    h = hash(&[&h, &responder_public.0]);
    let mut out = [0u8; INITIATION_LEN];
    messages::write_type(&mut out, messages::TYPE_INITIATION);
    out[4..8].copy_from_slice(&sender_index.to_le_bytes());
    out[8..40].copy_from_slice(&e_pub);
    [ck] = kdf::<1>(&ck, &e_pub);
    h = hash(&[&h, &e_pub]);
    let es = dh(&eph, &responder_public.0).expect("fresh ephemeral");
    let [c, k] = kdf::<2>(&ck, &es);
    ck = c;
    aead_seal(&k, 0, &claimed.0, &h, &mut out[40..88]).expect("fixed sizes");
    h = hash(&[&h, &out[40..88]]);
    // DH(s_resp, S_claimed) == DH(s_claimed, S_resp): the stolen key stands in for the
    // claimed peer's.
    let ss = dh(&responder_secret, &claimed.0).expect("valid peer key");
    let [c, k] = kdf::<2>(&ck, &ss);
    ck = c;
    let ts = Tai64N::from_unix(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default(),
    );
    aead_seal(&k, 0, &ts.0, &h, &mut out[88..116]).expect("fixed sizes");
    h = hash(&[&h, &out[88..116]]);
    CookieGenerator::new(&responder_public).add_macs(&mut out, std::time::Instant::now());
    KciForgery {
        initiation: out,
        ephemeral: eph_bytes,
        chaining_key: ck,
        hash: h,
    }
}

/// Checks a forged initiation the way the responder will: `begin_initiation` must name
/// `claimed` as the sender and `finish_initiation` (the static-static step) must succeed.
pub fn responder_accepts(
    responder_private: &PrivateKey,
    claimed: &PublicKey,
    initiation: &[u8; INITIATION_LEN],
) -> bool {
    let id = StaticIdentity::new(responder_private.clone());
    let Ok(messages::Message::Initiation(m)) = messages::Message::parse(initiation) else {
        return false;
    };
    let Ok(begun) = handshake::begin_initiation(&id, &m) else {
        return false;
    };
    let Ok(ss) = id.static_static(claimed) else {
        return false;
    };
    begun.peer == *claimed && handshake::finish_initiation(&begun, &ss).is_ok()
}

/// One way the attacker may guess the DH it cannot compute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeGuess {
    /// All zeros.
    Zero,
    /// `DH(s_resp, E_resp)`: the responder's own static with its own ephemeral.
    ResponderStatic,
    /// `DH(e_attacker, S_claimed)`: the attacker's ephemeral with the claimed static.
    AttackerEphemeral,
}

/// Transport keys an attacker derived from a guess.
#[derive(Debug, Clone)]
pub struct GuessedSession {
    /// The guess.
    pub guess: SeGuess,
    /// Whether the response's empty AEAD payload opened with these keys (it must not).
    pub response_authenticated: bool,
    /// Key for sending to the responder.
    pub send: [u8; 32],
    /// The responder's index (the receiver of our transport messages).
    pub receiver: u32,
}

impl KciForgery {
    /// Tries to finish the handshake from the responder's `response`, for each way of
    /// guessing `DH(e_resp, S_claimed)` (the term that needs the claimed peer's private key).
    pub fn try_complete(
        &self,
        responder_private: &PrivateKey,
        claimed: &PublicKey,
        response: &[u8; RESPONSE_LEN],
    ) -> Vec<GuessedSession> {
        let e_resp: [u8; 32] = response[12..44].try_into().expect("fixed offset");
        let receiver = u32::from_le_bytes(response[4..8].try_into().expect("fixed offset"));
        let eph = StaticSecret::from(self.ephemeral);
        let mut out = Vec::new();
        for guess in [
            SeGuess::Zero,
            SeGuess::ResponderStatic,
            SeGuess::AttackerEphemeral,
        ] {
            let [mut ck] = kdf::<1>(&self.chaining_key, &e_resp);
            let mut h = hash(&[&self.hash, &e_resp]);
            let ee = dh(&eph, &e_resp).unwrap_or([0; 32]);
            [ck] = kdf::<1>(&ck, &ee);
            let se = match guess {
                SeGuess::Zero => [0u8; 32],
                SeGuess::ResponderStatic => {
                    dh(&responder_private.secret(), &e_resp).unwrap_or([0; 32])
                }
                SeGuess::AttackerEphemeral => dh(&eph, &claimed.0).unwrap_or([0; 32]),
            };
            [ck] = kdf::<1>(&ck, &se);
            let psk = PresharedKey([0; 32]);
            let [c, tau, k] = kdf::<3>(&ck, psk.as_bytes());
            ck = c;
            h = hash(&[&h, &tau]);
            let mut empty = [0u8; 0];
            let ok = aead_open(&k, 0, &response[44..60], &h, &mut empty).is_ok();
            let [send, _recv] = kdf::<2>(&ck, &[]);
            out.push(GuessedSession {
                guess,
                response_authenticated: ok,
                send,
                receiver,
            });
        }
        out
    }
}

/// Seals `inner` as transport message number `counter` for `receiver` with `key` (padding to
/// 16 bytes as WireGuard does).
pub fn seal_transport(key: &[u8; 32], receiver: u32, counter: u64, inner: &[u8]) -> Vec<u8> {
    let padded = inner.len().div_ceil(16) * 16;
    let mut out = vec![0u8; TRANSPORT_HEADER_LEN + padded + crypto::TAG_LEN];
    messages::write_transport_header(&mut out, receiver, counter);
    out[TRANSPORT_HEADER_LEN..TRANSPORT_HEADER_LEN + inner.len()].copy_from_slice(inner);
    let (body, tag) = out[TRANSPORT_HEADER_LEN..].split_at_mut(padded);
    let t = crypto::aead_seal_in_place(&crypto::aead_cipher(key), counter, &[], body);
    tag.copy_from_slice(&t);
    out
}

/// An IPv4/UDP packet from `src:sport` to `dst:dport` carrying `payload` (checksums filled).
pub fn ipv4_udp(src: Ipv4Addr, sport: u16, dst: Ipv4Addr, dport: u16, payload: &[u8]) -> Vec<u8> {
    let total = 20 + 8 + payload.len();
    let mut p = vec![0u8; total];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    p[6] = 0x40;
    p[8] = 64;
    p[9] = 17;
    p[12..16].copy_from_slice(&src.octets());
    p[16..20].copy_from_slice(&dst.octets());
    let sum = checksum(&p[..20], 0);
    p[10..12].copy_from_slice(&sum.to_be_bytes());
    p[20..22].copy_from_slice(&sport.to_be_bytes());
    p[22..24].copy_from_slice(&dport.to_be_bytes());
    p[24..26].copy_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    p[28..].copy_from_slice(payload);
    let mut pseudo = Vec::with_capacity(12);
    pseudo.extend_from_slice(&src.octets());
    pseudo.extend_from_slice(&dst.octets());
    pseudo.extend_from_slice(&[0, 17]);
    pseudo.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    let partial = sum_words(&pseudo, 0);
    let mut c = checksum(&p[20..], partial);
    if c == 0 {
        c = 0xffff;
    }
    p[26..28].copy_from_slice(&c.to_be_bytes());
    p
}

fn sum_words(data: &[u8], mut acc: u32) -> u32 {
    for chunk in data.chunks(2) {
        let w = if chunk.len() == 2 {
            u16::from_be_bytes([chunk[0], chunk[1]])
        } else {
            u16::from_be_bytes([chunk[0], 0])
        };
        acc += u32::from(w);
    }
    acc
}

fn checksum(data: &[u8], acc: u32) -> u16 {
    let mut s = sum_words(data, acc);
    while s >> 16 != 0 {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

/// Waits for a datagram on `sock` for up to `timeout`; `None` on timeout.
pub fn recv_timeout(
    sock: &UdpSocket,
    buf: &mut [u8],
    timeout: Duration,
) -> io::Result<Option<(usize, SocketAddr)>> {
    sock.set_read_timeout(Some(timeout.max(Duration::from_millis(1))))?;
    match sock.recv_from(buf) {
        Ok(x) => Ok(Some(x)),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::noise::messages::Message;

    #[test]
    fn source_ranges_stay_inside() {
        let r: SourceRange = "10.98.0.0/16".parse().unwrap();
        assert_eq!(r.nth(0), "10.98.0.1".parse::<IpAddr>().unwrap());
        assert_eq!(r.nth(65535), "10.98.0.1".parse::<IpAddr>().unwrap());
        let mut rng = Rng::new(7);
        for _ in 0..100 {
            let IpAddr::V4(a) = r.random(&mut rng) else {
                panic!()
            };
            assert_eq!(a.octets()[..2], [10, 98]);
        }
        let r6: SourceRange = "fd98::/32".parse().unwrap();
        let IpAddr::V6(a) = r6.random(&mut rng) else {
            panic!()
        };
        assert_eq!(a.segments()[..2], [0xfd98, 0]);
        assert!("10.0.0.0/33".parse::<SourceRange>().is_err());
    }

    #[test]
    fn unknown_initiations_have_valid_mac1() {
        let responder = StaticIdentity::new(PrivateKey::from_bytes([5; 32]));
        let mut rng = Rng::new(1);
        let msgs = unknown_initiations(responder.public_key(), 3, &mut rng);
        let checker = protocol::noise::cookie::CookieChecker::new(responder.public_key(), [0; 32]);
        for m in &msgs {
            assert!(checker.verify_mac1(m));
            let Ok(Message::Initiation(i)) = Message::parse(m) else {
                panic!()
            };
            let begun = handshake::begin_initiation(&responder, &i).unwrap();
            assert_ne!(&begun.peer, responder.public_key());
        }
        let mut m = msgs[0];
        set_sender(&mut m, 42);
        assert!(!checker.verify_mac1(&m));
        add_macs(&mut CookieGenerator::new(responder.public_key()), &mut m);
        assert!(checker.verify_mac1(&m));
    }

    #[test]
    fn kci_forgery_authenticates_but_cannot_complete() {
        let responder_key = PrivateKey::from_bytes([5; 32]);
        let claimed_key = PrivateKey::from_bytes([6; 32]);
        let claimed = claimed_key.public_key();
        let mut rng = Rng::new(3);
        let forged = forge_kci_initiation(&responder_key, &claimed, 99, &mut rng);
        assert!(responder_accepts(
            &responder_key,
            &claimed,
            &forged.initiation
        ));

        // The responder answers as it would: a real response to the forged initiation.
        let id = StaticIdentity::new(responder_key.clone());
        let Ok(Message::Initiation(m)) = Message::parse(&forged.initiation) else {
            panic!()
        };
        let begun = handshake::begin_initiation(&id, &m).unwrap();
        let ss = id.static_static(&claimed).unwrap();
        let consumed = handshake::finish_initiation(&begun, &ss).unwrap();
        let mut resp = [0u8; RESPONSE_LEN];
        let keys =
            handshake::create_response(&consumed, &PresharedKey([0; 32]), [8; 32], 1234, &mut resp)
                .unwrap();
        let guesses = forged.try_complete(&responder_key, &claimed, &resp);
        assert_eq!(guesses.len(), 3);
        for g in &guesses {
            assert!(!g.response_authenticated, "{:?}", g.guess);
            assert_ne!(g.send, keys.recv, "{:?}", g.guess);
            assert_eq!(g.receiver, 1234);
        }
    }

    #[test]
    fn sealed_transport_opens_with_the_right_key() {
        let key = [7u8; 32];
        let inner = ipv4_udp(
            "10.10.0.2".parse().unwrap(),
            1000,
            "10.10.0.1".parse().unwrap(),
            2000,
            b"hello",
        );
        let msg = seal_transport(&key, 5, 9, &inner);
        let Ok(Message::Transport(t)) = Message::parse(&msg) else {
            panic!()
        };
        assert_eq!((t.receiver(), t.counter()), (5, 9));
        let mut buf = msg.clone();
        let body_len = buf.len() - TRANSPORT_HEADER_LEN - crypto::TAG_LEN;
        let (body, tag) = buf[TRANSPORT_HEADER_LEN..].split_at_mut(body_len);
        let tag: [u8; crypto::TAG_LEN] = (&*tag).try_into().unwrap();
        crypto::aead_open_in_place(&crypto::aead_cipher(&key), 9, &[], body, &tag).expect("opens");
        assert_eq!(&body[..inner.len()], &inner[..]);
    }
}
