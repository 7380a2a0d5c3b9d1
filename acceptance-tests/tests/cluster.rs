//! Acceptance tests for `hybrid_custom_location`, `hybrid_cluster` and
//! `hybrid_nodepool`: the real `terraform` binary, our provider, and a real
//! `hybrid-host` (with its simulated datacenter) per test.

use std::time::{Duration, Instant};

use hybrid_acceptance_tests::plan::expect_exact_actions;
use hybrid_acceptance_tests::{Host, Result, Workdir, ensure};
use serde_json::{Value, json};

/// A vnet (10 node addresses, 5 VIPs) and a custom location.
const SITE: &str = r#"
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
"#;

fn cluster(version: &str, extra: &str) -> String {
    format!(
        r#"
resource "hybrid_cluster" "c1" {{
  name               = "c1"
  custom_location_id = hybrid_custom_location.site.id
  vnet_id            = hybrid_vnet.lan.id
  kubernetes_version = "{version}"
  {extra}
}}
"#
    )
}

fn pool(name: &str, os: &str, body: &str) -> String {
    format!(
        r#"
resource "hybrid_nodepool" "{name}" {{
  cluster_id = hybrid_cluster.c1.id
  name       = "{name}"
  os_type    = "{os}"
  {body}
}}
"#
    )
}

fn api(host: &Host, path: &str) -> Result<Value> {
    let resp = host.get(path)?;
    ensure!(
        resp.status == 200,
        "GET {path}: {} {}",
        resp.status,
        resp.body
    );
    Ok(resp.body)
}

fn reservations(host: &Host) -> Result<Vec<Value>> {
    Ok(api(host, "/v1/vnets/lan/reservations")?["items"]
        .as_array()
        .cloned()
        .unwrap_or_default())
}

