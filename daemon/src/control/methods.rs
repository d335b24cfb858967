//! JSON-RPC method dispatch. Every change builds a complete new configuration and hands it to
//! the root supervisor, the same path a reload and the UAPI take.

use crate::config::{Config, Endpoint, PeerConfig};
use crate::reconfig::ChangeReport;
use crate::vocab::Daemon;
pub use crate::vocab::PlannedChange;
use crate::vocab::{EditError, EditFn, RootMsg, APPLY_TIMEOUT_MS};
use protocol::allowed_ips::IpPrefix;
use protocol::keys::{PresharedKey, PrivateKey, PublicKey};
use protocol::rpc::{self, *};
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Decodes one raw request line: a JSON-RPC 2.0 request, or the error response to send for it
/// (parse error, invalid request). The request's `id` is exactly the line's (`Some(Null)` for
/// `"id": null`, `None` for a notification). Pure, so it can be fuzzed without a daemon.
pub fn parse_request(line: &[u8]) -> Result<Request, Box<Response>> {
    let value: Value = match serde_json::from_slice(line) {
        Ok(v) => v,
        Err(e) => {
            return Err(Box::new(Response::err(
                Value::Null,
                RpcError::new(rpc::PARSE_ERROR, format!("parse error: {e}")),
            )))
        }
    };
    let id = value.get("id").cloned();
    let mut req: Request = match serde_json::from_value(value) {
        Ok(r) => r,
        Err(e) => {
            return Err(Box::new(Response::err(
                id.unwrap_or(Value::Null),
                RpcError::new(rpc::INVALID_REQUEST, format!("invalid request: {e}")),
            )))
        }
    };
    if req.jsonrpc != rpc::JSONRPC {
        return Err(Box::new(Response::err(
            id.unwrap_or(Value::Null),
            RpcError::new(
                rpc::INVALID_REQUEST,
                "invalid request: jsonrpc must be \"2.0\"",
            ),
        )));
    }
    // `"id": null` is an id (the response carries it), not a notification; serde would read
    // it as `None`.
    req.id = id;
    Ok(req)
}

/// Handles one raw request line and returns the response to write (`None` for a
/// notification, which gets no response).
pub async fn handle_line(daemon: &Daemon, line: &[u8], client: &str) -> Option<Response> {
    let req = match parse_request(line) {
        Ok(r) => r,
        Err(resp) => return Some(*resp),
    };
    let id = req.id.clone();
    if is_mutating(&req.method) {
        tracing::info!(method = %req.method, client, "control request");
    }
    let result = dispatch(daemon, &req.method, req.params).await;
    let id = id?;
    Some(match result {
        Ok(v) => Response::ok(id, v),
        Err(e) => Response::err(id, e),
    })
}

fn is_mutating(method: &str) -> bool {
    matches!(
        method,
        "peer.add" | "peer.update" | "peer.remove" | "reload" | "interface.set"
    ) || method.starts_with("debug.")
}

fn invalid(msg: impl Into<String>) -> RpcError {
    RpcError::new(rpc::INVALID_PARAMS, msg)
}

fn params<T: DeserializeOwned + Default>(p: Option<Value>, required: bool) -> Result<T, RpcError> {
    match p {
        None | Some(Value::Null) if !required => Ok(T::default()),
        None | Some(Value::Null) => Err(invalid("invalid params: missing params object")),
        Some(v @ Value::Object(_)) => serde_path_to_error::deserialize(v).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            if path == "." {
                invalid(format!("invalid params: {inner}"))
            } else {
                invalid(format!("invalid params: {path}: {inner}"))
            }
        }),
        Some(_) => Err(invalid("invalid params: params must be an object")),
    }
}

fn to_value<T: serde::Serialize>(v: &T) -> Result<Value, RpcError> {
    serde_json::to_value(v).map_err(|e| RpcError::new(rpc::INTERNAL_ERROR, e.to_string()))
}

