//! `hybrid-agent join` through the real binary, against a small HTTPS
//! server in the test that plays hybrid-host's `POST /v1/agents/join` (a CA
//! made here signs the agent's CSR). A protocol test of the agent; joining
//! the real hybrid-host is tested with hybrid-host.
//!
//! Checked: the identity files and their modes (under umask 000), the
//! CSR's CN and SAN (IP and DNS), the key matching the certificate, a
//! refused token surfacing the service's message and status, an existing
//! identity kept unless `--force` (and the token not spent on it), a server
//! the CA file does not vouch for refused, and the token in no output.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use hybrid_api::agent::{JoinRequest, JoinResponse};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};
use serde_json::json;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::FromDer;

const TOKEN: &str = "hjt_test_secret_0123456789";

/// A CA made for the test.
struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

fn ca(cn: &str) -> Ca {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    params.distinguished_name = dn;
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let cert = params.self_signed(&key).unwrap();
    Ca {
        pem: cert.pem(),
        issuer: Issuer::new(params, key),
    }
}

/// What the fake hybrid-host saw.
#[derive(Default)]
struct Seen {
    requests: Vec<JoinRequest>,
    /// Every Authorization header, to prove the token travelled there.
    authorizations: Vec<String>,
}

#[derive(Clone)]
struct Fake {
    ca: Arc<Ca>,
    seen: Arc<Mutex<Seen>>,
    /// The extended key usages the fake puts on the agent's certificate.
    ekus: Vec<ExtendedKeyUsagePurpose>,
}

/// hybrid-host's join route as the protocol has it: a bearer token, a
/// CSR signed into a `serverAuth` certificate (the agent serves with it).
async fn join_route(
    State(fake): State<Fake>,
    headers: HeaderMap,
    Json(req): Json<JoinRequest>,
) -> Result<Json<JoinResponse>, (StatusCode, Json<serde_json::Value>)> {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let ok = auth == format!("Bearer {TOKEN}");
    {
        let mut seen = fake.seen.lock().unwrap();
        seen.authorizations.push(auth);
        if ok {
            seen.requests.push(req.clone());
        }
    }
    if !ok {
        return Err((
            StatusCode::UNAUTHORIZED,
            Json(
                json!({"error": {"code": "Unauthorized", "message": "join token is unknown, used or expired"}}),
            ),
        ));
    }
    let mut csr = CertificateSigningRequestParams::from_pem(&req.csr_pem).unwrap();
    csr.params.extended_key_usages = fake.ekus.clone();
    csr.params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let cert = csr.signed_by(&fake.ca.issuer).unwrap();
    Ok(Json(JoinResponse {
        certificate_pem: cert.pem(),
        ca_pem: fake.ca.pem.clone(),
    }))
}

/// The fake hybrid-host on 127.0.0.1 and its CA file.
struct FakeHost {
    url: String,
    seen: Arc<Mutex<Seen>>,
    ca_file: PathBuf,
    handle: axum_server::Handle<std::net::SocketAddr>,
}

impl Drop for FakeHost {
    fn drop(&mut self) {
        self.handle.shutdown();
    }
}

async fn fake_host(dir: &Path) -> FakeHost {
    fake_host_issuing(dir, vec![ExtendedKeyUsagePurpose::ServerAuth]).await
}

async fn fake_host_issuing(dir: &Path, ekus: Vec<ExtendedKeyUsagePurpose>) -> FakeHost {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let ca = Arc::new(ca("fake hybrid-host CA"));
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let cert = params.signed_by(&key, &ca.issuer).unwrap();
    let config = axum_server::tls_rustls::RustlsConfig::from_pem(
        cert.pem().into_bytes(),
        key.serialize_pem().into_bytes(),
    )
    .await
    .unwrap();
    let ca_file = dir.join("host-ca.pem");
    std::fs::write(&ca_file, &ca.pem).unwrap();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let app = Router::new()
        .route("/v1/agents/join", post(join_route))
        .with_state(Fake {
            ca,
            seen: seen.clone(),
            ekus,
        });
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = axum_server::Handle::new();
    let server = axum_server::from_tcp_rustls(listener, config)
        .unwrap()
        .handle(handle.clone());
    tokio::spawn(async move { server.serve(app.into_make_service()).await });
    FakeHost {
        url: format!("https://{addr}"),
        seen,
        ca_file,
        handle,
    }
}

