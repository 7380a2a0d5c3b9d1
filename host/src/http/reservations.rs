//! IPAM on the API: `/v1/vnets/{name}/reservations[/{address}]`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use hybrid_api::{List, Reservation, ReservationRequest};

use super::AppState;
use super::body::StrictJson;
use super::failure::Failure;
use super::path::StrictPath;
use super::query::{NoQuery, StrictQuery};
use crate::ipam;

pub async fn create(
    State(state): State<AppState>,
    StrictPath(name): StrictPath<String>,
    _: StrictQuery<NoQuery>,
    StrictJson(req): StrictJson<ReservationRequest>,
) -> Result<(StatusCode, Json<Reservation>), Failure> {
    let r = ipam::allocate(&*state.store, &name, req.pool, &req.owner, req.address).await?;
    Ok((StatusCode::CREATED, Json(r)))
}

pub async fn list(
    State(state): State<AppState>,
    _: StrictQuery<NoQuery>,
    StrictPath(name): StrictPath<String>,
) -> Result<Json<List<Reservation>>, Failure> {
    let items = ipam::reservations(&*state.store, &name).await?;
    Ok(Json(List { items }))
}

pub async fn delete(
    State(state): State<AppState>,
    StrictPath((name, address)): StrictPath<(String, String)>,
    _: StrictQuery<NoQuery>,
) -> Result<StatusCode, Failure> {
    ipam::release(&*state.store, &name, &address).await?;
    Ok(StatusCode::NO_CONTENT)
}
