//! Turning a parsed `set` into a complete new [`Config`], with wireguard-go's semantics.
//!
//! Pure: the result is then checked and applied by the root like any other change, so a `set`
//! is all-or-nothing.
//!
//! The semantics, where they are not obvious:
//! - an all-zero `private_key` removes the key (no handshakes until a new one is set); setting a
//!   key whose public key is a configured peer's removes that peer;
//! - `listen_port=0` is any free port, `fwmark=0` no mark, `persistent_keepalive_interval=0` off;
//! - a section for our own public key is ignored, as is an `update_only` section for a peer
//!   that does not exist, and everything after `remove=true` in a section;
//! - an `allowed_ip` that another peer holds moves to this peer (the allowed-IPs table maps
//!   each prefix to one peer); prefixes are stored masked and without duplicates.

use super::parse::{PeerSection, SetRequest};
use crate::config::{Config, Endpoint, PeerConfig};

/// The configuration `current` becomes after `req`.
pub fn apply_set(current: &Config, req: &SetRequest) -> Config {
    let mut cfg = current.clone();
    let i = &mut cfg.interface;
    if let Some(key) = &req.private_key {
        i.private_key = key.clone();
        i.private_key_file = None;
        if let Some(own) = i.public_key() {
            cfg.peers.retain(|p| p.public_key != own);
        }
    }
    let i = &mut cfg.interface;
    if let Some(port) = req.listen_port {
        i.listen_port = (port != 0).then_some(port);
    }
    if let Some(mark) = req.fwmark {
        i.fwmark = (mark != 0).then_some(mark);
    }
    if req.replace_peers {
        cfg.peers.clear();
    }
    for section in &req.peers {
        apply_peer(&mut cfg, section);
    }
    cfg
}

