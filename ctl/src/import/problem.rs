//! What `vpnctl import` reports: problems that stop the conversion and warnings that do not,
//! each tied to a line (and key) of the input so the message reads `FILE:LINE: key: problem`.

use protocol::allowed_ips::{IpPrefix, PrefixError};
use protocol::keys::KeyError;

/// Where in the input a problem or warning is: a line (1-based) and the key as written there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    /// The line, or `None` for the file as a whole.
    pub line: Option<usize>,
    /// The key or section as written in the file (`ListenPort`, `[Peer]`), if any.
    pub key: Option<String>,
}

impl Place {
    /// The prefix of a message about this place in `file`: `wg0.conf:3: ListenPort: `.
    pub fn prefix(&self, file: &str) -> String {
        let mut s = file.to_string();
        if let Some(line) = self.line {
            s.push_str(&format!(":{line}"));
        }
        s.push_str(": ");
        if let Some(key) = &self.key {
            s.push_str(key);
            s.push_str(": ");
        }
        s
    }
}

/// A problem that stops the conversion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where it is.
    pub place: Place,
    /// What it is.
    pub kind: ProblemKind,
}

impl Problem {
    /// `FILE:LINE: key: problem`.
    pub fn render(&self, file: &str) -> String {
        format!("{}{}", self.place.prefix(file), self.kind)
    }
}

/// Why the input cannot be converted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProblemKind {
    /// A line that is neither `Key = value`, a `[Section]` nor a comment.
    #[error("expected `Key = value`, a [Section] or a # comment")]
    NotKeyValue,
    /// A key before the first section.
    #[error("comes before any section; the file must start with [Interface]")]
    OutsideSection,
    /// A section other than `[Interface]` and `[Peer]`.
    #[error("unknown section; expected [Interface] or [Peer]")]
    UnknownSection,
    /// A second `[Interface]`.
    #[error("a second [Interface] section (the first is on line {first}); merge them")]
    SecondInterface {
        /// The first one's line.
        first: usize,
    },
    /// No `[Interface]` at all.
    #[error("no [Interface] section: this does not look like a wg-quick or wg file")]
    NoInterface,
    /// A key the section does not have.
    #[error("unknown key in [{section}] (expected one of {expected})")]
    UnknownKey {
        /// `Interface` or `Peer`.
        section: &'static str,
        /// The keys it has.
        expected: &'static str,
    },
    /// A wg-quick key whose job vpnd does not do.
    #[error("not supported by vpnd: {0}")]
    Refused(&'static str),
    /// A single-valued key given twice.
    #[error("given twice (first on line {first}); keep one")]
    Duplicate {
        /// The line of the first one.
        first: usize,
    },
    /// Nothing after the `=`.
    #[error("empty value")]
    Empty,
    /// A key that is not 32 bytes of base64.
    #[error("invalid key: {0} (expected 44 characters of base64, as `wg genkey` prints)")]
    BadKey(KeyError),
    /// An address or allowed IP that is not `address[/length]`.
    #[error("`{text}`: {error}")]
    BadCidr {
        /// The item as written.
        text: String,
        /// Why it is wrong.
        error: PrefixError,
    },
    /// A number that is not one, or out of its range.
    #[error("`{text}` is not {expected}")]
    BadNumber {
        /// The value as written.
        text: String,
        /// What was expected, e.g. "a port number from 0 to 65535".
        expected: &'static str,
    },
    /// An MTU below what the interface's addresses need.
    #[error("{mtu} is too small: IPv6 is configured (Address), which needs at least 1280")]
    MtuTooSmallForIpv6 {
        /// The MTU given.
        mtu: u16,
    },
    /// An endpoint that is not `host:port`, `ipv4:port` or `[ipv6]:port`.
    #[error("`{text}`: {reason}")]
    BadEndpoint {
        /// The value as written.
        text: String,
        /// Why it is wrong.
        reason: &'static str,
    },
    /// A required key that is missing from a section.
    #[error("missing {0}")]
    Missing(&'static str),
    /// A peer with the interface's own public key.
    #[error("this is the [Interface]'s own public key; a host cannot be its own peer")]
    OwnPublicKey,
    /// Two peers with one public key.
    #[error("the same public key as the [Peer] on line {first}; merge the two sections")]
    DuplicatePeer {
        /// The first peer's section line.
        first: usize,
    },
    /// One allowed-IP prefix under two peers.
    #[error(
        "{prefix} is also allowed for the [Peer] on line {first}; wg gives it to the last \
         peer, vpnd refuses the file: keep it on one peer"
    )]
    AllowedIpTaken {
        /// The prefix, host bits cleared.
        prefix: IpPrefix,
        /// The line of the first peer's section.
        first: usize,
    },
}

/// Something converted differently from what wg-quick would do, printed on stderr.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// Where it is.
    pub place: Place,
    /// What to know.
    pub message: String,
}

impl Warning {
    /// `FILE:LINE: key: message`.
    pub fn render(&self, file: &str) -> String {
        format!("{}{}", self.place.prefix(file), self.message)
    }
}
