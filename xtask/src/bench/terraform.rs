//! `terraform plan` from empty, `apply`, a no-op `plan` and `destroy` of N `hybrid_vnet`s
//! against two baselines in the same run: N `terraform_data` (Terraform's
//! built-in resource, so the baseline is Terraform's own per-resource cost)
//! and N `hybrid_vnet` served by the floor provider (the same schema from
//! the provider's framework, no I/O: Terraform's cost for an external
//! provider, see `floor.rs`).
//!
//! Every side uses the acceptance-test harness's [`Workdir`], so Terraform is
//! wired to our provider exactly as in the acceptance tests (dev_overrides,
//! no init). The phases alternate between the sides so that a machine that
//! gets busier during the run slows all three.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use hybrid_acceptance_tests::{Host, Workdir};

use super::floor::Floor;
use super::rss;

/// Wall times of one side in one round.
#[derive(Debug, Clone, Copy, Default)]
pub struct Times {
    /// `terraform plan` from an empty state.
    pub plan: Duration,
    pub apply: Duration,
    /// `terraform plan` after the apply (refresh included): no changes.
    pub noop_plan: Duration,
    pub destroy: Duration,
}

/// Wall times of both sides for one N, one entry per round.
pub struct Samples {
    pub n: usize,
    pub baseline: Vec<Times>,
    /// The floor provider: the same `hybrid_vnet` configuration, no I/O.
    pub floor: Vec<Times>,
    pub ours: Vec<Times>,
    /// Peak `VmHWM` of any provider process during the first round's
    /// no-op plan, in KiB (0 when none was seen).
    pub provider_peak_rss_kib: u64,
}

/// N `hybrid_vnet`s, each with its own /24 (10.200+i/256.i%256.0/24) and
/// both pools, from one `count`.
pub fn hybrid_config(n: usize) -> String {
    format!(
        r#"locals {{
  # One /24 per vnet: 10.<200 + i/256>.<i%256>.0/24.
  nets = [for i in range({n}) : "10.${{200 + floor(i / 256)}}.${{i % 256}}"]
}}

resource "hybrid_vnet" "bench" {{
  count          = {n}
  name           = "bench-${{count.index}}"
  address_prefix = "${{local.nets[count.index]}}.0/24"
  vm_ip_pool     = {{ start = "${{local.nets[count.index]}}.10", end = "${{local.nets[count.index]}}.99" }}
  vip_pool       = {{ start = "${{local.nets[count.index]}}.200", end = "${{local.nets[count.index]}}.239" }}
  tags           = {{ bench = "true" }}
}}
"#
    )
}

/// N `terraform_data`s holding the same values. The empty
/// `required_providers` keeps the harness from declaring (and Terraform
/// from starting) our provider on this side.
pub fn baseline_config(n: usize) -> String {
    format!(
        r#"terraform {{
  required_providers {{}}
}}

locals {{
  nets = [for i in range({n}) : "10.${{200 + floor(i / 256)}}.${{i % 256}}"]
}}

resource "terraform_data" "bench" {{
  count = {n}
  input = {{
    name           = "bench-${{count.index}}"
    address_prefix = "${{local.nets[count.index]}}.0/24"
    vm_ip_pool     = {{ start = "${{local.nets[count.index]}}.10", end = "${{local.nets[count.index]}}.99" }}
    vip_pool       = {{ start = "${{local.nets[count.index]}}.200", end = "${{local.nets[count.index]}}.239" }}
    tags           = {{ bench = "true" }}
  }}
}}
"#
    )
}

