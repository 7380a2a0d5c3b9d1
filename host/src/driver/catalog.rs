//! The catalogues every driver serves — Kubernetes versions and VM sizes —
//! as their config files spell them (`[[kubernetes_versions]]`,
//! `[[vm_sizes]]`), with the built-in defaults and the checks that name
//! the key and the value. The sim's and the agents' config files share it.

use std::collections::BTreeSet;

use hybrid_api::catalog::{Semver, upgrade_targets};
use hybrid_api::{KubernetesVersion, OsType, VmSize};
use serde::Deserialize;

/// Default OS disk of a catalogue VM size.
pub const DEFAULT_VM_DISK_GIB: u64 = 128;

/// One `[[kubernetes_versions]]` entry.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VersionEntry {
    /// `MAJOR.MINOR.PATCH`.
    pub version: String,
    /// False = kept only so existing clusters can upgrade off it.
    #[serde(default = "yes")]
    pub supported: bool,
    /// OS types whose node images are ready; default both.
    #[serde(default = "both_oses")]
    pub ready_for: Vec<OsType>,
}

fn yes() -> bool {
    true
}

fn both_oses() -> Vec<OsType> {
    vec![OsType::Linux, OsType::Windows]
}

/// One `[[vm_sizes]]` entry.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SizeEntry {
    pub name: String,
    pub vcpus: u32,
    pub memory_mib: u64,
    #[serde(default = "default_vm_disk_gib")]
    pub disk_gib: u64,
}

fn default_vm_disk_gib() -> u64 {
    DEFAULT_VM_DISK_GIB
}

/// The Kubernetes catalogue (`None` = the built-in one), sorted by version,
/// upgrade paths filled.
pub fn kubernetes_versions(entries: Option<&[VersionEntry]>) -> Vec<KubernetesVersion> {
    let entries = match entries {
        Some(list) => list.to_vec(),
        None => default_versions(),
    };
    let mut out: Vec<KubernetesVersion> = entries
        .into_iter()
        .map(|e| KubernetesVersion {
            version: e.version,
            supported: e.supported,
            ready_for: e.ready_for,
            upgrades: Vec::new(),
        })
        .collect();
    out.sort_by_key(|v| Semver::parse(&v.version));
    let upgrades: Vec<Vec<String>> = out
        .iter()
        .map(|v| {
            upgrade_targets(&out, &v.version)
                .into_iter()
                .map(str::to_string)
                .collect()
        })
        .collect();
    for (v, u) in out.iter_mut().zip(upgrades) {
        v.upgrades = u;
    }
    out
}

/// The VM size catalogue (`None` = the built-in one), in file order.
pub fn vm_sizes(entries: Option<&[SizeEntry]>) -> Vec<VmSize> {
    match entries {
        Some(list) => list
            .iter()
            .map(|s| VmSize {
                name: s.name.clone(),
                vcpus: s.vcpus,
                memory_mib: s.memory_mib,
                disk_gib: s.disk_gib,
            })
            .collect(),
        None => default_vm_sizes(),
    }
}

/// Parseable, unique versions (at least one supported); unique, non-empty
/// sizes with non-zero amounts. The message names the key and the value.
pub fn validate(
    versions: Option<&[VersionEntry]>,
    sizes: Option<&[SizeEntry]>,
) -> Result<(), String> {
    if let Some(list) = versions {
        let mut seen = BTreeSet::new();
        for (i, v) in list.iter().enumerate() {
            if Semver::parse(&v.version).is_none() {
                return Err(format!(
                    "kubernetes_versions[{i}].version {:?} is not a MAJOR.MINOR.PATCH version (e.g. \"1.32.3\")",
                    v.version
                ));
            }
            if !seen.insert(v.version.as_str()) {
                return Err(format!(
                    "kubernetes_versions[{i}].version {:?} is listed twice: versions must be unique",
                    v.version
                ));
            }
        }
        if !list.iter().any(|v| v.supported) {
            return Err(
                "kubernetes_versions has no supported version: list at least one with supported = true (or leave kubernetes_versions out for the built-in catalogue)"
                    .into(),
            );
        }
    }
    if let Some(list) = sizes {
        if list.is_empty() {
            return Err(
                "vm_sizes is empty: list at least one size (or leave vm_sizes out for the built-in catalogue)"
                    .into(),
            );
        }
        let mut seen = BTreeSet::new();
        for (i, s) in list.iter().enumerate() {
            if s.name.trim().is_empty() {
                return Err(format!("vm_sizes[{i}].name is empty: give the size a name"));
            }
            if !seen.insert(s.name.as_str()) {
                return Err(format!(
                    "vm_sizes[{i}].name {:?} is listed twice: size names must be unique",
                    s.name
                ));
            }
            for (key, value) in [
                ("vcpus", u64::from(s.vcpus)),
                ("memory_mib", s.memory_mib),
                ("disk_gib", s.disk_gib),
            ] {
                if value == 0 {
                    return Err(format!(
                        "vm_sizes[{i}].{key} = 0 (size {:?}): must be greater than 0",
                        s.name
                    ));
                }
            }
        }
    }
    Ok(())
}

/// The built-in Kubernetes catalogue: three supported minors with two
/// patches each (the newest not yet ready for Windows), plus one
/// unsupported version kept so clusters can upgrade off it.
pub fn default_versions() -> Vec<VersionEntry> {
    let both = both_oses();
    let entry = |version: &str, supported: bool, ready_for: &[OsType]| VersionEntry {
        version: version.to_string(),
        supported,
        ready_for: ready_for.to_vec(),
    };
    vec![
        entry("1.30.12", false, &both),
        entry("1.31.7", true, &both),
        entry("1.31.9", true, &both),
        entry("1.32.3", true, &both),
        entry("1.32.5", true, &both),
        entry("1.33.1", true, &both),
        entry("1.33.2", true, &[OsType::Linux]),
    ]
}

/// The built-in VM size catalogue.
pub fn default_vm_sizes() -> Vec<VmSize> {
    [
        ("Standard_A2_v2", 2, 4096),
        ("Standard_A4_v2", 4, 8192),
        ("Standard_K8S3_v1", 4, 6144),
        ("Standard_D4s_v3", 4, 16384),
        ("Standard_D8s_v3", 8, 32768),
        ("Standard_D16s_v3", 16, 65536),
    ]
    .into_iter()
    .map(|(name, vcpus, memory_mib)| VmSize {
        name: name.to_string(),
        vcpus,
        memory_mib,
        disk_gib: DEFAULT_VM_DISK_GIB,
    })
    .collect()
}
