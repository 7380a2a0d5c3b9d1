# Runs against a hybrid-host: HYBRID_ENDPOINT, HYBRID_TOKEN and
# HYBRID_CA_CERT_FILE must be set (plans call the provider too, which asks
# the service to admit the change). acceptance-tests/tests/modules.rs runs it
# in CI against a fresh host; it needs ../site next to this module.

# The site the clusters live in, from the site module. Applied first: the
# plans below are admitted by the service (a dry run), which needs the
# custom location and the vnet to exist.
run "site" {
  command = apply

  module {
    source = "../site"
  }

  variables {
    name           = "tt-cl"
    address_prefix = "10.40.0.0/24"
    gateway        = "10.40.0.1"
    vm_ip_pool     = { start = "10.40.0.10", end = "10.40.0.59" }
    vip_pool       = { start = "10.40.0.200", end = "10.40.0.209" }
  }
}

variables {
  name = "tt"
}

run "plan_defaults" {
  command = plan

  variables {
    custom_location_id = run.site.custom_location_id
    vnet_id            = run.site.vnet_id
  }

  assert {
    condition     = keys(hybrid_nodepool.this) == ["linux1"]
    error_message = "by default the cluster gets one Linux pool, linux1"
  }
  assert {
    condition     = hybrid_nodepool.this["linux1"].os_type == "linux" && hybrid_nodepool.this["linux1"].name == "linux1"
    error_message = "the pool's name is its map key"
  }
  assert {
    condition     = hybrid_cluster.this.network.plugin == "calico" && hybrid_cluster.this.control_plane.count == 1
    error_message = "calico and one control-plane VM by default"
  }
  assert {
    condition = hybrid_cluster.this.kubernetes_version == reverse([
      for v in data.hybrid_kubernetes_versions.this.versions : v.version if v.supported && contains(v.ready_for, "linux")
    ])[0]
    error_message = "a Linux-only cluster gets the newest supported Linux version, got ${hybrid_cluster.this.kubernetes_version}"
  }
  assert {
    condition     = length(hybrid_extension.this) == 0
    error_message = "no extensions unless asked for"
  }
}

run "plan_version_ready_for_each_pool_sku" {
  command = plan

  variables {
    custom_location_id = run.site.custom_location_id
    vnet_id            = run.site.vnet_id
    node_pools = {
      linux1 = {}
      win19  = { os_type = "windows", os_sku = "Windows2019" }
    }
  }

  # Readiness is per OS SKU: the default version must have node images for
  # Windows2019 (and for CBLMariner, the control plane's and linux1's SKU).
  assert {
    condition = hybrid_cluster.this.kubernetes_version == reverse([
      for v in data.hybrid_kubernetes_versions.this.versions : v.version
      if v.supported && contains(v.ready_for_skus, "Windows2019") && contains(v.ready_for_skus, "CBLMariner")
    ])[0]
    error_message = "a cluster with a Windows2019 pool gets the newest version ready for Windows2019, got ${hybrid_cluster.this.kubernetes_version}"
  }
}

