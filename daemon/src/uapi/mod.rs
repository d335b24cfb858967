//! WireGuard's cross-platform userspace API (UAPI), so `wg`, `wg-quick` and other tools made
//! for the reference implementations configure `vpnd` too.
//!
//! The daemon serves a Unix socket at `/var/run/wireguard/<interface>.sock` (mode 0600). A
//! client writes `get=1\n\n` or `set=1\n` followed by `key=value` lines and an empty line; the
//! daemon answers (for `get`, the configuration and live state) and ends with `errno=N\n\n`.
//! Several operations may follow one another on one connection.
//!
//! - [`parse`]: the request text → [`parse::SetRequest`] (pure);
//! - [`edit`]: a `SetRequest` applied to the running [`crate::config::Config`] → a new one
//!   (pure), which the server hands to the root as `RootMsg::Edit`, the path every change
//!   takes, so a `set` is all-or-nothing;
//! - [`render`]: a [`render::DeviceState`] snapshot → the `get` answer (pure);
//! - [`server`]: the socket, framing and size limits.
//!
//! See `docs/uapi.md` for what works and what does not.

pub mod edit;
pub mod parse;
pub mod render;
pub mod server;

use std::path::{Path, PathBuf};

/// Where WireGuard implementations put their UAPI sockets, and where `wg` looks for them.
pub const DEFAULT_DIR: &str = "/var/run/wireguard";

/// Largest request (operation line, body and final empty line) a client may send: 1 MiB.
pub const MAX_REQUEST_BYTES: usize = 1 << 20;

/// Most lines in one `set` body.
pub const MAX_REQUEST_LINES: usize = 100_000;

/// `errno` values the UAPI answers with (Linux numbering, which `wg` prints with `strerror`).
pub mod errno {
    /// Success.
    pub const OK: i32 = 0;
    /// Input/output error: the daemon could not carry out the change.
    pub const EIO: i32 = libc::EIO;
    /// Invalid argument: a malformed request or one the configuration checks refuse.
    pub const EINVAL: i32 = libc::EINVAL;
    /// The request is larger than [`super::MAX_REQUEST_BYTES`] or has too many lines.
    pub const EMSGSIZE: i32 = libc::EMSGSIZE;
    /// The listen port is taken.
    pub const EADDRINUSE: i32 = libc::EADDRINUSE;
    /// Not permitted (setting a firewall mark without `CAP_NET_ADMIN`).
    pub const EPERM: i32 = libc::EPERM;
}

/// The socket of interface `name` in `dir`: `<dir>/<name>.sock`.
pub fn socket_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.sock"))
}
