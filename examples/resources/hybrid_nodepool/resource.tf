# Two Linux node pools of one cluster: a fixed-size pool for web workloads
# and an auto-scaled batch pool, with the cluster, network and custom
# location they need.
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

resource "hybrid_custom_location" "site_a" {
  name      = "site-a"
  namespace = "site-a"
  host_id   = "/management-host"
}

resource "hybrid_cluster" "apps" {
  name               = "apps"
  custom_location_id = hybrid_custom_location.site_a.id
  vnet_id            = hybrid_vnet.site_a.id
}

resource "hybrid_nodepool" "web" {
  cluster_id = hybrid_cluster.apps.id
  name       = "web1"
  os_type    = "linux"
  node_count = 2

  labels = {
    workload = "web"
  }
  taints = ["dedicated=web:NoSchedule"]

  # Replace a node whose VM fails, or whose host stays down for more than
  # ten minutes, with a new VM on another host; one node at a time.
  auto_repair = {
    enabled         = true
    unhealthy_after = "10m"
  }
}

# While auto_scaling is set the service owns node_count: leave it out.
resource "hybrid_nodepool" "batch" {
  cluster_id = hybrid_cluster.apps.id
  name       = "batch1"
  os_type    = "linux"
  vm_size    = "Standard_D4s_v3"

  auto_scaling = {
    min_count = 1
    max_count = 4
  }
}

output "web_node_ips" {
  value = [for n in hybrid_nodepool.web.nodes : n.ip]
}
