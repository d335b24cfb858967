//! Writing a [`WgConfig`] as vpnd's YAML.
//!
//! The control tool does not link the daemon, so this is its own small writer, made safe the
//! same way as the daemon's: every string is double-quoted (no value can be misread as another
//! type, and `[fd00::1]:51820` cannot start a list), numbers are written as numbers.

use super::{Peer, WgConfig};
use std::fmt::Write as _;
use zeroize::Zeroizing;

/// The YAML for `config` as interface `name`, converted from `source`.
pub(super) fn to_yaml(config: &WgConfig, name: &str, source: &str) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::new());
    let _ = writeln!(
        out,
        "# vpnd configuration converted from {} by `vpnctl import`",
        comment(source)
    );
    let i = &config.interface;
    out.push_str("interface:\n");
    field(&mut out, "  ", "name", &quote(name));
    field(&mut out, "  ", "private_key", &quote(&i.private_key));
    if let Some(port) = i.listen_port {
        field(&mut out, "  ", "listen_port", &port.to_string());
    }
    field(&mut out, "  ", "addresses", &list(&i.addresses));
    if let Some(mtu) = i.mtu {
        field(&mut out, "  ", "mtu", &mtu.to_string());
    }
    if let Some(mark) = i.fwmark {
        field(&mut out, "  ", "fwmark", &mark.to_string());
    }
    if config.peers.is_empty() {
        out.push_str("peers: []\n");
    } else {
        out.push_str("peers:\n");
        for peer in &config.peers {
            write_peer(&mut out, peer);
        }
    }
    out
}

fn write_peer(out: &mut String, peer: &Peer) {
    field(out, "  - ", "public_key", &quote(&peer.public_key));
    if let Some(psk) = &peer.preshared_key {
        field(out, "    ", "preshared_key", &quote(psk));
    }
    field(out, "    ", "allowed_ips", &list(&peer.allowed_ips));
    if let Some(endpoint) = &peer.endpoint {
        field(out, "    ", "endpoint", &quote(endpoint));
    }
    if let Some(secs) = peer.persistent_keepalive {
        field(out, "    ", "persistent_keepalive", &secs.to_string());
    }
}

fn field(out: &mut String, indent: &str, key: &str, value: &str) {
    let _ = writeln!(out, "{indent}{key}: {value}");
}

fn list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| quote(s)).collect();
    format!("[{}]", quoted.join(", "))
}

/// A YAML double-quoted scalar.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}') => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `s` made safe for a one-line comment: control characters (a newline would end the comment
/// and start YAML) become `?`.
fn comment(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{comment, quote};

    #[test]
    fn quotes_what_could_confuse_yaml() {
        assert_eq!(quote("[fd00::1]:51820"), "\"[fd00::1]:51820\"");
        assert_eq!(quote("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(quote("a\nb"), "\"a\\u000ab\"");
        assert_eq!(comment("x\ny: 1.conf"), "x?y: 1.conf");
    }
}
