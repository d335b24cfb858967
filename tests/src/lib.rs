//! End-to-end test harness for `vpnd`.
//!
//! Tests build small virtual networks out of Linux network namespaces and
//! veth links, start daemons inside them, and push traffic through the
//! tunnels. Everything here is made for `cargo test`:
//!
//! * **Parallel-safe.** Namespace names are `vpnt-<pid>-<counter>`, so tests
//!   in one binary and test binaries of other worktrees never collide.
//!   Interface names only need to be unique inside a namespace.
//! * **Panic-safe.** [`Netns`], [`Proc`] and [`TestGuard`] clean up in
//!   `Drop`, which also runs while a failed assertion unwinds. A process-exit
//!   hook removes namespaces that were leaked (for example by
//!   `std::mem::forget`), and `scripts/cleanup-test-netns.sh` removes what a
//!   killed test run left behind.
//! * **Bounded.** Every wait has a deadline: commands run through
//!   [`run_with_timeout`], polling goes through [`wait_until`], processes
//!   are stopped with SIGTERM and then SIGKILL.
//! * **Skippable off CI.** [`require_root`] and friends skip a test on a
//!   laptop without root or tools, but fail it when `CI` or
//!   `VPN_E2E_REQUIRED` is set.
//!
//! # Running
//!
//! As root on Debian 12: `scripts/install-deps.sh`, then
//! `cargo test -p e2e`. Tests that start workspace binaries (`vpnd`,
//! `vpnctl`) find them with [`find_binary`], so build those first
//! (`cargo build --workspace --bins`). The supervision test also needs a
//! `vpnd` built with the test-only feature `fault-injection`; it builds one
//! into `<target>/fault` itself unless `VPN_E2E_FAULT_VPND` names one (see
//! [`vpnd::fault_injection_vpnd`]). After a test binary was killed,
//! `scripts/cleanup-test-netns.sh` removes its leftover namespaces.
//!
//! Tests of `vpnd` itself use the [`vpnd`] module: it writes a
//! configuration from parameters, starts the daemon in a namespace, waits
//! until its control socket answers and reads `vpnctl show --json`.
//! [`iperf`] runs a paced, interval-measured TCP stream for "never stalled"
//! checks, and [`rpc`] sends raw JSON-RPC requests to a control socket.
//!
//! Helpers panic with full context (command line, stdout, stderr, logs)
//! instead of returning errors: a harness failure is a test failure.
//!
//! ```no_run
//! use e2e::{ping, require_wireguard_go, TestGuard, VethPair};
//!
//! if !require_wireguard_go() {
//!     return;
//! }
//! let guard = TestGuard::new("example");
//! let a = guard.netns();
//! let b = guard.netns();
//! let _link = VethPair::link(&a, &b, &["10.99.0.1/24", "fd99::1/64"], &["10.99.0.2/24", "fd99::2/64"]);
//! assert!(ping(&a, "fd99::2", 1));
//! let mut daemon = a.spawn(["sleep", "60"]);
//! assert!(daemon.is_running());
//! // Everything is killed and deleted when `daemon`, `a`, `b` and `guard` drop.
//! ```

pub mod capture;
pub mod hostile;
pub mod iperf;
pub mod lab;
pub mod nat_lab;
mod netns;
pub mod pattern;
mod process;
pub mod rpc;
pub mod tls;
mod traffic;
pub mod vpnd;
mod wg;

use std::ffi::OsStr;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

pub use netns::{Netns, TestGuard, VethPair, NETNS_PREFIX};
pub use process::Proc;
pub use traffic::{
    ping, ping_until, tcp_transfer, tcp_transfer_paced, tcp_transfer_timeout, try_tcp_transfer,
};
pub use wg::{WgDump, WgKeys, WgPeerDump, WireguardGo};

/// Default deadline for one short command run by the harness (`ip`, `wg`, ...).
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// Polls `cond` every `poll_interval` until it returns `true` or `timeout`
/// has passed.
///
/// Returns whether the condition became true. The condition is always
/// checked at least once, and once more at the deadline, so a zero timeout
/// means "check now".
pub fn wait_until(
    timeout: Duration,
    poll_interval: Duration,
    mut cond: impl FnMut() -> bool,
) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        thread::sleep(poll_interval.min(deadline - now));
    }
}

/// Runs `cmd` to completion with captured stdout/stderr and no stdin, but
/// kills it (SIGKILL, by PID) if it is still running after `timeout`.
///
/// A timeout is reported as an [`io::ErrorKind::TimedOut`] error whose
/// message holds the command line and whatever output was captured.
pub fn run_with_timeout(cmd: &mut Command, timeout: Duration) -> io::Result<Output> {
    run_inner(cmd, None, timeout)
}

/// Like [`run_with_timeout`], but writes `input` to the command's stdin and
/// then closes it.
pub fn run_with_input(cmd: &mut Command, input: &[u8], timeout: Duration) -> io::Result<Output> {
    run_inner(cmd, Some(input), timeout)
}

