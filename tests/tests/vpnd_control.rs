//! The control API against a real `vpnd`: every JSON-RPC method, through
//! `vpnctl` and over the raw socket, with its error paths and exit codes.
//!
//! * `peer_methods`: show, peer.list, peer.show, peer.add, peer.update and
//!   peer.remove, the routes they add and remove in the namespace, and the
//!   standard errors (unknown method, parse error, invalid request, wrong
//!   parameter names and types).
//! * `interface_reload_check_save`: interface.set (MTU in `ip link`, listen
//!   port in `show` and `ss`, addresses, private key), stats, config.check,
//!   reload (a change reported; a broken file refused with every reason and
//!   the running configuration kept) and `--save` (file rewritten, reads
//!   back, keys from files stay references).
//! * `abusive_clients_do_not_disturb_the_tunnel`: a pair of daemons passing
//!   traffic while one client sends more than 1 MiB without a newline,
//!   another connects and never sends, and 100 clients call `show` at once.
//!
//! Every test also checks that no response (nor the daemon's log) holds
//! the base64 of any private or preshared key it used.

use std::cell::RefCell;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use e2e::vpnd::{all_routes, PeerConfig, Vpnd, VpndConfig};
use e2e::{ping, ping_until, require_root_with, run_with_timeout, TestGuard, VethPair, WgKeys};
use serde_json::{json, Value};

const VPNCTL_TIMEOUT: Duration = Duration::from_secs(10);
const SOCKET_TIMEOUT: Duration = Duration::from_secs(5);
/// The control API's message size limit (`protocol::rpc::MAX_MESSAGE_SIZE`).
const MAX_MESSAGE: usize = 1 << 20;
/// Longer than the daemon takes to notice a change to its configuration file
/// (it polls every 0.5 s and waits for two equal looks).
const WATCH_SETTLE: Duration = Duration::from_millis(1500);

/// What one `vpnctl` run gave.
struct Ran {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs `vpnctl` and raw requests against one daemon, keeping everything
/// the daemon or `vpnctl` said so the test can look for leaked secrets.
struct Ctl<'a> {
    vpnd: &'a Vpnd,
    transcript: RefCell<String>,
}

impl<'a> Ctl<'a> {
    fn new(vpnd: &'a Vpnd) -> Ctl<'a> {
        Ctl {
            vpnd,
            transcript: RefCell::new(String::new()),
        }
    }

    fn record(&self, text: &str) {
        let mut t = self.transcript.borrow_mut();
        t.push_str(text);
        t.push('\n');
    }

    /// `vpnctl --socket <socket> args...`.
    fn run(&self, args: &[&str]) -> Ran {
        let mut cmd = self.vpnd.vpnctl(args);
        let out = run_with_timeout(&mut cmd, VPNCTL_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
        let ran = ran(&out);
        self.record(&ran.stdout);
        self.record(&ran.stderr);
        ran
    }

    /// `vpnctl args...` that must exit 0; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let r = self.run(args);
        assert_eq!(
            r.code,
            0,
            "vpnctl {args:?} failed\n--- stdout ---\n{}\n--- stderr ---\n{}\n{}",
            r.stdout,
            r.stderr,
            self.vpnd.proc().logs()
        );
        r.stdout
    }

    /// `vpnctl args...` that must exit with `code`; returns stderr.
    fn fails(&self, args: &[&str], code: i32) -> String {
        let r = self.run(args);
        assert_eq!(
            r.code, code,
            "vpnctl {args:?}: expected exit {code}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            r.stdout, r.stderr
        );
        assert!(
            r.stdout.is_empty(),
            "vpnctl {args:?} failed but printed {}",
            r.stdout
        );
        r.stderr
    }

    /// `vpnctl args... --json`, parsed.
    fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        let out = self.ok(&all);
        serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("vpnctl {all:?}: not JSON ({e}): {out}"))
    }

    /// Sends `bytes` on a new connection and returns the first response
    /// line, parsed.
    fn raw(&self, bytes: &[u8]) -> Value {
        raw_exchange(self.vpnd.socket(), bytes, self)
    }

    /// Calls `method` with `params` over the raw socket and returns the whole
    /// response object.
    fn rpc(&self, method: &str, params: Option<Value>) -> Value {
        let mut req = json!({"jsonrpc": "2.0", "method": method, "id": 7});
        if let Some(p) = params {
            req["params"] = p;
        }
        let resp = self.raw(format!("{req}\n").as_bytes());
        assert_eq!(resp["id"], json!(7), "response id: {resp}");
        resp
    }

    /// A call that must succeed; returns its `result`.
    fn result(&self, method: &str, params: Option<Value>) -> Value {
        let resp = self.rpc(method, params.clone());
        assert!(
            resp.get("error").is_none(),
            "{method} {params:?} failed: {resp}"
        );
        resp["result"].clone()
    }

    /// A call that must fail with `code`; returns the error object.
    fn error(&self, method: &str, params: Option<Value>, code: i64) -> Value {
        let resp = self.rpc(method, params.clone());
        let err = resp["error"].clone();
        assert_eq!(
            err["code"].as_i64(),
            Some(code),
            "{method} {params:?}: expected error {code}, got {resp}"
        );
        assert!(resp.get("result").is_none(), "{resp}");
        err
    }

    /// Asserts that no response, no `vpnctl` output and no daemon log line
    /// holds any of `secrets`.
    fn assert_no_secrets(&self, secrets: &[&str]) {
        let transcript = self.transcript.borrow();
        assert!(
            transcript.len() > 1000,
            "the transcript is suspiciously short"
        );
        let logs = self.vpnd.proc().logs();
        for s in secrets {
            assert!(!s.is_empty());
            assert!(
                !transcript.contains(s),
                "a secret key ({}...) appears in a control response or vpnctl output",
                &s[..8]
            );
            assert!(
                !logs.contains(s),
                "a secret key ({}...) appears in the daemon's log",
                &s[..8]
            );
        }
    }
}

