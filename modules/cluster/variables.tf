variable "name" {
  description = "Name of the cluster: a DNS label of at most 40 characters (node names are built from it). Changing it replaces the cluster."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$", var.name))
    error_message = "name must be a DNS label of at most 40 characters: lower-case letters, digits or '-', starting and ending with a letter or digit."
  }
}

variable "custom_location_id" {
  description = "Id of the custom location the cluster lives in, `/custom-locations/<name>` (the site module's `custom_location_id`). Changing it replaces the cluster."
  type        = string
}

variable "vnet_id" {
  description = "Id of the vnet the cluster's VMs and VIPs come from, `/vnets/<name>` (the site module's `vnet_id`). Changing it replaces the cluster."
  type        = string
}

variable "kubernetes_version" {
  description = "Kubernetes version, e.g. `1.32.3`. Null: the newest supported version ready for the OS SKU of every pool of `node_pools` when the cluster is created, kept after (later catalogue changes never plan an upgrade). Changing it is an in-place rolling upgrade, one minor version at a time; once set, keep it set (going back to null returns to the version chosen at creation, a downgrade the plan refuses)."
  type        = string
  default     = null

  validation {
    condition     = var.kubernetes_version == null || can(regex("^[0-9]+\\.[0-9]+\\.[0-9]+$", var.kubernetes_version))
    error_message = "kubernetes_version must be MAJOR.MINOR.PATCH, e.g. 1.32.3, or null for the newest supported version."
  }
}

variable "control_plane_count" {
  description = "Number of control-plane VMs: 1, 3 or 5 (an odd number keeps etcd quorum). Changes in place."
  type        = number
  default     = 1
  nullable    = false

  validation {
    condition     = contains([1, 3, 5], var.control_plane_count)
    error_message = "control_plane_count must be 1, 3 or 5: etcd needs an odd number of members for quorum."
  }
}

variable "control_plane_vm_size" {
  description = "VM size of the control-plane VMs, from the service's catalogue (the `hybrid_vm_sizes` data source). Null: the provider's default, `Standard_A4_v2`. Changing it replaces the cluster."
  type        = string
  default     = null
}

variable "control_plane_endpoint_ip" {
  description = "API-server VIP, from the vnet's `vip_pool`. Null: the service takes the lowest free address. Changing it replaces the cluster."
  type        = string
  default     = null
}

variable "network_plugin" {
  description = "Container network plugin: `calico` or `flannel`. Changing it replaces the cluster."
  type        = string
  default     = "calico"
  nullable    = false

  validation {
    condition     = contains(["calico", "flannel"], var.network_plugin)
    error_message = "network_plugin must be \"calico\" or \"flannel\"."
  }
}

variable "pod_cidr" {
  description = "IPv4 CIDR pods get addresses from. Null: `10.244.0.0/16`. Changing it replaces the cluster."
  type        = string
  default     = null
}

variable "service_cidr" {
  description = "IPv4 CIDR of Kubernetes services, disjoint from `pod_cidr`. Null: `10.96.0.0/12`. Changing it replaces the cluster."
  type        = string
  default     = null
}

variable "load_balancer_count" {
  description = "Number of built-in HAProxy load balancer VMs for `LoadBalancer` services, 0–5; each takes an address from the vnet's `vm_ip_pool`. Changes in place."
  type        = number
  default     = 0
  nullable    = false

  validation {
    condition     = var.load_balancer_count >= 0 && var.load_balancer_count <= 5 && floor(var.load_balancer_count) == var.load_balancer_count
    error_message = "load_balancer_count must be a whole number from 0 to 5."
  }
}

variable "ssh_public_key" {
  description = "OpenSSH public key installed on every VM (`ssh-ed25519 AAAA… comment`). Null: none. Changing it replaces the cluster."
  type        = string
  default     = null
}

variable "admin_group_ids" {
  description = "Directory groups granted cluster-admin. Change in place."
  type        = set(string)
  default     = null
}

