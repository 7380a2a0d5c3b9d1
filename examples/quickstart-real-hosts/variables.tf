variable "vm_size" {
  description = "VM size of every VM, from the agents config the quickstart writes (`Tiny`: 1 vCPU, 160 MiB)."
  type        = string
  default     = "Tiny"
}
