//! Command-line definitions (clap derive).
//!
//! Options that say which daemon to talk to (`--socket`, `--interface`) are global, so they are
//! accepted before or after any subcommand; subcommands that never reach the daemon ignore them.

use clap::{Parser, Subcommand, ValueEnum};
use std::ffi::OsString;
use std::path::PathBuf;

/// Interface used when `--interface` is not given.
pub const DEFAULT_INTERFACE: &str = "vpn0";

/// Folder holding vpnd's control sockets, one `<interface>.sock` per interface.
pub const SOCKET_DIR: &str = "/run/vpnd";

/// Environment variable that names the control socket when `--socket` is not given.
pub const SOCKET_ENV: &str = "VPNCTL_SOCKET";

/// `vpnctl`: control tool for vpnd.
#[derive(Debug, Parser)]
#[command(
    name = "vpnctl",
    version,
    about = "Control tool for vpnd, a WireGuard-compatible userspace VPN",
    after_help = "Exit status: 0 ok, 1 the daemon refused or failed, 2 usage error, \
                  3 the daemon is unreachable."
)]
pub struct Cli {
    /// Control socket given on the command line; see [`Cli::socket_path`] for the fallbacks.
    #[arg(
        long,
        global = true,
        value_name = "PATH",
        help = "Control socket of vpnd [env: VPNCTL_SOCKET] [default: /run/vpnd/<INTERFACE>.sock]"
    )]
    pub socket: Option<PathBuf>,

    /// Interface whose daemon to talk to (picks the default socket)
    #[arg(
        short = 'i',
        long,
        global = true,
        value_name = "NAME",
        default_value = DEFAULT_INTERFACE,
        value_parser = parse_interface
    )]
    pub interface: String,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// The control socket to use: `--socket`, else `$VPNCTL_SOCKET`, else
    /// `/run/vpnd/<interface>.sock`.
    pub fn socket_path(&self) -> PathBuf {
        self.socket_path_with_env(std::env::var_os(SOCKET_ENV))
    }

    /// [`Cli::socket_path`] with the value of `$VPNCTL_SOCKET` passed in. An empty value counts
    /// as unset, so `VPNCTL_SOCKET= vpnctl show` falls back to the default.
    pub fn socket_path_with_env(&self, env: Option<OsString>) -> PathBuf {
        match (&self.socket, env) {
            (Some(p), _) => p.clone(),
            (None, Some(e)) if !e.is_empty() => PathBuf::from(e),
            (None, _) => default_socket_path(&self.interface),
        }
    }
}

/// The socket vpnd listens on for `interface` by default.
pub fn default_socket_path(interface: &str) -> PathBuf {
    PathBuf::from(SOCKET_DIR).join(format!("{interface}.sock"))
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show the interface and its peers
    Show(ShowArgs),
    /// Add, change, remove or look at peers
    #[command(subcommand)]
    Peer(PeerCommand),
    /// Change interface settings
    #[command(subcommand)]
    Interface(InterfaceCommand),
    /// Re-read the configuration file and apply what changed
    Reload(JsonArgs),
    /// Have the daemon validate a configuration file without applying it
    Check(CheckArgs),
    /// Show data-plane statistics (drops, handshake queue, load)
    Stats(JsonArgs),
    /// Check NAT traversal now: public endpoints, mapping type, each hub and STUN server
    Netcheck(JsonArgs),
    /// Generate a new private key and print it in base64
    Genkey,
    /// Read a private key from stdin and print its public key
    Pubkey,
    /// Generate a new preshared key and print it in base64
    Genpsk,
    /// Convert a wg-quick or wg configuration file to vpnd's YAML
    Import(ImportArgs),
    /// Print a shell completion script
    Completions(CompletionsArgs),
}

/// Arguments of `show`.
#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    /// Print the daemon's answer as JSON (stable for scripts)
    #[arg(long)]
    pub json: bool,
}

/// Only `--json`: for commands without other options.
#[derive(Debug, clap::Args)]
pub struct JsonArgs {
    /// Print the daemon's answer (the RPC result) as JSON
    #[arg(long)]
    pub json: bool,
}

/// `peer` subcommands.
#[derive(Debug, Subcommand)]
pub enum PeerCommand {
    /// Add a peer
    Add(PeerAddArgs),
    /// Remove a peer
    Remove(PeerRemoveArgs),
    /// Show one peer, with how often it was restarted
    Show(PeerShowArgs),
    /// Change a peer's settings; settings not given are kept
    Update(PeerUpdateArgs),
    /// List every peer, one per line
    List(JsonArgs),
}

