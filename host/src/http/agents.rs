//! `/v1/agents` and `/v1/agent-tokens`: joining `hybrid-agent`s, listing
//! and revoking them, and minting join tokens, through [`crate::agents`].
//! `POST /v1/agents/join` is the one route authenticated by a join token
//! instead of the admin token.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hybrid_api::List;
use hybrid_api::agent::{Agent, JoinRequest, JoinTokenRequest};

use super::AppState;
use super::body::StrictJson;
use super::failure::Failure;
use super::path::StrictPath;
use super::query::{NoQuery, StrictQuery};
use crate::agents;

pub async fn join(
    State(state): State<AppState>,
    StrictQuery(_): StrictQuery<NoQuery>,
    headers: HeaderMap,
    StrictJson(req): StrictJson<JoinRequest>,
) -> Result<Response, Failure> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_string());
    let name = req.name.clone();
    let answer = agents::join(&state.store, state.agent_ca.clone(), bearer, req).await;
    match &answer {
        Ok(_) => tracing::info!(agent = %name, "agent joined"),
        Err(e) => tracing::warn!(agent = %name, error = %e, "agent join refused"),
    }
    Ok((StatusCode::CREATED, Json(answer?)).into_response())
}

pub async fn mint_token(
    State(state): State<AppState>,
    StrictQuery(_): StrictQuery<NoQuery>,
    StrictJson(body): StrictJson<JoinTokenRequest>,
) -> Result<Response, Failure> {
    let ttl = body
        .ttl_seconds
        .map(Duration::from_secs)
        .unwrap_or(agents::DEFAULT_TOKEN_TTL);
    let token = agents::mint_token(&state.store, ttl).await?;
    Ok((StatusCode::CREATED, Json(token)).into_response())
}

pub async fn list(
    State(state): State<AppState>,
    StrictQuery(_): StrictQuery<NoQuery>,
) -> Result<Json<List<Agent>>, Failure> {
    Ok(Json(List {
        items: agents::list(&state.store).await?,
    }))
}

pub async fn get(
    State(state): State<AppState>,
    _: StrictQuery<NoQuery>,
    StrictPath(name): StrictPath<String>,
) -> Result<Json<Agent>, Failure> {
    Ok(Json(agents::get(&state.store, &name).await?))
}

pub async fn revoke(
    State(state): State<AppState>,
    StrictPath(name): StrictPath<String>,
    StrictQuery(_): StrictQuery<NoQuery>,
) -> Result<Json<Agent>, Failure> {
    Ok(Json(agents::revoke(&state.store, &name).await?))
}
