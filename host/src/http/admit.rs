//! The request flow every kind with operations shares: run its admission in
//! one store transaction (rolled back for `?dry_run=true`), then answer 200
//! with the object, or 202 with the queued operation. Also JSON merge patch.

use std::collections::BTreeSet;

use axum::http::{StatusCode, header};
use axum::response::Response;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::failure::Failure;
use super::{AppState, accepted, etag_header, json_with};
use crate::objects::record::tx as rec;
use crate::objects::{self, Env, Kind, Outcome, Record, Refusal};
use crate::store::{StoreError, Tx};

/// `?dry_run=true` on PUT/PATCH: full admission, nothing stored.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WriteQuery {
    #[serde(default)]
    pub dry_run: bool,
}

/// Hosts that are down (their VMs show `NotReady`).
pub async fn hosts_down(state: &AppState) -> BTreeSet<String> {
    match state.driver.hosts_down().await {
        Ok(down) => down,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the datacenter inventory");
            BTreeSet::new()
        }
    }
}

pub async fn env(state: &AppState) -> Result<Env, Failure> {
    Env::read(state.driver.as_ref()).await.map_err(|e| {
        tracing::error!(error = %e, "cannot read the datacenter inventory");
        Failure::internal()
    })
}

/// Renders the object `id` as its API JSON inside a transaction.
pub type Render = fn(&dyn Tx, &str, &BTreeSet<String>) -> Result<Option<Value>, StoreError>;

/// Runs `decide` against the datacenter's inventory and answers as the
/// API contract says.
pub async fn admit<F>(
    state: &AppState,
    dry_run: bool,
    decide: F,
    render: Render,
) -> Result<Response, Failure>
where
    F: FnOnce(&mut dyn Tx, &Env) -> Result<Outcome, objects::Error> + Send + 'static,
{
    let env = env(state).await?;
    decide_and_answer(state, dry_run, env, decide, render).await
}

/// [`admit`] for a kind whose admission needs nothing of the datacenter
/// (vnets): the inventory is not read.
pub async fn admit_without_inventory<F>(
    state: &AppState,
    dry_run: bool,
    decide: F,
    render: Render,
) -> Result<Response, Failure>
where
    F: FnOnce(&mut dyn Tx) -> Result<Outcome, objects::Error> + Send + 'static,
{
    let env = Env {
        versions: Vec::new(),
        sizes: Vec::new(),
        hosts: Vec::new(),
    };
    decide_and_answer(state, dry_run, env, move |tx, _| decide(tx), render).await
}

async fn decide_and_answer<F>(
    state: &AppState,
    dry_run: bool,
    env: Env,
    decide: F,
    render: Render,
) -> Result<Response, Failure>
where
    F: FnOnce(&mut dyn Tx, &Env) -> Result<Outcome, objects::Error> + Send + 'static,
{
    // The inventory just read for admission also says which hosts are down.
    let down: BTreeSet<String> = env
        .hosts
        .iter()
        .filter(|h| !h.up)
        .map(|h| h.name.clone())
        .collect();
    let (outcome, view) = state
        .store
        .write(dry_run, move |tx| -> Result<_, objects::Error> {
            let mut outcome = decide(tx, &env)?;
            let view = match (&mut outcome, dry_run) {
                (Outcome::Unchanged { id, view }, _) => match view.take() {
                    Some(v) => Some(*v),
                    None => render(tx, id, &down)?,
                },
                (
                    Outcome::Started { operation, .. } | Outcome::InFlight { operation, .. },
                    true,
                ) => render(tx, &operation.target, &down)?,
                _ => None,
            };
            Ok((outcome, view))
        })
        .await?;
    if let Some(v) = view {
        return Ok(object_response(v));
    }
    match outcome {
        Outcome::Started { operation, etag } | Outcome::InFlight { operation, etag } => {
            state.operations.wake();
            Ok(accepted(&operation, Some(&etag)))
        }
        Outcome::Unchanged { id, .. } => Err(Failure::not_found(format!("{id} not found"))),
    }
}

