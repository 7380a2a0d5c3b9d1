//! The CA's second job: certificates for `hybrid-agent`s and hybrid-host's
//! own client certificate for calling them.
//!
//! An agent's certificate is signed from its CSR at join (its key never
//! leaves the host) and carries only the `serverAuth` usage, so no agent can
//! present it as a client to another agent; hybrid-host's client
//! certificate carries only `clientAuth`. With `--tls-cert` the service
//! serves another certificate, but agents still trust this CA.

use std::path::{Path, PathBuf};

use aws_lc_rs::digest::{SHA256, digest};
use rcgen::{
    CertificateParams, CertificateSigningRequestParams, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use time::{Duration, OffsetDateTime};

use super::tls::{self, CA_CERT, CA_KEY, TlsError};

/// hybrid-host's client certificate for agents, in the data directory.
pub const CLIENT_CERT: &str = "agents-client.pem";
pub const CLIENT_KEY: &str = "agents-client-key.pem";
/// The client certificate's common name (agents log it).
pub const CLIENT_NAME: &str = "hybrid-host";
/// How long an agent's certificate lasts.
const AGENT_CERT_DAYS: i64 = 365;

/// Signs agents' certificates with the data directory's CA.
pub struct AgentCa {
    dir: PathBuf,
    ca_pem: String,
}

/// A certificate and its key, PEM.
pub struct Identity {
    pub cert_pem: String,
    pub key_pem: String,
}

fn pem_err(path: PathBuf, what: &'static str, e: rcgen::Error) -> TlsError {
    TlsError::Pem {
        path,
        what,
        message: e.to_string(),
    }
}

impl AgentCa {
    /// Loads the CA from `dir`, generating it when there is none.
    pub fn load_or_create(dir: &Path) -> Result<AgentCa, TlsError> {
        if !(dir.join(CA_CERT).exists() && dir.join(CA_KEY).exists()) {
            tls::generate_ca(dir)?;
        }
        super::ensure_private(&dir.join(CA_KEY))?;
        Ok(AgentCa {
            dir: dir.to_path_buf(),
            ca_pem: tls::read(&dir.join(CA_CERT))?,
        })
    }

    /// The CA certificate agents trust for clients.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    fn issuer(&self) -> Result<Issuer<'static, KeyPair>, TlsError> {
        let key_path = self.dir.join(CA_KEY);
        let key = KeyPair::from_pem(&tls::read(&key_path)?)
            .map_err(|e| pem_err(key_path, "private key", e))?;
        Issuer::from_ca_cert_pem(&self.ca_pem, key)
            .map_err(|e| pem_err(self.dir.join(CA_CERT), "CA certificate", e))
    }

    /// Signs an agent's CSR: CN = `name`, the only subject alternative name
    /// is `endpoint_host` (whatever the CSR asked for), `serverAuth` only.
    pub fn sign_agent(
        &self,
        name: &str,
        endpoint_host: &str,
        csr_pem: &str,
    ) -> Result<String, AgentCaError> {
        let mut csr = CertificateSigningRequestParams::from_pem(csr_pem)
            .map_err(|e| AgentCaError::Csr(e.to_string()))?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, name);
        params.distinguished_name = dn;
        params.subject_alt_names = vec![match endpoint_host.parse::<std::net::IpAddr>() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => SanType::DnsName(
                endpoint_host
                    .to_string()
                    .try_into()
                    .map_err(|e: rcgen::Error| AgentCaError::Csr(e.to_string()))?,
            ),
        }];
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::hours(1);
        params.not_after = now + Duration::days(AGENT_CERT_DAYS);
        csr.params = params;
        let cert = csr.signed_by(&self.issuer()?).map_err(AgentCaError::Sign)?;
        Ok(cert.pem())
    }

    /// hybrid-host's client certificate for agents, issued on first use
    /// and again when it has less than a week left.
    pub fn client_identity(&self) -> Result<Identity, TlsError> {
        let (cert_path, key_path) = (self.dir.join(CLIENT_CERT), self.dir.join(CLIENT_KEY));
        if key_path.exists() && tls::fresh_cert(&cert_path, |_| true) {
            super::ensure_private(&key_path)?;
            return Ok(Identity {
                cert_pem: tls::read(&cert_path)?,
                key_pem: tls::read(&key_path)?,
            });
        }
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, CLIENT_NAME);
        params.distinguished_name = dn;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::hours(1);
        params.not_after = now + Duration::days(365);
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer()?)?;
        tls::write_file(&key_path, key.serialize_pem().as_bytes(), 0o600)?;
        tls::write_file(&cert_path, cert.pem().as_bytes(), 0o644)?;
        Ok(Identity {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

/// Why an agent's certificate could not be signed.
#[derive(Debug, thiserror::Error)]
pub enum AgentCaError {
    #[error("csr_pem is not a usable PEM certificate signing request: {0}")]
    Csr(String),
    #[error("signing the agent's certificate failed: {0}")]
    Sign(rcgen::Error),
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// SHA-256 (hex) of a PEM certificate's DER: what hybrid-host pins.
pub fn fingerprint(cert_pem: &str) -> Option<String> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(cert_pem.as_bytes()).ok()?;
    Some(hex::encode(digest(&SHA256, &pem.contents).as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_agent_csr_for_server_use_only_and_keeps_client_identity() {
        let dir = tempfile::tempdir().unwrap();
        let ca = AgentCa::load_or_create(dir.path()).unwrap();
        let key = KeyPair::generate().unwrap();
        let csr = CertificateParams::new(vec!["evil.example".to_string()])
            .unwrap()
            .serialize_request(&key)
            .unwrap()
            .pem()
            .unwrap();
        let pem = ca.sign_agent("host-1", "127.0.0.7", &csr).unwrap();
        let (_, p) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).unwrap();
        let cert = p.parse_x509().unwrap();
        let cn = cert.subject().iter_common_name().next().unwrap();
        assert_eq!(cn.as_str().unwrap(), "host-1");
        let san = cert.subject_alternative_name().unwrap().unwrap();
        let names = format!("{:?}", san.value.general_names);
        assert!(
            names.contains("127.0.0.7") || names.contains("[127, 0, 0, 7]"),
            "{names}"
        );
        assert!(
            !names.contains("evil"),
            "the CSR's names are not taken: {names}"
        );
        let eku = cert.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.server_auth && !eku.client_auth);
        assert_eq!(fingerprint(&pem).unwrap().len(), 64);
        assert!(ca.sign_agent("host-1", "127.0.0.7", "not a csr").is_err());

        let first = ca.client_identity().unwrap();
        let again = ca.client_identity().unwrap();
        assert_eq!(first.cert_pem, again.cert_pem, "reused while valid");
    }
}
