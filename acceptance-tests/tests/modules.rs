//! The reusable modules under `modules/`: each one's own `terraform test`
//! files (plan-only runs and apply runs, each apply run followed by a plan
//! that must be quiet: see `module_test`) against a real host, `terraform
//! validate` and `terraform fmt`, its README's inputs/outputs tables (which
//! must list exactly the module's variables and outputs), and — through a
//! root module using both — that pools and extensions keyed by name plan
//! only the changes asked for.
//!
//! `HYBRID_UPDATE_MODULE_DOCS=1` rewrites the README tables instead of
//! failing on a difference: there is no terraform-docs here, so this test is
//! the generator.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use hybrid_acceptance_tests::module_test;
use hybrid_acceptance_tests::plan::{copy_tree, expect_exact_actions};
use hybrid_acceptance_tests::{Error, Host, Mode, Result, TfOutput, Workdir, ensure};
use serde_json::Value;

/// Extensions install at once; VM timings are zero by default.
const FAST: &str = "[extensions]\ninstall_ms = 0\nupgrade_ms = 0\ndelete_ms = 0\n";

const UPDATE_DOCS_ENV: &str = "HYBRID_UPDATE_MODULE_DOCS";
const DOCS_BEGIN: &str = "<!-- BEGIN_TF_DOCS -->";
const DOCS_END: &str = "<!-- END_TF_DOCS -->";

fn modules_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../modules")
}

fn read(path: &Path) -> Result<String> {
    fs::read_to_string(path).map_err(|e| Error::Check(format!("reading {}: {e}", path.display())))
}

/// A workdir with `modules/` copied in as the repository holds it (the
/// cluster tests use `../site`). The mirror mode, because `terraform test`
/// needs `terraform init`, which refuses a dev-overridden provider.
fn modules_workdir(host: &Host) -> Result<Workdir> {
    let wd = Workdir::with_mode(Some(host), Mode::Mirror)?;
    copy_tree(&modules_dir(), &wd.dir().join("modules"))?;
    Ok(wd)
}

/// `terraform -chdir=modules/<module> ARGS`.
fn in_module(wd: &Workdir, module: &str, args: &[&str]) -> Result<TfOutput> {
    let chdir = format!("-chdir=modules/{module}");
    let mut all = vec![chdir.as_str()];
    all.extend_from_slice(args);
    wd.terraform(&all)
}

fn in_module_ok(wd: &Workdir, module: &str, args: &[&str]) -> Result<TfOutput> {
    let out = in_module(wd, module, args)?;
    ensure!(
        out.code == Some(0),
        "`{}` in modules/{module} exited with {:?}:\n{}",
        out.command,
        out.code,
        out.combined()
    );
    Ok(out)
}

/// How many `run` blocks the module's test files hold, so a test file that
/// silently stops running some of them is noticed.
fn run_blocks(module: &str) -> Result<usize> {
    let dir = modules_dir().join(module).join("tests");
    let mut n = 0;
    for entry in fs::read_dir(&dir).map_err(|e| Error::Check(format!("{}: {e}", dir.display())))? {
        let path = entry
            .map_err(|e| Error::Check(format!("{}: {e}", dir.display())))?
            .path();
        if path.to_string_lossy().ends_with(".tftest.hcl") {
            n += read(&path)?
                .lines()
                .filter(|l| l.starts_with("run \""))
                .count();
        }
    }
    Ok(n)
}

/// Nothing the module tests created is left in the service: `terraform
/// test` destroys what its apply runs created, and a module whose destroy
/// order is wrong (e.g. a vnet before its clusters) would leave it behind.
fn expect_service_empty(host: &Host) -> Result<()> {
    for path in [
        "/v1/clusters",
        "/v1/vnets",
        "/v1/custom-locations",
        "/v1/management-host/extensions",
    ] {
        let resp = host.get(path)?;
        ensure!(
            resp.status == 200 && resp.body["items"].as_array().is_some_and(Vec::is_empty),
            "after `terraform test`, GET {path} still lists {}",
            resp.body
        );
    }
    Ok(())
}

