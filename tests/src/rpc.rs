//! Raw JSON-RPC 2.0 calls on vpnd's control socket, for methods `vpnctl`
//! has no subcommand for (such as the test-only `debug.panic_peer`) and for
//! checking the wire answer itself.
//!
//! One request line out, one response line back, on a fresh connection,
//! with a deadline on the whole exchange.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};

/// Deadline for one call (connect, write, read).
pub const RPC_TIMEOUT: Duration = Duration::from_secs(10);

/// Calls `method` with `params` on the control socket at `socket`.
///
/// Returns `Ok(result)` or `Err(error object)` as the daemon answered;
/// transport problems (no socket, timeout, a line that is not a response)
/// are reported as `Err` with a JSON string describing them.
pub fn rpc_call(socket: &Path, method: &str, params: Option<Value>) -> Result<Value, Value> {
    let transport = |what: &str, e: &dyn std::fmt::Display| {
        Err(Value::from(format!(
            "{method} on {}: {what}: {e}",
            socket.display()
        )))
    };
    let stream = match UnixStream::connect(socket) {
        Ok(s) => s,
        Err(e) => return transport("connect", &e),
    };
    for r in [
        stream.set_read_timeout(Some(RPC_TIMEOUT)),
        stream.set_write_timeout(Some(RPC_TIMEOUT)),
    ] {
        if let Err(e) = r {
            return transport("set timeout", &e);
        }
    }
    let mut request = json!({"jsonrpc": "2.0", "method": method, "id": 1});
    if let Some(p) = params {
        request["params"] = p;
    }
    let mut line = request.to_string();
    line.push('\n');
    if let Err(e) = (&stream).write_all(line.as_bytes()) {
        return transport("write", &e);
    }
    let mut answer = String::new();
    if let Err(e) = BufReader::new(&stream).read_line(&mut answer) {
        return transport("read", &e);
    }
    let response: Value = match serde_json::from_str(&answer) {
        Ok(v) => v,
        Err(e) => return transport(&format!("bad response {answer:?}"), &e),
    };
    match (response.get("result"), response.get("error")) {
        (Some(r), None) => Ok(r.clone()),
        (None, Some(e)) => Err(e.clone()),
        _ => transport("malformed response", &answer),
    }
}

/// [`rpc_call`] that must succeed.
///
/// # Panics
/// With the error object if the daemon refused or could not be reached.
pub fn rpc_ok(socket: &Path, method: &str, params: Option<Value>) -> Value {
    rpc_call(socket, method, params.clone())
        .unwrap_or_else(|e| panic!("JSON-RPC {method} {params:?} failed: {e}"))
}
