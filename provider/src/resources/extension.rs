//! `hybrid_extension`: software the service installs on a cluster (Flux,
//! monitoring, policy, …) or on the management host (the hybrid operator),
//! picked from the service's extension-type catalogue.
//!
//! In place: `release_train`, `version` (an upgrade, never a replace),
//! `auto_upgrade_minor_version`, `configuration_settings`, and the
//! protected settings (sent when `configuration_protected_settings_version`
//! changes). `name`, `target_id`, `extension_type` and `scope` replace it.
//!
//! `configuration_protected_settings` is write-only: Terraform hands its
//! value to the provider on apply and never keeps it in plan or state, and
//! the service never returns it, so nothing here can show it or detect drift
//! in it; its version attribute is what triggers sending it again.
//!
//! The plan checks the configuration against the extension type (unknown
//! setting keys at `configuration_settings["key"]`, versions of the train,
//! target kind) and then asks the service to admit it (`?dry_run=true`).

use std::collections::BTreeMap;
use std::time::Duration;

use hybrid_api::Operation;
use hybrid_api::extension::{
    self, DEFAULT_RELEASE_TRAIN, Extension, ExtensionScope, ExtensionSpec, ExtensionTarget,
    ExtensionType, StatusEntry, StatusLevel, extension_id, parse_extension_id,
};
use hybrid_api::validate::dns_label;
use hybrid_api::{MANAGEMENT_HOST_ID, cluster};
use hybrid_cty::{Type, Value};

use super::lifecycle::{Managed, managed_resource};
use super::{attributes, dry_run, planning};
use crate::client::{Accepted, ClientError, HostClient, Put};
use crate::framework::model::{self, Attr, ToValue};
use crate::framework::schema::Attribute;
use crate::framework::{AttrPath, Diagnostics, PlanContext, Schema, timeouts, validators};

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// The write-only attribute and the attribute whose change sends it.
const PROTECTED: &str = "configuration_protected_settings";
const PROTECTED_VERSION: &str = "configuration_protected_settings_version";

/// What an update may change besides the spec: unknown in the plan when it
/// re-drives unfinished work.
const OBSERVED: &[&str] = &["current_version", "statuses"];

pub struct ExtensionResource;

managed_resource!(ExtensionResource);

impl Managed for ExtensionResource {
    type Object = Extension;
    type Model = ExtensionModel;
    type Create = ((String, String), ExtensionSpec);
    type Update = ExtensionSpec;
    const TYPE_NAME: &'static str = "hybrid_extension";
    const KIND: &'static str = "extension";
    const ID_FORMAT: &'static str =
        "/clusters/<cluster>/extensions/<name> or /management-host/extensions/<name>";
    const ID_EXAMPLE: &'static str = "/clusters/prod-a/extensions/flux";
    const DEFAULT_TIMEOUT: Duration = DEFAULT_TIMEOUT;
    const INCOMPLETE_PLAN_HINT: &'static str =
        " (or target_id is not a cluster id or /management-host)";

    fn schema(&self) -> Schema {
        Schema::new(
            "An extension: software from the service's extension-type catalogue installed on a \
             cluster (Flux, monitoring, policy, …) or on the management host (the hybrid \
             operator).",
            vec![
                Attribute::string("id")
                    .computed()
                    .use_state_for_unknown()
                    .description(
                        "The extension's path in the host API, `<target_id>/extensions/<name>`; \
                         also the import id.",
                    ),
                Attribute::string("name")
                    .required()
                    .requires_replace()
                    .validator(validators::string_rule(|name| {
                        extension::validate_name(name).map_err(|e| e.message)
                    }))
                    .description(
                        "Name of the extension on its target, a DNS label of at most 40 \
                         characters. Changing it replaces the extension.",
                    ),
                Attribute::string("target_id")
                    .required()
                    .requires_replace()
                    .validator(validators::string_rule(check_target_id))
                    .description(format!(
                        "Where the extension is installed: a cluster id (`/clusters/<name>`, a \
                         `hybrid_cluster`'s `id`) or the management host id \
                         (`{MANAGEMENT_HOST_ID}`, the `hybrid_management_host` data source's \
                         `id`) for host-scoped types such as `hybrid-operator`. Changing it \
                         replaces the extension."
                    )),
                Attribute::string("extension_type")
                    .required()
                    .requires_replace()
                    .description(
                        "Type from the service's extension-type catalogue, e.g. \
                         `hybrid-operator` (management host), `flux`, `open-service-mesh`, \
                         `defender`, `keyvault-secrets-provider`, `monitor`, `policy` \
                         (clusters). Changing it replaces the extension.",
                    ),
                Attribute::nested(
                    "scope",
                    vec![
                        Attribute::nested(
                            "cluster",
                            vec![
                                Attribute::string("release_namespace")
                                    .optional_computed()
                                    .use_state_for_unknown()
                                    .description(
                                        "Namespace the extension is installed into. Left out, \
                                         the type's default namespace.",
                                    ),
                            ],
                        )
                        .optional()
                        .description("Cluster-wide installation."),
                        Attribute::nested(
                            "namespace",
                            vec![
                                Attribute::string("target_namespace")
                                    .required()
                                    .description("The one namespace the extension serves."),
                            ],
                        )
                        .optional()
                        .description(
                            "Installation limited to one namespace (only for types that \
                             support it).",
                        ),
                    ],
                )
                .optional_computed()
                .use_state_for_unknown()
                .requires_replace()
                .description(
                    "Where the extension's resources live: exactly one of \
                     `cluster = { release_namespace = … }` or \
                     `namespace = { target_namespace = … }`. Left out, cluster scope in the \
                     type's default namespace (reported here after the create). Changing it \
                     replaces the extension.",
                ),
                Attribute::string("release_train")
                    .default_value(DEFAULT_RELEASE_TRAIN)
                    .description(format!(
                        "Release train the versions come from, e.g. `stable` or `preview`. \
                         Defaults to `{DEFAULT_RELEASE_TRAIN}`. Changes in place."
                    )),
                Attribute::string("version").optional().description(
                    "Version to pin, from the release train. Changing it upgrades (or \
                     downgrades) the extension in place; it is never replaced. Requires \
                     `auto_upgrade_minor_version = false` (the default when a version is set).",
                ),
                Attribute::bool("auto_upgrade_minor_version")
                    .optional_computed()
                    .description(
                        "Follow the newest version of the release train. Defaults to true when \
                         no `version` is pinned and to false when one is; `version` together \
                         with `auto_upgrade_minor_version = true` is a plan error. Changes in \
                         place.",
                    ),
                Attribute::map("configuration_settings", Type::String)
                    .optional()
                    .description(
                        "Settings of the extension, checked against the type's settings schema \
                         at plan time: an unknown key is an error at \
                         `configuration_settings[\"key\"]`. At most 100 settings, keys of 1–256 \
                         characters, values of at most 16384. Change in place.",
                    ),
                Attribute::map(PROTECTED, Type::String)
                    .optional()
                    .sensitive()
                    .write_only()
                    .description(
                        "Secret settings (Terraform ≥ 1.11, write-only): sent to the service, \
                         which stores them encrypted and never returns them; never stored in \
                         the plan or the state. Sent on create, and on an update only when \
                         `configuration_protected_settings_version` changes. Their keys are \
                         checked against the type's protected settings schema; limits as for \
                         `configuration_settings`.",
                    ),
                Attribute::string(PROTECTED_VERSION).optional().description(
                    "Any value you change whenever `configuration_protected_settings` \
                     change (e.g. `\"1\"`, `\"2\"`): a change plans an in-place update that \
                     sends them; left as it is, the service keeps the ones it has. Removing the \
                     protected settings and changing this removes them from the service.",
                ),
                Attribute::string("current_version").computed().description(
                    "Version installed now; null until the first installation succeeds.",
                ),
                Attribute::string("provisioning_state")
                    .computed()
                    .description(
                        "Outcome of the last operation on the extension: `Succeeded`, `Failed`, \
                     …, or `Pending` while it waits for a prerequisite (a Linux node pool), \
                     which it then installs by itself. When it is `Failed` or unfinished, the \
                     next plan proposes an update that re-drives the work.",
                    ),
                attributes::observed_list("statuses", status_attributes()).description(
                    "What the service reports about the installation, newest first: \
                     a failure or a wait says what went wrong and what to do.",
                ),
                timeouts::attribute(DEFAULT_TIMEOUT),
            ],
        )
    }

