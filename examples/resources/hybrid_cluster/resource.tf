# A cluster with three control-plane VMs and one built-in load balancer VM,
# with the network and custom location it lives in, and a tuned cluster
# autoscaler profile.
resource "hybrid_vnet" "site_a" {
  name           = "site-a-lan"
  address_prefix = "10.10.0.0/24"
  gateway        = "10.10.0.1"
  dns_servers    = ["10.10.0.2"]

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

resource "hybrid_cluster" "example" {
  name               = "prod-a"
  custom_location_id = hybrid_custom_location.site_a.id
  vnet_id            = hybrid_vnet.site_a.id
  # kubernetes_version left out: the newest supported version at creation,
  # kept until you set one (an in-place upgrade, one minor at a time).

  control_plane = {
    count = 3
  }

  network = {
    load_balancer = {
      count = 1
    }
  }

  # Tune the cluster autoscaler for the pools that have auto_scaling; every
  # setting left out keeps AKS's default.
  auto_scaler_profile = {
    expander                         = "least-waste"
    scan_interval                    = "20s"
    scale_down_unneeded              = "5m"
    scale_down_utilization_threshold = "0.6"
  }

  ssh_public_key  = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f operator@site-a"
  admin_group_ids = ["k8s-admins"]

  tags = {
    env = "prod"
  }

  timeouts = {
    create = "1h"
  }
}

output "api_server" {
  value = hybrid_cluster.example.endpoint
}
