//! The file's shape as raw serde structs, and decoding a section into one while collecting every
//! problem rather than stopping at the first.
//!
//! Fields are `Option` even when required, so that a missing field is reported by validation
//! alongside everything else instead of aborting deserialization. Keys, addresses and endpoints
//! stay strings here; validation parses them so it can say which one is wrong and why.

use super::error::{Problem, ProblemKind};
use super::path;
use config::{Map, Value, ValueKind};
use serde::de::{self, DeserializeOwned, Deserializer, Visitor};
use serde::Deserialize;
use std::fmt;

/// The top level.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRoot {
    pub interface: Option<Value>,
    pub control: Option<Value>,
    pub peers: Option<Value>,
    pub hubs: Option<Value>,
    pub stun_servers: Option<Value>,
}

/// `interface:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawInterface {
    pub name: Option<String>,
    pub private_key: Option<String>,
    pub private_key_file: Option<String>,
    pub listen_port: Option<Int>,
    pub addresses: Option<Vec<String>>,
    pub mtu: Option<Int>,
    pub rekey_after_bytes: Option<Int>,
    pub fwmark: Option<Int>,
}

/// `control:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawControl {
    pub socket: Option<String>,
    pub group: Option<String>,
}

/// One entry of `peers:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPeer {
    pub name: Option<String>,
    pub public_key: Option<String>,
    pub preshared_key: Option<String>,
    pub preshared_key_file: Option<String>,
    pub allowed_ips: Option<Vec<String>>,
    pub endpoint: Option<String>,
    pub persistent_keepalive: Option<Int>,
}

/// An integer written as an integer: unlike the `config` crate's own conversions this refuses
/// `true`, `"25"` and `1.5` rather than quietly turning them into numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Int(pub i64);

impl<'de> Deserialize<'de> for Int {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct IntVisitor;
        impl Visitor<'_> for IntVisitor {
            type Value = Int;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an integer")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Int, E> {
                Ok(Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Int, E> {
                i64::try_from(v)
                    .map(Int)
                    .map_err(|_| E::invalid_value(de::Unexpected::Unsigned(v), &self))
            }
            fn visit_i128<E: de::Error>(self, v: i128) -> Result<Int, E> {
                i64::try_from(v)
                    .map(Int)
                    .map_err(|_| E::custom(format_args!("{v} is too large")))
            }
            fn visit_u128<E: de::Error>(self, v: u128) -> Result<Int, E> {
                i64::try_from(v)
                    .map(Int)
                    .map_err(|_| E::custom(format_args!("{v} is too large")))
            }
        }
        d.deserialize_any(IntVisitor)
    }
}

/// The field names serde's derive gave `T`, in declaration order.
///
/// Serde passes a struct's field list to `Deserializer::deserialize_struct`; this deserializer
/// records it and bails out. Knowing the list lets every unknown field be reported at once
/// (`deny_unknown_fields` stops at the first) and problems be sorted into field order.
pub(super) fn field_names<T: DeserializeOwned>() -> &'static [&'static str] {
    struct Grab<'a>(&'a mut &'static [&'static str]);

    impl<'de> Deserializer<'de> for Grab<'_> {
        type Error = de::value::Error;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(de::Error::custom("not a struct"))
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            fields: &'static [&'static str],
            _visitor: V,
        ) -> Result<V::Value, Self::Error> {
            *self.0 = fields;
            Err(de::Error::custom("fields recorded"))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
            option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
            ignored_any
        }
    }

    let mut fields: &'static [&'static str] = &[];
    let _ = T::deserialize(Grab(&mut fields));
    fields
}

