//! Errors of the codecs, each carrying the path of the offending value so a
//! provider can turn it into a Terraform diagnostic with an attribute path.

use std::fmt;

/// One step from a value to a nested value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PathStep {
    /// An object attribute: `.name`.
    Attr(String),
    /// A map key: `["key"]`.
    Key(String),
    /// A list, set or tuple element: `[2]`.
    Index(usize),
}

/// Where in a value something went wrong; empty means the value itself.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Path(pub Vec<PathStep>);

impl Path {
    /// The steps from the root value.
    pub fn steps(&self) -> &[PathStep] {
        &self.0
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(root)");
        }
        for step in &self.0 {
            match step {
                PathStep::Attr(name) => write!(f, ".{name}")?,
                // Debug formatting quotes and escapes the key.
                PathStep::Key(key) => write!(f, "[{key:?}]")?,
                PathStep::Index(i) => write!(f, "[{i}]")?,
            }
        }
        Ok(())
    }
}

/// Why a type or value could not be decoded or encoded.
///
/// Messages never quote string contents (they may be secrets); they name the
/// path, what was expected and what kind of thing was found.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// The cty type JSON itself is malformed.
    #[error("invalid cty type JSON at {at}: {message}")]
    TypeJson {
        /// JSON location inside the type document, e.g. `[1]["a"]`.
        at: String,
        /// What rule was broken.
        message: String,
    },
    /// The encoded data (or the value to encode) has the wrong shape.
    #[error("at {path}: expected {expected}, found {found}")]
    Mismatch {
        /// Where.
        path: Path,
        /// What the type requires.
        expected: String,
        /// What was there instead.
        found: String,
    },
    /// An object value lacks a non-optional attribute.
    #[error("at {path}: missing required attribute {name:?}")]
    MissingAttribute {
        /// The object's path.
        path: Path,
        /// The attribute that is missing.
        name: String,
    },
    /// An object value has an attribute the type does not declare.
    #[error("at {path}: unsupported attribute {name:?}; the object type has {allowed}")]
    UnsupportedAttribute {
        /// The object's path.
        path: Path,
        /// The unexpected attribute.
        name: String,
        /// The declared attributes, for the message.
        allowed: String,
    },
    /// A number could not be parsed or represented.
    #[error("at {path}: invalid number {value:?}: {reason}")]
    InvalidNumber {
        /// Where.
        path: Path,
        /// The offending text (truncated).
        value: String,
        /// Which rule it breaks.
        reason: String,
    },
    /// The data nests deeper than the decoder allows.
    #[error("at {path}: value nests deeper than the limit of {limit} levels")]
    TooDeep {
        /// Where the limit was hit.
        path: Path,
        /// The limit.
        limit: usize,
    },
    /// The bytes are not valid msgpack/JSON (truncated, bad UTF-8, trailing data…).
    #[error("at {path}: malformed {format}: {message}")]
    Malformed {
        /// Where.
        path: Path,
        /// `msgpack` or `JSON`.
        format: &'static str,
        /// What is wrong.
        message: String,
    },
    /// JSON has no representation for unknown values.
    #[error("at {path}: value is unknown, and JSON cannot represent unknown values")]
    UnknownInJson {
        /// Where.
        path: Path,
    },
}

impl Error {
    /// The path of the offending value (empty for type JSON errors).
    pub fn path(&self) -> &[PathStep] {
        match self {
            Error::TypeJson { .. } => &[],
            Error::Mismatch { path, .. }
            | Error::MissingAttribute { path, .. }
            | Error::UnsupportedAttribute { path, .. }
            | Error::InvalidNumber { path, .. }
            | Error::TooDeep { path, .. }
            | Error::Malformed { path, .. }
            | Error::UnknownInJson { path } => path.steps(),
        }
    }
}

/// Maximum nesting of collections/objects/dynamic wrappers the decoders accept.
pub const MAX_DEPTH: usize = 64;

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
    pub(crate) fn dynamic_parts<'v>(
        &self,
        v: &'v crate::Value,
    ) -> Result<(crate::Type, &'v crate::Value), Error> {
        let (ty, inner) = match v {
            crate::Value::Dynamic { ty, value } => (ty.clone(), value.as_ref()),
            other => match other.implied_type() {
                Some(t) => (t, other),
                None => {
                    return Err(self.mismatch(
                        "a value whose type can be inferred (wrap it in Value::Dynamic)",
                        format!(
                            "{} with elements of differing types",
                            crate::msgpack::kind(other)
                        ),
                    ));
                }
            },
        };
        if ty == crate::Type::Dynamic {
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

/// Cuts long text for messages, on a character boundary.
pub(crate) fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let cut: String = s.chars().take(max).collect();
        format!("{cut}…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_display() {
        assert_eq!(Path::default().to_string(), "(root)");
        let p = Path(vec![
            PathStep::Attr("tags".into()),
            PathStep::Key("env".into()),
            PathStep::Index(2),
            PathStep::Attr("start".into()),
        ]);
        assert_eq!(p.to_string(), ".tags[\"env\"][2].start");
    }

    #[test]
    fn truncates_on_char_boundary() {
        assert_eq!(truncate("ééé", 2), "éé…");
        assert_eq!(truncate("ab", 2), "ab");
    }
}
