//! `hybrid_cluster` data source: reads an existing cluster by name — its
//! settings, API-server endpoint and CA, the version it runs, the
//! control-plane and load-balancer VMs the service observes, and when its
//! certificates expire and are renewed.
//!
//! `certificates` lives here only, not in the `hybrid_cluster` resource:
//! the service renews certificates in the background, and a value that
//! moves on its own in managed state would be drift on the next plan.

use async_trait::async_trait;
use std::collections::BTreeMap;

use hybrid_api::Cluster;
use hybrid_cty::{Type, Value};

use super::shared::{
    self, ConditionDataModel, NodeDataModel, computed_list, computed_strings, condition_attributes,
    node_attributes, not_found,
};
use crate::client::HostClient;
use crate::errors;
use crate::framework::model::{self, Attr, Set, ToValue};
use crate::framework::schema::Attribute;
use crate::framework::{AttrPath, DataSource, Diagnostics, Schema, validators};
use crate::resources::cluster::{
    self as resource, AutoScalerProfileModel, ClusterModel, ControlPlaneModel, NetworkModel,
    StorageModel,
};

pub struct ClusterDataSource;

fn check_name(name: &str) -> Result<(), String> {
    hybrid_api::cluster::validate_name(name).map_err(|e| e.message)
}

#[async_trait]
impl DataSource<HostClient> for ClusterDataSource {
    fn type_name(&self) -> &'static str {
        "hybrid_cluster"
    }

    fn schema(&self) -> Schema {
        let text =
            |name: &'static str, what: &str| Attribute::string(name).computed().description(what);
        let number =
            |name: &'static str, what: &str| Attribute::number(name).computed().description(what);
        let flag =
            |name: &'static str, what: &str| Attribute::bool(name).computed().description(what);
        Schema::new(
            "Reads a Kubernetes cluster by name: its settings, API-server endpoint and CA \
             certificate, the Kubernetes version it runs and the VMs of its control plane, \
             e.g. for a configuration that adds node pools or extensions to a cluster \
             managed elsewhere.",
            vec![
                text(
                    "id",
                    "The cluster's path in the host API, `/clusters/<name>`.",
                ),
                Attribute::string("name")
                    .required()
                    .validator(validators::string_rule(check_name))
                    .description("Name of the cluster to read."),
                text(
                    "custom_location_id",
                    "Custom location the cluster lives in, `/custom-locations/<name>`.",
                ),
                text("vnet_id", "Vnet the cluster's VMs are on, `/vnets/<name>`."),
                text(
                    "kubernetes_version",
                    "Desired Kubernetes version (during an upgrade, the target).",
                ),
                Attribute::nested(
                    "control_plane",
                    vec![
                        number("count", "Number of control-plane VMs (1, 3 or 5)."),
                        text("vm_size", "VM size of the control-plane VMs."),
                        text(
                            "endpoint_ip",
                            "API-server VIP from the vnet's VIP pool, whether requested or \
                             chosen by the service.",
                        ),
                    ],
                )
                .computed()
                .description("Control-plane shape."),
                Attribute::nested(
                    "network",
                    vec![
                        text("plugin", "Container network plugin, `calico` or `flannel`."),
                        text("pod_cidr", "CIDR pods get addresses from."),
                        text("service_cidr", "CIDR services get addresses from."),
                        Attribute::nested(
                            "load_balancer",
                            vec![number(
                                "count",
                                "Number of built-in HAProxy load balancer VMs.",
                            )],
                        )
                        .computed()
                        .description("Built-in load balancer."),
                    ],
                )
                .computed()
                .description("Cluster networking."),
                text(
                    "ssh_public_key",
                    "OpenSSH public key installed on every VM, if any.",
                ),
                computed_strings("admin_group_ids", "Directory groups granted cluster-admin."),
                Attribute::nested(
                    "storage",
                    vec![
                        flag("smb_csi", "Whether the SMB CSI driver is installed."),
                        flag("nfs_csi", "Whether the NFS CSI driver is installed."),
                    ],
                )
                .computed()
                .description("CSI drivers installed on the cluster."),
                Attribute::nested(
                    "auto_scaler_profile",
                    vec![
                        flag(
                            "balance_similar_node_groups",
                            "Whether similar pools are kept at the same node count.",
                        ),
                        text(
                            "expander",
                            "Which pool grows first: `least-waste`, `most-pods`, `priority` or \
                             `random`.",
                        ),
                        number("empty_bulk_delete_max", "Most empty nodes removed at once."),
                        number(
                            "max_graceful_termination_sec",
                            "Seconds the autoscaler waits for a pod to end when it drains a node.",
                        ),
                        text(
                            "max_node_provisioning_time",
                            "How long a new node may take to become ready.",
                        ),
                        number("max_unready_nodes", "Unready nodes tolerated."),
                        number(
                            "max_unready_percentage",
                            "Percentage of unready nodes tolerated.",
                        ),
                        text(
                            "new_pod_scale_up_delay",
                            "How long a pod must be pending before it triggers a scale-up.",
                        ),
                        text(
                            "scale_down_delay_after_add",
                            "Wait after a scale-up before scale-down is considered.",
                        ),
                        text(
                            "scale_down_delay_after_delete",
                            "Wait after a node is removed before scale-down is considered again.",
                        ),
                        text(
                            "scale_down_delay_after_failure",
                            "Wait after a failed scale-down before trying again.",
                        ),
                        text(
                            "scale_down_unneeded",
                            "How long a node must be unneeded before it is removed.",
                        ),
                        text(
                            "scale_down_unready",
                            "How long a node must be unready before it is removed.",
                        ),
                        text(
                            "scale_down_utilization_threshold",
                            "Utilisation (a decimal string from 0 to 1) below which a node is \
                             unneeded.",
                        ),
                        text(
                            "scan_interval",
                            "How often the autoscaler looks at the cluster.",
                        ),
                        flag(
                            "skip_nodes_with_local_storage",
                            "Whether nodes with pods using local storage are never removed.",
                        ),
                        flag(
                            "skip_nodes_with_system_pods",
                            "Whether nodes running `kube-system` pods are never removed.",
                        ),
                    ],
                )
                .computed()
                .description(
                    "Settings of the cluster autoscaler (every setting, defaults included).",
                ),
                Attribute::map("tags", Type::String)
                    .computed()
                    .description("Tags."),
                text(
                    "endpoint",
                    "API-server URL, `https://<vip>:6443`; null until the VIP is allocated.",
                ),
                text(
                    "ca_certificate",
                    "PEM of the cluster's CA certificate (public), to verify `endpoint`.",
                ),
                text(
                    "current_kubernetes_version",
                    "Version the control plane runs now; differs from `kubernetes_version` \
                     during an upgrade.",
                ),
                text(
                    "provisioning_state",
                    "Outcome of the last operation on the cluster (`Succeeded`, `Failed`, …).",
                ),
                computed_list("conditions", condition_attributes()).description(
                    "Observed conditions (`Ready`, upgrade progress, …): what is actually \
                     running, independent of `provisioning_state`.",
                ),
                computed_list("control_plane_nodes", node_attributes())
                    .description("The control-plane VMs."),
                computed_list("load_balancer_nodes", node_attributes())
                    .description("The built-in load balancer VMs."),
                computed_strings(
                    "node_pool_ids",
                    "Ids of the cluster's node pools, `/clusters/<name>/nodepools/<pool>`.",
                ),
                Attribute::nested(
                    "certificates",
                    vec![
                        text("ca_not_after", "RFC 3339 time the cluster CA expires."),
                        text(
                            "apiserver_not_after",
                            "RFC 3339 time the API server's serving certificate expires.",
                        ),
                        text(
                            "not_after",
                            "RFC 3339: the earliest of the two, when the cluster's \
                             certificates would lapse if nothing renewed them.",
                        ),
                        text(
                            "renew_after",
                            "RFC 3339 time from which the service renews them in the \
                             background (a fifth of a certificate's lifetime, or 30 days, \
                             before it expires).",
                        ),
                        text(
                            "last_rotated",
                            "RFC 3339 time they were last renewed or rotated; null while \
                             they are the ones issued at creation.",
                        ),
                        text(
                            "ca_rotated_at",
                            "RFC 3339 time the CA was last replaced by one on a new key; \
                             kubeconfigs issued before then no longer work.",
                        ),
                    ],
                )
                .computed()
                .description(
                    "Expiry and renewal of the certificates the service issued for the \
                     cluster (its CA and API-server certificate); null until they exist. \
                     Only the data source shows them: background renewals never show as \
                     drift of `hybrid_cluster`.",
                ),
                crate::resources::attributes::upgrade_attribute(
                    "the control plane and every node pool",
                ),
                text("created_at", "RFC 3339 time the cluster was created."),
                text("updated_at", "RFC 3339 time the cluster was last changed."),
            ],
        )
    }

    async fn read(&self, client: &HostClient, config: &Value, diags: &mut Diagnostics) -> Value {
        let config: ClusterDataModel = model::read(config);
        let Some(name) = config.name.into_known() else {
            diags.error_at(
                AttrPath::attr("name"),
                "Missing cluster name",
                "`name` must be known to read a cluster",
            );
            return Value::Null;
        };
        if let Err(rule) = check_name(&name) {
            diags.error_at(AttrPath::attr("name"), "Invalid name", rule);
            return Value::Null;
        }
        match client.get_cluster(&name).await {
            Ok(Some(cluster)) => to_state(&cluster).to_value(),
            Ok(None) => {
                diags.error_at(
                    AttrPath::attr("name"),
                    "Cluster not found",
                    not_found("cluster", &name, client.endpoint(), "name"),
                );
                Value::Null
            }
            Err(e) => {
                errors::report(diags, &format!("Cannot read cluster {name:?}"), &e);
                Value::Null
            }
        }
    }
}

