//! `/v1/custom-locations`: PUT/PATCH/DELETE through
//! [`crate::custom_locations::admission`], complete at once (201/200/204),
//! GET and LIST.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hybrid_api::custom_location::{self, CustomLocationSpec};
use hybrid_api::{CustomLocation, List};

use super::admit::{self, WriteQuery};
use super::body::{MergePatch, StrictJson};
use super::failure::Failure;
use super::path::StrictPath;
use super::query::{NoQuery, StrictQuery};
use super::{AppState, etag_header, json_with, preconditions};
use crate::custom_locations::{CustomLocationRecord, admission, views};
use crate::objects::record::tx as rec;
use crate::objects::{self, NoInternal};
use crate::store::StoreError;

fn not_found(name: &str) -> Failure {
    Failure::not_found(format!("custom location {name} not found"))
}

fn respond(status: StatusCode, view: CustomLocation) -> Response {
    let headers = etag_header(&view.etag)
        .map(|v| vec![(header::ETAG, v)])
        .unwrap_or_default();
    json_with(status, headers, view)
}

async fn write(
    state: &AppState,
    name: String,
    spec: CustomLocationSpec,
    headers: &HeaderMap,
    dry_run: bool,
) -> Result<Response, Failure> {
    admission::check(&name, &spec)?;
    let pre = preconditions(headers);
    let written = state
        .store
        .write(dry_run, move |tx| -> Result<_, objects::Error> {
            admission::put(tx, &name, spec, &pre)
        })
        .await?;
    let status = if written.created && !dry_run {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(respond(status, written.view))
}

pub async fn put(
    State(state): State<AppState>,
    StrictPath(name): StrictPath<String>,
    StrictQuery(q): StrictQuery<WriteQuery>,
    headers: HeaderMap,
    StrictJson(spec): StrictJson<CustomLocationSpec>,
) -> Result<Response, Failure> {
    write(&state, name, spec, &headers, q.dry_run).await
}

pub async fn patch(
    State(state): State<AppState>,
    StrictPath(name): StrictPath<String>,
    StrictQuery(q): StrictQuery<WriteQuery>,
    headers: HeaderMap,
    MergePatch(patch, _): MergePatch<CustomLocationSpec>,
) -> Result<Response, Failure> {
    let mut again = admit::PatchRetry::new(&headers);
    loop {
        let (spec, pinned) = admit::patch_of(
            &state,
            custom_location::custom_location_id(&name),
            &patch,
            headers.clone(),
            || not_found(&name),
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
    let id = custom_location::custom_location_id(&name);
    let view = state
        .store
        .view(move |tx| -> Result<_, StoreError> {
            let l: Option<CustomLocationRecord> = rec::get(tx, &id)?;
            l.map(|l| views::custom_location(tx, &l)).transpose()
        })
        .await?
        .ok_or_else(|| not_found(&name))?;
    Ok(respond(StatusCode::OK, view))
}

pub async fn list(
    State(state): State<AppState>,
    _: StrictQuery<NoQuery>,
) -> Result<axum::Json<List<CustomLocation>>, Failure> {
    let items = state
        .store
        .view(|tx| -> Result<_, StoreError> {
            rec::list::<CustomLocationSpec, NoInternal>(tx, None)?
                .iter()
                .map(|l| views::custom_location(tx, l))
                .collect::<Result<Vec<_>, _>>()
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
    state
        .store
        .write(false, move |tx| -> Result<_, objects::Error> {
            admission::delete(tx, &name, &pre)
        })
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