async fn dispatch(daemon: &Daemon, method: &str, p: Option<Value>) -> Result<Value, RpcError> {
    match method {
        "show" => to_value(&daemon.show_live().await),
        "peer.list" => to_value(&daemon.show().peers),
        "peer.show" => {
            let sel: PeerSelector = required(p)?;
            let cfg = daemon.config.read().clone();
            let i = find_peer(&cfg, &sel.peer)?;
            let info = daemon.peer_info(&cfg.peers[i]);
            let restarts = daemon
                .restarts
                .read()
                .get(&cfg.peers[i].public_key)
                .copied()
                .unwrap_or(0);
            to_value(&PeerShowResult {
                peer: info,
                restarts,
            })
        }
        "peer.add" | "peer.update" | "peer.remove" | "interface.set" => {
            change(daemon, method, p).await
        }
        "netcheck" => {
            let _: ReloadParams = params(p, false)?;
            if !daemon.config.read().nat.is_enabled() {
                return Err(RpcError::new(
                    rpc::REFUSED,
                    "netcheck: no hubs or stun_servers are configured; add them to the \
                     configuration (see docs/nat-traversal.md)",
                ));
            }
            let wait = crate::actors::nat::NETCHECK_WAIT + std::time::Duration::from_secs(2);
            let info = ractor::call_t!(daemon.root, RootMsg::Netcheck, wait.as_millis() as u64)
                .map_err(|e| RpcError::new(rpc::INTERNAL_ERROR, e.to_string()))?;
            to_value(&info)
        }
        "reload" => {
            let _: ReloadParams = params(p, false)?;
            let r = ractor::call_t!(daemon.root, RootMsg::Reload, APPLY_TIMEOUT_MS)
                .map_err(|e| RpcError::new(rpc::INTERNAL_ERROR, e.to_string()))?;
            match r {
                Ok(rep) => to_value(&change_result(rep, false)),
                Err(problems) => Err(refused(problems)),
            }
        }
        "config.check" => {
            let c: ConfigCheckParams = required(p)?;
            let config_file = daemon.config.read().source_path.clone();
            // Reading files blocks: off the runtime's worker threads.
            let r = tokio::task::spawn_blocking(move || {
                super::check::config_check(config_file.as_deref(), c)
            })
            .await
            .map_err(|e| RpcError::new(rpc::INTERNAL_ERROR, e.to_string()))??;
            to_value(&r)
        }
        "stats" => {
            let dp = &daemon.dp;
            to_value(&StatsResult {
                drops: dp.drops.snapshot(),
                handshake_queue: dp.handshakes.depth(),
                under_load: dp.handshakes.is_under_load(std::time::Instant::now()),
                clients_refused: [
                    ("control".to_string(), daemon.control_clients.refused()),
                    ("uapi".to_string(), daemon.uapi_clients.refused()),
                ]
                .into(),
            })
        }
        #[cfg(feature = "fault-injection")]
        "debug.panic_peer" => {
            let sel: PeerSelector = required(p)?;
            let cfg = daemon.config.read().clone();
            let i = find_peer(&cfg, &sel.peer)?;
            daemon
                .root
                .cast(RootMsg::PanicPeer(cfg.peers[i].public_key))
                .map_err(|e| RpcError::new(rpc::INTERNAL_ERROR, e.to_string()))?;
            Ok(Value::Bool(true))
        }
        #[cfg(feature = "fault-injection")]
        "debug.panic_dataplane" => {
            #[derive(serde::Deserialize, Default)]
            #[serde(deny_unknown_fields)]
            struct TaskSelector {
                task: String,
            }
            use crate::dataplane::tasks::Task;
            let sel: TaskSelector = required(p)?;
            let task = Task::from_name(&sel.task).ok_or_else(|| {
                RpcError::new(
                    rpc::INVALID_PARAMS,
                    format!(
                        "task: unknown data-plane task {:?} (one of receive_v4, receive_v6, send, handshake)",
                        sel.task
                    ),
                )
            })?;
            daemon.dp.faults.arm(task);
            if task == Task::Handshake {
                daemon.dp.handshakes.poke();
            }
            Ok(Value::Bool(true))
        }
        other => Err(RpcError::new(
            rpc::METHOD_NOT_FOUND,
            format!("method not found: {other}"),
        )),
    }
}