fn ran(out: &Output) -> Ran {
    Ran {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn connect(socket: &Path) -> UnixStream {
    let s =
        UnixStream::connect(socket).unwrap_or_else(|e| panic!("connect {}: {e}", socket.display()));
    s.set_read_timeout(Some(SOCKET_TIMEOUT)).unwrap();
    s.set_write_timeout(Some(SOCKET_TIMEOUT)).unwrap();
    s
}

fn read_response(r: &mut impl BufRead) -> Value {
    let mut line = String::new();
    r.read_line(&mut line).expect("reading a response");
    assert!(line.ends_with('\n'), "unterminated response: {line:?}");
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("response is not JSON ({e}): {line}"))
}

fn raw_exchange(socket: &Path, bytes: &[u8], ctl: &Ctl) -> Value {
    let s = connect(socket);
    (&s).write_all(bytes).expect("sending a request");
    let mut r = BufReader::new(&s);
    let resp = read_response(&mut r);
    ctl.record(&resp.to_string());
    resp
}

/// The error message of an RPC error object.
fn message(err: &Value) -> &str {
    err["message"].as_str().unwrap_or_default()
}

/// Writes `contents` to `dir/name` with `mode`.
fn write_file(dir: &Path, name: &str, contents: &str, mode: u32) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    path
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn peer_keys(list: &Value) -> Vec<String> {
    let mut keys: Vec<String> = list
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|p| p["public_key"].as_str().unwrap().to_owned())
        .collect();
    keys.sort();
    keys
}

fn sorted(keys: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = keys.iter().map(|s| (*s).to_owned()).collect();
    v.sort();
    v
}

