//! The value tree to a [`HubConfig`], collecting every problem with its field and a fix.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::Read;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use config::{Map, Value, ValueKind};
use protocol::keys::{PrivateKey, PublicKey};
use zeroize::Zeroizing;

use super::error::Problem;
use super::{AdmissionConfig, HubConfig, RelayConfig, RelayTls, Store};

const TOP_FIELDS: &[&str] = &[
    "private_key_file",
    "private_key",
    "listen",
    "admission",
    "store",
    "relay",
    "advertise",
];
const ADMISSION_FIELDS: &[&str] = &["allow", "allow_any"];
const RELAY_FIELDS: &[&str] = &["enabled", "rate_mbit", "tls"];
const TLS_FIELDS: &[&str] = &["listen", "cert_file", "key_file"];
/// `relay.rate_mbit` bounds: at least 1 Mbit/s (a relay slower than that is no use), at most
/// 100 Gbit/s (beyond any link a hub has; a typo, not a setting).
const RATE_MBIT: std::ops::RangeInclusive<u64> = 1..=100_000;
/// A key file is 44 base64 characters and a newline; anything much longer is not one.
const MAX_KEY_FILE_LEN: u64 = 1024;
/// Redis's default port, used when a `redis://` URL gives none.
const REDIS_DEFAULT_PORT: u16 = 6379;

fn describe(kind: &ValueKind) -> &'static str {
    match kind {
        ValueKind::Nil => "nothing",
        ValueKind::Boolean(_) => "a boolean",
        ValueKind::I64(_) | ValueKind::I128(_) | ValueKind::U64(_) | ValueKind::U128(_) => {
            "an integer"
        }
        ValueKind::Float(_) => "a number",
        ValueKind::String(_) => "a string",
        ValueKind::Table(_) => "a map",
        ValueKind::Array(_) => "a list",
    }
}

fn wrong(path: &str, expected: &str, v: &Value, problems: &mut Vec<Problem>) {
    problems.push(Problem::new(
        path,
        format!("expected {expected}, found {}", describe(&v.kind)),
    ));
}

/// Takes the field `name` out of `map`; an empty value (`field:` alone) counts as absent.
fn take(map: &mut Map<String, Value>, name: &str) -> Option<Value> {
    map.remove(name)
        .filter(|v| !matches!(v.kind, ValueKind::Nil))
}

fn unknown_fields(map: &Map<String, Value>, at: &str, known: &[&str], problems: &mut Vec<Problem>) {
    let mut unknown: Vec<&String> = map
        .keys()
        .filter(|k| !known.contains(&k.as_str()))
        .collect();
    unknown.sort();
    for k in unknown {
        let path = if at.is_empty() {
            k.clone()
        } else {
            format!("{at}.{k}")
        };
        problems.push(Problem::new(
            path,
            format!("unknown field; expected one of: {}", known.join(", ")),
        ));
    }
}

fn string(v: Value, path: &str, problems: &mut Vec<Problem>) -> Option<String> {
    match v.kind {
        ValueKind::String(s) => Some(s),
        _ => {
            wrong(path, "a string", &v, problems);
            None
        }
    }
}

fn list(v: Value, path: &str, problems: &mut Vec<Problem>) -> Option<Vec<Value>> {
    match v.kind {
        ValueKind::Array(a) => Some(a),
        _ => {
            wrong(path, "a list", &v, problems);
            None
        }
    }
}

/// Checks the whole tree; `None` (with problems) when it is unusable.
pub(super) fn check(
    mut root: Map<String, Value>,
    base_dir: &Path,
    problems: &mut Vec<Problem>,
    warnings: &mut Vec<String>,
) -> Option<HubConfig> {
    unknown_fields(&root, "", TOP_FIELDS, problems);
    let key_file = take(&mut root, "private_key_file");
    let key_inline = take(&mut root, "private_key");
    let key = private_key(key_file, key_inline, base_dir, problems, warnings);
    let listen = listen(take(&mut root, "listen"), problems);
    let admission = admission(
        take(&mut root, "admission"),
        key.as_ref(),
        problems,
        warnings,
    );
    let store = store(take(&mut root, "store"), problems);
    let relay = relay(take(&mut root, "relay"), base_dir, problems);
    let advertise = match take(&mut root, "advertise") {
        None => Some(None),
        Some(v) => string(v, "advertise", problems).and_then(|s| match s.parse::<SocketAddr>() {
            Ok(a) if !a.ip().is_unspecified() && a.port() != 0 => Some(Some(a)),
            _ => {
                problems.push(Problem::new(
                    "advertise",
                    format!(
                        "`{s}` is not a reachable IP:PORT; write the public address peers \
                             of other hubs reach this hub at, e.g. 203.0.113.5:3478"
                    ),
                ));
                None
            }
        }),
    };
    let ((private_key, private_key_file), listen, admission, store, relay, advertise) =
        (key?, listen?, admission?, store?, relay?, advertise?);
    Some(HubConfig {
        source_path: None,
        private_key,
        private_key_file,
        listen,
        admission,
        store,
        relay,
        advertise,
        warnings: Vec::new(),
    })
}

