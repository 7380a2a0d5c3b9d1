//! The catalogues every driver serves — Kubernetes versions and VM sizes —
//! as their config files spell them (`[[kubernetes_versions]]`,
//! `[[vm_sizes]]`), with the built-in defaults and the checks that name
//! the key and the value. The sim's and the agents' config files share it.
//!
//! Each version may name its node images (`images = [{ os_type, os_sku?,
//! image }]`); where each is ready comes from the driver ([`Readiness`]).
//! Readiness is per OS SKU (`ready_for_skus`); an OS type is `ready_for`
//! when its default SKU is ready (see [`hybrid_api::catalog`]).

use std::collections::{BTreeMap, BTreeSet};

use hybrid_api::catalog::{NodeImage, Semver, image_for, upgrade_targets};
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
    /// OS types whose node images are ready, for every SKU of each (the
    /// sim; default both). The agents driver derives readiness from
    /// `images` and refuses the key.
    #[serde(default)]
    pub ready_for: Option<Vec<OsType>>,
    /// The OS SKUs whose node images are ready (the sim), e.g.
    /// `["CBLMariner", "AzureLinux", "Windows2022"]` for a version not yet
    /// ready for `Windows2019`; instead of `ready_for`. The agents driver
    /// refuses the key.
    #[serde(default)]
    pub ready_for_skus: Option<Vec<String>>,
    /// Node images per OS type (and SKU).
    #[serde(default)]
    pub images: Vec<ImageEntry>,
}

/// One `images` entry of a version: the image VMs of `os_type` (and
/// `os_sku`, when given) boot from.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageEntry {
    pub os_type: OsType,
    /// Absent = every SKU of `os_type` without an image of its own.
    #[serde(default)]
    pub os_sku: Option<String>,
    /// Image name: the agent's `IMAGE_DIR/{image}/` directory.
    pub image: String,
}

