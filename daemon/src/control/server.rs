//! The local-socket listener: one task per client, size-limited line framing, no client can
//! block another or the data plane.

use crate::control::methods;
use crate::vocab::Daemon;
use interprocess::local_socket::tokio::prelude::*;
use interprocess::local_socket::{GenericFilePath, ListenerOptions};
use protocol::rpc::{self, Response, RpcError, MAX_MESSAGE_SIZE};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// A client that sends nothing for this long is disconnected.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Errors starting the server.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// Another daemon is serving this socket.
    #[error(
        "control socket {0} is in use by another running vpnd (one in another network namespace \
         with the same interface name shares the default path); give this one its own \
         control.socket"
    )]
    InUse(PathBuf),
    /// Binding failed.
    #[error("control socket {path}: {source}")]
    Io {
        /// The socket path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

/// Mode of a socket directory vpnd creates: others may traverse it to reach a socket whose
/// own mode decides who connects.
const SOCKET_DIR_MODE: u32 = 0o755;

/// Binds the control socket (mode 0600, or 0660 with `group`), replacing a stale socket file.
///
/// The modes are set explicitly after binding, so the process umask (022 under most service
/// managers) cannot take the group's write bit away: connecting needs write permission.
pub fn bind(
    path: &Path,
    group: Option<&str>,
) -> Result<interprocess::local_socket::tokio::Listener, ServerError> {
    let io = |source| ServerError::Io {
        path: path.to_path_buf(),
        source,
    };
    // Resolve the group first: an unknown group must fail before anything is created.
    #[cfg(unix)]
    let gid = match group {
        Some(g) => Some(
            crate::unix_group::gid_of(g)
                .map_err(io)?
                .ok_or_else(|| io(std::io::Error::other(format!("no such group \"{g}\""))))?,
        ),
        None => None,
    };
    if let Some(dir) = path.parent() {
        if !dir.as_os_str().is_empty() && !dir.exists() {
            std::fs::create_dir_all(dir).map_err(io)?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(dir, std::fs::Permissions::from_mode(SOCKET_DIR_MODE))
                    .map_err(io)?;
            }
        }
    }
    if path.exists() {
        // A live daemon answers; a stale file from a crash does not.
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(ServerError::InUse(path.to_path_buf()));
        }
        std::fs::remove_file(path).map_err(io)?;
    }
    let mode = if group.is_some() { 0o660 } else { 0o600 };
    let name = path.to_fs_name::<GenericFilePath>().map_err(io)?;
    #[cfg(unix)]
    let opts = {
        use interprocess::os::unix::local_socket::ListenerOptionsExt;
        ListenerOptions::new().name(name).mode(mode)
    };
    let listener = opts.create_tokio().map_err(io)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let fix = || -> std::io::Result<()> {
            if let Some(gid) = gid {
                std::os::unix::fs::chown(path, None, Some(gid))?;
            }
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        };
        if let Err(e) = fix() {
            let _ = std::fs::remove_file(path);
            return Err(io(e));
        }
    }
    Ok(listener)
}

/// Accepts clients until the task is cancelled (their tasks end with it), at most
/// [`crate::accept::MAX_CLIENTS`] at once.
pub async fn serve(listener: interprocess::local_socket::tokio::Listener, daemon: Arc<Daemon>) {
    let limit = daemon.control_clients.clone();
    crate::accept::serve(listener, "control", limit, move |stream, activity| {
        client(stream, daemon.clone(), activity)
    })
    .await
}

async fn client(
    stream: interprocess::local_socket::tokio::Stream,
    daemon: Arc<Daemon>,
    activity: crate::accept::Activity,
) -> std::io::Result<()> {
    let peer_cred = describe_peer(&stream);
    let stream = Arc::new(stream);
    let mut tx = &*stream;
    let mut rx = BufReader::new(&*stream);
    let mut line = Vec::new();
    loop {
        line.clear();
        activity.idle();
        let read = tokio::time::timeout(IDLE_TIMEOUT, read_limited(&mut rx, &mut line)).await;
        activity.busy();
        let resp = match read {
            Err(_) => return Ok(()),
            Ok(Err(e)) => return Err(e),
            Ok(Ok(ReadOutcome::Eof)) => return Ok(()),
            Ok(Ok(ReadOutcome::TooLarge)) => {
                let r = Response::err(
                    Value::Null,
                    RpcError::new(
                        rpc::INVALID_REQUEST,
                        format!("request larger than {MAX_MESSAGE_SIZE} bytes"),
                    ),
                );
                write_response(&mut tx, &r).await?;
                return Ok(());
            }
            Ok(Ok(ReadOutcome::Line)) => {
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                if crate::accept::peer_gone(&stream) {
                    tracing::debug!(peer = %peer_cred, "control client left before its request ran; not applied");
                    return Ok(());
                }
                match methods::handle_line(&daemon, &line, &peer_cred).await {
                    Some(r) => r,
                    None => continue,
                }
            }
        };
        write_response(&mut tx, &resp).await?;
    }
}

/// Who is on the other end of a control connection (SO_PEERCRED on Linux), for the log line
/// of every mutating call.
fn describe_peer(stream: &interprocess::local_socket::tokio::Stream) -> String {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsFd;
        let fd = match stream {
            interprocess::local_socket::tokio::Stream::UdSocket(s) => s.as_fd(),
        };
        if let Ok(c) = crate::peer_cred::peer_credentials(fd) {
            return format!("pid={} uid={} gid={}", c.pid, c.uid, c.gid);
        }
    }
    let _ = stream;
    "unknown".into()
}

/// What [`read_limited`] read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadOutcome {
    /// A line (without its `\n`; the last bytes before end of stream count as a line).
    Line,
    /// End of stream with nothing read.
    Eof,
    /// The line would exceed [`MAX_MESSAGE_SIZE`]: the connection is answered once and closed.
    TooLarge,
}

/// Reads one `\n`-terminated request line of at most [`MAX_MESSAGE_SIZE`] bytes into `buf`
/// (appended). Public so the fuzz targets can drive the control socket's framing.
pub async fn read_limited<R: tokio::io::AsyncBufRead + Unpin>(
    r: &mut R,
    buf: &mut Vec<u8>,
) -> std::io::Result<ReadOutcome> {
    loop {
        let available = r.fill_buf().await?;
        if available.is_empty() {
            return Ok(if buf.is_empty() {
                ReadOutcome::Eof
            } else {
                ReadOutcome::Line
            });
        }
        let (chunk, consumed, done) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (&available[..i], i + 1, true),
            None => (available, available.len(), false),
        };
        if buf.len() + chunk.len() > MAX_MESSAGE_SIZE {
            return Ok(ReadOutcome::TooLarge);
        }
        buf.extend_from_slice(chunk);
        r.consume(consumed);
        if done {
            return Ok(ReadOutcome::Line);
        }
    }
}

async fn write_response<W: tokio::io::AsyncWrite + Unpin>(
    w: &mut W,
    r: &Response,
) -> std::io::Result<()> {
    let mut out = serde_json::to_vec(r).map_err(std::io::Error::other)?;
    out.push(b'\n');
    w.write_all(&out).await?;
    w.flush().await
}
