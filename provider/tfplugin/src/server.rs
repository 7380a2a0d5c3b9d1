//! The go-plugin gRPC server: listener, auto-mTLS accept loop, the services
//! Terraform expects next to the provider (controller, broker, health), the
//! announcement (handshake line or debug reattach text) and shutdown.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::pki_types::CertificateDer;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::{Connected, TcpConnectInfo};
use tonic::{Request, Response, Status};

use crate::controller::grpc_broker_server::{GrpcBroker, GrpcBrokerServer};
use crate::controller::grpc_controller_server::{GrpcController, GrpcControllerServer};
use crate::controller::{ConnInfo, Empty};
use crate::handshake::{self, HandshakeError, PortRange};
use crate::tfplugin6::provider_server::{Provider, ProviderServer};
use crate::tls::{self, TlsError};

/// Largest gRPC message accepted or sent (Terraform's own limit is 256 MiB;
/// large states and schemas must not be cut by tonic's 4 MiB default).
pub const MAX_MESSAGE_SIZE: usize = 256 * 1024 * 1024;

/// How long in-flight calls get to finish once shutdown starts.
pub const SHUTDOWN_GRACE: Duration = Duration::from_millis(500);

/// A TLS handshake slower than this is abandoned (protects the accept loop's
/// resources from half-open connections).
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The health service name go-plugin hosts check.
pub const HEALTH_SERVICE: &str = "plugin";

/// Why serving failed.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The go-plugin environment is unusable.
    #[error(transparent)]
    Handshake(#[from] HandshakeError),
    /// TLS material could not be made or loaded.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// No port could be bound.
    #[error("listening on 127.0.0.1 ({range}) failed: {source}")]
    Bind {
        /// The ports tried, for the message.
        range: String,
        /// The last bind error.
        source: io::Error,
    },
    /// The handshake/announcement could not be written.
    #[error("writing the plugin handshake to stdout failed: {0}")]
    Announce(io::Error),
    /// The gRPC server stopped with an error.
    #[error("gRPC server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// The async runtime could not be started.
    #[error("starting the async runtime failed: {0}")]
    Runtime(io::Error),
}

/// What to serve, read from the go-plugin environment.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// `--debug`: no cookie, plain gRPC, print `TF_REATTACH_PROVIDERS`.
    pub debug: bool,
    /// Where to listen.
    pub ports: PortRange,
    /// The host's certificate (`PLUGIN_CLIENT_CERT`): when set, serve mTLS
    /// and accept only this client certificate.
    pub client_cert: Option<CertificateDer<'static>>,
}

impl ServeConfig {
    /// Reads the process environment.
    pub fn from_env(debug: bool) -> Result<Self, ServeError> {
        Self::from_lookup(debug, |k| std::env::var(k).ok())
    }

    /// Reads variables through `get` (tests pass a map).
    pub fn from_lookup(
        debug: bool,
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ServeError> {
        if debug {
            return Ok(Self {
                debug,
                ports: PortRange::Any,
                client_cert: None,
            });
        }
        handshake::check_magic_cookie(get(handshake::MAGIC_COOKIE_KEY).as_deref())?;
        handshake::negotiate_protocol(get("PLUGIN_PROTOCOL_VERSIONS").as_deref())?;
        let ports = PortRange::from_env_values(
            get("PLUGIN_MIN_PORT").as_deref(),
            get("PLUGIN_MAX_PORT").as_deref(),
        )?;
        let client_cert = match get("PLUGIN_CLIENT_CERT").filter(|v| !v.trim().is_empty()) {
            Some(pem) => Some(tls::parse_client_cert_pem(&pem)?),
            None => None,
        };
        Ok(Self {
            debug,
            ports,
            client_cert,
        })
    }
}

/// What the server tells its host once it listens.
#[derive(Debug, Clone)]
pub struct Announcement {
    /// Listening address.
    pub addr: SocketAddr,
    /// Our certificate when serving mTLS.
    pub server_cert: Option<CertificateDer<'static>>,
    /// Debug mode (human text instead of the handshake line).
    pub debug: bool,
}

impl Announcement {
    /// The go-plugin handshake line (no trailing newline).
    pub fn handshake_line(&self) -> String {
        handshake::handshake_line(self.addr, self.server_cert.as_ref().map(|c| c.as_ref()))
    }

