//! The data plane's long-running tasks and threads, as their supervisor names and counts them.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

/// One supervised task or thread of the data plane.
///
/// Crypto workers are not listed: a panic in one propagates to the send task that handed it
/// the batch (`ThreadPool::install` resumes it there), so it counts as a send-task failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Task {
    /// The receive loop of the IPv4 socket.
    ReceiveV4,
    /// The receive loop of the IPv6 socket.
    ReceiveV6,
    /// The send loop (TUN → seal → UDP).
    Send,
    /// The handshake worker thread.
    Handshake,
}

impl Task {
    /// Every task, in the order of [`TaskRestarts`]' slots.
    pub const ALL: [Task; 4] = [
        Task::ReceiveV4,
        Task::ReceiveV6,
        Task::Send,
        Task::Handshake,
    ];

    /// Stable snake_case name (the key in `interface.dataplane_restarts`).
    pub fn name(self) -> &'static str {
        match self {
            Task::ReceiveV4 => "receive_v4",
            Task::ReceiveV6 => "receive_v6",
            Task::Send => "send",
            Task::Handshake => "handshake",
        }
    }

    /// The task a name stands for (the fault-injection RPC takes names).
    pub fn from_name(name: &str) -> Option<Task> {
        Task::ALL.into_iter().find(|t| t.name() == name)
    }

    fn slot(self) -> usize {
        self as usize
    }
}

impl std::fmt::Display for Task {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Restarts of each data-plane task since the daemon started.
#[derive(Debug, Default)]
pub struct TaskRestarts {
    slots: [AtomicU64; Task::ALL.len()],
}

impl TaskRestarts {
    /// Counts one restart of `task`; returns the new total for it.
    pub fn record(&self, task: Task) -> u64 {
        self.slots[task.slot()].fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Restarts of `task`.
    pub fn get(&self, task: Task) -> u64 {
        self.slots[task.slot()].load(Ordering::Relaxed)
    }

    /// Every task's count, by name.
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        Task::ALL
            .into_iter()
            .map(|t| (t.name().to_string(), self.get(t)))
            .collect()
    }
}

/// The text of a panic payload, for the log.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        format!("panicked: {s}")
    } else if let Some(s) = payload.downcast_ref::<String>() {
        format!("panicked: {s}")
    } else {
        "panicked".to_string()
    }
}

/// Test-only fault points (feature `fault-injection`): a task whose flag is set panics the next
/// time it has work, so supervision can be tested end to end.
#[cfg(feature = "fault-injection")]
#[derive(Debug, Default)]
pub struct FaultPoints {
    armed: [std::sync::atomic::AtomicBool; Task::ALL.len()],
}

#[cfg(feature = "fault-injection")]
impl FaultPoints {
    /// Makes `task` panic when it next has work.
    pub fn arm(&self, task: Task) {
        self.armed[task.slot()].store(true, Ordering::Relaxed);
    }

    /// Panics if `task` was armed (once).
    pub fn trip(&self, task: Task) {
        if self.armed[task.slot()].swap(false, Ordering::Relaxed) {
            panic!("fault injection: {task} task panics");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_counts_are_per_task() {
        for t in Task::ALL {
            assert_eq!(Task::from_name(t.name()), Some(t));
        }
        assert_eq!(Task::from_name("nope"), None);
        let r = TaskRestarts::default();
        assert_eq!(r.record(Task::Send), 1);
        assert_eq!(r.record(Task::Send), 2);
        r.record(Task::Handshake);
        let s = r.snapshot();
        assert_eq!(s["send"], 2);
        assert_eq!(s["handshake"], 1);
        assert_eq!(s["receive_v4"], 0);
        assert_eq!(s.len(), 4);
    }

    #[test]
    fn panic_messages_are_readable() {
        let p = std::panic::catch_unwind(|| panic!("boom {}", 1)).unwrap_err();
        assert_eq!(panic_message(&*p), "panicked: boom 1");
        let p = std::panic::catch_unwind(|| panic!("static")).unwrap_err();
        assert_eq!(panic_message(&*p), "panicked: static");
    }
}
