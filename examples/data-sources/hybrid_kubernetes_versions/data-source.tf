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

# Readiness is per OS SKU: a version may have node images for Windows2022
# before Windows2019. These are the versions a Windows2019 pool can run.
output "ready_for_windows2019" {
  value = [
    for v in data.hybrid_kubernetes_versions.all.versions : v.version
    if v.supported && contains(v.ready_for_skus, "Windows2019")
  ]
}
