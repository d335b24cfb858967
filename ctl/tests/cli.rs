//! Runs the built `vpnctl` against a fake vpnd: a Unix socket in a temp dir served by a thread
//! that answers each connection with a scripted reply.

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What the fake daemon does with one connection after reading the request line.
enum Reply {
    /// Send this line (a newline is added).
    Line(String),
    /// Close the connection without answering.
    Close,
    /// Send this line after a pause (a daemon busy applying a change).
    Late(Duration, String),
}

struct FakeDaemon {
    _dir: tempfile::TempDir,
    path: PathBuf,
    thread: JoinHandle<Vec<String>>,
}

impl FakeDaemon {
    /// Serves one connection per reply, in order, and then stops.
    fn start(replies: Vec<Reply>) -> FakeDaemon {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vpnd.sock");
        let listener = UnixListener::bind(&path).unwrap();
        listener.set_nonblocking(true).unwrap();
        let thread = std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(20);
            let mut requests = Vec::new();
            for reply in replies {
                let conn = loop {
                    match listener.accept() {
                        Ok((c, _)) => break c,
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                            assert!(Instant::now() < deadline, "vpnctl never connected");
                            std::thread::sleep(Duration::from_millis(10));
                        }
                        Err(e) => panic!("accept: {e}"),
                    }
                };
                conn.set_nonblocking(false).unwrap();
                conn.set_read_timeout(Some(Duration::from_secs(10)))
                    .unwrap();
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                requests.push(line);
                let text = match reply {
                    Reply::Line(text) => Some(text),
                    Reply::Late(pause, text) => {
                        std::thread::sleep(pause);
                        Some(text)
                    }
                    Reply::Close => None,
                };
                if let Some(text) = text {
                    let mut w = &conn;
                    // vpnctl may have given up and closed (what the tests check for).
                    let _ = w.write_all(format!("{text}\n").as_bytes());
                }
            }
            requests
        });
        FakeDaemon {
            _dir: dir,
            path,
            thread,
        }
    }

    fn requests(self) -> Vec<String> {
        self.thread.join().unwrap()
    }
}

fn vpnctl(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_vpnctl"));
    c.args(args)
        .env_remove("VPNCTL_SOCKET")
        .env_remove("NO_COLOR")
        .stdin(Stdio::null());
    c
}

fn run(args: &[&str]) -> Output {
    vpnctl(args).output().unwrap()
}

