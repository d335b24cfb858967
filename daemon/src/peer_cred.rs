//! Who is on the other end of a Unix socket (`SO_PEERCRED`): the control server logs it for
//! every change, the instance lock names the running daemon by it, and `--detach` checks the
//! socket is served by its own child. One helper for all three.

/// The credentials (pid, uid, gid) of the process at the other end of the Unix socket `fd`,
/// as they were when it connected (or bound, for a listening socket's peer).
#[cfg(target_os = "linux")]
pub fn peer_credentials(fd: std::os::fd::BorrowedFd<'_>) -> std::io::Result<libc::ucred> {
    use std::os::fd::AsRawFd;
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: fd is a valid socket for the call; cred and len are valid out-pointers of the
    // size SO_PEERCRED writes.
    let r = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    if r == 0 {
        Ok(cred)
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn names_this_process_on_a_socket_pair() {
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        let c = peer_credentials(a.as_fd()).unwrap();
        assert_eq!(c.pid as u32, std::process::id());
        // SAFETY: getuid has no preconditions.
        assert_eq!(c.uid, unsafe { libc::getuid() });
    }
}
