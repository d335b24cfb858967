//! Text to a tree of values, via the `config` crate's YAML and TOML readers.
//!
//! YAML gets a streaming pre-pass first, because the tree builder that `config` uses recurses
//! once per nesting level and expands aliases by copying: a small hostile file could exhaust the
//! stack or memory. The pre-pass bounds nesting, refuses aliases, and reports keys given twice in
//! one mapping (where the later one would silently win, e.g. a second `peers:` dropping the
//! first list).

use super::error::{Problem, ProblemKind};
use super::Format;
use super::{hints, path, schema};
use config::{FileFormat, Map, Source, Value};
use std::collections::HashSet;
use std::panic::{catch_unwind, AssertUnwindSafe};
use yaml_rust2::parser::{Event, Parser};

/// The largest configuration accepted, in bytes: 16 MiB. A peer with ten allowed IPs takes
/// about 250 bytes of YAML, so this leaves room for 60,000 such peers (10,000 take 2.5 MB);
/// the limit only keeps a runaway file from being read whole into memory.
pub(super) const MAX_TEXT_LEN: usize = 16 << 20;

/// Deepest nesting of lists and maps accepted; the schema needs four.
const MAX_DEPTH: usize = 16;

/// Parses `text` as `format` into the top-level map, or says why it cannot.
pub(super) fn parse(text: &str, format: Format) -> Result<Map<String, Value>, Vec<Problem>> {
    let fatal = |kind| vec![Problem::new("", kind)];
    if text.len() > MAX_TEXT_LEN {
        return Err(fatal(ProblemKind::TooLarge {
            limit: MAX_TEXT_LEN,
        }));
    }
    let file_format = match format {
        Format::Yaml => {
            guarded(|| prescan_yaml(text))
                .map_err(fatal)?
                .map_err(|p| with_hints(p, text, format))?;
            FileFormat::Yaml
        }
        Format::Toml => FileFormat::Toml,
    };
    match guarded(|| config::File::from_str(text, file_format).collect()).map_err(fatal)? {
        Ok(root) => Ok(root),
        Err(e) => Err(with_hints(fatal(explain(&syntax_message(e))), text, format)),
    }
}

/// After a syntax error, adds what probably caused it when the text shows it (an unquoted
/// `[fd77::1]:51820`): the parser's own words point a line away and do not say what to do.
fn with_hints(mut problems: Vec<Problem>, text: &str, format: Format) -> Vec<Problem> {
    if problems
        .iter()
        .any(|p| matches!(p.kind, ProblemKind::Syntax(_)))
    {
        problems.extend(hints::unquoted_brackets(text, format));
    }
    problems
}

/// The reader's complaint as a problem: a document that is not a map is a shape problem, anything
/// else a syntax error.
fn explain(message: &str) -> ProblemKind {
    match schema::reword(message) {
        ProblemKind::WrongType(text) if text.starts_with("expected a map, found ") => {
            let found = text.trim_start_matches("expected a map, found ");
            ProblemKind::WrongType(format!(
                "the top level must be a map of sections (interface, control, peers), \
                 found {found}"
            ))
        }
        _ => ProblemKind::Syntax(one_line(message)),
    }
}

/// Runs a third-party parser so that a bug in it becomes an error instead of a panic.
fn guarded<T>(f: impl FnOnce() -> T) -> Result<T, ProblemKind> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|payload| {
        let msg = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        ProblemKind::Internal(msg)
    })
}

fn syntax_message(e: config::ConfigError) -> String {
    match e {
        config::ConfigError::FileParse { cause, .. } => cause.to_string(),
        other => other.to_string(),
    }
}

/// Folds a multi-line parser message (TOML draws a caret diagram) into one line: the first line
/// (which says where) and the last (which says what).
fn one_line(msg: &str) -> String {
    let lines: Vec<&str> = msg
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    match lines.as_slice() {
        [] => "unknown error".into(),
        [only] => only.to_string(),
        [first, .., last] => format!("{}: {last}", first.trim_end_matches(':')),
    }
}