    /// What goes to stdout: the handshake line, or the debug-mode text.
    pub fn stdout_text(&self) -> String {
        if self.debug {
            format!(
                "Provider started. To attach Terraform CLI, set the TF_REATTACH_PROVIDERS environment variable with the following:\n\n\tTF_REATTACH_PROVIDERS='{}'\n\nPress Ctrl-C to stop the provider.\n",
                handshake::reattach_value(self.addr, std::process::id())
            )
        } else {
            format!("{}\n", self.handshake_line())
        }
    }
}

/// Writes the announcement to stdout and flushes it.
pub fn announce_to_stdout(a: &Announcement) -> io::Result<()> {
    use std::io::Write as _;
    let mut out = io::stdout().lock();
    out.write_all(a.stdout_text().as_bytes())?;
    out.flush()
}

/// A one-way shutdown switch shared by the controller, signals and server.
#[derive(Debug, Clone)]
pub struct Shutdown {
    tx: Arc<watch::Sender<bool>>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    /// Not yet triggered.
    pub fn new() -> Self {
        Self {
            tx: Arc::new(watch::channel(false).0),
        }
    }

    /// Starts shutdown (idempotent).
    pub fn trigger(&self) {
        self.tx.send_replace(true);
    }

    /// Whether shutdown has started.
    pub fn is_triggered(&self) -> bool {
        *self.tx.borrow()
    }