/// Builds, from `current`, the configuration that `peer.add`, `peer.update`, `peer.remove` or
/// `interface.set` with `params` asks for; `Ok(None)` for any other method. Pure: nothing is
/// applied (the daemon then hands the result to the root, which checks it against the running
/// configuration with [`crate::reconfig::check`]), so the whole parameter path can be fuzzed
/// without a daemon.
pub fn plan_change(
    current: &Config,
    method: &str,
    p: Option<Value>,
) -> Result<Option<PlannedChange>, RpcError> {
    let mut cfg = current.clone();
    let save = match method {
        "peer.add" => {
            let a: PeerAddParams = required(p)?;
            let save = a.save;
            let pc = new_peer(a)?;
            if cfg.peers.iter().any(|x| x.public_key == pc.public_key) {
                return Err(RpcError::new(
                    rpc::REFUSED,
                    format!("public_key: peer {} already exists", pc.public_key),
                ));
            }
            cfg.peers.push(pc);
            save
        }
        "peer.update" => {
            let u: PeerUpdateParams = required(p)?;
            let save = u.save;
            let i = find_peer(&cfg, &u.peer)?;
            update_peer(&mut cfg.peers[i], u)?;
            save
        }
        "peer.remove" => {
            let r: PeerRemoveParams = required(p)?;
            let i = find_peer(&cfg, &r.peer)?;
            cfg.peers.remove(i);
            r.save
        }
        "interface.set" => {
            let s: InterfaceSetParams = required(p)?;
            if let Some(port) = s.listen_port {
                cfg.interface.listen_port = (port != 0).then_some(port);
            }
            if let Some(k) = s.private_key {
                let key = k
                    .parse::<PrivateKey>()
                    .map_err(|e| invalid(format!("private_key: {e}")))?;
                // The same key again keeps its key file; a new one goes inline (and the saved
                // file becomes 0600).
                if cfg.interface.private_key.as_ref() != Some(&key) {
                    cfg.interface.private_key_file = None;
                }
                cfg.interface.private_key = Some(key);
            }
            if let Some(m) = s.mtu {
                cfg.interface.mtu = m;
            }
            if let Some(a) = s.addresses {
                cfg.interface.addresses = prefixes(&a, "addresses", false)?;
            }
            s.save
        }
        _ => return Ok(None),
    };
    Ok(Some(PlannedChange { config: cfg, save }))
}

fn required<T: DeserializeOwned + Default>(p: Option<Value>) -> Result<T, RpcError> {
    params(p, true)
}

fn refused(problems: Vec<String>) -> RpcError {
    let mut e = RpcError::new(rpc::REFUSED, problems.join("; "));
    e.data = Some(Value::from(problems));
    e
}

fn change_result(r: ChangeReport, saved: bool) -> ChangeResult {
    ChangeResult {
        interface: r.interface,
        peers_added: r.peers_added,
        peers_removed: r.peers_removed,
        peers_changed: r.peers_changed,
        saved,
    }
}

/// Has the root apply `method` with `p` to the configuration in force when the change's turn
/// comes (and save it if asked), so concurrent changes compose instead of undoing each other.
async fn change(daemon: &Daemon, method: &str, p: Option<Value>) -> Result<Value, RpcError> {
    let method = method.to_owned();
    let edit: EditFn = Box::new(move |current: &Config| {
        plan_change(current, &method, p)?.ok_or_else(|| {
            RpcError::new(rpc::INTERNAL_ERROR, format!("{method}: no change planned"))
        })
    });
    let r = ractor::call_t!(daemon.root, RootMsg::Edit, APPLY_TIMEOUT_MS, edit)
        .map_err(|e| RpcError::new(rpc::INTERNAL_ERROR, e.to_string()))?;
    match r {
        Ok(done) => {
            let saved = done
                .saved
                .map_err(|e| RpcError::new(rpc::INTERNAL_ERROR, e))?;
            to_value(&change_result(done.report, saved))
        }
        Err(EditError::Request(e)) => Err(e),
        Err(EditError::Refused(problems)) => Err(refused(problems)),
    }
}

