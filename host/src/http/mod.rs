//! The HTTP API: router, shared state, extractors (strict JSON bodies,
//! query strings and path parameters, bearer-token auth), the one body
//! size limit, `ETag`/`If-Match` headers, and the one mapping from the
//! domain's errors to status codes and the error envelope ([`failure`]),
//! which every error answer is. One module per route family; each parses the request,
//! calls its kind's admission or views, and shapes the answer.
//!
//! This is the only module that uses axum, hyper or `http` types. May
//! depend on every kind, [`crate::objects`], [`crate::operations`] (to wake
//! the worker and wait for operations), [`crate::store`],
//! [`crate::driver`] and [`crate::security`].

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use serde_json::Value;
use tokio::sync::watch;
use tracing::Instrument;

use crate::driver::Driver;
use crate::objects::Preconditions;
use crate::observability::metrics as instruments;
use crate::observability::trace::{self, TraceContext};
use crate::operations::Operations;
use crate::security::tokens::Token;

pub use auth::ScrapeTokens;

pub use failure::Failure;

mod admit;
mod agents;
mod auth;
mod body;
mod catalog;
mod clusters;
pub mod connections;
mod console;
mod custom_locations;
mod extension_types;
mod extensions;
mod failure;
mod health;
mod kubeconfig;
mod management_host;
mod metrics;
mod nodepools;
mod operations;
mod path;
mod query;
mod reservations;
mod vnets;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn crate::store::Store>,
    /// The datacenter (catalogues, inventory).
    pub driver: Arc<dyn Driver>,
    pub operations: Arc<Operations>,
    pub openapi: Arc<Value>,
    pub management_host: Arc<hybrid_api::ManagementHost>,
    /// Becomes true on shutdown, so long-polls return promptly.
    pub shutdown: watch::Receiver<bool>,
    /// This replica's name (`/healthz`).
    pub replica: Arc<str>,
    /// Signs the certificates of joining agents.
    pub agent_ca: Arc<crate::security::agent_ca::AgentCa>,
    /// How long a console session lasts.
    pub console_session_ttl: std::time::Duration,
}

