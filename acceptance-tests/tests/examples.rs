//! Every example under `examples/` is applied against a real host, so none
//! can rot; the docs must embed the examples verbatim.

use std::fs;
use std::path::{Path, PathBuf};

use hybrid_acceptance_tests::plan::copy_tree;
use hybrid_acceptance_tests::{Host, Mode, Result, Workdir, attributes_diff, ensure};

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

fn read(path: &Path) -> Result<String> {
    fs::read_to_string(path).map_err(|e| {
        hybrid_acceptance_tests::Error::Check(format!("reading {}: {e}", path.display()))
    })
}

/// The quickstart, installed the way a user installs the provider (a local
/// filesystem mirror + `terraform init`), as `cargo xtask quickstart` does:
/// the first plan after the apply is quiet (no changes, and no "Objects
/// have changed outside of Terraform" for the site's vnet although the
/// cluster took addresses from it), and the outputs the summary prints
/// (endpoint, every node with its IP and host, Flux's state) agree with
/// the service.
#[test]
fn example_quickstart() -> Result<()> {
    let host = Host::start()?;
    let mut wd = Workdir::with_mode(Some(&host), Mode::Mirror)?;
    // The repository layout is kept so the `../../modules/...` sources resolve.
    copy_tree(
        &examples().join("quickstart"),
        &wd.dir().join("examples/quickstart"),
    )?;
    copy_tree(&examples().join("../modules"), &wd.dir().join("modules"))?;
    wd.set_config_dir("examples/quickstart");
    let tf = |args: &[&str]| wd.terraform_ok(args);
    wd.init()?;
    wd.apply_current()?;
    // The vnet's usage is still visible, from the data source the site
    // module reads (afresh on every plan or refresh; during this first apply
    // it was read before the cluster took its addresses): the cluster's 3
    // nodes, its control-plane VM and surge address, and its API-server VIP.
    wd.apply_with(&["-refresh-only"])?;
    let usage = wd.resource("module.site.data.hybrid_vnet.this")?;
    let vnet = host.get("/v1/vnets/quickstart")?.body;
    ensure!(
        usage["vm_ip_pool"]["used"] == vnet["status"]["vm_ip_pool"]["used"]
            && usage["vm_ip_pool"]["used"].as_u64().is_some_and(|n| n >= 5)
            && usage["vip_pool"]["used"] == 1,
        "the site's usage as the data source read it: {usage}; the service: {vnet}"
    );
    let state = wd.resource("module.site.hybrid_vnet.this")?;
    ensure!(
        state["vm_ip_pool"].get("used").is_none(),
        "usage in the vnet's managed state: {state}"
    );

    let text = tf(&["output", "-json"])?.stdout;
    let outputs: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| hybrid_acceptance_tests::Error::Check(format!("output -json: {e}: {text}")))?;
    let out = |name: &str| outputs[name]["value"].clone();
    ensure!(
        out("cluster_id") == "/clusters/quickstart"
            && out("cluster_endpoint") == "https://10.20.0.200:6443",
        "cluster outputs: {outputs}"
    );
    let cluster = host.get("/v1/clusters/quickstart")?;
    ensure!(
        cluster.status == 200
            && cluster.body["status"]["current_kubernetes_version"] == out("kubernetes_version"),
        "kubernetes_version output vs the service: {} / {}",
        out("kubernetes_version"),
        cluster.body
    );

    // Every node of both pools, with the IP and host the service reports.
    let known_hosts = host.get("/v1/hosts")?.body.to_string();
    let mut ips = Vec::new();
    for (pool, os, count) in [("linux1", "linux", 2), ("win1", "windows", 1)] {
        let p = out("node_pools")[pool].clone();
        ensure!(
            p["os_type"] == os && p["id"] == format!("/clusters/quickstart/nodepools/{pool}"),
            "node_pools.{pool}: {p}"
        );
        let nodes = p["nodes"].as_array().cloned().unwrap_or_default();
        ensure!(
            nodes.len() == count,
            "node_pools.{pool}: {count} nodes expected: {p}"
        );
        let api = host.get(&format!("/v1/clusters/quickstart/nodepools/{pool}"))?;
        ensure!(api.status == 200, "pool {pool} in the API: {}", api.body);
        let api_nodes = api.body["status"]["nodes"].to_string();
        for node in &nodes {
            let (name, ip, on) = (
                node["name"].as_str().unwrap_or_default(),
                node["ip"].as_str().unwrap_or_default(),
                node["host"].as_str().unwrap_or_default(),
            );
            ensure!(
                ip.starts_with("10.20.0.") && !on.is_empty() && !name.is_empty(),
                "node of {pool} without name, vnet address or host: {node}"
            );
            ensure!(
                api_nodes.contains(&format!("\"{ip}\""))
                    && api_nodes.contains(&format!("\"{name}\""))
                    && known_hosts.contains(&format!("\"{on}\"")),
                "node {node} is not what the service reports: {api_nodes}"
            );
            ips.push(ip.to_string());
        }
    }
    ips.sort();
    ips.dedup();
    ensure!(ips.len() == 3, "every node has its own address: {ips:?}");

    let flux = out("flux");
    ensure!(
        flux["id"] == "/clusters/quickstart/extensions/flux"
            && flux["provisioning_state"] == "Succeeded"
            && flux["version"].is_string(),
        "flux output: {flux}"
    );
    let api = host.get("/v1/clusters/quickstart/extensions/flux")?;
    ensure!(
        api.body["provisioning_state"] == "Succeeded",
        "flux in the API: {}",
        api.body
    );

    tf(&["destroy", "-auto-approve", "-input=false"])?;
    for path in ["/v1/clusters/quickstart", "/v1/vnets/quickstart"] {
        ensure!(host.get(path)?.status == 404, "{path} left after destroy");
    }
    Ok(())
}