/// Finds a peer by base64 public key or by name.
fn find_peer(cfg: &Config, sel: &str) -> Result<usize, RpcError> {
    let by_key = sel.parse::<PublicKey>().ok();
    cfg.peers
        .iter()
        .position(|p| Some(p.public_key) == by_key || p.name.as_deref() == Some(sel))
        .ok_or_else(|| RpcError::new(rpc::NOT_FOUND, format!("peer: no peer `{sel}`")))
}

fn prefixes(list: &[String], field: &str, mask: bool) -> Result<Vec<IpPrefix>, RpcError> {
    list.iter()
        .enumerate()
        .map(|(i, s)| {
            s.parse::<IpPrefix>()
                .map(|p| if mask { p.masked() } else { p })
                .map_err(|e| invalid(format!("{field}[{i}]: invalid CIDR `{s}`: {e}")))
        })
        .collect()
}

fn check_name(n: &str) -> Result<(), RpcError> {
    if n.is_empty() || n.chars().any(char::is_control) || n.len() > 64 {
        return Err(invalid(
            "name: must be 1 to 64 characters without control characters",
        ));
    }
    Ok(())
}

fn new_peer(a: PeerAddParams) -> Result<PeerConfig, RpcError> {
    let public_key = a
        .public_key
        .parse::<PublicKey>()
        .map_err(|e| invalid(format!("public_key: {e}")))?;
    let preshared_key = a
        .preshared_key
        .map(|k| k.parse::<PresharedKey>())
        .transpose()
        .map_err(|e| invalid(format!("preshared_key: {e}")))?;
    let endpoint = a
        .endpoint
        .map(|e| e.parse::<Endpoint>())
        .transpose()
        .map_err(|e| invalid(format!("endpoint: {e}")))?;
    if let Some(n) = &a.name {
        check_name(n)?;
    }
    Ok(PeerConfig {
        name: a.name,
        public_key,
        preshared_key,
        preshared_key_file: None,
        allowed_ips: prefixes(&a.allowed_ips, "allowed_ips", true)?,
        endpoint,
        persistent_keepalive: a.persistent_keepalive.filter(|k| *k > 0),
    })
}

fn update_peer(pc: &mut PeerConfig, u: PeerUpdateParams) -> Result<(), RpcError> {
    if let Some(a) = u.allowed_ips {
        pc.allowed_ips = prefixes(&a, "allowed_ips", true)?;
    }
    if let Some(e) = u.endpoint {
        pc.endpoint = if e.is_empty() {
            None
        } else {
            Some(
                e.parse::<Endpoint>()
                    .map_err(|err| invalid(format!("endpoint: {err}")))?,
            )
        };
    }
    if let Some(k) = u.preshared_key {
        let psk = if k.is_empty() {
            None
        } else {
            Some(
                k.parse::<PresharedKey>()
                    .map_err(|e| invalid(format!("preshared_key: {e}")))?,
            )
        };
        // The same key again keeps its key file.
        if pc.preshared_key != psk {
            pc.preshared_key_file = None;
        }
        pc.preshared_key = psk;
    }
    if let Some(k) = u.persistent_keepalive {
        pc.persistent_keepalive = (k > 0).then_some(k);
    }
    if let Some(n) = u.name {
        if n.is_empty() {
            pc.name = None;
        } else {
            check_name(&n)?;
            pc.name = Some(n);
        }
    }
    Ok(())
}
