//! Acceptance tests for the `hybrid_kubeconfig` ephemeral resource: the
//! real `terraform` binary, our provider and a real `hybrid-host`. The
//! kubeconfig reaches `kubectl` through a provisioner (where ephemeral
//! values are allowed), is usable (kubectl reads it, its certificate chains
//! to the cluster CA), and never lands in the plan, the state, the
//! service's data dir or any log; each issuance has one audit record.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hybrid_acceptance_tests::{Error, Host, Result, Workdir, ensure};
use serde_json::Value;
use x509_parser::pem::parse_x509_pem;

/// A vnet, a custom location and a one-VM cluster `c1`.
const CLUSTER: &str = r#"
resource "hybrid_vnet" "lan" {
  name           = "lan"
  address_prefix = "10.0.0.0/24"
  gateway        = "10.0.0.1"
  vm_ip_pool     = { start = "10.0.0.10", end = "10.0.0.19" }
  vip_pool       = { start = "10.0.0.200", end = "10.0.0.204" }
}

resource "hybrid_custom_location" "site" {
  name      = "site"
  namespace = "site"
  host_id   = "/management-host"
}

resource "hybrid_cluster" "c1" {
  name               = "c1"
  custom_location_id = hybrid_custom_location.site.id
  vnet_id            = hybrid_vnet.lan.id
  control_plane      = { count = 1 }
}
"#;

/// Opens an admin and a 900 s user kubeconfig and has a provisioner write
/// each to a file, for the test to inspect (the files are test artefacts:
/// what matters is that Terraform itself keeps nothing).
const KUBECONFIGS: &str = r#"
ephemeral "hybrid_kubeconfig" "admin" {
  cluster_id = hybrid_cluster.c1.id
  kind       = "admin"
}

ephemeral "hybrid_kubeconfig" "user" {
  cluster_id  = hybrid_cluster.c1.id
  kind        = "user"
  ttl_seconds = 900
}

resource "terraform_data" "write" {
  triggers_replace = [hybrid_cluster.c1.id]

  provisioner "local-exec" {
    environment = {
      ADMIN = ephemeral.hybrid_kubeconfig.admin.kubeconfig_raw
      USER  = ephemeral.hybrid_kubeconfig.user.kubeconfig_raw
    }
    command = "umask 077 && printf '%s' \"$ADMIN\" > admin.kubeconfig && printf '%s' \"$USER\" > user.kubeconfig"
  }
}
"#;

fn check(what: impl Into<String>) -> Error {
    Error::Check(what.into())
}

fn read(path: &Path) -> Result<String> {
    fs::read_to_string(path).map_err(|e| check(format!("reading {}: {e}", path.display())))
}

fn b64(text: &str) -> Result<String> {
    let bytes = BASE64
        .decode(text.trim())
        .map_err(|e| check(format!("not base64 ({e}): {text}")))?;
    String::from_utf8(bytes).map_err(|e| check(format!("not UTF-8: {e}")))
}

/// `kubectl --kubeconfig FILE config view --raw -o json`.
fn kubectl_view(file: &Path) -> Result<Value> {
    let out = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(file)
        .args(["config", "view", "--raw", "-o", "json"])
        .output()
        .map_err(|e| check(format!("running kubectl: {e}")))?;
    ensure!(
        out.status.success(),
        "kubectl config view failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).map_err(|e| check(format!("kubectl JSON: {e}")))
}

/// What kubectl read from one kubeconfig file.
struct Read {
    server: String,
    ca_pem: String,
    cert_pem: String,
    key_pem: String,
    key_data: String,
    context: String,
}

fn read_kubeconfig(file: &Path) -> Result<Read> {
    let view = kubectl_view(file)?;
    let text = |p: &str| -> Result<String> {
        view.pointer(p)
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| check(format!("{p} missing in kubectl's view: {view}")))
    };
    let context = text("/current-context")?;
    ensure!(
        text("/contexts/0/name")? == context && text("/clusters/0/name")? == context,
        "context and cluster named alike: {view}"
    );
    let key_data = text("/users/0/user/client-key-data")?;
    Ok(Read {
        server: text("/clusters/0/cluster/server")?,
        ca_pem: b64(&text("/clusters/0/cluster/certificate-authority-data")?)?,
        cert_pem: b64(&text("/users/0/user/client-certificate-data")?)?,
        key_pem: b64(&key_data)?,
        key_data,
        context,
    })
}