/// `init`, `validate`, `fmt -check`, then `terraform test`: every run block
/// passes, the plan right after each apply run is quiet, and the service is
/// left empty.
fn terraform_test(module: &str) -> Result<()> {
    let host = Host::start_with_sim(FAST)?;
    let wd = modules_workdir(&host)?;
    in_module_ok(&wd, module, &["init", "-input=false"])?;
    in_module_ok(&wd, module, &["validate"])?;
    in_module_ok(&wd, module, &["fmt", "-check", "-recursive", "-diff"])?;

    let runs = run_blocks(module)?;
    ensure!(runs > 0, "modules/{module}/tests has no run blocks");
    let report = module_test::terraform_test(&wd, &format!("modules/{module}"))?;
    ensure!(
        report.runs == runs
            && report.quiet_plans > 0
            && report.passed == report.runs + report.quiet_plans,
        "`terraform test` in modules/{module}: {runs} run blocks, but {report:?}"
    );
    expect_service_empty(&host)?;
    check_readme(&wd, module)
}

#[test]
fn site_module_terraform_test() -> Result<()> {
    terraform_test("site")
}

#[test]
fn cluster_module_terraform_test() -> Result<()> {
    terraform_test("cluster")
}

// ---------------------------------------------------------------------------
// README tables

/// Values for a module's required variables, so that it can be planned to
/// read its configuration (`terraform show -json`): names, descriptions,
/// defaults and sensitivity as Terraform itself understands them.
fn plan_vars(module: &str) -> &'static [&'static str] {
    match module {
        "site" => &[
            "name=docs",
            "address_prefix=10.0.0.0/24",
            "vm_ip_pool={start=\"10.0.0.10\",end=\"10.0.0.20\"}",
            "vip_pool={start=\"10.0.0.200\",end=\"10.0.0.210\"}",
        ],
        "cluster" => &[
            "name=docs",
            "custom_location_id=/custom-locations/docs",
            "vnet_id=/vnets/docs",
        ],
        _ => &[],
    }
}

/// The module's configuration as Terraform reads it:
/// `configuration.root_module` of a saved plan.
fn module_configuration(wd: &Workdir, module: &str) -> Result<Value> {
    let mut args = vec!["plan", "-input=false", "-refresh=false", "-out=docs.tfplan"];
    let vars: Vec<String> = plan_vars(module)
        .iter()
        .map(|v| format!("-var={v}"))
        .collect();
    args.extend(vars.iter().map(String::as_str));
    in_module_ok(wd, module, &args)?;
    let out = in_module_ok(wd, module, &["show", "-json", "docs.tfplan"])?;
    let plan: Value = serde_json::from_str(&out.stdout).map_err(|source| Error::Json {
        what: format!("terraform show -json of modules/{module}"),
        text: out.stdout.clone(),
        source,
    })?;
    Ok(plan["configuration"]["root_module"].clone())
}

/// An attribute's expression in a `variable` block, as written (`type`,
/// `default`), by variable name. Terraform's JSON has no types and expands
/// defaults with every optional attribute, so these come from the source:
/// `terraform fmt` puts a block's attributes at two spaces, and an
/// expression runs until its brackets close.
fn variable_attribute(tf: &str, attribute: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut current: Option<String> = None;
    let mut lines = tf.lines();
    while let Some(line) = lines.next() {
        if let Some(rest) = line.strip_prefix("variable \"") {
            current = rest.split('"').next().map(String::from);
            continue;
        }
        if line == "}" {
            current = None;
            continue;
        }
        let Some(name) = &current else { continue };
        let Some(rest) = line
            .strip_prefix("  ")
            .and_then(|l| l.strip_prefix(attribute))
        else {
            continue;
        };
        let Some(expr) = rest.trim_start().strip_prefix('=') else {
            continue;
        };
        let mut parts = vec![expr.trim().to_string()];
        let mut depth = bracket_depth(expr);
        while depth > 0 {
            let Some(next) = lines.next() else { break };
            depth += bracket_depth(next);
            parts.push(next.trim().to_string());
        }
        out.insert(name.clone(), join_expression(&parts));
    }
    out
}

