//! The error a configuration load returns: every problem found, each with its field.

use std::fmt;

/// A configuration that could not be loaded. `Display` prints one problem per line as
/// `origin: field: reason` (or `origin: reason` for the file as a whole), e.g.
/// `hub.yaml: admission.allow[1]: not valid base64`.
#[derive(Debug, thiserror::Error)]
#[error("{}", lines(.origin, .problems))]
pub struct ConfigError {
    /// The file (or the origin given to [`super::parse_str`]).
    pub origin: String,
    /// Every problem found, in file order. Never empty.
    pub problems: Vec<Problem>,
}

impl ConfigError {
    pub(super) fn new(origin: &str, problems: Vec<Problem>) -> Self {
        ConfigError {
            origin: origin.to_string(),
            problems,
        }
    }
}

fn lines(origin: &str, problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("{origin}: {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// One thing wrong: where (a field path such as `admission.allow[2]`, empty for the whole
/// file) and what, with the fix where there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The field path.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl Problem {
    pub(super) fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Problem {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}
