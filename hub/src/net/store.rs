//! The Redis store (`store: redis://HOST:PORT/DB`): carries out the engine's [`StoreOp`]s so
//! any number of hubs share presence and signaling (docs/hub.md, "Several hubs").
//!
//! - Presence: key `vpnhub:peer:<hex key>` holds the engine's record (this hub's id and the
//!   peer's Presence message), set with the registration TTL on every (re)registration, so a
//!   peer vanishes from Redis when it stops renewing, whichever hub dies.
//! - Signaling: each hub subscribes to `vpnhub:hub:<hex id>`; a signal for a peer registered
//!   elsewhere is published, unchanged, on the channel of the hub its record names, and that
//!   hub sends it from its own socket. No subscriber (the hub restarted) means "offline".
//! - Directory: key `vpnhub:hubinfo:<hex id>` holds each hub's public key and `advertise`
//!   address (refreshed every third of the registration TTL), so a RelayOpen for a peer on
//!   another hub is answered with where to open it (RelayElsewhere).
//! - Redis unreachable, at start or later: the hub keeps serving STUN and its own peers,
//!   retries with back-off and says so in the log; lookups and signals that needed Redis are
//!   answered "offline" and counted in `store_errors`, the `store_connected` gauge is 0.
//!
//! Everything read back from Redis is parsed by the engine with the protocol's parsers.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{ConnectionAddr, IntoConnectionInfo, RedisConnectionInfo};
use tokio::sync::{mpsc, Semaphore};

use super::Shared;
use crate::engine::shared::MAX_RECORD_LEN;
use crate::engine::{HubId, Key, StoreOp, REGISTRATION_TTL};

/// Operations queued between the engine and Redis. A burst of registrations after a restart
/// (every peer renews within 30 s) fits; past it operations are dropped and counted.
pub const QUEUE: usize = 4096;
/// Redis commands in flight at once: enough to hide a round trip, few enough that a slow
/// Redis holds little memory.
const IN_FLIGHT: usize = 256;
/// Sequential writers: each does one write per Redis round trip, so 16 of them keep up with
/// 65,536 peers renewing every 30 s (~2,200 writes/s) up to a ~7 ms round trip.
const WRITERS: usize = 16;
/// One command, connect included, gets this long; a peer retries a lookup within seconds.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);
/// Back-off between attempts to reach Redis: from 1 s, doubling up to 30 s (an operator's
/// restart of Redis is picked up within half a minute, the log is not flooded meanwhile).
const RETRY_MIN: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(30);

const HEX: &[u8; 16] = b"0123456789abcdef";

fn hex(b: &[u8]) -> String {
    b.iter()
        .flat_map(|x| {
            [
                HEX[(x >> 4) as usize] as char,
                HEX[(x & 15) as usize] as char,
            ]
        })
        .collect()
}

fn peer_key(peer: &Key) -> String {
    format!("vpnhub:peer:{}", hex(peer))
}

fn channel(hub: &HubId) -> String {
    format!("vpnhub:hub:{}", hex(hub))
}

fn hub_info_key(hub: &HubId) -> String {
    format!("vpnhub:hubinfo:{}", hex(hub))
}

/// The longest directory entry read back (a RelayElsewhere message is 89 bytes).
const MAX_HUB_INFO_LEN: usize = 128;

/// Deletes a presence record only while it is still this hub's: the peer may since have
/// registered on another hub, whose record must stay.
const REMOVE_IF_OURS: &str = r"
local v = redis.call('GET', KEYS[1])
if v and string.sub(v, 1, 16) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0";

/// Where to find Redis, for the log.
pub(super) fn describe(host: &str, port: u16, db: u32) -> String {
    if host.contains(':') {
        format!("redis://[{host}]:{port}/{db}")
    } else {
        format!("redis://{host}:{port}/{db}")
    }
}

