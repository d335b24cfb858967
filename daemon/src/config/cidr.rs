//! IP prefixes in the configuration are the protocol crate's `IpPrefix`, the same type the
//! allowed-IPs table uses, so a prefix is parsed and masked one way everywhere.

pub use protocol::allowed_ips::{IpPrefix as Cidr, PrefixError as CidrError};