variable "storage" {
  description = "CSI storage drivers, `{ smb_csi, nfs_csi }` (each defaults to true). Change in place."
  type = object({
    smb_csi = optional(bool, true)
    nfs_csi = optional(bool, true)
  })
  default = null
}

variable "auto_scaler_profile" {
  description = "Cluster autoscaler settings for the pools with `auto_scaling` (AKS's `auto_scaler_profile`): e.g. `{ expander = \"least-waste\", scan_interval = \"20s\" }`. Null, or any setting left out: AKS's default (see the `hybrid_cluster` resource). Changes in place, touching no VM."
  type = object({
    balance_similar_node_groups      = optional(bool)
    expander                         = optional(string)
    empty_bulk_delete_max            = optional(number)
    max_graceful_termination_sec     = optional(number)
    max_node_provisioning_time       = optional(string)
    max_unready_nodes                = optional(number)
    max_unready_percentage           = optional(number)
    new_pod_scale_up_delay           = optional(string)
    scale_down_delay_after_add       = optional(string)
    scale_down_delay_after_delete    = optional(string)
    scale_down_delay_after_failure   = optional(string)
    scale_down_unneeded              = optional(string)
    scale_down_unready               = optional(string)
    scale_down_utilization_threshold = optional(string)
    scan_interval                    = optional(string)
    skip_nodes_with_local_storage    = optional(bool)
    skip_nodes_with_system_pods      = optional(bool)
  })
  default = null
}

variable "tags" {
  description = "Tags set on the cluster."
  type        = map(string)
  default     = null
}

