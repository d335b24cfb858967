//! Runs a parsed command line: dispatch, output and exit status.
//!
//! Each subcommand writes its output to the given writer and returns a [`Failure`] on error;
//! [`run`] turns that into messages on stderr and an exit status. Commands that talk to the
//! daemon go through [`Client`]; each is one JSON-RPC call (see `docs/control-api.md`).
//!
//! With `--json`, a command prints the RPC `result` pretty-printed, exactly as the daemon sent
//! it (after checking that it has the expected shape).

use crate::cli::{
    ChangeArgs, CheckArgs, Cli, Command, CompletionsArgs, ImportArgs, InterfaceCommand,
    InterfaceSetArgs, JsonArgs, PeerAddArgs, PeerCommand, PeerRemoveArgs, PeerShowArgs,
    PeerUpdateArgs, ShowArgs,
};
use crate::client::{Client, ClientError, CHANGE_TIMEOUT, DEFAULT_TIMEOUT, EXIT_FAILED, EXIT_OK};
use crate::keys::{self, KeysError};
use crate::render;
use clap::CommandFactory;
use protocol::keys::{KeyError, PresharedKey, PrivateKey};
use protocol::rpc::{
    ChangeResult, ConfigCheckParams, ConfigCheckResult, InterfaceSetParams, NatInfo, PeerAddParams,
    PeerInfo, PeerRemoveParams, PeerSelector, PeerShowResult, PeerUpdateParams, ShowResult,
    StatsResult,
};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::io::{self, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};
use zeroize::Zeroizing;

/// Most bytes read from a key file; a key with its newline is 45.
pub const MAX_KEY_FILE: u64 = 4096;

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// Talking to the daemon failed.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// A key command failed.
    #[error(transparent)]
    Keys(#[from] KeysError),
    /// Writing the output failed.
    #[error("cannot write output: {0}")]
    Output(#[from] io::Error),
    /// A file named on the command line could not be used.
    #[error("{}: {reason}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// `check` found the configuration invalid: one problem per line (none with `--json`,
    /// where the problems are in the output).
    #[error("{}", .0.join("; "))]
    Invalid(Vec<String>),
    /// Another failure, followed by a hint on what to do instead.
    #[error("{failure}")]
    WithHint {
        /// The failure.
        failure: Box<Failure>,
        /// The hint, printed on its own line after the failure's lines.
        hint: String,
    },
}

impl Failure {
    /// The exit status for this failure (see [`ClientError::exit_code`]); a closed stdout
    /// (`vpnctl show | head -1`) counts as success, like a program killed by `SIGPIPE` would
    /// have gone unnoticed.
    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::Client(e) => e.exit_code(),
            Failure::Keys(_) | Failure::File { .. } | Failure::Invalid(_) => EXIT_FAILED,
            Failure::Output(e) if e.kind() == io::ErrorKind::BrokenPipe => EXIT_OK,
            Failure::Output(_) => EXIT_FAILED,
            Failure::WithHint { failure, .. } => failure.exit_code(),
        }
    }

    /// The lines to print on stderr, each then prefixed with `vpnctl: `. A refusal whose
    /// error `data` is a list of strings (a reload or change refused for several reasons)
    /// gives one line per reason; other failures give their message.
    pub fn lines(&self) -> Vec<String> {
        match self {
            Failure::Client(ClientError::Refused(e)) => match reasons(e.data.as_ref()) {
                Some(lines) => lines,
                None => vec![e.message.clone()],
            },
            Failure::Invalid(lines) => lines.clone(),
            Failure::WithHint { failure, hint } => {
                let mut v = failure.lines();
                v.push(hint.clone());
                v
            }
            other => vec![other.to_string()],
        }
    }
}

/// The reasons in an error's `data` when it is a non-empty list of strings.
fn reasons(data: Option<&Value>) -> Option<Vec<String>> {
    let list = data?.as_array()?;
    let lines: Option<Vec<String>> = list
        .iter()
        .map(|v| v.as_str().map(str::to_string))
        .collect();
    lines.filter(|l| !l.is_empty())
}