#[test]
fn peer_methods() {
    if !require_root_with(&["wg"]) {
        return;
    }
    let guard = TestGuard::new("vpnd_control_peers");
    let ns = guard.netns();
    let dir = tempfile::tempdir().unwrap();
    let (ka, kb, kc, kd, ke) = (
        WgKeys::generate(),
        WgKeys::generate(),
        WgKeys::generate(),
        WgKeys::generate(),
        WgKeys::generate(),
    );
    let psk_b = WgKeys::genpsk();
    let (psk_d1, psk_d2) = (WgKeys::genpsk(), WgKeys::genpsk());
    let config = VpndConfig::new("vpn0", &ka)
        .listen_port(51820)
        .addresses(&["10.10.0.1/24"])
        .peer(
            PeerConfig::new(&kb.public, &["10.10.0.2/32"])
                .name("alice")
                .preshared_key(&psk_b)
                .endpoint("10.99.0.2:51820"),
        )
        .peer(PeerConfig::new(&kc.public, &["10.10.0.3/32"]));
    let vpnd = Vpnd::start(&ns, &config);
    let ctl = Ctl::new(&vpnd);

    // show: the interface and both peers, for people and as JSON.
    let show = ctl.json(&["show"]);
    assert_eq!(show["interface"]["public_key"], json!(ka.public));
    assert_eq!(show["interface"]["listen_port"], json!(51820));
    assert_eq!(show["interface"]["mtu"], json!(1420));
    assert_eq!(peer_keys(&show["peers"]), sorted(&[&kb.public, &kc.public]));
    let human = ctl.ok(&["show"]);
    assert!(human.starts_with("interface: vpn0\n"), "{human}");
    assert!(
        human.contains(&format!("peer: {} (alice)\n", kb.public)),
        "{human}"
    );
    let raw_show = ctl.result("show", None);
    assert_eq!(raw_show["interface"]["name"], json!("vpn0"));
    assert_eq!(raw_show["peers"].as_array().unwrap().len(), 2);

    // peer.list: the same peers, as JSON, as a table, and over the socket.
    let list = ctl.json(&["peer", "list"]);
    assert_eq!(peer_keys(&list), sorted(&[&kb.public, &kc.public]));
    assert_eq!(list, show["peers"], "peer.list is show's peer list");
    let table = ctl.ok(&["peer", "list"]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "a header and one line per peer: {table}");
    assert!(lines[0].starts_with("PUBLIC KEY"), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.starts_with(&kb.public) && l.contains("alice")),
        "{table}"
    );
    assert_eq!(peer_keys(&ctl.result("peer.list", None)), peer_keys(&list));

    // peer.show by name and by key; unknown peers are NOT_FOUND (exit 1).
    let alice = ctl.ok(&["peer", "show", "alice"]);
    assert!(
        alice.starts_with(&format!("peer: {} (alice)\n", kb.public)),
        "{alice}"
    );
    assert!(alice.contains("  endpoint: 10.99.0.2:51820\n"), "{alice}");
    assert!(alice.contains("  allowed ips: 10.10.0.2/32\n"), "{alice}");
    assert!(alice.ends_with("  restarts: 0\n"), "{alice}");
    let by_key = ctl.json(&["peer", "show", &kb.public]);
    assert_eq!(by_key["name"], json!("alice"));
    assert_eq!(by_key["restarts"], json!(0));
    assert_eq!(by_key["allowed_ips"], json!(["10.10.0.2/32"]));
    let unnamed = ctl.result("peer.show", Some(json!({"peer": kc.public})));
    assert_eq!(unnamed["name"], Value::Null);
    assert_eq!(unnamed["public_key"], json!(kc.public));
    let err = ctl.fails(&["peer", "show", "nobody"], 1);
    assert_eq!(err, "vpnctl: peer: no peer `nobody`\n");
    let e = ctl.error("peer.show", Some(json!({"peer": "nobody"})), -32001);
    assert!(message(&e).contains("nobody"), "{e}");
    let e = ctl.error("peer.show", None, -32602);
    assert!(message(&e).contains("missing params"), "{e}");
    let e = ctl.error("peer.show", Some(json!({"key": "alice"})), -32602);
    assert!(message(&e).contains("`key`"), "{e}");

    // peer.add with every option; the PSK file is read by vpnctl and, being
    // world-readable, earns a warning.
    let psk_file = write_file(dir.path(), "psk-d", &format!("{psk_d1}\n"), 0o644);
    let r = ctl.run(&[
        "peer",
        "add",
        &kd.public,
        "--allowed-ips",
        "10.20.0.0/24, fd20::/64",
        "--endpoint",
        "10.99.0.9:51820",
        "--preshared-key-file",
        p(&psk_file),
        "--persistent-keepalive",
        "25",
        "--name",
        "carol",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, format!("peer added: {} (carol)\n", kd.public));
    assert!(
        r.stderr.starts_with("vpnctl: warning: ")
            && r.stderr.contains("readable by group or others"),
        "{}",
        r.stderr
    );
    let carol = ctl.json(&["peer", "show", "carol"]);
    assert_eq!(carol["public_key"], json!(kd.public));
    assert_eq!(carol["endpoint"], json!("10.99.0.9:51820"));
    assert_eq!(carol["allowed_ips"], json!(["10.20.0.0/24", "fd20::/64"]));
    assert_eq!(carol["persistent_keepalive"], json!(25));
    // The prefixes are not covered by the interface's own subnet: routes.
    let routes = all_routes(&ns);
    assert!(routes.contains("10.20.0.0/24 dev vpn0"), "{routes}");
    assert!(routes.contains("fd20::/64 dev vpn0"), "{routes}");
    // A PSK file without a key is refused by vpnctl, naming the file.
    let junk = write_file(dir.path(), "junk", "not a key\n", 0o600);
    let err = ctl.fails(
        &[
            "peer",
            "add",
            &ke.public,
            "--allowed-ips",
            "10.30.0.0/24",
            "--preshared-key-file",
            p(&junk),
        ],
        1,
    );
    assert!(
        err.contains(p(&junk)) && err.contains("invalid preshared key"),
        "{err}"
    );

    // peer.add errors: a bad key names `public_key`; a duplicate peer or an
    // allowed IP another peer has (10.20.0.7/24 is 10.20.0.0/24) is refused.
    let err = ctl.fails(&["peer", "add", "AAAA", "--allowed-ips", "10.30.0.0/24"], 1);
    assert!(err.starts_with("vpnctl: public_key: "), "{err}");
    let e = ctl.error(
        "peer.add",
        Some(json!({"public_key": "AAAA", "allowed_ips": []})),
        -32602,
    );
    assert!(message(&e).starts_with("public_key: "), "{e}");
    let err = ctl.fails(
        &["peer", "add", &kd.public, "--allowed-ips", "10.30.0.0/24"],
        1,
    );
    assert!(err.contains("already exists"), "{err}");
    let e = ctl.error(
        "peer.add",
        Some(json!({"public_key": kd.public, "allowed_ips": ["10.30.0.0/24"]})),
        -32000,
    );
    assert!(message(&e).starts_with("public_key: "), "{e}");
    let err = ctl.fails(
        &["peer", "add", &ke.public, "--allowed-ips", "10.20.0.7/24"],
        1,
    );
    // The refusal names the peer holding the prefix as the API knows it (issue 9): by name.
    assert!(
        err.contains(&format!(
            "peer {}: allowed_ips: 10.20.0.0/24 is already an allowed IP of peer carol",
            ke.public
        )),
        "{err}"
    );
    let e = ctl.error(
        "peer.add",
        Some(json!({"public_key": ke.public, "allowed_ips": ["10.20.0.0/24"], "name": "eve"})),
        -32000,
    );
    assert!(e["data"].as_array().is_some_and(|d| !d.is_empty()), "{e}");
    assert!(
        message(&e).starts_with(
            "peer eve: allowed_ips: 10.20.0.0/24 is already an allowed IP of peer carol"
        ),
        "{e}"
    );
    let e = ctl.error(
        "peer.add",
        Some(json!({"public_key": ke.public, "allowed_ips": ["10.300.0.0/24"]})),
        -32602,
    );
    assert!(message(&e).starts_with("allowed_ips[0]: "), "{e}");
    let e = ctl.error("peer.add", Some(json!({"public_key": ke.public})), -32602);
    assert!(message(&e).contains("allowed_ips"), "{e}");
    let e = ctl.error(
        "peer.add",
        Some(json!({"public_key": ke.public, "allowed_ips": "10.30.0.0/24"})),
        -32602,
    );
    assert!(
        message(&e).contains("invalid type") && message(&e).contains("allowed_ips: "),
        "{e}"
    );
    let e = ctl.error(
        "peer.add",
        Some(json!({"public_key": ke.public, "allowed_ips": [], "name": ""})),
        -32602,
    );
    assert!(message(&e).starts_with("name: "), "{e}");
    assert_eq!(
        peer_keys(&ctl.json(&["peer", "list"])),
        sorted(&[&kb.public, &kc.public, &kd.public]),
        "refused additions change nothing"
    );
    // Usage errors exit 2 before anything is sent.
    ctl.fails(&["peer", "add", &ke.public], 2);
    ctl.fails(&["peer", "add", "--allowed-ips", "10.30.0.0/24"], 2);

    // peer.update, one field at a time.
    let change = |args: &[&str], what: &str| {
        let mut all = vec!["peer", "update"];
        all.extend_from_slice(args);
        let out = ctl.ok(&all);
        assert_eq!(out, format!("peer changed: {what}\n"), "vpnctl {all:?}");
    };
    let carol_label = format!("{} (carol)", kd.public);
    change(
        &["carol", "--endpoint", "10.99.0.10:51821"],
        &format!("{carol_label}: endpoint"),
    );
    assert_eq!(
        ctl.json(&["peer", "show", "carol"])["endpoint"],
        json!("10.99.0.10:51821")
    );
    change(
        &["carol", "--allowed-ips", "10.21.0.0/24"],
        &format!("{carol_label}: allowed_ips"),
    );
    let routes = all_routes(&ns);
    assert!(routes.contains("10.21.0.0/24 dev vpn0"), "{routes}");
    assert!(
        !routes.contains("10.20.0.0/24") && !routes.contains("fd20::/64"),
        "{routes}"
    );
    change(
        &[&kd.public, "--persistent-keepalive", "0"],
        &format!("{carol_label}: persistent_keepalive"),
    );
    assert_eq!(
        ctl.json(&["peer", "show", "carol"])["persistent_keepalive"],
        Value::Null
    );
    let psk_file2 = write_file(dir.path(), "psk-d2", &format!("  {psk_d2}  \n"), 0o600);
    let r = ctl.run(&[
        "peer",
        "update",
        "carol",
        "--preshared-key-file",
        p(&psk_file2),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.stdout,
        format!("peer changed: {carol_label}: preshared_key\n")
    );
    assert!(
        r.stderr.is_empty(),
        "a 0600 key file earns no warning: {}",
        r.stderr
    );
    change(
        &["carol", "--no-preshared-key"],
        &format!("{carol_label}: preshared_key"),
    );
    change(
        &["carol", "--no-endpoint"],
        &format!("{carol_label}: endpoint"),
    );
    let carol = ctl.json(&["peer", "show", "carol"]);
    assert_eq!(
        carol["endpoint"],
        Value::Null,
        "the endpoint was cleared: {carol}"
    );
    change(
        &["carol", "--name", "carl"],
        &format!("{} (carl): name", kd.public),
    );
    ctl.fails(&["peer", "show", "carol"], 1);
    assert_eq!(
        ctl.json(&["peer", "show", "carl"])["public_key"],
        json!(kd.public)
    );
    // Several fields at once, as JSON.
    let res = ctl.json(&[
        "peer",
        "update",
        "carl",
        "--endpoint",
        "10.99.0.11:51822",
        "--persistent-keepalive",
        "5",
    ]);
    assert_eq!(
        res,
        json!({
            "interface": [],
            "peers_added": [],
            "peers_removed": [],
            "peers_changed": [format!("{} (carl): endpoint, persistent_keepalive", kd.public)],
            "saved": false
        })
    );
    // Setting what is already set changes nothing.
    assert_eq!(
        ctl.ok(&["peer", "update", "carl", "--persistent-keepalive", "5"]),
        "nothing changed\n"
    );
    // peer.update errors.
    let e = ctl.error(
        "peer.update",
        Some(json!({"peer": "carl", "bogus": 1})),
        -32602,
    );
    assert!(message(&e).contains("unknown field `bogus`"), "{e}");
    let e = ctl.error(
        "peer.update",
        Some(json!({"peer": "carl", "persistent_keepalive": "x"})),
        -32602,
    );
    assert!(
        message(&e).contains("invalid type") && message(&e).contains("persistent_keepalive: "),
        "{e}"
    );
    let e = ctl.error(
        "peer.update",
        Some(json!({"peer": "carl", "persistent_keepalive": 70000})),
        -32602,
    );
    assert!(message(&e).contains("70000"), "{e}");
    let e = ctl.error(
        "peer.update",
        Some(json!({"peer": "carl", "allowed_ips": "10.0.0.0/8"})),
        -32602,
    );
    assert!(
        message(&e).contains("invalid type") && message(&e).contains("allowed_ips: "),
        "{e}"
    );
    let e = ctl.error("peer.update", Some(json!({"peer": 5})), -32602);
    assert!(
        message(&e).contains("invalid type") && message(&e).contains("peer: "),
        "{e}"
    );
    let e = ctl.error(
        "peer.update",
        Some(json!({"peer": "carl", "preshared_key": "short"})),
        -32602,
    );
    assert!(message(&e).starts_with("preshared_key: "), "{e}");
    let err = ctl.fails(&["peer", "update", "carl", "--endpoint", "nowhere"], 1);
    assert!(err.starts_with("vpnctl: endpoint: "), "{err}");
    let err = ctl.fails(
        &["peer", "update", "carl", "--allowed-ips", "10.10.0.2/32"],
        1,
    );
    // Said of the peer being updated (not of alice, who is earlier in the list).
    assert!(
        err.contains("peer carl: allowed_ips: 10.10.0.2/32 is already an allowed IP of peer alice"),
        "{err}"
    );
    ctl.fails(&["peer", "update", "nobody", "--name", "x"], 1);
    ctl.error(
        "peer.update",
        Some(json!({"peer": "nobody", "name": "x"})),
        -32001,
    );
    let err = ctl.fails(
        &[
            "peer",
            "update",
            "carl",
            "--endpoint",
            "10.0.0.1:1",
            "--no-endpoint",
        ],
        2,
    );
    assert!(err.contains("cannot be used with"), "{err}");
    ctl.fails(&["peer", "update", "carl"], 2);
    ctl.fails(
        &[
            "peer",
            "update",
            "carl",
            "--preshared-key-file",
            "/x",
            "--no-preshared-key",
        ],
        2,
    );

    // peer.remove by name and by key; its routes go with it.
    assert_eq!(
        ctl.ok(&["peer", "remove", "carl"]),
        format!("peer removed: {} (carl)\n", kd.public)
    );
    let routes = all_routes(&ns);
    assert!(!routes.contains("10.21.0.0/24"), "{routes}");
    let err = ctl.fails(&["peer", "remove", "carl"], 1);
    assert!(err.contains("no peer `carl`"), "{err}");
    ctl.error("peer.remove", Some(json!({"peer": "carl"})), -32001);
    ctl.error(
        "peer.remove",
        Some(json!({"peer": kc.public, "force": true})),
        -32602,
    );
    let res = ctl.result("peer.remove", Some(json!({"peer": kc.public})));
    assert_eq!(res["peers_removed"], json!([kc.public]));
    assert_eq!(
        peer_keys(&ctl.json(&["peer", "list"])),
        sorted(&[&kb.public])
    );

    // Standard JSON-RPC errors.
    let e = ctl.error("no.such.method", None, -32601);
    assert!(message(&e).contains("no.such.method"), "{e}");
    let resp = ctl.raw(b"{\"jsonrpc\":\"2.0\",\"method\":\"show\",\"id\":1\n");
    assert_eq!(resp["error"]["code"], json!(-32700), "{resp}");
    assert_eq!(resp["id"], Value::Null);
    let resp = ctl.raw(b"\xff\xfe garbage\n");
    assert_eq!(resp["error"]["code"], json!(-32700), "{resp}");
    let resp = ctl.raw(b"{\"jsonrpc\":\"1.0\",\"method\":\"show\",\"id\":3}\n");
    assert_eq!(resp["error"]["code"], json!(-32600), "{resp}");
    assert_eq!(resp["id"], json!(3));
    let resp = ctl.raw(b"{\"jsonrpc\":\"2.0\",\"method\":5,\"id\":4}\n");
    assert_eq!(resp["error"]["code"], json!(-32600), "{resp}");
    let resp = ctl.raw(b"[1,2]\n");
    assert_eq!(resp["error"]["code"], json!(-32600), "{resp}");
    // A notification gets no answer; the next request on the connection does.
    let resp = ctl.raw(
        b"{\"jsonrpc\":\"2.0\",\"method\":\"show\"}\n{\"jsonrpc\":\"2.0\",\"method\":\"stats\",\"id\":\"s\"}\n",
    );
    assert_eq!(resp["id"], json!("s"), "{resp}");
    assert!(resp["result"]["drops"].is_object(), "{resp}");

    // An unreachable daemon is exit 3, for every command.
    let gone = dir.path().join("gone.sock");
    for args in [
        &["peer", "list"][..],
        &["peer", "show", "alice"],
        &["peer", "remove", "alice"],
        &["reload"],
        &["stats"],
        &["interface", "set", "--mtu", "1400"],
    ] {
        let mut all = vec!["--socket", p(&gone)];
        all.extend_from_slice(args);
        let out = run_with_timeout(
            std::process::Command::new(e2e::cargo_binary("vpnctl")).args(&all),
            VPNCTL_TIMEOUT,
        )
        .unwrap();
        assert_eq!(out.status.code(), Some(3), "vpnctl {all:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("cannot reach vpnd"));
    }

    // The tunnel state of alice was never disturbed by all this.
    assert_eq!(
        ctl.json(&["peer", "show", "alice"])["endpoint"],
        json!("10.99.0.2:51820")
    );
    ctl.assert_no_secrets(&[&ka.private, &psk_b, &psk_d1, &psk_d2]);
}

#[test]
fn interface_reload_check_save() {
    if !require_root_with(&["wg", "ss"]) {
        return;
    }
    let guard = TestGuard::new("vpnd_control_iface");
    let ns = guard.netns();
    let keydir = tempfile::tempdir().unwrap();
    let (ka, kb, kc, kd, knew) = (
        WgKeys::generate(),
        WgKeys::generate(),
        WgKeys::generate(),
        WgKeys::generate(),
        WgKeys::generate(),
    );
    let psk_b = WgKeys::genpsk();
    let private_file = write_file(
        keydir.path(),
        "private",
        &format!("{}\n", ka.private),
        0o600,
    );
    let psk_file = write_file(keydir.path(), "psk-b", &format!("{psk_b}\n"), 0o600);
    let config = VpndConfig::new("vpn0", &ka)
        .private_key_file(&private_file)
        .listen_port(51820)
        .addresses(&["10.10.0.1/24"])
        .peer(
            PeerConfig::new(&kb.public, &["10.10.0.2/32"])
                .name("bob")
                .preshared_key_file(&psk_file)
                .endpoint("10.99.0.2:51820"),
        );
    let vpnd = Vpnd::start(&ns, &config);
    let ctl = Ctl::new(&vpnd);
    let file = vpnd.config_path().to_path_buf();
    let show = ctl.json(&["show"]);
    assert_eq!(show["interface"]["public_key"], json!(ka.public));

    // stats: as text, as JSON, over the socket.
    let stats = ctl.json(&["stats"]);
    assert!(stats["drops"].is_object(), "{stats}");
    assert_eq!(stats["handshake_queue"], json!(0));
    assert_eq!(stats["under_load"], json!(false));
    let text = ctl.ok(&["stats"]);
    assert!(
        text.starts_with("handshake queue: 0\nunder load: no\n"),
        "{text}"
    );
    assert!(text.contains("dropped packets"), "{text}");
    assert!(ctl.result("stats", None)["drops"].is_object());

    // config.check: a valid copy, an invalid file (every error on stderr),
    // a missing file, as JSON; the daemon's own file is untouched. The
    // daemon reads only files in its configuration directory (that of
    // --config); `vpnctl check` sends any other file's text (issue 15).
    let confdir = file.parent().unwrap().to_path_buf();
    let valid = write_file(&confdir, "valid.yaml", &config.to_yaml(), 0o600);
    let out = ctl.ok(&["check", p(&valid)]);
    assert_eq!(out, format!("{}: configuration is valid\n", p(&valid)));
    let res = ctl.json(&["check", p(&valid)]);
    assert_eq!(res, json!({"valid": true, "errors": [], "warnings": []}));
    let broken_yaml =
        "interface:\n  name: vpn0\n  mtu: 5\npeers:\n  - public_key: zzz\n    allowed_ips: []\n";
    // Outside the directory: vpnctl reads it and sends the text.
    let invalid = write_file(keydir.path(), "invalid.yaml", broken_yaml, 0o600);
    let err = ctl.fails(&["check", p(&invalid)], 1);
    let lines: Vec<&str> = err.lines().collect();
    assert!(lines.len() >= 3, "one line per problem: {err}");
    assert!(lines.iter().all(|l| l.starts_with("vpnctl: ")), "{err}");
    assert!(
        err.contains(&format!("{}: interface.mtu", p(&invalid))),
        "{err}"
    );
    assert!(err.contains("peers[0].public_key"), "{err}");
    assert!(err.contains("private_key"), "{err}");
    let r = ctl.run(&["check", p(&invalid), "--json"]);
    assert_eq!(r.code, 1);
    let res: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(res["valid"], json!(false));
    assert_eq!(res["errors"].as_array().unwrap().len(), lines.len());
    let err = ctl.fails(&["check", p(&keydir.path().join("missing.yaml"))], 1);
    assert!(err.contains("missing.yaml"), "{err}");
    let err = ctl.fails(&["check", p(&confdir.join("missing.yaml"))], 1);
    assert!(err.contains("missing.yaml"), "{err}");
    // A relative path is made absolute for the daemon.
    let mut cmd = vpnd.vpnctl(["check", "valid.yaml"]);
    cmd.current_dir(&confdir);
    let out = ran(&run_with_timeout(&mut cmd, VPNCTL_TIMEOUT).unwrap());
    assert_eq!(out.code, 0, "{}", out.stderr);
    // Warnings go to stderr; the file is still valid.
    let open = write_file(
        &confdir,
        "open.yaml",
        &VpndConfig::new("vpn0", &ka).to_yaml(),
        0o644,
    );
    let r = ctl.run(&["check", p(&open)]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.starts_with("vpnctl: warning: "), "{}", r.stderr);
    let inside = write_file(&confdir, "invalid.yaml", broken_yaml, 0o600);
    let res = ctl.result("config.check", Some(json!({"path": "invalid.yaml"})));
    assert_eq!(res["valid"], json!(false));
    assert!(
        res["errors"][0].as_str().unwrap().contains(p(&inside)),
        "{res}"
    );
    // Sent as text, a file with its keys inline checks anywhere; one that
    // names a key file outside the directory is not read for the client.
    let inline = write_file(
        keydir.path(),
        "inline.yaml",
        &VpndConfig::new("vpn0", &ka).to_yaml(),
        0o600,
    );
    assert_eq!(ctl.json(&["check", p(&inline)])["valid"], json!(true));
    let with_key_file = write_file(keydir.path(), "keyfile.yaml", &config.to_yaml(), 0o600);
    let err = ctl.fails(&["check", p(&with_key_file)], 1);
    assert!(
        err.contains(&format!("key file {} is not read", p(&private_file))),
        "{err}"
    );
    // Over the socket: a path outside is refused without being read, the
    // text is checked.
    let secret = write_file(
        keydir.path(),
        "secret",
        "root:$6$not-for-clients:1::::::\n",
        0o600,
    );
    for path in [p(&secret), "/etc/shadow", "../../etc/passwd"] {
        let e = ctl.error("config.check", Some(json!({"path": path})), -32000);
        let msg = e["message"].as_str().unwrap();
        assert!(msg.contains("outside the configuration directory"), "{e}");
        assert!(!msg.contains("not-for-clients"), "{e}");
    }
    let res = ctl.result(
        "config.check",
        Some(json!({"content": broken_yaml, "name": "draft.yaml"})),
    );
    assert_eq!(res["valid"], json!(false));
    assert!(
        res["errors"][0]
            .as_str()
            .unwrap()
            .starts_with("draft.yaml: "),
        "{res}"
    );
    ctl.error("config.check", Some(json!({})), -32602);
    ctl.error("config.check", None, -32602);
    ctl.error("config.check", Some(json!({"path": 1})), -32602);
    // Without a daemon: exit 3 and a hint.
    let gone = keydir.path().join("gone.sock");
    let out = run_with_timeout(
        std::process::Command::new(e2e::cargo_binary("vpnctl")).args([
            "--socket",
            p(&gone),
            "check",
            p(&valid),
        ]),
        VPNCTL_TIMEOUT,
    )
    .unwrap();
    let r = ran(&out);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("vpnd --check --config"), "{}", r.stderr);

    // reload: nothing to do, then a change made in the file.
    assert_eq!(ctl.ok(&["reload"]), "nothing changed\n");
    let mut edited = config
        .clone()
        .listen_port(51821)
        .peer(PeerConfig::new(&kc.public, &["10.10.0.3/32"]).name("carol"));
    // The control socket is the harness's: keep it in the file.
    edited.socket = Some(vpnd.socket().to_path_buf());
    let yaml = edited.to_yaml();
    std::fs::write(&file, &yaml).unwrap();
    let out = ctl.ok(&["reload"]);
    // The daemon also reloads on its own once the file has settled (after
    // at least 0.5 s); if it got there first, ours had nothing left to do.
    if out == "nothing changed\n" {
        assert!(
            vpnd.proc()
                .logs()
                .contains("configuration file changed; reloading"),
            "reload reported nothing although the file changed"
        );
    } else {
        assert_eq!(
            out,
            format!(
                "interface: listen_port 51820 -> 51821\npeer added: {} (carol)\n",
                kc.public
            )
        );
    }
    let show = ctl.json(&["show"]);
    assert_eq!(show["interface"]["listen_port"], json!(51821));
    assert_eq!(peer_keys(&show["peers"]), sorted(&[&kb.public, &kc.public]));
    let good_yaml = yaml;

    // A broken file is refused with every reason; nothing changes.
    std::fs::write(&file, format!("# broken\n{broken_yaml}")).unwrap();
    let err = ctl.fails(&["reload"], 1);
    let lines: Vec<&str> = err.lines().collect();
    assert!(lines.len() >= 3, "every reason on its own line: {err}");
    assert!(lines.iter().all(|l| l.starts_with("vpnctl: ")), "{err}");
    assert!(err.contains("interface.mtu: 5 is out of range"), "{err}");
    assert!(err.contains("peers[0].public_key"), "{err}");
    let e = ctl.error("reload", None, -32000);
    assert_eq!(e["data"].as_array().map(Vec::len), Some(lines.len()), "{e}");
    let e = ctl.error("reload", Some(json!({"force": true})), -32602);
    assert!(message(&e).contains("`force`"), "{e}");
    let after = ctl.json(&["show"]);
    assert_eq!(
        after["interface"], show["interface"],
        "refused reload changed the interface"
    );
    assert_eq!(
        after["peers"], show["peers"],
        "refused reload changed the peers"
    );
    assert_eq!(ctl.json(&["show"])["interface"]["mtu"], json!(1420));

    // --save: the file is rewritten without comments, reads back, and keys
    // that came from files stay references to them.
    std::fs::write(&file, format!("# a comment that --save drops\n{good_yaml}")).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    // Let the daemon's own reload of the restored file (the configuration in
    // force, so a no-op) happen before the changes below.
    std::thread::sleep(WATCH_SETTLE);
    let out = ctl.ok(&[
        "peer",
        "add",
        &kd.public,
        "--allowed-ips",
        "10.50.0.0/24",
        "--name",
        "dave",
        "--save",
    ]);
    assert_eq!(
        out,
        format!(
            "peer added: {} (dave)\nconfiguration file saved\n",
            kd.public
        )
    );
    let saved = std::fs::read_to_string(&file).unwrap();
    assert!(!saved.contains("a comment that --save drops"), "{saved}");
    assert!(
        saved.contains(&kd.public) && saved.contains("\"dave\""),
        "{saved}"
    );
    assert!(
        saved.contains(&format!("private_key_file: \"{}\"", p(&private_file))),
        "{saved}"
    );
    assert!(
        saved.contains(&format!("preshared_key_file: \"{}\"", p(&psk_file))),
        "{saved}"
    );
    assert!(
        !saved.contains(&ka.private) && !saved.contains(&psk_b),
        "key leaked: {saved}"
    );
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the saved file keeps its mode");
    let check = e2e::vpnd::run_vpnd(&ns, ["--check", "--config", p(&file)], VPNCTL_TIMEOUT);
    assert!(
        check.status.success(),
        "the saved file does not read back: {}\n{saved}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert_eq!(ctl.json(&["check", p(&file)])["valid"], json!(true));
    let res = ctl.json(&["interface", "set", "--mtu", "1400", "--save"]);
    assert_eq!(res["interface"], json!(["mtu 1420 -> 1400"]));
    assert_eq!(res["saved"], json!(true));
    assert!(std::fs::read_to_string(&file)
        .unwrap()
        .contains("  mtu: 1400\n"));
    let res = ctl.json(&[
        "peer",
        "update",
        "dave",
        "--endpoint",
        "10.99.0.5:51820",
        "--save",
    ]);
    assert_eq!(res["saved"], json!(true));
    assert!(std::fs::read_to_string(&file)
        .unwrap()
        .contains("endpoint: \"10.99.0.5:51820\""));
    let res = ctl.json(&["peer", "remove", "dave", "--save"]);
    assert_eq!(res["saved"], json!(true));
    let saved = std::fs::read_to_string(&file).unwrap();
    assert!(!saved.contains(&kd.public), "{saved}");
    assert!(
        !saved.contains(&ka.private) && !saved.contains(&psk_b),
        "key leaked: {saved}"
    );
    // Without --save the file is left alone, and the daemon's reload of the
    // file it saved a moment ago does not undo the change (checked below).
    ctl.ok(&["peer", "update", "carol", "--persistent-keepalive", "15"]);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), saved);
    // A refused change is not saved either.
    ctl.fails(&["interface", "set", "--mtu", "100", "--save"], 1);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), saved);

    // interface.set: MTU, listen port, addresses, private key.
    let out = ctl.ok(&["interface", "set", "--mtu", "1380"]);
    assert_eq!(out, "interface: mtu 1400 -> 1380\n");
    let link = ns.ip_ok(["link", "show", "dev", "vpn0"]);
    assert!(link.contains(" mtu 1380 "), "{link}");
    let out = ctl.ok(&["interface", "set", "--listen-port", "51999"]);
    assert_eq!(out, "interface: listen_port 51821 -> 51999\n");
    assert_eq!(
        ctl.json(&["show"])["interface"]["listen_port"],
        json!(51999)
    );
    let sockets = ns.exec_ok(["ss", "-Hnul"]);
    assert!(sockets.contains(":51999 "), "{sockets}");
    assert!(
        !sockets.contains(":51821 "),
        "the old port is closed: {sockets}"
    );
    let out = ctl.ok(&[
        "interface",
        "set",
        "--addresses",
        "10.10.0.1/24,10.11.0.1/24",
    ]);
    assert_eq!(
        out,
        "interface: addresses [10.10.0.1/24] -> [10.10.0.1/24, 10.11.0.1/24]\n"
    );
    let addrs = ns.ip_ok(["-4", "addr", "show", "dev", "vpn0"]);
    assert!(addrs.contains("inet 10.11.0.1/24"), "{addrs}");
    // The same words as the file loader, with the reason for the bounds (issue 9).
    let err = ctl.fails(&["interface", "set", "--mtu", "100"], 1);
    assert!(
        err.starts_with(
            "vpnctl: interface.mtu: 100 is out of range: must be 576 to 65535 (576 is IPv4's \
             minimum datagram size; 65535 is the largest IP packet)"
        ),
        "{err}"
    );
    let err = ctl.fails(&["interface", "set", "--addresses", "10.10.0.300/24"], 1);
    assert!(err.starts_with("vpnctl: addresses[0]: "), "{err}");
    ctl.fails(&["interface", "set"], 2);
    ctl.fails(&["interface", "set", "--mtu", "70000"], 2);
    let e = ctl.error("interface.set", Some(json!({"private_key": "abc"})), -32602);
    assert!(message(&e).starts_with("private_key: "), "{e}");
    let e = ctl.error("interface.set", Some(json!({"mtu": "big"})), -32602);
    assert!(
        message(&e).contains("invalid type") && message(&e).contains("mtu: "),
        "{e}"
    );
    let e = ctl.error("interface.set", Some(json!({"port": 1})), -32602);
    assert!(message(&e).contains("unknown field `port`"), "{e}");
    let e = ctl.error("interface.set", None, -32602);
    assert!(message(&e).contains("missing params"), "{e}");
    let bad_key = write_file(keydir.path(), "bad-key", "AAAA\n", 0o600);
    let err = ctl.fails(&["interface", "set", "--private-key-file", p(&bad_key)], 1);
    assert!(
        err.contains(p(&bad_key)) && err.contains("invalid private key"),
        "{err}"
    );
    let new_key = write_file(
        keydir.path(),
        "new-key",
        &format!("{}\n", knew.private),
        0o600,
    );
    let out = ctl.ok(&["interface", "set", "--private-key-file", p(&new_key)]);
    assert_eq!(
        out,
        format!(
            "interface: private key changed (public key {} -> {})\n",
            ka.public, knew.public
        )
    );
    let show = ctl.json(&["show"]);
    assert_eq!(show["interface"]["public_key"], json!(knew.public));
    assert_eq!(peer_keys(&show["peers"]), sorted(&[&kb.public, &kc.public]));
    // The same key again is no change.
    assert_eq!(
        ctl.ok(&["interface", "set", "--private-key-file", p(&new_key)]),
        "nothing changed\n"
    );
    // Changes made without --save right after a --save survive the daemon
    // noticing that the file changed (it wrote the file itself).
    std::thread::sleep(WATCH_SETTLE);
    let show = ctl.json(&["show"]);
    assert_eq!(show["interface"]["mtu"], json!(1380), "{show}");
    assert_eq!(show["interface"]["listen_port"], json!(51999), "{show}");
    assert_eq!(
        ctl.json(&["peer", "show", "carol"])["persistent_keepalive"],
        json!(15)
    );

    ctl.assert_no_secrets(&[&ka.private, &knew.private, &psk_b]);
}

