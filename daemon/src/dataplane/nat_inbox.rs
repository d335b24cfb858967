//! Where the receive path puts the datagrams that share the WireGuard socket but are not
//! WireGuard (STUN answers, hub messages, path probes): a bounded queue the NAT actor drains.
//! These are rare control messages (a few per peer every few seconds), so a copy each is fine;
//! WireGuard traffic never comes here.

use parking_lot::RwLock;
use std::net::SocketAddr;
use tokio::sync::mpsc;

/// Datagrams queued for the NAT actor before further ones are dropped (counted as
/// `nat_queue_full`): enough for a burst of probe answers from every candidate of many peers,
/// small enough that a flood of STUN-shaped junk holds at most this many copies.
pub const NAT_INBOX_CAPACITY: usize = 1024;

/// One datagram for the NAT actor.
#[derive(Debug)]
pub struct NatDatagram {
    /// Where it came from.
    pub from: SocketAddr,
    /// Its bytes.
    pub data: Vec<u8>,
}

/// Why a datagram was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotQueued {
    /// No NAT traversal is configured (no hubs, no STUN servers).
    Off,
    /// The queue is full.
    Full,
}

/// The sending side, replaced each time the NAT actor (re)starts.
#[derive(Debug, Default)]
pub struct NatInbox {
    tx: RwLock<Option<mpsc::Sender<NatDatagram>>>,
}

impl NatInbox {
    /// Opens a new queue (dropping the old one) and returns its receiving end.
    pub fn open(&self) -> mpsc::Receiver<NatDatagram> {
        let (tx, rx) = mpsc::channel(NAT_INBOX_CAPACITY);
        *self.tx.write() = Some(tx);
        rx
    }

    /// Closes the queue: NAT traversal is off.
    pub fn close(&self) {
        *self.tx.write() = None;
    }

    /// Queues a copy of `data`, without waiting.
    pub fn deliver(&self, data: &[u8], from: SocketAddr) -> Result<(), NotQueued> {
        let tx = self.tx.read();
        let tx = tx.as_ref().ok_or(NotQueued::Off)?;
        // Checked first so a flood against a full queue costs no allocation.
        if tx.capacity() == 0 {
            return Err(NotQueued::Full);
        }
        tx.try_send(NatDatagram {
            from,
            data: data.to_vec(),
        })
        .map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => NotQueued::Full,
            mpsc::error::TrySendError::Closed(_) => NotQueued::Off,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queues_only_while_open_and_up_to_capacity() {
        let inbox = NatInbox::default();
        let from: SocketAddr = "192.0.2.1:3478".parse().unwrap();
        assert_eq!(inbox.deliver(b"x", from), Err(NotQueued::Off));
        let mut rx = inbox.open();
        for _ in 0..NAT_INBOX_CAPACITY {
            assert_eq!(inbox.deliver(b"x", from), Ok(()));
        }
        assert_eq!(inbox.deliver(b"x", from), Err(NotQueued::Full));
        let d = rx.try_recv().unwrap();
        assert_eq!((d.from, d.data.as_slice()), (from, &b"x"[..]));
        assert_eq!(inbox.deliver(b"y", from), Ok(()));
        drop(rx);
        assert_eq!(inbox.deliver(b"x", from), Err(NotQueued::Off));
        inbox.close();
        assert_eq!(inbox.deliver(b"x", from), Err(NotQueued::Off));
    }
}
