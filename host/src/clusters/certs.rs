//! Per-cluster PKI: each cluster gets its own CA and an API-server
//! certificate for its VIP, signed by that CA. Kubeconfig client
//! certificates ([`client_cert`]) are signed by the same CA.
//!
//! Every issuer takes the time to issue at (`*_at`), so renewals follow the
//! service's [`crate::clock::Clock`] (a test clock in tests).

use rand::RngCore;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SerialNumber,
};
use time::{Duration, OffsetDateTime};

/// Certificate and private key, PEM.
pub struct Pem {
    pub cert: String,
    pub key: String,
}

fn dn(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    dn
}

/// How long a cluster CA is valid.
pub const CA_LIFETIME: Duration = Duration::days(3650);
/// How long an API-server certificate is valid.
pub const APISERVER_LIFETIME: Duration = Duration::days(365);

/// A new CA for `cluster`, valid ten years from now.
pub fn new_cluster_ca(cluster: &str) -> Result<Pem, rcgen::Error> {
    new_cluster_ca_at(cluster, OffsetDateTime::now_utc())
}

/// A new CA for `cluster` on a new key pair, valid [`CA_LIFETIME`] from `now`.
pub fn new_cluster_ca_at(cluster: &str, now: OffsetDateTime) -> Result<Pem, rcgen::Error> {
    let key = KeyPair::generate()?;
    let cert = ca_params(cluster, now)?.self_signed(&key)?;
    Ok(Pem {
        cert: cert.pem(),
        key: key.serialize_pem(),
    })
}

/// The CA certificate of `cluster` issued again on its existing key
/// (`key_pem`), valid [`CA_LIFETIME`] from `now`. Same subject, same key,
/// same key identifier: everything the old certificate signed (node and
/// kubeconfig client certificates) still chains to the new one.
pub fn renew_cluster_ca_at(
    cluster: &str,
    key_pem: &str,
    now: OffsetDateTime,
) -> Result<Pem, rcgen::Error> {
    let key = KeyPair::from_pem(key_pem)?;
    let cert = ca_params(cluster, now)?.self_signed(&key)?;
    Ok(Pem {
        cert: cert.pem(),
        key: key_pem.to_string(),
    })
}

fn ca_params(cluster: &str, now: OffsetDateTime) -> Result<CertificateParams, rcgen::Error> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name = dn(&format!("{cluster}-ca"));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.serial_number = Some(SerialNumber::from_slice(&new_serial()));
    params.not_before = now - Duration::hours(1);
    params.not_after = now + CA_LIFETIME;
    Ok(params)
}

/// The API server's serving certificate for `vip`, signed by the cluster CA.
pub fn apiserver_cert(ca: &Pem, cluster: &str, vip: &str) -> Result<Pem, rcgen::Error> {
    apiserver_cert_at(ca, cluster, vip, OffsetDateTime::now_utc())
}

/// [`apiserver_cert`] valid [`APISERVER_LIFETIME`] from `now`.
pub fn apiserver_cert_at(
    ca: &Pem,
    cluster: &str,
    vip: &str,
    now: OffsetDateTime,
) -> Result<Pem, rcgen::Error> {
    let ca_key = KeyPair::from_pem(&ca.key)?;
    let issuer = Issuer::from_ca_cert_pem(&ca.cert, ca_key)?;
    let mut params = CertificateParams::new(vec![
        vip.to_string(),
        "kubernetes".to_string(),
        "kubernetes.default".to_string(),
        "kubernetes.default.svc".to_string(),
        format!("{cluster}-apiserver"),
    ])?;
    params.distinguished_name = dn("kube-apiserver");
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.serial_number = Some(SerialNumber::from_slice(&new_serial()));
    params.not_before = now - Duration::hours(1);
    params.not_after = now + APISERVER_LIFETIME;
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &issuer)?;
    Ok(Pem {
        cert: cert.pem(),
        key: key.serialize_pem(),
    })
}

/// What a client certificate is for: the Kubernetes user (`CN`) and
/// groups (`O`), and how long it lives.
pub struct ClientIdentity<'a> {
    pub username: &'a str,
    /// At most one group (the API server reads each `O` as a group; rcgen
    /// keeps one value per attribute type, and no kind needs more).
    pub group: Option<&'a str>,
    pub lifetime: Duration,
}