    fn validate(&self, config: &Value, diags: &mut Diagnostics) {
        let model: ExtensionModel = model::read(config);
        if let Attr::Known(scope) = &model.scope {
            let known = !scope.cluster.is_unknown() && !scope.namespace.is_unknown();
            if known && scope.cluster.is_null() == scope.namespace.is_null() {
                let which = if scope.cluster.is_null() {
                    "neither"
                } else {
                    "both"
                };
                diags.error_at(
                    AttrPath::attr("scope"),
                    "Invalid scope",
                    format!(
                        "scope sets {which} of `cluster` and `namespace`; it must set exactly \
                         one: scope = {{ cluster = {{ release_namespace = \"…\" }} }} (or \
                         cluster = {{}} for the type's default namespace), or scope = \
                         {{ namespace = {{ target_namespace = \"…\" }} }}. Leave scope out for \
                         cluster scope in the type's default namespace."
                    ),
                );
            }
        }
        planning::report_rules(
            extension::validate_spec(&spec_for_rules(&model, &model)),
            config,
            &[&["version", "auto_upgrade_minor_version"]],
            diags,
        );
    }

    async fn modify_plan(
        &self,
        ctx: PlanContext<'_, HostClient>,
        planned: &mut Value,
        diags: &mut Diagnostics,
    ) {
        plan_extension(ctx.prior, ctx.config, planned);
        let Some(client) = ctx.data else {
            return;
        };
        let (prior, config, mut plan): (ExtensionModel, ExtensionModel, ExtensionModel) = (
            model::read(ctx.prior),
            model::read(ctx.config),
            model::read(planned),
        );
        // Nothing the service would be asked changed: no calls, so an empty
        // plan stays fast.
        if !ctx.prior.is_null() && same_spec(&prior, &plan) {
            return;
        }
        if !check_catalogue(client, &config, &plan, diags).await {
            return;
        }
        let Some((client, put)) = dry_run::put(&ctx, planned, &self.schema()) else {
            return;
        };
        let Some((target, name)) = target_and_name(&plan) else {
            return;
        };
        let protected = protected_to_send((!ctx.prior.is_null()).then_some(&prior), &config);
        let Some(spec) = spec_from(&plan, protected) else {
            return;
        };
        let answer = client.dry_run_extension(&target, &name, &spec, put).await;
        let summary =
            format!("The host management service would refuse extension {name:?} on {target}");
        let Some(admitted) =
            dry_run::outcome(answer, put == Put::Create, &summary, &self.schema(), diags)
        else {
            return;
        };
        // The service resolves the default scope (and its namespace); show
        // it instead of "known after apply". It is the scope the
        // configuration asked for, so it cannot contradict it.
        if let Some(scope) = admitted.spec.scope.as_ref()
            && !plan.scope.is_fully_known()
        {
            plan.scope = scope_value(Some(scope));
            *planned = plan.to_value();
        }
    }

    fn is_id(id: &str) -> bool {
        parts_of(id).is_some()
    }

    async fn fetch(client: &HostClient, id: &str) -> Result<Option<Extension>, ClientError> {
        match parts_of(id) {
            Some((target, name)) => client.get_extension(target, name).await,
            None => Ok(None),
        }
    }

    fn to_state(object: &Extension, previous: &ExtensionModel) -> ExtensionModel {
        to_state(object, previous)
    }

    fn planned_id(planned: &ExtensionModel) -> Option<String> {
        target_and_name(planned).map(|(target, name)| extension_id(&target, &name))
    }

