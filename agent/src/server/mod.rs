//! The agent's HTTPS API, the one hybrid-host calls (routes: the table at
//! the top of [`hybrid_api::agent`]).
//!
//! Direction (decided, issue 14): hybrid-host calls the agent. hybrid-host
//! may run as several replicas on one database; any replica can call any
//! agent with no session routing, each driver call is a request with an
//! answer, a timeout and a retry, and the heartbeat is hybrid-host's
//! `GET /v1/status` poll. The agent calls hybrid-host only once, to join
//! ([`crate::join`]).
//!
//! Mutual TLS ([`crate::tls::server_config`]): the agent serves the
//! certificate hybrid-host signed at join and accepts only clients whose
//! certificate hybrid-host's CA signed for `clientAuth`. Handlers map to
//! the [`Engine`]; errors are the service's JSON envelope
//! ([`failure::Failure`]); a request's log lines carry the request id of
//! its `traceparent` (`trace.rs`). Stopping the server leaves the VMs running:
//! QEMU outlives the agent, which re-adopts the VMs when it starts again.

mod failure;
mod trace;
mod vms;

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{Method, Uri};
use axum::routing::{get, post};
use axum::{Json, Router};
use axum_server::accept::Accept;
use axum_server::tls_rustls::RustlsConfig;
use hybrid_api::agent::AgentStatus;
use hybrid_api::inventory::Resources;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_rustls::server::TlsStream;

pub use failure::Failure;

use crate::engine::Engine;
use crate::status;

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    pub engine: Arc<Engine>,
    /// The agent's name (from `agent.json`).
    pub name: Arc<str>,
    /// Where the disk capacity is measured.
    pub data_dir: Arc<PathBuf>,
    /// Kept for the host itself; subtracted from what is measured.
    pub reserve: Resources,
}

/// Why the server could not start or ended badly.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("server failed: {0}")]
    Serve(std::io::Error),
}

/// Binds the listener (before the engine opens, so a taken port fails
/// the start before anything else happens).
pub fn bind(addr: SocketAddr) -> Result<std::net::TcpListener, ServeError> {
    let bind_err = |source| ServeError::Bind { addr, source };
    let listener = std::net::TcpListener::bind(addr).map_err(bind_err)?;
    listener.set_nonblocking(true).map_err(bind_err)?;
    Ok(listener)
}

/// A running server.
pub struct Server {
    /// `https://IP:PORT` (loopback shown for an unspecified address).
    pub endpoint: String,
    pub local_addr: SocketAddr,
    handle: axum_server::Handle<SocketAddr>,
    /// `None` once awaited (a `JoinHandle` must not be polled again).
    task: Option<JoinHandle<std::io::Result<()>>>,
}

fn ended(r: Result<std::io::Result<()>, tokio::task::JoinError>) -> Result<(), ServeError> {
    match r {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(ServeError::Serve(e)),
        Err(e) => Err(ServeError::Serve(std::io::Error::other(e.to_string()))),
    }
}

/// The routes of [`hybrid_api::agent`].
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/v1/status", get(get_status))
        .route("/v1/vms", get(vms::list))
        .route(
            "/v1/vms/{name}",
            get(vms::get).put(vms::put).delete(vms::delete),
        )
        .route("/v1/vms/{name}/stop", post(vms::stop))
        .route("/v1/vms/{name}/start", post(vms::start))
        .fallback(no_route)
        .method_not_allowed_fallback(no_method)
        // Each request's lines carry hybrid-host's request id (trace.rs).
        .layer(axum::middleware::from_fn(trace::span))
        .with_state(state)
}

async fn no_route(method: Method, uri: Uri) -> Failure {
    Failure::not_found(format!("no route {method} {}", uri.path()))
}

async fn no_method(method: Method, uri: Uri) -> Failure {
    Failure::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        hybrid_api::codes::BAD_REQUEST,
        format!("{} does not accept {method}", uri.path()),
    )
}