crate::model! {
    /// The data source's state: the resource's attributes (less `timeouts`)
    /// and what only the data source shows.
    pub(crate) struct ClusterDataModel {
        pub id: Attr<String>,
        pub name: Attr<String>,
        pub custom_location_id: Attr<String>,
        pub vnet_id: Attr<String>,
        pub kubernetes_version: Attr<String>,
        pub control_plane: Attr<ControlPlaneModel>,
        pub network: Attr<NetworkModel>,
        pub ssh_public_key: Attr<String>,
        pub admin_group_ids: Attr<Vec<String>>,
        pub storage: Attr<StorageModel>,
        pub auto_scaler_profile: Attr<AutoScalerProfileModel>,
        pub tags: Attr<BTreeMap<String, String>>,
        pub endpoint: Attr<String>,
        pub ca_certificate: Attr<String>,
        pub current_kubernetes_version: Attr<String>,
        pub provisioning_state: Attr<String>,
        pub conditions: Attr<Vec<ConditionDataModel>>,
        pub control_plane_nodes: Attr<Vec<NodeDataModel>>,
        pub load_balancer_nodes: Attr<Vec<NodeDataModel>>,
        pub node_pool_ids: Attr<Vec<String>>,
        pub certificates: Attr<CertificatesModel>,
        pub upgrade: Attr<crate::resources::attributes::UpgradeModel>,
        pub created_at: Attr<String>,
        pub updated_at: Attr<String>,
    }
}

