//! Plan-based review: a reviewer must be able to trust what a plan of the
//! quickstart says. The quickstart (`examples/quickstart`, with the modules
//! it uses) is applied once; then each single-input change is planned with
//! `terraform plan -out` and `terraform show -json`, and the planned actions
//! must be exactly the expected ones — update in place vs replace, which
//! attributes change, which are "known after apply" — with every other
//! resource a no-op. Between steps the original inputs plan no changes and
//! report nothing changed outside of Terraform. The scale step is also
//! applied, to show its plan was truthful.

use std::fs;
use std::path::{Path, PathBuf};

use hybrid_acceptance_tests::plan::{
    ResourceChange, copy_tree, describe_plan, expect_exact_actions, expect_quiet,
};
use hybrid_acceptance_tests::{Error, Host, Mode, Result, Workdir, ensure};
use serde_json::{Value, json};

/// Where the quickstart sits in the copy, relative to the workdir; the
/// repository layout is kept so `../../modules/...` sources resolve.
const QUICKSTART: &str = "examples/quickstart";
/// Terraform loads `*.auto.tfvars.json` by itself: each step's inputs.
const INPUTS: &str = "review.auto.tfvars.json";
const PLAN: &str = "review.tfplan";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `terraform ARGS` in the quickstart (the workdir's configuration
/// directory), failing unless it exits 0.
fn tf(wd: &Workdir, args: &[&str]) -> Result<String> {
    Ok(wd.terraform_ok(args)?.stdout)
}

/// Writes the inputs file for the next plan or apply.
fn set_inputs(wd: &Workdir, inputs: &Value) -> Result<()> {
    let path = wd.dir().join(QUICKSTART).join(INPUTS);
    fs::write(&path, inputs.to_string())
        .map_err(|e| Error::Check(format!("writing {}: {e}", path.display())))
}

/// Plans `inputs` into a file and returns `terraform show -json` of it.
fn plan_with(wd: &Workdir, inputs: &Value) -> Result<Value> {
    set_inputs(wd, inputs)?;
    tf(wd, &["plan", "-input=false", &format!("-out={PLAN}")])?;
    let text = tf(wd, &["show", "-json", PLAN])?;
    serde_json::from_str(&text).map_err(|e| Error::Check(format!("plan JSON: {e}: {text}")))
}

/// Fails unless `inputs` plan no change to any resource and report nothing
/// changed outside of Terraform.
fn expect_empty_plan(wd: &Workdir, inputs: &Value, after: &str) -> Result<()> {
    let plan = plan_with(wd, inputs)?;
    expect_exact_actions(&plan, &[])
        .and_then(|_| expect_quiet(&plan))
        .map_err(|e| Error::Check(format!("after {after}, the original inputs: {e}")))?;
    Ok(())
}

/// The managed resources in the state: (address, type, index key, values).
fn state_resources(wd: &Workdir) -> Result<Vec<(String, String, Value, Value)>> {
    let out = tf(wd, &["show", "-json"])?;
    let show: Value =
        serde_json::from_str(&out).map_err(|e| Error::Check(format!("state JSON: {e}: {out}")))?;
    fn walk(module: &Value, out: &mut Vec<(String, String, Value, Value)>) {
        for r in module["resources"].as_array().into_iter().flatten() {
            if r["mode"] == "managed" {
                out.push((
                    r["address"].as_str().unwrap_or_default().to_string(),
                    r["type"].as_str().unwrap_or_default().to_string(),
                    r.get("index").cloned().unwrap_or(Value::Null),
                    r["values"].clone(),
                ));
            }
        }
        for m in module["child_modules"].as_array().into_iter().flatten() {
            walk(m, out);
        }
    }
    let mut all = Vec::new();
    walk(&show["values"]["root_module"], &mut all);
    Ok(all)
}

/// The quickstart's addresses, found in the state by type and key so the
/// test does not depend on module names; each must exist exactly once.
struct Addresses {
    cluster: String,
    /// `hybrid_nodepool` address for a `node_pools` key, with the key
    /// replaced by `{key}`.
    pool_template: String,
    flux: String,
    all: Vec<String>,
}

impl Addresses {
    fn pool(&self, key: &str) -> String {
        self.pool_template.replace("{key}", key)
    }
}

fn addresses(wd: &Workdir) -> Result<Addresses> {
    let resources = state_resources(wd)?;
    let one = |what: &str, found: Vec<&String>| -> Result<String> {
        match found.as_slice() {
            [a] => Ok((*a).clone()),
            _ => Err(Error::Check(format!(
                "expected one {what} in the quickstart's state, found {found:?}"
            ))),
        }
    };
    let cluster = one(
        "hybrid_cluster",
        resources
            .iter()
            .filter(|r| r.1 == "hybrid_cluster")
            .map(|r| &r.0)
            .collect(),
    )?;
    let linux1 = one(
        "hybrid_nodepool keyed \"linux1\"",
        resources
            .iter()
            .filter(|r| r.1 == "hybrid_nodepool" && r.2 == "linux1")
            .map(|r| &r.0)
            .collect(),
    )?;
    let flux = one(
        "flux hybrid_extension",
        resources
            .iter()
            .filter(|r| r.1 == "hybrid_extension" && r.3["extension_type"] == "flux")
            .map(|r| &r.0)
            .collect(),
    )?;
    let pool_template = linux1.replace("[\"linux1\"]", "[\"{key}\"]");
    ensure!(
        pool_template.contains("{key}"),
        "pool address {linux1} is not keyed by for_each"
    );
    Ok(Addresses {
        cluster,
        pool_template,
        flux,
        all: resources.into_iter().map(|r| r.0).collect(),
    })
}

/// A Kubernetes version pair `(from, to)` where `to` is an allowed upgrade
/// of `from` to the next minor and both are supported and ready for Linux
/// and Windows (the quickstart has a pool of each); the newest such pair.
fn upgrade_pair(host: &Host) -> Result<(String, String)> {
    let resp = host.get("/v1/kubernetes-versions")?;
    ensure!(resp.status == 200, "catalogue: {}", resp.body);
    let items = resp
        .body
        .get("items")
        .and_then(Value::as_array)
        .or_else(|| resp.body.as_array())
        .cloned()
        .unwrap_or_default();
    let usable = |v: &Value| {
        let ready: Vec<&str> = v["ready_for"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        v["supported"] == true && ready.contains(&"linux") && ready.contains(&"windows")
    };
    let minor = |v: &str| v.split('.').nth(1).and_then(|m| m.parse::<u32>().ok());
    let mut pairs = Vec::new();
    for from in items.iter().filter(|v| usable(v)) {
        let Some(f) = from["version"].as_str() else {
            continue;
        };
        for to in from["upgrades"].as_array().into_iter().flatten() {
            let Some(t) = to.as_str() else { continue };
            let target = items.iter().find(|v| v["version"] == t);
            if target.is_some_and(usable) && minor(t) > minor(f) {
                pairs.push((f.to_string(), t.to_string()));
            }
        }
    }
    pairs
        .pop()
        .ok_or_else(|| Error::Check(format!("no minor upgrade in the catalogue: {}", resp.body)))
}

/// The quickstart's inputs: its defaults, with the version pinned.
fn inputs(version: &str, pools: Value, plugin: &str) -> Value {
    json!({
        "kubernetes_version": version,
        "network_plugin": plugin,
        "node_pools": pools,
        "gitops_enabled": true,
    })
}

fn default_pools() -> Value {
    json!({
        "linux1": {"os_type": "linux", "node_count": 2},
        "win1": {"os_type": "windows", "node_count": 1},
    })
}

fn change<'a>(
    changes: &'a std::collections::BTreeMap<String, ResourceChange>,
    address: &str,
) -> Result<&'a ResourceChange> {
    changes
        .get(address)
        .ok_or_else(|| Error::Check(format!("{address} not in the plan's changes")))
}

