//! The configuration files that ship (packaging/examples) and the fixtures load as documented.

use protocol::keys::PrivateKey;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use vpnd::config::{self, Cidr, Endpoint, Format};

fn repo_file(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel)
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/config")
        .join(name)
}

fn write_secret(path: &Path, text: &str) {
    fs::write(path, text).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o600)).unwrap();
}

fn cidr(s: &str) -> Cidr {
    s.parse().unwrap()
}

#[test]
fn fixtures_in_yaml_and_toml_agree() {
    let yaml = config::load(&fixture("valid.yaml")).unwrap();
    let mut toml = config::load(&fixture("valid.toml")).unwrap();
    assert_eq!(
        toml.source_path.as_deref(),
        Some(fixture("valid.toml").as_path())
    );
    toml.source_path = yaml.source_path.clone();
    toml.warnings = yaml.warnings.clone();
    assert_eq!(yaml, toml);

    assert_eq!(yaml.interface.name, "vpn7");
    assert_eq!(yaml.interface.listen_port, None);
    assert_eq!(yaml.control.socket, Path::new("/run/vpnd/vpn7.sock"));
    assert_eq!(yaml.peers[0].allowed_ips, [cidr("0.0.0.0/0"), cidr("::/0")]);
    assert_eq!(
        yaml.peers[0].endpoint,
        Some(Endpoint::Addr("[2001:db8::10]:443".parse().unwrap()))
    );
}

#[test]
fn broken_fixture_lists_every_problem() {
    let path = fixture("broken.yaml");
    let err = config::load(&path).unwrap_err().to_string();
    let prefix = format!("{}: ", path.display());
    let got: Vec<String> = err
        .lines()
        .map(|l| format!("broken.yaml: {}", l.strip_prefix(&prefix).unwrap_or(l)))
        .collect();
    let expected = fs::read_to_string(fixture("broken.errors")).unwrap();
    let expected: Vec<&str> = expected.lines().collect();
    assert_eq!(got, expected, "\n{}", got.join("\n"));
}

/// A directory standing in for /etc/vpnd, with the key files the examples name.
fn etc_vpnd(key: &PrivateKey) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write_secret(&dir.path().join("vpn0.key"), &key.to_base64());
    write_secret(
        &dir.path().join("vpn0-office.psk"),
        "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\n",
    );
    dir
}

#[test]
fn shipped_example_loads() {
    let text = fs::read_to_string(repo_file("packaging/examples/vpn0.yaml")).unwrap();
    let key = PrivateKey::from_bytes([9; 32]);
    let dir = etc_vpnd(&key);
    let text = text.replace("/etc/vpnd/", &format!("{}/", dir.path().display()));
    let path = dir.path().join("vpn0.yaml");
    fs::write(&path, text).unwrap();

    let c = config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.warnings, Vec::<String>::new());
    assert_eq!(c.interface.name, "vpn0");
    assert_eq!(c.interface.private_key, Some(key));
    assert_eq!(c.interface.listen_port, Some(51820));
    assert_eq!(
        c.interface.addresses,
        [cidr("10.10.0.1/24"), cidr("fd10::1/64")]
    );
    assert_eq!(c.interface.mtu, 1420);
    assert_eq!(
        c.control.group, None,
        "the example leaves control.group commented out"
    );
    assert_eq!(c.peers.len(), 2);
    assert_eq!(c.peers[1].name.as_deref(), Some("office"));
    assert!(c.peers[1].preshared_key.is_some());
    assert_eq!(
        c.peers[1].endpoint,
        Some(Endpoint::Host {
            host: "office.example.net".into(),
            port: 51820
        })
    );
    assert_eq!(c.peers[1].persistent_keepalive, Some(25));
}

