# Test helper for site.tftest.hcl: the site module twice more against the
# same service, as a multi-site root module would use it.

terraform {
  required_providers {
    hybrid = {
      source = "hybridops/hybrid"
    }
  }
}

variable "shared_operator_id" {
  type = string
}

module "b" {
  source = "../.."

  name                  = "tt-site-b"
  address_prefix        = "10.31.0.0/24"
  ip_allocation_method  = "dhcp"
  vip_pool              = { start = "10.31.0.200", end = "10.31.0.209" }
  operator_extension_id = var.shared_operator_id
}

module "c" {
  source = "../.."

  name           = "tt-site-c"
  address_prefix = "10.32.0.0/24"
  gateway        = "10.32.0.1"
  vm_ip_pool     = { start = "10.32.0.10", end = "10.32.0.49" }
  vip_pool       = { start = "10.32.0.200", end = "10.32.0.209" }
}

output "b" {
  value = module.b
}

output "c" {
  value = module.c
}
