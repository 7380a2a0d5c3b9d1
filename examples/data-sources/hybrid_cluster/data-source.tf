# Read a cluster another team manages, e.g. to reach its API server or to
# add node pools to it from this configuration.
data "hybrid_cluster" "prod" {
  name = "prod-a"
}

output "api_server" {
  value = data.hybrid_cluster.prod.endpoint
}

output "kubernetes_version" {
  value = data.hybrid_cluster.prod.current_kubernetes_version
}

output "control_plane_ips" {
  value = [for n in data.hybrid_cluster.prod.control_plane_nodes : n.ip]
}

# When the cluster's certificates would lapse; the service renews them
# before that by itself (renew_after), so this date moves forward.
output "certificates_not_after" {
  value = data.hybrid_cluster.prod.certificates.not_after
}
