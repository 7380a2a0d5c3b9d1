//! The real `terraform-provider-hybrid` binary as Terraform sees it: started
//! with Terraform's environment (magic cookie, protocol 6, a fresh P-521
//! client certificate, port range), reached over auto-mTLS, and stopped with
//! the go-plugin controller.

use std::process::Stdio;
use std::time::{Duration, Instant};

use hybrid_tfplugin::client::{self, LaunchedPlugin};
use hybrid_tfplugin::controller::Empty;
use hybrid_tfplugin::controller::grpc_controller_client::GrpcControllerClient;
use hybrid_tfplugin::tfplugin6::{self, provider_client::ProviderClient};
use hybrid_tfplugin::tonic_health::pb::HealthCheckRequest;
use hybrid_tfplugin::tonic_health::pb::health_check_response::ServingStatus;
use hybrid_tfplugin::tonic_health::pb::health_client::HealthClient;
use tokio::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_terraform-provider-hybrid");

async fn launch() -> LaunchedPlugin {
    let mut c = Command::new(BIN);
    c.env_remove("TF_LOG")
        .env_remove("TF_LOG_PROVIDER")
        .stdin(Stdio::null())
        .stderr(Stdio::null());
    client::launch(c).await.unwrap()
}

async fn health(channel: tonic::transport::Channel) -> Result<i32, tonic::Status> {
    let resp = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: "plugin".into(),
        })
        .await?;
    Ok(resp.into_inner().status)
}

#[tokio::test]
async fn run_by_hand_prints_help_and_exits_1() {
    let out = Command::new(BIN)
        .env_remove("TF_PLUGIN_MAGIC_COOKIE")
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("This binary is a plugin"), "{err}");
}

#[tokio::test]
async fn serves_schema_over_mtls_and_stops_on_shutdown() {
    let mut p = launch().await;
    assert_eq!(p.handshake.app_version, 6);
    assert!(p.handshake.server_cert.is_some(), "auto-mTLS must be on");

    let channel = p.channel().await.unwrap();
    assert_eq!(
        health(channel.clone()).await.unwrap(),
        ServingStatus::Serving as i32
    );
    let schema = ProviderClient::new(channel.clone())
        .max_decoding_message_size(hybrid_tfplugin::MAX_MESSAGE_SIZE)
        .get_provider_schema(tfplugin6::get_provider_schema::Request {})
        .await
        .unwrap()
        .into_inner();
    assert!(
        schema.resource_schemas.contains_key("hybrid_vnet"),
        "resources: {:?}",
        schema.resource_schemas.keys().collect::<Vec<_>>()
    );

    let start = Instant::now();
    GrpcControllerClient::new(channel)
        .shutdown(Empty {})
        .await
        .unwrap();
    let status = tokio::time::timeout(Duration::from_secs(2), p.child.wait())
        .await
        .expect("provider must exit within 2 s of Shutdown")
        .unwrap();
    assert!(status.success(), "{status:?}");
    assert!(start.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn refuses_a_foreign_client_certificate() {
    let p = launch().await;
    let stranger = hybrid_tfplugin::tls::generate_terraform_like_client_identity().unwrap();
    let refused = match client::connect(&p.handshake, Some(&stranger)).await {
        Err(_) => true,
        Ok(ch) => health(ch).await.is_err(),
    };
    assert!(
        refused,
        "a certificate other than PLUGIN_CLIENT_CERT must be refused"
    );
    let refused = match client::connect(&p.handshake, None).await {
        Err(_) => true,
        Ok(ch) => health(ch).await.is_err(),
    };
    assert!(refused, "a client without certificate must be refused");
    // The real host still gets in.
    assert_eq!(
        health(p.channel().await.unwrap()).await.unwrap(),
        ServingStatus::Serving as i32
    );
}
