//! JSON-RPC method dispatch.

use crate::state::Daemon;
use protocol::rpc::{self, Request, Response, RpcError};
use serde_json::Value;

/// Handles one raw request line and returns the response to write.
pub fn handle_line(daemon: &Daemon, line: &[u8]) -> Response {
    let value: Value = match serde_json::from_slice(line) {
        Ok(v) => v,
        Err(e) => {
            return Response::err(
                Value::Null,
                RpcError::new(rpc::PARSE_ERROR, format!("parse error: {e}")),
            )
        }
    };
    let id = value.get("id").cloned().unwrap_or(Value::Null);
    let req: Request = match serde_json::from_value(value) {
        Ok(r) => r,
        Err(e) => {
            return Response::err(
                id,
                RpcError::new(rpc::INVALID_REQUEST, format!("invalid request: {e}")),
            )
        }
    };
    if req.jsonrpc != rpc::JSONRPC {
        return Response::err(
            id,
            RpcError::new(
                rpc::INVALID_REQUEST,
                "invalid request: jsonrpc must be \"2.0\"",
            ),
        );
    }
    match dispatch(daemon, &req.method, req.params.as_ref()) {
        Ok(v) => Response::ok(id, v),
        Err(e) => Response::err(id, e),
    }
}

fn dispatch(daemon: &Daemon, method: &str, _params: Option<&Value>) -> Result<Value, RpcError> {
    match method {
        "show" => serde_json::to_value(daemon.show())
            .map_err(|e| RpcError::new(rpc::INTERNAL_ERROR, e.to_string())),
        other => Err(RpcError::new(
            rpc::METHOD_NOT_FOUND,
            format!("method not found: {other}"),
        )),
    }
}