    fn state_id(state: &ExtensionModel) -> Option<String> {
        state.id.known().filter(|id| Self::is_id(id)).cloned()
    }

    /// The target's id and the extension's name, and its spec with the
    /// configured protected settings.
    fn create_request(planned: &ExtensionModel) -> Option<((String, String), ExtensionSpec)> {
        let protected = protected_to_send(None, planned);
        Some((target_and_name(planned)?, spec_from(planned, protected)?))
    }

    /// The spec, with the protected settings only when their version changed.
    fn update_request(prior: &ExtensionModel, planned: &ExtensionModel) -> Option<ExtensionSpec> {
        spec_from(planned, protected_to_send(Some(prior), planned))
    }

    fn same_spec(prior: &ExtensionModel, planned: &ExtensionModel) -> bool {
        same_spec(prior, planned)
    }

    async fn create(
        client: &HostClient,
        ((target, name), spec): &((String, String), ExtensionSpec),
    ) -> Result<Accepted<Extension>, ClientError> {
        client.put_extension(target, name, spec, Put::Create).await
    }

    async fn update(
        client: &HostClient,
        id: &str,
        spec: &ExtensionSpec,
    ) -> Result<Accepted<Extension>, ClientError> {
        let (target, name) = parts_of(id).unwrap_or_default();
        client.put_extension(target, name, spec, Put::Upsert).await
    }

    async fn delete(client: &HostClient, id: &str) -> Result<Option<Operation>, ClientError> {
        let (target, name) = parts_of(id).unwrap_or_default();
        client.delete_extension(target, name).await
    }

    fn applied(state: &ExtensionModel, diags: &mut Diagnostics) {
        warn_if_pending(state, diags);
    }
}

/// `(target_id, name)` of an extension id, when both are valid (so they are
/// safe as URL path segments).
fn parts_of(id: &str) -> Option<(&str, &str)> {
    parse_extension_id(id).filter(|(target, name)| {
        target_kind(target).is_some() && extension::validate_name(name).is_ok()
    })
}

/// Which kind of target an id names: the management host or a cluster.
fn target_kind(target_id: &str) -> Option<ExtensionTarget> {
    if target_id == MANAGEMENT_HOST_ID {
        return Some(ExtensionTarget::ManagementHost);
    }
    cluster::parse_cluster_id(target_id)
        .filter(|name| cluster::validate_name(name).is_ok())
        .map(|_| ExtensionTarget::Cluster)
}

fn check_target_id(target_id: &str) -> Result<(), String> {
    match target_kind(target_id) {
        Some(_) => Ok(()),
        None => Err(format!(
            "target_id {target_id:?} is neither a cluster id (/clusters/<name>, the \
             hybrid_cluster's `id`) nor the management host id ({MANAGEMENT_HOST_ID})"
        )),
    }
}

fn status_attributes() -> Vec<Attribute> {
    vec![
        Attribute::string("level")
            .computed()
            .description("`Information`, `Warning` or `Error`."),
        Attribute::string("code")
            .computed()
            .description("Machine-readable CamelCase code, e.g. `WaitingForLinuxNodes`."),
        Attribute::string("message")
            .computed()
            .description("What happened and, for a problem, what to do."),
        Attribute::string("time")
            .computed()
            .description("When it was reported (RFC 3339)."),
    ]
}

// ---------------------------------------------------------------- planning

/// The extension-specific planning after the generic pass:
///
/// - `auto_upgrade_minor_version` left out: true unless a version is pinned
///   (as the service resolves it), so it never shows as a diff;
/// - an unchanged spec keeps every observed value;
/// - `current_version` is known to stay only for an update of a pinned,
///   installed extension whose version, train and auto-upgrade stay;
/// - failed or unfinished work is re-driven, but a `Pending` extension is
///   not: the service resumes it by itself when its prerequisite appears.
fn plan_extension(prior_value: &Value, config_value: &Value, planned_value: &mut Value) {
    let prior: ExtensionModel = model::read(prior_value);
    let config: ExtensionModel = model::read(config_value);
    let mut planned: ExtensionModel = model::read(planned_value);
    if config.auto_upgrade_minor_version.is_null() {
        planned.auto_upgrade_minor_version = match config.version {
            Attr::Unknown => Attr::Unknown,
            version => Attr::Known(version.is_null()),
        };
    }
    *planned_value = planned.to_value();
    if prior_value.is_null() {
        return;
    }
    if same_spec(&prior, &planned) {
        planning::keep_prior_values(prior_value, config_value, planned_value);
    } else {
        let installed = prior.provisioning_state.known().map(String::as_str) == Some("Succeeded");
        let pinned = planned.auto_upgrade_minor_version.known() == Some(&false);
        planned.current_version = if installed
            && pinned
            && prior.version == planned.version
            && prior.release_train == planned.release_train
            && prior.auto_upgrade_minor_version == planned.auto_upgrade_minor_version
        {
            prior.current_version.clone()
        } else {
            Attr::Unknown
        };
        *planned_value = planned.to_value();
    }
    if prior.provisioning_state.known().map(String::as_str) != Some("Pending") {
        planning::redrive_unfinished(prior_value, planned_value, OBSERVED);
    }
}

/// Checks the planned extension against its type in the service's
/// catalogue. Returns false when it reported an error (the dry run would
/// only repeat it). A service that cannot answer is no reason to fail the
/// plan: the apply checks again.
async fn check_catalogue(
    client: &HostClient,
    config: &ExtensionModel,
    planned: &ExtensionModel,
    diags: &mut Diagnostics,
) -> bool {
    let Some(type_name) = config.extension_type.known() else {
        return true;
    };
    // Only a DNS label can be a catalogue name (and a safe path segment).
    let answer = match dns_label("extension_type", type_name) {
        Ok(()) => client.get_extension_type(type_name).await,
        Err(_) => Ok(None),
    };
    match answer {
        Ok(Some(ty)) => {
            let before = diags.0.len();
            report_against_type(&ty, config, planned, diags);
            !diags.0[before..]
                .iter()
                .any(|d| d.severity == crate::framework::diagnostics::Severity::Error)
        }
        Ok(None) => {
            let catalogue = match client.list_extension_types().await {
                Ok(types) => Some(types),
                Err(e) => {
                    tracing::debug!(error = %e, "cannot list the extension types");
                    None
                }
            };
            diags.error_at(
                AttrPath::attr("extension_type"),
                "Unknown extension_type",
                unknown_type_message(type_name, catalogue.as_deref()),
            );
            false
        }
        Err(e) => {
            tracing::debug!(error = %e, "extension type lookup gave no verdict; the apply will check");
            true
        }
    }
}

