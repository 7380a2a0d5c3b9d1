//! TLS material: a private CA and a server certificate kept in the data
//! directory, and the rustls server configuration built from them.
//!
//! First start generates everything; later starts reuse the CA (clients
//! already trust it) and regenerate only the server certificate when it no
//! longer covers the listen address or is about to expire.

use std::fs;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use time::{Duration, OffsetDateTime};

pub const CA_CERT: &str = "ca.pem";
pub const CA_KEY: &str = "ca-key.pem";
pub const SERVER_CERT: &str = "server.pem";
pub const SERVER_KEY: &str = "server-key.pem";

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
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
    #[error("{path} is not a usable PEM {what}: {message}")]
    Pem {
        path: PathBuf,
        what: &'static str,
        message: String,
    },
    #[error("generating certificates failed: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("TLS configuration rejected the certificate/key: {0}")]
    Rustls(#[from] rustls::Error),
    #[error(transparent)]
    Loose(#[from] super::LooseFile),
}

/// What [`prepare`] produced.
pub struct TlsMaterial {
    pub server_config: Arc<ServerConfig>,
    /// The CA clients should trust (`None` with `--tls-cert`/`--tls-key`).
    pub ca_path: Option<PathBuf>,
}

/// Writes `contents` to `path` atomically, with `mode` permissions.
pub fn write_file(path: &Path, contents: &[u8], mode: u32) -> Result<(), TlsError> {
    let err = |source| TlsError::Write {
        path: path.to_path_buf(),
        source,
    };
    let tmp = path.with_extension("tmp");
    let _ = fs::remove_file(&tmp);
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(err)?;
    f.write_all(contents).map_err(err)?;
    f.sync_all().map_err(err)?;
    fs::rename(&tmp, path).map_err(err)
}

pub(crate) fn read(path: &Path) -> Result<String, TlsError> {
    fs::read_to_string(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    })
}

pub(crate) fn generate_ca(dir: &Path) -> Result<(), TlsError> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "hybrid-host CA");
    params.distinguished_name = dn;
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::hours(1);
    params.not_after = now + Duration::days(3650);
    let cert = params.self_signed(&key)?;
    write_file(&dir.join(CA_KEY), key.serialize_pem().as_bytes(), 0o600)?;
    write_file(&dir.join(CA_CERT), cert.pem().as_bytes(), 0o644)?;
    Ok(())
}

/// Addresses the server certificate must name for `listen`.
fn wanted_ips(listen: IpAddr) -> Vec<IpAddr> {
    let mut ips = vec![IpAddr::V4(Ipv4Addr::LOCALHOST)];
    if !listen.is_unspecified() && !ips.contains(&listen) {
        ips.push(listen);
    }
    ips
}

fn generate_server(dir: &Path, listen: IpAddr) -> Result<(), TlsError> {
    let ca_key_pem = read(&dir.join(CA_KEY))?;
    let ca_pem = read(&dir.join(CA_CERT))?;
    let pem_err = |path: PathBuf, what, e: rcgen::Error| TlsError::Pem {
        path,
        what,
        message: e.to_string(),
    };
    let ca_key =
        KeyPair::from_pem(&ca_key_pem).map_err(|e| pem_err(dir.join(CA_KEY), "private key", e))?;
    let issuer = Issuer::from_ca_cert_pem(&ca_pem, ca_key)
        .map_err(|e| pem_err(dir.join(CA_CERT), "CA certificate", e))?;

    let mut names = vec!["localhost".to_string()];
    names.extend(wanted_ips(listen).iter().map(IpAddr::to_string));
    let mut params = CertificateParams::new(names)?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "hybrid-host");
    params.distinguished_name = dn;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::hours(1);
    params.not_after = now + Duration::days(365);
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &issuer)?;
    write_file(&dir.join(SERVER_KEY), key.serialize_pem().as_bytes(), 0o600)?;
    write_file(&dir.join(SERVER_CERT), cert.pem().as_bytes(), 0o644)?;
    Ok(())
}

