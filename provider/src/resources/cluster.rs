//! `hybrid_cluster`: a Kubernetes cluster (control plane, network, storage
//! drivers) in a custom location, on a vnet. Node pools are separate
//! `hybrid_nodepool` resources.
//!
//! In place: `kubernetes_version` (a rolling upgrade, one minor at a time),
//! `control_plane.count`, `network.load_balancer.count`, `admin_group_ids`,
//! `storage`, `auto_scaler_profile`, `tags`. Everything else replaces the cluster. The plan asks
//! the service to admit the change (`?dry_run=true`), so a skipped minor, an
//! exhausted VIP or VM pool or too little host capacity fails `terraform
//! plan`, not the apply.

use std::collections::BTreeMap;
use std::time::Duration;

use hybrid_api::Operation;
use hybrid_api::autoscaler::{AutoScalerProfile, Expander};
use hybrid_api::cluster::{
    self, ClusterNetwork, ClusterStorage, ControlPlane, DEFAULT_CONTROL_PLANE_VM_SIZE,
    DEFAULT_POD_CIDR, DEFAULT_SERVICE_CIDR, LoadBalancer, MAX_LOAD_BALANCERS, NetworkPlugin,
    parse_cluster_id,
};
use hybrid_api::ip_plan::VnetCluster;
use hybrid_api::{Cluster, ClusterSpec, cluster_id};
use hybrid_cty::{Type, Value};

use super::attributes::{self, ConditionModel, NodeModel, UpgradeModel};
use super::lifecycle::{Managed, managed_resource};
use super::vip_pressure::{self, VipChange};
use super::{dry_run, following, planning};
use crate::client::{Accepted, ClientError, HostClient, Put};
use crate::framework::model::{self, Attr, Set, ToValue};
use crate::framework::schema::Attribute;
use crate::framework::{AttrPath, Diagnostics, PlanContext, Schema, timeouts, validators};

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2 * 60 * 60);

/// What an update may change besides the spec: unknown in the plan when it
/// re-drives unfinished work.
const OBSERVED: &[&str] = &[
    "conditions",
    "control_plane_nodes",
    "current_kubernetes_version",
    "upgrade",
];

pub struct ClusterResource;

managed_resource!(ClusterResource);

impl Managed for ClusterResource {
    type Object = Cluster;
    type Model = ClusterModel;
    type Create = (String, ClusterSpec);
    type Update = ClusterSpec;
    const TYPE_NAME: &'static str = "hybrid_cluster";
    const KIND: &'static str = "cluster";
    const ID_FORMAT: &'static str = "/clusters/<name>";
    const ID_EXAMPLE: &'static str = "/clusters/prod-a";
    const DEFAULT_TIMEOUT: Duration = DEFAULT_TIMEOUT;

    fn schema(&self) -> Schema {
        Schema::new(
            "A Kubernetes cluster in a custom location, on a vnet: its control plane, network \
             and storage drivers. Node pools are separate `hybrid_nodepool` resources.",
            vec![
                Attribute::string("id")
                    .computed()
                    .use_state_for_unknown()
                    .description(
                        "The cluster's path in the host API, `/clusters/<name>`; also the import id.",
                    ),
                Attribute::string("name")
                    .required()
                    .requires_replace()
                    .validator(validators::string_rule(|name| {
                        cluster::validate_name(name).map_err(|e| e.message)
                    }))
                    .description(
                        "Name of the cluster: a DNS label of at most 40 characters (node names \
                         are built from it). Changing it replaces the cluster.",
                    ),
                Attribute::string("custom_location_id")
                    .required()
                    .requires_replace()
                    .description(
                        "Id of the custom location the cluster lives in, \
                         `/custom-locations/<name>`. Changing it replaces the cluster.",
                    ),
                Attribute::string("vnet_id")
                    .required()
                    .requires_replace()
                    .description(
                        "Id of the vnet the cluster's VMs and VIPs come from, `/vnets/<name>`. \
                         Changing it replaces the cluster.",
                    ),
                Attribute::string("kubernetes_version")
                    .optional_computed()
                    .use_state_for_unknown()
                    .description(
                        "Kubernetes version, e.g. `1.32.3`. Left out, the newest supported \
                         version when the cluster is created (and kept after). Changing it is an \
                         in-place rolling upgrade: one minor version at a time, never down, and \
                         only to a version ready for every OS the cluster's node pools use — \
                         checked at plan time.",
                    ),
                Attribute::nested("control_plane", control_plane_attributes())
                    .default_value(Value::object([
                        ("count", Value::from(1i64)),
                        ("vm_size", Value::from(DEFAULT_CONTROL_PLANE_VM_SIZE)),
                        ("endpoint_ip", Value::Null),
                    ]))
                    .description("The control plane's VMs and API-server address."),
                Attribute::nested("network", network_attributes())
                    .default_value(Value::object([
                        ("plugin", Value::from("calico")),
                        ("pod_cidr", Value::from(DEFAULT_POD_CIDR)),
                        ("service_cidr", Value::from(DEFAULT_SERVICE_CIDR)),
                        (
                            "load_balancer",
                            Value::object([("count", Value::from(0i64))]),
                        ),
                    ]))
                    .description("Cluster networking."),
                Attribute::string("ssh_public_key")
                    .optional()
                    .requires_replace()
                    .description(
                        "OpenSSH public key installed on every VM (`ssh-ed25519 AAAA… comment`), \
                         at most 16384 characters. Changing it replaces the cluster.",
                    ),
                attributes::string_set("admin_group_ids")
                    .optional()
                    .description(
                        "Directory groups granted cluster-admin: at most 32 ids of at most 256 \
                         characters. Change in place.",
                    ),
                Attribute::nested("storage", storage_attributes())
                    .default_value(Value::object([
                        ("smb_csi", Value::from(true)),
                        ("nfs_csi", Value::from(true)),
                    ]))
                    .description("CSI storage drivers installed on the cluster."),
                Attribute::nested("auto_scaler_profile", auto_scaler_profile_attributes())
                    .default_value(profile_model(&AutoScalerProfile::default()).to_value())
                    .description(
                        "Settings of the cluster autoscaler, which sizes the node pools that \
                         have `auto_scaling` (AKS's `auto_scaler_profile`, with AKS's defaults). \
                         Left out, or any setting left out, the default applies; removing the \
                         block sets every setting back to its default. Changes in place, \
                         without touching any VM. Checked at plan time: durations are a whole \
                         number and one unit (`10s`, `15m`, `1h`) within each setting's bounds.",
                    ),
                Attribute::map("tags", Type::String)
                    .optional()
                    .description(attributes::tags_description()),
                Attribute::string("endpoint")
                    .computed()
                    .use_state_for_unknown()
                    .description("The Kubernetes API server's URL, `https://<vip>:6443`."),
                Attribute::string("ca_certificate")
                    .computed()
                    .use_state_for_unknown()
                    .description(
                        "PEM of the cluster's certificate authority (a public certificate, not a \
                         secret).",
                    ),
                Attribute::string("current_kubernetes_version")
                    .computed()
                    .use_state_for_unknown()
                    .description(
                        "Version the control plane runs now; differs from `kubernetes_version` \
                         while an upgrade is in progress or after one failed.",
                    ),
                Attribute::string("provisioning_state").computed().description(
                    "Outcome of the last operation on the cluster (`Succeeded`, `Failed`, …). \
                     When it is not `Succeeded`, the next plan proposes an update that \
                     re-drives the work.",
                ),
                attributes::observed_list("conditions", attributes::condition_attributes()).description(
                    "Status conditions the service observes (e.g. `Ready`), apart from \
                     `provisioning_state`.",
                ),
                attributes::observed_list("control_plane_nodes", attributes::node_attributes())
                    .use_state_for_unknown()
                    .description("The control-plane VMs."),
                attributes::upgrade_attribute("the control plane and every node pool"),
                timeouts::attribute(DEFAULT_TIMEOUT),
            ],
        )
    }

