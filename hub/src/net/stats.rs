//! Counters out: the periodic `stats` log line and the optional stats endpoint, a minimal
//! HTTP/1.0 responder that answers any request with the counters as `name value` lines
//! (Prometheus text format, so a scraper can read it as is).

use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::Shared;

/// A client gets this long to send its request and read the answer.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);

/// `store_connected`, a gauge shown only with a shared store.
fn store_connected(shared: &Shared) -> Option<u8> {
    shared
        .store
        .as_ref()
        .map(|_| shared.store_connected.load(Ordering::Relaxed) as u8)
}

/// The gauges and counters as `key=value` pairs on one line.
pub(super) fn line(shared: &Shared) -> String {
    let hub = shared.hub.lock();
    let mut s = format!(
        "registered={} tracked_sources={}",
        hub.registered(),
        hub.tracked_sources()
    );
    if let Some(c) = store_connected(shared) {
        let _ = write!(s, " store_connected={c}");
    }
    for (k, v) in hub.counters().iter().chain(shared.relay_counters.iter()) {
        let _ = write!(s, " {k}={v}");
    }
    s
}

fn text(shared: &Shared) -> String {
    let hub = shared.hub.lock();
    let mut s = String::new();
    let _ = writeln!(s, "vpnhub_registered {}", hub.registered());
    let _ = writeln!(s, "vpnhub_tracked_sources {}", hub.tracked_sources());
    if let Some(c) = store_connected(shared) {
        let _ = writeln!(s, "vpnhub_store_connected {c}");
    }
    for (k, v) in hub.counters().iter().chain(shared.relay_counters.iter()) {
        let _ = writeln!(s, "vpnhub_{k} {v}");
    }
    s
}

pub(super) async fn serve(shared: Arc<Shared>, listener: TcpListener) {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let body = text(&shared);
        tokio::spawn(async move {
            let _ = tokio::time::timeout(CLIENT_TIMEOUT, async move {
                // The request is read (up to 1 KiB) only so the client is not reset; any
                // path gets the counters.
                let mut req = [0u8; 1024];
                let _ = stream.read(&mut req).await;
                let head = format!(
                    "HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(head.as_bytes()).await;
                let _ = stream.write_all(body.as_bytes()).await;
                let _ = stream.shutdown().await;
            })
            .await;
        });
    }
}
