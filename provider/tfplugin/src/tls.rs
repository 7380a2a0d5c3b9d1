//! go-plugin auto-mTLS.
//!
//! Terraform generates a fresh self-signed client certificate (ECDSA P-521,
//! CA flag set) per plugin launch and passes it as PEM in
//! `PLUGIN_CLIENT_CERT`; the plugin answers with its own fresh self-signed
//! server certificate in the handshake line. Each side then trusts exactly the
//! other's certificate. rustls' WebPKI verifier cannot be used for this (it
//! rejects CA certificates as end entities), so both directions use a pinning
//! verifier: the peer must present exactly the expected DER, and its TLS
//! handshake signature is checked with aws-lc-rs, which supports P-521.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, SignatureScheme};

/// Why TLS material could not be produced or loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// `PLUGIN_CLIENT_CERT` holds no usable PEM certificate.
    #[error(
        "PLUGIN_CLIENT_CERT: value does not contain a PEM certificate (must be one \"-----BEGIN CERTIFICATE-----\" block): {detail}"
    )]
    ClientCertPem {
        /// Parser detail.
        detail: String,
    },
    /// Certificate generation failed.
    #[error("generating the plugin's self-signed TLS certificate failed: {0}")]
    Generate(#[from] rcgen::Error),
    /// rustls refused the configuration.
    #[error("building the TLS configuration failed: {0}")]
    Config(#[from] rustls::Error),
}

/// The crypto provider for every TLS config here: aws-lc-rs, passed
/// explicitly so no process-wide default is needed (and P-521 works).
pub fn crypto_provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// A certificate and its private key (the key never leaves this struct's
/// owner; it is not `Debug`).
pub struct Identity {
    /// Certificate, DER.
    pub cert: CertificateDer<'static>,
    key: PrivatePkcs8KeyDer<'static>,
}

impl Identity {
    /// The private key, for a rustls config.
    pub fn key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(self.key.clone_key())
    }

    /// Certificate as PEM (what a host puts in `PLUGIN_CLIENT_CERT`).
    pub fn cert_pem(&self) -> String {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD.encode(self.cert.as_ref());
        let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
        for chunk in b64.as_bytes().chunks(64) {
            pem.push_str(&String::from_utf8_lossy(chunk));
            pem.push('\n');
        }
        pem.push_str("-----END CERTIFICATE-----\n");
        pem
    }
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("cert_len", &self.cert.len())
            .finish_non_exhaustive()
    }
}

fn self_signed(
    alg: &'static rcgen::SignatureAlgorithm,
    organization: &str,
    is_ca: bool,
) -> Result<Identity, TlsError> {
    let key = rcgen::KeyPair::generate_for(alg)?;
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()])?;
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(rcgen::DnType::CommonName, "localhost");
    dn.push(rcgen::DnType::OrganizationName, organization);
    params.distinguished_name = dn;
    let now = time::OffsetDateTime::now_utc();
    // Small back-dating tolerates clock skew between host and plugin.
    params.not_before = now - time::Duration::minutes(5);
    params.not_after = now + time::Duration::days(365);
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::DigitalSignature,
        rcgen::KeyUsagePurpose::KeyEncipherment,
    ];
    if is_ca {
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages.push(rcgen::KeyUsagePurpose::KeyCertSign);
    }
    params.extended_key_usages = vec![
        rcgen::ExtendedKeyUsagePurpose::ServerAuth,
        rcgen::ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let cert = params.self_signed(&key)?;
    Ok(Identity {
        cert: cert.der().clone(),
        key: PrivatePkcs8KeyDer::from(key.serialize_der()),
    })
}

/// A fresh server identity: ECDSA P-256, CN/SAN `localhost`, valid one year.
/// Go's TLS client accepts it because Terraform puts exactly this certificate
/// in its root pool (a pooled leaf verifies as a chain of one).
pub fn generate_server_identity() -> Result<Identity, TlsError> {
    self_signed(&rcgen::PKCS_ECDSA_P256_SHA256, "Hybrid", false)
}

/// A client identity shaped like Terraform's: ECDSA P-521 with SHA-512, CA
/// flag set, CN/SAN `localhost`. Used by [`crate::client`] and tests.
pub fn generate_terraform_like_client_identity() -> Result<Identity, TlsError> {
    self_signed(&rcgen::PKCS_ECDSA_P521_SHA512, "HashiCorp", true)
}

/// Parses `PLUGIN_CLIENT_CERT` (PEM; the first certificate block is used).
pub fn parse_client_cert_pem(pem: &str) -> Result<CertificateDer<'static>, TlsError> {
    CertificateDer::from_pem_slice(pem.as_bytes()).map_err(|e| TlsError::ClientCertPem {
        detail: e.to_string(),
    })
}

/// Accepts exactly one certificate, by its DER bytes, and checks that the
/// peer's TLS handshake signature was made with that certificate's key.
#[derive(Debug)]
pub struct PinnedCertVerifier {
    pinned: CertificateDer<'static>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl PinnedCertVerifier {
    /// Pins `cert`; signatures are checked with `provider`'s algorithms.
    pub fn new(cert: CertificateDer<'static>, provider: &CryptoProvider) -> Self {
        Self {
            pinned: cert,
            algorithms: provider.signature_verification_algorithms,
        }
    }

    fn check(&self, presented: &CertificateDer<'_>) -> Result<(), rustls::Error> {
        if presented.as_ref() == self.pinned.as_ref() {
            Ok(())
        } else {
            // Not the certificate this process was launched with: refuse.
            Err(rustls::Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            ))
        }
    }
}

