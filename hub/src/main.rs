//! `vpnhub`: the rendezvous server for vpnd peers (docs/hub.md).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

/// vpnhub: STUN, registration with proof of key, and sealed signaling between vpnd peers.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// Configuration file (YAML; TOML if the name ends in .toml).
    #[arg(long, short = 'c', value_name = "FILE")]
    config: PathBuf,
    /// Check the configuration and exit: 0 if it loads, 1 with every problem listed if not.
    #[arg(long)]
    check: bool,
    /// Seconds between `stats` log lines (0: none).
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    stats_interval: u64,
    /// Serve the counters as plain-text HTTP on this address (e.g. 127.0.0.1:9478).
    #[arg(long, value_name = "ADDR")]
    stats_listen: Option<std::net::SocketAddr>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("VPNHUB_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let config = match vpnhub::config::load(&cli.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    for w in &config.warnings {
        tracing::warn!("{w}");
    }
    if cli.check {
        println!("{}: ok", cli.config.display());
        return ExitCode::SUCCESS;
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("vpnhub: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let opts = vpnhub::net::Options {
        stats_interval: Duration::from_secs(cli.stats_interval),
        stats_listen: cli.stats_listen,
    };
    match rt.block_on(vpnhub::net::run(config, Some(cli.config), opts)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("vpnhub: {e}");
            ExitCode::FAILURE
        }
    }
}
