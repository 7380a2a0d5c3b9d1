//! Catalogues the service serves and admission uses: Kubernetes versions
//! (`/v1/kubernetes-versions`) and VM sizes (`/v1/vm-sizes`), plus the
//! version rules both the provider (at plan time) and the service apply.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::nodepool::OsType;

/// One Kubernetes version of the catalogue.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Eq)]
pub struct KubernetesVersion {
    /// `MAJOR.MINOR.PATCH`, e.g. `1.32.3`.
    pub version: String,
    /// False for versions kept only so existing clusters can upgrade off them.
    pub supported: bool,
    /// OS types whose node images are ready for this version.
    pub ready_for: Vec<OsType>,
    /// Versions a cluster on this one may upgrade to (same minor, higher
    /// patch; or the next minor).
    #[serde(default)]
    pub upgrades: Vec<String>,
    /// Node images of this version, per OS type (and OS SKU where one is
    /// named), with the up hosts that have each ready.
    #[serde(default)]
    pub images: Vec<NodeImage>,
}

impl KubernetesVersion {
    /// The node image VMs of `os`/`sku` get: the entry naming that SKU,
    /// else the OS's entry without a SKU.
    pub fn image_for(&self, os: OsType, sku: &str) -> Option<&NodeImage> {
        let of_os = || self.images.iter().filter(move |i| i.os_type == os);
        of_os()
            .find(|i| i.os_sku.as_deref() == Some(sku))
            .or_else(|| of_os().find(|i| i.os_sku.is_none()))
    }
}

/// One node image of a Kubernetes version and where it is ready.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Eq)]
pub struct NodeImage {
    pub os_type: OsType,
    /// The OS SKU it is for; absent = every SKU of `os_type` without an
    /// image of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_sku: Option<String>,
    /// Image name, as hosts know it (the agent's image directory name).
    pub image: String,
    /// Up hosts that have the image ready.
    pub ready_hosts: u32,
    /// Up hosts.
    pub hosts: u32,
    /// Names of the up hosts that have it ready.
    #[serde(default)]
    pub ready_on: Vec<String>,
}

impl NodeImage {
    /// `linux` or `linux/AzureLinux`, for messages.
    pub fn os_label(&self) -> String {
        match &self.os_sku {
            Some(sku) => format!("{}/{sku}", self.os_type.as_str()),
            None => self.os_type.as_str().to_string(),
        }
    }
}

/// A VM size.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Eq)]
pub struct VmSize {
    pub name: String,
    pub vcpus: u32,
    pub memory_mib: u64,
    /// OS disk, GiB.
    pub disk_gib: u64,
}

/// A parsed `MAJOR.MINOR.PATCH`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Semver {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl Semver {
    pub fn parse(s: &str) -> Option<Semver> {
        let s = s.strip_prefix('v').unwrap_or(s);
        let mut it = s.split('.').map(|p| {
            (!p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
                .then(|| p.parse::<u32>().ok())
                .flatten()
        });
        let v = Semver {
            major: it.next()??,
            minor: it.next()??,
            patch: it.next()??,
        };
        it.next().is_none().then_some(v)
    }
}

impl std::fmt::Display for Semver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// The versions `from` may move to, by the upgrade rule: a higher patch of
/// the same minor or any patch of the next minor, supported ones only.
pub fn upgrade_targets<'a>(catalog: &'a [KubernetesVersion], from: &str) -> Vec<&'a str> {
    let Some(f) = Semver::parse(from) else {
        return Vec::new();
    };
    let mut out: Vec<(Semver, &str)> = catalog
        .iter()
        .filter(|v| v.supported)
        .filter_map(|v| Some((Semver::parse(&v.version)?, v.version.as_str())))
        .filter(|(t, _)| {
            t.major == f.major
                && ((t.minor == f.minor && t.patch > f.patch) || t.minor == f.minor + 1)
        })
        .collect();
    out.sort();
    out.into_iter().map(|(_, s)| s).collect()
}