/// Arguments of `peer add`.
#[derive(Debug, clap::Args)]
pub struct PeerAddArgs {
    /// The peer's public key (base64)
    #[arg(value_name = "PUBLIC_KEY")]
    pub public_key: String,
    /// Allowed IPs in CIDR form, comma-separated (empty for none)
    #[arg(long, value_name = "CIDR,...", value_parser = parse_list)]
    pub allowed_ips: List,
    /// Endpoint: host:port, ip:port or [ipv6]:port
    #[arg(long, value_name = "HOST:PORT")]
    pub endpoint: Option<String>,
    /// File holding the preshared key (base64, as `vpnctl genpsk` prints it)
    #[arg(long, value_name = "FILE")]
    pub preshared_key_file: Option<PathBuf>,
    /// Seconds between keepalives (0 = off)
    #[arg(long, value_name = "SECONDS")]
    pub persistent_keepalive: Option<u16>,
    /// A label for the peer, usable instead of its key
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// `--save` and `--json`.
    #[command(flatten)]
    pub common: ChangeArgs,
}

/// Arguments of `peer remove`.
#[derive(Debug, clap::Args)]
pub struct PeerRemoveArgs {
    /// The peer: its public key or its name
    #[arg(value_name = "PEER")]
    pub peer: String,
    /// `--save` and `--json`.
    #[command(flatten)]
    pub common: ChangeArgs,
}

/// Arguments of `peer show`.
#[derive(Debug, clap::Args)]
pub struct PeerShowArgs {
    /// The peer: its public key or its name
    #[arg(value_name = "PEER")]
    pub peer: String,
    /// Print the daemon's answer (the RPC result) as JSON
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `peer update`: at least one setting must be given.
#[derive(Debug, clap::Args)]
#[command(
    group = clap::ArgGroup::new("change").required(true).multiple(true),
    override_usage = "vpnctl peer update <PEER> <SETTING>... [--save] [--json]"
)]
pub struct PeerUpdateArgs {
    /// The peer: its public key or its name
    #[arg(value_name = "PEER")]
    pub peer: String,
    /// Replace the allowed IPs (CIDR form, comma-separated; empty for none)
    #[arg(long, value_name = "CIDR,...", value_parser = parse_list, group = "change")]
    pub allowed_ips: Option<List>,
    /// Set the endpoint: host:port, ip:port or [ipv6]:port
    #[arg(long, value_name = "HOST:PORT", group = "change")]
    pub endpoint: Option<String>,
    /// Forget the endpoint (wait for the peer to reach us)
    #[arg(long, conflicts_with = "endpoint", group = "change")]
    pub no_endpoint: bool,
    /// Set the preshared key from a file (base64)
    #[arg(long, value_name = "FILE", group = "change")]
    pub preshared_key_file: Option<PathBuf>,
    /// Remove the preshared key
    #[arg(long, conflicts_with = "preshared_key_file", group = "change")]
    pub no_preshared_key: bool,
    /// Seconds between keepalives (0 = off)
    #[arg(long, value_name = "SECONDS", group = "change")]
    pub persistent_keepalive: Option<u16>,
    /// Set the label (an empty name removes it)
    #[arg(long, value_name = "NAME", group = "change")]
    pub name: Option<String>,
    /// `--save` and `--json`.
    #[command(flatten)]
    pub common: ChangeArgs,
}

/// `interface` subcommands.
#[derive(Debug, Subcommand)]
pub enum InterfaceCommand {
    /// Change the listen port, private key, MTU or addresses
    Set(InterfaceSetArgs),
}

/// Arguments of `interface set`: at least one setting must be given.
#[derive(Debug, clap::Args)]
#[command(
    group = clap::ArgGroup::new("change").required(true).multiple(true),
    override_usage = "vpnctl interface set <SETTING>... [--save] [--json]"
)]
pub struct InterfaceSetArgs {
    /// UDP port to listen on (0 = any free port)
    #[arg(long, value_name = "PORT", group = "change")]
    pub listen_port: Option<u16>,
    /// File holding the new private key (base64); every session is rebuilt
    #[arg(long, value_name = "FILE", group = "change")]
    pub private_key_file: Option<PathBuf>,
    /// The new private key itself (base64), or `-` to read it from standard input. A key on the
    /// command line is visible to other users in `ps`: prefer `-` or --private-key-file
    #[arg(
        long,
        value_name = "KEY",
        group = "change",
        conflicts_with = "private_key_file",
        value_parser = parse_private_key
    )]
    pub private_key: Option<String>,
    /// Tunnel MTU
    #[arg(long, value_name = "BYTES", group = "change")]
    pub mtu: Option<u16>,
    /// Interface addresses in CIDR form, comma-separated (replaces the list)
    #[arg(long, value_name = "CIDR,...", value_parser = parse_list, group = "change")]
    pub addresses: Option<List>,
    /// `--save` and `--json`.
    #[command(flatten)]
    pub common: ChangeArgs,
}

