//! The steps every managed resource shares, written once: create with
//! `If-None-Match: *` and keep the object (tainted) when the work fails
//! after the service accepted it; wait for operations; read back with
//! "404 removes it from state"; delete and wait; import by id; plan-time
//! rule checks and the service's dry run turned into diagnostics at the
//! attribute at fault; and the schema pieces several resources use
//! (observed nodes, status conditions).

use std::future::Future;
use std::time::Duration;

use hybrid_api::validate::FieldError;
use hybrid_api::{ApiError, Condition, Node, Operation, codes};
use hybrid_cty::{Type, Value};

use crate::client::{Accepted, ClientError, HostClient, Put};
use crate::errors;
use crate::framework::path::Step;
use crate::framework::schema::{Attribute, Kind, Nesting};
use crate::framework::{AttrPath, Diagnostics, PlanContext, Schema, timeouts, values};

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

/// A value with every unknown replaced by null.
pub(crate) fn known_only(value: &Value) -> Value {
    match value {
        Value::Unknown => Value::Null,
        Value::Object(attrs) => Value::Object(
            attrs
                .iter()
                .map(|(k, v)| (k.clone(), known_only(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Sets attribute `name` of an object value (no-op on non-objects).
pub(crate) fn set(object: &mut Value, name: &str, value: Value) {
    if let Value::Object(attrs) = object {
        attrs.insert(name.to_string(), value);
    }
}

// ---------------------------------------------------------------- planning

/// An update of a healthy object either succeeds, leaving it `Succeeded`, or
/// fails with an error (when Terraform checks nothing against the plan), so
/// the plan can say so instead of "known after apply" on every change.
pub(crate) fn keep_succeeded_state(prior: &Value, planned: &mut Value) {
    let succeeded = prior.get("provisioning_state").and_then(Value::as_str) == Some("Succeeded");
    if succeeded
        && planned
            .get("provisioning_state")
            .is_some_and(Value::is_unknown)
    {
        set(planned, "provisioning_state", Value::from("Succeeded"));
    }
}

/// Plans every value the configuration leaves to the service as it was.
/// For a change of configuration-only attributes (`timeouts`) alone, which
/// asks nothing of the service, so nothing it reports can change.
/// A value the configuration itself leaves unknown (e.g. `cluster_id =
/// hybrid_cluster.x.id` while that cluster is being replaced) stays
/// unknown: it is not the service's to fill in, and planning the prior
/// value would hide the replacement it forces.
pub(crate) fn keep_prior_values(prior: &Value, config: &Value, planned: &mut Value) {
    if let (Value::Object(old), Value::Object(new)) = (prior, planned) {
        for (name, value) in new.iter_mut() {
            if value.is_unknown()
                && config.get(name).is_none_or(Value::is_fully_known)
                && let Some(before) = old.get(name)
            {
                *value = before.clone();
            }
        }
    }
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

/// When the last operation on an existing object did not succeed (it failed,
/// was canceled, or was still running when Terraform stopped waiting), plan
/// an update even if the configuration did not change: applying the same
/// spec again re-drives the work, so re-applying converges. Everything the
/// work may change (`observed`) is then unknown.
pub(crate) fn redrive_unfinished(prior: &Value, planned: &mut Value, observed: &[&str]) {
    let Some(state) = prior.get("provisioning_state").and_then(Value::as_str) else {
        return;
    };
    if state == "Succeeded" || planned.is_null() {
        return;
    }
    set(planned, "provisioning_state", Value::Unknown);
    for name in observed {
        set(planned, name, Value::Unknown);
    }
}

/// Whether any requires-replace attribute (at any depth of nested objects)
/// differs between `prior` and `planned`: the plan is then a replacement,
/// and an update-shaped check against the service would be meaningless.
pub(crate) fn forces_replacement(attributes: &[Attribute], prior: &Value, planned: &Value) -> bool {
    attributes.iter().any(|attribute| {
        let old = prior.get(attribute.name).unwrap_or(&Value::Null);
        let new = planned.get(attribute.name).unwrap_or(&Value::Null);
        (attribute.requires_replace && old != new)
            || match &attribute.kind {
                Kind::Nested(inner) => forces_replacement(inner, old, new),
                _ => false,
            }
    })
}

/// Reports the shared admission rules' findings at their attributes, except
/// where the configuration is not known yet: a rule must not fire on a
/// placeholder that stood in for an unknown value. `linked` lists groups of
/// fields checked against each other (`pod_cidr` vs `service_cidr`): when
/// one of a group is unknown, no finding about the group is reported.
pub(crate) fn report_rules(
    errors: Vec<FieldError>,
    config: &Value,
    linked: &[&[&str]],
    diags: &mut Diagnostics,
) {
    let unknown = |target: &str| touches_unknown(config, &AttrPath::parse(target));
    for error in errors {
        let blocked = unknown(&error.target)
            || linked.iter().any(|group| {
                group.contains(&error.target.as_str()) && group.iter().any(|f| unknown(f))
            });
        if blocked {
            continue;
        }
        diags.error_at(
            AttrPath::parse(&error.target),
            format!("Invalid {}", error.target),
            error.message,
        );
    }
}

/// How to ask the service to check the planned change (`?dry_run=true`),
/// or `None` when it cannot or need not be asked: no configured client, a
/// configuration with values not known until apply, or a replacement (the
/// create half of it is planned, and checked, separately).
pub(crate) fn dry_run_put<'a>(
    ctx: &PlanContext<'a, HostClient>,
    planned: &Value,
    schema: &Schema,
) -> Option<(&'a HostClient, Put)> {
    let client = ctx.data?;
    if !ctx.config.is_fully_known() {
        return None;
    }
    if ctx.prior.is_null() {
        return Some((client, Put::Create));
    }
    if forces_replacement(&schema.attributes, ctx.prior, planned) {
        return None;
    }
    Some((client, Put::Upsert))
}

/// Whether `path` in `value` is, or passes through, an unknown value.
fn touches_unknown(value: &Value, path: &AttrPath) -> bool {
    let mut current = value;
    for step in &path.0 {
        if current.is_unknown() {
            return true;
        }
        let next = match step {
            Step::Attribute(name) | Step::Key(name) => current.get(name),
            Step::Index(index) => usize::try_from(*index)
                .ok()
                .and_then(|i| current.elements().and_then(|items| items.get(i))),
        };
        match next {
            Some(next) => current = next,
            None => return false,
        }
    }
    current.is_unknown()
}

/// The outcome of asking the service to admit a change without doing it
/// (`?dry_run=true`). Real admission errors become plan errors at the
/// attribute they name. A missing referenced object (404: the vnet, custom
/// location or cluster is created in the same apply), an existing object on
/// create (412, or an immutability complaint about it: a replacement in
/// progress, or a take-over the create will refuse), and a service that
/// cannot answer never fail the plan: the apply checks again.
pub(crate) fn dry_run_outcome<T>(
    answer: Result<T, ClientError>,
    creating: bool,
    summary: &str,
    schema: &Schema,
    diags: &mut Diagnostics,
) -> Option<T> {
    let error = match answer {
        Ok(object) => return Some(object),
        Err(error) => error,
    };
    match &error {
        ClientError::Api { status, error: api }
            if admission_refusal(*status, &api.code, creating) =>
        {
            let located = ClientError::Api {
                status: *status,
                error: locate(api, schema),
            };
            errors::report(diags, summary, &located);
        }
        other => tracing::debug!(error = %other, "dry run gave no verdict; the apply will check"),
    }
    None
}

/// Whether an error answer to a dry run is the service refusing the change
/// itself (as opposed to "cannot tell yet").
fn admission_refusal(status: u16, code: &str, creating: bool) -> bool {
    if code == codes::NOT_FOUND || code == codes::PRECONDITION_FAILED {
        return false;
    }
    if creating && code == codes::FIELD_IMMUTABLE {
        return false;
    }
    matches!(status, 400 | 409 | 422)
}

/// `error` with each `target` kept only when it names an attribute of
/// `schema`: a target such as the vnet's `vm_ip_pool` (address exhaustion)
/// is another object's field, and pointing at it here would mislead.
fn locate(error: &ApiError, schema: &Schema) -> ApiError {
    let known = |target: &Option<String>| {
        target.clone().filter(|t| {
            matches!(AttrPath::parse(t).0.first(),
                Some(Step::Attribute(name)) if schema.attributes.iter().any(|a| a.name == name))
        })
    };
    ApiError {
        code: error.code.clone(),
        message: error.message.clone(),
        target: known(&error.target),
        details: error
            .details
            .iter()
            .map(|detail| locate(detail, schema))
            .collect(),
    }
}

// ------------------------------------------------------------ schema pieces

/// A set of strings (`admin_group_ids`), for groups where order means nothing.
pub(crate) fn string_set(name: &'static str) -> Attribute {
    Attribute {
        kind: Kind::Primitive(Type::Set(Box::new(Type::String))),
        ..Attribute::string(name)
    }
}

/// A set of strings as state, null when empty and left out.
pub(crate) fn string_set_state(items: &[String], previous: Option<&Value>) -> Value {
    if items.is_empty() && previous.is_none_or(Value::is_null) {
        return Value::Null;
    }
    Value::Set(items.iter().map(|s| Value::from(s.as_str())).collect())
}

/// A computed list of objects the service observes.
pub(crate) fn observed_list(name: &'static str, attributes: Vec<Attribute>) -> Attribute {
    Attribute::nested_collection(name, Nesting::List, attributes).computed()
}

/// The attributes of one observed VM.
pub(crate) fn node_attributes() -> Vec<Attribute> {
    vec![
        Attribute::string("name")
            .computed()
            .description("VM name, also the Kubernetes node name."),
        Attribute::string("ip")
            .computed()
            .description("The VM's address on the vnet; null until it has one."),
        Attribute::string("host")
            .computed()
            .description("Physical host the VM runs on."),
        Attribute::string("state").computed().description(
            "`Pending`, `Running`, `Failed`, `Deleting`, or `NotReady` (its host is down).",
        ),
    ]
}

/// One observed VM as state.
pub(crate) fn node_value(node: &Node) -> Value {
    Value::object([
        ("name", Value::from(node.name.as_str())),
        ("ip", values::opt_string(node.ip.as_deref())),
        ("host", Value::from(node.host.as_str())),
        ("state", Value::from(node.state.as_str())),
    ])
}

/// Observed VMs as state.
pub(crate) fn nodes_value(nodes: &[Node]) -> Value {
    Value::list(nodes.iter().map(node_value))
}

/// The attributes of one status condition.
pub(crate) fn condition_attributes() -> Vec<Attribute> {
    vec![
        Attribute::string("type")
            .computed()
            .description("Condition type, e.g. `Ready`."),
        Attribute::string("status")
            .computed()
            .description("`True`, `False` or `Unknown`."),
        Attribute::string("reason")
            .computed()
            .description("Machine-readable CamelCase reason."),
        Attribute::string("message")
            .computed()
            .description("Human-readable explanation."),
    ]
}

/// One status condition as state.
pub(crate) fn condition_value(c: &Condition) -> Value {
    Value::object([
        ("type", Value::from(c.type_.as_str())),
        ("status", Value::from(c.status.as_str())),
        ("reason", Value::from(c.reason.as_str())),
        ("message", Value::from(c.message.as_str())),
    ])
}

/// Status conditions as state.
pub(crate) fn conditions_value(conditions: &[Condition]) -> Value {
    Value::list(conditions.iter().map(condition_value))
}

/// A whole number as state.
pub(crate) fn count(n: u32) -> Value {
    Value::from(i64::from(n))
}

/// A known whole number attribute that fits a `u32`.
pub(crate) fn u32_of(object: &Value, name: &str) -> Option<u32> {
    values::int(object, name).and_then(|n| u32::try_from(n).ok())
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
    fn unknown_paths_are_detected_through_collections() {
        let config = Value::object([
            ("name", Value::from("a")),
            ("vnet_id", Value::Unknown),
            (
                "taints",
                Value::list([Value::from("a=b:NoSchedule"), Value::Unknown]),
            ),
            (
                "network",
                Value::object([("pod_cidr", Value::Unknown), ("plugin", Value::from("x"))]),
            ),
        ]);
        assert!(touches_unknown(&config, &AttrPath::parse("vnet_id")));
        assert!(touches_unknown(&config, &AttrPath::parse("taints[1]")));
        assert!(!touches_unknown(&config, &AttrPath::parse("taints[0]")));
        assert!(touches_unknown(
            &config,
            &AttrPath::parse("network.pod_cidr")
        ));
        assert!(!touches_unknown(
            &config,
            &AttrPath::parse("network.plugin")
        ));
        assert!(!touches_unknown(&config, &AttrPath::parse("name")));
        let mut diags = Diagnostics::new();
        report_rules(
            vec![
                FieldError::new("vnet_id", "bad"),
                FieldError::new("name", "bad name"),
                FieldError::new("network.plugin", "overlaps pod_cidr"),
            ],
            &config,
            &[&["network.pod_cidr", "network.plugin"]],
            &mut diags,
        );
        assert_eq!(diags.0.len(), 1);
        assert_eq!(diags.0[0].path, Some(AttrPath::attr("name")));
    }

    fn api(status: u16, code: &str, target: Option<&str>) -> ClientError {
        ClientError::Api {
            status,
            error: ApiError {
                code: code.into(),
                message: format!("{code} message"),
                target: target.map(str::to_string),
                details: Vec::new(),
            },
        }
    }

    fn schema() -> Schema {
        Schema::new(
            "t",
            vec![
                Attribute::string("kubernetes_version").optional(),
                Attribute::number("node_count").optional(),
            ],
        )
    }

    #[test]
    fn dry_run_reports_refusals_at_known_attributes_only() {
        let mut diags = Diagnostics::new();
        let answer: Result<(), _> = Err(api(
            400,
            codes::VERSION_NOT_ALLOWED,
            Some("kubernetes_version"),
        ));
        assert!(dry_run_outcome(answer, false, "s", &schema(), &mut diags).is_none());
        assert_eq!(diags.0[0].path, Some(AttrPath::attr("kubernetes_version")));
        assert!(diags.0[0].detail.contains("VersionNotAllowed message"));

        // Another object's field: reported, but not at a foreign path.
        let mut diags = Diagnostics::new();
        let answer: Result<(), _> = Err(api(409, codes::POOL_EXHAUSTED, Some("vm_ip_pool")));
        dry_run_outcome(answer, false, "s", &schema(), &mut diags);
        assert_eq!(diags.0.len(), 1);
        assert_eq!(diags.0[0].path, None);
    }

    #[test]
    fn dry_run_never_fails_the_plan_for_missing_references_or_an_unreachable_service() {
        let ignored = [
            (api(404, codes::NOT_FOUND, Some("vnet_id")), false),
            (api(412, codes::PRECONDITION_FAILED, None), true),
            (api(409, codes::FIELD_IMMUTABLE, Some("os_sku")), true),
            (api(500, codes::INTERNAL, None), false),
            (api(405, codes::BAD_REQUEST, None), false),
            (
                ClientError::Unreachable {
                    endpoint: "https://x".into(),
                    cause: "refused".into(),
                },
                false,
            ),
        ];
        for (error, creating) in ignored {
            let mut diags = Diagnostics::new();
            let text = error.to_string();
            assert!(
                dry_run_outcome::<()>(Err(error), creating, "s", &schema(), &mut diags).is_none()
            );
            assert!(diags.is_empty(), "{text} should not fail the plan");
        }
        // An immutability refusal on an update is real.
        let mut diags = Diagnostics::new();
        dry_run_outcome::<()>(
            Err(api(409, codes::FIELD_IMMUTABLE, Some("node_count"))),
            false,
            "s",
            &schema(),
            &mut diags,
        );
        assert!(diags.has_errors());
    }

    #[test]
    fn failed_or_unfinished_objects_plan_an_update_that_redrives_them() {
        let prior = Value::object([
            ("provisioning_state", Value::from("Failed")),
            ("nodes", Value::list([])),
        ]);
        let mut planned = prior.clone();
        redrive_unfinished(&prior, &mut planned, &["nodes"]);
        assert_eq!(planned.get("provisioning_state"), Some(&Value::Unknown));
        assert_eq!(planned.get("nodes"), Some(&Value::Unknown));

        let prior = Value::object([("provisioning_state", Value::from("Succeeded"))]);
        let mut planned = Value::object([("provisioning_state", Value::Unknown)]);
        redrive_unfinished(&prior, &mut planned, &[]);
        keep_succeeded_state(&prior, &mut planned);
        assert_eq!(planned, prior);
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
