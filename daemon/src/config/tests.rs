//! Tests of loading, validation and writing.

use super::*;
use std::fs;
use std::os::unix::fs::PermissionsExt;

/// The wg(8) example pair: this private key's public key is [`OWN_PUB`].
const PRIV: &str = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=";
const OWN_PUB: &str = "HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw=";
const PUB1: &str = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";
const PUB2: &str = "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=";
const PSK: &str = "AwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwM=";

fn parse_in(text: &str, dir: &Path) -> Result<Config, ConfigError> {
    parse_str(text, Format::Yaml, "vpn0.yaml", dir)
}

fn parse(text: &str) -> Result<Config, ConfigError> {
    parse_in(text, Path::new("/nonexistent"))
}

/// The error's lines; panics if the text is valid.
fn error_lines(text: &str) -> Vec<String> {
    match parse(text) {
        Ok(c) => panic!("expected an error, got {c:#?}"),
        Err(e) => e.to_string().lines().map(str::to_string).collect(),
    }
}

/// Asserts that the text fails with exactly one problem, printed as `line`.
#[track_caller]
fn assert_only_error(text: &str, line: &str) {
    assert_eq!(error_lines(text), [line], "for:\n{text}");
}

/// Asserts that some line of the error starts with `prefix`.
#[track_caller]
fn assert_error_starting(text: &str, prefix: &str) {
    let lines = error_lines(text);
    assert!(
        lines.iter().any(|l| l.starts_with(prefix)),
        "no line starts with {prefix:?}: {lines:#?}"
    );
}

/// A minimal valid interface section followed by `rest`.
fn with_interface(rest: &str) -> String {
    format!("interface:\n  name: vpn0\n  private_key: {PRIV}\n{rest}")
}

/// The minimal interface plus one peer with `fields` (indented under `- `).
fn with_peer(fields: &str) -> String {
    with_interface(&format!("peers:\n  - public_key: {PUB1}\n{fields}"))
}

fn write_key(dir: &Path, name: &str, text: &str, mode: u32) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, text).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
    path
}

// ---- valid configurations ----

const FULL: &str = "\
interface:
  name: vpn0
  private_key_file: vpn0.key
  listen_port: 51820
  addresses: [10.10.0.1/24, fd10::1/64]
  mtu: 1400
  rekey_after_bytes: 1048576
control:
  socket: /run/vpnd/custom.sock
  group: root
peers:
  - name: alice
    public_key: AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=
    preshared_key: AwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwM=
    allowed_ips: [10.10.0.2/32, fd10::2/128]
    endpoint: alice.example.net:51820
    persistent_keepalive: 25
  - name: bob
    public_key: AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=
    preshared_key_file: bob.psk
    allowed_ips: [10.10.0.3/32, 192.168.50.0/24]
    endpoint: \"[fd00::2]:51821\"
";

const FULL_TOML: &str = r#"
[interface]
name = "vpn0"
private_key_file = "vpn0.key"
listen_port = 51820
addresses = ["10.10.0.1/24", "fd10::1/64"]
mtu = 1400
rekey_after_bytes = 1048576

[control]
socket = "/run/vpnd/custom.sock"
group = "root"

[[peers]]
name = "alice"
public_key = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="
preshared_key = "AwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwM="
allowed_ips = ["10.10.0.2/32", "fd10::2/128"]
endpoint = "alice.example.net:51820"
persistent_keepalive = 25

[[peers]]
name = "bob"
public_key = "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI="
preshared_key_file = "bob.psk"
allowed_ips = ["10.10.0.3/32", "192.168.50.0/24"]
endpoint = "[fd00::2]:51821"
"#;

/// A directory with the key files [`FULL`] names, mode 0600.
fn full_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write_key(dir.path(), "vpn0.key", &format!("{PRIV}\n"), 0o600);
    write_key(dir.path(), "bob.psk", &format!("  {PSK}\n\n"), 0o600);
    dir
}

#[test]
fn full_config_is_parsed() {
    let dir = full_dir();
    let c = parse_in(FULL, dir.path()).unwrap();
    assert_eq!(c.warnings, Vec::<String>::new());
    assert_eq!(c.source_path, None);

    let i = &c.interface;
    assert_eq!(i.name, "vpn0");
    assert_eq!(i.private_key, Some(PRIV.parse().unwrap()));
    assert_eq!(i.public_key().unwrap().to_base64(), OWN_PUB);
    assert_eq!(i.private_key_file, Some(dir.path().join("vpn0.key")));
    assert_eq!(i.listen_port, Some(51820));
    assert_eq!(
        i.addresses,
        [
            "10.10.0.1/24".parse().unwrap(),
            "fd10::1/64".parse().unwrap()
        ]
    );
    assert_eq!(i.mtu, 1400);
    assert_eq!(i.rekey_after_bytes, 1 << 20);

    assert_eq!(c.control.socket, Path::new("/run/vpnd/custom.sock"));
    assert_eq!(c.control.group.as_deref(), Some("root"));

    assert_eq!(c.peers.len(), 2);
    let alice = &c.peers[0];
    assert_eq!(alice.name.as_deref(), Some("alice"));
    assert_eq!(alice.public_key.to_base64(), PUB1);
    assert_eq!(alice.preshared_key, Some(PSK.parse().unwrap()));
    assert_eq!(alice.preshared_key_file, None);
    assert_eq!(
        alice.allowed_ips,
        [
            "10.10.0.2/32".parse().unwrap(),
            "fd10::2/128".parse().unwrap()
        ]
    );
    assert_eq!(
        alice.endpoint,
        Some(Endpoint::Host {
            host: "alice.example.net".into(),
            port: 51820
        })
    );
    assert_eq!(alice.persistent_keepalive, Some(25));

    let bob = &c.peers[1];
    assert_eq!(bob.preshared_key, Some(PSK.parse().unwrap()));
    assert_eq!(bob.preshared_key_file, Some(dir.path().join("bob.psk")));
    assert_eq!(
        bob.endpoint,
        Some(Endpoint::Addr("[fd00::2]:51821".parse().unwrap()))
    );
    assert_eq!(
        bob.endpoint.as_ref().unwrap().to_string(),
        "[fd00::2]:51821"
    );
    assert_eq!(bob.persistent_keepalive, None);
}

