//! Packet captures on the outer links: `tcpdump -w` inside a namespace ([`Capture`]) and a
//! small reader for the pcap files it writes ([`read_pcap`], [`Packet`]).
//!
//! Hardening tests use them to check what a daemon sends on the wire (nothing to a stranger,
//! keepalives at the right times, no transport data after its keys were cleared) and to get
//! real WireGuard messages to replay later.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tempfile::TempDir;

use crate::{Netns, Proc};

/// IP protocol number of UDP.
pub const PROTO_UDP: u8 = 17;
/// IP protocol number of ICMP.
pub const PROTO_ICMP: u8 = 1;
/// IP protocol number of ICMPv6.
pub const PROTO_ICMPV6: u8 = 58;

/// One captured frame, decoded as far as the tests need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    /// Capture time since the Unix epoch.
    pub ts: Duration,
    /// The link-layer protocol (0x0800 IPv4, 0x86dd IPv6, 0x0806 ARP, ...).
    pub ethertype: u16,
    /// Source address, for IP packets.
    pub src: Option<IpAddr>,
    /// Destination address, for IP packets.
    pub dst: Option<IpAddr>,
    /// IP protocol (IPv4) or first next-header (IPv6).
    pub proto: u8,
    /// Whether this is an IPv4 fragment (MF set or a non-zero offset) or an IPv6 packet with
    /// a fragment header: the transport fields below are then not decoded.
    pub fragment: bool,
    /// UDP/TCP source port.
    pub src_port: Option<u16>,
    /// UDP/TCP destination port.
    pub dst_port: Option<u16>,
    /// ICMP or ICMPv6 type.
    pub icmp_type: Option<u8>,
    /// The UDP payload (empty for anything else), as far as it was captured.
    pub payload: Vec<u8>,
    /// The UDP payload length from the UDP header (the whole payload, even when the capture
    /// was cut short by a snap length).
    pub udp_len: usize,
}

impl Packet {
    /// Whether this is neighbour discovery or ARP (link housekeeping, not traffic): ARP, or
    /// ICMPv6 router/neighbour solicitation/advertisement, redirect, or an MLD report; also
    /// anything the kernel sends to link-local multicast (`ff02::/16`: MLD reports carry a
    /// hop-by-hop header this parser does not walk), where vpnd never sends.
    pub fn is_link_housekeeping(&self) -> bool {
        let link_multicast = matches!(self.dst, Some(IpAddr::V6(a)) if a.segments()[0] == 0xff02);
        self.ethertype == 0x0806
            || link_multicast
            || (self.proto == PROTO_ICMPV6 && matches!(self.icmp_type, Some(130..=137) | Some(143)))
    }