fn relay(v: Option<Value>, base_dir: &Path, problems: &mut Vec<Problem>) -> Option<RelayConfig> {
    let mut out = RelayConfig::default();
    let Some(v) = v else {
        return Some(out);
    };
    let mut map = match v.kind {
        ValueKind::Table(t) => t,
        _ => {
            wrong("relay", "a map (enabled, rate_mbit, tls)", &v, problems);
            return None;
        }
    };
    let before = problems.len();
    unknown_fields(&map, "relay", RELAY_FIELDS, problems);
    if let Some(v) = take(&mut map, "enabled") {
        match v.kind {
            ValueKind::Boolean(b) => out.enabled = b,
            _ => wrong("relay.enabled", "true or false", &v, problems),
        }
    }
    if let Some(v) = take(&mut map, "rate_mbit") {
        let n = match v.kind {
            ValueKind::I64(n) => u64::try_from(n).ok(),
            ValueKind::U64(n) => Some(n),
            _ => {
                wrong("relay.rate_mbit", "an integer (Mbit/s)", &v, problems);
                return None;
            }
        };
        match n.filter(|n| RATE_MBIT.contains(n)) {
            Some(n) => out.rate_mbit = n as u32,
            None => problems.push(Problem::new(
                "relay.rate_mbit",
                format!(
                    "must be from {} to {} (Mbit/s per client)",
                    RATE_MBIT.start(),
                    RATE_MBIT.end()
                ),
            )),
        }
    }
    if let Some(v) = take(&mut map, "tls") {
        out.tls = tls(v, base_dir, problems);
    }
    (problems.len() == before).then_some(out)
}

/// `relay.tls`: the listen address and a certificate and key that rustls accepts.
fn tls(v: Value, base_dir: &Path, problems: &mut Vec<Problem>) -> Option<RelayTls> {
    let mut map = match v.kind {
        ValueKind::Table(t) => t,
        _ => {
            wrong(
                "relay.tls",
                "a map (listen, cert_file, key_file)",
                &v,
                problems,
            );
            return None;
        }
    };
    unknown_fields(&map, "relay.tls", TLS_FIELDS, problems);
    let listen = match take(&mut map, "listen") {
        None => {
            problems.push(Problem::new(
                "relay.tls.listen",
                "missing: the address to serve TLS on, e.g. listen: \"0.0.0.0:443\"",
            ));
            None
        }
        Some(v) => string(v, "relay.tls.listen", problems).and_then(|s| {
            s.parse::<SocketAddr>()
                .map_err(|_| {
                    problems.push(Problem::new(
                        "relay.tls.listen",
                        format!("`{s}` is not IP:PORT; write e.g. 0.0.0.0:443 or [::]:443"),
                    ))
                })
                .ok()
        }),
    };
    let mut file = |name: &str| match take(&mut map, name) {
        None => {
            problems.push(Problem::new(
                format!("relay.tls.{name}"),
                "missing: a PEM file (relative to the configuration's directory)",
            ));
            None
        }
        Some(v) => string(v, &format!("relay.tls.{name}"), problems).map(|s| base_dir.join(s)),
    };
    let cert_file = file("cert_file");
    let key_file = file("key_file");
    let (listen, cert_file, key_file) = (listen?, cert_file?, key_file?);
    if let Err(e) = crate::tls::server_config(&cert_file, &key_file) {
        let s = e.to_string();
        let (field, msg) = s.split_once(": ").unwrap_or(("relay.tls", s.as_str()));
        problems.push(Problem::new(field, msg.to_string()));
        return None;
    }
    Some(RelayTls {
        listen,
        cert_file,
        key_file,
    })
}

