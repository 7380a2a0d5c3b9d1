//! `GET /v1/management-host`.

use axum::Json;
use axum::extract::State;
use hybrid_api::ManagementHost;

use super::AppState;
use super::query::{NoQuery, StrictQuery};

pub async fn get(State(state): State<AppState>, _: StrictQuery<NoQuery>) -> Json<ManagementHost> {
    Json((*state.management_host).clone())
}
