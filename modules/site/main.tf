# One on-prem site as the infrastructure administrator sets it up: the
# network clusters take their addresses from, the hybrid operator on the
# management host, and the custom location Kubernetes operators create
# clusters in.

locals {
  # One management host per service: two sites that each create an operator
  # need distinct extension names, hence the site name in the default.
  operator_extension_name = coalesce(var.operator_extension_name, "hybrid-operator-${var.name}")
  create_operator         = var.operator_extension_id == null
}

resource "hybrid_vnet" "this" {
  name                 = var.name
  address_prefix       = var.address_prefix
  ip_allocation_method = var.ip_allocation_method
  gateway              = var.gateway
  dns_servers          = var.dns_servers
  vlan_id              = var.vlan_id
  vm_ip_pool           = var.vm_ip_pool
  vip_pool             = var.vip_pool
  tags                 = var.tags

  lifecycle {
    # The provider checks these too, but only once the module is applied;
    # failing here names the module input instead of the resource attribute.
    precondition {
      condition     = var.ip_allocation_method != "static" || var.vm_ip_pool != null
      error_message = "vm_ip_pool is required when ip_allocation_method is \"static\"."
    }
    precondition {
      condition     = var.ip_allocation_method != "dhcp" || var.vm_ip_pool == null
      error_message = "vm_ip_pool must be null when ip_allocation_method is \"dhcp\": node VMs then get their addresses from DHCP."
    }
  }
}

# The vnet's usage. The resource keeps only what the vnet is: usage changes
# whenever a cluster takes an address, and in the resource's state it would
# show on every plan as a change made outside of Terraform. A data source is
# read afresh instead (during the apply when the vnet itself changes).
data "hybrid_vnet" "this" {
  name = hybrid_vnet.this.name
}

resource "hybrid_extension" "operator" {
  count = local.create_operator ? 1 : 0

  name                   = local.operator_extension_name
  target_id              = "/management-host"
  extension_type         = "hybrid-operator"
  configuration_settings = var.operator_settings

  lifecycle {
    precondition {
      condition     = length(local.operator_extension_name) <= 40
      error_message = "The operator extension's default name, \"${local.operator_extension_name}\", is longer than 40 characters: set operator_extension_name."
    }
  }
}

resource "hybrid_custom_location" "this" {
  name                  = var.name
  namespace             = coalesce(var.namespace, var.name)
  host_id               = "/management-host"
  cluster_extension_ids = [local.create_operator ? hybrid_extension.operator[0].id : var.operator_extension_id]
  display_name          = var.display_name
  tags                  = var.tags
}
