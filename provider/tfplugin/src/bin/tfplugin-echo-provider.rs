//! A tiny provider used only by this crate's process tests: GetMetadata names
//! one resource, GetProviderSchema returns a one-attribute provider schema
//! (enough for `terraform providers schema -json`), and CallFunction echoes
//! its first argument back, which lets the tests push large messages both
//! ways through the real server.

use hybrid_tfplugin::tfplugin6::{self, provider_server::Provider};
use tonic::{Request, Response, Status};

struct EchoProvider;

#[tonic::async_trait]
impl Provider for EchoProvider {
    async fn get_metadata(
        &self,
        _: Request<tfplugin6::get_metadata::Request>,
    ) -> Result<Response<tfplugin6::get_metadata::Response>, Status> {
        Ok(Response::new(tfplugin6::get_metadata::Response {
            resources: vec![tfplugin6::get_metadata::ResourceMetadata {
                type_name: "echo_thing".into(),
            }],
            ..Default::default()
        }))
    }

    async fn get_provider_schema(
        &self,
        _: Request<tfplugin6::get_provider_schema::Request>,
    ) -> Result<Response<tfplugin6::get_provider_schema::Response>, Status> {
        tracing::debug!("schema requested");
        Ok(Response::new(tfplugin6::get_provider_schema::Response {
            provider: Some(tfplugin6::Schema {
                version: 0,
                block: Some(tfplugin6::schema::Block {
                    attributes: vec![tfplugin6::schema::Attribute {
                        name: "greeting".into(),
                        r#type: br#""string""#.to_vec(),
                        description: "Echo test attribute.".into(),
                        optional: true,
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
            }),
            ..Default::default()
        }))
    }

    async fn call_function(
        &self,
        request: Request<tfplugin6::call_function::Request>,
    ) -> Result<Response<tfplugin6::call_function::Response>, Status> {
        tracing::info!(name = %request.get_ref().name, "echo");
        Ok(Response::new(tfplugin6::call_function::Response {
            result: request.into_inner().arguments.into_iter().next(),
            error: None,
        }))
    }
}

fn main() -> std::process::ExitCode {
    hybrid_tfplugin::serve_main(|| EchoProvider)
}
