//! Per-cluster PKI: each cluster gets its own CA and an API-server
//! certificate for its VIP, signed by that CA. Kubeconfig client
//! certificates (extensions issue) are signed by the same CA.

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
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

/// A new CA for `cluster`, valid ten years.
pub fn new_cluster_ca(cluster: &str) -> Result<Pem, rcgen::Error> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name = dn(&format!("{cluster}-ca"));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::hours(1);
    params.not_after = now + Duration::days(3650);
    let cert = params.self_signed(&key)?;
    Ok(Pem {
        cert: cert.pem(),
        key: key.serialize_pem(),
    })
}

/// The API server's serving certificate for `vip`, signed by the cluster CA.
pub fn apiserver_cert(ca: &Pem, cluster: &str, vip: &str) -> Result<Pem, rcgen::Error> {
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
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::hours(1);
    params.not_after = now + Duration::days(365);
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &issuer)?;
    Ok(Pem {
        cert: cert.pem(),
        key: key.serialize_pem(),
    })
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
}
