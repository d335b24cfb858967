//! Helpers for tests that run `vpnd`: configuration files built from
//! parameters ([`VpndConfig`], [`PeerConfig`]), a guarded daemon inside a
//! namespace ([`Vpnd`]) that is ready once `vpnctl show --json` answers on
//! its control socket, and small queries on the result ([`ShowResult`]).
//!
//! Every [`Vpnd`] gets a private temporary directory that holds its
//! configuration file and its control socket, so tests running in parallel
//! never share a socket path, and nothing is written outside `/tmp`.
//!
//! ```no_run
//! use e2e::vpnd::{PeerConfig, Vpnd, VpndConfig};
//! use e2e::{TestGuard, WgKeys};
//!
//! let guard = TestGuard::new("example");
//! let a = guard.netns();
//! let (ka, kb) = (WgKeys::generate(), WgKeys::generate());
//! let config = VpndConfig::new("vpn0", &ka)
//!     .listen_port(51820)
//!     .addresses(&["10.10.0.1/24"])
//!     .peer(PeerConfig::new(&kb.public, &["10.10.0.2/32"]).endpoint("10.99.0.2:51820"));
//! let vpnd = Vpnd::start(&a, &config);
//! let peer = vpnd.peer(&kb.public);
//! assert_eq!(peer.state, "handshaking");
//! ```

use std::ffi::OsStr;
use std::fmt::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output};
use std::time::Duration;

use tempfile::TempDir;

pub use protocol::rpc::{InterfaceInfo, PeerInfo, ShowResult, StatsResult};

use crate::{
    cargo_binary, command, run_with_timeout, wait_until, Netns, Proc, WgKeys, WireguardGo,
};

/// How long [`Vpnd::start`] waits for the control socket to answer.
pub const START_TIMEOUT: Duration = Duration::from_secs(15);
/// Deadline for one `vpnctl` call.
const VPNCTL_TIMEOUT: Duration = Duration::from_secs(10);
/// Environment variable for vpnd's `--log-level` in tests (default `info`).
pub const LOG_LEVEL_ENV: &str = "VPN_E2E_VPND_LOG_LEVEL";

/// One entry of a configuration's `peers` list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerConfig {
    /// `name`, a label for logs and `vpnctl`.
    pub name: Option<String>,
    /// `public_key` (base64).
    pub public_key: String,
    /// `preshared_key` (base64), given inline.
    pub preshared_key: Option<String>,
    /// `preshared_key_file`: a file holding the preshared key (written
    /// instead of `preshared_key` when set).
    pub preshared_key_file: Option<PathBuf>,
    /// `allowed_ips`, in CIDR form.
    pub allowed_ips: Vec<String>,
    /// `endpoint`: `ipv4:port` or `[ipv6]:port`.
    pub endpoint: Option<String>,
    /// `persistent_keepalive` in seconds.
    pub persistent_keepalive: Option<u16>,
}

impl PeerConfig {
    /// A peer with `public_key` and `allowed_ips`, no endpoint, no preshared
    /// key, no keepalive.
    pub fn new(public_key: &str, allowed_ips: &[&str]) -> PeerConfig {
        PeerConfig {
            public_key: public_key.to_owned(),
            allowed_ips: allowed_ips.iter().map(|s| (*s).to_owned()).collect(),
            ..PeerConfig::default()
        }
    }

    /// Sets `name`.
    pub fn name(mut self, name: &str) -> PeerConfig {
        self.name = Some(name.to_owned());
        self
    }

    /// Sets `endpoint` (`10.99.0.2:51820`, `[fd99::2]:51820`).
    pub fn endpoint(mut self, endpoint: &str) -> PeerConfig {
        self.endpoint = Some(endpoint.to_owned());
        self
    }

    /// Sets `preshared_key`.
    pub fn preshared_key(mut self, psk: &str) -> PeerConfig {
        self.preshared_key = Some(psk.to_owned());
        self
    }

    /// Sets `preshared_key_file`.
    pub fn preshared_key_file(mut self, path: &Path) -> PeerConfig {
        self.preshared_key_file = Some(path.to_owned());
        self
    }

    /// Sets `persistent_keepalive`.
    pub fn persistent_keepalive(mut self, seconds: u16) -> PeerConfig {
        self.persistent_keepalive = Some(seconds);
        self
    }
}