/// Options shared by every command that changes the daemon.
#[derive(Debug, clap::Args)]
pub struct ChangeArgs {
    /// Also write the change to the configuration file (comments in it are not kept)
    #[arg(long)]
    pub save: bool,
    /// Print the daemon's answer (the RPC result) as JSON
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The configuration file to validate (read by the daemon if it is in the daemon's
    /// configuration directory, else read here and sent)
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Print the daemon's answer (the RPC result) as JSON
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `import`.
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// The wg-quick or `wg` file to convert (`-` reads stdin; then give --name)
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Write the YAML to OUT (created with mode 0600) instead of stdout
    #[arg(short = 'o', long, value_name = "OUT")]
    pub output: Option<PathBuf>,
    /// Replace OUT if it exists
    #[arg(long, requires = "output")]
    pub force: bool,
    /// Interface name [default: FILE's name without its extension: wg0 for wg0.conf]
    #[arg(long, value_name = "NAME", value_parser = parse_interface)]
    pub name: Option<String>,
}

/// A comma-separated list from the command line (`10.0.0.2/32,fd00::2/128`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct List(pub Vec<String>);

/// Splits `s` at commas, trimming each item; empty items are dropped, so `""` is the empty
/// list.
pub fn parse_list(s: &str) -> Result<List, String> {
    Ok(List(
        s.split(',')
            .map(str::trim)
            .filter(|x| !x.is_empty())
            .map(str::to_string)
            .collect(),
    ))
}

/// A private key in base64, or `-` (read from standard input later).
fn parse_private_key(s: &str) -> Result<String, String> {
    if s == "-" {
        return Ok(s.to_string());
    }
    s.trim()
        .parse::<protocol::keys::PrivateKey>()
        .map(|k| k.to_base64())
        .map_err(|e| e.to_string())
}

/// Arguments of `completions`.
#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// Shell to generate completions for
    #[arg(value_enum)]
    pub shell: CompletionShell,
}

/// Shells that `completions` supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CompletionShell {
    /// GNU Bash.
    Bash,
    /// Z shell.
    Zsh,
    /// fish.
    Fish,
}

impl From<CompletionShell> for clap_complete::Shell {
    fn from(s: CompletionShell) -> Self {
        match s {
            CompletionShell::Bash => clap_complete::Shell::Bash,
            CompletionShell::Zsh => clap_complete::Shell::Zsh,
            CompletionShell::Fish => clap_complete::Shell::Fish,
        }
    }
}

