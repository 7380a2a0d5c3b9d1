//! Acceptance tests for the provider function `provider::hybrid::ip_plan`:
//! the real `terraform` binary calls it on the worked examples of
//! docs/functions/ip_plan.md, and the numbers are asserted exactly.

use hybrid_acceptance_tests::{Host, Result, Workdir, ensure};
use serde_json::{Value, json};

/// Applies `config` (outputs only) and returns the outputs' values.
fn outputs(wd: &Workdir, config: &str) -> Result<Value> {
    wd.apply(config)?;
    let show = wd.show_json()?;
    let outputs = show["values"]["outputs"]
        .as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| (k.clone(), v["value"].clone()))
                .collect::<serde_json::Map<_, _>>()
        })
        .unwrap_or_default();
    Ok(Value::Object(outputs))
}

fn pool(size: u64, used: u64, needed: u64, remaining: i64) -> Value {
    json!({
        "size": size,
        "used": used,
        "available": size - used,
        "needed": needed,
        "remaining": remaining,
        "fits": remaining >= 0,
    })
}

fn cluster(control_plane: u64, load_balancers: u64, pool_nodes: u64) -> Value {
    let nodes = control_plane + load_balancers + pool_nodes;
    json!({
        "control_plane": control_plane,
        "load_balancers": load_balancers,
        "pool_nodes": pool_nodes,
        "nodes": nodes,
        "surge": 1,
        "vips": 1,
        "vm_addresses": nodes + 1,
        "vip_addresses": 1,
    })
}

/// The worked examples, with no provider configuration at all: a function
/// never needs the service.
#[test]
fn ip_plan_worked_examples() -> Result<()> {
    let wd = Workdir::unconfigured()?;
    let out = outputs(
        &wd,
        r#"
locals {
  lan = {
    address_prefix = "10.0.0.0/24"
    gateway        = "10.0.0.1"
    vm_ip_pool     = { start = "10.0.0.10", end = "10.0.0.99" }
    vip_pool       = { start = "10.0.0.200", end = "10.0.0.209" }
  }
}

output "fits" {
  value = provider::hybrid::ip_plan(local.lan, {
    prod = {
      control_plane_count = 3
      load_balancer_count = 1
      node_pools          = { linux1 = 4, win1 = 2 }
    }
    dev = { node_pools = { linux1 = 2 } }
  })
}

# The same clusters as a list, pools given as hybrid_nodepool-like settings.
output "as_list" {
  value = provider::hybrid::ip_plan(local.lan, [
    {
      name                = "prod"
      control_plane_count = 3
      load_balancer_count = 1
      node_pools = {
        linux1 = { node_count = 4, vm_size = "Standard_A4_v2", os_type = "linux" }
        win1   = { node_count = 1, auto_scaling = { min_count = 1, max_count = 2 } }
      }
    },
    { name = "dev", node_pools = { linux1 = 2 } },
  ])
}

output "tight" {
  value = provider::hybrid::ip_plan(
    {
      address_prefix = "10.1.0.0/24"
      vm_ip_pool     = { start = "10.1.0.10", end = "10.1.0.19" }
      vip_pool       = { start = "10.1.0.200", end = "10.1.0.200" }
    },
    {
      prod = { control_plane_count = 3, node_pools = { linux1 = 5 } }
      dev  = { node_pools = { linux1 = 1 } }
    }
  )
}

output "dhcp" {
  value = provider::hybrid::ip_plan(
    {
      address_prefix       = "10.2.0.0/24"
      ip_allocation_method = "dhcp"
      gateway              = "10.2.0.1"
      vip_pool             = { start = "10.2.0.200", end = "10.2.0.209" }
    },
    { edge = { load_balancer_count = 2 } }
  )
}
"#,
    )?;

    let fits = &out["fits"];
    let want = json!({
        "fits": true,
        "vm_ip_pool": pool(90, 0, 15, 75),
        "vip_pool": pool(10, 0, 2, 8),
        "clusters": {"prod": cluster(3, 1, 6), "dev": cluster(1, 0, 2)},
        "problems": [],
    });
    ensure!(*fits == want, "fits:\n{fits:#}\nwanted:\n{want:#}");
    ensure!(
        out["as_list"] == want,
        "the list form differs from the map form:\n{:#}",
        out["as_list"]
    );

    let tight = &out["tight"];
    let want = json!({
        "fits": false,
        "vm_ip_pool": pool(10, 0, 12, -2),
        "vip_pool": pool(1, 0, 2, -1),
        "clusters": {"prod": cluster(3, 0, 5), "dev": cluster(1, 0, 1)},
        "problems": [
            "vm_ip_pool: 12 addresses needed (10 VMs + 2 surge for 2 clusters), 10 available (10 in the pool, 0 used); 2 short",
            "vip_pool: 2 addresses needed (1 API-server VIP per cluster), 1 available (1 in the pool, 0 used); 1 short",
        ],
    });
    ensure!(*tight == want, "tight:\n{tight:#}\nwanted:\n{want:#}");

    // 254 host addresses, less the gateway and the 10 VIPs.
    let dhcp = &out["dhcp"];
    ensure!(
        dhcp["vm_ip_pool"] == pool(243, 0, 4, 239) && dhcp["vip_pool"] == pool(10, 0, 1, 9),
        "dhcp: {dhcp:#}"
    );
    Ok(())
}

