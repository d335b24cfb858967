//! Going to the background the way `wg-quick` expects of a userspace implementation:
//! `vpnd <interface>` returns once the interface and its UAPI socket are ready, leaving the
//! daemon running.
//!
//! The parent re-executes its own program with `--foreground` in a new session (`setsid`),
//! stdin and stdout on `/dev/null` and stderr on a pipe, then reads that pipe. The child
//! closes its end (points stderr at `/dev/null`) once it is ready, or exits on failure; either
//! way the parent sees end-of-file. It then checks which: a child that answers on the UAPI
//! socket itself (`SO_PEERCRED` names it, not some other daemon holding the path) is ready
//! (exit 0); one that exited gets its stderr printed (exit 1). A child not ready within
//! [`READY_TIMEOUT`] is stopped.

use std::ffi::OsString;
use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Set (to `1`) in the environment of the re-executed child.
pub const CHILD_ENV: &str = "VPND_DETACHED_CHILD";

/// How long the parent waits for the child to be ready.
pub const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// Most bytes of the child's stderr kept for an error report.
const MAX_REPORT: usize = 64 * 1024;

/// Whether this process is the re-executed child of [`spawn_and_wait`].
pub fn is_child() -> bool {
    std::env::var_os(CHILD_ENV).is_some_and(|v| v == "1")
}

/// In the child, once ready: stops writing to the parent's pipe (stderr becomes
/// `/dev/null`), which tells the parent to return. Logs go to `VPND_LOG_FILE` if set.
pub fn release_parent() {
    // SAFETY: plain libc calls on a path literal and descriptors we own; dup2 atomically
    // replaces fd 2, so concurrent writers see either the pipe or /dev/null.
    unsafe {
        let fd = libc::open(c"/dev/null".as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        if fd >= 0 {
            libc::dup2(fd, libc::STDERR_FILENO);
            libc::close(fd);
        }
    }
}

/// In the parent: starts this program again with `args` and `--foreground` in a new session
/// and waits until it is ready (its UAPI socket at `socket` accepts connections) or fails.
/// Returns the child's error output when it fails.
pub fn spawn_and_wait(args: Vec<OsString>, socket: &Path) -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find own executable: {e}"))?;
    let mut cmd = Command::new(exe);
    cmd.arg("--foreground")
        .args(args)
        .env(CHILD_ENV, "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: setsid is async-signal-safe and the closure touches nothing else.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start the daemon: {e}"))?;
    let stderr = child.stderr.take();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut kept = Vec::new();
        if let Some(mut s) = stderr {
            let mut chunk = [0u8; 4096];
            while let Ok(n) = s.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                let room = MAX_REPORT.saturating_sub(kept.len());
                kept.extend_from_slice(&chunk[..n.min(room)]);
            }
        }
        let _ = tx.send(kept);
    });

    let deadline = Instant::now() + READY_TIMEOUT;
    let output = rx
        .recv_timeout(READY_TIMEOUT)
        .map_err(|_| stop(&mut child, "was not ready in time"))?;
    // End of file: ready, or exiting. Tell them apart.
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let text = String::from_utf8_lossy(&output);
            return Err(format!(
                "the daemon failed to start ({status}):\n{}",
                text.trim_end()
            ));
        }
        // The socket must be served by our child: another daemon may hold the same path
        // (which is exactly why a child fails to start).
        if served_by(socket, child.id()) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(stop(
                &mut child,
                "closed its output but its UAPI socket does not answer",
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether process `pid` answers on the Unix socket at `path` (by `SO_PEERCRED`, the
/// credentials of the process that bound it).
fn served_by(path: &Path, pid: u32) -> bool {
    use std::os::fd::AsFd;
    let Ok(stream) = std::os::unix::net::UnixStream::connect(path) else {
        return false;
    };
    crate::peer_cred::peer_credentials(stream.as_fd())
        .is_ok_and(|cred| u32::try_from(cred.pid).is_ok_and(|p| p == pid))
}

/// Stops a child that did not become ready (SIGTERM, then SIGKILL) and says so.
fn stop(child: &mut Child, why: &str) -> String {
    let pid = child.id() as libc::pid_t;
    // SAFETY: signalling our own child by its PID, which stays ours until we reap it.
    unsafe {
        libc::kill(pid, libc::SIGTERM);
    }
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        if let Ok(Some(_)) = child.try_wait() {
            return format!("the daemon {why} within {READY_TIMEOUT:?}; stopped it");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    format!("the daemon {why} within {READY_TIMEOUT:?}; killed it")
}
