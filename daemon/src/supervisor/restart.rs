//! Restart policy: what the root does when a child fails. A peer's actor is restarted alone
//! and, past the intensity limit, marked failed; a control-plane actor is restarted; a
//! data-plane task is restarted and, past the limit, the daemon stops (exit status 1) so the
//! service manager can start it afresh.

use super::{spawn_control, spawn_uapi, tasks, Root, RootState};
use crate::actors::config::{ConfigActor, ConfigArgs};
use crate::dataplane::tasks::Task;
use crate::vocab::RootMsg;
use ractor::{Actor, ActorCell, ActorRef};
use std::time::{Duration, Instant};

/// Restart intensity: more than this many restarts of one child within [`RESTART_WINDOW`]
/// gives up on it (a peer is marked failed; a data-plane task stops the daemon).
pub const MAX_RESTARTS: usize = 5;
/// Window of the restart intensity limit.
pub const RESTART_WINDOW: Duration = Duration::from_secs(60);

/// Recent failures of one child, for the intensity limit.
#[derive(Debug, Default, Clone)]
pub struct Intensity {
    times: Vec<Instant>,
}

impl Intensity {
    /// Records a failure at `now`; whether the child may be restarted (at most
    /// [`MAX_RESTARTS`] failures within [`RESTART_WINDOW`]).
    pub fn allow_restart(&mut self, now: Instant) -> bool {
        self.times
            .retain(|t| now.saturating_duration_since(*t) < RESTART_WINDOW);
        self.times.push(now);
        self.times.len() <= MAX_RESTARTS
    }
}

/// Handles a failed data-plane task: restarts it, or stops the daemon past the limit.
pub(super) fn dataplane_failed(
    myself: &ActorRef<RootMsg>,
    st: &mut RootState,
    task: Task,
    id: Option<tokio::task::Id>,
    error: String,
) {
    // A report from a task already replaced (new sockets after a listen-port change) or
    // aborted: nothing to restart.
    let current = match task {
        Task::Send => id == Some(st.outbound.id()),
        Task::ReceiveV4 | Task::ReceiveV6 => st
            .inbound
            .iter()
            .any(|(t, h)| *t == task && Some(h.id()) == id),
        Task::Handshake => true,
    };
    if !current {
        tracing::debug!(%task, %error, "stale data-plane failure report ignored");
        return;
    }
    let allowed = st
        .dataplane_failures
        .entry(task)
        .or_default()
        .allow_restart(Instant::now());
    if !allowed {
        tracing::error!(%task, %error,
            "data-plane task failed more than {MAX_RESTARTS} times in {RESTART_WINDOW:?}; stopping");
        myself.stop(Some(format!(
            "data-plane task {task} failed more than {MAX_RESTARTS} times in {RESTART_WINDOW:?}: {error}"
        )));
        return;
    }
    let dp = st.daemon.dp.clone();
    let total = dp.restarts.record(task);
    tracing::error!(%task, %error, restarts = total, "data-plane task failed; restarting it");
    match task {
        Task::Send => st.outbound = tasks::spawn_outbound(&dp, myself),
        Task::ReceiveV4 | Task::ReceiveV6 => {
            let udp = dp.udp().clone();
            let h = tasks::spawn_receive(&dp, &udp, myself, task);
            if let Some(slot) = st.inbound.iter_mut().find(|(t, _)| *t == task) {
                slot.1 = h;
            }
        }
        Task::Handshake => {
            if let Err(e) = tasks::start_handshake_worker(&dp, myself) {
                tracing::error!(error = %e, "the handshake worker could not be restarted; stopping");
                myself.stop(Some(format!("restarting the handshake worker: {e}")));
            }
        }
    }
}

impl Root {
    /// Handles a failed actor: restarts it, or gives up on it (see the module's comment).
    pub(super) async fn child_failed(
        &self,
        myself: &ActorRef<RootMsg>,
        st: &mut RootState,
        cell: ActorCell,
        err: String,
    ) {
        let id = cell.get_id();
        if let Some(entry) = st.peers.remove(&id) {
            let too_many = !st
                .restart_times
                .entry(entry.key)
                .or_default()
                .allow_restart(Instant::now());
            let total = {
                let mut r = st.daemon.restarts.write();
                let n = r.entry(entry.key).or_default();
                if !too_many {
                    *n += 1;
                }
                *n
            };
            if too_many {
                tracing::error!(peer = %entry.key, error = %err,
                    "peer actor failed more than {MAX_RESTARTS} times in {RESTART_WINDOW:?}; marking it failed");
                st.daemon.failed.write().insert(entry.key);
                st.daemon.dp.router.remove_key(&entry.key);
                return;
            }
            tracing::error!(peer = %entry.key, error = %err, restarts = total, "peer actor failed; restarting it");
            let config = st
                .daemon
                .config
                .read()
                .peers
                .iter()
                .find(|p| p.public_key == entry.key)
                .cloned();
            if let Some(pc) = config {
                let dp = st.daemon.dp.clone();
                Root::spawn_peer(myself, &mut st.peers, &dp, pc).await;
            }
        } else if st.control.as_ref().is_some_and(|c| c.get_id() == id) {
            tracing::error!(error = %err, "control server failed; restarting it");
            let config = st.daemon.config.read().clone();
            match spawn_control(&myself.get_cell(), &config, &st.daemon).await {
                Ok(c) => st.control = Some(c),
                Err(e) => {
                    tracing::error!(error = %e, "control server could not be restarted");
                    st.control = None;
                }
            }
        } else if st.uapi.as_ref().is_some_and(|c| c.get_id() == id) {
            tracing::error!(error = %err, "UAPI server failed; restarting it");
            let config = st.daemon.config.read().clone();
            st.uapi = None;
            if let Some(dir) = st.uapi_dir.clone() {
                match spawn_uapi(&myself.get_cell(), &dir, &config, &st.daemon).await {
                    Ok(c) => st.uapi = Some(c),
                    Err(e) => tracing::error!(error = %e, "UAPI server could not be restarted"),
                }
            }
        } else if st.nat.as_ref().is_some_and(|n| n.get_id() == id) {
            super::nat::nat_failed(myself, st, err).await;
        } else if st.config_actor.get_id() == id {
            tracing::error!(error = %err, "config actor failed; restarting it");
            let config = st.daemon.config.read().clone();
            let path = config.source_path.clone();
            match Actor::spawn_linked(
                None,
                ConfigActor,
                ConfigArgs {
                    path,
                    initial: config,
                    root: Some(myself.clone()),
                },
                myself.get_cell(),
            )
            .await
            {
                Ok((a, _)) => st.config_actor = a,
                Err(e) => tracing::error!(error = %e, "config actor could not be restarted"),
            }
        } else {
            tracing::error!(error = %err, "essential actor failed; stopping");
            myself.stop(Some(format!("child failed: {err}")));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intensity_allows_max_restarts_per_window() {
        let mut i = Intensity::default();
        let t0 = Instant::now();
        for n in 0..MAX_RESTARTS {
            assert!(i.allow_restart(t0 + Duration::from_secs(n as u64)), "{n}");
        }
        assert!(
            !i.allow_restart(t0 + Duration::from_secs(10)),
            "one too many"
        );
        // Failures older than the window no longer count.
        let later = t0 + RESTART_WINDOW + Duration::from_secs(11);
        assert!(i.allow_restart(later));
    }
}
