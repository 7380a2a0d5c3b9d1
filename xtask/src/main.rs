//! Project automation, run as `cargo xtask <command>` (alias in
//! `.cargo/config.toml`), so a fresh machine needs only Rust and Terraform:
//!
//! - `quickstart`: build, start an embedded `hybrid-host` under `.build/`,
//!   install the provider in a local mirror, `terraform init` + `apply`
//!   `examples/quickstart/`, and leave the host running for the walkthrough;
//!   `--driver agents` (root) does it on real QEMU VMs with one local
//!   hybrid-agent in network namespaces (`examples/quickstart-real-hosts/`).
//! - `stop`: stop the quickstart host (and the agent, its VMs and namespaces).
//! - `test`: everything CI checks (fmt, clippy, all tests including the
//!   acceptance tests, the cty fuzz run, `terraform fmt` of the examples).
//! - `docs`: generate `docs/` from the provider schema, `examples/` and
//!   `templates/`; `--check` fails when the committed docs differ.
//! - `layering`: the structure's rules (no module import cycles; HTTP only
//!   in `host/src/http/`; the provider framework free of the product).
//! - `bench`: the benchmarks and their targets (docs/guides/performance.md),
//!   each reported as a ratio against a baseline measured in the same run.
//! - `fuzz-api`: schemathesis against a real `hybrid-host`, from the
//!   service's own OpenAPI document (bounded; part of `test`).
//! - `node-image`: build the small Linux test node image (Debian kernel,
//!   busybox, an /init keeping the guest contract) the agent's tests boot
//!   under QEMU; `--boot-check` boots it once and checks its report.

mod bench;
mod docs;
mod fuzz_api;
mod layering;
mod node_image;
mod quickstart;
mod test;
mod util;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "Hybrid project automation")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build, start a local hybrid-host, and apply examples/quickstart.
    Quickstart(quickstart::Args),
    /// Stop the hybrid-host started by `quickstart`.
    Stop,
    /// Run every check CI runs.
    Test(test::Args),
    /// Run the benchmarks (release builds) and print ratios to their baselines.
    Bench(bench::Args),
    /// Check the structure: no import cycles, HTTP only in host/src/http, framework free of the product.
    Layering {
        /// Check another checkout instead of this one.
        #[arg(long)]
        root: Option<std::path::PathBuf>,
    },
    /// Generate docs/ from the schema, examples/ and templates/ (--check: fail on drift).
    Docs(docs::Args),
    /// Build the test node image under .build/node-image (--boot-check: boot it once).
    NodeImage(node_image::Args),
    /// Fuzz the API from its OpenAPI document (schemathesis) against a real hybrid-host.
    FuzzApi(fuzz_api::Args),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Quickstart(args) => quickstart::run(&args),
        Command::Stop => quickstart::stop(),
        Command::Test(args) => test::run(&args),
        Command::Bench(args) => bench::run(&args),
        Command::Docs(args) => docs::run(&args),
        Command::Layering { root } => layering::run(root),
        Command::NodeImage(args) => node_image::run(&args),
        Command::FuzzApi(args) => fuzz_api::run(&args),
    }
}
