//! The daemon's configuration file: loading, validation, and writing it back.
//!
//! A configuration is YAML (TOML when the file name ends in `.toml`) with three sections:
//! `interface` (required), `control` and `peers`. See `docs/configuration.md` for every field.
//!
//! [`load`] and [`parse_str`] return a checked [`Config`] or a [`ConfigError`] listing every
//! problem found, one per line, each with the file, the field and the reason:
//!
//! ```text
//! vpn0.yaml: interface.mtu: 9 is out of range: must be 576 to 65535 (576 is IPv4's minimum datagram size; 65535 is the largest IP packet)
//! vpn0.yaml: peers[1].public_key: not valid base64
//! ```
//!
//! Reading is split by idea: `syntax` turns text into a value tree via the `config`
//! crate, `schema` decodes the tree into raw serde structs, `validate` checks them and builds the
//! [`Config`], and `write` serializes a [`Config`] back to YAML.

mod cidr;
pub mod confine;
mod endpoint;
mod error;
mod hints;
mod keyfile;
mod nat;
mod path;
pub mod save;
mod schema;
mod syntax;
mod validate;
mod write;

pub use cidr::{Cidr, CidrError};
pub use endpoint::{Endpoint, EndpointError};
pub use error::{ConfigError, Problem, ProblemKind};
pub use nat::{HubConfig, HubTls, NatConfig, MAX_HUBS, MAX_STUN_SERVERS};

use protocol::keys::{PresharedKey, PrivateKey, PublicKey};
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// MTU of the TUN device when the file gives none: 1500 less WireGuard's 80 bytes of overhead
/// over IPv6.
pub const DEFAULT_MTU: u16 = 1420;
/// Smallest MTU accepted for an IPv4-only interface (the IPv4 minimum datagram size).
pub const MIN_MTU: u16 = 576;
/// Smallest MTU accepted once any IPv6 address is configured (IPv6's minimum link MTU).
pub const MIN_MTU_IPV6: u16 = 1280;
/// Largest MTU accepted: the largest IP packet.
pub const MAX_MTU: u16 = 65535;
/// Bytes sent or received on one keypair before a new handshake, when the file gives none: 1 GiB.
pub const DEFAULT_REKEY_AFTER_BYTES: u64 = 1 << 30;
/// Directory of the default control socket, `/run/vpnd/<interface name>.sock`.
pub const DEFAULT_SOCKET_DIR: &str = "/run/vpnd";
/// Longest control socket path: `sun_path` is 108 bytes including the terminating NUL.
pub const MAX_SOCKET_PATH_LEN: usize = 107;

/// The default control socket for an interface: `/run/vpnd/<name>.sock`.
pub fn default_socket(interface_name: &str) -> PathBuf {
    Path::new(DEFAULT_SOCKET_DIR).join(format!("{interface_name}.sock"))
}

/// Why `mtu` is no valid `interface.mtu` for an interface with (`has_ipv6`) or without an
/// IPv6 address, if it is not. One function, so that a file, a reload, `vpnctl interface set`
/// and the JSON-RPC API refuse it in the same words, each with the reason for its bounds.
pub fn mtu_problem(mtu: i64, has_ipv6: bool) -> Option<ProblemKind> {
    let (min, note) = if has_ipv6 {
        (
            MIN_MTU_IPV6,
            "1280 is IPv6's minimum link MTU and an address is IPv6; 65535 is the largest IP \
             packet",
        )
    } else {
        (
            MIN_MTU,
            "576 is IPv4's minimum datagram size; 65535 is the largest IP packet",
        )
    };
    (mtu < i64::from(min) || mtu > i64::from(MAX_MTU)).then_some(ProblemKind::OutOfRange {
        value: mtu,
        min: min.into(),
        max: Some(MAX_MTU.into()),
        note: Some(note),
    })
}

/// The syntax a configuration is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// YAML, the default.
    Yaml,
    /// TOML, chosen by a `.toml` file extension.
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

/// A checked configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The file this was loaded from; `None` when it came from [`parse_str`].
    pub source_path: Option<PathBuf>,
    /// The TUN interface and our static identity.
    pub interface: InterfaceConfig,
    /// The control socket.
    pub control: ControlConfig,
    /// The peers, in file order.
    pub peers: Vec<PeerConfig>,
    /// Hubs and STUN servers for NAT traversal (empty: none).
    pub nat: NatConfig,
    /// Things that work but deserve attention (a key file others can read, an allowed IP with
    /// host bits set), each as `origin: field.path: message`. The caller logs them.
    pub warnings: Vec<String>,
}

