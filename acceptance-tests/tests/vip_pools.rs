//! Acceptance test of VIP pools under pressure with the real `terraform`,
//! our provider and a real `hybrid-host` on the sim datacenter: growing a
//! vnet's `vip_pool` (end raised, start lowered) while a cluster with a
//! built-in load balancer and another cluster hold VIPs is an update in
//! place that keeps every address (re-plan quiet, no drift); shrinking it
//! below a held VIP fails the plan naming the address and its owner; a plan
//! that would leave no VIP free while a cluster's load balancer could still
//! need one (a shrink to exactly the VIPs in use, or a new cluster taking
//! the last one) warns, naming the vnet, the pool, used/free and the cluster.

use hybrid_acceptance_tests::plan::expect_exact_actions;
use hybrid_acceptance_tests::{Host, Result, Workdir, ensure};
use serde_json::{Value, json};

const VNET: &str = "hybrid_vnet.lan";

/// Vnet `lan` with `vip_pool` `start`–`end`, cluster `lb` with a built-in
/// load balancer VM and a pool, cluster `plain` without one, and `extra`.
fn config(start: &str, end: &str, extra: &str) -> String {
    format!(
        r#"
resource "hybrid_vnet" "lan" {{
  name           = "lan"
  address_prefix = "10.0.0.0/24"
  gateway        = "10.0.0.1"
  vm_ip_pool     = {{ start = "10.0.0.10", end = "10.0.0.39" }}
  vip_pool       = {{ start = "{start}", end = "{end}" }}
}}

resource "hybrid_custom_location" "site" {{
  name      = "site"
  namespace = "site"
  host_id   = "/management-host"
}}

resource "hybrid_cluster" "lb" {{
  name               = "lb"
  custom_location_id = hybrid_custom_location.site.id
  vnet_id            = hybrid_vnet.lan.id
  kubernetes_version = "1.32.3"
  network = {{
    load_balancer = {{ count = 1 }}
  }}
}}

resource "hybrid_nodepool" "linux1" {{
  cluster_id = hybrid_cluster.lb.id
  name       = "linux1"
  os_type    = "linux"
}}

resource "hybrid_cluster" "plain" {{
  name               = "plain"
  custom_location_id = hybrid_custom_location.site.id
  vnet_id            = hybrid_vnet.lan.id
  kubernetes_version = "1.32.3"
}}
{extra}
"#
    )
}

const THIRD_CLUSTER: &str = r#"
resource "hybrid_cluster" "third" {
  name               = "third"
  custom_location_id = hybrid_custom_location.site.id
  vnet_id            = hybrid_vnet.lan.id
  kubernetes_version = "1.32.3"
}
"#;

/// Every address held on `lan` (address, pool, owner), and each cluster's
/// endpoint and node addresses.
fn held(host: &Host) -> Result<Value> {
    let r = host.get("/v1/vnets/lan/reservations")?;
    ensure!(r.status == 200, "reservations: {} {}", r.status, r.body);
    let mut reservations: Vec<Value> = r.body["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| json!([r["address"], r["pool"], r["owner"]]))
        .collect();
    reservations.sort_by_key(|r| r.to_string());
    let mut clusters = Vec::new();
    for name in ["lb", "plain"] {
        let c = host.get(&format!("/v1/clusters/{name}"))?;
        ensure!(c.status == 200, "cluster {name}: {}", c.status);
        let status = &c.body["status"];
        ensure!(
            status["endpoint"].is_string(),
            "cluster {name} has no endpoint: {}",
            c.body
        );
        clusters.push(json!([
            status["endpoint"],
            status["control_plane_nodes"],
            status["load_balancer_nodes"]
        ]));
    }
    Ok(json!({"reservations": reservations, "clusters": clusters}))
}

#[test]
fn vip_pools_under_pressure() -> Result<()> {
    let host = Host::start()?;
    let wd = Workdir::new(&host)?;

    // Two clusters take 2 of the 3 VIPs (.200–.202).
    wd.apply(&config("10.0.0.200", "10.0.0.202", ""))?;
    let before = held(&host)?;
    let vips = before["reservations"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r[1] == "vip")
        .count();
    ensure!(vips == 2, "held: {before}");

    // Growing the pool (start lowered, end raised) is an update in place of
    // the vnet alone, and every held address stays.
    wd.write_config(&config("10.0.0.190", "10.0.0.230", ""))?;
    let plan = wd.plan_json()?;
    let changes = expect_exact_actions(&plan, &[(VNET, "update")])?;
    let change = &changes[VNET];
    let mut changed = change.changed_paths();
    changed.sort();
    ensure!(
        change.replace_paths.is_empty()
            && changed == ["vip_pool.end", "vip_pool.size", "vip_pool.start"],
        "growing vip_pool must change only it, in place: {}",
        change.describe()
    );
    wd.apply_current()?;
    ensure!(
        held(&host)? == before,
        "growing vip_pool moved an address: {before} -> {}",
        held(&host)?
    );

    // Shrinking below the held VIPs fails the plan, naming them and owners.
    wd.expect_plan_error(
        &config("10.0.0.203", "10.0.0.230", ""),
        &[
            "Cannot shrink vip_pool",
            "vip_pool 10.0.0.203–10.0.0.230 would leave allocated addresses outside the pool",
            "(held by /clusters/lb)",
            "(held by /clusters/plain)",
        ],
    )?;

    // Back to 3 VIPs (1 free): no warning. Then a third cluster would take
    // the last VIP, while cluster lb's load balancer could still need one.
    wd.write_config(&config("10.0.0.200", "10.0.0.202", ""))?;
    let out = wd.terraform_ok(&["plan", "-input=false"])?;
    ensure!(
        !out.contains("No VIP would be left"),
        "one VIP stays free: {}",
        out.combined()
    );
    wd.apply_current()?;
    ensure!(held(&host)? == before, "shrinking to fit moved an address");
    let vnet_warning = [
        "Warning: No VIP would be left in vnet \"lan\"",
        "vnet lan: vip_pool 10.0.0.200–10.0.0.202 would have 0 of 3 addresses free (3 used)",
        "would find none: lb (load_balancer.count = 1).",
    ];
    let out = wd.expect_changes(
        Some(&config("10.0.0.200", "10.0.0.202", THIRD_CLUSTER)),
        &vnet_warning,
    )?;
    ensure!(
        !out.contains("plain (load_balancer"),
        "only clusters with a load balancer are named: {}",
        out.flat()
    );

    // Shrinking to exactly the VIPs in use warns too, and applies.
    let config_full = config("10.0.0.200", "10.0.0.201", "");
    wd.expect_changes(
        Some(&config_full),
        &[
            "Warning: No VIP would be left in vnet \"lan\"",
            "vip_pool 10.0.0.200–10.0.0.201 would have 0 of 2 addresses free (2 used)",
            "lb (load_balancer.count = 1)",
        ],
    )?;
    wd.apply_current()?;
    ensure!(held(&host)? == before, "shrinking to fit moved an address");
    Ok(())
}
