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
                if let Reply::Line(text) = reply {
                    let mut w = &conn;
                    w.write_all(format!("{text}\n").as_bytes()).unwrap();
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
                "persistent_keepalive": null
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
                "persistent_keepalive": 25
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
