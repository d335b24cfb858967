//! `vpnctl import`: wg-quick files converted to vpnd's YAML, through the real binaries.
//!
//! * Realistic wg-quick files (a client with one peer and a DNS line, a road-warrior server
//!   with several peers, an IPv6-only tunnel) convert, and `vpnd --check` accepts the result;
//!   the file written with `-o` has mode 0600 and holds what stdout shows; an existing output
//!   is kept unless `--force`.
//! * A file with `PostUp` is refused: exit 1, the message names the file, line and key, and no
//!   output file is created.
//! * A converted file runs: vpnd started from it in one namespace reaches a wireguard-go peer
//!   (configured with `wg setconf`) in another, both ways, over IPv4 and IPv6, with the
//!   preshared key and keepalive the wg-quick file gave.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use e2e::vpnd::{wg_setconf_text, PeerConfig, Vpnd};
use e2e::{
    cargo_binary, ping, ping_until, require_wireguard_go, run_with_timeout, TestGuard, VethPair,
    WgKeys, WireguardGo,
};

const RUN_TIMEOUT: Duration = Duration::from_secs(10);
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

fn run(mut cmd: Command) -> Output {
    run_with_timeout(&mut cmd, RUN_TIMEOUT).unwrap_or_else(|e| panic!("{e}"))
}