struct Output {
    ok: bool,
    stdout: String,
    stderr: String,
}

impl Output {
    fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

/// Runs the binary under umask 000, so every mode it sets is its own.
async fn agent(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = tokio::process::Command::new("sh");
    cmd.arg("-c")
        .arg("umask 000 && exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_hybrid-agent"))
        .args(args)
        .env_remove("HYBRID_AGENT_JOIN_TOKEN")
        .env("RUST_LOG", "debug");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().await.unwrap();
    Output {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn token_file(dir: &Path) -> PathBuf {
    let p = dir.join("join.token");
    std::fs::write(&p, format!("{TOKEN}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    p
}

fn join_args<'a>(host: &'a FakeHost, data: &'a str, advertise: &'a str) -> Vec<&'a str> {
    vec![
        "join",
        "--server",
        &host.url,
        "--ca-file",
        host.ca_file.to_str().unwrap(),
        "--name",
        "host-1",
        "--data-dir",
        data,
        "--advertise",
        advertise,
    ]
}

/// The CSR's subject CN and SAN entries (as text).
fn csr_names(csr_pem: &str) -> (String, Vec<String>) {
    let (_, pem) = x509_parser::pem::parse_x509_pem(csr_pem.as_bytes()).unwrap();
    let (_, csr) =
        x509_parser::certification_request::X509CertificationRequest::from_der(&pem.contents)
            .unwrap();
    csr.verify_signature().unwrap();
    let info = &csr.certification_request_info;
    let cn = info
        .subject
        .iter_common_name()
        .next()
        .unwrap()
        .as_str()
        .unwrap()
        .to_string();
    let mut sans = Vec::new();
    for ext in csr.requested_extensions().into_iter().flatten() {
        if let x509_parser::extensions::ParsedExtension::SubjectAlternativeName(san) = ext {
            for name in &san.general_names {
                sans.push(match name {
                    GeneralName::DNSName(d) => format!("dns:{d}"),
                    GeneralName::IPAddress(b) => match b.len() {
                        4 => format!(
                            "ip:{}",
                            std::net::Ipv4Addr::from(<[u8; 4]>::try_from(*b).unwrap())
                        ),
                        _ => format!("ip:{b:?}"),
                    },
                    other => format!("{other:?}"),
                });
            }
        }
    }
    (cn, sans)
}

/// The SubjectPublicKeyInfo of a PEM certificate and of a PEM key.
fn cert_spki(pem: &str) -> Vec<u8> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).unwrap();
    let cert = pem.parse_x509().unwrap();
    cert.public_key().raw.to_vec()
}

