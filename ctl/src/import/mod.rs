//! `vpnctl import`: a wg-quick or `wg` configuration file (INI) converted to vpnd's YAML.
//!
//! The conversion is pure: [`convert`] takes the file's text and gives the YAML and the
//! warnings, or every problem found, each tied to a line. Reading the input and writing the
//! output file (mode 0600, never over an existing file unless asked) is [`output`]'s job.
//!
//! Keys are read case-insensitively and `#` starts a comment, as `wg` reads its files. Values
//! are checked as vpnd will check them, so a file that converts is one vpnd loads. Keys and
//! endpoints are copied as written. `DNS` is dropped with a warning; `PreUp`, `PostUp`,
//! `PreDown`, `PostDown`, `Table` (other than `auto`) and `SaveConfig` are refused: they run
//! shell commands or choose routing that vpnd does not do, and silently dropping them would
//! give a tunnel that does less than the file says.

mod endpoint;
pub mod output;
mod parse;
mod problem;
mod yaml;

pub use problem::{Place, Problem, ProblemKind, Warning};
use zeroize::Zeroizing;

/// The `[Interface]` section, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    /// `PrivateKey`, as written.
    pub private_key: Zeroizing<String>,
    /// `ListenPort`; `None` when absent or 0 (any free port).
    pub listen_port: Option<u16>,
    /// Every `Address`, in order, as written.
    pub addresses: Vec<String>,
    /// `MTU`, if given.
    pub mtu: Option<u16>,
    /// `FwMark`; `None` when absent, 0 or `off`.
    pub fwmark: Option<u32>,
}

/// One `[Peer]` section, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// `PublicKey`, as written.
    pub public_key: String,
    /// `PresharedKey`, as written.
    pub preshared_key: Option<Zeroizing<String>>,
    /// Every `AllowedIPs` item, in order, as written.
    pub allowed_ips: Vec<String>,
    /// `Endpoint`, as written.
    pub endpoint: Option<String>,
    /// `PersistentKeepalive` in seconds; `None` when absent, 0 or `off`.
    pub persistent_keepalive: Option<u16>,
}

/// A whole file, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WgConfig {
    /// The `[Interface]` section.
    pub interface: Interface,
    /// The `[Peer]` sections, in file order.
    pub peers: Vec<Peer>,
}

/// What a successful conversion gives.
#[derive(Debug)]
pub struct Converted {
    /// vpnd's YAML; it holds the private key.
    pub yaml: Zeroizing<String>,
    /// What was dropped or differs from wg-quick, for stderr.
    pub warnings: Vec<Warning>,
}

/// Converts the wg-quick file `text` into vpnd's YAML for the interface `name` (checked by the
/// caller); `source` is named in the YAML's header comment.
///
/// # Errors
/// Every problem found, in line order.
pub fn convert(text: &str, name: &str, source: &str) -> Result<Converted, Vec<Problem>> {
    let (config, warnings) = parse::parse(text)?;
    Ok(Converted {
        yaml: yaml::to_yaml(&config, name, source),
        warnings,
    })
}

/// Reads `text` into a checked [`WgConfig`] without writing YAML.
///
/// # Errors
/// Every problem found, in line order.
pub fn parse(text: &str) -> Result<(WgConfig, Vec<Warning>), Vec<Problem>> {
    parse::parse(text)
}

#[cfg(test)]
mod tests;
