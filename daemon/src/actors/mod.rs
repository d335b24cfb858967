//! The daemon's long-running components. Each submodule exposes plain async
//! building blocks; the actor wrappers that own them sit on top.

pub mod interface;