fn private_key(
    file: Option<Value>,
    inline: Option<Value>,
    base_dir: &Path,
    problems: &mut Vec<Problem>,
    warnings: &mut Vec<String>,
) -> Option<(PrivateKey, Option<PathBuf>)> {
    match (file, inline) {
        (Some(_), Some(_)) => {
            problems.push(Problem::new(
                "private_key",
                "`private_key_file` and `private_key` are both set; set only one",
            ));
            None
        }
        (None, None) => {
            problems.push(Problem::new(
                "private_key_file",
                "missing: set `private_key_file` to a file made with `vpnctl genkey > hub.key` \
                 (or `private_key` to the key itself)",
            ));
            None
        }
        (None, Some(v)) => {
            let s = string(v, "private_key", problems)?;
            match s.trim().parse::<PrivateKey>() {
                Ok(k) => Some((k, None)),
                Err(e) => {
                    problems.push(Problem::new(
                        "private_key",
                        format!("{e}; make one with `vpnctl genkey`"),
                    ));
                    None
                }
            }
        }
        (Some(v), None) => {
            let s = string(v, "private_key_file", problems)?;
            let path = base_dir.join(&s);
            match read_key_file(&path) {
                Ok((k, mode)) => {
                    if mode & 0o077 != 0 {
                        warnings.push(format!(
                            "private_key_file: {} is accessible by group or others (mode \
                             {mode:04o}); run `chmod 600 {}`",
                            path.display(),
                            path.display()
                        ));
                    }
                    Some((k, Some(path)))
                }
                Err(m) => {
                    problems.push(Problem::new("private_key_file", m));
                    None
                }
            }
        }
    }
}

fn read_key_file(path: &Path) -> Result<(PrivateKey, u32), String> {
    let unreadable = |e: std::io::Error| format!("cannot read key file {}: {e}", path.display());
    let file = File::open(path).map_err(unreadable)?;
    let mode = file.metadata().map_err(unreadable)?.permissions().mode() & 0o7777;
    let mut buf = Zeroizing::new(Vec::with_capacity(64));
    file.take(MAX_KEY_FILE_LEN + 1)
        .read_to_end(&mut buf)
        .map_err(unreadable)?;
    if buf.len() as u64 > MAX_KEY_FILE_LEN {
        return Err(format!(
            "key file {} is larger than {MAX_KEY_FILE_LEN} bytes; it does not hold just a key",
            path.display()
        ));
    }
    let invalid = |e: &dyn std::fmt::Display| {
        format!(
            "key file {}: {e}; make one with `vpnctl genkey > {}`",
            path.display(),
            path.display()
        )
    };
    let text = std::str::from_utf8(&buf).map_err(|_| invalid(&"not valid base64"))?;
    let key = text.trim().parse::<PrivateKey>().map_err(|e| invalid(&e))?;
    Ok((key, mode))
}

fn listen(v: Option<Value>, problems: &mut Vec<Problem>) -> Option<Vec<SocketAddr>> {
    let Some(v) = v else {
        problems.push(Problem::new(
            "listen",
            "missing: list the addresses to serve, e.g. listen: [\"0.0.0.0:3478\"]",
        ));
        return None;
    };
    let items = list(v, "listen", problems)?;
    if items.is_empty() {
        problems.push(Problem::new(
            "listen",
            "must not be empty: list at least one address, e.g. \"0.0.0.0:3478\"",
        ));
        return None;
    }
    let before = problems.len();
    let mut out: Vec<SocketAddr> = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        let path = format!("listen[{i}]");
        let Some(s) = string(item, &path, problems) else {
            continue;
        };
        match s.trim().parse::<SocketAddr>() {
            Ok(a) => {
                if let Some(j) = out.iter().position(|o| *o == a) {
                    problems.push(Problem::new(path, format!("{a} is already listen[{j}]")));
                } else {
                    out.push(a);
                }
            }
            Err(_) => problems.push(Problem::new(
                path,
                format!(
                    "`{s}` is not IP:PORT; write e.g. 0.0.0.0:3478 or [::]:3478 (a host name \
                     is not accepted: the hub binds this address)"
                ),
            )),
        }
    }
    (problems.len() == before).then_some(out)
}

