//! What the engine needs from a store shared with other hubs (`store: redis://…`), sans-IO.
//!
//! The engine's own registration table is the memory store: with `store: memory` it is the
//! whole truth. With a shared store the engine also asks, through [`StoreOp`]s that the I/O
//! layer drains and carries out ([`crate::net`] does it over Redis):
//! - register a peer with a TTL ([`StoreOp::Put`], on every registration and renewal);
//! - forget one ([`StoreOp::Remove`], when it leaves this hub before its TTL);
//! - look up a peer not registered here ([`StoreOp::Lookup`], answered through
//!   [`super::Hub::remote_presence`]);
//! - find the hub of a peer not registered here that someone wants a relay to
//!   ([`StoreOp::RelayHome`]: its presence record names the hub, whose directory entry, kept
//!   by that hub, gives its key and address; answered through [`super::Hub::relay_elsewhere`]);
//! - deliver a signal to a peer not registered here ([`StoreOp::Signal`]: the I/O layer finds
//!   the hub holding the recipient with [`super::Hub::signal_target`] and hands it the raw
//!   message, which that hub delivers with [`super::Hub::deliver_remote`]).
//!
//! A presence record is this hub's id followed by a Presence message in the hub wire format,
//! so what comes back from the store (untrusted like any input) goes through the protocol's
//! own parser and its length bound.

use std::net::SocketAddr;

use protocol::hub::messages::{Candidates, Message, MAX_MESSAGE_LEN};

use super::{Key, Origin};

/// A hub's identity in the shared store: random per process, so a restarted hub is a new
/// hub and signals for its lost registrations find no one (and answer "offline").
pub type HubId = [u8; HUB_ID_LEN];

/// Bytes in a [`HubId`].
pub const HUB_ID_LEN: usize = 16;

/// The longest presence record: an id and the largest message.
pub const MAX_RECORD_LEN: usize = HUB_ID_LEN + MAX_MESSAGE_LEN;

/// One thing the engine asks of the shared store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreOp {
    /// Store `record` for `peer`, living for the registration TTL (a renewal refreshes it).
    Put {
        /// The peer.
        peer: Key,
        /// [`encode_record`] of this hub and the peer's presence.
        record: Vec<u8>,
    },
    /// `peer` left this hub: delete its record if it is still this hub's.
    Remove {
        /// The peer.
        peer: Key,
    },
    /// `reply_to` looked up `peer`, who is not registered here.
    Lookup {
        /// The key looked up.
        peer: Key,
        /// The registered peer that asked.
        reply_to: Origin,
    },
    /// `reply_to` asked for a relay to `peer`, who is not registered here: find its hub's
    /// directory entry and answer [`super::Hub::relay_elsewhere`].
    RelayHome {
        /// The other peer.
        peer: Key,
        /// The registered peer that asked.
        reply_to: Origin,
    },
    /// `reply_to` signalled `to`, who is not registered here; `raw` is the checked message.
    Signal {
        /// The recipient.
        to: Key,
        /// The registered sender.
        reply_to: Origin,
        /// The Signal message, unchanged.
        raw: Vec<u8>,
    },
}

/// A presence record read from the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record {
    /// The hub the peer is registered on.
    pub hub: HubId,
    /// The peer's observed address there.
    pub observed: SocketAddr,
    /// Its announced candidates.
    pub candidates: Candidates,
}

/// The record of `peer` registered on `hub`.
pub fn encode_record(
    hub: &HubId,
    peer: Key,
    observed: SocketAddr,
    candidates: Candidates,
) -> Vec<u8> {
    let mut buf = [0u8; MAX_RECORD_LEN];
    buf[..HUB_ID_LEN].copy_from_slice(hub);
    let m = Message::Presence {
        peer,
        observed: Some(observed),
        candidates,
    };
    // A Presence always fits the maximum message size.
    let n = m.encode(&mut buf[HUB_ID_LEN..]).unwrap_or(0);
    buf[..HUB_ID_LEN + n].to_vec()
}

/// The directory entry a hub keeps in the store so peers of other hubs can reach it (to relay
/// to its peers): its key and the address it advertises, as a `RelayElsewhere` message with
/// no peer (so reading it back goes through the protocol's parser).
pub fn encode_hub_info(hub_key: Key, addr: SocketAddr) -> Vec<u8> {
    let m = Message::RelayElsewhere {
        peer: [0; 32],
        hub: hub_key,
        addr,
    };
    let mut buf = [0u8; MAX_MESSAGE_LEN];
    let n = m.encode(&mut buf).unwrap_or(0);
    buf[..n].to_vec()
}

/// A hub's directory entry: its key and address, if `bytes` is a well-formed one.
pub fn parse_hub_info(bytes: &[u8]) -> Option<(Key, SocketAddr)> {
    match Message::parse(bytes).ok()? {
        Message::RelayElsewhere { peer, hub, addr } if peer == [0; 32] => Some((hub, addr)),
        _ => None,
    }
}

/// The record in `bytes` if it is a well-formed one for `peer`; anything else (too long,
/// another key, another message, offline) is `None`.
pub fn parse_record(bytes: &[u8], peer: &Key) -> Option<Record> {
    if bytes.len() > MAX_RECORD_LEN || bytes.len() < HUB_ID_LEN {
        return None;
    }
    let (id, msg) = bytes.split_at(HUB_ID_LEN);
    match Message::parse(msg).ok()? {
        Message::Presence {
            peer: p,
            observed: Some(observed),
            candidates,
        } if p == *peer => Some(Record {
            hub: id.try_into().ok()?,
            observed,
            candidates,
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_junk_is_refused() {
        let a: SocketAddr = "198.51.100.7:41000".parse().unwrap();
        let c = Candidates::from_slice(&["10.0.0.2:51820".parse().unwrap()]);
        let r = encode_record(&[5; 16], [1; 32], a, c);
        assert_eq!(
            parse_record(&r, &[1; 32]),
            Some(Record {
                hub: [5; 16],
                observed: a,
                candidates: c
            })
        );
        // Another key's record, truncations, trailing bytes, oversize and junk: refused.
        assert_eq!(parse_record(&r, &[2; 32]), None);
        for n in 0..r.len() {
            assert_eq!(parse_record(&r[..n], &[1; 32]), None, "{n}");
        }
        let mut long = r.clone();
        long.push(0);
        assert_eq!(parse_record(&long, &[1; 32]), None);
        assert_eq!(parse_record(&[0xF2; MAX_RECORD_LEN + 1], &[1; 32]), None);
        assert_eq!(parse_record(b"not a record at all", &[1; 32]), None);
    }

    #[test]
    fn hub_directory_entries_round_trip_and_junk_is_refused() {
        let a: SocketAddr = "203.0.113.9:3478".parse().unwrap();
        let e = encode_hub_info([7; 32], a);
        assert_eq!(parse_hub_info(&e), Some(([7; 32], a)));
        for n in 0..e.len() {
            assert_eq!(parse_hub_info(&e[..n]), None, "{n}");
        }
        let r = encode_record(&[5; 16], [1; 32], a, Candidates::default());
        assert_eq!(
            parse_hub_info(&r[HUB_ID_LEN..]),
            None,
            "a presence is not one"
        );
    }
}
