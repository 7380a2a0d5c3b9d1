# Earlier versions of this quickstart declared the vnet directly as
# `hybrid_vnet.main`; the site module holds it now. This tells Terraform it
# is the same object, so an existing quickstart state is updated in place
# instead of creating a second vnet with the same name.
moved {
  from = hybrid_vnet.main
  to   = module.site.hybrid_vnet.this
}