#[test]
fn toml_gives_the_same_config_as_yaml() {
    let dir = full_dir();
    let yaml = parse_in(FULL, dir.path()).unwrap();
    let toml = parse_str(FULL_TOML, Format::Toml, "vpn0.toml", dir.path()).unwrap();
    assert_eq!(yaml, toml);
}

#[test]
fn format_follows_the_extension() {
    assert_eq!(
        Format::from_path(Path::new("/etc/vpnd/a.toml")),
        Format::Toml
    );
    assert_eq!(Format::from_path(Path::new("a.TOML")), Format::Toml);
    assert_eq!(Format::from_path(Path::new("a.yaml")), Format::Yaml);
    assert_eq!(Format::from_path(Path::new("a.yml")), Format::Yaml);
    assert_eq!(Format::from_path(Path::new("toml")), Format::Yaml);

    let dir = full_dir();
    let path = dir.path().join("vpn0.toml");
    fs::write(&path, FULL_TOML).unwrap();
    let c = load(&path).unwrap();
    assert_eq!(c.peers.len(), 2);
}

#[test]
fn defaults() {
    let c = parse(&with_interface("")).unwrap();
    assert_eq!(c.interface.mtu, 1420);
    assert_eq!(c.interface.mtu, DEFAULT_MTU);
    assert_eq!(c.interface.rekey_after_bytes, 1024 * 1024 * 1024);
    assert_eq!(c.interface.listen_port, None);
    assert_eq!(c.interface.addresses, []);
    assert_eq!(c.interface.private_key_file, None);
    assert_eq!(c.control.socket, Path::new("/run/vpnd/vpn0.sock"));
    assert_eq!(c.control.group, None);
    assert_eq!(c.peers, []);
    assert_eq!(c.warnings, Vec::<String>::new());

    // Empty sections are the same as absent ones.
    let c2 = parse(&with_interface("control:\npeers:\n")).unwrap();
    assert_eq!(c, c2);

    let peer = &parse(&with_peer("")).unwrap().peers[0];
    assert_eq!(peer.name, None);
    assert_eq!(peer.preshared_key, None);
    assert_eq!(peer.allowed_ips, []);
    assert_eq!(peer.endpoint, None);
    assert_eq!(peer.persistent_keepalive, None);
}

#[test]
fn zero_means_off_for_listen_port_and_keepalive() {
    let c = parse(&with_interface("  listen_port: 0\n")).unwrap();
    assert_eq!(c.interface.listen_port, None);
    let c = parse(&with_interface("  listen_port: 65535\n")).unwrap();
    assert_eq!(c.interface.listen_port, Some(65535));
    let c = parse(&with_peer("    persistent_keepalive: 0\n")).unwrap();
    assert_eq!(c.peers[0].persistent_keepalive, None);
    let c = parse(&with_peer("    persistent_keepalive: 65535\n")).unwrap();
    assert_eq!(c.peers[0].persistent_keepalive, Some(65535));
}

#[test]
fn relative_socket_is_resolved_against_the_config_directory() {
    let c = parse_in(
        &with_interface("control:\n  socket: run/x.sock\n"),
        Path::new("/etc/vpnd"),
    )
    .unwrap();
    assert_eq!(c.control.socket, Path::new("/etc/vpnd/run/x.sock"));
}

#[test]
fn overlapping_allowed_ips_of_different_length_are_legal() {
    let text = with_interface(&format!(
        "peers:\n  - public_key: {PUB1}\n    allowed_ips: [10.0.0.0/8, 0.0.0.0/0]\n  \
         - public_key: {PUB2}\n    allowed_ips: [10.1.0.0/16, 10.1.2.3/32]\n"
    ));
    let c = parse(&text).unwrap();
    assert_eq!(c.peers[1].allowed_ips.len(), 2);
}

#[test]
fn allowed_ips_are_masked_with_a_warning() {
    let c = parse(&with_peer("    allowed_ips: [10.10.0.7/24]\n")).unwrap();
    assert_eq!(c.peers[0].allowed_ips, ["10.10.0.0/24".parse().unwrap()]);
    assert_eq!(
        c.warnings,
        ["vpn0.yaml: peers[0].allowed_ips[0]: 10.10.0.7/24 has host bits set; it is used as 10.10.0.0/24"]
    );
    // Interface addresses keep their host bits: that is the interface's own address.
    let c = parse(&with_interface("  addresses: [10.10.0.7/24]\n")).unwrap();
    assert_eq!(c.interface.addresses[0].to_string(), "10.10.0.7/24");
}

#[test]
fn an_allowed_ip_repeated_within_one_peer_is_a_warning() {
    let c = parse(&with_peer("    allowed_ips: [10.0.0.1/32, 10.0.0.1]\n")).unwrap();
    assert_eq!(c.peers[0].allowed_ips.len(), 1);
    assert_eq!(c.warnings.len(), 1);
    assert!(c.warnings[0].contains("listed more than once"));
}

// ---- key files and permissions ----

#[test]
fn key_file_readable_by_others_is_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let key = write_key(dir.path(), "k", &format!("{PRIV}\n"), 0o644);
    let text = "interface:\n  name: vpn0\n  private_key_file: k\n";
    let c = parse_in(text, dir.path()).unwrap();
    assert_eq!(c.interface.private_key, Some(PRIV.parse().unwrap()));
    assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
    let w = &c.warnings[0];
    assert!(
        w.starts_with("vpn0.yaml: interface.private_key_file: key file "),
        "{w}"
    );
    assert!(w.contains(&key.display().to_string()), "{w}");
    assert!(w.contains("mode 0644"), "{w}");

    fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(
        parse_in(text, dir.path()).unwrap().warnings,
        Vec::<String>::new()
    );
    fs::set_permissions(&key, fs::Permissions::from_mode(0o400)).unwrap();
    assert_eq!(
        parse_in(text, dir.path()).unwrap().warnings,
        Vec::<String>::new()
    );
}

#[test]
fn preshared_key_file_readable_by_others_is_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    write_key(dir.path(), "p", PSK, 0o640);
    let c = parse_in(&with_peer("    preshared_key_file: p\n"), dir.path()).unwrap();
    assert_eq!(c.warnings.len(), 1);
    assert!(c.warnings[0].starts_with("vpn0.yaml: peers[0].preshared_key_file: "));
}

