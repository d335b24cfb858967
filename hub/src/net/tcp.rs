//! TCP fallback: the same messages as UDP, each behind a big-endian u16 length
//! (`protocol::hub::frame`). A registration made over a connection lives as long as the
//! connection (and its TTL).

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use protocol::hub::frame::{body_len, FRAME_HEADER_LEN};
use protocol::hub::messages::{Message, MAX_MESSAGE_LEN};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use super::Shared;
use crate::engine::{Origin, Transport, REGISTRATION_TTL};

/// Most open TCP connections. Each costs two small tasks and a queue (~4 KiB); 4096 of them
/// are ~16 MiB. TCP is the fallback for peers whose UDP is blocked, a minority.
pub const MAX_TCP_CONNECTIONS: usize = 4096;
/// A registered connection that sends no complete frame for this long is closed: its peer
/// renews every third of the TTL, so only dead connections hit it.
const IDLE_TIMEOUT: Duration = REGISTRATION_TTL;
/// An unregistered connection gets this long per frame: a peer sends STUN, Hello and
/// Register back to back, while connections opened and left silent (slowloris) must not hold
/// the connection cap for long.
const UNREGISTERED_TIMEOUT: Duration = Duration::from_secs(10);
/// Replies queued per connection before further ones are dropped (counted).
const SEND_QUEUE: usize = 64;

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
        let id = shared.next_conn.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(SEND_QUEUE);
        {
            let mut conns = shared.tcp.lock();
            if conns.len() >= MAX_TCP_CONNECTIONS {
                drop(conns);
                shared.hub.lock().counters_mut().tcp_refused += 1;
                continue;
            }
            conns.insert(id, tx);
        }
        shared.hub.lock().counters_mut().tcp_accepted += 1;
        tokio::spawn(connection(shared.clone(), id, stream, peer, rx));
    }
}

async fn connection(
    shared: Arc<Shared>,
    id: u64,
    stream: TcpStream,
    peer: SocketAddr,
    mut rx: mpsc::Receiver<Vec<u8>>,
) {
    let _ = stream.set_nodelay(true);
    let (mut rd, mut wr) = stream.into_split();
    let writer = tokio::spawn(async move {
        while let Some(frame) = rx.recv().await {
            if wr.write_all(&frame).await.is_err() {
                break;
            }
        }
    });
    let origin = Origin {
        transport: Transport::Tcp(id),
        addr: peer,
    };
    let mut buf = [0u8; MAX_MESSAGE_LEN];
    let mut idle = UNREGISTERED_TIMEOUT;
    let bad = loop {
        let mut head = [0u8; FRAME_HEADER_LEN];
        let n = match tokio::time::timeout(idle, async {
            rd.read_exact(&mut head).await?;
            let n = match body_len(head) {
                Ok(n) => n,
                Err(e) => return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, e)),
            };
            rd.read_exact(&mut buf[..n]).await?;
            Ok(n)
        })
        .await
        {
            Ok(Ok(n)) => n,
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::InvalidData => break true,
            Ok(Err(_)) => break false,
            Err(_) => break true,
        };
        let out = shared.handle(origin, &buf[..n]);
        if out.iter().any(|r| {
            r.to == origin && matches!(Message::parse(&r.payload), Ok(Message::Registered { .. }))
        }) {
            idle = IDLE_TIMEOUT;
        }
        shared.dispatch(out).await;
    };
    shared.tcp.lock().remove(&id);
    shared.with_hub(|hub| {
        hub.connection_closed(id);
        if bad {
            hub.counters_mut().tcp_closed_bad += 1;
        }
    });
    writer.abort();
}
