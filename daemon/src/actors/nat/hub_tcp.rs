//! The TCP connection to a hub, used when UDP to it goes unanswered
//! ([`protocol::hub::transport`]): hub messages, STUN Binding requests and relay frames, each
//! behind a u16 length ([`protocol::hub::frame`]), on the hub's listen port.
//!
//! One task owns the connection. It connects, then writes whatever is queued in the link's
//! [`TcpSink`] (control messages from the actor, relay frames from the data plane) a whole
//! queue per write, and reads frames: control frames go to the actor as a
//! [`NatMsg::HubTcp`] (a few a minute), relay frames straight into the data plane's receive
//! path a batch at a time, as if they had come from the hub over UDP, with no actor in
//! between.

use super::hub_tls::HubTlsClient;
use super::NatMsg;
use crate::dataplane::inbound::{handle_batch, RxBatch};
use crate::dataplane::relay::TcpSink;
use crate::dataplane::DataPlane;
use protocol::hub::frame::{self, FRAME_HEADER_LEN, MAX_FRAME_BODY};
use protocol::nat::demux::RELAY_MAGIC;
use ractor::ActorRef;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// How long a connection attempt may take. A hub is tens of milliseconds away; a SYN that
/// gets no answer in 5 s is a firewall dropping it.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// A write that makes no progress for this long ends the connection (the hub or the path
/// stalled); the transport choice then reconnects.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Bytes read per system call at most: many frames per read under load.
const READ_BUFFER: usize = 256 * 1024;

/// What the connection task reports.
#[derive(Debug)]
pub enum TcpEvent {
    /// Connected.
    Up,
    /// One frame's body (a hub message or a STUN response).
    Frame(Vec<u8>),
    /// The attempt failed or the connection ended; why.
    Down(String),
}

/// An open (or opening) connection. Dropping it closes the connection.
pub struct TcpLink {
    sink: Arc<TcpSink>,
    task: tokio::task::JoinHandle<()>,
    /// Set by the task when it reports its end ([`TcpEvent::Down`]).
    reported: Arc<std::sync::atomic::AtomicBool>,
}

impl TcpLink {
    /// Connects to the hub `hub` (the actor's index) at `addr`, or over TLS to its TLS port
    /// with `tls`; events come back to `me` tagged with `generation`, so those of a replaced
    /// connection are recognised as stale. Relay frames read go into `dp`'s receive path
    /// (from `addr`, the hub's UDP address, which is how the data plane knows the hub).
    pub fn open(
        addr: SocketAddr,
        tls: Option<Result<HubTlsClient, String>>,
        hub: usize,
        generation: u64,
        fwmark: Option<u32>,
        me: ActorRef<NatMsg>,
        dp: Arc<DataPlane>,
    ) -> TcpLink {
        let sink = Arc::new(TcpSink::default());
        let report = move |event| {
            let _ = me.cast(NatMsg::HubTcp {
                hub,
                generation,
                event,
            });
        };
        let queue = sink.clone();
        let reported = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let said = reported.clone();
        let task = tokio::spawn(async move {
            let why = run(addr, tls, fwmark, &queue, &dp, &report).await;
            said.store(true, std::sync::atomic::Ordering::Release);
            report(TcpEvent::Down(why));
        });
        TcpLink {
            sink,
            task,
            reported,
        }
    }

    /// Queues `payload` framed; false if it cannot be framed (the hub client retries what
    /// matters if the connection then fails).
    pub fn send(&self, payload: &[u8]) -> bool {
        self.sink.push(&[], payload)
    }

    /// Whether the connection's task ended without reporting it (it panicked): normally it
    /// says why with [`TcpEvent::Down`], and that message is handled instead.
    pub fn crashed(&self) -> bool {
        self.task.is_finished() && !self.reported.load(std::sync::atomic::Ordering::Acquire)
    }

    /// The queue the data plane sends relay frames into while this connection is up.
    pub fn sink(&self) -> Arc<TcpSink> {
        self.sink.clone()
    }
}

