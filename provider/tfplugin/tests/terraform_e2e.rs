//! End to end with the real `terraform` binary: a `dev_overrides` CLI config
//! in a temp dir points Terraform at the echo provider, and
//! `terraform providers schema -json` must come back with its schema. This
//! exercises Terraform's own go-plugin client: cookie, version negotiation,
//! auto-mTLS with its P-521 certificate, the handshake line, GetProviderSchema,
//! hclog log parsing and controller Shutdown.

use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_tfplugin-echo-provider");

fn terraform_available() -> bool {
    Command::new("terraform")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn terraform_reads_the_schema_over_mtls() {
    if !terraform_available() {
        eprintln!("SKIP: terraform is not on PATH");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let bin_dir = dir.path().join("bin");
    let work = dir.path().join("work");
    std::fs::create_dir_all(&bin_dir).unwrap();
    std::fs::create_dir_all(&work).unwrap();
    std::os::unix::fs::symlink(Path::new(BIN), bin_dir.join("terraform-provider-hybrid")).unwrap();
    let rc = dir.path().join("cli.tfrc");
    std::fs::write(
        &rc,
        format!(
            "provider_installation {{\n  dev_overrides {{\n    \"hybridops/hybrid\" = \"{}\"\n  }}\n  direct {{}}\n}}\n",
            bin_dir.display()
        ),
    )
    .unwrap();
    std::fs::write(
        work.join("main.tf"),
        "terraform {\n  required_providers {\n    hybrid = { source = \"hybridops/hybrid\" }\n  }\n}\nprovider \"hybrid\" {}\n",
    )
    .unwrap();

    let out = Command::new("terraform")
        .args(["providers", "schema", "-json"])
        .current_dir(&work)
        .env("TF_CLI_CONFIG_FILE", &rc)
        .env("TF_LOG", "debug")
        .env("CHECKPOINT_DISABLE", "1")
        .env("TF_IN_AUTOMATION", "1")
        .env("HOME", dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "terraform failed:\n{stderr}");

    let schema: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let attr = &schema["provider_schemas"]["registry.terraform.io/hybridops/hybrid"]["provider"]["block"]
        ["attributes"]["greeting"];
    assert_eq!(attr["type"], "string", "{schema}");
    assert_eq!(attr["optional"], true);

    // Our hclog JSON lines were parsed by Terraform and re-logged at debug
    // under the plugin's logger name.
    assert!(
        stderr
            .lines()
            .any(|l| l.contains("[DEBUG] provider.terraform-provider-hybrid: schema requested")),
        "{stderr}"
    );
    // Terraform stopped the plugin through the controller.
    assert!(stderr.contains("controller Shutdown received"), "{stderr}");
    assert!(stderr.contains("plugin exited"), "{stderr}");
}