fn run_with_socket(socket: &Path, args: &[&str]) -> Output {
    let mut all = vec!["--socket", socket.to_str().unwrap()];
    all.extend_from_slice(args);
    run(&all)
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

fn show_result() -> Value {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    json!({
        "interface": {
            "name": "vpn0",
            "public_key": "HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw=",
            "listen_port": 51820,
            "addresses": ["10.10.0.1/24", "fd10::1/64"],
            "mtu": 1420,
            "drops": {},
            "dataplane_restarts": {"handshake": 0, "receive_v4": 0, "receive_v6": 0, "send": 0},
            "nat": {
                "public_endpoints": ["203.0.113.4:51820"],
                "mapping": "endpoint_independent",
                "hubs": [{"address": "hub.example.net:3478", "state": "connected", "transport": "udp", "rtt_ms": 12.5}],
                "stun_servers": [{"address": "hub.example.net:3478", "state": "ok", "mapped": "203.0.113.4:51820", "rtt_ms": 12.5}]
            },
            "added_by_a_newer_daemon": true
        },
        "peers": [
            {
                "name": null,
                "public_key": "gN65BkIKy1eCE9pP1wdc8ROUtkHLF2PfAqYdyYBz6EA=",
                "endpoint": null,
                "allowed_ips": [],
                "state": "offline",
                "state_reason": "handshake timed out",
                "last_handshake": null,
                "handshakes": 0,
                "rx_bytes": 0,
                "tx_bytes": 0,
                "persistent_keepalive": null,
                "path": "none",
                "why_not_direct": "hub_unreachable"
            },
            {
                "name": "alice",
                "public_key": "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=",
                "endpoint": "10.99.0.2:51820",
                "allowed_ips": ["10.10.0.2/32", "fd10::2/128"],
                "state": "online",
                "last_handshake": now - 3600,
                "handshakes": 3,
                "rx_bytes": 1260,
                "tx_bytes": 4781506,
                "persistent_keepalive": 25,
                "path": "punched",
                "path_endpoint": "198.51.100.7:40001"
            }
        ]
    })
}

fn ok_line(result: Value) -> Reply {
    Reply::Line(json!({"jsonrpc": "2.0", "result": result, "id": 1}).to_string())
}

#[test]
fn show_human() {
    let d = FakeDaemon::start(vec![ok_line(show_result())]);
    let o = run_with_socket(&d.path, &["show"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.starts_with(
            "interface: vpn0\n  public key: HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw=\n"
        ),
        "{out}"
    );
    assert!(
        out.contains("  addresses: 10.10.0.1/24, fd10::1/64\n"),
        "{out}"
    );
    // Online alice comes first although the daemon sent her second.
    let alice = out.find("peer: xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg= (alice)\n");
    let other = out.find("peer: gN65BkIKy1eCE9pP1wdc8ROUtkHLF2PfAqYdyYBz6EA=\n");
    assert!(alice.unwrap() < other.unwrap(), "{out}");
    assert!(
        out.contains("  state: offline (handshake timed out)\n"),
        "{out}"
    );
    // The daemon's clock and ours are the same here; allow a second of slack.
    assert!(
        out.contains("  latest handshake: 1 hour ago\n")
            || out.contains("  latest handshake: 1 hour, 1 second ago\n"),
        "{out}"
    );
    assert!(
        out.contains("  transfer: 1.23 KiB received, 4.56 MiB sent\n"),
        "{out}"
    );
    assert!(
        out.contains("  persistent keepalive: every 25 seconds\n"),
        "{out}"
    );
    assert!(!out.contains('\x1b'), "colour on a pipe: {out:?}");
    assert!(o.stderr.is_empty());
    let reqs = d.requests();
    assert_eq!(
        reqs,
        ["{\"jsonrpc\":\"2.0\",\"method\":\"show\",\"id\":1}\n"]
    );
}

#[test]
fn show_json_has_exactly_the_show_result_fields() {
    let d = FakeDaemon::start(vec![ok_line(show_result())]);
    let o = run_with_socket(&d.path, &["show", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.starts_with("{\n  \""), "not pretty-printed: {out}");
    let got: Value = serde_json::from_str(&out).unwrap();
    let mut expected = show_result();
    expected["interface"]
        .as_object_mut()
        .unwrap()
        .remove("added_by_a_newer_daemon");
    assert_eq!(got, expected);
    d.requests();
}

#[test]
fn refused_request_exits_1_with_the_message() {
    let d = FakeDaemon::start(vec![Reply::Line(
        r#"{"jsonrpc":"2.0","error":{"code":-32000,"message":"daemon is shutting down"},"id":1}"#
            .into(),
    )]);
    let o = run_with_socket(&d.path, &["show"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stderr(&o), "vpnctl: daemon is shutting down\n");
    assert!(o.stdout.is_empty());
    d.requests();
}

#[test]
fn malformed_answers_fail_cleanly() {
    let d = FakeDaemon::start(vec![
        Reply::Line("this is not json".into()),
        ok_line(json!({"interface": 5})),
        Reply::Line(r#"{"jsonrpc":"2.0","result":{},"id":99}"#.into()),
        Reply::Line("\u{1b}[31m{".into()),
    ]);
    for _ in 0..4 {
        let o = run_with_socket(&d.path, &["show", "--json"]);
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        let err = stderr(&o);
        assert!(err.starts_with("vpnctl: bad response from vpnd: "), "{err}");
        assert!(!err.contains("panicked"), "{err}");
        assert!(o.stdout.is_empty());
    }
    d.requests();
}

#[test]
fn daemon_hanging_up_is_unreachable() {
    let d = FakeDaemon::start(vec![Reply::Close]);
    let o = run_with_socket(&d.path, &["show"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("closed the connection"),
        "{}",
        stderr(&o)
    );
    d.requests();
}

#[test]
fn missing_socket_exits_3_and_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gone.sock");
    let o = run_with_socket(&path, &["show"]);
    assert_eq!(o.status.code(), Some(3));
    let err = stderr(&o);
    assert!(err.contains(path.to_str().unwrap()), "{err}");
    assert!(err.contains("is vpnd running?"), "{err}");
    assert!(o.stdout.is_empty());
}

#[test]
fn stale_socket_exits_3() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stale.sock");
    drop(UnixListener::bind(&path).unwrap());
    let o = run_with_socket(&path, &["show"]);
    assert_eq!(o.status.code(), Some(3));
    assert!(stderr(&o).contains("connection refused"), "{}", stderr(&o));
}

#[test]
fn interface_picks_the_default_socket() {
    let o = run(&["show", "-i", "vpntest9"]);
    assert_eq!(o.status.code(), Some(3));
    assert!(
        stderr(&o).contains("/run/vpnd/vpntest9.sock"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn bad_usage_exits_2() {
    for args in [
        &[][..],
        &["show", "--bogus"],
        &["frobnicate"],
        &["show", "-i", "../../etc/x"],
        &["completions", "tcsh"],
        &["genkey", "extra"],
    ] {
        let o = run(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(!stderr(&o).is_empty());
    }
    assert_eq!(run(&["--help"]).status.code(), Some(0));
    assert_eq!(run(&["--version"]).status.code(), Some(0));
}

#[test]
fn socket_from_environment_and_flag_precedence() {
    let d = FakeDaemon::start(vec![ok_line(show_result()), ok_line(show_result())]);
    let o = vpnctl(&["show", "--json"])
        .env("VPNCTL_SOCKET", &d.path)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // --socket wins over the environment.
    let o = vpnctl(&["show", "--json", "--socket", d.path.to_str().unwrap()])
        .env("VPNCTL_SOCKET", "/nonexistent/vpnd.sock")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(d.requests().len(), 2);
    // An empty variable counts as unset.
    let o = vpnctl(&["show", "-i", "vpntest8"])
        .env("VPNCTL_SOCKET", "")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3));
    assert!(stderr(&o).contains("/run/vpnd/vpntest8.sock"));
}

fn pipe(args: &[&str], input: &str) -> Output {
    let mut child = vpnctl(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn wg(args: &[&str], input: &str) -> Option<String> {
    let mut child = Command::new("wg")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .ok()?;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    Some(String::from_utf8(out.stdout).unwrap())
}

#[test]
fn key_commands_match_wg() {
    let key = stdout(&run(&["genkey"]));
    assert_eq!(key.len(), 45, "{key:?}");
    assert!(key.ends_with('\n'));
    let psk = stdout(&run(&["genpsk"]));
    assert_eq!(psk.len(), 45, "{psk:?}");
    let ours = pipe(&["pubkey"], &key);
    assert_eq!(ours.status.code(), Some(0));
    assert_eq!(stdout(&ours).len(), 45);

    let Some(wg_key) = wg(&["genkey"], "") else {
        eprintln!("skipping the wg comparison: wg is not installed");
        return;
    };
    for k in [key, wg_key] {
        let expected = wg(&["pubkey"], &k).unwrap();
        assert_eq!(stdout(&pipe(&["pubkey"], &k)), expected, "{k}");
    }
}

#[test]
fn bad_private_key_exits_1() {
    for input in ["", "hello\n", "AAAA\n"] {
        let o = pipe(&["pubkey"], input);
        assert_eq!(o.status.code(), Some(1), "{input:?}");
        assert!(
            stderr(&o).starts_with("vpnctl: invalid private key on stdin: "),
            "{}",
            stderr(&o)
        );
        assert!(o.stdout.is_empty());
    }
}

#[test]
fn completions_for_each_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let o = run(&["completions", shell]);
        assert_eq!(o.status.code(), Some(0), "{shell}");
        let script = stdout(&o);
        assert!(script.contains("vpnctl"), "{shell}");
        assert!(script.contains("genkey"), "{shell}");
    }
}

/// The parsed request line the fake daemon received.
fn request(line: &str) -> Value {
    serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"))
}

fn change_result(added: &[&str]) -> Value {
    json!({
        "interface": [],
        "peers_added": added,
        "peers_removed": [],
        "peers_changed": [],
        "saved": false
    })
}

fn key_file(dir: &Path, name: &str, contents: &str, mode: u32) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    path
}

const KEY: &str = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=";
const SECRET: &str = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=";

#[test]
fn peer_add_sends_the_key_file_contents() {
    let dir = tempfile::tempdir().unwrap();
    let psk = key_file(dir.path(), "psk", &format!("{SECRET}\n\n"), 0o604);
    let d = FakeDaemon::start(vec![ok_line(change_result(&[&format!("{KEY} (alice)")]))]);
    let o = run_with_socket(
        &d.path,
        &[
            "peer",
            "add",
            KEY,
            "--allowed-ips",
            "10.0.0.2/32,fd00::2/128",
            "--preshared-key-file",
            psk.to_str().unwrap(),
            "--name",
            "alice",
            "--save",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), format!("peer added: {KEY} (alice)\n"));
    assert!(stderr(&o).contains("readable by group or others (mode 0604)"));
    let req = request(&d.requests()[0]);
    assert_eq!(req["method"], json!("peer.add"));
    assert_eq!(
        req["params"],
        json!({
            "public_key": KEY,
            "allowed_ips": ["10.0.0.2/32", "fd00::2/128"],
            "preshared_key": SECRET,
            "name": "alice",
            "save": true
        })
    );
}

#[test]
fn peer_update_sends_only_what_changes() {
    let d = FakeDaemon::start(vec![
        ok_line(change_result(&[])),
        ok_line(change_result(&[])),
    ]);
    let o = run_with_socket(
        &d.path,
        &[
            "peer",
            "update",
            "alice",
            "--no-endpoint",
            "--no-preshared-key",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "nothing changed\n");
    let o = run_with_socket(
        &d.path,
        &[
            "peer",
            "update",
            "alice",
            "--persistent-keepalive",
            "0",
            "--json",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let printed: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(printed, change_result(&[]));
    let reqs = d.requests();
    assert_eq!(
        request(&reqs[0])["params"],
        json!({"peer": "alice", "endpoint": "", "preshared_key": "", "save": false})
    );
    assert_eq!(
        request(&reqs[1])["params"],
        json!({"peer": "alice", "persistent_keepalive": 0, "save": false})
    );
}

#[test]
fn interface_set_reads_the_private_key_file() {
    let dir = tempfile::tempdir().unwrap();
    let key = key_file(dir.path(), "private", &format!("{SECRET}\n"), 0o600);
    let d = FakeDaemon::start(vec![ok_line(json!({
        "interface": ["private key changed (public key A -> B)", "mtu 1420 -> 1380"],
        "peers_added": [], "peers_removed": [], "peers_changed": [], "saved": true
    }))]);
    let o = run_with_socket(
        &d.path,
        &[
            "interface",
            "set",
            "--private-key-file",
            key.to_str().unwrap(),
            "--mtu",
            "1380",
            "--save",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(o.stderr.is_empty(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "interface: private key changed (public key A -> B)\ninterface: mtu 1420 -> 1380\n\
         configuration file saved\n"
    );
    let req = request(&d.requests()[0]);
    assert_eq!(
        req["params"],
        json!({"private_key": SECRET, "mtu": 1380, "save": true})
    );
}

#[test]
fn a_slow_change_is_waited_for_but_a_slow_show_is_not() {
    // vpnd gives a change up to 20 s and answers then; vpnctl must not call it a timeout at
    // 5 s. Reads keep the short timeout.
    let ok = json!({"jsonrpc": "2.0", "id": 1, "result": {
        "interface": [], "peers_added": [], "peers_removed": [], "peers_changed": []
    }})
    .to_string();
    let d = FakeDaemon::start(vec![
        Reply::Late(Duration::from_secs(6), ok.clone()),
        Reply::Late(Duration::from_secs(6), ok),
    ]);
    let started = Instant::now();
    let o = run_with_socket(&d.path, &["reload"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(started.elapsed() >= Duration::from_secs(6));
    let o = run_with_socket(&d.path, &["show", "--json"]);
    assert_ne!(o.status.code(), Some(0));
    assert!(stderr(&o).contains("time"), "{}", stderr(&o));
    d.requests();
}

#[test]
fn refused_reload_prints_every_reason() {
    let d = FakeDaemon::start(vec![Reply::Line(
        json!({"jsonrpc": "2.0", "id": 1, "error": {
            "code": -32000,
            "message": "f.yaml: interface.mtu: bad; f.yaml: peers[0].public_key: bad",
            "data": ["f.yaml: interface.mtu: bad", "f.yaml: peers[0].public_key: bad"]
        }})
        .to_string(),
    )]);
    let o = run_with_socket(&d.path, &["reload"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(o.stdout.is_empty());
    assert_eq!(
        stderr(&o),
        "vpnctl: f.yaml: interface.mtu: bad\nvpnctl: f.yaml: peers[0].public_key: bad\n"
    );
    assert_eq!(
        d.requests(),
        ["{\"jsonrpc\":\"2.0\",\"method\":\"reload\",\"id\":1}\n"]
    );
}

#[test]
fn check_sends_an_absolute_path_and_reports() {
    let dir = tempfile::tempdir().unwrap();
    let d = FakeDaemon::start(vec![
        ok_line(json!({"valid": true, "errors": [], "warnings": ["w1"]})),
        ok_line(json!({"valid": false, "errors": ["e1", "e2"], "warnings": []})),
        ok_line(json!({"valid": false, "errors": ["e1"], "warnings": []})),
    ]);
    let o = vpnctl(&["--socket", d.path.to_str().unwrap(), "check", "rel.yaml"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "rel.yaml: configuration is valid\n");
    assert_eq!(stderr(&o), "vpnctl: warning: w1\n");
    let o = run_with_socket(&d.path, &["check", "/x.yaml"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(o.stdout.is_empty());
    assert_eq!(stderr(&o), "vpnctl: e1\nvpnctl: e2\n");
    let o = run_with_socket(&d.path, &["check", "/x.yaml", "--json"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(o.stderr.is_empty(), "{}", stderr(&o));
    let printed: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(printed["errors"], json!(["e1"]));
    let reqs = d.requests();
    let abs = dir.path().join("rel.yaml");
    assert_eq!(
        request(&reqs[0])["params"],
        json!({"path": abs.to_str().unwrap()})
    );
}

#[test]
fn check_without_a_daemon_suggests_vpnd_check() {
    let dir = tempfile::tempdir().unwrap();
    let o = run_with_socket(&dir.path().join("none.sock"), &["check", "/etc/x.yaml"]);
    assert_eq!(o.status.code(), Some(3));
    let err = stderr(&o);
    assert!(err.contains("cannot reach vpnd"), "{err}");
    assert!(
        err.ends_with("run `vpnd --check --config /etc/x.yaml`\n"),
        "{err}"
    );
}

#[test]
fn list_show_and_stats_render_results() {
    let show = show_result();
    let alice = show["peers"][1].clone();
    let mut peer = alice.clone();
    peer["restarts"] = json!(4);
    let d = FakeDaemon::start(vec![
        ok_line(show["peers"].clone()),
        ok_line(json!([])),
        ok_line(peer.clone()),
        ok_line(json!({"drops": {"replay": 1}, "handshake_queue": 0, "under_load": false})),
        ok_line(json!({"drops": 5})),
    ]);
    let o = run_with_socket(&d.path, &["peer", "list"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert_eq!(out.lines().count(), 3, "{out}");
    assert!(out.lines().nth(1).unwrap().starts_with(KEY), "{out}");
    let o = run_with_socket(&d.path, &["peer", "list"]);
    assert_eq!(stdout(&o), "no peers\n");
    let o = run_with_socket(&d.path, &["peer", "show", "alice"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).starts_with(&format!("peer: {KEY} (alice)\n")));
    assert!(stdout(&o).ends_with("  restarts: 4\n"), "{}", stdout(&o));
    let o = run_with_socket(&d.path, &["stats"]);
    assert_eq!(
        stdout(&o),
        "handshake queue: 0\nunder load: no\ndropped packets:\n  replay: 1\n"
    );
    let o = run_with_socket(&d.path, &["stats"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).starts_with("vpnctl: bad response from vpnd: malformed stats result"),
        "{}",
        stderr(&o)
    );
    let reqs = d.requests();
    assert_eq!(request(&reqs[2])["params"], json!({"peer": "alice"}));
    assert_eq!(request(&reqs[3])["method"], json!("stats"));
}
