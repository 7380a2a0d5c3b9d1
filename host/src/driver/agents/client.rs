//! One agent's API client: mutual TLS with hybrid-host's client
//! certificate, the agent's certificate checked against the CA, its name
//! against the endpoint, and its SHA-256 against the one recorded when it
//! joined (so a revoked agent's certificate, or another agent's, is
//! refused even though the CA signed it).

use std::sync::Arc;
use std::time::Duration;

use aws_lc_rs::digest::{SHA256, digest};
use hybrid_api::agent::{AgentStatus, VmSpec, VmStatus};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

use crate::observability::trace;

/// What a call to an agent can end in.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// Could not reach it, or TLS failed (including a certificate that is
    /// not the registered one).
    #[error("unreachable at {endpoint}: {message}")]
    Unreachable { endpoint: String, message: String },
    /// The agent answered with an error envelope.
    #[error("{status}: {message}")]
    Refused { status: u16, message: String },
    #[error("invalid answer: {0}")]
    Invalid(String),
    #[error("cannot build the TLS client: {0}")]
    Tls(String),
}

/// hybrid-host's side of the mutual TLS, shared by every agent's client.
pub struct ClientIdentity {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

/// Checks the chain and name as usual, then pins the end-entity certificate.
#[derive(Debug)]
struct Pinned {
    inner: Arc<WebPkiServerVerifier>,
    sha256: String,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)?;
        let seen = hex::encode(digest(&SHA256, end_entity.as_ref()).as_ref());
        if seen != self.sha256 {
            return Err(rustls::Error::General(format!(
                "the agent's certificate (sha256 {seen}) is not the one it joined with (sha256 {})",
                self.sha256
            )));
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// A client for one agent.
#[derive(Clone)]
pub struct AgentClient {
    endpoint: String,
    http: reqwest::Client,
}

fn tls_err(e: impl std::fmt::Display) -> CallError {
    CallError::Tls(e.to_string())
}

impl AgentClient {
    /// A client for the agent at `endpoint` whose certificate must hash to
    /// `certificate_sha256`.
    pub fn new(
        identity: &ClientIdentity,
        endpoint: &str,
        certificate_sha256: &str,
        timeout: Duration,
    ) -> Result<AgentClient, CallError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(identity.ca_pem.as_bytes()) {
            roots.add(cert.map_err(tls_err)?).map_err(tls_err)?;
        }
        let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .map_err(tls_err)?;
        let certs = CertificateDer::pem_slice_iter(identity.cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(tls_err)?;
        let key = PrivateKeyDer::from_pem_slice(identity.key_pem.as_bytes()).map_err(tls_err)?;
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(tls_err)?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Pinned {
                inner,
                sha256: certificate_sha256.to_string(),
            }))
            .with_client_auth_cert(certs, key)
            .map_err(tls_err)?;
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .timeout(timeout)
            .build()
            .map_err(tls_err)?;
        Ok(AgentClient {
            endpoint: endpoint.trim_end_matches('/').to_string(),
            http,
        })
    }

    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        req: reqwest::RequestBuilder,
    ) -> Result<Option<T>, CallError> {
        let resp = with_trace(req)
            .send()
            .await
            .map_err(|e| CallError::Unreachable {
                endpoint: self.endpoint.clone(),
                message: error_chain(&e),
            })?;
        let status = resp.status();
        if status == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if status == reqwest::StatusCode::NO_CONTENT {
            return Ok(None);
        }
        let bytes = resp.bytes().await.map_err(|e| CallError::Unreachable {
            endpoint: self.endpoint.clone(),
            message: error_chain(&e),
        })?;
        if !status.is_success() {
            let message = serde_json::from_slice::<hybrid_api::ErrorEnvelope>(&bytes)
                .map(|e| e.error.message)
                .unwrap_or_else(|_| String::from_utf8_lossy(&bytes).chars().take(300).collect());
            return Err(CallError::Refused {
                status: status.as_u16(),
                message,
            });
        }
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| CallError::Invalid(e.to_string()))
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.endpoint)
    }

    /// The heartbeat.
    pub async fn status(&self) -> Result<AgentStatus, CallError> {
        self.call(self.http.get(self.url("/v1/status")))
            .await?
            .ok_or_else(|| CallError::Invalid("GET /v1/status answered 404".into()))
    }

    pub async fn put_vm(&self, spec: &VmSpec) -> Result<VmStatus, CallError> {
        let path = format!("/v1/vms/{}", spec.name);
        self.call(self.http.put(self.url(&path)).json(spec))
            .await?
            .ok_or_else(|| CallError::Invalid(format!("PUT {path} answered without a VM")))
    }

    pub async fn vm(&self, name: &str) -> Result<Option<VmStatus>, CallError> {
        self.call(self.http.get(self.url(&format!("/v1/vms/{name}"))))
            .await
    }

    /// `start` or `stop`.
    pub async fn power(&self, name: &str, action: &str) -> Result<Option<VmStatus>, CallError> {
        self.call(
            self.http
                .post(self.url(&format!("/v1/vms/{name}/{action}"))),
        )
        .await
    }

    pub async fn delete_vm(&self, name: &str) -> Result<(), CallError> {
        self.call::<serde_json::Value>(self.http.delete(self.url(&format!("/v1/vms/{name}"))))
            .await
            .map(|_| ())
    }
}

/// The error and its sources, one line (reqwest hides the TLS reason in
/// the sources).
/// `req` with the `traceparent` of the operation (or request) this runs
/// for, as a child span of its trace, so the agent logs the request under
/// the same request id; a call outside any (a heartbeat) has none.
fn with_trace(req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    match trace::current() {
        Some(id) => req.header(trace::TRACEPARENT, child_traceparent(&id)),
        None => req,
    }
}

/// The `traceparent` of a new span (sampled) in trace `trace_id`.
fn child_traceparent(trace_id: &str) -> String {
    format!("00-{trace_id}-{}-01", trace::new_span_id())
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `traceparent` a request to an agent would carry (built, never
    /// sent).
    fn traceparent_sent() -> Option<String> {
        let req = with_trace(reqwest::Client::new().get("https://127.0.0.1:1/v1/status"))
            .build()
            .unwrap();
        req.headers()
            .get(trace::TRACEPARENT)
            .map(|v| v.to_str().unwrap().to_string())
    }

    #[tokio::test]
    async fn calls_for_an_operation_carry_its_trace_with_a_new_span_each() {
        let id = "4bf92f3577b34da6a3ce929d0e0e4736".to_string();
        let (a, b) = trace::scope(id.clone(), async {
            (traceparent_sent(), traceparent_sent())
        })
        .await;
        let (a, b) = (a.unwrap(), b.unwrap());
        // What the agent parses is what hybrid-host itself accepts.
        let (trace_a, span_a, flags) = trace::parse(&a).unwrap_or_else(|| panic!("{a}"));
        let (trace_b, span_b, _) = trace::parse(&b).unwrap_or_else(|| panic!("{b}"));
        assert_eq!(
            (trace_a.as_str(), trace_b.as_str()),
            (id.as_str(), id.as_str())
        );
        assert_eq!(flags, 1);
        assert_ne!(span_a, span_b);
    }

    #[tokio::test]
    async fn calls_outside_any_trace_carry_none() {
        assert_eq!(traceparent_sent(), None);
    }
}
