//! Configuration validation, through the real binary.
//!
//! For each kind of mistake (bad base64 key, key of the wrong length, bad
//! CIDR, duplicate public key, an allowed IP claimed by two peers, our own
//! public key as a peer, an unknown field):
//! * `vpnd --config FILE` exits non-zero, with a message on stderr that
//!   names the field and the reason, and leaves no interface behind in its
//!   namespace;
//! * `vpnd --check --config FILE` exits 1 with the same message.
//!
//! The valid file they are all derived from passes `--check` with 0.

use std::ffi::OsStr;
use std::time::Duration;

use e2e::vpnd::{link_names, run_vpnd, write_config_file, PeerConfig, VpndConfig};
use e2e::{require_root_with, TestGuard, WgKeys};

const RUN_TIMEOUT: Duration = Duration::from_secs(10);

struct Case {
    what: &'static str,
    yaml: String,
    /// Substrings stderr must contain: the field path and the reason.
    expect: [&'static str; 2],
}

#[test]
fn invalid_configurations_are_refused_with_the_field_and_reason() {
    if !require_root_with(&["wg"]) {
        return;
    }
    let guard = TestGuard::new("invalid_configurations_are_refused_with_the_field_and_reason");
    let ns = guard.netns();
    let dir = tempfile::Builder::new()
        .prefix("vpnt-badcfg-")
        .tempdir()
        .expect("temporary directory");
    let socket = dir.path().join("control.sock");

    let (me, p1, p2) = (WgKeys::generate(), WgKeys::generate(), WgKeys::generate());
    let config = |peers: Vec<PeerConfig>| {
        let mut c = VpndConfig::new("vpnbad0", &me)
            .listen_port(51820)
            .addresses(&["10.10.0.1/24", "fd10::1/64"]);
        c.socket = Some(socket.clone());
        c.peers = peers;
        c
    };
    let alice = || PeerConfig::new(&p1.public, &["10.10.0.2/32"]).name("alice");
    let bob = || PeerConfig::new(&p2.public, &["10.10.0.3/32"]).name("bob");
    let valid = config(vec![alice(), bob()]).to_yaml();

    let cases = [
        Case {
            what: "bad base64 key",
            yaml: config(vec![
                alice(),
                PeerConfig::new("not*base64*at*all!", &["10.10.0.3/32"]),
            ])
            .to_yaml(),
            expect: ["peers[1].public_key", "not valid base64"],
        },
        Case {
            what: "key of the wrong length",
            // 16 bytes of zeros, valid base64.
            yaml: config(vec![PeerConfig::new(
                "AAAAAAAAAAAAAAAAAAAAAA==",
                &["10.10.0.2/32"],
            )])
            .to_yaml(),
            expect: ["peers[0].public_key", "32 bytes"],
        },
        Case {
            what: "bad CIDR in allowed_ips",
            yaml: config(vec![
                alice(),
                PeerConfig::new(&p2.public, &["10.10.0.300/32"]),
            ])
            .to_yaml(),
            expect: ["peers[1].allowed_ips[0]", "invalid CIDR"],
        },
        Case {
            what: "bad CIDR in addresses",
            yaml: {
                let mut c = config(vec![alice()]);
                c.addresses = vec!["10.10.0.1/33".to_owned()];
                c.to_yaml()
            },
            expect: ["interface.addresses[0]", "invalid CIDR"],
        },
        Case {
            what: "duplicate public key",
            yaml: config(vec![
                alice(),
                PeerConfig::new(&p1.public, &["10.10.0.3/32"]).name("mallory"),
            ])
            .to_yaml(),
            expect: ["peers[1].public_key", "the same public key as peers[0]"],
        },
        Case {
            what: "allowed IP claimed by two peers",
            yaml: config(vec![
                alice(),
                PeerConfig::new(&p2.public, &["10.10.0.3/32", "10.10.0.2/32"]).name("bob"),
            ])
            .to_yaml(),
            expect: [
                "peers[1].allowed_ips[1]",
                "10.10.0.2/32 is already an allowed IP of peers[0] (alice)",
            ],
        },
        Case {
            what: "own public key as a peer",
            yaml: config(vec![
                alice(),
                PeerConfig::new(&me.public, &["10.10.0.3/32"]),
            ])
            .to_yaml(),
            expect: ["peers[1].public_key", "own public key"],
        },
        Case {
            what: "unknown field",
            yaml: valid.replace("  listen_port: 51820\n", "  listenport: 51820\n"),
            expect: ["listenport", "unknown field"],
        },
    ];

    let links_before = link_names(&ns);
    for (i, case) in cases.iter().enumerate() {
        assert_ne!(
            case.yaml, valid,
            "{}: the case must change the file",
            case.what
        );
        let path = write_config_file(dir.path(), &format!("bad{i}.yaml"), &case.yaml);
        let context = || format!("case {:?}, file:\n{}", case.what, case.yaml);

        let out = run_vpnd(&ns, [OsStr::new("--config"), path.as_os_str()], RUN_TIMEOUT);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success(),
            "vpnd --config accepted a bad file ({})\n{stderr}",
            context()
        );
        for needle in case.expect {
            assert!(
                stderr.contains(needle),
                "vpnd --config: stderr must name {needle:?}; got:\n{stderr}\n{}",
                context()
            );
        }
        assert!(
            stderr.contains(&*path.to_string_lossy()),
            "the message names the file: {stderr}"
        );
        assert_eq!(
            link_names(&ns),
            links_before,
            "vpnd left an interface behind ({})",
            context()
        );
        assert!(!socket.exists(), "no control socket for a refused file");

        let out = run_vpnd(
            &ns,
            [
                OsStr::new("--check"),
                OsStr::new("--config"),
                path.as_os_str(),
            ],
            RUN_TIMEOUT,
        );
        let check_err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(1),
            "vpnd --check must exit 1 ({})\n{check_err}",
            context()
        );
        for needle in case.expect {
            assert!(
                check_err.contains(needle),
                "vpnd --check: stderr must name {needle:?}; got:\n{check_err}\n{}",
                context()
            );
        }
    }

    let path = write_config_file(dir.path(), "valid.yaml", &valid);
    let out = run_vpnd(
        &ns,
        [
            OsStr::new("--check"),
            OsStr::new("--config"),
            path.as_os_str(),
        ],
        RUN_TIMEOUT,
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "the valid file must pass --check:\n{valid}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(link_names(&ns), links_before, "--check creates nothing");
}

