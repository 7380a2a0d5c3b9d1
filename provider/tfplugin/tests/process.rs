//! Process-level tests: the echo provider binary is started the way Terraform
//! starts a plugin and driven over real TCP + mTLS.

use std::process::Stdio;
use std::time::{Duration, Instant};

use hybrid_tfplugin::client::{self, LaunchedPlugin};
use hybrid_tfplugin::controller::grpc_broker_client::GrpcBrokerClient;
use hybrid_tfplugin::controller::grpc_controller_client::GrpcControllerClient;
use hybrid_tfplugin::controller::{ConnInfo, Empty};
use hybrid_tfplugin::tfplugin6::provider_client::ProviderClient;
use hybrid_tfplugin::tfplugin6::{self, DynamicValue};
use hybrid_tfplugin::tls;
use hybrid_tfplugin::tonic_health::pb::HealthCheckRequest;
use hybrid_tfplugin::tonic_health::pb::health_check_response::ServingStatus;
use hybrid_tfplugin::tonic_health::pb::health_client::HealthClient;
use tokio::io::AsyncReadExt as _;
use tokio::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_tfplugin-echo-provider");

fn command() -> Command {
    let mut c = Command::new(BIN);
    c.env_remove("TF_LOG")
        .env_remove("TF_LOG_PROVIDER")
        .stdin(Stdio::null())
        .stderr(Stdio::piped());
    c
}

async fn launch() -> LaunchedPlugin {
    client::launch(command()).await.unwrap()
}

async fn health(channel: tonic::transport::Channel) -> Result<i32, tonic::Status> {
    let resp = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: "plugin".into(),
        })
        .await?;
    Ok(resp.into_inner().status)
}

async fn stderr_of(p: &mut LaunchedPlugin) -> String {
    let mut s = String::new();
    if let Some(mut e) = p.child.stderr.take() {
        let _ = tokio::time::timeout(Duration::from_secs(5), e.read_to_string(&mut s)).await;
    }
    s
}

async fn shutdown_and_wait(p: &mut LaunchedPlugin) -> Duration {
    let start = Instant::now();
    GrpcControllerClient::new(p.channel().await.unwrap())
        .shutdown(Empty {})
        .await
        .unwrap();
    let status = tokio::time::timeout(Duration::from_secs(2), p.child.wait())
        .await
        .expect("plugin must exit within 2 s of Shutdown")
        .unwrap();
    assert!(status.success(), "{status:?}");
    start.elapsed()
}

#[tokio::test]
async fn run_by_hand_explains_and_fails() {
    let out = Command::new(BIN)
        .env_remove("TF_PLUGIN_MAGIC_COOKIE")
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("This binary is a plugin"), "{err}");
    assert!(err.contains("--debug"), "{err}");
}

#[tokio::test]
async fn refuses_hosts_without_protocol_6() {
    let out = Command::new(BIN)
        .env(
            "TF_PLUGIN_MAGIC_COOKIE",
            hybrid_tfplugin::handshake::MAGIC_COOKIE_VALUE,
        )
        .env("PLUGIN_PROTOCOL_VERSIONS", "4,5")
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty(), "no handshake may be printed");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("PLUGIN_PROTOCOL_VERSIONS"), "{err}");
    assert!(err.contains("\"4,5\""), "{err}");
}

