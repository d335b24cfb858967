//! `e2e-tcp`: the TCP sender/receiver that e2e tests run inside network
//! namespaces to check that bulk data crosses a tunnel intact.
//!
//! ```text
//! e2e-tcp recv --listen ADDR:PORT [--timeout SECS]
//!     prints "listening ADDR:PORT" once bound (PORT 0 picks a free port),
//!     accepts one connection, reads to EOF, prints
//!     "received bytes=N sha256=HEX" and closes.
//! e2e-tcp send --connect ADDR:PORT --bytes N [--seed S] [--timeout SECS] [--rate BYTES/S]
//!     streams N deterministic pseudo-random bytes (from seed S), at BYTES/S bytes per
//!     second if --rate is given (never catching up more than 20 ms after a stall), half-closes, waits for the receiver
//!     to close, prints "sent bytes=N sha256=HEX".
//! ```
//!
//! Both sides give up (exit status 2) when the whole run exceeds the
//! timeout (default 60 s). Usage errors exit with status 64.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::process::ExitCode;
use std::thread;
use std::time::{Duration, Instant};

use e2e::pattern::Pattern;
use sha2::{Digest, Sha256};

const CHUNK: usize = 64 * 1024;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match parse(&args) {
        Ok(Mode::Recv { listen, timeout }) => recv(listen, Instant::now() + timeout),
        Ok(Mode::Send {
            connect,
            bytes,
            seed,
            timeout,
            rate,
        }) => send(connect, bytes, seed, rate, Instant::now() + timeout),
        Err(usage) => {
            eprintln!("e2e-tcp: {usage}");
            eprintln!(
                "usage: e2e-tcp recv --listen ADDR:PORT [--timeout SECS]\n       \
                 e2e-tcp send --connect ADDR:PORT --bytes N [--seed S] [--timeout SECS] \
                 [--rate BYTES/S]"
            );
            return ExitCode::from(64);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("e2e-tcp: {e}");
            ExitCode::from(2)
        }
    }
}

enum Mode {
    Recv {
        listen: SocketAddr,
        timeout: Duration,
    },
    Send {
        connect: SocketAddr,
        bytes: u64,
        seed: u64,
        timeout: Duration,
        rate: Option<u64>,
    },
}

fn parse(args: &[String]) -> Result<Mode, String> {
    let (mode, rest) = args.split_first().ok_or("missing subcommand")?;
    let mut addr = None;
    let mut bytes = None;
    let mut seed = 1u64;
    let mut rate = None;
    let mut timeout = Duration::from_secs(60);
    let mut it = rest.iter();
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let bad = || format!("bad value for {flag}: {value:?}");
        match (mode.as_str(), flag.as_str()) {
            ("recv", "--listen") | ("send", "--connect") => {
                addr = Some(value.parse().map_err(|_| bad())?)
            }
            ("send", "--bytes") => bytes = Some(value.parse().map_err(|_| bad())?),
            ("send", "--seed") => seed = value.parse().map_err(|_| bad())?,
            ("send", "--rate") => rate = Some(value.parse().map_err(|_| bad())?),
            (_, "--timeout") => {
                timeout = Duration::from_secs_f64(value.parse().map_err(|_| bad())?)
            }
            _ => return Err(format!("unknown option {flag} for {mode}")),
        }
    }
    match mode.as_str() {
        "recv" => Ok(Mode::Recv {
            listen: addr.ok_or("--listen is required")?,
            timeout,
        }),
        "send" => Ok(Mode::Send {
            connect: addr.ok_or("--connect is required")?,
            bytes: bytes.ok_or("--bytes is required")?,
            seed,
            timeout,
            rate,
        }),
        other => Err(format!("unknown subcommand {other:?}")),
    }
}

fn remaining(deadline: Instant) -> io::Result<Duration> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        Err(io::Error::new(io::ErrorKind::TimedOut, "deadline exceeded"))
    } else {
        Ok(left)
    }
}

fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn recv(listen: SocketAddr, deadline: Instant) -> io::Result<()> {
    let listener = TcpListener::bind(listen)?;
    println!("listening {}", listener.local_addr()?);
    io::stdout().flush()?;

    listener.set_nonblocking(true)?;
    let (mut stream, peer) = loop {
        match listener.accept() {
            Ok(conn) => break conn,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                remaining(deadline).map_err(|_| {
                    io::Error::new(io::ErrorKind::TimedOut, "no connection before deadline")
                })?;
                thread::sleep(Duration::from_millis(5));
            }
            Err(e) => return Err(e),
        }
    };
    stream.set_nonblocking(false)?;
    eprintln!("e2e-tcp: connection from {peer}");

    let mut hasher = Sha256::new();
    let mut total = 0u64;
    let mut buf = vec![0u8; CHUNK];
    loop {
        stream.set_read_timeout(Some(remaining(deadline)?))?;
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                hasher.update(&buf[..n]);
                total += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                return Err(io::Error::new(
                    e.kind(),
                    format!("after {total} bytes: {e}"),
                ))
            }
        }
    }
    println!("received bytes={total} sha256={}", hex(&hasher.finalize()));
    io::stdout().flush()?;
    Ok(())
}

fn send(
    connect: SocketAddr,
    bytes: u64,
    seed: u64,
    rate: Option<u64>,
    deadline: Instant,
) -> io::Result<()> {
    let mut due = Instant::now();
    let mut stream = TcpStream::connect_timeout(&connect, remaining(deadline)?)?;
    let mut pattern = Pattern::new(seed);
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let mut sent = 0u64;
    while sent < bytes {
        let n = usize::try_from(bytes - sent).map_or(CHUNK, |left| left.min(CHUNK));
        pattern.fill(&mut buf[..n]);
        stream.set_write_timeout(Some(remaining(deadline)?))?;
        stream
            .write_all(&buf[..n])
            .map_err(|e| io::Error::new(e.kind(), format!("after {sent} bytes: {e}")))?;
        hasher.update(&buf[..n]);
        sent += n as u64;
        if let Some(rate) = rate.filter(|r| *r > 0) {
            // A token bucket with a 20 ms burst: after falling behind (a stall), catch up at
            // most that much at once instead of sending at full speed.
            let now = Instant::now();
            let floor = now.checked_sub(Duration::from_millis(20)).unwrap_or(now);
            due = due.max(floor) + Duration::from_secs_f64(n as f64 / rate as f64);
            if let Some(wait) = due.checked_duration_since(now) {
                thread::sleep(wait);
            }
        }
    }
    stream.shutdown(Shutdown::Write)?;
    // The receiver closes only after it has read everything.
    let mut sink = [0u8; 256];
    loop {
        stream.set_read_timeout(Some(remaining(deadline)?))?;
        match stream.read(&mut sink) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    println!("sent bytes={sent} sha256={}", hex(&hasher.finalize()));
    io::stdout().flush()?;
    Ok(())
}
