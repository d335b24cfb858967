//! The control socket's permissions and its survival of bad changes (issue 9, defects 3 and 4).
//!
//! * With `control.group`, the socket is 0660 and owned by that group whatever the umask, its
//!   directory (created by vpnd) is 0755, and a non-root member of the group can use `vpnctl`
//!   while a non-root non-member cannot.
//! * A `control.group` that does not exist fails `vpnd --check` and a reload names the field,
//!   and the refused reload leaves the old socket serving.
//! * A start-up failure inside an actor is one clear line, without ractor's "Actor panicked
//!   during startup" wrapping.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use e2e::vpnd::{run_vpnd, write_config_file, Vpnd, VpndConfig};
use e2e::{cargo_binary, require_root_with, TestGuard, WgKeys};

/// A throwaway system group with one member user and one non-member user, removed on drop
/// (also when the test fails).
struct Accounts {
    group: String,
    member: String,
    outsider: String,
}

impl Accounts {
    fn create() -> Accounts {
        let tag = std::process::id() % 100_000;
        let a = Accounts {
            group: format!("vpntg{tag}"),
            member: format!("vpntm{tag}"),
            outsider: format!("vpnto{tag}"),
        };
        a.remove(); // Leftovers of a killed run with the same PID.
        run_ok(Command::new("groupadd").args(["--system", &a.group]));
        run_ok(Command::new("useradd").args([
            "--system",
            "--no-create-home",
            "--shell",
            "/usr/sbin/nologin",
            "--groups",
            &a.group,
            &a.member,
        ]));
        run_ok(Command::new("useradd").args([
            "--system",
            "--no-create-home",
            "--shell",
            "/usr/sbin/nologin",
            &a.outsider,
        ]));
        a
    }

    fn remove(&self) {
        for user in [&self.member, &self.outsider] {
            let _ = Command::new("userdel").arg(user).output();
        }
        let _ = Command::new("groupdel").arg(&self.group).output();
    }

    /// `vpnctl --socket SOCKET show --json` as `user`, with that user's groups.
    fn vpnctl_show_as(&self, user: &str, socket: &Path) -> Output {
        Command::new("setpriv")
            .args([
                &format!("--reuid={user}"),
                &format!("--regid={user}"),
                "--init-groups",
                "--",
            ])
            .arg(cargo_binary("vpnctl"))
            .arg("--socket")
            .arg(socket)
            .args(["show", "--json"])
            .output()
            .expect("setpriv runs")
    }
}

impl Drop for Accounts {
    fn drop(&mut self) {
        self.remove();
    }
}

fn run_ok(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn gid_of(group: &str) -> u32 {
    let out = Command::new("getent")
        .args(["group", group])
        .output()
        .expect("getent");
    String::from_utf8_lossy(&out.stdout)
        .split(':')
        .nth(2)
        .and_then(|g| g.trim().parse().ok())
        .unwrap_or_else(|| panic!("no gid for {group}"))
}

#[test]
fn group_members_can_use_the_socket_whatever_the_umask() {
    if !require_root_with(&["setpriv", "groupadd", "useradd", "getent"]) {
        return;
    }
    let guard = TestGuard::new("group_members_can_use_the_socket_whatever_the_umask");
    let ns = guard.netns();
    let accounts = Accounts::create();
    // Service managers and shells run vpnd under umask 022, which used to strip the group's
    // write bit (needed to connect) from the socket: srw-r-----.
    // SAFETY: umask only changes this process's file-creation mask; vpnd inherits it.
    unsafe { libc::umask(0o022) };

    // A socket directory that does not exist yet, below a directory everyone can traverse.
    let base = tempfile::Builder::new()
        .prefix("vpnt-sockdir-")
        .tempdir()
        .expect("temporary directory");
    std::fs::set_permissions(base.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let dir = base.path().join("run");
    let socket = dir.join("vpnsock0.sock");

    let mut config = VpndConfig::new("vpnsock0", &WgKeys::generate()).addresses(&["10.77.0.1/24"]);
    config.socket = Some(socket.clone());
    config.control_group = Some(accounts.group.clone());
    let vpnd = Vpnd::start(&ns, &config);

    let meta = std::fs::metadata(&socket).expect("socket exists");
    assert_eq!(meta.mode() & 0o777, 0o660, "socket mode");
    assert_eq!(meta.gid(), gid_of(&accounts.group), "socket group");
    let dmeta = std::fs::metadata(&dir).expect("socket directory exists");
    assert_eq!(dmeta.mode() & 0o777, 0o755, "socket directory mode");

    let member = accounts.vpnctl_show_as(&accounts.member, &socket);
    assert!(
        member.status.success(),
        "a group member cannot use vpnctl: {}",
        String::from_utf8_lossy(&member.stderr)
    );
    assert!(String::from_utf8_lossy(&member.stdout).contains("\"vpnsock0\""));
    let outsider = accounts.vpnctl_show_as(&accounts.outsider, &socket);
    assert!(
        !outsider.status.success(),
        "a non-member used the socket: {}",
        String::from_utf8_lossy(&outsider.stdout)
    );

    // Unknown group: --check names the field; a reload is refused and the socket keeps serving.
    config.control_group = Some("nosuchgroup".into());
    let bad = config.to_yaml();
    let check_dir = tempfile::tempdir().unwrap();
    let bad_path = write_config_file(check_dir.path(), "bad.yaml", &bad);
    let check = run_vpnd(
        &ns,
        [
            "--check".as_ref(),
            "--config".as_ref(),
            bad_path.as_os_str(),
        ],
        Duration::from_secs(10),
    );
    let stderr = String::from_utf8_lossy(&check.stderr);
    assert_eq!(check.status.code(), Some(1), "--check: {stderr}");
    assert!(
        stderr.contains("control.group: no such group \"nosuchgroup\""),
        "--check: {stderr}"
    );

    std::fs::write(vpnd.config_path(), &bad).unwrap();
    let reload = vpnd.vpnctl(["reload"]).output().unwrap();
    let rerr = String::from_utf8_lossy(&reload.stderr);
    assert_eq!(reload.status.code(), Some(1), "reload: {rerr}");
    assert!(
        rerr.contains("control.group") && rerr.contains("nosuchgroup"),
        "reload: {rerr}"
    );
    vpnd.try_show()
        .expect("the control socket still serves after a refused reload");
    let meta = std::fs::metadata(&socket).expect("socket still exists");
    assert_eq!(meta.mode() & 0o777, 0o660);
    drop(vpnd);
}

#[test]
fn startup_failures_are_one_clear_line() {
    if !require_root_with(&[]) {
        return;
    }
    let guard = TestGuard::new("startup_failures_are_one_clear_line");
    let ns = guard.netns();
    let dir = tempfile::tempdir().unwrap();
    // The socket's directory cannot be created: its parent is a regular file.
    let blocker = dir.path().join("not-a-dir");
    std::fs::write(&blocker, b"").unwrap();
    let mut config = VpndConfig::new("vpnsock1", &WgKeys::generate());
    config.socket = Some(blocker.join("ctl.sock"));
    let path = write_config_file(dir.path(), "vpnd.yaml", &config.to_yaml());
    let out = run_vpnd(
        &ns,
        ["--config".as_ref(), path.as_os_str()],
        Duration::from_secs(20),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        !stderr.contains("Actor panicked"),
        "start-up error wrapped in actor-panic text: {stderr}"
    );
    assert!(
        stderr.contains("control socket") && stderr.contains("not-a-dir"),
        "the error names the socket: {stderr}"
    );
}
