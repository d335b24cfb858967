//! The hub's counters: every answer and every silent drop is counted, so hostile input is
//! visible in the stats line and on the stats endpoint (docs/hub.md lists them).

macro_rules! counters {
    ($($(#[doc = $doc:literal])* $name:ident,)*) => {
        /// Monotonic event counters.
        #[derive(Debug, Clone, Default, PartialEq, Eq)]
        pub struct Counters {
            $($(#[doc = $doc])* pub $name: u64,)*
        }

        impl Counters {
            /// Every counter as `(name, value)`, in declaration order.
            pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> {
                [$((stringify!($name), self.$name),)*].into_iter()
            }
        }
    };
}

counters! {
    /// Datagrams and TCP frames received.
    rx_messages,
    /// STUN Binding requests answered.
    stun_answered,
    /// Hellos answered with a challenge.
    challenges_sent,
    /// Successful registrations (first or renewal).
    registrations,
    /// Lookups answered.
    lookups_answered,
    /// Signals forwarded to their recipient.
    signals_forwarded,
    /// Signals to a peer not registered, answered with an offline presence.
    signals_to_offline,
    /// Registrations dropped when their TTL ran out.
    expired,
    /// Registrations removed by a SIGHUP that took the key out of admission.
    evicted_by_reload,
    /// Dropped: neither a hub message nor a STUN request that decodes.
    drop_malformed,
    /// Dropped: a STUN message that is not a Binding request.
    drop_stun_other,
    /// Dropped: a hub message type only the hub sends (Challenge, Registered, Presence).
    drop_wrong_direction,
    /// Dropped: a Register whose nonce is not one this hub issued to that source recently.
    drop_stale_nonce,
    /// Dropped: a Register whose proof does not verify (no private key, or another path).
    drop_bad_proof,
    /// Dropped: a Hello or Register from a key outside `admission`.
    drop_not_admitted,
    /// Dropped: over the per-source (registration, STUN) or per-peer (lookup, signal) rate.
    drop_rate_limited,
    /// Dropped: over the global proof-check budget.
    drop_verify_budget,
    /// Dropped: a new registration while the table is full.
    drop_table_full,
    /// Dropped: a Lookup or Signal from a source with no registration.
    drop_unregistered,
    /// Dropped: a Signal whose `from` is not the key registered at its source.
    drop_spoofed_from,
    /// Lookups answered from the shared store (a peer registered on another hub).
    lookups_remote,
    /// Signals handed to the hub where their recipient is registered.
    signals_to_remote,
    /// Signals from another hub delivered to a peer registered here.
    signals_from_remote,
    /// Dropped: a signal from another hub that does not parse or whose recipient is not here.
    drop_remote_signal,
    /// Shared-store records that do not parse (corrupt, foreign or oversized).
    store_bad_record,
    /// Shared-store operations that failed: store unreachable, error or timeout.
    store_errors,
    /// Shared-store operations dropped because the store's queue was full.
    store_queue_full,
    /// TCP connections accepted.
    tcp_accepted,
    /// TCP connections refused (over the connection cap).
    tcp_refused,
    /// TCP connections closed for a bad frame length or idleness.
    tcp_closed_bad,
    /// TCP connections closed because a write made no progress for 10 s (the client does
    /// not read).
    tcp_write_timeout,
    /// `Unregistered` answers to a Lookup, Signal, RelayOpen or relay frame from a source
    /// without a registration (the peer registers again).
    unregistered_sent,
    /// Relay channels opened (RelayOpen answered with RelayReady to both ends).
    relay_opened,
    /// RelayOpen for a peer online nowhere (alone: answered with an offline presence), or on
    /// a hub that advertises no address.
    relay_to_offline,
    /// RelayOpen for a peer registered on another hub, answered with RelayElsewhere (that
    /// hub's key and address).
    relay_elsewhere,
    /// Dropped: a RelayOpen while the relay is switched off (`relay.enabled: false`).
    drop_relay_off,
    /// Relay channels open now (a gauge, not a count).
    relay_channels,
}