fn run_inner(cmd: &mut Command, input: Option<&[u8]>, timeout: Duration) -> io::Result<Output> {
    let deadline = Instant::now() + timeout;
    cmd.stdin(if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot start `{}`: {e}", command_line(cmd)),
        )
    })?;

    if let (Some(mut stdin), Some(input)) = (child.stdin.take(), input) {
        let input = input.to_vec();
        // A writer thread, so a child that does not read cannot block us.
        thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
    }
    // Readers report through channels so that a grandchild holding the pipe
    // open cannot make us wait past the deadline.
    let out_rx = spawn_reader(child.stdout.take());
    let err_rx = spawn_reader(child.stderr.take());

    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        thread::sleep(Duration::from_millis(5));
    };
    let grace = Duration::from_millis(200);
    let remaining = |extra: Duration| deadline.saturating_duration_since(Instant::now()) + extra;
    let stdout = out_rx.recv_timeout(remaining(grace)).unwrap_or_default();
    let stderr = err_rx.recv_timeout(remaining(grace)).unwrap_or_default();
    match status {
        Some(status) => Ok(Output {
            status,
            stdout,
            stderr,
        }),
        None => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!(
                "`{}` did not finish within {timeout:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
                command_line(cmd),
                String::from_utf8_lossy(&stdout),
                String::from_utf8_lossy(&stderr)
            ),
        )),
    }
}

fn spawn_reader<R: Read + Send + 'static>(pipe: Option<R>) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    if let Some(mut pipe) = pipe {
        thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = pipe.read_to_end(&mut buf);
            let _ = tx.send(buf);
        });
    } else {
        let _ = tx.send(Vec::new());
    }
    rx
}

