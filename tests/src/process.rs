//! [`Proc`]: a guard for a long-running process started by a test.

use std::fs::File;
use std::io;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::Duration;

use tempfile::TempDir;

use crate::{command_line, describe_status, wait_until};

/// How long [`Proc`]'s `Drop` waits after SIGTERM before it sends SIGKILL.
const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// How long to wait for a SIGKILLed process to be reaped.
const KILL_WAIT: Duration = Duration::from_secs(5);
/// How much of each log [`Proc`]'s `Drop` prints when the test is failing.
const LOG_TAIL_ON_PANIC: usize = 16 * 1024;

/// A process started by a test, usually inside a [`crate::Netns`].
///
/// * stdin is `/dev/null`; stdout and stderr go to files in a private
///   temporary directory, readable at any time with [`Proc::stdout`],
///   [`Proc::stderr`] and [`Proc::logs`].
/// * The process leads its own process group, and gets SIGKILL if the
///   thread that started it dies (`PR_SET_PDEATHSIG`), so a test binary that
///   is killed does not leave daemons behind. Start and drop a `Proc` on the
///   same thread (the normal case in a test).
/// * On `Drop` it is stopped by PID: SIGTERM, then SIGKILL to its process
///   group after [`Proc::set_stop_timeout`] (5 s by default). If the
///   thread is panicking (a failed assertion), the tail of its logs is
///   printed to stderr, which `cargo test` shows for the failed test.
///
/// The PID is never signalled after the process has been reaped, so a
/// recycled PID cannot be hit.
#[derive(Debug)]
pub struct Proc {
    name: String,
    command: String,
    child: Child,
    status: Option<ExitStatus>,
    dir: TempDir,
    stdout_path: PathBuf,
    stderr_path: PathBuf,
    stop_timeout: Duration,
}