fn key_spki(pem: &str) -> Vec<u8> {
    rcgen::PublicKeyData::subject_public_key_info(&KeyPair::from_pem(pem).unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn join_writes_a_private_identity() {
    let tmp = tempfile::tempdir().unwrap();
    let host = fake_host(tmp.path()).await;
    let data = tmp.path().join("agent");
    let data_s = data.to_str().unwrap().to_string();
    let tf = token_file(tmp.path());
    let mut args = join_args(&host, &data_s, "https://127.0.0.1:9443");
    args.extend(["--join-token-file", tf.to_str().unwrap()]);
    let out = agent(&args, &[]).await;
    assert!(out.ok, "join failed:\n{}", out.all());
    assert!(
        !out.all().contains(TOKEN),
        "token in output:\n{}",
        out.all()
    );
    assert!(out.stdout.contains("joined"), "{}", out.stdout);

    // Files and modes, whatever the umask.
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&data.join("agent-key.pem")), 0o600);
    assert_eq!(mode(&data.join("agent.pem")), 0o644);
    assert_eq!(mode(&data.join("ca.pem")), 0o644);
    assert_eq!(mode(&data.join("agent.json")), 0o644);
    let agent_json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(data.join("agent.json")).unwrap()).unwrap();
    assert_eq!(
        agent_json,
        json!({"name": "host-1", "server": host.url, "endpoint": "https://127.0.0.1:9443"})
    );

    // What hybrid-host was sent: the token as a bearer, the CSR for the name
    // and the advertised address.
    let seen = host.seen.lock().unwrap();
    assert_eq!(seen.authorizations, vec![format!("Bearer {TOKEN}")]);
    let req = &seen.requests[0];
    assert_eq!(req.name, "host-1");
    assert_eq!(req.endpoint, "https://127.0.0.1:9443");
    let (cn, sans) = csr_names(&req.csr_pem);
    assert_eq!(cn, "host-1");
    assert_eq!(sans, vec!["ip:127.0.0.1".to_string()]);

    // What was written: the CA, and a certificate for the key kept here.
    let ca_written = std::fs::read_to_string(data.join("ca.pem")).unwrap();
    assert!(ca_written.contains("BEGIN CERTIFICATE"));
    let key = std::fs::read_to_string(data.join("agent-key.pem")).unwrap();
    let cert = std::fs::read_to_string(data.join("agent.pem")).unwrap();
    assert_eq!(cert_spki(&cert), key_spki(&key));
    assert!(!req.csr_pem.contains("PRIVATE KEY"));
    // ECDSA P-256, as the protocol says.
    let kp = KeyPair::from_pem(&key).unwrap();
    assert!(kp.is_compatible(&rcgen::PKCS_ECDSA_P256_SHA256));
}

#[tokio::test(flavor = "multi_thread")]
async fn dns_advertise_and_token_from_the_environment() {
    let tmp = tempfile::tempdir().unwrap();
    let host = fake_host(tmp.path()).await;
    let data = tmp.path().join("agent");
    let data_s = data.to_str().unwrap().to_string();
    let args = join_args(&host, &data_s, "https://host-1.dc.example:9443");
    let out = agent(&args, &[("HYBRID_AGENT_JOIN_TOKEN", TOKEN)]).await;
    assert!(out.ok, "join failed:\n{}", out.all());
    assert!(
        !out.all().contains(TOKEN),
        "token in output:\n{}",
        out.all()
    );
    let seen = host.seen.lock().unwrap();
    let (cn, sans) = csr_names(&seen.requests[0].csr_pem);
    assert_eq!(cn, "host-1");
    assert_eq!(sans, vec!["dns:host-1.dc.example".to_string()]);
}