#[tokio::test]
async fn mtls_handshake_health_metadata_and_shutdown() {
    let mut p = launch().await;
    let h = &p.handshake;
    assert_eq!((h.core_version, h.app_version), (1, 6));
    assert!(h.addr.ip().is_loopback());
    assert!((10000..=25000).contains(&h.addr.port()), "{}", h.addr);
    // The server certificate in the handshake is for localhost.
    let der = h
        .server_cert
        .clone()
        .expect("mTLS handshake carries a cert");
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).unwrap();
    let cn = cert.subject().iter_common_name().next().unwrap();
    assert_eq!(cn.as_str().unwrap(), "localhost");

    // The client pins the handshake certificate, so success here also
    // proves the server presented exactly that certificate.
    let channel = p.channel().await.unwrap();
    assert_eq!(
        health(channel.clone()).await.unwrap(),
        ServingStatus::Serving as i32
    );
    let md = ProviderClient::new(channel)
        .get_metadata(tfplugin6::get_metadata::Request {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(md.resources[0].type_name, "echo_thing");

    // Terraform keeps a go-plugin broker stream open for the plugin's whole
    // life; it must neither fail nor hold up shutdown.
    let mut broker = GrpcBrokerClient::new(p.channel().await.unwrap())
        .start_stream(tokio_stream::pending::<ConnInfo>())
        .await
        .unwrap()
        .into_inner();

    let took = shutdown_and_wait(&mut p).await;
    assert!(took < Duration::from_secs(2), "{took:?}");
    // The broker stream ended with the server instead of hanging.
    let end = tokio::time::timeout(Duration::from_secs(1), broker.message()).await;
    assert!(matches!(end, Ok(Ok(None)) | Ok(Err(_))), "{end:?}");
}

#[tokio::test]
async fn foreign_or_missing_client_certificates_are_refused() {
    let mut p = launch().await;

    let stranger = tls::generate_terraform_like_client_identity().unwrap();
    let foreign = match client::connect(&p.handshake, Some(&stranger)).await {
        Err(e) => e.to_string(),
        Ok(ch) => health(ch)
            .await
            .expect_err("foreign cert must be refused")
            .to_string(),
    };
    let anonymous = match client::connect(&p.handshake, None).await {
        Err(e) => e.to_string(),
        Ok(ch) => health(ch)
            .await
            .expect_err("no cert must be refused")
            .to_string(),
    };

    // The legitimate host still gets through afterwards.
    assert_eq!(
        health(p.channel().await.unwrap()).await.unwrap(),
        ServingStatus::Serving as i32
    );
    // A client pinning a different server certificate refuses the server.
    let mut wrong = p.handshake.clone();
    wrong.server_cert = Some(stranger.cert.clone());
    let spoof = match client::connect(&wrong, Some(&p.identity)).await {
        Err(_) => true,
        Ok(ch) => health(ch).await.is_err(),
    };
    assert!(spoof, "client must refuse an unexpected server certificate");

    shutdown_and_wait(&mut p).await;
    let stderr = stderr_of(&mut p).await;
    let refusals: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("refused a TLS connection"))
        .collect();
    assert!(
        refusals.len() >= 2,
        "foreign={foreign} anonymous={anonymous}\n{stderr}"
    );
    for line in refusals {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["@level"], "warn");
        assert_eq!(v["@module"], "provider");
    }
}

#[tokio::test]
async fn without_client_cert_serves_plain_grpc_like_go_plugin() {
    use tokio::io::AsyncBufReadExt as _;
    let mut child = command()
        .env(
            "TF_PLUGIN_MAGIC_COOKIE",
            hybrid_tfplugin::handshake::MAGIC_COOKIE_VALUE,
        )
        .env("PLUGIN_PROTOCOL_VERSIONS", "5,6")
        .env_remove("PLUGIN_CLIENT_CERT")
        .env_remove("PLUGIN_MIN_PORT")
        .env_remove("PLUGIN_MAX_PORT")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let line = lines.next_line().await.unwrap().unwrap();
    assert!(
        line.starts_with("1|6|tcp|127.0.0.1:") && line.ends_with("|grpc|"),
        "{line}"
    );
    let h = client::parse_handshake_line(&line).unwrap();
    let ch = client::connect(&h, None).await.unwrap();
    assert_eq!(
        health(ch.clone()).await.unwrap(),
        ServingStatus::Serving as i32
    );
    GrpcControllerClient::new(ch)
        .shutdown(Empty {})
        .await
        .unwrap();
    let status = tokio::time::timeout(Duration::from_secs(2), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success());
    assert_eq!(
        lines.next_line().await.unwrap(),
        None,
        "stdout must stay clean"
    );
}

