//! `terraform apply`, a no-op `plan` and `destroy` of N `hybrid_vnet`s
//! against N `terraform_data` (Terraform's built-in resource, so the
//! baseline is Terraform's own per-resource cost) in the same run.
//!
//! Both sides use the acceptance-test harness's [`Workdir`], so Terraform is
//! wired to our provider exactly as in the acceptance tests (dev_overrides,
//! no init). The phases alternate between the sides so that a machine that
//! gets busier during the run slows both.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use hybrid_acceptance_tests::{Host, Workdir};

/// Wall times of one side.
#[derive(Debug, Clone, Copy, Default)]
pub struct Times {
    pub apply: Duration,
    pub plan: Duration,
    pub destroy: Duration,
}

/// Wall times of both sides, one entry per round.
pub struct Samples {
    pub baseline: Vec<Times>,
    pub ours: Vec<Times>,
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

/// `rounds` times: applies, plans (must be empty) and destroys `n`
/// resources on each side. Each round ends with an empty state, so the
/// same working directories serve every round.
pub fn measure(host: &Host, n: usize, rounds: usize) -> Result<Samples> {
    if n > 256 * 50 {
        bail!(
            "--resources {n} is too many: at most 12800 vnets fit in 10.200.0.0/16 to 10.249.0.0/16"
        );
    }
    let base = Workdir::unconfigured().context("creating the terraform_data workdir")?;
    base.write_config(&baseline_config(n))?;
    let ours = Workdir::new(host).context("creating the hybrid_vnet workdir")?;
    ours.write_config(&hybrid_config(n))?;
    let mut samples = Samples {
        baseline: Vec::with_capacity(rounds),
        ours: Vec::with_capacity(rounds),
    };
    for _ in 0..rounds {
        let mut b = Times::default();
        let mut o = Times::default();
        b.apply = timed(|| base.apply_current().map(drop)).context("terraform_data apply")?;
        o.apply = timed(|| ours.apply_current().map(drop)).context("hybrid_vnet apply")?;
        let vnets = host.get("/v1/vnets")?;
        let count = vnets.body["items"].as_array().map_or(0, Vec::len);
        if count != n {
            bail!("after applying {n} hybrid_vnet resources the host lists {count} vnets");
        }

        b.plan =
            timed(|| base.expect_no_changes().map(drop)).context("terraform_data no-op plan")?;
        o.plan = timed(|| ours.expect_no_changes().map(drop))
            .context("hybrid_vnet no-op plan (a non-empty plan after apply is a provider bug)")?;

        b.destroy = timed(|| base.destroy().map(drop)).context("terraform_data destroy")?;
        o.destroy = timed(|| ours.destroy().map(drop)).context("hybrid_vnet destroy")?;
        samples.baseline.push(b);
        samples.ours.push(o);
    }
    Ok(samples)
}

fn timed<E>(f: impl FnOnce() -> Result<(), E>) -> Result<Duration, E> {
    let start = Instant::now();
    f()?;
    Ok(start.elapsed())
}