#[test]
fn config_with_inline_key_readable_by_others_is_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vpn0.yaml");
    fs::write(&path, with_interface("")).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    let c = load(&path).unwrap();
    assert_eq!(c.source_path.as_deref(), Some(path.as_path()));
    assert_eq!(c.warnings.len(), 1);
    assert!(
        c.warnings[0].contains("holds a key inline"),
        "{:?}",
        c.warnings
    );

    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(load(&path).unwrap().warnings, Vec::<String>::new());
}

#[test]
fn unreadable_key_file_names_the_path_and_os_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.key");
    assert_eq!(
        parse_in(
            "interface:\n  name: vpn0\n  private_key_file: missing.key\n",
            dir.path()
        )
        .unwrap_err()
        .to_string(),
        format!(
            "vpn0.yaml: interface.private_key_file: cannot read key file {}: \
             No such file or directory (os error 2)",
            missing.display()
        )
    );
    // A directory is not a key file either.
    fs::create_dir(dir.path().join("d")).unwrap();
    let e = parse_in(
        "interface:\n  name: vpn0\n  private_key_file: d\n",
        dir.path(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("cannot read key file"), "{e}");
}

#[test]
fn key_file_with_bad_contents() {
    let dir = tempfile::tempdir().unwrap();
    write_key(dir.path(), "bad", "not a key!\n", 0o600);
    write_key(dir.path(), "short", "AAAA\n", 0o600);
    write_key(dir.path(), "big", &"A".repeat(5000), 0o600);
    let text = |f: &str| format!("interface:\n  name: vpn0\n  private_key_file: {f}\n");
    let e = parse_in(&text("bad"), dir.path()).unwrap_err().to_string();
    assert!(
        e.starts_with("vpn0.yaml: interface.private_key_file: key file ")
            && e.ends_with("/bad: not valid base64"),
        "{e}"
    );
    let e = parse_in(&text("short"), dir.path())
        .unwrap_err()
        .to_string();
    assert!(e.ends_with("/short: key must be 32 bytes, got 3"), "{e}");
    let e = parse_in(&text("big"), dir.path()).unwrap_err().to_string();
    assert!(e.contains("is larger than 1024 bytes"), "{e}");
}

// ---- one test per kind of problem ----

#[test]
fn yaml_syntax_error_gives_the_line() {
    let lines = error_lines("interface:\n  name: vpn0\n  mtu: [1\n");
    assert_eq!(lines.len(), 1);
    assert!(
        lines[0].starts_with("vpn0.yaml: syntax error: "),
        "{lines:?}"
    );
    assert!(lines[0].contains("line 4"), "{lines:?}");

    let lines = error_lines("interface:\n  name: vpn0\n   mtu: 1\n");
    assert!(lines[0].contains("line 3"), "{lines:?}");
}

#[test]
fn toml_syntax_error_gives_the_line() {
    let e = parse_str(
        "[interface]\nname = \"vpn0\"\nmtu = = 1\n",
        Format::Toml,
        "vpn0.toml",
        Path::new("."),
    )
    .unwrap_err()
    .to_string();
    assert_eq!(e.lines().count(), 1, "{e}");
    assert!(e.starts_with("vpn0.toml: syntax error: "), "{e}");
    assert!(e.contains("line 3"), "{e}");
}

#[test]
fn unknown_fields_are_named() {
    assert_only_error(
        &with_interface("  mut: 1400\n"),
        "vpn0.yaml: interface.mut: unknown field `mut`; expected one of: name, private_key, \
         private_key_file, listen_port, addresses, mtu, rekey_after_bytes, fwmark",
    );
    assert_error_starting(
        &with_interface("peer: []\n"),
        "vpn0.yaml: peer: unknown field `peer`; expected one of: interface, control, peers",
    );
    assert_error_starting(
        &with_interface("control:\n  sock: /x\n"),
        "vpn0.yaml: control.sock: unknown field `sock`",
    );
    assert_error_starting(
        &with_peer("    allowed_ip: [10.0.0.1/32]\n"),
        "vpn0.yaml: peers[0].allowed_ip: unknown field `allowed_ip`",
    );
    // Keys are case-sensitive.
    assert_error_starting(
        &with_interface("  MTU: 1400\n"),
        "vpn0.yaml: interface.MTU: unknown field `MTU`",
    );
}

#[test]
fn missing_required_fields() {
    assert_only_error("", "vpn0.yaml: interface: missing required field");
    assert_only_error(
        "peers: []\n",
        "vpn0.yaml: interface: missing required field",
    );
    assert_only_error(
        &format!("interface:\n  private_key: {PRIV}\n"),
        "vpn0.yaml: interface.name: missing required field",
    );
    assert_only_error(
        &with_interface("peers:\n  - name: x\n"),
        "vpn0.yaml: peers[0].public_key: missing required field",
    );
}

#[test]
fn private_key_and_private_key_file_exclude_each_other() {
    assert_only_error(
        "interface:\n  name: vpn0\n",
        "vpn0.yaml: interface: one of `private_key` or `private_key_file` is required",
    );
    assert_only_error(
        &format!("interface:\n  name: vpn0\n  private_key: {PRIV}\n  private_key_file: k\n"),
        "vpn0.yaml: interface: `private_key` and `private_key_file` are both set; set only one",
    );
}

#[test]
fn bad_base64() {
    assert_only_error(
        "interface:\n  name: vpn0\n  private_key: '#nope#'\n",
        "vpn0.yaml: interface.private_key: not valid base64",
    );
    assert_only_error(
        &with_interface("peers:\n  - public_key: '!!!'\n"),
        "vpn0.yaml: peers[0].public_key: not valid base64",
    );
    assert_only_error(
        &with_peer("    preshared_key: '%%'\n"),
        "vpn0.yaml: peers[0].preshared_key: not valid base64",
    );
}

#[test]
fn wrong_key_length() {
    assert_only_error(
        "interface:\n  name: vpn0\n  private_key: AAAA\n",
        "vpn0.yaml: interface.private_key: key must be 32 bytes, got 3",
    );
    assert_only_error(
        &with_interface(&format!("peers:\n  - public_key: {PUB1}AAAA\n")),
        "vpn0.yaml: peers[0].public_key: not valid base64",
    );
    assert_only_error(
        &with_interface(
            "peers:\n  - public_key: AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n",
        ),
        "vpn0.yaml: peers[0].public_key: key must be 32 bytes, got 36",
    );
}

