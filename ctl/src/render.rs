//! Human-readable rendering of daemon answers, in the style of `wg show`.
//!
//! Everything here is a pure function of its arguments (the clock and the terminal are passed
//! in), so the output can be tested as plain strings.

use protocol::rpc::{ChangeResult, NatInfo, PeerInfo, PeerShowResult, ShowResult, StatsResult};
use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt::Write as _;

const BOLD: &str = "\x1b[1m";
const GREEN: &str = "\x1b[32m";
const YELLOW: &str = "\x1b[33m";
const RED: &str = "\x1b[31m";
const RESET: &str = "\x1b[0m";

/// Whether to colour output: only when stdout is a terminal and `NO_COLOR` is unset or empty
/// (as <https://no-color.org> asks).
pub fn color_enabled(stdout_is_tty: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    stdout_is_tty && no_color.is_none_or(|v| v.is_empty())
}

/// How long ago something happened, as `wg` words it: `"1 day, 2 hours, 1 minute, 4 seconds
/// ago"`, with zero parts left out and `"Now"` for zero seconds. Days are the largest unit.
pub fn format_duration_ago(secs: u64) -> String {
    if secs == 0 {
        return "Now".to_string();
    }
    let parts = [
        (secs / 86_400, "day"),
        (secs % 86_400 / 3_600, "hour"),
        (secs % 3_600 / 60, "minute"),
        (secs % 60, "second"),
    ];
    let words: Vec<String> = parts
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, unit)| plural(*n, unit))
        .collect();
    format!("{} ago", words.join(", "))
}

/// A byte count as `wg` prints it: `"92 B"` below 1 KiB, else two decimals in KiB, MiB, GiB or
/// TiB (`"1.23 KiB"`).
pub fn format_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.2} {}", UNITS[unit])
}

/// The order peers are shown in: online peers first, then the rest; within each group named
/// peers by name (case-insensitively, then exactly), then unnamed peers, ties broken by public
/// key. The order does not depend on the order the daemon sent them in.
pub fn sort_peers(peers: &[PeerInfo]) -> Vec<&PeerInfo> {
    let mut sorted: Vec<&PeerInfo> = peers.iter().collect();
    sorted.sort_by(|a, b| peer_order(a, b));
    sorted
}

fn peer_order(a: &PeerInfo, b: &PeerInfo) -> Ordering {
    let online = |p: &PeerInfo| p.state != "online";
    let name = |p: &PeerInfo| p.name.as_ref().map(|n| (n.to_lowercase(), n.clone()));
    online(a)
        .cmp(&online(b))
        .then_with(|| match (name(a), name(b)) {
            (Some(x), Some(y)) => x.cmp(&y),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        })
        .then_with(|| a.public_key.cmp(&b.public_key))
}

/// Renders a `show` result like `wg show`: the interface, then each peer (in [`sort_peers`]
/// order) after a blank line. `now_unix` is the current time in Unix seconds, used for the
/// handshake age. With `color`, headings are bold and peer states coloured (green online,
/// yellow handshaking, red offline or failed).
///
/// Lines are left out as `wg` does: the endpoint when unknown, the latest handshake when there
/// has been none, persistent keepalive when off, and dropped packets when none were dropped.
/// Text from the daemon has control characters escaped, so it cannot drive the terminal.
pub fn render_show(show: &ShowResult, now_unix: u64, color: bool) -> String {
    let mut out = String::new();
    let iface = &show.interface;
    heading(
        &mut out,
        color,
        &format!("interface: {}", clean(&iface.name)),
    );
    if iface.public_key.is_empty() {
        // A UAPI-configured daemon before its private key is set.
        field(&mut out, "public key", "(none: no private key set)");
    } else {
        field(&mut out, "public key", &clean(&iface.public_key));
    }
    field(&mut out, "listen port", &iface.listen_port.to_string());
    field(&mut out, "addresses", &list(&iface.addresses));
    field(&mut out, "mtu", &iface.mtu.to_string());
    let drops: Vec<String> = iface
        .drops
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(why, n)| format!("{} {n}", clean(why)))
        .collect();
    if !drops.is_empty() {
        field(&mut out, "dropped packets", &drops.join(", "));
    }
    let restarts: Vec<String> = iface
        .dataplane_restarts
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(task, n)| format!("{} {n}", clean(task)))
        .collect();
    if !restarts.is_empty() {
        field(&mut out, "data-plane restarts", &restarts.join(", "));
    }
    render_nat_summary(&mut out, &iface.nat);

    for peer in sort_peers(&show.peers) {
        out.push('\n');
        out.push_str(&render_peer(peer, now_unix, color));
    }
    out
}

