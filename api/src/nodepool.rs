//! Node pools (`/v1/clusters/{cluster}/nodepools`): groups of identical
//! worker VMs of one OS.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::cluster::Node;
use crate::limits::{self, abbreviate};
use crate::validate::FieldError;
use crate::{Condition, ProvisioningState};

/// Most nodes in one pool.
pub const MAX_NODES_PER_POOL: u32 = 64;
pub const DEFAULT_NODE_VM_SIZE: &str = "Standard_K8S3_v1";
pub const DEFAULT_MAX_PODS: u32 = 110;
pub const DEFAULT_LINUX_SKU: &str = "CBLMariner";
pub const DEFAULT_WINDOWS_SKU: &str = "Windows2022";
/// OS SKUs per OS type.
pub const LINUX_SKUS: &[&str] = &["CBLMariner", "AzureLinux"];
pub const WINDOWS_SKUS: &[&str] = &["Windows2019", "Windows2022"];

/// Node operating system.
#[derive(
    Serialize, Deserialize, JsonSchema, Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord,
)]
#[serde(rename_all = "snake_case")]
pub enum OsType {
    Linux,
    Windows,
}

impl OsType {
    pub fn as_str(self) -> &'static str {
        match self {
            OsType::Linux => "linux",
            OsType::Windows => "windows",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "linux" => Some(OsType::Linux),
            "windows" => Some(OsType::Windows),
            _ => None,
        }
    }

    /// The SKU used when none is given.
    pub fn default_sku(self) -> &'static str {
        match self {
            OsType::Linux => DEFAULT_LINUX_SKU,
            OsType::Windows => DEFAULT_WINDOWS_SKU,
        }
    }

    /// The SKUs this OS type accepts.
    pub fn skus(self) -> &'static [&'static str] {
        match self {
            OsType::Linux => LINUX_SKUS,
            OsType::Windows => WINDOWS_SKUS,
        }
    }
}

/// Bounds for the service's autoscaler.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, Copy, PartialEq, Eq)]
pub struct AutoScaling {
    /// 1–64, at most `max_count`.
    #[schemars(range(min = 1, max = MAX_NODES_PER_POOL))]
    pub min_count: u32,
    /// 1–64.
    #[schemars(range(min = 1, max = MAX_NODES_PER_POOL))]
    pub max_count: u32,
}

/// Shortest `auto_repair.unhealthy_after`: a host must stay down this long
/// (seconds) before its nodes are replaced, so a reboot is not a repair.
pub const MIN_UNHEALTHY_AFTER_SECS: u64 = 10;
/// Longest `auto_repair.unhealthy_after` (seconds): one day.
pub const MAX_UNHEALTHY_AFTER_SECS: u64 = 86_400;
/// `auto_repair.unhealthy_after` when not given.
pub const DEFAULT_UNHEALTHY_AFTER: &str = "5m";
/// `auto_repair.max_unhealthy` when not given.
pub const DEFAULT_MAX_UNHEALTHY: u32 = 1;

/// Node auto-repair: nodes whose VM failed, or whose host has been down
/// longer than `unhealthy_after`, are replaced on another host, at most
/// `max_unhealthy` of the pool at once. Every field has a default, so an
/// omitted block (or field) reads back as these values.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Eq)]
pub struct AutoRepair {
    /// Replace unhealthy nodes; default `false` (opt-in: a repair moves a
    /// node to another host and may take a new address).
    #[serde(default)]
    pub enabled: bool,
    /// How long a node's host must be down before the node is replaced:
    /// a whole number and one unit, `s`, `m` or `h`, from 10s to 24h;
    /// default `5m`. A failed VM is replaced at once.
    #[serde(default = "default_unhealthy_after")]
    #[schemars(length(min = 2, max = 8))]
    pub unhealthy_after: String,
    /// Most of the pool's nodes under repair at once, 1 to 64 (and at
    /// most the pool's node count at the time); default 1.
    #[serde(default = "default_max_unhealthy")]
    #[schemars(range(min = 1, max = MAX_NODES_PER_POOL))]
    pub max_unhealthy: u32,
}

fn default_unhealthy_after() -> String {
    DEFAULT_UNHEALTHY_AFTER.to_string()
}

fn default_max_unhealthy() -> u32 {
    DEFAULT_MAX_UNHEALTHY
}