/// Fails unless `got` (paths) equals `want`, naming the step and resource.
fn expect_paths(
    step: &str,
    c: &ResourceChange,
    kind: &str,
    got: &[String],
    want: &[&str],
) -> Result<()> {
    ensure!(
        got == want,
        "{step}: {} {kind} paths {got:?}, expected {want:?}\n  {}",
        c.address,
        c.describe()
    );
    Ok(())
}

/// The applied quickstart: its host, workdir, original inputs, the
/// Kubernetes version pair for the upgrade step, and its addresses.
struct Applied {
    // Kept alive for the test's duration; dropping it stops the host.
    _host: Host,
    wd: Workdir,
    base: Value,
    from: String,
    to: String,
    at: Addresses,
}

/// Copies the quickstart with the repository's modules (same relative
/// layout), installs the provider as a user does (filesystem mirror +
/// `terraform init`, which also installs the modules), applies it with its
/// default inputs and the version pinned to one that can be upgraded, and
/// checks that a re-plan is empty.
fn apply_quickstart() -> Result<Applied> {
    let host = Host::start()?;
    let mut wd = Workdir::with_mode(Some(&host), Mode::Mirror)?;
    copy_tree(&repo().join(QUICKSTART), &wd.dir().join(QUICKSTART))?;
    copy_tree(&repo().join("modules"), &wd.dir().join("modules"))?;
    wd.set_config_dir(QUICKSTART);
    let (from, to) = upgrade_pair(&host)?;
    let base = inputs(&from, default_pools(), "calico");
    set_inputs(&wd, &base)?;
    tf(&wd, &["init", "-input=false"])?;
    // The harness's apply: the plan right after it is quiet.
    wd.apply_current()?;
    let at = addresses(&wd)?;
    let win1 = at.pool("win1");
    ensure!(
        at.all.contains(&win1),
        "no {win1} in the state: {:?}",
        at.all
    );
    Ok(Applied {
        _host: host,
        wd,
        base,
        from,
        to,
        at,
    })
}