/// A `vpnd` configuration, rendered to YAML by [`VpndConfig::to_yaml`].
///
/// The private key is written inline (`private_key`); the file is created
/// mode 0600 so `vpnd` has nothing to warn about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VpndConfig {
    /// `interface.name`, the TUN device.
    pub ifname: String,
    /// `interface.private_key` (base64).
    pub private_key: String,
    /// `interface.private_key_file`: when set, written instead of
    /// `private_key` (the file must hold the same key for the helpers that
    /// compare public keys).
    pub private_key_file: Option<PathBuf>,
    /// `interface.listen_port`; `None` leaves the field out (any free port).
    pub listen_port: Option<u16>,
    /// `interface.addresses`, in CIDR form.
    pub addresses: Vec<String>,
    /// `interface.mtu`; `None` leaves the default (1420).
    pub mtu: Option<u32>,
    /// `control.socket`; `None` lets [`Vpnd::spawn`] put it in the daemon's
    /// private temporary directory.
    pub socket: Option<PathBuf>,
    /// `interface.rekey_after_bytes`; `None` leaves the default (1 GiB).
    pub rekey_after_bytes: Option<u64>,
    /// `control.group`.
    pub control_group: Option<String>,
    /// `stun_servers` (`host:port`).
    pub stun_servers: Vec<String>,
    /// `hubs`: (address, public key).
    pub hubs: Vec<(String, String)>,
    /// Every hub's `tls`: (port, CA file).
    pub hub_tls: Option<(u16, PathBuf)>,
    /// `peers`.
    pub peers: Vec<PeerConfig>,
}

impl VpndConfig {
    /// A configuration for interface `ifname` with the private key of
    /// `keys`, and nothing else.
    pub fn new(ifname: &str, keys: &WgKeys) -> VpndConfig {
        VpndConfig {
            ifname: ifname.to_owned(),
            private_key: keys.private.clone(),
            private_key_file: None,
            listen_port: None,
            addresses: Vec::new(),
            mtu: None,
            socket: None,
            rekey_after_bytes: None,
            control_group: None,
            stun_servers: Vec::new(),
            hubs: Vec::new(),
            hub_tls: None,
            peers: Vec::new(),
        }
    }

    /// Sets every hub's `tls` (`port`, `ca_file`).
    pub fn hub_tls(mut self, port: u16, ca_file: &Path) -> VpndConfig {
        self.hub_tls = Some((port, ca_file.to_owned()));
        self
    }

    /// Sets `stun_servers`.
    pub fn stun_servers(mut self, servers: &[&str]) -> VpndConfig {
        self.stun_servers = servers.iter().map(|s| (*s).to_owned()).collect();
        self
    }

    /// Appends a hub (`address`, `public_key`).
    pub fn hub(mut self, address: &str, public_key: &str) -> VpndConfig {
        self.hubs.push((address.to_owned(), public_key.to_owned()));
        self
    }

    /// Sets `interface.rekey_after_bytes`.
    pub fn rekey_after_bytes(mut self, bytes: u64) -> VpndConfig {
        self.rekey_after_bytes = Some(bytes);
        self
    }

    /// Sets `interface.listen_port`.
    pub fn listen_port(mut self, port: u16) -> VpndConfig {
        self.listen_port = Some(port);
        self
    }

    /// Sets `interface.addresses`.
    pub fn addresses(mut self, addrs: &[&str]) -> VpndConfig {
        self.addresses = addrs.iter().map(|s| (*s).to_owned()).collect();
        self
    }

    /// Sets `interface.private_key_file` (the key is then read from it).
    pub fn private_key_file(mut self, path: &Path) -> VpndConfig {
        self.private_key_file = Some(path.to_owned());
        self
    }

    /// Sets `interface.mtu`.
    pub fn mtu(mut self, mtu: u32) -> VpndConfig {
        self.mtu = Some(mtu);
        self
    }

    /// Appends a peer.
    pub fn peer(mut self, peer: PeerConfig) -> VpndConfig {
        self.peers.push(peer);
        self
    }

    /// The configuration as a YAML document (every string double-quoted, so
    /// base64 keys and bracketed IPv6 endpoints need no care).
    pub fn to_yaml(&self) -> String {
        let mut y = String::from("interface:\n");
        let _ = writeln!(y, "  name: {}", quote(&self.ifname));
        match &self.private_key_file {
            Some(file) => {
                let _ = writeln!(y, "  private_key_file: {}", quote(&file.to_string_lossy()));
            }
            None => {
                let _ = writeln!(y, "  private_key: {}", quote(&self.private_key));
            }
        }
        if let Some(port) = self.listen_port {
            let _ = writeln!(y, "  listen_port: {port}");
        }
        let _ = writeln!(y, "  addresses: {}", list(&self.addresses));
        if let Some(mtu) = self.mtu {
            let _ = writeln!(y, "  mtu: {mtu}");
        }
        if let Some(bytes) = self.rekey_after_bytes {
            let _ = writeln!(y, "  rekey_after_bytes: {bytes}");
        }
        if self.socket.is_some() || self.control_group.is_some() {
            y.push_str("control:\n");
        }
        if let Some(socket) = &self.socket {
            let _ = writeln!(y, "  socket: {}", quote(&socket.to_string_lossy()));
        }
        if let Some(group) = &self.control_group {
            let _ = writeln!(y, "  group: {}", quote(group));
        }
        if !self.stun_servers.is_empty() {
            let _ = writeln!(y, "stun_servers: {}", list(&self.stun_servers));
        }
        if !self.hubs.is_empty() {
            y.push_str("hubs:\n");
        }
        for (address, key) in &self.hubs {
            let _ = writeln!(y, "  - address: {}", quote(address));
            let _ = writeln!(y, "    public_key: {}", quote(key));
            if let Some((port, ca)) = &self.hub_tls {
                let _ = writeln!(y, "    tls:\n      port: {port}");
                let _ = writeln!(y, "      ca_file: {}", quote(&ca.to_string_lossy()));
            }
        }
        if self.peers.is_empty() {
            y.push_str("peers: []\n");
        } else {
            y.push_str("peers:\n");
        }
        for p in &self.peers {
            let _ = writeln!(y, "  - public_key: {}", quote(&p.public_key));
            if let Some(name) = &p.name {
                let _ = writeln!(y, "    name: {}", quote(name));
            }
            if let Some(file) = &p.preshared_key_file {
                let _ = writeln!(
                    y,
                    "    preshared_key_file: {}",
                    quote(&file.to_string_lossy())
                );
            } else if let Some(psk) = &p.preshared_key {
                let _ = writeln!(y, "    preshared_key: {}", quote(psk));
            }
            let _ = writeln!(y, "    allowed_ips: {}", list(&p.allowed_ips));
            if let Some(ep) = &p.endpoint {
                let _ = writeln!(y, "    endpoint: {}", quote(ep));
            }
            if let Some(k) = p.persistent_keepalive {
                let _ = writeln!(y, "    persistent_keepalive: {k}");
            }
        }
        y
    }
}