/// The catalogue rules (target kind, release train, version, scope, setting
/// keys) as diagnostics at their attributes, skipping values not known yet.
fn report_against_type(
    ty: &ExtensionType,
    config: &ExtensionModel,
    planned: &ExtensionModel,
    diags: &mut Diagnostics,
) {
    // A target not known yet (a cluster created in the same apply) is
    // assumed right; its findings are dropped as unknown anyway.
    let target = config
        .target_id
        .known()
        .and_then(|t| target_kind(t))
        .unwrap_or(ty.target);
    let spec = spec_for_rules(planned, config);
    // A setting's key is known even when its value is not: an unknown key
    // is reported whatever its value.
    let mut judged = config.clone();
    for settings in [
        &mut judged.configuration_settings,
        &mut judged.configuration_protected_settings,
    ] {
        if let Some(entries) = settings.entries() {
            *settings = Attr::Known(
                entries
                    .into_keys()
                    .map(|key| (key, "placeholder".to_string()))
                    .collect(),
            );
        }
    }
    planning::report_rules(
        extension::check_against_type(&spec, target, ty),
        &judged.to_value(),
        &[&["version", "release_train"]],
        diags,
    );
}

fn unknown_type_message(name: &str, catalogue: Option<&[ExtensionType]>) -> String {
    match catalogue {
        Some(types) => {
            let mut lines = format!(
                "extension_type {name:?} is not in the service's extension-type catalogue; \
                 it offers:"
            );
            for ty in types {
                let target = match ty.target {
                    ExtensionTarget::Cluster => "clusters",
                    ExtensionTarget::ManagementHost => "the management host",
                };
                lines.push_str(&format!("\n- {:?} ({target}): {}", ty.name, ty.description));
            }
            lines
        }
        None => format!(
            "extension_type {name:?} is not in the service's extension-type catalogue (see \
             GET /v1/extension-types)"
        ),
    }
}

/// A spec for the shared rules from a plan or configuration that may hold
/// unknown values (placeholders stand in; `report_rules` drops their
/// findings). Protected settings come from `config`, the only place a
/// write-only value is.
fn spec_for_rules(object: &ExtensionModel, config: &ExtensionModel) -> ExtensionSpec {
    let placeholder_map = |settings: &Attr<BTreeMap<String, String>>| -> BTreeMap<String, String> {
        settings
            .entries()
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.into_known().unwrap_or_else(|| "placeholder".into())))
            .collect()
    };
    let scope = object.scope.known().and_then(|scope| {
        match (
            Some(&scope.cluster).filter(|c| !c.is_null()),
            Some(&scope.namespace).filter(|n| !n.is_null()),
        ) {
            (Some(cluster), None) => Some(ExtensionScope::Cluster {
                release_namespace: cluster
                    .known()
                    .and_then(|c| c.release_namespace.known().cloned()),
            }),
            (None, Some(namespace)) => Some(ExtensionScope::Namespace {
                target_namespace: namespace
                    .known()
                    .and_then(|n| n.target_namespace.known().cloned())
                    .unwrap_or_else(|| "placeholder".into()),
            }),
            _ => None,
        }
    });
    ExtensionSpec {
        extension_type: object.extension_type.known().cloned().unwrap_or_default(),
        scope,
        release_train: object.release_train.known().cloned(),
        version: object.version.known().cloned(),
        auto_upgrade_minor_version: object.auto_upgrade_minor_version.known().copied(),
        configuration_settings: placeholder_map(&object.configuration_settings),
        configuration_protected_settings: (!config.configuration_protected_settings.is_null()
            && !config.configuration_protected_settings.is_unknown())
        .then(|| placeholder_map(&config.configuration_protected_settings)),
    }
}

/// The protected settings to send: on create, the configured ones (if
/// any); on an update, only when the version attribute changed (then the
/// configured ones, or none to remove them), otherwise `None`, which
/// tells the service to keep what it has. `desired` is a configuration or
/// a plan with the write-only value filled in; `prior` is `None` on
/// create.
fn protected_to_send(
    prior: Option<&ExtensionModel>,
    desired: &ExtensionModel,
) -> Option<BTreeMap<String, String>> {
    let configured = (!desired.configuration_protected_settings.is_null())
        .then(|| desired.configuration_protected_settings.known_entries());
    let Some(prior) = prior else {
        return configured;
    };
    let changed = prior.configuration_protected_settings_version
        != desired.configuration_protected_settings_version;
    changed.then(|| configured.unwrap_or_default())
}

/// Whether two plans or states ask the same of the service (protected
/// settings count through their version attribute).
fn same_spec(a: &ExtensionModel, b: &ExtensionModel) -> bool {
    let spec = spec_from(a, None);
    spec.is_some()
        && spec == spec_from(b, None)
        && a.configuration_protected_settings_version == b.configuration_protected_settings_version
}

/// `(target_id, name)` from a plan, when both are known and valid.
fn target_and_name(extension: &ExtensionModel) -> Option<(String, String)> {
    let target = extension.target_id.known()?.clone();
    let name = extension.name.known()?.clone();
    parts_of(&extension_id(&target, &name))?;
    Some((target, name))
}

