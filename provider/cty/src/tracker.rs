//! The state both codecs carry while they walk a value: the path so far
//! (which every error snapshots), the nesting depth against [`MAX_DEPTH`],
//! and the budget of absent attributes a decoder may fill with null.
//!
//! It sits between the leaf modules ([`crate::error`], [`crate::types`],
//! [`crate::value`]) and the codecs ([`crate::msgpack`], [`crate::json`]),
//! which import it; nothing here imports a codec.

use std::fmt;

use crate::error::{Error, MAX_DEPTH, Path, PathStep, truncate};
use crate::types::Type;
use crate::value::Value;

/// Builds paths as a codec walks a value; errors snapshot it.
#[derive(Debug, Default)]
pub(crate) struct Tracker {
    steps: Vec<PathStep>,
    depth: usize,
    /// How many absent object attributes the decoder may still fill with
    /// null. Types inside dynamic values come from the input, so without a
    /// budget `[{},{},…]` against a type with many attributes would
    /// allocate far beyond the input's size.
    fills_left: usize,
}

impl Tracker {
    /// A tracker for decoding `len` input bytes.
    pub(crate) fn for_input(len: usize) -> Tracker {
        Tracker {
            fills_left: len.saturating_mul(16).saturating_add(100_000),
            ..Tracker::default()
        }
    }

    /// Accounts for one absent attribute filled with null.
    pub(crate) fn fill(&mut self) -> Result<(), Error> {
        if self.fills_left == 0 {
            return Err(self.malformed(
                "input",
                "too many absent object attributes for the input's size",
            ));
        }
        self.fills_left -= 1;
        Ok(())
    }

    pub(crate) fn path(&self) -> Path {
        Path(self.steps.clone())
    }

    pub(crate) fn push(&mut self, step: PathStep) {
        self.steps.push(step);
    }

    pub(crate) fn pop(&mut self) {
        self.steps.pop();
    }

    /// The concrete type and inner value of a value at a dynamic position,
    /// as both encoders write them: an explicit `Value::Dynamic`, or a plain
    /// value whose type can be inferred.
    pub(crate) fn dynamic_parts<'v>(&self, v: &'v Value) -> Result<(Type, &'v Value), Error> {
        let (ty, inner) = match v {
            Value::Dynamic { ty, value } => (ty.clone(), value.as_ref()),
            other => match other.implied_type() {
                Some(t) => (t, other),
                None => {
                    return Err(self.mismatch(
                        "a value whose type can be inferred (wrap it in Value::Dynamic)",
                        format!("{} with elements of differing types", kind(other)),
                    ));
                }
            },
        };
        if ty == Type::Dynamic {
            return Err(self.mismatch(
                "a concrete type for a dynamic value",
                "the type \"dynamic\"",
            ));
        }
        Ok((ty, inner))
    }

    pub(crate) fn mismatch(&self, expected: impl fmt::Display, found: impl Into<String>) -> Error {
        Error::Mismatch {
            path: self.path(),
            expected: expected.to_string(),
            found: found.into(),
        }
    }

    pub(crate) fn malformed(&self, format: &'static str, message: impl Into<String>) -> Error {
        Error::Malformed {
            path: self.path(),
            format,
            message: message.into(),
        }
    }

    pub(crate) fn invalid_number(&self, value: &str, reason: impl Into<String>) -> Error {
        Error::InvalidNumber {
            path: self.path(),
            value: truncate(value, 40),
            reason: reason.into(),
        }
    }

    pub(crate) fn missing(&self, name: &str) -> Error {
        Error::MissingAttribute {
            path: self.path(),
            name: name.to_string(),
        }
    }

    pub(crate) fn unsupported<'a>(
        &self,
        name: &str,
        allowed: impl Iterator<Item = &'a String>,
    ) -> Error {
        let names: Vec<String> = allowed.map(|n| format!("{n:?}")).collect();
        Error::UnsupportedAttribute {
            path: self.path(),
            name: truncate(name, 64),
            allowed: if names.is_empty() {
                "no attributes".to_string()
            } else {
                format!("attributes {}", names.join(", "))
            },
        }
    }

    /// Enters one nesting level (collection, object or dynamic wrapper);
    /// errors once the limit is reached. Pair with [`Tracker::leave`].
    pub(crate) fn enter(&mut self) -> Result<(), Error> {
        if self.depth >= MAX_DEPTH {
            return Err(Error::TooDeep {
                path: self.path(),
                limit: MAX_DEPTH,
            });
        }
        self.depth += 1;
        Ok(())
    }

    pub(crate) fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }
}

/// What kind of value this is, for messages (never its content).
pub(crate) fn kind(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Unknown => "an unknown value".into(),
        Value::String(_) => "a string".into(),
        Value::Number(_) => "a number".into(),
        Value::Bool(_) => "a bool".into(),
        Value::List(_) => "a list".into(),
        Value::Set(_) => "a set".into(),
        Value::Map(_) => "a map".into(),
        Value::Object(_) => "an object".into(),
        Value::Tuple(_) => "a tuple".into(),
        Value::Dynamic { ty, .. } => format!("a dynamic value of type {ty}"),
    }
}
