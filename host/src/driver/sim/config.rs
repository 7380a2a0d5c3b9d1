//! The `--sim` TOML file: the simulated datacenter's hosts, timings, fault
//! injection, catalogues (Kubernetes versions, VM sizes) and extensions
//! (timings, faults, versions added to the extension catalogue). Every key
//! has a default, unknown keys are refused, and the file is validated on
//! load with errors that name the key and the value.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use hybrid_api::catalog::Semver;
use hybrid_api::inventory::Resources;
use hybrid_api::{KubernetesVersion, VmSize};
use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Unexpected, Visitor};

use crate::driver::catalog;
pub use crate::driver::catalog::{
    DEFAULT_VM_DISK_GIB, SizeEntry, VersionEntry, default_versions, default_vm_sizes,
};

/// Default number of hosts.
pub const DEFAULT_HOSTS: u32 = 4;
/// Default host shape.
pub const DEFAULT_HOST_VCPUS: u32 = 32;
pub const DEFAULT_HOST_MEMORY_GIB: u64 = 128;
pub const DEFAULT_HOST_DISK_GIB: u64 = 2048;
/// Default extra boot delay for `faults.slow_vms`.
pub const DEFAULT_SLOW_MS: u64 = 10_000;

/// Contents of the `--sim` TOML file. Every field has a default.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SimConfig {
    /// Physical hosts: a count of identical hosts, or a list.
    pub hosts: Hosts,
    /// Simulated durations.
    pub timings: Timings,
    /// Fault injection.
    pub faults: Faults,
    /// Kubernetes version catalogue; `None` = the built-in one.
    pub kubernetes_versions: Option<Vec<VersionEntry>>,
    /// VM size catalogue; `None` = the built-in one.
    pub vm_sizes: Option<Vec<SizeEntry>>,
    /// Extension timings, faults and extra catalogue versions.
    pub extensions: ExtensionsSim,
    /// Keep an ordered journal of VM operations (create, boot outcome,
    /// delete) in the state file, for tests that check the order in which
    /// the service drives the datacenter (see [`super::read_journal`]).
    /// Off by default: a long-running datacenter would only grow it.
    pub journal: bool,
}

/// Default duration of a simulated extension install.
pub const DEFAULT_EXTENSION_INSTALL_MS: u64 = 100;
/// Default duration of a simulated extension upgrade or reconfiguration.
pub const DEFAULT_EXTENSION_UPGRADE_MS: u64 = 100;
/// Default duration of a simulated extension removal.
pub const DEFAULT_EXTENSION_DELETE_MS: u64 = 50;

/// The `[extensions]` table.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExtensionsSim {
    /// Installing an extension, in milliseconds.
    pub install_ms: u64,
    /// Changing an installed extension's version or settings.
    pub upgrade_ms: u64,
    /// Removing an extension.
    pub delete_ms: u64,
    /// Extension names or types whose install (or upgrade) fails.
    pub fail_install: Vec<String>,
    /// Extension names or types that cannot be removed.
    pub stuck_delete: Vec<String>,
    /// Versions added to the extension-type catalogue.
    pub versions: Vec<ExtensionVersionsEntry>,
}

impl Default for ExtensionsSim {
    fn default() -> Self {
        ExtensionsSim {
            install_ms: DEFAULT_EXTENSION_INSTALL_MS,
            upgrade_ms: DEFAULT_EXTENSION_UPGRADE_MS,
            delete_ms: DEFAULT_EXTENSION_DELETE_MS,
            fail_install: Vec::new(),
            stuck_delete: Vec::new(),
            versions: Vec::new(),
        }
    }
}

impl ExtensionsSim {
    fn matches(list: &[String], name: &str, extension_type: &str) -> bool {
        list.iter().any(|e| e == name || e == extension_type)
    }

    pub fn install_fails(&self, name: &str, extension_type: &str) -> bool {
        Self::matches(&self.fail_install, name, extension_type)
    }

    pub fn delete_sticks(&self, name: &str, extension_type: &str) -> bool {
        Self::matches(&self.stuck_delete, name, extension_type)
    }
}

/// One `[[extensions.versions]]` entry: versions added to a release train.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtensionVersionsEntry {
    /// A type of the built-in catalogue, e.g. `flux`.
    pub extension_type: String,
    /// The train; one the type does not have yet is added.
    #[serde(default = "stable_train")]
    pub release_train: String,
    /// `MAJOR.MINOR.PATCH` versions.
    pub versions: Vec<String>,
}

