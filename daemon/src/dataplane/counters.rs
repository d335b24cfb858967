//! Counters of dropped network packets, by reason, readable by the control plane.
//!
//! One atomic per reason, indexed by [`Reason`]: counting a drop is a single relaxed
//! `fetch_add`, with no lock, so a junk flood does not serialise the receive tasks.

use protocol::noise::device::DropReason;
use protocol::noise::handshake::HandshakeError;
use protocol::noise::messages::ParseError;
use protocol::noise::peer::DataError;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

/// Declares [`Reason`] from one line per reason: `Variant = "json_name", "what it means";`.
macro_rules! drop_reasons {
    ($($variant:ident = $name:literal, $doc:literal;)*) => {
        /// Why a packet was dropped: the key of its counter in `show` and `stats`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Reason {
            $(#[doc = $doc] $variant,)*
        }

        impl Reason {
            /// Every reason, in declaration order.
            pub const ALL: &'static [Reason] = &[$(Reason::$variant,)*];

            /// The stable snake_case name (the JSON key).
            pub const fn name(self) -> &'static str {
                match self {
                    $(Reason::$variant => $name,)*
                }
            }
        }
    };
}

// To add a reason, add one line here.
drop_reasons! {
    NoRoute = "no_route", "No peer's allowed IPs cover the destination of an outbound packet.";
    LinkLocal = "link_local", "An outbound IPv6 link-local or multicast packet (the kernel's own MLD/ND) that no peer routes.";
    BadTunPacket = "bad_tun_packet", "The inner packet read from the TUN is not IPv4/IPv6.";
    HandshakeQueueFull = "handshake_queue_full", "The handshake queue was full.";
    SendFailed = "send_failed", "A UDP send failed (buffer full, unreachable).";
    TunWriteFailed = "tun_write_failed", "Writing to the TUN failed.";
    NoEndpoint = "no_endpoint", "A peer had no endpoint for an outbound packet.";
    Truncated = "truncated", "A received datagram did not fit the receive buffer.";
    QueueOverflow = "queue_overflow", "A peer's queue of packets awaiting a session was full.";
    TooShort = "too_short", "Shorter than any WireGuard message.";
    UnknownType = "unknown_type", "Not a WireGuard message type.";
    WrongLength = "wrong_length", "A handshake message of the wrong length.";
    BadMac1 = "bad_mac1", "mac1 did not verify.";
    CookieSent = "cookie_sent", "Under load without a valid mac2: answered with a cookie reply.";
    RateLimited = "rate_limited", "Under load and over the per-source rate.";
    HandshakeDecrypt = "handshake_decrypt", "A handshake message did not decrypt.";
    HandshakeZeroDh = "handshake_zero_dh", "A handshake's DH result was all zeros.";
    HandshakeReplay = "handshake_replay", "A replayed initiation (old timestamp).";
    HandshakeFlood = "handshake_flood", "Initiations from a peer faster than allowed.";
    UnknownPeer = "unknown_peer", "An initiation from a key we do not know.";
    SimultaneousInitiation = "simultaneous_initiation", "Lost a simultaneous-initiation tie-break.";
    UnexpectedResponse = "unexpected_response", "A response to no initiation of ours.";
    NoPrivateKey = "no_private_key", "A handshake while we have no private key.";
    BadCookieReply = "bad_cookie_reply", "A cookie reply that did not decrypt or matched nothing.";
    UnknownIndex = "unknown_index", "A message for a receiver index we do not hold.";
    ExpiredKeypair = "expired_keypair", "A transport message for an expired session.";
    Replay = "replay", "A transport message's counter was seen before.";
    Decrypt = "decrypt", "A transport message did not decrypt.";
    InvalidInnerPacket = "invalid_inner_packet", "The decrypted inner packet is not IP.";
    BufferTooSmall = "buffer_too_small", "The output buffer was too small.";
    Exhausted = "exhausted", "The session ran out of nonces.";
    AllowedIps = "allowed_ips", "The inner packet's source is not in the sender's allowed IPs.";
    NatOff = "nat_off", "A STUN, hub or probe datagram while no hubs or STUN servers are configured.";
    NatQueueFull = "nat_queue_full", "A STUN, hub or probe datagram while the NAT actor's queue was full.";
    NatUnexpected = "nat_unexpected", "A STUN, hub or probe datagram the NAT actor could not use (unsolicited, malformed, unauthenticated).";
    RelayUnexpected = "relay_unexpected", "A relay frame not from one of our hubs, or without a WireGuard message in it.";
}

