//! Extensions: software the service installs on a cluster
//! (`/v1/clusters/{cluster}/extensions/{name}`) or on the management host
//! (`/v1/management-host/extensions/{name}`), picked from the extension-type
//! catalogue (`/v1/extension-types`).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::limits;
use crate::validate::{FieldError, dns_label};
use crate::{Condition, MANAGEMENT_HOST_ID, ProvisioningState};

/// The release train used when none is given.
pub const DEFAULT_RELEASE_TRAIN: &str = "stable";
/// Longest extension name.
pub const MAX_EXTENSION_NAME: usize = 40;

/// Where an extension's resources live on its target.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ExtensionScope {
    /// Cluster-wide, installed into `release_namespace` (absent = the type's
    /// default namespace).
    Cluster {
        /// A DNS label.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(pattern(crate::limits::patterns::DNS_LABEL))]
        release_namespace: Option<String>,
    },
    /// Limited to one namespace.
    Namespace {
        /// A DNS label.
        #[schemars(pattern(crate::limits::patterns::DNS_LABEL))]
        target_namespace: String,
    },
}

/// Desired state: the body of `PUT …/extensions/{name}`.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Eq)]
pub struct ExtensionSpec {
    /// A name from `/v1/extension-types` (immutable).
    #[schemars(length(max = crate::limits::MAX_CATALOG_NAME))]
    pub extension_type: String,
    /// Absent = cluster scope in the type's default namespace (immutable).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<ExtensionScope>,
    /// Release train; absent = `stable`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = crate::limits::MAX_CATALOG_NAME))]
    pub release_train: Option<String>,
    /// Pinned version from the release train. Changing it upgrades (or
    /// downgrades) in place. Cannot be combined with
    /// `auto_upgrade_minor_version = true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = crate::limits::MAX_CATALOG_NAME))]
    pub version: Option<String>,
    /// Follow the newest minor version of the release train. Absent = true
    /// when no `version` is pinned, false otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_upgrade_minor_version: Option<bool>,
    /// Settings, checked against the type's `configuration_schema`: at
    /// most 100, keys 1–256 characters, values at most 16,384.
    #[serde(default)]
    #[schemars(schema_with = "crate::limits::schema::settings")]
    pub configuration_settings: BTreeMap<String, String>,
    /// Secret settings, checked against the type's
    /// `protected_configuration_schema`. Stored encrypted; never returned by
    /// any read. Absent = keep the stored ones; `{}` = remove them. Limits
    /// as for `configuration_settings`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::limits::schema::settings_or_null")]
    pub configuration_protected_settings: Option<BTreeMap<String, String>>,
}

/// Severity of a status entry.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusLevel {
    Information,
    Warning,
    Error,
}

/// One thing the service reports about an extension's installation, e.g.
/// `{Warning, WaitingForLinuxNodes, "…"}`.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Eq)]
pub struct StatusEntry {
    pub level: StatusLevel,
    /// Machine-readable CamelCase code.
    pub code: String,
    /// What happened and, for problems, what to do.
    pub message: String,
    /// RFC 3339.
    pub time: String,
}

/// Observed state of an extension.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Eq, Default)]
pub struct ExtensionStatus {
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// Newest first.
    #[serde(default)]
    pub statuses: Vec<StatusEntry>,
}

/// An extension as the service reports it. The spec has every default
/// resolved (scope, release train, auto-upgrade) and never holds protected
/// settings.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Eq)]
pub struct Extension {
    /// `{target_id}/extensions/{name}`.
    pub id: String,
    pub name: String,
    /// `/clusters/{cluster}` or `/management-host`.
    pub target_id: String,
    pub etag: String,
    #[serde(flatten)]
    pub spec: ExtensionSpec,
    /// The version installed now; absent until the first install succeeds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_version: Option<String>,
    /// Whether protected settings are stored (their keys and values are never returned).
    #[serde(default)]
    pub has_protected_settings: bool,
    /// `Pending` while it waits for a prerequisite (a Linux node pool); the
    /// reason is in `status.statuses` (code `WaitingForLinuxNodes`).
    pub provisioning_state: ProvisioningState,
    pub status: ExtensionStatus,
    pub created_at: String,
    pub updated_at: String,
}

/// A release train of an extension type.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Eq)]
pub struct ReleaseTrain {
    pub name: String,
    /// Oldest first; the last one is what auto-upgrade installs.
    pub versions: Vec<String>,
}

/// Where an extension type can be installed.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ExtensionTarget {
    Cluster,
    ManagementHost,
}

