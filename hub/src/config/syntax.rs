//! Text to a tree of values via the `config` crate's YAML and TOML readers, with vpnd's YAML
//! pre-pass: the tree builder recurses per nesting level and expands aliases by copying, so a
//! small hostile file could exhaust stack or memory; the pre-pass bounds nesting, refuses
//! aliases and reports keys given twice (where the later one would silently win).

use std::collections::HashSet;
use std::panic::{catch_unwind, AssertUnwindSafe};

use config::{FileFormat, Map, Source, Value};
use yaml_rust2::parser::{Event, Parser};

use super::error::Problem;
use super::Format;

/// Largest configuration accepted. An `allow` entry is ~50 bytes, so 1 MiB holds ~20,000
/// keys; the bound only stops a runaway file from being read whole.
pub(super) const MAX_TEXT_LEN: usize = 1 << 20;
/// Deepest nesting accepted; the schema needs two.
const MAX_DEPTH: usize = 16;

/// Parses `text` into the top-level map.
pub(super) fn parse(text: &str, format: Format) -> Result<Map<String, Value>, Vec<Problem>> {
    let fatal = |m: String| vec![Problem::new("", m)];
    if text.len() > MAX_TEXT_LEN {
        return Err(fatal(format!(
            "file is larger than the {MAX_TEXT_LEN}-byte limit"
        )));
    }
    let file_format = match format {
        Format::Yaml => {
            guarded(|| prescan_yaml(text)).map_err(fatal)??;
            FileFormat::Yaml
        }
        Format::Toml => FileFormat::Toml,
    };
    match guarded(|| config::File::from_str(text, file_format).collect()).map_err(fatal)? {
        Ok(root) => Ok(root),
        Err(e) => {
            let msg = match e {
                config::ConfigError::FileParse { cause, .. } => cause.to_string(),
                other => other.to_string(),
            };
            if msg.contains("expected a map") || msg.contains("invalid type") {
                Err(fatal(
                    "the top level must be a map of fields (private_key_file, listen, \
                     admission, store)"
                        .into(),
                ))
            } else {
                Err(fatal(format!("syntax error: {}", one_line(&msg))))
            }
        }
    }
}

/// Runs a third-party parser so that a bug in it becomes an error instead of a panic.
fn guarded<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|payload| {
        let msg = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        format!("internal error while parsing: {msg}")
    })
}

/// Folds a multi-line parser message (TOML draws a caret diagram) into its first and last line.
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

enum Frame {
    Map {
        keys: HashSet<String>,
        at_key: bool,
        key: String,
    },
    Seq {
        index: Option<usize>,
    },
}

/// Walks the YAML event stream without building a tree: a syntax error, an alias or too deep
/// nesting stops it; every key given twice is reported.
fn prescan_yaml(text: &str) -> Result<(), Vec<Problem>> {
    let fatal = |m: String| vec![Problem::new("", m)];
    let mut parser = Parser::new_from_str(text);
    let mut stack: Vec<Frame> = Vec::new();
    let mut problems = Vec::new();
    loop {
        let (event, mark) = parser
            .next_token()
            .map_err(|e| fatal(format!("syntax error: {e}")))?;
        let line = mark.line();
        match event {
            Event::StreamEnd if problems.is_empty() => return Ok(()),
            Event::StreamEnd => return Err(problems),
            Event::Alias(_) => {
                return Err(fatal(format!(
                    "YAML aliases (*name) are not supported (line {line})"
                )))
            }
            Event::Scalar(value, ..) => {
                if let Some(dup) = enter_node(&mut stack, Some(value)) {
                    problems.push(Problem::new(
                        dup,
                        format!("set more than once (again on line {line})"),
                    ));
                }
            }
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                enter_node(&mut stack, None);
                if stack.len() >= MAX_DEPTH {
                    return Err(fatal(format!(
                        "nested deeper than {MAX_DEPTH} levels (line {line})"
                    )));
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
            Frame::Map { key, .. } if p.is_empty() => p = key.clone(),
            Frame::Map { key, .. } => p = format!("{p}.{key}"),
            Frame::Seq { index } => p = format!("{p}[{}]", index.unwrap_or(0)),
        }
    }
    p
}
