//! `vpnd`: the daemon that drives the sans-IO [`protocol`] crate over a TUN device and UDP.

pub mod config;
