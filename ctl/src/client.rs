//! JSON-RPC 2.0 client for vpnd's control socket.
//!
//! One JSON object per line in each direction (see [`protocol::rpc`]). A [`Client`] holds one
//! connection and may make several calls on it, one after the other; each call has its own
//! deadline covering the write of the request and the read of the whole response line.

use protocol::rpc::{read_message, FrameError, Request, RpcError, JSONRPC};
use serde_json::Value;
use std::io::{self, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Largest response accepted, in bytes: 256 MiB. Requests stay within
/// [`protocol::rpc::MAX_MESSAGE_SIZE`], but a response is as large as the state it describes:
/// `show` of 10,000 peers with 100,000 allowed IPs is about 3 MB. The limit only bounds what a
/// daemon gone wrong could make the client buffer.
pub const MAX_RESPONSE_SIZE: usize = 256 << 20;

/// Timeout that `vpnctl` uses for connecting and for each call that only reads.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Timeout for a call that changes the daemon (peers, interface, reload). vpnd gives each
/// change up to 20 s (`APPLY_TIMEOUT_MS`: a reload that resolves names or replaces sockets)
/// and then answers either way; waiting a little longer reports that answer, where giving
/// up first would call a change that went on to complete a timeout.
pub const CHANGE_TIMEOUT: Duration = Duration::from_secs(25);

/// Exit status for success.
pub const EXIT_OK: u8 = 0;
/// Exit status when the daemon refused the request or answered something unusable.
pub const EXIT_FAILED: u8 = 1;
/// Exit status for usage errors (clap's own default).
pub const EXIT_USAGE: u8 = 2;
/// Exit status when the daemon could not be reached.
pub const EXIT_UNREACHABLE: u8 = 3;

/// Why a call did not produce a result.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The daemon could not be reached, or it went away or stayed silent before answering.
    #[error("cannot reach vpnd at {}: {reason}", path.display())]
    Unreachable {
        /// The socket we tried.
        path: PathBuf,
        /// What went wrong, with a hint about what to check.
        reason: String,
    },
    /// The daemon answered with a JSON-RPC error.
    #[error("{}", .0.message)]
    Refused(RpcError),
    /// The daemon answered something that is not a valid response to our request.
    #[error("bad response from vpnd: {0}")]
    Protocol(String),
}

impl ClientError {
    /// The process exit status for this error: [`EXIT_UNREACHABLE`] (3) when the daemon could
    /// not be reached, else [`EXIT_FAILED`] (1).
    ///
    /// A malformed response is 1, not 3: the daemon is running, so a script that waits for it
    /// to come up by retrying on 3 should not retry forever.
    pub fn exit_code(&self) -> u8 {
        match self {
            ClientError::Unreachable { .. } => EXIT_UNREACHABLE,
            ClientError::Refused(_) | ClientError::Protocol(_) => EXIT_FAILED,
        }
    }
}

/// A connection to vpnd's control socket.
#[derive(Debug)]
pub struct Client {
    path: PathBuf,
    timeout: Duration,
    reader: BufReader<DeadlineStream>,
    next_id: u64,
}

impl Client {
    /// Connects to the socket at `path`, giving up after `timeout`.
    pub fn connect(path: &Path, timeout: Duration) -> Result<Client, ClientError> {
        let stream = connect_with_timeout(path, timeout)?;
        Ok(Client {
            path: path.to_path_buf(),
            timeout,
            reader: BufReader::new(DeadlineStream {
                stream,
                deadline: Instant::now() + timeout,
            }),
            next_id: 1,
        })
    }

    /// Sets the timeout for the following calls.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// The socket this client is connected to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Calls `method` with `params` and returns the `result` of the response.
    ///
    /// Request ids count up from 1 on each connection. The whole exchange must finish within
    /// the client's timeout. A `result` of `null` is returned as [`Value::Null`].
    pub fn call(&mut self, method: &str, params: Option<Value>) -> Result<Value, ClientError> {
        let id = self.next_id;
        self.next_id += 1;
        let request = Request {
            jsonrpc: JSONRPC.into(),
            method: method.into(),
            params,
            id: Some(Value::from(id)),
        };
        let mut line = serde_json::to_vec(&request)
            .map_err(|e| ClientError::Protocol(format!("cannot encode the request ({e})")))?;
        line.push(b'\n');

        self.reader.get_mut().deadline = Instant::now() + self.timeout;
        self.write_all(&line)?;

        let mut buf = Vec::new();
        match read_message(&mut self.reader, &mut buf, MAX_RESPONSE_SIZE) {
            Ok(true) => {}
            Ok(false) => {
                return Err(self.unreachable(
                    "vpnd closed the connection without answering (did it crash or restart?)"
                        .into(),
                ))
            }
            Err(FrameError::TooLarge(max)) => {
                return Err(ClientError::Protocol(format!(
                    "response larger than {max} bytes"
                )))
            }
            Err(FrameError::Io(e)) => {
                return Err(self.unreachable(io_reason(&e, "reading the response")))
            }
        }
        parse_response(&buf, id)
    }

