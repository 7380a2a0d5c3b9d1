variable "name" {
  description = "Name of the site. Names the vnet and the custom location (and, by default, their namespace and the operator extension): a DNS label of 1–63 lower-case letters, digits or `-`. Changing it replaces the site."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$", var.name))
    error_message = "name must be a DNS label: 1-63 lower-case letters, digits or '-', starting and ending with a letter or digit."
  }
}

variable "address_prefix" {
  description = "IPv4 CIDR of the site's network, e.g. `10.10.0.0/24`. Changing it replaces the vnet."
  type        = string

  validation {
    condition     = can(cidrhost(var.address_prefix, 0)) && !strcontains(var.address_prefix, ":")
    error_message = "address_prefix must be an IPv4 CIDR such as 10.10.0.0/24."
  }
}

variable "ip_allocation_method" {
  description = "How node VMs get addresses: `static` (from `vm_ip_pool`) or `dhcp`. Changing it replaces the vnet."
  type        = string
  default     = "static"
  nullable    = false

  validation {
    condition     = contains(["static", "dhcp"], var.ip_allocation_method)
    error_message = "ip_allocation_method must be \"static\" or \"dhcp\"."
  }
}

variable "gateway" {
  description = "Default gateway, inside `address_prefix` and outside both pools. Null: none. Changing it replaces the vnet."
  type        = string
  default     = null
}

variable "dns_servers" {
  description = "DNS servers handed to VMs on the vnet. Null: none. Changing them replaces the vnet."
  type        = list(string)
  default     = null
}

variable "vlan_id" {
  description = "VLAN tag of the network, 0–4094. Null: untagged. Changing it replaces the vnet."
  type        = number
  default     = null

  validation {
    condition     = var.vlan_id == null || try(var.vlan_id >= 0 && var.vlan_id <= 4094 && floor(var.vlan_id) == var.vlan_id, false)
    error_message = "vlan_id must be a whole number from 0 to 4094."
  }
}

variable "vm_ip_pool" {
  description = "Addresses for node VMs, `{ start, end }` (inclusive), inside `address_prefix`. Required for `static`, must be null for `dhcp`. Grows in place."
  type = object({
    start = string
    end   = string
  })
  default = null
}

variable "vip_pool" {
  description = "Addresses for API-server and load-balancer VIPs, `{ start, end }` (inclusive), inside `address_prefix`. Every cluster needs at least one. Grows in place."
  type = object({
    start = string
    end   = string
  })
}

variable "namespace" {
  description = "Kubernetes namespace on the management host backing the custom location. Null: the site's `name`. Changing it replaces the custom location."
  type        = string
  default     = null
}

variable "display_name" {
  description = "Name of the custom location shown to Kubernetes operators. Null: none."
  type        = string
  default     = null
}

variable "operator_extension_id" {
  description = "Id of an existing hybrid operator extension on the management host (e.g. another site's `operator_extension_id` output) for the custom location to enable. Null: this module creates one, named `operator_extension_name`."
  type        = string
  default     = null

  validation {
    condition     = var.operator_extension_id == null || can(regex("^/management-host/extensions/[a-z0-9-]+$", var.operator_extension_id))
    error_message = "operator_extension_id must be a management-host extension id, /management-host/extensions/<name>."
  }
}

variable "operator_extension_name" {
  description = "Name of the hybrid operator extension this module creates when `operator_extension_id` is null (a DNS label of at most 40 characters). There is one management host per service, so every site of a service needs its own name: null means `hybrid-operator-<name>`."
  type        = string
  default     = null

  validation {
    condition     = var.operator_extension_name == null || can(regex("^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$", var.operator_extension_name))
    error_message = "operator_extension_name must be a DNS label of at most 40 characters."
  }
}

variable "operator_settings" {
  description = "`configuration_settings` of the hybrid operator extension this module creates (e.g. `{ logLevel = \"info\" }`). Ignored when `operator_extension_id` is set."
  type        = map(string)
  default     = null
}

variable "tags" {
  description = "Tags set on the vnet and the custom location."
  type        = map(string)
  default     = null
}
