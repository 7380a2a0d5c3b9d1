# Find the VM sizes with at least 4 vCPUs and 16 GiB of memory.
data "hybrid_vm_sizes" "all" {}

output "large_sizes" {
  value = [
    for s in data.hybrid_vm_sizes.all.sizes : s.name
    if s.vcpus >= 4 && s.memory_mib >= 16384
  ]
}
