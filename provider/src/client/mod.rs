//! The host management client: HTTPS + JSON calls to `hybrid-host`, with
//! bearer-token auth, retries of idempotent calls on transient failures,
//! failover between the replicas' endpoints, and long-poll waiting on
//! long-running operations. Every request carries a W3C `traceparent`
//! (see [`trace`]), whose trace id the service logs, stores with the
//! operations the request queues and returns in its errors.
//!
//! May depend on `hybrid-api` and, in this crate, only on the framework's
//! duration wording (`framework::timeouts::humanize`); never on resources,
//! data sources or anything that uses the client.

mod catalog;
mod clusters;
mod custom_locations;
mod error;
mod extensions;
mod kubeconfig;
mod nodepools;
mod objects;
pub mod trace;
mod vnets;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hybrid_api::{ErrorEnvelope, ManagementHost, Operation, OperationStatus};
use reqwest::{Method, StatusCode};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use error::{ClientError, cause_chain, request_id_line};
pub use objects::Put;

use crate::framework::timeouts::humanize;

/// How a mutating call was answered: already done, or queued as an operation.
#[derive(Debug)]
pub enum Accepted<T> {
    Done(Box<T>),
    Queued(Box<Operation>),
}

/// Transient failures are retried this many times, with doubling back-off.
const RETRIES: u32 = 4;
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
/// The longest single long-poll; the service caps it at 60 s.
/// Longest pause between polls while the service is unreachable.
const MAX_OUTAGE_BACKOFF: Duration = Duration::from_secs(5);
const LONG_POLL: Duration = Duration::from_secs(30);

#[derive(Clone)]
pub struct HostClient {
    /// The replicas' endpoints, in the order given (one for a single service).
    endpoints: Arc<[String]>,
    /// Index of the endpoint in use: the last one that answered. Shared by
    /// every clone, so all resources move to the next replica together.
    current: Arc<AtomicUsize>,
    token: Arc<str>,
    http: reqwest::Client,
}

impl std::fmt::Debug for HostClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostClient")
            .field("endpoints", &self.endpoints)
            .finish_non_exhaustive()
    }
}

/// Checks one endpoint: an `https://` URL.
fn endpoint_url(endpoint: &str) -> Result<String, ClientError> {
    let endpoint = endpoint.trim().trim_end_matches('/').to_string();
    let url = reqwest::Url::parse(&endpoint).map_err(|e| {
        ClientError::Config(format!(
            "endpoint {endpoint:?} is not a valid URL ({e}); expected https://HOST:PORT"
        ))
    })?;
    if url.scheme() != "https" {
        return Err(ClientError::Config(format!(
            "endpoint {endpoint:?} must use https:// (the service only speaks TLS)"
        )));
    }
    Ok(endpoint)
}

impl HostClient {
    /// A client for `endpoint` (`https://host:port`) that trusts only the CA
    /// certificates in `ca_pem`.
    pub fn new(endpoint: &str, token: &str, ca_pem: &str) -> Result<Self, ClientError> {
        Self::with_endpoints(&[endpoint.to_string()], token, ca_pem)
    }

    /// A client for the replicas at `endpoints` (tried in order; a call that
    /// cannot connect to one moves on to the next).
    pub fn with_endpoints(
        endpoints: &[String],
        token: &str,
        ca_pem: &str,
    ) -> Result<Self, ClientError> {
        if endpoints.is_empty() {
            return Err(ClientError::Config(
                "no endpoint: set `endpoint` or `endpoints`, or HYBRID_ENDPOINT".into(),
            ));
        }
        let endpoints = endpoints
            .iter()
            .map(|e| endpoint_url(e))
            .collect::<Result<Vec<_>, _>>()?;
        if token.trim().is_empty() {
            return Err(ClientError::Config(
                "token is empty: set the provider's `token` argument or HYBRID_TOKEN".into(),
            ));
        }
        let mut roots = rustls::RootCertStore::empty();
        let mut found = 0;
        for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
            let cert = cert.map_err(|e| {
                ClientError::Config(format!("ca_certificate is not valid PEM: {e}"))
            })?;
            roots.add(cert).map_err(|e| {
                ClientError::Config(format!("ca_certificate holds an unusable certificate: {e}"))
            })?;
            found += 1;
        }
        if found == 0 {
            return Err(ClientError::Config(
                "ca_certificate holds no PEM certificate (expected -----BEGIN CERTIFICATE-----)"
                    .into(),
            ));
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| ClientError::Config(format!("TLS set-up failed: {e}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!(
                "terraform-provider-hybrid/",
                env!("CARGO_PKG_VERSION")
            ))
            .build()
            .map_err(|e| ClientError::Config(format!("HTTP client set-up failed: {e}")))?;
        Ok(Self {
            endpoints: endpoints.into(),
            current: Arc::new(AtomicUsize::new(0)),
            token: token.into(),
            http,
        })
    }

