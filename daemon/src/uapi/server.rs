//! The UAPI socket: binding it, serving each client in its own task, framing requests within
//! size limits, and joining the pure [`parse`] / [`edit`] /
//! [`render`] steps to the running daemon.

use super::parse::{self, Operation, SetRequest};
use super::render::{self, DeviceState, PeerState};
use super::{edit, errno, MAX_REQUEST_BYTES, MAX_REQUEST_LINES};
use crate::config::{Config, Endpoint};
use crate::vocab::{Daemon, EditError, EditFn, PlannedChange, RootMsg, APPLY_TIMEOUT_MS};
use interprocess::local_socket::tokio::prelude::*;
use interprocess::local_socket::{GenericFilePath, ListenerOptions};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use zeroize::Zeroizing;

/// A client must send a whole request within this time (and may idle this long between
/// requests).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Errors starting the server.
#[derive(Debug, thiserror::Error)]
pub enum UapiError {
    /// Another process (a running vpnd or wireguard-go) serves this interface's socket.
    #[error("UAPI socket {0} is in use by a running daemon")]
    InUse(PathBuf),
    /// Creating the directory or binding failed.
    #[error("UAPI socket {path}: {source}")]
    Io {
        /// The socket path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

/// Binds the UAPI socket with mode 0600, creating its directory with mode 0755 if needed and
/// replacing a stale socket file that nobody answers on.
pub fn bind(path: &Path) -> Result<interprocess::local_socket::tokio::Listener, UapiError> {
    use std::os::unix::fs::DirBuilderExt;
    let io = |source| UapiError::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(dir)
            .map_err(io)?;
    }
    if std::fs::symlink_metadata(path).is_ok() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(UapiError::InUse(path.to_path_buf()));
        }
        std::fs::remove_file(path).map_err(io)?;
    }
    let name = path.to_fs_name::<GenericFilePath>().map_err(io)?;
    use interprocess::os::unix::local_socket::ListenerOptionsExt;
    ListenerOptions::new()
        .name(name)
        .mode(0o600)
        .create_tokio()
        .map_err(io)
}

/// Accepts clients until the task is cancelled (their tasks end with it), at most
/// [`crate::accept::MAX_CLIENTS`] at once.
pub async fn serve(listener: interprocess::local_socket::tokio::Listener, daemon: Arc<Daemon>) {
    let limit = daemon.uapi_clients.clone();
    crate::accept::serve(listener, "UAPI", limit, move |stream, activity| {
        client(stream, daemon.clone(), activity)
    })
    .await
}

async fn client(
    stream: interprocess::local_socket::tokio::Stream,
    daemon: Arc<Daemon>,
    activity: crate::accept::Activity,
) -> std::io::Result<()> {
    let stream = Arc::new(stream);
    let mut tx = &*stream;
    let mut rx = BufReader::new(&*stream);
    loop {
        activity.idle();
        let read = tokio::time::timeout(REQUEST_TIMEOUT, read_request(&mut rx)).await;
        activity.busy();
        let request = match read {
            Err(_) => return Ok(()),
            Ok(r) => r?,
        };
        let answer: Zeroizing<String> = match request {
            Request::Eof | Request::UnknownOperation => return Ok(()),
            Request::TooLarge => {
                reply(&mut tx, &render::render_errno(errno::EMSGSIZE)).await?;
                return Ok(());
            }
            Request::Malformed(why) => {
                tracing::debug!(%why, "UAPI: malformed request");
                reply(&mut tx, &render::render_errno(errno::EINVAL)).await?;
                return Ok(());
            }
            Request::Get => render::render_get(&snapshot(&daemon)),
            Request::Set(_) if crate::accept::peer_gone(&stream) => {
                tracing::debug!("UAPI client left before its set ran; not applied");
                return Ok(());
            }
            Request::Set(body) => {
                let code = match parse::parse_set(body.split('\n')) {
                    Ok(req) => set(&daemon, &req).await,
                    Err(e) => {
                        tracing::warn!(error = %e, "UAPI set refused: malformed");
                        errno::EINVAL
                    }
                };
                Zeroizing::new(render::render_errno(code))
            }
        };
        reply(&mut tx, &answer).await?;
    }
}

async fn reply<W: AsyncWrite + Unpin>(w: &mut W, text: &str) -> std::io::Result<()> {
    w.write_all(text.as_bytes()).await?;
    w.flush().await
}

