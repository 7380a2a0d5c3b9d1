//! The cluster autoscaler profile (`auto_scaler_profile` on a cluster): the
//! settings AKS and AKS hybrid hand to the Kubernetes cluster autoscaler,
//! with AKS's names (as the azurerm provider spells them) and AKS's
//! documented defaults.
//!
//! The profile is cluster-wide; it governs the pools that have
//! `auto_scaling` and is stored (and validated) whether or not any pool has
//! it, as AKS does, so that enabling autoscaling on a pool later needs no
//! second cluster change. Durations are AKS-style strings, a whole number
//! and one unit (`10s`, `10m`, `1h`), kept exactly as written so a plan never
//! shows `60s` against `1m`. The utilisation threshold is a decimal string
//! (`"0.5"`), as AKS and azurerm take it, so that it round-trips exactly
//! instead of through a binary float.
//!
//! [`validate`] holds every rule: the service runs it at admission and the
//! provider at plan time.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::limits::abbreviate;
use crate::validate::FieldError;

/// Longest duration or threshold string (`"86400s"` is 6).
pub const MAX_SETTING_LEN: usize = 16;
/// Most unready nodes a cluster can have (its node limit).
pub const MAX_UNREADY_NODES: i64 = crate::cluster::MAX_NODES_PER_CLUSTER as i64;
/// Longest graceful termination the autoscaler waits for a pod: one day.
pub const MAX_GRACEFUL_TERMINATION_SEC: i64 = 86_400;

/// The duration patterns of the OpenAPI document: each states its
/// setting's whole rule (a whole number without leading zeros, one unit,
/// within the bounds), so a body the schema calls valid is admitted. A
/// test checks each against [`validate`] over every number up to past the
/// bounds.
pub mod patterns {
    /// 1s to 10m (`scan_interval`).
    pub const S1_TO_10M: &str = "^(([1-9][0-9]?|[1-5][0-9]{2}|600)s|([1-9]|10)m)$";
    /// 1m to 1h (`max_node_provisioning_time`).
    pub const M1_TO_1H: &str = "^(([6-9][0-9]|[1-9][0-9]{2}|[12][0-9]{3}|3[0-5][0-9]{2}|3600)s|([1-9]|[1-5][0-9]|60)m|1h)$";
    /// 0s to 1h (`new_pod_scale_up_delay`).
    pub const S0_TO_1H: &str =
        "^((0|[1-9][0-9]{0,2}|[12][0-9]{3}|3[0-5][0-9]{2}|3600)s|(0|[1-9]|[1-5][0-9]|60)m|[01]h)$";
    /// 0s to 24h (the `scale_down_delay_after_*` settings).
    pub const S0_TO_24H: &str = "^((0|[1-9][0-9]{0,3}|[1-7][0-9]{4}|8[0-5][0-9]{3}|86[0-3][0-9]{2}|86400)s|(0|[1-9][0-9]{0,2}|1[0-3][0-9]{2}|14[0-3][0-9]|1440)m|(0|[1-9]|1[0-9]|2[0-4])h)$";
    /// 1m to 24h (`scale_down_unneeded`, `scale_down_unready`).
    pub const M1_TO_24H: &str = "^(([6-9][0-9]|[1-9][0-9]{2,3}|[1-7][0-9]{4}|8[0-5][0-9]{3}|86[0-3][0-9]{2}|86400)s|([1-9][0-9]{0,2}|1[0-3][0-9]{2}|14[0-3][0-9]|1440)m|([1-9]|1[0-9]|2[0-4])h)$";
}
/// How the threshold is written: a decimal from 0 to 1.
pub const THRESHOLD_PATTERN: &str = r"^(0(\.[0-9]{1,6})?|1(\.0{1,6})?)$";

/// Which node pool the autoscaler grows when several could take the
/// pending pods.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Expander {
    /// The pool that leaves the least CPU and memory idle.
    LeastWaste,
    /// The pool that schedules the most pods.
    MostPods,
    /// By the priorities of the `cluster-autoscaler-priority-expander`
    /// config map in the cluster.
    Priority,
    /// Any of them (AKS's default).
    #[default]
    Random,
}

