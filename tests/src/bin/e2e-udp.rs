//! `e2e-udp`: numbered UDP datagrams through a tunnel, to count exactly what arrives.
//!
//! ```text
//! e2e-udp recv --listen ADDR:PORT [--timeout SECS]
//!     prints "listening ADDR:PORT" once bound, then one line "seq N" per datagram carrying
//!     sequence number N (flushed at once), until the timeout (default 300 s) or a signal.
//! e2e-udp send --target ADDR:PORT --count N [--interval-ms MS] [--size BYTES]
//!     sends datagrams with sequence numbers 0..N (8 bytes, big-endian, then zero padding
//!     up to --size, default 64), MS milliseconds apart (default 5), then prints
//!     "sent N".
//! ```
//!
//! Usage errors exit with status 64, I/O errors with 2.

use std::io::{self, Write};
use std::net::{SocketAddr, UdpSocket};
use std::process::ExitCode;
use std::time::{Duration, Instant};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let r = match args.first().map(String::as_str) {
        Some("recv") => parse_recv(&args[1..]).map(|(l, t)| recv(l, t)),
        Some("send") => parse_send(&args[1..]).map(|(t, c, i, s)| send(t, c, i, s)),
        _ => Err("expected `recv` or `send`".to_owned()),
    };
    match r {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(e)) => {
            eprintln!("e2e-udp: {e}");
            ExitCode::from(2)
        }
        Err(usage) => {
            eprintln!("e2e-udp: {usage}");
            eprintln!(
                "usage: e2e-udp recv --listen ADDR:PORT [--timeout SECS]\n       \
                 e2e-udp send --target ADDR:PORT --count N [--interval-ms MS] [--size BYTES]"
            );
            ExitCode::from(64)
        }
    }
}

fn pairs(args: &[String]) -> Result<Vec<(&str, &str)>, String> {
    args.chunks(2)
        .map(|c| match c {
            [k, v] => Ok((k.as_str(), v.as_str())),
            [k] => Err(format!("{k} needs a value")),
            _ => unreachable!(),
        })
        .collect()
}

fn parse_recv(args: &[String]) -> Result<(SocketAddr, Duration), String> {
    let mut listen = None;
    let mut timeout = Duration::from_secs(300);
    for (k, v) in pairs(args)? {
        match k {
            "--listen" => listen = Some(v.parse().map_err(|_| format!("bad address {v}"))?),
            "--timeout" => {
                timeout = Duration::from_secs_f64(v.parse().map_err(|_| format!("bad {k}"))?)
            }
            _ => return Err(format!("unknown option {k}")),
        }
    }
    Ok((listen.ok_or("--listen is required")?, timeout))
}

type SendArgs = (SocketAddr, u64, Duration, usize);

fn parse_send(args: &[String]) -> Result<SendArgs, String> {
    let mut target = None;
    let mut count = None;
    let mut interval = Duration::from_millis(5);
    let mut size = 64usize;
    for (k, v) in pairs(args)? {
        let bad = || format!("bad value for {k}: {v}");
        match k {
            "--target" => target = Some(v.parse().map_err(|_| bad())?),
            "--count" => count = Some(v.parse().map_err(|_| bad())?),
            "--interval-ms" => {
                interval = Duration::from_secs_f64(v.parse::<f64>().map_err(|_| bad())? / 1000.0)
            }
            "--size" => size = v.parse().map_err(|_| bad())?,
            _ => return Err(format!("unknown option {k}")),
        }
    }
    Ok((
        target.ok_or("--target is required")?,
        count.ok_or("--count is required")?,
        interval,
        size.max(8),
    ))
}

fn recv(listen: SocketAddr, timeout: Duration) -> io::Result<()> {
    let sock = UdpSocket::bind(listen)?;
    let mut out = io::stdout().lock();
    writeln!(out, "listening {}", sock.local_addr()?)?;
    out.flush()?;
    let deadline = Instant::now() + timeout;
    let mut buf = vec![0u8; 65536];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(());
        }
        sock.set_read_timeout(Some(left.min(Duration::from_millis(500))))?;
        match sock.recv_from(&mut buf) {
            Ok((n, _)) if n >= 8 => {
                let seq = u64::from_be_bytes(buf[..8].try_into().expect("8 bytes"));
                writeln!(out, "seq {seq}")?;
                out.flush()?;
            }
            Ok(_) => {
                writeln!(out, "short")?;
                out.flush()?;
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(e),
        }
    }
}

fn send(target: SocketAddr, count: u64, interval: Duration, size: usize) -> io::Result<()> {
    let sock = if target.is_ipv4() {
        UdpSocket::bind("0.0.0.0:0")?
    } else {
        UdpSocket::bind("[::]:0")?
    };
    let mut buf = vec![0u8; size];
    let start = Instant::now();
    for seq in 0..count {
        buf[..8].copy_from_slice(&seq.to_be_bytes());
        sock.send_to(&buf, target)?;
        let next = start + interval * (seq as u32 + 1);
        if let Some(wait) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
    println!("sent {count}");
    Ok(())
}