fn admission(
    v: Option<Value>,
    own: Option<&(PrivateKey, Option<PathBuf>)>,
    problems: &mut Vec<Problem>,
    warnings: &mut Vec<String>,
) -> Option<AdmissionConfig> {
    let Some(v) = v else {
        problems.push(Problem::new(
            "admission",
            "missing: say who may register, with `allow: [<peer public key>, ...]` or \
             `allow_any: true`",
        ));
        return None;
    };
    let mut map = match v.kind {
        ValueKind::Table(t) => t,
        _ => {
            wrong("admission", "a map (allow, allow_any)", &v, problems);
            return None;
        }
    };
    let before = problems.len();
    unknown_fields(&map, "admission", ADMISSION_FIELDS, problems);
    let any = match take(&mut map, "allow_any") {
        None => false,
        Some(v) => match v.kind {
            ValueKind::Boolean(b) => b,
            _ => {
                wrong("admission.allow_any", "true or false", &v, problems);
                false
            }
        },
    };
    let own = own.map(|(k, _)| k.public_key());
    let mut keys: BTreeSet<PublicKey> = BTreeSet::new();
    let mut given = false;
    if let Some(v) = take(&mut map, "allow") {
        given = true;
        let mut seen: Vec<PublicKey> = Vec::new();
        for (i, item) in list(v, "admission.allow", problems)
            .unwrap_or_default()
            .into_iter()
            .enumerate()
        {
            let path = format!("admission.allow[{i}]");
            let Some(s) = string(item, &path, problems) else {
                continue;
            };
            match s.trim().parse::<PublicKey>() {
                Ok(k) if Some(k) == own => problems.push(Problem::new(
                    path,
                    "this is the hub's own public key; list peers' keys (`vpnctl pubkey`)",
                )),
                Ok(k) => {
                    if let Some(j) = seen.iter().position(|o| *o == k) {
                        problems.push(Problem::new(
                            path,
                            format!("the same key as admission.allow[{j}]; remove one"),
                        ));
                    }
                    seen.push(k);
                    keys.insert(k);
                }
                Err(e) => problems.push(Problem::new(
                    path,
                    format!("{e}; a peer's public key is what `vpnctl pubkey` prints"),
                )),
            }
        }
    }
    if any && given && !keys.is_empty() {
        problems.push(Problem::new(
            "admission",
            "`allow` and `allow_any: true` are both set; set only one (allow_any admits \
             every key)",
        ));
    }
    if problems.len() != before {
        return None;
    }
    if any {
        return Some(AdmissionConfig::Any);
    }
    if keys.is_empty() {
        warnings.push(
            "admission: no peer may register (allow is empty and allow_any is false); the hub \
             only answers STUN"
                .into(),
        );
    }
    Some(AdmissionConfig::Allow(keys))
}

fn store(v: Option<Value>, problems: &mut Vec<Problem>) -> Option<Store> {
    let Some(v) = v else {
        return Some(Store::Memory);
    };
    let s = string(v, "store", problems)?;
    match parse_store(s.trim()) {
        Ok(st) => Some(st),
        Err(m) => {
            problems.push(Problem::new("store", m));
            None
        }
    }
}

/// `memory`, or `redis://HOST[:PORT][/DB]`.
pub(super) fn parse_store(s: &str) -> Result<Store, String> {
    if s == "memory" {
        return Ok(Store::Memory);
    }
    let fix = "write `memory` or redis://HOST:PORT/DB, e.g. redis://127.0.0.1:6379/0";
    let Some(rest) = s.strip_prefix("redis://") else {
        return Err(format!("`{s}` is not a store; {fix}"));
    };
    let (hostport, db) = match rest.split_once('/') {
        Some((hp, "")) => (hp, 0),
        Some((hp, db)) => match db.parse::<u32>() {
            Ok(n) => (hp, n),
            Err(_) => return Err(format!("database `{db}` is not a number; {fix}")),
        },
        None => (rest, 0),
    };
    if hostport.contains('@') {
        return Err(format!("credentials in the URL are not supported; {fix}"));
    }
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        match v6.split_once(']') {
            Some((h, "")) => (h, REDIS_DEFAULT_PORT),
            Some((h, p)) => match p.strip_prefix(':').and_then(|p| p.parse::<u16>().ok()) {
                Some(port) if port != 0 => (h, port),
                _ => return Err(format!("bad port in `{s}`; {fix}")),
            },
            None => return Err(format!("unclosed `[` in `{s}`; {fix}")),
        }
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => match p.parse::<u16>() {
                Ok(port) if port != 0 => (h, port),
                _ => return Err(format!("port `{p}` is not 1 to 65535; {fix}")),
            },
            None => (hostport, REDIS_DEFAULT_PORT),
        }
    };
    if host.is_empty() {
        return Err(format!("no host in `{s}`; {fix}"));
    }
    Ok(Store::Redis {
        host: host.to_string(),
        port,
        db,
    })
}
