//! vpnhub's configuration file (docs/hub.md): YAML, or TOML when the name ends in `.toml`.
//!
//! ```yaml
//! private_key_file: /etc/vpnhub/hub.key   # or private_key: <base64>
//! listen: ["0.0.0.0:3478"]                # each address serves UDP and TCP on that port
//! admission:
//!   allow: [<peer public key>, ...]       # or allow_any: true
//! store: memory                           # or redis://HOST:PORT/DB (several hubs)
//! ```
//!
//! [`load`] returns a checked [`HubConfig`] or a [`ConfigError`] listing every problem, one
//! per line, as `file: field: reason and fix`. Unknown fields are refused.

mod error;
mod syntax;
mod validate;

#[cfg(test)]
mod tests;

pub use error::{ConfigError, Problem};

use std::collections::BTreeSet;
use std::fs::File;
use std::io::Read;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use protocol::keys::{PrivateKey, PublicKey};
use zeroize::Zeroizing;

/// The syntax a configuration is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// YAML, the default.
    Yaml,
    /// TOML, chosen by a `.toml` extension.
    Toml,
}

impl Format {
    /// TOML if the extension is `.toml` (any case), else YAML.
    pub fn from_path(path: &Path) -> Format {
        match path.extension() {
            Some(ext) if ext.eq_ignore_ascii_case("toml") => Format::Toml,
            _ => Format::Yaml,
        }
    }
}

/// Which peers may register.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdmissionConfig {
    /// `allow:` these keys (possibly none: the hub then only answers STUN).
    Allow(BTreeSet<PublicKey>),
    /// `allow_any: true`: any peer that proves its key.
    Any,
}

/// Where presence and signaling live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Store {
    /// In this process (one hub).
    Memory,
    /// A Redis server shared by several hubs (`redis://HOST:PORT/DB`).
    Redis {
        /// Host name or address.
        host: String,
        /// TCP port (6379 when omitted).
        port: u16,
        /// Database number (0 when omitted).
        db: u32,
    },
}

/// The relay (`relay:`; docs/hub.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayConfig {
    /// Whether peers may relay WireGuard through this hub (default true: about one pair of
    /// NATs in five cannot be punched, and admission already says who may use the hub).
    pub enabled: bool,
    /// Sustained relay rate per client, in Mbit/s (default 1,000).
    pub rate_mbit: u32,
    /// The hub's TCP service (registration, signaling and relay) also over TLS, for networks
    /// that let only HTTPS out.
    pub tls: Option<RelayTls>,
}

/// `relay.tls`: where to serve TLS and with which certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayTls {
    /// The TLS listen address (TCP), e.g. `0.0.0.0:443`.
    pub listen: SocketAddr,
    /// PEM certificate chain, resolved against the configuration's directory.
    pub cert_file: PathBuf,
    /// PEM private key of the certificate, resolved the same way.
    pub key_file: PathBuf,
}

impl Default for RelayConfig {
    fn default() -> Self {
        RelayConfig {
            enabled: true,
            rate_mbit: 1000,
            tls: None,
        }
    }
}

/// A checked configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubConfig {
    /// The file it was loaded from, if any.
    pub source_path: Option<PathBuf>,
    /// The hub's static private key (the same format as vpnd's).
    pub private_key: PrivateKey,
    /// The file the key was read from, resolved against the configuration's directory.
    pub private_key_file: Option<PathBuf>,
    /// Addresses served on UDP and TCP; at least one, no repeats.
    pub listen: Vec<SocketAddr>,
    /// Who may register.
    pub admission: AdmissionConfig,
    /// Where presence and signaling live: this process, or Redis shared by several hubs.
    pub store: Store,
    /// The relay.
    pub relay: RelayConfig,
    /// Where peers of other hubs (sharing the store) reach this hub to relay to its peers;
    /// `None`: the first `listen` address, unless it is a wildcard.
    pub advertise: Option<SocketAddr>,
    /// Things that work but deserve attention, as `origin: field: message`; the caller logs
    /// them.
    pub warnings: Vec<String>,
}

/// Reads and checks the configuration at `path`. Key file paths are relative to its directory.
pub fn load(path: &Path) -> Result<HubConfig, ConfigError> {
    let origin = path.display().to_string();
    let fail = |m: String| ConfigError::new(&origin, vec![Problem::new("", m)]);
    let file = File::open(path).map_err(|e| fail(format!("cannot read: {e}")))?;
    let mode = file
        .metadata()
        .map_err(|e| fail(format!("cannot read: {e}")))?
        .permissions()
        .mode();
    let mut bytes = Zeroizing::new(Vec::new());
    file.take(syntax::MAX_TEXT_LEN as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| fail(format!("cannot read: {e}")))?;
    if bytes.len() > syntax::MAX_TEXT_LEN {
        return Err(fail(format!(
            "file is larger than the {}-byte limit",
            syntax::MAX_TEXT_LEN
        )));
    }
    let text = std::str::from_utf8(&bytes).map_err(|_| fail("not valid UTF-8".into()))?;
    let base_dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let mut config = parse_str(text, Format::from_path(path), &origin, base_dir)?;
    config.source_path = Some(path.to_path_buf());
    if config.private_key_file.is_none() && mode & 0o077 != 0 {
        config.warnings.push(format!(
            "{origin}: holds private_key inline but is accessible by group or others (mode \
             {:04o}); run `chmod 600` on it or move the key to private_key_file",
            mode & 0o7777
        ));
    }
    Ok(config)
}

/// Parses and checks a configuration held in memory; `origin` names it in messages and
/// relative paths resolve against `base_dir`. Never panics.
pub fn parse_str(
    text: &str,
    format: Format,
    origin: &str,
    base_dir: &Path,
) -> Result<HubConfig, ConfigError> {
    let root = syntax::parse(text, format).map_err(|p| ConfigError::new(origin, p))?;
    let mut problems = Vec::new();
    let mut warnings = Vec::new();
    match validate::check(root, base_dir, &mut problems, &mut warnings) {
        Some(mut c) if problems.is_empty() => {
            c.warnings = warnings
                .into_iter()
                .map(|w| format!("{origin}: {w}"))
                .collect();
            Ok(c)
        }
        _ => {
            if problems.is_empty() {
                problems.push(Problem::new("", "invalid configuration"));
            }
            Err(ConfigError::new(origin, problems))
        }
    }
}
