//! The hardening tests' network: two vpnd peers and an attacker.
//!
//! ```text
//!   attacker H ── veth 10.99.1.0/24, fd99:1::/64 ── A (vpnd, 10.10.0.1) ── veth 10.99.0.0/24,
//!   sources 10.98.0.0/16 and fd98::/32                                      fd99::/64 ── B (vpnd,
//!   routed `local` to lo in H, via H in A                                                10.10.0.2)
//! ```
//!
//! A listens on 51820, B on 51821; A's tunnel address is 10.10.0.1/24 (fd10::1/64), B's
//! 10.10.0.2/24 (fd10::2/64). H can send from any address of its two source ranges (the
//! `e2e-hostile` tool picks one per datagram) and receives whatever is sent back to them.

use std::collections::BTreeMap;
use std::process::Output;
use std::time::Duration;

use crate::vpnd::{quiet_ipv6, PeerConfig, Vpnd, VpndConfig};
use crate::{cargo_binary, run_with_timeout, Netns, Proc, TestGuard, VethPair, WgKeys};

/// A's UDP port.
pub const A_PORT: u16 = 51820;
/// B's UDP port.
pub const B_PORT: u16 = 51821;
/// A's address on the A–B link.
pub const A_ON_B_LINK: &str = "10.99.0.1";
/// B's address on the A–B link.
pub const B_ON_B_LINK: &str = "10.99.0.2";
/// A's address on the A–H link.
pub const A_ON_H_LINK: &str = "10.99.1.1";
/// A's IPv6 address on the A–H link.
pub const A6_ON_H_LINK: &str = "fd99:1::1";
/// H's address on the A–H link.
pub const H_ADDR: &str = "10.99.1.2";
/// The IPv4 range H sends from.
pub const H_SOURCES4: &str = "10.98.0.0/16";
/// The IPv6 range H sends from.
pub const H_SOURCES6: &str = "fd98::/32";
/// A's tunnel address.
pub const A_TUN: &str = "10.10.0.1";
/// B's tunnel address.
pub const B_TUN: &str = "10.10.0.2";

/// What differs between the hardening tests' labs.
#[derive(Debug, Clone, Default)]
pub struct LabOptions {
    /// Environment for both daemons (e.g. `VPND_TEST_TIMER_DIVISOR`).
    pub env: Vec<(String, String)>,
    /// Whether A knows B's endpoint (and so can initiate).
    pub a_knows_b: bool,
    /// Whether B knows A's endpoint.
    pub b_knows_a: bool,
    /// B's persistent keepalive towards A.
    pub b_keepalive: Option<u16>,
    /// Preshared keys: (A's for B, B's for A).
    pub psk: (Option<String>, Option<String>),
    /// `rekey_after_bytes` for both.
    pub rekey_after_bytes: Option<u64>,
    /// Don't start B (the test starts it).
    pub no_b: bool,
}

impl LabOptions {
    /// Both sides know each other's endpoint; nothing else set.
    pub fn both_know() -> LabOptions {
        LabOptions {
            a_knows_b: true,
            b_knows_a: true,
            ..LabOptions::default()
        }
    }

    /// Adds an environment variable for both daemons.
    pub fn env(mut self, k: &str, v: &str) -> LabOptions {
        self.env.push((k.to_owned(), v.to_owned()));
        self
    }
}

/// The three namespaces and both daemons. Fields drop in order: daemons first.
#[derive(Debug)]
pub struct Lab {
    /// vpnd in A.
    pub vpnd_a: Vpnd,
    /// vpnd in B (`None` with [`LabOptions::no_b`] until [`Lab::start_b`]).
    pub vpnd_b: Option<Vpnd>,
    /// A's keys.
    pub ka: WgKeys,
    /// B's keys.
    pub kb: WgKeys,
    /// A–B link (A's end is `if_a`).
    pub link_ab: VethPair,
    /// A–H link (A's end is `if_a`).
    pub link_ah: VethPair,
    /// B's configuration (for restarts).
    pub config_b: VpndConfig,
    env: Vec<(String, String)>,
    /// Namespace A.
    pub a: Netns,
    /// Namespace B.
    pub b: Netns,
    /// Namespace H, the attacker.
    pub h: Netns,
}

