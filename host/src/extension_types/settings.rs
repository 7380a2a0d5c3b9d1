//! The configuration settings of each extension type, as Rust structs: the
//! catalogue's JSON Schemas are generated from them with schemars, and
//! admission checks values by deserialising into them, so the published
//! schema and the enforced rules cannot disagree.
//!
//! Settings travel as a string-to-string map (as on the wire and in
//! Terraform), so every field is a string-valued type; the value types
//! ([`Flag`], [`Interval`], [`Count`], …) carry the rule and say it in their
//! error message. Keys are the real-world keys of each extension.

use std::borrow::Cow;
use std::collections::BTreeMap;

use hybrid_api::validate::FieldError;
use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::{self, DeserializeOwned, Deserializer};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A string-valued setting with a rule: how it is spelt in the schema and
/// how a bad value is explained.
trait Rule: Sized {
    const NAME: &'static str;
    /// The JSON Schema of the value (always a string).
    fn schema() -> Value;
    /// The value if it follows the rule, or the rule in words.
    fn check(value: &str) -> Result<Self, String>;
}

macro_rules! rule_type {
    ($t:ident) => {
        impl JsonSchema for $t {
            fn inline_schema() -> bool {
                true
            }
            fn schema_name() -> Cow<'static, str> {
                <$t as Rule>::NAME.into()
            }
            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                Schema::try_from(<$t as Rule>::schema()).unwrap_or_else(|_| json_schema!({}))
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                <$t as Rule>::check(&s).map_err(de::Error::custom)
            }
        }
    };
}

/// `"true"` or `"false"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Flag(pub bool);

impl Rule for Flag {
    const NAME: &'static str = "Flag";
    fn schema() -> Value {
        serde_json::json!({"type": "string", "enum": ["true", "false"]})
    }
    fn check(value: &str) -> Result<Self, String> {
        match value {
            "true" => Ok(Flag(true)),
            "false" => Ok(Flag(false)),
            _ => Err("must be \"true\" or \"false\"".into()),
        }
    }
}
rule_type!(Flag);

/// A duration: a positive whole number followed by `s`, `m` or `h`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Interval(pub String);

impl Rule for Interval {
    const NAME: &'static str = "Interval";
    fn schema() -> Value {
        serde_json::json!({
            "type": "string",
            "pattern": "^[1-9][0-9]{0,5}(s|m|h)$",
            "examples": ["30s", "2m", "1h"]
        })
    }
    fn check(value: &str) -> Result<Self, String> {
        let rule = || {
            "must be a duration: a whole number from 1 to 999999 followed by s, m or h (e.g. \"30s\", \"2m\", \"1h\")".to_string()
        };
        let digits = value
            .strip_suffix(['s', 'm', 'h'])
            .filter(|d| (1..=6).contains(&d.len()) && !d.starts_with('0'))
            .ok_or_else(rule)?;
        if digits.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Interval(value.to_string()))
        } else {
            Err(rule())
        }
    }
}
rule_type!(Interval);

/// A whole number from 1 to 1000000.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Count(pub u32);

impl Rule for Count {
    const NAME: &'static str = "Count";
    fn schema() -> Value {
        serde_json::json!({"type": "string", "pattern": "^[1-9][0-9]{0,6}$", "examples": ["1", "60"]})
    }
    fn check(value: &str) -> Result<Self, String> {
        value
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=1_000_000).contains(n) && !value.starts_with(['0', '+']))
            .map(Count)
            .ok_or_else(|| "must be a whole number from 1 to 1000000 (e.g. \"60\")".into())
    }
}
rule_type!(Count);

/// Log verbosity of an operator: `debug`, `info`, `warn` or `error`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogLevel(pub String);

const LOG_LEVELS: [&str; 4] = ["debug", "info", "warn", "error"];

