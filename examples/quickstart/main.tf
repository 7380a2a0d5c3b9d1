# Quickstart: one virtual network on a local hybrid-host.
#
# `cargo xtask quickstart` starts hybrid-host and runs `terraform init` and
# `terraform apply` here. To run terraform yourself afterwards:
#
#   source .build/quickstart/env.sh
#   terraform -chdir=examples/quickstart plan

terraform {
  required_version = ">= 1.8"

  required_providers {
    hybrid = {
      source = "hybridops/hybrid"
    }
  }
}

# The provider reads HYBRID_ENDPOINT, HYBRID_TOKEN and HYBRID_CA_CERT_FILE
# from the environment, so nothing secret is written here.
provider "hybrid" {}

resource "hybrid_vnet" "main" {
  name                 = "quickstart"
  address_prefix       = "10.20.0.0/24"
  ip_allocation_method = "static"
  gateway              = "10.20.0.1"
  dns_servers          = ["10.20.0.2"]
  vlan_id              = 20

  # Node VM addresses. Try growing the pool (e.g. end = "10.20.0.150"):
  # the plan shows an in-place update.
  vm_ip_pool = {
    start = "10.20.0.10"
    end   = "10.20.0.99"
  }

  # API-server and load-balancer VIPs.
  vip_pool = {
    start = "10.20.0.200"
    end   = "10.20.0.219"
  }

  tags = {
    environment = "quickstart"
  }
}

output "vnet_id" {
  description = "The vnet's id in the host API; also its import id."
  value       = hybrid_vnet.main.id
}

output "vm_ip_pool" {
  description = "The VM pool and its usage."
  value       = hybrid_vnet.main.vm_ip_pool
}

output "vip_pool" {
  description = "The VIP pool and its usage."
  value       = hybrid_vnet.main.vip_pool
}
