//! Acceptance tests for certificates that never lapse: the real
//! `terraform` binary, our provider and a real `hybrid-host` on its test
//! clock (`serve --test-clock`, moved on through DATA_DIR/test-clock).
//! A renewal in the background and a rotation on demand change nothing a
//! plan shows — no change, no "changed outside of Terraform" note — and
//! the `hybrid_cluster` data source shows the new expiry. A rotation with a
//! new CA, asked for on purpose, shows as drift of `ca_certificate` only.

use std::ffi::OsString;
use std::time::{Duration, Instant};

use hybrid_acceptance_tests::{Error, Host, Result, Workdir, ensure};
use serde_json::{Value, json};

const CONFIG: &str = r#"
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

data "hybrid_cluster" "c1" {
  name = hybrid_cluster.c1.name
}
"#;

const DAY: i64 = 86_400;

fn check(what: impl Into<String>) -> Error {
    Error::Check(what.into())
}

/// `data.hybrid_cluster.c1.certificates` in the state.
fn shown_certificates(wd: &Workdir) -> Result<Value> {
    let data = wd.resource("data.hybrid_cluster.c1")?;
    let c = data["certificates"].clone();
    ensure!(c.is_object(), "no certificates in the data source: {data}");
    Ok(c)
}

/// `status.certificates` of cluster c1 as the service shows it.
fn api_certificates(host: &Host) -> Result<Value> {
    let r = host.get("/v1/clusters/c1")?;
    ensure!(r.status == 200, "GET /v1/clusters/c1: {}", r.body);
    Ok(r.body["status"]["certificates"].clone())
}

fn audited_rotations(host: &Host) -> Result<usize> {
    let r = host.get("/v1/audit?target=/clusters/c1")?;
    ensure!(r.status == 200, "GET /v1/audit: {}", r.body);
    Ok(r.body["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter(|e| e["action"] == "cluster.rotate_certificates")
                .count()
        })
        .unwrap_or(0))
}

#[test]
fn renewed_and_rotated_certificates_leave_the_plan_quiet() -> Result<()> {
    let mut args = vec![OsString::from("--test-clock")];
    if let Some(url) = Host::test_database()? {
        args.extend([OsString::from("--database-url"), OsString::from(url)]);
    }
    let host = Host::start_with(None, args, &[])?;
    let wd = Workdir::new(&host)?;
    wd.apply(CONFIG)?;
    wd.expect_quiet_plan()?;
    let first = shown_certificates(&wd)?;
    ensure!(
        first["last_rotated"].is_null(),
        "fresh certificates were never rotated: {first}"
    );

    // 300 days on: the background renewer renews the API server's
    // certificate (due 73 days before its year is up).
    let clock = host.data_dir().join("test-clock");
    std::fs::write(&clock, format!("{}\n", 300 * DAY))
        .map_err(|e| check(format!("writing {}: {e}", clock.display())))?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let c = api_certificates(&host)?;
        if !c["last_rotated"].is_null() && c["rotation_operation"].is_null() {
            break;
        }
        ensure!(Instant::now() < deadline, "no renewal within 30 s: {c}");
        std::thread::sleep(Duration::from_millis(250));
    }
    ensure!(audited_rotations(&host)? == 1, "one audited renewal");
    // A background renewal is no drift and no change.
    wd.expect_quiet_plan()?;

    // On demand, keeping the CA: still quiet.
    let r = host.post("/v1/clusters/c1/rotate-certificates", &json!({}))?;
    ensure!(r.status == 202, "rotate-certificates: {}", r.body);
    ensure!(
        r.body["kubeconfigs_must_be_reissued"] == false,
        "kubeconfigs stay valid without a new CA: {}",
        r.body
    );
    let op = host.wait_operation(&r)?;
    ensure!(op["status"] == "Succeeded", "rotation: {op}");
    wd.expect_quiet_plan()?;

    // The data source shows the new expiry once read again.
    wd.apply_current()?;
    let now = shown_certificates(&wd)?;
    let api = api_certificates(&host)?;
    ensure!(
        now["not_after"] == api["not_after"] && now["not_after"] != first["not_after"],
        "data source not_after {} (API {}, before {})",
        now["not_after"],
        api["not_after"],
        first["not_after"]
    );
    ensure!(
        !now["last_rotated"].is_null() && now["ca_not_after"] == first["ca_not_after"],
        "renewed on the same CA: {now}"
    );
    wd.expect_quiet_plan()?;

    // A new CA, asked for on purpose, is the one rotation that shows: the
    // resource's ca_certificate changed outside Terraform (and only it).
    let r = host.post(
        "/v1/clusters/c1/rotate-certificates",
        &json!({"rotate_ca": true}),
    )?;
    ensure!(
        r.status == 202 && r.body["kubeconfigs_must_be_reissued"] == true,
        "rotate-certificates with a new CA: {}",
        r.body
    );
    let op = host.wait_operation(&r)?;
    ensure!(op["status"] == "Succeeded", "CA rotation: {op}");
    let drift = wd.expect_no_changes_despite_drift("a new CA changes ca_certificate")?;
    let drifted: Vec<(String, Vec<String>)> = drift
        .iter()
        .map(|d| (d.address.clone(), d.changed_attributes()))
        .collect();
    ensure!(
        drifted
            == [(
                "hybrid_cluster.c1".to_string(),
                vec!["ca_certificate".to_string()]
            )],
        "drift after a CA rotation: {drifted:?}"
    );
    wd.apply_current()?;
    wd.expect_quiet_plan()?;
    let rotated = shown_certificates(&wd)?;
    ensure!(
        !rotated["ca_rotated_at"].is_null(),
        "the data source shows the CA rotation: {rotated}"
    );
    wd.destroy()?;
    Ok(())
}