/// The newest supported version ready for every OS in `oses` (the default).
pub fn newest_supported<'a>(catalog: &'a [KubernetesVersion], oses: &[OsType]) -> Option<&'a str> {
    catalog
        .iter()
        .filter(|v| v.supported && oses.iter().all(|o| v.ready_for.contains(o)))
        .filter_map(|v| Some((Semver::parse(&v.version)?, v.version.as_str())))
        .max()
        .map(|(_, s)| s)
}

/// Why `wanted` is not acceptable for a cluster now on `current` (`None`
/// for a new cluster) whose pools run `oses`; `None` when it is fine.
pub fn version_problem(
    catalog: &[KubernetesVersion],
    current: Option<&str>,
    wanted: &str,
    oses: &[OsType],
) -> Option<String> {
    let field = "kubernetes_version";
    let supported: Vec<&str> = catalog
        .iter()
        .filter(|v| v.supported)
        .map(|v| v.version.as_str())
        .collect();
    let Some(entry) = catalog.iter().find(|v| v.version == wanted) else {
        return Some(format!(
            "{field} {wanted:?} is not in the catalogue; supported versions: {}",
            supported.join(", ")
        ));
    };
    if let Some(cur) = current
        && cur != wanted
    {
        let (Some(c), Some(w)) = (Semver::parse(cur), Semver::parse(wanted)) else {
            return Some(format!(
                "{field} {wanted:?} is not a MAJOR.MINOR.PATCH version"
            ));
        };
        let allowed = upgrade_targets(catalog, cur);
        let allowed_text = if allowed.is_empty() {
            "none (already on the newest version)".to_string()
        } else {
            allowed.join(", ")
        };
        if w < c {
            return Some(format!(
                "{field} cannot go from {cur} down to {wanted}: downgrades are not supported; allowed upgrades from {cur}: {allowed_text}"
            ));
        }
        if !allowed.contains(&wanted) {
            return Some(format!(
                "{field} cannot go from {cur} to {wanted}: upgrades move one minor version at a time; allowed upgrades from {cur}: {allowed_text}"
            ));
        }
    } else if !entry.supported {
        return Some(format!(
            "{field} {wanted:?} is no longer supported for new clusters; supported versions: {}",
            supported.join(", ")
        ));
    }
    for os in oses {
        if !entry.ready_for.contains(os) {
            let ready: Vec<&str> = catalog
                .iter()
                .filter(|v| v.supported && v.ready_for.contains(os))
                .map(|v| v.version.as_str())
                .collect();
            let ready = match ready.is_empty() {
                true => "none".to_string(),
                false => ready.join(", "),
            };
            let os = os.as_str();
            return Some(format!(
                "{field} {wanted} is not ready for {os} nodes yet, and this cluster has a {os} pool{}; versions ready for {os}: {ready}",
                image_reason(catalog, entry, os)
            ));
        }
    }
    None
}

