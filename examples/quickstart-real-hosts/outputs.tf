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

output "control_plane_nodes" {
  description = "The control-plane VMs (name, IP address on the vnet, physical host)."
  value       = module.cluster.control_plane_nodes
}

output "node_pools" {
  description = "Each node pool: its id and nodes (VM name, IP address on the vnet, physical host)."
  value = {
    for name, id in module.cluster.node_pool_ids : name => {
      id         = id
      os_type    = "linux"
      node_count = 1
      nodes      = module.cluster.nodes[name]
    }
  }
}