/// Runs the store: connects (retrying), subscribes to this hub's channel and carries out the
/// operations from `ops` until the hub stops.
pub(super) async fn run(
    shared: Arc<Shared>,
    host: String,
    port: u16,
    db: u32,
    id: HubId,
    mut ops: mpsc::Receiver<StoreOp>,
) {
    let url = describe(&host, port, db);
    let info = match ConnectionAddr::Tcp(host, port).into_connection_info() {
        Ok(i) => i.set_redis_settings(RedisConnectionInfo::default().set_db(db as i64)),
        Err(e) => {
            // Not reached for a TCP address; the hub then serves as a lone hub.
            tracing::error!("store {url}: {e}; serving as a lone hub");
            return;
        }
    };
    let client = match redis::Client::open(info) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("store {url}: {e}; serving as a lone hub");
            return;
        }
    };
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(COMMAND_TIMEOUT))
        .set_response_timeout(Some(COMMAND_TIMEOUT))
        .set_min_delay(RETRY_MIN)
        .set_max_delay(RETRY_MAX)
        .set_number_of_retries(2);
    // Until Redis answers once, operations are failed at once (their lookups answered
    // offline) rather than queued behind an outage.
    let mut delay = RETRY_MIN;
    let conn = loop {
        // One plain connection first: it fails at once on a refused connection, where the
        // manager would retry on its own schedule inside our timeout.
        let attempt = tokio::time::timeout(COMMAND_TIMEOUT, async {
            client.get_multiplexed_async_connection().await?;
            client
                .get_connection_manager_with_config(config.clone())
                .await
        })
        .await;
        match attempt {
            Ok(Ok(c)) => break c,
            Ok(Err(e)) => tracing::warn!(
                "store {url} unreachable ({e}); retrying in {delay:?}, serving STUN and this \
                 hub's own peers meanwhile"
            ),
            Err(_) => tracing::warn!(
                "store {url} did not answer in {COMMAND_TIMEOUT:?}; retrying in {delay:?}, \
                 serving STUN and this hub's own peers meanwhile"
            ),
        }
        let until = tokio::time::sleep(delay);
        tokio::pin!(until);
        loop {
            tokio::select! {
                _ = &mut until => break,
                op = ops.recv() => match op {
                    Some(op) => fail(&shared, op).await,
                    None => return,
                },
            }
        }
        delay = (delay * 2).min(RETRY_MAX);
    };
    tracing::info!("store {url}: connected; this hub is {}", channel(&id));
    tokio::spawn(subscribe(shared.clone(), client, url.clone(), id));
    let info = shared.hub.lock().hub_info();
    match info {
        Some(info) => {
            tokio::spawn(keep_hub_info(conn.clone(), id, info));
        }
        None => tracing::warn!(
            "no `advertise` address (the hub listens on a wildcard address): peers of other \
             hubs cannot relay to this hub's peers; set `advertise: IP:PORT`"
        ),
    }
    // Writes (Put, Remove) for one peer must reach Redis in order (a TCP peer that reconnects
    // is removed then put again): each peer's writes go through one of WRITERS sequential
    // workers, chosen by key. Reads (Lookup, Signal) are independent and run concurrently.
    let mut writers = Vec::with_capacity(WRITERS);
    for _ in 0..WRITERS {
        let (tx, mut rx) = mpsc::channel::<StoreOp>(QUEUE / WRITERS);
        let (shared, conn) = (shared.clone(), conn.clone());
        tokio::spawn(async move {
            while let Some(op) = rx.recv().await {
                execute(&shared, conn.clone(), id, op).await;
            }
        });
        writers.push(tx);
    }
    let permits = Arc::new(Semaphore::new(IN_FLIGHT));
    while let Some(op) = ops.recv().await {
        if let StoreOp::Put { peer, .. } | StoreOp::Remove { peer } = &op {
            let w = &writers[peer[0] as usize % WRITERS];
            if w.send(op).await.is_err() {
                return;
            }
            continue;
        }
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        let (shared, conn) = (shared.clone(), conn.clone());
        tokio::spawn(async move {
            execute(&shared, conn, id, op).await;
            drop(permit);
        });
    }
}

/// An operation that cannot reach Redis: the asker hears "offline" (it retries later).
async fn fail(shared: &Shared, op: StoreOp) {
    let mut out = Vec::new();
    {
        let mut hub = shared.hub.lock();
        hub.counters_mut().store_errors += 1;
        match op {
            StoreOp::Lookup { peer, reply_to } => {
                hub.remote_presence(reply_to, peer, None, &mut out)
            }
            StoreOp::Signal { to, reply_to, .. } => hub.signal_offline(reply_to, to, &mut out),
            StoreOp::RelayHome { .. } | StoreOp::Put { .. } | StoreOp::Remove { .. } => {}
        }
    }
    shared.dispatch(out).await;
}