impl Rule for LogLevel {
    const NAME: &'static str = "LogLevel";
    fn schema() -> Value {
        serde_json::json!({"type": "string", "enum": LOG_LEVELS})
    }
    fn check(value: &str) -> Result<Self, String> {
        if LOG_LEVELS.contains(&value) {
            Ok(LogLevel(value.to_string()))
        } else {
            Err("must be one of \"debug\", \"info\", \"warn\", \"error\"".into())
        }
    }
}
rule_type!(LogLevel);

/// Gatekeeper's log level: `DEBUG`, `INFO`, `WARNING` or `ERROR`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GatekeeperLogLevel(pub String);

const GATEKEEPER_LEVELS: [&str; 4] = ["DEBUG", "INFO", "WARNING", "ERROR"];

impl Rule for GatekeeperLogLevel {
    const NAME: &'static str = "GatekeeperLogLevel";
    fn schema() -> Value {
        serde_json::json!({"type": "string", "enum": GATEKEEPER_LEVELS})
    }
    fn check(value: &str) -> Result<Self, String> {
        if GATEKEEPER_LEVELS.contains(&value) {
            Ok(GatekeeperLogLevel(value.to_string()))
        } else {
            Err("must be one of \"DEBUG\", \"INFO\", \"WARNING\", \"ERROR\"".into())
        }
    }
}
rule_type!(GatekeeperLogLevel);

/// Any text that is not empty (secrets, resource ids, paths).
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct Text(pub String);

impl std::fmt::Debug for Text {
    // Protected settings are `Text`; never print a value.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Text(…)")
    }
}

impl Rule for Text {
    const NAME: &'static str = "Text";
    fn schema() -> Value {
        serde_json::json!({"type": "string", "minLength": 1})
    }
    fn check(value: &str) -> Result<Self, String> {
        if value.trim().is_empty() {
            Err("must not be empty".into())
        } else {
            Ok(Text(value.to_string()))
        }
    }
}
rule_type!(Text);

/// Settings of `hybrid-operator`, the management host's operator.
#[derive(Deserialize, JsonSchema, Debug, Default)]
#[serde(deny_unknown_fields, default)]
pub struct HybridOperatorSettings {
    /// Log verbosity of the operator.
    #[serde(rename = "logLevel")]
    pub log_level: Option<LogLevel>,
    /// How many objects the operator reconciles at once.
    #[serde(rename = "maxConcurrentReconciles")]
    pub max_concurrent_reconciles: Option<Count>,
    /// Serve Prometheus metrics.
    #[serde(rename = "metrics.enabled")]
    pub metrics_enabled: Option<Flag>,
    /// HTTPS proxy the operator uses to reach the cloud, e.g. `http://proxy:3128`.
    #[serde(rename = "proxy.httpsProxy")]
    pub https_proxy: Option<Text>,
}

/// Protected settings of `hybrid-operator`.
#[derive(Deserialize, JsonSchema, Debug, Default)]
#[serde(deny_unknown_fields, default)]
pub struct HybridOperatorProtected {
    /// Password of the container registry the operator pulls from.
    #[serde(rename = "registryPassword")]
    pub registry_password: Option<Text>,
    /// Credentials for the HTTPS proxy (`user:password`).
    #[serde(rename = "proxy.credentials")]
    pub proxy_credentials: Option<Text>,
}

/// Settings of `flux` (GitOps).
#[derive(Deserialize, JsonSchema, Debug, Default)]
#[serde(deny_unknown_fields, default)]
pub struct FluxSettings {
    /// Run the source controller (Git, Helm and bucket sources).
    #[serde(rename = "source-controller.enabled")]
    pub source_controller: Option<Flag>,
    /// Run the Helm controller.
    #[serde(rename = "helm-controller.enabled")]
    pub helm_controller: Option<Flag>,
    /// Run the Kustomize controller.
    #[serde(rename = "kustomize-controller.enabled")]
    pub kustomize_controller: Option<Flag>,
    /// Run the notification controller.
    #[serde(rename = "notification-controller.enabled")]
    pub notification_controller: Option<Flag>,
    /// Run the image automation controller.
    #[serde(rename = "image-automation-controller.enabled")]
    pub image_automation_controller: Option<Flag>,
    /// Run the image reflector controller.
    #[serde(rename = "image-reflector-controller.enabled")]
    pub image_reflector_controller: Option<Flag>,
    /// Let the Helm controller correct drift of released resources.
    #[serde(rename = "helm-controller.detectDrift")]
    pub helm_detect_drift: Option<Flag>,
    /// Enforce multi-tenancy (no cross-namespace references).
    #[serde(rename = "multiTenancy.enforce")]
    pub multi_tenancy_enforce: Option<Flag>,
    /// Use workload identity for the controllers.
    #[serde(rename = "workloadIdentity.enable")]
    pub workload_identity: Option<Flag>,
    /// How often sources are reconciled by default.
    #[serde(rename = "syncInterval")]
    pub sync_interval: Option<Interval>,
}

