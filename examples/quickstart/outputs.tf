output "cluster_id" {
  description = "The cluster's id in the host API; also its import id."
  value       = module.cluster.id
}

output "cluster_endpoint" {
  description = "The Kubernetes API server URL (a VIP from the site's VIP pool)."
  value       = module.cluster.endpoint
}

output "kubernetes_version" {
  description = "The Kubernetes version the cluster runs."
  value       = module.cluster.kubernetes_version
}

output "node_pools" {
  description = "Each node pool: its id, OS, node count and nodes (VM name, IP address on the vnet, physical host)."
  # Keyed by the pools the module manages (not by var.node_pools), so the
  # output stays valid while a new pool is only planned or being imported.
  value = {
    for name, id in module.cluster.node_pool_ids : name => {
      id         = id
      os_type    = var.node_pools[name].os_type
      node_count = var.node_pools[name].node_count
      nodes      = module.cluster.nodes[name]
    }
  }
}

output "flux" {
  description = "The Flux extension: id, provisioning state and installed version (null when gitops_enabled is false)."
  value = var.gitops_enabled ? {
    id                 = module.cluster.gitops_extension_id
    provisioning_state = module.cluster.extension_states["flux"]
    version            = module.cluster.extension_versions["flux"]
  } : null
}

output "site" {
  description = "The site's vnet and custom location ids."
  value = {
    vnet_id            = module.site.vnet_id
    custom_location_id = module.site.custom_location_id
  }
}
