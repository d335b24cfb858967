//! The handshake worker: cookie defence, rate limiting and the responder's DH work, on its own
//! thread so a flood of initiations never stalls the data path.

use crate::dataplane::DataPlane;
use parking_lot::{Mutex, RwLock};
use protocol::noise::cookie::CookieChecker;
use protocol::noise::device::DropReason;
use protocol::noise::handshake::{self, StaticIdentity};
use protocol::noise::messages::{Message, COOKIE_REPLY_LEN, INITIATION_LEN};
use protocol::noise::ratelimit::RateLimiter;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Pending handshake messages the queue holds before dropping.
pub const QUEUE_CAPACITY: usize = 1024;
/// Pending messages above which the device is under load (wireguard-go's threshold).
pub const UNDER_LOAD_THRESHOLD: usize = 128;
/// How long the under-load state lasts after the queue was last that deep.
pub const UNDER_LOAD_HOLD: Duration = Duration::from_secs(1);

/// One queued handshake message (fixed size: no allocation per message).
struct Job {
    src: SocketAddr,
    len: usize,
    bytes: [u8; INITIATION_LEN],
}

/// The queue in front of the worker, with the cookie checker and the rate limiter.
pub struct HandshakeQueue {
    tx: mpsc::Sender<Job>,
    rx: Mutex<Option<mpsc::Receiver<Job>>>,
    depth: AtomicUsize,
    /// Nanoseconds after `base` until which we are under load.
    under_load_until: AtomicU64,
    base: Instant,
    checker: RwLock<CookieChecker>,
    limiter: Mutex<RateLimiter>,
    /// Force the under-load state (tests).
    force_under_load: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for HandshakeQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HandshakeQueue")
            .field("depth", &self.depth.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl HandshakeQueue {
    /// A queue for the device whose identity is `identity`; `seed` feeds the cookie RNG.
    pub fn new(identity: &StaticIdentity, seed: [u8; 32]) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
        HandshakeQueue {
            tx,
            rx: Mutex::new(Some(rx)),
            depth: AtomicUsize::new(0),
            under_load_until: AtomicU64::new(0),
            base: Instant::now(),
            checker: RwLock::new(CookieChecker::new(identity.public_key(), seed)),
            limiter: Mutex::new(RateLimiter::new()),
            force_under_load: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Rebuilds the cookie checker after the private key changed.
    pub fn reset_identity(&self, identity: &StaticIdentity, seed: [u8; 32]) {
        *self.checker.write() = CookieChecker::new(identity.public_key(), seed);
    }

    /// Verifies mac1 of an initiation or response addressed to `identity`.
    pub fn checker_verify_mac1(&self, _identity: &StaticIdentity, msg: &[u8]) -> bool {
        self.checker.read().verify_mac1(msg)
    }

    /// Handshake messages waiting for the worker.
    pub fn depth(&self) -> usize {
        self.depth.load(Ordering::Relaxed)
    }

    /// Whether the cookie defence is on.
    pub fn is_under_load(&self, now: Instant) -> bool {
        if self.force_under_load.load(Ordering::Relaxed) {
            return true;
        }
        let until = self.under_load_until.load(Ordering::Relaxed);
        until != 0 && now.saturating_duration_since(self.base).as_nanos() as u64 <= until
    }

    /// Forces the under-load state on or off (for tests).
    pub fn set_forced_under_load(&self, on: bool) {
        self.force_under_load.store(on, Ordering::Relaxed);
    }

    /// Queues a handshake message for the worker (dropped, and counted, when the queue is full).
    pub fn submit<T>(&self, dp: &DataPlane<T>, msg: &[u8], src: SocketAddr, now: Instant) {
        let mut job = Job {
            src,
            len: msg.len().min(INITIATION_LEN),
            bytes: [0; INITIATION_LEN],
        };
        job.bytes[..job.len].copy_from_slice(&msg[..job.len]);
        let depth = self.depth.fetch_add(1, Ordering::Relaxed) + 1;
        if depth > UNDER_LOAD_THRESHOLD {
            let until = (now + UNDER_LOAD_HOLD).saturating_duration_since(self.base);
            self.under_load_until
                .store(until.as_nanos() as u64, Ordering::Relaxed);
        }
        if self.tx.try_send(job).is_err() {
            self.depth.fetch_sub(1, Ordering::Relaxed);
            dp.drops
                .inc(crate::dataplane::counters::Reason::HandshakeQueueFull);
        }
    }

    /// Processes the queued messages on the calling thread, as the worker would at `now`, and
    /// returns how many; none once the worker has started (it owns the queue then). For
    /// driving the data plane deterministically in tests and the fuzz target.
    pub fn process_queued<T>(dp: &DataPlane<T>, now: Instant) -> usize {
        let mut guard = dp.handshakes.rx.lock();
        let Some(rx) = guard.as_mut() else { return 0 };
        let mut n = 0;
        while let Ok(job) = rx.try_recv() {
            dp.handshakes.depth.fetch_sub(1, Ordering::Relaxed);
            if let Err(reason) = process(dp, &job, now) {
                dp.drops.inc(reason);
            }
            n += 1;
        }
        n
    }

    /// Starts the worker thread. It ends when the data plane is dropped. If it panics, it
    /// hands its queue back (so [`HandshakeQueue::start_worker`] can start a new worker on
    /// the same queue, losing at most the message it was working on) and calls `on_panic`
    /// with the panic message, on the dying thread.
    pub fn start_worker(
        dp: &Arc<DataPlane>,
        on_panic: impl FnOnce(String) + Send + 'static,
    ) -> std::io::Result<std::thread::JoinHandle<()>> {
        let rx = dp
            .handshakes
            .rx
            .lock()
            .take()
            .ok_or_else(|| std::io::Error::other("handshake worker already started"))?;
        let weak = Arc::downgrade(dp);
        std::thread::Builder::new()
            .name("vpnd-handshake".into())
            .spawn(move || {
                let mut rx = rx;
                // The worker's state is the queue and the shared data plane: the queue is
                // consistent between messages, and everything shared sits behind locks that
                // unwinding releases.
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    worker(&weak, &mut rx)
                }));
                if let Err(payload) = r {
                    if let Some(dp) = weak.upgrade() {
                        *dp.handshakes.rx.lock() = Some(rx);
                    }
                    on_panic(crate::dataplane::tasks::panic_message(&*payload));
                }
            })
    }

