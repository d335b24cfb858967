//! Writing the UAPI's text: the answer to `get=1` and the `errno=` trailer.
//!
//! Pure functions over a [`DeviceState`] snapshot, which the server takes from the running
//! daemon.

use protocol::allowed_ips::IpPrefix;
use protocol::keys::{hex, PresharedKey, PrivateKey, PublicKey};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::Duration;
use zeroize::Zeroizing;

/// What `get=1` reports about the device.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceState {
    /// Our private key, if one is set (not written otherwise).
    pub private_key: Option<PrivateKey>,
    /// The UDP port in use (not written when 0).
    pub listen_port: u16,
    /// The firewall mark, if any.
    pub fwmark: Option<u32>,
    /// Every peer.
    pub peers: Vec<PeerState>,
}

/// What `get=1` reports about one peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerState {
    /// The peer's public key.
    pub public_key: PublicKey,
    /// Its preshared key (written as all zeros when there is none).
    pub preshared_key: Option<PresharedKey>,
    /// Where its packets go now, if known.
    pub endpoint: Option<SocketAddr>,
    /// Time since the Unix epoch of the last completed handshake (0 when none).
    pub last_handshake: Option<Duration>,
    /// Bytes sent to the peer.
    pub tx_bytes: u64,
    /// Bytes received from the peer.
    pub rx_bytes: u64,
    /// Keepalive interval in seconds, if on.
    pub persistent_keepalive: Option<u16>,
    /// Allowed IPs, written masked.
    pub allowed_ips: Vec<IpPrefix>,
}

/// The complete answer to `get=1`, ending with `errno=0` and the empty line. It holds the
/// private key, so it is wiped when dropped.
pub fn render_get(d: &DeviceState) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(256 + d.peers.len() * 256));
    let o = &mut *out;
    if let Some(k) = &d.private_key {
        let _ = writeln!(o, "private_key={}", hex(k.as_bytes()));
    }
    if d.listen_port != 0 {
        let _ = writeln!(o, "listen_port={}", d.listen_port);
    }
    if let Some(m) = d.fwmark.filter(|&m| m != 0) {
        let _ = writeln!(o, "fwmark={m}");
    }
    for p in &d.peers {
        let _ = writeln!(o, "public_key={}", p.public_key.to_hex());
        let psk = p.preshared_key.as_ref().map_or([0; 32], |k| *k.as_bytes());
        let _ = writeln!(o, "preshared_key={}", hex(&psk));
        o.push_str("protocol_version=1\n");
        if let Some(e) = p.endpoint {
            // `[v6]:port` for IPv6, as SocketAddr displays it.
            let _ = writeln!(o, "endpoint={e}");
        }
        let hs = p.last_handshake.unwrap_or_default();
        let _ = writeln!(o, "last_handshake_time_sec={}", hs.as_secs());
        let _ = writeln!(o, "last_handshake_time_nsec={}", hs.subsec_nanos());
        let _ = writeln!(o, "tx_bytes={}", p.tx_bytes);
        let _ = writeln!(o, "rx_bytes={}", p.rx_bytes);
        let _ = writeln!(
            o,
            "persistent_keepalive_interval={}",
            p.persistent_keepalive.unwrap_or(0)
        );
        for a in &p.allowed_ips {
            let _ = writeln!(o, "allowed_ip={}", a.masked());
        }
    }
    o.push_str("errno=0\n\n");
    out
}

