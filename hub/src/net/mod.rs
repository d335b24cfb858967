//! The I/O around the sans-IO [`Hub`]: a UDP socket and a TCP listener per `listen` address,
//! a sweep timer, the periodic stats line and optional stats endpoint, and signals (SIGHUP
//! reloads `admission`; SIGTERM and SIGINT stop).
//!
//! One mutex guards the hub; it is held only while [`Hub::handle`] runs (microseconds, one DH
//! at most), never across an await.

#[cfg(target_os = "linux")]
mod mmsg;
mod relay;
mod stats;
mod store;
mod tcp;
mod udp;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::mpsc;

use crate::config::{self, AdmissionConfig, HubConfig, Store};
use crate::engine::{Admission, Hub, Limits, Reply, StoreOp, Transport, SWEEP_INTERVAL};

/// Requested UDP socket buffers: 4 MiB, like vpnd's. Relayed TCP overflowed 1 MiB (bench/relay.sh:
/// the hub's drops matched the tunnel's retransmits); 4 MiB had none. Best effort: the
/// kernel caps it at net.core.rmem_max / wmem_max.
const UDP_RECV_BUFFER: usize = 4 << 20;

/// Options from the command line (not the configuration file).
#[derive(Debug, Clone)]
pub struct Options {
    /// Period of the stats log line; zero turns it off.
    pub stats_interval: Duration,
    /// Where to serve the stats endpoint (plain-text HTTP), if anywhere.
    pub stats_listen: Option<SocketAddr>,
}

/// Why the hub could not run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A listen address could not be bound.
    #[error("cannot listen on {addr} ({proto}): {error}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// `udp`, `tcp`, `tls` or `stats`.
        proto: &'static str,
        /// The OS error.
        error: std::io::Error,
    },
    /// The OS gave no randomness for the challenge secret.
    #[error("no OS randomness for the challenge secret: {0}")]
    Random(String),
    /// The TLS certificate or key could not be loaded.
    #[error("{0}")]
    Tls(#[from] crate::tls::TlsError),
    /// Signal handlers could not be installed.
    #[error("cannot install signal handlers: {0}")]
    Signals(std::io::Error),
}

/// State shared by the I/O tasks.
pub(crate) struct Shared {
    pub hub: Mutex<Hub>,
    pub udp: Vec<Arc<UdpSocket>>,
    /// Open TCP (and TLS) connections, by connection id.
    pub tcp: tcp::Conns,
    pub next_conn: AtomicU64,
    /// The shared store's queue (`store: redis://…`), `None` with `store: memory`.
    pub store: Option<mpsc::Sender<StoreOp>>,
    /// Whether the shared store is reachable now (its subscription is up).
    pub store_connected: AtomicBool,
    /// The relay routing snapshot ([`Hub::relay_routes`]), read per relay frame: an
    /// `ArcSwap`, so readers share no lock word or reference count between clients.
    pub routes: arc_swap::ArcSwap<crate::engine::relay::Routes>,
    /// The relay data path's counters.
    pub relay_counters: relay::RelayCounters,
}

impl Shared {
    /// Runs `f` on the hub, then hands the store operations it produced to the store task
    /// (without waiting: a full queue drops and counts them, and the lookup or signal behind
    /// one goes unanswered, as under any overload; the peer retries).
    pub fn with_hub<R>(&self, f: impl FnOnce(&mut Hub) -> R) -> R {
        let mut hub = self.hub.lock();
        let r = f(&mut hub);
        if let Some(routes) = hub.relay_routes(Instant::now()) {
            self.set_routes(routes);
        }
        if let Some(q) = &self.store {
            for op in hub.drain_store_ops() {
                if q.try_send(op).is_err() {
                    hub.counters_mut().store_queue_full += 1;
                }
            }
        }
        r
    }

    /// Handles one message from `origin` and returns the replies to send.
    pub fn handle(&self, origin: crate::engine::Origin, data: &[u8]) -> Vec<Reply> {
        let mut out = Vec::new();
        self.with_hub(|h| h.handle(origin, data, Instant::now(), &mut out));
        out
    }

    /// Sends replies: UDP directly, TCP through the connection's queue (which drops its oldest
    /// frames, counted, when full: a peer that does not read must not make the hub buffer).
    pub async fn dispatch(&self, replies: Vec<Reply>) {
        for r in replies {
            match r.to.transport {
                Transport::Udp(i) => {
                    if let Some(sock) = self.udp.get(i) {
                        if let Err(e) = sock.send_to(&r.payload, r.to.addr).await {
                            tracing::debug!(to = %r.to.addr, error = %e, "udp send failed");
                        }
                    }
                }
                Transport::Tcp(id) => {
                    self.tcp_push(id, &r.payload);
                }
            }
        }
    }
}

