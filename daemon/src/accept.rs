//! The accept loop shared by the daemon's local socket servers (JSON-RPC control and WireGuard
//! UAPI): a cap on concurrent clients, client tasks that end with their server, and the checks
//! that keep file descriptors for the daemon's own needs.

use interprocess::local_socket::tokio::{Listener, Stream};
use interprocess::local_socket::traits::tokio::Listener as _;
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tokio::task::{AbortHandle, JoinSet};

/// Most clients one server serves at once. Each holds a file descriptor; past this, the client
/// idle the longest is closed to make room (and counted), so idle or stuck connections cannot
/// exhaust the process's descriptors and starve reloads, the TUN and the sockets, nor lock the
/// operator's `vpnctl` out.
pub const MAX_CLIENTS: usize = 256;

/// How long a new connection waits for the slot of an evicted client before it is closed.
const EVICTION_WAIT: Duration = Duration::from_millis(500);

/// Descriptors always left for the daemon itself (reading the configuration on reload,
/// netlink, new UDP sockets, logs) whatever the clients do.
pub const FD_RESERVE: u64 = 128;

/// The per-server limit under a soft descriptor limit of `nofile`: [`MAX_CLIENTS`], or less
/// when the limit is so low that two full servers would eat into [`FD_RESERVE`].
pub fn max_clients(nofile: u64) -> usize {
    let room = nofile.saturating_sub(FD_RESERVE) / 2;
    (room as usize).clamp(1, MAX_CLIENTS)
}

/// How many clients a server may have, and how many it had to close for lack of room.
#[derive(Debug)]
pub struct ClientLimit {
    max: usize,
    slots: Arc<Semaphore>,
    refused: AtomicU64,
}

impl ClientLimit {
    /// A limit of `max` concurrent clients.
    pub fn new(max: usize) -> ClientLimit {
        ClientLimit {
            max,
            slots: Arc::new(Semaphore::new(max)),
            refused: AtomicU64::new(0),
        }
    }

    /// Connections closed because the server was full (evicted idle clients, or newcomers
    /// that found no idle client to replace).
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    fn count_refused(&self, what: &str) {
        let n = self.refused.fetch_add(1, Ordering::Relaxed) + 1;
        if n.is_power_of_two() {
            tracing::warn!(
                refused = n,
                max = self.max,
                "{what}: too many clients; closing the longest idle"
            );
        }
    }
}

/// What a client tells its server: whether it is waiting for a request (evictable) or busy.
#[derive(Debug, Clone)]
pub struct Activity {
    /// Milliseconds since `epoch` when the client became idle; 0 while busy.
    idle_since: Arc<AtomicU64>,
    epoch: Instant,
}

impl Activity {
    /// The client waits for its next request: it may be closed to make room.
    pub fn idle(&self) {
        let ms = self.epoch.elapsed().as_millis() as u64 + 1;
        self.idle_since.store(ms, Ordering::Relaxed);
    }

    /// The client is handling a request: it is not closed for a newcomer.
    pub fn busy(&self) {
        self.idle_since.store(0, Ordering::Relaxed);
    }
}

/// Accepts clients until the returned future is dropped (its task aborted), serving each with
/// `handle` in a task that ends with the server. `what` names the server in logs.
pub async fn serve<F, Fut>(
    listener: Listener,
    what: &'static str,
    limit: Arc<ClientLimit>,
    handle: F,
) where
    F: Fn(Stream, Activity) -> Fut,
    Fut: Future<Output = std::io::Result<()>> + Send + 'static,
{
    let epoch = Instant::now();
    // Owned here: dropping the server drops the set, which aborts every client task.
    let mut clients = JoinSet::new();
    let mut activity: HashMap<tokio::task::Id, (Arc<AtomicU64>, AbortHandle)> = HashMap::new();
    loop {
        tokio::select! {
            Some(done) = clients.join_next_with_id(), if !clients.is_empty() => {
                let id = match done {
                    Ok((id, ())) => id,
                    Err(e) => e.id(),
                };
                activity.remove(&id);
            }
            accepted = listener.accept() => match accepted {
                Ok(stream) => {
                    let slot = match limit.slots.clone().try_acquire_owned() {
                        Ok(slot) => Some(slot),
                        Err(_) => make_room(&limit, &mut activity, what).await,
                    };
                    let Some(slot) = slot else {
                        limit.count_refused(what);
                        continue;
                    };
                    let idle_since = Arc::new(AtomicU64::new(0));
                    let client = handle(stream, Activity { idle_since: idle_since.clone(), epoch });
                    let abort = clients.spawn(async move {
                        let _slot = slot;
                        if let Err(e) = client.await {
                            tracing::debug!(error = %e, "{what} client ended");
                        }
                    });
                    activity.insert(abort.id(), (idle_since, abort));
                }
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning on a full table.
                    tracing::warn!(error = %e, "{what} accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
}

/// The server is full: closes the client idle the longest and takes its slot. `None` when every
/// client is busy (or the slot did not free up in time).
async fn make_room(
    limit: &ClientLimit,
    activity: &mut HashMap<tokio::task::Id, (Arc<AtomicU64>, AbortHandle)>,
    what: &str,
) -> Option<tokio::sync::OwnedSemaphorePermit> {
    let oldest = activity
        .iter()
        .filter_map(|(id, (since, _))| {
            let since = since.load(Ordering::Relaxed);
            (since != 0).then_some((since, *id))
        })
        .min()?;
    if let Some((_, abort)) = activity.remove(&oldest.1) {
        abort.abort();
        limit.count_refused(what);
    }
    tokio::time::timeout(EVICTION_WAIT, limit.slots.clone().acquire_owned())
        .await
        .ok()?
        .ok()
}

/// Whether the other end of `stream` has closed its socket (not only its write half, which a
/// client may do after sending its request). A request from a client that has gone (timed out
/// and left, say) is not applied: nobody would learn its outcome.
pub fn peer_gone(stream: &Stream) -> bool {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::{AsFd, AsRawFd};
        let fd = match stream {
            Stream::UdSocket(s) => s.as_fd().as_raw_fd(),
        };
        let mut pfd = libc::pollfd {
            fd,
            events: 0,
            revents: 0,
        };
        // SAFETY: one valid pollfd, zero timeout.
        let n = unsafe { libc::poll(&mut pfd, 1, 0) };
        // A Unix stream socket reports POLLHUP once both directions are shut down, which is
        // what the peer's close does; its shutdown(SHUT_WR) gives only POLLRDHUP.
        n == 1 && pfd.revents & libc::POLLHUP != 0
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = stream;
        false
    }
}

/// Raises the soft limit on open files to the hard limit. The default soft limit (1024 under
/// systemd) is too small for a daemon with many peers, sockets and control clients; the hard
/// limit is what the administrator allows. Returns the soft limit in force afterwards.
pub fn raise_nofile_limit() -> u64 {
    #[cfg(unix)]
    {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: a valid out-pointer for getrlimit.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
            return 1024;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            // SAFETY: a valid rlimit for setrlimit.
            if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
                return raised.rlim_cur;
            }
        }
        lim.rlim_cur
    }
    #[cfg(not(unix))]
    {
        u64::MAX
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn low_descriptor_limits_shrink_the_cap_but_keep_the_reserve() {
        assert_eq!(max_clients(1 << 20), MAX_CLIENTS);
        assert_eq!(max_clients(1024), MAX_CLIENTS);
        assert_eq!(max_clients(512), 192);
        assert_eq!(max_clients(200), 36);
        assert_eq!(max_clients(10), 1);
    }
}
