//! The `terraform-provider-hybrid` binary: Terraform starts it and talks to it
//! over the plugin protocol.

fn main() -> std::process::ExitCode {
    hybrid_tfplugin::serve_main(terraform_provider_hybrid::provider)
}