impl Expander {
    /// Every value, as written in the API and in Terraform.
    pub const ALL: [&'static str; 4] = ["least-waste", "most-pods", "priority", "random"];

    pub fn as_str(self) -> &'static str {
        match self {
            Expander::LeastWaste => "least-waste",
            Expander::MostPods => "most-pods",
            Expander::Priority => "priority",
            Expander::Random => "random",
        }
    }

    /// The expander named `value`, if there is one.
    pub fn parse(value: &str) -> Option<Expander> {
        match value {
            "least-waste" => Some(Expander::LeastWaste),
            "most-pods" => Some(Expander::MostPods),
            "priority" => Some(Expander::Priority),
            "random" => Some(Expander::Random),
            _ => None,
        }
    }
}

/// The cluster autoscaler's settings. Every field has AKS's default, so an
/// absent profile (or field) means "as AKS does"; responses always show
/// every field.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Eq)]
pub struct AutoScalerProfile {
    /// Balance the node count of similar pools (same size, labels and
    /// taints). Default false.
    #[serde(default)]
    pub balance_similar_node_groups: bool,
    /// `least-waste`, `most-pods`, `priority` or `random` (default).
    #[serde(default)]
    pub expander: Expander,
    /// Most empty nodes removed at once, 1–200. Default 10.
    #[serde(default = "defaults::empty_bulk_delete_max")]
    #[schemars(range(min = 1, max = MAX_UNREADY_NODES))]
    pub empty_bulk_delete_max: i64,
    /// Seconds the autoscaler waits for a pod to end when it drains a node,
    /// 0–86400. Default 600.
    #[serde(default = "defaults::max_graceful_termination_sec")]
    #[schemars(range(min = 0, max = MAX_GRACEFUL_TERMINATION_SEC))]
    pub max_graceful_termination_sec: i64,
    /// How long a new node may take to become ready, 1m–1h. Default `15m`.
    #[serde(default = "defaults::max_node_provisioning_time")]
    #[schemars(length(max = MAX_SETTING_LEN), pattern(patterns::M1_TO_1H))]
    pub max_node_provisioning_time: String,
    /// Unready nodes tolerated before the autoscaler stops, 0–200. Default 3.
    #[serde(default = "defaults::max_unready_nodes")]
    #[schemars(range(min = 0, max = MAX_UNREADY_NODES))]
    pub max_unready_nodes: i64,
    /// Percentage of unready nodes tolerated before the autoscaler stops,
    /// 0–100. Default 45.
    #[serde(default = "defaults::max_unready_percentage")]
    #[schemars(range(min = 0, max = 100))]
    pub max_unready_percentage: i64,
    /// How long a pod must be pending before it triggers a scale-up, 0s–1h.
    /// Default `0s`.
    #[serde(default = "defaults::new_pod_scale_up_delay")]
    #[schemars(length(max = MAX_SETTING_LEN), pattern(patterns::S0_TO_1H))]
    pub new_pod_scale_up_delay: String,
    /// Wait after a scale-up before scale-down is considered, 0s–24h.
    /// Default `10m`.
    #[serde(default = "defaults::scale_down_delay_after_add")]
    #[schemars(length(max = MAX_SETTING_LEN), pattern(patterns::S0_TO_24H))]
    pub scale_down_delay_after_add: String,
    /// Wait after a node is removed before scale-down is considered again,
    /// 0s–24h. Default `10s` (the scan interval's default).
    #[serde(default = "defaults::scale_down_delay_after_delete")]
    #[schemars(length(max = MAX_SETTING_LEN), pattern(patterns::S0_TO_24H))]
    pub scale_down_delay_after_delete: String,
    /// Wait after a failed scale-down before trying again, 0s–24h. Default
    /// `3m`.
    #[serde(default = "defaults::scale_down_delay_after_failure")]
    #[schemars(length(max = MAX_SETTING_LEN), pattern(patterns::S0_TO_24H))]
    pub scale_down_delay_after_failure: String,
    /// How long a node must be unneeded before it is removed, 1m–24h.
    /// Default `10m`.
    #[serde(default = "defaults::scale_down_unneeded")]
    #[schemars(length(max = MAX_SETTING_LEN), pattern(patterns::M1_TO_24H))]
    pub scale_down_unneeded: String,
    /// How long a node must be unready before it is removed, 1m–24h.
    /// Default `20m`.
    #[serde(default = "defaults::scale_down_unready")]
    #[schemars(length(max = MAX_SETTING_LEN), pattern(patterns::M1_TO_24H))]
    pub scale_down_unready: String,
    /// Requested CPU or memory over capacity below which a node counts as
    /// unneeded: a decimal from `"0"` to `"1"`. Default `"0.5"`.
    #[serde(default = "defaults::scale_down_utilization_threshold")]
    #[schemars(length(max = MAX_SETTING_LEN), pattern(THRESHOLD_PATTERN))]
    pub scale_down_utilization_threshold: String,
    /// How often the autoscaler looks at the cluster, 1s–10m. Default `10s`.
    #[serde(default = "defaults::scan_interval")]
    #[schemars(length(max = MAX_SETTING_LEN), pattern(patterns::S1_TO_10M))]
    pub scan_interval: String,
    /// Never remove a node with a pod using local storage (`emptyDir`,
    /// `hostPath`). Default true.
    #[serde(default = "defaults::yes")]
    pub skip_nodes_with_local_storage: bool,
    /// Never remove a node running `kube-system` pods (other than
    /// DaemonSets'). Default true.
    #[serde(default = "defaults::yes")]
    pub skip_nodes_with_system_pods: bool,
}

