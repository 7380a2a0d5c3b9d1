variable "sites" {
  description = "The sites, keyed by site name (a DNS label; it names the site's vnet and custom location). Each has its own network and the clusters that run there, keyed by cluster name; a cluster is named `<site>-<cluster>` in the service."
  type = map(object({
    address_prefix = string
    gateway        = string
    vlan_id        = number
    dns_servers    = optional(list(string))
    vm_ip_pool     = object({ start = string, end = string })
    vip_pool       = object({ start = string, end = string })
    clusters = optional(map(object({
      kubernetes_version = optional(string)
      gitops_enabled     = optional(bool, false)
      node_pools = optional(map(object({
        os_type    = optional(string, "linux")
        node_count = optional(number, 1)
        vm_size    = optional(string)
        labels     = optional(map(string))
      })), { linux1 = {} })
    })), {})
  }))

  # Only one configuration that holds every site can check rules across
  # sites; each site's own rules are checked by the site module.
  validation {
    condition     = length(distinct([for s in values(var.sites) : s.address_prefix])) == length(var.sites)
    error_message = "Every site needs its own network: two sites have the same address_prefix."
  }
  validation {
    condition     = length(distinct([for s in values(var.sites) : s.vlan_id])) == length(var.sites)
    error_message = "Every site needs its own VLAN: two sites have the same vlan_id."
  }
}