async fn execute(shared: &Shared, mut conn: ConnectionManager, id: HubId, op: StoreOp) {
    let result: redis::RedisResult<Vec<crate::engine::Reply>> =
        match tokio::time::timeout(COMMAND_TIMEOUT, async {
            let mut out = Vec::new();
            match &op {
                StoreOp::Put { peer, record } => {
                    redis::cmd("SET")
                        .arg(peer_key(peer))
                        .arg(record.as_slice())
                        .arg("PX")
                        .arg(REGISTRATION_TTL.as_millis() as u64)
                        .query_async::<()>(&mut conn)
                        .await?;
                }
                StoreOp::Remove { peer } => {
                    redis::Script::new(REMOVE_IF_OURS)
                        .key(peer_key(peer))
                        .arg(&id[..])
                        .invoke_async::<i64>(&mut conn)
                        .await?;
                }
                StoreOp::Lookup { peer, reply_to } => {
                    let rec = get(&mut conn, peer).await?;
                    shared
                        .hub
                        .lock()
                        .remote_presence(*reply_to, *peer, rec.as_deref(), &mut out);
                }
                StoreOp::RelayHome { peer, reply_to } => {
                    let rec = get(&mut conn, peer).await?;
                    let target = shared.hub.lock().relay_home(peer, rec.as_deref());
                    if let Some(hub) = target {
                        let info: Option<Vec<u8>> = redis::cmd("GET")
                            .arg(hub_info_key(&hub))
                            .query_async(&mut conn)
                            .await?;
                        let info = info.filter(|i| i.len() <= MAX_HUB_INFO_LEN);
                        shared.hub.lock().relay_elsewhere(
                            *reply_to,
                            *peer,
                            info.as_deref(),
                            &mut out,
                        );
                    }
                }
                StoreOp::Signal { to, reply_to, raw } => {
                    let rec = get(&mut conn, to).await?;
                    let target = shared.hub.lock().signal_target(to, rec.as_deref());
                    let receivers = match target {
                        Some(hub) => {
                            redis::cmd("PUBLISH")
                                .arg(channel(&hub))
                                .arg(raw.as_slice())
                                .query_async::<i64>(&mut conn)
                                .await?
                        }
                        None => 0,
                    };
                    let mut hub = shared.hub.lock();
                    if receivers > 0 {
                        hub.signal_sent_remote();
                    } else {
                        hub.signal_offline(*reply_to, *to, &mut out);
                    }
                }
            }
            Ok(out)
        })
        .await
        {
            Ok(r) => r,
            Err(_) => Err(redis::RedisError::from(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "no answer in time",
            ))),
        };
    match result {
        Ok(out) => shared.dispatch(out).await,
        Err(e) => {
            tracing::debug!(error = %e, "store command failed");
            fail(shared, op).await;
        }
    }
}

/// Keeps this hub's directory entry in the store (key and advertised address, for peers of
/// other hubs that relay to ours), refreshed every third of its lifetime so that it vanishes
/// soon after the hub does.
async fn keep_hub_info(mut conn: ConnectionManager, id: HubId, info: Vec<u8>) {
    let mut tick = tokio::time::interval(REGISTRATION_TTL / 3);
    loop {
        tick.tick().await;
        let r = tokio::time::timeout(
            COMMAND_TIMEOUT,
            redis::cmd("SET")
                .arg(hub_info_key(&id))
                .arg(info.as_slice())
                .arg("PX")
                .arg(REGISTRATION_TTL.as_millis() as u64)
                .query_async::<()>(&mut conn),
        )
        .await;
        if !matches!(r, Ok(Ok(()))) {
            tracing::debug!("store: the hub's directory entry was not refreshed; retrying");
        }
    }
}

/// The presence record of `peer`, refused (as a bad record) past the largest valid size.
async fn get(conn: &mut ConnectionManager, peer: &Key) -> redis::RedisResult<Option<Vec<u8>>> {
    let rec: Option<Vec<u8>> = redis::cmd("GET")
        .arg(peer_key(peer))
        .query_async(conn)
        .await?;
    Ok(rec.map(|mut r| {
        // The engine refuses it by length; no need to carry a huge value further.
        r.truncate(MAX_RECORD_LEN + 1);
        r
    }))
}

/// Receives the signals other hubs hand to this one, resubscribing (with back-off) whenever
/// the connection drops. The `store_connected` gauge follows this subscription.
async fn subscribe(shared: Arc<Shared>, client: redis::Client, url: String, id: HubId) {
    let name = channel(&id);
    let mut delay = RETRY_MIN;
    loop {
        let attempt = tokio::time::timeout(COMMAND_TIMEOUT, async {
            let mut ps = client.get_async_pubsub().await?;
            ps.subscribe(&name).await?;
            redis::RedisResult::Ok(ps)
        })
        .await;
        match attempt {
            Ok(Ok(ps)) => {
                delay = RETRY_MIN;
                shared.store_connected.store(true, Ordering::Relaxed);
                tracing::info!("store {url}: subscribed to {name}");
                let mut stream = ps.into_on_message();
                while let Some(msg) = stream.next().await {
                    let raw = msg.get_payload_bytes();
                    let mut out = Vec::new();
                    shared
                        .hub
                        .lock()
                        .deliver_remote(raw, Instant::now(), &mut out);
                    shared.dispatch(out).await;
                }
                shared.store_connected.store(false, Ordering::Relaxed);
                tracing::warn!(
                    "store {url}: connection lost; signals from other hubs wait until it is \
                     back (retrying in {delay:?})"
                );
            }
            Ok(Err(e)) => {
                tracing::warn!("store {url}: cannot subscribe ({e}); retrying in {delay:?}")
            }
            Err(_) => tracing::warn!(
                "store {url}: subscribe got no answer in {COMMAND_TIMEOUT:?}; retrying in {delay:?}"
            ),
        }
        shared.hub.lock().counters_mut().store_errors += 1;
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(RETRY_MAX);
    }
}