/// One open collection during the YAML pre-pass.
enum Frame {
    Map {
        keys: HashSet<String>,
        /// Whether the next node is a key (else a value).
        at_key: bool,
        /// The key whose value is being read, for error paths.
        key: String,
    },
    Seq {
        /// Index of the element being read.
        index: Option<usize>,
    },
}

/// Walks the YAML event stream without building a tree, and returns what makes the text
/// unusable: a syntax error, an alias or too deep nesting (the first of these), or every key
/// given twice.
fn prescan_yaml(text: &str) -> Result<(), Vec<Problem>> {
    let fatal = |kind| vec![Problem::new("", kind)];
    let mut parser = Parser::new_from_str(text);
    let mut stack: Vec<Frame> = Vec::new();
    let mut problems = Vec::new();
    loop {
        let (event, mark) = parser
            .next_token()
            .map_err(|e| fatal(ProblemKind::Syntax(e.to_string())))?;
        let line = mark.line();
        match event {
            Event::StreamEnd if problems.is_empty() => return Ok(()),
            Event::StreamEnd => return Err(problems),
            Event::Alias(_) => return Err(fatal(ProblemKind::Alias { line })),
            Event::Scalar(value, ..) => {
                if let Some(dup) = enter_node(&mut stack, Some(value)) {
                    problems.push(Problem::new(dup, ProblemKind::DuplicateKey { line }));
                }
            }
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                enter_node(&mut stack, None);
                if stack.len() >= MAX_DEPTH {
                    return Err(fatal(ProblemKind::TooDeep {
                        limit: MAX_DEPTH,
                        line,
                    }));
                }
                stack.push(if matches!(event, Event::MappingStart(..)) {
                    Frame::Map {
                        keys: HashSet::new(),
                        at_key: true,
                        key: String::new(),
                    }
                } else {
                    Frame::Seq { index: None }
                });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                stack.pop();
            }
            _ => {}
        }
    }
}

/// Accounts for a node starting inside the innermost collection. `scalar` is its text if it is a
/// scalar. Returns the path of a key seen twice.
fn enter_node(stack: &mut [Frame], scalar: Option<String>) -> Option<String> {
    let top = stack.last_mut()?;
    match top {
        Frame::Seq { index } => {
            *index = Some(index.map_or(0, |i| i + 1));
            None
        }
        Frame::Map { keys, at_key, key } => {
            let was_key = *at_key;
            *at_key = !was_key;
            if !was_key {
                return None;
            }
            // A complex (non-scalar) key cannot be repeated in a way we can name; let it pass.
            let Some(name) = scalar else {
                key.clear();
                return None;
            };
            let duplicate = !keys.insert(name.clone());
            *key = name;
            duplicate.then(|| path_of(stack))
        }
    }
}

fn path_of(stack: &[Frame]) -> String {
    let mut p = String::new();
    for frame in stack {
        match frame {
            Frame::Map { key, .. } => p = path::field(&p, key),
            Frame::Seq { index } => p = path::index(&p, index.unwrap_or(0)),
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_multiline_messages() {
        assert_eq!(
            one_line("TOML parse error at line 2, column 7\n  |\n2 | mtu = = 1\n  |       ^\nextra `=`\n"),
            "TOML parse error at line 2, column 7: extra `=`"
        );
        assert_eq!(one_line("plain"), "plain");
    }

    #[test]
    fn finds_duplicate_keys_with_their_path() {
        let text = "a:\n  b: 1\n  b: 2\nl:\n  - x: 1\n  - x: 1\n    x: 2\na: 3\n";
        let found = prescan_yaml(text).unwrap_err();
        let paths: Vec<_> = found.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(paths, ["a.b", "l[1].x", "a"]);
    }

    #[test]
    fn refuses_aliases_and_deep_nesting() {
        let kind = |text: &str| prescan_yaml(text).unwrap_err().remove(0).kind;
        assert!(matches!(
            kind("a: &x [1]\nb: *x\n"),
            ProblemKind::Alias { line: 2 }
        ));
        let deep = "- ".repeat(100_000) + "x\n";
        assert!(matches!(kind(&deep), ProblemKind::TooDeep { .. }));
        let deep = "[".repeat(100_000);
        assert!(prescan_yaml(&deep).is_err());
    }
}
