//! `Message::parse` on arbitrary bytes, every accessor of the views it returns, and the other
//! parsers of untrusted bytes next to it: the inner-packet length of a decrypted payload and the
//! transport header writer.
//!
//! Checked: a successful parse has exactly the length its type requires; the accessors read the
//! fields at their documented offsets; re-writing a transport header reproduces the bytes.

use protocol::noise::keypair::inner_packet_len;
use protocol::noise::messages::{
    mac1_offset, mac2_offset, write_transport_header, Message, ParseError, COOKIE_REPLY_LEN,
    INITIATION_LEN, RESPONSE_LEN, TRANSPORT_HEADER_LEN, TRANSPORT_MAX_LEN, TRANSPORT_MIN_LEN,
};

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

/// Runs one input.
pub fn run(data: &[u8]) {
    match Message::parse(data) {
        Ok(Message::Initiation(m)) => {
            assert_eq!(data.len(), INITIATION_LEN);
            assert_eq!(m.bytes(), data);
            assert_eq!(m.sender(), le32(data, 4));
            assert_eq!(&m.ephemeral()[..], &data[8..40]);
            assert_eq!(&m.encrypted_static()[..], &data[40..88]);
            assert_eq!(&m.encrypted_timestamp()[..], &data[88..116]);
            assert_eq!(mac1_offset(data.len()), 116);
            assert_eq!(mac2_offset(data.len()), 132);
            let _ = format!("{m:?}");
        }
        Ok(Message::Response(m)) => {
            assert_eq!(data.len(), RESPONSE_LEN);
            assert_eq!(m.bytes(), data);
            assert_eq!(m.sender(), le32(data, 4));
            assert_eq!(m.receiver(), le32(data, 8));
            assert_eq!(&m.ephemeral()[..], &data[12..44]);
            assert_eq!(&m.encrypted_nothing()[..], &data[44..60]);
            assert_eq!(mac1_offset(data.len()), 60);
            assert_eq!(mac2_offset(data.len()), 76);
            let _ = format!("{m:?}");
        }
        Ok(Message::CookieReply(m)) => {
            assert_eq!(data.len(), COOKIE_REPLY_LEN);
            assert_eq!(m.receiver(), le32(data, 4));
            assert_eq!(&m.nonce()[..], &data[8..32]);
            assert_eq!(&m.encrypted_cookie()[..], &data[32..64]);
            let _ = format!("{m:?}");
        }
        Ok(Message::Transport(m)) => {
            assert!((TRANSPORT_MIN_LEN..=TRANSPORT_MAX_LEN).contains(&data.len()));
            assert_eq!(m.bytes(), data);
            assert_eq!(m.receiver(), le32(data, 4));
            assert_eq!(
                m.counter(),
                u64::from_le_bytes(data[8..16].try_into().expect("8 bytes"))
            );
            assert_eq!(m.sealed(), &data[TRANSPORT_HEADER_LEN..]);
            let mut copy = data.to_vec();
            write_transport_header(&mut copy, m.receiver(), m.counter());
            assert_eq!(copy, data);
            let _ = format!("{m:?}");
            let _ = inner_packet_len(m.sealed());
        }
        Err(e) => {
            match e {
                ParseError::TooShort(n) => assert!(n < 4 && n == data.len()),
                ParseError::UnknownType(t) => assert!(!(1..=4).contains(&t)),
                ParseError::WrongLength { kind, len } => {
                    assert!((1..=4).contains(&kind));
                    assert_eq!(len, data.len());
                }
            }
            let _ = e.to_string();
        }
    }
    // The payload parser sees whatever a peer encrypted: any bytes at all.
    if let Some(n) = inner_packet_len(data) {
        assert!(n >= 20 && n <= data.len());
    }
}

/// One message of each type, and a few near misses.
pub fn seeds() -> Vec<Vec<u8>> {
    let mut v = Vec::new();
    for (kind, len) in [
        (1u8, INITIATION_LEN),
        (2, RESPONSE_LEN),
        (3, COOKIE_REPLY_LEN),
    ] {
        let mut m = vec![0u8; len];
        m[0] = kind;
        v.push(m.clone());
        m.pop();
        v.push(m);
    }
    let mut t = vec![0u8; 64];
    write_transport_header(&mut t, 7, 9);
    v.push(t.clone());
    t.truncate(TRANSPORT_MIN_LEN);
    v.push(t);
    let mut ip = vec![0u8; 40];
    ip[0] = 0x45;
    ip[3] = 40;
    v.push(ip);
    let mut ip6 = vec![0u8; 48];
    ip6[0] = 0x60;
    ip6[5] = 8;
    v.push(ip6);
    v.push(vec![5, 0, 0, 0]);
    v.push(vec![1, 0]);
    v
}