    /// The WireGuard message type of a UDP payload (`1`..=`4`), if it has four bytes.
    pub fn wg_type(&self) -> Option<u32> {
        let b = self.payload.get(..4)?;
        Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// One line describing the packet, for messages.
    pub fn summary(&self) -> String {
        let addr = |a: Option<IpAddr>, p: Option<u16>| match (a, p) {
            (Some(a), Some(p)) => format!("{a}:{p}"),
            (Some(a), None) => a.to_string(),
            _ => "?".to_owned(),
        };
        format!(
            "{:.6} ethertype {:#06x} proto {} {} -> {} icmp {:?} udp payload {} bytes{}",
            self.ts.as_secs_f64(),
            self.ethertype,
            self.proto,
            addr(self.src, self.src_port),
            addr(self.dst, self.dst_port),
            self.icmp_type,
            self.payload.len(),
            if self.fragment { " (fragment)" } else { "" }
        )
    }
}

/// Reads a classic pcap file (microsecond or nanosecond timestamps, either byte order) with
/// link type Ethernet (1), raw IP (101/12), Linux cooked (113) or Linux cooked v2 (276).
pub fn read_pcap(path: &Path) -> io::Result<Vec<Packet>> {
    parse_pcap(&std::fs::read(path)?)
}

/// [`read_pcap`] on bytes.
pub fn parse_pcap(data: &[u8]) -> io::Result<Vec<Packet>> {
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, format!("pcap: {what}"));
    if data.len() < 24 {
        // tcpdump stopped before writing its header: no packets.
        return if data.is_empty() {
            Ok(Vec::new())
        } else {
            Err(bad("short header"))
        };
    }
    let magic = u32::from_le_bytes([data[0], data[1], data[2], data[3]]);
    let (le, nanos) = match magic {
        0xa1b2_c3d4 => (true, false),
        0xa1b2_3c4d => (true, true),
        0xd4c3_b2a1 => (false, false),
        0x4d3c_b2a1 => (false, true),
        _ => return Err(bad("not a pcap file")),
    };
    let u32_at = |b: &[u8], at: usize| {
        let a = [b[at], b[at + 1], b[at + 2], b[at + 3]];
        if le {
            u32::from_le_bytes(a)
        } else {
            u32::from_be_bytes(a)
        }
    };
    let linktype = u32_at(data, 20);
    let mut out = Vec::new();
    let mut at = 24;
    while at + 16 <= data.len() {
        let secs = u32_at(data, at);
        let frac = u32_at(data, at + 4);
        let caplen = u32_at(data, at + 8) as usize;
        at += 16;
        if at + caplen > data.len() {
            break; // a record cut short when tcpdump was stopped
        }
        let frame = &data[at..at + caplen];
        at += caplen;
        let ts = Duration::new(
            u64::from(secs),
            if nanos {
                frac
            } else {
                frac.saturating_mul(1000)
            }
            .min(999_999_999),
        );
        if let Some(p) = decode_frame(linktype, frame, ts) {
            out.push(p);
        }
    }
    Ok(out)
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

fn decode_frame(linktype: u32, frame: &[u8], ts: Duration) -> Option<Packet> {
    let (ethertype, l3) = match linktype {
        1 => {
            let mut et = be16(frame, 12)?;
            let mut off = 14;
            if et == 0x8100 {
                et = be16(frame, 16)?;
                off = 18;
            }
            (et, frame.get(off..)?)
        }
        113 => (be16(frame, 14)?, frame.get(16..)?),
        276 => (be16(frame, 0)?, frame.get(20..)?),
        101 | 12 | 14 => match frame.first()? >> 4 {
            4 => (0x0800, frame),
            6 => (0x86dd, frame),
            _ => return None,
        },
        _ => return None,
    };
    let mut p = Packet {
        ts,
        ethertype,
        src: None,
        dst: None,
        proto: 0,
        fragment: false,
        src_port: None,
        dst_port: None,
        icmp_type: None,
        payload: Vec::new(),
        udp_len: 0,
    };
    let l4 = match ethertype {
        0x0800 if l3.len() >= 20 => {
            let ihl = usize::from(l3[0] & 0x0f) * 4;
            let total = usize::from(be16(l3, 2)?).min(l3.len());
            let frag = be16(l3, 6)?;
            p.proto = l3[9];
            p.src = Some(IpAddr::V4(Ipv4Addr::new(l3[12], l3[13], l3[14], l3[15])));
            p.dst = Some(IpAddr::V4(Ipv4Addr::new(l3[16], l3[17], l3[18], l3[19])));
            p.fragment = frag & 0x3fff != 0;
            l3.get(ihl..total)?
        }
        0x86dd if l3.len() >= 40 => {
            let plen = usize::from(be16(l3, 4)?);
            p.proto = l3[6];
            let mut a = [0u8; 16];
            a.copy_from_slice(&l3[8..24]);
            p.src = Some(IpAddr::V6(Ipv6Addr::from(a)));
            a.copy_from_slice(&l3[24..40]);
            p.dst = Some(IpAddr::V6(Ipv6Addr::from(a)));
            p.fragment = p.proto == 44;
            l3.get(40..(40 + plen).min(l3.len()))?
        }
        _ => return Some(p),
    };
    if p.fragment {
        return Some(p);
    }
    match p.proto {
        PROTO_UDP if l4.len() >= 8 => {
            p.src_port = be16(l4, 0);
            p.dst_port = be16(l4, 2);
            let ulen = usize::from(be16(l4, 4)?).max(8);
            p.udp_len = ulen - 8;
            p.payload = l4[8..ulen.min(l4.len())].to_vec();
        }
        6 if l4.len() >= 4 => {
            p.src_port = be16(l4, 0);
            p.dst_port = be16(l4, 2);
        }
        PROTO_ICMP | PROTO_ICMPV6 => p.icmp_type = l4.first().copied(),
        _ => {}
    }
    Some(p)
}

/// A running `tcpdump -w` inside a namespace. [`Capture::stop`] ends it and returns what it
/// captured; dropping it stops tcpdump and deletes the file.
#[derive(Debug)]
pub struct Capture {
    proc: Proc,
    file: PathBuf,
    _dir: TempDir,
}

impl Capture {
    /// Starts `tcpdump -i <ifname>` in `ns` with the pcap filter `filter` (may be empty),
    /// `direction` `"in"`, `"out"` or `"inout"` (`-Q`), full packets, packet-buffered, and waits
    /// until it is listening.
    ///
    /// # Panics
    /// If tcpdump exits or is not listening within 10 s.
    pub fn start(ns: &Netns, ifname: &str, direction: &str, filter: &str) -> Capture {
        Capture::start_snaplen(ns, ifname, direction, filter, 0)
    }