impl Default for AutoRepair {
    fn default() -> Self {
        AutoRepair {
            enabled: false,
            unhealthy_after: default_unhealthy_after(),
            max_unhealthy: DEFAULT_MAX_UNHEALTHY,
        }
    }
}

impl AutoRepair {
    /// `unhealthy_after` in seconds (`None` when it breaks the rules,
    /// which admission refuses).
    pub fn unhealthy_after_secs(&self) -> Option<u64> {
        crate::autoscaler::parse_duration_at("auto_repair.unhealthy_after", &self.unhealthy_after)
            .ok()
    }
}

/// Rule violations of an `auto_repair` block, each naming the attribute,
/// the value and the rule.
pub fn validate_auto_repair(repair: &AutoRepair) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let at = "auto_repair.unhealthy_after";
    match crate::autoscaler::parse_duration_at(at, &repair.unhealthy_after) {
        Err(e) => errors.push(e),
        Ok(secs) if !(MIN_UNHEALTHY_AFTER_SECS..=MAX_UNHEALTHY_AFTER_SECS).contains(&secs) => {
            errors.push(FieldError::new(
                at,
                format!(
                    "{at} {:?} is not allowed: must be between 10s and 24h (shorter would \
                     replace the nodes of a host that is only rebooting)",
                    repair.unhealthy_after
                ),
            ));
        }
        Ok(_) => {}
    }
    if !(1..=MAX_NODES_PER_POOL).contains(&repair.max_unhealthy) {
        errors.push(FieldError::new(
            "auto_repair.max_unhealthy",
            format!(
                "auto_repair.max_unhealthy {} is out of range; it must be between 1 and \
                 {MAX_NODES_PER_POOL} (nodes repaired at once)",
                repair.max_unhealthy
            ),
        ));
    }
    errors
}

/// Desired state: the body of `PUT /v1/clusters/{cluster}/nodepools/{name}`.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Eq)]
pub struct NodePoolSpec {
    /// `linux` or `windows` (immutable).
    pub os_type: OsType,
    /// OS image SKU (`linux`: CBLMariner, AzureLinux; `windows`:
    /// Windows2019, Windows2022); absent = the OS type's default (immutable).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["CBLMariner", "AzureLinux", "Windows2019", "Windows2022", null]))]
    pub os_sku: Option<String>,
    /// VM size from the catalogue; absent = `Standard_K8S3_v1` (immutable).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = crate::limits::MAX_CATALOG_NAME))]
    pub vm_size: Option<String>,
    /// 1–64 nodes. Absent = keep the current count (1 on create, or
    /// `auto_scaling.min_count`). While `auto_scaling` is set the service owns it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = MAX_NODES_PER_POOL))]
    pub node_count: Option<u32>,
    /// Autoscaler bounds; absent = fixed `node_count`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_scaling: Option<AutoScaling>,
    /// Kubernetes labels on every node: at most 64, with Kubernetes' key
    /// (optional DNS-subdomain prefix of at most 253 and `/`, name of at
    /// most 63) and value (at most 63) rules.
    #[serde(default)]
    #[schemars(schema_with = "crate::limits::schema::labels")]
    pub labels: BTreeMap<String, String>,
    /// Taints, `key=value:Effect` (Effect: NoSchedule, PreferNoSchedule,
    /// NoExecute), at most 32; key and value follow the label rules.
    #[serde(default)]
    #[schemars(
        length(max = crate::limits::MAX_TAINTS),
        inner(length(max = crate::limits::MAX_TAINT), pattern(crate::limits::patterns::TAINT))
    )]
    pub taints: Vec<String>,
    /// Pods per node, 10–250; absent = 110 (immutable).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 10, max = 250))]
    pub max_pods: Option<u32>,
    /// Node auto-repair; absent = the defaults (disabled), which responses
    /// show. Changes in place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_repair: Option<AutoRepair>,
}

