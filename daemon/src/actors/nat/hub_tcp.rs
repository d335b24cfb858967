//! The TCP connection to a hub, used when UDP to it goes unanswered
//! ([`protocol::hub::transport`]): hub messages and STUN Binding requests, each behind a u16
//! length ([`protocol::hub::frame`]), on the hub's listen port.
//!
//! One task owns the connection: it connects, writes what the actor queues and hands every
//! frame read back to the actor as a [`NatMsg::HubTcp`]. Frames are control traffic (a few a
//! minute), never WireGuard packets, so a message per frame costs nothing.

use super::NatMsg;
use protocol::hub::frame::{self, FRAME_HEADER_LEN};
use ractor::ActorRef;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

/// How long a connection attempt may take. A hub is tens of milliseconds away; a SYN that
/// gets no answer in 5 s is a firewall dropping it.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Frames queued for writing before more are dropped: a registration is three frames and a
/// signaling round two per peer, so 64 is a burst to many peers at once.
pub const SEND_QUEUE: usize = 64;

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
    tx: mpsc::Sender<Vec<u8>>,
    task: tokio::task::JoinHandle<()>,
}

impl TcpLink {
    /// Connects to the hub `hub` (the actor's index) at `addr`; events come back to `me`
    /// tagged with `generation`, so those of a replaced connection are recognised as stale.
    pub fn open(
        addr: SocketAddr,
        hub: usize,
        generation: u64,
        fwmark: Option<u32>,
        me: ActorRef<NatMsg>,
    ) -> TcpLink {
        let (tx, rx) = mpsc::channel(SEND_QUEUE);
        let report = move |event| {
            let _ = me.cast(NatMsg::HubTcp {
                hub,
                generation,
                event,
            });
        };
        let task = tokio::spawn(async move {
            let why = run(addr, fwmark, rx, &report).await;
            report(TcpEvent::Down(why));
        });
        TcpLink { tx, task }
    }

    /// Queues `payload` framed; false if it cannot be framed, the queue is full or the
    /// connection is gone (the hub client retries what matters).
    pub fn send(&self, payload: &[u8]) -> bool {
        frame::encode(payload).is_some_and(|f| self.tx.try_send(f).is_ok())
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
    fwmark: Option<u32>,
    mut rx: mpsc::Receiver<Vec<u8>>,
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
    let stream = match tokio::time::timeout(CONNECT_TIMEOUT, socket.connect(addr)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return format!("tcp connect: {e}"),
        Err(_) => return format!("tcp connect: no answer in {CONNECT_TIMEOUT:?}"),
    };
    // Frames are small and latency matters more than packing them.
    let _ = stream.set_nodelay(true);
    report(TcpEvent::Up);
    let (mut r, mut w) = stream.into_split();
    let writer = async {
        while let Some(f) = rx.recv().await {
            if let Err(e) = w.write_all(&f).await {
                return format!("tcp write: {e}");
            }
        }
        "closed".to_string()
    };
    let reader = async {
        let mut body = [0u8; protocol::hub::messages::MAX_MESSAGE_LEN];
        loop {
            let mut header = [0u8; FRAME_HEADER_LEN];
            if let Err(e) = r.read_exact(&mut header).await {
                return if e.kind() == std::io::ErrorKind::UnexpectedEof {
                    "the hub closed the connection".to_string()
                } else {
                    format!("tcp read: {e}")
                };
            }
            let n = match frame::body_len(header) {
                Ok(n) => n,
                // A stream out of step cannot be resynchronised: start over.
                Err(e) => return format!("bad frame from the hub: {e}"),
            };
            if let Err(e) = r.read_exact(&mut body[..n]).await {
                return format!("tcp read: {e}");
            }
            report(TcpEvent::Frame(body[..n].to_vec()));
        }
    };
    tokio::select! {
        why = writer => why,
        why = reader => why,
    }
}
