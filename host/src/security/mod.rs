//! Who may talk to the service and what it keeps secret: the admin token
//! ([`tokens`]), TLS material ([`tls`]), secrets sealed at rest
//! ([`secrets`]) and the audit log of credential issuance ([`audit`]).
//!
//! May depend on: [`crate::clock`] only. The HTTP side of authentication
//! (the bearer-token middleware, the peer address) lives in `http/`.

pub mod agent_ca;
pub mod audit;
pub mod secrets;
pub mod tls;
pub mod tokens;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// A key or token file that others may read.
#[derive(Debug, thiserror::Error)]
#[error(
    "{path} is readable by others (mode {mode:04o}); a key or token file must be private: chmod 600 {path}"
)]
pub struct LooseFile {
    pub path: String,
    pub mode: u32,
}

/// Refuses a secret file whose mode lets its group or others in: a key
/// loosened by a careless copy must not be used silently.
pub fn ensure_private(path: &Path) -> Result<(), LooseFile> {
    let Ok(meta) = std::fs::metadata(path) else {
        return Ok(()); // reading it reports the real problem
    };
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(LooseFile {
            path: path.display().to_string(),
            mode,
        });
    }
    Ok(())
}
