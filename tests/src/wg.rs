//! WireGuard reference peers: keys from `wg`, interfaces from `wireguard-go`.
//!
//! See [`WireguardGo`] for how each instance gets a private UAPI socket.

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use crate::netns::add_address;
use crate::{
    check_output, command, run_ok, run_with_input, run_with_timeout, wait_until, Netns, Proc,
    COMMAND_TIMEOUT,
};

/// How long [`WireguardGo::start`] waits for the interface and UAPI socket.
const START_TIMEOUT: Duration = Duration::from_secs(15);

/// A WireGuard key pair in the usual base64 form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WgKeys {
    /// Private key (base64), for `PrivateKey =`.
    pub private: String,
    /// Public key (base64), for a peer's `PublicKey =`.
    pub public: String,
}

impl WgKeys {
    /// The public key's 32 bytes (as vpnd compares keys).
    ///
    /// # Panics
    /// If `public` is not a base64 key.
    pub fn public_bytes(&self) -> [u8; 32] {
        *self
            .public
            .parse::<protocol::keys::PublicKey>()
            .expect("a base64 public key")
            .as_bytes()
    }

    /// Generates a fresh key pair with `wg genkey` and `wg pubkey`.
    ///
    /// # Panics
    /// If `wg` is missing or fails.
    pub fn generate() -> WgKeys {
        let private = run_ok(&mut command(["wg", "genkey"])).trim().to_owned();
        WgKeys::from_private(&private)
    }

    /// The key pair for an existing private key (public key via
    /// `wg pubkey`).
    ///
    /// # Panics
    /// If `wg` is missing or rejects the key.
    pub fn from_private(private: &str) -> WgKeys {
        let mut cmd = command(["wg", "pubkey"]);
        let out = run_with_input(
            &mut cmd,
            format!("{}\n", private.trim()).as_bytes(),
            COMMAND_TIMEOUT,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        check_output(&cmd, &out);
        let public = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        WgKeys {
            private: private.trim().to_owned(),
            public,
        }
    }

    /// A fresh preshared key from `wg genpsk`.
    pub fn genpsk() -> String {
        run_ok(&mut command(["wg", "genpsk"])).trim().to_owned()
    }
}

/// A `wireguard-go` interface running inside a [`Netns`], in its own mount
/// namespace.
///
/// Stopped (SIGTERM, then SIGKILL) when dropped; its logs are printed if
/// the test is failing.
///
/// # UAPI socket isolation
///
/// `wireguard-go` puts its control socket at `/var/run/wireguard/<if>.sock`
/// (`/var/run` is `/run` on Debian) and `wg` looks for it there. That path
/// is a file, not part of the network namespace, so two `wireguard-go`
/// instances named `wg0` in two namespaces would fight over one socket, and
/// they would also collide with other test runs or a real WireGuard setup
/// on the host.
///
/// [`WireguardGo::start`] therefore gives each instance a private mount
/// namespace with its own empty tmpfs on `/run`:
///
/// ```text
/// ip netns exec NS unshare --mount --propagation private \
///     sh -c 'mount --make-rprivate / && mount -t tmpfs -o mode=0755 tmpfs /run \
///            && exec wireguard-go -f IF'
/// ```
///
/// `ip netns exec`, `unshare` and `sh` all exec in place, so the spawned PID
/// *is* `wireguard-go`. Every `wg` command for that side then runs inside
/// the same mount and network namespaces by entering those of that PID:
/// `nsenter --target PID --mount --net wg ...` ([`WireguardGo::command`]).
/// Nothing appears under the host's `/run/wireguard`, and the socket (with
/// the whole tmpfs) disappears when the process exits.
#[derive(Debug)]
pub struct WireguardGo {
    proc: Proc,
    netns: String,
    ifname: String,
}

impl WireguardGo {
    /// Starts `wireguard-go -f <ifname>` in `ns` and waits until both the
    /// TUN interface and the UAPI socket exist.
    ///
    /// The interface starts unconfigured and down: follow with
    /// [`WireguardGo::wg_setconf`] and [`WireguardGo::configure_ip`].
    /// `LOG_LEVEL` is `verbose` unless `VPN_E2E_WG_LOG_LEVEL` says
    /// otherwise (`debug`, `error`, `silent`).
    ///
    /// # Panics
    /// If `ifname` is not a valid interface name, or `wireguard-go` exits or
    /// is not ready within 15 s.
    pub fn start(ns: &Netns, ifname: &str) -> WireguardGo {
        let level = std::env::var("VPN_E2E_WG_LOG_LEVEL").unwrap_or_else(|_| "verbose".to_owned());
        WireguardGo::start_program(
            ns,
            ifname,
            "wireguard-go",
            &[],
            &[
                ("WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD", "1"),
                ("LOG_LEVEL", &level),
            ],
        )
    }