/// A freshly issued client certificate. The key is handed to the caller
/// and never stored.
pub struct ClientCert {
    pub pem: Pem,
    /// Lowercase hex, 16 bytes (as `openssl x509 -serial` prints it).
    pub serial: String,
    pub not_after: OffsetDateTime,
}

/// 16 random bytes, positive and without a leading zero byte, so the DER
/// integer keeps all 16 bytes and the hex form is stable.
pub fn new_serial() -> [u8; 16] {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    bytes
}

/// A TLS client certificate (`clientAuth`, `digitalSignature`) for `who`
/// on a new key pair, signed by the cluster CA (`ca_cert`, `ca_key`: PEM).
pub fn client_cert(
    ca_cert: &str,
    ca_key: &str,
    who: &ClientIdentity<'_>,
    serial: [u8; 16],
) -> Result<ClientCert, rcgen::Error> {
    let issuer = Issuer::from_ca_cert_pem(ca_cert, KeyPair::from_pem(ca_key)?)?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    let mut name = dn(who.username);
    if let Some(group) = who.group {
        name.push(DnType::OrganizationName, group);
    }
    params.distinguished_name = name;
    params.serial_number = Some(SerialNumber::from_slice(&serial));
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.use_authority_key_identifier_extension = true;
    // Whole seconds: the certificate cannot hold more, and `expires_at`
    // must say exactly what the certificate says.
    let now = OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap_or_else(|_| OffsetDateTime::now_utc());
    // A little slack for clocks behind ours; the lifetime counts from now.
    params.not_before = now - Duration::minutes(5);
    params.not_after = now + who.lifetime;
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &issuer)?;
    Ok(ClientCert {
        pem: Pem {
            cert: cert.pem(),
            key: key.serialize_pem(),
        },
        serial: hex::encode(serial),
        not_after: params.not_after,
    })
}

/// Why a stored certificate cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ValidityError {
    #[error("not a PEM certificate: {0}")]
    Pem(String),
    #[error("not an X.509 certificate: {0}")]
    X509(String),
    #[error("validity outside the representable range: {0}")]
    Range(String),
}

