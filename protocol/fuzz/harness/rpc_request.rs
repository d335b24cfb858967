//! The control API's input side: `serde_json` decoding of [`Request`] (and the other message
//! types) from arbitrary bytes, and [`read_message`] line framing over arbitrary streams with
//! small limits and small read buffers.
//!
//! Checked: nothing panics; a decoded request re-encodes and decodes to the same value; framing
//! never returns a frame over its limit or containing a line break, and makes progress.

use super::common::Input;
use protocol::rpc::{read_message, FrameError, Request, Response, ShowResult};
use std::io::BufReader;

/// Runs one input: a limit byte, a read-buffer size byte, then the stream.
pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let max = usize::from(input.u8() % 64);
    let capacity = usize::from(input.u8() % 16) + 1;
    let stream = input.rest();

    decode(stream);

    let mut reader = BufReader::with_capacity(capacity, stream);
    let mut buf = Vec::new();
    let mut frames = 0usize;
    loop {
        match read_message(&mut reader, &mut buf, max) {
            Ok(true) => {
                assert!(buf.len() <= max, "frame of {} over limit {max}", buf.len());
                assert!(!buf.contains(&b'\n'));
                frames += 1;
                // Each frame but an unterminated last one consumed a line break.
                assert!(frames <= stream.len() + 1, "no progress");
                decode(&buf);
            }
            Ok(false) => {
                assert!(buf.is_empty());
                break;
            }
            Err(FrameError::TooLarge(n)) => {
                assert_eq!(n, max);
                break;
            }
            Err(FrameError::Io(e)) => panic!("a byte slice cannot fail to read: {e}"),
        }
    }
}

fn decode(bytes: &[u8]) {
    if let Ok(req) = serde_json::from_slice::<Request>(bytes) {
        let again = serde_json::to_vec(&req).expect("a decoded request encodes");
        let back: Request = serde_json::from_slice(&again).expect("an encoded request decodes");
        assert_eq!(back, req);
    }
    if let Ok(resp) = serde_json::from_slice::<Response>(bytes) {
        let _ = serde_json::to_string(&resp);
    }
    let _ = serde_json::from_slice::<ShowResult>(bytes);
}

/// Requests of every shape the daemon sees, framed and unframed.
pub fn seeds() -> Vec<Vec<u8>> {
    let lines: &[&[u8]] = &[
        br#"{"jsonrpc":"2.0","method":"show","id":1}"#,
        br#"{"jsonrpc":"2.0","method":"set_peer","params":{"public_key":"AAAA","allowed_ips":["10.0.0.0/24"]},"id":"x"}"#,
        br#"{"jsonrpc":"2.0","method":"ping"}"#,
        br#"{"jsonrpc":"2.0","result":{"ok":true},"id":null}"#,
        br#"{"jsonrpc":"2.0","error":{"code":-32601,"message":"no"},"id":2}"#,
        br#"[1,2,{"a":[1.5e300,-0.0,"\u00e9"]}]"#,
    ];
    let mut v = Vec::new();
    for line in lines {
        let mut s = vec![63, 4];
        s.extend_from_slice(line);
        v.push(s);
        let mut framed = vec![40, 1];
        framed.extend_from_slice(line);
        framed.extend_from_slice(b"\n{\"jsonrpc\":\"2.0\",\"method\":\"a\"}\n\n");
        v.push(framed);
    }
    v
}