/// AKS's documented defaults, one function per field for serde.
pub mod defaults {
    pub fn empty_bulk_delete_max() -> i64 {
        10
    }
    pub fn max_graceful_termination_sec() -> i64 {
        600
    }
    pub fn max_node_provisioning_time() -> String {
        "15m".into()
    }
    pub fn max_unready_nodes() -> i64 {
        3
    }
    pub fn max_unready_percentage() -> i64 {
        45
    }
    pub fn new_pod_scale_up_delay() -> String {
        "0s".into()
    }
    pub fn scale_down_delay_after_add() -> String {
        "10m".into()
    }
    pub fn scale_down_delay_after_delete() -> String {
        "10s".into()
    }
    pub fn scale_down_delay_after_failure() -> String {
        "3m".into()
    }
    pub fn scale_down_unneeded() -> String {
        "10m".into()
    }
    pub fn scale_down_unready() -> String {
        "20m".into()
    }
    pub fn scale_down_utilization_threshold() -> String {
        "0.5".into()
    }
    pub fn scan_interval() -> String {
        "10s".into()
    }
    pub fn yes() -> bool {
        true
    }
}

impl Default for AutoScalerProfile {
    fn default() -> Self {
        AutoScalerProfile {
            balance_similar_node_groups: false,
            expander: Expander::default(),
            empty_bulk_delete_max: defaults::empty_bulk_delete_max(),
            max_graceful_termination_sec: defaults::max_graceful_termination_sec(),
            max_node_provisioning_time: defaults::max_node_provisioning_time(),
            max_unready_nodes: defaults::max_unready_nodes(),
            max_unready_percentage: defaults::max_unready_percentage(),
            new_pod_scale_up_delay: defaults::new_pod_scale_up_delay(),
            scale_down_delay_after_add: defaults::scale_down_delay_after_add(),
            scale_down_delay_after_delete: defaults::scale_down_delay_after_delete(),
            scale_down_delay_after_failure: defaults::scale_down_delay_after_failure(),
            scale_down_unneeded: defaults::scale_down_unneeded(),
            scale_down_unready: defaults::scale_down_unready(),
            scale_down_utilization_threshold: defaults::scale_down_utilization_threshold(),
            scan_interval: defaults::scan_interval(),
            skip_nodes_with_local_storage: true,
            skip_nodes_with_system_pods: true,
        }
    }
}

const MINUTE: u64 = 60;
const HOUR: u64 = 60 * MINUTE;
const DAY: u64 = 24 * HOUR;

