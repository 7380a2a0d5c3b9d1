# What can be installed on a cluster, and the newest stable Flux.
data "hybrid_extension_types" "all" {}

locals {
  flux = one([for t in data.hybrid_extension_types.all.types : t if t.name == "flux"])
}

output "cluster_extension_types" {
  value = [for t in data.hybrid_extension_types.all.types : t.name if t.target == "cluster"]
}

output "flux_stable_latest" {
  value = one([for r in local.flux.release_trains : r.latest if r.name == "stable"])
}

output "flux_setting_keys" {
  value = local.flux.configuration_settings
}