/// The answer that ends every operation: `errno=N` and the empty line.
pub fn render_errno(errno: i32) -> String {
    format!("errno={errno}\n\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(b: u8) -> PeerState {
        PeerState {
            public_key: PublicKey([b; 32]),
            preshared_key: None,
            endpoint: None,
            last_handshake: None,
            tx_bytes: 0,
            rx_bytes: 0,
            persistent_keepalive: None,
            allowed_ips: vec![],
        }
    }

    #[test]
    fn a_bare_device() {
        assert_eq!(&*render_get(&DeviceState::default()), "errno=0\n\n");
        let d = DeviceState {
            listen_port: 51820,
            fwmark: Some(0),
            ..Default::default()
        };
        assert_eq!(&*render_get(&d), "listen_port=51820\nerrno=0\n\n");
    }

    #[test]
    fn every_field() {
        let mut p1 = peer(0xab);
        p1.preshared_key = Some(PresharedKey([1; 32]));
        p1.endpoint = Some("[fd00::1]:51820".parse().unwrap());
        p1.last_handshake = Some(Duration::new(1_700_000_000, 123_456_789));
        p1.tx_bytes = 10;
        p1.rx_bytes = 20;
        p1.persistent_keepalive = Some(25);
        p1.allowed_ips = vec!["10.0.0.7/24".parse().unwrap(), "fd00::/64".parse().unwrap()];
        let mut p2 = peer(2);
        p2.endpoint = Some("192.0.2.1:1".parse().unwrap());
        let d = DeviceState {
            private_key: Some(PrivateKey::from_bytes([0x40; 32])),
            listen_port: 51820,
            fwmark: Some(51820),
            peers: vec![p1, p2],
        };
        let want = format!(
            "private_key={}\nlisten_port=51820\nfwmark=51820\n\
             public_key={}\npreshared_key={}\nprotocol_version=1\nendpoint=[fd00::1]:51820\n\
             last_handshake_time_sec=1700000000\nlast_handshake_time_nsec=123456789\n\
             tx_bytes=10\nrx_bytes=20\npersistent_keepalive_interval=25\n\
             allowed_ip=10.0.0.0/24\nallowed_ip=fd00::/64\n\
             public_key={}\npreshared_key={}\nprotocol_version=1\nendpoint=192.0.2.1:1\n\
             last_handshake_time_sec=0\nlast_handshake_time_nsec=0\n\
             tx_bytes=0\nrx_bytes=0\npersistent_keepalive_interval=0\n\
             errno=0\n\n",
            hex(PrivateKey::from_bytes([0x40; 32]).as_bytes()),
            "ab".repeat(32),
            "01".repeat(32),
            "02".repeat(32),
            "00".repeat(32),
        );
        assert_eq!(*render_get(&d), want);
    }

    #[test]
    fn round_trips_through_the_parser() {
        // What `get` says, `set` accepts (less the read-only counters), as `wg showconf |
        // wg setconf` relies on.
        let mut p = peer(3);
        p.preshared_key = Some(PresharedKey([4; 32]));
        p.endpoint = Some("10.1.2.3:4".parse().unwrap());
        p.persistent_keepalive = Some(5);
        p.allowed_ips = vec!["10.9.0.0/16".parse().unwrap()];
        let d = DeviceState {
            private_key: Some(PrivateKey::from_bytes([9; 32])),
            listen_port: 1234,
            fwmark: Some(7),
            peers: vec![p.clone()],
        };
        let text = render_get(&d);
        let settable: Vec<&str> = text
            .lines()
            .filter(|l| {
                !l.is_empty()
                    && !l.starts_with("errno=")
                    && !l.starts_with("last_handshake")
                    && !l.starts_with("tx_bytes")
                    && !l.starts_with("rx_bytes")
            })
            .collect();
        let r = crate::uapi::parse::parse_set(settable).unwrap();
        assert_eq!(r.private_key, Some(d.private_key.clone()));
        assert_eq!(r.listen_port, Some(1234));
        assert_eq!(r.fwmark, Some(7));
        let s = &r.peers[0];
        assert_eq!(s.public_key, p.public_key);
        assert_eq!(s.preshared_key, Some(p.preshared_key.clone()));
        assert_eq!(s.endpoint, p.endpoint);
        assert_eq!(s.persistent_keepalive, Some(5));
        assert_eq!(s.allowed_ips, p.allowed_ips);
    }

    #[test]
    fn errno_trailer() {
        assert_eq!(render_errno(0), "errno=0\n\n");
        assert_eq!(render_errno(22), "errno=22\n\n");
    }
}
