//! Unauthenticated routes: liveness, readiness and the OpenAPI document.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use hybrid_api::Health;
use serde_json::Value;

use super::AppState;

/// How long readiness waits for the database.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

fn health(state: &AppState, status: &str) -> Json<Health> {
    Json(Health {
        status: status.to_string(),
        replica: state.replica.to_string(),
        store: state.store.engine().to_string(),
    })
}

/// Liveness: answers while the process serves requests, whatever the
/// database does (a supervisor must not restart a replica for that).
pub async fn get(State(state): State<AppState>) -> Json<Health> {
    health(&state, "ok")
}

/// Readiness: 503 while the database cannot be reached (a load balancer
/// sends requests elsewhere meanwhile).
pub async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Health>) {
    match tokio::time::timeout(READY_TIMEOUT, state.store.ping()).await {
        Ok(Ok(())) => (StatusCode::OK, health(&state, "ok")),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "not ready: the database does not answer");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                health(&state, "unavailable"),
            )
        }
        Err(_) => {
            tracing::warn!("not ready: the database did not answer in time");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                health(&state, "unavailable"),
            )
        }
    }
}

pub async fn openapi(State(state): State<AppState>) -> Json<Value> {
    Json((*state.openapi).clone())
}
