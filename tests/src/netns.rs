//! Network namespaces ([`Netns`]), veth links ([`VethPair`]) and the
//! per-test cleanup guard ([`TestGuard`]).

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Once, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use crate::process::kill;
use crate::{check_output, command, run_ok, run_with_timeout, wait_until, Proc, COMMAND_TIMEOUT};

/// Prefix of every namespace the harness creates: `vpnt-<pid>-<counter>`.
/// `scripts/cleanup-test-netns.sh` removes leftovers by this prefix.
pub const NETNS_PREFIX: &str = "vpnt-";

/// How long namespace teardown waits for SIGTERMed processes before SIGKILL.
const TEARDOWN_TERM_WAIT: Duration = Duration::from_secs(3);
/// How long namespace teardown waits for SIGKILLed processes to vanish.
const TEARDOWN_KILL_WAIT: Duration = Duration::from_secs(3);
/// How long [`VethPair::link`] waits for both ends to become operational.
const LINK_UP_TIMEOUT: Duration = Duration::from_secs(10);

static NETNS_COUNTER: AtomicU64 = AtomicU64::new(0);
static LINK_COUNTER: AtomicU64 = AtomicU64::new(0);
/// Namespaces this process created and has not deleted yet.
static LIVE: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());
static EXIT_HOOK: Once = Once::new();

type Owned = Arc<Mutex<Vec<String>>>;

fn live() -> std::sync::MutexGuard<'static, BTreeSet<String>> {
    LIVE.lock().unwrap_or_else(PoisonError::into_inner)
}

extern "C" fn cleanup_at_exit() {
    // Last resort for namespaces whose `Netns` was never dropped. Normal
    // tests have removed all of theirs by now.
    let names: Vec<String> = match LIVE.try_lock() {
        Ok(set) => set.iter().cloned().collect(),
        Err(_) => return,
    };
    for name in names {
        eprintln!("e2e: removing leaked namespace {name} at exit");
        destroy_netns(&name);
    }
}

/// A network namespace named `vpnt-<pid>-<counter>`, deleted on drop.
///
/// On creation `lo` is brought up, IPv6 is enabled
/// (`disable_ipv6=0`) and duplicate address detection is disabled
/// (`accept_dad=0`) so IPv6 addresses are usable at once.
///
/// On drop every process still in the namespace is stopped (SIGTERM, then
/// SIGKILL, by PID from `ip netns pids`) and the namespace is deleted,
/// which also destroys its interfaces (both ends of a veth pair). That
/// happens during unwinding too, so a failing assertion cleans up.
#[derive(Debug)]
pub struct Netns {
    name: String,
    owner: Option<Owned>,
}

impl Netns {
    /// Creates a namespace, not tied to a [`TestGuard`].
    ///
    /// # Panics
    /// If the namespace cannot be created or configured (not root, no IPv6).
    pub fn new() -> Netns {
        Netns::create(None)
    }