/// One entry of the extension-type catalogue (`GET /v1/extension-types`).
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq)]
pub struct ExtensionType {
    /// e.g. `flux`.
    pub name: String,
    pub description: String,
    /// Where it can be installed.
    pub target: ExtensionTarget,
    pub release_trains: Vec<ReleaseTrain>,
    /// Namespace used for cluster scope when no `release_namespace` is given.
    pub default_namespace: String,
    /// Whether it allows `scope = namespace`.
    pub supports_namespace_scope: bool,
    /// Needs at least one Linux node pool on the cluster.
    pub requires_linux_nodes: bool,
    /// JSON Schema (generated with schemars) of `configuration_settings`.
    pub configuration_schema: serde_json::Value,
    /// JSON Schema of `configuration_protected_settings`.
    pub protected_configuration_schema: serde_json::Value,
}

/// Extension id: `{target_id}/extensions/{name}`.
pub fn extension_id(target_id: &str, name: &str) -> String {
    format!("{target_id}/extensions/{name}")
}

/// Splits an extension id into `(target_id, name)` when it is one:
/// `/management-host/extensions/x` or `/clusters/c/extensions/x`.
pub fn parse_extension_id(id: &str) -> Option<(&str, &str)> {
    let (target, name) = id.rsplit_once("/extensions/")?;
    if name.is_empty() || name.contains('/') {
        return None;
    }
    let target_ok = target == MANAGEMENT_HOST_ID
        || target
            .strip_prefix("/clusters/")
            .is_some_and(|c| !c.is_empty() && !c.contains('/'));
    target_ok.then_some((target, name))
}

/// Rules for an extension name: a DNS label of at most 40 characters.
pub fn validate_name(name: &str) -> Result<(), FieldError> {
    dns_label("name", name)?;
    if name.len() > MAX_EXTENSION_NAME {
        return Err(FieldError::new(
            "name",
            format!(
                "name {name:?} is {} characters long; an extension name has at most {MAX_EXTENSION_NAME}",
                name.len()
            ),
        ));
    }
    Ok(())
}

/// Rules that need no catalogue: the version/auto-upgrade combination and
/// the scope's namespace. Catalogue rules (type, train, version, settings)
/// are [`check_against_type`].
pub fn validate_spec(spec: &ExtensionSpec) -> Vec<FieldError> {
    let mut errors = Vec::new();
    for (field, value) in [
        ("extension_type", Some(&spec.extension_type)),
        ("release_train", spec.release_train.as_ref()),
        ("version", spec.version.as_ref()),
    ] {
        if let Some(v) = value
            && let Err(e) = limits::check_len(field, v, limits::MAX_CATALOG_NAME)
        {
            errors.push(e);
        }
    }
    limits::check_map(
        "configuration_settings",
        &spec.configuration_settings,
        limits::MAX_SETTINGS,
        limits::MAX_SETTING_KEY,
        limits::MAX_SETTING_VALUE,
        &mut errors,
    );
    if let Some(protected) = &spec.configuration_protected_settings {
        // Values are secret: the errors name keys and lengths, never values.
        limits::check_secret_map(
            "configuration_protected_settings",
            protected,
            limits::MAX_SETTINGS,
            limits::MAX_SETTING_KEY,
            limits::MAX_SETTING_VALUE,
            &mut errors,
        );
    }
    if !errors.is_empty() {
        // The catalogue and combination rules below quote the values.
        return errors;
    }
    if let (Some(version), Some(true)) = (&spec.version, spec.auto_upgrade_minor_version) {
        errors.push(FieldError::new(
            "version",
            format!(
                "version {version:?} pins the extension, but auto_upgrade_minor_version is true; \
                 allowed combinations: version set with auto_upgrade_minor_version = false, or \
                 version unset with auto_upgrade_minor_version true (the default)"
            ),
        ));
    }
    match &spec.scope {
        Some(ExtensionScope::Cluster {
            release_namespace: Some(ns),
        }) => {
            if let Err(e) = dns_label("scope.cluster.release_namespace", ns) {
                errors.push(e);
            }
        }
        Some(ExtensionScope::Namespace { target_namespace }) => {
            if let Err(e) = dns_label("scope.namespace.target_namespace", target_namespace) {
                errors.push(e);
            }
        }
        _ => {}
    }
    errors
}

/// The JSON Schema `properties` keys of a settings schema.
fn schema_keys(schema: &serde_json::Value) -> Vec<&str> {
    schema
        .get("properties")
        .and_then(|p| p.as_object())
        .map(|p| p.keys().map(String::as_str).collect())
        .unwrap_or_default()
}

