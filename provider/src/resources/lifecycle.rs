//! The apply-time steps every managed resource shares, written once:
//! create with `If-None-Match: *` and keep the object (tainted) when the
//! work fails after the service accepted it; wait for operations; read back
//! with "404 removes it from state"; delete and wait; import by id.

use std::future::Future;
use std::time::Duration;

use hybrid_api::Operation;
use hybrid_cty::Value;

use crate::client::{Accepted, ClientError, HostClient};
use crate::errors;
use crate::framework::values::{self, known_only, set};
use crate::framework::{AttrPath, Diagnostics, timeouts};

/// What the shared steps need to know about one kind of API object.
pub(crate) trait Managed: Send + Sync {
    /// The object as the service reports it.
    type Object: Send + Sync;
    /// `vnet`, `cluster`, …: for messages.
    const KIND: &'static str;
    /// The id pattern, e.g. `/vnets/<name>`: for messages.
    const ID_FORMAT: &'static str;
    /// An example id, e.g. `/vnets/lan`: for messages.
    const ID_EXAMPLE: &'static str;
    /// Used when `timeouts` does not say otherwise.
    const DEFAULT_TIMEOUT: Duration;

    /// Whether `id` is an id of this kind (checked before any call, so an
    /// import id can never reach another route).
    fn is_id(id: &str) -> bool;

    /// The object with API id `id` (already checked by [`Managed::is_id`]),
    /// or `None` when it does not exist.
    fn fetch(
        client: &HostClient,
        id: &str,
    ) -> impl Future<Output = Result<Option<Self::Object>, ClientError>> + Send;

    /// The Terraform state of `object`. `previous` (plan or prior state,
    /// null on import) decides null-versus-empty for optional collections
    /// and carries `timeouts`.
    fn to_state(object: &Self::Object, previous: &Value) -> Value;
}

/// Finishes a create: on success waits for the work; a 412 means the object
/// already exists, which is never taken over silently.
pub(crate) async fn created<R: Managed>(
    client: &HostClient,
    id: &str,
    name: &str,
    answer: Result<Accepted<R::Object>, ClientError>,
    planned: &Value,
    diags: &mut Diagnostics,
) -> Value {
    let summary = format!("Cannot create {} {name:?}", R::KIND);
    match answer {
        Ok(accepted) => {
            let timeout = timeouts::get(planned, timeouts::CREATE, R::DEFAULT_TIMEOUT);
            settle::<R>(client, id, accepted, timeout, planned, &summary, diags).await
        }
        Err(ClientError::Api { status: 412, .. }) => {
            diags.error_at(
                AttrPath::attr("name"),
                summary,
                format!(
                    "a {} named {name:?} already exists in the host management service ({id}). \
                     To manage it with Terraform, import it: terraform import <address> {id}",
                    R::KIND
                ),
            );
            Value::Null
        }
        Err(e) => {
            errors::report(diags, &summary, &e);
            Value::Null
        }
    }
}

/// Finishes an update: on success waits for the work; when the service
/// refused it, the prior state stands.
pub(crate) async fn updated<R: Managed>(
    client: &HostClient,
    id: &str,
    answer: Result<Accepted<R::Object>, ClientError>,
    prior: &Value,
    planned: &Value,
    diags: &mut Diagnostics,
) -> Value {
    let summary = format!("Cannot update {} {id}", R::KIND);
    match answer {
        Ok(accepted) => {
            let timeout = timeouts::get(planned, timeouts::UPDATE, R::DEFAULT_TIMEOUT);
            settle::<R>(client, id, accepted, timeout, planned, &summary, diags).await
        }
        Err(e) => {
            errors::report(diags, &summary, &e);
            prior.clone()
        }
    }
}

/// Waits for work the service accepted, then reads the result back. When
/// the work fails or times out after the service accepted it, the object is
/// still returned (at least its `id`), so Terraform keeps it, tainted,
/// together with the error; re-applying converges.
pub(crate) async fn settle<R: Managed>(
    client: &HostClient,
    id: &str,
    accepted: Accepted<R::Object>,
    timeout: Duration,
    planned: &Value,
    summary: &str,
    diags: &mut Diagnostics,
) -> Value {
    let operation = match accepted {
        Accepted::Done(object) => return R::to_state(&object, planned),
        Accepted::Queued(operation) => operation,
    };
    if let Err(e) = client.wait_success(*operation, timeout).await {
        errors::report(diags, summary, &e);
    }
    match R::fetch(client, id).await {
        Ok(Some(object)) => R::to_state(&object, planned),
        Ok(None) => {
            diags.error(
                summary,
                format!("{} {id} disappeared while being applied", R::KIND),
            );
            Value::Null
        }
        Err(e) => {
            errors::report(diags, summary, &e);
            partial_state(planned, id)
        }
    }
}