/// The same peers as a `wg setconf` file for a [`crate::WireguardGo`]
/// interface with private key `keys.private` listening on `listen_port`,
/// so a test can describe both sides of an interoperability test with
/// [`PeerConfig`]s. Peer names are written as comments.
pub fn wg_setconf_text(keys: &WgKeys, listen_port: u16, peers: &[PeerConfig]) -> String {
    let mut c = format!(
        "[Interface]\nPrivateKey = {}\nListenPort = {listen_port}\n",
        keys.private
    );
    for p in peers {
        c.push_str("\n[Peer]\n");
        if let Some(name) = &p.name {
            let _ = writeln!(c, "# {name}");
        }
        let _ = writeln!(c, "PublicKey = {}", p.public_key);
        if let Some(psk) = &p.preshared_key {
            let _ = writeln!(c, "PresharedKey = {psk}");
        }
        if !p.allowed_ips.is_empty() {
            let _ = writeln!(c, "AllowedIPs = {}", p.allowed_ips.join(", "));
        }
        if let Some(ep) = &p.endpoint {
            let _ = writeln!(c, "Endpoint = {ep}");
        }
        if let Some(k) = p.persistent_keepalive {
            let _ = writeln!(c, "PersistentKeepalive = {k}");
        }
    }
    c
}

/// A YAML double-quoted scalar (JSON string syntax is valid YAML).
fn quote(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

fn list(items: &[String]) -> String {
    let items: Vec<String> = items.iter().map(|s| quote(s)).collect();
    format!("[{}]", items.join(", "))
}

/// Writes `contents` to `dir/name` with mode 0600 (configuration files may
/// hold keys) and returns the path.
///
/// # Panics
/// If the file cannot be written.
pub fn write_config_file(dir: &Path, name: &str, contents: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, contents)
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
        .unwrap_or_else(|e| panic!("cannot chmod {}: {e}", path.display()));
    path
}

/// A `vpnd --config FILE` process running inside a [`Netns`].
///
/// It owns a private temporary directory with the configuration file
/// (`vpnd.yaml`) and, unless the configuration names another path, the
/// control socket (`control.sock`). Dropping it stops the daemon like any
/// [`Proc`] (SIGTERM, then SIGKILL) and prints its logs if the test is
/// failing; then the directory is removed.
#[derive(Debug)]
pub struct Vpnd {
    proc: Proc,
    netns: String,
    ifname: String,
    config_path: PathBuf,
    socket: PathBuf,
    env: Vec<(String, String)>,
    binary: PathBuf,
    // Declared last: removed after the process has been stopped.
    _dir: TempDir,
}

impl Vpnd {
    /// Writes `config` to a fresh temporary directory, starts `vpnd` in `ns`
    /// and waits (up to [`START_TIMEOUT`]) until `vpnctl show --json`
    /// answers on its control socket.
    ///
    /// # Panics
    /// If `vpnd` exits or is not ready in time; the message holds its logs.
    pub fn start(ns: &Netns, config: &VpndConfig) -> Vpnd {
        Vpnd::start_with_env(ns, config, &[])
    }

    /// [`Vpnd::start`] with extra environment variables for the daemon
    /// (for example `VPND_TEST_TIMER_DIVISOR`).
    pub fn start_with_env(ns: &Netns, config: &VpndConfig, env: &[(&str, &str)]) -> Vpnd {
        let mut vpnd = Vpnd::spawn_with_env(ns, config, env);
        vpnd.wait_ready(START_TIMEOUT);
        vpnd
    }

    /// Writes `config` and starts `vpnd` without waiting for it to be ready.
    ///
    /// # Panics
    /// If the files cannot be written or the process cannot be started.
    pub fn spawn(ns: &Netns, config: &VpndConfig) -> Vpnd {
        Vpnd::spawn_with_env(ns, config, &[])
    }