/// Renders one peer as a block of `show`: a `peer: <key> (name)` heading and indented
/// fields, with the same rules for leaving lines out as [`render_show`].
pub fn render_peer(peer: &PeerInfo, now_unix: u64, color: bool) -> String {
    let mut out = String::new();
    let mut title = format!("peer: {}", clean(&peer.public_key));
    if let Some(name) = &peer.name {
        let _ = write!(title, " ({})", clean(name));
    }
    heading(&mut out, color, &title);
    field(&mut out, "state", &state(peer, color));
    if let Some(ep) = endpoint_text(peer, false) {
        field(&mut out, "endpoint", &ep);
    }
    let mut path = clean(&peer.path).into_owned();
    if let Some(ep) = &peer.path_endpoint {
        let _ = write!(path, " via {}", clean(ep));
    }
    let mut notes = Vec::new();
    if let Some(t) = &peer.relay_transport {
        notes.push(clean(t).into_owned());
    }
    if let Some(why) = &peer.why_not_direct {
        notes.push(clean(why).replace('_', " "));
    }
    if let Some(s) = peer.next_direct_attempt {
        notes.push(format!("direct tried again in {s:.0} s"));
    }
    if !notes.is_empty() {
        let _ = write!(path, " ({})", notes.join(", "));
    }
    field(&mut out, "path", &path);
    field(&mut out, "allowed ips", &list(&peer.allowed_ips));
    match peer.last_handshake {
        None | Some(0) => {}
        Some(t) if t > now_unix => field(
            &mut out,
            "latest handshake",
            "in the future (the system clock went backwards?)",
        ),
        Some(t) => field(
            &mut out,
            "latest handshake",
            &format_duration_ago(now_unix - t),
        ),
    }
    field(&mut out, "handshakes", &peer.handshakes.to_string());
    field(
        &mut out,
        "transfer",
        &format!(
            "{} received, {} sent",
            format_bytes(peer.rx_bytes),
            format_bytes(peer.tx_bytes)
        ),
    );
    if let Some(k) = peer.persistent_keepalive.filter(|k| *k > 0) {
        field(
            &mut out,
            "persistent keepalive",
            &format!("every {}", plural(k.into(), "second")),
        );
    }
    out
}

/// The `nat` and `hub` lines of `show`, when NAT traversal is configured.
fn render_nat_summary(out: &mut String, nat: &NatInfo) {
    if nat.hubs.is_empty() && nat.stun_servers.is_empty() {
        return;
    }
    let mut line = clean(&nat.mapping).replace('_', "-");
    if !nat.public_endpoints.is_empty() {
        let _ = write!(line, " mapping, public {}", list(&nat.public_endpoints));
    } else {
        line.push_str(" mapping, no public endpoint known");
    }
    field(out, "nat", &line);
    for hub in &nat.hubs {
        field(out, "hub", &hub_line(hub));
    }
}

fn hub_line(hub: &protocol::rpc::HubInfo) -> String {
    let mut s = format!(
        "{} {} over {}",
        clean(&hub.address),
        clean(&hub.state),
        clean(&hub.transport)
    );
    if hub.tls {
        s.push_str(" (tls)");
    }
    if hub.on_demand {
        s.push_str(", dialled to relay to its peers");
    }
    if let Some(rtt) = hub.rtt_ms {
        let _ = write!(s, ", rtt {rtt:.1} ms");
    }
    if let Some(e) = &hub.error {
        let _ = write!(s, " ({})", clean(e));
    }
    s
}

