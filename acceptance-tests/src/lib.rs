//! Acceptance-test harness: drives the real `terraform` binary against a real
//! `hybrid-host` process, in the spirit of HashiCorp's terraform-plugin-testing.
//!
//! A test owns one [`Host`] (a `hybrid-host serve` process on a free loopback
//! port with its data in a temp dir) and one or more [`Workdir`]s (a temp dir
//! with its own Terraform CLI configuration pointing at our provider binary).
//! Nothing is shared between tests, so they run in parallel.
//!
//! ```no_run
//! use hybrid_acceptance_tests::{Host, Workdir};
//! # fn main() -> hybrid_acceptance_tests::Result<()> {
//! let host = Host::start()?;
//! let wd = Workdir::new(&host)?;
//! wd.apply(r#"
//! resource "hybrid_vnet" "a" {
//!   name           = "a"
//!   address_prefix = "10.0.0.0/24"
//!   vm_ip_pool     = { start = "10.0.0.10", end = "10.0.0.99" }
//! }
//! "#)?;
//! wd.expect_no_changes()?;
//! # Ok(()) }
//! ```
//!
//! **Quiet plans.** Every apply through [`Workdir::apply`] and its siblings
//! is followed by a plan that must change nothing and report nothing
//! "changed outside of Terraform" (the JSON plan's `resource_drift` is
//! empty); [`module_test::terraform_test`] does the same after every apply
//! run of a module's `terraform test` files. A test that leaves changes on
//! purpose opts out explicitly: [`Workdir::apply_leaving_changes`], or an
//! [`module_test::OPT_OUT`] comment above the run.
//!
//! Every step returns [`Result`]; a failing step's error carries the command,
//! its exit code and its full output, so a red test explains itself. Set
//! `HYBRID_ACC_KEEP=1` to keep every temp dir (their paths are printed; they
//! are also kept when a test panics), and `HYBRID_ACC_TF_LOG=debug` to write
//! Terraform's log, provider lines included, to `terraform.log` in each.

mod binaries;
mod error;
mod host;
pub mod module_test;
pub mod netns;
pub mod plan;
mod postgres;
mod state;
mod workdir;

pub use binaries::{Binaries, binaries};
pub use error::{Error, Result};
pub use host::{ApiResponse, Host};
pub use postgres::TestPostgres;
pub use state::{attributes_diff, find_resource};
pub use workdir::{Mode, TfOutput, Workdir, install_in_mirror, terraform_platform};

/// The provider's source address as users write it in `required_providers`.
pub const PROVIDER_SOURCE: &str = "hybridops/hybrid";

/// Shared fixtures made through the API, for tests that read existing
/// objects (the data-source examples, `ip_plan` of a real vnet): vnet
/// `shared-lan` (10.30.0.0/24), custom location `site`, and cluster `prod-a`
/// with the 2-node Linux pool `linux1`.
pub fn shared_lan_fixtures(host: &Host) -> Result<()> {
    use serde_json::json;
    host.apply(
        "/v1/vnets/shared-lan",
        &json!({
            "address_prefix": "10.30.0.0/24",
            "vm_ip_pool": {"start": "10.30.0.10", "end": "10.30.0.99"},
            "vip_pool": {"start": "10.30.0.200", "end": "10.30.0.209"}
        }),
    )?;
    host.apply(
        "/v1/custom-locations/site",
        &json!({"namespace": "site", "host_id": "/management-host"}),
    )?;
    host.apply(
        "/v1/clusters/prod-a",
        &json!({"custom_location_id": "/custom-locations/site", "vnet_id": "/vnets/shared-lan"}),
    )?;
    host.apply(
        "/v1/clusters/prod-a/nodepools/linux1",
        &json!({"os_type": "linux", "node_count": 2}),
    )?;
    Ok(())
}

/// Writes `contents` to `path`, naming the path in the error.
pub(crate) fn write(path: &std::path::Path, contents: &str) -> Result<()> {
    std::fs::write(path, contents).map_err(|e| Error::io("writing", path, e))
}