run "plan_pools_extensions_and_gitops" {
  command = plan

  variables {
    custom_location_id  = run.site.custom_location_id
    vnet_id             = run.site.vnet_id
    control_plane_count = 3
    network_plugin      = "flannel"
    node_pools = {
      win1   = { os_type = "windows", node_count = 2 }
      linux1 = { node_count = 3, labels = { tier = "web" } }
      batch  = { auto_scaling = { min_count = 1, max_count = 4 } }
    }
    extensions = {
      gatekeeper = { extension_type = "policy", configuration_settings = { auditInterval = "60" } }
    }
    gitops = {
      enabled                = true
      configuration_settings = { syncInterval = "2m" }
    }
  }

  assert {
    condition     = keys(hybrid_nodepool.this) == ["batch", "linux1", "win1"]
    error_message = "pools are keyed by name"
  }
  assert {
    condition     = hybrid_nodepool.this["win1"].os_type == "windows" && hybrid_nodepool.this["win1"].node_count == 2
    error_message = "each pool gets its own settings"
  }
  assert {
    condition     = hybrid_nodepool.this["linux1"].labels == tomap({ tier = "web" })
    error_message = "labels pass through"
  }
  assert {
    condition     = hybrid_nodepool.this["batch"].auto_scaling.max_count == 4
    error_message = "auto_scaling passes through"
  }
  assert {
    condition     = hybrid_cluster.this.kubernetes_version == data.hybrid_kubernetes_versions.this.default_version
    error_message = "with a Windows pool the default is the newest version ready for Windows too, got ${hybrid_cluster.this.kubernetes_version}"
  }
  assert {
    condition     = hybrid_cluster.this.network.plugin == "flannel" && hybrid_cluster.this.control_plane.count == 3
    error_message = "network plugin and control-plane count pass through"
  }
  assert {
    condition     = keys(hybrid_extension.this) == ["flux", "gatekeeper"]
    error_message = "gitops adds a flux extension next to the listed ones"
  }
  assert {
    condition     = hybrid_extension.this["flux"].extension_type == "flux"
    error_message = "the GitOps extension is Flux"
  }
  assert {
    condition = hybrid_extension.this["flux"].configuration_settings == tomap({
      "helm-controller.detectDrift" = "true"
      "syncInterval"                = "2m"
    })
    error_message = "gitops settings are merged over the baseline"
  }
}

run "plan_explicit_version_wins" {
  command = plan

  variables {
    custom_location_id = run.site.custom_location_id
    vnet_id            = run.site.vnet_id
    kubernetes_version = "1.32.3"
  }

  assert {
    condition     = hybrid_cluster.this.kubernetes_version == "1.32.3"
    error_message = "kubernetes_version overrides the default"
  }
}

run "plan_auto_scaler_profile" {
  command = plan

  variables {
    custom_location_id  = run.site.custom_location_id
    vnet_id             = run.site.vnet_id
    auto_scaler_profile = { expander = "least-waste", scan_interval = "20s" }
    node_pools          = { linux1 = { auto_scaling = { min_count = 1, max_count = 3 } } }
  }

  assert {
    condition     = hybrid_cluster.this.auto_scaler_profile.expander == "least-waste" && hybrid_cluster.this.auto_scaler_profile.scan_interval == "20s"
    error_message = "the given autoscaler settings reach the cluster"
  }
  assert {
    condition     = hybrid_cluster.this.auto_scaler_profile.scale_down_unneeded == "10m" && hybrid_cluster.this.auto_scaler_profile.max_unready_percentage == 45
    error_message = "settings left out keep AKS's defaults"
  }
}

run "rejects_bad_pool_name" {
  command = plan

  variables {
    custom_location_id = run.site.custom_location_id
    vnet_id            = run.site.vnet_id
    node_pools         = { "Linux-1" = {} }
  }

  expect_failures = [var.node_pools]
}

run "rejects_node_count_out_of_range" {
  command = plan

  variables {
    custom_location_id = run.site.custom_location_id
    vnet_id            = run.site.vnet_id
    node_pools         = { linux1 = { node_count = 70 } }
  }

  expect_failures = [var.node_pools]
}

run "rejects_unknown_os_type" {
  command = plan

  variables {
    custom_location_id = run.site.custom_location_id
    vnet_id            = run.site.vnet_id
    node_pools         = { linux1 = { os_type = "macos" } }
  }

  expect_failures = [var.node_pools]
}

run "rejects_seventeen_pools" {
  command = plan

  variables {
    custom_location_id = run.site.custom_location_id
    vnet_id            = run.site.vnet_id
    node_pools         = { for i in range(17) : "pool${i}" => {} }
  }

  expect_failures = [var.node_pools]
}

run "rejects_node_count_with_auto_scaling" {
  command = plan

  variables {
    custom_location_id = run.site.custom_location_id
    vnet_id            = run.site.vnet_id
    node_pools         = { linux1 = { node_count = 2, auto_scaling = { min_count = 1, max_count = 3 } } }
  }

  expect_failures = [var.node_pools]
}

run "rejects_even_control_plane" {
  command = plan

  variables {
    custom_location_id  = run.site.custom_location_id
    vnet_id             = run.site.vnet_id
    control_plane_count = 2
  }

  expect_failures = [var.control_plane_count]
}