crate::model! {
    /// `certificates`: expiry and renewal of the cluster's certificates.
    pub(crate) struct CertificatesModel {
        pub ca_not_after: Attr<String>,
        pub apiserver_not_after: Attr<String>,
        pub not_after: Attr<String>,
        pub renew_after: Attr<String>,
        pub last_rotated: Attr<String>,
        pub ca_rotated_at: Attr<String>,
    }
}

impl CertificatesModel {
    fn of(c: &hybrid_api::certificates::ClusterCertificates) -> Self {
        CertificatesModel {
            ca_not_after: Attr::Known(c.ca_not_after.clone()),
            apiserver_not_after: Attr::Known(c.apiserver_not_after.clone()),
            not_after: Attr::Known(c.not_after.clone()),
            renew_after: Attr::Known(c.renew_after.clone()),
            last_rotated: c.last_rotated.clone().into(),
            ca_rotated_at: c.ca_rotated_at.clone().into(),
        }
    }
}

/// The API-server VIP: as requested, or else the host part of the endpoint
/// the service chose (`https://<vip>:6443`).
fn endpoint_ip(cluster: &Cluster) -> Option<String> {
    if let Some(ip) = &cluster.spec.control_plane.endpoint_ip {
        return Some(ip.clone());
    }
    let endpoint = cluster.status.endpoint.as_deref()?;
    let url = reqwest::Url::parse(endpoint).ok()?;
    url.host_str().map(str::to_string)
}