#[test]
fn quickstart_plans_say_exactly_what_changes() -> Result<()> {
    let Applied {
        _host,
        wd,
        base,
        from,
        to,
        at,
    } = apply_quickstart()?;
    let linux1 = at.pool("linux1");

    // Label: an in-place update of that pool only; nothing else it reports
    // becomes unknown (its nodes and version stay as they are).
    let mut pools = default_pools();
    pools["linux1"]["labels"] = json!({"tier": "web"});
    let plan = plan_with(&wd, &inputs(&from, pools, "calico"))?;
    let changes = expect_exact_actions(&plan, &[(linux1.as_str(), "update")])?;
    let c = change(&changes, &linux1)?;
    expect_paths("label", c, "changed", &c.changed_paths(), &["labels.tier"])?;
    expect_paths("label", c, "unknown", &c.unknown_paths(), &[])?;
    expect_empty_plan(&wd, &base, "the label step")?;

    // Add a pool: one create; the existing pools are untouched.
    let mut pools = default_pools();
    pools["linux2"] = json!({"os_type": "linux", "node_count": 1});
    let plan = plan_with(&wd, &inputs(&from, pools, "calico"))?;
    let linux2 = at.pool("linux2");
    let changes = expect_exact_actions(&plan, &[(linux2.as_str(), "create")])?;
    let c = change(&changes, &linux2)?;
    ensure!(
        c.after_at("name") == "linux2" && c.after_at("node_count") == 1,
        "add pool: {}",
        c.describe()
    );
    // What the service assigns is unknown; what the configuration and the
    // cluster fix is known at plan time.
    expect_paths(
        "add pool",
        c,
        "unknown",
        &c.unknown_paths(),
        &["id", "kubernetes_version", "nodes", "provisioning_state"],
    )?;
    expect_empty_plan(&wd, &base, "the add-pool step")?;

    // Rename a pool key (for_each): that pool goes and the new one comes;
    // the other pools are untouched (a `count` would shift them).
    let mut pools = default_pools();
    let renamed = pools["linux1"].take();
    if let Some(map) = pools.as_object_mut() {
        map.remove("linux1");
        map.insert("linux3".into(), renamed);
    }
    let plan = plan_with(&wd, &inputs(&from, pools, "calico"))?;
    let linux3 = at.pool("linux3");
    expect_exact_actions(
        &plan,
        &[(linux1.as_str(), "delete"), (linux3.as_str(), "create")],
    )?;
    expect_empty_plan(&wd, &base, "the rename step")?;

    // Kubernetes version: the cluster is upgraded in place. The version the
    // control plane runs, its VMs and the upgrade's progress are unknown
    // until the rolling upgrade is done. The upgrade replaces the pools'
    // nodes too, so the pools update in place with nothing sent: their
    // version, nodes and progress known after apply. Flux is not in the plan.
    let plan = plan_with(&wd, &inputs(&to, default_pools(), "calico"))?;
    let (linux1, win1) = (at.pool("linux1"), at.pool("win1"));
    let changes = expect_exact_actions(
        &plan,
        &[
            (at.cluster.as_str(), "update"),
            (linux1.as_str(), "update"),
            (win1.as_str(), "update"),
        ],
    )?;
    for pool in [&linux1, &win1] {
        let p = change(&changes, pool)?;
        expect_paths("upgrade", p, "changed", &p.changed_paths(), &[])?;
        expect_paths(
            "upgrade",
            p,
            "unknown",
            &p.unknown_paths(),
            &["kubernetes_version", "nodes", "upgrade"],
        )?;
    }
    let c = change(&changes, &at.cluster)?;
    expect_paths(
        "upgrade",
        c,
        "changed",
        &c.changed_paths(),
        &["kubernetes_version"],
    )?;
    ensure!(
        c.before_at("kubernetes_version") == from.as_str()
            && c.after_at("kubernetes_version") == to.as_str(),
        "upgrade: {}",
        c.describe()
    );
    expect_paths(
        "upgrade",
        c,
        "unknown",
        &c.unknown_paths(),
        &[
            "conditions",
            "control_plane_nodes",
            "current_kubernetes_version",
            "upgrade",
        ],
    )?;
    expect_empty_plan(&wd, &base, "the upgrade step")?;

    // Scale: an in-place update of that pool only, from 2 to 3 nodes; which
    // VMs it will have (and so the oldest node's version) is unknown.
    let mut pools = default_pools();
    pools["linux1"]["node_count"] = json!(3);
    let scaled = inputs(&from, pools, "calico");
    let plan = plan_with(&wd, &scaled)?;
    let changes = expect_exact_actions(&plan, &[(linux1.as_str(), "update")])?;
    let c = change(&changes, &linux1)?;
    ensure!(
        c.before_at("node_count") == 2 && c.after_at("node_count") == 3,
        "scale: {}",
        c.describe()
    );
    expect_paths("scale", c, "changed", &c.changed_paths(), &["node_count"])?;
    expect_paths(
        "scale",
        c,
        "unknown",
        &c.unknown_paths(),
        &["kubernetes_version", "nodes"],
    )?;

    // Apply the scale plan itself: it was truthful if the pool has three
    // nodes afterwards and nothing is left to do.
    // The harness's apply, with the plan right after it (of the same
    // inputs) quiet.
    wd.apply_with(&[PLAN])?;
    let nodes = state_resources(&wd)?
        .into_iter()
        .find(|r| r.0 == linux1)
        .map(|r| r.3["nodes"].as_array().map_or(0, Vec::len));
    ensure!(
        nodes == Some(3),
        "{linux1} after scaling has {nodes:?} nodes"
    );

    tf(&wd, &["destroy", "-auto-approve", "-input=false"])?;
    Ok(())
}