    /// [`Vpnd::spawn`] with extra environment variables for the daemon.
    pub fn spawn_with_env(ns: &Netns, config: &VpndConfig, env: &[(&str, &str)]) -> Vpnd {
        Vpnd::spawn_binary(&cargo_binary("vpnd"), ns, config, env)
    }

    /// [`Vpnd::start_with_env`] with another `vpnd` executable, such as the
    /// one [`fault_injection_vpnd`] builds.
    pub fn start_binary(
        binary: &Path,
        ns: &Netns,
        config: &VpndConfig,
        env: &[(&str, &str)],
    ) -> Vpnd {
        let mut vpnd = Vpnd::spawn_binary(binary, ns, config, env);
        vpnd.wait_ready(START_TIMEOUT);
        vpnd
    }

    /// Starts `vpnd --config <config_path>` with a configuration file the test wrote itself (a
    /// TOML file, say) in `dir`, which the returned value owns; `ifname` and `socket` must be the
    /// ones the file names. Waits until the daemon is ready.
    ///
    /// # Panics
    /// If `vpnd` exits or is not ready in time.
    pub fn start_with_file(
        ns: &Netns,
        ifname: &str,
        socket: &Path,
        dir: TempDir,
        config_path: &Path,
    ) -> Vpnd {
        let binary = cargo_binary("vpnd");
        let proc = spawn_proc(&binary, ns, ifname, config_path, &[]);
        let mut vpnd = Vpnd {
            proc,
            netns: ns.name().to_owned(),
            ifname: ifname.to_owned(),
            config_path: config_path.to_path_buf(),
            socket: socket.to_path_buf(),
            env: Vec::new(),
            binary,
            _dir: dir,
        };
        vpnd.wait_ready(START_TIMEOUT);
        vpnd
    }

    fn spawn_binary(binary: &Path, ns: &Netns, config: &VpndConfig, env: &[(&str, &str)]) -> Vpnd {
        let dir = tempfile::Builder::new()
            .prefix("vpnt-vpnd-")
            .tempdir()
            .unwrap_or_else(|e| panic!("cannot create a temporary directory: {e}"));
        let mut config = config.clone();
        let socket = config
            .socket
            .get_or_insert_with(|| dir.path().join("control.sock"))
            .clone();
        let config_path = write_config_file(dir.path(), "vpnd.yaml", &config.to_yaml());
        let proc = spawn_proc(binary, ns, &config.ifname, &config_path, env);
        Vpnd {
            proc,
            netns: ns.name().to_owned(),
            ifname: config.ifname,
            config_path,
            socket,
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            binary: binary.to_path_buf(),
            _dir: dir,
        }
    }

    /// Starts `vpnd` in `ns` from a configuration written elsewhere (by
    /// `vpnctl import`, say) for interface `ifname`, and waits until it is
    /// ready. `yaml` is used as it is, with a `control.socket` in the
    /// daemon's temporary directory appended, so it must have no `control`
    /// section of its own.
    ///
    /// # Panics
    /// If `yaml` has a `control` section, or as [`Vpnd::start`].
    pub fn start_yaml(ns: &Netns, ifname: &str, yaml: &str) -> Vpnd {
        assert!(
            !yaml.lines().any(|l| l.starts_with("control:")),
            "start_yaml adds the control section itself"
        );
        let dir = tempfile::Builder::new()
            .prefix("vpnt-vpnd-")
            .tempdir()
            .unwrap_or_else(|e| panic!("cannot create a temporary directory: {e}"));
        let socket = dir.path().join("control.sock");
        let text = format!(
            "{yaml}control:\n  socket: {}\n",
            quote(&socket.to_string_lossy())
        );
        let config_path = write_config_file(dir.path(), "vpnd.yaml", &text);
        let binary = cargo_binary("vpnd");
        let proc = spawn_proc(&binary, ns, ifname, &config_path, &[]);
        let mut vpnd = Vpnd {
            proc,
            netns: ns.name().to_owned(),
            ifname: ifname.to_owned(),
            config_path,
            socket,
            env: Vec::new(),
            binary,
            _dir: dir,
        };
        vpnd.wait_ready(START_TIMEOUT);
        vpnd
    }

    /// Starts the daemon again with the same configuration file and
    /// environment, after the previous process has ended (for example
    /// after [`Vpnd::kill`]), and waits until it is ready.
    ///
    /// # Panics
    /// If the previous process is still running, or the new one is not
    /// ready within [`START_TIMEOUT`].
    pub fn restart(&mut self, ns: &Netns) {
        assert!(
            !self.proc.is_running(),
            "restart: the previous vpnd (pid {}) is still running",
            self.proc.pid()
        );
        assert_eq!(ns.name(), self.netns, "restart in another namespace");
        let env: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        self.proc = spawn_proc(&self.binary, ns, &self.ifname, &self.config_path, &env);
        self.wait_ready(START_TIMEOUT);
    }