/// The API spec from a plan or state, with `protected` as the protected
/// settings to send; `None` when a part is not known.
fn spec_from(
    extension: &ExtensionModel,
    protected: Option<BTreeMap<String, String>>,
) -> Option<ExtensionSpec> {
    let scope = match &extension.scope {
        // Left to the service to resolve.
        Attr::Null | Attr::Unknown => None,
        Attr::Known(scope) => Some(scope_from(scope)?),
        Attr::Partial(_) => return None,
    };
    if !extension.version.is_fully_known()
        || !extension.auto_upgrade_minor_version.is_fully_known()
        || !extension.configuration_settings.is_fully_known()
    {
        return None;
    }
    Some(ExtensionSpec {
        extension_type: extension.extension_type.known()?.clone(),
        scope,
        release_train: extension.release_train.known().cloned(),
        version: extension.version.known().cloned(),
        auto_upgrade_minor_version: extension.auto_upgrade_minor_version.known().copied(),
        configuration_settings: extension.configuration_settings.known_entries(),
        configuration_protected_settings: protected,
    })
}

/// A known `scope` as the API's scope.
fn scope_from(scope: &ScopeModel) -> Option<ExtensionScope> {
    match (&scope.cluster, &scope.namespace) {
        (Attr::Known(cluster), Attr::Null) => Some(ExtensionScope::Cluster {
            // Unknown: the type's default namespace, resolved by the service.
            release_namespace: cluster.release_namespace.known().cloned(),
        }),
        (Attr::Null, Attr::Known(namespace)) => Some(ExtensionScope::Namespace {
            target_namespace: namespace.target_namespace.known()?.clone(),
        }),
        _ => None,
    }
}

/// The API's scope as a `scope` value.
fn scope_value(scope: Option<&ExtensionScope>) -> Attr<ScopeModel> {
    match scope {
        Some(ExtensionScope::Cluster { release_namespace }) => Attr::Known(ScopeModel {
            cluster: Attr::Known(ClusterScopeModel {
                release_namespace: release_namespace.clone().into(),
            }),
            namespace: Attr::Null,
        }),
        Some(ExtensionScope::Namespace { target_namespace }) => Attr::Known(ScopeModel {
            cluster: Attr::Null,
            namespace: Attr::Known(NamespaceScopeModel {
                target_namespace: Attr::Known(target_namespace.clone()),
            }),
        }),
        None => Attr::Null,
    }
}

/// An apply that leaves the extension `Pending` succeeded, but the user
/// must learn that it is not installed yet and why.
fn warn_if_pending(state: &ExtensionModel, diags: &mut Diagnostics) {
    if state.provisioning_state.known().map(String::as_str) != Some("Pending") {
        return;
    }
    let id = state.id.known().cloned().unwrap_or_default();
    let reasons: Vec<String> = state
        .statuses
        .known()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter(|s| s.level.known().map(String::as_str) != Some("Information"))
        .filter_map(|s| {
            let code = s.code.known()?;
            let message = s.message.known()?;
            Some(format!("{code}: {message}"))
        })
        .collect();
    let detail = if reasons.is_empty() {
        format!("extension {id} is accepted but waits for a prerequisite before it is installed")
    } else {
        format!(
            "extension {id} is accepted but not installed yet; the service installs it by \
             itself once this is resolved:\n{}",
            reasons.join("\n")
        )
    };
    diags.warning(format!("Extension {id} is pending"), detail);
}

// ------------------------------------------------------------------- state

crate::model! {
    /// An extension's configuration, plan or state: the schema's attributes
    /// (the write-only protected settings only ever in a plan being applied).
    pub(crate) struct ExtensionModel {
        pub id: Attr<String>,
        pub name: Attr<String>,
        pub target_id: Attr<String>,
        pub extension_type: Attr<String>,
        pub scope: Attr<ScopeModel>,
        pub release_train: Attr<String>,
        pub version: Attr<String>,
        pub auto_upgrade_minor_version: Attr<bool>,
        pub configuration_settings: Attr<BTreeMap<String, String>>,
        pub configuration_protected_settings: Attr<BTreeMap<String, String>>,
        pub configuration_protected_settings_version: Attr<String>,
        pub current_version: Attr<String>,
        pub provisioning_state: Attr<String>,
        pub statuses: Attr<Vec<StatusModel>>,
        pub timeouts: Attr<Value>,
    }
}

crate::model! {
    /// `scope`: exactly one of `cluster` and `namespace`.
    pub(crate) struct ScopeModel {
        pub cluster: Attr<ClusterScopeModel>,
        pub namespace: Attr<NamespaceScopeModel>,
    }
}

crate::model! {
    /// `scope.cluster`.
    pub(crate) struct ClusterScopeModel {
        pub release_namespace: Attr<String>,
    }
}

crate::model! {
    /// `scope.namespace`.
    pub(crate) struct NamespaceScopeModel {
        pub target_namespace: Attr<String>,
    }
}

crate::model! {
    /// One entry of `statuses`.
    pub(crate) struct StatusModel {
        pub level: Attr<String>,
        pub code: Attr<String>,
        pub message: Attr<String>,
        pub time: Attr<String>,
    }
}

fn level_str(level: StatusLevel) -> &'static str {
    match level {
        StatusLevel::Information => "Information",
        StatusLevel::Warning => "Warning",
        StatusLevel::Error => "Error",
    }
}

impl StatusModel {
    fn of(entry: &StatusEntry) -> Self {
        StatusModel {
            level: Attr::Known(level_str(entry.level).to_string()),
            code: Attr::Known(entry.code.clone()),
            message: Attr::Known(entry.message.clone()),
            time: Attr::Known(entry.time.clone()),
        }
    }
}

