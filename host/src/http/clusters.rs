//! `/v1/clusters`: PUT/PATCH (admission in [`crate::clusters::admission`]),
//! GET/LIST with observed status, DELETE, and
//! `POST /v1/clusters/{name}/rotate-certificates`.

use std::collections::BTreeSet;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use hybrid_api::{Cluster, ClusterSpec, List, cluster};
use serde_json::Value;

use super::admit::{self, WriteQuery};
use super::body::{MergePatch, StrictJson};
use super::failure::Failure;
use super::path::StrictPath;
use super::query::{NoQuery, StrictQuery};
use super::{AppState, preconditions};
use crate::clusters::{ClusterInternal, ClusterRecord, admission, certificates, views};
use crate::objects::record::tx as rec;
use crate::store::{StoreError, Tx};

fn render(tx: &dyn Tx, id: &str, down: &BTreeSet<String>) -> Result<Option<Value>, StoreError> {
    let Some(c): Option<ClusterRecord> = rec::get(tx, id)? else {
        return Ok(None);
    };
    let related = views::Related::of_clusters(tx, std::slice::from_ref(&c))?;
    let view = views::cluster(&c, &related, down);
    serde_json::to_value(view)
        .map(Some)
        .map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn check_name(name: &str) -> Result<(), Failure> {
    admit::check(cluster::validate_name(name).err().into_iter().collect())
}

async fn write(
    state: &AppState,
    name: String,
    spec: ClusterSpec,
    headers: &HeaderMap,
    dry_run: bool,
) -> Result<Response, Failure> {
    check_name(&name)?;
    admit::check(cluster::validate_spec(&spec))?;
    let pre = preconditions(headers);
    admit::admit(
        state,
        dry_run,
        move |tx, env| admission::put_cluster(tx, env, &name, spec, &pre),
        render,
    )
    .await
}

pub async fn put(
    State(state): State<AppState>,
    StrictPath(name): StrictPath<String>,
    StrictQuery(q): StrictQuery<WriteQuery>,
    headers: HeaderMap,
    StrictJson(spec): StrictJson<ClusterSpec>,
) -> Result<Response, Failure> {
    write(&state, name, spec, &headers, q.dry_run).await
}

pub async fn patch(
    State(state): State<AppState>,
    StrictPath(name): StrictPath<String>,
    StrictQuery(q): StrictQuery<WriteQuery>,
    headers: HeaderMap,
    MergePatch(patch, _): MergePatch<ClusterSpec>,
) -> Result<Response, Failure> {
    let mut again = admit::PatchRetry::new(&headers);
    loop {
        let (spec, pinned) = admit::patch_of(
            &state,
            hybrid_api::cluster_id(&name),
            &patch,
            headers.clone(),
            || Failure::not_found(format!("cluster {name} not found")),
        )
        .await?;
        match write(&state, name.clone(), spec, &pinned, q.dry_run).await {
            Err(f) if again.after(&f) => continue,
            answer => return answer,
        }
    }
}

pub async fn get(
    State(state): State<AppState>,
    _: StrictQuery<NoQuery>,
    StrictPath(name): StrictPath<String>,
) -> Result<Response, Failure> {
    let id = hybrid_api::cluster_id(&name);
    let down = admit::hosts_down(&state).await;
    let view = state
        .store
        .view(move |tx| -> Result<_, StoreError> { render(tx, &id, &down) })
        .await?;
    view.map(admit::object_response)
        .ok_or_else(|| Failure::not_found(format!("cluster {name} not found")))
}

pub async fn list(
    State(state): State<AppState>,
    _: StrictQuery<NoQuery>,
) -> Result<axum::Json<List<Cluster>>, Failure> {
    let down = admit::hosts_down(&state).await;
    let items = state
        .store
        .view(move |tx| -> Result<_, StoreError> {
            let clusters = rec::list::<ClusterSpec, ClusterInternal>(tx, None)?;
            let related = views::Related::of_clusters(tx, &clusters)?;
            Ok(clusters
                .iter()
                .map(|c| views::cluster(c, &related, &down))
                .collect::<Vec<_>>())
        })
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
    admit::admit(
        &state,
        false,
        move |tx, _| admission::delete_cluster(tx, &name, &pre),
        |_, _, _| Ok(None),
    )
    .await
}

/// `POST /v1/clusters/{name}/rotate-certificates`: queues a rotation of the
/// cluster's certificates (see [`crate::clusters::certificates`]) and
/// answers 202 with the operation and what it means for kubeconfigs.
pub async fn rotate_certificates(
    State(state): State<AppState>,
    _: StrictQuery<NoQuery>,
    StrictPath(name): StrictPath<String>,
    extensions: axum::http::Extensions,
    StrictJson(req): StrictJson<hybrid_api::certificates::RotateCertificatesRequest>,
) -> Result<Response, Failure> {
    check_name(&name)?;
    let actor = super::auth::actor(&extensions);
    let accepted = state
        .store
        .write(false, move |tx| -> Result<_, crate::objects::Error> {
            certificates::request(tx, &name, req.rotate_ca, &actor)
        })
        .await?;
    state.operations.wake();
    let mut headers = Vec::new();
    if let Ok(v) =
        axum::http::HeaderValue::from_str(&format!("/v1/operations/{}", accepted.operation.id))
    {
        headers.push((axum::http::header::LOCATION, v));
    }
    Ok(super::json_with(
        axum::http::StatusCode::ACCEPTED,
        headers,
        accepted,
    ))
}