/// Keys of `settings` that `schema` does not define, as errors at
/// `{field}["key"]` listing the keys it does define.
pub fn unknown_setting_keys(
    field: &str,
    settings: &BTreeMap<String, String>,
    schema: &serde_json::Value,
    extension_type: &str,
) -> Vec<FieldError> {
    let known = schema_keys(schema);
    settings
        .keys()
        .filter(|k| !known.contains(&k.as_str()))
        .map(|k| {
            let allowed = if known.is_empty() {
                "it takes no settings here".to_string()
            } else {
                format!(
                    "known keys: {}",
                    known
                        .iter()
                        .map(|k| format!("{k:?}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            FieldError::new(
                format!("{field}[{k:?}]"),
                format!("{field} key {k:?} is not a setting of extension type {extension_type:?}; {allowed}"),
            )
        })
        .collect()
}

/// Catalogue rules: target kind, release train, version in the train,
/// namespace scope support, and unknown setting keys (values are checked by
/// the service against the full schema).
pub fn check_against_type(
    spec: &ExtensionSpec,
    target: ExtensionTarget,
    ty: &ExtensionType,
) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if ty.target != target {
        let (want, got) = match ty.target {
            ExtensionTarget::Cluster => ("a cluster id (/clusters/{name})", "the management host"),
            ExtensionTarget::ManagementHost => {
                ("the management host id (/management-host)", "a cluster")
            }
        };
        errors.push(FieldError::new(
            "target_id",
            format!(
                "extension type {:?} is installed on {want}, not on {got}",
                ty.name
            ),
        ));
    }
    let train_name = spec
        .release_train
        .as_deref()
        .unwrap_or(DEFAULT_RELEASE_TRAIN);
    match ty.release_trains.iter().find(|t| t.name == train_name) {
        None => errors.push(FieldError::new(
            "release_train",
            format!(
                "release_train {} is not a release train of extension type {:?}; it has: {}",
                limits::abbreviate(train_name),
                ty.name,
                ty.release_trains
                    .iter()
                    .map(|t| format!("{:?}", t.name))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
        Some(train) => {
            if let Some(version) = &spec.version
                && !train.versions.contains(version)
            {
                errors.push(FieldError::new(
                    "version",
                    format!(
                        "version {} is not in release train {train_name:?} of extension type {:?}; it has: {}",
                        limits::abbreviate(version),
                        ty.name,
                        train.versions.join(", ")
                    ),
                ));
            }
        }
    }
    if matches!(spec.scope, Some(ExtensionScope::Namespace { .. })) && !ty.supports_namespace_scope
    {
        errors.push(FieldError::new(
            "scope.namespace",
            format!(
                "extension type {:?} is cluster-wide only; use scope = {{ cluster = {{ release_namespace = … }} }}",
                ty.name
            ),
        ));
    }
    errors.extend(unknown_setting_keys(
        "configuration_settings",
        &spec.configuration_settings,
        &ty.configuration_schema,
        &ty.name,
    ));
    if let Some(protected) = &spec.configuration_protected_settings {
        errors.extend(unknown_setting_keys(
            "configuration_protected_settings",
            protected,
            &ty.protected_configuration_schema,
            &ty.name,
        ));
    }
    errors
}

/// Changes to fields that cannot change after creation (empty = none).
pub fn immutable_changes(old: &ExtensionSpec, new: &ExtensionSpec) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if old.extension_type != new.extension_type {
        errors.push(FieldError::immutable(
            "extension",
            "extension_type",
            &old.extension_type,
            &new.extension_type,
        ));
    }
    if new.scope.is_some() && old.scope != new.scope {
        errors.push(FieldError::immutable(
            "extension",
            "scope",
            &old.scope,
            &new.scope,
        ));
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip() {
        assert_eq!(
            parse_extension_id("/management-host/extensions/op"),
            Some(("/management-host", "op"))
        );
        assert_eq!(
            parse_extension_id(&extension_id("/clusters/c1", "flux")),
            Some(("/clusters/c1", "flux"))
        );
        assert_eq!(parse_extension_id("/vnets/v/extensions/x"), None);
        assert_eq!(parse_extension_id("/clusters/c1/extensions/"), None);
    }

    #[test]
    fn version_with_auto_upgrade_is_refused() {
        let spec = ExtensionSpec {
            extension_type: "flux".into(),
            scope: None,
            release_train: None,
            version: Some("1.2.0".into()),
            auto_upgrade_minor_version: Some(true),
            configuration_settings: BTreeMap::new(),
            configuration_protected_settings: None,
        };
        let errors = validate_spec(&spec);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].target, "version");
        assert!(
            errors[0]
                .message
                .contains("auto_upgrade_minor_version = false")
        );
    }

    #[test]
    fn unknown_keys_are_named_with_their_path() {
        let schema = serde_json::json!({"properties": {"a": {}, "b": {}}});
        let settings = BTreeMap::from([
            ("a".to_string(), "1".to_string()),
            ("zz".into(), "2".into()),
        ]);
        let errors = unknown_setting_keys("configuration_settings", &settings, &schema, "flux");
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].target, "configuration_settings[\"zz\"]");
        assert!(errors[0].message.contains("\"a\", \"b\""));
    }
}
