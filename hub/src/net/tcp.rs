//! TCP fallback and TCP relay: the same messages as UDP, and relay frames, each behind a
//! big-endian u16 length (`protocol::hub::frame`). A registration made over a connection lives
//! as long as the connection (and its TTL). The same code serves plain TCP and TLS
//! (`relay.tls`): it only needs a byte stream.
//!
//! Each connection has an [`Outbox`] (bounded, head drop) that replies and relayed frames are
//! queued into without waiting, and one writer task that takes everything queued at once and
//! writes it with one call: many frames per system call under load, nothing allocated per
//! frame. A connection whose writes stall for [`WRITE_TIMEOUT`] is closed.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use protocol::hub::frame::{body_len, FRAME_HEADER_LEN, MAX_FRAME_BODY};
use protocol::hub::messages::Message;
use protocol::hub::outbox::{Outbox, Pushed};
use protocol::nat::demux::RELAY_MAGIC;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::Notify;

use super::Shared;
use crate::engine::{Origin, Transport, REGISTRATION_TTL};

/// Most open TCP connections. Each costs two small tasks, a read buffer and a queue of at
/// most [`OUTBOX_BYTES`]; 4096 of them are bounded by ~1.1 GiB at the very worst (every queue
/// full) and ~0.3 GiB in practice. TCP is the fallback for peers whose UDP is blocked, a
/// minority.
pub const MAX_TCP_CONNECTIONS: usize = 4096;
/// A registered connection that sends no complete frame for this long is closed: its peer
/// renews every third of the TTL, so only dead connections hit it.
const IDLE_TIMEOUT: Duration = REGISTRATION_TTL;
/// An unregistered connection gets this long per frame: a peer sends STUN, Hello and
/// Register back to back, while connections opened and left silent (slowloris) must not hold
/// the connection cap for long.
const UNREGISTERED_TIMEOUT: Duration = Duration::from_secs(10);
/// Bytes queued per connection before the oldest frames are dropped (counted): 256 KiB is
/// ~170 full-size relayed packets, a few milliseconds at the relay's default rate, enough to
/// ride out scheduling hiccups without adding seconds of queueing delay to TCP inside the
/// tunnel.
pub const OUTBOX_BYTES: usize = 256 * 1024;
/// A write that makes no progress for this long closes the connection: the client stopped
/// reading, and its queue must not hold the hub's memory (or relayed frames) any longer.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Read buffer per connection: many frames per read under load.
const READ_BUFFER: usize = 64 * 1024;

/// One open connection as the rest of the hub sees it: where to queue frames for it.
pub(crate) struct Conn {
    outbox: Mutex<Outbox>,
    wake: Notify,
}

impl Conn {
    fn new() -> Conn {
        Conn {
            outbox: Mutex::new(Outbox::new(OUTBOX_BYTES)),
            wake: Notify::new(),
        }
    }

    /// Queues `head` + `body` as one frame without waiting: `Some(older frames dropped to
    /// make room)`, or `None` if the frame was refused (too long).
    fn push(&self, head: &[u8], body: &[u8]) -> Option<usize> {
        let r = self.outbox.lock().push(head, body);
        match r {
            Pushed::Queued { dropped } => {
                self.wake.notify_one();
                Some(dropped)
            }
            Pushed::Refused => None,
        }
    }
}

/// The open connections, by id. Read per relayed frame without a lock (an `ArcSwap`
/// snapshot), replaced whole when a connection opens or closes.
#[derive(Default)]
pub(crate) struct Conns {
    map: arc_swap::ArcSwap<HashMap<u64, Arc<Conn>>>,
    /// Serialises writers (openings and closings), never readers.
    write: Mutex<()>,
}

impl Conns {
    /// Queues a frame for connection `id` without waiting: `Some(older frames dropped to
    /// make room)`, or `None` if the connection is gone or the frame was refused.
    pub fn push(&self, id: u64, head: &[u8], body: &[u8]) -> Option<usize> {
        self.map.load().get(&id).and_then(|c| c.push(head, body))
    }

    /// Adds connection `id` unless [`MAX_TCP_CONNECTIONS`] are open.
    fn insert(&self, id: u64) -> Option<Arc<Conn>> {
        let _w = self.write.lock();
        let cur = self.map.load();
        if cur.len() >= MAX_TCP_CONNECTIONS {
            return None;
        }
        let conn = Arc::new(Conn::new());
        let mut next = HashMap::clone(&cur);
        next.insert(id, conn.clone());
        self.map.store(Arc::new(next));
        Some(conn)
    }

    fn remove(&self, id: u64) {
        let _w = self.write.lock();
        let mut next = HashMap::clone(&self.map.load());
        next.remove(&id);
        self.map.store(Arc::new(next));
    }
}

