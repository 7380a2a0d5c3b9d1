# Where Kubernetes operators at site A may create clusters.
data "hybrid_management_host" "this" {}

resource "hybrid_custom_location" "example" {
  name         = "site-a"
  namespace    = "site-a"
  host_id      = data.hybrid_management_host.this.id
  display_name = "Site A (rack 1-4)"

  tags = {
    site = "a"
  }
}
