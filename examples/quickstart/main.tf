# Quickstart: one on-prem site and one Kubernetes cluster with a Linux and a
# Windows node pool and Flux, on a local hybrid-host (simulated datacenter),
# built from the repository's modules.
#
# `cargo xtask quickstart` starts hybrid-host, runs `terraform init` and
# `terraform apply` here and prints a summary. To run terraform yourself
# afterwards:
#
#   source .build/quickstart/env.sh
#   terraform -chdir=examples/quickstart plan

# The site, as the infrastructure administrator sets it up: a vnet with its
# address pools, the hybrid operator on the management host and a custom
# location.
module "site" {
  source = "../../modules/site"

  name           = "quickstart"
  address_prefix = "10.20.0.0/24"
  gateway        = "10.20.0.1"
  dns_servers    = ["10.20.0.2"]
  vlan_id        = 20

  # Node VM addresses: nodes, plus one surge VM per cluster during upgrades.
  vm_ip_pool = {
    start = "10.20.0.10"
    end   = "10.20.0.99"
  }

  # API-server and load-balancer VIPs.
  vip_pool = {
    start = "10.20.0.200"
    end   = "10.20.0.219"
  }
}

# The cluster, as a Kubernetes operator sets it up inside the site.
module "cluster" {
  source = "../../modules/cluster"

  name               = "quickstart"
  custom_location_id = module.site.custom_location_id
  vnet_id            = module.site.vnet_id
  kubernetes_version = var.kubernetes_version
  network_plugin     = var.network_plugin
  node_pools         = var.node_pools

  # Flux, the GitOps baseline, installed once the pools are up.
  gitops = {
    enabled = var.gitops_enabled
  }
}

# A kubeconfig for the cluster never lands in state: it is an ephemeral
# resource, issued afresh on every run. To hand it to kubectl, uncomment:
#
# ephemeral "hybrid_kubeconfig" "admin" {
#   cluster_id = module.cluster.id
#   kind       = "user"
# }
#
# and use it in a provisioner, as examples/ephemeral-resources/hybrid_kubeconfig
# does. Without Terraform: see "Get a kubeconfig" in the README.