/// One framed request.
#[derive(Debug)]
pub enum Request {
    /// The client closed the connection between requests.
    Eof,
    /// The first line is not `get=1` or `set=1`: the connection is closed without an answer.
    UnknownOperation,
    /// More than [`MAX_REQUEST_BYTES`] or [`MAX_REQUEST_LINES`].
    TooLarge,
    /// Broken framing (not UTF-8, `get=1` not followed by an empty line).
    Malformed(&'static str),
    /// `get=1` and its empty line.
    Get,
    /// `set=1`: the body lines joined by `\n`, without the final empty line.
    Set(Zeroizing<String>),
}

/// One line read by [`read_line`].
enum Line {
    /// A line without its `\n` (or the last bytes before end of stream).
    Text(Zeroizing<String>),
    /// End of stream with nothing read.
    Eof,
    /// The line would exceed the remaining byte budget.
    TooLong,
    /// Not UTF-8.
    NotUtf8,
}

/// Reads one request (its operation line and, for `set=1`, its body) within the
/// [`MAX_REQUEST_BYTES`] and [`MAX_REQUEST_LINES`] limits. Public so the fuzz targets can
/// drive the UAPI socket's framing.
pub async fn read_request<R: AsyncBufRead + Unpin>(r: &mut R) -> std::io::Result<Request> {
    let mut budget = MAX_REQUEST_BYTES;
    let op = match read_line(r, &mut budget).await? {
        Line::Eof => return Ok(Request::Eof),
        Line::TooLong => return Ok(Request::TooLarge),
        Line::NotUtf8 => return Ok(Request::UnknownOperation),
        Line::Text(t) => t,
    };
    match parse::parse_operation(&op) {
        None => {
            tracing::debug!(
                operation = %op.chars().take(32).collect::<String>(),
                "UAPI: unknown operation; closing"
            );
            Ok(Request::UnknownOperation)
        }
        Some(Operation::Get) => match read_line(r, &mut budget).await? {
            Line::Text(t) if t.is_empty() => Ok(Request::Get),
            Line::Eof => Ok(Request::Get),
            Line::TooLong => Ok(Request::TooLarge),
            _ => Ok(Request::Malformed(
                "get=1 must be followed by an empty line",
            )),
        },
        Some(Operation::Set) => {
            let mut body = Zeroizing::new(String::new());
            let mut lines = 0usize;
            loop {
                match read_line(r, &mut budget).await? {
                    // An empty line ends the request; so does the end of the stream.
                    Line::Text(t) if t.is_empty() => break,
                    Line::Eof => break,
                    Line::Text(t) => {
                        lines += 1;
                        if lines > MAX_REQUEST_LINES {
                            return Ok(Request::TooLarge);
                        }
                        if lines > 1 {
                            body.push('\n');
                        }
                        body.push_str(&t);
                    }
                    Line::TooLong => return Ok(Request::TooLarge),
                    Line::NotUtf8 => return Ok(Request::Malformed("request is not UTF-8")),
                }
            }
            Ok(Request::Set(body))
        }
    }
}

/// Reads one `\n`-terminated line, charging its bytes to `budget`.
async fn read_line<R: AsyncBufRead + Unpin>(
    r: &mut R,
    budget: &mut usize,
) -> std::io::Result<Line> {
    let mut buf = Zeroizing::new(Vec::new());
    let mut saw_any = false;
    loop {
        let available = r.fill_buf().await?;
        if available.is_empty() {
            if !saw_any {
                return Ok(Line::Eof);
            }
            break;
        }
        saw_any = true;
        let (chunk, consumed, done) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (&available[..i], i + 1, true),
            None => (available, available.len(), false),
        };
        if consumed > *budget {
            return Ok(Line::TooLong);
        }
        *budget -= consumed;
        buf.extend_from_slice(chunk);
        r.consume(consumed);
        if done {
            break;
        }
    }
    match std::str::from_utf8(&buf) {
        Ok(s) => Ok(Line::Text(Zeroizing::new(s.to_owned()))),
        Err(_) => Ok(Line::NotUtf8),
    }
}

/// The configuration joined with each peer's live state, as `get` reports it.
pub fn snapshot(d: &Daemon) -> DeviceState {
    let cfg = d.config.read().clone();
    let peers = cfg
        .peers
        .iter()
        .map(|pc| {
            let mut st = PeerState {
                public_key: pc.public_key,
                preshared_key: pc.preshared_key.clone(),
                endpoint: match &pc.endpoint {
                    Some(Endpoint::Addr(a)) => Some(*a),
                    _ => None,
                },
                last_handshake: None,
                tx_bytes: 0,
                rx_bytes: 0,
                persistent_keepalive: pc.persistent_keepalive,
                allowed_ips: pc.allowed_ips.clone(),
            };
            if let Some(h) = d.dp.router.by_key(&pc.public_key) {
                let cell = h.cell.lock();
                let p = &cell.peer;
                if let Some(e) = p.endpoint() {
                    st.endpoint = Some(e);
                }
                st.last_handshake = p.last_handshake_unix();
                let s = p.stats();
                st.tx_bytes = s.tx_bytes;
                st.rx_bytes = s.rx_bytes;
            }
            st
        })
        .collect();
    DeviceState {
        private_key: cfg.interface.private_key.clone(),
        listen_port: d.dp.udp().port(),
        fwmark: cfg.interface.fwmark,
        peers,
    }
}

