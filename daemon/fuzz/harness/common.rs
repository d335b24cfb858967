//! What the harnesses share: the configurations changes are applied to, driving the async
//! framing functions over a byte slice, and the property every accepted configuration must
//! have (what the daemon would save reads back the same).

use std::path::Path;
use std::sync::OnceLock;
use vpnd::config::{self, Config, Format};

/// Key files and relative paths resolve here: a directory that does not exist, so a fuzzed
/// configuration never reads a real file through a relative path.
pub const NO_DIR: &str = "/nonexistent-vpnd-fuzz";

const FULL: &str = r#"
interface:
  name: "vpn0"
  private_key: "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk="
  listen_port: 51820
  addresses: ["10.10.0.1/24", "fd10::1/64"]
  mtu: 1420
peers:
  - public_key: "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg="
    name: "laptop"
    allowed_ips: ["10.10.0.2/32", "fd10::2/128"]
    endpoint: "192.0.2.7:51820"
    persistent_keepalive: 25
  - public_key: "TrMvSoP4jYQlY6RIzBgbssQqY3vxI2Pi+y71lOWWXX0="
    name: "office"
    preshared_key: "FpCyhws9cxwWoV4xELtfJvjJN+zQVRPISllRWgeopVE="
    allowed_ips: ["192.168.0.0/16", "10.20.0.0/16"]
    endpoint: "[2001:db8::1]:51821"
"#;

const ROUTER: &str = r#"
interface:
  name: "wg-router"
  private_key: "CPfnbEXb8uRRIlKpfZR0jx6yTfA2WiOCFN7VvRXTXHk="
  addresses: ["192.0.2.1/32"]
peers:
  - public_key: "HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw="
    allowed_ips: ["0.0.0.0/0", "::/0"]
"#;

/// The configurations a change can start from: a typical one, a default route, and a
/// configuration-less interface (no key, no peer, as `vpnd <interface>` starts).
pub fn base(i: u8) -> &'static Config {
    static BASES: OnceLock<Vec<Config>> = OnceLock::new();
    let bases = BASES.get_or_init(|| {
        vec![
            parse(FULL, Format::Yaml).expect("the FULL base configuration is valid"),
            parse(ROUTER, Format::Yaml).expect("the ROUTER base configuration is valid"),
            config::without_file("wg0").expect("a valid interface name"),
        ]
    });
    &bases[usize::from(i) % bases.len()]
}

/// `config::parse_str` with the harnesses' origin and key-file directory.
pub fn parse(text: &str, format: Format) -> Result<Config, config::ConfigError> {
    config::parse_str(text, format, "fuzz", Path::new(NO_DIR))
}

/// Runs a future that never waits (the readers here read from byte slices).
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    futures::executor::block_on(f)
}

/// What `--save` would write for `cfg` must read back as the same configuration: otherwise a
/// change the daemon accepted at runtime would leave a file it refuses (or reads differently)
/// at the next start.
///
/// Only for configurations with a private key: one without (a configuration-less daemon, or a
/// UAPI `set` of an all-zero key) cannot be written to a file vpnd would start from, and a
/// configuration-less daemon has no file to save to.
pub fn assert_round_trip(cfg: &Config, what: &dyn std::fmt::Debug) {
    if cfg.interface.private_key.is_none() && cfg.interface.private_key_file.is_none() {
        return;
    }
    let yaml = cfg.to_yaml();
    let again = parse(&yaml, Format::Yaml).unwrap_or_else(|e| {
        panic!("the saved form of an accepted configuration is refused: {e}\n{yaml}\nfrom {what:?}")
    });
    let strip = |c: &Config| {
        let mut c = c.clone();
        c.warnings.clear();
        c.source_path = None;
        c
    };
    assert_eq!(
        strip(&again),
        strip(cfg),
        "the saved form reads back differently:\n{yaml}\nfrom {what:?}"
    );
}

/// Whether a configuration text names a path that could block or be huge to read (a key file
/// on a device, a FIFO in /proc or /sys): the harness skips it, since reading such files is
/// the operator's choice and not an input an attacker controls.
pub fn touches_devices(text: &str) -> bool {
    ["/dev", "/proc", "/sys", "/run"]
        .iter()
        .any(|p| text.contains(p))
}