/// The hub's admission in the engine's terms.
pub fn admission(a: &AdmissionConfig) -> Admission {
    match a {
        AdmissionConfig::Any => Admission::Any,
        AdmissionConfig::Allow(keys) => Admission::Allow(keys.iter().map(|k| k.0).collect()),
    }
}

async fn bind_pair(addr: SocketAddr) -> Result<(UdpSocket, TcpListener), RunError> {
    let udp_err = |error| RunError::Bind {
        addr,
        proto: "udp",
        error,
    };
    let domain = socket2::Domain::for_address(addr);
    let s = socket2::Socket::new(domain, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))
        .map_err(udp_err)?;
    // `[::]` serves IPv6 only, so `0.0.0.0` with the same port can be listed beside it.
    if addr.is_ipv6() {
        s.set_only_v6(true).map_err(udp_err)?;
    }
    // A bigger receive buffer rides out bursts (best effort: the kernel caps it at
    // net.core.rmem_max).
    let _ = s.set_recv_buffer_size(UDP_RECV_BUFFER);
    let _ = s.set_send_buffer_size(UDP_RECV_BUFFER);
    s.set_nonblocking(true).map_err(udp_err)?;
    s.bind(&addr.into()).map_err(udp_err)?;
    let udp = UdpSocket::from_std(s.into()).map_err(udp_err)?;
    // With port 0 the TCP listener takes the port the UDP socket got: one port serves both.
    let bound = udp.local_addr().map_err(udp_err)?;
    let tcp_err = |error| RunError::Bind {
        addr: bound,
        proto: "tcp",
        error,
    };
    let t = socket2::Socket::new(domain, socket2::Type::STREAM, Some(socket2::Protocol::TCP))
        .map_err(tcp_err)?;
    if addr.is_ipv6() {
        t.set_only_v6(true).map_err(tcp_err)?;
    }
    t.set_reuse_address(true).map_err(tcp_err)?;
    t.set_nonblocking(true).map_err(tcp_err)?;
    t.bind(&bound.into()).map_err(tcp_err)?;
    t.listen(128).map_err(tcp_err)?;
    let tcp = TcpListener::from_std(t.into()).map_err(tcp_err)?;
    Ok((udp, tcp))
}

