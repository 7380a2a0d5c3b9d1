# List a cluster's node pools and the addresses of their nodes.
data "hybrid_nodepools" "prod" {
  cluster_id = "/clusters/prod-a"
}

output "pools" {
  value = {
    for p in data.hybrid_nodepools.prod.nodepools : p.name => {
      os_type    = p.os_type
      node_count = p.node_count
      node_ips   = [for n in p.nodes : n.ip]
    }
  }
}