#[tokio::test]
async fn fifty_mib_messages_pass_both_ways() {
    let mut p = launch().await;
    let big = vec![0x5a_u8; 50 * 1024 * 1024];
    let resp = ProviderClient::new(p.channel().await.unwrap())
        .max_decoding_message_size(hybrid_tfplugin::MAX_MESSAGE_SIZE)
        .max_encoding_message_size(hybrid_tfplugin::MAX_MESSAGE_SIZE)
        .call_function(tfplugin6::call_function::Request {
            name: "echo".into(),
            arguments: vec![DynamicValue {
                msgpack: big.clone(),
                json: vec![],
            }],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(resp.result.unwrap().msgpack.len(), big.len());
    shutdown_and_wait(&mut p).await;
}

#[tokio::test]
async fn logs_follow_tf_log_and_stdout_stays_clean() {
    let mut c = command();
    c.env("TF_LOG", "debug");
    let mut p = client::launch(c).await.unwrap();
    ProviderClient::new(p.channel().await.unwrap())
        .call_function(tfplugin6::call_function::Request {
            name: "hello".into(),
            arguments: vec![],
        })
        .await
        .unwrap();
    shutdown_and_wait(&mut p).await;
    let stderr = stderr_of(&mut p).await;
    let entries: Vec<serde_json::Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let echo = entries
        .iter()
        .find(|e| e["@message"] == "echo")
        .unwrap_or_else(|| panic!("{stderr}"));
    assert_eq!(echo["@level"], "info");
    assert_eq!(echo["name"], "hello");
    assert!(entries.iter().any(|e| e["@level"] == "debug"), "{stderr}");
}

#[tokio::test]
async fn interrupt_is_ignored_in_plugin_mode() {
    let mut p = launch().await;
    let pid = p.child.id().unwrap().to_string();
    let st = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap();
    assert!(st.success());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        p.child.try_wait().unwrap().is_none(),
        "plugin died on SIGINT"
    );
    assert_eq!(
        health(p.channel().await.unwrap()).await.unwrap(),
        ServingStatus::Serving as i32
    );
    shutdown_and_wait(&mut p).await;
}

#[tokio::test]
async fn debug_mode_prints_reattach_and_serves_plain_grpc() {
    use tokio::io::AsyncBufReadExt as _;
    let mut child = Command::new(BIN)
        .arg("--debug")
        .env_remove("TF_PLUGIN_MAGIC_COOKIE")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut reattach = None;
    while let Some(line) = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
        .await
        .unwrap()
        .unwrap()
    {
        if let Some(v) = line.trim().strip_prefix("TF_REATTACH_PROVIDERS='") {
            reattach = Some(v.trim_end_matches('\'').to_owned());
            break;
        }
    }
    let v: serde_json::Value = serde_json::from_str(&reattach.unwrap()).unwrap();
    let p = &v["registry.terraform.io/hybridops/hybrid"];
    assert_eq!(p["Pid"], child.id().unwrap());
    assert_eq!(p["ProtocolVersion"], 6);
    let addr = p["Addr"]["String"].as_str().unwrap();
    let line = format!("1|6|tcp|{addr}|grpc|");
    let h = client::parse_handshake_line(&line).unwrap();
    let ch = client::connect(&h, None).await.unwrap();
    assert_eq!(health(ch).await.unwrap(), ServingStatus::Serving as i32);

    let pid = child.id().unwrap().to_string();
    std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap();
    let status = tokio::time::timeout(Duration::from_secs(2), child.wait())
        .await
        .expect("debug server stops on Ctrl-C")
        .unwrap();
    assert!(status.success(), "{status:?}");
}