/// Decodes `value` (the section at `at`) into `T`, pushing every problem onto `problems`.
///
/// Unknown fields are reported and dropped; a field of the wrong type is reported and dropped,
/// and decoding retried, so one bad field does not hide the next. Returns `None` only when the
/// section as a whole is unusable (not a map).
pub(super) fn decode<T: DeserializeOwned>(
    value: Value,
    at: &str,
    problems: &mut Vec<Problem>,
) -> Option<T> {
    let mut table = match value.kind {
        ValueKind::Table(t) => t,
        other => {
            problems.push(Problem::new(
                at,
                ProblemKind::WrongType(format!("expected a map, found {}", describe_kind(&other))),
            ));
            return None;
        }
    };
    let fields = field_names::<T>();
    let mut unknown: Vec<String> = table
        .keys()
        .filter(|k| !fields.contains(&k.as_str()))
        .cloned()
        .collect();
    unknown.sort();
    for field in unknown {
        table.remove(&field);
        problems.push(Problem::new(
            path::field(at, &field),
            ProblemKind::UnknownField {
                field,
                expected: fields.join(", "),
            },
        ));
    }

    // Each retry removes a field, so this ends after at most `fields.len()` failures.
    let mut found: Vec<(usize, Problem)> = Vec::new();
    let result = loop {
        match Value::new(None, table.clone()).try_deserialize::<T>() {
            Ok(v) => break Some(v),
            Err(e) => {
                let (key, kind) = explain(e);
                let head = key.as_deref().map(path::head).unwrap_or("");
                let order = fields.iter().position(|f| *f == head);
                match order {
                    Some(order) if table.remove(head).is_some() => {
                        let rel = key.as_deref().unwrap_or(head);
                        found.push((order, Problem::new(path::join(at, rel), kind)));
                    }
                    _ => {
                        found.push((usize::MAX, Problem::new(at, kind)));
                        break None;
                    }
                }
            }
        }
    };
    found.sort_by_key(|(order, _)| *order);
    problems.extend(found.into_iter().map(|(_, p)| p));
    result
}

/// Splits a `config` error into the key it is about (relative to the section) and the reason.
fn explain(e: config::ConfigError) -> (Option<String>, ProblemKind) {
    use config::ConfigError as E;
    match e {
        E::Type {
            unexpected,
            expected,
            key,
            ..
        } => (key, wrong_type(expected, &unexpected.to_string())),
        E::At { error, key, .. } => (key, explain(*error).1),
        E::NotFound(key) => (Some(key), ProblemKind::Missing),
        E::Message(m) => (None, reword(&m)),
        other => (None, reword(&other.to_string())),
    }
}

/// Serde's `invalid type: X, expected Y` in the same words as [`wrong_type`].
pub(super) fn reword(message: &str) -> ProblemKind {
    message
        .strip_prefix("invalid type: ")
        .and_then(|rest| rest.split_once(", expected "))
        .map(|(found, expected)| wrong_type(expected, found))
        .unwrap_or_else(|| ProblemKind::WrongType(message.to_string()))
}

/// `expected Y, found X`, in YAML's words rather than Rust's (a list, not a sequence).
fn wrong_type(expected: &str, found: &str) -> ProblemKind {
    let plain = |s: &str| match s {
        "an array" | "a sequence" | "sequence" => "a list".to_string(),
        "map" | "a map" => "a map".to_string(),
        "unit value" => "nothing".to_string(),
        other => other.to_string(),
    };
    ProblemKind::WrongType(format!(
        "expected {}, found {}",
        plain(expected),
        plain(found)
    ))
}

/// How a value's kind reads in a message.
pub(super) fn describe_kind(kind: &ValueKind) -> &'static str {
    match kind {
        ValueKind::Nil => "nothing",
        ValueKind::Boolean(_) => "a boolean",
        ValueKind::I64(_) | ValueKind::I128(_) | ValueKind::U64(_) | ValueKind::U128(_) => {
            "an integer"
        }
        ValueKind::Float(_) => "a floating-point number",
        ValueKind::String(_) => "a string",
        ValueKind::Table(_) => "a map",
        ValueKind::Array(_) => "a list",
    }
}

/// Decodes the top level; a convenience over [`decode`] for the root map.
pub(super) fn decode_root(root: Map<String, Value>, problems: &mut Vec<Problem>) -> RawRoot {
    decode(Value::new(None, root), "", problems).unwrap_or(RawRoot {
        interface: None,
        control: None,
        peers: None,
        hubs: None,
        stun_servers: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_names_follow_declaration_order() {
        assert_eq!(
            field_names::<RawRoot>(),
            ["interface", "control", "peers", "hubs", "stun_servers"]
        );
        assert_eq!(field_names::<RawControl>(), ["socket", "group"]);
    }
}