#[test]
fn abusive_clients_do_not_disturb_the_tunnel() {
    if !require_root_with(&["wg"]) {
        return;
    }
    let guard = TestGuard::new("vpnd_control_abuse");
    let a = guard.netns();
    let b = guard.netns();
    let _veth = VethPair::link(&a, &b, &["10.99.0.1/24"], &["10.99.0.2/24"]);
    let (ka, kb) = (WgKeys::generate(), WgKeys::generate());
    let psk = WgKeys::genpsk();
    let va = Vpnd::start(
        &a,
        &VpndConfig::new("vpn0", &ka)
            .listen_port(51820)
            .addresses(&["10.10.0.1/24"])
            .peer(
                PeerConfig::new(&kb.public, &["10.10.0.2/32"])
                    .name("b")
                    .preshared_key(&psk)
                    .endpoint("10.99.0.2:51821"),
            ),
    );
    let vb = Vpnd::start(
        &b,
        &VpndConfig::new("vpn0", &kb)
            .listen_port(51821)
            .addresses(&["10.10.0.2/24"])
            .peer(
                PeerConfig::new(&ka.public, &["10.10.0.1/32"])
                    .name("a")
                    .preshared_key(&psk)
                    .endpoint("10.99.0.1:51820"),
            ),
    );
    assert!(
        ping_until(&a, "10.10.0.2", Duration::from_secs(10)),
        "no tunnel A->B"
    );
    let ctl = Ctl::new(&va);
    let socket = va.socket().to_path_buf();

    // More than 1 MiB without a newline: an error response, then the
    // connection is closed.
    let s = connect(&socket);
    let mut big = b"{\"jsonrpc\":\"2.0\",\"method\":\"show\",\"params\":{\"x\":\"".to_vec();
    big.resize(MAX_MESSAGE + 4096, b'a');
    // The daemon stops reading at the limit; the rest may not be accepted.
    let _ = (&s).write_all(&big);
    let mut r = BufReader::new(&s);
    let resp = read_response(&mut r);
    ctl.record(&resp.to_string());
    assert_eq!(resp["error"]["code"], json!(-32600), "{resp}");
    assert_eq!(resp["id"], Value::Null);
    assert!(message(&resp["error"]).contains("1048576"), "{resp}");
    let mut rest = Vec::new();
    match r.read_to_end(&mut rest) {
        Ok(_) => assert!(rest.is_empty(), "more after the error: {rest:?}"),
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}"),
    }
    // Exactly at the limit is still a request (here: not valid JSON).
    let s = connect(&socket);
    let mut at_limit = vec![b' '; MAX_MESSAGE - 2];
    at_limit.extend_from_slice(b"{}\n");
    (&s).write_all(&at_limit).unwrap();
    let resp = read_response(&mut BufReader::new(&s));
    assert_eq!(resp["error"]["code"], json!(-32600), "{resp}");
    assert!(!message(&resp["error"]).contains("larger"), "{resp}");
    // The daemon still serves, and the tunnel still passes traffic.
    assert_eq!(
        ctl.json(&["show"])["interface"]["public_key"],
        json!(ka.public)
    );
    assert!(
        ping(&a, "10.10.0.2", 2),
        "tunnel down after an oversized request"
    );

    // A client that connects and never sends, and one that sends half a
    // line, do not hold up anyone else.
    let idle = connect(&socket);
    let half = connect(&socket);
    (&half).write_all(b"{\"jsonrpc\":\"2.0\",\"meth").unwrap();
    for _ in 0..5 {
        let start = Instant::now();
        let show = ctl.json(&["show"]);
        let took = start.elapsed();
        assert!(
            took < Duration::from_secs(1),
            "show took {took:?} beside idle clients"
        );
        assert_eq!(show["peers"][0]["state"], json!("online"));
        let start = Instant::now();
        ctl.result("stats", None);
        assert!(start.elapsed() < Duration::from_secs(1));
    }
    assert!(
        ping(&a, "10.10.0.2", 3),
        "tunnel down beside an idle client"
    );
    assert!(
        ping(&b, "10.10.0.1", 3),
        "tunnel down beside an idle client"
    );

    // 100 clients at once, each calling show: all answered.
    const CLIENTS: usize = 100;
    let barrier = Arc::new(Barrier::new(CLIENTS));
    let start = Instant::now();
    let threads: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let socket = socket.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || -> Result<String, String> {
                let s = UnixStream::connect(&socket).map_err(|e| format!("connect: {e}"))?;
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                barrier.wait();
                let req = format!("{{\"jsonrpc\":\"2.0\",\"method\":\"show\",\"id\":{i}}}\n");
                (&s).write_all(req.as_bytes())
                    .map_err(|e| format!("send: {e}"))?;
                let mut line = String::new();
                BufReader::new(&s)
                    .read_line(&mut line)
                    .map_err(|e| format!("read: {e}"))?;
                let v: Value = serde_json::from_str(&line).map_err(|e| format!("{e}: {line}"))?;
                if v["id"] != json!(i) || v["result"]["interface"]["name"] != json!("vpn0") {
                    return Err(format!("unexpected answer {line}"));
                }
                Ok(line)
            })
        })
        .collect();
    let mut failures = Vec::new();
    for t in threads {
        match t.join().expect("client thread panicked") {
            Ok(line) => ctl.record(&line),
            Err(e) => failures.push(e),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {CLIENTS} clients failed: {failures:?}",
        failures.len()
    );
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "100 concurrent shows took {:?}",
        start.elapsed()
    );
    // The idle clients are still connected and got nothing; closing them
    // is harmless.
    idle.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let mut buf = [0u8; 16];
    assert!(
        (&idle).read(&mut buf).is_err(),
        "the idle client was answered or closed early"
    );
    drop(idle);
    drop(half);
    assert!(
        ping(&a, "10.10.0.2", 2),
        "tunnel down after the concurrent clients"
    );
    assert_eq!(ctl.json(&["peer", "show", "b"])["state"], json!("online"));
    // The other daemon's control socket was never involved but works too.
    assert_eq!(
        Ctl::new(&vb)
            .json(&["peer", "list"])
            .as_array()
            .map(Vec::len),
        Some(1)
    );

    ctl.assert_no_secrets(&[&ka.private, &kb.private, &psk]);
}