    fn validate(&self, config: &Value, diags: &mut Diagnostics) {
        let spec = spec_for_rules(&model::read(config));
        planning::report_rules(
            cluster::validate_spec(&spec),
            config,
            &[&["network.pod_cidr", "network.service_cidr"]],
            diags,
        );
    }

    async fn modify_plan(
        &self,
        ctx: PlanContext<'_, HostClient>,
        planned: &mut Value,
        diags: &mut Diagnostics,
    ) {
        plan_observed(ctx.prior, ctx.config, planned);
        // Its pools' plans, next, compare their version with this one.
        let plan: ClusterModel = model::read(planned);
        if let (Some(name), Some(version)) = (plan.name.known(), plan.kubernetes_version.known()) {
            following::record(&cluster_id(name), version);
        }
        let Some((client, put)) = dry_run::put(&ctx, planned, &self.schema()) else {
            return;
        };
        let (prior, mut plan): (ClusterModel, ClusterModel) =
            (model::read(ctx.prior), model::read(planned));
        let (Some(name), Some(spec)) = (plan.name.known().cloned(), spec_from(&plan)) else {
            return;
        };
        if put == Put::Upsert && same_spec(&prior, &plan) {
            return;
        }
        let answer = client.dry_run_cluster(&name, &spec, put).await;
        let summary = format!("The host management service would refuse cluster {name:?}");
        let Some(admitted) =
            dry_run::outcome(answer, put == Put::Create, &summary, &self.schema(), diags)
        else {
            return;
        };
        // Admitted: warn if it leaves the vnet no VIP while a cluster's load
        // balancer could still need one (a new cluster takes its API-server
        // VIP; a load balancer change may add the cluster to those needing one).
        let lb_changed = prior_load_balancers(&prior) != Some(spec.network.load_balancer.count);
        if put == Put::Create || lb_changed {
            let change = VipChange {
                vnet: spec
                    .vnet_id
                    .strip_prefix("/vnets/")
                    .unwrap_or(&spec.vnet_id),
                pool: None,
                added: u64::from(put == Put::Create),
                cluster: Some(VnetCluster {
                    name: name.clone(),
                    load_balancers: spec.network.load_balancer.count,
                }),
            };
            let at = match put {
                Put::Create => AttrPath::attr("vnet_id"),
                Put::Upsert => AttrPath::attr("network").then_attr("load_balancer"),
            };
            vip_pressure::warn(client, change, None, at, diags).await;
        }
        // The service resolves the default version; show it instead of
        // "known after apply" (create then sends exactly this version).
        if plan.kubernetes_version.is_unknown()
            && let Some(version) = admitted.spec.kubernetes_version
        {
            plan.kubernetes_version = Attr::Known(version);
            *planned = plan.to_value();
        }
    }

    fn is_id(id: &str) -> bool {
        name_in(id).is_some()
    }

    async fn fetch(client: &HostClient, id: &str) -> Result<Option<Cluster>, ClientError> {
        match name_in(id) {
            Some(name) => client.get_cluster(name).await,
            None => Ok(None),
        }
    }

    fn to_state(object: &Cluster, previous: &ClusterModel) -> ClusterModel {
        to_state(object, previous)
    }

    fn planned_id(planned: &ClusterModel) -> Option<String> {
        planned.name.known().map(|name| cluster_id(name))
    }

    fn state_id(state: &ClusterModel) -> Option<String> {
        state.id.known().filter(|id| Self::is_id(id)).cloned()
    }

    /// The cluster's name and spec.
    fn create_request(planned: &ClusterModel) -> Option<(String, ClusterSpec)> {
        Some((planned.name.known()?.clone(), spec_from(planned)?))
    }

    fn update_request(_prior: &ClusterModel, planned: &ClusterModel) -> Option<ClusterSpec> {
        spec_from(planned)
    }

    fn same_spec(prior: &ClusterModel, planned: &ClusterModel) -> bool {
        same_spec(prior, planned)
    }

    async fn create(
        client: &HostClient,
        (name, spec): &(String, ClusterSpec),
    ) -> Result<Accepted<Cluster>, ClientError> {
        client.put_cluster(name, spec, Put::Create).await
    }

    async fn update(
        client: &HostClient,
        id: &str,
        spec: &ClusterSpec,
    ) -> Result<Accepted<Cluster>, ClientError> {
        let name = name_in(id).unwrap_or_default();
        client.put_cluster(name, spec, Put::Upsert).await
    }

    async fn delete(client: &HostClient, id: &str) -> Result<Option<Operation>, ClientError> {
        client.delete_cluster(name_in(id).unwrap_or_default()).await
    }

    /// The apply walk re-plans each pool after its cluster is applied (in a
    /// process that may not have seen the plan): it compares with this.
    fn applied(state: &ClusterModel, _diags: &mut Diagnostics) {
        if let (Some(id), Some(version)) = (state.id.known(), state.kubernetes_version.known()) {
            following::record(id, version);
        }
    }
}

