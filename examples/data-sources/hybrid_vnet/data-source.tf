# Read a vnet the infrastructure team manages elsewhere, e.g. to check
# how many VIPs are left before adding a cluster.
data "hybrid_vnet" "shared" {
  name = "shared-lan"
}

output "free_vips" {
  value = data.hybrid_vnet.shared.vip_pool.available
}
