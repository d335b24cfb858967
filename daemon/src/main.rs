//! The `vpnd` binary.
//!
//! Two ways to start:
//! - `vpnd --config FILE`: everything comes from the file; runs in the foreground.
//! - `vpnd [-f|--foreground] INTERFACE`: a drop-in for `wireguard-go INTERFACE`. Creates the
//!   interface (no addresses, MTU 1420, up) with no private key and no peers, to be configured
//!   through the UAPI socket `/var/run/wireguard/INTERFACE.sock` by `wg` or `wg-quick`.
//!   Without `-f` it detaches once ready (see `vpnd::detach`).

use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;
use vpnd::logging::{self, LogFormat};

/// vpnd — a WireGuard-compatible userspace VPN daemon.
#[derive(Debug, Parser)]
#[command(
    version,
    about,
    override_usage = "vpnd --config FILE [OPTIONS]\n       vpnd [-f|--foreground] [OPTIONS] INTERFACE"
)]
struct Cli {
    /// Configuration file (YAML, or TOML by extension).
    #[arg(
        short,
        long,
        value_name = "FILE",
        required_unless_present = "interface",
        conflicts_with = "interface"
    )]
    config: Option<PathBuf>,
    /// Without a configuration file: create INTERFACE and take its configuration from `wg` or
    /// `wg-quick` through the UAPI socket /var/run/wireguard/INTERFACE.sock, as wireguard-go
    /// does. Addresses, MTU and routes are left to `ip` (wg-quick sets them).
    #[arg(value_name = "INTERFACE")]
    interface: Option<String>,
    /// Stay in the foreground (with INTERFACE; with --config vpnd always does). Without it,
    /// vpnd returns once the interface and the UAPI socket are ready and keeps running in the
    /// background, logging to $VPND_LOG_FILE if set.
    #[arg(short, long)]
    foreground: bool,
    /// Validate the configuration and exit (0 valid, 1 invalid).
    #[arg(long, requires = "config")]
    check: bool,
    /// Log level or filter (e.g. `debug`, `vpnd=trace`); overrides RUST_LOG.
    #[arg(long, value_name = "LEVEL")]
    log_level: Option<String>,
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

fn main() -> ExitCode {
    limit_malloc_arenas();
    let cli = Cli::parse();
    let uapi_dir = PathBuf::from(vpnd::uapi::DEFAULT_DIR);

    if let Some(name) = &cli.interface {
        if !cli.foreground {
            if let Err(e) = vpnd::config::without_file(name) {
                eprintln!("vpnd: {e}");
                return ExitCode::from(1);
            }
            let args: Vec<_> = std::env::args_os().skip(1).collect();
            let socket = vpnd::uapi::socket_path(&uapi_dir, name);
            return match vpnd::detach::spawn_and_wait(args, &socket) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("vpnd: {e}");
                    ExitCode::from(1)
                }
            };
        }
    }

    let log_file = match logging::open_log_file() {
        Ok(f) => f,
        Err(e) => {
            eprintln!("vpnd: {e}");
            return ExitCode::from(1);
        }
    };
    logging::init_with(cli.log_level.as_deref(), cli.log_format, log_file);

    let (config, config_path) = match (&cli.config, &cli.interface) {
        (Some(path), _) => {
            let config = match vpnd::config::load(path) {
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
                println!("{}: configuration is valid", path.display());
                return ExitCode::SUCCESS;
            }
            (config, Some(path.clone()))
        }
        (None, Some(name)) => match vpnd::config::without_file(name) {
            Ok(c) => (c, None),
            Err(e) => {
                eprintln!("vpnd: {e}");
                return ExitCode::from(1);
            }
        },
        (None, None) => unreachable!("clap requires --config or INTERFACE"),
    };
    let configless = config_path.is_none();
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
        config_path,
        timer_divisor: divisor,
        uapi_dir: Some(uapi_dir),
        configless,
    };
    // A detached child tells its parent it is ready by letting go of stderr.
    let ready = vpnd::detach::is_child().then(|| {
        let (tx, rx) = tokio::sync::oneshot::channel();
        rt.spawn(async move {
            if rx.await.is_ok() {
                tracing::info!("ready; detached from the starting process");
                vpnd::detach::release_parent();
            }
        });
        tx
    });
    let result = rt.block_on(vpnd::run(config, options, shutdown_signal(), ready));
    // Do not wait for stray blocking tasks (e.g. a resolver call) at exit.
    rt.shutdown_timeout(std::time::Duration::from_millis(100));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            // Once, not twice: a plain line only where the log line above is not one.
            if !logging::errors_shown_on_stderr() {
                eprintln!("vpnd: {e}");
            }
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

/// Caps glibc's malloc at two arenas. By default every thread that allocates may get an arena
/// of its own (up to 8 per core); peers start concurrently on the runtime's workers, so their
/// state was spread over several arenas, each keeping its own free space resident.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes an allocator tunable; called before any thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}