impl NodePoolSpec {
    /// The spec with every default filled in (`node_count` from `current`).
    pub fn resolved(&self, current: Option<u32>) -> NodePoolSpec {
        let mut s = self.clone();
        s.os_sku
            .get_or_insert_with(|| self.os_type.default_sku().to_string());
        s.vm_size
            .get_or_insert_with(|| DEFAULT_NODE_VM_SIZE.to_string());
        s.max_pods.get_or_insert(DEFAULT_MAX_PODS);
        s.auto_repair.get_or_insert_with(AutoRepair::default);
        let mut count = s.node_count.or(current).unwrap_or(match s.auto_scaling {
            Some(a) => a.min_count,
            None => 1,
        });
        if let Some(a) = s.auto_scaling {
            count = count.clamp(a.min_count, a.max_count.max(a.min_count));
        }
        s.node_count = Some(count);
        s
    }
}

/// What the service observed about a pool.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Eq, Default)]
pub struct NodePoolStatus {
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// Version the pool's nodes run (the oldest, during an upgrade).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes_version: Option<String>,
    #[serde(default)]
    pub nodes: Vec<Node>,
    /// Progress of the cluster's rolling upgrade over this pool's nodes;
    /// absent when every node runs the cluster's version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upgrade: Option<crate::cluster::UpgradeProgress>,
}

/// A node pool as the service reports it; the spec has every default resolved.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Eq)]
pub struct NodePool {
    /// `/clusters/{cluster}/nodepools/{name}`.
    pub id: String,
    /// Cluster id, `/clusters/{cluster}`.
    pub cluster_id: String,
    pub name: String,
    pub etag: String,
    #[serde(flatten)]
    pub spec: NodePoolSpec,
    pub provisioning_state: ProvisioningState,
    pub status: NodePoolStatus,
    pub created_at: String,
    pub updated_at: String,
}

/// Resource id of a node pool.
pub fn nodepool_id(cluster: &str, name: &str) -> String {
    format!("/clusters/{cluster}/nodepools/{name}")
}

/// `(cluster, pool)` from a node pool id.
pub fn parse_nodepool_id(id: &str) -> Option<(&str, &str)> {
    let rest = id.strip_prefix("/clusters/")?;
    let (cluster, pool) = rest.split_once("/nodepools/")?;
    let ok = |s: &str| !s.is_empty() && !s.contains('/');
    (ok(cluster) && ok(pool)).then_some((cluster, pool))
}

/// Checks a pool name: `^[a-z][a-z0-9]{2,11}$`.
pub fn validate_name(name: &str) -> Result<(), FieldError> {
    let b = name.as_bytes();
    let ok = (3..=12).contains(&b.len())
        && b[0].is_ascii_lowercase()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(FieldError::new(
            "name",
            format!(
                "name {name:?} is not a valid node pool name: 3-12 lowercase letters or digits, starting with a letter (^[a-z][a-z0-9]{{2,11}}$)"
            ),
        ))
    }
}

const TAINT_EFFECTS: &[&str] = &["NoSchedule", "PreferNoSchedule", "NoExecute"];

