//! `/v1/clusters/{cluster}/nodepools`: PUT/PATCH (admission in
//! [`crate::clusters::admission`]), GET/LIST with the pool's nodes, DELETE.

use std::collections::BTreeSet;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use hybrid_api::{List, NodePool, NodePoolSpec, nodepool};
use serde_json::Value;

use super::admit::{self, WriteQuery};
use super::body::{MergePatch, StrictJson};
use super::failure::Failure;
use super::path::StrictPath;
use super::query::{NoQuery, StrictQuery};
use super::{AppState, preconditions};
use crate::clusters::{ClusterInternal, PoolRecord, admission, views};
use crate::objects::NoInternal;
use crate::objects::record::tx as rec;
use crate::store::{StoreError, Tx};

fn render(tx: &dyn Tx, id: &str, down: &BTreeSet<String>) -> Result<Option<Value>, StoreError> {
    let Some(p): Option<PoolRecord> = rec::get(tx, id)? else {
        return Ok(None);
    };
    let cluster = p
        .parent
        .as_deref()
        .and_then(hybrid_api::cluster::parse_cluster_id)
        .unwrap_or_default();
    let related = views::Related::of_pools(tx, cluster, std::slice::from_ref(&p))?;
    let view = views::pool(&p, &related, down);
    serde_json::to_value(view)
        .map(Some)
        .map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn not_found(cluster: &str, name: &str) -> Failure {
    Failure::not_found(format!("node pool {name} of cluster {cluster} not found"))
}

async fn write(
    state: &AppState,
    cluster: String,
    name: String,
    spec: NodePoolSpec,
    headers: &HeaderMap,
    dry_run: bool,
) -> Result<Response, Failure> {
    admit::check(nodepool::validate_name(&name).err().into_iter().collect())?;
    admit::check(nodepool::validate_spec(&spec))?;
    let pre = preconditions(headers);
    admit::admit(
        state,
        dry_run,
        move |tx, env| admission::put_pool(tx, env, &cluster, &name, spec, &pre),
        render,
    )
    .await
}

pub async fn put(
    State(state): State<AppState>,
    StrictPath((cluster, name)): StrictPath<(String, String)>,
    StrictQuery(q): StrictQuery<WriteQuery>,
    headers: HeaderMap,
    StrictJson(spec): StrictJson<NodePoolSpec>,
) -> Result<Response, Failure> {
    write(&state, cluster, name, spec, &headers, q.dry_run).await
}

pub async fn patch(
    State(state): State<AppState>,
    StrictPath((cluster, name)): StrictPath<(String, String)>,
    StrictQuery(q): StrictQuery<WriteQuery>,
    headers: HeaderMap,
    MergePatch(patch, _): MergePatch<NodePoolSpec>,
) -> Result<Response, Failure> {
    let mut again = admit::PatchRetry::new(&headers);
    loop {
        let (spec, pinned) = admit::patch_of(
            &state,
            hybrid_api::nodepool_id(&cluster, &name),
            &patch,
            headers.clone(),
            || not_found(&cluster, &name),
        )
        .await?;
        match write(
            &state,
            cluster.clone(),
            name.clone(),
            spec,
            &pinned,
            q.dry_run,
        )
        .await
        {
            Err(f) if again.after(&f) => continue,
            answer => return answer,
        }
    }
}

pub async fn get(
    State(state): State<AppState>,
    _: StrictQuery<NoQuery>,
    StrictPath((cluster, name)): StrictPath<(String, String)>,
) -> Result<Response, Failure> {
    let id = hybrid_api::nodepool_id(&cluster, &name);
    let down = admit::hosts_down(&state).await;
    let view = state
        .store
        .view(move |tx| -> Result<_, StoreError> { render(tx, &id, &down) })
        .await?;
    view.map(admit::object_response)
        .ok_or_else(|| not_found(&cluster, &name))
}

pub async fn list(
    State(state): State<AppState>,
    _: StrictQuery<NoQuery>,
    StrictPath(cluster): StrictPath<String>,
) -> Result<axum::Json<List<NodePool>>, Failure> {
    let down = admit::hosts_down(&state).await;
    let cid = hybrid_api::cluster_id(&cluster);
    let name = cluster.clone();
    let items = state
        .store
        .view(move |tx| -> Result<_, StoreError> {
            if rec::get::<hybrid_api::ClusterSpec, ClusterInternal>(tx, &cid)?.is_none() {
                return Ok(None);
            }
            let pools = rec::list::<NodePoolSpec, NoInternal>(tx, Some(&cid))?;
            let related = views::Related::of_pools(tx, &name, &pools)?;
            Ok(Some(
                pools
                    .iter()
                    .map(|p| views::pool(p, &related, &down))
                    .collect::<Vec<_>>(),
            ))
        })
        .await?
        .ok_or_else(|| Failure::not_found(format!("cluster {cluster} not found")))?;
    Ok(axum::Json(List { items }))
}

pub async fn delete(
    State(state): State<AppState>,
    StrictPath((cluster, name)): StrictPath<(String, String)>,
    _: StrictQuery<NoQuery>,
    headers: HeaderMap,
) -> Result<Response, Failure> {
    let pre = preconditions(&headers);
    admit::admit(
        &state,
        false,
        move |tx, _| admission::delete_pool(tx, &cluster, &name, &pre),
        |_, _, _| Ok(None),
    )
    .await
}