/// The `interface` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceConfig {
    /// Name of the TUN device: 1 to 15 bytes, no `/`, `:`, whitespace or control characters.
    pub name: String,
    /// Our static private key. A configuration file always has one; a daemon configured
    /// through the UAPI (`vpnd <interface>`) starts without, and sends and answers no handshake
    /// until one is set.
    pub private_key: Option<PrivateKey>,
    /// The file `private_key` was read from (resolved against the configuration's directory), if
    /// it came from one; [`Config::to_yaml`] then writes this reference rather than the key.
    pub private_key_file: Option<PathBuf>,
    /// UDP port to listen on; `None` (absent or 0 in the file) picks any free port.
    pub listen_port: Option<u16>,
    /// Addresses of the interface, with their subnet (`10.10.0.1/24`); host bits are kept.
    pub addresses: Vec<Cidr>,
    /// MTU of the TUN device: at least 576, or 1280 if any address is IPv6.
    pub mtu: u16,
    /// Bytes sent or received on one keypair after which we start a new handshake; at least 1.
    pub rekey_after_bytes: u64,
    /// Firewall mark (`SO_MARK`) put on every outer UDP packet, for policy routing (`wg-quick`
    /// uses it to keep the tunnel's own packets out of a default route through the tunnel).
    /// `None` (or 0) is no mark.
    pub fwmark: Option<u32>,
}

impl InterfaceConfig {
    /// Our static public key, if we have a private key.
    pub fn public_key(&self) -> Option<PublicKey> {
        self.private_key.as_ref().map(PrivateKey::public_key)
    }
}

/// The `control` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlConfig {
    /// Path of the control socket; relative paths are resolved against the configuration's
    /// directory. Defaults to [`default_socket`] of the interface name.
    pub socket: PathBuf,
    /// Group given access to the socket (mode 0660); `None` means owner only (0600).
    pub group: Option<String>,
}

/// One entry of the `peers` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerConfig {
    /// A label for logs and `vpnctl`; unique among peers.
    pub name: Option<String>,
    /// The peer's static public key; unique among peers and not our own.
    pub public_key: PublicKey,
    /// Extra symmetric key mixed into the handshake, if any.
    pub preshared_key: Option<PresharedKey>,
    /// The file `preshared_key` was read from (resolved against the configuration's directory),
    /// if it came from one; [`Config::to_yaml`] then writes this reference rather than the key.
    pub preshared_key_file: Option<PathBuf>,
    /// Source addresses accepted from this peer and destinations routed to it. Host bits are
    /// cleared (`10.0.0.7/24` becomes `10.0.0.0/24`, with a warning); no prefix appears twice
    /// across peers.
    pub allowed_ips: Vec<Cidr>,
    /// Where to send the first handshake; the peer may roam from it.
    pub endpoint: Option<Endpoint>,
    /// Seconds between keepalives when otherwise idle; `None` (absent or 0 in the file) is off.
    pub persistent_keepalive: Option<u16>,
}

impl Config {
    /// The configuration as YAML that [`parse_str`] reads back to an equal `Config` (less
    /// `source_path` and `warnings`). Keys are written as base64, except that a key that came
    /// from a file is written as a reference to that file. All defaults are written out.
    pub fn to_yaml(&self) -> String {
        write::to_yaml(self)
    }

    /// The configuration as TOML, with the same guarantees as [`Config::to_yaml`].
    pub fn to_toml(&self) -> String {
        write::to_toml(self)
    }

    /// The configuration in `format`.
    pub fn to_text(&self, format: Format) -> String {
        match format {
            Format::Yaml => self.to_yaml(),
            Format::Toml => self.to_toml(),
        }
    }

    /// Whether the written configuration holds a secret inline (the private key or a preshared
    /// key rather than references to key files): such a file must be readable by its owner only.
    pub fn holds_inline_secret(&self) -> bool {
        (self.interface.private_key_file.is_none() && self.interface.private_key.is_some())
            || self
                .peers
                .iter()
                .any(|p| p.preshared_key_file.is_none() && p.preshared_key.is_some())
    }
}

/// The configuration of a daemon started without a file (`vpnd <interface>`, the way
/// wireguard-go starts): the interface with the default MTU, no private key, no address, no
/// peer, any free port, and the default control socket. Everything else arrives through the
/// UAPI. Fails if Linux would refuse `name` as an interface name.
pub fn without_file(name: &str) -> Result<Config, String> {
    if let Some(reason) = validate::interface_name_problem(name) {
        return Err(format!(
            "invalid interface name {:?}: {reason}",
            name.escape_debug().to_string()
        ));
    }
    // The socket path must fit in sun_path; the name is at most 15 bytes, so it always does.
    Ok(Config {
        source_path: None,
        interface: InterfaceConfig {
            name: name.to_string(),
            private_key: None,
            private_key_file: None,
            listen_port: None,
            addresses: Vec::new(),
            mtu: DEFAULT_MTU,
            rekey_after_bytes: DEFAULT_REKEY_AFTER_BYTES,
            fwmark: None,
        },
        control: ControlConfig {
            socket: default_socket(name),
            group: None,
        },
        peers: Vec::new(),
        nat: NatConfig::default(),
        warnings: Vec::new(),
    })
}