/// Rule violations of a pool spec that need no catalogue (empty = valid).
pub fn validate_spec(spec: &NodePoolSpec) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if let Some(sku) = &spec.os_sku
        && !spec.os_type.skus().contains(&sku.as_str())
    {
        errors.push(FieldError::new(
            "os_sku",
            format!(
                "os_sku {} is not available for os_type {:?}; choose one of {}",
                abbreviate(sku),
                spec.os_type.as_str(),
                spec.os_type.skus().join(", ")
            ),
        ));
    }
    if let Some(n) = spec.node_count
        && !(1..=MAX_NODES_PER_POOL).contains(&n)
    {
        errors.push(FieldError::new(
            "node_count",
            format!("node_count {n} is out of range; a pool has 1 to {MAX_NODES_PER_POOL} nodes"),
        ));
    }
    if let Some(a) = spec.auto_scaling {
        for (field, v) in [
            ("auto_scaling.min_count", a.min_count),
            ("auto_scaling.max_count", a.max_count),
        ] {
            if !(1..=MAX_NODES_PER_POOL).contains(&v) {
                errors.push(FieldError::new(
                    field,
                    format!(
                        "{field} {v} is out of range; it must be between 1 and {MAX_NODES_PER_POOL}"
                    ),
                ));
            }
        }
        if a.min_count > a.max_count {
            errors.push(FieldError::new(
                "auto_scaling.min_count",
                format!(
                    "auto_scaling.min_count {} is greater than auto_scaling.max_count {}; min_count must be <= max_count",
                    a.min_count, a.max_count
                ),
            ));
        }
        if let Some(n) = spec.node_count
            && !(a.min_count..=a.max_count).contains(&n)
        {
            errors.push(FieldError::new(
                "node_count",
                format!(
                    "node_count {n} is outside auto_scaling bounds {}-{}",
                    a.min_count, a.max_count
                ),
            ));
        }
    }
    if let Some(m) = spec.max_pods
        && !(10..=250).contains(&m)
    {
        errors.push(FieldError::new(
            "max_pods",
            format!("max_pods {m} is out of range; it must be between 10 and 250"),
        ));
    }
    if let Some(repair) = &spec.auto_repair {
        errors.extend(validate_auto_repair(repair));
    }
    if let Some(size) = &spec.vm_size
        && let Err(e) = limits::check_len("vm_size", size, limits::MAX_CATALOG_NAME)
    {
        errors.push(e);
    }
    if let Err(e) = limits::check_count("labels", spec.labels.len(), limits::MAX_LABELS) {
        errors.push(e);
    }
    for (k, v) in &spec.labels {
        if k.chars().count() > limits::MAX_LABEL_KEY {
            // A target holding the key would be as long as the key.
            errors.push(FieldError::new(
                "labels",
                format!(
                    "label key {} is {} characters long; at most {} are allowed ({}-character prefix, '/', {}-character name)",
                    abbreviate(k),
                    k.chars().count(),
                    limits::MAX_LABEL_KEY,
                    limits::MAX_LABEL_PREFIX,
                    limits::MAX_LABEL_VALUE
                ),
            ));
        } else if let Some(msg) = label_problem(k, v) {
            errors.push(FieldError::new(format!("labels[{k:?}]"), msg));
        }
    }
    if let Err(e) = limits::check_count("taints", spec.taints.len(), limits::MAX_TAINTS) {
        errors.push(e);
    }
    for (i, t) in spec.taints.iter().enumerate() {
        let field = format!("taints[{i}]");
        if let Err(e) = limits::check_len(&field, t, limits::MAX_TAINT) {
            errors.push(e);
        } else if let Some(msg) = taint_problem(t) {
            errors.push(FieldError::new(field, msg));
        }
    }
    errors
}

fn name_part_ok(s: &str, max: usize) -> bool {
    let b = s.as_bytes();
    let alnum = |c: &u8| c.is_ascii_alphanumeric();
    !b.is_empty()
        && b.len() <= max
        && b.first().is_some_and(alnum)
        && b.last().is_some_and(alnum)
        && b.iter()
            .all(|c| alnum(c) || matches!(c, b'-' | b'_' | b'.'))
}

fn label_problem(key: &str, value: &str) -> Option<String> {
    let name = match key.rsplit_once('/') {
        Some((prefix, name)) => {
            if prefix.len() > limits::MAX_LABEL_PREFIX
                || (crate::validate::dns_label("labels", prefix).is_err()
                    && !prefix
                        .split('.')
                        .all(|p| crate::validate::dns_label("labels", p).is_ok()))
            {
                return Some(format!(
                    "label key {key:?} has an invalid prefix {}; it must be a DNS subdomain of at most {} characters",
                    abbreviate(prefix),
                    limits::MAX_LABEL_PREFIX
                ));
            }
            name
        }
        None => key,
    };
    if !name_part_ok(name, 63) {
        return Some(format!(
            "label key {key:?} is invalid: the name part must be 1-63 characters of [A-Za-z0-9-_.], starting and ending alphanumeric"
        ));
    }
    if !value.is_empty() && !name_part_ok(value, limits::MAX_LABEL_VALUE) {
        return Some(format!(
            "label value {} of {key:?} is invalid: at most 63 characters of [A-Za-z0-9-_.], starting and ending alphanumeric",
            abbreviate(value)
        ));
    }
    None
}

fn taint_problem(taint: &str) -> Option<String> {
    let rule = "taints are written key=value:Effect or key:Effect, Effect one of NoSchedule, PreferNoSchedule, NoExecute";
    let Some((kv, effect)) = taint.rsplit_once(':') else {
        return Some(format!("taint {taint:?} has no effect; {rule}"));
    };
    if !TAINT_EFFECTS.contains(&effect) {
        return Some(format!("taint {taint:?} has effect {effect:?}; {rule}"));
    }
    let (key, value) = kv.split_once('=').unwrap_or((kv, ""));
    if label_problem(key, value).is_some() {
        return Some(format!(
            "taint {taint:?} has an invalid key or value; {rule}"
        ));
    }
    None
}

