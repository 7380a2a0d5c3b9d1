//! `GET /v1/operations/{id}[?wait=30s]`.

use std::time::Duration;

use axum::Json;
use axum::extract::{Path, Query, State};
use hybrid_api::Operation;
use serde::Deserialize;

use super::AppState;
use crate::error::Failure;
use crate::operations::parse_wait;

#[derive(Deserialize)]
pub struct WaitQuery {
    wait: Option<String>,
}

pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<WaitQuery>,
) -> Result<Json<Operation>, Failure> {
    let wait = match q.wait.as_deref() {
        Some(w) => parse_wait(w)?,
        None => Duration::ZERO,
    };
    state
        .operations
        .wait_for(&id, wait, state.shutdown.clone())
        .await?
        .map(Json)
        .ok_or_else(|| Failure::not_found(format!("operation {id} not found")))
}
