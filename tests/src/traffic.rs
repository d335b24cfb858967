//! Traffic checks: ping and bulk TCP transfers between namespaces.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::{cargo_binary, describe_status, wait_until, Netns};

static SEED: AtomicU64 = AtomicU64::new(1);

/// Pings `dst` (IPv4 or IPv6) `count` times from inside `ns`, 0.2 s apart;
/// true if every echo was answered. Bounded by a deadline of `count + 2`
/// seconds.
pub fn ping(ns: &Netns, dst: &str, count: u32) -> bool {
    let count = count.max(1);
    let deadline = (count + 2).to_string();
    let out = ns.exec_timeout(
        [
            "ping",
            "-n",
            "-q",
            "-c",
            &count.to_string(),
            "-i",
            "0.2",
            "-W",
            "1",
            "-w",
            &deadline,
            dst,
        ],
        Duration::from_secs(u64::from(count) + 10),
    );
    out.status.success()
}

/// Pings `dst` from `ns` once per attempt until one echo is answered or
/// `timeout` passes (for waiting out a handshake or a route change).
pub fn ping_until(ns: &Netns, dst: &str, timeout: Duration) -> bool {
    wait_until(timeout, Duration::from_millis(100), || {
        ns.exec_timeout(
            ["ping", "-n", "-q", "-c", "1", "-W", "1", dst],
            Duration::from_secs(5),
        )
        .status
        .success()
    })
}

/// Sends `bytes` deterministic pseudo-random bytes over TCP from `from` to
/// a receiver listening on `dst_addr` (an IP address of `to`, v4 or v6) and
/// returns `(sha256_sent, sha256_received)` as hex.
///
/// Runs the `e2e-tcp` helper on both sides (found with
/// [`cargo_binary`]), with a 120 s deadline; see [`tcp_transfer_timeout`].
pub fn tcp_transfer(from: &Netns, to: &Netns, dst_addr: &str, bytes: u64) -> (String, String) {
    tcp_transfer_timeout(from, to, dst_addr, bytes, Duration::from_secs(120))
}

/// [`tcp_transfer`] with an explicit deadline for the whole transfer.
///
/// # Panics
/// If `dst_addr` is not an IP address, or either side fails or misses the
/// deadline; the message holds both sides' output.
pub fn tcp_transfer_timeout(
    from: &Netns,
    to: &Netns,
    dst_addr: &str,
    bytes: u64,
    timeout: Duration,
) -> (String, String) {
    tcp_transfer_paced(from, to, dst_addr, bytes, None, timeout)
}

/// [`tcp_transfer_timeout`] with the sender writing at most `rate` bytes per second on
/// average (`None`: as fast as it can).
///
/// # Panics
/// As [`tcp_transfer_timeout`].
pub fn tcp_transfer_paced(
    from: &Netns,
    to: &Netns,
    dst_addr: &str,
    bytes: u64,
    rate: Option<u64>,
    timeout: Duration,
) -> (String, String) {
    try_tcp_transfer(from, to, dst_addr, bytes, rate, timeout).unwrap_or_else(|e| panic!("{e}"))
}

/// [`tcp_transfer_paced`] returning what went wrong instead of panicking, for tests that run
/// many transfers in parallel and report every failure together.
///
/// # Errors
/// If `dst_addr` is not an IP address, or either side fails or misses the deadline; the
/// message holds both sides' output.
pub fn try_tcp_transfer(
    from: &Netns,
    to: &Netns,
    dst_addr: &str,
    bytes: u64,
    rate: Option<u64>,
    timeout: Duration,
) -> Result<(String, String), String> {
    let ip: IpAddr = dst_addr
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .map_err(|_| format!("tcp_transfer: {dst_addr:?} is not an IP address"))?;
    let helper = cargo_binary("e2e-tcp");
    let deadline = Instant::now() + timeout;
    let secs = format!("{:.3}", timeout.as_secs_f64());

    let mut receiver = to.spawn([
        helper.as_os_str(),
        "recv".as_ref(),
        "--listen".as_ref(),
        SocketAddr::new(ip, 0).to_string().as_ref(),
        "--timeout".as_ref(),
        secs.as_ref(),
    ]);
    let mut port = None;
    wait_until(Duration::from_secs(10), Duration::from_millis(10), || {
        port = receiver
            .stdout()
            .lines()
            .find_map(|l| l.strip_prefix("listening "))
            .and_then(|a| a.trim().parse::<SocketAddr>().ok())
            .map(|a| a.port());
        port.is_some() || !receiver.is_running()
    });
    let Some(port) = port else {
        return Err(format!(
            "tcp_transfer: receiver did not start listening\n{}",
            receiver.logs()
        ));
    };

    let seed = SEED.fetch_add(1, Ordering::Relaxed) ^ u64::from(std::process::id()) << 32;
    let mut args: Vec<std::ffi::OsString> = vec![
        helper.clone().into_os_string(),
        "send".into(),
        "--connect".into(),
        SocketAddr::new(ip, port).to_string().into(),
        "--bytes".into(),
        bytes.to_string().into(),
        "--seed".into(),
        seed.to_string().into(),
        "--timeout".into(),
        secs.clone().into(),
    ];
    if let Some(rate) = rate {
        args.push("--rate".into());
        args.push(rate.to_string().into());
    }
    let mut sender = from.spawn(&args);

    let left = || deadline.saturating_duration_since(Instant::now()) + Duration::from_secs(2);
    let sent = sender.wait_exit(left());
    let received = receiver.wait_exit(left());
    let ok = |s: Option<std::process::ExitStatus>| s.is_some_and(|s| s.success());
    if !ok(sent) || !ok(received) {
        let show = |s: Option<std::process::ExitStatus>| {
            s.map_or_else(
                || "still running at deadline".to_owned(),
                |s| describe_status(&s),
            )
        };
        return Err(format!(
            "tcp_transfer of {bytes} bytes to {dst_addr} failed: sender {}, receiver {}\n{}\n{}",
            show(sent),
            show(received),
            sender.logs(),
            receiver.logs()
        ));
    }
    let digest = |out: &str, prefix: &str| {
        out.lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.split_whitespace().find_map(|w| w.strip_prefix("sha256=")))
            .map(str::to_owned)
    };
    match (
        digest(&sender.stdout(), "sent "),
        digest(&receiver.stdout(), "received "),
    ) {
        (Some(s), Some(r)) => Ok((s, r)),
        _ => Err(format!(
            "tcp_transfer: no digest in output\n{}\n{}",
            sender.logs(),
            receiver.logs()
        )),
    }
}
