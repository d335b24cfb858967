//! Live reconfiguration: the difference between the running configuration and a new one, and
//! the consistency checks every runtime change passes (reload, JSON-RPC, UAPI alike).

use crate::config::{mtu_problem, Config, PeerConfig};
use protocol::allowed_ips::IpPrefix;
use protocol::keys::PublicKey;
use serde::Serialize;
use std::collections::{HashMap, HashSet};

/// What differs between two configurations, in the order it is applied.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The static private key changed: every session must be rebuilt.
    pub private_key: bool,
    /// New listen port (`Some(None)` = any port).
    pub listen_port: Option<Option<u16>>,
    /// New MTU.
    pub mtu: Option<u16>,
    /// New interface addresses.
    pub addresses: Option<Vec<IpPrefix>>,
    /// New volume rekey threshold.
    pub rekey_after_bytes: Option<u64>,
    /// New firewall mark (`Some(None)` = no mark).
    pub fwmark: Option<Option<u32>>,
    /// The control socket path or group changed.
    pub control: bool,
    /// The hubs or STUN servers changed: the NAT traversal restarts with the new list.
    pub nat: bool,
    /// Peers to stop.
    pub removed: Vec<PublicKey>,
    /// Peers to start.
    pub added: Vec<PeerConfig>,
    /// Peers whose settings change in place (their sessions are kept).
    pub changed: Vec<PeerConfig>,
}

impl Plan {
    /// Whether nothing changes.
    pub fn is_empty(&self) -> bool {
        *self == Plan::default()
    }
}

/// What a reload or change did, as reported to the operator.
#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
pub struct ChangeReport {
    /// Interface-level changes, one line each (`mtu 1420 -> 1380`).
    pub interface: Vec<String>,
    /// Public keys (with names) of peers added.
    pub peers_added: Vec<String>,
    /// Peers removed.
    pub peers_removed: Vec<String>,
    /// Peers changed in place, with what changed.
    pub peers_changed: Vec<String>,
}

impl ChangeReport {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.interface.is_empty()
            && self.peers_added.is_empty()
            && self.peers_removed.is_empty()
            && self.peers_changed.is_empty()
    }

    /// One line per change, for logs and `vpnctl reload`.
    pub fn lines(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .interface
            .iter()
            .map(|l| format!("interface: {l}"))
            .collect();
        v.extend(self.peers_added.iter().map(|p| format!("peer added: {p}")));
        v.extend(
            self.peers_removed
                .iter()
                .map(|p| format!("peer removed: {p}")),
        );
        v.extend(
            self.peers_changed
                .iter()
                .map(|p| format!("peer changed: {p}")),
        );
        v
    }
}

fn peer_label(p: &PeerConfig) -> String {
    match &p.name {
        Some(n) => format!("{} ({n})", p.public_key),
        None => p.public_key.to_string(),
    }
}

/// What changed about one peer, field by field.
pub fn peer_changes(old: &PeerConfig, new: &PeerConfig) -> Vec<&'static str> {
    let mut v = Vec::new();
    if old.name != new.name {
        v.push("name");
    }
    if old.preshared_key != new.preshared_key {
        v.push("preshared_key");
    }
    if old.allowed_ips != new.allowed_ips {
        v.push("allowed_ips");
    }
    if old.endpoint != new.endpoint {
        v.push("endpoint");
    }
    if old.persistent_keepalive != new.persistent_keepalive {
        v.push("persistent_keepalive");
    }
    v
}

