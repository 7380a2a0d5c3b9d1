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
use std::collections::BTreeSet;

use hybrid_api::agent::{VmSpec, VmStatus};
use hybrid_api::{List, codes};
use serde_json::Value;

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
    // The engine refuses a different spec under an existing name as
    // `Invalid`, like a malformed spec; the protocol answers it with 409,
    // so it is told apart here.
    if let Some(existing) = state.engine.get(&name).await {
        let differ = conflicting_fields(&existing.spec, &spec);
        if !differ.is_empty() {
            return Err(Failure::new(
                StatusCode::CONFLICT,
                codes::CONFLICT,
                format!(
                    "VM {name} exists with a different spec ({} differ); delete it first to change them",
                    differ.join(", ")
                ),
            ));
        }
    }
    tracing::info!(vm = %name, image = %spec.image, "apply VM");
    let status = state
        .engine
        .apply(spec)
        .await
        .map_err(|e| Failure::from_engine(&name, e))?;
    Ok(Json(status))
}

/// The fields in which a PUT's spec differs from the VM's. A status never
/// carries the bootstrap secret, and hybrid-host mints a fresh one when it
/// asks again: the secret is not part of the comparison.
fn conflicting_fields(existing: &VmSpec, incoming: &VmSpec) -> Vec<String> {
    let mut public = incoming.clone();
    public.bootstrap_secret = None;
    differing_fields(existing, &public)
}

/// The fields (dotted paths) in which two specs differ.
fn differing_fields(a: &VmSpec, b: &VmSpec) -> Vec<String> {
    fn walk(path: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
        match (a, b) {
            (Value::Object(x), Value::Object(y)) => {
                let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
                for k in keys {
                    let p = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    walk(
                        &p,
                        x.get(k).unwrap_or(&Value::Null),
                        y.get(k).unwrap_or(&Value::Null),
                        out,
                    );
                }
            }
            _ if a != b => out.push(path.to_string()),
            _ => {}
        }
    }
    let mut out = Vec::new();
    match (serde_json::to_value(a), serde_json::to_value(b)) {
        (Ok(x), Ok(y)) => walk("", &x, &y, &mut out),
        // Cannot happen for these types; fall back to "differ somewhere".
        _ if a != b => out.push("spec".to_string()),
        _ => {}
    }
    out
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
    fn differing_fields_are_named_by_path() {
        let a: VmSpec = serde_json::from_value(serde_json::json!({
            "name": "a", "hostname": "a", "vcpus": 1, "memory_mib": 128, "disk_gib": 1,
            "image": "i", "role": "node", "boot_timeout_seconds": 30,
            "network": {"vnet": "v", "vlan_id": null, "address": null, "gateway": null, "mac": "52:54:00:00:00:01"},
        }))
        .unwrap();
        assert!(differing_fields(&a, &a.clone()).is_empty());
        let mut b = a.clone();
        b.vcpus = 2;
        b.network.vlan_id = Some(7);
        b.labels.insert("pool".into(), "p".into());
        assert_eq!(
            differing_fields(&a, &b),
            vec!["labels.pool", "network.vlan_id", "vcpus"]
        );

        // The same VM asked for again with a (fresh) bootstrap secret is no
        // conflict: the VM's status never shows its own.
        let mut again = a.clone();
        again.bootstrap_secret = Some(hybrid_api::bootstrap::BootstrapSecret {
            api_version: hybrid_api::bootstrap::API_VERSION.into(),
            bootstrap_token: "abcdef.0123456789abcdef".into(),
            expires_at: "2030-01-01T00:00:00Z".into(),
        });
        assert_eq!(differing_fields(&a, &again), vec!["bootstrap_secret"]);
        assert!(conflicting_fields(&a, &again).is_empty());
        again.vcpus = 2;
        assert_eq!(conflicting_fields(&a, &again), vec!["vcpus"]);
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
