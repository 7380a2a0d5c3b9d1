//! `hybrid-agent join`: the one call the agent ever makes to hybrid-host.
//!
//! Direction of the protocol (decided, issue 14): hybrid-host calls the
//! agent, not the other way round. hybrid-host may run as several replicas
//! on one database, and any replica can call any agent with no session
//! routing; each driver call is a request with an answer, a timeout and a
//! retry; heartbeats are hybrid-host's `GET /v1/status` polls. So the agent
//! needs hybrid-host only once: here, to trade a single-use join token for
//! a certificate.
//!
//! The agent generates its ECDSA P-256 key (it never leaves the host) and a
//! certificate signing request (CN = its name, SAN = the advertised
//! address's host), posts [`JoinRequest`] to `POST /v1/agents/join` with
//! the token as `Authorization: Bearer`, trusting only `--ca-file` for
//! hybrid-host's certificate, and writes what [`JoinResponse`] brings into
//! the data directory (see [`crate::tls`]). The token is never logged.

use std::path::{Path, PathBuf};
use std::time::Duration;

use hybrid_api::ErrorEnvelope;
use hybrid_api::agent::{JoinRequest, JoinResponse};
use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair};
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject;

use crate::cli::Secret;
use crate::tls::{self, AgentFile, TlsError};

/// What `join` needs.
#[derive(Debug, Clone)]
pub struct JoinConfig {
    /// hybrid-host, `https://HOST:PORT`.
    pub server: String,
    /// PEM file with the CA that hybrid-host's certificate must chain to.
    pub ca_file: PathBuf,
    /// The join token (never logged or shown: its `Debug` is redacted).
    pub token: Secret,
    pub name: String,
    /// `https://ADDR:PORT` where hybrid-host reaches the agent.
    pub advertise: String,
    pub data_dir: PathBuf,
    /// Replace an identity already in `data_dir`.
    pub force: bool,
}

/// Why joining failed.
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    #[error("--{flag} must be https://HOST:PORT, not {value:?}")]
    BadUrl { flag: &'static str, value: String },
    #[error("--name must not be empty")]
    EmptyName,
    #[error(
        "{dir} already holds the identity of agent {name:?} ({file}); pass --force to replace it"
    )]
    AlreadyJoined {
        dir: PathBuf,
        name: String,
        file: &'static str,
    },
    #[error("cannot read the CA file {path}: {message}")]
    CaFile { path: PathBuf, message: String },
    #[error("cannot generate the agent's key or certificate request: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("cannot reach hybrid-host at {url}: {message}")]
    Unreachable { url: String, message: String },
    #[error("hybrid-host refused the join ({status}): {message}")]
    Refused { status: String, message: String },
    #[error("hybrid-host's answer is not a usable join response: {0}")]
    BadAnswer(String),
    #[error(transparent)]
    Files(#[from] TlsError),
}

/// What a successful join wrote.
#[derive(Debug, Clone)]
pub struct Joined {
    pub agent: AgentFile,
    pub data_dir: PathBuf,
}

/// The host part of an `https://HOST:PORT` URL (brackets stripped from
/// IPv6 literals), checking the scheme and that a port is given.
fn https_host(flag: &'static str, value: &str) -> Result<String, JoinError> {
    let bad = || JoinError::BadUrl {
        flag,
        value: value.to_string(),
    };
    let url = reqwest::Url::parse(value).map_err(|_| bad())?;
    if url.scheme() != "https"
        || url.port().is_none()
        || !matches!(url.path(), "" | "/")
        || url.query().is_some()
        || !url.username().is_empty()
    {
        return Err(bad());
    }
    let host = url.host_str().ok_or_else(bad)?;
    // `[::1]` in a URL, `::1` in a certificate.
    Ok(host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string())
}