    /// Resolves once shutdown has started.
    pub async fn wait(&self) {
        let mut rx = self.tx.subscribe();
        // We hold the sender, so this cannot fail with "closed".
        let _ = rx.wait_for(|stopped| *stopped).await;
    }
}

/// go-plugin's controller: `Shutdown` makes the process exit.
#[derive(Debug)]
struct Controller {
    shutdown: Shutdown,
}

#[tonic::async_trait]
impl GrpcController for Controller {
    async fn shutdown(&self, _: Request<Empty>) -> Result<Response<Empty>, Status> {
        tracing::debug!("controller Shutdown received; stopping the plugin");
        self.shutdown.trigger();
        Ok(Response::new(Empty {}))
    }
}

/// go-plugin's broker: we offer no brokered connections, so the stream is
/// drained and held open until the host closes it or we shut down.
#[derive(Debug)]
struct Broker {
    shutdown: Shutdown,
}

#[tonic::async_trait]
impl GrpcBroker for Broker {
    async fn start_stream(
        &self,
        request: Request<tonic::Streaming<ConnInfo>>,
    ) -> Result<Response<tonic::codegen::BoxStream<ConnInfo>>, Status> {
        let mut inbound = request.into_inner();
        let (tx, rx) = mpsc::channel::<Result<ConnInfo, Status>>(1);
        let shutdown = self.shutdown.clone();
        tokio::spawn(async move {
            // Dropping `tx` at the end closes the response stream.
            let _tx = tx;
            loop {
                tokio::select! {
                    _ = shutdown.wait() => break,
                    msg = inbound.message() => match msg {
                        Ok(Some(info)) => tracing::debug!(
                            service_id = info.service_id,
                            "ignoring go-plugin broker request: this plugin offers no brokered connections"
                        ),
                        Ok(None) | Err(_) => break,
                    },
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

/// An accepted connection: plain TCP (debug mode) or mTLS.
enum Conn {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

impl Connected for Conn {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        match self {
            Conn::Plain(s) => s.connect_info(),
            Conn::Tls(s) => s.get_ref().0.connect_info(),
        }
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_flush(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Conn::Plain(s) => s.is_write_vectored(),
            Conn::Tls(s) => s.is_write_vectored(),
        }
    }
}

/// Binds 127.0.0.1 on the first free port of `ports`.
pub async fn bind(ports: PortRange) -> Result<TcpListener, ServeError> {
    let (min, max, label) = match ports {
        PortRange::Any => (0, 0, "any port".to_owned()),
        PortRange::Range { min, max } => (
            min,
            max,
            format!("ports {min}-{max} from PLUGIN_MIN_PORT/PLUGIN_MAX_PORT"),
        ),
    };
    let mut last = io::Error::new(io::ErrorKind::AddrNotAvailable, "no port tried");
    for port in min..=max {
        match TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await {
            Ok(l) => return Ok(l),
            Err(e) => last = e,
        }
    }
    Err(ServeError::Bind {
        range: label,
        source: last,
    })
}

/// Accepts connections, sets TCP_NODELAY, runs TLS handshakes off the accept
/// path and hands finished connections to the gRPC server. A client whose
/// certificate is refused never reaches the server.
async fn accept_loop(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    conns: mpsc::Sender<Result<Conn, io::Error>>,
    shutdown: Shutdown,
) {
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.wait() => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // E.g. EMFILE: back off instead of spinning.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        if let Err(e) = stream.set_nodelay(true) {
            tracing::warn!(error = %e, %peer, "setting TCP_NODELAY failed");
        }
        match &tls {
            None => {
                if conns.send(Ok(Conn::Plain(stream))).await.is_err() {
                    return;
                }
            }
            Some(acceptor) => {
                let acceptor = acceptor.clone();
                let conns = conns.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await
                    {
                        Ok(Ok(tls)) => {
                            let _ = conns.send(Ok(Conn::Tls(Box::new(tls)))).await;
                        }
                        Ok(Err(e)) => {
                            tracing::warn!(error = %e, %peer, "refused a TLS connection")
                        }
                        Err(_) => {
                            tracing::warn!(%peer, "TLS handshake timed out; connection dropped")
                        }
                    }
                });
            }
        }
    }
}

/// Serves `provider` until shutdown (controller `Shutdown`, or Ctrl-C in
/// debug mode). `announce` is called once the listener is ready.
pub async fn serve<P: Provider>(
    provider: P,
    config: ServeConfig,
    shutdown: Shutdown,
    announce: impl FnOnce(&Announcement) -> io::Result<()>,
) -> Result<(), ServeError> {
    let listener = bind(config.ports).await?;
    let addr = listener.local_addr().map_err(|e| ServeError::Bind {
        range: "local address".into(),
        source: e,
    })?;

    let (acceptor, server_cert) = match config.client_cert {
        Some(client_cert) => {
            let identity = tls::generate_server_identity()?;
            let server_config = tls::server_config(&identity, client_cert)?;
            (
                Some(tokio_rustls::TlsAcceptor::from(server_config)),
                Some(identity.cert.clone()),
            )
        }
        None => (None, None),
    };

    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter
        .set_service_status(HEALTH_SERVICE, tonic_health::ServingStatus::Serving)
        .await;

    let router = tonic::transport::Server::builder()
        .add_service(health_service)
        .add_service(GrpcControllerServer::new(Controller {
            shutdown: shutdown.clone(),
        }))
        .add_service(GrpcBrokerServer::new(Broker {
            shutdown: shutdown.clone(),
        }))
        .add_service(
            ProviderServer::new(provider)
                .max_decoding_message_size(MAX_MESSAGE_SIZE)
                .max_encoding_message_size(MAX_MESSAGE_SIZE),
        );

    let (conn_tx, conn_rx) = mpsc::channel(16);
    tokio::spawn(accept_loop(listener, acceptor, conn_tx, shutdown.clone()));

    if config.debug {
        let s = shutdown.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                tracing::info!("interrupt received; stopping the provider");
                s.trigger();
            }
        });
    } else {
        // Ctrl-C reaches the whole process group; like go-plugin we ignore it
        // and let Terraform stop us (StopProvider, then controller Shutdown).
        tokio::spawn(async {
            while tokio::signal::ctrl_c().await.is_ok() {
                tracing::debug!("interrupt ignored: Terraform shuts the plugin down");
            }
        });
    }

    let announcement = Announcement {
        addr,
        server_cert,
        debug: config.debug,
    };
    announce(&announcement).map_err(ServeError::Announce)?;
    tracing::debug!(%addr, tls = announcement.server_cert.is_some(), "plugin serving");

