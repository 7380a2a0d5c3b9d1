//! The provider against several `hybrid-host` replicas on one PostgreSQL
//! database: given every replica's endpoint, a `terraform apply` survives
//! the SIGKILL of the replica it was talking to, mid-operation, and ends
//! with an empty re-plan.
//!
//! Needs PostgreSQL: runs when `HYBRID_TEST_POSTGRES` is set (the
//! PostgreSQL step of `cargo xtask test`), and says so otherwise.

use std::ffi::OsString;
use std::time::{Duration, Instant};

use hybrid_acceptance_tests::{Host, Result, Workdir, ensure};

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
  kubernetes_version = "1.32.3"
}
"#;

/// VMs boot slowly, so the cluster's creation is still running when the
/// replica dies.
const SIM: &str = "[timings]\nvm_boot_ms = 6000\n";

#[test]
fn apply_survives_the_kill_of_the_replica_it_talks_to() -> Result<()> {
    let Some(database) = Host::test_database()? else {
        eprintln!("skipped: set HYBRID_TEST_POSTGRES to run the replica test");
        return Ok(());
    };
    let shared = tempfile::tempdir()
        .map_err(|e| hybrid_acceptance_tests::Error::Setup(format!("creating a temp dir: {e}")))?;
    let args = |i: usize| -> Vec<OsString> {
        vec![
            "--database-url".into(),
            database.clone().into(),
            "--sim-state".into(),
            shared.path().join("sim-datacenter.db").into(),
            "--replica-name".into(),
            format!("r{i}").into(),
            "--lease-ttl-seconds".into(),
            "2".into(),
        ]
    };
    let mut first = Host::start_with(Some(SIM), args(0), &[])?;
    // The others share the first one's keys: token, secrets key and CA.
    let keys: Vec<_> = ["ca.pem", "ca-key.pem", "admin.token", "secrets.key"]
        .iter()
        .map(|f| first.data_dir().join(f))
        .collect();
    let second = Host::start_with(Some(SIM), args(1), &keys)?;
    let third = Host::start_with(Some(SIM), args(2), &keys)?;

    let mut wd = Workdir::new(&first)?;
    let endpoints = [first.endpoint(), second.endpoint(), third.endpoint()].join(",");
    wd.set_env("HYBRID_ENDPOINT", &endpoints);
    wd.write_config(CONFIG)?;

    std::thread::scope(|scope| -> Result<()> {
        let apply = scope.spawn(|| wd.apply_current());
        // Once the cluster is provisioning (asked of the first replica),
        // kill that replica.
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let c = second.get("/v1/clusters/c1")?;
            if c.status == 200 && c.body["provisioning_state"] != "Succeeded" {
                break;
            }
            ensure!(
                Instant::now() < deadline && !apply.is_finished(),
                "the cluster never started creating: {:?}",
                c.body
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        first.stop(); // SIGKILL
        let out = apply
            .join()
            .map_err(|_| hybrid_acceptance_tests::Error::Check("apply thread panicked".into()))??;
        ensure!(out.contains("Apply complete!"), "apply: {}", out.combined());
        Ok(())
    })?;
    let c = third.get("/v1/clusters/c1")?;
    ensure!(
        c.body["provisioning_state"] == "Succeeded",
        "cluster: {:?}",
        c.body
    );
    wd.expect_no_changes()?;
    Ok(())
}
