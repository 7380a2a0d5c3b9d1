//! `hybrid_kubernetes_versions` data source: the service's Kubernetes
//! version catalogue — which versions exist, which are supported, which OSes
//! each is ready for, its node images and on how many hosts each is ready,
//! and where each may upgrade to — plus the version a new cluster gets by
//! default.

use async_trait::async_trait;
use hybrid_api::catalog::{NodeImage, newest_supported};
use hybrid_api::{KubernetesVersion, OsType};
use hybrid_cty::Value;

use super::shared::{computed_list, computed_strings};
use crate::client::HostClient;
use crate::errors;
use crate::framework::schema::Attribute;
use crate::framework::{Attr, DataSource, Diagnostics, Schema, ToValue};

pub struct KubernetesVersionsDataSource;

/// Every OS a node pool can run; `default_version` must be ready for all.
const ALL_OSES: [OsType; 2] = [OsType::Linux, OsType::Windows];

#[async_trait]
impl DataSource<HostClient> for KubernetesVersionsDataSource {
    fn type_name(&self) -> &'static str {
        "hybrid_kubernetes_versions"
    }

    fn schema(&self) -> Schema {
        Schema::new(
            "Reads the Kubernetes version catalogue of the host management service: \
             the versions, whether each is supported for new clusters, which node OS \
             types and OS SKUs it is ready for, its node images and on how many hosts each is ready, and \
             the upgrades allowed from it.",
            vec![
                computed_list(
                    "versions",
                    vec![
                        Attribute::string("version")
                            .computed()
                            .description("`MAJOR.MINOR.PATCH`, e.g. `1.32.3`."),
                        Attribute::bool("supported").computed().description(
                            "False for versions kept only so existing clusters can upgrade off them.",
                        ),
                        computed_strings(
                            "ready_for",
                            "OS types (`linux`, `windows`) whose default OS SKU (`CBLMariner`, \
                             `Windows2022`: what a pool without `os_sku` gets) has a node image \
                             ready for this version.",
                        ),
                        computed_strings(
                            "ready_for_skus",
                            "OS SKUs (`CBLMariner`, `AzureLinux`, `Windows2019`, `Windows2022`) \
                             with a node image ready for this version. A node pool whose `os_sku` \
                             is not listed cannot run it: creating the pool, or upgrading its \
                             cluster to this version, fails at plan time.",
                        ),
                        computed_list(
                            "images",
                            vec![
                                Attribute::string("os_type")
                                    .computed()
                                    .description("`linux` or `windows`."),
                                Attribute::string("os_sku").computed().description(
                                    "The OS SKU the image is for; null when it serves every SKU \
                                     of `os_type` that has no image of its own.",
                                ),
                                Attribute::string("image").computed().description(
                                    "Image name, as the hosts know it (with the agents driver: \
                                     the directory in each agent's image directory).",
                                ),
                                Attribute::number("ready_hosts")
                                    .computed()
                                    .description("Up hosts that have the image ready."),
                                Attribute::number("hosts")
                                    .computed()
                                    .description("Up hosts."),
                                computed_strings(
                                    "ready_on",
                                    "Names of the up hosts that have the image ready.",
                                ),
                            ],
                        )
                        .description(
                            "The version's node images per OS type (and SKU), and where each \
                             is ready. A cluster or pool whose image is not ready on enough up \
                             hosts to place its VMs is refused at plan time.",
                        ),
                        computed_strings(
                            "upgrades",
                            "Versions a cluster on this one may upgrade to (a higher patch of the \
                             same minor, or the next minor).",
                        ),
                    ],
                )
                .description("Every version of the catalogue, oldest first."),
                Attribute::string("default_version").computed().description(
                    "The newest supported version ready for every OS (Linux and Windows): a \
                     safe choice for a cluster that may get pools of either OS. Null when no \
                     version is ready for both.",
                ),
                computed_strings(
                    "supported_versions",
                    "The versions a new cluster may use, oldest first.",
                ),
            ],
        )
    }

    async fn read(&self, client: &HostClient, _config: &Value, diags: &mut Diagnostics) -> Value {
        match client.list_kubernetes_versions().await {
            Ok(catalog) => to_state(&catalog).to_value(),
            Err(e) => {
                errors::report(diags, "Cannot read the Kubernetes version catalogue", &e);
                Value::Null
            }
        }
    }
}

crate::model! {
    /// The data source's state.
    pub(crate) struct KubernetesVersionsModel {
        pub versions: Attr<Vec<VersionModel>>,
        pub default_version: Attr<String>,
        pub supported_versions: Attr<Vec<String>>,
    }
}

crate::model! {
    /// One version of the catalogue.
    pub(crate) struct VersionModel {
        pub version: Attr<String>,
        pub supported: Attr<bool>,
        pub ready_for: Attr<Vec<String>>,
        pub ready_for_skus: Attr<Vec<String>>,
        pub images: Attr<Vec<ImageModel>>,
        pub upgrades: Attr<Vec<String>>,
    }
}

crate::model! {
    /// One node image of a version.
    pub(crate) struct ImageModel {
        pub os_type: Attr<String>,
        pub os_sku: Attr<String>,
        pub image: Attr<String>,
        pub ready_hosts: Attr<u64>,
        pub hosts: Attr<u64>,
        pub ready_on: Attr<Vec<String>>,
    }
}