    let serve = router.serve_with_incoming_shutdown(ReceiverStream::new(conn_rx), {
        let s = shutdown.clone();
        async move { s.wait().await }
    });
    tokio::pin!(serve);
    tokio::select! {
        result = &mut serve => result?,
        _ = async {
            shutdown.wait().await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        } => {
            tracing::debug!("graceful shutdown did not finish in time; exiting anyway");
        }
    }
    Ok(())
}

/// Runs [`serve`] on a fresh runtime with the process environment and
/// stdout; returns when the server has stopped.
pub fn run_blocking<P, F>(make: F, debug: bool) -> Result<(), ServeError>
where
    F: FnOnce() -> P,
    P: Provider,
{
    let config = ServeConfig::from_env(debug)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(ServeError::Runtime)?;
    let provider = {
        // Providers may spawn tasks while being built.
        let _guard = runtime.enter();
        make()
    };
    let result = runtime.block_on(serve(provider, config, Shutdown::new(), announce_to_stdout));
    // Do not wait for work the provider left running (e.g. a hung request).
    runtime.shutdown_timeout(Duration::from_millis(100));
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn config_requires_cookie_unless_debug() {
        let err = ServeConfig::from_lookup(false, lookup(&[])).unwrap_err();
        assert!(matches!(
            err,
            ServeError::Handshake(HandshakeError::NotAPlugin)
        ));
        let c = ServeConfig::from_lookup(true, lookup(&[])).unwrap();
        assert!(c.debug && c.client_cert.is_none());
    }

    #[test]
    fn config_reads_versions_ports_and_cert() {
        let id = tls::generate_terraform_like_client_identity().unwrap();
        let pem = id.cert_pem();
        let c = ServeConfig::from_lookup(
            false,
            lookup(&[
                (handshake::MAGIC_COOKIE_KEY, handshake::MAGIC_COOKIE_VALUE),
                ("PLUGIN_PROTOCOL_VERSIONS", "5,6"),
                ("PLUGIN_MIN_PORT", "10000"),
                ("PLUGIN_MAX_PORT", "25000"),
                ("PLUGIN_CLIENT_CERT", &pem),
            ]),
        )
        .unwrap();
        assert_eq!(
            c.ports,
            PortRange::Range {
                min: 10000,
                max: 25000
            }
        );
        assert_eq!(c.client_cert.unwrap().as_ref(), id.cert.as_ref());

        let err = ServeConfig::from_lookup(
            false,
            lookup(&[
                (handshake::MAGIC_COOKIE_KEY, handshake::MAGIC_COOKIE_VALUE),
                ("PLUGIN_PROTOCOL_VERSIONS", "5"),
            ]),
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("PLUGIN_PROTOCOL_VERSIONS"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn accepted_connections_get_tcp_nodelay() {
        let listener = bind(PortRange::Any).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, mut rx) = mpsc::channel(1);
        let shutdown = Shutdown::new();
        let task = tokio::spawn(accept_loop(listener, None, tx, shutdown.clone()));
        let _client = TcpStream::connect(addr).await.unwrap();
        match rx.recv().await.unwrap().unwrap() {
            Conn::Plain(s) => assert!(s.nodelay().unwrap()),
            Conn::Tls(_) => panic!("plain listener produced TLS"),
        }
        shutdown.trigger();
        tokio::time::timeout(Duration::from_secs(1), task)
            .await
            .expect("accept loop stops on shutdown")
            .unwrap();
    }

    #[tokio::test]
    async fn bind_uses_the_range_and_skips_busy_ports() {
        let first = bind(PortRange::Any).await.unwrap();
        let busy = first.local_addr().unwrap().port();
        if busy == u16::MAX {
            return; // cannot build a range after it
        }
        let l = bind(PortRange::Range {
            min: busy,
            max: busy + 1,
        })
        .await;
        // The busy port is skipped; the next one is used if it is free.
        if let Ok(l) = l {
            assert_eq!(l.local_addr().unwrap().port(), busy + 1);
        }
        let err = bind(PortRange::Range {
            min: busy,
            max: busy,
        })
        .await
        .unwrap_err();
        assert!(err.to_string().contains("PLUGIN_MIN_PORT"), "{err}");
    }
}