fn stable_train() -> String {
    hybrid_api::extension::DEFAULT_RELEASE_TRAIN.to_string()
}

/// `hosts = 4` or `hosts = [{ name = "rack1-a", vcpus = 64 }, …]`.
#[derive(Debug, Clone, PartialEq)]
pub enum Hosts {
    /// That many hosts of the default shape, named `host-1`…`host-N`.
    Count(u32),
    /// Hosts listed one by one.
    List(Vec<HostEntry>),
}

impl Default for Hosts {
    fn default() -> Self {
        Hosts::Count(DEFAULT_HOSTS)
    }
}

impl<'de> Deserialize<'de> for Hosts {
    // By hand rather than `#[serde(untagged)]`, so that a bad host table
    // reports its own error instead of "did not match any variant".
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct HostsVisitor;
        impl<'de> Visitor<'de> for HostsVisitor {
            type Value = Hosts;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(
                    "a number of hosts (e.g. 4) or an array of host tables { name, vcpus, memory_gib, disk_gib }",
                )
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Hosts, E> {
                u32::try_from(v)
                    .map(Hosts::Count)
                    .map_err(|_| E::invalid_value(Unexpected::Signed(v), &self))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Hosts, E> {
                u32::try_from(v)
                    .map(Hosts::Count)
                    .map_err(|_| E::invalid_value(Unexpected::Unsigned(v), &self))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Hosts, A::Error> {
                let mut hosts = Vec::new();
                while let Some(h) = seq.next_element::<HostEntry>()? {
                    hosts.push(h);
                }
                Ok(Hosts::List(hosts))
            }
        }
        d.deserialize_any(HostsVisitor)
    }
}

/// One host of the `hosts` array.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostEntry {
    /// Default `host-N` (N = position, from 1).
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default = "default_host_vcpus")]
    pub vcpus: u32,
    #[serde(default = "default_host_memory_gib")]
    pub memory_gib: u64,
    #[serde(default = "default_host_disk_gib")]
    pub disk_gib: u64,
}

fn default_host_vcpus() -> u32 {
    DEFAULT_HOST_VCPUS
}
fn default_host_memory_gib() -> u64 {
    DEFAULT_HOST_MEMORY_GIB
}
fn default_host_disk_gib() -> u64 {
    DEFAULT_HOST_DISK_GIB
}

/// A physical host with its names and defaults resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimHost {
    pub name: String,
    pub vcpus: u32,
    pub memory_gib: u64,
    pub disk_gib: u64,
}

impl SimHost {
    pub fn capacity(&self) -> Resources {
        Resources {
            vcpus: self.vcpus,
            memory_mib: self.memory_gib.saturating_mul(1024),
            disk_gib: self.disk_gib,
        }
    }
}

/// Simulated durations, in milliseconds (all zero by default).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Timings {
    /// Configuring or removing a virtual network.
    pub network_ms: u64,
    /// Downloading a node image to a host, the first time a host uses it.
    pub image_download_ms: u64,
    /// Booting a VM (create or start).
    pub vm_boot_ms: u64,
    /// Deleting a VM.
    pub vm_delete_ms: u64,
}

/// Injected failures.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Faults {
    /// Vnet names whose network setup fails.
    pub fail_networks: Vec<String>,
    /// VM name prefixes whose boot fails (the VM is left `Failed`).
    pub fail_boot: Vec<String>,
    /// Hosts that are down: they accept no VMs, their VMs report `Stopped`
    /// and their free capacity is zero.
    pub hosts_down: Vec<String>,
    /// VM name prefixes whose boot takes `slow_ms` longer.
    pub slow_vms: Vec<String>,
    /// Extra boot delay for `slow_vms`, in milliseconds.
    pub slow_ms: u64,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            fail_networks: Vec::new(),
            fail_boot: Vec::new(),
            hosts_down: Vec::new(),
            slow_vms: Vec::new(),
            slow_ms: DEFAULT_SLOW_MS,
        }
    }
}

impl Faults {
    pub fn boot_fails(&self, vm: &str) -> bool {
        self.fail_boot.iter().any(|p| vm.starts_with(p.as_str()))
    }

    pub fn is_slow(&self, vm: &str) -> bool {
        self.slow_vms.iter().any(|p| vm.starts_with(p.as_str()))
    }

    pub fn host_down(&self, host: &str) -> bool {
        self.hosts_down.iter().any(|h| h == host)
    }
}