/// Reads and checks the configuration at `path`.
///
/// The format follows the extension ([`Format::from_path`]); key file paths are relative to the
/// file's directory. Besides the checks of [`parse_str`], warns if the file holds a key inline
/// and is accessible by group or others.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let origin = path.display().to_string();
    let fail = |kind| ConfigError::whole_file(&origin, kind);
    let file = File::open(path).map_err(|e| fail(ProblemKind::Read(e)))?;
    let mode = file
        .metadata()
        .map_err(|e| fail(ProblemKind::Read(e)))?
        .permissions()
        .mode();
    let limit = syntax::MAX_TEXT_LEN;
    let mut bytes = Zeroizing::new(Vec::new());
    file.take(limit as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| fail(ProblemKind::Read(e)))?;
    if bytes.len() > limit {
        return Err(fail(ProblemKind::TooLarge { limit }));
    }
    let text = std::str::from_utf8(&bytes).map_err(|_| fail(ProblemKind::NotUtf8))?;
    let base_dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };

    let mut config = parse_str(text, Format::from_path(path), &origin, base_dir)?;
    config.source_path = Some(path.to_path_buf());
    let inline_secret = config.interface.private_key_file.is_none()
        || config
            .peers
            .iter()
            .any(|p| p.preshared_key.is_some() && p.preshared_key_file.is_none());
    if inline_secret && mode & 0o077 != 0 {
        config.warnings.push(format!(
            "{origin}: holds a key inline but is accessible by group or others (mode {:04o}); \
             run `chmod 600` on it or move the key to a key file",
            mode & 0o7777
        ));
    }
    Ok(config)
}

/// Parses and checks a configuration held in memory.
///
/// `origin` names the text in messages (usually the file name); relative key file and socket
/// paths are resolved against `base_dir`. Never panics: any input gives `Ok` or an error that
/// lists every problem found.
pub fn parse_str(
    text: &str,
    format: Format,
    origin: &str,
    base_dir: &Path,
) -> Result<Config, ConfigError> {
    parse_with(text, format, origin, base_dir, KeyFiles::Anywhere)
}

/// Which key files a check may read.
#[derive(Debug, Clone, Copy)]
pub enum KeyFiles<'a> {
    /// Any the configuration names (the daemon's own configuration, `vpnd --check`).
    Anywhere,
    /// Only files inside this directory (the daemon's configuration directory), for text a
    /// control client sent: the daemon runs as root and must not read files elsewhere for it.
    Within(&'a Path),
    /// None (a daemon started without a configuration file has no such directory).
    None,
}

/// [`parse_str`] for text a control client sent: relative key file paths are taken from
/// `dir`, and key files are read only as `key_files` allows.
pub fn parse_untrusted(
    text: &str,
    format: Format,
    origin: &str,
    dir: &Path,
    key_files: KeyFiles<'_>,
) -> Result<Config, ConfigError> {
    parse_with(text, format, origin, dir, key_files)
}

fn parse_with(
    text: &str,
    format: Format,
    origin: &str,
    base_dir: &Path,
    key_files: KeyFiles<'_>,
) -> Result<Config, ConfigError> {
    parse_checked(text, format, origin, base_dir, key_files).map_err(|e| {
        // Only a text vpnd refuses can be a wg-quick file given by mistake; vpnd's own TOML
        // (`[interface]`, a hub's `address = ...`) must never be taken for one.
        match hints::wg_quick(text, origin) {
            Some(p) => ConfigError::new(origin, vec![p]),
            None => e,
        }
    })
}

fn parse_checked(
    text: &str,
    format: Format,
    origin: &str,
    base_dir: &Path,
    key_files: KeyFiles<'_>,
) -> Result<Config, ConfigError> {
    let root = syntax::parse(text, format).map_err(|p| ConfigError::new(origin, p))?;
    let mut problems = Vec::new();
    let mut warnings = Vec::new();
    let checked = validate::check(root, base_dir, key_files, &mut problems, &mut warnings);
    match checked {
        Some(c) if problems.is_empty() => Ok(Config {
            source_path: None,
            interface: c.interface,
            control: c.control,
            peers: c.peers,
            nat: c.nat,
            warnings: warnings
                .into_iter()
                .map(|w| format!("{origin}: {w}"))
                .collect(),
        }),
        _ => {
            if problems.is_empty() {
                problems.push(Problem::new(
                    "",
                    ProblemKind::Internal("validation failed without naming a problem".into()),
                ));
            }
            Err(ConfigError::new(origin, problems))
        }
    }
}

#[cfg(test)]
mod tests;