#[test]
fn bad_cidr() {
    assert_only_error(
        &with_interface("  addresses: [10.10.0.1/24, 10.10.0.1/33]\n"),
        "vpn0.yaml: interface.addresses[1]: invalid CIDR `10.10.0.1/33`: prefix length /33 is \
         too large for an IPv4 address (at most /32)",
    );
    assert_only_error(
        &with_peer("    allowed_ips: [10.0.0.1/32, fd10::/x]\n"),
        "vpn0.yaml: peers[0].allowed_ips[1]: invalid CIDR `fd10::/x`: invalid prefix length \
         \"x\": expected a decimal number of bits, like /24",
    );
    // Both bad entries of one list are reported.
    assert_eq!(
        error_lines(&with_peer("    allowed_ips: [300.0.0.1/8, nothing]\n")),
        [
            "vpn0.yaml: peers[0].allowed_ips[0]: invalid CIDR `300.0.0.1/8`: invalid IP address \
             \"300.0.0.1\"",
            "vpn0.yaml: peers[0].allowed_ips[1]: invalid CIDR `nothing`: invalid IP address \
             \"nothing\"",
        ]
    );
}

#[test]
fn bad_interface_names() {
    let cases = [
        ("''", "``: must not be empty"),
        (
            "abcdefghijklmnop",
            "`abcdefghijklmnop`: longer than 15 bytes",
        ),
        ("a/b", "`a/b`: contains `/`"),
        ("'a b'", "`a b`: contains whitespace"),
        ("\"a\\tb\"", "`a\\tb`: contains whitespace"),
        ("\"a\\0b\"", "`a\\0b`: contains NUL"),
    ];
    for (yaml, reason) in cases {
        assert_only_error(
            &format!("interface:\n  name: {yaml}\n  private_key: {PRIV}\n"),
            &format!("vpn0.yaml: interface.name: invalid interface name {reason}"),
        );
    }
}

/// What every IPv4-only MTU refusal adds: why the bounds are what they are.
const V4_MTU: &str = " (576 is IPv4's minimum datagram size; 65535 is the largest IP packet)";

#[test]
fn mtu_range() {
    assert_only_error(
        &with_interface("  mtu: 575\n"),
        &format!("vpn0.yaml: interface.mtu: 575 is out of range: must be 576 to 65535{V4_MTU}"),
    );
    assert_only_error(
        &with_interface("  mtu: 65536\n"),
        &format!("vpn0.yaml: interface.mtu: 65536 is out of range: must be 576 to 65535{V4_MTU}"),
    );
    assert_only_error(
        &with_interface("  addresses: [10.0.0.1/24, fd10::1/64]\n  mtu: 1279\n"),
        "vpn0.yaml: interface.mtu: 1279 is out of range: must be 1280 to 65535 (1280 is IPv6's \
         minimum link MTU and an address is IPv6; 65535 is the largest IP packet)",
    );
    let c = parse(&with_interface("  addresses: [10.0.0.1/24]\n  mtu: 576\n")).unwrap();
    assert_eq!(c.interface.mtu, 576);
    let c = parse(&with_interface("  addresses: [fd10::1/64]\n  mtu: 1280\n")).unwrap();
    assert_eq!(c.interface.mtu, 1280);
}

#[test]
fn listen_port_range() {
    assert_only_error(
        &with_interface("  listen_port: 65536\n"),
        "vpn0.yaml: interface.listen_port: 65536 is out of range: must be 0 to 65535 (0 picks \
         any free port)",
    );
    assert_error_starting(
        &with_interface("  listen_port: -1\n"),
        "vpn0.yaml: interface.listen_port: -1 is out of range",
    );
}

#[test]
fn rekey_after_bytes_must_be_positive() {
    assert_only_error(
        &with_interface("  rekey_after_bytes: 0\n"),
        "vpn0.yaml: interface.rekey_after_bytes: 0 is out of range: must be at least 1",
    );
}

#[test]
fn fwmark_range_and_round_trip() {
    let c = parse(&with_interface("  fwmark: 51820\n")).unwrap();
    assert_eq!(c.interface.fwmark, Some(51820));
    let yaml = c.to_yaml();
    assert!(yaml.contains("  fwmark: 51820\n"), "{yaml}");
    assert_eq!(parse(&yaml).unwrap(), c);
    assert_eq!(
        parse(&with_interface("  fwmark: 0\n"))
            .unwrap()
            .interface
            .fwmark,
        None
    );
    assert_eq!(
        parse(&with_interface("  fwmark: 4294967295\n"))
            .unwrap()
            .interface
            .fwmark,
        Some(u32::MAX)
    );
    assert_error_starting(
        &with_interface("  fwmark: 4294967296\n"),
        "vpn0.yaml: interface.fwmark: 4294967296 is out of range",
    );
}

#[test]
fn a_configuration_without_a_file() {
    let c = super::without_file("wg0").unwrap();
    assert_eq!(c.interface.private_key, None);
    assert_eq!(c.interface.public_key(), None);
    assert_eq!(c.interface.mtu, super::DEFAULT_MTU);
    assert!(c.interface.addresses.is_empty() && c.peers.is_empty());
    assert_eq!(c.control.socket, super::default_socket("wg0"));
    // Written out, it has no key (and so is not loadable until one is added).
    assert!(!c.to_yaml().contains("private_key"));
    assert!(super::without_file("a/b").is_err());
    assert!(super::without_file("sixteen-bytes-xx").is_err());
}

#[test]
fn duplicate_public_key() {
    let text = with_interface(&format!(
        "peers:\n  - name: alice\n    public_key: {PUB1}\n  - public_key: {PUB2}\n  \
         - public_key: {PUB1}\n"
    ));
    assert_only_error(
        &text,
        "vpn0.yaml: peers[2].public_key: the same public key as peers[0] (alice)",
    );
}

#[test]
fn own_public_key_as_a_peer() {
    assert_only_error(
        &with_interface(&format!("peers:\n  - public_key: {OWN_PUB}\n")),
        "vpn0.yaml: peers[0].public_key: this is the interface's own public key",
    );
}

#[test]
fn allowed_ip_claimed_by_two_peers() {
    let text = with_interface(&format!(
        "peers:\n  - public_key: {PUB1}\n    allowed_ips: [10.10.0.0/24, fd10::2/128]\n  \
         - name: bob\n    public_key: {PUB2}\n    allowed_ips: [10.10.0.9/24, fd10::2]\n"
    ));
    assert_eq!(
        error_lines(&text),
        [
            "vpn0.yaml: peers[1].allowed_ips[0]: 10.10.0.0/24 is already an allowed IP of peers[0]",
            "vpn0.yaml: peers[1].allowed_ips[1]: fd10::2/128 is already an allowed IP of peers[0]",
        ]
    );
}