/// The Terraform state of an extension. Protected settings are never in
/// it; their version attribute is configuration the service does not know,
/// so it is carried from `previous` (null on import).
fn to_state(ext: &Extension, previous: &ExtensionModel) -> ExtensionModel {
    let spec = &ext.spec;
    ExtensionModel {
        id: Attr::Known(ext.id.clone()),
        name: Attr::Known(ext.name.clone()),
        target_id: Attr::Known(ext.target_id.clone()),
        extension_type: Attr::Known(spec.extension_type.clone()),
        scope: scope_value(spec.scope.as_ref()),
        release_train: Attr::Known(
            spec.release_train
                .clone()
                .unwrap_or_else(|| DEFAULT_RELEASE_TRAIN.to_string()),
        ),
        version: spec.version.clone().into(),
        auto_upgrade_minor_version: Attr::Known(
            spec.auto_upgrade_minor_version
                .unwrap_or(spec.version.is_none()),
        ),
        configuration_settings: model::collection(
            spec.configuration_settings.clone(),
            &previous.configuration_settings,
        ),
        configuration_protected_settings: Attr::Null,
        configuration_protected_settings_version: match &previous
            .configuration_protected_settings_version
        {
            Attr::Known(version) => Attr::Known(version.clone()),
            _ => Attr::Null,
        },
        current_version: ext.current_version.clone().into(),
        provisioning_state: Attr::Known(ext.provisioning_state.as_str().to_string()),
        statuses: Attr::Known(ext.status.statuses.iter().map(StatusModel::of).collect()),
        timeouts: previous.timeouts.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::plan::{Plan, plan, proposed_new_state};
    use crate::framework::values;

    // The functions under test, over values as Terraform sends them.

    fn to_state(ext: &Extension, previous: &Value) -> Value {
        super::to_state(ext, &model::read(previous)).to_value()
    }

    fn spec_from(
        object: &Value,
        protected: Option<BTreeMap<String, String>>,
    ) -> Option<ExtensionSpec> {
        super::spec_from(&model::read(object), protected)
    }

    fn protected_to_send(prior: &Value, desired: &Value) -> Option<BTreeMap<String, String>> {
        let prior: Option<ExtensionModel> = (!prior.is_null()).then(|| model::read(prior));
        super::protected_to_send(prior.as_ref(), &model::read(desired))
    }

    fn warn_if_pending(state: &Value, diags: &mut Diagnostics) {
        super::warn_if_pending(&model::read(state), diags)
    }

    fn report_against_type(
        ty: &ExtensionType,
        config: &Value,
        planned: &Value,
        diags: &mut Diagnostics,
    ) {
        super::report_against_type(ty, &model::read(config), &model::read(planned), diags)
    }

    const SECRET: &str = "s3cr3t-token-do-not-leak";

    fn object(version: Option<&str>, current: Option<&str>, state: &str) -> Extension {
        let mut json = serde_json::json!({
            "id": "/clusters/c1/extensions/flux",
            "name": "flux",
            "target_id": "/clusters/c1",
            "etag": "1",
            "extension_type": "flux",
            "scope": {"cluster": {"release_namespace": "flux-system"}},
            "release_train": "stable",
            "auto_upgrade_minor_version": version.is_none(),
            "configuration_settings": {"sync-interval": "5m"},
            "has_protected_settings": true,
            "provisioning_state": state,
            "status": {"conditions": [], "statuses": [{
                "level": "Warning", "code": "WaitingForLinuxNodes",
                "message": "flux needs a Linux node: add a Linux node pool to cluster c1",
                "time": "2025-01-01T00:00:00Z"}]},
            "created_at": "t",
            "updated_at": "t"
        });
        if let Some(v) = version {
            json["version"] = v.into();
        }
        if let Some(c) = current {
            json["current_version"] = c.into();
        }
        serde_json::from_value(json).unwrap()
    }

    fn config(extra: &[(&str, Value)]) -> Value {
        let schema = ExtensionResource.schema();
        let mut attrs: BTreeMap<String, Value> = schema
            .attributes
            .iter()
            .map(|a| (a.name.to_string(), Value::Null))
            .collect();
        attrs.insert("name".into(), "flux".into());
        attrs.insert("target_id".into(), "/clusters/c1".into());
        attrs.insert("extension_type".into(), "flux".into());
        attrs.insert(
            "configuration_settings".into(),
            Value::map([("sync-interval", Value::from("5m"))]),
        );
        for (k, v) in extra {
            attrs.insert(k.to_string(), v.clone());
        }
        Value::Object(attrs)
    }

    fn plan_for(prior: &Value, config: &Value) -> Plan {
        let schema = ExtensionResource.schema();
        let proposed = proposed_new_state(&schema.attributes, prior, config);
        let mut planned = plan(&schema, prior, config, &proposed);
        plan_extension(prior, config, &mut planned.planned);
        planned
    }

    fn applied(config: &Value, ext: &Extension) -> Value {
        to_state(ext, &plan_for(&Value::Null, config).planned)
    }

    #[test]
    fn defaults_never_show_a_diff_after_apply() {
        let cfg = config(&[]);
        let created = plan_for(&Value::Null, &cfg);
        let planned = &created.planned;
        assert_eq!(planned.get("release_train"), Some(&Value::from("stable")));
        assert_eq!(
            planned.get("auto_upgrade_minor_version"),
            Some(&Value::from(true))
        );
        // The service resolves the scope.
        assert_eq!(planned.get("scope"), Some(&Value::Unknown));
        assert_eq!(planned.get(PROTECTED), Some(&Value::Null));
        let sent = spec_from(planned, None).unwrap();
        assert_eq!(sent.scope, None);
        assert_eq!(sent.auto_upgrade_minor_version, Some(true));

        let prior = to_state(&object(None, Some("2.4.0"), "Succeeded"), planned);
        let again = plan_for(&prior, &cfg);
        assert_eq!(again.planned, prior);
        assert!(again.requires_replace.is_empty());

        // Writing the resolved scope out changes nothing either.
        let explicit = config(&[(
            "scope",
            Value::object([
                (
                    "cluster",
                    Value::object([("release_namespace", Value::Null)]),
                ),
                ("namespace", Value::Null),
            ]),
        )]);
        let again = plan_for(&prior, &explicit);
        assert_eq!(again.planned, prior);
        assert!(again.requires_replace.is_empty());
    }

    #[test]
    fn a_version_change_upgrades_in_place() {
        let pinned = config(&[("version", "2.3.0".into())]);
        let created = plan_for(&Value::Null, &pinned);
        assert_eq!(
            created.planned.get("auto_upgrade_minor_version"),
            Some(&Value::from(false))
        );
        let prior = to_state(
            &object(Some("2.3.0"), Some("2.3.0"), "Succeeded"),
            &created.planned,
        );
        assert_eq!(plan_for(&prior, &pinned).planned, prior);

        let upgraded = plan_for(&prior, &config(&[("version", "2.4.0".into())]));
        assert!(upgraded.requires_replace.is_empty());
        assert_eq!(upgraded.planned.get("version"), Some(&Value::from("2.4.0")));
        assert_eq!(
            upgraded.planned.get("current_version"),
            Some(&Value::Unknown)
        );
        assert_eq!(upgraded.planned.get("id"), prior.get("id"));
        assert_eq!(upgraded.planned.get("scope"), prior.get("scope"));

        // A settings change of a pinned extension keeps its version.
        let settings = config(&[
            ("version", "2.3.0".into()),
            (
                "configuration_settings",
                Value::map([("sync-interval", Value::from("1m"))]),
            ),
        ]);
        let changed = plan_for(&prior, &settings);
        assert!(changed.requires_replace.is_empty());
        assert_eq!(
            changed.planned.get("current_version"),
            Some(&Value::from("2.3.0"))
        );
        assert_eq!(changed.planned.get("statuses"), Some(&Value::Unknown));

        // Un-pinning goes back to following the train.
        let unpinned = plan_for(&prior, &config(&[]));
        assert_eq!(
            unpinned.planned.get("auto_upgrade_minor_version"),
            Some(&Value::from(true))
        );
        assert_eq!(
            unpinned.planned.get("current_version"),
            Some(&Value::Unknown)
        );
    }

    /// Extra configuration and the replacement it must (or must not) force.
    type Case = (Vec<(&'static str, Value)>, Vec<AttrPath>);

    #[test]
    fn requires_replace_exactly_on_immutable_attributes() {
        let prior = applied(&config(&[]), &object(None, Some("2.4.0"), "Succeeded"));
        let namespace_scope = Value::object([
            ("cluster", Value::Null),
            (
                "namespace",
                Value::object([("target_namespace", Value::from("apps"))]),
            ),
        ]);
        let cases: Vec<Case> = vec![
            (vec![("name", "flux2".into())], vec![AttrPath::attr("name")]),
            (
                vec![("target_id", "/clusters/c2".into())],
                vec![AttrPath::attr("target_id")],
            ),
            (
                vec![("extension_type", "monitor".into())],
                vec![AttrPath::attr("extension_type")],
            ),
            (
                vec![("scope", namespace_scope)],
                vec![AttrPath::attr("scope")],
            ),
            (vec![("release_train", "preview".into())], vec![]),
            (vec![("version", "2.3.0".into())], vec![]),
            (vec![(PROTECTED_VERSION, "2".into())], vec![]),
            (
                vec![(
                    "configuration_settings",
                    Value::map([("sync-interval", Value::from("1m"))]),
                )],
                vec![],
            ),
        ];
        for (extra, want) in cases {
            let got = plan_for(&prior, &config(&extra)).requires_replace;
            assert_eq!(got, want, "{extra:?}");
        }
    }

    #[test]
    fn protected_settings_are_sent_on_create_and_when_their_version_changes() {
        let secret = Value::map([("token", Value::from(SECRET))]);
        let with = |version: Option<&str>, settings: Value| {
            config(&[
                (PROTECTED, settings),
                (PROTECTED_VERSION, values::opt_string(version)),
            ])
        };
        // Create: sent when set, with or without a version.
        let sent = protected_to_send(&Value::Null, &with(None, secret.clone())).unwrap();
        assert_eq!(sent.get("token").map(String::as_str), Some(SECRET));
        assert_eq!(protected_to_send(&Value::Null, &config(&[])), None);

        let prior = to_state(
            &object(None, Some("2.4.0"), "Succeeded"),
            &with(Some("1"), secret.clone()),
        );
        // Never in state; the version is carried.
        assert_eq!(prior.get(PROTECTED), Some(&Value::Null));
        assert_eq!(prior.get(PROTECTED_VERSION), Some(&Value::from("1")));
        // Same version: omitted, the service keeps the stored ones; and the
        // plan is empty.
        assert_eq!(
            protected_to_send(&prior, &with(Some("1"), secret.clone())),
            None
        );
        let same = plan_for(&prior, &with(Some("1"), secret.clone()));
        assert_eq!(same.planned, prior);
        // New version: sent, an in-place update.
        let bumped = with(Some("2"), secret.clone());
        assert_eq!(
            protected_to_send(&prior, &bumped)
                .unwrap()
                .get("token")
                .map(String::as_str),
            Some(SECRET)
        );
        let update = plan_for(&prior, &bumped);
        assert!(update.requires_replace.is_empty());
        assert_ne!(update.planned, prior);
        assert_eq!(update.planned.get(PROTECTED), Some(&Value::Null));
        // New version with no settings: removes them.
        assert_eq!(
            protected_to_send(&prior, &with(Some("3"), Value::Null)),
            Some(BTreeMap::new())
        );
        // Import knows no version.
        let imported = to_state(&object(None, Some("2.4.0"), "Succeeded"), &Value::Null);
        assert_eq!(imported.get(PROTECTED_VERSION), Some(&Value::Null));
        assert_eq!(imported.get("version"), Some(&Value::Null));
        assert!(!format!("{imported:?}{prior:?}").contains(SECRET));
    }

    #[test]
    fn version_with_auto_upgrade_is_a_plan_error_naming_the_allowed_combinations() {
        let mut diags = Diagnostics::new();
        ExtensionResource.validate(
            &config(&[
                ("version", "2.3.0".into()),
                ("auto_upgrade_minor_version", Value::from(true)),
            ]),
            &mut diags,
        );
        assert_eq!(diags.0.len(), 1, "{diags:?}");
        assert_eq!(diags.0[0].path, Some(AttrPath::attr("version")));
        assert!(
            diags.0[0]
                .detail
                .contains("auto_upgrade_minor_version = false")
        );
        // Not while either is unknown.
        let mut diags = Diagnostics::new();
        ExtensionResource.validate(
            &config(&[
                ("version", Value::Unknown),
                ("auto_upgrade_minor_version", Value::from(true)),
            ]),
            &mut diags,
        );
        assert!(diags.is_empty(), "{diags:?}");
    }

    #[test]
    fn scope_must_set_exactly_one_kind() {
        let both = Value::object([
            (
                "cluster",
                Value::object([("release_namespace", Value::Null)]),
            ),
            (
                "namespace",
                Value::object([("target_namespace", Value::from("apps"))]),
            ),
        ]);
        let neither = Value::object([("cluster", Value::Null), ("namespace", Value::Null)]);
        for (scope, word) in [(both, "both"), (neither, "neither")] {
            let mut diags = Diagnostics::new();
            ExtensionResource.validate(&config(&[("scope", scope)]), &mut diags);
            assert_eq!(diags.0.len(), 1, "{diags:?}");
            assert_eq!(diags.0[0].path, Some(AttrPath::attr("scope")));
            assert!(diags.0[0].detail.contains(word));
        }
    }

    fn flux_type() -> ExtensionType {
        serde_json::from_value(serde_json::json!({
            "name": "flux",
            "description": "GitOps with Flux",
            "target": "cluster",
            "release_trains": [{"name": "stable", "versions": ["2.3.0", "2.4.0"]}],
            "default_namespace": "flux-system",
            "supports_namespace_scope": false,
            "requires_linux_nodes": true,
            "configuration_schema": {"properties": {"sync-interval": {}, "multi-tenancy": {}}},
            "protected_configuration_schema": {"properties": {"token": {}}}
        }))
        .unwrap()
    }

    fn catalogue_errors(cfg: &Value) -> Diagnostics {
        let planned = plan_for(&Value::Null, cfg).planned;
        let mut diags = Diagnostics::new();
        report_against_type(&flux_type(), cfg, &planned, &mut diags);
        diags
    }

    #[test]
    fn catalogue_rules_point_at_the_key_version_and_target() {
        let diags = catalogue_errors(&config(&[(
            "configuration_settings",
            Value::map([
                ("sync-interval", Value::from("1m")),
                ("bogus", Value::Unknown),
            ]),
        )]));
        assert_eq!(diags.0.len(), 1, "{diags:?}");
        assert_eq!(
            diags.0[0].path,
            Some(AttrPath::attr("configuration_settings").then_key("bogus"))
        );
        assert!(
            diags.0[0]
                .summary
                .contains(r#"configuration_settings["bogus"]"#)
        );
        assert!(
            diags.0[0]
                .detail
                .contains(r#""multi-tenancy", "sync-interval""#)
        );

        let diags = catalogue_errors(&config(&[("version", "9.9.9".into())]));
        assert_eq!(diags.0[0].path, Some(AttrPath::attr("version")));
        assert!(diags.0[0].detail.contains("2.3.0, 2.4.0"));

        let diags = catalogue_errors(&config(&[("target_id", "/management-host".into())]));
        assert_eq!(diags.0[0].path, Some(AttrPath::attr("target_id")));

        // Protected keys are checked from the configuration, without values.
        let diags = catalogue_errors(&config(&[(
            PROTECTED,
            Value::map([("passwd", Value::from(SECRET))]),
        )]));
        assert_eq!(
            diags.0[0].path,
            Some(AttrPath::attr(PROTECTED).then_key("passwd"))
        );
        assert!(!diags.0[0].detail.contains(SECRET));

        // A target created in the same apply is not judged yet.
        assert!(catalogue_errors(&config(&[("target_id", Value::Unknown)])).is_empty());
        assert!(catalogue_errors(&config(&[])).is_empty());
    }

    #[test]
    fn an_unknown_type_lists_the_catalogue() {
        let text = unknown_type_message("fluxx", Some(&[flux_type()]));
        assert!(text.contains("\"fluxx\""));
        assert!(text.contains("- \"flux\" (clusters): GitOps with Flux"));
    }

    #[test]
    fn pending_extensions_warn_with_the_service_message_and_are_not_redriven() {
        let pending = applied(&config(&[]), &object(None, None, "Pending"));
        let mut diags = Diagnostics::new();
        warn_if_pending(&pending, &mut diags);
        assert_eq!(diags.0.len(), 1);
        assert!(!diags.has_errors());
        assert!(diags.0[0].detail.contains("add a Linux node pool"));
        // No diff while it waits; a failed one is re-driven.
        assert_eq!(plan_for(&pending, &config(&[])).planned, pending);
        let failed = applied(&config(&[]), &object(None, None, "Failed"));
        let redo = plan_for(&failed, &config(&[]));
        assert_eq!(
            redo.planned.get("provisioning_state"),
            Some(&Value::Unknown)
        );
        assert!(redo.requires_replace.is_empty());

        let mut diags = Diagnostics::new();
        warn_if_pending(&failed, &mut diags);
        assert!(diags.is_empty());
    }

    #[test]
    fn import_ids_are_checked() {
        for good in [
            "/clusters/c1/extensions/flux",
            "/management-host/extensions/hybrid-operator",
        ] {
            assert!(ExtensionResource::is_id(good), "{good}");
        }
        for bad in [
            "/clusters/c1/extensions/Flux",
            "/clusters/C1/extensions/flux",
            "/vnets/a/extensions/flux",
            "/clusters/c1/nodepools/flux",
            "/management-host/extensions/",
            "flux",
        ] {
            assert!(!ExtensionResource::is_id(bad), "{bad}");
        }
    }
}
