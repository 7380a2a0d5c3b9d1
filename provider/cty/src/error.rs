//! Errors of the codecs, each carrying the path of the offending value so a
//! provider can turn it into a Terraform diagnostic with an attribute path.
//!
//! A leaf: it imports nothing from the rest of the crate, so every other
//! module may use it.

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
