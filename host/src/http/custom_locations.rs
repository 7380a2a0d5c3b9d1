//! `/v1/custom-locations`: where operators may create clusters. Nothing
//! runs on the datacenter for them, so every call completes synchronously.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hybrid_api::custom_location::{self, CustomLocationSpec};
use hybrid_api::{ApiError, CustomLocation, List, ProvisioningState, codes, validate};
use serde_json::Value;

use super::admit::{self, WriteQuery};
use super::body::StrictJson;
use super::{AppState, Preconditions, etag_header, json_with};
use crate::clock;
use crate::clusters::admission::clusters_in_location;
use crate::clusters::records::{CustomLocationRecord, NoInternal, tx as rec};
use crate::clusters::views;
use crate::error::Failure;
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
    admit::check(
        validate::dns_label("name", &name)
            .err()
            .into_iter()
            .collect(),
    )?;
    admit::check(custom_location::validate_spec(&spec))?;
    let pre = Preconditions::from_headers(headers);
    let (created, view) = state
        .store
        .write(dry_run, move |tx| {
            let id = custom_location::custom_location_id(&name);
            let current: Option<CustomLocationRecord> = rec::get(tx, &id)?;
            pre.check(
                &format!("custom location {name}"),
                current.as_ref().map(|c| c.etag.as_str()),
            )
            .map_err(StoreError::Rejected)?;
            // Only host extensions that exist and succeeded may be referenced.
            crate::extensions::admission::check_location_references(
                tx,
                current.as_ref().map(|c| &c.spec),
                &spec,
            )?;
            let now = clock::now();
            let (created, record) = match current {
                None => (
                    true,
                    CustomLocationRecord {
                        id,
                        parent: None,
                        name,
                        spec,
                        internal: NoInternal {},
                        etag: clock::new_etag(),
                        provisioning_state: ProvisioningState::Succeeded,
                        current_operation: None,
                        created_at: now.clone(),
                        updated_at: now,
                    },
                ),
                Some(mut cur) => {
                    if let Some(f) = Failure::from_fields(
                        StatusCode::CONFLICT,
                        codes::FIELD_IMMUTABLE,
                        custom_location::immutable_changes(&cur.spec, &spec),
                    ) {
                        return Err(StoreError::Rejected(f));
                    }
                    if cur.spec != spec {
                        cur.spec = spec;
                        cur.etag = clock::new_etag();
                        cur.updated_at = now;
                    }
                    (false, cur)
                }
            };
            rec::put(tx, &record)?;
            Ok((created, views::custom_location(tx, &record)?))
        })
        .await?;
    let status = if created && !dry_run {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(respond(status, view))
}

pub async fn put(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(q): Query<WriteQuery>,
    headers: HeaderMap,
    StrictJson(spec): StrictJson<CustomLocationSpec>,
) -> Result<Response, Failure> {
    write(&state, name, spec, &headers, q.dry_run).await
}

pub async fn patch(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(q): Query<WriteQuery>,
    headers: HeaderMap,
    axum::Json(patch): axum::Json<Value>,
) -> Result<Response, Failure> {
    let (spec, headers) = admit::patch_of(
        &state,
        custom_location::custom_location_id(&name),
        &patch,
        headers,
        || not_found(&name),
    )
    .await?;
    write(&state, name, spec, &headers, q.dry_run).await
}

pub async fn get(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, Failure> {
    let id = custom_location::custom_location_id(&name);
    let view = state
        .store
        .view(move |tx| {
            let l: Option<CustomLocationRecord> = rec::get(tx, &id)?;
            l.map(|l| views::custom_location(tx, &l)).transpose()
        })
        .await?
        .ok_or_else(|| not_found(&name))?;
    Ok(respond(StatusCode::OK, view))
}

pub async fn list(
    State(state): State<AppState>,
) -> Result<axum::Json<List<CustomLocation>>, Failure> {
    let items = state
        .store
        .view(|tx| {
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
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Failure> {
    let pre = Preconditions::from_headers(&headers);
    state
        .store
        .write(false, move |tx| {
            let id = custom_location::custom_location_id(&name);
            let cur: CustomLocationRecord =
                rec::get(tx, &id)?.ok_or_else(|| StoreError::Rejected(not_found(&name)))?;
            pre.check(&format!("custom location {name}"), Some(&cur.etag))
                .map_err(StoreError::Rejected)?;
            let users = clusters_in_location(tx, &id)?;
            if !users.is_empty() {
                return Err(StoreError::Rejected(Failure {
                    status: StatusCode::CONFLICT,
                    error: ApiError {
                        code: codes::IN_USE.to_string(),
                        message: format!(
                            "custom location {name} is in use by {}; delete those clusters first",
                            users.join(", ")
                        ),
                        target: None,
                        details: users
                            .iter()
                            .map(|u| {
                                ApiError::new(
                                    codes::IN_USE,
                                    format!("{u} is placed in custom location {name}"),
                                )
                            })
                            .collect(),
                    },
                }));
            }
            tx.delete_object(cur_kind(), &id)?;
            Ok(())
        })
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn cur_kind() -> crate::store::ObjectKind {
    crate::store::ObjectKind::CustomLocation
}
