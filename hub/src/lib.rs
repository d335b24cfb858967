//! vpnhub: the server vpnd peers register with to find each other (docs/hub.md).
//!
//! - [`engine`]: the hub's logic, sans-IO (STUN answers, registration with proof of key,
//!   lookups, forwarding of sealed signals, rate limits and counters).
//! - [`config`]: the configuration file, checked with errors that name file, field and fix.
//! - [`net`]: the thin tokio layer: UDP and TCP listeners, the stats line and endpoint, SIGHUP.
//! - [`tls`]: the TLS server configuration of the TCP relay (`relay.tls`).

pub mod config;
pub mod engine;
pub mod net;
pub mod tls;