impl From<&DropReason> for Reason {
    fn from(r: &DropReason) -> Reason {
        match r {
            DropReason::Malformed(ParseError::TooShort(_)) => Reason::TooShort,
            DropReason::Malformed(ParseError::UnknownType(_)) => Reason::UnknownType,
            DropReason::Malformed(ParseError::WrongLength { .. }) => Reason::WrongLength,
            DropReason::BadMac1 => Reason::BadMac1,
            DropReason::CookieSent => Reason::CookieSent,
            DropReason::RateLimited => Reason::RateLimited,
            DropReason::Handshake(e) => match e {
                HandshakeError::Decrypt => Reason::HandshakeDecrypt,
                HandshakeError::ZeroDh => Reason::HandshakeZeroDh,
                HandshakeError::Replay => Reason::HandshakeReplay,
                HandshakeError::Flood => Reason::HandshakeFlood,
                HandshakeError::UnknownPeer => Reason::UnknownPeer,
                HandshakeError::Simultaneous => Reason::SimultaneousInitiation,
                HandshakeError::UnexpectedIndex => Reason::UnexpectedResponse,
                HandshakeError::NoPrivateKey => Reason::NoPrivateKey,
            },
            DropReason::BadCookieReply => Reason::BadCookieReply,
            DropReason::UnknownIndex => Reason::UnknownIndex,
            DropReason::Data(e) => match e {
                DataError::UnknownIndex => Reason::UnknownIndex,
                DataError::Expired => Reason::ExpiredKeypair,
                DataError::Replay => Reason::Replay,
                DataError::Decrypt => Reason::Decrypt,
                DataError::InvalidInner => Reason::InvalidInnerPacket,
                DataError::BufferTooSmall => Reason::BufferTooSmall,
                DataError::Exhausted => Reason::Exhausted,
            },
            DropReason::AllowedIps => Reason::AllowedIps,
        }
    }
}

impl From<DropReason> for Reason {
    fn from(r: DropReason) -> Reason {
        Reason::from(&r)
    }
}

/// Drop counters: one atomic per [`Reason`].
pub struct DropCounters {
    slots: [AtomicU64; Reason::ALL.len()],
}

impl Default for DropCounters {
    fn default() -> Self {
        DropCounters {
            slots: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

impl std::fmt::Debug for DropCounters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.snapshot()).finish()
    }
}

impl DropCounters {
    /// Counts one drop for `reason`.
    pub fn inc(&self, reason: impl Into<Reason>) {
        self.add(reason, 1);
    }

    /// Counts `n` drops for `reason`.
    pub fn add(&self, reason: impl Into<Reason>, n: u64) {
        self.slots[reason.into() as usize].fetch_add(n, Ordering::Relaxed);
    }

    /// Every reason with at least one drop, by name.
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        Reason::ALL
            .iter()
            .map(|&r| (r.name().to_string(), self.get(r)))
            .filter(|(_, n)| *n > 0)
            .collect()
    }

    /// The count for one reason.
    pub fn get(&self, reason: Reason) -> u64 {
        self.slots[reason as usize].load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_has_its_own_slot_and_a_unique_name() {
        let names: std::collections::HashSet<_> = Reason::ALL.iter().map(|r| r.name()).collect();
        assert_eq!(names.len(), Reason::ALL.len(), "duplicate reason name");
        for (i, r) in Reason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i, "{r:?} indexes its own slot");
        }
    }

    #[test]
    fn counts_by_reason_and_snapshots_only_nonzero() {
        let c = DropCounters::default();
        assert!(c.snapshot().is_empty());
        c.inc(Reason::NoRoute);
        c.add(Reason::SendFailed, 3);
        c.inc(DropReason::Data(DataError::Replay));
        c.inc(DropReason::UnknownIndex);
        c.inc(DropReason::Data(DataError::UnknownIndex));
        let s = c.snapshot();
        let expect: BTreeMap<String, u64> = [
            ("no_route", 1),
            ("send_failed", 3),
            ("replay", 1),
            ("unknown_index", 2),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        assert_eq!(s, expect);
        assert_eq!(c.get(Reason::SendFailed), 3);
    }

    /// The names are the ones `show` and `stats` always used: the protocol's own names for its
    /// drop reasons.
    #[test]
    fn protocol_reasons_keep_their_names() {
        let samples = [
            DropReason::Malformed(ParseError::TooShort(1)),
            DropReason::Malformed(ParseError::UnknownType(9)),
            DropReason::Malformed(ParseError::WrongLength { kind: 1, len: 2 }),
            DropReason::BadMac1,
            DropReason::CookieSent,
            DropReason::RateLimited,
            DropReason::Handshake(HandshakeError::Decrypt),
            DropReason::Handshake(HandshakeError::ZeroDh),
            DropReason::Handshake(HandshakeError::Replay),
            DropReason::Handshake(HandshakeError::Flood),
            DropReason::Handshake(HandshakeError::UnknownPeer),
            DropReason::Handshake(HandshakeError::Simultaneous),
            DropReason::Handshake(HandshakeError::UnexpectedIndex),
            DropReason::Handshake(HandshakeError::NoPrivateKey),
            DropReason::BadCookieReply,
            DropReason::UnknownIndex,
            DropReason::Data(DataError::UnknownIndex),
            DropReason::Data(DataError::Expired),
            DropReason::Data(DataError::Replay),
            DropReason::Data(DataError::Decrypt),
            DropReason::Data(DataError::InvalidInner),
            DropReason::Data(DataError::BufferTooSmall),
            DropReason::Data(DataError::Exhausted),
            DropReason::AllowedIps,
        ];
        for d in samples {
            assert_eq!(Reason::from(&d).name(), d.name(), "{d:?}");
        }
    }
}
