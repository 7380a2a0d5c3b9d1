//! Acceptance test of node image readiness per OS SKU with the real
//! `terraform`, our provider and a real `hybrid-host` whose sim catalogue
//! has 1.33.1 ready for `Windows2022` but not yet `Windows2019` (as AKS
//! hybrid releases them): `hybrid_kubernetes_versions` shows per-SKU
//! readiness; a `Windows2019` pool on a 1.33.1 cluster, and upgrading a
//! cluster with a `Windows2019` pool to 1.33.1, fail at plan time naming
//! the attribute, the version and the SKU and listing what is ready; a
//! `Windows2022` pool on 1.33.1 plans as a create, applies, and re-plans
//! with no changes and no drift.

use hybrid_acceptance_tests::plan::expect_exact_actions;
use hybrid_acceptance_tests::{Host, Result, Workdir, ensure};
use serde_json::{Value, json};

/// 1.32.5 is ready for every SKU; 1.33.1 for every SKU but Windows2019.
const SIM: &str = r#"
[[kubernetes_versions]]
version = "1.32.5"
[[kubernetes_versions]]
version = "1.33.1"
ready_for_skus = ["CBLMariner", "AzureLinux", "Windows2022"]
"#;

/// Cluster `new` on 1.33.1 and cluster `old` on `old_version` with a
/// Windows2019 pool, plus `extra` (HCL) and the catalogue's per-SKU
/// readiness as outputs.
fn config(old_version: &str, extra: &str) -> String {
    format!(
        r#"
resource "hybrid_vnet" "lan" {{
  name           = "lan"
  address_prefix = "10.0.0.0/24"
  gateway        = "10.0.0.1"
  vm_ip_pool     = {{ start = "10.0.0.10", end = "10.0.0.39" }}
  vip_pool       = {{ start = "10.0.0.200", end = "10.0.0.204" }}
}}

resource "hybrid_custom_location" "site" {{
  name      = "site"
  namespace = "site"
  host_id   = "/management-host"
}}

resource "hybrid_cluster" "new" {{
  name               = "new"
  custom_location_id = hybrid_custom_location.site.id
  vnet_id            = hybrid_vnet.lan.id
  kubernetes_version = "1.33.1"
}}

resource "hybrid_cluster" "old" {{
  name               = "old"
  custom_location_id = hybrid_custom_location.site.id
  vnet_id            = hybrid_vnet.lan.id
  kubernetes_version = "{old_version}"
}}

resource "hybrid_nodepool" "w19" {{
  cluster_id = hybrid_cluster.old.id
  name       = "w19"
  os_type    = "windows"
  os_sku     = "Windows2019"
}}

{extra}

data "hybrid_kubernetes_versions" "all" {{}}

output "skus_ready_for_1_33_1" {{
  value = one([for v in data.hybrid_kubernetes_versions.all.versions : v.ready_for_skus if v.version == "1.33.1"])
}}

output "os_types_ready_for_1_33_1" {{
  value = one([for v in data.hybrid_kubernetes_versions.all.versions : v.ready_for if v.version == "1.33.1"])
}}

output "ready_for_windows2019" {{
  value = [for v in data.hybrid_kubernetes_versions.all.versions : v.version if contains(v.ready_for_skus, "Windows2019")]
}}
"#
    )
}

/// A Windows pool of SKU `sku` on cluster `new`.
fn pool_on_new(name: &str, sku: &str) -> String {
    format!(
        r#"
resource "hybrid_nodepool" "{name}" {{
  cluster_id = hybrid_cluster.new.id
  name       = "{name}"
  os_type    = "windows"
  os_sku     = "{sku}"
}}
"#
    )
}

fn outputs(wd: &Workdir) -> Result<Value> {
    let out = wd.terraform_ok(&["output", "-json"])?;
    let all: Value = serde_json::from_str(&out.stdout)
        .map_err(|e| hybrid_acceptance_tests::Error::Check(format!("output -json: {e}")))?;
    Ok(json!({
        "skus": all["skus_ready_for_1_33_1"]["value"],
        "os_types": all["os_types_ready_for_1_33_1"]["value"],
        "win2019": all["ready_for_windows2019"]["value"],
    }))
}

#[test]
fn readiness_per_os_sku() -> Result<()> {
    let host = Host::start_with_sim(SIM)?;
    let wd = Workdir::new(&host)?;

    // The data source shows readiness per SKU (and per OS type: Windows'
    // default SKU, Windows2022, is ready), already at plan time.
    wd.write_config(&config("1.32.5", ""))?;
    let plan = wd.plan_json()?;
    expect_exact_actions(
        &plan,
        &[
            ("hybrid_vnet.lan", "create"),
            ("hybrid_custom_location.site", "create"),
            ("hybrid_cluster.new", "create"),
            ("hybrid_cluster.old", "create"),
            ("hybrid_nodepool.w19", "create"),
        ],
    )?;
    let planned = &plan["planned_values"]["outputs"];
    ensure!(
        planned["skus_ready_for_1_33_1"]["value"]
            == json!(["CBLMariner", "AzureLinux", "Windows2022"]),
        "planned outputs: {planned}"
    );
    wd.apply_current()?;
    let out = outputs(&wd)?;
    ensure!(
        out == json!({
            "skus": ["CBLMariner", "AzureLinux", "Windows2022"],
            "os_types": ["linux", "windows"],
            "win2019": ["1.32.5"],
        }),
        "outputs: {out}"
    );

    // A Windows2019 pool cannot join a 1.33.1 cluster: the error is on
    // os_sku and names the version and the SKU, and what is ready.
    let flat = wd
        .expect_plan_error(
            &config("1.32.5", &pool_on_new("win19", "Windows2019")),
            &[
                "os_sku \"Windows2019\": cluster new runs Kubernetes 1.33.1",
                "is not ready for windows/Windows2019 nodes (node pool win19)",
                "os SKUs ready for 1.33.1: CBLMariner, AzureLinux, Windows2022",
                "versions ready for os_sku Windows2019: 1.32.5",
            ],
        )?
        .flat();
    ensure!(
        flat.contains("hybrid_nodepool.win19") && flat.contains("os_sku"),
        "the error is at the pool's os_sku: {flat}"
    );

    // Upgrading the cluster whose pool is Windows2019 to 1.33.1 fails at
    // plan time too, on kubernetes_version.
    let out = wd.expect_plan_error(
        &config("1.33.1", ""),
        &[
            "kubernetes_version 1.33.1 is not ready for windows/Windows2019 nodes (node pool w19)",
            "os SKUs ready for 1.33.1: CBLMariner, AzureLinux, Windows2022",
            "versions ready for os_sku Windows2019: 1.32.5",
        ],
    )?;
    ensure!(
        out.flat().contains("hybrid_cluster.old"),
        "the error is at the old cluster: {}",
        out.flat()
    );

    // A ready combination: a Windows2022 pool on 1.33.1 is a plain create,
    // and the next plan is quiet (apply_current checks it).
    wd.write_config(&config("1.32.5", &pool_on_new("win22", "Windows2022")))?;
    let plan = wd.plan_json()?;
    expect_exact_actions(&plan, &[("hybrid_nodepool.win22", "create")])?;
    wd.apply_current()?;
    let pool = host.get("/v1/clusters/new/nodepools/win22")?;
    ensure!(
        pool.status == 200
            && pool.body["os_sku"] == "Windows2022"
            && pool.body["provisioning_state"] == "Succeeded",
        "pool: {} {}",
        pool.status,
        pool.body
    );
    Ok(())
}