/// Where a driver's node images are ready.
pub enum Readiness<'a> {
    /// Every image is ready on every one of these (up) hosts; the SKUs
    /// ready are the version's `ready_for_skus`, else every SKU of its
    /// `ready_for` OSes (default: all), and a version without `images`
    /// gets one per ready SKU, named `{os}-{sku}-{version}`.
    Everywhere(&'a [String]),
    /// Up hosts and the image names each has; a SKU is ready where the
    /// image its VMs get is ready on at least one of them.
    Hosts(&'a BTreeMap<String, BTreeSet<String>>),
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
/// upgrade paths and image readiness filled.
pub fn kubernetes_versions(
    entries: Option<&[VersionEntry]>,
    readiness: &Readiness<'_>,
) -> Vec<KubernetesVersion> {
    let entries = match entries {
        Some(list) => list.to_vec(),
        None => default_versions(),
    };
    let mut out: Vec<KubernetesVersion> =
        entries.into_iter().map(|e| version(e, readiness)).collect();
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

fn version(e: VersionEntry, readiness: &Readiness<'_>) -> KubernetesVersion {
    let node_image = |i: &ImageEntry, ready_on: Vec<String>, hosts: usize| NodeImage {
        os_type: i.os_type,
        os_sku: i.os_sku.clone(),
        image: i.image.clone(),
        ready_hosts: count(ready_on.len()),
        hosts: count(hosts),
        ready_on,
    };
    let (images, ready): (Vec<NodeImage>, Vec<(OsType, &str)>) = match readiness {
        Readiness::Everywhere(hosts) => {
            let wanted: Vec<(OsType, &str)> = match &e.ready_for_skus {
                Some(skus) => all_skus()
                    .filter(|(_, sku)| skus.iter().any(|s| s == sku))
                    .collect(),
                None => {
                    let oses = e.ready_for.clone().unwrap_or_else(both_oses);
                    all_skus().filter(|(os, _)| oses.contains(os)).collect()
                }
            };
            let configured = match e.images.is_empty() {
                false => e.images.clone(),
                true => wanted
                    .iter()
                    .map(|(os, sku)| ImageEntry {
                        os_type: *os,
                        os_sku: Some(sku.to_string()),
                        image: format!("{}-{sku}-{}", os.as_str(), e.version),
                    })
                    .collect(),
            };
            let images: Vec<NodeImage> = configured
                .iter()
                .map(|i| node_image(i, hosts.to_vec(), hosts.len()))
                .collect();
            // Configured images are ready everywhere: a wanted SKU is ready
            // when one of them serves it.
            let ready = wanted
                .into_iter()
                .filter(|(os, sku)| image_for(&images, *os, sku).is_some())
                .collect();
            (images, ready)
        }
        Readiness::Hosts(up) => {
            let images: Vec<NodeImage> = e
                .images
                .iter()
                .map(|i| {
                    let on = up
                        .iter()
                        .filter(|(_, has)| has.contains(&i.image))
                        .map(|(h, _)| h.clone())
                        .collect();
                    node_image(i, on, up.len())
                })
                .collect();
            let ready = all_skus()
                .filter(|(os, sku)| image_for(&images, *os, sku).is_some_and(|i| i.ready_hosts > 0))
                .collect();
            (images, ready)
        }
    };
    KubernetesVersion {
        ready_for: both_oses()
            .into_iter()
            .filter(|os| ready.contains(&(*os, os.default_sku())))
            .collect(),
        ready_for_skus: ready.iter().map(|(_, sku)| sku.to_string()).collect(),
        version: e.version,
        supported: e.supported,
        upgrades: Vec::new(),
        images,
    }
}

/// Every (OS type, SKU), in catalogue order.
fn all_skus() -> impl Iterator<Item = (OsType, &'static str)> {
    both_oses()
        .into_iter()
        .flat_map(|os| os.skus().iter().map(move |sku| (os, *sku)))
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Whether `name` can be an image directory's name: one path component of
/// letters, digits, `.`, `_` and `-`, not starting with `.`.
pub fn is_image_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
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
            if let Some(skus) = &v.ready_for_skus {
                if v.ready_for.is_some() {
                    return Err(format!(
                        "kubernetes_versions[{i}] (version {:?}) sets both ready_for and ready_for_skus: give one (ready_for = every SKU of those OS types)",
                        v.version
                    ));
                }
                let known: Vec<&str> = all_skus().map(|(_, sku)| sku).collect();
                for (j, sku) in skus.iter().enumerate() {
                    if !known.contains(&sku.as_str()) {
                        return Err(format!(
                            "kubernetes_versions[{i}].ready_for_skus[{j}] {sku:?} is not an OS SKU; choose from {}",
                            known.join(", ")
                        ));
                    }
                }
            }
            let mut keys = BTreeSet::new();
            for (j, img) in v.images.iter().enumerate() {
                let at = format!("kubernetes_versions[{i}].images[{j}]");
                if !is_image_name(&img.image) {
                    return Err(format!(
                        "{at}.image {:?} is not an image name: use 1-128 letters, digits, '.', '_' or '-', not starting with '.' (the name of a directory in the agents' image directory)",
                        img.image
                    ));
                }
                if let Some(sku) = &img.os_sku
                    && !img.os_type.skus().contains(&sku.as_str())
                {
                    return Err(format!(
                        "{at}.os_sku {sku:?} is not a SKU of os_type {:?}; choose one of {}",
                        img.os_type.as_str(),
                        img.os_type.skus().join(", ")
                    ));
                }
                if !keys.insert((img.os_type, img.os_sku.clone())) {
                    return Err(format!(
                        "{at}: version {:?} already has an image for os_type {:?}{}: one image per OS type (and SKU)",
                        v.version,
                        img.os_type.as_str(),
                        img.os_sku
                            .as_deref()
                            .map(|s| format!(", os_sku {s:?}"))
                            .unwrap_or_default()
                    ));
                }
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
        ready_for: Some(ready_for.to_vec()),
        ready_for_skus: None,
        images: Vec::new(),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(toml_text: &str) -> Vec<VersionEntry> {
        #[derive(Deserialize)]
        struct File {
            kubernetes_versions: Vec<VersionEntry>,
        }
        toml::from_str::<File>(toml_text)
            .unwrap()
            .kubernetes_versions
    }

    const TWO: &str = r#"
[[kubernetes_versions]]
version = "1.32.3"
images = [
  { os_type = "linux", image = "k8s-1.32.3" },
  { os_type = "linux", os_sku = "AzureLinux", image = "k8s-1.32.3-azl" },
]
[[kubernetes_versions]]
version = "1.33.1"
images = [{ os_type = "linux", image = "k8s-1.33.1" }]
"#;

    #[test]
    fn images_are_checked_naming_key_and_value() {
        assert!(validate(Some(&entries(TWO)), None).is_ok());
        for (text, wants) in [
            (
                TWO.replace("\"k8s-1.33.1\"", "\"../etc\""),
                "kubernetes_versions[1].images[0].image \"../etc\" is not an image name",
            ),
            (
                TWO.replace("\"AzureLinux\"", "\"Windows2022\""),
                "kubernetes_versions[0].images[1].os_sku \"Windows2022\" is not a SKU of os_type \"linux\"",
            ),
            (
                TWO.replace("os_sku = \"AzureLinux\", ", ""),
                "kubernetes_versions[0].images[1]: version \"1.32.3\" already has an image for os_type \"linux\"",
            ),
        ] {
            let e = validate(Some(&entries(&text)), None).unwrap_err();
            assert!(e.contains(wants), "{e}");
        }
        // Unknown keys of an image entry are refused, by name.
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct File {
            kubernetes_versions: Vec<VersionEntry>,
        }
        let e = toml::from_str::<File>(
            &TWO.replace("image = \"k8s-1.33.1\"", "image = \"x\", os = \"linux\""),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("unknown field `os`"), "{e}");
    }

    #[test]
    fn readiness_counts_up_hosts_with_the_image() {
        let up: BTreeMap<String, BTreeSet<String>> = [
            ("host-a", vec!["k8s-1.32.3", "k8s-1.33.1"]),
            ("host-b", vec!["k8s-1.32.3"]),
            ("host-c", vec![]),
        ]
        .into_iter()
        .map(|(h, i)| (h.to_string(), i.into_iter().map(String::from).collect()))
        .collect();
        let v = kubernetes_versions(Some(&entries(TWO)), &Readiness::Hosts(&up));
        let (v132, v133) = (&v[0], &v[1]);
        let linux = v132.image_for(OsType::Linux, "CBLMariner").unwrap();
        assert_eq!(linux.image, "k8s-1.32.3");
        assert_eq!((linux.ready_hosts, linux.hosts), (2, 3));
        assert_eq!(linux.ready_on, ["host-a", "host-b"]);
        let azl = v132.image_for(OsType::Linux, "AzureLinux").unwrap();
        assert_eq!((azl.image.as_str(), azl.ready_hosts), ("k8s-1.32.3-azl", 0));
        assert!(v132.image_for(OsType::Windows, "Windows2022").is_none());
        // Ready for an OS = one of its images is ready somewhere; no
        // Windows image is configured, so not Windows.
        assert_eq!(v132.ready_for, [OsType::Linux]);
        assert_eq!(
            v133.image_for(OsType::Linux, "CBLMariner")
                .unwrap()
                .ready_on,
            ["host-a"]
        );
        assert_eq!(v132.upgrades, ["1.33.1"]);

        let nobody = BTreeMap::new();
        let v = kubernetes_versions(Some(&entries(TWO)), &Readiness::Hosts(&nobody));
        assert!(v.iter().all(|v| v.ready_for.is_empty()));
        assert_eq!(v[0].images[0].hosts, 0);
    }

    #[test]
    fn everywhere_names_an_image_per_ready_os_and_sku() {
        let hosts = ["host-1".to_string(), "host-2".to_string()];
        let v = kubernetes_versions(None, &Readiness::Everywhere(&hosts));
        let newest = v.last().unwrap();
        assert_eq!(newest.version, "1.33.2");
        assert_eq!(newest.ready_for, [OsType::Linux]);
        let names: Vec<&str> = newest.images.iter().map(|i| i.image.as_str()).collect();
        assert_eq!(
            names,
            ["linux-CBLMariner-1.33.2", "linux-AzureLinux-1.33.2"]
        );
        assert!(
            newest
                .images
                .iter()
                .all(|i| i.ready_hosts == 2 && i.hosts == 2 && i.ready_on == hosts)
        );
        assert_eq!(newest.ready_for_skus, ["CBLMariner", "AzureLinux"]);
        let v = kubernetes_versions(Some(&entries(TWO)), &Readiness::Everywhere(&hosts));
        assert_eq!(
            v[0].images.len(),
            2,
            "configured images are used as they are"
        );
        // Ready = a configured image serves the SKU: no Windows image.
        assert_eq!(v[0].ready_for, [OsType::Linux]);
        assert_eq!(v[0].ready_for_skus, ["CBLMariner", "AzureLinux"]);
    }

    #[test]
    fn the_sim_says_which_skus_are_ready() {
        let text = r#"
[[kubernetes_versions]]
version = "1.33.1"
ready_for_skus = ["CBLMariner", "Windows2022"]
[[kubernetes_versions]]
version = "1.33.2"
ready_for_skus = ["AzureLinux", "Windows2019"]
"#;
        let list = entries(text);
        assert!(validate(Some(&list), None).is_ok());
        let hosts = ["host-1".to_string()];
        let v = kubernetes_versions(Some(&list), &Readiness::Everywhere(&hosts));
        assert_eq!(v[0].ready_for_skus, ["CBLMariner", "Windows2022"]);
        assert_eq!(v[0].ready_for, [OsType::Linux, OsType::Windows]);
        assert!(v[0].ready_for_sku(OsType::Windows, "Windows2022"));
        assert!(!v[0].ready_for_sku(OsType::Windows, "Windows2019"));
        let names: Vec<&str> = v[0].images.iter().map(|i| i.image.as_str()).collect();
        assert_eq!(
            names,
            ["linux-CBLMariner-1.33.1", "windows-Windows2022-1.33.1"]
        );
        // Neither default SKU is ready, so neither OS type is ready_for.
        assert_eq!(v[1].ready_for_skus, ["AzureLinux", "Windows2019"]);
        assert!(v[1].ready_for.is_empty());

        for (bad, wants) in [
            (
                text.replace("\"Windows2022\"", "\"Windows2016\""),
                "kubernetes_versions[0].ready_for_skus[1] \"Windows2016\" is not an OS SKU; choose from CBLMariner, AzureLinux, Windows2019, Windows2022",
            ),
            (
                text.replace(
                    "version = \"1.33.2\"",
                    "version = \"1.33.2\"\nready_for = [\"linux\"]",
                ),
                "kubernetes_versions[1] (version \"1.33.2\") sets both ready_for and ready_for_skus",
            ),
        ] {
            let e = validate(Some(&entries(&bad)), None).unwrap_err();
            assert!(e.contains(wants), "{e}");
        }
    }

    #[test]
    fn agents_readiness_is_per_sku_image() {
        // A Windows2022 image on a host, no Windows2019 image anywhere.
        let text = r#"
[[kubernetes_versions]]
version = "1.33.1"
images = [
  { os_type = "linux", image = "k8s-1.33.1" },
  { os_type = "windows", os_sku = "Windows2022", image = "win22-1.33.1" },
  { os_type = "windows", os_sku = "Windows2019", image = "win19-1.33.1" },
]
"#;
        let up: BTreeMap<String, BTreeSet<String>> = [(
            "host-a".to_string(),
            ["k8s-1.33.1", "win22-1.33.1"].map(String::from).into(),
        )]
        .into();
        let v = kubernetes_versions(Some(&entries(text)), &Readiness::Hosts(&up));
        assert_eq!(
            v[0].ready_for_skus,
            ["CBLMariner", "AzureLinux", "Windows2022"]
        );
        assert_eq!(v[0].ready_for, [OsType::Linux, OsType::Windows]);
    }
}