#[test]
fn bad_endpoints() {
    let cases = [
        (
            "alice.example.net",
            "missing `:port` (write host:port, IPv4:port or [IPv6]:port)",
        ),
        ("10.0.0.1:0", "port `0` is not a number from 1 to 65535"),
        ("host:99999", "port `99999` is not a number from 1 to 65535"),
        ("':51820'", "empty host"),
        (
            "'fd10::1:51820'",
            "IPv6 addresses must be in brackets, e.g. [2001:db8::1]:51820",
        ),
    ];
    for (yaml, reason) in cases {
        let shown = yaml.trim_matches('\'');
        assert_only_error(
            &with_peer(&format!("    endpoint: {yaml}\n")),
            &format!("vpn0.yaml: peers[0].endpoint: invalid endpoint `{shown}`: {reason}"),
        );
    }
}

#[test]
fn duplicate_peer_name() {
    let text = with_interface(&format!(
        "peers:\n  - name: alice\n    public_key: {PUB1}\n  - name: alice\n    public_key: {PUB2}\n"
    ));
    assert_only_error(
        &text,
        "vpn0.yaml: peers[1].name: name `alice` is already used by peers[0] (alice)",
    );
    assert_only_error(
        &with_peer("    name: ''\n"),
        "vpn0.yaml: peers[0].name: must not be empty",
    );
}

#[test]
fn preshared_key_and_file_exclude_each_other() {
    assert_only_error(
        &with_peer(&format!(
            "    preshared_key: {PSK}\n    preshared_key_file: p\n"
        )),
        "vpn0.yaml: peers[0]: `preshared_key` and `preshared_key_file` are both set; set only one",
    );
}

#[test]
fn persistent_keepalive_range() {
    assert_only_error(
        &with_peer("    persistent_keepalive: 65536\n"),
        "vpn0.yaml: peers[0].persistent_keepalive: 65536 is out of range: must be 0 to 65535 \
         (seconds; 0 turns it off)",
    );
    assert_error_starting(
        &with_peer("    persistent_keepalive: -5\n"),
        "vpn0.yaml: peers[0].persistent_keepalive: -5 is out of range",
    );
}

#[test]
fn wrong_types_are_reported_per_field() {
    let lines = error_lines(&with_interface(
        "  mtu: '1420'\n  addresses: 10.0.0.1/24\n  listen_port: 1.5\n",
    ));
    assert_eq!(lines.len(), 3, "{lines:#?}");
    assert!(
        lines[0].starts_with("vpn0.yaml: interface.listen_port: "),
        "{lines:#?}"
    );
    assert!(lines[0].contains("expected an integer"), "{lines:#?}");
    assert!(
        lines[1].starts_with("vpn0.yaml: interface.addresses: "),
        "{lines:#?}"
    );
    assert!(
        lines[2].starts_with("vpn0.yaml: interface.mtu: "),
        "{lines:#?}"
    );
    assert!(lines[2].contains("expected an integer"), "{lines:#?}");

    assert_only_error(
        "- a list\n",
        "vpn0.yaml: the top level must be a map of sections (interface, control, peers), found a \
         list",
    );
    assert_only_error(
        "interface: 5\n",
        "vpn0.yaml: interface: expected a map, found an integer",
    );
    assert_only_error(
        &with_interface("peers:\n  name: x\n"),
        "vpn0.yaml: peers: expected a list, found a map",
    );
    assert_only_error(
        &with_interface("peers:\n  - 5\n"),
        "vpn0.yaml: peers[0]: expected a map, found an integer",
    );
    assert_error_starting(
        &with_interface("control:\n  group: [a]\n"),
        "vpn0.yaml: control.group: ",
    );
    // A field dropped for its type is not also reported missing.
    assert_eq!(
        error_lines(&format!("interface:\n  name: [x]\n  private_key: {PRIV}\n")).len(),
        1
    );
}

#[test]
fn bad_control_section() {
    assert_only_error(
        &with_interface("control:\n  group: ''\n"),
        "vpn0.yaml: control.group: must not be empty",
    );
    // A group the host does not have fails --check and a reload (issue 9: it used to pass,
    // then a reload deleted the control socket).
    assert_error_starting(
        &with_interface("control:\n  group: nosuchgroup\n"),
        "vpn0.yaml: control.group: no such group \"nosuchgroup\"",
    );
    assert_only_error(
        &with_interface(&format!("control:\n  socket: /{}\n", "s".repeat(107))),
        "vpn0.yaml: control.socket: path is 108 bytes long; a Unix socket path holds at most 107",
    );
    assert_only_error(
        &with_interface("control:\n  socket: ''\n"),
        "vpn0.yaml: control.socket: must not be empty",
    );
}

#[test]
fn duplicate_yaml_keys_are_refused() {
    let text = with_interface(&format!(
        "peers:\n  - public_key: {PUB1}\npeers:\n  - public_key: {PUB2}\n"
    ));
    assert_only_error(
        &text,
        "vpn0.yaml: peers: set more than once (again on line 6)",
    );
}

#[test]
fn yaml_aliases_are_refused() {
    let text = with_interface(&format!(
        "peers:\n  - public_key: &k {PUB1}\n  - public_key: *k\n"
    ));
    assert_only_error(
        &text,
        "vpn0.yaml: YAML aliases (*name) are not supported (line 6)",
    );
}

