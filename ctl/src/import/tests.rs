//! Conversions of realistic wg-quick files, and every refusal naming its line and key.

use super::{convert, parse, Problem, ProblemKind};

const PRIV_A: &str = "4CZo1zIqhgKGFUE05psam3ANLM+cBP/nxBBRo8UjBUA=";
const PUB_A: &str = "8csCPiXMgdMmEJibB3VtoyLkmTR5MqbO2mDzqPTB8wI=";
const PUB_B: &str = "AndoXOCCpd97b2CNrkr/XLW2DP/gbgvm76HpiRdWNhQ=";
const PUB_C: &str = "8UXwmIcpZLGSMzlDiqyYKGeFenEgybj6BjeDJvshF2E=";
const PSK: &str = "FPK8WFCfAk000Pi9JWUm5ABiwyKg+NdOXzMLpDyl1bI=";

/// The rendered problems of a file that must not convert.
fn problems(text: &str) -> Vec<String> {
    match convert(text, "wg0", "wg0.conf") {
        Ok(c) => panic!("converted:\n{}", *c.yaml),
        Err(p) => p.iter().map(|p| p.render("wg0.conf")).collect(),
    }
}

fn kinds(text: &str) -> Vec<ProblemKind> {
    parse(text)
        .expect_err("must not convert")
        .into_iter()
        .map(|p: Problem| p.kind)
        .collect()
}

#[test]
fn converts_a_client_with_one_peer() {
    let text = format!(
        "[Interface]\n\
         # laptop\n\
         PrivateKey = {PRIV_A}\n\
         Address = 10.8.0.2/24\n\
         ListenPort = 51820\n\
         \n\
         [Peer]\n\
         PublicKey = {PUB_B}\n\
         PresharedKey = {PSK}\n\
         AllowedIPs = 10.8.0.0/24\n\
         Endpoint = vpn.example.com:51820\n\
         PersistentKeepalive = 25\n"
    );
    let c = convert(&text, "wg0", "wg0.conf").unwrap();
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    assert_eq!(
        *c.yaml,
        format!(
            "# vpnd configuration converted from wg0.conf by `vpnctl import`\n\
             interface:\n  \
               name: \"wg0\"\n  \
               private_key: \"{PRIV_A}\"\n  \
               listen_port: 51820\n  \
               addresses: [\"10.8.0.2/24\"]\n\
             peers:\n  \
               - public_key: \"{PUB_B}\"\n    \
                 preshared_key: \"{PSK}\"\n    \
                 allowed_ips: [\"10.8.0.0/24\"]\n    \
                 endpoint: \"vpn.example.com:51820\"\n    \
                 persistent_keepalive: 25\n"
        )
    );
}

#[test]
fn converts_a_road_warrior_server_with_several_peers() {
    let text = format!(
        "[Interface]\n\
         Address = 10.8.0.1/24, fd08::1/64\n\
         ListenPort = 51820\n\
         PrivateKey = {PRIV_A}\n\
         MTU = 1420\n\
         FwMark = 0xca6c\n\
         \n\
         # alice\n\
         [Peer]\n\
         PublicKey = {PUB_B}\n\
         AllowedIPs = 10.8.0.2/32\n\
         AllowedIPs = fd08::2/128\n\
         \n\
         # bob\n\
         [Peer]\n\
         PublicKey = {PUB_C}\n\
         AllowedIPs = 10.8.0.3/32, fd08::3/128, 192.168.50.0/24\n\
         PersistentKeepalive = off\n"
    );
    let (config, warnings) = parse(&text).unwrap();
    assert!(warnings.is_empty());
    let i = &config.interface;
    assert_eq!(i.addresses, ["10.8.0.1/24", "fd08::1/64"]);
    assert_eq!(
        (i.listen_port, i.mtu, i.fwmark),
        (Some(51820), Some(1420), Some(0xca6c))
    );
    assert_eq!(config.peers.len(), 2);
    assert_eq!(config.peers[0].public_key, PUB_B);
    assert_eq!(config.peers[0].allowed_ips, ["10.8.0.2/32", "fd08::2/128"]);
    assert_eq!(config.peers[1].public_key, PUB_C);
    assert_eq!(
        config.peers[1].allowed_ips,
        ["10.8.0.3/32", "fd08::3/128", "192.168.50.0/24"]
    );
    assert_eq!(config.peers[1].persistent_keepalive, None);
    assert!(config.peers.iter().all(|p| p.endpoint.is_none()));
    let yaml = convert(&text, "wg0", "wg0.conf").unwrap().yaml;
    assert!(yaml.contains("  fwmark: 51820\n"), "{}", *yaml);
    assert!(yaml.contains("  mtu: 1420\n"));
    assert_eq!(yaml.matches("  - public_key: ").count(), 2);
}

