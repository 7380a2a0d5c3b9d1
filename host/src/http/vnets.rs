//! `/v1/vnets`: PUT/PATCH/DELETE through [`crate::vnets::admission`] with
//! the 200/202 semantics of every kind, GET and LIST.

use std::collections::BTreeSet;

use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::Response;
use hybrid_api::{List, Vnet, VnetPatch, VnetSpec};
use serde_json::Value;

use super::admit::{self, WriteQuery, object_response};
use super::body::StrictJson;
use super::failure::Failure;
use super::path::StrictPath;
use super::query::{NoQuery, StrictQuery};
use super::{AppState, preconditions};
use crate::objects;
use crate::store::{StoreError, Tx};
use crate::vnets::admission::{self, Desired};
use crate::vnets::{name_of, views};

fn not_found(name: &str) -> Failure {
    Failure::not_found(format!("vnet {name} not found"))
}

fn render(tx: &dyn Tx, id: &str, _down: &BTreeSet<String>) -> Result<Option<Value>, StoreError> {
    let Some(s) = tx.vnet(name_of(id))? else {
        return Ok(None);
    };
    serde_json::to_value(views::vnet(&s))
        .map(Some)
        .map_err(|e| StoreError::Corrupt(e.to_string()))
}

async fn change(
    state: &AppState,
    name: String,
    desired: Desired,
    dry_run: bool,
    headers: &HeaderMap,
) -> Result<Response, Failure> {
    let pre = preconditions(headers);
    admit::admit_without_inventory(
        state,
        dry_run,
        move |tx| admission::put(tx, &name, desired, &pre),
        render,
    )
    .await
}

pub async fn put(
    State(state): State<AppState>,
    StrictPath(name): StrictPath<String>,
    StrictQuery(q): StrictQuery<WriteQuery>,
    headers: HeaderMap,
    StrictJson(spec): StrictJson<VnetSpec>,
) -> Result<Response, Failure> {
    admission::check(&name, &spec)?;
    change(&state, name, Desired::Full(spec), q.dry_run, &headers).await
}

pub async fn patch(
    State(state): State<AppState>,
    StrictPath(name): StrictPath<String>,
    StrictQuery(q): StrictQuery<WriteQuery>,
    headers: HeaderMap,
    StrictJson(p): StrictJson<VnetPatch>,
) -> Result<Response, Failure> {
    change(&state, name, Desired::Patch(p), q.dry_run, &headers).await
}

pub async fn get(
    State(state): State<AppState>,
    _: StrictQuery<NoQuery>,
    StrictPath(name): StrictPath<String>,
) -> Result<Response, Failure> {
    let n = name.clone();
    let view = state
        .store
        .view(move |tx| -> Result<_, StoreError> { Ok(tx.vnet(&n)?.map(|s| views::vnet(&s))) })
        .await?
        .ok_or_else(|| not_found(&name))?;
    let v = serde_json::to_value(view).map_err(|_| Failure::internal())?;
    Ok(object_response(v))
}

pub async fn list(
    State(state): State<AppState>,
    _: StrictQuery<NoQuery>,
) -> Result<axum::Json<List<Vnet>>, Failure> {
    let items = state
        .store
        .view(|tx| -> Result<_, StoreError> { Ok(tx.vnets()?.iter().map(views::vnet).collect()) })
        .await?;
    Ok(axum::Json(List { items }))
}

pub async fn delete(
    State(state): State<AppState>,
    StrictPath(name): StrictPath<String>,
    _: StrictQuery<NoQuery>,
    headers: HeaderMap,
) -> Result<Response, Failure> {
    let pre = preconditions(&headers);
    let mut resp = admit::admit_without_inventory(
        &state,
        false,
        move |tx| -> Result<_, objects::Error> { admission::delete(tx, &name, &pre) },
        |_, _, _| Ok(None),
    )
    .await?;
    // A vnet's delete answer carries no ETag: the vnet is going away.
    resp.headers_mut().remove(header::ETAG);
    Ok(resp)
}
