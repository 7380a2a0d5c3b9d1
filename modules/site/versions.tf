terraform {
  # 1.11: the cluster module passes protected extension settings through an
  # ephemeral variable into a write-only attribute (ephemeral variables need
  # 1.10, write-only attributes 1.11); both modules require the same version
  # so that a root module using them has one minimum to meet.
  required_version = ">= 1.11"

  required_providers {
    hybrid = {
      source = "hybridops/hybrid"
    }
  }
}
