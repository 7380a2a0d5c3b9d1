//! Long-operation wake-up: `terraform apply` of one `hybrid_vnet` whose
//! simulated network configuration takes T (the sim's existing
//! `[timings] network_ms` knob), against the same apply on a zero-latency
//! sim, interleaved. The overhead the client adds on top of the
//! infrastructure is `slow − fast − T`: how late the provider notices that
//! the operation finished (the fixed cost of running Terraform at all is in
//! both sides and cancels out). `slow − T` is reported as well.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use hybrid_acceptance_tests::Host;

use super::terraform::Side;

/// Samples of both sides.
pub struct Samples {
    /// The simulated operation time T.
    pub t: Duration,
    /// Apply + destroy cycles on the zero-latency host: apply times.
    pub fast: Vec<Duration>,
    /// Apply times on the host whose network operations take T.
    pub slow: Vec<Duration>,
}

/// One vnet; its own prefix so it never collides with the other benchmarks.
pub fn config() -> String {
    r#"resource "hybrid_vnet" "wake" {
  name           = "bench-wake"
  address_prefix = "10.253.0.0/24"
  vm_ip_pool     = { start = "10.253.0.10", end = "10.253.0.99" }
  vip_pool       = { start = "10.253.0.200", end = "10.253.0.239" }
}
"#
    .into()
}

/// `rounds` interleaved applies (each followed by an untimed destroy) on
/// `fast` (zero-latency sim) and on a host started here with network
/// operations taking `t`; Terraform reads the CLI configuration `rc`.
pub fn measure(fast: &Host, rc: &Path, t: Duration, rounds: usize) -> Result<Samples> {
    let slow = Host::start_with_sim(&format!("[timings]\nnetwork_ms = {}\n", t.as_millis()))
        .context("starting a hybrid-host whose network operations take T")?;
    let wd_fast = Side::new(&config(), rc, &Side::host_env(fast))?;
    let wd_slow = Side::new(&config(), rc, &Side::host_env(&slow))?;
    let mut samples = Samples {
        t,
        fast: Vec::with_capacity(rounds),
        slow: Vec::with_capacity(rounds),
    };
    for _ in 0..rounds {
        samples
            .fast
            .push(apply_then_destroy(&wd_fast).context("apply, zero-latency sim")?);
        samples
            .slow
            .push(apply_then_destroy(&wd_slow).context("apply, slow sim")?);
    }
    Ok(samples)
}

fn apply_then_destroy(wd: &Side) -> Result<Duration> {
    let took = wd.apply()?;
    wd.destroy()?;
    Ok(took)
}