/// The agent's key pair and its CSR (PEM) for `name`, naming `san_host`.
pub fn key_and_csr(name: &str, san_host: &str) -> Result<(KeyPair, String), rcgen::Error> {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    // `new` makes an IP SAN of an address and a DNS SAN of anything else.
    let mut params = CertificateParams::new(vec![san_host.to_string()])?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name);
    params.distinguished_name = dn;
    let csr = params.serialize_request(&key)?;
    Ok((key, csr.pem()?))
}

/// Fails when `dir` already holds an identity and `force` is not set; the
/// check comes before the token is spent.
fn refuse_overwrite(dir: &Path, force: bool) -> Result<(), JoinError> {
    if force {
        return Ok(());
    }
    for file in [tls::AGENT_FILE, tls::KEY_FILE, tls::CERT_FILE] {
        if dir.join(file).exists() {
            let name = tls::read_agent_file(dir)
                .map(|a| a.name)
                .unwrap_or_else(|_| "?".to_string());
            return Err(JoinError::AlreadyJoined {
                dir: dir.to_path_buf(),
                name,
                file,
            });
        }
    }
    Ok(())
}

/// The message of a refused join: the service's error envelope when the
/// body is one, else the start of the body.
fn refusal_message(body: &[u8]) -> String {
    match serde_json::from_slice::<ErrorEnvelope>(body) {
        Ok(env) => env.error.to_string(),
        Err(_) => {
            let text = String::from_utf8_lossy(body);
            let text = text.trim();
            if text.is_empty() {
                "(empty answer)".to_string()
            } else {
                text.chars().take(300).collect()
            }
        }
    }
}

/// Joins hybrid-host and writes the identity into the data directory.
pub async fn join(config: &JoinConfig) -> Result<Joined, JoinError> {
    https_host("server", &config.server)?;
    let san_host = https_host("advertise", &config.advertise)?;
    let name = config.name.trim();
    if name.is_empty() {
        return Err(JoinError::EmptyName);
    }
    refuse_overwrite(&config.data_dir, config.force)?;

    let ca_pem = std::fs::read(&config.ca_file).map_err(|e| JoinError::CaFile {
        path: config.ca_file.clone(),
        message: e.to_string(),
    })?;
    let ca_certs =
        reqwest::Certificate::from_pem_bundle(&ca_pem).map_err(|e| JoinError::CaFile {
            path: config.ca_file.clone(),
            message: e.to_string(),
        })?;
    if ca_certs.is_empty() {
        return Err(JoinError::CaFile {
            path: config.ca_file.clone(),
            message: "no CERTIFICATE block found".into(),
        });
    }

    let (key, csr_pem) = key_and_csr(name, &san_host)?;
    let url = format!("{}/v1/agents/join", config.server.trim_end_matches('/'));
    let unreachable = |e: reqwest::Error| JoinError::Unreachable {
        url: url.clone(),
        message: error_chain(&e),
    };
    let client = reqwest::Client::builder()
        .tls_certs_only(ca_certs)
        .timeout(Duration::from_secs(30))
        .connect_timeout(Duration::from_secs(10))
        .build()
        .map_err(unreachable)?;
    tracing::info!(server = %config.server, name, endpoint = %config.advertise, "joining hybrid-host");
    let response = client
        .post(&url)
        .bearer_auth(config.token.expose())
        .json(&JoinRequest {
            name: name.to_string(),
            endpoint: config.advertise.clone(),
            csr_pem,
        })
        .send()
        .await
        .map_err(unreachable)?;
    let status = response.status();
    let body = response.bytes().await.map_err(unreachable)?;
    if !status.is_success() {
        return Err(JoinError::Refused {
            status: status.to_string(),
            message: refusal_message(&body),
        });
    }
    let answer: JoinResponse =
        serde_json::from_slice(&body).map_err(|e| JoinError::BadAnswer(e.to_string()))?;
    let certs = tls::parse_certs(answer.certificate_pem.as_bytes())
        .map_err(|e| JoinError::BadAnswer(format!("certificate_pem: {e}")))?;
    tls::parse_certs(answer.ca_pem.as_bytes())
        .map_err(|e| JoinError::BadAnswer(format!("ca_pem: {e}")))?;
    let key_pem = key.serialize_pem();
    let key_der = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
        .map_err(|e| JoinError::BadAnswer(format!("the agent's own key: {e}")))?;
    tls::check_key_matches(&certs, &key_der).map_err(|e| {
        JoinError::BadAnswer(format!(
            "certificate_pem is not for the key this agent sent: {e}"
        ))
    })?;
    if may_authenticate_clients(&certs[0]).map_err(JoinError::BadAnswer)? {
        return Err(JoinError::BadAnswer(
            "certificate_pem would also authenticate this agent as a client (its extended \
             key usage has clientAuth or is absent); agents accept every client certificate \
             the CA signed for clientAuth, so one agent could call another: hybrid-host must \
             issue agent certificates for serverAuth only"
                .into(),
        ));
    }

    let dir = &config.data_dir;
    tls::create_private_dir(dir)?;
    let agent = AgentFile {
        name: name.to_string(),
        server: config.server.trim_end_matches('/').to_string(),
        endpoint: config.advertise.clone(),
    };
    let agent_json = serde_json::to_vec_pretty(&agent)
        .map_err(|e| JoinError::BadAnswer(format!("agent.json: {e}")))?;
    tls::write_file(&dir.join(tls::KEY_FILE), key_pem.as_bytes(), 0o600)?;
    tls::write_file(
        &dir.join(tls::CERT_FILE),
        answer.certificate_pem.as_bytes(),
        0o644,
    )?;
    tls::write_file(&dir.join(tls::CA_FILE), answer.ca_pem.as_bytes(), 0o644)?;
    // Last: its presence says the identity is complete.
    tls::write_file(&dir.join(tls::AGENT_FILE), &agent_json, 0o644)?;
    tracing::info!(name, data_dir = %dir.display(), "joined");
    Ok(Joined {
        agent,
        data_dir: dir.clone(),
    })
}

