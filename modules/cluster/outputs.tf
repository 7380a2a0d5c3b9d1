output "id" {
  description = "The cluster's id, `/clusters/<name>` (for `hybrid_kubeconfig`, data sources and extra extensions)."
  value       = hybrid_cluster.this.id
}

output "name" {
  description = "The cluster's name."
  value       = hybrid_cluster.this.name
}

output "endpoint" {
  description = "The Kubernetes API server's URL, `https://<vip>:6443`."
  value       = hybrid_cluster.this.endpoint
}

output "ca_certificate" {
  description = "PEM of the cluster's certificate authority (a public certificate, not a secret)."
  value       = hybrid_cluster.this.ca_certificate
}

output "kubernetes_version" {
  description = "The Kubernetes version the control plane runs now."
  value       = hybrid_cluster.this.current_kubernetes_version
}

output "control_plane_nodes" {
  description = "The control-plane VMs, a list of `{ name, ip, host }`."
  value       = [for n in hybrid_cluster.this.control_plane_nodes : { name = n.name, ip = n.ip, host = n.host }]
}

output "node_pool_ids" {
  description = "Node pool ids by pool name, `{ linux1 = \"/clusters/<name>/nodepools/linux1\" }`."
  value       = { for name, pool in hybrid_nodepool.this : name => pool.id }
}

output "nodes" {
  description = "Worker nodes by pool name: for each pool a list of `{ name, ip, host }` (VM name, address on the vnet, physical host)."
  value = {
    for name, pool in hybrid_nodepool.this : name => [
      for n in pool.nodes : { name = n.name, ip = n.ip, host = n.host }
    ]
  }
}

output "extension_ids" {
  description = "Extension ids by extension name, the GitOps extension included, `{ flux = \"/clusters/<name>/extensions/flux\" }`."
  value       = { for name, ext in hybrid_extension.this : name => ext.id }
}

output "extension_versions" {
  description = "Installed version by extension name (null while an extension waits for Linux nodes)."
  value       = { for name, ext in hybrid_extension.this : name => ext.current_version }
}

output "extension_states" {
  description = "Provisioning state by extension name: `Succeeded`, `Failed`, …, or `Pending` while an extension waits for Linux nodes."
  value       = { for name, ext in hybrid_extension.this : name => ext.provisioning_state }
}

output "gitops_extension_id" {
  description = "Id of the Flux extension `gitops` installs; null when GitOps is off."
  value       = var.gitops.enabled ? hybrid_extension.this[var.gitops.name].id : null
}
