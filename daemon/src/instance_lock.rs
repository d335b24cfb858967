//! One vpnd per interface name and network namespace.
//!
//! A second vpnd for a running interface used to delete the live TUN as "stale", and the first
//! daemon then exited. Ownership is now decided by a lock that the kernel holds for exactly the
//! owner's lifetime: a listening Unix socket in the *abstract* namespace, named after the
//! interface. Abstract socket names are scoped to the network namespace (so two namespaces may
//! each run their own `vpn0`), need no file under `/run`, and vanish when the process dies,
//! even by SIGKILL, so a truly stale interface is still cleaned up by the next start. The
//! holder's PID is read from the socket's peer credentials for the error message.

use std::io;

/// Held for the daemon's lifetime; dropping it releases the interface name.
#[derive(Debug)]
pub struct InstanceLock {
    #[cfg(target_os = "linux")]
    _socket: std::os::unix::net::UnixListener,
}

/// Why the lock was not taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another vpnd runs this interface in this network namespace.
    #[error(
        "interface {interface} is already run by another vpnd{} in this network namespace; \
         stop that one first (or choose another interface.name)",
        pid.map(|p| format!(" (pid {p})")).unwrap_or_default()
    )]
    Taken {
        /// The interface name.
        interface: String,
        /// The running daemon's PID, when it could be learned.
        pid: Option<i32>,
    },
    /// The lock socket could not be created.
    #[error("cannot take the lock for interface {interface}: {source}")]
    Io {
        /// The interface name.
        interface: String,
        /// The OS error.
        source: io::Error,
    },
}

/// The abstract socket name of `interface`'s lock.
fn lock_name(interface: &str) -> String {
    format!("vpnd/interface-lock/{interface}")
}

/// Takes the lock for `interface` in the current network namespace.
#[cfg(target_os = "linux")]
pub fn acquire(interface: &str) -> Result<InstanceLock, LockError> {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};
    let io = |source| LockError::Io {
        interface: interface.to_string(),
        source,
    };
    let addr = SocketAddr::from_abstract_name(lock_name(interface).as_bytes()).map_err(io)?;
    match UnixListener::bind_addr(&addr) {
        Ok(socket) => Ok(InstanceLock { _socket: socket }),
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
            let pid = UnixStream::connect_addr(&addr)
                .ok()
                .and_then(|s| peer_pid(&s));
            Err(LockError::Taken {
                interface: interface.to_string(),
                pid,
            })
        }
        Err(e) => Err(io(e)),
    }
}

/// Abstract sockets are Linux's; elsewhere the OS refuses a second device of the same name.
#[cfg(not(target_os = "linux"))]
pub fn acquire(_interface: &str) -> Result<InstanceLock, LockError> {
    Ok(InstanceLock {})
}

#[cfg(target_os = "linux")]
fn peer_pid(stream: &std::os::unix::net::UnixStream) -> Option<i32> {
    use std::os::fd::AsFd;
    let cred = crate::peer_cred::peer_credentials(stream.as_fd()).ok()?;
    (cred.pid > 0).then_some(cred.pid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_second_taker_is_refused_with_our_pid_and_the_name_is_free_after_drop() {
        let name = format!("vpnd-test-{}", std::process::id());
        let first = acquire(&name).expect("first lock");
        let err = acquire(&name).expect_err("second lock must fail");
        let msg = err.to_string();
        assert!(
            msg.contains(&name) && msg.contains(&format!("pid {}", std::process::id())),
            "{msg}"
        );
        drop(first);
        acquire(&name).expect("free again after drop");
    }
}