/// Builds the router: public routes, then token-protected ones. `scrape`
/// says which tokens `/metrics` accepts.
pub fn router(state: AppState, token: Token, scrape: ScrapeTokens) -> Router {
    let protected = Router::new()
        .route("/v1/management-host", get(management_host::get))
        .route("/v1/vnets", get(vnets::list))
        .route(
            "/v1/vnets/{name}",
            get(vnets::get)
                .put(vnets::put)
                .patch(vnets::patch)
                .delete(vnets::delete),
        )
        .route(
            "/v1/vnets/{name}/reservations",
            get(reservations::list).post(reservations::create),
        )
        .route(
            "/v1/vnets/{name}/reservations/{address}",
            delete(reservations::delete),
        )
        .route("/v1/operations/{id}", get(operations::get))
        .route("/v1/hosts", get(catalog::hosts))
        .route("/v1/kubernetes-versions", get(catalog::kubernetes_versions))
        .route("/v1/vm-sizes", get(catalog::vm_sizes))
        .route("/v1/custom-locations", get(custom_locations::list))
        .route(
            "/v1/custom-locations/{name}",
            get(custom_locations::get)
                .put(custom_locations::put)
                .patch(custom_locations::patch)
                .delete(custom_locations::delete),
        )
        .route("/v1/clusters", get(clusters::list))
        .route(
            "/v1/clusters/{name}",
            get(clusters::get)
                .put(clusters::put)
                .patch(clusters::patch)
                .delete(clusters::delete),
        )
        .route("/v1/clusters/{cluster}/nodepools", get(nodepools::list))
        .route(
            "/v1/clusters/{cluster}/nodepools/{name}",
            get(nodepools::get)
                .put(nodepools::put)
                .patch(nodepools::patch)
                .delete(nodepools::delete),
        )
        .route("/v1/clusters/{name}/kubeconfig", post(kubeconfig::issue))
        .route(
            "/v1/clusters/{name}/rotate-certificates",
            post(clusters::rotate_certificates),
        )
        .route("/v1/audit", get(kubeconfig::audit_log))
        .route("/v1/extension-types", get(extension_types::list))
        .route("/v1/extension-types/{name}", get(extension_types::get))
        .route("/v1/clusters/{cluster}/extensions", get(extensions::list))
        .route(
            "/v1/clusters/{cluster}/extensions/{name}",
            get(extensions::get)
                .put(extensions::put)
                .patch(extensions::patch)
                .delete(extensions::delete),
        )
        .route("/v1/management-host/extensions", get(extensions::host_list))
        .route(
            "/v1/management-host/extensions/{name}",
            get(extensions::host_get)
                .put(extensions::host_put)
                .patch(extensions::host_patch)
                .delete(extensions::host_delete),
        )
        .route("/v1/agents", get(agents::list))
        .route("/v1/agents/{name}", get(agents::get))
        .route("/v1/agents/{name}/revoke", post(agents::revoke))
        .route("/v1/agent-tokens", post(agents::mint_token))
        .route_layer(middleware::from_fn_with_state(token, auth::require_token));
    let routes = Router::new()
        // Authenticated by its join token, not the admin token.
        .route("/v1/agents/join", post(agents::join))
        .merge(metrics_router(scrape))
        .route("/healthz", get(health::get))
        .route("/readyz", get(health::ready))
        .route("/v1/openapi.json", get(health::openapi))
        // The console: its own session cookie, its own headers.
        .merge(console::routes())
        .merge(protected)
        .fallback(not_found)
        .layer(middleware::from_fn(body::limit_body))
        .layer(middleware::from_fn(remember_route))
        .with_state(state);
    around(routes)
}

/// What every listener wraps its routes in: the request's trace, its log
/// line and the error envelope. Around the whole router, not each route:
/// axum adds a 405's `Allow` outside a route's layers, and the envelope
/// quotes it.
fn around(routes: Router) -> Router {
    Router::new()
        .fallback_service(routes)
        .layer(middleware::from_fn(failure::envelope))
        .layer(middleware::from_fn(log_request))
        .layer(middleware::from_fn(trace_request))
}

/// `/metrics` alone, behind the tokens a scraper may present.
fn metrics_router(scrape: ScrapeTokens) -> Router<AppState> {
    Router::new()
        .route("/metrics", get(metrics::get))
        .route_layer(middleware::from_fn_with_state(
            scrape,
            auth::require_scrape_token,
        ))
}

/// The router of `--metrics-listen`: `/metrics` only, with the same
/// request logging and error envelope as the API.
pub fn metrics_only(state: AppState, scrape: ScrapeTokens) -> Router {
    let routes = metrics_router(scrape)
        .fallback(not_found)
        .layer(middleware::from_fn(remember_route))
        .with_state(state);
    around(routes)
}

/// The request's id: the trace id of its W3C `traceparent` (a new one when
/// it has none, or an invalid one). Everything the request logs runs in a
/// span carrying it, error bodies quote it (see [`Failure`]), operations
/// it queues store it, and the answer's `traceparent` (naming this
/// service's span) and `x-request-id` headers return it.
async fn trace_request(req: Request, next: Next) -> Response {
    let context = TraceContext::for_request(
        req.headers()
            .get(trace::TRACEPARENT)
            .and_then(|v| v.to_str().ok()),
    );
    let span = tracing::info_span!("request", request_id = %context.trace_id);
    let mut resp = trace::scope(context.trace_id.clone(), next.run(req))
        .instrument(span)
        .await;
    let headers = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&context.traceparent()) {
        headers.insert(trace::TRACEPARENT, v);
    }
    if let Ok(v) = HeaderValue::from_str(&context.trace_id) {
        headers.insert(trace::REQUEST_ID_HEADER, v);
    }
    resp
}