    /// Starts `program -f <ifname> extra_args...` like [`WireguardGo::start`]: any
    /// implementation with wireguard-go's command line and UAPI socket (such as
    /// `vpnd -f <if>`, which [`crate::vpnd::start_configless`] starts this way), in its own
    /// mount namespace, with `env` added to its environment.
    ///
    /// # Panics
    /// As [`WireguardGo::start`].
    pub fn start_program(
        ns: &Netns,
        ifname: &str,
        program: &str,
        extra_args: &[&str],
        env: &[(&str, &str)],
    ) -> WireguardGo {
        assert!(
            !ifname.is_empty() && ifname.len() <= 15 && !ifname.contains(['/', ' ', '\'', '"']),
            "bad interface name {ifname:?}"
        );
        let script = "mount --make-rprivate / && mount -t tmpfs -o mode=0755 tmpfs /run \
                      && exec \"$0\" -f \"$@\"";
        let mut cmd = ns.command([
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            script,
            program,
            ifname,
        ]);
        cmd.args(extra_args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let label = Path::new(program)
            .file_name()
            .map_or_else(|| program.to_owned(), |n| n.to_string_lossy().into_owned());
        let proc = Proc::spawn(&format!("{}-{label}-{ifname}", ns.name()), cmd)
            .unwrap_or_else(|e| panic!("{e}"));
        let mut wg = WireguardGo {
            proc,
            netns: ns.name().to_owned(),
            ifname: ifname.to_owned(),
        };

        let socket = format!("/run/wireguard/{ifname}.sock");
        let mut exited = None;
        let ready = wait_until(START_TIMEOUT, Duration::from_millis(20), || {
            if let Some(status) = wg.proc.try_status() {
                exited = Some(status);
                return true;
            }
            let has_socket =
                run_with_timeout(&mut wg.command(["test", "-S", &socket]), COMMAND_TIMEOUT)
                    .is_ok_and(|o| o.status.success());
            has_socket
                && run_with_timeout(
                    &mut command(["ip", "-n", &wg.netns, "link", "show", "dev", ifname]),
                    COMMAND_TIMEOUT,
                )
                .is_ok_and(|o| o.status.success())
        });
        if let Some(status) = exited {
            panic!(
                "{label} exited during start-up ({status})\n{}",
                wg.proc.logs()
            );
        }
        if !ready {
            panic!(
                "{label} not ready within {START_TIMEOUT:?}\n{}",
                wg.proc.logs()
            );
        }
        wg
    }

    /// The UAPI socket as the test process can reach it: through
    /// `/proc/<pid>/root`, which resolves paths in the daemon's mount
    /// namespace.
    pub fn uapi_socket_path(&self) -> std::path::PathBuf {
        std::path::PathBuf::from(format!(
            "/proc/{}/root/run/wireguard/{}.sock",
            self.pid(),
            self.ifname
        ))
    }

    /// The interface name.
    pub fn ifname(&self) -> &str {
        &self.ifname
    }

    /// The name of the network namespace it runs in.
    pub fn netns_name(&self) -> &str {
        &self.netns
    }

    /// The `wireguard-go` PID (whose mount and network namespaces the `wg`
    /// commands enter).
    pub fn pid(&self) -> u32 {
        self.proc.pid()
    }

    /// The process guard (logs, exit status).
    pub fn proc(&self) -> &Proc {
        &self.proc
    }

    /// The process guard, mutably (signals, stopping).
    pub fn proc_mut(&mut self) -> &mut Proc {
        &mut self.proc
    }

    /// A [`Command`] that runs `args` in this instance's mount and network
    /// namespaces (`nsenter --target PID --mount --net args...`).
    pub fn command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = Command::new("nsenter");
        cmd.args(["--target", &self.pid().to_string(), "--mount", "--net"])
            .args(args);
        cmd
    }

