# An extension is imported by its id, <target_id>/extensions/<name>; for the
# management host, /management-host/extensions/<name>.
terraform import hybrid_extension.flux /clusters/apps/extensions/flux
