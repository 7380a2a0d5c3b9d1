//! `cargo xtask test`: every check CI runs, in one command.
//!
//! Steps run in order; by default all of them run even after a failure so
//! one run reports everything that is wrong, and the command fails if any
//! step failed. `--fail-fast` stops at the first failure.
//!
//! The test steps get `HYBRID_TEST_NODE_IMAGE`, the directory of the node
//! image built by `cargo xtask node-image` (checked by one boot first).

use std::path::Path;
use std::process::Command;

use anyhow::{Result, bail};

use crate::util;

/// Arguments of `cargo xtask test`.
#[derive(clap::Args)]
pub struct Args {
    /// Stop at the first failing step.
    #[arg(long)]
    fail_fast: bool,
    /// Seconds to run the cty decoder fuzz target for (0 skips it).
    #[arg(long, default_value_t = 60)]
    fuzz_seconds: u64,
    /// Skip fmt and clippy (for a quick local loop).
    #[arg(long)]
    no_lint: bool,
}

struct Step {
    name: &'static str,
    cmd: Command,
}

/// Runs the steps and prints a summary.
pub fn run(args: &Args) -> Result<()> {
    let root = util::root();
    util::terraform_version()?;
    let mut steps = Vec::new();
    if !args.no_lint {
        let mut fmt = util::cargo();
        fmt.args(["fmt", "--all", "--", "--check"]);
        steps.push(Step {
            name: "cargo fmt --check",
            cmd: fmt,
        });
        let mut clippy = util::cargo();
        clippy.args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]);
        steps.push(Step {
            name: "cargo clippy -D warnings",
            cmd: clippy,
        });
    }
    // The structure's rules: cheap, and a broken layering is worth knowing
    // before the long steps.
    let mut layering = Command::new(std::env::current_exe()?);
    layering.arg("layering");
    steps.push(Step {
        name: "layering (no import cycles, HTTP only in host/src/http)",
        cmd: layering,
    });
    // Build the binaries the acceptance tests drive once, up front, so the
    // tests themselves need not run cargo.
    let mut build = util::cargo();
    build.args([
        "build",
        "-p",
        "hybrid-host",
        "-p",
        "terraform-provider-hybrid",
    ]);
    steps.push(Step {
        name: "cargo build (binaries under test)",
        cmd: build,
    });
    // The OpenAPI document against the real service: schemathesis from
    // the document, bounded (about a minute).
    let mut fuzz_api = Command::new(std::env::current_exe()?);
    fuzz_api.arg("fuzz-api");
    steps.push(Step {
        name: "API fuzzing (schemathesis against hybrid-host)",
        cmd: fuzz_api,
    });
    // The node image the agent's tests boot (a no-op when it is up to
    // date), then its own check: one boot under QEMU that must report in.
    let mut node_image = Command::new(std::env::current_exe()?);
    node_image.arg("node-image");
    steps.push(Step {
        name: "node image (cargo xtask node-image)",
        cmd: node_image,
    });
    let mut boot_check = Command::new(std::env::current_exe()?);
    boot_check.args(["node-image", "--boot-check"]);
    steps.push(Step {
        name: "node image boot check (one QEMU boot)",
        cmd: boot_check,
    });
    // Where the tests find it: the agent's image directory, holding
    // `default/`.
    let node_images = root.join(".build").join("node-image");
    let mut test = util::cargo();
    test.args(["test", "--workspace"])
        .env("HYBRID_ACC_SKIP_BUILD", "1")
        .env("HYBRID_TEST_NODE_IMAGE", &node_images);
    steps.push(Step {
        name: "cargo test --workspace (unit, integration, acceptance)",
        cmd: test,
    });
    // The host's API suite and the acceptance suite once more, on
    // PostgreSQL: one server for the whole step, a database per test's
    // host; the replica tests run only here.
    let mut on_postgres = util::cargo();
    on_postgres
        .args(["test", "-p", "hybrid-host", "-p", "hybrid-acceptance-tests"])
        .env("HYBRID_ACC_SKIP_BUILD", "1")
        .env("HYBRID_TEST_NODE_IMAGE", &node_images);
    steps.push(Step {
        name: "host and acceptance tests on PostgreSQL",
        cmd: on_postgres,
    });
    let fuzz = root
        .join("provider")
        .join("cty")
        .join("fuzz")
        .join("run.sh");
    if args.fuzz_seconds > 0 {
        if fuzz.is_file() {
            let mut cmd = Command::new("bash");
            cmd.arg(&fuzz).arg(args.fuzz_seconds.to_string());
            steps.push(Step {
                name: "cty decoder fuzzing",
                cmd,
            });
        } else {
            eprintln!("note: {} not found, skipping fuzzing", rel(&root, &fuzz));
        }
    }
    let mut tf_fmt = util::terraform();
    tf_fmt.args(["fmt", "-check", "-recursive", "-diff", "examples"]);
    steps.push(Step {
        name: "terraform fmt -check examples",
        cmd: tf_fmt,
    });

    let mut results: Vec<(&str, f64, bool)> = Vec::new();
    // Started when the first step needing it comes (and stopped at the end).
    let mut postgres: Option<hybrid_acceptance_tests::TestPostgres> = None;
    for mut step in steps {
        let t = util::step(step.name);
        step.cmd.current_dir(&root);
        if step.name.ends_with("on PostgreSQL") {
            if postgres.is_none() {
                match hybrid_acceptance_tests::TestPostgres::start(
                    &root.join(".build").join("test-postgres"),
                ) {
                    Ok(pg) => postgres = Some(pg),
                    Err(e) => {
                        eprintln!("FAILED: starting the test PostgreSQL: {e:#}");
                        results.push((step.name, t.elapsed().as_secs_f64(), false));
                        if args.fail_fast {
                            break;
                        }
                        continue;
                    }
                }
            }
            if let Some(pg) = &postgres {
                step.cmd.env("HYBRID_TEST_POSTGRES", pg.url());
            }
        }
        let ok = match util::run(&mut step.cmd) {
            Ok(()) => true,
            Err(e) => {
                eprintln!("FAILED: {e:#}");
                false
            }
        };
        results.push((step.name, t.elapsed().as_secs_f64(), ok));
        if !ok && args.fail_fast {
            break;
        }
    }

    eprintln!("\nSummary:");
    for (name, secs, ok) in &results {
        eprintln!(
            "  {:<6} {name} ({secs:.0}s)",
            if *ok { "ok" } else { "FAILED" }
        );
    }
    let failed: Vec<&str> = results.iter().filter(|r| !r.2).map(|r| r.0).collect();
    if !failed.is_empty() {
        bail!("{} step(s) failed: {}", failed.len(), failed.join(", "));
    }
    Ok(())
}

fn rel(root: &Path, p: &Path) -> String {
    p.strip_prefix(root).unwrap_or(p).display().to_string()
}