/// Why a version's images do not make it ready for `os`, when the
/// catalogue tracks images (empty when it does not).
fn image_reason(catalog: &[KubernetesVersion], entry: &KubernetesVersion, os: &str) -> String {
    if catalog.iter().all(|v| v.images.is_empty()) {
        return String::new();
    }
    let images: Vec<&NodeImage> = entry
        .images
        .iter()
        .filter(|i| i.os_type.as_str() == os)
        .collect();
    if images.is_empty() {
        let hint = match os {
            "windows" => " (Windows images are not configured)",
            _ => "",
        };
        return format!(
            ": no {os} node image is configured for {}{hint}",
            entry.version
        );
    }
    let names: Vec<String> = images
        .iter()
        .map(|i| {
            format!(
                "{:?} ({}) ready on {} of {} up hosts",
                i.image,
                i.os_label(),
                i.ready_hosts,
                i.hosts
            )
        })
        .collect();
    format!(": its node image {}", names.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(version: &str, supported: bool, win: bool) -> KubernetesVersion {
        let mut ready_for = vec![OsType::Linux];
        if win {
            ready_for.push(OsType::Windows);
        }
        KubernetesVersion {
            version: version.into(),
            supported,
            ready_for,
            upgrades: vec![],
            images: vec![],
        }
    }

    fn catalog() -> Vec<KubernetesVersion> {
        vec![
            v("1.30.4", false, true),
            v("1.31.2", true, true),
            v("1.31.5", true, true),
            v("1.32.1", true, true),
            v("1.32.3", true, true),
            v("1.33.0", true, true),
            v("1.33.2", true, false),
        ]
    }

    #[test]
    fn semver() {
        assert_eq!(Semver::parse("1.32.3").unwrap().to_string(), "1.32.3");
        for bad in ["1.32", "1.32.x", "1..3", "1.2.3.4", ""] {
            assert!(Semver::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn upgrade_rules() {
        let c = catalog();
        assert_eq!(
            upgrade_targets(&c, "1.31.2"),
            ["1.31.5", "1.32.1", "1.32.3"]
        );
        assert_eq!(newest_supported(&c, &[OsType::Linux]), Some("1.33.2"));
        assert_eq!(
            newest_supported(&c, &[OsType::Linux, OsType::Windows]),
            Some("1.33.0")
        );
        assert!(version_problem(&c, Some("1.31.2"), "1.32.3", &[]).is_none());
        let skip = version_problem(&c, Some("1.31.2"), "1.33.0", &[]).unwrap();
        assert!(
            skip.contains("one minor") && skip.contains("1.32.1, 1.32.3"),
            "{skip}"
        );
        let down = version_problem(&c, Some("1.32.1"), "1.31.5", &[]).unwrap();
        assert!(down.contains("downgrade"), "{down}");
        let unknown = version_problem(&c, None, "1.99.0", &[]).unwrap();
        assert!(unknown.contains("not in the catalogue"), "{unknown}");
        let win = version_problem(&c, Some("1.32.3"), "1.33.2", &[OsType::Windows]).unwrap();
        assert!(
            win.contains("not ready for windows") && win.contains("1.33.0"),
            "{win}"
        );
        assert!(
            version_problem(&c, None, "1.30.4", &[])
                .unwrap()
                .contains("no longer supported")
        );
        assert!(version_problem(&c, Some("1.30.4"), "1.31.2", &[]).is_none());
    }

    #[test]
    fn readiness_from_images_names_them() {
        let image = |os: OsType, name: &str, ready_on: &[&str]| NodeImage {
            os_type: os,
            os_sku: None,
            image: name.into(),
            ready_hosts: ready_on.len() as u32,
            hosts: 2,
            ready_on: ready_on.iter().map(|h| h.to_string()).collect(),
        };
        let mut a = v("1.32.3", true, false);
        a.images = vec![image(OsType::Linux, "k8s-1.32.3", &["host-a", "host-b"])];
        let mut b = v("1.33.1", true, false);
        b.ready_for.clear();
        b.images = vec![image(OsType::Linux, "k8s-1.33.1", &[])];
        let c = vec![a, b];
        assert_eq!(
            c[0].image_for(OsType::Linux, "AzureLinux").unwrap().image,
            "k8s-1.32.3"
        );
        let win = version_problem(&c, Some("1.32.3"), "1.32.3", &[OsType::Windows]).unwrap();
        assert!(
            win.contains("no windows node image is configured for 1.32.3")
                && win.contains("Windows images are not configured")
                && win.contains("versions ready for windows: none"),
            "{win}"
        );
        let linux = version_problem(&c, None, "1.33.1", &[OsType::Linux]).unwrap();
        assert!(
            linux.contains("\"k8s-1.33.1\" (linux) ready on 0 of 2 up hosts")
                && linux.contains("versions ready for linux: 1.32.3"),
            "{linux}"
        );
        assert_eq!(newest_supported(&c, &[OsType::Linux]), Some("1.32.3"));
    }
}
