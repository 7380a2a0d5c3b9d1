terraform {
  required_version = ">= 1.11"

  required_providers {
    hybrid = {
      source = "hybridops/hybrid"
    }
  }
}

# The provider reads HYBRID_ENDPOINT, HYBRID_TOKEN and HYBRID_CA_CERT_FILE
# from the environment, so nothing secret is written here.
provider "hybrid" {}
