//! `vpnd`: the daemon that drives the sans-IO [`protocol`] crate over a TUN device and UDP.
//!
//! [`run`] starts the supervision tree for a configuration and stops it when `shutdown`
//! completes, so tests can drive a daemon in-process as well as through the binary.

pub mod actors;
pub mod config;
pub mod control;
pub mod dataplane;
pub mod logging;
pub mod reconfig;
pub mod state;
pub mod supervisor;

use crate::config::Config;
use crate::state::Daemon;
use crate::supervisor::{Root, RootArgs};
use ractor::Actor;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Environment variable that divides every protocol timer (tests only; see docs/operations.md).
pub const TIMER_DIVISOR_ENV: &str = "VPND_TEST_TIMER_DIVISOR";

/// Why the daemon could not run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Start-up failed (interface, sockets, control socket).
    #[error("start-up failed: {0}")]
    Startup(String),
    /// The supervision tree stopped on its own.
    #[error("the daemon stopped unexpectedly: {0}")]
    Died(String),
}

/// Options beyond the configuration file.
#[derive(Debug, Default, Clone)]
pub struct RunOptions {
    /// The file the configuration came from (for reloads).
    pub config_path: Option<PathBuf>,
    /// Divides every protocol timer (1 = WireGuard's values).
    pub timer_divisor: u32,
}

/// Runs the daemon until `shutdown` completes; tears everything down before returning.
pub async fn run(
    config: Config,
    options: RunOptions,
    shutdown: impl Future<Output = ()>,
    ready: Option<tokio::sync::oneshot::Sender<Arc<Daemon>>>,
) -> Result<(), RunError> {
    let args = RootArgs {
        config,
        config_path: options.config_path,
        timer_divisor: options.timer_divisor.max(1),
        ready,
    };
    let (root, mut join) = Actor::spawn(Some("vpnd".into()), Root, args)
        .await
        .map_err(|e| RunError::Startup(e.to_string()))?;
    tokio::select! {
        _ = shutdown => {
            tracing::info!("shutting down");
            let _ = root
                .stop_and_wait(Some("shutdown".into()), Some(Duration::from_millis(1800)))
                .await;
            Ok(())
        }
        r = &mut join => Err(RunError::Died(format!("{r:?}"))),
    }
}
