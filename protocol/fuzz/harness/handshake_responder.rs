//! A responder [`Device`] with a known identity and one peer, fed one arbitrary datagram from
//! an arbitrary source address, with or without load.
//!
//! Input: a flags byte, the source address, an output-buffer size, then the datagram. Because a
//! fuzzer cannot forge BLAKE2s or an AEAD tag, flags can ask the harness to
//!
//! - fill in a valid mac1 (and, under load, first fetch a cookie reply and fill in a valid
//!   mac2), so the bytes reach the handshake code instead of dying at the mac check; and
//! - use the bytes as an XOR mask over a genuine initiation from the configured peer, so single
//!   bit flips of a real message are explored.
//!
//! Checked: nothing panics; whatever the device sends back parses as the message it should be.

use super::common::{self, Input};
use protocol::noise::cookie::CookieGenerator;
use protocol::noise::device::{Device, Incoming};
use protocol::noise::messages::{Message, INITIATION_LEN, RESPONSE_LEN};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const UNDER_LOAD: u8 = 1;
const FIX_MACS: u8 = 1 << 1;
const FROM_VALID: u8 = 1 << 2;
const PEER_ENDPOINT: u8 = 1 << 3;
const SMALL_OUT: u8 = 1 << 4;
const PSK: u8 = 1 << 5;
const TWICE: u8 = 1 << 6;
const LATER: u8 = 1 << 7;

/// A genuine initiation from the configured peer, as its own device sends it.
pub fn genuine_initiation(psk: Option<[u8; 32]>, now: Instant) -> Vec<u8> {
    let (mut init, id) = common::device(
        common::INITIATOR_KEY,
        common::responder_public(),
        Some(common::responder_addr()),
        psk,
        0x44,
    );
    let packet = common::ipv4_packet([10, 0, 0, 2], 60, 0);
    let mut out = vec![0u8; 2048];
    let _ = init.encapsulate(id, &packet, &mut out, now);
    while let Some(t) = init.poll_transmit() {
        if t.payload.len() == INITIATION_LEN {
            return t.payload;
        }
    }
    unreachable!("a peer with an endpoint sends an initiation for queued data")
}

/// Drains the device, checking that what it sends is well formed.
pub fn drain(dev: &mut Device) {
    while let Some(t) = dev.poll_transmit() {
        assert!(
            Message::parse(&t.payload).is_ok(),
            "device sent a malformed message of {} bytes",
            t.payload.len()
        );
    }
    while dev.poll_event().is_some() {}
}

/// Makes mac1 (and mac2 when a cookie is held) valid for the responder.
fn fix_macs(msg: &mut [u8], gen: &mut CookieGenerator, now: Instant) {
    if msg.len() == INITIATION_LEN || msg.len() == RESPONSE_LEN {
        gen.add_macs(msg, now);
    }
}

/// Under load, asks the device for a cookie and gives it to `gen`, so the next `fix_macs`
/// produces a valid mac2 for `src`.
fn fetch_cookie(
    dev: &mut Device,
    gen: &mut CookieGenerator,
    msg: &mut [u8],
    src: SocketAddr,
    now: Instant,
) {
    fix_macs(msg, gen, now);
    let mut out = [0u8; 64];
    let r = dev.handle_datagram(src, msg, &mut out, true, now);
    if r != Incoming::Dropped(protocol::noise::device::DropReason::CookieSent) {
        return;
    }
    while let Some(t) = dev.poll_transmit() {
        if let Ok(Message::CookieReply(reply)) = Message::parse(&t.payload) {
            assert!(t.dst == src, "cookie reply to the wrong address");
            assert!(gen.consume_reply(&reply, now), "our own cookie reply");
        }
    }
}

/// Runs one input.
pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let flags = input.u8();
    let src = input.socket_addr();
    let out_len = if flags & SMALL_OUT != 0 {
        usize::from(input.u16() % 2048)
    } else {
        65536
    };
    let now = common::epoch() + Duration::from_millis(u64::from(input.u16()));
    let psk = (flags & PSK != 0).then_some([0x5a; 32]);
    let under_load = flags & UNDER_LOAD != 0;

    let mut datagram = if flags & FROM_VALID != 0 {
        let mut m = genuine_initiation(psk, now);
        for (b, x) in m.iter_mut().zip(input.rest()) {
            *b ^= x;
        }
        m
    } else {
        input.rest().to_vec()
    };

    let endpoint = (flags & PEER_ENDPOINT != 0).then(common::initiator_addr);
    let (mut dev, _) = common::device(
        common::RESPONDER_KEY,
        common::initiator_public(),
        endpoint,
        psk,
        0x77,
    );
    if flags & FIX_MACS != 0 {
        let mut gen = CookieGenerator::new(&common::responder_public());
        if under_load {
            fetch_cookie(&mut dev, &mut gen, &mut datagram.clone(), src, now);
        }
        fix_macs(&mut datagram, &mut gen, now);
    }

    let mut out = vec![0u8; out_len];
    let r = dev.handle_datagram(src, &datagram, &mut out, under_load, now);
    if let Incoming::Data { len, .. } = r {
        assert!(len <= out.len());
    }
    drain(&mut dev);
    if flags & TWICE != 0 {
        let later = if flags & LATER != 0 {
            now + Duration::from_millis(25)
        } else {
            now
        };
        dev.handle_datagram(src, &datagram, &mut out, under_load, later);
        drain(&mut dev);
    }
    dev.handle_timeout(now + Duration::from_secs(6));
    drain(&mut dev);
    let _ = dev.poll_timeout();
}

/// A genuine initiation (with and without valid macs), under load and not, and garbage.
pub fn seeds() -> Vec<Vec<u8>> {
    let mut v = Vec::new();
    for flags in [
        FIX_MACS | FROM_VALID,
        FROM_VALID,
        FIX_MACS | FROM_VALID | UNDER_LOAD,
        FIX_MACS | FROM_VALID | TWICE | LATER | PEER_ENDPOINT,
        FIX_MACS | FROM_VALID | PSK,
    ] {
        // flags, address tag 0 + last octet, port, ms; then an all-zero mask.
        let mut s = vec![flags, 0, 1, 0x20, 0x30, 0, 0];
        s.extend_from_slice(&[0u8; INITIATION_LEN]);
        v.push(s);
    }
    let mut resp = vec![FIX_MACS, 1, 1, 2, 3, 4, 0, 0, 0, 0];
    resp.extend_from_slice(&[2, 0, 0, 0]);
    resp.extend_from_slice(&[0x41; RESPONSE_LEN - 4]);
    v.push(resp);
    let mut transport = vec![0, 2];
    transport.extend_from_slice(&[0xfe; 16]);
    transport.extend_from_slice(&[0, 0, 0, 0, 4, 0, 0, 0]);
    transport.extend_from_slice(&[0x99; 40]);
    v.push(transport);
    v
}
