//! Mistakes the parsers report in their own terms, recognised in the text so the message can
//! say what to do instead: a bracketed IPv6 endpoint without quotes, and a wg-quick file given
//! in place of a vpnd configuration.

use super::error::{Problem, ProblemKind};
use super::Format;
use config::{Value, ValueKind};
use std::path::Path;

/// wg-quick's keys that vpnd's format does not share (lower-cased), so a TOML file of vpnd's own
/// (`[interface]`, `private_key = ...`) is never taken for one.
const WG_QUICK_KEYS: &[&str] = &[
    "privatekey",
    "publickey",
    "presharedkey",
    "listenport",
    "address",
    "allowedips",
    "persistentkeepalive",
    "dns",
    "table",
    "saveconfig",
    "preup",
    "postup",
    "predown",
    "postdown",
];

/// If `text` is a wg-quick (INI) file, the problem that says so and how to convert it. `origin`
/// is the file as the user named it. wg-quick files open with an `[Interface]` or `[Peer]`
/// section and use keys such as `PrivateKey = ...`; vpnd's YAML cannot start with a section
/// header, and its TOML uses lower-case sections and `snake_case` keys.
pub(super) fn wg_quick(text: &str, origin: &str) -> Option<Problem> {
    let mut lines = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with(';'));
    let first = lines.next()?;
    let opens_section = ["[interface]", "[peer]"]
        .iter()
        .any(|h| first.eq_ignore_ascii_case(h));
    let wg_key = || {
        text.lines().any(|l| {
            l.split_once('=').is_some_and(|(key, _)| {
                let key = key.trim().to_ascii_lowercase();
                WG_QUICK_KEYS.contains(&key.as_str())
            })
        })
    };
    if !opens_section || !wg_key() {
        return None;
    }
    let path = Path::new(origin);
    let mut yaml = path.with_extension("yaml");
    if yaml == path {
        yaml = path.with_extension("vpnd.yaml");
    }
    Some(Problem::new(
        "",
        ProblemKind::WgQuick {
            file: origin.to_string(),
            yaml: yaml.display().to_string(),
        },
    ))
}

/// Every value in `text` that looks like a bracketed address with a port (`[fd77::1]:51820`)
/// written without quotes, as a problem saying how to quote it. Called after a syntax error:
/// YAML reads such a value as a list followed by junk, which its parser reports as "did not
/// find expected key" a line away from the cause.
pub(super) fn unquoted_brackets(text: &str, format: Format) -> Vec<Problem> {
    let sep = match format {
        Format::Yaml => ':',
        Format::Toml => '=',
    };
    text.lines()
        .enumerate()
        .filter_map(|(i, line)| {
            let line = line.trim_start();
            let line = line.strip_prefix("- ").unwrap_or(line).trim_start();
            let (key, value) = line.split_once(sep)?;
            let key = key.trim();
            let value = value.split(" #").next().unwrap_or(value).trim();
            let is_key = !key.is_empty()
                && key
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            (is_key && bracketed_with_port(value)).then(|| {
                Problem::new(
                    "",
                    ProblemKind::Unquoted {
                        line: i + 1,
                        key: key.to_string(),
                        value: value.to_string(),
                        toml: format == Format::Toml,
                    },
                )
            })
        })
        .collect()
}

/// The address of an `endpoint: [fd77::1]` written without quotes (and without a port), which
/// YAML reads as a list of one string, if the peer entry `peer` has one.
pub(super) fn listed_endpoint(peer: &Value) -> Option<String> {
    let ValueKind::Table(fields) = &peer.kind else {
        return None;
    };
    match &fields.get("endpoint")?.kind {
        ValueKind::Array(items) => match items.as_slice() {
            [Value {
                kind: ValueKind::String(address),
                ..
            }] if address.contains(':') => Some(address.clone()),
            _ => None,
        },
        _ => None,
    }
}

/// Adds to the "expected a string, found a list" reported at `at` (the endpoint field) how to
/// write an IPv6 endpoint for `address`.
pub(super) fn quote_listed_endpoint(problems: &mut [Problem], at: &str, address: &str) {
    for p in problems.iter_mut().filter(|p| p.path == at) {
        if let ProblemKind::WrongType(text) = &mut p.kind {
            text.push_str(&format!(
                "; an IPv6 endpoint is written in brackets with its port, in quotes: \
                 `endpoint: \"[{address}]:51820\"`"
            ));
        }
    }
}

/// `[address]:port` with an IPv6-looking address (it has a `:`).
fn bracketed_with_port(value: &str) -> bool {
    let Some(rest) = value.strip_prefix('[') else {
        return false;
    };
    let Some((addr, port)) = rest.split_once("]:") else {
        return false;
    };
    // Hex digits, `:` and `.`, and a zone such as `%eth0`.
    addr.contains(':')
        && addr
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '.' | '%' | '_' | '-'))
        && !port.is_empty()
        && port.chars().all(|c| c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_unquoted_ipv6_endpoints() {
        let text = "peers:\n  - endpoint: [fd77::1]:51820 # home\n    x: \"[fd77::2]:1\"\n  \
                    - allowed_ips: [fd00::1/128]\n    endpoint: [fe80::1%eth0]:7\n";
        let found: Vec<String> = unquoted_brackets(text, Format::Yaml)
            .iter()
            .map(|p| p.to_string())
            .collect();
        assert_eq!(
            found,
            [
                "line 2: quote it: `endpoint: \"[fd77::1]:51820\"` (unquoted, YAML reads `[...]` \
                 as a list)",
                "line 5: quote it: `endpoint: \"[fe80::1%eth0]:7\"` (unquoted, YAML reads `[...]` \
                 as a list)"
            ]
        );
        let toml = unquoted_brackets("endpoint = [fd77::1]:51820\n", Format::Toml);
        assert_eq!(
            toml[0].to_string(),
            "line 1: quote it: `endpoint = \"[fd77::1]:51820\"` (TOML strings are always quoted)"
        );
        assert!(unquoted_brackets("a: [1, 2]\nb: [10.0.0.1]:5\n", Format::Yaml).is_empty());
    }

    #[test]
    fn recognises_wg_quick_files_only() {
        let wg = "# wg0\n[Interface]\nPrivateKey = abc\nAddress = 10.0.0.1/24\n\n[Peer]\n\
                  PublicKey = def\nAllowedIPs = 0.0.0.0/0\n";
        let p = wg_quick(wg, "/etc/wireguard/wg0.conf").expect("a wg-quick file");
        assert_eq!(
            p.to_string(),
            "this looks like a wg-quick file ([Interface], PrivateKey = ...), not a vpnd \
             configuration; convert it with `vpnctl import /etc/wireguard/wg0.conf -o \
             /etc/wireguard/wg0.yaml`"
        );
        let odd = wg_quick("[Peer]\npublickey=x\n", "wg.yaml").unwrap();
        assert!(odd.to_string().ends_with("-o wg.vpnd.yaml`"), "{odd}");
        // vpnd's own TOML, and YAML, are not.
        assert!(wg_quick(
            "[interface]\nname = \"vpn0\"\nprivate_key = \"k\"\n",
            "v.toml"
        )
        .is_none());
        assert!(wg_quick("interface:\n  private_key: k\n", "v.yaml").is_none());
        assert!(wg_quick("", "v.yaml").is_none());
    }
}
