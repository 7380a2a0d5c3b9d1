//! Acceptance test of `hybrid_cluster.auto_scaler_profile` with the real
//! `terraform`, our provider and a real `hybrid-host` on the sim
//! datacenter: create with a profile (planned `create`), a one-setting
//! change (planned `update` in place, touching no VM), removing the block
//! (back to AKS's defaults, in place), bad settings refused at plan time
//! naming the attribute, value and rule, and import. Every apply is
//! followed by a plan that must change nothing and report no drift, with a
//! pool whose `auto_scaling` owns its node count beside the profile.

use hybrid_acceptance_tests::plan::{ResourceChange, expect_exact_actions};
use hybrid_acceptance_tests::{Host, Result, Workdir, ensure};
use serde_json::{Value, json};

const CLUSTER: &str = "hybrid_cluster.c1";

/// A vnet, a custom location, cluster `c1` with `profile` (HCL, may be
/// empty) and an autoscaled Linux pool.
fn config(profile: &str) -> String {
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
  {profile}
}}

resource "hybrid_nodepool" "auto" {{
  cluster_id   = hybrid_cluster.c1.id
  name         = "auto"
  os_type      = "linux"
  auto_scaling = {{ min_count = 1, max_count = 3 }}
}}
"#
    )
}

fn profile(settings: &str) -> String {
    format!("auto_scaler_profile = {{\n    {settings}\n  }}")
}

fn api_profile(host: &Host) -> Result<Value> {
    let resp = host.get("/v1/clusters/c1")?;
    ensure!(
        resp.status == 200,
        "GET cluster: {} {}",
        resp.status,
        resp.body
    );
    Ok(resp.body["auto_scaler_profile"].clone())
}

/// Every VM the sim datacenter runs, with its host.
fn sim_vms(host: &Host) -> Result<Value> {
    let resp = host.get("/v1/hosts")?;
    ensure!(resp.status == 200, "GET hosts: {}", resp.status);
    Ok(json!(
        resp.body["items"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|h| json!([h["name"], h["vms"]]))
            .collect::<Vec<_>>()
    ))
}

fn only_profile_changes(change: &ResourceChange, want: &[&str]) -> Result<()> {
    let changed = change.changed_paths();
    let want: Vec<String> = want
        .iter()
        .map(|s| format!("auto_scaler_profile.{s}"))
        .collect();
    ensure!(
        changed == want,
        "changed {changed:?}, want {want:?}: {}",
        change.describe()
    );
    // Only the observed conditions wait for the update (as for any
    // in-place change); the VMs, endpoint and versions are planned as they
    // are.
    ensure!(
        change.unknown_paths().iter().all(|p| p == "conditions") && change.replace_paths.is_empty(),
        "a profile change must be in place and leave the VMs known: {}",
        change.describe()
    );
    Ok(())
}

#[test]
fn auto_scaler_profile_lifecycle() -> Result<()> {
    let host = Host::start()?;
    let wd = Workdir::new(&host)?;

    // Create: the planned block is the given settings plus AKS's defaults.
    wd.write_config(&config(&profile(
        "scan_interval = \"20s\"\n    expander = \"least-waste\"\n    \
         scale_down_utilization_threshold = \"0.6\"",
    )))?;
    let plan = wd.plan_json()?;
    let changes = expect_exact_actions(
        &plan,
        &[
            ("hybrid_vnet.lan", "create"),
            ("hybrid_custom_location.site", "create"),
            (CLUSTER, "create"),
            ("hybrid_nodepool.auto", "create"),
        ],
    )?;
    let planned = changes[CLUSTER].after_at("auto_scaler_profile");
    ensure!(
        planned["scan_interval"] == "20s"
            && planned["expander"] == "least-waste"
            && planned["scale_down_unneeded"] == "10m"
            && planned["max_unready_percentage"] == 45,
        "planned profile: {planned}"
    );
    // Applies, then a plan with no change and no drift note.
    wd.apply_current()?;
    let stored = api_profile(&host)?;
    ensure!(
        stored == planned,
        "the service stores what was planned: {stored} vs {planned}"
    );
    let state = wd.resource(CLUSTER)?;
    ensure!(
        state["auto_scaler_profile"] == planned,
        "state: {}",
        state["auto_scaler_profile"]
    );
    let vms = sim_vms(&host)?;

    // One setting changed: an in-place update of that setting only.
    wd.write_config(&config(&profile(
        "scan_interval = \"30s\"\n    expander = \"least-waste\"\n    \
         scale_down_utilization_threshold = \"0.6\"",
    )))?;
    let plan = wd.plan_json()?;
    let changes = expect_exact_actions(&plan, &[(CLUSTER, "update")])?;
    only_profile_changes(&changes[CLUSTER], &["scan_interval"])?;
    wd.apply_current()?;
    ensure!(
        api_profile(&host)?["scan_interval"] == "30s",
        "not stored: {}",
        api_profile(&host)?
    );
    ensure!(sim_vms(&host)? == vms, "a profile change moved VMs");

    // Bad settings fail the plan, naming attribute, value and rule.
    for (settings, needles) in [
        (
            "scan_interval = \"0s\"",
            &[
                "auto_scaler_profile.scan_interval",
                "\"0s\"",
                "between 1s and 10m",
            ][..],
        ),
        (
            "scale_down_unneeded = \"10 minutes\"",
            &[
                "auto_scaler_profile.scale_down_unneeded",
                "\"10 minutes\"",
                "is not a duration",
            ][..],
        ),
        (
            "scale_down_utilization_threshold = \"1.5\"",
            &[
                "auto_scaler_profile.scale_down_utilization_threshold",
                "\"1.5\"",
                "between 0 and 1",
            ][..],
        ),
        (
            "max_unready_percentage = 150",
            &[
                "auto_scaler_profile.max_unready_percentage",
                "150",
                "between 0 and 100",
            ][..],
        ),
        (
            "expander = \"fastest\"",
            &["auto_scaler_profile.expander", "fastest", "least-waste"][..],
        ),
    ] {
        wd.expect_plan_error(&config(&profile(settings)), needles)?;
    }

    // Import reads back the same state (the tuned profile included).
    wd.write_config(&config(&profile(
        "scan_interval = \"30s\"\n    expander = \"least-waste\"\n    \
         scale_down_utilization_threshold = \"0.6\"",
    )))?;
    wd.expect_quiet_plan()?;
    wd.import_verify(CLUSTER, "/clusters/c1", &["timeouts"])?;

    // Removing the block: back to every default, in place.
    wd.write_config(&config(""))?;
    let plan = wd.plan_json()?;
    let changes = expect_exact_actions(&plan, &[(CLUSTER, "update")])?;
    only_profile_changes(
        &changes[CLUSTER],
        &[
            "expander",
            "scale_down_utilization_threshold",
            "scan_interval",
        ],
    )?;
    wd.apply_current()?;
    let defaults = api_profile(&host)?;
    ensure!(
        defaults["scan_interval"] == "10s"
            && defaults["expander"] == "random"
            && defaults["scale_down_utilization_threshold"] == "0.5",
        "defaults: {defaults}"
    );
    ensure!(sim_vms(&host)? == vms, "a profile change moved VMs");
    Ok(())
}
