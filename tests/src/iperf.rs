//! A continuous, bounded TCP stream between two namespaces with `iperf3`,
//! measured in short intervals on both ends, for "the stream never stalled"
//! checks while something else happens (a reload, a crash elsewhere).
//!
//! ```no_run
//! # use e2e::{TestGuard, iperf::IperfStream};
//! # let guard = TestGuard::new("x");
//! # let (h, a) = (guard.netns(), guard.netns());
//! let stream = IperfStream::start(&h, &a, "10.10.0.2", 10, 50);
//! // ... change things ...
//! let report = stream.finish();
//! report.assert_no_stall("H -> A");
//! ```

use std::time::Duration;

use serde_json::Value;

use crate::{wait_until, Netns, Proc};

/// Length of one measuring interval (`iperf3 -i`), in seconds.
pub const INTERVAL_SECS: f64 = 0.5;
/// The TCP port `iperf3` listens on (each server runs in its own namespace).
pub const PORT: u16 = 5201;
/// Nice value of both `iperf3` ends (see [`crate::Proc::set_nice`]).
pub const STREAM_NICE: i32 = -10;
/// Intervals shorter than this (the ragged end of a run) are not judged.
const MIN_JUDGED_SECS: f64 = 0.2;

/// One measuring interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    /// Seconds since the stream started.
    pub start: f64,
    /// Seconds since the stream started.
    pub end: f64,
    /// Bytes moved in the interval.
    pub bytes: u64,
}

/// What one end measured.
#[derive(Debug, Clone, Default)]
pub struct Side {
    /// Every interval in order.
    pub intervals: Vec<Interval>,
    /// `iperf3`'s error, if it reported one.
    pub error: Option<String>,
    /// Total bytes over the whole run.
    pub bytes: u64,
    /// TCP retransmissions (sender only).
    pub retransmits: Option<u64>,
}