#[test]
fn reads_keys_as_wg_does() {
    // Any case, `#` comments after values, CRLF line ends, a BOM, spaces around `=`,
    // keys with a trailing `=` that is part of the base64.
    let text = format!(
        "\u{feff}[interface]\r\n\
         privatekey={PRIV_A} # ours\r\n\
         ADDRESS = 10.8.0.2/32\r\n\
         \t  # just a comment\r\n\
         [PEER]\r\n\
         publicKey ={PUB_B}\r\n\
         allowedips = \r\n\
         endpoint = [2001:db8::1]:51820\r\n"
    );
    let (config, _) = parse(&text).unwrap();
    assert_eq!(*config.interface.private_key, PRIV_A);
    assert_eq!(config.interface.addresses, ["10.8.0.2/32"]);
    assert_eq!(config.peers[0].public_key, PUB_B);
    assert!(config.peers[0].allowed_ips.is_empty());
    assert_eq!(
        config.peers[0].endpoint.as_deref(),
        Some("[2001:db8::1]:51820")
    );
    let yaml = convert(&text, "wg0", "wg0.conf").unwrap().yaml;
    assert!(yaml.contains("endpoint: \"[2001:db8::1]:51820\"\n"));
}

#[test]
fn dns_and_table_auto_are_dropped_with_a_warning() {
    let text = format!(
        "[Interface]\nPrivateKey = {PRIV_A}\nDNS = 1.1.1.1, example.com\nTable = auto\n\
         [Peer]\nPublicKey = {PUB_B}\nAllowedIPs = 0.0.0.0/0, ::/0\n"
    );
    let c = convert(&text, "wg0", "wg0.conf").unwrap();
    let w: Vec<String> = c.warnings.iter().map(|w| w.render("wg0.conf")).collect();
    assert_eq!(w.len(), 3, "{w:?}");
    assert!(w[0].starts_with("wg0.conf:3: DNS: ignored"), "{}", w[0]);
    assert!(w[1].starts_with("wg0.conf:4: Table: ignored"), "{}", w[1]);
    assert!(
        w[2].starts_with("wg0.conf:7: AllowedIPs: 0.0.0.0/0, ::/0: routes all traffic"),
        "{}",
        w[2]
    );
    assert!(!c.yaml.contains("1.1.1.1"));
}

#[test]
fn hooks_table_and_save_config_are_refused_with_line_and_key() {
    let text = format!(
        "[Interface]\nPrivateKey = {PRIV_A}\n\
         PostUp = iptables -A FORWARD -i %i -j ACCEPT\n\
         PreDown = true\npreup = true\nPostDown = iptables -D FORWARD -i %i -j ACCEPT\n\
         Table = off\nSaveConfig = true\n"
    );
    let p = problems(&text);
    assert_eq!(p.len(), 6, "{p:#?}");
    for (got, (line, key)) in p.iter().zip([
        (3, "PostUp"),
        (4, "PreDown"),
        (5, "preup"),
        (6, "PostDown"),
        (7, "Table"),
        (8, "SaveConfig"),
    ]) {
        let prefix = format!("wg0.conf:{line}: {key}: not supported by vpnd: ");
        assert!(got.starts_with(&prefix), "{got}");
    }
    assert!(p[0].contains("ExecStartPost="), "says what to do instead");
    assert!(p[4].contains("main routing table"));
    assert!(p[5].contains("--save"));
}

#[test]
fn structure_errors_name_the_line() {
    let p = problems(&format!(
        "PrivateKey = {PRIV_A}\n[Interface]\nPrivateKey = {PRIV_A}\nnonsense\n\
         Frobnicate = 1\n[Peer]\nPublicKey = {PUB_B}\nAddress = 10.0.0.1/32\n\
         [Wat]\nwhatever = 1\n[Interface]\n"
    ));
    assert_eq!(
        p,
        [
            "wg0.conf:1: PrivateKey: comes before any section; the file must start with \
             [Interface]",
            "wg0.conf:4: expected `Key = value`, a [Section] or a # comment",
            "wg0.conf:5: Frobnicate: unknown key in [Interface] (expected one of PrivateKey, \
             ListenPort, FwMark, Address, MTU, DNS, Table, PreUp, PostUp, PreDown, PostDown, \
             SaveConfig)",
            "wg0.conf:8: Address: unknown key in [Peer] (expected one of PublicKey, \
             PresharedKey, AllowedIPs, Endpoint, PersistentKeepalive)",
            "wg0.conf:9: [Wat]: unknown section; expected [Interface] or [Peer]",
            "wg0.conf:11: [Interface]: a second [Interface] section (the first is on line 2); \
             merge them",
        ]
    );
    assert_eq!(kinds(""), [ProblemKind::NoInterface]);
    assert_eq!(
        problems("# only comments\n"),
        ["wg0.conf: no [Interface] section: this does not look like a wg-quick or wg file"]
    );
}