impl Lab {
    /// Builds the network and starts the daemons (B unless `no_b`).
    pub fn new(guard: &TestGuard, opts: &LabOptions) -> Lab {
        let a = guard.netns();
        let b = guard.netns();
        let h = guard.netns();
        for ns in [&a, &b, &h] {
            quiet_ipv6(ns);
        }
        let link_ab = VethPair::link(
            &a,
            &b,
            &["10.99.0.1/24", "fd99::1/64"],
            &["10.99.0.2/24", "fd99::2/64"],
        );
        let link_ah = VethPair::link(
            &a,
            &h,
            &["10.99.1.1/24", "fd99:1::1/64"],
            &["10.99.1.2/24", "fd99:1::2/64"],
        );
        a.ip_ok(["route", "add", H_SOURCES4, "via", H_ADDR]);
        a.ip_ok(["-6", "route", "add", H_SOURCES6, "via", "fd99:1::2"]);
        h.ip_ok(["route", "add", "local", H_SOURCES4, "dev", "lo"]);
        h.ip_ok(["-6", "route", "add", "local", H_SOURCES6, "dev", "lo"]);

        let (ka, kb) = (WgKeys::generate(), WgKeys::generate());
        let mut peer_b = PeerConfig::new(&kb.public, &["10.10.0.2/32", "fd10::2/128"]).name("b");
        if opts.a_knows_b {
            peer_b = peer_b.endpoint(&format!("{B_ON_B_LINK}:{B_PORT}"));
        }
        if let Some(psk) = &opts.psk.0 {
            peer_b = peer_b.preshared_key(psk);
        }
        let mut peer_a = PeerConfig::new(&ka.public, &["10.10.0.1/32", "fd10::1/128"]).name("a");
        if opts.b_knows_a {
            peer_a = peer_a.endpoint(&format!("{A_ON_B_LINK}:{A_PORT}"));
        }
        if let Some(psk) = &opts.psk.1 {
            peer_a = peer_a.preshared_key(psk);
        }
        if let Some(k) = opts.b_keepalive {
            peer_a = peer_a.persistent_keepalive(k);
        }
        let mut config_a = VpndConfig::new("vpn0", &ka)
            .listen_port(A_PORT)
            .addresses(&["10.10.0.1/24", "fd10::1/64"])
            .peer(peer_b);
        let mut config_b = VpndConfig::new("vpn0", &kb)
            .listen_port(B_PORT)
            .addresses(&["10.10.0.2/24", "fd10::2/64"])
            .peer(peer_a);
        if let Some(n) = opts.rekey_after_bytes {
            config_a = config_a.rekey_after_bytes(n);
            config_b = config_b.rekey_after_bytes(n);
        }
        let env: Vec<(&str, &str)> = opts
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let vpnd_a = Vpnd::start_with_env(&a, &config_a, &env);
        let vpnd_b = (!opts.no_b).then(|| Vpnd::start_with_env(&b, &config_b, &env));
        Lab {
            vpnd_a,
            vpnd_b,
            ka,
            kb,
            link_ab,
            link_ah,
            config_b,
            env: opts.env.clone(),
            a,
            b,
            h,
        }
    }

    /// Starts B (after [`LabOptions::no_b`], or after it was killed and dropped).
    pub fn start_b(&mut self) {
        let env: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        self.vpnd_b = Some(Vpnd::start_with_env(&self.b, &self.config_b, &env));
    }

    /// vpnd B.
    ///
    /// # Panics
    /// If B is not running.
    pub fn b(&self) -> &Vpnd {
        self.vpnd_b.as_ref().expect("vpnd B is not running")
    }