/// The name in a cluster id, when it is a valid cluster name.
fn name_in(id: &str) -> Option<&str> {
    parse_cluster_id(id).filter(|name| cluster::validate_name(name).is_ok())
}

fn control_plane_attributes() -> Vec<Attribute> {
    vec![
        Attribute::number("count").default_value(1i64).description(
            "Number of control-plane VMs: 1, 3 or 5 (an odd number keeps etcd quorum). \
                 Defaults to 1. Changes in place, one member at a time: new members join \
                 (each running before the next is added) before any is removed, so quorum \
                 is never lost; see the High availability guide.",
        ),
        Attribute::string("vm_size")
            .default_value(DEFAULT_CONTROL_PLANE_VM_SIZE)
            .requires_replace()
            .description(format!(
                "VM size of the control-plane VMs, from the service's catalogue (see the \
                 `hybrid_vm_sizes` data source). Defaults to `{DEFAULT_CONTROL_PLANE_VM_SIZE}`. \
                 Changing it replaces the cluster."
            )),
        Attribute::string("endpoint_ip")
            .optional()
            .requires_replace()
            .description(
                "API-server VIP, from the vnet's `vip_pool`. Left out, the service takes the \
                 lowest free address (see `endpoint`). Changing it replaces the cluster.",
            ),
    ]
}

fn network_attributes() -> Vec<Attribute> {
    vec![
        Attribute::string("plugin")
            .default_value("calico")
            .requires_replace()
            .validator(validators::one_of(&["calico", "flannel"]))
            .description(
                "Container network plugin: `calico` (default) or `flannel`. Changing it \
                 replaces the cluster.",
            ),
        Attribute::string("pod_cidr")
            .default_value(DEFAULT_POD_CIDR)
            .requires_replace()
            .description(format!(
                "IPv4 CIDR pods get addresses from. Defaults to `{DEFAULT_POD_CIDR}`. \
                 Changing it replaces the cluster."
            )),
        Attribute::string("service_cidr")
            .default_value(DEFAULT_SERVICE_CIDR)
            .requires_replace()
            .description(format!(
                "IPv4 CIDR of Kubernetes services, disjoint from `pod_cidr`. Defaults to \
                 `{DEFAULT_SERVICE_CIDR}`. Changing it replaces the cluster."
            )),
        Attribute::nested(
            "load_balancer",
            vec![
                Attribute::number("count")
                    .default_value(0i64)
                    .validator(validators::int_between(0, i64::from(MAX_LOAD_BALANCERS)))
                    .description(format!(
                        "Number of built-in HAProxy load balancer VMs, 0 (none, the default) \
                         to {MAX_LOAD_BALANCERS}; each takes an address from the vnet's \
                         `vm_ip_pool`. Changes in place."
                    )),
            ],
        )
        .default_value(Value::object([("count", Value::from(0i64))]))
        .description("Built-in load balancer VMs for `LoadBalancer` services."),
    ]
}

fn storage_attributes() -> Vec<Attribute> {
    vec![
        Attribute::bool("smb_csi")
            .default_value(true)
            .description("Install the SMB CSI driver. Defaults to true. Changes in place."),
        Attribute::bool("nfs_csi")
            .default_value(true)
            .description("Install the NFS CSI driver. Defaults to true. Changes in place."),
    ]
}

/// The `auto_scaler_profile` attributes: every one has AKS's default, so
/// the planned block is always fully known and equals what the service
/// reports back.
fn auto_scaler_profile_attributes() -> Vec<Attribute> {
    let d = AutoScalerProfile::default();
    let duration = |name: &'static str, default: &str, bounds: &str, what: &str| {
        Attribute::string(name)
            .default_value(default)
            .description(format!(
                "{what}, {bounds}: a whole number and one unit, `s`, `m` or `h`. Defaults to \
                 `{default}`."
            ))
    };
    let whole = |name: &'static str, default: i64, what: &str| {
        Attribute::number(name)
            .default_value(default)
            .description(format!("{what} Defaults to {default}."))
    };
    vec![
        Attribute::bool("balance_similar_node_groups")
            .default_value(d.balance_similar_node_groups)
            .description(
                "Keep similar pools (same VM size, labels and taints) at the same node count. \
                 Defaults to false.",
            ),
        Attribute::string("expander")
            .default_value(d.expander.as_str())
            .validator(validators::one_of(&Expander::ALL))
            .description(
                "Which pool to grow when several could take the pending pods: `least-waste` \
                 (least CPU and memory left idle), `most-pods`, `priority` (by the \
                 `cluster-autoscaler-priority-expander` config map) or `random` (default).",
            ),
        whole(
            "empty_bulk_delete_max",
            d.empty_bulk_delete_max,
            "Most empty nodes removed at once, 1 to 200.",
        ),
        whole(
            "max_graceful_termination_sec",
            d.max_graceful_termination_sec,
            "Seconds the autoscaler waits for a pod to end when it drains a node, 0 to 86400.",
        ),
        duration(
            "max_node_provisioning_time",
            &d.max_node_provisioning_time,
            "1m to 1h",
            "How long a new node may take to become ready",
        ),
        whole(
            "max_unready_nodes",
            d.max_unready_nodes,
            "Unready nodes tolerated before the autoscaler stops scaling, 0 to 200.",
        ),
        whole(
            "max_unready_percentage",
            d.max_unready_percentage,
            "Percentage of unready nodes tolerated before the autoscaler stops scaling, 0 to \
             100.",
        ),
        duration(
            "new_pod_scale_up_delay",
            &d.new_pod_scale_up_delay,
            "0s to 1h",
            "How long a pod must be pending before it triggers a scale-up",
        ),
        duration(
            "scale_down_delay_after_add",
            &d.scale_down_delay_after_add,
            "0s to 24h",
            "Wait after a scale-up before scale-down is considered",
        ),
        duration(
            "scale_down_delay_after_delete",
            &d.scale_down_delay_after_delete,
            "0s to 24h",
            "Wait after a node is removed before scale-down is considered again",
        ),
        duration(
            "scale_down_delay_after_failure",
            &d.scale_down_delay_after_failure,
            "0s to 24h",
            "Wait after a failed scale-down before trying again",
        ),
        duration(
            "scale_down_unneeded",
            &d.scale_down_unneeded,
            "1m to 24h",
            "How long a node must be unneeded before it is removed",
        ),
        duration(
            "scale_down_unready",
            &d.scale_down_unready,
            "1m to 24h",
            "How long a node must be unready before it is removed",
        ),
        Attribute::string("scale_down_utilization_threshold")
            .default_value(d.scale_down_utilization_threshold.as_str())
            .description(format!(
                "Requested CPU or memory over capacity below which a node counts as unneeded: \
                 a decimal from `\"0\"` to `\"1\"` written as a string, as AKS takes it (so it \
                 round-trips exactly). Defaults to `\"{}\"`.",
                d.scale_down_utilization_threshold
            )),
        duration(
            "scan_interval",
            &d.scan_interval,
            "1s to 10m",
            "How often the autoscaler looks at the cluster",
        ),
        Attribute::bool("skip_nodes_with_local_storage")
            .default_value(d.skip_nodes_with_local_storage)
            .description(
                "Never remove a node with a pod using local storage (`emptyDir`, `hostPath`). \
                 Defaults to true.",
            ),
        Attribute::bool("skip_nodes_with_system_pods")
            .default_value(d.skip_nodes_with_system_pods)
            .description(
                "Never remove a node running `kube-system` pods other than DaemonSets'. \
                 Defaults to true.",
            ),
    ]
}

