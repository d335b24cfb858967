//! The stable-Rust driver for fuzz harnesses, shared by `protocol/tests/fuzz.rs` and
//! `daemon/tests/fuzz.rs` (each includes this file by path with its own harness list).
//!
//! - [`regressions`]: replays every file under `<fuzz dir>/regressions/<target>/`.
//! - [`smoke`]: each harness on its seeds and a few hundred deterministic mutations.
//! - [`fuzz_stable`]: a time-bounded random mutation loop without coverage feedback.
//! - [`write_seeds`]: writes the seeds as a starting corpus for cargo fuzz.
//!
//! See docs/fuzzing.md.

// Each test file uses what it needs.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// A harness as the driver sees it.
pub struct Target {
    /// Name of the cargo-fuzz target and of its regressions directory.
    pub name: &'static str,
    /// Runs one input.
    pub run: fn(&[u8]),
    /// Starting inputs for mutation.
    pub seeds: fn() -> Vec<Vec<u8>>,
}

use std::cell::{Cell, RefCell};
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;
use std::time::{Duration, Instant};

thread_local! {
    static QUIET: Cell<bool> = const { Cell::new(false) };
    static LAST_PANIC: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Installs, once, a panic hook that stays silent (recording the message) on threads that are
/// catching harness panics, and reports normally everywhere else.
fn install_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if QUIET.with(Cell::get) {
                let at = info
                    .location()
                    .map(|l| format!("{}:{}", l.file(), l.line()))
                    .unwrap_or_default();
                let msg = info
                    .payload()
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| info.payload().downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                LAST_PANIC.with(|p| *p.borrow_mut() = format!("{at}: {msg}"));
            } else {
                default(info);
            }
        }));
    });
}

/// Runs one input; `Err` carries the panic's location and message.
pub fn try_run(target: &Target, input: &[u8]) -> Result<(), String> {
    install_hook();
    QUIET.with(|q| q.set(true));
    let r = panic::catch_unwind(AssertUnwindSafe(|| (target.run)(input)));
    QUIET.with(|q| q.set(false));
    r.map_err(|_| LAST_PANIC.with(|p| p.borrow().clone()))
}

fn hex(data: &[u8]) -> String {
    let shown: String = data.iter().take(64).map(|b| format!("{b:02x}")).collect();
    if data.len() > 64 {
        format!("{shown}… ({} bytes)", data.len())
    } else {
        shown
    }
}

/// xorshift64*: a small deterministic generator for the mutation loop.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn byte(&mut self) -> u8 {
        self.next() as u8
    }
}

/// Largest input the mutator makes.
const MAX_LEN: usize = 4096;

/// One to four stacked random mutations of a pool entry.
fn mutate(rng: &mut Rng, pool: &[Vec<u8>]) -> Vec<u8> {
    let mut d = pool[rng.below(pool.len())].clone();
    for _ in 0..=rng.below(4) {
        let len = d.len();
        match rng.below(11) {
            0 if len > 0 => {
                let i = rng.below(len);
                d[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                d[i] = rng.byte();
            }
            2 if len > 0 => {
                let i = rng.below(len);
                d[i] = [0, 1, 0x7f, 0x80, 0xff][rng.below(5)];
            }
            3 => {
                let at = rng.below(len + 1);
                let n = rng.below(8) + 1;
                let bytes: Vec<u8> = (0..n).map(|_| rng.byte()).collect();
                d.splice(at..at, bytes);
            }
            4 if len > 0 => {
                let at = rng.below(len);
                let n = rng.below(len - at) + 1;
                d.drain(at..at + n.min(16));
            }
            5 if len > 1 => {
                let from = rng.below(len);
                let n = (rng.below(len - from) + 1).min(32);
                let chunk = d[from..from + n].to_vec();
                let to = rng.below(len);
                let end = (to + n).min(len);
                d[to..end].copy_from_slice(&chunk[..end - to]);
            }
            6 => {
                let other = &pool[rng.below(pool.len())];
                let head = rng.below(len + 1);
                let tail = rng.below(other.len() + 1);
                d.truncate(head);
                d.extend_from_slice(&other[tail..]);
            }
            7 if len >= 2 => {
                let at = rng.below(len - 1);
                let v: u16 = [0, 1, 0x7fff, 0x8000, 0xffff, 148, 92, 64, 32][rng.below(9)];
                d[at..at + 2].copy_from_slice(&v.to_le_bytes());
            }
            8 if len >= 4 => {
                let at = rng.below(len - 3);
                let v: u32 = [0, 1, u32::MAX, 0x8000_0000, 4][rng.below(5)];
                d[at..at + 4].copy_from_slice(&v.to_le_bytes());
            }
            9 => d.truncate(rng.below(len + 1)),
            _ => {
                let n = rng.below(32) + 1;
                d.extend((0..n).map(|_| rng.byte()));
            }
        }
    }
    d.truncate(MAX_LEN);
    d
}

/// The seeds plus the stored regressions of `target`: the starting pool for mutation.
fn pool(dir: &Path, target: &Target) -> Vec<Vec<u8>> {
    let mut pool = (target.seeds)();
    pool.extend(
        regression_inputs(dir, target.name)
            .into_iter()
            .map(|(_, d)| d),
    );
    if pool.is_empty() {
        pool.push(Vec::new());
    }
    pool
}

fn regression_inputs(dir: &Path, target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let Ok(entries) = std::fs::read_dir(dir.join("regressions").join(target)) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.file_name().is_some_and(|n| n != ".gitkeep"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let d = std::fs::read(&p).expect("readable regression input");
            (p, d)
        })
        .collect()
}