fn apply_peer(cfg: &mut Config, s: &PeerSection) {
    if cfg.interface.public_key() == Some(s.public_key) {
        return;
    }
    let existing = cfg.peers.iter().position(|p| p.public_key == s.public_key);
    if s.remove {
        if let Some(i) = existing {
            cfg.peers.remove(i);
        }
        return;
    }
    let index = match existing {
        Some(i) => i,
        None if s.update_only => return,
        None => {
            cfg.peers.push(PeerConfig {
                name: None,
                public_key: s.public_key,
                preshared_key: None,
                preshared_key_file: None,
                allowed_ips: Vec::new(),
                endpoint: None,
                persistent_keepalive: None,
            });
            cfg.peers.len() - 1
        }
    };
    let p = &mut cfg.peers[index];
    if let Some(psk) = &s.preshared_key {
        p.preshared_key = psk.clone();
        p.preshared_key_file = None;
    }
    if let Some(e) = s.endpoint {
        p.endpoint = Some(Endpoint::Addr(e));
    }
    if let Some(k) = s.persistent_keepalive {
        p.persistent_keepalive = (k != 0).then_some(k);
    }
    if s.replace_allowed_ips {
        p.allowed_ips.clear();
    }
    for a in &s.allowed_ips {
        let m = a.masked();
        for (j, other) in cfg.peers.iter_mut().enumerate() {
            if j != index {
                other.allowed_ips.retain(|x| x.masked() != m);
            }
        }
        let p = &mut cfg.peers[index];
        if !p.allowed_ips.iter().any(|x| x.masked() == m) {
            p.allowed_ips.push(m);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{parse_str, Format};
    use crate::uapi::parse::parse_set;
    use protocol::keys::{hex, PresharedKey, PrivateKey, PublicKey};
    use std::path::Path;

    const A: &str = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=";

    fn key(b: u8) -> PublicKey {
        PublicKey([b; 32])
    }

    fn cfg(peers: &str) -> Config {
        let peers = if peers.is_empty() {
            "peers: []\n".to_string()
        } else {
            format!("peers:\n{peers}")
        };
        let text =
            format!("interface:\n  name: wg0\n  private_key: {A}\n  listen_port: 51820\n{peers}");
        parse_str(&text, Format::Yaml, "t.yaml", Path::new("/")).unwrap()
    }

    fn peer(b: u8, ips: &str) -> String {
        format!(
            "  - public_key: {}\n    allowed_ips: [{ips}]\n",
            key(b).to_base64()
        )
    }

    fn set(c: &Config, body: &str) -> Config {
        let r = parse_set(body.lines()).unwrap();
        let new = apply_set(c, &r);
        crate::reconfig::check(c, &new).unwrap();
        new
    }

    fn ips(c: &Config, b: u8) -> Vec<String> {
        c.peers
            .iter()
            .find(|p| p.public_key == key(b))
            .unwrap()
            .allowed_ips
            .iter()
            .map(|a| a.to_string())
            .collect()
    }

    #[test]
    fn interface_keys() {
        let c = cfg("");
        let n = set(&c, "listen_port=0\nfwmark=7\n");
        assert_eq!(n.interface.listen_port, None);
        assert_eq!(n.interface.fwmark, Some(7));
        let n = set(&n, "listen_port=1000\nfwmark=0\n");
        assert_eq!(n.interface.listen_port, Some(1000));
        assert_eq!(n.interface.fwmark, None);
        let n = set(&n, &format!("private_key={}\n", hex(&[0; 32])));
        assert_eq!(n.interface.private_key, None);
        assert_eq!(n.interface.public_key(), None);
        let n = set(&n, &format!("private_key={}\n", hex(&[5; 32])));
        assert_eq!(
            n.interface.private_key,
            Some(PrivateKey::from_bytes([5; 32]))
        );
    }

    #[test]
    fn add_update_and_remove_peers() {
        let c = cfg("");
        let n = set(
            &c,
            &format!(
                "public_key={}\npreshared_key={}\nendpoint=10.0.0.9:5\n\
                 persistent_keepalive_interval=25\nallowed_ip=10.1.0.7/16\nallowed_ip=10.1.0.0/16\n",
                key(1).to_hex(),
                hex(&[2; 32])
            ),
        );
        let p = &n.peers[0];
        assert_eq!(p.preshared_key, Some(PresharedKey([2; 32])));
        assert_eq!(
            p.endpoint,
            Some(Endpoint::Addr("10.0.0.9:5".parse().unwrap()))
        );
        assert_eq!(p.persistent_keepalive, Some(25));
        // Masked and without duplicates.
        assert_eq!(ips(&n, 1), ["10.1.0.0/16"]);

        // A second set without replace_allowed_ips adds; zero keys and intervals clear.
        let n = set(
            &n,
            &format!(
                "public_key={}\npreshared_key={}\npersistent_keepalive_interval=0\nallowed_ip=fd00::/64\n",
                key(1).to_hex(),
                hex(&[0; 32])
            ),
        );
        let p = &n.peers[0];
        assert_eq!(p.preshared_key, None);
        assert_eq!(p.persistent_keepalive, None);
        assert_eq!(ips(&n, 1), ["10.1.0.0/16", "fd00::/64"]);

        let n = set(
            &n,
            &format!(
                "public_key={}\nreplace_allowed_ips=true\nallowed_ip=10.2.0.0/16\n",
                key(1).to_hex()
            ),
        );
        assert_eq!(ips(&n, 1), ["10.2.0.0/16"]);
        let n = set(
            &n,
            &format!("public_key={}\nreplace_allowed_ips=true\n", key(1).to_hex()),
        );
        assert!(ips(&n, 1).is_empty());

        let n = set(
            &n,
            &format!("public_key={}\nremove=true\n", key(1).to_hex()),
        );
        assert!(n.peers.is_empty());
        // Removing a peer that does not exist is not an error.
        let n = set(
            &n,
            &format!("public_key={}\nremove=true\n", key(9).to_hex()),
        );
        assert!(n.peers.is_empty());
    }

    #[test]
    fn update_only_ignores_unknown_peers() {
        let c = cfg(&peer(1, "10.0.0.1/32"));
        let body = format!(
            "public_key={}\nupdate_only=true\nallowed_ip=10.0.0.2/32\n\
             public_key={}\nupdate_only=true\nallowed_ip=10.0.0.3/32\n",
            key(1).to_hex(),
            key(2).to_hex()
        );
        let n = set(&c, &body);
        assert_eq!(n.peers.len(), 1);
        assert_eq!(ips(&n, 1), ["10.0.0.1/32", "10.0.0.2/32"]);
    }

    #[test]
    fn replace_peers_then_sections() {
        let c = cfg(&(peer(1, "10.0.0.1/32") + &peer(2, "10.0.0.2/32")));
        let n = set(
            &c,
            &format!(
                "replace_peers=true\npublic_key={}\nallowed_ip=10.0.0.9/32\n",
                key(2).to_hex()
            ),
        );
        assert_eq!(n.peers.len(), 1);
        // Peer 2 was removed and added afresh: its old allowed IP is gone.
        assert_eq!(ips(&n, 2), ["10.0.0.9/32"]);
        let n = set(&n, "replace_peers=true\n");
        assert!(n.peers.is_empty());
    }

    #[test]
    fn an_allowed_ip_moves_between_peers() {
        let c = cfg(&(peer(1, "10.0.0.0/24, 10.0.1.0/24") + &peer(2, "10.0.2.0/24")));
        let n = set(
            &c,
            &format!("public_key={}\nallowed_ip=10.0.0.0/24\n", key(2).to_hex()),
        );
        assert_eq!(ips(&n, 1), ["10.0.1.0/24"]);
        assert_eq!(ips(&n, 2), ["10.0.2.0/24", "10.0.0.0/24"]);
    }

    #[test]
    fn our_own_key_is_never_a_peer() {
        let c = cfg("");
        let own = c.interface.public_key().unwrap();
        let n = set(
            &c,
            &format!("public_key={}\nallowed_ip=10.0.0.1/32\n", own.to_hex()),
        );
        assert!(n.peers.is_empty());
        // Taking a peer's key as ours removes that peer.
        let c = cfg(&peer(1, "10.0.0.1/32"));
        let theirs = PrivateKey::from_bytes([3; 32]);
        let mut c2 = c.clone();
        c2.peers[0].public_key = theirs.public_key();
        let n = set(&c2, &format!("private_key={}\n", hex(theirs.as_bytes())));
        assert!(n.peers.is_empty());
    }

    #[test]
    fn nothing_changes_without_keys() {
        let c = cfg(&peer(1, "10.0.0.1/32"));
        assert_eq!(set(&c, ""), c);
        assert_eq!(set(&c, &format!("public_key={}\n", key(1).to_hex())), c);
    }

    mod fuzz {
        use super::*;
        use proptest::prelude::*;

        fn pick(v: &[&str]) -> impl Strategy<Value = String> {
            prop::sample::select(v.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        }

        /// A well-formed `set` body: interface lines, then peer sections, drawn from values
        /// that collide often (a few keys and prefixes).
        fn body() -> impl Strategy<Value = Vec<String>> {
            let keys: Vec<String> = (0..4u8).map(|b| hex(&[b; 32])).collect();
            let k: Vec<&str> = keys.iter().map(String::as_str).collect();
            let interface = prop::collection::vec(
                prop_oneof![
                    pick(&k).prop_map(|v| format!("private_key={v}")),
                    pick(&["0", "51820", "1000"]).prop_map(|v| format!("listen_port={v}")),
                    pick(&["0", "7"]).prop_map(|v| format!("fwmark={v}")),
                    Just("replace_peers=true".to_string()),
                ],
                0..4,
            );
            let peer_line = prop_oneof![
                Just("remove=true".to_string()),
                Just("update_only=true".to_string()),
                Just("replace_allowed_ips=true".to_string()),
                Just("protocol_version=1".to_string()),
                pick(&[k[0], k[2]]).prop_map(|v| format!("preshared_key={v}")),
                pick(&["10.0.0.1:1", "[fd00::1]:2"]).prop_map(|v| format!("endpoint={v}")),
                pick(&["0", "25"]).prop_map(|v| format!("persistent_keepalive_interval={v}")),
                pick(&["10.0.0.0/8", "10.1.2.3/16", "fd00::/64", "0.0.0.0/0"])
                    .prop_map(|v| format!("allowed_ip={v}")),
            ];
            let section =
                (pick(&k), prop::collection::vec(peer_line, 0..6)).prop_map(|(pk, lines)| {
                    std::iter::once(format!("public_key={pk}"))
                        .chain(lines)
                        .collect::<Vec<_>>()
                });
            (interface, prop::collection::vec(section, 0..5)).prop_map(|(mut i, sections)| {
                i.extend(sections.into_iter().flatten());
                i
            })
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

            #[test]
            fn arbitrary_text_never_panics(text in "\\PC{0,300}") {
                let _ = parse_set(text.split('\n'));
            }

            #[test]
            fn every_set_gives_a_configuration_the_runtime_checks_accept(lines in body()) {
                let c = cfg(&(peer(1, "10.0.0.0/8") + &peer(2, "fd00::/64")));
                let r = parse_set(lines.iter().map(String::as_str));
                prop_assert!(r.is_ok(), "{:?}: {:?}", lines, r);
                let r = r.unwrap();
                let n = apply_set(&c, &r);
                prop_assert!(crate::reconfig::check(&c, &n).is_ok(), "{:?}", lines);
                // Our own key is never a peer, and no prefix belongs to two peers.
                let own = n.interface.public_key();
                prop_assert!(n.peers.iter().all(|p| Some(p.public_key) != own));
                let mut seen = std::collections::HashSet::new();
                for p in &n.peers {
                    for a in &p.allowed_ips {
                        prop_assert!(seen.insert(a.masked()), "{} twice: {:?}", a, lines);
                    }
                }
            }
        }
    }
}