    /// vpnd B, mutably.
    ///
    /// # Panics
    /// If B is not running.
    pub fn b_mut(&mut self) -> &mut Vpnd {
        self.vpnd_b.as_mut().expect("vpnd B is not running")
    }

    /// A's IPv4 UDP endpoint as the attacker addresses it.
    pub fn a_target(&self) -> String {
        format!("{A_ON_H_LINK}:{A_PORT}")
    }

    /// A's IPv6 UDP endpoint as the attacker addresses it.
    pub fn a_target6(&self) -> String {
        format!("[{A6_ON_H_LINK}]:{A_PORT}")
    }

    /// Runs `e2e-hostile args...` in H to completion (within `timeout`) and returns its
    /// output.
    ///
    /// # Panics
    /// If it fails or times out; with its output.
    pub fn hostile(&self, args: &[&str], timeout: Duration) -> Output {
        let mut cmd = self.h.command([cargo_binary("e2e-hostile")]);
        cmd.args(args);
        let out = run_with_timeout(&mut cmd, timeout).unwrap_or_else(|e| panic!("{e}"));
        if !out.status.success() {
            panic!(
                "e2e-hostile {args:?} failed: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
                crate::describe_status(&out.status),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        out
    }

    /// Starts `e2e-hostile args...` in H in the background.
    pub fn spawn_hostile(&self, args: &[&str]) -> Proc {
        let mut all = vec![cargo_binary("e2e-hostile").to_string_lossy().into_owned()];
        all.extend(args.iter().map(|s| (*s).to_owned()));
        self.h.spawn(&all)
    }
}

/// The `name value` lines of an `e2e-hostile` run, by name (the value is the rest of the line).
pub fn fields(stdout: &[u8]) -> BTreeMap<String, String> {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(k, v)| (k.to_owned(), v.trim().to_owned()))
        .collect()
}

/// A numeric field of [`fields`] (0 when absent).
pub fn field(fields: &BTreeMap<String, String>, name: &str) -> u64 {
    fields
        .get(name)
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Counter deltas between two drop snapshots, for every reason that changed.
pub fn drop_deltas(
    before: &BTreeMap<String, u64>,
    after: &BTreeMap<String, u64>,
) -> BTreeMap<String, u64> {
    after
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                v.saturating_sub(before.get(k).copied().unwrap_or(0)),
            )
        })
        .filter(|(_, d)| *d > 0)
        .collect()
}

/// Runs an iperf3 test: a one-off server bound to `bind` in `server`, and
/// `iperf3 -c <bind> -J client_args...` in `client`; returns the client's JSON report.
///
/// # Panics
/// If either side fails or the run exceeds `timeout`; with both outputs.
pub fn iperf3(
    server: &Netns,
    bind: &str,
    client: &Netns,
    client_args: &[&str],
    timeout: Duration,
) -> serde_json::Value {
    let srv = server.spawn(["iperf3", "-s", "-1", "-B", bind, "--forceflush"]);
    if !srv.wait_for_output("listening", Duration::from_secs(10)) {
        panic!("iperf3 server did not start\n{}", srv.logs());
    }
    let mut cmd = client.command(["iperf3", "-c", bind, "-J"]);
    cmd.args(client_args);
    let out = run_with_timeout(&mut cmd, timeout).unwrap_or_else(|e| panic!("{e}"));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "iperf3 printed no JSON ({e}): {}\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            srv.logs()
        )
    });
    if !out.status.success() || report.get("error").is_some() {
        panic!(
            "iperf3 failed: {}\n{}",
            report.get("error").unwrap_or(&serde_json::Value::Null),
            srv.logs()
        );
    }
    report
}

/// The receiver's throughput in an iperf3 TCP report, bits per second.
pub fn iperf3_received_bps(report: &serde_json::Value) -> f64 {
    report["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .unwrap_or_else(|| panic!("no end.sum_received in {report}"))
}
