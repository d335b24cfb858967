//! The error a configuration load returns: every problem found, each with the field it is about.

use super::cidr::{Cidr, CidrError};
use super::endpoint::EndpointError;
use protocol::keys::KeyError;
use std::fmt;
use std::io;
use std::path::PathBuf;

/// A configuration that could not be loaded.
///
/// Carries every problem found, not just the first. `Display` prints one problem per line, each
/// as `origin: field.path: reason` (or `origin: reason` for the file as a whole), e.g.
/// `vpn0.yaml: peers[1].public_key: not valid base64`.
#[derive(Debug, thiserror::Error)]
#[error("{}", lines(.origin, .problems))]
pub struct ConfigError {
    /// The file the configuration came from, as given to [`super::load`], or the `origin` given
    /// to [`super::parse_str`].
    pub origin: String,
    /// Every problem found, in the order of the file's sections (interface, control, peers).
    /// Never empty.
    pub problems: Vec<Problem>,
}

impl ConfigError {
    pub(super) fn new(origin: &str, problems: Vec<Problem>) -> Self {
        ConfigError {
            origin: origin.to_string(),
            problems,
        }
    }

    /// An error with one problem about the file as a whole.
    pub(super) fn whole_file(origin: &str, kind: ProblemKind) -> Self {
        Self::new(origin, vec![Problem::new("", kind)])
    }
}

fn lines<'a>(origin: &'a str, problems: &'a [Problem]) -> Lines<'a> {
    Lines { origin, problems }
}

struct Lines<'a> {
    origin: &'a str,
    problems: &'a [Problem],
}

impl fmt::Display for Lines<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.problems.is_empty() {
            return write!(f, "{}: invalid configuration", self.origin);
        }
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{}: {p}", self.origin)?;
        }
        Ok(())
    }
}

/// One thing wrong with a configuration.
#[derive(Debug)]
pub struct Problem {
    /// Where: a field path such as `interface.mtu`, `peers[1].public_key` or
    /// `peers[0].allowed_ips[2]`; a section such as `interface` or `peers[3]`; or empty when the
    /// problem is with the file as a whole.
    pub path: String,
    /// What is wrong.
    pub kind: ProblemKind,
}

impl Problem {
    pub(super) fn new(path: impl Into<String>, kind: ProblemKind) -> Self {
        Problem {
            path: path.into(),
            kind,
        }
    }
}

impl fmt::Display for Problem {
    /// `path: reason`, or just `reason` when the path is empty.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.kind)
        } else {
            write!(f, "{}: {}", self.path, self.kind)
        }
    }
}