impl ImageModel {
    fn of(i: &NodeImage) -> Self {
        ImageModel {
            os_type: Attr::Known(i.os_type.as_str().to_string()),
            os_sku: i.os_sku.clone().into(),
            image: Attr::Known(i.image.clone()),
            ready_hosts: Attr::Known(u64::from(i.ready_hosts)),
            hosts: Attr::Known(u64::from(i.hosts)),
            ready_on: Attr::Known(i.ready_on.clone()),
        }
    }
}

pub(crate) fn to_state(catalog: &[KubernetesVersion]) -> KubernetesVersionsModel {
    let versions = catalog.iter().map(|v| VersionModel {
        version: Attr::Known(v.version.clone()),
        supported: Attr::Known(v.supported),
        ready_for: Attr::Known(
            v.ready_for
                .iter()
                .map(|os| os.as_str().to_string())
                .collect(),
        ),
        ready_for_skus: Attr::Known(v.ready_for_skus.clone()),
        images: Attr::Known(v.images.iter().map(ImageModel::of).collect()),
        upgrades: Attr::Known(v.upgrades.clone()),
    });
    let supported: Vec<String> = catalog
        .iter()
        .filter(|v| v.supported)
        .map(|v| v.version.clone())
        .collect();
    KubernetesVersionsModel {
        versions: Attr::Known(versions.collect()),
        default_version: newest_supported(catalog, &ALL_OSES)
            .map(str::to_string)
            .into(),
        supported_versions: Attr::Known(supported),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data_sources::shared::tests::{assert_fits, int, items, text};

    fn to_state(catalog: &[KubernetesVersion]) -> Value {
        super::to_state(catalog).to_value()
    }

    fn version(
        version: &str,
        supported: bool,
        ready_for: &[OsType],
        upgrades: &[&str],
    ) -> KubernetesVersion {
        KubernetesVersion {
            version: version.into(),
            supported,
            ready_for: ready_for.to_vec(),
            ready_for_skus: ready_for
                .iter()
                .map(|os| os.default_sku().to_string())
                .collect(),
            upgrades: upgrades.iter().map(|s| s.to_string()).collect(),
            images: Vec::new(),
        }
    }

    #[test]
    fn catalogue_defaults_and_supported_list() {
        use OsType::{Linux, Windows};
        let catalog = vec![
            version("1.30.4", false, &[Linux, Windows], &["1.31.2"]),
            version("1.31.2", true, &[Linux, Windows], &["1.31.5", "1.32.1"]),
            version("1.32.1", true, &[Linux, Windows], &[]),
            version("1.33.0", true, &[Linux], &[]),
        ];
        let mut catalog = catalog;
        catalog[1].images = vec![NodeImage {
            os_type: Linux,
            os_sku: Some("AzureLinux".into()),
            image: "k8s-1.31.2-azl".into(),
            ready_hosts: 1,
            hosts: 2,
            ready_on: vec!["host-a".into()],
        }];
        let state = to_state(&catalog);
        assert_fits(&KubernetesVersionsDataSource.schema(), &state);
        let image = &items(&items(&state, "versions")[1], "images")[0];
        assert_eq!(
            (
                text(image, "os_type"),
                text(image, "os_sku"),
                text(image, "image")
            ),
            ("linux", "AzureLinux", "k8s-1.31.2-azl")
        );
        assert_eq!((int(image, "ready_hosts"), int(image, "hosts")), (1, 2));
        assert_eq!(
            image.get("ready_on"),
            Some(&Value::list([Value::from("host-a")]))
        );

        let versions = items(&state, "versions");
        assert_eq!(versions.len(), 4);
        assert_eq!(text(&versions[0], "version"), "1.30.4");
        assert_eq!(versions[0].get("supported"), Some(&Value::Bool(false)));
        assert_eq!(
            versions[1].get("ready_for"),
            Some(&Value::list([Value::from("linux"), Value::from("windows")]))
        );
        assert_eq!(
            versions[3].get("ready_for_skus"),
            Some(&Value::list([Value::from("CBLMariner")]))
        );
        assert_eq!(
            versions[1].get("upgrades"),
            Some(&Value::list([Value::from("1.31.5"), Value::from("1.32.1")]))
        );
        assert_eq!(versions[2].get("upgrades"), Some(&Value::list([])));

        // 1.33.0 is newer but not ready for Windows, so it is not the default.
        assert_eq!(text(&state, "default_version"), "1.32.1");
        assert_eq!(
            state.get("supported_versions"),
            Some(&Value::list(
                ["1.31.2", "1.32.1", "1.33.0"].map(Value::from)
            ))
        );
    }

    #[test]
    fn no_version_ready_everywhere_leaves_the_default_null() {
        let state = to_state(&[version("1.33.0", true, &[OsType::Linux], &[])]);
        assert_fits(&KubernetesVersionsDataSource.schema(), &state);
        assert_eq!(state.get("default_version"), Some(&Value::Null));

        let empty = to_state(&[]);
        assert_fits(&KubernetesVersionsDataSource.schema(), &empty);
        assert_eq!(empty.get("versions"), Some(&Value::list([])));
    }
}