/// Renders a `netcheck` result: mapping type, public endpoints, each hub and STUN server.
pub fn render_netcheck(nat: &NatInfo) -> String {
    let mut out = String::new();
    field(&mut out, "mapping", &clean(&nat.mapping).replace('_', "-"));
    if nat.public_endpoints.is_empty() {
        field(&mut out, "public endpoints", "(none known)");
    } else {
        field(&mut out, "public endpoints", &list(&nat.public_endpoints));
    }
    for hub in &nat.hubs {
        field(&mut out, "hub", &hub_line(hub));
    }
    for s in &nat.stun_servers {
        let mut line = format!("{} {}", clean(&s.address), clean(&s.state));
        if let Some(m) = &s.mapped {
            let _ = write!(line, ", sees us as {}", clean(m));
        }
        if let Some(rtt) = s.rtt_ms {
            let _ = write!(line, ", rtt {rtt:.1} ms");
        }
        field(&mut out, "stun", &line);
    }
    out
}

/// The endpoint as shown: the address in force, and a configured host name that has not
/// resolved (with the address in force, if any, kept until it does). The table's cell is
/// short: the name alone when there is no address.
fn endpoint_text(peer: &PeerInfo, short: bool) -> Option<String> {
    match (&peer.endpoint, &peer.endpoint_unresolved) {
        (Some(ep), None) => Some(clean(ep).into_owned()),
        (Some(ep), Some(_)) if short => Some(clean(ep).into_owned()),
        (None, Some(name)) if short => Some(format!("{} (unresolved)", clean(name))),
        (None, Some(name)) => Some(format!("{} (unresolved; retrying)", clean(name))),
        (Some(ep), Some(name)) => Some(format!(
            "{} ({} unresolved; retrying)",
            clean(ep),
            clean(name)
        )),
        (None, None) => None,
    }
}

/// Renders a `peer.show` result: the peer's block as in `show`, then `restarts: N`.
pub fn render_peer_show(result: &PeerShowResult, now_unix: u64, color: bool) -> String {
    let mut out = render_peer(&result.peer, now_unix, color);
    field(&mut out, "restarts", &result.restarts.to_string());
    out
}

/// Renders `peer.list` as a table, one peer per line in [`sort_peers`] order: public key,
/// name, state, endpoint and allowed IPs (`-` for what is unset). Nothing at all for no peers.
pub fn render_peer_list(peers: &[PeerInfo]) -> String {
    if peers.is_empty() {
        return String::new();
    }
    let dash = |s: Option<&String>| s.map_or_else(|| "-".to_string(), |v| clean(v).into_owned());
    let mut rows = vec![[
        "PUBLIC KEY".to_string(),
        "NAME".to_string(),
        "STATE".to_string(),
        "ENDPOINT".to_string(),
        "ALLOWED IPS".to_string(),
    ]];
    for p in sort_peers(peers) {
        rows.push([
            clean(&p.public_key).into_owned(),
            dash(p.name.as_ref()),
            clean(&p.state).into_owned(),
            dash(endpoint_text(p, true).as_ref()),
            if p.allowed_ips.is_empty() {
                "-".to_string()
            } else {
                list(&p.allowed_ips)
            },
        ]);
    }
    let mut widths = [0usize; 4];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row.iter()) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in &rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i < widths.len() {
                let _ = write!(line, "{cell:<width$}  ", width = widths[i]);
            } else {
                line.push_str(cell);
            }
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
    out
}

/// The lines describing a change (`peer added: <key> (name)`, `interface: mtu 1420 -> 1380`),
/// in the order interface, added, removed, changed.
pub fn change_lines(change: &ChangeResult) -> Vec<String> {
    let mut v: Vec<String> = change
        .interface
        .iter()
        .map(|l| format!("interface: {}", clean(l)))
        .collect();
    let mut add = |prefix: &str, items: &[String]| {
        v.extend(items.iter().map(|l| format!("{prefix}: {}", clean(l))));
    };
    add("peer added", &change.peers_added);
    add("peer removed", &change.peers_removed);
    add("peer changed", &change.peers_changed);
    v
}

