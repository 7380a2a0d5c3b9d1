# A statically addressed network for clusters at one site.
resource "hybrid_vnet" "example" {
  name           = "site-a-lan"
  address_prefix = "10.10.0.0/24"
  gateway        = "10.10.0.1"
  dns_servers    = ["10.10.0.2", "10.10.0.3"]
  vlan_id        = 110

  vm_ip_pool = {
    start = "10.10.0.10"
    end   = "10.10.0.149"
  }

  # API-server VIPs (one per cluster) and the load-balancer VIPs of
  # clusters with a built-in load balancer. Raising end or lowering start
  # is an update in place that keeps every VIP in use; a plan that would
  # leave none free while a cluster has a load balancer warns.
  vip_pool = {
    start = "10.10.0.200"
    end   = "10.10.0.239"
  }

  tags = {
    site = "a"
  }

  timeouts = {
    create = "10m"
    delete = "10m"
  }
}

# Node VMs get their addresses from DHCP; only VIPs come from a pool.
resource "hybrid_vnet" "dhcp" {
  name                 = "site-a-dhcp"
  address_prefix       = "10.11.0.0/24"
  ip_allocation_method = "dhcp"

  vip_pool = {
    start = "10.11.0.240"
    end   = "10.11.0.250"
  }
}