/// Protected settings of `flux`.
#[derive(Deserialize, JsonSchema, Debug, Default)]
#[serde(deny_unknown_fields, default)]
pub struct FluxProtected {
    /// SSH private key (PEM) for Git repositories.
    #[serde(rename = "sshPrivateKey")]
    pub ssh_private_key: Option<Text>,
    /// User name for HTTPS Git repositories.
    #[serde(rename = "httpsUser")]
    pub https_user: Option<Text>,
    /// Password or token for HTTPS Git repositories.
    #[serde(rename = "httpsPassword")]
    pub https_password: Option<Text>,
}

/// Settings of `open-service-mesh`.
#[derive(Deserialize, JsonSchema, Debug, Default)]
#[serde(deny_unknown_fields, default)]
pub struct OsmSettings {
    /// Allow all traffic between meshed services (no SMI policies needed).
    #[serde(rename = "osm.osm.enablePermissiveTrafficPolicy")]
    pub permissive_traffic_policy: Option<Flag>,
    /// Run the sidecar init container privileged.
    #[serde(rename = "osm.osm.enablePrivilegedInitContainer")]
    pub privileged_init_container: Option<Flag>,
    /// Log level of the OSM controller.
    #[serde(rename = "osm.osm.controllerLogLevel")]
    pub controller_log_level: Option<LogLevel>,
    /// Export Envoy statistics through WASM.
    #[serde(rename = "osm.osm.featureFlags.enableWASMStats")]
    pub wasm_stats: Option<Flag>,
}

/// `open-service-mesh`, `policy` and `keyvault-secrets-provider` take no
/// protected settings.
#[derive(Deserialize, JsonSchema, Debug, Default)]
#[serde(deny_unknown_fields, default)]
pub struct NoProtected {}

/// Settings of `defender`.
#[derive(Deserialize, JsonSchema, Debug, Default)]
#[serde(deny_unknown_fields, default)]
pub struct DefenderSettings {
    /// Resource id of the Log Analytics workspace findings go to.
    #[serde(rename = "logAnalyticsWorkspaceResourceID")]
    pub workspace: Option<Text>,
    /// Path of the Kubernetes audit log on the control-plane nodes.
    #[serde(rename = "auditLogPath")]
    pub audit_log_path: Option<Text>,
    /// Run the runtime threat-detection sensor.
    #[serde(rename = "enableSensor")]
    pub sensor: Option<Flag>,
}

/// Protected settings of `defender`.
#[derive(Deserialize, JsonSchema, Debug, Default)]
#[serde(deny_unknown_fields, default)]
pub struct DefenderProtected {
    /// Shared key of the Log Analytics workspace.
    #[serde(rename = "logAnalytics.workspaceKey")]
    pub workspace_key: Option<Text>,
}

/// Settings of `keyvault-secrets-provider`.
#[derive(Deserialize, JsonSchema, Debug, Default)]
#[serde(deny_unknown_fields, default)]
pub struct KeyVaultSettings {
    /// Mirror mounted secrets into Kubernetes secrets.
    #[serde(rename = "secrets-store-csi-driver.syncSecret.enabled")]
    pub sync_secret: Option<Flag>,
    /// Re-read secrets from the vault periodically.
    #[serde(rename = "secrets-store-csi-driver.enableSecretRotation")]
    pub rotation: Option<Flag>,
    /// How often rotated secrets are re-read.
    #[serde(rename = "secrets-store-csi-driver.rotationPollInterval")]
    pub rotation_poll_interval: Option<Interval>,
}

