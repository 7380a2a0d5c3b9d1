//! The agent's identity on disk and the TLS it serves with.
//!
//! `hybrid-agent join` writes, in the data directory (0700):
//! [`KEY_FILE`] (0600, the key never leaves the host), [`CERT_FILE`] (the
//! certificate hybrid-host signed), [`CA_FILE`] (hybrid-host's CA) and
//! [`AGENT_FILE`] (name, server, endpoint). `hybrid-agent run` serves its
//! API with that certificate and accepts only clients whose certificate
//! the CA signed *for client authentication*: rustls' WebPKI client
//! verifier checks the `clientAuth` extended key usage, which is what keeps
//! another agent (whose certificate the same CA signed, for `serverAuth`
//! only) from calling this one.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::{Deserialize, Serialize};

/// The agent's private key (PEM, 0600).
pub const KEY_FILE: &str = "agent-key.pem";
/// The agent's certificate, signed by hybrid-host's CA.
pub const CERT_FILE: &str = "agent.pem";
/// hybrid-host's CA: the only issuer of clients the agent accepts.
pub const CA_FILE: &str = "ca.pem";
/// [`AgentFile`] as JSON.
pub const AGENT_FILE: &str = "agent.json";

/// What the agent is called and where it was joined: `agent.json`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct AgentFile {
    /// The host name hybrid-host knows this agent by.
    pub name: String,
    /// The hybrid-host it joined (`https://HOST:PORT`).
    pub server: String,
    /// Where hybrid-host reaches the agent (`https://ADDR:PORT`).
    pub endpoint: String,
}

/// Why the identity could not be read, written or used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path} does not exist: run `hybrid-agent join` first")]
    NotJoined { path: PathBuf },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a usable {what}: {message}")]
    Invalid {
        path: PathBuf,
        what: &'static str,
        message: String,
    },
    #[error(
        "{path} is readable by others (mode {mode:04o}); a key file must be private: chmod 600 {path}"
    )]
    Loose { path: String, mode: u32 },
    #[error("TLS configuration rejected {path}: {source}")]
    Rustls {
        path: PathBuf,
        source: rustls::Error,
    },
}

/// Makes `dir` (and its parents) exist and `dir` itself 0700 whatever the
/// umask, also when it was there already (say, made 0755 by an installer):
/// it holds the agent's key.
pub fn create_private_dir(dir: &Path) -> Result<(), TlsError> {
    let err = |source| TlsError::Write {
        path: dir.to_path_buf(),
        source,
    };
    std::os::unix::fs::DirBuilderExt::mode(fs::DirBuilder::new().recursive(true), 0o700)
        .create(dir)
        .map_err(err)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(err)
}

/// Writes `contents` to `path` atomically (a temporary file renamed over
/// it) with `mode`: a crash never leaves half a key, and the mode holds
/// from the first byte whatever the umask.
pub fn write_file(path: &Path, contents: &[u8], mode: u32) -> Result<(), TlsError> {
    let err = |source| TlsError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let _ = fs::remove_file(&tmp);
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(err)?;
    // `mode` is masked by the umask at creation; set it exactly.
    f.set_permissions(fs::Permissions::from_mode(mode))
        .map_err(err)?;
    f.write_all(contents).map_err(err)?;
    f.sync_all().map_err(err)?;
    fs::rename(&tmp, path).map_err(err)
}

/// Refuses a key file whose mode lets its group or others in: a key
/// loosened by a careless copy must not be used silently.
pub fn ensure_private(path: &Path) -> Result<(), TlsError> {
    let meta = fs::metadata(path).map_err(|source| read_error(path, source))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(TlsError::Loose {
            path: path.display().to_string(),
            mode,
        });
    }
    Ok(())
}