#[test]
fn all_problems_are_reported_at_once() {
    let text = format!(
        "interface:\n  name: 'bad name'\n  private_key: AAAA\n  mtu: 1\n  colour: blue\n\
         peers:\n  - public_key: nope!\n    endpoint: x\n  - public_key: {PUB1}\n    \
         persistent_keepalive: 99999\n    allowed_ips: [1.2.3.4/40]\n"
    );
    let lines = error_lines(&text);
    assert_eq!(
        lines,
        [
            "vpn0.yaml: interface.colour: unknown field `colour`; expected one of: name, \
             private_key, private_key_file, listen_port, addresses, mtu, rekey_after_bytes, fwmark",
            "vpn0.yaml: interface.name: invalid interface name `bad name`: contains whitespace",
            "vpn0.yaml: interface.private_key: key must be 32 bytes, got 3",
            "vpn0.yaml: interface.mtu: 1 is out of range: must be 576 to 65535 (576 is IPv4's \
             minimum datagram size; 65535 is the largest IP packet)",
            "vpn0.yaml: peers[0].public_key: not valid base64",
            "vpn0.yaml: peers[0].endpoint: invalid endpoint `x`: missing `:port` (write \
             host:port, IPv4:port or [IPv6]:port)",
            "vpn0.yaml: peers[1].allowed_ips[0]: invalid CIDR `1.2.3.4/40`: prefix length /40 is \
             too large for an IPv4 address (at most /32)",
            "vpn0.yaml: peers[1].persistent_keepalive: 99999 is out of range: must be 0 to \
             65535 (seconds; 0 turns it off)",
        ]
    );
    // The typed error carries the same problems.
    let e = parse(&text).unwrap_err();
    assert_eq!(e.origin, "vpn0.yaml");
    assert_eq!(e.problems.len(), lines.len());
    assert!(matches!(
        e.problems[1].kind,
        ProblemKind::BadInterfaceName { .. }
    ));
    assert_eq!(e.problems[4].path, "peers[0].public_key");
}

// ---- loading files ----

#[test]
fn load_reports_unreadable_and_non_utf8_files() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.yaml");
    let e = load(&missing).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "{}: cannot read: No such file or directory (os error 2)",
            missing.display()
        )
    );
    let binary = dir.path().join("bin.yaml");
    fs::write(&binary, [0xff, 0xfe, 0x00]).unwrap();
    assert_eq!(
        load(&binary).unwrap_err().to_string(),
        format!("{}: not valid UTF-8", binary.display())
    );
}

#[test]
fn load_resolves_key_files_against_the_config_directory() {
    let dir = full_dir();
    let path = dir.path().join("vpn0.yaml");
    fs::write(&path, FULL).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    let c = load(&path).unwrap();
    assert_eq!(
        c.interface.private_key_file,
        Some(dir.path().join("vpn0.key"))
    );
    assert_eq!(c.warnings, Vec::<String>::new());
}

// ---- writing back ----

#[test]
fn round_trip_through_yaml() {
    let dir = full_dir();
    let path = dir.path().join("vpn0.yaml");
    fs::write(&path, FULL).unwrap();
    let loaded = load(&path).unwrap();
    let yaml = loaded.to_yaml();
    let mut reparsed = parse_str(&yaml, Format::Yaml, "saved.yaml", Path::new("/elsewhere"))
        .unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    reparsed.source_path = loaded.source_path.clone();
    reparsed.warnings = loaded.warnings.clone();
    assert_eq!(reparsed, loaded, "{yaml}");
    // Keys that came from files stay in their files.
    assert!(yaml.contains("private_key_file: "), "{yaml}");
    assert!(!yaml.contains(PRIV), "{yaml}");
    assert!(!yaml.contains(&format!(
        "preshared_key: \"{PSK}\"\n    allowed_ips: [\"10.10.0.3"
    )));
    assert!(yaml.contains("preshared_key_file: "), "{yaml}");
}