    /// Waits until `vpnctl show --json` answers with a well-formed result.
    ///
    /// # Panics
    /// If `vpnd` exits first or `timeout` passes; with its logs.
    pub fn wait_ready(&mut self, timeout: Duration) {
        let mut last_error = String::new();
        let mut exited = None;
        let ready = wait_until(timeout, Duration::from_millis(50), || {
            if let Some(status) = self.proc.try_status() {
                exited = Some(status);
                return true;
            }
            match self.try_show() {
                Ok(_) => true,
                Err(e) => {
                    last_error = e;
                    false
                }
            }
        });
        if let Some(status) = exited {
            panic!(
                "vpnd exited during start-up ({})\n{}",
                crate::describe_status(&status),
                self.proc.logs()
            );
        }
        if !ready {
            panic!(
                "vpnd not ready within {timeout:?}; last `vpnctl show` error: {last_error}\n{}",
                self.proc.logs()
            );
        }
    }

    /// The process guard (logs, PID, exit status).
    pub fn proc(&self) -> &Proc {
        &self.proc
    }

    /// The process guard, mutably (signals, waiting for exit).
    pub fn proc_mut(&mut self) -> &mut Proc {
        &mut self.proc
    }

    /// The TUN interface name from the configuration.
    pub fn ifname(&self) -> &str {
        &self.ifname
    }

    /// The configuration file the daemon was started with.
    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    /// The control socket path.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Sends SIGTERM and waits up to `timeout` for the daemon to exit;
    /// returns its status, or `None` if it is still running (it is then
    /// killed when the `Vpnd` drops).
    pub fn terminate(&mut self, timeout: Duration) -> Option<ExitStatus> {
        self.signal_and_wait(libc::SIGTERM, timeout)
    }

    /// Sends signal `sig` (a `libc::SIG*` number) and waits up to `timeout`
    /// for the daemon to exit; returns its status, or `None` if it is still
    /// running.
    pub fn signal_and_wait(&mut self, sig: i32, timeout: Duration) -> Option<ExitStatus> {
        let _ = self.proc.signal(sig);
        self.proc.wait_exit(timeout)
    }

    /// Sends SIGKILL (no chance to clean up) and waits for the process to
    /// be reaped.
    ///
    /// # Panics
    /// If it is still there 5 s later.
    pub fn kill(&mut self) -> ExitStatus {
        let _ = self.proc.signal(libc::SIGKILL);
        self.proc
            .wait_exit(Duration::from_secs(5))
            .unwrap_or_else(|| panic!("vpnd survived SIGKILL\n{}", self.proc.logs()))
    }

    /// A `vpnctl --socket <socket> args...` command (run from the host:
    /// the control socket is a file, reachable from any namespace).
    pub fn vpnctl<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = Command::new(cargo_binary("vpnctl"));
        cmd.arg("--socket").arg(&self.socket).args(args);
        cmd
    }

    /// `vpnctl show --json`, parsed; `Err` describes what went wrong
    /// (daemon unreachable, bad JSON).
    pub fn try_show(&self) -> Result<ShowResult, String> {
        let mut cmd = self.vpnctl(["show", "--json"]);
        let out = run_with_timeout(&mut cmd, VPNCTL_TIMEOUT).map_err(|e| e.to_string())?;
        parse_show(&out)
    }

    /// `vpnctl show --json` as raw JSON (`Null` if it fails): for fields the typed
    /// [`ShowResult`] of this crate's version may not know, and for polling without panics.
    pub fn show_json(&self) -> serde_json::Value {
        let out = self
            .vpnctl(["show", "--json"])
            .output()
            .expect("vpnctl runs");
        serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null)
    }

    /// `vpnctl show --json`, parsed.
    ///
    /// # Panics
    /// If `vpnctl` fails or prints something that is not a `ShowResult`;
    /// with the daemon's logs.
    pub fn show(&self) -> ShowResult {
        self.try_show()
            .unwrap_or_else(|e| panic!("vpnctl show failed: {e}\n{}", self.proc.logs()))
    }

    /// The peer with `public_key` in a fresh [`Vpnd::show`].
    ///
    /// # Panics
    /// If there is no such peer.
    pub fn peer(&self, public_key: &str) -> PeerInfo {
        let show = self.show();
        find_peer(&show, public_key)
            .cloned()
            .unwrap_or_else(|| panic!("no peer {public_key} in {show:#?}"))
    }

    /// `vpnctl stats --json`, parsed: drop counters, handshake queue depth, under-load state.
    ///
    /// # Panics
    /// If `vpnctl` fails or prints something else; with the daemon's logs.
    pub fn stats(&self) -> StatsResult {
        let mut cmd = self.vpnctl(["stats", "--json"]);
        let out = run_with_timeout(&mut cmd, VPNCTL_TIMEOUT)
            .unwrap_or_else(|e| panic!("vpnctl stats: {e}\n{}", self.proc.logs()));
        if !out.status.success() {
            panic!(
                "vpnctl stats failed: {}\n{}",
                String::from_utf8_lossy(&out.stderr),
                self.proc.logs()
            );
        }
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "vpnctl stats --json printed no StatsResult ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    /// Memory and CPU use of the daemon process, from `/proc/<pid>/status` and
    /// `/proc/<pid>/stat`.
    ///
    /// # Panics
    /// If the process is gone.
    pub fn usage(&self) -> ProcUsage {
        ProcUsage::of(self.proc.pid()).unwrap_or_else(|| {
            panic!(
                "vpnd (pid {}) is gone\n{}",
                self.proc.pid(),
                self.proc.logs()
            )
        })
    }

    /// The interface's drop counter for `reason` (0 if never counted).
    pub fn drops(&self, reason: &str) -> u64 {
        self.show()
            .interface
            .drops
            .get(reason)
            .copied()
            .unwrap_or(0)
    }

    /// Polls [`Vpnd::show`] until the peer with `public_key` satisfies
    /// `cond`, and returns it.
    ///
    /// # Panics
    /// After `timeout`, with `what`, the last peer state and the logs.
    pub fn wait_peer(
        &self,
        public_key: &str,
        timeout: Duration,
        what: &str,
        mut cond: impl FnMut(&PeerInfo) -> bool,
    ) -> PeerInfo {
        let mut last = None;
        let ok = wait_until(timeout, Duration::from_millis(50), || {
            let peer = self.peer(public_key);
            let done = cond(&peer);
            last = Some(peer);
            done
        });
        let last = last.expect("wait_until checks at least once");
        if !ok {
            panic!(
                "peer {public_key}: {what} not reached within {timeout:?}; last state: {last:#?}\n{}",
                self.proc.logs()
            );
        }
        last
    }

    /// Waits until the peer's `state` is `state` (`online`, `handshaking`,
    /// `offline`) and returns it.
    ///
    /// # Panics
    /// After `timeout`, as [`Vpnd::wait_peer`].
    pub fn wait_peer_state(&self, public_key: &str, state: &str, timeout: Duration) -> PeerInfo {
        self.wait_peer(public_key, timeout, &format!("state {state:?}"), |p| {
            p.state == state
        })
    }
}

