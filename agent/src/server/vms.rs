//! `/v1/vms…`: the VM routes, each one call of the [`crate::engine::Engine`].
//!
//! The path's name is checked here before the engine sees it (it becomes
//! a directory name under the data directory), and a `PUT` body must name
//! the VM its path names: the name is the idempotency key, and a body for
//! another VM is a client bug, not something to guess about. Logs name the
//! VM and never carry the spec (its seed content and keys).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use hybrid_api::List;
use hybrid_api::agent::{VmSpec, VmStatus};

use super::AppState;
use super::failure::Failure;

/// Longest VM name accepted (a DNS name's length).
const MAX_NAME: usize = 253;

/// A VM name must be safe as a file name: letters, digits, `-`, `_`, `.`,
/// starting with a letter or digit (so never `.` or `..`).
fn check_name(name: &str) -> Result<(), Failure> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(Failure::invalid(
            "name",
            format!(
                "VM name {name:?} must be 1-{MAX_NAME} letters, digits, '-', '_' or '.', starting with a letter or digit"
            ),
        ))
    }
}

/// Parses a [`VmSpec`] body; type errors and unknown fields name the field.
fn parse_spec(body: &[u8]) -> Result<VmSpec, Failure> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let spec = serde_path_to_error::deserialize::<_, VmSpec>(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let message = inner.to_string();
        // serde reports a missing field at its parent; point at the field.
        let missing = message
            .strip_prefix("missing field `")
            .and_then(|r| r.split_once('`'))
            .map(|(field, _)| field.to_string());
        if inner.is_syntax() || inner.is_eof() {
            Failure::bad_request(format!("request body is not valid JSON: {inner}"))
        } else if let Some(field) = missing {
            let target = if path == "." {
                field
            } else {
                format!("{path}.{field}")
            };
            Failure::invalid(target, message)
        } else if path == "." {
            Failure::bad_request(format!("request body is not a VM spec: {inner}"))
        } else {
            Failure::invalid(path, message)
        }
    })?;
    de.end()
        .map_err(|e| Failure::bad_request(format!("request body is not valid JSON: {e}")))?;
    Ok(spec)
}

/// `PUT /v1/vms/{name}`: create (idempotent by name); boots in the
/// background and answers at once.
pub async fn put(
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Json<VmStatus>, Failure> {
    check_name(&name)?;
    let spec = parse_spec(&body)?;
    if spec.name != name {
        return Err(Failure::invalid(
            "name",
            format!(
                "the body names VM {:?} but the path names VM {name:?}",
                spec.name
            ),
        ));
    }
    tracing::info!(vm = %name, image = %spec.image, "apply VM");
    let status = state
        .engine
        .apply(spec)
        .await
        .map_err(|e| Failure::from_engine(&name, e))?;
    Ok(Json(status))
}

/// `GET /v1/vms/{name}`.
pub async fn get(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<VmStatus>, Failure> {
    check_name(&name)?;
    state
        .engine
        .get(&name)
        .await
        .map(Json)
        .ok_or_else(|| Failure::not_found(format!("VM {name} does not exist")))
}

/// `GET /v1/vms`.
pub async fn list(State(state): State<AppState>) -> Json<List<VmStatus>> {
    Json(List {
        items: state.engine.list().await,
    })
}

/// `POST /v1/vms/{name}/stop`: graceful powerdown, then quit after the
/// stop timeout.
pub async fn stop(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<VmStatus>, Failure> {
    check_name(&name)?;
    tracing::info!(vm = %name, "stop VM");
    state
        .engine
        .stop(&name)
        .await
        .map(Json)
        .map_err(|e| Failure::from_engine(&name, e))
}

/// `POST /v1/vms/{name}/start`.
pub async fn start(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<VmStatus>, Failure> {
    check_name(&name)?;
    tracing::info!(vm = %name, "start VM");
    state
        .engine
        .start(&name)
        .await
        .map(Json)
        .map_err(|e| Failure::from_engine(&name, e))
}

/// `DELETE /v1/vms/{name}`: 204, also for a VM that does not exist.
pub async fn delete(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<StatusCode, Failure> {
    check_name(&name)?;
    tracing::info!(vm = %name, "delete VM");
    state
        .engine
        .delete(&name)
        .await
        .map_err(|e| Failure::from_engine(&name, e))?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_file_safe() {
        for ok in ["a", "a-cp-0", "node_1.x", "A9"] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".", "..", "../x", "a/b", "-a", "a b", "a\0"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn spec_errors_name_the_field() {
        let e = parse_spec(br#"{"name": 5}"#).unwrap_err();
        assert_eq!(e.error.target.as_deref(), Some("name"), "{e:?}");
        let e = parse_spec(br#"{"name": "a"}"#).unwrap_err();
        assert_eq!(e.error.target.as_deref(), Some("hostname"), "{e:?}");
        let e = parse_spec(b"{").unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert_eq!(e.error.code, hybrid_api::codes::BAD_REQUEST);
    }
}
