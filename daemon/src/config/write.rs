//! Writing a [`Config`] back as YAML or TOML that [`super::parse_str`] reads to an equal
//! configuration.
//!
//! Every string is double-quoted, so no value can be misread as another type (`yes`, `0x10`,
//! `null`) or break the document.

use super::{Config, PeerConfig};
use std::fmt::Write as _;
use std::path::Path;

pub(super) fn to_yaml(config: &Config) -> String {
    let mut out = String::from("# vpnd configuration\n");
    let i = &config.interface;
    out.push_str("interface:\n");
    field(&mut out, 2, "name", &quote(&i.name));
    // A configuration without a private key (one built through the UAPI) cannot be loaded
    // again until a key is added: the file loader requires one.
    match (&i.private_key_file, &i.private_key) {
        (Some(file), _) => field(&mut out, 2, "private_key_file", &quote_path(file)),
        (None, Some(key)) => field(&mut out, 2, "private_key", &quote(&key.to_base64())),
        (None, None) => {}
    }
    if let Some(port) = i.listen_port {
        field(&mut out, 2, "listen_port", &port.to_string());
    }
    field(&mut out, 2, "addresses", &list(&i.addresses));
    field(&mut out, 2, "mtu", &i.mtu.to_string());
    field(
        &mut out,
        2,
        "rekey_after_bytes",
        &i.rekey_after_bytes.to_string(),
    );
    if let Some(mark) = i.fwmark {
        field(&mut out, 2, "fwmark", &mark.to_string());
    }

    out.push_str("control:\n");
    field(&mut out, 2, "socket", &quote_path(&config.control.socket));
    if let Some(group) = &config.control.group {
        field(&mut out, 2, "group", &quote(group));
    }

    let nat = &config.nat;
    if !nat.hubs.is_empty() {
        out.push_str("hubs:\n");
        for hub in &nat.hubs {
            let _ = writeln!(out, "  - address: {}", quote(&hub.address.to_string()));
            field(
                &mut out,
                4,
                "public_key",
                &quote(&hub.public_key.to_base64()),
            );
        }
    }
    if !nat.stun_servers.is_empty() {
        field(&mut out, 0, "stun_servers", &list(&nat.stun_servers));
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

/// The configuration as TOML (the same fields and defaults as [`to_yaml`]).
pub(super) fn to_toml(config: &Config) -> String {
    let mut out = String::from("# vpnd configuration\n");
    // A top-level key must come before the first table.
    if config.peers.is_empty() {
        out.push_str("peers = []\n");
    }
    if !config.nat.stun_servers.is_empty() {
        tfield(&mut out, "stun_servers", &list(&config.nat.stun_servers));
    }
    let i = &config.interface;
    out.push_str("\n[interface]\n");
    tfield(&mut out, "name", &quote(&i.name));
    match (&i.private_key_file, &i.private_key) {
        (Some(file), _) => tfield(&mut out, "private_key_file", &quote_path(file)),
        (None, Some(key)) => tfield(&mut out, "private_key", &quote(&key.to_base64())),
        (None, None) => {}
    }
    if let Some(port) = i.listen_port {
        tfield(&mut out, "listen_port", &port.to_string());
    }
    tfield(&mut out, "addresses", &list(&i.addresses));
    tfield(&mut out, "mtu", &i.mtu.to_string());
    tfield(
        &mut out,
        "rekey_after_bytes",
        &i.rekey_after_bytes.to_string(),
    );
    if let Some(mark) = i.fwmark {
        tfield(&mut out, "fwmark", &mark.to_string());
    }
    out.push_str("\n[control]\n");
    tfield(&mut out, "socket", &quote_path(&config.control.socket));
    if let Some(group) = &config.control.group {
        tfield(&mut out, "group", &quote(group));
    }
    for hub in &config.nat.hubs {
        out.push_str("\n[[hubs]]\n");
        tfield(&mut out, "address", &quote(&hub.address.to_string()));
        tfield(&mut out, "public_key", &quote(&hub.public_key.to_base64()));
    }
    for peer in &config.peers {
        out.push_str("\n[[peers]]\n");
        for (key, value) in peer_fields(peer) {
            tfield(&mut out, key, &value);
        }
    }
    out
}

fn tfield(out: &mut String, key: &str, value: &str) {
    let _ = writeln!(out, "{key} = {value}");
}

/// A peer's fields in the order both formats write them; values already quoted. The quoting
/// of [`quote`] is valid in both YAML and TOML basic strings (`\"`, `\\`, `\uXXXX`).
fn peer_fields(peer: &PeerConfig) -> Vec<(&'static str, String)> {
    let mut fields: Vec<(&str, String)> = Vec::new();
    if let Some(name) = &peer.name {
        fields.push(("name", quote(name)));
    }
    fields.push(("public_key", quote(&peer.public_key.to_base64())));
    match (&peer.preshared_key_file, &peer.preshared_key) {
        (Some(file), _) => fields.push(("preshared_key_file", quote_path(file))),
        (None, Some(key)) => fields.push(("preshared_key", quote(&key.to_base64()))),
        (None, None) => {}
    }
    fields.push(("allowed_ips", list(&peer.allowed_ips)));
    if let Some(endpoint) = &peer.endpoint {
        fields.push(("endpoint", quote(&endpoint.to_string())));
    }
    if let Some(secs) = peer.persistent_keepalive {
        fields.push(("persistent_keepalive", secs.to_string()));
    }
    fields
}

fn write_peer(out: &mut String, peer: &PeerConfig) {
    // The first field goes after the `- ` that opens the list entry.
    for (n, (key, value)) in peer_fields(peer).iter().enumerate() {
        out.push_str(if n == 0 { "  - " } else { "    " });
        let _ = writeln!(out, "{key}: {value}");
    }
}

fn field(out: &mut String, indent: usize, key: &str, value: &str) {
    let _ = writeln!(out, "{:indent$}{key}: {value}", "");
}

fn list<T: ToString>(items: &[T]) -> String {
    let quoted: Vec<String> = items.iter().map(|i| quote(&i.to_string())).collect();
    format!("[{}]", quoted.join(", "))
}

fn quote_path(p: &Path) -> String {
    quote(&p.to_string_lossy())
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

#[cfg(test)]
mod tests {
    use super::quote;

    #[test]
    fn quotes_everything_that_could_confuse_yaml() {
        assert_eq!(quote("vpn0"), "\"vpn0\"");
        assert_eq!(quote("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(quote("a\nb\0"), "\"a\\u000ab\\u0000\"");
    }
}
