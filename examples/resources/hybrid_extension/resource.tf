# The hybrid operator on the management host, enabled in a custom location
# (infrastructure administrator), and Flux (GitOps) on a cluster of that
# location (Kubernetes operator).
resource "hybrid_extension" "operator" {
  name           = "hybrid-operator"
  target_id      = "/management-host"
  extension_type = "hybrid-operator"
}

resource "hybrid_custom_location" "site_a" {
  name                  = "site-a"
  namespace             = "site-a"
  host_id               = "/management-host"
  cluster_extension_ids = [hybrid_extension.operator.id]
}

resource "hybrid_vnet" "site_a" {
  name           = "site-a-lan"
  address_prefix = "10.10.0.0/24"
  gateway        = "10.10.0.1"

  vm_ip_pool = {
    start = "10.10.0.10"
    end   = "10.10.0.149"
  }

  vip_pool = {
    start = "10.10.0.200"
    end   = "10.10.0.239"
  }
}

resource "hybrid_cluster" "apps" {
  name               = "apps"
  custom_location_id = hybrid_custom_location.site_a.id
  vnet_id            = hybrid_vnet.site_a.id
}

# Flux runs on Linux nodes.
resource "hybrid_nodepool" "linux" {
  cluster_id = hybrid_cluster.apps.id
  name       = "linux1"
  os_type    = "linux"
}

# The Git password reaches the service and nothing else: an ephemeral
# variable (set it with TF_VAR_git_password) in a write-only attribute.
variable "git_password" {
  type      = string
  sensitive = true
  ephemeral = true
  default   = "change-me"
}

resource "hybrid_extension" "flux" {
  name           = "flux"
  target_id      = hybrid_cluster.apps.id
  extension_type = "flux"

  # Pinned; changing it upgrades Flux in place. Leave it out to follow
  # the newest version of the release train instead.
  version = "1.14.1"

  configuration_settings = {
    "helm-controller.detectDrift" = "true"
    "syncInterval"                = "5m"
  }

  # Write-only (Terraform >= 1.11): never in the plan or the state. Change
  # the version to send new values.
  configuration_protected_settings = {
    httpsUser     = "flux"
    httpsPassword = var.git_password
  }
  configuration_protected_settings_version = "1"

  depends_on = [hybrid_nodepool.linux]
}

output "flux_version" {
  value = hybrid_extension.flux.current_version
}
