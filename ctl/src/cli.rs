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
    /// Reload the configuration file; prints what changed, or why it was refused
    Reload,
    /// Show the daemon's counters: dropped packets by reason, handshake queue
    Stats(StatsArgs),
    /// Generate a new private key and print it in base64
    Genkey,
    /// Read a private key from stdin and print its public key
    Pubkey,
    /// Generate a new preshared key and print it in base64
    Genpsk,
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

/// Arguments of `stats`.
#[derive(Debug, clap::Args)]
pub struct StatsArgs {
    /// Print the daemon's answer as JSON (stable for scripts)
    #[arg(long)]
    pub json: bool,
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
