output "custom_location_id" {
  description = "Id of the site's custom location (`/custom-locations/<name>`): a cluster's `custom_location_id`."
  value       = hybrid_custom_location.this.id
}

output "vnet_id" {
  description = "Id of the site's vnet (`/vnets/<name>`): a cluster's `vnet_id`."
  value       = hybrid_vnet.this.id
}

output "vnet_name" {
  description = "Name of the site's vnet (for the `hybrid_vnet` data source)."
  value       = hybrid_vnet.this.name
}

output "operator_extension_id" {
  description = "Id of the hybrid operator extension the custom location enables: the one this module created, or `operator_extension_id` when that was given. Pass it to another site's `operator_extension_id` to share one operator."
  value       = local.create_operator ? hybrid_extension.operator[0].id : var.operator_extension_id
}

output "free_addresses" {
  description = "Free addresses per pool, `{ vm_ip_pool, vip_pool }` (`vm_ip_pool` is null for a `dhcp` vnet), from the `hybrid_vnet` data source as of the last plan or apply: addresses that clusters created later in the same apply take are counted at the next plan."
  value = {
    vm_ip_pool = try(data.hybrid_vnet.this.vm_ip_pool.available, null)
    vip_pool   = data.hybrid_vnet.this.vip_pool.available
  }
}

output "vm_ip_pool" {
  description = "The vnet's node VM pool with its usage, `{ start, end, size, used, available }`, from the `hybrid_vnet` data source (as `free_addresses`); null for a `dhcp` vnet."
  value       = data.hybrid_vnet.this.vm_ip_pool
}

output "vip_pool" {
  description = "The vnet's VIP pool with its usage, `{ start, end, size, used, available }`, from the `hybrid_vnet` data source (as `free_addresses`)."
  value       = data.hybrid_vnet.this.vip_pool
}