fn vpnctl_import(args: &[&str]) -> Output {
    let mut cmd = Command::new(cargo_binary("vpnctl"));
    cmd.arg("import").args(args);
    run(cmd)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `vpnd --check --config path` must pass.
fn assert_vpnd_accepts(path: &Path) {
    let mut cmd = Command::new(cargo_binary("vpnd"));
    cmd.arg("--check").arg("--config").arg(path);
    let out = run(cmd);
    assert!(
        out.status.success(),
        "vpnd --check refused the converted {}:\n{}\n{}",
        path.display(),
        text(&out.stderr),
        fs::read_to_string(path).unwrap_or_default()
    );
}

/// A client of a commercial-style VPN: one peer, full tunnel, DNS.
fn client_conf(me: &WgKeys, server: &WgKeys, psk: &str) -> String {
    format!(
        "[Interface]\n\
         PrivateKey = {}\n\
         Address = 10.66.0.2/32, fd66::2/128\n\
         DNS = 10.66.0.1, fd66::1\n\
         MTU = 1420\n\
         \n\
         [Peer]\n\
         PublicKey = {}\n\
         PresharedKey = {psk}\n\
         AllowedIPs = 0.0.0.0/0, ::/0\n\
         Endpoint = vpn.example.com:51820\n\
         PersistentKeepalive = 25\n",
        me.private, server.public
    )
}

/// A road-warrior server as its setup scripts write it: one peer per client, comments naming
/// them.
fn server_conf(me: &WgKeys, clients: &[WgKeys]) -> String {
    let mut s = format!(
        "[Interface]\n\
         Address = 10.8.0.1/24\n\
         Address = fd08::1/64\n\
         ListenPort = 51820\n\
         PrivateKey = {}\n\
         SaveConfig = false\n",
        me.private
    );
    for (i, c) in clients.iter().enumerate() {
        let n = i + 2;
        s.push_str(&format!(
            "\n### Client client{n}\n[Peer]\nPublicKey = {}\nAllowedIPs = 10.8.0.{n}/32, fd08::{n}/128\n",
            c.public
        ));
    }
    s
}

/// An IPv6-only tunnel over IPv6, keys in lower case as some tools write them.
fn ipv6_conf(me: &WgKeys, peer: &WgKeys) -> String {
    format!(
        "[interface]\n\
         privatekey = {}\n\
         address = fd42:42:42::2/64\n\
         listenport = 51000\n\
         [peer]\n\
         publickey = {}\n\
         allowedips = fd42:42:42::/64\n\
         endpoint = [2001:db8::1]:51820\n\
         persistentkeepalive = off\n",
        me.private, peer.public
    )
}

#[test]
fn realistic_wg_quick_files_convert_to_configurations_vpnd_accepts() {
    let dir = tempfile::Builder::new()
        .prefix("vpnt-import-")
        .tempdir()
        .expect("temporary directory");
    let keys: Vec<WgKeys> = (0..5).map(|_| WgKeys::generate()).collect();
    let psk = WgKeys::genpsk();
    let files = [
        ("client.conf", client_conf(&keys[0], &keys[1], &psk), 2),
        ("wg0.conf", server_conf(&keys[0], &keys[1..]), 0),
        ("v6only.conf", ipv6_conf(&keys[0], &keys[1]), 0),
    ];
    for (name, conf, warnings) in &files {
        let input = dir.path().join(name);
        fs::write(&input, conf).unwrap();
        let stem = name.trim_end_matches(".conf");
        let out_path = dir.path().join(format!("{stem}.yaml"));
        let out = vpnctl_import(&[input.to_str().unwrap(), "-o", out_path.to_str().unwrap()]);
        let stderr = text(&out.stderr);
        assert!(out.status.success(), "import {name}: {stderr}");
        assert_eq!(
            stderr.matches("warning:").count(),
            *warnings,
            "warnings for {name}: {stderr}"
        );
        let mode = fs::metadata(&out_path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{name}: the output holds the private key");
        let yaml = fs::read_to_string(&out_path).unwrap();
        assert!(yaml.contains(&format!("  name: \"{stem}\"\n")), "{yaml}");
        assert!(yaml.contains(&keys[0].private), "key kept as written");
        assert_vpnd_accepts(&out_path);

        // Stdout gives the same YAML.
        let out = vpnctl_import(&[input.to_str().unwrap()]);
        assert!(out.status.success());
        assert_eq!(text(&out.stdout), yaml);
    }

    let client = fs::read_to_string(dir.path().join("client.yaml")).unwrap();
    assert!(client.contains(&format!("preshared_key: \"{psk}\"")));
    assert!(client.contains("endpoint: \"vpn.example.com:51820\""));
    assert!(client.contains("persistent_keepalive: 25"));
    assert!(!client.contains("10.66.0.1\""), "DNS is not converted");
    let server = fs::read_to_string(dir.path().join("wg0.yaml")).unwrap();
    assert_eq!(server.matches("  - public_key: ").count(), 4);
    for k in &keys[1..] {
        assert!(server.contains(&k.public));
    }
    let v6 = fs::read_to_string(dir.path().join("v6only.yaml")).unwrap();
    assert!(v6.contains("endpoint: \"[2001:db8::1]:51820\""), "{v6}");

    // An existing output is kept unless --force.
    let input = dir.path().join("wg0.conf");
    let existing = dir.path().join("client.yaml");
    let out = vpnctl_import(&[input.to_str().unwrap(), "-o", existing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("already exists; give --force"));
    assert_eq!(fs::read_to_string(&existing).unwrap(), client);
    let out = vpnctl_import(&[
        input.to_str().unwrap(),
        "-o",
        existing.to_str().unwrap(),
        "--force",
        "--name",
        "vpn7",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let replaced = fs::read_to_string(&existing).unwrap();
    assert!(replaced.contains("  name: \"vpn7\"\n"));
    assert_vpnd_accepts(&existing);
}

#[test]
fn a_post_up_line_is_refused_with_file_line_and_key() {
    let dir = tempfile::Builder::new()
        .prefix("vpnt-import-")
        .tempdir()
        .expect("temporary directory");
    let (me, peer) = (WgKeys::generate(), WgKeys::generate());
    let conf = format!(
        "[Interface]\n\
         Address = 10.8.0.1/24\n\
         ListenPort = 51820\n\
         PrivateKey = {}\n\
         PostUp = iptables -A FORWARD -i %i -j ACCEPT; iptables -t nat -A POSTROUTING -o eth0 -j MASQUERADE\n\
         PostDown = iptables -D FORWARD -i %i -j ACCEPT\n\
         \n\
         [Peer]\n\
         PublicKey = {}\n\
         AllowedIPs = 10.8.0.2/32\n",
        me.private, peer.public
    );
    let input = dir.path().join("wg0.conf");
    fs::write(&input, conf).unwrap();
    let out_path = dir.path().join("wg0.yaml");
    let out = vpnctl_import(&[input.to_str().unwrap(), "-o", out_path.to_str().unwrap()]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let file = input.display();
    assert!(
        stderr.contains(&format!("vpnctl: {file}:5: PostUp: not supported by vpnd")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "vpnctl: {file}:6: PostDown: not supported by vpnd"
        )),
        "{stderr}"
    );
    assert!(stderr.contains("ExecStartPost="), "says what to do instead");
    assert!(!out_path.exists(), "nothing written for a refused file");
    assert!(out.stdout.is_empty());
}

#[test]
fn a_converted_file_tunnels_to_wireguard_go() {
    if !require_wireguard_go() {
        return;
    }
    let guard = TestGuard::new("a_converted_file_tunnels_to_wireguard_go");
    let a = guard.netns();
    let b = guard.netns();
    let _veth = VethPair::link(
        &a,
        &b,
        &["10.99.0.1/24", "fd99::1/64"],
        &["10.99.0.2/24", "fd99::2/64"],
    );
    let (ka, kb) = (WgKeys::generate(), WgKeys::generate());
    let psk = WgKeys::genpsk();

    // wireguard-go in B knows vpnd's key but not its endpoint: vpnd must initiate, with what
    // the converted file says.
    let wg = WireguardGo::start(&b, "wg0");
    let peer_a = PeerConfig::new(&ka.public, &["10.10.0.1/32", "fd10::1/128"]).preshared_key(&psk);
    wg.wg_setconf(&wg_setconf_text(&kb, 51821, &[peer_a]));
    wg.configure_ip(&["10.10.0.2/24", "fd10::2/64"], 1420);

    let dir = tempfile::Builder::new()
        .prefix("vpnt-import-")
        .tempdir()
        .expect("temporary directory");
    let input = dir.path().join("wgimp0.conf");
    fs::write(
        &input,
        format!(
            "# office tunnel\n\
             [Interface]\n\
             PrivateKey = {}\n\
             Address = 10.10.0.1/24, fd10::1/64\n\
             ListenPort = 51820\n\
             DNS = 10.10.0.53\n\
             MTU = 1420\n\
             \n\
             [Peer]\n\
             # wireguard-go\n\
             PublicKey = {}\n\
             PresharedKey = {psk}\n\
             AllowedIPs = 10.10.0.2/32\n\
             AllowedIPs = fd10::2/128\n\
             Endpoint = 10.99.0.2:51821\n\
             PersistentKeepalive = 25\n",
            ka.private, kb.public
        ),
    )
    .unwrap();
    let out = vpnctl_import(&[input.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let yaml = text(&out.stdout);

    let vpnd = Vpnd::start_yaml(&a, "wgimp0", &yaml);
    assert!(
        ping_until(&a, "10.10.0.2", HANDSHAKE_TIMEOUT),
        "vpnd from the converted file could not reach wireguard-go"
    );
    for (from, dst) in [(&a, "fd10::2"), (&b, "10.10.0.1"), (&b, "fd10::1")] {
        assert!(ping(from, dst, 3), "ping {dst} from {}", from.name());
    }
    let peer = vpnd.peer(&kb.public);
    assert_eq!(peer.persistent_keepalive, Some(25));
    assert_eq!(peer.endpoint.as_deref(), Some("10.99.0.2:51821"));
    let show = vpnd.show();
    assert_eq!(show.interface.name, "wgimp0");
    assert_eq!(show.interface.listen_port, 51820);
    let theirs = wg.dump();
    let theirs = theirs.peer(&ka.public).expect("wireguard-go has vpnd");
    assert!(theirs.latest_handshake > 0, "{theirs:?}");
}