/// Why the sim file (or the simulated datacenter's state) cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("cannot read sim file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("sim file {path} is invalid: {message}")]
    Parse { path: String, message: String },
    #[error("simulated datacenter configuration is invalid: {0}")]
    Invalid(String),
    #[error("cannot open the simulated datacenter's state {path}: {message}")]
    State { path: String, message: String },
}

impl SimConfig {
    /// Reads, parses and validates a sim TOML file.
    pub fn load(path: &Path) -> Result<Self, SimError> {
        let text = std::fs::read_to_string(path).map_err(|source| SimError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let parse = |message: String| SimError::Parse {
            path: path.display().to_string(),
            message,
        };
        let config: SimConfig = toml::from_str(&text).map_err(|e| parse(e.to_string()))?;
        config.validate().map_err(parse)?;
        Ok(config)
    }

    /// Parses and validates sim TOML text.
    pub fn parse(text: &str) -> Result<Self, SimError> {
        let config: SimConfig =
            toml::from_str(text).map_err(|e| SimError::Invalid(e.to_string()))?;
        config.validate().map_err(SimError::Invalid)?;
        Ok(config)
    }

    /// The hosts, names and shapes resolved.
    pub fn host_list(&self) -> Vec<SimHost> {
        match &self.hosts {
            Hosts::Count(n) => (1..=*n)
                .map(|i| SimHost {
                    name: format!("host-{i}"),
                    vcpus: DEFAULT_HOST_VCPUS,
                    memory_gib: DEFAULT_HOST_MEMORY_GIB,
                    disk_gib: DEFAULT_HOST_DISK_GIB,
                })
                .collect(),
            Hosts::List(list) => list
                .iter()
                .enumerate()
                .map(|(i, h)| SimHost {
                    name: h.name.clone().unwrap_or_else(|| format!("host-{}", i + 1)),
                    vcpus: h.vcpus,
                    memory_gib: h.memory_gib,
                    disk_gib: h.disk_gib,
                })
                .collect(),
        }
    }

    /// The Kubernetes catalogue, sorted by version, upgrade paths filled;
    /// every image is ready on every up host.
    pub fn kubernetes_versions(&self) -> Vec<KubernetesVersion> {
        let up: Vec<String> = self
            .host_list()
            .into_iter()
            .map(|h| h.name)
            .filter(|h| !self.faults.host_down(h))
            .collect();
        catalog::kubernetes_versions(
            self.kubernetes_versions.as_deref(),
            &catalog::Readiness::Everywhere(&up),
        )
    }

    /// The VM size catalogue, in file order.
    pub fn vm_sizes(&self) -> Vec<VmSize> {
        catalog::vm_sizes(self.vm_sizes.as_deref())
    }

    /// The extension-type catalogue: the built-in one plus
    /// `[[extensions.versions]]`.
    pub fn extension_types(&self) -> Vec<hybrid_api::extension::ExtensionType> {
        let extra: Vec<crate::extension_types::ExtraVersions> = self
            .extensions
            .versions
            .iter()
            .map(|e| crate::extension_types::ExtraVersions {
                extension_type: e.extension_type.clone(),
                release_train: e.release_train.clone(),
                versions: e.versions.clone(),
            })
            .collect();
        crate::extension_types::with_extra_versions(&extra)
    }

    /// Checks what the types cannot: at least one host, unique names,
    /// non-zero capacities, parseable versions, known hosts in faults.
    /// The message names the key and the value.
    pub fn validate(&self) -> Result<(), String> {
        match &self.hosts {
            Hosts::Count(0) => {
                return Err("hosts = 0: the datacenter needs at least one host".into());
            }
            Hosts::List(list) if list.is_empty() => {
                return Err("hosts = []: the datacenter needs at least one host".into());
            }
            Hosts::List(list) => {
                for (i, h) in list.iter().enumerate() {
                    if h.name.as_deref().is_some_and(|n| n.trim().is_empty()) {
                        return Err(format!("hosts[{i}].name is empty: give the host a name"));
                    }
                    for (key, value) in [
                        ("vcpus", u64::from(h.vcpus)),
                        ("memory_gib", h.memory_gib),
                        ("disk_gib", h.disk_gib),
                    ] {
                        if value == 0 {
                            return Err(format!("hosts[{i}].{key} = 0: must be greater than 0"));
                        }
                    }
                }
            }
            Hosts::Count(_) => {}
        }
        let hosts = self.host_list();
        let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
        for (i, h) in hosts.iter().enumerate() {
            if let Some(first) = seen.insert(h.name.as_str(), i) {
                return Err(format!(
                    "hosts[{i}].name {:?} is already the name of hosts[{first}]: host names must be unique",
                    h.name
                ));
            }
        }
        for h in &self.faults.hosts_down {
            if !seen.contains_key(h.as_str()) {
                return Err(format!(
                    "faults.hosts_down names {h:?}, which is not a host; hosts: {}",
                    hosts
                        .iter()
                        .map(|h| h.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        }

        catalog::validate(
            self.kubernetes_versions.as_deref(),
            self.vm_sizes.as_deref(),
        )?;
        self.validate_extensions()
    }

    fn validate_extensions(&self) -> Result<(), String> {
        let types = crate::extension_types::builtin();
        for (i, e) in self.extensions.versions.iter().enumerate() {
            let Some(ty) = types.iter().find(|t| t.name == e.extension_type) else {
                return Err(format!(
                    "extensions.versions[{i}].extension_type {:?} is not an extension type; types: {}",
                    e.extension_type,
                    types
                        .iter()
                        .map(|t| t.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            };
            if let Err(err) = hybrid_api::validate::dns_label("release_train", &e.release_train) {
                return Err(format!(
                    "extensions.versions[{i}].release_train {:?} ({}): {}",
                    e.release_train, ty.name, err.message
                ));
            }
            if e.versions.is_empty() {
                return Err(format!(
                    "extensions.versions[{i}].versions is empty: list at least one version to add to {} {}",
                    ty.name, e.release_train
                ));
            }
            for (j, v) in e.versions.iter().enumerate() {
                if Semver::parse(v).is_none() {
                    return Err(format!(
                        "extensions.versions[{i}].versions[{j}] {v:?} is not a MAJOR.MINOR.PATCH version (e.g. \"1.15.2\")"
                    ));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hybrid_api::OsType;
    use std::collections::BTreeSet;

    fn parse(text: &str) -> Result<SimConfig, String> {
        SimConfig::parse(text).map_err(|e| e.to_string())
    }

    #[test]
    fn empty_file_gives_defaults() {
        let c = parse("").unwrap();
        assert_eq!(c, SimConfig::default());
        let hosts = c.host_list();
        assert_eq!(hosts.len(), 4);
        assert_eq!(hosts[0].name, "host-1");
        assert_eq!(hosts[3].name, "host-4");
        assert_eq!(
            hosts[0].capacity(),
            Resources {
                vcpus: 32,
                memory_mib: 128 * 1024,
                disk_gib: 2048
            }
        );
        assert_eq!(c.timings, Timings::default());
        assert_eq!(c.timings.vm_boot_ms, 0);
        assert_eq!(c.faults.slow_ms, DEFAULT_SLOW_MS);
    }

    #[test]
    fn host_count_form() {
        let c = parse("hosts = 2\n").unwrap();
        let names: Vec<String> = c.host_list().into_iter().map(|h| h.name).collect();
        assert_eq!(names, ["host-1", "host-2"]);
        let e = parse("hosts = 0\n").unwrap_err();
        assert!(e.contains("hosts = 0"), "{e}");
        let e = parse("hosts = -1\n").unwrap_err();
        assert!(e.contains("hosts"), "{e}");
        let e = parse("hosts = \"four\"\n").unwrap_err();
        assert!(e.contains("number of hosts"), "{e}");
    }

    #[test]
    fn host_array_forms() {
        let c = parse(
            "hosts = [{ name = \"rack1-a\", vcpus = 64, memory_gib = 256, disk_gib = 4096 }, { vcpus = 8 }]\n",
        )
        .unwrap();
        let hosts = c.host_list();
        assert_eq!(
            hosts,
            [
                SimHost {
                    name: "rack1-a".into(),
                    vcpus: 64,
                    memory_gib: 256,
                    disk_gib: 4096
                },
                SimHost {
                    name: "host-2".into(),
                    vcpus: 8,
                    memory_gib: 128,
                    disk_gib: 2048
                },
            ]
        );
        // Array-of-tables spelling.
        let c =
            parse("[[hosts]]\nname = \"a\"\n[[hosts]]\nname = \"b\"\nmemory_gib = 64\n").unwrap();
        assert_eq!(c.host_list()[1].memory_gib, 64);
    }

    #[test]
    fn rejects_unknown_keys_everywhere() {
        for (text, key) in [
            ("bogus = 1\n", "bogus"),
            ("[timings]\nboot_ms = 1\n", "boot_ms"),
            ("[faults]\nfail_vms = []\n", "fail_vms"),
            ("hosts = [{ name = \"a\", cpus = 4 }]\n", "cpus"),
            (
                "[[kubernetes_versions]]\nversion = \"1.32.3\"\nupgrades = []\n",
                "upgrades",
            ),
            (
                "[[vm_sizes]]\nname = \"x\"\nvcpus = 1\nmemory_mib = 1\nram = 1\n",
                "ram",
            ),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.contains(key), "{text}: {e}");
        }
    }

    #[test]
    fn validation_names_key_and_value() {
        for (text, want) in [
            (
                "hosts = [{ name = \"a\" }, { name = \"a\" }]\n",
                "hosts[1].name \"a\" is already the name of hosts[0]",
            ),
            (
                "hosts = [{ name = \"a\", vcpus = 0 }]\n",
                "hosts[0].vcpus = 0",
            ),
            ("hosts = [{ memory_gib = 0 }]\n", "hosts[0].memory_gib = 0"),
            ("hosts = []\n", "hosts = []"),
            (
                "[faults]\nhosts_down = [\"host-9\"]\n",
                "faults.hosts_down names \"host-9\", which is not a host; hosts: host-1, host-2, host-3, host-4",
            ),
            (
                "[[kubernetes_versions]]\nversion = \"1.32\"\n",
                "kubernetes_versions[0].version \"1.32\" is not a MAJOR.MINOR.PATCH",
            ),
            (
                "[[kubernetes_versions]]\nversion = \"1.32.1\"\n[[kubernetes_versions]]\nversion = \"1.32.1\"\n",
                "kubernetes_versions[1].version \"1.32.1\" is listed twice",
            ),
            (
                "[[kubernetes_versions]]\nversion = \"1.32.1\"\nsupported = false\n",
                "no supported version",
            ),
            (
                "[[vm_sizes]]\nname = \"s\"\nvcpus = 1\nmemory_mib = 1\n[[vm_sizes]]\nname = \"s\"\nvcpus = 1\nmemory_mib = 1\n",
                "vm_sizes[1].name \"s\" is listed twice",
            ),
            (
                "[[vm_sizes]]\nname = \"s\"\nvcpus = 0\nmemory_mib = 1\n",
                "vm_sizes[0].vcpus = 0",
            ),
            ("vm_sizes = []\n", "vm_sizes is empty"),
            (
                "[[kubernetes_versions]]\nversion = \"1.32.1\"\nready_for = [\"macos\"]\n",
                "macos",
            ),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.contains(want), "{text}: {e}");
        }
    }

    #[test]
    fn load_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sim.toml");
        std::fs::write(&path, "hosts = 0\n").unwrap();
        let e = SimConfig::load(&path).unwrap_err().to_string();
        assert!(e.contains("sim.toml") && e.contains("hosts = 0"), "{e}");
        let e = SimConfig::load(&dir.path().join("missing.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot read sim file"), "{e}");
        std::fs::write(&path, "[timings]\nnetwork_ms = 5\nvm_boot_ms = 7\n").unwrap();
        let c = SimConfig::load(&path).unwrap();
        assert_eq!((c.timings.network_ms, c.timings.vm_boot_ms), (5, 7));
    }

    #[test]
    fn default_kubernetes_catalogue() {
        let c = SimConfig::default().kubernetes_versions();
        let supported: Vec<&str> = c
            .iter()
            .filter(|v| v.supported)
            .map(|v| v.version.as_str())
            .collect();
        assert_eq!(
            supported,
            ["1.31.7", "1.31.9", "1.32.3", "1.32.5", "1.33.1", "1.33.2"]
        );
        let minors: BTreeSet<u32> = supported
            .iter()
            .filter_map(|v| Semver::parse(v))
            .map(|s| s.minor)
            .collect();
        assert_eq!(minors.len(), 3);
        // Sorted by version, the unsupported one first.
        assert_eq!(c[0].version, "1.30.12");
        assert!(!c[0].supported);
        assert_eq!(c[0].upgrades, ["1.31.7", "1.31.9"]);
        let by = |v: &str| c.iter().find(|e| e.version == v).unwrap();
        assert_eq!(by("1.31.7").upgrades, ["1.31.9", "1.32.3", "1.32.5"]);
        assert_eq!(by("1.32.5").upgrades, ["1.33.1", "1.33.2"]);
        assert_eq!(by("1.33.1").upgrades, ["1.33.2"]);
        assert!(by("1.33.2").upgrades.is_empty());
        assert_eq!(by("1.33.2").ready_for, [OsType::Linux]);
        assert_eq!(by("1.33.1").ready_for, [OsType::Linux, OsType::Windows]);
        assert_eq!(
            hybrid_api::catalog::newest_supported(&c, &[OsType::Linux, OsType::Windows]),
            Some("1.33.1")
        );
    }

    #[test]
    fn default_and_custom_vm_sizes() {
        let sizes = SimConfig::default().vm_sizes();
        let k8s3 = sizes.iter().find(|s| s.name == "Standard_K8S3_v1").unwrap();
        assert_eq!((k8s3.vcpus, k8s3.memory_mib, k8s3.disk_gib), (4, 6144, 128));
        assert_eq!(sizes.len(), 6);
        let c = parse("[[vm_sizes]]\nname = \"tiny\"\nvcpus = 1\nmemory_mib = 512\n").unwrap();
        assert_eq!(
            c.vm_sizes(),
            [VmSize {
                name: "tiny".into(),
                vcpus: 1,
                memory_mib: 512,
                disk_gib: 128
            }]
        );
    }

    #[test]
    fn extensions_table() {
        let c = parse("").unwrap();
        assert_eq!(c.extensions, ExtensionsSim::default());
        assert_eq!(c.extensions.install_ms, DEFAULT_EXTENSION_INSTALL_MS);
        let c = parse(
            "[extensions]\ninstall_ms = 0\nupgrade_ms = 5\ndelete_ms = 0\nfail_install = [\"defender\"]\nstuck_delete = [\"pol1\"]\n[[extensions.versions]]\nextension_type = \"flux\"\nversions = [\"1.15.2\"]\n",
        )
        .unwrap();
        assert!(c.extensions.install_fails("def1", "defender"));
        assert!(!c.extensions.install_fails("flux", "flux"));
        assert!(c.extensions.delete_sticks("pol1", "policy"));
        let flux = c
            .extension_types()
            .into_iter()
            .find(|t| t.name == "flux")
            .unwrap();
        assert_eq!(flux.release_trains[0].versions.last().unwrap(), "1.15.2");
        for (text, want) in [
            (
                "[[extensions.versions]]\nextension_type = \"fluxx\"\nversions = [\"1.0.0\"]\n",
                "extensions.versions[0].extension_type \"fluxx\" is not an extension type",
            ),
            (
                "[[extensions.versions]]\nextension_type = \"flux\"\nversions = [\"1.0\"]\n",
                "extensions.versions[0].versions[0] \"1.0\" is not a MAJOR.MINOR.PATCH",
            ),
            (
                "[[extensions.versions]]\nextension_type = \"flux\"\nversions = []\n",
                "extensions.versions[0].versions is empty",
            ),
            ("[extensions]\ninstall_secs = 1\n", "install_secs"),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.contains(want), "{text}: {e}");
        }
    }

    #[test]
    fn custom_kubernetes_catalogue() {
        let c = parse(
            "[[kubernetes_versions]]\nversion = \"1.2.4\"\nready_for = [\"linux\"]\n[[kubernetes_versions]]\nversion = \"1.2.3\"\n",
        )
        .unwrap();
        let v = c.kubernetes_versions();
        assert_eq!(v[0].version, "1.2.3");
        assert_eq!(v[0].upgrades, ["1.2.4"]);
        assert_eq!(v[1].ready_for, [OsType::Linux]);
        assert!(v[1].supported);
        // Per-SKU readiness: 1.2.4 ready for Windows2022, not Windows2019.
        let c = parse(
            "[[kubernetes_versions]]\nversion = \"1.2.4\"\nready_for_skus = [\"CBLMariner\", \"Windows2022\"]\n",
        )
        .unwrap();
        let v = c.kubernetes_versions();
        assert_eq!(v[0].ready_for_skus, ["CBLMariner", "Windows2022"]);
        assert!(!v[0].ready_for_sku(OsType::Windows, "Windows2019"));
        let e =
            parse("[[kubernetes_versions]]\nversion = \"1.2.4\"\nready_for_skus = [\"Ubuntu\"]\n")
                .unwrap_err();
        assert!(
            e.contains("ready_for_skus[0] \"Ubuntu\" is not an OS SKU"),
            "{e}"
        );
    }
}
