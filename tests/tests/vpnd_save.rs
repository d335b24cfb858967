//! `--save` writes the configuration file the way an operator expects (issues 9 and 15):
//!
//! * a TOML file stays TOML, and the next reload and start read it (it used to be rewritten as
//!   YAML, which the next reload refused);
//! * a file that comes to hold a private key inline is made 0600 whatever its mode was, and the
//!   key file reference stays when the key did not change (it used to be inlined into a 0644
//!   file);
//! * a save that fails (a full disk) leaves no temporary file behind.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use e2e::vpnd::{run_vpnd, write_config_file, Vpnd};
use e2e::{require_root_with, TestGuard, WgKeys};

const TIMEOUT: Duration = Duration::from_secs(20);

fn p(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Runs `vpnctl args…` against `vpnd`, asserting success; returns stdout.
fn vpnctl_ok(vpnd: &Vpnd, args: &[&str]) -> String {
    let out = vpnd.vpnctl(args).output().expect("vpnctl runs");
    assert!(
        out.status.success(),
        "vpnctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `vpnd --check` on `path` succeeds; returns its stderr (where warnings go).
fn check_ok(ns: &e2e::Netns, path: &Path) -> String {
    let out = run_vpnd(ns, ["--check", "--config", p(path)], TIMEOUT);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "vpnd --check {}: {stderr}\n{}",
        path.display(),
        std::fs::read_to_string(path).unwrap_or_default()
    );
    stderr
}

#[test]
fn save_keeps_a_toml_file_toml() {
    if !require_root_with(&[]) {
        return;
    }
    let guard = TestGuard::new("save_keeps_a_toml_file_toml");
    let ns = guard.netns();
    let (ka, kb, kc) = (WgKeys::generate(), WgKeys::generate(), WgKeys::generate());
    let dir = tempfile::Builder::new()
        .prefix("vpnt-save-")
        .tempdir()
        .unwrap();
    let socket = dir.path().join("control.sock");
    let key_file = write_config_file(dir.path(), "vpn.key", &format!("{}\n", ka.private));
    let text = format!(
        "# hand-written\n[interface]\nname = \"vpnsave0\"\nprivate_key_file = \"{}\"\n\
         listen_port = 51850\naddresses = [\"10.12.0.1/24\"]\n\n[control]\nsocket = \"{}\"\n\n\
         [[peers]]\nname = \"bob\"\npublic_key = \"{}\"\nallowed_ips = [\"10.12.0.2/32\"]\n",
        p(&key_file),
        p(&socket),
        kb.public
    );
    let file = write_config_file(dir.path(), "vpn0.toml", &text);
    let vpnd = Vpnd::start_with_file(&ns, "vpnsave0", &socket, dir, &file);

    let out = vpnctl_ok(
        &vpnd,
        &[
            "peer",
            "add",
            &kc.public,
            "--allowed-ips",
            "10.12.0.3/32",
            "--name",
            "carol",
            "--save",
        ],
    );
    assert!(out.contains("configuration file saved"), "{out}");
    let saved = std::fs::read_to_string(&file).unwrap();
    assert!(
        saved.contains("[interface]") && saved.contains("[[peers]]") && !saved.contains("peers:"),
        "the .toml file is no longer TOML:\n{saved}"
    );
    assert!(
        saved.contains(&format!("private_key_file = \"{}\"", p(&key_file))),
        "{saved}"
    );
    assert!(!saved.contains(&ka.private), "key inlined:\n{saved}");
    assert_eq!(mode(&file), 0o600, "the file keeps its mode");
    check_ok(&ns, &file);
    // The daemon itself reads it back: a reload of the saved file changes nothing.
    let out = vpnctl_ok(&vpnd, &["reload"]);
    assert!(!out.contains("refused"), "{out}");
    let show = vpnd.show();
    assert_eq!(show.peers.len(), 2, "{show:?}");
    assert!(show.peers.iter().any(|peer| peer.public_key == kc.public));
}

#[test]
fn saving_an_inline_private_key_makes_the_file_owner_only() {
    if !require_root_with(&[]) {
        return;
    }
    let guard = TestGuard::new("saving_an_inline_private_key_makes_the_file_owner_only");
    let ns = guard.netns();
    let (ka, kb, knew) = (WgKeys::generate(), WgKeys::generate(), WgKeys::generate());
    let dir = tempfile::Builder::new()
        .prefix("vpnt-save-")
        .tempdir()
        .unwrap();
    let socket = dir.path().join("control.sock");
    let key_file = write_config_file(dir.path(), "vpn.key", &format!("{}\n", ka.private));
    let text = format!(
        "interface:\n  name: vpnsave1\n  private_key_file: {}\n  listen_port: 51851\n  \
         addresses: [10.13.0.1/24]\ncontrol:\n  socket: {}\npeers:\n  - public_key: {}\n    \
         allowed_ips: [10.13.0.2/32]\n",
        p(&key_file),
        p(&socket),
        kb.public
    );
    let file = write_config_file(dir.path(), "vpn0.yaml", &text);
    // A configuration without secrets may be world-readable (the key is in its own file).
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert!(!check_ok(&ns, &file).contains("WARN"));
    let vpnd = Vpnd::start_with_file(&ns, "vpnsave1", &socket, dir, &file);

    // The same key again: the reference to its file stays, and so does the mode.
    vpnctl_ok(
        &vpnd,
        &["interface", "set", "--private-key", &ka.private, "--save"],
    );
    let saved = std::fs::read_to_string(&file).unwrap();
    assert!(
        saved.contains(&format!("private_key_file: \"{}\"", p(&key_file))),
        "{saved}"
    );
    assert!(!saved.contains(&ka.private), "key inlined:\n{saved}");
    assert_eq!(mode(&file), 0o644);

    // A new key goes inline, and the file becomes readable by its owner only.
    vpnctl_ok(
        &vpnd,
        &["interface", "set", "--private-key", &knew.private, "--save"],
    );
    let saved = std::fs::read_to_string(&file).unwrap();
    assert!(saved.contains(&knew.private), "{saved}");
    assert_eq!(
        mode(&file),
        0o600,
        "a file holding the private key must be 0600"
    );
    let stderr = check_ok(&ns, &file);
    assert!(!stderr.contains("WARN"), "vpnd --check warns: {stderr}");
    assert_eq!(vpnd.show().interface.public_key, knew.public);
}

/// Unmounts a tmpfs when dropped (even if the test fails).
struct Mount(std::path::PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn a_failed_save_leaves_no_temporary_file() {
    if !require_root_with(&["mount", "umount"]) {
        return;
    }
    let guard = TestGuard::new("a_failed_save_leaves_no_temporary_file");
    let ns = guard.netns();
    let (ka, kb, kc) = (WgKeys::generate(), WgKeys::generate(), WgKeys::generate());
    let dir = tempfile::Builder::new()
        .prefix("vpnt-save-")
        .tempdir()
        .unwrap();
    // The configuration lives on a small file system the test can fill.
    let small = dir.path().join("small");
    std::fs::create_dir(&small).unwrap();
    let status = Command::new("mount")
        .args([
            "-t",
            "tmpfs",
            "-o",
            "size=64k,mode=0700",
            "vpnt-save",
            p(&small),
        ])
        .status()
        .expect("mount runs");
    assert!(
        status.success(),
        "cannot mount a tmpfs on {}",
        small.display()
    );
    let socket = dir.path().join("control.sock");
    let text = format!(
        "interface:\n  name: vpnsave2\n  private_key: {}\n  listen_port: 51852\n  \
         addresses: [10.14.0.1/24]\ncontrol:\n  socket: {}\npeers:\n  - public_key: {}\n    \
         allowed_ips: [10.14.0.2/32]\n",
        ka.private,
        p(&socket),
        kb.public
    );
    let file = write_config_file(&small, "vpn0.yaml", &text);
    let vpnd = Vpnd::start_with_file(&ns, "vpnsave2", &socket, dir, &file);
    // Declared after the daemon: unmounted first.
    let _mount = Mount(small.clone());
    // Fill the file system (a bounded write: at most the tmpfs's size).
    let filler = small.join("filler");
    let _ = std::fs::write(&filler, vec![0u8; 128 * 1024]);

    let out = vpnd
        .vpnctl([
            "peer",
            "add",
            &kc.public,
            "--allowed-ips",
            "10.14.0.3/32",
            "--save",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "the save cannot succeed on a full disk"
    );
    assert!(
        stderr.contains("applied, but writing") && stderr.contains("vpn0.yaml"),
        "{stderr}"
    );
    let left: Vec<String> = std::fs::read_dir(&small)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "vpn0.yaml" && n != "filler")
        .collect();
    assert!(left.is_empty(), "left behind after a failed save: {left:?}");
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        text,
        "a failed save changed the file"
    );

    // With room again, the same save works.
    std::fs::remove_file(&filler).unwrap();
    vpnctl_ok(
        &vpnd,
        &[
            "peer",
            "update",
            &kc.public,
            "--persistent-keepalive",
            "25",
            "--save",
        ],
    );
    assert!(std::fs::read_to_string(&file).unwrap().contains(&kc.public));
    assert_eq!(mode(&file), 0o600);
}