/// Refresh: the object as the service has it now (drift shows in the next
/// plan), or null when it is gone (the next plan re-creates it). On any
/// other failure the state is kept as it was.
pub(crate) async fn read<R: Managed>(
    client: &HostClient,
    state: &Value,
    diags: &mut Diagnostics,
) -> Value {
    let Some(id) = values::string(state, "id").filter(|id| R::is_id(id)) else {
        diags.error(
            format!("Cannot read {}", R::KIND),
            format!(
                "the state has no valid `id` (expected {}); remove it with terraform state rm and import the {}",
                R::ID_FORMAT,
                R::KIND
            ),
        );
        return Value::Null;
    };
    match R::fetch(client, &id).await {
        Ok(Some(object)) => R::to_state(&object, state),
        Ok(None) => Value::Null,
        Err(e) => {
            errors::report(diags, &format!("Cannot read {} {id}", R::KIND), &e);
            state.clone()
        }
    }
}

/// Finishes a delete: waits for the work. A 404 answer means the object was
/// already gone; a refusal (e.g. `InUse`) is reported as the service says it.
pub(crate) async fn deleted<R: Managed>(
    client: &HostClient,
    id: &str,
    answer: Result<Option<Operation>, ClientError>,
    state: &Value,
    diags: &mut Diagnostics,
) {
    let summary = format!("Cannot delete {} {id}", R::KIND);
    let timeout = timeouts::get(state, timeouts::DELETE, R::DEFAULT_TIMEOUT);
    match answer {
        Ok(None) => {}
        Ok(Some(operation)) => {
            if let Err(e) = client.wait_success(operation, timeout).await {
                errors::report(diags, &summary, &e);
            }
        }
        Err(e) => errors::report(diags, &summary, &e),
    }
}

/// Import by API id.
pub(crate) async fn import<R: Managed>(
    client: &HostClient,
    id: &str,
    diags: &mut Diagnostics,
) -> Value {
    if !R::is_id(id) {
        diags.error(
            "Invalid import id",
            format!(
                "import id {id:?} is not a {} id; expected {}, e.g. {}",
                R::KIND,
                R::ID_FORMAT,
                R::ID_EXAMPLE
            ),
        );
        return Value::Null;
    }
    match R::fetch(client, id).await {
        Ok(Some(object)) => R::to_state(&object, &Value::Null),
        Ok(None) => {
            diags.error(
                format!("Cannot import {}", R::KIND),
                format!(
                    "no {} {id} exists in the host management service at {}",
                    R::KIND,
                    client.endpoint()
                ),
            );
            Value::Null
        }
        Err(e) => {
            errors::report(diags, &format!("Cannot import {} {id}", R::KIND), &e);
            Value::Null
        }
    }
}

/// The API id from a state's `id` when it is one of `R`'s.
pub(crate) fn state_id<R: Managed>(state: &Value) -> Option<String> {
    values::string(state, "id").filter(|id| R::is_id(id))
}

/// A planned value with unknowns replaced by null and `id` set: what is
/// known of an object the service accepted but that could not be read back.
pub(crate) fn partial_state(planned: &Value, id: &str) -> Value {
    let mut partial = known_only(planned);
    set(&mut partial, "id", Value::from(id));
    partial
}

/// The new state of an update that asks nothing of the service (the spec
/// is unchanged and the last operation succeeded), or `None` when the
/// service has work to do. Only configuration-only attributes changed.
pub(crate) fn unchanged_update(prior: &Value, planned: &Value, same_spec: bool) -> Option<Value> {
    let succeeded = prior.get("provisioning_state").and_then(Value::as_str) == Some("Succeeded");
    // The plan, with anything it left unknown as it was: the plan may
    // spell a value differently from the state (`labels = {}` planned where
    // an import recorded null), and Terraform requires the result to match
    // the plan exactly.
    (same_spec && succeeded).then(|| {
        let mut state = planned.clone();
        if let (Value::Object(new), Value::Object(old)) = (&mut state, prior) {
            for (name, value) in new.iter_mut() {
                if !value.is_fully_known() {
                    *value = old.get(name).cloned().unwrap_or(Value::Null);
                }
            }
        }
        state
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unchanged_update_returns_the_plan_as_planned() {
        // After an import the state holds `labels = null`; the configuration
        // says `labels = {}`. Same spec, so no call to the service, but the
        // result must still be exactly what was planned.
        let obj = |labels: Value, version: Value| {
            Value::Object(
                [
                    ("labels".to_string(), labels),
                    ("kubernetes_version".to_string(), version),
                    ("provisioning_state".to_string(), Value::from("Succeeded")),
                ]
                .into(),
            )
        };
        let prior = obj(Value::Null, Value::from("1.33.1"));
        let planned = obj(Value::Map(Default::default()), Value::Unknown);
        let state = unchanged_update(&prior, &planned, true);
        assert_eq!(
            state,
            Some(obj(Value::Map(Default::default()), Value::from("1.33.1")))
        );
        assert_eq!(unchanged_update(&prior, &planned, false), None);
    }

    #[test]
    fn partial_state_keeps_the_id_and_drops_unknowns() {
        let planned = Value::object([
            ("id", Value::Unknown),
            ("name", Value::from("a")),
            ("endpoint", Value::Unknown),
        ]);
        let partial = partial_state(&planned, "/clusters/a");
        assert_eq!(partial.get("id"), Some(&Value::from("/clusters/a")));
        assert_eq!(partial.get("endpoint"), Some(&Value::Null));
        assert_eq!(partial.get("name"), Some(&Value::from("a")));
    }
}