#[test]
fn bad_values_are_errors_naming_line_key_and_problem() {
    let text = format!(
        "[Interface]\n\
         PrivateKey = notakey\n\
         ListenPort = 65536\n\
         Address = 10.0.0.1/33, fd00::1/64, nope\n\
         MTU = 500\n\
         FwMark = 0xzz\n\
         [Peer]\n\
         PublicKey = {PUB_B}=\n\
         PresharedKey =\n\
         AllowedIPs = 10.0.0.0/8, 300.0.0.0/8\n\
         Endpoint = fd00::1:51820\n\
         PersistentKeepalive = -1\n\
         [Peer]\n\
         PublicKey = {PUB_C}\n\
         Endpoint = vpn.example.com:0\n"
    );
    let p = problems(&text);
    let expect = [
        "wg0.conf:2: PrivateKey: invalid key: not valid base64",
        "wg0.conf:3: ListenPort: `65536` is not a port number from 0 to 65535",
        "wg0.conf:4: Address: `10.0.0.1/33`: prefix length /33 is too large",
        "wg0.conf:4: Address: `nope`: invalid IP address",
        "wg0.conf:5: MTU: `500` is not an MTU from 576 to 65535",
        "wg0.conf:6: FwMark: `0xzz` is not a mark",
        "wg0.conf:8: PublicKey: invalid key",
        "wg0.conf:9: PresharedKey: empty value",
        "wg0.conf:10: AllowedIPs: `300.0.0.0/8`: invalid IP address",
        "wg0.conf:11: Endpoint: `fd00::1:51820`: IPv6 addresses must be in brackets",
        "wg0.conf:12: PersistentKeepalive: `-1` is not a number of seconds",
        "wg0.conf:15: Endpoint: `vpn.example.com:0`: the port is not a number from 1 to 65535",
    ];
    assert_eq!(p.len(), expect.len(), "{p:#?}");
    for (got, want) in p.iter().zip(expect) {
        assert!(
            got.starts_with(want),
            "{got}\n  does not start with\n{want}"
        );
    }
}

#[test]
fn whole_file_rules_are_checked() {
    // IPv6 needs an MTU of 1280; a key given twice; a peer with our own key; two peers with
    // one key; a prefix under two peers (host bits aside); missing keys.
    let text = format!(
        "[Interface]\nPrivateKey = {PRIV_A}\nAddress = fd00::1/64\nMTU = 1000\nListenPort = 1\n\
         ListenPort = 2\n\
         [Peer]\nPublicKey = {PUB_A}\n\
         [Peer]\nPublicKey = {PUB_B}\nAllowedIPs = 10.0.0.0/24\n\
         [Peer]\nPublicKey = {PUB_B}\n\
         [Peer]\nPublicKey = {PUB_C}\nAllowedIPs = 10.0.0.7/24\n\
         [Peer]\nAllowedIPs = 10.9.0.0/24\n"
    );
    assert_eq!(
        problems(&text),
        [
            "wg0.conf:4: MTU: 1000 is too small: IPv6 is configured (Address), which needs at \
             least 1280",
            "wg0.conf:6: ListenPort: given twice (first on line 5); keep one",
            "wg0.conf:8: PublicKey: this is the [Interface]'s own public key; a host cannot be \
             its own peer",
            "wg0.conf:13: PublicKey: the same public key as the [Peer] on line 9; merge the two \
             sections",
            "wg0.conf:16: AllowedIPs: 10.0.0.0/24 is also allowed for the [Peer] on line 9; wg \
             gives it to the last peer, vpnd refuses the file: keep it on one peer",
            "wg0.conf:17: [Peer]: missing PublicKey",
        ]
    );
    assert_eq!(
        problems("[Interface]\nListenPort = 1\n"),
        ["wg0.conf:1: [Interface]: missing PrivateKey"]
    );
}

#[test]
fn off_zero_and_false_mean_unset() {
    let text = format!(
        "[Interface]\nPrivateKey = {PRIV_A}\nListenPort = 0\nFwMark = off\n\
         [Peer]\nPublicKey = {PUB_B}\nPersistentKeepalive = 0\n"
    );
    let (config, _) = parse(&text).unwrap();
    assert_eq!(config.interface.listen_port, None);
    assert_eq!(config.interface.fwmark, None);
    assert_eq!(config.peers[0].persistent_keepalive, None);
    let yaml = convert(&text, "wg0", "wg0.conf").unwrap().yaml;
    for absent in ["listen_port", "fwmark", "persistent_keepalive", "mtu"] {
        assert!(!yaml.contains(absent), "{absent} in\n{}", *yaml);
    }
    assert!(yaml.contains("  addresses: []\n"));
    let save_false = format!("[Interface]\nPrivateKey = {PRIV_A}\nSaveConfig = false\n");
    assert!(convert(&save_false, "wg0", "wg0.conf").is_ok());
}

#[test]
fn a_file_with_no_peers_converts() {
    let yaml = convert(&format!("[Interface]\nPrivateKey={PRIV_A}\n"), "wg9", "x")
        .unwrap()
        .yaml;
    assert!(yaml.contains("  name: \"wg9\"\n") && yaml.ends_with("peers: []\n"));
}