/// Computes the plan and the report for going from `old` to `new`.
pub fn plan(old: &Config, new: &Config) -> (Plan, ChangeReport) {
    let mut p = Plan::default();
    let mut r = ChangeReport::default();
    let (oi, ni) = (&old.interface, &new.interface);
    if oi.name != ni.name {
        // Renaming the interface is not a live change; the checks refuse it earlier.
        r.interface
            .push(format!("name {} -> {} (needs a restart)", oi.name, ni.name));
    }
    if oi.private_key != ni.private_key {
        p.private_key = true;
        let show = |k: Option<PublicKey>| k.map_or("none".to_string(), |k| k.to_string());
        r.interface.push(format!(
            "private key changed (public key {} -> {})",
            show(oi.public_key()),
            show(ni.public_key())
        ));
    }
    if oi.listen_port != ni.listen_port {
        p.listen_port = Some(ni.listen_port);
        let show = |x: Option<u16>| x.map_or("any".to_string(), |p| p.to_string());
        r.interface.push(format!(
            "listen_port {} -> {}",
            show(oi.listen_port),
            show(ni.listen_port)
        ));
    }
    if oi.mtu != ni.mtu {
        p.mtu = Some(ni.mtu);
        r.interface.push(format!("mtu {} -> {}", oi.mtu, ni.mtu));
    }
    if oi.addresses != ni.addresses {
        p.addresses = Some(ni.addresses.clone());
        let show = |a: &[IpPrefix]| {
            a.iter()
                .map(|x| x.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        r.interface.push(format!(
            "addresses [{}] -> [{}]",
            show(&oi.addresses),
            show(&ni.addresses)
        ));
    }
    if oi.rekey_after_bytes != ni.rekey_after_bytes {
        p.rekey_after_bytes = Some(ni.rekey_after_bytes);
        r.interface.push(format!(
            "rekey_after_bytes {} -> {}",
            oi.rekey_after_bytes, ni.rekey_after_bytes
        ));
    }
    if oi.fwmark != ni.fwmark {
        p.fwmark = Some(ni.fwmark);
        let show = |m: Option<u32>| m.map_or("off".to_string(), |m| m.to_string());
        r.interface
            .push(format!("fwmark {} -> {}", show(oi.fwmark), show(ni.fwmark)));
    }
    if old.control != new.control {
        p.control = true;
        r.interface.push(format!(
            "control socket -> {}",
            new.control.socket.display()
        ));
    }
    if old.nat.hubs != new.nat.hubs {
        p.nat = true;
        let list: Vec<String> = new.nat.hubs.iter().map(|h| h.address.to_string()).collect();
        r.interface.push(format!("hubs -> [{}]", list.join(", ")));
    }
    if old.nat.stun_servers != new.nat.stun_servers {
        p.nat = true;
        let list: Vec<String> = new.nat.stun_servers.iter().map(|e| e.to_string()).collect();
        r.interface
            .push(format!("stun_servers -> [{}]", list.join(", ")));
    }
    let olds: HashMap<PublicKey, &PeerConfig> =
        old.peers.iter().map(|x| (x.public_key, x)).collect();
    let news: HashSet<PublicKey> = new.peers.iter().map(|x| x.public_key).collect();
    for o in &old.peers {
        if !news.contains(&o.public_key) {
            p.removed.push(o.public_key);
            r.peers_removed.push(peer_label(o));
        }
    }
    for n in &new.peers {
        match olds.get(&n.public_key) {
            None => {
                p.added.push(n.clone());
                r.peers_added.push(peer_label(n));
            }
            Some(o) => {
                let c = peer_changes(o, n);
                if !c.is_empty() {
                    p.changed.push(n.clone());
                    r.peers_changed
                        .push(format!("{}: {}", peer_label(n), c.join(", ")));
                }
            }
        }
    }
    (p, r)
}

/// Checks a configuration built at runtime (by an RPC or UAPI edit) for the same
/// cross-field rules the file loader enforces. Returns every problem.
pub fn check(old: &Config, new: &Config) -> Result<(), Vec<String>> {
    let mut problems = Vec::new();
    if old.interface.name != new.interface.name {
        problems.push("interface.name: the interface cannot be renamed at runtime".to_string());
    }
    let ni = &new.interface;
    if let Some(kind) = mtu_problem(ni.mtu.into(), ni.addresses.iter().any(|a| a.is_ipv6())) {
        problems.push(format!("interface.mtu: {kind}"));
    }
    let own = ni.public_key();
    let mut keys = HashSet::new();
    let mut names = HashSet::new();
    let mut claims: HashMap<IpPrefix, usize> = HashMap::new();
    for (i, p) in new.peers.iter().enumerate() {
        if Some(p.public_key) == own {
            problems.push(format!(
                "peers[{i}].public_key: {} is this interface's own public key",
                p.public_key
            ));
        }
        if !keys.insert(p.public_key) {
            problems.push(format!(
                "peers[{i}].public_key: {} is listed more than once",
                p.public_key
            ));
        }
        if let Some(n) = &p.name {
            if !names.insert(n.clone()) {
                problems.push(format!("peers[{i}].name: `{n}` is used by another peer"));
            }
        }
        for a in &p.allowed_ips {
            let m = a.masked();
            match claims.get(&m) {
                Some(&j) if j != i => {
                    problems.push(allowed_ip_taken(old, &new.peers[j], p, m));
                }
                Some(_) => {}
                None => {
                    claims.insert(m, i);
                }
            }
        }
        if p.persistent_keepalive == Some(0) {
            problems.push(format!(
                "peers[{i}].persistent_keepalive: 0 means off; omit it"
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

/// How a peer is named in a runtime refusal: the way the API selects it, by name if it has
/// one, else by public key (its index in the file means nothing to an API client).
fn api_label(p: &PeerConfig) -> String {
    match &p.name {
        Some(n) => n.clone(),
        None => p.public_key.to_string(),
    }
}

/// The refusal for prefix `m` claimed by both `first` and `second` (later in the list). It is
/// said of the peer the change touched (new, or its allowed IPs edited) and names the other,
/// so `peer update alice --allowed-ips ...` is told which peer already has the prefix.
fn allowed_ip_taken(old: &Config, first: &PeerConfig, second: &PeerConfig, m: IpPrefix) -> String {
    let touched = |p: &PeerConfig| {
        old.peers
            .iter()
            .find(|o| o.public_key == p.public_key)
            .is_none_or(|o| o.allowed_ips != p.allowed_ips)
    };
    let (subject, holder) = if touched(second) || !touched(first) {
        (second, first)
    } else {
        (first, second)
    };
    format!(
        "peer {}: allowed_ips: {m} is already an allowed IP of peer {}; remove it there first",
        api_label(subject),
        api_label(holder)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{parse_str, Format};
    use std::path::Path;

    const A: &str = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=";
    const P1: &str = "nQUbM6ysc6dHLbxqERla3GEiAanPjqJ2RgkUM7e5Cg0=";
    const P2: &str = "VoJ5hDvU6/DH3ydQGRzYSBAYCtJE3Y4GDRZefNObfzM=";
    const P3: &str = "q24ec1uRMUknujOCcrErw0oUwFw8zqLAqguNideh/Rw=";

    fn cfg(extra_iface: &str, peers: &str) -> Config {
        let text = format!(
            "interface:\n  name: vpn0\n  private_key: {A}\n  addresses: [10.0.0.1/24]\n{extra_iface}peers:\n{peers}"
        );
        parse_str(&text, Format::Yaml, "t.yaml", Path::new("/")).unwrap()
    }

    fn peer(key: &str, ip: &str) -> String {
        format!("  - public_key: {key}\n    allowed_ips: [{ip}]\n")
    }

    #[test]
    fn identical_configs_plan_nothing() {
        let c = cfg("", &peer(P1, "10.0.0.2/32"));
        let (p, r) = plan(&c, &c);
        assert!(p.is_empty());
        assert!(r.is_empty());
    }

    #[test]
    fn peers_added_removed_changed() {
        let old = cfg("", &(peer(P1, "10.0.0.2/32") + &peer(P2, "10.0.0.3/32")));
        let new = cfg(
            "",
            &(peer(P1, "10.0.0.2/32") + &peer(P2, "10.0.0.4/32") + &peer(P3, "10.0.0.5/32")),
        );
        let (p, r) = plan(&old, &new);
        assert!(p.removed.is_empty());
        assert_eq!(p.added.len(), 1);
        assert_eq!(p.changed.len(), 1);
        assert_eq!(p.changed[0].public_key.to_string(), P2);
        assert!(r.peers_changed[0].ends_with("allowed_ips"));
        let (p, _) = plan(&new, &old);
        assert_eq!(p.removed.len(), 1);
    }

    #[test]
    fn interface_changes() {
        let old = cfg("", "");
        let new = cfg("  mtu: 1380\n  listen_port: 5000\n", "");
        let (p, r) = plan(&old, &new);
        assert_eq!(p.mtu, Some(1380));
        assert_eq!(p.listen_port, Some(Some(5000)));
        assert_eq!(r.interface.len(), 2);
    }

    #[test]
    fn runtime_checks() {
        let old = cfg("", &peer(P1, "10.0.0.2/32"));
        let mut new = old.clone();
        new.peers.push(new.peers[0].clone());
        let e = check(&old, &new).unwrap_err();
        assert!(e.iter().any(|m| m.contains("more than once")), "{e:?}");
        assert!(
            e.iter().any(|m| m.contains("already an allowed IP")),
            "{e:?}"
        );
        let mut own = old.clone();
        own.peers[0].public_key = own.interface.public_key().unwrap();
        assert!(check(&old, &own).unwrap_err()[0].contains("own public key"));
        assert!(check(&old, &old).is_ok());
    }

    /// Issue 9: a prefix another peer holds is refused naming that peer as the API knows it
    /// (by name, else by key), said of the peer the change touched.
    #[test]
    fn a_taken_allowed_ip_names_the_peer_holding_it() {
        let old = cfg(
            "",
            &(peer(P1, "10.0.0.2/32") + "    name: alice\n" + &peer(P2, "10.0.0.3/32")),
        );
        // peer add (new peer last) of alice's prefix.
        let mut add = old.clone();
        let mut carol = cfg("", &peer(P3, "10.0.0.2/32")).peers.remove(0);
        carol.name = Some("carol".into());
        add.peers.push(carol);
        assert_eq!(
            check(&old, &add).unwrap_err(),
            [
                "peer carol: allowed_ips: 10.0.0.2/32 is already an allowed IP of peer alice; \
              remove it there first"
            ]
        );
        // peer update of alice (first in the list) onto the unnamed peer's prefix.
        let mut update = old.clone();
        update.peers[0].allowed_ips = old.peers[1].allowed_ips.clone();
        assert_eq!(
            check(&old, &update).unwrap_err(),
            [format!(
                "peer alice: allowed_ips: 10.0.0.3/32 is already an allowed IP of peer {P2}; \
                 remove it there first"
            )]
        );
    }

    /// Issue 9: `interface set --mtu` is refused in the words of the file loader, with the
    /// reason for the bounds.
    #[test]
    fn mtu_refusals_read_like_the_file_loaders() {
        let file_says = |extra: &str| {
            let text = format!(
                "interface:\n  name: vpn0\n  private_key: {A}\n  addresses: [{extra}]\n  mtu: 1000\n"
            );
            let e = parse_str(&text, Format::Yaml, "t.yaml", Path::new("/")).unwrap_err();
            e.to_string().trim_start_matches("t.yaml: ").to_string()
        };
        let old = cfg("", "");
        let mut v6 = old.clone();
        v6.interface.addresses.push("fd00::1/64".parse().unwrap());
        v6.interface.mtu = 1000;
        let said = check(&old, &v6).unwrap_err();
        assert_eq!(said, [file_says("10.0.0.1/24, fd00::1/64")]);
        assert!(
            said[0].contains("1280 is IPv6's minimum link MTU"),
            "{said:?}"
        );
        let mut v4 = old.clone();
        v4.interface.mtu = 500;
        let said = check(&old, &v4).unwrap_err();
        assert!(
            said[0].contains("must be 576 to 65535 (576 is IPv4's minimum"),
            "{said:?}"
        );
    }
}