impl Proc {
    /// Starts `cmd` as a guarded process; `name` labels its log files and
    /// messages.
    ///
    /// The command's stdin, stdout and stderr are replaced as described on
    /// [`Proc`]; everything else (environment, working directory) is kept.
    pub fn spawn(name: &str, mut cmd: Command) -> io::Result<Proc> {
        let dir = tempfile::Builder::new().prefix("vpnt-proc-").tempdir()?;
        let label: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let stdout_path = dir.path().join(format!("{label}.stdout"));
        let stderr_path = dir.path().join(format!("{label}.stderr"));
        cmd.stdin(Stdio::null())
            .stdout(File::create(&stdout_path)?)
            .stderr(File::create(&stderr_path)?)
            .process_group(0);
        // SAFETY: the closure runs between fork and exec and only calls
        // prctl, which is async-signal-safe and touches no Rust state.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let command = command_line(&cmd);
        let child = cmd
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("cannot start `{command}`: {e}")))?;
        Ok(Proc {
            name: name.to_owned(),
            command,
            child,
            status: None,
            dir,
            stdout_path,
            stderr_path,
            stop_timeout: DEFAULT_STOP_TIMEOUT,
        })
    }

    /// The label given at spawn time.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The process ID (also its process group ID).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The command line it was started with.
    pub fn command_line(&self) -> &str {
        &self.command
    }

    /// Sets how long `Drop` waits between SIGTERM and SIGKILL (default 5 s).
    pub fn set_stop_timeout(&mut self, timeout: Duration) {
        self.stop_timeout = timeout;
    }

    /// The exit status if the process has exited (reaping it), else `None`.
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            if let Ok(Some(status)) = self.child.try_wait() {
                self.status = Some(status);
            }
        }
        self.status
    }

    /// Sets the nice value of every thread of every process in the
    /// process's group (`setpriority(PRIO_PGRP)`); threads created later
    /// inherit it. Tests that time traffic (a "never stalled" check) give
    /// the processes under test a negative value, so that unrelated load
    /// on a shared machine does not starve them into a false stall.
    ///
    /// Fails with `ESRCH` once the process has exited and been reaped.
    pub fn set_nice(&mut self, nice: i32) -> io::Result<()> {
        if self.try_status().is_some() {
            return Err(io::Error::from_raw_os_error(libc::ESRCH));
        }
        // The child leads its own process group (see `spawn`), whose ID is its PID.
        let pgid = libc::id_t::from(self.pid());
        // SAFETY: setpriority has no memory-safety preconditions.
        if unsafe { libc::setpriority(libc::PRIO_PGRP, pgid, nice) } == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.try_status().is_none()
    }

    /// Sends signal `sig` (a `libc::SIG*` number) to the process.
    ///
    /// Fails with `ESRCH` once the process has exited and been reaped,
    /// rather than risk signalling a recycled PID.
    pub fn signal(&mut self, sig: i32) -> io::Result<()> {
        if self.try_status().is_some() {
            return Err(io::Error::from_raw_os_error(libc::ESRCH));
        }
        // Not reaped yet, so the PID still belongs to our child (possibly a
        // zombie, for which the signal is harmless).
        kill(self.pid() as i32, sig)
    }

    /// Waits up to `timeout` for the process to exit; returns its status, or
    /// `None` if it is still running.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        wait_until(timeout, Duration::from_millis(10), || {
            self.try_status().is_some()
        });
        self.try_status()
    }

    /// Stops the process: SIGTERM, up to `timeout` to exit, then SIGKILL to
    /// its whole process group. Returns the exit status (`None` only if even
    /// SIGKILL did not end it within a few seconds, e.g. a process stuck in
    /// the kernel).
    pub fn stop(&mut self, timeout: Duration) -> Option<ExitStatus> {
        if let Some(status) = self.try_status() {
            return Some(status);
        }
        let _ = self.signal(libc::SIGTERM);
        if let Some(status) = self.wait_exit(timeout) {
            return Some(status);
        }
        // Still unreaped, so the PID (and the process group it leads) is ours.
        let _ = kill(-(self.pid() as i32), libc::SIGKILL);
        let _ = kill(self.pid() as i32, libc::SIGKILL);
        self.wait_exit(KILL_WAIT)
    }

    /// Everything the process wrote to stdout so far.
    pub fn stdout(&self) -> String {
        read_lossy(&self.stdout_path)
    }

    /// Everything the process wrote to stderr so far.
    pub fn stderr(&self) -> String {
        read_lossy(&self.stderr_path)
    }

    /// Stdout and stderr so far, under headers naming the process.
    pub fn logs(&self) -> String {
        format!(
            "=== {} (pid {}): {} ===\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.name,
            self.pid(),
            self.command,
            self.stdout(),
            self.stderr()
        )
    }

    /// Waits up to `timeout` until stdout or stderr contains `needle`.
    pub fn wait_for_output(&self, needle: &str, timeout: Duration) -> bool {
        wait_until(timeout, Duration::from_millis(20), || {
            self.stdout().contains(needle) || self.stderr().contains(needle)
        })
    }

    /// The directory holding the log files; deleted when the `Proc` drops.
    pub fn log_dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let status = self.stop(self.stop_timeout);
        if thread::panicking() {
            let ended = status.map_or_else(|| "still running".to_owned(), |s| describe_status(&s));
            eprintln!(
                "=== {} (pid {}, {ended}): {} ===\n--- stdout (tail) ---\n{}\n--- stderr (tail) ---\n{}",
                self.name,
                self.pid(),
                self.command,
                tail(&self.stdout(), LOG_TAIL_ON_PANIC),
                tail(&self.stderr(), LOG_TAIL_ON_PANIC)
            );
        }
    }
}

pub(crate) fn kill(pid: i32, sig: i32) -> io::Result<()> {
    // SAFETY: kill has no memory-safety preconditions.
    if unsafe { libc::kill(pid, sig) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn read_lossy(path: &Path) -> String {
    std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

fn tail(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut start = s.len() - max;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}
