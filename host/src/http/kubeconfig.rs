//! `POST /v1/clusters/{name}/kubeconfig`: issues a kubeconfig (see
//! [`crate::clusters::kubeconfig`]) sent with `Cache-Control: no-store`,
//! and `GET /v1/audit`: the record of every issuance.

use axum::Json;
use axum::extract::State;
use axum::http::{Extensions, HeaderValue, StatusCode, header};
use axum::response::Response;
use hybrid_api::List;
use hybrid_api::kubeconfig::{AuditEntry, KubeconfigRequest};
use serde::Deserialize;

use super::auth::actor;
use super::body::StrictJson;
use super::failure::Failure;
use super::path::StrictPath;
use super::query::{NoQuery, StrictQuery};
use super::{AppState, json_with};
use crate::clusters::kubeconfig;
use crate::objects::{self, Refusal};
use crate::security::audit;

/// Answers of `GET /v1/audit` when no `limit` is given, and the most one
/// may ask for.
const DEFAULT_AUDIT_LIMIT: usize = 100;
const MAX_AUDIT_LIMIT: usize = 1000;

pub async fn issue(
    State(state): State<AppState>,
    _: StrictQuery<NoQuery>,
    StrictPath(name): StrictPath<String>,
    extensions: Extensions,
    StrictJson(req): StrictJson<KubeconfigRequest>,
) -> Result<Response, Failure> {
    let actor = actor(&extensions);
    let (kubeconfig, record) = state
        .store
        .write(false, move |tx| -> Result<_, objects::Error> {
            kubeconfig::issue(tx, &name, &req, &actor)
        })
        .await?;
    audit::log(&record);
    Ok(json_with(
        StatusCode::OK,
        vec![
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (header::PRAGMA, HeaderValue::from_static("no-cache")),
        ],
        kubeconfig,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    target: Option<String>,
    limit: Option<String>,
}

pub async fn audit_log(
    State(state): State<AppState>,
    StrictQuery(q): StrictQuery<AuditQuery>,
) -> Result<Json<List<AuditEntry>>, Failure> {
    let limit = match q.limit.as_deref() {
        None => DEFAULT_AUDIT_LIMIT,
        Some(text) => match text.parse::<usize>() {
            Ok(n) if (1..=MAX_AUDIT_LIMIT).contains(&n) => n,
            _ => {
                return Err(Refusal::invalid_field(
                    "limit",
                    format!(
                        "limit is {text:?}; it must be a whole number from 1 to {MAX_AUDIT_LIMIT}"
                    ),
                )
                .into());
            }
        },
    };
    if let Some(t) = &q.target {
        hybrid_api::limits::check_len("target", t, hybrid_api::limits::MAX_AUDIT_TARGET)
            .map_err(|e| Refusal::invalid_field(e.target, e.message))?;
    }
    let target = q.target.filter(|t| !t.is_empty());
    let items = state
        .store
        .view(move |tx| -> Result<_, objects::Error> { Ok(tx.audit(target.as_deref(), limit)?) })
        .await?;
    Ok(Json(List { items }))
}
