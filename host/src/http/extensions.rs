//! Extensions on a cluster (`/v1/clusters/{cluster}/extensions`) and on the
//! management host (`/v1/management-host/extensions`): PUT/PATCH with
//! admission in [`crate::extensions::admission`] (`?dry_run=true`), GET,
//! LIST, DELETE (`?force=true` forgets a stuck extension at once).
//! Protected settings are accepted on PUT/PATCH and never returned.

use std::collections::BTreeSet;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use hybrid_api::extension::{self, Extension, ExtensionSpec};
use hybrid_api::{ClusterSpec, List};
use serde::Deserialize;
use serde_json::Value;

use super::admit::{self, WriteQuery};
use super::body::{JsonBody, MergePatch};
use super::failure::Failure;
use super::path::StrictPath;
use super::query::{NoQuery, StrictQuery};
use super::{AppState, preconditions};
use crate::clusters::ClusterInternal;
use crate::extensions::{ExtensionInternal, ExtensionRecord, Target, admission, describe, views};
use crate::objects;
use crate::objects::record::tx as rec;
use crate::store::{StoreError, Tx};

/// `?force=true` on DELETE.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeleteQuery {
    #[serde(default)]
    pub force: bool,
}

fn render(tx: &dyn Tx, id: &str, _down: &BTreeSet<String>) -> Result<Option<Value>, StoreError> {
    let Some(e): Option<ExtensionRecord> = rec::get(tx, id)? else {
        return Ok(None);
    };
    serde_json::to_value(views::extension(tx, &e)?)
        .map(Some)
        .map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// Body errors inside `configuration_protected_settings` may quote what
/// was sent (serde's "invalid type: string …"); that is a secret.
fn redact(mut f: Failure) -> Failure {
    if let Some(t) = &f.error.target
        && t.starts_with("configuration_protected_settings")
    {
        f.error.message = format!(
            "{t}: invalid value (not shown: protected settings are secret); configuration_protected_settings is a map of setting names to strings"
        );
    }
    f
}

/// A PUT body: an [`ExtensionSpec`], unknown fields refused.
fn parse_spec(body: &[u8]) -> Result<ExtensionSpec, Failure> {
    super::body::parse::<ExtensionSpec>(body).map_err(redact)
}

fn not_found(target: &Target, name: &str) -> Failure {
    Failure::not_found(format!("{} not found", describe(target, name)))
}

async fn write(
    state: &AppState,
    target: Target,
    name: String,
    spec: ExtensionSpec,
    headers: &HeaderMap,
    dry_run: bool,
) -> Result<Response, Failure> {
    admit::check(extension::validate_name(&name).err().into_iter().collect())?;
    admit::check(extension::validate_spec(&spec))?;
    let pre = preconditions(headers);
    let types = state.driver.extension_types();
    admit::admit(
        state,
        dry_run,
        move |tx, _| admission::put_extension(tx, &types, &target, &name, spec, &pre),
        render,
    )
    .await
}

async fn patch_extension(
    state: &AppState,
    target: Target,
    name: String,
    query: WriteQuery,
    headers: HeaderMap,
    patch: &Value,
) -> Result<Response, Failure> {
    let mut again = admit::PatchRetry::new(&headers);
    loop {
        let (spec, pinned) = admit::patch_of::<ExtensionSpec>(
            state,
            extension::extension_id(&target.id(), &name),
            patch,
            headers.clone(),
            || not_found(&target, &name),
        )
        .await
        .map_err(redact)?;
        match write(
            state,
            target.clone(),
            name.clone(),
            spec,
            &pinned,
            query.dry_run,
        )
        .await
        {
            Err(f) if again.after(&f) => continue,
            answer => return answer,
        }
    }
}

async fn get_extension(
    state: &AppState,
    target: Target,
    name: String,
) -> Result<Response, Failure> {
    let id = extension::extension_id(&target.id(), &name);
    let view = state
        .store
        .view(move |tx| -> Result<_, StoreError> { render(tx, &id, &BTreeSet::new()) })
        .await?;
    view.map(admit::object_response)
        .ok_or_else(|| not_found(&target, &name))
}

async fn list_extensions(
    state: &AppState,
    target: Target,
) -> Result<axum::Json<List<Extension>>, Failure> {
    let tid = target.id();
    let cluster = match &target {
        Target::Cluster(c) => Some(c.clone()),
        Target::ManagementHost => None,
    };
    let items = state
        .store
        .view(move |tx| -> Result<_, StoreError> {
            if cluster.is_some() && rec::get::<ClusterSpec, ClusterInternal>(tx, &tid)?.is_none() {
                return Ok(None);
            }
            rec::list::<ExtensionSpec, ExtensionInternal>(tx, Some(&tid))?
                .iter()
                .map(|e| views::extension(tx, e))
                .collect::<Result<Vec<_>, _>>()
                .map(Some)
        })
        .await?
        .ok_or_else(|| Failure::not_found(format!("{} not found", target.describe())))?;
    Ok(axum::Json(List { items }))
}

async fn delete_extension(
    state: &AppState,
    target: Target,
    name: String,
    query: DeleteQuery,
    headers: &HeaderMap,
) -> Result<Response, Failure> {
    let pre = preconditions(headers);
    if query.force {
        let id = extension::extension_id(&target.id(), &name);
        state
            .store
            .write(false, move |tx| -> Result<_, objects::Error> {
                admission::force_delete(tx, &target, &name, &pre)
            })
            .await?;
        tracing::warn!(extension = %id, "extension forgotten (DELETE with force=true); the datacenter was not asked to remove it");
        state.operations.wake();
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    admit::admit(
        state,
        false,
        move |tx, _| admission::delete_extension(tx, &target, &name, &pre),
        |_, _, _| Ok(None),
    )
    .await
}

// Cluster target.

pub async fn put(
    State(state): State<AppState>,
    StrictPath((cluster, name)): StrictPath<(String, String)>,
    StrictQuery(q): StrictQuery<WriteQuery>,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> Result<Response, Failure> {
    let spec = parse_spec(&body)?;
    write(
        &state,
        Target::Cluster(cluster),
        name,
        spec,
        &headers,
        q.dry_run,
    )
    .await
}

pub async fn patch(
    State(state): State<AppState>,
    StrictPath((cluster, name)): StrictPath<(String, String)>,
    StrictQuery(q): StrictQuery<WriteQuery>,
    headers: HeaderMap,
    MergePatch(patch, _): MergePatch<ExtensionSpec>,
) -> Result<Response, Failure> {
    patch_extension(&state, Target::Cluster(cluster), name, q, headers, &patch).await
}

pub async fn get(
    State(state): State<AppState>,
    _: StrictQuery<NoQuery>,
    StrictPath((cluster, name)): StrictPath<(String, String)>,
) -> Result<Response, Failure> {
    get_extension(&state, Target::Cluster(cluster), name).await
}

pub async fn list(
    State(state): State<AppState>,
    _: StrictQuery<NoQuery>,
    StrictPath(cluster): StrictPath<String>,
) -> Result<axum::Json<List<Extension>>, Failure> {
    list_extensions(&state, Target::Cluster(cluster)).await
}

pub async fn delete(
    State(state): State<AppState>,
    StrictPath((cluster, name)): StrictPath<(String, String)>,
    StrictQuery(q): StrictQuery<DeleteQuery>,
    headers: HeaderMap,
) -> Result<Response, Failure> {
    delete_extension(&state, Target::Cluster(cluster), name, q, &headers).await
}

// Management-host target.

pub async fn host_put(
    State(state): State<AppState>,
    StrictPath(name): StrictPath<String>,
    StrictQuery(q): StrictQuery<WriteQuery>,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> Result<Response, Failure> {
    let spec = parse_spec(&body)?;
    write(
        &state,
        Target::ManagementHost,
        name,
        spec,
        &headers,
        q.dry_run,
    )
    .await
}

pub async fn host_patch(
    State(state): State<AppState>,
    StrictPath(name): StrictPath<String>,
    StrictQuery(q): StrictQuery<WriteQuery>,
    headers: HeaderMap,
    MergePatch(patch, _): MergePatch<ExtensionSpec>,
) -> Result<Response, Failure> {
    patch_extension(&state, Target::ManagementHost, name, q, headers, &patch).await
}

pub async fn host_get(
    State(state): State<AppState>,
    _: StrictQuery<NoQuery>,
    StrictPath(name): StrictPath<String>,
) -> Result<Response, Failure> {
    get_extension(&state, Target::ManagementHost, name).await
}

pub async fn host_list(
    State(state): State<AppState>,
    _: StrictQuery<NoQuery>,
) -> Result<axum::Json<List<Extension>>, Failure> {
    list_extensions(&state, Target::ManagementHost).await
}

pub async fn host_delete(
    State(state): State<AppState>,
    StrictPath(name): StrictPath<String>,
    StrictQuery(q): StrictQuery<DeleteQuery>,
    headers: HeaderMap,
) -> Result<Response, Failure> {
    delete_extension(&state, Target::ManagementHost, name, q, &headers).await
}