    fn write_all(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        let s = self.reader.get_ref();
        let res = s
            .remaining()
            .and_then(|left| s.stream.set_write_timeout(Some(left)))
            .and_then(|()| (&s.stream).write_all(bytes))
            .and_then(|()| (&s.stream).flush());
        res.map_err(|e| self.unreachable(io_reason(&e, "sending the request")))
    }

    fn unreachable(&self, reason: String) -> ClientError {
        ClientError::Unreachable {
            path: self.path.clone(),
            reason,
        }
    }
}

/// Checks one response line against the request `id` and extracts its result.
fn parse_response(line: &[u8], id: u64) -> Result<Value, ClientError> {
    let value: Value = serde_json::from_slice(line)
        .map_err(|e| ClientError::Protocol(format!("not valid JSON ({e})")))?;
    let Value::Object(mut obj) = value else {
        return Err(ClientError::Protocol("not a JSON object".into()));
    };
    if obj.get("jsonrpc").and_then(Value::as_str) != Some(JSONRPC) {
        return Err(ClientError::Protocol(
            "missing or wrong \"jsonrpc\" version".into(),
        ));
    }
    let error = match obj.remove("error") {
        None => None,
        Some(e) => Some(
            serde_json::from_value::<RpcError>(e)
                .map_err(|e| ClientError::Protocol(format!("malformed error object ({e})")))?,
        ),
    };
    let result = obj.remove("result");
    let resp_id = obj.remove("id");
    match (result, error) {
        (Some(_), Some(_)) => Err(ClientError::Protocol(
            "both \"result\" and \"error\" present".into(),
        )),
        (None, None) => Err(ClientError::Protocol(
            "neither \"result\" nor \"error\" present".into(),
        )),
        // An error with a null id answers a request the daemon could not read: still ours.
        (None, Some(err)) if matches!(resp_id, Some(Value::Null)) => Err(ClientError::Refused(err)),
        (result, error) => {
            if resp_id.as_ref().and_then(Value::as_u64) != Some(id) {
                return Err(ClientError::Protocol(format!(
                    "response id {} does not match request id {id}",
                    resp_id.map_or_else(|| "(missing)".to_string(), |v| v.to_string())
                )));
            }
            match (result, error) {
                (Some(r), None) => Ok(r),
                (None, Some(err)) => Err(ClientError::Refused(err)),
                // Both cases were handled above.
                _ => Err(ClientError::Protocol("inconsistent response".into())),
            }
        }
    }
}

/// Connects in a helper thread so that a daemon whose accept backlog is full (connect blocks)
/// cannot hang us past `timeout`. The thread ends on its own once `connect` returns.
fn connect_with_timeout(path: &Path, timeout: Duration) -> Result<UnixStream, ClientError> {
    let unreachable = |reason: String| ClientError::Unreachable {
        path: path.to_path_buf(),
        reason,
    };
    let (tx, rx) = mpsc::channel();
    let owned = path.to_path_buf();
    std::thread::Builder::new()
        .name("vpnctl-connect".into())
        .spawn(move || {
            // The receiver may be gone after a timeout; then the stream is just dropped.
            let _ = tx.send(UnixStream::connect(owned));
        })
        .map_err(|e| unreachable(format!("cannot start a thread to connect ({e})")))?;
    match rx.recv_timeout(timeout) {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(e)) => Err(unreachable(io_reason(&e, "connecting"))),
        Err(_) => Err(unreachable(format!(
            "no connection within {} s (is vpnd hung or overloaded?)",
            timeout.as_secs_f64()
        ))),
    }
}

/// A human explanation of an I/O error on the control socket, with a hint.
fn io_reason(e: &io::Error, doing: &str) -> String {
    use io::ErrorKind as K;
    match e.kind() {
        K::NotFound => "no such socket (is vpnd running? start it, or point --socket or \
                        VPNCTL_SOCKET at its control socket)"
            .into(),
        K::ConnectionRefused => "connection refused (vpnd is not running; the socket file \
                                 is left over from an earlier run)"
            .into(),
        K::PermissionDenied => "permission denied (run as root or as a user allowed to use \
                                the socket)"
            .into(),
        K::TimedOut | K::WouldBlock => {
            format!("timed out {doing} (is vpnd hung or overloaded?)")
        }
        K::BrokenPipe | K::ConnectionReset | K::UnexpectedEof => {
            format!("vpnd closed the connection while {doing} (did it crash or restart?)")
        }
        _ => format!("{doing} failed: {e}"),
    }
}

/// The socket, read with a deadline: each read waits at most until `deadline`, so a daemon
/// that trickles bytes cannot stretch a call past its timeout.
#[derive(Debug)]
struct DeadlineStream {
    stream: UnixStream,
    deadline: Instant,
}

impl DeadlineStream {
    fn remaining(&self) -> io::Result<Duration> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            Err(io::Error::from(io::ErrorKind::TimedOut))
        } else {
            Ok(left)
        }
    }
}