/// Accepts a Linux interface name (1 to 15 bytes, no `/`, whitespace, `:` or NUL, not `.` or
/// `..`), so that it is safe to put into the default socket path.
pub fn parse_interface(s: &str) -> Result<String, String> {
    if s.is_empty() || s.len() > 15 {
        return Err("an interface name has 1 to 15 bytes".into());
    }
    if s == "." || s == ".." {
        return Err("not an interface name".into());
    }
    if let Some(c) = s
        .chars()
        .find(|c| *c == '/' || *c == ':' || c.is_whitespace() || c.is_control())
    {
        return Err(format!("an interface name cannot contain {c:?}"));
    }
    Ok(s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;
    use std::path::Path;

    #[test]
    fn definitions_are_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn socket_defaults_to_interface() {
        let cli = Cli::try_parse_from(["vpnctl", "show", "-i", "wg3"]).unwrap();
        assert_eq!(
            cli.socket_path_with_env(None),
            PathBuf::from("/run/vpnd/wg3.sock")
        );
        assert_eq!(
            cli.socket_path_with_env(Some("".into())),
            PathBuf::from("/run/vpnd/wg3.sock")
        );
        assert_eq!(
            cli.socket_path_with_env(Some("/e.sock".into())),
            PathBuf::from("/e.sock")
        );
        let cli = Cli::try_parse_from(["vpnctl", "show"]).unwrap();
        assert_eq!(
            cli.socket_path_with_env(None),
            PathBuf::from("/run/vpnd/vpn0.sock")
        );
        let cli = Cli::try_parse_from(["vpnctl", "--socket", "/tmp/x.sock", "show"]).unwrap();
        assert_eq!(
            cli.socket_path_with_env(Some("/e.sock".into())),
            PathBuf::from("/tmp/x.sock")
        );
        let cli = Cli::try_parse_from(["vpnctl", "show", "--json", "--socket", "/tmp/y"]).unwrap();
        assert_eq!(cli.socket_path(), PathBuf::from("/tmp/y"));
        assert!(matches!(
            cli.command,
            Command::Show(ShowArgs { json: true })
        ));
    }

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("vpnctl").chain(args.iter().copied()))
    }

    fn usage_error(args: &[&str]) -> clap::error::ErrorKind {
        parse(args).expect_err("must be a usage error").kind()
    }

    #[test]
    fn lists_split_at_commas() {
        assert_eq!(parse_list("").unwrap(), List(vec![]));
        assert_eq!(parse_list(" , ").unwrap(), List(vec![]));
        assert_eq!(
            parse_list("10.0.0.2/32, fd00::2/128,").unwrap(),
            List(vec!["10.0.0.2/32".into(), "fd00::2/128".into()])
        );
    }

    #[test]
    fn peer_add_takes_every_option() {
        let cli = parse(&[
            "peer",
            "add",
            "KEY",
            "--allowed-ips",
            "10.0.0.2/32,10.1.0.0/16",
            "--endpoint",
            "[fd00::1]:51820",
            "--preshared-key-file",
            "/k/psk",
            "--persistent-keepalive",
            "25",
            "--name",
            "alice",
            "--save",
        ])
        .unwrap();
        let Command::Peer(PeerCommand::Add(a)) = cli.command else {
            panic!("not peer add: {:?}", cli.command)
        };
        assert_eq!(a.public_key, "KEY");
        assert_eq!(a.allowed_ips.0, ["10.0.0.2/32", "10.1.0.0/16"]);
        assert_eq!(a.endpoint.as_deref(), Some("[fd00::1]:51820"));
        assert_eq!(a.preshared_key_file, Some(PathBuf::from("/k/psk")));
        assert_eq!(a.persistent_keepalive, Some(25));
        assert_eq!(a.name.as_deref(), Some("alice"));
        assert!(a.common.save && !a.common.json);
    }

    #[test]
    fn peer_add_needs_a_key_and_allowed_ips() {
        use clap::error::ErrorKind;
        assert_eq!(
            usage_error(&["peer", "add", "KEY"]),
            ErrorKind::MissingRequiredArgument
        );
        assert_eq!(
            usage_error(&["peer", "add", "--allowed-ips", "10.0.0.2/32"]),
            ErrorKind::MissingRequiredArgument
        );
        assert_eq!(
            usage_error(&[
                "peer",
                "add",
                "K",
                "--allowed-ips",
                "",
                "--persistent-keepalive",
                "65536"
            ]),
            ErrorKind::ValueValidation
        );
        // An empty list is allowed: a peer that may send nothing.
        assert!(parse(&["peer", "add", "K", "--allowed-ips", ""]).is_ok());
    }

    #[test]
    fn peer_update_options_conflict_in_pairs() {
        use clap::error::ErrorKind;
        assert_eq!(
            usage_error(&[
                "peer",
                "update",
                "alice",
                "--endpoint",
                "1.2.3.4:5",
                "--no-endpoint"
            ]),
            ErrorKind::ArgumentConflict
        );
        assert_eq!(
            usage_error(&[
                "peer",
                "update",
                "alice",
                "--no-preshared-key",
                "--preshared-key-file",
                "/k"
            ]),
            ErrorKind::ArgumentConflict
        );
        // Something to change is required; --save or --json alone is not a change.
        for args in [
            &["peer", "update", "alice"][..],
            &["peer", "update", "alice", "--save"],
            &["peer", "update", "alice", "--json"],
        ] {
            assert_eq!(
                usage_error(args),
                ErrorKind::MissingRequiredArgument,
                "{args:?}"
            );
        }
        let cli = parse(&[
            "peer",
            "update",
            "alice",
            "--no-endpoint",
            "--no-preshared-key",
            "--name",
            "",
            "--allowed-ips",
            "",
        ])
        .unwrap();
        let Command::Peer(PeerCommand::Update(u)) = cli.command else {
            panic!("not peer update")
        };
        assert!(u.no_endpoint && u.no_preshared_key && u.endpoint.is_none());
        assert_eq!(u.name.as_deref(), Some(""));
        assert_eq!(u.allowed_ips, Some(List(vec![])));
        assert!(!u.common.save);
    }

    #[test]
    fn interface_set_needs_a_setting() {
        use clap::error::ErrorKind;
        assert_eq!(
            usage_error(&["interface", "set", "--save"]),
            ErrorKind::MissingRequiredArgument
        );
        assert_eq!(
            usage_error(&["interface", "set", "--mtu", "70000"]),
            ErrorKind::ValueValidation
        );
        let cli = parse(&[
            "interface",
            "set",
            "--listen-port",
            "0",
            "--addresses",
            "10.0.0.1/24,fd00::1/64",
            "--json",
        ])
        .unwrap();
        let Command::Interface(InterfaceCommand::Set(s)) = cli.command else {
            panic!("not interface set")
        };
        assert_eq!(s.listen_port, Some(0));
        assert_eq!(
            s.addresses,
            Some(List(vec!["10.0.0.1/24".into(), "fd00::1/64".into()]))
        );
        assert!(s.mtu.is_none() && s.private_key_file.is_none() && s.private_key.is_none());
        assert!(s.common.json);
        let cli = parse(&["interface", "set", "--private-key", "-"]).unwrap();
        let Command::Interface(InterfaceCommand::Set(s)) = cli.command else {
            panic!("not interface set")
        };
        assert_eq!(s.private_key.as_deref(), Some("-"));
        assert!(parse(&[
            "interface",
            "set",
            "--private-key",
            "k",
            "--private-key-file",
            "f"
        ])
        .is_err());
    }

    #[test]
    fn other_commands_parse() {
        use clap::error::ErrorKind;
        assert!(matches!(
            parse(&["peer", "remove", "alice", "--save"]).unwrap().command,
            Command::Peer(PeerCommand::Remove(PeerRemoveArgs { ref peer, common: ChangeArgs { save: true, json: false } })) if peer == "alice"
        ));
        assert!(matches!(
            parse(&["peer", "show", "K", "--json"]).unwrap().command,
            Command::Peer(PeerCommand::Show(PeerShowArgs { json: true, .. }))
        ));
        assert!(matches!(
            parse(&["peer", "list"]).unwrap().command,
            Command::Peer(PeerCommand::List(JsonArgs { json: false }))
        ));
        assert!(matches!(
            parse(&["reload", "--json"]).unwrap().command,
            Command::Reload(JsonArgs { json: true })
        ));
        assert!(matches!(
            parse(&["stats"]).unwrap().command,
            Command::Stats(JsonArgs { json: false })
        ));
        assert!(matches!(
            parse(&["check", "x.yaml"]).unwrap().command,
            Command::Check(CheckArgs { ref file, json: false }) if file == Path::new("x.yaml")
        ));
        assert_eq!(usage_error(&["check"]), ErrorKind::MissingRequiredArgument);
        let cli = parse(&["import", "wg0.conf", "-o", "vpn0.yaml", "--force"]).unwrap();
        let Command::Import(i) = cli.command else {
            panic!("not import")
        };
        assert_eq!(i.file, Path::new("wg0.conf"));
        assert_eq!(i.output.as_deref(), Some(Path::new("vpn0.yaml")));
        assert!(i.force && i.name.is_none());
        assert_eq!(
            usage_error(&["import", "wg0.conf", "--force"]),
            ErrorKind::MissingRequiredArgument
        );
        assert_eq!(
            usage_error(&["import", "-", "--name", "a/b"]),
            ErrorKind::ValueValidation
        );
        assert_eq!(
            usage_error(&["reload", "--save"]),
            ErrorKind::UnknownArgument
        );
        assert_eq!(
            usage_error(&["peer", "remove"]),
            ErrorKind::MissingRequiredArgument
        );
        assert_eq!(usage_error(&["peer", "frob"]), ErrorKind::InvalidSubcommand);
        // Global options still work after the nested subcommand.
        let cli = parse(&["peer", "list", "--socket", "/tmp/s"]).unwrap();
        assert_eq!(cli.socket_path_with_env(None), PathBuf::from("/tmp/s"));
    }

    #[test]
    fn interface_names_are_checked() {
        assert!(parse_interface("vpn0").is_ok());
        assert!(parse_interface("wg-office_1").is_ok());
        for bad in [
            "",
            "..",
            ".",
            "a/b",
            "../etc",
            "a b",
            "x:1",
            "0123456789abcdef",
        ] {
            assert!(parse_interface(bad).is_err(), "{bad:?} accepted");
        }
        assert!(Cli::try_parse_from(["vpnctl", "show", "-i", "../x"]).is_err());
    }
}