impl ClientCertVerifier for PinnedCertVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        // An empty list lets Go's client send its only certificate.
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.check(end_entity)?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

impl ServerCertVerifier for PinnedCertVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.check(end_entity)?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// Server config: our identity, TLS 1.2/1.3, ALPN `h2`, and a mandatory
/// client certificate equal to `client_cert`.
pub fn server_config(
    identity: &Identity,
    client_cert: CertificateDer<'static>,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let provider = crypto_provider();
    let verifier = Arc::new(PinnedCertVerifier::new(client_cert, &provider));
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![identity.cert.clone()], identity.key())?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

/// Client config: present `identity` (if any) and trust only `server_cert`.
pub fn client_config(
    identity: Option<&Identity>,
    server_cert: CertificateDer<'static>,
) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let provider = crypto_provider();
    let verifier = Arc::new(PinnedCertVerifier::new(server_cert, &provider));
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut config = match identity {
        Some(id) => builder.with_client_auth_cert(vec![id.cert.clone()], id.key())?,
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_identity_is_p521_ca_like_terraform() {
        let id = generate_terraform_like_client_identity().unwrap();
        let (_, cert) = x509_parser::parse_x509_certificate(id.cert.as_ref()).unwrap();
        assert!(cert.is_ca());
        let curve = cert
            .public_key()
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.as_oid().ok())
            .unwrap();
        assert_eq!(curve.to_id_string(), "1.3.132.0.35", "secp521r1");
    }

    #[test]
    fn pem_round_trip_and_bad_pem_names_the_variable() {
        let id = generate_terraform_like_client_identity().unwrap();
        let parsed = parse_client_cert_pem(&id.cert_pem()).unwrap();
        assert_eq!(parsed.as_ref(), id.cert.as_ref());
        let err = parse_client_cert_pem("not a certificate").unwrap_err();
        assert!(err.to_string().starts_with("PLUGIN_CLIENT_CERT:"), "{err}");
    }

    #[test]
    fn pinned_verifier_accepts_only_the_pinned_cert() {
        let a = generate_terraform_like_client_identity().unwrap();
        let b = generate_terraform_like_client_identity().unwrap();
        let v = PinnedCertVerifier::new(a.cert.clone(), &crypto_provider());
        let now = UnixTime::now();
        assert!(v.verify_client_cert(&a.cert, &[], now).is_ok());
        assert!(matches!(
            v.verify_client_cert(&b.cert, &[], now),
            Err(rustls::Error::InvalidCertificate(_))
        ));
        assert!(v.client_auth_mandatory());
        assert!(
            ClientCertVerifier::supported_verify_schemes(&v)
                .contains(&SignatureScheme::ECDSA_NISTP521_SHA512)
        );
    }

    /// Runs one TLS handshake in memory with the given client protocol
    /// versions; returns the negotiated version or the error text.
    async fn handshake(
        versions: &[&'static rustls::SupportedProtocolVersion],
        client: &Identity,
        pinned: &Identity,
    ) -> Result<rustls::ProtocolVersion, String> {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let server_id = generate_server_identity().unwrap();
        let server = server_config(&server_id, pinned.cert.clone()).unwrap();
        let provider = crypto_provider();
        let verifier = Arc::new(PinnedCertVerifier::new(server_id.cert.clone(), &provider));
        let client_cfg = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .unwrap()
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_client_auth_cert(vec![client.cert.clone()], client.key())
            .unwrap();
        let (a, b) = tokio::io::duplex(64 * 1024);
        let srv = tokio::spawn(async move {
            let mut s = tokio_rustls::TlsAcceptor::from(server)
                .accept(a)
                .await
                .map_err(|e| e.to_string())?;
            let mut buf = [0u8; 4];
            s.read_exact(&mut buf).await.map_err(|e| e.to_string())?;
            Ok::<_, String>(s.get_ref().1.protocol_version())
        });
        let name = ServerName::try_from("localhost").unwrap();
        let cli = tokio_rustls::TlsConnector::from(Arc::new(client_cfg))
            .connect(name, b)
            .await;
        let mut cli = cli.ok();
        if let Some(c) = cli.as_mut() {
            let _ = c.write_all(b"ping").await;
            let _ = c.flush().await;
        }
        // Keep the client open until the server is done (TLS 1.3 servers
        // write session tickets after the handshake).
        let result = srv.await.unwrap();
        drop(cli);
        result?.ok_or_else(|| "no version".to_owned())
    }

    #[tokio::test]
    async fn p521_client_works_over_tls12_and_tls13() {
        let host = generate_terraform_like_client_identity().unwrap();
        assert_eq!(
            handshake(&[&rustls::version::TLS12], &host, &host).await,
            Ok(rustls::ProtocolVersion::TLSv1_2)
        );
        assert_eq!(
            handshake(&[&rustls::version::TLS13], &host, &host).await,
            Ok(rustls::ProtocolVersion::TLSv1_3)
        );
        let stranger = generate_terraform_like_client_identity().unwrap();
        for v in [&rustls::version::TLS12, &rustls::version::TLS13] {
            let err = handshake(&[v], &stranger, &host).await.unwrap_err();
            assert!(err.contains("invalid peer certificate"), "{err}");
        }
    }

    #[test]
    fn server_identity_debug_hides_key() {
        let id = generate_server_identity().unwrap();
        let shown = format!("{id:?}");
        assert!(!shown.contains("key:"), "{shown}");
        assert!(server_config(&id, id.cert.clone()).is_ok());
    }
}