/// Renders a change or reload result: one line per change, or `nothing changed`; then
/// `configuration file saved` when it was written.
pub fn render_change(change: &ChangeResult) -> String {
    let mut lines = change_lines(change);
    if lines.is_empty() {
        lines.push("nothing changed".to_string());
    }
    if change.saved {
        lines.push("configuration file saved".to_string());
    }
    let mut out = lines.join("\n");
    out.push('\n');
    out
}

/// Renders a `stats` result: the handshake queue, whether the cookie defence is on, and every
/// drop counter (zeros included, so scripts can rely on the lines being there).
pub fn render_stats(stats: &StatsResult) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "handshake queue: {}", stats.handshake_queue);
    let _ = writeln!(
        out,
        "under load: {}",
        if stats.under_load {
            "yes (cookie replies on)"
        } else {
            "no"
        }
    );
    if stats.drops.is_empty() {
        let _ = writeln!(out, "dropped packets: (none)");
    } else {
        let _ = writeln!(out, "dropped packets:");
        for (why, n) in &stats.drops {
            field(&mut out, &clean(why), &n.to_string());
        }
    }
    // Only when a server was ever full: the common case stays short.
    if stats.clients_refused.values().any(|&n| n > 0) {
        let _ = writeln!(out, "clients refused (server full):");
        for (server, n) in &stats.clients_refused {
            field(&mut out, &clean(server), &n.to_string());
        }
    }
    out
}

fn state(peer: &PeerInfo, color: bool) -> String {
    let mut text = clean(&peer.state).into_owned();
    if peer.state == "offline" {
        if let Some(reason) = &peer.state_reason {
            let _ = write!(text, " ({})", clean(reason));
        }
    }
    let paint = match peer.state.as_str() {
        "online" => GREEN,
        "handshaking" => YELLOW,
        "offline" | "failed" => RED,
        _ => "",
    };
    if color && !paint.is_empty() {
        format!("{paint}{text}{RESET}")
    } else {
        text
    }
}

fn heading(out: &mut String, color: bool, text: &str) {
    if color {
        let _ = writeln!(out, "{BOLD}{text}{RESET}");
    } else {
        let _ = writeln!(out, "{text}");
    }
}