crate::model! {
    /// A cluster's configuration, plan or state: the schema's attributes.
    pub(crate) struct ClusterModel {
        pub id: Attr<String>,
        pub name: Attr<String>,
        pub custom_location_id: Attr<String>,
        pub vnet_id: Attr<String>,
        pub kubernetes_version: Attr<String>,
        pub control_plane: Attr<ControlPlaneModel>,
        pub network: Attr<NetworkModel>,
        pub ssh_public_key: Attr<String>,
        pub admin_group_ids: Attr<Set<String>>,
        pub storage: Attr<StorageModel>,
        pub auto_scaler_profile: Attr<AutoScalerProfileModel>,
        pub tags: Attr<BTreeMap<String, String>>,
        pub endpoint: Attr<String>,
        pub ca_certificate: Attr<String>,
        pub current_kubernetes_version: Attr<String>,
        pub provisioning_state: Attr<String>,
        pub conditions: Attr<Vec<ConditionModel>>,
        pub control_plane_nodes: Attr<Vec<NodeModel>>,
        pub upgrade: Attr<UpgradeModel>,
        pub timeouts: Attr<Value>,
    }
}

crate::model! {
    /// `control_plane`.
    pub(crate) struct ControlPlaneModel {
        pub count: Attr<i64>,
        pub vm_size: Attr<String>,
        pub endpoint_ip: Attr<String>,
    }
}

crate::model! {
    /// `network`.
    pub(crate) struct NetworkModel {
        pub plugin: Attr<String>,
        pub pod_cidr: Attr<String>,
        pub service_cidr: Attr<String>,
        pub load_balancer: Attr<LoadBalancerModel>,
    }
}

crate::model! {
    /// `network.load_balancer`.
    pub(crate) struct LoadBalancerModel {
        pub count: Attr<i64>,
    }
}

crate::model! {
    /// `storage`.
    pub(crate) struct StorageModel {
        pub smb_csi: Attr<bool>,
        pub nfs_csi: Attr<bool>,
    }
}

crate::model! {
    /// `auto_scaler_profile`.
    pub(crate) struct AutoScalerProfileModel {
        pub balance_similar_node_groups: Attr<bool>,
        pub expander: Attr<String>,
        pub empty_bulk_delete_max: Attr<i64>,
        pub max_graceful_termination_sec: Attr<i64>,
        pub max_node_provisioning_time: Attr<String>,
        pub max_unready_nodes: Attr<i64>,
        pub max_unready_percentage: Attr<i64>,
        pub new_pod_scale_up_delay: Attr<String>,
        pub scale_down_delay_after_add: Attr<String>,
        pub scale_down_delay_after_delete: Attr<String>,
        pub scale_down_delay_after_failure: Attr<String>,
        pub scale_down_unneeded: Attr<String>,
        pub scale_down_unready: Attr<String>,
        pub scale_down_utilization_threshold: Attr<String>,
        pub scan_interval: Attr<String>,
        pub skip_nodes_with_local_storage: Attr<bool>,
        pub skip_nodes_with_system_pods: Attr<bool>,
    }
}

/// A known count that fits a `u32`.
fn count(value: &Attr<i64>) -> Option<u32> {
    value.known().and_then(|&n| u32::try_from(n).ok())
}

/// The prior state's `network.load_balancer.count` (`None` on create).
fn prior_load_balancers(prior: &ClusterModel) -> Option<u32> {
    count(&prior.network.known()?.load_balancer.known()?.count)
}

/// Plans the computed values an update may change: unknown exactly when the
/// change can alter them, the prior value otherwise.
fn plan_observed(prior_value: &Value, config: &Value, planned_value: &mut Value) {
    planning::keep_succeeded_state(prior_value, planned_value);
    if prior_value.is_null() {
        // A new cluster's VMs all start on its version: no upgrade.
        let mut planned: ClusterModel = model::read(planned_value);
        planned.upgrade = Attr::Null;
        *planned_value = planned.to_value();
        return;
    }
    let prior: ClusterModel = model::read(prior_value);
    if same_spec(&prior, &model::read(planned_value)) {
        planning::keep_prior_values(prior_value, config, planned_value);
    }
    let mut planned: ClusterModel = model::read(planned_value);
    let upgrading = planned.kubernetes_version != prior.kubernetes_version;
    let node_count = |c: &ClusterModel| c.control_plane.known().map(|cp| cp.count.clone());
    let scaling = node_count(&planned) != node_count(&prior);
    // Only an upgrade moves the upgrade's progress (unfinished work is
    // re-driven below); any other change plans it as it was, often null.
    planned.upgrade = match upgrading {
        true => Attr::Unknown,
        false => prior.upgrade.clone(),
    };
    if upgrading {
        planned.current_kubernetes_version = Attr::Unknown;
    }
    if upgrading || scaling {
        // A rolling upgrade replaces every control-plane VM; a scale adds or
        // removes some.
        planned.control_plane_nodes = Attr::Unknown;
    }
    *planned_value = planned.to_value();
    planning::redrive_unfinished(prior_value, planned_value, OBSERVED);
}

/// Whether two plans or states ask the same of the service.
fn same_spec(a: &ClusterModel, b: &ClusterModel) -> bool {
    let spec = spec_from(a);
    spec.is_some() && spec == spec_from(b)
}

