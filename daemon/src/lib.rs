//! `vpnd`: the daemon that drives the sans-IO [`protocol`] crate over a TUN device and UDP.
//!
//! [`run`] starts the supervision tree for a configuration and stops it when `shutdown`
//! completes, so tests can drive a daemon in-process as well as through the binary.

pub mod accept;
pub mod actors;
pub mod config;
pub mod control;
pub mod dataplane;
pub mod detach;
pub mod instance_lock;
pub mod kernel_link;
pub mod logging;
pub mod peer_cred;
pub mod reconfig;
pub mod state;
pub mod supervisor;
pub mod uapi;
pub mod unix_group;
pub mod vocab;

use crate::config::Config;
use crate::supervisor::{Root, RootArgs};
use crate::vocab::Daemon;
use ractor::Actor;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Environment variable that divides every protocol timer (tests only; see
/// docs/configuration.md, "the test-only timer divisor").
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
    /// The interface was deleted from outside while a configuration file said it should exist.
    #[error(
        "interface {0} was deleted from outside (ip link del?); stopping with an error so the \
         service manager restarts vpnd"
    )]
    InterfaceDeleted(String),
}

/// Options beyond the configuration file.
#[derive(Debug, Default, Clone)]
pub struct RunOptions {
    /// The file the configuration came from (for reloads).
    pub config_path: Option<PathBuf>,
    /// Divides every protocol timer (1 = WireGuard's values).
    pub timer_divisor: u32,
    /// Serve WireGuard's cross-platform UAPI on `<dir>/<interface>.sock` (the binary uses
    /// [`uapi::DEFAULT_DIR`]); `None` serves none.
    pub uapi_dir: Option<PathBuf>,
    /// Started without a configuration file (`vpnd <interface>`, configured through the UAPI
    /// alone): addresses and routes are managed outside the daemon (`wg-quick` does it), so
    /// no route is installed for allowed IPs and address changes are refused; and a UAPI
    /// socket that cannot be bound is fatal (with a file it is only logged).
    pub configless: bool,
}

/// Runs the daemon until `shutdown` completes or its interface is deleted from outside; tears
/// everything down before returning.
pub async fn run(
    config: Config,
    options: RunOptions,
    shutdown: impl Future<Output = ()>,
    ready: Option<tokio::sync::oneshot::Sender<Arc<Daemon>>>,
) -> Result<(), RunError> {
    // Before anything touches the interface: a second vpnd must not delete a live one.
    let _lock = instance_lock::acquire(&config.interface.name)
        .map_err(|e| RunError::Startup(e.to_string()))?;
    let link_gone = Arc::new(tokio::sync::Notify::new());
    let interface = config.interface.name.clone();
    let configless = options.configless;
    let args = RootArgs {
        config,
        config_path: options.config_path,
        timer_divisor: options.timer_divisor.max(1),
        ready,
        uapi_dir: options.uapi_dir,
        configless: options.configless,
        link_gone: link_gone.clone(),
    };
    let (root, mut join) = Actor::spawn(Some("vpnd".into()), Root, args)
        .await
        .map_err(|e| RunError::Startup(startup_error_message(&e)))?;
    let (reason, outcome) = tokio::select! {
        _ = shutdown => ("shutdown", Ok(())),
        // `ip link del`. Without a configuration file that is how `wg-quick down` ends the
        // daemon: a clean exit. With one, the interface vpnd was told to keep is gone: an
        // error, so `Restart=on-failure` brings the tunnel back.
        _ = link_gone.notified() => (
            "interface deleted",
            if configless { Ok(()) } else { Err(RunError::InterfaceDeleted(interface)) },
        ),
        r = &mut join => return Err(RunError::Died(format!("{r:?}"))),
    };
    tracing::info!(reason, "shutting down");
    let _ = root
        .stop_and_wait(Some(reason.into()), Some(Duration::from_millis(1800)))
        .await;
    outcome
}

/// The message of a failed actor start-up, without ractor's "Actor panicked during startup"
/// wrapping (once per level of the tree): the innermost error is what the user can act on.
pub fn startup_error_message(e: &(dyn std::error::Error + 'static)) -> String {
    let mut err: &(dyn std::error::Error + 'static) = e;
    loop {
        match err.downcast_ref::<ractor::SpawnErr>() {
            Some(ractor::SpawnErr::StartupFailed(inner)) => err = inner.as_ref(),
            Some(other) => return other.to_string(),
            None => return err.to_string(),
        }
    }
}

#[cfg(test)]
mod startup_error_tests {
    use super::startup_error_message;
    use ractor::SpawnErr;

    #[test]
    fn nested_startup_failures_give_the_innermost_message() {
        let inner = SpawnErr::StartupFailed("control socket /x: no such group \"g\"".into());
        let outer = SpawnErr::StartupFailed(Box::new(inner));
        assert_eq!(
            startup_error_message(&outer),
            "control socket /x: no such group \"g\""
        );
    }
}