    /// Runs `wg args...` against this instance; returns the output whatever
    /// the exit status.
    ///
    /// # Panics
    /// If it does not finish within [`COMMAND_TIMEOUT`].
    pub fn wg<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = self.command(["wg"]);
        cmd.args(args);
        run_with_timeout(&mut cmd, COMMAND_TIMEOUT).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Runs `wg args...` against this instance and returns its stdout.
    ///
    /// # Panics
    /// Unless it succeeds; the message includes `wireguard-go`'s logs.
    pub fn wg_ok<I, S>(&self, args: I) -> String
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = self.command(["wg"]);
        cmd.args(args);
        let out = run_with_timeout(&mut cmd, COMMAND_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
        self.check(&cmd, &out);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Replaces the interface configuration with `conf` (a `wg setconf`
    /// file: `[Interface]` with `PrivateKey`/`ListenPort`, `[Peer]`
    /// sections; no `Address`, which is `wg-quick` syntax).
    ///
    /// # Panics
    /// If `wg setconf` fails.
    pub fn wg_setconf(&self, conf: &str) {
        let mut cmd = self.command(["wg", "setconf", &self.ifname, "/dev/stdin"]);
        let out = run_with_input(&mut cmd, conf.as_bytes(), COMMAND_TIMEOUT)
            .unwrap_or_else(|e| panic!("{e}"));
        self.check(&cmd, &out);
    }

    /// The raw output of `wg show <if> dump`.
    pub fn wg_show_dump(&self) -> String {
        self.wg_ok(["show", &self.ifname, "dump"])
    }

    /// `wg show <if> dump`, parsed.
    ///
    /// # Panics
    /// If the output cannot be parsed.
    pub fn dump(&self) -> WgDump {
        let raw = self.wg_show_dump();
        WgDump::parse(&raw).unwrap_or_else(|e| panic!("cannot parse wg dump: {e}\n{raw}"))
    }

    /// Sets the interface MTU, adds `addrs` (CIDR; IPv6 with `nodad`) and
    /// brings it up, with `ip -n <netns>`.
    pub fn configure_ip(&self, addrs: &[&str], mtu: u32) {
        run_ok(&mut command([
            "ip",
            "-n",
            &self.netns,
            "link",
            "set",
            &self.ifname,
            "mtu",
            &mtu.to_string(),
        ]));
        for addr in addrs {
            add_address(&self.netns, &self.ifname, addr);
        }
        run_ok(&mut command([
            "ip",
            "-n",
            &self.netns,
            "link",
            "set",
            &self.ifname,
            "up",
        ]));
    }

    fn check(&self, cmd: &Command, out: &Output) {
        if !out.status.success() {
            panic!(
                "`{}` failed: {}\n--- stdout ---\n{}\n--- stderr ---\n{}\n{}",
                crate::command_line(cmd),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                self.proc.logs()
            );
        }
    }
}

/// One peer line of `wg show <if> dump`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WgPeerDump {
    /// Peer public key (base64).
    pub public_key: String,
    /// Preshared key, if any.
    pub preshared_key: Option<String>,
    /// Current endpoint (`ip:port` or `[ip6]:port`), if known.
    pub endpoint: Option<String>,
    /// Allowed IPs in CIDR notation.
    pub allowed_ips: Vec<String>,
    /// Unix time of the latest handshake; 0 if none yet.
    pub latest_handshake: u64,
    /// Bytes received from the peer.
    pub rx_bytes: u64,
    /// Bytes sent to the peer.
    pub tx_bytes: u64,
    /// Persistent keepalive interval in seconds, if enabled.
    pub persistent_keepalive: Option<u16>,
}

/// Parsed `wg show <if> dump` output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WgDump {
    /// Interface private key (base64).
    pub private_key: String,
    /// Interface public key (base64).
    pub public_key: String,
    /// UDP listen port.
    pub listen_port: u16,
    /// Firewall mark, if set.
    pub fwmark: Option<u32>,
    /// Peers in the order `wg` printed them.
    pub peers: Vec<WgPeerDump>,
}

impl WgDump {
    /// Parses the tab-separated output of `wg show <if> dump` (one
    /// interface, so no interface-name column).
    pub fn parse(text: &str) -> Result<WgDump, String> {
        fn none_or(s: &str) -> Option<String> {
            (s != "(none)").then(|| s.to_owned())
        }
        fn num<T: std::str::FromStr>(field: &str, s: &str) -> Result<T, String> {
            s.parse().map_err(|_| format!("bad {field}: {s:?}"))
        }
        let mut lines = text.lines().filter(|l| !l.trim().is_empty());
        let first = lines.next().ok_or("empty dump")?;
        let f: Vec<&str> = first.split('\t').collect();
        let [private_key, public_key, listen_port, fwmark] = f[..] else {
            return Err(format!(
                "interface line has {} fields, want 4: {first:?}",
                f.len()
            ));
        };
        let fwmark = match fwmark {
            "off" => None,
            m if m.starts_with("0x") => {
                Some(u32::from_str_radix(&m[2..], 16).map_err(|_| format!("bad fwmark {m:?}"))?)
            }
            m => Some(num("fwmark", m)?),
        };
        let mut peers = Vec::new();
        for line in lines {
            let f: Vec<&str> = line.split('\t').collect();
            let [public_key, psk, endpoint, allowed, handshake, rx, tx, keepalive] = f[..] else {
                return Err(format!(
                    "peer line has {} fields, want 8: {line:?}",
                    f.len()
                ));
            };
            peers.push(WgPeerDump {
                public_key: public_key.to_owned(),
                preshared_key: none_or(psk),
                endpoint: none_or(endpoint),
                allowed_ips: if allowed == "(none)" {
                    Vec::new()
                } else {
                    allowed.split(',').map(|s| s.trim().to_owned()).collect()
                },
                latest_handshake: num("latest-handshake", handshake)?,
                rx_bytes: num("transfer-rx", rx)?,
                tx_bytes: num("transfer-tx", tx)?,
                persistent_keepalive: if keepalive == "off" {
                    None
                } else {
                    Some(num("keepalive", keepalive)?)
                },
            });
        }
        Ok(WgDump {
            private_key: private_key.to_owned(),
            public_key: public_key.to_owned(),
            listen_port: num("listen-port", listen_port)?,
            fwmark,
            peers,
        })
    }

