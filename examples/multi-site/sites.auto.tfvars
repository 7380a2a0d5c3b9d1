# Three sites, each with its own network and VLAN. Adding a site is adding
# an entry here: `terraform plan` then shows only that site's resources.
sites = {
  berlin = {
    address_prefix = "10.31.0.0/24"
    gateway        = "10.31.0.1"
    vlan_id        = 31
    dns_servers    = ["10.31.0.2"]
    vm_ip_pool     = { start = "10.31.0.10", end = "10.31.0.99" }
    vip_pool       = { start = "10.31.0.200", end = "10.31.0.219" }
    clusters = {
      apps = {
        gitops_enabled = true
        node_pools     = { linux1 = { node_count = 2 } }
      }
    }
  }

  lyon = {
    address_prefix = "10.32.0.0/24"
    gateway        = "10.32.0.1"
    vlan_id        = 32
    vm_ip_pool     = { start = "10.32.0.10", end = "10.32.0.99" }
    vip_pool       = { start = "10.32.0.200", end = "10.32.0.219" }
    clusters = {
      apps = {}
    }
  }

  madrid = {
    address_prefix = "10.33.0.0/23"
    gateway        = "10.33.0.1"
    vlan_id        = 33
    vm_ip_pool     = { start = "10.33.0.10", end = "10.33.1.99" }
    vip_pool       = { start = "10.33.1.200", end = "10.33.1.219" }
    clusters = {
      pos = {
        node_pools = {
          linux1 = {}
          win1   = { os_type = "windows" }
        }
      }
    }
  }
}