/// Opening minus closing brackets in `line`, outside string literals.
fn bracket_depth(line: &str) -> i32 {
    let mut depth = 0;
    let mut in_string = false;
    let mut escaped = false;
    for c in line.chars() {
        if in_string {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '(' | '{' | '[' => depth += 1,
            ')' | '}' | ']' => depth -= 1,
            _ => {}
        }
    }
    depth
}

/// A multi-line expression on one line: attributes of an object become
/// comma-separated, and `fmt`'s alignment spaces collapse.
fn join_expression(parts: &[String]) -> String {
    let mut s = String::new();
    for part in parts {
        if s.is_empty() {
            s.push_str(part);
            continue;
        }
        let opens = s.ends_with(['(', '{', '[']);
        let closes = part.starts_with([')', '}', ']']);
        s.push_str(if opens || closes { " " } else { ", " });
        s.push_str(part);
    }
    s.split(' ')
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

fn cell(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace('|', "\\|")
}

fn code(text: &str) -> String {
    format!("`{}`", cell(text))
}

/// The README's generated part: an inputs table (required first, then by
/// name) and an outputs table, from the module's configuration.
fn readme_tables(config: &Value, variables_tf: &str) -> Result<String> {
    let types = variable_attribute(variables_tf, "type");
    let defaults = variable_attribute(variables_tf, "default");
    let vars = config["variables"]
        .as_object()
        .ok_or_else(|| Error::Check(format!("no variables in {config}")))?;
    let mut rows: Vec<(bool, &String, String)> = Vec::new();
    for (name, v) in vars {
        let required = v.get("default").is_none();
        ensure!(
            required != defaults.contains_key(name),
            "variable {name:?}: Terraform and variables.tf disagree on whether it has a default"
        );
        let ty = types.get(name).ok_or_else(|| {
            Error::Check(format!("variable {name:?} has no `type` in variables.tf"))
        })?;
        let mut description = v["description"].as_str().unwrap_or("").to_string();
        ensure!(
            !description.is_empty(),
            "variable {name:?} has no description"
        );
        if v["sensitive"] == true {
            description.push_str(" (sensitive)");
        }
        let default = defaults.get(name).map_or("n/a".to_string(), |d| code(d));
        let row = format!(
            "| `{name}` | {} | {} | {default} | {} |",
            cell(&description),
            code(ty),
            if required { "yes" } else { "no" }
        );
        rows.push((!required, name, row));
    }
    rows.sort();
    let mut s = String::from(
        "## Inputs\n\n| Name | Description | Type | Default | Required |\n|------|-------------|------|---------|:--------:|\n",
    );
    for (_, _, row) in rows {
        s.push_str(&row);
        s.push('\n');
    }
    s.push_str("\n## Outputs\n\n| Name | Description |\n|------|-------------|\n");
    let outputs = config["outputs"]
        .as_object()
        .ok_or_else(|| Error::Check(format!("no outputs in {config}")))?;
    for (name, o) in outputs {
        let description = o["description"].as_str().unwrap_or("");
        ensure!(
            !description.is_empty(),
            "output {name:?} has no description"
        );
        let sensitive = if o["sensitive"] == true {
            " (sensitive)"
        } else {
            ""
        };
        s.push_str(&format!(
            "| `{name}` | {}{sensitive} |\n",
            cell(description)
        ));
    }
    Ok(s)
}

/// Fails unless the README's generated part is what the module's variables
/// and outputs give now; with `HYBRID_UPDATE_MODULE_DOCS=1` rewrites it.
fn check_readme(wd: &Workdir, module: &str) -> Result<()> {
    let config = module_configuration(wd, module)?;
    let dir = modules_dir().join(module);
    let variables_tf = read(&dir.join("variables.tf"))?;
    let tables = readme_tables(&config, &variables_tf)?;
    let readme_path = dir.join("README.md");
    let readme = read(&readme_path)?;
    let (Some(begin), Some(end)) = (readme.find(DOCS_BEGIN), readme.find(DOCS_END)) else {
        return Err(Error::Check(format!(
            "{} lacks the {DOCS_BEGIN} … {DOCS_END} markers",
            readme_path.display()
        )));
    };
    let current = readme[begin + DOCS_BEGIN.len()..end].trim();
    if current == tables.trim() {
        return Ok(());
    }
    if std::env::var_os(UPDATE_DOCS_ENV).is_some() {
        let updated = format!(
            "{}{DOCS_BEGIN}\n{}\n{}",
            &readme[..begin],
            tables.trim(),
            &readme[end..]
        );
        fs::write(&readme_path, updated)
            .map_err(|e| Error::Check(format!("writing {}: {e}", readme_path.display())))?;
        return Ok(());
    }
    Err(Error::Check(format!(
        "{} does not list exactly the module's inputs and outputs; regenerate with \
         `{UPDATE_DOCS_ENV}=1 cargo test -p hybrid-acceptance-tests --test modules`.\n\
         --- expected ---\n{tables}\n--- found ---\n{current}",
        readme_path.display()
    )))
}

#[test]
fn variable_attributes_parse_multiline_expressions() {
    let tf = r#"
variable "pools" {
  description = "x"
  type = map(object({
    os_type    = optional(string, "li(nux")
    auto_scaling = optional(object({
      min_count = number
    }))
  }))
  default = {
    linux1 = {}
  }

  validation {
    type = "not this one"
  }
}

variable "plain" {
  type    = string
  default = null
}
"#;
    let types = variable_attribute(tf, "type");
    assert_eq!(
        types["pools"],
        "map(object({ os_type = optional(string, \"li(nux\"), auto_scaling = optional(object({ min_count = number })) }))"
    );
    assert_eq!(types["plain"], "string");
    let defaults = variable_attribute(tf, "default");
    assert_eq!(defaults["pools"], "{ linux1 = {} }");
    assert_eq!(defaults["plain"], "null");
    assert_eq!(types.len(), 2);
}

// ---------------------------------------------------------------------------
// The modules from a root module, as users call them

fn root_config(pools: &str, gitops: bool) -> String {
    format!(
        r#"
variable "git_password" {{
  type      = string
  sensitive = true
  ephemeral = true
  default   = "root-secret-never-in-state"
}}

module "site" {{
  source = "./modules/site"

  name           = "rs"
  address_prefix = "10.60.0.0/24"
  gateway        = "10.60.0.1"
  vm_ip_pool     = {{ start = "10.60.0.10", end = "10.60.0.59" }}
  vip_pool       = {{ start = "10.60.0.200", end = "10.60.0.209" }}
}}

module "cluster" {{
  source = "./modules/cluster"

  name               = "rs"
  custom_location_id = module.site.custom_location_id
  vnet_id            = module.site.vnet_id
  node_pools         = {{ {pools} }}
  extensions = {{
    gatekeeper = {{ extension_type = "policy", configuration_settings = {{ auditInterval = "60" }} }}
  }}
  gitops = {{
    enabled                    = {gitops}
    protected_settings_version = "1"
  }}
  protected_settings = {{
    flux = {{ httpsUser = "flux", httpsPassword = var.git_password }}
  }}
}}

output "endpoint" {{
  value = module.cluster.endpoint
}}

output "nodes" {{
  value = module.cluster.nodes
}}

output "kubernetes_version" {{
  value = module.cluster.kubernetes_version
}}
"#
    )
}

const POOL: &str = "module.cluster.hybrid_nodepool.this";

/// A catalogue whose newest version is not ready for Windows, as the
/// built-in one; `extra` adds versions after it.
fn catalogue(extra: &str) -> String {
    format!(
        "{FAST}{}{extra}",
        r#"
[[kubernetes_versions]]
version = "1.32.3"

[[kubernetes_versions]]
version = "1.33.1"

[[kubernetes_versions]]
version = "1.33.2"
ready_for = ["linux"]
"#
    )
}

fn output_json(wd: &Workdir, name: &str) -> Result<Value> {
    let out = wd.terraform_ok(&["output", "-json", name])?;
    serde_json::from_str(&out.stdout).map_err(|source| Error::Json {
        what: format!("terraform output -json {name}"),
        text: out.stdout.clone(),
        source,
    })
}

/// Pools are keyed by name: reordering the map plans nothing; removing one,
/// adding one and scaling one plan exactly a delete, a create and an update,
/// and no other pool (or the cluster) is touched. Turning GitOps off deletes
/// Flux alone. A re-plan after apply is empty, and the Git password never
/// reaches the state. The default Kubernetes version is the newest one ready
/// for Windows too (there is a Windows pool), and a newer version appearing
/// in the catalogue later plans no upgrade.
#[test]
fn cluster_module_pools_keyed_by_name() -> Result<()> {
    let mut host = Host::start_with_sim(&catalogue(""))?;
    let wd = Workdir::with_mode(Some(&host), Mode::Mirror)?;
    copy_tree(&modules_dir(), &wd.dir().join("modules"))?;
    let pools = r#"linux1 = { node_count = 2 }, linux2 = {}, win1 = { os_type = "windows" }"#;
    wd.write_config(&root_config(pools, true))?;
    wd.init()?;
    wd.apply_current()?;
    let state = read(&wd.dir().join("terraform.tfstate"))?;
    ensure!(
        !state.contains("root-secret-never-in-state"),
        "the protected setting reached the state"
    );

    // The same pools in another order: nothing to do.
    let reordered = r#"win1 = { os_type = "windows" }, linux2 = {}, linux1 = { node_count = 2 }"#;
    wd.write_config(&root_config(reordered, true))?;
    wd.expect_no_changes()?;

    let changed = r#"win1 = { os_type = "windows" }, linux3 = {}, linux1 = { node_count = 3 }"#;
    wd.write_config(&root_config(changed, true))?;
    let plan = wd.plan_json()?;
    expect_exact_actions(
        &plan,
        &[
            (&format!("{POOL}[\"linux1\"]"), "update"),
            (&format!("{POOL}[\"linux2\"]"), "delete"),
            (&format!("{POOL}[\"linux3\"]"), "create"),
        ],
    )?;
    wd.apply_current()?;
    let nodes = output_json(&wd, "nodes")?;
    let count = |pool: &str| nodes[pool].as_array().map_or(0, Vec::len);
    ensure!(
        count("linux1") == 3
            && count("linux3") == 1
            && count("win1") == 1
            && nodes["linux2"].is_null(),
        "nodes after the change: {nodes}"
    );

    let version = output_json(&wd, "kubernetes_version")?;
    ensure!(
        version == "1.33.1",
        "with a Windows pool the default is the newest version ready for Windows, got {version}"
    );
    host.set_sim(Some(&catalogue(
        "\n[[kubernetes_versions]]\nversion = \"1.33.4\"\n",
    )))?;
    host.restart()?;
    let catalogue_now = host.get("/v1/kubernetes-versions")?.body;
    ensure!(
        catalogue_now.to_string().contains("\"1.33.4\""),
        "the restarted host does not offer 1.33.4: {catalogue_now}"
    );
    wd.expect_no_changes()?;

    wd.write_config(&root_config(changed, false))?;
    let plan = wd.plan_json()?;
    expect_exact_actions(
        &plan,
        &[("module.cluster.hybrid_extension.this[\"flux\"]", "delete")],
    )?;
    wd.apply_current()?;
    wd.destroy()?;
    expect_service_empty(&host)
}