/// Runs `cli`, writing results to stdout and errors to stderr as `vpnctl: <message>`, and
/// returns the exit status.
pub fn run(cli: &Cli) -> u8 {
    let stdout = io::stdout();
    let color = render::color_enabled(
        stdout.is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
    );
    let result = execute(cli, &mut stdout.lock(), &mut io::stderr(), color);
    match result {
        Ok(()) => EXIT_OK,
        Err(f) => {
            let code = f.exit_code();
            if code != EXIT_OK {
                let mut err = io::stderr().lock();
                for line in f.lines() {
                    let _ = writeln!(err, "vpnctl: {}", render::clean(&line));
                }
            }
            code
        }
    }
}

/// Runs `cli`, writing its output to `out` (colored when `color`) and warnings to `warn`.
pub fn execute(
    cli: &Cli,
    out: &mut dyn Write,
    warn: &mut dyn Write,
    color: bool,
) -> Result<(), Failure> {
    match &cli.command {
        Command::Show(args) => show(cli, args, out, color),
        Command::Peer(PeerCommand::Add(args)) => peer_add(cli, args, out, warn),
        Command::Peer(PeerCommand::Remove(args)) => peer_remove(cli, args, out),
        Command::Peer(PeerCommand::Show(args)) => peer_show(cli, args, out, color),
        Command::Peer(PeerCommand::Update(args)) => peer_update(cli, args, out, warn),
        Command::Peer(PeerCommand::List(args)) => peer_list(cli, args, out),
        Command::Interface(InterfaceCommand::Set(args)) => interface_set(cli, args, out, warn),
        Command::Reload(args) => reload(cli, args, out),
        Command::Check(args) => check(cli, args, out, warn),
        Command::Stats(args) => stats(cli, args, out),
        Command::Netcheck(args) => netcheck(cli, args, out),
        Command::Genkey => print_line(out, &keys::genkey()?),
        Command::Genpsk => print_line(out, &keys::genpsk()?),
        Command::Pubkey => print_line(out, &keys::pubkey_from_reader(io::stdin().lock())?),
        Command::Import(args) => import(args, out, warn),
        Command::Completions(args) => completions(args, out),
    }
}

fn connect(cli: &Cli) -> Result<Client, ClientError> {
    Client::connect(&cli.socket_path(), DEFAULT_TIMEOUT)
}

/// One call on a fresh connection; changes get [`CHANGE_TIMEOUT`].
fn call(cli: &Cli, method: &str, params: Option<Value>) -> Result<Value, Failure> {
    let mut client = connect(cli)?;
    if matches!(
        method,
        "peer.add" | "peer.remove" | "peer.update" | "interface.set" | "reload"
    ) {
        client.set_timeout(CHANGE_TIMEOUT);
    }
    Ok(client.call(method, params)?)
}

/// Encodes a parameter object.
fn params<T: serde::Serialize>(p: &T) -> Result<Option<Value>, Failure> {
    serde_json::to_value(p)
        .map(Some)
        .map_err(|e| ClientError::Protocol(format!("cannot encode the request ({e})")).into())
}