run "rejects_unknown_network_plugin" {
  command = plan

  variables {
    custom_location_id = run.site.custom_location_id
    vnet_id            = run.site.vnet_id
    network_plugin     = "cilium"
  }

  expect_failures = [var.network_plugin]
}

run "rejects_gitops_name_clash" {
  command = plan

  variables {
    custom_location_id = run.site.custom_location_id
    vnet_id            = run.site.vnet_id
    extensions         = { flux = { extension_type = "flux" } }
    gitops             = { enabled = true }
  }

  expect_failures = [var.gitops]
}

run "apply_cluster" {
  command = apply

  variables {
    custom_location_id = run.site.custom_location_id
    vnet_id            = run.site.vnet_id
    node_pools = {
      linux1 = { node_count = 2 }
      win1   = { os_type = "windows" }
    }
    gitops = {
      enabled                    = true
      protected_settings_version = "1"
    }
    protected_settings = {
      flux = { httpsUser = "flux", httpsPassword = "not-in-state" }
    }
  }

  assert {
    condition     = output.endpoint == "https://10.40.0.200:6443"
    error_message = "the API server gets the lowest free VIP, got ${output.endpoint}"
  }
  assert {
    condition     = startswith(output.ca_certificate, "-----BEGIN CERTIFICATE-----")
    error_message = "the cluster CA is a PEM certificate"
  }
  assert {
    condition     = output.kubernetes_version == data.hybrid_kubernetes_versions.this.default_version
    error_message = "the cluster runs the default version ready for Windows, got ${output.kubernetes_version}"
  }
  assert {
    condition     = output.node_pool_ids == { linux1 = "/clusters/tt/nodepools/linux1", win1 = "/clusters/tt/nodepools/win1" }
    error_message = "pool ids by name, got ${jsonencode(output.node_pool_ids)}"
  }
  assert {
    condition     = length(output.nodes["linux1"]) == 2 && length(output.nodes["win1"]) == 1
    error_message = "nodes by pool, got ${jsonencode(output.nodes)}"
  }
  assert {
    condition = alltrue([for n in flatten(values(output.nodes)) :
    n.ip != null && n.host != null && startswith(n.ip, "10.40.0.")])
    error_message = "every node has an address on the vnet and a host, got ${jsonencode(output.nodes)}"
  }
  assert {
    condition     = output.gitops_extension_id == "/clusters/tt/extensions/flux" && output.extension_ids == { flux = "/clusters/tt/extensions/flux" }
    error_message = "the Flux extension's id, got ${jsonencode(output.extension_ids)}"
  }
  assert {
    condition     = output.extension_versions["flux"] != null && hybrid_extension.this["flux"].provisioning_state == "Succeeded"
    error_message = "installed after the pools, Flux is running when the apply ends"
  }
}

# Scale one pool, add one, drop one: the untouched pool keeps its nodes.
run "change_pools" {
  command = apply

  variables {
    custom_location_id = run.site.custom_location_id
    vnet_id            = run.site.vnet_id
    node_pools = {
      linux2 = {}
      linux1 = { node_count = 3 }
    }
    gitops = {
      enabled                    = true
      protected_settings_version = "1"
    }
    protected_settings = {
      flux = { httpsUser = "flux", httpsPassword = "not-in-state" }
    }
  }

  assert {
    condition     = keys(output.nodes) == ["linux1", "linux2"] && length(output.nodes["linux1"]) == 3
    error_message = "linux1 scaled to 3 and linux2 added, got ${jsonencode(output.nodes)}"
  }
  assert {
    condition     = length(setsubtract(run.apply_cluster.nodes["linux1"], output.nodes["linux1"])) == 0
    error_message = "linux1 was scaled in place, so its first nodes are the same VMs: before ${jsonencode(run.apply_cluster.nodes["linux1"])}, after ${jsonencode(output.nodes["linux1"])}"
  }
  assert {
    condition     = output.kubernetes_version == run.apply_cluster.kubernetes_version
    error_message = "the default version is kept when the pools change"
  }
}