/// Replays every stored regression input of `targets` (under `dir/regressions/<name>/`).
pub fn regressions(dir: &Path, targets: &[Target]) {
    let known: Vec<&str> = targets.iter().map(|t| t.name).collect();
    if let Ok(entries) = std::fs::read_dir(dir.join("regressions")) {
        for e in entries.flatten().filter(|e| e.path().is_dir()) {
            let name = e.file_name().to_string_lossy().into_owned();
            assert!(
                known.contains(&name.as_str()),
                "regressions/{name} names no harness"
            );
        }
    }
    let mut failures = Vec::new();
    let mut replayed = 0;
    for t in targets {
        for (path, data) in regression_inputs(dir, t.name) {
            replayed += 1;
            if let Err(e) = try_run(t, &data) {
                failures.push(format!("{}: {e}", path.display()));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "regressions fail again:\n{failures:#?}"
    );
    eprintln!("replayed {replayed} regression inputs");
}

/// Each harness on its seeds and stored regressions plus `FUZZ_SMOKE_ITERS` (default 300)
/// deterministic mutations.
pub fn smoke(dir: &Path, targets: &[Target]) {
    let iterations: usize = std::env::var("FUZZ_SMOKE_ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    let mut failures = Vec::new();
    for t in targets {
        let pool = pool(dir, t);
        for s in &pool {
            if let Err(e) = try_run(t, s) {
                failures.push(format!("{} seed {}: {e}", t.name, hex(s)));
            }
        }
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ t.name.len() as u64);
        for _ in 0..iterations {
            let input = mutate(&mut rng, &pool);
            if let Err(e) = try_run(t, &input) {
                failures.push(format!("{} input {}: {e}", t.name, hex(&input)));
                break;
            }
        }
    }
    assert!(failures.is_empty(), "harness panics:\n{failures:#?}");
}

/// FNV-1a, to name crash files by content.
fn fnv(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The time-bounded mutation loop (`FUZZ_SECONDS`, `FUZZ_TARGETS`, `FUZZ_SEED`); new
/// crashing inputs are written to `dir/regressions/<name>/`.
pub fn fuzz_stable(dir: &Path, targets: &[Target]) {
    let seconds: u64 = std::env::var("FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    let wanted: Vec<String> = std::env::var("FUZZ_TARGETS")
        .unwrap_or_default()
        .split([',', ' '])
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    for w in &wanted {
        assert!(
            targets.iter().any(|t| t.name == w),
            "no harness named {w:?}"
        );
    }
    let seed = std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        })
        | 1;
    let mut found = Vec::new();
    for t in targets
        .iter()
        .filter(|t| wanted.is_empty() || wanted.iter().any(|w| w == t.name))
    {
        let pool = pool(dir, t);
        let mut rng = Rng(seed ^ fnv(t.name.as_bytes()));
        let deadline = Instant::now() + Duration::from_secs(seconds);
        let mut runs = 0u64;
        let mut messages = Vec::new();
        while Instant::now() < deadline {
            let input = mutate(&mut rng, &pool);
            runs += 1;
            if let Err(e) = try_run(t, &input) {
                // One file per distinct panic site and message.
                if !messages.contains(&e) {
                    let rdir = dir.join("regressions").join(t.name);
                    std::fs::create_dir_all(&rdir).expect("create regressions dir");
                    let path = rdir.join(format!("crash-{:016x}", fnv(&input)));
                    std::fs::write(&path, &input).expect("write crashing input");
                    found.push(format!("{}: {e}\n  saved as {}", t.name, path.display()));
                    messages.push(e);
                }
                if messages.len() >= 5 {
                    break;
                }
            }
        }
        eprintln!(
            "{:>20}: {runs} runs in {seconds} s, {} distinct panics (seed {seed})",
            t.name,
            messages.len()
        );
    }
    assert!(
        found.is_empty(),
        "new crashing inputs:\n{}",
        found.join("\n")
    );
}

/// Writes each harness's seeds to `FUZZ_CORPUS_DIR/<name>/` (default `dir/corpus`).
pub fn write_seeds(dir: &Path, targets: &[Target]) {
    let out = std::env::var_os("FUZZ_CORPUS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| dir.join("corpus"));
    for t in targets {
        let d = out.join(t.name);
        std::fs::create_dir_all(&d).expect("create corpus dir");
        for (i, s) in (t.seeds)().iter().enumerate() {
            std::fs::write(d.join(format!("seed-{i:02}")), s).expect("write seed");
        }
    }
}