/// Settings of `monitor` (container insights).
#[derive(Deserialize, JsonSchema, Debug, Default)]
#[serde(deny_unknown_fields, default)]
pub struct MonitorSettings {
    /// Resource id of the Log Analytics workspace.
    #[serde(rename = "logAnalyticsWorkspaceResourceID")]
    pub workspace: Option<Text>,
    /// Authenticate the agent with managed identity instead of the workspace key.
    #[serde(rename = "amalogs.useAADAuth")]
    pub use_aad_auth: Option<Flag>,
    /// How often metrics are collected.
    #[serde(rename = "dataCollectionInterval")]
    pub data_collection_interval: Option<Interval>,
}

/// Protected settings of `monitor`.
#[derive(Deserialize, JsonSchema, Debug, Default)]
#[serde(deny_unknown_fields, default)]
pub struct MonitorProtected {
    /// Workspace id.
    #[serde(rename = "amalogs.secret.wsid")]
    pub workspace_id: Option<Text>,
    /// Workspace shared key.
    #[serde(rename = "amalogs.secret.key")]
    pub workspace_key: Option<Text>,
}

/// Settings of `policy` (Gatekeeper with built-in policies).
#[derive(Deserialize, JsonSchema, Debug, Default)]
#[serde(deny_unknown_fields, default)]
pub struct PolicySettings {
    /// Seconds between audits of existing resources.
    #[serde(rename = "auditInterval")]
    pub audit_interval: Option<Count>,
    /// Violations reported per constraint.
    #[serde(rename = "constraintViolationsLimit")]
    pub violations_limit: Option<Count>,
    /// Gatekeeper's log level.
    #[serde(rename = "gatekeeper.logLevel")]
    pub log_level: Option<GatekeeperLogLevel>,
    /// Refuse (rather than only audit) requests that violate a policy.
    #[serde(rename = "enforcement.enabled")]
    pub enforcement: Option<Flag>,
}

/// The JSON Schema of a settings struct: self-contained (no `$ref`s), with
/// `null` dropped from the optional fields (a settings map holds strings).
pub fn schema<T: JsonSchema>() -> Value {
    let mut v = SchemaSettings::draft2020_12()
        .with(|s| {
            s.inline_subschemas = true;
            s.meta_schema = None;
        })
        .into_generator()
        .into_root_schema_for::<T>()
        .to_value();
    if let Some(props) = v.get_mut("properties").and_then(Value::as_object_mut) {
        for prop in props.values_mut() {
            strip_null(prop);
        }
    }
    v
}