/// Accepts plain TCP connections.
pub(super) async fn accept(shared: Arc<Shared>, listener: TcpListener) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(r) => r,
            Err(e) => {
                // EMFILE and friends: back off briefly instead of spinning.
                tracing::warn!(error = %e, "tcp accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        if let Some((id, conn)) = admit(&shared) {
            tokio::spawn(serve(shared.clone(), id, conn, stream, peer));
        }
    }
}

/// How long a TLS client gets to finish its handshake (the connection cap is held meanwhile).
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Accepts TLS connections (`relay.tls`): after the handshake, the same service as plain TCP.
pub(super) async fn accept_tls(
    shared: Arc<Shared>,
    listener: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "tls accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let Some((id, conn)) = admit(&shared) else {
            continue;
        };
        let shared = shared.clone();
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => serve(shared, id, conn, tls, peer).await,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    closed(&shared, id, true);
                }
                Err(_) => closed(&shared, id, true),
            }
        });
    }
}

/// Forgets connection `id` (and the registrations made over it).
fn closed(shared: &Shared, id: u64, bad: bool) {
    shared.tcp.remove(id);
    shared.with_hub(|hub| {
        hub.connection_closed(id);
        if bad {
            hub.counters_mut().tcp_closed_bad += 1;
        }
    });
}

/// Registers a new connection, or counts it refused when the cap is reached.
pub(super) fn admit(shared: &Shared) -> Option<(u64, Arc<Conn>)> {
    let id = shared.next_conn.fetch_add(1, Ordering::Relaxed);
    match shared.tcp.insert(id) {
        Some(conn) => {
            shared.hub.lock().counters_mut().tcp_accepted += 1;
            Some((id, conn))
        }
        None => {
            shared.hub.lock().counters_mut().tcp_refused += 1;
            None
        }
    }
}

/// Serves one connection (plain or TLS) until it ends, then forgets it.
pub(super) async fn serve<S>(
    shared: Arc<Shared>,
    id: u64,
    conn: Arc<Conn>,
    stream: S,
    peer: SocketAddr,
) where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (rd, wr) = tokio::io::split(stream);
    let mut writer = tokio::spawn(write_loop(shared.clone(), conn, wr));
    let bad = tokio::select! {
        bad = read_loop(&shared, id, rd, peer) => bad,
        // The writer failed or stalled: nothing more can reach this client.
        _ = &mut writer => true,
    };
    closed(&shared, id, bad);
    writer.abort();
}

/// Reads frames until the connection ends; true if it ended badly (a bad frame or a
/// timeout) rather than by a close.
async fn read_loop<R: AsyncRead + Unpin>(
    shared: &Shared,
    id: u64,
    rd: R,
    peer: SocketAddr,
) -> bool {
    let mut rd = BufReader::with_capacity(READ_BUFFER, rd);
    let origin = Origin {
        transport: Transport::Tcp(id),
        addr: peer,
    };
    let mut buf = [0u8; MAX_FRAME_BODY];
    let mut idle = UNREGISTERED_TIMEOUT;
    loop {
        let n = match tokio::time::timeout(idle, async {
            let mut head = [0u8; FRAME_HEADER_LEN];
            rd.read_exact(&mut head).await?;
            let n = body_len(head)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
            rd.read_exact(&mut buf[..n]).await?;
            Ok::<_, std::io::Error>(n)
        })
        .await
        {
            Ok(Ok(n)) => n,
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::InvalidData => return true,
            Ok(Err(_)) => return false,
            Err(_) => return true,
        };
        let frame = &buf[..n];
        // Relay frames are data: forwarded without the hub's lock.
        if frame.starts_with(&RELAY_MAGIC) {
            shared.relay(origin, frame).await;
            continue;
        }
        let out = shared.handle(origin, frame);
        if out.iter().any(|r| {
            r.to == origin && matches!(Message::parse(&r.payload), Ok(Message::Registered { .. }))
        }) {
            idle = IDLE_TIMEOUT;
        }
        shared.dispatch(out).await;
    }
}

/// Writes whatever is queued, all of it at once, until the connection fails or stalls.
async fn write_loop<W: AsyncWrite + Unpin>(shared: Arc<Shared>, conn: Arc<Conn>, mut wr: W) {
    let mut pending = Vec::new();
    loop {
        conn.outbox.lock().take(&mut pending);
        if pending.is_empty() {
            conn.wake.notified().await;
            continue;
        }
        let write = async {
            wr.write_all(&pending).await?;
            wr.flush().await
        };
        match tokio::time::timeout(WRITE_TIMEOUT, write).await {
            Ok(Ok(())) => pending.clear(),
            Ok(Err(_)) => break,
            Err(_) => {
                shared.hub.lock().counters_mut().tcp_write_timeout += 1;
                break;
            }
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), wr.shutdown()).await;
}