/// True if the certificate at `path` is valid for at least another week
/// and passes `check`.
pub(crate) fn fresh_cert(
    path: &Path,
    check: impl FnOnce(&x509_parser::certificate::X509Certificate) -> bool,
) -> bool {
    let Ok(bytes) = fs::read(path) else {
        return false;
    };
    let Ok((_, pem)) = x509_parser::pem::parse_x509_pem(&bytes) else {
        return false;
    };
    let Ok(cert) = pem.parse_x509() else {
        return false;
    };
    let fresh = cert
        .validity()
        .time_to_expiration()
        .is_some_and(|d| d > std::time::Duration::from_secs(7 * 24 * 3600));
    fresh && check(&cert)
}

/// True if the server certificate at `path` names every address in `ips`
/// and is valid for at least another week.
fn server_cert_covers(path: &Path, ips: &[IpAddr]) -> bool {
    fresh_cert(path, |cert| {
        let Ok(Some(san)) = cert.subject_alternative_name() else {
            return false;
        };
        let named: Vec<IpAddr> = san
            .value
            .general_names
            .iter()
            .filter_map(|n| match n {
                x509_parser::extensions::GeneralName::IPAddress(b) => match b.len() {
                    4 => <[u8; 4]>::try_from(*b).ok().map(IpAddr::from),
                    16 => <[u8; 16]>::try_from(*b).ok().map(IpAddr::from),
                    _ => None,
                },
                _ => None,
            })
            .collect();
        ips.iter().all(|ip| named.contains(ip))
    })
}

fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem_err = |message: String| TlsError::Pem {
        path: path.to_path_buf(),
        what: "certificate",
        message,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| pem_err(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_err(e.to_string()))?;
    if certs.is_empty() {
        return Err(pem_err("no CERTIFICATE block found".into()));
    }
    Ok(certs)
}

fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    super::ensure_private(path)?;
    PrivateKeyDer::from_pem_file(path).map_err(|e| TlsError::Pem {
        path: path.to_path_buf(),
        what: "private key",
        message: e.to_string(),
    })
}

/// Makes sure TLS files exist in `dir` (unless `cert`/`key` are given) and
/// builds the server configuration for `listen`.
pub fn prepare(
    dir: &Path,
    listen: IpAddr,
    cert_and_key: Option<(&Path, &Path)>,
) -> Result<TlsMaterial, TlsError> {
    let (cert_path, key_path, ca_path) = match cert_and_key {
        Some((c, k)) => (c.to_path_buf(), k.to_path_buf(), None),
        None => {
            let ca_exists = dir.join(CA_CERT).exists() && dir.join(CA_KEY).exists();
            if ca_exists {
                // Checked even when no certificate is issued this time.
                super::ensure_private(&dir.join(CA_KEY))?;
            }
            if !ca_exists {
                generate_ca(dir)?;
            }
            let server = dir.join(SERVER_CERT);
            if !ca_exists
                || !dir.join(SERVER_KEY).exists()
                || !server_cert_covers(&server, &wanted_ips(listen))
            {
                tracing::info!(path = %server.display(), "issuing server certificate");
                generate_server(dir, listen)?;
            }
            (server, dir.join(SERVER_KEY), Some(dir.join(CA_CERT)))
        }
    };
    let certs = load_certs(&cert_path)?;
    let key = load_key(&key_path)?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsMaterial {
        server_config: Arc::new(config),
        ca_path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_once_and_reissues_for_new_address() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        prepare(d, "127.0.0.1".parse().unwrap(), None).unwrap();
        let ca1 = fs::read(d.join(CA_CERT)).unwrap();
        let srv1 = fs::read(d.join(SERVER_CERT)).unwrap();
        use std::os::unix::fs::PermissionsExt;
        for k in [CA_KEY, SERVER_KEY] {
            let mode = fs::metadata(d.join(k)).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{k}");
        }
        prepare(d, "127.0.0.1".parse().unwrap(), None).unwrap();
        assert_eq!(fs::read(d.join(SERVER_CERT)).unwrap(), srv1, "reused");
        prepare(d, "127.0.0.2".parse().unwrap(), None).unwrap();
        assert_ne!(fs::read(d.join(SERVER_CERT)).unwrap(), srv1, "reissued");
        assert_eq!(fs::read(d.join(CA_CERT)).unwrap(), ca1, "CA kept");
        assert!(server_cert_covers(
            &d.join(SERVER_CERT),
            &["127.0.0.2".parse().unwrap(), "127.0.0.1".parse().unwrap()]
        ));
    }
}
