//! Bearer tokens: the admin token file and the constant-time check.
//!
//! The admin token lives in a 0600 file; it is compared in constant time and
//! never logged or echoed.

use std::path::Path;
use std::sync::Arc;

use aws_lc_rs::digest::{SHA256, digest};
use subtle::ConstantTimeEq;

use crate::clock;

/// The store id of a one-time or bearer secret kept only as its hash
/// (agent join tokens, console tickets and sessions): `{prefix}/{sha256 hex}`.
/// Looking a presented secret up by this id never stores or compares the
/// secret itself.
pub fn hashed_id(prefix: &str, secret: &str) -> String {
    format!(
        "{prefix}/{}",
        hex::encode(digest(&SHA256, secret.as_bytes()).as_ref())
    )
}

/// The token clients must present. `Debug` is redacted on purpose.
#[derive(Clone)]
pub struct Token(Arc<str>);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// Why the token file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("cannot read token file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("token file {path} is empty")]
    Empty { path: String },
    #[error(transparent)]
    Write(#[from] super::tls::TlsError),
    #[error(transparent)]
    Loose(#[from] super::LooseFile),
}

impl Token {
    /// Wraps a token value.
    pub fn new(value: &str) -> Self {
        Token(Arc::from(value))
    }

    /// Reads the token from `path`; with `create`, generates 32 random bytes
    /// (hex) into a new 0600 file first if it does not exist.
    pub fn load(path: &Path, create: bool) -> Result<Self, TokenError> {
        if create && !path.exists() {
            super::tls::write_file(path, clock::random_hex(32).as_bytes(), 0o600)?;
        }
        super::ensure_private(path)?;
        let text = std::fs::read_to_string(path).map_err(|source| TokenError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let value = text.trim();
        if value.is_empty() {
            return Err(TokenError::Empty {
                path: path.display().to_string(),
            });
        }
        Ok(Token::new(value))
    }

    /// Constant-time check of an `Authorization` header's value.
    pub fn accepts(&self, authorization: Option<&str>) -> bool {
        let Some(presented) = authorization.and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        }) else {
            return false;
        };
        bool::from(presented.trim().as_bytes().ct_eq(self.0.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_only_the_token() {
        let t = Token::new("abc");
        assert!(!t.accepts(None));
        assert!(!t.accepts(Some("Bearer abd")));
        assert!(!t.accepts(Some("Bearer ab")));
        assert!(!t.accepts(Some("Basic abc")));
        assert!(t.accepts(Some("Bearer abc")));
        assert_eq!(format!("{t:?}"), "Token(<redacted>)");
    }

    #[test]
    fn generates_a_private_token_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("admin.token");
        let t1 = Token::load(&p, true).unwrap();
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(std::fs::read_to_string(&p).unwrap().len(), 64);
        let t2 = Token::load(&p, true).unwrap();
        assert_eq!(t1.0, t2.0, "reused on restart");
    }
}
