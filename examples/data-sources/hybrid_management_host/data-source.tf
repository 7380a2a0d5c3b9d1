# The management host's id is what a custom location's host_id takes.
data "hybrid_management_host" "this" {}

output "host_id" {
  value = data.hybrid_management_host.this.id
}

output "driver" {
  value = data.hybrid_management_host.this.driver
}

output "simulated" {
  value = data.hybrid_management_host.this.simulated
}
