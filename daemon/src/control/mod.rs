//! The JSON-RPC control server: transport (local socket), framing, and method dispatch.

pub mod check;
pub mod methods;
pub mod server;
