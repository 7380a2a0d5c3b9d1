//! A go-plugin host, the way Terraform does it: parse the plugin's handshake
//! line and open a gRPC channel with auto-mTLS (present our certificate, trust
//! exactly the server certificate from the handshake). Used by tests and
//! tools that drive the provider binary directly.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use base64::Engine as _;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tonic::transport::{Channel, Endpoint, Uri};

use crate::tls::{self, Identity, TlsError};

/// Why a plugin could not be reached.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The handshake line is malformed.
    #[error("plugin handshake line {line:?} is invalid: {reason}")]
    Handshake {
        /// The line as read.
        line: String,
        /// Which rule it breaks.
        reason: String,
    },
    /// The plugin process could not be started or gave no handshake.
    #[error("launching the plugin failed: {reason}")]
    Launch {
        /// What went wrong.
        reason: String,
    },
    /// TLS material problem.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// gRPC connection failed.
    #[error("connecting to the plugin failed: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// A parsed go-plugin handshake line.
#[derive(Debug, Clone)]
pub struct Handshake {
    /// go-plugin core protocol version (1).
    pub core_version: u32,
    /// Application protocol version (6 for tfplugin6).
    pub app_version: u32,
    /// Listening address (network `tcp`).
    pub addr: SocketAddr,
    /// The server certificate, when the plugin serves mTLS.
    pub server_cert: Option<CertificateDer<'static>>,
}

/// Parses `CORE|APP|tcp|ADDR|grpc|CERT`.
pub fn parse_handshake_line(line: &str) -> Result<Handshake, ClientError> {
    let bad = |reason: &str| ClientError::Handshake {
        line: line.to_owned(),
        reason: reason.to_owned(),
    };
    let parts: Vec<&str> = line.trim_end().split('|').collect();
    if parts.len() < 5 {
        return Err(bad("must have at least 5 '|'-separated fields"));
    }
    let core_version = parts[0]
        .parse()
        .map_err(|_| bad("field 1 (core protocol version) must be an integer"))?;
    let app_version = parts[1]
        .parse()
        .map_err(|_| bad("field 2 (app protocol version) must be an integer"))?;
    if parts[2] != "tcp" {
        return Err(bad("field 3 (network) must be \"tcp\""));
    }
    let addr = parts[3]
        .parse()
        .map_err(|_| bad("field 4 (address) must be IP:PORT"))?;
    if parts[4] != "grpc" {
        return Err(bad("field 5 (protocol) must be \"grpc\""));
    }
    let server_cert = match parts.get(5).copied().filter(|c| !c.is_empty()) {
        None => None,
        Some(b64) => Some(CertificateDer::from(
            base64::engine::general_purpose::STANDARD_NO_PAD
                .decode(b64)
                .map_err(|_| bad("field 6 (server certificate) must be unpadded base64"))?,
        )),
    };
    Ok(Handshake {
        core_version,
        app_version,
        addr,
        server_cert,
    })
}

/// Opens a channel to the plugin. With a server certificate in the handshake
/// the connection is TLS, presenting `identity` (or no certificate at all
/// when `None`, which a correct plugin refuses).
pub async fn connect(
    handshake: &Handshake,
    identity: Option<&Identity>,
) -> Result<Channel, ClientError> {
    let endpoint = Endpoint::from_shared(format!("http://{}", handshake.addr))?;
    let Some(server_cert) = handshake.server_cert.clone() else {
        return Ok(endpoint.tcp_nodelay(true).connect().await?);
    };
    let config = tls::client_config(identity, server_cert)?;
    let addr = handshake.addr;
    let connector = tower::service_fn(move |_: Uri| {
        let config = Arc::clone(&config);
        async move {
            let tcp = TcpStream::connect(addr).await?;
            tcp.set_nodelay(true)?;
            let name = ServerName::try_from("localhost")
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
            let tls = tokio_rustls::TlsConnector::from(config)
                .connect(name, tcp)
                .await?;
            Ok::<_, io::Error>(hyper_util::rt::TokioIo::new(tls))
        }
    });
    Ok(endpoint.connect_with_connector(connector).await?)
}

/// Environment Terraform gives a plugin it launches, for `client_cert_pem`.
pub fn terraform_env(client_cert_pem: &str) -> Vec<(&'static str, String)> {
    vec![
        (
            crate::handshake::MAGIC_COOKIE_KEY,
            crate::handshake::MAGIC_COOKIE_VALUE.to_owned(),
        ),
        ("PLUGIN_PROTOCOL_VERSIONS", "6".to_owned()),
        ("PLUGIN_MIN_PORT", "10000".to_owned()),
        ("PLUGIN_MAX_PORT", "25000".to_owned()),
        ("PLUGIN_CLIENT_CERT", client_cert_pem.to_owned()),
    ]
}

/// A plugin process started the way Terraform starts one.
#[derive(Debug)]
pub struct LaunchedPlugin {
    /// The process (killed when dropped).
    pub child: tokio::process::Child,
    /// Its handshake.
    pub handshake: Handshake,
    /// The host certificate we gave it in `PLUGIN_CLIENT_CERT`.
    pub identity: Identity,
}

impl LaunchedPlugin {
    /// A channel presenting the certificate the plugin was launched with.
    pub async fn channel(&self) -> Result<Channel, ClientError> {
        connect(&self.handshake, Some(&self.identity)).await
    }
}

/// Starts `command` with a fresh Terraform-like client identity and
/// Terraform's environment, and reads the handshake line (10 s limit).
/// stdout is piped; stdin and stderr are left as the caller configured them.
pub async fn launch(mut command: tokio::process::Command) -> Result<LaunchedPlugin, ClientError> {
    use tokio::io::AsyncBufReadExt as _;

    let identity = tls::generate_terraform_like_client_identity()?;
    let launch_err = |reason: String| ClientError::Launch { reason };
    command
        .envs(terraform_env(&identity.cert_pem()))
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true);
    let mut child = command
        .spawn()
        .map_err(|e| launch_err(format!("starting the plugin failed: {e}")))?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| launch_err("plugin stdout was not captured".into()))?;
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let line = tokio::time::timeout(std::time::Duration::from_secs(10), lines.next_line())
        .await
        .map_err(|_| launch_err("no handshake line within 10 s".into()))?
        .map_err(|e| launch_err(format!("reading plugin stdout failed: {e}")))?
        .ok_or_else(|| launch_err("plugin exited before printing its handshake".into()))?;
    let handshake = parse_handshake_line(&line)?;
    // Keep draining stdout so a chatty plugin can never block on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok(LaunchedPlugin {
        child,
        handshake,
        identity,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_handshake_lines() {
        let h = parse_handshake_line("1|6|tcp|127.0.0.1:1234|grpc|3q2+7w\n").unwrap();
        assert_eq!((h.core_version, h.app_version), (1, 6));
        assert_eq!(h.addr.port(), 1234);
        assert_eq!(h.server_cert.unwrap().as_ref(), &[0xde, 0xad, 0xbe, 0xef]);
        let h = parse_handshake_line("1|6|tcp|127.0.0.1:1234|grpc|").unwrap();
        assert!(h.server_cert.is_none());
        let err = parse_handshake_line("1|6|unix|/tmp/x|grpc|").unwrap_err();
        assert!(err.to_string().contains("network"), "{err}");
        assert!(parse_handshake_line("hello").is_err());
    }
}
