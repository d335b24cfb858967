//! Cookie replies: arbitrary ones consumed by a [`CookieGenerator`] (with and without a message
//! sent first), genuine ones with fuzz-chosen corruption, the [`CookieChecker`] on arbitrary
//! messages and sources, and a [`Device`] with a handshake in flight receiving arbitrary
//! replies aimed at its pending index.
//!
//! Checked: nothing panics; a genuine reply to the last message is accepted and any corrupted
//! one refused; after accepting a genuine cookie, the message's mac2 verifies for exactly that
//! source.

use super::common::{self, Input};
use super::handshake_responder::drain;
use protocol::noise::cookie::{CookieChecker, CookieGenerator, MacCheck};
use protocol::noise::device::{DropReason, Incoming};
use protocol::noise::messages::{
    Message, COOKIE_REPLY_LEN, INITIATION_LEN, RESPONSE_LEN, TYPE_COOKIE_REPLY,
};
use std::time::Duration;

/// Runs one input.
pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let mode = input.u8();
    let now = common::epoch() + Duration::from_secs(u64::from(input.u8()));
    let server = common::responder_public();
    let mut gen = CookieGenerator::new(&server);
    let mut checker = CookieChecker::new(&server, input.array());

    match mode % 4 {
        // An arbitrary reply, before or after we sent a message.
        0 => {
            if mode & 0x10 != 0 {
                let mut msg = [0u8; INITIATION_LEN];
                msg.copy_from_slice(&input.array::<INITIATION_LEN>());
                gen.add_macs(&mut msg, now);
            }
            let mut reply: [u8; COOKIE_REPLY_LEN] = input.array();
            reply[..4].copy_from_slice(&TYPE_COOKIE_REPLY.to_le_bytes());
            let Ok(Message::CookieReply(r)) = Message::parse(&reply) else {
                unreachable!("any 64 bytes with the cookie type parse as a cookie reply")
            };
            let _ = gen.consume_reply(&r, now);
            let _ = gen.has_cookie(now);
        }
        // A genuine reply, maybe corrupted, maybe to a different message than the last one.
        1 => {
            let len = if mode & 0x10 != 0 {
                RESPONSE_LEN
            } else {
                INITIATION_LEN
            };
            let mut msg = input.bytes(len).to_vec();
            msg.resize(len, 0);
            gen.add_macs(&mut msg, now);
            let src = input.socket_addr();
            let mut reply = [0u8; COOKIE_REPLY_LEN];
            checker
                .create_reply(&msg, &src, now, &mut reply)
                .expect("fixed sizes fit");
            let flip_at = usize::from(input.u8()) % (COOKIE_REPLY_LEN + 1);
            let flip = input.u8();
            let corrupt = flip_at < COOKIE_REPLY_LEN && flip != 0 && flip_at >= 4;
            if corrupt {
                reply[flip_at] ^= flip;
            }
            let stale = mode & 0x20 != 0;
            if stale {
                // Another message sent since: the reply's AAD no longer matches our last mac1.
                let mut other = msg.clone();
                other[len - 40] ^= 1;
                gen.add_macs(&mut other, now);
            }
            let Ok(Message::CookieReply(r)) = Message::parse(&reply) else {
                unreachable!("a cookie reply keeps its type")
            };
            let accepted = gen.consume_reply(&r, now);
            // Bytes 4..8 (the receiver index) are not authenticated.
            let authenticated_change = corrupt && flip_at >= 8;
            assert_eq!(
                accepted,
                !authenticated_change && !stale,
                "corrupt={corrupt} at {flip_at}, stale={stale}"
            );
            if accepted {
                let later = now + Duration::from_secs(u64::from(input.u8() % 200));
                gen.add_macs(&mut msg, later);
                let fresh = later.saturating_duration_since(now) < Duration::from_secs(120);
                let want = if fresh {
                    MacCheck::Valid
                } else {
                    MacCheck::NeedCookie
                };
                assert_eq!(checker.check(&msg, &src, true, later), want);
                let other = input.socket_addr();
                if other != src {
                    assert_eq!(
                        checker.check(&msg, &other, true, later),
                        MacCheck::NeedCookie
                    );
                }
            }
        }
        // The checker on arbitrary messages of either handshake length, or any length.
        2 => {
            let src = input.socket_addr();
            let under_load = input.bool();
            let msg = input.rest();
            if matches!(msg.len(), INITIATION_LEN | RESPONSE_LEN) || mode & 0x10 != 0 {
                let check = checker.check(msg, &src, under_load, now);
                if check != MacCheck::BadMac1 {
                    let mut reply = [0u8; COOKIE_REPLY_LEN];
                    let _ = checker.create_reply(msg, &src, now, &mut reply);
                }
                let _ = checker.verify_mac2(msg, &src, now);
            }
        }
        // A device waiting on a response receives arbitrary replies for its pending index.
        _ => {
            let (mut dev, id) = common::device(
                common::INITIATOR_KEY,
                server,
                Some(common::responder_addr()),
                None,
                0x44,
            );
            let packet = common::ipv4_packet([10, 0, 0, 2], 40, 0);
            let mut out = vec![0u8; 256];
            let _ = dev.encapsulate(id, &packet, &mut out, now);
            let pending = dev.peer(id).local_indices();
            drain(&mut dev);
            while !input.is_empty() {
                let mut reply: [u8; COOKIE_REPLY_LEN] = input.array();
                reply[..4].copy_from_slice(&TYPE_COOKIE_REPLY.to_le_bytes());
                if let (false, Some(&index)) = (reply[4] & 1 == 1, pending.first()) {
                    reply[4..8].copy_from_slice(&index.to_le_bytes());
                }
                let src = common::responder_addr();
                let r = dev.handle_datagram(src, &reply, &mut out, false, now);
                assert!(matches!(
                    r,
                    Incoming::Dropped(DropReason::BadCookieReply | DropReason::UnknownIndex)
                ));
                drain(&mut dev);
            }
        }
    }
}

/// One seed per mode, the genuine-reply mode both clean and corrupted.
pub fn seeds() -> Vec<Vec<u8>> {
    let mut v = Vec::new();
    for mode in [0u8, 0x10, 1, 0x11, 0x21, 2, 0x12, 3] {
        let mut s = vec![mode, 5];
        s.extend_from_slice(&[0x42; 32]);
        s.extend_from_slice(&[0x17; INITIATION_LEN]);
        s.extend_from_slice(&[0, 7, 0x34, 0x12, 0, 0]);
        s.extend_from_slice(&[0x55; 80]);
        v.push(s);
    }
    v
}