impl Read for DeadlineStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.remaining()?;
        self.stream.set_read_timeout(Some(left))?;
        self.stream.read(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::io::BufRead;
    use std::os::unix::net::UnixListener;

    fn parse(s: &str) -> Result<Value, ClientError> {
        parse_response(s.as_bytes(), 7)
    }

    #[test]
    fn accepts_results_including_null() {
        assert_eq!(
            parse(r#"{"jsonrpc":"2.0","result":{"a":1},"id":7}"#).unwrap(),
            json!({"a":1})
        );
        assert_eq!(
            parse(r#"{"jsonrpc":"2.0","result":null,"id":7}"#).unwrap(),
            Value::Null
        );
    }

    #[test]
    fn errors_are_refusals() {
        let e =
            parse(r#"{"jsonrpc":"2.0","error":{"code":-32001,"message":"no such peer"},"id":7}"#)
                .unwrap_err();
        assert!(matches!(&e, ClientError::Refused(r) if r.code == -32001));
        assert_eq!(e.to_string(), "no such peer");
        assert_eq!(e.exit_code(), 1);
        let e = parse(r#"{"jsonrpc":"2.0","error":{"code":-32700,"message":"parse"},"id":null}"#)
            .unwrap_err();
        assert!(matches!(e, ClientError::Refused(_)));
    }

    #[test]
    fn malformed_responses_are_protocol_errors() {
        for bad in [
            "",
            "garbage",
            "[1,2]",
            "42",
            r#"{"result":1,"id":7}"#,
            r#"{"jsonrpc":"1.0","result":1,"id":7}"#,
            r#"{"jsonrpc":"2.0","id":7}"#,
            r#"{"jsonrpc":"2.0","result":1,"error":{"code":1,"message":"x"},"id":7}"#,
            r#"{"jsonrpc":"2.0","result":1,"id":8}"#,
            r#"{"jsonrpc":"2.0","result":1,"id":"7"}"#,
            r#"{"jsonrpc":"2.0","result":1}"#,
            r#"{"jsonrpc":"2.0","error":"oops","id":7}"#,
            r#"{"jsonrpc":"2.0","error":{"code":"x","message":1},"id":7}"#,
        ] {
            let e = parse(bad).unwrap_err();
            assert!(matches!(e, ClientError::Protocol(_)), "{bad:?} gave {e:?}");
            assert_eq!(e.exit_code(), 1);
        }
    }

    #[test]
    fn missing_socket_is_unreachable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("none.sock");
        let e = Client::connect(&path, Duration::from_secs(1)).unwrap_err();
        assert_eq!(e.exit_code(), 3);
        let msg = e.to_string();
        assert!(msg.contains(&path.display().to_string()), "{msg}");
        assert!(msg.contains("is vpnd running"), "{msg}");
    }

    #[test]
    fn stale_socket_is_refused_connection() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stale.sock");
        drop(UnixListener::bind(&path).unwrap());
        let e = Client::connect(&path, Duration::from_secs(1)).unwrap_err();
        assert_eq!(e.exit_code(), 3);
        assert!(e.to_string().contains("connection refused"), "{e}");
    }

    #[test]
    fn silent_daemon_times_out() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("silent.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let server = std::thread::spawn(move || {
            let (conn, _) = listener.accept().unwrap();
            // Hold the connection open without answering until the client gives up.
            let mut r = std::io::BufReader::new(conn);
            let mut line = String::new();
            let _ = r.read_line(&mut line);
            let _ = r.read_line(&mut line);
        });
        let mut c = Client::connect(&path, Duration::from_millis(300)).unwrap();
        let start = Instant::now();
        let e = c.call("show", None).unwrap_err();
        assert!(start.elapsed() < Duration::from_secs(3));
        assert_eq!(e.exit_code(), 3);
        assert!(e.to_string().contains("timed out"), "{e}");
        drop(c);
        server.join().unwrap();
    }

    #[test]
    fn calls_count_ids_and_keep_buffered_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ok.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let server = std::thread::spawn(move || {
            let (conn, _) = listener.accept().unwrap();
            let mut w = conn.try_clone().unwrap();
            let mut r = std::io::BufReader::new(conn);
            let mut seen = Vec::new();
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            seen.push(line.clone());
            // Answer both calls at once: the second answer must wait in the client's buffer.
            w.write_all(b"{\"jsonrpc\":\"2.0\",\"result\":1,\"id\":1}\n{\"jsonrpc\":\"2.0\",\"result\":2,\"id\":2}\n")
                .unwrap();
            line.clear();
            r.read_line(&mut line).unwrap();
            seen.push(line);
            seen
        });
        let mut c = Client::connect(&path, Duration::from_secs(5)).unwrap();
        assert_eq!(c.call("show", None).unwrap(), json!(1));
        assert_eq!(c.call("peer.show", Some(json!({"k":1}))).unwrap(), json!(2));
        let seen = server.join().unwrap();
        assert_eq!(
            seen[0],
            "{\"jsonrpc\":\"2.0\",\"method\":\"show\",\"id\":1}\n"
        );
        let second: Value = serde_json::from_str(&seen[1]).unwrap();
        assert_eq!(
            second,
            json!({"jsonrpc":"2.0","method":"peer.show","params":{"k":1},"id":2})
        );
    }
}
