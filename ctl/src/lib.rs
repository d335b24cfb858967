//! `vpnctl`, the control tool for vpnd.
//!
//! It speaks JSON-RPC 2.0 to the daemon over a Unix domain socket, one JSON object per line
//! ([`client`]), renders answers for people ([`render`]) or scripts (`--json`), and makes
//! WireGuard keys ([`keys`]) and converts wg-quick files to vpnd's YAML ([`import`]). The command line is defined in [`cli`] and run by [`commands`].
//!
//! Exit status: 0 ok, 1 the daemon refused (or answered something unusable), 2 usage error,
//! 3 the daemon is unreachable.

pub mod cli;
pub mod client;
pub mod commands;
pub mod import;
pub mod keys;
pub mod render;
