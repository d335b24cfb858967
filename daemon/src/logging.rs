//! Logging through tracing, to stderr or to a file: text or JSON, level from `--log-level` or
//! `RUST_LOG`.

use tracing_subscriber::fmt::writer::BoxMakeWriter;
use tracing_subscriber::EnvFilter;

/// Environment variable naming a file to append the log to instead of stderr (useful once the
/// daemon has detached, when stderr goes nowhere).
pub const LOG_FILE_ENV: &str = "VPND_LOG_FILE";

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum LogFormat {
    /// Human-readable text.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Installs the global subscriber writing to stderr. `level` wins over `RUST_LOG`; default
/// `info`.
pub fn init(level: Option<&str>, format: LogFormat) {
    init_with(level, format, None);
}

/// Whether the log is human text on stderr: then an error logged there needs no second,
/// plain copy on stderr.
static TEXT_ON_STDERR: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether a fatal error logged at ERROR already reached the user's terminal (or the journal)
/// as a readable line: the log is text on stderr and errors are not filtered out.
pub fn errors_shown_on_stderr() -> bool {
    TEXT_ON_STDERR.load(std::sync::atomic::Ordering::Relaxed)
        && tracing::level_filters::LevelFilter::current() >= tracing::Level::ERROR
}

/// Installs the global subscriber writing to `file` if given (appending, without colours),
/// else to stderr.
pub fn init_with(level: Option<&str>, format: LogFormat, file: Option<std::fs::File>) {
    TEXT_ON_STDERR.store(
        file.is_none() && format == LogFormat::Text,
        std::sync::atomic::Ordering::Relaxed,
    );
    let filter = match level {
        Some(l) => EnvFilter::try_new(l).unwrap_or_else(|_| EnvFilter::new("info")),
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
    };
    let (writer, ansi) = match file {
        Some(f) => (BoxMakeWriter::new(std::sync::Mutex::new(f)), false),
        None => (
            BoxMakeWriter::new(std::io::stderr),
            std::io::IsTerminal::is_terminal(&std::io::stderr()),
        ),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(ansi);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// Opens the file named by [`LOG_FILE_ENV`] for appending (mode 0600 when created), if set.
pub fn open_log_file() -> Result<Option<std::fs::File>, String> {
    use std::os::unix::fs::OpenOptionsExt;
    let Some(path) = std::env::var_os(LOG_FILE_ENV).filter(|p| !p.is_empty()) else {
        return Ok(None);
    };
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(&path)
        .map(Some)
        .map_err(|e| format!("{LOG_FILE_ENV}={}: {e}", path.to_string_lossy()))
}
