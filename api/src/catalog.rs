//! Catalogues the service serves and admission uses: Kubernetes versions
//! (`/v1/kubernetes-versions`) and VM sizes (`/v1/vm-sizes`), plus the
//! version rules both the provider (at plan time) and the service apply.
//!
//! Readiness is per OS SKU, as in AKS hybrid (a version may have node
//! images for `Windows2022` and not yet for `Windows2019`):
//! `ready_for_skus` lists the SKUs; `ready_for` lists an OS type when its
//! default SKU (the one a pool without `os_sku` gets, and for Linux the
//! control plane's) is ready.

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
    /// OS types whose default SKU (`CBLMariner`, `Windows2022`: what a pool
    /// without `os_sku` gets) has a node image ready for this version.
    pub ready_for: Vec<OsType>,
    /// OS SKUs (`CBLMariner`, `AzureLinux`, `Windows2019`, `Windows2022`)
    /// with a node image ready for this version; a pool of a SKU not listed
    /// cannot run it.
    #[serde(default)]
    pub ready_for_skus: Vec<String>,
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
    /// Whether nodes of `os` and SKU `sku` have a node image ready for this
    /// version.
    pub fn ready_for_sku(&self, os: OsType, sku: &str) -> bool {
        os.skus().contains(&sku) && self.ready_for_skus.iter().any(|s| s == sku)
    }

    /// The node image VMs of `os`/`sku` get: the entry naming that SKU,
    /// else the OS's entry without a SKU.
    pub fn image_for(&self, os: OsType, sku: &str) -> Option<&NodeImage> {
        image_for(&self.images, os, sku)
    }
}

/// The image of `images` VMs of `os`/`sku` get: the entry naming that SKU,
/// else the OS's entry without a SKU.
pub fn image_for<'a>(images: &'a [NodeImage], os: OsType, sku: &str) -> Option<&'a NodeImage> {
    let of_os = || images.iter().filter(move |i| i.os_type == os);
    of_os()
        .find(|i| i.os_sku.as_deref() == Some(sku))
        .or_else(|| of_os().find(|i| i.os_sku.is_none()))
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

/// What one node pool runs, for version readiness.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolOs {
    /// The pool's name.
    pub pool: String,
    pub os_type: OsType,
    /// The pool's OS SKU (its default when it names none).
    pub os_sku: String,
}

/// Why `wanted` is not acceptable for a cluster now on `current` (`None`
/// for a new cluster) whose node pools are `pools`; `None` when it is fine.
/// Each pool's OS SKU must have a node image ready for `wanted`.
pub fn version_problem(
    catalog: &[KubernetesVersion],
    current: Option<&str>,
    wanted: &str,
    pools: &[PoolOs],
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
    let unready = pools
        .iter()
        .find(|p| !entry.ready_for_sku(p.os_type, &p.os_sku))?;
    let (os, sku) = (unready.os_type, unready.os_sku.as_str());
    let users: Vec<&str> = pools
        .iter()
        .filter(|p| p.os_type == os && p.os_sku == sku)
        .map(|p| p.pool.as_str())
        .collect();
    let ready_versions = list_or_none(
        catalog
            .iter()
            .filter(|v| v.supported && v.ready_for_sku(os, sku))
            .map(|v| v.version.as_str()),
    );
    let ready_skus = list_or_none(entry.ready_for_skus.iter().map(String::as_str));
    let pool_word = match users.len() {
        1 => "pool",
        _ => "pools",
    };
    Some(format!(
        "{field} {wanted} is not ready for {}/{sku} nodes (node {pool_word} {}){}; \
         os SKUs ready for {wanted}: {ready_skus}; versions ready for os_sku {sku}: {ready_versions}",
        os.as_str(),
        users.join(", "),
        image_reason(catalog, entry, os, sku),
    ))
}

fn list_or_none<'a>(items: impl Iterator<Item = &'a str>) -> String {
    let items: Vec<&str> = items.collect();
    match items.is_empty() {
        true => "none".to_string(),
        false => items.join(", "),
    }
}