/// Verifies `cert_pem` against `ca_pem`; returns (subject, serial hex,
/// seconds left).
fn chain(cert_pem: &str, ca_pem: &str) -> Result<(String, String, i64)> {
    let (_, ca_der) =
        parse_x509_pem(ca_pem.as_bytes()).map_err(|e| check(format!("CA PEM: {e}")))?;
    let (_, der) =
        parse_x509_pem(cert_pem.as_bytes()).map_err(|e| check(format!("cert PEM: {e}")))?;
    let ca = ca_der
        .parse_x509()
        .map_err(|e| check(format!("CA X.509: {e}")))?;
    let cert = der
        .parse_x509()
        .map_err(|e| check(format!("cert X.509: {e}")))?;
    cert.verify_signature(Some(ca.public_key())).map_err(|e| {
        check(format!(
            "client certificate not signed by the cluster CA: {e}"
        ))
    })?;
    ensure!(cert.issuer() == ca.subject(), "issuer is the cluster CA");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default();
    Ok((
        cert.subject().to_string(),
        cert.raw_serial_as_string().replace(':', ""),
        cert.validity().not_after.timestamp() - now,
    ))
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// Fails if `haystack` (named `what`) holds any needle.
fn absent(what: &str, haystack: &str, needles: &[String]) -> Result<()> {
    for needle in needles {
        ensure!(
            !haystack.contains(needle.as_str()),
            "{what} holds secret material ({} chars starting {:?})",
            needle.len(),
            &needle[..needle.len().min(12)]
        );
    }
    Ok(())
}

/// Markers of any private key, in PEM or base64-of-PEM form, and of a
/// kubeconfig's key field.
fn generic_needles() -> Vec<String> {
    vec![
        "PRIVATE KEY".to_string(),
        BASE64.encode("-----BEGIN PRIVATE KEY")[..28].to_string(),
        "client-key-data".to_string(),
    ]
}

#[test]
fn kubeconfigs_are_usable_audited_and_never_stored() -> Result<()> {
    let host = Host::start()?;
    let mut wd = Workdir::new(&host)?;
    // The provider's own log, to count issuances and to prove it never
    // logs a credential.
    let tf_log = wd.dir().join("../provider.log");
    wd.set_env("TF_LOG_PROVIDER", "TRACE");
    wd.set_env("TF_LOG_PATH", &tf_log.display().to_string());
    let config = format!("{CLUSTER}{KUBECONFIGS}");

    // Before the cluster exists, the kubeconfig cannot be opened: the plan
    // leaves it unknown and holds nothing secret.
    wd.write_config(&config)?;
    let plan = wd.plan_json()?;
    absent("the first plan", &plan.to_string(), &generic_needles())?;

    wd.apply_current()?;
    let c1 = wd.resource("hybrid_cluster.c1")?;
    let endpoint = c1["endpoint"].as_str().unwrap_or_default().to_string();
    let ca = c1["ca_certificate"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    ensure!(endpoint == "https://10.0.0.200:6443", "cluster: {c1}");

    let admin = read_kubeconfig(&wd.dir().join("admin.kubeconfig"))?;
    let user = read_kubeconfig(&wd.dir().join("user.kubeconfig"))?;
    for k in [&admin, &user] {
        ensure!(k.server == endpoint, "kubeconfig server {}", k.server);
        ensure!(k.context == "c1", "current-context {}", k.context);
        ensure!(
            k.ca_pem == ca,
            "the kubeconfig's CA is the cluster's ca_certificate"
        );
        ensure!(k.key_pem.contains("BEGIN PRIVATE KEY"), "a PEM key");
    }
    let (admin_subject, admin_serial, admin_left) = chain(&admin.cert_pem, &ca)?;
    ensure!(
        admin_subject.contains("CN=hybrid-admin") && admin_subject.contains("O=system:masters"),
        "admin subject {admin_subject}"
    );
    ensure!(
        admin_left > 364 * 86_400,
        "admin credential lives a year: {admin_left}s"
    );
    let (user_subject, user_serial, user_left) = chain(&user.cert_pem, &ca)?;
    ensure!(
        user_subject.starts_with("CN=user-") && !user_subject.contains("O="),
        "user subject {user_subject}"
    );
    ensure!(
        (600..=900).contains(&user_left),
        "user credential expires after ttl_seconds = 900: {user_left}s left"
    );

    // Nothing secret in the state, `terraform show`, or a plan that opens
    // the kubeconfigs again.
    let mut needles = generic_needles();
    for k in [&admin, &user] {
        needles.push(k.key_data.clone());
        needles.extend(
            k.key_pem
                .lines()
                .filter(|l| !l.starts_with("-----") && l.len() > 20)
                .map(str::to_string),
        );
    }
    absent(
        "terraform.tfstate",
        &read(&wd.dir().join("terraform.tfstate"))?,
        &needles,
    )?;
    absent(
        "terraform show -json",
        &wd.show_json()?.to_string(),
        &needles,
    )?;
    absent("a plan after apply", &wd.plan_json()?.to_string(), &needles)?;

    // Nor in the service's files (the CA key is sealed there) or logs.
    for file in files_under(&host.data_dir()) {
        let bytes = fs::read(&file).map_err(|e| check(format!("{}: {e}", file.display())))?;
        let text = String::from_utf8_lossy(&bytes);
        let is_store = file
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("hybrid.db"));
        if is_store {
            absent(&file.display().to_string(), &text, &["PRIVATE KEY".into()])?;
        }
        absent(&file.display().to_string(), &text, &needles[3..])?;
    }
    let host_log = host.log();
    absent("the hybrid-host log", &host_log, &needles)?;
    let provider_log = read(&tf_log)?;
    absent("the provider log", &provider_log, &needles)?;

    // One audit record per issuance: as many as the provider logged, with
    // the same serials (both files' among them), and no secret.
    let issued: Vec<String> = provider_log
        .lines()
        .filter(|l| l.contains("kubeconfig issued"))
        .filter_map(|l| {
            l.split("serial=")
                .nth(1)
                .map(|s| s.split_whitespace().next().unwrap_or("").trim_matches('"'))
                .map(str::to_string)
        })
        .collect();
    let audit = host.get("/v1/audit?target=/clusters/c1")?;
    ensure!(audit.status == 200, "GET /v1/audit: {}", audit.body);
    let entries = audit.body["items"].as_array().cloned().unwrap_or_default();
    ensure!(
        entries.len() == issued.len() && entries.len() >= 2,
        "{} audit records for {} issuances ({issued:?}): {}",
        entries.len(),
        issued.len(),
        audit.body
    );
    let mut audited: Vec<String> = entries
        .iter()
        .filter_map(|e| e["details"]["serial"].as_str().map(str::to_string))
        .collect();
    let mut logged = issued.clone();
    audited.sort();
    logged.sort();
    ensure!(audited == logged, "audited {audited:?}, issued {logged:?}");
    for serial in [&admin_serial, &user_serial] {
        ensure!(
            audited.iter().filter(|s| *s == serial).count() == 1,
            "serial {serial} audited once: {audited:?}"
        );
    }
    for e in &entries {
        ensure!(
            e["action"] == "kubeconfig.issue"
                && e["actor"]
                    .as_str()
                    .is_some_and(|a| a.starts_with("admin-token")),
            "audit record {e}"
        );
    }
    absent("the audit log", &audit.body.to_string(), &needles)?;
    ensure!(
        !audit.body.to_string().contains("CERTIFICATE"),
        "no certificate in the audit log"
    );
    ensure!(
        host_log.contains(&admin_serial) && host_log.contains("kubeconfig.issue"),
        "the host logs each issuance (audit line)"
    );

    wd.destroy()?;
    Ok(())
}

#[test]
fn kubeconfig_mistakes_are_plan_errors_at_the_attribute() -> Result<()> {
    let host = Host::start()?;
    let wd = Workdir::new(&host)?;
    let with = |body: &str| {
        format!(
            r#"
ephemeral "hybrid_kubeconfig" "k" {{
  {body}
}}

resource "terraform_data" "use" {{
  provisioner "local-exec" {{
    environment = {{ K = ephemeral.hybrid_kubeconfig.k.host }}
    command     = "true"
  }}
}}
"#
        )
    };
    let out = wd.expect_plan_error(
        &with("cluster_id = \"/clusters/c1\"\n  kind = \"root\""),
        &["kind is \"root\"", "\"admin\", \"user\""],
    )?;
    out.expect_snippet("kind = \"root\"")?;
    let out = wd.expect_plan_error(
        &with("cluster_id = \"/clusters/c1\"\n  kind = \"user\"\n  ttl_seconds = 60"),
        &["ttl_seconds is 60", "from 300 to 86400"],
    )?;
    out.expect_snippet("ttl_seconds = 60")?;
    let out = wd.expect_plan_error(
        &with("cluster_id = \"/clusters/c1\"\n  kind = \"admin\"\n  ttl_seconds = 600"),
        &["ttl_seconds is 600", "kind is \"admin\""],
    )?;
    out.expect_snippet("ttl_seconds = 600")?;
    let out = wd.expect_plan_error(
        &with("cluster_id = \"/vnets/lan\"\n  kind = \"admin\""),
        &["cluster_id is \"/vnets/lan\"", "/clusters/<name>"],
    )?;
    out.expect_snippet("cluster_id = \"/vnets/lan\"")?;
    // Known only to the service: no such cluster.
    let out = wd.expect_plan_error(
        &with("cluster_id = \"/clusters/missing\"\n  kind = \"admin\""),
        &[
            "Cannot issue a kubeconfig for cluster /clusters/missing",
            "cluster missing not found",
        ],
    )?;
    out.expect_snippet("cluster_id = \"/clusters/missing\"")?;
    let audit = host.get("/v1/audit")?;
    ensure!(
        audit.body["items"].as_array().is_some_and(Vec::is_empty),
        "refusals are not issuances: {}",
        audit.body
    );
    Ok(())
}