/// Issue 9: two mistakes the parsers report in their own terms get a message saying what to do:
/// a wg-quick file given to `--config` (pointing at `vpnctl import`), and an IPv6 endpoint
/// without quotes (YAML reads `[fd77::1]:51820` as a list and fails a line away).
#[test]
fn a_wg_quick_file_and_an_unquoted_endpoint_are_explained() {
    if !require_root_with(&[]) {
        return;
    }
    let guard = TestGuard::new("a_wg_quick_file_and_an_unquoted_endpoint_are_explained");
    let ns = guard.netns();
    let dir = tempfile::Builder::new()
        .prefix("vpnt-badcfg-")
        .tempdir()
        .expect("temporary directory");
    let (me, peer) = (WgKeys::generate(), WgKeys::generate());
    let wg = format!(
        "[Interface]\nPrivateKey = {}\nListenPort = 51820\nAddress = 10.10.0.1/24\n\n[Peer]\n\
         PublicKey = {}\nAllowedIPs = 10.10.0.2/32\nEndpoint = 192.0.2.1:51820\n",
        me.private, peer.public
    );
    let wg_path = write_config_file(dir.path(), "wg0.conf", &wg);
    let mut unquoted = VpndConfig::new("vpnbad1", &me).listen_port(51820);
    unquoted.socket = Some(dir.path().join("control.sock"));
    unquoted.peers = vec![PeerConfig::new(&peer.public, &["10.10.0.2/32"]).endpoint("ENDPOINT")];
    let yaml = unquoted
        .to_yaml()
        .replace("\"ENDPOINT\"", "[fd77::1]:51820");
    assert!(yaml.contains("endpoint: [fd77::1]:51820\n"), "{yaml}");
    let yaml_path = write_config_file(dir.path(), "vpn0.yaml", &yaml);

    let cases = [
        (
            &wg_path,
            format!(
                "this looks like a wg-quick file ([Interface], PrivateKey = ...), not a vpnd \
                 configuration; convert it with `vpnctl import {} -o {}`",
                wg_path.display(),
                dir.path().join("wg0.yaml").display()
            ),
        ),
        (
            &yaml_path,
            "quote it: `endpoint: \"[fd77::1]:51820\"` (unquoted, YAML reads `[...]` as a list)"
                .to_string(),
        ),
    ];
    for (path, expect) in &cases {
        for check in [false, true] {
            let mut args = vec![OsStr::new("--config"), path.as_os_str()];
            if check {
                args.insert(0, OsStr::new("--check"));
            }
            let out = run_vpnd(&ns, args, RUN_TIMEOUT);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "check {check}: {stderr}");
            assert!(
                stderr.contains(expect.as_str()),
                "check {check}: no {expect:?} in:\n{stderr}"
            );
        }
    }
}