/// The route template a request matched (`/v1/vnets/{name}`), carried out
/// on the response for [`log_request`], which runs outside the router and
/// so cannot see [`MatchedPath`] itself.
#[derive(Debug, Clone)]
struct RouteTemplate(Arc<str>);

/// The label of requests no route matched (404s of unknown paths): one
/// series, whatever paths a scanner tries.
const UNMATCHED: &str = "unmatched";

async fn remember_route(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| RouteTemplate(Arc::from(m.as_str())));
    let mut resp = next.run(req).await;
    if let Some(route) = route {
        resp.extensions_mut().insert(route);
    }
    resp
}

async fn not_found(req: Request) -> Failure {
    Failure::not_found(format!(
        "no route for {} {}",
        req.method(),
        req.uri().path()
    ))
}

/// Logs method, path, status and latency (never headers: they carry the
/// token) and counts the request in the metrics under its route template.
async fn log_request(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let start = Instant::now();
    let resp = next.run(req).await;
    let elapsed = start.elapsed();
    let status = resp.status().as_u16();
    let route = resp
        .extensions()
        .get::<RouteTemplate>()
        .map_or(UNMATCHED, |r| &r.0);
    // Only the methods HTTP defines, so a client's made-up method cannot
    // add series either.
    let method_label = match method.as_str() {
        m @ ("GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE" | "OPTIONS") => m,
        _ => "other",
    };
    instruments::request(method_label, route, status, elapsed);
    tracing::info!(
        %method,
        %path,
        status,
        elapsed_ms = elapsed.as_millis() as u64,
        "request"
    );
    resp
}

/// ETag header value for an etag (quoted, as HTTP wants).
pub fn etag_header(etag: &str) -> Option<HeaderValue> {
    HeaderValue::from_str(&format!("\"{etag}\"")).ok()
}

fn etag_list(v: &HeaderValue) -> Vec<String> {
    v.to_str()
        .unwrap_or("")
        .split(',')
        .map(|s| {
            let s = s.trim();
            let s = s.strip_prefix("W/").unwrap_or(s);
            s.trim_matches('"').to_string()
        })
        .filter(|s| !s.is_empty())
        .collect()
}

/// Preconditions from `If-Match` / `If-None-Match`.
pub fn preconditions(h: &HeaderMap) -> Preconditions {
    Preconditions {
        if_match: h.get(header::IF_MATCH).map(etag_list),
        if_none_match_any: h
            .get(header::IF_NONE_MATCH)
            .is_some_and(|v| etag_list(v).iter().any(|e| e == "*")),
    }
}

/// Headers for a PATCH merged onto the version with `etag`: unless the
/// client sent its own `If-Match`, refuse if the object changed meanwhile.
pub fn patch_preconditions(mut headers: HeaderMap, etag: &str) -> HeaderMap {
    if !headers.contains_key(header::IF_MATCH)
        && let Some(v) = etag_header(etag)
    {
        headers.insert(header::IF_MATCH, v);
    }
    headers
}

/// 202 with the operation, its `Location` and the resource's ETag.
pub fn accepted(op: &hybrid_api::Operation, etag: Option<&str>) -> Response {
    let mut headers = Vec::new();
    if let Ok(v) = HeaderValue::from_str(&format!("/v1/operations/{}", op.id)) {
        headers.push((header::LOCATION, v));
    }
    if let Some(v) = etag.and_then(etag_header) {
        headers.push((header::ETAG, v));
    }
    json_with(StatusCode::ACCEPTED, headers, op)
}

/// A JSON response with extra headers.
pub fn json_with(
    status: StatusCode,
    headers: Vec<(header::HeaderName, HeaderValue)>,
    body: impl serde::Serialize,
) -> Response {
    let mut resp = (status, axum::Json(body)).into_response();
    for (k, v) in headers {
        resp.headers_mut().insert(k, v);
    }
    resp
}