/// `GET /v1/status`: hybrid-host's heartbeat. Capacity is measured anew
/// each time (a filling disk shows at the next poll).
async fn get_status(State(state): State<AppState>) -> Result<Json<AgentStatus>, Failure> {
    let dir = state.data_dir.clone();
    let measured = tokio::task::spawn_blocking(move || status::measure(&dir))
        .await
        .map_err(|e| Failure::internal(format!("measuring capacity: {e}")))?
        .map_err(|e| Failure::internal(e.to_string()))?;
    let vms = state.engine.list().await;
    Ok(Json(AgentStatus {
        name: state.name.to_string(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        accelerator: state.engine.accelerator().as_str().to_string(),
        capacity: status::minus_reserve(measured, state.reserve),
        images: state.engine.images(),
        vms,
    }))
}

/// Logs each TLS connection: who connected (the client certificate's
/// common name, `hybrid-host` for hybrid-host's) and, for the ones the
/// handshake refused, why (a certificate from another CA, or not for
/// clientAuth). Without it, an operator whose hybrid-host cannot reach
/// the agent would see nothing on the agent's side.
#[derive(Clone)]
struct LogHandshakes<A>(A);

impl<A, S> Accept<TcpStream, S> for LogHandshakes<A>
where
    A: Accept<TcpStream, S, Stream = TlsStream<TcpStream>>,
    A::Future: Send + 'static,
{
    type Stream = A::Stream;
    type Service = A::Service;
    type Future = Pin<Box<dyn Future<Output = std::io::Result<(A::Stream, A::Service)>> + Send>>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        let peer = stream
            .peer_addr()
            .map(|a| a.to_string())
            .unwrap_or_else(|_| "?".into());
        let accepted = self.0.accept(stream, service);
        Box::pin(async move {
            match accepted.await {
                Ok((stream, service)) => {
                    let client = stream
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(|certs| certs.first())
                        .and_then(|cert| common_name(cert))
                        .unwrap_or_else(|| "?".into());
                    // Connections are pooled: one line per connection, not
                    // per heartbeat.
                    tracing::info!(%peer, %client, "client connected");
                    Ok((stream, service))
                }
                Err(e) => {
                    let tls = e
                        .get_ref()
                        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
                    match tls {
                        Some(reason) => {
                            tracing::warn!(%peer, %reason, "TLS handshake refused")
                        }
                        // Resets, timeouts, probes that never spoke TLS.
                        None => tracing::debug!(
                            %peer,
                            error = %e,
                            "connection ended before TLS was up"
                        ),
                    }
                    Err(e)
                }
            }
        })
    }
}

/// The subject's common name of a DER certificate.
fn common_name(cert: &[u8]) -> Option<String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert).ok()?;
    let cn = parsed.subject().iter_common_name().next()?;
    cn.as_str().ok().map(str::to_string)
}

/// Serves the API on `listener` with `tls` until [`Server::shutdown`].
pub fn serve(
    listener: std::net::TcpListener,
    tls: Arc<rustls::ServerConfig>,
    state: AppState,
) -> Result<Server, ServeError> {
    let local_addr = listener.local_addr().map_err(ServeError::Serve)?;
    let bind_err = |source| ServeError::Bind {
        addr: local_addr,
        source,
    };
    let app = router(state);
    let handle = axum_server::Handle::new();
    let server = axum_server::from_tcp_rustls(listener, RustlsConfig::from_config(tls))
        .map_err(bind_err)?
        // Without TCP_NODELAY the TLS 1.3 session tickets sent after the
        // handshake wait for the client's delayed ACK (~40 ms per new
        // connection).
        .map(|tls| LogHandshakes(tls.acceptor(axum_server::accept::NoDelayAcceptor::new())))
        .handle(handle.clone());
    let task = tokio::spawn(async move {
        server
            .serve(app.into_make_service_with_connect_info::<SocketAddr>())
            .await
    });
    let shown_ip = if local_addr.ip().is_unspecified() {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        local_addr.ip()
    };
    Ok(Server {
        endpoint: format!("https://{}", SocketAddr::new(shown_ip, local_addr.port())),
        local_addr,
        handle,
        task: Some(task),
    })
}

impl Server {
    /// Graceful shutdown: stop accepting and let requests finish (at most
    /// 10 s). The VMs are not touched.
    pub async fn shutdown(mut self) -> Result<(), ServeError> {
        self.handle.graceful_shutdown(Some(Duration::from_secs(10)));
        match self.task.take() {
            Some(task) => ended(task.await),
            None => Ok(()),
        }
    }

    /// Waits until the server ends on its own (e.g. the listener failed);
    /// cancel-safe, so it can race a shutdown signal.
    pub async fn wait(&mut self) -> Result<(), ServeError> {
        let Some(task) = &mut self.task else {
            return Ok(());
        };
        let r = task.await;
        self.task = None;
        ended(r)
    }
}