impl Side {
    fn parse(json: &str) -> Result<Side, String> {
        let v: Value = serde_json::from_str(json.trim())
            .map_err(|e| format!("iperf3 printed no JSON ({e}): {json}"))?;
        let error = v.get("error").and_then(Value::as_str).map(str::to_owned);
        let intervals = v
            .get("intervals")
            .and_then(Value::as_array)
            .map(|list| {
                list.iter()
                    .filter_map(|i| {
                        let sum = i.get("sum")?;
                        Some(Interval {
                            start: sum.get("start")?.as_f64()?,
                            end: sum.get("end")?.as_f64()?,
                            bytes: sum.get("bytes")?.as_u64()?,
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        let end = v.get("end");
        let bytes = end
            .and_then(|e| e.get("sum_received").or_else(|| e.get("sum_sent")))
            .and_then(|s| s.get("bytes"))
            .and_then(Value::as_u64)
            .unwrap_or(0);
        let retransmits = end
            .and_then(|e| e.get("sum_sent"))
            .and_then(|s| s.get("retransmits"))
            .and_then(Value::as_u64);
        Ok(Side {
            intervals,
            error,
            bytes,
            retransmits,
        })
    }

    /// Intervals long enough to judge in which nothing moved.
    pub fn stalled(&self) -> Vec<Interval> {
        self.intervals
            .iter()
            .filter(|i| i.end - i.start >= MIN_JUDGED_SECS && i.bytes == 0)
            .copied()
            .collect()
    }

    /// The smallest byte count of a judged interval.
    pub fn min_bytes(&self) -> u64 {
        self.intervals
            .iter()
            .filter(|i| i.end - i.start >= MIN_JUDGED_SECS)
            .map(|i| i.bytes)
            .min()
            .unwrap_or(0)
    }
}

/// The result of a finished stream: both ends' measurements.
#[derive(Debug, Clone)]
pub struct IperfReport {
    /// The sender (`iperf3 -c`).
    pub client: Side,
    /// The receiver (`iperf3 -s`): what really crossed the tunnel.
    pub server: Side,
    /// Requested duration in seconds.
    pub seconds: u32,
}

impl IperfReport {
    /// Why the stream does not pass as "never stalled", if it does not:
    /// an end failed, measured less than the requested duration, or had a
    /// judged interval in which zero bytes moved. `what` names the stream.
    pub fn stall(&self, what: &str) -> Option<String> {
        let mut problems = Vec::new();
        for (end, side) in [("sender", &self.client), ("receiver", &self.server)] {
            if let Some(e) = &side.error {
                problems.push(format!("iperf3 {end} failed: {e}"));
            }
            let covered = side.intervals.last().map_or(0.0, |i| i.end);
            if covered + INTERVAL_SECS < f64::from(self.seconds) {
                problems.push(format!(
                    "the {end} measured only {covered:.1} s of {} s",
                    self.seconds
                ));
            }
            let stalled = side.stalled();
            if !stalled.is_empty() {
                problems.push(format!(
                    "the stream stalled: the {end} saw intervals with 0 bytes: {stalled:?}"
                ));
            }
        }
        if problems.is_empty() {
            return None;
        }
        let show = |side: &Side| {
            side.intervals
                .iter()
                .map(|i| format!("{:.1}-{:.1}s {}", i.start, i.end, i.bytes))
                .collect::<Vec<_>>()
                .join(", ")
        };
        Some(format!(
            "{what}: {}\nsender intervals: {}\nreceiver intervals: {}",
            problems.join("; "),
            show(&self.client),
            show(&self.server)
        ))
    }

    /// Panics with [`IperfReport::stall`]'s explanation unless the stream
    /// never stalled.
    pub fn assert_no_stall(&self, what: &str) {
        if let Some(why) = self.stall(what) {
            panic!("{why}");
        }
    }
}

/// A running `iperf3` stream from one namespace to an address in another.
#[derive(Debug)]
pub struct IperfStream {
    server: Proc,
    client: Proc,
    seconds: u32,
}

impl IperfStream {
    /// Starts an `iperf3` server (one test, JSON output) on `dst` in
    /// `server_ns`, waits until it listens, then starts a client in
    /// `client_ns` sending to it for `seconds`, reporting every
    /// [`INTERVAL_SECS`], at most `mbit_per_s` (a steady, paced stream: it
    /// keeps the CPU free for the daemons and the byte count below
    /// `rekey_after_bytes`, so the stream itself causes no handshake).
    /// Returns as soon as the client runs.
    ///
    /// # Panics
    /// If the server does not listen within 10 s.
    pub fn start(
        client_ns: &Netns,
        server_ns: &Netns,
        dst: &str,
        seconds: u32,
        mbit_per_s: u32,
    ) -> IperfStream {
        let port = PORT.to_string();
        let mut server = server_ns.spawn([
            "iperf3", "-s", "-1", "--json", "-B", dst, "-p", &port, "-i", "0.5",
        ]);
        let listening = wait_until(Duration::from_secs(10), Duration::from_millis(20), || {
            !server.is_running()
                || server_ns
                    .exec([
                        "ss",
                        "-H",
                        "-l",
                        "-t",
                        "-n",
                        "sport",
                        "=",
                        &format!(":{port}"),
                    ])
                    .stdout
                    .iter()
                    .any(|b| !b.is_ascii_whitespace())
        });
        assert!(
            listening && server.is_running(),
            "iperf3 server on {dst} in {} did not start listening\n{}",
            server_ns.name(),
            server.logs()
        );
        let mut client = client_ns.spawn([
            "iperf3",
            "-c",
            dst,
            "-p",
            &port,
            "-t",
            &seconds.to_string(),
            "-i",
            "0.5",
            "-b",
            &format!("{mbit_per_s}M"),
            "--json",
            "--connect-timeout",
            "3000",
        ]);
        for p in [&mut server, &mut client] {
            // Best effort: the measurement should not starve under unrelated load.
            let _ = p.set_nice(STREAM_NICE);
        }
        IperfStream {
            server,
            client,
            seconds,
        }
    }

    /// Whether the client is still sending.
    pub fn is_running(&mut self) -> bool {
        self.client.is_running()
    }

    /// Waits for both ends to finish (bounded: the duration plus 20 s) and
    /// parses what they measured.
    ///
    /// # Panics
    /// If either end does not finish in time or prints no JSON; with logs.
    pub fn finish(mut self) -> IperfReport {
        let limit = Duration::from_secs(u64::from(self.seconds) + 20);
        let client_status = self.client.wait_exit(limit);
        let server_status = self.server.wait_exit(Duration::from_secs(10));
        assert!(
            client_status.is_some() && server_status.is_some(),
            "iperf3 did not finish in time\n{}\n{}",
            self.client.logs(),
            self.server.logs()
        );
        let parse =
            |p: &Proc| Side::parse(&p.stdout()).unwrap_or_else(|e| panic!("{e}\n{}", p.logs()));
        IperfReport {
            client: parse(&self.client),
            server: parse(&self.server),
            seconds: self.seconds,
        }
    }
}