/// A duration setting's name (under `auto_scaler_profile.`) and its
/// bounds in seconds, inclusive.
type DurationRule = (&'static str, u64, u64);

/// The bounds of every duration setting: wide enough for any sensible
/// tuning, narrow enough to catch a unit slip (`10h` for `10s`).
const DURATIONS: [DurationRule; 8] = [
    ("max_node_provisioning_time", MINUTE, HOUR),
    ("new_pod_scale_up_delay", 0, HOUR),
    ("scale_down_delay_after_add", 0, DAY),
    ("scale_down_delay_after_delete", 0, DAY),
    ("scale_down_delay_after_failure", 0, DAY),
    ("scale_down_unneeded", MINUTE, DAY),
    ("scale_down_unready", MINUTE, DAY),
    ("scan_interval", 1, 10 * MINUTE),
];

/// The attribute path of a profile setting.
fn path(field: &str) -> String {
    format!("auto_scaler_profile.{field}")
}

/// Seconds as the shortest AKS-style string (`600` → `10m`).
fn show(seconds: u64) -> String {
    match seconds {
        0 => "0s".into(),
        s if s % HOUR == 0 => format!("{}h", s / HOUR),
        s if s % MINUTE == 0 => format!("{}m", s / MINUTE),
        s => format!("{s}s"),
    }
}

/// Parses an AKS-style duration (`10s`, `15m`, `1h`) into seconds.
pub fn parse_duration(field: &str, value: &str) -> Result<u64, FieldError> {
    parse_duration_at(&path(field), value)
}

/// [`parse_duration`] for a setting outside the profile: `at` is the
/// whole attribute path errors name (e.g. `auto_repair.unhealthy_after`).
pub fn parse_duration_at(at: &str, value: &str) -> Result<u64, FieldError> {
    let bad = || {
        FieldError::new(
            at,
            format!(
                "{at} {} is not a duration: write a whole number (no leading zeros) and one \
                 unit, s, m or h (e.g. \"10s\", \"15m\", \"1h\")",
                abbreviate(value)
            ),
        )
    };
    let unit = match value.as_bytes().last() {
        Some(b's') => 1,
        Some(b'm') => MINUTE,
        Some(b'h') => HOUR,
        _ => return Err(bad()),
    };
    let digits = &value[..value.len() - 1];
    let leading_zero = digits.len() > 1 && digits.starts_with('0');
    if digits.is_empty()
        || digits.len() > 6
        || leading_zero
        || !digits.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    let n: u64 = digits.parse().map_err(|_| bad())?;
    Ok(n * unit)
}

/// Checks a threshold is a decimal from 0 to 1 with at most six decimals.
fn check_threshold(field: &str, value: &str) -> Result<(), FieldError> {
    let (whole, fraction) = value.split_once('.').unwrap_or((value, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let written = !whole.is_empty()
        && whole.len() <= 1
        && digits(whole)
        && digits(fraction)
        && fraction.len() <= 6
        && (value.contains('.') != fraction.is_empty());
    if !written {
        return Err(FieldError::new(
            path(field),
            format!(
                "{} {} is not a decimal number: write it like \"0.5\" (at most six decimals)",
                path(field),
                abbreviate(value)
            ),
        ));
    }
    if (whole == "1" && fraction.bytes().any(|b| b != b'0')) || whole > "1" {
        return Err(FieldError::new(
            path(field),
            format!(
                "{} {value:?} is not allowed: must be between 0 and 1 (a share of a node's \
                 CPU and memory)",
                path(field)
            ),
        ));
    }
    Ok(())
}

/// Checks a whole-number setting is in `min..=max`.
fn check_range(field: &str, value: i64, min: i64, max: i64, what: &str) -> Option<FieldError> {
    (!(min..=max).contains(&value)).then(|| {
        FieldError::new(
            path(field),
            format!(
                "{} {value} is not allowed: must be between {min} and {max} ({what})",
                path(field)
            ),
        )
    })
}

/// Every rule violation of a profile (empty = valid). Each error names the
/// setting's path, its value and the rule.
pub fn validate(profile: &AutoScalerProfile) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let durations: [&str; 8] = [
        &profile.max_node_provisioning_time,
        &profile.new_pod_scale_up_delay,
        &profile.scale_down_delay_after_add,
        &profile.scale_down_delay_after_delete,
        &profile.scale_down_delay_after_failure,
        &profile.scale_down_unneeded,
        &profile.scale_down_unready,
        &profile.scan_interval,
    ];
    for ((field, min, max), value) in DURATIONS.into_iter().zip(durations) {
        match parse_duration(field, value) {
            Ok(seconds) if seconds < min || seconds > max => errors.push(FieldError::new(
                path(field),
                format!(
                    "{} {value:?} is not allowed: must be between {} and {}",
                    path(field),
                    show(min),
                    show(max)
                ),
            )),
            Ok(_) => {}
            Err(e) => errors.push(e),
        }
    }
    if let Err(e) = check_threshold(
        "scale_down_utilization_threshold",
        &profile.scale_down_utilization_threshold,
    ) {
        errors.push(e);
    }
    errors.extend(
        [
            check_range(
                "empty_bulk_delete_max",
                profile.empty_bulk_delete_max,
                1,
                MAX_UNREADY_NODES,
                "nodes removed at once; a cluster has at most 200",
            ),
            check_range(
                "max_graceful_termination_sec",
                profile.max_graceful_termination_sec,
                0,
                MAX_GRACEFUL_TERMINATION_SEC,
                "seconds, at most a day",
            ),
            check_range(
                "max_unready_nodes",
                profile.max_unready_nodes,
                0,
                MAX_UNREADY_NODES,
                "nodes; a cluster has at most 200",
            ),
            check_range(
                "max_unready_percentage",
                profile.max_unready_percentage,
                0,
                100,
                "a percentage",
            ),
        ]
        .into_iter()
        .flatten(),
    );
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    fn messages(profile: &AutoScalerProfile) -> Vec<String> {
        validate(profile).iter().map(|e| e.to_string()).collect()
    }

    #[test]
    fn the_defaults_are_aks_s_and_valid() {
        let p = AutoScalerProfile::default();
        assert!(validate(&p).is_empty(), "{:?}", validate(&p));
        assert_eq!(p.expander, Expander::Random);
        assert_eq!(p.scan_interval, "10s");
        assert_eq!(p.scale_down_delay_after_add, "10m");
        assert_eq!(p.scale_down_utilization_threshold, "0.5");
        assert_eq!(p.max_unready_percentage, 45);
        // An empty object on the wire is the same profile.
        let empty: AutoScalerProfile = serde_json::from_str("{}").unwrap();
        assert_eq!(empty, p);
    }

    #[test]
    fn the_wire_form_uses_aks_names_and_values() {
        let mut p = AutoScalerProfile {
            expander: Expander::LeastWaste,
            ..AutoScalerProfile::default()
        };
        p.scan_interval = "20s".into();
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(v["expander"], "least-waste");
        assert_eq!(v["scan_interval"], "20s");
        assert_eq!(v["max_graceful_termination_sec"], 600);
        for name in Expander::ALL {
            let e = Expander::parse(name).unwrap();
            assert_eq!(e.as_str(), name);
            assert_eq!(serde_json::to_value(e).unwrap(), name);
        }
        assert_eq!(Expander::parse("fastest"), None);
    }

    #[test]
    fn durations_take_one_whole_number_and_one_unit() {
        for (value, seconds) in [("0s", 0), ("10s", 10), ("15m", 900), ("1h", 3600)] {
            assert_eq!(
                parse_duration("scan_interval", value),
                Ok(seconds),
                "{value}"
            );
        }
        for value in [
            "", "s", "10", "1.5m", "-1s", "10 s", "1m30s", "10d", "1234567s", "٣s", "010s", "00s",
        ] {
            let e = parse_duration("scan_interval", value).unwrap_err();
            assert_eq!(e.target, "auto_scaler_profile.scan_interval");
            assert!(e.message.contains("is not a duration"), "{value}: {e}");
            assert!(e.message.contains("s, m or h"), "{e}");
        }
    }

    #[test]
    fn every_duration_is_checked_against_its_bounds() {
        type Slot = fn(&mut AutoScalerProfile) -> &mut String;
        let cases: [(&str, Slot, &str, &str, &str); 8] = [
            (
                "scan_interval",
                |p| &mut p.scan_interval,
                "0s",
                "11m",
                "between 1s and 10m",
            ),
            (
                "max_node_provisioning_time",
                |p| &mut p.max_node_provisioning_time,
                "59s",
                "61m",
                "between 1m and 1h",
            ),
            (
                "new_pod_scale_up_delay",
                |p| &mut p.new_pod_scale_up_delay,
                "",
                "2h",
                "between 0s and 1h",
            ),
            (
                "scale_down_delay_after_add",
                |p| &mut p.scale_down_delay_after_add,
                "",
                "25h",
                "between 0s and 24h",
            ),
            (
                "scale_down_delay_after_delete",
                |p| &mut p.scale_down_delay_after_delete,
                "",
                "1441m",
                "between 0s and 24h",
            ),
            (
                "scale_down_delay_after_failure",
                |p| &mut p.scale_down_delay_after_failure,
                "",
                "86401s",
                "between 0s and 24h",
            ),
            (
                "scale_down_unneeded",
                |p| &mut p.scale_down_unneeded,
                "30s",
                "25h",
                "between 1m and 24h",
            ),
            (
                "scale_down_unready",
                |p| &mut p.scale_down_unready,
                "0m",
                "48h",
                "between 1m and 24h",
            ),
        ];
        for (field, slot, low, high, rule) in cases {
            for bad in [low, high].into_iter().filter(|v| !v.is_empty()) {
                let mut p = AutoScalerProfile::default();
                *slot(&mut p) = bad.into();
                let errors = validate(&p);
                assert_eq!(errors.len(), 1, "{field}={bad}: {errors:?}");
                assert_eq!(errors[0].target, format!("auto_scaler_profile.{field}"));
                assert_eq!(
                    errors[0].message,
                    format!("auto_scaler_profile.{field} {bad:?} is not allowed: must be {rule}")
                );
            }
            // A bad spelling names the field too.
            let mut p = AutoScalerProfile::default();
            *slot(&mut p) = "ten".into();
            assert_eq!(
                validate(&p)[0].target,
                format!("auto_scaler_profile.{field}")
            );
        }
        // The bounds themselves are allowed.
        let p = AutoScalerProfile {
            scan_interval: "600s".into(),
            max_node_provisioning_time: "60s".into(),
            new_pod_scale_up_delay: "1h".into(),
            scale_down_delay_after_add: "24h".into(),
            scale_down_unneeded: "1m".into(),
            scale_down_unready: "1440m".into(),
            ..AutoScalerProfile::default()
        };
        assert!(validate(&p).is_empty(), "{:?}", validate(&p));
    }

    /// The OpenAPI patterns state exactly the rules: every number from 0
    /// to past the largest bound, in each unit, with and without a leading
    /// zero, is matched by a setting's pattern exactly when the rules
    /// accept it for that setting.
    #[test]
    fn each_duration_pattern_is_its_setting_s_rule() {
        type Slot = fn(&mut AutoScalerProfile) -> &mut String;
        let fields: [(&str, Slot, &str); 8] = [
            (
                "max_node_provisioning_time",
                |p| &mut p.max_node_provisioning_time,
                patterns::M1_TO_1H,
            ),
            (
                "new_pod_scale_up_delay",
                |p| &mut p.new_pod_scale_up_delay,
                patterns::S0_TO_1H,
            ),
            (
                "scale_down_delay_after_add",
                |p| &mut p.scale_down_delay_after_add,
                patterns::S0_TO_24H,
            ),
            (
                "scale_down_delay_after_delete",
                |p| &mut p.scale_down_delay_after_delete,
                patterns::S0_TO_24H,
            ),
            (
                "scale_down_delay_after_failure",
                |p| &mut p.scale_down_delay_after_failure,
                patterns::S0_TO_24H,
            ),
            (
                "scale_down_unneeded",
                |p| &mut p.scale_down_unneeded,
                patterns::M1_TO_24H,
            ),
            (
                "scale_down_unready",
                |p| &mut p.scale_down_unready,
                patterns::M1_TO_24H,
            ),
            (
                "scan_interval",
                |p| &mut p.scan_interval,
                patterns::S1_TO_10M,
            ),
        ];
        for (field, slot, pattern) in fields {
            let re = regex::Regex::new(pattern).unwrap();
            for (unit, top) in [("s", 90_000), ("m", 1_500), ("h", 30)] {
                for n in 0..=top {
                    for value in [format!("{n}{unit}"), format!("0{n}{unit}")] {
                        let mut p = AutoScalerProfile::default();
                        *slot(&mut p) = value.clone();
                        let accepted = validate(&p).is_empty();
                        assert_eq!(re.is_match(&value), accepted, "{field} = {value:?}");
                    }
                }
            }
        }
        let re = regex::Regex::new(THRESHOLD_PATTERN).unwrap();
        for value in [
            "0",
            "0.5",
            "1",
            "1.000000",
            "1.5",
            "2",
            ".5",
            "0.",
            "0.1234567",
            "00.5",
        ] {
            let p = AutoScalerProfile {
                scale_down_utilization_threshold: value.into(),
                ..AutoScalerProfile::default()
            };
            assert_eq!(re.is_match(value), validate(&p).is_empty(), "{value:?}");
        }
    }

    #[test]
    fn the_brief_s_example_message() {
        let p = AutoScalerProfile {
            scan_interval: "0s".into(),
            ..AutoScalerProfile::default()
        };
        assert_eq!(
            messages(&p),
            [
                "auto_scaler_profile.scan_interval: auto_scaler_profile.scan_interval \"0s\" is not allowed: must be between 1s and 10m"
            ]
        );
    }

    #[test]
    fn the_threshold_is_a_decimal_from_0_to_1() {
        for good in ["0", "0.5", "0.55", "1", "1.0", "0.000001", "0.999999"] {
            let p = AutoScalerProfile {
                scale_down_utilization_threshold: good.into(),
                ..AutoScalerProfile::default()
            };
            assert!(validate(&p).is_empty(), "{good}: {:?}", validate(&p));
        }
        for (bad, rule) in [
            ("1.5", "must be between 0 and 1"),
            ("2", "must be between 0 and 1"),
            ("1.000001", "must be between 0 and 1"),
            ("", "is not a decimal number"),
            (".5", "is not a decimal number"),
            ("0.", "is not a decimal number"),
            ("-0.5", "is not a decimal number"),
            ("50%", "is not a decimal number"),
            ("0.1234567", "is not a decimal number"),
            ("1e-1", "is not a decimal number"),
            ("00.5", "is not a decimal number"),
        ] {
            let p = AutoScalerProfile {
                scale_down_utilization_threshold: bad.into(),
                ..AutoScalerProfile::default()
            };
            let errors = validate(&p);
            assert_eq!(errors.len(), 1, "{bad}");
            assert_eq!(
                errors[0].target,
                "auto_scaler_profile.scale_down_utilization_threshold"
            );
            assert!(errors[0].message.contains(rule), "{bad}: {}", errors[0]);
            assert!(
                errors[0].message.contains(&format!("{bad:?}")),
                "{}",
                errors[0]
            );
        }
    }

    #[test]
    fn whole_numbers_are_checked_against_their_ranges() {
        type Slot = fn(&mut AutoScalerProfile) -> &mut i64;
        let cases: [(&str, Slot, i64, i64); 4] = [
            (
                "empty_bulk_delete_max",
                |p| &mut p.empty_bulk_delete_max,
                1,
                200,
            ),
            (
                "max_graceful_termination_sec",
                |p| &mut p.max_graceful_termination_sec,
                0,
                86_400,
            ),
            ("max_unready_nodes", |p| &mut p.max_unready_nodes, 0, 200),
            (
                "max_unready_percentage",
                |p| &mut p.max_unready_percentage,
                0,
                100,
            ),
        ];
        for (field, slot, min, max) in cases {
            for good in [min, max] {
                let mut p = AutoScalerProfile::default();
                *slot(&mut p) = good;
                assert!(validate(&p).is_empty(), "{field}={good}");
            }
            for bad in [min - 1, max + 1, i64::MIN] {
                let mut p = AutoScalerProfile::default();
                *slot(&mut p) = bad;
                let errors = validate(&p);
                assert_eq!(errors.len(), 1, "{field}={bad}");
                assert_eq!(errors[0].target, format!("auto_scaler_profile.{field}"));
                assert!(
                    errors[0].message.starts_with(&format!(
                        "auto_scaler_profile.{field} {bad} is not allowed: must be between {min} and {max}"
                    )),
                    "{}",
                    errors[0]
                );
            }
        }
    }

    #[test]
    fn every_bad_setting_is_reported_at_once() {
        let p = AutoScalerProfile {
            scan_interval: "0s".into(),
            scale_down_utilization_threshold: "2".into(),
            max_unready_percentage: 101,
            ..AutoScalerProfile::default()
        };
        let targets: Vec<_> = validate(&p).into_iter().map(|e| e.target).collect();
        assert_eq!(
            targets,
            [
                "auto_scaler_profile.scan_interval",
                "auto_scaler_profile.scale_down_utilization_threshold",
                "auto_scaler_profile.max_unready_percentage",
            ]
        );
    }
}
