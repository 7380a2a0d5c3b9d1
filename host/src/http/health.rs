//! Unauthenticated routes: liveness and the OpenAPI document.

use axum::Json;
use axum::extract::State;
use hybrid_api::Health;
use serde_json::Value;

use super::AppState;

pub async fn get() -> Json<Health> {
    Json(Health {
        status: "ok".to_string(),
    })
}

pub async fn openapi(State(state): State<AppState>) -> Json<Value> {
    Json((*state.openapi).clone())
}