variable "node_pools" {
  description = <<-EOT
    Node pools, keyed by pool name (`^[a-z][a-z0-9]{2,11}$`, at most 16). Each value:
    `os_type` (`linux` default, or `windows`), `node_count` (1–64; null: 1, must be null with `auto_scaling`),
    `auto_scaling` (`{ min_count, max_count }`), `auto_repair` (`{ enabled, unhealthy_after, max_unhealthy }`,
    any left out: the resource's default, disabled), `vm_size`, `os_sku`, `max_pods`, `labels`, `taints`.
    Keyed by name, so adding, removing or renaming one pool never touches the others.
  EOT
  type = map(object({
    os_type    = optional(string, "linux")
    os_sku     = optional(string)
    vm_size    = optional(string)
    node_count = optional(number)
    auto_scaling = optional(object({
      min_count = number
      max_count = number
    }))
    auto_repair = optional(object({
      enabled         = optional(bool)
      unhealthy_after = optional(string)
      max_unhealthy   = optional(number)
    }))
    labels   = optional(map(string))
    taints   = optional(list(string))
    max_pods = optional(number)
  }))
  default = {
    linux1 = {}
  }
  nullable = false

  validation {
    condition     = alltrue([for name in keys(var.node_pools) : can(regex("^[a-z][a-z0-9]{2,11}$", name))])
    error_message = "node_pools keys are pool names: 3-12 lower-case letters or digits, starting with a letter (^[a-z][a-z0-9]{2,11}$). Not valid: ${join(", ", [for name in keys(var.node_pools) : name if !can(regex("^[a-z][a-z0-9]{2,11}$", name))])}."
  }
  validation {
    condition     = length(var.node_pools) <= 16
    error_message = "A cluster has at most 16 node pools; node_pools has ${length(var.node_pools)}."
  }
  validation {
    condition     = alltrue([for p in values(var.node_pools) : contains(["linux", "windows"], p.os_type)])
    error_message = "node_pools[*].os_type must be \"linux\" or \"windows\"."
  }
  validation {
    condition = alltrue([for p in values(var.node_pools) : p.node_count == null || try(
    p.node_count >= 1 && p.node_count <= 64 && floor(p.node_count) == p.node_count, false)])
    error_message = "node_pools[*].node_count must be a whole number from 1 to 64. Not valid: ${join(", ", [for k, p in var.node_pools : "${k} = ${p.node_count}" if p.node_count != null && !try(p.node_count >= 1 && p.node_count <= 64 && floor(p.node_count) == p.node_count, false)])}."
  }
  validation {
    condition = alltrue([for p in values(var.node_pools) : p.auto_scaling == null || try(
    p.auto_scaling.min_count >= 1 && p.auto_scaling.min_count <= p.auto_scaling.max_count && p.auto_scaling.max_count <= 64, false)])
    error_message = "node_pools[*].auto_scaling needs 1 <= min_count <= max_count <= 64."
  }
  validation {
    condition     = alltrue([for p in values(var.node_pools) : p.auto_scaling == null || p.node_count == null])
    error_message = "A pool with auto_scaling must leave node_count null: the service owns the count while auto-scaling is on."
  }
  validation {
    # The service's per-cluster limit; counted with the most nodes an
    # auto-scaled pool may grow to.
    condition     = sum(concat([0], [for p in values(var.node_pools) : p.auto_scaling != null ? p.auto_scaling.max_count : coalesce(p.node_count, 1)])) <= 200
    error_message = "A cluster has at most 200 nodes over all pools (auto-scaled pools counted at max_count)."
  }
}

variable "extensions" {
  description = <<-EOT
    Cluster extensions, keyed by extension name (a DNS label of at most 40 characters). Each value:
    `extension_type` (from the service's catalogue, e.g. `monitor`, `policy`), `release_train`, `version`,
    `auto_upgrade_minor_version`, `configuration_settings`, `release_namespace` or `target_namespace` (scope),
    and `protected_settings_version` (change it to send new `protected_settings`). Installed after the node pools.
  EOT
  type = map(object({
    extension_type             = string
    release_train              = optional(string)
    version                    = optional(string)
    auto_upgrade_minor_version = optional(bool)
    configuration_settings     = optional(map(string))
    release_namespace          = optional(string)
    target_namespace           = optional(string)
    protected_settings_version = optional(string)
  }))
  default  = {}
  nullable = false

  validation {
    condition     = alltrue([for name in keys(var.extensions) : can(regex("^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$", name))])
    error_message = "extensions keys are extension names: DNS labels of at most 40 characters."
  }
  validation {
    condition     = alltrue([for e in values(var.extensions) : e.release_namespace == null || e.target_namespace == null])
    error_message = "An extension is cluster-scoped (release_namespace) or namespace-scoped (target_namespace), not both."
  }
}

variable "protected_settings" {
  description = "Secret settings of extensions (Git credentials, workspace keys), keyed by extension name (the `gitops` extension included). Ephemeral: never in the plan or the state; the service stores them encrypted. Sent on create and whenever the extension's `protected_settings_version` changes."
  type        = map(map(string))
  default     = {}
  nullable    = false
  sensitive   = true
  ephemeral   = true
}

variable "gitops" {
  description = <<-EOT
    GitOps baseline: `{ enabled = true }` installs Flux (a `flux` extension) once the node pools are ready.
    Optional: `name` (default `flux`), `release_train`, `version`, `namespace` (default `flux-system`),
    `configuration_settings` (merged over the baseline: Helm drift detection on, `syncInterval = "5m"`),
    `protected_settings_version`.
  EOT
  type = object({
    enabled                    = optional(bool, false)
    name                       = optional(string, "flux")
    release_train              = optional(string)
    version                    = optional(string)
    namespace                  = optional(string)
    configuration_settings     = optional(map(string), {})
    protected_settings_version = optional(string)
  })
  default  = {}
  nullable = false

  validation {
    condition     = can(regex("^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$", var.gitops.name))
    error_message = "gitops.name must be a DNS label of at most 40 characters."
  }
  validation {
    condition     = !(var.gitops.enabled && contains(keys(var.extensions), var.gitops.name))
    error_message = "gitops.name \"${var.gitops.name}\" is also a key of extensions: give the GitOps extension another name, or drop one of the two."
  }
}