    /// The endpoint in use (the one that answered last).
    pub fn endpoint(&self) -> &str {
        &self.endpoints[self.current.load(Ordering::Relaxed) % self.endpoints.len()]
    }

    /// Every endpoint, for messages about all of them.
    fn all_endpoints(&self) -> String {
        self.endpoints.join(", ")
    }

    /// Moves to the endpoint after `from` (unless another call moved
    /// already); returns the one now in use.
    fn fail_over(&self, from: usize) -> usize {
        let next = (from + 1) % self.endpoints.len();
        match self
            .current
            .compare_exchange(from, next, Ordering::Relaxed, Ordering::Relaxed)
        {
            Ok(_) => {
                tracing::warn!(from = %self.endpoints[from], to = %self.endpoints[next], "endpoint unreachable; failing over");
                next
            }
            Err(now) => now,
        }
    }

    /// Identifies the service; used at configure time to prove the endpoint,
    /// CA and token all work before any resource is touched.
    pub async fn management_host(&self) -> Result<ManagementHost, ClientError> {
        self.call(Method::GET, "/v1/management-host", None::<&()>, None)
            .await?
            .json()
            .await
    }

    /// Waits until `operation` ends or `timeout` passes, long-polling so the
    /// caller learns of completion at once.
    pub async fn wait(
        &self,
        operation: Operation,
        timeout: Duration,
    ) -> Result<Operation, ClientError> {
        let deadline = Instant::now() + timeout;
        let mut current = operation;
        let mut outage = FIRST_BACKOFF;
        loop {
            if current.status != OperationStatus::Running {
                return Ok(current);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(ClientError::Timeout {
                    operation: current.id,
                    target: current.target,
                    after: humanize(timeout),
                    request_id: current.request_id,
                });
            }
            let wait = left.min(LONG_POLL);
            let path = format!(
                "/v1/operations/{}?wait={}ms",
                current.id,
                wait.as_millis().max(1)
            );
            // The polls join the trace of the request that queued it.
            let polled = match current.request_id.clone() {
                Some(id) => trace::scope(id, self.poll(&path, wait)).await,
                None => self.poll(&path, wait).await,
            };
            match polled {
                Ok(op) => {
                    current = op;
                    outage = FIRST_BACKOFF;
                }
                // The service restarting (a crash, an upgrade) must not fail a
                // long apply: accepted operations survive restarts, so keep
                // asking until the deadline.
                Err(e @ (ClientError::Unreachable { .. } | ClientError::Protocol { .. })) => {
                    tracing::debug!(operation = %current.id, error = %e, "polling failed; retrying");
                    tokio::time::sleep(
                        outage.min(deadline.saturating_duration_since(Instant::now())),
                    )
                    .await;
                    outage = (outage * 2).min(MAX_OUTAGE_BACKOFF);
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn poll(&self, path: &str, wait: Duration) -> Result<Operation, ClientError> {
        self.call(Method::GET, path, None::<&()>, Some(wait))
            .await?
            .json()
            .await
    }

    /// Waits for `operation` and turns a failed one into an error.
    pub async fn wait_success(
        &self,
        operation: Operation,
        timeout: Duration,
    ) -> Result<Operation, ClientError> {
        let done = self.wait(operation, timeout).await?;
        match (&done.status, &done.error) {
            (OperationStatus::Succeeded, _) => Ok(done),
            (_, Some(error)) => {
                let mut error = error.clone();
                // The id the service logged the operation's work under.
                error.request_id = error
                    .request_id
                    .or_else(|| done.request_id.as_deref().map(Box::from));
                Err(ClientError::Api { status: 500, error })
            }
            (status, None) => Err(ClientError::Api {
                status: 500,
                error: hybrid_api::ApiError {
                    code: format!("{status:?}"),
                    message: format!("operation {} on {} ended {status:?}", done.id, done.target),
                    target: None,
                    details: Vec::new(),
                    request_id: done.request_id.as_deref().map(Box::from),
                },
            }),
        }
    }

    /// One API call. Idempotent methods are retried on transient failures;
    /// any error answer becomes `ClientError::Api` with the service's envelope.
    async fn call<B: Serialize + ?Sized>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
        long_poll: Option<Duration>,
    ) -> Result<Response, ClientError> {
        self.send(method, path, body, long_poll, &[]).await
    }

    async fn call_with<B: Serialize + ?Sized>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
        headers: &[(&str, &str)],
    ) -> Result<Response, ClientError> {
        self.send(method, path, body, None, headers).await
    }

    async fn send<B: Serialize + ?Sized>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
        long_poll: Option<Duration>,
        headers: &[(&str, &str)],
    ) -> Result<Response, ClientError> {
        let retryable = method != Method::POST && method != Method::PATCH;
        let mut backoff = FIRST_BACKOFF;
        let mut attempt = 0;
        // Endpoints tried in a row without an answer; all of them tried
        // means the service is down (or unreachable from here).
        let mut unreachable_in_a_row = 0;
        // One trace id for the call (the task's, when it runs in a trace),
        // a span id per attempt.
        let trace_id = trace::current().unwrap_or_else(trace::new_trace_id);
        loop {
            attempt += 1;
            let index = self.current.load(Ordering::Relaxed) % self.endpoints.len();
            let endpoint = &self.endpoints[index];
            let url = format!("{endpoint}{path}");
            let mut request = self
                .http
                .request(method.clone(), &url)
                .bearer_auth(&*self.token)
                .header(trace::TRACEPARENT, trace::traceparent(&trace_id))
                .timeout(long_poll.unwrap_or_default() + Duration::from_secs(60));
            for (name, value) in headers {
                request = request.header(*name, *value);
            }
            if let Some(body) = body {
                request = request.json(body);
            }
            let outcome = request.send().await;
            match &outcome {
                Ok(r) => {
                    tracing::debug!(%method, %endpoint, %path, status = r.status().as_u16(), attempt, "host API call")
                }
                Err(e) => {
                    tracing::debug!(%method, %endpoint, %path, error = %cause_chain(e), attempt, "host API call failed")
                }
            }
            // A request that never connected reached no replica: any
            // method may go to the next one. One that connected and then
            // lost its answer may have been done: only idempotent ones.
            let not_sent = matches!(&outcome, Err(e) if e.is_connect());
            let lost = matches!(&outcome, Err(e) if !e.is_connect());
            if self.endpoints.len() > 1
                && (not_sent || (lost && retryable))
                && unreachable_in_a_row + 1 < self.endpoints.len()
            {
                unreachable_in_a_row += 1;
                self.fail_over(index);
                continue;
            }
            let transient = match &outcome {
                Err(e) => e.is_connect() || e.is_timeout() || (retryable && e.is_request()),
                Ok(r) => matches!(
                    r.status(),
                    StatusCode::BAD_GATEWAY
                        | StatusCode::SERVICE_UNAVAILABLE
                        | StatusCode::GATEWAY_TIMEOUT
                        | StatusCode::TOO_MANY_REQUESTS
                ),
            };
            if transient && retryable && attempt <= RETRIES {
                tracing::debug!(%url, attempt, "transient failure; retrying");
                if outcome.is_err() && self.endpoints.len() > 1 {
                    // Every endpoint failed: start the next round at the next one.
                    unreachable_in_a_row = 0;
                    self.fail_over(index);
                }
                tokio::time::sleep(backoff).await;
                backoff *= 2;
                continue;
            }
            let response = outcome.map_err(|e| ClientError::Unreachable {
                endpoint: if self.endpoints.len() > 1 {
                    self.all_endpoints()
                } else {
                    endpoint.clone()
                },
                cause: cause_chain(&e),
            })?;
            return self.check(endpoint, response).await;
        }
    }

    async fn check(
        &self,
        endpoint: &str,
        response: reqwest::Response,
    ) -> Result<Response, ClientError> {
        let status = response.status();
        if status.is_success() {
            return Ok(Response {
                endpoint: endpoint.to_string(),
                inner: response,
            });
        }
        if status == StatusCode::UNAUTHORIZED {
            return Err(ClientError::Unauthorized {
                endpoint: endpoint.to_string(),
            });
        }
        let text = response.text().await.unwrap_or_default();
        match serde_json::from_str::<ErrorEnvelope>(&text) {
            Ok(envelope) => Err(ClientError::Api {
                status: status.as_u16(),
                error: envelope.error,
            }),
            Err(_) => Err(ClientError::Protocol {
                endpoint: endpoint.to_string(),
                detail: format!("HTTP {status} with body {:?}", truncate(&text, 300)),
            }),
        }
    }
}

/// A successful answer.
struct Response {
    endpoint: String,
    inner: reqwest::Response,
}

impl Response {
    fn status(&self) -> StatusCode {
        self.inner.status()
    }

    async fn json<T: DeserializeOwned>(self) -> Result<T, ClientError> {
        let endpoint = self.endpoint;
        let text = self
            .inner
            .text()
            .await
            .map_err(|e| ClientError::Unreachable {
                endpoint: endpoint.clone(),
                cause: cause_chain(&e),
            })?;
        serde_json::from_str(&text).map_err(|e| ClientError::Protocol {
            endpoint,
            detail: format!("cannot decode the answer: {e}"),
        })
    }
}

fn truncate(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((at, _)) => &text[..at],
        None => text,
    }
}