/// What is wrong, without where.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProblemKind {
    /// The configuration file itself could not be read.
    #[error("cannot read: {0}")]
    Read(io::Error),
    /// The text is larger than any sensible configuration.
    #[error("file is larger than the {limit}-byte limit")]
    TooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// The file is not UTF-8 text.
    #[error("not valid UTF-8")]
    NotUtf8,
    /// The YAML or TOML parser rejected the text; the message includes the line.
    #[error("syntax error: {0}")]
    Syntax(String),
    /// Lists and maps nested deeper than the format needs.
    #[error("nested deeper than {limit} levels (line {line})")]
    TooDeep {
        /// The limit.
        limit: usize,
        /// Where the limit was crossed (1-based).
        line: usize,
    },
    /// A YAML alias (`*name`), which this format does not use.
    #[error("YAML aliases (*name) are not supported (line {line})")]
    Alias {
        /// Where the alias is (1-based).
        line: usize,
    },
    /// The same key twice in one YAML mapping, where the second would silently win.
    #[error("set more than once (again on line {line})")]
    DuplicateKey {
        /// Where the repeat is (1-based).
        line: usize,
    },
    /// A field this section does not have (often a typo).
    #[error("unknown field `{field}`; expected one of: {expected}")]
    UnknownField {
        /// The field as written.
        field: String,
        /// The fields the section has, comma-separated.
        expected: String,
    },
    /// A required field is absent.
    #[error("missing required field")]
    Missing,
    /// A value of the wrong kind (a list where a string belongs, text where a number belongs).
    #[error("{0}")]
    WrongType(String),
    /// Two mutually exclusive fields are both set.
    #[error("`{0}` and `{1}` are both set; set only one")]
    BothSet(&'static str, &'static str),
    /// Neither of two alternative fields is set.
    #[error("one of `{0}` or `{1}` is required")]
    NeitherSet(&'static str, &'static str),
    /// A key file could not be read.
    #[error("cannot read key file {path}: {error}")]
    KeyFileUnreadable {
        /// The file, resolved against the configuration's directory.
        path: PathBuf,
        /// The OS error.
        error: io::Error,
    },
    /// A key file's contents are not a key.
    #[error("key file {path}: {error}")]
    KeyFileInvalid {
        /// The file, resolved against the configuration's directory.
        path: PathBuf,
        /// Why its contents are not a key.
        error: KeyError,
    },
    /// A key file a check over the control socket may not read (see
    /// [`super::KeyFiles`]).
    #[error(
        "key file {path} is not read: {reason}; write the key inline or check the file as root \
         with `vpnd --check --config FILE`"
    )]
    KeyFileNotRead {
        /// The file, resolved against the configuration's directory.
        path: PathBuf,
        /// Why not.
        reason: String,
    },
    /// A key file far larger than a key; probably the wrong file.
    #[error("key file {path} is larger than {limit} bytes; it does not hold just a key")]
    KeyFileTooLarge {
        /// The file, resolved against the configuration's directory.
        path: PathBuf,
        /// The limit.
        limit: u64,
    },
    /// A key written inline is not a key.
    #[error("{0}")]
    BadKey(KeyError),
    /// An address or allowed IP is not a CIDR prefix.
    #[error("invalid CIDR `{text}`: {error}")]
    BadCidr {
        /// The value as written.
        text: String,
        /// Why it is invalid.
        error: CidrError,
    },
    /// The interface name is not one Linux accepts.
    #[error("invalid interface name `{name}`: {reason}")]
    BadInterfaceName {
        /// The name as written (with control characters escaped).
        name: String,
        /// Why it is invalid.
        reason: &'static str,
    },
    /// A number outside its allowed range.
    #[error("{value} is out of range: {}", range(.min, .max, .note))]
    OutOfRange {
        /// The value given.
        value: i64,
        /// The smallest value allowed.
        min: i64,
        /// The largest value allowed, if there is one.
        max: Option<i64>,
        /// Why the range is what it is, when that is not obvious.
        note: Option<&'static str>,
    },
    /// Two peers with the same public key.
    #[error("the same public key as {first}")]
    DuplicatePublicKey {
        /// The earlier peer, e.g. `peers[0] (alice)`.
        first: String,
    },
    /// A peer whose public key is the interface's own.
    #[error("this is the interface's own public key")]
    OwnPublicKey,
    /// An allowed IP prefix (after masking) that another peer already claims.
    #[error("{prefix} is already an allowed IP of {other}")]
    AllowedIpTaken {
        /// The prefix, masked.
        prefix: Cidr,
        /// The peer that claims it, e.g. `peers[0] (alice)`.
        other: String,
    },
    /// An endpoint that is not `host:port`, `ipv4:port` or `[ipv6]:port`.
    #[error("invalid endpoint `{text}`: {error}")]
    BadEndpoint {
        /// The value as written.
        text: String,
        /// Why it is invalid.
        error: EndpointError,
    },
    /// Two peers with the same name.
    #[error("name `{name}` is already used by {first}")]
    DuplicatePeerName {
        /// The name.
        name: String,
        /// The earlier peer, e.g. `peers[0]`.
        first: String,
    },
    /// A text field that must not be empty is.
    #[error("must not be empty")]
    Empty,
    /// A text field with characters it cannot hold.
    #[error("must not contain {0}")]
    BadCharacters(&'static str),
    /// A `control.group` that does not exist on this host.
    #[error("no such group \"{0}\"; create it (`groupadd {0}`) or remove control.group")]
    NoSuchGroup(String),
    /// A control socket path longer than a Unix socket address holds.
    #[error("path is {len} bytes long; a Unix socket path holds at most {max}")]
    SocketPathTooLong {
        /// The length of the path, resolved against the configuration's directory.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A value that is well-formed but not acceptable here (a duplicate, too many entries).
    #[error("{0}")]
    Invalid(String),
    /// A value in brackets such as `[fd77::1]:51820` written without quotes on `line`: YAML
    /// reads the `[` as the start of a list, and TOML quotes every string. Follows the syntax
    /// error it caused.
    #[error(
        "line {line}: quote it: `{key}{} \"{value}\"` ({})",
        if *.toml { " =" } else { ":" },
        if *.toml {
            "TOML strings are always quoted"
        } else {
            "unquoted, YAML reads `[...]` as a list"
        }
    )]
    Unquoted {
        /// Where (1-based).
        line: usize,
        /// The field as written.
        key: String,
        /// The value as written.
        value: String,
        /// Whether the file is TOML (else YAML).
        toml: bool,
    },
    /// A wg-quick (INI) file given where a vpnd configuration belongs.
    #[error(
        "this looks like a wg-quick file ([Interface], PrivateKey = ...), not a vpnd \
         configuration; convert it with `vpnctl import {file} -o {yaml}`"
    )]
    WgQuick {
        /// The file, as given.
        file: String,
        /// A name for the converted file.
        yaml: String,
    },
    /// A bug: a parser panicked on this input. The message is the parser's.
    #[error("internal error while parsing: {0}")]
    Internal(String),
}

fn range(min: &i64, max: &Option<i64>, note: &Option<&'static str>) -> String {
    let mut s = match max {
        Some(max) => format!("must be {min} to {max}"),
        None => format!("must be at least {min}"),
    };
    if let Some(note) = note {
        s.push_str(&format!(" ({note})"));
    }
    s
}