    fn create(owner: Option<Owned>) -> Netns {
        EXIT_HOOK.call_once(|| {
            // SAFETY: registering a plain extern "C" fn with atexit.
            unsafe { libc::atexit(cleanup_at_exit) };
        });
        let name = format!(
            "{NETNS_PREFIX}{}-{}",
            std::process::id(),
            NETNS_COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        run_ok(&mut command(["ip", "netns", "add", &name]));
        live().insert(name.clone());
        if let Some(owner) = &owner {
            owner
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(name.clone());
        }
        // From here on, Drop removes the namespace if configuration panics.
        let ns = Netns { name, owner };
        ns.ip_ok(["link", "set", "lo", "up"]);
        ns.exec_ok([
            "sysctl",
            "-q",
            "-w",
            "net.ipv6.conf.all.disable_ipv6=0",
            "net.ipv6.conf.default.disable_ipv6=0",
            "net.ipv6.conf.lo.disable_ipv6=0",
            "net.ipv6.conf.all.accept_dad=0",
            "net.ipv6.conf.default.accept_dad=0",
        ]);
        ns
    }

    /// The namespace's name, as `ip netns` knows it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A [`Command`] that runs `args` inside the namespace
    /// (`ip netns exec <name> args...`). The first item is the program.
    ///
    /// `ip netns exec` execs the program in place, so the child's PID is the
    /// program's PID.
    pub fn command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name]).args(args);
        cmd
    }

    /// Runs `args` inside the namespace and returns its output, whatever the
    /// exit status.
    ///
    /// # Panics
    /// If it cannot be started or does not finish within
    /// [`COMMAND_TIMEOUT`].
    pub fn exec<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.exec_timeout(args, COMMAND_TIMEOUT)
    }

    /// [`Netns::exec`] with an explicit deadline.
    pub fn exec_timeout<I, S>(&self, args: I, timeout: Duration) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        run_with_timeout(&mut self.command(args), timeout).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Runs `args` inside the namespace and returns its stdout.
    ///
    /// # Panics
    /// Unless it exits with status 0 within [`COMMAND_TIMEOUT`]; the message
    /// holds stdout and stderr.
    pub fn exec_ok<I, S>(&self, args: I) -> String
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = self.command(args);
        let out = run_with_timeout(&mut cmd, COMMAND_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
        check_output(&cmd, &out);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs `ip -n <name> args...` (from outside the namespace, which is
    /// cheaper than `ip netns exec`) and returns its stdout.
    ///
    /// # Panics
    /// Unless it succeeds within [`COMMAND_TIMEOUT`].
    pub fn ip_ok<I, S>(&self, args: I) -> String
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = Command::new("ip");
        cmd.args(["-n", &self.name]).args(args);
        run_ok(&mut cmd)
    }

    /// Starts `args` inside the namespace as a guarded [`Proc`], labelled
    /// with the program's file name.
    ///
    /// For a custom environment or working directory use
    /// [`Netns::command`] and [`Proc::spawn`].
    ///
    /// # Panics
    /// If the process cannot be started.
    pub fn spawn<I, S>(&self, args: I) -> Proc
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let args: Vec<S> = args.into_iter().collect();
        let label = args
            .first()
            .and_then(|a| std::path::Path::new(a.as_ref()).file_name())
            .map_or_else(|| "proc".to_owned(), |n| n.to_string_lossy().into_owned());
        Proc::spawn(&format!("{}-{label}", self.name), self.command(args))
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Waits until interface `ifname` has operational state UP (`ip link`
    /// shows `state UP`).
    ///
    /// # Panics
    /// If it does not within `timeout`; the message shows the link.
    pub fn wait_link_up(&self, ifname: &str, timeout: Duration) {
        let show = || {
            run_with_timeout(
                &mut command(["ip", "-n", &self.name, "-o", "link", "show", "dev", ifname]),
                COMMAND_TIMEOUT,
            )
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
        };
        if !wait_until(timeout, Duration::from_millis(10), || {
            show().contains(" state UP ")
        }) {
            panic!(
                "{ifname} in {} not up within {timeout:?}: {}",
                self.name,
                show()
            );
        }
    }

    /// PIDs of all processes currently in the namespace.
    pub fn pids(&self) -> Vec<u32> {
        netns_pids(&self.name)
    }

    /// Sets a sysctl inside the namespace (`key` like
    /// `net.ipv4.ip_forward`).
    pub fn sysctl(&self, key: &str, value: &str) {
        self.exec_ok(["sysctl", "-q", "-w", &format!("{key}={value}")]);
    }
}

impl Default for Netns {
    fn default() -> Self {
        Netns::new()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        destroy_netns(&self.name);
        if let Some(owner) = &self.owner {
            owner
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .retain(|n| n != &self.name);
        }
    }
}

fn netns_pids(name: &str) -> Vec<u32> {
    let out = run_with_timeout(&mut command(["ip", "netns", "pids", name]), COMMAND_TIMEOUT);
    match out {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect(),
        _ => Vec::new(),
    }
}

/// Stops every process in namespace `name`, then deletes it. Never panics
/// (it runs in `Drop`); problems are printed.
fn destroy_netns(name: &str) {
    let ours = std::process::id();
    let signal_all = |sig: i32| {
        let pids = netns_pids(name);
        for &pid in &pids {
            // Never signal ourselves, even if something moved us in there.
            if pid != ours {
                let _ = kill(pid as i32, sig);
            }
        }
        !pids.is_empty()
    };
    let empty = || netns_pids(name).is_empty();
    if signal_all(libc::SIGTERM)
        && !wait_until(TEARDOWN_TERM_WAIT, Duration::from_millis(20), empty)
    {
        signal_all(libc::SIGKILL);
        if !wait_until(TEARDOWN_KILL_WAIT, Duration::from_millis(20), empty) {
            eprintln!(
                "e2e: processes {:?} in {name} survived SIGKILL",
                netns_pids(name)
            );
        }
    }
    let mut last_err = String::new();
    let deleted = wait_until(Duration::from_secs(5), Duration::from_millis(50), || {
        match run_with_timeout(&mut command(["ip", "netns", "del", name]), COMMAND_TIMEOUT) {
            Ok(out) if out.status.success() => true,
            Ok(out) => {
                last_err = String::from_utf8_lossy(&out.stderr).into_owned();
                // Already gone (e.g. removed by a TestGuard): done.
                !std::path::Path::new("/run/netns").join(name).exists()
            }
            Err(e) => {
                last_err = e.to_string();
                false
            }
        }
    });
    if deleted {
        live().remove(name);
    } else {
        eprintln!("e2e: could not delete namespace {name}: {last_err}");
    }
}

/// A per-test cleanup guard and namespace factory.
///
/// Create one at the top of a test and make namespaces with
/// [`TestGuard::netns`]. Each [`Netns`] deletes itself when dropped; the
/// guard, dropped last because it was declared first, deletes any of its
/// namespaces that are somehow still there, and when the test is failing
/// prints which test it was and how long it ran (logs of [`Proc`]s are
/// printed by the `Proc`s themselves).
///
/// ```no_run
/// let guard = e2e::TestGuard::new("my_test");
/// let a = guard.netns();
/// let b = guard.netns();
/// ```
#[derive(Debug)]
pub struct TestGuard {
    name: String,
    started: Instant,
    owned: Owned,
}

impl TestGuard {
    /// Starts guarding the test called `name` (used in messages only).
    pub fn new(name: &str) -> TestGuard {
        TestGuard {
            name: name.to_owned(),
            started: Instant::now(),
            owned: Owned::default(),
        }
    }

    /// Creates a namespace owned by this guard.
    ///
    /// # Panics
    /// As [`Netns::new`].
    pub fn netns(&self) -> Netns {
        Netns::create(Some(Arc::clone(&self.owned)))
    }

    /// Time since the guard was created.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }
}

impl Drop for TestGuard {
    fn drop(&mut self) {
        let leftovers: Vec<String> =
            std::mem::take(&mut *self.owned.lock().unwrap_or_else(PoisonError::into_inner));
        for name in &leftovers {
            destroy_netns(name);
        }
        if thread::panicking() {
            eprintln!(
                "e2e: test {} failed after {:.1?}; its namespaces were removed",
                self.name,
                self.elapsed()
            );
        }
    }
}

/// A veth pair between two namespaces.
///
/// Each end is created directly inside its namespace (so names only need
/// to be unique there), gets its addresses (IPv6 ones with `nodad`) and is
/// brought up. Nothing happens on drop: the ends vanish with their
/// namespaces. Use [`VethPair::remove`] to cut the link earlier.
#[derive(Debug, Clone)]
#[must_use = "the link stays up either way; keep the names to refer to it"]
pub struct VethPair {
    /// Namespace of end A.
    pub ns_a: String,
    /// Interface name of end A (inside `ns_a`).
    pub if_a: String,
    /// Namespace of end B.
    pub ns_b: String,
    /// Interface name of end B (inside `ns_b`).
    pub if_b: String,
}

impl VethPair {
    /// Links `a` and `b` with a new veth pair, adds `addrs_a` / `addrs_b`
    /// (CIDR notation, IPv4 or IPv6, e.g. `10.99.0.1/24`, `fd99::1/64`) and
    /// sets both ends up.
    ///
    /// # Panics
    /// If any `ip` command fails.
    pub fn link(a: &Netns, b: &Netns, addrs_a: &[&str], addrs_b: &[&str]) -> VethPair {
        let n = LINK_COUNTER.fetch_add(1, Ordering::Relaxed);
        let (if_a, if_b) = (format!("veth{n}a"), format!("veth{n}b"));
        a.ip_ok([
            "link",
            "add",
            &if_a,
            "type",
            "veth",
            "peer",
            "name",
            &if_b,
            "netns",
            b.name(),
        ]);
        for (ns, ifname, addrs) in [(a, &if_a, addrs_a), (b, &if_b, addrs_b)] {
            for addr in addrs {
                add_address(ns.name(), ifname, addr);
            }
            ns.ip_ok(["link", "set", ifname, "up"]);
        }
        // Until the kernel's linkwatch has run (rate-limited, up to ~1 s) a
        // new veth end transmits into a no-op qdisc, silently dropping e.g.
        // the first neighbour advertisement. Operational state UP is set in
        // the same step, so wait for it on both ends.
        for (ns, ifname) in [(a, &if_a), (b, &if_b)] {
            ns.wait_link_up(ifname, LINK_UP_TIMEOUT);
        }
        VethPair {
            ns_a: a.name().to_owned(),
            if_a,
            ns_b: b.name().to_owned(),
            if_b,
        }
    }

    /// Sets the MTU of both ends.
    pub fn set_mtu(&self, mtu: u32) {
        let mtu = mtu.to_string();
        for (ns, ifname) in [(&self.ns_a, &self.if_a), (&self.ns_b, &self.if_b)] {
            run_ok(&mut command([
                "ip", "-n", ns, "link", "set", ifname, "mtu", &mtu,
            ]));
        }
    }

    /// Brings end A down or up again (the carrier of end B follows).
    pub fn set_up(&self, up: bool) {
        let state = if up { "up" } else { "down" };
        run_ok(&mut command([
            "ip", "-n", &self.ns_a, "link", "set", &self.if_a, state,
        ]));
        if up {
            for (ns, ifname) in [(&self.ns_a, &self.if_a), (&self.ns_b, &self.if_b)] {
                let show = || {
                    run_with_timeout(
                        &mut command(["ip", "-n", ns, "-o", "link", "show", "dev", ifname]),
                        COMMAND_TIMEOUT,
                    )
                    .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(" state UP "))
                };
                assert!(
                    wait_until(LINK_UP_TIMEOUT, Duration::from_millis(10), show),
                    "{ifname} in {ns} not up"
                );
            }
        }
    }

    /// Deletes the pair (both ends).
    pub fn remove(self) {
        run_ok(&mut command([
            "ip", "-n", &self.ns_a, "link", "del", &self.if_a,
        ]));
    }
}

/// Adds `addr` (CIDR) to `ifname` in `ns`; IPv6 addresses get `nodad` so
/// they are usable at once.
pub(crate) fn add_address(ns: &str, ifname: &str, addr: &str) {
    let mut cmd = command(["ip", "-n", ns, "addr", "add", addr, "dev", ifname]);
    if addr.contains(':') {
        cmd.arg("nodad");
    }
    run_ok(&mut cmd);
}
