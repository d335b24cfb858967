//! The `vpnd` binary.

use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;
use vpnd::logging::{self, LogFormat};

/// vpnd — a WireGuard-compatible userspace VPN daemon.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// Configuration file (YAML, or TOML by extension).
    #[arg(short, long, value_name = "FILE")]
    config: PathBuf,
    /// Validate the configuration and exit (0 valid, 1 invalid).
    #[arg(long)]
    check: bool,
    /// Log level or filter (e.g. `debug`, `vpnd=trace`); overrides RUST_LOG.
    #[arg(long, value_name = "LEVEL")]
    log_level: Option<String>,
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(cli.log_level.as_deref(), cli.log_format);
    let config = match vpnd::config::load(&cli.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(1);
        }
    };
    for w in &config.warnings {
        tracing::warn!("{w}");
    }
    if cli.check {
        println!("{}: configuration is valid", cli.config.display());
        return ExitCode::SUCCESS;
    }
    let divisor = std::env::var(vpnd::TIMER_DIVISOR_ENV)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    if divisor > 1 {
        tracing::warn!(
            divisor,
            "protocol timers scaled down: test mode, not for production"
        );
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("vpnd")
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("vpnd: cannot start runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let options = vpnd::RunOptions {
        config_path: Some(cli.config.clone()),
        timer_divisor: divisor,
    };
    let result = rt.block_on(vpnd::run(config, options, shutdown_signal(), None));
    // Do not wait for stray blocking tasks (e.g. a resolver call) at exit.
    rt.shutdown_timeout(std::time::Duration::from_millis(100));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("vpnd: {e}");
            ExitCode::from(1)
        }
    }
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    use futures::StreamExt;
    use signal_hook::consts::{SIGINT, SIGTERM};
    match signal_hook_tokio::Signals::new([SIGINT, SIGTERM]) {
        Ok(mut s) => {
            if let Some(sig) = s.next().await {
                tracing::info!(signal = sig, "signal received");
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot install signal handlers; use Ctrl-C");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