/// The data source's state, built on the resource's own conversion
/// ([`resource::to_state`]). What differs is what the data source documents:
/// with no configuration to stay consistent with, empty `admin_group_ids`
/// and `tags` are shown empty rather than null (and `admin_group_ids` as a
/// list); `control_plane.endpoint_ip` also shows the VIP the service chose;
/// nodes and conditions carry their version, size and transition time.
pub(crate) fn to_state(cluster: &Cluster) -> ClusterDataModel {
    let shown = ClusterModel {
        admin_group_ids: Attr::Known(Set::default()),
        tags: Attr::Known(BTreeMap::new()),
        ..ClusterModel::default()
    };
    let ClusterModel {
        id,
        name,
        custom_location_id,
        vnet_id,
        kubernetes_version,
        control_plane,
        network,
        ssh_public_key,
        admin_group_ids,
        storage,
        auto_scaler_profile,
        tags,
        endpoint,
        ca_certificate,
        current_kubernetes_version,
        provisioning_state,
        conditions: _,
        control_plane_nodes: _,
        upgrade,
        timeouts: _,
    } = resource::to_state(cluster, &shown);
    let status = &cluster.status;
    ClusterDataModel {
        id,
        name,
        custom_location_id,
        vnet_id,
        kubernetes_version,
        control_plane: control_plane.map(|cp| ControlPlaneModel {
            endpoint_ip: endpoint_ip(cluster).into(),
            ..cp
        }),
        network,
        ssh_public_key,
        admin_group_ids: admin_group_ids.map(|Set(ids)| ids),
        storage,
        auto_scaler_profile,
        tags,
        endpoint,
        ca_certificate,
        current_kubernetes_version,
        provisioning_state,
        conditions: shared::conditions(&status.conditions),
        control_plane_nodes: shared::nodes(&status.control_plane_nodes),
        load_balancer_nodes: shared::nodes(&status.load_balancer_nodes),
        node_pool_ids: Attr::Known(status.node_pools.clone()),
        certificates: status
            .certificates
            .as_ref()
            .map(CertificatesModel::of)
            .into(),
        upgrade,
        created_at: Attr::Known(cluster.created_at.clone()),
        updated_at: Attr::Known(cluster.updated_at.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data_sources::shared::tests::{assert_fits, int, items, text};
    use crate::framework::Diagnostics;

    fn to_value(cluster: &Cluster) -> Value {
        to_state(cluster).to_value()
    }

    /// A cluster as the service answers it, from the wire JSON, so the test
    /// also covers the serde defaults of the API types.
    fn sample() -> Cluster {
        serde_json::from_value(serde_json::json!({
            "id": "/clusters/prod",
            "name": "prod",
            "etag": "\"7\"",
            "custom_location_id": "/custom-locations/dc1",
            "vnet_id": "/vnets/lan",
            "kubernetes_version": "1.32.3",
            "control_plane": {"count": 3, "vm_size": "Standard_A4_v2"},
            "network": {"plugin": "flannel", "load_balancer": {"count": 1}},
            "ssh_public_key": "ssh-ed25519 AAAAC3Nza ops@example",
            "admin_group_ids": ["g-ops"],
            "storage": {"smb_csi": false, "nfs_csi": true},
            "tags": {"env": "prod"},
            "provisioning_state": "Updating",
            "status": {
                "conditions": [{
                    "type": "Upgrading",
                    "status": "True",
                    "reason": "RollingReplace",
                    "message": "1 of 3 control-plane VMs on 1.32.3",
                    "last_transition_time": "2025-01-02T03:04:05Z"
                }],
                "endpoint": "https://10.0.0.200:6443",
                "ca_certificate": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
                "current_kubernetes_version": "1.31.5",
                "control_plane_nodes": [{
                    "name": "prod-cp-1",
                    "ip": "10.0.0.10",
                    "host": "host-1",
                    "state": "Running",
                    "kubernetes_version": "1.32.3",
                    "vm_size": "Standard_A4_v2"
                }, {
                    "name": "prod-cp-2",
                    "host": "host-2",
                    "state": "Pending",
                    "kubernetes_version": "1.31.5",
                    "vm_size": "Standard_A4_v2"
                }],
                "node_pools": ["/clusters/prod/nodepools/linux1"],
                "certificates": {
                    "ca_not_after": "2035-01-01T00:00:00Z",
                    "apiserver_not_after": "2026-01-01T00:00:00Z",
                    "not_after": "2026-01-01T00:00:00Z",
                    "renew_after": "2025-10-20T00:00:00Z",
                    "last_rotated": "2025-01-02T00:00:00Z"
                }
            },
            "created_at": "2025-01-01T00:00:00Z",
            "updated_at": "2025-01-02T03:04:05Z"
        }))
        .unwrap()
    }

    #[test]
    fn state_carries_spec_status_and_nodes() {
        let state = to_value(&sample());
        assert_fits(&ClusterDataSource.schema(), &state);

        assert_eq!(text(&state, "id"), "/clusters/prod");
        assert_eq!(text(&state, "custom_location_id"), "/custom-locations/dc1");
        assert_eq!(text(&state, "kubernetes_version"), "1.32.3");
        assert_eq!(text(&state, "current_kubernetes_version"), "1.31.5");
        assert_eq!(text(&state, "provisioning_state"), "Updating");

        let control_plane = state.get("control_plane").unwrap();
        assert_eq!(int(control_plane, "count"), 3);
        // Not requested, so the VIP comes from the endpoint the service chose.
        assert_eq!(text(control_plane, "endpoint_ip"), "10.0.0.200");

        let network = state.get("network").unwrap();
        assert_eq!(text(network, "plugin"), "flannel");
        // Defaults of the wire type are resolved.
        assert_eq!(
            text(network, "pod_cidr"),
            hybrid_api::cluster::DEFAULT_POD_CIDR
        );
        assert_eq!(int(network.get("load_balancer").unwrap(), "count"), 1);

        let storage = state.get("storage").unwrap();
        assert_eq!(storage.get("smb_csi"), Some(&Value::Bool(false)));
        // A cluster stored before the autoscaler profile existed (or
        // created without one) shows every setting at its default.
        let profile = state.get("auto_scaler_profile").unwrap();
        assert_eq!(text(profile, "scan_interval"), "10s");
        assert_eq!(text(profile, "expander"), "random");
        assert_eq!(int(profile, "max_unready_percentage"), 45);
        assert_eq!(
            profile.get("skip_nodes_with_system_pods"),
            Some(&Value::Bool(true))
        );
        assert_eq!(
            state.get("tags"),
            Some(&Value::map([("env", Value::from("prod"))]))
        );
        assert_eq!(text(&state, "endpoint"), "https://10.0.0.200:6443");
        assert!(text(&state, "ca_certificate").starts_with("-----BEGIN CERTIFICATE-----"));

        let conditions = items(&state, "conditions");
        assert_eq!(text(&conditions[0], "type"), "Upgrading");
        assert_eq!(text(&conditions[0], "reason"), "RollingReplace");

        let nodes = items(&state, "control_plane_nodes");
        assert_eq!(nodes.len(), 2);
        assert_eq!(text(&nodes[0], "ip"), "10.0.0.10");
        assert_eq!(nodes[1].get("ip"), Some(&Value::Null));
        assert_eq!(text(&nodes[1], "state"), "Pending");
        assert_eq!(items(&state, "load_balancer_nodes").len(), 0);
        let certificates = state.get("certificates").unwrap();
        assert_eq!(text(certificates, "not_after"), "2026-01-01T00:00:00Z");
        assert_eq!(text(certificates, "ca_not_after"), "2035-01-01T00:00:00Z");
        assert_eq!(text(certificates, "renew_after"), "2025-10-20T00:00:00Z");
        assert_eq!(text(certificates, "last_rotated"), "2025-01-02T00:00:00Z");
        assert_eq!(certificates.get("ca_rotated_at"), Some(&Value::Null));
        assert_eq!(
            state.get("node_pool_ids"),
            Some(&Value::list([Value::from(
                "/clusters/prod/nodepools/linux1"
            )]))
        );
    }

    #[test]
    fn requested_endpoint_ip_wins_and_a_new_cluster_has_nulls() {
        let mut cluster = sample();
        cluster.spec.control_plane.endpoint_ip = Some("10.0.0.201".into());
        let state = to_value(&cluster);
        assert_eq!(
            text(state.get("control_plane").unwrap(), "endpoint_ip"),
            "10.0.0.201"
        );

        let mut fresh = sample();
        fresh.spec.control_plane.endpoint_ip = None;
        fresh.spec.ssh_public_key = None;
        fresh.status = Default::default();
        let state = to_value(&fresh);
        assert_fits(&ClusterDataSource.schema(), &state);
        for name in [
            "endpoint",
            "ca_certificate",
            "current_kubernetes_version",
            "ssh_public_key",
            "certificates",
        ] {
            assert_eq!(state.get(name), Some(&Value::Null), "{name}");
        }
        assert_eq!(
            state.get("control_plane").unwrap().get("endpoint_ip"),
            Some(&Value::Null)
        );
    }

    #[test]
    fn an_invalid_name_fails_validation_at_name() {
        let schema = ClusterDataSource.schema();
        let mut diags = Diagnostics::new();
        schema.validate(
            &Value::object([("name", Value::from("Prod_A"))]),
            &mut diags,
        );
        assert!(diags.has_errors());
        let text = format!("{diags:?}");
        assert!(text.contains("Prod_A"), "{text}");
    }

    #[test]
    fn not_found_names_the_cluster_the_endpoint_and_the_fix() {
        let detail = not_found("cluster", "x", "https://127.0.0.1:8443", "name");
        assert_eq!(
            detail,
            "cluster \"x\" not found at https://127.0.0.1:8443; create it or check `name`"
        );
    }
}
