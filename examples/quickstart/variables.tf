variable "kubernetes_version" {
  description = "Kubernetes version of the cluster, e.g. \"1.32.5\". Null: the newest version ready for every OS the node pools use. Changing it is an in-place upgrade, one minor at a time."
  type        = string
  default     = null
}

variable "network_plugin" {
  description = "Container network plugin: \"calico\" or \"flannel\". Fixed once the cluster exists (changing it replaces the cluster)."
  type        = string
  default     = "calico"
}

variable "node_pools" {
  description = "Node pools by name (the name is the pool's name in the service: 3-12 lowercase letters and digits, starting with a letter)."
  type = map(object({
    os_type    = string
    node_count = number
    vm_size    = optional(string)
    labels     = optional(map(string), {})
  }))
  default = {
    linux1 = { os_type = "linux", node_count = 2 }
    win1   = { os_type = "windows", node_count = 1 }
  }
}

variable "gitops_enabled" {
  description = "Install Flux (GitOps) on the cluster."
  type        = bool
  default     = true
}