fn nodes(pool: &Value) -> Vec<Value> {
    pool["status"]["nodes"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Every VM the simulated datacenter runs, by name.
fn sim_vms(host: &Host) -> Result<Vec<String>> {
    let hosts = api(host, "/v1/hosts")?;
    let mut out: Vec<String> = hosts["items"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|h| h["vms"].as_array().cloned().unwrap_or_default())
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    out.sort();
    Ok(out)
}

#[test]
fn custom_location_lifecycle() -> Result<()> {
    let host = Host::start()?;
    let wd = Workdir::new(&host)?;
    let config = |ns: &str, display: &str| {
        format!(
            r#"
resource "hybrid_custom_location" "site" {{
  name         = "site"
  namespace    = "{ns}"
  host_id      = "/management-host"
  display_name = "{display}"
  tags         = {{ env = "test" }}
}}
"#
        )
    };
    wd.apply(&config("site", "Site A"))?;
    let state = wd.resource("hybrid_custom_location.site")?;
    ensure!(state["id"] == "/custom-locations/site", "state: {state}");
    let loc = api(&host, "/v1/custom-locations/site")?;
    ensure!(
        loc["display_name"] == "Site A" && loc["tags"]["env"] == "test",
        "API: {loc}"
    );

    // In place.
    wd.write_config(&config("site", "Site A (main)"))?;
    let plan = wd.plan_json()?;
    let actions = Workdir::planned_actions(&plan, "hybrid_custom_location.site");
    ensure!(
        actions == ["update"],
        "display_name change planned {actions:?}"
    );
    wd.apply_current()?;
    // Replace.
    wd.expect_changes(
        Some(&config("site-ns", "Site A (main)")),
        &["forces replacement"],
    )?;
    wd.apply_current()?;
    ensure!(
        api(&host, "/v1/custom-locations/site")?["namespace"] == "site-ns",
        "replaced"
    );

    wd.import_verify(
        "hybrid_custom_location.site",
        "/custom-locations/site",
        &["timeouts"],
    )?;

    // Drift, then an out-of-band delete.
    let r = host.patch(
        "/v1/custom-locations/site",
        &json!({"display_name": "changed by hand"}),
    )?;
    ensure!(r.status == 200, "PATCH: {} {}", r.status, r.body);
    wd.expect_changes(None, &["changed by hand", "Site A (main)"])?;
    wd.apply_current()?;
    let r = host.delete("/v1/custom-locations/site")?;
    ensure!(r.status == 204, "DELETE: {} {}", r.status, r.body);
    wd.expect_changes(None, &["will be created"])?;
    wd.apply_current()?;
    wd.destroy()?;
    let r = host.get("/v1/custom-locations/site")?;
    ensure!(r.status == 404, "after destroy: {} {}", r.status, r.body);
    Ok(())
}

/// Create a cluster with a Linux and a Windows pool (created in parallel),
/// scale, relabel, upgrade in place, replace a pool, import, drift,
/// out-of-band delete, destroy — checking VMs and addresses in the service.
#[test]
fn cluster_and_nodepools_lifecycle() -> Result<()> {
    let host = Host::start()?;
    let wd = Workdir::new(&host)?;
    let config = |version: &str, linux_count: u32, labels: &str, win_size: &str| {
        format!(
            "{SITE}{}{}{}",
            cluster(version, "control_plane = { count = 1 }"),
            pool(
                "linux1",
                "linux",
                &format!("node_count = {linux_count}\n  labels = {labels}")
            ),
            pool("win1", "windows", &format!("vm_size = \"{win_size}\""))
        )
    };
    let base = config("1.32.3", 1, "{ tier = \"web\" }", "Standard_K8S3_v1");
    wd.apply(&base)?;

    let c = wd.resource("hybrid_cluster.c1")?;
    ensure!(c["id"] == "/clusters/c1", "cluster state: {c}");
    ensure!(
        c["endpoint"] == "https://10.0.0.200:6443",
        "endpoint from the VIP pool: {c}"
    );
    ensure!(
        c["ca_certificate"]
            .as_str()
            .is_some_and(|p| p.contains("BEGIN CERTIFICATE")),
        "ca_certificate: {c}"
    );
    ensure!(c["current_kubernetes_version"] == "1.32.3", "version: {c}");
    let l = wd.resource("hybrid_nodepool.linux1")?;
    ensure!(
        l["id"] == "/clusters/c1/nodepools/linux1",
        "pool state: {l}"
    );
    ensure!(l["nodes"].as_array().map(Vec::len) == Some(1), "nodes: {l}");
    ensure!(
        l["nodes"][0]["ip"]
            .as_str()
            .is_some_and(|ip| ip.starts_with("10.0.0.1")),
        "node ip: {l}"
    );
    ensure!(
        l["os_sku"] == "CBLMariner" && l["max_pods"] == 110,
        "defaults: {l}"
    );
    // 1 control plane + 1 surge + 2 nodes from the VM pool, 1 VIP.
    ensure!(
        reservations(&host)?.len() == 5,
        "reservations: {:?}",
        reservations(&host)?
    );

    // Scale up: two new VMs with two new addresses.
    let up = config("1.32.3", 3, "{ tier = \"web\" }", "Standard_K8S3_v1");
    wd.write_config(&up)?;
    let plan = wd.plan_json()?;
    ensure!(
        Workdir::planned_actions(&plan, "hybrid_nodepool.linux1") == ["update"],
        "scale is in place"
    );
    wd.apply_current()?;
    let p = api(&host, "/v1/clusters/c1/nodepools/linux1")?;
    ensure!(nodes(&p).len() == 3, "scaled up: {p}");
    ensure!(reservations(&host)?.len() == 7, "two more addresses taken");
    // Scale down and relabel: addresses released.
    let down = config("1.32.3", 1, "{ tier = \"api\" }", "Standard_K8S3_v1");
    wd.apply(&down)?;
    let p = api(&host, "/v1/clusters/c1/nodepools/linux1")?;
    ensure!(
        nodes(&p).len() == 1 && p["labels"]["tier"] == "api",
        "scaled down: {p}"
    );
    ensure!(
        reservations(&host)?.len() == 5,
        "addresses released: {:?}",
        reservations(&host)?
    );

    // A skipped minor is a plan-time error listing the allowed upgrades.
    wd.expect_plan_error(
        &config("1.31.7", 1, "{ tier = \"api\" }", "Standard_K8S3_v1"),
        &["kubernetes_version", "downgrade"],
    )?;
    // Upgrade in place, one minor: every VM ends on the new version. The
    // upgrade replaces the pools' VMs too, and the plan says so: the pools
    // update in place, their version and nodes known after apply. Applied
    // from the saved plan (a new provider process), and the plan after it is
    // quiet: no changes, nothing "changed outside of Terraform".
    let upgraded = config("1.33.1", 1, "{ tier = \"api\" }", "Standard_K8S3_v1");
    wd.write_config(&upgraded)?;
    let plan = wd.plan_json()?;
    let changes = expect_exact_actions(
        &plan,
        &[
            ("hybrid_cluster.c1", "update"),
            ("hybrid_nodepool.linux1", "update"),
            ("hybrid_nodepool.win1", "update"),
        ],
    )?;
    for p in ["hybrid_nodepool.linux1", "hybrid_nodepool.win1"] {
        let unknown = changes[p].unknown_paths();
        ensure!(
            changes[p].changed_paths().is_empty()
                && ["kubernetes_version", "nodes"]
                    .iter()
                    .all(|a| unknown.iter().any(|u| u == a)),
            "{p} follows the upgrade: {}",
            changes[p].describe()
        );
    }
    wd.apply_with(&["acc.tfplan"])?;
    for p in ["linux1", "win1"] {
        let state = wd.resource(&format!("hybrid_nodepool.{p}"))?;
        let api_nodes: Vec<Value> = nodes(&api(&host, &format!("/v1/clusters/c1/nodepools/{p}"))?)
            .iter()
            .map(|n| n["name"].clone())
            .collect();
        let state_nodes: Vec<Value> = state["nodes"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|n| n["name"].clone())
            .collect();
        ensure!(
            state["kubernetes_version"] == "1.33.1" && state_nodes == api_nodes,
            "pool state after the upgrade: {state} (service: {api_nodes:?})"
        );
    }
    let c = api(&host, "/v1/clusters/c1")?;
    ensure!(
        c["status"]["current_kubernetes_version"] == "1.33.1",
        "upgraded: {c}"
    );
    for p in ["linux1", "win1"] {
        let p = api(&host, &format!("/v1/clusters/c1/nodepools/{p}"))?;
        ensure!(
            nodes(&p)
                .iter()
                .all(|n| n["kubernetes_version"] == "1.33.1"),
            "pool nodes upgraded: {p}"
        );
    }
    ensure!(
        reservations(&host)?.len() == 5,
        "surge returned after the upgrade"
    );

    // Changing a pool's vm_size replaces it.
    let replaced = config("1.33.1", 1, "{ tier = \"api\" }", "Standard_D4s_v3");
    wd.expect_changes(Some(&replaced), &["forces replacement"])?;
    wd.apply_current()?;
    let w = api(&host, "/v1/clusters/c1/nodepools/win1")?;
    ensure!(w["vm_size"] == "Standard_D4s_v3", "replaced pool: {w}");

    wd.import_verify("hybrid_cluster.c1", "/clusters/c1", &["timeouts"])?;
    wd.import_verify(
        "hybrid_nodepool.linux1",
        "/clusters/c1/nodepools/linux1",
        &["timeouts"],
    )?;

    // Drift: labels changed by hand show in the plan and are put back.
    let r = host.patch(
        "/v1/clusters/c1/nodepools/linux1",
        &json!({"labels": {"tier": "hand"}}),
    )?;
    ensure!(r.status == 202, "PATCH: {} {}", r.status, r.body);
    host.wait_operation(&r)?;
    wd.expect_changes(None, &["hand", "api"])?;
    wd.apply_current()?;
    // Out-of-band delete: the next plan re-creates the pool.
    let r = host.delete("/v1/clusters/c1/nodepools/linux1")?;
    host.wait_operation(&r)?;
    wd.expect_changes(None, &["hybrid_nodepool.linux1 will be created"])?;
    wd.apply_current()?;

    // Deleting the vnet or custom location while the cluster uses them fails, listing the user.
    let r = host.delete("/v1/vnets/lan")?;
    ensure!(
        r.status == 409 && r.body.to_string().contains("/clusters/c1"),
        "vnet in use: {}",
        r.body
    );
    let r = host.delete("/v1/custom-locations/site")?;
    ensure!(
        r.status == 409 && r.body.to_string().contains("/clusters/c1"),
        "location in use: {}",
        r.body
    );

    wd.destroy()?;
    ensure!(
        sim_vms(&host)?.is_empty(),
        "VMs left after destroy: {:?}",
        sim_vms(&host)?
    );
    let r = host.get("/v1/vnets/lan")?;
    ensure!(r.status == 404, "vnet after destroy: {}", r.status);
    Ok(())
}

/// The cluster itself: replace on an immutable change, drift, and an
/// out-of-band delete that the next plan re-creates.
#[test]
fn cluster_replace_drift_and_out_of_band_delete() -> Result<()> {
    let host = Host::start()?;
    let wd = Workdir::new(&host)?;
    let config = |extra: &str| format!("{SITE}{}", cluster("1.32.3", extra));
    wd.apply(&config("tags = { env = \"test\" }"))?;
    let first = api(&host, "/v1/clusters/c1")?;

    // Drift: tags changed by hand.
    let r = host.patch("/v1/clusters/c1", &json!({"tags": {"env": "hand"}}))?;
    ensure!(r.status == 202, "PATCH: {} {}", r.status, r.body);
    host.wait_operation(&r)?;
    wd.expect_changes(None, &["hand", "test", "updated in-place"])?;
    wd.apply_current()?;

    // An immutable change replaces the cluster (new VMs, same name).
    let replaced =
        config("tags = { env = \"test\" }\n  network = { pod_cidr = \"10.200.0.0/16\" }");
    wd.write_config(&replaced)?;
    let plan = wd.plan_json()?;
    let actions = Workdir::planned_actions(&plan, "hybrid_cluster.c1");
    ensure!(
        actions == ["delete", "create"],
        "pod_cidr change planned {actions:?}"
    );
    wd.expect_changes(None, &["forces replacement"])?;
    wd.apply_current()?;
    let second = api(&host, "/v1/clusters/c1")?;
    ensure!(
        second["network"]["pod_cidr"] == "10.200.0.0/16",
        "replaced: {second}"
    );
    ensure!(
        second["created_at"] != first["created_at"],
        "not a new cluster: {second}"
    );
    ensure!(
        sim_vms(&host)? == ["c1-cp-0"],
        "old VMs left: {:?}",
        sim_vms(&host)?
    );

    // Out-of-band delete: the next plan re-creates it.
    let r = host.delete("/v1/clusters/c1")?;
    host.wait_operation(&r)?;
    wd.expect_changes(None, &["hybrid_cluster.c1 will be created"])?;
    wd.apply_current()?;
    wd.destroy()?;
    ensure!(reservations_gone(&host)?, "addresses left after destroy");
    Ok(())
}

fn reservations_gone(host: &Host) -> Result<bool> {
    Ok(host.get("/v1/vnets/lan")?.status == 404)
}

/// Capacity problems appear in `terraform plan`, before any VM exists.
#[test]
fn capacity_errors_at_plan_time() -> Result<()> {
    // Two small hosts: 8 vCPU / 16 GiB each.
    let host = Host::start_with_sim(
        r#"
hosts = [
  { name = "host-1", vcpus = 8, memory_gib = 16 },
  { name = "host-2", vcpus = 8, memory_gib = 16 },
]
"#,
    )?;
    let wd = Workdir::new(&host)?;
    let base = format!("{SITE}{}", cluster("1.31.7", ""));
    wd.apply(&base)?;
    let before = reservations(&host)?.len();
    // Skipping a minor is refused at plan time, listing the allowed upgrades.
    wd.expect_plan_error(
        &format!("{SITE}{}", cluster("1.33.1", "")),
        &["kubernetes_version", "one minor", "1.31.9, 1.32.3, 1.32.5"],
    )?;
    // 10 node addresses in the pool; the cluster holds 2 (control plane + surge).
    wd.expect_plan_error(
        &format!("{base}{}", pool("big", "linux", "node_count = 9")),
        &["node_count", "9 needed", "free"],
    )?;
    wd.expect_plan_error(
        &format!(
            "{base}{}",
            pool(
                "huge",
                "linux",
                "node_count = 2\n  vm_size = \"Standard_D16s_v3\""
            )
        ),
        &["host capacity", "needed", "free"],
    )?;
    wd.expect_plan_error(
        &format!("{base}{}", pool("many", "linux", "node_count = 70")),
        &["node_count", "70", "64"],
    )?;
    wd.expect_plan_error(
        &format!(
            "{SITE}{}",
            cluster("1.32.3", "control_plane = { count = 2 }")
        ),
        &["control_plane", "1, 3 or 5"],
    )?;
    ensure!(
        reservations(&host)?.len() == before,
        "a refused plan took addresses"
    );
    ensure!(
        sim_vms(&host)?.len() == 1,
        "a refused plan created VMs: {:?}",
        sim_vms(&host)?
    );
    Ok(())
}

/// While auto-scaling is on, the service owns node_count: its changes are
/// never drift.
#[test]
fn autoscaling_owns_node_count() -> Result<()> {
    let host = Host::start()?;
    let wd = Workdir::new(&host)?;
    let config = format!(
        "{SITE}{}{}",
        cluster("1.32.3", ""),
        pool(
            "auto",
            "linux",
            "auto_scaling = { min_count = 1, max_count = 3 }"
        )
    );
    wd.apply(&config)?;
    let p = wd.resource("hybrid_nodepool.auto")?;
    ensure!(p["node_count"] == 1, "starts at min_count: {p}");
    // The autoscaler adds two nodes.
    let body = json!({"os_type": "linux", "node_count": 3, "auto_scaling": {"min_count": 1, "max_count": 3}});
    let r = host.put("/v1/clusters/c1/nodepools/auto", &body)?;
    ensure!(r.status == 202, "autoscaler PUT: {} {}", r.status, r.body);
    host.wait_operation(&r)?;
    // Nothing to plan: the service owns node_count. The refresh does see
    // the autoscaler's change (the pool's node_count and nodes), which
    // Terraform notes as drift only when something with planned changes
    // refers to them.
    let drift = wd.expect_no_changes_despite_drift("the test plays the autoscaler")?;
    ensure!(
        drift.len() == 1
            && drift[0].address == "hybrid_nodepool.auto"
            && drift[0]
                .changed_paths()
                .iter()
                .all(|p| p == "node_count" || p.starts_with("nodes")),
        "drift after autoscaling: {drift:?}"
    );
    wd.apply_with(&["-refresh-only"])?;
    let p = wd.resource("hybrid_nodepool.auto")?;
    ensure!(p["node_count"] == 3, "refreshed count: {p}");
    ensure!(
        p["nodes"].as_array().map(Vec::len) == Some(3),
        "refreshed nodes: {p}"
    );
    // Setting node_count as well is refused at plan time.
    wd.expect_plan_error(
        &format!(
            "{SITE}{}{}",
            cluster("1.32.3", ""),
            pool(
                "auto",
                "linux",
                "node_count = 2\n  auto_scaling = { min_count = 1, max_count = 3 }"
            )
        ),
        &["node_count", "auto_scaling"],
    )?;
    Ok(())
}

/// A VM that fails to boot fails the apply with a clear error, leaves the
/// pool in state (tainted), and the next apply converges.
#[test]
fn boot_failure_then_converges() -> Result<()> {
    let mut host = Host::start_with_sim("[faults]\nfail_boot = [\"c1-linux1\"]\n")?;
    let wd = Workdir::new(&host)?;
    let config = format!(
        "{SITE}{}{}",
        cluster("1.32.3", ""),
        pool("linux1", "linux", "node_count = 2")
    );
    wd.apply_expect_error(&config, &["c1-linux1-0", "failed to boot", "fail_boot"])?;
    let p = wd.resource("hybrid_nodepool.linux1")?;
    ensure!(
        p["id"] == "/clusters/c1/nodepools/linux1",
        "pool kept in state: {p}"
    );
    let show = wd.show_json()?;
    ensure!(
        show.to_string().contains("tainted"),
        "pool is tainted: {show}"
    );

    host.set_sim(None)?;
    host.restart()?;
    wd.apply_current()?;
    let p = api(&host, "/v1/clusters/c1/nodepools/linux1")?;
    ensure!(
        p["provisioning_state"] == "Succeeded" && nodes(&p).len() == 2,
        "converged: {p}"
    );
    let vms = sim_vms(&host)?;
    ensure!(
        vms.iter().filter(|v| v.starts_with("c1-linux1-")).count() == 2,
        "exactly two pool VMs: {vms:?}"
    );
    // 1 control plane + 1 surge + 2 nodes + VIP.
    ensure!(
        reservations(&host)?.len() == 5,
        "reservations: {:?}",
        reservations(&host)?
    );
    Ok(())
}

/// `kill -9` of hybrid-host in the middle of a cluster create; after a
/// restart, applying again gives exactly the expected VMs and addresses.
#[test]
fn host_killed_during_cluster_create() -> Result<()> {
    let mut host = Host::start_with_sim("[timings]\nvm_boot_ms = 1500\n")?;
    let wd = Workdir::new(&host)?;
    let config = format!(
        "{SITE}{}",
        cluster("1.32.3", "control_plane = { count = 3 }")
    );
    wd.write_config(&config)?;
    std::thread::scope(|s| -> Result<()> {
        let apply = s.spawn(|| wd.terraform(&["apply", "-auto-approve", "-input=false"]));
        // Wait until the first control-plane VM runs, then kill -9 and restart.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            ensure!(Instant::now() < deadline, "cluster create never got going");
            if let Ok(r) = host.get("/v1/clusters/c1")
                && r.status == 200
                && r.body["status"]["control_plane_nodes"]
                    .as_array()
                    .is_some_and(|n| n.iter().any(|n| n["state"] == "Running"))
            {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let c = api(&host, "/v1/clusters/c1")?;
        ensure!(
            c["provisioning_state"] != "Succeeded",
            "killed too late: {c}"
        );
        host.restart()?;
        // The provider keeps polling through the restart: the apply succeeds.
        let out = apply
            .join()
            .map_err(|_| hybrid_acceptance_tests::Error::Check("apply thread panicked".into()))??;
        ensure!(
            out.code == Some(0),
            "apply across a restart failed:\n{}",
            out.combined()
        );
        Ok(())
    })?;
    let state = wd.resource("hybrid_cluster.c1")?;
    ensure!(
        state["id"] == "/clusters/c1",
        "cluster kept in state: {state}"
    );
    // That apply ran on its own thread, outside the harness's apply: the
    // quiet-plan check it would have made, then applying again changes
    // nothing either.
    wd.expect_quiet_plan()?;
    wd.apply_current()?;
    let c = api(&host, "/v1/clusters/c1")?;
    ensure!(c["provisioning_state"] == "Succeeded", "cluster: {c}");
    let vms = sim_vms(&host)?;
    ensure!(
        vms == ["c1-cp-0", "c1-cp-1", "c1-cp-2"],
        "exactly three VMs: {vms:?}"
    );
    // 3 control plane + 1 surge + 1 VIP, each once.
    let r = reservations(&host)?;
    ensure!(r.len() == 5, "reservations: {r:?}");
    Ok(())
}

/// `control_plane.count` changes in place, 1 → 3 → 5 → 3: each plan is an
/// update of the cluster alone, each apply leaves a quiet plan (no changes,
/// no drift), and the service runs exactly that many control planes. (The
/// order of the VM operations and a fault mid-change are checked on the
/// service's own, in host/tests/control_plane.rs.)
#[test]
fn control_plane_count_changes_in_place() -> Result<()> {
    let host = Host::start()?;
    let wd = Workdir::new(&host)?;
    let config = |count: u32| {
        format!(
            "{SITE}{}",
            cluster("1.32.3", &format!("control_plane = {{ count = {count} }}"))
        )
    };
    wd.apply(&config(1))?;
    let endpoint = wd.resource("hybrid_cluster.c1")?["endpoint"].clone();
    for count in [3u32, 5, 3] {
        wd.write_config(&config(count))?;
        let plan = wd.plan_json()?;
        let changes = expect_exact_actions(&plan, &[("hybrid_cluster.c1", "update")])?;
        ensure!(
            changes["hybrid_cluster.c1"].changed_attributes() == ["control_plane"],
            "control_plane.count {count}: {}",
            changes["hybrid_cluster.c1"].describe()
        );
        // Checks the plan after it: no changes, no drift.
        wd.apply_current()?;
        let c = api(&host, "/v1/clusters/c1")?;
        let cps = c["status"]["control_plane_nodes"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        ensure!(
            cps.len() == count as usize && cps.iter().all(|n| n["state"] == "Running"),
            "control_plane.count {count}: {cps:?}"
        );
        let state = wd.resource("hybrid_cluster.c1")?;
        ensure!(
            state["control_plane"]["count"] == count && state["endpoint"] == endpoint,
            "control_plane.count {count}: state {state}"
        );
        let vms = sim_vms(&host)?;
        ensure!(
            vms.iter().filter(|v| v.starts_with("c1-cp-")).count() == count as usize,
            "control_plane.count {count}: datacenter {vms:?}"
        );
    }
    wd.destroy()?;
    Ok(())
}

/// VMs the simulated datacenter has created so far (its journal's
/// `create` entries; the host runs with `journal = true`).
fn vm_creates(host: &Host) -> Result<usize> {
    let db = host.data_dir().join("sim-datacenter.db");
    let conn =
        rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|e| hybrid_acceptance_tests::Error::Check(format!("{}: {e}", db.display())))?;
    conn.query_row(
        "SELECT COUNT(*) FROM vm_journal WHERE event = 'create'",
        [],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| usize::try_from(n).unwrap_or(0))
    .map_err(|e| hybrid_acceptance_tests::Error::Check(format!("{}: {e}", db.display())))
}

/// The pid of the provider plugin process `terraform` (pid `parent`) runs.
fn provider_pid(parent: u32) -> Option<u32> {
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            // `pid (comm) state ppid …`; comm may hold spaces, so split after it.
            let (comm, rest) = stat.split_once(" (")?.1.rsplit_once(") ")?;
            let ppid: u32 = rest.split_whitespace().nth(1)?.parse().ok()?;
            (ppid == parent && comm.starts_with("terraform-provi")).then_some(pid)
        })
}

/// A `terraform apply` of an upgrade whose provider process is killed
/// mid-way: the service keeps upgrading (its operation is durable), and the
/// next `terraform apply` waits for that operation instead of starting a
/// second upgrade — every VM is replaced exactly once — and leaves a quiet
/// plan (no changes, no drift).
#[test]
fn an_upgrade_interrupted_by_a_killed_provider_is_not_done_twice() -> Result<()> {
    let host = Host::start_with_sim("journal = true\n[timings]\nvm_boot_ms = 2500\n")?;
    let wd = Workdir::new(&host)?;
    let config = |version: &str| {
        format!(
            "{SITE}{}{}",
            cluster(version, "control_plane = { count = 1 }"),
            pool("linux1", "linux", "node_count = 2")
        )
    };
    wd.apply(&config("1.32.3"))?;
    let before = vm_creates(&host)?;

    wd.write_config(&config("1.33.1"))?;
    let mut apply = wd.spawn_terraform(&["apply", "-auto-approve", "-input=false"])?;
    // Once one of the three VMs is replaced (and not all), kill the provider.
    let deadline = Instant::now() + Duration::from_secs(120);
    let progress = loop {
        let c = api(&host, "/v1/clusters/c1")?;
        let u = c["status"]["upgrade"].clone();
        ensure!(
            c["provisioning_state"] != "Failed",
            "during the upgrade: {c}"
        );
        if u["nodes_done"].as_u64().is_some_and(|done| done >= 1) {
            break u;
        }
        if Instant::now() > deadline {
            let _ = apply.kill();
            let _ = apply.wait();
            return Err(hybrid_acceptance_tests::Error::Check(format!(
                "the upgrade never progressed: {c}"
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let killed = provider_pid(apply.id()).map(|pid| {
        std::process::Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status()
    });
    let exit = apply.wait().map_err(|e| {
        hybrid_acceptance_tests::Error::Check(format!("waiting for terraform: {e}"))
    })?;
    ensure!(
        matches!(killed, Some(Ok(s)) if s.success()) && !exit.success(),
        "the provider was killed ({killed:?}) and the apply failed ({exit:?})"
    );
    ensure!(
        progress["nodes_total"] == 3 && progress["nodes_done"].as_u64() < Some(3),
        "killed mid-upgrade: {progress}"
    );

    // The next apply picks the running upgrade up; its plan after is quiet.
    wd.apply_current()?;
    let c = api(&host, "/v1/clusters/c1")?;
    ensure!(
        c["status"]["current_kubernetes_version"] == "1.33.1" && c["status"]["upgrade"].is_null(),
        "upgraded: {c}"
    );
    let replaced = vm_creates(&host)? - before;
    ensure!(
        replaced == 3,
        "1 control plane + 2 nodes replaced once each, not {replaced} VM creations"
    );
    let p = api(&host, "/v1/clusters/c1/nodepools/linux1")?;
    ensure!(
        nodes(&p).len() == 2
            && nodes(&p)
                .iter()
                .all(|n| n["kubernetes_version"] == "1.33.1" && n["state"] == "Running"),
        "pool after the upgrade: {p}"
    );
    let state = wd.resource("hybrid_nodepool.linux1")?;
    ensure!(
        state["kubernetes_version"] == "1.33.1" && state["upgrade"].is_null(),
        "pool state: {state}"
    );
    wd.destroy()?;
    Ok(())
}
