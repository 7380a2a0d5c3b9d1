# Several on-prem sites from one configuration: the site and cluster
# modules, instantiated once per entry of var.sites (sites.auto.tfvars).
# See README.md for why this is one root module with for_each rather than
# one root module per site.

module "site" {
  source   = "../../modules/site"
  for_each = var.sites

  name           = each.key
  address_prefix = each.value.address_prefix
  gateway        = each.value.gateway
  dns_servers    = each.value.dns_servers
  vlan_id        = each.value.vlan_id
  vm_ip_pool     = each.value.vm_ip_pool
  vip_pool       = each.value.vip_pool

  tags = {
    site = each.key
  }
}

locals {
  # Every cluster of every site, keyed "<site>-<cluster>": the key is the
  # cluster's name in the service (names are unique per service, not per
  # site) and its module address, so a cluster keeps its address when other
  # sites or clusters come and go.
  clusters = merge([
    for site_name, site in var.sites : {
      for cluster_name, cluster in site.clusters :
      "${site_name}-${cluster_name}" => merge(cluster, { site = site_name })
    }
  ]...)

  # The address plan of each site, checked before anything is created.
  ip_plans = {
    for site_name, site in var.sites : site_name => provider::hybrid::ip_plan(
      {
        address_prefix = site.address_prefix
        gateway        = site.gateway
        vm_ip_pool     = site.vm_ip_pool
        vip_pool       = site.vip_pool
      },
      {
        for cluster_name, cluster in site.clusters : cluster_name => {
          node_pools = { for pool_name, pool in cluster.node_pools : pool_name => pool.node_count }
        }
      }
    )
  }
}

module "cluster" {
  source   = "../../modules/cluster"
  for_each = local.clusters

  name               = each.key
  custom_location_id = module.site[each.value.site].custom_location_id
  vnet_id            = module.site[each.value.site].vnet_id
  kubernetes_version = each.value.kubernetes_version
  node_pools         = each.value.node_pools

  gitops = {
    enabled = each.value.gitops_enabled
  }

  tags = {
    site = each.value.site
  }
}

check "addresses_fit" {
  assert {
    condition     = alltrue([for plan in values(local.ip_plans) : plan.fits])
    error_message = join("\n", flatten([for site, plan in local.ip_plans : [for p in plan.problems : "${site}: ${p}"]]))
  }
}