/// Does what the demo script will: writes each side's key, fills in the other's public key.
#[test]
fn demo_configs_pair_up() {
    let dir = tempfile::tempdir().unwrap();
    let keys = [
        PrivateKey::from_bytes([1; 32]),
        PrivateKey::from_bytes([2; 32]),
    ];
    let mut loaded = Vec::new();
    for (side, other) in [("a", 1), ("b", 0)] {
        let text = fs::read_to_string(repo_file(&format!("packaging/examples/demo-{side}.yaml")))
            .unwrap()
            .replace("@PEER_PUBLIC_KEY@", &keys[other].public_key().to_base64());
        let me = 1 - other;
        write_secret(
            &dir.path().join(format!("{side}.key")),
            &keys[me].to_base64(),
        );
        let path = dir.path().join(format!("demo-{side}.yaml"));
        fs::write(&path, text).unwrap();
        loaded.push(config::load(&path).unwrap_or_else(|e| panic!("{e}")));
    }
    let (a, b) = (&loaded[0], &loaded[1]);
    for (me, them, socket, endpoint) in [
        (a, b, "/run/vpnd/demo-a.sock", "10.99.0.2:51820"),
        (b, a, "/run/vpnd/demo-b.sock", "10.99.0.1:51820"),
    ] {
        assert_eq!(me.interface.name, "vpn0");
        assert_eq!(me.interface.listen_port, Some(51820));
        assert_eq!(me.control.socket, Path::new(socket));
        assert_eq!(me.peers.len(), 1);
        let peer = &me.peers[0];
        assert_eq!(peer.public_key, them.interface.public_key().unwrap());
        assert_eq!(peer.endpoint.as_ref().unwrap().to_string(), endpoint);
        // The peer's allowed IPs are exactly the other side's addresses, as host prefixes.
        let hosts: Vec<Cidr> = them
            .interface
            .addresses
            .iter()
            .map(|c| Cidr::new(c.addr(), if c.is_ipv6() { 128 } else { 32 }).unwrap())
            .collect();
        assert_eq!(peer.allowed_ips, hosts);
    }
}

#[test]
fn demo_config_without_substitution_is_refused() {
    let text = fs::read_to_string(repo_file("packaging/examples/demo-a.yaml")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    write_secret(
        &dir.path().join("a.key"),
        &PrivateKey::from_bytes([1; 32]).to_base64(),
    );
    let err = config::parse_str(&text, Format::Yaml, "demo-a.yaml", dir.path()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "demo-a.yaml: peers[0].public_key: not valid base64"
    );
}

/// Every complete configuration shown in docs/configuration.md is valid.
#[test]
fn documented_examples_load() {
    let doc = fs::read_to_string(repo_file("docs/configuration.md")).unwrap();
    let dir = etc_vpnd(&PrivateKey::from_bytes([9; 32]));
    let mut checked = 0;
    let mut lines = doc.lines();
    while let Some(line) = lines.next() {
        let format = match line.trim() {
            "```yaml" => Format::Yaml,
            "```toml" => Format::Toml,
            _ => continue,
        };
        let block: Vec<&str> = lines.by_ref().take_while(|l| l.trim() != "```").collect();
        let block = block
            .iter()
            .map(|l| {
                l.strip_prefix("  ")
                    .filter(|_| format == Format::Toml)
                    .unwrap_or(l)
            })
            .collect::<Vec<_>>()
            .join("\n");
        let whole = match format {
            Format::Yaml => block.starts_with("interface:"),
            Format::Toml => block.starts_with("[interface]"),
        };
        if !whole {
            continue;
        }
        // The examples name a group `vpn`, which this host need not have: control.group must
        // exist, so use one every host has.
        let text = block
            .replace("/etc/vpnd/", &format!("{}/", dir.path().display()))
            .replace("group: vpn", "group: root")
            .replace("group = \"vpn\"", "group = \"root\"");
        if let Err(e) = config::parse_str(&text, format, "doc", dir.path()) {
            panic!("{e}\n{text}");
        }
        checked += 1;
    }
    assert_eq!(
        checked, 3,
        "expected the two YAML and one TOML complete examples"
    );
}
