# Quickstart on real VMs: one site and one small cluster (one control plane,
# one worker, no load balancer VM) on a hybrid-host with the agents driver
# and one hybrid-agent on this machine, its VMs real QEMU guests booting the
# test node image.
#
# `cargo xtask quickstart --driver agents` (as root) sets all of that up in
# network namespaces, runs `terraform init` and `terraform apply` here and
# prints a summary. To run terraform yourself afterwards:
#
#   source .build/quickstart-agents/env.sh
#   terraform -chdir=examples/quickstart-real-hosts plan
#
# Not picked up by acceptance-tests/tests/examples.rs (which runs examples
# against the simulated datacenter): its `Tiny` VM size exists only in the
# agents config the quickstart writes.

# The site, without the site module: the agents driver offers no
# extensions, so there is no hybrid operator to install; a vnet and a custom
# location are all a cluster needs. The vnet is the segment the quickstart's
# "router" namespace serves (its gateway address lives there, never in the
# root namespace); untagged, like the router's bridge.
data "hybrid_management_host" "this" {}

resource "hybrid_vnet" "site" {
  name           = "realhosts"
  address_prefix = "10.78.0.0/24"
  gateway        = "10.78.0.1"
  dns_servers    = ["10.78.0.1"]

  vm_ip_pool = {
    start = "10.78.0.10"
    end   = "10.78.0.40"
  }

  vip_pool = {
    start = "10.78.0.200"
    end   = "10.78.0.210"
  }
}

resource "hybrid_custom_location" "site" {
  name      = "realhosts"
  namespace = "realhosts"
  host_id   = data.hybrid_management_host.this.id
}

# The cluster: the smallest that is still a cluster.
module "cluster" {
  source = "../../modules/cluster"

  name                  = "realhosts"
  custom_location_id    = hybrid_custom_location.site.id
  vnet_id               = hybrid_vnet.site.id
  control_plane_count   = 1
  control_plane_vm_size = var.vm_size
  load_balancer_count   = 0

  node_pools = {
    linux1 = { os_type = "linux", node_count = 1, vm_size = var.vm_size }
  }
}