/// The API spec from a plan or state; `None` when a required part is not
/// known. Defaults fill attributes that are null (they are planned, so only
/// an incomplete value has them null).
fn spec_from(cluster: &ClusterModel) -> Option<ClusterSpec> {
    if !cluster.control_plane.is_fully_known()
        || !cluster.network.is_fully_known()
        || !cluster.storage.is_fully_known()
        || !cluster.auto_scaler_profile.is_fully_known()
    {
        return None;
    }
    Some(ClusterSpec {
        custom_location_id: cluster.custom_location_id.known()?.clone(),
        vnet_id: cluster.vnet_id.known()?.clone(),
        kubernetes_version: cluster.kubernetes_version.known().cloned(),
        control_plane: control_plane_from(&cluster.control_plane),
        network: network_from(&cluster.network)?,
        ssh_public_key: cluster.ssh_public_key.known().cloned(),
        admin_group_ids: cluster.admin_group_ids.known_items(),
        storage: storage_from(&cluster.storage),
        auto_scaler_profile: profile_from(&cluster.auto_scaler_profile)?,
        tags: cluster.tags.known_entries(),
    })
}

fn control_plane_from(value: &Attr<ControlPlaneModel>) -> ControlPlane {
    let defaults = ControlPlane::default();
    let given = value.known().cloned().unwrap_or_default();
    ControlPlane {
        count: count(&given.count).unwrap_or(defaults.count),
        vm_size: given.vm_size.into_known().unwrap_or(defaults.vm_size),
        endpoint_ip: given.endpoint_ip.into_known(),
    }
}

/// `None` for a plugin the service does not know (the schema validator
/// reports it).
fn network_from(value: &Attr<NetworkModel>) -> Option<ClusterNetwork> {
    let defaults = ClusterNetwork::default();
    let given = value.known().cloned().unwrap_or_default();
    let plugin = match given.plugin.known().map(String::as_str) {
        None | Some("calico") => NetworkPlugin::Calico,
        Some("flannel") => NetworkPlugin::Flannel,
        Some(_) => return None,
    };
    Some(ClusterNetwork {
        plugin,
        pod_cidr: given.pod_cidr.into_known().unwrap_or(defaults.pod_cidr),
        service_cidr: given
            .service_cidr
            .into_known()
            .unwrap_or(defaults.service_cidr),
        load_balancer: LoadBalancer {
            count: given
                .load_balancer
                .known()
                .and_then(|lb| count(&lb.count))
                .unwrap_or(0),
        },
    })
}

fn storage_from(value: &Attr<StorageModel>) -> ClusterStorage {
    let given = value.known().cloned().unwrap_or_default();
    ClusterStorage {
        smb_csi: given.smb_csi.into_known().unwrap_or(true),
        nfs_csi: given.nfs_csi.into_known().unwrap_or(true),
    }
}

/// The API profile from a plan, state or configuration: a setting that is
/// null or not known yet takes its default (for the rules, a valid
/// placeholder whose findings would be dropped anyway). `None` for an
/// expander the service does not know (the schema validator reports it).
fn profile_from(value: &Attr<AutoScalerProfileModel>) -> Option<AutoScalerProfile> {
    let d = AutoScalerProfile::default();
    let given = value.known().cloned().unwrap_or_default();
    let expander = match given.expander.known() {
        None => d.expander,
        Some(name) => Expander::parse(name)?,
    };
    let text = |a: Attr<String>, default: String| a.into_known().unwrap_or(default);
    let whole = |a: &Attr<i64>, default: i64| a.known().copied().unwrap_or(default);
    let flag = |a: &Attr<bool>, default: bool| a.known().copied().unwrap_or(default);
    Some(AutoScalerProfile {
        balance_similar_node_groups: flag(
            &given.balance_similar_node_groups,
            d.balance_similar_node_groups,
        ),
        expander,
        empty_bulk_delete_max: whole(&given.empty_bulk_delete_max, d.empty_bulk_delete_max),
        max_graceful_termination_sec: whole(
            &given.max_graceful_termination_sec,
            d.max_graceful_termination_sec,
        ),
        max_node_provisioning_time: text(
            given.max_node_provisioning_time,
            d.max_node_provisioning_time,
        ),
        max_unready_nodes: whole(&given.max_unready_nodes, d.max_unready_nodes),
        max_unready_percentage: whole(&given.max_unready_percentage, d.max_unready_percentage),
        new_pod_scale_up_delay: text(given.new_pod_scale_up_delay, d.new_pod_scale_up_delay),
        scale_down_delay_after_add: text(
            given.scale_down_delay_after_add,
            d.scale_down_delay_after_add,
        ),
        scale_down_delay_after_delete: text(
            given.scale_down_delay_after_delete,
            d.scale_down_delay_after_delete,
        ),
        scale_down_delay_after_failure: text(
            given.scale_down_delay_after_failure,
            d.scale_down_delay_after_failure,
        ),
        scale_down_unneeded: text(given.scale_down_unneeded, d.scale_down_unneeded),
        scale_down_unready: text(given.scale_down_unready, d.scale_down_unready),
        scale_down_utilization_threshold: text(
            given.scale_down_utilization_threshold,
            d.scale_down_utilization_threshold,
        ),
        scan_interval: text(given.scan_interval, d.scan_interval),
        skip_nodes_with_local_storage: flag(
            &given.skip_nodes_with_local_storage,
            d.skip_nodes_with_local_storage,
        ),
        skip_nodes_with_system_pods: flag(
            &given.skip_nodes_with_system_pods,
            d.skip_nodes_with_system_pods,
        ),
    })
}

/// The `auto_scaler_profile` block of a profile the service reports (also
/// the block's planned default).
pub(crate) fn profile_model(p: &AutoScalerProfile) -> AutoScalerProfileModel {
    let text = |s: &str| Attr::Known(s.to_string());
    AutoScalerProfileModel {
        balance_similar_node_groups: Attr::Known(p.balance_similar_node_groups),
        expander: text(p.expander.as_str()),
        empty_bulk_delete_max: Attr::Known(p.empty_bulk_delete_max),
        max_graceful_termination_sec: Attr::Known(p.max_graceful_termination_sec),
        max_node_provisioning_time: text(&p.max_node_provisioning_time),
        max_unready_nodes: Attr::Known(p.max_unready_nodes),
        max_unready_percentage: Attr::Known(p.max_unready_percentage),
        new_pod_scale_up_delay: text(&p.new_pod_scale_up_delay),
        scale_down_delay_after_add: text(&p.scale_down_delay_after_add),
        scale_down_delay_after_delete: text(&p.scale_down_delay_after_delete),
        scale_down_delay_after_failure: text(&p.scale_down_delay_after_failure),
        scale_down_unneeded: text(&p.scale_down_unneeded),
        scale_down_unready: text(&p.scale_down_unready),
        scale_down_utilization_threshold: text(&p.scale_down_utilization_threshold),
        scan_interval: text(&p.scan_interval),
        skip_nodes_with_local_storage: Attr::Known(p.skip_nodes_with_local_storage),
        skip_nodes_with_system_pods: Attr::Known(p.skip_nodes_with_system_pods),
    }
}