/// Changing the network plugin replaces the cluster; every pool and
/// extension whose `cluster_id`/`target_id` is the cluster's id must be
/// planned for replacement too (the new cluster's id is unknown), or the
/// plan hides that the apply destroys them with the old cluster.
#[test]
fn quickstart_network_plugin_change_replaces_the_cluster_and_its_dependents() -> Result<()> {
    let Applied {
        _host: host,
        wd,
        base,
        from,
        at,
        ..
    } = apply_quickstart()?;
    let linux1 = at.pool("linux1");
    let win1 = at.pool("win1");
    // Network plugin: fixed once the cluster exists, so the cluster is
    // replaced because of `network.plugin`, and everything whose
    // `cluster_id`/`target_id` is the cluster's id goes with it.
    let plan = plan_with(&wd, &inputs(&from, default_pools(), "flannel"))?;
    let changes = expect_exact_actions(
        &plan,
        &[
            (at.cluster.as_str(), "replace"),
            (linux1.as_str(), "replace"),
            (win1.as_str(), "replace"),
            (at.flux.as_str(), "replace"),
        ],
    )?;
    let c = change(&changes, &at.cluster)?;
    ensure!(
        c.replace_paths == ["network.plugin"] && c.actions == ["delete", "create"],
        "network plugin: {}",
        c.describe()
    );
    ensure!(
        c.after_at("network.plugin") == "flannel",
        "network plugin: {}",
        c.describe()
    );
    for (dependent, attribute) in [
        (&linux1, "cluster_id"),
        (&win1, "cluster_id"),
        (&at.flux, "target_id"),
    ] {
        let d = change(&changes, dependent)?;
        ensure!(
            d.replace_paths == [attribute] && d.actions == ["delete", "create"],
            "network plugin, dependent {dependent}: {}\n  plan:\n    {}",
            d.describe(),
            describe_plan(&plan)
        );
    }
    expect_empty_plan(&wd, &base, "the network-plugin step")?;

    // Apply it: the plan was truthful if, in one apply, the new cluster has
    // both pools and Flux again, and nothing is left to do.
    let flannel = inputs(&from, default_pools(), "flannel");
    let plan = plan_with(&wd, &flannel)?;
    expect_exact_actions(
        &plan,
        &[
            (at.cluster.as_str(), "replace"),
            (linux1.as_str(), "replace"),
            (win1.as_str(), "replace"),
            (at.flux.as_str(), "replace"),
        ],
    )?;
    wd.apply_with(&[PLAN])?;
    for path in [
        "/v1/clusters/quickstart/nodepools/linux1",
        "/v1/clusters/quickstart/nodepools/win1",
        "/v1/clusters/quickstart/extensions/flux",
    ] {
        let resp = host.get(path)?;
        ensure!(
            resp.status == 200,
            "{path} after replacing the cluster: {} {}",
            resp.status,
            resp.body
        );
    }
    let cluster = host.get("/v1/clusters/quickstart")?;
    ensure!(
        cluster.body.pointer("/network/plugin") == Some(&json!("flannel")),
        "cluster after the apply: {}",
        cluster.body
    );
    Ok(())
}
