//! Acceptance test of `hybrid_nodepool.auto_repair` with the real
//! `terraform`, our provider and a real `hybrid-host` on the sim
//! datacenter: a pool created with auto-repair (planned `create` with the
//! given settings and defaults), a host taken down (the service restarted
//! with the sim's `hosts_down` fault) longer than `unhealthy_after`, the
//! repair visible as a `nodepool.repair` operation with its reason, then a
//! plan that proposes nothing; bad settings fail the plan naming attribute,
//! value and rule; import reads the block back.

use std::time::{Duration, Instant};

use hybrid_acceptance_tests::plan::expect_exact_actions;
use hybrid_acceptance_tests::{Host, Result, Workdir, ensure};
use serde_json::Value;

const POOL: &str = "hybrid_nodepool.np1";
const POOL_ID: &str = "/clusters/c1/nodepools/np1";

fn config(repair: &str) -> String {
    format!(
        r#"
resource "hybrid_vnet" "lan" {{
  name           = "lan"
  address_prefix = "10.0.0.0/24"
  gateway        = "10.0.0.1"
  vm_ip_pool     = {{ start = "10.0.0.10", end = "10.0.0.19" }}
  vip_pool       = {{ start = "10.0.0.200", end = "10.0.0.204" }}
}}

resource "hybrid_custom_location" "site" {{
  name      = "site"
  namespace = "site"
  host_id   = "/management-host"
}}

resource "hybrid_cluster" "c1" {{
  name               = "c1"
  custom_location_id = hybrid_custom_location.site.id
  vnet_id            = hybrid_vnet.lan.id
  kubernetes_version = "1.32.3"
}}

resource "hybrid_nodepool" "np1" {{
  cluster_id  = hybrid_cluster.c1.id
  name        = "np1"
  os_type     = "linux"
  node_count  = 2
  auto_repair = {{ {repair} }}
}}
"#
    )
}

fn get(host: &Host, path: &str) -> Result<Value> {
    let resp = host.get(path)?;
    ensure!(
        resp.status == 200,
        "GET {path}: {} {}",
        resp.status,
        resp.body
    );
    Ok(resp.body)
}

#[test]
fn a_node_on_a_host_down_too_long_is_repaired_without_a_planned_change() -> Result<()> {
    let mut host = Host::start()?;
    let wd = Workdir::new(&host)?;

    // Create: the planned block is the given settings plus the defaults.
    wd.write_config(&config("enabled = true, unhealthy_after = \"10s\""))?;
    let plan = wd.plan_json()?;
    let changes = expect_exact_actions(
        &plan,
        &[
            ("hybrid_vnet.lan", "create"),
            ("hybrid_custom_location.site", "create"),
            ("hybrid_cluster.c1", "create"),
            (POOL, "create"),
        ],
    )?;
    let planned = changes[POOL].after_at("auto_repair");
    ensure!(
        planned["enabled"] == true
            && planned["unhealthy_after"] == "10s"
            && planned["max_unhealthy"] == 1,
        "planned auto_repair: {planned}"
    );
    wd.apply_current()?;
    let pool = get(&host, &format!("/v1{POOL_ID}"))?;
    ensure!(pool["auto_repair"] == planned, "stored: {pool}");

    // Bad settings fail the plan, naming attribute, value and rule.
    for (repair, needles) in [
        (
            "enabled = true, unhealthy_after = \"5s\"",
            &[
                "auto_repair.unhealthy_after",
                "\"5s\"",
                "between 10s and 24h",
            ][..],
        ),
        (
            "enabled = true, unhealthy_after = \"ten minutes\"",
            &[
                "auto_repair.unhealthy_after",
                "ten minutes",
                "not a duration",
            ][..],
        ),
        (
            "enabled = true, max_unhealthy = 0",
            &["auto_repair.max_unhealthy", "0"][..],
        ),
    ] {
        wd.expect_plan_error(&config(repair), needles)?;
    }
    wd.write_config(&config("enabled = true, unhealthy_after = \"10s\""))?;
    wd.expect_quiet_plan()?;
    wd.import_verify(POOL, POOL_ID, &["timeouts"])?;

    // The first node's host goes down.
    let victim = pool["status"]["nodes"][0].clone();
    let down = victim["host"].as_str().unwrap_or_default().to_string();
    host.set_sim(Some(&format!("[faults]\nhosts_down = [\"{down}\"]\n")))?;
    host.restart()?;

    // A repair is queued once the host has been down for 10s.
    let start = Instant::now();
    let entry = loop {
        let audit = get(&host, &format!("/v1/audit?target={POOL_ID}"))?;
        let found = audit["items"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|e| e["action"] == "nodepool.repair")
            .cloned();
        if let Some(e) = found {
            break e;
        }
        ensure!(
            start.elapsed() < Duration::from_secs(60),
            "no repair after 60s: {audit}"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    ensure!(
        start.elapsed() >= Duration::from_secs(9),
        "repaired before unhealthy_after: {entry}"
    );
    let op_id = entry["details"]["operation"].as_str().unwrap_or_default();
    let op = loop {
        let op = get(&host, &format!("/v1/operations/{op_id}?wait=30s"))?;
        if op["status"] != "Running" {
            break op;
        }
    };
    let reason = op["reason"].as_str().unwrap_or_default();
    ensure!(
        op["kind"] == "nodepool.repair"
            && op["status"] == "Succeeded"
            && op["target"] == POOL_ID
            && reason.starts_with(&format!("host {down} down since ")),
        "repair operation: {op}"
    );
    let pool = get(&host, &format!("/v1{POOL_ID}"))?;
    let running: Vec<&Value> = pool["status"]["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|n| n["state"] == "Running")
        .collect();
    ensure!(
        running.len() == 2 && running.iter().all(|n| n["host"] != down.as_str()),
        "two nodes running on up hosts: {pool}"
    );
    ensure!(
        pool["provisioning_state"] == "Succeeded" && pool["node_count"] == 2,
        "pool after the repair: {pool}"
    );

    // Nothing to plan: the configuration still holds. The refresh sees the
    // pool's observed nodes change (a new node, the old one waiting on its
    // down host), as it does for an auto-scaled count; nothing else.
    let drift = wd.expect_no_changes_despite_drift("a node was repaired")?;
    ensure!(
        drift.len() == 1
            && drift[0].address == POOL
            && drift[0]
                .changed_paths()
                .iter()
                .all(|p| p.starts_with("nodes")),
        "drift after the repair: {drift:?}"
    );
    // Refreshed, the plan is quiet again.
    wd.apply_with(&["-refresh-only"])?;
    Ok(())
}
