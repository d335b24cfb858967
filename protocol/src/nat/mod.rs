//! NAT traversal, sans-IO: telling datagrams apart on the WireGuard socket ([`demux`]), the
//! STUN Binding client and mapping check ([`stun`]), the sealed path probes ([`probe`]) and the
//! per-peer path state machine ([`path`]). Every timing constant lives in [`consts`].
//!
//! Nothing here is wired into vpnd yet (see docs/nat-traversal.md, "What remains").

pub mod consts;
pub mod demux;
pub mod path;
pub mod probe;
pub mod stun;