/// The validity period (`not_before`, `not_after`) of a PEM certificate.
pub fn validity(pem: &str) -> Result<(OffsetDateTime, OffsetDateTime), ValidityError> {
    let (_, der) = x509_parser::pem::parse_x509_pem(pem.as_bytes())
        .map_err(|e| ValidityError::Pem(e.to_string()))?;
    let x = der
        .parse_x509()
        .map_err(|e| ValidityError::X509(e.to_string()))?;
    let at = |t: i64| {
        OffsetDateTime::from_unix_timestamp(t).map_err(|e| ValidityError::Range(e.to_string()))
    };
    Ok((
        at(x.validity().not_before.timestamp())?,
        at(x.validity().not_after.timestamp())?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apiserver_cert_chains_to_the_cluster_ca() {
        let ca = new_cluster_ca("a").unwrap();
        let server = apiserver_cert(&ca, "a", "10.0.0.200").unwrap();
        let (_, ca_der) = x509_parser::pem::parse_x509_pem(ca.cert.as_bytes()).unwrap();
        let (_, srv_der) = x509_parser::pem::parse_x509_pem(server.cert.as_bytes()).unwrap();
        let ca_x = ca_der.parse_x509().unwrap();
        let srv_x = srv_der.parse_x509().unwrap();
        assert_eq!(srv_x.issuer(), ca_x.subject());
        srv_x.verify_signature(Some(ca_x.public_key())).unwrap();
        let sans = format!(
            "{:?}",
            srv_x.subject_alternative_name().unwrap().unwrap().value
        );
        assert!(
            sans.contains("10.0.0.200") || sans.contains("[10, 0, 0, 200]"),
            "{sans}"
        );
    }

    #[test]
    fn client_cert_chains_to_the_cluster_ca_with_the_asked_identity() {
        use x509_parser::extensions::ParsedExtension;
        let ca = new_cluster_ca("a").unwrap();
        let serial = new_serial();
        let issued = client_cert(
            &ca.cert,
            &ca.key,
            &ClientIdentity {
                username: "hybrid-admin",
                group: Some("system:masters"),
                lifetime: Duration::seconds(600),
            },
            serial,
        )
        .unwrap();
        assert!(issued.pem.key.contains("BEGIN PRIVATE KEY"));
        assert_eq!(issued.serial, hex::encode(serial));
        assert_eq!(issued.serial.len(), 32);
        let (_, ca_der) = x509_parser::pem::parse_x509_pem(ca.cert.as_bytes()).unwrap();
        let (_, der) = x509_parser::pem::parse_x509_pem(issued.pem.cert.as_bytes()).unwrap();
        let ca_x = ca_der.parse_x509().unwrap();
        let x = der.parse_x509().unwrap();
        x.verify_signature(Some(ca_x.public_key())).unwrap();
        assert_eq!(x.issuer(), ca_x.subject());
        assert_eq!(x.raw_serial(), &serial[..]);
        let subject = x.subject().to_string();
        assert!(
            subject.contains("CN=hybrid-admin") && subject.contains("O=system:masters"),
            "{subject}"
        );
        let lifetime =
            x.validity().not_after.timestamp() - OffsetDateTime::now_utc().unix_timestamp();
        assert!((590..=600).contains(&lifetime), "lifetime {lifetime}");
        assert_eq!(
            x.validity().not_after.timestamp(),
            issued.not_after.unix_timestamp()
        );
        let mut client_auth = false;
        let mut signature_only = false;
        for ext in x.extensions() {
            match ext.parsed_extension() {
                ParsedExtension::ExtendedKeyUsage(eku) => {
                    client_auth = eku.client_auth && !eku.server_auth;
                }
                ParsedExtension::KeyUsage(ku) => {
                    signature_only = ku.digital_signature() && !ku.key_cert_sign();
                }
                ParsedExtension::BasicConstraints(bc) => assert!(!bc.ca),
                _ => {}
            }
        }
        assert!(client_auth && signature_only);
    }

    #[test]
    fn a_ca_renewed_on_its_key_still_verifies_what_the_old_one_signed() {
        let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
        let old = new_cluster_ca_at("a", now).unwrap();
        let issued = client_cert(
            &old.cert,
            &old.key,
            &ClientIdentity {
                username: "u",
                group: None,
                lifetime: Duration::seconds(600),
            },
            new_serial(),
        )
        .unwrap();
        let later = now + Duration::days(3000);
        let renewed = renew_cluster_ca_at("a", &old.key, later).unwrap();
        assert_ne!(renewed.cert, old.cert);
        assert_eq!(validity(&renewed.cert).unwrap().1, later + CA_LIFETIME);
        let (_, ca_der) = x509_parser::pem::parse_x509_pem(renewed.cert.as_bytes()).unwrap();
        let (_, der) = x509_parser::pem::parse_x509_pem(issued.pem.cert.as_bytes()).unwrap();
        let (ca_x, x) = (ca_der.parse_x509().unwrap(), der.parse_x509().unwrap());
        assert_eq!(x.issuer(), ca_x.subject());
        x.verify_signature(Some(ca_x.public_key())).unwrap();
        // A new CA (new key) does not verify it.
        let other = new_cluster_ca_at("a", later).unwrap();
        let (_, o_der) = x509_parser::pem::parse_x509_pem(other.cert.as_bytes()).unwrap();
        assert!(
            x.verify_signature(Some(o_der.parse_x509().unwrap().public_key()))
                .is_err()
        );
    }

    #[test]
    fn issuance_follows_the_given_time() {
        let at = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap() + Duration::days(400);
        let ca = new_cluster_ca_at("a", at).unwrap();
        let srv = apiserver_cert_at(&ca, "a", "10.0.0.9", at).unwrap();
        assert_eq!(
            validity(&srv.cert).unwrap(),
            (at - Duration::hours(1), at + APISERVER_LIFETIME)
        );
        assert!(matches!(validity("nope"), Err(ValidityError::Pem(_))));
    }

    #[test]
    fn a_user_cert_has_no_group_and_serials_differ() {
        let ca = new_cluster_ca("a").unwrap();
        let who = ClientIdentity {
            username: "user-1",
            group: None,
            lifetime: Duration::seconds(300),
        };
        let a = client_cert(&ca.cert, &ca.key, &who, new_serial()).unwrap();
        let b = client_cert(&ca.cert, &ca.key, &who, new_serial()).unwrap();
        assert_ne!(a.serial, b.serial);
        assert_ne!(a.pem.key, b.pem.key);
        let (_, der) = x509_parser::pem::parse_x509_pem(a.pem.cert.as_bytes()).unwrap();
        let x = der.parse_x509().unwrap();
        assert_eq!(x.subject().to_string(), "CN=user-1");
    }
}
