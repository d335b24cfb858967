//! `vpnctl`: parses the command line and hands it to [`vpnctl::commands::run`].

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    match vpnctl::cli::Cli::try_parse() {
        Ok(cli) => ExitCode::from(vpnctl::commands::run(&cli)),
        Err(e) => {
            // Usage errors exit 2 (clap's default); --help and --version exit 0.
            let _ = e.print();
            ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(vpnctl::client::EXIT_USAGE))
        }
    }
}