/// A missing identity file means the agent has not joined; anything else
/// is reported as it is.
fn read_error(path: &Path, source: std::io::Error) -> TlsError {
    if source.kind() == std::io::ErrorKind::NotFound {
        TlsError::NotJoined {
            path: path.to_path_buf(),
        }
    } else {
        TlsError::Read {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Reads `agent.json` from the data directory.
pub fn read_agent_file(dir: &Path) -> Result<AgentFile, TlsError> {
    let path = dir.join(AGENT_FILE);
    let bytes = fs::read(&path).map_err(|source| read_error(&path, source))?;
    serde_json::from_slice(&bytes).map_err(|e| TlsError::Invalid {
        path,
        what: "agent file",
        message: e.to_string(),
    })
}

/// Every certificate in a PEM file (at least one).
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = fs::read(path).map_err(|source| read_error(path, source))?;
    parse_certs(&bytes).map_err(|message| TlsError::Invalid {
        path: path.to_path_buf(),
        what: "PEM certificate",
        message,
    })
}

/// Every certificate in PEM text (at least one).
pub fn parse_certs(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    if certs.is_empty() {
        return Err("no CERTIFICATE block found".into());
    }
    Ok(certs)
}

fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    ensure_private(path)?;
    let bytes = fs::read(path).map_err(|source| read_error(path, source))?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| TlsError::Invalid {
        path: path.to_path_buf(),
        what: "PEM private key",
        message: e.to_string(),
    })
}

/// The crypto provider everything in the agent uses.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Checks that `key` is the private key of the first certificate in
/// `certs` (a certificate issued for another key would only fail later,
/// at every handshake).
pub fn check_key_matches(
    certs: &[CertificateDer<'static>],
    key: &PrivateKeyDer<'static>,
) -> Result<(), rustls::Error> {
    rustls::sign::CertifiedKey::from_der(certs.to_vec(), key.clone_key(), &provider()).map(|_| ())
}

/// The agent's server configuration from the identity in `dir`: serves
/// [`CERT_FILE`] with [`KEY_FILE`], requires a client certificate that
/// [`CA_FILE`] signed for `clientAuth`.
pub fn server_config(dir: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let cert_path = dir.join(CERT_FILE);
    let key_path = dir.join(KEY_FILE);
    let ca_path = dir.join(CA_FILE);
    // The key first: a loose key is refused before anything is served.
    let key = load_key(&key_path)?;
    let certs = load_certs(&cert_path)?;
    let mut roots = rustls::RootCertStore::empty();
    for ca in load_certs(&ca_path)? {
        roots.add(ca).map_err(|source| TlsError::Rustls {
            path: ca_path.clone(),
            source,
        })?;
    }
    let provider = provider();
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| TlsError::Invalid {
            path: ca_path.clone(),
            what: "CA for client certificates",
            message: e.to_string(),
        })?;
    let rustls_err = |source| TlsError::Rustls {
        path: cert_path.clone(),
        source,
    };
    check_key_matches(&certs, &key).map_err(rustls_err)?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(rustls_err)?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)
        .map_err(rustls_err)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_file_sets_mode_whatever_the_umask() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k.pem");
        write_file(&p, b"x", 0o600).unwrap();
        let mode = fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        write_file(&p, b"y", 0o644).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"y");
        let mode = fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644);
    }

    #[test]
    fn data_dir_is_made_private_even_when_it_exists() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("agent");
        fs::create_dir(&d).unwrap();
        fs::set_permissions(&d, fs::Permissions::from_mode(0o755)).unwrap();
        create_private_dir(&d).unwrap();
        assert_eq!(
            fs::metadata(&d).unwrap().permissions().mode() & 0o777,
            0o700
        );
        create_private_dir(&dir.path().join("a/b")).unwrap();
        let mode = fs::metadata(dir.path().join("a/b"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
    }

    #[test]
    fn loose_key_is_refused_naming_file_and_mode() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(KEY_FILE);
        write_file(&p, b"x", 0o640).unwrap();
        let e = ensure_private(&p).unwrap_err().to_string();
        assert!(e.contains(KEY_FILE) && e.contains("0640"), "{e}");
    }

    #[test]
    fn missing_identity_says_join_first() {
        let dir = tempfile::tempdir().unwrap();
        let e = read_agent_file(dir.path()).unwrap_err().to_string();
        assert!(
            e.contains(AGENT_FILE) && e.contains("hybrid-agent join"),
            "{e}"
        );
    }
}
