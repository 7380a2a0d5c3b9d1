//! The one lifecycle every managed resource shares, written once: create
//! with `If-None-Match: *` and keep the object (tainted) when the work fails
//! after the service accepted it; wait for operations; read back with "404
//! removes it from state"; update (or nothing, when only configuration-only
//! attributes changed); delete and wait; import by id. A kind supplies only
//! what differs ([`Managed`]); `managed_resource!(Kind)` makes it a
//! resource.

use std::future::Future;
use std::time::Duration;

use hybrid_api::Operation;
use hybrid_cty::Value;

use super::planning::{ID, NAME, PROVISIONING_STATE};
use crate::client::{Accepted, ClientError, HostClient};
use crate::errors;
use crate::framework::model::{self, FromValue, ToValue};
use crate::framework::values::{self, known_only, set};
use crate::framework::{AttrPath, Diagnostics, PlanContext, Schema, timeouts};

/// What one kind of API object supplies to the shared lifecycle: its
/// schema and plan-time checks, how to name it, and the calls that differ
/// between kinds. Everything else (waiting for operations, keeping a failed
/// object tainted, reading back, 404 on refresh, import) is this module's.
pub(crate) trait Managed: Send + Sync + 'static {
    /// The object as the service reports it.
    type Object: Send + Sync;
    /// The resource's configuration, plan or state as a typed model (its
    /// fields are the schema's attributes).
    type Model: FromValue + ToValue + Default + Send + Sync;
    /// What a create sends.
    type Create: Send + Sync;
    /// What an update sends.
    type Update: Send + Sync;

    /// `hybrid_vnet`, …
    const TYPE_NAME: &'static str;
    /// `vnet`, `cluster`, …: for messages.
    const KIND: &'static str;
    /// The id pattern, e.g. `/vnets/<name>`: for messages.
    const ID_FORMAT: &'static str;
    /// An example id, e.g. `/vnets/lan`: for messages.
    const ID_EXAMPLE: &'static str;
    /// Used when `timeouts` does not say otherwise.
    const DEFAULT_TIMEOUT: Duration;
    /// Appended to "the planned <kind> is incomplete" when a create cannot
    /// be built from the plan.
    const INCOMPLETE_PLAN_HINT: &'static str = "";
    /// Why an update cannot be built from the prior state and the plan.
    const INCOMPLETE_UPDATE: &'static str = "the state has no valid `id` or the plan is incomplete";

    fn schema(&self) -> Schema;

    /// Checks of the whole configuration beyond per-attribute validators.
    fn validate(&self, _config: &Value, _diags: &mut Diagnostics) {}

    /// Plan-time checks and adjustments after the generic planning.
    fn modify_plan(
        &self,
        ctx: PlanContext<'_, HostClient>,
        planned: &mut Value,
        diags: &mut Diagnostics,
    ) -> impl Future<Output = ()> + Send;

    /// Whether `id` is an id of this kind (checked before any call, so an
    /// import id can never reach another route).
    fn is_id(id: &str) -> bool;

    /// The id the planned object will have (from its name and parents).
    fn planned_id(planned: &Self::Model) -> Option<String>;

    /// The id of the object a state holds, when it is one of this kind's.
    fn state_id(state: &Self::Model) -> Option<String>;

    /// The object with API id `id` (already checked by [`Managed::is_id`]),
    /// or `None` when it does not exist.
    fn fetch(
        client: &HostClient,
        id: &str,
    ) -> impl Future<Output = Result<Option<Self::Object>, ClientError>> + Send;

    /// The Terraform state of `object`. `previous` (plan or prior state,
    /// all null on import) decides null-versus-empty for optional
    /// collections and carries `timeouts`.
    fn to_state(object: &Self::Object, previous: &Self::Model) -> Self::Model;

    /// What a create of `planned` sends; `None` when the plan is incomplete.
    fn create_request(planned: &Self::Model) -> Option<Self::Create>;

    /// What an update from `prior` to `planned` sends; `None` when they are
    /// incomplete.
    fn update_request(prior: &Self::Model, planned: &Self::Model) -> Option<Self::Update>;

    /// Whether the update asks nothing of the service (only
    /// configuration-only attributes such as `timeouts` changed): it then
    /// makes no call when the last operation succeeded.
    fn same_spec(_prior: &Self::Model, _planned: &Self::Model) -> bool {
        false
    }

    /// Creates the object (`If-None-Match: *`: never takes one over).
    fn create(
        client: &HostClient,
        request: &Self::Create,
    ) -> impl Future<Output = Result<Accepted<Self::Object>, ClientError>> + Send;

    fn update(
        client: &HostClient,
        id: &str,
        request: &Self::Update,
    ) -> impl Future<Output = Result<Accepted<Self::Object>, ClientError>> + Send;

    /// Deletes object `id`: `None` when it was already gone.
    fn delete(
        client: &HostClient,
        id: &str,
    ) -> impl Future<Output = Result<Option<Operation>, ClientError>> + Send;

    /// Called with the state a create or update ends with, to warn about
    /// what the state alone does not say.
    fn applied(_state: &Self::Model, _diags: &mut Diagnostics) {}

    /// Rewrites the JSON of a state stored under an older schema version
    /// (see [`Resource::upgrade_state`](crate::framework::Resource::upgrade_state)).
    fn upgrade_state(
        _version: i64,
        state: serde_json::Value,
        _diags: &mut Diagnostics,
    ) -> serde_json::Value {
        state
    }
}

