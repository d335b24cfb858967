//! The configuration file syntax: `config::parse_str` on arbitrary YAML or TOML text.
//!
//! Input: a format byte (even: YAML, odd: TOML), then the text (invalid UTF-8 is skipped, as
//! `config::load` refuses it before parsing).
//!
//! Checked: nothing panics; an error names at least one problem; an accepted configuration
//! written back (`--save`) reads back as the same configuration.

use super::common::{assert_round_trip, parse, touches_devices};
use vpnd::config::Format;

/// Runs one input.
pub fn run(data: &[u8]) {
    let Some((&f, text)) = data.split_first() else {
        return;
    };
    let format = if f % 2 == 0 {
        Format::Yaml
    } else {
        Format::Toml
    };
    let Ok(text) = std::str::from_utf8(text) else {
        return;
    };
    if touches_devices(text) {
        return;
    }
    match parse(text, format) {
        Ok(cfg) => assert_round_trip(&cfg, &text),
        Err(e) => {
            let msg = e.to_string();
            assert!(!msg.is_empty(), "an error without a message");
        }
    }
}

/// Configurations of both syntaxes: complete, minimal, and with typical mistakes.
pub fn seeds() -> Vec<Vec<u8>> {
    let yaml: &[&str] = &[
        "interface:\n  name: vpn0\n  private_key: \"yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=\"\n  listen_port: 51820\n  addresses: [\"10.10.0.1/24\", \"fd10::1/64\"]\n  mtu: 1420\n  rekey_after_bytes: 1048576\n  fwmark: 51820\ncontrol:\n  socket: \"vpn0.sock\"\npeers:\n  - public_key: \"xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=\"\n    name: laptop\n    allowed_ips: [\"10.10.0.2/32\"]\n    endpoint: \"example.com:51820\"\n    persistent_keepalive: 25\n",
        "interface:\n  name: vpn0\n  private_key_file: key\npeers: []\n",
        "interface:\n  name: \"this-name-is-far-too-long\"\n  mtu: 9\npeers:\n  - public_key: short\n    allowed_ips: [\"10.0.0.1/33\"]\n",
        "interface: [1, 2]\n",
        "a: &x [*x]\n",
    ];
    let toml: &[&str] = &[
        "[interface]\nname = \"vpn0\"\nprivate_key = \"yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=\"\naddresses = [\"10.10.0.1/24\"]\n\n[[peers]]\npublic_key = \"xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=\"\nallowed_ips = [\"0.0.0.0/0\"]\nendpoint = \"[2001:db8::1]:51820\"\n",
        "[interface]\nname = 5\n",
    ];
    let mut v = Vec::new();
    for y in yaml {
        let mut s = vec![0u8];
        s.extend_from_slice(y.as_bytes());
        v.push(s);
    }
    for t in toml {
        let mut s = vec![1u8];
        s.extend_from_slice(t.as_bytes());
        v.push(s);
    }
    v
}