/// Checks that `result` has the shape of a `T`.
fn decode<T: DeserializeOwned>(result: &Value, method: &str) -> Result<T, Failure> {
    T::deserialize(result)
        .map_err(|e| ClientError::Protocol(format!("malformed {method} result ({e})")).into())
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn show(cli: &Cli, args: &ShowArgs, out: &mut dyn Write, color: bool) -> Result<(), Failure> {
    let result = connect(cli)?.call("show", None)?;
    let show: ShowResult = serde_json::from_value(result)
        .map_err(|e| ClientError::Protocol(format!("malformed show result ({e})")))?;
    if args.json {
        let text = serde_json::to_string_pretty(&show)
            .map_err(|e| ClientError::Protocol(format!("cannot encode the result ({e})")))?;
        print_line(out, &text)
    } else {
        out.write_all(render::render_show(&show, now_unix(), color).as_bytes())?;
        Ok(out.flush()?)
    }
}

fn peer_add(
    cli: &Cli,
    args: &PeerAddArgs,
    out: &mut dyn Write,
    warn: &mut dyn Write,
) -> Result<(), Failure> {
    let preshared_key = args
        .preshared_key_file
        .as_deref()
        .map(|f| read_key_file::<PresharedKey>(f, "preshared key", warn))
        .transpose()?;
    let p = PeerAddParams {
        public_key: args.public_key.clone(),
        allowed_ips: args.allowed_ips.0.clone(),
        endpoint: args.endpoint.clone(),
        preshared_key: preshared_key.as_ref().map(|k| k.to_string()),
        persistent_keepalive: args.persistent_keepalive,
        name: args.name.clone(),
        save: args.common.save,
    };
    let result = call(cli, "peer.add", params(&p)?)?;
    print_change(out, &result, "peer.add", &args.common)
}

fn peer_remove(cli: &Cli, args: &PeerRemoveArgs, out: &mut dyn Write) -> Result<(), Failure> {
    let p = PeerRemoveParams {
        peer: args.peer.clone(),
        save: args.common.save,
    };
    let result = call(cli, "peer.remove", params(&p)?)?;
    print_change(out, &result, "peer.remove", &args.common)
}

fn peer_update(
    cli: &Cli,
    args: &PeerUpdateArgs,
    out: &mut dyn Write,
    warn: &mut dyn Write,
) -> Result<(), Failure> {
    let preshared_key = match (&args.preshared_key_file, args.no_preshared_key) {
        (_, true) => Some(Zeroizing::new(String::new())),
        (Some(f), false) => Some(read_key_file::<PresharedKey>(f, "preshared key", warn)?),
        (None, false) => None,
    };
    let endpoint = if args.no_endpoint {
        Some(String::new())
    } else {
        args.endpoint.clone()
    };
    let p = PeerUpdateParams {
        peer: args.peer.clone(),
        allowed_ips: args.allowed_ips.as_ref().map(|l| l.0.clone()),
        endpoint,
        preshared_key: preshared_key.as_ref().map(|k| k.to_string()),
        persistent_keepalive: args.persistent_keepalive,
        name: args.name.clone(),
        save: args.common.save,
    };
    let result = call(cli, "peer.update", params(&p)?)?;
    print_change(out, &result, "peer.update", &args.common)
}

fn peer_show(
    cli: &Cli,
    args: &PeerShowArgs,
    out: &mut dyn Write,
    color: bool,
) -> Result<(), Failure> {
    let p = PeerSelector {
        peer: args.peer.clone(),
    };
    let result = call(cli, "peer.show", params(&p)?)?;
    let peer: PeerShowResult = decode(&result, "peer.show")?;
    if args.json {
        print_json(out, &result)
    } else {
        out.write_all(render::render_peer_show(&peer, now_unix(), color).as_bytes())?;
        Ok(out.flush()?)
    }
}

fn peer_list(cli: &Cli, args: &JsonArgs, out: &mut dyn Write) -> Result<(), Failure> {
    let result = call(cli, "peer.list", None)?;
    let peers: Vec<PeerInfo> = decode(&result, "peer.list")?;
    if args.json {
        print_json(out, &result)
    } else if peers.is_empty() {
        print_line(out, "no peers")
    } else {
        out.write_all(render::render_peer_list(&peers).as_bytes())?;
        Ok(out.flush()?)
    }
}

fn interface_set(
    cli: &Cli,
    args: &InterfaceSetArgs,
    out: &mut dyn Write,
    warn: &mut dyn Write,
) -> Result<(), Failure> {
    let private_key = match (&args.private_key_file, &args.private_key) {
        (Some(f), _) => Some(read_key_file::<PrivateKey>(f, "private key", warn)?),
        (None, Some(k)) if k == "-" => Some(read_key_file::<PrivateKey>(
            Path::new("/dev/stdin"),
            "private key",
            &mut std::io::sink(),
        )?),
        // Checked by the argument parser.
        (None, Some(k)) => Some(Zeroizing::new(k.clone())),
        (None, None) => None,
    };
    let p = InterfaceSetParams {
        listen_port: args.listen_port,
        private_key: private_key.as_ref().map(|k| k.to_string()),
        mtu: args.mtu,
        addresses: args.addresses.as_ref().map(|l| l.0.clone()),
        save: args.common.save,
    };
    let result = call(cli, "interface.set", params(&p)?)?;
    print_change(out, &result, "interface.set", &args.common)
}

fn reload(cli: &Cli, args: &JsonArgs, out: &mut dyn Write) -> Result<(), Failure> {
    let result = call(cli, "reload", None)?;
    let common = ChangeArgs {
        save: false,
        json: args.json,
    };
    print_change(out, &result, "reload", &common)
}

/// The largest configuration `check` sends: what fits in one request (the daemon's own limit
/// for a file is larger, but a file that big is checked with `vpnd --check`).
const MAX_CHECK_TEXT: u64 = (protocol::rpc::MAX_MESSAGE_SIZE / 2) as u64;

/// Reads a configuration file to send as `config.check` content.
fn read_config_text(path: &Path) -> Result<String, Failure> {
    let fail = |reason: String| Failure::File {
        path: path.to_path_buf(),
        reason,
    };
    let file = std::fs::File::open(path).map_err(|e| fail(e.to_string()))?;
    let mut text = String::new();
    file.take(MAX_CHECK_TEXT + 1)
        .read_to_string(&mut text)
        .map_err(|e| fail(e.to_string()))?;
    if text.len() as u64 > MAX_CHECK_TEXT {
        return Err(fail(format!(
            "larger than {MAX_CHECK_TEXT} bytes, too large to send to the daemon; {}",
            check_offline_hint(path)
        )));
    }
    Ok(text)
}

/// The hint printed when `check` cannot reach the daemon.
pub fn check_offline_hint(file: &Path) -> String {
    format!(
        "to check the file without a running daemon, run `vpnd --check --config {}`",
        file.display()
    )
}

fn check(
    cli: &Cli,
    args: &CheckArgs,
    out: &mut dyn Write,
    warn: &mut dyn Write,
) -> Result<(), Failure> {
    // The daemon may run in another working directory: send an absolute path.
    let path = std::path::absolute(&args.file).map_err(|e| Failure::File {
        path: args.file.clone(),
        reason: e.to_string(),
    })?;
    let by_path = ConfigCheckParams {
        path: Some(path.to_string_lossy().into_owned()),
        ..Default::default()
    };
    let mut answer = call(cli, "config.check", params(&by_path)?);
    // The daemon reads only files in its configuration directory; anything else we read
    // ourselves, with our own permissions, and send.
    if matches!(&answer, Err(Failure::Client(ClientError::Refused(e))) if e.code == protocol::rpc::REFUSED)
    {
        let by_content = ConfigCheckParams {
            content: Some(read_config_text(&path)?),
            name: Some(path.to_string_lossy().into_owned()),
            ..Default::default()
        };
        answer = call(cli, "config.check", params(&by_content)?);
    }
    let result = match answer {
        Err(Failure::Client(e @ ClientError::Unreachable { .. })) => {
            return Err(Failure::WithHint {
                failure: Box::new(e.into()),
                hint: check_offline_hint(&path),
            })
        }
        r => r?,
    };
    let checked: ConfigCheckResult = decode(&result, "config.check")?;
    if args.json {
        print_json(out, &result)?;
        return if checked.valid {
            Ok(())
        } else {
            Err(Failure::Invalid(Vec::new()))
        };
    }
    for w in &checked.warnings {
        writeln!(warn, "vpnctl: warning: {}", render::clean(w))?;
    }
    if checked.valid {
        print_line(
            out,
            &format!("{}: configuration is valid", args.file.display()),
        )
    } else if checked.errors.is_empty() {
        Err(Failure::Invalid(vec![format!(
            "{}: configuration is invalid",
            args.file.display()
        )]))
    } else {
        Err(Failure::Invalid(checked.errors))
    }
}

fn stats(cli: &Cli, args: &JsonArgs, out: &mut dyn Write) -> Result<(), Failure> {
    let result = call(cli, "stats", None)?;
    let stats: StatsResult = decode(&result, "stats")?;
    if args.json {
        print_json(out, &result)
    } else {
        out.write_all(render::render_stats(&stats).as_bytes())?;
        Ok(out.flush()?)
    }
}

/// How long `netcheck` waits: the daemon gives STUN servers up to 5 s to answer.
const NETCHECK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

fn netcheck(cli: &Cli, args: &JsonArgs, out: &mut dyn Write) -> Result<(), Failure> {
    let result = Client::connect(&cli.socket_path(), NETCHECK_TIMEOUT)?.call("netcheck", None)?;
    let info: NatInfo = decode(&result, "netcheck")?;
    if args.json {
        print_json(out, &result)
    } else {
        out.write_all(render::render_netcheck(&info).as_bytes())?;
        Ok(out.flush()?)
    }
}

/// Prints a change result: as JSON with `--json`, else one line per change.
fn print_change(
    out: &mut dyn Write,
    result: &Value,
    method: &str,
    common: &ChangeArgs,
) -> Result<(), Failure> {
    let change: ChangeResult = decode(result, method)?;
    if common.json {
        print_json(out, result)
    } else {
        out.write_all(render::render_change(&change).as_bytes())?;
        Ok(out.flush()?)
    }
}

/// Reads a base64 key of type `K` from `path` (surrounding whitespace ignored, at most
/// [`MAX_KEY_FILE`] bytes) and returns it trimmed, warning on `warn` when the file is readable
/// by group or others. The key is checked here so that a wrong file is named in the error.
pub fn read_key_file<K: FromStr<Err = KeyError>>(
    path: &Path,
    what: &str,
    warn: &mut dyn Write,
) -> Result<Zeroizing<String>, Failure> {
    use std::os::unix::fs::PermissionsExt;
    let fail = |reason: String| Failure::File {
        path: path.to_path_buf(),
        reason,
    };
    let file = std::fs::File::open(path).map_err(|e| fail(format!("cannot read: {e}")))?;
    let mode = file
        .metadata()
        .map_err(|e| fail(format!("cannot read: {e}")))?
        .permissions()
        .mode();
    if mode & 0o044 != 0 {
        writeln!(
            warn,
            "vpnctl: warning: {} is readable by group or others (mode {:04o}); \
             run `chmod 600` on it",
            path.display(),
            mode & 0o7777
        )?;
    }
    let mut buf = Zeroizing::new(Vec::new());
    file.take(MAX_KEY_FILE + 1)
        .read_to_end(&mut buf)
        .map_err(|e| fail(format!("cannot read: {e}")))?;
    if buf.len() as u64 > MAX_KEY_FILE {
        return Err(fail(format!("not a {what} file (too large)")));
    }
    let text = std::str::from_utf8(&buf)
        .map_err(|_| fail(format!("invalid {what}: {}", KeyError::BadBase64)))?
        .trim();
    text.parse::<K>()
        .map_err(|e| fail(format!("invalid {what}: {e}")))?;
    Ok(Zeroizing::new(text.to_string()))
}

/// `import`: converts a wg-quick file; problems are `FILE:LINE: key: problem` lines.
fn import(args: &ImportArgs, out: &mut dyn Write, warn: &mut dyn Write) -> Result<(), Failure> {
    let fail = |path: &Path, reason: String| Failure::File {
        path: path.to_path_buf(),
        reason,
    };
    let name = match &args.name {
        Some(name) => name.clone(),
        None => default_import_name(&args.file).map_err(|reason| fail(&args.file, reason))?,
    };
    let text = crate::import::output::read_input(&args.file)
        .map_err(|e| fail(&args.file, e.to_string()))?;
    let label = if args.file == Path::new("-") {
        "<stdin>".to_string()
    } else {
        args.file.display().to_string()
    };
    let converted = crate::import::convert(&text, &name, &label).map_err(|problems| {
        Failure::Invalid(problems.iter().map(|p| p.render(&label)).collect())
    })?;
    for w in &converted.warnings {
        writeln!(
            warn,
            "vpnctl: warning: {}",
            render::clean(&w.render(&label))
        )?;
    }
    match &args.output {
        None => {
            out.write_all(converted.yaml.as_bytes())?;
            Ok(out.flush()?)
        }
        Some(path) => {
            crate::import::output::write_output(path, converted.yaml.as_bytes(), args.force)
                .map_err(|e| fail(path, e.to_string()))?;
            writeln!(
                warn,
                "vpnctl: wrote {0} (interface {name}); check it with `vpnd --check --config {0}`",
                path.display()
            )?;
            Ok(())
        }
    }
}

/// The interface name `import` takes from FILE: its name without the extension (`wg0.conf`
/// gives `wg0`, as wg-quick names the interface), if that is a valid interface name.
fn default_import_name(file: &Path) -> Result<String, String> {
    if file == Path::new("-") {
        return Err("give the interface name with --name when reading stdin".into());
    }
    let stem = file
        .file_stem()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    crate::cli::parse_interface(&stem).map_err(|reason| {
        format!("cannot name the interface after the file ({stem:?}: {reason}); give --name")
    })
}

fn print_json(out: &mut dyn Write, value: &Value) -> Result<(), Failure> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| ClientError::Protocol(format!("cannot encode the result ({e})")))?;
    print_line(out, &text)
}