/// Runs the hub until SIGTERM or SIGINT. `config_path` is re-read on SIGHUP.
pub async fn run(
    config: HubConfig,
    config_path: Option<PathBuf>,
    opts: Options,
) -> Result<(), RunError> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hup = signal(SignalKind::hangup()).map_err(RunError::Signals)?;
    let mut term = signal(SignalKind::terminate()).map_err(RunError::Signals)?;
    let mut int = signal(SignalKind::interrupt()).map_err(RunError::Signals)?;

    let mut nonce_secret = [0u8; 32];
    // getrandom(2) blocks until the pool is ready and fails only without a kernel source.
    getrandom::fill(&mut nonce_secret).map_err(|e| RunError::Random(e.to_string()))?;
    let now = Instant::now();
    let mut hub = Hub::new(
        config.private_key.secret(),
        nonce_secret,
        admission(&config.admission),
        {
            let rate = u64::from(config.relay.rate_mbit) * 1_000_000 / 8;
            Limits {
                relay_bytes_per_sec: rate,
                relay_burst_bytes: crate::engine::limits::relay_burst(rate),
                ..Limits::default()
            }
        },
        now,
    );
    if config.relay.enabled {
        hub.enable_relay();
    }
    let mut udp = Vec::new();
    let mut tcp = Vec::new();
    for &addr in &config.listen {
        let (u, t) = bind_pair(addr).await?;
        let bound = u.local_addr().unwrap_or(addr);
        tracing::info!("listening on {bound} (udp+tcp)");
        udp.push(Arc::new(u));
        tcp.push(t);
    }
    // Peers of other hubs reach this one here to relay to its peers.
    let first = udp.first().and_then(|u| u.local_addr().ok());
    if let Some(a) = config
        .advertise
        .or(first.filter(|a| !a.ip().is_unspecified()))
    {
        hub.set_advertise(a);
    }
    let tls = match &config.relay.tls {
        Some(t) => {
            let server = crate::tls::server_config(&t.cert_file, &t.key_file)?;
            let l = TcpListener::bind(t.listen)
                .await
                .map_err(|error| RunError::Bind {
                    addr: t.listen,
                    proto: "tls",
                    error,
                })?;
            let bound = l.local_addr().unwrap_or(t.listen);
            tracing::info!("listening on {bound} (tls)");
            Some((l, tokio_rustls::TlsAcceptor::from(server)))
        }
        None => None,
    };
    let stats_listener = match opts.stats_listen {
        Some(addr) => {
            let l = TcpListener::bind(addr)
                .await
                .map_err(|error| RunError::Bind {
                    addr,
                    proto: "stats",
                    error,
                })?;
            let bound = l.local_addr().unwrap_or(addr);
            tracing::info!("stats endpoint on http://{bound}/");
            Some(l)
        }
        None => None,
    };
    tracing::info!(
        public_key = %protocol::keys::PublicKey(*hub.public_key()),
        admission = %describe(&config.admission),
        "vpnhub started"
    );
    let (store_tx, store_rx) = match &config.store {
        Store::Memory => (None, None),
        Store::Redis { .. } => {
            let mut id = [0u8; crate::engine::shared::HUB_ID_LEN];
            getrandom::fill(&mut id).map_err(|e| RunError::Random(e.to_string()))?;
            hub.share(id);
            let (tx, rx) = mpsc::channel(store::QUEUE);
            (Some(tx), Some((id, rx)))
        }
    };
    let shared = Arc::new(Shared {
        hub: Mutex::new(hub),
        udp: udp.clone(),
        tcp: Default::default(),
        next_conn: AtomicU64::new(1),
        store: store_tx,
        store_connected: AtomicBool::new(false),
        routes: Default::default(),
        relay_counters: Default::default(),
    });
    let mut tasks = tokio::task::JoinSet::new();
    if let (Store::Redis { host, port, db }, Some((id, rx))) = (&config.store, store_rx) {
        tracing::info!(
            "store: {} (several hubs)",
            store::describe(host, *port, *db)
        );
        tasks.spawn(store::run(shared.clone(), host.clone(), *port, *db, id, rx));
    }
    for (i, sock) in udp.into_iter().enumerate() {
        tasks.spawn(udp::serve(shared.clone(), i, sock));
    }
    for l in tcp {
        tasks.spawn(tcp::accept(shared.clone(), l));
    }
    if let Some((l, acceptor)) = tls {
        tasks.spawn(tcp::accept_tls(shared.clone(), l, acceptor));
    }
    if let Some(l) = stats_listener {
        tasks.spawn(stats::serve(shared.clone(), l));
    }
    let mut sweep = tokio::time::interval(SWEEP_INTERVAL);
    let stats_every = if opts.stats_interval.is_zero() {
        Duration::from_secs(365 * 24 * 3600)
    } else {
        opts.stats_interval
    };
    let mut stats_tick =
        tokio::time::interval_at(tokio::time::Instant::now() + stats_every, stats_every);
    loop {
        tokio::select! {
            _ = sweep.tick() => shared.with_hub(|h| h.handle_timeout(Instant::now())),
            _ = stats_tick.tick(), if !opts.stats_interval.is_zero() => {
                tracing::info!("stats {}", stats::line(&shared));
            }
            _ = hup.recv() => reload(&shared, config_path.as_deref()),
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    tracing::info!("stopping; final stats {}", stats::line(&shared));
    tasks.abort_all();
    Ok(())
}

fn describe(a: &AdmissionConfig) -> String {
    match a {
        AdmissionConfig::Any => "any key that proves it".into(),
        AdmissionConfig::Allow(k) => format!("{} allowed keys", k.len()),
    }
}

/// SIGHUP: re-reads the file and applies `admission`. A file that no longer loads keeps the
/// old admission (logged); other changed fields need a restart (logged).
fn reload(shared: &Shared, path: Option<&std::path::Path>) {
    let Some(path) = path else {
        tracing::warn!("SIGHUP ignored: no configuration file to re-read");
        return;
    };
    match config::load(path) {
        Ok(c) => {
            for w in &c.warnings {
                tracing::warn!("{w}");
            }
            let evicted = shared.with_hub(|h| h.set_admission(admission(&c.admission)));
            tracing::info!(
                admission = %describe(&c.admission),
                evicted,
                "SIGHUP: admission reloaded (listen, key and store changes need a restart)"
            );
        }
        Err(e) => {
            tracing::error!("SIGHUP: configuration not reloaded, keeping the old admission:\n{e}")
        }
    }
}