    /// [`Capture::start`] keeping only the first `snaplen` bytes of each packet (0: all), for
    /// long captures of bulk traffic.
    pub fn start_snaplen(
        ns: &Netns,
        ifname: &str,
        direction: &str,
        filter: &str,
        snaplen: u32,
    ) -> Capture {
        let dir = tempfile::Builder::new()
            .prefix("vpnt-pcap-")
            .tempdir()
            .unwrap_or_else(|e| panic!("cannot create a temporary directory: {e}"));
        let file = dir.path().join("capture.pcap");
        let snaplen_arg = snaplen.to_string();
        let mut args: Vec<String> = [
            "tcpdump",
            "-i",
            ifname,
            "-n",
            "-U",
            // Hand every packet to tcpdump at once: otherwise packets wait in the kernel's ring
            // buffer blocks and are lost when tcpdump is stopped shortly after them.
            "--immediate-mode",
            // Keep root: tcpdump would otherwise switch to its own user, which cannot write
            // into the test's private temporary directory.
            "-Z",
            "root",
            "-s",
            &snaplen_arg,
            "-B",
            "8192",
            "-Q",
            direction,
            "-w",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        args.push(file.to_string_lossy().into_owned());
        if !filter.is_empty() {
            args.push(filter.to_owned());
        }
        let proc = ns.spawn(&args);
        if !proc.wait_for_output("listening on", Duration::from_secs(10)) {
            panic!("tcpdump did not start\n{}", proc.logs());
        }
        Capture {
            proc,
            file,
            _dir: dir,
        }
    }

    /// The packets captured so far (tcpdump keeps running).
    pub fn packets_so_far(&self) -> Vec<Packet> {
        // -U flushes after each packet; a record being written may be cut: the reader stops.
        read_pcap(&self.file).unwrap_or_default()
    }

    /// Stops tcpdump (SIGINT, so it flushes) and returns every packet it captured.
    ///
    /// # Panics
    /// If the file cannot be read.
    pub fn stop(mut self) -> Vec<Packet> {
        let _ = self.proc.signal(libc::SIGINT);
        if self.proc.wait_exit(Duration::from_secs(5)).is_none() {
            self.proc.stop(Duration::from_secs(2));
        }
        read_pcap(&self.file).unwrap_or_else(|e| {
            panic!(
                "cannot read {}: {e}\n{}",
                self.file.display(),
                self.proc.logs()
            )
        })
    }

    /// The pcap file being written.
    pub fn file(&self) -> &Path {
        &self.file
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pcap(linktype: u32, frames: &[&[u8]]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        v.extend_from_slice(&2u16.to_le_bytes());
        v.extend_from_slice(&4u16.to_le_bytes());
        v.extend_from_slice(&[0; 8]);
        v.extend_from_slice(&65535u32.to_le_bytes());
        v.extend_from_slice(&linktype.to_le_bytes());
        for (i, f) in frames.iter().enumerate() {
            v.extend_from_slice(&(100 + i as u32).to_le_bytes());
            v.extend_from_slice(&500u32.to_le_bytes());
            v.extend_from_slice(&(f.len() as u32).to_le_bytes());
            v.extend_from_slice(&(f.len() as u32).to_le_bytes());
            v.extend_from_slice(f);
        }
        v
    }

    fn udp4(payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 14];
        f[12] = 0x08;
        let total = 20 + 8 + payload.len();
        let mut ip = vec![
            0x45,
            0,
            (total >> 8) as u8,
            total as u8,
            0,
            0,
            0x40,
            0,
            64,
            17,
            0,
            0,
        ];
        ip.extend_from_slice(&[10, 0, 0, 1, 10, 0, 0, 2]);
        f.extend_from_slice(&ip);
        let ulen = 8 + payload.len();
        f.extend_from_slice(&[0xca, 0x6c, 0xca, 0x6d, (ulen >> 8) as u8, ulen as u8, 0, 0]);
        f.extend_from_slice(payload);
        f
    }

    #[test]
    fn decodes_udp_over_ethernet() {
        let frame = udp4(&[4, 0, 0, 0, 9, 9]);
        let arp = {
            let mut f = vec![0u8; 42];
            f[12] = 0x08;
            f[13] = 0x06;
            f
        };
        let pkts = parse_pcap(&pcap(1, &[&frame, &arp])).unwrap();
        assert_eq!(pkts.len(), 2);
        let p = &pkts[0];
        assert_eq!(p.ts, Duration::new(100, 500_000));
        assert_eq!(p.src, Some("10.0.0.1".parse().unwrap()));
        assert_eq!(p.dst_port, Some(51821));
        assert_eq!(p.src_port, Some(51820));
        assert_eq!(p.payload, vec![4, 0, 0, 0, 9, 9]);
        assert_eq!(p.udp_len, 6);
        assert_eq!(p.wg_type(), Some(4));
        assert!(!p.is_link_housekeeping());
        assert!(pkts[1].is_link_housekeeping());
    }

    #[test]
    fn truncated_files_yield_what_is_complete() {
        let frame = udp4(&[1, 2, 3]);
        let mut data = pcap(1, &[&frame, &frame]);
        data.truncate(data.len() - 3);
        assert_eq!(parse_pcap(&data).unwrap().len(), 1);
        assert!(parse_pcap(&[]).unwrap().is_empty());
        assert!(parse_pcap(&[0; 30]).is_err());
    }
}