/// Why a version's images do not make it ready for `os`/`sku`, when the
/// catalogue tracks images (empty when it does not, or cannot tell).
fn image_reason(
    catalog: &[KubernetesVersion],
    entry: &KubernetesVersion,
    os: OsType,
    sku: &str,
) -> String {
    if catalog.iter().all(|v| v.images.is_empty()) {
        return String::new();
    }
    match entry.image_for(os, sku) {
        None => {
            let none_of_os = entry.images.iter().all(|i| i.os_type != os);
            let hint = match os {
                OsType::Windows if none_of_os => " (Windows images are not configured)",
                _ => "",
            };
            format!(
                ": no node image is configured for {}/{sku} at {}{hint}",
                os.as_str(),
                entry.version
            )
        }
        Some(i) if i.ready_hosts == 0 => format!(
            ": its node image {:?} ({}) is ready on {} of {} up hosts",
            i.image,
            i.os_label(),
            i.ready_hosts,
            i.hosts
        ),
        Some(_) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A version ready for every SKU of Linux, and of Windows when `win`.
    fn v(version: &str, supported: bool, win: bool) -> KubernetesVersion {
        let mut ready_for = vec![OsType::Linux];
        let mut skus: Vec<String> = OsType::Linux.skus().iter().map(|s| s.to_string()).collect();
        if win {
            ready_for.push(OsType::Windows);
            skus.extend(OsType::Windows.skus().iter().map(|s| s.to_string()));
        }
        KubernetesVersion {
            version: version.into(),
            supported,
            ready_for,
            ready_for_skus: skus,
            upgrades: vec![],
            images: vec![],
        }
    }

    fn pool(name: &str, os_type: OsType, sku: &str) -> PoolOs {
        PoolOs {
            pool: name.into(),
            os_type,
            os_sku: sku.into(),
        }
    }

    fn win(name: &str) -> PoolOs {
        pool(name, OsType::Windows, "Windows2022")
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
        let w = version_problem(&c, Some("1.32.3"), "1.33.2", &[win("win1")]).unwrap();
        assert!(
            w.contains("not ready for windows/Windows2022 nodes (node pool win1)")
                && w.contains(
                    "versions ready for os_sku Windows2022: 1.31.2, 1.31.5, 1.32.1, 1.32.3, 1.33.0"
                ),
            "{w}"
        );
        assert!(
            version_problem(&c, None, "1.30.4", &[])
                .unwrap()
                .contains("no longer supported")
        );
        assert!(version_problem(&c, Some("1.30.4"), "1.31.2", &[]).is_none());
    }

    #[test]
    fn readiness_is_per_sku_and_names_version_sku_and_what_is_ready() {
        // 1.33.1 has images for Windows2022 but not yet Windows2019.
        let mut c = catalog();
        let mut v1331 = v("1.33.1", true, false);
        v1331.ready_for.push(OsType::Windows);
        v1331.ready_for_skus.push("Windows2022".into());
        c.push(v1331);
        c.sort_by_key(|v| Semver::parse(&v.version));
        let entry = c.iter().find(|v| v.version == "1.33.1").unwrap();
        assert!(entry.ready_for_sku(OsType::Windows, "Windows2022"));
        assert!(!entry.ready_for_sku(OsType::Windows, "Windows2019"));
        // A SKU of the other OS type is never ready for this one.
        assert!(!entry.ready_for_sku(OsType::Windows, "CBLMariner"));

        let pools = [
            pool("linux1", OsType::Linux, "AzureLinux"),
            win("win22"),
            pool("win19a", OsType::Windows, "Windows2019"),
            pool("win19b", OsType::Windows, "Windows2019"),
        ];
        let e = version_problem(&c, Some("1.32.3"), "1.33.1", &pools).unwrap();
        assert_eq!(
            e,
            "kubernetes_version 1.33.1 is not ready for windows/Windows2019 nodes (node pools \
             win19a, win19b); os SKUs ready for 1.33.1: CBLMariner, AzureLinux, Windows2022; \
             versions ready for os_sku Windows2019: 1.31.2, 1.31.5, 1.32.1, 1.32.3, 1.33.0"
        );
        // Without the Windows2019 pools the upgrade is fine.
        assert!(version_problem(&c, Some("1.32.3"), "1.33.1", &pools[..2]).is_none());
        // A new pool on the cluster's own version is checked the same way.
        let e = version_problem(
            &c,
            Some("1.33.1"),
            "1.33.1",
            &[pool("w", OsType::Windows, "Windows2019")],
        )
        .unwrap();
        assert!(e.contains("1.33.1") && e.contains("Windows2019"), "{e}");
        // A SKU ready nowhere says so.
        for v in &mut c {
            v.ready_for_skus.retain(|s| s != "AzureLinux");
        }
        let e = version_problem(
            &c,
            None,
            "1.33.1",
            &[pool("azl", OsType::Linux, "AzureLinux")],
        )
        .unwrap();
        assert!(
            e.ends_with("versions ready for os_sku AzureLinux: none"),
            "{e}"
        );
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
        b.ready_for_skus.clear();
        b.images = vec![image(OsType::Linux, "k8s-1.33.1", &[])];
        let c = vec![a, b];
        assert_eq!(
            c[0].image_for(OsType::Linux, "AzureLinux").unwrap().image,
            "k8s-1.32.3"
        );
        let w = version_problem(&c, Some("1.32.3"), "1.32.3", &[win("w")]).unwrap();
        assert!(
            w.contains("no node image is configured for windows/Windows2022 at 1.32.3")
                && w.contains("Windows images are not configured")
                && w.contains("versions ready for os_sku Windows2022: none"),
            "{w}"
        );
        let linux = version_problem(
            &c,
            None,
            "1.33.1",
            &[pool("l", OsType::Linux, "CBLMariner")],
        )
        .unwrap();
        assert!(
            linux.contains("\"k8s-1.33.1\" (linux) is ready on 0 of 2 up hosts")
                && linux.contains("versions ready for os_sku CBLMariner: 1.32.3"),
            "{linux}"
        );
        assert_eq!(newest_supported(&c, &[OsType::Linux]), Some("1.32.3"));
    }

    #[test]
    fn ready_for_skus_defaults_to_none_when_absent() {
        let old: KubernetesVersion = serde_json::from_value(serde_json::json!({
            "version": "1.32.3", "supported": true, "ready_for": ["linux"]
        }))
        .unwrap();
        assert!(old.ready_for_skus.is_empty());
        let json = serde_json::to_value(v("1.32.3", true, true)).unwrap();
        assert_eq!(
            json["ready_for_skus"],
            serde_json::json!(["CBLMariner", "AzureLinux", "Windows2019", "Windows2022"])
        );
    }
}
