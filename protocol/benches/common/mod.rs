//! What the protocol benches measure with: the calling thread's CPU time by default, wall-clock
//! time when `BENCH_WALL_CLOCK` is set.
//!
//! Development and CI machines here have two cores shared with other jobs, so wall-clock time
//! mostly measures how often the bench thread was preempted. Thread CPU time
//! (`CLOCK_THREAD_CPUTIME_ID`) counts only the time the thread actually ran, as `openssl speed`
//! does by default (user CPU time), which keeps the two comparable.

use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::Criterion;
use std::time::Duration;

/// CPU time consumed by the calling thread.
pub struct ThreadCpuTime;

fn thread_cpu_now() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant Linux supports.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Formats like wall-clock durations (ns, µs, B/s): the unit is the same, only the clock differs.
static DURATION_FORMAT: WallTime = WallTime;

impl Measurement for ThreadCpuTime {
    type Intermediate = Duration;
    type Value = Duration;

    fn start(&self) -> Duration {
        thread_cpu_now()
    }
    fn end(&self, start: Duration) -> Duration {
        thread_cpu_now().saturating_sub(start)
    }
    fn add(&self, a: &Duration, b: &Duration) -> Duration {
        *a + *b
    }
    fn zero(&self) -> Duration {
        Duration::ZERO
    }
    fn to_f64(&self, v: &Duration) -> f64 {
        v.as_nanos() as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        DURATION_FORMAT.formatter()
    }
}

/// Runs `benches` with the clock chosen by the environment, then prints criterion's summary.
pub fn run(
    wall: impl FnOnce(&mut Criterion<WallTime>),
    cpu: impl FnOnce(&mut Criterion<ThreadCpuTime>),
) {
    if std::env::var_os("BENCH_WALL_CLOCK").is_some() {
        let mut c = Criterion::default().configure_from_args();
        wall(&mut c);
        c.final_summary();
    } else {
        let mut c = Criterion::default()
            .with_measurement(ThreadCpuTime)
            .configure_from_args();
        cpu(&mut c);
        c.final_summary();
    }
}