/// 200 with the object and its ETag.
pub fn object_response(v: Value) -> Response {
    let headers = v
        .get("etag")
        .and_then(Value::as_str)
        .and_then(etag_header)
        .map(|h| vec![(header::ETAG, h)])
        .unwrap_or_default();
    json_with(StatusCode::OK, headers, v)
}

/// Applies an RFC 7386 JSON merge patch.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Default::default());
    }
    if let Value::Object(t) = target {
        for (k, v) in p {
            if v.is_null() {
                t.remove(k);
            } else {
                merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
    }
}

/// The spec of a stored object with `patch` merged in, checked like a PUT body.
pub fn patched<T: DeserializeOwned + schemars::JsonSchema + serde::Serialize + 'static>(
    current: &T,
    patch: &Value,
) -> Result<T, Failure> {
    let mut v = serde_json::to_value(current).map_err(|_| Failure::internal())?;
    merge_patch(&mut v, patch);
    let bytes = serde_json::to_vec(&v).map_err(|_| Failure::internal())?;
    super::body::parse::<T>(&bytes)
}

/// For a PATCH of the stored object `id`: its spec with `patch` merged in,
/// and the request's preconditions pinned to the version it was merged onto.
pub async fn patch_of<S>(
    state: &AppState,
    id: String,
    patch: &Value,
    headers: axum::http::HeaderMap,
    not_found: impl FnOnce() -> Failure,
) -> Result<(S, axum::http::HeaderMap), Failure>
where
    S: Kind + DeserializeOwned + schemars::JsonSchema + serde::Serialize + Send + 'static,
{
    let current: Option<Record<S, serde_json::Value>> = state
        .store
        .view(move |tx| -> Result<_, StoreError> { rec::get(tx, &id) })
        .await?;
    let current = current.ok_or_else(not_found)?;
    let spec = patched(&current.spec, patch)?;
    Ok((spec, super::patch_preconditions(headers, &current.etag)))
}

/// How long a PATCH without the client's own `If-Match` keeps merging onto
/// the latest version while concurrent changes get in first. Writes are
/// serialised, so each round at least one of the racing PATCHes lands: N
/// of them at once all land within N rounds, far inside this.
const PATCH_PERSISTENCE: std::time::Duration = std::time::Duration::from_secs(30);

/// A PATCH merges onto the version it read and pins that version; when the
/// client gave no `If-Match` of its own, a 412 only means another change
/// landed in between, so the service merges onto the latest and writes
/// again: a PATCH without a precondition applies on the latest version
/// instead of failing with 412.
pub struct PatchRetry {
    client_pinned: bool,
    until: std::time::Instant,
}

impl PatchRetry {
    pub fn new(headers: &axum::http::HeaderMap) -> Self {
        PatchRetry {
            client_pinned: headers.contains_key(header::IF_MATCH),
            until: std::time::Instant::now() + PATCH_PERSISTENCE,
        }
    }

    /// True when the PATCH should be merged and written again after `f`.
    pub fn after(&mut self, f: &Failure) -> bool {
        !self.client_pinned
            && f.status == StatusCode::PRECONDITION_FAILED
            && std::time::Instant::now() < self.until
    }
}

/// Field errors as a 400 InvalidField.
pub fn check(errors: Vec<hybrid_api::validate::FieldError>) -> Result<(), Failure> {
    Ok(Refusal::check(errors)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_follows_rfc_7386() {
        let mut t = json!({"a": 1, "b": {"c": 2, "d": 3}, "e": [1]});
        merge_patch(
            &mut t,
            &json!({"a": null, "b": {"c": 5}, "e": [2], "f": "x"}),
        );
        assert_eq!(t, json!({"b": {"c": 5, "d": 3}, "e": [2], "f": "x"}));
    }
}
