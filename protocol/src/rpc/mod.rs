//! The vpnd control API: JSON-RPC 2.0 messages shared by `vpnd` and `vpnctl`.
//!
//! Framing is one JSON object per line (`\n`-terminated), at most [`MAX_MESSAGE_SIZE`] bytes.

pub mod framing;
pub mod types;

pub use framing::{read_message, FrameError, MAX_MESSAGE_SIZE};
pub use types::*;