/// Memory and CPU use of a process at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcUsage {
    /// Resident set size (`VmRSS`), KiB.
    pub rss_kib: u64,
    /// Peak resident set size (`VmHWM`), KiB.
    pub hwm_kib: u64,
    /// User plus system CPU time, in clock ticks (`utime + stime` of `/proc/<pid>/stat`).
    pub cpu_ticks: u64,
}

impl ProcUsage {
    /// Reads the figures of process `pid`; `None` if it does not exist.
    pub fn of(pid: u32) -> Option<ProcUsage> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let kib = |key: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse::<u64>().ok())
        };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
        let rest = &stat[stat.rfind(')')? + 2..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        let utime: u64 = f.get(11)?.parse().ok()?;
        let stime: u64 = f.get(12)?.parse().ok()?;
        Some(ProcUsage {
            rss_kib: kib("VmRSS:")?,
            hwm_kib: kib("VmHWM:")?,
            cpu_ticks: utime + stime,
        })
    }

    /// CPU seconds between `earlier` and `self` (clock ticks of 1/100 s, as on Linux).
    pub fn cpu_seconds_since(&self, earlier: &ProcUsage) -> f64 {
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
        self.cpu_ticks.saturating_sub(earlier.cpu_ticks) as f64 / hz
    }
}

/// The `sh -c` script that gives a process a private mount namespace with an empty tmpfs on
/// `/run` and then execs `"$0" "$@"` (run under `unshare --mount --propagation private`).
///
/// vpnd serves WireGuard's UAPI at `/run/wireguard/<if>.sock` (`/var/run` is `/run`), a path
/// outside the network namespace: without this, daemons of parallel tests with the same
/// interface name would share it, and tests would leave sockets in the host's `/run`.
///
/// With [`BIND_FILES_ENV`] set, it also bind-mounts each `SRC=DST` pair in it (for example a
/// test's own `/etc/hosts`) in that private namespace, so only this process sees them.
pub const PRIVATE_RUN_SCRIPT: &str =
    "mount --make-rprivate / && mount -t tmpfs -o mode=0755 tmpfs /run \
     && for b in $VPN_E2E_BIND_FILES; do mount --bind \"${b%%=*}\" \"${b#*=}\" || exit 1; done \
     && exec \"$0\" \"$@\"";

/// Environment variable read by [`PRIVATE_RUN_SCRIPT`]: space-separated `SRC=DST` pairs of
/// files to bind-mount over `DST` (paths without spaces or `=`), e.g.
/// `/tmp/t/hosts=/etc/hosts`. Writing to `SRC` in place (not by renaming over it) changes
/// what the process reads at `DST`.
pub const BIND_FILES_ENV: &str = "VPN_E2E_BIND_FILES";

