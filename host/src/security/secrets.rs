//! Encryption at rest for secrets the service stores (extension protected
//! settings, cluster CA private keys): AES-256-GCM with a random nonce per
//! value, keyed by `secrets.key` (32 random bytes, mode 0600) in the data
//! directory. The key and the plaintexts are never logged.
//!
//! A sealed value is `hv1:` + base64(nonce ‖ ciphertext ‖ tag); the
//! associated data binds it to its purpose (e.g. the extension id), so a
//! value copied to another row does not open.

use std::path::Path;
use std::sync::Arc;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// File name of the key inside the data directory.
pub const KEY_FILE: &str = "secrets.key";
const PREFIX: &str = "hv1:";
const KEY_LEN: usize = 32;

/// Why a secret could not be sealed or opened. Never carries the secret.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("cannot read secrets key {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("secrets key {path} is {len} bytes; it must be exactly {KEY_LEN}")]
    KeyLength { path: String, len: usize },
    #[error(transparent)]
    Write(#[from] super::tls::TlsError),
    #[error("the system random source failed")]
    Random,
    #[error(transparent)]
    Loose(#[from] super::LooseFile),
    #[error("a stored secret could not be decrypted (wrong {KEY_FILE}, or the value was altered)")]
    Open,
}

/// What a stored secret is bound to: a value sealed for one owner and name
/// does not open as another (every store uses it).
pub fn secret_purpose(owner: &str, name: &str) -> String {
    format!("secret:{owner}:{name}")
}

/// Seals and opens secrets with the data directory's key. Cheap to clone.
/// `Debug` never shows the key.
#[derive(Clone)]
pub struct Sealer {
    key: Arc<LessSafeKey>,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(<redacted>)")
    }
}

impl Sealer {
    /// Loads `DIR/secrets.key`, creating it (0600) on first start.
    pub fn load_or_create(data_dir: &Path) -> Result<Self, SecretsError> {
        Self::load(&data_dir.join(KEY_FILE), true)
    }

    /// Loads the key at `path` (`--secrets-key-file`, shared by replicas),
    /// creating it (0600) when missing only if `create`.
    pub fn load(path: &Path, create: bool) -> Result<Self, SecretsError> {
        let path = path.to_path_buf();
        if create && !path.exists() {
            let mut key = [0u8; KEY_LEN];
            SystemRandom::new()
                .fill(&mut key)
                .map_err(|_| SecretsError::Random)?;
            super::tls::write_file(&path, &key, 0o600)?;
        }
        super::ensure_private(&path)?;
        let bytes = std::fs::read(&path).map_err(|source| SecretsError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_key(&bytes).map_err(|_| SecretsError::KeyLength {
            path: path.display().to_string(),
            len: bytes.len(),
        })
    }

    /// A sealer from raw key bytes (32).
    pub fn from_key(bytes: &[u8]) -> Result<Self, SecretsError> {
        if bytes.len() != KEY_LEN {
            return Err(SecretsError::KeyLength {
                path: "<memory>".into(),
                len: bytes.len(),
            });
        }
        let unbound = UnboundKey::new(&AES_256_GCM, bytes).map_err(|_| SecretsError::Random)?;
        Ok(Sealer {
            key: Arc::new(LessSafeKey::new(unbound)),
        })
    }

    /// Encrypts `plaintext`, bound to `purpose` (e.g. the owning object's id).
    pub fn seal(&self, purpose: &str, plaintext: &[u8]) -> Result<String, SecretsError> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| SecretsError::Random)?;
        let mut in_out = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(purpose.as_bytes()),
                &mut in_out,
            )
            .map_err(|_| SecretsError::Random)?;
        let mut sealed = nonce.to_vec();
        sealed.extend_from_slice(&in_out);
        Ok(format!("{PREFIX}{}", STANDARD.encode(sealed)))
    }

    /// Decrypts what [`Sealer::seal`] produced for the same `purpose`.
    pub fn open(&self, purpose: &str, sealed: &str) -> Result<Vec<u8>, SecretsError> {
        let bytes = sealed
            .strip_prefix(PREFIX)
            .and_then(|b| STANDARD.decode(b).ok())
            .ok_or(SecretsError::Open)?;
        if bytes.len() < NONCE_LEN {
            return Err(SecretsError::Open);
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SecretsError::Open)?;
        let mut in_out = ciphertext.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(purpose.as_bytes()), &mut in_out)
            .map_err(|_| SecretsError::Open)?;
        Ok(plain.to_vec())
    }

    /// True when `value` looks like a sealed value (not plaintext).
    pub fn is_sealed(value: &str) -> bool {
        value.starts_with(PREFIX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_round_trips_and_binds_the_purpose() {
        let dir = tempfile::tempdir().map_err(|e| e.to_string());
        let Ok(dir) = dir else { panic!("tempdir") };
        let sealer = Sealer::load_or_create(dir.path()).map_err(|e| e.to_string());
        let Ok(sealer) = sealer else { panic!("sealer") };
        let sealed = sealer
            .seal("/clusters/a/extensions/f", b"hunter2")
            .unwrap_or_default();
        assert!(Sealer::is_sealed(&sealed));
        assert!(!sealed.contains("hunter2"));
        assert_eq!(
            sealer
                .open("/clusters/a/extensions/f", &sealed)
                .ok()
                .as_deref(),
            Some(&b"hunter2"[..])
        );
        assert!(sealer.open("/clusters/b/extensions/f", &sealed).is_err());
        // The same key file opens it again after a restart.
        let again = Sealer::load_or_create(dir.path()).map_err(|e| e.to_string());
        let Ok(again) = again else { panic!("reload") };
        assert!(again.open("/clusters/a/extensions/f", &sealed).is_ok());
        let mode = std::fs::metadata(dir.path().join(KEY_FILE))
            .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777);
        assert_eq!(mode.ok(), Some(0o600));
    }
}