/// True when `cert` could pass as a TLS client certificate: its extended
/// key usage names clientAuth or anyExtendedKeyUsage, or it has none (a
/// certificate without the extension may be used for anything).
fn may_authenticate_clients(cert: &[u8]) -> Result<bool, String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert)
        .map_err(|e| format!("certificate_pem cannot be parsed: {e}"))?;
    match parsed.extended_key_usage() {
        Ok(Some(eku)) => Ok(eku.value.client_auth || eku.value.any),
        Ok(None) => Ok(true),
        Err(e) => Err(format!("certificate_pem's extended key usage: {e}")),
    }
}

/// An error and its sources, `: `-joined (reqwest's own message alone
/// hides the cause, e.g. which certificate check failed).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_https_with_a_port() {
        assert_eq!(
            https_host("server", "https://10.0.0.1:8443").unwrap(),
            "10.0.0.1"
        );
        assert_eq!(
            https_host("server", "https://h.example:8443/").unwrap(),
            "h.example"
        );
        assert_eq!(
            https_host("advertise", "https://[::1]:9443").unwrap(),
            "::1"
        );
        for bad in [
            "http://h:1",
            "https://h",
            "h:1",
            "https://h:1/x",
            "https://u@h:1",
        ] {
            let e = https_host("advertise", bad).unwrap_err().to_string();
            assert!(e.contains("--advertise"), "{e}");
        }
    }

    #[test]
    fn refusal_shows_the_envelope_message() {
        let body = br#"{"error":{"code":"Unauthorized","message":"join token expired"}}"#;
        assert_eq!(refusal_message(body), "Unauthorized: join token expired");
        assert_eq!(refusal_message(b"  "), "(empty answer)");
        assert_eq!(refusal_message(b"bad gateway"), "bad gateway");
    }
}
