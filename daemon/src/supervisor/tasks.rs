//! Starting the data plane's tasks and thread under the root's supervision: each reports to
//! the root when it fails (a panic, or a return from a loop that should run until cancelled),
//! and the root restarts it (see [`super::restart`]).

use crate::dataplane::handshake::HandshakeQueue;
use crate::dataplane::tasks::{panic_message, Task};
use crate::dataplane::udp::UdpSockets;
use crate::dataplane::{inbound, outbound, DataPlane};
use crate::vocab::RootMsg;
use futures::FutureExt;
use ractor::ActorRef;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use tokio::task::JoinHandle;

/// Spawns `fut` as data-plane task `task`. If it panics, or ends with `Some(error)`, the root
/// hears of it; `None` means it ended and reported why on its own.
fn spawn_supervised<F>(root: &ActorRef<RootMsg>, task: Task, fut: F) -> JoinHandle<()>
where
    F: Future<Output = Option<String>> + Send + 'static,
{
    let root = root.clone();
    tokio::spawn(async move {
        // The task's state is its own buffers (dropped here) and the shared data plane, whose
        // locks unwinding releases: nothing is left half-changed for a restarted task.
        let error = match AssertUnwindSafe(fut).catch_unwind().await {
            Ok(None) => return,
            Ok(Some(e)) => e,
            Err(payload) => panic_message(&*payload),
        };
        let id = Some(tokio::task::id());
        let _ = root.cast(RootMsg::DataPlaneFailed { task, id, error });
    })
}

/// Starts the receive task of one socket family of `udp`.
pub(super) fn spawn_receive(
    dp: &Arc<DataPlane>,
    udp: &Arc<UdpSockets>,
    root: &ActorRef<RootMsg>,
    task: Task,
) -> JoinHandle<()> {
    let family = match task {
        Task::ReceiveV6 => inbound::Family::V6,
        _ => inbound::Family::V4,
    };
    let run = inbound::run(dp.clone(), udp.clone(), family);
    spawn_supervised(root, task, async move {
        run.await;
        Some("the receive loop stopped".to_string())
    })
}

/// Starts the receive tasks for a set of sockets.
pub(crate) fn spawn_inbound(
    dp: &Arc<DataPlane>,
    udp: &Arc<UdpSockets>,
    root: &ActorRef<RootMsg>,
) -> Vec<(Task, JoinHandle<()>)> {
    let mut v = Vec::new();
    if udp.v4.is_some() {
        v.push((
            Task::ReceiveV4,
            spawn_receive(dp, udp, root, Task::ReceiveV4),
        ));
    }
    if udp.v6.is_some() {
        v.push((
            Task::ReceiveV6,
            spawn_receive(dp, udp, root, Task::ReceiveV6),
        ));
    }
    v
}

/// Starts the send task. When it ends on its own (the TUN is gone or keeps failing) the root
/// hears why as [`RootMsg::TunClosed`]; a panic is a [`RootMsg::DataPlaneFailed`].
pub(super) fn spawn_outbound(dp: &Arc<DataPlane>, root: &ActorRef<RootMsg>) -> JoinHandle<()> {
    let dp = dp.clone();
    let to_root = root.clone();
    spawn_supervised(root, Task::Send, async move {
        let end = outbound::run(dp).await;
        let _ = to_root.cast(RootMsg::TunClosed(end));
        None
    })
}

/// Starts the handshake worker thread; if it panics, the root hears of it.
pub(super) fn start_handshake_worker(
    dp: &Arc<DataPlane>,
    root: &ActorRef<RootMsg>,
) -> std::io::Result<()> {
    let root = root.clone();
    HandshakeQueue::start_worker(dp, move |error| {
        let _ = root.cast(RootMsg::DataPlaneFailed {
            task: Task::Handshake,
            id: None,
            error,
        });
    })?;
    Ok(())
}