/// Runs `cmd` with [`COMMAND_TIMEOUT`] and panics unless it exits with
/// status 0; returns its stdout.
///
/// The panic message holds the command line, the exit status, stdout and
/// stderr.
pub fn run_ok(cmd: &mut Command) -> String {
    let out = run_with_timeout(cmd, COMMAND_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
    check_output(cmd, &out);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub(crate) fn check_output(cmd: &Command, out: &Output) {
    if !out.status.success() {
        panic!(
            "`{}` failed: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            command_line(cmd),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Renders a command as a shell-like line, for messages.
pub fn command_line(cmd: &Command) -> String {
    let mut parts = vec![cmd.get_program().to_string_lossy().into_owned()];
    parts.extend(cmd.get_args().map(|a| {
        let a = a.to_string_lossy();
        if a.is_empty() || a.contains(|c: char| c.is_whitespace() || c == '\'' || c == '"') {
            format!("'{}'", a.replace('\'', r"'\''"))
        } else {
            a.into_owned()
        }
    }));
    parts.join(" ")
}

/// Builds a [`Command`] from an argument list whose first item is the
/// program.
///
/// # Panics
/// If `args` is empty.
pub fn command<I, S>(args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut args = args.into_iter();
    let program = args.next().expect("command: empty argument list");
    let mut cmd = Command::new(program);
    cmd.args(args);
    cmd
}

/// Whether missing prerequisites must fail tests instead of skipping them:
/// true when `CI` or `VPN_E2E_REQUIRED` is set to anything but empty, `0`
/// or `false`.
pub fn prerequisites_required() -> bool {
    ["CI", "VPN_E2E_REQUIRED"].iter().any(|var| {
        std::env::var(var).is_ok_and(|v| {
            let v = v.trim();
            !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false")
        })
    })
}

/// Whether the e2e prerequisites are met: running as root, IPv6 available,
/// and `ip`, `sysctl` and `ping` on the `PATH`.
///
/// Use it as the first line of every e2e test:
/// `if !e2e::require_root() { return; }`. When something is missing it
/// prints why and returns `false` (the test then passes as skipped), except
/// when [`prerequisites_required`] is true (CI), where it panics so that a
/// broken CI machine cannot turn the e2e suite green by skipping it.
pub fn require_root() -> bool {
    require_root_with(&[])
}

/// [`require_root`] plus the binaries in `extra_binaries`.
pub fn require_root_with(extra_binaries: &[&str]) -> bool {
    let mut problems = Vec::new();
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        problems.push("not running as root".to_owned());
    }
    if !Path::new("/proc/sys/net/ipv6").exists() {
        problems.push("IPv6 is disabled in this kernel".to_owned());
    }
    for bin in ["ip", "sysctl", "ping"].iter().chain(extra_binaries) {
        if find_in_path(bin).is_none() {
            problems.push(format!("`{bin}` not found in PATH"));
        }
    }
    decide_prerequisites(prerequisites_required(), &problems)
}

/// [`require_root`] plus what [`WireguardGo`] needs: `wg`, `wireguard-go`,
/// `nsenter`, `unshare`, `mount` and `/dev/net/tun`.
pub fn require_wireguard_go() -> bool {
    if !require_root_with(&["wg", "wireguard-go", "nsenter", "unshare", "mount"]) {
        return false;
    }
    let problems = if Path::new("/dev/net/tun").exists() {
        Vec::new()
    } else {
        vec!["/dev/net/tun does not exist".to_owned()]
    };
    decide_prerequisites(prerequisites_required(), &problems)
}

fn decide_prerequisites(strict: bool, problems: &[String]) -> bool {
    if problems.is_empty() {
        return true;
    }
    let what = problems.join("; ");
    if strict {
        panic!(
            "e2e prerequisites missing: {what} (CI or VPN_E2E_REQUIRED is set, so this fails \
             instead of skipping; run scripts/install-deps.sh as root)"
        );
    }
    eprintln!(
        "SKIPPED: e2e prerequisites missing: {what} (run as root after scripts/install-deps.sh; \
         set VPN_E2E_REQUIRED=1 to make this a failure)"
    );
    false
}

/// Looks `name` up in `PATH` (plus `/usr/sbin` and `/sbin`, which a
/// non-login root shell may lack).
pub fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Finds a binary built by cargo in this workspace (for example `vpnd`,
/// `vpnctl` or the harness's own `e2e-tcp`).
///
/// Looks in `$VPN_E2E_BIN_DIR` first, then next to the running test
/// executable (`target/<profile>/deps/..` is `target/<profile>`), then in
/// `PATH`. Binaries of other packages are only there once built: run
/// `cargo build --workspace` (or `-p vpnd`) before `cargo test -p e2e`.
pub fn find_binary(name: &str) -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("VPN_E2E_BIN_DIR") {
        let p = PathBuf::from(dir).join(name);
        if is_executable(&p) {
            return Some(p);
        }
    }
    if let Ok(exe) = std::env::current_exe() {
        for dir in exe.ancestors().skip(1).take(2) {
            let p = dir.join(name);
            if is_executable(&p) {
                return Some(p);
            }
        }
    }
    find_in_path(name)
}

/// Like [`find_binary`], but panics with a hint when the binary is missing.
pub fn cargo_binary(name: &str) -> PathBuf {
    find_binary(name).unwrap_or_else(|| {
        panic!(
            "binary `{name}` not found (looked in $VPN_E2E_BIN_DIR, next to the test executable \
             and in PATH); build it first, e.g. `cargo build --workspace --bins`"
        )
    })
}

/// Describes how a process ended, for messages: `exit 3`, `signal 9`.
pub fn describe_status(status: &ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit {code}"),
        (None, Some(sig)) => format!("signal {sig}"),
        _ => status.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_until_returns_early_and_respects_deadline() {
        let start = Instant::now();
        assert!(wait_until(
            Duration::from_secs(5),
            Duration::from_millis(1),
            || true
        ));
        assert!(start.elapsed() < Duration::from_secs(1));

        let start = Instant::now();
        let mut calls = 0;
        assert!(!wait_until(
            Duration::from_millis(50),
            Duration::from_millis(10),
            || {
                calls += 1;
                false
            }
        ));
        let took = start.elapsed();
        assert!(
            took >= Duration::from_millis(50) && took < Duration::from_secs(2),
            "{took:?}"
        );
        assert!(calls >= 2);
    }

    #[test]
    fn run_with_timeout_kills_slow_commands() {
        let start = Instant::now();
        let err = run_with_timeout(&mut command(["sleep", "10"]), Duration::from_millis(100))
            .expect_err("sleep 10 must time out");
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(start.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn run_with_input_feeds_stdin() {
        let out = run_with_input(&mut command(["cat"]), b"hello", Duration::from_secs(10)).unwrap();
        assert!(out.status.success());
        assert_eq!(out.stdout, b"hello");
    }

    #[test]
    fn run_ok_reports_failures() {
        let err = std::panic::catch_unwind(|| {
            run_ok(&mut command(["sh", "-c", "echo oops >&2; exit 4"]))
        })
        .expect_err("must panic");
        let msg = err.downcast_ref::<String>().unwrap();
        assert!(
            msg.contains("oops") && msg.contains("exit status: 4"),
            "{msg}"
        );
    }

    #[test]
    fn missing_prerequisites_skip_locally() {
        assert!(decide_prerequisites(false, &[]));
        assert!(decide_prerequisites(true, &[]));
        assert!(!decide_prerequisites(false, &["no root".to_owned()]));
    }

    #[test]
    #[should_panic(expected = "e2e prerequisites missing: no root")]
    fn missing_prerequisites_fail_in_ci() {
        decide_prerequisites(true, &["no root".to_owned()]);
    }

    #[test]
    fn command_line_quotes_spaces() {
        let cmd = command(["sh", "-c", "echo 'a b'"]);
        assert_eq!(command_line(&cmd), r"sh -c 'echo '\''a b'\'''");
    }
}
