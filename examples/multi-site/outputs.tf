output "sites" {
  description = "Each site's vnet and custom location ids."
  value = {
    for name, site in module.site : name => {
      vnet_id            = site.vnet_id
      custom_location_id = site.custom_location_id
    }
  }
}

output "clusters" {
  description = "Each cluster (`<site>-<cluster>`): its site, API server URL, Kubernetes version and nodes by pool ({ name, ip, host })."
  value = {
    for name, cluster in module.cluster : name => {
      site               = local.clusters[name].site
      endpoint           = cluster.endpoint
      kubernetes_version = cluster.kubernetes_version
      nodes              = cluster.nodes
    }
  }
}
