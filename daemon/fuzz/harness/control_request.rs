//! The JSON-RPC control socket without a daemon: its framing (`control::server::read_limited`
//! over arbitrary streams and read-buffer sizes), request decoding (`methods::parse_request`)
//! and the parameters of every mutating method (`methods::plan_change` against a base
//! configuration), then the runtime check (`reconfig::check`) the daemon applies.
//!
//! Input: a base-configuration byte, a read-buffer size byte, then the stream of request lines.
//!
//! Checked: nothing panics; framing returns lines without `\n` within the size limit and makes
//! progress; a refused line is answered with an error; a planned change adds, removes or keeps
//! exactly the peers its method says; a change the runtime check accepts is saved in a form
//! that reads back the same.

use super::common::{assert_round_trip, base, block_on};
use protocol::rpc::MAX_MESSAGE_SIZE;
use vpnd::control::methods::{parse_request, plan_change};
use vpnd::control::server::{read_limited, ReadOutcome};

/// Runs one input.
pub fn run(data: &[u8]) {
    let (b, rest) = data.split_first().unwrap_or((&0, &[]));
    let (c, stream) = rest.split_first().unwrap_or((&0, &[]));
    let current = base(*b);
    let mut reader = tokio::io::BufReader::with_capacity(usize::from(c % 16) + 1, stream);
    let mut line = Vec::new();
    for _ in 0..=stream.len() {
        line.clear();
        match block_on(read_limited(&mut reader, &mut line)) {
            Ok(ReadOutcome::Line) => {
                assert!(line.len() <= MAX_MESSAGE_SIZE && !line.contains(&b'\n'));
                handle(current, &line);
            }
            Ok(ReadOutcome::Eof) | Ok(ReadOutcome::TooLarge) => return,
            Err(e) => panic!("reading a byte slice failed: {e}"),
        }
    }
    panic!("framing made no progress");
}

fn handle(current: &vpnd::config::Config, line: &[u8]) {
    let req = match parse_request(line) {
        Ok(r) => r,
        Err(resp) => {
            assert!(
                resp.error.is_some(),
                "a refused line gets an error: {resp:?}"
            );
            serde_json::to_vec(&*resp).expect("a response encodes");
            return;
        }
    };
    let method = req.method.clone();
    match plan_change(current, &method, req.params) {
        Ok(Some(planned)) => {
            let (old, new) = (current.peers.len(), planned.config.peers.len());
            match method.as_str() {
                "peer.add" => assert_eq!(new, old + 1),
                "peer.remove" => assert_eq!(new + 1, old),
                "peer.update" | "interface.set" => assert_eq!(new, old),
                other => panic!("{other} planned a change"),
            }
            if vpnd::reconfig::check(current, &planned.config).is_ok() {
                assert_round_trip(&planned.config, &String::from_utf8_lossy(line));
            }
        }
        Ok(None) => assert!(
            !matches!(
                method.as_str(),
                "peer.add" | "peer.update" | "peer.remove" | "interface.set"
            ),
            "{method} planned nothing"
        ),
        Err(e) => assert!(!e.message.is_empty(), "an error without a message"),
    }
}

/// Requests for every method, valid and not, framed as a client sends them.
pub fn seeds() -> Vec<Vec<u8>> {
    let lines: &[&str] = &[
        r#"{"jsonrpc":"2.0","method":"show","id":1}"#,
        r#"{"jsonrpc":"2.0","method":"peer.add","params":{"public_key":"HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw=","allowed_ips":["10.30.0.0/24","fd30::/64"],"endpoint":"vpn.example.com:51820","persistent_keepalive":25,"name":"new","save":true},"id":2}"#,
        r#"{"jsonrpc":"2.0","method":"peer.update","params":{"peer":"laptop","allowed_ips":["10.10.0.9/32"],"endpoint":"","preshared_key":"FpCyhws9cxwWoV4xELtfJvjJN+zQVRPISllRWgeopVE=","name":"renamed"},"id":3}"#,
        r#"{"jsonrpc":"2.0","method":"peer.remove","params":{"peer":"office"},"id":"x"}"#,
        r#"{"jsonrpc":"2.0","method":"interface.set","params":{"listen_port":0,"mtu":1280,"addresses":["10.10.0.1/24"],"private_key":"CPfnbEXb8uRRIlKpfZR0jx6yTfA2WiOCFN7VvRXTXHk="},"id":null}"#,
        r#"{"jsonrpc":"2.0","method":"peer.add","params":{"public_key":"short","allowed_ips":["10.0.0.0/33"]},"id":4}"#,
        r#"{"jsonrpc":"2.0","method":"peer.update","params":[1,2],"id":5}"#,
        r#"{"jsonrpc":"1.0","method":"reload"}"#,
        r#"{"method":7}"#,
        "not json",
    ];
    let mut v = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let mut s = vec![(i % 3) as u8, 15];
        s.extend_from_slice(l.as_bytes());
        s.push(b'\n');
        v.push(s);
    }
    let mut all = vec![0u8, 3];
    for l in lines {
        all.extend_from_slice(l.as_bytes());
        all.extend_from_slice(b"\n\n");
    }
    v.push(all);
    v
}