/// Changes to fields that cannot change after creation, comparing resolved specs.
pub fn immutable_changes(old: &NodePoolSpec, new: &NodePoolSpec) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let mut check = |field: &str, a: &dyn std::fmt::Debug, b: &dyn std::fmt::Debug, same: bool| {
        if !same {
            errors.push(FieldError::immutable("node pool", field, a, b));
        }
    };
    check(
        "os_type",
        &old.os_type.as_str(),
        &new.os_type.as_str(),
        old.os_type == new.os_type,
    );
    check("os_sku", &old.os_sku, &new.os_sku, old.os_sku == new.os_sku);
    check(
        "vm_size",
        &old.vm_size,
        &new.vm_size,
        old.vm_size == new.vm_size,
    );
    check(
        "max_pods",
        &old.max_pods,
        &new.max_pods,
        old.max_pods == new.max_pods,
    );
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> NodePoolSpec {
        serde_json::from_str(r#"{"os_type":"linux"}"#).unwrap()
    }

    #[test]
    fn names() {
        for ok in ["abc", "linux1", "a12345678901"] {
            assert!(validate_name(ok).is_ok(), "{ok}");
        }
        for bad in ["ab", "1abc", "Linux", "a-b-c", "a123456789012"] {
            let e = validate_name(bad).unwrap_err();
            assert!(
                e.message.contains(bad) && e.message.contains("^[a-z]"),
                "{e}"
            );
        }
    }

    #[test]
    fn resolved_fills_defaults_and_clamps() {
        let r = spec().resolved(None);
        assert_eq!(r.os_sku.as_deref(), Some("CBLMariner"));
        assert_eq!(r.node_count, Some(1));
        let mut s = spec();
        s.auto_scaling = Some(AutoScaling {
            min_count: 2,
            max_count: 4,
        });
        assert_eq!(s.resolved(None).node_count, Some(2));
        assert_eq!(s.resolved(Some(9)).node_count, Some(4));
        assert_eq!(s.resolved(Some(3)).node_count, Some(3));
    }

    #[test]
    fn auto_repair_defaults_and_rules() {
        let r = spec().resolved(None);
        assert_eq!(r.auto_repair, Some(AutoRepair::default()));
        let partial: AutoRepair = serde_json::from_str(r#"{"enabled":true}"#).unwrap();
        assert_eq!(
            (partial.unhealthy_after.as_str(), partial.max_unhealthy),
            ("5m", 1)
        );
        assert_eq!(partial.unhealthy_after_secs(), Some(300));
        assert!(validate_auto_repair(&partial).is_empty());
        for (after, rule) in [
            ("9s", "between 10s and 24h"),
            ("25h", "between 10s and 24h"),
            ("5 m", "not a duration"),
            ("05m", "not a duration"),
        ] {
            let bad = AutoRepair {
                unhealthy_after: after.into(),
                ..partial.clone()
            };
            let e = validate_auto_repair(&bad);
            assert_eq!(e.len(), 1, "{after}");
            assert_eq!(e[0].target, "auto_repair.unhealthy_after");
            assert!(
                e[0].message.contains(after) && e[0].message.contains(rule),
                "{}",
                e[0].message
            );
        }
        let zero = AutoRepair {
            max_unhealthy: 0,
            ..partial
        };
        let e = validate_auto_repair(&zero);
        assert_eq!(e[0].target, "auto_repair.max_unhealthy");
        assert!(e[0].message.contains(" 0 ") && e[0].message.contains("between 1 and 64"));
    }

    #[test]
    fn rules_name_field_value_and_rule() {
        let mut s = spec();
        s.node_count = Some(70);
        s.taints = vec!["gpu=true:Sometimes".into(), "ok=1:NoSchedule".into()];
        s.os_sku = Some("Windows2022".into());
        s.labels.insert("bad key".into(), "x".into());
        let errors = validate_spec(&s);
        let targets: Vec<_> = errors.iter().map(|e| e.target.as_str()).collect();
        assert_eq!(
            targets,
            ["os_sku", "node_count", "labels[\"bad key\"]", "taints[0]"]
        );
        assert!(errors[1].message.contains("70") && errors[1].message.contains("64"));
    }
}
