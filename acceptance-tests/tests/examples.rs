//! Every example under `examples/` is applied against a real host, so none
//! can rot; the docs must embed the examples verbatim.

use std::fs;
use std::path::{Path, PathBuf};

use hybrid_acceptance_tests::{Host, Mode, Result, Workdir, attributes_diff, ensure};
use serde_json::json;

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

fn read(path: &Path) -> Result<String> {
    fs::read_to_string(path).map_err(|e| {
        hybrid_acceptance_tests::Error::Check(format!("reading {}: {e}", path.display()))
    })
}

/// The quickstart, installed the way a user installs the provider (a local
/// filesystem mirror + `terraform init`), as `cargo xtask quickstart` does.
#[test]
fn example_quickstart() -> Result<()> {
    let host = Host::start()?;
    let wd = Workdir::with_mode(Some(&host), Mode::Mirror)?;
    wd.copy_config_from(&examples().join("quickstart"))?;
    wd.init()?;
    wd.apply_current()?;
    wd.expect_no_changes()?;
    let show = wd.show_json()?;
    let outputs = &show["values"]["outputs"];
    ensure!(
        outputs["vnet_id"]["value"] == "/vnets/quickstart",
        "outputs: {outputs}"
    );
    ensure!(
        outputs["vm_ip_pool"]["value"]["size"] == 90,
        "outputs: {outputs}"
    );
    let api = host.get("/v1/vnets/quickstart")?;
    ensure!(
        api.status == 200,
        "quickstart vnet not in the API: {}",
        api.body
    );
    wd.destroy()?;
    ensure!(
        host.get("/v1/vnets/quickstart")?.status == 404,
        "vnet left after destroy"
    );
    Ok(())
}

/// `examples/resources/hybrid_vnet`: apply, empty re-plan, then the import
/// command of `import.sh` brings the same object back into state.
#[test]
fn example_resource_hybrid_vnet() -> Result<()> {
    let host = Host::start()?;
    let wd = Workdir::new(&host)?;
    let dir = examples().join("resources/hybrid_vnet");
    wd.copy_config_from(&dir)?;
    wd.apply_current()?;
    wd.expect_no_changes()?;

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
    let before = wd.resource(address)?;
    wd.state_rm(address)?;
    wd.terraform_ok(&args)?;
    let after = wd.resource(address)?;
    let diff = attributes_diff(&before, &after, &["timeouts"]);
    ensure!(diff.is_empty(), "import of {id} differs: {diff:?}");
    wd.destroy()?;
    Ok(())
}

/// `examples/data-sources/hybrid_vnet` reads a vnet created through the API.
#[test]
fn example_data_source_hybrid_vnet() -> Result<()> {
    let host = Host::start()?;
    let resp = host.put(
        "/v1/vnets/shared-lan",
        &json!({
            "address_prefix": "10.30.0.0/24",
            "vm_ip_pool": {"start": "10.30.0.10", "end": "10.30.0.99"},
            "vip_pool": {"start": "10.30.0.200", "end": "10.30.0.209"}
        }),
    )?;
    ensure!(
        (200..=202).contains(&resp.status),
        "PUT: {} {}",
        resp.status,
        resp.body
    );
    host.wait_operation(&resp)?;
    let wd = Workdir::new(&host)?;
    wd.copy_config_from(&examples().join("data-sources/hybrid_vnet"))?;
    wd.apply_current()?;
    let show = wd.show_json()?;
    ensure!(
        show["values"]["outputs"]["free_vips"]["value"] == 10,
        "outputs: {}",
        show["values"]["outputs"]
    );
    Ok(())
}

/// Each registry doc embeds its example files verbatim.
#[test]
fn docs_embed_examples() -> Result<()> {
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs");
    let pairs = [
        ("resources/hybrid_vnet/resource.tf", "resources/vnet.md"),
        ("resources/hybrid_vnet/import.sh", "resources/vnet.md"),
        (
            "data-sources/hybrid_vnet/data-source.tf",
            "data-sources/vnet.md",
        ),
    ];
    for (example, doc) in pairs {
        let example_text = read(&examples().join(example))?;
        let doc_text = read(&docs.join(doc))?;
        ensure!(
            doc_text.contains(example_text.trim()),
            "docs/{doc} does not embed examples/{example} verbatim; copy it in"
        );
        for heading in [
            "page_title:",
            "subcategory:",
            "description:",
            "## Example Usage",
            "## Schema",
        ] {
            ensure!(doc_text.contains(heading), "docs/{doc} lacks {heading:?}");
        }
    }
    Ok(())
}
