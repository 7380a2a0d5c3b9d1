//! `hybrid-agent run` through the real binary on 127.0.0.1, with an
//! identity made by a CA in the test (as `hybrid-agent join` would have
//! written it), an empty image directory and no VMs (VMs are the engine's
//! tests).
//!
//! Checked: `GET /v1/status` with hybrid-host's client certificate
//! (clientAuth, signed by the CA) answers the agent's name, kvm|tcg and a
//! measured capacity, less the reserve; the TLS handshake refuses no
//! client certificate, one from another CA, and one the same CA signed for
//! serverAuth only (another agent's); the VM routes' error envelopes (404
//! for an unknown VM, 400 for a body naming another VM or a bad name);
//! SIGTERM ends the agent cleanly; a loose key and a missing identity stop
//! `run` with a message naming the file.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

use hybrid_api::agent::AgentStatus;
use hybrid_api::{ErrorEnvelope, List};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use reqwest::StatusCode;

/// A CA made for the test (plays hybrid-host's).
struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

fn new_ca(cn: &str) -> Ca {
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

/// A leaf certificate from `ca` for `cn` with `sans` and one EKU; PEM
/// certificate followed by PEM key (what `reqwest::Identity` reads).
fn leaf(ca: &Ca, cn: &str, sans: &[&str], eku: ExtendedKeyUsagePurpose) -> (String, String) {
    let key = KeyPair::generate().unwrap();
    let mut params =
        CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    params.distinguished_name = dn;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![eku];
    let cert = params.signed_by(&key, &ca.issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

/// Writes what `hybrid-agent join` writes: the agent's serverAuth
/// certificate for 127.0.0.1, its key (0600), the CA and agent.json.
fn identity(dir: &Path, ca: &Ca, name: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let (cert, key) = leaf(
        ca,
        name,
        &["127.0.0.1"],
        ExtendedKeyUsagePurpose::ServerAuth,
    );
    std::fs::write(dir.join("agent.pem"), cert).unwrap();
    std::fs::write(dir.join("agent-key.pem"), key).unwrap();
    std::fs::set_permissions(
        dir.join("agent-key.pem"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    std::fs::write(dir.join("ca.pem"), &ca.pem).unwrap();
    std::fs::write(
        dir.join("agent.json"),
        serde_json::json!({"name": name, "server": "https://127.0.0.1:8443", "endpoint": "https://127.0.0.1:9443"})
            .to_string(),
    )
    .unwrap();
}

/// A running `hybrid-agent run`; killed when dropped (a failing test
/// leaves no process behind).
struct Agent {
    child: Child,
    url: String,
    stderr: PathBuf,
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Agent {
    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

fn run_args(data: &Path, images: &Path, extra: &[&str]) -> Vec<String> {
    let mut args = vec![
        "run".to_string(),
        "--data-dir".into(),
        data.display().to_string(),
        "--image-dir".into(),
        images.display().to_string(),
        "--listen".into(),
        "127.0.0.1:0".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

/// Starts the agent and waits for its "listening on" line.
fn start(tmp: &Path, data: &Path, extra: &[&str]) -> Agent {
    let images = tmp.join("images");
    std::fs::create_dir_all(&images).unwrap();
    let stderr = tmp.join(format!(
        "{}.stderr",
        data.file_name().unwrap().to_string_lossy()
    ));
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_hybrid-agent"))
        .args(run_args(data, &images, extra))
        .env("RUST_LOG", "debug")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("hybrid-agent listening on ") {
                let _ = tx.send(url.trim().to_string());
            }
        }
    });
    let mut agent = Agent {
        child,
        url: String::new(),
        stderr,
    };
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(url) => agent.url = url,
        Err(_) => panic!("agent did not start:\n{}", agent.stderr()),
    }
    agent
}

/// A client trusting `ca`, presenting `identity` (PEM cert + key) if any.
fn client(ca: &Ca, identity: Option<(String, String)>) -> reqwest::Client {
    let mut b = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(ca.pem.as_bytes()).unwrap()])
        .timeout(Duration::from_secs(20));
    if let Some((cert, key)) = identity {
        b = b.identity(reqwest::Identity::from_pem(format!("{cert}{key}").as_bytes()).unwrap());
    }
    b.build().unwrap()
}

/// hybrid-host's client certificate: clientAuth, signed by the CA.
fn host_client(ca: &Ca) -> reqwest::Client {
    client(
        ca,
        Some(leaf(
            ca,
            "hybrid-host",
            &[],
            ExtendedKeyUsagePurpose::ClientAuth,
        )),
    )
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(x) = src {
        s.push_str(": ");
        s.push_str(&x.to_string());
        src = x.source();
    }
    s
}

/// A request the agent must refuse at the TLS layer (no HTTP answer at
/// all), for the reason its log must give (`reason`, from rustls): so the
/// check that fired is the one the test means.
async fn refused(client: &reqwest::Client, agent: &Agent, who: &str, reason: &str) {
    let logged_before = agent.stderr().matches(reason).count();
    match client.get(format!("{}/v1/status", agent.url)).send().await {
        Ok(r) => panic!(
            "{who} was answered {}; agent log:\n{}",
            r.status(),
            agent.stderr()
        ),
        Err(e) => assert!(!e.is_timeout(), "{who}: {}", chain(&e)),
    }
    wait_for_log(agent, reason, logged_before + 1, who).await;
}

/// Waits until the agent's log holds `text` at least `times` times.
async fn wait_for_log(agent: &Agent, text: &str, times: usize, why: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while agent.stderr().matches(text).count() < times {
        assert!(
            std::time::Instant::now() < deadline,
            "{why}: the agent did not log {text:?}:\n{}",
            agent.stderr()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn status_and_mutual_tls() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let tmp = tempfile::tempdir().unwrap();
    let ca = new_ca("test hybrid-host CA");
    let data = tmp.path().join("host-1");
    identity(&data, &ca, "host-1");
    let agent = start(tmp.path(), &data, &[]);
    assert!(agent.url.starts_with("https://127.0.0.1:"), "{}", agent.url);

    // hybrid-host's certificate: answered.
    let host = host_client(&ca);
    let r = host
        .get(format!("{}/v1/status", agent.url))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{}\n{}", chain(&e), agent.stderr()));
    assert_eq!(r.status(), StatusCode::OK);
    let status: AgentStatus = r.json().await.unwrap();
    assert_eq!(status.name, "host-1");
    assert_eq!(status.version, env!("CARGO_PKG_VERSION"));
    assert!(
        ["kvm", "tcg"].contains(&status.accelerator.as_str()),
        "{}",
        status.accelerator
    );
    let c = status.capacity;
    assert!(c.vcpus > 0 && c.memory_mib > 0 && c.disk_gib > 0, "{c:?}");
    assert!(
        status.images.is_empty() && status.vms.is_empty(),
        "{status:?}"
    );
    // The agent logs who connected: hybrid-host's certificate's name.
    wait_for_log(&agent, "client=hybrid-host", 1, "accepted connection").await;

    // No client certificate, one from another CA, and another agent's
    // (same CA, serverAuth only): refused in the handshake.
    refused(
        &client(&ca, None),
        &agent,
        "no client certificate",
        "peer sent no certificates",
    )
    .await;
    let other = new_ca("another CA");
    let foreign = client(
        &ca,
        Some(leaf(
            &other,
            "hybrid-host",
            &[],
            ExtendedKeyUsagePurpose::ClientAuth,
        )),
    );
    refused(
        &foreign,
        &agent,
        "another CA's certificate",
        "UnknownIssuer",
    )
    .await;
    let another_agent = client(
        &ca,
        Some(leaf(
            &ca,
            "host-2",
            &["127.0.0.1"],
            ExtendedKeyUsagePurpose::ServerAuth,
        )),
    );
    refused(
        &another_agent,
        &agent,
        "another agent's serverAuth certificate",
        "does not allow extended key usage for client authentication",
    )
    .await;

    // The same client still works afterwards (the refusals hurt nothing).
    let r = host
        .get(format!("{}/v1/status", agent.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

async fn envelope(r: reqwest::Response) -> ErrorEnvelope {
    let text = r.text().await.unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not an envelope ({e}): {text}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn vm_routes_answer_with_envelopes() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let tmp = tempfile::tempdir().unwrap();
    let ca = new_ca("test hybrid-host CA");
    let data = tmp.path().join("host-1");
    identity(&data, &ca, "host-1");
    let agent = start(tmp.path(), &data, &[]);
    let host = host_client(&ca);
    let url = &agent.url;

    let r = host.get(format!("{url}/v1/vms")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let list: List<serde_json::Value> = r.json().await.unwrap();
    assert!(list.items.is_empty());

    let r = host.get(format!("{url}/v1/vms/nope")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let e = envelope(r).await;
    assert_eq!(e.error.code, hybrid_api::codes::NOT_FOUND);
    assert!(e.error.message.contains("nope"), "{}", e.error.message);

    // A body naming another VM than the path: 400 naming both.
    let spec = serde_json::json!({
        "name": "b",
        "hostname": "b",
        "vcpus": 1,
        "memory_mib": 128,
        "disk_gib": 1,
        "image": "test",
        "role": "node",
        "network": {
            "vnet": "v",
            "vlan_id": null,
            "address": "10.0.0.5/24",
            "gateway": "10.0.0.1",
            "dns_servers": [],
            "mac": hybrid_api::agent::mac_for("b"),
        },
        "ssh_authorized_keys": ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMarkerKeyForTheLogCheck t@x"],
        "boot_timeout_seconds": 30,
    });
    let r = host
        .put(format!("{url}/v1/vms/a"))
        .json(&spec)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let e = envelope(r).await;
    assert_eq!(e.error.code, hybrid_api::codes::INVALID_FIELD);
    assert_eq!(e.error.target.as_deref(), Some("name"));
    assert!(
        e.error.message.contains("\"a\"") && e.error.message.contains("\"b\""),
        "{}",
        e.error.message
    );

    // Unknown fields and bad names: 400 with the field or the name.
    let mut typo = spec.clone();
    typo["name"] = "a".into();
    typo["vcpu"] = 1.into();
    let r = host
        .put(format!("{url}/v1/vms/a"))
        .json(&typo)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let e = envelope(r).await;
    assert!(e.error.message.contains("vcpu"), "{}", e.error.message);
    let r = host
        .get(format!("{url}/v1/vms/..%2Fetc"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        envelope(r).await.error.code,
        hybrid_api::codes::INVALID_FIELD
    );

    // Request bodies (keys, seed content) are never logged.
    assert!(!agent.stderr().contains("MarkerKeyForTheLogCheck"));

    // Deleting an unknown VM is fine; an unknown route is a 404 envelope.
    let r = host
        .delete(format!("{url}/v1/vms/nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = host.get(format!("{url}/v1/nothing")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(envelope(r).await.error.code, hybrid_api::codes::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread")]
async fn reserve_is_subtracted_and_sigterm_stops_cleanly() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let tmp = tempfile::tempdir().unwrap();
    let ca = new_ca("test hybrid-host CA");
    let data = tmp.path().join("host-r");
    identity(&data, &ca, "host-r");
    let mut agent = start(
        tmp.path(),
        &data,
        &[
            "--reserve-vcpus",
            "100000",
            "--reserve-memory-mib",
            "1024",
            "--reserve-disk-gib",
            "100000000",
        ],
    );
    let host = host_client(&ca);
    let status: AgentStatus = host
        .get(format!("{}/v1/status", agent.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap();
    let total_mib: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap()
        / 1024;
    assert_eq!(status.capacity.vcpus, 0, "saturates at zero");
    assert_eq!(status.capacity.disk_gib, 0, "saturates at zero");
    assert_eq!(status.capacity.memory_mib, total_mib.saturating_sub(1024));

    let pid = agent.child.id().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let code = loop {
        if let Some(status) = agent.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "agent did not stop on SIGTERM:\n{}",
            agent.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(code.success(), "{code:?}\n{}", agent.stderr());
    assert!(
        agent.stderr().contains("shutting down"),
        "{}",
        agent.stderr()
    );
}

/// `run` before `join`, or with a key others may read: refused, naming
/// the file.
#[test]
fn missing_identity_and_loose_key_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let images = tmp.path().join("images");
    std::fs::create_dir_all(&images).unwrap();
    let data = tmp.path().join("empty");
    std::fs::create_dir_all(&data).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hybrid-agent"))
        .args(run_args(&data, &images, &[]))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("agent.json") && stderr.contains("hybrid-agent join"),
        "{stderr}"
    );

    let ca = new_ca("test hybrid-host CA");
    let data = tmp.path().join("loose");
    identity(&data, &ca, "host-1");
    let key = data.join("agent-key.pem");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hybrid-agent"))
        .args(run_args(&data, &images, &[]))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("agent-key.pem") && stderr.contains("0644"),
        "{stderr}"
    );
}
