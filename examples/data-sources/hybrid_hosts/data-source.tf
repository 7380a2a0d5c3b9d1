# Check the datacenter has room before adding nodes: free capacity in
# total and per host.
data "hybrid_hosts" "all" {}

output "free_vcpus" {
  value = data.hybrid_hosts.all.free_vcpus
}

output "free_memory_gib" {
  value = floor(data.hybrid_hosts.all.free_memory_mib / 1024)
}

output "free_vcpus_per_host" {
  value = {
    for h in data.hybrid_hosts.all.hosts : h.name => h.free.vcpus
    if h.state == "Up"
  }
}
