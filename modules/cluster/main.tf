# A Kubernetes cluster with its node pools and extensions, as the Kubernetes
# operator sets it up inside a site's custom location and vnet.
#
# Pools and extensions are maps keyed by name and created with for_each, so
# each one's address is its name (hybrid_nodepool.this["linux1"]): adding,
# removing or reordering entries never touches the others, which a list with
# count would renumber and replace.

data "hybrid_kubernetes_versions" "this" {}

locals {
  # Node images must be ready for the OS SKU of every pool (a pool without
  # os_sku gets its OS type's default: CBLMariner or Windows2022); the
  # control plane runs CBLMariner, so it always counts.
  pool_skus = distinct(concat(["CBLMariner"], [
    for p in values(var.node_pools) : coalesce(p.os_sku, p.os_type == "windows" ? "Windows2022" : "CBLMariner")
  ]))
  # The catalogue lists versions oldest first.
  candidate_versions = [
    for v in data.hybrid_kubernetes_versions.this.versions : v.version
    if v.supported && alltrue([for sku in local.pool_skus : contains(v.ready_for_skus, sku)])
  ]
  newest_version = try(local.candidate_versions[length(local.candidate_versions) - 1], null)

  # Flux, when gitops is enabled, is one more entry of the extension map, so
  # it gets the same for_each address scheme and outputs as the others.
  gitops_extension = var.gitops.enabled ? {
    (var.gitops.name) = {
      extension_type             = "flux"
      release_train              = var.gitops.release_train
      version                    = var.gitops.version
      auto_upgrade_minor_version = null
      configuration_settings = merge({
        "helm-controller.detectDrift" = "true"
        "syncInterval"                = "5m"
      }, var.gitops.configuration_settings)
      release_namespace          = var.gitops.namespace
      target_namespace           = null
      protected_settings_version = var.gitops.protected_settings_version
    }
  } : {}
  extensions = merge(var.extensions, local.gitops_extension)
}

# The default version is resolved once, when the cluster is first planned,
# and kept (ignore_changes): the cluster resource's own "newest at creation,
# kept after" rule, extended to the pools' OSes (the service's default only
# considers Linux, which may not be ready for a Windows pool). Without this,
# a new version in the catalogue would plan an upgrade nobody asked for.
# The cluster reads `input`, not `output`: the planned `input` is known
# (output is unknown until the apply), so the plan shows the version and the
# service's dry run can check it.
resource "terraform_data" "default_kubernetes_version" {
  input = local.newest_version

  lifecycle {
    ignore_changes = [input]

    precondition {
      condition     = var.kubernetes_version != null || local.newest_version != null
      error_message = "No supported Kubernetes version in the service's catalogue is ready for OS SKUs ${join(" and ", local.pool_skus)}: set kubernetes_version."
    }
  }
}

resource "hybrid_cluster" "this" {
  name               = var.name
  custom_location_id = var.custom_location_id
  vnet_id            = var.vnet_id
  kubernetes_version = var.kubernetes_version != null ? var.kubernetes_version : terraform_data.default_kubernetes_version.input

  control_plane = {
    count       = var.control_plane_count
    vm_size     = var.control_plane_vm_size
    endpoint_ip = var.control_plane_endpoint_ip
  }

  network = {
    plugin       = var.network_plugin
    pod_cidr     = var.pod_cidr
    service_cidr = var.service_cidr
    load_balancer = {
      count = var.load_balancer_count
    }
  }

  ssh_public_key  = var.ssh_public_key
  admin_group_ids = var.admin_group_ids
  storage         = var.storage
  tags            = var.tags

  auto_scaler_profile = var.auto_scaler_profile
}

resource "hybrid_nodepool" "this" {
  for_each = var.node_pools

  cluster_id   = hybrid_cluster.this.id
  name         = each.key
  os_type      = each.value.os_type
  os_sku       = each.value.os_sku
  vm_size      = each.value.vm_size
  node_count   = each.value.node_count
  auto_scaling = each.value.auto_scaling
  auto_repair  = each.value.auto_repair
  labels       = each.value.labels
  taints       = each.value.taints
  max_pods     = each.value.max_pods
}

resource "hybrid_extension" "this" {
  for_each = local.extensions

  name                       = each.key
  target_id                  = hybrid_cluster.this.id
  extension_type             = each.value.extension_type
  release_train              = each.value.release_train
  version                    = each.value.version
  auto_upgrade_minor_version = each.value.auto_upgrade_minor_version
  configuration_settings     = each.value.configuration_settings

  # Exactly one kind of scope, or none (the type's default namespace).
  scope = each.value.release_namespace == null && each.value.target_namespace == null ? null : {
    cluster   = each.value.release_namespace == null ? null : { release_namespace = each.value.release_namespace }
    namespace = each.value.target_namespace == null ? null : { target_namespace = each.value.target_namespace }
  }

  # Write-only: reaches the service and never the plan or the state.
  configuration_protected_settings         = lookup(var.protected_settings, each.key, null)
  configuration_protected_settings_version = each.value.protected_settings_version

  # Most extension types need Linux nodes: installed before any pool is
  # ready they would wait (Pending) until the next refresh shows them done;
  # after the pools they are installed within this apply.
  depends_on = [hybrid_nodepool.this]
}