    /// Wakes the worker with an empty message (dropped as too short): lets an armed fault
    /// point fire without a real handshake.
    #[cfg(feature = "fault-injection")]
    pub fn poke(&self) {
        let job = Job {
            src: SocketAddr::from(([127, 0, 0, 1], 0)),
            len: 0,
            bytes: [0; INITIATION_LEN],
        };
        if self.tx.try_send(job).is_ok() {
            self.depth.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Nice value of the handshake thread: when a flood of handshake messages and the tunnels'
/// traffic compete for the CPU, the data plane goes first. Handshakes still get every idle
/// cycle, and under load the cookie defence keeps their queue short.
const HANDSHAKE_NICE: libc::c_int = 10;

/// Lowers the calling thread's scheduling priority to [`HANDSHAKE_NICE`] (best effort).
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: gettid has no preconditions; setpriority on our own thread id only changes
        // its nice value (threads have their own on Linux).
        let result = unsafe {
            let tid = libc::gettid();
            libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, HANDSHAKE_NICE)
        };
        if result != 0 {
            tracing::debug!(error = %std::io::Error::last_os_error(), "handshake thread keeps its priority");
        }
    }
}

fn worker(dp: &Weak<DataPlane>, rx: &mut mpsc::Receiver<Job>) {
    lower_priority();
    let mut last_gc = Instant::now();
    while let Some(job) = rx.blocking_recv() {
        let Some(dp) = dp.upgrade() else { return };
        dp.handshakes.depth.fetch_sub(1, Ordering::Relaxed);
        #[cfg(feature = "fault-injection")]
        dp.faults.trip(crate::dataplane::tasks::Task::Handshake);
        let now = Instant::now();
        if let Err(reason) = process(&dp, &job, now) {
            dp.drops.inc(reason);
            tracing::trace!(src = %job.src, %reason, "handshake message dropped");
        }
        if now.saturating_duration_since(last_gc) >= Duration::from_secs(1) {
            dp.handshakes.limiter.lock().gc(now);
            last_gc = now;
        }
    }
}

fn process<T>(dp: &DataPlane<T>, job: &Job, now: Instant) -> Result<(), DropReason> {
    let q = &dp.handshakes;
    let bytes = &job.bytes[..job.len];
    let src = job.src;
    let msg = Message::parse(bytes).map_err(DropReason::Malformed)?;
    if matches!(msg, Message::Initiation(_) | Message::Response(_)) && q.is_under_load(now) {
        if !q.checker.read().verify_mac2(bytes, &src, now) {
            let mut reply = [0u8; COOKIE_REPLY_LEN];
            let made = q.checker.write().create_reply(bytes, &src, now, &mut reply);
            if made.is_ok() {
                dp.udp().send_best_effort(&reply, src);
            }
            return Err(DropReason::CookieSent);
        }
        if !q.limiter.lock().allow(src.ip(), now) {
            return Err(DropReason::RateLimited);
        }
    }
    match msg {
        Message::Initiation(init) => {
            let identity = dp.identity.read().clone();
            let begun =
                handshake::begin_initiation(&identity, &init).map_err(DropReason::Handshake)?;
            let peer = dp.router.by_key(&begun.peer).ok_or(DropReason::Handshake(
                handshake::HandshakeError::UnknownPeer,
            ))?;
            peer.with_peer(&dp.udp(), |p| p.handle_initiation(&begun, src, now))
                .map_err(DropReason::Handshake)
        }
        Message::Response(resp) => {
            let peer = dp
                .router
                .by_index(resp.receiver())
                .ok_or(DropReason::UnknownIndex)?;
            peer.with_peer(&dp.udp(), |p| p.handle_response(&resp, src, now))
                .map_err(DropReason::Handshake)
        }
        Message::CookieReply(reply) => {
            let peer = dp
                .router
                .by_index(reply.receiver())
                .ok_or(DropReason::UnknownIndex)?;
            if peer.with_peer(&dp.udp(), |p| p.handle_cookie_reply(&reply, now)) {
                Ok(())
            } else {
                Err(DropReason::BadCookieReply)
            }
        }
        Message::Transport(_) => Ok(()),
    }
}