/// Makes a [`Managed`] kind a Terraform resource through the one generic
/// lifecycle below: send the change, wait for its operation, keep the object
/// (tainted, with the error) when the work fails after the service accepted
/// it, read it back. Wiring only: every step is a generic function here.
macro_rules! managed_resource {
    ($kind:ty) => {
        #[async_trait::async_trait]
        impl $crate::framework::Resource<$crate::client::HostClient> for $kind {
            fn type_name(&self) -> &'static str {
                <$kind as $crate::resources::lifecycle::Managed>::TYPE_NAME
            }

            fn schema(&self) -> $crate::framework::Schema {
                $crate::resources::lifecycle::Managed::schema(self)
            }

            fn validate(
                &self,
                config: &hybrid_cty::Value,
                diags: &mut $crate::framework::Diagnostics,
            ) {
                $crate::resources::lifecycle::Managed::validate(self, config, diags)
            }

            async fn modify_plan(
                &self,
                ctx: $crate::framework::PlanContext<'_, $crate::client::HostClient>,
                planned: &mut hybrid_cty::Value,
                diags: &mut $crate::framework::Diagnostics,
            ) {
                $crate::resources::lifecycle::Managed::modify_plan(self, ctx, planned, diags).await
            }

            async fn create(
                &self,
                client: &$crate::client::HostClient,
                planned: &hybrid_cty::Value,
                diags: &mut $crate::framework::Diagnostics,
            ) -> hybrid_cty::Value {
                $crate::resources::lifecycle::create::<$kind>(client, planned, diags).await
            }

            async fn read(
                &self,
                client: &$crate::client::HostClient,
                state: &hybrid_cty::Value,
                diags: &mut $crate::framework::Diagnostics,
            ) -> hybrid_cty::Value {
                $crate::resources::lifecycle::read::<$kind>(client, state, diags).await
            }

            async fn update(
                &self,
                client: &$crate::client::HostClient,
                prior: &hybrid_cty::Value,
                planned: &hybrid_cty::Value,
                diags: &mut $crate::framework::Diagnostics,
            ) -> hybrid_cty::Value {
                $crate::resources::lifecycle::update::<$kind>(client, prior, planned, diags).await
            }

            async fn delete(
                &self,
                client: &$crate::client::HostClient,
                state: &hybrid_cty::Value,
                diags: &mut $crate::framework::Diagnostics,
            ) {
                $crate::resources::lifecycle::delete::<$kind>(client, state, diags).await
            }

            async fn import(
                &self,
                client: &$crate::client::HostClient,
                id: &str,
                diags: &mut $crate::framework::Diagnostics,
            ) -> hybrid_cty::Value {
                $crate::resources::lifecycle::import::<$kind>(client, id, diags).await
            }

            fn upgrade_state(
                &self,
                version: i64,
                state: serde_json::Value,
                diags: &mut $crate::framework::Diagnostics,
            ) -> serde_json::Value {
                <$kind as $crate::resources::lifecycle::Managed>::upgrade_state(
                    version, state, diags,
                )
            }
        }
    };
}
pub(crate) use managed_resource;

/// Creates the planned object and settles it.
pub(crate) async fn create<K: Managed>(
    client: &HostClient,
    planned: &Value,
    diags: &mut Diagnostics,
) -> Value {
    let model: K::Model = model::read(planned);
    let (Some(name), Some(id), Some(request)) = (
        values::string(planned, NAME),
        K::planned_id(&model),
        K::create_request(&model),
    ) else {
        diags.error(
            format!("Cannot create {}", K::KIND),
            format!(
                "the planned {} is incomplete{}",
                K::KIND,
                K::INCOMPLETE_PLAN_HINT
            ),
        );
        return Value::Null;
    };
    let answer = K::create(client, &request).await;
    let state = created::<K>(client, &id, &name, answer, planned, diags).await;
    K::applied(&model::read(&state), diags);
    state
}

