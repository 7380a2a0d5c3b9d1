# A vnet is imported by its id, /vnets/<name>.
terraform import hybrid_vnet.example /vnets/site-a-lan