fn spawn_proc(
    binary: &Path,
    ns: &Netns,
    ifname: &str,
    config: &Path,
    env: &[(&str, &str)],
) -> Proc {
    let level = std::env::var(LOG_LEVEL_ENV).unwrap_or_else(|_| "info".to_owned());
    // `ip netns exec`, `unshare` and `sh` all exec in place: the PID is vpnd's.
    let mut cmd = ns.command([
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        PRIVATE_RUN_SCRIPT,
    ]);
    cmd.arg(binary)
        .arg("--config")
        .arg(config)
        .args(["--log-level", &level]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    Proc::spawn(&format!("{}-vpnd-{ifname}", ns.name()), cmd).unwrap_or_else(|e| panic!("{e}"))
}

fn parse_show(out: &Output) -> Result<ShowResult, String> {
    if !out.status.success() {
        return Err(format!(
            "vpnctl show --json: {}: {}",
            crate::describe_status(&out.status),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| {
        format!(
            "vpnctl show --json printed no ShowResult ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// The peer with `public_key` in `show`, if any.
pub fn find_peer<'a>(show: &'a ShowResult, public_key: &str) -> Option<&'a PeerInfo> {
    show.peers.iter().find(|p| p.public_key == public_key)
}

/// Starts `vpnd -f <ifname>`: configuration-less, configured through the UAPI socket like
/// `wireguard-go -f <ifname>`, in `ns` and its own mount namespace (see
/// [`WireguardGo::start_program`]), and waits until the interface and the socket exist. The
/// handle runs `wg` against it exactly as against a wireguard-go.
///
/// # Panics
/// If vpnd exits or is not ready within 15 s.
pub fn start_configless(ns: &Netns, ifname: &str) -> WireguardGo {
    let level = std::env::var(LOG_LEVEL_ENV).unwrap_or_else(|_| "info".to_owned());
    let bin = cargo_binary("vpnd");
    WireguardGo::start_program(
        ns,
        ifname,
        &bin.to_string_lossy(),
        &["--log-level", &level],
        &[],
    )
}

/// Runs `vpnd args...` in `ns` to completion (for `--check`, or a
/// configuration that must be refused) and returns its output.
///
/// # Panics
/// If it is still running after `timeout` (it is then killed).
pub fn run_vpnd<I, S>(ns: &Netns, args: I, timeout: Duration) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = ns.command([
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        PRIVATE_RUN_SCRIPT,
    ]);
    cmd.arg(cargo_binary("vpnd")).args(args);
    run_with_timeout(&mut cmd, timeout).unwrap_or_else(|e| panic!("{e}"))
}

/// Environment variable naming a `vpnd` executable built with
/// `--features fault-injection`; when unset, [`fault_injection_vpnd`]
/// builds one.
pub const FAULT_VPND_ENV: &str = "VPN_E2E_FAULT_VPND";

/// How long building the fault-injection `vpnd` may take (the first build
/// in a fresh target directory compiles every dependency).
const FAULT_BUILD_TIMEOUT: Duration = Duration::from_secs(45 * 60);

/// A `vpnd` built with the test-only cargo feature `fault-injection` (it
/// adds the `debug.panic_peer` JSON-RPC method). Release packages never
/// enable that feature, so it is never the binary the other tests run.
///
/// `$VPN_E2E_FAULT_VPND` names a prebuilt one. Otherwise it is built once
/// per test process with
/// `cargo build -p vpnd --features fault-injection --target-dir <target>/fault`,
/// where `<target>` is `$CARGO_TARGET_DIR` or the target directory holding
/// the running test executable. A target directory of its own keeps the
/// normal `target/debug/vpnd` untouched and lets cargo rebuild only what
/// changed; the binary is `<target>/fault/debug/vpnd`.
///
/// # Panics
/// If the build fails or takes longer than 45 minutes; with cargo's output.
pub fn fault_injection_vpnd() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    if let Some(p) = std::env::var_os(FAULT_VPND_ENV).filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    BUILT
        .get_or_init(|| {
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .filter(|p| !p.is_empty())
                .map(PathBuf::from)
                .or_else(|| {
                    // <target>/<profile>/deps/<test executable>
                    std::env::current_exe()
                        .ok()
                        .and_then(|e| e.ancestors().nth(3).map(Path::to_path_buf))
                })
                .expect("cannot tell where the cargo target directory is");
            let target = target.join("fault");
            let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
                .parent()
                .expect("the e2e crate lives in the workspace")
                .join("Cargo.toml");
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let mut cmd = Command::new(cargo);
            cmd.arg("build")
                .arg("--manifest-path")
                .arg(&workspace)
                .args([
                    "-p",
                    "vpnd",
                    "--bin",
                    "vpnd",
                    "--features",
                    "fault-injection",
                ])
                .arg("--target-dir")
                .arg(&target);
            eprintln!(
                "e2e: building vpnd with fault injection: {}",
                crate::command_line(&cmd)
            );
            let out =
                run_with_timeout(&mut cmd, FAULT_BUILD_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
            crate::check_output(&cmd, &out);
            let binary = target.join("debug").join("vpnd");
            assert!(binary.is_file(), "cargo built no {}", binary.display());
            binary
        })
        .clone()
}

/// Whether interface `ifname` exists in `ns` (`ip link show dev`).
pub fn link_exists(ns: &Netns, ifname: &str) -> bool {
    run_with_timeout(
        &mut command(["ip", "-n", ns.name(), "link", "show", "dev", ifname]),
        crate::COMMAND_TIMEOUT,
    )
    .is_ok_and(|o| o.status.success())
}

/// The names of every interface in `ns`.
pub fn link_names(ns: &Netns) -> Vec<String> {
    ns.ip_ok(["-o", "link", "show"])
        .lines()
        .filter_map(|l| l.split(':').nth(1))
        .map(|n| n.trim().split('@').next().unwrap_or("").to_owned())
        .collect()
}

/// `ip -4 route show table all` plus `ip -6 route show table all` in `ns`,
/// for checks on the routes a daemon added or removed.
pub fn all_routes(ns: &Netns) -> String {
    let mut routes = ns.ip_ok(["-4", "route", "show", "table", "all"]);
    routes.push_str(&ns.ip_ok(["-6", "route", "show", "table", "all"]));
    routes
}

/// Makes IPv6 quiet on interfaces created later in `ns`: no router
/// solicitations, no duplicate address detection, no router
/// advertisements accepted. Call it before creating tunnel interfaces in
/// tests that count bytes.
pub fn quiet_ipv6(ns: &Netns) {
    for scope in ["all", "default"] {
        for (key, value) in [
            ("router_solicitations", "0"),
            ("accept_dad", "0"),
            ("accept_ra", "0"),
        ] {
            ns.sysctl(&format!("net.ipv6.conf.{scope}.{key}"), value);
        }
    }
}

/// The `peers[]` entry with `public_key` in a `show --json` value (`Null` when absent).
pub fn peer_in(show: &serde_json::Value, public_key: &str) -> serde_json::Value {
    show["peers"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["public_key"] == public_key))
        .cloned()
        .unwrap_or(serde_json::Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> WgKeys {
        WgKeys {
            private: "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=".to_owned(),
            public: "IJ8IvJa5NxEXSPOzKuTFLTKgpsCpp8YNUstIN625SZs=".to_owned(),
        }
    }

    #[test]
    fn renders_yaml_with_every_field() {
        let mut config = VpndConfig::new("vpn0", &keys())
            .listen_port(51820)
            .addresses(&["10.10.0.1/24", "fd10::1/64"])
            .mtu(1420)
            .peer(
                PeerConfig::new("cGVlcg==", &["10.10.0.2/32"])
                    .name("b")
                    .preshared_key("cHNr")
                    .endpoint("[fd99::2]:51821")
                    .persistent_keepalive(25),
            );
        config.socket = Some(PathBuf::from("/tmp/x/control.sock"));
        assert_eq!(
            config.to_yaml(),
            "interface:\n  name: \"vpn0\"\n  \
             private_key: \"yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=\"\n  \
             listen_port: 51820\n  addresses: [\"10.10.0.1/24\", \"fd10::1/64\"]\n  \
             mtu: 1420\ncontrol:\n  socket: \"/tmp/x/control.sock\"\npeers:\n  \
             - public_key: \"cGVlcg==\"\n    name: \"b\"\n    preshared_key: \"cHNr\"\n    \
             allowed_ips: [\"10.10.0.2/32\"]\n    endpoint: \"[fd99::2]:51821\"\n    \
             persistent_keepalive: 25\n"
        );
        let bare = VpndConfig::new("vpn0", &keys()).to_yaml();
        assert!(bare.ends_with("addresses: []\npeers: []\n"), "{bare}");
    }

    #[test]
    fn renders_key_files_instead_of_keys() {
        let yaml = VpndConfig::new("vpn0", &keys())
            .private_key_file(Path::new("/k/private"))
            .peer(
                PeerConfig::new("cGVlcg==", &[])
                    .preshared_key("cHNr")
                    .preshared_key_file(Path::new("/k/psk")),
            )
            .to_yaml();
        assert!(
            yaml.contains("  private_key_file: \"/k/private\"\n"),
            "{yaml}"
        );
        assert!(
            yaml.contains("    preshared_key_file: \"/k/psk\"\n"),
            "{yaml}"
        );
        assert!(!yaml.contains("private_key:") && !yaml.contains("preshared_key:"));
    }

    #[test]
    fn renders_wg_setconf() {
        let text = wg_setconf_text(
            &keys(),
            51821,
            &[
                PeerConfig::new("cGVlcg==", &["10.10.0.1/32", "fd10::1/128"])
                    .preshared_key("cHNr")
                    .endpoint("10.99.0.1:51820"),
            ],
        );
        assert_eq!(
            text,
            "[Interface]\nPrivateKey = yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=\n\
             ListenPort = 51821\n\n[Peer]\nPublicKey = cGVlcg==\nPresharedKey = cHNr\n\
             AllowedIPs = 10.10.0.1/32, fd10::1/128\nEndpoint = 10.99.0.1:51820\n"
        );
    }
}