/// For every `(n, rounds)` of `sizes`, `rounds` times: plans from empty, applies,
/// plans again (must be empty) and destroys on each side, alternating the
/// sides phase by phase (A B C A B C ...). Each round ends with an empty
/// state, so the same working directories serve every round. The provider's
/// peak RSS is watched during the no-op plans of the first round.
pub fn measure(
    host: &Host,
    provider_bin: &Path,
    floor: &Floor,
    sizes: &[(usize, usize)],
) -> Result<Vec<Samples>> {
    let mut dirs = Vec::new();
    let mut all = Vec::new();
    let most = sizes.iter().map(|&(_, r)| r).max().unwrap_or(0);
    for &(n, rounds) in sizes {
        if n > 256 * 50 {
            bail!(
                "{n} resources is too many: at most 12800 vnets fit in 10.200.0.0/16 to 10.249.0.0/16"
            );
        }
        let base = Workdir::unconfigured().context("creating the terraform_data workdir")?;
        base.write_config(&baseline_config(n))?;
        let low = floor.workdir()?;
        low.write_config(&hybrid_config(n))?;
        let ours = Workdir::new(host).context("creating the hybrid_vnet workdir")?;
        ours.write_config(&hybrid_config(n))?;
        dirs.push((base, low, ours));
        all.push(Samples {
            n,
            baseline: Vec::with_capacity(rounds),
            floor: Vec::with_capacity(rounds),
            ours: Vec::with_capacity(rounds),
            provider_peak_rss_kib: 0,
        });
    }
    for round in 0..most {
        for (((base, low, ours), samples), &(n, rounds)) in
            dirs.iter().zip(all.iter_mut()).zip(sizes)
        {
            if round >= rounds {
                continue;
            }
            eprintln!("    round {}/{rounds}, N = {n}", round + 1);
            let mut b = Times::default();
            let mut f = Times::default();
            let mut o = Times::default();
            b.plan = timed(|| plan_with_changes(base)).context("terraform_data plan")?;
            f.plan = timed(|| plan_with_changes(low)).context("floor provider plan")?;
            o.plan = timed(|| plan_with_changes(ours)).context("hybrid_vnet plan")?;
            b.apply = timed(|| base.apply_current().map(drop)).context("terraform_data apply")?;
            f.apply = timed(|| low.apply_current().map(drop)).context("floor provider apply")?;
            o.apply = timed(|| ours.apply_current().map(drop)).context("hybrid_vnet apply")?;
            let vnets = host.get("/v1/vnets")?;
            let count = vnets.body["items"].as_array().map_or(0, Vec::len);
            if count != n {
                bail!("after applying {n} hybrid_vnet resources the host lists {count} vnets");
            }

            b.noop_plan = timed(|| base.expect_no_changes().map(drop))
                .context("terraform_data no-op plan")?;
            f.noop_plan =
                timed(|| low.expect_no_changes().map(drop)).context("floor provider no-op plan")?;
            let watch = (round == 0).then(|| rss::Watch::start(provider_bin));
            o.noop_plan = timed(|| ours.expect_no_changes().map(drop)).context(
                "hybrid_vnet no-op plan (a non-empty plan after apply is a provider bug)",
            )?;
            if let Some(w) = watch {
                samples.provider_peak_rss_kib = w.stop().into_values().max().unwrap_or(0);
            }

            b.destroy = timed(|| base.destroy().map(drop)).context("terraform_data destroy")?;
            f.destroy = timed(|| low.destroy().map(drop)).context("floor provider destroy")?;
            o.destroy = timed(|| ours.destroy().map(drop)).context("hybrid_vnet destroy")?;
            samples.baseline.push(b);
            samples.floor.push(f);
            samples.ours.push(o);
        }
    }
    Ok(all)
}

/// `terraform plan` that must propose changes (from an empty state).
fn plan_with_changes(wd: &Workdir) -> Result<()> {
    let (code, out) = wd.plan_detailed()?;
    if code != 2 {
        bail!(
            "terraform plan from an empty state exited {code}, not 2 (changes):\n{}",
            out.combined()
        );
    }
    Ok(())
}

fn timed<E>(f: impl FnOnce() -> Result<(), E>) -> Result<Duration, E> {
    let start = Instant::now();
    f()?;
    Ok(start.elapsed())
}