fn strip_null(prop: &mut Value) {
    let Some(obj) = prop.as_object_mut() else {
        return;
    };
    if obj.get("default").is_some_and(Value::is_null) {
        obj.remove("default");
    }
    if let Some(alts) = obj.get("anyOf").and_then(Value::as_array) {
        let rest: Vec<Value> = alts
            .iter()
            .filter(|a| a.get("type").and_then(Value::as_str) != Some("null"))
            .cloned()
            .collect();
        if let [only] = rest.as_slice()
            && let Some(only) = only.as_object()
        {
            obj.remove("anyOf");
            for (k, v) in only {
                obj.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
    }
    if let Some(Value::Array(types)) = obj.get_mut("type") {
        types.retain(|t| t != "null");
        if let [only] = types.as_slice() {
            let only = only.clone();
            obj.insert("type".into(), only);
        }
    }
    if obj.get("enum").is_some_and(Value::is_array)
        && let Some(Value::Array(values)) = obj.get_mut("enum")
    {
        values.retain(|v| !v.is_null());
    }
}

/// Checks every value of `settings` against `T`, one key at a time, so each
/// bad value gets its own error at `{field}["key"]`. Keys `T` does not know
/// are skipped (unknown keys are reported by `check_against_type`).
/// `secret` leaves the value out of the message.
pub fn check_values<T: DeserializeOwned + JsonSchema>(
    field: &str,
    settings: &BTreeMap<String, String>,
    extension_type: &str,
    secret: bool,
) -> Vec<FieldError> {
    let known = schema::<T>();
    let known = known.get("properties").and_then(Value::as_object);
    let mut errors = Vec::new();
    for (key, value) in settings {
        if !known.is_some_and(|k| k.contains_key(key)) {
            continue;
        }
        let one = Value::Object(
            [(key.clone(), Value::String(value.clone()))]
                .into_iter()
                .collect(),
        );
        if let Err(e) = serde_json::from_value::<T>(one) {
            let shown = if secret {
                "the value".to_string()
            } else {
                format!("value {value:?}")
            };
            errors.push(FieldError::new(
                format!("{field}[{key:?}]"),
                format!(
                    "{field}[{key:?}]: {shown} is not valid for extension type {extension_type:?}: {e}"
                ),
            ));
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemas_are_self_contained_strings_without_null() {
        let s = schema::<FluxSettings>();
        assert_eq!(s["type"], "object");
        assert_eq!(s["additionalProperties"], false);
        let p = &s["properties"]["multiTenancy.enforce"];
        assert_eq!(p["type"], "string", "{p}");
        assert_eq!(p["enum"], serde_json::json!(["true", "false"]));
        assert!(p["description"].as_str().unwrap().contains("multi-tenancy"));
        let i = &s["properties"]["syncInterval"];
        assert_eq!(i["type"], "string", "{i}");
        assert!(i["pattern"].is_string());
        let text = s.to_string();
        assert!(!text.contains("null") && !text.contains("$ref"), "{text}");
        assert!(
            s.get("required")
                .is_none_or(|r| r.as_array().unwrap().is_empty())
        );
    }

    #[test]
    fn values_are_checked_key_by_key() {
        let settings = BTreeMap::from([
            ("multiTenancy.enforce".to_string(), "yes".to_string()),
            ("syncInterval".into(), "10x".into()),
            ("helm-controller.enabled".into(), "true".into()),
            ("unknown".into(), "whatever".into()),
        ]);
        let errors =
            check_values::<FluxSettings>("configuration_settings", &settings, "flux", false);
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert_eq!(
            errors[0].target,
            "configuration_settings[\"multiTenancy.enforce\"]"
        );
        assert!(
            errors[0].message.contains("\"yes\"")
                && errors[0].message.contains("must be \"true\" or \"false\""),
            "{}",
            errors[0].message
        );
        assert_eq!(errors[1].target, "configuration_settings[\"syncInterval\"]");
        assert!(
            errors[1].message.contains("duration"),
            "{}",
            errors[1].message
        );
    }

    #[test]
    fn secret_values_stay_out_of_messages() {
        let settings = BTreeMap::from([("sshPrivateKey".to_string(), "   ".to_string())]);
        let errors = check_values::<FluxProtected>(
            "configuration_protected_settings",
            &settings,
            "flux",
            true,
        );
        assert_eq!(errors.len(), 1);
        assert!(errors[0].message.contains("must not be empty"));
        assert!(!errors[0].message.contains("\"   \""));
    }

    #[test]
    fn value_rules() {
        assert!(Interval::check("30s").is_ok() && Interval::check("2m").is_ok());
        for bad in ["", "s", "0s", "05m", "1d", "1.5h", "-1s", "1234567s"] {
            assert!(Interval::check(bad).is_err(), "{bad}");
        }
        assert_eq!(Count::check("60").unwrap(), Count(60));
        for bad in ["0", "-1", "+5", "1000001", "x", "07"] {
            assert!(Count::check(bad).is_err(), "{bad}");
        }
        assert!(Flag::check("True").is_err());
        assert!(LogLevel::check("info").is_ok() && LogLevel::check("INFO").is_err());
    }
}