/// `examples/resources/<type>`: apply, empty re-plan, then the import
/// command of `import.sh` brings the same object back into state; destroy.
fn resource_example(kind: &str) -> Result<()> {
    resource_example_except(kind, &[])
}

/// [`resource_example`] for a resource with configuration-only attributes
/// besides `timeouts` (`config_only`), which an import cannot know either.
fn resource_example_except(kind: &str, config_only: &[&str]) -> Result<()> {
    let ignored: Vec<&str> = ["timeouts"].iter().chain(config_only).copied().collect();
    let host = Host::start()?;
    let wd = Workdir::new(&host)?;
    let dir = examples().join("resources").join(kind);
    wd.copy_config_from(&dir)?;
    wd.apply_current()?;

    let import_sh = read(&dir.join("import.sh"))?;
    let line = import_sh
        .lines()
        .find(|l| l.trim_start().starts_with("terraform import"))
        .ok_or_else(|| hybrid_acceptance_tests::Error::Check("import.sh has no import".into()))?;
    let args: Vec<&str> = line.split_whitespace().skip(1).collect();
    ensure!(
        args.len() == 3,
        "import.sh line {line:?} is not `terraform import ADDR ID`"
    );
    let (address, id) = (args[1], args[2]);
    ensure!(
        address.starts_with(kind),
        "import.sh imports {address}, not a {kind}"
    );
    let before = wd.resource(address)?;
    wd.state_rm(address)?;
    wd.terraform_ok(&args)?;
    let after = wd.resource(address)?;
    let diff = attributes_diff(&before, &after, &ignored);
    ensure!(diff.is_empty(), "import of {id} differs: {diff:?}");
    // `timeouts` lives only in configuration, so the first plan after an
    // import may add it back; nothing else may change.
    let plan = wd.plan_json()?;
    let changes = plan["resource_changes"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for change in changes {
        let actions = change["change"]["actions"].to_string();
        if actions.contains("no-op") || actions.contains("read") {
            continue;
        }
        ensure!(actions == r#"["update"]"#, "after import: {change}");
        let mut before = change["change"]["before"].clone();
        let mut after = change["change"]["after"].clone();
        // Sending a config-only attribute to the service (an update) may
        // leave what the service reports unknown until the apply.
        let mut skip = ignored.clone();
        if !config_only.is_empty()
            && let Some(unknown) = change["change"]["after_unknown"].as_object()
        {
            skip.extend(
                unknown
                    .iter()
                    .filter(|(_, v)| **v == true)
                    .map(|(k, _)| k.as_str()),
            );
        }
        for v in [&mut before, &mut after] {
            if let Some(o) = v.as_object_mut() {
                for name in &skip {
                    o.remove(*name);
                }
            }
        }
        ensure!(
            before == after,
            "after import, more than timeouts changes: {change}"
        );
    }
    wd.destroy()?;
    Ok(())
}

#[test]
fn example_resource_hybrid_vnet() -> Result<()> {
    resource_example("hybrid_vnet")
}

#[test]
fn example_resource_hybrid_custom_location() -> Result<()> {
    resource_example("hybrid_custom_location")
}

#[test]
fn example_resource_hybrid_cluster() -> Result<()> {
    resource_example("hybrid_cluster")
}

#[test]
fn example_resource_hybrid_nodepool() -> Result<()> {
    resource_example("hybrid_nodepool")
}

/// Protected settings cannot be imported (the service never returns them),
/// so their version attribute is configuration only too.
#[test]
fn example_resource_hybrid_extension() -> Result<()> {
    resource_example_except(
        "hybrid_extension",
        &["configuration_protected_settings_version"],
    )
}

/// Every example directory has a test above (resources) or below (data sources).
#[test]
fn every_example_is_exercised() -> Result<()> {
    let this = read(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/examples.rs"))?;
    for kind in [
        "resources",
        "data-sources",
        "ephemeral-resources",
        "functions",
    ] {
        let entries = fs::read_dir(examples().join(kind)).map_err(|e| {
            hybrid_acceptance_tests::Error::Check(format!("reading examples/{kind}: {e}"))
        })?;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            ensure!(
                this.contains(&format!("\"{name}\"")),
                "examples/{kind}/{name} is not exercised by tests/examples.rs"
            );
        }
    }
    Ok(())
}

/// `examples/data-sources/<type>` applies against the fixtures.
fn data_source_example(kind: &str) -> Result<serde_json::Value> {
    let host = Host::start()?;
    hybrid_acceptance_tests::shared_lan_fixtures(&host)?;
    let wd = Workdir::new(&host)?;
    wd.copy_config_from(&examples().join("data-sources").join(kind))?;
    wd.apply_current()?;
    let show = wd.show_json()?;
    Ok(show["values"]["outputs"].clone())
}

#[test]
fn example_data_source_hybrid_vnet() -> Result<()> {
    let outputs = data_source_example("hybrid_vnet")?;
    ensure!(outputs["free_vips"]["value"] == 9, "outputs: {outputs}");
    Ok(())
}

#[test]
fn example_data_source_hybrid_management_host() -> Result<()> {
    let outputs = data_source_example("hybrid_management_host")?;
    ensure!(
        outputs.to_string().contains("/management-host"),
        "outputs: {outputs}"
    );
    Ok(())
}

#[test]
fn example_data_source_hybrid_kubernetes_versions() -> Result<()> {
    let outputs = data_source_example("hybrid_kubernetes_versions")?;
    ensure!(outputs.to_string().contains("1.33.1"), "outputs: {outputs}");
    Ok(())
}

#[test]
fn example_data_source_hybrid_vm_sizes() -> Result<()> {
    let outputs = data_source_example("hybrid_vm_sizes")?;
    ensure!(
        outputs.to_string().contains("Standard_"),
        "outputs: {outputs}"
    );
    Ok(())
}

#[test]
fn example_data_source_hybrid_hosts() -> Result<()> {
    let outputs = data_source_example("hybrid_hosts")?;
    ensure!(
        outputs.to_string().contains("host-1") || outputs.to_string().contains("prod-a"),
        "outputs: {outputs}"
    );
    Ok(())
}

#[test]
fn example_data_source_hybrid_cluster() -> Result<()> {
    let outputs = data_source_example("hybrid_cluster")?;
    ensure!(
        outputs["api_server"]["value"] == "https://10.30.0.200:6443",
        "outputs: {outputs}"
    );
    // An RFC 3339 time in UTC, e.g. 2027-12-03T19:40:00Z.
    ensure!(
        outputs["certificates_not_after"]["value"]
            .as_str()
            .is_some_and(|t| t.len() == 20 && t.as_bytes()[10] == b'T' && t.ends_with('Z')),
        "outputs: {outputs}"
    );
    Ok(())
}

#[test]
fn example_data_source_hybrid_nodepools() -> Result<()> {
    let outputs = data_source_example("hybrid_nodepools")?;
    ensure!(outputs.to_string().contains("linux1"), "outputs: {outputs}");
    Ok(())
}

#[test]
fn example_data_source_hybrid_extension_types() -> Result<()> {
    let outputs = data_source_example("hybrid_extension_types")?;
    ensure!(
        outputs["flux_stable_latest"]["value"] == "1.15.0",
        "outputs: {outputs}"
    );
    let cluster_types = outputs["cluster_extension_types"]["value"].to_string();
    ensure!(
        cluster_types.contains("\"flux\"") && !cluster_types.contains("hybrid-operator"),
        "outputs: {outputs}"
    );
    ensure!(
        outputs["flux_setting_keys"]["value"]
            .to_string()
            .contains("syncInterval"),
        "outputs: {outputs}"
    );
    Ok(())
}

/// `examples/ephemeral-resources/hybrid_kubeconfig`: kubectl reads the
/// kubeconfig the provisioner hands it (its redacted view is the example's
/// only output), and the kubeconfig is nowhere in the state.
#[test]
fn example_ephemeral_hybrid_kubeconfig() -> Result<()> {
    let host = Host::start()?;
    let wd = Workdir::new(&host)?;
    wd.copy_config_from(
        &examples()
            .join("ephemeral-resources")
            .join("hybrid_kubeconfig"),
    )?;
    wd.apply_current()?;
    let view_path = wd.dir().join("kubectl-view.json");
    let view: serde_json::Value = serde_json::from_str(&read(&view_path)?).map_err(|e| {
        hybrid_acceptance_tests::Error::Check(format!("{}: {e}", view_path.display()))
    })?;
    ensure!(
        view["current-context"] == "lab"
            && view["clusters"][0]["cluster"]["server"] == "https://10.20.0.200:6443"
            && view["users"][0]["name"] == "lab-hybrid-admin",
        "kubectl's view: {view}"
    );
    let state = read(&wd.dir().join("terraform.tfstate"))?;
    ensure!(
        !state.contains("PRIVATE KEY") && !state.contains("client-key-data"),
        "the kubeconfig reached the state"
    );
    let audit = host.get("/v1/audit?target=/clusters/lab")?;
    ensure!(
        audit.body["items"]
            .as_array()
            .is_some_and(|a| !a.is_empty()),
        "issuances are audited: {}",
        audit.body
    );
    wd.destroy()?;
    Ok(())
}

/// `examples/functions/ip_plan`: the plan of the example's two clusters on
/// its /24, with no provider configuration (a function needs none).
#[test]
fn example_function_ip_plan() -> Result<()> {
    let wd = Workdir::unconfigured()?;
    wd.copy_config_from(&examples().join("functions").join("ip_plan"))?;
    let out = wd.apply_current()?;
    // The check block passed: no warning about addresses.
    ensure!(
        !out.contains("addresses_fit"),
        "the check failed: {}",
        out.combined()
    );
    let show = wd.show_json()?;
    let plan = &show["values"]["outputs"]["ip_plan"]["value"];
    ensure!(
        plan["fits"] == true
            && plan["vm_ip_pool"]["needed"] == 15
            && plan["vm_ip_pool"]["remaining"] == 75
            && plan["vip_pool"]["needed"] == 2
            && plan["clusters"]["prod"]["vm_addresses"] == 11
            && plan["clusters"]["dev"]["vm_addresses"] == 4,
        "ip_plan: {plan}"
    );
    Ok(())
}

/// Each registry doc embeds its example files verbatim.
#[test]
fn docs_embed_examples() -> Result<()> {
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs");
    // examples/<kind>/hybrid_<name>/<file> is embedded in docs/<kind>/<name>.md.
    let mut pairs: Vec<(String, String)> = Vec::new();
    for (kind, files) in [
        ("resources", &["resource.tf", "import.sh"][..]),
        ("data-sources", &["data-source.tf"][..]),
        ("ephemeral-resources", &["ephemeral-resource.tf"][..]),
        ("functions", &["function.tf"][..]),
    ] {
        let entries = fs::read_dir(examples().join(kind)).map_err(|e| {
            hybrid_acceptance_tests::Error::Check(format!("reading examples/{kind}: {e}"))
        })?;
        for entry in entries.flatten() {
            let dir = entry.file_name().to_string_lossy().to_string();
            let name = dir.trim_start_matches("hybrid_");
            for file in files {
                pairs.push((format!("{kind}/{dir}/{file}"), format!("{kind}/{name}.md")));
            }
        }
    }
    for (example, doc) in pairs {
        let example_text = read(&examples().join(&example))?;
        let doc_text = read(&docs.join(&doc))?;
        ensure!(
            doc_text.contains(example_text.trim()),
            "docs/{doc} does not embed examples/{example} verbatim; copy it in"
        );
        // A function's page has its signature where others have a schema.
        let schema = if doc.starts_with("functions/") {
            "## Signature"
        } else {
            "## Schema"
        };
        for heading in [
            "page_title:",
            "subcategory:",
            "description:",
            "## Example Usage",
            schema,
        ] {
            ensure!(doc_text.contains(heading), "docs/{doc} lacks {heading:?}");
        }
    }
    Ok(())
}
