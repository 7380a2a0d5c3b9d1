# A small cluster, an admin kubeconfig for it, and kubectl using that
# kubeconfig — without the kubeconfig ever reaching the plan or the state.
resource "hybrid_vnet" "lab" {
  name           = "lab-lan"
  address_prefix = "10.20.0.0/24"
  gateway        = "10.20.0.1"

  vm_ip_pool = {
    start = "10.20.0.10"
    end   = "10.20.0.49"
  }

  vip_pool = {
    start = "10.20.0.200"
    end   = "10.20.0.209"
  }
}

resource "hybrid_custom_location" "lab" {
  name      = "lab"
  namespace = "lab"
  host_id   = "/management-host"
}

resource "hybrid_cluster" "lab" {
  name               = "lab"
  custom_location_id = hybrid_custom_location.lab.id
  vnet_id            = hybrid_vnet.lab.id

  control_plane = {
    count = 1
  }
}

# Issued afresh by the service each time Terraform runs; never stored.
ephemeral "hybrid_kubeconfig" "admin" {
  cluster_id = hybrid_cluster.lab.id
  kind       = "admin"
}

# Ephemeral values may be used in provisioners: the kubeconfig goes to
# kubectl through the environment and a private temporary file that is
# removed afterwards. kubectl-view.json holds kubectl's view of it, with the
# certificate and key data redacted.
resource "terraform_data" "kubectl" {
  triggers_replace = [hybrid_cluster.lab.id]

  provisioner "local-exec" {
    environment = {
      KUBECONFIG_DATA = ephemeral.hybrid_kubeconfig.admin.kubeconfig_raw
    }
    command = <<-EOT
      set -eu
      umask 077
      kubeconfig="$(mktemp)"
      trap 'rm -f "$kubeconfig"' EXIT
      printf '%s' "$KUBECONFIG_DATA" > "$kubeconfig"
      kubectl config view --kubeconfig "$kubeconfig" -o json > "${path.module}/kubectl-view.json"
    EOT
  }
}
