//! `GET /v1/management-host`.

use axum::Json;
use axum::extract::State;
use hybrid_api::ManagementHost;

use super::AppState;

pub async fn get(State(state): State<AppState>) -> Json<ManagementHost> {
    Json((*state.management_host).clone())
}
