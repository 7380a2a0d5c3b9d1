# Pick the Kubernetes version for a new cluster from the catalogue, and
# see where a cluster on a given version may upgrade to.
data "hybrid_kubernetes_versions" "all" {}

locals {
  upgrades = {
    for v in data.hybrid_kubernetes_versions.all.versions : v.version => v.upgrades
  }
}

output "default_version" {
  value = data.hybrid_kubernetes_versions.all.default_version
}

output "supported_versions" {
  value = data.hybrid_kubernetes_versions.all.supported_versions
}

# Null-safe: default_version is null when no version is ready for every OS.
output "upgrades_from_default" {
  value = try(local.upgrades[data.hybrid_kubernetes_versions.all.default_version], [])
}