/// Applies a parsed `set` through the root; returns the errno to answer with.
pub async fn set(d: &Daemon, req: &SetRequest) -> i32 {
    // The root applies the request to the configuration in force at its turn, so concurrent
    // changes (vpnctl, wg, reloads) do not undo each other.
    let req = req.clone();
    let change: EditFn = Box::new(move |current: &Config| {
        Ok(PlannedChange {
            config: edit::apply_set(current, &req),
            save: false,
        })
    });
    match ractor::call_t!(d.root, RootMsg::Edit, APPLY_TIMEOUT_MS, change) {
        Err(e) => {
            tracing::error!(error = %e, "UAPI set: the daemon did not apply the change");
            errno::EIO
        }
        Ok(Ok(done)) => {
            for l in done.report.lines() {
                tracing::info!("UAPI set: {l}");
            }
            errno::OK
        }
        Ok(Err(EditError::Request(e))) => {
            tracing::warn!("UAPI set refused: {}", e.message);
            errno::EINVAL
        }
        Ok(Err(EditError::Refused(problems))) => {
            for p in &problems {
                tracing::warn!("UAPI set refused: {p}");
            }
            errno_for(&problems)
        }
    }
}

/// The errno for a refused change, from the field the first problem names.
pub fn errno_for(problems: &[String]) -> i32 {
    let first = problems.first().map(String::as_str).unwrap_or_default();
    if first.starts_with("interface.listen_port") {
        errno::EADDRINUSE
    } else if first.starts_with("interface.fwmark") && first.contains("not permitted") {
        errno::EPERM
    } else {
        errno::EINVAL
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn frame(input: &[u8]) -> Vec<String> {
        let mut r = BufReader::new(input);
        let mut out = Vec::new();
        loop {
            let s = match read_request(&mut r).await.unwrap() {
                Request::Eof => break,
                Request::UnknownOperation => "unknown".to_string(),
                Request::TooLarge => "too large".to_string(),
                Request::Malformed(m) => format!("malformed: {m}"),
                Request::Get => "get".to_string(),
                Request::Set(b) => format!("set: {:?}", &*b),
            };
            let stop = !s.starts_with("get") && !s.starts_with("set");
            out.push(s);
            if stop {
                break;
            }
        }
        out
    }

    #[tokio::test]
    async fn framing() {
        assert_eq!(frame(b"get=1\n\n").await, ["get"]);
        assert_eq!(
            frame(b"set=1\nlisten_port=1\nfwmark=2\n\nget=1\n\n").await,
            ["set: \"listen_port=1\\nfwmark=2\"", "get"]
        );
        // End of stream ends a set like the empty line.
        assert_eq!(frame(b"set=1\na=b").await, ["set: \"a=b\""]);
        assert_eq!(frame(b"set=1\n\n").await, ["set: \"\""]);
        assert_eq!(frame(b"hello\n").await, ["unknown"]);
        assert_eq!(
            frame(b"get=1\nx\n").await,
            ["malformed: get=1 must be followed by an empty line"]
        );
        assert_eq!(
            frame(b"set=1\n\xff\n\n").await,
            ["malformed: request is not UTF-8"]
        );
        assert_eq!(frame(b"").await, Vec::<String>::new());
    }

    #[tokio::test]
    async fn size_limits() {
        let mut big = b"set=1\n".to_vec();
        big.extend(std::iter::repeat_n(b'a', MAX_REQUEST_BYTES));
        assert_eq!(frame(&big).await, ["too large"]);
        let mut many = b"set=1\n".to_vec();
        for _ in 0..=MAX_REQUEST_LINES {
            many.extend_from_slice(b"a=b\n");
        }
        assert_eq!(frame(&many).await, ["too large"]);
    }

    #[test]
    fn errnos_for_refusals() {
        let p = |s: &str| vec![s.to_string()];
        assert_eq!(
            errno_for(&p("interface.listen_port: 51820 is already in use; ...")),
            errno::EADDRINUSE
        );
        assert_eq!(
            errno_for(&p(
                "interface.fwmark: cannot set 1: Operation not permitted"
            )),
            errno::EPERM
        );
        assert_eq!(
            errno_for(&p("peers[0].public_key: listed twice")),
            errno::EINVAL
        );
        assert_eq!(errno_for(&[]), errno::EINVAL);
    }
}
