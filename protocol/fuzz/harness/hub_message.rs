//! `hub::messages::Message::parse` on arbitrary bytes.
//!
//! Checked: a successful parse has exactly the length its type and length fields require, and
//! re-encoding the parsed message reproduces the input byte for byte (one encoding per message).

use protocol::hub::messages::{Candidates, Message, MAGIC, MAX_MESSAGE_LEN, VERSION};

/// Runs one input.
pub fn run(data: &[u8]) {
    if let Ok(m) = Message::parse(data) {
        assert_eq!(m.encoded_len(), data.len());
        let mut out = [0u8; MAX_MESSAGE_LEN];
        let n = m.encode(&mut out).expect("a parsed message re-encodes");
        assert_eq!(&out[..n], data);
        let _ = format!("{m:?}");
    }
}

/// One valid message of several types.
pub fn seeds() -> Vec<Vec<u8>> {
    let msgs = [
        Message::Hello { peer: [1; 32] },
        Message::Challenge { nonce: [2; 16] },
        Message::Register {
            peer: [1; 32],
            nonce: [2; 16],
            proof: [3; 16],
            candidates: Candidates::from_slice(&["10.0.0.1:51820".parse().expect("addr")]),
        },
        Message::Signal {
            to: [4; 32],
            from: [5; 32],
            envelope: &[6; 60],
        },
    ];
    let mut v: Vec<Vec<u8>> = msgs
        .iter()
        .map(|m| {
            let mut out = vec![0u8; MAX_MESSAGE_LEN];
            let n = m.encode(&mut out).expect("encode");
            out.truncate(n);
            out
        })
        .collect();
    let mut hdr = MAGIC.to_vec();
    hdr.extend_from_slice(&[VERSION, 6]);
    v.push(hdr);
    v
}