fn completions(args: &CompletionsArgs, out: &mut dyn Write) -> Result<(), Failure> {
    // Generate into memory first: clap_complete panics when its writer fails.
    let mut script = Vec::new();
    let shell: clap_complete::Shell = args.shell.into();
    clap_complete::generate(shell, &mut Cli::command(), "vpnctl", &mut script);
    out.write_all(&script)?;
    Ok(out.flush()?)
}

fn print_line(out: &mut dyn Write, s: &str) -> Result<(), Failure> {
    writeln!(out, "{s}")?;
    Ok(out.flush()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::rpc::RpcError;
    use serde_json::json;
    use std::os::unix::fs::PermissionsExt;

    const PSK: &str = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=";

    fn key_file(dir: &Path, contents: &str, mode: u32) -> PathBuf {
        let path = dir.join("key");
        std::fs::write(&path, contents).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    #[test]
    fn key_files_are_trimmed_checked_and_warned_about() {
        let dir = tempfile::tempdir().unwrap();
        let mut warn = Vec::new();
        let path = key_file(dir.path(), &format!("\n  {PSK}\n"), 0o600);
        let key = read_key_file::<PresharedKey>(&path, "preshared key", &mut warn).unwrap();
        assert_eq!(key.as_str(), PSK);
        assert!(warn.is_empty());

        let path = key_file(dir.path(), &format!("{PSK}\n"), 0o640);
        read_key_file::<PresharedKey>(&path, "preshared key", &mut warn).unwrap();
        let w = String::from_utf8(warn).unwrap();
        assert!(
            w.starts_with("vpnctl: warning: ") && w.contains("(mode 0640)"),
            "{w}"
        );

        for bad in ["", "AAAA", "not base64 at all", "\u{fffd}"] {
            let path = key_file(dir.path(), bad, 0o600);
            let e = read_key_file::<PrivateKey>(&path, "private key", &mut Vec::new()).unwrap_err();
            assert_eq!(e.exit_code(), 1);
            let msg = e.to_string();
            assert!(
                msg.starts_with(&format!("{}: invalid private key", path.display())),
                "{msg}"
            );
        }
        let path = key_file(dir.path(), &"A".repeat(5000), 0o600);
        let e = read_key_file::<PrivateKey>(&path, "private key", &mut Vec::new()).unwrap_err();
        assert!(e.to_string().contains("too large"), "{e}");
        let e =
            read_key_file::<PrivateKey>(&dir.path().join("none"), "private key", &mut Vec::new())
                .unwrap_err();
        assert!(e.to_string().contains("cannot read"), "{e}");
    }

    fn refused(message: &str, data: Option<Value>) -> Failure {
        let mut e = RpcError::new(-32000, message);
        e.data = data;
        Failure::Client(ClientError::Refused(e))
    }

    #[test]
    fn refusals_print_every_reason() {
        let f = refused("a; b", Some(json!(["a", "b"])));
        assert_eq!(f.lines(), ["a", "b"]);
        assert_eq!(f.exit_code(), 1);
        assert_eq!(refused("m", None).lines(), ["m"]);
        assert_eq!(refused("m", Some(json!([]))).lines(), ["m"]);
        assert_eq!(refused("m", Some(json!(["a", 1]))).lines(), ["m"]);
        assert_eq!(refused("m", Some(json!({"x": 1}))).lines(), ["m"]);
        assert_eq!(Failure::Invalid(vec![]).lines(), Vec::<String>::new());
        assert_eq!(Failure::Invalid(vec![]).exit_code(), 1);
        let hinted = Failure::WithHint {
            failure: Box::new(
                ClientError::Unreachable {
                    path: "/s".into(),
                    reason: "gone".into(),
                }
                .into(),
            ),
            hint: check_offline_hint(Path::new("/etc/vpnd/vpn0.yaml")),
        };
        assert_eq!(hinted.exit_code(), 3);
        assert_eq!(
            hinted.lines(),
            [
                "cannot reach vpnd at /s: gone",
                "to check the file without a running daemon, run \
                 `vpnd --check --config /etc/vpnd/vpn0.yaml`"
            ]
        );
    }
}