fn field(out: &mut String, label: &str, value: &str) {
    let _ = writeln!(out, "  {label}: {value}");
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "(none)".to_string()
    } else {
        items
            .iter()
            .map(|s| clean(s))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn plural(n: u64, unit: &str) -> String {
    if n == 1 {
        format!("1 {unit}")
    } else {
        format!("{n} {unit}s")
    }
}

/// `s` with control characters (escape sequences, newlines) escaped.
pub fn clean(s: &str) -> Cow<'_, str> {
    if s.chars().any(char::is_control) {
        Cow::Owned(
            s.chars()
                .map(|c| {
                    if c.is_control() {
                        c.escape_default().to_string()
                    } else {
                        c.to_string()
                    }
                })
                .collect(),
        )
    } else {
        Cow::Borrowed(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::rpc::InterfaceInfo;
    use std::ffi::OsStr;

    #[test]
    fn durations_read_like_wg() {
        assert_eq!(format_duration_ago(0), "Now");
        assert_eq!(format_duration_ago(1), "1 second ago");
        assert_eq!(format_duration_ago(2), "2 seconds ago");
        assert_eq!(format_duration_ago(60), "1 minute ago");
        assert_eq!(format_duration_ago(64), "1 minute, 4 seconds ago");
        assert_eq!(format_duration_ago(3_600), "1 hour ago");
        assert_eq!(format_duration_ago(7_201), "2 hours, 1 second ago");
        assert_eq!(format_duration_ago(86_400), "1 day ago");
        assert_eq!(
            format_duration_ago(2 * 86_400 + 3_600 + 120 + 5),
            "2 days, 1 hour, 2 minutes, 5 seconds ago"
        );
        assert_eq!(format_duration_ago(400 * 86_400), "400 days ago");
        // No overflow or panic at the extreme.
        assert!(format_duration_ago(u64::MAX).ends_with("15 seconds ago"));
    }

    #[test]
    fn bytes_read_like_wg() {
        assert_eq!(format_bytes(0), "0 B");
        assert_eq!(format_bytes(92), "92 B");
        assert_eq!(format_bytes(1023), "1023 B");
        assert_eq!(format_bytes(1024), "1.00 KiB");
        assert_eq!(format_bytes(1260), "1.23 KiB");
        assert_eq!(format_bytes(4_781_506), "4.56 MiB");
        assert_eq!(format_bytes(1 << 30), "1.00 GiB");
        assert_eq!(format_bytes(3 << 40), "3.00 TiB");
        assert_eq!(format_bytes(5000 << 40), "5000.00 TiB");
        assert_eq!(format_bytes(u64::MAX), "16777216.00 TiB");
    }

    #[test]
    fn color_only_on_a_terminal_without_no_color() {
        assert!(color_enabled(true, None));
        assert!(color_enabled(true, Some(OsStr::new(""))));
        assert!(!color_enabled(true, Some(OsStr::new("1"))));
        assert!(!color_enabled(false, None));
    }

    fn peer(name: Option<&str>, key: &str, state: &str) -> PeerInfo {
        PeerInfo {
            name: name.map(str::to_string),
            public_key: key.into(),
            endpoint: None,
            endpoint_unresolved: None,
            allowed_ips: vec![],
            state: state.into(),
            state_reason: None,
            last_handshake: None,
            handshakes: 0,
            rx_bytes: 0,
            tx_bytes: 0,
            persistent_keepalive: None,
            path: "none".into(),
            path_endpoint: None,
            why_not_direct: Some("no_candidates".into()),
            relay: None,
            relay_transport: None,
            why_relayed: None,
            next_direct_attempt: None,
        }
    }

    const NOW: u64 = 1_700_000_000;

    fn sample() -> ShowResult {
        let mut drops = std::collections::BTreeMap::new();
        drops.insert("replay".to_string(), 2);
        drops.insert("bad_mac".to_string(), 0);
        let alice = PeerInfo {
            endpoint: Some("10.99.0.2:51820".into()),
            allowed_ips: vec!["10.10.0.2/32".into(), "fd10::2/128".into()],
            last_handshake: Some(NOW - 64),
            handshakes: 3,
            rx_bytes: 1260,
            tx_bytes: 4_781_506,
            persistent_keepalive: Some(25),
            path: "punched".into(),
            path_endpoint: Some("198.51.100.7:40001".into()),
            why_not_direct: None,
            ..peer(
                Some("alice"),
                "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=",
                "online",
            )
        };
        let bob = PeerInfo {
            endpoint: Some("[fd99::3]:51820".into()),
            allowed_ips: vec!["10.10.0.3/32".into()],
            state_reason: Some("handshake timed out".into()),
            last_handshake: Some(NOW - 90_061),
            handshakes: 1,
            rx_bytes: 92,
            persistent_keepalive: Some(1),
            path: "direct".into(),
            path_endpoint: Some("[fd99::3]:51820".into()),
            why_not_direct: None,
            ..peer(
                Some("bob"),
                "TrMvSoP4jYQlY6RIzBgbssQqY3vxI2Pi+y71lOWWXX0=",
                "offline",
            )
        };
        let nameless = PeerInfo {
            endpoint_unresolved: Some("peer.example.net:51820".into()),
            ..peer(
                None,
                "gN65BkIKy1eCE9pP1wdc8ROUtkHLF2PfAqYdyYBz6EA=",
                "handshaking",
            )
        };
        ShowResult {
            interface: InterfaceInfo {
                name: "vpn0".into(),
                public_key: "HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw=".into(),
                listen_port: 51820,
                addresses: vec!["10.10.0.1/24".into(), "fd10::1/64".into()],
                mtu: 1420,
                drops,
                dataplane_restarts: [("send".to_string(), 1), ("handshake".to_string(), 0)]
                    .into_iter()
                    .collect(),
                nat: NatInfo {
                    public_endpoints: vec!["203.0.113.4:51820".into()],
                    mapping: "endpoint_independent".into(),
                    hubs: vec![protocol::rpc::HubInfo {
                        address: "hub.example.net:3478".into(),
                        state: "connected".into(),
                        transport: "udp".into(),
                        tls: false,
                        on_demand: false,
                        rtt_ms: Some(12.25),
                        error: None,
                    }],
                    stun_servers: vec![],
                },
            },
            // Deliberately out of display order.
            peers: vec![nameless, bob, alice],
        }
    }

    #[test]
    fn show_snapshot() {
        let expected = "\
interface: vpn0
  public key: HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw=
  listen port: 51820
  addresses: 10.10.0.1/24, fd10::1/64
  mtu: 1420
  dropped packets: replay 2
  data-plane restarts: send 1
  nat: endpoint-independent mapping, public 203.0.113.4:51820
  hub: hub.example.net:3478 connected over udp, rtt 12.2 ms

peer: xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg= (alice)
  state: online
  endpoint: 10.99.0.2:51820
  path: punched via 198.51.100.7:40001
  allowed ips: 10.10.0.2/32, fd10::2/128
  latest handshake: 1 minute, 4 seconds ago
  handshakes: 3
  transfer: 1.23 KiB received, 4.56 MiB sent
  persistent keepalive: every 25 seconds

peer: TrMvSoP4jYQlY6RIzBgbssQqY3vxI2Pi+y71lOWWXX0= (bob)
  state: offline (handshake timed out)
  endpoint: [fd99::3]:51820
  path: direct via [fd99::3]:51820
  allowed ips: 10.10.0.3/32
  latest handshake: 1 day, 1 hour, 1 minute, 1 second ago
  handshakes: 1
  transfer: 92 B received, 0 B sent
  persistent keepalive: every 1 second

peer: gN65BkIKy1eCE9pP1wdc8ROUtkHLF2PfAqYdyYBz6EA=
  state: handshaking
  endpoint: peer.example.net:51820 (unresolved; retrying)
  path: none (no candidates)
  allowed ips: (none)
  handshakes: 0
  transfer: 0 B received, 0 B sent
";
        assert_eq!(render_show(&sample(), NOW, false), expected);
    }

    #[test]
    fn show_with_color() {
        let out = render_show(&sample(), NOW, true);
        assert!(out.starts_with("\x1b[1minterface: vpn0\x1b[0m\n"));
        assert!(out.contains(
            "\x1b[1mpeer: xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg= (alice)\x1b[0m\n"
        ));
        assert!(out.contains("  state: \x1b[32monline\x1b[0m\n"));
        assert!(out.contains("  state: \x1b[31moffline (handshake timed out)\x1b[0m\n"));
        assert!(out.contains("  state: \x1b[33mhandshaking\x1b[0m\n"));
        assert!(!render_show(&sample(), NOW, false).contains('\x1b'));
    }

    #[test]
    fn edge_cases_do_not_panic() {
        let mut s = sample();
        s.interface.addresses.clear();
        s.interface.drops.clear();
        // peers[0] is the nameless one, [1] bob, [2] alice.
        s.peers[2].last_handshake = Some(NOW + 10);
        s.peers[1].last_handshake = Some(NOW);
        s.peers[1].state_reason = None;
        s.peers[0].name = Some("evil\x1b[2J\n".into());
        s.peers[0].state = "weird".into();
        let out = render_show(&s, NOW, true);
        assert!(out.contains("  addresses: (none)\n"));
        assert!(!out.contains("dropped packets"));
        assert!(out.contains("latest handshake: in the future"));
        assert!(out.contains("  latest handshake: Now\n"));
        assert!(out.contains("  state: \x1b[31moffline\x1b[0m\n"));
        assert!(out.contains("(alice)"));
        assert!(out.contains("(evil\\u{1b}[2J\\n)"));
        assert!(out.contains("  state: weird\n"));
        let empty = ShowResult {
            interface: s.interface.clone(),
            peers: vec![],
        };
        assert!(!render_show(&empty, 0, false).contains("peer"));
    }

    #[test]
    fn peer_show_is_a_show_block_plus_restarts() {
        let s = sample();
        let alice = s.peers[2].clone();
        let block = render_peer(&alice, NOW, false);
        assert!(render_show(&s, NOW, false).contains(&block));
        let out = render_peer_show(
            &PeerShowResult {
                peer: alice,
                restarts: 2,
            },
            NOW,
            false,
        );
        assert_eq!(out, format!("{block}  restarts: 2\n"));
        assert!(out.starts_with("peer: xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg= (alice)\n"));
    }

    #[test]
    fn peer_list_table() {
        let s = sample();
        let expected = "\
PUBLIC KEY                                    NAME   STATE        ENDPOINT                             ALLOWED IPS
xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=  alice  online       10.99.0.2:51820                      10.10.0.2/32, fd10::2/128
TrMvSoP4jYQlY6RIzBgbssQqY3vxI2Pi+y71lOWWXX0=  bob    offline      [fd99::3]:51820                      10.10.0.3/32
gN65BkIKy1eCE9pP1wdc8ROUtkHLF2PfAqYdyYBz6EA=  -      handshaking  peer.example.net:51820 (unresolved)  -
";
        assert_eq!(render_peer_list(&s.peers), expected);
        assert_eq!(render_peer_list(&[]), "");
        let mut evil = s.peers[0].clone();
        evil.name = Some("x\x1b[2J".into());
        assert!(!render_peer_list(&[evil]).contains('\x1b'));
    }

    #[test]
    fn changes_one_line_each() {
        let change = ChangeResult {
            interface: vec!["mtu 1420 -> 1380".into()],
            peers_added: vec!["KEY1 (alice)".into()],
            peers_removed: vec!["KEY2".into()],
            peers_changed: vec!["KEY3 (bob): endpoint, allowed_ips".into()],
            saved: false,
        };
        assert_eq!(
            render_change(&change),
            "interface: mtu 1420 -> 1380\npeer added: KEY1 (alice)\npeer removed: KEY2\n\
             peer changed: KEY3 (bob): endpoint, allowed_ips\n"
        );
        let none = ChangeResult::default();
        assert_eq!(render_change(&none), "nothing changed\n");
        let saved = ChangeResult {
            saved: true,
            ..ChangeResult::default()
        };
        assert_eq!(
            render_change(&saved),
            "nothing changed\nconfiguration file saved\n"
        );
        let evil = ChangeResult {
            peers_added: vec!["K (\x1b[31m)".into()],
            ..ChangeResult::default()
        };
        assert!(!render_change(&evil).contains('\x1b'));
    }

    #[test]
    fn stats_lists_every_counter() {
        let mut stats = StatsResult {
            handshake_queue: 3,
            under_load: true,
            ..StatsResult::default()
        };
        assert_eq!(
            render_stats(&stats),
            "handshake queue: 3\nunder load: yes (cookie replies on)\ndropped packets: (none)\n"
        );
        stats.under_load = false;
        stats.drops.insert("replay".into(), 2);
        stats.drops.insert("bad_mac".into(), 0);
        assert_eq!(
            render_stats(&stats),
            "handshake queue: 3\nunder load: no\ndropped packets:\n  bad_mac: 0\n  replay: 2\n"
        );
    }

    #[test]
    fn peers_sort_online_first_then_by_name_then_key() {
        let peers = vec![
            peer(None, "B", "offline"),
            peer(Some("zed"), "C", "offline"),
            peer(None, "A", "online"),
            peer(Some("Bob"), "D", "online"),
            peer(Some("alice"), "E", "online"),
            peer(None, "0", "handshaking"),
        ];
        let keys: Vec<&str> = sort_peers(&peers)
            .iter()
            .map(|p| p.public_key.as_str())
            .collect();
        assert_eq!(keys, ["E", "D", "A", "C", "0", "B"]);
    }
}
