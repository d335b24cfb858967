//! `hub::messages::Message::parse` and `hub::relay::parse` on arbitrary bytes.
//!
//! Checked: a successful parse has exactly the length its type and length fields require, and
//! re-encoding the parsed message reproduces the input byte for byte (one encoding per message).
//! A relay frame that parses has a channel other than 0, a WireGuard payload, and its header
//! re-written gives the same bytes.

use protocol::hub::messages::{Candidates, Message, MAGIC, MAX_MESSAGE_LEN, VERSION};
use protocol::hub::relay;
use protocol::nat::demux::{classify, Kind};

/// Runs one input.
pub fn run(data: &[u8]) {
    if let Ok((channel, payload)) = relay::parse(data) {
        assert_ne!(channel, 0);
        assert_eq!(classify(payload), Kind::WireGuard);
        let mut h = [0u8; relay::RELAY_HEADER_LEN];
        relay::write_header(channel, &mut h);
        assert_eq!(&data[..relay::RELAY_HEADER_LEN], &h);
        assert!(data.len() <= relay::MAX_RELAY_FRAME);
    }
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
        Message::RelayOpen { peer: [7; 32] },
        Message::Unregistered,
        Message::RelayReady {
            peer: [7; 32],
            channel: 0x0102_0304,
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
    let mut frame = vec![0u8; relay::RELAY_HEADER_LEN];
    frame[..4].copy_from_slice(&protocol::nat::demux::RELAY_MAGIC);
    frame[7] = 9;
    frame.extend_from_slice(&[4, 0, 0, 0]);
    frame.extend_from_slice(&[0; 28]);
    v.push(frame);
    v
}
