//! WireGuard's UAPI without a daemon: its framing (`uapi::server::read_request`, several
//! requests per connection, arbitrary read-buffer sizes), `set` bodies (`uapi::parse`) and
//! applying them to a configuration (`uapi::edit::apply_set`), then the runtime check
//! (`reconfig::check`) the daemon applies.
//!
//! Input: a base-configuration byte, a read-buffer size byte, then the stream.
//!
//! Checked: nothing panics; a refused body names its line; an applied `set` never makes our
//! own key a peer nor gives one prefix to two peers; a result the runtime check accepts is
//! saved in a form that reads back the same.

use super::common::{assert_round_trip, base, block_on};
use std::collections::HashSet;
use vpnd::uapi::edit::apply_set;
use vpnd::uapi::parse::parse_set;
use vpnd::uapi::server::{read_request, Request};

/// Runs one input.
pub fn run(data: &[u8]) {
    let (b, rest) = data.split_first().unwrap_or((&0, &[]));
    let (c, stream) = rest.split_first().unwrap_or((&0, &[]));
    let mut current = base(*b).clone();
    let mut reader = tokio::io::BufReader::with_capacity(usize::from(c % 16) + 1, stream);
    for _ in 0..=stream.len() {
        match block_on(read_request(&mut reader)) {
            Ok(Request::Eof) | Ok(Request::UnknownOperation) | Ok(Request::TooLarge) => return,
            Ok(Request::Malformed(why)) => {
                assert!(!why.is_empty());
                return;
            }
            Ok(Request::Get) => {}
            Ok(Request::Set(body)) => {
                if let Some(next) = set(&current, &body) {
                    current = next;
                }
            }
            Err(e) => panic!("reading a byte slice failed: {e}"),
        }
    }
    panic!("framing made no progress");
}

/// Applies one body as the daemon would; the new configuration if the runtime check accepts
/// it (later requests on the connection then start from it).
fn set(current: &vpnd::config::Config, body: &str) -> Option<vpnd::config::Config> {
    let req = match parse_set(body.split('\n')) {
        Ok(r) => r,
        Err(e) => {
            assert!(e.line >= 1 && !e.message.is_empty(), "{e:?}");
            return None;
        }
    };
    let new = apply_set(current, &req);
    let own = new.interface.public_key();
    assert!(
        new.peers.iter().all(|p| Some(p.public_key) != own),
        "our own key became a peer: {body:?}"
    );
    let mut seen = HashSet::new();
    for p in &new.peers {
        for a in &p.allowed_ips {
            assert!(
                seen.insert(a.masked()),
                "{a} belongs to two peers: {body:?}"
            );
        }
    }
    if vpnd::reconfig::check(current, &new).is_ok() {
        assert_round_trip(&new, &body);
        Some(new)
    } else {
        None
    }
}

fn hex(b: u8) -> String {
    format!("{b:02x}").repeat(32)
}

/// `get` and `set` requests as `wg` sends them, and broken framing.
pub fn seeds() -> Vec<Vec<u8>> {
    let (k1, k2, k3) = (hex(1), hex(2), hex(3));
    let bodies = [
        "get=1\n\n".to_string(),
        format!(
            "set=1\nprivate_key={k1}\nlisten_port=51820\nfwmark=0\nreplace_peers=true\n\
             public_key={k2}\npreshared_key={k3}\nendpoint=192.0.2.1:51820\n\
             persistent_keepalive_interval=25\nreplace_allowed_ips=true\n\
             allowed_ip=10.0.0.0/8\nallowed_ip=fd00::/64\nprotocol_version=1\n\n"
        ),
        format!("set=1\npublic_key={k2}\nremove=true\n\nget=1\n\n"),
        format!("set=1\npublic_key={k3}\nupdate_only=true\nallowed_ip=0.0.0.0/0\n\n"),
        "set=1\nprivate_key=zz\n\n".to_string(),
        "get=1\nextra\n".to_string(),
        "nope=1\n\n".to_string(),
    ];
    bodies
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let mut s = vec![(i % 3) as u8, (i * 5) as u8];
            s.extend_from_slice(b.as_bytes());
            s
        })
        .collect()
}