impl Drop for TcpLink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Runs one connection until it ends; returns why it ended.
async fn run(
    addr: SocketAddr,
    tls: Option<Result<HubTlsClient, String>>,
    fwmark: Option<u32>,
    sink: &TcpSink,
    dp: &DataPlane,
    report: &(impl Fn(TcpEvent) + Send + Sync),
) -> String {
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4(),
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6(),
    };
    let socket = match socket {
        Ok(s) => s,
        Err(e) => return format!("tcp socket: {e}"),
    };
    if let Some(mark) = fwmark.filter(|m| *m != 0) {
        // Like the WireGuard socket: the hub must not be reached through our own tunnel.
        if let Err(e) = crate::dataplane::udp::set_mark(&socket, mark) {
            return format!("tcp fwmark {mark}: {e}");
        }
    }
    let tls = match tls {
        Some(Ok(t)) => Some(t),
        Some(Err(e)) => return format!("tls: {e}"),
        None => None,
    };
    let to = match &tls {
        Some(t) => SocketAddr::new(addr.ip(), t.port),
        None => addr,
    };
    let proto = if tls.is_some() { "tls" } else { "tcp" };
    let stream = match tokio::time::timeout(CONNECT_TIMEOUT, socket.connect(to)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return format!("{proto} connect to {to}: {e}"),
        Err(_) => return format!("{proto} connect to {to}: no answer in {CONNECT_TIMEOUT:?}"),
    };
    // Control frames are small and latency matters; relay frames are batched by the queue.
    let _ = stream.set_nodelay(true);
    let Some(tls) = tls else {
        report(TcpEvent::Up);
        let (r, w) = stream.into_split();
        return serve(r, w, addr, sink, dp, report).await;
    };
    let connector = tokio_rustls::TlsConnector::from(tls.config);
    let stream =
        match tokio::time::timeout(CONNECT_TIMEOUT, connector.connect(tls.name, stream)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return format!("tls handshake with {to}: {e}"),
            Err(_) => return format!("tls handshake with {to}: no answer in {CONNECT_TIMEOUT:?}"),
        };
    report(TcpEvent::Up);
    let (r, w) = tokio::io::split(stream);
    serve(r, w, addr, sink, dp, report).await
}

/// Writes and reads until either side ends; returns why.
async fn serve(
    r: impl AsyncRead + Unpin,
    w: impl AsyncWrite + Unpin,
    hub: SocketAddr,
    sink: &TcpSink,
    dp: &DataPlane,
    report: &(impl Fn(TcpEvent) + Send + Sync),
) -> String {
    tokio::select! {
        why = write_loop(w, sink) => why,
        why = read_loop(r, hub, dp, report) => why,
    }
}

/// Writes whatever is queued, a whole queue per write.
async fn write_loop(mut w: impl AsyncWrite + Unpin, sink: &TcpSink) -> String {
    let mut pending = Vec::new();
    loop {
        sink.take(&mut pending).await;
        let write = async {
            w.write_all(&pending).await?;
            // TLS buffers records until flushed.
            w.flush().await
        };
        match tokio::time::timeout(WRITE_TIMEOUT, write).await {
            Ok(Ok(())) => pending.clear(),
            Ok(Err(e)) => return format!("tcp write: {e}"),
            Err(_) => return format!("tcp write: no progress in {WRITE_TIMEOUT:?}"),
        }
    }
}

/// Reads frames: control frames to the actor, relay frames into the receive path, every
/// complete frame of a read handled before the next read.
async fn read_loop(
    mut r: impl AsyncRead + Unpin,
    hub: SocketAddr,
    dp: &DataPlane,
    report: &(impl Fn(TcpEvent) + Send + Sync),
) -> String {
    let mut buf = vec![0u8; READ_BUFFER];
    let mut filled = 0;
    // Allocated on the first relay frame: a connection that only carries control traffic
    // does not need the receive path's buffers.
    let mut rx: Option<Box<RxBatch>> = None;
    loop {
        let n = match r.read(&mut buf[filled..]).await {
            Ok(0) => return "the hub closed the connection".to_string(),
            Ok(n) => n,
            Err(e) => return format!("tcp read: {e}"),
        };
        filled += n;
        let mut at = 0;
        let mut batched = 0;
        while filled - at >= FRAME_HEADER_LEN {
            let len = match frame::body_len([buf[at], buf[at + 1]]) {
                Ok(n) => n,
                // A stream out of step cannot be resynchronised: start over.
                Err(e) => return format!("bad frame from the hub: {e}"),
            };
            if filled - at < FRAME_HEADER_LEN + len {
                break;
            }
            let body = &buf[at + FRAME_HEADER_LEN..at + FRAME_HEADER_LEN + len];
            at += FRAME_HEADER_LEN + len;
            if !body.starts_with(&RELAY_MAGIC) {
                report(TcpEvent::Frame(body.to_vec()));
                continue;
            }
            let rx = match &mut rx {
                Some(rx) => rx,
                None => match RxBatch::new() {
                    Ok(b) => rx.insert(Box::new(b)),
                    Err(e) => return format!("cannot allocate receive buffers: {e}"),
                },
            };
            rx.load(batched, body, body.len(), Some(hub));
            batched += 1;
            if batched == crate::dataplane::batch_udp::RECV_MSGS {
                handle_batch(dp, rx, batched, Instant::now()).await;
                batched = 0;
            }
        }
        if batched > 0 {
            if let Some(rx) = &mut rx {
                handle_batch(dp, rx, batched, Instant::now()).await;
            }
        }
        // Keep the partial frame at the front.
        buf.copy_within(at..filled, 0);
        filled -= at;
        debug_assert!(buf.len() - filled >= FRAME_HEADER_LEN + MAX_FRAME_BODY);
    }
}