#[test]
fn round_trip_of_inline_keys_and_awkward_strings() {
    let text = with_interface(&format!(
        "  listen_port: 0\ncontrol:\n  group: \"root\"\npeers:\n  - name: \"null # not a comment: \\\"quoted\\\" \\\\ é\"\n    \
         public_key: {PUB1}\n    preshared_key: {PSK}\n    endpoint: 192.0.2.1:7\n  \
         - name: '0x10'\n    public_key: {PUB2}\n    allowed_ips: [::/0, 0.0.0.0/0]\n"
    ));
    let c = parse(&text).unwrap();
    let yaml = c.to_yaml();
    let again = parse(&yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    assert_eq!(again, c, "{yaml}");
    assert!(yaml.contains(&format!("private_key: \"{PRIV}\"")), "{yaml}");
    assert_eq!(c.control.group.as_deref(), Some("root"));
    assert_eq!(c.peers[1].name.as_deref(), Some("0x10"));
}

#[test]
fn to_yaml_of_defaults() {
    let c = parse(&with_interface("")).unwrap();
    assert_eq!(
        c.to_yaml(),
        format!(
            "# vpnd configuration\ninterface:\n  name: \"vpn0\"\n  private_key: \"{PRIV}\"\n  \
             addresses: []\n  mtu: 1420\n  rekey_after_bytes: 1073741824\ncontrol:\n  \
             socket: \"/run/vpnd/vpn0.sock\"\npeers: []\n"
        )
    );
}

// ---- hostile input ----

#[test]
fn hostile_inputs_give_errors_not_panics() {
    let deep_flow = "[".repeat(200_000);
    let deep_block = "- ".repeat(200_000);
    let deep_toml_keys = format!("{}b = 1\n", "a.".repeat(200_000));
    let deep_toml_arrays = format!("a = {}\n", "[".repeat(200_000));
    let huge = "#".repeat(syntax::MAX_TEXT_LEN + 1);
    let laughs = "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a]\n\
                  c: &c [*b, *b, *b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c, *c, *c]\n";
    let yaml_cases: Vec<&str> = vec![
        &deep_flow,
        &deep_block,
        &huge,
        laughs,
        "---\na: 1\n---\nb: 2\n",
        "- just\n- a list\n",
        "just a string",
        "~",
        "? [complex, key]\n: value\n",
        "interface: {name: vpn0, private_key: [1, {a: b}]}",
        "interface:\n  name: vpn0\n  private_key_file: /dev/null\n",
        "interface:\n  name: vpn0\n  private_key_file: \"\\0\"\n",
        "interface:\n  name: vpn0\n  mtu: 99999999999999999999999\n",
        "interface:\n  name: vpn0\n  listen_port: -9223372036854775808\n",
        "interface:\n  name: vpn0\n  rekey_after_bytes: 0x7fffffffffffffff\n",
        "\u{feff}interface: 1",
        "interface:\n  !!binary name: x",
        "interface.name: vpn0\n",
        "'peers[0]': 1\n",
        "\t",
        "%YAML 1.2\n---\n",
        "interface: &a {name: x}\n",
        "1: 2\ntrue: false\n3.5: x\n",
    ];
    for text in yaml_cases {
        assert!(
            parse(text).is_err(),
            "accepted {:?}",
            &text[..text.len().min(60)]
        );
    }
    for text in [
        deep_toml_keys.as_str(),
        &deep_toml_arrays,
        "interface = 5",
        "[interface]\nname = 2024-01-01T00:00:00Z\n",
        "[[interface]]\nname = \"x\"\n",
    ] {
        let r = parse_str(text, Format::Toml, "x.toml", Path::new("."));
        assert!(r.is_err(), "accepted {:?}", &text[..text.len().min(60)]);
    }
}

#[test]
fn a_hubs_tls_names_its_port_and_ca_file_and_the_server_name_defaults_to_the_host() {
    let hub = protocol::keys::PrivateKey::from_bytes([9; 32])
        .public_key()
        .to_base64();
    let dir = tempfile::tempdir().unwrap();
    // A CA file is read when the configuration is checked: it must hold certificates. This
    // one is a made-up DER body; only the PEM framing is checked here.
    std::fs::write(
        dir.path().join("ca.pem"),
        "-----BEGIN CERTIFICATE-----\nMAMCAQA=\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("empty.pem"), "nothing here\n").unwrap();
    let c = parse_in(
        &with_interface(&format!(
            "hubs:\n  - address: hub.example.net:3478\n    public_key: {hub}\n    tls:\n      port: 443\n      ca_file: ca.pem\n  - address: 192.0.2.7:3478\n    public_key: {hub}\n    tls: {{port: 8443}}\n"
        )),
        dir.path(),
    )
    .unwrap();
    let tls = c.nat.hubs[0].tls.as_ref().unwrap();
    assert_eq!(tls.port, 443);
    assert_eq!(tls.server_name, "hub.example.net");
    assert_eq!(
        tls.ca_file.as_deref(),
        Some(dir.path().join("ca.pem").as_path())
    );
    let tls = c.nat.hubs[1].tls.as_ref().unwrap();
    assert_eq!((tls.port, tls.server_name.as_str()), (8443, "192.0.2.7"));
    assert_eq!(tls.ca_file, None, "the public roots");

    let text = parse_in(
        &with_interface(&format!(
            "hubs:\n  - address: a.example:1\n    public_key: {hub}\n    tls: {{port: 0, ca_file: empty.pem}}\n  - address: b.example:1\n    public_key: {hub}\n    tls: {{port: 443, ca_file: missing.pem, sni: x}}\n  - address: c.example:1\n    public_key: {hub}\n    tls: {{ca_file: ca.pem}}\n"
        )),
        dir.path(),
    )
    .unwrap_err()
    .to_string();
    for want in [
        "hubs[0].tls.port: ",
        "0 is not a port from 1 to 65535",
        "hubs[1].tls: unknown field `sni`",
        "hubs[2].tls.port: missing",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
    let text = parse_in(
        &with_interface(&format!(
            "hubs:\n  - address: a.example:1\n    public_key: {hub}\n    tls: {{port: 443, ca_file: empty.pem}}\n  - address: b.example:1\n    public_key: {hub}\n    tls: {{port: 443, ca_file: missing.pem}}\n"
        )),
        dir.path(),
    )
    .unwrap_err()
    .to_string();
    for want in [
        "hubs[0].tls.ca_file: ",
        "holds no certificate",
        "hubs[1].tls.ca_file: cannot read",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
}

#[test]
fn hubs_and_stun_servers_are_checked() {
    let hub = protocol::keys::PrivateKey::from_bytes([9; 32])
        .public_key()
        .to_base64();
    let c = parse(&with_interface(&format!(
        "hubs:\n  - address: hub.example.net:3478\n    public_key: {hub}\nstun_servers: [\"192.0.2.1:3478\", \"stun.example.net:3478\"]\n"
    )))
    .unwrap();
    assert_eq!(c.nat.hubs.len(), 1);
    assert_eq!(c.nat.hubs[0].address.to_string(), "hub.example.net:3478");
    assert_eq!(c.nat.stun_servers.len(), 2);
    assert!(c.nat.is_enabled());
    assert!(!parse(&with_interface("")).unwrap().nat.is_enabled());

    let lines = error_lines(&with_interface(&format!(
        "hubs:\n  - address: hub.example.net\n    public_key: nope\n  - public_key: {hub}\n    port: 1\nstun_servers: [\"a:1\", \"a:1\", 5]\n"
    )));
    let text = lines.join("\n");
    assert!(
        text.contains("hubs[0].address: invalid endpoint `hub.example.net`: missing `:port`"),
        "{text}"
    );
    assert!(text.contains("hubs[0].public_key: "), "{text}");
    assert!(
        text.contains("hubs[1].port: unknown field `port`"),
        "{text}"
    );
    assert!(
        text.contains("hubs[1].address: missing required field"),
        "{text}"
    );
    assert!(
        text.contains("stun_servers[1]: a:1 is listed twice"),
        "{text}"
    );
    assert!(
        text.contains("stun_servers[2]: expected \"host:port\""),
        "{text}"
    );
    let many: Vec<String> = (0..9).map(|i| format!("\"s{i}:1\"")).collect();
    let lines = error_lines(&with_interface(&format!(
        "stun_servers: [{}]\n",
        many.join(",")
    )));
    assert!(
        lines
            .join("\n")
            .contains("stun_servers: 9 entries; at most 8"),
        "{lines:?}"
    );
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        #[test]
        fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
            let _ = parse(&text);
            let _ = parse_str(&text, Format::Toml, "x.toml", Path::new("."));
        }

        /// Issue 9: `--save` keeps the file's format, and what it writes reads back as the same
        /// configuration, in YAML and in TOML.
        #[test]
        fn saved_configurations_read_back_equal_in_both_formats(
            peers in proptest::collection::vec(
                (
                    proptest::option::of("[a-zA-Z0-9 _.#:'\"\\\\é-]{1,12}"),
                    any::<[u8; 32]>(),
                    any::<bool>(),
                    proptest::option::of(1u16..3600),
                    0u8..3,
                ),
                0..4,
            ),
            port in proptest::option::of(1u16..),
            mtu in 1280u32..9000,
            fwmark in proptest::option::of(1u32..),
            group in any::<bool>(),
            hubs in 0usize..3,
            stun in 0usize..3,
        ) {
            let mut text = with_interface(&format!("  addresses: [10.10.0.1/24, fd10::1/64]\n  mtu: {mtu}\n"));
            if let Some(port) = port {
                text.push_str(&format!("  listen_port: {port}\n"));
            }
            if let Some(mark) = fwmark {
                text.push_str(&format!("  fwmark: {mark}\n"));
            }
            if group {
                text.push_str("control:\n  group: root\n");
            }
            if hubs > 0 {
                text.push_str("hubs:\n");
            }
            for h in 0..hubs {
                let key = protocol::keys::PrivateKey::from_bytes([h as u8 + 100; 32]).public_key();
                let address = if h == 0 { format!("hub{h}.example.net:3478") } else { format!("\"[2001:db8::{h}]:3478\"") };
                text.push_str(&format!("  - address: {address}\n    public_key: {}\n", key.to_base64()));
            }
            if stun > 0 {
                let list: Vec<String> = (0..stun).map(|i| format!("\"stun{i}.example.net:3478\"")).collect();
                text.push_str(&format!("stun_servers: [{}]\n", list.join(", ")));
            }
            text.push_str(if peers.is_empty() { "peers: []\n" } else { "peers:\n" });
            for (n, (name, key, psk, keepalive, endpoint)) in peers.iter().enumerate() {
                let key = protocol::keys::PrivateKey::from_bytes(*key).public_key().to_base64();
                text.push_str(&format!("  - public_key: {key}\n"));
                if let Some(name) = name {
                    let quoted = name.replace('\\', "\\\\").replace('"', "\\\"");
                    text.push_str(&format!("    name: \"{quoted}-{n}\"\n"));
                }
                if *psk {
                    text.push_str(&format!("    preshared_key: {PSK}\n"));
                }
                text.push_str(&format!("    allowed_ips: [10.20.{n}.0/24, fd20:{n}::/64]\n"));
                if let Some(k) = keepalive {
                    text.push_str(&format!("    persistent_keepalive: {k}\n"));
                }
                match endpoint {
                    1 => text.push_str(&format!("    endpoint: 192.0.2.{n}:51820\n")),
                    2 => text.push_str(&format!("    endpoint: \"[2001:db8::{n}]:51820\"\n")),
                    _ => {}
                }
            }
            let c = parse(&text);
            prop_assert!(c.is_ok(), "generated configuration refused: {:?}\n{}", c.err(), text);
            let c = c.unwrap();
            let yaml = c.to_yaml();
            prop_assert_eq!(parse(&yaml).ok(), Some(c.clone()), "{}", yaml);
            let toml = c.to_text(Format::Toml);
            let again = parse_str(&toml, Format::Toml, "vpn0.toml", Path::new("/nonexistent"));
            prop_assert_eq!(again.ok(), Some(c), "{}", toml);
        }

        #[test]
        fn mutated_configs_never_panic(pos in 0usize..2000, insert in "[\\[\\]{}:\\-#&*!|>'\"\\n ,a-z0-9./]{0,6}") {
            let base = with_interface(&format!(
                "  addresses: [10.10.0.1/24]\npeers:\n  - name: a\n    public_key: {PUB1}\n    \
                 allowed_ips: [10.10.0.2/32]\n    endpoint: h.example:1\n"
            ));
            let mut at = pos % (base.len() + 1);
            while !base.is_char_boundary(at) {
                at -= 1;
            }
            let text = format!("{}{}{}", &base[..at], insert, &base[at..]);
            if let Ok(c) = parse(&text) {
                // Whatever was accepted must survive a round trip.
                let again = parse(&c.to_yaml());
                prop_assert_eq!(again.ok(), Some(c));
            }
        }
    }
}

/// Issue 9: an unquoted IPv6 endpoint is a YAML syntax error a line away from the cause; the
/// error is followed by how to write it.
#[test]
fn an_unquoted_ipv6_endpoint_gets_a_hint_to_quote_it() {
    let text = with_peer("    allowed_ips: [10.0.0.2/32]\n    endpoint: [fd77::1]:51820\n");
    let lines = error_lines(&text);
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(
        lines[0].starts_with("vpn0.yaml: syntax error: "),
        "{lines:?}"
    );
    assert_eq!(
        lines[1],
        "vpn0.yaml: line 7: quote it: `endpoint: \"[fd77::1]:51820\"` (unquoted, YAML reads \
         `[...]` as a list)"
    );
    let toml = format!(
        "[interface]\nname = \"vpn0\"\nprivate_key = \"{PRIV}\"\n[[peers]]\npublic_key = \
         \"{PUB1}\"\nallowed_ips = []\nendpoint = [fd77::1]:51820\n"
    );
    let e = parse_str(&toml, Format::Toml, "t.toml", Path::new("/")).unwrap_err();
    assert!(
        e.to_string()
            .ends_with("t.toml: line 7: quote it: `endpoint = \"[fd77::1]:51820\"` (TOML strings are always quoted)"),
        "{e}"
    );
    // Quoted, it is an endpoint.
    let ok = with_peer("    allowed_ips: [10.0.0.2/32]\n    endpoint: \"[fd77::1]:51820\"\n");
    assert!(parse(&ok).is_ok());
}

/// Issue 9: a wg-quick file is named as one, with the command that converts it.
#[test]
fn a_wg_quick_file_points_at_vpnctl_import() {
    let text = format!(
        "[Interface]\nPrivateKey = {PRIV}\nListenPort = 51820\nAddress = 10.0.0.1/24\n\n[Peer]\n\
         PublicKey = {PUB1}\nAllowedIPs = 10.0.0.2/32\nEndpoint = [fd77::1]:51820\n"
    );
    let lines = error_lines(&text);
    assert_eq!(
        lines,
        ["vpn0.yaml: this looks like a wg-quick file ([Interface], PrivateKey = ...), not a vpnd \
          configuration; convert it with `vpnctl import vpn0.yaml -o vpn0.vpnd.yaml`"]
    );
}

/// Issue 9: without a port, `endpoint: [fd77::1]` parses, as a list; the type error says how
/// to write it.
#[test]
fn a_bracketed_endpoint_read_as_a_list_gets_a_hint() {
    assert_only_error(
        &with_peer("    allowed_ips: [10.0.0.2/32]\n    endpoint: [fd77::1]\n"),
        "vpn0.yaml: peers[0].endpoint: expected a string, found a list; an IPv6 endpoint is \
         written in brackets with its port, in quotes: `endpoint: \"[fd77::1]:51820\"`",
    );
}