#[tokio::test(flavor = "multi_thread")]
async fn refused_token_shows_the_service_message() {
    let tmp = tempfile::tempdir().unwrap();
    let host = fake_host(tmp.path()).await;
    let data = tmp.path().join("agent");
    let data_s = data.to_str().unwrap().to_string();
    let wrong = "hjt_wrong_secret_9876543210";
    let mut args = join_args(&host, &data_s, "https://127.0.0.1:9443");
    args.extend(["--join-token", wrong]);
    let out = agent(&args, &[]).await;
    assert!(!out.ok, "join with a wrong token succeeded:\n{}", out.all());
    assert!(
        out.stderr
            .contains("join token is unknown, used or expired")
            && out.stderr.contains("401"),
        "{}",
        out.stderr
    );
    assert!(
        !out.all().contains(wrong),
        "token in output:\n{}",
        out.all()
    );
    assert!(!data.join("agent.json").exists());
    assert!(!data.join("agent-key.pem").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn existing_identity_is_kept_unless_forced() {
    let tmp = tempfile::tempdir().unwrap();
    let host = fake_host(tmp.path()).await;
    let data = tmp.path().join("agent");
    let data_s = data.to_str().unwrap().to_string();
    let tf = token_file(tmp.path());
    let mut args = join_args(&host, &data_s, "https://127.0.0.1:9443");
    args.extend(["--join-token-file", tf.to_str().unwrap()]);
    assert!(agent(&args, &[]).await.ok);
    let key1 = std::fs::read(data.join("agent-key.pem")).unwrap();

    let out = agent(&args, &[]).await;
    assert!(!out.ok, "second join overwrote the identity");
    assert!(
        out.stderr.contains("--force") && out.stderr.contains("host-1"),
        "{}",
        out.stderr
    );
    assert_eq!(std::fs::read(data.join("agent-key.pem")).unwrap(), key1);
    // Refused before the token was spent.
    assert_eq!(host.seen.lock().unwrap().authorizations.len(), 1);

    args.push("--force");
    let out = agent(&args, &[]).await;
    assert!(out.ok, "forced join failed:\n{}", out.all());
    let key2 = std::fs::read_to_string(data.join("agent-key.pem")).unwrap();
    assert_ne!(key2.as_bytes(), key1.as_slice());
    let cert = std::fs::read_to_string(data.join("agent.pem")).unwrap();
    assert_eq!(cert_spki(&cert), key_spki(&key2));
    assert_eq!(mode(&data.join("agent-key.pem")), 0o600);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_the_ca_file_does_not_vouch_for_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let host = fake_host(tmp.path()).await;
    let other = tmp.path().join("other-ca.pem");
    std::fs::write(&other, ca("another CA").pem).unwrap();
    let data = tmp.path().join("agent");
    let data_s = data.to_str().unwrap().to_string();
    let mut args = join_args(&host, &data_s, "https://127.0.0.1:9443");
    let i = args.iter().position(|a| *a == "--ca-file").unwrap();
    args[i + 1] = other.to_str().unwrap();
    args.extend(["--join-token", TOKEN]);
    let out = agent(&args, &[]).await;
    assert!(!out.ok, "joined a server its CA file does not vouch for");
    assert!(
        out.stderr.contains("cannot reach hybrid-host") && out.stderr.contains("certificate"),
        "{}",
        out.stderr
    );
    assert!(!out.all().contains(TOKEN));
    assert!(host.seen.lock().unwrap().authorizations.is_empty());
    assert!(!data.join("agent.json").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_flags_are_refused_before_anything_is_sent() {
    let tmp = tempfile::tempdir().unwrap();
    let host = fake_host(tmp.path()).await;
    let data = tmp.path().join("agent");
    let data_s = data.to_str().unwrap().to_string();
    let mut args = join_args(&host, &data_s, "http://127.0.0.1:9443");
    args.extend(["--join-token", TOKEN]);
    let out = agent(&args, &[]).await;
    assert!(!out.ok);
    assert!(out.stderr.contains("--advertise"), "{}", out.stderr);
    // No token at all.
    let args = join_args(&host, &data_s, "https://127.0.0.1:9443");
    let out = agent(&args, &[]).await;
    assert!(!out.ok);
    assert!(out.stderr.contains("join-token"), "{}", out.stderr);
    assert!(host.seen.lock().unwrap().authorizations.is_empty());
}

/// hybrid-host must issue agent certificates for serverAuth only: one that
/// could also pass as a client certificate (clientAuth, or no extended key
/// usage at all) would let one agent call another, so the agent refuses it.
#[tokio::test(flavor = "multi_thread")]
async fn a_certificate_that_could_act_as_a_client_is_refused() {
    for ekus in [
        vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ],
        vec![],
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let host = fake_host_issuing(tmp.path(), ekus.clone()).await;
        let data = tmp.path().join("agent");
        let data_s = data.to_str().unwrap().to_string();
        let mut args = join_args(&host, &data_s, "https://127.0.0.1:9443");
        args.extend(["--join-token", TOKEN]);
        let out = agent(&args, &[]).await;
        assert!(!out.ok, "accepted a certificate with {ekus:?}");
        assert!(out.stderr.contains("serverAuth only"), "{}", out.stderr);
        assert!(!data.join("agent.json").exists());
    }
}