    /// The peer with public key `public_key`, if configured.
    pub fn peer(&self, public_key: &str) -> Option<&WgPeerDump> {
        self.peers.iter().find(|p| p.public_key == public_key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_dump() {
        let text = "cPriv=\tcPub=\t51820\toff\n\
                    pA=\t(none)\t10.99.0.2:51821\t10.10.0.2/32,fd10::2/128\t1700000000\t1234\t5678\toff\n\
                    pB=\tpsk=\t(none)\t(none)\t0\t0\t0\t25\n";
        let d = WgDump::parse(text).unwrap();
        assert_eq!(d.listen_port, 51820);
        assert_eq!(d.fwmark, None);
        assert_eq!(d.peers.len(), 2);
        let a = d.peer("pA=").unwrap();
        assert_eq!(a.endpoint.as_deref(), Some("10.99.0.2:51821"));
        assert_eq!(a.allowed_ips, ["10.10.0.2/32", "fd10::2/128"]);
        assert_eq!(
            (a.latest_handshake, a.rx_bytes, a.tx_bytes),
            (1_700_000_000, 1234, 5678)
        );
        let b = d.peer("pB=").unwrap();
        assert_eq!(b.preshared_key.as_deref(), Some("psk="));
        assert!(b.endpoint.is_none() && b.allowed_ips.is_empty());
        assert_eq!(b.persistent_keepalive, Some(25));
    }

    #[test]
    fn rejects_garbage() {
        assert!(WgDump::parse("").is_err());
        assert!(WgDump::parse("a\tb\n").is_err());
        assert!(WgDump::parse("a\tb\tnotaport\toff\n").is_err());
    }
}
