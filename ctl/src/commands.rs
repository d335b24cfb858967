//! Runs a parsed command line: dispatch, output and exit status.
//!
//! Each subcommand writes its output to the given writer and returns a [`Failure`] on error;
//! [`run`] turns that into a message on stderr and an exit status. Commands that talk to the
//! daemon go through [`Client`], so later ones (peer management, reload, check) add a function
//! here and a variant in [`crate::cli::Command`].

use crate::cli::{Cli, Command, CompletionsArgs, ShowArgs, StatsArgs};
use crate::client::{Client, ClientError, DEFAULT_TIMEOUT, EXIT_FAILED, EXIT_OK};
use crate::keys::{self, KeysError};
use crate::render;
use clap::CommandFactory;
use protocol::rpc::{ChangeResult, ShowResult, StatsResult};
use std::io::{self, IsTerminal, Write};
use std::time::{SystemTime, UNIX_EPOCH};

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
}

impl Failure {
    /// The exit status for this failure (see [`ClientError::exit_code`]); a closed stdout
    /// (`vpnctl show | head -1`) counts as success, like a program killed by `SIGPIPE` would
    /// have gone unnoticed.
    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::Client(e) => e.exit_code(),
            Failure::Keys(_) => EXIT_FAILED,
            Failure::Output(e) if e.kind() == io::ErrorKind::BrokenPipe => EXIT_OK,
            Failure::Output(_) => EXIT_FAILED,
        }
    }
}

/// Runs `cli`, writing results to stdout and errors to stderr as `vpnctl: <message>`, and
/// returns the exit status.
pub fn run(cli: &Cli) -> u8 {
    let stdout = io::stdout();
    let color = render::color_enabled(
        stdout.is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
    );
    let result = execute(cli, &mut stdout.lock(), color);
    match result {
        Ok(()) => EXIT_OK,
        Err(f) => {
            let code = f.exit_code();
            if code != EXIT_OK {
                let _ = writeln!(io::stderr(), "vpnctl: {}", render::clean(&f.to_string()));
            }
            code
        }
    }
}

/// Runs `cli`, writing its output to `out` (colored when `color`).
pub fn execute(cli: &Cli, out: &mut dyn Write, color: bool) -> Result<(), Failure> {
    match &cli.command {
        Command::Show(args) => show(cli, args, out, color),
        Command::Reload => reload(cli, out),
        Command::Stats(args) => stats(cli, args, out),
        Command::Genkey => print_line(out, &keys::genkey()?),
        Command::Genpsk => print_line(out, &keys::genpsk()?),
        Command::Pubkey => print_line(out, &keys::pubkey_from_reader(io::stdin().lock())?),
        Command::Completions(args) => completions(args, out),
    }
}

fn connect(cli: &Cli) -> Result<Client, ClientError> {
    Client::connect(&cli.socket_path(), DEFAULT_TIMEOUT)
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
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        out.write_all(render::render_show(&show, now, color).as_bytes())?;
        Ok(out.flush()?)
    }
}

/// `reload`: one line per change, or `nothing changed`. A refusal is a [`ClientError::Refused`]
/// whose message lists every reason (exit status 1); the daemon keeps its running
/// configuration.
fn reload(cli: &Cli, out: &mut dyn Write) -> Result<(), Failure> {
    let result = connect(cli)?.call("reload", None)?;
    let r: ChangeResult = serde_json::from_value(result)
        .map_err(|e| ClientError::Protocol(format!("malformed reload result ({e})")))?;
    let lines = render::change_lines(&r);
    if lines.is_empty() {
        return print_line(out, "nothing changed");
    }
    for l in lines {
        writeln!(out, "{}", render::clean(&l))?;
    }
    Ok(out.flush()?)
}

fn stats(cli: &Cli, args: &StatsArgs, out: &mut dyn Write) -> Result<(), Failure> {
    let result = connect(cli)?.call("stats", None)?;
    let s: StatsResult = serde_json::from_value(result)
        .map_err(|e| ClientError::Protocol(format!("malformed stats result ({e})")))?;
    if args.json {
        let text = serde_json::to_string_pretty(&s)
            .map_err(|e| ClientError::Protocol(format!("cannot encode the result ({e})")))?;
        return print_line(out, &text);
    }
    out.write_all(render::render_stats(&s).as_bytes())?;
    Ok(out.flush()?)
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
