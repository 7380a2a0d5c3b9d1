# Runs against a hybrid-host: HYBRID_ENDPOINT, HYBRID_TOKEN and
# HYBRID_CA_CERT_FILE must be set (plans call the provider too, which asks
# the service to admit the change). acceptance-tests/tests/modules.rs runs it
# in CI against a fresh host.

variables {
  name           = "tt-site"
  address_prefix = "10.30.0.0/24"
  gateway        = "10.30.0.1"
  dns_servers    = ["10.30.0.2"]
  vlan_id        = 30
  vm_ip_pool     = { start = "10.30.0.10", end = "10.30.0.99" }
  vip_pool       = { start = "10.30.0.200", end = "10.30.0.219" }
}

run "plan_creates_vnet_operator_and_location" {
  command = plan

  assert {
    condition     = hybrid_vnet.this.name == "tt-site" && hybrid_vnet.this.ip_allocation_method == "static"
    error_message = "the vnet takes the site's name and is static by default"
  }
  assert {
    condition     = hybrid_vnet.this.vlan_id == 30 && hybrid_vnet.this.gateway == "10.30.0.1"
    error_message = "the vnet gets the site's VLAN and gateway"
  }
  assert {
    condition     = length(hybrid_extension.operator) == 1
    error_message = "without operator_extension_id the module creates the operator"
  }
  assert {
    condition     = hybrid_extension.operator[0].name == "hybrid-operator-tt-site"
    error_message = "the operator's default name carries the site name, so sites of one service do not collide"
  }
  assert {
    condition     = hybrid_extension.operator[0].target_id == "/management-host" && hybrid_extension.operator[0].extension_type == "hybrid-operator"
    error_message = "the operator is a hybrid-operator extension on the management host"
  }
  assert {
    condition     = hybrid_custom_location.this.namespace == "tt-site" && hybrid_custom_location.this.host_id == "/management-host"
    error_message = "the custom location's namespace defaults to the site's name"
  }
}

run "plan_dhcp_site_has_no_vm_pool" {
  command = plan

  variables {
    ip_allocation_method = "dhcp"
    vm_ip_pool           = null
  }

  assert {
    condition     = hybrid_vnet.this.vm_ip_pool == null && hybrid_vnet.this.ip_allocation_method == "dhcp"
    error_message = "a dhcp site has no VM pool"
  }
}

run "rejects_vlan_out_of_range" {
  command = plan

  variables {
    vlan_id = 5000
  }

  expect_failures = [var.vlan_id]
}

run "rejects_bad_site_name" {
  command = plan

  variables {
    name = "Site_A"
  }

  expect_failures = [var.name]
}

run "rejects_ipv6_or_garbage_prefix" {
  command = plan

  variables {
    address_prefix = "10.30.0.0"
  }

  expect_failures = [var.address_prefix]
}

run "rejects_static_without_vm_pool" {
  command = plan

  variables {
    vm_ip_pool = null
  }

  expect_failures = [hybrid_vnet.this]
}

run "rejects_too_long_operator_name" {
  command = plan

  variables {
    name = "a-site-name-that-is-quite-long-indeed"
  }

  expect_failures = [hybrid_extension.operator]
}

run "apply_site" {
  command = apply

  assert {
    condition     = output.vnet_id == "/vnets/tt-site" && output.custom_location_id == "/custom-locations/tt-site"
    error_message = "ids are the resources' paths in the host API"
  }
  assert {
    condition     = output.operator_extension_id == "/management-host/extensions/hybrid-operator-tt-site"
    error_message = "the created operator's id is an output"
  }
  assert {
    condition     = hybrid_custom_location.this.cluster_extension_ids == tolist([output.operator_extension_id])
    error_message = "the custom location enables the created operator"
  }
  assert {
    condition     = output.free_addresses.vm_ip_pool == 90 && output.free_addresses.vip_pool == 20
    error_message = "a fresh site has all 90 VM and 20 VIP addresses free, got ${jsonencode(output.free_addresses)}"
  }
  assert {
    condition     = output.vm_ip_pool.size == 90 && output.vm_ip_pool.used == 0
    error_message = "the VM pool reports its size and usage"
  }
}

# The service checks that a referenced operator exists, so this plan runs
# once apply_site has created one.
run "plan_reuses_an_existing_operator" {
  command = plan

  variables {
    operator_extension_id = run.apply_site.operator_extension_id
    namespace             = "tenant-a"
  }

  assert {
    condition     = length(hybrid_extension.operator) == 0
    error_message = "with operator_extension_id no operator is created"
  }
  assert {
    condition     = hybrid_custom_location.this.cluster_extension_ids == tolist([run.apply_site.operator_extension_id])
    error_message = "the custom location enables the given operator"
  }
  assert {
    condition     = output.operator_extension_id == run.apply_site.operator_extension_id
    error_message = "operator_extension_id output passes the given id through"
  }
  assert {
    condition     = hybrid_custom_location.this.namespace == "tenant-a"
    error_message = "namespace overrides the default"
  }
}

# Two more sites against the same service: one shares the first site's
# operator, one creates its own under the default name. Both must apply
# next to the first site without any name clash.
run "apply_more_sites_on_one_service" {
  command = apply

  module {
    source = "./tests/two-sites"
  }

  variables {
    shared_operator_id = run.apply_site.operator_extension_id
  }

  assert {
    condition     = output.b.operator_extension_id == run.apply_site.operator_extension_id
    error_message = "site b reuses the first site's operator"
  }
  assert {
    condition     = output.c.operator_extension_id == "/management-host/extensions/hybrid-operator-tt-site-c"
    error_message = "site c creates its own operator"
  }
  assert {
    condition     = output.b.free_addresses.vm_ip_pool == null && output.c.free_addresses.vip_pool == 10
    error_message = "each site reports its own pools: ${jsonencode([output.b.free_addresses, output.c.free_addresses])}"
  }
}