/// Updates the object, or returns the plan when the update asks nothing of
/// the service.
pub(crate) async fn update<K: Managed>(
    client: &HostClient,
    prior: &Value,
    planned: &Value,
    diags: &mut Diagnostics,
) -> Value {
    let (before, after): (K::Model, K::Model) = (model::read(prior), model::read(planned));
    let (Some(id), Some(request)) = (K::state_id(&before), K::update_request(&before, &after))
    else {
        diags.error(format!("Cannot update {}", K::KIND), K::INCOMPLETE_UPDATE);
        return prior.clone();
    };
    if let Some(state) = unchanged_update(prior, planned, K::same_spec(&before, &after)) {
        if planned.is_fully_known() {
            return state;
        }
        // Nothing to send, but the plan left values to the service that
        // other work changes (a pool's version and nodes, which its
        // cluster's upgrade, applied first, replaced): read them back.
        let summary = format!("Cannot read {} {id}", K::KIND);
        return match K::fetch(client, &id).await {
            Ok(Some(object)) => state_of::<K>(&object, planned),
            Ok(None) => {
                diags.error(summary, format!("{} {id} no longer exists", K::KIND));
                state
            }
            Err(e) => {
                errors::report(diags, &summary, &e);
                state
            }
        };
    }
    let answer = K::update(client, &id, &request).await;
    let state = updated::<K>(client, &id, answer, prior, planned, diags).await;
    K::applied(&model::read(&state), diags);
    state
}

/// Deletes the object and waits for it to be gone.
pub(crate) async fn delete<K: Managed>(
    client: &HostClient,
    state: &Value,
    diags: &mut Diagnostics,
) {
    let Some(id) = K::state_id(&model::read(state)) else {
        return;
    };
    let answer = K::delete(client, &id).await;
    deleted::<K>(client, &id, answer, state, diags).await;
}

/// The state of `object` as a value; `previous` as in [`Managed::to_state`].
fn state_of<R: Managed>(object: &R::Object, previous: &Value) -> Value {
    R::to_state(object, &model::read(previous)).to_value()
}

/// Finishes a create: on success waits for the work; a 412 means the object
/// already exists, which is never taken over silently.
async fn created<R: Managed>(
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
                AttrPath::attr(NAME),
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
async fn updated<R: Managed>(
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
async fn settle<R: Managed>(
    client: &HostClient,
    id: &str,
    accepted: Accepted<R::Object>,
    timeout: Duration,
    planned: &Value,
    summary: &str,
    diags: &mut Diagnostics,
) -> Value {
    let operation = match accepted {
        Accepted::Done(object) => return state_of::<R>(&object, planned),
        Accepted::Queued(operation) => operation,
    };
    if let Err(e) = client.wait_success(*operation, timeout).await {
        errors::report(diags, summary, &e);
    }
    match R::fetch(client, id).await {
        Ok(Some(object)) => state_of::<R>(&object, planned),
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
    let Some(id) = values::string(state, ID).filter(|id| R::is_id(id)) else {
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
        Ok(Some(object)) => state_of::<R>(&object, state),
        Ok(None) => Value::Null,
        Err(e) => {
            errors::report(diags, &format!("Cannot read {} {id}", R::KIND), &e);
            state.clone()
        }
    }
}

/// Finishes a delete: waits for the work. A 404 answer means the object was
/// already gone; a refusal (e.g. `InUse`) is reported as the service says it.
async fn deleted<R: Managed>(
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
        Ok(Some(object)) => state_of::<R>(&object, &Value::Null),
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

/// A planned value with unknowns replaced by null and `id` set: what is
/// known of an object the service accepted but that could not be read back.
pub(crate) fn partial_state(planned: &Value, id: &str) -> Value {
    let mut partial = known_only(planned);
    set(&mut partial, ID, Value::from(id));
    partial
}

/// The new state of an update that asks nothing of the service (the spec
/// is unchanged and the last operation succeeded), or `None` when the
/// service has work to do. Only configuration-only attributes changed.
pub(crate) fn unchanged_update(prior: &Value, planned: &Value, same_spec: bool) -> Option<Value> {
    let succeeded = prior.get(PROVISIONING_STATE).and_then(Value::as_str) == Some("Succeeded");
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
