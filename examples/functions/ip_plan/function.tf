# Plan the addresses of two clusters on a /24 before creating anything:
# `terraform plan` prints the numbers, and the check warns when they do
# not fit. The function needs no provider configuration.
locals {
  lan = {
    address_prefix = "10.0.0.0/24"
    gateway        = "10.0.0.1"
    vm_ip_pool     = { start = "10.0.0.10", end = "10.0.0.99" }   # 90 addresses
    vip_pool       = { start = "10.0.0.200", end = "10.0.0.209" } # 10 VIPs
  }

  clusters = {
    prod = {
      control_plane_count = 3
      load_balancer_count = 1
      node_pools          = { linux1 = 4, win1 = 2 }
    }
    dev = {
      node_pools = { linux1 = 2 }
    }
  }

  ip_plan = provider::hybrid::ip_plan(local.lan, local.clusters)
}

check "addresses_fit" {
  assert {
    condition     = local.ip_plan.fits
    error_message = join("\n", local.ip_plan.problems)
  }
}

output "ip_plan" {
  value = local.ip_plan
}