/// A spec for the shared rules from a configuration that may hold unknown
/// values: valid placeholders stand in for them, and `report_rules` drops
/// any finding about an unknown value.
fn spec_for_rules(config: &ClusterModel) -> ClusterSpec {
    ClusterSpec {
        custom_location_id: config
            .custom_location_id
            .known()
            .cloned()
            .unwrap_or_else(|| "/custom-locations/placeholder".into()),
        vnet_id: config
            .vnet_id
            .known()
            .cloned()
            .unwrap_or_else(|| "/vnets/placeholder".into()),
        kubernetes_version: None,
        control_plane: control_plane_from(&config.control_plane),
        network: network_from(&config.network).unwrap_or_default(),
        ssh_public_key: config.ssh_public_key.known().cloned(),
        admin_group_ids: Vec::new(),
        storage: ClusterStorage::default(),
        auto_scaler_profile: profile_from(&config.auto_scaler_profile).unwrap_or_default(),
        tags: Default::default(),
    }
}

/// The Terraform state of a cluster: the one conversion from the service's
/// cluster, which the `hybrid_cluster` data source builds on too.
/// `previous` (plan or prior state) decides null-versus-empty for
/// `admin_group_ids` and `tags` and carries `timeouts`.
pub(crate) fn to_state(cluster: &Cluster, previous: &ClusterModel) -> ClusterModel {
    let spec = &cluster.spec;
    let status = &cluster.status;
    let text = |s: &str| Attr::Known(s.to_string());
    ClusterModel {
        id: text(&cluster.id),
        name: text(&cluster.name),
        custom_location_id: text(&spec.custom_location_id),
        vnet_id: text(&spec.vnet_id),
        kubernetes_version: spec.kubernetes_version.clone().into(),
        control_plane: Attr::Known(ControlPlaneModel {
            count: Attr::Known(i64::from(spec.control_plane.count)),
            vm_size: text(&spec.control_plane.vm_size),
            endpoint_ip: spec.control_plane.endpoint_ip.clone().into(),
        }),
        network: Attr::Known(NetworkModel {
            plugin: text(spec.network.plugin.as_str()),
            pod_cidr: text(&spec.network.pod_cidr),
            service_cidr: text(&spec.network.service_cidr),
            load_balancer: Attr::Known(LoadBalancerModel {
                count: Attr::Known(i64::from(spec.network.load_balancer.count)),
            }),
        }),
        ssh_public_key: spec.ssh_public_key.clone().into(),
        admin_group_ids: model::collection(
            Set(spec.admin_group_ids.clone()),
            &previous.admin_group_ids,
        ),
        storage: Attr::Known(StorageModel {
            smb_csi: Attr::Known(spec.storage.smb_csi),
            nfs_csi: Attr::Known(spec.storage.nfs_csi),
        }),
        auto_scaler_profile: Attr::Known(profile_model(&spec.auto_scaler_profile)),
        tags: model::collection(spec.tags.clone(), &previous.tags),
        endpoint: status.endpoint.clone().into(),
        ca_certificate: status.ca_certificate.clone().into(),
        current_kubernetes_version: status.current_kubernetes_version.clone().into(),
        provisioning_state: text(cluster.provisioning_state.as_str()),
        conditions: attributes::conditions(&status.conditions),
        control_plane_nodes: attributes::nodes(&status.control_plane_nodes),
        upgrade: attributes::upgrade(status.upgrade.as_ref()),
        timeouts: previous.timeouts.clone(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::framework::values;
    use crate::resources::lifecycle::unchanged_update;

    /// The spec sent for a plan or state value.
    fn spec(value: &Value) -> Option<ClusterSpec> {
        spec_from(&model::read(value))
    }

    /// The state value of `cluster` after `previous`.
    fn state(cluster: &Cluster, previous: &Value) -> Value {
        to_state(cluster, &model::read(previous)).to_value()
    }

    fn same(a: &Value, b: &Value) -> bool {
        same_spec(&model::read(a), &model::read(b))
    }
    use crate::framework::AttrPath;
    use crate::framework::plan::plan;
    use crate::framework::schema::{Kind, Mode};

    fn object() -> Cluster {
        serde_json::from_value(serde_json::json!({
            "id": "/clusters/prod-a",
            "name": "prod-a",
            "etag": "1",
            "custom_location_id": "/custom-locations/site-a",
            "vnet_id": "/vnets/lan",
            "kubernetes_version": "1.31.7",
            "provisioning_state": "Succeeded",
            "status": {
                "conditions": [{"type": "Ready", "status": "True", "reason": "Provisioned",
                                "message": "ok", "last_transition_time": "t"}],
                "endpoint": "https://10.0.0.200:6443",
                "ca_certificate": "-----BEGIN CERTIFICATE-----",
                "current_kubernetes_version": "1.31.7",
                "control_plane_nodes": [{"name": "prod-a-cp-1", "ip": "10.0.0.10",
                    "host": "host-1", "state": "Running", "kubernetes_version": "1.31.7",
                    "vm_size": "Standard_A4_v2"}]
            },
            "created_at": "t",
            "updated_at": "t"
        }))
        .unwrap()
    }

    /// A configuration with only the required attributes and `extra` set.
    fn config(extra: &[(&str, Value)]) -> Value {
        let schema = ClusterResource.schema();
        let mut attrs: BTreeMap<String, Value> = schema
            .attributes
            .iter()
            .map(|a| (a.name.to_string(), Value::Null))
            .collect();
        attrs.insert("name".into(), "prod-a".into());
        attrs.insert(
            "custom_location_id".into(),
            "/custom-locations/site-a".into(),
        );
        attrs.insert("vnet_id".into(), "/vnets/lan".into());
        for (k, v) in extra {
            attrs.insert(k.to_string(), v.clone());
        }
        Value::Object(attrs)
    }

    /// Extra configuration and the replacement it must (or must not) force.
    type Case = (Vec<(&'static str, Value)>, Vec<AttrPath>);

    fn plan_for(prior: &Value, config: &Value) -> crate::framework::plan::Plan {
        let schema = ClusterResource.schema();
        let proposed =
            crate::framework::plan::proposed_new_state(&schema.attributes, prior, config);
        let mut planned = plan(&schema, prior, config, &proposed);
        plan_observed(prior, config, &mut planned.planned);
        planned
    }

    #[test]
    fn defaults_and_resolved_version_never_show_a_diff() {
        let cfg = config(&[]);
        // Create: defaults are planned, the version is left to the service.
        let created = plan_for(&Value::Null, &cfg);
        let cp = created.planned.get("control_plane").unwrap();
        assert_eq!(cp.get("count"), Some(&Value::from(1i64)));
        assert_eq!(cp.get("vm_size"), Some(&Value::from("Standard_A4_v2")));
        assert_eq!(
            created
                .planned
                .get("network")
                .and_then(|n| n.get("pod_cidr")),
            Some(&Value::from("10.244.0.0/16"))
        );
        assert_eq!(
            created.planned.get("kubernetes_version"),
            Some(&Value::Unknown)
        );
        // The spec the create sends equals what the service reports back.
        let sent = spec(&created.planned).unwrap();
        let mut answered = object().spec;
        answered.kubernetes_version = None;
        assert_eq!(sent, answered);

        // After apply, the same configuration plans exactly the state.
        let prior = state(&object(), &created.planned);
        let again = plan_for(&prior, &cfg);
        assert_eq!(again.planned, prior);
        assert!(again.requires_replace.is_empty());
    }

    #[test]
    fn requires_replace_exactly_on_immutable_attributes() {
        let cfg = config(&[]);
        let prior = state(&object(), &cfg);
        let cp = |count: i64, size: &str| {
            Value::object([
                ("count", Value::from(count)),
                ("vm_size", Value::from(size)),
                ("endpoint_ip", Value::Null),
            ])
        };
        let cases: Vec<Case> = vec![
            (
                vec![("vnet_id", "/vnets/other".into())],
                vec![AttrPath::attr("vnet_id")],
            ),
            (
                vec![("custom_location_id", "/custom-locations/b".into())],
                vec![AttrPath::attr("custom_location_id")],
            ),
            (
                vec![("control_plane", cp(1, "Standard_D4s_v3"))],
                vec![AttrPath::attr("control_plane").then_attr("vm_size")],
            ),
            (vec![("control_plane", cp(3, "Standard_A4_v2"))], vec![]),
            (vec![("kubernetes_version", "1.32.3".into())], vec![]),
            (
                vec![("ssh_public_key", "ssh-ed25519 AAAA x".into())],
                vec![AttrPath::attr("ssh_public_key")],
            ),
            (
                vec![(
                    "network",
                    Value::object([
                        ("plugin", Value::from("flannel")),
                        ("pod_cidr", Value::Null),
                        ("service_cidr", Value::Null),
                        (
                            "load_balancer",
                            Value::object([("count", Value::from(2i64))]),
                        ),
                    ]),
                )],
                vec![AttrPath::attr("network").then_attr("plugin")],
            ),
            (
                vec![(
                    "storage",
                    Value::object([("smb_csi", Value::from(false)), ("nfs_csi", Value::Null)]),
                )],
                vec![],
            ),
            (
                vec![("admin_group_ids", Value::set([Value::from("g1")]))],
                vec![],
            ),
        ];
        for (extra, want) in cases {
            let got = plan_for(&prior, &config(&extra)).requires_replace;
            assert_eq!(got, want, "{extra:?}");
        }
    }

    #[test]
    fn dropping_a_nested_setting_back_to_its_default_is_a_replacement() {
        let network = Value::object([
            ("plugin", Value::from("flannel")),
            ("pod_cidr", Value::Null),
            ("service_cidr", Value::Null),
            ("load_balancer", Value::Null),
        ]);
        let with_flannel = config(&[("network", network)]);
        let created = plan_for(&Value::Null, &with_flannel);
        let mut object = object();
        object.spec.network.plugin = NetworkPlugin::Flannel;
        let prior = state(&object, &created.planned);
        assert!(plan_for(&prior, &with_flannel).requires_replace.is_empty());
        assert_eq!(
            plan_for(&prior, &config(&[])).requires_replace,
            vec![AttrPath::attr("network").then_attr("plugin")]
        );
    }

    #[test]
    fn only_what_an_update_can_change_is_planned_unknown() {
        let cfg = config(&[]);
        let prior = state(&object(), &cfg);

        // A tag change keeps the endpoint, version, nodes and state known.
        let tags = Value::Map([("env".to_string(), Value::from("prod"))].into());
        let planned = plan_for(&prior, &config(&[("tags", tags)])).planned;
        for name in [
            "endpoint",
            "ca_certificate",
            "current_kubernetes_version",
            "control_plane_nodes",
            "kubernetes_version",
        ] {
            assert_eq!(planned.get(name), prior.get(name), "{name}");
        }
        assert_eq!(
            planned.get("provisioning_state"),
            Some(&Value::from("Succeeded"))
        );

        // An upgrade makes the running version and the VMs unknown.
        let planned = plan_for(&prior, &config(&[("kubernetes_version", "1.32.3".into())])).planned;
        assert_eq!(
            planned.get("current_kubernetes_version"),
            Some(&Value::Unknown)
        );
        assert_eq!(planned.get("control_plane_nodes"), Some(&Value::Unknown));
        assert_eq!(planned.get("endpoint"), prior.get("endpoint"));
    }

    #[test]
    fn a_timeouts_change_alone_keeps_every_observed_value() {
        let prior = state(&object(), &config(&[]));
        let timeouts = Value::object([
            ("create", Value::from("1h")),
            ("update", Value::Null),
            ("delete", Value::Null),
        ]);
        let cfg = config(&[("timeouts", timeouts.clone())]);
        let planned = plan_for(&prior, &cfg).planned;
        let mut want = prior.clone();
        values::set(&mut want, "timeouts", timeouts);
        assert_eq!(planned, want);
        // …and the update asks nothing of the service.
        assert_eq!(
            unchanged_update(&prior, &planned, same(&prior, &planned)),
            Some(want)
        );
    }

    #[test]
    fn a_failed_cluster_plans_an_update_that_redrives_it() {
        let mut failed = object();
        failed.provisioning_state = hybrid_api::ProvisioningState::Failed;
        let cfg = config(&[]);
        let prior = state(&failed, &cfg);
        let planned = plan_for(&prior, &cfg).planned;
        assert_eq!(planned.get("provisioning_state"), Some(&Value::Unknown));
        assert_eq!(planned.get("conditions"), Some(&Value::Unknown));
        assert_eq!(
            planned.get("kubernetes_version"),
            prior.get("kubernetes_version")
        );
    }

    #[test]
    fn shared_rules_report_at_the_attribute_and_skip_unknowns() {
        let cp = Value::object([
            ("count", Value::from(2i64)),
            ("vm_size", Value::Null),
            ("endpoint_ip", Value::Null),
        ]);
        let network = Value::object([
            ("plugin", Value::Null),
            ("pod_cidr", Value::Unknown),
            ("service_cidr", Value::from("10.244.0.0/20")),
            ("load_balancer", Value::Null),
        ]);
        let cfg = config(&[
            ("control_plane", cp),
            ("network", network),
            ("vnet_id", Value::Unknown),
        ]);
        let mut diags = Diagnostics::new();
        ClusterResource.validate(&cfg, &mut diags);
        let paths: Vec<_> = diags.iter().map(|d| d.path.clone()).collect();
        assert_eq!(
            paths,
            vec![Some(AttrPath::attr("control_plane").then_attr("count"))]
        );
        assert!(diags.0[0].detail.contains("1, 3 or 5"));
    }

    /// An `auto_scaler_profile` block with `set` and every other setting
    /// left out (null), as Terraform sends a partial nested object.
    fn profile(set: &[(&str, Value)]) -> Value {
        let mut block: BTreeMap<String, Value> = auto_scaler_profile_attributes()
            .iter()
            .map(|a| (a.name.to_string(), Value::Null))
            .collect();
        for (k, v) in set {
            assert!(block.contains_key(*k), "{k}");
            block.insert(k.to_string(), v.clone());
        }
        Value::Object(block)
    }

    #[test]
    fn the_auto_scaler_profile_defaults_to_aks_s_and_changes_in_place() {
        // Left out: the planned block is AKS's defaults, which is what the
        // service reports back, so the next plan is empty.
        let created = plan_for(&Value::Null, &config(&[]));
        let block = created.planned.get("auto_scaler_profile").unwrap();
        assert_eq!(block.get("scan_interval"), Some(&Value::from("10s")));
        assert_eq!(block.get("expander"), Some(&Value::from("random")));
        assert_eq!(
            block.get("max_unready_percentage"),
            Some(&Value::from(45i64))
        );
        assert_eq!(
            spec(&created.planned).unwrap().auto_scaler_profile,
            AutoScalerProfile::default()
        );

        // One setting given: the others keep their defaults.
        let tuned = config(&[(
            "auto_scaler_profile",
            profile(&[
                ("scan_interval", "20s".into()),
                ("expander", "least-waste".into()),
            ]),
        )]);
        let prior = state(&object(), &config(&[]));
        let changed = plan_for(&prior, &tuned);
        assert!(changed.requires_replace.is_empty());
        let sent = spec(&changed.planned).unwrap().auto_scaler_profile;
        assert_eq!(
            sent,
            AutoScalerProfile {
                scan_interval: "20s".into(),
                expander: Expander::LeastWaste,
                ..AutoScalerProfile::default()
            }
        );
        // Nothing about the VMs is planned to change.
        assert_eq!(
            changed.planned.get("control_plane_nodes"),
            prior.get("control_plane_nodes")
        );

        // Applied, the same configuration plans exactly the state…
        let mut tuned_object = object();
        tuned_object.spec.auto_scaler_profile = sent;
        let tuned_state = state(&tuned_object, &changed.planned);
        let again = plan_for(&tuned_state, &tuned);
        assert_eq!(again.planned, tuned_state);
        assert!(same(&again.planned, &tuned_state));
        // …and removing the block goes back to the defaults, in place.
        let removed = plan_for(&tuned_state, &config(&[]));
        assert!(removed.requires_replace.is_empty());
        assert!(!same(&removed.planned, &tuned_state));
        assert_eq!(
            spec(&removed.planned).unwrap().auto_scaler_profile,
            AutoScalerProfile::default()
        );
    }

    #[test]
    fn auto_scaler_profile_rules_report_at_the_setting() {
        let cfg = config(&[(
            "auto_scaler_profile",
            profile(&[
                ("scan_interval", "0s".into()),
                ("scale_down_unneeded", Value::Unknown),
                ("max_unready_percentage", Value::from(101i64)),
                ("scale_down_utilization_threshold", "1.5".into()),
            ]),
        )]);
        let mut diags = Diagnostics::new();
        ClusterResource.validate(&cfg, &mut diags);
        let found: Vec<_> = diags
            .iter()
            .map(|d| (d.path.clone(), d.detail.clone()))
            .collect();
        let at = |name: &str| Some(AttrPath::attr("auto_scaler_profile").then_attr(name));
        assert_eq!(found.len(), 3, "{found:?}");
        assert_eq!(found[0].0, at("scan_interval"));
        assert!(
            found[0]
                .1
                .contains("\"0s\" is not allowed: must be between 1s and 10m"),
            "{}",
            found[0].1
        );
        assert_eq!(found[1].0, at("scale_down_utilization_threshold"));
        assert!(found[1].1.contains("\"1.5\""), "{}", found[1].1);
        assert_eq!(found[2].0, at("max_unready_percentage"));
        assert!(found[2].1.contains("101"), "{}", found[2].1);

        // An expander the service does not know is the schema's to report;
        // no spec is built from it.
        let odd = config(&[(
            "auto_scaler_profile",
            profile(&[("expander", "fastest".into())]),
        )]);
        let planned = plan_for(&Value::Null, &odd).planned;
        assert_eq!(spec(&planned), None);
    }

    #[test]
    fn every_nested_setting_with_a_default_is_optional_and_computed() {
        fn check(attributes: &[Attribute]) {
            for a in attributes {
                if a.default.is_some() {
                    assert_eq!(a.mode, Mode::OptionalComputed, "{}", a.name);
                }
                if let Kind::Nested(inner) = &a.kind {
                    check(inner);
                }
            }
        }
        check(&ClusterResource.schema().attributes);
    }
}