/// Bad arguments fail the plan with the argument, attribute, value and rule,
/// and Terraform points at the argument's line.
#[test]
fn ip_plan_errors_name_the_argument_and_attribute() -> Result<()> {
    let wd = Workdir::unconfigured()?;
    let out = wd.expect_plan_error(
        r#"
output "outside" {
  value = provider::hybrid::ip_plan(
    { address_prefix = "10.0.0.0/24", vm_ip_pool = { start = "10.0.1.10", end = "10.0.0.99" } },
    {}
  )
}

output "two" {
  value = provider::hybrid::ip_plan(
    { address_prefix = "10.0.0.0/24", vm_ip_pool = { start = "10.0.0.10", end = "10.0.0.99" } },
    { prod = { control_plane_count = 2 } }
  )
}
"#,
        &[
            "Invalid function argument",
            r#"Invalid value for "vnet" parameter: vm_ip_pool.start "10.0.1.10" is outside address_prefix 10.0.0.0/24."#,
            r#"Invalid value for "clusters" parameter: cluster "prod": control_plane_count 2 is not allowed; it must be 1, 3 or 5"#,
        ],
    )?;
    out.expect_snippet(r#"start = "10.0.1.10""#)?;
    out.expect_snippet("control_plane_count = 2")?;

    wd.expect_plan_error(
        r#"
output "typo" {
  value = provider::hybrid::ip_plan(
    { address_prefix = "10.0.0.0/24", vm_ip_pool = { start = "10.0.0.10", end = "10.0.0.99" } },
    { prod = { control_plane = 3 } }
  )
}
"#,
        &[
            r#"Invalid value for "clusters" parameter: cluster "prod": unknown attribute "control_plane""#,
        ],
    )?;
    Ok(())
}

/// A `hybrid_vnet` data source and resource object pass as they are: their
/// usage counts, their other attributes are ignored.
#[test]
fn ip_plan_counts_what_a_real_vnet_uses() -> Result<()> {
    let host = Host::start()?;
    hybrid_acceptance_tests::shared_lan_fixtures(&host)?;

    let wd = Workdir::new(&host)?;
    let config = r#"
data "hybrid_vnet" "shared" {
  name = "shared-lan"
}

resource "hybrid_vnet" "fresh" {
  name           = "fresh"
  address_prefix = "10.40.0.0/24"
  vm_ip_pool     = { start = "10.40.0.10", end = "10.40.0.29" }
  vip_pool       = { start = "10.40.0.200", end = "10.40.0.201" }
}

output "prod_b" {
  value = provider::hybrid::ip_plan(data.hybrid_vnet.shared, {
    "prod-b" = { control_plane_count = 3, node_pools = { linux1 = 3 } }
  })
}

output "fresh" {
  value = provider::hybrid::ip_plan(hybrid_vnet.fresh, {
    a1 = { node_pools = { linux1 = 17 } }
  })
}
"#;
    // Before the vnet exists its attributes are unknown: so is the plan.
    wd.write_config(config)?;
    let (_, plan) = wd.plan_detailed()?;
    plan.expect_contains(&["fresh = (known after apply)"])?;

    let out = outputs(&wd, config)?;
    // prod-a: 1 control-plane VM + 2 nodes + 1 surge, and 1 VIP.
    let prod_b = &out["prod_b"];
    ensure!(
        prod_b["vm_ip_pool"] == pool(90, 4, 7, 79)
            && prod_b["vip_pool"] == pool(10, 1, 1, 8)
            && prod_b["clusters"]["prod-b"] == cluster(3, 0, 3)
            && prod_b["fits"] == true,
        "prod_b: {prod_b:#}"
    );
    // 1 + 17 + 1 = 19 of 20.
    let fresh = &out["fresh"];
    ensure!(
        fresh["vm_ip_pool"] == pool(20, 0, 19, 1) && fresh["fits"] == true,
        "fresh: {fresh:#}"
    );
    wd.destroy()?;
    Ok(())
}
